"""Sign-in throttling with django-axes, and the limits on password reset and sign-up.

A sign-in lock belongs to one (account, client) pair.

A stranger's wrong passwords lock only the stranger's own pair, never the owner signing in
from elsewhere; a client trying many accounts is stopped by a far higher per-client limit;
every lock lifts after the cool-off (failures during a lock do not extend it). Settings:
AXES_FAILURE_LIMIT (per pair), SIGNIN_FAILURES_PER_CLIENT, AXES_COOLOFF_TIME, and
TRUSTED_PROXY_COUNT for the client address (config.middleware.client_ip).
"""

from __future__ import annotations

import hashlib
from math import ceil

from axes.attempts import get_cool_off_threshold
from axes.handlers.database import AxesDatabaseHandler
from axes.helpers import get_cool_off, get_failure_limit
from axes.models import AccessAttempt
from django.conf import settings
from django.db.models import Sum
from django.shortcuts import render

from config.apikit import check_rate
from config.errors import RateLimited
from config.middleware import client_ip
from members.models import normalize_email


def cool_off_minutes() -> int:
    cool_off = get_cool_off()
    return max(1, int(cool_off.total_seconds() // 60)) if cool_off else 15


def locked_error() -> RateLimited:
    minutes = cool_off_minutes()
    return RateLimited(
        f"Too many failed sign-ins from here. Try again in {minutes} minutes, "
        "or reset your password.",
        retry_after=minutes * 60,
        code="signin_throttled",
    )


def signin_username(request, credentials) -> str | None:
    """The email tried, normalised, whether it came from our form (`email`) or the admin's."""
    credentials = credentials or {}
    raw = credentials.get("email") or credentials.get("username")
    if raw is None and request is not None:
        data = getattr(request, "POST", {})
        raw = data.get("email") or data.get("username")
    return normalize_email(str(raw or "").replace("\x00", ""))[:255] or None


class SignInThrottle(AxesDatabaseHandler):
    """Axes' database handler, plus a per-client count with its own, higher limit.

    AXES_LOCKOUT_PARAMETERS is the (account, client) pair only, so axes' own counting,
    reset-on-success and clean-up touch that pair; the per-client sum is read here.
    """

    def _client_failures(self, request) -> int:
        ip = getattr(request, "axes_ip_address", None)
        if ip is None:
            return 0
        recent = AccessAttempt.objects.filter(
            ip_address=ip, attempt_time__gte=get_cool_off_threshold(request)
        )
        return recent.aggregate(n=Sum("failures_since_start"))["n"] or 0

    def user_login_failed(self, sender, credentials: dict, request=None, **kwargs):
        # Axes stores these headers verbatim; PostgreSQL text cannot hold NUL (a 500 otherwise).
        for attr in ("axes_user_agent", "axes_http_accept", "axes_path_info"):
            value = getattr(request, attr, None)
            if isinstance(value, str):
                setattr(request, attr, value.replace("\x00", ""))
        return super().user_login_failed(sender, credentials, request, **kwargs)

    def get_failures(self, request, credentials: dict | None = None) -> int:
        # Axes compares this one number with AXES_FAILURE_LIMIT (the per-pair limit): a
        # client over its own limit is reported as at the pair limit, so it is locked too.
        pair = super().get_failures(request, credentials)
        if self._client_failures(request) >= settings.SIGNIN_FAILURES_PER_CLIENT:
            return max(pair, get_failure_limit(request, credentials))
        return pair


def lockout_response(request, original_response=None, credentials=None):
    """AXES_LOCKOUT_CALLABLE: our sign-in page already says why (429); anything else
    (the admin's login) gets the error page with the same message."""
    if original_response is not None and original_response.status_code == 429:
        return original_response
    error = locked_error()
    response = render(request, "error.html", {"error": error}, status=error.status)
    response["Retry-After"] = str(error.retry_after)
    return response


def reset_signin_failures(email: str) -> None:
    """Forget an account's failures from every client (after it proved control of its email)."""
    from axes.handlers.proxy import AxesProxyHandler

    if username := signin_username(None, {"email": email}):
        AxesProxyHandler.reset_attempts(username=username)


# --- password reset and sign-up: per client and per target email (fixed windows) -----------


def _limit(*, bucket: str, key: str, limit: int, message: str) -> None:
    try:
        check_rate(bucket=bucket, key=key, limit=limit, window=3600)
    except RateLimited as exc:
        minutes = ceil(exc.retry_after / 60)
        raise RateLimited(
            f"{message} Try again in {minutes} minute{'s' if minutes != 1 else ''}.",
            retry_after=exc.retry_after,
            code="too_many_attempts",
        ) from None


def throttle_account_email(request, *, action: str, email: str) -> None:
    """Limit one account action ("password_reset", "signup", "verification") per client and
    per target email. The email's count runs whether or not an account uses it, so a refusal
    says nothing about who has an account."""
    per_client, per_email = settings.ACCOUNT_EMAIL_LIMITS_PER_HOUR[action]
    _limit(
        bucket=f"{action}-client",
        key=client_ip(request) or "-",
        limit=per_client,
        message="Too many requests from your network.",
    )
    if email := normalize_email(email):
        _limit(
            bucket=f"{action}-email",
            key=hashlib.sha256(
                email.encode(errors="replace")
            ).hexdigest(),  # no emails in the cache
            limit=per_email,
            message="Too many requests for this email address.",
        )
