"""Access lifecycle in Chromium: suspend → the suspended person is refused → unsuspend;
remove → reinstate with the preview; an access review decided in bulk and its report
downloaded. SCREENSHOT_DIR=<dir> also saves the changed pages at 1440x900 and 390x844."""

from __future__ import annotations

import csv
import io
from datetime import date, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import expect

from config.roles import Role
from orgs.services import org_create, workspace_link
from reviews.models import AccessReview
from tests.e2e.conftest import screenshots, sign_in
from tests.factories import PASSWORD, UserFactory, add_to_org, add_to_workspace
from workspaces.models import WorkspaceMembership
from workspaces.services import workspace_create

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

shoot = screenshots("SCREENSHOT_DIR")


@pytest.fixture
def acme(db):
    olivia = UserFactory(full_name="Olivia Owner", email="olivia@acme.test")
    prod = workspace_create(actor=olivia, name="Production")
    stage = workspace_create(actor=olivia, name="Staging")
    org = org_create(actor=olivia, name="Acme Corp", workspace=prod)
    workspace_link(actor=olivia, org=org, workspace=stage)
    carol = UserFactory(full_name="Carol Member", email="carol@acme.test")
    dana = UserFactory(full_name="Dana Data", email="dana@acme.test")
    for person, role in ((carol, Role.MEMBER), (dana, Role.ADMIN)):
        add_to_org(person, org, role)
        add_to_workspace(person, prod, role, source="org")
    add_to_workspace(carol, stage, Role.MEMBER, source="org")
    return org, olivia, carol, dana, prod, stage


def test_suspend_refuse_unsuspend(browsers, acme):
    org, olivia, carol, _dana, prod, _stage = acme
    owner, member = browsers.new_page("owner"), browsers.new_page("carol")
    sign_in(owner, olivia.email, PASSWORD)
    sign_in(member, carol.email, PASSWORD)
    assert member.goto(f"/w/{prod.slug}/").status == 200

    owner.goto(f"/o/{org.slug}/members/")
    owner.get_by_role("link", name="Carol Member").click()
    owner.fill("#suspend-reason", "security incident review")
    owner.get_by_test_id("suspend").click()
    expect(owner.get_by_test_id("suspended-banner")).to_contain_text("security incident review")
    shoot(owner, "member-suspended")

    response = member.goto(f"/w/{prod.slug}/")
    assert response.status == 403
    expect(member.locator("body")).to_contain_text("suspended")
    assert member.goto(f"/o/{org.slug}/").status == 403

    owner.goto(f"/o/{org.slug}/members/?status=suspended")
    expect(owner.get_by_test_id("suspended-badge")).to_have_count(1)
    shoot(owner, "directory-suspended-filter")
    owner.get_by_role("link", name="Carol Member").click()
    owner.get_by_test_id("unsuspend").click()
    expect(owner.get_by_test_id("suspended-banner")).to_have_count(0)
    assert member.goto(f"/w/{prod.slug}/").status == 200


def test_remove_then_reinstate_with_preview(browsers, acme):
    org, olivia, _carol, dana, prod, stage = acme
    add_to_workspace(dana, stage, Role.OWNER, source="direct")
    owner = browsers.new_page("owner")
    sign_in(owner, olivia.email, PASSWORD)
    owner.goto(f"/o/{org.slug}/members/")
    owner.get_by_role("link", name="Dana Data").click()
    owner.get_by_role("link", name="Remove from organization…").click()
    owner.get_by_role("button", name="Remove from organization").click()
    assert not WorkspaceMembership.objects.filter(user=dana).exists()

    owner.get_by_test_id("removed-tab").click()
    shoot(owner, "recently-removed")
    owner.get_by_test_id("reinstate-link").click()
    restored = owner.get_by_test_id("restored")
    expect(restored).to_contain_text("Production — admin")
    expect(restored).to_contain_text("Staging — owner (direct)")
    shoot(owner, "reinstate-preview")
    owner.get_by_test_id("reinstate").click()
    expect(owner.locator("h2").first).to_contain_text("Dana Data")
    assert set(WorkspaceMembership.objects.filter(user=dana).values_list("workspace", "role")) == {
        (prod.pk, Role.ADMIN),
        (stage.pk, Role.OWNER),
    }


def test_review_decided_in_bulk_and_report_downloaded(browsers, acme):
    org, olivia, carol, _dana, _prod, stage = acme
    owner = browsers.new_page("owner")
    sign_in(owner, olivia.email, PASSWORD)
    owner.goto(f"/o/{org.slug}/reviews/")
    owner.get_by_test_id("start-review").click()
    owner.fill("input[name=name]", "Q4 access review")
    owner.fill("input[name=due_date]", (date.today() + timedelta(days=30)).isoformat())
    owner.select_option("select[name=unreviewed]", "revoke")
    shoot(owner, "review-start")
    owner.get_by_test_id("start").click()
    items = owner.get_by_test_id("review-items")
    expect(items).to_be_visible()
    shoot(owner, "review-decide")

    # Revoke Carol's Staging access and keep everyone else's, in two bulk steps.
    owner.locator("tr:has-text('carol@acme.test'):has-text('Staging') input[name=items]").check()
    owner.select_option("#decision", "revoke")
    owner.get_by_test_id("decide").click()
    expect(owner.locator(".banner.success")).to_contain_text("1 grant decided")
    owner.get_by_test_id("select-all").check()
    for box in owner.locator("tr:has-text('olivia@acme.test') input[name=items]").all():
        box.uncheck()  # left for the due date (finished early below): revoked by default
    owner.select_option("#decision", "keep")
    owner.get_by_test_id("decide").click()
    assert not WorkspaceMembership.objects.filter(user=carol, workspace=stage).exists()
    owner.get_by_test_id("finish").click()
    expect(owner.get_by_test_id("completed")).to_be_visible()
    shoot(owner, "review-report")

    with owner.expect_download() as download:
        owner.get_by_test_id("report-csv").click()
    rows = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text())))
    review = AccessReview.objects.get()
    assert len(rows) == review.items.count()
    carol_row = next(
        r for r in rows if r["person"] == "carol@acme.test" and r["workspace"] == "Staging"
    )
    assert (carol_row["decision"], carol_row["outcome"]) == ("revoke", "revoked")
    olivia_rows = [r for r in rows if r["person"] == "olivia@acme.test"]
    assert all(r["by_default"] == "True" for r in olivia_rows)
