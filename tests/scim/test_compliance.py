"""The public SCIM compliance checker scim2-tester against the running server: 0 failures.

scim2-tester makes up email addresses at random domains (`<uuid>@<uuid>.com`). SCIM provisions
only addresses in the org's verified domains, so its generator is told to use acme.test, the
domain the test org verified (the checker's own data, not our code, is configured).
"""

import re

import pytest
import scim2_tester.checkers.patch_add
import scim2_tester.checkers.patch_replace
import scim2_tester.filling
from httpx2 import Client
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_tester import Status, check_server

from audit.models import AuditEvent

pytestmark = pytest.mark.django_db(transaction=True)

FAILED = {Status.ERROR, Status.CRITICAL}


RANDOM_EMAIL = re.compile(r"^([^@]+)@[0-9a-f-]{36}\.com$")


@pytest.fixture
def emails_in_acme_test(monkeypatch):
    original = scim2_tester.filling.generate_random_value

    def in_acme(value):
        if isinstance(value, list):
            return [in_acme(v) for v in value]
        if isinstance(value, str) and RANDOM_EMAIL.match(value):
            return RANDOM_EMAIL.sub(r"\1@acme.test", value)
        return value

    def generate(*args, **kwargs):
        return in_acme(original(*args, **kwargs))

    for module in (
        scim2_tester.filling,
        scim2_tester.checkers.patch_add,
        scim2_tester.checkers.patch_replace,
    ):
        monkeypatch.setattr(module, "generate_random_value", generate)


def test_scim2_tester_passes_for_users_and_groups(scim_http, emails_in_acme_test):
    headers = {"Authorization": f"Bearer {scim_http.raw}"}
    with Client(base_url=scim_http.base, headers=headers, timeout=30) as http:
        results = check_server(SyncSCIMClient(http), raise_exceptions=False)
    failures = [f"{r.title} [{r.resource_type}]: {r.reason}" for r in results if r.status in FAILED]
    ran = {r.title for r in results if r.status == Status.SUCCESS}
    assert not failures, "\n".join(failures)
    # The checker really exercised the CRUD of both resource types.
    assert len(ran) >= 10, ran
    types = {r.resource_type for r in results if r.status == Status.SUCCESS}
    assert {"User", "Group"} <= types
    # Its users really were provisioned (with addresses in the verified domain), none refused.
    provisioned = AuditEvent.objects.filter(
        organization=scim_http.org, action="scim.user_provisioned", details__account=True
    )
    assert provisioned.exists()
    assert not AuditEvent.objects.filter(action="scim.user_refused").exists()
