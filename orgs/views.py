"""Organization pages: Settings › Organization (create), overview, workspaces, settings.

Views only translate HTTP into service calls and service refusals into form errors/banners;
every rule lives in orgs.services / orgs.permissions.
"""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseClientRedirect

from config.errors import DomainError, NotFound, apply_domain_error
from config.htmx import render_page
from members.selectors import member_for_viewer
from orgs import selectors, services
from orgs.decorators import org_view
from orgs.forms import (
    ConfirmOrgDeleteForm,
    ConfirmWorkspaceDeleteForm,
    CreateLinkedWorkspaceForm,
    LinkWorkspaceForm,
    OrgCreateForm,
    OrgSettingsForm,
    OwnershipTransferForm,
)
from orgs.permissions import OrgCapability, org_can, org_role_of
from workspaces.permissions import WORKSPACE_CAPABILITIES, WorkspaceCapability
from workspaces.selectors import workspace_for_viewer
from workspaces.services import workspace_delete as delete_workspace_and_data

FORM_INVALID = 422


def _page(request, template: str, partial: str | None, context: dict, status: int = 200):
    """The whole page, or only its `partial` region when htmx asks."""
    return render_page(request, template, partial, context, status)


def _done(request, url: str):
    """After a successful write: a redirect (htmx follows it as a full navigation)."""
    return HttpResponseClientRedirect(url) if request.htmx else HttpResponseRedirect(url)


# --- Settings › Organization: create ---------------------------------------------------------


def _current_workspace(request):
    """(workspace, role) the entry is about: ?workspace=<slug>, else the session's current one."""
    explicit = request.GET.get("workspace")
    slug = explicit or request.session.get("current_workspace")
    if not slug:
        return None, None
    try:
        return workspace_for_viewer(request.user, slug)
    except NotFound:
        if explicit:
            raise
        return None, None


def _slug_context(*, slug: str, edited: bool, current: str = "", errors=()) -> dict:
    ok, message = selectors.slug_status(slug, current=current)
    return {
        "slug": slug,
        "slug_edited": edited,
        "slug_ok": ok,
        "slug_message": message,
        "slug_current": current,
        "slug_errors": list(errors),
    }


@login_required
def org_create(request):
    """Settings › Organization: the current workspace's org, or the form to create one from it."""
    workspace, ws_role = _current_workspace(request)
    if workspace is not None and workspace.organization_id:
        org = workspace.organization
        if org_role_of(request.user, org) is not None:
            return redirect("orgs:overview", org_slug=org.slug)
        return render(request, "orgs/create.html", {"workspace": workspace, "linked_org": org})
    form = OrgCreateForm(request.POST if request.method == "POST" else None)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                org = services.org_create(
                    actor=request.user,
                    name=form.cleaned_data["name"],
                    slug=form.cleaned_data["slug"] or None,
                    workspace=workspace,
                )
            except DomainError as exc:
                apply_domain_error(form, exc)
                status = exc.status
            else:
                linked = f" {workspace.name} is its first workspace." if workspace else ""
                messages.success(request, f"{org.name} is ready; you are its owner.{linked}")
                return redirect("orgs:overview", org_slug=org.slug)
        else:
            status = FORM_INVALID
    typed_slug = (request.POST.get("slug") or "").strip()
    name = (request.POST.get("name") or "").strip()
    context = {
        "form": form,
        "workspace": workspace,
        "may_create_from_workspace": ws_role is not None
        and ws_role >= WORKSPACE_CAPABILITIES[WorkspaceCapability.LINK_TO_ORG],
        **_slug_context(
            slug=typed_slug or (services.suggest_slug(name) if name else ""),
            edited=bool(typed_slug),
            errors=form.errors.get("slug", ()),
        ),
    }
    return render(request, "orgs/create.html", context, status=status)


@require_GET
@login_required
def slug_check(request):
    """HTMX: the slug suggested from the name (unless hand-edited) and whether it is free."""
    name = request.GET.get("name", "")
    slug = request.GET.get("slug", "").strip()
    current = request.GET.get("current", "").strip()
    typed_in_slug = bool(request.htmx) and request.htmx.trigger_name == "slug"
    edited = bool(slug) and (typed_in_slug or request.GET.get("slug_edited") == "1")
    if not edited and not typed_in_slug:
        slug = services.suggest_slug(name) if name.strip() else ""
    context = _slug_context(slug=slug, edited=edited, current=current)
    part = "status" if typed_in_slug else "field"
    return render(request, f"orgs/_slug.html#{part}", context)


# --- Organization › Overview -----------------------------------------------------------------


@org_view()
def overview(request):
    org = request.org
    workspaces = list(selectors.linked_workspaces(org, viewer=request.user))
    return render(
        request,
        "orgs/overview.html",
        {
            "org": org,
            "workspaces": workspaces,
            "member_count": selectors.org_member_count(org),
            "totals": {
                "members": sum(w.member_count for w in workspaces),
                "syncs": sum(w.sync_count for w in workspaces),
                "destinations": sum(w.destination_count for w in workspaces),
            },
        },
    )


# --- Organization › Workspaces ---------------------------------------------------------------


def _workspaces_context(request, **extra) -> dict:
    org, role = request.org, request.org_role
    can_link = org_can(role, OrgCapability.LINK_WORKSPACES)
    context = {
        "org": org,
        "tab": "workspaces",
        "workspaces": selectors.linked_workspaces(org, viewer=request.user),
        "can_link": can_link,
        "can_create_delete": org_can(role, OrgCapability.CREATE_DELETE_WORKSPACES),
        "linkable": list(selectors.linkable_workspaces(request.user, org)) if can_link else [],
        "link_form": LinkWorkspaceForm(),
        "create_form": CreateLinkedWorkspaceForm(),
        "dialog_open": False,
    }
    context.update(extra)
    return context


@org_view()
def workspaces(request):
    return render(request, "orgs/workspaces.html", _workspaces_context(request))


@org_view(OrgCapability.LINK_WORKSPACES)
@require_POST
def workspace_link(request):
    org = request.org
    form = LinkWorkspaceForm(request.POST)
    status = FORM_INVALID
    if form.is_valid():
        try:
            workspace = selectors.workspace_by_public_id(form.cleaned_data["workspace"])
            services.workspace_link(actor=request.user, org=org, workspace=workspace)
        except DomainError as exc:
            apply_domain_error(form, exc)
            status = exc.status
        else:
            messages.success(request, f"{workspace.name} is now linked to {org.name}.")
            return _done(request, reverse("orgs:workspaces", args=[org.slug]))
    context = _workspaces_context(request, link_form=form, dialog_open=True)
    return _page(request, "orgs/workspaces.html", "link-dialog-body", context, status)


@org_view(OrgCapability.CREATE_DELETE_WORKSPACES)
@require_POST
def workspace_create(request):
    org = request.org
    form = CreateLinkedWorkspaceForm(request.POST)
    status = FORM_INVALID
    if form.is_valid():
        try:
            workspace = services.workspace_create_linked(
                actor=request.user, org=org, name=form.cleaned_data["name"]
            )
        except DomainError as exc:
            apply_domain_error(form, exc)
            status = exc.status
        else:
            messages.success(
                request, f"{workspace.name} was created in {org.name}; you are its owner."
            )
            return _done(request, reverse("orgs:workspaces", args=[org.slug]))
    context = _workspaces_context(request, create_form=form, dialog_open=True)
    return _page(request, "orgs/workspaces.html", "link-dialog-body", context, status)


@org_view(OrgCapability.LINK_WORKSPACES)
def workspace_unlink(request, ws_id):
    """GET: who loses access (the confirm step); POST: unlink."""
    org = request.org
    workspace = selectors.linked_workspace(org, ws_id)
    error, status = None, 200
    if request.method == "POST":
        try:
            services.workspace_unlink(actor=request.user, org=org, workspace=workspace)
        except DomainError as exc:
            error, status = exc, exc.status
        else:
            messages.success(
                request,
                f"{workspace.name} was unlinked from {org.name}. Its data and direct members "
                "are unchanged.",
            )
            return _done(request, reverse("orgs:workspaces", args=[org.slug]))
    context = {
        "org": org,
        "tab": "workspaces",
        "workspace": workspace,
        "losing_access": selectors.unlink_impact(workspace),
        "direct_owners": selectors.direct_owner_count(workspace),
        "error": error,
    }
    return _page(request, "orgs/unlink.html", "confirm", context, status)


@org_view(OrgCapability.CREATE_DELETE_WORKSPACES)
def workspace_delete(request, ws_id):
    """GET: the confirm step (type the name); POST: delete the workspace and all its data."""
    org = request.org
    workspace = selectors.linked_workspace(org, ws_id)
    form = ConfirmWorkspaceDeleteForm(request.POST if request.method == "POST" else None)
    status = 200
    if request.method == "POST":
        status = FORM_INVALID
        if form.is_valid():
            try:
                delete_workspace_and_data(
                    actor=request.user,
                    workspace=workspace,
                    confirm_name=form.cleaned_data["confirm_name"],
                )
            except DomainError as exc:
                apply_domain_error(form, exc)
                status = exc.status
            else:
                messages.success(request, f"{workspace.name} and all its data were deleted.")
                return _done(request, reverse("orgs:workspaces", args=[org.slug]))
    context = {"org": org, "tab": "workspaces", "workspace": workspace, "form": form}
    return _page(request, "orgs/workspace_delete.html", "confirm", context, status)


# --- Organization › Settings -----------------------------------------------------------------


def _settings_context(request, **extra) -> dict:
    org, role = request.org, request.org_role
    can_transfer = org_can(role, OrgCapability.MANAGE_OWNERS)
    can_delete = org_can(role, OrgCapability.DELETE_ORG)
    settings_form = extra.pop("settings_form", None) or OrgSettingsForm(
        initial={"name": org.name, "slug": org.slug}
    )
    slug = settings_form["slug"].value() or ""
    context = {
        "org": org,
        "tab": "settings",
        "settings_form": settings_form,
        **_slug_context(
            slug=slug.strip(),
            edited=True,
            current=org.slug,
            errors=settings_form.errors.get("slug", ()),
        ),
        "can_transfer": can_transfer,
        "can_delete": can_delete,
    }
    if can_transfer:
        context["transfer_form"] = OwnershipTransferForm(
            memberships=selectors.org_members(org, exclude_user=request.user)
        )
    if can_delete:
        context["delete_form"] = ConfirmOrgDeleteForm()
        context["impact"] = selectors.org_delete_impact(org)
    context.update(extra)
    return context


@org_view(OrgCapability.UPDATE_ORG)
def settings(request):
    """GET: the settings page; POST: rename / change the slug."""
    org = request.org
    if request.method != "POST":
        return render(request, "orgs/settings.html", _settings_context(request))
    form = OrgSettingsForm(request.POST)
    status = FORM_INVALID
    if form.is_valid():
        try:
            org = services.org_update(
                actor=request.user,
                org=org,
                name=form.cleaned_data["name"],
                slug=form.cleaned_data["slug"],
            )
        except DomainError as exc:
            apply_domain_error(form, exc)
            status = exc.status
        else:
            messages.success(request, f"Saved. The organization is {org.name} ({org.slug}).")
            return redirect("orgs:settings", org_slug=org.slug)
    return render(
        request, "orgs/settings.html", _settings_context(request, settings_form=form), status=status
    )


@org_view(OrgCapability.MANAGE_OWNERS)
@require_POST
def ownership_transfer(request):
    org = request.org
    form = OwnershipTransferForm(
        request.POST, memberships=selectors.org_members(org, exclude_user=request.user)
    )
    status = FORM_INVALID
    if form.is_valid():
        step_down = form.cleaned_data["afterwards"] == OwnershipTransferForm.STEP_DOWN
        try:
            target = member_for_viewer(org, form.cleaned_data["member"])
            services.ownership_transfer(
                actor=request.user, org=org, to_membership=target, step_down=step_down
            )
        except DomainError as exc:
            apply_domain_error(form, exc)
            status = exc.status
        else:
            you = " You are now an admin." if step_down else " You remain an owner."
            messages.success(request, f"{target.user.display_name} is now an owner.{you}")
            return redirect("orgs:settings", org_slug=org.slug)
    context = _settings_context(request, transfer_form=form)
    return render(request, "orgs/settings.html", context, status=status)


@org_view(OrgCapability.DELETE_ORG)
@require_POST
def org_delete(request):
    org = request.org
    form = ConfirmOrgDeleteForm(request.POST)
    status = FORM_INVALID
    if form.is_valid():
        impact = selectors.org_delete_impact(org)
        try:
            services.org_delete(
                actor=request.user, org=org, confirm_slug=form.cleaned_data["confirm_slug"]
            )
        except DomainError as exc:
            apply_domain_error(form, exc)
            status = exc.status
        else:
            count = len(impact["workspaces"])
            unlinked = "1 workspace was" if count == 1 else f"{count} workspaces were"
            messages.success(
                request,
                f"{org.name} was deleted. {unlinked} unlinked with their data intact, and "
                "everyone kept their workspace access. The audit history is kept.",
            )
            return redirect("workspaces:home")
    context = _settings_context(request, delete_form=form)
    return render(request, "orgs/settings.html", context, status=status)
