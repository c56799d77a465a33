"""Page guard for org pages: resolves the org from the URL slug and checks the capability table."""

import functools

from django.contrib.auth.decorators import login_required

from config.errors import NotFound
from config.roles import Role
from members import two_factor
from orgs import support_access
from orgs.permissions import OrgCapability, org_capabilities, require_org
from orgs.selectors import org_for_viewer


def org_view(capability: OrgCapability = OrgCapability.VIEW):
    """Sets request.org, request.org_role and request.org_can; non-members get 404, a too-low role 403.

    A support engineer with a view-as grant for this org sees it as an owner would, read-only
    (orgs/support_access.py)."""

    def decorator(view):
        @login_required
        @functools.wraps(view)
        def wrapper(request, org_slug, *args, **kwargs):
            try:
                org, role = org_for_viewer(request.user, slug=org_slug)
            except NotFound:
                # A support engineer's live, consented, time-boxed "view as admin" (read-only).
                viewing = support_access.view_as_for(request, org_slug)
                if viewing is None:
                    raise
                org, grant = viewing
                request.org, request.org_role = org, Role.OWNER  # sees every org page
                request.org_can = org_capabilities(Role.OWNER)
                return support_access.run_read_only(request, org, grant, view, *args, **kwargs)
            # Set before the check, so a refusal renders inside the org's header and tabs.
            request.org, request.org_role = org, role
            request.org_can = org_capabilities(role)  # what templates may offer, from the table
            require_org(role, capability)
            if (enrol := two_factor.enforce(request, org.pk)) is not None:
                return enrol  # the org requires two-factor sign-in and the user has none
            return view(request, *args, **kwargs)

        return wrapper

    return decorator
