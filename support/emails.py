"""Emails of support actions (two-factor reset notice, ownership confirmation), sent by a
Celery task queued after commit; a broker that is down is logged, never fails the action."""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.mail import send_mail
from django.template.loader import render_to_string

log = logging.getLogger(__name__)

SUBJECTS = {
    "two_factor_reset": "Your two-factor sign-in was reset by SignalSmith support",
    "ownership_confirm": "Confirm a new owner for {org}",
}


def send_support_message(*, to: str, template: str, context: dict) -> None:
    subject = SUBJECTS[template].format(**context)
    body = render_to_string(
        f"support/emails/{template}.txt", {**context, "site": settings.SITE_URL}
    )
    send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [to])


def queue_support_email(*, to: str, template: str, context: dict) -> None:
    from support.tasks import send_support_email

    try:
        send_support_email.delay(to, template, context)
    except Exception as exc:  # the broker's errors vary by transport
        log.warning("Could not queue the %s email to %s: %s", template, to, exc)
