"""Organization › Audit Log: the log page, its export and the access-at-a-point-in-time report."""

from __future__ import annotations

import io
from urllib.parse import urlencode

from django.http import HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.html import format_html_join
from django.utils.safestring import mark_safe

from audit import access
from audit.events import detail_rows, render_sentence
from audit.export import FORMATS, export_rows, stream_csv, stream_jsonl
from audit.models import AuditEvent
from audit.selectors import (
    action_choices,
    events_for,
    page_choices,
    parse_filters,
    parse_moment,
)
from config.bounds import MAX_YEAR, MIN_YEAR
from config.csvsafe import csv_writer
from config.dbrouter import replica_reads
from config.errors import NotFound, ValidationFailed
from config.htmx import render_page, wants_fragment
from orgs.decorators import org_view
from orgs.permissions import OrgCapability

ACTIONS = action_choices()  # the registry is static


def _options(choices, selected: str | None) -> str:
    """`<option>`s of a filter drop-down, built here: a template loop over ~300 choices cost
    more than the rest of the page."""
    return format_html_join(
        "",
        '<option value="{}"{}>{}</option>',
        ((v, mark_safe(" selected") if v == selected else "", label) for v, label in choices),
    )


@org_view(OrgCapability.VIEW_USAGE_AUDIT)
@replica_reads
def log(request):
    """Newest first, filterable, keyset-paginated; HTMX swaps #events and pushes the URL."""
    org = request.org
    filters, errors = parse_filters(org, request.GET)
    cursor = request.GET.get("cursor") or None
    try:
        events, next_cursor = events_for(org, cursor=cursor, **filters.selector_kwargs())
    except ValidationFailed as exc:
        errors.update(exc.fields)
        cursor = None
        events, next_cursor = events_for(org, **filters.selector_kwargs())
    qs = filters.querystring()
    choices = page_choices(org)
    members = list(choices["members"]) if choices["members"] is not None else None
    next_qs = urlencode({**filters.raw, "cursor": next_cursor}) if next_cursor else ""
    context = {
        "org": org,
        "rows": [(e, render_sentence(e), detail_rows(e)) for e in events],
        "filters": filters,
        "raw": filters.raw,
        "errors": errors,
        "querystring": qs,
        "next_querystring": next_qs,
        "paged": bool(cursor),
        "workspaces": choices["workspaces"],
        "members": members,
        "actions": ACTIONS,
        "verification": choices["verification"],
        "tab": "audit",
    }
    if (
        filters.actor_id
        and context["members"] is not None
        and not any(v == filters.raw.get("actor") for v, _ in context["members"])
    ):
        context["members"].append((filters.raw["actor"], f"{filters.actor_label} (former member)"))
    if not wants_fragment(request):
        raw = filters.raw
        context["workspace_options"] = _options(context["workspaces"], raw.get("workspace"))
        context["member_options"] = _options(context["members"] or (), raw.get("actor"))
        context["action_options"] = _options(ACTIONS, raw.get("action"))
    return render_page(request, "audit/log.html", "events", context, 422 if errors else 200)


@org_view(OrgCapability.VIEW_USAGE_AUDIT)
def event(request, event_id):
    """One event's permalink: everything recorded about it, and links to its neighbours."""
    org = request.org
    found = AuditEvent.objects.filter(organization_id=org.pk, public_id=event_id[:40]).first()
    if found is None:
        raise NotFound("No such event in this organization's log.")
    context = {
        "org": org,
        "e": found,
        "sentence": render_sentence(found),
        "details": detail_rows(found),
        "tab": "audit",
    }
    return render(request, "audit/event.html", context)


@org_view(OrgCapability.VIEW_USAGE_AUDIT)
@replica_reads
def export(request):
    """?format=csv|jsonl plus the page's filters: exactly the filtered set, streamed."""
    org = request.org
    fmt = request.GET.get("format", "csv")
    filters, errors = parse_filters(org, request.GET)
    if fmt not in FORMATS:
        errors["format"] = "Choose csv or jsonl."
    if errors:
        raise ValidationFailed(
            "The export filters are not valid: "
            + "; ".join(f"{k}: {v}" for k, v in errors.items()),
            fields=errors,
        )
    rows = export_rows(org, filters)
    body = stream_csv(rows) if fmt == "csv" else stream_jsonl(rows)
    response = StreamingHttpResponse(body, content_type=FORMATS[fmt])
    stamp = timezone.now().strftime("%Y%m%d-%H%M")
    filename = f"audit-{org.slug}-{filters.file_slug()}-{stamp}.{fmt}"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Cache-Control"] = "no-store"
    return response


@org_view(OrgCapability.VIEW_USAGE_AUDIT)
@replica_reads
def access_report(request):
    """Who could access a workspace at a moment (and now), from the membership events."""
    org = request.org
    workspaces = access.reportable_workspaces(org)
    errors: dict[str, str] = {}
    workspace = None
    ws_param = request.GET.get("workspace") or ""
    if ws_param:
        workspace = next((w for w in workspaces if w.public_id == ws_param), None)
        if workspace is None:
            errors["workspace"] = "No such workspace in this organization."
    elif workspaces:
        workspace = workspaces[0]
    at_param = (request.GET.get("at") or "").strip()
    moment = timezone.now()
    if at_param:
        parsed = parse_moment(at_param)
        if parsed is None:
            errors["at"] = (
                "Use a date (2024-05-31) or a date and time (2024-05-31T14:00) "
                f"in the years {MIN_YEAR}–{MAX_YEAR}."
            )
        else:
            moment = parsed
    report = now_report = None
    matches_live = None
    if workspace is not None and "at" not in errors:
        report = access.access_at(org, workspace, moment)
        now_report = access.access_at(org, workspace, timezone.now())
        reconstructed, live = access.compare_now(workspace)
        matches_live = reconstructed == live
    if request.GET.get("format") == "csv" and report is not None and not errors:
        return _access_csv(org, report)
    context = {
        "org": org,
        "workspaces": workspaces,
        "workspace": workspace,
        "at": at_param,
        "moment": moment,
        "report": report,
        "now_report": now_report,
        "matches_live": matches_live,
        "errors": errors,
        "csv_query": urlencode(
            {"workspace": workspace.public_id if workspace else "", "at": at_param, "format": "csv"}
        ),
        "tab": "audit",
    }
    return render(request, "audit/access_report.html", context, status=422 if errors else 200)


def _access_csv(org, report: access.AccessReport) -> HttpResponse:
    buffer = io.StringIO()
    writer = csv_writer(buffer)
    writer.writerow(
        ["workspace_id", "workspace", "moment", "name", "email", "role", "source", "since"]
    )
    for row in report.rows:
        writer.writerow(
            [
                report.workspace.public_id,
                report.workspace.name,
                report.moment.isoformat(),
                row.name,
                row.email,
                row.role,
                row.source,
                row.since.isoformat() if row.since else "",
            ]
        )
    for note in report.notes:
        writer.writerow(["#", note])
    response = HttpResponse(buffer.getvalue(), content_type="text/csv; charset=utf-8")
    name = f"access-{org.slug}-{report.workspace.slug}-{report.moment:%Y%m%dT%H%M}.csv"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response
