"""The invitation email: content, delivery state, idempotence, retries with backoff."""

import re
from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from config.roles import Role
from members.invitations import (
    MAX_DELIVERY_ATTEMPTS,
    backoff,
    invitation_by_token,
    invitation_deliver,
)
from members.models import Invitation
from members.tasks import resend_undelivered_invitations
from tests.fixtures_infra import celery_broker, closed_port

LINK = re.compile(r"http://testserver/invitations/([A-Za-z0-9_\-]+)/")


def test_email_has_html_and_text_with_everything(org_setup, invite):
    s = org_setup
    [inv] = invite(
        s.admin, s.org, "dana@example.test", role=Role.ADMIN, grants={s.ws_a.pk: Role.MEMBER}
    )
    [msg] = mail.outbox
    assert msg.to == ["dana@example.test"]
    assert "Bob Admin invited you to Acme Corp" in msg.subject
    html = msg.alternatives[0][0]
    for body in (msg.body, html):
        assert "Acme Corp" in body and "Bob Admin" in body and "admin" in body
        assert "Production" in body and "member" in body
        assert f"http://testserver/invitations/{inv.token}/" in body
        assert f"{inv.expires_at:%Y}" in body
    inv.refresh_from_db()
    assert inv.delivery_state == "sent" and inv.delivery_attempts == 1 and inv.sent_at


def test_delivery_is_idempotent(org_setup, invite):
    s = org_setup
    [inv] = invite(s.admin, s.org, "dana@example.test")
    assert invitation_deliver(invitation_id=inv.pk, token=inv.token) == "already_sent"
    assert resend_undelivered_invitations() == {}
    assert len(mail.outbox) == 1


def test_smtp_failure_is_recorded_then_retried_with_backoff(org_setup, invite, settings):
    s = org_setup
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", closed_port()
    [inv] = invite(s.admin, s.org, "dana@example.test")
    first_token = inv.token
    inv.refresh_from_db()
    assert inv.delivery_state == "failed" and inv.delivery_attempts == 1
    assert "Connection" in inv.last_error or "refused" in inv.last_error.lower()
    assert timedelta(seconds=55) < inv.next_attempt_at - inv.last_attempt_at <= backoff(1)
    # not due yet: the periodic re-send leaves it alone
    assert resend_undelivered_invitations() == {}
    # the mail server is back and the backoff has passed
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    Invitation.objects.filter(pk=inv.pk).update(next_attempt_at=timezone.now())
    assert resend_undelivered_invitations() == {"sent": 1}
    inv.refresh_from_db()
    assert inv.delivery_state == "sent" and inv.delivery_attempts == 2 and inv.last_error == ""
    # the retry issued a fresh token (the raw one is never stored); the mailed link works
    [msg] = mail.outbox
    token = LINK.search(msg.body).group(1)
    assert token != first_token
    assert invitation_by_token(token).pk == inv.pk
    assert resend_undelivered_invitations() == {}
    assert len(mail.outbox) == 1


def test_backoff_grows_and_gives_up_after_max_attempts(org_setup, invite):
    assert [backoff(n).total_seconds() for n in (1, 2, 3, 4)] == [60, 120, 240, 480]
    assert backoff(30) == timedelta(hours=6)
    s = org_setup
    [inv] = invite(s.admin, s.org, "dana@example.test")
    Invitation.objects.filter(pk=inv.pk).update(
        delivery_state="failed",
        delivery_attempts=MAX_DELIVERY_ATTEMPTS,
        next_attempt_at=timezone.now(),
    )
    assert resend_undelivered_invitations() == {}  # the UI's Resend is the way on


def test_revoked_or_expired_invitations_are_not_mailed(org_setup, invite):
    s = org_setup
    [a, b] = invite(s.admin, s.org, "a@example.test", "b@example.test")
    Invitation.objects.filter(pk=a.pk).update(delivery_state="queued", status="revoked")
    Invitation.objects.filter(pk=b.pk).update(
        delivery_state="queued", expires_at=timezone.now() - timedelta(minutes=1)
    )
    mail.outbox.clear()
    assert invitation_deliver(invitation_id=a.pk, token=a.token) == "not_pending"
    assert invitation_deliver(invitation_id=b.pk, token=b.token) == "expired"
    assert resend_undelivered_invitations() == {}
    assert mail.outbox == []


@pytest.mark.django_db(transaction=True)
def test_broker_down_at_invite_time_keeps_the_invitation_queued(owner):
    """Phase 1 of "nothing is lost" (no Redis needed): the broker is a closed port."""
    from config.celery import app
    from members.invitations import member_invite
    from orgs.services import org_create
    from workspaces.services import workspace_create

    ws = workspace_create(actor=owner, name="Production")
    org = org_create(actor=owner, name="Acme Corp", workspace=ws)
    with celery_broker(app, f"redis://127.0.0.1:{closed_port()}/0"):
        [inv] = member_invite(
            actor=owner, org=org, emails=["dana@example.test"], org_role=Role.MEMBER, grants={}
        )
    inv.refresh_from_db()
    assert inv.status == "pending" and inv.delivery_state == "queued"
    assert inv.delivery_attempts == 0
    assert "broker" in inv.last_error
    assert inv.next_attempt_at <= timezone.now()  # due for the periodic re-send at once
    assert mail.outbox == []
    # the periodic re-send (eager here) delivers it, once
    assert resend_undelivered_invitations() == {"sent": 1}
    assert resend_undelivered_invitations() == {}
    assert len(mail.outbox) == 1
