"""`manage.py seed_demo`: the Acme demo, idempotent, and Alice sees her four workspaces."""

from io import StringIO

import pytest
from django.apps import apps
from django.core.management import call_command
from django.db.models import Count, Q
from django.urls import reverse

from config.roles import Role
from members.models import OrgMembership
from orgs.models import Organization
from workspaces.models import SyncRun, Workspace, WorkspaceMembership

OWN_APPS = ("members", "workspaces", "orgs", "audit", "billing")


def seed() -> str:
    out = StringIO()
    call_command("seed_demo", stdout=out)
    return out.getvalue()


def snapshot() -> dict:
    return {
        m._meta.label: m.objects.count() for m in apps.get_models() if m._meta.app_label in OWN_APPS
    }


@pytest.fixture
def seeded(db):
    return seed()


def test_prints_the_demo_sign_in(seeded):
    assert "alice@acme.test" in seeded
    assert "signalsmith-demo" in seeded


def test_running_twice_changes_nothing(seeded):
    before = snapshot()
    output = seed()
    assert snapshot() == before
    assert "already loaded" in output


def roles():
    return {
        (m.workspace.name, m.user.email.split("@")[0]): (Role(m.role).label, m.source)
        for m in WorkspaceMembership.objects.select_related("workspace", "user")
    }


def test_workspace_roles_follow_the_example_table(seeded):
    r = roles()
    assert r[("Production", "alice")] == ("owner", "direct")
    assert r[("Production", "bob")] == ("admin", "org")
    assert ("Production", "carol") not in r
    assert r[("Production", "dave")] == ("member", "org")
    assert r[("Staging", "alice")] == ("owner", "direct")
    assert r[("Staging", "bob")] == ("member", "org")
    assert r[("Staging", "carol")] == ("admin", "org")
    assert r[("Staging", "dave")] == ("member", "org")
    for ws in ("EMEA", "US"):
        assert r[(ws, "alice")] == ("owner", "direct")
        for person in ("bob", "carol", "dave"):
            assert r[(ws, person)] == ("member", "org")


def test_acme_corp_links_all_four_with_org_roles(seeded):
    org = Organization.objects.get(slug="acme-corp")
    assert org.name == "Acme Corp"
    assert set(Workspace.objects.filter(organization=org).values_list("name", flat=True)) == {
        "Production",
        "Staging",
        "EMEA",
        "US",
    }
    org_roles = {
        m.user.email: Role(m.role).label
        for m in OrgMembership.objects.filter(organization=org).select_related("user")
    }
    assert org_roles == {
        "alice@acme.test": "owner",
        "bob@acme.test": "admin",
        "carol@acme.test": "member",
        "dave@acme.test": "member",
    }


def test_resources_and_ninety_days_of_realistic_runs(seeded):
    for ws in Workspace.objects.all():
        for model in ("Warehouse", "DataModel", "Destination", "Sync"):
            assert apps.get_model("workspaces", model).objects.filter(workspace=ws).exists()
    stats = SyncRun.objects.aggregate(n=Count("pk"), ok=Count("pk", filter=Q(status="succeeded")))
    assert stats["n"] > 1000
    assert 0.93 <= stats["ok"] / stats["n"] <= 0.98
    assert not SyncRun.objects.filter(status="succeeded", rows_processed=0).exists()
    assert not SyncRun.objects.filter(status="failed", error="").exists()
    first = SyncRun.objects.order_by("started_at").first()
    last = SyncRun.objects.order_by("-started_at").first()
    assert 88 <= (last.started_at - first.started_at).days <= 90


def test_historical_runs_are_not_audited_one_by_one(seeded):
    from audit.models import AuditEvent

    assert not AuditEvent.objects.filter(action__startswith="sync.run_").exists()
    assert AuditEvent.objects.filter(action="resource.created").count() > 10


def test_alice_signs_in_and_sees_her_four_workspaces(seeded, client):
    response = client.post(
        reverse("members:signin"),
        {"email": "alice@acme.test", "password": "signalsmith-demo"},
        follow=True,
    )
    assert response.status_code == 200
    page = client.get(reverse("workspaces:home"))
    names = [m.workspace.name for m in page.context["memberships"]]
    assert sorted(names) == ["EMEA", "Production", "Staging", "US"]
    html = page.content.decode()
    for name in names:
        assert name in html


def test_demo_last_active_agrees_with_the_active_member_days(db):
    """Everyone the usage page counts as active has a Last active in the directory."""
    from billing.models import DailyActiveMember
    from members.models import User

    call_command("seed_demo", stdout=StringIO())
    active = set(DailyActiveMember.objects.values_list("user_id", flat=True))
    assert active
    for user in User.objects.filter(pk__in=active):
        latest = DailyActiveMember.objects.filter(user=user).order_by("-day").first().day
        assert user.last_active_at is not None, user.email
        assert user.last_active_at.date() >= latest
