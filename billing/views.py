"""Organization › Billing (owners only)."""

from django.shortcuts import render

from billing.limits import plan_of
from orgs.decorators import org_view
from orgs.permissions import OrgCapability


@org_view(OrgCapability.MANAGE_BILLING)
def overview(request):
    return render(
        request, "billing/overview.html", {"org": request.org, "plan": plan_of(request.org)}
    )
