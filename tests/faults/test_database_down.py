"""The database is unreachable: pages answer a friendly 503 (API: a JSON error), never a 500."""

from __future__ import annotations

import requests

from bench.infra import Gunicorn, app_env, free_port


def test_unreachable_database_gives_a_503_page_and_json_error():
    dead = f"postgres://postgres@127.0.0.1:{free_port()}/nowhere"
    with Gunicorn(app_env(dead, CONN_MAX_AGE="0"), workers=1) as server:
        # A signed-in looking request: loading its session needs the database.
        page = requests.get(
            server.url + "/o/acme/members/", cookies={"sessionid": "x" * 32}, timeout=20
        )
        api = requests.get(
            server.url + "/api/v1/organizations/org_x/members",
            headers={"Authorization": "Bearer ss_" + "x" * 43},
            timeout=20,
        )
    assert page.status_code == 503
    assert 'data-testid="db-unavailable"' in page.text and "briefly unavailable" in page.text
    assert page.headers["Retry-After"] == "5"
    assert api.status_code == 503
    assert api.json()["error"]["code"] == "service_unavailable"
