"""Account › Two-factor sign-in (enrol, recovery codes, turn off) and the sign-in code step."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_POST

from config.errors import DomainError, apply_domain_error
from members import two_factor
from members.sessions import end_other_sessions_quietly


class CodeForm(forms.Form):
    code = forms.CharField(
        label="Code",
        max_length=20,
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "autofocus": True}
        ),
        help_text="The 6-digit code from your authenticator app, or a recovery code.",
    )


def _safe_next(request, value: str | None, default: str = "workspaces:home") -> str:
    if value and url_has_allowed_host_and_scheme(value, {request.get_host()}, request.is_secure()):
        return value
    return default


def _manage_page(request, *, form=None, status=200):
    user = request.user
    device = two_factor.device_of(user)
    context = {
        "device": device,
        "form": form or CodeForm(),
        "next": _safe_next(request, request.GET.get("next") or request.POST.get("next"), ""),
        "required_by": list(two_factor.orgs_requiring_two_factor(user)),
    }
    if device is None:
        secret = request.session.get(two_factor.SETUP_SESSION_KEY)
        if not secret:
            secret = two_factor.new_secret()
            request.session[two_factor.SETUP_SESSION_KEY] = secret
        uri = two_factor.provisioning_uri(user, secret)
        context.update(secret=secret, qr_svg=two_factor.qr_svg(uri))
    else:
        context["recovery_left"] = len(device.recovery_code_hashes)
    return render(request, "members/two_factor.html", context, status=status)


def _codes_page(request, codes: list[str], next_url: str):
    return render(
        request,
        "members/two_factor_codes.html",
        {"codes": codes, "next": _safe_next(request, next_url)},
    )


@login_required
@sensitive_post_parameters("code")
def manage(request):
    """GET: status, or the QR code to enrol. POST: confirm enrolment with a real code."""
    if request.method != "POST":
        return _manage_page(request)
    form = CodeForm(request.POST)
    if form.is_valid():
        try:
            with transaction.atomic():
                codes = two_factor.two_factor_enable(
                    user=request.user,
                    secret=request.session.get(two_factor.SETUP_SESSION_KEY, ""),
                    code=form.cleaned_data["code"],
                )
                end_other_sessions_quietly(request)  # turning 2FA on signs out the others
        except DomainError as exc:
            apply_domain_error(form, exc)
            return _manage_page(request, form=form, status=exc.status)
        request.session.pop(two_factor.SETUP_SESSION_KEY, None)
        messages.success(request, "Two-factor sign-in is on.")
        return _codes_page(request, codes, request.POST.get("next", ""))
    return _manage_page(request, form=form, status=422)


@login_required
@sensitive_post_parameters("code")
@require_POST
def recovery_codes(request):
    form = CodeForm(request.POST)
    if form.is_valid():
        try:
            codes = two_factor.recovery_codes_regenerate(
                user=request.user, code=form.cleaned_data["code"]
            )
        except DomainError as exc:
            apply_domain_error(form, exc)
            return _manage_page(request, form=form, status=exc.status)
        return _codes_page(request, codes, "")
    return _manage_page(request, form=form, status=422)


@login_required
@sensitive_post_parameters("code")
@require_POST
def disable(request):
    form = CodeForm(request.POST)
    if form.is_valid():
        try:
            two_factor.two_factor_disable(user=request.user, code=form.cleaned_data["code"])
        except DomainError as exc:
            apply_domain_error(form, exc)
            return _manage_page(request, form=form, status=exc.status)
        messages.success(request, "Two-factor sign-in is off.")
        return redirect("members:two_factor")
    return _manage_page(request, form=form, status=422)


@sensitive_post_parameters("code")
def verify(request):
    """The sign-in step after the password for people with two-factor sign-in."""
    held = two_factor.pending_signin(request)
    if held is None:
        messages.info(request, "Sign in again to continue.")
        return redirect("members:signin")
    user, pending = held
    form = CodeForm(request.POST or None)
    status = 200
    if request.method == "POST" and form.is_valid():
        try:
            two_factor.two_factor_verify(user=user, code=form.cleaned_data["code"])
        except DomainError as exc:
            apply_domain_error(form, exc)
            status = exc.status
            if exc.status == 429:  # too many wrong codes: start over from the password
                request.session.pop(two_factor.PENDING_SESSION_KEY, None)
        else:
            two_factor.finish_signin(request, user, pending)
            return redirect(_safe_next(request, pending.get("next")))
    elif request.method == "POST":
        status = 422
    return render(
        request,
        "members/two_factor_verify.html",
        {"form": form, "email": user.email},
        status=status,
    )
