"""Writes on org membership: roles, workspace access via the org, removal, leaving.

Invitations live in members/invitations.py. Lock order: org row, then workspace rows by id,
then membership rows — the same as orgs.services.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.db import transaction

from audit.services import record
from config.errors import Conflict, NotFound, ValidationFailed
from config.roles import Role, require_another_owner
from members.models import OrgMembership, User
from members.verification import require_verified
from orgs.governance import check_email_allowed
from orgs.models import Organization
from orgs.permissions import OrgCapability, org_can, org_role_of, require_org
from orgs.services import lock_linked_workspaces, lock_org
from workspaces.models import Workspace, WorkspaceMembership
from workspaces.services import ensure_not_last_owner


def _lock_membership(org: Organization, membership: OrgMembership) -> OrgMembership:
    locked = (
        OrgMembership.objects.select_for_update()
        .select_related("user")
        .filter(pk=membership.pk, organization=org)
        .first()
    )
    if locked is None:
        raise NotFound("No such member.")
    return locked


def _ensure_not_last_org_owner(org: Organization, membership: OrgMembership) -> None:
    """The org level of invariant 2 (call with the org row locked): a suspended owner cannot
    act, so they do not count."""
    owners = OrgMembership.objects.filter(
        organization=org, role=Role.OWNER, suspended_at__isnull=True
    )
    require_another_owner(membership, owners=owners, place=org.name)


def _member_management(target_role: Role | None, new_role: Role | None = None) -> OrgCapability:
    """Admins manage members below owner; touching the owner role needs an owner (docs/rules.md §3)."""
    touches_owner = Role.OWNER in (target_role, new_role)
    return OrgCapability.MANAGE_OWNERS if touches_owner else OrgCapability.MANAGE_MEMBERS


def require_member_management(
    actor_role: Role | None, target_role: Role | None, new_role: Role | None = None
) -> None:
    require_org(actor_role, _member_management(target_role, new_role))


def may_manage_member(actor_role: Role | None, target_role: Role) -> bool:
    """Whether the services let `actor_role` change or remove a member holding `target_role`
    (pages ask this to offer the controls)."""
    return org_can(actor_role, _member_management(target_role))


@transaction.atomic
def member_change_role(
    *, actor: User, org: Organization, membership: OrgMembership, role: Role
) -> OrgMembership:
    org = lock_org(org)
    actor_role = org_role_of(actor, org)
    require_org(actor_role, OrgCapability.VIEW)
    membership = _lock_membership(org, membership)
    old, role = Role(membership.role), Role(role)
    require_member_management(actor_role, old, role)
    if old == role:
        return membership
    if old == Role.OWNER:
        _ensure_not_last_org_owner(org, membership)
    membership.role = role
    membership.save(update_fields=["role"])
    record(
        actor=actor,
        action="member.role_changed",
        organization=org,
        target=membership.user,
        details={"from_role": old.label, "to_role": role.label, "membership": membership.public_id},
    )
    return membership


def _scim_check_hand_edit(org: Organization, user: User, **kwargs: Any) -> None:
    """SCIM-provisioned members: refuse what the identity provider would overwrite."""
    from orgs.scim.services import check_hand_edit

    check_hand_edit(org, user, **kwargs)


def workspace_grant_via_org(
    *,
    actor: User | None,
    org: Organization,
    workspace: Workspace,
    user: User,
    role: Role,
    existing: WorkspaceMembership | None,
    details: dict | None = None,
    never_lower: bool = False,
    source: str = WorkspaceMembership.Source.ORG,
) -> WorkspaceMembership:
    """Grant access via the org (call with the workspace row locked).

    An existing membership changes role but keeps its source (direct stays direct). With
    never_lower (accepting an invitation) an existing role is only ever raised.
    """
    details = details or {}
    if existing is None:
        # Gaining access to a linked workspace obeys the org's policies (invariant 7), also for
        # an existing member whose address a later policy no longer allows.
        check_email_allowed(org.pk, user.email, doing="be given access to its workspaces")
        membership = WorkspaceMembership.objects.create(
            user=user,
            workspace=workspace,
            role=role,
            granted_by=actor,
            source=source,
        )
        record(
            actor=actor,
            action="member.access_granted",
            organization=org,
            workspace=workspace,
            target=user,
            details={"role": role.label, "source": str(source), **details},
        )
        return membership
    old = Role(existing.role)
    if old == role or (never_lower and role < old):
        return existing
    ensure_not_last_owner(workspace, existing)  # only bites when `existing` is an owner
    existing.role = role
    existing.granted_by = actor
    existing.save(update_fields=["role", "granted_by", "updated_at"])
    record(
        actor=actor,
        action="member.access_changed",
        organization=org,
        workspace=workspace,
        target=user,
        details={
            "from_role": old.label,
            "to_role": role.label,
            "source": existing.source,
            **details,
        },
    )
    return existing


def _revoke(
    *, actor: User | None, org: Organization, workspace: Workspace, membership: WorkspaceMembership
) -> None:
    ensure_not_last_owner(workspace, membership)
    membership.delete()
    record(
        actor=actor,
        action="member.access_revoked",
        organization=org,
        workspace=workspace,
        target=membership.user,
        details={"role": Role(membership.role).label, "source": membership.source},
    )


@transaction.atomic
def member_set_workspace_access(
    *,
    actor: User,
    org: Organization,
    membership: OrgMembership,
    access: Mapping[int, Role | None],
    complete: bool = False,
) -> None:
    """Grant, change or revoke the member's access to linked workspaces.

    `access` maps workspace pk → role (None revokes). With complete=True it is the member's
    whole access: linked workspaces not listed are revoked (the API's PUT semantics).
    """
    org = lock_org(org)
    actor_role = org_role_of(actor, org)
    require_org(actor_role, OrgCapability.VIEW)
    linked = lock_linked_workspaces(org)
    membership = _lock_membership(org, membership)
    require_member_management(actor_role, Role(membership.role))
    unknown = [pk for pk in access if pk not in linked]
    if unknown:
        raise ValidationFailed(
            "Access can only be given to workspaces linked to this organization.",
            fields={"workspace_access": "A workspace is not linked to this organization."},
        )
    user = membership.user
    current = {
        m.workspace_id: m
        for m in WorkspaceMembership.objects.select_for_update()
        .select_related("user")
        .filter(user=user, workspace_id__in=linked)
    }
    wanted = dict(access)
    if complete:
        for ws_pk in current:
            wanted.setdefault(ws_pk, None)
    changing = [
        pk
        for pk, role in wanted.items()
        if (current[pk].role if pk in current else None) != (int(role) if role else None)
    ]
    _scim_check_hand_edit(org, user, workspaces=changing)
    for ws_pk in sorted(wanted):
        role, workspace, existing = wanted[ws_pk], linked[ws_pk], current.get(ws_pk)
        # Only owners hand out or take away workspace ownership through the org.
        if Role.OWNER in (role, existing and Role(existing.role)):
            require_org(actor_role, OrgCapability.MANAGE_OWNERS)
        if role is None:
            if existing is not None:
                _revoke(actor=actor, org=org, workspace=workspace, membership=existing)
        else:
            if existing is None and user.pk != actor.pk:
                require_verified(
                    user,
                    message=f"{user.display_name} has not confirmed their email address yet, "
                    "so they cannot be given access to workspaces.",
                )
            workspace_grant_via_org(
                actor=actor,
                org=org,
                workspace=workspace,
                user=user,
                role=Role(role),
                existing=existing,
            )


def _remove_everywhere(*, membership: OrgMembership, linked: Mapping[int, Workspace]) -> list[dict]:
    """Delete the org membership and every membership in the org's `linked` workspaces (the
    caller has locked the org, then the linked workspaces, then the org membership)."""
    workspaces = list(linked.values())
    ws_memberships = list(
        WorkspaceMembership.objects.select_for_update()
        .filter(user=membership.user, workspace__in=workspaces)
        .select_related("workspace")
    )
    for m in ws_memberships:
        m.user = membership.user
        ensure_not_last_owner(m.workspace, m)
    lost = [
        {
            "workspace": m.workspace.name,
            "workspace_id": m.workspace.public_id,
            "role": Role(m.role).label,
            "source": m.source,
        }
        for m in ws_memberships
    ]
    WorkspaceMembership.objects.filter(pk__in=[m.pk for m in ws_memberships]).delete()
    membership.delete()
    return lost


@transaction.atomic
def member_remove(*, actor: User, org: Organization, membership: OrgMembership) -> None:
    """Remove from the org and from all its linked workspaces (direct access included)."""
    org = lock_org(org)
    actor_role = org_role_of(actor, org)
    require_org(actor_role, OrgCapability.VIEW)
    linked = lock_linked_workspaces(org)  # before the membership rows (lock order)
    membership = _lock_membership(org, membership)
    if membership.user_id == actor.pk:
        raise Conflict("Use Leave organization to remove yourself.", code="use_leave")
    require_member_management(actor_role, Role(membership.role))
    _ensure_not_last_org_owner(org, membership)
    _scim_check_hand_edit(org, membership.user, removing=True)
    user = membership.user
    lost = _remove_everywhere(membership=membership, linked=linked)
    record(
        actor=actor,
        action="member.removed",
        organization=org,
        target=user,
        details={"role": Role(membership.role).label, "access_removed": lost},
    )


@transaction.atomic
def member_leave(*, actor: User, org: Organization) -> None:
    org = lock_org(org)
    linked = lock_linked_workspaces(org)  # before the membership rows (lock order)
    membership = (
        OrgMembership.objects.select_for_update()
        .select_related("user")
        .filter(organization=org, user=actor)
        .first()
    )
    if membership is None:
        raise NotFound("No such organization.")
    _ensure_not_last_org_owner(org, membership)
    _scim_check_hand_edit(org, actor, removing=True)
    lost = _remove_everywhere(membership=membership, linked=linked)
    record(
        actor=actor,
        action="member.left",
        organization=org,
        target=actor,
        details={"role": Role(membership.role).label, "access_removed": lost},
    )
