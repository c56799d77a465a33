"""Just-in-time provisioning (shared by SAML and OIDC): an account and a seat, under every policy."""

from __future__ import annotations

import pytest

from audit.models import AuditEvent
from config.errors import LimitExceeded, ValidationFailed
from config.roles import Role
from members.models import OrgMembership, User
from orgs.governance_services import policy_set
from orgs.sso.provisioning import SsoRefused, sso_provision_member
from tests.factories import UserFactory
from workspaces.models import WorkspaceMembership


def test_first_sign_in_creates_account_membership_and_default_grants(org_setup, verified):
    ns = org_setup
    verified(ns.org, "acme.test")
    policy_set(
        actor=ns.owner,
        org=ns.org,
        kind="default_workspace_grant",
        value={"workspaces": [ns.ws_b.public_id], "role": "member"},
    )
    result = sso_provision_member(
        org=ns.org, email="New.Person@ACME.test", full_name="  New  Person ", source="saml"
    )
    user = User.objects.get(email="new.person@acme.test")
    assert result.created_account and result.joined and result.user == user
    assert user.full_name == "New Person" and user.email_verified_at is not None
    assert not user.has_usable_password()
    assert OrgMembership.objects.get(user=user, organization=ns.org).role == Role.MEMBER
    grant = WorkspaceMembership.objects.get(user=user)
    assert (grant.workspace, grant.role, grant.source) == (ns.ws_b, Role.MEMBER, "org")
    provisioned = AuditEvent.objects.get(action="sso.member_provisioned")
    assert provisioned.details["source"] == "saml" and provisioned.details["created_account"]
    assert AuditEvent.objects.filter(action="member.access_granted", target_id=user.public_id)

    # The second sign-in changes nothing and records nothing.
    events = AuditEvent.objects.count()
    again = sso_provision_member(org=ns.org, email=user.email, full_name="x", source="oidc")
    assert not again.joined and not again.created_account
    assert AuditEvent.objects.count() == events


def test_existing_account_joins_and_keeps_its_password(org_setup, verified):
    ns = org_setup
    verified(ns.org, "acme.test")
    person = UserFactory(email="dana@acme.test", email_verified_at=None)
    result = sso_provision_member(org=ns.org, email="dana@acme.test", full_name="", source="oidc")
    assert result.joined and not result.created_account
    person.refresh_from_db()
    assert person.has_usable_password() and person.email_verified_at is not None
    assert AuditEvent.objects.filter(action="account.email_verified", target_id=person.public_id)


@pytest.mark.parametrize("email", ["x@elsewhere.test", "x@sub.acme.test", "not-an-email", ""])
def test_emails_outside_verified_domains_are_refused(org_setup, verified, email):
    ns = org_setup
    verified(ns.org, "acme.test")
    users, events = User.objects.count(), AuditEvent.objects.count()
    with pytest.raises(SsoRefused):
        sso_provision_member(org=ns.org, email=email, full_name="X", source="saml")
    assert (User.objects.count(), AuditEvent.objects.count()) == (users, events)


def test_a_domain_claimed_but_not_verified_does_not_count(org_setup):
    from orgs.sso.domains import domain_add

    ns = org_setup
    domain_add(actor=ns.owner, org=ns.org, domain="acme.test")
    with pytest.raises(SsoRefused):
        sso_provision_member(org=ns.org, email="z@acme.test", full_name="Z", source="saml")


def test_allowed_domains_policy_and_plan_seats_hold(org_setup, verified):
    ns = org_setup
    verified(ns.org, "acme.test")
    verified(ns.org, "acme-labs.test")
    policy_set(
        actor=ns.owner, org=ns.org, kind="allowed_email_domains", value={"domains": ["acme.test"]}
    )
    with pytest.raises(ValidationFailed):
        sso_provision_member(org=ns.org, email="y@acme-labs.test", full_name="Y", source="saml")
    assert not User.objects.filter(email="y@acme-labs.test").exists()

    plan = ns.org.billing_account.plan
    plan.max_members = OrgMembership.objects.filter(organization=ns.org).count()
    plan.save()
    with pytest.raises(LimitExceeded):
        sso_provision_member(org=ns.org, email="full@acme.test", full_name="F", source="saml")
    assert not User.objects.filter(email="full@acme.test").exists()
    # An existing member still signs in when the plan is full.
    assert sso_provision_member(org=ns.org, email=ns.member.email, full_name="", source="saml")


def test_deactivated_account_is_refused(org_setup, verified):
    ns = org_setup
    verified(ns.org, "acme.test")
    UserFactory(email="gone@acme.test", is_active=False)
    with pytest.raises(SsoRefused):
        sso_provision_member(org=ns.org, email="gone@acme.test", full_name="", source="saml")


def test_staff_accounts_never_sign_in_through_a_customer_idp(org_setup, verified):
    ns = org_setup
    verified(ns.org, "acme.test")
    UserFactory(email="sue@acme.test", is_staff=True)
    with pytest.raises(SsoRefused) as exc:
        sso_provision_member(org=ns.org, email="sue@acme.test", full_name="", source="saml")
    assert exc.value.code == "sso_staff_account"
