"""The generic resource pages: role gates, one audit event per change, bad input changes nothing."""

import pytest
from django.db import connection
from django.urls import reverse

from audit.models import AuditEvent
from config.roles import Role
from orgs.models import GovernancePolicy
from orgs.services import org_create
from tests.factories import SyncRunFactory, WarehouseFactory
from workspaces.models import DataModel, Destination, Sync, Warehouse
from workspaces.services import RESOURCE_MODELS, resource_create

KINDS = ["warehouse", "model", "destination", "sync"]


def valid_data(ns, kind, name="New one"):
    return {
        "warehouse": {"name": name, "kind": "bigquery", "host": "bq.example", "database": "d"},
        "model": {"name": name, "warehouse": ns.objs["warehouse"].pk, "sql": "select 2"},
        "destination": {"name": name, "kind": "braze"},
        "sync": {
            "name": name,
            "model": ns.objs["model"].pk,
            "destination": ns.objs["destination"].pk,
            "schedule": "hourly",
            "enabled": "on",
        },
    }[kind]


def urls(ns, kind):
    slug, obj = ns.workspace.slug, ns.objs[kind]
    return {
        "list": reverse("workspaces:resource_list", args=[slug, kind]),
        "create": reverse("workspaces:resource_create", args=[slug, kind]),
        "edit": reverse("workspaces:resource_edit", args=[slug, kind, obj.public_id]),
        "delete": reverse("workspaces:resource_delete", args=[slug, kind, obj.public_id]),
    }


@pytest.mark.parametrize("kind", KINDS)
def test_member_reads_but_gets_403_on_every_write(ws, login, kind):
    client = login(ws.member)
    u = urls(ws, kind)
    page = client.get(u["list"])
    assert page.status_code == 200
    assert ws.objs[kind].name in page.content.decode()
    before = RESOURCE_MODELS[kind].objects.count()
    for action in ("create", "edit", "delete"):
        assert client.get(u[action]).status_code == 403
        response = client.post(u[action], valid_data(ws, kind))
        assert response.status_code == 403
        assert "admin role" in response.content.decode()
    assert RESOURCE_MODELS[kind].objects.count() == before
    assert not AuditEvent.objects.filter(action__startswith="resource.").exists()


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("action", ["list", "create", "edit", "delete"])
def test_stranger_gets_404_on_every_page(ws, login, kind, action):
    client = login(ws.stranger)
    assert client.get(urls(ws, kind)[action]).status_code == 404
    if action != "list":
        assert client.post(urls(ws, kind)[action], valid_data(ws, kind)).status_code == 404
    assert RESOURCE_MODELS[kind].objects.filter(workspace=ws.workspace).count() == 1


def test_signed_out_visitor_is_sent_to_sign_in(ws, client):
    response = client.get(urls(ws, "warehouse")["list"])
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("members:signin"))


def test_object_of_another_workspace_is_404_even_for_its_url_shape(ws, login):
    foreign = WarehouseFactory(workspace=ws.other, name="Theirs")
    client = login(ws.admin)
    url = reverse(
        "workspaces:resource_edit", args=[ws.workspace.slug, "warehouse", foreign.public_id]
    )
    assert client.get(url).status_code == 404
    assert client.post(url, {"name": "Mine now", "kind": "postgres"}).status_code == 404
    foreign.refresh_from_db()
    assert foreign.name == "Theirs"


@pytest.mark.parametrize("kind", KINDS)
def test_admin_create_edit_delete_each_write_exactly_one_event(ws, login, kind):
    client = login(ws.admin)
    model = RESOURCE_MODELS[kind]
    response = client.post(urls(ws, kind)["create"], valid_data(ws, kind, name="Fresh"))
    assert response.status_code == 302, response.content.decode()
    created = model.objects.get(workspace=ws.workspace, name="Fresh")
    events = AuditEvent.objects.filter(action="resource.created", target_id=created.public_id)
    assert events.count() == 1
    assert events.get().details["resource_kind"] == kind
    assert events.get().actor_user == ws.admin

    edit = reverse("workspaces:resource_edit", args=[ws.workspace.slug, kind, created.public_id])
    assert client.get(edit).status_code == 200
    response = client.post(edit, valid_data(ws, kind, name="Renamed"))
    assert response.status_code == 302
    created.refresh_from_db()
    assert created.name == "Renamed"
    updated = AuditEvent.objects.filter(action="resource.updated", target_id=created.public_id)
    assert updated.count() == 1
    assert updated.get().details["changes"]["name"] == {"from": "Fresh", "to": "Renamed"}

    delete = reverse(
        "workspaces:resource_delete", args=[ws.workspace.slug, kind, created.public_id]
    )
    assert client.get(delete).status_code == 200
    assert client.post(delete).status_code == 302
    assert not model.objects.filter(pk=created.pk).exists()
    assert (
        AuditEvent.objects.filter(action="resource.deleted", target_id=created.public_id).count()
        == 1
    )
    assert AuditEvent.objects.filter(target_id=created.public_id).count() == 3


def test_saving_without_changes_records_nothing(ws, login):
    client = login(ws.admin)
    wh = ws.objs["warehouse"]
    data = {"name": wh.name, "kind": wh.kind, "host": wh.host, "database": wh.database}
    assert client.post(urls(ws, "warehouse")["edit"], data).status_code == 302
    assert not AuditEvent.objects.filter(action__startswith="resource.").exists()


def test_deleting_a_resource_in_use_is_refused_and_writes_nothing(ws, login):
    client = login(ws.admin)
    response = client.post(urls(ws, "warehouse")["delete"])
    assert response.status_code == 409
    assert "still used" in response.content.decode()
    assert Warehouse.objects.filter(pk=ws.objs["warehouse"].pk).exists()
    assert not AuditEvent.objects.filter(action__startswith="resource.").exists()


@pytest.mark.parametrize(
    "kind,data,field",
    [
        ("warehouse", {"name": "", "kind": "snowflake"}, "name"),
        ("warehouse", {"name": "X", "kind": "oracle"}, "kind"),
        ("model", {"name": "M", "warehouse": "", "sql": "select 1"}, "warehouse"),
        ("model", {"name": "M", "warehouse": "999999", "sql": ""}, "sql"),
        ("destination", {"name": "x" * 101, "kind": "braze"}, "name"),
        ("sync", {"name": "S", "model": "", "destination": "", "schedule": "daily"}, "model"),
        ("sync", {"name": "S", "schedule": "every second"}, "schedule"),
    ],
)
def test_bad_input_rerenders_with_field_errors_and_changes_nothing(ws, login, kind, data, field):
    client = login(ws.admin)
    counts = {k: m.objects.count() for k, m in RESOURCE_MODELS.items()}
    response = client.post(urls(ws, kind)["create"], data)
    assert response.status_code == 422
    form = response.context["form"]
    assert field in form.errors
    assert 'class="field-error"' in response.content.decode()
    assert {k: m.objects.count() for k, m in RESOURCE_MODELS.items()} == counts
    assert not AuditEvent.objects.filter(action__startswith="resource.").exists()


def test_bad_edit_changes_nothing(ws, login):
    client = login(ws.admin)
    response = client.post(urls(ws, "destination")["edit"], {"name": "", "kind": "braze"})
    assert response.status_code == 422
    ws.objs["destination"].refresh_from_db()
    assert ws.objs["destination"].name == "HubSpot"
    assert ws.objs["destination"].kind == "hubspot"
    assert not AuditEvent.objects.filter(action__startswith="resource.").exists()


def test_related_choices_are_limited_to_the_workspace(ws, login):
    foreign_wh = WarehouseFactory(workspace=ws.other, name="Foreign warehouse")
    client = login(ws.admin)
    page = client.get(urls(ws, "model")["create"])
    assert "Snowflake" in page.content.decode()
    assert "Foreign warehouse" not in page.content.decode()
    response = client.post(
        urls(ws, "model")["create"], {"name": "Sneaky", "warehouse": foreign_wh.pk, "sql": "x"}
    )
    assert response.status_code == 422
    assert "warehouse" in response.context["form"].errors
    assert not DataModel.objects.filter(name="Sneaky").exists()


def test_governance_raises_the_role_for_syncs_and_destinations_only(ws, login):
    org = org_create(actor=ws.owner, name="Acme Corp", workspace=ws.workspace)
    GovernancePolicy.objects.create(
        organization=org, kind="sync_min_role", value={"role": int(Role.OWNER)}
    )
    client = login(ws.admin)
    assert client.get(urls(ws, "sync")["create"]).status_code == 403
    assert (
        client.post(urls(ws, "destination")["create"], valid_data(ws, "destination")).status_code
        == 403
    )
    assert not Destination.objects.filter(name="New one").exists()
    assert client.get(urls(ws, "warehouse")["create"]).status_code == 200
    owner = login(ws.owner)
    assert owner.post(urls(ws, "sync")["create"], valid_data(ws, "sync")).status_code == 302
    assert Sync.objects.filter(name="New one").exists()


def test_list_pages_do_not_query_per_row(ws, login, django_assert_max_num_queries):
    for i in range(8):
        resource_create(
            actor=ws.owner,
            workspace=ws.workspace,
            kind="sync",
            data={
                "name": f"Sync {i}",
                "model": ws.objs["model"],
                "destination": ws.objs["destination"],
                "schedule": "daily",
                "enabled": True,
            },
        )
        SyncRunFactory(sync=Sync.objects.get(name=f"Sync {i}"))
    client = login(ws.member)
    for kind in KINDS:
        with django_assert_max_num_queries(12):
            assert client.get(urls(ws, kind)["list"]).status_code == 200


def test_list_shows_last_run_and_links_to_runs(ws, login):
    SyncRunFactory(sync=ws.objs["sync"], status="failed", rows_processed=0)
    page = login(ws.member).get(urls(ws, "sync")["list"]).content.decode()
    assert "failed" in page
    assert (
        reverse("workspaces:sync_runs", args=[ws.workspace.slug, ws.objs["sync"].public_id]) in page
    )


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_change_and_its_event_commit_in_the_same_transaction(owner):
    """PostgreSQL's xmin is the id of the transaction that wrote a row: both rows share it."""
    from workspaces.services import workspace_create

    workspace = workspace_create(actor=owner, name="Txn")
    wh = resource_create(
        actor=owner, workspace=workspace, kind="warehouse", data={"name": "W", "kind": "postgres"}
    )
    event = AuditEvent.objects.get(action="resource.created", target_id=wh.public_id)
    created_event = AuditEvent.objects.get(action="workspace.created")
    with connection.cursor() as cur:
        cur.execute(f"SELECT xmin::text FROM {Warehouse._meta.db_table} WHERE id = %s", [wh.pk])
        row_txn = cur.fetchone()[0]
        cur.execute(
            f"SELECT id, xmin::text FROM {AuditEvent._meta.db_table} WHERE id IN (%s, %s)",
            [event.pk, created_event.pk],
        )
        txns = dict(cur.fetchall())
    assert txns[event.pk] == row_txn
    assert txns[created_event.pk] != row_txn


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_concurrent_deletes_write_one_event_and_no_error(org_setup):
    import threading

    from django.db import connection as conn

    from audit.models import AuditEvent as Event
    from config.errors import NotFound as Missing
    from tests.factories import DestinationFactory
    from workspaces.services import resource_delete

    dest = DestinationFactory(workspace=org_setup.ws_a)
    barrier, outcomes = threading.Barrier(2), []

    def delete():
        try:
            barrier.wait()
            resource_delete(actor=org_setup.owner, obj=dest)
            outcomes.append("deleted")
        except Missing:
            outcomes.append("already gone")
        finally:
            conn.close()

    threads = [threading.Thread(target=delete) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["already gone", "deleted"]
    assert Event.objects.filter(action="resource.deleted", target_id=dest.public_id).count() == 1
