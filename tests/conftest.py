"""Shared fixtures: people with roles in an org of linked workspaces, built through the services."""

import os
import random

import pytest
from django.db import connection
from hypothesis import settings as hypothesis_settings

from config.roles import Role
from orgs.services import org_create, workspace_link
from tests.factories import PASSWORD, UserFactory, add_to_org, add_to_workspace
from workspaces.services import workspace_create

# Fails a whole-suite run when a registered audit action is never recorded (tests/audit/coverage.py).
# tests.fixtures_sso: loopback DNS, a pysaml2 IdP, an org with SAML (dns_zone, idp, saml_org),
# the OpenID provider process and an org using it (oidc_provider, oidc_org).
# tests.fixtures_infra: a real SMTP server on loopback and a real Celery worker (smtp_sink, celery_worker).
pytest_plugins = ["tests.audit.coverage", "tests.fixtures_infra", "tests.fixtures_sso"]

# Property tests (Hypothesis, schemathesis) are reproducible: the default "ci" profile draws the
# same examples on every run (derandomized, no example database), so `make test` is never green
# or red by chance. HYPOTHESIS_PROFILE=explore draws new examples each run for local bug hunts;
# its seed is printed in the header and replays with HYPOTHESIS_SEED=<n>.
HYPOTHESIS_PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "ci")
hypothesis_settings.register_profile(
    "ci", derandomize=True, database=None, print_blob=True, deadline=None
)
hypothesis_settings.register_profile("explore", print_blob=True, deadline=None)
hypothesis_settings.load_profile(HYPOTHESIS_PROFILE)
_seed_env = os.environ.get("HYPOTHESIS_SEED", "").strip()
PROPERTY_SEED = (
    int(_seed_env)
    if _seed_env
    else (0 if HYPOTHESIS_PROFILE == "ci" else random.SystemRandom().randrange(2**32))
)


def _property_line() -> str:
    return (
        f"property tests: Hypothesis profile {HYPOTHESIS_PROFILE!r}, seed {PROPERTY_SEED} "
        f"(replay with HYPOTHESIS_PROFILE={HYPOTHESIS_PROFILE} HYPOTHESIS_SEED={PROPERTY_SEED})"
    )


def pytest_configure(config):
    """Exploring: every Hypothesis test draws from the printed seed, so a failure replays."""
    if HYPOTHESIS_PROFILE != "ci" and config.getoption("--hypothesis-seed", None) is None:
        from hypothesis import core

        core.global_force_seed = PROPERTY_SEED


def pytest_report_header(config):
    return _property_line()


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """Also at the end (the header is hidden under -q): how to replay this run's examples."""
    terminalreporter.write_line(_property_line())


def pytest_collection_modifyitems(config, items):
    """Tests marked `postgres` are skipped on SQLite, with the reason."""
    from django.conf import settings

    if settings.DATABASES["default"]["ENGINE"].endswith("postgresql"):
        return
    skip = pytest.mark.skip(reason="needs PostgreSQL (set DATABASE_URL to a PostgreSQL database)")
    for item in items:
        if "postgres" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Each test starts with an empty cache (throttles, rate limits, cached page choices):
    SQLite reuses row ids after a rollback, so cached entries could leak between tests."""
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def password():
    return PASSWORD


@pytest.fixture
def owner(db):
    return UserFactory(full_name="Olivia Owner", email="olivia@acme.test")


@pytest.fixture
def org_setup(db, owner):
    """Acme with two linked workspaces; an org admin, an org member and a stranger.

    Returns a namespace: org, ws_a, ws_b, owner, admin, member, stranger.
    """
    ws_a = workspace_create(actor=owner, name="Production")
    ws_b = workspace_create(actor=owner, name="Staging")
    org = org_create(actor=owner, name="Acme Corp", workspace=ws_a)
    workspace_link(actor=owner, org=org, workspace=ws_b)
    admin = UserFactory(full_name="Bob Admin", email="bob@acme.test")
    member = UserFactory(full_name="Carol Member", email="carol@acme.test")
    stranger = UserFactory(full_name="Sam Stranger", email="sam@elsewhere.test")
    add_to_org(admin, org, Role.ADMIN)
    add_to_org(member, org, Role.MEMBER)
    add_to_workspace(admin, ws_a, Role.ADMIN, source="org")
    add_to_workspace(member, ws_b, Role.MEMBER, source="org")
    ws_a.refresh_from_db()
    ws_b.refresh_from_db()

    class NS:
        pass

    ns = NS()
    ns.org, ns.ws_a, ns.ws_b = org, ws_a, ws_b
    ns.owner, ns.admin, ns.member, ns.stranger = owner, admin, member, stranger
    return ns


@pytest.fixture
def login(client):
    """login(user) signs the test client in as that user and returns the client."""

    def _login(user):
        client.force_login(user, backend="members.backends.EmailBackend")
        return client

    return _login


@pytest.fixture
def is_postgres():
    return connection.vendor == "postgresql"
