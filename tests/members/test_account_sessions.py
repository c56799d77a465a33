"""Account › Sessions and devices; the incident-response sign-out; the idle timeout."""

import time

import pyotp
import pytest
from django.contrib.sessions.models import Session
from django.test import Client, override_settings
from django.urls import reverse

from audit.models import AuditEvent
from members.account_models import UserSession
from members.sessions import SEEN_KEY, describe_agent
from tests.factories import PASSWORD

FIREFOX = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14.4; rv:125.0) Gecko/20100101 Firefox/125.0"
CHROME = (
    "Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0 Mobile Safari/537.36"
)
HOME = reverse("account:home")


def signed_in(user, agent=FIREFOX, ip="10.0.0.1") -> Client:
    """A separate browser: signs in through the real sign-in form."""
    client = Client(HTTP_USER_AGENT=agent, REMOTE_ADDR=ip)
    response = client.post(reverse("members:signin"), {"email": user.email, "password": PASSWORD})
    assert response.status_code == 302
    return client


def bounced(client) -> bool:
    response = client.get(HOME)
    return response.status_code == 302 and "/signin/" in response["Location"]


def test_sign_in_records_the_session_and_the_page_lists_it(org_setup):
    laptop = signed_in(org_setup.member, FIREFOX, "10.0.0.1")
    signed_in(org_setup.member, CHROME, "10.0.0.2")
    row = UserSession.objects.get(session_key=laptop.session.session_key)
    assert (row.user, row.ip, row.user_agent) == (org_setup.member, "10.0.0.1", FIREFOX)
    page = laptop.get(HOME).content.decode()
    assert "Firefox on macOS" in page and "Chrome on Android" in page
    assert page.count("This device") == 1
    assert "10.0.0.2" in page


def test_sign_out_one_session_bounces_that_browser_only(org_setup):
    laptop = signed_in(org_setup.member, FIREFOX)
    phone = signed_in(org_setup.member, CHROME)
    phone_row = UserSession.objects.get(session_key=phone.session.session_key)
    response = laptop.post(reverse("account:session_signout", args=[phone_row.public_id]))
    assert response.status_code == 302
    assert bounced(phone)
    assert not bounced(laptop)
    assert not Session.objects.filter(session_key=phone_row.session_key).exists()
    event = AuditEvent.objects.get(action="account.session_signed_out")
    assert event.details["session"] == phone_row.public_id
    assert event.details["browser"] == "Chrome on Android"
    assert event.organization is None  # personal, like two-factor events
    assert "Chrome on Android" not in laptop.get(HOME).content.decode()


def test_another_persons_session_is_a_404_and_nothing_changes(org_setup):
    victim = signed_in(org_setup.member)
    row = UserSession.objects.get(session_key=victim.session.session_key)
    attacker = signed_in(org_setup.admin, CHROME)
    response = attacker.post(reverse("account:session_signout", args=[row.public_id]))
    assert response.status_code == 404
    assert not bounced(victim)
    assert not AuditEvent.objects.filter(action__startswith="account.session").exists()


@pytest.mark.parametrize("bad", ["nope", "ses_" + "x" * 60, "%00", "ses_\x00"])
def test_unknown_session_ids_are_a_404(org_setup, bad):
    client = signed_in(org_setup.member)
    response = client.post(f"/account/sessions/{bad}/sign-out/")
    # A NUL character is refused before any view reads it (config/middleware.py): 400.
    assert response.status_code == (400 if "00" in bad or "\x00" in bad else 404)
    assert UserSession.objects.filter(user=org_setup.member).count() == 1


def test_session_sign_out_is_post_only(org_setup):
    client = signed_in(org_setup.member)
    row = UserSession.objects.get(session_key=client.session.session_key)
    assert client.get(reverse("account:session_signout", args=[row.public_id])).status_code == 405


def test_signing_out_the_current_session_signs_you_out(org_setup):
    client = signed_in(org_setup.member)
    row = UserSession.objects.get(session_key=client.session.session_key)
    response = client.post(reverse("account:session_signout", args=[row.public_id]))
    assert response["Location"] == reverse("members:signin")
    assert bounced(client)


def test_sign_out_all_others(org_setup):
    laptop, phone, tablet = (signed_in(org_setup.member, a) for a in (FIREFOX, CHROME, CHROME))
    other = signed_in(org_setup.admin)
    assert laptop.post(reverse("account:sessions_signout_others")).status_code == 302
    assert bounced(phone) and bounced(tablet)
    assert not bounced(laptop) and not bounced(other)
    event = AuditEvent.objects.get(action="account.other_sessions_signed_out")
    assert event.details == {"count": 2}
    # Nothing left to sign out: no second event.
    laptop.post(reverse("account:sessions_signout_others"))
    assert AuditEvent.objects.filter(action="account.other_sessions_signed_out").count() == 1


def test_password_change_signs_out_the_other_sessions(org_setup):
    laptop, phone = signed_in(org_setup.member, FIREFOX), signed_in(org_setup.member, CHROME)
    new = "a-much-better-passphrase-42"
    response = laptop.post(
        reverse("members:password_change"),
        {"old_password": PASSWORD, "new_password1": new, "new_password2": new},
    )
    assert response.status_code == 302
    assert bounced(phone)
    assert not bounced(laptop)
    rows = UserSession.objects.filter(user=org_setup.member)
    assert [r.session_key for r in rows] == [laptop.session.session_key]
    assert "This device" in laptop.get(HOME).content.decode()


def test_turning_on_two_factor_signs_out_the_other_sessions(org_setup):
    laptop, phone = signed_in(org_setup.member, FIREFOX), signed_in(org_setup.member, CHROME)
    secret = laptop.get(reverse("members:two_factor")).context["secret"]
    response = laptop.post(reverse("members:two_factor"), {"code": pyotp.TOTP(secret).now()})
    assert response.status_code == 200
    assert bounced(phone)
    assert not bounced(laptop)


def test_a_wrong_two_factor_code_keeps_the_other_sessions(org_setup):
    laptop, phone = signed_in(org_setup.member, FIREFOX), signed_in(org_setup.member, CHROME)
    laptop.get(reverse("members:two_factor"))
    assert laptop.post(reverse("members:two_factor"), {"code": "000000"}).status_code == 422
    assert not bounced(phone)


# --- incident response from the member page -------------------------------------------------


def _signout_url(org, member):
    return reverse("org_members:signout_everywhere", args=[org.slug, member.public_id])


def _membership(org, user):
    return org.memberships.get(user=user)


def test_admin_signs_a_member_out_of_every_session(org_setup):
    phone, laptop = signed_in(org_setup.member, CHROME), signed_in(org_setup.member)
    admin = signed_in(org_setup.admin)
    member = _membership(org_setup.org, org_setup.member)
    detail = admin.get(reverse("org_members:detail", args=[org_setup.org.slug, member.public_id]))
    assert "Sign out of every session" in detail.content.decode()
    response = admin.post(_signout_url(org_setup.org, member))
    assert response.status_code == 302
    assert bounced(phone) and bounced(laptop)
    assert not bounced(admin)
    event = AuditEvent.objects.get(action="member.signed_out_everywhere")
    assert (event.organization, event.target_id) == (org_setup.org, org_setup.member.public_id)
    assert event.details["count"] == 2


def test_admin_cannot_sign_out_an_owner_and_a_member_cannot_sign_out_anyone(org_setup):
    owner_browser = signed_in(org_setup.owner)
    owner = _membership(org_setup.org, org_setup.owner)
    admin = signed_in(org_setup.admin)
    assert admin.post(_signout_url(org_setup.org, owner)).status_code == 403
    member = signed_in(org_setup.member)
    admin_m = _membership(org_setup.org, org_setup.admin)
    assert member.post(_signout_url(org_setup.org, admin_m)).status_code == 403
    assert not bounced(owner_browser) and not bounced(admin)
    assert not AuditEvent.objects.filter(action="member.signed_out_everywhere").exists()


def test_other_orgs_and_unknown_members_are_a_404(org_setup):
    from orgs.services import org_create

    victim = signed_in(org_setup.member)
    stranger = org_setup.stranger
    org_create(actor=stranger, name="Elsewhere")
    outsider = signed_in(stranger)
    member = _membership(org_setup.org, org_setup.member)
    assert outsider.post(_signout_url(org_setup.org, member)).status_code == 404
    owner = signed_in(org_setup.owner)
    bad = reverse("org_members:signout_everywhere", args=[org_setup.org.slug, "mem_nope"])
    assert owner.post(bad).status_code == 404
    assert not bounced(victim)
    assert not AuditEvent.objects.filter(action="member.signed_out_everywhere").exists()


def test_no_sessions_means_no_event(org_setup):
    owner = signed_in(org_setup.owner)
    member = _membership(org_setup.org, org_setup.member)
    response = owner.post(_signout_url(org_setup.org, member), follow=True)
    assert "had no signed-in sessions" in response.content.decode()
    assert not AuditEvent.objects.filter(action="member.signed_out_everywhere").exists()


# --- idle timeout ----------------------------------------------------------------------------


def _age(client, seconds):
    session = client.session
    session[SEEN_KEY] = time.time() - seconds
    session.save()


@override_settings(SESSION_IDLE_TIMEOUT_MINUTES=30)
def test_a_request_after_the_idle_time_signs_out(org_setup):
    client = signed_in(org_setup.member)
    key = client.session.session_key
    _age(client, 29 * 60)
    assert not bounced(client)  # within the idle time: still signed in (and touched)
    _age(client, 31 * 60)
    response = client.get(HOME)
    assert response.status_code == 302 and "/signin/" in response["Location"]
    assert not Session.objects.filter(session_key=key).exists()
    assert not UserSession.objects.filter(session_key=key).exists()
    page = client.get(response["Location"]).content.decode()
    assert "signed out after 30 minutes without activity" in page


def test_the_default_idle_time_is_two_hours(org_setup, settings):
    assert settings.SESSION_IDLE_TIMEOUT_MINUTES == 120
    client = signed_in(org_setup.member)
    _age(client, 119 * 60)
    assert not bounced(client)
    _age(client, 121 * 60)
    assert bounced(client)


def test_last_seen_is_written_at_most_once_per_touch_interval(org_setup):
    client = signed_in(org_setup.member)
    row = UserSession.objects.get(session_key=client.session.session_key)
    first = row.last_seen_at
    client.get(HOME)
    row.refresh_from_db()
    assert row.last_seen_at == first  # fresh: no write
    _age(client, 10 * 60)
    client.get(HOME)
    row.refresh_from_db()
    assert row.last_seen_at > first


def test_sessions_ended_elsewhere_drop_out_of_the_list(org_setup):
    laptop, phone = signed_in(org_setup.member), signed_in(org_setup.member, CHROME)
    phone.session.delete()  # ended elsewhere: row and cached copy (cached_db)
    assert "Chrome on Android" not in laptop.get(HOME).content.decode()
    assert UserSession.objects.filter(user=org_setup.member).count() == 1


@pytest.mark.parametrize(
    ("agent", "expected"),
    [
        (FIREFOX, "Firefox on macOS"),
        (CHROME, "Chrome on Android"),
        (
            "Mozilla/5.0 (Windows NT 10.0) AppleWebKit Chrome/124 Safari/537 Edg/124",
            "Edge on Windows",
        ),
        ("curl/8.5.0", "curl"),
        ("", "Unknown browser"),
    ],
)
def test_describe_agent(agent, expected):
    assert describe_agent(agent) == expected
