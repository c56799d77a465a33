"""Secrets we must be able to read back (an OIDC client secret), sealed at rest with Fernet.

The key is derived from SSO_SEAL_KEY, or SECRET_KEY when that is empty; values sealed under a
key in SECRET_KEY_FALLBACKS still open, so SECRET_KEY can be rotated. A database leak alone
holds no usable client secret.
"""

from __future__ import annotations

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings

_SALT = b"signalsmith.sso.sealed:"


def _fernet(secret: str) -> Fernet:
    return Fernet(base64.urlsafe_b64encode(hashlib.sha256(_SALT + secret.encode()).digest()))


def _keys() -> MultiFernet:
    primary = settings.SSO_SEAL_KEY or settings.SECRET_KEY
    fallbacks = [] if settings.SSO_SEAL_KEY else list(settings.SECRET_KEY_FALLBACKS)
    return MultiFernet([_fernet(k) for k in [primary, *fallbacks]])


def seal(value: str) -> str:
    return _keys().encrypt(value.encode()).decode()


def unseal(sealed: str) -> str | None:
    """The value, or None when it was sealed under a key we no longer have."""
    try:
        return _keys().decrypt(sealed.encode()).decode()
    except (InvalidToken, ValueError):
        return None
