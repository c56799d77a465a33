"""Pending invitations page: "expires in N days" and the one-time "Copy link"."""

from datetime import timedelta

import pytest
from django.utils import timezone

from config.roles import Role
from members.invitations import invitation_by_token, member_invite

pytestmark = pytest.mark.django_db


def _invite(org_setup, email="ivy@acme.test"):
    (inv,) = member_invite(
        actor=org_setup.owner, org=org_setup.org, emails=[email], org_role=Role.MEMBER, grants={}
    )
    return inv


def test_expires_in_reads_in_days_then_hours(org_setup):
    inv = _invite(org_setup)
    assert inv.expires_in == "in 7 days"
    inv.expires_at = timezone.now() + timedelta(days=1, minutes=5)
    assert inv.expires_in == "in 1 day"
    inv.expires_at = timezone.now() + timedelta(hours=5, minutes=5)
    assert inv.expires_in == "in 5 hours"
    inv.expires_at = timezone.now() + timedelta(minutes=5)
    assert inv.expires_in == "in under an hour"


def test_resend_offers_the_fresh_link_once(org_setup, login):
    inv = _invite(org_setup)
    client = login(org_setup.owner)
    url = f"/o/{org_setup.org.slug}/members/invitations/"
    assert 'data-testid="copy-link"' not in client.get(url).content.decode()
    client.post(f"{url}{inv.public_id}/resend/")
    html = client.get(url).content.decode()
    assert html.count('data-testid="copy-link"') == 1
    link = html.split('data-copy="', 1)[1].split('"', 1)[0]
    token = link.rstrip("/").rsplit("/", 1)[1]
    assert invitation_by_token(token).pk == inv.pk  # the link that works
    assert 'data-testid="copy-link"' not in client.get(url).content.decode()  # once
