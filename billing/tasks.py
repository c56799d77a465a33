"""Periodic billing work: usage roll-ups and monthly invoices (beat schedule in settings)."""

from celery import shared_task
from django.db import InterfaceError, OperationalError

from billing import rollups


@shared_task(
    name="billing.tasks.rollup_usage",
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=True,
    retry_backoff_max=600,
    retry_jitter=True,
    max_retries=5,
)
def rollup_usage(full: bool = False) -> dict:
    """Idempotent: each pass recomputes whole days, so a retry or a duplicate changes nothing."""
    return rollups.rollup_usage(full=full)


@shared_task(
    name="billing.tasks.close_monthly_invoices",
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=True,
    max_retries=5,
)
def close_monthly_invoices() -> int:
    """Idempotent: orgs whose last month is already closed are skipped."""
    from billing.invoices import close_due_invoices

    return close_due_invoices()


@shared_task(
    name="billing.tasks.send_invoice_email",
    autoretry_for=(OSError,),
    retry_backoff=True,
    max_retries=8,
)
def send_invoice_email(invoice_id: int) -> int:
    """The invoice by email to the billing address (or the owners); returns messages sent."""
    from django.core.mail import EmailMultiAlternatives
    from django.template.loader import render_to_string

    from billing.invoices import invoice_link, invoice_recipients
    from billing.models import Invoice

    invoice = Invoice.objects.select_related("organization").filter(pk=invoice_id).first()
    if invoice is None:
        return 0
    recipients = invoice_recipients(invoice)
    if not recipients:
        return 0
    context = {"invoice": invoice, "org": invoice.organization, "link": invoice_link(invoice)}
    message = EmailMultiAlternatives(
        subject=f"Your SignalSmith invoice {invoice.number} ({invoice.period_start:%B %Y})",
        body=render_to_string("emails/invoice.txt", context),
        to=recipients,
    )
    message.attach_alternative(render_to_string("emails/invoice.html", context), "text/html")
    return message.send()
