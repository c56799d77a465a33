"""Billing history: closing a month into an invoice (figures, charge, audit, email), the
monthly task, and the Billing page's history, printable invoice and CSV."""

import csv
import io
from datetime import date, timedelta

import pytest
from django.core import mail
from django.utils import timezone

from audit.models import AuditEvent
from billing import services
from billing.invoices import (
    close_due_invoices,
    invoice_close_month,
    month_bounds,
    next_charge_date,
    previous_month,
)
from billing.models import DailyWorkspaceUsage, Invoice, Plan
from billing.tasks import close_monthly_invoices
from config.errors import ValidationFailed
from orgs.models import WorkspaceLinkPeriod

pytestmark = pytest.mark.django_db


def _card(org_setup, number="4242424242424242", cvc="123"):
    return services.payment_method_add(
        actor=org_setup.owner,
        org=org_setup.org,
        number=number,
        exp_month=12,
        exp_year=date.today().year + 2,
        cvc=cvc,
        make_default=True,
    )


def _on_team(org_setup):
    _card(org_setup)
    services.plan_change(actor=org_setup.owner, org=org_setup.org, plan_code="team")


def _last_month_rows(org_setup, rows):
    WorkspaceLinkPeriod.objects.filter(organization=org_setup.org).update(
        linked_at=timezone.now() - timedelta(days=100)
    )
    first, last = month_bounds(previous_month())
    DailyWorkspaceUsage.objects.bulk_create(
        [
            DailyWorkspaceUsage(
                workspace=org_setup.ws_a, day=first, runs=1, succeeded=1, rows_processed=rows
            ),
            DailyWorkspaceUsage(
                workspace=org_setup.ws_a,
                day=last + timedelta(days=1),
                runs=1,
                succeeded=1,
                rows_processed=999,
            ),
        ]
    )


def test_closing_a_month_charges_the_plan_records_once_and_emails_the_owner(
    org_setup, django_capture_on_commit_callbacks
):
    s = org_setup
    _on_team(s)
    _last_month_rows(s, 1234)
    before = AuditEvent.objects.filter(action="billing.invoice_closed").count()
    with django_capture_on_commit_callbacks(execute=True):
        invoice = invoice_close_month(org=s.org, month=previous_month())
    assert invoice.status == Invoice.Status.PAID
    assert invoice.plan_code == "team"
    assert invoice.amount_cents == Plan.objects.get(code="team").monthly_price_cents > 0
    assert invoice.seats == 3 and invoice.workspaces == 2
    assert invoice.rows_synced == 1234  # the month only, linked days only
    assert invoice.card_label == "Visa •••• 4242" and invoice.charge_ref.startswith("test_charge_")
    assert AuditEvent.objects.filter(action="billing.invoice_closed").count() == before + 1
    (message,) = [m for m in mail.outbox if invoice.number in m.subject]
    assert message.to == [s.owner.email]
    assert f"/o/{s.org.slug}/billing/invoices/{invoice.number}/" in message.body
    # Idempotent: closing again returns the same invoice, charges and records nothing.
    with django_capture_on_commit_callbacks(execute=True):
        again = invoice_close_month(org=s.org, month=previous_month())
    assert again.pk == invoice.pk
    assert AuditEvent.objects.filter(action="billing.invoice_closed").count() == before + 1
    assert Invoice.objects.filter(organization=s.org).count() == 1


def test_a_declined_card_gives_a_failed_invoice_and_free_plans_no_charge(org_setup):
    s = org_setup
    invoice = invoice_close_month(org=s.org, month=previous_month())
    assert invoice.status == Invoice.Status.NO_CHARGE and invoice.amount_cents == 0
    Invoice.objects.all().delete()
    _card(s, number="4000000000000341")
    services.plan_change(actor=s.owner, org=s.org, plan_code="team")
    invoice = invoice_close_month(org=s.org, month=previous_month())
    assert invoice.status == Invoice.Status.FAILED
    assert "declined" in invoice.failure_message


def test_a_month_not_over_cannot_be_closed(org_setup):
    with pytest.raises(ValidationFailed):
        invoice_close_month(org=org_setup.org, month=timezone.now().date())
    assert not Invoice.objects.exists()


def test_the_monthly_task_closes_every_live_org_once(org_setup):
    assert close_monthly_invoices.delay().get() == 1
    assert close_due_invoices() == 0
    assert Invoice.objects.filter(organization=org_setup.org).count() == 1
    assert next_charge_date(date(2024, 1, 31)) == date(2024, 2, 1)
    assert next_charge_date(date(2024, 12, 15)) == date(2025, 1, 1)


def test_billing_page_lists_invoices_with_a_printable_page_and_csv(org_setup, login):
    s = org_setup
    _on_team(s)
    invoice = invoice_close_month(org=s.org, month=previous_month())
    client = login(s.owner)
    html = client.get(f"/o/{s.org.slug}/billing/").content.decode()
    assert 'data-testid="billing-history"' in html and invoice.number in html
    assert 'data-testid="next-charge"' in html
    page = client.get(f"/o/{s.org.slug}/billing/invoices/{invoice.number}/")
    assert page.status_code == 200
    assert invoice.amount in page.content.decode() and "Visa •••• 4242" in page.content.decode()
    rows = list(
        csv.reader(
            io.StringIO(client.get(f"/o/{s.org.slug}/billing/invoices.csv").content.decode())
        )
    )
    assert rows[0][0] == "invoice" and rows[1][0] == invoice.number and rows[1][4] == "Paid"


def test_invoices_are_for_owners_of_that_org_only(org_setup, login):
    s = org_setup
    invoice = invoice_close_month(org=s.org, month=previous_month())
    url = f"/o/{s.org.slug}/billing/invoices/{invoice.number}/"
    assert login(s.admin).get(url).status_code == 403
    assert login(s.stranger).get(url).status_code == 404
    assert login(s.owner).get(f"/o/{s.org.slug}/billing/invoices/INV-NOPE/").status_code == 404


def test_plan_change_preview_says_what_the_next_invoice_charges(org_setup, login):
    html = (
        login(org_setup.owner).get(f"/o/{org_setup.org.slug}/billing/plan/team/").content.decode()
    )
    assert 'data-testid="charge-preview"' in html
    assert "$499.00" in html and next_charge_date().strftime("%Y") in html
