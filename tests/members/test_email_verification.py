"""Email verification: sign-up mails a link (stored hashed, expiring, used once, replaced by a
resend); unverified accounts cannot be added anywhere except through a token mailed to
their address (an invitation), which — like a password-reset link — confirms the address."""

import importlib
import re
from datetime import timedelta

import pytest
from django.apps import apps
from django.core import mail
from django.test import override_settings
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEvent
from config.roles import Role
from members.models import EmailVerification, OrgMembership, User
from members.services import member_set_workspace_access
from members.tokens import hash_token
from members.verification import EmailNotVerified, email_verification_send, require_verified
from tests.factories import PASSWORD, UserFactory, add_to_org
from workspaces.models import WorkspaceMembership
from workspaces.services import workspace_create

NEW_PASSWORD = "a-much-better-passphrase-42"

pytestmark = pytest.mark.django_db


def verified_events(user):
    return AuditEvent.objects.filter(action="account.email_verified", target_id=user.public_id)


def link_in(message) -> str:
    return re.search(r"http://testserver(/verify-email/\S+/)", message.body).group(1)


def sign_up(client, email="new@acme.test"):
    return client.post(
        reverse("members:signup"),
        {"full_name": "Nia New", "email": email, "password": NEW_PASSWORD},
        REMOTE_ADDR="10.0.0.1",
    )


def test_existing_accounts_count_as_verified_after_the_migration(db):
    user = UserFactory(email_verified_at=None)
    migration = importlib.import_module("members.migrations.0005_email_verification")
    migration.existing_accounts_count_as_verified(apps, None)
    user.refresh_from_db()
    assert user.email_verified_at == user.date_joined


def test_sign_up_mails_a_link_that_confirms_the_address_once(
    client, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = sign_up(client)
    assert response.status_code == 302
    user = User.objects.get(email="new@acme.test")
    assert user.email_verified_at is None
    [message] = mail.outbox
    assert message.to == ["new@acme.test"]
    assert "Confirm your email address" in message.subject
    path = link_in(message)
    raw = path.rstrip("/").rsplit("/", 1)[1]
    # Only the hash is stored.
    stored = EmailVerification.objects.get(user=user)
    assert stored.token_hash == hash_token(raw) and raw not in stored.token_hash
    assert stored.expires_at > timezone.now() + timedelta(hours=47)
    # Signed in and unverified: the banner offers to send the link again.
    home = client.get(reverse("workspaces:home"))
    assert 'data-testid="verify-email-banner"' in home.content.decode()

    client.post(reverse("members:signout"))
    page = client.get(path)  # signed out, as from another device
    assert page.status_code == 200
    assert "new@acme.test</strong> is confirmed" in page.content.decode()
    user.refresh_from_db()
    assert user.email_verified_at is not None
    [event] = verified_events(user)
    assert event.details["via"] == "link"
    assert event.actor_user_id == user.pk
    # The link is used up.
    again = client.get(path)
    assert again.status_code == 404
    assert verified_events(user).count() == 1


def test_a_verified_person_sees_no_banner(login, owner):
    page = login(owner).get(reverse("workspaces:home")).content.decode()
    assert "verify-email-banner" not in page


def test_an_expired_link_confirms_nothing(client, django_capture_on_commit_callbacks):
    user = UserFactory(email_verified_at=None)
    raw = email_verification_send(user=user)
    EmailVerification.objects.filter(user=user).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    response = client.get(reverse("members:verify_email", args=[raw]))
    assert response.status_code == 409
    assert "expired" in response.content.decode()
    user.refresh_from_db()
    assert user.email_verified_at is None
    assert not verified_events(user).exists()


def test_garbage_links_are_a_clear_404(client, db):
    for token in ("nope", "a" * 500):
        response = client.get(f"/verify-email/{token}/")
        assert response.status_code == 404
        assert "not valid" in response.content.decode()
    # A NUL character is refused before any view reads it (config/middleware.py).
    assert client.get("/verify-email/%00/").status_code == 400


def test_sending_again_replaces_the_link(login, django_capture_on_commit_callbacks):
    user = UserFactory(email_verified_at=None)
    with django_capture_on_commit_callbacks(execute=True):
        email_verification_send(user=user)
    client = login(user)
    url = reverse("members:email_verification")
    assert "Send a new link" in client.get(url).content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url, {"next": reverse("workspaces:home")})
    assert response.status_code == 302
    assert response["Location"] == reverse("workspaces:home")
    old, new = (link_in(m) for m in mail.outbox)
    assert old != new
    assert client.get(old).status_code == 404
    assert client.get(new).status_code == 200
    user.refresh_from_db()
    assert user.email_verified_at is not None


@override_settings(ACCOUNT_EMAIL_LIMITS_PER_HOUR={"verification": (20, 2)})
def test_sending_again_is_limited(login, django_capture_on_commit_callbacks):
    user = UserFactory(email_verified_at=None)
    client = login(user)
    url = reverse("members:email_verification")
    for _ in range(2):
        with django_capture_on_commit_callbacks(execute=True):
            assert client.post(url).status_code == 302
    with django_capture_on_commit_callbacks(execute=True):
        refused = client.post(url)
    assert refused.status_code == 429
    assert "Too many requests for this email address" in refused.content.decode()
    assert len(mail.outbox) == 2


def test_a_verified_account_is_sent_nothing(login, owner, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = login(owner).post(reverse("members:email_verification"))
    assert response.status_code == 200
    assert "is confirmed" in response.content.decode()
    assert mail.outbox == []


# --- nobody can add an unverified account ----------------------------------------------------


def test_a_workspace_admin_cannot_add_an_unverified_account_and_learns_nothing(
    owner, login, django_capture_on_commit_callbacks
):
    """Adding goes by a link mailed to the address: a squatter who signed up with someone
    else's address never gets in, and the page says the same as for an unknown address."""
    ws = workspace_create(actor=owner, name="Production")
    squatter = UserFactory(email="ceo@acme.test", email_verified_at=None)
    client = login(owner)
    add = reverse("workspaces:member_add", args=[ws.slug])
    with django_capture_on_commit_callbacks(execute=True):
        known = client.post(add, {"email": squatter.email, "role": int(Role.ADMIN)}, follow=True)
        unknown = client.post(
            add, {"email": "nobody@acme.test", "role": int(Role.ADMIN)}, follow=True
        )
    assert known.status_code == unknown.status_code == 200
    said = [str(m) for m in known.context["messages"]] + [
        str(m) for m in unknown.context["messages"]
    ]
    assert said[0].replace(squatter.email, "X") == said[1].replace("nobody@acme.test", "X")
    assert not WorkspaceMembership.objects.filter(user=squatter).exists()
    # The link went to the mailbox, not to whoever holds the account.
    assert [m.to for m in mail.outbox] == [[squatter.email], ["nobody@acme.test"]]


def test_org_access_is_not_granted_to_an_unverified_member(org_setup):
    s = org_setup
    squatter = UserFactory(email="ceo@acme.test", email_verified_at=None)
    membership = add_to_org(squatter, s.org, Role.MEMBER)
    before = AuditEvent.objects.count()
    with pytest.raises(EmailNotVerified) as exc:
        member_set_workspace_access(
            actor=s.owner, org=s.org, membership=membership, access={s.ws_a.pk: Role.MEMBER}
        )
    assert "has not confirmed their email address" in exc.value.message
    assert not WorkspaceMembership.objects.filter(user=squatter).exists()
    assert AuditEvent.objects.count() == before


def test_require_verified_is_the_shared_check(db):
    with pytest.raises(EmailNotVerified) as exc:
        require_verified(UserFactory(email_verified_at=None))
    assert exc.value.status == 403 and exc.value.code == "email_not_verified"
    require_verified(UserFactory())  # verified: no error


# --- tokens mailed to the address confirm it ----------------------------------------------


def test_accepting_an_invitation_confirms_the_address(org_setup, login, invite):
    s = org_setup
    [inv] = invite(s.admin, s.org, "dana@example.test")
    dana = UserFactory(email="dana@example.test", email_verified_at=None)
    response = login(dana).post(
        reverse("members:invitation", args=[inv.token]), {"action": "accept"}
    )
    assert response.status_code == 302
    assert OrgMembership.objects.filter(user=dana, organization=s.org).exists()
    dana.refresh_from_db()
    assert dana.email_verified_at is not None
    [event] = verified_events(dana)
    assert event.details["via"] == "invitation"


def test_signing_up_through_an_invitation_needs_no_verification_email(
    org_setup, client, invite, django_capture_on_commit_callbacks
):
    s = org_setup
    [inv] = invite(s.admin, s.org, "dana@example.test")
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("members:invitation", args=[inv.token]),
            {"action": "signup", "full_name": "Dana", "password": NEW_PASSWORD},
        )
    assert response.status_code == 302
    dana = User.objects.get(email="dana@example.test")
    assert dana.email_verified_at is not None
    assert mail.outbox == []
    assert verified_events(dana).count() == 1


def test_completing_a_password_reset_confirms_the_address(client, db):
    user = UserFactory(email="pat@acme.test", email_verified_at=None)
    client.post(reverse("members:password_reset"), {"email": user.email})
    path = re.search(r"http://testserver(/password-reset/\S+/\S+/)", mail.outbox[0].body).group(1)
    page = client.get(path, follow=True)
    client.post(
        page.redirect_chain[-1][0], {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD}
    )
    user.refresh_from_db()
    assert user.check_password(NEW_PASSWORD)
    assert user.email_verified_at is not None
    assert verified_events(user).get().details["via"] == "password reset"


def test_operators_accounts_count_as_verified(db):
    admin = User.objects.create_superuser("ops@acme.test", PASSWORD)
    assert admin.email_verified_at is not None


def test_the_api_refuses_workspace_access_for_an_unverified_member(org_setup, client):
    import json

    from members.tokens import token_create

    s = org_setup
    squatter = UserFactory(email="ceo@acme.test", email_verified_at=None)
    membership = add_to_org(squatter, s.org, Role.MEMBER)
    _token, raw = token_create(actor=s.owner, name="tests")
    response = client.put(
        f"/api/v1/organizations/{s.org.public_id}/members/{membership.public_id}",
        json.dumps({"workspace_access": [{"workspace_id": s.ws_a.public_id, "role": "member"}]}),
        content_type="application/json",
        headers={"Authorization": f"Bearer {raw}"},
    )
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "email_not_verified"
    assert not WorkspaceMembership.objects.filter(user=squatter).exists()
