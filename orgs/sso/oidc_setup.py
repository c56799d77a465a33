"""An organization's OpenID provider, as its owners set it up: the discovery document read and
checked when they save, the client id, and the client secret sealed at rest.

One protocol per org: oidc_configure refuses while the org has a SAML connection, and
saml_configure refuses while it has this one (both lock the org first).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.db import transaction

from audit.services import record
from config.errors import Conflict, NotFound, ValidationFailed
from members.models import User
from orgs.models import Organization
from orgs.permissions import OrgCapability, require_org_capability
from orgs.sso.enforcement import refuse_while_required
from orgs.sso.models import OidcConnection, SamlConnection
from orgs.sso.oidc import ALGORITHMS, DISCOVERY_PATH, ProviderProblem, get_json
from orgs.sso.outbound import outbound_url_problem
from orgs.sso.sealed import seal, unseal


@dataclass
class Discovery:
    issuer: str
    discovery_url: str
    metadata: dict


def discover(issuer_or_url: str) -> Discovery:
    """Read and check the provider's discovery document; ValidationFailed saying what is wrong."""

    def bad(message):
        return ValidationFailed(message, fields={"issuer": message}, code="invalid_discovery")

    given = (issuer_or_url or "").strip()
    if not given:
        raise bad("Give your identity provider's issuer URL (https://…).")
    if len(given) > 500:
        raise bad("That URL is too long (over 500 characters).")
    if given.endswith(DISCOVERY_PATH):
        expected_issuer, url = given[: -len(DISCOVERY_PATH)], given
    else:
        expected_issuer, url = given, given.rstrip("/") + DISCOVERY_PATH
    problem = outbound_url_problem(url, what="the issuer URL")
    if problem:
        raise bad(problem)
    try:
        doc = get_json(url)
    except ProviderProblem as exc:
        raise bad(f"The discovery document at {url} {exc.message}.") from None
    issuer = doc.get("issuer")
    if not isinstance(issuer, str) or issuer.rstrip("/") != expected_issuer.rstrip("/"):
        raise bad(
            f"The discovery document names another issuer ({str(issuer)[:200]}); give the "
            "issuer URL exactly as your identity provider shows it."
        )
    endpoints = {}
    for name in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
        value = doc.get(name)
        if not isinstance(value, str) or not value:
            raise bad(f"The discovery document has no {name}.")
        if name == "authorization_endpoint":  # the browser goes there, we do not
            schemes = (
                ("https://", "http://") if settings.SSO_METADATA_ALLOW_PRIVATE else ("https://",)
            )
            problem = None if value.startswith(schemes) else "it must be an https:// URL."
        else:  # we call these ourselves
            problem = outbound_url_problem(value, what=f"the {name}")
        if problem:
            raise bad(f"The discovery document's {name}: {problem}")
        endpoints[name] = value
    if "code" not in (doc.get("response_types_supported") or ["code"]):
        raise bad("The provider does not offer the authorization code flow.")
    methods = doc.get("code_challenge_methods_supported")
    if methods is not None and "S256" not in methods:
        raise bad("The provider does not support PKCE with S256.")
    offered = doc.get("id_token_signing_alg_values_supported") or ["RS256"]
    algorithms = [a for a in ALGORITHMS if a in offered]
    if not algorithms:
        raise bad("The provider signs ID tokens only with algorithms we do not accept (use RS256).")
    auth_methods = doc.get("token_endpoint_auth_methods_supported") or ["client_secret_basic"]
    if "client_secret_basic" in auth_methods:
        token_auth = "client_secret_basic"
    elif "client_secret_post" in auth_methods:
        token_auth = "client_secret_post"
    else:
        raise bad("The provider accepts no client secret at its token endpoint.")
    return Discovery(
        issuer=issuer,
        discovery_url=url,
        metadata={**endpoints, "algorithms": algorithms, "token_auth": token_auth},
    )


# --- the owners' configuration ---------------------------------------------------------------


def _clean_client_id(value: str) -> str:
    value = (value or "").strip()
    if not value or len(value) > 255 or any(ch.isspace() for ch in value):
        message = "Give the client id your identity provider shows (no spaces, at most 255)."
        raise ValidationFailed(message, fields={"client_id": message})
    return value


def oidc_configure(
    *,
    actor: User,
    org: Organization,
    issuer: str,
    client_id: str,
    client_secret: str = "",
    enabled: bool = True,
) -> OidcConnection:
    """Set (or replace) the org's OpenID provider. An empty `client_secret` keeps the stored
    one. The provider's discovery document is read first, outside any transaction of ours, so
    no connection waits idle in a transaction on someone else's server."""
    require_org_capability(actor, org, OrgCapability.MANAGE_SSO)  # before calling anyone
    client_id = _clean_client_id(client_id)
    client_secret = (client_secret or "").strip()
    if len(client_secret) > 1000:
        message = "That client secret is too long (over 1000 characters)."
        raise ValidationFailed(message, fields={"client_secret": message})
    if not client_secret and not OidcConnection.objects.filter(organization=org).exists():
        message = "Give the client secret your identity provider shows."
        raise ValidationFailed(message, fields={"client_secret": message})
    found = discover(issuer)
    with transaction.atomic():
        return _oidc_store(
            actor=actor,
            org=org,
            found=found,
            client_id=client_id,
            client_secret=client_secret,
            enabled=enabled,
        )


def _oidc_store(
    *,
    actor: User,
    org: Organization,
    found: Discovery,
    client_id: str,
    client_secret: str,
    enabled: bool,
) -> OidcConnection:
    from orgs.services import lock_org

    org = lock_org(org)
    require_org_capability(actor, org, OrgCapability.MANAGE_SSO)
    if SamlConnection.objects.filter(organization=org).exists():
        raise Conflict(
            f"{org.name} signs in with SAML. An organization uses one single sign-on protocol: "
            "remove the SAML setup first.",
            code="sso_protocol_in_use",
        )
    if not enabled:
        refuse_while_required(org, "turn OpenID Connect off")
    values = {
        "issuer": found.issuer,
        "discovery_url": found.discovery_url,
        "provider_metadata": found.metadata,
        "client_id": client_id,
        "enabled": bool(enabled),
    }
    conn = OidcConnection.objects.select_for_update().filter(organization=org).first()
    before = None
    secret_changed = bool(client_secret)
    if conn is not None:
        before = {k: getattr(conn, k) for k in values}
        secret_changed = bool(client_secret) and unseal(conn.client_secret_sealed) != client_secret
        if not secret_changed and all(getattr(conn, k) == v for k, v in values.items()):
            return conn
        for k, v in values.items():
            setattr(conn, k, v)
        if secret_changed:
            conn.client_secret_sealed = seal(client_secret)
        conn.updated_by = actor
        conn.save()
    else:
        conn = OidcConnection.objects.create(
            organization=org, updated_by=actor, client_secret_sealed=seal(client_secret), **values
        )
    record(
        actor=actor,
        action="sso.oidc_configured",
        organization=org,
        target=org,
        target_label=found.issuer,
        details={
            "before": before,
            "after": values,
            "client_secret_changed": secret_changed,  # never the secret itself
        },
    )
    return conn


@transaction.atomic
def oidc_remove(*, actor: User, org: Organization) -> None:
    """Forget the OpenID provider (refused while single sign-on is required)."""
    from orgs.services import lock_org

    org = lock_org(org)
    require_org_capability(actor, org, OrgCapability.MANAGE_SSO)
    conn = OidcConnection.objects.select_for_update().filter(organization=org).first()
    if conn is None:
        raise NotFound("OpenID Connect is not set up.", code="oidc_not_configured")
    refuse_while_required(org, "remove the OpenID provider")
    record(
        actor=actor,
        action="sso.oidc_removed",
        organization=org,
        target=org,
        target_label=conn.issuer,
        details={"issuer": conn.issuer, "client_id": conn.client_id},
    )
    conn.delete()
