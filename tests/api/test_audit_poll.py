"""GET /api/v1/organizations/{org_id}/audit-events?after=<cursor>: polling in commit order.

The concurrency test runs 8 writer threads that each hold their transaction open for a
moment after recording (so commits and `occurred_at` interleave differently) while a poller
thread keeps its cursor; it must see every event exactly once, in seq order.
"""

from __future__ import annotations

import random
import threading
import time

import pytest
from django.db import close_old_connections, connection, transaction
from django.test import Client

from audit.models import AuditEvent
from audit.services import record
from members.tokens import token_create
from orgs.services import org_create, org_update
from tests.api.conftest import error_of
from tests.factories import UserFactory
from workspaces.services import workspace_create


def url(org):
    return f"/organizations/{org.public_id}/audit-events"


def test_poll_from_zero_returns_oldest_first_with_a_cursor(org_setup, api):
    client = api(org_setup.admin)
    all_events = list(
        AuditEvent.objects.filter(chain_key=org_setup.org.pk)
        .order_by("seq")
        .values_list("public_id", "seq")
    )
    page = client.get(url(org_setup.org), {"after": "0", "limit": 3}).json()
    assert [(e["id"], e["seq"]) for e in page["items"]] == all_events[:3]
    assert page["cursor"] == str(all_events[2][1]) and page["next"]
    rest = client.get(page["next"]).json()
    assert [e["id"] for e in rest["items"]] == [i for i, _ in all_events[3:6]]
    # Caught up: no items, the same cursor back.
    last = str(all_events[-1][1])
    empty = client.get(url(org_setup.org), {"after": last}).json()
    assert empty == {"items": [], "next": None, "cursor": last}
    org_update(actor=org_setup.owner, org=org_setup.org, name="Acme 2")
    new = client.get(url(org_setup.org), {"after": last}).json()
    assert [e["action"] for e in new["items"]] == ["org.updated"]
    assert new["cursor"] == str(all_events[-1][1] + 1)


def test_poll_with_a_filter_keeps_commit_order(org_setup, api):
    client = api(org_setup.owner)
    org_update(actor=org_setup.owner, org=org_setup.org, name="Acme 2")
    page = client.get(url(org_setup.org), {"after": "0", "action": "org.*"}).json()
    assert [e["action"] for e in page["items"]] == ["org.created", "org.updated"]


@pytest.mark.parametrize("bad", ["-1", "abc", "1.5", "99999999999999999999999"])
def test_bad_cursor_is_422(org_setup, api, bad):
    response = api(org_setup.owner).get(url(org_setup.org), {"after": bad})
    assert response.status_code == 422
    assert error_of(response)["code"] == "invalid"


def test_after_with_cursor_is_422(org_setup, api):
    response = api(org_setup.owner).get(url(org_setup.org), {"after": "0", "cursor": "x"})
    assert response.status_code == 422
    assert "cursor" in error_of(response)["fields"]


def test_poll_other_org_404_and_member_403(org_setup, api):
    assert api(org_setup.stranger).get(url(org_setup.org), {"after": "0"}).status_code == 404
    assert api(org_setup.member).get(url(org_setup.org), {"after": "0"}).status_code == 403


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_poller_sees_every_event_exactly_once_under_8_concurrent_writers(transactional_db):
    owner = UserFactory()
    org = org_create(actor=owner, name="Race", workspace=workspace_create(actor=owner, name="R"))
    _token, raw = token_create(actor=owner, name="siem")
    writers, per_writer = 8, 25
    errors: list[Exception] = []
    done = threading.Event()
    seen: list[tuple[str, int]] = []
    polls = 0

    def write(n: int):
        rnd = random.Random(n)
        try:
            for i in range(per_writer):
                with transaction.atomic():
                    time.sleep(rnd.random() / 500)
                    for j in range(1 + (i % 2)):
                        record(
                            actor=owner,
                            action="org.updated",
                            organization=org,
                            details={"writer": n, "i": i, "j": j},
                        )
                    time.sleep(rnd.random() / 200)  # commit later, so others queue at the lock
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            close_old_connections()
            connection.close()

    def poll():
        nonlocal polls
        client = Client(headers={"Authorization": f"Bearer {raw}"})
        cursor = "0"
        try:
            while True:
                finished = done.is_set()  # read before polling: one more full pass after
                response = client.get(f"/api/v1{url(org)}", {"after": cursor, "limit": 7})
                assert response.status_code == 200, response.content
                page = response.json()
                polls += 1
                seen.extend((e["id"], e["seq"]) for e in page["items"])
                cursor = page["cursor"]
                if finished and not page["items"]:
                    return
                if not page["items"]:
                    time.sleep(0.002)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            close_old_connections()
            connection.close()

    poller = threading.Thread(target=poll)
    threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
    poller.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    done.set()
    poller.join(timeout=60)
    assert not poller.is_alive()
    assert errors == []

    committed = list(
        AuditEvent.objects.filter(chain_key=org.pk).order_by("seq").values_list("public_id", "seq")
    )
    writes = sum(1 + (i % 2) for i in range(per_writer)) * writers
    assert len(committed) == writes + 2  # + org.created, workspace.linked
    assert seen == committed  # every event once, none missed, none repeated, in seq order
    assert polls > 10  # the poller really ran alongside the writers
