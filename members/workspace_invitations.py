"""Adding a person from inside a workspace: always by emailed invitation.

Two rules meet here (docs: README "Security model"):
- no response reveals whether an account exists for an email address, so the page says
  "invitation sent" whoever the address belongs to, and nobody gains access without the
  link that was mailed to that address;
- inside a workspace linked to an organization, every way in obeys the org's policies
  (allowed domains, seats, invitation rate limits; required 2FA applies on use), so the
  invitation is an org Invitation (org role member) whose grant on this workspace is
  *direct* — the access was given inside the workspace and survives an unlink.

Lock order as everywhere: organization row → invitation row → workspace row → memberships.
"""

from __future__ import annotations

from datetime import timedelta
from functools import partial

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import EmailMultiAlternatives
from django.core.validators import validate_email
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone

from audit.services import record
from billing.limits import check_member_limit
from config.errors import Conflict, NotFound, PermissionDenied, RateLimited, ValidationFailed
from config.roles import Role
from members.invitations import (
    DELIVERY_GRACE,
    _expire_stale,
    _reset_delivery,
    check_invite_rate,
    new_token,
    queue_invitation_email,
)
from members.models import (
    Invitation,
    InvitationGrant,
    OrgMembership,
    User,
    WorkspaceInvitation,
    normalize_email,
)
from members.tokens import hash_token
from members.verification import email_verified_by_token, is_verified
from orgs.governance import check_invite_email_allowed
from workspaces.models import Workspace, WorkspaceMembership
from workspaces.permissions import WorkspaceCapability, require_workspace, workspace_role_of
from workspaces.services import lock_workspace

DIRECT = WorkspaceMembership.Source.DIRECT


def _clean_email(email: str) -> str:
    email = normalize_email(email)
    try:
        validate_email(email)
    except ValidationError:
        raise ValidationFailed(
            f"{email or 'That'} is not a valid email address.",
            fields={"email": "Enter a valid email address."},
        ) from None
    return email


def _require_inviter_rights(actor: User, workspace: Workspace, role: Role) -> None:
    """Admins invite below owner; handing out the owner role needs a workspace owner."""
    actor_role = workspace_role_of(actor, workspace)
    require_workspace(actor_role, workspace, WorkspaceCapability.VIEW)
    capability = (
        WorkspaceCapability.MANAGE_OWNERS
        if role == Role.OWNER
        else WorkspaceCapability.MANAGE_MEMBERS
    )
    require_workspace(actor_role, workspace, capability)


@transaction.atomic
def workspace_member_invite(
    *, actor: User, workspace: Workspace, email: str, role: Role
) -> Invitation | WorkspaceInvitation:
    """Invite `email` into the workspace with `role`; the outcome is the same whether or not an
    account uses the address. The returned invitation carries `.token` (never stored)."""
    from orgs.services import lock_org

    try:
        role = Role(int(role))
    except (TypeError, ValueError):
        raise ValidationFailed(
            "Choose member, admin or owner.", fields={"role": "Choose a role."}
        ) from None
    current = Workspace.objects.filter(pk=workspace.pk).select_related("organization").first()
    if current is None:
        raise NotFound("No such workspace.")
    org = lock_org(current.organization) if current.organization else None
    workspace = lock_workspace(current)
    if workspace.organization_id != (org.pk if org else None):
        raise Conflict(
            f"{workspace.name} was just linked or unlinked; try again.", code="workspace_changed"
        )
    _require_inviter_rights(actor, workspace, role)
    email = _clean_email(email)
    if WorkspaceMembership.objects.filter(workspace=workspace, user__email=email).exists():
        # The members list shows this to the inviter already: nothing new is revealed.
        raise Conflict(f"{email} is already a member of {workspace.name}.", code="already_member")
    if org is None:
        return _invite_standalone(actor=actor, workspace=workspace, email=email, role=role)
    return _invite_linked(actor=actor, org=org, workspace=workspace, email=email, role=role)


def _invite_linked(*, actor, org, workspace, email, role) -> Invitation:
    check_invite_email_allowed(org.pk, email)
    _expire_stale(org, [email])
    now = timezone.now()
    pending = (
        Invitation.objects.select_for_update(of=("self",))
        .filter(organization=org, email=email, status=Invitation.Status.PENDING)
        .first()
    )
    if pending is not None:
        # One pending invitation per address: add this workspace to it and mail a fresh link,
        # so the invitee's single link carries every grant (it is still one seat).
        grant = InvitationGrant.objects.filter(invitation=pending, workspace=workspace).first()
        if grant is None:
            InvitationGrant.objects.create(
                invitation=pending, workspace=workspace, role=role, source=DIRECT
            )
        elif grant.role < role:  # never lowers what the pending invitation already gives
            grant.role = role
            grant.save(update_fields=["role"])
        raw = _reset_delivery(pending, now=now)
        pending.expires_at = now + timedelta(days=settings.INVITATION_TTL_DAYS)
        pending.save()
        record(
            actor=actor,
            action="member.invite_resent",
            organization=org,
            workspace=workspace,
            target=pending,
            target_label=email,
            details={
                "invitation": pending.public_id,
                "expires_at": pending.expires_at.isoformat(),
                "workspace_access": [
                    {"workspace_id": workspace.public_id, "role": role.label, "source": DIRECT}
                ],
            },
        )
        transaction.on_commit(partial(queue_invitation_email, pending.pk, raw))
        pending.token = raw
        return pending
    if not OrgMembership.objects.filter(organization=org, user__email=email).exists():
        check_member_limit(org, adding=1)
    check_invite_rate(org=org, actor=actor, adding=1)
    raw, digest = new_token()
    inv = Invitation.objects.create(
        organization=org,
        email=email,
        org_role=Role.MEMBER,
        invited_by=actor,
        token_hash=digest,
        created_at=now,
        expires_at=now + timedelta(days=settings.INVITATION_TTL_DAYS),
        next_attempt_at=now + DELIVERY_GRACE,
    )
    InvitationGrant.objects.create(invitation=inv, workspace=workspace, role=role, source=DIRECT)
    record(
        actor=actor,
        action="member.invited",
        organization=org,
        workspace=workspace,
        target=inv,
        target_label=email,
        details={
            "email": email,
            "role": Role.MEMBER.label,
            "invitation": inv.public_id,
            "workspace_access": [
                {
                    "workspace": workspace.name,
                    "workspace_id": workspace.public_id,
                    "role": role.label,
                    "source": DIRECT,
                }
            ],
            "expires_at": inv.expires_at.isoformat(),
        },
    )
    transaction.on_commit(partial(queue_invitation_email, inv.pk, raw))
    inv.token = raw
    return inv


def _check_standalone_rate(actor: User, now) -> None:
    """The per-inviter hourly limit covers these emails too (org invitations included)."""
    limit = settings.INVITES_PER_INVITER_PER_HOUR
    since = now - timedelta(hours=1)
    sent = (
        WorkspaceInvitation.objects.filter(invited_by=actor, created_at__gt=since).count()
        + Invitation.objects.filter(invited_by=actor, created_at__gt=since).count()
    )
    if sent >= limit:
        raise RateLimited(
            f"You can send {limit} invitations per hour and have sent {sent}. Try again later.",
            retry_after=3600,
            code="invite_rate_limited",
        )


def _invite_standalone(*, actor, workspace, email, role) -> WorkspaceInvitation:
    now = timezone.now()
    _check_standalone_rate(actor, now)
    # A newer invitation replaces the older ones: only the latest mailed link works.
    WorkspaceInvitation.objects.filter(
        workspace=workspace, email=email, status=WorkspaceInvitation.Status.PENDING
    ).delete()
    raw, digest = new_token()
    inv = WorkspaceInvitation.objects.create(
        workspace=workspace,
        email=email,
        role=role,
        invited_by=actor,
        token_hash=digest,
        created_at=now,
        expires_at=now + timedelta(days=settings.INVITATION_TTL_DAYS),
    )
    record(
        actor=actor,
        action="member.invited",
        workspace=workspace,
        target=inv,
        target_label=email,
        details={
            "email": email,
            "invitation": inv.public_id,
            "workspace_access": [
                {"workspace_id": workspace.public_id, "role": role.label, "source": DIRECT}
            ],
            "expires_at": inv.expires_at.isoformat(),
        },
    )
    transaction.on_commit(partial(send_workspace_invitation, inv.pk, raw))
    inv.token = raw
    return inv


def workspace_invitation_link(token: str) -> str:
    return f"{settings.SITE_URL}/join/{token}/"


def send_workspace_invitation(invitation_id: int, token: str) -> None:
    """Mail the link (on commit). A failure leaves the invitation for the inviter to redo."""
    inv = (
        WorkspaceInvitation.objects.select_related("workspace", "invited_by")
        .filter(pk=invitation_id)
        .first()
    )
    if inv is None:
        return
    ctx = {
        "workspace": inv.workspace.name,
        "inviter": inv.invited_by.display_name,
        "role": Role(inv.role).label,
        "link": workspace_invitation_link(token),
        "expires_at": inv.expires_at,
        "email": inv.email,
    }
    message = EmailMultiAlternatives(
        subject=f"{ctx['inviter']} invited you to {ctx['workspace']} on SignalSmith",
        body=render_to_string("emails/workspace_invitation.txt", ctx),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[inv.email],
    )
    message.send(fail_silently=True)


def workspace_invitation_by_token(token: str) -> WorkspaceInvitation:
    inv = (
        WorkspaceInvitation.objects.select_related("workspace", "invited_by")
        .filter(token_hash=hash_token(token), status=WorkspaceInvitation.Status.PENDING)
        .first()
    )
    if inv is None or inv.expires_at <= timezone.now():
        raise NotFound(
            "This invitation link is not valid: it may have expired, been used, or been "
            "replaced by a newer one. Ask the person who invited you to invite you again."
        )
    return inv


@transaction.atomic
def workspace_invitation_accept(*, user: User, token: str) -> WorkspaceMembership:
    """Join the workspace directly, if the inviter still holds the right to give that role."""
    found = workspace_invitation_by_token(token)
    workspace = lock_workspace(found.workspace)
    inv = (
        WorkspaceInvitation.objects.select_for_update()
        .filter(pk=found.pk, status=WorkspaceInvitation.Status.PENDING)
        .first()
    )
    if inv is None:
        raise NotFound("This invitation was used a moment ago.")
    if normalize_email(user.email) != inv.email:
        raise PermissionDenied(
            f"This invitation is for {inv.email}, but you are signed in as {user.email}.",
            code="invitation_wrong_email",
        )
    if workspace.organization_id:
        raise Conflict(
            f"{workspace.name} has joined an organization since you were invited; its "
            "policies now apply. Ask an admin to invite you again.",
            code="workspace_linked_since",
        )
    role = Role(inv.role)
    # The inviter's right is checked again: someone demoted or removed since cannot still
    # hand out access through a link they sent earlier (invariant 6).
    try:
        _require_inviter_rights(inv.invited_by, workspace, role)
    except (NotFound, PermissionDenied):
        raise PermissionDenied(
            f"{inv.invited_by.display_name} can no longer give access to {workspace.name}. "
            "Ask a current admin to invite you again.",
            code="inviter_lost_rights",
        ) from None
    if WorkspaceMembership.objects.filter(user=user, workspace=workspace).exists():
        raise Conflict(f"You are already a member of {workspace.name}.", code="already_member")
    inv.status = WorkspaceInvitation.Status.ACCEPTED
    inv.save(update_fields=["status"])
    membership = WorkspaceMembership.objects.create(
        user=user, workspace=workspace, role=role, source=DIRECT, granted_by=inv.invited_by
    )
    record(
        actor=user,
        action="member.access_granted",
        workspace=workspace,
        target=user,
        details={
            "role": role.label,
            "source": DIRECT,
            "invitation": inv.public_id,
            "invited_by": inv.invited_by.display_name,
        },
    )
    if not is_verified(user):  # the link came to this address: that confirms it
        email_verified_by_token(user=user, via="invitation")
    return membership
