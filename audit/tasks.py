"""Periodic audit work (scheduled in settings.CELERY_BEAT_SCHEDULE)."""

from celery import shared_task
from django.conf import settings

from audit.chain import chain_keys, verify_and_record
from audit.retention import prune_all


@shared_task
def verify_audit_chains() -> dict:
    """Verify every chain and record the outcome for the audit page; idempotent."""
    results = [verify_and_record(key) for key in chain_keys()]
    return {
        "chains": len(results),
        "events": sum(r.count for r in results),
        "broken": [r.first_bad_event or f"chain {r.chain_key}" for r in results if not r.ok],
    }


@shared_task(autoretry_for=(OSError,), retry_backoff=True, max_retries=5)
def prune_audit_events() -> int:
    """Archive and delete events past AUDIT_RETENTION_DAYS; a no-op when it is 0 (forever)."""
    pruned = prune_all(retention_days=settings.AUDIT_RETENTION_DAYS)
    return sum(e.details["count"] for e in pruned)
