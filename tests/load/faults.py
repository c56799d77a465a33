"""`make faults`: the topology (deploy/topology/topology.sh) under a bounded loopback load while
parts of it fail, one at a time; prints the errors of each fault window and what was lost.

Load (through nginx on 127.0.0.1:8500): signed-in readers on the directory, audit log, usage and
the members API list; one API writer that changes a member's role back and forth (each change is
audited) and reports sync runs (input of the usage roll-ups).

Faults, in order: an app server SIGKILLed (nginx sends its requests to the other), the replica
stopped (reads fall back to the primary), a Celery worker SIGKILLed in the middle of an
invitation's SMTP conversation, and — only with RUN_PG_RESTART=1, as it stops the machine's
PostgreSQL — the primary restarted.

Lost must be nothing: every invitation delivered exactly once (loopback SMTP sink), one audit
event per role change that answered 200 (and none beyond those attempted), every reported sync
run stored and counted by the roll-up a worker computes afterwards. Exit 1 if anything was lost.
Bounded: about a minute and a half; then the topology is stopped again (FAULTS_KEEP=1 keeps it).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter, defaultdict
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
BASE_URL = os.environ.get("DATABASE_URL") or "postgres://postgres@127.0.0.1:5432/signalsmith"
REDIS_URL = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"
os.environ.update(
    DJANGO_SETTINGS_MODULE="config.settings.local",
    DATABASE_URL=BASE_URL,  # this process checks the results on the primary itself
    REDIS_URL=REDIS_URL,
    DEBUG="false",
    LOG_LEVEL="ERROR",
)
os.environ.pop("REPLICA_DATABASE_URL", None)

import django  # noqa: E402

django.setup()

import requests  # noqa: E402
from django.db import close_old_connections, connection  # noqa: E402
from django.utils import timezone  # noqa: E402

from bench.infra import SmtpSink  # noqa: E402

SCRIPT = ROOT / "deploy" / "topology" / "topology.sh"
NGINX = f"http://127.0.0.1:{os.environ.get('NGINX_PORT', '8500')}"
SMTP_PORT = int(os.environ.get("FAULTS_SMTP_PORT", "8525"))
RUN_DIR = Path(os.environ.get("TOPOLOGY_DIR", ROOT / "var" / "topology"))
PG_VERSION = sorted((p.name for p in Path("/etc/postgresql").iterdir()), key=int)[-1]
READERS = int(os.environ.get("FAULTS_READERS", "6"))
WINDOW = float(os.environ.get("FAULTS_WINDOW_SECONDS", "8"))
READER = "bob@acme.test"  # an admin of the demo org; alice (owner) writes
DB = BASE_URL.rsplit("/", 1)[1].split("?")[0]

phase = ["setup"]
stop = threading.Event()
results: list[tuple[str, str, int | str]] = []  # (phase, what, status or exception name)
writes = {"role_ok": 0, "role_tried": 0, "runs_ok": set(), "runs_tried": 0}
lock = threading.Lock()


def topology(*args: str, **env: str) -> None:
    subprocess.run(
        ["bash", str(SCRIPT), *args],
        env={
            **os.environ,
            "PY": sys.executable,
            "DATABASE_URL": BASE_URL,
            "REDIS_URL": REDIS_URL,
            "EMAIL_URL": f"smtp://127.0.0.1:{SMTP_PORT}",
            "API_RATE_LIMIT_PER_MINUTE": "1000000",  # one token for the whole load
            **env,
        },
        check=True,
        cwd=ROOT,
    )


def pid_of(name: str) -> int:
    return int((RUN_DIR / f"{name}.pid").read_text())


def seed() -> dict:
    subprocess.run([sys.executable, "manage.py", "seed_demo"], cwd=ROOT, check=True)
    from config.roles import Role
    from members.models import OrgMembership, User
    from members.tokens import token_create
    from orgs.models import Organization
    from workspaces.models import Sync

    org = Organization.objects.alive().get(slug="acme-corp")
    alice = User.objects.get(email="alice@acme.test")
    carol = OrgMembership.objects.get(organization=org, user__email="carol@acme.test")
    OrgMembership.objects.filter(pk=carol.pk).update(role=Role.MEMBER)
    sync = Sync.objects.filter(workspace__organization=org).select_related("workspace").first()
    assert sync is not None, "seed_demo made no sync"
    _, token = token_create(actor=alice, name=f"faults {uuid.uuid4().hex[:6]}")
    # Readers are another person: a user who wrote reads the primary for a while (dbrouter).
    _, reader_token = token_create(
        actor=User.objects.get(email=READER), name=f"faults {uuid.uuid4().hex[:6]}"
    )
    return {
        "org": org,
        "org_id": org.public_id,
        "carol": carol.public_id,
        "carol_pk": carol.pk,
        "token": token,
        "reader_token": reader_token,
        "sync": sync,
        "since": timezone.now(),
    }


def signed_in() -> requests.Session:
    s = requests.Session()
    s.get(NGINX + "/signin/", timeout=20)
    r = s.post(
        NGINX + "/signin/",
        data={
            "email": READER,
            "password": "signalsmith-demo",
            "csrfmiddlewaretoken": s.cookies["csrftoken"],
        },
        allow_redirects=False,
        timeout=20,
    )
    assert r.status_code == 302, r.text[:300]
    s.cookies.pop("ss_wrote", None)  # the sign-in wrote; readers should read the replica
    return s


def note(what: str, outcome: int | str) -> None:
    with lock:
        results.append((phase[0], what, outcome))


def reader(session: requests.Session, ctx: dict) -> None:
    pages = [
        ("directory", "/o/acme-corp/members/"),
        ("audit log", "/o/acme-corp/audit/"),
        ("usage", "/o/acme-corp/usage/"),
    ]
    api = requests.Session()
    api.headers["Authorization"] = f"Bearer {ctx['reader_token']}"
    i = 0
    while not stop.is_set():
        i += 1
        name, path = pages[i % len(pages)]
        client, what = (session, name) if i % 4 else (api, "api members")
        url = NGINX + (path if i % 4 else f"/api/v1/organizations/{ctx['org_id']}/members")
        try:
            r = client.get(url, timeout=30, allow_redirects=False)
            note(what, r.status_code)
        except requests.RequestException as exc:
            note(what, type(exc).__name__)
        time.sleep(0.05)


def writer(ctx: dict) -> None:
    api = requests.Session()
    api.headers["Authorization"] = f"Bearer {ctx['token']}"
    role = "admin"
    sync = ctx["sync"]
    runs_url = f"{NGINX}/api/v1/workspaces/{sync.workspace.public_id}/syncs/{sync.public_id}/runs"
    while not stop.is_set():
        with lock:
            writes["role_tried"] += 1
        try:
            r = api.put(
                f"{NGINX}/api/v1/organizations/{ctx['org_id']}/members/{ctx['carol']}",
                json={"org_role": role},
                timeout=30,
            )
            note("api role change", r.status_code)
            if r.status_code == 200:
                with lock:
                    writes["role_ok"] += 1
                role = "member" if role == "admin" else "admin"
        except requests.RequestException as exc:
            note("api role change", type(exc).__name__)
        now = timezone.now()
        with lock:
            writes["runs_tried"] += 1
        try:
            r = api.post(
                runs_url,
                json={
                    "status": "succeeded",
                    "started_at": (now - timedelta(seconds=30)).isoformat(),
                    "finished_at": now.isoformat(),
                    "rows_processed": 7,
                    "bytes_processed": 1000,
                },
                timeout=30,
            )
            note("api sync run", r.status_code)
            if r.status_code == 201:
                with lock:
                    writes["runs_ok"].add(r.json()["id"])
        except requests.RequestException as exc:
            note("api sync run", type(exc).__name__)
        time.sleep(0.2)


replica_xacts: Counter = Counter()  # transactions the replica served, per window


def replica_sampler() -> None:
    """Where the reads went: the replica's own transaction count for the database, per window."""
    import psycopg

    last = None
    while not stop.is_set():
        try:
            with psycopg.connect(
                f"postgres://postgres@127.0.0.1:5433/{DB}", connect_timeout=1
            ) as c:
                now = c.execute(
                    "SELECT xact_commit + xact_rollback FROM pg_stat_database "
                    "WHERE datname = current_database()"
                ).fetchone()[0]
            if last is not None and now >= last:
                replica_xacts[phase[0]] += now - last - 1  # less this sampler's own
            last = now
        except Exception:  # noqa: BLE001 (down: nothing served)
            last = None
        time.sleep(0.5)


def window(name: str, seconds: float = WINDOW) -> None:
    phase[0] = name
    print(f"faults: {name}", flush=True)
    time.sleep(seconds)


def kill_app_server() -> None:
    phase[0] = "app server killed"
    print("faults: SIGKILL app server 1 (gunicorn master and workers)", flush=True)
    os.killpg(pid_of("app1"), signal.SIGKILL)
    time.sleep(WINDOW)
    topology("up", SKIP_SETUP="1")  # starts the dead one again
    window("app server back", 3)


def stop_replica() -> None:
    phase[0] = "replica stopped"
    print("faults: stop the replica cluster", flush=True)
    cluster("replica", "stop")
    time.sleep(WINDOW)
    cluster("replica", "start")
    window("replica back", 4)


def cluster(name: str, action: str) -> None:
    args = ["pg_ctlcluster", "--skip-systemctl-redirect", PG_VERSION, name, action]
    subprocess.run(args + (["-m", "fast"] if action == "stop" else []), check=True, timeout=120)


def sender_pid() -> int | None:
    """The process in an SMTP conversation with the sink (a Celery worker's child)."""
    out = subprocess.run(
        ["ss", "-tnpH", "state", "established", "dst", f"127.0.0.1:{SMTP_PORT}"],
        capture_output=True,
        text=True,
    ).stdout
    m = re.search(r"pid=(\d+)", out)
    return int(m.group(1)) if m else None


def kill_worker_mid_send(sink: SmtpSink, ctx: dict) -> list[str]:
    phase[0] = "worker killed mid-send"
    emails = [f"fault-{uuid.uuid4().hex[:8]}-{i}@newco.test" for i in range(3)]
    sink.delay = 3.0
    api = requests.Session()
    api.headers["Authorization"] = f"Bearer {ctx['token']}"
    for email in emails:
        r = api.post(
            f"{NGINX}/api/v1/organizations/{ctx['org_id']}/members/invite",
            json={"email": email, "org_role": "member"},
            timeout=30,
        )
        assert r.status_code == 201, r.text[:300]
    assert sink.rcpt_started.wait(60), "no worker started sending"
    pid = sender_pid()
    assert pid is not None, "no SMTP conversation found"
    victim = os.getpgid(pid)
    name = next(
        (n for n in ("worker1", "worker2") if pid_of(n) == victim), f"process group {victim}"
    )
    print(f"faults: SIGKILL {name} while it is inside an SMTP conversation", flush=True)
    os.killpg(victim, signal.SIGKILL)
    sink.delay = 0
    time.sleep(2)
    topology("up", SKIP_SETUP="1")
    # The killed task waits in Redis' unacked set (visibility timeout); the periodic re-send takes
    # the invitation over after its grace period: made due now, and the re-send run now.
    from members.models import Invitation
    from members.tasks import resend_undelivered_invitations

    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and len(set(sink.recipients()) & set(emails)) < 3:
        close_old_connections()
        Invitation.objects.filter(email__in=emails, delivery_state="queued").update(
            next_attempt_at=timezone.now()
        )
        resend_undelivered_invitations.apply_async()
        time.sleep(3)
    window("after worker restart", 3)  # time for any duplicate to show up
    return emails


def restart_primary() -> None:
    phase[0] = "primary restarting"
    print("faults: stop the primary for 3 s (RUN_PG_RESTART=1)", flush=True)
    cluster("main", "stop")
    time.sleep(3)
    cluster("main", "start")
    for _ in range(120):
        if subprocess.run(["pg_isready", "-h", "127.0.0.1", "-q"]).returncode == 0:
            break
        time.sleep(0.25)
    window("primary back", 5)


def report(ctx: dict, emails: list[str], sink: SmtpSink) -> int:
    by_phase: dict[str, Counter] = defaultdict(Counter)
    order: list[str] = []
    for p, what, outcome in results:
        if p not in order:
            order.append(p)
        ok = isinstance(outcome, int) and outcome < 400
        by_phase[p]["requests"] += 1
        if not ok:
            by_phase[p][f"error {what} {outcome}"] += 1
    print(f"\n{'window':<26} {'requests':>8} {'errors':>6} {'replica tx':>10}  errors")
    for p in order:
        c = by_phase[p]
        errors = {k: v for k, v in c.items() if k.startswith("error")}
        kinds = ", ".join(f"{k[6:]}×{v}" for k, v in sorted(errors.items())) or "-"
        print(
            f"{p:<26} {c['requests']:>8} {sum(errors.values()):>6} {replica_xacts[p]:>10}  {kinds}"
        )

    close_old_connections()
    from audit.models import AuditEvent
    from billing.models import DailyWorkspaceUsage
    from billing.tasks import rollup_usage
    from workspaces.models import SyncRun

    lost: list[str] = []
    got = Counter(r for r in sink.recipients() if r in emails)
    if got != Counter(emails):
        lost.append(f"invitations: delivered {dict(got)}, expected each of {emails} once")
    events = AuditEvent.objects.filter(
        organization_id=ctx["org"].pk, action="member.role_changed", occurred_at__gte=ctx["since"]
    ).count()
    if not writes["role_ok"] <= events <= writes["role_tried"]:
        lost.append(
            f"audit: {events} role_changed events for {writes['role_ok']} answered changes "
            f"({writes['role_tried']} tried)"
        )
    stored = set(
        SyncRun.objects.filter(public_id__in=writes["runs_ok"]).values_list("public_id", flat=True)
    )
    if stored != writes["runs_ok"]:
        lost.append(f"sync runs: {len(writes['runs_ok'] - stored)} answered 201 but not stored")
    # The roll-up a worker computes must count every stored run of the day.
    rollup_usage.apply_async()
    sync = ctx["sync"]
    today = timezone.now().date()
    expected = SyncRun.objects.filter(
        workspace_id=sync.workspace_id, started_at__date=today
    ).count()
    rolled = None
    for _ in range(60):
        close_old_connections()
        row = DailyWorkspaceUsage.objects.filter(workspace_id=sync.workspace_id, day=today).first()
        rolled = row.runs if row else 0
        if rolled == expected:
            break
        time.sleep(1)
    if rolled != expected:
        lost.append(f"roll-up: {rolled} runs rolled up for today, {expected} stored")
    print(
        f"\ninvitations: {sum(got.values())} delivered for {len(emails)} sent; "
        f"audit: {events} role_changed events, {writes['role_ok']} changes answered 200 "
        f"({writes['role_tried']} tried); sync runs: {len(stored)}/{len(writes['runs_ok'])} "
        f"stored; roll-up: {rolled} runs today (stored {expected})"
    )
    print("lost: " + ("; ".join(lost) if lost else "nothing"))
    return 1 if lost else 0


def main() -> int:
    if not BASE_URL.startswith("postgres"):
        sys.exit("make faults needs PostgreSQL: set DATABASE_URL=postgres://…")
    with SmtpSink(port=SMTP_PORT) as sink:
        topology("down")  # its workers must mail this sink: start them with its address
        topology("up")
        try:
            ctx = seed()
            sessions = [signed_in() for _ in range(READERS)]
            threads = [
                threading.Thread(target=reader, args=(s, ctx), daemon=True) for s in sessions
            ]
            threads.append(threading.Thread(target=writer, args=(ctx,), daemon=True))
            threads.append(threading.Thread(target=replica_sampler, daemon=True))
            for t in threads:
                t.start()
            window("baseline", 11)  # the sign-ins (writes) read the primary for 10 s
            kill_app_server()
            stop_replica()
            emails = kill_worker_mid_send(sink, ctx)
            if os.environ.get("RUN_PG_RESTART") == "1":
                restart_primary()
            else:
                print("faults: primary restart skipped (set RUN_PG_RESTART=1)", flush=True)
            window("cool-down", 3)
            stop.set()
            for t in threads:
                t.join(timeout=40)
            connection.close()
            return report(ctx, emails, sink)
        finally:
            stop.set()
            if os.environ.get("FAULTS_KEEP") != "1":
                topology("down")


if __name__ == "__main__":
    sys.exit(main())
