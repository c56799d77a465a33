"""Every date and number parameter of the pages and the API is bounded (config/bounds.py):
outside years 2000–2100, or a page number past any list, the answer is a field error (422 JSON
on the API, a message on the page) or the last page — never a 500 from calendar overflow."""

import base64
from datetime import timedelta

import pytest
from django.utils import timezone

from audit.models import AuditEvent
from config.bounds import DAY_RANGE_HINT, MAX_DAY, MIN_DAY, page_number
from config.errors import ValidationFailed
from tests.api.conftest import error_of
from tests.factories import SyncFactory
from workspaces.models import SyncRun
from workspaces.services import (
    SYNC_RUN_MAX_BYTES,
    SYNC_RUN_MAX_ROWS,
    sync_run_record,
)

OUT_OF_RANGE_DAYS = ["0001-01-01", "1999-12-31", "2101-01-01", "9999-12-31"]


def _api_url(ns, suffix):
    return f"/organizations/{ns.org.public_id}{suffix}"


@pytest.mark.parametrize("day", OUT_OF_RANGE_DAYS)
@pytest.mark.parametrize("param", ["from", "to"])
def test_usage_api_days_outside_the_bounds_are_422_with_the_field(org_setup, api, day, param):
    """GET …/usage?from=0001-01-01 was a 500 (the day before year 1 does not exist)."""
    response = api(org_setup.owner).get(_api_url(org_setup, "/usage"), {param: day})
    assert response.status_code == 422
    error = error_of(response)
    assert error["code"] == "invalid" and error["fields"] == {param: DAY_RANGE_HINT}


def test_usage_api_accepts_the_bounds_themselves(org_setup, api):
    client = api(org_setup.owner)
    first = client.get(_api_url(org_setup, "/usage"), {"from": MIN_DAY.isoformat()})
    assert first.status_code == 200 and first.json()["from"] == "2000-01-01"
    last = client.get(_api_url(org_setup, "/usage"), {"to": MAX_DAY.isoformat()})
    assert last.status_code == 200 and last.json()["to"] == "2100-12-31"


@pytest.mark.parametrize("param", ["since", "until"])
@pytest.mark.parametrize(
    "value", ["0001-01-01", "1999-12-31T23:00:00Z", "2101-01-01", "0001-01-01T00:00:00+14:00"]
)
def test_audit_api_moments_outside_the_bounds_are_422(org_setup, api, param, value):
    response = api(org_setup.owner).get(_api_url(org_setup, "/audit-events"), {param: value})
    assert response.status_code == 422
    error = error_of(response)
    assert error["code"] == "invalid" and "2000" in error["fields"][param]


def test_audit_cursor_with_an_absurd_moment_or_id_is_422(org_setup, api):
    client = api(org_setup.owner)
    for raw in ("0001-01-01T00:00:00+00:00|1", "2024-01-01T00:00:00+00:00|99999999999999999999"):
        cursor = base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")
        response = client.get(_api_url(org_setup, "/audit-events"), {"cursor": cursor})
        assert response.status_code == 422, raw
        assert error_of(response)["fields"] == {"cursor": "Not a valid cursor."}


@pytest.mark.parametrize("limit", ["0", "101", "-1", "99999999999999999999999", "ten"])
def test_api_limits_outside_1_to_100_are_422(org_setup, api, limit):
    client = api(org_setup.owner)
    for path in ("/audit-events", "/members", "/invitations"):
        response = client.get(_api_url(org_setup, path), {"limit": limit})
        assert response.status_code == 422, (path, limit)
        assert "limit" in error_of(response)["fields"], (path, limit)


@pytest.mark.parametrize("day", OUT_OF_RANGE_DAYS)
def test_usage_page_out_of_range_days_are_form_errors(org_setup, login, day):
    response = login(org_setup.owner).get(
        f"/o/{org_setup.org.slug}/usage/", {"from": day, "to": "2024-01-31"}
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert DAY_RANGE_HINT in html and "Showing the last 30 days instead" in html


@pytest.mark.parametrize("day", OUT_OF_RANGE_DAYS)
def test_audit_pages_out_of_range_days_are_field_errors(org_setup, login, day):
    client = login(org_setup.owner)
    base = f"/o/{org_setup.org.slug}/audit/"
    for path, params in (
        ("", {"since": day}),
        ("", {"until": day}),
        ("export/", {"since": day}),
        ("access/", {"at": day}),
    ):
        response = client.get(base + path, params)
        assert response.status_code == 422, (path, params)
        if path != "export/":
            assert "in the years 2000–2100" in response.content.decode(), (path, params)


def test_page_numbers_past_any_list_show_the_last_page(org_setup, login):
    client = login(org_setup.owner)
    sync = SyncFactory(workspace=org_setup.ws_a)
    for url in (
        f"/o/{org_setup.org.slug}/members/",
        f"/w/{org_setup.ws_a.slug}/syncs/{sync.public_id}/runs/",
    ):
        for page in ("9" * 5000, "10000000000000000000", "-3", "two", "1e9"):
            assert client.get(url, {"page": page}).status_code == 200, (url, page[:20])


def test_page_number_reads_garbage_as_the_first_page():
    assert page_number(None) == page_number("") == page_number("x") == page_number("-5") == 1
    assert page_number("7") == 7
    assert page_number("9" * 5000) == 1  # more digits than int() reads
    assert page_number(str(10**30)) == 1_000_000


# --- reported sync runs --------------------------------------------------------------------


def _run(**changes):
    now = timezone.now()
    body = {
        "status": "succeeded",
        "started_at": (now - timedelta(hours=2)).isoformat(),
        "finished_at": (now - timedelta(hours=1)).isoformat(),
        "rows_processed": 10,
        "bytes_processed": 100,
    }
    body.update(changes)
    return body


@pytest.mark.parametrize(
    "changes, field",
    [
        ({"rows_processed": 10**18}, "rows_processed"),  # passed before, and broke billing
        ({"rows_processed": SYNC_RUN_MAX_ROWS + 1}, "rows_processed"),
        ({"rows_processed": -1}, "rows_processed"),
        ({"bytes_processed": SYNC_RUN_MAX_BYTES + 1}, "bytes_processed"),
        ({"bytes_processed": 2**63}, "bytes_processed"),
        ({"started_at": "2000-01-01T00:00:00Z"}, "started_at"),
        ({"started_at": "0001-01-01T00:00:00Z"}, "started_at"),
        ({"finished_at": "2100-01-01T00:00:00Z"}, "finished_at"),
        ({"finished_at": "9999-12-31T23:59:59Z"}, "finished_at"),
    ],
)
def test_run_reports_out_of_bounds_are_422_with_the_field(org_setup, api, changes, field):
    sync = SyncFactory(workspace=org_setup.ws_a)
    client = api(org_setup.owner)
    events = AuditEvent.objects.count()
    url = f"/workspaces/{org_setup.ws_a.public_id}/syncs/{sync.public_id}/runs"
    response = client.post(url, _run(**changes))
    assert response.status_code == 422, response.content
    error = error_of(response)
    assert error["code"] == "invalid" and field in error["fields"]
    assert not SyncRun.objects.exists() and AuditEvent.objects.count() == events


def test_run_reports_at_the_ceilings_are_recorded(org_setup, api):
    sync = SyncFactory(workspace=org_setup.ws_a)
    url = f"/workspaces/{org_setup.ws_a.public_id}/syncs/{sync.public_id}/runs"
    body = _run(rows_processed=SYNC_RUN_MAX_ROWS, bytes_processed=SYNC_RUN_MAX_BYTES)
    # Finished "now" by a clock a minute ahead: within the allowed skew.
    body["finished_at"] = (timezone.now() + timedelta(minutes=1)).isoformat()
    assert api(org_setup.owner).post(url, body).status_code == 201
    run = SyncRun.objects.get()
    assert (run.rows_processed, run.bytes_processed) == (SYNC_RUN_MAX_ROWS, SYNC_RUN_MAX_BYTES)


def test_the_service_refuses_every_bad_field_at_once(org_setup):
    """Callers other than the API (tasks, commands) meet the same rule in sync_run_record."""
    sync = SyncFactory(workspace=org_setup.ws_a)
    now = timezone.now()
    with pytest.raises(ValidationFailed) as refused:
        sync_run_record(
            actor=org_setup.owner,
            sync=sync,
            status="succeeded",
            started_at=now - timedelta(days=31),
            finished_at=now + timedelta(days=1),
            rows_processed=10**18,
            bytes_processed=-1,
        )
    assert set(refused.value.fields) == {
        "started_at",
        "finished_at",
        "rows_processed",
        "bytes_processed",
    }
    assert not SyncRun.objects.exists()
