"""Reinstating a member removed in the last 90 days: the org role and the grants held at
removal come back, minus workspaces no longer linked and owner roles the actor may not give;
policies and seats hold; a preview shows it all first."""

import json
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEvent
from billing.models import BillingAccount
from config.errors import Conflict, LimitExceeded, NotFound, PermissionDenied, ValidationFailed
from config.roles import Role
from members.lifecycle import member_reinstate, reinstate_preview, removed_members
from members.models import OrgMembership
from members.services import member_remove
from members.tokens import token_create
from orgs.models import GovernancePolicy
from orgs.services import workspace_unlink
from tests.factories import UserFactory, add_to_org, add_to_workspace
from workspaces.models import WorkspaceMembership


def mem(org, user):
    return OrgMembership.objects.get(organization=org, user=user)


@pytest.fixture
def dana(org_setup):
    """Dana: org admin, admin of Production via the org, owner of Staging directly; removed."""
    s = org_setup
    dana = UserFactory(email="dana@acme.test", full_name="Dana Data")
    add_to_org(dana, s.org, Role.ADMIN)
    add_to_workspace(dana, s.ws_a, Role.ADMIN, source="org")
    add_to_workspace(dana, s.ws_b, Role.OWNER, source="direct")
    member_remove(actor=s.owner, org=s.org, membership=mem(s.org, dana))
    return dana


def removal(org):
    return AuditEvent.objects.get(organization=org, action="member.removed").public_id


def access(user, org):
    return {
        (m.workspace.name, m.role, m.source)
        for m in WorkspaceMembership.objects.filter(user=user, workspace__organization=org)
    }


def test_owner_reinstates_everything_as_it_was(org_setup, dana):
    s = org_setup
    assert [e.target_id for e in removed_members(s.org)] == [dana.public_id]
    plan = reinstate_preview(actor=s.owner, org=s.org, event_id=removal(s.org))
    assert plan.org_role == Role.ADMIN and not plan.problem and len(plan.restored) == 2
    membership = member_reinstate(actor=s.owner, org=s.org, event_id=removal(s.org))
    assert membership.role == Role.ADMIN
    assert access(dana, s.org) == {
        ("Production", Role.ADMIN, "org"),
        ("Staging", Role.OWNER, "direct"),
    }
    event = AuditEvent.objects.get(action="member.reinstated")
    assert event.details["removal_event"] == removal(s.org)
    assert len(event.details["access_restored"]) == 2
    assert removed_members(s.org) == []
    with pytest.raises(Conflict):  # twice: she is a member again
        member_reinstate(actor=s.owner, org=s.org, event_id=removal(s.org))


def test_admin_cannot_give_back_an_owner_role_and_unlinked_workspaces_are_skipped(org_setup, dana):
    s = org_setup
    workspace_unlink(actor=s.owner, org=s.org, workspace=s.ws_a)
    plan = reinstate_preview(actor=s.admin, org=s.org, event_id=removal(s.org))
    skipped = {g.workspace_name: g.skip for g in plan.skipped}
    assert "no longer linked" in skipped["Production"]
    assert "owner" in skipped["Staging"]
    member_reinstate(actor=s.admin, org=s.org, event_id=removal(s.org))
    assert access(dana, s.org) == set()
    assert mem(s.org, dana).role == Role.ADMIN


def test_an_admin_cannot_reinstate_an_owner(org_setup):
    s = org_setup
    otto = UserFactory(email="otto@acme.test")
    add_to_org(otto, s.org, Role.OWNER)
    member_remove(actor=s.owner, org=s.org, membership=mem(s.org, otto))
    plan = reinstate_preview(actor=s.admin, org=s.org, event_id=removal(s.org))
    assert "only an owner" in plan.problem
    with pytest.raises(PermissionDenied):
        member_reinstate(actor=s.admin, org=s.org, event_id=removal(s.org))
    assert not OrgMembership.objects.filter(user=otto, organization=s.org).exists()


def test_policies_seats_and_the_90_day_window(org_setup, dana):
    s = org_setup
    policy = GovernancePolicy.objects.create(
        organization=s.org, kind="allowed_email_domains", value={"domains": ["other.test"]}
    )
    with pytest.raises((Conflict, ValidationFailed)):
        member_reinstate(actor=s.owner, org=s.org, event_id=removal(s.org))
    policy.delete()
    plan = BillingAccount.objects.get(organization=s.org).plan
    plan.max_members = OrgMembership.objects.filter(organization=s.org).count()
    plan.save()
    with pytest.raises(LimitExceeded):
        member_reinstate(actor=s.owner, org=s.org, event_id=removal(s.org))
    plan.max_members = 100
    plan.save()
    with pytest.raises(NotFound):
        member_reinstate(actor=s.owner, org=s.org, event_id="evt_nope")
    with pytest.raises(PermissionDenied):
        member_reinstate(actor=s.member, org=s.org, event_id=removal(s.org))
    with pytest.raises(NotFound):
        member_reinstate(actor=s.stranger, org=s.org, event_id=removal(s.org))
    assert not AuditEvent.objects.filter(action="member.reinstated").exists()
    assert removed_members(s.org) and not [
        e for e in removed_members(s.org) if timezone.now() - e.occurred_at > timedelta(days=90)
    ]


def test_pages_preview_then_reinstate(org_setup, dana, login):
    s = org_setup
    c = login(s.admin)
    listing = c.get(reverse("org_members:removed", args=[s.org.slug]))
    assert listing.status_code == 200 and b"Dana Data" in listing.content
    url = reverse("org_members:reinstate", args=[s.org.slug, removal(s.org)])
    preview = c.get(url)
    assert b'data-testid="restored"' in preview.content and b"Production" in preview.content
    assert b"only an organization owner" in preview.content  # Staging owner is skipped
    assert c.post(url).status_code == 302
    assert access(dana, s.org) == {("Production", Role.ADMIN, "org")}
    assert login(s.member).get(url).status_code == 403
    assert login(s.stranger).get(url).status_code == 404
    bad = reverse("org_members:reinstate", args=[s.org.slug, "evt_missing"])
    assert login(s.owner).get(bad).status_code == 404
    again = login(s.owner).post(url)
    assert again.status_code == 409 and b"member again" in again.content


def test_api_lists_and_reinstates(org_setup, dana, client):
    s = org_setup

    def call(user, method, path, body=None, raw=False):
        _t, token = token_create(actor=user, name="t")
        return getattr(client, method)(
            f"/api/v1/organizations/{s.org.public_id}{path}",
            "[not json" if raw else (json.dumps(body) if body is not None else None),
            content_type="application/json",
            headers={"Authorization": f"Bearer {token}"},
        )

    listed = call(s.owner, "get", "/removed-members").json()
    assert listed[0]["email"] == "dana@acme.test" and listed[0]["problem"] is None
    assert call(s.member, "get", "/removed-members").status_code == 403
    assert call(s.stranger, "get", "/removed-members").status_code == 404
    path = f"/removed-members/{removal(s.org)}/reinstate"
    assert call(s.member, "post", path).status_code == 403
    assert call(s.owner, "post", "/removed-members/x/reinstate").status_code == 404
    r = call(s.owner, "post", path)
    assert r.status_code == 201 and r.json()["org_role"] == "admin"
    assert call(s.owner, "post", path).status_code == 409
