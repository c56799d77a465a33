"""docs/rules.md §3 walked through the pages: every action row × owner / admin / member / non-member /
signed-out visitor gets exactly success, 403 or 404 (signed-out: the sign-in redirect).

A renamed or missing URL fails the test (it never turns into a skip).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest
from django.conf import settings
from django.urls import reverse

from audit.models import AuditEvent
from config.roles import Role
from members.models import OrgMembership
from orgs.models import Organization
from orgs.permissions import ORG_CAPABILITIES, OrgCapability
from orgs.scim.models import GroupMapping
from workspaces.models import Workspace
from workspaces.services import workspace_create

OK, FORBIDDEN, NOT_FOUND = "ok", 403, 404
EVERYONE = {"owner": OK, "admin": OK, "member": OK, "stranger": NOT_FOUND}
ADMINS = {"owner": OK, "admin": OK, "member": FORBIDDEN, "stranger": NOT_FOUND}
OWNERS = {"owner": OK, "admin": FORBIDDEN, "member": FORBIDDEN, "stranger": NOT_FOUND}

VIEW = "view org, member directory"
PENDING = "see pending invitations (invitees' emails, grants, delivery state)"
MANAGE_MEMBERS = (
    "invite, resend/revoke invite, remove member, change roles below owner, modify workspace access"
)
OWNER_ROLE = "grant or remove the owner org role, transfer ownership"
LINK = "link / unlink workspace"
CREATE_DELETE = "create / delete workspace in the org"
USAGE_AUDIT = "usage dashboard, audit log, export"
GOVERNANCE = "governance policies"
BILLING = "billing settings, plan, payment methods"
UPDATE = "update org name/slug"
DELETE = "delete organization"
# Beyond SPEC §3 (issue 17), decided in orgs/permissions.py and the README.
SUSPEND = "suspend / unsuspend member below owner"
REINSTATE = "reinstate a member removed in the last 90 days"
REVIEW = "see access reviews, decide the grants a review assigns to you"
START_REVIEW = "start, finish and read access reviews"
# Not in SPEC §3 (added with enterprise identity, README "Single sign-on"): owners only.
SSO = "verified domains and single sign-on"
# Not a SPEC §3 row: audit streaming (issue 17) is owners-only, like billing (README).
STREAMING = "audit streaming destinations (add, remove, re-enable, replay)"
SCIM = "SCIM provisioning: tokens, group mappings (README)"
SPEC_ROWS = {
    VIEW: OrgCapability.VIEW,
    PENDING: OrgCapability.VIEW_INVITATIONS,
    MANAGE_MEMBERS: OrgCapability.MANAGE_MEMBERS,
    OWNER_ROLE: OrgCapability.MANAGE_OWNERS,
    LINK: OrgCapability.LINK_WORKSPACES,
    CREATE_DELETE: OrgCapability.CREATE_DELETE_WORKSPACES,
    USAGE_AUDIT: OrgCapability.VIEW_USAGE_AUDIT,
    GOVERNANCE: OrgCapability.MANAGE_GOVERNANCE,
    BILLING: OrgCapability.MANAGE_BILLING,
    UPDATE: OrgCapability.UPDATE_ORG,
    DELETE: OrgCapability.DELETE_ORG,
    SUSPEND: OrgCapability.SUSPEND_MEMBERS,
    REINSTATE: OrgCapability.REINSTATE_MEMBERS,
    REVIEW: OrgCapability.REVIEW_ACCESS,
    START_REVIEW: OrgCapability.START_ACCESS_REVIEWS,
    SSO: OrgCapability.MANAGE_SSO,
    STREAMING: OrgCapability.MANAGE_AUDIT_STREAMING,
    SCIM: OrgCapability.MANAGE_SCIM,
}


def _spare_workspace(ns, actor):
    """A workspace the actor owns and that is in no org, so only the org role decides."""
    spare = workspace_create(actor=actor, name="Spare")
    return {"workspace": spare.public_id}


def _transfer_to_member(ns, actor):
    target = OrgMembership.objects.get(organization=ns.org, user=ns.member)
    return {"member": target.public_id, "afterwards": "stay"}


def _destination_to_remove(ns, actor):
    from audit.streaming import stream_destination_add

    destination, _secret = stream_destination_add(
        actor=ns.owner, org=ns.org, name="SIEM", url="https://siem.example.com/"
    )
    return {"action": "remove", "destination": destination.public_id}


@dataclass(frozen=True)
class Action:
    row: str
    url_name: str
    expected: dict
    method: str = "get"
    on_workspace: bool = False  # the URL names a linked workspace (Staging)
    data: Callable | None = None  # (ns, actor) -> POST body
    done: Callable | None = None  # (ns) -> whether the action took effect
    member: str | None = None  # the URL names this person's membership (e.g. "member")

    @property
    def id(self):
        return f"{self.url_name}:{self.method}"


TABLE = [
    Action(VIEW, "orgs:overview", EVERYONE),
    Action(VIEW, "orgs:workspaces", EVERYONE),
    Action(VIEW, "org_members:directory", EVERYONE),
    Action(PENDING, "org_members:invitations", ADMINS),
    Action(MANAGE_MEMBERS, "org_members:invite", ADMINS),
    Action(
        OWNER_ROLE,
        "orgs:transfer",
        OWNERS,
        method="post",
        data=_transfer_to_member,
        done=lambda ns: (
            OrgMembership.objects.get(organization=ns.org, user=ns.member).role == Role.OWNER
        ),
    ),
    Action(
        LINK,
        "orgs:link",
        ADMINS,
        method="post",
        data=_spare_workspace,
        done=lambda ns: Workspace.objects.filter(name="Spare", organization=ns.org).exists(),
    ),
    Action(LINK, "orgs:unlink", ADMINS, on_workspace=True),
    Action(
        LINK,
        "orgs:unlink",
        ADMINS,
        method="post",
        on_workspace=True,
        data=lambda ns, actor: {},
        done=lambda ns: Workspace.objects.get(pk=ns.ws_b.pk).organization_id is None,
    ),
    Action(
        CREATE_DELETE,
        "orgs:workspace_create",
        OWNERS,
        method="post",
        data=lambda ns, actor: {"name": "Fresh"},
        done=lambda ns: Workspace.objects.filter(name="Fresh", organization=ns.org).exists(),
    ),
    Action(CREATE_DELETE, "orgs:workspace_delete", OWNERS, on_workspace=True),
    Action(
        CREATE_DELETE,
        "orgs:workspace_delete",
        OWNERS,
        method="post",
        on_workspace=True,
        data=lambda ns, actor: {"confirm_name": "Staging"},
        done=lambda ns: not Workspace.objects.filter(pk=ns.ws_b.pk).exists(),
    ),
    Action(USAGE_AUDIT, "orgs:usage", ADMINS),
    Action(USAGE_AUDIT, "audit:log", ADMINS),
    Action(USAGE_AUDIT, "audit:export", ADMINS),
    Action(GOVERNANCE, "orgs:governance", ADMINS),
    Action(STREAMING, "audit:streaming", OWNERS),
    Action(
        STREAMING,
        "audit:streaming",
        OWNERS,
        method="post",
        data=_destination_to_remove,
        done=lambda ns: not ns.org.stream_destinations.filter(name="SIEM").exists(),
    ),
    Action(BILLING, "billing:overview", OWNERS),
    Action(SSO, "sso:settings", OWNERS),
    Action(
        SSO,
        "sso:settings",
        OWNERS,
        method="post",
        data=lambda ns, actor: {"action": "add_domain", "domain": "acme.test"},
        done=lambda ns: ns.org.domains.filter(domain="acme.test").exists(),
    ),
    Action(UPDATE, "orgs:settings", ADMINS),
    Action(
        UPDATE,
        "orgs:settings",
        ADMINS,
        method="post",
        data=lambda ns, actor: {"name": "Acme Renamed", "slug": ns.org.slug},
        done=lambda ns: Organization.objects.get(pk=ns.org.pk).name == "Acme Renamed",
    ),
    Action(SCIM, "orgs:scim", OWNERS),
    Action(
        SCIM,
        "orgs:scim",
        OWNERS,
        method="post",
        data=lambda ns, actor: {
            "action": "set_mapping",
            "group_name": "Eng",
            "workspace": ns.ws_b.public_id,
            "role": Role.MEMBER.value,
        },
        done=lambda ns: GroupMapping.objects.filter(organization=ns.org).exists(),
    ),
    Action(
        DELETE,
        "orgs:delete",
        OWNERS,
        method="post",
        data=lambda ns, actor: {"confirm_slug": ns.org.slug},
        done=lambda ns: Organization.objects.get(pk=ns.org.pk).deleted_at is not None,
    ),
    Action(
        SUSPEND,
        "org_members:suspend",
        ADMINS,
        method="post",
        member="member",
        data=lambda ns, actor: {"reason": "leave"},
        done=lambda ns: (  # (suspend)
            OrgMembership.objects.get(organization=ns.org, user=ns.member).suspended_at is not None
        ),
    ),
    Action(REINSTATE, "org_members:removed", ADMINS),
    Action(REVIEW, "reviews:list", EVERYONE),
    Action(START_REVIEW, "reviews:new", OWNERS),
]


def _url(action: Action, ns) -> str:
    kwargs = {"org_slug": ns.org.slug}
    if action.on_workspace:
        kwargs["ws_id"] = ns.ws_b.public_id
    if action.member:
        person = getattr(ns, action.member)
        kwargs["member_id"] = OrgMembership.objects.get(organization=ns.org, user=person).public_id
    return reverse(action.url_name, kwargs=kwargs)


def test_every_spec_row_is_walked_and_matches_the_capability_table():
    assert {a.row for a in TABLE} == set(SPEC_ROWS)
    assert set(SPEC_ROWS.values()) == set(OrgCapability)
    for action in TABLE:
        lowest_allowed = min(
            Role[role.upper()] for role, outcome in action.expected.items() if outcome == OK
        )
        assert ORG_CAPABILITIES[SPEC_ROWS[action.row]] == lowest_allowed, action


@pytest.mark.parametrize("role", ["owner", "admin", "member", "stranger"])
@pytest.mark.parametrize("action", TABLE, ids=[a.id for a in TABLE])
def test_spec_table_through_the_pages(org_setup, login, action, role):
    ns = org_setup
    url = _url(action, ns)
    actor = getattr(ns, role)
    data = action.data(ns, actor) if action.data else None
    client = login(actor)
    events_before = AuditEvent.objects.count()

    response = client.post(url, data) if action.method == "post" else client.get(url)

    expected = action.expected[role]
    if expected == OK:
        if action.method == "post":
            assert response.status_code == 302, response.content[:500]
            assert not response["Location"].startswith(reverse(settings.LOGIN_URL))
            assert action.done(ns)
        else:
            assert response.status_code == 200
    else:
        assert response.status_code == expected
        assert AuditEvent.objects.count() == events_before
        if action.done:
            assert not action.done(ns)
        if expected == FORBIDDEN:
            needed = ORG_CAPABILITIES[SPEC_ROWS[action.row]].label
            assert f"You need the {needed} role" in response.content.decode()
        else:
            assert ns.org.name not in response.content.decode()


@pytest.mark.parametrize("action", TABLE, ids=[a.id for a in TABLE])
def test_signed_out_visitor_is_sent_to_sign_in(org_setup, client, action):
    ns = org_setup
    url = _url(action, ns)
    data = action.data(ns, ns.owner) if action.data else None
    events_before = AuditEvent.objects.count()
    response = client.post(url, data) if action.method == "post" else client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse(settings.LOGIN_URL))
    assert AuditEvent.objects.count() == events_before
    if action.done:
        assert not action.done(ns)


def test_both_levels_refuse_in_one_shape(org_setup):
    """Org and workspace checks share config.roles.require_role: a non-member gets 404 at either
    level, a lower role a 403 naming the role needed and where."""
    from config.errors import NotFound, PermissionDenied
    from orgs.permissions import require_org
    from workspaces.permissions import WorkspaceCapability, require_workspace

    ns = org_setup
    with pytest.raises(NotFound, match="No such organization"):
        require_org(None, OrgCapability.VIEW)
    with pytest.raises(NotFound, match="No such workspace"):
        require_workspace(None, ns.ws_a, WorkspaceCapability.VIEW)
    with pytest.raises(PermissionDenied) as org_refusal:
        require_org(Role.MEMBER, OrgCapability.MANAGE_MEMBERS)
    with pytest.raises(PermissionDenied) as ws_refusal:
        require_workspace(Role.ADMIN, ns.ws_a, WorkspaceCapability.DELETE_WORKSPACE)
    assert org_refusal.value.code == ws_refusal.value.code == "role_required"
    assert org_refusal.value.message == (
        f"You need the admin role or higher in this organization to {OrgCapability.MANAGE_MEMBERS.value}."
    )
    assert ws_refusal.value.message == (
        "You need the owner role or higher in Production to delete this workspace."
    )
    assert require_org(Role.OWNER, OrgCapability.DELETE_ORG) == Role.OWNER
    assert require_workspace(Role.MEMBER, ns.ws_a, WorkspaceCapability.RUN_SYNCS) == Role.MEMBER
