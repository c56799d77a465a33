"""Reads for Organization › Members: the directory, pending invitations, a member's access.

Every function takes the org the viewer was admitted to (orgs.decorators.org_view); an object
of another org fails like a missing one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.db.models import (
    CharField,
    Count,
    Exists,
    ExpressionWrapper,
    F,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
)
from django.db.models.functions import Coalesce, Concat, Lower

from audit.models import AuditEvent
from config.bounds import page_number
from config.errors import NotFound
from config.roles import Role
from members.models import Invitation, OrgMembership, TwoFactorDevice
from orgs.models import Organization
from orgs.scim.models import ScimUser
from orgs.sso.models import VerifiedDomain
from workspaces.models import Workspace, WorkspaceMembership

PAGE_SIZE = 50
STATUSES = ("active", "suspended")

# sort key → the column ordered by. Ties are broken by name, then id, in the same direction,
# so each sort is one walk of an index (members/models.py OrgMembership.Meta.indexes).
SORTS = {
    "name": "sort_name",
    "email": "user__email",
    "role": "role",
    "workspaces": "workspace_count",
    "last_active": "user__last_active_at",
    "joined": "joined_at",
}


@dataclass
class DirectoryQuery:
    """The directory's filters, read from (and written back to) the URL."""

    q: str = ""
    role: str = ""
    workspace: str = ""
    two_factor: str = ""  # "on" | "off" | "" (any); owners and admins only
    status: str = ""  # "", "active" or "suspended"
    sort: str = "name"
    desc: bool = False
    page: int = 1

    @classmethod
    def from_params(cls, params: Mapping[str, str]) -> DirectoryQuery:
        sort = params.get("sort", "name")
        desc = sort.startswith("-")
        sort = sort.lstrip("-")
        page = page_number(params.get("page"))
        role = params.get("role", "")
        return cls(
            q=params.get("q", "").strip()[:100],
            role=role if role in {r.label for r in Role} else "",
            workspace=params.get("workspace", "").strip(),
            two_factor=params.get("two_factor", "")
            if params.get("two_factor") in ("on", "off")
            else "",
            status=params.get("status", "") if params.get("status") in STATUSES else "",
            sort=sort if sort in SORTS else "name",
            desc=desc,
            page=page,
        )

    @property
    def unfiltered(self) -> bool:
        return not (self.q or self.role or self.workspace or self.two_factor or self.status)

    @property
    def sort_param(self) -> str:
        return ("-" if self.desc else "") + self.sort


def directory_members(org: Organization, query: DirectoryQuery) -> QuerySet[OrgMembership]:
    """The org's members with their workspace count in the org, filtered and sorted in SQL.

    `workspace_count` and `sort_name` are columns the database keeps (migration 0007), so no
    sort counts or sorts every member.
    """
    qs = (
        OrgMembership.objects.filter(organization=org)
        .select_related("user")
        .annotate(
            has_two_factor=Exists(
                TwoFactorDevice.objects.filter(user=OuterRef("user"), confirmed_at__isnull=False)
            ),
            # Badges (two subqueries in the same statement, no query per row): the org's IdP
            # provisions the member over SCIM; the address is in a verified domain, so the
            # member signs in with the org's SSO (and is held to it when it is required).
            scim_managed=Exists(
                ScimUser.objects.filter(organization=org, user=OuterRef("user")).exclude(
                    active=False
                )
            ),
            sso_domain=Exists(
                VerifiedDomain.objects.filter(organization=org, verified_at__isnull=False)
                .annotate(
                    at_domain=Concat(Value("@"), "domain"),
                    email=ExpressionWrapper(OuterRef("user__email"), output_field=CharField()),
                )
                .filter(email__iendswith=F("at_domain"))
            ),
        )
    )
    if query.q:
        qs = qs.filter(Q(user__full_name__icontains=query.q) | Q(user__email__icontains=query.q))
    if query.role:
        qs = qs.filter(role=Role.from_name(query.role))
    if query.workspace:
        qs = qs.filter(
            Exists(
                WorkspaceMembership.objects.filter(
                    user=OuterRef("user"),
                    workspace__organization=org,
                    workspace__public_id=query.workspace,
                )
            )
        )
    if query.two_factor:
        qs = qs.filter(has_two_factor=query.two_factor == "on")
    if query.status:
        qs = qs.filter(suspended_at__isnull=query.status == "active")
    keys = dict.fromkeys([SORTS[query.sort], "sort_name", "pk"])
    if query.desc:
        # Only last activity can be empty: people who never signed in sort last either way.
        order = [
            F(k).desc(nulls_last=True) if k == SORTS["last_active"] else F(k).desc() for k in keys
        ]
    else:
        order = [
            F(k).asc(nulls_last=True) if k == SORTS["last_active"] else F(k).asc() for k in keys
        ]
    return qs.order_by(*order)


def directory_counts(org: Organization) -> dict:
    """Tab badges: members and pending invitations, in one query.

    Two scalar subqueries, not two joins: joining both would multiply members by invitations
    (10,000 × 200 rows to count at scale, seconds per page — found by `manage.py bench`).
    """

    def count_of(qs: QuerySet[Any]) -> Subquery:
        return Subquery(
            qs.order_by().values("organization").annotate(c=Count("pk")).values("c"),
            output_field=IntegerField(),
        )

    row = (
        Organization.objects.filter(pk=org.pk)
        .values(
            members=Coalesce(count_of(OrgMembership.objects.filter(organization=org)), Value(0)),
            pending=Coalesce(
                count_of(
                    Invitation.objects.filter(organization=org, status=Invitation.Status.PENDING)
                ),
                Value(0),
            ),
        )
        .first()
    )
    return row or {"members": 0, "pending": 0}


def org_workspaces(org: Organization) -> QuerySet[Workspace]:
    return Workspace.objects.filter(organization=org).order_by(Lower("name"), "pk")


def pending_invitations(org: Organization) -> QuerySet[Invitation]:
    """Pending invitations (expired ones included, so they can be resent), newest first."""
    return (
        Invitation.objects.filter(organization=org, status=Invitation.Status.PENDING)
        .select_related("invited_by")
        .prefetch_related("grants__workspace")
        .order_by("-created_at", "-pk")
    )


def member_for_viewer(org: Organization, public_id: str) -> OrgMembership:
    """The org's membership with this `mem_` id (and its person); any other is a 404."""
    membership = (
        OrgMembership.objects.select_related("user", "suspended_by")
        .filter(organization=org, public_id=public_id)
        .first()
    )
    if membership is None:
        raise NotFound("No such member.")
    return membership


@dataclass
class GrantExplained:
    membership: WorkspaceMembership
    granted_by: str
    granted_at: object
    from_audit: bool


GRANT_ACTIONS = ("member.access_granted", "member.access_changed")


def member_grants(org: Organization, membership: OrgMembership) -> list[GrantExplained]:
    """Each of the member's grants in the org's workspaces, with who granted it and when: the
    latest access_granted/changed event for that person and workspace (docs/rules.md §11), falling back
    to the membership row when the log has none (e.g. access from before the audit log)."""
    grants = list(
        WorkspaceMembership.objects.filter(user=membership.user_id, workspace__organization=org)
        .select_related("workspace", "granted_by")
        .order_by(Lower("workspace__name"), "pk")
    )
    latest: dict[int, AuditEvent] = {}
    if grants:
        events = AuditEvent.objects.filter(
            workspace_id__in=[g.workspace_id for g in grants],
            target_type="user",
            target_id=membership.user.public_id,
            action__in=GRANT_ACTIONS,
        ).order_by("-occurred_at", "-id")
        for e in events.only("workspace_id", "occurred_at", "actor_label", "actor_type"):
            if e.workspace_id is not None:
                latest.setdefault(e.workspace_id, e)
    explained = []
    for g in grants:
        event = latest.get(g.workspace_id)
        if event is not None:
            explained.append(
                GrantExplained(g, event.actor_label or "System", event.occurred_at, True)
            )
        else:
            by = g.granted_by.display_name if g.granted_by else ""
            explained.append(GrantExplained(g, by, g.created_at, False))
    return explained


def member_recent_activity(
    org: Organization, membership: OrgMembership, limit: int = 20
) -> list[AuditEvent]:
    """What the member did in the org and its workspaces, newest first (the audit log's reader)."""
    from audit.selectors import events_for

    events, _next = events_for(org, actor=membership.user_id, limit=limit)
    return events
