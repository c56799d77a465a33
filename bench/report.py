"""The bench's results as a plain-text table (and the machine they were measured on)."""

from __future__ import annotations

import contextlib
import os
import platform

from django.db import connection

from bench.pages import PAGE_TARGET_MS, SQL_RATIO_TARGET, target_ms
from bench.writes import AUDIT_RATE_TARGET

# Issue 15's targets, as the bench checks them (load: tests/load/run.py).
LOAD_P99_TARGET_MS = 300


def targets(result: dict) -> list[dict]:
    """Every figure against its target, one row per page group and write measurement, each with
    `meets_target` (the worst page of a group decides the group)."""
    scale = result["scale"]
    rows = []
    groups: dict[str, list[dict]] = {}
    for p in result["pages"]:
        groups.setdefault(p["group"], []).append(p)
    for group, ps in groups.items():
        worst = max(p["page_ms"] for p in ps)
        rows.append(
            {
                "figure": f"{group} ({len(ps)} pages), worst median page ms",
                "value": worst,
                "range": [min(p["page_ms"] for p in ps), worst],
                "target": f"≤ {target_ms(group, scale):g} ms",
                "meets_target": all(p["meets_target"] for p in ps),
            }
        )
    a = result.get("audit_record")
    if a:
        rows.append(
            {
                "figure": "audit record(), one writer, events/s",
                "value": a["single_writer_events_per_s"],
                "target": f"≥ {AUDIT_RATE_TARGET}",
                "meets_target": a["single_writer_events_per_s"] >= AUDIT_RATE_TARGET,
            }
        )
    r = result.get("rollup")
    if r and r.get("runs"):
        rows.append(
            {
                "figure": "rollup_usage --full vs its SQL statement",
                "value": r["ratio"],
                "target": "≤ 1.5×",
                "meets_target": r["meets_target"],
            }
        )
    return rows


def machine() -> dict:
    cpu = ""
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(
                (line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), ""
            )
    except OSError:
        pass
    mem_gb = None
    with contextlib.suppress(ValueError, OSError, AttributeError):
        mem_gb = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    with connection.cursor() as cur:
        cur.execute("SHOW server_version")
        pg = cur.fetchone()[0]
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": mem_gb,
        "os": platform.platform(),
        "python": platform.python_version(),
        "postgresql": pg,
    }


def _mark(ok: bool) -> str:
    return "" if ok else " ✗"


def table(result: dict) -> str:
    lines = []
    m = result["machine"]
    g = result["generated"]
    lines.append(
        f"bench --scale {result['scale']}: {g['workspaces']} workspaces, {g['members']} members, "
        f"{g['grants']} workspace grants, {g['audit_events']} audit events, {g['sync_runs']} sync runs"
    )
    lines.append(
        f"machine: {m['cpu']} · {m['cores']} cores · {m['memory_gb']} GB · PostgreSQL {m['postgresql']}"
    )
    lines.append(f"each figure is the median of {result['runs']} runs in one process\n")
    header = f"{'page':<40} {'queries':>7} {'ctrl':>5} {'page ms':>8} {'SQL ms':>8} {'floor ms':>9} {'SQL/floor':>9} {'target':>7}"
    lines.append(header)
    lines.append("-" * len(header))
    for p in result["pages"]:
        lines.append(
            f"{(p['group'] + ': ' + p['name'])[:40]:<40} {p['queries']:>7}"
            f"{'' if p['queries_independent'] else '≠':>1}{p['control_queries']:>5} "
            f"{p['page_ms']:>8.1f}{_mark(p['meets_page_target']):<2}"
            f"{p['sql_ms']:>7.1f} {p['floor_ms']:>9.2f} {p['sql_vs_floor']:>8.2f}{_mark(p['meets_sql_target'])}"
            f"{p['target_ms']:>6g}{_mark(p['meets_target'])}"
        )
    lines.append("")
    r = result.get("rollup")
    if r and r.get("runs"):
        lines.append(
            f"rollup_usage --full: {r['command_ms']:.0f} ms vs its SQL statement "
            f"{r['statement_ms']:.0f} ms → {r['ratio']:.2f}×{_mark(r['meets_target'])}"
        )
    a = result.get("audit_record")
    if a:
        lines.append(
            f"audit record(): {a['single_writer_events_per_s']} events/s one writer, "
            f"{a['eight_writers_events_per_s']} events/s eight writers"
            f"{_mark(a['meets_target'])}, {a['one_transaction_events_per_s']} events/s in one "
            f"transaction (a bare write + commit takes {a['commit_ms']} ms here, i.e. "
            f"{a.get('bare_write_events_per_s', '?')}/s); "
            f"chain verified: {a['chain_ok']} "
            f"({a['chain_events_verified']} events in {a['chain_verify_s']} s)"
        )
    b = result.get("bulk_invite")
    if b and not b.get("skipped"):
        lines.append(
            f"bulk invite of {b['addresses']}: {b['requests']} requests of ≤100, median "
            f"{b['request_ms_median']:.0f} ms, all requests {b['requests_total_s']} s; every email "
            f"delivered by 2 workers after {b['all_delivered_s']} s "
            f"(received {b['emails_received']}, exactly once: {b['exactly_once']})"
        )
    elif b:
        lines.append(f"bulk invite: skipped ({b['skipped']})")
    lines.append("\nissue 15 targets:")
    for t in result.get("targets", []):
        lines.append(
            f"  {t['figure']}: {t['value']} (target {t['target']})"
            f"{'' if t['meets_target'] else ' ✗ missed'}"
        )
    s = result["summary"]
    lines.append(
        f"\ntargets: page ≤ {PAGE_TARGET_MS} ms: {s['pages_within_time']}/{s['pages']}; "
        f"SQL ≤ {SQL_RATIO_TARGET}× floor: {s['pages_within_sql_ratio']}/{s['pages']}; "
        f"query counts independent of size: {s['query_counts_independent']}"
    )
    return "\n".join(lines)
