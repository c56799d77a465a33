"""Streamed export of exactly the filtered events as CSV or JSON Lines (constant memory)."""

from __future__ import annotations

import io
import json
from collections.abc import Iterable, Iterator

from django.core.serializers.json import DjangoJSONEncoder

from audit.events import render_sentence
from audit.models import AuditEvent
from audit.selectors import AuditFilters, iter_events
from config.csvsafe import csv_writer
from members.models import User
from workspaces.models import Workspace

COLUMNS = (
    "id",
    "occurred_at",
    "action",
    "sentence",
    "workspace_id",
    "workspace",
    "actor_type",
    "actor_id",
    "actor",
    "target_type",
    "target_id",
    "target",
    "details",
    "ip",
    "seq",
    "hash",
)
FORMATS = {"csv": "text/csv; charset=utf-8", "jsonl": "application/x-ndjson"}
BATCH = 2000


def export_rows(org, filters: AuditFilters) -> Iterator[dict]:
    """The filtered events as plain dicts, newest first, resolved a batch at a time."""
    batch: list[AuditEvent] = []
    for event in iter_events(org, batch_size=BATCH, **filters.selector_kwargs()):
        batch.append(event)
        if len(batch) == BATCH:
            yield from _rows(batch)
            batch = []
    yield from _rows(batch)


def _rows(events: list[AuditEvent]) -> Iterable[dict]:
    if not events:
        return []
    # Two queries per batch for public ids (deleted workspaces simply have none left).
    ws_ids = dict(
        Workspace.objects.filter(
            pk__in={e.workspace_id for e in events if e.workspace_id}
        ).values_list("pk", "public_id")
    )
    user_ids = dict(
        User.objects.filter(
            pk__in={e.actor_user_id for e in events if e.actor_user_id}
        ).values_list("pk", "public_id")
    )
    return (
        {
            "id": e.public_id,
            "occurred_at": e.occurred_at.isoformat(),
            "action": e.action,
            "sentence": render_sentence(e),
            "workspace_id": ws_ids.get(e.workspace_id or 0, ""),
            "workspace": e.workspace_label,
            "actor_type": e.actor_type,
            "actor_id": user_ids.get(e.actor_user_id or 0, ""),
            "actor": e.actor_label,
            "target_type": e.target_type,
            "target_id": e.target_id,
            "target": e.target_label,
            "details": e.details,
            "ip": e.ip or "",
            "seq": e.seq,
            "hash": e.hash,
        }
        for e in events
    )


def stream_csv(rows: Iterable[dict]) -> Iterator[str]:
    """CSV through config.csvsafe: labels and sentences that start like a formula are text."""
    buffer = io.StringIO()
    writer = csv_writer(buffer)
    writer.writerow(COLUMNS)
    for row in rows:
        row = {**row, "details": json.dumps(row["details"], sort_keys=True, cls=DjangoJSONEncoder)}
        writer.writerow([row[column] for column in COLUMNS])
        if buffer.tell() > 64 * 1024:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def stream_jsonl(rows: Iterable[dict]) -> Iterator[str]:
    chunk: list[str] = []
    for row in rows:
        chunk.append(json.dumps(row, sort_keys=True, cls=DjangoJSONEncoder) + "\n")
        if len(chunk) >= 500:
            yield "".join(chunk)
            chunk = []
    yield "".join(chunk)
