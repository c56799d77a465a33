"""End to end on PostgreSQL + Redis: a real Celery worker and a real SMTP server on loopback."""

import re

import pytest
from django.urls import reverse

from config.roles import Role
from members.invitations import member_invite
from members.models import Invitation, OrgMembership, User
from members.tasks import resend_undelivered_invitations
from orgs.services import org_create, workspace_link
from tests.factories import PASSWORD
from tests.fixtures_infra import celery_broker, closed_port, running_worker, wait_until
from workspaces.services import workspace_create

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.celery_worker,
    pytest.mark.django_db(transaction=True),
]

LINK = re.compile(r"http://testserver(/invitations/[A-Za-z0-9_\-]+/)")


def _text_of(message) -> str:
    return message.get_body(preferencelist=("plain",)).get_content()


def _html_of(message) -> str:
    return message.get_body(preferencelist=("html",)).get_content()


@pytest.fixture
def acme(owner):
    ws_a = workspace_create(actor=owner, name="Production")
    ws_b = workspace_create(actor=owner, name="Staging")
    org = org_create(actor=owner, name="Acme Corp", workspace=ws_a)
    workspace_link(actor=owner, org=org, workspace=ws_b)
    return org, ws_a, ws_b


def test_invite_email_accept_and_directory(acme, owner, client, smtp_sink, celery_worker):
    org, ws_a, ws_b = acme
    client.force_login(owner, backend="members.backends.EmailBackend")
    response = client.post(
        reverse("org_members:invite", args=[org.slug]),
        {"emails": "Dana@Example.test", "org_role": int(Role.ADMIN), f"ws_{ws_b.public_id}": 10},
    )
    assert response.status_code == 302

    [message] = smtp_sink.wait_for(1)
    assert message["To"] == "dana@example.test"
    assert "Acme Corp" in message["Subject"]
    text, html = _text_of(message), _html_of(message)
    assert "Olivia Owner" in text and "as admin" in text and "Staging (member)" in text
    assert "Staging" in html and "expires on" in html
    path = LINK.search(text).group(1)
    assert path in html
    inv = wait_until(lambda: Invitation.objects.filter(delivery_state="sent").first())
    assert inv.delivery_attempts == 1

    # a new person opens the link, signs up with the invited address fixed, and lands in the org
    client.logout()
    page = client.get(path)
    assert page.status_code == 200 and b"Create account and join" in page.content
    response = client.post(
        path,
        {"action": "signup", "full_name": "Dana Data", "password": PASSWORD, "email": "x@y.z"},
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("orgs:overview", args=[org.slug])
    dana = User.objects.get(email="dana@example.test")  # the fixed address, not the posted one
    assert OrgMembership.objects.get(user=dana, organization=org).role == Role.ADMIN
    assert not dana.workspace_memberships.exclude(workspace=ws_b).exists()  # no first workspace

    client.force_login(owner, backend="members.backends.EmailBackend")
    directory = client.get(reverse("org_members:directory", args=[org.slug]), {"q": "dana"})
    rows = directory.context["page"].object_list
    assert [(m.user.email, m.role_name, m.workspace_count) for m in rows] == [
        ("dana@example.test", "admin", 1)
    ]
    assert b"Dana Data" in directory.content

    # the link is single use
    assert client.get(path).status_code == 409


def test_broker_down_then_periodic_resend_delivers_once(acme, owner, smtp_sink, celery_app):
    org, ws_a, _ = acme
    with celery_broker(celery_app, f"redis://127.0.0.1:{closed_port()}/0"):
        [inv] = member_invite(
            actor=owner,
            org=org,
            emails=["dana@example.test"],
            org_role=Role.MEMBER,
            grants={ws_a.pk: Role.MEMBER},
        )
    inv.refresh_from_db()
    assert (inv.status, inv.delivery_state, inv.delivery_attempts) == ("pending", "queued", 0)
    assert "broker" in inv.last_error
    assert smtp_sink.messages == []

    # the broker is back: the beat's task runs on a real worker and delivers it
    with running_worker(celery_app):
        resend_undelivered_invitations.delay()
        [message] = smtp_sink.wait_for(1)
        wait_until(lambda: Invitation.objects.filter(pk=inv.pk, delivery_state="sent").exists())
    assert message["To"] == "dana@example.test"
    # the next periodic run finds nothing left to send
    assert resend_undelivered_invitations() == {}
    assert len(smtp_sink.messages) == 1
    # the delivered link (a token issued for the retry) is the one that works
    path = LINK.search(_text_of(message)).group(1)
    from members.invitations import invitation_by_token

    assert invitation_by_token(path.split("/")[2]).pk == inv.pk
