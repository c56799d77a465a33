"""Support staff in each tier, an org that gave support access, and helpers for admin requests."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEvent
from members.models import Invitation
from orgs.governance_services import policy_set
from support.roles import TIER_1, TIER_2
from tests.factories import UserFactory

TICKET = {"ticket": "T-1234", "reason": "Customer asked on the phone, identity checked."}


def staff_in(group_name: str | None, email: str, name: str):
    user = UserFactory(email=email, full_name=name, is_staff=True)
    if group_name:
        user.groups.add(Group.objects.get(name=group_name))
    return user


@pytest.fixture
def tier1(db):
    return staff_in(TIER_1, "tina@signalsmith.test", "Tina Tier1")


@pytest.fixture
def tier2(db):
    return staff_in(TIER_2, "theo@signalsmith.test", "Theo Tier2")


@pytest.fixture
def plain_staff(db):
    return staff_in(None, "stan@signalsmith.test", "Stan Staff")


@pytest.fixture
def as_staff(client):
    def _as(user):
        client.force_login(user, backend="members.backends.EmailBackend")
        return client

    return _as


@pytest.fixture
def support_access(org_setup):
    """The owner lets support view Acme (always)."""
    policy_set(
        actor=org_setup.owner, org=org_setup.org, kind="support_access", value={"mode": "always"}
    )
    return org_setup


def tool_url(obj, action: str) -> str:
    meta = obj._meta
    return reverse(f"admin:{meta.app_label}_{meta.model_name}_support", args=[obj.pk, action])


def pending_invitation(ns, email="newcomer@acme.test"):
    return Invitation.objects.create(
        organization=ns.org,
        email=email,
        invited_by=ns.owner,
        token_hash=("x" * 63 + email[0]),
        expires_at=timezone.now() + timedelta(days=7),
    )


def support_events(action: str):
    return AuditEvent.objects.filter(action=action)
