"""/api/v1/organizations/{org_id}/audit-events, …/usage and /api/v1/workspaces/…/runs."""

from datetime import timedelta

import pytest
from django.utils import timezone

from audit.models import AuditEvent
from billing.rollups import rollup_usage
from config.roles import Role
from members.tokens import token_create
from tests.api.conftest import error_of
from tests.factories import SyncFactory, UserFactory, add_to_workspace
from workspaces.models import SyncRun


def url(ns, suffix=""):
    return f"/organizations/{ns.org.public_id}{suffix}"


# --- audit events ------------------------------------------------------------------------------


def test_audit_events_newest_first_with_cursor(org_setup, api, django_assert_max_num_queries):
    client = api(org_setup.admin)
    with django_assert_max_num_queries(12):
        response = client.get(url(org_setup, "/audit-events"), {"limit": 2})
    assert response.status_code == 200
    page = response.json()
    assert len(page["items"]) == 2 and page["next"]
    first = page["items"][0]
    assert first["id"].startswith("evt_") and first["occurred_at"].endswith("Z")
    assert first["action"] == "workspace.linked" and first["sentence"]
    assert first["actor"]["type"] == "user" and first["actor"]["user_id"].startswith("usr_")
    rest = client.get(page["next"]).json()
    ids = [e["id"] for e in page["items"] + rest["items"]]
    assert (
        len(ids) == len(set(ids)) == AuditEvent.objects.filter(organization=org_setup.org).count()
    )


def test_audit_event_filters(org_setup, api):
    client = api(org_setup.owner)
    client.put(url(org_setup), {"name": "Acme Inc"})  # an event by the token
    response = client.get(url(org_setup, "/audit-events"), {"action": "org.*"})
    actions = [e["action"] for e in response.json()["items"]]
    assert actions == ["org.updated", "org.created"]
    token_event = response.json()["items"][0]
    assert token_event["actor"]["type"] == "token" and token_event["actor"]["token_id"].startswith(
        "tok_"
    )
    response = client.get(
        url(org_setup, "/audit-events"),
        {"workspace": org_setup.ws_b.public_id, "actor": "olivia@acme.test"},
    )
    assert [e["action"] for e in response.json()["items"]] == ["workspace.linked"]
    tomorrow = (timezone.localdate() + timedelta(days=1)).isoformat()
    assert client.get(url(org_setup, "/audit-events"), {"since": tomorrow}).json()["items"] == []


def test_audit_event_bad_filters_are_422(org_setup, api):
    client = api(org_setup.owner)
    for params in (
        {"action": "nope"},
        {"since": "yesterday"},
        {"workspace": "ws_unknown"},
        {"cursor": "zzz"},
        {"until": "9999-12-31"},  # the end of the calendar overflows: still a field error
        {"until": "9999-12-31T23:59:59.999999"},
    ):
        response = client.get(url(org_setup, "/audit-events"), params)
        assert response.status_code == 422, params
        assert error_of(response)["fields"], params


def test_audit_events_wrong_role_and_other_org(org_setup, api):
    response = api(org_setup.member).get(url(org_setup, "/audit-events"))
    assert response.status_code == 403 and "admin" in error_of(response)["message"]
    assert api(org_setup.stranger).get(url(org_setup, "/audit-events")).status_code == 404


# --- usage -------------------------------------------------------------------------------------


def test_usage_from_the_rollups(org_setup, api):
    sync = SyncFactory(workspace=org_setup.ws_a)
    today = timezone.now()
    for status in ("succeeded", "succeeded", "failed"):
        SyncRun.objects.create(
            sync=sync,
            workspace=org_setup.ws_a,
            status=status,
            started_at=today,
            finished_at=today,
            rows_processed=10,
            bytes_processed=100,
        )
    rollup_usage(full=True)
    day = timezone.localdate().isoformat()
    response = api(org_setup.admin).get(url(org_setup, "/usage"), {"from": day, "to": day})
    assert response.status_code == 200
    body = response.json()
    assert body["from"] == day and body["to"] == day
    assert body["totals"]["runs"] == 3 and body["totals"]["rows_processed"] == 30
    assert body["totals"]["syncs"] == 1 and body["totals"]["workspaces"] == 2
    production = next(
        w for w in body["workspaces"] if w["workspace_id"] == org_setup.ws_a.public_id
    )
    assert production["succeeded"] == 2 and production["failed"] == 1


def test_usage_defaults_to_the_last_30_days(org_setup, api):
    body = api(org_setup.owner).get(url(org_setup, "/usage")).json()
    assert body["to"] == timezone.localdate().isoformat() and len(body["daily"]) == 30


def test_usage_bad_dates_are_422(org_setup, api):
    client = api(org_setup.owner)
    for params in (
        {"from": "2024-13-01"},
        {"from": "31/01/2024"},
        {"from": "2024-02-01", "to": "2024-01-01"},
        {"from": "2020-01-01", "to": "2024-01-01"},
        {"from": "9999-12-31"},
    ):
        response = client.get(url(org_setup, "/usage"), params)
        assert response.status_code == 422, params


def test_usage_wrong_role_and_other_org(org_setup, api):
    assert api(org_setup.member).get(url(org_setup, "/usage")).status_code == 403
    assert api(org_setup.stranger).get(url(org_setup, "/usage")).status_code == 404


# --- sync runs ---------------------------------------------------------------------------------


def run_url(ws, sync):
    return f"/workspaces/{ws.public_id}/syncs/{sync.public_id}/runs"


# Runs are reported within 30 days of their start (workspaces.services.SYNC_RUN_MAX_AGE).
RUN_DAY = (timezone.now() - timedelta(days=2)).date().isoformat()


def run_body(**changes):
    body = {
        "status": "succeeded",
        "started_at": f"{RUN_DAY}T14:00:00Z",
        "finished_at": f"{RUN_DAY}T16:05:00+02:00",
        "rows_processed": 1200,
        "bytes_processed": 65536,
        "error": "",
    }
    body.update(changes)
    return body


def test_report_a_run_by_a_workspace_member(org_setup, api):
    sync = SyncFactory(workspace=org_setup.ws_b)
    token, raw = token_create(actor=org_setup.member, name="engine")
    body = run_body(finished_at=f"{RUN_DAY}T16:05:00+02:00")
    response = api(org_setup.member, raw).post(run_url(org_setup.ws_b, sync), body)
    assert response.status_code == 201
    run = response.json()
    assert run["id"].startswith("run_") and run["sync_id"] == sync.public_id
    assert run["finished_at"] == f"{RUN_DAY}T14:05:00Z"
    assert SyncRun.objects.get(public_id=run["id"]).rows_processed == 1200
    event = AuditEvent.objects.get(action="sync.run_succeeded")
    assert event.actor_token_id == token.pk and event.organization == org_setup.org


def test_report_a_failed_run(org_setup, api):
    sync = SyncFactory(workspace=org_setup.ws_a)
    body = run_body(status="failed", error="Destination rejected 3 rows")
    response = api(org_setup.owner).post(run_url(org_setup.ws_a, sync), body)
    assert response.status_code == 201 and response.json()["error"] == "Destination rejected 3 rows"
    assert AuditEvent.objects.filter(action="sync.run_failed").count() == 1


def test_report_run_field_errors_are_422(org_setup, api):
    sync = SyncFactory(workspace=org_setup.ws_a)
    client = api(org_setup.owner)
    for changes in (
        {"status": "running"},
        {"finished_at": f"{RUN_DAY}T13:00:00Z"},  # before it started
        {"started_at": f"{RUN_DAY}T14:00:00"},  # no timezone
        {"started_at": 1717164000},
        {"rows_processed": -1},
        {"rows_processed": "12"},
        {"bytes_processed": True},
        {"error": "bad\x00byte"},
    ):
        response = client.post(run_url(org_setup.ws_a, sync), run_body(**changes))
        assert response.status_code == 422, changes
    assert not SyncRun.objects.exists()


def test_report_run_for_non_members_and_unknown_syncs_is_404(org_setup, api):
    sync = SyncFactory(workspace=org_setup.ws_a)
    # Carol is in the org but has no access to Production.
    assert api(org_setup.member).post(run_url(org_setup.ws_a, sync), run_body()).status_code == 404
    assert (
        api(org_setup.stranger).post(run_url(org_setup.ws_a, sync), run_body()).status_code == 404
    )
    # A sync of another workspace, addressed through one the caller can see.
    add_to_workspace(org_setup.member, org_setup.ws_a, Role.MEMBER)
    assert api(org_setup.member).post(run_url(org_setup.ws_b, sync), run_body()).status_code == 404
    assert not SyncRun.objects.exists()


def test_any_workspace_member_may_report(org_setup, api):
    """Members may run syncs (docs/rules.md §3), so no workspace role is too low: there is no 403 here."""
    sync = SyncFactory(workspace=org_setup.ws_a)
    viewer = UserFactory()
    add_to_workspace(viewer, org_setup.ws_a, Role.MEMBER)
    assert api(viewer).post(run_url(org_setup.ws_a, sync), run_body()).status_code == 201


@pytest.mark.django_db(transaction=True)
def test_a_reported_run_and_its_audit_event_commit_together(org_setup, api):
    # Outside a test transaction, as on a server (the fault run found a 500 here: the service
    # wrote the run in autocommit, then refused to audit outside a transaction).
    sync = SyncFactory(workspace=org_setup.ws_b)
    response = api(org_setup.member).post(run_url(org_setup.ws_b, sync), run_body())
    assert response.status_code == 201
    run_id = response.json()["id"]
    event = AuditEvent.objects.get(action="sync.run_succeeded")
    assert event.details["run_id"] == run_id and SyncRun.objects.filter(public_id=run_id).exists()
