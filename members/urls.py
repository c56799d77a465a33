from django.urls import path

from members import invite_views, token_views, two_factor_views, views

app_name = "members"

urlpatterns = [
    path("signin/", views.signin, name="signin"),
    path("signup/", views.signup, name="signup"),
    path("signout/", views.signout, name="signout"),
    path("verify-email/<str:token>/", views.verify_email, name="verify_email"),
    path("account/confirm-email/", views.email_verification, name="email_verification"),
    path("invitations/<str:token>/", invite_views.invitation_page, name="invitation"),
    path("join/<str:token>/", invite_views.workspace_invitation_page, name="workspace_invitation"),
    path("account/password/", views.PasswordChangeView.as_view(), name="password_change"),
    path(
        "account/password/done/",
        views.PasswordChangeDoneView.as_view(),
        name="password_change_done",
    ),
    path("password-reset/", views.PasswordResetView.as_view(), name="password_reset"),
    path("password-reset/sent/", views.PasswordResetDoneView.as_view(), name="password_reset_done"),
    path(
        "password-reset/<uidb64>/<token>/",
        views.PasswordResetConfirmView.as_view(),
        name="password_reset_confirm",
    ),
    path(
        "password-reset/done/",
        views.PasswordResetCompleteView.as_view(),
        name="password_reset_complete",
    ),
    path("account/tokens/", token_views.tokens, name="tokens"),
    path(
        "account/tokens/<str:token_id>/revoke/",
        token_views.token_revoke_view,
        name="token_revoke",
    ),
    path("account/two-factor/", two_factor_views.manage, name="two_factor"),
    path(
        "account/two-factor/recovery-codes/",
        two_factor_views.recovery_codes,
        name="two_factor_recovery_codes",
    ),
    path("account/two-factor/disable/", two_factor_views.disable, name="two_factor_disable"),
    path("signin/verify/", two_factor_views.verify, name="two_factor_verify"),
]
