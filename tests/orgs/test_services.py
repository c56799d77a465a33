"""docs/rules.md §2 rules through the org services."""

import threading

import pytest
from django.db import close_old_connections, connection

from audit.models import AuditEvent
from config.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from config.roles import Role
from members.models import OrgMembership
from members.services import member_change_role, member_remove
from orgs.models import Organization, WorkspaceLinkPeriod
from orgs.services import (
    org_create,
    org_delete,
    ownership_transfer,
    workspace_link,
    workspace_unlink,
)
from tests.factories import UserFactory, WarehouseFactory, add_to_workspace
from workspaces.models import Warehouse, Workspace, WorkspaceMembership
from workspaces.services import workspace_create


def test_create_from_workspace_links_it_and_makes_creator_owner(owner):
    ws = workspace_create(actor=owner, name="Production")
    org = org_create(actor=owner, name="Acme Corp", workspace=ws)
    ws.refresh_from_db()
    assert org.slug == "acme-corp"
    assert ws.organization_id == org.pk
    assert OrgMembership.objects.get(organization=org, user=owner).role == Role.OWNER
    actions = list(AuditEvent.objects.filter(organization=org).values_list("action", flat=True))
    assert sorted(actions) == ["org.created", "workspace.linked"]


def test_slug_collision_gets_suffix(owner):
    org_create(actor=owner, name="Acme Corp")
    assert org_create(actor=owner, name="Acme Corp").slug == "acme-corp-2"


@pytest.mark.parametrize(
    "name,slug,field",
    [
        ("", None, "name"),
        ("x" * 101, None, "name"),
        ("Ok", "Bad Slug!", "slug"),
        ("Ok", "ab", "slug"),
    ],
)
def test_bad_input_changes_nothing(owner, name, slug, field):
    with pytest.raises(ValidationFailed) as exc:
        org_create(actor=owner, name=name, slug=slug)
    assert field in exc.value.fields
    assert not Organization.objects.exists()
    assert not AuditEvent.objects.exists()


def test_creator_must_own_the_workspace(org_setup):
    with pytest.raises(PermissionDenied):
        org_create(actor=org_setup.admin, name="Annex", workspace=org_setup.ws_a)


def test_link_workspace_in_other_org_is_conflict(org_setup):
    other_owner = UserFactory()
    other = org_create(actor=other_owner, name="Other")
    add_to_workspace(other_owner, org_setup.ws_b, Role.OWNER)
    from members.models import OrgMembership as M

    M.objects.filter(organization=other, user=other_owner).update(role=Role.OWNER)
    with pytest.raises(Conflict) as exc:
        workspace_link(actor=other_owner, org=other, workspace=org_setup.ws_b)
    assert exc.value.code == "workspace_in_other_org"


def test_linking_needs_the_workspace_owner_role(org_setup):
    foreign = workspace_create(actor=UserFactory(), name="Foreign")
    with pytest.raises(NotFound):
        workspace_link(actor=org_setup.admin, org=org_setup.org, workspace=foreign)
    add_to_workspace(org_setup.admin, foreign, Role.MEMBER)
    with pytest.raises(PermissionDenied):
        workspace_link(actor=org_setup.admin, org=org_setup.org, workspace=foreign)
    WorkspaceMembership.objects.filter(user=org_setup.admin, workspace=foreign).update(
        role=Role.ADMIN
    )
    with pytest.raises(PermissionDenied, match="owner role"):
        workspace_link(actor=org_setup.admin, org=org_setup.org, workspace=foreign)
    foreign.refresh_from_db()
    assert foreign.organization_id is None


def test_unlink_drops_org_grants_keeps_direct_and_data(org_setup):
    ns = org_setup
    direct = UserFactory()
    add_to_workspace(direct, ns.ws_b, Role.ADMIN, source="direct")
    WarehouseFactory(workspace=ns.ws_b)
    workspace_unlink(actor=ns.admin, org=ns.org, workspace=ns.ws_b)
    ns.ws_b.refresh_from_db()
    assert ns.ws_b.organization_id is None
    assert not WorkspaceMembership.objects.filter(user=ns.member, workspace=ns.ws_b).exists()
    assert WorkspaceMembership.objects.filter(user=direct, workspace=ns.ws_b).exists()
    assert WorkspaceMembership.objects.filter(user=ns.owner, workspace=ns.ws_b).exists()
    assert Warehouse.objects.filter(workspace=ns.ws_b).count() == 1
    event = AuditEvent.objects.get(action="workspace.unlinked")
    assert event.organization_id == ns.org.pk


def test_unlink_refused_when_it_would_strip_last_owner(org_setup):
    ns = org_setup
    WorkspaceMembership.objects.filter(workspace=ns.ws_b, user=ns.owner).update(source="org")
    with pytest.raises(Conflict) as exc:
        workspace_unlink(actor=ns.owner, org=ns.org, workspace=ns.ws_b)
    assert exc.value.code == "last_owner"
    ns.ws_b.refresh_from_db()
    assert ns.ws_b.organization_id == ns.org.pk


def test_delete_org_converts_grants_keeps_workspaces_and_audit(org_setup):
    ns = org_setup
    events_before = AuditEvent.objects.filter(organization=ns.org).count()
    with pytest.raises(ValidationFailed):
        org_delete(actor=ns.owner, org=ns.org, confirm_slug="wrong")
    with pytest.raises(PermissionDenied):
        org_delete(actor=ns.admin, org=ns.org, confirm_slug=ns.org.slug)
    org_delete(actor=ns.owner, org=ns.org, confirm_slug=ns.org.slug)
    m = WorkspaceMembership.objects.get(user=ns.member, workspace=ns.ws_b)
    assert m.source == "direct"
    ns.ws_a.refresh_from_db()
    assert ns.ws_a.organization_id is None
    assert not OrgMembership.objects.filter(organization=ns.org).exists()
    assert AuditEvent.objects.filter(organization=ns.org).count() == events_before + 1


def test_last_org_owner_cannot_be_demoted(org_setup):
    ns = org_setup
    owner_m = OrgMembership.objects.get(organization=ns.org, user=ns.owner)
    with pytest.raises(Conflict):
        member_change_role(actor=ns.owner, org=ns.org, membership=owner_m, role=Role.ADMIN)


def test_last_owner_is_refused_alike_at_both_levels(org_setup):
    """One check (config.roles.require_another_owner) with each level's owners."""
    from workspaces.services import workspace_member_change_role

    ns = org_setup
    org_m = OrgMembership.objects.get(organization=ns.org, user=ns.owner)
    ws_m = WorkspaceMembership.objects.get(workspace=ns.ws_a, user=ns.owner)
    with pytest.raises(Conflict) as org_refusal:
        member_change_role(actor=ns.owner, org=ns.org, membership=org_m, role=Role.ADMIN)
    with pytest.raises(Conflict) as ws_refusal:
        workspace_member_change_role(actor=ns.owner, membership=ws_m, role=Role.ADMIN)
    assert org_refusal.value.code == ws_refusal.value.code == "last_owner"
    assert org_refusal.value.message == (
        "Olivia Owner is the last owner of Acme Corp. Make someone else an owner first."
    )
    assert ws_refusal.value.message == (
        "Olivia Owner is the last owner of Production. Make someone else an owner first."
    )
    # With a second owner at each level, the same demotions go through.
    second = UserFactory()
    OrgMembership.objects.create(organization=ns.org, user=second, role=Role.OWNER)
    add_to_workspace(second, ns.ws_a, Role.OWNER)
    member_change_role(actor=ns.owner, org=ns.org, membership=org_m, role=Role.ADMIN)
    workspace_member_change_role(actor=ns.owner, membership=ws_m, role=Role.ADMIN)
    assert OrgMembership.objects.get(pk=org_m.pk).role == Role.ADMIN
    assert WorkspaceMembership.objects.get(pk=ws_m.pk).role == Role.ADMIN


def test_admin_cannot_touch_owner_or_grant_owner(org_setup):
    ns = org_setup
    owner_m = OrgMembership.objects.get(organization=ns.org, user=ns.owner)
    member_m = OrgMembership.objects.get(organization=ns.org, user=ns.member)
    with pytest.raises(PermissionDenied):
        member_change_role(actor=ns.admin, org=ns.org, membership=member_m, role=Role.OWNER)
    with pytest.raises(PermissionDenied):
        member_remove(actor=ns.admin, org=ns.org, membership=owner_m)
    member_change_role(actor=ns.admin, org=ns.org, membership=member_m, role=Role.ADMIN)
    assert OrgMembership.objects.get(pk=member_m.pk).role == Role.ADMIN


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_demotion_of_two_owners_leaves_one(org_setup):
    ns = org_setup
    second = UserFactory()
    OrgMembership.objects.create(organization=ns.org, user=second, role=Role.OWNER)
    targets = list(OrgMembership.objects.filter(organization=ns.org, role=Role.OWNER))
    assert len(targets) == 2
    barrier = threading.Barrier(2)
    outcomes = []

    def demote(target, actor):
        try:
            barrier.wait()
            member_change_role(actor=actor, org=ns.org, membership=target, role=Role.ADMIN)
            outcomes.append("ok")
        except Conflict:
            outcomes.append("refused")
        finally:
            close_old_connections()
            connection.close()

    # Each owner steps down at the same moment: one must be refused.
    threads = [threading.Thread(target=demote, args=(t, t.user)) for t in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["ok", "refused"]
    assert OrgMembership.objects.filter(organization=ns.org, role=Role.OWNER).count() == 1


def _race(*calls):
    """Run the calls at the same moment in threads (own DB connections); their outcomes."""
    barrier = threading.Barrier(len(calls))
    outcomes = [None] * len(calls)

    def run(i, call):
        try:
            barrier.wait()
            outcomes[i] = call()
        except Exception as exc:  # the refusal is the outcome under test
            outcomes[i] = exc
        finally:
            close_old_connections()
            connection.close()

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return outcomes


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_links_of_one_workspace_to_two_orgs_one_wins(owner):
    ws = workspace_create(actor=owner, name="Contested")
    first = org_create(actor=owner, name="First")
    second = org_create(actor=owner, name="Second")
    outcomes = _race(
        lambda: workspace_link(actor=owner, org=first, workspace=ws),
        lambda: workspace_link(actor=owner, org=second, workspace=ws),
    )
    refused = [o for o in outcomes if isinstance(o, Exception)]
    assert len(refused) == 1, outcomes
    assert isinstance(refused[0], Conflict) and refused[0].code == "workspace_in_other_org"
    ws.refresh_from_db()
    assert ws.organization_id in (first.pk, second.pk)
    assert WorkspaceLinkPeriod.objects.filter(workspace=ws, unlinked_at__isnull=True).count() == 1
    assert AuditEvent.objects.filter(action="workspace.linked", target_id=ws.public_id).count() == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_creates_with_one_name_get_distinct_slugs(owner):
    outcomes = _race(
        lambda: org_create(actor=owner, name="Acme Corp"),
        lambda: org_create(actor=owner, name="Acme Corp"),
    )
    assert sorted(o.slug for o in outcomes) == ["acme-corp", "acme-corp-2"], outcomes


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_creates_with_one_chosen_slug_one_gets_a_field_error(owner):
    outcomes = _race(
        lambda: org_create(actor=owner, name="Acme", slug="acme"),
        lambda: org_create(actor=owner, name="Acme", slug="acme"),
    )
    refused = [o for o in outcomes if isinstance(o, Exception)]
    assert len(refused) == 1, outcomes
    assert isinstance(refused[0], ValidationFailed) and "slug" in refused[0].fields
    assert Organization.objects.filter(slug="acme").count() == 1
    assert AuditEvent.objects.filter(action="org.created").count() == 1


def test_transfer_to_an_existing_owner_without_stepping_down_is_refused(org_setup):
    ns = org_setup
    second = UserFactory()
    target = OrgMembership.objects.create(organization=ns.org, user=second, role=Role.OWNER)
    with pytest.raises(Conflict):
        ownership_transfer(actor=ns.owner, org=ns.org, to_membership=target, step_down=False)
    ownership_transfer(actor=ns.owner, org=ns.org, to_membership=target, step_down=True)
    assert OrgMembership.objects.get(organization=ns.org, user=ns.owner).role == Role.ADMIN


def test_link_of_a_workspace_deleted_meanwhile_is_not_found(org_setup):
    ns = org_setup
    ws = workspace_create(actor=ns.owner, name="Ephemeral")
    Workspace.objects.filter(pk=ws.pk).delete()
    with pytest.raises(NotFound):
        workspace_link(actor=ns.owner, org=ns.org, workspace=ws)
    # The one workspace lock (workspaces.services.lock_workspace) answers alike for its own
    # services: a member change in a workspace deleted meanwhile is a 404, not a crash.
    from workspaces.services import workspace_member_change_role

    membership = WorkspaceMembership(workspace=ws, user=ns.owner, role=Role.OWNER)
    with pytest.raises(NotFound):
        workspace_member_change_role(actor=ns.owner, membership=membership, role=Role.ADMIN)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_lock_linked_workspaces_locks_only_the_orgs_linked_ones_in_id_order(org_setup):
    """The one helper every service uses for the second lock of the order (README)."""
    from django.db import DatabaseError, transaction

    from orgs.services import lock_linked_workspaces, lock_org

    ns = org_setup
    standalone = workspace_create(actor=ns.owner, name="Sandbox")
    seen = []

    def try_lock(pk):
        try:
            with transaction.atomic():
                Workspace.objects.select_for_update(nowait=True).filter(pk=pk).first()
            seen.append((pk, "free"))
        except DatabaseError:
            seen.append((pk, "locked"))
        finally:
            connection.close()

    with transaction.atomic():
        org = lock_org(ns.org)
        linked = lock_linked_workspaces(org, ids=[ns.ws_b.pk, standalone.pk, ns.ws_a.pk])
        assert list(linked) == sorted([ns.ws_a.pk, ns.ws_b.pk])
        assert list(lock_linked_workspaces(org)) == list(linked)
        for pk in (ns.ws_a.pk, standalone.pk):
            t = threading.Thread(target=try_lock, args=(pk,))
            t.start()
            t.join()
    assert seen == [(ns.ws_a.pk, "locked"), (standalone.pk, "free")]
