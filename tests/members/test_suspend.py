"""Suspend and unsuspend: role and grants stay, but the org's pages, its workspaces, the API and
every service refuse the suspended member until they are unsuspended."""

import json

import pytest
from django.urls import reverse

from audit.models import AuditEvent
from config.errors import Conflict, PermissionDenied, ValidationFailed
from config.roles import Role
from members.lifecycle import member_suspend, member_unsuspend
from members.models import OrgMembership
from members.services import member_change_role
from members.tokens import token_create
from tests.factories import UserFactory, add_to_org
from workspaces.models import WorkspaceMembership
from workspaces.services import resource_create


def mem(org, user):
    return OrgMembership.objects.get(organization=org, user=user)


def url(org, name, membership):
    return reverse(f"org_members:{name}", args=[org.slug, membership.public_id])


def api(client, user, method, path, body=None):
    _token, raw = token_create(actor=user, name="t")
    return getattr(client, method)(
        f"/api/v1{path}",
        json.dumps(body) if body is not None else None,
        content_type="application/json",
        headers={"Authorization": f"Bearer {raw}"},
    )


def test_suspended_member_keeps_access_but_is_refused_everywhere(org_setup, client, login):
    s = org_setup
    carol = mem(s.org, s.member)
    member_suspend(actor=s.admin, org=s.org, membership=carol, reason="on leave")
    carol.refresh_from_db()
    assert carol.suspended_at and carol.suspended_by == s.admin and carol.role == Role.MEMBER
    assert WorkspaceMembership.objects.filter(user=s.member, workspace=s.ws_b).exists()
    event = AuditEvent.objects.get(action="member.suspended")
    assert event.details["reason"] == "on leave" and event.target_id == s.member.public_id

    # The org's pages, its linked workspace's pages, the API with a token: 403 "suspended".
    page = login(s.member).get(reverse("orgs:overview", args=[s.org.slug]))
    assert page.status_code == 403 and b"suspended" in page.content
    ws_page = client.get(reverse("workspaces:overview", args=[s.ws_b.slug]))
    assert ws_page.status_code == 403
    response = api(client, s.member, "get", f"/organizations/{s.org.public_id}/members")
    assert response.status_code == 403 and response.json()["error"]["code"] == "suspended"
    # The switcher no longer offers the workspace.
    assert s.ws_b.slug not in client.get(reverse("workspaces:home")).content.decode()
    # Services refuse the suspended actor too.
    with pytest.raises(PermissionDenied) as exc:
        resource_create(
            actor=s.member,
            workspace=s.ws_b,
            kind="warehouse",
            data={"name": "W", "kind": "postgres"},
        )
    assert exc.value.code == "suspended"

    # Unsuspended: exactly the same access as before.
    member_unsuspend(actor=s.owner, org=s.org, membership=carol)
    assert AuditEvent.objects.filter(action="member.unsuspended").count() == 1
    assert login(s.member).get(reverse("orgs:overview", args=[s.org.slug])).status_code == 200
    assert client.get(reverse("workspaces:overview", args=[s.ws_b.slug])).status_code == 200


def test_a_suspended_admin_cannot_manage_members(org_setup):
    s = org_setup
    member_suspend(actor=s.owner, org=s.org, membership=mem(s.org, s.admin))
    with pytest.raises(PermissionDenied):
        member_change_role(
            actor=s.admin, org=s.org, membership=mem(s.org, s.member), role=Role.ADMIN
        )
    with pytest.raises(PermissionDenied):
        member_suspend(actor=s.admin, org=s.org, membership=mem(s.org, s.member))


def test_who_may_suspend_whom(org_setup):
    s = org_setup
    with pytest.raises(PermissionDenied):  # a member may not
        member_suspend(actor=s.member, org=s.org, membership=mem(s.org, s.admin))
    with pytest.raises(PermissionDenied):  # an admin may not suspend an owner
        member_suspend(actor=s.admin, org=s.org, membership=mem(s.org, s.owner))
    with pytest.raises(Conflict):  # nobody suspends themselves (an owner always remains)
        member_suspend(actor=s.owner, org=s.org, membership=mem(s.org, s.owner))
    with pytest.raises(ValidationFailed):
        member_suspend(actor=s.owner, org=s.org, membership=mem(s.org, s.member), reason="x" * 201)
    member_suspend(actor=s.owner, org=s.org, membership=mem(s.org, s.member))
    with pytest.raises(Conflict):
        member_suspend(actor=s.owner, org=s.org, membership=mem(s.org, s.member))
    with pytest.raises(Conflict):
        member_unsuspend(actor=s.owner, org=s.org, membership=mem(s.org, s.admin))
    assert AuditEvent.objects.filter(action="member.suspended").count() == 1


def test_a_suspended_owner_does_not_count_as_the_owner_who_remains(org_setup):
    s = org_setup
    second = UserFactory(email="otto@acme.test")
    add_to_org(second, s.org, Role.OWNER)
    member_suspend(actor=s.owner, org=s.org, membership=mem(s.org, second))
    with pytest.raises(Conflict):  # Olivia is the last owner who can act
        member_change_role(
            actor=s.owner, org=s.org, membership=mem(s.org, s.owner), role=Role.ADMIN
        )


def test_pages_suspend_and_unsuspend(org_setup, login):
    s = org_setup
    carol = mem(s.org, s.member)
    c = login(s.admin)
    assert c.get(url(s.org, "detail", carol)).content.count(b'data-testid="suspend"') == 1
    response = c.post(url(s.org, "suspend", carol), {"reason": "incident"})
    assert response.status_code == 302
    detail = c.get(url(s.org, "detail", carol))
    assert b'data-testid="suspended-banner"' in detail.content and b"incident" in detail.content
    directory = c.get(reverse("org_members:directory", args=[s.org.slug]), {"status": "suspended"})
    assert [m.user for m in directory.context["page"].object_list] == [s.member]
    assert b"still count as seats" in directory.content
    active = c.get(reverse("org_members:directory", args=[s.org.slug]), {"status": "active"})
    assert s.member not in [m.user for m in active.context["page"].object_list]
    assert c.post(url(s.org, "unsuspend", carol)).status_code == 302
    assert mem(s.org, s.member).suspended_at is None


def test_pages_refuse_wrong_role_other_org_and_bad_input(org_setup, login):
    s = org_setup
    carol, olivia = mem(s.org, s.member), mem(s.org, s.owner)
    assert login(s.member).post(url(s.org, "suspend", mem(s.org, s.admin))).status_code == 403
    response = login(s.admin).post(url(s.org, "suspend", olivia))
    assert response.status_code == 403 and mem(s.org, s.owner).suspended_at is None
    assert login(s.stranger).post(url(s.org, "suspend", carol)).status_code == 404
    assert login(s.admin).post(url(s.org, "unsuspend", carol)).status_code == 409
    long = login(s.admin).post(url(s.org, "suspend", carol), {"reason": "x" * 500})
    assert long.status_code == 422 and mem(s.org, s.member).suspended_at is None
    assert login(s.admin).get(url(s.org, "suspend", carol)).status_code == 405


def test_api_suspend_unsuspend(org_setup, client):
    s = org_setup
    carol = mem(s.org, s.member)
    base = f"/organizations/{s.org.public_id}/members/{carol.public_id}"
    r = api(client, s.admin, "post", f"{base}/suspend", {"reason": "leave"})
    assert r.status_code == 200 and r.json()["suspended_at"]
    listed = api(
        client, s.owner, "get", f"/organizations/{s.org.public_id}/members?status=suspended"
    )
    assert [m["id"] for m in listed.json()["items"]] == [carol.public_id]
    assert api(client, s.member, "post", f"{base}/unsuspend").status_code == 403
    assert api(client, s.stranger, "post", f"{base}/unsuspend").status_code == 404
    owner_path = f"/organizations/{s.org.public_id}/members/{mem(s.org, s.owner).public_id}"
    assert api(client, s.admin, "post", f"{owner_path}/suspend").status_code == 403
    bad = api(client, s.admin, "post", f"{base}/suspend", {"reason": 5})
    assert bad.status_code in (400, 422)
    r = api(client, s.admin, "post", f"{base}/unsuspend")
    assert r.status_code == 200 and r.json()["suspended_at"] is None


def test_a_suspended_members_token_cannot_report_runs_in_the_orgs_workspace(org_setup, client):
    from tests.factories import SyncFactory

    s = org_setup
    sync = SyncFactory(workspace=s.ws_b)
    member_suspend(actor=s.owner, org=s.org, membership=mem(s.org, s.member))
    response = api(
        client,
        s.member,
        "post",
        f"/workspaces/{s.ws_b.public_id}/syncs/{sync.public_id}/runs",
        {
            "status": "succeeded",
            "started_at": "2026-01-01T00:00:00Z",
            "finished_at": "2026-01-01T00:01:00Z",
            "rows_processed": 1,
            "bytes_processed": 1,
            "error": "",
        },
    )
    assert response.status_code == 403 and response.json()["error"]["code"] == "suspended"
