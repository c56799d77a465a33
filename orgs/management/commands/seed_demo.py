"""`manage.py seed_demo`: the Acme demo (four workspaces, four people, one organization).

Idempotent: every object is looked up by its natural key (email, workspace name among Alice's
owned workspaces, org slug, resource name in its workspace) and only created when missing, so
running it twice changes nothing. Writes with invariants (workspaces, links, memberships,
resources) go through the services, so they are audited like any other change.

Historical sync runs are bulk-inserted and deliberately NOT audited one by one: 90 days of
runs would add tens of thousands of `sync.run_*` events that no person caused. Live runs
reported later go through `sync_run_record`, which audits each one.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, time, timedelta

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from audit.services import record
from billing.models import DailyActiveMember
from config.roles import Role
from members.models import OrgMembership, User
from members.services import member_set_workspace_access
from orgs.models import Organization, WorkspaceLinkPeriod
from orgs.services import org_create, workspace_link
from workspaces.models import (
    DataModel,
    Destination,
    Sync,
    SyncRun,
    Warehouse,
    Workspace,
    WorkspaceMembership,
)
from workspaces.services import resource_create, workspace_create

PASSWORD = "signalsmith-demo"
PEOPLE = {
    "alice": ("alice@acme.test", "Alice Owner"),
    "bob": ("bob@acme.test", "Bob Admin"),
    "carol": ("carol@acme.test", "Carol Member"),
    "dave": ("dave@acme.test", "Dave Member"),
}
WORKSPACES = ["Production", "Staging", "EMEA", "US"]
M, A = Role.MEMBER, Role.ADMIN
# Workspace access granted through the org (Alice owns every workspace directly).
ACCESS = {
    "bob": {"Production": A, "Staging": M, "EMEA": M, "US": M},
    "carol": {"Staging": A, "EMEA": M, "US": M},
    "dave": {"Production": M, "Staging": M, "EMEA": M, "US": M},
}
ORG_ROLES = {"bob": A, "carol": M, "dave": M}
ORG_NAME, ORG_SLUG = "Acme Corp", "acme-corp"

# Per workspace: warehouses, models (name, warehouse, sql), destinations, syncs
# (name, model, destination, schedule, daily rows scale, success rate).
RESOURCES = {
    "Production": {
        "warehouses": [
            ("Snowflake Analytics", "snowflake", "acme.snowflakecomputing.com", "ANALYTICS"),
            ("BigQuery Events", "bigquery", "bigquery.googleapis.com", "acme_events"),
        ],
        "models": [
            ("Active customers", "Snowflake Analytics", "select * from customers where active"),
            ("Product qualified leads", "Snowflake Analytics", "select * from pql_scores"),
            ("Churn risk", "BigQuery Events", "select user_id, risk from churn_model"),
        ],
        "destinations": [
            ("Salesforce", "salesforce"),
            ("HubSpot", "hubspot"),
            ("Braze", "braze"),
        ],
        "syncs": [
            ("Customers → Salesforce", "Active customers", "Salesforce", "hourly", 4000, 0.97),
            ("PQLs → HubSpot", "Product qualified leads", "HubSpot", "daily", 25000, 0.96),
            ("Churn risk → Braze", "Churn risk", "Braze", "daily", 60000, 0.94),
        ],
    },
    "Staging": {
        "warehouses": [("Postgres Staging", "postgres", "staging-db.acme.internal", "app")],
        "models": [("Test accounts", "Postgres Staging", "select * from accounts limit 1000")],
        "destinations": [("Webhook sandbox", "webhook")],
        "syncs": [("Accounts → Webhook", "Test accounts", "Webhook sandbox", "daily", 800, 0.93)],
    },
    "EMEA": {
        "warehouses": [("Databricks EU", "databricks", "adb-eu.azuredatabricks.net", "crm")],
        "models": [
            ("EU contacts", "Databricks EU", "select * from contacts where region = 'EU'"),
            ("EU trials", "Databricks EU", "select * from trials where region = 'EU'"),
        ],
        "destinations": [("Marketo EU", "marketo"), ("HubSpot EU", "hubspot")],
        "syncs": [
            ("EU contacts → Marketo", "EU contacts", "Marketo EU", "daily", 12000, 0.98),
            ("EU trials → HubSpot", "EU trials", "HubSpot EU", "daily", 3000, 0.96),
        ],
    },
    "US": {
        "warehouses": [("Redshift US", "redshift", "us.redshift.amazonaws.com", "crm")],
        "models": [
            ("US contacts", "Redshift US", "select * from contacts where region = 'US'"),
            ("US renewals", "Redshift US", "select * from renewals where due < now() + 90"),
        ],
        "destinations": [("Salesforce US", "salesforce"), ("Braze US", "braze")],
        "syncs": [
            ("US contacts → Salesforce", "US contacts", "Salesforce US", "daily", 20000, 0.97),
            ("Renewals → Braze", "US renewals", "Braze US", "weekly", 9000, 0.95),
        ],
    },
}
DAYS = 90
RUNS_PER_DAY = {"hourly": 24, "daily": 1}
ERRORS = [
    "Destination rate limit exceeded (HTTP 429) after 5 retries",
    "Warehouse query timed out after 900s",
    "Authentication to destination failed: token expired",
    "Schema mismatch: column 'email' missing in model output",
]


class Command(BaseCommand):
    help = "Load the Acme demo data (idempotent) and print the demo sign-in."

    def handle(self, *args, **options):
        people = {key: self._person(email, name) for key, (email, name) in PEOPLE.items()}
        alice = people["alice"]
        workspaces = {name: self._workspace(alice, name) for name in WORKSPACES}
        org = self._organization(alice, workspaces)
        for key, role in ORG_ROLES.items():
            self._org_member(alice, org, people[key], role, workspaces)
        runs = 0
        for ws_name, spec in RESOURCES.items():
            syncs = self._resources(alice, workspaces[ws_name], spec)
            runs += self._history(syncs, spec)
        self._backdate_links(org)
        self._activity(org)
        self._rollup()
        self.stdout.write(
            self.style.SUCCESS(
                f"Demo data ready ({runs} sync runs added)."
                if runs
                else "Demo data ready (already loaded)."
            )
        )
        self.stdout.write(
            f"Sign in at {settings.SITE_URL}/signin/ as alice@acme.test with password "
            f"{PASSWORD} (also bob@, carol@, dave@acme.test; demo only)."
        )

    # --- people, workspaces, organization --------------------------------------------------

    def _person(self, email: str, full_name: str) -> User:
        user = User.objects.filter(email=email).first()
        if user is None:
            user = User.objects.create_user(
                email=email,
                password=PASSWORD,
                full_name=full_name,
                email_verified_at=timezone.now(),  # demo people read their (made-up) mail
            )
        return user

    def _workspace(self, alice: User, name: str) -> Workspace:
        owned = WorkspaceMembership.objects.filter(
            user=alice, role=Role.OWNER, workspace__name=name
        ).select_related("workspace")
        existing = owned.order_by("workspace_id").first()
        return existing.workspace if existing else workspace_create(actor=alice, name=name)

    def _organization(self, alice: User, workspaces: dict[str, Workspace]) -> Organization:
        org = Organization.objects.alive().filter(slug=ORG_SLUG).first()
        if org is None:
            org = org_create(
                actor=alice, name=ORG_NAME, slug=ORG_SLUG, workspace=workspaces["Production"]
            )
        for name in WORKSPACES:
            ws = workspaces[name]
            ws.refresh_from_db()
            if ws.organization_id is None:
                workspace_link(actor=alice, org=org, workspace=ws)
            workspaces[name] = Workspace.objects.select_related("organization").get(pk=ws.pk)
        return org

    @transaction.atomic
    def _org_member(self, alice, org, user, role, workspaces) -> None:
        """Org membership (as an accepted invitation would make it), then access via the org."""
        membership = OrgMembership.objects.filter(organization=org, user=user).first()
        if membership is None:
            membership = OrgMembership.objects.create(organization=org, user=user, role=role)
            record(
                actor=user,
                action="member.joined",
                organization=org,
                target=user,
                details={"role": Role(role).label, "membership": membership.public_id},
            )
        key = next(k for k, (email, _) in PEOPLE.items() if email == user.email)
        access = {workspaces[name].pk: ws_role for name, ws_role in ACCESS[key].items()}
        # Unchanged grants are no-ops in the service, so re-running records nothing.
        member_set_workspace_access(actor=alice, org=org, membership=membership, access=access)

    # --- resources and run history ---------------------------------------------------------

    def _resources(self, alice: User, ws: Workspace, spec: dict) -> list[tuple[Sync, tuple]]:
        def ensure(kind, model, name, data):
            obj = model.objects.filter(workspace=ws, name=name).first()
            return obj or resource_create(
                actor=alice, workspace=ws, kind=kind, data={"name": name, **data}
            )

        warehouses = {
            name: ensure(
                "warehouse",
                Warehouse,
                name,
                {"kind": kind, "host": host, "database": db, "username": "signalsmith"},
            )
            for name, kind, host, db in spec["warehouses"]
        }
        models = {
            name: ensure("model", DataModel, name, {"warehouse": warehouses[wh], "sql": sql})
            for name, wh, sql in spec["models"]
        }
        destinations = {
            name: ensure("destination", Destination, name, {"kind": kind})
            for name, kind in spec["destinations"]
        }
        return [
            (
                ensure(
                    "sync",
                    Sync,
                    name,
                    {
                        "model": models[model],
                        "destination": destinations[dest],
                        "schedule": schedule,
                        "enabled": True,
                    },
                ),
                (schedule, scale, success),
            )
            for name, model, dest, schedule, scale, success in spec["syncs"]
        ]

    def _history(self, syncs: list[tuple[Sync, tuple]], spec: dict) -> int:
        """90 days of runs for syncs that have none yet (bulk insert, not audited: see above)."""
        now = timezone.now().replace(minute=0, second=0, microsecond=0)
        added = 0
        for sync, (schedule, scale, success) in syncs:
            if SyncRun.objects.filter(sync=sync).exists():
                continue
            rng = random.Random(f"{sync.workspace.name}/{sync.name}")  # same history every time
            runs = []
            for day in range(DAYS, 0, -1):
                per_day = RUNS_PER_DAY.get(schedule, 1)
                if schedule == "weekly" and day % 7:
                    continue
                for slot in range(per_day):
                    started = now - timedelta(days=day, hours=-slot if per_day > 1 else -6)
                    started += timedelta(minutes=rng.randint(0, 20))
                    ok = rng.random() < success
                    rows = int(scale / per_day * rng.uniform(0.6, 1.4)) if ok else 0
                    runs.append(
                        SyncRun(
                            sync=sync,
                            workspace_id=sync.workspace_id,
                            started_at=started,
                            finished_at=started + timedelta(seconds=rng.randint(20, 900)),
                            status=SyncRun.Status.SUCCEEDED if ok else SyncRun.Status.FAILED,
                            rows_processed=rows,
                            bytes_processed=rows * rng.randint(180, 900),
                            error="" if ok else rng.choice(ERRORS),
                        )
                    )
            SyncRun.objects.bulk_create(runs, batch_size=1000)
            added += len(runs)
        return added

    def _backdate_links(self, org: Organization) -> None:
        """Demo only: the workspaces were linked before their run history began, so the usage
        dashboard (which counts a workspace only on its linked days) shows the 90 days."""
        since = timezone.now() - timedelta(days=DAYS + 1)
        WorkspaceLinkPeriod.objects.filter(
            organization=org, unlinked_at__isnull=True, linked_at__gt=since
        ).update(linked_at=since)
        Workspace.objects.filter(organization=org, linked_at__gt=since).update(linked_at=since)

    def _activity(self, org: Organization) -> None:
        """Demo only: a plausible month of "active in workspace" days for the demo people."""
        today = timezone.now().date()
        rng = random.Random("acme-activity")
        rows = [
            DailyActiveMember(
                workspace_id=m.workspace_id, user_id=m.user_id, day=today - timedelta(d)
            )
            for m in WorkspaceMembership.objects.filter(workspace__organization=org).order_by("pk")
            for d in range(30)
            if rng.random() < 0.4
        ]
        DailyActiveMember.objects.bulk_create(rows, ignore_conflicts=True)
        # "Last active" in the directory agrees with those days: each person's latest one
        # (never later than now, never earlier than what real activity already recorded).
        now = timezone.now()
        latest: dict[int, datetime] = {}
        for row in rows:
            moment = min(now, datetime.combine(row.day, time(12), tzinfo=UTC))
            latest[row.user_id] = max(latest.get(row.user_id, moment), moment)
        for user in User.objects.filter(pk__in=latest):
            if user.last_active_at is None or user.last_active_at < latest[user.pk]:
                User.objects.filter(pk=user.pk).update(last_active_at=latest[user.pk])

    def _rollup(self) -> None:
        """Bring the usage roll-ups up to date if the billing app provides the task."""
        try:
            from billing.tasks import rollup_usage
        except ImportError:
            return
        rollup_usage.apply()
