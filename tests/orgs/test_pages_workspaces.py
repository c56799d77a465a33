"""Organization › Workspaces: list with counts, link, create linked, unlink (with its impact
preview), delete — and every refusal shown on the page with nothing changed."""

import pytest
from django.urls import reverse

from audit.models import AuditEvent
from config.roles import Role
from orgs.services import org_create, workspace_link
from tests.factories import (
    SyncFactory,
    UserFactory,
    WarehouseFactory,
    add_to_org,
    add_to_workspace,
)
from workspaces.models import Sync, Warehouse, Workspace, WorkspaceMembership
from workspaces.services import workspace_create

HTMX = {"HTTP_HX_REQUEST": "true"}


def _url(name, ns, workspace=None):
    args = [ns.org.slug] + ([workspace.public_id] if workspace else [])
    return reverse(f"orgs:{name}", args=args)


# --- the list ------------------------------------------------------------------------------


def test_list_shows_linked_workspaces_with_counts(org_setup, login):
    ns = org_setup
    SyncFactory(workspace=ns.ws_b)
    WarehouseFactory(workspace=ns.ws_b)
    response = login(ns.member).get(_url("workspaces", ns))
    assert response.status_code == 200
    rows = {w.name: w for w in response.context["workspaces"]}
    assert set(rows) == {"Production", "Staging"}
    staging = rows["Staging"]
    assert (staging.member_count, staging.warehouse_count, staging.sync_count) == (2, 2, 1)
    assert (staging.model_count, staging.destination_count) == (1, 1)
    page = response.content.decode()
    assert 'aria-current="page">Workspaces</a>' in page
    # A plain member sees the list but no link/unlink controls.
    assert "Link Workspace" not in page and "Unlink…" not in page
    # An org role gives no workspace access: only Staging (where Carol has access) is a link.
    assert f'href="{reverse("workspaces:overview", args=[ns.ws_b.slug])}"' in page
    assert f'href="{reverse("workspaces:overview", args=[ns.ws_a.slug])}"' not in page


def test_list_query_count_does_not_grow_with_workspaces(
    org_setup, login, django_assert_max_num_queries
):
    ns = org_setup
    client = login(ns.owner)
    for i in range(3):
        ws = workspace_create(actor=ns.owner, name=f"Extra {i}")
        workspace_link(actor=ns.owner, org=ns.org, workspace=ws)
        SyncFactory(workspace=ws)
    with django_assert_max_num_queries(12):
        response = client.get(_url("workspaces", ns))
    assert len(response.context["workspaces"]) == 5


def test_owner_sees_link_create_unlink_and_delete(org_setup, login):
    ns = org_setup
    spare = workspace_create(actor=ns.owner, name="Spare")
    page = login(ns.owner).get(_url("workspaces", ns)).content.decode()
    assert "Link Workspace" in page and "Create a new workspace" in page.replace(
        "Or create", "Create"
    )
    assert f'value="{spare.public_id}"' in page
    assert _url("unlink", ns, ns.ws_b) in page and _url("workspace_delete", ns, ns.ws_b) in page


def test_admin_sees_link_and_unlink_but_not_create_or_delete(org_setup, login):
    ns = org_setup
    page = login(ns.admin).get(_url("workspaces", ns)).content.decode()
    assert "Link Workspace" in page and _url("unlink", ns, ns.ws_b) in page
    assert _url("workspace_create", ns) not in page
    assert _url("workspace_delete", ns, ns.ws_b) not in page


# --- linking -------------------------------------------------------------------------------


def test_linkable_lists_only_workspaces_the_actor_owns_in_no_org(org_setup, login):
    ns = org_setup
    mine = workspace_create(actor=ns.admin, name="Admin Owned")
    administered = workspace_create(actor=UserFactory(), name="Administered")
    add_to_workspace(ns.admin, administered, Role.ADMIN)
    only_member = workspace_create(actor=UserFactory(), name="Only Member")
    add_to_workspace(ns.admin, only_member, Role.MEMBER)
    elsewhere = workspace_create(actor=ns.admin, name="Elsewhere")
    org_create(actor=ns.admin, name="Other Org", workspace=elsewhere)
    response = login(ns.admin).get(_url("workspaces", ns))
    assert [w.name for w in response.context["linkable"]] == ["Admin Owned"]
    assert mine.public_id in response.content.decode()
    assert administered.public_id not in response.content.decode()


def test_linking_a_workspace(org_setup, login):
    ns = org_setup
    spare = workspace_create(actor=ns.admin, name="Spare")
    response = login(ns.admin).post(_url("link", ns), {"workspace": spare.public_id})
    assert response.status_code == 302
    spare.refresh_from_db()
    assert spare.organization_id == ns.org.pk
    assert AuditEvent.objects.filter(action="workspace.linked", target_id=spare.public_id).exists()
    page = login(ns.admin).get(response["Location"]).content.decode()
    assert "Spare is now linked to Acme Corp." in page


def test_linking_with_htmx_redirects_the_browser(org_setup, login):
    ns = org_setup
    spare = workspace_create(actor=ns.owner, name="Spare")
    response = login(ns.owner).post(_url("link", ns), {"workspace": spare.public_id}, **HTMX)
    assert response.status_code == 200
    assert response["HX-Redirect"] == _url("workspaces", ns)


def test_linking_a_workspace_in_another_org_is_a_409_error(org_setup, login):
    ns = org_setup
    other_owner = UserFactory()
    theirs = workspace_create(actor=other_owner, name="Theirs")
    other = org_create(actor=other_owner, name="Other Org", workspace=theirs)
    add_to_workspace(ns.owner, theirs, Role.OWNER)
    events_before = AuditEvent.objects.count()
    response = login(ns.owner).post(_url("link", ns), {"workspace": theirs.public_id})
    assert response.status_code == 409
    assert "Theirs already belongs to another organization" in response.content.decode()
    assert '<dialog id="link-dialog"' in response.content.decode()
    theirs.refresh_from_db()
    assert theirs.organization_id == other.pk
    assert AuditEvent.objects.count() == events_before


def test_link_refusal_with_htmx_swaps_only_the_dialog_body(org_setup, login):
    ns = org_setup
    response = login(ns.owner).post(_url("link", ns), {"workspace": ns.ws_a.public_id}, **HTMX)
    page = response.content.decode()
    assert response.status_code == 409
    assert page.lstrip().startswith('<div id="link-dialog-body">')
    assert "Production is already linked to Acme Corp." in page


@pytest.mark.parametrize("ws_role", [Role.MEMBER, Role.ADMIN])
def test_linking_needs_the_workspace_owner_role(org_setup, login, ws_role):
    """A workspace admin cannot hand the workspace's access over to an org (invariant 6)."""
    ns = org_setup
    foreign = workspace_create(actor=UserFactory(), name="Foreign")
    add_to_workspace(ns.admin, foreign, ws_role)
    response = login(ns.admin).post(_url("link", ns), {"workspace": foreign.public_id})
    assert response.status_code == 403
    assert "You need the owner role or higher in Foreign to link" in response.content.decode()
    foreign.refresh_from_db()
    assert foreign.organization_id is None


def test_linking_a_workspace_the_admin_cannot_see_is_not_found(org_setup, login):
    ns = org_setup
    foreign = workspace_create(actor=UserFactory(), name="Foreign")
    # Someone else's workspace answers exactly like a missing one (404); an empty field is a
    # form error (422).
    for value, status in ((foreign.public_id, 404), ("ws_doesnotexist", 404), ("", 422)):
        response = login(ns.admin).post(_url("link", ns), {"workspace": value})
        assert response.status_code == status, value
        assert "Foreign" not in response.content.decode()
    foreign.refresh_from_db()
    assert foreign.organization_id is None


def test_plan_limit_on_linking_is_shown(org_setup, login):
    ns = org_setup
    for i in range(3):  # Free plan: 5 linked workspaces
        workspace_link(
            actor=ns.owner, org=ns.org, workspace=workspace_create(actor=ns.owner, name=f"W{i}")
        )
    sixth = workspace_create(actor=ns.owner, name="Sixth")
    response = login(ns.owner).post(_url("link", ns), {"workspace": sixth.public_id})
    assert response.status_code == 409
    assert "plan allows 5 linked workspaces" in response.content.decode()
    sixth.refresh_from_db()
    assert sixth.organization_id is None


# --- create linked -------------------------------------------------------------------------


def test_owner_creates_a_linked_workspace_as_its_owner(org_setup, login):
    ns = org_setup
    response = login(ns.owner).post(_url("workspace_create", ns), {"name": "Analytics"})
    assert response.status_code == 302
    ws = Workspace.objects.get(name="Analytics")
    assert ws.organization_id == ns.org.pk
    m = WorkspaceMembership.objects.get(workspace=ws)
    assert (m.user_id, m.role, m.source) == (ns.owner.pk, Role.OWNER, "direct")
    assert {"workspace.created", "workspace.linked"} <= set(
        AuditEvent.objects.filter(target_id=ws.public_id).values_list("action", flat=True)
    )


@pytest.mark.parametrize("name", ["", "   ", "x" * 101])
def test_create_linked_bad_name_is_a_field_error(org_setup, login, name):
    ns = org_setup
    before = Workspace.objects.count()
    response = login(ns.owner).post(_url("workspace_create", ns), {"name": name})
    assert response.status_code == 422
    assert response.context["create_form"].errors["name"]
    assert Workspace.objects.count() == before


# --- unlink --------------------------------------------------------------------------------


def test_unlink_preview_names_exactly_who_loses_access(org_setup, login):
    ns = org_setup
    direct = UserFactory(full_name="Dana Direct")
    add_to_workspace(direct, ns.ws_b, Role.ADMIN, source="direct")
    response = login(ns.admin).get(_url("unlink", ns, ns.ws_b), **HTMX)
    page = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in page  # the dialog's content only
    assert "1 person loses access" in page
    assert "Carol Member" in page and "carol@acme.test · member" in page
    assert "Dana Direct" not in page and "Olivia Owner" not in page
    # Without htmx it is a whole page (the dialog link's real href).
    full = login(ns.admin).get(_url("unlink", ns, ns.ws_b)).content.decode()
    assert "<html" in full and "Carol Member" in full


def test_unlink_keeps_direct_access_drops_org_access_and_keeps_data(org_setup, login):
    ns = org_setup
    direct = UserFactory()
    add_to_workspace(direct, ns.ws_b, Role.ADMIN, source="direct")
    SyncFactory(workspace=ns.ws_b)
    response = login(ns.admin).post(_url("unlink", ns, ns.ws_b))
    assert response.status_code == 302
    ns.ws_b.refresh_from_db()
    assert ns.ws_b.organization_id is None
    remaining = set(
        WorkspaceMembership.objects.filter(workspace=ns.ws_b).values_list("user", flat=True)
    )
    assert remaining == {ns.owner.pk, direct.pk}
    assert Sync.objects.filter(workspace=ns.ws_b).count() == 1
    assert Warehouse.objects.filter(workspace=ns.ws_b).count() == 1
    event = AuditEvent.objects.get(action="workspace.unlinked")
    assert event.organization_id == ns.org.pk
    assert event.details["access_removed"] == [{"user": "carol@acme.test", "role": "member"}]


def test_unlink_refused_when_it_would_leave_no_owner(org_setup, login):
    ns = org_setup
    WorkspaceMembership.objects.filter(workspace=ns.ws_b, user=ns.owner).update(source="org")
    client = login(ns.owner)
    preview = client.get(_url("unlink", ns, ns.ws_b)).content.decode()
    assert "has no direct owner, so unlinking will be refused" in preview
    events_before = AuditEvent.objects.count()
    response = client.post(_url("unlink", ns, ns.ws_b), **HTMX)
    assert response.status_code == 409
    assert 'data-code="last_owner"' in response.content.decode()
    assert "without an owner" in response.content.decode()
    ns.ws_b.refresh_from_db()
    assert ns.ws_b.organization_id == ns.org.pk
    assert WorkspaceMembership.objects.filter(workspace=ns.ws_b).count() == 2
    assert AuditEvent.objects.count() == events_before


def test_workspace_of_another_org_is_a_404_on_unlink_and_delete(org_setup, login):
    ns = org_setup
    other_owner = UserFactory()
    theirs = workspace_create(actor=other_owner, name="Theirs")
    org_create(actor=other_owner, name="Other Org", workspace=theirs)
    client = login(ns.owner)
    for name in ("unlink", "workspace_delete"):
        assert client.get(_url(name, ns, theirs)).status_code == 404
        assert client.post(_url(name, ns, theirs), {"confirm_name": "Theirs"}).status_code == 404
    theirs.refresh_from_db()
    assert theirs.organization_id is not None


def test_other_org_pages_are_404_for_an_owner_of_another_org(org_setup, login):
    ns = org_setup
    other_owner = UserFactory()
    org_create(actor=other_owner, name="Other Org")
    client = login(other_owner)
    for name in ("overview", "workspaces", "settings"):
        response = client.get(reverse(f"orgs:{name}", args=[ns.org.slug]))
        assert response.status_code == 404
        assert "Acme Corp" not in response.content.decode()
    response = client.post(_url("unlink", ns, ns.ws_b))
    assert response.status_code == 404
    ns.ws_b.refresh_from_db()
    assert ns.ws_b.organization_id == ns.org.pk


# --- delete a workspace --------------------------------------------------------------------


def test_delete_asks_for_the_name_and_changes_nothing_when_wrong(org_setup, login):
    ns = org_setup
    SyncFactory(workspace=ns.ws_b)
    client = login(ns.owner)
    preview = client.get(_url("workspace_delete", ns, ns.ws_b)).content.decode()
    assert "Type <strong>Staging</strong> below to confirm." in preview
    assert "1 sync and their runs" in preview
    for wrong in ("", "staging", "Production"):
        response = client.post(_url("workspace_delete", ns, ns.ws_b), {"confirm_name": wrong})
        assert response.status_code == 422
        assert "Type Staging to confirm." in response.content.decode()
    assert Workspace.objects.filter(pk=ns.ws_b.pk).exists()
    assert Sync.objects.filter(workspace=ns.ws_b).count() == 1


def test_owner_deletes_a_workspace_and_its_data_but_not_its_history(org_setup, login):
    ns = org_setup
    SyncFactory(workspace=ns.ws_b)
    events_before = AuditEvent.objects.filter(workspace_id=ns.ws_b.pk).count()
    response = login(ns.owner).post(
        _url("workspace_delete", ns, ns.ws_b), {"confirm_name": "Staging"}
    )
    assert response.status_code == 302
    assert not Workspace.objects.filter(pk=ns.ws_b.pk).exists()
    assert not Sync.objects.filter(workspace_id=ns.ws_b.pk).exists()
    assert not WorkspaceMembership.objects.filter(workspace_id=ns.ws_b.pk).exists()
    assert AuditEvent.objects.filter(workspace_id=ns.ws_b.pk).count() == events_before + 1
    assert AuditEvent.objects.get(action="workspace.deleted").organization_id == ns.org.pk


def test_org_owner_without_workspace_access_can_still_delete_it(org_setup, login):
    ns = org_setup
    second_owner = UserFactory()
    add_to_org(second_owner, ns.org, Role.OWNER)
    response = login(second_owner).post(
        _url("workspace_delete", ns, ns.ws_b), {"confirm_name": "Staging"}
    )
    assert response.status_code == 302
    assert not Workspace.objects.filter(pk=ns.ws_b.pk).exists()


def test_an_empty_delete_post_asks_for_the_name(org_setup, login):
    ns = org_setup
    response = login(ns.owner).post(_url("workspace_delete", ns, ns.ws_b), {})
    assert response.status_code == 422
    assert "Type Staging to confirm." in response.content.decode()
    assert Workspace.objects.filter(pk=ns.ws_b.pk).exists()
