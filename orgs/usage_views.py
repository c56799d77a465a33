"""Organization › Usage (owners and admins): roll-up figures across linked workspaces, as SVG
charts with their numbers in tables. The report region is swapped by HTMX when the range changes.
"""

from __future__ import annotations

import io
from datetime import date, timedelta
from html import escape  # the daily rows: plain strings, no lazy-aware wrapper needed

from django import forms
from django.http import HttpResponse
from django.utils import timezone
from django.utils.safestring import SafeString, mark_safe

from billing import charts
from billing.selectors import (
    ACTIVE_WINDOW_DAYS,
    MAX_RANGE_DAYS,
    UsageReport,
    clean_usage_range,
    usage_for,
    usage_period_totals,
)
from config.bounds import MAX_DAY, MIN_DAY
from config.csvsafe import csv_writer
from config.dbrouter import replica_reads
from config.errors import ValidationFailed
from config.htmx import render_page
from orgs.decorators import org_view
from orgs.permissions import OrgCapability

# ?days=<preset>: the last N days (today included), or the year to date.
PRESETS = (
    ("7", "Last 7 days"),
    ("30", "Last 30 days"),
    ("90", "Last 90 days"),
    ("365", "Last 365 days"),
    ("ytd", "Year to date"),
)
DEFAULT_DAYS = "30"


class UsageRangeForm(forms.Form):
    """?days=7|30|90|365|ytd, or a custom ?from=YYYY-MM-DD&to=YYYY-MM-DD (the API's names)."""

    days = forms.ChoiceField(choices=PRESETS, required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # "from" is a Python keyword, so these two are declared here.
        # The browser's picker offers only days within config.bounds; the server checks too.
        attrs = {"type": "date", "min": MIN_DAY.isoformat(), "max": MAX_DAY.isoformat()}
        self.fields["from"] = forms.DateField(
            required=False, label="From", widget=forms.DateInput(attrs=attrs)
        )
        self.fields["to"] = forms.DateField(
            required=False, label="To", widget=forms.DateInput(attrs=attrs)
        )

    def clean(self):
        data = super().clean()
        since, until = data.get("from"), data.get("to")
        custom = any(self.data.get(k) for k in ("from", "to"))
        if custom and not self.errors:
            try:
                data["range"] = clean_usage_range(since, until)
            except ValidationFailed as exc:
                for name, message in exc.fields.items():
                    self.add_error(name, message)
        elif not custom:
            data["range"] = preset_range(data.get("days") or DEFAULT_DAYS)
        return data

    def date_range(self) -> tuple[date, date]:
        """The chosen range, or the default one when the input is missing or invalid."""
        if self.is_bound and self.is_valid():
            return self.cleaned_data["range"]
        return preset_range(DEFAULT_DAYS)

    @property
    def custom(self) -> bool:
        return any(self.data.get(k) for k in ("from", "to"))

    def selected_days(self) -> str | None:
        """The preset shown as selected (its `days` value; None for a custom range)."""
        if self.custom:
            return None
        if self.is_bound and self.is_valid():
            return str(self.cleaned_data.get("days") or DEFAULT_DAYS)
        return DEFAULT_DAYS


def preset_range(days: str | int) -> tuple[date, date]:
    today = timezone.now().date()
    if days == "ytd":
        return today.replace(month=1, day=1), today
    return today - timedelta(days=int(days) - 1), today


def previous_range(since: date, until: date) -> tuple[date, date] | None:
    """The period of the same length just before [since, until] (None before year 1)."""
    try:
        prev_until = since - timedelta(days=1)
        return prev_until - (until - since), prev_until
    except OverflowError:
        return None


def _change(now: int, before: int) -> dict:
    """How a figure moved against the previous period, for the page."""
    if before == 0:
        return {"before": before, "percent": None, "up": now > 0}
    pct = (now - before) / before * 100
    return {"before": before, "percent": round(pct, 1), "up": pct >= 0}


def _day_label(d: date) -> str:
    return f"{d:%b} {d.day}"


def _charts(report: UsageReport) -> dict:
    period = f"{report.since:%d %b %Y} to {report.until:%d %b %Y}"
    ws = report.workspaces
    return {
        "runs": charts.stacked_bars(
            chart_id="chart-runs",
            title="Sync runs per day",
            description=f"Succeeded and failed sync runs per day across workspaces, {period}.",
            labels=[_day_label(d.day) for d in report.daily],
            series=[
                charts.Series(
                    "Succeeded", [d.succeeded for d in report.daily], charts.SUCCEEDED_COLOR
                ),
                charts.Series("Failed", [d.failed for d in report.daily], charts.FAILED_COLOR),
            ],
            empty_message="No sync runs in this range.",
        ),
        "rows": charts.horizontal_bars(
            chart_id="chart-rows",
            title="Rows processed per workspace",
            description=f"Rows processed by each workspace's sync runs, {period}.",
            items=[(w.name, w.rows_processed) for w in ws],
            width=460,
            empty_message="No rows processed in this range.",
        ),
        "bytes": charts.horizontal_bars(
            chart_id="chart-bytes",
            title="Data processed per workspace",
            description=f"Bytes processed by each workspace's sync runs, {period}.",
            items=[(w.name, w.bytes_processed) for w in ws],
            width=460,
            format_value=charts.human_bytes,
            empty_message="No data processed in this range.",
        ),
        "active": charts.horizontal_bars(
            chart_id="chart-active",
            title="Active members per workspace",
            description=f"People active in each workspace in the last {ACTIVE_WINDOW_DAYS} days.",
            items=[(w.name, w.active_members) for w in ws],
            width=460,
            empty_message=f"Nobody was active in the last {ACTIVE_WINDOW_DAYS} days.",
        ),
    }


def _daily_rows(report: UsageReport) -> SafeString:
    """The body of the per-day table (up to 366 rows), built in one join: the same cells the
    template would render, without a template node per cell."""
    cell = '<td class="num">{}</td>'
    rows = []
    for d in report.daily:
        rows.append(
            "<tr><td>"
            + escape(f"{d.day:%a} {d.day.day} {d.day:%b}")
            + "</td>"
            + cell.format(d.runs)
            + cell.format(d.succeeded)
            + cell.format(d.failed)
            + cell.format(escape(charts.percent(d.success_rate)))
            + f'<td class="num" title="{d.rows_processed} rows">'
            + escape(charts.human_count(d.rows_processed))
            + "</td>"
            + f'<td class="num" title="{d.bytes_processed} bytes">'
            + escape(charts.human_bytes(d.bytes_processed))
            + "</td></tr>"
        )
    return mark_safe("\n".join(rows))  # noqa: S308 — numbers, and escaped text


def _csv_query(params) -> str:
    """The current range's query string with format=csv, for the download link."""
    query = params.copy()
    query["format"] = "csv"
    return query.urlencode()


def _daily_csv(org, report: UsageReport) -> HttpResponse:
    """Sync runs per day and per workspace (the full breakdown behind the runs chart), as CSV.

    One line per workspace and day with a roll-up row on a day it counted for the org (days
    without runs are left out); workspaces in the page's order, days ascending.
    """
    out = io.StringIO()
    writer = csv_writer(out)
    writer.writerow(
        (
            "day",
            "workspace_id",
            "workspace",
            "runs",
            "succeeded",
            "failed",
            "success_rate",
            "rows_processed",
            "bytes_processed",
        )
    )
    for w in report.workspaces:
        for i in sorted(w.by_day):
            runs, succeeded, failed, rows_processed, bytes_processed = w.by_day[i]
            writer.writerow(
                (
                    (report.since + timedelta(i)).isoformat(),
                    w.workspace_id,
                    w.name,
                    runs,
                    succeeded,
                    failed,
                    round(succeeded / runs, 4) if runs else "",
                    rows_processed,
                    bytes_processed,
                )
            )
    response = HttpResponse(out.getvalue(), content_type="text/csv; charset=utf-8")
    filename = f"usage-{org.slug}-{report.since.isoformat()}-{report.until.isoformat()}.csv"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@org_view(OrgCapability.VIEW_USAGE_AUDIT)
@replica_reads
def usage(request):
    form = UsageRangeForm(request.GET or None)
    since, until = form.date_range()
    report = usage_for(request.org, since=since, until=until)
    if request.GET.get("format") == "csv":
        return _daily_csv(request.org, report)
    previous = None
    if (prev := previous_range(since, until)) is not None:
        totals = usage_period_totals(request.org, since=prev[0], until=prev[1])
        previous = {
            "since": prev[0],
            "until": prev[1],
            "totals": totals,
            "runs": _change(report.totals.runs, totals.runs),
            "rows": _change(report.totals.rows_processed, totals.rows_processed),
            "bytes": _change(report.totals.bytes_processed, totals.bytes_processed),
        }
    workspace_rows = [
        (
            w,
            charts.sparkline(
                chart_id=f"spark-{w.workspace_id}",
                title=(
                    f"Sync runs per day in {w.name}"
                    if w.bucket_days == 1
                    else f"Sync runs per day in {w.name}, averaged by week"
                ),
                values=w.runs_series(),
            ),
        )
        for w in report.workspaces
    ]
    context = {
        "org": request.org,
        "form": form,
        "report": report,
        "charts": _charts(report),
        "workspace_rows": workspace_rows,
        "csv_query": _csv_query(request.GET),
        "daily_rows": _daily_rows(report),
        "presets": PRESETS,
        "previous": previous,
        "selected_days": form.selected_days(),
        "max_range_days": MAX_RANGE_DAYS,
        "default_days": DEFAULT_DAYS,
        "active_window_days": ACTIVE_WINDOW_DAYS,
    }
    return render_page(request, "orgs/usage.html", "report", context)
