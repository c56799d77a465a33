"""Forms of the support actions: every one asks for the ticket and the reason first."""

from __future__ import annotations

from django import forms

from billing.models import Plan
from billing.services import is_sales_led
from orgs.models import Organization
from orgs.support_access import MAX_VIEW_MINUTES


class TicketForm(forms.Form):
    ticket = forms.CharField(
        label="Ticket reference",
        max_length=64,
        help_text="e.g. T-1234. Shown to the customer in their audit log.",
    )
    reason = forms.CharField(
        label="Reason",
        max_length=1000,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        help_text="Why, in plain words (at least 10 characters). The customer sees it.",
    )

    def __init__(self, *args, obj=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.obj = obj


class PersonForm(TicketForm):
    """Actions on a person's account: the event goes to the org the ticket is about."""

    organization = forms.ChoiceField(
        label="Organization on the ticket",
        required=False,
        help_text="Its audit log shows this action. Leave empty when the ticket is about no org.",
    )

    def __init__(self, *args, obj=None, **kwargs):
        super().__init__(*args, obj=obj, **kwargs)
        orgs = Organization.objects.alive().filter(memberships__user=obj).order_by("name")
        self.fields["organization"].choices = [("", "—")] + [(o.pk, o.name) for o in orgs]
        if len(self.fields["organization"].choices) == 2:
            self.fields["organization"].initial = self.fields["organization"].choices[1][0]

    def clean_organization(self):
        pk = self.cleaned_data.get("organization")
        return Organization.objects.filter(pk=pk).first() if pk else None


class PlanSwitchForm(TicketForm):
    plan = forms.ChoiceField(label="Sales-led plan")

    def __init__(self, *args, obj=None, **kwargs):
        super().__init__(*args, obj=obj, **kwargs)
        plans = [p for p in Plan.objects.order_by("sort_order") if is_sales_led(p)]
        self.fields["plan"].choices = [(p.code, p.name) for p in plans]


class RollupForm(TicketForm):
    start = forms.DateField(label="First day (UTC)", widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(label="Last day (UTC)", widget=forms.DateInput(attrs={"type": "date"}))


class OwnershipForm(TicketForm):
    member_email = forms.EmailField(
        label="Member to make owner",
        help_text="Their email; they must already be a member of the organization.",
    )


class ViewAsForm(TicketForm):
    minutes = forms.IntegerField(
        label="Minutes", min_value=5, max_value=MAX_VIEW_MINUTES, initial=30
    )
