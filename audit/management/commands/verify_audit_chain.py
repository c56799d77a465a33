"""manage.py verify_audit_chain [--org SLUG]: check the hash chains, name the first broken event."""

from django.core.management.base import BaseCommand, CommandError

from audit.chain import chain_keys, verify_and_record
from orgs.models import Organization


class Command(BaseCommand):
    help = "Verify the audit hash chain of one organization (--org) or of every chain."

    def add_arguments(self, parser):
        parser.add_argument("--org", metavar="SLUG", help="only this organization's chain")

    def handle(self, *args, org=None, **options):
        if org:
            # A deleted org keeps its slug on the row; prefer the live one.
            found = Organization.objects.filter(slug=org).order_by("deleted_at").first()
            if found is None:
                raise CommandError(f"No organization with slug {org!r}.")
            keys, names = [found.pk], {found.pk: found.slug}
        else:
            keys = chain_keys()
            names = dict(Organization.objects.filter(pk__in=keys).values_list("pk", "slug"))
        broken = []
        for key in keys:
            result = verify_and_record(key)
            name = names.get(key, "events outside any organization")
            if result.ok:
                self.stdout.write(
                    f"{name}: {result.count} events verified"
                    + (f", up to {result.last_event}" if result.last_event else "")
                )
            else:
                where = result.first_bad_event or "the end of the chain"
                self.stderr.write(
                    f"{name}: BROKEN at {where}: {result.problem} "
                    f"({result.count} events verified before it)"
                )
                broken.append(f"{name} at {where}")
        if broken:
            raise CommandError("Audit chain broken: " + "; ".join(broken))
