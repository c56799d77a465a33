"""On PostgreSQL with 200,000 events, every filter combination's first page uses an index."""

import itertools
import re

import pytest
from django.db import connection
from django.utils import timezone

from audit.retention import ensure_partitions
from audit.selectors import encode_cursor, events_queryset
from tests.audit.helpers import days_ago

N = 200_000

ACTIONS = [
    "member.joined",
    "member.role_changed",
    "member.access_granted",
    "resource.created",
    "resource.updated",
    "sync.run_succeeded",
    "sync.run_failed",
    "workspace.linked",
    "org.updated",
    "billing.plan_changed",
    "token.created",
]


def _bulk_events(org, workspaces, actors):
    """One INSERT … SELECT generate_series: 200k events over a year, 3 orgs, 6 workspaces,
    12 actors and 11 actions. They live on a chain key of their own (-1), unchained, so the
    superuser seeds them with triggers off (the chain trigger would refuse them)."""
    other_orgs = [org.pk + 100_000, org.pk + 100_001]
    orgs = [org.pk, *other_orgs]
    ws_ids = [w.pk for w in workspaces] + [w + 1_000_000 for w in range(4)]
    actor_ids = [a.pk for a in actors] + [a + 1_000_000 for a in range(9)]
    with connection.cursor() as cur:
        cur.execute("SET LOCAL session_replication_role = replica")
        cur.execute(
            f"""
            INSERT INTO audit_auditevent (
                public_id, occurred_at, organization_id, workspace_id, workspace_label,
                actor_type, actor_user_id, actor_label, action, target_type, target_id,
                target_label, details, chain_key, seq, prev_hash, hash)
            SELECT 'evt_bulk' || g,
                   now() - (g || ' seconds')::interval * 150,
                   (%(orgs)s::bigint[])[1 + g %% 3],
                   CASE WHEN g %% 7 = 0 THEN NULL ELSE (%(ws)s::bigint[])[1 + g %% {len(ws_ids)}] END,
                   'W', 'user',
                   (%(actors)s::bigint[])[1 + g %% {len(actor_ids)}],
                   'A',
                   (%(actions)s::text[])[1 + g %% {len(ACTIONS)}],
                   'user', 'usr_x', 'T', '{{}}'::jsonb, -1, g, '', ''
            FROM generate_series(1, {N}) AS g
            """,
            {"orgs": orgs, "ws": ws_ids, "actors": actor_ids, "actions": ACTIONS},
        )
        cur.execute("SET LOCAL session_replication_role = DEFAULT")
        cur.execute("ANALYZE audit_auditevent")


def scanned_whole(plan: str) -> list[str]:
    """Audit partitions holding events that the plan reads from end to end (an empty one, such
    as a month ahead or the DEFAULT partition, costs nothing to read)."""
    with connection.cursor() as cur:
        cur.execute("SELECT DISTINCT tableoid::regclass::text FROM audit_auditevent")
        holding = {row[0] for row in cur.fetchall()}
    return [p for p in re.findall(r"Seq Scan on (audit_auditevent\w*)", plan) if p in holding]


@pytest.fixture
def bulk(org_setup):
    """The 200k events, removed again afterwards and the table re-analysed: ANALYZE's row
    estimate survives the test's rollback and other tests (the admin's estimated counts)
    read it."""
    s = org_setup
    # As in production, each month of the year has its partition (audit/retention.py).
    ensure_partitions(timezone.now(), since=days_ago(N * 150 / 86400 + 1))
    _bulk_events(s.org, [s.ws_a, s.ws_b], [s.owner, s.admin, s.member])
    yield s
    with connection.cursor() as cur:
        cur.execute("SET LOCAL session_replication_role = replica")
        cur.execute("DELETE FROM audit_auditevent WHERE chain_key = -1")
        cur.execute("SET LOCAL session_replication_role = DEFAULT")
        cur.execute("ANALYZE audit_auditevent")


@pytest.mark.postgres
def test_first_page_of_every_filter_combination_uses_an_index(bulk):
    s = bulk
    options = {
        "workspace": [None, s.ws_a.pk],
        "actor": [None, s.admin.pk],
        "action": [None, "member.*"],
        "range": [None, (days_ago(200), days_ago(100))],
    }
    plans = {}
    for ws, actor, action, rng in itertools.product(*options.values()):
        since, until = rng or (None, None)
        qs = events_queryset(
            s.org, workspace=ws, actor=actor, action=action, since=since, until=until
        )
        plan = qs[:51].explain()
        key = (ws is not None, actor is not None, action is not None, rng is not None)
        plans[key] = plan
        assert not scanned_whole(plan), f"{key}:\n{plan}"
        assert "audit_auditevent" in plan and "Index" in plan, f"{key}:\n{plan}"
    assert len(plans) == 16
    # Exact actions and a later page use an index too.
    exact = events_queryset(s.org, action="member.joined")[:51].explain()
    assert not scanned_whole(exact), exact
    first = list(events_queryset(s.org)[:50])
    later = events_queryset(s.org, cursor=encode_cursor(first[-1]))[:51].explain()
    assert not scanned_whole(later), later
