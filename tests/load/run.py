"""`make load`: a bounded load test on loopback that stops by itself.

1. Makes sure the bench database exists (`manage.py bench --scale $LOAD_SCALE --generate-only
   --reuse`: generated once, then reused), and creates an API token for its owner.
2. Starts gunicorn with 4 workers on 127.0.0.1 against it.
   (Or, with LOAD_URL, a deployment that already runs, e.g. `make topology` on the bench
   database: LOAD_URL=http://127.0.0.1:8500.)
3. Runs locust headless: $LOAD_USERS users (default 50) for $LOAD_SECONDS (default 60) over the
   directory, audit log, usage and API list endpoints, signed in.
4. Prints throughput, p50/p99 and errors; exits non-zero on any error.
5. Then a stepped run ($LOAD_STEPS users, default 5,10,20,35,50, $LOAD_STEP_SECONDS each,
   default 20): req/s and p99 per step, and the req/s at which p99 crosses 300 ms.
   p99 here is of pages and API calls, after each step's first 5 s (the sign-ins, Argon2 by
   design, are reported apart). LOAD_STEPS= (empty) skips it. LOAD_PORT fixes gunicorn's port.
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
STEPS = [int(n) for n in os.environ.get("LOAD_STEPS", "5,10,20,35,50").split(",") if n.strip()]
STEP_SECONDS = int(os.environ.get("LOAD_STEP_SECONDS", 20))
RAMP_SECONDS = 5  # dropped from each step's figures: everyone signing in at once
SIGN_IN = ("/signin/", "/signin/ (POST)")


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
        port = int(os.environ.get("LOAD_PORT") or free_port())
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
    steps = []
    try:
        wait_for(host + "/signin/")
        print(
            f"load: {served_by}, database {database_url.rsplit('/', 1)[1]}; "
            f"{USERS} users for {SECONDS} s"
        )
        run_locust(host, env, config, USERS, SECONDS, out_dir / "load")
        for users in STEPS:
            times = run_locust(host, env, config, users, STEP_SECONDS, out_dir / f"step-{users}")
            steps.append(step_figures(users, times))
            s = steps[-1]
            print(
                f"load step: {users} users: {s['req_per_s']} req/s, p50 {s['p50_ms']} ms, "
                f"p99 {s['p99_ms']} ms (sign-in p99 {s['signin_p99_ms']} ms), errors {s['errors']}"
            )
    finally:
        if gunicorn is not None:
            os.killpg(gunicorn.pid, signal.SIGTERM)
            gunicorn.wait(timeout=30)
    status = report(out_dir / "load_stats.csv", out_dir / "load-times.json")
    if steps:
        crossing = next((st for st in steps if st["p99_ms"] > P99_TARGET_MS), None)
        below = [st for st in steps if st["p99_ms"] <= P99_TARGET_MS]
        if crossing:
            print(
                f"load steps: p99 crosses {P99_TARGET_MS} ms at {crossing['users']} users, "
                f"{crossing['req_per_s']} req/s (last step within: "
                + (
                    f"{below[-1]['users']} users, {below[-1]['req_per_s']} req/s)"
                    if below
                    else "none)"
                )
            )
        else:
            print(
                f"load steps: p99 stays ≤ {P99_TARGET_MS} ms up to {steps[-1]['req_per_s']} req/s"
            )
        (out_dir / "steps.json").write_text(json.dumps(steps, indent=2))
    return status


def run_locust(host: str, env: dict, config: dict, users: int, seconds: int, prefix: Path):
    times_file = prefix.with_name(prefix.name + "-times.json")
    subprocess.run(
        [
            PY,
            "-m",
            "locust",
            "-f",
            str(ROOT / "tests/load/locustfile.py"),
            "--headless",
            "-u",
            str(users),
            "-r",
            str(max(1, users // 5)),
            "-t",
            f"{seconds}s",
            "--host",
            host,
            "--csv",
            str(prefix),
            "--only-summary",
            "--stop-timeout",
            "5",
            "--loglevel",
            "WARNING",
        ],
        cwd=ROOT,
        env=dict(env, LOAD_CONFIG=json.dumps(config), LOAD_TIMES_FILE=str(times_file)),
        check=False,
    )
    return json.loads(times_file.read_text()) if times_file.exists() else []


def _pct(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))])


def step_figures(users: int, times: list) -> dict:
    steady = [t for t in times if t[0] >= RAMP_SECONDS]
    pages = [t for t in steady if t[1] not in SIGN_IN]
    span = max(1e-9, (max(t[0] for t in steady) - RAMP_SECONDS) if steady else 1e-9)
    return {
        "users": users,
        "requests": len(pages),
        "req_per_s": round(len(pages) / span, 1),
        "p50_ms": _pct([t[2] for t in pages], 0.50),
        "p99_ms": _pct([t[2] for t in pages], 0.99),
        "signin_p99_ms": _pct([t[2] for t in times if t[1] in SIGN_IN], 0.99),
        "errors": sum(1 for t in times if t[3]),
    }


def report(path: Path, times_path: Path) -> int:
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
        f"all requests incl. sign-in, errors {errors} (target 0)"
    )
    if times_path.exists():
        steady = step_figures(USERS, json.loads(times_path.read_text()))
        ok = steady["p99_ms"] <= P99_TARGET_MS
        print(
            f"load: pages and API after the first {RAMP_SECONDS} s: {steady['req_per_s']} req/s, "
            f"p50 {steady['p50_ms']} ms, p99 {steady['p99_ms']} ms (target ≤ {P99_TARGET_MS}: "
            f"{'met' if ok else 'missed'}); sign-in p99 {steady['signin_p99_ms']} ms"
        )
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
