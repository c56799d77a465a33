"""Every main page, as each demo person, in Chromium: the Content-Security-Policy holds (no
violation reported), nothing scrolls sideways at phone width, axe-core finds no serious or
critical violation; a screenshot of every page at both sizes lands in $TEST_ARTIFACTS/pages.
"""

from __future__ import annotations

import pytest
from django.core.management import call_command

from tests.e2e.conftest import ARTIFACTS, sign_in
from tests.e2e.site_pages import (
    CSP_LISTENER,
    DEMO_PEOPLE,
    DESKTOP,
    PHONE,
    SIGNED_OUT_PAGES,
    check_page,
    pages_for,
)

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

DEMO_PASSWORD = "signalsmith-demo"
CHECKS = {"csp", "overflow", "axe"}


@pytest.fixture
def demo(db):
    from billing.invoices import invoice_close_month, previous_month
    from orgs.models import Organization

    call_command("seed_demo", stdout=open("/dev/null", "w"))  # noqa: SIM115
    from config.roles import Role
    from members.invitations import member_invite
    from members.models import User

    acme = Organization.objects.get(slug="acme-corp")
    invoice_close_month(org=acme, month=previous_month())
    (invitation,) = member_invite(
        actor=User.objects.get(email="alice@acme.test"),
        org=acme,
        emails=["newcomer@acme.test"],
        org_role=Role.MEMBER,
        grants={},
    )
    # Someone with a standalone workspace and no organization (the Create organization page).
    from workspaces.services import workspace_create

    solo = User.objects.create_user("wendy@acme.test", DEMO_PASSWORD, full_name="Wendy Solo")
    workspace_create(actor=solo, name="Wendy's sandbox")
    return {"invitation_path": f"/invitations/{invitation.token}/"}


def _signed_in(chromium, live_server, who: str, viewport: dict):
    context = chromium.new_context(base_url=live_server.url, viewport=viewport)
    context.set_default_timeout(15_000)
    context.add_init_script(CSP_LISTENER)
    page = context.new_page()
    if who != "anon":
        sign_in(page, f"{who}@acme.test", DEMO_PASSWORD)
    return context, page


def test_the_csp_listener_reports_an_inline_style(chromium, live_server):
    """The check below would see a violation: an inline style attribute is reported."""
    context, page = _signed_in(chromium, live_server, "anon", DESKTOP)
    page.goto("/signin/")
    page.evaluate("document.body.setAttribute('style', 'color: red')")
    page.wait_for_function("window.__cspViolations.length > 0")
    assert "style-src" in page.evaluate("window.__cspViolations[0]")
    context.close()


@pytest.mark.parametrize("who", [*DEMO_PEOPLE, "wendy", "anon"])
def test_every_page_as_each_person_at_both_sizes(chromium, live_server, demo, who):
    from axe_playwright_python.sync_playwright import Axe

    axe = Axe() if "axe" in CHECKS else None
    shots = ARTIFACTS / "pages"
    shots.mkdir(parents=True, exist_ok=True)
    if who == "anon":
        pages = [*SIGNED_OUT_PAGES, ("invitation-accept", demo["invitation_path"])]
    else:
        pages = pages_for(f"{who}@acme.test")
    assert len(pages) >= 3
    problems = []
    for size, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
        context, page = _signed_in(chromium, live_server, who, viewport)
        for name, path in pages:
            problems += check_page(
                page,
                axe,
                path,
                phone=size == "phone" and "overflow" in CHECKS,
                screenshot=shots / f"{who}-{name}-{size}.png",
            )
        context.close()
    assert not problems, "\n".join(problems)
