"""Required single sign-on (governance policy `require_sso`).

While an org requires SSO, nobody whose email is in one of its verified domains may sign in
with a password; they use "Sign in with SSO". The org's owners keep a break-glass way in:
password plus two-factor code, audited (`sso.break_glass_signin`), so an IdP outage or a
broken configuration cannot lock the org out of its own settings.
"""

from __future__ import annotations

from dataclasses import dataclass

from config.errors import Conflict
from config.roles import Role
from orgs.models import GovernancePolicy, Organization
from orgs.sso.domains import org_for_email, verified_domains
from orgs.sso.models import SamlConnection


def requires_sso(organization_id: int) -> bool:
    return GovernancePolicy.objects.filter(
        organization_id=organization_id, kind=GovernancePolicy.Kind.REQUIRE_SSO, value__enabled=True
    ).exists()


def clean_require_sso(org: Organization, value: dict) -> dict:
    """The policy's value; turning it on needs a working IdP and a verified domain first."""
    from orgs.governance_services import _invalid

    enabled = value.get("enabled")
    if isinstance(enabled, str):
        word = enabled.strip().lower()
        enabled = {"1": True, "true": True, "on": True, "yes": True}.get(
            word, {"0": False, "false": False, "off": False, "no": False}.get(word, enabled)
        )
    if not isinstance(enabled, bool):
        raise _invalid("Say whether single sign-on is required (true or false).", "enabled")
    if enabled:
        if not SamlConnection.objects.filter(organization=org, enabled=True).exists():
            raise Conflict(
                "Set up single sign-on first (Organization › Single sign-on), so people have a "
                "way to sign in.",
                code="sso_not_configured",
            )
        if not verified_domains(org):
            raise Conflict(
                "Verify at least one email domain first: required SSO applies to the people "
                "whose addresses are in the organization's verified domains.",
                code="no_verified_domain",
            )
    return {"enabled": enabled}


@dataclass
class PasswordGate:
    allowed: bool
    organization: Organization | None = None
    break_glass: bool = False
    message: str = ""


def password_gate(user) -> PasswordGate:
    """May this person sign in with their password (checked after the password was right)?"""
    from members.models import OrgMembership
    from members.two_factor import has_two_factor

    org = org_for_email(user.email)
    if org is None or not requires_sso(org.pk):
        return PasswordGate(allowed=True)
    is_owner = OrgMembership.objects.filter(
        user=user, organization=org, role__gte=Role.OWNER
    ).exists()
    if is_owner and has_two_factor(user):
        return PasswordGate(allowed=True, organization=org, break_glass=True)
    if is_owner:
        return PasswordGate(
            allowed=False,
            organization=org,
            message=f"{org.name} requires single sign-on. As an owner you may also sign in "
            "with your password and a two-factor code, but your account has no two-factor "
            "sign-in: use Sign in with SSO, then turn it on.",
        )
    return PasswordGate(
        allowed=False,
        organization=org,
        message=f"{org.name} requires single sign-on for {user.email.rsplit('@', 1)[1]} "
        "addresses. Use Sign in with SSO.",
    )
