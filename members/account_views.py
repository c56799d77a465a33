"""Account page (/account/): profile, email, sessions and devices, organizations, closing."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_POST

from config.errors import DomainError, apply_domain_error
from members import account_services, sessions
from members.models import OrgMembership
from members.selectors import member_for_viewer
from orgs.decorators import org_view
from orgs.permissions import OrgCapability


class ProfileForm(forms.Form):
    full_name = forms.CharField(
        label="Display name",
        max_length=account_services.DISPLAY_NAME_MAX_LENGTH,
        help_text="Shown in member directories, the audit log and exports.",
        widget=forms.TextInput(attrs={"autocomplete": "name"}),
    )


class EmailChangeForm(forms.Form):
    email = forms.EmailField(
        label="New email address",
        max_length=254,
        widget=forms.EmailInput(attrs={"autocomplete": "email"}),
        help_text="We send a link to the new address; nothing changes until you open it.",
    )
    password = forms.CharField(
        label="Current password",
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )


class CloseForm(forms.Form):
    password = forms.CharField(
        label="Current password",
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )


def _context(request, **forms_) -> dict:
    user = request.user
    return {
        "memberships": OrgMembership.objects.filter(user=user, organization__deleted_at=None)
        .select_related("organization")
        .order_by("organization__name"),
        "email_form": forms_.get("email_form") or EmailChangeForm(),
        "pending_email": account_services.open_email_change(user),
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


# --- email change ----------------------------------------------------------------------------


@login_required
@require_POST
@sensitive_post_parameters("password")
def email_change(request):
    form = EmailChangeForm(request.POST)
    if form.is_valid():
        try:
            account_services.email_change_request(
                actor=request.user,
                new_email=form.cleaned_data["email"],
                password=form.cleaned_data["password"],
            )
        except DomainError as exc:
            apply_domain_error(form, exc)
            return _page(request, status=exc.status, email_form=form)
        messages.success(
            request,
            f"Check the inbox of {form.cleaned_data['email'].strip().lower()}: open the link "
            "there to finish the change. Your email stays the same until then.",
        )
        return redirect("account:home")
    return _page(request, status=422, email_form=form)


@login_required
def email_confirm(request, token: str):
    """GET: what the link changes (mail scanners may open links); POST: change it."""
    change = account_services.email_change_for_link(request.user, token)
    error = None
    if request.method == "POST":
        try:
            account_services.email_change_confirm(actor=request.user, token=token)
        except DomainError as exc:
            error = exc
        else:
            messages.success(request, f"Your email is now {request.user.email}.")
            return redirect("account:home")
    return render(
        request,
        "account/email_confirm.html",
        {"change": change, "error": error},
        status=error.status if error else 200,
    )


# --- closing the account ---------------------------------------------------------------------


@login_required
@sensitive_post_parameters("password")
def close(request):
    """GET: what closing does and what blocks it; POST: close with the current password."""
    form = CloseForm(request.POST or None)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                account_services.account_close(
                    actor=request.user, password=form.cleaned_data["password"]
                )
            except DomainError as exc:
                apply_domain_error(form, exc)
                status = exc.status
            else:
                logout(request)
                messages.success(
                    request, "Your account is closed. Thank you for using SignalSmith."
                )
                return redirect("members:signin")
        else:
            status = 422
    return render(
        request,
        "account/close.html",
        {
            "form": form,
            "blocking": account_services.last_owner_of(request.user),
            "memberships": _context(request)["memberships"],
        },
        status=status,
    )
