"""Bulk actions on members and invitations: a dry-run preview, then each change through its
service (audited one by one), with refusals reported per row."""

import pytest

from audit.models import AuditEvent
from config.roles import Role
from members import bulk
from members.invitations import member_invite
from members.models import Invitation, OrgMembership
from tests.factories import UserFactory, add_to_org
from workspaces.models import WorkspaceMembership

pytestmark = pytest.mark.django_db


def _m(org_setup, user):
    return OrgMembership.objects.select_related("user").get(organization=org_setup.org, user=user)


def test_preview_changes_nothing_and_predicts_each_row(org_setup):
    s = org_setup
    before = AuditEvent.objects.count()
    rows = bulk.members_bulk(
        actor=s.admin,
        org=s.org,
        memberships=[_m(s, s.member), _m(s, s.owner)],
        action="role",
        role=Role.ADMIN,
    )
    assert AuditEvent.objects.count() == before
    assert _m(s, s.member).role == Role.MEMBER  # rolled back
    member_row, owner_row = rows
    assert member_row.ok and member_row.change == "Member → Admin"
    assert not owner_row.ok and "owner" in owner_row.message.lower()  # admins cannot demote owners


def test_apply_runs_each_change_through_its_service_and_reports_refusals(org_setup):
    s = org_setup
    dana = UserFactory(email="dana@acme.test")
    add_to_org(dana, s.org, Role.MEMBER)
    before = AuditEvent.objects.filter(action="member.role_changed").count()
    rows = bulk.members_bulk(
        actor=s.admin,
        org=s.org,
        memberships=[_m(s, s.member), _m(s, dana), _m(s, s.owner)],
        action="role",
        role=Role.ADMIN,
        apply=True,
    )
    assert [r.ok for r in rows] == [True, True, False]
    assert rows[2].message
    assert _m(s, s.member).role == Role.ADMIN and _m(s, dana).role == Role.ADMIN
    assert _m(s, s.owner).role == Role.OWNER
    assert AuditEvent.objects.filter(action="member.role_changed").count() == before + 2


def test_grant_and_revoke_a_workspace_for_many(org_setup):
    s = org_setup
    rows = bulk.members_bulk(
        actor=s.owner,
        org=s.org,
        memberships=[_m(s, s.admin), _m(s, s.member)],
        action="grant",
        role=Role.ADMIN,
        workspace=s.ws_b,
    )
    assert [r.change for r in rows] == [
        "gets admin access to Staging",
        "member → admin in Staging",
    ]
    bulk.members_bulk(
        actor=s.owner,
        org=s.org,
        memberships=[_m(s, s.admin), _m(s, s.member)],
        action="grant",
        role=Role.ADMIN,
        workspace=s.ws_b,
        apply=True,
    )
    held = WorkspaceMembership.objects.filter(workspace=s.ws_b, user__in=[s.admin, s.member])
    assert sorted(held.values_list("role", flat=True)) == [Role.ADMIN, Role.ADMIN]
    rows = bulk.members_bulk(
        actor=s.owner,
        org=s.org,
        memberships=[_m(s, s.admin), _m(s, s.member)],
        action="revoke",
        workspace=s.ws_b,
        apply=True,
    )
    assert all(r.ok for r in rows)
    assert not WorkspaceMembership.objects.filter(
        workspace=s.ws_b, user__in=[s.admin, s.member]
    ).exists()


def test_remove_many_names_what_each_loses(org_setup):
    s = org_setup
    rows = bulk.members_bulk(
        actor=s.owner, org=s.org, memberships=[_m(s, s.member)], action="remove"
    )
    assert "loses access to Staging" in rows[0].change
    bulk.members_bulk(
        actor=s.owner, org=s.org, memberships=[_m(s, s.member)], action="remove", apply=True
    )
    assert not OrgMembership.objects.filter(organization=s.org, user=s.member).exists()
    assert AuditEvent.objects.filter(action="member.removed").exists()


def test_invitations_resend_and_revoke_many(org_setup):
    s = org_setup
    invs = member_invite(
        actor=s.owner,
        org=s.org,
        emails=["a@acme.test", "b@acme.test"],
        org_role=Role.MEMBER,
        grants={},
    )
    rows, fresh = bulk.invitations_bulk(actor=s.admin, invitations=invs, action="resend")
    assert all(r.ok for r in rows) and fresh == []  # preview: nothing sent
    rows, fresh = bulk.invitations_bulk(
        actor=s.admin, invitations=invs, action="resend", apply=True
    )
    assert len(fresh) == 2
    rows, _ = bulk.invitations_bulk(actor=s.admin, invitations=invs, action="revoke", apply=True)
    assert all(r.ok for r in rows)
    assert set(
        Invitation.objects.filter(pk__in=[i.pk for i in invs]).values_list("status", flat=True)
    ) == {"revoked"}
    rows, _ = bulk.invitations_bulk(actor=s.admin, invitations=invs, action="revoke")
    assert not any(r.ok for r in rows)  # already revoked: refused per row


def test_pages_preview_then_confirm(org_setup, login):
    s = org_setup
    client = login(s.owner)
    url = f"/o/{s.org.slug}/members/bulk/"
    data = {
        "members": [_m(s, s.admin).public_id, _m(s, s.member).public_id],
        "action": "role",
        "role": int(Role.MEMBER),
    }
    preview = client.post(url, data)
    html = preview.content.decode()
    assert 'data-testid="bulk-preview"' in html and "Admin → Member" in html
    assert _m(s, s.admin).role == Role.ADMIN
    done = client.post(url, {**data, "confirm": "1"}).content.decode()
    assert 'data-testid="bulk-results"' in done and "2 of 2 changed" in done
    assert _m(s, s.admin).role == Role.MEMBER


def test_bulk_pages_refuse_members_and_ignore_other_orgs_ids(org_setup, login):
    s = org_setup
    url = f"/o/{s.org.slug}/members/bulk/"
    data = {"members": [_m(s, s.admin).public_id], "action": "remove"}
    assert login(s.member).post(url, data).status_code == 403
    other = UserFactory(email="x@other.test")
    from orgs.services import org_create

    other_org = org_create(actor=other, name="Other")
    foreign = OrgMembership.objects.get(organization=other_org).public_id
    response = login(s.owner).post(url, {"members": [foreign], "action": "remove"})
    assert response.status_code == 302  # nothing selected from this org
    assert OrgMembership.objects.filter(public_id=foreign).exists()
    assert login(s.owner).get(url).status_code == 405


def test_invitation_pages_preview_then_confirm(org_setup, login, invite):
    s = org_setup
    invs = invite(s.owner, s.org, "a@acme.test", "b@acme.test")
    client = login(s.admin)
    url = f"/o/{s.org.slug}/members/invitations/bulk/"
    data = {"invitations": [i.public_id for i in invs], "action": "revoke"}
    html = client.post(url, data).content.decode()
    assert 'data-testid="bulk-preview"' in html and "Preview: revoke" in html
    assert 'name="confirm" value="1"' in html and "a@acme.test" in html
    assert set(Invitation.objects.values_list("status", flat=True)) == {"pending"}
    done = client.post(url, {**data, "confirm": "1"}).content.decode()
    assert 'data-testid="bulk-results"' in done and "2 of 2 changed" in done
    assert set(Invitation.objects.values_list("status", flat=True)) == {"revoked"}
