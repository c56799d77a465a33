"""`make load`: a bounded load test on loopback that stops by itself.

1. Makes sure the bench database exists (`manage.py bench --scale $LOAD_SCALE --generate-only
   --reuse`: generated once, then reused), and creates an API token for its owner.
2. Starts gunicorn with 4 workers on 127.0.0.1 against it.
   (Or, with LOAD_URL, a deployment that already runs, e.g. `make topology` on the bench
   database: LOAD_URL=http://127.0.0.1:8500.)
3. Runs locust headless: $LOAD_USERS users (default 50) for $LOAD_SECONDS (default 60) over the
   directory, audit log, usage and API list endpoints, signed in.
4. Prints throughput, p50/p99 and errors; exits non-zero on any error.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PY = sys.executable
USERS = int(os.environ.get("LOAD_USERS", 50))
SECONDS = int(os.environ.get("LOAD_SECONDS", 60))
SCALE = os.environ.get("LOAD_SCALE", "small")
P99_TARGET_MS = 300


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def bench_database() -> str:
    base = os.environ.get("DATABASE_URL") or "postgres://postgres@127.0.0.1:5432/signalsmith"
    if not base.startswith("postgres"):
        sys.exit("make load needs PostgreSQL: set DATABASE_URL=postgres://…")
    env = dict(os.environ, DATABASE_URL=base, DEBUG="false")
    subprocess.run(
        [PY, "manage.py", "bench", "--scale", SCALE, "--generate-only", "--reuse"],
        cwd=ROOT,
        env=env,
        check=True,
    )
    head, name = base.rsplit("/", 1)
    return f"{head}/{name.split('?')[0]}_bench"


def load_config(env: dict) -> dict:
    """Who signs in, what they look at, and an API token: read from the bench database."""
    script = """
import json
from bench.generate import BENCH_PASSWORD, OWNER_EMAIL
from config.roles import Role
from members.models import OrgMembership
from members.tokens import token_create
from orgs.models import Organization
from members.models import User
org = Organization.objects.alive().get(slug="bench")
emails = [OWNER_EMAIL] + list(OrgMembership.objects.filter(organization=org, role=Role.ADMIN)
    .order_by("pk").values_list("user__email", flat=True)[:10])
_, raw = token_create(actor=User.objects.get(email=OWNER_EMAIL), name="make load")
print(json.dumps({"org": org.slug, "org_id": org.public_id, "emails": emails,
    "password": BENCH_PASSWORD, "token": raw,
    "workspaces": list(org.workspaces.order_by("pk").values_list("public_id", flat=True)[:10])}))
"""
    out = subprocess.run(
        [PY, "manage.py", "shell", "-c", script],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def wait_for(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except urllib.error.HTTPError:
            return  # answering
        except OSError:
            time.sleep(0.2)
    sys.exit(f"gunicorn did not answer at {url}")


def main() -> int:
    database_url = bench_database()
    out_dir = ROOT / "var" / "load"
    out_dir.mkdir(parents=True, exist_ok=True)
    env = dict(
        os.environ,
        DJANGO_SETTINGS_MODULE="config.settings.local",
        DEBUG="false",
        DATABASE_URL=database_url,
        API_RATE_LIMIT_PER_MINUTE="1000000",  # one token for every script user: not what we test
        LOG_LEVEL="ERROR",
    )
    env.pop("REDIS_URL", None)  # per-process caches: the load test needs no broker
    config = load_config(env)
    # LOAD_URL: an already running deployment serving the bench database (e.g. `make topology`
    # started with DATABASE_URL=<db>_bench: nginx on :8500), instead of a gunicorn of our own.
    gunicorn = None
    if os.environ.get("LOAD_URL"):
        host = os.environ["LOAD_URL"].rstrip("/")
        served_by = f"the deployment at {host}"
    else:
        port = free_port()
        host = f"http://127.0.0.1:{port}"
        gunicorn = subprocess.Popen(
            [
                PY,
                "-m",
                "gunicorn",
                "config.wsgi",
                "-w",
                "4",
                "-b",
                f"127.0.0.1:{port}",
                "--timeout",
                "30",
                "--log-level",
                "warning",
            ],
            cwd=ROOT,
            env=env,
            start_new_session=True,
        )
        served_by = f"gunicorn (4 workers) on {host}"
    try:
        wait_for(host + "/signin/")
        print(
            f"load: {served_by}, database {database_url.rsplit('/', 1)[1]}; "
            f"{USERS} users for {SECONDS} s"
        )
        subprocess.run(
            [
                PY,
                "-m",
                "locust",
                "-f",
                str(ROOT / "tests/load/locustfile.py"),
                "--headless",
                "-u",
                str(USERS),
                "-r",
                str(max(1, USERS // 5)),
                "-t",
                f"{SECONDS}s",
                "--host",
                host,
                "--csv",
                str(out_dir / "load"),
                "--only-summary",
                "--stop-timeout",
                "5",
                "--loglevel",
                "WARNING",
            ],
            cwd=ROOT,
            env=dict(env, LOAD_CONFIG=json.dumps(config)),
            check=False,
        )
    finally:
        if gunicorn is not None:
            os.killpg(gunicorn.pid, signal.SIGTERM)
            gunicorn.wait(timeout=30)
    return report(out_dir / "load_stats.csv")


def report(path: Path) -> int:
    rows = list(csv.DictReader(path.open()))
    total = next(r for r in rows if r["Name"] == "Aggregated")
    print(
        f"\n{'endpoint':<22} {'requests':>8} {'errors':>6} {'req/s':>7} {'p50 ms':>7} {'p99 ms':>7}"
    )
    for r in rows:
        print(
            f"{(r['Name'] if r['Name'] != 'Aggregated' else 'ALL'):<22} {r['Request Count']:>8} "
            f"{r['Failure Count']:>6} {float(r['Requests/s']):>7.1f} {r['50%']:>7} {r['99%']:>7}"
        )
    errors = int(total["Failure Count"])
    p99 = float(total["99%"])
    print(
        f"\nload: {float(total['Requests/s']):.1f} requests/s, p50 {total['50%']} ms, p99 {p99:.0f} ms "
        f"(target ≤ {P99_TARGET_MS}), errors {errors} (target 0)"
    )
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
