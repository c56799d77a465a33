"""Last Active (docs/rules.md §6): at most one write per person per LAST_ACTIVE_THROTTLE_SECONDS.

The cache decides who writes (`cache.add` succeeds for one request per window); the write is a
single UPDATE. Activity inside a workspace also records a DailyActiveMember row, once per
(person, workspace, day), which the usage dashboard counts.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

log = logging.getLogger(__name__)

DAY_KEY_TTL = int(timedelta(hours=26).total_seconds())


def _add(key: str, ttl: int) -> bool:
    """True when this caller claimed the key; a cache outage never breaks a request."""
    try:
        return cache.add(key, 1, ttl)
    except Exception:  # the cache backend's errors vary (Redis down, …)
        log.warning("Activity throttle cache unavailable", exc_info=True)
        return False


def _note_workspace_day(user_id: int, workspace_id: int, now) -> None:
    from billing.models import DailyActiveMember

    day = timezone.localdate(now)
    if _add(f"active-day:{user_id}:{workspace_id}:{day.isoformat()}", DAY_KEY_TTL):
        DailyActiveMember.objects.bulk_create(
            [DailyActiveMember(workspace_id=workspace_id, user_id=user_id, day=day)],
            ignore_conflicts=True,
        )


def note_activity(user, workspace=None) -> None:
    """Record that the person did something now (and, with `workspace`, in that workspace)."""
    if user is None or not getattr(user, "is_authenticated", False):
        return
    from members.models import User

    now = timezone.now()
    if _add(f"last-active:{user.pk}", settings.LAST_ACTIVE_THROTTLE_SECONDS):
        User.objects.filter(pk=user.pk).update(last_active_at=now)
    if workspace is not None:
        _note_workspace_day(user.pk, workspace.pk if hasattr(workspace, "pk") else workspace, now)


def note_workspace_slug_activity(user, ws_slug: str) -> None:
    """Like note_activity, for a request whose URL names a workspace by slug. The membership
    lookup runs only when the day's row is not yet known to exist."""
    _note_named_workspace(user, f"slug:{ws_slug}", {"workspace__slug": ws_slug})


def note_workspace_public_id_activity(user, ws_public_id: str) -> None:
    """Like note_workspace_slug_activity, for an API call whose path names a workspace by id."""
    _note_named_workspace(user, f"id:{ws_public_id}", {"workspace__public_id": ws_public_id})


def _note_named_workspace(user, name: str, lookup: dict) -> None:
    from workspaces.models import WorkspaceMembership

    if len(name) > 100:  # longer than any slug or public id: no such workspace (and no huge key)
        return
    now = timezone.now()
    key = f"active-ws:{user.pk}:{name}:{timezone.localdate(now).isoformat()}"
    if not _add(key, DAY_KEY_TTL):
        return
    workspace_id = (
        WorkspaceMembership.objects.filter(user=user, **lookup)
        .values_list("workspace_id", flat=True)
        .first()
    )
    if workspace_id is None:
        try:
            cache.delete(key)  # not a member (the view will 404); maybe they are later today
        except Exception:
            log.warning("Activity throttle cache unavailable", exc_info=True)
        return
    _note_workspace_day(user.pk, workspace_id, now)


class LastActiveMiddleware:
    """Notes the signed-in person's activity on every page; placed after AuthenticationMiddleware."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated:
            return None
        note_activity(user)
        ws_slug = view_kwargs.get("ws_slug")
        if ws_slug:
            note_workspace_slug_activity(user, ws_slug)
        return None
