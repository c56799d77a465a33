"""Emails: invitations (queued on commit, re-sent periodically until delivered, SPEC §4) and
email-verification links."""

from __future__ import annotations

import logging

from celery import shared_task
from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string

from config.roles import Role

log = logging.getLogger(__name__)


def invitation_email_context(invitation, token: str) -> dict:
    from members.invitations import invitation_link

    grants = sorted(
        (
            {"workspace": g.workspace.name, "role": Role(g.role).label}
            for g in invitation.grants.select_related("workspace")
        ),
        key=lambda g: g["workspace"].lower(),
    )
    inviter = invitation.invited_by
    return {
        "org_name": invitation.organization.name,
        "inviter": inviter.display_name if inviter else "An administrator",
        "inviter_email": inviter.email if inviter else "",
        "org_role": Role(invitation.org_role).label,
        "grants": grants,
        "expires_at": invitation.expires_at,
        "link": invitation_link(token),
        "email": invitation.email,
    }


def send_invitation_message(invitation, token: str) -> None:
    """Render and send the invitation (HTML + plain text); raises on any delivery failure."""
    ctx = invitation_email_context(invitation, token)
    subject = f"{ctx['inviter']} invited you to {ctx['org_name']} on SignalSmith"
    message = EmailMultiAlternatives(
        subject=subject,
        body=render_to_string("emails/invitation.txt", ctx),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[invitation.email],
    )
    message.attach_alternative(render_to_string("emails/invitation.html", ctx), "text/html")
    message.send(fail_silently=False)


@shared_task(ignore_result=True)
def send_invitation_email(invitation_id: int, token: str) -> str:
    """Deliver one invitation with the token minted for it; idempotent (see invitation_deliver)."""
    from members.invitations import invitation_deliver

    return invitation_deliver(invitation_id=invitation_id, token=token)


@shared_task(ignore_result=True)
def resend_undelivered_invitations() -> dict:
    """Beat: (re)send queued or failed invitations whose backoff has passed."""
    from members.invitations import due_invitation_ids, invitation_deliver_due

    outcomes: dict[str, int] = {}
    for pk in due_invitation_ids():
        try:
            outcome = invitation_deliver_due(invitation_id=pk)
        except Exception:  # one bad row must not stop the others
            log.exception("Re-sending invitation %s failed", pk)
            outcome = "error"
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    return outcomes


@shared_task(
    ignore_result=True,
    autoretry_for=(Exception,),
    retry_backoff=60,
    retry_backoff_max=3600,
    max_retries=6,
)
def send_verification_email(user_id: int, token: str) -> str:
    """Mail the email-verification link; skipped if the account is verified or the link was
    replaced meanwhile (only the newest link is worth sending)."""
    from members.models import EmailVerification
    from members.tokens import hash_token
    from members.verification import verification_link

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
