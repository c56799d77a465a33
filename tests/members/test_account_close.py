"""Account › Organizations (leave) and Close account."""

import pytest
from django.test import Client
from django.urls import reverse

from audit.models import AuditEvent
from config.roles import Role
from members.account_models import UserSession
from members.models import ApiToken, OrgMembership, User
from members.services import member_change_role
from members.tokens import token_create
from tests.factories import PASSWORD, UserFactory
from workspaces.models import WorkspaceMembership
from workspaces.services import workspace_create

CLOSE = reverse("account:close")


def signed_in(user) -> Client:
    client = Client()
    assert (
        client.post(
            reverse("members:signin"), {"email": user.email, "password": PASSWORD}
        ).status_code
        == 302
    )
    return client


def test_account_page_lists_orgs_with_the_leave_page(org_setup, login):
    page = login(org_setup.member).get(reverse("account:home")).content.decode()
    assert "Acme Corp" in page
    assert reverse("org_members:leave", args=[org_setup.org.slug]) in page


def test_close_removes_memberships_through_the_services_and_signs_out_everywhere(org_setup):
    member = org_setup.member
    own_ws = workspace_create(actor=member, name="Carol's sandbox")
    WorkspaceMembership.objects.create(
        user=UserFactory(), workspace=own_ws, role=Role.OWNER
    )  # someone else owns it too, so Carol is not its last owner
    laptop, phone = signed_in(member), signed_in(member)
    token, _ = token_create(actor=member, name="script", expires_at=None)
    before = AuditEvent.objects.filter(actor_user=member).count()
    response = laptop.post(CLOSE, {"password": PASSWORD})
    assert response.status_code == 302 and response["Location"] == reverse("members:signin")
    member.refresh_from_db()
    assert not member.is_active and not member.has_usable_password()
    assert member.email.endswith("@closed.invalid") and member.full_name == "Carol Member"
    assert not OrgMembership.objects.filter(user=member).exists()
    assert not WorkspaceMembership.objects.filter(user=member).exists()
    assert not UserSession.objects.filter(user=member).exists()
    for browser in (laptop, phone):
        assert browser.get(reverse("account:home")).status_code == 302
    assert ApiToken.objects.get(pk=token.pk).revoked_at is not None
    left = AuditEvent.objects.get(action="member.left", organization=org_setup.org)
    assert left.actor_label == "Carol Member"
    revoked = AuditEvent.objects.get(action="member.access_revoked", workspace=own_ws)
    assert revoked.target_label == "Carol Member"
    closed = AuditEvent.objects.get(action="account.closed")
    assert closed.details["email"] == "carol@acme.test"
    assert closed.details["organizations_left"] == ["Acme Corp"]
    assert closed.details["sessions_ended"] == 2 and closed.details["tokens_revoked"] == 1
    assert AuditEvent.objects.filter(actor_user=member).count() == before + 3
    # Old history still reads with the name; the email is free for a new account.
    assert not User.objects.filter(email="carol@acme.test").exists()
    assert (
        Client()
        .post(reverse("members:signin"), {"email": "carol@acme.test", "password": PASSWORD})
        .status_code
        == 200
    )


def test_close_is_refused_while_last_owner_naming_them(org_setup):
    owner = org_setup.owner
    solo = workspace_create(actor=owner, name="Solo space")
    client = signed_in(owner)
    page = client.get(CLOSE).content.decode()
    assert "Acme Corp (organization)" in page and "Solo space (workspace)" in page
    response = client.post(CLOSE, {"password": PASSWORD})
    assert response.status_code == 409
    body = response.content.decode()
    assert "Acme Corp (organization)" in body and "Solo space (workspace)" in body
    owner.refresh_from_db()
    assert owner.is_active and OrgMembership.objects.filter(user=owner).exists()
    assert WorkspaceMembership.objects.filter(user=owner, workspace=solo).exists()
    assert not AuditEvent.objects.filter(action__in=["account.closed", "member.left"]).exists()


def test_close_after_handing_over_ownership(org_setup):
    owner = org_setup.owner
    member_change_role(
        actor=owner,
        org=org_setup.org,
        membership=OrgMembership.objects.get(user=org_setup.admin),
        role=Role.OWNER,
    )
    for ws in (org_setup.ws_a, org_setup.ws_b):
        WorkspaceMembership.objects.update_or_create(
            user=org_setup.admin, workspace=ws, defaults={"role": Role.OWNER}
        )
    response = signed_in(owner).post(CLOSE, {"password": PASSWORD})
    assert response.status_code == 302
    owner.refresh_from_db()
    assert not owner.is_active


@pytest.mark.parametrize(("password", "status"), [("wrong", 422), ("", 422)])
def test_close_needs_the_right_password(org_setup, password, status):
    client = signed_in(org_setup.member)
    response = client.post(CLOSE, {"password": password})
    assert response.status_code == status
    org_setup.member.refresh_from_db()
    assert org_setup.member.is_active
    assert OrgMembership.objects.filter(user=org_setup.member).exists()
    assert not AuditEvent.objects.filter(action="account.closed").exists()
    assert client.get(reverse("account:home")).status_code == 200


def test_close_needs_sign_in(client, db):
    assert client.post(CLOSE, {"password": PASSWORD}).status_code == 302
