"""Clearing a sign-in lock: django-axes' failure records for one account (members/auth.py)."""

from django.db.models import Sum

from members.auth import reset_signin_failures, signin_username


def failures_for(email: str) -> int:
    """Failed sign-ins currently counted against this account, from every client (0 when none)."""
    from axes.models import AccessAttempt

    username = signin_username(None, {"email": email})
    if not username:
        return 0
    total = AccessAttempt.objects.filter(username=username).aggregate(
        n=Sum("failures_since_start")
    )["n"]
    return int(total or 0)


def clear_signin_lock(email: str) -> None:
    # Only this account's (account, client) records go; a client's failures on other accounts
    # stay, since they are not this person's.
    reset_signin_failures(email)
