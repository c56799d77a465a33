"""Setting up SSO reads the provider over the network (OIDC discovery, SAML metadata by URL)
before our transaction opens: a slow or hanging provider must not leave one of our database
connections idle inside a transaction (holding its snapshot and any row it touched) for the
length of the fetch. Checked from PostgreSQL's side, in pg_stat_activity, while the real
provider on loopback is still answering."""

from __future__ import annotations

import threading
import time

import psycopg
import pytest
from django.db import connection

from orgs.sso.oidc_setup import oidc_configure
from orgs.sso.saml import saml_configure

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

SLOW = 1.0  # seconds the provider takes to answer


def idle_in_transaction_while(action) -> tuple[object, list[int]]:
    """Run `action` in a thread; meanwhile count our database's sessions that sit idle inside
    a transaction (from a connection of our own). Returns (action's result, counts seen)."""
    params = connection.get_connection_params()
    outcome: dict = {}

    def run():
        try:
            outcome["result"] = action()
        except Exception as exc:  # reported below, in the test's thread
            outcome["error"] = exc
        finally:
            connection.close()  # this thread's connection

    seen = []
    with psycopg.connect(**{**params, "autocommit": True}) as watcher:
        worker = threading.Thread(target=run)
        worker.start()
        deadline = time.monotonic() + SLOW * 0.8
        while worker.is_alive() and time.monotonic() < deadline:
            seen.append(
                watcher.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                    " AND state LIKE 'idle in transaction%%' AND pid <> pg_backend_pid()"
                ).fetchone()[0]
            )
            time.sleep(0.05)
        worker.join(timeout=30)
    if "error" in outcome:
        raise outcome["error"]
    return outcome["result"], seen


def test_oidc_discovery_is_read_before_the_transaction(org_setup, oidc_provider):
    ns = org_setup
    oidc_provider.control("knobs", {"discovery_delay": SLOW})
    conn, seen = idle_in_transaction_while(
        lambda: oidc_configure(
            actor=ns.owner,
            org=ns.org,
            issuer=oidc_provider.issuer,
            client_id="cid",
            client_secret="shh-123",
        )
    )
    assert conn.issuer == oidc_provider.issuer  # it was stored, after the slow answer
    assert len(seen) >= 5 and max(seen) == 0


def test_saml_metadata_url_is_fetched_before_the_transaction(org_setup, idp, settings):
    ns = org_setup
    settings.SSO_METADATA_ALLOW_PRIVATE = True  # the IdP is on loopback
    idp.metadata_delay = SLOW
    _, stop = idp.serve()
    try:
        conn, seen = idle_in_transaction_while(
            lambda: saml_configure(
                actor=ns.owner, org=ns.org, metadata_xml="", metadata_url=idp.metadata_url
            )
        )
    finally:
        stop()
    assert conn.idp_entity_id == idp.entity_id
    assert len(seen) >= 5 and max(seen) == 0
