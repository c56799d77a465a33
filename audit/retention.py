"""Retention: archive a chain's events older than AUDIT_RETENTION_DAYS to JSON Lines, then
delete them through the one path the append-only trigger allows.

Pruning removes a *prefix* of a chain (every event up to the newest one past retention, in
seq order), so the rest still links. The `audit.pruned` event appended afterwards records
the pruned range, the archive's sha256 and the anchor (`next_seq`, `next_prev_hash`) from
which verification resumes; the archive itself keeps every field, seq and hash, so it can be
verified on its own.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from pathlib import Path

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.db.models import Max
from django.utils import timezone

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


@transaction.atomic
def audit_prune(
    *, actor=None, chain_key: int, before: dt.datetime, archive_dir: Path | None = None
) -> AuditEvent | None:
    """Archive then delete the chain's events older than `before`; returns the audit.pruned
    event, or None when nothing is old enough. Idempotent: a second run finds nothing."""
    # The head lock serialises this with appenders and with another prune of the same chain.
    head = AuditChainHead.objects.select_for_update().filter(chain_key=chain_key).first()
    if head is None:
        return None
    last_seq = _chain_events(chain_key).filter(occurred_at__lt=before).aggregate(m=Max("seq"))["m"]
    if last_seq is None:
        return None
    doomed = AuditEvent.objects.filter(chain_key=chain_key, seq__lte=last_seq)
    archive_dir = Path(archive_dir or settings.AUDIT_ARCHIVE_DIR)
    path, digest, count, first, last = _write_archive(doomed, chain_key, archive_dir)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET LOCAL audit.allow_prune = 'on'")
        deleted, _ = doomed.delete()
        if connection.vendor == "postgresql":
            cursor.execute("SET LOCAL audit.allow_prune = 'off'")
    if deleted != count:
        raise RuntimeError(f"archived {count} events but deleted {deleted}; rolled back")
    org = Organization.objects.filter(pk=chain_key).first() if chain_key else None
    return record(
        actor=actor,
        action="audit.pruned",
        organization=org,
        details={
            "count": count,
            "before": before.isoformat(),
            "first_seq": first.seq,
            "last_seq": last.seq,
            "oldest": first.occurred_at.isoformat(),
            "newest": last.occurred_at.isoformat(),
            "first_event": first.public_id,
            "last_event": last.public_id,
            "archive": path.name,
            "archive_sha256": digest,
            # Verification of what remains starts here.
            "next_seq": last.seq + 1,
            "next_prev_hash": last.hash,
        },
    )


def _write_archive(doomed, chain_key: int, archive_dir: Path):
    """Stream the events in seq order into a JSON Lines file; (path, sha256, count, first, last)."""
    archive_dir.mkdir(parents=True, exist_ok=True)
    stamp = timezone.now().strftime("%Y%m%dT%H%M%S%fZ")
    path = archive_dir / f"audit-chain-{chain_key}-{stamp}.jsonl"
    tmp = path.with_suffix(".jsonl.partial")
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
    os.replace(tmp, path)
    return path, sha.hexdigest(), count, first, last


def prune_all(*, retention_days: int, now: dt.datetime | None = None) -> list[AuditEvent]:
    """Prune every chain past retention (0 = keep forever); one transaction per chain."""
    if retention_days <= 0:
        return []
    before = (now or timezone.now()) - dt.timedelta(days=retention_days)
    keys = AuditChainHead.objects.order_by("chain_key").values_list("chain_key", flat=True)
    results = [audit_prune(chain_key=key, before=before) for key in list(keys)]
    return [r for r in results if r is not None]
