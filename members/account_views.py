"""Account page (/account/): profile, email, sessions and devices, organizations, closing."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from config.errors import DomainError
from members import account_services
from orgs.views import apply_domain_error


class ProfileForm(forms.Form):
    full_name = forms.CharField(
        label="Display name",
        max_length=account_services.DISPLAY_NAME_MAX_LENGTH,
        help_text="Shown in member directories, the audit log and exports.",
        widget=forms.TextInput(attrs={"autocomplete": "name"}),
    )


def _context(request, **forms_) -> dict:
    user = request.user
    return {
        "profile_form": forms_.get("profile_form")
        or ProfileForm(initial={"full_name": user.full_name}),
    }


def _page(request, status: int = 200, **forms_):
    return render(request, "account/account.html", _context(request, **forms_), status=status)


@login_required
def account_home(request):
    return _page(request)


@login_required
@require_POST
def profile(request):
    form = ProfileForm(request.POST)
    if form.is_valid():
        try:
            account_services.profile_update(
                actor=request.user, full_name=form.cleaned_data["full_name"]
            )
        except DomainError as exc:
            apply_domain_error(form, exc)
            return _page(request, status=exc.status, profile_form=form)
        messages.success(request, "Your name is saved.")
        return redirect("account:home")
    return _page(request, status=422, profile_form=form)
