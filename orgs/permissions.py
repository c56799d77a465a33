"""docs/rules.md §3 in code: the one table of org capabilities and the checks every page, API and service use."""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING

from config.errors import PermissionDenied
from config.roles import Role, require_role, role_at_least

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser

    from members.models import User
    from orgs.models import Organization


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
    MANAGE_SSO = "manage verified domains and single sign-on"
    UPDATE_ORG = "update the organization's name and slug"
    DELETE_ORG = "delete the organization"
    # Access lifecycle (issue 17): beyond SPEC §3, decided here and written into the README.
    SUSPEND_MEMBERS = "suspend or unsuspend members below owner"
    REINSTATE_MEMBERS = "reinstate members removed in the last 90 days"
    # Being a reviewer is decided by the review itself (named, or a workspace's owners).
    REVIEW_ACCESS = "see access reviews and decide the grants a review assigns to you"
    START_ACCESS_REVIEWS = "start, finish and read access reviews"
    MANAGE_AUDIT_STREAMING = "add, remove, re-enable and replay audit stream destinations"
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
    OrgCapability.MANAGE_SSO: Role.OWNER,
    OrgCapability.UPDATE_ORG: Role.ADMIN,
    OrgCapability.DELETE_ORG: Role.OWNER,
    OrgCapability.SUSPEND_MEMBERS: Role.ADMIN,
    OrgCapability.REINSTATE_MEMBERS: Role.ADMIN,
    OrgCapability.REVIEW_ACCESS: Role.MEMBER,
    OrgCapability.START_ACCESS_REVIEWS: Role.OWNER,
    OrgCapability.MANAGE_AUDIT_STREAMING: Role.OWNER,
    OrgCapability.MANAGE_SCIM: Role.OWNER,
}


def org_role_of(user: User | AnonymousUser | None, organization: Organization | int) -> Role | None:
    """The acting user's org role, or None when they are not a member.

    A suspended member holds their role but may not act in the org: every service asks this
    for its actor, so a suspended actor is refused everywhere (403, code `suspended`)."""
    from members.models import OrgMembership

    if user is None or not user.is_authenticated:
        return None
    row = (
        OrgMembership.objects.filter(user=user, organization=organization)
        .values_list("role", "suspended_at")
        .first()
    )
    if row is None:
        return None
    if row[1] is not None:
        raise suspended_error(organization)
    return Role(row[0])


def suspended_error(organization: Organization | int) -> PermissionDenied:
    name = getattr(organization, "name", "this organization")
    return PermissionDenied(
        f"Your access to {name} is suspended. Ask one of its owners or admins to unsuspend you.",
        code="suspended",
    )


def org_can(role: Role | None, capability: OrgCapability) -> bool:
    return role_at_least(role, ORG_CAPABILITIES[capability])


def org_capabilities(role: Role | None) -> dict[str, bool]:
    """{capability name: allowed} for templates, e.g. `request.org_can.VIEW_USAGE_AUDIT`."""
    return {cap.name: org_can(role, cap) for cap in OrgCapability}


def require_org(role: Role | None, capability: OrgCapability) -> Role:
    """Non-members get NotFound (the org's existence is not revealed); a too-low role gets 403."""
    return require_role(
        role,
        ORG_CAPABILITIES[capability],
        missing="No such organization.",
        where="in this organization",
        doing=capability.value,
    )


def require_org_capability(
    user: User | AnonymousUser | None, organization: Organization, capability: OrgCapability
) -> Role:
    """Look up the user's role and require the capability; returns the role."""
    return require_org(org_role_of(user, organization), capability)
