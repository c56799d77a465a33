"""Fixtures for enterprise identity: a loopback DNS server the resolver is pointed at."""

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
