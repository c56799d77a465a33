"""Reads at org level, scoped to what the viewer may see (another org fails like a missing one)."""

from __future__ import annotations

from django.db.models import Count, IntegerField, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce

from config.errors import NotFound
from config.roles import Role
from members.models import OrgMembership
from orgs.models import Organization
from workspaces.models import (
    DataModel,
    Destination,
    Sync,
    Warehouse,
    Workspace,
    WorkspaceMembership,
)


def org_for_viewer(user, *, slug: str | None = None, public_id: str | None = None):
    """(org, viewer's role). Raises NotFound unless the viewer is a member of a live org."""
    if user is None or not user.is_authenticated:
        raise NotFound("No such organization.")
    lookup = {"organization__slug": slug} if slug else {"organization__public_id": public_id}
    membership = (
        OrgMembership.objects.select_related("organization")
        .filter(user=user, organization__deleted_at__isnull=True, **lookup)
        .first()
    )
    if membership is None:
        raise NotFound("No such organization.")
    return membership.organization, Role(membership.role)


def orgs_of(user):
    return Organization.objects.alive().filter(memberships__user=user).order_by("name")


def _count_of(model):
    """A correlated COUNT of `model` rows per workspace, for annotating workspace lists."""
    sub = (
        model.objects.filter(workspace=OuterRef("pk"))
        .order_by()
        .values("workspace")
        .annotate(c=Count("pk"))
        .values("c")
    )
    return Coalesce(Subquery(sub, output_field=IntegerField()), 0)


def linked_workspaces(org: Organization):
    """The org's workspaces with member and resource counts, in one query."""
    return (
        Workspace.objects.filter(organization=org)
        .annotate(
            member_count=_count_of(WorkspaceMembership),
            warehouse_count=_count_of(Warehouse),
            model_count=_count_of(DataModel),
            destination_count=_count_of(Destination),
            sync_count=_count_of(Sync),
        )
        .order_by("name")
    )


def linkable_workspaces(user, org: Organization):
    """Workspaces the user owns or administers that are in no organization."""
    return Workspace.objects.filter(
        organization__isnull=True,
        memberships__user=user,
        memberships__role__gte=Role.ADMIN,
    ).order_by("name")


def unlink_impact(workspace: Workspace) -> list[WorkspaceMembership]:
    """Who loses access when the workspace is unlinked: everyone whose access came via the org."""
    return list(
        WorkspaceMembership.objects.filter(
            workspace=workspace, source=WorkspaceMembership.Source.ORG
        )
        .select_related("user")
        .order_by("user__full_name", "user__email")
    )


def member_removal_impact(org: Organization, membership: OrgMembership):
    """Every linked-workspace membership the member loses when removed from the org."""
    return list(
        WorkspaceMembership.objects.filter(user=membership.user_id, workspace__organization=org)
        .select_related("workspace")
        .order_by("workspace__name")
    )


def org_delete_impact(org: Organization) -> dict:
    workspaces = list(Workspace.objects.filter(organization=org).order_by("name"))
    converted = WorkspaceMembership.objects.filter(
        workspace__organization=org, source=WorkspaceMembership.Source.ORG
    ).count()
    return {
        "workspaces": workspaces,
        "grants_converted": converted,
        "members": org.memberships.count(),
        "pending_invitations": org.invitations.filter(status="pending").count(),
    }


def has_owner_outside(org: Organization, exclude_user_id: int) -> bool:
    return org.memberships.filter(Q(role=Role.OWNER) & ~Q(user_id=exclude_user_id)).exists()
