"""The invitation email: its context and its sending (no queueing, no state)."""

from __future__ import annotations

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string

from config.roles import Role


def invitation_link(token: str) -> str:
    return f"{settings.SITE_URL}/invitations/{token}/"


def invitation_email_context(invitation, token: str) -> dict:
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
