"""Organization › SCIM (owners) and the SCIM badge and locks on a member's page."""

import pytest

from audit.models import AuditEvent
from config.roles import Role
from members.models import OrgMembership
from orgs.scim.models import GroupMapping, ScimToken
from orgs.scim.services import (
    UserAttrs,
    group_mapping_set,
    hash_token,
    scim_group_create,
    scim_token_create,
    scim_user_create,
)
from workspaces.models import WorkspaceMembership

pytestmark = pytest.mark.django_db


def url(org):
    return f"/o/{org.slug}/scim/"


def test_owner_creates_a_token_shown_once_and_revokes_it(org_setup, login):
    client = login(org_setup.owner)
    page = client.get(url(org_setup.org))
    assert page.status_code == 200
    assert f"/scim/v2/{org_setup.org.slug}/" in page.content.decode()
    # No verified domain yet: a token may be created, but the page says users cannot be yet.
    assert 'data-testid="scim-no-domain"' in page.content.decode()
    r = client.post(url(org_setup.org), {"action": "create_token", "name": "Okta"})
    assert r.status_code == 200
    token = ScimToken.objects.get(organization=org_setup.org)
    raw = r.context["new_token"]
    assert raw in r.content.decode() and token.token_hash == hash_token(raw)
    assert raw not in client.get(url(org_setup.org)).content.decode()  # shown once
    empty = client.post(url(org_setup.org), {"action": "create_token", "name": " "})
    assert empty.status_code == 422 and "Give the token a name" in empty.content.decode()
    r = client.post(url(org_setup.org), {"action": "revoke_token", "token": token.public_id})
    assert r.status_code == 302
    token.refresh_from_db()
    assert token.revoked_at is not None


def test_admins_and_strangers_are_kept_out(org_setup, login):
    assert login(org_setup.admin).get(url(org_setup.org)).status_code == 403
    r = login(org_setup.admin).post(url(org_setup.org), {"action": "create_token", "name": "x"})
    assert r.status_code == 403 and not ScimToken.objects.exists()
    assert login(org_setup.stranger).get(url(org_setup.org)).status_code == 404


def test_owner_maps_a_group_from_the_page(org_setup, login):
    client = login(org_setup.owner)
    data = {
        "action": "set_mapping",
        "group_name": "Data-Eng",
        "workspace": org_setup.ws_a.public_id,
        "role": Role.ADMIN.value,
    }
    assert client.post(url(org_setup.org), data).status_code == 302
    mapping = GroupMapping.objects.get(organization=org_setup.org)
    assert (mapping.group_name, mapping.workspace, mapping.role) == (
        "Data-Eng",
        org_setup.ws_a,
        Role.ADMIN,
    )
    page = client.get(url(org_setup.org)).content.decode()
    assert "Data-Eng" in page
    bad = client.post(url(org_setup.org), {**data, "workspace": "ws_nope"})
    assert bad.status_code == 422
    data["action"] = "remove_mapping"
    assert client.post(url(org_setup.org), data).status_code == 302
    assert not GroupMapping.objects.exists()


def test_a_scim_member_shows_the_badge_and_cannot_be_edited_where_scim_decides(
    org_setup, login, verified
):
    s = org_setup
    verified(s.org, "acme.test")
    token, _ = scim_token_create(actor=s.owner, org=s.org, name="Okta")
    group_mapping_set(actor=s.owner, org=s.org, group_name="Eng", workspace=s.ws_a, role=Role.ADMIN)
    scim_user = scim_user_create(token=token, attrs=UserAttrs(user_name="dana@acme.test"))
    scim_group_create(token=token, display_name="Eng", member_ids=[scim_user.public_id])
    membership = OrgMembership.objects.get(user=scim_user.user, organization=s.org)
    client = login(s.owner)
    page = client.get(f"/o/{s.org.slug}/members/{membership.public_id}/")
    html = page.content.decode()
    assert 'data-testid="scim-badge"' in html and 'data-testid="scim-explainer"' in html
    assert 'data-testid="scim-managed-grant"' in html and 'data-testid="scim-no-remove"' in html
    events_before = AuditEvent.objects.count()
    # A hand edit of the SCIM grant, or removing the person, is refused and explained.
    r = client.post(
        f"/o/{s.org.slug}/members/{membership.public_id}/access/",
        {"workspace": s.ws_a.public_id, "role": ""},
    )
    assert r.status_code == 409 and "SCIM group" in r.content.decode()
    assert WorkspaceMembership.objects.get(user=scim_user.user, workspace=s.ws_a).role == Role.ADMIN
    r = client.post(f"/o/{s.org.slug}/members/{membership.public_id}/remove/")
    assert r.status_code == 409 and "identity provider" in r.content.decode()
    assert OrgMembership.objects.filter(pk=membership.pk).exists()
    assert AuditEvent.objects.count() == events_before
    # Workspaces no group maps stay editable by hand.
    r = client.post(
        f"/o/{s.org.slug}/members/{membership.public_id}/access/",
        {"workspace": s.ws_b.public_id, "role": Role.MEMBER.value},
    )
    assert r.status_code == 302
    assert WorkspaceMembership.objects.filter(user=scim_user.user, workspace=s.ws_b).exists()
