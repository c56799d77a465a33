"""Reads inside workspaces, scoped to the viewer."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from django.db.models import (
    Count,
    Exists,
    IntegerField,
    Model,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
)
from django.db.models.functions import Coalesce
from django.utils import timezone

from config.errors import NotFound
from config.roles import Role
from workspaces.models import (
    DataModel,
    Destination,
    Sync,
    SyncRun,
    Warehouse,
    Workspace,
    WorkspaceMembership,
)
from workspaces.permissions import ensure_not_suspended
from workspaces.services import RESOURCE_MODELS

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser

    from members.models import User


def workspaces_of(user: User | AnonymousUser) -> QuerySet[WorkspaceMembership]:
    """Every workspace the person can enter, with their role, for the switcher."""
    if not user.is_authenticated:
        return WorkspaceMembership.objects.none()
    # A workspace of an org that suspended the person is not offered (they would be refused).
    return (
        WorkspaceMembership.objects.filter(user=user)
        .exclude(
            Exists(
                user.org_memberships.filter(
                    organization=OuterRef("workspace__organization"), suspended_at__isnull=False
                )
            )
        )
        .select_related("workspace", "workspace__organization")
        .order_by("workspace__name")
    )


def workspace_for_viewer(
    user: User | AnonymousUser, slug: str | None = None, *, public_id: str | None = None
) -> tuple[Workspace, Role]:
    """(workspace, role) by slug (pages) or public id (the API); NotFound unless the viewer is a
    member (existence is not revealed)."""
    lookup: dict[str, str | None] = (
        {"workspace__slug": slug} if slug else {"workspace__public_id": public_id}
    )
    membership = (
        WorkspaceMembership.objects.select_related("workspace", "workspace__organization")
        .filter(user=user, **lookup)
        .first()
        if user.is_authenticated
        else None
    )
    if membership is None:
        raise NotFound("No such workspace.")
    ensure_not_suspended(user, membership.workspace)
    return membership.workspace, Role(membership.role)


def workspace_members(workspace: Workspace) -> QuerySet[WorkspaceMembership]:
    return (
        WorkspaceMembership.objects.filter(workspace=workspace)
        .select_related("user", "granted_by")
        .order_by("-role", "user__full_name", "user__email")
    )


# --- resource pages ----------------------------------------------------------------------


def _count_of(model: type[Model], fk: str = "workspace") -> Coalesce:
    """A correlated COUNT(*) of `model` rows pointing at the outer row, as one SQL expression."""
    rows = (
        model._default_manager.filter(**{fk: OuterRef("pk")})
        .order_by()
        .values(fk)
        .annotate(n=Count("pk"))
        .values("n")
    )
    return Coalesce(Subquery(rows, output_field=IntegerField()), 0)


def workspace_counts(workspace: Workspace) -> dict:
    """Resource and member counts of one workspace, in one query."""
    return (
        Workspace.objects.filter(pk=workspace.pk)
        .annotate(
            warehouses=_count_of(Warehouse),
            models=_count_of(DataModel),
            destinations=_count_of(Destination),
            syncs=_count_of(Sync),
            members=_count_of(WorkspaceMembership),
        )
        .values("warehouses", "models", "destinations", "syncs", "members")
        .get()
    )


def run_stats(workspace: Workspace, days: int = 30) -> dict:
    """Runs, failures and rows of the last `days` days (served by the (workspace, finished_at) index)."""
    since = timezone.now() - timedelta(days=days)
    stats = SyncRun.objects.filter(workspace=workspace, finished_at__gte=since).aggregate(
        runs=Count("pk"),
        failed=Count("pk", filter=Q(status=SyncRun.Status.FAILED)),
        rows=Sum("rows_processed"),
    )
    stats["rows"] = stats["rows"] or 0
    stats["days"] = days
    stats["success_rate"] = (
        round(100 * (stats["runs"] - stats["failed"]) / stats["runs"], 1) if stats["runs"] else None
    )
    return stats


def recent_runs(workspace: Workspace, limit: int = 10) -> QuerySet[SyncRun]:
    return (
        SyncRun.objects.filter(workspace=workspace)
        .select_related("sync")
        .order_by("-finished_at", "-pk")[:limit]
    )


def resources_of(workspace: Workspace, kind: str) -> QuerySet[Any]:
    """One kind of resource of the workspace, with what the list page shows annotated in SQL."""
    qs: QuerySet[Any] = (
        RESOURCE_MODELS[kind].objects.filter(workspace=workspace).order_by("name", "pk")
    )
    if kind == "warehouse":
        qs = qs.annotate(usage=_count_of(DataModel, "warehouse"))
    elif kind in ("model", "destination"):
        qs = qs.annotate(usage=_count_of(Sync, kind))
    if kind == "model":
        qs = qs.select_related("warehouse")
    if kind == "sync":
        last = SyncRun.objects.filter(sync=OuterRef("pk")).order_by("-finished_at", "-pk")
        qs = qs.select_related("model", "destination").annotate(
            last_status=Subquery(last.values("status")[:1]),
            last_finished_at=Subquery(last.values("finished_at")[:1]),
        )
    return qs


def sync_runs(sync: Sync, status: str | None = None) -> QuerySet[SyncRun]:
    qs = SyncRun.objects.filter(sync=sync).order_by("-finished_at", "-pk")
    if status in SyncRun.Status.values:
        qs = qs.filter(status=status)
    return qs
