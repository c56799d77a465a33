"""Organization pages: create (Settings › Organization) and the overview."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render

from config.errors import DomainError
from orgs import services
from orgs.decorators import org_view
from orgs.forms import OrgCreateForm
from orgs.selectors import linked_workspaces
from workspaces.selectors import workspace_for_viewer


def apply_domain_error(form, exc: DomainError) -> None:
    """Show a service's refusal on the form: field errors on their fields, the rest on top."""
    for field, message in exc.fields.items():
        form.add_error(field if field in form.fields else None, message)
    if not exc.fields:
        form.add_error(None, exc.message)


@login_required
def org_create(request):
    """Settings › Organization: the current workspace's org, or the form to create one from it."""
    ws_slug = request.GET.get("workspace") or request.session.get("current_workspace")
    workspace = None
    if ws_slug:
        try:
            workspace, _ = workspace_for_viewer(request.user, ws_slug)
        except DomainError:
            workspace = None
    if (
        workspace is not None
        and workspace.organization_id
        and workspace.organization.deleted_at is None
    ):
        return redirect("orgs:overview", org_slug=workspace.organization.slug)
    form = OrgCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            org = services.org_create(
                actor=request.user,
                name=form.cleaned_data["name"],
                slug=form.cleaned_data["slug"] or None,
                workspace=workspace,
            )
        except DomainError as exc:
            apply_domain_error(form, exc)
        else:
            messages.success(request, f"{org.name} is ready.")
            return redirect("orgs:overview", org_slug=org.slug)
    return render(request, "orgs/create.html", {"form": form, "workspace": workspace})


@org_view()
def overview(request):
    return render(
        request,
        "orgs/overview.html",
        {"org": request.org, "workspaces": linked_workspaces(request.org)},
    )
