"""The only writer of audit events: record() appends to the org's hash chain in the caller's transaction."""

from __future__ import annotations

import functools
import hashlib
import json
from typing import TYPE_CHECKING

from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.db.models import signals
from django.utils import timezone

from audit import checkpoints
from audit import context as audit_context
from audit.events import EVENTS
from audit.models import AuditChainHead, AuditEvent, ChainCheckpoint
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


def target_of(obj) -> tuple[str, str, str]:
    """(type, public id, label) for any of our models."""
    if obj is None:
        return "", "", ""
    kind = obj._meta.model_name
    public_id = getattr(obj, "public_id", "") or str(obj.pk)
    label = getattr(obj, "email", None) if kind == "user" else None
    if kind == "user":
        label = obj.display_name
    return kind, public_id, (label or str(obj))[:254]


def record(
    *,
    actor: User | None,
    action: str,
    organization: Organization | None = None,
    workspace: Workspace | None = None,
    target=None,
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
    if event.chain_key and action.split(".", 1)[0] in CHOICE_CATEGORIES:
        # The audit page caches its filter choices; these events may change them.
        transaction.on_commit(functools.partial(forget_page_choices, event.chain_key))
    return event


# Events that may change the audit page's workspace or member drop-downs.
CHOICE_CATEGORIES = frozenset({"org", "workspace", "member", "audit"})


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


_HEAD = AuditChainHead._meta.db_table
_EVENTS = AuditEvent._meta.db_table
_EVENT_FIELDS = [f for f in AuditEvent._meta.concrete_fields if not f.primary_key]

# Locks the chain head (creating it for a chain's first event) and returns the seq and
# prev_hash the next event carries. A concurrent writer blocks on the row lock until the
# first commits, then reads the committed head. The function runs as the audit tables' owner:
# the application's role cannot UPDATE the head itself (audit/dbsecurity.py).
LOCK_HEAD_SQL = "SELECT next_seq, prev_hash FROM audit_chain_lock(%s)"
# The event; the database's AFTER INSERT trigger checks it extends the chain and moves the head.
INSERT_SQL = (
    f'INSERT INTO "{_EVENTS}" ('
    + ", ".join(f'"{f.column}"' for f in _EVENT_FIELDS)
    + ") VALUES ("
    + ", ".join("%s" for _ in _EVENT_FIELDS)
    + ') RETURNING "id"'
)
_CHECKPOINTS = ChainCheckpoint._meta.db_table
# Every AUDIT_CHECKPOINT_EVERY-th event: the event and its signed checkpoint, one statement.
INSERT_WITH_CHECKPOINT_SQL = (
    f"WITH ev AS ({INSERT_SQL}), cp AS ("
    f'INSERT INTO "{_CHECKPOINTS}" ("chain_key", "seq", "head_hash", "created_at", "mac") '
    "VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING) "
    'SELECT "id" FROM ev'
)


def _append_postgres(conn, event: AuditEvent) -> None:
    """Two round trips: lock the head (next seq, previous hash), then insert the event."""
    with conn.cursor() as cur:
        cur.execute(LOCK_HEAD_SQL, [event.chain_key])
        seq, prev_hash = cur.fetchone()
        _seal(event, seq, prev_hash)
        params = [f.get_db_prep_save(getattr(event, f.attname), conn) for f in _EVENT_FIELDS]
        if checkpoints.due(event.seq):
            cp = checkpoints.signed(event.chain_key, event.seq, event.hash)
            cp_params = [cp.chain_key, cp.seq, cp.head_hash, cp.created_at, cp.mac]
            cur.execute(INSERT_WITH_CHECKPOINT_SQL, [*params, *cp_params])
        else:
            cur.execute(INSERT_SQL, params)
        event.pk = cur.fetchone()[0]
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


def _new_event_id() -> str:
    from config.ids import new_public_id

    return new_public_id("evt")
