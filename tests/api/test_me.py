"""/api/v1/me and /api/v1/me/sessions."""

import pytest
from django.test import Client
from django.urls import reverse

from audit.models import AuditEvent
from members.account_models import UserSession
from tests.api.conftest import error_of
from tests.factories import PASSWORD


def browser(user, agent="Mozilla/5.0 (X11; Linux x86_64) Firefox/125.0") -> Client:
    client = Client(HTTP_USER_AGENT=agent, REMOTE_ADDR="10.1.2.3")
    client.post(reverse("members:signin"), {"email": user.email, "password": PASSWORD})
    return client


def test_get_me(org_setup, api):
    response = api(org_setup.admin).get("/me")
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == org_setup.admin.public_id
    assert body["email"] == "bob@acme.test" and body["name"] == "Bob Admin"
    assert body["two_factor_enabled"] is False and body["pending_email"] is None
    assert body["organizations"] == [
        {
            "id": org_setup.org.public_id,
            "name": "Acme Corp",
            "slug": org_setup.org.slug,
            "role": "admin",
        }
    ]


def test_patch_me_renames_with_an_event_naming_the_token(org_setup, api):
    response = api(org_setup.member).patch("/me", {"name": "  Carol  API "})
    assert response.status_code == 200 and response.json()["name"] == "Carol API"
    event = AuditEvent.objects.get(action="account.profile_updated")
    assert event.actor_type == "token" and event.actor_label == "Carol API"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": ""}, "name"),
        ({"name": "   "}, "name"),
        ({"name": "x" * 151}, "name"),
        ({"name": "a\x00b"}, "name"),
        ({"name": "bell\x07"}, "name"),
        ({"name": 42}, "name"),
        ({"email": "carol@new.test"}, "email"),
    ],
)
def test_patch_me_bad_input_is_422_and_nothing_changes(org_setup, api, body, field):
    response = api(org_setup.member).patch("/me", body)
    assert response.status_code == 422
    assert field in error_of(response)["fields"]
    org_setup.member.refresh_from_db()
    assert (org_setup.member.full_name, org_setup.member.email) == (
        "Carol Member",
        "carol@acme.test",
    )
    assert not AuditEvent.objects.filter(action__startswith="account.").exists()


@pytest.mark.parametrize("raw", ["[1]", "nope", '"name"'])
def test_patch_me_malformed_body_is_400(org_setup, api, raw):
    response = api(org_setup.member).patch("/me", raw=raw)
    assert response.status_code == 400 and error_of(response)["code"] == "bad_request"


def test_me_needs_a_token(db, api):
    assert api(None).get("/me").status_code == 401
    assert api(None).get("/me/sessions").status_code == 401
    assert api(None).delete("/me/sessions/ses_x").status_code == 401


def test_list_and_end_own_sessions(org_setup, api):
    laptop = browser(org_setup.member)
    row = UserSession.objects.get(session_key=laptop.session.session_key)
    browser(org_setup.admin)  # someone else's session is not listed
    client = api(org_setup.member)
    items = client.get("/me/sessions").json()["items"]
    assert [i["id"] for i in items] == [row.public_id]
    assert items[0]["browser"] == "Firefox on Linux" and items[0]["ip"] == "10.1.2.3"
    response = client.delete(f"/me/sessions/{row.public_id}")
    assert response.status_code == 204
    assert laptop.get(reverse("account:home")).status_code == 302
    assert client.get("/me/sessions").json()["items"] == []
    event = AuditEvent.objects.get(action="account.session_signed_out")
    assert event.actor_type == "token"


def test_another_persons_session_is_a_404(org_setup, api):
    victim = browser(org_setup.member)
    row = UserSession.objects.get(session_key=victim.session.session_key)
    response = api(org_setup.admin).delete(f"/me/sessions/{row.public_id}")
    assert response.status_code == 404 and error_of(response)["code"] == "not_found"
    assert victim.get(reverse("account:home")).status_code == 200
    assert not AuditEvent.objects.filter(action="account.session_signed_out").exists()


@pytest.mark.parametrize("bad", ["ses_nope", "x", "%00", "ses_" + "a" * 80])
def test_unknown_session_ids_are_a_404(org_setup, api, bad):
    response = api(org_setup.member).delete(f"/me/sessions/{bad}")
    assert response.status_code == 404
