"""Retention: archive then prune through the sanctioned path; the chain still verifies."""

import hashlib
import json

import pytest
from django.db import InternalError, connection, transaction
from django.db.utils import DatabaseError

from audit.chain import verify_chain
from audit.models import AuditEvent
from audit.retention import audit_prune
from audit.tasks import prune_audit_events
from tests.audit.helpers import days_ago, make_event


@pytest.fixture
def aged(org_setup):
    """The org's setup events, then 12 events 100–89 days old, then 5 recent ones."""
    for i in range(12):
        make_event(org_setup.org, action="org.updated", at=days_ago(100 - i))
    for _ in range(5):
        make_event(org_setup.org, action="resource.updated")
    return org_setup


def test_prune_archives_deletes_and_the_chain_still_verifies(aged, tmp_path, settings):
    settings.AUDIT_ARCHIVE_DIR = tmp_path
    org = aged.org
    chain = list(AuditEvent.objects.filter(chain_key=org.pk).order_by("seq"))
    # The newest old event is seq 12 after the setup events: everything up to it goes.
    last_old = max(e.seq for e in chain if e.occurred_at < days_ago(90))
    pruned = audit_prune(chain_key=org.pk, before=days_ago(90))

    gone = [e for e in chain if e.seq <= last_old]
    assert pruned.action == "audit.pruned" and pruned.details["count"] == len(gone)
    assert not AuditEvent.objects.filter(pk__in=[e.pk for e in gone]).exists()
    assert pruned.details["next_seq"] == last_old + 1
    assert pruned.details["next_prev_hash"] == gone[-1].hash

    archive = tmp_path / pruned.details["archive"]
    data = archive.read_bytes()
    assert hashlib.sha256(data).hexdigest() == pruned.details["archive_sha256"]
    lines = [json.loads(line) for line in data.decode().splitlines()]
    assert [x["public_id"] for x in lines] == [e.public_id for e in gone]
    assert lines[-1]["hash"] == gone[-1].hash

    result = verify_chain(org.pk)
    assert result.ok, result.problem
    assert result.count == len(chain) - len(gone) + 1  # the remaining ones + audit.pruned
    # Running it again finds nothing to do.
    assert audit_prune(chain_key=org.pk, before=days_ago(90)) is None


def test_beat_task_uses_the_retention_setting(aged, tmp_path, settings):
    settings.AUDIT_ARCHIVE_DIR = tmp_path
    settings.AUDIT_RETENTION_DAYS = 0
    assert prune_audit_events.delay().get() == 0  # keep forever
    settings.AUDIT_RETENTION_DAYS = 95
    pruned = prune_audit_events.delay().get()
    assert pruned >= 6  # the events older than 95 days (plus older setup events, if any)
    assert verify_chain(aged.org.pk).ok
    assert AuditEvent.objects.filter(organization=aged.org, action="audit.pruned").count() == 1


def test_a_pruned_prefix_without_its_audit_pruned_record_fails_verification(aged, tmp_path):
    org = aged.org
    pruned = audit_prune(chain_key=org.pk, before=days_ago(90), archive_dir=tmp_path)
    # Cut one more event silently, bypassing the trigger: no audit.pruned names that start.
    first = AuditEvent.objects.filter(chain_key=org.pk).order_by("seq").first()
    assert first.seq == pruned.details["next_seq"]
    with connection.cursor() as cur:
        if connection.vendor == "postgresql":
            cur.execute("SET LOCAL session_replication_role = replica")
        cur.execute("DELETE FROM audit_auditevent WHERE id = %s", [first.pk])
        if connection.vendor == "postgresql":
            cur.execute("SET LOCAL session_replication_role = DEFAULT")
    result = verify_chain(org.pk)
    assert not result.ok and "were not pruned" in result.problem


@pytest.mark.postgres
def test_plain_delete_is_still_refused_after_a_prune(aged, tmp_path):
    audit_prune(chain_key=aged.org.pk, before=days_ago(90), archive_dir=tmp_path)
    event = AuditEvent.objects.filter(chain_key=aged.org.pk).first()
    with (
        pytest.raises((InternalError, DatabaseError)),
        transaction.atomic(),
        connection.cursor() as cur,
    ):
        cur.execute("DELETE FROM audit_auditevent WHERE id = %s", [event.pk])
    assert AuditEvent.objects.filter(pk=event.pk).exists()
