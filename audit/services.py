"""The only writer of audit events: record() appends to the org's hash chain in the caller's transaction."""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING

from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.utils import timezone

from audit import context as audit_context
from audit.events import EVENTS
from audit.models import AuditChainHead, AuditEvent

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
    if organization is None and workspace is not None:
        organization = workspace.organization if workspace.organization_id else None
    ttype, tid, tlabel = target_of(target)
    if ctx.token_id:
        actor_type = AuditEvent.ActorType.TOKEN
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
        actor_label=(actor.display_name if actor else "System")[:254],
        action=action,
        target_type=ttype,
        target_id=tid,
        target_label=(target_label or tlabel)[:254],
        details=details or {},
        ip=ctx.ip,
        chain_key=organization.pk if organization else 0,
    )
    _append_to_chain(event)
    return event


def _append_to_chain(event: AuditEvent) -> None:
    # Lock the chain head so concurrent writers append one after another. One round trip when
    # the head exists (every event but a chain's first): record() sits in every write's path.
    locked = AuditChainHead.objects.select_for_update()
    head = locked.filter(chain_key=event.chain_key).first()
    if head is None:
        AuditChainHead.objects.get_or_create(chain_key=event.chain_key)
        head = locked.get(chain_key=event.chain_key)
    event.seq = head.last_seq + 1
    event.prev_hash = head.last_hash
    # Round-trip details through JSON so the hash matches what the database returns later.
    event.details = json.loads(json.dumps(event.details, cls=DjangoJSONEncoder))
    event.public_id = event.public_id or _new_event_id()
    event.hash = event_hash(event)
    event.save(force_insert=True)
    AuditChainHead.objects.filter(pk=head.pk).update(last_seq=event.seq, last_hash=event.hash)


def _new_event_id() -> str:
    from config.ids import new_public_id

    return new_public_id("evt")
