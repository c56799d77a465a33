"""Organization › Members pages."""

from django.shortcuts import render

from members.models import OrgMembership
from orgs.decorators import org_view


@org_view()
def directory(request):
    members = OrgMembership.objects.filter(organization=request.org).select_related("user")
    return render(request, "members/directory.html", {"org": request.org, "members": members})
