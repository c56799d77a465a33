"""The two requests of the source document, sent byte for byte as its curl examples write them."""

from config.roles import Role
from members.models import Invitation
from orgs.models import Organization
from tests.factories import WorkspaceFactory, add_to_workspace

# The -d bodies of the two curl examples in seed/000_74ea7ebc613fdf77.txt, verbatim.
CREATE_ORGANIZATION = """{
    "name": "Acme Corp",
    "slug": "acme-corp"
  }"""

INVITE_MEMBER = """{
    "email": "newmember@acmecorp.com",
    "org_role": "member",
    "workspace_access": [
      {
        "workspace_id": "ws_abc123",
        "role": "admin"
      },
      {
        "workspace_id": "ws_def456",
        "role": "member"
      }
    ]
  }"""


def test_create_organization_as_documented(owner, api):
    response = api(owner).post("/organizations", raw=CREATE_ORGANIZATION)
    assert response.status_code == 201
    body = response.json()
    assert body["name"] == "Acme Corp" and body["slug"] == "acme-corp"
    assert Organization.objects.get(public_id=body["id"]).slug == "acme-corp"


def test_invite_member_as_documented(owner, api):
    org_id = api(owner).post("/organizations", raw=CREATE_ORGANIZATION).json()["id"]
    org = Organization.objects.get(public_id=org_id)
    # The document's example ids: two workspaces linked to the org, administered by the caller.
    for public_id in ("ws_abc123", "ws_def456"):
        ws = WorkspaceFactory(public_id=public_id, organization=org)
        add_to_workspace(owner, ws, Role.OWNER)
    response = api(owner).post(f"/organizations/{org_id}/members/invite", raw=INVITE_MEMBER)
    assert response.status_code == 201
    body = response.json()
    assert body["email"] == "newmember@acmecorp.com" and body["org_role"] == "member"
    assert sorted((a["workspace_id"], a["role"]) for a in body["workspace_access"]) == [
        ("ws_abc123", "admin"),
        ("ws_def456", "member"),
    ]
    invitation = Invitation.objects.get(public_id=body["id"])
    assert {(g.workspace.public_id, g.role) for g in invitation.grants.all()} == {
        ("ws_abc123", Role.ADMIN),
        ("ws_def456", Role.MEMBER),
    }
