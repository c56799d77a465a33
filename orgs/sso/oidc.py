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

from config.errors import DomainError
from orgs.models import Organization
from orgs.sso.models import OidcConnection
from orgs.sso.sealed import unseal

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


class ProviderProblem(Exception):
    """The provider could not be asked (unreachable) or answered something we cannot use."""

    def __init__(self, unreachable: bool, message: str):
        super().__init__(message)
        self.unreachable, self.message = unreachable, message


def get_json(url: str) -> dict:
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
        raise ProviderProblem(True, "could not be reached") from None
    except requests.RequestException as exc:
        raise ProviderProblem(True, f"could not be read ({exc.__class__.__name__})") from None
    if status != 200:
        raise ProviderProblem(False, f"answered HTTP {status}")
    if len(body) > MAX_DOCUMENT_BYTES:
        raise ProviderProblem(False, "sent a document over 200 KB")
    try:
        data = json.loads(body)
    except ValueError:
        raise ProviderProblem(False, "did not send JSON") from None
    if not isinstance(data, dict):
        raise ProviderProblem(False, "did not send a JSON object")
    return data


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
            data = get_json(uri)
        except ProviderProblem as exc:
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
