"""Last Active: recorded on use, at most one write per person per throttle window."""

from datetime import timedelta

import pytest
from django.core.cache import cache
from django.urls import reverse
from django.utils import timezone

from billing.models import DailyActiveMember
from members.activity import note_activity
from members.models import User


@pytest.fixture(autouse=True)
def fresh_cache():
    cache.clear()
    yield
    cache.clear()


def test_page_view_stamps_last_active_once_per_window(org_setup, login):
    s = org_setup
    c = login(s.member)
    page = reverse("org_members:directory", args=[s.org.slug])
    c.get(page)
    first = User.objects.get(pk=s.member.pk).last_active_at
    assert first is not None and timezone.now() - first < timedelta(minutes=1)
    User.objects.filter(pk=s.member.pk).update(last_active_at=first - timedelta(hours=1))
    c.get(page)  # inside the throttle window: no write
    assert User.objects.get(pk=s.member.pk).last_active_at == first - timedelta(hours=1)
    cache.delete(f"last-active:{s.member.pk}")  # the window has passed
    c.get(page)
    assert User.objects.get(pk=s.member.pk).last_active_at > first


def test_note_activity_is_one_update_then_nothing(org_setup, django_assert_num_queries):
    s = org_setup
    with django_assert_num_queries(1):
        note_activity(s.member)
    with django_assert_num_queries(0):
        note_activity(s.member)


def test_workspace_pages_record_a_daily_active_member(org_setup, login):
    s = org_setup
    c = login(s.member)  # member of Staging (ws_b) only
    c.get(reverse("workspaces:overview", args=[s.ws_b.slug]))
    c.get(reverse("workspaces:overview", args=[s.ws_b.slug]))
    c.get(reverse("workspaces:overview", args=[s.ws_a.slug]))  # not a member: 404, no row
    rows = list(DailyActiveMember.objects.values_list("workspace", "user", "day"))
    assert rows == [(s.ws_b.pk, s.member.pk, timezone.localdate())]


def test_api_can_note_workspace_activity(org_setup):
    s = org_setup
    note_activity(s.admin, workspace=s.ws_a)
    note_activity(s.admin, workspace=s.ws_a)
    cache.clear()  # even without the throttle, the row is unique per day
    note_activity(s.admin, workspace=s.ws_a)
    assert DailyActiveMember.objects.filter(user=s.admin, workspace=s.ws_a).count() == 1


def test_anonymous_requests_write_nothing(client, org_setup):
    client.get(reverse("members:signin"))
    assert not User.objects.filter(last_active_at__isnull=False).exists()
