"""The org's roll-up rows on the days each workspace was linked to it.

Kept apart from `billing.selectors` (the usage report, which reads `orgs.selectors`) so that
plan limits, checked inside orgs' services, import no selector that imports orgs back.
"""

from __future__ import annotations

from datetime import date

from django.db.models import Exists, OuterRef, Q, QuerySet, Sum
from django.utils import timezone

from billing.models import DailyWorkspaceUsage
from orgs.models import Organization, WorkspaceLinkPeriod


def linked_that_day(org: Organization) -> Exists:
    """For a row with `workspace` and `day`: was that workspace linked to the org that day?"""
    return Exists(
        WorkspaceLinkPeriod.objects.filter(
            organization=org,
            workspace=OuterRef("workspace"),
            linked_at__date__lte=OuterRef("day"),
        ).filter(Q(unlinked_at__isnull=True) | Q(unlinked_at__date__gte=OuterRef("day")))
    )


def linked_rows(org: Organization, since: date, until: date) -> QuerySet[DailyWorkspaceUsage]:
    """DailyWorkspaceUsage rows of the range, on days the workspace was linked to the org.

    The `workspace__in` is implied by the EXISTS; it lets PostgreSQL read each of the org's
    workspaces' days through the (workspace, day) index instead of every workspace's days.
    """
    return DailyWorkspaceUsage.objects.filter(
        day__gte=since,
        day__lte=until,
        workspace__in=WorkspaceLinkPeriod.objects.filter(organization=org).values("workspace"),
    ).filter(linked_that_day(org))


def rows_synced_this_month(org: Organization, *, today: date | None = None) -> int:
    """Rows processed by the org's workspaces this calendar month (UTC), on their linked days.

    Read from the roll-ups, so it trails the raw runs by at most one roll-up interval.
    """
    today = today or timezone.now().date()
    total = linked_rows(org, today.replace(day=1), today).aggregate(n=Sum("rows_processed"))["n"]
    return total or 0
