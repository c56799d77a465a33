"""The invitation link (/invitations/<token>/): explain a dead link, or sign in / sign up and accept."""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth import login, logout
from django.db import IntegrityError
from django.shortcuts import redirect, render
from django.urls import reverse

from config.errors import DomainError
from members.accounts import account_signup
from members.forms import SignUpForm
from members.invitations import (
    AcceptResult,
    InvitationWrongEmail,
    invitation_accept,
    invitation_by_token,
)
from members.models import User, normalize_email


def _joined_message(request, result: AcceptResult) -> None:
    org = result.organization
    if result.already_member:
        text = f"You are a member of {org.name}."
    else:
        text = f"Welcome to {org.name}: you joined as {result.membership.role_name}."
    if result.granted:
        text += (
            " Your workspaces: "
            + ", ".join(f"{m.workspace.name} ({m.role_name})" for m in result.granted)
            + "."
        )
    messages.success(request, text)
    if result.skipped:
        messages.warning(
            request,
            "These workspaces were unlinked from the organization since you were invited, so no "
            "access was given to them: " + ", ".join(result.skipped) + ". Ask an admin of "
            f"{org.name} if you still need them.",
        )


def _accept(request, token):
    try:
        result = invitation_accept(user=request.user, token=token)
    except DomainError as exc:
        return None, exc
    _joined_message(request, result)
    return redirect("orgs:overview", org_slug=result.organization.slug), None


def invitation_page(request, token):
    """One page for every state of an invitation link; POST actions: accept, signup, signout."""
    try:
        inv = invitation_by_token(token)
    except DomainError as exc:
        return render(request, "members/invitation.html", {"dead": exc}, status=exc.status)

    action = request.POST.get("action") if request.method == "POST" else None
    here = reverse("members:invitation", args=[token])
    error = None
    signup_form = None
    user = request.user

    if action == "signout":
        logout(request)
        return redirect(here)

    if user.is_authenticated:
        if normalize_email(user.email) != inv.email:
            error = InvitationWrongEmail(
                f"This invitation is for {inv.email}, but you are signed in as {user.email}. "
                f"Sign out, then sign in or sign up as {inv.email} to accept it."
            )
        elif action == "accept":
            response, error = _accept(request, token)
            if response:
                return response
        state = "wrong_email" if error and error.code == "invitation_wrong_email" else "accept"
    elif User.objects.filter(email=inv.email).exists():
        state = "signin"
    else:
        state = "signup"
        signup_form = SignUpForm(
            request.POST if action == "signup" else None,
            fixed_email=inv.email,
            with_workspace=False,
        )
        if action == "signup" and signup_form.is_valid():
            try:
                new_user = account_signup(
                    email=inv.email,
                    password=signup_form.cleaned_data["password"],
                    full_name=signup_form.cleaned_data["full_name"],
                    create_workspace=False,
                )
            except IntegrityError:
                signup_form.add_error("email", "An account with this email exists already.")
            else:
                login(request, new_user, backend="members.backends.EmailBackend")
                response, error = _accept(request, token)
                if response:
                    return response
                state = "accept"
    status = (
        error.status if error else (422 if signup_form is not None and signup_form.errors else 200)
    )
    return render(
        request,
        "members/invitation.html",
        {
            "inv": inv,
            "state": state,
            "error": error,
            "signup_form": signup_form,
            "grants": list(inv.grants.select_related("workspace").order_by("workspace__name")),
            "signin_url": reverse("members:signin") + "?" + urlencode({"next": here}),
            "token": token,
        },
        status=status,
    )


def workspace_invitation_page(request, token):
    """/join/<token>/: the emailed link into a workspace that is in no organization."""
    from members.workspace_invitations import (
        workspace_invitation_accept,
        workspace_invitation_by_token,
    )

    try:
        inv = workspace_invitation_by_token(token)
    except DomainError as exc:
        return render(request, "members/workspace_invitation.html", {"dead": exc}, status=404)
    here = reverse("members:workspace_invitation", args=[token])
    error = None
    if request.method == "POST" and request.user.is_authenticated:
        if request.POST.get("action") == "signout":
            logout(request)
            return redirect(here)
        try:
            membership = workspace_invitation_accept(user=request.user, token=token)
        except DomainError as exc:
            error = exc
        else:
            messages.success(
                request, f"Welcome to {inv.workspace.name}: you joined as {membership.role_name}."
            )
            return redirect("workspaces:overview", ws_slug=inv.workspace.slug)
    return render(
        request,
        "members/workspace_invitation.html",
        {
            "inv": inv,
            "error": error,
            "wrong_email": request.user.is_authenticated
            and normalize_email(request.user.email) != inv.email,
            "signin_url": reverse("members:signin") + "?" + urlencode({"next": here}),
            "signup_url": reverse("members:signup") + "?" + urlencode({"next": here}),
        },
        status=error.status if error else 200,
    )
