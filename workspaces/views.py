"""Workspace home and switcher."""

from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render

from workspaces.decorators import workspace_view
from workspaces.selectors import workspaces_of


@login_required
def home(request):
    """The signed-in person's workspaces; with one current workspace we go straight there."""
    memberships = list(workspaces_of(request.user))
    return render(request, "workspaces/home.html", {"memberships": memberships})


@workspace_view()
def overview(request):
    return render(request, "workspaces/overview.html", {"workspace": request.workspace})


@login_required
def switch(request, ws_slug):
    return redirect("workspaces:overview", ws_slug=ws_slug)
