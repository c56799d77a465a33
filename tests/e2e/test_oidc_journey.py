"""The OpenID Connect journey in Chromium: an owner sets up OIDC on the org's SSO page against a
real OpenID provider process on loopback (tests/idp/oidc_provider.py); a new person then clicks
"Sign in with SSO", enters their email, signs in at the provider and comes back signed in, in
the org, with the default workspace grant.

Set SSO_SCREENSHOTS=<dir> to also save the pages at 1440x900 and 390x844.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from audit.models import AuditEvent
from config.roles import Role
from members.models import OrgMembership, User
from orgs.governance_services import policy_set
from orgs.services import org_create
from orgs.sso.models import OidcConnection
from orgs.sso.oidc import callback_url
from tests.e2e.conftest import sign_in
from tests.e2e.test_sso_journey import _shot
from tests.factories import PASSWORD, UserFactory
from workspaces.models import WorkspaceMembership
from workspaces.services import workspace_create

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_owner_sets_up_oidc_and_a_new_person_signs_in_with_sso(
    browsers, live_server, settings, oidc_provider, verified
):
    settings.SITE_URL = live_server.url
    owner = UserFactory(full_name="Olivia Owner", email="olivia@acme.test")
    production = workspace_create(actor=owner, name="Production")
    workspace_create(actor=owner, name="Sandbox")  # not in the org: the new person never sees it
    org = org_create(actor=owner, name="Acme Corp", workspace=production)
    policy_set(
        actor=owner,
        org=org,
        kind="default_workspace_grant",
        value={"workspaces": [production.public_id], "role": "member"},
    )
    verified(org, "acme.test")  # the DNS path has its own journey (test_sso_journey.py)

    # The owner registers our redirect URI at the provider and saves the provider here.
    admin = browsers.new_page("owner")
    sign_in(admin, owner.email, PASSWORD)
    admin.goto(f"/o/{org.slug}/sso/")
    redirect_uri = admin.get_by_test_id("oidc-redirect-uri").inner_text().strip()
    assert redirect_uri == callback_url(org)
    oidc_provider.client("signalsmith-e2e", "e2e-client-secret", redirect_uri)
    admin.fill("input[name=issuer]", oidc_provider.issuer)
    admin.fill("input[name=client_id]", "signalsmith-e2e")
    admin.fill("input[name=client_secret]", "e2e-client-secret")
    admin.get_by_role("button", name="Save OpenID Connect").click()
    expect(admin.get_by_text("OpenID Connect single sign-on saved.")).to_be_visible()
    expect(admin.locator("#oidc")).to_contain_text(oidc_provider.issuer)
    expect(admin.locator("input[name=client_secret]")).to_have_value("")  # never shown again
    assert OidcConnection.objects.get(organization=org).client_id == "signalsmith-e2e"
    _shot(admin, "oidc-settings")

    # A new person: no account, no invitation.
    oidc_provider.user(email="dana.new@acme.test", email_verified=True, name="Dana New")
    person = browsers.new_page("person")
    person.goto("/signin/")
    person.get_by_test_id("sso-signin-link").click()
    person.fill("input[name=email]", "dana.new@acme.test")
    person.get_by_role("button", name="Continue").click()
    # The provider consents by itself and sends the browser back; we land signed in.
    person.wait_for_url(lambda url: url.startswith(live_server.url) and "/sso/" not in url)
    expect(person.get_by_text("Welcome to Acme Corp.")).to_be_visible()
    body = person.locator("body")
    expect(body).to_contain_text("Production")
    expect(body).not_to_contain_text("Sandbox")
    _shot(person, "after-oidc")
    person.goto(f"/o/{org.slug}/")
    expect(person.get_by_role("heading", name="Acme Corp").first).to_be_visible()

    dana = User.objects.get(email="dana.new@acme.test")
    assert dana.full_name == "Dana New" and dana.email_verified_at is not None
    assert OrgMembership.objects.get(user=dana, organization=org).role == Role.MEMBER
    assert WorkspaceMembership.objects.get(user=dana, workspace=production).role == Role.MEMBER
    assert AuditEvent.objects.filter(
        action="sso.signed_in", target_id=dana.public_id, details__source="oidc"
    ).exists()

    # The provider says no: a clear page, nothing created.
    oidc_provider.knobs(deny=True)
    oidc_provider.user(email="erin.new@acme.test", email_verified=True, name="Erin")
    stranger = browsers.new_page("refused")
    stranger.goto(f"/sso/{org.slug}/login/")
    expect(stranger.get_by_role("heading", name="Single sign-on refused")).to_be_visible()
    expect(stranger.get_by_role("alert")).to_contain_text("access_denied")
    assert not User.objects.filter(email="erin.new@acme.test").exists()
