"""Sign-in throttling (django-axes, members/auth.py): a lock belongs to one (account, client)
pair, a client has a far higher limit across accounts, the client address honours
X-Forwarded-For only behind configured proxies, and every lock lifts after the cool-off."""

import re
from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.core import mail
from django.test import RequestFactory, override_settings
from django.urls import reverse

from config.middleware import client_ip
from tests.factories import PASSWORD, UserFactory

NEW_PASSWORD = "a-much-better-passphrase-42"

pytestmark = pytest.mark.django_db


@pytest.fixture
def person(db):
    return UserFactory(email="pat@acme.test", full_name="Pat Person")


def sign_in(client, email, password, ip="10.0.0.1", **headers):
    return client.post(
        reverse("members:signin"), {"email": email, "password": password}, REMOTE_ADDR=ip, **headers
    )


def signed_in(client) -> bool:
    return "_auth_user_id" in client.session


@override_settings(AXES_FAILURE_LIMIT=3)
def test_a_strangers_failures_do_not_lock_the_owner_elsewhere(client, django_user_model, person):
    for _ in range(2):
        assert sign_in(client, person.email, "wrong", ip="198.51.100.7").status_code == 200
    locked = sign_in(client, person.email, "wrong", ip="198.51.100.7")
    assert locked.status_code == 429
    assert "Too many failed sign-ins" in locked.content.decode()
    assert int(locked["Retry-After"]) > 0
    # The stranger's pair stays locked, even with the right password ...
    assert sign_in(client, person.email, PASSWORD, ip="198.51.100.7").status_code == 429
    assert not signed_in(client)
    # ... while the owner, from their own address, signs in at once.
    response = sign_in(client, "PAT@acme.test", PASSWORD, ip="203.0.113.20")
    assert response.status_code == 302
    assert signed_in(client)


@override_settings(AXES_FAILURE_LIMIT=3)
def test_email_case_and_spaces_do_not_give_a_stranger_more_tries(client, person):
    for email in ("pat@acme.test", "PAT@ACME.TEST", " Pat@Acme.test "):
        sign_in(client, email, "wrong", ip="198.51.100.7")
    assert sign_in(client, person.email, PASSWORD, ip="198.51.100.7").status_code == 429


@override_settings(AXES_FAILURE_LIMIT=3, SIGNIN_FAILURES_PER_CLIENT=6)
def test_one_client_trying_many_accounts_hits_the_per_client_limit(client, person):
    for i in range(6):  # two tries on each of three accounts: no pair reaches 3
        response = sign_in(client, f"guess{i % 3}@acme.test", "wrong", ip="198.51.100.7")
    assert response.status_code == 429
    # Locked for every account from that client, the right password included ...
    assert sign_in(client, person.email, PASSWORD, ip="198.51.100.7").status_code == 429
    assert not signed_in(client)
    # ... and for nobody anywhere else.
    assert sign_in(client, person.email, PASSWORD, ip="203.0.113.20").status_code == 302


@override_settings(AXES_FAILURE_LIMIT=3, SIGNIN_FAILURES_PER_CLIENT=50)
def test_below_the_per_client_limit_other_accounts_still_sign_in(client, person):
    for i in range(10):
        sign_in(client, f"guess{i}@acme.test", "wrong", ip="198.51.100.7")
    assert sign_in(client, person.email, PASSWORD, ip="198.51.100.7").status_code == 302


@override_settings(AXES_FAILURE_LIMIT=3)
def test_a_successful_sign_in_clears_only_its_own_pair(client, person):
    other = UserFactory(email="other@acme.test")
    for _ in range(2):
        sign_in(client, person.email, "wrong", ip="10.0.0.1")
        sign_in(client, other.email, "wrong", ip="10.0.0.1")
    assert sign_in(client, person.email, PASSWORD, ip="10.0.0.1").status_code == 302
    client.post(reverse("members:signout"))
    for _ in range(2):
        assert sign_in(client, person.email, "wrong", ip="10.0.0.1").status_code == 200
    # The other account's failures from this client were not wiped by pat's success.
    assert sign_in(client, other.email, "wrong", ip="10.0.0.1").status_code == 429


@override_settings(AXES_FAILURE_LIMIT=3, AXES_COOLOFF_TIME=timedelta(minutes=15))
def test_the_lock_lifts_after_the_cool_off_and_trying_meanwhile_does_not_extend_it(client, person):
    for _ in range(3):
        sign_in(client, person.email, "wrong", ip="198.51.100.7")
    locked_at = AccessAttempt.objects.get().attempt_time
    for _ in range(3):  # hammering during the lock is refused and not counted
        assert sign_in(client, person.email, "wrong", ip="198.51.100.7").status_code == 429
    assert AccessAttempt.objects.get().attempt_time == locked_at
    assert AccessAttempt.objects.get().failures_since_start == 3
    # Fifteen minutes (and a second) after the failure that locked it:
    AccessAttempt.objects.update(attempt_time=locked_at - timedelta(minutes=15, seconds=1))
    response = sign_in(client, person.email, PASSWORD, ip="198.51.100.7")
    assert response.status_code == 302
    assert signed_in(client)


@override_settings(AXES_FAILURE_LIMIT=3, TRUSTED_PROXY_COUNT=0)
def test_without_trusted_proxies_a_spoofed_forwarded_for_is_ignored(client, person):
    for i in range(3):  # a different made-up client address each time: all one client
        sign_in(client, person.email, "wrong", ip="198.51.100.7", HTTP_X_FORWARDED_FOR=f"1.1.1.{i}")
    response = sign_in(
        client, person.email, PASSWORD, ip="198.51.100.7", HTTP_X_FORWARDED_FOR="203.0.113.20"
    )
    assert response.status_code == 429
    assert set(AccessAttempt.objects.values_list("ip_address", flat=True)) == {"198.51.100.7"}


@override_settings(AXES_FAILURE_LIMIT=3, TRUSTED_PROXY_COUNT=1)
def test_behind_a_trusted_proxy_clients_are_told_apart_by_forwarded_for(client, person):
    proxy = "10.0.0.2"
    for i in range(3):  # the attacker forges entries on the left; the proxy appends the truth
        sign_in(
            client,
            person.email,
            "wrong",
            ip=proxy,
            HTTP_X_FORWARDED_FOR=f"9.9.9.{i}, 198.51.100.7",
        )
    assert set(AccessAttempt.objects.values_list("ip_address", flat=True)) == {"198.51.100.7"}
    assert (
        sign_in(client, person.email, PASSWORD, ip=proxy, HTTP_X_FORWARDED_FOR="198.51.100.7")
    ).status_code == 429
    # The owner comes through the same proxy from another address: not locked.
    response = sign_in(
        client, person.email, PASSWORD, ip=proxy, HTTP_X_FORWARDED_FOR="203.0.113.20"
    )
    assert response.status_code == 302


def test_nul_bytes_in_headers_or_fields_are_refused_cleanly(client, person):
    for headers, data in [
        ({"HTTP_USER_AGENT": "a\x00b", "HTTP_ACCEPT": "\x00"}, {}),
        ({"HTTP_X_FORWARDED_FOR": "\x00"}, {}),
        ({}, {"password": "x\x00"}),
        ({}, {"email": "pat@acme.test\x00"}),
    ]:
        body = {"email": person.email, "password": "wrong", **data}
        response = client.post(reverse("members:signin"), body, **headers)
        # NUL in a form field is refused before any view reads it (config/middleware.py);
        # NUL in a header reaches axes, which must store it cleanly.
        assert response.status_code == (400 if data else 200), (headers, data)
    admin = client.post(reverse("admin:login"), {"username": "a\x00", "password": "x"})
    assert admin.status_code == 400
    assert AccessAttempt.objects.filter(user_agent="ab").exists()


@pytest.mark.parametrize(
    "hops,forwarded,expected",
    [
        (0, "203.0.113.20", "10.0.0.2"),  # no trusted proxy: the header is the client's word
        (1, "203.0.113.20", "203.0.113.20"),
        (1, "6.6.6.6, 203.0.113.20", "203.0.113.20"),  # forged left entry ignored
        (2, "6.6.6.6, 203.0.113.20, 10.0.0.3", "203.0.113.20"),
        (2, "203.0.113.20", "10.0.0.2"),  # shorter than the proxy chain: not from our proxies
        (1, "not-an-address", "10.0.0.2"),
        (1, "", "10.0.0.2"),
        (1, "2001:db8::1", "2001:db8::1"),
    ],
)
def test_client_ip_takes_the_entry_the_outermost_trusted_proxy_appended(
    settings, hops, forwarded, expected
):
    settings.TRUSTED_PROXY_COUNT = hops
    request = RequestFactory().get("/", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR=forwarded)
    assert client_ip(request) == expected


@override_settings(AXES_FAILURE_LIMIT=3)
def test_two_factor_sign_in_still_works_after_failures_below_the_limit(client, person):
    import pyotp

    from members import two_factor

    secret = two_factor.new_secret()
    code = pyotp.TOTP(secret).now()
    two_factor.two_factor_enable(user=person, secret=secret, code=code)
    person.two_factor.last_used_step = 0
    person.two_factor.save()
    for _ in range(2):
        sign_in(client, person.email, "wrong", ip="10.0.0.1")
    response = sign_in(client, person.email, PASSWORD, ip="10.0.0.1")
    assert response["Location"] == reverse("members:two_factor_verify")
    assert not signed_in(client)
    response = client.post(
        reverse("members:two_factor_verify"), {"code": code}, REMOTE_ADDR="10.0.0.1"
    )
    assert response.status_code == 302
    assert signed_in(client)
    # Signing in (at the code step) cleared the pair's failures.
    assert not AccessAttempt.objects.filter(username=person.email).exists()


@override_settings(AXES_FAILURE_LIMIT=3)
def test_the_admin_login_is_throttled_the_same_way(client, db):
    staff = UserFactory(email="ops@acme.test", is_staff=True, is_superuser=True)
    url = reverse("admin:login")
    for _ in range(3):
        client.post(url, {"username": staff.email, "password": "wrong"}, REMOTE_ADDR="198.51.100.7")
    response = client.post(
        url, {"username": staff.email, "password": PASSWORD}, REMOTE_ADDR="198.51.100.7"
    )
    assert response.status_code == 429
    assert "Too many failed sign-ins" in response.content.decode()
    assert not signed_in(client)


@override_settings(AXES_FAILURE_LIMIT=3)
def test_resetting_the_password_lifts_the_accounts_locks(client, person):
    for _ in range(3):
        sign_in(client, person.email, "wrong", ip="10.0.0.1")
    assert sign_in(client, person.email, PASSWORD, ip="10.0.0.1").status_code == 429
    client.post(reverse("members:password_reset"), {"email": person.email}, REMOTE_ADDR="10.0.0.1")
    link = re.search(r"http://testserver(/password-reset/\S+/\S+/)", mail.outbox[0].body).group(1)
    page = client.get(link, follow=True)
    set_url = page.redirect_chain[-1][0]
    client.post(set_url, {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})
    assert sign_in(client, person.email, NEW_PASSWORD, ip="10.0.0.1").status_code == 302


# --- password reset and sign-up -----------------------------------------------------------


def banner(response) -> str:
    return re.search(
        r'<div class="banner error"[^>]*>(.*?)</div>', response.content.decode()
    ).group(1)


def reset(client, email, ip="10.0.0.1"):
    return client.post(reverse("members:password_reset"), {"email": email}, REMOTE_ADDR=ip)


def sign_up(client, email, ip="10.0.0.1"):
    return client.post(
        reverse("members:signup"),
        {"full_name": "New Person", "email": email, "password": NEW_PASSWORD},
        REMOTE_ADDR=ip,
    )


@override_settings(ACCOUNT_EMAIL_LIMITS_PER_HOUR={"password_reset": (20, 2)})
def test_password_reset_is_limited_per_email_the_same_whether_or_not_it_has_an_account(
    client, person
):
    for email in (person.email, "nobody@acme.test"):
        for _ in range(2):
            assert reset(client, email).status_code == 302
        refused = reset(client, email.upper(), ip="10.0.0.9")  # any client, any spelling
        assert refused.status_code == 429
        assert int(refused["Retry-After"]) > 0
        body = refused.content.decode()
        assert "Too many requests for this email address. Try again in" in body
    assert len(mail.outbox) == 2  # the refused request sent nothing
    # Identical refusals: nothing tells the two addresses apart.
    known, unknown = reset(client, person.email), reset(client, "nobody@acme.test")
    assert known.status_code == unknown.status_code == 429
    assert banner(known) == banner(unknown)


@override_settings(ACCOUNT_EMAIL_LIMITS_PER_HOUR={"password_reset": (3, 10)})
def test_password_reset_is_limited_per_client(client, person):
    for i in range(3):
        assert reset(client, f"someone{i}@acme.test", ip="198.51.100.7").status_code == 302
    refused = reset(client, person.email, ip="198.51.100.7")
    assert refused.status_code == 429
    assert "Too many requests from your network" in refused.content.decode()
    assert mail.outbox == []
    assert reset(client, person.email, ip="203.0.113.20").status_code == 302
    assert len(mail.outbox) == 1


@override_settings(ACCOUNT_EMAIL_LIMITS_PER_HOUR={"signup": (3, 10)})
def test_sign_up_is_limited_per_client(client, django_user_model):
    for i in range(3):
        sign_up(client, f"new{i}@acme.test", ip="198.51.100.7")
        client.post(reverse("members:signout"))
    refused = sign_up(client, "new9@acme.test", ip="198.51.100.7")
    assert refused.status_code == 429
    assert "Too many requests from your network" in refused.content.decode()
    assert 'value="new9@acme.test"' in refused.content.decode()  # what they typed is kept
    assert not django_user_model.objects.filter(email="new9@acme.test").exists()
    assert sign_up(client, "new9@acme.test", ip="203.0.113.20").status_code == 302
    assert django_user_model.objects.filter(email="new9@acme.test").exists()


@override_settings(ACCOUNT_EMAIL_LIMITS_PER_HOUR={"signup": (100, 2)})
def test_sign_up_is_limited_per_email_before_saying_whether_it_exists(client, person):
    for ip in ("10.0.0.1", "10.0.0.2"):
        response = sign_up(client, person.email, ip=ip)
        assert "exists already" in response.content.decode()
    refused = sign_up(client, person.email, ip="10.0.0.3")
    assert refused.status_code == 429
    body = refused.content.decode()
    assert "Too many requests for this email address" in body
    assert "exists already" not in body
