"""Organization › Usage: the report selector and the page (permissions, ranges, charts, queries)."""

import csv
import io
import json
import random
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from billing.linked_rows import rows_synced_this_month
from billing.models import DailyActiveMember, DailyWorkspaceUsage
from billing.rollups import rollup_usage
from billing.selectors import usage_for
from config.errors import ValidationFailed
from config.roles import Role
from orgs.models import WorkspaceLinkPeriod
from orgs.services import org_create
from tests.factories import (
    SyncFactory,
    UserFactory,
    WorkspaceFactory,
    add_to_org,
)
from workspaces.models import SyncRun

pytestmark = pytest.mark.django_db


def today():
    return timezone.now().date()


def midnight(day):
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


@pytest.fixture
def org_setup(org_setup):
    """The shared setup, with Production and Staging linked since long before any range."""
    WorkspaceLinkPeriod.objects.filter(organization=org_setup.org).update(
        linked_at=timezone.now() - timedelta(days=400)
    )
    return org_setup


def usage_row(ws, day, runs=10, succeeded=8, rows=1000, bytes_=2048):
    return DailyWorkspaceUsage(
        workspace=ws,
        day=day,
        runs=runs,
        succeeded=succeeded,
        failed=runs - succeeded,
        rows_processed=rows,
        bytes_processed=bytes_,
    )


def org_with_workspaces(owner, n, *, days=90, seed=0):
    """An org owned by `owner` with n linked workspaces, each with a sync, usage every day
    of the last `days` days and a couple of active people (test data, built in bulk)."""
    rng = random.Random(seed)
    org = org_create(actor=owner, name=f"Org {n} {seed}")
    start = midnight(today() - timedelta(days=days + 5))
    workspaces = [WorkspaceFactory(organization=org, linked_at=start) for _ in range(n)]
    WorkspaceLinkPeriod.objects.bulk_create(
        WorkspaceLinkPeriod(organization=org, workspace=w, linked_at=start) for w in workspaces
    )
    people = [UserFactory() for _ in range(3)]
    rows, active = [], []
    for w in workspaces:
        SyncFactory(workspace=w)
        for d in range(days):
            day = today() - timedelta(days=d)
            runs = rng.randint(0, 20)
            rows.append(usage_row(w, day, runs=runs, succeeded=rng.randint(0, runs)))
        for p in people[:2]:
            active.append(DailyActiveMember(workspace=w, user=p, day=today()))
    DailyWorkspaceUsage.objects.bulk_create(rows)
    DailyActiveMember.objects.bulk_create(active)
    rollup_usage()  # counts the active members
    return org


# --- The selector -------------------------------------------------------------------------


def test_report_totals_per_workspace_and_per_day(org_setup):
    s = org_setup
    SyncFactory(workspace=s.ws_a)
    SyncFactory(workspace=s.ws_a)
    SyncFactory(workspace=s.ws_b)
    d1, d2 = today() - timedelta(days=1), today()
    DailyWorkspaceUsage.objects.bulk_create(
        [
            usage_row(s.ws_a, d1, runs=10, succeeded=9, rows=100, bytes_=1000),
            usage_row(s.ws_a, d2, runs=5, succeeded=5, rows=50, bytes_=500),
            usage_row(s.ws_b, d2, runs=4, succeeded=1, rows=7, bytes_=70),
        ]
    )
    DailyActiveMember.objects.bulk_create(
        [
            DailyActiveMember(workspace=s.ws_a, user=s.admin, day=d1),
            DailyActiveMember(workspace=s.ws_a, user=s.admin, day=d2),
            DailyActiveMember(workspace=s.ws_a, user=s.owner, day=d2),
            DailyActiveMember(workspace=s.ws_b, user=s.owner, day=d2),
            DailyActiveMember(workspace=s.ws_b, user=s.member, day=today() - timedelta(days=45)),
        ]
    )
    rollup_usage()  # the roll-up pass counts active members (billing.ActiveMemberCount)
    report = usage_for(s.org, since=today() - timedelta(days=6), until=today())
    by_name = {w.name: w for w in report.workspaces}
    a, b = by_name["Production"], by_name["Staging"]
    assert (a.runs, a.succeeded, a.failed, a.rows_processed, a.bytes_processed) == (
        15,
        14,
        1,
        150,
        1500,
    )
    assert (b.runs, b.success_rate) == (4, 0.25)
    assert (a.syncs, a.models, a.destinations, a.warehouses) == (2, 2, 2, 2)
    assert report.totals.syncs == 3 and report.totals.warehouses == 3
    assert (a.active_members, b.active_members) == (2, 1)  # 45 days ago is outside 30 days
    assert report.totals.active_members == 2  # the owner counted once across workspaces
    assert report.totals.runs == 19 and report.totals.success_rate == round(15 / 19, 4)
    assert len(report.daily) == 7
    assert report.daily[-1].runs == 9 and report.daily[-2].runs == 10
    assert [d.runs for d in a.daily][-2:] == [10, 5]
    json.dumps(report.as_dict())  # JSON-serialisable as is, for the API


def test_report_matches_rollup_of_raw_runs(org_setup):
    """End to end: runs → roll-up → report, equal to summing the raw runs in range."""
    s = org_setup
    rng = random.Random(42)
    syncs = [SyncFactory(workspace=s.ws_a), SyncFactory(workspace=s.ws_b)]
    now = timezone.now()
    runs = []
    for _ in range(300):
        sync = rng.choice(syncs)
        finished = now - timedelta(seconds=rng.randint(0, 20 * 86400))
        runs.append(
            SyncRun(
                sync=sync,
                workspace_id=sync.workspace_id,
                started_at=finished,
                finished_at=finished,
                status=rng.choice(["succeeded", "failed"]),
                rows_processed=rng.randint(0, 1000),
                bytes_processed=rng.randint(0, 10**6),
            )
        )
    SyncRun.objects.bulk_create(runs)
    rollup_usage()
    since = today() - timedelta(days=9)
    report = usage_for(s.org, since=since, until=today())
    in_range = [r for r in runs if r.finished_at.date() >= since]
    assert report.totals.runs == len(in_range)
    assert report.totals.rows_processed == sum(r.rows_processed for r in in_range)
    assert report.totals.succeeded == sum(r.status == "succeeded" for r in in_range)


def test_partially_linked_workspaces_count_only_their_linked_days(org_setup, owner):
    s = org_setup
    since = today() - timedelta(days=6)
    # Staging was linked three days ago (its link period says so).
    WorkspaceLinkPeriod.objects.filter(workspace=s.ws_b).update(
        linked_at=midnight(today() - timedelta(days=3)) + timedelta(hours=15)
    )
    # A workspace linked 10 → 5 days ago, unlinked now.
    gone = WorkspaceFactory(name="Old Analytics")
    WorkspaceLinkPeriod.objects.create(
        organization=s.org,
        workspace=gone,
        linked_at=midnight(today() - timedelta(days=10)),
        unlinked_at=midnight(today() - timedelta(days=5)) + timedelta(hours=9),
    )
    # Another org's workspace never counts.
    other = WorkspaceFactory(name="Someone else's")
    other_org = org_create(actor=UserFactory(), name="Other")
    WorkspaceLinkPeriod.objects.create(
        organization=other_org, workspace=other, linked_at=midnight(today() - timedelta(days=30))
    )
    DailyWorkspaceUsage.objects.bulk_create(
        usage_row(ws, today() - timedelta(days=d), runs=1, succeeded=1, rows=10)
        for ws in (s.ws_a, s.ws_b, gone, other)
        for d in range(12)
    )
    report = usage_for(s.org, since=since, until=today())
    by_name = {w.name: w for w in report.workspaces}
    assert "Someone else's" not in by_name
    assert (by_name["Production"].runs, by_name["Production"].linked_days) == (7, 7)
    assert (by_name["Staging"].runs, by_name["Staging"].linked_days) == (4, 4)
    old = by_name["Old Analytics"]
    assert (old.runs, old.linked_days, old.linked_now) == (2, 2, False)  # days −6 and −5
    assert old.syncs == 0
    assert report.totals.runs == 13 and report.totals.workspaces == 2
    assert {w.name for w in report.partially_linked} == {"Staging", "Old Analytics"}

    page = _login_get(s, owner, "?days=7")
    assert 'data-testid="partial-note"' in page
    assert "Old Analytics" in page and "unlinked" in page


def test_rows_synced_this_month(org_setup):
    s = org_setup
    first = today().replace(day=1)
    DailyWorkspaceUsage.objects.bulk_create(
        [
            usage_row(s.ws_a, today(), rows=1_000),
            usage_row(s.ws_b, first, rows=250),
            usage_row(s.ws_a, first - timedelta(days=1), rows=99_999),  # last month
        ]
    )
    assert rows_synced_this_month(s.org) == 1_250
    empty = org_create(actor=s.owner, name="Empty")
    assert rows_synced_this_month(empty) == 0


def test_range_is_validated():
    with pytest.raises(ValidationFailed) as exc:
        usage_for(None, since=today(), until=today() - timedelta(days=1))
    assert "to" in exc.value.fields
    with pytest.raises(ValidationFailed):
        usage_for(None, since=today() - timedelta(days=400), until=today())


def test_query_count_is_fixed(owner, django_assert_num_queries):
    small = org_with_workspaces(owner, 2, days=7)
    large = org_with_workspaces(owner, 20, days=90, seed=1)
    for org, days in ((small, 7), (small, 90), (large, 7), (large, 90)):
        with django_assert_num_queries(4):
            report = usage_for(org, since=today() - timedelta(days=days - 1), until=today())
        assert len(report.daily) == days


# --- The page -----------------------------------------------------------------------------


def _url(org, query=""):
    return reverse("orgs:usage", args=[org.slug]) + query


def _login_get(s, user, query=""):
    from django.test import Client

    client = Client()
    client.force_login(user, backend="members.backends.EmailBackend")
    response = client.get(_url(s.org, query))
    assert response.status_code == 200
    return response.content.decode()


def test_owner_and_admin_see_the_page(org_setup, login):
    s = org_setup
    DailyWorkspaceUsage.objects.bulk_create(
        [usage_row(s.ws_a, today(), runs=12, succeeded=9, rows=2_500_000, bytes_=3 * 1024**3)]
    )
    for user in (s.owner, s.admin):
        response = login(user).get(_url(s.org))
        assert response.status_code == 200
        html = response.content.decode()
        assert 'role="img"' in html and "<title" in html
        assert "Sync runs per day" in html
        assert "2.5M" in html and "3.0 GB" in html  # humanised
        assert 'title="2500000 rows"' in html  # exact figure kept
        assert ">Usage</a>" in html  # the tab


def test_member_gets_403_and_stranger_404(org_setup, login):
    s = org_setup
    response = login(s.member).get(_url(s.org))
    assert response.status_code == 403
    assert "admin" in response.content.decode().lower()
    response = login(s.stranger).get(_url(s.org))
    assert response.status_code == 404


def test_other_org_slug_is_404_for_an_admin_of_another_org(org_setup, login):
    s = org_setup
    elsewhere = org_create(actor=s.stranger, name="Elsewhere")
    assert login(s.admin).get(_url(elsewhere)).status_code == 404


def test_member_does_not_see_the_usage_tab(org_setup, login):
    s = org_setup
    html = login(s.member).get(reverse("orgs:overview", args=[s.org.slug])).content.decode()
    assert reverse("orgs:usage", args=[s.org.slug]) not in html


def test_empty_org_renders_and_says_so(owner, login):
    org = org_create(actor=owner, name="Empty Co")
    response = login(owner).get(_url(org, "?days=90"))
    assert response.status_code == 200
    html = response.content.decode()
    assert html.count("<svg") >= 4 and 'role="img"' in html
    assert "no linked workspaces" in html
    assert "No sync runs in this range." in html


def test_linked_workspaces_without_runs_say_so(org_setup, login):
    html = login(org_setup.owner).get(_url(org_setup.org)).content.decode()
    assert "No sync runs in this range." in html


@pytest.mark.parametrize(
    "query, message",
    [
        ("?from=2024-02-30&to=2024-03-01", "Enter a valid date"),
        ("?from=2024-03-05&to=2024-03-01", "on or after the start date"),
        ("?from=2020-01-01&to=2024-01-01", "at most 366 days"),
        ("?from=2024-03-01", "Give an end date"),
        ("?days=12", "Select a valid choice"),
    ],
)
def test_bad_ranges_show_a_form_error_and_the_default_range(org_setup, login, query, message):
    response = login(org_setup.owner).get(_url(org_setup.org, query))
    assert response.status_code == 200
    html = response.content.decode()
    assert message in html
    assert "Showing the last 30 days instead" in html
    assert "(30 days), UTC" in html


def test_custom_range_and_presets(org_setup, login):
    s = org_setup
    client = login(s.owner)
    html = client.get(_url(s.org, "?from=2024-03-01&to=2024-03-10")).content.decode()
    assert "1 Mar 2024 – 10 Mar 2024 (10 days)" in html
    html = client.get(_url(s.org, "?days=7")).content.decode()
    assert "(7 days), UTC" in html
    assert 'aria-current="true">Last 7 days' in html


def test_htmx_swaps_only_the_report(org_setup, login):
    s = org_setup
    response = login(s.owner).get(_url(s.org, "?days=90"), headers={"HX-Request": "true"})
    html = response.content.decode()
    assert response.status_code == 200
    assert html.lstrip().startswith('<div id="usage-report"')
    assert "<html" not in html and "(90 days)" in html
    # Every hx-get has a real href, and the URL is pushed.
    assert 'hx-push-url="true"' in html and f'href="{_url(s.org)}?days=7"' in html


def test_labels_are_escaped_in_the_svg(org_setup, login):
    s = org_setup
    s.ws_a.name = '<script>alert("x")</script>'
    s.ws_a.save()
    DailyWorkspaceUsage.objects.bulk_create([usage_row(s.ws_a, today())])
    html = login(s.owner).get(_url(s.org)).content.decode()
    assert "<script>alert" not in html
    assert "&lt;script&gt;alert" in html


def test_page_query_count_is_the_same_for_2_and_20_workspaces_and_7_and_90_days(owner, login):
    small = org_with_workspaces(owner, 2, days=7)
    large = org_with_workspaces(owner, 20, days=90, seed=1)
    client = login(owner)
    counts = {}
    for org in (small, large):
        for days in (7, 90):
            url = _url(org, f"?days={days}")
            client.get(url)  # warm-up: once-a-day activity writes and session bookkeeping
            with CaptureQueriesContext(connection) as captured:
                response = client.get(url)
            assert response.status_code == 200
            counts[(org.name, days)] = len(captured.captured_queries)
    assert len(set(counts.values())) == 1, counts


def test_active_members_of_workspaces_count_people_once(owner):
    org = org_with_workspaces(owner, 3, days=7)
    report = usage_for(org, since=today() - timedelta(days=6), until=today())
    assert [w.active_members for w in report.workspaces] == [2, 2, 2]
    assert report.totals.active_members == 2


def test_active_members_are_as_of_the_last_rollup(org_setup):
    """Activity after the last pass shows on the next one; the window is the pass's."""
    s = org_setup
    DailyActiveMember.objects.create(workspace=s.ws_a, user=s.admin, day=today())
    report = usage_for(s.org, since=today(), until=today())
    assert report.totals.active_members == 0  # not rolled up yet
    result = rollup_usage()
    assert result["active_member_rows"] >= 2  # Production and the org-wide row
    report = usage_for(s.org, since=today(), until=today())
    assert report.totals.active_members == 1
    assert (report.active_since, report.active_until) == (today() - timedelta(days=29), today())
    rollup_usage()  # idempotent: the counts are replaced, not added to
    assert usage_for(s.org, since=today(), until=today()).totals.active_members == 1


def test_active_members_only_on_days_linked_to_the_org(org_setup):
    s = org_setup
    WorkspaceLinkPeriod.objects.filter(organization=s.org, workspace=s.ws_b).update(
        linked_at=midnight(today() - timedelta(days=60)),
        unlinked_at=midnight(today() - timedelta(days=10)),
    )
    DailyActiveMember.objects.bulk_create(
        [
            DailyActiveMember(workspace=s.ws_b, user=s.member, day=today() - timedelta(days=12)),
            DailyActiveMember(workspace=s.ws_b, user=s.admin, day=today() - timedelta(days=2)),
        ]
    )
    rollup_usage()
    report = usage_for(s.org, since=today() - timedelta(days=29), until=today())
    staging = next(w for w in report.workspaces if w.name == "Staging")
    assert staging.active_members == 1  # the admin's day came after the unlink
    assert report.totals.active_members == 1


def test_daily_csv_has_one_line_per_workspace_and_day(org_setup, login):
    s = org_setup
    DailyWorkspaceUsage.objects.bulk_create(
        [
            usage_row(s.ws_a, today(), runs=4, succeeded=3, rows=10, bytes_=100),
            usage_row(s.ws_b, today() - timedelta(days=1), runs=2, succeeded=2),
        ]
    )
    response = login(s.owner).get(_url(s.org, "?days=7&format=csv"))
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    lines = list(csv.DictReader(io.StringIO(response.content.decode())))
    got = {(r["workspace"], r["day"], r["runs"], r["success_rate"]) for r in lines}
    assert got == {
        ("Production", today().isoformat(), "4", "0.75"),
        ("Staging", (today() - timedelta(days=1)).isoformat(), "2", "1.0"),
    }
    page = login(s.owner).get(_url(s.org, "?days=7")).content.decode()
    assert "days=7&amp;format=csv" in page
    assert login(s.member).get(_url(s.org, "?days=7&format=csv")).status_code == 403


def test_grants_do_not_matter_only_the_org_role(org_setup, login):
    """An org admin without any workspace membership still sees the org's usage."""
    s = org_setup
    admin2 = UserFactory()
    add_to_org(admin2, s.org, Role.ADMIN)
    assert login(admin2).get(_url(s.org)).status_code == 200


def test_per_workspace_days_are_fetched_lazily_in_one_query(owner, django_assert_num_queries):
    org = org_with_workspaces(owner, 20, days=30, seed=2)
    since = today() - timedelta(days=29)
    with django_assert_num_queries(4):
        report = usage_for(org, since=since, until=today())
    with django_assert_num_queries(1):  # every workspace's `daily`, for the API and the CSV
        data = report.as_dict()
    for w, wd in zip(report.workspaces, data["workspaces"], strict=True):
        assert len(wd["daily"]) == 30
        assert sum(d["runs"] for d in wd["daily"]) == w.runs
        assert sum(d["rows_processed"] for d in wd["daily"]) == w.rows_processed
    for i, day in enumerate(data["daily"]):
        assert day["runs"] == sum(wd["daily"][i]["runs"] for wd in data["workspaces"])


def test_long_ranges_draw_sparklines_by_week(org_setup, login):
    s = org_setup
    since = today() - timedelta(days=119)  # 120 days: 17 weeks and a last bucket of 1 day
    DailyWorkspaceUsage.objects.bulk_create(
        [
            usage_row(s.ws_a, since, runs=7),
            usage_row(s.ws_a, since + timedelta(days=6), runs=7),
            usage_row(s.ws_a, today(), runs=3),
        ]
    )
    report = usage_for(s.org, since=since, until=today())
    a = next(w for w in report.workspaces if w.name == "Production")
    series = a.runs_series()
    assert a.bucket_days == 7 and len(series) == 18
    assert series[0] == 2 and series[-1] == 3 and sum(series[1:-1]) == 0  # averages per day
    assert a.runs == 17 and report.daily[0].runs == 7 and report.daily[-1].runs == 3
    page = _login_get(s, s.owner, f"?from={since.isoformat()}&to={today().isoformat()}")
    assert "weekly average" in page and "Sync runs per day in Production, averaged by week" in page
    short = usage_for(s.org, since=today() - timedelta(days=89), until=today())
    a = next(w for w in short.workspaces if w.name == "Production")
    assert a.bucket_days == 1 and len(a.runs_series()) == 90 and a.runs_series()[-1] == 3
    assert "weekly average" not in _login_get(s, s.owner, "?days=90")


def test_a_year_and_the_year_to_date_are_presets(org_setup, login):
    client = login(org_setup.owner)
    html = client.get(_url(org_setup.org, "?days=365")).content.decode()
    assert "(365 days), UTC" in html
    assert 'aria-current="true">Last 365 days' in html
    assert "instead" not in html  # no contradictory fallback message
    html = client.get(_url(org_setup.org, "?days=ytd")).content.decode()
    start = today().replace(month=1, day=1)
    assert f"{start.day} {start:%b %Y} – " in html
    assert f"({(today() - start).days + 1} day" in html
    assert 'aria-current="true">Year to date' in html


def test_each_range_shows_the_previous_period_beside_it(org_setup, login):
    s = org_setup
    DailyWorkspaceUsage.objects.bulk_create(
        [
            usage_row(s.ws_a, today() - timedelta(days=1), runs=30, succeeded=30, rows=3000),
            usage_row(s.ws_a, today() - timedelta(days=8), runs=20, succeeded=20, rows=1000),
            usage_row(s.ws_b, today() - timedelta(days=20), runs=99, succeeded=99, rows=9),
        ]
    )
    html = login(s.owner).get(_url(s.org, "?days=7")).content.decode()
    prev_until = today() - timedelta(days=7)
    prev_since = prev_until - timedelta(days=6)
    assert f"previous 7 days: {prev_since.day} {prev_since:%b %Y} – {prev_until.day}" in html
    changes = html.split('data-testid="usage-change"')[1:]
    assert "previous period: 20" in changes[0] and "+50.0%" in changes[0]  # runs 20 → 30
    assert "previous period: 1K" in changes[1] and "+200.0%" in changes[1]  # rows 1K → 3K
    # A custom range compares with the same number of days before it.
    since, until = today() - timedelta(days=9), today() - timedelta(days=8)
    html = login(s.owner).get(_url(s.org, f"?from={since}&to={until}")).content.decode()
    changes = html.split('data-testid="usage-change"')[1:]
    assert "previous period: 0" in changes[0] and "new" in changes[0]


def test_usage_period_totals_counts_linked_days_only(org_setup):
    from billing.selectors import usage_period_totals

    s = org_setup
    DailyWorkspaceUsage.objects.bulk_create(
        [usage_row(s.ws_a, today() - timedelta(days=d), runs=2, succeeded=1) for d in range(3)]
    )
    totals = usage_period_totals(s.org, since=today() - timedelta(days=1), until=today())
    assert (totals.runs, totals.succeeded, totals.failed) == (4, 2, 2)
    with pytest.raises(ValidationFailed):
        usage_period_totals(s.org, since=today(), until=today() - timedelta(days=1))
