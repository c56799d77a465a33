"""Roles explained where they are picked: the matrix is the capability table, rendered."""

import pytest

from config.roles import Role
from orgs.permissions import ORG_CAPABILITIES, OrgCapability
from orgs.templatetags.role_matrix import matrix
from workspaces.permissions import WORKSPACE_CAPABILITIES, WorkspaceCapability

pytestmark = pytest.mark.django_db


def test_org_matrix_is_the_capability_table():
    m = matrix("org")
    assert list(m["roles"]) == [Role.MEMBER, Role.ADMIN, Role.OWNER]
    assert len(m["rows"]) == len(ORG_CAPABILITIES)
    for row, (cap, needed) in zip(m["rows"], ORG_CAPABILITIES.items(), strict=True):
        assert row["capability"].lower() == cap.value.lower()
        assert row["cells"] == [role >= needed for role in Role]
    billing = next(r for r in m["rows"] if r["capability"].lower() == OrgCapability.MANAGE_BILLING)
    assert billing["cells"] == [False, False, True]


def test_workspace_matrix_shows_a_raised_sync_role(org_setup):
    from orgs.governance_services import policy_set

    m = matrix("workspace", org_setup.ws_a)
    syncs = next(
        r for r in m["rows"] if r["capability"].lower() == WorkspaceCapability.WRITE_SYNCS.value
    )
    assert syncs["cells"] == [False, True, True] and not syncs["raised"]
    assert len(m["rows"]) == len(WORKSPACE_CAPABILITIES)
    policy_set(
        actor=org_setup.owner, org=org_setup.org, kind="sync_min_role", value={"role": "owner"}
    )
    syncs = next(
        r
        for r in matrix("workspace", org_setup.ws_a)["rows"]
        if r["capability"].lower() == WorkspaceCapability.WRITE_SYNCS.value
    )
    assert syncs["cells"] == [False, False, True] and syncs["raised"]


def test_the_matrix_is_where_roles_are_picked(org_setup, login):
    s = org_setup
    client = login(s.owner)
    invite = client.get(f"/o/{s.org.slug}/members/invite/").content.decode()
    assert 'data-testid="role-matrix-org"' in invite
    assert 'data-testid="role-matrix-workspace"' in invite
    assert "Manage billing settings, the plan and payment methods" in invite
    member = client.get(f"/o/{s.org.slug}/members/{s.member.org_memberships.get().public_id}/")
    html = member.content.decode()
    assert 'data-testid="role-matrix-org"' in html
    assert f"?actor={s.member.org_memberships.get().public_id}" in html  # all their activity
    ws = client.get(f"/w/{s.ws_a.slug}/members/").content.decode()
    assert 'data-testid="role-matrix-workspace"' in ws
