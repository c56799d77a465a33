"""Reads at org level, scoped to what the viewer may see (another org fails like a missing one)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.db.models import Count, IntegerField, Model, OuterRef, QuerySet, Subquery
from django.db.models.functions import Coalesce

from config.errors import NotFound
from config.roles import Role
from members.models import OrgMembership
from orgs.models import Organization
from orgs.permissions import suspended_error
from workspaces.models import (
    DataModel,
    Destination,
    Sync,
    Warehouse,
    Workspace,
    WorkspaceMembership,
)
from workspaces.permissions import WORKSPACE_CAPABILITIES, WorkspaceCapability

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser

    from members.models import User


def org_for_viewer(
    user: User | AnonymousUser | None, *, slug: str | None = None, public_id: str | None = None
) -> tuple[Organization, Role]:
    """(org, viewer's role). Raises NotFound unless the viewer is a member of a live org."""
    if user is None or not user.is_authenticated:
        raise NotFound("No such organization.")
    lookup: dict[str, Any] = (
        {"organization__slug": slug} if slug else {"organization__public_id": public_id}
    )
    membership = (
        OrgMembership.objects.select_related("organization")
        .filter(user=user, organization__deleted_at__isnull=True, **lookup)
        .first()
    )
    if membership is None:
        raise NotFound("No such organization.")
    if membership.suspended_at is not None:
        # Pages (orgs.decorators) and the API (orgs.api.org_of) resolve the org here.
        raise suspended_error(membership.organization)
    return membership.organization, Role(membership.role)


def _count_of(model: type[Model]) -> Coalesce:
    """A correlated COUNT of `model` rows per workspace, for annotating workspace lists."""
    sub = (
        model._default_manager.filter(workspace=OuterRef("pk"))
        .order_by()
        .values("workspace")
        .annotate(c=Count("*"))  # COUNT(*) lets PostgreSQL count from the index alone
        .values("c")
    )
    return Coalesce(Subquery(sub, output_field=IntegerField()), 0)


def linked_workspaces(org: Organization, viewer: User | None = None) -> QuerySet[Workspace]:
    """The org's workspaces with member and resource counts, in one query.

    With `viewer`, each row also carries `viewer_role` (their workspace role, or None): an org
    role gives no workspace access, so the page links only the workspaces the viewer can enter.
    """
    qs = Workspace.objects.filter(organization=org).annotate(
        member_count=_count_of(WorkspaceMembership),
        warehouse_count=_count_of(Warehouse),
        model_count=_count_of(DataModel),
        destination_count=_count_of(Destination),
        sync_count=_count_of(Sync),
    )
    if viewer is not None:
        qs = qs.annotate(
            viewer_role=Subquery(
                WorkspaceMembership.objects.filter(workspace=OuterRef("pk"), user=viewer).values(
                    "role"
                )[:1]
            )
        )
    return qs.order_by("name")


def linked_workspace(org: Organization, public_id: str, viewer: User | None = None) -> Workspace:
    """One of the org's workspaces (with its counts); any other workspace is a 404."""
    workspace = linked_workspaces(org, viewer).filter(public_id=public_id).first()
    if workspace is None:
        raise NotFound("No such workspace in this organization.")
    return workspace


def workspace_by_public_id(public_id: str) -> Workspace:
    """Any workspace by public id; the service deciding what may be done with it checks roles."""
    workspace = Workspace.objects.filter(public_id=(public_id or "").strip()).first()
    if workspace is None:
        raise NotFound("No such workspace.")
    return workspace


def linkable_workspaces(user: User, org: Organization) -> QuerySet[Workspace]:
    """Workspaces in no organization whose role the user holds lets them link it (owners)."""
    return Workspace.objects.filter(
        organization__isnull=True,
        memberships__user=user,
        memberships__role__gte=WORKSPACE_CAPABILITIES[WorkspaceCapability.LINK_TO_ORG],
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


def member_removal_impact(
    org: Organization, membership: OrgMembership
) -> list[WorkspaceMembership]:
    """Every linked-workspace membership the member loses when removed from the org."""
    return list(
        WorkspaceMembership.objects.filter(user=membership.user_id, workspace__organization=org)
        .select_related("workspace")
        .order_by("workspace__name")
    )


def direct_owner_count(workspace: Workspace) -> int:
    """Owners whose access does not come from the org: they are who remain after an unlink."""
    return WorkspaceMembership.objects.filter(
        workspace=workspace, role=Role.OWNER, source=WorkspaceMembership.Source.DIRECT
    ).count()


def org_delete_impact(org: Organization) -> dict:
    """What deleting the org does: workspaces unlinked, grants converted to direct, what goes."""
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


def org_members(org: Organization, *, exclude_user: User | None = None) -> QuerySet[OrgMembership]:
    """The org's memberships with their people, highest role first (e.g. to pick a new owner)."""
    qs = OrgMembership.objects.filter(organization=org).select_related("user")
    if exclude_user is not None:
        qs = qs.exclude(user=exclude_user)
    return qs.order_by("-role", "user__full_name", "user__email")


def org_member_count(org: Organization) -> int:
    return org.memberships.count()


def slug_status(slug: str, *, current: str = "") -> tuple[bool | None, str]:
    """(available?, what to tell the person typing it); None when there is nothing to check."""
    from django.core.exceptions import ValidationError

    from orgs.models import slug_validator
    from orgs.services import slug_taken, suggest_slug

    slug = (slug or "").strip()
    if not slug:
        return None, "A slug will be generated from the name."
    try:
        slug_validator(slug)
    except ValidationError as exc:
        return False, exc.messages[0]
    if current and slug == current:
        return True, "This is the current slug."
    if slug_taken(slug):
        return False, f"{slug} is taken; try {suggest_slug(slug)}."
    return True, f"{slug} is available."
