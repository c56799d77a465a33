"""Support admin for accounts, org memberships, invitations, API tokens and two-factor devices."""

from django.conf import settings
from django.contrib import admin, messages
from django.db.models import Count, IntegerField, OuterRef, Subquery
from django.db.models.functions import Coalesce

from config.admin import EstimatedCountPaginator, IndexedSearchMixin, ViewOnlyAdmin, ViewOnlyInline
from config.errors import DomainError
from members.models import (
    ApiToken,
    EmailVerification,
    Invitation,
    InvitationGrant,
    OrgMembership,
    TwoFactorDevice,
    User,
    WorkspaceInvitation,
)
from workspaces.models import WorkspaceMembership


class UserOrgMembershipInline(ViewOnlyInline):
    model = OrgMembership
    fk_name = "user"
    fields = ("organization", "role", "joined_at", "suspended_at")
    readonly_fields = fields


class UserWorkspaceMembershipInline(ViewOnlyInline):
    model = WorkspaceMembership
    fk_name = "user"
    fields = ("workspace", "role", "source", "granted_by", "created_at")
    readonly_fields = fields


@admin.register(User)
class UserAdmin(admin.ModelAdmin):
    """Accounts are created by sign-up, invitations or `createsuperuser`; support may rename,
    deactivate (the way to lock someone out) or grant staff rights. Deleting is not offered:
    it would silently drop memberships, possibly a workspace's last owner."""

    list_display = (
        "email",
        "full_name",
        "public_id",
        "is_active",
        "is_staff",
        "date_joined",
        "email_verified_at",
        "last_active_at",
        "workspace_count",
    )
    list_filter = (
        "is_active",
        "is_staff",
        "is_superuser",
        ("email_verified_at", admin.EmptyFieldListFilter),
        "date_joined",
    )
    search_fields = ("email", "full_name", "=public_id")
    ordering = ("email",)
    readonly_fields = (
        "public_id",
        "email",
        "email_verified_at",
        "date_joined",
        "last_login",
        "last_active_at",
    )
    fields = (
        "public_id",
        "email",
        "full_name",
        "is_active",
        "is_staff",
        "is_superuser",
        "groups",
        "user_permissions",
        "email_verified_at",
        "date_joined",
        "last_login",
        "last_active_at",
    )
    filter_horizontal = ("groups", "user_permissions")
    inlines = [UserOrgMembershipInline, UserWorkspaceMembershipInline]

    # 100k people: no full COUNT, and the workspace count per listed row (a scalar subquery),
    # not a GROUP BY over every person before the page is cut.
    paginator = EstimatedCountPaginator
    show_full_result_count = False

    def get_queryset(self, request):
        grants = (
            WorkspaceMembership.objects.filter(user=OuterRef("pk"))
            .order_by()
            .values("user")
            .annotate(c=Count("pk"))
            .values("c")
        )
        return (
            super()
            .get_queryset(request)
            .annotate(_ws=Coalesce(Subquery(grants, output_field=IntegerField()), 0))
        )

    @admin.display(description="Workspaces", ordering="_ws")
    def workspace_count(self, obj):
        return obj._ws

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(OrgMembership)
class OrgMembershipAdmin(IndexedSearchMixin, ViewOnlyAdmin):
    list_display = ("user", "organization", "role", "joined_at", "public_id")
    list_filter = ("role", "joined_at")
    search_fields = ("user__email", "user__full_name", "organization__name", "=public_id")
    list_select_related = ("user", "organization")
    paginator = EstimatedCountPaginator
    show_full_result_count = False

    autocomplete_fields = ("user", "organization")


class InvitationGrantInline(ViewOnlyInline):
    model = InvitationGrant
    fields = ("workspace", "role")
    readonly_fields = fields
    show_change_link = False


@admin.register(Invitation)
class InvitationAdmin(ViewOnlyAdmin):
    list_display = (
        "email",
        "organization",
        "org_role",
        "status",
        "delivery_state",
        "delivery_attempts",
        "created_at",
        "expires_at",
        "invited_by",
    )
    list_filter = ("status", "delivery_state", "org_role", "created_at")
    search_fields = ("email", "=public_id", "organization__name")
    list_select_related = ("organization", "invited_by")
    autocomplete_fields = ("organization", "invited_by", "accepted_by")
    exclude = ("token_hash",)
    inlines = [InvitationGrantInline]
    actions = ["resend"]

    @admin.action(
        description=f"Resend the selected invitations (new {settings.INVITATION_TTL_DAYS}-day link)"
    )
    def resend(self, request, queryset):
        """Through the invitation service: it checks the actor's org role and audits the resend."""
        from members.invitations import invitation_resend

        sent, refused = 0, []
        for invitation in queryset.select_related("organization"):
            try:
                invitation_resend(actor=request.user, invitation=invitation)
            except DomainError as exc:
                refused.append(f"{invitation.email}: {exc.message}")
            else:
                sent += 1
        if sent:
            self.message_user(request, f"Resent {sent} invitation(s).", messages.SUCCESS)
        for line in refused:
            self.message_user(request, f"Not resent: {line}", messages.ERROR)


@admin.register(InvitationGrant)
class InvitationGrantAdmin(ViewOnlyAdmin):
    list_display = ("invitation", "workspace", "role")
    list_filter = ("role",)
    search_fields = ("invitation__email", "workspace__name")
    list_select_related = ("invitation__organization", "workspace")
    autocomplete_fields = ("invitation", "workspace")


@admin.register(ApiToken)
class ApiTokenAdmin(ViewOnlyAdmin):
    list_display = (
        "name",
        "user",
        "prefix",
        "created_at",
        "last_used_at",
        "expires_at",
        "revoked_at",
    )
    list_filter = (("revoked_at", admin.EmptyFieldListFilter), "created_at")
    search_fields = ("name", "=prefix", "=public_id", "user__email")
    list_select_related = ("user",)
    autocomplete_fields = ("user",)
    exclude = ("token_hash",)


@admin.register(TwoFactorDevice)
class TwoFactorDeviceAdmin(ViewOnlyAdmin):
    """Support may delete a device when someone lost their phone: they enrol again."""

    list_display = ("user", "confirmed_at", "codes_left")
    list_filter = (("confirmed_at", admin.EmptyFieldListFilter),)
    search_fields = ("user__email", "user__full_name")
    list_select_related = ("user",)
    autocomplete_fields = ("user",)
    exclude = ("secret", "recovery_code_hashes", "last_used_step")

    @admin.display(description="Recovery codes left")
    def codes_left(self, obj):
        return len(obj.recovery_code_hashes or [])

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser


# --- account self-service (members/account_models.py) ------------------------------------------

from members.account_models import EmailChange, UserSession  # noqa: E402


@admin.register(UserSession)
class UserSessionAdmin(ViewOnlyAdmin):
    """Where people are signed in. The session key is a credential: never shown."""

    list_display = ("public_id", "user", "ip", "created_at", "last_seen_at")
    search_fields = ("=public_id", "user__email", "user__full_name")
    list_select_related = ("user",)
    autocomplete_fields = ("user",)
    exclude = ("session_key",)


@admin.register(EmailChange)
class EmailChangeAdmin(ViewOnlyAdmin):
    list_display = ("user", "old_email", "new_email", "created_at", "confirmed_at", "cancelled_at")
    search_fields = ("user__email", "old_email", "new_email")
    list_select_related = ("user",)
    autocomplete_fields = ("user",)


@admin.register(EmailVerification)
class EmailVerificationAdmin(ViewOnlyAdmin):
    """The live email-confirmation link of each unconfirmed account (only its hash exists)."""

    list_display = ("user", "created_at", "expires_at")
    search_fields = ("user__email", "user__full_name")
    list_select_related = ("user",)
    exclude = ("token_hash",)


@admin.register(WorkspaceInvitation)
class WorkspaceInvitationAdmin(ViewOnlyAdmin):
    """Invitations into standalone workspaces (members/workspace_invitations.py)."""

    list_display = ("public_id", "email", "workspace", "role", "invited_by", "status", "expires_at")
    list_filter = ("status",)
    search_fields = ("=public_id", "email", "workspace__name")
    list_select_related = ("workspace", "invited_by")
    exclude = ("token_hash",)
