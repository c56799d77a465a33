"""Every write on an organization: create, update, link/unlink, ownership, deletion, governance.

Lock order: organization row, then workspace rows by id, then membership rows.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.utils import timezone

from audit.services import record
from billing.limits import check_workspace_limit, default_plan
from billing.models import BillingAccount
from config.errors import Conflict, NotFound, ValidationFailed
from config.roles import Role
from config.slugs import unique_slug
from members.models import Invitation, OrgMembership, User
from orgs.models import GovernancePolicy, Organization, WorkspaceLinkPeriod, slug_validator
from orgs.permissions import OrgCapability, require_org_capability
from workspaces.models import Workspace, WorkspaceMembership
from workspaces.permissions import WorkspaceCapability, require_workspace_capability
from workspaces.services import lock_workspace, workspace_create


def _slug_taken_error(slug: str) -> ValidationFailed:
    return ValidationFailed(
        "Please correct the highlighted fields.",
        fields={"slug": f"The slug {slug} is taken; try {suggest_slug(slug)}."},
        code="slug_taken",
    )


def _save_with_unique_slug(org: Organization, *, auto: bool, **save_kwargs: Any) -> None:
    """Save `org`; a concurrent request that took the same slug first is a field error (or, for a
    generated slug, a retry with the next free one), never an IntegrityError."""
    for _ in range(5):
        try:
            with transaction.atomic():  # savepoint: the outer transaction survives the clash
                org.save(**save_kwargs)
            return
        except IntegrityError:
            if not slug_taken(org.slug, exclude_pk=org.pk):
                raise
            if not auto:
                raise _slug_taken_error(org.slug) from None
            org.slug = suggest_slug(org.name)
    raise _slug_taken_error(org.slug)


def lock_org(organization: Organization) -> Organization:
    """Lock the organization row, the first lock of the order (README "Architecture")."""
    org: Organization | None = (
        Organization.objects.select_for_update().filter(pk=organization.pk).alive().first()
    )
    if org is None:
        raise NotFound("No such organization.")
    return org


def lock_linked_workspaces(
    org: Organization, *, ids: Iterable[int] | None = None
) -> dict[int, Workspace]:
    """Lock the org's linked workspaces (only those of `ids` still linked, when given), by id.

    The second lock of the order organization → workspaces by id → memberships: call with the
    org row locked (`lock_org`), before locking any membership row. The result keeps id order."""
    qs = Workspace.objects.select_for_update().filter(organization=org)
    if ids is not None:
        qs = qs.filter(pk__in=list(ids))
    return {w.pk: w for w in qs.order_by("pk")}


def slug_taken(slug: str, *, exclude_pk: int | None = None) -> bool:
    qs = Organization.objects.alive().filter(slug=slug)
    if exclude_pk:
        qs = qs.exclude(pk=exclude_pk)
    return bool(qs.exists())


def suggest_slug(name: str) -> str:
    return unique_slug(name, slug_taken)


def clean_org_fields(
    *, name: str | None, slug: str | None, exclude_pk: int | None = None, name_required: bool
) -> tuple[str | None, str | None]:
    """Validate name and slug; raises ValidationFailed with every field error at once."""
    errors: dict[str, str] = {}
    if name is not None or name_required:
        name = (name or "").strip()
        if not name:
            errors["name"] = "Give the organization a name."
        elif len(name) > 100:
            errors["name"] = "At most 100 characters."
    if slug is not None:
        slug = slug.strip()
        try:
            slug_validator(slug)
        except ValidationError as exc:
            errors["slug"] = exc.messages[0]
        else:
            if slug_taken(slug, exclude_pk=exclude_pk):
                errors["slug"] = f"The slug {slug} is taken; try {suggest_slug(slug)}."
    if errors:
        raise ValidationFailed(
            "Please correct the highlighted fields.",
            fields=errors,
            code="slug_taken" if errors.get("slug", "").startswith("The slug") else "invalid",
        )
    return name, slug


def _link(
    *, actor: User, org: Organization, workspace: Workspace, now: datetime | None = None
) -> None:
    now = now or timezone.now()
    workspace.organization = org
    workspace.linked_at = now
    workspace.save(update_fields=["organization", "linked_at"])
    WorkspaceLinkPeriod.objects.create(organization=org, workspace=workspace, linked_at=now)
    record(actor=actor, action="workspace.linked", workspace=workspace, target=workspace)


@transaction.atomic
def org_create(
    *, actor: User, name: str, slug: str | None = None, workspace: Workspace | None = None
) -> Organization:
    """A new org owned by the actor; `workspace` (which the actor must own) becomes its first."""
    cleaned_name, slug = clean_org_fields(name=name, slug=slug or None, name_required=True)
    name = cleaned_name or name
    if workspace is not None:
        workspace = lock_workspace(workspace)
        require_workspace_capability(actor, workspace, WorkspaceCapability.LINK_TO_ORG)
        if workspace.organization_id:
            raise Conflict(
                f"{workspace.name} already belongs to an organization.", code="already_linked"
            )
    org = Organization(name=name, slug=slug or suggest_slug(name), created_by=actor)
    _save_with_unique_slug(org, auto=not slug, force_insert=True)
    OrgMembership.objects.create(user=actor, organization=org, role=Role.OWNER)
    BillingAccount.objects.create(organization=org, plan=default_plan(), billing_email=actor.email)
    record(
        actor=actor,
        action="org.created",
        organization=org,
        target=org,
        details={"name": org.name, "slug": org.slug},
    )
    if workspace is not None:
        _link(actor=actor, org=org, workspace=workspace)
    return org


@transaction.atomic
def org_update(
    *, actor: User, org: Organization, name: str | None = None, slug: str | None = None
) -> Organization:
    org = lock_org(org)
    require_org_capability(actor, org, OrgCapability.UPDATE_ORG)
    name, slug = clean_org_fields(name=name, slug=slug, exclude_pk=org.pk, name_required=False)
    before = {"name": org.name, "slug": org.slug}
    if name is not None:
        org.name = name
    if slug is not None:
        org.slug = slug
    after = {"name": org.name, "slug": org.slug}
    if before == after:
        return org
    _save_with_unique_slug(org, auto=False, update_fields=["name", "slug"])
    record(
        actor=actor,
        action="org.updated",
        organization=org,
        target=org,
        details={"before": before, "after": after},
    )
    return org


@transaction.atomic
def workspace_link(*, actor: User, org: Organization, workspace: Workspace) -> Workspace:
    """Link an existing workspace the actor owns (no annexing, no handing over what one does not hold)."""
    org = lock_org(org)
    require_org_capability(actor, org, OrgCapability.LINK_WORKSPACES)
    workspace = lock_workspace(workspace)
    require_workspace_capability(actor, workspace, WorkspaceCapability.LINK_TO_ORG)
    if workspace.organization_id == org.pk:
        raise Conflict(f"{workspace.name} is already linked to {org.name}.", code="already_linked")
    if workspace.organization_id:
        raise Conflict(
            f"{workspace.name} already belongs to another organization; it must be unlinked "
            "there first.",
            code="workspace_in_other_org",
        )
    check_workspace_limit(org)
    _link(actor=actor, org=org, workspace=workspace)
    return workspace


@transaction.atomic
def workspace_create_linked(*, actor: User, org: Organization, name: str) -> Workspace:
    """Create a new workspace inside the org, the actor its owner (org owners only)."""
    org = lock_org(org)
    require_org_capability(actor, org, OrgCapability.CREATE_DELETE_WORKSPACES)
    check_workspace_limit(org)
    workspace = workspace_create(actor=actor, name=name)
    _link(actor=actor, org=org, workspace=workspace)
    return workspace


def org_granted(workspace: Workspace) -> QuerySet[WorkspaceMembership]:
    return WorkspaceMembership.objects.filter(
        workspace=workspace, source=WorkspaceMembership.Source.ORG
    )


@transaction.atomic
def workspace_unlink(*, actor: User, org: Organization, workspace: Workspace) -> None:
    """Unlink: org-granted access to the workspace goes, direct access stays, no data is deleted."""
    org = lock_org(org)
    require_org_capability(actor, org, OrgCapability.LINK_WORKSPACES)
    workspace = lock_workspace(workspace)
    if workspace.organization_id != org.pk:
        raise NotFound("That workspace is not linked to this organization.")
    removed = list(org_granted(workspace).select_related("user"))
    direct_owners = WorkspaceMembership.objects.filter(
        workspace=workspace, role=Role.OWNER, source=WorkspaceMembership.Source.DIRECT
    ).count()
    if direct_owners == 0:
        raise Conflict(
            f"Unlinking would leave {workspace.name} without an owner: every owner has access "
            "only through the organization. Make one of them a direct owner, or give the "
            "workspace a direct owner first.",
            code="last_owner",
        )
    now = timezone.now()
    record(
        actor=actor,
        action="workspace.unlinked",
        organization=org,
        workspace=workspace,
        target=workspace,
        details={
            "access_removed": [{"user": m.user.email, "role": Role(m.role).label} for m in removed]
        },
    )
    org_granted(workspace).delete()
    WorkspaceLinkPeriod.objects.filter(workspace=workspace, unlinked_at__isnull=True).update(
        unlinked_at=now
    )
    workspace.organization = None
    workspace.linked_at = None
    workspace.save(update_fields=["organization", "linked_at"])


@transaction.atomic
def ownership_transfer(
    *, actor: User, org: Organization, to_membership: OrgMembership, step_down: bool
) -> OrgMembership:
    """Make another member an owner; the actor steps down to admin or stays owner."""
    org = lock_org(org)
    require_org_capability(actor, org, OrgCapability.MANAGE_OWNERS)
    target = (
        OrgMembership.objects.select_for_update(of=("self",))
        .select_related("user")
        .filter(pk=to_membership.pk, organization=org)
        .first()
    )
    if target is None:
        raise NotFound("No such member.")
    if target.user_id == actor.pk:
        raise Conflict("You are already an owner.", code="same_member")
    previous = Role(target.role)
    if previous == Role.OWNER and not step_down:
        raise Conflict(
            f"{target.user.display_name} is already an owner; nothing to transfer.",
            code="already_owner",
        )
    target.role = Role.OWNER
    target.save(update_fields=["role"])
    if step_down:
        OrgMembership.objects.filter(organization=org, user=actor).update(role=Role.ADMIN)
    record(
        actor=actor,
        action="org.ownership_transferred",
        organization=org,
        target=target.user,
        details={
            "from_role": previous.label,
            "to_role": "owner",
            "previous_owner_steps_down": step_down,
        },
    )
    return target


@transaction.atomic
def org_delete(*, actor: User, org: Organization, confirm_slug: str) -> None:
    """Owner only. Unlinks every workspace, converting org-granted access to direct; keeps data
    and audit events; removes memberships, invitations, policies and the billing account."""
    org = lock_org(org)
    require_org_capability(actor, org, OrgCapability.DELETE_ORG)
    if (confirm_slug or "").strip() != org.slug:
        raise ValidationFailed(
            "Type the organization's slug exactly to confirm.",
            fields={"confirm_slug": f"Type {org.slug} to confirm."},
        )
    workspaces = list(lock_linked_workspaces(org).values())
    now = timezone.now()
    converted = WorkspaceMembership.objects.filter(
        workspace__in=workspaces, source=WorkspaceMembership.Source.ORG
    ).update(source=WorkspaceMembership.Source.DIRECT)
    record(
        actor=actor,
        action="org.deleted",
        organization=org,
        target=org,
        details={
            "workspaces_unlinked": [w.public_id for w in workspaces],
            "grants_converted_to_direct": converted,
            "members": org.memberships.count(),
        },
    )
    WorkspaceLinkPeriod.objects.filter(organization=org, unlinked_at__isnull=True).update(
        unlinked_at=now
    )
    Workspace.objects.filter(organization=org).update(organization=None, linked_at=None)
    Invitation.objects.filter(organization=org).delete()
    OrgMembership.objects.filter(organization=org).delete()
    GovernancePolicy.objects.filter(organization=org).delete()
    BillingAccount.objects.filter(organization=org).delete()
    org.deleted_at = now
    org.save(update_fields=["deleted_at"])
