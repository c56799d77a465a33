"""Page guard for org pages: resolves the org from the URL slug and checks the capability table."""

import functools

from django.contrib.auth.decorators import login_required

from members import two_factor
from orgs.permissions import OrgCapability, org_capabilities, require_org
from orgs.selectors import org_for_viewer


def org_view(capability: OrgCapability = OrgCapability.VIEW):
    """Sets request.org, request.org_role and request.org_can; non-members get 404, a too-low role 403."""

    def decorator(view):
        @login_required
        @functools.wraps(view)
        def wrapper(request, org_slug, *args, **kwargs):
            org, role = org_for_viewer(request.user, slug=org_slug)
            # Set before the check, so a refusal renders inside the org's header and tabs.
            request.org, request.org_role = org, role
            request.org_can = org_capabilities(role)  # what templates may offer, from the table
            require_org(role, capability)
            if (enrol := two_factor.enforce(request, org.pk)) is not None:
                return enrol  # the org requires two-factor sign-in and the user has none
            return view(request, *args, **kwargs)

        return wrapper

    return decorator
