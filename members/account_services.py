"""Account self-service writes: the display name (more in later sections of this module).

Account events that org admins need to see (a new name, a new email) are recorded once in the
log of every org the person belongs to (each org's log is its own hash chain); with no org
they go to the person's own chain (organization-less, like two-factor events).
"""

from __future__ import annotations

import unicodedata

from django.db import transaction
from django.db.models import Q

from audit.services import record
from config.errors import ValidationFailed
from members.models import User

DISPLAY_NAME_MAX_LENGTH = 150


def clean_display_name(value, *, field: str = "full_name") -> str:
    """Trimmed, inner whitespace collapsed, 1–150 characters, no control characters."""
    raw = value if isinstance(value, str) else ""
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Cs") and not ch.isspace() for ch in raw):
        raise ValidationFailed(
            "Your name cannot contain control characters.",
            fields={field: "Remove the control characters."},
            code="invalid_name",
        )
    name = " ".join(raw.split())
    if not name:
        raise ValidationFailed(
            "Enter your name.", fields={field: "Enter your name."}, code="invalid_name"
        )
    if len(name) > DISPLAY_NAME_MAX_LENGTH:
        raise ValidationFailed(
            f"Your name can be at most {DISPLAY_NAME_MAX_LENGTH} characters.",
            fields={field: f"At most {DISPLAY_NAME_MAX_LENGTH} characters ({len(name)} given)."},
            code="invalid_name",
        )
    return name


def orgs_of(user: User):
    """Live orgs the person belongs to: by org membership or by access to a linked workspace."""
    from orgs.models import Organization

    return (
        Organization.objects.alive()
        .filter(Q(memberships__user=user) | Q(workspaces__memberships__user=user))
        .distinct()
        .order_by("pk")
    )


def record_account_event(*, actor: User, action: str, target: User, details: dict) -> int:
    """One event in each org log the person belongs to (or their own log); returns how many."""
    orgs = list(orgs_of(target))
    for org in orgs:
        record(actor=actor, action=action, organization=org, target=target, details=details)
    if not orgs:
        record(actor=actor, action=action, target=target, details=details)
    return max(1, len(orgs))


def _lock_user(user: User) -> User:
    locked = User.objects.select_for_update().filter(pk=user.pk, is_active=True).first()
    if locked is None:
        from config.errors import NotFound

        raise NotFound("No such account.")
    return locked


@transaction.atomic
def profile_update(*, actor: User, full_name, field: str = "full_name") -> User:
    """Change one's own display name (the name the directory, audit log and exports show)."""
    name = clean_display_name(full_name, field=field)
    user = _lock_user(actor)
    old = user.full_name
    if name == old:
        return user
    user.full_name = name
    user.save(update_fields=["full_name"])
    actor.full_name = name
    record_account_event(
        actor=user,
        action="account.profile_updated",
        target=user,
        details={"from_name": old or user.email, "to_name": name},
    )
    return user
