"""Account self-service journeys in Chromium: rename, email change through a real SMTP sink,
signing out another browser; the incident-response sign-out from the member page.

Set ACCOUNT_SCREENSHOTS=<dir> to also save the account pages at 1440x900 and 390x844.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from config.roles import Role
from orgs.governance_services import policy_set
from orgs.models import GovernancePolicy
from orgs.services import org_create
from tests.e2e.conftest import screenshots, sign_in
from tests.factories import PASSWORD, UserFactory, add_to_org
from workspaces.services import workspace_create

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

_shot = screenshots("ACCOUNT_SCREENSHOTS")


@pytest.fixture
def acme(db):
    owner = UserFactory(full_name="Olivia Owner", email="olivia@acme.test")
    ws = workspace_create(actor=owner, name="Production")
    org = org_create(actor=owner, name="Acme Corp", workspace=ws)
    member = UserFactory(full_name="Carol Member", email="carol@acme.test")
    add_to_org(member, org, Role.MEMBER)
    return org, owner, member


def test_rename_shows_in_the_directory_and_new_audit_events(browsers, acme):
    org, owner, _ = acme
    page = browsers.new_page("owner")
    sign_in(page, owner.email, PASSWORD)
    page.goto("/account/")
    _shot(page, "account")
    page.fill("#id_full_name", "Olivia Newname")
    page.get_by_role("button", name="Save name").click()
    expect(page.locator("#messages")).to_contain_text("Your name is saved.")
    expect(page.locator("summary", has_text="Olivia Newname")).to_be_visible()

    page.goto(f"/o/{org.slug}/members/")
    directory = page.get_by_test_id("member-directory")
    expect(directory).to_contain_text("Olivia Newname")
    expect(directory).not_to_contain_text("Olivia Owner")

    page.goto(f"/o/{org.slug}/audit/")
    expect(page.locator("main")).to_contain_text(
        "Olivia Newname changed their name from Olivia Owner to Olivia Newname"
    )

    # Bad input: an empty name is refused with a message and nothing changes.
    page.goto("/account/")
    page.fill("#id_full_name", "   ")
    page.get_by_role("button", name="Save name").click()
    expect(page.locator(".field-error")).to_contain_text("required")
    _shot(page, "account-error")
    page.goto("/account/close/")
    expect(page.get_by_test_id("close-blocked")).to_contain_text("Acme Corp (organization)")
    _shot(page, "account-close")


def test_email_change_confirmed_by_the_link_from_the_smtp_sink(browsers, acme, smtp_sink):
    org, owner, member = acme
    page = browsers.new_page("member")
    sign_in(page, member.email, PASSWORD)
    page.goto("/account/")
    page.fill("#id_email", "carol@carol.test")
    page.fill("#id_password", PASSWORD)
    page.get_by_role("button", name="Send confirmation link").click()
    expect(page.locator("#messages")).to_contain_text("Check the inbox of carol@carol.test")
    expect(page.get_by_test_id("pending-email")).to_contain_text("carol@carol.test")
    expect(page.get_by_test_id("current-email")).to_have_text("carol@acme.test")
    _shot(page, "account-pending-email")

    smtp_sink.wait_for(2)
    (to_new,) = smtp_sink.to("carol@carol.test")
    (to_old,) = smtp_sink.to("carol@acme.test")
    assert "carol@carol.test" in to_old.get_content()
    link = re.search(r"https?://[^/\s]+(/account/email/confirm/\S+/)", to_new.get_content())
    assert link, to_new.get_content()
    page.goto(link.group(1))
    _shot(page, "email-confirm")
    page.get_by_role("button", name="Use carol@carol.test").click()
    expect(page.locator("#messages")).to_contain_text("Your email is now carol@carol.test")
    expect(page.get_by_test_id("current-email")).to_have_text("carol@carol.test")

    # Acme now allows only acme.test and carol.test: another domain is refused, naming Acme.
    policy_set(
        actor=owner,
        org=org,
        kind=GovernancePolicy.Kind.ALLOWED_EMAIL_DOMAINS,
        value={"domains": ["acme.test", "carol.test"]},
    )
    page.fill("#id_email", "carol@gmail.test")
    page.fill("#id_password", PASSWORD)
    page.get_by_role("button", name="Send confirmation link").click()
    expect(page.locator("#email")).to_contain_text("Acme Corp")
    expect(page.locator("#email .field-error")).to_contain_text("Not allowed by Acme Corp")
    expect(page.get_by_test_id("current-email")).to_have_text("carol@carol.test")
    assert len(smtp_sink.messages) == 2  # nothing was sent for the refused request


def test_sign_out_a_second_browser_and_it_is_bounced_to_sign_in(browsers, acme):
    org, owner, member = acme
    laptop = browsers.new_page("laptop")
    phone = browsers.new_page("phone")
    sign_in(laptop, member.email, PASSWORD)
    sign_in(phone, member.email, PASSWORD)
    laptop.goto("/account/")
    rows = laptop.get_by_test_id("session-list").locator("tbody tr")
    expect(rows).to_have_count(2)
    _shot(laptop, "account-sessions")
    other = rows.filter(has_not_text="This device")
    other.get_by_role("button", name="Sign out").click()
    expect(laptop.locator("#messages")).to_contain_text("Signed out")
    expect(laptop.get_by_test_id("session-list").locator("tbody tr")).to_have_count(1)

    phone.goto("/account/")
    expect(phone).to_have_url(re.compile(r"/signin/"))

    # Incident response: the owner signs the member out everywhere from the member page.
    sign_in(phone, member.email, PASSWORD)
    admin = browsers.new_page("owner")
    sign_in(admin, owner.email, PASSWORD)
    membership = org.memberships.get(user=member)
    admin.goto(f"/o/{org.slug}/members/{membership.public_id}/")
    _shot(admin, "member-page")
    admin.get_by_test_id("signout-everywhere").click()
    expect(admin.locator("#messages")).to_contain_text("Carol Member is signed out of 2 sessions")
    for browser in (laptop, phone):
        browser.goto("/account/")
        expect(browser).to_have_url(re.compile(r"/signin/"))
