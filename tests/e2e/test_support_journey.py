"""Support journey in Chromium: a tier-1 engineer resends an invitation and clears a sign-in
lock, a tier-2 engineer resets two-factor sign-in, and the customer's owner reads both in the
audit log."""

from __future__ import annotations

import pyotp
import pytest
from django.contrib.auth.models import Group
from playwright.sync_api import expect

from config.roles import Role
from members import two_factor
from members.invitations import member_invite
from members.models import TwoFactorDevice
from orgs.governance_services import policy_set
from orgs.services import org_create
from support.roles import TIER_1, TIER_2
from tests.e2e.conftest import sign_in, submit_sign_in
from tests.factories import PASSWORD, UserFactory, add_to_org
from workspaces.services import workspace_create

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def _staff(email, name, group):
    user = UserFactory(email=email, full_name=name, is_staff=True)
    user.groups.add(Group.objects.get(name=group))
    return user


def _support_action(page, admin_path: str, tool: str, ticket: str, reason: str) -> None:
    page.goto(admin_path)
    page.get_by_test_id(f"support-{tool}").click()
    page.fill("input[name=ticket]", ticket)
    page.fill("textarea[name=reason]", reason)
    page.locator("input[name=_support]").click()


def test_support_engineers_help_and_the_owner_sees_it(browsers, settings):
    settings.SIGNIN_MAX_FAILURES = 5
    olivia = UserFactory(full_name="Olivia Owner", email="olivia@acme.test")
    org = org_create(
        actor=olivia, name="Acme Corp", workspace=workspace_create(actor=olivia, name="Production")
    )
    policy_set(actor=olivia, org=org, kind="support_access", value={"mode": "always"})
    carol = UserFactory(full_name="Carol Member", email="carol@acme.test")
    bob = UserFactory(full_name="Bob Admin", email="bob@acme.test")
    add_to_org(carol, org, Role.MEMBER)
    add_to_org(bob, org, Role.ADMIN)
    secret = pyotp.random_base32()
    two_factor.two_factor_enable(user=bob, secret=secret, code=pyotp.TOTP(secret).now())
    (invitation,) = member_invite(
        actor=olivia, org=org, emails=["dana@newco.test"], org_role=Role.MEMBER, grants={}
    )
    tina = _staff("tina@signalsmith.test", "Tina Tier1", TIER_1)
    theo = _staff("theo@signalsmith.test", "Theo Tier2", TIER_2)

    # Carol mistypes her password until she is locked out.
    carol_page = browsers.new_page("carol")
    for _ in range(settings.AXES_FAILURE_LIMIT):
        submit_sign_in(carol_page, carol.email, "not-her-password")
    submit_sign_in(carol_page, carol.email, PASSWORD)
    expect(carol_page.locator("body")).to_contain_text("Too many failed sign-ins")

    # Tier 1: resend Dana's invitation, then clear Carol's lock.
    page = browsers.new_page("tina")
    sign_in(page, tina.email, PASSWORD)
    _support_action(
        page,
        f"/admin/members/invitation/{invitation.pk}/change/",
        "resend",
        "T-100",
        "Invitee says the email never arrived.",
    )
    expect(page.locator(".messagelist")).to_contain_text("resent with a fresh 7-day link")
    # Tier 1 is offered no two-factor reset.
    page.goto(f"/admin/members/user/{bob.pk}/change/")
    expect(page.get_by_test_id("support-clear-signin-lock")).to_be_visible()
    expect(page.get_by_test_id("support-reset-two-factor")).to_have_count(0)
    _support_action(
        page,
        f"/admin/members/user/{carol.pk}/change/",
        "clear-signin-lock",
        "T-101",
        "Locked out after typos, identity checked by phone.",
    )
    expect(page.locator(".messagelist")).to_contain_text("Sign-in lock of carol@acme.test cleared")

    # Carol signs in now.
    sign_in(carol_page, carol.email, PASSWORD)

    # Tier 2: reset Bob's two-factor sign-in.
    page2 = browsers.new_page("theo")
    sign_in(page2, theo.email, PASSWORD)
    _support_action(
        page2,
        f"/admin/members/user/{bob.pk}/change/",
        "reset-two-factor",
        "T-102",
        "Lost phone and recovery codes, identity verified.",
    )
    expect(page2.locator(".messagelist")).to_contain_text(
        "Two-factor sign-in of bob@acme.test reset"
    )
    assert not TwoFactorDevice.objects.filter(user=bob).exists()

    # The owner reads all of it in the organization's audit log.
    owner_page = browsers.new_page("olivia")
    sign_in(owner_page, olivia.email, PASSWORD)
    owner_page.goto("/o/acme-corp/audit/")
    log = owner_page.locator("main")
    expect(log).to_contain_text(
        "Support engineer Tina Tier1 (ticket T-100) resent the invitation to dana@newco.test"
    )
    expect(log).to_contain_text(
        "Support engineer Tina Tier1 (ticket T-101) cleared the sign-in lock on Carol Member"
    )
    expect(log).to_contain_text(
        "Support engineer Theo Tier2 (ticket T-102) reset Bob Admin's two-factor sign-in"
    )
