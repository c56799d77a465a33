"""Plan limits, checked by the services whose action would pass them (docs/rules.md §8).

Hard limits (linked workspaces; members + pending invitations) refuse the action that would
pass them. Rows synced per month is soft: going over is reported, never blocks a sync.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.urls import reverse

from config.errors import LimitExceeded


def plan_of(organization):
    from billing.models import BillingAccount

    account = (
        BillingAccount.objects.select_related("plan").filter(organization=organization).first()
    )
    return account.plan if account else default_plan()


def default_plan():
    from billing.models import Plan

    plan = Plan.objects.filter(is_default=True).first()
    if plan is None:
        plan, _ = Plan.objects.get_or_create(
            code="free",
            defaults=dict(
                name="Free",
                monthly_price_cents=0,
                max_workspaces=5,
                max_members=25,
                max_rows_per_month=1_000_000,
                is_default=True,
            ),
        )
    return plan


def billing_url(organization) -> str:
    return reverse("billing:overview", args=[organization.slug])


def _billing_hint(organization) -> str:
    return f" Upgrade the plan in Billing ({billing_url(organization)})."


def _limit_error(organization, message: str, code: str) -> LimitExceeded:
    exc = LimitExceeded(message + _billing_hint(organization), code=code)
    exc.billing_url = billing_url(organization)  # pages render it as a link (error.html)
    return exc


# --- usage ---------------------------------------------------------------------------------


def rows_synced_this_month(organization) -> int:
    """Rows synced since the 1st, over the org's workspaces on their linked days (roll-ups)."""
    from billing.linked_rows import rows_synced_this_month as from_rollups

    return int(from_rollups(organization) or 0)


def member_usage(organization) -> tuple[int, int]:
    """(members, pending invitations): both count against the member limit."""
    from members.models import Invitation

    members = organization.memberships.count()
    pending = Invitation.objects.filter(
        organization=organization, status=Invitation.Status.PENDING
    ).count()
    return members, pending


@dataclass(frozen=True)
class Usage:
    workspaces: int
    members: int
    pending_invitations: int
    rows_this_month: int

    @property
    def seats(self) -> int:
        return self.members + self.pending_invitations


def usage_of(organization) -> Usage:
    members, pending = member_usage(organization)
    return Usage(
        workspaces=organization.workspaces.count(),
        members=members,
        pending_invitations=pending,
        rows_this_month=rows_synced_this_month(organization),
    )


@dataclass(frozen=True)
class LimitUse:
    """One limit of a plan against current usage, for the page's bars and the plan preview."""

    key: str
    label: str
    used: int
    limit: int
    hard: bool

    @property
    def over(self) -> bool:
        return self.used > self.limit

    @property
    def percent(self) -> int:
        if self.limit <= 0:
            return 100
        return min(100, round(self.used * 100 / self.limit))


def limits_against(plan, usage: Usage) -> list[LimitUse]:
    return [
        LimitUse("workspaces", "Linked workspaces", usage.workspaces, plan.max_workspaces, True),
        LimitUse("members", "Members and pending invitations", usage.seats, plan.max_members, True),
        LimitUse(
            "rows", "Rows synced this month", usage.rows_this_month, plan.max_rows_per_month, False
        ),
    ]


def rows_over_plan_message(organization, plan=None, usage: Usage | None = None) -> str | None:
    """A warning when this month's rows pass the plan (reported, never blocking), else None."""
    plan = plan or plan_of(organization)
    rows = usage.rows_this_month if usage else rows_synced_this_month(organization)
    if rows <= plan.max_rows_per_month:
        return None
    return (
        f"This month's syncs have processed {rows:,} rows, over the {plan.name} plan's "
        f"{plan.max_rows_per_month:,} rows per month. Syncs keep running; upgrade the plan "
        "in Billing to stay within it."
    )


# --- hard limits ---------------------------------------------------------------------------


def check_workspace_limit(organization, *, adding: int = 1) -> None:
    plan = plan_of(organization)
    linked = organization.workspaces.count()
    if linked + adding > plan.max_workspaces:
        raise _limit_error(
            organization,
            f"The {plan.name} plan allows {plan.max_workspaces} linked workspaces; "
            f"this organization has {linked}.",
            "plan_limit_workspaces",
        )


def check_member_limit(organization, *, adding: int = 1) -> None:
    """Members plus pending invitations may not pass the plan's member limit."""
    plan = plan_of(organization)
    members, pending = member_usage(organization)
    if members + pending + adding > plan.max_members:
        raise _limit_error(
            organization,
            f"The {plan.name} plan allows {plan.max_members} members; this organization has "
            f"{members} members and {pending} pending invitations.",
            "plan_limit_members",
        )
