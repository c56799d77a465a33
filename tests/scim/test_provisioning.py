"""SCIM provisioning against the live server over real HTTP: who gets in, what a leaver loses."""

import pytest
from django.contrib.sessions.backends.db import SessionStore
from django.utils import timezone

from audit.models import AuditEvent
from billing.models import BillingAccount
from config.roles import Role
from members.account_models import UserSession
from members.models import ApiToken, OrgMembership, User
from members.tokens import token_create
from orgs.models import GovernancePolicy
from orgs.scim.models import ScimGrant, ScimUser
from orgs.scim.services import group_mapping_set, scim_token_revoke
from orgs.sso.models import VerifiedDomain
from tests.factories import UserFactory, add_to_workspace
from workspaces.models import WorkspaceMembership

pytestmark = pytest.mark.django_db(transaction=True)

USER_URN = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_URN = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH_URN = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
ERROR_URN = "urn:ietf:params:scim:api:messages:2.0:Error"


def new_user(s, email, **extra):
    body = {"schemas": [USER_URN], "userName": email, "active": True, **extra}
    return s.http.post("Users", json=body)


def patch(s, path, *ops):
    return s.http.patch(path, json={"schemas": [PATCH_URN], "Operations": list(ops)})


def events(org, prefix="scim."):
    return list(
        AuditEvent.objects.filter(organization=org, action__startswith=prefix)
        .order_by("pk")
        .values_list("action", flat=True)
    )


def test_create_get_filter_and_list(scim_http):
    s = scim_http
    r = new_user(s, "Dana@Acme.test", name={"givenName": "Dana", "familyName": "Scully"})
    assert r.status_code == 201, r.text
    assert r.headers["Content-Type"].startswith("application/scim+json")
    body = r.json()
    assert body["userName"] == "Dana@Acme.test" and body["active"] is True
    assert r.headers["Location"] == body["meta"]["location"]
    dana = User.objects.get(email="dana@acme.test")
    assert dana.full_name == "Dana Scully" and not dana.has_usable_password()
    assert OrgMembership.objects.get(user=dana, organization=s.org).role == Role.MEMBER
    assert s.http.get(f"Users/{body['id']}").json()["name"]["familyName"] == "Scully"

    new_user(s, "eve@acme.test")
    found = s.http.get("Users", params={"filter": 'userName eq "dana@acme.test"'}).json()
    assert found["totalResults"] == 1 and found["Resources"][0]["id"] == body["id"]
    page = s.http.get("Users", params={"startIndex": 2, "count": 1}).json()
    assert page["totalResults"] == 2 and page["startIndex"] == 2 and page["itemsPerPage"] == 1
    assert (
        s.http.get("Users", params={"filter": 'userName eq "nobody@acme.test"'}).json()[
            "totalResults"
        ]
        == 0
    )
    bad = s.http.get("Users", params={"filter": "userName eq"})
    assert bad.status_code == 400 and bad.json()["scimType"] == "invalidFilter"

    # POST .search answers like GET, on one type or (at the root) across Users and Groups.
    group = {"schemas": [GROUP_URN], "displayName": "Data Team", "members": [{"value": body["id"]}]}
    assert s.http.post("Groups", json=group).status_code == 201
    by_search = s.http.post("Users/.search", json={"filter": 'userName eq "dana@acme.test"'})
    assert [r["id"] for r in by_search.json()["Resources"]] == [body["id"]]
    groups = s.http.post("Groups/.search", json={"filter": 'displayName eq "Data Team"'}).json()
    assert (
        groups["totalResults"] == 1 and groups["Resources"][0]["members"][0]["value"] == body["id"]
    )
    everything = s.http.post(".search", json={"startIndex": 2, "count": 2}).json()
    assert everything["totalResults"] == 3 and everything["itemsPerPage"] == 2
    assert [r["schemas"][0] for r in everything["Resources"]] == [USER_URN, GROUP_URN]

    dup = new_user(s, "dana@acme.test")
    assert dup.status_code == 409 and dup.json()["scimType"] == "uniqueness"
    assert dup.json()["schemas"] == [ERROR_URN]
    assert events(s.org).count("scim.user_provisioned") == 2


def test_token_is_required_and_scoped_to_its_org(scim_http, owner):
    s = scim_http
    s.http.session.headers["Authorization"] = "Bearer scim_wrong"
    r = s.http.get("Users")
    assert r.status_code == 401 and r.json()["schemas"] == [ERROR_URN]
    # The right token on another org's URL is refused alike.
    from orgs.services import org_create

    other = org_create(actor=owner, name="Other Org")
    s.http.session.headers["Authorization"] = f"Bearer {s.raw}"
    url = s.base.replace(f"/{s.org.slug}/", f"/{other.slug}/")
    assert s.http.session.get(url + "Users").status_code == 401
    # A revoked token stops working at once.
    scim_token_revoke(actor=s.owner, org=s.org, token=s.token)
    assert s.http.get("Users").status_code == 401
    assert "scim.token_revoked" in events(s.org)


def test_policies_hold_domains_and_seats(scim_http, verified):
    s = scim_http
    verified(s.org, "beta.test")  # verified, but not allowed for new members by the policy
    GovernancePolicy.objects.create(
        organization=s.org, kind="allowed_email_domains", value={"domains": ["acme.test"]}
    )
    r = new_user(s, "mallory@beta.test")
    assert r.status_code == 400 and "acme.test" in r.json()["detail"]
    assert not User.objects.filter(email="mallory@beta.test").exists()
    plan = BillingAccount.objects.get(organization=s.org).plan
    plan.max_members = OrgMembership.objects.filter(organization=s.org).count()
    plan.save()
    r = new_user(s, "one-too-many@acme.test")
    assert r.status_code == 403 and "members" in r.json()["detail"]
    assert not ScimUser.objects.filter(user_name="one-too-many@acme.test").exists()
    assert events(s.org) == ["scim.token_created"]


def refusals(org):
    return list(
        AuditEvent.objects.filter(organization=org, action="scim.user_refused")
        .order_by("pk")
        .values_list("details", flat=True)
    )


def test_only_addresses_in_verified_domains_are_provisioned(scim_http):
    s = scim_http
    r = new_user(s, "mallory@evil.test")
    body = r.json()
    assert r.status_code == 400 and body["scimType"] == "invalidValue"
    assert body["schemas"] == [ERROR_URN]
    assert (
        "mallory@evil.test is not in a domain verified by Acme Corp (acme.test)" in (body["detail"])
    )
    assert not User.objects.filter(email="mallory@evil.test").exists()
    assert not ScimUser.objects.exists()
    # Every address the record carries counts, not only the one that becomes the account.
    r = new_user(s, "dana@acme.test", emails=[{"value": "dana@home.test", "type": "home"}])
    assert r.status_code == 400 and "dana@home.test" in r.json()["detail"]
    assert not User.objects.filter(email="dana@acme.test").exists()
    assert [(d["reason"], d["addresses"]) for d in refusals(s.org)] == [
        ("domain_not_verified", ["mallory@evil.test"]),
        ("domain_not_verified", ["dana@home.test"]),
    ]
    assert refusals(s.org)[0]["scim_token"] == s.token.public_id

    dana = new_user(s, "dana@acme.test", emails=[{"value": "dana@acme.test", "primary": True}])
    assert dana.status_code == 201, dana.text
    dana = dana.json()
    record = ScimUser.objects.get(public_id=dana["id"])
    # PUT and PATCH may not move an active record outside the verified domains either.
    put = s.http.put(
        f"Users/{dana['id']}",
        json={"schemas": [USER_URN], "userName": "dana@evil.test", "active": True},
    )
    assert put.status_code == 400 and put.json()["scimType"] == "invalidValue"
    r = patch(
        s,
        f"Users/{dana['id']}",
        {"op": "add", "path": "emails", "value": [{"value": "dana@evil.test", "type": "other"}]},
    )
    assert r.status_code == 400 and "dana@evil.test" in r.json()["detail"]
    unchanged = ScimUser.objects.get(pk=record.pk)
    assert (unchanged.user_name, unchanged.emails, unchanged.version) == (
        record.user_name,
        record.emails,
        record.version,
    )
    assert len(refusals(s.org)) == 4

    # A domain removed later never blocks deprovisioning; re-activating is refused until the
    # org verifies a domain again (an org without one creates no users).
    VerifiedDomain.objects.filter(organization=s.org).delete()
    r = patch(s, f"Users/{dana['id']}", {"op": "replace", "path": "active", "value": False})
    assert r.status_code == 200, r.text
    assert not OrgMembership.objects.filter(user__email="dana@acme.test", organization=s.org)
    r = patch(s, f"Users/{dana['id']}", {"op": "replace", "path": "active", "value": True})
    assert r.status_code == 400 and "no verified domain" in r.json()["detail"]
    r = new_user(s, "erin@acme.test")
    assert r.status_code == 400 and "no verified domain" in r.json()["detail"]
    assert [d["reason"] for d in refusals(s.org)][-2:] == ["no_verified_domain"] * 2
    assert not OrgMembership.objects.filter(user__email="dana@acme.test", organization=s.org)
    assert events(s.org).count("scim.user_provisioned") == 1


def test_groups_map_to_workspace_grants(scim_http):
    s = scim_http
    group_mapping_set(
        actor=s.owner, org=s.org, group_name="Data-Eng", workspace=s.ws_a, role=Role.ADMIN
    )
    group_mapping_set(
        actor=s.owner, org=s.org, group_name="Data-Eng", workspace=s.ws_b, role=Role.MEMBER
    )
    dana = new_user(s, "dana@acme.test").json()
    eve = new_user(s, "eve@acme.test").json()
    r = s.http.post(
        "Groups",
        json={
            "schemas": [GROUP_URN],
            "displayName": "Data-Eng",
            "members": [{"value": dana["id"]}],
        },
    )
    assert r.status_code == 201, r.text
    group = r.json()
    dana_user = User.objects.get(email="dana@acme.test")
    roles = dict(
        WorkspaceMembership.objects.filter(user=dana_user).values_list("workspace", "role")
    )
    assert roles == {s.ws_a.pk: Role.ADMIN, s.ws_b.pk: Role.MEMBER}
    # Adding and removing members by PATCH moves the grants with them.
    r = patch(
        s,
        f"Groups/{group['id']}",
        {"op": "add", "path": "members", "value": [{"value": eve["id"]}]},
        {"op": "remove", "path": f'members[value eq "{dana["id"]}"]'},
    )
    assert r.status_code == 200, r.text
    assert [m["value"] for m in r.json()["members"]] == [eve["id"]]
    assert not WorkspaceMembership.objects.filter(user=dana_user).exists()
    eve_user = User.objects.get(email="eve@acme.test")
    assert WorkspaceMembership.objects.get(user=eve_user, workspace=s.ws_a).role == Role.ADMIN
    # A mapping changed in the UI changes the members' access at once.
    group_mapping_set(actor=s.owner, org=s.org, group_name="Data-Eng", workspace=s.ws_a, role=None)
    assert not WorkspaceMembership.objects.filter(user=eve_user, workspace=s.ws_a).exists()
    # Deleting the group takes back what it gave.
    assert s.http.delete(f"Groups/{group['id']}").status_code == 204
    assert not WorkspaceMembership.objects.filter(user=eve_user).exists()
    assert OrgMembership.objects.filter(user=eve_user, organization=s.org).exists()
    assert {
        "scim.mapping_set",
        "scim.mapping_removed",
        "scim.group_created",
        "scim.group_updated",
        "scim.group_deleted",
    } <= set(events(s.org))
    unknown = s.http.post(
        "Groups", json={"schemas": [GROUP_URN], "displayName": "X", "members": [{"value": "scu_x"}]}
    )
    assert unknown.status_code == 400 and unknown.json()["scimType"] == "invalidValue"


def _signed_in_session(user):
    store = SessionStore()
    store["_auth_user_id"] = str(user.pk)
    store["_auth_user_backend"] = "members.backends.EmailBackend"
    store["_auth_user_hash"] = user.get_session_auth_hash()
    store.create()
    UserSession.objects.create(
        user=user,
        session_key=store.session_key,
        created_at=timezone.now(),
        last_seen_at=timezone.now(),
    )
    return store.session_key


@pytest.mark.parametrize("how", ["patch_inactive", "delete"])
def test_deprovisioning_cuts_every_access_at_once(scim_http, how):
    s = scim_http
    group_mapping_set(actor=s.owner, org=s.org, group_name="Eng", workspace=s.ws_a, role=Role.ADMIN)
    dana = new_user(s, "dana@acme.test").json()
    s.http.post(
        "Groups",
        json={"schemas": [GROUP_URN], "displayName": "Eng", "members": [{"value": dana["id"]}]},
    )
    user = User.objects.get(email="dana@acme.test")
    add_to_workspace(user, s.ws_b, Role.MEMBER, source="direct")  # direct access goes too
    key = _signed_in_session(user)
    token, _ = token_create(actor=user, name="script")
    if how == "delete":
        assert s.http.delete(f"Users/{dana['id']}").status_code == 204
        assert s.http.get(f"Users/{dana['id']}").status_code == 404
        action = "scim.user_deleted"
    else:
        r = patch(s, f"Users/{dana['id']}", {"op": "replace", "value": {"active": False}})
        assert r.status_code == 200 and r.json()["active"] is False
        action = "scim.user_deprovisioned"
    assert not OrgMembership.objects.filter(user=user, organization=s.org).exists()
    assert not WorkspaceMembership.objects.filter(user=user).exists()
    assert not ScimGrant.objects.exists()
    assert not SessionStore().exists(key) and not UserSession.objects.filter(user=user).exists()
    assert ApiToken.objects.get(pk=token.pk).revoked_at is not None
    event = AuditEvent.objects.get(organization=s.org, action=action)
    assert event.actor_label == "SCIM (Okta)"
    assert {a["workspace_id"] for a in event.details["access_removed"]} == {
        s.ws_a.public_id,
        s.ws_b.public_id,
    }
    if how == "patch_inactive":
        # Re-activating restores nothing silently: a member seat and today's group grants only.
        OrgMembership.objects.filter(user=user).delete()
        r = patch(s, f"Users/{dana['id']}", {"op": "replace", "path": "active", "value": True})
        assert r.status_code == 200
        assert OrgMembership.objects.get(user=user, organization=s.org).role == Role.MEMBER
        assert set(
            WorkspaceMembership.objects.filter(user=user).values_list("workspace", "role")
        ) == {(s.ws_a.pk, Role.ADMIN)}
        assert ApiToken.objects.get(pk=token.pk).revoked_at is not None
        ev = AuditEvent.objects.filter(action="scim.user_provisioned").order_by("-pk").first()
        assert ev.details["reactivated"] is True


def test_put_updates_the_record_not_the_accounts_email(scim_http):
    s = scim_http
    dana = new_user(s, "dana@acme.test").json()
    r = s.http.put(
        f"Users/{dana['id']}",
        json={
            "schemas": [USER_URN],
            "userName": "dana.scully@acme.test",
            "displayName": "Agent Scully",
            "active": True,
        },
    )
    assert r.status_code == 200 and r.json()["displayName"] == "Agent Scully"
    assert User.objects.filter(email="dana@acme.test").exists()
    assert "scim.user_updated" in events(s.org)


def test_a_user_without_an_address_waits_for_one(scim_http):
    s = scim_http
    r = s.http.post("Users", json={"schemas": [USER_URN], "userName": "u-1234"})
    assert r.status_code == 201
    scim_user = ScimUser.objects.get(user_name="u-1234")
    assert scim_user.user is None
    r = patch(
        s,
        f"Users/{scim_user.public_id}",
        {"op": "add", "path": "emails", "value": [{"value": "late@acme.test", "primary": True}]},
    )
    assert r.status_code == 200
    assert OrgMembership.objects.filter(organization=s.org, user__email="late@acme.test").exists()


def test_an_unverified_squatter_loses_the_address(scim_http):
    """Someone who signed up with an address and never proved it does not keep the account."""
    s = scim_http
    squatter = UserFactory(email="victim@acme.test", email_verified_at=None)
    key = _signed_in_session(squatter)
    assert new_user(s, "victim@acme.test").status_code == 201
    squatter.refresh_from_db()
    assert not squatter.has_usable_password() and squatter.email_verified_at is not None
    assert not SessionStore().exists(key)


def test_the_last_owner_cannot_be_deprovisioned(scim_http):
    s = scim_http
    s.http.post("Users", json={"schemas": [USER_URN], "userName": s.owner.email})
    scim_user = ScimUser.objects.get(user=s.owner)
    r = patch(
        s, f"Users/{scim_user.public_id}", {"op": "replace", "path": "active", "value": False}
    )
    assert r.status_code == 409 and "last owner" in r.json()["detail"]
    assert OrgMembership.objects.filter(user=s.owner, organization=s.org).exists()


def test_bad_input_is_a_scim_error_never_a_500(scim_http):
    s = scim_http
    for body in ["not json", "[]", '{"schemas": ["x"], "userName": 5}']:
        r = s.http.post("Users", data=body)
        assert r.status_code == 400 and r.json()["schemas"] == [ERROR_URN], body
    r = s.http.post("Users", json={"schemas": [USER_URN], "userName": "a\u0000b@acme.test"})
    assert r.status_code == 400
    r = patch(s, "Users/scu_nothere", {"op": "replace", "path": "active", "value": False})
    assert r.status_code == 404 and r.json()["schemas"] == [ERROR_URN]
    assert s.http.get("Nope").status_code == 404


def test_create_scim_token_command_prints_a_working_token(scim_http):
    from io import StringIO

    from django.core.management import call_command

    out = StringIO()
    call_command("create_scim_token", scim_http.org.slug, "--name", "Entra", stdout=out)
    raw = out.getvalue().strip()
    assert raw.startswith("scim_")
    scim_http.http.session.headers["Authorization"] = f"Bearer {raw}"
    assert scim_http.http.get("ServiceProviderConfig").status_code == 200
    event = AuditEvent.objects.filter(action="scim.token_created").order_by("-pk").first()
    assert event.details["name"] == "Entra" and raw not in str(event.details)
