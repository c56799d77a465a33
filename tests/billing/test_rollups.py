"""Daily usage roll-ups: equal to a direct aggregate of the raw runs, incremental, idempotent."""

import io
import random
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import connection
from django.db.models import Count, Q, Sum
from django.db.models.functions import TruncDate
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from billing.models import DailyWorkspaceUsage, RollupWatermark
from billing.rollups import FULL_ROLLUP_SQL, SAFETY_MARGIN, WATERMARK_NAME, rollup_usage
from billing.tasks import rollup_usage as rollup_usage_task
from tests.factories import SyncFactory, WorkspaceFactory
from workspaces.models import SyncRun

pytestmark = pytest.mark.django_db


@pytest.fixture
def syncs(db):
    """Three workspaces with two syncs each."""
    out = []
    for _ in range(3):
        ws = WorkspaceFactory()
        out += [SyncFactory(workspace=ws), SyncFactory(workspace=ws)]
    return out


def add_runs(syncs, n, *, rng, recorded_at=None, finished_within_days=20, on_day=None):
    """n random runs; finished in the last `finished_within_days` days (or on `on_day`)."""
    now = timezone.now()
    runs = []
    for _ in range(n):
        sync = rng.choice(syncs)
        if on_day is not None:
            finished = on_day + timedelta(seconds=rng.randint(0, 86399))
        else:
            finished = now - timedelta(seconds=rng.randint(0, finished_within_days * 86400))
        runs.append(
            SyncRun(
                sync=sync,
                workspace_id=sync.workspace_id,
                started_at=finished - timedelta(seconds=rng.randint(1, 900)),
                finished_at=finished,
                status=rng.choice(["succeeded", "succeeded", "succeeded", "failed"]),
                rows_processed=rng.randint(0, 5_000_000),
                bytes_processed=rng.randint(0, 3 * 1024**3),
                recorded_at=recorded_at or finished + timedelta(seconds=rng.randint(0, 120)),
            )
        )
    SyncRun.objects.bulk_create(runs, batch_size=500)


def direct_aggregate() -> dict:
    """The figures straight from the raw runs, grouped by workspace and UTC day."""
    rows = (
        SyncRun.objects.annotate(day=TruncDate("finished_at"))
        .values("workspace_id", "day")
        .annotate(
            runs=Count("pk"),
            succeeded=Count("pk", filter=Q(status="succeeded")),
            failed=Count("pk", filter=Q(status="failed")),
            rows=Sum("rows_processed"),
            bytes=Sum("bytes_processed"),
        )
    )
    return {
        (r["workspace_id"], r["day"]): (
            r["runs"],
            r["succeeded"],
            r["failed"],
            r["rows"],
            r["bytes"],
        )
        for r in rows
    }


def rolled_up() -> dict:
    return {
        (u.workspace_id, u.day): (
            u.runs,
            u.succeeded,
            u.failed,
            u.rows_processed,
            u.bytes_processed,
        )
        for u in DailyWorkspaceUsage.objects.all()
    }


def table_contents() -> list:
    return list(DailyWorkspaceUsage.objects.order_by("workspace_id", "day").values_list())


def test_rollup_equals_direct_aggregate_including_late_runs(syncs):
    rng = random.Random(7)
    add_runs(syncs, 600, rng=rng, recorded_at=timezone.now() - timedelta(hours=1))
    result = rollup_usage()
    assert result["mode"] == "incremental"
    assert result["runs_scanned"] == 600
    assert rolled_up() == direct_aggregate()
    assert sum(v[0] for v in rolled_up().values()) == 600

    # Runs that arrive late for days that were already rolled up (recorded after the watermark).
    rolled_day = timezone.now().replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(
        days=3
    )
    before = rolled_up()
    add_runs(syncs, 40, rng=rng, on_day=rolled_day, recorded_at=timezone.now())
    result = rollup_usage()
    assert result["runs_scanned"] == 40
    assert rolled_up() == direct_aggregate()
    assert sum(v[0] for v in rolled_up().values()) == 640
    changed = {k for k in rolled_up() if rolled_up()[k] != before.get(k)}
    assert changed and {day for _, day in changed} == {rolled_day.date()}


def test_running_twice_changes_nothing(syncs):
    rng = random.Random(11)
    add_runs(syncs, 300, rng=rng)  # recorded within the last 20 days, some inside the margin
    rollup_usage()
    first = table_contents()
    watermark = RollupWatermark.objects.get(name=WATERMARK_NAME).value
    rollup_usage()
    assert table_contents() == first
    assert RollupWatermark.objects.get(name=WATERMARK_NAME).value >= watermark
    assert rolled_up() == direct_aggregate()


def test_full_equals_incremental(syncs):
    rng = random.Random(23)
    for batch in range(4):  # noqa: B007
        # Runs are stamped when recorded, so recorded_at only grows from pass to pass.
        add_runs(
            syncs, 150, rng=rng, finished_within_days=5 * (batch + 1), recorded_at=timezone.now()
        )
        rollup_usage()
        # Late runs for older days in between passes.
        add_runs(syncs, 10, rng=rng, finished_within_days=30, recorded_at=timezone.now())
    rollup_usage()
    incremental = rolled_up()
    result = rollup_usage(full=True)
    assert result["mode"] == "full"
    assert result["days_recomputed"] == len(incremental)
    assert rolled_up() == incremental == direct_aggregate()
    # And a full pass is idempotent too.
    rollup_usage(full=True)
    assert rolled_up() == incremental


def test_full_drops_days_whose_runs_are_gone(syncs):
    rng = random.Random(5)
    add_runs(syncs, 100, rng=rng)
    rollup_usage()
    gone = syncs[0]
    SyncRun.objects.filter(sync=gone).delete()
    rollup_usage(full=True)
    assert rolled_up() == direct_aggregate()


def test_run_committed_after_a_pass_with_an_earlier_recorded_at_is_still_counted(syncs):
    """The watermark race: a run stamped before a pass but committed after it is not lost."""
    rng = random.Random(3)
    now = timezone.now()
    add_runs(syncs, 50, rng=rng, recorded_at=now - timedelta(seconds=30))
    rollup_usage()
    watermark = RollupWatermark.objects.get(name=WATERMARK_NAME).value
    assert watermark <= timezone.now() - SAFETY_MARGIN
    # Stamped *before* the newest run the pass saw, but only visible now (its transaction was open).
    add_runs(syncs, 5, rng=rng, recorded_at=now - timedelta(seconds=60))
    rollup_usage()
    assert rolled_up() == direct_aggregate()
    assert sum(v[0] for v in rolled_up().values()) == 55


def test_watermark_never_moves_back_and_holds_without_new_runs(syncs):
    rng = random.Random(9)
    add_runs(syncs, 20, rng=rng, recorded_at=timezone.now() - timedelta(days=2))
    rollup_usage()
    mark = RollupWatermark.objects.get(name=WATERMARK_NAME).value
    assert mark == SyncRun.objects.order_by("-recorded_at").first().recorded_at
    result = rollup_usage()
    assert result["runs_scanned"] == 0
    assert result["days_recomputed"] == 0
    assert RollupWatermark.objects.get(name=WATERMARK_NAME).value == mark


def test_command_prints_what_it_did(syncs):
    add_runs(syncs, 30, rng=random.Random(1), recorded_at=timezone.now() - timedelta(hours=2))
    out = io.StringIO()
    call_command("rollup_usage", stdout=out)
    assert "Incremental roll-up: 30 runs recorded after" in out.getvalue()
    assert "Watermark:" in out.getvalue()
    out = io.StringIO()
    call_command("rollup_usage", "--full", stdout=out)
    assert f"rebuilt {len(direct_aggregate())} workspace-days" in out.getvalue()
    assert rolled_up() == direct_aggregate()


def test_celery_task_rolls_up(syncs):
    add_runs(syncs, 25, rng=random.Random(2))
    result = rollup_usage_task.apply().get()
    assert result["runs_scanned"] == 25
    assert rolled_up() == direct_aggregate()
    assert rollup_usage_task.name == "billing.tasks.rollup_usage"


def test_empty_database_rolls_up_nothing(db):
    assert rollup_usage()["days_recomputed"] == 0
    assert rollup_usage(full=True)["days_recomputed"] == 0
    assert DailyWorkspaceUsage.objects.count() == 0


@pytest.mark.postgres
def test_full_rollup_is_one_statement_whatever_the_data_size(syncs):
    """The benchmark times FULL_ROLLUP_SQL by hand against `rollup_usage --full`."""
    add_runs(syncs, 200, rng=random.Random(4))
    rollup_usage()  # the first pass ever also creates the watermark row
    with CaptureQueriesContext(connection) as small:
        rollup_usage(full=True)
    add_runs(syncs, 800, rng=random.Random(5))
    with CaptureQueriesContext(connection) as large:
        rollup_usage(full=True)
    assert len(small.captured_queries) == len(large.captured_queries)
    inserts = [
        q["sql"]
        for q in large.captured_queries
        if "INSERT INTO billing_dailyworkspaceusage" in q["sql"]
    ]
    assert inserts == [FULL_ROLLUP_SQL]
    assert rolled_up() == direct_aggregate()
