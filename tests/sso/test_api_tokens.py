"""Personal API tokens under required SSO (README › Single sign-on, docs/rules.md §12).

Required SSO governs how a person signs in to the pages; a personal API token is a credential
the person created while signed in, so it keeps working when the org starts requiring SSO.
What stops a token is losing the person: SCIM deactivation revokes it at once, and a
suspended member's token is refused by every org endpoint.
"""

from __future__ import annotations

import pytest

from members.lifecycle import member_suspend
from members.models import ApiToken, OrgMembership
from members.tokens import token_create
from orgs.governance_services import policy_set
from orgs.scim.services import UserAttrs, scim_token_create, scim_user_create, scim_user_replace

pytestmark = pytest.mark.django_db


def call(client, raw, org):
    return client.get(f"/api/v1/organizations/{org.public_id}", HTTP_AUTHORIZATION=f"Bearer {raw}")


def test_tokens_survive_required_sso_but_not_the_person_leaving(saml_org, client):
    ns = saml_org
    scim_token, _ = scim_token_create(actor=ns.owner, org=ns.org, name="Okta")
    dana = scim_user_create(token=scim_token, attrs=UserAttrs(user_name="dana@acme.test"))
    _, dana_raw = token_create(actor=dana.user, name="nightly export")
    _, carol_raw = token_create(actor=ns.member, name="notebook")
    assert call(client, dana_raw, ns.org).status_code == 200
    assert call(client, carol_raw, ns.org).status_code == 200

    policy_set(actor=ns.owner, org=ns.org, kind="require_sso", value={"enabled": True})
    # Carol's password session is sent to SSO on the next page...
    client.force_login(ns.member, backend="members.backends.EmailBackend")
    page = client.get(f"/o/{ns.org.slug}/")
    assert page.status_code == 302 and f"/sso/{ns.org.slug}/login/" in page["Location"]
    client.logout()
    # ...but the tokens both members created keep working for the API.
    for raw in (dana_raw, carol_raw):
        response = call(client, raw, ns.org)
        assert response.status_code == 200 and response.json()["id"] == ns.org.public_id

    # SCIM deactivation: the token is revoked in the same transaction, refused at once.
    scim_user_replace(
        token=scim_token, scim_user=dana, attrs=UserAttrs(user_name="dana@acme.test", active=False)
    )
    response = call(client, dana_raw, ns.org)
    assert response.status_code == 401
    assert not ApiToken.objects.filter(user=dana.user, revoked_at__isnull=True).exists()

    # Suspension: the token authenticates, but the org refuses the suspended member.
    membership = OrgMembership.objects.get(user=ns.member, organization=ns.org)
    member_suspend(actor=ns.owner, org=ns.org, membership=membership)
    response = call(client, carol_raw, ns.org)
    assert response.status_code == 403 and response.json()["error"]["code"] == "suspended"
