"""`manage.py bench --scale tiny` end to end: every measurement is there and query counts do not
grow with the data (the big org and the small control org run the same number of queries).

The figures themselves are not asserted (no timed tests); `make bench` is for those.
"""

import json
import os
import subprocess
import sys

import pytest
from django.conf import settings

from bench import database

DIRECTORY_CASES = 10
AUDIT_CASES = 16  # workspace × actor × action × date range, each on or off
USAGE_CASES = 2
ADMIN_CASES = 4  # support's changelists searched: audit events (name, id), people, memberships


def _base_name() -> str:
    db = settings.DATABASES["default"]
    return (db.get("TEST") or {}).get("NAME") or f"test_{db['NAME']}"


@pytest.mark.postgres
def test_bench_tiny_reports_every_measurement(tmp_path):
    out = tmp_path / "bench.json"
    db = settings.DATABASES["default"]
    env = dict(
        os.environ,
        DJANGO_SETTINGS_MODULE="config.settings.local",
        DEBUG="false",
        DATABASE_URL=database.database_url(db, _base_name()),
    )
    proc = subprocess.run(
        [
            sys.executable,
            "manage.py",
            "bench",
            "--scale",
            "tiny",
            "--runs",
            "5",
            "--json",
            str(out),
        ],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    result = json.loads(out.read_text())

    groups = [p["group"] for p in result["pages"]]
    assert groups.count("directory") == DIRECTORY_CASES
    assert groups.count("audit log") == AUDIT_CASES
    assert groups.count("usage") == USAGE_CASES
    assert groups.count("admin") == ADMIN_CASES
    for page in result["pages"]:
        assert page["status"] == 200, page
        assert isinstance(page["meets_target"], bool) and page["target_ms"] > 0, page
        if page["group"] == "directory":
            # The bench EXPLAINs every directory query (at tiny scale the planner rightly reads
            # the few rows and sorts them; `index_walk` is reported, and read, at large and xl).
            assert page["plan"]["nodes"] and isinstance(page["plan"]["index_walk"], bool), page
        assert page["queries"] > 0 and page["page_ms"] > 0 and page["floor_ms"] > 0, page
        assert page["queries"] == page["control_queries"], f"query count depends on size: {page}"
    assert result["summary"]["query_counts_independent"] is True
    figures = {t["figure"].split(" (")[0].split(",")[0]: t for t in result["targets"]}
    assert {"directory", "audit log", "usage", "admin", "audit record()"} <= set(figures)
    assert all(isinstance(t["meets_target"], bool) for t in result["targets"])

    assert result["rollup"]["command_ms"] > 0 and result["rollup"]["statement_ms"] > 0
    audit = result["audit_record"]
    assert audit["single_writer_events_per_s"] > 0 and audit["eight_writers_events_per_s"] > 0
    assert audit["chain_ok"] is True, audit["chain_problem"]
    # Generated events plus the ones record() appended, in one verified chain.
    assert audit["chain_events_verified"] > result["generated"]["audit_events"]

    invite = result["bulk_invite"]
    # With REDIS_URL set it must run; without, it runs when the default local Redis answers.
    if os.environ.get("REDIS_URL") or "skipped" not in invite:
        assert invite["exactly_once"] is True, invite
        assert invite["invitations_marked_sent"] == invite["addresses"]
    # The bench database is dropped afterwards: nothing left behind on the server.
    assert database.existing_scale(db, database.bench_name(_base_name())) is None


def test_bench_refuses_sqlite(tmp_path):
    env = dict(
        os.environ,
        DJANGO_SETTINGS_MODULE="config.settings.local",
        DATABASE_URL=f"sqlite:///{tmp_path / 'x.sqlite3'}",
    )
    proc = subprocess.run(
        [sys.executable, "manage.py", "bench", "--scale", "tiny"],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode != 0
    assert "bench needs PostgreSQL" in proc.stderr
