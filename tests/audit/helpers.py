"""Building audit events at chosen times for the log's own tests.

Services stamp events with the current time; the filter, paging and retention tests need
events spread over days, so they append through the same chain writer record() uses
(`_append_to_chain`), which keeps every chain valid.
"""

import datetime as dt

from django.db import transaction
from django.utils import timezone

from audit.models import AuditEvent
from audit.services import _append_to_chain


def make_event(org, *, action="org.updated", workspace=None, actor=None, at=None, details=None):
    at = at or timezone.now()
    event = AuditEvent(
        occurred_at=at,
        organization=org,
        workspace=workspace,
        workspace_label=workspace.name if workspace else "",
        actor_type=AuditEvent.ActorType.USER if actor else AuditEvent.ActorType.SYSTEM,
        actor_user=actor,
        actor_label=actor.display_name if actor else "System",
        action=action,
        details=details or {},
        chain_key=org.pk if org else 0,
    )
    with transaction.atomic():
        _append_to_chain(event)
    return event


def days_ago(n: float) -> dt.datetime:
    return timezone.now() - dt.timedelta(days=n)
