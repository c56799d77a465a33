"""Support actions: what a support engineer may change, each a service like any other.

Every one checks the engineer's support permission (support/roles.py) and the ticket and
reason, locks what it checks, makes the change through the owning app's code, and records
one audit event in the customer's log with actor_type=support and the ticket and reason in
its details ("Support engineer Sam (ticket T-1) resent the invitation to …"). Actions on an
org's data also need the org's support access (orgs/support_access.py); actions on a
person's own account (two-factor, sign-in lock) and on the contract (sales-led plan), the
roll-up and chain verification (no customer data shown) do not.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import partial
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core import signing
from django.core.cache import caches
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from audit import context as audit_context
from audit.services import record
from config.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from config.roles import Role
from members.models import Invitation, OrgMembership, TwoFactorDevice, User
from orgs.models import Organization, WorkspaceLinkPeriod
from orgs.support_access import (
    MAX_VIEW_MINUTES,
    ViewAsGrant,
    require_support_access,
    view_as_until,
)
from support import signin_lock
from support.emails import queue_support_email
from support.roles import require_support

if TYPE_CHECKING:
    from audit.chain import ChainResult

TICKET_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9#._/:-]{0,63}$")
MIN_REASON = 10
MAX_REASON = 1000
MAX_ROLLUP_DAYS = 366
RECOVERY_LINK_MAX_AGE = 48 * 3600
RECOVERY_SALT = "support.ownership-recovery"


def support_ticket(*, ticket: str, reason: str) -> audit_context.SupportTicket:
    """Every support action names its ticket (e.g. T-1234) and says why, in words."""
    ticket, reason = (ticket or "").strip(), " ".join((reason or "").split())
    errors = {}
    if not TICKET_RE.match(ticket):
        errors["ticket"] = "Give the ticket reference (letters, digits, - # . / :, up to 64)."
    if not MIN_REASON <= len(reason) <= MAX_REASON or "\x00" in reason:
        errors["reason"] = f"Say why, in {MIN_REASON} to {MAX_REASON} characters."
    if errors:
        raise ValidationFailed("Give a ticket reference and a reason.", fields=errors)
    return audit_context.SupportTicket(ticket=ticket, reason=reason)


@contextlib.contextmanager
def _acting(ticket: audit_context.SupportTicket) -> Iterator[None]:
    with audit_context.bind(support=ticket):
        yield


def _org_of_person(user: User, organization: Organization | None) -> Organization | None:
    """The org whose audit log shows an action on a person: the one on the ticket, which must
    be one of theirs; none given and they belong to exactly one, that one."""
    orgs = Organization.objects.alive().filter(memberships__user=user)
    if organization is not None:
        if not orgs.filter(pk=organization.pk).exists():
            raise ValidationFailed(
                f"{user.email} is not a member of {organization.name}.",
                fields={"organization": "Choose one of the person's organizations."},
            )
        return organization
    found = list(orgs[:2])
    return found[0] if len(found) == 1 else None


# --- invitations (tier 1, needs support access) ------------------------------------------------


def _invitation_action(
    *,
    engineer: User,
    invitation: Invitation,
    ticket: str,
    reason: str,
    act: Callable[..., Invitation],
) -> Invitation:
    """Resend or revoke as the org's own service does it, once support may act on the org."""
    from members.invitations import lock_invitation
    from orgs.services import lock_org

    t = support_ticket(ticket=ticket, reason=reason)
    require_support(engineer, "resend_invitation")  # "Resend or revoke an invitation"
    org = lock_org(invitation.organization)
    require_support_access(org)
    inv = lock_invitation(org, invitation)
    with _acting(t):
        return act(actor=engineer, org=org, inv=inv)


@transaction.atomic
def support_invitation_resend(
    *, engineer: User, invitation: Invitation, ticket: str, reason: str
) -> Invitation:
    """A fresh link for the invitee, as an org admin's Resend would issue it."""
    from members.invitations import resend_locked

    def act(**kwargs: Any) -> Invitation:
        return resend_locked(**kwargs)[0]

    return _invitation_action(
        engineer=engineer, invitation=invitation, ticket=ticket, reason=reason, act=act
    )


@transaction.atomic
def support_invitation_revoke(
    *, engineer: User, invitation: Invitation, ticket: str, reason: str
) -> Invitation:
    from members.invitations import revoke_locked

    return _invitation_action(
        engineer=engineer, invitation=invitation, ticket=ticket, reason=reason, act=revoke_locked
    )


# --- accounts (no org consent needed: the person asked) -----------------------------------------


@transaction.atomic
def support_signin_unlock(
    *,
    engineer: User,
    user: User,
    ticket: str,
    reason: str,
    organization: Organization | None = None,
) -> None:
    """Clear the failed sign-ins recorded for the person's email (the lock lifts at once)."""
    t = support_ticket(ticket=ticket, reason=reason)
    require_support(engineer, "clear_signin_lock")
    user = User.objects.select_for_update().get(pk=user.pk)
    failures = signin_lock.failures_for(user.email)
    if not failures:
        raise Conflict(
            f"No failed sign-ins are recorded for {user.email}: nothing to clear.",
            code="not_locked",
        )
    org = _org_of_person(user, organization)
    with _acting(t):
        record(
            actor=engineer,
            action="account.signin_unlocked",
            organization=org,
            target=user,
            details={"failed_attempts": failures},
        )
    transaction.on_commit(partial(signin_lock.clear_signin_lock, user.email))


def sign_out_everywhere(user: User) -> int:
    """Delete every live session of the person: the rows, and their cached copies (the
    engine is cached_db) now and again after commit, so a read in between cannot re-cache one."""
    from django.contrib.sessions.backends.cached_db import KEY_PREFIX
    from django.contrib.sessions.models import Session

    ended = []
    live = Session.objects.filter(expire_date__gt=timezone.now()).only(
        "session_key", "session_data"
    )
    for session in live.iterator(chunk_size=2000):
        if session.get_decoded().get("_auth_user_id") == str(user.pk):
            ended.append(session.session_key)
    Session.objects.filter(session_key__in=ended).delete()
    cached = [KEY_PREFIX + key for key in ended]
    session_cache = caches[settings.SESSION_CACHE_ALIAS]
    session_cache.delete_many(cached)
    transaction.on_commit(partial(session_cache.delete_many, cached))
    return len(ended)


@transaction.atomic
def support_two_factor_reset(
    *,
    engineer: User,
    user: User,
    ticket: str,
    reason: str,
    organization: Organization | None = None,
) -> int:
    """Remove the person's two-factor device, sign them out everywhere and email them; they
    enrol again (orgs that require it send them to enrol). Returns the sessions ended."""
    t = support_ticket(ticket=ticket, reason=reason)
    require_support(engineer, "reset_two_factor")
    if user.pk == engineer.pk:
        raise PermissionDenied(
            "Support cannot reset their own two-factor sign-in.", code="support_self"
        )
    user = User.objects.select_for_update().get(pk=user.pk)
    device = TwoFactorDevice.objects.select_for_update().filter(user=user).first()
    if device is None or device.confirmed_at is None:
        raise Conflict(f"{user.email} has no two-factor sign-in to reset.", code="two_factor_off")
    org = _org_of_person(user, organization)
    device.delete()
    ended = sign_out_everywhere(user)
    with _acting(t):
        record(
            actor=engineer,
            action="account.two_factor_reset",
            organization=org,
            target=user,
            details={"sessions_ended": ended},
        )
    transaction.on_commit(
        partial(
            queue_support_email,
            to=user.email,
            template="two_factor_reset",
            context={"name": user.display_name, "ticket": t.ticket},
        )
    )
    return ended


# --- organizations --------------------------------------------------------------------------


@transaction.atomic
def support_plan_switch(
    *, engineer: User, org: Organization, plan_code: str, ticket: str, reason: str
) -> None:
    """Move the org to the sales-led plan it signed for (self-serve plans are the owner's choice)."""
    from billing.limits import default_plan
    from billing.models import BillingAccount
    from billing.services import get_plan, is_sales_led, plan_change_locked
    from orgs.services import lock_org

    t = support_ticket(ticket=ticket, reason=reason)
    require_support(engineer, "switch_plan")
    org = lock_org(org)
    plan = get_plan(plan_code)
    if not is_sales_led(plan):
        raise PermissionDenied(
            f"The {plan.name} plan is self-serve: the org's owner switches to it on the Billing "
            "page. Support switches only to sales-led plans.",
            code="plan_self_serve",
        )
    account = BillingAccount.objects.select_for_update().filter(organization=org).first()
    if account is None:
        account = BillingAccount.objects.create(organization=org, plan=default_plan())
    with _acting(t):
        plan_change_locked(actor=engineer, org=org, account=account, new=plan)


def _clean_range(start: date | None, end: date | None) -> tuple[date, date]:
    today = timezone.now().date()
    errors = {}
    if start is None:
        errors["start"] = "Give the first day."
    if end is None:
        errors["end"] = "Give the last day."
    if not errors and start is not None and end is not None:
        if start > end:
            errors["end"] = "The last day is before the first."
        elif end > today:
            errors["end"] = "The last day cannot be in the future."
        elif (end - start).days + 1 > MAX_ROLLUP_DAYS:
            errors["start"] = f"At most {MAX_ROLLUP_DAYS} days at once."
    if errors or start is None or end is None:
        raise ValidationFailed("Give a valid day range.", fields=errors)
    return start, end


@transaction.atomic
def support_rollup_rerun(
    *,
    engineer: User,
    org: Organization,
    start: date | None,
    end: date | None,
    ticket: str,
    reason: str,
) -> dict:
    """Recompute the org's daily usage rows for a day range from the raw sync runs."""
    from billing.rollups import rollup_recompute_days
    from orgs.services import lock_org

    t = support_ticket(ticket=ticket, reason=reason)
    require_support(engineer, "rerun_rollup")
    start, end = _clean_range(start, end)
    org = lock_org(org)
    low = datetime.combine(start, time.min, tzinfo=UTC)
    high = low + timedelta(days=(end - start).days + 1)
    # Every workspace linked at some time in the range (unlinked ones still show those days).
    workspace_ids = sorted(
        set(
            WorkspaceLinkPeriod.objects.filter(organization=org, linked_at__lt=high)
            .filter(Q(unlinked_at__isnull=True) | Q(unlinked_at__gte=low))
            .values_list("workspace_id", flat=True)
        )
        | set(org.workspaces.values_list("pk", flat=True))
    )
    rows = rollup_recompute_days(workspace_ids=workspace_ids, start=start, end=end)
    result = {
        "start": start.isoformat(),
        "end": end.isoformat(),
        "workspaces": len(workspace_ids),
        "rows": rows,
    }
    with _acting(t):
        record(
            actor=engineer,
            action="support.rollup_rerun",
            organization=org,
            target=org,
            details=result,
        )
    return result


@transaction.atomic
def support_audit_chain_verify(
    *, engineer: User, org: Organization, ticket: str, reason: str
) -> ChainResult:
    """Run the chain verification for the org now (also stored for its audit page); returns
    the ChainResult. The event recording it is appended after the verified part."""
    from audit.chain import verify_and_record

    t = support_ticket(ticket=ticket, reason=reason)
    require_support(engineer, "verify_audit_chain")
    result = verify_and_record(org.pk)
    if result.ok:
        outcome = f"intact ({result.count} events verified)"
    else:
        where = result.first_bad_event or "the end of the chain"
        outcome = f"broken at {where}: {result.problem} ({result.count} events verified before it)"
    with _acting(t):
        record(
            actor=engineer,
            action="support.audit_chain_verified",
            organization=org,
            target=org,
            details={
                "outcome": outcome,
                "ok": result.ok,
                "verified": result.count,
                "first_bad_event": result.first_bad_event,
            },
        )
    return result


# --- ownership recovery (tier 2) ------------------------------------------------------------


@dataclass
class RecoveryOutcome:
    recovered: bool
    asked: list[str]  # emails of the owners asked to confirm, when an owner is reachable


def _lock_member(org: Organization, membership: OrgMembership) -> OrgMembership:
    locked = (
        OrgMembership.objects.select_for_update()
        .select_related("user")
        .filter(pk=membership.pk, organization=org)
        .first()
    )
    if locked is None:
        raise NotFound("No such member.")
    if locked.role == Role.OWNER:
        raise Conflict(f"{locked.user.email} is already an owner.", code="already_owner")
    if not locked.user.is_active:
        raise Conflict(
            f"{locked.user.email}'s account is deactivated; choose a reachable member.",
            code="member_inactive",
        )
    return locked


def _promote(
    *, engineer: User, org: Organization, membership: OrgMembership, details: dict[str, Any]
) -> None:
    before = Role(membership.role)
    membership.role = Role.OWNER
    membership.save(update_fields=["role"])
    record(
        actor=engineer,
        action="org.ownership_recovered",
        organization=org,
        target=membership.user,
        details={"from_role": before.label, "to_role": Role.OWNER.label, **details},
    )


def reachable_owners(org: Organization) -> QuerySet[OrgMembership]:
    """Owners who can still act: an active account (a deactivated one cannot sign in) that
    the org has not suspended."""
    return OrgMembership.objects.filter(
        organization=org, role=Role.OWNER, user__is_active=True, suspended_at__isnull=True
    ).select_related("user")


@transaction.atomic
def support_ownership_recover(
    *, engineer: User, org: Organization, membership: OrgMembership, ticket: str, reason: str
) -> RecoveryOutcome:
    """Make a named member an owner when no owner is reachable. While an active owner exists
    this only emails them a link to confirm (ownership_recovery_confirm); nothing changes yet."""
    from orgs.services import lock_org

    t = support_ticket(ticket=ticket, reason=reason)
    require_support(engineer, "recover_ownership")
    org = lock_org(org)
    member = _lock_member(org, membership)
    if member.user_id == engineer.pk:
        raise PermissionDenied(
            "Support cannot make themselves an owner; another engineer must handle the ticket.",
            code="support_self",
        )
    owners = list(reachable_owners(org).select_for_update(of=("self",)))
    with _acting(t):
        if not owners:
            _promote(engineer=engineer, org=org, membership=member, details={"confirmed_by": None})
            return RecoveryOutcome(recovered=True, asked=[])
        emails = [o.user.email for o in owners]
        record(
            actor=engineer,
            action="support.ownership_recovery_requested",
            organization=org,
            target=member.user,
            target_label=", ".join(emails),
            details={"new_owner": member.user.email, "owners_asked": emails},
        )
    for owner in owners:
        token = signing.dumps(
            {
                "org": org.pk,
                "member": member.pk,
                "owner": owner.user_id,
                "engineer": engineer.pk,
                "ticket": t.ticket,
                "reason": t.reason,
            },
            salt=RECOVERY_SALT,
        )
        transaction.on_commit(
            partial(
                queue_support_email,
                to=owner.user.email,
                template="ownership_confirm",
                context={
                    "name": owner.user.display_name,
                    "org": org.name,
                    "new_owner": member.user.display_name,
                    "new_owner_email": member.user.email,
                    "engineer": engineer.display_name,
                    "ticket": t.ticket,
                    "reason": t.reason,
                    "link": f"{settings.SITE_URL}/support/ownership/{token}/",
                },
            )
        )
    return RecoveryOutcome(recovered=False, asked=emails)


def read_recovery_link(token: str) -> dict[str, Any]:
    try:
        data: dict[str, Any] = signing.loads(
            token, salt=RECOVERY_SALT, max_age=RECOVERY_LINK_MAX_AGE
        )
    except signing.SignatureExpired:
        raise Conflict(
            "This confirmation link has expired; ask support to send a new one.",
            code="link_expired",
        ) from None
    except signing.BadSignature:
        raise NotFound("This confirmation link is not valid.", code="link_invalid") from None
    return data


@transaction.atomic
def ownership_recovery_confirm(*, owner: User, token: str) -> OrgMembership:
    """The emailed owner confirms the support request: the named member becomes an owner."""
    from orgs.services import lock_org

    data = read_recovery_link(token)
    if owner.pk != data["owner"]:
        raise PermissionDenied(
            "This link was sent to another owner; sign in as them to confirm.",
            code="wrong_owner",
        )
    org = lock_org(Organization(pk=data["org"]))
    if not OrgMembership.objects.filter(organization=org, user=owner, role=Role.OWNER).exists():
        raise PermissionDenied("Only an owner of the organization can confirm.", code="not_owner")
    engineer = User.objects.filter(pk=data["engineer"]).first()
    require_support(engineer, "recover_ownership")  # still in a support role
    assert engineer is not None  # require_support refuses a missing account
    member = _lock_member(org, OrgMembership(pk=data["member"]))
    t = audit_context.SupportTicket(ticket=data["ticket"], reason=data["reason"])
    with _acting(t):
        _promote(
            engineer=engineer, org=org, membership=member, details={"confirmed_by": owner.email}
        )
    return member


# --- view as admin (tier 1, needs support access) --------------------------------------------


@transaction.atomic
def support_view_as_start(
    *, engineer: User, org: Organization, minutes: int, ticket: str, reason: str
) -> ViewAsGrant:
    """Open a read-only, time-boxed view of the org as its admins see it; the caller keeps the
    grant in the engineer's session (orgs.support_access.grant_view_as)."""
    from orgs.services import lock_org

    t = support_ticket(ticket=ticket, reason=reason)
    require_support(engineer, "view_as_admin")
    if not isinstance(minutes, int) or not 5 <= minutes <= MAX_VIEW_MINUTES:
        raise ValidationFailed(
            "Choose how long to view.",
            fields={"minutes": f"From 5 to {MAX_VIEW_MINUTES} minutes."},
        )
    org = lock_org(org)
    access = require_support_access(org)
    until = view_as_until(minutes, access)
    with _acting(t):
        record(
            actor=engineer,
            action="support.view_as_started",
            organization=org,
            target=org,
            details={"minutes": minutes, "until": until.isoformat()},
        )
    return ViewAsGrant(org_id=org.pk, until=until, ticket=t.ticket, reason=t.reason)


@transaction.atomic
def support_view_as_end(*, engineer: User, grant: ViewAsGrant) -> None:
    org = Organization.objects.filter(pk=grant.org_id).first()
    if org is None:
        return
    with _acting(audit_context.SupportTicket(ticket=grant.ticket, reason=grant.reason)):
        record(actor=engineer, action="support.view_as_ended", organization=org, target=org)
