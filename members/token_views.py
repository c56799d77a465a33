"""Account › API tokens: create (shown once), list, revoke."""

from datetime import timedelta

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect
from django.utils import timezone
from django.views.decorators.http import require_POST

from config.errors import DomainError, apply_domain_error
from config.htmx import render_page
from members.tokens import get_own_token, token_create, token_revoke, tokens_of

EXPIRY_CHOICES = [
    ("", "Never"),
    ("7", "In 7 days"),
    ("30", "In 30 days"),
    ("90", "In 90 days"),
    ("365", "In a year"),
]


class TokenCreateForm(forms.Form):
    name = forms.CharField(
        max_length=100,
        help_text="What the token is for, e.g. “nightly provisioning script”.",
    )
    expires_in = forms.ChoiceField(choices=EXPIRY_CHOICES, required=False, label="Expires")


def _page(request, form, *, new_token=None, raw=None, status=200):
    context = {
        "form": form,
        "tokens": tokens_of(request.user),
        "new_token": new_token,
        "raw_token": raw,
        "now": timezone.now(),
    }
    return render_page(request, "members/tokens.html", "tokens", context, status)


@login_required
def tokens(request):
    form = TokenCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        days = form.cleaned_data["expires_in"]
        expires_at = timezone.now() + timedelta(days=int(days)) if days else None
        try:
            token, raw = token_create(
                actor=request.user, name=form.cleaned_data["name"], expires_at=expires_at
            )
        except DomainError as exc:
            apply_domain_error(form, exc)
        else:
            # The raw token is rendered in this response only; it is not stored anywhere.
            return _page(request, TokenCreateForm(), new_token=token, raw=raw)
    status = 422 if request.method == "POST" else 200
    return _page(request, form, status=status)


@login_required
@require_POST
def token_revoke_view(request, token_id: str):
    token = get_own_token(request.user, token_id)
    token_revoke(actor=request.user, token=token)
    messages.success(request, f"The token {token.name} is revoked.")
    if request.htmx:
        return _page(request, TokenCreateForm())
    return redirect("members:tokens")
