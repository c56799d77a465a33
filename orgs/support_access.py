"""Customer-controlled support access (a governance policy) and the read-only "view as admin".

An org's owners and admins choose whether support staff may look at the org's data: off (the
default), for N hours, or always. Without it support sees only account-level facts in the
admin, and "view as admin" is refused. A view-as grant lives in the engineer's session,
is time-boxed, ends at once when the org turns access off, and every page viewed under it is
an audit event the customer sees. During such a request the audit context is read-only, so
every service write is refused by `audit.services.record()` (and rolled back).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from audit import context as audit_context
from config.errors import PermissionDenied
from orgs.governance import policy_value
from orgs.models import GovernancePolicy, Organization

KIND = GovernancePolicy.Kind.SUPPORT_ACCESS
MAX_HOURS = 24 * 30
SESSION_KEY = "support_view_as"
MAX_VIEW_MINUTES = 120
READ_ONLY_MESSAGE = (
    "This is a read-only support view: nothing can be changed while viewing as an admin."
)


@dataclass(frozen=True)
class SupportAccess:
    granted: bool
    until: datetime | None = None  # None with granted=True: always

    @property
    def label(self) -> str:
        if not self.granted:
            return "Off: support cannot view this organization's data."
        if self.until is None:
            return "Always: support may view this organization's data (read-only)."
        return f"Support may view this organization's data until {self.until:%Y-%m-%d %H:%M} UTC."


def access_from_value(value: dict | None, *, now: datetime | None = None) -> SupportAccess:
    value = value or {}
    mode = value.get("mode")
    if mode == "always":
        return SupportAccess(granted=True)
    if mode == "until":
        until = parse_datetime(value.get("until") or "")
        if until is not None and until > (now or timezone.now()):
            return SupportAccess(granted=True, until=until)
    return SupportAccess(granted=False)


def support_access(org: Organization, *, now: datetime | None = None) -> SupportAccess:
    return access_from_value(policy_value(org.pk, KIND), now=now)


def require_support_access(org: Organization) -> SupportAccess:
    access = support_access(org)
    if not access.granted:
        raise PermissionDenied(
            f"{org.name} has not given support access. An owner or admin can turn it on under "
            "Governance › Support access; until then only account-level facts are visible.",
            code="support_access_required",
        )
    return access


# --- view as admin ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ViewAsGrant:
    org_id: int
    until: datetime
    ticket: str
    reason: str

    def as_session(self) -> dict:
        return {
            "org": self.org_id,
            "until": self.until.isoformat(),
            "ticket": self.ticket,
            "reason": self.reason,
        }

    @property
    def minutes_left(self) -> int:
        return max(0, int((self.until - timezone.now()).total_seconds() // 60))


def grant_view_as(request, grant: ViewAsGrant) -> None:
    request.session[SESSION_KEY] = grant.as_session()


def end_view_as(request) -> ViewAsGrant | None:
    grant = _session_grant(request)
    request.session.pop(SESSION_KEY, None)
    return grant


def _session_grant(request) -> ViewAsGrant | None:
    raw = request.session.get(SESSION_KEY) if hasattr(request, "session") else None
    if not isinstance(raw, dict):
        return None
    until = parse_datetime(raw.get("until") or "")
    if until is None or not isinstance(raw.get("org"), int):
        return None
    return ViewAsGrant(
        org_id=raw["org"],
        until=until,
        ticket=str(raw.get("ticket", "")),
        reason=str(raw.get("reason", "")),
    )


def view_as_for(request, org_slug: str) -> tuple[Organization, ViewAsGrant] | None:
    """The org and the engineer's live view-as grant for it, or None.

    Re-checked on every request: the grant's time box, the engineer's support permission and
    the org's support access (turning access off ends every view at once).
    """
    grant = _session_grant(request)
    user = request.user
    if grant is None or not user.is_authenticated:
        return None
    if not (user.is_active and user.is_staff and user.has_perm("support.view_as_admin")):
        return None
    if grant.until <= timezone.now():
        return None
    org = Organization.objects.alive().filter(pk=grant.org_id, slug=org_slug).first()
    if org is None or not support_access(org).granted:
        return None
    return org, grant


def view_as_until(minutes: int, access: SupportAccess) -> datetime:
    """The end of a view: the asked minutes, never past the org's access window."""
    until = timezone.now() + timedelta(minutes=minutes)
    return min(until, access.until) if access.until else until


def run_read_only(request, org: Organization, grant: ViewAsGrant, view, *args, **kwargs):
    """Record that support viewed this page, then run the view with every write refused."""
    from audit.services import record

    with (
        audit_context.bind(support=audit_context.SupportTicket(grant.ticket, grant.reason)),
        transaction.atomic(),
    ):
        record(
            actor=request.user,
            action="support.org_viewed",
            organization=org,
            target=org,
            details={"page": _page_name(request), "path": request.get_full_path()[:500]},
        )
    request.support_view = grant
    with audit_context.bind(read_only=READ_ONLY_MESSAGE, support=None):
        return view(request, *args, **kwargs)


PAGES = {
    "members": "the member directory",
    "audit": "the audit log",
    "billing": "the billing page",
    "usage": "the usage dashboard",
    "governance": "the governance policies",
    "settings": "the organization settings",
    "workspaces": "the workspaces",
}


def _page_name(request) -> str:
    parts = [p for p in request.path.split("/") if p]
    section = parts[2] if len(parts) > 2 else ""
    return PAGES.get(section, "the organization overview")
