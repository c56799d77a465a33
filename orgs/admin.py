"""Support admin for organizations (with their workspaces and members), links and policies."""

from django.contrib import admin
from django.db.models import Count

from config.admin import ViewOnlyAdmin, ViewOnlyInline
from members.models import OrgMembership
from orgs.models import (
    GovernancePolicy,
    OidcConnection,
    Organization,
    SamlAssertionUse,
    SamlConnection,
    VerifiedDomain,
    WorkspaceLinkPeriod,
)
from workspaces.models import Workspace


class LinkedWorkspaceInline(ViewOnlyInline):
    model = Workspace
    fields = ("name", "slug", "public_id", "linked_at")
    readonly_fields = fields
    verbose_name_plural = "linked workspaces"


class MembershipInline(ViewOnlyInline):
    model = OrgMembership
    fields = ("user", "role", "joined_at", "public_id")
    readonly_fields = fields


class PolicyInline(ViewOnlyInline):
    model = GovernancePolicy
    fields = ("kind", "value", "updated_at", "updated_by")
    readonly_fields = fields
    show_change_link = False


@admin.register(Organization)
class OrganizationAdmin(ViewOnlyAdmin):
    list_display = (
        "name",
        "slug",
        "public_id",
        "workspace_count",
        "member_count",
        "created_at",
        "deleted_at",
    )
    list_filter = (("deleted_at", admin.EmptyFieldListFilter), "created_at")
    search_fields = ("name", "slug", "=public_id")
    autocomplete_fields = ("created_by",)
    inlines = [LinkedWorkspaceInline, MembershipInline, PolicyInline]

    def get_queryset(self, request):
        # Two independent counts: subquery-free but distinct so the joins do not multiply.
        return (
            super()
            .get_queryset(request)
            .annotate(
                _workspaces=Count("workspaces", distinct=True),
                _members=Count("memberships", distinct=True),
            )
        )

    @admin.display(description="Workspaces", ordering="_workspaces")
    def workspace_count(self, obj):
        return obj._workspaces

    @admin.display(description="Members", ordering="_members")
    def member_count(self, obj):
        return obj._members


@admin.register(WorkspaceLinkPeriod)
class WorkspaceLinkPeriodAdmin(ViewOnlyAdmin):
    list_display = ("workspace", "organization", "linked_at", "unlinked_at")
    list_filter = (("unlinked_at", admin.EmptyFieldListFilter), "linked_at")
    search_fields = ("workspace__name", "organization__name", "=workspace__public_id")
    list_select_related = ("workspace", "organization")
    autocomplete_fields = ("workspace", "organization")


@admin.register(GovernancePolicy)
class GovernancePolicyAdmin(ViewOnlyAdmin):
    list_display = ("organization", "kind", "value", "updated_at", "updated_by")
    list_filter = ("kind",)
    search_fields = ("organization__name", "organization__slug")
    list_select_related = ("organization", "updated_by")
    autocomplete_fields = ("organization", "updated_by")


@admin.register(VerifiedDomain)
class VerifiedDomainAdmin(ViewOnlyAdmin):
    list_display = ("domain", "organization", "verified_at", "created_at", "public_id")
    list_filter = (("verified_at", admin.EmptyFieldListFilter),)
    search_fields = ("domain", "organization__name", "organization__slug", "=public_id")
    list_select_related = ("organization",)
    exclude = ("token",)


@admin.register(SamlConnection)
class SamlConnectionAdmin(ViewOnlyAdmin):
    list_display = ("organization", "idp_entity_id", "enabled", "allow_idp_initiated", "updated_at")
    list_filter = ("enabled", "allow_idp_initiated")
    search_fields = ("organization__name", "organization__slug", "idp_entity_id")
    list_select_related = ("organization",)


@admin.register(OidcConnection)
class OidcConnectionAdmin(ViewOnlyAdmin):
    """An org's OpenID provider. The client secret is a credential (sealed): never shown."""

    list_display = ("organization", "issuer", "client_id", "enabled", "updated_at")
    list_filter = ("enabled",)
    search_fields = ("organization__name", "organization__slug", "issuer", "=client_id")
    list_select_related = ("organization",)
    exclude = ("client_secret_sealed",)


@admin.register(SamlAssertionUse)
class SamlAssertionUseAdmin(ViewOnlyAdmin):
    list_display = ("assertion_id", "organization", "used_at", "not_on_or_after")
    search_fields = ("=assertion_id", "organization__name")
    list_select_related = ("organization",)
