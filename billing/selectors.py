"""Usage reads for an organization: the one report behind the Usage page and the usage API.

Figures come only from the roll-ups (DailyWorkspaceUsage, and ActiveMemberCount: the 30-day
active-member counts the roll-up pass computes from DailyActiveMember) and resource counts — never from raw sync runs — in a fixed number of queries whatever the range or the
number of workspaces. A workspace counts for the org only on the days it was linked to it: a
day counts when the workspace was linked at any time that day (UTC), per WorkspaceLinkPeriod,
so workspaces linked for part of the range (including ones unlinked since) are included.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import cached_property
from typing import Any

from django.db import connection
from django.db.models import Q, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from billing.linked_rows import linked_rows as _linked_rows
from billing.models import ActiveMemberCount
from billing.rollups import ACTIVE_WINDOW_DAYS as ACTIVE_WINDOW_DAYS  # the usage page says it
from config.bounds import DAY_RANGE_HINT, day_in_bounds
from config.errors import ValidationFailed
from orgs.models import Organization, WorkspaceLinkPeriod
from orgs.selectors import linked_workspaces

MAX_RANGE_DAYS = 366
MAX_SPARK_POINTS = 90  # longer ranges are drawn by week


def spark_bucket_days(days: int) -> int:
    """Days per sparkline point: 1 up to MAX_SPARK_POINTS days, else a week."""
    return 1 if days <= MAX_SPARK_POINTS else 7


def _rate(succeeded: int, runs: int) -> float | None:
    return round(succeeded / runs, 4) if runs else None


@dataclass
class DayUsage:
    day: date
    runs: int = 0
    succeeded: int = 0
    failed: int = 0
    rows_processed: int = 0
    bytes_processed: int = 0

    @property
    def success_rate(self) -> float | None:
        return _rate(self.succeeded, self.runs)

    def add(self, other: DayUsage) -> None:
        self.runs += other.runs
        self.succeeded += other.succeeded
        self.failed += other.failed
        self.rows_processed += other.rows_processed
        self.bytes_processed += other.bytes_processed

    def as_dict(self) -> dict:
        return {
            "day": self.day.isoformat(),
            "runs": self.runs,
            "succeeded": self.succeeded,
            "failed": self.failed,
            "success_rate": self.success_rate,
            "rows_processed": self.rows_processed,
            "bytes_processed": self.bytes_processed,
        }


@dataclass
class LinkSpan:
    """A stretch of days the workspace was linked to the org (unlinked_on None: still linked)."""

    linked_on: date
    unlinked_on: date | None

    def as_dict(self) -> dict:
        return {
            "linked_on": self.linked_on.isoformat(),
            "unlinked_on": self.unlinked_on.isoformat() if self.unlinked_on else None,
        }


@dataclass
class WorkspaceUsage:
    workspace_id: str
    name: str
    linked_now: bool
    linked_days: int = 0  # days of the range on which it counted for the org
    periods: list[LinkSpan] = field(default_factory=list)
    # Current resource counts (only for workspaces linked now; history is not kept for these).
    warehouses: int = 0
    models: int = 0
    syncs: int = 0
    destinations: int = 0
    members: int = 0
    active_members: int = 0
    runs: int = 0
    succeeded: int = 0
    failed: int = 0
    rows_processed: int = 0
    bytes_processed: int = 0
    # The range; runs summed per bucket of `bucket_days` days (the page's sparkline: at most
    # MAX_SPARK_POINTS points, weeks when the range is long), the last bucket possibly shorter.
    since: date | None = None
    days: int = 0
    bucket_days: int = 1
    runs_by_bucket: dict[int, int] = field(default_factory=dict, repr=False)
    # The roll-up figures by day index (runs, succeeded, failed, rows, bytes), fetched only when
    # asked for (the API's `daily` and the CSV), in one query for all the report's workspaces.
    _by_day: dict[int, tuple[int, int, int, int, int]] | None = field(default=None, repr=False)
    _load_days: Callable[[], None] | None = field(default=None, repr=False)

    @property
    def success_rate(self) -> float | None:
        return _rate(self.succeeded, self.runs)

    @property
    def by_day(self) -> dict[int, tuple[int, int, int, int, int]]:
        if self._by_day is None:
            if self._load_days is None:
                return {}
            self._load_days()  # fills _by_day of every workspace of the report
        return self._by_day or {}

    def runs_series(self) -> list[float]:
        """Runs per day (bucket_days 1) or average runs per day of each bucket, oldest first."""
        n = -(-self.days // self.bucket_days)
        values = [0.0] * n
        for i, runs in self.runs_by_bucket.items():
            width = min(self.bucket_days, self.days - i * self.bucket_days)
            values[i] = runs / width if self.bucket_days > 1 else runs
        return values

    @cached_property
    def daily(self) -> list[DayUsage]:
        """Every day of the range, zeros where the workspace had no runs (or wasn't linked)."""
        by_day, since = self.by_day, self.since
        if since is None:
            return []
        return [
            DayUsage(since + timedelta(i), *by_day[i])
            if i in by_day
            else DayUsage(since + timedelta(i))
            for i in range(self.days)
        ]

    def as_dict(self) -> dict:
        return {
            "workspace_id": self.workspace_id,
            "name": self.name,
            "linked_now": self.linked_now,
            "linked_days": self.linked_days,
            "link_periods": [p.as_dict() for p in self.periods],
            "warehouses": self.warehouses,
            "models": self.models,
            "syncs": self.syncs,
            "destinations": self.destinations,
            "members": self.members,
            "active_members": self.active_members,
            "runs": self.runs,
            "succeeded": self.succeeded,
            "failed": self.failed,
            "success_rate": self.success_rate,
            "rows_processed": self.rows_processed,
            "bytes_processed": self.bytes_processed,
            "daily": [d.as_dict() for d in self.daily],
        }


@dataclass
class UsageTotals:
    workspaces: int = 0  # linked now
    warehouses: int = 0
    models: int = 0
    syncs: int = 0
    destinations: int = 0
    active_members: int = 0  # distinct people, across workspaces
    runs: int = 0
    succeeded: int = 0
    failed: int = 0
    rows_processed: int = 0
    bytes_processed: int = 0

    @property
    def success_rate(self) -> float | None:
        return _rate(self.succeeded, self.runs)

    def as_dict(self) -> dict:
        return {
            "workspaces": self.workspaces,
            "warehouses": self.warehouses,
            "models": self.models,
            "syncs": self.syncs,
            "destinations": self.destinations,
            "active_members": self.active_members,
            "runs": self.runs,
            "succeeded": self.succeeded,
            "failed": self.failed,
            "success_rate": self.success_rate,
            "rows_processed": self.rows_processed,
            "bytes_processed": self.bytes_processed,
        }


@dataclass
class UsageReport:
    organization_id: str
    since: date
    until: date
    active_since: date  # active members are counted from here to active_until
    active_until: date
    totals: UsageTotals
    workspaces: list[WorkspaceUsage]
    daily: list[DayUsage]  # the org's totals per day, every day of the range

    @property
    def days(self) -> int:
        return (self.until - self.since).days + 1

    @property
    def has_runs(self) -> bool:
        return self.totals.runs > 0

    @property
    def partially_linked(self) -> list[WorkspaceUsage]:
        """Workspaces that counted for only some days of the range."""
        return [w for w in self.workspaces if 0 < w.linked_days < self.days]

    def as_dict(self) -> dict:
        return {
            "organization_id": self.organization_id,
            "from": self.since.isoformat(),
            "to": self.until.isoformat(),
            "active_members_from": self.active_since.isoformat(),
            "active_members_to": self.active_until.isoformat(),
            "totals": self.totals.as_dict(),
            "workspaces": [w.as_dict() for w in self.workspaces],
            "daily": [d.as_dict() for d in self.daily],
        }


def clean_usage_range(since: date | None, until: date | None) -> tuple[date, date]:
    """Both dates given, within config.bounds (2000–2100), from ≤ to, at most MAX_RANGE_DAYS
    days; else ValidationFailed."""
    errors = {}
    if since is None:
        errors["from"] = "Give a start date (YYYY-MM-DD)."
    if until is None:
        errors["to"] = "Give an end date (YYYY-MM-DD)."
    for name, day in (("from", since), ("to", until)):
        if name not in errors and not day_in_bounds(day):
            errors[name] = DAY_RANGE_HINT
    if not errors and since is not None and until is not None:
        if since > until:
            errors["to"] = "The end date must be on or after the start date."
        elif (until - since).days + 1 > MAX_RANGE_DAYS:
            errors["to"] = f"Choose a range of at most {MAX_RANGE_DAYS} days."
    if errors or since is None or until is None:
        raise ValidationFailed("Please correct the date range.", fields=errors)
    return since, until


def _linked_days_in_range(periods: list[LinkSpan], since: date, until: date) -> int:
    """Days of since..until covered by at least one period (periods may overlap)."""
    spans = sorted((max(p.linked_on, since), min(p.unlinked_on or until, until)) for p in periods)
    total, covered_to = 0, since - timedelta(days=1)  # last day already counted
    for first, last in spans:
        first = max(first, covered_to + timedelta(days=1))
        if last >= first:
            total += (last - first).days + 1
            covered_to = last
    return total


_FIGURES = ("runs", "succeeded", "failed", "rows_processed", "bytes_processed")


def _usage_sums(org: Organization, since: date, until: date, bucket_days: int) -> list[tuple]:
    """(None, day index, *figures) per day, and (workspace pk, bucket index, *figures) per
    workspace and bucket of `bucket_days` days from `since`; one statement, one scan of the rows.
    """
    inner, params = (
        _linked_rows(org, since, until)
        .values_list("workspace_id", "day", *_FIGURES)
        .query.get_compiler(connection=connection)
        .as_sql()
    )
    if connection.vendor == "postgresql":
        index = "(r.day - %s::date)"
    else:  # SQLite: dates are ISO strings
        index = "CAST(julianday(r.day) - julianday(%s) AS INTEGER)"
    figures = ", ".join(f"r.{f}" for f in _FIGURES)
    sums = ", ".join(f"CAST(SUM(r.{f}) AS BIGINT)" for f in _FIGURES)
    d = connection.ops.adapt_datefield_value(since)
    if bucket_days == 1:  # one row per workspace and day already (one_usage_row_per_day)
        per_workspace = f"SELECT r.workspace_id, {index}, {figures} FROM r"
        per_workspace_params: list[Any] = [d]
    else:
        per_workspace = (
            f"SELECT r.workspace_id, {index} / %s, {sums} FROM r "
            f"GROUP BY r.workspace_id, {index} / %s"
        )
        per_workspace_params = [d, bucket_days, d, bucket_days]
    sql = (
        f"WITH r (workspace_id, day, {', '.join(_FIGURES)}) AS ({inner}) "
        f"SELECT NULL, {index}, {sums} FROM r GROUP BY {index} "
        f"UNION ALL {per_workspace}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, d, d, *per_workspace_params])
        rows: list[tuple[Any, ...]] = cursor.fetchall()
    return rows


def usage_for(org: Organization, *, since: date, until: date) -> UsageReport:
    """The org's usage from `since` to `until` (inclusive), overall, per workspace and per day.

    Four queries, whatever the range or the number of workspaces (one more, made lazily, when a
    workspace's per-day figures are read: `WorkspaceUsage.by_day` / `daily`). The caller checks that the
    viewer may see usage (OrgCapability.VIEW_USAGE_AUDIT).
    """
    since, until = clean_usage_range(since, until)
    today = timezone.now().date()
    active_since = today - timedelta(days=ACTIVE_WINDOW_DAYS - 1)
    range_days = [since + timedelta(n) for n in range((until - since).days + 1)]

    # 1. Link periods that overlap the range: also brings in workspaces unlinked since.
    periods = (
        WorkspaceLinkPeriod.objects.filter(organization=org, linked_at__date__lte=until)
        .filter(Q(unlinked_at__isnull=True) | Q(unlinked_at__date__gte=since))
        .select_related("workspace")
        .order_by("linked_at")
    )
    # 2. Workspaces linked now, with their current resource and member counts.
    current: list[Any] = list(linked_workspaces(org))  # rows carry the annotated counts

    by_pk: dict[int, WorkspaceUsage] = {}
    for w in current:
        by_pk[w.pk] = WorkspaceUsage(
            workspace_id=w.public_id,
            name=w.name,
            linked_now=True,
            warehouses=w.warehouse_count,
            models=w.model_count,
            syncs=w.sync_count,
            destinations=w.destination_count,
            members=w.member_count,
        )
    for p in periods:
        ws = by_pk.get(p.workspace_id)
        if ws is None:
            ws = by_pk[p.workspace_id] = WorkspaceUsage(
                workspace_id=p.workspace.public_id, name=p.workspace.name, linked_now=False
            )
        ws.periods.append(
            LinkSpan(
                linked_on=timezone.localdate(p.linked_at),
                unlinked_on=timezone.localdate(p.unlinked_at) if p.unlinked_at else None,
            )
        )
    for ws in by_pk.values():
        ws.linked_days = _linked_days_in_range(ws.periods, since, until)
        ws.since, ws.days = since, len(range_days)
    day_totals = [[0, 0, 0, 0, 0] for _ in range_days]

    # 3. The roll-up rows of the range on days the workspace was linked to this org, summed in
    # SQL: per day across workspaces, and per workspace and sparkline bucket.
    bucket_days = spark_bucket_days(len(range_days))
    for ws_pk, index, runs, succeeded, failed, rows_processed, bytes_processed in _usage_sums(
        org, since, until, bucket_days
    ):
        if ws_pk is None:
            day_totals[index] = [runs, succeeded, failed, rows_processed, bytes_processed]
            continue
        ws = by_pk.get(ws_pk)
        if ws is None:  # linked that day, so its period is in (1); defensive only
            continue
        ws.runs_by_bucket[index] = runs
        ws.runs += runs
        ws.succeeded += succeeded
        ws.failed += failed
        ws.rows_processed += rows_processed
        ws.bytes_processed += bytes_processed

    def load_days() -> None:
        """The per-workspace daily figures (API and CSV only): one query for all workspaces."""
        days: dict[int, dict[int, tuple[int, int, int, int, int]]] = {pk: {} for pk in by_pk}
        for ws_pk, day, *figures in _linked_rows(org, since, until).values_list(
            "workspace_id", "day", *_FIGURES
        ):
            if ws_pk in days:
                days[ws_pk][(day - since).days] = tuple(figures)
        for pk, w in by_pk.items():
            w._by_day = days[pk]

    for ws in by_pk.values():
        ws.bucket_days = bucket_days
        ws._load_days = load_days
    daily = [DayUsage(d, *t) for d, t in zip(range_days, day_totals, strict=True)]

    # 4. Distinct people active in the last 30 days (on days linked to this org), per workspace
    # and across the org, as counted by the last roll-up pass (billing.rollups).
    active_people = 0
    for ws_pk, n, window_start, window_end in ActiveMemberCount.objects.filter(
        organization=org
    ).values_list("workspace_id", "active_members", "window_start", "window_end"):
        active_since, today = window_start, window_end
        if ws_pk is None:
            active_people = n
        elif ws_pk in by_pk:
            by_pk[ws_pk].active_members = n

    workspaces = sorted(by_pk.values(), key=lambda w: (not w.linked_now, w.name.lower()))
    linked = [w for w in workspaces if w.linked_now]
    totals = UsageTotals(
        workspaces=len(linked),
        warehouses=sum(w.warehouses for w in linked),
        models=sum(w.models for w in linked),
        syncs=sum(w.syncs for w in linked),
        destinations=sum(w.destinations for w in linked),
        active_members=active_people,
        runs=sum(w.runs for w in workspaces),
        succeeded=sum(w.succeeded for w in workspaces),
        failed=sum(w.failed for w in workspaces),
        rows_processed=sum(w.rows_processed for w in workspaces),
        bytes_processed=sum(w.bytes_processed for w in workspaces),
    )
    return UsageReport(
        organization_id=org.public_id,
        since=since,
        until=until,
        active_since=active_since,
        active_until=today,
        totals=totals,
        workspaces=workspaces,
        daily=daily,
    )


def usage_period_totals(org: Organization, *, since: date, until: date) -> UsageTotals:
    """Sync-run figures summed over a range in one query (the usage page's "previous period")."""
    since, until = clean_usage_range(since, until)
    sums = _linked_rows(org, since, until).aggregate(**{f: Coalesce(Sum(f), 0) for f in _FIGURES})
    return UsageTotals(**sums)
