"""/api/v1/organizations/{org_id}/members and …/invitations."""

from datetime import timedelta

import pytest
from django.utils import timezone

from audit.models import AuditEvent
from config.roles import Role
from members.invitations import member_invite
from members.models import Invitation, OrgMembership
from orgs.services import org_create
from tests.api.conftest import error_of
from tests.factories import UserFactory, add_to_org
from workspaces.models import WorkspaceMembership
from workspaces.services import workspace_create


def url(ns, suffix=""):
    return f"/organizations/{ns.org.public_id}{suffix}"


def mem(ns, user):
    return OrgMembership.objects.get(organization=ns.org, user=user).public_id


def invite(ns, email="dana@acme.test", role=Role.MEMBER, grants=None):
    (inv,) = member_invite(
        actor=ns.owner, org=ns.org, emails=[email], org_role=role, grants=grants or {}
    )
    return inv


# --- list --------------------------------------------------------------------------------------


def test_list_members_for_every_member(org_setup, api, django_assert_max_num_queries):
    client = api(org_setup.member)
    with django_assert_max_num_queries(12):
        response = client.get(url(org_setup, "/members"))
    assert response.status_code == 200
    items = response.json()["items"]
    assert [m["email"] for m in items] == ["olivia@acme.test", "bob@acme.test", "carol@acme.test"]
    bob = items[1]
    assert bob["id"].startswith("mem_") and bob["org_role"] == "admin"
    assert bob["workspace_count"] == 1
    assert bob["workspace_access"] == [
        {
            "workspace_id": org_setup.ws_a.public_id,
            "workspace_name": "Production",
            "role": "admin",
            "source": "org",
        }
    ]
    assert response.json()["next"] is None


@pytest.mark.parametrize(
    ("params", "emails"),
    [
        ({"role": "admin"}, ["bob@acme.test"]),
        ({"q": "CAROL"}, ["carol@acme.test"]),
        ({"workspace": "ws_b"}, ["olivia@acme.test", "carol@acme.test"]),
    ],
)
def test_list_members_filters(org_setup, api, params, emails):
    if params.get("workspace") == "ws_b":
        params = {"workspace": org_setup.ws_b.public_id}
    response = api(org_setup.owner).get(url(org_setup, "/members"), params)
    assert [m["email"] for m in response.json()["items"]] == emails


def test_list_members_pages_with_a_cursor(org_setup, api):
    for i in range(3):
        add_to_org(UserFactory(email=f"extra{i}@acme.test"), org_setup.org)
    client = api(org_setup.owner)
    seen, next_url = [], url(org_setup, "/members") + "?limit=2"
    while next_url:
        page = client.get(next_url).json()
        assert len(page["items"]) <= 2
        seen += [m["email"] for m in page["items"]]
        next_url = page["next"]
    assert len(seen) == 6 == len(set(seen))


def test_list_members_bad_input_and_other_org(org_setup, api):
    client = api(org_setup.owner)
    assert client.get(url(org_setup, "/members"), {"role": "boss"}).status_code == 422
    assert client.get(url(org_setup, "/members"), {"limit": 500}).status_code == 422
    assert api(org_setup.stranger).get(url(org_setup, "/members")).status_code == 404


# --- invite ------------------------------------------------------------------------------------


def test_invite_returns_the_invitation(org_setup, api):
    body = {
        "email": "  Dana@Acme.test ",
        "org_role": "admin",
        "workspace_access": [{"workspace_id": org_setup.ws_b.public_id, "role": "member"}],
    }
    response = api(org_setup.admin).post(url(org_setup, "/members/invite"), body)
    assert response.status_code == 201
    inv = response.json()
    assert inv["id"].startswith("inv_") and inv["email"] == "dana@acme.test"
    assert inv["org_role"] == "admin" and inv["status"] == "pending"
    assert inv["invited_by"] == "bob@acme.test"
    assert inv["workspace_access"] == [
        {"workspace_id": org_setup.ws_b.public_id, "workspace_name": "Staging", "role": "member"}
    ]
    assert AuditEvent.objects.get(action="member.invited").actor_type == "token"


def test_invite_wrong_role_is_403(org_setup, api):
    response = api(org_setup.member).post(
        url(org_setup, "/members/invite"), {"email": "x@acme.test"}
    )
    assert response.status_code == 403 and "admin" in error_of(response)["message"]
    response = api(org_setup.admin).post(
        url(org_setup, "/members/invite"), {"email": "x@acme.test", "org_role": "owner"}
    )
    assert response.status_code == 403 and "owner" in error_of(response)["message"]
    assert not Invitation.objects.exists()


def test_invite_conflicts_are_409(org_setup, api):
    client = api(org_setup.owner)
    response = client.post(url(org_setup, "/members/invite"), {"email": "carol@acme.test"})
    assert response.status_code == 409 and error_of(response)["code"] == "already_member"
    invite(org_setup, "dana@acme.test")
    response = client.post(url(org_setup, "/members/invite"), {"email": "DANA@acme.test"})
    assert response.status_code == 409 and "resend" in error_of(response)["message"].lower()


def test_invite_field_errors_are_422(org_setup, api):
    client = api(org_setup.owner)
    other_ws = workspace_create(actor=org_setup.owner, name="Unlinked")
    cases = [
        {"email": "not-an-email"},
        {"email": "x@acme.test", "org_role": "boss"},
        {
            "email": "x@acme.test",
            "workspace_access": [{"workspace_id": other_ws.public_id, "role": "admin"}],
        },
        {
            "email": "x@acme.test",
            "workspace_access": [{"workspace_id": "ws_nope", "role": "admin"}],
        },
        {"email": "x@acme.test", "workspace_access": [{"workspace_id": org_setup.ws_a.public_id}]},
        {
            "email": "x@acme.test",
            "workspace_access": [
                {"workspace_id": org_setup.ws_a.public_id, "role": "admin"},
                {"workspace_id": org_setup.ws_a.public_id, "role": "member"},
            ],
        },
        {"email": 42},
    ]
    for body in cases:
        response = client.post(url(org_setup, "/members/invite"), body)
        assert response.status_code == 422, body
        assert error_of(response)["fields"], body
    assert not Invitation.objects.exists()


def test_invite_other_org_is_404(org_setup, api):
    response = api(org_setup.stranger).post(
        url(org_setup, "/members/invite"), {"email": "x@y.test"}
    )
    assert response.status_code == 404


# --- update ------------------------------------------------------------------------------------


def test_change_org_role(org_setup, api):
    response = api(org_setup.admin).put(
        url(org_setup, f"/members/{mem(org_setup, org_setup.member)}"), {"org_role": "admin"}
    )
    assert response.status_code == 200 and response.json()["org_role"] == "admin"
    assert AuditEvent.objects.filter(action="member.role_changed").count() == 1


def test_workspace_access_is_set_completely(org_setup, api):
    member_url = url(org_setup, f"/members/{mem(org_setup, org_setup.member)}")
    body = {"workspace_access": [{"workspace_id": org_setup.ws_a.public_id, "role": "admin"}]}
    response = api(org_setup.admin).put(member_url, body)
    assert response.status_code == 200
    assert [(a["workspace_id"], a["role"]) for a in response.json()["workspace_access"]] == [
        (org_setup.ws_a.public_id, "admin")
    ]
    assert not WorkspaceMembership.objects.filter(
        user=org_setup.member, workspace=org_setup.ws_b
    ).exists()
    response = api(org_setup.admin).put(member_url, {"workspace_access": []})
    assert response.json()["workspace_access"] == [] and response.json()["workspace_count"] == 0


def test_update_wrong_role_is_403(org_setup, api):
    carol = url(org_setup, f"/members/{mem(org_setup, org_setup.member)}")
    olivia = url(org_setup, f"/members/{mem(org_setup, org_setup.owner)}")
    assert api(org_setup.member).put(carol, {"org_role": "admin"}).status_code == 403
    response = api(org_setup.admin).put(carol, {"org_role": "owner"})
    assert response.status_code == 403 and "owner" in error_of(response)["message"]
    assert api(org_setup.admin).put(olivia, {"org_role": "member"}).status_code == 403
    assert OrgMembership.objects.get(user=org_setup.member).role == Role.MEMBER


def test_demoting_the_last_owner_is_409(org_setup, api):
    response = api(org_setup.owner).put(
        url(org_setup, f"/members/{mem(org_setup, org_setup.owner)}"), {"org_role": "admin"}
    )
    assert response.status_code == 409 and error_of(response)["code"] == "last_owner"


def test_update_is_all_or_nothing(org_setup, api):
    response = api(org_setup.owner).put(
        url(org_setup, f"/members/{mem(org_setup, org_setup.member)}"),
        {
            "org_role": "admin",
            "workspace_access": [{"workspace_id": "ws_unknown", "role": "admin"}],
        },
    )
    assert response.status_code == 422
    assert "workspace_access.0.workspace_id" in error_of(response)["fields"]
    assert OrgMembership.objects.get(user=org_setup.member).role == Role.MEMBER
    assert not AuditEvent.objects.filter(action="member.role_changed").exists()


def test_update_unknown_or_other_org_member_is_404(org_setup, api):
    other_owner = UserFactory()
    other = org_create(actor=other_owner, name="Other")
    their_member = OrgMembership.objects.get(organization=other).public_id
    client = api(org_setup.owner)
    assert (
        client.put(url(org_setup, f"/members/{their_member}"), {"org_role": "admin"}).status_code
        == 404
    )
    assert (
        client.put(url(org_setup, "/members/mem_nobody"), {"org_role": "admin"}).status_code == 404
    )
    carol = url(org_setup, f"/members/{mem(org_setup, org_setup.member)}")
    assert api(org_setup.stranger).put(carol, {"org_role": "admin"}).status_code == 404


# --- remove ------------------------------------------------------------------------------------


def test_remove_member_everywhere(org_setup, api):
    response = api(org_setup.admin).delete(
        url(org_setup, f"/members/{mem(org_setup, org_setup.member)}")
    )
    assert response.status_code == 204
    assert not OrgMembership.objects.filter(
        user=org_setup.member, organization=org_setup.org
    ).exists()
    assert not WorkspaceMembership.objects.filter(user=org_setup.member).exists()


def test_remove_errors(org_setup, api):
    carol = url(org_setup, f"/members/{mem(org_setup, org_setup.member)}")
    bob = url(org_setup, f"/members/{mem(org_setup, org_setup.admin)}")
    olivia = url(org_setup, f"/members/{mem(org_setup, org_setup.owner)}")
    assert api(org_setup.member).delete(bob).status_code == 403
    assert api(org_setup.admin).delete(olivia).status_code == 403
    assert api(org_setup.stranger).delete(carol).status_code == 404
    assert api(org_setup.owner).delete(olivia).status_code == 409  # yourself: use leave
    assert OrgMembership.objects.filter(organization=org_setup.org).count() == 3


# --- invitations -------------------------------------------------------------------------------


def test_list_invitations(org_setup, api):
    first = invite(org_setup, "dana@acme.test", grants={org_setup.ws_a.pk: Role.ADMIN})
    second = invite(org_setup, "erin@acme.test")
    response = api(org_setup.admin).get(url(org_setup, "/invitations"), {"limit": 1})
    assert response.status_code == 200
    page = response.json()
    assert [i["id"] for i in page["items"]] == [second.public_id]
    page2 = api(org_setup.admin).get(page["next"]).json()
    assert [i["id"] for i in page2["items"]] == [first.public_id]
    assert page2["items"][0]["workspace_access"][0]["role"] == "admin"


def test_list_invitations_wrong_role_and_other_org(org_setup, api):
    assert api(org_setup.member).get(url(org_setup, "/invitations")).status_code == 403
    assert api(org_setup.stranger).get(url(org_setup, "/invitations")).status_code == 404


def test_resend_renews_the_link(org_setup, api):
    inv = invite(org_setup)
    Invitation.objects.filter(pk=inv.pk).update(expires_at=timezone.now() - timedelta(days=1))
    old_hash = Invitation.objects.get(pk=inv.pk).token_hash
    response = api(org_setup.admin).post(url(org_setup, f"/invitations/{inv.public_id}/resend"))
    assert response.status_code == 200
    inv.refresh_from_db()
    assert inv.token_hash != old_hash and inv.expires_at > timezone.now() + timedelta(days=6)
    assert response.json()["status"] == "pending"


def test_resend_errors(org_setup, api):
    inv = invite(org_setup)
    resend = url(org_setup, f"/invitations/{inv.public_id}/resend")
    assert api(org_setup.member).post(resend).status_code == 403
    assert api(org_setup.stranger).post(resend).status_code == 404
    assert (
        api(org_setup.owner).post(url(org_setup, "/invitations/inv_nope/resend")).status_code == 404
    )
    assert (
        api(org_setup.owner).delete(url(org_setup, f"/invitations/{inv.public_id}")).status_code
        == 204
    )
    response = api(org_setup.owner).post(resend)
    assert response.status_code == 409 and error_of(response)["code"] == "invite_revoked"


def test_revoke_invitation(org_setup, api):
    inv = invite(org_setup)
    revoke = url(org_setup, f"/invitations/{inv.public_id}")
    assert api(org_setup.member).delete(revoke).status_code == 403
    assert api(org_setup.stranger).delete(revoke).status_code == 404
    assert api(org_setup.admin).delete(revoke).status_code == 204
    inv.refresh_from_db()
    assert inv.status == Invitation.Status.REVOKED
    assert api(org_setup.admin).delete(revoke).status_code == 409
    assert api(org_setup.admin).get(url(org_setup, "/invitations")).json()["items"] == []


def test_invitation_of_another_org_is_404(org_setup, api):
    other_owner = UserFactory()
    other = org_create(actor=other_owner, name="Other")
    (theirs,) = member_invite(
        actor=other_owner, org=other, emails=["z@other.test"], org_role=Role.MEMBER, grants={}
    )
    response = api(org_setup.owner).delete(url(org_setup, f"/invitations/{theirs.public_id}"))
    assert response.status_code == 404
    theirs.refresh_from_db()
    assert theirs.status == Invitation.Status.PENDING
