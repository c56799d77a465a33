"""Account page (/account/): profile, email, sessions and devices, organizations, closing."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from config.errors import DomainError
from members import account_services, sessions
from members.selectors import member_for_viewer
from orgs.decorators import org_view
from orgs.permissions import OrgCapability
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
        "sessions": sessions.sessions_of(user, request.session.session_key),
        "idle_minutes": sessions.idle_seconds() // 60,
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


# --- sessions and devices --------------------------------------------------------------------


@login_required
@require_POST
def session_signout(request, session_id: str):
    """Sign out one of your sessions (your current one signs you out here too)."""
    row = sessions.session_end(actor=request.user, session_id=session_id)
    if row.session_key == request.session.session_key:
        return redirect("members:signin")
    messages.success(request, f"Signed out {sessions.describe_agent(row.user_agent)}.")
    return redirect("account:home")


@login_required
@require_POST
def sessions_signout_others(request):
    count = sessions.sessions_end_others(
        actor=request.user, current_key=request.session.session_key
    )
    if count:
        messages.success(request, f"Signed out of {count} other session{'s' * (count != 1)}.")
    else:
        messages.info(request, "You have no other sessions.")
    return redirect("account:home")


@require_POST
@org_view(OrgCapability.MANAGE_MEMBERS)
def member_signout_everywhere(request, member_id: str):
    """The incident-response button on a member's page."""
    membership = member_for_viewer(request.org, member_id)
    count = sessions.member_sign_out_everywhere(
        actor=request.user, org=request.org, membership=membership
    )
    who = membership.user.display_name
    if count:
        messages.success(request, f"{who} is signed out of {count} session{'s' * (count != 1)}.")
    else:
        messages.info(request, f"{who} had no signed-in sessions.")
    if membership.user_id == request.user.pk:
        return redirect("members:signin")
    return redirect("org_members:detail", org_slug=request.org.slug, member_id=member_id)
