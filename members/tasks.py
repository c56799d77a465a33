"""Emails: invitations (queued on commit, re-sent periodically until delivered, docs/rules.md §4) and
email-verification links.

The tasks are defined beside the services that queue them (members/invitations.py,
members/verification.py) and keep their `members.tasks.*` names; this module imports them so
that Celery's autodiscovery finds them, and imports point one way (tasks → services).
"""

from __future__ import annotations

from members.invitations import resend_undelivered_invitations, send_invitation_email
from members.verification import send_verification_email

__all__ = ["resend_undelivered_invitations", "send_invitation_email", "send_verification_email"]
