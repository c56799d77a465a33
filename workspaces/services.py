"""Every write inside a workspace: the workspace itself, its direct members, its resources, runs.

Lock order everywhere: organization row, then workspace rows (by id), then memberships.
Locking the workspace row serialises membership changes in it, which is what keeps
"at least one owner" true under concurrent requests.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.forms.models import model_to_dict
from django.utils import timezone

from audit.services import record
from config.errors import Conflict, NotFound, ValidationFailed
from config.roles import Role, require_another_owner, role_at_least
from config.slugs import unique_slug
from members.models import User
from workspaces.models import (
    DataModel,
    Destination,
    Sync,
    SyncRun,
    Warehouse,
    Workspace,
    WorkspaceMembership,
)
from workspaces.permissions import (
    WorkspaceCapability,
    require_workspace,
    require_workspace_capability,
    required_role,
    workspace_role_of,
)

# Bounds of a reported sync run (README "Input bounds"): far beyond any real run, yet a day of
# maximal runs of one workspace still sums within PostgreSQL's bigint in the usage roll-up.
SYNC_RUN_MAX_ROWS = 10**12  # a trillion rows in one run
SYNC_RUN_MAX_BYTES = 10**14  # 100 TB in one run
SYNC_RUN_MAX_AGE = timedelta(days=30)  # engines report when a run ends; a month late is a bug
SYNC_RUN_CLOCK_SKEW = timedelta(minutes=5)  # how far in the future a finish may lie

# A workspace resource: what the resource pages list and edit.
Resource = Warehouse | DataModel | Destination | Sync

RESOURCE_MODELS: dict[str, type[Resource]] = {
    "warehouse": Warehouse,
    "model": DataModel,
    "destination": Destination,
    "sync": Sync,
}
# Syncs and destinations are the resources governance can restrict further.
SYNC_KINDS = {"sync", "destination"}


def resource_kind(obj_or_model: Resource | type[Resource]) -> str:
    model = obj_or_model if isinstance(obj_or_model, type) else type(obj_or_model)
    return next(kind for kind, m in RESOURCE_MODELS.items() if m is model)


def lock_workspace(workspace: Workspace) -> Workspace:
    """Lock the workspace row (after the org row, if any: README lock order); one deleted
    meanwhile is a 404, not a crash."""
    locked: Workspace | None = Workspace.objects.select_for_update().filter(pk=workspace.pk).first()
    if locked is None:
        raise NotFound("No such workspace.")
    return locked


def workspace_slug(name: str) -> str:
    return unique_slug(name, lambda s: Workspace.objects.filter(slug=s).exists())


def validate_workspace_name(name: str) -> str:
    name = (name or "").strip()
    if not name:
        raise ValidationFailed("Give the workspace a name.", fields={"name": "Required."})
    if len(name) > 100:
        raise ValidationFailed("The name is too long.", fields={"name": "At most 100 characters."})
    return name


@transaction.atomic
def workspace_create(*, actor: User, name: str) -> Workspace:
    """A new standalone workspace, with the actor as its (direct) owner."""
    name = validate_workspace_name(name)
    workspace = Workspace.objects.create(name=name, slug=workspace_slug(name))
    WorkspaceMembership.objects.create(
        user=actor, workspace=workspace, role=Role.OWNER, granted_by=actor
    )
    record(actor=actor, action="workspace.created", workspace=workspace, target=workspace)
    return workspace


def ensure_not_last_owner(workspace: Workspace, membership: WorkspaceMembership) -> None:
    """The workspace level of invariant 2 (call with the workspace row locked)."""
    owners = WorkspaceMembership.objects.filter(workspace=workspace, role=Role.OWNER)
    require_another_owner(membership, owners=owners, place=workspace.name)


def _role_change_capability(current: Role | None, new: Role | None) -> WorkspaceCapability:
    """Admins manage members below owner; only owners touch the owner role."""
    touches_owner = current == Role.OWNER or new == Role.OWNER
    return (
        WorkspaceCapability.MANAGE_OWNERS if touches_owner else WorkspaceCapability.MANAGE_MEMBERS
    )


def _check_role_change_rights(
    actor_role: Role, current: Role | None, new: Role | None, workspace: Workspace
) -> None:
    require_workspace(actor_role, workspace, _role_change_capability(current, new))


def may_manage_member(actor_role: Role | None, target_role: Role, workspace: Workspace) -> bool:
    """Whether the services let `actor_role` change or remove a member holding `target_role`
    here (the members page asks this to offer the controls)."""
    capability = _role_change_capability(target_role, None)
    return role_at_least(actor_role, required_role(workspace, capability))


@transaction.atomic
def workspace_member_change_role(
    *, actor: User, membership: WorkspaceMembership, role: Role
) -> WorkspaceMembership:
    workspace = lock_workspace(membership.workspace)
    membership = WorkspaceMembership.objects.select_related("user").get(pk=membership.pk)
    actor_role = require_workspace(
        workspace_role_of(actor, workspace), workspace, WorkspaceCapability.VIEW
    )
    role = Role(role)
    old = Role(membership.role)
    _check_role_change_rights(actor_role, old, role, workspace)
    if old == role:
        return membership
    if old == Role.OWNER:
        ensure_not_last_owner(workspace, membership)
    membership.role = role
    membership.save(update_fields=["role", "updated_at"])
    record(
        actor=actor,
        action="member.access_changed",
        workspace=workspace,
        target=membership.user,
        details={"from_role": old.label, "to_role": role.label, "source": membership.source},
    )
    return membership


@transaction.atomic
def workspace_member_remove(*, actor: User, membership: WorkspaceMembership) -> None:
    workspace = lock_workspace(membership.workspace)
    membership = WorkspaceMembership.objects.select_related("user").get(pk=membership.pk)
    if membership.user_id != actor.pk:  # anyone may leave a workspace themselves
        actor_role = require_workspace(
            workspace_role_of(actor, workspace), workspace, WorkspaceCapability.VIEW
        )
        _check_role_change_rights(actor_role, Role(membership.role), None, workspace)
    ensure_not_last_owner(workspace, membership)
    membership.delete()
    record(
        actor=actor,
        action="member.access_revoked",
        workspace=workspace,
        target=membership.user,
        details={"role": Role(membership.role).label, "source": membership.source},
    )


# --- resources -------------------------------------------------------------------------


def _resource_capability(kind: str) -> WorkspaceCapability:
    return (
        WorkspaceCapability.WRITE_SYNCS
        if kind in SYNC_KINDS
        else WorkspaceCapability.WRITE_RESOURCES
    )


def _check_same_workspace(workspace: Workspace, data: dict) -> None:
    """Related resources (warehouse, model, destination) must belong to the same workspace."""
    for field in ("warehouse", "model", "destination"):
        related = data.get(field)
        if related is not None and related.workspace_id != workspace.pk:
            raise ValidationFailed(
                f"That {field} is not in {workspace.name}.",
                fields={field: "Not in this workspace."},
            )


def _changed(before: dict, after: dict) -> dict:
    return {
        k: {"from": before.get(k), "to": v}
        for k, v in after.items()
        if before.get(k) != v and k not in ("updated_at", "created_at")
    }


def _plain(obj: Resource) -> dict[str, Any]:
    data = model_to_dict(obj, exclude=["id", "workspace"])
    return {
        k: (v if isinstance(v, (str, int, bool, type(None))) else str(v)) for k, v in data.items()
    }


@transaction.atomic
def resource_create(
    *, actor: User, workspace: Workspace, kind: str, data: dict[str, Any]
) -> Resource:
    model = RESOURCE_MODELS[kind]
    require_workspace_capability(actor, workspace, _resource_capability(kind))
    _check_same_workspace(workspace, data)
    lock_workspace(workspace)  # serialised with deletes of the resources this one points at
    for field in ("warehouse", "model", "destination"):
        related = data.get(field)
        if related is not None and not type(related).objects.filter(pk=related.pk).exists():
            raise NotFound(f"That {field} no longer exists.")
    obj = model.objects.create(workspace=workspace, **data)
    record(
        actor=actor,
        action="resource.created",
        workspace=workspace,
        target=obj,
        details={"resource_kind": kind, "after": _plain(obj)},
    )
    return obj


def _lock_resource(obj: Resource) -> Resource:
    """Lock the workspace (which serialises its resource writes), then re-read the resource.

    Two concurrent deletes, or a delete racing a create that points at the resource, then run
    one after the other: the second sees the first's result instead of a 500 or a second event.
    """
    lock_workspace(obj.workspace)
    locked = type(obj).objects.select_for_update().filter(pk=obj.pk).first()
    if locked is None:
        raise NotFound(f"No such {resource_kind(obj)}.")
    return locked


@transaction.atomic
def resource_update(*, actor: User, obj: Resource, data: dict[str, Any]) -> Resource:
    kind = resource_kind(obj)
    workspace = obj.workspace
    require_workspace_capability(actor, workspace, _resource_capability(kind))
    _check_same_workspace(workspace, data)
    obj = _lock_resource(obj)
    before = _plain(obj)
    for field, value in data.items():
        setattr(obj, field, value)
    obj.save()
    changes = _changed(before, _plain(obj))
    if changes:
        record(
            actor=actor,
            action="resource.updated",
            workspace=workspace,
            target=obj,
            details={"resource_kind": kind, "changes": changes},
        )
    return obj


@transaction.atomic
def resource_delete(*, actor: User, obj: Resource) -> None:
    kind = resource_kind(obj)
    workspace = obj.workspace
    require_workspace_capability(actor, workspace, _resource_capability(kind))
    obj = _lock_resource(obj)
    if isinstance(obj, Warehouse):
        in_use = obj.models.exists()
    elif isinstance(obj, DataModel | Destination):
        in_use = obj.syncs.exists()
    else:
        in_use = False
    if in_use:
        raise Conflict(
            f"{obj.name} is still used by other resources; delete those first.", code="in_use"
        )
    record(
        actor=actor,
        action="resource.deleted",
        workspace=workspace,
        target=obj,
        details={"resource_kind": kind, "before": _plain(obj)},
    )
    obj.delete()


@transaction.atomic
def _check_run(
    *,
    status: str,
    started_at: datetime,
    finished_at: datetime,
    rows_processed: object,
    bytes_processed: object,
) -> None:
    """Every field error of a reported run at once (ValidationFailed, 422), or nothing."""
    fields: dict[str, str] = {}
    if status not in SyncRun.Status.values:
        fields["status"] = "succeeded or failed"
    now = timezone.now()
    if started_at < now - SYNC_RUN_MAX_AGE:
        fields["started_at"] = f"Report runs within {SYNC_RUN_MAX_AGE.days} days of their start."
    if finished_at > now + SYNC_RUN_CLOCK_SKEW:
        fields["finished_at"] = "A run cannot finish in the future."
    elif finished_at < started_at:
        fields["finished_at"] = "Before started_at."
    for name, value, ceiling in (
        ("rows_processed", rows_processed, SYNC_RUN_MAX_ROWS),
        ("bytes_processed", bytes_processed, SYNC_RUN_MAX_BYTES),
    ):
        if isinstance(value, bool) or not isinstance(value, int):
            fields[name] = "A whole number."
        elif not 0 <= value <= ceiling:
            fields[name] = f"Between 0 and {ceiling:,}."
    if fields:
        raise ValidationFailed("The run report is not valid; see `fields`.", fields=fields)


@transaction.atomic
def sync_run_record(
    *,
    actor: User | None,
    sync: Sync,
    status: str,
    started_at: datetime,
    finished_at: datetime,
    rows_processed: int = 0,
    bytes_processed: int = 0,
    error: str = "",
) -> SyncRun:
    """A finished run reported by the sync engine; members may run syncs, so members may report."""
    workspace = sync.workspace
    if actor is not None:
        require_workspace_capability(actor, workspace, WorkspaceCapability.RUN_SYNCS)
    _check_run(
        status=status,
        started_at=started_at,
        finished_at=finished_at,
        rows_processed=rows_processed,
        bytes_processed=bytes_processed,
    )
    run = SyncRun.objects.create(
        sync=sync,
        workspace=workspace,
        status=status,
        started_at=started_at,
        finished_at=finished_at,
        rows_processed=rows_processed,
        bytes_processed=bytes_processed,
        error=error,
    )
    record(
        actor=actor,
        action="sync.run_succeeded" if status == SyncRun.Status.SUCCEEDED else "sync.run_failed",
        workspace=workspace,
        target=sync,
        details={
            "run_id": run.public_id,
            "rows_processed": rows_processed,
            "bytes_processed": bytes_processed,
            "error": error[:500],
        },
    )
    return run


@transaction.atomic
def workspace_delete(*, actor: User, workspace: Workspace, confirm_name: str) -> None:
    """The only path that deletes workspace data. Workspace owners, or owners of its org."""
    from orgs.permissions import OrgCapability, org_can, org_role_of

    workspace = lock_workspace(workspace)
    ws_role = workspace_role_of(actor, workspace)
    org_ok = workspace.organization_id and org_can(
        org_role_of(actor, workspace.organization_id), OrgCapability.CREATE_DELETE_WORKSPACES
    )
    if not org_ok:
        require_workspace(ws_role, workspace, WorkspaceCapability.DELETE_WORKSPACE)
    if (confirm_name or "").strip() != workspace.name:
        raise ValidationFailed(
            "Type the workspace's name exactly to confirm.",
            fields={"confirm_name": f"Type {workspace.name} to confirm."},
        )
    record(
        actor=actor,
        action="workspace.deleted",
        workspace=workspace,
        target=workspace,
        details={"members": WorkspaceMembership.objects.filter(workspace=workspace).count()},
    )
    # Resources reference each other with PROTECT, so delete them dependants-first.
    for model in (Sync, DataModel, Destination, Warehouse):
        model.objects.filter(workspace=workspace).delete()
    workspace.delete()


def get_resource(workspace: Workspace, kind: str, public_id: str) -> Resource:
    model = RESOURCE_MODELS.get(kind)
    obj = model.objects.filter(workspace=workspace, public_id=public_id).first() if model else None
    if obj is None:
        raise NotFound(f"No such {kind}.")
    return obj
