"""manage.py create_scim_token ORG_SLUG [--name NAME]: prints a new SCIM token once."""

from django.core.management.base import BaseCommand, CommandError

from config.errors import DomainError
from orgs.models import Organization
from orgs.scim.services import scim_token_create


class Command(BaseCommand):
    help = "Create a SCIM bearer token for an organization; prints it once (stored hashed)."

    def add_arguments(self, parser):
        parser.add_argument("org_slug")
        parser.add_argument("--name", default="Identity provider")

    def handle(self, *args, org_slug, name, **options):
        org = Organization.objects.alive().filter(slug=org_slug).first()
        if org is None:
            raise CommandError(f"No organization with the slug {org_slug!r}.")
        try:
            _, raw = scim_token_create(actor=None, org=org, name=name)
        except DomainError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(raw)
