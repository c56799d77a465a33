"""Sign in, sign out, password change and password reset by email."""

import re

import pytest
from django.core import mail
from django.core.cache import cache
from django.urls import reverse

from tests.factories import PASSWORD, UserFactory

NEW_PASSWORD = "a-much-better-passphrase-42"


@pytest.fixture(autouse=True)
def _fresh_throttle():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def person(db):
    return UserFactory(email="pat@acme.test", full_name="Pat Person")


def sign_in(client, email, password, ip="10.0.0.1"):
    return client.post(
        reverse("members:signin"), {"email": email, "password": password}, REMOTE_ADDR=ip
    )


def test_sign_in_with_any_case_email_then_sign_out(client, person):
    response = sign_in(client, "  PAT@Acme.test", PASSWORD)
    assert response.status_code == 302
    assert client.get(reverse("workspaces:home")).status_code == 200
    assert client.post(reverse("members:signout")).status_code == 302
    assert client.get(reverse("workspaces:home")).status_code == 302


def test_wrong_password_is_refused_with_a_message(client, person):
    response = sign_in(client, person.email, "nope")
    assert response.status_code == 200
    assert "do not match" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_password_change_needs_the_current_password(client, login, person):
    client = login(person)
    url = reverse("members:password_change")
    assert client.get(url).status_code == 200
    response = client.post(
        url,
        {"old_password": "wrong", "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )
    assert response.status_code == 200
    assert "old_password" in response.context["form"].errors
    person.refresh_from_db()
    assert person.check_password(PASSWORD)


def test_password_change_keeps_the_session_and_the_new_password_works(client, login, person):
    client = login(person)
    response = client.post(
        reverse("members:password_change"),
        {"old_password": PASSWORD, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("members:password_change_done")
    assert client.get(reverse("workspaces:home")).status_code == 200
    person.refresh_from_db()
    assert person.check_password(NEW_PASSWORD)


def test_password_change_requires_sign_in(client, db):
    response = client.get(reverse("members:password_change"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("members:signin"))


def test_password_reset_by_email_link(client, person):
    response = client.post(reverse("members:password_reset"), {"email": "Pat@Acme.test"})
    assert response.status_code == 302
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["pat@acme.test"]
    link = re.search(r"http://testserver(/password-reset/\S+/\S+/)", message.body).group(1)
    page = client.get(link, follow=True)
    assert page.status_code == 200
    assert page.context["validlink"]
    set_url = page.redirect_chain[-1][0] if page.redirect_chain else link
    response = client.post(set_url, {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})
    assert response.status_code == 302
    person.refresh_from_db()
    assert person.check_password(NEW_PASSWORD)
    # The link works once.
    assert not client.get(link, follow=True).context["validlink"]


def test_password_reset_does_not_reveal_unknown_addresses(client, person):
    response = client.post(reverse("members:password_reset"), {"email": "nobody@acme.test"})
    assert response.status_code == 302
    assert response["Location"] == reverse("members:password_reset_done")
    assert mail.outbox == []


def test_sign_in_page_links_to_reset_and_menu_to_password_change(client, login, person):
    assert (
        reverse("members:password_reset") in client.get(reverse("members:signin")).content.decode()
    )
    page = login(person).get(reverse("workspaces:home")).content.decode()
    assert reverse("members:password_change") in page
