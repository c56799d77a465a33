"""SCIM in Chromium: an owner creates a token and maps a group; the IdP (real HTTP) provisions a
person and adds them to the group; the member page shows the SCIM badge; deactivation in the
IdP cuts their access to every linked workspace at once.

Set SCIM_SCREENSHOTS=<dir> to also save the pages at 1440x900 and 390x844.
"""

from __future__ import annotations

import pytest
import requests
from django.utils import timezone
from playwright.sync_api import expect

from config.roles import Role
from members.models import OrgMembership, User
from orgs.services import org_create, workspace_link
from orgs.sso.models import VerifiedDomain
from tests.e2e.conftest import screenshots, sign_in
from tests.factories import PASSWORD, UserFactory
from workspaces.models import WorkspaceMembership
from workspaces.services import workspace_create

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

_shot = screenshots("SCIM_SCREENSHOTS")


def test_owner_connects_the_idp_and_a_leaver_is_cut_off(page, live_server):
    owner = UserFactory(email="olivia@acme.test", full_name="Olivia Owner")
    prod = workspace_create(actor=owner, name="Production")
    staging = workspace_create(actor=owner, name="Staging")
    org = org_create(actor=owner, name="Acme Corp", workspace=prod)
    workspace_link(actor=owner, org=org, workspace=staging)
    # SCIM provisions only addresses in verified domains (the DNS path: test_sso_journey.py).
    VerifiedDomain.objects.create(
        organization=org, domain="acme.test", token="t", verified_at=timezone.now()
    )

    sign_in(page, owner.email, PASSWORD)
    page.goto(f"/o/{org.slug}/scim/")
    page.fill("#token-name", "Okta")
    page.click("button[value=create_token]")
    raw = page.get_by_label("New SCIM token").input_value()
    assert raw.startswith("scim_")
    base = page.locator("#scim-base").input_value()
    assert base == f"{live_server.url}/scim/v2/{org.slug}/"
    page.fill("#map-group", "Data-Eng")
    page.select_option("#map-ws", label="Production")
    page.select_option("#map-role", label="Admin")
    page.click("button[value=set_mapping]")
    expect(
        page.get_by_text("Members of Data-Eng now get admin access to Production.")
    ).to_be_visible()
    page.fill("#map-group", "Data-Eng")
    page.select_option("#map-ws", label="Staging")
    page.select_option("#map-role", label="Member")
    page.click("button[value=set_mapping]")

    idp = requests.Session()
    idp.headers["Authorization"] = f"Bearer {raw}"
    user = idp.post(
        base + "Users",
        json={
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": "dana@acme.test",
            "name": {"givenName": "Dana", "familyName": "Scully"},
            "active": True,
        },
        timeout=30,
    ).json()
    r = idp.post(
        base + "Groups",
        json={
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
            "displayName": "Data-Eng",
            "members": [{"value": user["id"]}],
        },
        timeout=30,
    )
    assert r.status_code == 201
    dana = User.objects.get(email="dana@acme.test")
    assert dict(WorkspaceMembership.objects.filter(user=dana).values_list("workspace", "role")) == {
        prod.pk: Role.ADMIN,
        staging.pk: Role.MEMBER,
    }
    page.goto(f"/o/{org.slug}/scim/")
    expect(page.get_by_test_id("scim-users")).to_contain_text("dana@acme.test")
    _shot(page, "scim-settings")

    membership = OrgMembership.objects.get(user=dana, organization=org)
    page.goto(f"/o/{org.slug}/members/{membership.public_id}/")
    expect(page.get_by_test_id("scim-badge")).to_be_visible()
    expect(page.get_by_test_id("scim-explainer")).to_contain_text("identity provider")
    expect(page.get_by_test_id("scim-managed-grant")).to_have_count(2)
    _shot(page, "scim-member")

    r = idp.patch(
        base + f"Users/{user['id']}",
        json={
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "path": "active", "value": False}],
        },
        timeout=30,
    )
    assert r.status_code == 200
    assert not WorkspaceMembership.objects.filter(user=dana).exists()
    assert not OrgMembership.objects.filter(user=dana, organization=org).exists()
    idp.close()
    page.goto(f"/o/{org.slug}/audit/")
    expect(page.get_by_text("deprovisioned Dana Scully").first).to_be_visible()
