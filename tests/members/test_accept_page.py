"""The invitation link page: every dead-link reason, and sign in / sign up / accept."""

from datetime import timedelta

from django.contrib.messages import get_messages
from django.urls import reverse
from django.utils import timezone

from config.roles import Role
from members.invitations import invitation_revoke
from members.models import Invitation, OrgMembership, User
from orgs.services import workspace_unlink
from tests.factories import PASSWORD, UserFactory
from workspaces.models import WorkspaceMembership


def link(token):
    return reverse("members:invitation", args=[token])


def test_invalid_link(client, db):
    response = client.get(link("garbage"))
    assert response.status_code == 404
    assert b"This invitation link is not valid" in response.content
    assert b"most recent email" in response.content


def test_expired_link_says_ask_for_resend(org_setup, client, invite):
    s = org_setup
    [inv] = invite(s.admin, s.org, "dana@example.test")
    Invitation.objects.filter(pk=inv.pk).update(expires_at=timezone.now() - timedelta(hours=1))
    response = client.get(link(inv.token))
    assert response.status_code == 409
    assert b"This invitation has expired" in response.content and b"resend" in response.content


def test_revoked_link(org_setup, client, invite):
    s = org_setup
    [inv] = invite(s.admin, s.org, "dana@example.test")
    invitation_revoke(actor=s.admin, invitation=inv)
    response = client.get(link(inv.token))
    assert response.status_code == 409
    assert b"This invitation was withdrawn" in response.content


def test_used_link(org_setup, login, invite):
    s = org_setup
    [inv] = invite(s.admin, s.org, "dana@example.test")
    dana = UserFactory(email="dana@example.test")
    c = login(dana)
    assert c.post(link(inv.token), {"action": "accept"}).status_code == 302
    response = c.post(link(inv.token), {"action": "accept"})
    assert response.status_code == 409
    assert b"already used" in response.content
    assert OrgMembership.objects.filter(user=dana).count() == 1


def test_signed_out_existing_account_is_sent_to_sign_in_and_back(org_setup, client, invite):
    s = org_setup
    [inv] = invite(s.admin, s.org, "dana@example.test")
    UserFactory(email="dana@example.test")
    page = client.get(link(inv.token))
    assert page.context["state"] == "signin"
    signin_url = page.context["signin_url"]
    assert signin_url == reverse("members:signin") + "?next=" + link(inv.token).replace("/", "%2F")
    response = client.post(
        signin_url, {"email": "dana@example.test", "password": PASSWORD, "next": link(inv.token)}
    )
    assert response["Location"] == link(inv.token)
    page = client.get(link(inv.token))
    assert page.context["state"] == "accept" and b"Accept invitation" in page.content


def test_new_address_signs_up_with_fixed_email_and_joins(org_setup, client, invite):
    s = org_setup
    [inv] = invite(s.admin, s.org, "dana@example.test", grants={s.ws_a.pk: Role.MEMBER})
    page = client.get(link(inv.token))
    assert page.context["state"] == "signup"
    assert page.context["signup_form"].fields["email"].disabled
    assert "workspace_name" not in page.context["signup_form"].fields
    response = client.post(
        link(inv.token),
        {"action": "signup", "full_name": "Dana", "password": PASSWORD, "email": "evil@x.test"},
    )
    assert response.status_code == 302
    dana = User.objects.get(email="dana@example.test")
    assert not User.objects.filter(email="evil@x.test").exists()
    assert list(
        WorkspaceMembership.objects.filter(user=dana).values_list("workspace", flat=True)
    ) == [s.ws_a.pk]
    assert int(client.session["_auth_user_id"]) == dana.pk


def test_signup_errors_change_nothing(org_setup, client, invite):
    s = org_setup
    [inv] = invite(s.admin, s.org, "dana@example.test")
    response = client.post(link(inv.token), {"action": "signup", "full_name": "", "password": "1"})
    assert response.status_code == 422
    assert not User.objects.filter(email="dana@example.test").exists()
    assert Invitation.objects.get(pk=inv.pk).status == "pending"


def test_signed_in_as_someone_else_is_refused_with_sign_out(org_setup, login, invite):
    s = org_setup
    [inv] = invite(s.admin, s.org, "dana@example.test")
    c = login(s.stranger)
    page = c.get(link(inv.token))
    assert page.status_code == 403
    assert page.context["state"] == "wrong_email"
    assert b"but you are signed in as sam@elsewhere.test" in page.content
    assert c.post(link(inv.token), {"action": "accept"}).status_code == 403
    assert not OrgMembership.objects.filter(user=s.stranger, organization=s.org).exists()
    response = c.post(link(inv.token), {"action": "signout"})
    assert response["Location"] == link(inv.token)
    assert "_auth_user_id" not in c.session


def test_accept_lands_in_org_and_lists_skipped_workspaces(org_setup, login, invite):
    s = org_setup
    [inv] = invite(
        s.owner, s.org, "dana@example.test", grants={s.ws_a.pk: Role.ADMIN, s.ws_b.pk: Role.MEMBER}
    )
    workspace_unlink(actor=s.owner, org=s.org, workspace=s.ws_b)
    dana = UserFactory(email="dana@example.test")
    c = login(dana)
    page = c.get(link(inv.token))
    assert b"no longer linked, will be skipped" in page.content
    response = c.post(link(inv.token), {"action": "accept"})
    assert response["Location"] == reverse("orgs:overview", args=[s.org.slug])
    texts = [str(m) for m in get_messages(response.wsgi_request)]
    assert any("Production (admin)" in t for t in texts)
    assert any("unlinked" in t and "Staging" in t for t in texts)
