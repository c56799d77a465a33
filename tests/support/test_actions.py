"""Each support action through the admin, as staff with the right tier and with the wrong one:
it changes exactly what it should, writes the customer-visible event with ticket and reason,
and is refused without the org's support access where that applies."""

from datetime import timedelta

import pyotp
import pytest
from django.contrib.auth.models import Group
from django.core import mail
from django.core.cache import cache
from django.core.management import call_command
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from audit.events import render_sentence
from audit.models import AuditEvent, ChainVerification
from billing.models import BillingAccount, DailyWorkspaceUsage
from config.roles import Role
from members import two_factor
from members.models import Invitation, OrgMembership, TwoFactorDevice
from support.roles import TIER_1, TIER_1_PERMISSIONS, TIER_2, TIER_2_PERMISSIONS
from tests.factories import PASSWORD, SyncRunFactory, UserFactory
from tests.support.conftest import TICKET, pending_invitation, support_events, tool_url


def test_tier_groups_exist_with_their_permissions(db):
    tier1, tier2 = Group.objects.get(name=TIER_1), Group.objects.get(name=TIER_2)
    names = {f"{p.content_type.app_label}.{p.codename}" for p in tier1.permissions.all()}
    assert names == set(TIER_1_PERMISSIONS)
    assert "support.reset_two_factor" not in names
    names2 = {f"{p.content_type.app_label}.{p.codename}" for p in tier2.permissions.all()}
    assert names2 == set(TIER_2_PERMISSIONS) and names < names2


def test_support_roles_command_is_idempotent(db, capsys):
    call_command("support_roles")
    call_command("support_roles")
    out = capsys.readouterr().out
    assert f"{TIER_2}: {len(TIER_2_PERMISSIONS)} permissions" in out
    assert Group.objects.filter(name__startswith="Support tier").count() == 2


def test_tier1_sees_account_facts_but_not_org_data(org_setup, tier1, as_staff):
    client = as_staff(tier1)
    page = client.get(reverse("admin:orgs_organization_change", args=[org_setup.org.pk]))
    html = page.content.decode()
    assert page.status_code == 200
    assert "Reachable owners: olivia@acme.test" in html and "Support access: Off" in html
    assert "Carol Member" not in html  # the member directory is org data
    assert client.get(reverse("admin:audit_auditevent_changelist")).status_code == 403
    assert client.get(reverse("admin:members_orgmembership_changelist")).status_code == 403
    user_page = client.get(reverse("admin:members_user_change", args=[org_setup.member.pk]))
    assert "Organizations: Acme Corp (member)" in user_page.content.decode()


# --- invitations --------------------------------------------------------------------------------


def test_tier1_resends_an_invitation_with_ticket_and_reason(
    support_access, tier1, as_staff, django_capture_on_commit_callbacks
):
    inv = pending_invitation(support_access)
    old_hash = inv.token_hash
    client = as_staff(tier1)
    page = client.get(reverse("admin:members_invitation_change", args=[inv.pk]))
    assert 'data-testid="support-resend"' in page.content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(tool_url(inv, "resend"), TICKET, follow=True)
    assert "resent with a fresh 7-day link" in response.content.decode()
    inv.refresh_from_db()
    assert inv.token_hash != old_hash and inv.status == Invitation.Status.PENDING
    event = support_events("member.invite_resent").get()
    assert event.actor_type == "support" and event.actor_user == tier1
    assert event.organization == support_access.org
    assert event.details["support_ticket"] == "T-1234"
    assert event.details["support_reason"] == TICKET["reason"]
    assert render_sentence(event) == (
        "Support engineer Tina Tier1 (ticket T-1234) resent the invitation to newcomer@acme.test"
    )
    assert mail.outbox and mail.outbox[-1].to == ["newcomer@acme.test"]


def test_resend_needs_a_ticket_and_a_reason(support_access, tier1, as_staff):
    inv = pending_invitation(support_access)
    response = as_staff(tier1).post(tool_url(inv, "resend"), {"ticket": "", "reason": "short"})
    assert response.status_code == 422
    html = response.content.decode()
    assert "This field is required" in html
    assert not support_events("member.invite_resent").exists()


def test_resend_is_refused_without_the_orgs_support_access(org_setup, tier1, as_staff):
    inv = pending_invitation(org_setup)
    response = as_staff(tier1).post(tool_url(inv, "resend"), TICKET)
    assert response.status_code == 403
    assert "has not given support access" in response.content.decode()
    inv.refresh_from_db()
    assert inv.token_hash.startswith("xxxx")
    assert not support_events("member.invite_resent").exists()


def test_staff_without_a_support_group_cannot_resend(support_access, plain_staff, as_staff):
    inv = pending_invitation(support_access)
    assert as_staff(plain_staff).post(tool_url(inv, "resend"), TICKET).status_code == 403
    assert not support_events("member.invite_resent").exists()


def test_bulk_resend_and_revoke_from_the_changelist(support_access, tier1, as_staff):
    first = pending_invitation(support_access, "a1@acme.test")
    second = pending_invitation(support_access, "b2@acme.test")
    client = as_staff(tier1)
    url = reverse("admin:members_invitation_changelist")
    ids = [first.pk, second.pk]
    # The action first asks for the ticket and the reason; nothing happens yet.
    ask = client.post(url, {"action": "support_resend", "_selected_action": ids})
    assert ask.status_code == 200 and "Ticket reference" in ask.content.decode()
    assert not support_events("member.invite_resent").exists()
    done = client.post(
        url,
        {"action": "support_resend", "_selected_action": ids, "apply": "1", **TICKET},
        follow=True,
    )
    assert "Resend invitation: 2 done" in done.content.decode()
    assert support_events("member.invite_resent").count() == 2
    client.post(
        url, {"action": "support_revoke", "_selected_action": [first.pk], "apply": "1", **TICKET}
    )
    first.refresh_from_db()
    assert first.status == Invitation.Status.REVOKED
    event = support_events("member.invite_revoked").get()
    assert event.actor_type == "support" and event.details["support_ticket"] == "T-1234"


def test_revoke_object_tool(support_access, tier1, as_staff):
    inv = pending_invitation(support_access)
    as_staff(tier1).post(tool_url(inv, "revoke"), TICKET)
    inv.refresh_from_db()
    assert inv.status == Invitation.Status.REVOKED


# --- sign-in lock -----------------------------------------------------------------------------


def _sign_in(client, email, password):
    return client.post(reverse("members:signin"), {"email": email, "password": password})


def test_tier1_clears_a_sign_in_lock(
    org_setup, tier1, as_staff, settings, django_capture_on_commit_callbacks
):
    from django.test import Client

    cache.clear()
    person, browser = org_setup.member, Client()
    for _ in range(settings.AXES_FAILURE_LIMIT):
        _sign_in(browser, person.email, "wrong")
    assert _sign_in(browser, person.email, PASSWORD).status_code == 429
    client = as_staff(tier1)
    # The lock is per (account, client): clearing it lets the same browser in again.
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            tool_url(person, "clear-signin-lock"), {**TICKET, "organization": org_setup.org.pk}
        )
    assert response.status_code == 302
    assert _sign_in(browser, person.email, PASSWORD).status_code == 302
    event = support_events("account.signin_unlocked").get()
    assert event.organization == org_setup.org and event.actor_type == "support"
    assert event.details["failed_attempts"] == settings.AXES_FAILURE_LIMIT
    assert "cleared the sign-in lock on Carol Member" in render_sentence(event)
    # Nothing left to clear: refused, no second event.
    again = client.post(tool_url(person, "clear-signin-lock"), TICKET)
    assert again.status_code == 409 and "nothing to clear" in again.content.decode()
    assert support_events("account.signin_unlocked").count() == 1
    cache.clear()


def test_clear_lock_refuses_an_org_the_person_is_not_in(org_setup, tier1, as_staff):
    from orgs.services import org_create

    other = org_create(actor=org_setup.stranger, name="Elsewhere Inc")
    response = as_staff(tier1).post(
        tool_url(org_setup.member, "clear-signin-lock"), {**TICKET, "organization": other.pk}
    )
    assert response.status_code == 422  # not one of the form's choices
    assert not support_events("account.signin_unlocked").exists()
    cache.clear()


# --- two-factor reset ---------------------------------------------------------------------------


def _enrol(user):
    secret = pyotp.random_base32()
    two_factor.two_factor_enable(user=user, secret=secret, code=pyotp.TOTP(secret).now())


def test_tier2_resets_two_factor_signs_out_everywhere_and_emails(
    org_setup, tier2, as_staff, django_capture_on_commit_callbacks
):
    from django.test import Client

    person = org_setup.member
    _enrol(person)
    their_browser = Client()
    their_browser.force_login(person, backend="members.backends.EmailBackend")
    assert their_browser.get(reverse("workspaces:home")).status_code == 200
    mail.outbox.clear()
    client = as_staff(tier2)
    page = client.get(reverse("admin:members_user_change", args=[person.pk]))
    assert 'data-testid="support-reset-two-factor"' in page.content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            tool_url(person, "reset-two-factor"), {**TICKET, "organization": org_setup.org.pk}
        )
    assert response.status_code == 302
    assert not TwoFactorDevice.objects.filter(user=person).exists()
    assert their_browser.get(reverse("workspaces:home")).status_code == 302  # signed out
    assert client.get(reverse("admin:index")).status_code == 200  # the engineer is not
    assert [m.to for m in mail.outbox] == [[person.email]]
    assert "reset the two-factor sign-in" in mail.outbox[0].body
    event = support_events("account.two_factor_reset").get()
    assert event.organization == org_setup.org and event.details["sessions_ended"] == 1
    assert render_sentence(event).startswith("Support engineer Theo Tier2 (ticket T-1234) reset")


def test_tier1_cannot_reset_two_factor(org_setup, tier1, as_staff):
    _enrol(org_setup.member)
    client = as_staff(tier1)
    page = client.get(reverse("admin:members_user_change", args=[org_setup.member.pk]))
    assert "support-reset-two-factor" not in page.content.decode()
    assert client.post(tool_url(org_setup.member, "reset-two-factor"), TICKET).status_code == 403
    assert TwoFactorDevice.objects.filter(user=org_setup.member).exists()
    assert not support_events("account.two_factor_reset").exists()


def test_reset_without_two_factor_is_a_clear_refusal(org_setup, tier2, as_staff):
    response = as_staff(tier2).post(tool_url(org_setup.member, "reset-two-factor"), TICKET)
    assert response.status_code == 409
    assert "has no two-factor sign-in" in response.content.decode()


def test_the_service_itself_refuses_without_the_permission(org_setup, tier1):
    from config.errors import PermissionDenied
    from support.services import support_two_factor_reset

    _enrol(org_setup.member)
    with pytest.raises(PermissionDenied):
        support_two_factor_reset(engineer=tier1, user=org_setup.member, **TICKET)
    assert TwoFactorDevice.objects.filter(user=org_setup.member).exists()


# --- plan switch --------------------------------------------------------------------------------


def test_tier2_switches_an_org_to_a_sales_led_plan(org_setup, tier2, tier1, as_staff):
    org = org_setup.org
    url = tool_url(org, "switch-plan")
    assert as_staff(tier1).post(url, {**TICKET, "plan": "enterprise"}).status_code == 403
    client = as_staff(tier2)
    assert client.post(url, {**TICKET, "plan": "enterprise"}).status_code == 302
    assert BillingAccount.objects.get(organization=org).plan.code == "enterprise"
    event = support_events("billing.plan_changed").get()
    assert event.actor_type == "support"
    assert render_sentence(event) == (
        "Support engineer Theo Tier2 (ticket T-1234) changed the plan from Free to Enterprise"
    )


def test_support_does_not_switch_to_self_serve_plans(org_setup, tier2):
    from config.errors import PermissionDenied
    from support.services import support_plan_switch

    with pytest.raises(PermissionDenied, match="self-serve"):
        support_plan_switch(engineer=tier2, org=org_setup.org, plan_code="team", **TICKET)
    assert not support_events("billing.plan_changed").exists()


# --- roll-up, chain -----------------------------------------------------------------------------


def test_tier2_reruns_the_rollup_for_a_day_range(org_setup, tier2, tier1, as_staff):
    from billing.rollups import rollup_usage

    yesterday = timezone.now() - timedelta(days=1)
    SyncRunFactory(sync__workspace=org_setup.ws_a, finished_at=yesterday, rows_processed=7)
    rollup_usage(full=True)
    DailyWorkspaceUsage.objects.all().delete()  # the figures went missing
    day = yesterday.date().isoformat()
    url = tool_url(org_setup.org, "rerun-rollup")
    assert as_staff(tier1).post(url, {**TICKET, "start": day, "end": day}).status_code == 403
    client = as_staff(tier2)
    bad = client.post(url, {**TICKET, "start": day, "end": "2000-01-01"})
    assert bad.status_code == 422 and "before the first" in bad.content.decode()
    assert client.post(url, {**TICKET, "start": day, "end": day}).status_code == 302
    row = DailyWorkspaceUsage.objects.get(workspace=org_setup.ws_a)
    assert row.runs == 1 and row.rows_processed == 7
    event = support_events("support.rollup_rerun").get()
    assert event.details["rows"] == 1 and event.details["start"] == day


def test_tier1_verifies_the_audit_chain_and_sees_the_result(org_setup, tier1, as_staff):
    response = as_staff(tier1).post(tool_url(org_setup.org, "verify-chain"), TICKET, follow=True)
    assert "is intact" in response.content.decode()
    assert ChainVerification.objects.get(chain_key=org_setup.org.pk).ok
    event = support_events("support.audit_chain_verified").get()
    assert event.details["ok"] is True and event.details["verified"] > 0
    assert "verified the audit log's hash chain: intact" in render_sentence(event)


# --- ownership recovery -------------------------------------------------------------------------


def test_recovery_with_a_reachable_owner_asks_that_owner_by_email(
    org_setup, tier2, as_staff, client, django_capture_on_commit_callbacks
):
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        response = as_staff(tier2).post(
            tool_url(org_setup.org, "recover-ownership"),
            {**TICKET, "member_email": "bob@acme.test"},
            follow=True,
        )
    assert "was emailed a link to confirm" in response.content.decode()
    admin_membership = OrgMembership.objects.get(user=org_setup.admin)
    assert admin_membership.role == Role.ADMIN  # nothing changed yet
    assert support_events("support.ownership_recovery_requested").count() == 1
    (message,) = mail.outbox
    assert message.to == ["olivia@acme.test"]
    link = next(w for w in message.body.split() if "/support/ownership/" in w)
    path = link.replace("http://testserver", "")
    # Another person cannot confirm with the owner's link.
    client.force_login(org_setup.admin, backend="members.backends.EmailBackend")
    assert client.get(path).status_code == 403
    assert client.post(path).status_code == 403
    client.force_login(org_setup.owner, backend="members.backends.EmailBackend")
    page = client.get(path)
    assert "Make Bob Admin an owner" in page.content.decode()
    assert client.post(path).status_code == 302
    admin_membership.refresh_from_db()
    assert admin_membership.role == Role.OWNER
    event = support_events("org.ownership_recovered").get()
    assert event.actor_user == tier2 and event.details["confirmed_by"] == "olivia@acme.test"
    # The link is used up: a second click is a clear refusal.
    assert client.post(path).status_code == 409


def test_recovery_without_a_reachable_owner_makes_the_member_owner(org_setup, tier2, as_staff):
    org_setup.owner.is_active = False
    org_setup.owner.save()
    response = as_staff(tier2).post(
        tool_url(org_setup.org, "recover-ownership"), {**TICKET, "member_email": "carol@acme.test"}
    )
    assert response.status_code == 302
    assert OrgMembership.objects.get(user=org_setup.member).role == Role.OWNER
    event = support_events("org.ownership_recovered").get()
    assert render_sentence(event) == (
        "Support engineer Theo Tier2 (ticket T-1234) made Carol Member an owner of the "
        "organization (ownership recovery)"
    )


def test_recovery_of_a_non_member_and_by_tier1_is_refused(org_setup, tier1, tier2, as_staff):
    url = tool_url(org_setup.org, "recover-ownership")
    data = {**TICKET, "member_email": "sam@elsewhere.test"}
    assert as_staff(tier1).post(url, data).status_code == 403
    response = as_staff(tier2).post(url, data)
    assert response.status_code == 422 and "Not a member" in response.content.decode()
    assert not AuditEvent.objects.filter(action__startswith="support.ownership").exists()


def test_customer_owner_sees_support_actions_in_the_audit_log(support_access, tier1, login):
    from support.services import support_invitation_resend

    inv = pending_invitation(support_access)
    support_invitation_resend(engineer=tier1, invitation=inv, **TICKET)
    page = login(support_access.owner).get(reverse("audit:log", args=[support_access.org.slug]))
    html = page.content.decode()
    assert "Support engineer Tina Tier1 (ticket T-1234)" in html
    assert "identity checked" in html  # the reason, among the event's details


def test_a_person_without_orgs_gets_an_account_level_event(db, tier2):
    from support.services import support_two_factor_reset

    loner = UserFactory(email="loner@nowhere.test")
    _enrol(loner)
    support_two_factor_reset(engineer=tier2, user=loner, **TICKET)
    assert support_events("account.two_factor_reset").get().organization is None


def test_an_engineer_cannot_make_themselves_owner(org_setup, tier2):
    from config.errors import PermissionDenied
    from support.services import support_ownership_recover

    membership = OrgMembership.objects.create(
        organization=org_setup.org, user=tier2, role=Role.ADMIN
    )
    org_setup.owner.is_active = False
    org_setup.owner.save()
    with pytest.raises(PermissionDenied, match="themselves"):
        support_ownership_recover(
            engineer=tier2, org=org_setup.org, membership=membership, **TICKET
        )
    membership.refresh_from_db()
    assert membership.role == Role.ADMIN


def test_a_broken_chain_is_named_in_the_admin(org_setup, tier1, as_staff):
    from audit.models import AuditChainHead

    head = AuditChainHead.objects.get(chain_key=org_setup.org.pk)
    # The forger has superuser rights: on PostgreSQL they switch the audit triggers off.
    replica = connection.vendor == "postgresql"
    if replica:
        with connection.cursor() as cur:
            cur.execute("SET LOCAL session_replication_role = replica")
    forged = AuditEvent.objects.create(
        public_id="evt_forged1",
        organization=org_setup.org,
        actor_type="user",
        action="member.removed",
        chain_key=org_setup.org.pk,
        seq=head.last_seq + 1,
        prev_hash="0" * 64,
        hash="0" * 64,
    )
    AuditChainHead.objects.filter(pk=head.pk).update(last_seq=forged.seq, last_hash=forged.hash)
    if replica:
        with connection.cursor() as cur:
            cur.execute("SET LOCAL session_replication_role = DEFAULT")
    response = as_staff(tier1).post(tool_url(org_setup.org, "verify-chain"), TICKET, follow=True)
    html = response.content.decode()
    assert "is BROKEN at evt_forged1" in html
    event = support_events("support.audit_chain_verified").get()
    assert event.details["ok"] is False and event.details["first_bad_event"] == "evt_forged1"
    assert not ChainVerification.objects.get(chain_key=org_setup.org.pk).ok
