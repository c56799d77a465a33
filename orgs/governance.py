"""Reading the governance policies an org's workspaces inherit (docs/rules.md §9).

Writes (set/delete a policy, audited as governance.*) live in orgs.governance_services.
Each rule is enforced by the service it governs, which calls one of these readers. A workspace
inherits from its *current* org: after unlinking, nothing applies to it any more.
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


def check_email_allowed(organization_id: int, email: str, *, doing: str) -> None:
    """The allowed-domains policy for any way into the org's workspaces, not only invitations."""
    domains = allowed_email_domains(organization_id)
    if domains and email.rsplit("@", 1)[-1].lower() not in domains:
        raise ValidationFailed(
            f"{email} cannot {doing}: this organization only allows addresses at "
            + ", ".join(domains)
            + ".",
            fields={"email": "Email domain not allowed by the organization's policy."},
            code="email_domain_not_allowed",
        )


def check_invite_email_allowed(
    organization_id: int, email: str, *, domains: list[str] | None = None
) -> None:
    """Raises ValidationFailed when the org restricts invitations to other email domains.

    Pass `domains` (from allowed_email_domains) when checking many emails: one query, not one each.
    """
    if domains is None:
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


# --- what the pages show ---------------------------------------------------------------------


def _two_factor_rule(value: dict) -> str:
    return (
        "Required for everyone who uses the workspace." if value.get("enabled") else "Not required."
    )


def policies_for_workspace(workspace) -> list[tuple[str, str]] | None:
    """The policies the workspace inherits as (title, what it means here), read-only, in one
    query; None when the workspace is in no organization (nothing is inherited)."""
    if not workspace.organization_id:
        return None
    values = dict(
        GovernancePolicy.objects.filter(organization_id=workspace.organization_id).values_list(
            "kind", "value"
        )
    )
    role = max(Role.ADMIN, Role((values.get(Kind.SYNC_MIN_ROLE) or {}).get("role", Role.ADMIN)))
    domains = (values.get(Kind.ALLOWED_EMAIL_DOMAINS) or {}).get("domains") or []
    grant = values.get(Kind.DEFAULT_WORKSPACE_GRANT) or {}
    granted_here = workspace.public_id in (grant.get("workspaces") or [])
    return [
        (
            "Syncs and destinations",
            f"Creating, changing or deleting them needs the {role.label} role or higher.",
        ),
        (
            "Invitations",
            ("Only addresses at " + ", ".join(domains) + ".") if domains else "Any email domain.",
        ),
        (
            "Default access",
            f"New organization members get {Role(grant.get('role', Role.MEMBER)).label} access here."
            if granted_here
            else "New organization members get no access here.",
        ),
        ("Two-factor sign-in", _two_factor_rule(values.get(Kind.REQUIRE_TWO_FACTOR) or {})),
        (
            "Single sign-on",
            "Required for addresses in the organization's verified domains (owners keep a "
            "password and two-factor way in)."
            if (values.get(Kind.REQUIRE_SSO) or {}).get("enabled")
            else "Optional.",
        ),
    ]


def policies_for_org(organization) -> dict[str, GovernancePolicy]:
    """The org's policies by kind (with who last changed them), for the governance page."""
    return {
        p.kind: p
        for p in GovernancePolicy.objects.filter(organization=organization).select_related(
            "updated_by"
        )
    }
