"""Audit streaming to a real webhook receiver on loopback (tests/audit/receiver.py).

Celery runs in-process (eager) as in every test without a worker: committing an event starts
delivery to the org's destinations, and the beat sweep (`deliver_audit_streams`) is called
here as beat would call it. Signatures are checked by the receiver with `standardwebhooks`.
"""

from __future__ import annotations

import datetime as dt
import subprocess
import time

import pytest
from django.core import mail
from django.utils import timezone
from standardwebhooks import Webhook

from audit.models import AuditEvent, StreamDelivery, StreamDestination
from audit.streaming import (
    new_secret,
    signed_request,
    stream_destination_add,
    stream_destination_enable,
    stream_destination_remove,
    stream_replay,
)
from audit.tasks import deliver_audit_streams
from config.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from orgs.services import org_create, org_update
from tests.audit.receiver import Receiver
from tests.factories import UserFactory
from workspaces.services import workspace_create


@pytest.fixture
def fast_retries(settings):
    settings.AUDIT_STREAM_RETRY_BASE_SECONDS = 0.05
    settings.AUDIT_STREAM_RETRY_MAX_SECONDS = 0.2
    settings.AUDIT_STREAM_TIMEOUT_SECONDS = 0.5
    return settings


def expected_ids(org, from_event) -> list[str]:
    return list(
        AuditEvent.objects.filter(chain_key=org.pk, seq__gte=from_event.seq)
        .order_by("seq")
        .values_list("public_id", flat=True)
    )


def sweep_until(predicate, timeout=30.0):
    """Run the beat sweep until `predicate()` holds (the backoff here is 50–200 ms)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "delivery did not finish in time"
        deliver_audit_streams()
        time.sleep(0.05)


def pending(destination) -> int:
    return StreamDelivery.objects.filter(
        destination=destination, status=StreamDelivery.Status.PENDING
    ).count()


@pytest.fixture
def acme(transactional_db):
    owner = UserFactory(full_name="Olivia Owner", email="olivia@acme.test")
    org = org_create(
        actor=owner, name="Acme Corp", workspace=workspace_create(actor=owner, name="Production")
    )
    return owner, org


@pytest.mark.django_db(transaction=True)
def test_receiver_down_slow_500_then_healthy_gets_every_event_in_order(acme, fast_retries):
    owner, org = acme
    receiver = Receiver().start()
    try:
        destination, secret = stream_destination_add(
            actor=owner, org=org, name="SIEM", url=receiver.url
        )
        added = AuditEvent.objects.get(action="audit.stream_destination_added")
        assert [r["webhook_id"] for r in receiver.accepted] == [added.public_id]

        # Down: connections refused; events queue up, the head waits out its backoff.
        receiver.stop()
        for i in range(5):
            org_update(actor=owner, org=org, name=f"Acme down {i}")
        deliver_audit_streams()
        head = StreamDelivery.objects.filter(destination=destination).order_by("id")[1]
        assert head.status == "pending" and head.attempts >= 1
        assert "refused" in head.last_error.lower() or "errno" in head.last_error.lower()
        assert pending(destination) == 5

        # Back, but answering 500.
        receiver.start()
        receiver.mode = "fail500"
        for i in range(3):
            org_update(actor=owner, org=org, name=f"Acme 500 {i}")
        sweep_until(lambda: receiver.requests >= 3)
        head.refresh_from_db()
        assert head.last_status_code == 500 and head.last_error.startswith("HTTP 500")
        assert pending(destination) == 8
        destination.refresh_from_db()
        assert destination.failing_since is not None

        # Slow: longer than our timeout (the receiver still processes it: a duplicate later).
        receiver.mode, receiver.slow_seconds = "slow", 1.0
        org_update(actor=owner, org=org, name="Acme slow")
        sweep_until(lambda: len(receiver.accepted) >= 2, timeout=20)
        head.refresh_from_db()
        assert "timed out" in head.last_error.lower()

        # Slow but within the timeout, then healthy: everything drains.
        receiver.slow_seconds = 0.1
        org_update(actor=owner, org=org, name="Acme slowish")
        receiver.mode = "ok"
        for i in range(3):
            org_update(actor=owner, org=org, name=f"Acme ok {i}")
        sweep_until(lambda: pending(destination) == 0)
    finally:
        receiver.stop()

    want = expected_ids(org, added)
    assert len(want) == 14
    assert receiver.unique_ids() == want  # every event, in order, no gap
    # Sent in order: a later event is never sent before the earlier one was acknowledged
    # (a receiver that finishes an abandoned slow request late only adds a duplicate).
    assert receiver.arrivals == sorted(receiver.arrivals)
    assert len(receiver.arrivals) > len(want)
    assert receiver.bad_signatures(secret) == 0
    assert receiver.bad_signatures(new_secret()) == len(receiver.accepted)
    destination.refresh_from_db()
    assert destination.failing_since is None and destination.status == "active"
    delivered = StreamDelivery.objects.filter(destination=destination, status="delivered")
    assert delivered.count() == 14
    assert max(d.attempts for d in delivered) > 1


@pytest.mark.django_db(transaction=True)
def test_failing_for_the_limit_disables_emails_owners_and_reenable_resumes(acme, fast_retries):
    owner, org = acme
    fast_retries.AUDIT_STREAM_DISABLE_AFTER_HOURS = 1 / 3600  # one second
    receiver = Receiver().start()
    try:
        destination, secret = stream_destination_add(
            actor=owner, org=org, name="SIEM", url=receiver.url
        )
        added = AuditEvent.objects.get(action="audit.stream_destination_added")
        receiver.mode = "fail500"
        org_update(actor=owner, org=org, name="Acme 1")
        time.sleep(1.1)
        sweep_until(lambda: StreamDestination.objects.get(pk=destination.pk).status == "disabled")

        destination.refresh_from_db()
        assert destination.disabled_reason and "HTTP 500" in destination.disabled_reason
        disabled = AuditEvent.objects.get(action="audit.stream_destination_disabled")
        assert disabled.actor_type == "system"
        assert [m.to for m in mail.outbox if "turned off" in m.subject] == [["olivia@acme.test"]]
        assert "/o/acme-corp/audit/streaming/" in mail.outbox[-1].body

        # Disabled: nothing is sent, but events are still queued for it.
        requests = receiver.requests
        org_update(actor=owner, org=org, name="Acme 2")
        deliver_audit_streams()
        assert receiver.requests == requests
        receiver.mode = "ok"
        stream_destination_enable(actor=owner, org=org, destination_id=destination.public_id)
        sweep_until(lambda: pending(destination) == 0)
    finally:
        receiver.stop()
    assert receiver.unique_ids() == expected_ids(org, added)
    assert AuditEvent.objects.filter(action="audit.stream_destination_enabled").count() == 1


@pytest.mark.django_db(transaction=True)
def test_replay_from_a_moment_resends_those_events_with_the_same_ids(acme, fast_retries):
    owner, org = acme
    receiver = Receiver().start()
    try:
        destination, secret = stream_destination_add(
            actor=owner, org=org, name="SIEM", url=receiver.url
        )
        for i in range(3):
            org_update(actor=owner, org=org, name=f"Acme {i}")
        moment = AuditEvent.objects.get(details__after__name="Acme 1").occurred_at
        sweep_until(lambda: pending(destination) == 0)
        before = receiver.unique_ids()
        count = stream_replay(
            actor=owner, org=org, destination_id=destination.public_id, since=moment
        )
        assert count == 2
        sweep_until(lambda: pending(destination) == 0)
    finally:
        receiver.stop()
    replayed = [r["webhook_id"] for r in receiver.accepted[len(before) :]]
    replay_event = AuditEvent.objects.get(action="audit.stream_replayed")
    assert replayed == [*before[-2:], replay_event.public_id]
    assert replay_event.details["count"] == 2
    assert receiver.bad_signatures(secret) == 0


def test_signature_verifies_with_the_standard_library_and_not_with_another_secret(org_setup):
    destination, secret = stream_destination_add(
        actor=org_setup.owner, org=org_setup.org, name="SIEM", url="https://siem.example.com/in"
    )
    assert secret.startswith("whsec_") and destination.secret == secret
    event = AuditEvent.objects.get(action="audit.stream_destination_added")
    body, headers = signed_request(destination, event, org_setup.org.public_id)
    data = Webhook(secret).verify(body, headers)
    assert headers["webhook-id"] == event.public_id
    assert data["type"] == "audit.stream_destination_added"
    assert data["data"]["seq"] == event.seq and data["data"]["hash"] == event.hash
    assert data["data"]["organization_id"] == org_setup.org.public_id
    _other, other_secret = stream_destination_add(
        actor=org_setup.owner, org=org_setup.org, name="Other", url="https://b.example.com/"
    )
    with pytest.raises(Exception, match="signature"):
        Webhook(other_secret).verify(body, headers)


def test_outbox_row_per_destination_written_with_the_event(org_setup):
    org, owner = org_setup.org, org_setup.owner
    a, _ = stream_destination_add(actor=owner, org=org, name="A", url="https://a.example.com/")
    b, _ = stream_destination_add(actor=owner, org=org, name="B", url="https://b.example.com/")
    org_update(actor=owner, org=org, name="Renamed")
    event = AuditEvent.objects.get(action="org.updated", details__after__name="Renamed")
    rows = StreamDelivery.objects.filter(event_id=event.pk)
    assert sorted(r.destination_id for r in rows) == sorted([a.pk, b.pk])
    assert {r.seq for r in rows} == {event.seq}
    # A (the first) saw its own creation event and B's; B starts with its own.
    assert StreamDelivery.objects.filter(destination=a).count() == 3
    assert StreamDelivery.objects.filter(destination=b).count() == 2
    # Another org's events are not queued for these destinations.
    other_owner = UserFactory()
    other = org_create(
        actor=other_owner, name="Other", workspace=workspace_create(actor=other_owner, name="W")
    )
    org_update(actor=other_owner, org=other, name="Other 2")
    assert StreamDelivery.objects.filter(destination__in=[a, b]).count() == 5


def test_a_rolled_back_event_leaves_no_outbox_row(org_setup):
    from django.db import transaction

    org, owner = org_setup.org, org_setup.owner
    destination, _ = stream_destination_add(
        actor=owner, org=org, name="A", url="https://a.example.com/"
    )
    before = StreamDelivery.objects.count()
    with pytest.raises(RuntimeError), transaction.atomic():
        org_update(actor=owner, org=org, name="Never")
        raise RuntimeError
    assert StreamDelivery.objects.count() == before
    assert destination.deliveries.count() == 1


@pytest.mark.parametrize(
    "url, allow_http, problem",
    [
        ("http://siem.example.com/in", True, "https://"),
        ("http://127.0.0.1:9000/in", False, "public address"),
        ("https://127.0.0.1:9000/in", False, "public address"),
        ("https://10.1.2.3/in", True, "public address"),
        ("https://169.254.169.254/latest/meta-data/", True, "public address"),
        ("https://[fd00::1]/in", True, "public address"),
        ("ftp://siem.example.com/in", True, "https://"),
        ("https://user:pw@siem.example.com/in", True, "credentials"),
        ("not a url", True, "valid URL"),
        ("", True, "Enter"),
        ("https://" + "a" * 500 + ".com", True, "500"),
    ],
)
def test_bad_urls_are_refused_with_a_message(org_setup, settings, url, allow_http, problem):
    settings.AUDIT_STREAM_ALLOW_HTTP = allow_http
    with pytest.raises(ValidationFailed) as exc:
        stream_destination_add(actor=org_setup.owner, org=org_setup.org, name="S", url=url)
    assert problem in exc.value.fields["url"]
    assert not StreamDestination.objects.exists()


def test_loopback_http_allowed_only_with_the_setting(org_setup, settings):
    settings.AUDIT_STREAM_ALLOW_HTTP = True
    for url in ("http://127.0.0.1:9000/in", "http://localhost/in", "http://[::1]:8080/"):
        stream_destination_add(actor=org_setup.owner, org=org_setup.org, name="L", url=url)
    assert StreamDestination.objects.count() == 3


def test_only_owners_manage_destinations_and_other_orgs_are_404(org_setup):
    org = org_setup.org
    with pytest.raises(PermissionDenied):
        stream_destination_add(actor=org_setup.admin, org=org, name="S", url="https://a.b/")
    destination, _ = stream_destination_add(
        actor=org_setup.owner, org=org, name="S", url="https://a.example.com/"
    )
    with pytest.raises(PermissionDenied):
        stream_destination_remove(
            actor=org_setup.admin, org=org, destination_id=destination.public_id
        )
    other_owner = UserFactory()
    other = org_create(
        actor=other_owner, name="Other", workspace=workspace_create(actor=other_owner, name="W")
    )
    with pytest.raises(NotFound):
        stream_destination_remove(
            actor=other_owner, org=other, destination_id=destination.public_id
        )
    with pytest.raises(NotFound):
        stream_replay(
            actor=other_owner, org=other, destination_id=destination.public_id, since=timezone.now()
        )
    assert StreamDestination.objects.filter(pk=destination.pk).exists()


def test_remove_is_audited_and_limit_of_five(org_setup):
    org, owner = org_setup.org, org_setup.owner
    made = [
        stream_destination_add(
            actor=owner, org=org, name=f"S{i}", url=f"https://s{i}.example.com/"
        )[0]
        for i in range(5)
    ]
    with pytest.raises(Conflict):
        stream_destination_add(actor=owner, org=org, name="S6", url="https://s6.example.com/")
    stream_destination_remove(actor=owner, org=org, destination_id=made[0].public_id)
    event = AuditEvent.objects.get(action="audit.stream_destination_removed")
    assert event.details["url"] == "https://s0.example.com/"
    assert not StreamDelivery.objects.filter(destination_id=made[0].pk).exists()
    with pytest.raises(Conflict):
        stream_destination_enable(actor=owner, org=org, destination_id=made[1].public_id)
    with pytest.raises(ValidationFailed):
        stream_replay(
            actor=owner,
            org=org,
            destination_id=made[1].public_id,
            since=timezone.now() + dt.timedelta(days=1),
        )


@pytest.mark.django_db(transaction=True)
def test_send_time_checks_block_internal_addresses_and_redirects(acme, fast_retries):
    """The address is checked when connecting too (a name can resolve anywhere later), and a
    redirect, e.g. to a cloud metadata address, is a failure, never followed."""
    owner, org = acme
    receiver = Receiver().start()
    try:
        receiver.mode = "redirect"
        destination, _ = stream_destination_add(actor=owner, org=org, name="R", url=receiver.url)
        head = StreamDelivery.objects.get(destination=destination)
        assert head.status == "pending" and head.last_status_code == 307
        assert "redirects are not followed" in head.last_error
        assert receiver.requests == 1

        fast_retries.AUDIT_STREAM_ALLOW_HTTP = False  # production: loopback is internal
        receiver.mode = "ok"
        time.sleep(0.25)
        deliver_audit_streams()
        head.refresh_from_db()
        assert "loopback address: refused" in head.last_error and head.status == "pending"
        assert receiver.requests == 1  # never connected
    finally:
        receiver.stop()


def self_signed(tmp_path) -> tuple[str, str]:
    cert, key = str(tmp_path / "cert.pem"), str(tmp_path / "key.pem")
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            key,
            "-out",
            cert,
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


@pytest.mark.django_db(transaction=True)
def test_https_verifies_the_certificate_of_the_pinned_address(
    acme, fast_retries, tmp_path, monkeypatch
):
    """https:// goes through the same pinned connection, with certificate verification: an
    untrusted certificate fails; once it is trusted, the event arrives."""
    owner, org = acme
    fast_retries.AUDIT_STREAM_TIMEOUT_SECONDS = 5
    receiver = Receiver(tls=self_signed(tmp_path)).start()
    try:
        destination, secret = stream_destination_add(
            actor=owner, org=org, name="TLS", url=receiver.url
        )
        head = StreamDelivery.objects.get(destination=destination)
        assert "CERTIFICATE_VERIFY_FAILED" in head.last_error and not receiver.accepted
        monkeypatch.setenv("SSL_CERT_FILE", receiver.tls[0])
        time.sleep(0.25)
        sweep_until(lambda: pending(destination) == 0)
    finally:
        receiver.stop()
    assert receiver.unique_ids() == [head.event.public_id]
    assert receiver.bad_signatures(secret) == 0


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_workers_never_send_one_destination_two_events_at_once(acme, fast_retries):
    """Four workers drain the same destination while events are recorded: the row lock
    (SKIP LOCKED) lets one send at a time, so the receiver sees each event once, in order."""
    import threading

    from django.db import close_old_connections, connection

    from audit.streaming import stream_deliver

    owner, org = acme
    receiver = Receiver().start()
    receiver.mode, receiver.slow_seconds = "slow", 0.01
    errors = []
    stop = threading.Event()
    try:
        destination, secret = stream_destination_add(
            actor=owner, org=org, name="SIEM", url=receiver.url
        )

        def worker():
            try:
                while not stop.is_set():
                    stream_deliver(destination_pk=destination.pk, max_events=5)
                    time.sleep(0.001)
            except Exception as exc:  # pragma: no cover - reported below
                errors.append(exc)
            finally:
                close_old_connections()
                connection.close()

        workers = [threading.Thread(target=worker) for _ in range(4)]
        for w in workers:
            w.start()
        for i in range(30):
            org_update(actor=owner, org=org, name=f"Acme {i}")
        sweep_until(lambda: pending(destination) == 0)
        stop.set()
        for w in workers:
            w.join()
    finally:
        stop.set()
        receiver.stop()
    assert errors == []
    want = expected_ids(org, AuditEvent.objects.get(action="audit.stream_destination_added"))
    assert [r["webhook_id"] for r in receiver.accepted] == want  # once each, in order
    assert receiver.bad_signatures(secret) == 0


def test_old_delivered_rows_are_pruned_pending_ones_kept(org_setup, settings):
    from audit.tasks import prune_audit_stream_log

    settings.AUDIT_STREAM_LOG_DAYS = 30
    destination, _ = stream_destination_add(
        actor=org_setup.owner, org=org_setup.org, name="S", url="https://s.example.com/"
    )
    for i in range(3):
        org_update(actor=org_setup.owner, org=org_setup.org, name=f"Acme {i}")
    rows = list(StreamDelivery.objects.filter(destination=destination).order_by("id"))
    old = timezone.now() - dt.timedelta(days=31)
    StreamDelivery.objects.filter(pk__in=[rows[0].pk, rows[1].pk]).update(created_at=old)
    StreamDelivery.objects.filter(pk__in=[rows[0].pk, rows[2].pk]).update(status="delivered")
    assert prune_audit_stream_log() == 1  # old and delivered
    assert set(StreamDelivery.objects.values_list("pk", flat=True)) == {r.pk for r in rows[1:]}
    assert prune_audit_stream_log() == 0


@pytest.mark.django_db(transaction=True)
def test_a_broker_that_is_down_never_fails_the_change_the_sweep_delivers_later(acme, fast_retries):
    from config.celery import app
    from tests.fixtures_infra import celery_broker, closed_port

    owner, org = acme
    receiver = Receiver().start()
    try:
        with celery_broker(app, f"redis://127.0.0.1:{closed_port()}/0"):
            destination, secret = stream_destination_add(
                actor=owner, org=org, name="SIEM", url=receiver.url
            )
            org_update(actor=owner, org=org, name="Acme while the broker is down")
        assert receiver.requests == 0 and pending(destination) == 2
        sweep_until(lambda: pending(destination) == 0)  # beat, once the broker is back
    finally:
        receiver.stop()
    assert len(receiver.unique_ids()) == 2 and receiver.bad_signatures(secret) == 0
