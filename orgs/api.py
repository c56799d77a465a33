"""/api/v1/organizations: create, read, update, delete; link, create-linked and unlink workspaces."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from django.http import HttpRequest
from ninja import Query, Router, Schema

from config.apikit import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    Page,
    errors,
    paginate,
    public_id_or_none,
    text,
)
from config.errors import NotFound, ValidationFailed
from config.roles import Role
from members import two_factor
from orgs import services
from orgs.models import Organization
from orgs.selectors import linked_workspaces, org_for_viewer
from workspaces.models import Workspace

router = Router(tags=["organizations"])

RoleName = Literal["member", "admin", "owner"]


def org_of(request: HttpRequest, org_id: str) -> tuple[Organization, Role]:
    """(org, the caller's role); 404 for unknown ids and orgs the caller is not a member of."""
    public_id = public_id_or_none(org_id, "org")
    if public_id is None:
        raise NotFound("No such organization.")
    org, role = org_for_viewer(request.user, public_id=public_id)
    # Governance: an org requiring two-factor sign-in refuses members without it (403).
    two_factor.api_check(request.user, org.pk)
    return org, role


# --- schemas ---------------------------------------------------------------------------------


class OrgIn(Schema):
    name: text(100, min_length=1)
    slug: text(50) | None = None
    workspace_id: text(40) | None = None


class OrgUpdateIn(Schema):
    name: text(100) | None = None
    slug: text(50) | None = None


class OrgOut(Schema):
    id: str
    name: str
    slug: str
    created_at: datetime
    role: RoleName


class WorkspaceOut(Schema):
    id: str
    name: str
    slug: str
    organization_id: str | None
    created_at: datetime
    linked_at: datetime | None
    member_count: int
    warehouse_count: int
    model_count: int
    destination_count: int
    sync_count: int


class WorkspacePage(Page):
    items: list[WorkspaceOut]


class LinkIn(Schema):
    workspace_id: text(40) | None = None
    name: text(100, min_length=1) | None = None


def org_out(org: Organization, role: Role) -> dict:
    return {
        "id": org.public_id,
        "name": org.name,
        "slug": org.slug,
        "created_at": org.created_at,
        "role": Role(role).label,
    }


def workspace_out(ws: Any, org: Organization | None) -> dict:  # a linked_workspaces() row
    return {
        "id": ws.public_id,
        "name": ws.name,
        "slug": ws.slug,
        "organization_id": org.public_id if org else None,
        "created_at": ws.created_at,
        "linked_at": ws.linked_at,
        "member_count": ws.member_count,
        "warehouse_count": ws.warehouse_count,
        "model_count": ws.model_count,
        "destination_count": ws.destination_count,
        "sync_count": ws.sync_count,
    }


# --- organizations ---------------------------------------------------------------------------


@router.post("", response={201: OrgOut, **errors(400, 403, 404, 409)}, summary="Create")
def create_organization(request, payload: OrgIn):
    """Create an organization owned by the caller; `workspace_id` (which the caller owns)
    becomes its first linked workspace."""
    workspace = None
    if payload.workspace_id is not None:
        public_id = public_id_or_none(payload.workspace_id, "ws")
        workspace = Workspace.objects.filter(public_id=public_id).first() if public_id else None
        if not workspace:
            raise NotFound("No such workspace.")
    org = services.org_create(
        actor=request.user, name=payload.name, slug=payload.slug, workspace=workspace
    )
    return 201, org_out(org, Role.OWNER)


@router.get("/{org_id}", response={200: OrgOut, **errors(404)}, summary="Get")
def get_organization(request, org_id: str):
    org, role = org_of(request, org_id)
    return org_out(org, role)


@router.put("/{org_id}", response={200: OrgOut, **errors(400, 403, 404)}, summary="Update")
def update_organization(request, org_id: str, payload: OrgUpdateIn):
    """Change the name and/or slug (owners and admins)."""
    org, role = org_of(request, org_id)
    org = services.org_update(actor=request.user, org=org, name=payload.name, slug=payload.slug)
    return org_out(org, role)


@router.delete("/{org_id}", response={204: None, **errors(403, 404)}, summary="Delete")
def delete_organization(request, org_id: str):
    """Owners only. Unlinks every workspace (org-granted access becomes direct); deletes no
    workspace and no data; audit events stay."""
    org, _ = org_of(request, org_id)
    # The DELETE request itself is the confirmation the page asks for by typing the slug.
    services.org_delete(actor=request.user, org=org, confirm_slug=org.slug)
    return 204, None


# --- workspaces of an organization -----------------------------------------------------------


@router.get(
    "/{org_id}/workspaces", response={200: WorkspacePage, **errors(404)}, summary="List workspaces"
)
def list_workspaces(
    request,
    org_id: str,
    limit: int = Query(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT),
    cursor: text(200) | None = None,
):
    org, _ = org_of(request, org_id)
    return paginate(
        request,
        linked_workspaces(org),
        order=("name", "pk"),
        limit=limit,
        cursor=cursor,
        serialize=lambda rows: (workspace_out(ws, org) for ws in rows),
    )


@router.post(
    "/{org_id}/workspaces",
    response={201: WorkspaceOut, **errors(400, 403, 404, 409)},
    summary="Link or create a workspace",
)
def link_workspace(request, org_id: str, payload: LinkIn):
    """`{"workspace_id": "ws_…"}` links an existing workspace the caller owns or administers;
    `{"name": "…"}` creates a new workspace inside the organization (owners only)."""
    org, _ = org_of(request, org_id)
    if (payload.workspace_id is None) == (payload.name is None):
        raise ValidationFailed(
            "Send either workspace_id (link an existing workspace) or name (create one).",
            fields={"workspace_id": "Give workspace_id or name, not both."},
        )
    if payload.workspace_id is not None:
        public_id = public_id_or_none(payload.workspace_id, "ws")
        workspace = Workspace.objects.filter(public_id=public_id).first() if public_id else None
        if not workspace:
            raise NotFound("No such workspace.")
        workspace = services.workspace_link(actor=request.user, org=org, workspace=workspace)
    else:
        workspace = services.workspace_create_linked(
            actor=request.user, org=org, name=payload.name or ""
        )
    return 201, workspace_out(linked_workspaces(org).get(pk=workspace.pk), org)


@router.delete(
    "/{org_id}/workspaces/{workspace_id}",
    response={204: None, **errors(403, 404, 409)},
    summary="Unlink a workspace",
)
def unlink_workspace(request, org_id: str, workspace_id: str):
    """Org-granted access to the workspace ends; direct access and all data stay."""
    org, _ = org_of(request, org_id)
    public_id = public_id_or_none(workspace_id, "ws")
    workspace = (
        public_id and Workspace.objects.filter(public_id=public_id, organization=org).first()
    )
    if not workspace:
        raise NotFound("That workspace is not linked to this organization.")
    services.workspace_unlink(actor=request.user, org=org, workspace=workspace)
    return 204, None
