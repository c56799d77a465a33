"""Invitations (docs/rules.md §4): invite, resend, revoke, read a link, accept, and deliver the email.

Lock order, as everywhere: organization row → invitation row → workspace rows by id →
membership rows. A token is shown once (returned to the caller and put in the email) and
stored only as its SHA-256 hash; a retried delivery issues a fresh token (see
`invitation_deliver_due`), so nothing recoverable is ever stored.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial

from celery import shared_task
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.timesince import timeuntil

from audit.services import record
from billing.limits import check_member_limit
from config.errors import (
    Conflict,
    DomainError,
    NotFound,
    PermissionDenied,
    RateLimited,
    ValidationFailed,
)
from config.roles import Role
from members.invitation_email import send_invitation_message
from members.models import Invitation, InvitationGrant, OrgMembership, User, normalize_email
from members.services import workspace_grant_via_org
from members.tokens import hash_token
from members.verification import email_verified_by_token, is_verified
from orgs.governance import (
    allowed_email_domains,
    check_email_allowed,
    check_invite_email_allowed,
    default_workspace_grant,
)
from orgs.models import Organization
from orgs.permissions import OrgCapability, org_role_of, require_org
from orgs.services import lock_linked_workspaces, lock_org
from workspaces.models import Workspace, WorkspaceMembership

log = logging.getLogger(__name__)

# The first delivery belongs to the task queued on commit; the periodic re-send only steps in
# after this grace period (or at once when queuing failed), so the two never race.
DELIVERY_GRACE = timedelta(minutes=5)
MAX_DELIVERY_ATTEMPTS = 8
MAX_EMAILS_AT_ONCE = 100  # one bulk invite (the page and the API)
BACKOFF_BASE_SECONDS = 60
BACKOFF_MAX_SECONDS = 6 * 3600


# --- tokens -------------------------------------------------------------------------------


def new_token() -> tuple[str, str]:
    """(raw token for the link, hash to store)."""
    raw = secrets.token_urlsafe(32)
    return raw, hash_token(raw)


def _ttl() -> timedelta:
    return timedelta(days=settings.INVITATION_TTL_DAYS)


# --- why a link does not work ---------------------------------------------------------------


class InvitationInvalid(NotFound):
    code = "invitation_invalid"


class InvitationUsed(Conflict):
    code = "invitation_used"


class InvitationRevoked(Conflict):
    code = "invitation_revoked"


class InvitationExpired(Conflict):
    code = "invitation_expired"


class InvitationWrongEmail(PermissionDenied):
    code = "invitation_wrong_email"


def _invalid() -> InvitationInvalid:
    return InvitationInvalid(
        "This invitation link is not valid. It may be mistyped or incomplete, or it was "
        "replaced by a newer invitation email. Use the link in the most recent email, or "
        "ask an admin of the organization to resend the invitation."
    )


def _check_usable(inv: Invitation | None) -> Invitation:
    if inv is None or inv.organization.deleted_at is not None:
        raise _invalid()
    org = inv.organization.name
    if inv.status == Invitation.Status.ACCEPTED:
        raise InvitationUsed(
            f"This invitation to {org} has already been accepted. Sign in to reach the "
            "organization; if that was not you, ask an admin of the organization for a new one."
        )
    if inv.status == Invitation.Status.REVOKED:
        raise InvitationRevoked(
            f"This invitation to {org} was withdrawn by an admin of the organization. Ask them "
            "to invite you again if you still need access."
        )
    if inv.status == Invitation.Status.EXPIRED or inv.is_expired:
        raise InvitationExpired(
            f"This invitation to {org} expired on {inv.expires_at:%d %B %Y}. Invitations are "
            f"valid for {settings.INVITATION_TTL_DAYS} days: ask an admin of the organization "
            "to resend it, which sends you a fresh link."
        )
    return inv


def invitation_by_token(token: str) -> Invitation:
    """The pending invitation behind a link, or a DomainError saying why the link is unusable."""
    inv = (
        Invitation.objects.select_related("organization", "invited_by")
        .filter(token_hash=hash_token(token))
        .first()
    )
    return _check_usable(inv)


# --- invite ---------------------------------------------------------------------------------


def parse_emails(text: str) -> list[str]:
    """Split a pasted list (commas, semicolons, spaces, new lines) into normalised emails."""
    for sep in ",;\n\r\t":
        text = text.replace(sep, " ")
    return _dedupe(text.split(" "))


def _dedupe(emails) -> list[str]:
    seen: dict[str, None] = {}
    for e in emails:
        e = normalize_email(e)
        if e:
            seen.setdefault(e, None)
    return list(seen)


def invite_problems(org: Organization, emails: list[str]) -> dict[str, DomainError]:
    """Each email that cannot be invited, with the refusal (read-only; used for the preview)."""
    problems: dict[str, DomainError] = {}
    domains = allowed_email_domains(org.pk)
    for email in emails:
        try:
            validate_email(email)
        except ValidationError:
            problems[email] = ValidationFailed(
                f"{email} is not a valid email address.",
                fields={"email": "Enter a valid email address."},
            )
            continue
        try:
            check_invite_email_allowed(org.pk, email, domains=domains)
        except ValidationFailed as exc:
            problems[email] = exc
    valid = [e for e in emails if e not in problems]
    members = set(
        OrgMembership.objects.filter(organization=org, user__email__in=valid).values_list(
            "user__email", flat=True
        )
    )
    pending = set(
        Invitation.objects.filter(
            organization=org,
            status=Invitation.Status.PENDING,
            email__in=valid,
            expires_at__gt=timezone.now(),
        ).values_list("email", flat=True)
    )
    for email in valid:
        if email in members:
            problems[email] = Conflict(
                f"{email} is already a member of {org.name}. Change their access on their "
                "member page instead.",
                code="already_member",
            )
        elif email in pending:
            problems[email] = Conflict(
                f"{email} already has a pending invitation to {org.name}. Use Resend on the "
                "Pending invitations tab to send them a fresh link.",
                code="invite_pending",
            )
    return problems


def _raise_for(problems: dict[str, DomainError], emails: list[str]) -> None:
    """Raise the first refusal (its status and code), carrying every email's error."""
    first = next(problems[e] for e in emails if e in problems)
    if len(problems) > 1:
        first = type(first)(
            f"{len(problems)} of the addresses cannot be invited: "
            + " ".join(problems[e].message for e in emails if e in problems)
            + " Nobody was invited.",
            code=first.code,
            fields=first.fields,
        )
    first.per_email = {e: problems[e].message for e in emails if e in problems}
    raise first


def _when(moment: datetime) -> str:
    return f"{moment:%Y-%m-%d %H:%M} UTC (in {timeuntil(moment)})"


def _lifts_at(created_times: list[datetime], over_by: int, window: timedelta) -> datetime:
    """When enough of the counted invitations leave the window (oldest first) to make room."""
    if over_by > len(created_times):
        return timezone.now() + window
    return created_times[over_by - 1] + window


def check_invite_rate(*, org: Organization, actor: User, adding: int) -> None:
    """docs/rules.md §8: per org per day and per inviter per hour, counted from the Invitation table."""
    now = timezone.now()
    checks = [
        (
            Q(organization=org),
            timedelta(days=1),
            settings.INVITES_PER_ORG_PER_DAY,
            f"{org.name} can send {settings.INVITES_PER_ORG_PER_DAY} invitations per 24 hours",
        ),
        (
            Q(invited_by=actor),
            timedelta(hours=1),
            settings.INVITES_PER_INVITER_PER_HOUR,
            f"You can send {settings.INVITES_PER_INVITER_PER_HOUR} invitations per hour",
        ),
    ]
    for scope, window, limit, what in checks:
        times = list(
            Invitation.objects.filter(scope, created_at__gt=now - window)
            .order_by("created_at")
            .values_list("created_at", flat=True)
        )
        over_by = len(times) + adding - limit
        if over_by > 0:
            lifts = _lifts_at(times, over_by, window)
            room = max(0, limit - len(times))
            raise RateLimited(
                f"{what} and {len(times)} have been sent"
                + (f"; {room} more can go now" if room else "")
                + f". You can invite {adding if adding <= limit else limit} more after "
                + _when(lifts)
                + ".",
                retry_after=int((lifts - now).total_seconds()) + 1,
                code="invite_rate_limited",
            )


def _require_role_for(actor_role: Role | None, roles) -> None:
    """Inviting needs admin; handing out the owner role (org or workspace) needs an owner."""
    require_org(actor_role, OrgCapability.MANAGE_MEMBERS)
    if Role.OWNER in roles:
        require_org(actor_role, OrgCapability.MANAGE_OWNERS)


def _expire_stale(org: Organization, emails: list[str]) -> None:
    """Pending invitations past their expiry stop blocking a new invitation."""
    Invitation.objects.filter(
        organization=org,
        status=Invitation.Status.PENDING,
        email__in=emails,
        expires_at__lte=timezone.now(),
    ).update(status=Invitation.Status.EXPIRED, next_attempt_at=None)


@transaction.atomic
def member_invite(
    *,
    actor: User,
    org: Organization,
    emails: list[str],
    org_role: Role,
    grants: dict[int, Role],
) -> list[Invitation]:
    """Invite every address or none. Each returned Invitation carries `.token` (never stored)."""
    org = lock_org(org)
    actor_role = org_role_of(actor, org)
    require_org(actor_role, OrgCapability.VIEW)
    try:
        org_role = Role(org_role)
        grants = {int(pk): Role(r) for pk, r in (grants or {}).items()}
    except (TypeError, ValueError) as exc:
        raise ValidationFailed(
            "Choose member, admin or owner for each role.", fields={"org_role": str(exc)}
        ) from exc
    _require_role_for(actor_role, [org_role, *grants.values()])
    emails = _dedupe(emails or [])
    if not emails:
        raise ValidationFailed(
            "Enter at least one email address.", fields={"emails": "Enter at least one email."}
        )
    linked = lock_linked_workspaces(org, ids=grants)
    if len(linked) != len(grants):
        raise ValidationFailed(
            "Access can only be given to workspaces linked to this organization.",
            fields={"workspace_access": "A workspace is not linked to this organization."},
        )
    _expire_stale(org, emails)
    problems = invite_problems(org, emails)
    if problems:
        _raise_for(problems, emails)
    check_member_limit(org, adding=len(emails))
    check_invite_rate(org=org, actor=actor, adding=len(emails))

    now = timezone.now()
    grant_details = [
        {"workspace": linked[pk].name, "workspace_id": linked[pk].public_id, "role": r.label}
        for pk, r in sorted(grants.items(), key=lambda kv: linked[kv[0]].name.lower())
    ]
    invitations = []
    for email in emails:
        raw, digest = new_token()
        inv = Invitation.objects.create(
            organization=org,
            email=email,
            org_role=org_role,
            invited_by=actor,
            token_hash=digest,
            created_at=now,
            expires_at=now + _ttl(),
            next_attempt_at=now + DELIVERY_GRACE,
        )
        InvitationGrant.objects.bulk_create(
            [InvitationGrant(invitation=inv, workspace_id=pk, role=r) for pk, r in grants.items()]
        )
        record(
            actor=actor,
            action="member.invited",
            organization=org,
            target=inv,
            target_label=email,
            details={
                "email": email,
                "role": org_role.label,
                "invitation": inv.public_id,
                "workspace_access": grant_details,
                "expires_at": inv.expires_at.isoformat(),
            },
        )
        transaction.on_commit(partial(queue_invitation_email, inv.pk, raw))
        inv.token = raw
        invitations.append(inv)
    return invitations


# --- resend / revoke ------------------------------------------------------------------------


def lock_invitation(org: Organization, invitation: Invitation) -> Invitation:
    inv = (
        Invitation.objects.select_for_update(of=("self",))
        .select_related("organization")
        .filter(pk=invitation.pk, organization=org)
        .first()
    )
    if inv is None:
        raise NotFound("No such invitation.")
    return inv


def _reset_delivery(inv: Invitation, *, now: datetime) -> str:
    raw, inv.token_hash = new_token()
    inv.delivery_state = Invitation.Delivery.QUEUED
    inv.delivery_attempts = 0
    inv.last_error = ""
    inv.sent_at = None
    inv.next_attempt_at = now + DELIVERY_GRACE
    return raw


@transaction.atomic
def invitation_resend(*, actor: User, invitation: Invitation) -> tuple[Invitation, str]:
    """A fresh token and a fresh INVITATION_TTL_DAYS expiry (expired invitations too); the old
    link dies."""
    org = lock_org(invitation.organization)
    actor_role = org_role_of(actor, org)
    require_org(actor_role, OrgCapability.VIEW)
    inv = lock_invitation(org, invitation)
    _require_role_for(actor_role, [Role(inv.org_role)])
    return resend_locked(actor=actor, org=org, inv=inv)


def resend_locked(*, actor: User, org: Organization, inv: Invitation) -> tuple[Invitation, str]:
    """The resend itself, once the caller locked org and invitation and checked who may
    (invitation_resend by org role; support/services.py by support permission)."""
    if inv.status == Invitation.Status.ACCEPTED:
        raise Conflict(f"{inv.email} has already accepted this invitation.", code="invite_used")
    if inv.status == Invitation.Status.REVOKED:
        raise Conflict(
            f"The invitation to {inv.email} was revoked; invite them again instead.",
            code="invite_revoked",
        )
    if OrgMembership.objects.filter(organization=org, user__email=inv.email).exists():
        raise Conflict(f"{inv.email} is already a member of {org.name}.", code="already_member")
    if (
        inv.status == Invitation.Status.EXPIRED
        and Invitation.objects.filter(
            organization=org, email=inv.email, status=Invitation.Status.PENDING
        ).exists()
    ):
        raise Conflict(
            f"{inv.email} has a newer pending invitation; resend that one.",
            code="invite_pending",
        )
    # A resend is a new invite in all but name: today's domain policy applies, and an invitation
    # that had expired takes a seat again (pending invitations count against the plan).
    check_invite_email_allowed(org.pk, inv.email)
    if inv.status == Invitation.Status.EXPIRED:
        check_member_limit(org, adding=1)
    now = timezone.now()
    raw = _reset_delivery(inv, now=now)
    inv.status = Invitation.Status.PENDING
    inv.expires_at = now + _ttl()
    inv.save()
    record(
        actor=actor,
        action="member.invite_resent",
        organization=org,
        target=inv,
        target_label=inv.email,
        details={"invitation": inv.public_id, "expires_at": inv.expires_at.isoformat()},
    )
    transaction.on_commit(partial(queue_invitation_email, inv.pk, raw))
    inv.token = raw
    return inv, raw


@transaction.atomic
def invitation_revoke(*, actor: User, invitation: Invitation) -> Invitation:
    org = lock_org(invitation.organization)
    actor_role = org_role_of(actor, org)
    require_org(actor_role, OrgCapability.VIEW)
    inv = lock_invitation(org, invitation)
    _require_role_for(actor_role, [Role(inv.org_role)])
    return revoke_locked(actor=actor, org=org, inv=inv)


def revoke_locked(*, actor: User, org: Organization, inv: Invitation) -> Invitation:
    """The revoke itself, once the caller locked org and invitation and checked who may."""
    if inv.status == Invitation.Status.ACCEPTED:
        raise Conflict(
            f"{inv.email} has already joined; remove them from the organization instead.",
            code="invite_used",
        )
    if inv.status == Invitation.Status.REVOKED:
        raise Conflict(f"The invitation to {inv.email} is already revoked.", code="invite_revoked")
    inv.status = Invitation.Status.REVOKED
    inv.next_attempt_at = None
    inv.save(update_fields=["status", "next_attempt_at"])
    record(
        actor=actor,
        action="member.invite_revoked",
        organization=org,
        target=inv,
        target_label=inv.email,
        details={"invitation": inv.public_id},
    )
    return inv


def get_invitation(org: Organization, public_id: str) -> Invitation:
    inv = (
        Invitation.objects.select_related("organization")
        .filter(organization=org, public_id=public_id)
        .first()
    )
    if inv is None:
        raise NotFound("No such invitation.")
    return inv


# --- accept ---------------------------------------------------------------------------------


@dataclass
class AcceptResult:
    organization: Organization
    membership: OrgMembership
    granted: list[WorkspaceMembership] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # names of workspaces unlinked since
    already_member: bool = False

    @property
    def landing_workspace(self) -> Workspace | None:
        return (
            min(self.granted, key=lambda m: m.workspace.name.lower()).workspace
            if self.granted
            else None
        )


def access_on_accept(org: Organization, grants: dict[int, Role]) -> dict[int, tuple[Role, bool]]:
    """Workspace pk → (role, whether from the default access policy) that accepting an
    invitation carrying `grants` gives today: its own grants, then the default-grant policy's
    workspaces it does not name. The invite page's preview shows exactly this."""
    access = {pk: (role, False) for pk, role in grants.items()}
    policy = default_workspace_grant(org.pk)
    if policy:
        ws_ids, policy_role = policy
        for pk in Workspace.objects.filter(organization=org, public_id__in=ws_ids).values_list(
            "pk", flat=True
        ):
            access.setdefault(pk, (policy_role, True))
    return access


@transaction.atomic
def invitation_accept(*, user: User, token: str) -> AcceptResult:
    """Join the org and get the invitation's workspace grants, all in one transaction."""
    found = invitation_by_token(token)
    try:
        org = lock_org(found.organization)
    except NotFound:
        raise _invalid() from None
    inv = (
        Invitation.objects.select_for_update(of=("self",))
        .select_related("organization", "invited_by")
        .filter(pk=found.pk, token_hash=hash_token(token))
        .first()
    )
    inv = _check_usable(inv)  # re-checked under the lock: a concurrent accept/revoke wins once
    if normalize_email(user.email) != inv.email:
        raise InvitationWrongEmail(
            f"This invitation is for {inv.email}, but you are signed in as {user.email}. Sign "
            f"out, then open the link again and sign in or sign up as {inv.email}."
        )
    # Today's policy decides, not the one in force when the invitation was sent.
    check_email_allowed(org.pk, inv.email, doing=f"join {org.name} any more")
    inviter = inv.invited_by
    invited_grants = list(inv.grants.all())
    grants = {g.workspace_id: Role(g.role) for g in invited_grants}
    sources = {g.workspace_id: g.source for g in invited_grants}
    access = access_on_accept(org, grants)
    linked = lock_linked_workspaces(org, ids=access)
    skipped = sorted(
        Workspace.objects.filter(pk__in=[pk for pk in grants if pk not in linked]).values_list(
            "name", flat=True
        ),
        key=str.lower,
    )
    membership = (
        OrgMembership.objects.select_for_update().filter(organization=org, user=user).first()
    )
    already = membership is not None
    if membership is None:
        membership = OrgMembership.objects.create(
            user=user, organization=org, role=inv.org_role, joined_at=timezone.now()
        )
    # Recorded on both paths: accepting uses up the invitation even for someone who is already
    # a member (their org role is kept), and that change needs its event too.
    record(
        actor=user,
        action="member.joined",
        organization=org,
        target=user,
        details={
            "role": Role(membership.role).label,
            "invitation": inv.public_id,
            "invited_by": inviter.display_name if inviter else "",
            "membership": membership.public_id,
            "already_member": already,
        },
    )
    existing = {
        m.workspace_id: m
        for m in WorkspaceMembership.objects.select_for_update()
        .filter(user=user, workspace_id__in=list(linked))
        .order_by("workspace_id")
    }
    result = AcceptResult(
        organization=org, membership=membership, skipped=skipped, already_member=already
    )
    for pk in sorted(linked):
        source = sources.get(pk, WorkspaceMembership.Source.ORG)
        role, from_policy = access[pk]
        if not from_policy:
            actor, details = inviter, {"invitation": inv.public_id}
        else:
            actor = None
            details = {"invitation": inv.public_id, "policy": "default_workspace_grant"}
        # Accepting an invitation never lowers access someone already has.
        m = workspace_grant_via_org(
            never_lower=True,
            actor=actor,
            org=org,
            user=user,
            workspace=linked[pk],
            role=role,
            existing=existing.get(pk),
            details=details,
            source=source,
        )
        m.workspace = linked[pk]
        result.granted.append(m)
    inv.status = Invitation.Status.ACCEPTED
    inv.accepted_at = timezone.now()
    inv.accepted_by = user
    inv.next_attempt_at = None
    inv.save(update_fields=["status", "accepted_at", "accepted_by", "next_attempt_at"])
    if not is_verified(user):  # the token came to this address: that confirms it
        email_verified_by_token(user=user, via="invitation")
        user.refresh_from_db(fields=["email_verified_at"])
    return result


# --- delivery -------------------------------------------------------------------------------


# Celery tasks (members/tasks.py imports them for autodiscovery; names kept as members.tasks.*).


@shared_task(name="members.tasks.send_invitation_email", ignore_result=True)
def send_invitation_email(invitation_id: int, token: str) -> str:
    """Deliver one invitation with the token minted for it; idempotent (see invitation_deliver)."""
    return invitation_deliver(invitation_id=invitation_id, token=token)


@shared_task(name="members.tasks.resend_undelivered_invitations", ignore_result=True)
def resend_undelivered_invitations() -> dict:
    """Beat: (re)send queued or failed invitations whose backoff has passed."""
    outcomes: dict[str, int] = {}
    for pk in due_invitation_ids():
        try:
            outcome = invitation_deliver_due(invitation_id=pk)
        except Exception:  # one bad row must not stop the others
            log.exception("Re-sending invitation %s failed", pk)
            outcome = "error"
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    return outcomes


def queue_invitation_email(invitation_id: int, token: str) -> None:
    """Runs on commit. If the broker is down the invitation stays queued for the periodic
    re-send, due at once; the page that invited never fails because of it."""
    try:
        send_invitation_email.apply_async(
            (invitation_id, token),
            retry=True,
            retry_policy={
                "max_retries": 2,
                "interval_start": 0,
                "interval_step": 0.2,
                "interval_max": 0.5,
            },
        )
    except Exception as exc:  # the broker's errors vary by transport
        log.warning("Could not queue invitation %s email: %s", invitation_id, exc)
        Invitation.objects.filter(
            pk=invitation_id, delivery_state=Invitation.Delivery.QUEUED
        ).update(
            next_attempt_at=timezone.now(),
            last_error=f"Could not queue the email (the task broker is unavailable): {exc}"[:500],
        )


def backoff(attempts: int) -> timedelta:
    """60 s, 2 min, 4 min, … capped at 6 hours."""
    return timedelta(
        seconds=min(BACKOFF_MAX_SECONDS, BACKOFF_BASE_SECONDS * 2 ** max(0, attempts - 1))
    )


def _send_locked(inv: Invitation, token: str) -> str:
    """Send the email for a locked invitation and record the outcome on it."""
    now = timezone.now()
    inv.delivery_attempts += 1
    inv.last_attempt_at = now
    try:
        send_invitation_message(inv, token)
    except Exception as exc:  # SMTP, DNS, templates: every failure is recorded, never lost
        inv.delivery_state = Invitation.Delivery.FAILED
        inv.last_error = f"{type(exc).__name__}: {exc}"[:500]
        inv.next_attempt_at = now + backoff(inv.delivery_attempts)
        outcome = "failed"
    else:
        inv.delivery_state = Invitation.Delivery.SENT
        inv.sent_at = now
        inv.last_error = ""
        inv.next_attempt_at = None
        outcome = "sent"
    inv.save(
        update_fields=[
            "token_hash",
            "delivery_state",
            "delivery_attempts",
            "last_attempt_at",
            "last_error",
            "next_attempt_at",
            "sent_at",
        ]
    )
    return outcome


def _lock_for_delivery(invitation_id: int, *, skip_locked: bool) -> Invitation | None:
    return (
        Invitation.objects.select_for_update(of=("self",), skip_locked=skip_locked)
        .select_related("organization", "invited_by")
        .filter(pk=invitation_id)
        .first()
    )


def _deliverable(inv: Invitation | None) -> str | None:
    """Why not to send now, or None."""
    if inv is None:
        return "missing"
    if inv.status != Invitation.Status.PENDING or inv.organization.deleted_at is not None:
        return "not_pending"
    if inv.is_expired:
        return "expired"
    if inv.delivery_state == Invitation.Delivery.SENT:
        return "already_sent"
    return None


@transaction.atomic
def invitation_deliver(*, invitation_id: int, token: str) -> str:
    """Send the email carrying `token`, once. The row lock makes a second worker wait and then
    see it sent; a token that a resend or re-issue replaced is never mailed."""
    inv = _lock_for_delivery(invitation_id, skip_locked=False)
    reason = _deliverable(inv)
    if reason or inv is None:
        return reason or "missing"
    if inv.token_hash != hash_token(token):
        return "superseded"
    return _send_locked(inv, token)


@transaction.atomic
def invitation_deliver_due(*, invitation_id: int) -> str:
    """The periodic re-send of one undelivered invitation.

    The raw token is not stored, so the retry issues a fresh one (the old link was never
    delivered, or failed) and mails it, in the same transaction: if the process dies before
    commit, nothing changed and the next run tries again.
    """
    inv = _lock_for_delivery(invitation_id, skip_locked=True)
    if inv is None:
        return "busy"
    reason = _deliverable(inv)
    if reason:
        return reason
    if inv.next_attempt_at and inv.next_attempt_at > timezone.now():
        return "not_due"
    raw, inv.token_hash = new_token()
    return _send_locked(inv, raw)


def due_invitation_ids(limit: int = 200) -> list[int]:
    now = timezone.now()
    return list(
        Invitation.objects.filter(
            status=Invitation.Status.PENDING,
            delivery_state__in=[Invitation.Delivery.QUEUED, Invitation.Delivery.FAILED],
            next_attempt_at__lte=now,
            expires_at__gt=now,
            delivery_attempts__lt=MAX_DELIVERY_ATTEMPTS,
            organization__deleted_at__isnull=True,
        )
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:limit]
    )
