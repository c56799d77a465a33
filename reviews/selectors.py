"""Reads for access reviews, scoped to the org the viewer was admitted to."""

from __future__ import annotations

from django.db.models import Count, Q

from config.errors import NotFound
from members.models import OrgMembership
from reviews.models import AccessReview, AccessReviewer, AccessReviewItem


def reviews_of(org, viewer, *, sees_all: bool):
    """Every review for owners/admins; a reviewer sees the reviews naming them."""
    qs = AccessReview.objects.filter(organization=org)
    if not sees_all:
        qs = qs.filter(reviewers__user=viewer).distinct()
    return qs.annotate(
        total=Count("items", distinct=True),
        decided=Count("items", filter=~Q(items__decision=""), distinct=True),
    ).order_by("-started_at", "-pk")


def review_for_viewer(org, public_id: str, viewer, *, sees_all: bool) -> AccessReview:
    review = (
        AccessReview.objects.filter(organization=org, public_id=(public_id or "").strip())
        .select_related("started_by")
        .first()
    )
    if review is None or not (sees_all or review.reviewers.filter(user=viewer).exists()):
        raise NotFound("No such access review.")
    return review


def items_for_reviewer(review: AccessReview, viewer):
    """The grants this person reviews: all of them if named for the whole review, else those
    of the workspaces they were named for."""
    rows = AccessReviewer.objects.filter(review=review, user=viewer)
    if rows.filter(workspace__isnull=True).exists():
        qs = review.items.all()
    else:
        qs = review.items.filter(workspace_id__in=rows.values("workspace_id"))
    return qs.order_by("workspace_label", "user_label", "pk")


def review_reviewers(review: AccessReview) -> list[str]:
    return sorted(
        {
            f"{r.user.display_name}" + (f" ({r.workspace.name})" if r.workspace else "")
            for r in review.reviewers.select_related("user", "workspace")
        }
    )


def eligible_reviewers(org):
    return (
        OrgMembership.objects.filter(organization=org, role__gte=20, suspended_at__isnull=True)
        .select_related("user")
        .order_by("user__full_name", "user__email")
    )


def report_rows(review: AccessReview):
    return AccessReviewItem.objects.filter(review=review).order_by(
        "workspace_label", "user_label", "pk"
    )


REPORT_COLUMNS = [
    "workspace",
    "person",
    "role",
    "source",
    "granted_by",
    "granted_at",
    "last_active_at",
    "decision",
    "new_role",
    "decided_by",
    "decided_at",
    "by_default",
    "outcome",
]


def report_row(item: AccessReviewItem) -> dict:
    from config.roles import Role

    def iso(value):
        return value.isoformat() if value else ""

    return {
        "workspace": item.workspace_label,
        "person": item.user_label,
        "role": item.role_name,
        "source": item.source,
        "granted_by": item.granted_by_label,
        "granted_at": iso(item.granted_at),
        "last_active_at": iso(item.last_active_at),
        "decision": item.decision,
        "new_role": Role(item.new_role).label if item.new_role else "",
        "decided_by": item.decided_by_label,
        "decided_at": iso(item.decided_at),
        "by_default": item.by_default,
        "outcome": item.outcome,
    }
