"""Personal API tokens: the services, the Account › API tokens page, the command, and how the
API treats missing, unknown, revoked and expired tokens and too many requests."""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEvent
from config.errors import NotFound, ValidationFailed
from members.models import ApiToken
from members.tokens import hash_token, token_authenticate, token_create, token_revoke
from tests.api.conftest import error_of
from tests.factories import UserFactory

# --- services --------------------------------------------------------------------------------


def test_create_stores_only_a_hash_and_a_visible_prefix(owner):
    token, raw = token_create(actor=owner, name="nightly sync")
    assert raw.startswith("ss_") and len(raw) >= 40
    token.refresh_from_db()
    assert token.token_hash == hash_token(raw) and raw not in token.token_hash
    assert raw.startswith(token.prefix) and len(token.prefix) < len(raw)
    event = AuditEvent.objects.get(action="token.created")
    assert event.actor_user == owner and event.target_id == token.public_id
    assert raw not in str(event.details)


@pytest.mark.parametrize(
    ("name", "expires_at", "field"),
    [("  ", None, "name"), ("x" * 101, None, "name"), ("ok", "past", "expires_at")],
)
def test_create_refuses_bad_fields_and_changes_nothing(owner, name, expires_at, field):
    if expires_at == "past":
        expires_at = timezone.now() - timedelta(minutes=1)
    with pytest.raises(ValidationFailed) as exc:
        token_create(actor=owner, name=name, expires_at=expires_at)
    assert field in exc.value.fields
    assert not ApiToken.objects.exists()
    assert not AuditEvent.objects.filter(action="token.created").exists()


def test_revoke_is_audited_once_and_only_by_the_owner(owner):
    token, raw = token_create(actor=owner, name="ci")
    with pytest.raises(NotFound):
        token_revoke(actor=UserFactory(), token=token)
    token_revoke(actor=owner, token=token)
    token_revoke(actor=owner, token=token)  # a second revoke changes nothing
    assert AuditEvent.objects.filter(action="token.revoked", target_id=token.public_id).count() == 1
    assert token_authenticate(raw) is None


def test_authenticate_accepts_only_live_tokens(owner):
    live, live_raw = token_create(actor=owner, name="live")
    expiring, expiring_raw = token_create(
        actor=owner, name="soon", expires_at=timezone.now() + timedelta(days=1)
    )
    assert token_authenticate(live_raw) == live
    assert token_authenticate(expiring_raw) == expiring
    ApiToken.objects.filter(pk=expiring.pk).update(expires_at=timezone.now())
    assert token_authenticate(expiring_raw) is None
    assert token_authenticate(live_raw + "x") is None
    assert token_authenticate("not-a-token") is None
    assert token_authenticate("") is None
    owner.is_active = False
    owner.save()
    assert token_authenticate(live_raw) is None


def test_last_used_is_written_at_most_once_a_minute(owner):
    token, raw = token_create(actor=owner, name="t")
    token_authenticate(raw)
    token.refresh_from_db()
    first = token.last_used_at
    assert first is not None
    token_authenticate(raw)
    token.refresh_from_db()
    assert token.last_used_at == first
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=first - timedelta(minutes=2))
    token_authenticate(raw)
    token.refresh_from_db()
    assert token.last_used_at > first - timedelta(minutes=2)


# --- page --------------------------------------------------------------------------------------


def test_page_creates_a_token_and_shows_it_once(owner, login):
    client = login(owner)
    response = client.post(reverse("members:tokens"), {"name": "deploy bot", "expires_in": "30"})
    assert response.status_code == 200
    raw = response.context["raw_token"]
    assert raw.startswith("ss_") and raw in response.content.decode()
    token = ApiToken.objects.get(user=owner)
    assert token.name == "deploy bot"
    assert timedelta(days=29) < token.expires_at - timezone.now() <= timedelta(days=30)
    again = client.get(reverse("members:tokens"))
    assert raw not in again.content.decode()
    assert token.prefix in again.content.decode()


def test_page_refuses_a_nameless_token(owner, login):
    response = login(owner).post(reverse("members:tokens"), {"name": "", "expires_in": ""})
    assert response.status_code == 422
    assert not ApiToken.objects.exists()


def test_page_lists_only_my_tokens_and_revokes(owner, login):
    mine, _ = token_create(actor=owner, name="mine")
    theirs, _ = token_create(actor=UserFactory(), name="theirs")
    client = login(owner)
    page = client.get(reverse("members:tokens")).content.decode()
    assert "mine" in page and "theirs" not in page
    response = client.post(reverse("members:token_revoke", args=[theirs.public_id]))
    assert response.status_code == 404
    theirs.refresh_from_db()
    assert theirs.revoked_at is None
    response = client.post(reverse("members:token_revoke", args=[mine.public_id]))
    assert response.status_code == 302
    mine.refresh_from_db()
    assert mine.revoked_at is not None


def test_page_revoke_with_htmx_returns_the_list_partial(owner, login):
    token, _ = token_create(actor=owner, name="mine")
    response = login(owner).post(
        reverse("members:token_revoke", args=[token.public_id]), headers={"HX-Request": "true"}
    )
    assert response.status_code == 200
    body = response.content.decode()
    assert 'id="tokens"' in body and "<html" not in body and "Revoked" in body


def test_page_needs_sign_in(client):
    response = client.get(reverse("members:tokens"))
    assert response.status_code == 302 and reverse("members:signin") in response["Location"]


def test_account_menu_links_to_tokens(owner, login):
    page = login(owner).get(reverse("workspaces:home")).content.decode()
    assert reverse("members:tokens") in page


# --- command -----------------------------------------------------------------------------------


def test_command_prints_a_working_token(owner):
    out = StringIO()
    call_command("create_api_token", owner.email.upper(), "--name", "support", stdout=out)
    raw = out.getvalue().strip()
    token = token_authenticate(raw)
    assert token is not None and token.user == owner and token.name == "support"


def test_command_refuses_unknown_email(db):
    with pytest.raises(CommandError):
        call_command("create_api_token", "nobody@example.test", stdout=StringIO())


# --- the API's view of tokens ------------------------------------------------------------------


def _org_url(org_setup):
    return f"/organizations/{org_setup.org.public_id}"


@pytest.mark.parametrize(
    "header", [None, "Bearer", "Bearer ss_unknown", "Basic dXNlcjpwYXNz", "ss_no_scheme"]
)
def test_missing_or_invalid_token_is_401_json(org_setup, client, header):
    headers = {"Authorization": header} if header else {}
    response = client.get(f"/api/v1{_org_url(org_setup)}", headers=headers)
    assert response.status_code == 401
    assert error_of(response)["code"] == "unauthorized"


def test_revoked_and_expired_tokens_are_401(org_setup, api):
    token, raw = token_create(actor=org_setup.owner, name="t")
    client = api(org_setup.owner, raw)
    assert client.get(_org_url(org_setup)).status_code == 200
    token_revoke(actor=org_setup.owner, token=token)
    assert error_of(client.get(_org_url(org_setup)))["code"] == "unauthorized"

    token, raw = token_create(
        actor=org_setup.owner, name="t2", expires_at=timezone.now() + timedelta(hours=1)
    )
    client = api(org_setup.owner, raw)
    assert client.get(_org_url(org_setup)).status_code == 200
    ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    response = client.get(_org_url(org_setup))
    assert response.status_code == 401


def test_rate_limit_is_per_token_with_retry_after(org_setup, api, settings):
    settings.API_RATE_LIMIT_PER_MINUTE = 3
    client = api(org_setup.owner)
    for _ in range(3):
        assert client.get(_org_url(org_setup)).status_code == 200
    response = client.get(_org_url(org_setup))
    assert response.status_code == 429
    assert 1 <= int(response["Retry-After"]) <= 60
    assert error_of(response)["code"] == "rate_limited"
    # Another token has its own budget.
    assert api(org_setup.owner).get(_org_url(org_setup)).status_code == 200


def test_invitations_have_a_stricter_limit(org_setup, api, settings):
    settings.API_INVITE_RATE_LIMIT_PER_MINUTE = 1
    client = api(org_setup.owner)
    url = f"{_org_url(org_setup)}/members/invite"
    assert client.post(url, {"email": "one@acme.test"}).status_code == 201
    response = client.post(url, {"email": "two@acme.test"})
    assert response.status_code == 429 and response["Retry-After"]
    assert client.get(_org_url(org_setup)).status_code == 200  # other calls are unaffected


def test_api_changes_are_audited_with_the_token_as_actor(org_setup, api):
    token, raw = token_create(actor=org_setup.owner, name="script")
    response = api(org_setup.owner, raw).put(_org_url(org_setup), {"name": "Acme Inc"})
    assert response.status_code == 200
    event = AuditEvent.objects.get(action="org.updated")
    assert event.actor_type == AuditEvent.ActorType.TOKEN
    assert event.actor_token_id == token.pk and event.actor_user == org_setup.owner
    # The token context does not leak into later, non-API changes.
    token2, _ = token_create(actor=org_setup.owner, name="later")
    later = AuditEvent.objects.get(action="token.created", target_id=token2.public_id)
    assert later.actor_type == AuditEvent.ActorType.USER and later.actor_token_id is None


def test_api_call_counts_as_activity(org_setup, api):
    assert org_setup.admin.last_active_at is None
    assert api(org_setup.admin).get(_org_url(org_setup)).status_code == 200
    org_setup.admin.refresh_from_db()
    assert org_setup.admin.last_active_at is not None
