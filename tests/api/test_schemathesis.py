"""Property-based run of the whole API against its own OpenAPI schema (schemathesis).

Every operation is called with generated inputs (valid and invalid) against real seeded objects,
with a valid token: no response may be a server error, and every response must match the
schema (status documented, body valid, JSON content type). Each call runs in a savepoint that is
rolled back, so a DELETE of the org does not starve the calls after it.
"""

import os

import pytest
import schemathesis
from django.core import signals
from django.core.handlers.wsgi import WSGIHandler
from django.db import close_old_connections, transaction
from schemathesis.config import SchemathesisConfig

from config.roles import Role
from members.invitations import member_invite
from members.models import OrgMembership
from members.tokens import token_create
from tests.conftest import HYPOTHESIS_PROFILE, PROPERTY_SEED
from tests.factories import SyncFactory, UserFactory, add_to_org, add_to_workspace


@pytest.fixture
def seeded(org_setup, settings):
    """Ids for every path parameter, and a token of the org owner."""
    settings.API_RATE_LIMIT_PER_MINUTE = 10**9
    settings.API_INVITE_RATE_LIMIT_PER_MINUTE = 10**9
    ns = org_setup
    sync = SyncFactory(workspace=ns.ws_a)
    extra = UserFactory()
    add_to_org(extra, ns.org, Role.MEMBER)
    add_to_workspace(extra, ns.ws_b, Role.MEMBER, source="org")
    (invitation,) = member_invite(
        actor=ns.owner,
        org=ns.org,
        emails=["pending@acme.test"],
        org_role=Role.MEMBER,
        grants={ns.ws_b.pk: Role.MEMBER},
    )
    _token, raw = token_create(actor=ns.owner, name="schemathesis")
    return {
        "token": raw,
        "path.org_id": ns.org.public_id,
        "path.workspace_id": ns.ws_a.public_id,
        "path.sync_id": sync.public_id,
        "path.member_id": OrgMembership.objects.get(user=extra).public_id,
        "path.invitation_id": invitation.public_id,
    }


@pytest.fixture
def wsgi_app():
    """Django's WSGI app, minus closing the connection after each request (the test's
    transaction lives on it), as Django's own test client does."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield WSGIHandler()
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def api_schema(seeded, wsgi_app):
    config = SchemathesisConfig.from_dict(
        {
            "headers": {"Authorization": f"Bearer {seeded['token']}"},
            "parameters": {k: v for k, v in seeded.items() if k.startswith("path.")},
            # The same examples every run (tests/conftest.py: the seed is in the pytest header).
            "seed": PROPERTY_SEED,
            "generation": {
                # More for a bug hunt: SCHEMATHESIS_MAX_EXAMPLES=200 HYPOTHESIS_PROFILE=explore.
                "max-examples": int(os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", "25")),
                "deterministic": HYPOTHESIS_PROFILE == "ci",
                **({"database": "none"} if HYPOTHESIS_PROFILE == "ci" else {}),
            },
            "phases": {"stateful": {"enabled": False}},
            "suppress-health-check": ["all"],
            "checks": {
                # Schema-valid input may still be refused for what JSON Schema cannot say
                # (a slug taken, a workspace not linked to this org, a stale cursor): 409/422.
                "positive_data_acceptance": {
                    "expected-statuses": ["2XX", 401, 403, 404, 409, 422, 429]
                }
            },
        }
    )
    return schemathesis.openapi.from_wsgi("/api/v1/openapi.json", wsgi_app, config=config)


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
def test_api_conforms_to_its_schema(case):
    print(f"schemathesis seed {PROPERTY_SEED}: {case.method} {case.formatted_path}")
    with transaction.atomic():
        case.call_and_validate()
        transaction.set_rollback(True)
