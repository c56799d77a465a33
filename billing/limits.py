"""Plan limits, checked by the services whose action would pass them (SPEC §8)."""

from __future__ import annotations

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


def _billing_hint(organization) -> str:
    return (
        f" Upgrade the plan in Billing ({reverse('billing:overview', args=[organization.slug])})."
    )


def check_workspace_limit(organization, *, adding: int = 1) -> None:
    plan = plan_of(organization)
    linked = organization.workspaces.count()
    if linked + adding > plan.max_workspaces:
        raise LimitExceeded(
            f"The {plan.name} plan allows {plan.max_workspaces} linked workspaces; "
            f"this organization has {linked}." + _billing_hint(organization),
            code="plan_limit_workspaces",
        )


def check_member_limit(organization, *, adding: int = 1) -> None:
    """Members plus pending invitations may not pass the plan's member limit."""
    from members.models import Invitation

    plan = plan_of(organization)
    members = organization.memberships.count()
    pending = Invitation.objects.filter(
        organization=organization, status=Invitation.Status.PENDING
    ).count()
    if members + pending + adding > plan.max_members:
        raise LimitExceeded(
            f"The {plan.name} plan allows {plan.max_members} members; this organization has "
            f"{members} members and {pending} pending invitations." + _billing_hint(organization),
            code="plan_limit_members",
        )
