"""The access lifecycle of an org member: suspend, unsuspend, reinstate after removal.

Suspending keeps the member's org role and workspace grants but refuses them the org's pages,
its linked workspaces and their API tokens there (orgs.permissions.org_role_of,
orgs.selectors.org_for_viewer, workspaces.permissions.ensure_not_suspended). A suspended
member still holds a seat. Lock order as in members.services: org, workspaces, memberships.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from audit.models import AuditEvent
from audit.services import record
from billing.limits import check_member_limit
from config.errors import Conflict, NotFound, ValidationFailed
from config.roles import Role
from members.models import OrgMembership, User
from members.services import _lock_membership
from members.verification import require_verified
from orgs.governance import allowed_email_domains, check_email_allowed
from orgs.models import Organization
from orgs.permissions import OrgCapability, org_can, org_role_of, require_org
from orgs.services import lock_linked_workspaces, lock_org
from workspaces.models import Workspace, WorkspaceMembership

REASON_MAX = 200


def _lifecycle_capabilities(capability: OrgCapability, target_role) -> list[OrgCapability]:
    """The capability from the table; an owner as the subject also needs MANAGE_OWNERS."""
    if target_role is not None and Role(target_role) == Role.OWNER:
        return [capability, OrgCapability.MANAGE_OWNERS]
    return [capability]


def require_lifecycle(actor_role: Role | None, capability: OrgCapability, target_role) -> None:
    for needed in _lifecycle_capabilities(capability, target_role):
        require_org(actor_role, needed)


def may_suspend(
    *, actor: User, actor_role: Role | None, org: Organization, membership: OrgMembership
) -> bool:
    """Whether member_suspend / member_unsuspend let the actor act on this member (pages ask
    this to offer the buttons): not oneself, and their highest role at either level decides."""
    if membership.user_id == actor.pk:
        return False
    highest = _highest_role(org, membership)
    return all(
        org_can(actor_role, c)
        for c in _lifecycle_capabilities(OrgCapability.SUSPEND_MEMBERS, highest)
    )


def _highest_role(org: Organization, membership: OrgMembership) -> Role:
    """The member's org role or, if higher, their role in one of the org's workspaces: taking
    away (or giving back) a workspace owner's power is for org owners, as in
    member_set_workspace_access."""
    ws_roles = WorkspaceMembership.objects.filter(
        user=membership.user_id, workspace__organization=org
    ).values_list("role", flat=True)
    return Role(max([membership.role, *ws_roles]))


@transaction.atomic
def member_suspend(
    *, actor: User, org: Organization, membership: OrgMembership, reason: str = ""
) -> OrgMembership:
    """Block the member from the org's pages, workspaces and API until unsuspended."""
    org = lock_org(org)
    actor_role = org_role_of(actor, org)  # a suspended actor is refused here
    require_org(actor_role, OrgCapability.VIEW)
    membership = _lock_membership(org, membership)
    require_lifecycle(actor_role, OrgCapability.SUSPEND_MEMBERS, _highest_role(org, membership))
    reason = (reason or "").strip()
    if len(reason) > REASON_MAX:
        raise ValidationFailed(
            f"Keep the reason under {REASON_MAX} characters.",
            fields={"reason": f"At most {REASON_MAX} characters."},
        )
    if membership.user_id == actor.pk:
        # Also keeps an owner able to act: suspending an owner takes another, active, owner.
        raise Conflict("You cannot suspend yourself.", code="suspend_self")
    if membership.suspended_at is not None:
        raise Conflict(
            f"{membership.user.display_name} is already suspended.", code="already_suspended"
        )
    membership.suspended_at = timezone.now()
    membership.suspended_by = actor
    membership.suspension_reason = reason
    membership.save(update_fields=["suspended_at", "suspended_by", "suspension_reason"])
    record(
        actor=actor,
        action="member.suspended",
        organization=org,
        target=membership.user,
        details={
            "membership": membership.public_id,
            "role": Role(membership.role).label,
            "reason": reason,
        },
    )
    return membership


@transaction.atomic
def member_unsuspend(*, actor: User, org: Organization, membership: OrgMembership) -> OrgMembership:
    """Give a suspended member their access back, exactly as it was."""
    org = lock_org(org)
    actor_role = org_role_of(actor, org)
    require_org(actor_role, OrgCapability.VIEW)
    membership = _lock_membership(org, membership)
    require_lifecycle(actor_role, OrgCapability.SUSPEND_MEMBERS, _highest_role(org, membership))
    if membership.suspended_at is None:
        raise Conflict(f"{membership.user.display_name} is not suspended.", code="not_suspended")
    since = membership.suspended_at
    membership.suspended_at = None
    membership.suspended_by = None
    membership.suspension_reason = ""
    membership.save(update_fields=["suspended_at", "suspended_by", "suspension_reason"])
    record(
        actor=actor,
        action="member.unsuspended",
        organization=org,
        target=membership.user,
        details={"membership": membership.public_id, "suspended_since": since.isoformat()},
    )
    return membership


# --- reinstating a removed member -----------------------------------------------------------

REINSTATE_WINDOW = timedelta(days=90)


@dataclass
class GrantPlan:
    """One workspace grant the member held at removal, and what reinstating does with it."""

    workspace_id: str
    workspace_name: str
    role: Role
    source: str
    workspace: Workspace | None = None
    skip: str = ""  # why it is not restored; empty when it is


@dataclass
class ReinstatePlan:
    event: AuditEvent
    user: User
    org_role: Role
    grants: list[GrantPlan] = field(default_factory=list)
    problem: str = ""  # why the whole reinstatement is refused (the preview shows it)

    @property
    def restored(self) -> list[GrantPlan]:
        return [g for g in self.grants if not g.skip]

    @property
    def skipped(self) -> list[GrantPlan]:
        return [g for g in self.grants if g.skip]


def _reinstated_events(org: Organization):
    return AuditEvent.objects.filter(organization=org, action="member.reinstated").values_list(
        "details__removal_event", flat=True
    )


def removed_members(org: Organization) -> list[AuditEvent]:
    """Removals of the last 90 days that can still be undone: the person has an account, is
    not a member again, and this removal was not reinstated already (latest per person)."""
    since = timezone.now() - REINSTATE_WINDOW
    done = set(_reinstated_events(org))
    current = set(
        OrgMembership.objects.filter(organization=org).values_list("user__public_id", flat=True)
    )
    events = AuditEvent.objects.filter(
        organization=org, action="member.removed", occurred_at__gte=since
    ).order_by("-occurred_at", "-id")
    seen, rows = set(), []
    for e in events[:500]:
        if e.target_id in seen or e.target_id in current or e.public_id in done:
            seen.add(e.target_id)
            continue
        seen.add(e.target_id)
        rows.append(e)
    return rows


def _removal_event(org: Organization, event_id: str) -> AuditEvent:
    event = AuditEvent.objects.filter(
        organization=org, action="member.removed", public_id=(event_id or "").strip()
    ).first()
    if event is None:
        raise NotFound("No such removal in this organization.")
    return event


def reinstate_plan(*, actor_role: Role, org: Organization, event: AuditEvent) -> ReinstatePlan:
    """The impact preview: who comes back with which role and grants, and what is skipped."""
    user = User.objects.filter(public_id=event.target_id).first()
    if user is None or not user.is_active:
        raise Conflict(
            f"{event.target_label or 'This person'} closed their account; invite them again instead.",
            code="account_closed",
        )
    details = event.details or {}
    try:
        org_role = Role.from_name(details.get("role", "member"))
    except ValueError:
        org_role = Role.MEMBER
    plan = ReinstatePlan(event=event, user=user, org_role=org_role)
    linked = {w.public_id: w for w in Workspace.objects.filter(organization=org)}
    for item in details.get("access_removed") or []:
        try:
            role = Role.from_name(item.get("role", ""))
        except ValueError:
            continue
        ws = linked.get(item.get("workspace_id"))
        grant = GrantPlan(
            workspace_id=item.get("workspace_id", ""),
            workspace_name=ws.name if ws else item.get("workspace", ""),
            role=role,
            source=item.get("source") or WorkspaceMembership.Source.ORG,
            workspace=ws,
        )
        if ws is None:
            grant.skip = f"no longer linked to {org.name}"
        elif role == Role.OWNER and not org_can(actor_role, OrgCapability.MANAGE_OWNERS):
            # Invariant 6: an admin never gives the owner role, at either level.
            grant.skip = "only an organization owner can give back the owner role"
        plan.grants.append(grant)
    if timezone.now() - event.occurred_at > REINSTATE_WINDOW:
        plan.problem = (
            f"Removals older than {REINSTATE_WINDOW.days} days cannot be undone; invite them "
            "again instead."
        )
    elif OrgMembership.objects.filter(organization=org, user=user).exists():
        plan.problem = f"{user.display_name} is a member again already."
    elif event.public_id in set(_reinstated_events(org)):
        plan.problem = "This removal was undone already."
    elif org_role == Role.OWNER and not org_can(actor_role, OrgCapability.MANAGE_OWNERS):
        plan.problem = (
            f"{user.display_name} was an owner: only an owner can reinstate them "
            f"(you need the owner role in {org.name})."
        )
    else:
        domains = allowed_email_domains(org.pk)
        if domains and user.email.rsplit("@", 1)[-1].lower() not in domains:
            plan.problem = (
                f"{user.email} is no longer allowed by the organization's email-domain policy "
                f"({', '.join(domains)})."
            )
    return plan


def reinstate_preview(*, actor: User, org: Organization, event_id: str) -> ReinstatePlan:
    actor_role = require_org(org_role_of(actor, org), OrgCapability.REINSTATE_MEMBERS)
    return reinstate_plan(actor_role=actor_role, org=org, event=_removal_event(org, event_id))


@transaction.atomic
def member_reinstate(*, actor: User, org: Organization, event_id: str) -> OrgMembership:
    """Undo a removal of the last 90 days: the org role and the workspace grants held at removal
    come back (workspaces no longer linked, and owner roles the actor may not give, are
    skipped), within today's policies and seats. One event, `member.reinstated`."""
    org = lock_org(org)
    actor_role = require_org(org_role_of(actor, org), OrgCapability.REINSTATE_MEMBERS)
    event = _removal_event(org, event_id)
    plan = reinstate_plan(actor_role=actor_role, org=org, event=event)
    require_lifecycle(actor_role, OrgCapability.REINSTATE_MEMBERS, plan.org_role)
    if plan.problem:
        raise Conflict(plan.problem, code="cannot_reinstate")
    user = plan.user
    # The same policies as any way in (invariant 7): allowed domains, seats, a confirmed email.
    check_email_allowed(org.pk, user.email, doing=f"rejoin {org.name}")
    check_member_limit(org, adding=1)
    require_verified(
        user, message=f"{user.display_name} has not confirmed their email address yet."
    )
    # Restored grants always name a live workspace; those unlinked since are skipped. Lock
    # order: the workspaces before any membership row.
    grants = [g for g in plan.restored if g.workspace is not None]
    linked = lock_linked_workspaces(org, ids=[g.workspace.pk for g in grants if g.workspace])
    membership = OrgMembership.objects.create(user=user, organization=org, role=plan.org_role)
    restored = []
    for grant in sorted(grants, key=lambda g: g.workspace.pk if g.workspace else 0):
        ws = linked.get(grant.workspace.pk) if grant.workspace else None
        if ws is None:
            grant.skip = f"no longer linked to {org.name}"
            continue
        existing = WorkspaceMembership.objects.select_for_update().filter(user=user, workspace=ws)
        if existing.exists():
            grant.skip = "already has access (kept as it is)"
            continue
        WorkspaceMembership.objects.create(
            user=user, workspace=ws, role=grant.role, source=grant.source, granted_by=actor
        )
        restored.append(
            {"workspace_id": ws.public_id, "workspace": ws.name, "role": grant.role.label}
        )
    record(
        actor=actor,
        action="member.reinstated",
        organization=org,
        target=user,
        details={
            "membership": membership.public_id,
            "role": plan.org_role.label,
            "removal_event": event.public_id,
            "access_restored": restored,
            "access_skipped": [
                {"workspace_id": g.workspace_id, "workspace": g.workspace_name, "reason": g.skip}
                for g in plan.skipped
            ],
        },
    )
    return membership
