"""Write-side measurements: the full usage roll-up, audit appends, and a bulk invite delivered
by real Celery workers to a loopback SMTP sink."""

from __future__ import annotations

import io
import os
import statistics
import threading
import time
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.db import connection, connections, transaction
from django.test import override_settings
from django.urls import reverse

from audit.chain import verify_chain
from audit.services import record
from bench.generate import OrgData
from bench.infra import (
    CeleryWorker,
    SmtpSink,
    celery_publishing_to,
    purge_queue,
    worker_env,
)
from bench.pages import signed_in_client
from bench.timing import sql_log
from billing.rollups import FULL_ROLLUP_SQL
from config.roles import Role
from members.models import Invitation

ROLLUP_RATIO_TARGET = 1.5
AUDIT_RATE_TARGET = 1500  # events/s, one writer, one event per transaction


def measure_rollup(runs: int, warmup: int = 1) -> dict:
    """`rollup_usage --full` (the command, end to end) against its one INSERT … SELECT."""
    command, statement = [], []
    for i in range(runs + warmup):
        start = time.perf_counter()
        call_command("rollup_usage", "--full", stdout=io.StringIO())
        elapsed = time.perf_counter() - start
        with transaction.atomic(), connection.cursor() as cur:
            cur.execute("DELETE FROM billing_dailyworkspaceusage")
            with sql_log() as log:
                cur.execute(FULL_ROLLUP_SQL)
        if i >= warmup:
            command.append(elapsed)
            statement.append(log.seconds)
    if not command:  # --only pages: one pass to fill the roll-ups, nothing measured
        return {"runs": 0}
    cmd, stmt = statistics.median(command), statistics.median(statement)
    return {
        "runs": runs,
        "command_ms": round(cmd * 1000, 1),
        "statement_ms": round(stmt * 1000, 1),
        "ratio": round(cmd / stmt, 2),
        "meets_target": cmd / stmt <= ROLLUP_RATIO_TARGET,
    }


def _append(org, actor, n: int) -> None:
    """n audited changes, each its own transaction, as n separate requests would be."""
    for i in range(n):
        with transaction.atomic():
            record(
                actor=actor,
                action="org.updated",
                organization=org,
                target=org,
                details={"changes": {"bench": {"from": i, "to": i + 1}}},
            )


def _rate_single(org, actor, batch: int, rounds: int) -> float:
    rates = []
    for i in range(rounds + 1):
        start = time.perf_counter()
        _append(org, actor, batch)
        if i:
            rates.append(batch / (time.perf_counter() - start))
    return statistics.median(rates)


def _rate_one_transaction(org, actor, batch: int, rounds: int) -> float:
    """record() alone: `batch` events in one transaction (one commit), e.g. a bulk invite."""
    rates = []
    for i in range(rounds + 1):
        start = time.perf_counter()
        with transaction.atomic():
            for n in range(batch):
                record(
                    actor=actor,
                    action="org.updated",
                    organization=org,
                    target=org,
                    details={"changes": {"bench": {"from": n, "to": n + 1}}},
                )
        if i:
            rates.append(batch / (time.perf_counter() - start))
    return statistics.median(rates)


def _commit_ms(rounds: int) -> float:
    """The floor under one-event-per-transaction: a one-row write and its commit (fsync)."""
    times = []
    with connection.cursor() as cur:
        # A logged table in the bench database: its commit waits for the WAL flush, as record()'s does.
        cur.execute("CREATE TABLE IF NOT EXISTS bench_commit (v int)")
    for _ in range(rounds):
        start = time.perf_counter()
        with transaction.atomic(), connection.cursor() as cur:
            cur.execute("INSERT INTO bench_commit VALUES (1)")
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def _rate_concurrent(org, actor, writers: int, batch: int, rounds: int) -> float:
    """`writers` threads, each with its own database connection, appending to one chain."""
    start_line = threading.Barrier(writers + 1, timeout=300)
    finish_line = threading.Barrier(writers + 1, timeout=300)
    errors: list[BaseException] = []

    def writer():
        try:
            for _ in range(rounds + 1):
                start_line.wait()
                try:
                    _append(org, actor, batch)
                finally:
                    finish_line.wait()
        except BaseException as exc:  # reported below; a broken barrier stops the others
            errors.append(exc)
            start_line.abort()
            finish_line.abort()
        finally:
            connections.close_all()

    threads = [threading.Thread(target=writer, daemon=True) for _ in range(writers)]
    for t in threads:
        t.start()
    rates = []
    try:
        for i in range(rounds + 1):
            start_line.wait()
            start = time.perf_counter()
            finish_line.wait()
            if i:
                rates.append(writers * batch / (time.perf_counter() - start))
    except threading.BrokenBarrierError:
        pass
    for t in threads:
        t.join(timeout=60)
    if errors:
        raise RuntimeError(f"a concurrent audit writer failed: {errors[0]!r}") from errors[0]
    return statistics.median(rates)


def measure_audit_record(data: OrgData, *, batch: int, rounds: int) -> dict:
    org, actor = data.org, data.owner
    single = _rate_single(org, actor, batch, rounds)
    concurrent = _rate_concurrent(org, actor, 8, max(1, batch // 8), rounds)
    one_transaction = _rate_one_transaction(org, actor, batch, rounds)
    commit_ms = _commit_ms(rounds * 5)
    start = time.perf_counter()
    result = verify_chain(org.pk)
    verify_s = time.perf_counter() - start
    return {
        "rounds": rounds,
        "events_per_round_single": batch,
        "events_per_round_concurrent": 8 * max(1, batch // 8),
        "single_writer_events_per_s": round(single),
        "eight_writers_events_per_s": round(concurrent),
        "meets_target": single >= AUDIT_RATE_TARGET,
        "one_transaction_events_per_s": round(one_transaction),
        "commit_ms": round(commit_ms, 2),
        # The same one-row-per-transaction loop with a bare INSERT: the ceiling for record().
        "bare_write_events_per_s": round(1000 / commit_ms),
        "chain_ok": result.ok,
        "chain_events_verified": result.count,
        "chain_problem": result.problem,
        "chain_verify_s": round(verify_s, 2),
    }


def measure_bulk_invite(
    data: OrgData, *, count: int, broker_url: str, database_url: str, log_dir: Path
) -> dict:
    """Invite `count` new addresses through the invite page (100 per request, the form's cap),
    then wait until two `celery worker -c 1` processes have mailed every one of them."""
    stamp = f"{os.getpid()}{int(time.time()) % 100000}"
    emails = [f"invitee{i}.{stamp}@bulk.bench.test" for i in range(count)]
    queue = f"bench-{stamp}"
    ws = data.workspaces[0]
    url = reverse("org_members:invite", args=[data.org.slug])
    client = signed_in_client(data.owner)
    request_times = []
    with SmtpSink() as sink, celery_publishing_to(broker_url, queue):
        env = worker_env(database_url=database_url, redis_url=broker_url, email_url=sink.url)
        workers = [
            CeleryWorker(f"bench{i}-{stamp}", queue=queue, env=env, log_dir=log_dir)
            for i in range(2)
        ]
        try:
            for w in workers:
                w.start()
            limits = {"INVITES_PER_ORG_PER_DAY": 10**7, "INVITES_PER_INVITER_PER_HOUR": 10**7}
            with override_settings(**limits):
                start = time.perf_counter()
                for i in range(0, count, 100):
                    chunk = emails[i : i + 100]
                    t = time.perf_counter()
                    response = client.post(
                        url,
                        {
                            "emails": "\n".join(chunk),
                            "org_role": int(Role.MEMBER),
                            f"ws_{ws.public_id}": int(Role.MEMBER),
                        },
                    )
                    request_times.append(time.perf_counter() - t)
                    if response.status_code != 302:
                        raise RuntimeError(
                            f"bulk invite answered {response.status_code}: "
                            f"{response.content[:500]!r}"
                        )
                requests_done = time.perf_counter() - start
                all_sent = sink.wait_for(count, timeout=max(120, count * 0.5))
                delivered = time.perf_counter() - start
        finally:
            for w in workers:
                w.stop()
            purge_queue(broker_url, queue)
    received = sink.recipients()
    sent_rows = Invitation.objects.filter(email__in=emails, delivery_state="sent").count()
    return {
        "addresses": count,
        "requests": len(request_times),
        "request_ms_median": round(statistics.median(request_times) * 1000, 1),
        "requests_total_s": round(requests_done, 2),
        "all_delivered_s": round(delivered, 2) if all_sent else None,
        "emails_received": len(received),
        "distinct_recipients": len(set(received) & set(emails)),
        "invitations_marked_sent": sent_rows,
        "exactly_once": all_sent and len(received) == count == len(set(received)),
        "workers": 2,
        "worker_concurrency": 1,
    }


def broker_for_bench() -> str:
    return os.environ.get("BENCH_REDIS_URL") or settings.REDIS_URL or "redis://127.0.0.1:6379/0"
