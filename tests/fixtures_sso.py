"""Fixtures for enterprise identity (registered from tests/conftest.py): a DNS server on
loopback the resolver is pointed at, a real pysaml2 IdP, an org with SAML set up, and the SP
key pair in a temporary directory for every test."""

from __future__ import annotations

import pytest

from tests.sso.dns_server import LoopbackDns


@pytest.fixture
def dns_zone(settings):
    """A real DNS server on 127.0.0.1; `dns_zone.records["acme.test"] = ["..."]` publishes TXT."""
    server = LoopbackDns().start()
    settings.SSO_DNS_NAMESERVERS = ["127.0.0.1"]
    settings.SSO_DNS_PORT = server.port
    settings.SSO_DNS_TIMEOUT = 3.0
    yield server.zone
    server.stop()


@pytest.fixture
def verified(db):
    """verified(org, "acme.test") marks a domain verified for the org (through the DB row; the
    DNS path is tested in test_domains.py)."""
    from django.utils import timezone

    from orgs.sso.models import VerifiedDomain

    def _verify(org, domain):
        return VerifiedDomain.objects.create(
            organization=org, domain=domain, token="t", verified_at=timezone.now()
        )

    return _verify


@pytest.fixture(autouse=True)
def _sp_keys(settings, tmp_path_factory):
    """The SP's key pair goes to a temporary directory (generated on first use)."""
    settings.SAML_SP_KEY_FILE = ""
    settings.SAML_SP_CERT_FILE = ""
    settings.SAML_SP_KEY_DIR = tmp_path_factory.getbasetemp() / "sp-keys"


@pytest.fixture
def idp(tmp_path_factory):
    from tests.sso.saml_idp import TestIdp

    return TestIdp(tmp_path_factory.mktemp("idp"))


@pytest.fixture
def saml_org(org_setup, verified, idp, client):
    """Acme with acme.test verified and the test IdP configured (through the service); the
    IdP knows our SP metadata as served by the metadata endpoint."""
    from orgs.sso.saml import saml_configure

    ns = org_setup
    verified(ns.org, "acme.test")
    response = client.get(f"/sso/{ns.org.slug}/saml/metadata/")
    assert response.status_code == 200
    idp.sp_metadata = response.content.decode()
    saml_configure(actor=ns.owner, org=ns.org, metadata_xml=idp.metadata())
    ns.idp = idp
    ns.acs = f"/sso/{ns.org.slug}/saml/acs/"
    return ns
