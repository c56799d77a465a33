"""/api/v1/organizations/{org_id}/audit-events: the org's audit log, with the page's filters."""

from datetime import datetime
from typing import Any, Literal

from ninja import Field, Query, Router, Schema

from audit.selectors import events_after, events_for, parse_filters
from audit.serialize import events_out
from config.apikit import DEFAULT_LIMIT, MAX_LIMIT, Page, errors, text
from config.dbrouter import on_replica
from config.errors import ValidationFailed
from orgs.api import org_of
from orgs.permissions import OrgCapability, require_org

router = Router(tags=["audit log"])


class ActorOut(Schema):
    type: Literal["user", "token", "system", "support"]
    label: str
    user_id: str | None
    token_id: str | None


class TargetOut(Schema):
    type: str
    id: str
    label: str


class AuditEventOut(Schema):
    id: str
    seq: int = Field(description="Position in the org's log: commit order, no gaps")
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
    cursor: str | None = Field(
        None,
        description="With `after`: pass this as `after` on the next poll (the same value "
        "when nothing new arrived).",
    )


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
    after: text(20) | None = Query(
        None,
        description="Poll in commit order: events after this cursor, oldest first (`0` = from "
        "the beginning). Keep the returned `cursor` and pass it next time: no event is missed "
        "or repeated, whatever writes concurrently.",
    ),
):
    """Newest first, across every workspace the org has (or had) linked; with `after`, oldest
    first in commit order for pollers (SIEMs). Owners and admins."""
    org, role = org_of(request, org_id)
    require_org(role, OrgCapability.VIEW_USAGE_AUDIT)
    filters, problems = parse_filters(org, request.GET)
    if after is not None:
        if not after.isdigit():
            problems["after"] = "Use the `cursor` of your last poll, or 0 to start."
        if cursor:
            problems["cursor"] = "Use either `cursor` (newest first) or `after` (polling)."
    if problems:
        raise ValidationFailed("Please correct the filters listed in `fields`.", fields=problems)
    if after is not None:
        return _poll(request, org, filters, after=int(after), limit=limit)
    # Newest first may read the replica; polling (`after`) reads the primary, whose commit order
    # it follows.
    return on_replica(request, lambda: _newest_first(request, org, filters, cursor, limit))


def _newest_first(request, org, filters, cursor: str | None, limit: int) -> dict:
    events, next_cursor = events_for(
        org, **filters.selector_kwargs(), cursor=cursor or None, limit=limit
    )
    next_url = None
    if next_cursor:
        params = request.GET.copy()
        params["cursor"] = next_cursor
        params["limit"] = str(limit)
        next_url = request.build_absolute_uri(f"{request.path}?{params.urlencode()}")
    return {"items": events_out(events), "next": next_url}


def _poll(request, org, filters, *, after: int, limit: int) -> dict:
    events = events_after(org, after=after, limit=limit, **filters.selector_kwargs())
    new_cursor = str(events[-1].seq) if events else str(after)
    next_url = None
    if len(events) == limit:
        params = request.GET.copy()
        params["after"] = new_cursor
        params["limit"] = str(limit)
        next_url = request.build_absolute_uri(f"{request.path}?{params.urlencode()}")
    return {"items": events_out(events), "next": next_url, "cursor": new_cursor}
