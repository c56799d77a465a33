"""/api/v1/organizations/{org_id}/members/{member_id}/suspend|unsuspend, reinstatement."""

from datetime import datetime

from ninja import Router, Schema

from config.apikit import errors, text
from config.errors import DomainError
from members import lifecycle
from members.api import MemberOut, _members_out, _membership
from orgs.api import RoleName, org_of
from orgs.permissions import OrgCapability, require_org

router = Router(tags=["members"])


class SuspendIn(Schema):
    reason: text(lifecycle.REASON_MAX) = ""


@router.post(
    "/{org_id}/members/{member_id}/suspend",
    response={200: MemberOut, **errors(400, 403, 404, 409)},
    summary="Suspend a member",
)
def suspend_member(request, org_id: str, member_id: str, payload: SuspendIn):
    """The member keeps their role and access but cannot use the org until unsuspended (they
    still count as a seat)."""
    org, _ = org_of(request, org_id)
    membership = _membership(org, member_id)
    lifecycle.member_suspend(
        actor=request.user, org=org, membership=membership, reason=payload.reason
    )
    return _members_out(org, [_membership(org, member_id)])[0]


@router.post(
    "/{org_id}/members/{member_id}/unsuspend",
    response={200: MemberOut, **errors(400, 403, 404, 409)},
    summary="Unsuspend a member",
)
def unsuspend_member(request, org_id: str, member_id: str):
    org, _ = org_of(request, org_id)
    lifecycle.member_unsuspend(actor=request.user, org=org, membership=_membership(org, member_id))
    return _members_out(org, [_membership(org, member_id)])[0]


# --- reinstating removed members -------------------------------------------------------------


class GrantPlanOut(Schema):
    workspace_id: str
    workspace_name: str
    role: RoleName
    skipped: str | None


class RemovalOut(Schema):
    removal_event_id: str
    email: str
    name: str
    removed_at: datetime
    org_role: RoleName
    workspace_access: list[GrantPlanOut]
    problem: str | None


def _removal_out(plan: lifecycle.ReinstatePlan) -> dict:
    return {
        "removal_event_id": plan.event.public_id,
        "email": plan.user.email,
        "name": plan.user.full_name,
        "removed_at": plan.event.occurred_at,
        "org_role": plan.org_role.label,
        "workspace_access": [
            {
                "workspace_id": g.workspace_id,
                "workspace_name": g.workspace_name,
                "role": g.role.label,
                "skipped": g.skip or None,
            }
            for g in plan.grants
        ],
        "problem": plan.problem or None,
    }


@router.get(
    "/{org_id}/removed-members",
    response={200: list[RemovalOut], **errors(403, 404)},
    summary=f"Members removed in the last {lifecycle.REINSTATE_WINDOW.days} days, with what "
    "reinstating each restores",
)
def list_removed(request, org_id: str):
    org, role = org_of(request, org_id)
    require_org(role, OrgCapability.REINSTATE_MEMBERS)
    out = []
    for event in lifecycle.removed_members(org):
        try:
            out.append(
                _removal_out(lifecycle.reinstate_plan(actor_role=role, org=org, event=event))
            )
        except DomainError:
            continue  # the account was closed since: nothing to reinstate
    return out


@router.post(
    "/{org_id}/removed-members/{removal_event_id}/reinstate",
    response={201: MemberOut, **errors(400, 403, 404, 409)},
    summary=f"Reinstate a member removed in the last {lifecycle.REINSTATE_WINDOW.days} days",
)
def reinstate_member(request, org_id: str, removal_event_id: str):
    """Restores the org role and the workspace grants held at removal; workspaces no longer
    linked and owner roles the caller may not give are skipped (see `removed-members`)."""
    org, _ = org_of(request, org_id)
    membership = lifecycle.member_reinstate(actor=request.user, org=org, event_id=removal_event_id)
    return 201, _members_out(org, [_membership(org, membership.public_id)])[0]
