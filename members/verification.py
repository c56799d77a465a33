"""Email verification: a self-service account proves it reads its address before anyone can
add it to a workspace or org.

Accounts count as verified once they open a verification link, accept an invitation (its
token came to that address) or complete a password reset; accounts older than this feature
and operators' accounts count as verified. `require_verified()` is the one check that every
service giving someone access other than by an emailed token calls. A link is a random token
stored only as its SHA-256 hash (members.tokens.hash_token), expires, works once, and a new
link replaces the old one.
"""

from __future__ import annotations

import logging
import secrets
from datetime import timedelta
from functools import partial

from celery import shared_task
from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone

from audit.services import record
from config.errors import Conflict, NotFound, PermissionDenied
from members.models import EmailVerification, User
from members.tokens import hash_token

log = logging.getLogger(__name__)


class EmailNotVerified(PermissionDenied):
    code = "email_not_verified"


class VerificationLinkInvalid(NotFound):
    code = "verification_invalid"


class VerificationLinkExpired(Conflict):
    code = "verification_expired"


def is_verified(user) -> bool:
    return bool(user is not None and getattr(user, "email_verified_at", None))


def require_verified(user, *, message: str | None = None) -> None:
    """Refuse to give access to an account that has not confirmed its email address.

    Callers acting on someone else pass a `message` that tells the actor no more than they
    could already see (e.g. the same words as for an unknown email)."""
    if not is_verified(user):
        raise EmailNotVerified(
            message
            or "Confirm your email address first: open the link we sent you, or send a new "
            "one from the banner at the top of the page."
        )


def verification_link(token: str) -> str:
    return f"{settings.SITE_URL}/verify-email/{token}/"


# --- services ------------------------------------------------------------------------------


@transaction.atomic
def email_verification_send(*, user: User) -> str | None:
    """Mint a new link (replacing any earlier one) and mail it after commit; returns the raw
    token, or None when the account is verified already (nothing to send)."""
    user = User.objects.select_for_update().get(pk=user.pk)
    if is_verified(user):
        return None
    raw = secrets.token_urlsafe(32)
    now = timezone.now()
    EmailVerification.objects.update_or_create(
        user=user,
        defaults={
            "token_hash": hash_token(raw),
            "created_at": now,
            "expires_at": now + timedelta(hours=settings.EMAIL_VERIFICATION_TTL_HOURS),
        },
    )
    transaction.on_commit(partial(_queue_email, user.pk, raw))
    return raw


@shared_task(
    name="members.tasks.send_verification_email",
    ignore_result=True,
    autoretry_for=(Exception,),
    retry_backoff=60,
    retry_backoff_max=3600,
    max_retries=6,
)
def send_verification_email(user_id: int, token: str) -> str:
    """Mail the email-verification link; skipped if the account is verified or the link was
    replaced meanwhile (only the newest link is worth sending)."""
    link = (
        EmailVerification.objects.select_related("user")
        .filter(user_id=user_id, token_hash=hash_token(token))
        .first()
    )
    if link is None or link.user.email_verified_at:
        return "skipped"
    ctx = {
        "name": link.user.full_name or link.user.email,
        "email": link.user.email,
        "link": verification_link(token),
        "expires_at": link.expires_at,
    }
    message = EmailMultiAlternatives(
        subject="Confirm your email address for SignalSmith",
        body=render_to_string("emails/verify_email.txt", ctx),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[link.user.email],
    )
    message.send(fail_silently=False)
    return "sent"


def _queue_email(user_id: int, token: str) -> None:
    try:
        send_verification_email.delay(user_id, token)
    except Exception as exc:  # broker down: the person can send the link again from the banner
        log.warning("Could not queue the verification email for user %s: %s", user_id, exc)


def _mark_verified(user: User, *, via: str) -> bool:
    """Set the timestamp on a locked user row and record it; False if already verified."""
    if is_verified(user):
        return False
    user.email_verified_at = timezone.now()
    user.save(update_fields=["email_verified_at"])
    EmailVerification.objects.filter(user=user).delete()
    record(actor=user, action="account.email_verified", target=user, details={"via": via})
    return True


@transaction.atomic
def email_verify(*, token: str) -> User:
    """Open a verification link: the account's address is confirmed (once; the link is used up)."""
    link = (
        EmailVerification.objects.select_for_update()
        .select_related("user")
        .filter(token_hash=hash_token(token or ""))
        .first()
    )
    if link is None:
        raise VerificationLinkInvalid(
            "This confirmation link is not valid: it was mistyped, already used, or replaced by "
            "a newer one. Sign in and send a new link if your address is not confirmed yet."
        )
    if link.expires_at <= timezone.now():
        raise VerificationLinkExpired(
            "This confirmation link has expired. Sign in and send a new one."
        )
    user = User.objects.select_for_update().get(pk=link.user_id)
    _mark_verified(user, via="link")
    return user


@transaction.atomic
def email_verified_by_token(*, user: User, via: str) -> bool:
    """Someone used a token that was mailed to their address (a password-reset link): that
    confirms the address too. Returns whether this changed anything."""
    user = User.objects.select_for_update().get(pk=user.pk)
    return _mark_verified(user, via=via)
