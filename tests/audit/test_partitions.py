"""The events table partitioned by month (PostgreSQL): the chain, the append-only rules,
retention by whole partitions, partition pruning and record()'s SQL hash (the admin's
trigram search: tests/test_admin.py)."""

import datetime as dt
import hashlib
import json

import pytest
from django.db import connection, transaction
from django.db.utils import DatabaseError
from django.utils import timezone

from audit.chain import verify_and_record, verify_chain
from audit.dbsecurity import DEFAULT_PARTITION, PARTITION_PREFIX
from audit.models import AuditEvent, AuditPruneRecord, ChainCheckpoint
from audit.retention import ensure_partitions, monthly_partitions, prune_all
from audit.selectors import events_queryset
from audit.services import event_hash, hash_parts, record
from orgs.models import Organization
from tests.audit.helpers import make_event
from tests.audit.test_dbsecurity import become_app_role

pytestmark = pytest.mark.postgres


def month_start(months_ago: int) -> dt.datetime:
    """The first instant (UTC) of the calendar month `months_ago` months before this one."""
    now = timezone.now().astimezone(dt.UTC)
    index = now.year * 12 + now.month - 1 - months_ago
    return dt.datetime(index // 12, index % 12 + 1, 1, tzinfo=dt.UTC)


def partition_name(at: dt.datetime) -> str:
    return f"{PARTITION_PREFIX}{at:%Y_%m}"


def partition_of(event: AuditEvent) -> str:
    with connection.cursor() as cur:
        cur.execute(
            "SELECT tableoid::regclass::text FROM audit_auditevent WHERE id = %s AND occurred_at = %s",
            [event.pk, event.occurred_at],
        )
        return cur.fetchone()[0]


def plan(qs) -> str:
    sql, params = qs.query.sql_with_params()
    with connection.cursor() as cur:
        cur.execute("EXPLAIN " + sql, params)
        return "\n".join(row[0] for row in cur.fetchall())


def test_record_computes_in_sql_the_hash_python_defines(org_setup):
    """The hash the database computes is event_hash() of the stored row, for awkward content."""
    details = {
        "name": 'Zoë "the \\ admin" ✓',
        "nested": {"b": [1, 2.5, None, True], "a": "x\ny\t"},
        "emoji": "🚀",
        "prev_hash": "not the real one",
        "seq": 99,
    }
    with transaction.atomic():
        event = record(
            actor=org_setup.owner,
            action="org.updated",
            organization=org_setup.org,
            target=org_setup.org,
            details=details,
        )
    stored = AuditEvent.objects.get(pk=event.pk)
    assert stored.hash == event.hash == event_hash(stored)
    a, b, c = hash_parts(stored)
    expected = hashlib.sha256((a + stored.prev_hash + b + str(stored.seq) + c).encode())
    assert expected.hexdigest() == stored.hash
    assert json.loads(a + stored.prev_hash + b + str(stored.seq) + c)["details"] == details
    assert verify_chain(org_setup.org.pk).ok


def test_events_land_in_their_month_and_the_chain_verifies_across_the_boundary(org_setup):
    org = Organization.objects.create(name="Boundary Co", slug="boundary-co")
    ensure_partitions(timezone.now(), since=month_start(3))
    boundary = month_start(2)
    before = [make_event(org, at=boundary - dt.timedelta(minutes=5 - i)) for i in range(3)]
    after = [make_event(org, at=boundary + dt.timedelta(minutes=i)) for i in range(3)]
    assert {partition_of(e) for e in before} == {partition_name(month_start(3))}
    assert {partition_of(e) for e in after} == {partition_name(boundary)}
    result = verify_chain(org.pk)
    assert result.ok, result.problem
    assert result.count == 6


def test_a_month_nobody_created_falls_into_the_default_partition_then_moves(org_setup):
    org = Organization.objects.create(name="Future Co", slug="future-co")
    far = month_start(-9) + dt.timedelta(days=3)  # nine months ahead: no partition yet
    event = make_event(org, at=far)
    assert partition_of(event) == DEFAULT_PARTITION
    assert ensure_partitions(far, since=far) == 1
    assert partition_of(event) == partition_name(far)
    assert verify_chain(org.pk).ok


def test_a_new_partition_is_append_only_for_everyone(org_setup):
    """UPDATE and DELETE are refused on a partition created after the migration, through the
    parent or directly; the app role cannot touch the partition itself at all."""
    org = Organization.objects.create(name="Fresh Co", slug="fresh-co")
    month = month_start(-6)
    assert ensure_partitions(month, since=month) == 1
    event = make_event(org, at=month + dt.timedelta(days=1))
    name = partition_of(event)
    assert name == partition_name(month)
    for sql in (
        "UPDATE audit_auditevent SET actor_label = 'x' WHERE id = %s",
        "DELETE FROM audit_auditevent WHERE id = %s",
        f"UPDATE {name} SET actor_label = 'x' WHERE id = %s",
        f"DELETE FROM {name} WHERE id = %s",
    ):
        # Even the superuser the suite connects as: only the owner role may delete.
        with (
            pytest.raises(DatabaseError, match="append-only"),
            transaction.atomic(),
            connection.cursor() as cur,
        ):
            cur.execute(sql, [event.pk])
    become_app_role()
    for sql in (
        f"UPDATE {name} SET actor_label = 'x'",
        f"DELETE FROM {name}",
        f"TRUNCATE {name}",
        f"DROP TABLE {name}",
        f"ALTER TABLE audit_auditevent DETACH PARTITION {name}",
        f"ALTER TABLE {name} DISABLE TRIGGER ALL",
        f"DROP TABLE {DEFAULT_PARTITION}",
        f"INSERT INTO {name} SELECT * FROM {name}",
        f"SELECT audit_drop_partition('{name}', now() - interval '400 days', "
        "'{}'::bigint[], '{}'::bigint[], '{}'::text[], '{}'::bigint[])",
    ):
        with pytest.raises(DatabaseError) as exc, transaction.atomic(), connection.cursor() as cur:
            cur.execute(sql)
        assert exc.value.__cause__.sqlstate == "42501", (sql, exc.value)
    with connection.cursor() as cur:
        cur.execute("RESET ROLE")
    assert AuditEvent.objects.filter(pk=event.pk, actor_label=event.actor_label).exists()
    assert verify_chain(org.pk).ok


@pytest.fixture
def old_months(org_setup, tmp_path, settings):
    """An org whose chain starts with events in the months 5 and 4 back, then one 2 months
    back, then today's; a signed checkpoint inside the oldest month and one at the head."""
    settings.AUDIT_ARCHIVE_DIR = tmp_path
    settings.AUDIT_CHECKPOINT_EVERY = 0
    org = Organization.objects.create(name="Old Months", slug="old-months")
    ensure_partitions(timezone.now(), since=month_start(5))
    oldest = [make_event(org, at=month_start(5) + dt.timedelta(days=d)) for d in (1, 2, 3)]
    verify_and_record(org.pk)  # a checkpoint at seq 3, inside the oldest month
    older = [make_event(org, at=month_start(4) + dt.timedelta(days=d)) for d in (1, 2)]
    kept = [make_event(org, at=month_start(2) + dt.timedelta(days=1)), make_event(org)]
    verify_and_record(org.pk)
    org_setup.old = org
    org_setup.events = oldest, older, kept
    return org_setup


def test_retention_drops_whole_old_partitions_and_the_chain_still_verifies(
    old_months, tmp_path, django_capture_on_commit_callbacks
):
    org = old_months.old
    oldest, older, kept = old_months.events
    names = {partition_name(month_start(5)), partition_name(month_start(4))}
    assert names <= {p[0] for p in monthly_partitions()}
    with django_capture_on_commit_callbacks(execute=True):
        pruned = prune_all(retention_days=60)

    # Both whole months went (as tables), the one two months back (partly inside) stayed.
    left = {p[0] for p in monthly_partitions()}
    assert not names & left and partition_name(month_start(2)) in left
    assert [p.details["partition"] for p in pruned] == sorted(names)
    assert not AuditEvent.objects.filter(pk__in=[e.pk for e in oldest + older]).exists()
    assert AuditEvent.objects.filter(pk__in=[e.pk for e in kept]).count() == 2
    # The database recorded each range; the checkpoint inside the dropped range went with it.
    records = AuditPruneRecord.objects.filter(chain_key=org.pk).order_by("first_seq")
    assert [(r.first_seq, r.last_seq, r.count) for r in records] == [(1, 3, 3), (4, 5, 2)]
    assert not ChainCheckpoint.objects.filter(chain_key=org.pk, seq__lte=5).exists()
    assert ChainCheckpoint.objects.filter(chain_key=org.pk, seq__gt=5).exists()
    # Archives: every event with its hash, named in the audit.pruned event that anchors the rest.
    second = pruned[-1]
    lines = (tmp_path / second.details["archive"]).read_bytes()
    assert hashlib.sha256(lines).hexdigest() == second.details["archive_sha256"]
    assert [json.loads(x)["public_id"] for x in lines.splitlines()] == [e.public_id for e in older]
    assert second.details["next_seq"] == 6 and second.details["next_prev_hash"] == older[-1].hash
    assert not list(tmp_path.glob("*.partial"))
    result = verify_chain(org.pk)
    assert result.ok, result.problem
    assert result.count == len(kept) + 2  # the kept events and the two audit.pruned


def test_a_month_that_is_not_the_start_of_a_chain_is_kept(old_months, tmp_path):
    """Dropping the month 4 back first would cut the chain in the middle (its seq 1–3 are in
    the month before): the database refuses, the archive is removed, nothing changes."""
    from audit.retention import drop_partition

    org = old_months.old
    name = partition_name(month_start(4))
    with pytest.raises(DatabaseError, match="not a prefix"):
        drop_partition(name=name, before=timezone.now() - dt.timedelta(days=60))
    assert name in {p[0] for p in monthly_partitions()}
    assert not list(tmp_path.iterdir())
    assert AuditEvent.objects.filter(chain_key=org.pk).count() == 7
    assert verify_chain(org.pk).ok


def test_a_time_bounded_query_scans_only_the_matching_partitions(org_setup):
    ensure_partitions(timezone.now(), since=month_start(6))
    since, until = month_start(3) + dt.timedelta(days=2), month_start(2) + dt.timedelta(days=5)
    text = plan(events_queryset(org_setup.org, since=since, until=until)[:50])
    scanned = {name for name, *_ in monthly_partitions() if name in text}
    assert scanned == {partition_name(month_start(3)), partition_name(month_start(2))}, text
    assert DEFAULT_PARTITION not in text
    # Without bounds every partition is a candidate.
    assert partition_name(month_start(6)) in plan(events_queryset(org_setup.org)[:50])


def test_the_app_role_makes_partitions_and_prunes_whole_months(
    old_months, django_capture_on_commit_callbacks
):
    """The beat tasks' work, as the application's role: only through the two functions."""
    org = old_months.old
    become_app_role()
    ahead = month_start(-8)
    assert ensure_partitions(ahead, since=ahead) == 1
    with django_capture_on_commit_callbacks(execute=True):
        pruned = prune_all(retention_days=60)
    assert len(pruned) == 2 and {p.organization_id for p in pruned} == {org.pk}
    assert partition_name(ahead) in {p[0] for p in monthly_partitions()}
    assert verify_chain(org.pk).ok


def test_a_batch_that_repeats_a_seq_is_refused(org_setup):
    """Without a UNIQUE (chain_key, seq) index, the insert trigger itself refuses a statement
    whose seqs repeat, even when every event links to the one before it in some order."""
    org = Organization.objects.create(name="Repeat Co", slug="repeat-co")
    first = make_event(org)
    columns = (
        "public_id, occurred_at, workspace_label, actor_type, actor_label, action, target_type, "
        "target_id, target_label, details, chain_key, seq, prev_hash, hash"
    )
    rows, prev = [], first.hash
    for n, seq in enumerate((2, 3, 3, 5)):
        digest = hashlib.sha256(f"forged {n}".encode()).hexdigest()
        rows.append((f"evt_repeat{n}", seq, prev, digest))
        prev = digest
    values = ", ".join(
        f"('{pid}', now(), '', 'system', 'S', 'org.updated', '', '', '', '{{}}', %s, {seq}, "
        f"'{p}', '{h}')"
        for pid, seq, p, h in rows
    )
    with (
        pytest.raises(DatabaseError, match="does not link"),
        transaction.atomic(),
        connection.cursor() as cur,
    ):
        cur.execute(f"INSERT INTO audit_auditevent ({columns}) VALUES {values}", [org.pk] * 4)
    assert list(AuditEvent.objects.filter(chain_key=org.pk).values_list("seq", flat=True)) == [1]
    assert verify_chain(org.pk).ok
