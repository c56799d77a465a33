"""/api/v1/organizations/{org_id}/audit-events: the org's audit log, with the page's filters."""

from datetime import datetime
from typing import Any, Literal

from ninja import Query, Router, Schema

from audit.events import render_sentence
from audit.models import AuditEvent
from audit.selectors import events_for, parse_filters
from config.apikit import DEFAULT_LIMIT, MAX_LIMIT, Page, errors, text
from config.errors import ValidationFailed
from members.models import ApiToken, User
from orgs.api import org_of
from orgs.permissions import OrgCapability, require_org
from workspaces.models import Workspace

router = Router(tags=["audit log"])


class ActorOut(Schema):
    type: Literal["user", "token", "system"]
    label: str
    user_id: str | None
    token_id: str | None


class TargetOut(Schema):
    type: str
    id: str
    label: str


class AuditEventOut(Schema):
    id: str
    occurred_at: datetime
    action: str
    sentence: str
    actor: ActorOut
    workspace_id: str | None
    workspace_name: str
    target: TargetOut
    details: dict[str, Any]
    ip: str | None


class AuditEventPage(Page):
    items: list[AuditEventOut]


def _events_out(events: list[AuditEvent]) -> list[dict]:
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


@router.get(
    "/{org_id}/audit-events",
    response={200: AuditEventPage, **errors(403, 404)},
    summary="List audit events",
)
def list_audit_events(
    request,
    org_id: str,
    workspace: text(40) | None = Query(None, description="ws_ id (also unlinked or deleted ones)"),
    actor: text(254) | None = Query(None, description="mem_ id, usr_ id or email"),
    action: text(64) | None = Query(
        None, description="Exact (member.joined) or category (member.*)"
    ),
    since: text(40) | None = Query(None, description="ISO 8601 date or date-time, inclusive"),
    until: text(40) | None = Query(None, description="ISO 8601 date (whole day) or date-time"),
    limit: int = Query(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT),
    cursor: text(200) | None = None,
):
    """Newest first, across every workspace the org has (or had) linked. Owners and admins."""
    org, role = org_of(request, org_id)
    require_org(role, OrgCapability.VIEW_USAGE_AUDIT)
    filters, problems = parse_filters(org, request.GET)
    if problems:
        raise ValidationFailed("Please correct the filters listed in `fields`.", fields=problems)
    events, next_cursor = events_for(
        org, **filters.selector_kwargs(), cursor=cursor or None, limit=limit
    )
    next_url = None
    if next_cursor:
        params = request.GET.copy()
        params["cursor"] = next_cursor
        params["limit"] = str(limit)
        next_url = request.build_absolute_uri(f"{request.path}?{params.urlencode()}")
    return {"items": _events_out(events), "next": next_url}
