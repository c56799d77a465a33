"""Access at a point in time, replayed from membership events, against a scripted history."""

import csv
import io

import pytest
from django.utils import timezone

from audit.access import access_at, compare_now
from config.roles import Role
from members.invitations import invitation_accept
from members.models import OrgMembership
from members.services import member_remove, member_set_workspace_access
from members.workspace_invitations import workspace_member_invite
from orgs.services import org_create, workspace_link, workspace_unlink
from tests.factories import UserFactory, add_to_org
from workspaces.models import WorkspaceMembership
from workspaces.services import (
    workspace_create,
    workspace_member_change_role,
    workspace_member_remove,
)


def roles(report):
    return {r.email: (r.role, r.source) for r in report.rows}


@pytest.fixture
def scripted(db):
    """A history built only through the services, with a timestamp between each step."""
    owner = UserFactory(email="olga@acme.test", full_name="Olga Owner")
    alice = UserFactory(email="alice@acme.test", full_name="Alice")
    bob = UserFactory(email="bob@acme.test", full_name="Bob")
    carol = UserFactory(email="carol@acme.test", full_name="Carol")
    t = {"before": timezone.now()}
    ws = workspace_create(actor=owner, name="Prod")
    org = org_create(actor=owner, name="Acme", workspace=ws)
    ws.refresh_from_db()
    mems = {u: add_to_org(u, org, Role.MEMBER) for u in (alice, bob, carol)}
    t[0] = timezone.now()
    member_set_workspace_access(
        actor=owner, org=org, membership=mems[alice], access={ws.pk: Role.MEMBER}
    )
    t[1] = timezone.now()
    # Invited from inside the workspace: the access is direct.
    invited = workspace_member_invite(actor=owner, workspace=ws, email=bob.email, role=Role.ADMIN)
    invitation_accept(user=bob, token=invited.token)
    t[2] = timezone.now()
    member_set_workspace_access(
        actor=owner, org=org, membership=mems[alice], access={ws.pk: Role.ADMIN}
    )
    t[3] = timezone.now()
    member_remove(actor=owner, org=org, membership=mems[bob])
    t[4] = timezone.now()
    member_set_workspace_access(
        actor=owner, org=org, membership=mems[carol], access={ws.pk: Role.MEMBER}
    )
    carol_ws = WorkspaceMembership.objects.get(user=carol, workspace=ws)
    workspace_member_change_role(actor=owner, membership=carol_ws, role=Role.ADMIN)
    t[5] = timezone.now()
    workspace_member_remove(actor=owner, membership=carol_ws)
    t[6] = timezone.now()

    class NS:
        pass

    ns = NS()
    ns.org, ns.ws, ns.owner, ns.t = org, ws, owner, t
    ns.alice, ns.bob, ns.carol = alice, bob, carol
    return ns


def test_past_moments_match_the_scripted_history(scripted):
    s = scripted
    o = ("owner", "direct")
    expected = {
        0: {"olga@acme.test": o},
        1: {"olga@acme.test": o, "alice@acme.test": ("member", "org")},
        2: {
            "olga@acme.test": o,
            "alice@acme.test": ("member", "org"),
            "bob@acme.test": ("admin", "direct"),
        },
        3: {
            "olga@acme.test": o,
            "alice@acme.test": ("admin", "org"),
            "bob@acme.test": ("admin", "direct"),
        },
        4: {"olga@acme.test": o, "alice@acme.test": ("admin", "org")},
        5: {
            "olga@acme.test": o,
            "alice@acme.test": ("admin", "org"),
            "carol@acme.test": ("admin", "org"),
        },
        6: {"olga@acme.test": o, "alice@acme.test": ("admin", "org")},
    }
    for step, want in expected.items():
        report = access_at(s.org, s.ws, s.t[step])
        assert report.linked
        assert roles(report) == want, step
    # Before the org existed the workspace was not linked to it: nothing is disclosed.
    early = access_at(s.org, s.ws, s.t["before"])
    assert not early.linked and early.rows == []


def test_now_equals_the_live_memberships(scripted):
    s = scripted
    reconstructed, live = compare_now(s.ws)
    assert reconstructed == live == {s.owner.pk: "owner", s.alice.pk: "admin"}
    report = access_at(s.org, s.ws, timezone.now())
    assert report.notes == []
    live_rows = {
        (m.user.email, Role(m.role).label)
        for m in WorkspaceMembership.objects.filter(workspace=s.ws).select_related("user")
    }
    assert {(r.email, r.role) for r in report.rows} == live_rows


def test_unlink_removes_org_granted_access_and_hides_later_moments(scripted):
    s = scripted
    other = workspace_create(actor=s.owner, name="Side")
    workspace_link(actor=s.owner, org=s.org, workspace=other)
    member_set_workspace_access(
        actor=s.owner,
        org=s.org,
        membership=OrgMembership.objects.get(organization=s.org, user=s.alice),
        access={other.pk: Role.MEMBER},
    )
    before_unlink = timezone.now()
    workspace_unlink(actor=s.owner, org=s.org, workspace=other)
    assert roles(access_at(s.org, other, before_unlink)) == {
        "olga@acme.test": ("owner", "direct"),
        "alice@acme.test": ("member", "org"),
    }
    assert not access_at(s.org, other, timezone.now()).linked
    reconstructed, live = compare_now(other)
    assert reconstructed == live == {s.owner.pk: "owner"}


def test_memberships_older_than_the_log_are_flagged(org_setup):
    # org_setup seeds the admin's access to Production without an event.
    report = access_at(org_setup.org, org_setup.ws_a, timezone.now())
    assert any("not explained by the recorded events" in n for n in report.notes)


def test_access_report_page_and_csv(scripted, login):
    s = scripted
    client = login(s.owner)
    at = timezone.localtime(s.t[2]).strftime("%Y-%m-%dT%H:%M:%S.%f")
    page = client.get(f"/o/{s.org.slug}/audit/access/?workspace={s.ws.public_id}&at={at}")
    assert page.status_code == 200
    html = page.content.decode()
    assert "bob@acme.test" in html and "equals the live memberships" in html
    resp = client.get(
        f"/o/{s.org.slug}/audit/access/?workspace={s.ws.public_id}&at={at}&format=csv"
    )
    assert resp["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(resp.content.decode())))
    assert {(r["email"], r["role"], r["source"]) for r in rows} == {
        ("olga@acme.test", "owner", "direct"),
        ("alice@acme.test", "member", "org"),
        ("bob@acme.test", "admin", "direct"),
    }


def test_access_report_bad_input_is_422(scripted, login):
    client = login(scripted.owner)
    resp = client.get(f"/o/{scripted.org.slug}/audit/access/?workspace=ws_nope&at=soon")
    assert resp.status_code == 422
    html = resp.content.decode()
    assert "No such workspace" in html and "Use a date" in html


def test_access_report_other_org_404_member_403(org_setup, login):
    url = f"/o/{org_setup.org.slug}/audit/access/"
    assert login(org_setup.stranger).get(url).status_code == 404
    assert login(org_setup.member).get(url).status_code == 403
    assert login(org_setup.admin).get(url).status_code == 200
