"""Sign-in throttling: repeated failures for one email or one IP lock sign-in for a while."""

from django.conf import settings
from django.core.cache import cache

from config.errors import RateLimited


def _keys(email: str, ip: str | None) -> list[str]:
    return [f"signin-fail:email:{email}", f"signin-fail:ip:{ip or '-'}"]


def check_signin_allowed(email: str, ip: str | None) -> None:
    for key in _keys(email, ip):
        if (cache.get(key) or 0) >= settings.SIGNIN_MAX_FAILURES:
            minutes = settings.SIGNIN_LOCKOUT_SECONDS // 60
            raise RateLimited(
                f"Too many failed sign-ins. Try again in {minutes} minutes, or reset your password.",
                retry_after=settings.SIGNIN_LOCKOUT_SECONDS,
                code="signin_throttled",
            )


def note_signin_failure(email: str, ip: str | None) -> None:
    for key in _keys(email, ip):
        cache.add(key, 0, settings.SIGNIN_LOCKOUT_SECONDS)
        try:
            cache.incr(key)
        except ValueError:
            cache.set(key, 1, settings.SIGNIN_LOCKOUT_SECONDS)


def clear_signin_failures(email: str, ip: str | None) -> None:
    cache.delete(_keys(email, ip)[0])
