"""Sign in, sign up (and confirming the email address), sign out, password change and reset."""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import authenticate, login, logout
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.urls import reverse_lazy
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from config.errors import DomainError, RateLimited
from members import two_factor
from members.accounts import account_signup
from members.auth import locked_error, reset_signin_failures, throttle_account_email
from members.forms import SignInForm, SignUpForm
from members.verification import (
    email_verification_send,
    email_verified_by_token,
    email_verify,
    is_verified,
)


def _next_url(request, default="workspaces:home"):
    nxt = request.POST.get("next") or request.GET.get("next")
    if nxt and url_has_allowed_host_and_scheme(nxt, {request.get_host()}, request.is_secure()):
        return nxt
    return default


def signin(request):
    form = SignInForm(request.POST or None)
    status = 200
    if request.method == "POST" and form.is_valid():
        # django-axes counts the failure (or refuses a locked account/client pair) inside
        # authenticate() and flags the request; members/auth.py has the rules.
        user = authenticate(
            request, email=form.cleaned_data["email"], password=form.cleaned_data["password"]
        )
        if user is not None:
            # Required single sign-on (orgs/sso/enforcement.py): the password is not enough.
            from orgs.sso.enforcement import password_gate

            gate = password_gate(user)
            if gate.allowed:
                return two_factor.signin_complete(
                    request,
                    user,
                    _next_url(request),
                    break_glass_org=gate.organization.pk if gate.break_glass else None,
                )
            form.add_error(None, gate.message)
            status = 403
        elif getattr(request, "axes_locked_out", False):
            error = locked_error()
            form.add_error(None, error.message)
            status = error.status
        else:
            form.add_error(None, "That email and password do not match an account.")
    response = render(
        request,
        "members/signin.html",
        {"form": form, "next": _next_url(request, "")},
        status=status,
    )
    if status == 429:
        response["Retry-After"] = str(locked_error().retry_after)
    return response


def _throttled_page(request, template: str, context: dict, exc: RateLimited):
    response = render(request, template, {**context, "error": exc}, status=exc.status)
    response["Retry-After"] = str(exc.retry_after)
    return response


def signup(request):
    if request.method == "POST":
        # Counted before validation: "an account with this email exists" is an answer too.
        try:
            throttle_account_email(request, action="signup", email=request.POST.get("email", ""))
        except RateLimited as exc:
            typed = {k: request.POST.get(k, "") for k in ("full_name", "email", "workspace_name")}
            form = SignUpForm(initial=typed)
            return _throttled_page(request, "members/signup.html", {"form": form}, exc)
    form = SignUpForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = account_signup(
            email=form.cleaned_data["email"],
            password=form.cleaned_data["password"],
            full_name=form.cleaned_data["full_name"],
            workspace_name=form.cleaned_data.get("workspace_name"),
        )
        email_verification_send(user=user)
        login(request, user, backend="members.backends.EmailBackend")
        messages.success(
            request,
            f"Welcome to SignalSmith. Your first workspace is ready. We sent a link to "
            f"{user.email}: open it to confirm your address.",
        )
        return redirect("workspaces:home")
    return render(request, "members/signup.html", {"form": form})


def verify_email(request, token):
    """The link from the verification email (works signed in or not, in any browser)."""
    try:
        user = email_verify(token=token)
    except DomainError as exc:
        return render(request, "members/verify_email.html", {"error": exc}, status=exc.status)
    return render(request, "members/verify_email.html", {"verified_email": user.email})


@login_required
def email_verification(request):
    """Account › Confirm your email: GET says where the link went; POST sends a new one."""
    user = request.user
    if request.method == "POST" and not is_verified(user):
        try:
            throttle_account_email(request, action="verification", email=user.email)
        except RateLimited as exc:
            return _throttled_page(request, "members/email_verification.html", {}, exc)
        email_verification_send(user=user)
        messages.success(request, f"We sent a new confirmation link to {user.email}.")
        return redirect(_next_url(request, "members:email_verification"))
    return render(request, "members/email_verification.html", {"verified": is_verified(user)})


@require_POST
def signout(request):
    logout(request)
    return redirect("members:signin")


# --- password change and reset: Django's views with our templates and namespaced URLs -------


class PasswordChangeView(auth_views.PasswordChangeView):
    template_name = "members/password_change.html"
    success_url = reverse_lazy("members:password_change_done")

    def form_valid(self, form):
        from members.sessions import end_other_sessions_quietly

        previous_key = self.request.session.session_key
        response = super().form_valid(form)  # keeps this session signed in (new key)
        end_other_sessions_quietly(self.request, previous_key)  # and signs out the others
        return response


class PasswordChangeDoneView(auth_views.PasswordChangeDoneView):
    template_name = "members/password_change_done.html"


class PasswordResetView(auth_views.PasswordResetView):
    """Mails a one-time link; the page looks the same whether or not the email has an account."""

    template_name = "members/password_reset.html"
    email_template_name = "registration/password_reset_email.txt"
    subject_template_name = "registration/password_reset_subject.txt"
    success_url = reverse_lazy("members:password_reset_done")

    @property
    def extra_email_context(self):
        return {"site_url": settings.SITE_URL}

    def form_valid(self, form):
        try:
            throttle_account_email(
                self.request, action="password_reset", email=form.cleaned_data["email"]
            )
        except RateLimited as exc:
            context = self.get_context_data(form=form)
            return _throttled_page(self.request, self.template_name, context, exc)
        return super().form_valid(form)


class PasswordResetDoneView(auth_views.PasswordResetDoneView):
    template_name = "members/password_reset_done.html"


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    template_name = "members/password_reset_confirm.html"
    success_url = reverse_lazy("members:password_reset_complete")

    def form_valid(self, form):
        # The link proved control of the email: it counts as confirmed, and the account's
        # sign-in locks go.
        response = super().form_valid(form)
        email_verified_by_token(user=form.user, via="password reset")
        reset_signin_failures(form.user.email)
        return response


class PasswordResetCompleteView(auth_views.PasswordResetCompleteView):
    template_name = "members/password_reset_complete.html"
