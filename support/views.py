"""Pages outside the admin: an owner confirming an ownership recovery, ending a support view."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from config.errors import DomainError, PermissionDenied
from members.models import OrgMembership, User
from orgs.models import Organization
from orgs.support_access import end_view_as
from support.services import ownership_recovery_confirm, read_recovery_link, support_view_as_end


@login_required
def ownership_confirm(request, token):
    """The emailed owner reads what support asked and confirms (POST) — or just closes the page."""
    data = read_recovery_link(token)  # bad or expired links render as an error page
    if data["owner"] != request.user.pk:
        raise PermissionDenied(
            "This link was sent to another owner; sign in as them to confirm.", code="wrong_owner"
        )
    context = {
        "org": Organization.objects.filter(pk=data["org"]).first(),
        "member": OrgMembership.objects.select_related("user").filter(pk=data["member"]).first(),
        "engineer": User.objects.filter(pk=data["engineer"]).first(),
        "ticket": data["ticket"],
        "reason": data["reason"],
        "error": None,
    }
    if request.method == "POST":
        try:
            member = ownership_recovery_confirm(owner=request.user, token=token)
        except DomainError as exc:
            context["error"] = exc
            return render(request, "support/ownership_confirm.html", context, status=exc.status)
        messages.success(request, f"{member.user.display_name} is now an owner.")
        return redirect("orgs:overview", org_slug=member.organization.slug)
    return render(request, "support/ownership_confirm.html", context)


@require_POST
@login_required
def view_as_end(request):
    grant = end_view_as(request)
    if grant is not None:
        support_view_as_end(engineer=request.user, grant=grant)
        messages.success(request, "Support view ended.")
        return redirect(reverse("admin:orgs_organization_change", args=[grant.org_id]))
    return redirect("admin:index")
