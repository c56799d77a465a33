"""Overview, sync runs and workspace deletion pages."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEvent
from config.roles import Role
from orgs.models import GovernancePolicy
from orgs.services import org_create
from tests.factories import SyncRunFactory
from workspaces.models import Warehouse, Workspace


def test_overview_shows_counts_and_recent_runs(ws, login):
    SyncRunFactory(sync=ws.objs["sync"], rows_processed=1234)
    page = login(ws.member).get(reverse("workspaces:overview", args=[ws.workspace.slug]))
    assert page.status_code == 200
    assert page.context["counts"] == {
        "warehouses": 1,
        "models": 1,
        "destinations": 1,
        "syncs": 1,
        "members": 3,
    }
    html = page.content.decode()
    assert "To HubSpot" in html
    assert "not part of an organization" in html


def test_overview_shows_inherited_governance_read_only(ws, login):
    org = org_create(actor=ws.owner, name="Acme Corp", workspace=ws.workspace)
    GovernancePolicy.objects.create(
        organization=org, kind="allowed_email_domains", value={"domains": ["acme.test"]}
    )
    GovernancePolicy.objects.create(
        organization=org, kind="sync_min_role", value={"role": int(Role.OWNER)}
    )
    html = (
        login(ws.member)
        .get(reverse("workspaces:overview", args=[ws.workspace.slug]))
        .content.decode()
    )
    assert "Inherited from Acme Corp" in html
    assert "acme.test" in html
    assert "needs the owner role" in html
    assert "<form" not in html.split('data-testid="inherited-governance"')[1].split("</table>")[0]


def test_overview_is_404_for_a_stranger(ws, login):
    assert (
        login(ws.stranger).get(reverse("workspaces:overview", args=[ws.workspace.slug])).status_code
        == 404
    )


def test_sync_runs_page_filters_paginates_and_swaps_rows(ws, login):
    now = timezone.now()
    for i in range(60):
        SyncRunFactory(
            sync=ws.objs["sync"],
            started_at=now - timedelta(hours=i),
            finished_at=now - timedelta(hours=i),
            status="failed" if i % 10 == 0 else "succeeded",
            error="boom" if i % 10 == 0 else "",
        )
    client = login(ws.member)
    url = reverse("workspaces:sync_runs", args=[ws.workspace.slug, ws.objs["sync"].public_id])
    page = client.get(url)
    assert page.status_code == 200
    assert len(page.context["page"]) == 50
    assert page.context["page"].paginator.num_pages == 2
    failed = client.get(url, {"status": "failed"})
    assert failed.context["page"].paginator.count == 6
    partial = client.get(url, {"page": 2}, HTTP_HX_REQUEST="true")
    body = partial.content.decode()
    assert body.lstrip().startswith('<div id="runs">')
    assert "<html" not in body
    assert login(ws.stranger).get(url).status_code == 404


def test_runs_of_another_workspaces_sync_are_404(ws, login):
    from tests.factories import SyncFactory

    foreign = SyncFactory(workspace=ws.other)
    url = reverse("workspaces:sync_runs", args=[ws.workspace.slug, foreign.public_id])
    assert login(ws.owner).get(url).status_code == 404


@pytest.mark.parametrize("who", ["member", "admin"])
def test_only_owners_delete_the_workspace(ws, login, who):
    client = login(getattr(ws, who))
    url = reverse("workspaces:delete", args=[ws.workspace.slug])
    assert client.get(url).status_code == 403
    assert client.post(url, {"confirm_name": "Production"}).status_code == 403
    assert Workspace.objects.filter(pk=ws.workspace.pk).exists()


def test_delete_needs_the_exact_name_then_deletes_with_one_event(ws, login):
    client = login(ws.owner)
    url = reverse("workspaces:delete", args=[ws.workspace.slug])
    assert client.get(url).status_code == 200
    response = client.post(url, {"confirm_name": "production"})
    assert response.status_code == 422
    assert "confirm_name" in response.context["form"].errors
    assert Workspace.objects.filter(pk=ws.workspace.pk).exists()
    assert not AuditEvent.objects.filter(action="workspace.deleted").exists()

    response = client.post(url, {"confirm_name": "Production"})
    assert response.status_code == 302
    assert not Workspace.objects.filter(pk=ws.workspace.pk).exists()
    assert not Warehouse.objects.filter(pk=ws.objs["warehouse"].pk).exists()
    assert AuditEvent.objects.filter(action="workspace.deleted").count() == 1
    assert login(ws.stranger).get(url).status_code == 404
