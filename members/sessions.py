"""Signed-in sessions ("devices"): recorded at sign-in, touched at most every few minutes,
listed on the account page, ended one by one, all others, or everywhere; and the idle timeout.

The Django session stays the source of truth for being signed in: ending a session deletes it
from the session store (a second browser is then bounced to sign-in on its next request) and
its UserSession row. The row only describes it (browser, IP, first and last seen).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from importlib import import_module

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import HASH_SESSION_KEY, SESSION_KEY, logout
from django.contrib.auth.signals import user_logged_in, user_logged_out
from django.db import transaction
from django.dispatch import receiver
from django.utils import timezone
from django.utils.crypto import constant_time_compare

from audit.services import record
from config.apikit import public_id_or_none
from config.errors import NotFound
from config.middleware import client_ip
from config.roles import Role
from members.account_models import UserSession
from members.models import OrgMembership, User

SEEN_KEY = "_seen_at"  # epoch seconds of the last noted activity, kept in the session itself
LIST_LIMIT = 100


def idle_seconds() -> int:
    return max(60, int(settings.SESSION_IDLE_TIMEOUT_MINUTES) * 60)


def touch_seconds() -> int:
    """How stale last-seen may get: a few minutes, never more than a quarter of the idle time."""
    return max(1, min(int(settings.SESSION_TOUCH_SECONDS), idle_seconds() // 4))


def _store(session_key: str | None = None):
    return import_module(settings.SESSION_ENGINE).SessionStore(session_key=session_key)


def _user_agent(request) -> str:
    return (request.META.get("HTTP_USER_AGENT") or "").replace("\x00", "")[:300]


# --- recording (sign-in, sign-out, activity) --------------------------------------------------


@receiver(user_logged_in, dispatch_uid="members.sessions.record_signin")
def record_signin(sender, request, user, **kwargs):
    session = getattr(request, "session", None)
    if session is None:
        return
    if not session.session_key:
        session.save()
    now = timezone.now()
    session[SEEN_KEY] = now.timestamp()
    UserSession.objects.update_or_create(
        session_key=session.session_key,
        defaults={
            "user": user,
            "ip": client_ip(request),
            "user_agent": _user_agent(request),
            "created_at": now,
            "last_seen_at": now,
        },
    )


@receiver(user_logged_out, dispatch_uid="members.sessions.forget_signout")
def forget_signout(sender, request, user, **kwargs):
    key = getattr(getattr(request, "session", None), "session_key", None)
    if key:
        UserSession.objects.filter(session_key=key).delete()


def _touch(request, now: float) -> None:
    request.session[SEEN_KEY] = now
    key = request.session.session_key
    seen = timezone.now()
    updated = UserSession.objects.filter(session_key=key, user=request.user).update(
        last_seen_at=seen, ip=client_ip(request)
    )
    if not updated:  # a session from before sessions were recorded
        UserSession.objects.get_or_create(
            session_key=key,
            defaults={
                "user": request.user,
                "ip": client_ip(request),
                "user_agent": _user_agent(request),
                "created_at": seen,
                "last_seen_at": seen,
            },
        )


class SessionActivityMiddleware:
    """Signs out a session idle longer than SESSION_IDLE_TIMEOUT_MINUTES; otherwise notes
    activity at most once per touch interval (one small UPDATE, not a write per request).
    Placed after the authentication and messages middleware."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated and request.session.session_key:
            now = time.time()
            seen = request.session.get(SEEN_KEY)
            if isinstance(seen, int | float) and now - seen > idle_seconds():
                logout(request)
                minutes = idle_seconds() // 60
                messages.info(
                    request, f"You were signed out after {minutes} minutes without activity."
                )
            elif not isinstance(seen, int | float) or now - seen >= touch_seconds():
                _touch(request, now)
        return self.get_response(request)


# --- reading ---------------------------------------------------------------------------------

BROWSERS = [
    ("HeadlessChrome/", "Chrome (headless)"),
    ("Edg/", "Edge"),
    ("OPR/", "Opera"),
    ("Firefox/", "Firefox"),
    ("Chromium/", "Chromium"),
    ("Chrome/", "Chrome"),
    ("CriOS/", "Chrome"),
    ("Safari/", "Safari"),
    ("curl/", "curl"),
]
SYSTEMS = [
    ("iPhone", "iPhone"),
    ("iPad", "iPad"),
    ("Android", "Android"),
    ("Windows", "Windows"),
    ("Mac OS X", "macOS"),
    ("CrOS", "ChromeOS"),
    ("Linux", "Linux"),
]


def describe_agent(user_agent: str) -> str:
    """A short "Firefox on macOS" from a User-Agent header (the list only needs a hint)."""
    ua = user_agent or ""
    browser = next((name for token, name in BROWSERS if token in ua), None)
    system = next((name for token, name in SYSTEMS if token in ua), None)
    if browser and system:
        return f"{browser} on {system}"
    return browser or system or "Unknown browser"


@dataclass
class DeviceSession:
    row: UserSession
    current: bool

    @property
    def public_id(self) -> str:
        return self.row.public_id

    @property
    def browser(self) -> str:
        return describe_agent(self.row.user_agent)


def _alive(session_key: str, user: User) -> bool:
    """The session still signs this person in (not ended, expired, idle or from an old password)."""
    data = _store(session_key).load()
    if str(data.get(SESSION_KEY)) != str(user.pk):
        return False
    if not constant_time_compare(data.get(HASH_SESSION_KEY) or "", user.get_session_auth_hash()):
        return False
    seen = data.get(SEEN_KEY)
    return not (isinstance(seen, int | float) and time.time() - seen > idle_seconds())


def sessions_of(user: User, current_key: str | None = None) -> list[DeviceSession]:
    """The person's live sessions, most recently seen first; the current one marked.

    Rows whose session ended some other way (expired, password changed, signed out by idle
    time) are left out and their description deleted: they no longer sign anyone in.
    """
    rows = list(UserSession.objects.filter(user=user).order_by("-last_seen_at", "-pk")[:LIST_LIMIT])
    live, gone = [], []
    for row in rows:
        if row.session_key == current_key or _alive(row.session_key, user):
            live.append(DeviceSession(row=row, current=row.session_key == current_key))
        else:
            gone.append(row.pk)
    if gone:
        UserSession.objects.filter(pk__in=gone).delete()
    return live


def get_own_session(user: User, session_id: str) -> UserSession:
    row = UserSession.objects.filter(
        user=user, public_id=public_id_or_none(session_id, "ses") or ""
    ).first()
    if row is None:
        raise NotFound("No such session.")
    return row


# --- services --------------------------------------------------------------------------------


def _end(rows: list[UserSession]) -> None:
    for row in rows:
        _store(row.session_key).delete(row.session_key)
    UserSession.objects.filter(pk__in=[r.pk for r in rows]).delete()


def _describe(row: UserSession) -> dict:
    return {"session": row.public_id, "browser": describe_agent(row.user_agent), "ip": row.ip}


@transaction.atomic
def session_end(*, actor: User, session_id: str) -> UserSession:
    """Sign out one of one's own sessions (another person's is a 404)."""
    row = (
        UserSession.objects.select_for_update()
        .filter(user=actor, public_id=public_id_or_none(session_id, "ses") or "")
        .first()
    )
    if row is None:
        raise NotFound("No such session.")
    _end([row])
    record(actor=actor, action="account.session_signed_out", target=actor, details=_describe(row))
    return row


@transaction.atomic
def sessions_end_others(*, actor: User, current_key: str | None) -> int:
    """Sign out every session of one's own but the current one; returns how many ended."""
    rows = list(
        UserSession.objects.select_for_update()
        .filter(user=actor)
        .exclude(session_key=current_key or "")
        .order_by("pk")
    )
    if not rows:
        return 0
    _end(rows)
    record(
        actor=actor,
        action="account.other_sessions_signed_out",
        target=actor,
        details={"count": len(rows)},
    )
    return len(rows)


def end_other_sessions_quietly(request, previous_key: str | None = None) -> int:
    """Part of a credential change (password, two-factor): the other sessions end with it.

    Not an event of its own: the credential change is the change. `previous_key`: the current
    session's key before the change cycled it (update_session_auth_hash does), so this
    device keeps its row.
    """
    current = request.session.session_key
    if previous_key and current and previous_key != current:
        UserSession.objects.filter(session_key=previous_key, user=request.user).update(
            session_key=current
        )
    rows = list(
        UserSession.objects.filter(user=request.user).exclude(
            session_key=request.session.session_key or ""
        )
    )
    _end(rows)
    return len(rows)


@transaction.atomic
def member_sign_out_everywhere(*, actor: User, org, membership: OrgMembership) -> int:
    """Incident response: an org owner/admin ends every session of a member (admins: not of
    an owner). Returns how many sessions ended; with none, nothing is recorded."""
    from members.services import _lock_membership, require_member_management
    from orgs.permissions import OrgCapability, org_role_of, require_org
    from orgs.services import lock_org

    org = lock_org(org)
    actor_role = org_role_of(actor, org)
    require_org(actor_role, OrgCapability.VIEW)
    membership = _lock_membership(org, membership)
    require_member_management(actor_role, Role(membership.role))
    user = membership.user
    rows = list(UserSession.objects.select_for_update().filter(user=user).order_by("pk"))
    if not rows:
        return 0
    _end(rows)
    record(
        actor=actor,
        action="member.signed_out_everywhere",
        organization=org,
        target=user,
        details={"count": len(rows), "membership": membership.public_id},
    )
    return len(rows)
