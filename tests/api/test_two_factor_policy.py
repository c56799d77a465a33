"""An org that requires two-factor sign-in refuses its members without it on the API too."""

from datetime import timedelta

from django.utils import timezone

from audit.models import AuditEvent
from orgs.governance_services import policy_set
from orgs.models import GovernancePolicy
from tests.api.conftest import error_of
from tests.factories import SyncFactory
from tests.members.test_two_factor import enrol
from workspaces.models import SyncRun


def _require(ns):
    enrol(ns.owner)  # the admin turning it on must have 2FA first
    policy_set(
        actor=ns.owner,
        org=ns.org,
        kind=GovernancePolicy.Kind.REQUIRE_TWO_FACTOR,
        value={"enabled": True},
    )


def _run_body():
    day = (timezone.now() - timedelta(days=1)).date().isoformat()  # runs are reported recently
    return {
        "status": "succeeded",
        "started_at": f"{day}T10:00:00Z",
        "finished_at": f"{day}T10:05:00Z",
        "rows_processed": 10,
        "bytes_processed": 100,
    }


def test_org_endpoints_refuse_members_without_two_factor(org_setup, api):
    ns = org_setup
    _require(ns)
    response = api(ns.member).get(f"/organizations/{ns.org.public_id}")
    assert response.status_code == 403
    assert error_of(response)["code"] == "two_factor_required"
    assert api(ns.owner).get(f"/organizations/{ns.org.public_id}").status_code == 200
    # A stranger still cannot learn that the org exists.
    assert api(ns.stranger).get(f"/organizations/{ns.org.public_id}").status_code == 404


def test_run_reports_refused_without_two_factor_and_nothing_recorded(org_setup, api):
    ns = org_setup
    sync = SyncFactory(workspace=ns.ws_b)
    _require(ns)
    member_api = api(ns.member)  # creating its token is audited
    events = AuditEvent.objects.count()
    url = f"/workspaces/{ns.ws_b.public_id}/syncs/{sync.public_id}/runs"
    response = member_api.post(url, _run_body())
    assert response.status_code == 403
    assert error_of(response)["code"] == "two_factor_required"
    assert not SyncRun.objects.exists() and AuditEvent.objects.count() == events
    assert api(ns.stranger).post(url, _run_body()).status_code == 404
    assert api(ns.owner).post(url, _run_body()).status_code == 201
