"""Every billing write: settings, plan changes, payment methods (owners only, all audited).

Lock order: organization row, then its billing account row, then payment method rows.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction

from audit.services import record
from billing.limits import default_plan, limits_against, usage_of
from billing.models import BillingAccount, PaymentMethod, Plan
from billing.providers import PaymentProvider, get_provider
from config.errors import Conflict, LimitExceeded, NotFound, PermissionDenied, ValidationFailed
from members.models import User, normalize_email
from orgs.models import Organization
from orgs.permissions import OrgCapability, require_org_capability

SETTINGS_FIELDS = ("billing_email", "company_name", "address", "tax_id")
MAX_PAYMENT_METHODS = 10


def _lock_account(actor: User, org: Organization) -> tuple[Organization, BillingAccount]:
    """Lock the org and its billing account after checking the actor may manage billing."""
    from orgs.services import lock_org

    org = lock_org(org)
    require_org_capability(actor, org, OrgCapability.MANAGE_BILLING)
    account = BillingAccount.objects.select_for_update().filter(organization=org).first()
    if account is None:  # orgs made outside org_create (fixtures, admin) get the default plan
        account = BillingAccount.objects.create(organization=org, plan=default_plan())
    return org, account


def _settings_of(account: BillingAccount) -> dict:
    return {f: getattr(account, f) for f in SETTINGS_FIELDS}


def clean_billing_settings(
    *, billing_email: str, company_name: str, address: str, tax_id: str
) -> dict:
    values = {
        "billing_email": normalize_email(billing_email),
        "company_name": (company_name or "").strip(),
        "address": (address or "").strip(),
        "tax_id": (tax_id or "").strip().upper().replace(" ", ""),
    }
    errors = {}
    if not values["billing_email"]:
        errors["billing_email"] = "Give the address invoices are sent to."
    else:
        try:
            validate_email(values["billing_email"])
        except ValidationError:
            errors["billing_email"] = "Enter a valid email address."
    for field, limit in (("company_name", 150), ("address", 1000), ("tax_id", 50)):
        if len(values[field]) > limit:
            errors[field] = f"At most {limit} characters."
    if values["tax_id"] and not all(ch.isalnum() or ch in "-./" for ch in values["tax_id"]):
        errors["tax_id"] = "Use letters, digits, dashes, dots or slashes."
    if errors:
        raise ValidationFailed("Please correct the highlighted fields.", fields=errors)
    return values


@transaction.atomic
def billing_settings_update(
    *,
    actor: User,
    org: Organization,
    billing_email: str,
    company_name: str = "",
    address: str = "",
    tax_id: str = "",
) -> BillingAccount:
    values = clean_billing_settings(
        billing_email=billing_email, company_name=company_name, address=address, tax_id=tax_id
    )
    org, account = _lock_account(actor, org)
    before = _settings_of(account)
    if before == values:
        return account
    for field, value in values.items():
        setattr(account, field, value)
    account.save(update_fields=[*SETTINGS_FIELDS, "updated_at"])
    changed = [f for f in SETTINGS_FIELDS if before[f] != values[f]]
    record(
        actor=actor,
        action="billing.settings_updated",
        organization=org,
        target=org,
        details={
            "before": {f: before[f] for f in changed},
            "after": {f: values[f] for f in changed},
        },
    )
    return account


# --- plans ---------------------------------------------------------------------------------


def get_plan(code: str) -> Plan:
    plan = Plan.objects.filter(code=(code or "").strip()).first()
    if plan is None:
        raise NotFound("No such plan.", code="unknown_plan")
    return plan


def is_sales_led(plan: Plan) -> bool:
    """A plan without a list price that is not the free default is arranged with sales."""
    return plan.monthly_price_cents == 0 and not plan.is_default


def is_upgrade(current: Plan, new: Plan) -> bool:
    """Whether `new` ranks above `current` in the catalogue's order (Plan.Meta.ordering: sort order,
    then price), so that Enterprise, priced by sales, still ranks above Business."""
    return (new.sort_order, new.monthly_price_cents) > (
        current.sort_order,
        current.monthly_price_cents,
    )


def plan_change_preview(org: Organization, plan: Plan) -> list:
    """Current usage against the new plan's limits (LimitUse rows; `over` marks a problem)."""
    return limits_against(plan, usage_of(org))


def _downgrade_refusal(current: Plan, new: Plan, rows: list) -> str | None:
    over = [r for r in rows if r.hard and r.over]
    if not over:
        return None
    parts = [
        f"{r.label.lower()}: {r.used:,} in use, the {new.name} plan allows {r.limit:,}"
        for r in over
    ]
    return (
        f"Cannot switch from {current.name} to {new.name} — current usage exceeds its limit on "
        + "; ".join(parts)
        + ". Reduce usage first (unlink workspaces, remove members or revoke invitations)."
    )


@transaction.atomic
def plan_change(*, actor: User, org: Organization, plan_code: str) -> BillingAccount:
    """Switch plan. A plan whose hard limits current usage exceeds is refused, naming the limit."""
    org, account = _lock_account(actor, org)
    new = get_plan(plan_code)
    current = account.plan
    if new.pk == current.pk:
        raise Conflict(f"{org.name} is already on the {new.name} plan.", code="same_plan")
    if is_sales_led(new) and not actor.is_staff:
        raise PermissionDenied(
            f"The {new.name} plan is arranged with our sales team; contact them to switch.",
            code="plan_sales_led",
        )
    return plan_change_locked(actor=actor, org=org, account=account, new=new)


def plan_change_locked(
    *, actor: User, org: Organization, account: BillingAccount, new: Plan
) -> BillingAccount:
    """The switch itself, once the caller locked org and account and checked who may
    (plan_change for owners; support/services.py for support engineers with the permission)."""
    current = account.plan
    if new.pk == current.pk:
        raise Conflict(f"{org.name} is already on the {new.name} plan.", code="same_plan")
    if new.monthly_price_cents > 0 and not account.payment_methods.exists():
        raise Conflict(
            f"Add a payment method before switching to the paid {new.name} plan.",
            code="payment_method_required",
        )
    rows = plan_change_preview(org, new)
    refusal = _downgrade_refusal(current, new, rows)
    if refusal:
        raise LimitExceeded(refusal, code="plan_limit_downgrade")
    account.plan = new
    account.save(update_fields=["plan", "updated_at"])
    record(
        actor=actor,
        action="billing.plan_changed",
        organization=org,
        target=org,
        details={
            "from_plan": current.name,
            "to_plan": new.name,
            "before": {"plan": current.code},
            "after": {"plan": new.code},
            "usage": {r.key: r.used for r in rows},
        },
    )
    return account


# --- payment methods -----------------------------------------------------------------------


def _card_details(pm: PaymentMethod) -> dict:
    return {
        "brand": pm.brand,
        "last4": pm.last4,
        "exp": f"{pm.exp_month:02d}/{pm.exp_year}",
        "default": pm.is_default,
    }


@transaction.atomic
def payment_method_add(
    *,
    actor: User,
    org: Organization,
    number: str,
    exp_month: int,
    exp_year: int,
    cvc: str,
    make_default: bool = False,
    provider: PaymentProvider | None = None,
) -> PaymentMethod:
    """Tokenize the card with the provider and keep only brand, last four, expiry and reference.

    The number and CVC are passed to the provider and dropped; they reach no row, log or event.
    """
    org, account = _lock_account(actor, org)
    if account.payment_methods.count() >= MAX_PAYMENT_METHODS:
        raise Conflict(
            f"An organization can keep at most {MAX_PAYMENT_METHODS} payment methods; "
            "remove one first.",
            code="too_many_payment_methods",
        )
    token = (provider or get_provider()).tokenize(number, exp_month, exp_year, cvc)
    duplicate = account.payment_methods.filter(
        brand=token.brand, last4=token.last4, exp_month=token.exp_month, exp_year=token.exp_year
    ).exists()
    if duplicate:
        raise Conflict(
            f"{token.brand} •••• {token.last4} (expires {token.exp}) is already on file.",
            code="duplicate_payment_method",
        )
    first = not account.payment_methods.exists()
    if make_default or first:
        PaymentMethod.objects.select_for_update().filter(account=account).update(is_default=False)
    pm = PaymentMethod.objects.create(
        account=account,
        brand=token.brand,
        last4=token.last4,
        exp_month=token.exp_month,
        exp_year=token.exp_year,
        provider_ref=token.provider_ref,
        is_default=make_default or first,
    )
    record(
        actor=actor,
        action="billing.payment_method_added",
        organization=org,
        target=pm,
        target_label=str(pm),
        details=_card_details(pm),
    )
    return pm


def _lock_payment_method(account: BillingAccount, payment_method_id: object) -> PaymentMethod:
    try:
        pk = int(payment_method_id)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        raise NotFound("No such payment method.") from None
    pm = PaymentMethod.objects.select_for_update().filter(account=account, pk=pk).first()
    if pm is None:
        raise NotFound("No such payment method.")
    return pm


@transaction.atomic
def payment_method_set_default(
    *, actor: User, org: Organization, payment_method_id: int
) -> PaymentMethod:
    org, account = _lock_account(actor, org)
    pm = _lock_payment_method(account, payment_method_id)
    if pm.is_default:
        return pm
    previous = PaymentMethod.objects.filter(account=account, is_default=True).first()
    PaymentMethod.objects.filter(account=account).exclude(pk=pm.pk).update(is_default=False)
    pm.is_default = True
    pm.save(update_fields=["is_default"])
    # Not one of docs/rules.md §5's billing.* actions on its own: recorded as a settings change.
    record(
        actor=actor,
        action="billing.settings_updated",
        organization=org,
        target=pm,
        target_label=str(pm),
        details={
            "before": {"default_payment_method": str(previous) if previous else None},
            "after": {"default_payment_method": str(pm)},
        },
    )
    return pm


@transaction.atomic
def payment_method_remove(*, actor: User, org: Organization, payment_method_id: int) -> None:
    """Remove a card. The last card cannot go while the plan is paid; a default is replaced."""
    org, account = _lock_account(actor, org)
    pm = _lock_payment_method(account, payment_method_id)
    others = list(
        PaymentMethod.objects.select_for_update()
        .filter(account=account)
        .exclude(pk=pm.pk)
        .order_by("-created_at", "-pk")
    )
    if not others and account.plan.monthly_price_cents > 0:
        raise Conflict(
            f"{pm} is the only payment method of the paid {account.plan.name} plan. Add another "
            "card first, or switch to the Free plan.",
            code="last_payment_method",
        )
    details = _card_details(pm)
    record(
        actor=actor,
        action="billing.payment_method_removed",
        organization=org,
        target=pm,
        target_label=str(pm),
        details=details,
    )
    pm.delete()
    if details["default"] and others:
        others[0].is_default = True
        others[0].save(update_fields=["is_default"])
