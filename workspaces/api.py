"""/api/v1/workspaces/{workspace_id}/syncs/{sync_id}/runs: the sync engine reports a finished run.

Runs are the source of the usage figures and of the `sync.*` audit events.
"""

from datetime import datetime
from typing import Literal

from django.http import HttpRequest
from ninja import Field, Router, Schema
from pydantic import StrictInt

from config.apikit import IsoDateTime, errors, public_id_or_none, text
from config.errors import NotFound
from config.roles import Role
from members import two_factor
from workspaces.models import Sync, Workspace
from workspaces.selectors import workspace_for_viewer
from workspaces.services import SYNC_RUN_MAX_BYTES, SYNC_RUN_MAX_ROWS, sync_run_record

router = Router(tags=["sync runs"])


def workspace_of(request: HttpRequest, workspace_id: str) -> tuple[Workspace, Role]:
    """(workspace, the caller's role); 404 for unknown ids and workspaces the caller is not a
    member of. As in orgs.api.org_of, an org requiring two-factor sign-in refuses its
    workspaces' members without it (403)."""
    public_id = public_id_or_none(workspace_id, "ws")
    if public_id is None:
        raise NotFound("No such workspace.")
    workspace, role = workspace_for_viewer(request.user, public_id=public_id)
    two_factor.api_check(request.user, workspace.organization_id)
    return workspace, role


class SyncRunIn(Schema):
    """Started within the last 30 days, finished by now (5 minutes of clock skew allowed)."""

    status: Literal["succeeded", "failed"]
    started_at: IsoDateTime
    finished_at: IsoDateTime
    rows_processed: StrictInt = Field(0, ge=0, le=SYNC_RUN_MAX_ROWS)
    bytes_processed: StrictInt = Field(0, ge=0, le=SYNC_RUN_MAX_BYTES)
    error: text(10_000) = ""


class SyncRunOut(Schema):
    id: str
    workspace_id: str
    sync_id: str
    status: Literal["succeeded", "failed"]
    started_at: datetime
    finished_at: datetime
    rows_processed: int
    bytes_processed: int
    error: str
    recorded_at: datetime


@router.post(
    "/{workspace_id}/syncs/{sync_id}/runs",
    response={201: SyncRunOut, **errors(400, 404)},
    summary="Report a finished sync run",
)
def report_sync_run(request, workspace_id: str, sync_id: str, payload: SyncRunIn):
    """Any member of the workspace may report a run (members may run syncs)."""
    workspace, _ = workspace_of(request, workspace_id)
    sync_public_id = public_id_or_none(sync_id, "syn")
    sync = (
        sync_public_id
        and Sync.objects.filter(workspace=workspace, public_id=sync_public_id).first()
    )
    if not sync:
        raise NotFound("No such sync in this workspace.")
    sync.workspace = workspace  # already read, with its org
    run = sync_run_record(
        actor=request.user,
        sync=sync,
        status=payload.status,
        started_at=payload.started_at,
        finished_at=payload.finished_at,
        rows_processed=payload.rows_processed,
        bytes_processed=payload.bytes_processed,
        error=payload.error,
    )
    return 201, {
        "id": run.public_id,
        "workspace_id": sync.workspace.public_id,
        "sync_id": sync.public_id,
        "status": run.status,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        "rows_processed": run.rows_processed,
        "bytes_processed": run.bytes_processed,
        "error": run.error,
        "recorded_at": run.recorded_at,
    }
