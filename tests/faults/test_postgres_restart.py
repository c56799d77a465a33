"""PostgreSQL restarts under a request storm: requests fail cleanly with the 503 page while it
is down, and the app recovers by itself (no gunicorn restart).

Opt-in (RUN_PG_RESTART=1): it stops and starts the machine's PostgreSQL cluster, which breaks
every other test or process using it at that moment. `.ci/run` turns it on, because CI runs the
suite alone and serially; on a shared machine run it when nobody else is testing.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from pathlib import Path

import pytest
import requests
from django.contrib.auth.hashers import PBKDF2PasswordHasher
from django.db import connection, connections

from bench.database import database_url
from bench.infra import Gunicorn, app_env
from orgs.services import org_create
from tests.factories import PASSWORD, UserFactory
from workspaces.services import workspace_create

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.pg_restart,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        os.environ.get("RUN_PG_RESTART") != "1",
        reason="restarts the machine's PostgreSQL: opt in with RUN_PG_RESTART=1",
    ),
]

DOWN_SECONDS = 3


def _cluster(action: str) -> None:
    version = sorted(p.name for p in Path("/etc/postgresql").iterdir())[-1]
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", action],
        check=True,
        timeout=120,
    )


def _wait_for_postgres(timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if subprocess.run(["pg_isready", "-h", "127.0.0.1", "-q"]).returncode == 0:
            return
        time.sleep(0.2)
    raise RuntimeError("PostgreSQL did not come back")


def _signed_in_session(base_url: str) -> requests.Session:
    s = requests.Session()
    s.get(base_url + "/signin/", timeout=20)
    r = s.post(
        base_url + "/signin/",
        data={
            "email": "olivia@acme.test",
            "password": PASSWORD,
            "csrfmiddlewaretoken": s.cookies["csrftoken"],
        },
        allow_redirects=False,
        timeout=20,
    )
    assert r.status_code == 302, r.text[:500]
    return s


def test_requests_fail_cleanly_while_postgres_restarts_and_the_app_recovers():
    owner = UserFactory(full_name="Olivia Owner", email="olivia@acme.test")
    # gunicorn runs the real settings, whose hashers do not include the tests' fast MD5 one.
    hasher = PBKDF2PasswordHasher()
    owner.password = hasher.encode(PASSWORD, hasher.salt())
    owner.save(update_fields=["password"])
    org_create(
        actor=owner, name="Acme Corp", workspace=workspace_create(actor=owner, name="Production")
    )
    url = database_url(connection.settings_dict, connection.settings_dict["NAME"])
    results: list[tuple[float, str, int | str, bool]] = []  # (time, phase, status, friendly 503)
    phase = ["before"]
    stop = threading.Event()

    with Gunicorn(app_env(url), workers=3) as server:
        sessions = [_signed_in_session(server.url) for _ in range(6)]

        def storm(session):
            while not stop.is_set():
                try:
                    r = session.get(server.url + "/o/acme-corp/members/", timeout=20)
                    friendly = r.status_code == 503 and 'data-testid="db-unavailable"' in r.text
                    results.append((time.monotonic(), phase[0], r.status_code, friendly))
                except requests.RequestException as exc:  # a reset or a hang: not clean
                    results.append((time.monotonic(), phase[0], type(exc).__name__, False))
                time.sleep(0.02)

        threads = [threading.Thread(target=storm, args=(s,), daemon=True) for s in sessions]
        for t in threads:
            t.start()
        try:
            time.sleep(2)
            phase[0] = "down"
            _cluster("stop")
            time.sleep(DOWN_SECONDS)
            _cluster("start")
            _wait_for_postgres()
            phase[0] = "recovering"
            time.sleep(3)
            phase[0] = "after"
            time.sleep(3)
        finally:
            stop.set()
            for t in threads:
                t.join(timeout=30)
            if not _is_running():
                _cluster("start")
            _wait_for_postgres()
            connections.close_all()  # this process's own connection died with the server

    statuses = {status for _, _, status, _ in results}
    assert statuses <= {200, 503}, f"unclean answers during the restart: {statuses}"
    down = [r for r in results if r[1] == "down"]
    assert any(status == 503 for _, _, status, _ in down), "no request saw the database down"
    assert all(friendly for _, _, status, friendly in results if status == 503)
    before = [status for _, p, status, _ in results if p == "before"]
    after = [status for _, p, status, _ in results if p == "after"]
    assert before and set(before) == {200}
    assert after and set(after) == {200}, f"not recovered: {after}"


def _is_running() -> bool:
    return subprocess.run(["pg_isready", "-h", "127.0.0.1", "-q"]).returncode == 0
