"""SSO in, SCIM out, in Chromium: a new person signs in through a real pysaml2 IdP on loopback
("Sign in with SSO" → IdP → ACS) and lands in the org with the default workspace grants; the
org's SCIM client (real HTTP to the live server, the org's bearer token) then deactivates them:
their next page load is signed out and no linked workspace lists them any more.
"""

from __future__ import annotations

import urllib.request

import pytest
import requests
from django.utils import timezone
from playwright.sync_api import expect

from audit.models import AuditEvent
from members.models import OrgMembership, User
from orgs.governance_services import policy_set
from orgs.scim.services import scim_token_create
from orgs.services import org_create, workspace_link
from orgs.sso.models import VerifiedDomain
from orgs.sso.saml import saml_configure
from tests.e2e.conftest import screenshots, sign_in
from tests.factories import PASSWORD, UserFactory
from tests.sso.saml_idp import TestIdp
from workspaces.models import WorkspaceMembership
from workspaces.services import workspace_create

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
_shot = screenshots("SSO_SCREENSHOTS")

USER_URN = "urn:ietf:params:scim:schemas:core:2.0:User"
PATCH_URN = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


@pytest.fixture
def served_idp(tmp_path_factory):
    idp = TestIdp(tmp_path_factory.mktemp("idp"))
    _, stop = idp.serve()
    yield idp
    stop()


def test_sso_sign_in_then_scim_deactivation_signs_the_person_out(
    browsers, live_server, settings, served_idp
):
    settings.SITE_URL = live_server.url
    owner = UserFactory(full_name="Olivia Owner", email="olivia@acme.test")
    production = workspace_create(actor=owner, name="Production")
    staging = workspace_create(actor=owner, name="Staging")
    org = org_create(actor=owner, name="Acme Corp", workspace=production)
    workspace_link(actor=owner, org=org, workspace=staging)
    policy_set(
        actor=owner,
        org=org,
        kind="default_workspace_grant",
        value={"workspaces": [production.public_id, staging.public_id], "role": "member"},
    )
    # Domain verification and SAML setup in the browser: test_sso_journey.py.
    VerifiedDomain.objects.create(
        organization=org, domain="acme.test", token="t", verified_at=timezone.now()
    )
    metadata_url = f"{live_server.url}/sso/{org.slug}/saml/metadata/"
    with urllib.request.urlopen(metadata_url, timeout=10) as response:
        served_idp.sp_metadata = response.read().decode()
    saml_configure(actor=owner, org=org, metadata_xml=served_idp.metadata())
    _, raw = scim_token_create(actor=owner, org=org, name="Okta")

    # A new person signs in with SSO: no account, no invitation.
    served_idp.user = {"email": "dana.new@acme.test", "name": "Dana New"}
    person = browsers.new_page("person")
    person.goto("/signin/")
    person.get_by_test_id("sso-signin-link").click()
    person.fill("input[name=email]", "dana.new@acme.test")
    person.get_by_role("button", name="Continue").click()
    person.wait_for_url(lambda url: url.startswith(live_server.url) and "/sso/" not in url)
    expect(person.get_by_text("Welcome to Acme Corp.")).to_be_visible()
    # The default workspace grants are there, and the person can open each workspace.
    for ws in (production, staging):
        expect(person.locator("body")).to_contain_text(ws.name)
        person.goto(f"/w/{ws.slug}/members/")
        expect(person.locator("main")).to_contain_text("Dana New")
    dana = User.objects.get(email="dana.new@acme.test")
    assert set(
        WorkspaceMembership.objects.filter(user=dana).values_list("workspace", flat=True)
    ) == {
        production.pk,
        staging.pk,
    }

    # The owner sees Dana in both workspaces.
    admin = browsers.new_page("owner")
    sign_in(admin, owner.email, PASSWORD)
    for ws in (production, staging):
        admin.goto(f"/w/{ws.slug}/members/")
        expect(admin.locator("main")).to_contain_text("Dana New")

    # The org's SCIM client: the IdP pushes the person (linked to the account SSO created),
    # then deactivates them, over real HTTP with the org's bearer token.
    scim = requests.Session()
    scim.headers.update({"Authorization": f"Bearer {raw}", "Content-Type": "application/scim+json"})
    base = f"{live_server.url}/scim/v2/{org.slug}/"
    created = scim.post(
        base + "Users",
        json={"schemas": [USER_URN], "userName": "dana.new@acme.test", "active": True},
        timeout=30,
    )
    assert created.status_code == 201, created.text
    assert OrgMembership.objects.filter(user=dana, organization=org).exists()
    # The directory marks Dana as provisioned by the IdP (SCIM) and in a verified domain (SSO).
    admin.goto(f"/o/{org.slug}/members/")
    dana_row = admin.locator("tr", has_text="Dana New")
    expect(dana_row.get_by_test_id("scim-badge")).to_be_visible()
    expect(dana_row.get_by_test_id("sso-badge")).to_be_visible()
    _shot(admin, "directory-badges")
    deactivated = scim.patch(
        base + f"Users/{created.json()['id']}",
        json={
            "schemas": [PATCH_URN],
            "Operations": [{"op": "replace", "path": "active", "value": False}],
        },
        timeout=30,
    )
    assert deactivated.status_code == 200 and deactivated.json()["active"] is False
    scim.close()

    # Dana's next page load: signed out.
    person.goto(f"/w/{production.slug}/members/")
    person.wait_for_url(lambda url: "/signin" in url)
    expect(person.locator("input[name=password]")).to_be_visible()
    person.goto(f"/o/{org.slug}/")
    assert "/signin" in person.url

    # No linked workspace lists Dana any more (the owner's view and the database).
    for ws in (production, staging):
        admin.goto(f"/w/{ws.slug}/members/")
        expect(admin.locator("main")).to_contain_text("Olivia Owner")
        expect(admin.locator("main")).not_to_contain_text("Dana New")
    assert not WorkspaceMembership.objects.filter(user=dana).exists()
    assert not OrgMembership.objects.filter(user=dana, organization=org).exists()
    event = AuditEvent.objects.get(action="scim.user_deprovisioned", target_id=dana.public_id)
    assert event.details["sessions_ended"] >= 1
