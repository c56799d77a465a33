"""Settings › Organization: the Create Organization form, its live slug check, and the entry."""

import pytest
from django.urls import reverse

from audit.models import AuditEvent
from config.roles import Role
from members.models import OrgMembership
from orgs.models import Organization
from orgs.services import org_create
from tests.factories import UserFactory, add_to_workspace
from workspaces.services import workspace_create

CREATE = reverse("orgs:create")
SLUG_CHECK = reverse("orgs:slug_check")


def _htmx(trigger_name):
    return {"HTTP_HX_REQUEST": "true", "HTTP_HX_TRIGGER_NAME": trigger_name}


@pytest.fixture
def solo(owner):
    """The owner with one standalone workspace."""
    return workspace_create(actor=owner, name="Production")


def test_form_is_offered_for_a_workspace_without_org(solo, owner, login):
    response = login(owner).get(CREATE, {"workspace": solo.slug})
    page = response.content.decode()
    assert response.status_code == 200
    assert "Create Organization" in page
    assert "Production becomes the organization's first linked workspace" in page
    assert f'hx-get="{SLUG_CHECK}"' in page


def test_creating_links_the_current_workspace_and_makes_the_creator_owner(solo, owner, login):
    response = login(owner).post(
        f"{CREATE}?workspace={solo.slug}", {"name": "Acme Corp", "slug": "acme-corp"}
    )
    org = Organization.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("orgs:overview", args=["acme-corp"])
    solo.refresh_from_db()
    assert solo.organization_id == org.pk
    assert OrgMembership.objects.get(organization=org, user=owner).role == Role.OWNER
    page = login(owner).get(response["Location"]).content.decode()
    assert "Acme Corp is ready; you are its owner. Production is its first workspace." in page


def test_empty_slug_is_generated_from_the_name(solo, owner, login):
    org_create(actor=UserFactory(), name="Acme Corp")
    login(owner).post(f"{CREATE}?workspace={solo.slug}", {"name": "Acme Corp", "slug": ""})
    assert Organization.objects.filter(slug="acme-corp-2").exists()


@pytest.mark.parametrize(
    "data,field,message",
    [
        ({"name": "", "slug": ""}, "name", "This field is required."),
        ({"name": "   ", "slug": ""}, "name", "This field is required."),
        ({"name": "x" * 101, "slug": ""}, "name", "at most 100 characters"),
        ({"name": "Acme", "slug": "Bad Slug!"}, "slug", "lowercase letters, digits or hyphens"),
        ({"name": "Acme", "slug": "ab"}, "slug", "lowercase letters, digits or hyphens"),
        ({"name": "Acme", "slug": "x" * 51}, "slug", "at most 50 characters"),
        ({"name": "Acme", "slug": "-acme-"}, "slug", "lowercase letters, digits or hyphens"),
        ({"name": "Acme", "slug": "taken-slug"}, "slug", "The slug taken-slug is taken"),
    ],
)
def test_bad_input_is_a_field_error_and_changes_nothing(solo, owner, login, data, field, message):
    org_create(actor=UserFactory(), name="Taken", slug="taken-slug")
    orgs_before, events_before = Organization.objects.count(), AuditEvent.objects.count()
    response = login(owner).post(f"{CREATE}?workspace={solo.slug}", data)
    assert response.status_code == 422
    errors = response.context["form"].errors
    assert list(errors) == [field]
    assert message.lower() in errors[field][0].lower()
    assert message.lower() in response.content.decode().lower()
    assert Organization.objects.count() == orgs_before
    assert AuditEvent.objects.count() == events_before
    solo.refresh_from_db()
    assert solo.organization_id is None


def test_admin_of_the_workspace_cannot_create_from_it(solo, login):
    admin = UserFactory()
    add_to_workspace(admin, solo, Role.ADMIN)
    client = login(admin)
    page = client.get(CREATE, {"workspace": solo.slug}).content.decode()
    assert "Only an owner of Production can create an organization from it" in page
    response = client.post(f"{CREATE}?workspace={solo.slug}", {"name": "Annex", "slug": ""})
    assert response.status_code == 403
    assert "You need the owner role or higher in Production" in response.content.decode()
    assert not Organization.objects.exists()


def test_without_a_workspace_the_org_starts_empty(owner, login):
    response = login(owner).post(CREATE, {"name": "Empty Co", "slug": ""})
    org = Organization.objects.get()
    assert response.status_code == 302
    assert not org.workspaces.exists()


def test_a_workspace_the_viewer_cannot_see_is_a_404(owner, login):
    foreign = workspace_create(actor=UserFactory(), name="Foreign")
    response = login(owner).get(CREATE, {"workspace": foreign.slug})
    assert response.status_code == 404
    response = login(owner).post(f"{CREATE}?workspace={foreign.slug}", {"name": "Annex"})
    assert response.status_code == 404
    assert not Organization.objects.exists()


def test_with_an_org_the_entry_leads_to_it(org_setup, login):
    ns = org_setup
    response = login(ns.admin).get(CREATE, {"workspace": ns.ws_a.slug})
    assert response.status_code == 302
    assert response["Location"] == reverse("orgs:overview", args=[ns.org.slug])


def test_workspace_member_outside_the_org_is_told_who_owns_it(org_setup, login):
    ns = org_setup
    outsider = UserFactory()
    add_to_workspace(outsider, ns.ws_a, Role.MEMBER)
    response = login(outsider).get(CREATE, {"workspace": ns.ws_a.slug})
    assert response.status_code == 200
    assert "belongs to the organization <strong>Acme Corp</strong>" in response.content.decode()
    assert "<form" not in response.content.decode().split("<main", 1)[1]


def test_entry_uses_the_session_workspace(org_setup, login):
    ns = org_setup
    client = login(ns.owner)
    client.get(reverse("workspaces:overview", args=[ns.ws_a.slug]))
    response = client.get(CREATE)
    assert response["Location"] == reverse("orgs:overview", args=[ns.org.slug])


# --- the live slug check -------------------------------------------------------------------


def test_typing_the_name_suggests_a_free_slug(owner, login):
    org_create(actor=UserFactory(), name="Acme Corp")
    response = login(owner).get(SLUG_CHECK, {"name": "Acme Corp", "slug": ""}, **_htmx("name"))
    page = response.content.decode()
    assert response.status_code == 200
    assert 'id="slug-field"' in page
    assert 'value="acme-corp-2"' in page
    assert "acme-corp-2 is available." in page
    assert "<html" not in page


def test_name_typing_keeps_a_hand_edited_slug(owner, login):
    response = login(owner).get(
        SLUG_CHECK, {"name": "Acme Corp", "slug": "my-own", "slug_edited": "1"}, **_htmx("name")
    )
    assert 'value="my-own"' in response.content.decode()


@pytest.mark.parametrize(
    "slug,expected",
    [
        ("acme-corp", "acme-corp is taken; try acme-corp-2."),
        ("Bad Slug", "lowercase letters, digits or hyphens"),
        ("fresh-slug", "fresh-slug is available."),
        ("", "A slug will be generated from the name."),
    ],
)
def test_typing_the_slug_checks_it(owner, login, slug, expected):
    org_create(actor=UserFactory(), name="Acme Corp")
    response = login(owner).get(SLUG_CHECK, {"name": "X", "slug": slug}, **_htmx("slug"))
    page = response.content.decode()
    assert expected in page
    assert 'id="slug-status"' in page and 'id="slug-field"' not in page
    assert f'name="slug_edited" value="{"1" if slug else ""}"' in page


def test_current_slug_is_reported_as_current(org_setup, login):
    response = login(org_setup.owner).get(
        SLUG_CHECK, {"slug": "acme-corp", "current": "acme-corp"}, **_htmx("slug")
    )
    assert "This is the current slug." in response.content.decode()


def test_slug_check_needs_sign_in(client):
    response = client.get(SLUG_CHECK, {"name": "Acme"})
    assert response.status_code == 302


def test_an_empty_post_is_a_field_error(solo, owner, login):
    response = login(owner).post(f"{CREATE}?workspace={solo.slug}", {})
    assert response.status_code == 422
    assert response.context["form"].errors["name"] == ["This field is required."]
    assert not Organization.objects.exists()
