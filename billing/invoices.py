"""Billing history: each calendar month is closed into an Invoice and its price charged.

`invoice_close_month` is the one writer (called by the monthly beat task, the management of
which is in settings). It is idempotent: a month already closed returns its invoice. The charge
goes through the payment provider with the invoice number as idempotency key, inside the
transaction that creates the invoice: if that transaction then fails, a retry reuses the key
and the provider does not charge twice. Rows synced over the plan are a soft limit, so the
amount is the plan's monthly price (no overage line).
"""

from __future__ import annotations

import calendar
import io
from datetime import date, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from audit.services import record
from billing.limits import default_plan, member_usage
from billing.models import BillingAccount, Invoice
from billing.providers import CardDeclined, get_provider
from billing.selectors import usage_period_totals
from config.csvsafe import csv_writer
from config.errors import ValidationFailed
from orgs.models import Organization


def month_bounds(month: date) -> tuple[date, date]:
    first = month.replace(day=1)
    return first, first.replace(day=calendar.monthrange(first.year, first.month)[1])


def previous_month(today: date | None = None) -> date:
    today = today or timezone.now().date()
    return today.replace(day=1) - timedelta(days=1)


def next_charge_date(today: date | None = None) -> date:
    """Invoices close on the 1st for the month before."""
    today = today or timezone.now().date()
    return (today.replace(day=1) + timedelta(days=32)).replace(day=1)


def invoice_number(org: Organization, first: date) -> str:
    return f"INV-{first:%Y%m}-{org.public_id.removeprefix('org_').upper()}"


def _bill_to(account: BillingAccount, org: Organization) -> str:
    lines = [account.company_name or org.name, account.address]
    if account.tax_id:
        lines.append(f"Tax id: {account.tax_id}")
    return "\n".join(line for line in lines if line)


@transaction.atomic
def invoice_close_month(*, org: Organization, month: date) -> Invoice:
    """Close `month` (any day in it) for the org: figures, charge, one audit event, email."""
    from orgs.services import lock_org

    first, last = month_bounds(month)
    if last >= timezone.now().date():
        raise ValidationFailed(
            "Only a month that has ended can be closed.", fields={"month": "Not over yet."}
        )
    org = lock_org(org)
    existing = Invoice.objects.filter(organization=org, period_start=first).first()
    if existing is not None:
        return existing
    account = BillingAccount.objects.select_for_update().filter(organization=org).first()
    if account is None:
        account = BillingAccount.objects.create(organization=org, plan=default_plan())
    plan = account.plan
    members, _pending = member_usage(org)
    invoice = Invoice(
        organization=org,
        number=invoice_number(org, first),
        period_start=first,
        period_end=last,
        plan_code=plan.code,
        plan_name=plan.name,
        amount_cents=plan.monthly_price_cents,
        seats=members,
        workspaces=org.workspaces.count(),
        rows_synced=usage_period_totals(org, since=first, until=last).rows_processed,
        rows_included=plan.max_rows_per_month,
        bill_to=_bill_to(account, org),
    )
    if invoice.amount_cents == 0:
        invoice.status = Invoice.Status.NO_CHARGE
    else:
        card = account.payment_methods.order_by("-is_default", "pk").first()
        if card is None:
            invoice.status = Invoice.Status.FAILED
            invoice.failure_message = "No payment method on file."
        else:
            invoice.card_label = f"{card.brand} •••• {card.last4}"
            try:
                invoice.charge_ref = get_provider().charge(
                    payment_method=card,
                    amount_cents=invoice.amount_cents,
                    description=f"SignalSmith {plan.name}, {first:%B %Y}",
                    idempotency_key=invoice.number,
                )
                invoice.status = Invoice.Status.PAID
            except CardDeclined as exc:
                invoice.status = Invoice.Status.FAILED
                invoice.failure_message = exc.message[:255]
    invoice.save()
    record(
        actor=None,
        action="billing.invoice_closed",
        organization=org,
        target=org,
        target_label=invoice.number,
        details={
            "invoice": invoice.number,
            "month": f"{first:%Y-%m}",
            "plan": plan.name,
            "amount": invoice.amount,
            "status": invoice.get_status_display(),
            "seats": invoice.seats,
            "rows_synced": invoice.rows_synced,
        },
    )
    transaction.on_commit(lambda: _queue_email(invoice.pk))
    return invoice


def _queue_email(invoice_id: int) -> None:
    from billing.tasks import send_invoice_email

    send_invoice_email.delay(invoice_id)


def invoice_recipients(invoice: Invoice) -> list[str]:
    """The billing email if set, else the org's owners."""
    from config.roles import Role
    from members.models import OrgMembership

    account = BillingAccount.objects.filter(organization_id=invoice.organization_id).first()
    if account and account.billing_email:
        return [account.billing_email]
    return list(
        OrgMembership.objects.filter(organization_id=invoice.organization_id, role=Role.OWNER)
        .order_by("pk")
        .values_list("user__email", flat=True)
    )


def invoice_link(invoice: Invoice) -> str:
    from django.urls import reverse

    return settings.SITE_URL + reverse(
        "billing:invoice", args=[invoice.organization.slug, invoice.number]
    )


def close_due_invoices(today: date | None = None) -> int:
    """Close last month for every live org that has no invoice for it yet; returns how many."""
    month = previous_month(today)
    first, _ = month_bounds(month)
    due = Organization.objects.filter(deleted_at__isnull=True).exclude(invoices__period_start=first)
    closed = 0
    for org in due.order_by("pk").iterator():
        invoice_close_month(org=org, month=month)
        closed += 1
    return closed


def invoices_csv(invoices) -> str:
    out = io.StringIO()
    writer = csv_writer(out)
    writer.writerow(
        (
            "invoice",
            "month",
            "plan",
            "amount_usd",
            "status",
            "seats",
            "workspaces",
            "rows_synced",
            "rows_included",
            "card",
            "charge_ref",
            "closed_at",
        )
    )
    for inv in invoices:
        writer.writerow(
            (
                inv.number,
                f"{inv.period_start:%Y-%m}",
                inv.plan_name,
                f"{inv.amount_cents / 100:.2f}",
                inv.get_status_display(),
                inv.seats,
                inv.workspaces,
                inv.rows_synced,
                inv.rows_included,
                inv.card_label,
                inv.charge_ref,
                inv.created_at.isoformat(),
            )
        )
    return out.getvalue()
