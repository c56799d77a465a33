"""Daily usage roll-ups: sync runs → one row per workspace per day, recomputed in set-based SQL.

The incremental pass finds the (workspace, day) pairs touched by runs recorded since the
watermark and recomputes those whole days from the raw runs in ONE statement
(INSERT … SELECT … GROUP BY … ON CONFLICT DO UPDATE). Recomputing whole days instead of adding
deltas makes it idempotent (running it twice changes nothing) and counts late-arriving runs.
The full pass deletes the roll-up and re-inserts it with one INSERT … SELECT (FULL_ROLLUP_SQL).
Every pass also recomputes the orgs' 30-day active-member counts (ACTIVE_COUNTS_SQL), so the
usage page reads a few precomputed rows instead of counting distinct people on each view.
Both run in one transaction holding the watermark row's lock, so two passes never interleave.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, Max
from django.utils import timezone

from billing.models import ActiveMemberCount, RollupWatermark
from workspaces.models import SyncRun

WATERMARK_NAME = "billing.daily_workspace_usage"
ACTIVE_WINDOW_DAYS = 30  # active members are counted over the last 30 days (UTC), today included
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# The watermark race: SyncRun.recorded_at is stamped when the run is written, but the row only
# becomes visible when its transaction commits. A run stamped at T whose transaction commits
# after a roll-up pass read the runs would be skipped forever if the watermark moved past T.
# So the watermark never moves closer than SAFETY_MARGIN to "now" (and never past the newest
# run actually seen): every pass re-scans the last few minutes of runs. Re-scanning is free of
# side effects because days are recomputed, not incremented. A run is only missed if its
# transaction stayed open longer than the margin (or the recording clock is off by more than
# that) — `rollup_usage --full` repairs even that.
SAFETY_MARGIN = timedelta(seconds=getattr(settings, "USAGE_ROLLUP_SAFETY_MARGIN_SECONDS", 300))

_COLUMNS = "workspace_id, day, runs, succeeded, failed, rows_processed, bytes_processed"
_SUCCEEDED = SyncRun.Status.SUCCEEDED.value
_FAILED = SyncRun.Status.FAILED.value

# The run's day is its finished_at date in UTC.
_PG_DAY = "(finished_at AT TIME ZONE 'UTC')::date"
_PG_AGGREGATES = f"""COUNT(*),
    COUNT(*) FILTER (WHERE r.status = '{_SUCCEEDED}'),
    COUNT(*) FILTER (WHERE r.status = '{_FAILED}'),
    COALESCE(SUM(r.rows_processed), 0),
    COALESCE(SUM(r.bytes_processed), 0)"""

# The full roll-up as one statement, into an emptied table (rollup_usage(full=True) deletes the
# old rows in the same transaction first). Also what the benchmark runs as the hand-written
# baseline.
FULL_ROLLUP_SQL = f"""
INSERT INTO billing_dailyworkspaceusage ({_COLUMNS})
SELECT r.workspace_id, {_PG_DAY.replace("finished_at", "r.finished_at")}, {_PG_AGGREGATES}
FROM workspaces_syncrun r
GROUP BY 1, 2
"""

# Recompute exactly the touched (workspace, day) pairs. The range condition on finished_at
# (rather than comparing the computed day) lets PostgreSQL use the (workspace, finished_at) index.
INCREMENTAL_ROLLUP_SQL = f"""
WITH touched AS (
    SELECT DISTINCT workspace_id, {_PG_DAY} AS day
    FROM workspaces_syncrun
    WHERE recorded_at > %s
)
INSERT INTO billing_dailyworkspaceusage ({_COLUMNS})
SELECT t.workspace_id, t.day, {_PG_AGGREGATES}
FROM touched t
JOIN workspaces_syncrun r
  ON r.workspace_id = t.workspace_id
 AND r.finished_at >= (t.day::timestamp AT TIME ZONE 'UTC')
 AND r.finished_at < ((t.day + 1)::timestamp AT TIME ZONE 'UTC')
GROUP BY t.workspace_id, t.day
ON CONFLICT (workspace_id, day) DO UPDATE SET
    runs = EXCLUDED.runs,
    succeeded = EXCLUDED.succeeded,
    failed = EXCLUDED.failed,
    rows_processed = EXCLUDED.rows_processed,
    bytes_processed = EXCLUDED.bytes_processed
"""

# SQLite (development): same statements; datetimes are stored as UTC text, so date() is the day.
_SQLITE_AGGREGATES = f"""COUNT(*),
    SUM(CASE WHEN r.status = '{_SUCCEEDED}' THEN 1 ELSE 0 END),
    SUM(CASE WHEN r.status = '{_FAILED}' THEN 1 ELSE 0 END),
    COALESCE(SUM(r.rows_processed), 0),
    COALESCE(SUM(r.bytes_processed), 0)"""

_SQLITE_FULL_ROLLUP_SQL = f"""
INSERT INTO billing_dailyworkspaceusage ({_COLUMNS})
SELECT r.workspace_id, date(r.finished_at), {_SQLITE_AGGREGATES}
FROM workspaces_syncrun r
WHERE true
GROUP BY 1, 2
"""

_SQLITE_INCREMENTAL_ROLLUP_SQL = f"""
WITH touched AS (
    SELECT DISTINCT workspace_id, date(finished_at) AS day
    FROM workspaces_syncrun
    WHERE recorded_at > %s
)
INSERT INTO billing_dailyworkspaceusage ({_COLUMNS})
SELECT t.workspace_id, t.day, {_SQLITE_AGGREGATES}
FROM touched t
JOIN workspaces_syncrun r
  ON r.workspace_id = t.workspace_id AND date(r.finished_at) = t.day
WHERE true
GROUP BY t.workspace_id, t.day
ON CONFLICT (workspace_id, day) DO UPDATE SET
    runs = excluded.runs,
    succeeded = excluded.succeeded,
    failed = excluded.failed,
    rows_processed = excluded.rows_processed,
    bytes_processed = excluded.bytes_processed
"""


# Active members, last ACTIVE_WINDOW_DAYS days, counted once per pass for every org: the
# distinct (workspace, person) pairs on days the workspace was linked to the org (a day counts
# when it was linked at any time that day, UTC — the same rule as the usage figures), then per
# workspace and org-wide. Replaces billing_activemembercount wholesale. Params: window start,
# window end (both dates), computed_at; each twice for the spans.
_ACTIVE_SPANS = """
SELECT p.organization_id, p.workspace_id,
       {greatest}({linked_day}, %(start)s) AS lo,
       {least}(COALESCE({unlinked_day}, %(end)s), %(end)s) AS hi
FROM orgs_workspacelinkperiod p
JOIN orgs_organization o ON o.id = p.organization_id AND o.deleted_at IS NULL
WHERE {linked_day} <= %(end)s AND (p.unlinked_at IS NULL OR {unlinked_day} >= %(start)s)
"""
_ACTIVE_COUNTS_SQL = """
WITH spans AS ({spans}),
pairs AS (
    SELECT DISTINCT s.organization_id, a.workspace_id, a.user_id
    FROM spans s
    JOIN billing_dailyactivemember a
      ON a.workspace_id = s.workspace_id AND a.day >= s.lo AND a.day <= s.hi
)
INSERT INTO billing_activemembercount
    (organization_id, workspace_id, window_start, window_end, active_members, computed_at)
SELECT organization_id, workspace_id, %(start)s, %(end)s, COUNT(*), %(now)s
FROM pairs GROUP BY organization_id, workspace_id
UNION ALL
SELECT organization_id, NULL, %(start)s, %(end)s, COUNT(DISTINCT user_id), %(now)s
FROM pairs GROUP BY organization_id
"""
ACTIVE_COUNTS_SQL = _ACTIVE_COUNTS_SQL.format(
    spans=_ACTIVE_SPANS.format(
        greatest="GREATEST",
        least="LEAST",
        linked_day="(p.linked_at AT TIME ZONE 'UTC')::date",
        unlinked_day="(p.unlinked_at AT TIME ZONE 'UTC')::date",
    )
)
_SQLITE_ACTIVE_COUNTS_SQL = _ACTIVE_COUNTS_SQL.format(
    spans=_ACTIVE_SPANS.format(
        greatest="MAX",
        least="MIN",
        linked_day="date(p.linked_at)",
        unlinked_day="date(p.unlinked_at)",
    )
)


def refresh_active_member_counts(*, now: datetime | None = None) -> int:
    """Recompute every org's 30-day active-member counts (per workspace and org-wide).

    Run by each roll-up pass, inside its transaction; returns the number of rows written.
    """
    now = now or timezone.now()
    end = now.astimezone(UTC).date()
    start = end - timedelta(days=ACTIVE_WINDOW_DAYS - 1)
    if connection.vendor == "postgresql":
        statement = ACTIVE_COUNTS_SQL
    elif connection.vendor == "sqlite":
        statement = _SQLITE_ACTIVE_COUNTS_SQL
    else:
        raise NotImplementedError(f"Active-member counts do not support {connection.vendor}.")
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM billing_activemembercount")
        cursor.execute(
            statement,
            {
                "start": connection.ops.adapt_datefield_value(start),
                "end": connection.ops.adapt_datefield_value(end),
                "now": connection.ops.adapt_datetimefield_value(now),
            },
        )
        # SQLite reports -1 for an INSERT that starts with WITH: count the rows instead.
        return cursor.rowcount if cursor.rowcount >= 0 else ActiveMemberCount.objects.count()


def _statements() -> tuple[str, str]:
    """(full, incremental) SQL for the current database."""
    if connection.vendor == "postgresql":
        return FULL_ROLLUP_SQL, INCREMENTAL_ROLLUP_SQL
    if connection.vendor == "sqlite":
        return _SQLITE_FULL_ROLLUP_SQL, _SQLITE_INCREMENTAL_ROLLUP_SQL
    raise NotImplementedError(
        f"Usage roll-ups support PostgreSQL and SQLite, not {connection.vendor}."
    )


def _lock_watermark() -> RollupWatermark:
    """The watermark row, locked until the transaction ends: concurrent passes run one by one.

    A second pass waits here, then reads the first one's watermark. (SQLite ignores FOR UPDATE,
    but its transactions are IMMEDIATE in our settings, so writers are serialised anyway.)
    """
    RollupWatermark.objects.get_or_create(name=WATERMARK_NAME, defaults={"value": EPOCH})
    return RollupWatermark.objects.select_for_update().get(name=WATERMARK_NAME)


def _next_watermark(current: datetime, newest_seen: datetime | None, now: datetime) -> datetime:
    if newest_seen is None:
        return current
    return max(current, min(newest_seen, now - SAFETY_MARGIN))


@transaction.atomic
def rollup_usage(*, full: bool = False) -> dict:
    """Bring DailyWorkspaceUsage up to date with the raw sync runs; returns what it did."""
    now = timezone.now()
    full_sql, incremental_sql = _statements()
    watermark = _lock_watermark()
    since = EPOCH if full else watermark.value
    with connection.cursor() as cursor:
        if full:
            runs_seen = None
            newest_seen = SyncRun.objects.aggregate(newest=Max("recorded_at"))["newest"]
            cursor.execute("DELETE FROM billing_dailyworkspaceusage")
            cursor.execute(full_sql)
            days = cursor.rowcount
        else:
            seen = SyncRun.objects.filter(recorded_at__gt=since).aggregate(
                n=Count("pk"), newest=Max("recorded_at")
            )
            runs_seen, newest_seen, days = seen["n"], seen["newest"], 0
            if runs_seen:
                cursor.execute(incremental_sql, [connection.ops.adapt_datetimefield_value(since)])
                days = cursor.rowcount
    active_rows = refresh_active_member_counts(now=now)
    previous = watermark.value
    watermark.value = _next_watermark(previous, newest_seen, now)
    watermark.save(update_fields=["value"])
    return {
        "mode": "full" if full else "incremental",
        "since": since.isoformat(),
        "runs_scanned": runs_seen,
        "days_recomputed": days,
        "watermark": watermark.value.isoformat(),
        "previous_watermark": previous.isoformat(),
        "active_member_rows": active_rows,
    }


@transaction.atomic
def rollup_recompute_days(*, workspace_ids: list[int], start: date, end: date) -> int:
    """Recompute the roll-up rows of these workspaces for the days start..end (UTC) from the raw
    runs; returns how many (workspace, day) rows now exist. A support repair for a day range
    (support/services.py); holds the watermark lock so it never interleaves with a pass."""
    from django.db.models import Q, Sum
    from django.db.models.functions import Coalesce, TruncDate

    from billing.models import DailyWorkspaceUsage

    _lock_watermark()
    low = datetime.combine(start, time.min, tzinfo=UTC)
    high = datetime.combine(end + timedelta(days=1), time.min, tzinfo=UTC)
    figures = (
        SyncRun.objects.filter(
            workspace_id__in=workspace_ids, finished_at__gte=low, finished_at__lt=high
        )
        .annotate(run_day=TruncDate("finished_at", tzinfo=UTC))
        .values("workspace_id", "run_day")
        .annotate(
            n=Count("pk"),
            ok=Count("pk", filter=Q(status=_SUCCEEDED)),
            bad=Count("pk", filter=Q(status=_FAILED)),
            rows=Coalesce(Sum("rows_processed"), 0),
            size=Coalesce(Sum("bytes_processed"), 0),
        )
        .order_by()
    )
    DailyWorkspaceUsage.objects.filter(
        workspace_id__in=workspace_ids, day__gte=start, day__lte=end
    ).delete()
    created = DailyWorkspaceUsage.objects.bulk_create(
        DailyWorkspaceUsage(
            workspace_id=f["workspace_id"],
            day=f["run_day"],
            runs=f["n"],
            succeeded=f["ok"],
            failed=f["bad"],
            rows_processed=f["rows"],
            bytes_processed=f["size"],
        )
        for f in figures
    )
    return len(created)
