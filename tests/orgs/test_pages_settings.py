"""Organization › Overview and Settings: rename, slug, ownership transfer, deletion."""

import pytest
from django.urls import reverse

from audit.models import AuditEvent
from billing.models import BillingAccount
from config.roles import Role
from members.models import OrgMembership
from orgs.models import Organization
from orgs.services import org_create
from tests.factories import SyncFactory, UserFactory
from workspaces.models import Sync, Workspace, WorkspaceMembership


def _url(name, ns, slug=None):
    return reverse(f"orgs:{name}", args=[slug or ns.org.slug])


def _membership(ns, user):
    return OrgMembership.objects.get(organization=ns.org, user=user)


# --- overview and tabs ---------------------------------------------------------------------


def test_overview_header_tabs_and_summary(org_setup, login):
    ns = org_setup
    SyncFactory(workspace=ns.ws_a)
    page = login(ns.admin).get(_url("overview", ns)).content.decode()
    assert "<h1>Acme Corp</h1>" in page and "your role: Admin" in page
    assert 'aria-current="page">Overview</a>' in page
    assert f'href="{_url("workspaces", ns)}"' in page
    assert f'href="{_url("settings", ns)}"' in page
    assert "linked workspace" in page and "Production" in page and "Staging" in page


def test_member_sees_no_settings_tab(org_setup, login):
    ns = org_setup
    page = login(ns.member).get(_url("overview", ns)).content.decode()
    assert "your role: Member" in page
    assert f'href="{_url("settings", ns)}"' not in page


def test_settings_tab_is_current_on_settings(org_setup, login):
    ns = org_setup
    page = login(ns.admin).get(_url("settings", ns)).content.decode()
    assert 'aria-current="page">Settings</a>' in page
    assert page.count('aria-current="page"') == 1
    # Admins rename; transfer and deletion are for owners.
    assert "Transfer ownership" not in page and "Delete organization" not in page


# --- rename and slug -----------------------------------------------------------------------


def test_admin_renames_and_changes_the_slug(org_setup, login):
    ns = org_setup
    response = login(ns.admin).post(_url("settings", ns), {"name": "Acme Inc", "slug": "acme-inc"})
    assert response.status_code == 302
    assert response["Location"] == _url("settings", ns, "acme-inc")
    org = Organization.objects.get(pk=ns.org.pk)
    assert (org.name, org.slug) == ("Acme Inc", "acme-inc")
    event = AuditEvent.objects.get(action="org.updated")
    assert event.details["before"] == {"name": "Acme Corp", "slug": "acme-corp"}
    assert login(ns.admin).get(_url("overview", ns, "acme-corp")).status_code == 404


def test_saving_unchanged_settings_records_nothing(org_setup, login):
    ns = org_setup
    events_before = AuditEvent.objects.count()
    response = login(ns.owner).post(
        _url("settings", ns), {"name": "Acme Corp", "slug": "acme-corp"}
    )
    assert response.status_code == 302
    assert AuditEvent.objects.count() == events_before


@pytest.mark.parametrize(
    "data,field,message",
    [
        ({"name": "", "slug": "acme-corp"}, "name", "This field is required."),
        ({"name": "x" * 101, "slug": "acme-corp"}, "name", "at most 100 characters"),
        ({"name": "Acme", "slug": ""}, "slug", "This field is required."),
        ({"name": "Acme", "slug": "Acme_Corp"}, "slug", "lowercase letters, digits or hyphens"),
        ({"name": "Acme", "slug": "a"}, "slug", "lowercase letters, digits or hyphens"),
        ({"name": "Acme", "slug": "globex"}, "slug", "The slug globex is taken; try globex-2."),
    ],
)
def test_bad_settings_are_field_errors_and_change_nothing(org_setup, login, data, field, message):
    ns = org_setup
    org_create(actor=UserFactory(), name="Globex", slug="globex")
    events_before = AuditEvent.objects.count()
    response = login(ns.admin).post(_url("settings", ns), data)
    assert response.status_code == 422
    errors = response.context["settings_form"].errors
    assert list(errors) == [field]
    assert message.lower() in errors[field][0].lower()
    assert message.lower() in response.content.decode().lower()
    org = Organization.objects.get(pk=ns.org.pk)
    assert (org.name, org.slug) == ("Acme Corp", "acme-corp")
    assert AuditEvent.objects.count() == events_before


def test_slug_of_a_deleted_org_can_be_reused(org_setup, login):
    ns = org_setup
    gone = org_create(actor=ns.owner, name="Gone Co", slug="gone-co")
    login(ns.owner).post(_url("delete", ns, "gone-co"), {"confirm_slug": "gone-co"})
    assert Organization.objects.get(pk=gone.pk).deleted_at is not None
    response = login(ns.owner).post(_url("settings", ns), {"name": "Acme", "slug": "gone-co"})
    assert response.status_code == 302
    assert Organization.objects.get(pk=ns.org.pk).slug == "gone-co"


# --- ownership transfer --------------------------------------------------------------------


def test_transfer_and_step_down_to_admin(org_setup, login):
    ns = org_setup
    page = login(ns.owner).get(_url("settings", ns)).content.decode()
    assert "Transfer ownership" in page and "Carol Member" in page and "Bob Admin" in page
    response = login(ns.owner).post(
        _url("transfer", ns),
        {"member": _membership(ns, ns.admin).public_id, "afterwards": "step_down"},
    )
    assert response.status_code == 302
    assert _membership(ns, ns.admin).role == Role.OWNER
    assert _membership(ns, ns.owner).role == Role.ADMIN
    event = AuditEvent.objects.get(action="org.ownership_transferred")
    assert event.details["previous_owner_steps_down"] is True
    page = login(ns.owner).get(response["Location"]).content.decode()
    assert "Bob Admin is now an owner. You are now an admin." in page
    assert "Transfer ownership" not in page  # no longer an owner


def test_transfer_and_stay_owner(org_setup, login):
    ns = org_setup
    login(ns.owner).post(
        _url("transfer", ns),
        {"member": _membership(ns, ns.member).public_id, "afterwards": "stay"},
    )
    assert _membership(ns, ns.member).role == Role.OWNER
    assert _membership(ns, ns.owner).role == Role.OWNER


@pytest.mark.parametrize("member", ["", "mem_nobody", "self"])
def test_transfer_needs_another_member(org_setup, login, member):
    ns = org_setup
    if member == "self":
        member = _membership(ns, ns.owner).public_id
    events_before = AuditEvent.objects.count()
    response = login(ns.owner).post(_url("transfer", ns), {"member": member, "afterwards": "stay"})
    assert response.status_code == 422
    assert response.context["transfer_form"].errors["member"]
    assert AuditEvent.objects.count() == events_before
    assert OrgMembership.objects.filter(organization=ns.org, role=Role.OWNER).count() == 1


def test_member_of_another_org_cannot_be_made_owner(org_setup, login):
    ns = org_setup
    stranger_org = org_create(actor=ns.stranger, name="Stranger Org")
    theirs = OrgMembership.objects.get(organization=stranger_org)
    response = login(ns.owner).post(
        _url("transfer", ns), {"member": theirs.public_id, "afterwards": "step_down"}
    )
    assert response.status_code == 422
    assert _membership(ns, ns.owner).role == Role.OWNER
    assert not OrgMembership.objects.filter(organization=ns.org, user=ns.stranger).exists()


def test_admin_cannot_transfer_ownership(org_setup, login):
    ns = org_setup
    response = login(ns.admin).post(
        _url("transfer", ns),
        {"member": _membership(ns, ns.admin).public_id, "afterwards": "stay"},
    )
    assert response.status_code == 403
    assert "You need the owner role" in response.content.decode()
    assert _membership(ns, ns.admin).role == Role.ADMIN


# --- deleting the organization -------------------------------------------------------------


def test_delete_preview_says_what_happens(org_setup, login):
    ns = org_setup
    page = login(ns.owner).get(_url("settings", ns)).content.decode()
    assert "unlinks its 2 workspaces: Production, Staging" in page
    assert "turns 2 workspace grants made through the organization into direct access" in page
    assert "keeps the audit history" in page and "data untouched" in page
    assert "Type <strong>acme-corp</strong> to confirm." in page


@pytest.mark.parametrize("typed", ["", "Acme Corp", "acme-corp-2"])
def test_delete_with_the_wrong_slug_changes_nothing(org_setup, login, typed):
    ns = org_setup
    events_before = AuditEvent.objects.count()
    response = login(ns.owner).post(_url("delete", ns), {"confirm_slug": typed})
    assert response.status_code == 422
    assert "Type acme-corp to confirm." in response.content.decode()
    assert Organization.objects.get(pk=ns.org.pk).deleted_at is None
    assert OrgMembership.objects.filter(organization=ns.org).count() == 3
    assert AuditEvent.objects.count() == events_before


def test_delete_converts_grants_keeps_workspaces_data_and_audit(org_setup, login):
    ns = org_setup
    SyncFactory(workspace=ns.ws_b)
    events_before = list(
        AuditEvent.objects.filter(organization=ns.org).values_list("public_id", flat=True)
    )
    memberships_before = set(WorkspaceMembership.objects.values_list("user", "workspace", "role"))
    response = login(ns.owner).post(_url("delete", ns), {"confirm_slug": "acme-corp"})
    assert response.status_code == 302
    assert response["Location"] == reverse("workspaces:home")
    page = login(ns.owner).get(response["Location"]).content.decode()
    assert "Acme Corp was deleted. 2 workspaces were unlinked" in page
    # Workspaces stay, unlinked, with their data.
    assert set(Workspace.objects.values_list("name", flat=True)) >= {"Production", "Staging"}
    assert not Workspace.objects.filter(organization=ns.org).exists()
    assert Sync.objects.filter(workspace=ns.ws_b).count() == 1
    # Everyone keeps their workspace access, now direct.
    assert set(WorkspaceMembership.objects.values_list("user", "workspace", "role")) == (
        memberships_before
    )
    assert not WorkspaceMembership.objects.filter(source="org").exists()
    # Org membership and billing go; the org's audit history stays, plus the deletion.
    assert not OrgMembership.objects.filter(organization=ns.org).exists()
    assert not BillingAccount.objects.filter(organization=ns.org).exists()
    after = list(AuditEvent.objects.filter(organization=ns.org).values_list("public_id", flat=True))
    assert set(events_before) < set(after) and len(after) == len(events_before) + 1
    assert AuditEvent.objects.filter(organization=ns.org, action="org.deleted").exists()
    # And its pages are gone for everyone.
    assert login(ns.owner).get(_url("overview", ns)).status_code == 404


def test_admin_cannot_delete_the_org(org_setup, login):
    ns = org_setup
    response = login(ns.admin).post(_url("delete", ns), {"confirm_slug": "acme-corp"})
    assert response.status_code == 403
    assert "You need the owner role or higher in this organization to delete" in (
        response.content.decode()
    )
    assert Organization.objects.get(pk=ns.org.pk).deleted_at is None
