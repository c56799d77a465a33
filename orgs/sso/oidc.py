"""OpenID Connect for an organization (authlib's client, ID tokens checked with joserfc).

Authorization code flow with PKCE (S256); state, nonce and the PKCE verifier stay in the
browser's session. An ID token is accepted only if its signature verifies with a key the
provider publishes (JWKS; asymmetric algorithms only, never `none` or a shared-secret HMAC),
`iss` is the configured issuer, `aud` holds our client id (and `azp` is ours when present),
`exp`/`iat` are inside the 60 s clock skew, `nonce` is this browser's, and it carries an
`email` with `email_verified` true. The email must then be in one of the org's verified
domains (sso_provision_member) — the same sign-in path as SAML.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import requests
from authlib.common.security import generate_token
from authlib.integrations.base_client import OAuthError
from authlib.integrations.requests_client import OAuth2Session
from authlib.oidc.core import CodeIDToken
from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.urls import reverse
from joserfc import jwt
from joserfc.errors import (
    BadSignatureError,
    ClaimError,
    ExpiredTokenError,
    InvalidKeyIdError,
    JoseError,
    MissingClaimError,
    UnsupportedAlgorithmError,
)
from joserfc.jwk import KeySet

from audit.services import record
from config.errors import Conflict, DomainError, NotFound, ValidationFailed
from members.models import User
from orgs.models import Organization
from orgs.permissions import OrgCapability, require_org_capability
from orgs.sso.enforcement import requires_sso
from orgs.sso.models import OidcConnection, SamlConnection
from orgs.sso.outbound import outbound_url_problem
from orgs.sso.sealed import seal, unseal

SCOPES = "openid email profile"
DISCOVERY_PATH = "/.well-known/openid-configuration"
# Asymmetric signatures only: an HMAC (HS256) would be keyed by the client secret, and `none`
# is no signature at all.
ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"]
CLOCK_SKEW = 60
MAX_DOCUMENT_BYTES = 200_000
JWKS_CACHE_SECONDS = 600


class OidcRefused(DomainError):
    """An OpenID Connect sign-in we will not accept; `reason` is a stable code for the audit."""

    status = 403
    code = "oidc_refused"

    def __init__(self, reason: str, message: str):
        super().__init__(message, code="oidc_" + reason)
        self.reason = reason


def callback_url(org: Organization) -> str:
    return settings.SITE_URL + reverse("sso:oidc_callback", args=[org.slug])


# --- talking to the provider -----------------------------------------------------------------


class _ProviderProblem(Exception):
    def __init__(self, unreachable: bool, message: str):
        super().__init__(message)
        self.unreachable, self.message = unreachable, message


def _get_json(url: str) -> dict:
    """A JSON object from the provider: no redirects, bounded size and time."""
    try:
        with requests.get(
            url,
            timeout=settings.SSO_OIDC_TIMEOUT,
            allow_redirects=False,
            stream=True,
            headers={"Accept": "application/json"},
        ) as response:
            body = response.raw.read(MAX_DOCUMENT_BYTES + 1, decode_content=True)
            status = response.status_code
    except (requests.ConnectionError, requests.Timeout):
        raise _ProviderProblem(True, "could not be reached") from None
    except requests.RequestException as exc:
        raise _ProviderProblem(True, f"could not be read ({exc.__class__.__name__})") from None
    if status != 200:
        raise _ProviderProblem(False, f"answered HTTP {status}")
    if len(body) > MAX_DOCUMENT_BYTES:
        raise _ProviderProblem(False, "sent a document over 200 KB")
    try:
        data = json.loads(body)
    except ValueError:
        raise _ProviderProblem(False, "did not send JSON") from None
    if not isinstance(data, dict):
        raise _ProviderProblem(False, "did not send a JSON object")
    return data


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
        doc = _get_json(url)
    except _ProviderProblem as exc:
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


@transaction.atomic
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
    one; the provider's discovery document is read now (outside the org lock)."""
    from orgs.services import lock_org

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
    org = lock_org(org)
    require_org_capability(actor, org, OrgCapability.MANAGE_SSO)
    if SamlConnection.objects.filter(organization=org).exists():
        raise Conflict(
            f"{org.name} signs in with SAML. An organization uses one single sign-on protocol: "
            "remove the SAML setup first.",
            code="sso_protocol_in_use",
        )
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
    if requires_sso(org.pk):
        raise Conflict(
            "Single sign-on is required by the governance policy; remove that policy first.",
            code="sso_required",
        )
    record(
        actor=actor,
        action="sso.oidc_removed",
        organization=org,
        target=org,
        target_label=conn.issuer,
        details={"issuer": conn.issuer, "client_id": conn.client_id},
    )
    conn.delete()


def active_oidc(org: Organization) -> OidcConnection | None:
    return OidcConnection.objects.filter(organization=org, enabled=True).first()


# --- signing in ------------------------------------------------------------------------------


@dataclass
class OidcRequest:
    """What the browser's session keeps between the redirect and the callback."""

    url: str
    state: str
    nonce: str
    verifier: str


def _client(org: Organization, conn: OidcConnection, secret: str | None = None) -> OAuth2Session:
    client = OAuth2Session(
        client_id=conn.client_id,
        client_secret=secret,
        scope=SCOPES,
        redirect_uri=callback_url(org),
        code_challenge_method="S256",
        token_endpoint_auth_method=conn.provider_metadata.get("token_auth", "client_secret_basic"),
    )
    client.max_redirects = 0
    return client


def login_redirect(org: Organization, conn: OidcConnection) -> OidcRequest:
    """The provider's authorization URL with a fresh state, nonce and PKCE challenge."""
    state, nonce, verifier = generate_token(32), generate_token(32), generate_token(64)
    with _client(org, conn) as client:
        url, _ = client.create_authorization_url(
            conn.provider_metadata["authorization_endpoint"],
            state=state,
            nonce=nonce,
            code_verifier=verifier,
        )
    return OidcRequest(url=url, state=state, nonce=nonce, verifier=verifier)


@dataclass
class OidcIdentity:
    email: str
    full_name: str
    subject: str


def _unreachable() -> OidcRefused:
    return OidcRefused(
        "provider_unreachable",
        "The identity provider could not be reached. Try again in a moment; if it keeps "
        "happening, ask an owner of the organization to check the single sign-on setup.",
    )


def _jwks(conn: OidcConnection, *, force: bool = False) -> KeySet:
    uri = conn.provider_metadata["jwks_uri"]
    key = "oidc-jwks:" + hashlib.sha256(uri.encode()).hexdigest()
    data = None if force else cache.get(key)
    if data is None:
        try:
            data = _get_json(uri)
        except _ProviderProblem as exc:
            if exc.unreachable:
                raise _unreachable() from None
            raise OidcRefused(
                "provider_error", f"The identity provider's signing keys {exc.message}."
            ) from None
        cache.set(key, data, JWKS_CACHE_SECONDS)
    try:
        return KeySet.import_key_set(data)  # type: ignore[arg-type]  # checked by joserfc
    except (JoseError, ValueError, TypeError, KeyError):
        raise OidcRefused(
            "provider_error", "The identity provider's signing keys could not be read."
        ) from None


def _bad_signature() -> OidcRefused:
    return OidcRefused(
        "bad_signature",
        "The ID token's signature does not match the identity provider's published keys.",
    )


def _decode(conn: OidcConnection, id_token: str):
    algorithms = conn.provider_metadata.get("algorithms") or ["RS256"]
    try:
        try:
            return jwt.decode(id_token, _jwks(conn), algorithms=algorithms)
        except InvalidKeyIdError:  # the provider may have rotated its keys: read them again
            return jwt.decode(id_token, _jwks(conn, force=True), algorithms=algorithms)
    except (BadSignatureError, InvalidKeyIdError):
        raise _bad_signature() from None
    except UnsupportedAlgorithmError:
        raise OidcRefused(
            "bad_signature", "The ID token is signed with an algorithm we do not accept."
        ) from None
    except (JoseError, ValueError, TypeError):
        raise OidcRefused("invalid_token", "The ID token could not be read.") from None


CLAIM_REFUSALS = {
    "iss": (
        "wrong_issuer",
        "The ID token comes from another issuer than the one configured for this organization.",
    ),
    "aud": (
        "wrong_audience",
        "The ID token is meant for another application (audience); check the client id.",
    ),
    "azp": ("wrong_audience", "The ID token was issued to another application (azp)."),
    "nonce": (
        "nonce_mismatch",
        "The ID token does not answer the sign-in this browser started (nonce). Start again.",
    ),
    "iat": ("not_yet_valid", "The ID token was issued in the future; check the clocks."),
    "nbf": ("not_yet_valid", "The ID token is not valid yet; check the clocks."),
}


def _is_true(value) -> bool:
    return value is True or (isinstance(value, str) and value.lower() == "true")


def oidc_verify(
    org: Organization, conn: OidcConnection, *, code: str, verifier: str, nonce: str
) -> OidcIdentity:
    """Exchange the code (with the PKCE verifier) and check the ID token; OidcRefused if not."""
    secret = unseal(conn.client_secret_sealed)
    if secret is None:
        raise OidcRefused(
            "not_configured",
            "The organization's client secret can no longer be read; an owner must save it again.",
        )
    try:
        with _client(org, conn, secret) as client:
            token = client.fetch_token(
                conn.provider_metadata["token_endpoint"],
                grant_type="authorization_code",
                code=code,
                code_verifier=verifier,
                timeout=settings.SSO_OIDC_TIMEOUT,
            )
    except (requests.ConnectionError, requests.Timeout):
        raise _unreachable() from None
    except OAuthError as exc:
        raise OidcRefused(
            "token_error",
            f"The identity provider refused the sign-in code ({str(exc.error)[:100]}). Start again.",
        ) from None
    except (requests.RequestException, ValueError, KeyError, TypeError):
        raise OidcRefused(
            "provider_error", "The identity provider's token answer could not be read."
        ) from None
    id_token = token.get("id_token")
    if not isinstance(id_token, str) or not id_token:
        raise OidcRefused("invalid_token", "The identity provider sent no ID token.")
    decoded = _decode(conn, id_token)
    claims = CodeIDToken(
        decoded.claims,
        decoded.header,
        {
            "iss": {"essential": True, "value": conn.issuer},
            "aud": {"essential": True, "value": conn.client_id},
        },
        {"nonce": nonce, "client_id": conn.client_id, "access_token": token.get("access_token")},
    )
    try:
        claims.validate(leeway=CLOCK_SKEW)
    except ExpiredTokenError:
        raise OidcRefused("expired", "The ID token has expired; sign in again.") from None
    except ClaimError as exc:
        reason, message = CLAIM_REFUSALS.get(
            exc.claim, ("invalid_token", f"The ID token's {exc.claim} claim is not valid.")
        )
        if isinstance(exc, MissingClaimError) and exc.claim not in ("nonce", "azp"):
            reason, message = "invalid_token", f"The ID token has no {exc.claim} claim."
        raise OidcRefused(reason, message) from None
    except (JoseError, ValueError, TypeError):
        raise OidcRefused("invalid_token", "The ID token's claims are not valid.") from None
    email = claims.get("email")
    if not isinstance(email, str) or not email.strip():
        raise OidcRefused(
            "no_email",
            "The identity provider did not send an email address (ask for the email scope).",
        )
    verified = claims.get("email_verified")
    if verified is None:
        # Microsoft Entra ID sends no email_verified; its optional claim xms_edov says the
        # address's domain is verified by the tenant that owns it.
        verified = claims.get("xms_edov")
    if not _is_true(verified):
        raise OidcRefused(
            "email_not_verified",
            f"The identity provider has not verified {email.strip()[:254]}, so it cannot sign "
            "you in with it.",
        )
    name = claims.get("name")
    if not isinstance(name, str) or not name.strip():
        parts = [claims.get("given_name"), claims.get("family_name")]
        name = " ".join(p for p in parts if isinstance(p, str) and p.strip())
    return OidcIdentity(email=email.strip(), full_name=name or "", subject=str(claims["sub"]))
