"""Reading the governance policies an org's workspaces inherit (SPEC §9).

Writes (create/update/delete a policy, audited as governance.*) live in orgs.services.
Each rule is enforced by the service it governs, which calls one of these readers.
"""

from __future__ import annotations

from config.errors import ValidationFailed
from config.roles import Role
from orgs.models import GovernancePolicy

Kind = GovernancePolicy.Kind


def policy_value(organization_id: int, kind: str) -> dict | None:
    return (
        GovernancePolicy.objects.filter(organization_id=organization_id, kind=kind)
        .values_list("value", flat=True)
        .first()
    )


def sync_min_role(organization_id: int) -> Role:
    """Workspace role needed to create/modify/delete syncs and destinations (never below admin)."""
    value = policy_value(organization_id, Kind.SYNC_MIN_ROLE) or {}
    return max(Role.ADMIN, Role(value.get("role", Role.ADMIN)))


def allowed_email_domains(organization_id: int) -> list[str]:
    value = policy_value(organization_id, Kind.ALLOWED_EMAIL_DOMAINS) or {}
    return [d.lower() for d in value.get("domains", [])]


def check_invite_email_allowed(organization_id: int, email: str) -> None:
    """Raises ValidationFailed when the org restricts invitations to other email domains."""
    domains = allowed_email_domains(organization_id)
    if not domains:
        return
    domain = email.rsplit("@", 1)[-1].lower()
    if domain not in domains:
        raise ValidationFailed(
            f"{email} is not allowed: this organization only invites addresses at "
            + ", ".join(domains)
            + ".",
            fields={"email": "Email domain not allowed by the organization's policy."},
            code="email_domain_not_allowed",
        )


def default_workspace_grant(organization_id: int) -> tuple[list[str], Role] | None:
    """(workspace public ids, role) every new org member gets, or None."""
    value = policy_value(organization_id, Kind.DEFAULT_WORKSPACE_GRANT)
    if not value or not value.get("workspaces"):
        return None
    return list(value["workspaces"]), Role(value.get("role", Role.MEMBER))


def requires_two_factor(organization_id: int) -> bool:
    value = policy_value(organization_id, Kind.REQUIRE_TWO_FACTOR) or {}
    return bool(value.get("enabled"))
