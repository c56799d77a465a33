"""Account › Email address: a link to the new address, a notice to the old, nothing changes
until the link is opened, every org's allowed-domain policy applies."""

import re
from datetime import timedelta

import pytest
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEvent
from members.account_models import EmailChange
from orgs.governance_services import policy_set
from orgs.models import GovernancePolicy
from orgs.services import org_create
from tests.factories import PASSWORD, UserFactory, add_to_workspace

CHANGE = reverse("account:email_change")


@pytest.fixture
def request_change(login, django_capture_on_commit_callbacks):
    def _request(user, email, password=PASSWORD):
        client = login(user)
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(CHANGE, {"email": email, "password": password})
        return client, response

    return _request


def _link(message) -> str:
    return re.search(r"http://testserver(/account/email/confirm/\S+/)", message.body).group(1)


def test_change_is_confirmed_by_the_link_sent_to_the_new_address(org_setup, request_change):
    client, response = request_change(org_setup.member, "  Carol.New@Acme.test ")
    assert response.status_code == 302
    org_setup.member.refresh_from_db()
    assert org_setup.member.email == "carol@acme.test"  # nothing changes yet
    to_new, to_old = sorted(mail.outbox, key=lambda m: m.to[0] != "carol.new@acme.test")
    assert to_new.to == ["carol.new@acme.test"] and to_old.to == ["carol@acme.test"]
    assert "carol.new@acme.test" in to_old.body and "/account/email/confirm/" not in to_old.body
    assert "Waiting for confirmation" in client.get(reverse("account:home")).content.decode()
    link = _link(to_new)
    page = client.get(link)
    assert page.status_code == 200 and "carol.new@acme.test" in page.content.decode()
    org_setup.member.refresh_from_db()
    assert org_setup.member.email == "carol@acme.test"  # opening (GET) does not change it
    assert client.post(link).status_code == 302
    org_setup.member.refresh_from_db()
    assert org_setup.member.email == "carol.new@acme.test"
    event = AuditEvent.objects.get(action="account.email_changed")
    assert event.organization == org_setup.org
    assert event.details == {"from_email": "carol@acme.test", "to_email": "carol.new@acme.test"}
    assert AuditEvent.objects.filter(action="account.email_change_requested").count() == 1
    # Used: the link works once.
    assert client.post(link).status_code == 404
    # The new address signs in.
    client.logout()
    signin = client.post(
        reverse("members:signin"), {"email": "carol.new@acme.test", "password": PASSWORD}
    )
    assert signin.status_code == 302


def test_an_org_domain_policy_refuses_the_new_address_naming_the_org(org_setup, request_change):
    policy_set(
        actor=org_setup.owner,
        org=org_setup.org,
        kind=GovernancePolicy.Kind.ALLOWED_EMAIL_DOMAINS,
        value={"domains": ["acme.test"]},
    )
    _, response = request_change(org_setup.member, "carol@gmail.test")
    assert response.status_code == 422
    assert "Acme Corp" in response.content.decode()
    assert "acme.test" in response.content.decode()
    assert not EmailChange.objects.exists()
    assert mail.outbox == []
    assert not AuditEvent.objects.filter(action__startswith="account.email").exists()


def test_a_linked_workspace_member_is_bound_by_the_org_policy_too(org_setup, request_change):
    direct = UserFactory(email="dana@acme.test")
    add_to_workspace(direct, org_setup.ws_a, source="direct")
    policy_set(
        actor=org_setup.owner,
        org=org_setup.org,
        kind=GovernancePolicy.Kind.ALLOWED_EMAIL_DOMAINS,
        value={"domains": ["acme.test"]},
    )
    _, response = request_change(direct, "dana@evil.test")
    assert response.status_code == 422 and "Acme Corp" in response.content.decode()


def test_policy_is_checked_again_when_the_link_is_opened(org_setup, request_change):
    client, _ = request_change(org_setup.member, "carol@new.test")
    link = _link(next(m for m in mail.outbox if m.to == ["carol@new.test"]))
    policy_set(
        actor=org_setup.owner,
        org=org_setup.org,
        kind=GovernancePolicy.Kind.ALLOWED_EMAIL_DOMAINS,
        value={"domains": ["acme.test"]},
    )
    response = client.post(link)
    assert response.status_code == 422 and "Acme Corp" in response.content.decode()
    org_setup.member.refresh_from_db()
    assert org_setup.member.email == "carol@acme.test"
    assert not AuditEvent.objects.filter(action="account.email_changed").exists()


def test_someone_elses_link_is_a_404(org_setup, request_change, login):
    request_change(org_setup.member, "carol@new.test")
    link = _link(next(m for m in mail.outbox if m.to == ["carol@new.test"]))
    other = login(org_setup.admin)
    assert other.get(link).status_code == 404
    assert other.post(link).status_code == 404
    org_setup.member.refresh_from_db()
    org_setup.admin.refresh_from_db()
    assert (org_setup.member.email, org_setup.admin.email) == ("carol@acme.test", "bob@acme.test")


def test_expired_and_replaced_links_do_nothing(org_setup, request_change):
    client, _ = request_change(org_setup.member, "carol@first.test")
    first = _link(next(m for m in mail.outbox if m.to == ["carol@first.test"]))
    request_change(org_setup.member, "carol@second.test")
    second = _link(next(m for m in mail.outbox if m.to == ["carol@second.test"]))
    assert client.post(first).status_code == 404  # replaced by the newer request
    EmailChange.objects.filter(new_email="carol@second.test").update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    response = client.post(second)
    assert response.status_code == 409 and "expired" in response.content.decode()
    org_setup.member.refresh_from_db()
    assert org_setup.member.email == "carol@acme.test"


@pytest.mark.parametrize(
    ("email", "password", "message"),
    [
        ("not-an-email", PASSWORD, "Enter a valid email address"),
        ("", PASSWORD, "This field is required"),
        ("a\x00b@x.test", PASSWORD, "NUL character"),
        ("x" * 250 + "@x.test", PASSWORD, "at most 254 characters"),
        ("carol@new.test", "wrong-password", "Wrong password"),
        ("CAROL@acme.test", PASSWORD, "This is your current address"),
    ],
)
def test_bad_input_is_refused_and_nothing_changes(
    org_setup, request_change, email, password, message
):
    _, response = request_change(org_setup.member, email, password)
    # A NUL character is refused before any view reads it (config/middleware.py): 400.
    assert response.status_code == (400 if "\x00" in email else 422)
    assert message in response.content.decode()
    assert not EmailChange.objects.exists() and mail.outbox == []


def test_an_address_with_an_account_looks_the_same_but_never_changes(org_setup, request_change):
    client, response = request_change(org_setup.member, "bob@acme.test")
    assert response.status_code == 302  # the same answer as for a free address
    notice = next(m for m in mail.outbox if m.to == ["bob@acme.test"])
    assert "/account/email/confirm/" not in notice.body
    assert "already belongs" in notice.body
    org_setup.member.refresh_from_db()
    assert org_setup.member.email == "carol@acme.test"


@pytest.mark.parametrize("token", ["short", "x" * 43, "%00" * 10])
def test_garbage_links_are_a_404(org_setup, login, token):
    response = login(org_setup.member).get(f"/account/email/confirm/{token}/")
    assert response.status_code == (400 if "%00" in token else 404)


def test_confirmation_needs_sign_in(org_setup, request_change, client):
    request_change(org_setup.member, "carol@new.test")
    link = _link(next(m for m in mail.outbox if m.to == ["carol@new.test"]))
    client.logout()
    response = client.get(link)
    assert response.status_code == 302 and "/signin/" in response["Location"]


def test_person_without_orgs_has_the_change_in_their_own_log(db, request_change):
    loner = UserFactory(email="lone@x.test")
    org_create(actor=UserFactory(), name="Unrelated")
    client, _ = request_change(loner, "lone@y.test")
    client.post(_link(next(m for m in mail.outbox if m.to == ["lone@y.test"])))
    event = AuditEvent.objects.get(action="account.email_changed")
    assert event.organization is None


def test_requests_are_limited_per_hour(org_setup, request_change):
    for n in range(5):
        assert request_change(org_setup.member, f"carol{n}@new.test")[1].status_code == 302
    sent = len(mail.outbox)
    _, response = request_change(org_setup.member, "carol9@new.test")
    assert response.status_code == 429
    assert "At most 5 email changes an hour" in response.content.decode()
    assert len(mail.outbox) == sent
    assert not EmailChange.objects.filter(new_email="carol9@new.test").exists()
