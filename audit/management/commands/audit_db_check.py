"""manage.py audit_db_check: can the role this process connects as alter the audit log?

Run it with the application's runtime DATABASE_URL (e.g. in a deploy pipeline): exit code 1
and the reasons when that role could UPDATE/DELETE/TRUNCATE audit rows, disable their
triggers or become the owner role (audit/dbsecurity.py).
"""

from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from audit.dbsecurity import OWNER_ROLE, problems_for_role


class Command(BaseCommand):
    help = "Check that this database role cannot alter the audit log (PostgreSQL)."

    def handle(self, *args, **options):
        if connection.vendor != "postgresql":
            raise CommandError("Only PostgreSQL enforces the audit log's protections.")
        with connection.cursor() as cur:
            cur.execute("SELECT current_user")
            role = cur.fetchone()[0]
            problems = problems_for_role(cur, role)
            cur.execute(
                "SELECT pg_get_userbyid(relowner) FROM pg_class WHERE oid = 'audit_auditevent'::regclass"
            )
            owner = cur.fetchone()[0]
        if owner != OWNER_ROLE:
            problems.append(f"audit_auditevent belongs to {owner}, not {OWNER_ROLE}")
        if problems:
            raise CommandError(f"Role {role} could alter the audit log: " + "; ".join(problems))
        self.stdout.write(f"Role {role} cannot alter the audit log (owner: {OWNER_ROLE}).")
