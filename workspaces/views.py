"""Workspace pages: home, overview, one generic set of resource pages, runs, members, deletion.

Every write goes through workspaces.services; these views only parse input, guard the page
with the workspace role, and render the outcome (refusals as form errors or banners).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from config.bounds import page_number
from config.errors import DomainError, NotFound, ValidationFailed, apply_domain_error
from config.htmx import render_page
from config.roles import Role
from orgs import governance
from workspaces import selectors, services
from workspaces.decorators import workspace_view
from workspaces.forms import (
    MemberAddForm,
    MemberRoleForm,
    WorkspaceDeleteForm,
    resource_form_class,
)
from workspaces.models import SyncRun, WorkspaceMembership
from workspaces.permissions import (
    WorkspaceCapability,
    require_workspace,
    required_role,
)


def _shown_on_form(exc: DomainError) -> bool:
    """Refusals a form can show; a missing object still becomes the 404 page."""
    return not isinstance(exc, NotFound)


# --- home and overview -------------------------------------------------------------------


@login_required
def home(request):
    """The signed-in person's workspaces."""
    memberships = list(selectors.workspaces_of(request.user))
    return render(request, "workspaces/home.html", {"memberships": memberships})


@login_required
def switch(request, ws_slug):
    return redirect("workspaces:overview", ws_slug=ws_slug)


@workspace_view()
def overview(request):
    workspace = request.workspace
    return render(
        request,
        "workspaces/overview.html",
        {
            "workspace": workspace,
            "counts": selectors.workspace_counts(workspace),
            "stats": selectors.run_stats(workspace),
            "recent_runs": list(selectors.recent_runs(workspace)),
            "governance": governance.policies_for_workspace(workspace),
            "tab": "overview",
        },
    )


# --- resources: one set of views for every kind ------------------------------------------


@dataclass(frozen=True)
class Kind:
    """How the pages name and list one kind of workspace resource."""

    kind: str
    plural: str
    label: str
    columns: tuple[str, ...]

    @property
    def title(self) -> str:
        return self.plural.title()

    @property
    def write_capability(self) -> WorkspaceCapability:
        # Governance may raise the role needed for syncs and destinations (see permissions).
        if self.kind in services.SYNC_KINDS:
            return WorkspaceCapability.WRITE_SYNCS
        return WorkspaceCapability.WRITE_RESOURCES


KINDS = {
    "warehouse": Kind("warehouse", "warehouses", "warehouse", ("Name", "Type", "Host", "Models")),
    "model": Kind("model", "models", "model", ("Name", "Warehouse", "Syncs")),
    "destination": Kind("destination", "destinations", "destination", ("Name", "Type", "Syncs")),
    "sync": Kind("sync", "syncs", "sync", ("Name", "Model → destination", "Schedule", "Last run")),
}
PLURALS = {k.plural: k.kind for k in KINDS.values()}


def _cells(kind: str, obj) -> list:
    """The list page's cells for one row (everything already loaded by the selector)."""
    if kind == "warehouse":
        return [obj.get_kind_display(), obj.host or "—", obj.usage]
    if kind == "model":
        return [obj.warehouse.name, obj.usage]
    if kind == "destination":
        return [obj.get_kind_display(), obj.usage]
    last = obj.last_status or "never run"
    return [
        f"{obj.model.name} → {obj.destination.name}",
        obj.get_schedule_display() + ("" if obj.enabled else " (paused)"),
        last,
    ]


def _can_write(request, kind: Kind) -> bool:
    return request.workspace_role >= required_role(request.workspace, kind.write_capability)


def _require_write(request, kind: Kind) -> None:
    require_workspace(request.workspace_role, request.workspace, kind.write_capability)


def _list_url(workspace, kind: str) -> str:
    return reverse("workspaces:resource_list", args=[workspace.slug, kind])


@workspace_view()
def resource_list(request, kind):
    spec = KINDS[kind]
    rows = [(obj, _cells(kind, obj)) for obj in selectors.resources_of(request.workspace, kind)]
    return render(
        request,
        "workspaces/resource_list.html",
        {
            "workspace": request.workspace,
            "spec": spec,
            "rows": rows,
            "can_write": _can_write(request, spec),
            "tab": kind,
        },
    )


@workspace_view()
def resource_form(request, kind, public_id=None):
    """Create (no public_id) or edit one resource."""
    spec = KINDS[kind]
    _require_write(request, spec)
    workspace = request.workspace
    obj = services.get_resource(workspace, kind, public_id) if public_id else None
    form = resource_form_class(kind)(request.POST or None, instance=obj, workspace=workspace)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                if obj is None:
                    obj = services.resource_create(
                        actor=request.user, workspace=workspace, kind=kind, data=form.service_data()
                    )
                    messages.success(request, f"Created the {spec.label} {obj.name}.")
                else:
                    obj = services.resource_update(
                        actor=request.user, obj=obj, data=form.service_data()
                    )
                    messages.success(request, f"Saved the {spec.label} {obj.name}.")
            except DomainError as exc:
                if not _shown_on_form(exc):
                    raise
                apply_domain_error(form, exc)
                status = exc.status
            else:
                return redirect(_list_url(workspace, kind))
        else:
            status = 422
    return render(
        request,
        "workspaces/resource_form.html",
        {"workspace": workspace, "spec": spec, "form": form, "obj": obj, "tab": kind},
        status=status,
    )


@workspace_view()
def resource_delete(request, kind, public_id):
    spec = KINDS[kind]
    _require_write(request, spec)
    workspace = request.workspace
    obj = services.get_resource(workspace, kind, public_id)
    error, status = None, 200
    if request.method == "POST":
        try:
            services.resource_delete(actor=request.user, obj=obj)
        except DomainError as exc:
            if not _shown_on_form(exc):
                raise
            error, status = exc, exc.status
        else:
            messages.success(request, f"Deleted the {spec.label} {obj.name}.")
            return redirect(_list_url(workspace, kind))
    return render(
        request,
        "workspaces/resource_delete.html",
        {"workspace": workspace, "spec": spec, "obj": obj, "error": error, "tab": kind},
        status=status,
    )


@workspace_view()
def sync_runs(request, public_id):
    """A sync's runs, newest first, filterable by status, paginated (HTMX swaps the rows)."""
    sync = services.get_resource(request.workspace, "sync", public_id)
    status = request.GET.get("status") or ""
    page = Paginator(selectors.sync_runs(sync, status), 50).get_page(
        page_number(request.GET.get("page"))
    )
    return render_page(
        request,
        "workspaces/sync_runs.html",
        "runs",
        {
            "workspace": request.workspace,
            "sync": sync,
            "page": page,
            "status": status,
            "statuses": SyncRun.Status.choices,
            "tab": "sync",
        },
    )


# --- members ------------------------------------------------------------------------------


def _members_page(request, *, add_form=None, error=None, status=200):
    workspace = request.workspace
    can_manage = request.workspace_can[WorkspaceCapability.MANAGE_MEMBERS.name]
    is_owner = request.workspace_can[WorkspaceCapability.MANAGE_OWNERS.name]
    role_choices = [r for r in Role if is_owner or r < Role.OWNER]
    memberships = list(selectors.workspace_members(workspace))
    for m in memberships:
        # What this viewer may change on the row, as the service decides (it re-checks on submit).
        m.manageable = m.user_id != request.user.pk and services.may_manage_member(
            request.workspace_role, Role(m.role), workspace
        )
    return render(
        request,
        "workspaces/members.html",
        {
            "workspace": workspace,
            "memberships": memberships,
            "add_form": add_form or MemberAddForm(),
            "can_manage": can_manage,
            "is_owner": is_owner,
            "role_choices": role_choices,
            "error": error,
            "tab": "members",
        },
        status=status,
    )


def _membership(request, user_id: str) -> WorkspaceMembership:
    membership = (
        WorkspaceMembership.objects.select_related("user", "workspace")
        .filter(workspace=request.workspace, user__public_id=user_id)
        .first()
    )
    if membership is None:
        raise NotFound("No such member in this workspace.")
    return membership


def _members_url(workspace) -> str:
    return reverse("workspaces:members", args=[workspace.slug])


@workspace_view()
def members(request):
    return _members_page(request)


@require_POST
@workspace_view(WorkspaceCapability.MANAGE_MEMBERS)
def member_add(request):
    form = MemberAddForm(request.POST)
    if not form.is_valid():
        return _members_page(request, add_form=form, status=422)
    # Members sit above workspaces in the layering; the page is the workspace's.
    from members.workspace_invitations import workspace_member_invite

    email = form.cleaned_data["email"]
    try:
        workspace_member_invite(
            actor=request.user,
            workspace=request.workspace,
            email=email,
            role=Role(form.cleaned_data["role"]),
        )
    except DomainError as exc:
        if not _shown_on_form(exc):
            raise
        apply_domain_error(form, exc)
        return _members_page(request, add_form=form, status=exc.status)
    messages.success(
        request,
        f"Invitation sent to {email}. They join {request.workspace.name} as "
        f"{Role(form.cleaned_data['role']).label} when they open the emailed link "
        f"(valid {settings.INVITATION_TTL_DAYS} days).",
    )
    return redirect(_members_url(request.workspace))


@require_POST
@workspace_view(WorkspaceCapability.MANAGE_MEMBERS)
def member_role(request, user_id):
    membership = _membership(request, user_id)
    form = MemberRoleForm(request.POST)
    if not form.is_valid():
        error = ValidationFailed("Choose member, admin or owner.")
        return _members_page(request, error=error, status=422)
    try:
        membership = services.workspace_member_change_role(
            actor=request.user, membership=membership, role=Role(form.cleaned_data["role"])
        )
    except DomainError as exc:
        if not _shown_on_form(exc):
            raise
        return _members_page(request, error=exc, status=exc.status)
    messages.success(request, f"{membership.user.display_name} is now {membership.role_name} here.")
    return redirect(_members_url(request.workspace))


@require_POST
@workspace_view()
def member_remove(request, user_id):
    """Owners/admins remove others (the service decides); anyone may leave themselves."""
    membership = _membership(request, user_id)
    leaving = membership.user_id == request.user.pk
    try:
        services.workspace_member_remove(actor=request.user, membership=membership)
    except DomainError as exc:
        if not _shown_on_form(exc):
            raise
        return _members_page(request, error=exc, status=exc.status)
    if leaving:
        request.session.pop("current_workspace", None)
        messages.success(request, f"You left {request.workspace.name}.")
        return redirect("workspaces:home")
    messages.success(
        request, f"Removed {membership.user.display_name} from {request.workspace.name}."
    )
    return redirect(_members_url(request.workspace))


# --- deletion -----------------------------------------------------------------------------


@workspace_view(WorkspaceCapability.DELETE_WORKSPACE)
def workspace_delete(request):
    workspace = request.workspace
    form = WorkspaceDeleteForm(request.POST or None)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                services.workspace_delete(
                    actor=request.user,
                    workspace=workspace,
                    confirm_name=form.cleaned_data["confirm_name"],
                )
            except DomainError as exc:
                if not _shown_on_form(exc):
                    raise
                apply_domain_error(form, exc)
                status = exc.status
            else:
                request.session.pop("current_workspace", None)
                messages.success(request, f"Deleted the workspace {workspace.name}.")
                return redirect("workspaces:home")
        else:
            status = 422
    return render(
        request,
        "workspaces/delete.html",
        {
            "workspace": workspace,
            "form": form,
            "counts": selectors.workspace_counts(workspace),
            "tab": "settings",
        },
        status=status,
    )
