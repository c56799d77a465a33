from django.apps import AppConfig


class MembersConfig(AppConfig):
    name = "members"

    def ready(self):
        from members import sessions  # noqa: F401  (records sessions at sign-in and sign-out)
