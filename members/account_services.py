"""Account self-service writes: the display name, the sign-in email (verified by a link to the
new address), closing the account.

Account events that org admins need to see (a new name, a new email) are recorded once in the
log of every org the person belongs to (each org's log is its own hash chain); with no org
they go to the person's own chain (organization-less, like two-factor events).
"""

from __future__ import annotations

import functools
import logging
import secrets
import unicodedata
from datetime import timedelta
from typing import TYPE_CHECKING

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.mail import send_mail
from django.core.validators import validate_email
from django.db import transaction
from django.db.models import Q, QuerySet
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from audit.services import record
from config.errors import Conflict, NotFound, RateLimited, ValidationFailed
from members.account_models import EmailChange
from members.models import User, normalize_email
from members.tokens import hash_token

if TYPE_CHECKING:
    from orgs.models import Organization

log = logging.getLogger(__name__)

DISPLAY_NAME_MAX_LENGTH = 150
# Each request mails an address the requester chose: a few an hour is plenty for a person.
EMAIL_CHANGES_PER_HOUR = 5


def clean_display_name(value: object, *, field: str = "full_name") -> str:
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


def orgs_of(user: User) -> QuerySet[Organization]:
    """Live orgs the person belongs to: by org membership or by access to a linked workspace."""
    from orgs.models import Organization

    orgs: QuerySet[Organization] = (
        Organization.objects.alive()
        .filter(Q(memberships__user=user) | Q(workspaces__memberships__user=user))
        .distinct()
        .order_by("pk")
    )
    return orgs


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
        raise NotFound("No such account.")
    return locked


@transaction.atomic
def profile_update(*, actor: User, full_name: object, field: str = "full_name") -> User:
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


# --- email change ----------------------------------------------------------------------------


def clean_new_email(value: object, *, field: str = "email") -> str:
    email = normalize_email(value if isinstance(value, str) else "")
    try:
        if "\x00" in email or len(email) > 254:
            raise DjangoValidationError("bad")
        validate_email(email)
    except DjangoValidationError:
        raise ValidationFailed(
            "Enter a valid email address.",
            fields={field: "Enter a valid email address."},
            code="invalid_email",
        ) from None
    return email


def check_email_allowed_by_orgs(user: User, email: str, *, field: str = "email") -> None:
    """Every org the person belongs to must allow the address (its allowed-domain policy)."""
    from orgs.governance import allowed_email_domains

    domain = email.rsplit("@", 1)[-1]
    refusing = []
    for org in orgs_of(user):
        domains = allowed_email_domains(org.pk)
        if domains and domain not in domains:
            refusing.append(f"{org.name} (allows {', '.join(domains)})")
    if refusing:
        raise ValidationFailed(
            f"{'; '.join(refusing)}: this organization's policy does not allow addresses at "
            f"{domain}."
            if len(refusing) == 1
            else f"These organizations' policies do not allow addresses at {domain}: "
            f"{'; '.join(refusing)}.",
            fields={field: f"Not allowed by {'; '.join(refusing)}."},
            code="email_domain_not_allowed",
        )


def _send(subject: str, template: str, to: str, context: dict) -> None:
    """Mail after commit; a mail server that refuses is logged, the request can be repeated."""
    try:
        send_mail(
            subject,
            render_to_string(template, context),
            settings.DEFAULT_FROM_EMAIL,
            [to],
        )
    except Exception:  # SMTP errors vary; the person sees "check your inbox" and may retry
        log.exception("Could not send %s to %s", template, to)


@transaction.atomic
def email_change_request(
    *, actor: User, new_email: object, password: object
) -> tuple[EmailChange, str | None]:
    """Start changing the sign-in email: nothing changes until the link mailed to the new
    address is opened. The old address gets a notice. Needs the current password.

    An address that already has an account gets a notice instead of a link, and the answer
    looks the same (no response reveals whether an account exists, docs/rules.md invariant 7).
    """
    email = clean_new_email(new_email)
    user = _lock_user(actor)
    if not isinstance(password, str) or not user.check_password(password):
        raise ValidationFailed(
            "Your current password is not right.",
            fields={"password": "Wrong password."},
            code="wrong_password",
        )
    if email == user.email:
        raise ValidationFailed(
            "That is already your email address.",
            fields={"email": "This is your current address."},
            code="same_email",
        )
    check_email_allowed_by_orgs(user, email)
    now = timezone.now()
    recent = EmailChange.objects.filter(user=user, created_at__gt=now - timedelta(hours=1))
    if recent.count() >= EMAIL_CHANGES_PER_HOUR:
        raise RateLimited(
            f"At most {EMAIL_CHANGES_PER_HOUR} email changes an hour. Try again later.",
            retry_after=3600,
            code="email_change_throttled",
        )
    EmailChange.objects.filter(
        user=user, confirmed_at__isnull=True, cancelled_at__isnull=True
    ).update(cancelled_at=now)
    context = {"user": user, "new_email": email, "old_email": user.email}
    context["site_url"] = settings.SITE_URL
    raw: str | None = secrets.token_urlsafe(32)
    change = EmailChange.objects.create(
        user=user,
        old_email=user.email,
        new_email=email,
        token_hash=hash_token(raw),
        created_at=now,
        expires_at=now + timedelta(hours=settings.EMAIL_CHANGE_TTL_HOURS),
    )
    if User.objects.filter(email=email).exists():
        # The pending request looks the same; the link is never mailed, so it never confirms.
        raw = None
        mail = ("Your address on SignalSmith", "emails/email_change_taken.txt", context)
    else:
        link = settings.SITE_URL + reverse("account:email_confirm", args=[raw])
        mail = (
            "Confirm your new email address",
            "emails/email_change_confirm.txt",
            {**context, "link": link, "hours": settings.EMAIL_CHANGE_TTL_HOURS},
        )
    transaction.on_commit(functools.partial(_send, mail[0], mail[1], email, mail[2]))
    transaction.on_commit(
        functools.partial(
            _send,
            "A change of your SignalSmith email was requested",
            "emails/email_change_notice.txt",
            user.email,
            context,
        )
    )
    record(
        actor=user,
        action="account.email_change_requested",
        target=user,
        details={"to_email": email},
    )
    return change, raw


def open_email_change(user: User) -> EmailChange | None:
    return (
        EmailChange.objects.filter(
            user=user,
            confirmed_at__isnull=True,
            cancelled_at__isnull=True,
            expires_at__gt=timezone.now(),
        )
        .order_by("-created_at")
        .first()
    )


def email_change_for_link(user: User, token: object) -> EmailChange:
    """The open request behind a link, for the signed-in requester only (else 404)."""
    raw = token if isinstance(token, str) and 20 <= len(token) <= 100 else ""
    change = (
        EmailChange.objects.filter(
            user=user,
            token_hash=hash_token(raw),
            confirmed_at__isnull=True,
            cancelled_at__isnull=True,
        ).first()
        if raw
        else None
    )
    if change is None:
        raise NotFound(
            "This confirmation link is not valid: it was used or replaced by a newer request, "
            "or it belongs to another account."
        )
    return change


@transaction.atomic
def email_change_confirm(*, actor: User, token: object) -> EmailChange:
    """Open the link: the signed-in requester's email becomes the new address.

    The link of someone else, a used, replaced or unknown link is a 404; an expired one a 409.
    The address and the org policies are checked again: they may have changed since.
    """
    user = _lock_user(actor)
    found = email_change_for_link(user, token)
    change = EmailChange.objects.select_for_update().get(pk=found.pk)
    if change.confirmed_at or change.cancelled_at:  # confirmed or replaced meanwhile
        raise NotFound("This confirmation link was used or replaced by a newer request.")
    if change.expires_at <= timezone.now():
        raise Conflict(
            "This confirmation link has expired. Request the change again.", code="link_expired"
        )
    if User.objects.filter(email=change.new_email).exclude(pk=user.pk).exists():
        raise Conflict(f"{change.new_email} is used by another account now.", code="email_taken")
    check_email_allowed_by_orgs(user, change.new_email)
    old = user.email
    user.email = change.new_email
    user.save(update_fields=["email"])
    actor.email = user.email
    change.confirmed_at = timezone.now()
    change.save(update_fields=["confirmed_at"])
    record_account_event(
        actor=user,
        action="account.email_changed",
        target=user,
        details={"from_email": old, "to_email": user.email},
    )
    return change


# --- closing the account ---------------------------------------------------------------------


def last_owner_of(user: User) -> list[str]:
    """What the person is the last owner of ("Acme Corp (organization)"), which blocks closing."""
    from config.roles import Role
    from members.models import OrgMembership
    from workspaces.models import WorkspaceMembership

    names = []
    for m in (
        OrgMembership.objects.filter(user=user, role=Role.OWNER, organization__deleted_at=None)
        .select_related("organization")
        .order_by("organization__name")
    ):
        owners = OrgMembership.objects.filter(organization=m.organization, role=Role.OWNER)
        if owners.count() <= 1:
            names.append(f"{m.organization.name} (organization)")
    for wm in (
        WorkspaceMembership.objects.filter(user=user, role=Role.OWNER)
        .select_related("workspace")
        .order_by("workspace__name")
    ):
        ws_owners = WorkspaceMembership.objects.filter(workspace=wm.workspace, role=Role.OWNER)
        if ws_owners.count() <= 1:
            names.append(f"{wm.workspace.name} (workspace)")
    return names


@transaction.atomic
def account_close(*, actor: User, password: object) -> None:
    """Close one's own account: refused while the last owner of an org or workspace (named);
    otherwise leaves every org and workspace through their services (member.left,
    member.access_revoked), signs out everywhere, revokes API tokens and frees the email.
    The account row stays, so the audit history keeps the name as it was."""
    from members.account_models import UserSession
    from members.models import ApiToken, OrgMembership, TwoFactorDevice
    from members.services import member_leave
    from members.sessions import _end
    from workspaces.models import WorkspaceMembership
    from workspaces.services import workspace_member_remove

    user = _lock_user(actor)
    if not isinstance(password, str) or not user.check_password(password):
        raise ValidationFailed(
            "Your current password is not right.",
            fields={"password": "Wrong password."},
            code="wrong_password",
        )
    blocking = last_owner_of(user)
    if blocking:
        raise Conflict(
            f"You are the last owner of {', '.join(blocking)}. Make someone else an owner "
            "(or delete it) before closing your account.",
            code="last_owner",
        )
    left_orgs = []
    for m in (
        OrgMembership.objects.filter(user=user, organization__deleted_at=None)
        .select_related("organization")
        .order_by("organization_id")
    ):
        member_leave(actor=user, org=m.organization)  # the org's own service and event
        left_orgs.append(m.organization.name)
    left_workspaces = []
    for wm in (
        WorkspaceMembership.objects.filter(user=user)
        .select_related("workspace")
        .order_by("workspace_id")
    ):
        workspace_member_remove(actor=user, membership=wm)
        left_workspaces.append(wm.workspace.name)
    sessions = list(UserSession.objects.select_for_update().filter(user=user))
    _end(sessions)
    now = timezone.now()
    tokens = ApiToken.objects.filter(user=user, revoked_at__isnull=True).update(revoked_at=now)
    TwoFactorDevice.objects.filter(user=user).delete()
    EmailChange.objects.filter(
        user=user, confirmed_at__isnull=True, cancelled_at__isnull=True
    ).update(cancelled_at=now)
    old_email = user.email
    user.full_name = user.display_name  # the name history shows, even without a full name
    user.email = f"closed+{user.public_id}@closed.invalid"
    user.is_active = False
    user.set_unusable_password()
    user.save(update_fields=["full_name", "email", "is_active", "password"])
    record(
        actor=user,
        action="account.closed",
        target=user,
        details={
            "email": old_email,
            "organizations_left": left_orgs,
            "workspaces_left": left_workspaces,
            "sessions_ended": len(sessions),
            "tokens_revoked": tokens,
        },
    )
