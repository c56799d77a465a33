"""/api/v1/organizations/{org_id}/members and …/invitations: the directory, invite, change,
remove; list, resend and revoke invitations. Every write is a members service."""

from datetime import datetime
from typing import Literal

from django.db import transaction
from ninja import Field, Query, Router, Schema

from config.apikit import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    Page,
    errors,
    paginate,
    public_id_or_none,
    text,
    throttle_invitations,
)
from config.dbrouter import on_replica
from config.errors import NotFound, ValidationFailed
from config.roles import Role
from members import invitations, services
from members.models import Invitation, OrgMembership
from members.selectors import (
    DirectoryQuery,
    directory_members,
    member_for_viewer,
    pending_invitations,
)
from orgs.api import RoleName, org_of
from orgs.models import Organization
from orgs.permissions import OrgCapability, require_org
from workspaces.models import Workspace, WorkspaceMembership

router = Router(tags=["members"])

Email = text(254, min_length=1)
Cursor = text(200)


# --- schemas ---------------------------------------------------------------------------------


class WorkspaceAccessIn(Schema):
    workspace_id: text(40)
    role: RoleName


class InviteIn(Schema):
    email: Email
    org_role: RoleName = "member"
    workspace_access: list[WorkspaceAccessIn] = Field(default_factory=list, max_length=100)


class MemberUpdateIn(Schema):
    org_role: RoleName | None = None
    workspace_access: list[WorkspaceAccessIn] | None = Field(
        None,
        max_length=100,
        description="The member's complete access to the organization's workspaces: listed "
        "grants are created or changed, unlisted ones revoked.",
    )


class WorkspaceAccessOut(Schema):
    workspace_id: str
    workspace_name: str
    role: RoleName
    source: Literal["direct", "org"]


class MemberOut(Schema):
    id: str
    email: str
    name: str
    org_role: RoleName
    joined_at: datetime
    last_active_at: datetime | None
    suspended_at: datetime | None = None
    workspace_count: int
    workspace_access: list[WorkspaceAccessOut]


class MemberPage(Page):
    items: list[MemberOut]


class GrantOut(Schema):
    workspace_id: str
    workspace_name: str
    role: RoleName


class InvitationOut(Schema):
    id: str
    email: str
    org_role: RoleName
    status: Literal["pending", "accepted", "revoked", "expired"]
    delivery_state: Literal["queued", "sent", "failed"]
    delivery_attempts: int
    invited_by: str | None
    created_at: datetime
    expires_at: datetime
    workspace_access: list[GrantOut]


class InvitationPage(Page):
    items: list[InvitationOut]


# --- serialisation ---------------------------------------------------------------------------


def _access_by_user(org: Organization, user_ids) -> dict[int, list[dict]]:
    """Every listed member's grants in the org's workspaces, in one query."""
    access: dict[int, list[dict]] = {uid: [] for uid in user_ids}
    rows = (
        WorkspaceMembership.objects.filter(user_id__in=list(user_ids), workspace__organization=org)
        .select_related("workspace")
        .order_by("workspace__name", "workspace_id")
    )
    for m in rows:
        access[m.user_id].append(
            {
                "workspace_id": m.workspace.public_id,
                "workspace_name": m.workspace.name,
                "role": Role(m.role).label,
                "source": m.source,
            }
        )
    return access


def _members_out(org: Organization, memberships: list[OrgMembership]) -> list[dict]:
    access = _access_by_user(org, [m.user_id for m in memberships])
    return [
        {
            "id": m.public_id,
            "email": m.user.email,
            "name": m.user.full_name,
            "org_role": Role(m.role).label,
            "joined_at": m.joined_at,
            "last_active_at": m.user.last_active_at,
            "suspended_at": m.suspended_at,
            "workspace_count": len(access[m.user_id]),
            "workspace_access": access[m.user_id],
        }
        for m in memberships
    ]


def _invitations_out(rows: list[Invitation]) -> list[dict]:
    return [
        {
            "id": inv.public_id,
            "email": inv.email,
            "org_role": Role(inv.org_role).label,
            "status": inv.status,
            "delivery_state": inv.delivery_state,
            "delivery_attempts": inv.delivery_attempts,
            "invited_by": inv.invited_by.email if inv.invited_by else None,
            "created_at": inv.created_at,
            "expires_at": inv.expires_at,
            "workspace_access": [
                {
                    "workspace_id": g.workspace.public_id,
                    "workspace_name": g.workspace.name,
                    "role": Role(g.role).label,
                }
                for g in sorted(inv.grants.all(), key=lambda g: g.workspace.name)
            ],
        }
        for inv in rows
    ]


def _invitation_out(org: Organization, inv: Invitation) -> dict:
    fresh = (
        Invitation.objects.filter(organization=org, pk=inv.pk)
        .select_related("invited_by")
        .prefetch_related("grants__workspace")
        .get()
    )
    return _invitations_out([fresh])[0]


def _grants(org: Organization, access: list[WorkspaceAccessIn]) -> dict[int, Role]:
    """workspace_access → {workspace pk: role}; every id must be a workspace linked to the org."""
    linked = dict(Workspace.objects.filter(organization=org).values_list("public_id", "pk"))
    grants: dict[int, Role] = {}
    problems: dict[str, str] = {}
    for i, item in enumerate(access):
        pk = linked.get(item.workspace_id)
        if pk is None:
            problems[f"workspace_access.{i}.workspace_id"] = (
                f"{item.workspace_id} is not a workspace linked to this organization."
            )
        elif pk in grants:
            problems[f"workspace_access.{i}.workspace_id"] = "This workspace is listed twice."
        else:
            grants[pk] = Role.from_name(item.role)
    if problems:
        raise ValidationFailed(
            "Access can only be given to workspaces linked to this organization.",
            fields=problems,
        )
    return grants


def _membership(org: Organization, member_id: str) -> OrgMembership:
    return member_for_viewer(org, public_id_or_none(member_id, "mem") or "")


def _invitation(org: Organization, invitation_id: str) -> Invitation:
    public_id = public_id_or_none(invitation_id, "inv")
    if public_id is None:
        raise NotFound("No such invitation.")
    return invitations.get_invitation(org, public_id)


# --- members ---------------------------------------------------------------------------------


@router.get("/{org_id}/members", response={200: MemberPage, **errors(404)}, summary="List members")
def list_members(
    request,
    org_id: str,
    role: RoleName | None = None,
    workspace: text(40) | None = Query(None, description="Only members with access to this ws_ id"),
    q: text(100) | None = Query(None, description="Search name or email"),
    status: Literal["active", "suspended"] | None = None,
    limit: int = Query(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT),
    cursor: Cursor | None = None,
):
    """The member directory (every member may read it), oldest member first."""
    org, _ = org_of(request, org_id)
    query = DirectoryQuery(
        q=(q or "").strip(), role=role or "", workspace=workspace or "", status=status or ""
    )
    return on_replica(
        request,
        lambda: paginate(
            request,
            directory_members(org, query),
            order=("joined_at", "pk"),
            limit=limit,
            cursor=cursor,
            serialize=lambda rows: _members_out(org, rows),
        ),
    )


@router.post(
    "/{org_id}/members/invite",
    response={201: InvitationOut, **errors(400, 403, 404, 409)},
    summary="Invite a member",
)
def invite_member(request, org_id: str, payload: InviteIn):
    """Invite one email with an org role and workspace grants; the email goes out after commit."""
    throttle_invitations(request)
    org, role = org_of(request, org_id)
    require_org(role, OrgCapability.MANAGE_MEMBERS)  # 403 before revealing which ids are linked
    (invitation,) = invitations.member_invite(
        actor=request.user,
        org=org,
        emails=[payload.email],
        org_role=Role.from_name(payload.org_role),
        grants=_grants(org, payload.workspace_access),
    )
    return 201, _invitation_out(org, invitation)


@router.put(
    "/{org_id}/members/{member_id}",
    response={200: MemberOut, **errors(400, 403, 404, 409)},
    summary="Change a member's role and workspace access",
)
def update_member(request, org_id: str, member_id: str, payload: MemberUpdateIn):
    """`org_role` changes the org role; `workspace_access` sets the complete access to the
    org's workspaces. Both happen in one transaction: either everything changes or nothing."""
    org, _ = org_of(request, org_id)
    membership = _membership(org, member_id)
    with transaction.atomic():
        if payload.org_role is not None:
            membership = services.member_change_role(
                actor=request.user,
                org=org,
                membership=membership,
                role=Role.from_name(payload.org_role),
            )
        if payload.workspace_access is not None:
            services.member_set_workspace_access(
                actor=request.user,
                org=org,
                membership=membership,
                access=_grants(org, payload.workspace_access),
                complete=True,
            )
    return _members_out(org, [_membership(org, member_id)])[0]


@router.delete(
    "/{org_id}/members/{member_id}",
    response={204: None, **errors(403, 404, 409)},
    summary="Remove a member",
)
def remove_member(request, org_id: str, member_id: str):
    """Removes the org membership and every membership in the org's workspaces."""
    org, _ = org_of(request, org_id)
    services.member_remove(actor=request.user, org=org, membership=_membership(org, member_id))
    return 204, None


# --- invitations -----------------------------------------------------------------------------


@router.get(
    "/{org_id}/invitations",
    response={200: InvitationPage, **errors(403, 404)},
    summary="List pending invitations",
)
def list_invitations(
    request,
    org_id: str,
    limit: int = Query(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT),
    cursor: Cursor | None = None,
):
    """Pending invitations (expired ones included, so they can be resent), newest first."""
    org, role = org_of(request, org_id)
    require_org(role, OrgCapability.VIEW_INVITATIONS)
    return paginate(
        request,
        pending_invitations(org),
        order=("-created_at", "-pk"),
        limit=limit,
        cursor=cursor,
        serialize=_invitations_out,
    )


@router.post(
    "/{org_id}/invitations/{invitation_id}/resend",
    response={200: InvitationOut, **errors(403, 404, 409)},
    summary="Resend an invitation",
)
def resend_invitation(request, org_id: str, invitation_id: str):
    """A fresh link, valid as long as a new invitation's (expired invitations too); the old link
    stops working."""
    throttle_invitations(request)
    org, _ = org_of(request, org_id)
    invitation, _raw = invitations.invitation_resend(
        actor=request.user, invitation=_invitation(org, invitation_id)
    )
    return _invitation_out(org, invitation)


@router.delete(
    "/{org_id}/invitations/{invitation_id}",
    response={204: None, **errors(403, 404, 409)},
    summary="Revoke an invitation",
)
def revoke_invitation(request, org_id: str, invitation_id: str):
    org, _ = org_of(request, org_id)
    invitations.invitation_revoke(actor=request.user, invitation=_invitation(org, invitation_id))
    return 204, None
