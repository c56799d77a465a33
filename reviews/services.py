"""Access reviews: start, decide (keep / change role / revoke), complete at the due date.

Decisions change access only through the existing services (members.services for org members
when the reviewer is an org owner/admin, workspaces.services otherwise), so their checks and
audit events apply unchanged; a keep, or a grant that is gone already, records
`access_review.grant_kept` / `access_review.grant_gone`. Lock order: org, review, then what the
membership services lock.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from audit.models import AuditEvent
from audit.services import record
from config.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from config.roles import Role
from members.models import OrgMembership, User
from members.selectors import GRANT_ACTIONS
from members.services import member_set_workspace_access
from orgs.models import Organization
from orgs.permissions import OrgCapability, org_can, org_role_of, require_org
from orgs.services import lock_org
from reviews.models import AccessReview, AccessReviewer, AccessReviewItem
from workspaces.models import Workspace, WorkspaceMembership
from workspaces.services import workspace_member_change_role, workspace_member_remove

MAX_DUE = timedelta(days=366)
REMINDER_LEAD = timedelta(days=2)  # reviewers with open items are emailed this long before


def _grant_history(workspaces: list[Workspace], users) -> dict[tuple[str, int], AuditEvent]:
    """(user public id, workspace pk) → the latest event that granted or changed that access."""
    latest: dict[tuple[str, int], AuditEvent] = {}
    events = (
        AuditEvent.objects.filter(
            workspace_id__in=[w.pk for w in workspaces],
            target_type="user",
            target_id__in=[u.public_id for u in users],
            action__in=GRANT_ACTIONS,
        )
        .order_by("-occurred_at", "-id")
        .only("workspace_id", "target_id", "occurred_at", "actor_label")
    )
    for e in events:
        latest.setdefault((e.target_id, e.workspace_id), e)
    return latest


@transaction.atomic
def review_start(
    *,
    actor: User,
    org: Organization,
    name: str,
    due_at: datetime,
    unreviewed: str = AccessReview.Default.KEEP,
    workspace_ids: list[int] | None = None,
    reviewer_ids: list[int] | None = None,
) -> AccessReview:
    """Snapshot every grant in scope (the whole org, or some of its workspaces) as an item.

    Reviewers: the named org owners/admins review everything; nobody named → each workspace's
    owners review that workspace's grants."""
    org = lock_org(org)
    require_org(org_role_of(actor, org), OrgCapability.START_ACCESS_REVIEWS)
    name = (name or "").strip()
    problems = {}
    if not name or len(name) > 100:
        problems["name"] = "Give the review a name of at most 100 characters."
    now = timezone.now()
    if due_at is None or due_at <= now or due_at > now + MAX_DUE:
        problems["due_at"] = "Choose a due date in the future, within a year."
    if unreviewed not in AccessReview.Default.values:
        problems["unreviewed"] = "Choose keep or revoke."
    linked = {w.pk: w for w in Workspace.objects.filter(organization=org).order_by("pk")}
    if workspace_ids:
        if any(pk not in linked for pk in workspace_ids):
            problems["workspaces"] = "Choose workspaces linked to this organization."
        scope = [linked[pk] for pk in sorted(set(workspace_ids)) if pk in linked]
    else:
        scope = list(linked.values())
    named = []
    if reviewer_ids:
        named = list(
            OrgMembership.objects.filter(
                organization=org,
                user_id__in=reviewer_ids,
                role__gte=Role.ADMIN,
                suspended_at__isnull=True,
            ).select_related("user")
        )
        if len(named) != len(set(reviewer_ids)):
            problems["reviewers"] = "Reviewers must be owners or admins of this organization."
    grants = list(
        WorkspaceMembership.objects.filter(workspace__in=scope)
        .select_related("user", "workspace", "granted_by")
        .order_by("workspace__name", "user__email")
    )
    if not problems and not grants:
        problems["workspaces"] = "There is no access to review in these workspaces."
    if problems:
        raise ValidationFailed(next(iter(problems.values())), fields=problems)

    review = AccessReview.objects.create(
        organization=org,
        name=name,
        started_by=actor,
        due_at=due_at,
        unreviewed=unreviewed,
        whole_org=not workspace_ids,
    )
    review.workspaces.set(scope)
    history = _grant_history(scope, {g.user for g in grants})
    AccessReviewItem.objects.bulk_create(
        [
            AccessReviewItem(
                review=review,
                workspace=g.workspace,
                workspace_label=g.workspace.name,
                user=g.user,
                user_label=g.user.email,
                role=g.role,
                source=g.source,
                granted_by_label=(
                    history[(g.user.public_id, g.workspace_id)].actor_label
                    if (g.user.public_id, g.workspace_id) in history
                    else (g.granted_by.display_name if g.granted_by else "")
                ),
                granted_at=(
                    history[(g.user.public_id, g.workspace_id)].occurred_at
                    if (g.user.public_id, g.workspace_id) in history
                    else g.created_at
                ),
                last_active_at=g.user.last_active_at,
            )
            for g in grants
        ]
    )
    if named:
        rows = [AccessReviewer(review=review, user=m.user) for m in named]
    else:
        rows = [
            AccessReviewer(review=review, user_id=g.user_id, workspace=g.workspace)
            for g in grants
            if g.role == Role.OWNER
        ]
    AccessReviewer.objects.bulk_create(rows)
    record(
        actor=actor,
        action="access_review.started",
        organization=org,
        target=review,
        target_label=review.name,
        details={
            "review": review.public_id,
            "grants": len(grants),
            "workspaces": [w.public_id for w in scope],
            "reviewers": len({r.user_id for r in rows}),
            "due_at": due_at.isoformat(),
            "unreviewed": unreviewed,
        },
    )
    return review


def is_reviewer_of(user, item: AccessReviewItem) -> bool:
    return AccessReviewer.objects.filter(
        Q(workspace__isnull=True) | Q(workspace_id=item.workspace_id),
        review_id=item.review_id,
        user=user,
    ).exists()


def _lock_open_review(org: Organization, review: AccessReview) -> AccessReview:
    review = AccessReview.objects.select_for_update().filter(pk=review.pk, organization=org).first()
    if review is None:
        raise NotFound("No such access review.")
    if review.status != AccessReview.Status.OPEN:
        raise Conflict("This access review is finished; its decisions are final.", code="closed")
    return review


def _apply(*, actor, org, item: AccessReviewItem, revoke: bool, role: Role | None) -> str:
    """Change or revoke the grant through the existing services; returns the outcome."""
    current = (
        WorkspaceMembership.objects.filter(
            user_id=item.user_id, workspace_id=item.workspace_id, workspace__organization=org
        )
        .select_related("workspace", "user")
        .first()
    )
    if current is None:
        return ""  # gone already: the caller records that
    membership = OrgMembership.objects.filter(organization=org, user_id=item.user_id).first()
    if membership is not None and org_can(org_role_of(actor, org), OrgCapability.MANAGE_MEMBERS):
        member_set_workspace_access(
            actor=actor,
            org=org,
            membership=membership,
            access={current.workspace_id: None if revoke else role},
        )
    elif revoke:
        workspace_member_remove(actor=actor, membership=current)
    else:
        workspace_member_change_role(actor=actor, membership=current, role=role)
    return "revoked" if revoke else f"role changed from {Role(current.role).label} to {role.label}"


@transaction.atomic
def review_decide(
    *,
    actor: User,
    org: Organization,
    review: AccessReview,
    item_id: str,
    decision: str,
    new_role: Role | None = None,
) -> AccessReviewItem:
    """One reviewer's decision on one grant, applied at once (audited by the service used)."""
    org = lock_org(org)
    require_org(org_role_of(actor, org), OrgCapability.REVIEW_ACCESS)
    review = _lock_open_review(org, review)
    item = (
        AccessReviewItem.objects.select_for_update()
        .filter(review=review, public_id=(item_id or "").strip())
        .first()
    )
    if item is None:
        raise NotFound("No such grant in this review.")
    if not is_reviewer_of(actor, item):
        raise PermissionDenied(
            f"You are not a reviewer of {item.workspace_label} in this access review.",
            code="not_reviewer",
        )
    if item.decision:
        raise Conflict(
            f"{item.user_label} in {item.workspace_label} was decided already ({item.decision}).",
            code="already_decided",
        )
    if decision not in AccessReviewItem.Decision.values:
        raise ValidationFailed(
            "Choose keep, change role or revoke.", fields={"decision": "Not a decision."}
        )
    if decision == AccessReviewItem.Decision.CHANGE:
        if new_role is None:
            raise ValidationFailed(
                "Choose the new role.", fields={"role": "Choose member, admin or owner."}
            )
        new_role = Role(new_role)
    outcome = ""
    if decision != AccessReviewItem.Decision.KEEP:
        current_role = (
            WorkspaceMembership.objects.filter(user_id=item.user_id, workspace_id=item.workspace_id)
            .values_list("role", flat=True)
            .first()
        )
        if decision == AccessReviewItem.Decision.CHANGE and current_role == new_role:
            decision = AccessReviewItem.Decision.KEEP  # the same role: nothing to change
        else:
            outcome = _apply(
                actor=actor,
                org=org,
                item=item,
                revoke=decision == AccessReviewItem.Decision.REVOKE,
                role=new_role,
            )
    item.decision = decision
    item.new_role = new_role if decision == AccessReviewItem.Decision.CHANGE else None
    item.decided_by = actor
    item.decided_by_label = actor.email
    item.decided_at = timezone.now()
    if not outcome:
        gone = decision != AccessReviewItem.Decision.KEEP
        item.outcome = "access was already gone" if gone else "kept"
        record(
            actor=actor,
            action="access_review.grant_gone" if gone else "access_review.grant_kept",
            organization=org,
            workspace=item.workspace if item.workspace and item.workspace.organization_id else None,
            target=item.user,
            target_label=item.user_label,
            details={
                "review": review.public_id,
                "item": item.public_id,
                "role": item.role_name,
                "workspace_label": item.workspace_label,
            },
        )
    else:
        item.outcome = outcome
    item.save()
    return item


@transaction.atomic
def review_complete(
    *, org: Organization, review: AccessReview, actor: User | None = None
) -> AccessReview:
    """Finish the review: unreviewed grants are kept or revoked as chosen at the start.

    At the due date the beat task calls this without an actor; an owner may finish early.
    Revocations act as the owner who started the review (who chose them), through the same
    services, so they are refused (and reported) if that owner can no longer give them."""
    org = lock_org(org)
    if actor is not None:
        require_org(org_role_of(actor, org), OrgCapability.START_ACCESS_REVIEWS)
    review = _lock_open_review(org, review)
    counts = {"kept_by_default": 0, "revoked_by_default": 0, "not_revoked": 0}
    now = timezone.now()
    pending = list(
        AccessReviewItem.objects.select_for_update()
        .filter(review=review, decision="")
        .order_by("pk")
    )
    revoker = review.started_by
    for item in pending:
        item.by_default, item.decided_at = True, now
        item.decided_by_label = "due date" if actor is None else actor.email
        if review.unreviewed == AccessReview.Default.KEEP:
            item.decision, item.outcome = AccessReviewItem.Decision.KEEP, "kept (not reviewed)"
            counts["kept_by_default"] += 1
        else:
            item.decision = AccessReviewItem.Decision.REVOKE
            try:
                with transaction.atomic():
                    if revoker is None:
                        raise PermissionDenied("The owner who started the review is gone.")
                    done = _apply(actor=revoker, org=org, item=item, revoke=True, role=None)
                item.outcome = "revoked (not reviewed)" if done else "access was already gone"
                counts["revoked_by_default"] += 1
            except (PermissionDenied, Conflict, NotFound, ValidationFailed) as exc:
                item.outcome = f"not revoked: {exc.message}"[:200]
                counts["not_revoked"] += 1
        item.save()
    review.status = AccessReview.Status.COMPLETED
    review.completed_at = now
    review.save(update_fields=["status", "completed_at"])
    record(
        actor=actor,
        action="access_review.completed",
        organization=org,
        target=review,
        target_label=review.name,
        details={"review": review.public_id, "early": actor is not None, **counts},
    )
    return review


def reviews_due(now: datetime | None = None):
    return AccessReview.objects.filter(
        status=AccessReview.Status.OPEN, due_at__lte=now or timezone.now()
    ).select_related("organization")


def reviews_to_remind(now: datetime | None = None):
    now = now or timezone.now()
    return AccessReview.objects.filter(
        status=AccessReview.Status.OPEN,
        reminded_at__isnull=True,
        due_at__gt=now,
        due_at__lte=now + REMINDER_LEAD,
    ).select_related("organization")
