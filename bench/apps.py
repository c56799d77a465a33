from django.apps import AppConfig


class BenchConfig(AppConfig):
    """The benchmark (`manage.py bench`) and the loopback infrastructure the fault tests share."""

    name = "bench"
    default_auto_field = "django.db.models.BigAutoField"
