"""Support admin for organizations (with their workspaces and members), links and policies."""

from django.contrib import admin
from django.db.models import Count

from config.admin import ViewOnlyAdmin, ViewOnlyInline
from members.models import OrgMembership
from orgs.models import GovernancePolicy, Organization, WorkspaceLinkPeriod
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
