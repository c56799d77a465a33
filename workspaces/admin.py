"""Support admin for workspaces, their memberships, resources and sync runs (all view-only)."""

from typing import ClassVar

from django.contrib import admin
from django.db.models import Count

from config.admin import EstimatedCountPaginator, IndexedSearchMixin, ViewOnlyAdmin, ViewOnlyInline
from workspaces.models import (
    DataModel,
    Destination,
    Sync,
    SyncRun,
    Warehouse,
    Workspace,
    WorkspaceMembership,
)


class WorkspaceMembershipInline(ViewOnlyInline):
    model = WorkspaceMembership
    fk_name = "workspace"
    fields = ("user", "role", "source", "granted_by", "created_at")
    readonly_fields = fields


@admin.register(Workspace)
class WorkspaceAdmin(ViewOnlyAdmin):
    list_display = ("name", "slug", "public_id", "organization", "member_count", "created_at")
    list_filter = (("organization", admin.EmptyFieldListFilter), "created_at")
    search_fields = ("name", "slug", "=public_id", "organization__name")
    list_select_related = ("organization",)
    autocomplete_fields = ("organization",)
    inlines = [WorkspaceMembershipInline]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(_members=Count("memberships"))

    @admin.display(description="Members", ordering="_members")
    def member_count(self, obj):
        return obj._members


@admin.register(WorkspaceMembership)
class WorkspaceMembershipAdmin(IndexedSearchMixin, ViewOnlyAdmin):
    list_display = ("user", "workspace", "role", "source", "granted_by", "created_at")
    list_filter = ("role", "source", "created_at")
    search_fields = ("user__email", "user__full_name", "workspace__name", "=workspace__public_id")
    list_select_related = ("user", "workspace", "granted_by")
    autocomplete_fields = ("user", "workspace", "granted_by")


class ResourceAdmin(ViewOnlyAdmin):
    """Shared by the four resource kinds."""

    list_select_related: ClassVar[tuple[str, ...]] = ("workspace",)
    search_fields = ("name", "=public_id", "workspace__name")
    autocomplete_fields: ClassVar[tuple[str, ...]] = ("workspace",)

    @admin.display(description="Workspace", ordering="workspace__name")
    def workspace_name(self, obj):
        return obj.workspace.name


@admin.register(Warehouse)
class WarehouseAdmin(ResourceAdmin):
    list_display = ("name", "kind", "workspace_name", "host", "database", "updated_at")
    list_filter = ("kind",)


@admin.register(DataModel)
class DataModelAdmin(ResourceAdmin):
    list_display = ("name", "warehouse", "workspace_name", "updated_at")
    list_select_related = ("workspace", "warehouse")
    autocomplete_fields = ("workspace", "warehouse")


@admin.register(Destination)
class DestinationAdmin(ResourceAdmin):
    list_display = ("name", "kind", "workspace_name", "updated_at")
    list_filter = ("kind",)


@admin.register(Sync)
class SyncAdmin(ResourceAdmin):
    list_display = ("name", "model", "destination", "schedule", "enabled", "workspace_name")
    list_filter = ("schedule", "enabled")
    list_select_related = ("workspace", "model", "destination")
    autocomplete_fields = ("workspace", "model", "destination")


@admin.register(SyncRun)
class SyncRunAdmin(ViewOnlyAdmin):
    """Millions of rows: no full COUNT, no date hierarchy, newest first by primary key."""

    list_display = (
        "public_id",
        "sync",
        "workspace",
        "status",
        "started_at",
        "finished_at",
        "rows_processed",
        "bytes_processed",
    )
    list_filter = ("status",)
    search_fields = ("=public_id", "=sync__public_id")
    list_select_related = ("sync", "workspace")
    autocomplete_fields = ("sync", "workspace")
    ordering = ("-pk",)
    paginator = EstimatedCountPaginator
    show_full_result_count = False
