"""Retention: archive a chain's events older than AUDIT_RETENTION_DAYS to JSON Lines, then
remove them through the database's own functions.

On PostgreSQL the events table is partitioned by month (audit/dbsecurity.py), so retention
drops whole months: every chain's events in a month wholly older than the cutoff are archived
(one file per chain), then `audit_drop_partition()` checks they are what was archived and a
prefix of each chain, records each pruned range in AuditPruneRecord, and drops the table. What
is left older than the cutoff outside any droppable month (rows in the DEFAULT partition; every
event on SQLite) is pruned row by row: a *prefix* of a chain (every event up to the last one
before the first event that is not past retention, in seq order), so the rest still links,
deleted by `audit_prune_chain()`, which runs as the audit tables' owner, refuses a cutoff
younger than MIN_RETENTION_DAYS or an event newer than the cutoff, and records the pruned range;
the application's role cannot delete events otherwise.

Archives are written first (as `….jsonl.partial`) and get their final names only after the
transaction commits: a prune that rolls back leaves no archive of events that are still there.
The `audit.pruned` event appended afterwards (one per chain) records the pruned range, the
archive's sha256 and the anchor (`next_seq`, `next_prev_hash`) from which verification resumes;
the archive itself keeps every field, seq and hash, so it can be verified on its own.

Partitions are created ahead by `ensure_partitions()` (the daily beat task), which calls the
database's `audit_ensure_partitions()`.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import DatabaseError, connection, transaction
from django.db.models import Max, Min
from django.utils import timezone

from audit.dbsecurity import EVENTS_TABLE, MIN_RETENTION_DAYS
from audit.models import AuditChainHead, AuditEvent
from audit.services import HASHED_FIELDS, record
from orgs.models import Organization

ARCHIVE_FIELDS = ("id", *HASHED_FIELDS, "hash")


def event_as_dict(event: AuditEvent) -> dict:
    data = {f: getattr(event, f) for f in ARCHIVE_FIELDS}
    data["occurred_at"] = event.occurred_at.isoformat()
    return data


def _chain_events(chain_key: int):
    if chain_key:
        return AuditEvent.objects.filter(organization_id=chain_key, chain_key=chain_key)
    return AuditEvent.objects.filter(organization__isnull=True, chain_key=0)


log = logging.getLogger(__name__)


def audit_prune(
    *, actor=None, chain_key: int, before: dt.datetime, archive_dir: Path | None = None
) -> AuditEvent | None:
    """Archive then delete the chain's events older than `before`; returns the audit.pruned
    event, or None when nothing is old enough. Idempotent: a second run finds nothing."""
    archive_dir = Path(archive_dir or settings.AUDIT_ARCHIVE_DIR)
    state: dict[str, Any] = {"partials": [], "committed": False}
    try:
        with transaction.atomic():
            return _prune(actor, chain_key, before, archive_dir, state)
    except BaseException:
        _discard_partials(state)
        raise


def _discard_partials(state: dict) -> None:
    if not state["committed"]:
        for partial in state["partials"]:
            partial.unlink(missing_ok=True)  # rolled back: the events are still there


def _prune(actor, chain_key: int, before: dt.datetime, archive_dir: Path, state: dict):
    # The head lock serialises this with appenders and with another prune of the same chain.
    if not AuditChainHead.objects.filter(chain_key=chain_key).exists():
        return None
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT audit_chain_lock(%s)", [chain_key])
        else:
            list(AuditChainHead.objects.select_for_update().filter(chain_key=chain_key))
    events = _chain_events(chain_key)
    # Only events older than the cutoff, and only a prefix: stop before the first newer one.
    first_kept = events.filter(occurred_at__gte=before).aggregate(m=Min("seq"))["m"]
    old = events.filter(occurred_at__lt=before)
    if first_kept is not None:
        old = old.filter(seq__lt=first_kept)
    last_seq = old.aggregate(m=Max("seq"))["m"]
    if last_seq is None:
        return None
    doomed = AuditEvent.objects.filter(chain_key=chain_key, seq__lte=last_seq)
    _partial, path, digest, count, first, last = _write_archive(
        doomed, chain_key, archive_dir, state
    )
    deleted = _delete_prefix(chain_key, before, last, doomed)
    if deleted != count:
        raise RuntimeError(f"archived {count} events but deleted {deleted}; rolled back")
    event = _record_pruned(
        actor, chain_key, before, count=count, first=first, last=last, path=path, digest=digest
    )
    transaction.on_commit(functools.partial(_finalize_archive, state, [path]))
    return event


def _delete_prefix(chain_key: int, before: dt.datetime, last: AuditEvent, doomed) -> int:
    """The delete itself: on PostgreSQL only the database's prune function may do it."""
    if connection.vendor != "postgresql":
        return doomed.delete()[0]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pruned FROM audit_prune_chain(%s, %s, %s, %s)",
            [chain_key, before, last.seq, last.hash],
        )
        return cursor.fetchone()[0]


def _finalize_archive(state: dict, paths: list[Path]) -> None:
    """After the commit: the archives now describe events that are really gone."""
    state["committed"] = True
    for partial, path in zip(state["partials"], paths, strict=True):
        try:
            os.replace(partial, path)
        except OSError:
            log.exception("audit archive %s could not be renamed to %s", partial, path.name)
            raise


def _write_archive(doomed, chain_key: int, archive_dir: Path, state: dict):
    """Stream the events in seq order into `….jsonl.partial`;
    (partial path, final path, sha256, count, first, last)."""
    archive_dir.mkdir(parents=True, exist_ok=True)
    stamp = timezone.now().strftime("%Y%m%dT%H%M%S%fZ")
    path = archive_dir / f"audit-chain-{chain_key}-{stamp}.jsonl"
    tmp = path.with_suffix(".jsonl.partial")
    state["partials"].append(tmp)
    sha = hashlib.sha256()
    count, first, last = 0, None, None
    with tmp.open("wb") as fh:
        after = 0
        while True:
            batch = list(doomed.filter(seq__gt=after).order_by("seq")[:2000])
            if not batch:
                break
            for event in batch:
                line = (
                    json.dumps(event_as_dict(event), sort_keys=True, cls=DjangoJSONEncoder) + "\n"
                ).encode()
                sha.update(line)
                fh.write(line)
                count += 1
                first = first or event
                last = event
            after = batch[-1].seq
        fh.flush()
        os.fsync(fh.fileno())
    return tmp, path, sha.hexdigest(), count, first, last


def prune_all(*, retention_days: int, now: dt.datetime | None = None) -> list[AuditEvent]:
    """Prune every chain past retention (0 = keep forever).

    On PostgreSQL whole monthly partitions older than the cutoff go first (one transaction
    each, oldest first); then events still older than both the cutoff and the oldest
    remaining monthly partition (i.e. rows in the DEFAULT partition) go row by row, one
    transaction per chain, as on SQLite. A month that is only partly past retention is kept
    whole until all of it is."""
    if retention_days <= 0:
        return []
    if retention_days < MIN_RETENTION_DAYS:
        raise ValueError(
            f"AUDIT_RETENTION_DAYS is {retention_days}; the database keeps at least "
            f"{MIN_RETENTION_DAYS} days (audit/dbsecurity.py)"
        )
    before = (now or timezone.now()) - dt.timedelta(days=retention_days)
    results: list[AuditEvent | None] = []
    if connection.vendor == "postgresql":
        for name, _lower, _upper in partitions_before(before):
            try:
                results += drop_partition(name=name, before=before)
            except DatabaseError:
                log.exception("audit partition %s could not be dropped; kept", name)
                break
        remaining = monthly_partitions()
        if remaining:
            before = min(before, remaining[0][1])
    keys = AuditChainHead.objects.order_by("chain_key").values_list("chain_key", flat=True)
    results += [audit_prune(chain_key=key, before=before) for key in list(keys)]
    return [r for r in results if r is not None]


def monthly_partitions() -> list[tuple[str, dt.datetime, dt.datetime]]:
    """(name, lower bound, upper bound) of the events table's monthly partitions, oldest first
    (PostgreSQL; the DEFAULT partition is not one of them)."""
    with connection.cursor() as cur:
        cur.execute(PARTITIONS_SQL, [EVENTS_TABLE])
        return [(name, lo, hi) for name, lo, hi in cur.fetchall()]


PARTITIONS_SQL = """
SELECT name, m[1]::timestamptz, m[2]::timestamptz FROM (
    SELECT c.relname AS name,
           regexp_match(pg_get_expr(c.relpartbound, c.oid),
                        'FROM [(]''([^'']+)''[)] TO [(]''([^'']+)''[)]') AS m
    FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
    WHERE i.inhparent = to_regclass(%s)
) p WHERE m IS NOT NULL ORDER BY 2
"""


def partitions_before(before: dt.datetime) -> list[tuple[str, dt.datetime, dt.datetime]]:
    """The monthly partitions whose every event is older than `before`."""
    return [p for p in monthly_partitions() if p[2] <= before]


def ensure_partitions(until: dt.datetime, *, since: dt.datetime | None = None) -> int:
    """Create the monthly partitions from `since` (default: now) through `until`; returns how
    many were new. PostgreSQL only (a no-op elsewhere)."""
    if connection.vendor != "postgresql":
        return 0
    with connection.cursor() as cur:
        cur.execute("SELECT audit_ensure_partitions(%s, %s)", [since or timezone.now(), until])
        return cur.fetchone()[0]


def drop_partition(*, actor=None, name: str, before: dt.datetime, archive_dir: Path | None = None):
    """Archive every chain's events in one monthly partition (JSON Lines, one file per chain),
    then drop the partition through the database's audit_drop_partition(); appends one
    audit.pruned per chain. The partition must lie wholly before `before`."""
    archive_dir = Path(archive_dir or settings.AUDIT_ARCHIVE_DIR)
    state: dict[str, Any] = {"partials": [], "committed": False}
    try:
        with transaction.atomic():
            return _drop_partition(actor, name, before, archive_dir, state)
    except BaseException:
        _discard_partials(state)
        raise


def _drop_partition(actor, name, before, archive_dir, state) -> list[AuditEvent]:
    bounds = {n: (lo, hi) for n, lo, hi in monthly_partitions()}
    if name not in bounds:
        raise ValueError(f"{name} is not a monthly partition of the audit events")
    lower, upper = bounds[name]
    in_month = AuditEvent.objects.filter(occurred_at__gte=lower, occurred_at__lt=upper)
    keys = list(in_month.order_by("chain_key").values_list("chain_key", flat=True).distinct())
    archived = []
    for key in keys:
        doomed = in_month.filter(chain_key=key)
        _partial, path, digest, count, first, last = _write_archive(doomed, key, archive_dir, state)
        archived.append((key, path, digest, count, first, last))
    with connection.cursor() as cur:
        cur.execute(
            "SELECT audit_drop_partition(%s, %s, %s::bigint[], %s::bigint[], %s::text[], "
            "%s::bigint[])",
            [
                name,
                before,
                [a[0] for a in archived],
                [a[5].seq for a in archived],
                [a[5].hash for a in archived],
                [a[3] for a in archived],
            ],
        )
        dropped = cur.fetchone()[0]
    if dropped != sum(a[3] for a in archived):
        raise RuntimeError(f"archived {sum(a[3] for a in archived)} events but dropped {dropped}")
    events = []
    for key, path, digest, count, first, last in archived:
        events.append(
            _record_pruned(
                actor,
                key,
                before,
                count=count,
                first=first,
                last=last,
                path=path,
                digest=digest,
                partition=name,
            )
        )
    paths = [a[1] for a in archived]
    transaction.on_commit(functools.partial(_finalize_archive, state, paths))
    return events


def _record_pruned(
    actor, chain_key, before, *, count, first, last, path, digest, partition=None
) -> AuditEvent:
    """The `audit.pruned` anchor of one chain: what was archived, and where verification of
    what remains starts (next_seq, next_prev_hash)."""
    org = Organization.objects.filter(pk=chain_key).first() if chain_key else None
    details = {
        "count": count,
        "before": before.isoformat(),
        **({"partition": partition} if partition else {}),
        "first_seq": first.seq,
        "last_seq": last.seq,
        "oldest": first.occurred_at.isoformat(),
        "newest": last.occurred_at.isoformat(),
        "first_event": first.public_id,
        "last_event": last.public_id,
        "archive": path.name,
        "archive_sha256": digest,
        "next_seq": last.seq + 1,
        "next_prev_hash": last.hash,
    }
    return record(actor=actor, action="audit.pruned", organization=org, details=details)
