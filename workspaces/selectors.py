"""Reads inside workspaces, scoped to the viewer."""

from __future__ import annotations

from config.errors import NotFound
from config.roles import Role
from workspaces.models import Workspace, WorkspaceMembership


def workspaces_of(user):
    """Every workspace the person can enter, with their role, for the switcher."""
    if not user.is_authenticated:
        return WorkspaceMembership.objects.none()
    return (
        WorkspaceMembership.objects.filter(user=user)
        .select_related("workspace", "workspace__organization")
        .order_by("workspace__name")
    )


def workspace_for_viewer(user, slug: str) -> tuple[Workspace, Role]:
    """(workspace, role); NotFound unless the viewer is a member (existence is not revealed)."""
    membership = (
        WorkspaceMembership.objects.select_related("workspace", "workspace__organization")
        .filter(user=user, workspace__slug=slug)
        .first()
        if user.is_authenticated
        else None
    )
    if membership is None:
        raise NotFound("No such workspace.")
    return membership.workspace, Role(membership.role)


def workspace_members(workspace: Workspace):
    return (
        WorkspaceMembership.objects.filter(workspace=workspace)
        .select_related("user", "granted_by")
        .order_by("-role", "user__full_name", "user__email")
    )
