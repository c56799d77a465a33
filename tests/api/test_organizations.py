"""/api/v1/organizations and …/workspaces: success, each error status, other org, wrong role."""

from audit.models import AuditEvent
from config.roles import Role
from members.models import OrgMembership
from orgs.models import Organization
from orgs.services import org_create
from tests.api.conftest import error_of
from tests.factories import UserFactory, add_to_workspace
from workspaces.models import Workspace, WorkspaceMembership
from workspaces.services import workspace_create


def org_url(ns, suffix=""):
    return f"/organizations/{ns.org.public_id}{suffix}"


# --- create ------------------------------------------------------------------------------------


def test_create_without_workspace_starts_empty(owner, api):
    response = api(owner).post("/organizations", {"name": "Beta Labs"})
    assert response.status_code == 201
    body = response.json()
    assert body["id"].startswith("org_") and body["slug"] == "beta-labs"
    assert body["role"] == "owner" and body["created_at"].endswith("Z")
    org = Organization.objects.get(public_id=body["id"])
    assert OrgMembership.objects.get(organization=org).role == Role.OWNER
    assert not Workspace.objects.filter(organization=org).exists()


def test_create_from_a_workspace_links_it(owner, api):
    ws = workspace_create(actor=owner, name="Solo")
    response = api(owner).post("/organizations", {"name": "Solo Org", "workspace_id": ws.public_id})
    assert response.status_code == 201
    ws.refresh_from_db()
    assert ws.organization.public_id == response.json()["id"]


def test_create_from_someone_elses_workspace(owner, api):
    ws = workspace_create(actor=owner, name="Solo")
    other = UserFactory()
    assert (
        api(other).post("/organizations", {"name": "X", "workspace_id": ws.public_id}).status_code
        == 404
    )
    add_to_workspace(other, ws, Role.ADMIN)
    response = api(other).post("/organizations", {"name": "X", "workspace_id": ws.public_id})
    assert response.status_code == 403 and "owner" in error_of(response)["message"]
    assert not Organization.objects.exists()


def test_create_from_a_linked_workspace_is_409(org_setup, api):
    response = api(org_setup.owner).post(
        "/organizations", {"name": "Again", "workspace_id": org_setup.ws_a.public_id}
    )
    assert response.status_code == 409
    assert Organization.objects.count() == 1


def test_create_with_a_taken_slug_is_422(org_setup, api):
    response = api(org_setup.owner).post("/organizations", {"name": "Other", "slug": "acme-corp"})
    assert response.status_code == 422
    assert "slug" in error_of(response)["fields"]


def test_create_with_unknown_workspace_is_404(owner, api):
    for ws_id in ("ws_doesnotexist", "garbage"):
        response = api(owner).post("/organizations", {"name": "X", "workspace_id": ws_id})
        assert response.status_code == 404


# --- read, update, delete ----------------------------------------------------------------------


def test_every_member_reads_the_org(org_setup, api):
    for user, role in ((org_setup.owner, "owner"), (org_setup.member, "member")):
        response = api(user).get(org_url(org_setup))
        assert response.status_code == 200
        assert response.json() == {
            "id": org_setup.org.public_id,
            "name": "Acme Corp",
            "slug": "acme-corp",
            "created_at": response.json()["created_at"],
            "role": role,
        }


def test_other_org_and_unknown_ids_are_404(org_setup, api):
    other_owner = UserFactory()
    other = org_create(actor=other_owner, name="Other Org")
    client = api(org_setup.owner)
    for org_id in (other.public_id, "org_missing", "ws_wrongprefix", "%00"):
        assert client.get(f"/organizations/{org_id}").status_code == 404
    assert api(org_setup.stranger).get(org_url(org_setup)).status_code == 404


def test_deleted_org_is_404(org_setup, api):
    client = api(org_setup.owner)
    assert client.delete(org_url(org_setup)).status_code == 204
    assert client.get(org_url(org_setup)).status_code == 404


def test_update_by_admin(org_setup, api):
    response = api(org_setup.admin).put(
        org_url(org_setup), {"name": "Acme Inc", "slug": "acme-inc"}
    )
    assert response.status_code == 200
    assert response.json()["slug"] == "acme-inc" and response.json()["role"] == "admin"
    org_setup.org.refresh_from_db()
    assert org_setup.org.name == "Acme Inc"


def test_update_partial_keeps_the_rest(org_setup, api):
    response = api(org_setup.owner).put(org_url(org_setup), {"name": "Acme Two"})
    assert response.json()["slug"] == "acme-corp"


def test_update_wrong_role_other_org_bad_slug(org_setup, api):
    response = api(org_setup.member).put(org_url(org_setup), {"name": "Mine now"})
    assert response.status_code == 403 and "admin" in error_of(response)["message"]
    assert api(org_setup.stranger).put(org_url(org_setup), {"name": "x"}).status_code == 404
    response = api(org_setup.owner).put(org_url(org_setup), {"slug": "Not A Slug!"})
    assert response.status_code == 422 and "slug" in error_of(response)["fields"]
    org_setup.org.refresh_from_db()
    assert org_setup.org.name == "Acme Corp"


def test_delete_keeps_workspaces_and_converts_access(org_setup, api):
    response = api(org_setup.owner).delete(org_url(org_setup))
    assert response.status_code == 204 and response.content == b""
    org_setup.ws_b.refresh_from_db()
    assert org_setup.ws_b.organization is None
    carol = WorkspaceMembership.objects.get(user=org_setup.member, workspace=org_setup.ws_b)
    assert carol.source == WorkspaceMembership.Source.DIRECT


def test_delete_wrong_role_and_other_org(org_setup, api):
    response = api(org_setup.admin).delete(org_url(org_setup))
    assert response.status_code == 403 and "owner" in error_of(response)["message"]
    assert api(org_setup.stranger).delete(org_url(org_setup)).status_code == 404
    org_setup.org.refresh_from_db()
    assert org_setup.org.deleted_at is None


# --- workspaces --------------------------------------------------------------------------------


def test_list_workspaces_with_cursor_pagination(org_setup, api, django_assert_max_num_queries):
    client = api(org_setup.member)
    with django_assert_max_num_queries(12):
        first = client.get(org_url(org_setup, "/workspaces"), {"limit": 1})
    assert first.status_code == 200
    page = first.json()
    assert [w["name"] for w in page["items"]] == ["Production"]
    assert page["next"].startswith("http://testserver/api/v1/")
    second = client.get(page["next"]).json()
    assert [w["name"] for w in second["items"]] == ["Staging"]
    assert second["next"] is None
    item = second["items"][0]
    assert (
        item["id"] == org_setup.ws_b.public_id
        and item["organization_id"] == org_setup.org.public_id
    )
    assert item["member_count"] == 2


def test_list_workspaces_bad_limit_or_cursor_is_422(org_setup, api):
    client = api(org_setup.owner)
    for params in ({"limit": 0}, {"limit": 101}, {"limit": "many"}, {"cursor": "bm9wZQ"}):
        response = client.get(org_url(org_setup, "/workspaces"), params)
        assert response.status_code == 422, params
        assert error_of(response)["fields"]


def test_list_workspaces_of_other_org_is_404(org_setup, api):
    assert api(org_setup.stranger).get(org_url(org_setup, "/workspaces")).status_code == 404


def test_link_an_existing_workspace(org_setup, api):
    ws = workspace_create(actor=org_setup.admin, name="Analytics")
    response = api(org_setup.admin).post(
        org_url(org_setup, "/workspaces"), {"workspace_id": ws.public_id}
    )
    assert response.status_code == 201
    assert response.json()["id"] == ws.public_id and response.json()["linked_at"]
    ws.refresh_from_db()
    assert ws.organization == org_setup.org


def test_link_needs_admin_and_your_own_workspace(org_setup, api):
    ws = workspace_create(actor=org_setup.member, name="Carol's")
    response = api(org_setup.member).post(
        org_url(org_setup, "/workspaces"), {"workspace_id": ws.public_id}
    )
    assert response.status_code == 403
    stranger_ws = workspace_create(actor=org_setup.stranger, name="Not yours")
    response = api(org_setup.admin).post(
        org_url(org_setup, "/workspaces"), {"workspace_id": stranger_ws.public_id}
    )
    assert response.status_code == 404  # you cannot annex (or even see) someone else's workspace
    stranger_ws.refresh_from_db()
    assert stranger_ws.organization is None


def test_link_a_workspace_of_another_org_is_409(org_setup, api):
    theirs = workspace_create(actor=org_setup.owner, name="Elsewhere")
    org_create(actor=org_setup.owner, name="Second Org", workspace=theirs)
    response = api(org_setup.owner).post(
        org_url(org_setup, "/workspaces"), {"workspace_id": theirs.public_id}
    )
    assert response.status_code == 409
    assert error_of(response)["code"] == "workspace_in_other_org"


def test_link_needs_exactly_one_of_id_or_name(org_setup, api):
    client = api(org_setup.owner)
    for body in ({}, {"workspace_id": org_setup.ws_a.public_id, "name": "Both"}):
        assert client.post(org_url(org_setup, "/workspaces"), body).status_code == 422


def test_create_linked_workspace_owner_only(org_setup, api):
    response = api(org_setup.admin).post(org_url(org_setup, "/workspaces"), {"name": "EMEA"})
    assert response.status_code == 403 and "owner" in error_of(response)["message"]
    response = api(org_setup.owner).post(org_url(org_setup, "/workspaces"), {"name": "EMEA"})
    assert response.status_code == 201
    ws = Workspace.objects.get(public_id=response.json()["id"])
    assert ws.organization == org_setup.org
    assert WorkspaceMembership.objects.get(workspace=ws).user == org_setup.owner


def test_link_in_other_org_is_404(org_setup, api):
    response = api(org_setup.stranger).post(org_url(org_setup, "/workspaces"), {"name": "Sneaky"})
    assert response.status_code == 404


def test_unlink(org_setup, api):
    url = org_url(org_setup, f"/workspaces/{org_setup.ws_b.public_id}")
    assert api(org_setup.member).delete(url).status_code == 403
    assert api(org_setup.stranger).delete(url).status_code == 404
    response = api(org_setup.admin).delete(url)
    assert response.status_code == 204
    org_setup.ws_b.refresh_from_db()
    assert org_setup.ws_b.organization is None
    assert not WorkspaceMembership.objects.filter(
        user=org_setup.member, workspace=org_setup.ws_b
    ).exists()
    assert api(org_setup.admin).delete(url).status_code == 404  # no longer linked


def test_unlink_that_would_leave_no_owner_is_409(org_setup, api):
    ws = Workspace.objects.create(name="Org-only", slug="org-only")
    add_to_workspace(org_setup.admin, ws, Role.OWNER, source="org")
    ws.organization = org_setup.org
    ws.save()
    response = api(org_setup.owner).delete(org_url(org_setup, f"/workspaces/{ws.public_id}"))
    assert response.status_code == 409 and error_of(response)["code"] == "last_owner"
    ws.refresh_from_db()
    assert ws.organization == org_setup.org
    assert not AuditEvent.objects.filter(action="workspace.unlinked").exists()
