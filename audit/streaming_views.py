"""Audit Log › Streaming (owners): webhook destinations, their delivery log, replay."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.shortcuts import redirect, render

from audit import streaming
from audit.selectors import parse_moment
from config.errors import DomainError
from orgs.decorators import org_view
from orgs.permissions import OrgCapability
from orgs.views import apply_domain_error


class DestinationForm(forms.Form):
    name = forms.CharField(
        label="Name", max_length=100, widget=forms.TextInput(attrs={"placeholder": "Splunk"})
    )
    url = forms.CharField(
        label="Receiver URL",
        max_length=500,
        widget=forms.URLInput(attrs={"placeholder": "https://siem.example.com/hooks/signalsmith"}),
        help_text="https:// only. Each event is POSTed as JSON, signed per Standard Webhooks.",
    )


class ReplayForm(forms.Form):
    since = forms.CharField(
        label="Send again every event since",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
    )

    def clean_since(self):
        moment = parse_moment(self.cleaned_data["since"])
        if moment is None:
            raise forms.ValidationError("Enter a date and time (2000–2100).")
        return moment


def _render(request, *, add_form=None, replay_forms=None, secret=None, new=None, status=200):
    org = request.org
    rows = []
    for destination in streaming.destinations_of(org):
        rows.append(
            {
                "destination": destination,
                "pending": streaming.pending_count(destination),
                "log": streaming.delivery_log(destination, limit=20),
                "replay_form": (replay_forms or {}).get(destination.public_id)
                or ReplayForm(prefix=destination.public_id),
            }
        )
    context = {
        "org": org,
        "tab": "audit",
        "rows": rows,
        "add_form": add_form or DestinationForm(),
        "secret": secret,
        "new_destination": new,
        "max_destinations": streaming.MAX_DESTINATIONS,
    }
    return render(request, "audit/streaming.html", context, status=status)


@org_view(OrgCapability.MANAGE_AUDIT_STREAMING)
def destinations(request):
    if request.method != "POST":
        return _render(request)
    org, action = request.org, request.POST.get("action", "")
    target = request.POST.get("destination", "")
    try:
        if action == "add":
            form = DestinationForm(request.POST)
            if not form.is_valid():
                return _render(request, add_form=form, status=422)
            try:
                destination, secret = streaming.stream_destination_add(
                    actor=request.user, org=org, **form.cleaned_data
                )
            except DomainError as exc:
                if exc.status == 403:
                    raise
                apply_domain_error(form, exc)
                return _render(request, add_form=form, status=exc.status)
            # Not a redirect: the secret is shown in this response only.
            return _render(request, secret=secret, new=destination)
        if action == "remove":
            streaming.stream_destination_remove(actor=request.user, org=org, destination_id=target)
            messages.success(request, "Destination removed.")
        elif action == "enable":
            streaming.stream_destination_enable(actor=request.user, org=org, destination_id=target)
            messages.success(
                request,
                "Destination re-enabled: delivery resumes with the first undelivered event.",
            )
        elif action == "replay":
            form = ReplayForm(request.POST, prefix=target)
            if not form.is_valid():
                return _render(request, replay_forms={target: form}, status=422)
            try:
                count = streaming.stream_replay(
                    actor=request.user,
                    org=org,
                    destination_id=target,
                    since=form.cleaned_data["since"],
                )
            except DomainError as exc:
                if exc.status in (403, 404):
                    raise
                apply_domain_error(form, exc)
                return _render(request, replay_forms={target: form}, status=exc.status)
            messages.success(request, f"{count} events queued again for delivery.")
        else:
            messages.error(request, "Unknown action.")
            return _render(request, status=422)
    except DomainError as exc:
        if exc.status in (403, 404):
            raise
        messages.error(request, exc.message)
        return _render(request, status=exc.status)
    return redirect("audit:streaming", org_slug=org.slug)
