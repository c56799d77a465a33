"""The mail server refuses: the invitation records the failure and its reason, and the
periodic re-send delivers it once the server accepts again."""

from __future__ import annotations

import pytest
from django.utils import timezone

from bench.infra import SmtpSink
from config.roles import Role
from members.invitations import member_invite
from members.models import Invitation
from members.tasks import resend_undelivered_invitations
from orgs.services import org_create
from tests.factories import UserFactory
from workspaces.services import workspace_create

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def refusing_sink(settings):
    with SmtpSink(refuse=True) as sink:
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", sink.port
        settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
        settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
        yield sink


def test_refused_email_is_failed_with_reason_then_retried(refusing_sink):
    owner = UserFactory(full_name="Olivia Owner", email="olivia@acme.test")
    org = org_create(
        actor=owner, name="Acme Corp", workspace=workspace_create(actor=owner, name="Production")
    )

    # Celery is eager in tests: the send task runs when the invite commits.
    member_invite(actor=owner, org=org, emails=["dana@newco.test"], org_role=Role.MEMBER, grants={})

    inv = Invitation.objects.get(email="dana@newco.test")
    assert inv.delivery_state == "failed"
    assert "554" in inv.last_error and "refused" in inv.last_error.lower()
    assert inv.delivery_attempts == 1
    assert inv.next_attempt_at > timezone.now()  # backoff before the next try
    assert refusing_sink.recipients() == []

    # Not due yet: the periodic re-send leaves it alone.
    assert resend_undelivered_invitations() == {}
    refusing_sink.refuse = False
    # The backoff passes.
    Invitation.objects.filter(pk=inv.pk).update(next_attempt_at=timezone.now())
    assert resend_undelivered_invitations() == {"sent": 1}

    inv.refresh_from_db()
    assert inv.delivery_state == "sent" and inv.last_error == "" and inv.delivery_attempts == 2
    assert refusing_sink.recipients() == ["dana@newco.test"]
