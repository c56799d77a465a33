"""The attack findings of the trust review, replayed as the attacker did them.

The state machine (test_state_machine.py) covers the class; these keep the exact paths.
"""

import json

import pytest

from audit.models import AuditEvent
from config.errors import ValidationFailed
from config.roles import Role
from members.invitations import invitation_accept, member_invite
from members.models import OrgMembership
from members.services import member_set_workspace_access
from members.tokens import token_create
from orgs.governance_services import policy_set
from orgs.services import org_create
from tests.factories import UserFactory, add_to_org, add_to_workspace
from workspaces.models import Workspace, WorkspaceMembership
from workspaces.services import workspace_create

pytestmark = pytest.mark.django_db


def _api(client, user):
    _token, raw = token_create(actor=user, name="attack")
    headers = {"Authorization": f"Bearer {raw}"}

    def call(method, path, body=None):
        return getattr(client, method)(
            f"/api/v1{path}",
            json.dumps(body) if body is not None else None,
            content_type="application/json",
            headers=headers,
        )

    return call


def test_workspace_takeover_by_a_workspace_admin_is_refused(client):
    """F owns W and makes E a workspace admin; E, owner of org X, tries to annex W."""
    f = UserFactory(email="f@acme.test")
    e = UserFactory(email="e@evil.test")
    w = workspace_create(actor=f, name="Fs Workspace")
    add_to_workspace(e, w, Role.ADMIN)
    x = org_create(actor=e, name="Xeno")
    call = _api(client, e)
    events = AuditEvent.objects.count()

    response = call(
        "post", f"/organizations/{x.public_id}/workspaces", {"workspace_id": w.public_id}
    )
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "role_required"
    assert "owner" in response.json()["error"]["message"]
    w.refresh_from_db()
    assert w.organization_id is None
    # E still cannot reach owner power over W by any org route.
    member = OrgMembership.objects.get(organization=x, user=e)
    response = call(
        "put",
        f"/organizations/{x.public_id}/members/{member.public_id}",
        {"workspace_access": [{"workspace_id": w.public_id, "role": "owner"}]},
    )
    assert response.status_code == 422
    assert WorkspaceMembership.objects.get(user=e, workspace=w).role == Role.ADMIN
    assert WorkspaceMembership.objects.get(user=f, workspace=w).role == Role.OWNER
    assert AuditEvent.objects.count() == events


def test_a_workspace_owner_may_still_link_it(client):
    e = UserFactory(email="e@acme.test")
    w = workspace_create(actor=e, name="Mine")
    x = org_create(actor=e, name="Xeno")
    call = _api(client, e)
    response = call(
        "post", f"/organizations/{x.public_id}/workspaces", {"workspace_id": w.public_id}
    )
    assert response.status_code == 201
    assert Workspace.objects.get(pk=w.pk).organization_id == x.pk


@pytest.fixture
def acme():
    owner = UserFactory(email="olga@acme.test")
    ws = workspace_create(actor=owner, name="Prod")
    org = org_create(actor=owner, name="Acme", workspace=ws)
    ws.refresh_from_db()
    return owner, org, ws


def test_an_invitation_cannot_be_accepted_past_a_tightened_domain_policy(acme):
    owner, org, ws = acme
    (inv,) = member_invite(
        actor=owner, org=org, emails=["x@evil.test"], org_role=Role.MEMBER, grants={ws.pk: 10}
    )
    policy_set(actor=owner, org=org, kind="allowed_email_domains", value={"domains": ["acme.test"]})
    invitee = UserFactory(email="x@evil.test")
    events = AuditEvent.objects.count()
    with pytest.raises(ValidationFailed) as exc:
        invitation_accept(user=invitee, token=inv.token)
    assert exc.value.code == "email_domain_not_allowed"
    assert not OrgMembership.objects.filter(user=invitee).exists()
    assert not WorkspaceMembership.objects.filter(user=invitee).exists()
    assert AuditEvent.objects.count() == events


def test_an_org_grant_obeys_the_domain_policy_in_force(acme):
    owner, org, ws = acme
    outsider = UserFactory(email="old@evil.test")
    membership = add_to_org(outsider, org, Role.MEMBER)  # joined before the policy
    policy_set(actor=owner, org=org, kind="allowed_email_domains", value={"domains": ["acme.test"]})
    with pytest.raises(ValidationFailed) as exc:
        member_set_workspace_access(
            actor=owner, org=org, membership=membership, access={ws.pk: Role.MEMBER}
        )
    assert exc.value.code == "email_domain_not_allowed"
    assert not WorkspaceMembership.objects.filter(user=outsider, workspace=ws).exists()
