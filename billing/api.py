"""/api/v1/organizations/{org_id}/usage: usage across the org's workspaces, from the roll-ups."""

from datetime import date, timedelta

from django.utils import timezone
from ninja import Field, Query, Router, Schema

from billing.selectors import usage_for
from config.apikit import IsoDate, errors, parse_day
from config.dbrouter import on_replica
from orgs.api import org_of
from orgs.permissions import OrgCapability, require_org

router = Router(tags=["usage"])

DEFAULT_DAYS = 30


class DayUsageOut(Schema):
    day: date
    runs: int
    succeeded: int
    failed: int
    success_rate: float | None
    rows_processed: int
    bytes_processed: int


class TotalsOut(Schema):
    workspaces: int
    warehouses: int
    models: int
    syncs: int
    destinations: int
    active_members: int
    runs: int
    succeeded: int
    failed: int
    success_rate: float | None
    rows_processed: int
    bytes_processed: int


class LinkPeriodOut(Schema):
    linked_on: date
    unlinked_on: date | None


class WorkspaceUsageOut(Schema):
    workspace_id: str
    name: str
    linked_now: bool
    linked_days: int
    link_periods: list[LinkPeriodOut]
    warehouses: int
    models: int
    syncs: int
    destinations: int
    members: int
    active_members: int
    runs: int
    succeeded: int
    failed: int
    success_rate: float | None
    rows_processed: int
    bytes_processed: int
    daily: list[DayUsageOut]


class UsageOut(Schema):
    organization_id: str
    from_: date = Field(alias="from")
    to: date
    active_members_from: date
    active_members_to: date
    totals: TotalsOut
    workspaces: list[WorkspaceUsageOut]
    daily: list[DayUsageOut]


@router.get(
    "/{org_id}/usage",
    response={200: UsageOut, **errors(403, 404)},
    by_alias=True,
    summary="Usage",
)
def get_usage(
    request,
    org_id: str,
    from_: IsoDate | None = Query(
        None, alias="from", description="First day (default: 29 days ago)"
    ),
    to: IsoDate | None = Query(None, description="Last day, inclusive (default: today)"),
):
    """Totals, per workspace and per day (at most 366 days). Owners and admins."""
    org, role = org_of(request, org_id)
    require_org(role, OrgCapability.VIEW_USAGE_AUDIT)
    # Both days lie in config.bounds' years 2000–2100, so this arithmetic cannot overflow.
    first, last = parse_day(from_, "from"), parse_day(to, "to")
    until = last or (first + timedelta(days=DEFAULT_DAYS - 1) if first else timezone.localdate())
    since = first or until - timedelta(days=DEFAULT_DAYS - 1)
    return on_replica(request, lambda: usage_for(org, since=since, until=until).as_dict())
