"""The only writer of audit events: record() appends to the org's hash chain in the caller's transaction."""

from __future__ import annotations

import functools
import hashlib
import json
import secrets
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import connections, transaction
from django.db.models import signals
from django.utils import timezone

from audit import checkpoints
from audit import context as audit_context
from audit.events import EVENTS
from audit.models import (
    AuditChainHead,
    AuditEvent,
    ChainCheckpoint,
    StreamDelivery,
    StreamDestination,
)
from audit.selectors import forget_page_choices
from config.errors import PermissionDenied

if TYPE_CHECKING:
    from members.models import User
    from orgs.models import Organization
    from workspaces.models import Workspace


class UnregisteredAction(Exception):
    pass


HASHED_FIELDS = (
    "public_id",
    "occurred_at",
    "organization_id",
    "workspace_id",
    "workspace_label",
    "actor_type",
    "actor_user_id",
    "actor_token_id",
    "actor_label",
    "action",
    "target_type",
    "target_id",
    "target_label",
    "details",
    "ip",
    "chain_key",
    "seq",
    "prev_hash",
)


def event_hash(event: AuditEvent) -> str:
    """SHA-256 over the event's content (canonical JSON) including the previous event's hash."""
    content = {f: getattr(event, f) for f in HASHED_FIELDS}
    content["occurred_at"] = event.occurred_at.isoformat()
    payload = json.dumps(content, sort_keys=True, separators=(",", ":"), cls=DjangoJSONEncoder)
    return hashlib.sha256(payload.encode()).hexdigest()


def target_of(obj: Any) -> tuple[str, str, str]:
    """(type, public id, label) for any of our models."""
    if obj is None:
        return "", "", ""
    kind = obj._meta.model_name
    public_id = getattr(obj, "public_id", "") or str(obj.pk)
    label = obj.display_name if kind == "user" else None
    return kind, public_id, (label or str(obj))[:254]


def record(
    *,
    actor: User | None,
    action: str,
    organization: Organization | None = None,
    workspace: Workspace | None = None,
    target: Any = None,
    target_label: str | None = None,
    details: dict | None = None,
    actor_label: str | None = None,
) -> AuditEvent:
    """Append one event. Must run inside the transaction of the change it records.

    The org defaults to the workspace's org *now* (i.e. at the time of the event).
    """
    if action not in EVENTS:
        raise UnregisteredAction(f"Audit action {action!r} is not registered in audit/events.py")
    conn = transaction.get_connection()
    if not conn.in_atomic_block:
        raise RuntimeError("audit.record() must run inside the transaction of the change")
    ctx = audit_context.current()
    if ctx.read_only:
        raise PermissionDenied(ctx.read_only, code="support_read_only")
    if organization is None and workspace is not None:
        organization = workspace.organization if workspace.organization_id else None
    ttype, tid, tlabel = target_of(target)
    if ctx.token_id:
        actor_type = AuditEvent.ActorType.TOKEN
    elif ctx.support is not None and actor is not None:
        actor_type = AuditEvent.ActorType.SUPPORT
        details = {
            **(details or {}),
            "support_ticket": ctx.support.ticket,
            "support_reason": ctx.support.reason,
        }
    elif actor is not None:
        actor_type = AuditEvent.ActorType.USER
    else:
        actor_type = AuditEvent.ActorType.SYSTEM
    event = AuditEvent(
        occurred_at=timezone.now(),
        organization=organization,
        workspace=workspace,
        workspace_label=workspace.name if workspace else "",
        actor_type=actor_type,
        actor_user=actor,
        actor_token_id=ctx.token_id,
        actor_label=(actor_label or (actor.display_name if actor else "System"))[:254],
        action=action,
        target_type=ttype,
        target_id=tid,
        target_label=(target_label or tlabel)[:254],
        details=details or {},
        ip=ctx.ip,
        chain_key=organization.pk if organization else 0,
    )
    _append_to_chain(event)
    if event.chain_key and changes_page_choices(action):
        # The audit page caches its filter choices; these events may change them.
        _forget_page_choices_on_commit(event.chain_key)
    return event


# Events that may change the audit page's workspace or member drop-downs (the workspaces,
# linked, unlinked or deleted, and the members by name): not org.updated, ownership or
# streaming events, which record() appends most often.
CHOICE_CATEGORIES = frozenset({"workspace", "member"})
CHOICE_ACTIONS = frozenset({"org.created", "audit.pruned"})


def changes_page_choices(action: str) -> bool:
    return action in CHOICE_ACTIONS or action.split(".", 1)[0] in CHOICE_CATEGORIES


def _forget_page_choices_on_commit(chain_key: int) -> None:
    """Once per atomic block and org, however many events it records."""
    conn = transaction.get_connection()
    block = set(conn.savepoint_ids)
    for sids, func, _robust in conn.run_on_commit:
        if (
            sids == block
            and isinstance(func, functools.partial)
            and func.func is forget_page_choices
            and func.args == (chain_key,)
        ):
            return
    transaction.on_commit(functools.partial(forget_page_choices, chain_key))


def _append_to_chain(event: AuditEvent) -> None:
    # Round-trip details through JSON so the hash matches what the database returns later.
    event.details = json.loads(json.dumps(event.details, cls=DjangoJSONEncoder))
    event.public_id = event.public_id or _new_event_id()
    conn = transaction.get_connection()
    if conn.vendor == "postgresql":
        _append_postgres(conn, event)
    else:
        _append_orm(event)


def _seal(event: AuditEvent, seq: int, prev_hash: str) -> None:
    event.seq = seq
    event.prev_hash = prev_hash
    event.hash = event_hash(event)


def _append_orm(event: AuditEvent) -> None:
    """Portable path (SQLite): lock the head, insert, move the head."""
    locked = AuditChainHead.objects.select_for_update()
    head = locked.filter(chain_key=event.chain_key).first()
    if head is None:
        AuditChainHead.objects.get_or_create(chain_key=event.chain_key)
        head = locked.get(chain_key=event.chain_key)
    _seal(event, head.last_seq + 1, head.last_hash)
    event.save(force_insert=True)
    AuditChainHead.objects.filter(pk=head.pk).update(last_seq=event.seq, last_hash=event.hash)
    if checkpoints.due(event.seq):
        checkpoints.signed(event.chain_key, event.seq, event.hash).save()
    if event.chain_key:
        destinations = list(
            StreamDestination.objects.filter(organization_id=event.chain_key).values_list(
                "pk", flat=True
            )
        )
        StreamDelivery.objects.bulk_create(
            StreamDelivery(destination_id=d, event_id=event.pk, seq=event.seq) for d in destinations
        )
        _queue_stream_delivery(destinations)


_EVENTS = AuditEvent._meta.db_table
_EVENT_FIELDS = [f for f in AuditEvent._meta.concrete_fields if not f.primary_key]
_CHAINED = ("seq", "prev_hash", "hash")  # filled in by the database, from the chain head
_CONTENT_FIELDS = [f for f in _EVENT_FIELDS if f.attname not in _CHAINED]


def hash_parts(event: AuditEvent) -> tuple[str, str, str]:
    """event_hash()'s canonical JSON cut around prev_hash and seq, the two values only the
    locked chain head knows: sha256(a + prev_hash + b + str(seq) + c) == event_hash(event).
    The markers are random, so no content can contain them."""
    marker = secrets.token_hex(16)
    prev_mark, seq_mark = f"<prev:{marker}>", f"<seq:{marker}>"
    content = {f: getattr(event, f) for f in HASHED_FIELDS}
    content["occurred_at"] = event.occurred_at.isoformat()
    content["prev_hash"], content["seq"] = prev_mark, seq_mark
    payload = json.dumps(content, sort_keys=True, separators=(",", ":"), cls=DjangoJSONEncoder)
    # Keys are sorted: "prev_hash" comes before "seq". JSON's quotes stay around the hash;
    # the seq, a number, loses them.
    a, rest = payload.split(f'"{prev_mark}"')
    b, c = rest.split(f'"{seq_mark}"')
    return a + '"', '"' + b, c


# One statement appends an event: audit_chain_lock() locks the chain head (creating it for a
# chain's first event; a concurrent writer waits on the row lock until the first commits) and
# returns the next seq and the previous hash; the INSERT takes them and computes the hash in
# SQL from hash_parts(), so the chain never round-trips to Python. The function runs as the
# audit tables' owner: the application's role cannot UPDATE the head itself
# (audit/dbsecurity.py). The database's AFTER INSERT trigger checks the event extends the chain
# and moves the head. (The lock is taken inside the statement; the row it reads is the newest
# committed one, whatever the statement's snapshot.)
_HASH_SQL = (
    "encode(sha256(convert_to(%s || h.prev_hash || %s || h.next_seq::text || %s, 'UTF8')), 'hex')"
)


def _insert_sql(conn: Any) -> str:
    columns = [f.column for f in _CONTENT_FIELDS] + list(_CHAINED)
    values = [f"CAST(%s AS {f.db_type(conn)})" for f in _CONTENT_FIELDS]
    values += ["h.next_seq", "h.prev_hash", _HASH_SQL]
    return (
        "h AS (SELECT next_seq, prev_hash FROM audit_chain_lock(%s)), "
        f'ev AS (INSERT INTO "{_EVENTS}" ('
        + ", ".join(f'"{c}"' for c in columns)
        + ") SELECT "
        + ", ".join(values)
        + ' FROM h RETURNING "id", "chain_key", "seq", "prev_hash", "hash")'
    )


# The streaming outbox (audit/streaming.py): one row per destination of the org, in the same
# statement, so a row exists exactly when the event commits. audit_stream_targets() reads the
# destinations with a snapshot of its own, taken after audit_chain_lock() returned (it is
# called per row of `ev`), so it sees every earlier holder of the lock: a destination receives
# every event from the one that recorded its creation onward. Rows are queued for disabled
# destinations too, so re-enabling one resumes without a gap.
_OUTBOX = StreamDelivery._meta.db_table
OUTBOX_CTE = (
    f', ob AS (INSERT INTO "{_OUTBOX}" ("destination_id", "event_id", "seq", "created_at", '
    '"status", "attempts", "last_error") '
    "SELECT d.id, ev.id, ev.seq, now(), 'pending', 0, '' FROM ev "
    "CROSS JOIN LATERAL audit_stream_targets(ev.chain_key) AS d(id) "
    'RETURNING "destination_id")'
)
_CHECKPOINTS = ChainCheckpoint._meta.db_table
# Every AUDIT_CHECKPOINT_EVERY-th event also writes its signed checkpoint (the MAC needs a key
# the database does not hold, so it is a second statement, in the same transaction).
CHECKPOINT_SQL = (
    f'INSERT INTO "{_CHECKPOINTS}" ("chain_key", "seq", "head_hash", "created_at", "mac") '
    "VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING"
)


@functools.cache
def _statement(alias: str, outbox: bool) -> str:
    return insert_sql(connections[alias], outbox=outbox)


def insert_sql(conn: Any, *, outbox: bool) -> str:
    """The one statement that appends an event (and its outbox rows)."""
    sql = "WITH " + _insert_sql(conn)
    if outbox:
        sql += OUTBOX_CTE
        tail = "ARRAY(SELECT DISTINCT destination_id FROM ob)"
    else:
        tail = "'{}'::bigint[]"
    return sql + f" SELECT ev.id, ev.seq, ev.prev_hash, ev.hash, {tail} FROM ev"


def _append_postgres(conn: Any, event: AuditEvent) -> None:
    """One round trip: lock the head, hash and insert the event (and its outbox rows)."""
    a, b, c = hash_parts(event)
    params: list[Any] = [event.chain_key]
    params += [f.get_db_prep_save(getattr(event, f.attname), conn) for f in _CONTENT_FIELDS]
    params += [a, b, c]
    with conn.cursor() as cur:
        cur.execute(_statement(conn.alias, bool(event.chain_key)), params)
        event.pk, event.seq, event.prev_hash, event.hash, destinations = cur.fetchone()
        if checkpoints.due(event.seq):
            cp = checkpoints.signed(event.chain_key, event.seq, event.hash)
            cur.execute(CHECKPOINT_SQL, [cp.chain_key, cp.seq, cp.head_hash, cp.created_at, cp.mac])
    if destinations:
        _queue_stream_delivery(destinations)
    event._state.adding = False
    event._state.db = conn.alias
    # Raw SQL skips Model.save(): keep its post_save for whoever listens (e.g. test plugins).
    if signals.post_save.has_listeners(AuditEvent):
        signals.post_save.send(
            sender=AuditEvent,
            instance=event,
            created=True,
            update_fields=None,
            raw=False,
            using=conn.alias,
        )


def _queue_stream_delivery(destination_ids: Iterable[int]) -> None:
    """After commit, start delivering to these destinations: one task per destination and
    transaction, however many events it recorded (the beat sweep catches anything missed)."""
    conn = transaction.get_connection()
    pending = _pending_deliveries(conn)
    if pending is None:
        pending = set()
        transaction.on_commit(functools.partial(_start_deliveries, pending))
    pending.update(destination_ids)


def _pending_deliveries(conn: Any) -> set[int] | None:
    for _sids, func, _robust in conn.run_on_commit:
        if isinstance(func, functools.partial) and func.func is _start_deliveries:
            pending: set[int] = func.args[0]
            return pending
    return None


def _start_deliveries(destination_ids: set) -> None:
    from audit.streaming import queue_delivery

    for pk in sorted(destination_ids):
        queue_delivery(pk)


def _new_event_id() -> str:
    from config.ids import new_public_id

    return new_public_id("evt")
