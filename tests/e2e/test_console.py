"""Console consistency in Chromium: one confirm dialog for destructive actions, the phone
layout's menu, refusals inside the org layout."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from config.roles import Role
from members.invitations import member_invite
from members.models import ApiToken, Invitation, OrgMembership
from members.tokens import token_create
from tests.e2e.conftest import sign_in
from tests.factories import PASSWORD

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_revoking_an_invitation_asks_first_in_the_same_dialog_as_a_token(browsers, org_setup):
    owner, org = org_setup.owner, org_setup.org
    (invitation,) = member_invite(
        actor=owner, org=org, emails=["ivy@acme.test"], org_role=Role.MEMBER, grants={}
    )
    token, _ = token_create(actor=owner, name="nightly export")
    page = browsers.new_page("owner")
    sign_in(page, owner.email, PASSWORD)

    page.goto(f"/o/{org.slug}/members/invitations/")
    row = page.locator(f"tr[data-invitation='{invitation.public_id}']")
    dialog = page.get_by_test_id("confirm-dialog")
    row.get_by_role("button", name="Revoke").click()
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("Revoke the invitation to ivy@acme.test?")
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_be_hidden()
    invitation.refresh_from_db()
    assert invitation.status == Invitation.Status.PENDING  # cancelled: nothing happened

    row.get_by_role("button", name="Revoke").click()
    dialog.get_by_role("button", name="Revoke invitation").click()
    expect(page.locator("#messages")).to_contain_text("The invitation to ivy@acme.test is revoked")
    assert Invitation.objects.get(pk=invitation.pk).status == Invitation.Status.REVOKED

    # The token (an htmx form) asks in the same dialog.
    page.goto("/account/tokens/")
    page.get_by_test_id("token-list").get_by_role("button", name="Revoke").click()
    expect(dialog).to_contain_text("Revoke nightly export?")
    dialog.get_by_role("button", name="Cancel").click()
    assert ApiToken.objects.get(pk=token.pk).revoked_at is None
    page.get_by_test_id("token-list").get_by_role("button", name="Revoke").click()
    dialog.get_by_role("button", name="Revoke token").click()
    expect(page.get_by_test_id("token-list")).to_contain_text("Revoked")
    assert ApiToken.objects.get(pk=token.pk).revoked_at is not None


def test_a_member_refused_a_page_keeps_the_org_tabs(browsers, org_setup):
    page = browsers.new_page("member")
    sign_in(page, org_setup.member.email, PASSWORD)
    response = page.goto(f"/o/{org_setup.org.slug}/usage/")
    assert response.status == 403
    expect(page.get_by_role("navigation", name="Organization")).to_be_visible()
    expect(page.get_by_role("alert")).to_be_visible()
    page.get_by_role("navigation", name="Organization").get_by_role("link", name="Members").click()
    expect(page.get_by_test_id("member-directory")).to_be_visible()


def test_on_a_phone_the_top_bar_collapses_behind_a_menu_button(chromium, live_server, org_setup):
    context = chromium.new_context(base_url=live_server.url, viewport={"width": 390, "height": 844})
    page = context.new_page()
    sign_in(page, org_setup.owner.email, PASSWORD)
    page.goto(f"/w/{org_setup.ws_a.slug}/")
    entry = page.get_by_role("link", name="Organization", exact=True)
    expect(entry).to_be_hidden()
    toggle = page.get_by_role("button", name="Menu")
    toggle.click()
    expect(toggle).to_have_attribute("aria-expanded", "true")
    entry.click()
    page.wait_for_url(f"**/o/{org_setup.org.slug}/")
    assert page.evaluate("document.scrollingElement.scrollWidth <= innerWidth")
    context.close()
    # At desktop width the entry shows without the button.
    desktop = chromium.new_context(
        base_url=live_server.url, viewport={"width": 1440, "height": 900}
    )
    page = desktop.new_page()
    sign_in(page, org_setup.owner.email, PASSWORD)
    page.goto(f"/w/{org_setup.ws_a.slug}/")
    expect(page.get_by_role("button", name="Menu")).to_be_hidden()
    expect(page.get_by_role("link", name="Organization", exact=True)).to_be_visible()
    desktop.close()


def test_after_inviting_the_link_can_be_copied_once_and_expiry_reads_in_days(browsers, org_setup):
    owner, org = org_setup.owner, org_setup.org
    page = browsers.new_page("owner")
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    sign_in(page, owner.email, PASSWORD)
    page.goto(f"/o/{org.slug}/members/invite/")
    page.fill("textarea[name=emails]", "zoe@acme.test")
    page.get_by_role("button", name="Send invitations").click()
    page.wait_for_url(f"**/o/{org.slug}/members/invitations/")
    invitation = Invitation.objects.get(email="zoe@acme.test")
    row = page.locator(f"tr[data-invitation='{invitation.public_id}']")
    expect(row.get_by_test_id("expires-in")).to_have_text("in 7 days")
    copy = row.get_by_test_id("copy-link")
    link = copy.get_attribute("data-copy")
    assert link.startswith("http") and "/invitations/" in link
    copy.click()
    expect(copy).to_have_text("Copied")
    # The link is the one that works (it opens the invitation for zoe@acme.test).
    visitor = browsers.new_page("zoe")
    visitor.goto(link.split("://", 1)[1].split("/", 1)[1].join(["/", ""]))
    expect(visitor.get_by_test_id("invitation-summary")).to_contain_text(org.name)
    # Offered once: a reload no longer shows it.
    page.reload()
    expect(row.get_by_test_id("copy-link")).to_have_count(0)


def test_bulk_change_role_with_one_preview_then_revoke_invitations(browsers, org_setup):
    from tests.e2e.conftest import ARTIFACTS

    s = org_setup
    member_invite(
        actor=s.owner,
        org=s.org,
        emails=["p@acme.test", "q@acme.test"],
        org_role=Role.MEMBER,
        grants={},
    )
    page = browsers.new_page("owner")
    sign_in(page, s.owner.email, PASSWORD)
    page.goto(f"/o/{s.org.slug}/members/")
    directory = page.get_by_test_id("member-directory")
    directory.get_by_label("Select Bob Admin").check()
    directory.get_by_label("Select Carol Member").check()
    page.select_option("#bulk-action", label="Change organization role")
    page.select_option("#bulk-role", label="Member")
    page.get_by_role("button", name="Preview the change").click()
    preview = page.get_by_test_id("bulk-preview")
    expect(preview).to_contain_text("Bob Admin")
    expect(preview).to_contain_text("Admin → Member")
    expect(preview).to_contain_text("stays Member (no change)")
    shots = ARTIFACTS / "pages"
    shots.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(shots / "owner-bulk-preview-desktop.png"), full_page=True)
    _no_serious_axe_violations(page)
    page.set_viewport_size({"width": 390, "height": 844})
    assert page.evaluate("document.scrollingElement.scrollWidth <= innerWidth")
    page.screenshot(path=str(shots / "owner-bulk-preview-phone.png"), full_page=True)
    assert OrgMembership.objects.get(user=s.admin, organization=s.org).role == Role.ADMIN
    page.get_by_role("button", name=re.compile("Confirm")).click()
    expect(page.get_by_test_id("bulk-results")).to_contain_text("2 of 2 changed")
    assert OrgMembership.objects.get(user=s.admin, organization=s.org).role == Role.MEMBER

    # Pending invitations: select all, preview revoke, confirm.
    page.goto(f"/o/{s.org.slug}/members/invitations/")
    page.get_by_label("Select every invitation").check()
    page.get_by_role("button", name="Preview revoke").click()
    expect(page.get_by_test_id("bulk-preview")).to_contain_text("p@acme.test")
    page.get_by_role("button", name=re.compile("Confirm")).click()
    expect(page.get_by_test_id("bulk-results")).to_contain_text("2 of 2 changed")
    assert not Invitation.objects.filter(status=Invitation.Status.PENDING).exists()


def _no_serious_axe_violations(page):
    from axe_playwright_python.sync_playwright import Axe

    from tests.e2e.site_pages import ALWAYS_REQUIRED

    violations = [
        f"{v['id']}: {v['help']}"
        for v in Axe().run(page).response["violations"]
        if v["impact"] in ("serious", "critical") or v["id"] in ALWAYS_REQUIRED
    ]
    assert not violations, violations


def test_billing_history_lists_the_closed_month_and_its_printable_invoice(browsers, org_setup):
    from billing.invoices import invoice_close_month, previous_month

    s = org_setup
    invoice = invoice_close_month(org=s.org, month=previous_month())
    page = browsers.new_page("owner")
    sign_in(page, s.owner.email, PASSWORD)
    page.goto(f"/o/{s.org.slug}/billing/")
    history = page.get_by_test_id("billing-history")
    expect(history).to_contain_text(invoice.number)
    expect(page.get_by_test_id("next-charge")).to_contain_text("Next invoice")
    history.get_by_role("link", name=invoice.number).click()
    expect(page.get_by_test_id("invoice")).to_contain_text("Total")
    expect(page.get_by_test_id("invoice")).to_contain_text("No charge")
    page.emulate_media(media="print")
    expect(page.get_by_role("navigation", name="Organization")).to_be_hidden()
    _no_serious_axe_violations(page)


def test_removing_a_policy_asks_first_and_keeps_the_button_s_action(browsers, org_setup):
    from orgs.governance_services import policy_set
    from orgs.models import GovernancePolicy

    s = org_setup
    policy_set(actor=s.owner, org=s.org, kind="sync_min_role", value={"role": "owner"})
    page = browsers.new_page("owner")
    sign_in(page, s.owner.email, PASSWORD)
    page.goto(f"/o/{s.org.slug}/governance/")
    section = page.locator("#policy-sync_min_role")
    dialog = page.get_by_test_id("confirm-dialog")
    section.get_by_role("button", name="Remove policy").click()
    expect(dialog).to_contain_text("stops applying")
    dialog.get_by_role("button", name="Cancel").click()
    assert GovernancePolicy.objects.filter(organization=s.org, kind="sync_min_role").exists()
    section.get_by_role("button", name="Remove policy").click()
    dialog.get_by_role("button", name="Remove policy").click()
    expect(
        page.locator("#policy-sync_min_role").get_by_role("button", name="Remove policy")
    ).to_have_count(0)
    assert not GovernancePolicy.objects.filter(organization=s.org, kind="sync_min_role").exists()


def test_usage_ranges_year_to_date_and_custom_with_the_previous_period(browsers, org_setup):
    from datetime import timedelta

    from django.utils import timezone

    s = org_setup
    page = browsers.new_page("owner")
    sign_in(page, s.owner.email, PASSWORD)
    page.goto(f"/o/{s.org.slug}/usage/")
    report = page.get_by_test_id("usage-report")
    expect(report).to_contain_text("(30 days), UTC")
    page.get_by_role("link", name="Last 365 days").click()
    expect(report).to_contain_text("(365 days), UTC")
    expect(page.get_by_test_id("usage-previous")).to_contain_text("previous 365 days")
    assert "days=365" in page.url
    page.get_by_role("link", name="Year to date").click()
    today = timezone.now().date()
    expect(report).to_contain_text(f"1 Jan {today.year} –")
    since = today - timedelta(days=13)
    page.fill("input[name=from]", since.isoformat())
    page.fill("input[name=to]", today.isoformat())
    page.get_by_role("button", name="Show range").click()
    expect(report).to_contain_text("(14 days), UTC")
    expect(page.get_by_test_id("usage-previous")).to_contain_text("previous 14 days")
    expect(page.get_by_test_id("usage-change").first).to_contain_text("previous period")


def test_audit_log_compact_rows_are_remembered(browsers, org_setup):
    s = org_setup
    page = browsers.new_page("owner")
    sign_in(page, s.owner.email, PASSWORD)
    page.goto(f"/o/{s.org.slug}/audit/")
    toggle = page.get_by_role("button", name="Compact rows")
    expect(toggle).to_have_attribute("aria-pressed", "false")
    row = page.get_by_test_id("audit-events").locator("li").first
    tall = row.bounding_box()["height"]
    toggle.click()
    expect(toggle).to_have_attribute("aria-pressed", "true")
    assert row.bounding_box()["height"] < tall
    page.reload()
    expect(page.get_by_role("button", name="Compact rows")).to_have_attribute(
        "aria-pressed", "true"
    )


def test_on_a_phone_the_current_org_tab_is_scrolled_into_view(chromium, live_server, org_setup):
    context = chromium.new_context(base_url=live_server.url, viewport={"width": 390, "height": 844})
    page = context.new_page()
    sign_in(page, org_setup.owner.email, PASSWORD)
    page.goto(f"/o/{org_setup.org.slug}/settings/")
    tab = page.get_by_role("navigation", name="Organization").get_by_role("link", name="Settings")
    expect(tab).to_be_in_viewport()
    assert page.evaluate("document.scrollingElement.scrollWidth <= innerWidth")
    context.close()
