from django.urls import path

from members import account_views, org_views

app_name = "org_members"

urlpatterns = [
    path("", org_views.directory, name="directory"),
    path("invitations/", org_views.invitations, name="invitations"),
    path("invite/", org_views.invite, name="invite"),
    path("invite/preview/", org_views.invite_preview, name="invite_preview"),
    path(
        "invitations/<str:invitation_id>/resend/",
        org_views.invitation_resend_view,
        name="invitation_resend",
    ),
    path(
        "invitations/<str:invitation_id>/revoke/",
        org_views.invitation_revoke_view,
        name="invitation_revoke",
    ),
    path("leave/", org_views.leave, name="leave"),
    path("bulk/", org_views.members_bulk_view, name="bulk"),
    path("invitations/bulk/", org_views.invitations_bulk_view, name="invitations_bulk"),
    path("removed/", org_views.removed, name="removed"),
    path("removed/<str:event_id>/reinstate/", org_views.reinstate, name="reinstate"),
    path("<str:member_id>/", org_views.member_detail, name="detail"),
    path("<str:member_id>/role/", org_views.member_role, name="role"),
    path("<str:member_id>/access/", org_views.member_access, name="access"),
    path("<str:member_id>/suspend/", org_views.member_suspend_view, name="suspend"),
    path("<str:member_id>/unsuspend/", org_views.member_unsuspend_view, name="unsuspend"),
    path("<str:member_id>/remove/", org_views.member_remove_view, name="remove"),
    path(
        "<str:member_id>/sign-out/",
        account_views.member_signout_everywhere,
        name="signout_everywhere",
    ),
]
