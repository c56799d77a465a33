"""Adding someone from inside a workspace goes by emailed invitation (docs/rules.md invariant 7).

The page answers the same whether or not an account uses the address, nobody gets in without
the mailed link, and inside a linked workspace the org's policies and seats apply.
"""

import re

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse

from audit.models import AuditEvent
from billing.models import BillingAccount
from config.errors import PermissionDenied, RateLimited
from config.roles import Role
from members.invitations import invitation_accept
from members.models import Invitation, OrgMembership, WorkspaceInvitation
from members.workspace_invitations import workspace_invitation_accept, workspace_member_invite
from orgs.models import GovernancePolicy
from orgs.services import org_create
from workspaces.models import WorkspaceMembership
from workspaces.services import workspace_member_change_role


def _add(client, workspace, email, role=Role.MEMBER):
    return client.post(
        reverse("workspaces:member_add", args=[workspace.slug]),
        {"email": email, "role": int(role)},
        follow=True,
    )


def _link_in(message) -> str:
    return re.search(r"http://testserver(/\S+/)", message.body).group(1)


def _messages(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def test_the_answer_is_the_same_whether_or_not_an_account_exists(
    ws, login, django_capture_on_commit_callbacks
):
    client = login(ws.admin)
    with django_capture_on_commit_callbacks(execute=True):
        known = _add(client, ws.workspace, ws.stranger.email)
        unknown = _add(client, ws.workspace, "nobody@nowhere.test")
    assert known.status_code == unknown.status_code == 200
    assert _messages(known)[0].replace(ws.stranger.email, "X") == _messages(unknown)[0].replace(
        "nobody@nowhere.test", "X"
    )
    # Nobody is in yet: access needs the link mailed to the address.
    assert not WorkspaceMembership.objects.filter(user=ws.stranger, workspace=ws.workspace).exists()
    assert [m.to for m in mail.outbox] == [[ws.stranger.email], ["nobody@nowhere.test"]]
    assert AuditEvent.objects.filter(action="member.invited").count() == 2


def test_the_mailed_link_adds_the_person_directly_once(
    ws, login, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        _add(login(ws.admin), ws.workspace, ws.stranger.email, Role.ADMIN)
    link = _link_in(mail.outbox[0])
    invitee = Client()
    invitee.force_login(ws.stranger, backend="members.backends.EmailBackend")
    assert "Join Production" in invitee.get(link).content.decode()
    response = invitee.post(link, {"action": "accept"})
    assert response.status_code == 302
    m = WorkspaceMembership.objects.get(user=ws.stranger, workspace=ws.workspace)
    assert (m.role, m.source, m.granted_by) == (Role.ADMIN, "direct", ws.admin)
    event = AuditEvent.objects.get(action="member.access_granted")
    assert event.actor_user == ws.stranger and event.details["invited_by"] == "Bob Admin"
    # Single use.
    assert invitee.get(link).status_code == 404


def test_someone_else_cannot_use_the_link(ws, login, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        _add(login(ws.admin), ws.workspace, "nobody@nowhere.test")
    token = _link_in(mail.outbox[0]).strip("/").split("/")[-1]
    with pytest.raises(PermissionDenied):
        workspace_invitation_accept(user=ws.stranger, token=token)
    assert not WorkspaceMembership.objects.filter(user=ws.stranger, workspace=ws.workspace).exists()


def test_an_inviter_who_lost_the_right_cannot_still_let_someone_in(ws):
    inv = workspace_member_invite(
        actor=ws.admin, workspace=ws.workspace, email=ws.stranger.email, role=Role.ADMIN
    )
    admin_m = WorkspaceMembership.objects.get(user=ws.admin, workspace=ws.workspace)
    workspace_member_change_role(actor=ws.owner, membership=admin_m, role=Role.MEMBER)
    events = AuditEvent.objects.count()
    with pytest.raises(PermissionDenied) as exc:
        workspace_invitation_accept(user=ws.stranger, token=inv.token)
    assert exc.value.code == "inviter_lost_rights"
    assert not WorkspaceMembership.objects.filter(user=ws.stranger, workspace=ws.workspace).exists()
    assert AuditEvent.objects.count() == events
    assert WorkspaceInvitation.objects.get(pk=inv.pk).status == "pending"


def test_linked_workspace_obeys_the_domain_policy(ws, login):
    """The governance-bypass finding: a workspace admin added someone@evil.test directly."""
    org = org_create(actor=ws.owner, name="Acme Corp", workspace=ws.workspace)
    GovernancePolicy.objects.create(
        organization=org, kind="allowed_email_domains", value={"domains": ["acme.test"]}
    )
    events = AuditEvent.objects.count()
    response = login(ws.admin).post(
        reverse("workspaces:member_add", args=[ws.workspace.slug]),
        {"email": "someone@evil.test", "role": int(Role.MEMBER)},
    )
    assert response.status_code == 422
    assert "Email domain not allowed" in response.content.decode()
    assert not Invitation.objects.exists()
    assert AuditEvent.objects.count() == events


def test_linked_workspace_invite_is_an_org_invitation_with_a_direct_grant(ws, login):
    org = org_create(actor=ws.owner, name="Acme Corp", workspace=ws.workspace)
    inv = workspace_member_invite(
        actor=ws.admin, workspace=ws.workspace, email=ws.stranger.email, role=Role.ADMIN
    )
    assert isinstance(inv, Invitation) and inv.organization == org
    assert inv.org_role == Role.MEMBER
    assert [(g.workspace_id, g.role, g.source) for g in inv.grants.all()] == [
        (ws.workspace.pk, Role.ADMIN, "direct")
    ]
    invitation_accept(user=ws.stranger, token=inv.token)
    assert OrgMembership.objects.get(organization=org, user=ws.stranger).role == Role.MEMBER
    m = WorkspaceMembership.objects.get(user=ws.stranger, workspace=ws.workspace)
    assert (m.role, m.source) == (Role.ADMIN, "direct")


def test_linked_workspace_invite_takes_a_seat(ws, login):
    org = org_create(actor=ws.owner, name="Acme Corp", workspace=ws.workspace)
    plan = BillingAccount.objects.get(organization=org).plan
    plan.max_members = 1  # the owner fills it
    plan.save()
    response = login(ws.admin).post(
        reverse("workspaces:member_add", args=[ws.workspace.slug]),
        {"email": "new@acme.test", "role": int(Role.MEMBER)},
    )
    assert response.status_code == 409
    assert "allows 1 members" in response.content.decode()
    assert not Invitation.objects.exists()


def test_a_second_workspace_joins_the_pending_invitation(ws, login):
    org = org_create(actor=ws.owner, name="Acme Corp", workspace=ws.workspace)
    first = workspace_member_invite(
        actor=ws.owner, workspace=ws.workspace, email="new@acme.test", role=Role.MEMBER
    )
    from orgs.services import workspace_create_linked

    other = workspace_create_linked(actor=ws.owner, org=org, name="Staging")
    second = workspace_member_invite(
        actor=ws.owner, workspace=other, email="new@acme.test", role=Role.ADMIN
    )
    assert second.pk == first.pk and second.token != first.token
    assert sorted(g.workspace.name for g in second.grants.all()) == ["Production", "Staging"]
    assert Invitation.objects.filter(status="pending").count() == 1
    assert AuditEvent.objects.filter(action="member.invite_resent").count() == 1


def test_standalone_invitations_count_against_the_inviter_hourly_limit(ws, settings):
    settings.INVITES_PER_INVITER_PER_HOUR = 2
    for email in ("a@x.test", "b@x.test"):
        workspace_member_invite(actor=ws.owner, workspace=ws.workspace, email=email, role=10)
    events = AuditEvent.objects.count()
    with pytest.raises(RateLimited):
        workspace_member_invite(actor=ws.owner, workspace=ws.workspace, email="c@x.test", role=10)
    assert WorkspaceInvitation.objects.count() == 2
    assert AuditEvent.objects.count() == events


def test_a_second_invite_never_lowers_the_pending_grant(ws):
    org_create(actor=ws.owner, name="Acme Corp", workspace=ws.workspace)
    workspace_member_invite(
        actor=ws.owner, workspace=ws.workspace, email="new@acme.test", role=Role.ADMIN
    )
    again = workspace_member_invite(
        actor=ws.admin, workspace=ws.workspace, email="new@acme.test", role=Role.MEMBER
    )
    assert [g.role for g in again.grants.all()] == [Role.ADMIN]
