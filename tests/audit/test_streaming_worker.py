"""Audit streaming through a real Celery worker on Redis (REDIS_URL, a db of your own): the
receiver is down while events are recorded, answers 500, then comes back; the beat sweep's
task, sent through the broker, drains the queue. Every event arrives once, in order, signed."""

from __future__ import annotations

import time

import pytest

from audit.models import AuditEvent, StreamDelivery
from audit.streaming import stream_destination_add
from audit.tasks import deliver_audit_streams
from orgs.services import org_create, org_update
from tests.audit.receiver import Receiver
from tests.factories import UserFactory
from tests.fixtures_infra import wait_until
from workspaces.services import workspace_create

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.celery_worker,
    pytest.mark.django_db(transaction=True),
]


def test_a_real_worker_delivers_every_event_in_order_after_an_outage(settings, celery_worker):
    settings.AUDIT_STREAM_RETRY_BASE_SECONDS = 0.05
    settings.AUDIT_STREAM_RETRY_MAX_SECONDS = 0.2
    owner = UserFactory()
    org = org_create(actor=owner, name="Acme", workspace=workspace_create(actor=owner, name="P"))
    receiver = Receiver()  # not started: down
    try:
        destination, secret = stream_destination_add(
            actor=owner, org=org, name="SIEM", url=receiver.url
        )
        for i in range(5):
            org_update(actor=owner, org=org, name=f"Acme {i}")
        head = StreamDelivery.objects.filter(destination=destination).order_by("id").first()
        wait_until(lambda: StreamDelivery.objects.get(pk=head.pk).attempts >= 1)

        receiver.start()
        receiver.mode = "fail500"
        wait_until(lambda: deliver_audit_streams.delay() and receiver.requests >= 2, interval=0.3)
        receiver.mode = "ok"

        def drained():
            deliver_audit_streams.delay()  # what beat does every 30 s
            time.sleep(0.3)
            return not StreamDelivery.objects.filter(
                destination=destination, status="pending"
            ).exists()

        wait_until(drained, timeout=60)
    finally:
        receiver.stop()
    added = AuditEvent.objects.get(action="audit.stream_destination_added")
    want = list(
        AuditEvent.objects.filter(chain_key=org.pk, seq__gte=added.seq)
        .order_by("seq")
        .values_list("public_id", flat=True)
    )
    assert len(want) == 6
    assert receiver.unique_ids() == want
    assert receiver.arrivals == sorted(receiver.arrivals)
    assert receiver.bad_signatures(secret) == 0
