"""The support admin: every changelist loads, writes are closed where services own them,
and the audit log lists without counting the whole table (support actions: tests/support/)."""

import re

import pytest
from django.contrib import admin
from django.db import connection, transaction
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from audit.models import AuditEvent
from config.admin import EstimatedCountPaginator
from members.models import OrgMembership, User
from tests.factories import SyncRunFactory, UserFactory
from workspaces.models import WorkspaceMembership

MODELS = sorted(admin.site._registry, key=lambda m: m._meta.label)


@pytest.fixture
def staff(db):
    return UserFactory(email="support@signalsmith.test", is_staff=True, is_superuser=True)


@pytest.fixture
def admin_client(client, staff):
    client.force_login(staff, backend="members.backends.EmailBackend")
    return client


def changelist(model):
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")


def test_every_model_of_ours_is_registered():
    ours = {"members", "workspaces", "orgs", "audit", "billing", "reviews"}
    from django.apps import apps

    missing = [
        m._meta.label
        for m in apps.get_models()
        if m._meta.app_label in ours and m not in admin.site._registry
    ]
    assert missing == []


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m._meta.label)
def test_changelist_and_search_load(admin_client, org_setup, model):
    SyncRunFactory(sync__workspace=org_setup.ws_a)
    assert admin_client.get(changelist(model)).status_code == 200
    if admin.site._registry[model].search_fields:
        assert admin_client.get(changelist(model), {"q": "acme"}).status_code == 200


@pytest.mark.parametrize(
    "path",
    [
        "admin:orgs_organization_change",
        "admin:workspaces_workspace_change",
        "admin:members_user_change",
    ],
)
def test_change_pages_with_inlines_load(admin_client, org_setup, path):
    obj = {"orgs": org_setup.org, "workspaces": org_setup.ws_a, "members": org_setup.owner}[
        path.split(":")[1].split("_")[0]
    ]
    assert admin_client.get(reverse(path, args=[obj.pk])).status_code == 200


def test_organization_search_finds_it_and_shows_counts(admin_client, org_setup):
    page = admin_client.get(changelist(type(org_setup.org)), {"q": "acme"})
    assert page.status_code == 200
    html = page.content.decode()
    assert "Acme Corp" in html
    assert page.context["cl"].result_count == 1


def test_audit_events_are_read_only(admin_client, org_setup):
    event = AuditEvent.objects.filter(organization=org_setup.org).first()
    model_admin = admin.site._registry[AuditEvent]
    request = admin_client.get(changelist(AuditEvent)).wsgi_request
    assert not model_admin.has_add_permission(request)
    assert not model_admin.has_change_permission(request, event)
    assert not model_admin.has_delete_permission(request, event)
    url = reverse("admin:audit_auditevent_change", args=[event.pk])
    assert admin_client.get(url).status_code == 200  # viewable
    admin_client.post(url, {"action": "tampered"})
    event.refresh_from_db()
    assert event.action != "tampered"
    assert admin_client.get(reverse("admin:audit_auditevent_add")).status_code == 403
    delete = reverse("admin:audit_auditevent_delete", args=[event.pk])
    assert admin_client.post(delete, {"post": "yes"}).status_code == 403
    assert AuditEvent.objects.filter(pk=event.pk).exists()


def test_audit_changelist_never_counts_the_whole_table(admin_client, org_setup):
    model_admin = admin.site._registry[AuditEvent]
    assert model_admin.show_full_result_count is False
    assert issubclass(model_admin.paginator, EstimatedCountPaginator)
    table = AuditEvent._meta.db_table
    for params in ({}, {"category": "member"}, {"q": "Olivia"}):
        with CaptureQueriesContext(connection) as ctx:
            assert admin_client.get(changelist(AuditEvent), params).status_code == 200
        counts = [q["sql"] for q in ctx.captured_queries if "COUNT(" in q["sql"].upper()]
        for sql in counts:
            if table in sql:
                # Only a count over a LIMITed subquery (bounded work), never the bare table.
                assert re.search(r"LIMIT \d+", sql), sql


def test_audit_search_by_full_name_and_by_event_id(admin_client, org_setup):
    """A name of two words is the start of one actor's name (not two words each starting a
    field, which matched nothing); an event id finds that event alone, by its index."""
    from tests.audit.helpers import make_event

    s = org_setup
    s.admin.full_name = "Ada Lovelace"
    s.admin.save(update_fields=["full_name"])
    mine = make_event(s.org, action="org.updated", actor=s.admin)
    make_event(s.org, action="org.updated", actor=s.owner)
    page = admin_client.get(changelist(AuditEvent), {"q": "Ada Love"})
    assert [e.pk for e in page.context["cl"].result_list] == [mine.pk]
    page = admin_client.get(changelist(AuditEvent), {"q": f" {mine.public_id} "})
    assert [e.pk for e in page.context["cl"].result_list] == [mine.pk]


def test_a_filtered_listing_is_counted_exactly_below_the_cap(org_setup):
    qs = AuditEvent.objects.filter(organization=org_setup.org).order_by("-pk")
    assert EstimatedCountPaginator(qs, 50).count == qs.count() > 0


@pytest.mark.postgres
def test_unfiltered_listing_uses_the_planner_estimate_on_postgresql(org_setup):
    class TinyCap(EstimatedCountPaginator):
        CAP = 2

    table = AuditEvent._meta.db_table
    with connection.cursor() as cur:
        cur.execute(f"ANALYZE {table}")
        cur.execute("SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass", [table])
        estimate = cur.fetchone()[0]
    assert estimate > 2
    with CaptureQueriesContext(connection) as ctx:
        assert TinyCap(AuditEvent.objects.order_by("-pk"), 50).count == estimate
    assert not any("COUNT(" in q["sql"].upper() for q in ctx.captured_queries)
    # A filtered listing counts at most CAP rows.
    filtered = AuditEvent.objects.filter(organization=org_setup.org).order_by("-pk")
    assert TinyCap(filtered, 50).count == 2


def trigram_indexes() -> set[str]:
    with connection.cursor() as cur:
        cur.execute("SELECT indexname FROM pg_indexes WHERE indexdef LIKE '%%gin_trgm_ops%%'")
        return {row[0] for row in cur.fetchall()}


def _search_plan(model, term: str) -> str:
    model_admin = admin.site._registry[model]
    request = RequestFactory().get("/", {"q": term})
    request.user = UserFactory.build(is_staff=True, is_superuser=True)
    qs, _ = model_admin.get_search_results(request, model.objects.all(), term)
    sql, params = qs.query.sql_with_params()
    with transaction.atomic(), connection.cursor() as cur:
        # On these small tables the planner would rightly read them whole (a sequential scan,
        # or a full scan of the primary key with a filter); forbid both, so that only an index
        # that matches the admin's expression (UPPER(col::text) LIKE UPPER('%term%')) can serve.
        cur.execute("SET LOCAL enable_seqscan = off")
        cur.execute("SET LOCAL enable_indexscan = off")
        cur.execute("EXPLAIN " + sql, params)
        return "\n".join(row[0] for row in cur.fetchall())


@pytest.mark.postgres
@pytest.mark.parametrize(
    "model", [AuditEvent, User, OrgMembership, WorkspaceMembership], ids=lambda m: m.__name__
)
def test_admin_substring_search_is_served_by_trigram_indexes(org_setup, model):
    text = _search_plan(model, "acme")
    assert {name for name in trigram_indexes() if name in text}, text
    assert "Seq Scan" not in text and "Filter: (upper(" not in text, text


def test_membership_search_finds_by_user_org_or_id(admin_client, org_setup):
    s = org_setup
    carol = OrgMembership.objects.get(user=s.member, organization=s.org)
    url = changelist(OrgMembership)
    for term in ("CAROL", "carol@acme", "Carol Member", carol.public_id.upper()):
        page = admin_client.get(url, {"q": term})
        assert [m.pk for m in page.context["cl"].result_list] == [carol.pk], term
    everyone = admin_client.get(url, {"q": "acme corp"}).context["cl"].result_list
    assert {m.user_id for m in everyone} == {s.owner.pk, s.admin.pk, s.member.pk}
    assert not admin_client.get(url, {"q": "nobody-like-this"}).context["cl"].result_list
    ws_page = admin_client.get(changelist(WorkspaceMembership), {"q": "carol staging"})
    assert [(m.user_id, m.workspace_id) for m in ws_page.context["cl"].result_list] == [
        (s.member.pk, s.ws_b.pk)
    ]


def test_membership_search_by_part_of_an_address_a_name_or_the_org(admin_client, org_setup):
    from members.models import OrgMembership

    s = org_setup
    url = changelist(OrgMembership)

    def found(q):
        page = admin_client.get(url, {"q": q})
        assert page.status_code == 200
        return {m.user.email for m in page.context["cl"].result_list}

    admin_email = s.admin.email
    assert found(admin_email.split("@")[0][1:].upper()) == {admin_email}
    assert found(s.org.name[1:-1]) == set(
        OrgMembership.objects.filter(organization=s.org).values_list("user__email", flat=True)
    )
    assert found("nobody-has-this") == set()
