"""The public SCIM compliance checker scim2-tester against the running server: 0 failures."""

import pytest
from httpx2 import Client
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_tester import Status, check_server

pytestmark = pytest.mark.django_db(transaction=True)

FAILED = {Status.ERROR, Status.CRITICAL}


def test_scim2_tester_passes_for_users_and_groups(scim_http):
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
