"""Clearing a sign-in lock, against today's mechanism (members/auth.py: failure counters in the
cache per email and per IP). The one place to change when sign-in throttling moves (e.g. to
django-axes: `axes.utils.reset(username=email)` and AccessAttempt rows)."""

from django.core.cache import cache

from members.auth import _keys


def _email_key(email: str) -> str:
    return _keys(email, None)[0]


def failures_for(email: str) -> int:
    """Failed sign-ins currently counted against this email (0 when none)."""
    return int(cache.get(_email_key(email)) or 0)


def clear_signin_lock(email: str) -> None:
    # The per-IP counter is not the person's: it belongs to whoever shares that address.
    cache.delete(_email_key(email))
