"""A member's page: access explained, role/access changes, removal with impact, leaving."""

from django.urls import reverse

from audit.models import AuditEvent
from config.roles import Role
from members.invitations import invitation_accept
from members.models import OrgMembership
from members.services import member_set_workspace_access
from tests.factories import UserFactory, add_to_workspace
from workspaces.models import WorkspaceMembership


def mem(org, user):
    return OrgMembership.objects.get(organization=org, user=user)


def url(org, name, membership=None):
    args = [org.slug] + ([membership.public_id] if membership else [])
    return reverse(f"org_members:{name}", args=args)


def test_access_explained_from_the_audit_log(org_setup, login, invite):
    s = org_setup
    [inv] = invite(s.admin, s.org, "dana@example.test", grants={s.ws_a.pk: Role.MEMBER})
    dana = UserFactory(email="dana@example.test", full_name="Dana Data")
    add_to_workspace(dana, s.ws_b, Role.MEMBER, source="direct")  # before she joined the org
    invitation_accept(user=dana, token=inv.token)
    member_set_workspace_access(
        actor=s.owner, org=s.org, membership=mem(s.org, dana), access={s.ws_b.pk: Role.ADMIN}
    )
    response = login(s.member).get(url(s.org, "detail", mem(s.org, dana)))
    assert response.status_code == 200
    grants = {g.membership.workspace.name: g for g in response.context["grants"]}
    prod, staging = grants["Production"], grants["Staging"]
    assert (prod.membership.role, prod.membership.source) == (Role.MEMBER, "org")
    assert prod.granted_by == "Bob Admin" and prod.from_audit
    granted_event = AuditEvent.objects.filter(
        action="member.access_granted", workspace=s.ws_a
    ).latest("seq")
    assert prod.granted_at == granted_event.occurred_at
    # a direct membership changed via the org stays direct; the change is explained
    assert (staging.membership.role, staging.membership.source) == (Role.ADMIN, "direct")
    assert staging.granted_by == "Olivia Owner" and staging.from_audit
    body = response.content.decode()
    assert "via organization" in body and "direct" in body
    # org members see the page but not the actions, nor someone else's activity
    assert not response.context["can_manage"] and not response.context["show_activity"]


def test_recent_activity_newest_first(org_setup, login):
    s = org_setup
    member_set_workspace_access(
        actor=s.admin, org=s.org, membership=mem(s.org, s.member), access={s.ws_a.pk: Role.MEMBER}
    )
    member_set_workspace_access(
        actor=s.admin, org=s.org, membership=mem(s.org, s.member), access={s.ws_a.pk: None}
    )
    response = login(s.owner).get(url(s.org, "detail", mem(s.org, s.admin)))
    sentences = [sentence for _, sentence in response.context["activity"]]
    assert sentences[:2] == [
        "Bob Admin removed Carol Member's access to Production",
        "Bob Admin gave Carol Member member access to Production",
    ]
    # a person sees their own activity
    own = login(s.member).get(url(s.org, "detail", mem(s.org, s.member)))
    assert own.context["show_activity"]


def test_member_page_other_org_is_404(org_setup, login):
    from orgs.services import org_create

    s = org_setup
    other = org_create(actor=s.stranger, name="Other")
    theirs = mem(other, s.stranger)
    # a member id of another org, under this org's URL, and this org's page for a stranger
    assert login(s.owner).get(url(s.org, "detail", theirs)).status_code == 404
    assert login(s.stranger).get(url(s.org, "detail", mem(s.org, s.member))).status_code == 404


def test_change_role_and_access_need_admin(org_setup, login):
    s = org_setup
    carol = mem(s.org, s.member)
    c = login(s.member)
    assert c.post(url(s.org, "role", carol), {"role": 20}).status_code == 403
    assert (
        c.post(url(s.org, "access", carol), {"workspace": s.ws_a.public_id, "role": 10}).status_code
        == 403
    )
    assert mem(s.org, s.member).role == Role.MEMBER


def test_admin_changes_role_and_grants_changes_revokes_access(org_setup, login):
    s = org_setup
    carol = mem(s.org, s.member)
    c = login(s.admin)
    assert c.post(url(s.org, "role", carol), {"role": 20}).status_code == 302
    assert mem(s.org, s.member).role == Role.ADMIN
    c.post(url(s.org, "access", carol), {"workspace": s.ws_a.public_id, "role": 20})
    assert WorkspaceMembership.objects.get(user=s.member, workspace=s.ws_a).role == Role.ADMIN
    c.post(url(s.org, "access", carol), {"workspace": s.ws_a.public_id, "role": ""})
    assert not WorkspaceMembership.objects.filter(user=s.member, workspace=s.ws_a).exists()
    acts = list(
        AuditEvent.objects.filter(organization=s.org)
        .order_by("seq")
        .values_list("action", flat=True)
    )
    assert acts[-3:] == ["member.role_changed", "member.access_granted", "member.access_revoked"]


def test_admin_cannot_make_owner_message_names_role(org_setup, login):
    s = org_setup
    response = login(s.admin).post(url(s.org, "role", mem(s.org, s.member)), {"role": 30})
    assert response.status_code == 403
    assert b"owner role" in response.content
    assert mem(s.org, s.member).role == Role.MEMBER


def test_remove_shows_impact_then_removes_everything_in_the_org(org_setup, login):
    s = org_setup
    add_to_workspace(s.member, s.ws_a, Role.MEMBER, source="direct")
    carol = mem(s.org, s.member)
    c = login(s.admin)
    preview = c.get(url(s.org, "remove", carol))
    assert preview.status_code == 200
    impact = preview.content.decode()
    assert "Production — member (direct)" in impact
    assert "Staging — member (via organization)" in impact
    assert WorkspaceMembership.objects.filter(user=s.member).count() == 2  # nothing changed yet
    response = c.post(url(s.org, "remove", carol))
    assert response.status_code == 302
    assert not OrgMembership.objects.filter(user=s.member).exists()
    assert not WorkspaceMembership.objects.filter(user=s.member).exists()
    assert login(s.member).get(url(s.org, "remove", carol)).status_code == 404


def test_remove_wrong_role_is_403(org_setup, login):
    s = org_setup
    assert login(s.member).get(url(s.org, "remove", mem(s.org, s.admin))).status_code == 403
    assert login(s.admin).post(url(s.org, "remove", mem(s.org, s.owner))).status_code == 403
    assert mem(s.org, s.owner).role == Role.OWNER


def test_leave(org_setup, login):
    s = org_setup
    c = login(s.member)
    page = c.get(url(s.org, "leave"))
    assert b"Staging" in page.content
    assert c.post(url(s.org, "leave")).status_code == 302
    assert not OrgMembership.objects.filter(user=s.member).exists()
    assert AuditEvent.objects.filter(action="member.left").exists()


def test_last_owner_cannot_leave(org_setup, login):
    s = org_setup
    response = login(s.owner).post(url(s.org, "leave"))
    assert response.status_code == 409
    assert b"last owner" in response.content
    assert mem(s.org, s.owner).role == Role.OWNER


def test_the_page_offers_exactly_what_the_services_allow(org_setup, login):
    """can_manage and can_suspend come from the services' own rules (may_manage_member,
    may_suspend): each offered control is accepted by its service, each hidden one refused."""
    from django.db import transaction

    from config.errors import PermissionDenied
    from members.lifecycle import member_suspend
    from members.services import member_change_role

    s = org_setup
    second_owner = UserFactory(full_name="Otto Owner")
    OrgMembership.objects.create(organization=s.org, user=second_owner, role=Role.OWNER)
    ws_owner = UserFactory(full_name="Wanda Wsowner")  # org member, owner of a workspace
    OrgMembership.objects.create(organization=s.org, user=ws_owner, role=Role.MEMBER)
    add_to_workspace(ws_owner, s.ws_b, Role.OWNER, source="org")

    def allowed(service, **kwargs) -> bool:
        try:
            with transaction.atomic():
                service(org=s.org, **kwargs)
                raise _Undo
        except _Undo:
            return True
        except PermissionDenied:
            return False

    seen = []
    for viewer in (s.owner, s.admin):
        for target in (second_owner, s.admin, s.member, ws_owner):
            if target == viewer:
                continue
            m = mem(s.org, target)
            context = login(viewer).get(url(s.org, "detail", m)).context
            manage = allowed(member_change_role, actor=viewer, membership=m, role=m.role)
            suspend = allowed(member_suspend, actor=viewer, membership=m)
            assert context["can_manage"] is manage, (viewer, target)
            assert context["can_suspend"] is suspend, (viewer, target)
            seen.append((manage, suspend))
    assert set(seen) == {(True, True), (False, False), (True, False)}  # each case happens


class _Undo(Exception):
    """Rolls a tried service call back."""
