"""docs/rules.md §9: org policies, validated and audited, inherited by every linked workspace (only)."""

import pyotp
import pytest
from django.urls import reverse

from audit.models import AuditEvent
from config.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from config.roles import Role
from members.invitations import invitation_accept, member_invite
from members.models import OrgMembership
from members.two_factor import two_factor_enable
from orgs.governance import policies_for_workspace, sync_min_role
from orgs.governance_services import policy_delete, policy_set
from orgs.models import GovernancePolicy
from orgs.services import workspace_unlink
from tests.factories import UserFactory, add_to_workspace
from workspaces.models import Destination, WorkspaceMembership
from workspaces.services import resource_create

Kind = GovernancePolicy.Kind


def events(org, prefix="governance."):
    return AuditEvent.objects.filter(organization=org, action__startswith=prefix).order_by("seq")


def enrol(user):
    secret = pyotp.random_base32()
    two_factor_enable(user=user, secret=secret, code=pyotp.TOTP(secret).now())


# --- the write services --------------------------------------------------------------------


def test_domains_are_normalised_and_changes_audited_with_before_after(org_setup):
    ns = org_setup
    policy = policy_set(
        actor=ns.admin,
        org=ns.org,
        kind=Kind.ALLOWED_EMAIL_DOMAINS,
        value={"domains": " @Acme.TEST, acme.test\nexample.org "},
    )
    assert policy.value == {"domains": ["acme.test", "example.org"]}
    policy_set(
        actor=ns.admin,
        org=ns.org,
        kind=Kind.ALLOWED_EMAIL_DOMAINS,
        value={"domains": ["acme.test"]},
    )
    policy_set(
        actor=ns.admin,
        org=ns.org,
        kind=Kind.ALLOWED_EMAIL_DOMAINS,
        value={"domains": ["ACME.test"]},
    )  # same: no event
    policy_delete(actor=ns.owner, org=ns.org, kind=Kind.ALLOWED_EMAIL_DOMAINS)
    created, updated, deleted = events(ns.org)
    assert [created.action, updated.action, deleted.action] == [
        "governance.policy_created",
        "governance.policy_updated",
        "governance.policy_deleted",
    ]
    assert created.details == {
        "kind": "allowed_email_domains",
        "before": None,
        "after": {"domains": ["acme.test", "example.org"]},
    }
    assert updated.details["before"] == {"domains": ["acme.test", "example.org"]}
    assert updated.details["after"] == {"domains": ["acme.test"]}
    assert deleted.details["after"] is None
    assert created.target_label == "Allowed email domains for invitations"
    assert not GovernancePolicy.objects.exists()


@pytest.mark.parametrize(
    "kind,value,field",
    [
        (Kind.SYNC_MIN_ROLE, {"role": "member"}, "role"),  # would weaken the workspace default
        (Kind.SYNC_MIN_ROLE, {"role": "boss"}, "role"),
        (Kind.ALLOWED_EMAIL_DOMAINS, {"domains": []}, "domains"),
        (Kind.ALLOWED_EMAIL_DOMAINS, {"domains": ["not a domain"]}, "domains"),
        (Kind.DEFAULT_WORKSPACE_GRANT, {"workspaces": [], "role": "member"}, "workspaces"),
        (
            Kind.DEFAULT_WORKSPACE_GRANT,
            {"workspaces": ["ws_unknown"], "role": "member"},
            "workspaces",
        ),
        (Kind.REQUIRE_TWO_FACTOR, {"enabled": "maybe?"}, "enabled"),
        ("no_such_policy", {}, "kind"),
    ],
)
def test_bad_values_change_nothing(org_setup, kind, value, field):
    ns = org_setup
    with pytest.raises(ValidationFailed) as exc:
        policy_set(actor=ns.owner, org=ns.org, kind=kind, value=value)
    assert field in exc.value.fields
    assert not GovernancePolicy.objects.exists()
    assert not events(ns.org).exists()


def test_default_grant_needs_linked_workspaces_and_member_or_admin(org_setup):
    ns = org_setup
    from workspaces.services import workspace_create

    loose = workspace_create(actor=ns.owner, name="Loose")
    with pytest.raises(ValidationFailed):
        policy_set(
            actor=ns.owner,
            org=ns.org,
            kind=Kind.DEFAULT_WORKSPACE_GRANT,
            value={"workspaces": [loose.public_id], "role": "member"},
        )
    with pytest.raises(ValidationFailed) as exc:
        policy_set(
            actor=ns.owner,
            org=ns.org,
            kind=Kind.DEFAULT_WORKSPACE_GRANT,
            value={"workspaces": [ns.ws_a.public_id], "role": "owner"},
        )
    assert "member or admin" in exc.value.message
    policy = policy_set(
        actor=ns.owner,
        org=ns.org,
        kind=Kind.DEFAULT_WORKSPACE_GRANT,
        value={"workspaces": [ns.ws_a.public_id], "role": "admin"},
    )
    assert policy.value == {"workspaces": [ns.ws_a.public_id], "role": int(Role.ADMIN)}


def test_requiring_two_factor_needs_it_on_the_actors_account(org_setup):
    ns = org_setup
    with pytest.raises(Conflict) as exc:
        policy_set(
            actor=ns.owner, org=ns.org, kind=Kind.REQUIRE_TWO_FACTOR, value={"enabled": True}
        )
    assert exc.value.code == "two_factor_required_for_actor"
    enrol(ns.owner)
    policy_set(actor=ns.owner, org=ns.org, kind=Kind.REQUIRE_TWO_FACTOR, value={"enabled": True})
    assert events(ns.org).get().details["after"] == {"enabled": True}


def test_only_owners_and_admins_manage_policies(org_setup):
    ns = org_setup
    value = {"role": "owner"}
    with pytest.raises(PermissionDenied) as exc:
        policy_set(actor=ns.member, org=ns.org, kind=Kind.SYNC_MIN_ROLE, value=value)
    assert "admin role or higher" in exc.value.message
    with pytest.raises(NotFound):
        policy_set(actor=ns.stranger, org=ns.org, kind=Kind.SYNC_MIN_ROLE, value=value)
    policy_set(actor=ns.admin, org=ns.org, kind=Kind.SYNC_MIN_ROLE, value=value)
    with pytest.raises(PermissionDenied):
        policy_delete(actor=ns.member, org=ns.org, kind=Kind.SYNC_MIN_ROLE)
    with pytest.raises(NotFound):
        policy_delete(actor=ns.admin, org=ns.org, kind=Kind.ALLOWED_EMAIL_DOMAINS)
    assert GovernancePolicy.objects.filter(kind=Kind.SYNC_MIN_ROLE).exists()


# --- enforced where they apply, in every linked workspace, and only while linked --------------


def test_sync_role_policy_blocks_admins_in_every_linked_workspace_until_unlinked(org_setup, login):
    ns = org_setup
    add_to_workspace(ns.admin, ns.ws_b, Role.ADMIN, source="direct")
    policy_set(actor=ns.owner, org=ns.org, kind=Kind.SYNC_MIN_ROLE, value={"role": "owner"})
    client = login(ns.admin)
    for ws in (ns.ws_a, ns.ws_b):
        with pytest.raises(PermissionDenied) as exc:
            resource_create(
                actor=ns.admin,
                workspace=ws,
                kind="destination",
                data={"name": "CRM", "kind": "hubspot"},
            )
        assert "owner role or higher" in exc.value.message
        url = reverse("workspaces:resource_create", args=[ws.slug, "destinations"])
        response = client.post(url, {"name": "CRM", "kind": "hubspot"})
        assert response.status_code == 403
    # Owners still may; other resources are not affected.
    resource_create(
        actor=ns.owner,
        workspace=ns.ws_a,
        kind="destination",
        data={"name": "CRM", "kind": "hubspot"},
    )
    resource_create(
        actor=ns.admin,
        workspace=ns.ws_a,
        kind="warehouse",
        data={"name": "WH", "kind": "snowflake"},
    )
    # After unlinking, ws_b no longer inherits the policy.
    workspace_unlink(actor=ns.owner, org=ns.org, workspace=ns.ws_b)
    ns.ws_b.refresh_from_db()
    assert sync_min_role(ns.org.pk) == Role.OWNER
    resource_create(
        actor=ns.admin,
        workspace=ns.ws_b,
        kind="destination",
        data={"name": "CRM", "kind": "hubspot"},
    )
    assert Destination.objects.filter(workspace=ns.ws_b).count() == 1
    assert policies_for_workspace(ns.ws_b) is None


def test_domain_policy_refuses_invites_elsewhere(org_setup):
    ns = org_setup
    policy_set(
        actor=ns.admin,
        org=ns.org,
        kind=Kind.ALLOWED_EMAIL_DOMAINS,
        value={"domains": ["acme.test"]},
    )
    with pytest.raises(ValidationFailed) as exc:
        member_invite(
            actor=ns.admin, org=ns.org, emails=["x@gmail.test"], org_role=Role.MEMBER, grants={}
        )
    assert "acme.test" in exc.value.message
    invites = member_invite(
        actor=ns.admin, org=ns.org, emails=["new@ACME.test"], org_role=Role.MEMBER, grants={}
    )
    assert invites[0].email == "new@acme.test"


def test_default_grant_applies_on_accept_and_not_after_unlink(org_setup):
    ns = org_setup
    policy_set(
        actor=ns.admin,
        org=ns.org,
        kind=Kind.DEFAULT_WORKSPACE_GRANT,
        value={"workspaces": [ns.ws_a.public_id, ns.ws_b.public_id], "role": "member"},
    )
    first = UserFactory(email="first@acme.test")
    [inv] = member_invite(
        actor=ns.admin, org=ns.org, emails=[first.email], org_role=Role.MEMBER, grants={}
    )
    invitation_accept(user=first, token=inv.token)
    assert set(
        WorkspaceMembership.objects.filter(user=first).values_list("workspace_id", "role")
    ) == {
        (ns.ws_a.pk, Role.MEMBER),
        (ns.ws_b.pk, Role.MEMBER),
    }
    workspace_unlink(actor=ns.owner, org=ns.org, workspace=ns.ws_b)
    second = UserFactory(email="second@acme.test")
    [inv] = member_invite(
        actor=ns.admin, org=ns.org, emails=[second.email], org_role=Role.MEMBER, grants={}
    )
    invitation_accept(user=second, token=inv.token)
    assert list(
        WorkspaceMembership.objects.filter(user=second).values_list("workspace_id", flat=True)
    ) == [ns.ws_a.pk]
    assert OrgMembership.objects.filter(user=second, organization=ns.org).exists()


def test_workspace_shows_inherited_policies_read_only_until_unlinked(org_setup, login):
    ns = org_setup
    policy_set(actor=ns.owner, org=ns.org, kind=Kind.SYNC_MIN_ROLE, value={"role": "owner"})
    policy_set(
        actor=ns.owner,
        org=ns.org,
        kind=Kind.ALLOWED_EMAIL_DOMAINS,
        value={"domains": ["acme.test"]},
    )
    rules = dict(policies_for_workspace(ns.ws_b))
    assert "owner role or higher" in rules["Syncs and destinations"]
    assert rules["Invitations"] == "Only addresses at acme.test."
    html = login(ns.owner).get(reverse("workspaces:overview", args=[ns.ws_b.slug])).content.decode()
    assert "owner role or higher" in html and "acme.test" in html
    assert 'action="' + reverse("orgs:governance", args=[ns.org.slug]) not in html  # read-only
    workspace_unlink(actor=ns.owner, org=ns.org, workspace=ns.ws_b)
    ns.ws_b.refresh_from_db()
    assert policies_for_workspace(ns.ws_b) is None
    html = login(ns.owner).get(reverse("workspaces:overview", args=[ns.ws_b.slug])).content.decode()
    assert "owner role or higher" not in html


# --- the page --------------------------------------------------------------------------------


def test_governance_page_for_owners_and_admins_only(org_setup, login):
    ns = org_setup
    url = reverse("orgs:governance", args=[ns.org.slug])
    assert login(ns.admin).get(url).status_code == 200
    assert login(ns.owner).get(url).status_code == 200
    response = login(ns.member).get(url)
    assert response.status_code == 403 and b"admin role or higher" in response.content
    assert (
        login(ns.member)
        .post(url, {"kind": "sync_min_role", "sync_min_role-role": "owner"})
        .status_code
        == 403
    )
    assert login(ns.stranger).get(url).status_code == 404
    assert login(ns.stranger).post(url, {"kind": "sync_min_role"}).status_code == 404
    assert not GovernancePolicy.objects.exists()


def test_governance_tab_shown_to_admins_not_members(org_setup, login):
    ns = org_setup
    overview = reverse("orgs:overview", args=[ns.org.slug])
    link = reverse("orgs:governance", args=[ns.org.slug]).encode()
    assert link in login(ns.admin).get(overview).content
    assert link not in login(ns.member).get(overview).content


def test_governance_page_sets_changes_and_removes_policies(
    org_setup, login, django_assert_max_num_queries
):
    ns = org_setup
    client = login(ns.admin)
    url = reverse("orgs:governance", args=[ns.org.slug])
    response = client.post(
        url,
        {
            "kind": "allowed_email_domains",
            "action": "set",
            "allowed_email_domains-domains": "Acme.test, acme.io",
        },
    )
    assert response.status_code == 302
    assert GovernancePolicy.objects.get().value == {"domains": ["acme.test", "acme.io"]}
    response = client.post(
        url,
        {
            "kind": "default_workspace_grant",
            "action": "set",
            "default_workspace_grant-workspaces": [ns.ws_b.public_id],
            "default_workspace_grant-role": "admin",
        },
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert "<html" not in html and "New members get admin access to Staging." in html
    with django_assert_max_num_queries(15):
        html = client.get(url).content.decode()
    assert "Only acme.test, acme.io." in html
    response = client.post(url, {"kind": "allowed_email_domains", "action": "delete"})
    assert response.status_code == 302
    assert list(GovernancePolicy.objects.values_list("kind", flat=True)) == [
        "default_workspace_grant"
    ]


def test_governance_page_shows_refusals_and_changes_nothing(org_setup, login):
    ns = org_setup
    client = login(ns.admin)
    url = reverse("orgs:governance", args=[ns.org.slug])
    response = client.post(
        url,
        {"kind": "allowed_email_domains", "action": "set", "allowed_email_domains-domains": "nope"},
    )
    assert response.status_code == 422
    assert b"not a valid domain" in response.content
    response = client.post(
        url, {"kind": "require_two_factor", "action": "set", "require_two_factor-enabled": "on"}
    )
    assert response.status_code == 409
    assert b"Turn on two-factor sign-in for your own account first" in response.content
    assert not GovernancePolicy.objects.exists()
