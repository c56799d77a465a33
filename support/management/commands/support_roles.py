"""manage.py support_roles: create or update the support tier groups (also done after migrate)."""

from django.core.management.base import BaseCommand

from support.roles import ensure_support_roles


class Command(BaseCommand):
    help = (
        "Create or update the 'Support tier 1' and 'Support tier 2' groups and their permissions."
    )

    def handle(self, *args, **options):
        for name, count in ensure_support_roles().items():
            self.stdout.write(f"{name}: {count} permissions")
