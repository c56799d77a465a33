"""Retention: archive then prune through the database's prune function; the chain still verifies."""

import hashlib
import json

import pytest
from django.db import InternalError, connection, transaction
from django.db.utils import DatabaseError

from audit.chain import verify_chain
from audit.models import AuditEvent, AuditPruneRecord
from audit.retention import audit_prune, prune_all
from audit.tasks import prune_audit_events
from orgs.models import Organization
from tests.audit.helpers import days_ago, make_event


@pytest.fixture
def aged(org_setup):
    """An org whose chain starts with 12 events 100–89 days old, then 5 recent ones (the org
    row is made directly, so its chain has no setup events of today in front of the old ones)."""
    org = Organization.objects.create(name="Old Co", slug="old-co")
    for i in range(12):
        make_event(org, action="org.updated", at=days_ago(100 - i))
    for _ in range(5):
        make_event(org, action="resource.updated")
    org_setup.org = org
    return org_setup


def test_prune_archives_deletes_and_the_chain_still_verifies(
    aged, tmp_path, settings, django_capture_on_commit_callbacks
):
    settings.AUDIT_ARCHIVE_DIR = tmp_path
    org = aged.org
    chain = list(AuditEvent.objects.filter(chain_key=org.pk).order_by("seq"))
    # The events 100–90 days old (seq 1–11) go; the ones younger than that stay.
    last_old = max(e.seq for e in chain if e.occurred_at < days_ago(90))
    assert last_old == 11
    with django_capture_on_commit_callbacks(execute=True):
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

    assert list(tmp_path.iterdir()) == [archive]  # no .partial left behind
    # The database recorded what its prune function deleted.
    (row,) = AuditPruneRecord.objects.filter(chain_key=org.pk)
    assert (row.first_seq, row.last_seq, row.count) == (1, last_old, len(gone))
    assert row.last_hash == gone[-1].hash and row.cutoff < days_ago(89)

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
    assert pruned == 6  # the events older than 95 days; org_setup's chains are all of today
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


def test_an_event_newer_than_the_cutoff_stops_the_prune_there(aged, tmp_path):
    """Only events older than the cutoff go, as a prefix: an old event appended after a
    newer one stays (with everything after the newer one)."""
    org = aged.org
    events = list(AuditEvent.objects.filter(chain_key=org.pk).order_by("seq"))
    make_event(org, at=days_ago(200))  # old, but after five recent events in the chain
    pruned = audit_prune(chain_key=org.pk, before=days_ago(95.5), archive_dir=tmp_path)
    assert pruned.details["last_seq"] == 5  # the events 100–96 days old
    remaining = AuditEvent.objects.filter(chain_key=org.pk)
    assert remaining.filter(occurred_at__lt=days_ago(199)).count() == 1
    assert remaining.filter(seq__lte=5).count() == 0 and remaining.count() == len(events) - 5 + 2
    assert verify_chain(org.pk).ok


@pytest.mark.postgres
def test_a_prune_the_database_refuses_leaves_no_archive_and_every_event(aged, tmp_path):
    """The archive is written first; when the delete fails (here: the database keeps at least
    30 days whatever the caller asks), the transaction rolls back and the archive goes too."""
    org = aged.org
    before = AuditEvent.objects.filter(chain_key=org.pk).count()
    with pytest.raises(DatabaseError, match="keeps at least 30 days"):
        audit_prune(chain_key=org.pk, before=days_ago(10), archive_dir=tmp_path)
    assert list(tmp_path.iterdir()) == []
    assert AuditEvent.objects.filter(chain_key=org.pk).count() == before
    assert not AuditPruneRecord.objects.exists()


def test_the_archive_gets_its_final_name_only_when_the_prune_commits(aged, tmp_path):
    """A prune inside a transaction that then rolls back: its events are all still there, so
    no finished archive may claim they were removed (only a `.partial` file remains)."""
    org = aged.org
    before = AuditEvent.objects.filter(chain_key=org.pk).count()

    class Abort(Exception):
        pass

    with pytest.raises(Abort), transaction.atomic():
        pruned = audit_prune(chain_key=org.pk, before=days_ago(90), archive_dir=tmp_path)
        assert pruned is not None
        raise Abort
    assert AuditEvent.objects.filter(chain_key=org.pk).count() == before
    assert list(tmp_path.glob("*.jsonl")) == []
    assert [p.name.endswith(".jsonl.partial") for p in tmp_path.iterdir()] == [True]


def test_a_retention_shorter_than_the_database_minimum_is_refused(aged):
    with pytest.raises(ValueError, match="at least 30 days"):
        prune_all(retention_days=7)
    assert prune_all(retention_days=0) == []
