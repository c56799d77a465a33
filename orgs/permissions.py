"""SPEC §3 in code: the one table of org capabilities and the checks every page, API and service use."""

from __future__ import annotations

from enum import StrEnum

from config.errors import NotFound, PermissionDenied
from config.roles import Role


class OrgCapability(StrEnum):
    VIEW = "view the organization and its member directory"
    VIEW_INVITATIONS = "see pending invitations (invitees' emails, grants and delivery state)"
    MANAGE_MEMBERS = "invite, resend or revoke invitations, remove members, change roles below owner and modify workspace access"
    MANAGE_OWNERS = "grant or remove the owner role and transfer ownership"
    LINK_WORKSPACES = "link or unlink workspaces"
    CREATE_DELETE_WORKSPACES = "create or delete workspaces in the organization"
    VIEW_USAGE_AUDIT = "see the usage dashboard and the audit log and export it"
    MANAGE_GOVERNANCE = "manage governance policies"
    MANAGE_BILLING = "manage billing settings, the plan and payment methods"
    UPDATE_ORG = "update the organization's name and slug"
    DELETE_ORG = "delete the organization"
    MANAGE_SCIM = "manage SCIM provisioning (tokens and group mappings)"


# capability → the lowest org role that has it.
ORG_CAPABILITIES: dict[OrgCapability, Role] = {
    OrgCapability.VIEW: Role.MEMBER,
    OrgCapability.VIEW_INVITATIONS: Role.ADMIN,
    OrgCapability.MANAGE_MEMBERS: Role.ADMIN,
    OrgCapability.MANAGE_OWNERS: Role.OWNER,
    OrgCapability.LINK_WORKSPACES: Role.ADMIN,
    OrgCapability.CREATE_DELETE_WORKSPACES: Role.OWNER,
    OrgCapability.VIEW_USAGE_AUDIT: Role.ADMIN,
    OrgCapability.MANAGE_GOVERNANCE: Role.ADMIN,
    OrgCapability.MANAGE_BILLING: Role.OWNER,
    OrgCapability.UPDATE_ORG: Role.ADMIN,
    OrgCapability.DELETE_ORG: Role.OWNER,
    OrgCapability.MANAGE_SCIM: Role.OWNER,
}


def org_role_of(user, organization) -> Role | None:
    """The user's org role, or None when they are not a member."""
    from members.models import OrgMembership

    if user is None or not user.is_authenticated:
        return None
    role = (
        OrgMembership.objects.filter(user=user, organization=organization)
        .values_list("role", flat=True)
        .first()
    )
    return Role(role) if role is not None else None


def org_can(role: Role | None, capability: OrgCapability) -> bool:
    return role is not None and role >= ORG_CAPABILITIES[capability]


def org_capabilities(role: Role | None) -> dict[str, bool]:
    """{capability name: allowed} for templates, e.g. `request.org_can.VIEW_USAGE_AUDIT`."""
    return {cap.name: org_can(role, cap) for cap in OrgCapability}


def require_org(role: Role | None, capability: OrgCapability) -> None:
    """Non-members get NotFound (the org's existence is not revealed); a too-low role gets 403."""
    if role is None:
        raise NotFound("No such organization.")
    needed = ORG_CAPABILITIES[capability]
    if role < needed:
        raise PermissionDenied(
            f"You need the {needed.label} role or higher in this organization to {capability.value}.",
            code="role_required",
        )


def require_org_capability(user, organization, capability: OrgCapability) -> Role:
    """Look up the user's role and require the capability; returns the role."""
    role = org_role_of(user, organization)
    require_org(role, capability)
    return role
