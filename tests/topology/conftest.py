"""The real topology's database half: a streaming hot standby on 5433 behind PgBouncer (6432).

The session fixture starts them with deploy/topology/topology.sh (idempotent, ~1 s when already
running), so `make test` alone works; a replica that cannot be started fails the tests.
Replica tests are transactional: only committed rows stream to the standby.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import psycopg
import pytest
from django.db import connections

from config import dbrouter

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "deploy" / "topology" / "topology.sh"
REPLICA_PORT = 5433
PGBOUNCER_PORT = 6432


def primary_conn() -> psycopg.Connection:
    d = connections["default"].settings_dict
    return psycopg.connect(
        host=d["HOST"] or "127.0.0.1",
        port=d["PORT"] or 5432,
        user=d["USER"] or "postgres",
        dbname=d["NAME"],
        autocommit=True,
    )


def replica_conn(dbname: str = "postgres") -> psycopg.Connection:
    return psycopg.connect(
        host="127.0.0.1",
        port=REPLICA_PORT,
        user="postgres",
        dbname=dbname,
        autocommit=True,
        connect_timeout=2,
    )


def streaming() -> bool:
    try:
        with replica_conn() as c:
            row = c.execute(
                "SELECT pg_is_in_recovery() AND EXISTS (SELECT 1 FROM pg_stat_wal_receiver "
                "WHERE status = 'streaming')"
            ).fetchone()
            return bool(row and row[0])
    except psycopg.Error:
        return False


def wait_streaming(timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if streaming():
            return
        time.sleep(0.2)
    raise AssertionError("the replica is not streaming")


def wait_replayed(timeout: float = 30) -> None:
    """Until the replica has replayed everything the primary committed so far."""
    with primary_conn() as p:
        target = p.execute("SELECT pg_current_wal_lsn()").fetchone()[0]
    deadline = time.monotonic() + timeout
    with replica_conn() as r:
        while time.monotonic() < deadline:
            behind = r.execute(
                "SELECT pg_wal_lsn_diff(%s::pg_lsn, pg_last_wal_replay_lsn()) > 0", (str(target),)
            ).fetchone()[0]
            if not behind:
                return
            time.sleep(0.05)
    raise AssertionError("the replica did not catch up")


def wait_pooled(timeout: float = 30) -> None:
    """Until PgBouncer serves the replica alias again (it retries a failed server login)."""
    conn = connections["replica"]
    deadline = time.monotonic() + timeout
    while True:
        try:
            with conn.cursor() as cursor:
                cursor.execute("SELECT 1")
            return
        except Exception:
            conn.close()
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def pg_version() -> str:
    return (
        os.environ.get("PG_VERSION")
        or sorted((p.name for p in Path("/etc/postgresql").iterdir()), key=int)[-1]
    )


def cluster(action: str) -> None:
    """Stop or start the replica cluster (never the primary)."""
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", pg_version(), "replica", action]
        + (["-m", "fast"] if action == "stop" else []),
        check=True,
        timeout=120,
    )


@pytest.fixture(scope="session")
def topology_db(django_db_setup, django_db_blocker) -> str:
    """Replica + PgBouncer running, PgBouncer knowing `<test db>_replica`; the test db's name."""
    name = connections["default"].settings_dict["NAME"]
    env = dict(os.environ, TOPOLOGY_DBS=name)
    result = subprocess.run(
        ["bash", str(SCRIPT), "db"], env=env, capture_output=True, text=True, timeout=300
    )
    if result.returncode != 0:
        pytest.fail(
            f"could not start the replica and PgBouncer:\n{result.stdout}\n{result.stderr}",
            pytrace=False,
        )
    wait_streaming()
    return name


@pytest.fixture
def replica_reads(settings, topology_db, transactional_db):
    """Replica reads on, through PgBouncer (transaction pooling), health checked directly."""
    settings.REPLICA_READS = True
    settings.REPLICA_CHECK_URL = f"postgres://postgres@127.0.0.1:{REPLICA_PORT}/{topology_db}"
    settings.REPLICA_MAX_LAG_SECONDS = 60.0
    settings.REPLICA_HEALTH_SECONDS = 0.0  # check at every request unless a test says otherwise
    conn = connections[dbrouter.REPLICA]
    saved = dict(conn.settings_dict)
    conn.close()
    conn.settings_dict.update(
        PORT=PGBOUNCER_PORT, NAME=f"{topology_db}_replica", DISABLE_SERVER_SIDE_CURSORS=True
    )
    dbrouter.forget_health()
    wait_replayed()  # the test database itself, created on the primary, has streamed over
    wait_pooled()
    try:
        yield conn
    finally:
        conn.close()
        conn.settings_dict.clear()
        conn.settings_dict.update(saved)
        dbrouter.forget_health()
        if not streaming():  # a test stopped it and failed before starting it again
            cluster("start")
            wait_streaming()


@pytest.fixture
def replay_paused(topology_db):
    """The replica keeps receiving WAL but stops applying it: its reads are visibly stale."""
    with replica_conn() as r:
        r.execute("SELECT pg_wal_replay_pause()")
    try:
        yield
    finally:
        try:
            with replica_conn() as r:
                r.execute("SELECT pg_wal_replay_resume()")
        except psycopg.Error:
            pass  # a stopped replica starts replaying again
