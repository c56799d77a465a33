"""Periodic billing work: keep the daily usage roll-ups current (beat: `rollup-usage` in settings)."""

from celery import shared_task
from django.db import InterfaceError, OperationalError

from billing import rollups


@shared_task(
    name="billing.tasks.rollup_usage",
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=True,
    retry_backoff_max=600,
    retry_jitter=True,
    max_retries=5,
)
def rollup_usage(full: bool = False) -> dict:
    """Idempotent: each pass recomputes whole days, so a retry or a duplicate changes nothing."""
    return rollups.rollup_usage(full=full)
