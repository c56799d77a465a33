"""Organization › Members: the directory, pending invitations tab, and the invite page."""

from datetime import timedelta

import pytest
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from config.roles import Role
from members.models import Invitation, OrgMembership, User
from tests.factories import UserFactory, add_to_org, add_to_workspace


def url(org, name="directory", *args):
    return reverse(f"org_members:{name}", args=[org.slug, *args])


def emails(response):
    return [m.user.email for m in response.context["page"].object_list]


# --- access -------------------------------------------------------------------------------


def test_every_org_member_sees_the_directory_strangers_get_404(org_setup, login):
    s = org_setup
    assert login(s.member).get(url(s.org)).status_code == 200
    assert login(s.stranger).get(url(s.org)).status_code == 404
    assert login(s.stranger).get(url(s.org, "invitations")).status_code == 404


def test_invite_page_needs_admin(org_setup, login):
    s = org_setup
    response = login(s.member).get(url(s.org, "invite"))
    assert response.status_code == 403
    assert b"admin role" in response.content
    assert login(s.stranger).get(url(s.org, "invite")).status_code == 404
    assert login(s.admin).get(url(s.org, "invite")).status_code == 200


# --- directory ----------------------------------------------------------------------------


def test_directory_columns(org_setup, login):
    s = org_setup
    User.objects.filter(pk=s.member.pk).update(last_active_at=timezone.now() - timedelta(hours=2))
    response = login(s.owner).get(url(s.org))
    rows = {m.user.email: m for m in response.context["page"].object_list}
    assert rows["carol@acme.test"].workspace_count == 1
    assert rows["olivia@acme.test"].workspace_count == 2  # owner of both workspaces
    body = response.content.decode()
    for header in ("Name", "Email", "Org Role", "Workspaces", "Last Active", "Joined"):
        assert header in body
    assert "2\xa0hours ago" in body
    assert "Never" in body or "minute" in body


@pytest.mark.parametrize(
    "sort,expected",
    [
        ("name", ["bob@acme.test", "carol@acme.test", "olivia@acme.test"]),
        ("-name", ["olivia@acme.test", "carol@acme.test", "bob@acme.test"]),
        ("email", ["bob@acme.test", "carol@acme.test", "olivia@acme.test"]),
        ("-email", ["olivia@acme.test", "carol@acme.test", "bob@acme.test"]),
        ("role", ["carol@acme.test", "bob@acme.test", "olivia@acme.test"]),
        ("-role", ["olivia@acme.test", "bob@acme.test", "carol@acme.test"]),
        ("workspaces", ["bob@acme.test", "carol@acme.test", "olivia@acme.test"]),
        # A descending sort reverses the whole order, ties (Bob and Carol: one each) included.
        ("-workspaces", ["olivia@acme.test", "carol@acme.test", "bob@acme.test"]),
        ("last_active", ["carol@acme.test", "bob@acme.test", "olivia@acme.test"]),
        ("-last_active", ["bob@acme.test", "carol@acme.test", "olivia@acme.test"]),
        ("joined", ["olivia@acme.test", "bob@acme.test", "carol@acme.test"]),
        ("-joined", ["carol@acme.test", "bob@acme.test", "olivia@acme.test"]),
    ],
)
def test_sort_by_every_column_both_ways(org_setup, client, sort, expected):
    s = org_setup
    now = timezone.now()
    for i, user in enumerate([s.owner, s.admin, s.member]):
        OrgMembership.objects.filter(user=user).update(joined_at=now - timedelta(days=10 - i))
    # Olivia never active (sorted last both ways); Carol earlier than Bob
    User.objects.filter(pk=s.member.pk).update(last_active_at=now - timedelta(days=2))
    User.objects.filter(pk=s.admin.pk).update(last_active_at=now - timedelta(days=1))
    User.objects.filter(pk=s.owner.pk).update(last_active_at=None)
    client.force_login(s.owner, backend="members.backends.EmailBackend")
    User.objects.filter(pk=s.owner.pk).update(last_active_at=None)  # the login itself is activity
    from django.core.cache import cache

    cache.add(f"last-active:{s.owner.pk}", 1, 300)  # keep the page view from stamping Olivia
    assert emails(client.get(url(s.org), {"sort": sort})) == expected


def test_search_and_filters(org_setup, login):
    s = org_setup
    c = login(s.owner)
    assert emails(c.get(url(s.org), {"q": "CAROL"})) == ["carol@acme.test"]
    assert emails(c.get(url(s.org), {"q": "acme.test", "role": "admin"})) == ["bob@acme.test"]
    assert emails(c.get(url(s.org), {"workspace": s.ws_b.public_id})) == [
        "carol@acme.test",
        "olivia@acme.test",
    ]
    assert emails(c.get(url(s.org), {"workspace": s.ws_a.public_id, "role": "member"})) == []
    # junk in the URL is ignored, not an error
    assert c.get(url(s.org), {"sort": "password", "role": "god", "page": "x"}).status_code == 200


def test_other_org_workspace_filter_matches_nobody(org_setup, login, owner):
    from orgs.services import org_create
    from workspaces.services import workspace_create

    s = org_setup
    other_ws = workspace_create(actor=s.stranger, name="Theirs")
    org_create(actor=s.stranger, name="Other", workspace=other_ws)
    add_to_workspace(s.member, other_ws)
    assert emails(login(s.owner).get(url(s.org), {"workspace": other_ws.public_id})) == []


def test_htmx_gets_the_rows_partial_and_links_are_bookmarkable(org_setup, login):
    s = org_setup
    c = login(s.owner)
    full = c.get(url(s.org), {"sort": "-email", "q": "acme"})
    assert b"<html" in full.content
    body = full.content.decode()
    # every hx-get has the same real href, carrying the current filters
    assert 'href="/o/acme-corp/members/?q=acme&amp;sort=email"' in body
    assert 'hx-get="/o/acme-corp/members/?q=acme&amp;sort=email"' in body
    assert 'hx-push-url="true"' in body
    partial = c.get(url(s.org), {"sort": "-email"}, HTTP_HX_REQUEST="true")
    assert b"<html" not in partial.content and b'id="directory-rows"' in partial.content
    restore = c.get(url(s.org), HTTP_HX_REQUEST="true", HTTP_HX_HISTORY_RESTORE_REQUEST="true")
    assert b"<html" in restore.content


def _add_members(org, ws, n):
    users = UserFactory.create_batch(n)
    for i, u in enumerate(users):
        add_to_org(u, org, Role.MEMBER)
        if i % 2:
            add_to_workspace(u, ws, Role.MEMBER, source="org")
        User.objects.filter(pk=u.pk).update(last_active_at=timezone.now())


@pytest.mark.parametrize("n", [5, 60])
def test_query_count_does_not_grow_with_rows(
    org_setup, login, django_assert_num_queries, n, verified
):
    """Per request: user, org membership, sign-in policies, the switcher (the session comes
    from the cache); the page: tab counts, workspace choices, rows (+ a count when filtered)."""
    s = org_setup
    _add_members(s.org, s.ws_a, n)
    verified(s.org, "acme.test")  # the badges' subqueries have rows to find
    c = login(s.owner)
    c.get(url(s.org))  # warm the session and the Last Active throttle
    with django_assert_num_queries(7) as captured:
        response = c.get(url(s.org), {"sort": "-workspaces"})
    assert len(response.context["page"].object_list) == min(50, n + 3)
    assert not [q for q in captured.captured_queries if "django_session" in q["sql"]]
    with django_assert_num_queries(8):
        c.get(url(s.org), {"q": "person", "page": 2})


def test_pagination_50_per_page(org_setup, login):
    s = org_setup
    _add_members(s.org, s.ws_a, 60)
    c = login(s.owner)
    first = c.get(url(s.org))
    assert len(first.context["page"].object_list) == 50
    assert first.context["next_href"].endswith("?page=2")
    second = c.get(first.context["next_href"])
    assert len(second.context["page"].object_list) == 13
    assert not set(emails(first)) & set(emails(second))
    assert second.context["prev_href"] == url(s.org)


# --- pending invitations tab --------------------------------------------------------------


def test_pending_tab_shows_delivery_state_and_actions(org_setup, login, invite):
    s = org_setup
    [inv] = invite(s.admin, s.org, "dana@example.test", grants={s.ws_a.pk: Role.MEMBER})
    Invitation.objects.filter(pk=inv.pk).update(
        delivery_state="failed", delivery_attempts=3, last_error="SMTPServerDisconnected: boom"
    )
    body = login(s.admin).get(url(s.org, "invitations")).content.decode()
    assert "dana@example.test" in body and "Production" in body
    assert 'data-delivery="failed"' in body and "3 attempts" in body and "boom" in body
    assert "Resend" in body and "Revoke" in body
    # Invitees' emails, grants and delivery state are for owners and admins only (docs/rules.md §3).
    member_view = login(s.member).get(url(s.org, "invitations"))
    assert member_view.status_code == 403
    assert "dana@example.test" not in member_view.content.decode()
    directory = login(s.member).get(url(s.org)).content.decode()
    assert 'data-testid="pending-tab"' not in directory


def test_resend_and_revoke_buttons(org_setup, login, invite, django_capture_on_commit_callbacks):
    s = org_setup
    [inv] = invite(s.admin, s.org, "dana@example.test")
    c = login(s.admin)
    with django_capture_on_commit_callbacks(execute=True):
        r = c.post(url(s.org, "invitation_resend", inv.public_id))
    assert r.status_code == 302 and len(mail.outbox) == 2
    inv.refresh_from_db()
    assert inv.delivery_state == "sent"
    r = c.post(url(s.org, "invitation_revoke", inv.public_id), follow=True)
    assert b"is revoked" in r.content
    inv.refresh_from_db()
    assert inv.status == "revoked"


def test_resend_revoke_wrong_role_and_other_org(org_setup, login, invite):
    s = org_setup
    [inv] = invite(s.admin, s.org, "dana@example.test")
    assert login(s.member).post(url(s.org, "invitation_revoke", inv.public_id)).status_code == 403
    assert login(s.stranger).post(url(s.org, "invitation_resend", inv.public_id)).status_code == 404
    inv.refresh_from_db()
    assert inv.status == "pending"


# --- invite page --------------------------------------------------------------------------


def test_invite_page_invites_several_and_lists_them(org_setup, login):
    s = org_setup
    c = login(s.admin)
    response = c.post(
        url(s.org, "invite"),
        {
            "emails": "a@example.test, b@example.test\nc@example.test",
            "org_role": 10,
            f"ws_{s.ws_a.public_id}": 20,
        },
        follow=True,
    )
    assert response.redirect_chain[-1][0] == url(s.org, "invitations")
    assert b"Invited 3" in response.content
    assert Invitation.objects.filter(status="pending").count() == 3
    assert {g.role for i in Invitation.objects.all() for g in i.grants.all()} == {Role.ADMIN}


def test_invite_page_shows_errors_per_email_and_invites_nobody(org_setup, login, invite):
    s = org_setup
    invite(s.admin, s.org, "pending@example.test")
    response = login(s.admin).post(
        url(s.org, "invite"),
        {"emails": "new@example.test carol@acme.test pending@example.test", "org_role": 10},
    )
    assert response.status_code == 409
    per_email = response.context["per_email"]
    assert set(per_email) == {"carol@acme.test", "pending@example.test"}
    assert b"Resend" in response.content and b"already a member" in response.content
    assert not Invitation.objects.filter(email="new@example.test").exists()


def test_admin_invite_page_offers_no_owner_role_and_refuses_it(org_setup, login):
    s = org_setup
    c = login(s.admin)
    page = c.get(url(s.org, "invite"))
    assert [v for v, _ in page.context["form"].fields["org_role"].choices] == [10, 20]
    response = c.post(url(s.org, "invite"), {"emails": "x@example.test", "org_role": 30})
    assert response.status_code == 422
    assert not Invitation.objects.exists()


def test_invite_rate_limited_page_says_when(org_setup, login, settings):
    s = org_setup
    settings.INVITES_PER_INVITER_PER_HOUR = 1
    c = login(s.admin)
    c.post(url(s.org, "invite"), {"emails": "a@example.test", "org_role": 10})
    response = c.post(url(s.org, "invite"), {"emails": "b@example.test", "org_role": 10})
    assert response.status_code == 429
    assert b"1 invitations per hour" in response.content and b"UTC" in response.content


def test_preview_shows_exactly_what_accepting_grants(org_setup, login, invite):
    """One source of truth: the preview asks members.invitations.access_on_accept, which the
    acceptance itself uses (the invitation's grants, then the default access policy's)."""
    from members.invitations import invitation_accept
    from orgs.governance_services import policy_set
    from orgs.models import GovernancePolicy
    from workspaces.models import WorkspaceMembership

    s = org_setup
    policy_set(
        actor=s.owner,
        org=s.org,
        kind=GovernancePolicy.Kind.DEFAULT_WORKSPACE_GRANT,
        value={"workspaces": [s.ws_a.public_id, s.ws_b.public_id], "role": "member"},
    )
    body = (
        login(s.owner)
        .post(
            url(s.org, "invite_preview"),
            {"emails": "dana@example.test", "org_role": 10, f"ws_{s.ws_b.public_id}": 20},
            HTTP_HX_REQUEST="true",
        )
        .content.decode()
    )
    assert (
        "Member of Acme Corp; Staging (admin), Production (member, from the default access policy)"
        in body
    )
    (inv,) = invite(s.owner, s.org, "dana@example.test", grants={s.ws_b.pk: Role.ADMIN})
    dana = UserFactory(email="dana@example.test")
    invitation_accept(user=dana, token=inv.token)
    got = WorkspaceMembership.objects.filter(user=dana).values_list("workspace__name", "role")
    assert set(got) == {("Staging", Role.ADMIN), ("Production", Role.MEMBER)}


def test_live_preview(org_setup, login):
    s = org_setup
    response = login(s.admin).post(
        url(s.org, "invite_preview"),
        {
            "emails": "dana@example.test, carol@acme.test, bad",
            "org_role": 20,
            f"ws_{s.ws_b.public_id}": 10,
        },
        HTTP_HX_REQUEST="true",
    )
    assert b"<html" not in response.content
    body = response.content.decode()
    assert "Admin of Acme Corp; Staging (member)" in body  # what dana@example.test gets
    assert "carol@acme.test is already a member" in body
    assert "bad is not a valid email address" in body
    assert body.count("<tr>") == 4  # header + one row per address
    assert not Invitation.objects.exists()


def test_sso_and_scim_badges(org_setup, login, verified):
    """SSO: the address is in a verified domain of the org; SCIM: its IdP provisions them."""
    from orgs.scim.services import (
        UserAttrs,
        scim_token_create,
        scim_user_create,
        scim_user_replace,
    )

    s = org_setup
    verified(s.org, "acme.test")
    verified(s.org, "beta.test")
    token, _ = scim_token_create(actor=s.owner, org=s.org, name="Okta")
    dana = scim_user_create(token=token, attrs=UserAttrs(user_name="dana@beta.test"))
    erin = scim_user_create(token=token, attrs=UserAttrs(user_name="erin@acme.test"))
    outsider = UserFactory(email="olga@acme.test.example")
    add_to_org(outsider, s.org, Role.MEMBER)
    scim_user_replace(
        token=token, scim_user=erin, attrs=UserAttrs(user_name="erin@acme.test", active=False)
    )
    rows = {
        m.user.email: (m.sso_domain, m.scim_managed)
        for m in login(s.member).get(url(s.org)).context["page"].object_list
    }
    assert rows == {
        s.owner.email: (True, False),  # olivia@acme.test
        s.admin.email: (True, False),
        s.member.email: (True, False),
        dana.user.email: (True, True),
        "olga@acme.test.example": (False, False),  # a suffix, not the domain
    }
    html = login(s.owner).get(url(s.org)).content.decode()
    assert html.count('data-testid="scim-badge"') == 1
    assert html.count('data-testid="sso-badge"') == 4


def test_pages_state_the_link_lifetime_and_the_address_cap_from_their_settings(
    org_setup, login, settings, invite
):
    """Durations and caps are rendered from the one setting/constant, never typed into a page."""
    from members import bulk
    from members.invitations import MAX_EMAILS_AT_ONCE

    s = org_setup
    settings.INVITATION_TTL_DAYS = 3
    client = login(s.owner)
    invite_page = client.get(url(s.org, "invite")).content.decode()
    assert "valid for 3 days" in invite_page and "7 days" not in invite_page
    assert f"Paste up to {MAX_EMAILS_AT_ONCE} addresses" in invite_page
    invs = invite(s.owner, s.org, "a@example.test")
    assert "fresh link valid for 3 days" in client.get(url(s.org, "invitations")).content.decode()
    rows, _ = bulk.invitations_bulk(actor=s.owner, invitations=invs, action="resend")
    assert rows[0].change.startswith("gets a fresh 3-day link")
