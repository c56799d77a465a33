"""Audit events as JSON objects: the API's items and the streamed webhook payloads alike."""

from __future__ import annotations

from audit.events import render_sentence
from audit.models import AuditEvent
from members.models import ApiToken, User
from workspaces.models import Workspace


def events_out(events: list[AuditEvent]) -> list[dict]:
    """Public ids of the users, tokens and workspaces the page mentions: three queries at most."""

    def ids(model, pks):
        pks = {pk for pk in pks if pk is not None}
        return dict(model.objects.filter(pk__in=pks).values_list("pk", "public_id")) if pks else {}

    users = ids(User, (e.actor_user_id for e in events))
    tokens = ids(ApiToken, (e.actor_token_id for e in events))
    workspaces = ids(Workspace, (e.workspace_id for e in events))
    return [
        {
            "id": e.public_id,
            "seq": e.seq,
            "occurred_at": e.occurred_at,
            "action": e.action,
            "sentence": render_sentence(e),
            "actor": {
                "type": e.actor_type,
                "label": e.actor_label,
                "user_id": users.get(e.actor_user_id),
                "token_id": tokens.get(e.actor_token_id),
            },
            "workspace_id": workspaces.get(e.workspace_id),
            "workspace_name": e.workspace_label,
            "target": {"type": e.target_type, "id": e.target_id, "label": e.target_label},
            "details": e.details or {},
            "ip": e.ip,
        }
        for e in events
    ]
