"""Periodic audit work (scheduled in settings.CELERY_BEAT_SCHEDULE)."""

import datetime as dt

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from audit.chain import chain_keys, verify_and_record
from audit.retention import ensure_partitions, prune_all


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


@shared_task
def ensure_audit_partitions() -> int:
    """Daily: the events table's monthly partitions exist through two months from now
    (PostgreSQL; the DEFAULT partition catches anything beyond). Idempotent."""
    return ensure_partitions(timezone.now() + dt.timedelta(days=62))


@shared_task(ignore_result=True)
def deliver_audit_stream(destination_id: int) -> int:
    """Send one destination's due events in order (audit/streaming.py); idempotent. A worker
    that finds it busy or backing off does nothing: the holder or the beat sweep goes on."""
    from audit.streaming import stream_deliver

    delivered = stream_deliver(destination_pk=destination_id)
    if delivered >= 200:  # more may be waiting: continue in a fresh task
        deliver_audit_stream.delay(destination_id)
    return delivered


@shared_task(ignore_result=True)
def deliver_audit_streams() -> int:
    """Beat sweep (every 30 s): start delivery for each destination whose backoff has passed."""
    from audit.streaming import due_destinations

    due = due_destinations()
    for pk in due:
        deliver_audit_stream.delay(pk)
    return len(due)


@shared_task(ignore_result=True, autoretry_for=(OSError,), retry_backoff=True, max_retries=8)
def email_stream_disabled(destination_id: int) -> int:
    """Email the org's owners that a failing destination was disabled."""
    from audit.streaming import email_owners_disabled

    return email_owners_disabled(destination_id)


@shared_task(ignore_result=True)
def prune_audit_stream_log() -> int:
    """Nightly: drop delivered outbox rows older than AUDIT_STREAM_LOG_DAYS."""
    from audit.streaming import stream_log_prune

    return stream_log_prune(keep_days=settings.AUDIT_STREAM_LOG_DAYS)
