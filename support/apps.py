from django.apps import AppConfig
from django.db.models.signals import post_migrate


class SupportConfig(AppConfig):
    name = "support"
    verbose_name = "Support console"

    def ready(self):
        from support.roles import ensure_support_roles

        # After every migrate (and every test-database flush): the tier groups exist and carry
        # exactly the permissions of support/roles.py.
        post_migrate.connect(ensure_support_roles, sender=self, dispatch_uid="support-roles")
