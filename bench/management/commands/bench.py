"""`manage.py bench [--scale tiny|small|large|xl] [--json FILE]`: the app at scale, measured.

Runs on PostgreSQL only, in a database of its own (`<DATABASE_URL's name>_bench` on the same
server, dropped afterwards unless --keep). See bench/ for what is generated and how each
figure is measured.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from audit.models import AuditChainHead
from bench import database, generate, pages, report, writes
from bench.generate import CONTROL, SCALES, OrgData
from bench.infra import redis_available
from config.roles import Role
from members.models import OrgMembership, User
from orgs.models import Organization
from workspaces.models import SyncRun, Workspace, WorkspaceMembership

SECTIONS = ("pages", "rollup", "audit", "invite")


class Command(BaseCommand):
    help = "Generate an organization at scale in a separate PostgreSQL database and measure it."

    def add_arguments(self, parser):
        parser.add_argument("--scale", choices=sorted(SCALES), default="small")
        parser.add_argument("--json", dest="json_path", help="Also write the results here.")
        parser.add_argument("--runs", type=int, help="Runs per measurement (default 20).")
        parser.add_argument(
            "--only", action="append", choices=SECTIONS, help="Measure only these (repeatable)."
        )
        parser.add_argument(
            "--keep", action="store_true", help="Keep the bench database (for `make load`)."
        )
        parser.add_argument(
            "--reuse",
            action="store_true",
            help="Reuse a kept bench database generated at the same scale instead of regenerating.",
        )
        parser.add_argument(
            "--generate-only",
            action="store_true",
            help="Generate (implies --keep), measure nothing.",
        )

    def handle(
        self,
        *args,
        scale,
        json_path=None,
        runs=None,
        only=None,
        keep=False,
        reuse=False,
        generate_only=False,
        **options,
    ):
        try:
            base = database.require_postgres()
        except database.BenchRefused as exc:
            raise CommandError(str(exc)) from None
        if settings.DEBUG:
            # DEBUG keeps every query in memory and renders debug templates: not what we measure.
            settings.DEBUG = False
        spec = SCALES[scale]
        runs = runs or spec.runs
        sections = set(only or SECTIONS)
        keep = keep or generate_only
        base_name = base["NAME"]
        name = database.bench_name(base_name)
        if name == base_name:
            raise CommandError("Refusing to run on a database that is already a bench database.")
        database_url = database.database_url(base, name)
        log = self.stdout.write

        started = time.perf_counter()
        if reuse and database.existing_scale(base, name) == scale:
            log(f"bench: reusing {name} (scale {scale})")
            database.switch_to(name)
            database.migrate()
            big, control = _load("bench"), _load("control")
            gen_seconds = None
        else:
            log(f"bench: creating {name} on the same server (scale {scale})")
            database.recreate(base, name)
            database.switch_to(name)
            database.migrate()
            t = time.perf_counter()
            owner = generate.make_owner()
            big = generate.generate_org(scale=spec, owner=owner, slug="bench", seed=1, log=log)
            control = generate.generate_org(
                scale=CONTROL, owner=owner, slug="control", seed=2, log=log
            )
            log("  VACUUM ANALYZE")
            generate.analyze()
            gen_seconds = round(time.perf_counter() - t, 1)
            database.mark_generated(base, name, scale)
            log(f"bench: generated in {gen_seconds} s")

        result = {
            "scale": scale,
            "runs": runs,
            "database": name,
            "machine": report.machine(),
            "generated": _counts(big) | {"seconds": gen_seconds},
            "pages": [],
        }
        try:
            if generate_only:
                log(f"bench: kept {name}; DATABASE_URL={database_url}")
                return
            if "rollup" in sections or "pages" in sections:
                log("bench: rollup_usage --full vs its SQL statement")
                result["rollup"] = writes.measure_rollup(runs if "rollup" in sections else 0)
                # Repeated full roll-ups leave dead rows; a maintained database (autovacuum)
                # would not keep them, and this server may run with autovacuum off.
                log("  VACUUM ANALYZE")
                generate.analyze()
            if "pages" in sections:
                client = pages.signed_in_client(big.owner)
                staff = pages.staff_client()
                for case in pages.all_cases(big, control):
                    res = pages.measure_case(staff if case.staff else client, case, runs, scale)
                    result["pages"].append(res.as_dict())
                    log(
                        f"  {case.group}: {case.name}: {res.page_ms} ms, {res.queries} queries, "
                        f"SQL/floor {res.sql_vs_floor}"
                        + (f", index walk {res.plan['index_walk']}" if res.plan else "")
                    )
            if "audit" in sections:
                log("bench: audit record() throughput, then chain verification")
                result["audit_record"] = writes.measure_audit_record(
                    big, batch=spec.record_batch, rounds=runs
                )
            if "invite" in sections:
                broker = writes.broker_for_bench()
                if redis_available(broker):
                    log(f"bench: bulk invite of {spec.invite_batch} through 2 Celery workers")
                    result["bulk_invite"] = writes.measure_bulk_invite(
                        big,
                        count=spec.invite_batch,
                        broker_url=broker,
                        database_url=database_url,
                        log_dir=Path(settings.BASE_DIR) / "var" / "bench",
                    )
                else:
                    result["bulk_invite"] = {"skipped": f"no Redis answering at {broker}"}
            result["targets"] = report.targets(result)
            result["summary"] = _summary(result)
            result["seconds"] = round(time.perf_counter() - started, 1)
            self.stdout.write("\n" + report.table(result))
            if json_path:
                Path(json_path).write_text(json.dumps(result, indent=2, default=str))
                log(f"\nbench: results written to {json_path}")
        finally:
            if not keep:
                database.drop(base, name)


def _load(slug: str) -> OrgData:
    org = Organization.objects.alive().get(slug=slug)
    owner = User.objects.get(email=generate.OWNER_EMAIL)
    admin_ids = OrgMembership.objects.filter(organization=org, role=Role.ADMIN).values("user")
    head = AuditChainHead.objects.filter(chain_key=org.pk).first()
    return OrgData(
        org=org,
        owner=owner,
        workspaces=list(Workspace.objects.filter(organization=org).order_by("pk")),
        admins=list(User.objects.filter(pk__in=admin_ids).order_by("pk")),
        events=head.last_seq if head else 0,
    )


def _counts(data: OrgData) -> dict:
    org = data.org
    with connection.cursor() as cur:
        cur.execute(
            "SELECT count(*) FROM workspaces_syncrun r JOIN workspaces_workspace w"
            " ON w.id = r.workspace_id WHERE w.organization_id = %s",
            [org.pk],
        )
        runs = cur.fetchone()[0]
    return {
        "workspaces": len(data.workspaces),
        "members": OrgMembership.objects.filter(organization=org).count(),
        "grants": WorkspaceMembership.objects.filter(workspace__organization=org).count(),
        "audit_events": data.events,
        "sync_runs": runs,
        "all_sync_runs": SyncRun.objects.count(),
    }


def _summary(result: dict) -> dict:
    ps = result["pages"]
    return {
        "pages": len(ps),
        "pages_within_time": sum(p["meets_page_target"] for p in ps),
        "pages_meeting_issue_15_targets": sum(p["meets_target"] for p in ps),
        "directory_index_walks": all(p["plan"]["index_walk"] for p in ps if p.get("plan")),
        "pages_within_sql_ratio": sum(p["meets_sql_target"] for p in ps),
        "query_counts_independent": all(p["queries_independent"] for p in ps),
        "all_pages_ok": all(p["status"] == 200 for p in ps),
    }
