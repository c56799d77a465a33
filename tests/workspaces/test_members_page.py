"""The workspace Members page and the last-owner rule (docs/rules.md invariant 2)."""

import threading

import pytest
from django.db import close_old_connections, connection
from django.urls import reverse

from audit.models import AuditEvent
from config.errors import Conflict
from config.roles import Role
from orgs.services import org_create
from tests.factories import UserFactory, add_to_workspace
from workspaces.models import Workspace, WorkspaceMembership
from workspaces.services import workspace_create, workspace_member_change_role


def members_url(ws):
    return reverse("workspaces:members", args=[ws.workspace.slug])


def action_url(ws, name, user):
    return reverse(f"workspaces:{name}", args=[ws.workspace.slug, user.public_id])


def access_events():
    return AuditEvent.objects.filter(action__startswith="member.access_")


def test_member_sees_members_read_only_with_source_and_granted_by(ws, login):
    newcomer = UserFactory(full_name="Nina New")
    WorkspaceMembership.objects.create(
        user=newcomer, workspace=ws.workspace, role=Role.MEMBER, source="org", granted_by=ws.owner
    )
    page = login(ws.member).get(members_url(ws))
    assert page.status_code == 200
    html = page.content.decode()
    for person in ("Olivia Owner", "Bob Admin", "Carol Member", "Nina New"):
        assert person in html
    assert "via organization" in html
    assert "direct" in html
    assert "Add a member" not in html
    assert not page.context["can_manage"]


def test_stranger_gets_404_everywhere(ws, login):
    client = login(ws.stranger)
    assert client.get(members_url(ws)).status_code == 404
    add = reverse("workspaces:member_add", args=[ws.workspace.slug])
    assert client.post(add, {"email": "sam@elsewhere.test", "role": 10}).status_code == 404
    assert client.post(action_url(ws, "member_role", ws.member), {"role": 20}).status_code == 404
    assert client.post(action_url(ws, "member_remove", ws.member)).status_code == 404
    assert not WorkspaceMembership.objects.filter(user=ws.stranger, workspace=ws.workspace).exists()


def test_member_gets_403_on_every_change(ws, login):
    client = login(ws.member)
    add = reverse("workspaces:member_add", args=[ws.workspace.slug])
    assert client.post(add, {"email": ws.stranger.email, "role": 10}).status_code == 403
    assert client.post(action_url(ws, "member_role", ws.admin), {"role": 10}).status_code == 403
    assert client.post(action_url(ws, "member_remove", ws.admin)).status_code == 403
    assert WorkspaceMembership.objects.get(user=ws.admin, workspace=ws.workspace).role == Role.ADMIN
    assert not access_events().exists()


@pytest.mark.parametrize(
    "data,field",
    [
        ({"email": "not-an-email", "role": 10}, "email"),
        ({"email": "sam@elsewhere.test", "role": 99}, "role"),
    ],
)
def test_bad_add_rerenders_with_field_errors_and_changes_nothing(ws, login, data, field):
    client = login(ws.admin)
    response = client.post(reverse("workspaces:member_add", args=[ws.workspace.slug]), data)
    assert response.status_code == 422
    assert field in response.context["add_form"].errors
    assert WorkspaceMembership.objects.filter(workspace=ws.workspace).count() == 3
    assert not access_events().exists()


def test_adding_someone_already_in_is_a_conflict(ws, login):
    client = login(ws.admin)
    response = client.post(
        reverse("workspaces:member_add", args=[ws.workspace.slug]),
        {"email": ws.member.email, "role": 20},
    )
    assert response.status_code == 409
    assert "already a member" in response.content.decode()
    assert (
        WorkspaceMembership.objects.get(user=ws.member, workspace=ws.workspace).role == Role.MEMBER
    )


def test_admin_cannot_grant_or_touch_the_owner_role(ws, login):
    client = login(ws.admin)
    add = reverse("workspaces:member_add", args=[ws.workspace.slug])
    response = client.post(add, {"email": ws.stranger.email, "role": int(Role.OWNER)})
    assert response.status_code == 403
    assert "owner" in response.content.decode()
    assert client.post(action_url(ws, "member_role", ws.member), {"role": 30}).status_code == 403
    assert client.post(action_url(ws, "member_role", ws.owner), {"role": 10}).status_code == 403
    assert client.post(action_url(ws, "member_remove", ws.owner)).status_code == 403
    assert WorkspaceMembership.objects.filter(workspace=ws.workspace, role=Role.OWNER).count() == 1
    assert not access_events().exists()


def test_admin_changes_role_and_removes_below_owner(ws, login):
    client = login(ws.admin)
    assert client.post(action_url(ws, "member_role", ws.member), {"role": 20}).status_code == 302
    assert (
        WorkspaceMembership.objects.get(user=ws.member, workspace=ws.workspace).role == Role.ADMIN
    )
    assert client.post(action_url(ws, "member_remove", ws.member)).status_code == 302
    assert not WorkspaceMembership.objects.filter(user=ws.member, workspace=ws.workspace).exists()
    assert list(access_events().order_by("pk").values_list("action", flat=True)) == [
        "member.access_changed",
        "member.access_revoked",
    ]


def test_member_may_leave_themselves(ws, login):
    response = login(ws.member).post(action_url(ws, "member_remove", ws.member))
    assert response.status_code == 302
    assert response["Location"] == reverse("workspaces:home")
    assert not WorkspaceMembership.objects.filter(user=ws.member, workspace=ws.workspace).exists()


def test_last_owner_cannot_be_demoted_or_removed(ws, login):
    client = login(ws.owner)
    response = client.post(action_url(ws, "member_role", ws.owner), {"role": 20})
    assert response.status_code == 409
    html = response.content.decode()
    assert "last owner" in html and 'data-code="last_owner"' in html  # the shared banner
    response = client.post(action_url(ws, "member_remove", ws.owner))
    assert response.status_code == 409
    assert WorkspaceMembership.objects.get(user=ws.owner, workspace=ws.workspace).role == Role.OWNER
    assert not access_events().exists()


def test_with_a_second_owner_the_first_may_step_down(ws, login):
    client = login(ws.owner)
    assert client.post(action_url(ws, "member_role", ws.admin), {"role": 30}).status_code == 302
    assert client.post(action_url(ws, "member_role", ws.owner), {"role": 20}).status_code == 302
    owners = WorkspaceMembership.objects.filter(workspace=ws.workspace, role=Role.OWNER)
    assert list(owners.values_list("user", flat=True)) == [ws.admin.pk]


def test_unknown_member_id_is_404(ws, login):
    url = reverse("workspaces:member_role", args=[ws.workspace.slug, "usr_nope"])
    assert login(ws.owner).post(url, {"role": 20}).status_code == 404


def test_members_page_queries_do_not_grow_with_members(ws, login, django_assert_max_num_queries):
    for _ in range(15):
        add_to_workspace(UserFactory(), ws.workspace, Role.MEMBER)
    client = login(ws.owner)
    with django_assert_max_num_queries(12):
        assert client.get(members_url(ws)).status_code == 200


def test_org_owner_workspace_shows_it_belongs_to_the_org(ws, login):
    org_create(actor=ws.owner, name="Acme Corp", workspace=ws.workspace)
    html = login(ws.owner).get(members_url(ws)).content.decode()
    assert "Acme Corp's policies apply" in html


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_concurrent_demotions_cannot_leave_no_owner():
    first = UserFactory(email="first@acme.test")
    second = UserFactory(email="second@acme.test")
    workspace = workspace_create(actor=first, name="Race")
    add_to_workspace(second, workspace, Role.OWNER)
    targets = list(WorkspaceMembership.objects.filter(workspace=workspace).select_related("user"))
    assert len(targets) == 2
    barrier = threading.Barrier(2)
    outcomes = []

    def demote(membership):
        try:
            barrier.wait()
            workspace_member_change_role(
                actor=membership.user, membership=membership, role=Role.ADMIN
            )
            outcomes.append("ok")
        except Conflict:
            outcomes.append("refused")
        finally:
            close_old_connections()
            connection.close()

    # Both owners step down at the same moment: the workspace row lock makes one wait and fail.
    threads = [threading.Thread(target=demote, args=(m,)) for m in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["ok", "refused"]
    assert WorkspaceMembership.objects.filter(workspace=workspace, role=Role.OWNER).count() == 1
    assert Workspace.objects.filter(pk=workspace.pk).exists()
