"""Personal API tokens: created (shown once), stored as a SHA-256 hash, revoked, authenticated.

A raw token is `ss_` + 43 url-safe characters; we keep only its hash and a short visible prefix
so people can tell their tokens apart. Authentication never writes more than once a minute
per token (last_used_at).
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from audit.services import record
from config.errors import NotFound, ValidationFailed
from members.models import ApiToken, User

TOKEN_PREFIX = "ss_"
VISIBLE_PREFIX_LENGTH = 10  # "ss_" + 7 characters of the secret
LAST_USED_RESOLUTION = timedelta(minutes=1)


def hash_token(raw: str | None) -> str:
    """The one way a secret (API token, invitation or email link, recovery code) is stored:
    its SHA-256, so a database leak holds no usable secret."""
    return hashlib.sha256((raw or "").encode()).hexdigest()


def mint_secret(prefix: str, visible: int) -> tuple[str, str, str]:
    """A new bearer secret: (raw, shown prefix, stored hash). The raw value is shown once."""
    raw = prefix + secrets.token_urlsafe(32)
    return raw, raw[:visible], hash_token(raw)


def tokens_of(user: User):
    """The person's tokens, newest first (revoked ones stay listed as revoked)."""
    return ApiToken.objects.filter(user=user).order_by("-created_at", "-pk")


def token_is_active(token: ApiToken, now: datetime | None = None) -> bool:
    now = now or timezone.now()
    return token.revoked_at is None and (token.expires_at is None or token.expires_at > now)


@transaction.atomic
def token_create(
    *, actor: User, name: str, expires_at: datetime | None = None
) -> tuple[ApiToken, str]:
    """A new token for the actor: returns (token, raw secret). The raw secret is never stored."""
    name = (name or "").strip()
    errors = {}
    if not name:
        errors["name"] = "Give the token a name, e.g. the script that uses it."
    elif len(name) > 100:
        errors["name"] = "At most 100 characters."
    if expires_at is not None and expires_at <= timezone.now():
        errors["expires_at"] = "The expiry must be in the future."
    if errors:
        raise ValidationFailed("Please correct the highlighted fields.", fields=errors)
    raw, prefix, digest = mint_secret(TOKEN_PREFIX, VISIBLE_PREFIX_LENGTH)
    token = ApiToken.objects.create(
        user=actor,
        name=name,
        prefix=prefix,
        token_hash=digest,
        expires_at=expires_at,
    )
    record(
        actor=actor,
        action="token.created",
        target=token,
        details={
            "name": token.name,
            "prefix": token.prefix,
            "expires_at": expires_at.isoformat() if expires_at else None,
        },
    )
    return token, raw


@transaction.atomic
def token_revoke(*, actor: User, token: ApiToken) -> ApiToken:
    """Revoke one of the actor's own tokens; revoking twice changes nothing."""
    locked = ApiToken.objects.select_for_update().filter(pk=token.pk, user=actor).first()
    if locked is None:
        raise NotFound("No such API token.")
    token = locked
    if token.revoked_at is not None:
        return token
    token.revoked_at = timezone.now()
    token.save(update_fields=["revoked_at"])
    record(
        actor=actor,
        action="token.revoked",
        target=token,
        details={"name": token.name, "prefix": token.prefix},
    )
    return token


def token_authenticate(raw: str) -> ApiToken | None:
    """The live token for a raw secret (with its user), or None if unknown, revoked or expired."""
    raw = (raw or "").strip()
    if not raw.startswith(TOKEN_PREFIX) or len(raw) > 200:
        return None
    token = (
        ApiToken.objects.select_related("user")
        .filter(token_hash=hash_token(raw), user__is_active=True)
        .first()
    )
    now = timezone.now()
    if token is None or not token_is_active(token, now):
        return None
    if token.last_used_at is None or now - token.last_used_at >= LAST_USED_RESOLUTION:
        # A plain UPDATE, not audited: usage is not a change to anything.
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    return token


def get_own_token(user: User, public_id: str) -> ApiToken:
    token = ApiToken.objects.filter(user=user, public_id=public_id).first()
    if token is None:
        raise NotFound("No such API token.")
    return token
