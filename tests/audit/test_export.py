"""Export: exactly the filtered set, as CSV and JSON Lines, streamed, named after the filter."""

import csv
import io
import json

import pytest

from audit.selectors import iter_events
from tests.audit.helpers import days_ago, make_event


@pytest.fixture
def logged(org_setup):
    s = org_setup
    for i in range(30):
        make_event(
            s.org,
            action=["member.joined", "resource.created", "member.access_revoked"][i % 3],
            workspace=[s.ws_a, s.ws_b][i % 2],
            actor=s.admin if i % 4 else s.owner,
            at=days_ago(20 - i / 2),
            details={"i": i, "note": 'comma, "quote"\nnewline'},
        )
    return s


def _body(response) -> str:
    assert response.streaming
    return b"".join(response.streaming_content).decode()


@pytest.mark.parametrize(
    "query",
    ["", "action=member.*", "workspace={ws_a}&action=member.*&since={since}", "actor={admin}"],
)
def test_csv_and_jsonl_equal_the_filtered_set(logged, login, query):
    s = logged
    query = query.format(ws_a=s.ws_a.public_id, since=days_ago(15).date(), admin=s.admin.email)
    client = login(s.owner)
    from django.http import QueryDict

    from audit.selectors import parse_filters

    filters, errors = parse_filters(s.org, QueryDict(query))
    assert not errors
    expected = [e.public_id for e in iter_events(s.org, **filters.selector_kwargs())]
    assert expected

    url = f"/o/{s.org.slug}/audit/export/?{query}&format="
    resp = client.get(url + "csv")
    assert resp.status_code == 200 and resp["Content-Type"].startswith("text/csv")
    assert f"audit-{s.org.slug}-{filters.file_slug()}-" in resp["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(_body(resp))))
    assert [r["id"] for r in rows] == expected

    resp = client.get(url + "jsonl")
    assert resp["Content-Type"] == "application/x-ndjson"
    lines = [json.loads(line) for line in _body(resp).splitlines()]
    assert [x["id"] for x in lines] == expected
    assert [json.loads(r["details"]) for r in rows] == [x["details"] for x in lines]
    assert any(x["details"].get("note") == 'comma, "quote"\nnewline' for x in lines)


def test_export_streams_in_keyset_batches(
    logged, login, django_assert_max_num_queries, monkeypatch
):
    import audit.export

    monkeypatch.setattr(audit.export, "BATCH", 7)  # several batches for 30+ events
    client = login(logged.owner)
    resp = client.get(f"/o/{logged.org.slug}/audit/export/?format=jsonl")
    # Streamed: nothing was read yet beyond the guard's queries; the rows come while iterating.
    with django_assert_max_num_queries(3 * 8):
        body = _body(resp)
    assert len(body.splitlines()) >= 30


def test_export_filename_without_filters_says_all(logged, login):
    resp = login(logged.owner).get(f"/o/{logged.org.slug}/audit/export/?format=csv")
    assert f'filename="audit-{logged.org.slug}-all-' in resp["Content-Disposition"]


def test_bad_export_filter_is_422_and_nothing_streams(logged, login):
    client = login(logged.owner)
    resp = client.get(f"/o/{logged.org.slug}/audit/export/?format=xml&since=nope")
    assert resp.status_code == 422
    assert "since" in resp.content.decode()


def test_export_other_org_404_member_403(logged, login):
    assert login(logged.stranger).get(f"/o/{logged.org.slug}/audit/export/").status_code == 404
    assert login(logged.member).get(f"/o/{logged.org.slug}/audit/export/").status_code == 403
