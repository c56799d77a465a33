from django.apps import AppConfig


class ScimConfig(AppConfig):
    name = "orgs.scim"
    label = "scim"
    verbose_name = "SCIM provisioning"

    def ready(self):
        # scim2-models checks emails with email-validator, which refuses RFC 2606's `.test`
        # names by default; the demo data and the tests use them (acme.test). Its documented
        # knob is this list. Our own address checks (Django's validate_email) accept them too.
        import email_validator

        if "test" in email_validator.SPECIAL_USE_DOMAIN_NAMES:
            email_validator.SPECIAL_USE_DOMAIN_NAMES.remove("test")
