"""Required single sign-on (governance policy `require_sso`).

While an org requires SSO, nobody whose email is in one of its verified domains may sign in
with a password; they use "Sign in with SSO". The org's owners keep a break-glass way in:
password plus two-factor code, audited (`sso.break_glass_signin`), so an IdP outage or a
broken configuration cannot lock the org out of its own settings.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

from django.contrib import messages
from django.http import HttpResponse, HttpResponseRedirect
from django.urls import reverse

from config.errors import Conflict
from config.roles import Role
from orgs.models import GovernancePolicy, Organization
from orgs.sso.domains import org_for_email, verified_domains
from orgs.sso.models import OidcConnection, SamlConnection


def requires_sso(organization_id: int) -> bool:
    return GovernancePolicy.objects.filter(
        organization_id=organization_id, kind=GovernancePolicy.Kind.REQUIRE_SSO, value__enabled=True
    ).exists()


def refuse_while_required(org: Organization, doing: str) -> None:
    """Removing or turning off the org's IdP while SSO is required would leave its people with
    no way in (a password is refused to them): refused until the policy is lifted."""
    if requires_sso(org.pk):
        raise Conflict(
            f"Single sign-on is required by the governance policy, so you cannot {doing}; "
            "remove that policy first.",
            code="sso_required",
        )


def sso_protocol(org: Organization) -> str | None:
    """How the org's people sign in ("saml" or "oidc"), or None when neither is on. An org has
    at most one of the two (saml_configure and oidc_configure refuse the second)."""
    if SamlConnection.objects.filter(organization=org, enabled=True).exists():
        return "saml"
    if OidcConnection.objects.filter(organization=org, enabled=True).exists():
        return "oidc"
    return None


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
        if sso_protocol(org) is None:
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


# --- sessions: required SSO on every page of the org, not only at sign-in --------------------

SESSION_SSO_ORGS = "sso_orgs"  # orgs whose identity provider signed this session in
SESSION_BREAK_GLASS = "sso_break_glass"  # orgs an owner entered by password + 2FA


def session_gate(
    request, organization_id: int | None, *, required: bool | None = None
) -> HttpResponse | None:
    """A redirect to the org's SSO when it requires SSO of this person and this session did
    not come through it (a password session from before the policy, for example).
    `required`: the caller already read the policy."""
    from orgs.sso.domains import verified_domain_of

    user = getattr(request, "user", None)
    if not organization_id or user is None or not user.is_authenticated:
        return None
    if not (requires_sso(organization_id) if required is None else required):
        return None
    if verified_domain_of(user.email.rsplit("@", 1)[-1]) != organization_id:
        return None
    session = request.session
    if organization_id in session.get(SESSION_SSO_ORGS, []):
        return None
    if organization_id in session.get(SESSION_BREAK_GLASS, []):
        return None
    from members.models import OrgMembership

    if OrgMembership.objects.filter(
        user=user, organization_id=organization_id, role__gte=Role.OWNER
    ).exists():
        return None  # owners keep their way in (new password sign-ins need 2FA, see above)
    org = Organization.objects.filter(pk=organization_id).first()
    if org is None:
        return None
    messages.warning(
        request, f"{org.name} requires single sign-on. Sign in through it to continue."
    )
    url = reverse("sso:login", args=[org.slug]) + "?" + urlencode({"next": request.get_full_path()})
    if getattr(request, "htmx", False):
        response = HttpResponse(status=204)
        response["HX-Redirect"] = url
        return response
    return HttpResponseRedirect(url)
