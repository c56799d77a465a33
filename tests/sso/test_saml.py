"""SAML 2.0 against a real pysaml2 IdP: SP-initiated sign-in with real signed responses, and
each refusal (unsigned, wrong key, wrong audience/destination, expired, not yet valid, replay,
unsolicited, email outside the verified domains) shown as a clear page with an audit event."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth import get_user

from audit.models import AuditEvent
from config.errors import NotFound, PermissionDenied, ValidationFailed
from members.models import OrgMembership, User
from orgs.sso.models import SamlConnection
from orgs.sso.saml import saml_configure, saml_remove
from tests.sso.saml_idp import TestIdp


def start(client, ns, next_url="/"):
    response = client.get(f"/sso/{ns.org.slug}/login/", {"next": next_url})
    assert response.status_code == 302
    assert response["Location"].startswith(ns.idp.sso_url)
    return response["Location"]


def post_and_finish(client, ns, saml_response):
    """POST to the ACS (as the IdP's page would), then follow to the completing step."""
    response = client.post(ns.acs, {"SAMLResponse": saml_response})
    if response.status_code != 302:
        return response
    return client.get(response["Location"])


def refused(response, reason):
    assert response.status_code == 403, response.content[:300]
    body = response.content.decode()
    assert "Single sign-on refused" in body and f'data-reason="{reason}"' in body
    event = AuditEvent.objects.filter(action="sso.signin_refused").latest("pk")
    assert event.details["reason"] == reason
    return event


def test_metadata_names_entity_id_and_acs(saml_org, client):
    ns = saml_org
    body = client.get(f"/sso/{ns.org.slug}/saml/metadata/").content.decode()
    assert f'entityID="http://testserver/sso/{ns.org.slug}/saml/metadata/"' in body
    assert f'Location="http://testserver/sso/{ns.org.slug}/saml/acs/"' in body
    assert "X509Certificate" in body
    assert client.get("/sso/no-such-org/saml/metadata/").status_code == 404


def test_sp_initiated_sign_in_provisions_and_signs_in(saml_org, client):
    ns = saml_org
    location = start(client, ns, next_url=f"/o/{ns.org.slug}/")
    response = post_and_finish(client, ns, ns.idp.respond(location))
    assert response.status_code == 302 and response["Location"] == f"/o/{ns.org.slug}/"
    user = User.objects.get(email="new.person@acme.test")
    assert get_user(client) == user
    assert user.full_name == "New Person"
    assert OrgMembership.objects.filter(user=user, organization=ns.org).exists()
    assert AuditEvent.objects.filter(action="sso.member_provisioned", target_id=user.public_id)
    signed_in = AuditEvent.objects.get(action="sso.signed_in")
    assert signed_in.details["joined"] is True

    # Signing in again: same account, no new membership.
    client.logout()
    location = start(client, ns)
    response = post_and_finish(client, ns, ns.idp.respond(location))
    assert response.status_code == 302 and get_user(client) == user
    assert AuditEvent.objects.filter(action="sso.signed_in").count() == 2
    assert AuditEvent.objects.filter(action="sso.member_provisioned").count() == 1


def test_unsigned_response_is_refused(saml_org, client):
    ns = saml_org
    location = start(client, ns)
    raw = ns.idp.respond(location, sign_assertion=False, sign_response=False)
    refused(post_and_finish(client, ns, raw), "unsigned")
    assert not User.objects.filter(email="new.person@acme.test").exists()


def test_signed_response_with_unsigned_assertion_is_refused(saml_org, client):
    ns = saml_org
    location = start(client, ns)
    raw = ns.idp.respond(location, sign_assertion=False, sign_response=True)
    refused(post_and_finish(client, ns, raw), "unsigned")


def test_signed_with_another_key_is_refused(saml_org, client, tmp_path):
    ns = saml_org
    impostor = TestIdp(tmp_path, entity_id=ns.idp.entity_id, key_name="impostor")
    impostor.sp_metadata = ns.idp.sp_metadata
    location = start(client, ns)
    refused(post_and_finish(client, ns, impostor.respond(location)), "bad_signature")
    assert get_user(client).is_anonymous


def test_tampered_email_breaks_the_signature(saml_org, client):
    import base64

    ns = saml_org
    location = start(client, ns)
    xml = base64.b64decode(ns.idp.respond(location)).decode()
    xml = xml.replace("new.person@acme.test", "olivia@acme.test")  # become the owner
    raw = base64.b64encode(xml.encode()).decode()
    refused(post_and_finish(client, ns, raw), "bad_signature")
    assert get_user(client).is_anonymous


def test_wrong_audience_is_refused(saml_org, client):
    ns = saml_org
    location = start(client, ns)
    raw = ns.idp.resign_with_audience(location, "https://another-sp.test/metadata")
    refused(post_and_finish(client, ns, raw), "wrong_audience")


def test_wrong_destination_is_refused(saml_org, client):
    ns = saml_org
    location = start(client, ns)
    raw = ns.idp.respond(location, destination="https://another-sp.test/acs")
    refused(post_and_finish(client, ns, raw), "wrong_destination")


def test_expired_assertion_is_refused(saml_org, client):
    ns = saml_org
    location = start(client, ns)
    now = datetime.now(UTC)
    raw = ns.idp.resign_with_times(
        location,
        not_before=now - timedelta(minutes=20),
        not_on_or_after=now - timedelta(minutes=10),
    )
    refused(post_and_finish(client, ns, raw), "expired")


def test_not_yet_valid_assertion_is_refused(saml_org, client):
    ns = saml_org
    location = start(client, ns)
    now = datetime.now(UTC)
    raw = ns.idp.resign_with_times(
        location,
        not_before=now + timedelta(minutes=10),
        not_on_or_after=now + timedelta(minutes=20),
    )
    refused(post_and_finish(client, ns, raw), "not_yet_valid")


def test_resigned_in_window_is_accepted(saml_org, client):
    """The re-signing helper itself yields a valid response when the times are right."""
    ns = saml_org
    location = start(client, ns)
    now = datetime.now(UTC)
    raw = ns.idp.resign_with_times(
        location, not_before=now - timedelta(minutes=1), not_on_or_after=now + timedelta(minutes=5)
    )
    response = post_and_finish(client, ns, raw)
    assert response.status_code == 302 and get_user(client).email == "new.person@acme.test"


def test_replayed_assertion_is_refused(saml_org, client):
    ns = saml_org
    location = start(client, ns)
    raw = ns.idp.respond(location)
    assert post_and_finish(client, ns, raw).status_code == 302
    client.logout()
    start(client, ns)
    refused(post_and_finish(client, ns, raw), "replayed")


def test_idp_initiated_is_off_by_default(saml_org, client):
    ns = saml_org
    # A response to no request of ours.
    location = start(client, ns)
    raw = ns.idp.respond(location, in_response_to=None)
    refused(post_and_finish(client, ns, raw), "unsolicited")


def test_idp_initiated_when_the_owner_allows_it(saml_org, client):
    ns = saml_org
    conn = SamlConnection.objects.get(organization=ns.org)
    saml_configure(
        actor=ns.owner, org=ns.org, metadata_xml=conn.idp_metadata_xml, allow_idp_initiated=True
    )
    location = start(client, ns)
    raw = ns.idp.respond(location, in_response_to=None)
    response = post_and_finish(client, ns, raw)
    assert response.status_code == 302 and get_user(client).email == "new.person@acme.test"


def test_response_started_in_another_browser_is_refused(saml_org, client, django_user_model):
    """Login CSRF: an attacker's own valid response, posted into a victim's browser."""
    from django.test import Client

    ns = saml_org
    attacker = Client()
    location = start(attacker, ns)
    raw = ns.idp.respond(location)
    refused(post_and_finish(client, ns, raw), "unsolicited")
    assert get_user(client).is_anonymous


def test_email_outside_verified_domains_is_refused(saml_org, client):
    ns = saml_org
    location = start(client, ns)
    raw = ns.idp.respond(location, email="mallory@evil.test")
    event = refused(post_and_finish(client, ns, raw), "sso_domain_not_verified")
    assert event.details["email"] == "mallory@evil.test"
    assert not User.objects.filter(email="mallory@evil.test").exists()


def test_garbage_posts_are_clear_refusals(saml_org, client):
    ns = saml_org
    for raw, reason in [("", "missing"), ("%%%", "malformed"), ("PGZvby8+", "malformed")]:
        refused(client.post(ns.acs, {"SAMLResponse": raw}), reason)
    response = client.get(f"/sso/{ns.org.slug}/saml/complete/?k=nope")
    assert response.status_code == 403


def test_login_without_configuration_is_404(org_setup, client):
    assert client.get(f"/sso/{org_setup.org.slug}/login/").status_code == 404


def test_configuration_is_owner_only_validated_and_audited(org_setup, idp):
    ns = org_setup
    with pytest.raises(PermissionDenied):
        saml_configure(actor=ns.admin, org=ns.org, metadata_xml=idp.metadata())
    with pytest.raises(NotFound):
        saml_configure(actor=ns.stranger, org=ns.org, metadata_xml=idp.metadata())
    for bad in ["", "<xml", "<EntityDescriptor xmlns='urn:oasis:names:tc:SAML:2.0:metadata'/>"]:
        with pytest.raises(ValidationFailed):
            saml_configure(actor=ns.owner, org=ns.org, metadata_xml=bad)
    billion_laughs = (
        '<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]><x>&b;</x>'
    )
    with pytest.raises(ValidationFailed):
        saml_configure(actor=ns.owner, org=ns.org, metadata_xml=billion_laughs)
    assert not AuditEvent.objects.filter(action__startswith="sso.").exists()
    conn = saml_configure(actor=ns.owner, org=ns.org, metadata_xml=idp.metadata())
    assert conn.idp_entity_id == idp.entity_id and not conn.allow_idp_initiated
    assert AuditEvent.objects.filter(action="sso.saml_configured").count() == 1
    saml_configure(actor=ns.owner, org=ns.org, metadata_xml=idp.metadata())  # unchanged
    assert AuditEvent.objects.filter(action="sso.saml_configured").count() == 1
    saml_remove(actor=ns.owner, org=ns.org)
    assert AuditEvent.objects.filter(action="sso.saml_removed").count() == 1
    assert not SamlConnection.objects.exists()


def test_refusals_from_one_client_are_audited_a_bounded_number_of_times(saml_org, client):
    from orgs.sso.views import REFUSALS_AUDITED_PER_CLIENT_HOUR

    ns = saml_org
    for _ in range(REFUSALS_AUDITED_PER_CLIENT_HOUR + 5):
        assert client.post(ns.acs, {"SAMLResponse": "%%%"}).status_code == 403
    events = AuditEvent.objects.filter(action="sso.signin_refused").count()
    assert events == REFUSALS_AUDITED_PER_CLIENT_HOUR


def test_metadata_by_url_from_the_idp_on_loopback(org_setup, idp, settings):
    ns = org_setup
    _, stop = idp.serve()
    try:
        # Production refuses plain http and private addresses (an owner cannot make us probe
        # our own network).
        with pytest.raises(ValidationFailed) as exc:
            saml_configure(
                actor=ns.owner, org=ns.org, metadata_xml="", metadata_url=idp.metadata_url
            )
        assert "metadata_url" in exc.value.fields
        with pytest.raises(ValidationFailed) as exc:
            saml_configure(
                actor=ns.owner, org=ns.org, metadata_xml="", metadata_url="https://127.0.0.1:9/m"
            )
        assert "private network" in exc.value.message
        settings.SSO_METADATA_ALLOW_PRIVATE = True
        with pytest.raises(ValidationFailed):
            saml_configure(
                actor=ns.owner, org=ns.org, metadata_xml="", metadata_url=idp.metadata_url + "x"
            )
        assert not SamlConnection.objects.exists()
        conn = saml_configure(
            actor=ns.owner, org=ns.org, metadata_xml="", metadata_url=idp.metadata_url
        )
        assert conn.idp_entity_id == idp.entity_id and conn.metadata_url == idp.metadata_url
        assert idp.sso_url in conn.idp_metadata_xml
    finally:
        stop()


def test_used_assertion_ids_are_forgotten_once_expired(saml_org, client):
    from orgs.sso.models import SamlAssertionUse

    ns = saml_org
    old = SamlAssertionUse.objects.create(
        organization=ns.org,
        assertion_id="old",
        not_on_or_after=datetime.now(UTC) - timedelta(hours=1),
    )
    location = start(client, ns)
    assert post_and_finish(client, ns, ns.idp.respond(location)).status_code == 302
    assert not SamlAssertionUse.objects.filter(pk=old.pk).exists()
    assert SamlAssertionUse.objects.filter(organization=ns.org).count() == 1
