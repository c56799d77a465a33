"""The SSO journey in Chromium: an owner verifies acme.test against a DNS server on loopback
and uploads the metadata of a real pysaml2 IdP served on loopback; a new person then signs in
with "Sign in with SSO" and lands in the org with the default workspace grant.

Set SSO_SCREENSHOTS=<dir> to also save the pages at 1440x900 and 390x844.
"""

from __future__ import annotations

import urllib.request

import pytest
from playwright.sync_api import expect

from audit.models import AuditEvent
from config.roles import Role
from members.models import OrgMembership, User
from orgs.governance_services import policy_set
from orgs.services import org_create
from orgs.sso.models import VerifiedDomain
from tests.e2e.conftest import screenshots, sign_in
from tests.factories import PASSWORD, UserFactory
from tests.sso.saml_idp import TestIdp
from workspaces.models import WorkspaceMembership
from workspaces.services import workspace_create

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

_shot = screenshots("SSO_SCREENSHOTS")


@pytest.fixture
def served_idp(tmp_path_factory):
    idp = TestIdp(tmp_path_factory.mktemp("idp"))
    _, stop = idp.serve()
    yield idp
    stop()


def test_owner_sets_up_saml_and_a_new_person_signs_in_with_sso(
    browsers, live_server, settings, dns_zone, served_idp, tmp_path
):
    settings.SITE_URL = live_server.url
    owner = UserFactory(full_name="Olivia Owner", email="olivia@acme.test")
    production = workspace_create(actor=owner, name="Production")
    org = org_create(actor=owner, name="Acme Corp", workspace=production)
    policy_set(
        actor=owner,
        org=org,
        kind="default_workspace_grant",
        value={"workspaces": [production.public_id], "role": "member"},
    )

    # The owner verifies the domain and configures SAML in the browser.
    admin = browsers.new_page("owner")
    sign_in(admin, owner.email, PASSWORD)
    admin.goto(f"/o/{org.slug}/")
    admin.get_by_role("link", name="Single sign-on").click()
    admin.fill("input[name=domain]", "acme.test")
    admin.get_by_role("button", name="Add domain").click()
    txt = admin.get_by_test_id("txt-value").inner_text().strip()
    assert txt == VerifiedDomain.objects.get(organization=org).txt_value
    dns_zone.records["acme.test"] = [txt]
    admin.get_by_role("button", name="Verify").click()
    expect(admin.locator("#domains")).to_contain_text("Verified")

    entity_id = admin.get_by_test_id("sp-entity-id").inner_text().strip()
    with urllib.request.urlopen(entity_id, timeout=10) as response:  # our metadata, over HTTP
        served_idp.sp_metadata = response.read().decode()
    metadata_file = tmp_path / "idp-metadata.xml"
    metadata_file.write_text(served_idp.metadata())
    admin.set_input_files("input[name=metadata_file]", str(metadata_file))
    admin.get_by_role("button", name="Save", exact=True).click()
    expect(admin.locator("#saml")).to_contain_text(served_idp.entity_id)
    _shot(admin, "sso-settings")
    admin.get_by_role("link", name="Governance").first.click()
    expect(admin.locator("#policy-require_sso")).to_contain_text(
        "Not set: single sign-on is optional."
    )
    _shot(admin, "governance")

    # A new person signs in through the IdP: no account, no invitation.
    served_idp.user = {"email": "dana.new@acme.test", "name": "Dana New"}
    person = browsers.new_page("person")
    person.goto("/signin/")
    _shot(person, "signin")
    person.get_by_test_id("sso-signin-link").click()
    _shot(person, "sso-signin")
    person.fill("input[name=email]", "dana.new@acme.test")
    person.get_by_role("button", name="Continue").click()
    # The IdP page posts back to the ACS by itself; we land signed in.
    person.wait_for_url(lambda url: url.startswith(live_server.url) and "/sso/" not in url)
    expect(person.get_by_text("Welcome to Acme Corp.")).to_be_visible()
    expect(person.locator("body")).to_contain_text("Production")
    _shot(person, "after-sso")

    dana = User.objects.get(email="dana.new@acme.test")
    assert dana.full_name == "Dana New" and dana.email_verified_at is not None
    assert OrgMembership.objects.get(user=dana, organization=org).role == Role.MEMBER
    assert WorkspaceMembership.objects.get(user=dana, workspace=production).role == Role.MEMBER
    assert AuditEvent.objects.filter(action="sso.signed_in", target_id=dana.public_id).exists()

    # A refused sign-in shows a clear page: someone outside the verified domain.
    served_idp.user = {"email": "mallory@evil.test", "name": "Mallory"}
    stranger = browsers.new_page("stranger")
    stranger.goto(f"/sso/{org.slug}/login/")
    expect(stranger.get_by_role("heading", name="Single sign-on refused")).to_be_visible()
    expect(stranger.get_by_role("alert")).to_contain_text("not in a domain verified by Acme Corp")
    _shot(stranger, "refused")
    assert not User.objects.filter(email="mallory@evil.test").exists()
