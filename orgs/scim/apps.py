from django.apps import AppConfig


class ScimConfig(AppConfig):
    name = "orgs.scim"
    label = "scim"
    verbose_name = "SCIM provisioning"
