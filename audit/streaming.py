"""Audit streaming: every audit event of an org delivered to the customer's webhooks (SIEM).

record() writes one outbox row (StreamDelivery) per destination of the org in the event's own
INSERT statement (audit/services.py), so a row exists exactly when the event commits. Delivery
(`stream_deliver`, run by Celery) sends a destination's pending rows oldest first, one at a
time under the destination's row lock, so deliveries to one destination never overtake each
other; a failure stops the queue (head-of-line) until the backoff has passed. At least once:
a worker that dies between the receiver's 2xx and our commit re-sends that event; receivers
deduplicate on `webhook-id` (the event's `evt_…` id, the same on every retry and replay).

Requests are signed per Standard Webhooks with the `standardwebhooks` package
(`webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<base64 HMAC-SHA256>`).
"""

from __future__ import annotations

import base64
import datetime as dt
import http.client
import ipaddress
import json
import logging
import secrets
from urllib.parse import urlsplit

from django.conf import settings
from django.core.mail import send_mail
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.utils import timezone
from standardwebhooks import Webhook

from audit import webhook_http
from audit.models import AuditEvent, StreamDelivery, StreamDestination
from audit.services import record
from config.errors import Conflict, NotFound, ValidationFailed
from config.roles import Role
from orgs.models import Organization
from orgs.permissions import OrgCapability, require_org_capability
from orgs.services import lock_org

log = logging.getLogger(__name__)

MAX_DESTINATIONS = 5
USER_AGENT = "SignalSmith-Audit-Stream/1"


# ---------------------------------------------------------------- destinations (services)


def new_secret() -> str:
    """A Standard Webhooks secret: `whsec_` + base64 of 32 random bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def clean_destination(*, name: str, url: str) -> tuple[str, str]:
    """(name, url) or ValidationFailed naming each bad field."""
    problems = {}
    name = (name or "").strip()
    url = (url or "").strip()
    if not name:
        problems["name"] = "Give the destination a name."
    elif len(name) > 100:
        problems["name"] = "At most 100 characters."
    problem = url_problem(url)
    if problem:
        problems["url"] = problem
    if problems:
        raise ValidationFailed("Please correct the destination.", fields=problems)
    return name, url


def url_problem(url: str) -> str | None:
    """Why `url` cannot receive audit events, or None. https:// only; plain http:// only to a
    loopback address and only when AUDIT_STREAM_ALLOW_HTTP is on (development, tests)."""
    if not url:
        return "Enter the receiver's URL."
    if len(url) > 500:
        return "At most 500 characters."
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "Enter a valid URL."
    del port
    if parts.username or parts.password:
        return "Put no credentials in the URL; verify our signature instead."
    if not parts.hostname or any(c.isspace() for c in url):
        return "Enter a valid URL."
    if _is_ip(parts.hostname) and webhook_http.address_problem(parts.hostname):
        return "Use a public address: private, loopback and reserved ones are refused."
    if parts.scheme == "https":
        return None
    if parts.scheme == "http":
        if settings.AUDIT_STREAM_ALLOW_HTTP and _is_loopback(parts.hostname):
            return None
        return "The URL must start with https:// (audit events are sensitive)."
    return "The URL must start with https://."


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@transaction.atomic
def stream_destination_add(
    *, actor, org: Organization, name: str, url: str
) -> tuple[StreamDestination, str]:
    """Add a webhook destination; returns it and its signing secret (shown once)."""
    org = lock_org(org)
    require_org_capability(actor, org, OrgCapability.MANAGE_AUDIT_STREAMING)
    name, url = clean_destination(name=name, url=url)
    if StreamDestination.objects.filter(organization=org).count() >= MAX_DESTINATIONS:
        raise Conflict(
            f"An organization can stream to at most {MAX_DESTINATIONS} destinations; "
            "remove one first.",
            code="too_many_destinations",
        )
    secret = new_secret()
    destination = StreamDestination.objects.create(
        organization=org,
        name=name,
        url=url,
        secret=secret,
        created_by_label=actor.display_name[:254],
    )
    # Recorded after the insert: this event is the first one the destination receives.
    record(
        actor=actor,
        action="audit.stream_destination_added",
        organization=org,
        target=destination,
        target_label=name,
        details={"url": url},
    )
    return destination, secret


def destination_for(org: Organization, public_id: str) -> StreamDestination:
    """The org's destination, locked (no key update: outbox inserts keep working), or 404."""
    destination = (
        StreamDestination.objects.select_for_update(no_key=True)
        .filter(organization=org, public_id=public_id)
        .first()
    )
    if destination is None:
        raise NotFound("No such destination.")
    return destination


@transaction.atomic
def stream_destination_remove(*, actor, org: Organization, destination_id: str) -> None:
    """Remove a destination and its delivery log; undelivered events are not sent."""
    org = lock_org(org)
    require_org_capability(actor, org, OrgCapability.MANAGE_AUDIT_STREAMING)
    destination = destination_for(org, destination_id)
    name, url, public_id = destination.name, destination.url, destination.public_id
    destination.delete()
    record(
        actor=actor,
        action="audit.stream_destination_removed",
        organization=org,
        target_label=name,
        details={"url": url, "destination_id": public_id},
    )


@transaction.atomic
def stream_destination_enable(*, actor, org: Organization, destination_id: str) -> None:
    """Re-enable a disabled destination: it resumes where it stopped (events recorded while
    it was disabled were queued too), retrying at once."""
    org = lock_org(org)
    require_org_capability(actor, org, OrgCapability.MANAGE_AUDIT_STREAMING)
    destination = destination_for(org, destination_id)
    if destination.status == StreamDestination.Status.ACTIVE:
        raise Conflict("This destination is already active.", code="already_active")
    destination.status = StreamDestination.Status.ACTIVE
    destination.failing_since = destination.next_attempt_at = destination.disabled_at = None
    destination.disabled_reason = ""
    destination.save()
    record(
        actor=actor,
        action="audit.stream_destination_enabled",
        organization=org,
        target=destination,
        target_label=destination.name,
    )


@transaction.atomic
def stream_replay(*, actor, org: Organization, destination_id: str, since: dt.datetime) -> int:
    """Queue the org's events from `since` on again for one destination (after the ones
    already queued, oldest first); returns how many. Receivers deduplicate on webhook-id."""
    org = lock_org(org)
    require_org_capability(actor, org, OrgCapability.MANAGE_AUDIT_STREAMING)
    destination = destination_for(org, destination_id)
    now = timezone.now()
    if since > now:
        raise ValidationFailed(
            "Choose a moment in the past.", fields={"since": "Choose a moment in the past."}
        )
    # Under the chain lock no event commits between the insert and the record below: the
    # replayed events are exactly the org's events before the replay's own.
    with connection.cursor() as cur:
        if connection.vendor == "postgresql":
            cur.execute("SELECT next_seq FROM audit_chain_lock(%s)", [org.pk])
        cur.execute(
            f'INSERT INTO "{StreamDelivery._meta.db_table}" '
            '("destination_id", "event_id", "seq", "created_at", "status", "attempts", '
            '"last_error") '
            "SELECT %s, e.id, e.seq, %s, 'pending', 0, '' "
            f'FROM "{AuditEvent._meta.db_table}" e '
            "WHERE e.chain_key = %s AND e.occurred_at >= %s ORDER BY e.seq",
            [
                destination.pk,
                connection.ops.adapt_datetimefield_value(now),
                org.pk,
                connection.ops.adapt_datetimefield_value(since),
            ],
        )
        count = cur.rowcount
    record(
        actor=actor,
        action="audit.stream_replayed",
        organization=org,
        target=destination,
        target_label=destination.name,
        details={"since": since.isoformat(), "count": count},
    )
    transaction.on_commit(lambda: queue_delivery(destination.pk))
    return count


def queue_delivery(destination_pk: int) -> None:
    """Runs on commit: start delivering. A broker that is down never fails the change that
    recorded the event; the beat sweep (every 30 s) starts the delivery instead."""
    from audit.tasks import deliver_audit_stream

    try:
        deliver_audit_stream.apply_async((destination_pk,), retry=False)
    except Exception as exc:  # the broker's errors vary by transport
        log.warning("Could not queue audit stream delivery %s: %s", destination_pk, exc)


# ---------------------------------------------------------------- delivery


def payload(event: AuditEvent, org_public_id: str) -> dict:
    """The JSON body of one delivery (Standard Webhooks: type, timestamp, data)."""
    from audit.serialize import events_out

    data = events_out([event])[0]
    data.update(
        organization_id=org_public_id,
        seq=event.seq,
        hash=event.hash,
        prev_hash=event.prev_hash,
    )
    return {"type": event.action, "timestamp": event.occurred_at, "data": data}


def signed_request(destination: StreamDestination, event: AuditEvent, org_public_id: str):
    """(body bytes, headers) for one delivery, signed with the destination's secret."""
    body = json.dumps(payload(event, org_public_id), cls=DjangoJSONEncoder, sort_keys=True)
    sent_at = timezone.now()
    signature = Webhook(destination.secret).sign(event.public_id, sent_at, body)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "webhook-id": event.public_id,
        "webhook-timestamp": str(int(sent_at.timestamp())),
        "webhook-signature": signature,
    }
    return body.encode(), headers


def send(destination: StreamDestination, event: AuditEvent, org_public_id: str):
    """POST one event; returns (ok, HTTP status or None, error text)."""
    body, headers = signed_request(destination, event, org_public_id)
    try:
        status = webhook_http.post(
            destination.url, body, headers, timeout=settings.AUDIT_STREAM_TIMEOUT_SECONDS
        )
    except (OSError, ValueError, http.client.HTTPException) as exc:
        # refused, timed out, TLS, DNS, a blocked address, a malformed answer
        return False, None, f"{type(exc).__name__}: {exc}"[:500]
    if 200 <= status < 300:
        return True, status, ""
    if 300 <= status < 400:
        return False, status, f"HTTP {status}: redirects are not followed"
    return False, status, f"HTTP {status}"


def backoff(attempts: int) -> dt.timedelta:
    """Wait after the n-th failed attempt: base · 2^(n-1), capped."""
    seconds = settings.AUDIT_STREAM_RETRY_BASE_SECONDS * 2 ** min(attempts - 1, 30)
    return dt.timedelta(seconds=min(seconds, settings.AUDIT_STREAM_RETRY_MAX_SECONDS))


def stream_deliver(*, destination_pk: int, max_events: int = 200) -> int:
    """Send a destination's due pending events in order; returns how many were delivered.

    Each event is sent in its own transaction holding the destination's row lock (FOR NO KEY
    UPDATE, which outbox inserts do not wait for); another worker skips a locked destination,
    so one destination is never sent two events at once. Stops at the first failure.
    """
    delivered = 0
    for _ in range(max_events):
        outcome = _deliver_next(destination_pk)
        if outcome != "delivered":
            break
        delivered += 1
    return delivered


def _deliver_next(destination_pk: int) -> str:
    with transaction.atomic():
        destination = (
            StreamDestination.objects.select_for_update(no_key=True, skip_locked=True)
            .select_related("organization")
            .filter(pk=destination_pk, status=StreamDestination.Status.ACTIVE)
            .first()
        )
        if destination is None:
            return "busy"  # another worker has it, or it is disabled or gone
        now = timezone.now()
        if destination.next_attempt_at and destination.next_attempt_at > now:
            return "waiting"
        row = (
            StreamDelivery.objects.filter(
                destination=destination, status=StreamDelivery.Status.PENDING
            )
            .order_by("id")
            .first()
        )
        if row is None:
            return "empty"
        event = AuditEvent.objects.filter(pk=row.event_id).first()
        if event is None:  # pruned by retention before it could be sent
            row.status = StreamDelivery.Status.SKIPPED
            row.last_error = "The event was pruned by retention before delivery."
            row.save()
            return "delivered"
        ok, code, error = send(destination, event, destination.organization.public_id)
        now = timezone.now()
        row.attempts += 1
        row.last_attempt_at = now
        row.last_status_code = code
        row.last_error = error
        if ok:
            row.status = StreamDelivery.Status.DELIVERED
            row.delivered_at = now
            row.save()
            destination.failing_since = destination.next_attempt_at = None
            destination.last_delivered_at = now
            destination.save(
                update_fields=["failing_since", "next_attempt_at", "last_delivered_at"]
            )
            return "delivered"
        row.save()
        destination.failing_since = destination.failing_since or now
        destination.next_attempt_at = now + backoff(row.attempts)
        destination.save(update_fields=["failing_since", "next_attempt_at"])
        limit = dt.timedelta(hours=settings.AUDIT_STREAM_DISABLE_AFTER_HOURS)
        if now - destination.failing_since >= limit:
            _disable(
                destination,
                reason=f"failing since {destination.failing_since:%Y-%m-%d %H:%M} UTC ({error or code})",
            )
        return "failed"


def _disable(destination: StreamDestination, *, reason: str) -> None:
    """Disable a destination that kept failing (system action) and email the org's owners."""
    destination.status = StreamDestination.Status.DISABLED
    destination.disabled_at = timezone.now()
    destination.disabled_reason = reason[:254]
    destination.save(update_fields=["status", "disabled_at", "disabled_reason"])
    record(
        actor=None,
        action="audit.stream_destination_disabled",
        organization=destination.organization,
        target=destination,
        target_label=destination.name,
        details={"reason": destination.disabled_reason},
    )
    pk = destination.pk
    transaction.on_commit(lambda: _email_owners_later(pk))


def _email_owners_later(destination_pk: int) -> None:
    from audit.tasks import email_stream_disabled

    try:
        email_stream_disabled.apply_async((destination_pk,), retry=True)
    except Exception as exc:  # already disabled and audited; the page shows it
        log.error("Could not queue the disabled-destination email %s: %s", destination_pk, exc)


def email_owners_disabled(destination_pk: int) -> int:
    """Tell the org's owners that a destination was disabled; returns how many were emailed."""
    from members.models import OrgMembership

    destination = (
        StreamDestination.objects.select_related("organization").filter(pk=destination_pk).first()
    )
    if destination is None:
        return 0
    org = destination.organization
    emails = list(
        OrgMembership.objects.filter(organization=org, role=Role.OWNER, user__is_active=True)
        .values_list("user__email", flat=True)
        .order_by("user__email")
    )
    if not emails:
        return 0
    link = f"{settings.SITE_URL}/o/{org.slug}/audit/streaming/"
    send_mail(
        subject=f"Audit streaming to {destination.name} was turned off ({org.name})",
        message=(
            f"SignalSmith could not deliver audit events of {org.name} to the destination "
            f"{destination.name} ({destination.url}) for "
            f"{settings.AUDIT_STREAM_DISABLE_AFTER_HOURS:g} hours, so it was disabled:\n"
            f"{destination.disabled_reason}\n\n"
            "New events are still queued for it. Fix the receiver, then re-enable the "
            f"destination; it resumes with the first undelivered event:\n{link}\n"
        ),
        from_email=settings.DEFAULT_FROM_EMAIL,
        recipient_list=emails,
    )
    return len(emails)


def due_destinations() -> list[int]:
    """Active destinations with pending events whose backoff has passed (for the beat sweep)."""
    now = timezone.now()
    pending = StreamDelivery.objects.filter(status=StreamDelivery.Status.PENDING).values(
        "destination_id"
    )
    return list(
        StreamDestination.objects.filter(status=StreamDestination.Status.ACTIVE, pk__in=pending)
        .exclude(next_attempt_at__gt=now)
        .values_list("pk", flat=True)
    )


def stream_log_prune(*, keep_days: int) -> int:
    """Forget delivered (and skipped) outbox rows older than `keep_days`; pending rows stay
    whatever their age. Returns how many were deleted. Idempotent."""
    cutoff = timezone.now() - dt.timedelta(days=keep_days)
    deleted, _ = (
        StreamDelivery.objects.exclude(status=StreamDelivery.Status.PENDING)
        .filter(created_at__lt=cutoff)
        .delete()
    )
    return deleted


# ---------------------------------------------------------------- reads for the page


def destinations_of(org: Organization):
    return StreamDestination.objects.filter(organization=org).order_by("created_at", "id")


def delivery_log(destination: StreamDestination, limit: int = 50):
    """The destination's newest outbox rows, with the event they carry."""
    rows = list(destination.deliveries.order_by("-id")[:limit])
    events = AuditEvent.objects.in_bulk([r.event_id for r in rows])
    return [(r, events.get(r.event_id)) for r in rows]


def pending_count(destination: StreamDestination) -> int:
    return destination.deliveries.filter(status=StreamDelivery.Status.PENDING).count()
