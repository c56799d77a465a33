"""/api/v1/me: the token's own account (read, rename) and its browser sessions (list, end).

Changing the email is not offered here: it needs the password and a link opened in a
signed-in browser (Account page), so a leaked token cannot move the account elsewhere.
"""

from datetime import datetime

from ninja import Router, Schema

from config.apikit import Page, errors, text
from config.errors import ValidationFailed
from config.roles import Role
from members import account_services, sessions, two_factor
from members.models import OrgMembership

router = Router(tags=["me"])


class OrgRoleOut(Schema):
    id: str
    name: str
    slug: str
    role: str


class MeOut(Schema):
    id: str
    email: str
    name: str
    date_joined: datetime
    two_factor_enabled: bool
    pending_email: str | None
    organizations: list[OrgRoleOut]


class MeUpdateIn(Schema):
    name: text(account_services.DISPLAY_NAME_MAX_LENGTH * 2) | None = None
    email: text(254) | None = None


class SessionOut(Schema):
    id: str
    browser: str
    user_agent: str
    ip: str | None
    created_at: datetime
    last_seen_at: datetime


class SessionPage(Page):
    items: list[SessionOut]


def _me(user) -> dict:
    pending = account_services.open_email_change(user)
    memberships = (
        OrgMembership.objects.filter(user=user, organization__deleted_at=None)
        .select_related("organization")
        .order_by("organization__name", "pk")
    )
    return {
        "id": user.public_id,
        "email": user.email,
        "name": user.display_name,
        "date_joined": user.date_joined,
        "two_factor_enabled": two_factor.has_two_factor(user),
        "pending_email": pending.new_email if pending else None,
        "organizations": [
            {
                "id": m.organization.public_id,
                "name": m.organization.name,
                "slug": m.organization.slug,
                "role": Role(m.role).label,
            }
            for m in memberships
        ],
    }


@router.get("", response={200: MeOut, **errors()}, summary="Your account")
def get_me(request):
    return _me(request.user)


@router.patch("", response={200: MeOut, **errors(400)}, summary="Change your display name")
def update_me(request, payload: MeUpdateIn):
    """`name`: 1–150 characters after trimming, no control characters. The email changes only
    on the Account page (password and a link to the new address)."""
    if payload.email is not None:
        raise ValidationFailed(
            "The email changes on the Account page: it needs your password and a link sent "
            "to the new address.",
            fields={"email": "Change it on the Account page."},
            code="email_change_needs_browser",
        )
    if payload.name is not None:
        account_services.profile_update(actor=request.user, full_name=payload.name, field="name")
    request.user.refresh_from_db()
    return _me(request.user)


@router.get("/sessions", response={200: SessionPage, **errors()}, summary="Your signed-in sessions")
def list_sessions(request):
    """Browser sessions where you are signed in, most recently seen first (at most 100)."""
    items = [
        {
            "id": s.public_id,
            "browser": s.browser,
            "user_agent": s.row.user_agent,
            "ip": s.row.ip,
            "created_at": s.row.created_at,
            "last_seen_at": s.row.last_seen_at,
        }
        for s in sessions.sessions_of(request.user)
    ]
    return {"items": items, "next": None}


@router.delete(
    "/sessions/{session_id}", response={204: None, **errors(404)}, summary="Sign out a session"
)
def delete_session(request, session_id: str):
    sessions.session_end(actor=request.user, session_id=session_id)
    return 204, None
