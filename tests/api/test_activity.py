"""Last Active through the real API: every call counts, a call naming a workspace counts there."""

from django.utils import timezone

from billing.models import DailyActiveMember
from members.models import User
from tests.api.test_audit_usage_runs import run_body, run_url
from tests.factories import SyncFactory


def _days(user):
    return list(DailyActiveMember.objects.filter(user=user).values_list("workspace", "day"))


def test_org_api_call_stamps_last_active(org_setup, api):
    s = org_setup
    assert api(s.admin).get(f"/organizations/{s.org.public_id}").status_code == 200
    assert User.objects.get(pk=s.admin.pk).last_active_at is not None
    assert _days(s.admin) == []  # no workspace named: Last Active only, like an org page


def test_workspace_api_call_counts_as_activity_in_that_workspace(org_setup, api):
    s = org_setup
    sync = SyncFactory(workspace=s.ws_b)
    response = api(s.member).post(run_url(s.ws_b, sync), run_body())
    assert response.status_code == 201
    assert User.objects.get(pk=s.member.pk).last_active_at is not None
    assert _days(s.member) == [(s.ws_b.pk, timezone.localdate())]


def test_org_api_call_naming_a_workspace_counts_there(org_setup, api):
    s = org_setup
    url = f"/organizations/{s.org.public_id}/workspaces/{s.ws_a.public_id}"
    assert api(s.owner).delete(url).status_code == 204
    assert _days(s.owner) == [(s.ws_a.pk, timezone.localdate())]


def test_a_workspace_the_caller_is_not_in_records_no_day(org_setup, api):
    s = org_setup
    sync = SyncFactory(workspace=s.ws_a)  # the member is in ws_b only
    assert api(s.member).post(run_url(s.ws_a, sync), run_body()).status_code == 404
    assert _days(s.member) == []
