"""Every read of the audit log goes through events_for(): the page, the export, the member page
and the API use the same filters, the same keyset pagination and the same indexes.

Pagination is keyset on (occurred_at, id) descending with an opaque cursor: no OFFSET, no
COUNT of the table, so the thousandth page costs what the first one does.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.core.cache import cache
from django.db.models import F, Q, QuerySet, TextField
from django.db.models.fields.tuple_lookups import Tuple, TupleLessThan
from django.db.models.functions import Cast
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from django.utils.text import slugify

from audit.events import CATEGORIES, EVENTS
from audit.models import AuditEvent, ChainVerification
from config import cursors
from config.bounds import MAX_YEAR, MIN_YEAR, day_in_bounds, moment_in_bounds
from config.errors import ValidationFailed
from members.models import OrgMembership, User, normalize_email
from orgs.models import Organization, WorkspaceLinkPeriod
from workspaces.models import Workspace

MAX_LIMIT = 1000


# --- cursor -----------------------------------------------------------------------------


def encode_cursor(event: AuditEvent) -> str:
    return cursors.encode_cursor([event.occurred_at.isoformat(), event.pk])


def decode_cursor(cursor: str) -> tuple[dt.datetime, int]:
    """(occurred_at, id) of the last event of the previous page; ValidationFailed if garbled."""
    bad = ValidationFailed(
        "That page link is broken; start again from the newest events.",
        fields={"cursor": "Not a valid cursor."},
    )
    moment, pk = cursors.decode_cursor(
        cursor,
        AuditEvent,
        ("-occurred_at", "-id"),
        message=bad.message,
        field_message="Not a valid cursor.",
    )
    if moment is None or moment.tzinfo is None or not moment_in_bounds(moment):
        raise bad
    if not 0 < pk < 2**63:
        raise bad
    return moment, pk


def events_for(
    org: Organization | int,
    *,
    workspace: Workspace | int | None = None,
    actor: User | int | None = None,
    action: str | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    q: str | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> tuple[list[AuditEvent], str | None]:
    """One page of the org's events, newest first, and the cursor of the next page (or None).

    `action` is exact (`member.joined`) or a category (`member.*`); `since` is inclusive and
    `until` exclusive. Events keep their org from the time they happened, so a workspace's
    events stay here after it is unlinked or deleted.
    """
    limit = max(1, min(int(limit), MAX_LIMIT))
    qs = events_queryset(
        org,
        workspace=workspace,
        actor=actor,
        action=action,
        since=since,
        until=until,
        q=q,
        cursor=cursor,
    )
    events = list(qs[: limit + 1])
    next_cursor = encode_cursor(events[limit - 1]) if len(events) > limit else None
    return events[:limit], next_cursor


def events_after(
    org: Organization | int, *, after: int, limit: int = 50, **filters: Any
) -> list[AuditEvent]:
    """The org's events after position `after` in its chain, oldest first (for pollers).

    `seq` is taken under the chain head's row lock, which is held until the transaction
    commits and released only once the commit is visible; the next writer gets the next seq
    only then. So seq order is commit order, and what any snapshot sees is a prefix of the
    chain: reading `seq > after` never skips an event that commits later.
    """
    limit = max(1, min(int(limit), MAX_LIMIT))
    org_pk: int = org.pk if isinstance(org, Organization) else org
    qs = _filtered(org_pk, **{k: filters.get(k) for k in _FILTERED_KEYS})
    if filters.get("q"):
        qs = qs.annotate(details_text=Cast("details", output_field=TextField())).filter(
            _text_search(filters["q"])
        )
    return list(qs.filter(chain_key=org_pk, seq__gt=after).order_by("seq")[:limit])


_FILTERED_KEYS = ("workspace", "actor", "action", "since", "until")


def iter_events(
    org: Organization | int, *, batch_size: int = 2000, **filters: Any
) -> Iterator[AuditEvent]:
    """Every event matching the filters, newest first, fetched in keyset batches (constant memory)."""
    cursor = None
    while True:
        events, cursor = events_for(org, cursor=cursor, limit=batch_size, **filters)
        yield from events
        if cursor is None:
            return


def events_queryset(
    org: Organization | int,
    *,
    workspace: Workspace | int | None = None,
    actor: User | int | None = None,
    action: str | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    q: str | None = None,
    cursor: str | None = None,
) -> QuerySet[AuditEvent]:
    """The ordered, filtered queryset behind events_for() (slice it; used for EXPLAIN too)."""
    qs = _filtered(org, workspace=workspace, actor=actor, action=action, since=since, until=until)
    if q:
        qs = qs.annotate(details_text=Cast("details", output_field=TextField())).filter(
            _text_search(q)
        )
    if cursor:
        moment, pk = decode_cursor(cursor)
        # A row comparison, which PostgreSQL turns into one index range condition.
        qs = qs.filter(TupleLessThan(Tuple(F("occurred_at"), F("id")), (moment, pk)))
    return qs.order_by("-occurred_at", "-id")


def _text_search(q: str) -> Q:
    """Free text: every word must appear (case-insensitive) in the actor, target, workspace,
    action, event id or details. A scan within the org's newest-first index order, so a page
    of frequent matches is quick; a rare word reads further (combine it with a date range)."""
    condition = Q()
    for word in q.split()[:5]:
        condition &= (
            Q(actor_label__icontains=word)
            | Q(target_label__icontains=word)
            | Q(target_id__icontains=word)
            | Q(workspace_label__icontains=word)
            | Q(action__icontains=word)
            | Q(public_id=word)
            | Q(details_text__icontains=word)
        )
    return condition


def _filtered(
    org: Organization | int,
    *,
    workspace: Workspace | int | None,
    actor: User | int | None,
    action: str | None,
    since: dt.datetime | None,
    until: dt.datetime | None,
) -> QuerySet[AuditEvent]:
    qs = AuditEvent.objects.filter(organization_id=getattr(org, "pk", org))
    if workspace is not None:
        qs = qs.filter(workspace_id=getattr(workspace, "pk", workspace))
    if actor is not None:
        qs = qs.filter(actor_user_id=getattr(actor, "pk", actor))
    if action:
        if action.endswith(".*"):
            # LIKE 'member.%': served by the varchar_pattern_ops index on (org, action, …).
            qs = qs.filter(action__startswith=action[:-1])
        else:
            qs = qs.filter(action=action)
    if since is not None:
        qs = qs.filter(occurred_at__gte=since)
    if until is not None:
        qs = qs.filter(occurred_at__lt=until)
    return qs


# --- filters shared by the page, the export and the API ---------------------------------


@dataclass(frozen=True)
class AuditFilters:
    """Parsed, validated filters. `raw` keeps what was asked (for links and file names)."""

    workspace_id: int | None = None
    workspace_label: str = ""
    actor_id: int | None = None
    actor_label: str = ""
    action: str = ""
    since: dt.datetime | None = None
    until: dt.datetime | None = None  # exclusive
    q: str = ""
    raw: dict[str, str] = field(default_factory=dict)

    def selector_kwargs(self) -> dict:
        return {
            "workspace": self.workspace_id,
            "actor": self.actor_id,
            "action": self.action or None,
            "since": self.since,
            "until": self.until,
            "q": self.q or None,
        }

    def querystring(self) -> str:
        from urllib.parse import urlencode

        return urlencode(self.raw)

    def file_slug(self) -> str:
        """e.g. `ws-production_action-member_since-2024-01-01`; `all` without filters."""
        parts = []
        if self.workspace_id is not None:
            parts.append(f"ws-{slugify(self.workspace_label) or self.raw.get('workspace', '')}")
        if self.actor_id is not None:
            parts.append(
                f"actor-{slugify(self.actor_label.replace('@', '-at-').replace('.', '-'))}"
            )
        if self.action:
            parts.append(f"action-{slugify(self.action.replace('.*', '').replace('.', '-'))}")
        for key in ("since", "until"):
            if self.raw.get(key):
                parts.append(f"{key}-{slugify(self.raw[key].replace(':', '-'))}")
        return "_".join(p for p in parts if p)[:150] or "all"

    @property
    def active(self) -> bool:
        return bool(self.raw)


FILTER_KEYS = ("workspace", "actor", "action", "since", "until", "q")


def parse_filters(
    org: Organization, querydict: Mapping[str, str]
) -> tuple[AuditFilters, dict[str, str]]:
    """Read `workspace` (ws_ id), `actor` (mem_ id, usr_ id or email), `action` (exact or
    `category.*`), `since`/`until` (ISO date or date-time) into filters, plus field errors.

    A bad value is reported and ignored (never a 500). A date `until` includes that whole
    day; a date-time `until` is inclusive.
    """
    raw = {k: (querydict.get(k) or "").strip() for k in FILTER_KEYS}
    raw = {k: v for k, v in raw.items() if v}
    errors: dict[str, str] = {}
    values: dict = {}

    if "workspace" in raw:
        found = _resolve_workspace(org, raw["workspace"])
        if found is None:
            errors["workspace"] = "No such workspace in this organization's log."
        else:
            values["workspace_id"], values["workspace_label"] = found
    if "actor" in raw:
        found = _resolve_actor(org, raw["actor"])
        if found is None:
            errors["actor"] = "No member or former member matches this id or email."
        else:
            values["actor_id"], values["actor_label"] = found
    if "action" in raw:
        action = raw["action"]
        if action in EVENTS or (action.endswith(".*") and action[:-2] in CATEGORIES):
            values["action"] = action
        else:
            errors["action"] = (
                "Unknown action: use one like member.joined or a category like member.*."
            )
    for key in ("since", "until"):
        if key in raw:
            moment = parse_moment(raw[key], end_of_day=(key == "until"))
            if moment is None:
                errors[key] = (
                    "Use an ISO 8601 date (2024-05-31) or date-time (2024-05-31T14:00Z) "
                    f"in the years {MIN_YEAR}–{MAX_YEAR}."
                )
            else:
                values[key] = moment
    if "q" in raw:
        q = " ".join(raw["q"].replace("\x00", " ").split())[:100]
        if q:
            values["q"] = q
        else:
            raw.pop("q")
    if values.get("since") and values.get("until") and values["since"] >= values["until"]:
        errors["until"] = "The end of the range must be after its start."
        values.pop("until")
    valid_raw = {k: v for k, v in raw.items() if k not in errors}
    return AuditFilters(raw=valid_raw, **values), errors


def parse_moment(value: str, *, end_of_day: bool = False) -> dt.datetime | None:
    """An aware datetime from an ISO date or date-time (naive ones are in the current zone),
    or None when unreadable or outside config.bounds (years 2000–2100).

    With end_of_day, a date means "up to the end of that day" and a date-time is inclusive;
    both come back as an exclusive upper bound.
    """
    value = value.strip()
    # A "+02:00" offset that arrived unescaped in a query string reads as " 02:00".
    value = re.sub(r"(T\d\d:\d\d(?::\d\d(?:\.\d+)?)?) (\d\d:?\d\d)$", r"\1+\2", value)
    try:
        # A bare date first: parse_datetime() would also read "2024-01-31" as midnight.
        day = parse_date(value) if re.fullmatch(r"\d{4}-\d\d-\d\d", value) else None
        moment = None if day else parse_datetime(value)
    except ValueError:
        return None
    if moment is None and day is None:
        return None
    # The date as written, before any zone or end-of-day arithmetic (which could overflow).
    if not day_in_bounds(day or moment):
        return None
    try:  # dates at the end of the calendar (9999-12-31) overflow: a field error, not a 500
        if moment is None:
            assert day is not None  # one of the two was read (checked above)
            moment = dt.datetime.combine(day, dt.time.min)
            if end_of_day:
                moment += dt.timedelta(days=1)
        elif end_of_day:
            moment += dt.timedelta(microseconds=1)
        if timezone.is_naive(moment):
            moment = timezone.make_aware(moment)
    except (OverflowError, ValueError):
        return None
    return moment


WORKSPACE_TARGET_ACTIONS = (
    "workspace.created",
    "workspace.linked",
    "workspace.unlinked",
    "workspace.deleted",
)


def _resolve_workspace(org: Organization, public_id: str) -> tuple[int, str] | None:
    """A workspace whose events are in the org's log: linked now, formerly linked, or deleted."""
    ws = Workspace.objects.filter(public_id=public_id).only("pk", "name", "organization").first()
    if ws is not None:
        if (
            ws.organization_id == org.pk
            or AuditEvent.objects.filter(organization=org, workspace_id=ws.pk).exists()
        ):
            return ws.pk, ws.name
        return None
    # Deleted: the org's workspace.* events (target = the workspace) still name it.
    gone = (
        AuditEvent.objects.filter(
            organization=org, action__in=WORKSPACE_TARGET_ACTIONS, target_id=public_id
        )
        .order_by("-occurred_at", "-id")
        .values_list("workspace_id", "workspace_label")
        .first()
    )
    return (gone[0], gone[1]) if gone and gone[0] is not None else None


def _resolve_actor(org: Organization, value: str) -> tuple[int, str] | None:
    """mem_ id of a current member, or usr_ id / email of anyone (former members included)."""
    if value.startswith("mem_"):
        row = (
            OrgMembership.objects.filter(organization=org, public_id=value)
            .values_list("user_id", "user__email")
            .first()
        )
        return (row[0], row[1]) if row else None
    if value.startswith("usr_"):
        row = User.objects.filter(public_id=value).values_list("pk", "email").first()
    elif "@" in value:
        row = User.objects.filter(email=normalize_email(value)).values_list("pk", "email").first()
    else:
        return None
    return (row[0], row[1]) if row else None


# --- choices for the page's filter form ---------------------------------------------------


def workspace_choices(org: Organization) -> list[tuple[str, str]]:
    """(ws_ id, label) of every workspace in the org's log: linked, formerly linked, deleted."""
    linked = {
        w.public_id: w.name
        for w in Workspace.objects.filter(organization=org).only("public_id", "name")
    }
    former = {
        p.workspace.public_id: f"{p.workspace.name} (unlinked)"
        for p in WorkspaceLinkPeriod.objects.filter(organization=org)
        .exclude(workspace__organization=org)
        .select_related("workspace")
    }
    deleted = {
        tid: f"{label} (deleted)"
        for tid, label in AuditEvent.objects.filter(
            organization=org, action="workspace.deleted"
        ).values_list("target_id", "workspace_label")
    }
    merged = {**deleted, **former, **linked}
    return sorted(merged.items(), key=lambda kv: kv[1].lower())


MEMBER_CHOICES_MAX = 200


def member_choices(
    org: Organization, limit: int = MEMBER_CHOICES_MAX
) -> list[tuple[str, str]] | None:
    """(mem_ id, label) for the member filter's drop-down, or None when the org has more than
    `limit` members: the filter is then a text field taking an email or mem_ id (a drop-down of
    10,000 people helps nobody, and fetching and rendering it cost most of the page at scale)."""
    # LIMIT limit+1 on the org's memberships first (an index range, no sort of 10,000 people),
    # then name-sort at most limit+1 rows.
    first = OrgMembership.objects.filter(organization=org).order_by().values("pk")[: limit + 1]
    rows = [
        (m.public_id, f"{m.user.display_name} <{m.user.email}>")
        for m in OrgMembership.objects.filter(pk__in=first)
        .select_related("user")
        .only("public_id", "user__full_name", "user__email")
        .order_by("user__full_name", "user__email")
    ]
    return rows if len(rows) <= limit else None


def action_choices() -> list[tuple[str, str]]:
    choices = []
    for cat in CATEGORIES:
        choices.append((f"{cat}.*", f"All {cat} events"))
        choices.extend((a, f"  {a}") for a in EVENTS if a.startswith(f"{cat}."))
    return choices


def chain_status(org: Organization) -> ChainVerification | None:
    """The last scheduled verification of the org's hash chain (None before the first run)."""
    return ChainVerification.objects.filter(chain_key=org.pk).first()


# --- the page's fixed reads, cached ------------------------------------------------------

PAGE_CHOICES_TTL = 30  # seconds; changes through record()/verification invalidate sooner


def page_choices_key(org_id: int) -> str:
    return f"audit:page-choices:{org_id}"


def page_choices(org: Organization) -> dict:
    """The filter drop-downs (workspaces, members) and the chain status: five queries that do
    not depend on the filters, cached per org for PAGE_CHOICES_TTL seconds. record() drops the
    entry when an org/workspace/member event commits, verification when it stores a result."""
    key = page_choices_key(org.pk)
    cached: dict[str, Any] | None = cache.get(key)
    if cached is None:
        cached = {
            "workspaces": workspace_choices(org),
            "members": member_choices(org),
            "verification": chain_status(org),
        }
        cache.set(key, cached, PAGE_CHOICES_TTL)
    return cached


def forget_page_choices(org_id: int) -> None:
    cache.delete(page_choices_key(org_id))
