"""Page guard for workspace pages: resolves the workspace from the URL slug, checks the role."""

import functools

from django.contrib.auth.decorators import login_required

from members import two_factor
from workspaces.permissions import (
    WorkspaceCapability,
    require_workspace,
    workspace_capabilities,
)
from workspaces.selectors import workspace_for_viewer


def workspace_view(capability: WorkspaceCapability = WorkspaceCapability.VIEW):
    """Sets request.workspace and request.workspace_role; remembers it as the current workspace."""

    def decorator(view):
        @login_required
        @functools.wraps(view)
        def wrapper(request, ws_slug, *args, **kwargs):
            workspace, role = workspace_for_viewer(request.user, ws_slug)
            require_workspace(role, workspace, capability)
            request.workspace, request.workspace_role = workspace, role
            request.workspace_can = workspace_capabilities(role, workspace)
            if (enrol := two_factor.enforce(request, workspace.organization_id)) is not None:
                return enrol  # the org requires two-factor sign-in and the user has none
            if request.session.get("current_workspace") != workspace.slug:
                request.session["current_workspace"] = workspace.slug
            return view(request, *args, **kwargs)

        return wrapper

    return decorator
