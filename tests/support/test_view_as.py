"""Customer-controlled support access (a governance policy) and the read-only "view as admin":
consented, time-boxed, audited page by page, and no write gets through by any route."""

import json
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from audit import context as audit_context
from audit.events import render_sentence
from audit.models import AuditEvent
from config.errors import PermissionDenied
from config.roles import Role
from members.models import Invitation, OrgMembership
from orgs.governance_services import policy_set
from orgs.models import GovernancePolicy
from orgs.support_access import SESSION_KEY
from orgs.support_access import support_access as access_of
from tests.support.conftest import TICKET, support_events, tool_url

Kind = GovernancePolicy.Kind


def _governance_post(client, org, data):
    return client.post(
        reverse("orgs:governance", args=[org.slug]),
        {"kind": "support_access", "action": "set", **data},
    )


def test_owner_turns_support_access_on_for_some_hours_and_off(org_setup, login):
    org = org_setup.org
    client = login(org_setup.owner)
    page = client.get(reverse("orgs:governance", args=[org.slug])).content.decode()
    assert "Support access" in page and "Off: support cannot view" in page
    assert _governance_post(client, org, {"support_access-mode": "hours"}).status_code == 422
    bad = _governance_post(client, org, {"support_access-mode": "hours", "support_access-hours": 0})
    assert bad.status_code == 422
    assert not GovernancePolicy.objects.filter(organization=org, kind=Kind.SUPPORT_ACCESS).exists()
    ok = _governance_post(client, org, {"support_access-mode": "hours", "support_access-hours": 8})
    assert ok.status_code == 302
    access = access_of(org)
    assert access.granted and timedelta(hours=7) < access.until - timezone.now() <= timedelta(
        hours=8
    )
    page = client.get(reverse("orgs:governance", args=[org.slug])).content.decode()
    assert "Support may view this organization&#x27;s data until" in page
    event = AuditEvent.objects.get(
        action="governance.policy_created", target_label="Support access"
    )
    assert event.details["after"]["hours"] == 8
    _governance_post(client, org, {"support_access-mode": "off"})
    assert not access_of(org).granted
    assert AuditEvent.objects.filter(action="governance.policy_updated").count() == 1


def test_members_cannot_grant_support_access(org_setup, login):
    response = _governance_post(
        login(org_setup.member), org_setup.org, {"support_access-mode": "always"}
    )
    assert response.status_code == 403
    assert not access_of(org_setup.org).granted


def test_access_for_hours_lapses_by_itself(org_setup):
    policy_set(
        actor=org_setup.owner,
        org=org_setup.org,
        kind="support_access",
        value={"mode": "hours", "hours": 1},
    )
    assert access_of(org_setup.org).granted
    later = timezone.now() + timedelta(hours=1, minutes=1)
    assert not access_of(org_setup.org, now=later).granted


# --- view as admin ----------------------------------------------------------------------------


def _start(client, org, minutes=30):
    return client.post(tool_url(org, "view-as"), {**TICKET, "minutes": minutes})


def test_view_as_is_refused_without_support_access(org_setup, tier1, as_staff):
    client = as_staff(tier1)
    response = _start(client, org_setup.org)
    assert response.status_code == 403
    assert "has not given support access" in response.content.decode()
    assert SESSION_KEY not in client.session
    assert (
        client.get(reverse("org_members:directory", args=[org_setup.org.slug])).status_code == 404
    )


def test_staff_without_a_support_group_cannot_view_as(support_access, plain_staff, as_staff):
    client = as_staff(plain_staff)
    assert _start(client, support_access.org).status_code == 403
    assert (
        client.get(reverse("org_members:directory", args=[support_access.org.slug])).status_code
        == 404
    )


def test_view_as_shows_the_admin_pages_with_a_banner_and_audits_each_view(
    support_access, tier1, as_staff
):
    org = support_access.org
    client = as_staff(tier1)
    response = _start(client, org)
    assert response.status_code == 302
    assert response["Location"] == reverse("org_members:directory", args=[org.slug])
    started = support_events("support.view_as_started").get()
    assert started.details["minutes"] == 30 and started.actor_type == "support"
    for name in ("org_members:directory", "orgs:usage", "audit:log", "billing:overview"):
        page = client.get(reverse(name, args=[org.slug]))
        assert page.status_code == 200, name
        html = page.content.decode()
        assert 'data-testid="support-view-banner"' in html and "T-1234" in html
    directory = client.get(reverse("org_members:directory", args=[org.slug])).content.decode()
    assert "Carol Member" in directory
    viewed = support_events("support.org_viewed")
    assert viewed.count() == 5
    assert {e.details["page"] for e in viewed} == {
        "the member directory",
        "the usage dashboard",
        "the audit log",
        "the billing page",
    }
    assert render_sentence(viewed.first()).startswith(
        "Support engineer Tina Tier1 (ticket T-1234) viewed the"
    )
    # Ending the view is recorded too, and the pages close.
    assert client.post(reverse("support:view_as_end")).status_code == 302
    assert support_events("support.view_as_ended").count() == 1
    assert client.get(reverse("org_members:directory", args=[org.slug])).status_code == 404


def _writes(org, member_id):
    """Page POSTs that would change the org if the viewer could write."""
    return [
        (
            reverse("org_members:invite", args=[org.slug]),
            {"emails": "new@acme.test", "org_role": str(int(Role.MEMBER))},
        ),
        (reverse("org_members:role", args=[org.slug, member_id]), {"role": str(int(Role.ADMIN))}),
        (reverse("org_members:remove", args=[org.slug, member_id]), {"confirm": "yes"}),
        (
            reverse("orgs:governance", args=[org.slug]),
            {"kind": "support_access", "support_access-mode": "off", "action": "set"},
        ),
        (reverse("orgs:settings", args=[org.slug]), {"name": "Hacked", "slug": org.slug}),
        (reverse("billing:plan_change", args=[org.slug, "team"]), {}),
    ]


@pytest.mark.parametrize("htmx", [False, True], ids=["page", "htmx"])
def test_view_as_cannot_write_by_page_post_or_htmx(support_access, tier1, as_staff, htmx):
    org = support_access.org
    client = as_staff(tier1)
    _start(client, org)
    member_id = OrgMembership.objects.get(user=support_access.member).public_id
    before = AuditEvent.objects.exclude(action="support.org_viewed").count()
    headers = {"HTTP_HX_REQUEST": "true"} if htmx else {}
    for url, data in _writes(org, member_id):
        response = client.post(url, data, **headers)
        assert response.status_code in (403, 404), (url, response.status_code)
    assert AuditEvent.objects.exclude(action="support.org_viewed").count() == before
    assert not Invitation.objects.filter(email="new@acme.test").exists()
    assert OrgMembership.objects.get(public_id=member_id).role == Role.MEMBER
    org.refresh_from_db()
    assert org.name == "Acme Corp" and access_of(org).granted


def test_view_as_cannot_write_through_the_api_with_its_session(support_access, tier1, as_staff):
    org = support_access.org
    client = as_staff(tier1)
    _start(client, org)
    response = client.post(
        f"/api/v1/organizations/{org.public_id}/members/invite",
        json.dumps({"email": "api@acme.test", "org_role": "member", "workspace_access": []}),
        content_type="application/json",
    )
    assert response.status_code == 401
    assert response.json()["error"]["code"]
    assert not Invitation.objects.filter(email="api@acme.test").exists()


def test_the_read_only_context_refuses_even_an_owners_service_call(org_setup):
    """The refusal is in the service layer (record()), not in templates: an owner's own
    policy change made inside a support view's context is rolled back."""
    with audit_context.bind(read_only="read-only"), pytest.raises(PermissionDenied):
        policy_set(
            actor=org_setup.owner,
            org=org_setup.org,
            kind="support_access",
            value={"mode": "always"},
        )
    assert not GovernancePolicy.objects.filter(organization=org_setup.org).exists()


def test_view_as_is_time_boxed(support_access, tier1, as_staff):
    org = support_access.org
    client = as_staff(tier1)
    _start(client, org, minutes=5)
    url = reverse("org_members:directory", args=[org.slug])
    assert client.get(url).status_code == 200
    session = client.session
    session[SESSION_KEY]["until"] = (timezone.now() - timedelta(seconds=1)).isoformat()
    session.save()
    assert client.get(url).status_code == 404


def test_turning_support_access_off_ends_a_view_at_once(support_access, tier1, as_staff):
    org = support_access.org
    client = as_staff(tier1)
    _start(client, org)
    url = reverse("org_members:directory", args=[org.slug])
    assert client.get(url).status_code == 200
    policy_set(actor=support_access.owner, org=org, kind="support_access", value={"mode": "off"})
    assert client.get(url).status_code == 404


def test_view_as_never_outlasts_the_orgs_access_window(org_setup, tier1, as_staff):
    policy_set(
        actor=org_setup.owner,
        org=org_setup.org,
        kind="support_access",
        value={"mode": "hours", "hours": 1},
    )
    client = as_staff(tier1)
    _start(client, org_setup.org, minutes=120)
    started = support_events("support.view_as_started").get()
    assert started.details["until"] <= access_of(org_setup.org).until.isoformat()


def test_view_as_asks_for_a_sensible_duration(support_access, tier1, as_staff):
    client = as_staff(tier1)
    response = _start(client, support_access.org, minutes=600)
    assert response.status_code == 422
    assert not support_events("support.view_as_started").exists()
