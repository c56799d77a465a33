"""The main journeys, clicked through in Chromium against a live server."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone
from playwright.sync_api import expect

from config.roles import Role
from members.models import OrgMembership
from orgs.services import org_create, workspace_link
from tests.e2e.conftest import sign_in
from tests.factories import PASSWORD, SyncFactory, SyncRunFactory, UserFactory, add_to_org
from workspaces.services import workspace_create

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def _invitation_path(mailoutbox, email: str) -> str:
    message = next(m for m in reversed(mailoutbox) if email in m.to)
    match = re.search(r"https?://[^/\s]+(/invitations/[^\s\"<>]+)", message.body)
    assert match, message.body
    return match.group(1)


def test_owner_builds_an_org_invites_someone_and_unlinks_a_workspace(browsers, mailoutbox):
    olivia = UserFactory(full_name="Olivia Owner", email="olivia@acme.test")
    production = workspace_create(actor=olivia, name="Production")
    workspace_create(actor=olivia, name="Staging")
    page = browsers.new_page("olivia")

    # Sign in; create the organization from the Production workspace.
    sign_in(page, olivia.email, PASSWORD)
    page.goto(f"/w/{production.slug}/")
    page.get_by_role("link", name="Create organization").click()
    page.fill("#id_name", "Acme Corp")
    page.get_by_role("button", name="Create Organization").click()
    page.wait_for_url(re.compile(r"/o/acme-corp/$"))

    # Link the second workspace from the Workspaces tab.
    page.get_by_role("navigation", name="Organization").get_by_role(
        "link", name="Workspaces"
    ).click()
    page.get_by_role("button", name="Link Workspace").click()
    page.select_option("#id_link_workspace", label="Staging")
    page.locator("#link-dialog").get_by_role("button", name="Link", exact=True).click()
    linked = page.get_by_test_id("linked-workspaces")
    expect(linked).to_contain_text("Staging")
    expect(linked).to_contain_text("Production")

    # Invite Dana with member access to Production.
    page.goto("/o/acme-corp/members/invite/")
    page.fill("textarea[name=emails]", "dana@newco.test")
    page.get_by_label("Production").select_option(label="Member")
    page.get_by_role("button", name="Send invitations").click()
    expect(page.locator("#messages")).to_contain_text("dana@newco.test")

    # Dana opens the emailed link in her own browser, signs up, and lands in the org.
    path = _invitation_path(mailoutbox, "dana@newco.test")
    dana_page = browsers.new_page("dana")
    dana_page.goto(path)
    expect(dana_page.get_by_test_id("invitation-summary")).to_contain_text("Production")
    dana_page.get_by_label("Full name").fill("Dana New")
    dana_page.get_by_label("Password").fill("a-long-and-unusual-passphrase")
    dana_page.get_by_role("button", name="Create account and join").click()
    dana_page.wait_for_url(re.compile(r"/o/acme-corp/$"))
    dana_page.goto("/")
    expect(dana_page.get_by_role("main")).to_contain_text("Production")

    # Olivia makes Dana an admin from the member's page.
    page.goto("/o/acme-corp/members/")
    page.get_by_test_id("member-directory").get_by_role("link", name="Dana New").click()
    page.select_option("#org-role", label="Admin")
    page.get_by_role("button", name="Change role").click()
    expect(page.get_by_role("main")).to_contain_text("Admin of Acme Corp")
    dana = OrgMembership.objects.get(user__email="dana@newco.test")
    assert dana.role == Role.ADMIN

    # The audit log, filtered to Dana, shows what she did (joining).
    page.get_by_role("navigation", name="Organization").get_by_role(
        "link", name="Audit Log"
    ).click()
    page.select_option("#f-actor", value=dana.public_id)
    page.wait_for_url(re.compile(r"actor=" + dana.public_id))
    events = page.get_by_test_id("audit-events")
    expect(events).to_contain_text("member.joined")
    expect(events).not_to_contain_text("workspace.linked")
    # Unfiltered, her role change by Olivia is there too.
    page.goto("/o/acme-corp/audit/?action=member.role_changed")
    expect(page.get_by_test_id("audit-events")).to_contain_text("Dana New")

    # Olivia unlinks Production: the confirm step names Dana, and her access goes.
    page.goto("/o/acme-corp/workspaces/")
    row = page.locator(f"tr[data-workspace='{production.public_id}']")
    row.get_by_label("Actions for Production").click()
    row.get_by_role("link", name="Unlink…").click()
    confirm = page.locator("#unlink-confirm")
    expect(confirm.get_by_test_id("losing-access")).to_contain_text("Dana New")
    confirm.get_by_role("button", name="Unlink Production").click()
    expect(page.get_by_test_id("linked-workspaces")).not_to_contain_text("Production")

    response = dana_page.goto(f"/w/{production.slug}/")
    assert response.status == 404
    dana_page.goto("/")
    expect(dana_page.get_by_role("main")).not_to_contain_text("Production")


@pytest.fixture
def acme(db):
    """Acme with two linked workspaces and a handful of members."""
    owner = UserFactory(full_name="Olivia Owner", email="olivia@acme.test")
    ws_a = workspace_create(actor=owner, name="Production")
    ws_b = workspace_create(actor=owner, name="Staging")
    org = org_create(actor=owner, name="Acme Corp", workspace=ws_a)
    workspace_link(actor=owner, org=org, workspace=ws_b)
    for name, email, role in [
        ("Carol Member", "carol@acme.test", Role.MEMBER),
        ("Bob Admin", "bob@acme.test", Role.ADMIN),
        ("Zed Zimmer", "aaa-zed@acme.test", Role.MEMBER),
        ("Maria Carlsen", "maria@acme.test", Role.MEMBER),
    ]:
        add_to_org(UserFactory(full_name=name, email=email), org, role)
    return org, owner, ws_a, ws_b


def _names(page) -> list[str]:
    return (
        page.get_by_test_id("member-directory")
        .locator("tbody tr td a")  # the name is the only link in a row
        .all_inner_texts()
    )


def test_member_directory_search_and_sort(browsers, acme):
    org, owner, *_ = acme
    page = browsers.new_page("owner")
    sign_in(page, owner.email, PASSWORD)
    page.goto(f"/o/{org.slug}/members/")
    assert _names(page) == [
        "Bob Admin",
        "Carol Member",
        "Maria Carlsen",
        "Olivia Owner",
        "Zed Zimmer",
    ]

    # Search by name or email, live (HTMX), and the URL follows.
    page.fill("#q", "car")
    page.wait_for_url(re.compile(r"q=car"))
    expect(page.get_by_test_id("member-directory").locator("tbody tr")).to_have_count(2)
    assert _names(page) == ["Carol Member", "Maria Carlsen"]
    page.fill("#q", "")
    page.wait_for_url(lambda url: "q=car" not in url)

    # Sort by email, then descending by clicking again.
    page.get_by_test_id("member-directory").locator("a[data-sort=email]").click()
    page.wait_for_url(re.compile(r"sort=email"))
    header = page.get_by_test_id("member-directory").locator(
        "th", has=page.locator("a[data-sort=email]")
    )
    expect(header).to_have_attribute("aria-sort", "ascending")
    assert _names(page)[0] == "Zed Zimmer"  # aaa-zed@…
    page.get_by_test_id("member-directory").locator("a[data-sort=email]").click()
    page.wait_for_url(re.compile(r"sort=-email"))
    expect(
        page.get_by_test_id("member-directory").locator(
            "th", has=page.locator("a[data-sort=email]")
        )
    ).to_have_attribute("aria-sort", "descending")
    assert _names(page)[0] == "Olivia Owner"  # olivia@… sorts last by email

    # Back restores the previous sort (the URL was pushed).
    page.go_back()
    page.wait_for_url(re.compile(r"sort=email$"))
    assert _names(page)[0] == "Zed Zimmer"


def test_usage_page_renders_its_charts(browsers, acme):
    org, owner, ws_a, ws_b = acme
    now = timezone.now()
    for ws, n in ((ws_a, 4), (ws_b, 2)):
        sync = SyncFactory(workspace=ws)
        for i in range(n):
            # Today: a workspace counts for the org only on the days it was linked to it.
            when = now - timedelta(minutes=i)
            SyncRunFactory(
                sync=sync,
                started_at=when,
                finished_at=when,
                status="failed" if i == 0 else "succeeded",
                rows_processed=1000,
            )
    call_command("rollup_usage", "--full", stdout=open("/dev/null", "w"))  # noqa: SIM115
    page = browsers.new_page("owner")
    sign_in(page, owner.email, PASSWORD)
    page.goto(f"/o/{org.slug}/usage/")
    report = page.get_by_test_id("usage-report")
    expect(report).to_contain_text("6 sync runs")
    charts = report.locator("svg")
    assert charts.count() >= 3  # runs per day, rows, bytes (+ one sparkline per workspace)
    assert charts.first.bounding_box()["width"] > 100
    expect(page.get_by_test_id("usage-workspaces")).to_contain_text("Production")
    expect(page.get_by_test_id("usage-workspaces")).to_contain_text("Staging")
    # Switching the range swaps the report in place and pushes the URL.
    report.get_by_role("link", name="Last 7 days").click()
    page.wait_for_url(re.compile(r"days=7"))
    expect(page.get_by_test_id("usage-report").locator("[aria-current=true]")).to_have_text(
        "Last 7 days"
    )
