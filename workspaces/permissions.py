"""Inside a workspace the workspace role decides (docs/rules.md §3), raised further by org governance."""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING

from config.errors import PermissionDenied
from config.roles import Role, require_role, role_at_least

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser

    from members.models import User
    from workspaces.models import Workspace


class WorkspaceCapability(StrEnum):
    VIEW = "view this workspace"
    RUN_SYNCS = "run syncs"
    WRITE_RESOURCES = "create, change or delete warehouses and models"
    WRITE_SYNCS = "create, change or delete syncs and destinations"
    MANAGE_MEMBERS = "manage this workspace's members"
    MANAGE_OWNERS = "grant or remove the workspace owner role"
    DELETE_WORKSPACE = "delete this workspace"
    # Linking hands control of the workspace's access to an org's owners and admins, so only
    # someone who already holds that control may hand it over (docs/rules.md invariant 6).
    LINK_TO_ORG = "link this workspace to an organization or create an organization from it"


WORKSPACE_CAPABILITIES: dict[WorkspaceCapability, Role] = {
    WorkspaceCapability.VIEW: Role.MEMBER,
    WorkspaceCapability.RUN_SYNCS: Role.MEMBER,
    WorkspaceCapability.WRITE_RESOURCES: Role.ADMIN,
    WorkspaceCapability.WRITE_SYNCS: Role.ADMIN,
    WorkspaceCapability.MANAGE_MEMBERS: Role.ADMIN,
    WorkspaceCapability.MANAGE_OWNERS: Role.OWNER,
    WorkspaceCapability.DELETE_WORKSPACE: Role.OWNER,
    WorkspaceCapability.LINK_TO_ORG: Role.OWNER,
}


def ensure_not_suspended(user: User | AnonymousUser | None, workspace: Workspace) -> None:
    """A member suspended from the workspace's org cannot use it (pages, API, services) until
    unsuspended; their membership stays. Reached through the reverse relation, so this layer
    does not import members."""
    if not workspace.organization_id or user is None or not user.is_authenticated:
        return
    if user.org_memberships.filter(
        organization_id=workspace.organization_id, suspended_at__isnull=False
    ).exists():
        raise PermissionDenied(
            f"Your access to {workspace.name} is suspended by its organization. Ask one of the "
            "organization's owners or admins to unsuspend you.",
            code="suspended",
        )


def workspace_role_of(user: User | AnonymousUser | None, workspace: Workspace) -> Role | None:
    from workspaces.models import WorkspaceMembership

    if user is None or not user.is_authenticated:
        return None
    role = (
        WorkspaceMembership.objects.filter(user=user, workspace=workspace)
        .values_list("role", flat=True)
        .first()
    )
    if role is not None:
        ensure_not_suspended(user, workspace)
    return Role(role) if role is not None else None


def required_role(workspace: Workspace, capability: WorkspaceCapability) -> Role:
    """The role a capability needs here: the table's, raised (never lowered) by org governance."""
    needed = WORKSPACE_CAPABILITIES[capability]
    if capability == WorkspaceCapability.WRITE_SYNCS and workspace.organization_id:
        from orgs.governance import sync_min_role

        needed = max(needed, sync_min_role(workspace.organization_id))
    return needed


def workspace_capabilities(role: Role | None, workspace: Workspace) -> dict[str, bool]:
    """{capability name: allowed} for templates, e.g. `request.workspace_can.DELETE_WORKSPACE`.

    WRITE_SYNCS is left out: governance can raise it, so pages ask `required_role` for it.
    """
    return {
        cap.name: role_at_least(role, WORKSPACE_CAPABILITIES[cap])
        for cap in WorkspaceCapability
        if cap != WorkspaceCapability.WRITE_SYNCS
    }


def require_workspace(
    role: Role | None, workspace: Workspace, capability: WorkspaceCapability
) -> Role:
    """Non-members get NotFound (the workspace's existence is not revealed); a too-low role 403."""
    return require_role(
        role,
        required_role(workspace, capability),
        missing="No such workspace.",
        where=f"in {workspace.name}",
        doing=capability.value,
    )


def require_workspace_capability(
    user: User | AnonymousUser | None, workspace: Workspace, capability: WorkspaceCapability
) -> Role:
    return require_workspace(workspace_role_of(user, workspace), workspace, capability)
