"""A page fuzzer beside schemathesis: every URL pattern of the project, GET and POST, as the org
owner and anonymously, with hostile values — NUL bytes, 10,000-character strings, wrong types,
unknown and malformed ids — in the path, the query string and the form. No response may be a
server error (≥ 500). Plus a 10 MB body to the API and to a page: 413, not 500.

Deterministic (no randomness: the same requests in the same order every run) and bounded
(one pass over the patterns, some 600 requests). Each request
runs in a savepoint that is rolled back, so a POST that succeeds (a removal, signing out)
does not change what the next request sees, and a database error cannot poison the rest.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from urllib.parse import quote

import pytest
from django.db import transaction
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from billing.models import Plan
from config.roles import Role
from members.invitations import member_invite
from members.models import OrgMembership
from members.tokens import token_create
from tests.factories import SyncFactory, UserFactory

NUL = "a\x00b"
LONG = "x" * 10_000
# Wrong types, absurd numbers and dates, unknown and malformed ids, markup, traversal.
ODD = [
    "-1",
    "1e309",
    "99999999999999999999999999",
    "[]",
    "{}",
    "true",
    "0001-01-01",
    "9999-12-31T23:59:59+14:00",
    "2024-02-30",
    "ws_unknown0000000000",
    "mem_" + "z" * 40,
    "../../etc/passwd",
    "<script>alert(1)</script>",
    "ＡＢＣ",
    "",
]
# Query and form keys the pages and the API read (plus every form field a page renders).
COMMON_KEYS = [
    "q",
    "role",
    "workspace",
    "sort",
    "page",
    "since",
    "until",
    "action",
    "actor",
    "cursor",
    "limit",
    "from",
    "to",
    "days",
    "at",
    "format",
    "status",
    "next",
    "name",
    "slug",
    "current",
    "email",
    "emails",
    "org_role",
    "confirm_slug",
    "plan",
]
TEN_MB = 10 * 1024 * 1024
PARAM = re.compile(r"<(?:(?P<converter>[^>:]+):)?(?P<name>[^>]+)>")


def _routes(patterns, prefix=""):
    for p in patterns:
        if isinstance(p, URLResolver):
            yield from _routes(p.url_patterns, prefix + str(p.pattern))
        elif isinstance(p, URLPattern):
            yield prefix + str(p.pattern), p.name or ""


def all_routes() -> list[str]:
    """Every route of the project once (the API declares one route per method: deduplicated).

    Of Django's own admin, the pages that read input: each model's list (search, filters,
    ordering) and change form; its add/delete/history pages are Django's and read ids only.
    """
    seen: dict[str, None] = {}
    for route, name in _routes(get_resolver().url_patterns):
        if route.startswith("admin/") and not (
            name == "index" or name.endswith(("_changelist", "_change"))
        ):
            continue
        seen.setdefault(route, None)
    return list(seen)


def fill(route: str, values: dict[str, str], default: str) -> str:
    def one(match):
        return quote(values.get(match["name"], default), safe="")

    return "/" + PARAM.sub(one, route)


def odd_values(keys: list[str], shift: int) -> dict[str, str]:
    """One ODD value per key, rotated by `shift` so each key meets several of them."""
    return {key: ODD[(i + shift) % len(ODD)] for i, key in enumerate(keys)}


@dataclass
class Fuzz:
    owner_token: str
    real: dict[str, str]
    unknown: dict[str, str]
    owner: object
    superuser: object
    failures: list[str] = field(default_factory=list)
    count: int = 0
    _clients: dict = field(default_factory=dict)

    def _client(self, user) -> Client:
        """One signed-in client per person; its cookies are restored before every request (a
        sign-out or a session rotation in a rolled-back request must not sign it out)."""
        key = getattr(user, "pk", None)
        if key not in self._clients:
            client = Client(raise_request_exception=False)
            if user is not None:
                client.force_login(user, backend="members.backends.EmailBackend")
            self._clients[key] = (client, SimpleCookie(client.cookies.output(header="")))
        client, cookies = self._clients[key]
        client.cookies = SimpleCookie(cookies.output(header=""))
        return client

    def request(self, user, method: str, url: str, data=None, *, api_token: str | None = None):
        client = self._client(user)
        headers = {"Authorization": f"Bearer {api_token}"} if api_token else {}
        with transaction.atomic():
            if method == "GET":
                response = client.get(url, data or {}, headers=headers)
            else:
                response = client.post(url, data or {}, headers=headers)
            transaction.set_rollback(True)
        self.count += 1
        if response.status_code >= 500:
            shown = {k: (v[:40] + "…" if len(v) > 40 else v) for k, v in (data or {}).items()}
            self.failures.append(f"{response.status_code} {method} {url[:160]} {shown}")
        return response


@pytest.fixture
def fuzz(org_setup, settings):
    settings.API_RATE_LIMIT_PER_MINUTE = 10**9
    settings.API_INVITE_RATE_LIMIT_PER_MINUTE = 10**9
    ns = org_setup
    sync = SyncFactory(workspace=ns.ws_a)
    extra = UserFactory()
    from tests.factories import add_to_org

    add_to_org(extra, ns.org, Role.MEMBER)
    (invitation,) = member_invite(
        actor=ns.owner,
        org=ns.org,
        emails=["pending@acme.test"],
        org_role=Role.MEMBER,
        grants={ns.ws_b.pk: Role.MEMBER},
    )
    api_token, raw = token_create(actor=ns.owner, name="fuzzer")
    member_id = OrgMembership.objects.get(user=extra, organization=ns.org).public_id
    plan = Plan.objects.order_by("sort_order").values_list("code", flat=True).first() or "free"
    real = {
        "org_slug": ns.org.slug,
        "org_id": ns.org.public_id,
        "ws_slug": ns.ws_a.slug,
        "workspace_id": ns.ws_a.public_id,
        "ws_id": ns.ws_b.public_id,
        "member_id": member_id,
        "user_id": ns.member.public_id,
        "invitation_id": invitation.public_id,
        "token": invitation.token,
        "token_id": api_token.public_id,
        "sync_id": sync.public_id,
        "public_id": sync.public_id,
        "kind": "syncs",
        "plan_code": plan,
        "pm_id": "1",
        "uidb64": "MQ",
        "rest": "nope",
    }
    unknown = {
        **real,
        "org_slug": "no-such-org",
        "org_id": "org_unknown0000000000",
        "ws_slug": "no-such-workspace",
        "workspace_id": "ws_unknown0000000000",
        "ws_id": "ws_unknown0000000000",
        "member_id": "mem_unknown000000000",
        "user_id": "usr_unknown000000000",
        "invitation_id": "inv_unknown000000000",
        "token": "unknown-token",
        "token_id": "tok_unknown000000000",
        "sync_id": "syn_unknown000000000",
        "public_id": "syn_unknown000000000",
        "plan_code": "no-such-plan",
        "pm_id": "99999999999999999999",
        "uidb64": "zzzz",
    }
    superuser = UserFactory(is_staff=True, is_superuser=True)
    return Fuzz(owner_token=raw, real=real, unknown=unknown, owner=ns.owner, superuser=superuser)


def _form_fields(html: str) -> list[str]:
    names = re.findall(r'name="([^"]+)"', html)
    return [n for n in dict.fromkeys(names) if n != "csrfmiddlewaretoken"]


def test_no_page_or_endpoint_answers_hostile_input_with_a_server_error(fuzz):
    routes = all_routes()
    assert len(routes) > 50  # the walk reached every app, the API and the admin
    for route in routes:
        is_api = route.startswith("api/")
        token = fuzz.owner_token if is_api else None
        if route.startswith("admin/"):
            # Django's admin: one request per page as a superuser, unknown ids, hostile search.
            fuzz.request(fuzz.superuser, "GET", fill(route, {}, "999999"), {"q": LONG, "o": "x"})
            continue

        url = fill(route, fuzz.real, "x")
        plain = fuzz.request(fuzz.owner, "GET", url, api_token=token)
        html = "" if is_api or plain.streaming else plain.content.decode(errors="replace")
        keys = list(dict.fromkeys(COMMON_KEYS + _form_fields(html)))
        # NUL anywhere refuses the whole request, so overlong and odd values travel apart from it.
        hostile = {k: LONG if i % 2 else v for i, (k, v) in enumerate(odd_values(keys, 0).items())}

        # Signed in as the org owner: hostile query strings and forms on the real objects.
        fuzz.request(fuzz.owner, "GET", url, dict.fromkeys(keys, NUL), api_token=token)
        fuzz.request(fuzz.owner, "GET", url, hostile, api_token=token)
        fuzz.request(fuzz.owner, "POST", url, dict.fromkeys(keys, NUL), api_token=token)
        fuzz.request(fuzz.owner, "POST", url, hostile, api_token=token)
        if PARAM.search(route):
            # Unknown ids of the right shape, then junk ids: overlong and NUL.
            fuzz.request(fuzz.owner, "GET", fill(route, fuzz.unknown, "x"), api_token=token)
            fuzz.request(fuzz.owner, "GET", fill(route, {"kind": "syncs"}, LONG), api_token=token)
            fuzz.request(fuzz.owner, "POST", fill(route, {"kind": "syncs"}, NUL), api_token=token)
        # Anonymous: the same hostile values, no session and no token (most pages redirect).
        anonymous = fuzz.request(None, "GET", url, hostile)
        if anonymous.status_code not in (301, 302, 401):
            fuzz.request(None, "POST", url, hostile)

    assert fuzz.failures == [], (
        f"{len(fuzz.failures)} of {fuzz.count} requests answered ≥ 500:\n"
        + "\n".join(fuzz.failures)
    )
    assert 300 < fuzz.count < 1200  # every pattern reached (SCIM added ~16), bounded: one pass


def test_nul_in_search_audit_filters_and_member_paths_is_400(fuzz, org_setup, login):
    """The three places the attack report found: 400 with a message, not 500."""
    client = login(org_setup.owner)
    slug = org_setup.org.slug
    for url, params in (
        (f"/o/{slug}/members/", {"q": NUL}),
        (f"/o/{slug}/audit/", {"actor": NUL}),
        (f"/o/{slug}/audit/", {"workspace": NUL, "action": NUL}),
        (f"/o/{slug}/members/{quote(NUL)}/", {}),
        (f"/w/{org_setup.ws_a.slug}/members/{quote(NUL)}/role/", {}),
    ):
        response = client.get(url, params)
        assert response.status_code == 400, url
        assert "NUL character" in response.content.decode(), url
    # The API answers with the statuses every operation documents: 422 naming the parameter,
    # and 404 for an id holding a NUL (no id does).
    api = Client()
    headers = {"Authorization": f"Bearer {fuzz.owner_token}"}
    org_url = f"/api/v1/organizations/{org_setup.org.public_id}"
    response = api.get(f"{org_url}/audit-events", {"actor": NUL}, headers=headers)
    assert response.status_code == 422
    assert response.json()["error"]["fields"] == {"actor": "Must not contain a NUL character."}
    response = api.get(f"{org_url}/members/{quote(NUL)}", headers=headers)
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"


def test_a_10_mb_body_is_413_on_the_api_and_on_pages(fuzz, org_setup, login):
    body = '{"name": "' + "x" * TEN_MB + '"}'
    api = Client()
    response = api.post(
        "/api/v1/organizations",
        body,
        content_type="application/json",
        headers={"Authorization": f"Bearer {fuzz.owner_token}"},
    )
    assert response.status_code == 413
    error = response.json()["error"]
    assert error["code"] == "payload_too_large" and "at most 2 MB" in error["message"]

    page = login(org_setup.owner).post("/orgs/new/", {"name": "x" * TEN_MB})
    assert page.status_code == 413
    assert "The request is too large: at most 2 MB" in page.content.decode()
    anonymous = Client().post("/signin/", {"email": "x" * TEN_MB, "password": "x"})
    assert anonymous.status_code == 413
