"""Bulk actions on members and invitations, through the same services as one-at-a-time.

The preview is a dry run: each change is made by its service inside a savepoint that is then
rolled back (audit events, locks' effects and on-commit side effects go with it), so what the
preview says — the change, or the refusal and its reason — is exactly what confirming does
unless someone changes the org in between. Confirming runs each change in its own
transaction: one refusal does not undo the others, and every row reports its own outcome.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction

from config.errors import DomainError
from config.roles import Role
from members.invitations import invitation_resend, invitation_revoke
from members.models import Invitation, OrgMembership
from members.services import member_change_role, member_remove, member_set_workspace_access
from workspaces.models import Workspace, WorkspaceMembership

MEMBER_ACTIONS = {
    "role": "Change organization role",
    "grant": "Grant or change workspace access",
    "revoke": "Revoke workspace access",
    "remove": "Remove from the organization",
}
INVITATION_ACTIONS = {"resend": "Resend", "revoke": "Revoke"}
MAX_BULK = 200


@dataclass
class BulkRow:
    label: str  # who or which address
    change: str  # what the action does to this row
    ok: bool = True
    message: str = ""  # the refusal, or what happened


class _DryRun(Exception):
    pass


def _dry_run(change) -> str | None:
    """Run change() and roll it back; None when it would succeed, else the refusal."""
    try:
        with transaction.atomic():
            change()
            raise _DryRun
    except _DryRun:
        return None
    except DomainError as exc:
        return exc.message


def _run(change) -> str | None:
    try:
        change()
    except DomainError as exc:
        return exc.message
    return None


def _member_change(
    *, actor, org, membership: OrgMembership, action: str, role, workspace
) -> tuple[str, Callable[[], object]]:
    """(what this does to the member, the service call that does it)."""
    name = membership.user.display_name
    if action == "role":
        old = Role(membership.role)
        text = f"{old.title} → {role.title}" if old != role else f"stays {old.title} (no change)"
        return text, lambda: member_change_role(
            actor=actor, org=org, membership=membership, role=role
        )
    if action in ("grant", "revoke"):
        held = (
            WorkspaceMembership.objects.filter(workspace=workspace, user_id=membership.user_id)
            .values_list("role", flat=True)
            .first()
        )
        if action == "grant":
            if held is None:
                text = f"gets {role.label} access to {workspace.name}"
            elif held == role:
                text = f"keeps {role.label} access to {workspace.name} (no change)"
            else:
                text = f"{Role(held).label} → {role.label} in {workspace.name}"
        else:
            text = (
                f"loses {Role(held).label} access to {workspace.name}"
                if held is not None
                else f"has no access to {workspace.name} (no change)"
            )
        target = role if action == "grant" else None
        return text, lambda: member_set_workspace_access(
            actor=actor, org=org, membership=membership, access={workspace.pk: target}
        )
    # remove
    lost = list(
        WorkspaceMembership.objects.filter(
            user_id=membership.user_id, workspace__organization=org
        ).values_list("workspace__name", flat=True)
    )
    text = f"{name} leaves the organization" + (
        f" and loses access to {', '.join(sorted(lost))}" if lost else ""
    )
    return text, lambda: member_remove(actor=actor, org=org, membership=membership)


def members_bulk(
    *,
    actor,
    org,
    memberships: list[OrgMembership],
    action: str,
    role: Role | None = None,
    workspace: Workspace | None = None,
    apply: bool = False,
) -> list[BulkRow]:
    """Preview (apply=False) or apply one action to many members, one row per member."""
    rows = []
    for membership in memberships:
        text, change = _member_change(
            actor=actor,
            org=org,
            membership=membership,
            action=action,
            role=role,
            workspace=workspace,
        )
        problem = _run(change) if apply else _dry_run(change)
        rows.append(
            BulkRow(
                label=f"{membership.user.display_name} <{membership.user.email}>",
                change=text,
                ok=problem is None,
                message=problem or ("Done." if apply else ""),
            )
        )
    return rows


def invitations_bulk(
    *, actor, invitations: list[Invitation], action: str, apply: bool = False
) -> tuple[list[BulkRow], list[tuple[Invitation, str]]]:
    """Preview or resend/revoke many invitations; also returns (invitation, fresh token)
    for each resent one (for the one-time Copy link)."""
    rows, fresh = [], []
    for inv in invitations:
        if action == "resend":

            def change(inv=inv):
                fresh_inv, token = invitation_resend(actor=actor, invitation=inv)
                if apply:
                    fresh.append((fresh_inv, token))

            text = (
                f"gets a fresh {settings.INVITATION_TTL_DAYS}-day link; the previous one stops "
                "working"
            )
        else:

            def change(inv=inv):
                invitation_revoke(actor=actor, invitation=inv)

            text = "is revoked; its link stops working"
        problem = _run(change) if apply else _dry_run(change)
        rows.append(
            BulkRow(
                label=inv.email,
                change=text,
                ok=problem is None,
                message=problem or ("Done." if apply else ""),
            )
        )
    return rows, fresh
