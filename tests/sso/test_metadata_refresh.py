"""IdP metadata configured by URL is fetched again (daily beat task, owners' "Refresh now")
from a real pysaml2 IdP serving its metadata over HTTP on loopback."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user

from audit.models import AuditEvent
from config.errors import NotFound, PermissionDenied
from members.models import User
from orgs.sso.keys import generate_key_pair
from orgs.sso.metadata import saml_metadata_refresh, signing_fingerprints
from orgs.sso.models import SamlConnection
from orgs.sso.saml import saml_configure
from orgs.tasks import refresh_saml_metadata
from tests.sso.saml_idp import TestIdp

pytestmark = pytest.mark.django_db


@pytest.fixture
def url_org(org_setup, verified, idp, client, settings):
    """Acme with SAML configured from the metadata URL of the IdP served on loopback."""
    settings.SSO_METADATA_ALLOW_PRIVATE = True  # loopback http, as in development
    ns = org_setup
    verified(ns.org, "acme.test")
    _, stop = idp.serve()
    idp.sp_metadata = client.get(f"/sso/{ns.org.slug}/saml/metadata/").content.decode()
    saml_configure(actor=ns.owner, org=ns.org, metadata_xml="", metadata_url=idp.metadata_url)
    ns.idp, ns.stop = idp, stop
    yield ns
    stop()


def rotate_key(idp: TestIdp) -> None:
    """The IdP rolls its signing certificate, as IdPs do every year or two."""
    idp.key_file, idp.cert_file = generate_key_pair(idp.directory, "idp-next", "Test IdP (next)")


def sign_in(client, ns):
    response = client.get(f"/sso/{ns.org.slug}/login/")
    assert response.status_code == 302
    saml_response = ns.idp.respond(response["Location"])
    response = client.post(f"/sso/{ns.org.slug}/saml/acs/", {"SAMLResponse": saml_response})
    if response.status_code == 302:
        response = client.get(response["Location"])
    return response


def stored(ns) -> SamlConnection:
    return SamlConnection.objects.get(organization=ns.org)


def events(ns, action):
    return list(AuditEvent.objects.filter(organization=ns.org, action=action).order_by("pk"))


def test_a_rotated_certificate_is_picked_up_and_audited(url_org, client):
    ns = url_org
    before = stored(ns).idp_metadata_xml
    assert saml_metadata_refresh(actor=None, org=ns.org).status == "unchanged"
    assert stored(ns).idp_metadata_xml == before
    assert not events(ns, "sso.metadata_refreshed")

    rotate_key(ns.idp)
    # Until the refresh, the old certificate is what we trust: the new signature is refused.
    assert sign_in(client, ns).status_code == 403
    assert not User.objects.filter(email="new.person@acme.test").exists()

    assert refresh_saml_metadata() == 1  # the beat task (Celery is eager in tests)
    conn = stored(ns)
    assert conn.idp_metadata_xml != before
    (event,) = events(ns, "sso.metadata_refreshed")
    assert event.details["certificates_changed"] is True
    assert event.details["trigger"] == "schedule"
    assert event.details["signing_certificates_before"] == signing_fingerprints(
        before, ns.idp.entity_id
    )
    assert event.details["signing_certificates_after"] == signing_fingerprints(
        conn.idp_metadata_xml, ns.idp.entity_id
    )
    assert (
        event.details["signing_certificates_after"] != event.details["signing_certificates_before"]
    )
    # Signed with the new key, the sign-in now succeeds.
    assert sign_in(client, ns).status_code == 302
    assert get_user(client).email == "new.person@acme.test"


def test_failures_keep_the_metadata_we_have(url_org, tmp_path_factory):
    ns = url_org
    before = stored(ns).idp_metadata_xml

    # Another IdP behind the same URL: only an owner saving the settings may switch IdPs.
    other = TestIdp(tmp_path_factory.mktemp("other"), entity_id="https://other.test/saml")
    ns.idp.metadata = other.metadata
    outcome = saml_metadata_refresh(actor=None, org=ns.org)
    assert outcome.status == "failed" and "another identity provider" in outcome.message

    # Oversized: the fetch reads at most 500 KB.
    ns.idp.metadata = lambda: "<x>" + "a" * 600_000 + "</x>"
    assert saml_metadata_refresh(actor=None, org=ns.org).status == "failed"

    # Not metadata at all.
    ns.idp.metadata = lambda: "<html>maintenance</html>"
    assert saml_metadata_refresh(actor=None, org=ns.org).status == "failed"

    # The IdP is down.
    ns.stop()
    assert saml_metadata_refresh(actor=None, org=ns.org).status == "failed"

    assert stored(ns).idp_metadata_xml == before
    failures = events(ns, "sso.metadata_refresh_failed")
    assert [e.details["reason"] for e in failures] == [
        "saml_entity_changed",
        "invalid_metadata",
        "invalid_metadata",
        "invalid_metadata",
    ]
    assert "too large" in failures[1].details["message"]
    assert "Could not fetch" in failures[3].details["message"]
    assert not events(ns, "sso.metadata_refreshed")


def test_metadata_pasted_by_hand_is_not_refreshed(saml_org):
    ns = saml_org
    with pytest.raises(NotFound):
        saml_metadata_refresh(actor=ns.owner, org=ns.org)
    assert refresh_saml_metadata() == 0


def test_owners_refresh_now_from_the_page(url_org, login):
    ns = url_org
    url = f"/o/{ns.org.slug}/sso/"
    refresh = f"/o/{ns.org.slug}/sso/refresh-metadata/"
    owner = login(ns.owner)
    page = owner.get(url).content.decode()
    assert 'data-testid="saml-refresh"' in page and ns.idp.metadata_url in page
    rotate_key(ns.idp)
    response = owner.post(refresh, follow=True)
    assert "The identity provider&#x27;s metadata was updated." in response.content.decode()
    (event,) = events(ns, "sso.metadata_refreshed")
    assert event.actor_user_id == ns.owner.pk and event.details["trigger"] == "owner"
    assert owner.get(refresh).status_code == 405

    ns.stop()
    response = owner.post(refresh, follow=True)
    assert "The metadata we had is kept." in response.content.decode()
    assert events(ns, "sso.metadata_refresh_failed")[0].details["trigger"] == "owner"

    # Admins may not (single sign-on is the owners'), strangers do not see the org.
    assert login(ns.admin).post(refresh).status_code == 403
    assert login(ns.stranger).post(refresh).status_code == 404
    with pytest.raises(PermissionDenied):
        saml_metadata_refresh(actor=ns.admin, org=ns.org)
