"""Organization › Billing (owners only): plan and usage, plan change, payment methods, details."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_POST

from billing import services
from billing.forms import BillingSettingsForm, PaymentMethodForm
from billing.invoices import next_charge_date
from billing.limits import limits_against, rows_over_plan_message, usage_of
from billing.models import BillingAccount, Invoice, PaymentMethod, Plan
from config.errors import DomainError, NotFound, apply_domain_error
from config.htmx import render_page
from orgs.decorators import org_view
from orgs.permissions import OrgCapability

BILLING = OrgCapability.MANAGE_BILLING


def price_label(plan: Plan) -> str:
    if services.is_sales_led(plan):
        return "Custom pricing"
    return f"${plan.monthly_price_cents / 100:,.0f} / month"


def _account(org) -> BillingAccount:
    account = BillingAccount.objects.select_related("plan").filter(organization=org).first()
    if account is None:
        from billing.limits import default_plan

        account = BillingAccount(organization=org, plan=default_plan())
    return account


def _plan_cards(current: Plan, usage) -> list[dict]:
    cards = []
    for plan in Plan.objects.all():
        over = [r for r in limits_against(plan, usage) if r.hard and r.over]
        cards.append(
            {
                "plan": plan,
                "price": price_label(plan),
                "current": plan.pk == current.pk,
                "upgrade": services.is_upgrade(current, plan),
                "blocked_by": [r.label.lower() for r in over],
                "sales_led": services.is_sales_led(plan),
            }
        )
    return cards


def _page(request, *, settings_form=None, card_form=None, status=200, partial=None):
    org = request.org
    account = _account(org)
    usage = usage_of(org)
    if settings_form is None:
        settings_form = BillingSettingsForm(
            initial={
                "billing_email": account.billing_email,
                "company_name": account.company_name,
                "address": account.address,
                "tax_id": account.tax_id,
            }
        )
    context = {
        "org": org,
        "account": account,
        "plan": account.plan,
        "plan_price": price_label(account.plan),
        "usage": usage,
        "limits": limits_against(account.plan, usage),
        "rows_warning": rows_over_plan_message(org, account.plan, usage),
        "plans": _plan_cards(account.plan, usage),
        "payment_methods": (
            list(
                PaymentMethod.objects.filter(account=account).order_by("-is_default", "created_at")
            )
            if account.pk
            else []
        ),
        "settings_form": settings_form,
        "card_form": card_form or PaymentMethodForm(),
        "invoices": Invoice.objects.filter(organization=org)[:24],
        "next_charge": next_charge_date(),
    }
    return render_page(request, "billing/overview.html", partial, context, status)


@org_view(BILLING)
def overview(request):
    return _page(request)


@org_view(BILLING)
@require_POST
def settings_update(request):
    form = BillingSettingsForm(request.POST)
    if form.is_valid():
        try:
            services.billing_settings_update(
                actor=request.user, org=request.org, **form.cleaned_data
            )
        except DomainError as exc:
            apply_domain_error(form, exc)
        else:
            messages.success(request, "Billing details saved.")
            if request.htmx:
                return _page(request, partial="details")
            return redirect("billing:overview", org_slug=request.org.slug)
    return _page(request, settings_form=form, status=422, partial="details")


@org_view(BILLING)
def plan_change(request, plan_code):
    """GET: preview current usage against the plan's limits. POST: switch."""
    plan = services.get_plan(plan_code)
    error = None
    if request.method == "POST":
        try:
            services.plan_change(actor=request.user, org=request.org, plan_code=plan.code)
        except DomainError as exc:
            error = exc
        else:
            messages.success(request, f"{request.org.name} is now on the {plan.name} plan.")
            response = redirect("billing:overview", org_slug=request.org.slug)
            if request.htmx:
                response["HX-Redirect"] = response["Location"]
            return response
    account = _account(request.org)
    rows = services.plan_change_preview(request.org, plan)
    context = {
        "org": request.org,
        "plan": plan,
        "current": account.plan,
        "price": price_label(plan),
        "rows": rows,
        "blocked": any(r.hard and r.over for r in rows),
        "error": error,
        "next_charge": next_charge_date(),
        "next_amount": f"${plan.monthly_price_cents / 100:,.2f}",
    }
    status = error.status if error else 200
    return render_page(request, "billing/plan_change.html", "preview", context, status)


@sensitive_post_parameters("number", "cvc")
@org_view(BILLING)
@require_POST
def payment_method_add(request):
    form = PaymentMethodForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        try:
            pm = services.payment_method_add(
                actor=request.user,
                org=request.org,
                number=data["number"],
                exp_month=data["exp_month"],
                exp_year=data["exp_year"],
                cvc=data["cvc"],
                make_default=data["make_default"],
            )
        except DomainError as exc:
            apply_domain_error(form, exc)
            if not exc.fields or exc.code == "card_declined":
                form.add_error(None, exc.message)
        else:
            messages.success(request, f"{pm} added.")
            if request.htmx:
                return _page(request, partial="payment_methods")
            return redirect("billing:overview", org_slug=request.org.slug)
    return _page(request, card_form=form, status=422, partial="payment_methods")


def _pm_action(request, pm_id, service, done: str):
    try:
        service(actor=request.user, org=request.org, payment_method_id=pm_id)
    except DomainError as exc:
        if exc.status in (403, 404):
            raise
        messages.error(request, exc.message)
    else:
        messages.success(request, done)
    if request.htmx:
        return _page(request, partial="payment_methods")
    return redirect("billing:overview", org_slug=request.org.slug)


@org_view(BILLING)
@require_POST
def payment_method_default(request, pm_id):
    return _pm_action(
        request, pm_id, services.payment_method_set_default, "Default payment method changed."
    )


@org_view(BILLING)
@require_POST
def payment_method_remove(request, pm_id):
    return _pm_action(request, pm_id, services.payment_method_remove, "Payment method removed.")


@org_view(BILLING)
def invoice_view(request, number):
    """One invoice, printable (the browser's Print gives a clean page)."""
    invoice = Invoice.objects.filter(organization=request.org, number=number[:40]).first()
    if invoice is None:
        raise NotFound("No such invoice for this organization.")
    return render(
        request, "billing/invoice.html", {"org": request.org, "invoice": invoice, "tab": "billing"}
    )


@org_view(BILLING)
def invoices_csv_view(request):
    from billing.invoices import invoices_csv

    body = invoices_csv(Invoice.objects.filter(organization=request.org))
    response = HttpResponse(body, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="invoices-{request.org.slug}.csv"'
    return response
