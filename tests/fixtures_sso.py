"""Fixtures for enterprise identity (registered from tests/conftest.py): a DNS server on
loopback the resolver is pointed at, a real pysaml2 IdP, an org with SAML set up, the SP
key pair in a temporary directory for every test, and the OpenID provider process
(tests/idp/oidc_provider.py, one per session on an OS-assigned loopback port) with an org
using it."""

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


class OidcProviderProcess:
    """tests/idp/oidc_provider.py running as its own process on a free loopback port."""

    def __init__(self):
        import subprocess
        import sys
        from pathlib import Path

        script = Path(__file__).resolve().parent / "idp" / "oidc_provider.py"
        self.process = subprocess.Popen(
            [sys.executable, str(script), "--port", "0"],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        line = self.process.stdout.readline().strip() if self.process.stdout else ""
        if not line.startswith("READY "):
            self.process.kill()
            raise RuntimeError(f"the OIDC provider did not start: {line!r}")
        self.issuer = line.split(" ", 1)[1]

    def control(self, what: str, body: dict) -> None:
        import json
        import urllib.request

        request = urllib.request.Request(
            f"{self.issuer}/control/{what}",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200

    def client(self, client_id: str, client_secret: str, redirect_uri: str) -> None:
        self.control(
            "client",
            {"client_id": client_id, "client_secret": client_secret, "redirect_uri": redirect_uri},
        )

    def user(self, **claims) -> None:
        """Who signs in next: email, email_verified, name, sub, … as the ID token's claims."""
        self.control("user", claims)

    def knobs(self, **knobs) -> None:
        """How the provider misbehaves on the next sign-ins (see tests/idp/oidc_provider.py)."""
        self.control("knobs", knobs)

    def reset(self) -> None:
        self.knobs()
        self.user(email="new.person@acme.test", email_verified=True, name="New Person")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=5)
        except Exception:
            self.process.kill()
        if self.process.stdout:
            self.process.stdout.close()


@pytest.fixture(scope="session")
def _oidc_provider_process():
    provider = OidcProviderProcess()
    yield provider
    provider.stop()


@pytest.fixture
def oidc_provider(_oidc_provider_process, settings):
    """The OpenID provider process (one per test session), reset for this test; our side may
    call it on loopback over plain http."""
    settings.SSO_METADATA_ALLOW_PRIVATE = True
    _oidc_provider_process.reset()
    yield _oidc_provider_process
    _oidc_provider_process.reset()


@pytest.fixture
def oidc_org(org_setup, verified, oidc_provider):
    """Acme with acme.test verified and the provider process configured (through the service)."""
    from orgs.sso.oidc import callback_url
    from orgs.sso.oidc_setup import oidc_configure

    ns = org_setup
    verified(ns.org, "acme.test")
    oidc_provider.client("signalsmith-test", "test-client-secret", callback_url(ns.org))
    ns.conn = oidc_configure(
        actor=ns.owner,
        org=ns.org,
        issuer=oidc_provider.issuer,
        client_id="signalsmith-test",
        client_secret="test-client-secret",
    )
    ns.provider = oidc_provider
    return ns
