"""OpenID Connect against a real provider process on loopback (tests/idp/oidc_provider.py,
authlib's server side, RS256 ID tokens): SP-initiated sign-in with state, nonce and PKCE,
just-in-time provisioning, and each refusal (state, nonce, signature, audience, issuer,
expiry, unverified email, email outside the verified domains, provider error, provider down)
shown as a clear page with an audit event and nothing created."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from urllib.parse import parse_qs, urlparse

import pytest
from django.contrib.auth import get_user

from audit.models import AuditEvent
from config.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from config.roles import Role
from members.models import OrgMembership, User
from members.tokens import token_create
from orgs.governance_services import policy_set
from orgs.sso.models import OidcConnection
from orgs.sso.oidc_setup import oidc_configure, oidc_remove
from orgs.sso.saml import saml_configure
from orgs.sso.sealed import unseal
from workspaces.models import WorkspaceMembership

NEW_EMAIL = "new.person@acme.test"


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def start(client, ns, next_url="/"):
    """Our login URL → the provider's authorization endpoint (checked), as a browser would."""
    response = client.get(f"/sso/{ns.org.slug}/login/", {"next": next_url})
    assert response.status_code == 302, response.content[:300]
    location = response["Location"]
    assert location.startswith(ns.provider.issuer + "/authorize?")
    return location


def at_provider(location: str) -> str:
    """The browser at the provider (auto-consent): the URL it is sent back to."""
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        opener.open(location, timeout=10)
    except urllib.error.HTTPError as exc:
        assert exc.code == 302, exc.read()[:300]
        return exc.headers["Location"]
    raise AssertionError("the provider did not redirect back")


def back_home(client, callback: str):
    parsed = urlparse(callback)
    assert parsed.path.endswith("/oidc/callback/")
    return client.get(parsed.path + "?" + parsed.query)


def sign_in(client, ns, next_url="/"):
    return back_home(client, at_provider(start(client, ns, next_url)))


def refused(response, reason, *, source="oidc"):
    assert response.status_code == 403, response.content[:300]
    body = response.content.decode()
    assert "Single sign-on refused" in body and f'data-reason="{reason}"' in body
    event = AuditEvent.objects.filter(action="sso.signin_refused").latest("pk")
    assert event.details["reason"] == reason and event.details["source"] == source
    return event


def nothing_created(client, email=NEW_EMAIL):
    assert not User.objects.filter(email=email).exists()
    assert not AuditEvent.objects.filter(action__in=["sso.signed_in", "sso.member_provisioned"])
    assert get_user(client).is_anonymous


# --- the happy path ------------------------------------------------------------------------


def test_authorization_request_carries_state_nonce_and_pkce(oidc_org, client):
    ns = oidc_org
    query = parse_qs(urlparse(start(client, ns)).query)
    assert query["response_type"] == ["code"] and query["client_id"] == ["signalsmith-test"]
    assert query["scope"] == ["openid email profile"]
    assert query["redirect_uri"] == [f"http://testserver/sso/{ns.org.slug}/oidc/callback/"]
    assert query["code_challenge_method"] == ["S256"] and len(query["code_challenge"][0]) == 43
    pending = client.session["oidc_requests"][query["state"][0]]
    assert pending["nonce"] == query["nonce"][0] and len(pending["verifier"]) >= 43
    assert "verifier" not in json.dumps(query)  # only the challenge leaves the browser


def test_new_person_is_provisioned_with_default_role_and_grants(oidc_org, client):
    ns = oidc_org
    policy_set(
        actor=ns.owner,
        org=ns.org,
        kind="default_workspace_grant",
        value={"workspaces": [ns.ws_a.public_id], "role": "member"},
    )
    response = sign_in(client, ns, next_url=f"/o/{ns.org.slug}/")
    assert response.status_code == 302 and response["Location"] == f"/o/{ns.org.slug}/"
    user = User.objects.get(email=NEW_EMAIL)
    assert get_user(client) == user
    assert user.full_name == "New Person" and user.email_verified_at is not None
    assert not user.has_usable_password()
    assert OrgMembership.objects.get(user=user, organization=ns.org).role == Role.MEMBER
    grant = WorkspaceMembership.objects.get(user=user, workspace=ns.ws_a)
    assert grant.role == Role.MEMBER
    assert not WorkspaceMembership.objects.filter(user=user, workspace=ns.ws_b).exists()
    provisioned = AuditEvent.objects.get(action="sso.member_provisioned")
    assert provisioned.details["source"] == "oidc" and provisioned.target_id == user.public_id
    signed_in = AuditEvent.objects.get(action="sso.signed_in")
    assert signed_in.details == {"source": "oidc", "ref": "u-1", "joined": True}
    assert AuditEvent.objects.filter(action="member.access_granted", target_id=user.public_id)
    assert ns.org.pk in client.session["sso_orgs"]  # the session came through the org's SSO

    # Again: the same account, nothing new but the sign-in; the state was used up.
    client.logout()
    assert sign_in(client, ns).status_code == 302 and get_user(client) == user
    assert AuditEvent.objects.filter(action="sso.member_provisioned").count() == 1
    assert AuditEvent.objects.filter(action="sso.signed_in").count() == 2


def test_entra_style_email_domain_owner_verified_claim_counts(oidc_org, client):
    ns = oidc_org
    ns.provider.user(email=NEW_EMAIL, xms_edov=True, name="Entra Person")
    assert sign_in(client, ns).status_code == 302
    assert get_user(client).email == NEW_EMAIL


# --- refusals --------------------------------------------------------------------------------


def test_missing_or_unknown_state_is_refused(oidc_org, client):
    ns = oidc_org
    callback = at_provider(start(client, ns))
    parsed = urlparse(callback)
    query = parse_qs(parsed.query)
    refused(client.get(parsed.path, {"code": query["code"][0]}), "bad_state")
    refused(client.get(parsed.path, {"code": query["code"][0], "state": "forged"}), "bad_state")
    nothing_created(client)


def test_callback_in_another_browser_is_refused(oidc_org, client):
    """Login CSRF: the attacker's own code and state, opened in a victim's browser."""
    from django.test import Client

    ns = oidc_org
    attacker = Client()
    callback = at_provider(start(attacker, ns))
    refused(back_home(client, callback), "bad_state")
    nothing_created(client)


def test_state_is_single_use(oidc_org, client):
    ns = oidc_org
    callback = at_provider(start(client, ns))
    assert back_home(client, callback).status_code == 302
    client.logout()
    refused(back_home(client, callback), "bad_state")


@pytest.mark.parametrize(
    "knobs, reason",
    [
        ({"nonce": "not-the-one-we-sent"}, "nonce_mismatch"),
        ({"other_key": True}, "bad_signature"),
        ({"hs256": True}, "bad_signature"),  # HMAC with the client secret: not the provider
        ({"aud": "another-client"}, "wrong_audience"),
        ({"iss": "http://127.0.0.1:1/another-issuer"}, "wrong_issuer"),
        ({"expired": True}, "expired"),
        ({"token_error": True}, "token_error"),
    ],
)
def test_bad_id_tokens_are_refused(oidc_org, client, knobs, reason):
    ns = oidc_org
    ns.provider.knobs(**knobs)
    refused(sign_in(client, ns), reason)
    nothing_created(client)


def test_unverified_email_is_refused(oidc_org, client):
    ns = oidc_org
    for claims in ({"email_verified": False}, {}):  # false, or not said at all
        ns.provider.user(email=NEW_EMAIL, name="New Person", **claims)
        event = refused(sign_in(client, ns), "email_not_verified")
        nothing_created(client)
    assert "email_verified" not in event.details


def test_email_outside_verified_domains_is_refused(oidc_org, client):
    ns = oidc_org
    ns.provider.user(email="mallory@evil.test", email_verified=True)
    event = refused(sign_in(client, ns), "sso_domain_not_verified")
    assert event.details["email"] == "mallory@evil.test"
    nothing_created(client, "mallory@evil.test")


def test_provider_error_is_refused(oidc_org, client):
    ns = oidc_org
    ns.provider.knobs(deny=True)
    callback = at_provider(start(client, ns))
    assert parse_qs(urlparse(callback).query)["error"] == ["access_denied"]
    response = back_home(client, callback)
    refused(response, "idp_error")
    assert "access_denied" in response.content.decode()
    nothing_created(client)


def test_provider_unreachable_is_a_clear_page(oidc_org, client):
    ns = oidc_org
    callback = at_provider(start(client, ns))
    conn = OidcConnection.objects.get(organization=ns.org)
    # The provider moved away (nothing listens on port 1): the token endpoint is unreachable.
    conn.provider_metadata = {**conn.provider_metadata, "token_endpoint": "http://127.0.0.1:1/t"}
    conn.save()
    response = back_home(client, callback)
    refused(response, "provider_unreachable")
    assert "could not be reached" in response.content.decode()
    nothing_created(client)


def test_refusals_name_oidc_in_the_audit_log(oidc_org, client):
    ns = oidc_org
    ns.provider.knobs(aud="x")
    event = refused(sign_in(client, ns), "wrong_audience")
    assert event.organization_id == ns.org.pk and event.actor_user_id is None


# --- required SSO ----------------------------------------------------------------------------


def test_required_sso_with_oidc(oidc_org, client):
    from tests.factories import PASSWORD

    ns = oidc_org
    policy_set(actor=ns.owner, org=ns.org, kind="require_sso", value={"enabled": True})
    # A member of the verified domain cannot sign in with a password …
    response = client.post("/signin/", {"email": ns.member.email, "password": PASSWORD})
    assert get_user(client).is_anonymous
    assert "requires single sign-on" in response.content.decode()
    # … "Sign in with SSO" finds the org and sends them to the OpenID provider …
    response = client.post("/sso/", {"email": ns.member.email})
    assert response.status_code == 302 and response["Location"].startswith(
        f"/sso/{ns.org.slug}/login/"
    )
    ns.provider.user(email=ns.member.email, email_verified=True, name="Carol Member")
    assert (
        back_home(client, at_provider(start(client, ns, f"/o/{ns.org.slug}/"))).status_code == 302
    )
    assert get_user(client) == ns.member
    # … and the session (marked as SSO for this org) opens the org's pages.
    assert client.get(f"/o/{ns.org.slug}/").status_code == 200
    # The provider cannot be removed, nor turned off, while SSO is required.
    with pytest.raises(Conflict):
        oidc_remove(actor=ns.owner, org=ns.org)
    with pytest.raises(Conflict) as refused:
        oidc_configure(
            actor=ns.owner,
            org=ns.org,
            issuer=ns.provider.issuer,
            client_id="signalsmith-test",
            enabled=False,
        )
    assert refused.value.code == "sso_required"
    ns.conn.refresh_from_db()
    assert ns.conn.enabled


# --- configuration: service, page, API -----------------------------------------------------


def test_configuration_is_owner_only_validated_sealed_and_audited(org_setup, oidc_provider):
    ns = org_setup
    good = {"issuer": oidc_provider.issuer, "client_id": "cid", "client_secret": "shh-123"}
    with pytest.raises(PermissionDenied):
        oidc_configure(actor=ns.admin, org=ns.org, **good)
    with pytest.raises(PermissionDenied):
        oidc_configure(actor=ns.member, org=ns.org, **good)
    with pytest.raises(NotFound):
        oidc_configure(actor=ns.stranger, org=ns.org, **good)
    for bad in [
        {**good, "issuer": ""},
        {**good, "issuer": oidc_provider.issuer + "/nope"},  # no discovery document there
        {**good, "issuer": "http://127.0.0.1:1"},  # nothing listens
        {**good, "client_id": "has space"},
        {**good, "client_secret": ""},  # required the first time
    ]:
        with pytest.raises(ValidationFailed):
            oidc_configure(actor=ns.owner, org=ns.org, **bad)
    assert not AuditEvent.objects.filter(action__startswith="sso.").exists()

    conn = oidc_configure(actor=ns.owner, org=ns.org, **good)
    assert conn.issuer == oidc_provider.issuer and conn.client_id == "cid"
    assert conn.provider_metadata["token_endpoint"] == oidc_provider.issuer + "/token"
    assert (
        "shh-123" not in conn.client_secret_sealed
        and unseal(conn.client_secret_sealed) == "shh-123"
    )
    event = AuditEvent.objects.get(action="sso.oidc_configured")
    assert "shh-123" not in json.dumps(event.details) and event.details["client_secret_changed"]
    # Unchanged: no event; an empty secret keeps the stored one.
    oidc_configure(actor=ns.owner, org=ns.org, **{**good, "client_secret": ""})
    assert AuditEvent.objects.filter(action="sso.oidc_configured").count() == 1
    conn.refresh_from_db()
    assert unseal(conn.client_secret_sealed) == "shh-123"
    # The discovery URL itself is accepted too.
    oidc_configure(
        actor=ns.owner,
        org=ns.org,
        issuer=oidc_provider.issuer + "/.well-known/openid-configuration",
        client_id="cid2",
    )
    assert AuditEvent.objects.filter(action="sso.oidc_configured").count() == 2
    oidc_remove(actor=ns.owner, org=ns.org)
    assert AuditEvent.objects.filter(action="sso.oidc_removed").count() == 1
    assert not OidcConnection.objects.exists()


def test_private_addresses_are_refused_outside_tests(org_setup, oidc_provider, settings):
    ns = org_setup
    settings.SSO_METADATA_ALLOW_PRIVATE = False
    with pytest.raises(ValidationFailed) as exc:
        oidc_configure(
            actor=ns.owner,
            org=ns.org,
            issuer=oidc_provider.issuer,
            client_id="c",
            client_secret="s",
        )
    assert "issuer" in exc.value.fields
    with pytest.raises(ValidationFailed) as exc:
        oidc_configure(
            actor=ns.owner,
            org=ns.org,
            issuer="https://127.0.0.1:9",
            client_id="c",
            client_secret="s",
        )
    assert "private network" in exc.value.message


def test_one_protocol_per_org(org_setup, oidc_provider, idp):
    ns = org_setup
    saml_configure(actor=ns.owner, org=ns.org, metadata_xml=idp.metadata())
    with pytest.raises(Conflict) as exc:
        oidc_configure(
            actor=ns.owner,
            org=ns.org,
            issuer=oidc_provider.issuer,
            client_id="c",
            client_secret="s",
        )
    assert exc.value.code == "sso_protocol_in_use"
    from orgs.sso.saml import saml_remove

    saml_remove(actor=ns.owner, org=ns.org)
    oidc_configure(
        actor=ns.owner, org=ns.org, issuer=oidc_provider.issuer, client_id="c", client_secret="s"
    )
    with pytest.raises(Conflict):
        saml_configure(actor=ns.owner, org=ns.org, metadata_xml=idp.metadata())


def test_settings_page_configures_oidc_owner_only(org_setup, oidc_provider, login):
    ns = org_setup
    url = f"/o/{ns.org.slug}/sso/"
    page = login(ns.owner).get(url)
    body = page.content.decode()
    assert page.status_code == 200 and f"/sso/{ns.org.slug}/oidc/callback/" in body
    assert "openid email profile" in body
    form = {
        "action": "save_oidc",
        "issuer": oidc_provider.issuer,
        "client_id": "page-client",
        "client_secret": "page-secret",
        "enabled": "on",
    }
    bad = login(ns.owner).post(url, {**form, "issuer": "http://127.0.0.1:1"})
    assert bad.status_code == 422 and not OidcConnection.objects.exists()
    saved = login(ns.owner).post(url, form)
    assert saved.status_code == 302
    conn = OidcConnection.objects.get(organization=ns.org)
    assert conn.client_id == "page-client"
    again = login(ns.owner).get(url).content.decode()
    assert "page-secret" not in again and conn.client_secret_sealed not in again
    assert oidc_provider.issuer in again
    for user in (ns.admin, ns.member):
        assert login(user).post(url, {**form, "client_id": "x"}).status_code == 403
        assert login(user).get(url).status_code == 403
    assert login(ns.stranger).get(url).status_code == 404
    assert OidcConnection.objects.get(organization=ns.org).client_id == "page-client"
    removed = login(ns.owner).post(url, {"action": "remove_oidc"})
    assert removed.status_code == 302 and not OidcConnection.objects.exists()


def test_oidc_through_the_api(org_setup, oidc_provider, client):
    ns = org_setup

    def api(user, method, body=None):
        _token, raw = token_create(actor=user, name="oidc")
        return getattr(client, method)(
            f"/api/v1/organizations/{ns.org.public_id}/oidc",
            json.dumps(body) if body is not None else None,
            content_type="application/json",
            headers={"Authorization": f"Bearer {raw}"},
        )

    empty = api(ns.owner, "get").json()
    assert not empty["configured"] and empty["scopes"] == "openid email profile"
    assert empty["redirect_uri"] == f"http://testserver/sso/{ns.org.slug}/oidc/callback/"
    body = {"issuer": oidc_provider.issuer, "client_id": "api-client", "client_secret": "api-s"}
    assert api(ns.admin, "put", body).status_code == 403
    assert api(ns.member, "get").status_code == 403
    assert api(ns.stranger, "get").status_code == 404
    bad = api(ns.owner, "put", {**body, "issuer": "http://127.0.0.1:1"})
    assert bad.status_code == 422 and "issuer" in bad.json()["error"]["fields"]
    done = api(ns.owner, "put", body)
    assert done.status_code == 200, done.content
    out = done.json()
    assert out["configured"] and out["issuer"] == oidc_provider.issuer
    assert out["client_id"] == "api-client" and out["client_secret_set"]
    assert "api-s" not in done.content.decode()
    assert api(ns.owner, "delete").status_code == 204
    assert api(ns.owner, "delete").status_code == 404


def test_sealed_secrets_survive_a_secret_key_rotation(settings):
    from orgs.sso.sealed import seal

    settings.SSO_SEAL_KEY = ""
    settings.SECRET_KEY = "old-key-" + "x" * 40
    sealed = seal("client-secret")
    assert "client-secret" not in sealed and unseal(sealed) == "client-secret"
    settings.SECRET_KEY, settings.SECRET_KEY_FALLBACKS = "new-key-" + "y" * 40, []
    assert unseal(sealed) is None  # the key is gone: an owner must save the secret again
    settings.SECRET_KEY_FALLBACKS = ["old-key-" + "x" * 40]
    assert unseal(sealed) == "client-secret"
