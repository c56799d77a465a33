"""Page and API parity, generated from the capability table: for every org capability and every
role, the page route and the API route are asked the same question and must give the same
answer (allowed / 403 / 404), and that answer is the table's."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest
from django.urls import reverse

from config.roles import Role
from members.models import OrgMembership
from members.tokens import token_create
from orgs.permissions import ORG_CAPABILITIES, OrgCapability
from tests.factories import UserFactory, add_to_org
from workspaces.services import workspace_create

PAGE_OK = {200, 302}
API_OK = {200, 201, 204}
# Capabilities that have pages but, by design, no API yet; an API added later must join CASES.
NO_API = {
    OrgCapability.MANAGE_GOVERNANCE,
    OrgCapability.MANAGE_BILLING,
    OrgCapability.REVIEW_ACCESS,  # access reviews: pages and CSV/JSON reports only
    OrgCapability.START_ACCESS_REVIEWS,
    OrgCapability.MANAGE_AUDIT_STREAMING,  # destinations: page only (the poll API is a read)
    OrgCapability.MANAGE_SCIM,  # the SCIM protocol (/scim/v2/) is the IdP's API
}


@dataclass(frozen=True)
class Case:
    page: tuple  # (method, url name, kwargs(ns) -> dict, data(ns, actor) -> dict | None)
    api: tuple  # (method, path(ns) -> str, body(ns, actor) -> dict | None)


def _dave(ns):
    return OrgMembership.objects.get(organization=ns.org, user=ns.dave).public_id


def _spare(ns, actor):
    """A workspace the actor owns and that is in no org: only the org role decides."""
    return workspace_create(actor=actor, name=f"Spare of {actor.pk}").public_id


ORG = lambda ns: {"org_slug": ns.org.slug}  # noqa: E731
DAVE = lambda ns: {"org_slug": ns.org.slug, "member_id": _dave(ns)}  # noqa: E731

CASES = {
    OrgCapability.VIEW: [
        Case(
            ("get", "orgs:overview", ORG, None),
            ("get", lambda ns: f"/organizations/{ns.org.public_id}", None),
        ),
        Case(
            ("get", "org_members:directory", ORG, None),
            ("get", lambda ns: f"/organizations/{ns.org.public_id}/members", None),
        ),
    ],
    OrgCapability.VIEW_INVITATIONS: [
        Case(
            ("get", "org_members:invitations", ORG, None),
            ("get", lambda ns: f"/organizations/{ns.org.public_id}/invitations", None),
        )
    ],
    OrgCapability.MANAGE_MEMBERS: [
        Case(
            ("post", "org_members:role", DAVE, lambda ns, a: {"role": int(Role.ADMIN)}),
            (
                "put",
                lambda ns: f"/organizations/{ns.org.public_id}/members/{_dave(ns)}",
                lambda ns, a: {"org_role": "admin"},
            ),
        ),
        Case(
            (
                "post",
                "org_members:invite",
                ORG,
                lambda ns, a: {"emails": "new@acme.test", "org_role": Role.MEMBER},
            ),
            (
                "post",
                lambda ns: f"/organizations/{ns.org.public_id}/members/invite",
                lambda ns, a: {
                    "email": "new@acme.test",
                    "org_role": "member",
                    "workspace_access": [],
                },
            ),
        ),
    ],
    OrgCapability.MANAGE_OWNERS: [
        Case(
            ("post", "org_members:role", DAVE, lambda ns, a: {"role": int(Role.OWNER)}),
            (
                "put",
                lambda ns: f"/organizations/{ns.org.public_id}/members/{_dave(ns)}",
                lambda ns, a: {"org_role": "owner"},
            ),
        )
    ],
    OrgCapability.LINK_WORKSPACES: [
        Case(
            ("post", "orgs:link", ORG, lambda ns, a: {"workspace": _spare(ns, a)}),
            (
                "post",
                lambda ns: f"/organizations/{ns.org.public_id}/workspaces",
                lambda ns, a: {"workspace_id": _spare(ns, a)},
            ),
        )
    ],
    OrgCapability.CREATE_DELETE_WORKSPACES: [
        Case(
            ("post", "orgs:workspace_create", ORG, lambda ns, a: {"name": "Fresh"}),
            (
                "post",
                lambda ns: f"/organizations/{ns.org.public_id}/workspaces",
                lambda ns, a: {"name": "Fresh"},
            ),
        )
    ],
    OrgCapability.VIEW_USAGE_AUDIT: [
        Case(
            ("get", "audit:log", ORG, None),
            ("get", lambda ns: f"/organizations/{ns.org.public_id}/audit-events", None),
        ),
        Case(
            ("get", "orgs:usage", ORG, None),
            ("get", lambda ns: f"/organizations/{ns.org.public_id}/usage", None),
        ),
    ],
    OrgCapability.UPDATE_ORG: [
        Case(
            ("post", "orgs:settings", ORG, lambda ns, a: {"name": "Renamed", "slug": ns.org.slug}),
            (
                "put",
                lambda ns: f"/organizations/{ns.org.public_id}",
                lambda ns, a: {"name": "Renamed"},
            ),
        )
    ],
    OrgCapability.SUSPEND_MEMBERS: [
        Case(
            ("post", "org_members:suspend", DAVE, lambda ns, a: {"reason": "leave"}),
            (
                "post",
                lambda ns: f"/organizations/{ns.org.public_id}/members/{_dave(ns)}/suspend",
                lambda ns, a: {"reason": "leave"},
            ),
        )
    ],
    OrgCapability.REINSTATE_MEMBERS: [
        Case(
            ("get", "org_members:removed", ORG, None),
            ("get", lambda ns: f"/organizations/{ns.org.public_id}/removed-members", None),
        )
    ],
    OrgCapability.MANAGE_SSO: [
        Case(
            ("get", "sso:settings", ORG, None),
            ("get", lambda ns: f"/organizations/{ns.org.public_id}/saml", None),
        ),
        Case(
            ("get", "sso:settings", ORG, None),
            ("get", lambda ns: f"/organizations/{ns.org.public_id}/oidc", None),
        ),
        Case(
            (
                "post",
                "sso:settings",
                ORG,
                lambda ns, a: {"action": "add_domain", "domain": "a.test"},
            ),
            (
                "post",
                lambda ns: f"/organizations/{ns.org.public_id}/domains",
                lambda ns, a: {"domain": "a.test"},
            ),
        ),
    ],
    OrgCapability.DELETE_ORG: [
        Case(
            ("post", "orgs:delete", ORG, lambda ns, a: {"confirm_slug": ns.org.slug}),
            ("delete", lambda ns: f"/organizations/{ns.org.public_id}", None),
        )
    ],
}

PARAMS = [
    pytest.param(cap, i, role, id=f"{cap.name}-{i}-{role}")
    for cap, cases in CASES.items()
    for i in range(len(cases))
    for role in ("owner", "admin", "member", "stranger")
]


def test_every_capability_has_a_page_and_an_api_question():
    assert set(CASES) | NO_API == set(OrgCapability)
    assert not set(CASES) & NO_API


def _expected(cap: OrgCapability, role: str):
    if role == "stranger":
        return 404
    return "ok" if Role[role.upper()] >= ORG_CAPABILITIES[cap] else 403


def _outcome(status: int, ok: set[int]):
    return "ok" if status in ok else status


@pytest.mark.parametrize("cap,index,role", PARAMS)
def test_api_gives_the_tables_answer(org_setup, client, cap, index, role):
    ns = org_setup
    ns.dave = UserFactory(email="dave@acme.test", full_name="Dave")
    add_to_org(ns.dave, ns.org, Role.MEMBER)
    actor = getattr(ns, role)
    case = CASES[cap][index]
    expected = _expected(cap, role)

    # Page and API each get a fresh database (the question may change state, e.g. delete the
    # org); both must give the table's answer, hence the same one.
    method, path, body = case.api
    _token, raw = token_create(actor=actor, name="parity")

    payload = json.dumps(body(ns, actor)) if body else None
    response = getattr(client, method)(
        f"/api/v1{path(ns)}",
        payload,
        content_type="application/json",
        headers={"Authorization": f"Bearer {raw}"},
    )
    api_answer = _outcome(response.status_code, API_OK)
    assert api_answer == expected, (cap, role, "api", response.content[:300])


@pytest.mark.parametrize("cap,index,role", PARAMS)
def test_page_gives_the_tables_answer(org_setup, client, cap, index, role):
    ns = org_setup
    ns.dave = UserFactory(email="dave@acme.test", full_name="Dave")
    add_to_org(ns.dave, ns.org, Role.MEMBER)
    actor = getattr(ns, role)
    case = CASES[cap][index]
    method, name, kwargs, data = case.page
    client.force_login(actor, backend="members.backends.EmailBackend")
    url = reverse(name, kwargs=kwargs(ns))
    response = client.post(url, data(ns, actor)) if method == "post" else client.get(url)
    page_answer = _outcome(response.status_code, PAGE_OK)
    if page_answer == "ok" and method == "post":
        assert not response.headers.get("Location", "").startswith(reverse("members:signin"))
    assert page_answer == _expected(cap, role), (cap, role, "page", response.content[:300])
