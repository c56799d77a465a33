"""Required single sign-on: password sign-in refused for people in the org's verified domains,
owners' break-glass (password + 2FA, audited), the policy's preconditions, and the pages."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user
from django.urls import reverse

from audit.models import AuditEvent
from config.errors import Conflict
from orgs.governance import policies_for_workspace
from orgs.governance_services import policy_delete, policy_set
from orgs.sso.saml import saml_remove
from tests.factories import PASSWORD, UserFactory
from tests.members.test_two_factor import enrol, next_code

SIGNIN = reverse("members:signin")


def require_sso(ns):
    return policy_set(actor=ns.owner, org=ns.org, kind="require_sso", value={"enabled": True})


def test_policy_needs_a_working_idp_and_a_verified_domain(org_setup, verified):
    ns = org_setup
    with pytest.raises(Conflict) as exc:
        require_sso(ns)
    assert exc.value.code == "sso_not_configured"
    assert not AuditEvent.objects.filter(action__startswith="governance.").exists()


def test_policy_needs_a_verified_domain(org_setup, idp):
    from orgs.sso.saml import saml_configure

    ns = org_setup
    saml_configure(actor=ns.owner, org=ns.org, metadata_xml=idp.metadata())
    with pytest.raises(Conflict) as exc:
        require_sso(ns)
    assert exc.value.code == "no_verified_domain"


def test_password_refused_for_domain_people_while_required(saml_org, client):
    ns = saml_org
    # Optional SSO: passwords still work.
    response = client.post(SIGNIN, {"email": ns.member.email, "password": PASSWORD})
    assert response.status_code == 302
    client.logout()

    require_sso(ns)
    rules = dict(policies_for_workspace(ns.ws_b))
    assert rules["Single sign-on"].startswith("Required")
    for person in (ns.member, ns.admin):
        response = client.post(SIGNIN, {"email": person.email, "password": PASSWORD})
        assert response.status_code == 403
        assert "requires single sign-on" in response.content.decode()
        assert get_user(client).is_anonymous
    # Someone outside the verified domains is not affected.
    response = client.post(SIGNIN, {"email": ns.stranger.email, "password": PASSWORD})
    assert response.status_code == 302
    client.logout()
    # A wrong password is still just a wrong password (no hint about SSO).
    response = client.post(SIGNIN, {"email": ns.member.email, "password": "nope"})
    assert "requires single sign-on" not in response.content.decode()

    # Turning the policy off restores passwords.
    policy_delete(actor=ns.owner, org=ns.org, kind="require_sso")
    response = client.post(SIGNIN, {"email": ns.member.email, "password": PASSWORD})
    assert response.status_code == 302


def test_owner_break_glass_needs_two_factor_and_is_audited(saml_org, client):
    ns = saml_org
    require_sso(ns)
    response = client.post(SIGNIN, {"email": ns.owner.email, "password": PASSWORD})
    assert response.status_code == 403 and "two-factor" in response.content.decode()
    assert get_user(client).is_anonymous

    secret, _ = enrol(ns.owner)
    response = client.post(SIGNIN, {"email": ns.owner.email, "password": PASSWORD})
    assert response.status_code == 302 and response.url == reverse("members:two_factor_verify")
    assert not AuditEvent.objects.filter(action="sso.break_glass_signin").exists()
    response = client.post(reverse("members:two_factor_verify"), {"code": next_code(secret)})
    assert response.status_code == 302 and get_user(client) == ns.owner
    event = AuditEvent.objects.get(action="sso.break_glass_signin")
    assert event.organization_id == ns.org.pk and event.target_id == ns.owner.public_id


def test_idp_cannot_be_removed_while_required(saml_org):
    ns = saml_org
    require_sso(ns)
    with pytest.raises(Conflict):
        saml_remove(actor=ns.owner, org=ns.org)


def test_idp_cannot_be_turned_off_while_required(saml_org):
    """Saving the IdP with "Enabled" unticked would lock the domain's people out exactly like
    removing it: refused the same way, nothing changed, nothing audited."""
    from orgs.sso.enforcement import sso_protocol
    from orgs.sso.saml import saml_configure

    ns = saml_org
    require_sso(ns)
    events = AuditEvent.objects.count()
    with pytest.raises(Conflict) as refused:
        saml_configure(actor=ns.owner, org=ns.org, metadata_xml=ns.idp.metadata(), enabled=False)
    assert refused.value.code == "sso_required"
    assert sso_protocol(ns.org) == "saml"
    assert AuditEvent.objects.count() == events
    # With the policy lifted it may be turned off.
    policy_delete(actor=ns.owner, org=ns.org, kind="require_sso")
    saml_configure(actor=ns.owner, org=ns.org, metadata_xml=ns.idp.metadata(), enabled=False)
    assert sso_protocol(ns.org) is None


def test_required_sso_person_signs_in_through_sso(saml_org, client):
    from tests.sso.test_saml import post_and_finish, start

    ns = saml_org
    require_sso(ns)
    ns.idp.user = {"email": ns.member.email, "name": "Carol"}
    location = start(client, ns)
    response = post_and_finish(client, ns, ns.idp.respond(location))
    assert response.status_code == 302 and get_user(client) == ns.member


# --- "Sign in with SSO" ----------------------------------------------------------------------


def test_sign_in_page_offers_sso_and_finds_the_org_by_domain(saml_org, client):
    ns = saml_org
    assert reverse("sso:signin") in client.get(SIGNIN).content.decode()
    response = client.post(reverse("sso:signin"), {"email": "Someone@ACME.test", "next": "/x/"})
    assert response.status_code == 302
    assert response.url == reverse("sso:login", args=[ns.org.slug]) + "?next=%2Fx%2F"
    response = client.get(response.url)
    assert response.status_code == 302 and response.url.startswith(ns.idp.sso_url)


@pytest.mark.parametrize("email", ["someone@elsewhere.test", "not-an-email", ""])
def test_sign_in_with_sso_unknown_domain_is_a_field_error(saml_org, client, email):
    response = client.post(reverse("sso:signin"), {"email": email})
    assert response.status_code == 422
    assert 'role="alert"' in response.content.decode()


def test_unverified_or_unconfigured_domain_is_not_discovered(org_setup, client, verified):
    ns = org_setup
    verified(ns.org, "acme.test")  # verified, but no IdP yet
    response = client.post(reverse("sso:signin"), {"email": "a@acme.test"})
    assert response.status_code == 422


# --- the owners' page ------------------------------------------------------------------------


def test_settings_page_adds_verifies_removes_domains_and_uploads_metadata(
    org_setup, login, dns_zone, idp
):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from orgs.sso.models import SamlConnection, VerifiedDomain

    ns = org_setup
    client = login(ns.owner)
    url = reverse("sso:settings", args=[ns.org.slug])
    page = client.get(url)
    assert page.status_code == 200
    assert f"/sso/{ns.org.slug}/saml/acs/" in page.content.decode()

    assert client.post(url, {"action": "add_domain", "domain": "http://x"}).status_code == 422
    assert client.post(url, {"action": "add_domain", "domain": "acme.test"}).status_code == 302
    claim = VerifiedDomain.objects.get(organization=ns.org)
    assert claim.txt_value in client.get(url).content.decode()
    response = client.post(url, {"action": "verify_domain", "domain_id": claim.public_id})
    assert response.status_code == 422 and claim.txt_value in response.content.decode()
    dns_zone.records["acme.test"] = [claim.txt_value]
    response = client.post(url, {"action": "verify_domain", "domain_id": claim.public_id})
    assert response.status_code == 302
    claim.refresh_from_db()
    assert claim.is_verified

    bad = client.post(url, {"action": "save_saml", "metadata": "<nope", "email_attribute": "email"})
    assert bad.status_code == 422 and "not valid SAML metadata" in bad.content.decode()
    upload = SimpleUploadedFile("idp.xml", idp.metadata().encode(), "application/xml")
    response = client.post(
        url,
        {
            "action": "save_saml",
            "metadata_file": upload,
            "email_attribute": "email",
            "enabled": "on",
        },
    )
    assert response.status_code == 302
    assert SamlConnection.objects.get(organization=ns.org).idp_entity_id == idp.entity_id

    response = client.post(url, {"action": "remove_domain", "domain_id": claim.public_id})
    assert response.status_code == 302 and not VerifiedDomain.objects.exists()
    assert client.post(url, {"action": "remove_saml"}).status_code == 302
    assert client.post(url, {"action": "verify_domain", "domain_id": "dom_x"}).status_code == 404
    assert client.post(url, {"action": "what"}).status_code == 422


def test_governance_page_sets_required_sso(saml_org, login):
    ns = saml_org
    client = login(ns.owner)
    url = reverse("orgs:governance", args=[ns.org.slug])
    response = client.post(url, {"kind": "require_sso", "require_sso-enabled": "on"})
    assert response.status_code == 302
    assert "Required." in client.get(url).content.decode()


def test_other_org_owner_cannot_open_the_page(org_setup, login):
    ns = org_setup
    other = UserFactory()
    assert login(other).get(reverse("sso:settings", args=[ns.org.slug])).status_code == 404


def test_password_sessions_from_before_the_policy_are_sent_through_sso(saml_org, client):
    from tests.sso.test_saml import post_and_finish, start

    ns = saml_org
    assert client.post(SIGNIN, {"email": ns.member.email, "password": PASSWORD}).status_code == 302
    org_page = reverse("orgs:overview", args=[ns.org.slug])
    ws_page = reverse("workspaces:overview", args=[ns.ws_b.slug])
    assert client.get(org_page).status_code == 200
    require_sso(ns)
    for page in (org_page, ws_page):
        response = client.get(page)
        assert response.status_code == 302
        assert response.url.startswith(reverse("sso:login", args=[ns.org.slug]))
    # Through the IdP, the same person gets in.
    ns.idp.user = {"email": ns.member.email, "name": "Carol"}
    location = start(client, ns, next_url=ws_page)
    response = post_and_finish(client, ns, ns.idp.respond(location))
    assert response.status_code == 302 and response.url == ws_page
    assert client.get(ws_page).status_code == 200
    assert client.get(org_page).status_code == 200


def test_break_glass_session_reaches_the_org_pages(saml_org, client):
    ns = saml_org
    require_sso(ns)
    secret, _ = enrol(ns.owner)
    client.post(SIGNIN, {"email": ns.owner.email, "password": PASSWORD})
    client.post(reverse("members:two_factor_verify"), {"code": next_code(secret)})
    assert client.get(reverse("orgs:governance", args=[ns.org.slug])).status_code == 200
