"""Organization › Audit Log."""

from django.shortcuts import render

from audit.events import render_sentence
from audit.models import AuditEvent
from orgs.decorators import org_view
from orgs.permissions import OrgCapability


@org_view(OrgCapability.VIEW_USAGE_AUDIT)
def log(request):
    events = list(AuditEvent.objects.filter(organization=request.org)[:50])
    rows = [(e, render_sentence(e)) for e in events]
    return render(request, "audit/log.html", {"org": request.org, "rows": rows})
