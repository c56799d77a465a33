"""Read-only pages read the streaming replica; a client that just wrote reads the primary; a
replica that is down, fails mid-page or lags past the bound is not used (config/dbrouter.py).

Stale reads prove where a page read: with the standby's replay paused, a row committed on the
primary is missing from a page that read the replica and present on one that read the primary.
"""

from __future__ import annotations

import contextlib
import time

import pytest
from django.core.cache import cache
from django.db import connections, transaction

from config import dbrouter
from config.roles import Role
from members.services import member_change_role
from members.tokens import token_create
from orgs.services import org_create
from tests.factories import UserFactory, add_to_org
from tests.topology.conftest import cluster, wait_pooled, wait_replayed, wait_streaming
from workspaces.services import workspace_create

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True, databases=["default", "replica"]),
]


@pytest.fixture
def acme(replica_reads):
    owner = UserFactory(full_name="Olivia Owner", email="olivia@acme.test")
    org = org_create(
        actor=owner, name="Acme Corp", workspace=workspace_create(actor=owner, name="Production")
    )
    ada = add_to_org(UserFactory(full_name="Ada Admin", email="ada@acme.test"), org, Role.ADMIN)
    wait_replayed()
    return org, owner, ada


@contextlib.contextmanager
def _sql_on(alias: str):
    """The SQL the app sends on one alias (without connecting it, unlike CaptureQueriesContext)."""
    sql: list[str] = []

    def record(execute, statement, params, many, context):
        sql.append(statement)
        return execute(statement, params, many, context)

    with connections[alias].execute_wrapper(record):
        yield sql


def _directory(client, org):
    with _sql_on("replica") as replica_sql, _sql_on("default") as primary_sql:
        response = client.get(f"/o/{org.slug}/members/")
    assert response.status_code == 200
    return response.content.decode(), replica_sql, primary_sql


def _reads_members(sql: list[str]) -> bool:
    return any('FROM "members_orgmembership"' in q for q in sql)


def test_the_directory_reads_the_replica_through_pgbouncer(client, acme, replica_reads):
    org, owner, _ = acme
    client.force_login(owner)
    with replica_reads.cursor() as cursor:  # the alias is the standby, reached via PgBouncer
        cursor.execute("SELECT pg_is_in_recovery(), inet_server_port()")
        assert cursor.fetchone() == (True, 5433)
    html, replica_sql, primary_sql = _directory(client, org)
    assert "Ada Admin" in html
    assert _reads_members(replica_sql)
    assert _reads_members(primary_sql)  # the access check (org_view) reads the primary


def test_a_replica_read_is_stale_while_replay_is_paused(client, acme, replay_paused):
    org, owner, _ = acme
    client.force_login(owner)
    add_to_org(UserFactory(full_name="Late Larry", email="larry@acme.test"), org)
    html, replica_sql, _ = _directory(client, org)
    assert _reads_members(replica_sql)
    assert "Ada Admin" in html and "Late Larry" not in html  # not replayed yet


def test_a_client_that_wrote_reads_its_write_from_the_primary(client, acme, replay_paused):
    org, owner, ada = acme
    client.force_login(owner)
    response = client.post(
        f"/o/{org.slug}/members/{ada.public_id}/role/", {"role": int(Role.MEMBER)}
    )
    assert response.status_code == 302
    assert response.cookies[dbrouter.WROTE_COOKIE]["max-age"] == 10
    html, replica_sql, primary_sql = _directory(client, org)
    assert replica_sql == [] and _reads_members(primary_sql)
    assert _role_of(ada, html) == "Member"  # its own write, though replay is paused

    # The window over (cookie gone, user's mark gone): the (paused) replica again, stale.
    del client.cookies[dbrouter.WROTE_COOKIE]
    cache.clear()
    html, replica_sql, _ = _directory(client, org)
    assert _reads_members(replica_sql)
    assert _role_of(ada, html) == "Admin"


def _role_of(membership, html: str) -> str:
    row = html.split(f'data-member="{membership.public_id}"', 1)[1].split("</tr>", 1)[0]
    return next(role for role in ("Member", "Admin", "Owner") if f"<td>{role}</td>" in row)


def test_a_replica_behind_the_bound_is_not_used(client, acme, replay_paused, settings):
    org, owner, _ = acme
    client.force_login(owner)
    settings.REPLICA_MAX_LAG_SECONDS = 0.5
    add_to_org(UserFactory(full_name="Late Larry", email="larry@acme.test"), org)
    time.sleep(1.0)  # the primary committed Larry over 0.5 s ago; the replica has not applied it
    html, replica_sql, _ = _directory(client, org)
    assert replica_sql == []
    assert "Late Larry" in html


def test_pages_answer_from_the_primary_when_the_replica_stops(client, acme, settings):
    org, owner, _ = acme
    client.force_login(owner)
    settings.REPLICA_HEALTH_SECONDS = 300  # the health check still says "up" after the stop
    _, replica_sql, _ = _directory(client, org)
    assert _reads_members(replica_sql)
    cluster("stop")
    try:
        add_to_org(UserFactory(full_name="Late Larry", email="larry@acme.test"), org)
        # Mid-page failure: the read on the replica fails, the page is read again on the primary.
        html, _, primary_sql = _directory(client, org)
        assert "Late Larry" in html and _reads_members(primary_sql)
        # Now known down: straight to the primary, also for the audit log and the API list.
        html, replica_sql, _ = _directory(client, org)
        assert replica_sql == [] and "Late Larry" in html
        assert client.get(f"/o/{org.slug}/audit/").status_code == 200
    finally:
        cluster("start")
        wait_streaming()
    dbrouter.forget_health()
    wait_replayed()
    wait_pooled()
    html, replica_sql, _ = _directory(client, org)
    assert _reads_members(replica_sql) and "Late Larry" in html  # back on the replica


def test_reads_in_a_transaction_and_all_writes_go_to_the_primary(acme):
    router = dbrouter.PrimaryReplicaRouter()
    from members.models import OrgMembership

    with dbrouter.replica_reads_in(dbrouter.REPLICA):
        assert router.db_for_read(OrgMembership) == dbrouter.REPLICA
        assert router.db_for_write(OrgMembership) == dbrouter.PRIMARY
        with transaction.atomic():
            assert router.db_for_read(OrgMembership) == dbrouter.PRIMARY
    assert router.db_for_read(OrgMembership) is None  # outside replica views: Django's default


def test_api_lists_read_the_replica_until_the_token_writes(client, acme, replay_paused):
    org, owner, ada = acme
    _, raw = token_create(actor=owner, name="replica test")
    auth = {"HTTP_AUTHORIZATION": f"Bearer {raw}"}
    add_to_org(UserFactory(full_name="Late Larry", email="larry@acme.test"), org)

    def names():
        with _sql_on("replica") as replica_sql:
            r = client.get(f"/api/v1/organizations/{org.public_id}/members", **auth)
        assert r.status_code == 200
        return {m["name"] for m in r.json()["items"]}, replica_sql

    listed, replica_sql = names()
    assert replica_sql and "Ada Admin" in listed and "Late Larry" not in listed  # stale replica
    r = client.put(
        f"/api/v1/organizations/{org.public_id}/members/{ada.public_id}",
        data={"org_role": "member"},
        content_type="application/json",
        **auth,
    )
    assert r.status_code == 200
    client.cookies.pop(dbrouter.WROTE_COOKIE, None)  # API clients keep no cookies
    listed, replica_sql = names()
    assert replica_sql == [] and "Late Larry" in listed  # the user's mark: the primary


def test_a_streamed_export_reads_the_replica_while_it_streams(client, acme, replay_paused):
    org, owner, ada = acme
    client.force_login(owner)
    member_change_role(actor=owner, org=org, membership=ada, role=Role.MEMBER)  # audited
    with _sql_on("replica") as replica_sql:
        response = client.get(f"/o/{org.slug}/audit/export/?format=csv")
        assert response.status_code == 200 and response.streaming
        body = b"".join(response.streaming_content).decode()
    assert any('"audit_auditevent"' in q for q in replica_sql)
    assert "org.created" in body and "member.role_changed" not in body  # not replayed yet
