"""A Celery worker killed in the middle of sending invitation emails: after a restart every
invitation is delivered exactly once and none is lost.

What makes it hold (members/invitations.py, members/tasks.py): the task is acked late and
rejected if its worker process dies; the send runs inside a transaction holding the
invitation's row lock and marks it sent in that same transaction; the periodic re-send picks up
whatever is still queued; a late duplicate of a message finds the invitation sent and mails
nothing. The one window this cannot close is a crash after the SMTP server accepted a message
and before the database commit (SMTP has no two-phase commit): that invitation would be mailed
twice. The sink here delays before DATA, so the kill lands before the server has the message.
"""

from __future__ import annotations

import os
import signal
import time
from collections import Counter

import pytest
from django.db import connections
from django.utils import timezone

from bench.infra import SmtpSink, celery_publishing_to
from config.roles import Role
from members.invitations import member_invite
from members.models import Invitation
from members.tasks import resend_undelivered_invitations, send_invitation_email
from orgs.services import org_create
from tests.factories import UserFactory
from workspaces.services import workspace_create

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.celery_worker,
    pytest.mark.django_db(transaction=True),
]

EMAILS = ["ana@newco.test", "ben@newco.test", "cy@newco.test"]


@pytest.fixture
def org(transactional_db):
    owner = UserFactory(full_name="Olivia Owner", email="olivia@acme.test")
    ws = workspace_create(actor=owner, name="Production")
    return org_create(actor=owner, name="Acme Corp", workspace=ws), owner


def _wait(predicate, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def _states():
    connections.close_all()  # read what the workers committed, not a stale snapshot
    return {i.email: i.delivery_state for i in Invitation.objects.filter(email__in=EMAILS)}


def test_worker_killed_mid_send_delivers_every_invitation_exactly_once(
    org, worker_factory, broker_url
):
    org, owner = org
    with SmtpSink(delay=4.0) as sink, celery_publishing_to(broker_url, worker_factory.queue):
        first = worker_factory(sink.url)
        invitations = member_invite(
            actor=owner, org=org, emails=EMAILS, org_role=Role.MEMBER, grants={}
        )
        tokens = {i.email: i.token for i in invitations}

        # The worker is inside an SMTP conversation (before DATA): kill it and its child.
        assert sink.rcpt_started.wait(60), "the worker never started sending"
        first.kill()
        assert sink.recipients() == []
        assert set(_states().values()) == {"queued"}  # the dying transaction rolled back

        # Restart. The two messages it had not fetched are still queued and get delivered.
        sink.delay = 0
        worker_factory(sink.url)
        assert _wait(lambda: len(sink.recipients()) >= 2), sink.recipients()
        # The killed one's message waits in Redis' unacked set until its visibility timeout;
        # the periodic re-send takes the invitation over once its grace period has passed —
        # here made due at once.
        stuck = [e for e, s in _states().items() if s == "queued"]
        assert len(stuck) <= 1
        Invitation.objects.filter(email__in=stuck).update(next_attempt_at=timezone.now())
        resend_undelivered_invitations.apply_async()
        assert _wait(lambda: len(sink.recipients()) == 3), sink.recipients()

        # A late duplicate of every original message (as Redis would redeliver it) mails nothing.
        for inv in invitations:
            send_invitation_email.apply_async((inv.pk, tokens[inv.email]))
        resend_undelivered_invitations.apply_async()
        time.sleep(3)  # give the worker time to (not) send duplicates

    assert Counter(sink.recipients()) == Counter(EMAILS)  # each exactly once
    assert _states() == dict.fromkeys(EMAILS, "sent")
    # Every invitation took one successful attempt (the killed one never committed its try).
    assert set(
        Invitation.objects.filter(email__in=EMAILS).values_list("delivery_attempts", flat=True)
    ) == {1}


def _child_pids(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        return []


def test_pool_process_killed_mid_send_is_retried_at_once(org, worker_factory, broker_url):
    """Only the pool process dies (OOM killer, segfault): the worker rejects the message back
    to the queue (acks_late + reject_on_worker_lost) and a fresh pool process sends it."""
    org, owner = org
    with SmtpSink(delay=4.0) as sink, celery_publishing_to(broker_url, worker_factory.queue):
        worker = worker_factory(sink.url)
        member_invite(actor=owner, org=org, emails=EMAILS[:1], org_role=Role.MEMBER, grants={})
        assert sink.rcpt_started.wait(60), "the worker never started sending"
        children = _child_pids(worker.proc.pid)
        assert children, "no pool process found"
        sink.delay = 0
        for pid in children:
            os.kill(pid, signal.SIGKILL)
        assert _wait(lambda: len(sink.recipients()) >= 1, timeout=60), sink.recipients()
        time.sleep(2)
    assert sink.recipients() == EMAILS[:1]
    assert _states() == {EMAILS[0]: "sent"}
