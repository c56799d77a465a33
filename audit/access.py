"""Access at a point in time: who could enter a workspace at moment T, with which role,
replayed from the membership events.

The replay reads every event of the workspace (from whichever org, or none, it belonged to
then) plus the org-level removals that named it:
  workspace.created            → the creator is owner (direct)
  member.access_granted        → details.role (and source)
  member.access_changed        → details.to_role
  member.access_revoked        → gone
  member.joined                → details.workspace_access [{workspace_id, role}] if present
  member.removed / member.left → gone where details.access_removed names the workspace
  workspace.unlinked           → details.access_removed users are gone (org-granted access)
  org.deleted                  → org-granted access in details.workspaces_unlinked becomes direct
  workspace.deleted            → everyone is gone

Limitation: memberships that were created without an event (seeded, imported, or older than
pruned history) cannot be reconstructed. The report says so when live memberships are not
explained by the events, and when the history was pruned.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from django.db.models import Q
from django.utils import timezone

from audit.models import AuditEvent
from config.roles import Role
from members.models import User
from orgs.models import Organization, WorkspaceLinkPeriod
from workspaces.models import Workspace, WorkspaceMembership

WORKSPACE_ACTIONS = (
    "workspace.created",
    "member.access_granted",
    "member.access_changed",
    "member.access_revoked",
    "member.joined",
    "workspace.unlinked",
    "workspace.deleted",
)
ORG_REMOVALS = ("member.removed", "member.left", "scim.user_deprovisioned", "scim.user_deleted")


@dataclass
class AccessRow:
    user_id: int
    name: str
    email: str
    role: str
    source: str
    since: dt.datetime | None  # when this role was granted or last changed


@dataclass
class AccessReport:
    workspace: Workspace
    moment: dt.datetime
    linked: bool
    rows: list[AccessRow] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def reportable_workspaces(org: Organization) -> list[Workspace]:
    """Workspaces linked to the org now or at some time (existing ones: a deleted workspace's
    link periods go with it)."""
    ids = WorkspaceLinkPeriod.objects.filter(organization=org).values("workspace_id")
    return list(
        Workspace.objects.filter(Q(organization=org) | Q(pk__in=ids)).order_by("name", "pk")
    )


def linked_at(org: Organization, workspace: Workspace, moment: dt.datetime) -> bool:
    return (
        WorkspaceLinkPeriod.objects.filter(
            organization=org, workspace=workspace, linked_at__lte=moment
        )
        .filter(Q(unlinked_at__isnull=True) | Q(unlinked_at__gt=moment))
        .exists()
    )


def access_at(org: Organization, workspace: Workspace, moment: dt.datetime) -> AccessReport:
    """Who could access the workspace at `moment`. Only answered for moments when it was
    linked to this org: the org's admins may not look into its time elsewhere."""
    report = AccessReport(
        workspace=workspace, moment=moment, linked=linked_at(org, workspace, moment)
    )
    if not report.linked:
        report.notes.append(f"{workspace.name} was not linked to {org.name} at that moment.")
        return report
    state = replay(workspace, moment)
    users = User.objects.in_bulk(list(state))
    report.rows = sorted(
        (
            AccessRow(
                user_id=uid,
                name=users[uid].display_name if uid in users else "(deleted account)",
                email=users[uid].email if uid in users else "",
                role=role,
                source=source,
                since=since,
            )
            for uid, (role, source, since) in state.items()
        ),
        key=lambda r: (-Role.from_name(r.role), r.name.lower()),
    )
    report.notes.extend(_completeness_notes(workspace))
    return report


def replay(workspace: Workspace, moment: dt.datetime) -> dict[int, tuple[str, str, dt.datetime]]:
    """user pk → (role label, source, since) after every event up to and including `moment`."""
    events = _history(workspace, moment)
    by_public_id, by_email = _user_keys(events)
    state: dict[int, tuple[str, str, dt.datetime]] = {}
    ws_pid = workspace.public_id

    def user_of(public_id: str = "", email: str = "") -> int | None:
        return by_public_id.get(public_id) or by_email.get((email or "").lower())

    for e in events:
        d = e.details or {}
        target = user_of(e.target_id) if e.target_type == "user" else None
        if e.action == "workspace.created" and e.actor_user_id:
            state[e.actor_user_id] = ("owner", "direct", e.occurred_at)
        elif e.action == "member.access_granted" and target:
            state[target] = (d.get("role", "member"), d.get("source", "direct"), e.occurred_at)
        elif e.action == "member.access_changed" and target:
            source = d.get("source") or state.get(target, ("", "direct", None))[1]
            state[target] = (d.get("to_role", "member"), source, e.occurred_at)
        elif e.action == "member.access_revoked" and target:
            state.pop(target, None)
        elif e.action == "member.joined" and target:
            for grant in d.get("workspace_access") or []:
                if isinstance(grant, dict) and grant.get("workspace_id") == ws_pid:
                    state[target] = (grant.get("role", "member"), "org", e.occurred_at)
        elif e.action in ORG_REMOVALS and target:
            lost = d.get("access_removed") or []
            if any(isinstance(x, dict) and x.get("workspace_id") == ws_pid for x in lost):
                state.pop(target, None)
        elif e.action == "workspace.unlinked":
            for x in d.get("access_removed") or []:
                uid = user_of(x.get("user_id", ""), x.get("user", ""))
                if uid:
                    state.pop(uid, None)
        elif e.action == "org.deleted" and ws_pid in (d.get("workspaces_unlinked") or []):
            for uid, (role, source, since) in list(state.items()):
                if source == "org":
                    state[uid] = (role, "direct", since)
        elif e.action == "workspace.deleted":
            state.clear()
    return state


def _history(workspace: Workspace, moment: dt.datetime) -> list[AuditEvent]:
    """The workspace's own events plus org-level removals/deletions that may name it, in order."""
    own = AuditEvent.objects.filter(
        workspace_id=workspace.pk, action__in=WORKSPACE_ACTIONS, occurred_at__lte=moment
    )
    org_ids = list(
        WorkspaceLinkPeriod.objects.filter(workspace=workspace).values_list(
            "organization_id", flat=True
        )
    )
    org_level = AuditEvent.objects.filter(
        organization_id__in=org_ids,
        action__in=(*ORG_REMOVALS, "org.deleted"),
        occurred_at__lte=moment,
    )
    events = list(own) + list(org_level)
    events.sort(key=lambda e: (e.occurred_at, e.pk))
    return events


def _user_keys(events) -> tuple[dict[str, int], dict[str, int]]:
    """One query resolving every user public id and email the events mention to a user pk."""
    public_ids = {e.target_id for e in events if e.target_type == "user" and e.target_id}
    emails = set()
    for e in events:
        if e.action == "workspace.unlinked":
            for x in (e.details or {}).get("access_removed") or []:
                public_ids.add(x.get("user_id", ""))
                emails.add((x.get("user") or "").lower())
    rows = User.objects.filter(Q(public_id__in=public_ids) | Q(email__in=emails)).values_list(
        "pk", "public_id", "email"
    )
    by_public_id, by_email = {}, {}
    for pk, public_id, email in rows:
        by_public_id[public_id] = pk
        by_email[email.lower()] = pk
    return by_public_id, by_email


def live_access(workspace: Workspace) -> dict[int, str]:
    return {
        uid: Role(role).label
        for uid, role in WorkspaceMembership.objects.filter(workspace=workspace).values_list(
            "user_id", "role"
        )
    }


def _completeness_notes(workspace: Workspace) -> list[str]:
    notes = []
    now_state = replay(workspace, timezone.now())
    live = live_access(workspace)
    unexplained = {uid for uid, role in live.items() if now_state.get(uid, (None,))[0] != role} | (
        set(now_state) - set(live)
    )
    if unexplained:
        notes.append(
            f"{len(unexplained)} current membership(s) of {workspace.name} are not explained by "
            "the recorded events (created before the audit log recorded them, e.g. seeded or "
            "imported, or their history was pruned): the reconstruction cannot include them."
        )
    org_ids = WorkspaceLinkPeriod.objects.filter(workspace=workspace).values("organization_id")
    pruned = (
        AuditEvent.objects.filter(
            Q(organization_id__in=org_ids) | Q(organization__isnull=True), action="audit.pruned"
        )
        .order_by("-occurred_at")
        .first()
    )
    if pruned:
        notes.append(
            f"Events before {pruned.details.get('before', '')[:10]} were archived and removed "
            "(retention); grants older than that are not in this reconstruction."
        )
    return notes


def compare_now(workspace: Workspace) -> tuple[dict[int, str], dict[int, str]]:
    """(reconstructed now, live) as user pk → role label; equal when the log is complete."""
    state = replay(workspace, timezone.now())
    return {uid: role for uid, (role, _s, _t) in state.items()}, live_access(workspace)
