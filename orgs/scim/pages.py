"""The owners' page Organization › SCIM: base URL, tokens (shown once), group mappings, users."""

from __future__ import annotations

from django.contrib import messages
from django.shortcuts import redirect, render

from config.errors import DomainError, ValidationFailed
from config.roles import Role
from orgs.decorators import org_view
from orgs.permissions import OrgCapability
from orgs.scim import services
from orgs.scim.models import GroupMapping, ScimGroup, ScimToken, ScimUser
from orgs.sso.domains import verified_domains
from workspaces.models import Workspace

ROLES = [Role.MEMBER, Role.ADMIN, Role.OWNER]


def _context(request, **extra) -> dict:
    org = request.org
    return {
        "org": org,
        "tab": "scim",
        "base_url": request.build_absolute_uri(f"/scim/v2/{org.slug}/"),
        "tokens": ScimToken.objects.filter(organization=org).order_by("-created_at", "-pk"),
        "mappings": GroupMapping.objects.filter(organization=org)
        .select_related("workspace")
        .order_by("group_name", "workspace__name"),
        "groups": ScimGroup.objects.filter(organization=org).order_by("display_name")[:200],
        "users": ScimUser.objects.filter(organization=org)
        .select_related("user")
        .order_by("user_name")[:200],
        "user_count": ScimUser.objects.filter(organization=org).count(),
        "workspaces": Workspace.objects.filter(organization=org).order_by("name"),
        "roles": ROLES,
        "verified_domains": verified_domains(org),
        **extra,
    }


def _page(request, status=200, **extra):
    return render(request, "orgs/scim.html", _context(request, **extra), status=status)


@org_view(OrgCapability.MANAGE_SCIM)
def scim_settings(request):
    if request.method != "POST":
        return _page(request)
    action = request.POST.get("action", "")
    org = request.org
    try:
        if action == "create_token":
            token, raw = services.scim_token_create(
                actor=request.user, org=org, name=request.POST.get("name", "")
            )
            return _page(request, new_token=raw, new_token_name=token.name)
        if action == "revoke_token":
            token = ScimToken.objects.filter(
                organization=org, public_id=request.POST.get("token", "")
            ).first()
            if token is None:
                raise ValidationFailed("No such SCIM token.", fields={"token": "Unknown token."})
            services.scim_token_revoke(actor=request.user, org=org, token=token)
            messages.success(request, f"The SCIM token {token.name} is revoked.")
        elif action in ("set_mapping", "remove_mapping"):
            workspace = Workspace.objects.filter(
                organization=org, public_id=request.POST.get("workspace", "")
            ).first()
            if workspace is None:
                raise ValidationFailed(
                    "Choose a workspace linked to this organization.",
                    fields={"workspace": "Choose a workspace."},
                )
            role = None
            if action == "set_mapping":
                try:
                    role = Role(int(request.POST.get("role", "")))
                except ValueError:
                    raise ValidationFailed(
                        "Choose member, admin or owner.", fields={"role": "Choose a role."}
                    ) from None
            group = request.POST.get("group_name", "")
            services.group_mapping_set(
                actor=request.user, org=org, group_name=group, workspace=workspace, role=role
            )
            messages.success(
                request,
                f"Members of {group.strip()} now get {role.label} access to {workspace.name}."
                if role
                else f"{group.strip()} no longer maps to {workspace.name}.",
            )
        else:
            raise ValidationFailed("Unknown action.")
    except DomainError as exc:
        if exc.status in (403, 404) and action != "remove_mapping":
            raise
        return _page(request, status=exc.status, error=exc, posted=request.POST)
    return redirect("orgs:scim", org_slug=org.slug)
