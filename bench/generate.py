"""Fill the bench database: one big org and one small control org, with COPY and set-based SQL.

The rows are written directly, not through the services: a million audit events through
record() would take longer than the measurements. What the services guarantee is kept by
construction: one membership per (user, org/workspace), every workspace has an owner, and the
audit events form a valid hash chain computed with the same `event_hash` as record() (seq 1…N
in time order, the chain head set to the last hash), so `verify` checks generated and real
events alike and later record() calls continue the same chain.
"""

from __future__ import annotations

import json
import random
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

from django.contrib.auth.hashers import make_password
from django.db import connection
from django.utils import timezone

from audit.models import AuditChainHead, AuditEvent
from audit.retention import ensure_partitions
from audit.services import HASHED_FIELDS, event_hash
from billing.models import BillingAccount, Plan
from config.roles import Role
from members.models import Invitation, OrgMembership, User
from orgs.models import Organization, WorkspaceLinkPeriod
from workspaces.models import (
    DataModel,
    Destination,
    Sync,
    Warehouse,
    Workspace,
    WorkspaceMembership,
)

BENCH_PASSWORD = "bench-password-123"
OWNER_EMAIL = "owner@bench.test"

FIRST = [
    "Ada",
    "Alan",
    "Alice",
    "Amir",
    "Ana",
    "Bea",
    "Ben",
    "Carla",
    "Chen",
    "Dara",
    "Dmitri",
    "Eli",
    "Emma",
    "Farah",
    "Finn",
    "Grace",
    "Hana",
    "Ines",
    "Ivan",
    "Jon",
    "Julia",
    "Kai",
    "Lena",
    "Leo",
    "Maya",
    "Marco",
    "Nina",
    "Noah",
    "Olga",
    "Omar",
    "Priya",
    "Quinn",
    "Rosa",
    "Sam",
    "Sofia",
    "Tariq",
    "Uma",
    "Vera",
    "Wei",
    "Yusuf",
    "Zoe",
]
LAST = [
    "Abbott",
    "Baker",
    "Chen",
    "Dubois",
    "Evans",
    "Fischer",
    "Garcia",
    "Haddad",
    "Ito",
    "Jensen",
    "Kowalski",
    "Lopez",
    "Moreau",
    "Nakamura",
    "Okafor",
    "Patel",
    "Quinn",
    "Rossi",
    "Schmidt",
    "Tanaka",
    "Umar",
    "Varga",
    "Weber",
    "Xu",
    "Yilmaz",
    "Zhang",
]

# (action, weight, has workspace, actor is system)
ACTIONS = [
    ("member.access_granted", 14, True, False),
    ("member.access_changed", 6, True, False),
    ("member.access_revoked", 3, True, False),
    ("member.role_changed", 5, False, False),
    ("member.invited", 8, False, False),
    ("member.joined", 5, False, False),
    ("resource.created", 6, True, False),
    ("resource.updated", 20, True, False),
    ("resource.deleted", 2, True, False),
    ("sync.run_failed", 25, True, True),
    ("governance.policy_updated", 2, False, False),
    ("billing.settings_updated", 1, False, False),
    ("token.created", 3, False, False),
]


@dataclass(frozen=True)
class Scale:
    name: str
    workspaces: int
    members: int
    admins: int
    audit_events: int
    sync_runs: int
    pending_invitations: int
    invite_batch: int
    runs: int  # repetitions per measurement (the median is reported)
    record_batch: int  # audit events per throughput round


SCALES = {
    # Issue 15: 100k members, 200 workspaces, 10M audit events, 5M sync runs. Needs ~15 GB of
    # disk and tens of minutes on a 2-core machine (the audit hash chain is computed in Python).
    "xl": Scale("xl", 200, 100_000, 50, 10_000_000, 5_000_000, 500, 1000, 10, 100),
    "large": Scale("large", 50, 10_000, 20, 1_000_000, 1_000_000, 200, 1000, 20, 100),
    "small": Scale("small", 50, 500, 20, 50_000, 50_000, 50, 1000, 20, 100),
    # For CI: same shape, seconds to build.
    "tiny": Scale("tiny", 10, 200, 5, 5_000, 5_000, 20, 100, 20, 50),
}
# A small org measured with the same pages: equal query counts show they do not grow with size.
CONTROL = Scale("control", 3, 60, 3, 300, 600, 3, 0, 0, 0)


@dataclass
class OrgData:
    org: Organization
    owner: User
    workspaces: list[Workspace]
    admins: list[User]
    member_ids: list[int] = field(default_factory=list)
    events: int = 0
    runs: int = 0


def _tz(dt: datetime) -> datetime:
    return dt.astimezone(UTC)


def make_owner() -> User:
    return User.objects.create(
        email=OWNER_EMAIL,
        full_name="Olivia Owner",
        password=make_password(BENCH_PASSWORD),
        email_verified_at=timezone.now(),
    )


def generate_org(*, scale: Scale, owner: User, slug: str, seed: int, log=print) -> OrgData:
    rng = random.Random(seed)
    now = timezone.now()
    enterprise = Plan.objects.get(code="enterprise")
    org = Organization.objects.create(
        name=f"{slug.title()} Industries",
        slug=slug,
        created_by=owner,
        created_at=now - timedelta(days=400),
    )
    BillingAccount.objects.create(organization=org, plan=enterprise, billing_email=owner.email)
    OrgMembership.objects.create(
        user=owner, organization=org, role=Role.OWNER, joined_at=now - timedelta(days=400)
    )
    workspaces = Workspace.objects.bulk_create(
        Workspace(
            name=f"{slug.title()} {i:02d}",
            slug=f"{slug}-ws-{i:02d}",
            organization=org,
            linked_at=now - timedelta(days=390),
            created_at=now - timedelta(days=395),
        )
        for i in range(1, scale.workspaces + 1)
    )
    WorkspaceLinkPeriod.objects.bulk_create(
        WorkspaceLinkPeriod(organization=org, workspace=ws, linked_at=ws.linked_at or now)
        for ws in workspaces
    )
    sync_labels = _resources(workspaces)
    log(f"  {slug}: org, {len(workspaces)} workspaces, {len(sync_labels)} syncs")

    users = _users(scale, slug, rng, now)
    admin_ids = [u[0] for u in users[: scale.admins]]
    _memberships(org, owner, workspaces, users, scale, rng, now)
    log(f"  {slug}: {len(users)} members with workspace grants")
    _invitations(org, owner, workspaces, scale, rng, now)
    data = OrgData(
        org=org,
        owner=owner,
        workspaces=workspaces,
        admins=list(User.objects.filter(pk__in=admin_ids).order_by("pk")),
        member_ids=[u[0] for u in users],
    )
    data.events = _audit_events(org, owner, workspaces, users, sync_labels, scale, rng, now)
    log(f"  {slug}: {data.events} audit events in one hash chain")
    data.runs = _sync_runs(org, workspaces, scale)
    log(f"  {slug}: {data.runs} sync runs")
    _activity(workspaces)
    return data


def _resources(workspaces) -> list[tuple[int, int, str, str]]:
    """2 warehouses, 10 models, 5 destinations, 20 syncs per workspace; returns the syncs."""
    whs = Warehouse.objects.bulk_create(
        Warehouse(workspace=ws, name=f"Warehouse {i}", kind="snowflake")
        for ws in workspaces
        for i in range(2)
    )
    by_ws: dict[int, Warehouse] = {}
    for wh in whs:
        by_ws.setdefault(wh.workspace_id, wh)
    models = DataModel.objects.bulk_create(
        DataModel(workspace=ws, warehouse=by_ws[ws.pk], name=f"Model {i}", sql="select 1")
        for ws in workspaces
        for i in range(10)
    )
    dests = Destination.objects.bulk_create(
        Destination(workspace=ws, name=f"Destination {i}", kind="hubspot")
        for ws in workspaces
        for i in range(5)
    )
    model_by_ws: dict[int, list[DataModel]] = {}
    dest_by_ws: dict[int, list[Destination]] = {}
    for m in models:
        model_by_ws.setdefault(m.workspace_id, []).append(m)
    for d in dests:
        dest_by_ws.setdefault(d.workspace_id, []).append(d)
    syncs = Sync.objects.bulk_create(
        Sync(
            workspace=ws,
            name=f"Sync {i}",
            model=model_by_ws[ws.pk][i % 10],
            destination=dest_by_ws[ws.pk][i % 5],
        )
        for ws in workspaces
        for i in range(20)
    )
    return [(s.pk, s.workspace_id, s.public_id, s.name) for s in syncs]


def _copy(table: str, columns: list[str], rows, *, triggers: bool = True) -> None:
    """COPY rows in. `triggers=False` skips row triggers and foreign-key checks for this COPY
    (session_replication_role = replica; the bench runs as a superuser): generated ids are
    valid by construction, and at millions of rows the per-row FK checks queued to the end of
    the statement cost more than the COPY itself. The caller then fixes up whatever triggers
    would have kept (see _memberships)."""
    connection.ensure_connection()
    cols = ", ".join(columns)
    with connection.connection.cursor() as cur:
        if not triggers:
            cur.execute("SET session_replication_role = replica")
        try:
            with cur.copy(f"COPY {table} ({cols}) FROM STDIN") as cp:
                for row in rows:
                    cp.write_row(row)
        finally:
            if not triggers:
                cur.execute("SET session_replication_role = DEFAULT")


def _users(scale: Scale, slug: str, rng: random.Random, now) -> list[tuple[int, str, str]]:
    """Creates the members' accounts; returns (id, public_id, full name) in creation order."""
    password = make_password(BENCH_PASSWORD)  # one hash for all: sign-in works for any of them
    rows = []
    for i in range(scale.members):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        active = now - timedelta(seconds=rng.randint(0, 90 * 86400)) if rng.random() < 0.9 else None
        rows.append(
            (
                password,
                False,
                f"usr_{slug[:4]}{i:011x}",
                f"{first}.{last}.{i}@{slug}.bench.test".lower(),
                f"{first} {last}",
                True,
                False,
                now - timedelta(seconds=rng.randint(0, 700 * 86400)),
                active,
            )
        )
    _copy(
        "members_user",
        [
            "password",
            "is_superuser",
            "public_id",
            "email",
            "full_name",
            "is_active",
            "is_staff",
            "date_joined",
            "last_active_at",
        ],
        rows,
    )
    with connection.cursor() as cur:
        cur.execute(
            "SELECT id, public_id, full_name FROM members_user WHERE email LIKE %s ORDER BY id",
            [f"%@{slug}.bench.test"],
        )
        return list(cur.fetchall())


def _memberships(org, owner, workspaces, users, scale, rng, now) -> None:
    org_rows = []
    ws_rows = []
    for n, (uid, _pid, _name) in enumerate(users):
        role = Role.ADMIN if n < scale.admins else Role.MEMBER
        org_rows.append(
            (
                f"mem_{org.pk:x}x{n:010x}",
                uid,
                org.pk,
                role,
                now - timedelta(days=rng.randint(1, 380)),
                "",  # suspension_reason: nobody is suspended
            )
        )
        for ws in rng.sample(workspaces, rng.randint(1, min(10, len(workspaces)))):
            ws_role = Role.ADMIN if rng.random() < 0.15 else Role.MEMBER
            source = "direct" if rng.random() < 0.2 else "org"
            created = now - timedelta(days=rng.randint(1, 380))
            ws_rows.append((uid, ws.pk, ws_role, source, owner.pk, created, created))
    for ws in workspaces:
        ws_rows.append((owner.pk, ws.pk, Role.OWNER, "direct", None, ws.created_at, ws.created_at))
    _copy(
        OrgMembership._meta.db_table,
        ["public_id", "user_id", "organization_id", "role", "joined_at", "suspension_reason"],
        org_rows,
        triggers=False,
    )
    _copy(
        WorkspaceMembership._meta.db_table,
        ["user_id", "workspace_id", "role", "source", "granted_by_id", "created_at", "updated_at"],
        ws_rows,
        triggers=False,
    )
    # What the membership triggers keep (members migration 0007), set in one statement.
    with connection.cursor() as cur:
        cur.execute(MEMBERSHIP_COLUMNS_SQL, [org.pk])


MEMBERSHIP_COLUMNS_SQL = """
UPDATE members_orgmembership m
SET workspace_count = (
        SELECT count(*) FROM workspaces_workspacemembership wm
        JOIN workspaces_workspace w ON w.id = wm.workspace_id
        WHERE wm.user_id = m.user_id AND w.organization_id = m.organization_id
    ),
    sort_name = lower(coalesce(nullif(u.full_name, ''), u.email))
FROM members_user u
WHERE u.id = m.user_id AND m.organization_id = %s
"""


def _invitations(org, owner, workspaces, scale, rng, now) -> None:
    states = ["queued", "sent", "sent", "failed"]
    Invitation.objects.bulk_create(
        Invitation(
            organization=org,
            email=f"pending{i}@{org.slug}.invitee.test",
            org_role=Role.MEMBER,
            invited_by=owner,
            token_hash=secrets.token_hex(32),
            created_at=now - timedelta(days=rng.randint(0, 6)),
            expires_at=now + timedelta(days=1),
            delivery_state=rng.choice(states),
            delivery_attempts=1,
        )
        for i in range(scale.pending_invitations)
    )


def _audit_events(org, owner, workspaces, users, syncs, scale, rng, now) -> int:
    """Events spread over the last year, oldest first, chained with record()'s event_hash."""
    n = scale.audit_events
    names, weights = zip(*[(a[0], a[1]) for a in ACTIONS], strict=True)
    meta = {a[0]: a for a in ACTIONS}
    admins = users[: scale.admins]
    start = now - timedelta(days=365)
    step = (now - timedelta(minutes=5) - start) / n
    ws_syncs: dict[int, list] = {}
    for s in syncs:
        ws_syncs.setdefault(s[1], []).append(s)
    actions = rng.choices(names, weights=weights, k=n)
    prev = ""
    columns = [*HASH_COLUMNS, "hash"]

    def rows():
        nonlocal prev
        for i in range(n):
            action = actions[i]
            _a, _w, in_ws, system = meta[action]
            ws = rng.choice(workspaces) if in_ws else None
            # Half the events come from the admins, the rest from anyone.
            actor = (
                None
                if system
                else (rng.choice(admins) if rng.random() < 0.5 else rng.choice(users))
            )
            if action.startswith(("resource.", "sync.")):
                sync = rng.choice(ws_syncs[ws.pk])
                ttype, tid, tlabel = "sync", sync[2], sync[3]
                details = (
                    {"error": "Destination rejected the batch"}
                    if system
                    else {
                        "resource_kind": "sync",
                        "changes": {"schedule": {"from": "daily", "to": "hourly"}},
                    }
                )
            elif action == "token.created":
                ttype, tid, tlabel, details = "apitoken", f"tok_{i:016x}"[:20], "CI token", {}
            else:
                target = rng.choice(users)
                ttype, tid, tlabel = "user", target[1], target[2]
                details = {"from_role": "member", "to_role": "admin", "role": "member"}
            ev = SimpleNamespace(
                public_id=f"evt_{org.pk:x}x{i:011x}",
                occurred_at=_tz(start + step * i + timedelta(microseconds=rng.randint(0, 999_999))),
                organization_id=org.pk,
                workspace_id=ws.pk if ws else None,
                workspace_label=ws.name if ws else "",
                actor_type="system" if actor is None else "user",
                actor_user_id=actor[0] if actor else None,
                actor_token_id=None,
                actor_label=actor[2] if actor else "System",
                action=action,
                target_type=ttype,
                target_id=tid,
                target_label=tlabel,
                details=details,
                ip=None
                if actor is None
                else f"10.{i % 250}.{(i >> 8) % 250}.{rng.randint(1, 250)}",
                chain_key=org.pk,
                seq=i + 1,
                prev_hash=prev,
            )
            ev.hash = event_hash(ev)
            prev = ev.hash
            row = [getattr(ev, c) for c in columns]
            row[columns.index("details")] = json.dumps(details)
            yield row

    # Partitioning (audit/retention.py): the year's monthly partitions exist before the COPY.
    ensure_partitions(now, since=start)
    # By the model's table name: with a partitioned audit table this is the parent, which routes
    # each row to its month.
    _copy(AuditEvent._meta.db_table, columns, rows(), triggers=False)
    AuditChainHead.objects.update_or_create(
        chain_key=org.pk, defaults={"last_seq": n, "last_hash": prev}
    )
    return n


# The columns COPY writes are exactly the ones the chain hash covers.
HASH_COLUMNS = list(HASHED_FIELDS)

SYNC_RUNS_SQL = """
WITH s AS (
    SELECT id, workspace_id, (row_number() OVER (ORDER BY id) - 1) AS rn
    FROM workspaces_sync WHERE workspace_id = ANY(%(ws)s)
), nc AS (SELECT count(*) AS c FROM s)
INSERT INTO workspaces_syncrun (public_id, sync_id, workspace_id, started_at, finished_at,
                                status, rows_processed, bytes_processed, error, recorded_at)
SELECT %(prefix)s || lpad(to_hex(x.g), 12, '0'), s.id, s.workspace_id,
       x.fin - interval '3 minutes', x.fin,
       CASE WHEN x.failed THEN 'failed' ELSE 'succeeded' END,
       CASE WHEN x.failed THEN 0 ELSE x.nrows END,
       CASE WHEN x.failed THEN 0 ELSE x.nrows * 180 END,
       CASE WHEN x.failed THEN 'Destination rejected the batch' ELSE '' END,
       x.fin + x.lag
FROM (
    SELECT g, now() - random() * interval '365 days' AS fin, random() < 0.07 AS failed,
           (random() * 50000)::bigint AS nrows,
           -- a few runs arrive late, to exercise the roll-up's watermark
           CASE WHEN random() < 0.02 THEN interval '2 days' ELSE interval '1 minute' END AS lag
    FROM generate_series(1, %(n)s) AS g
) x
CROSS JOIN nc
JOIN s ON s.rn = x.g %% nc.c
"""


def _sync_runs(org, workspaces, scale) -> int:
    with connection.cursor() as cur:
        # Millions of rows: no per-row foreign-key checks (the ids come from the tables).
        cur.execute("SET session_replication_role = replica")
        try:
            cur.execute(
                SYNC_RUNS_SQL,
                {
                    "ws": [w.pk for w in workspaces],
                    "prefix": f"run_{org.pk:x}x",
                    "n": scale.sync_runs,
                },
            )
            return cur.rowcount
        finally:
            cur.execute("SET session_replication_role = DEFAULT")


ACTIVITY_SQL = """
INSERT INTO billing_dailyactivemember (workspace_id, user_id, day)
SELECT wm.workspace_id, wm.user_id, current_date - (random() * %(days)s)::int
FROM workspaces_workspacemembership wm CROSS JOIN generate_series(1, %(times)s)
WHERE wm.workspace_id = ANY(%(ws)s) AND random() < %(share)s
ON CONFLICT DO NOTHING
"""


def _activity(workspaces) -> None:
    """Daily active rows: every grant a few days a year, half of them in the last 30 days."""
    ws = [w.pk for w in workspaces]
    with connection.cursor() as cur:
        cur.execute(ACTIVITY_SQL, {"ws": ws, "days": 365, "times": 6, "share": 1.0})
        cur.execute(ACTIVITY_SQL, {"ws": ws, "days": 29, "times": 3, "share": 0.5})


def analyze() -> None:
    with connection.cursor() as cur:
        cur.execute("VACUUM ANALYZE")
