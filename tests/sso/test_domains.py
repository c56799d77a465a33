"""Verified domains: claim, TXT lookup against a real DNS server on loopback, one org per domain."""

from __future__ import annotations

import pytest

from audit.models import AuditEvent
from config.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from orgs.services import org_create
from orgs.sso.domains import (
    domain_add,
    domain_remove,
    domain_verify,
    org_for_email,
    verified_domains,
)
from orgs.sso.models import VerifiedDomain
from tests.factories import UserFactory
from tests.sso.dns_server import LoopbackDns


def _events(action):
    return AuditEvent.objects.filter(action=action).count()


def test_owner_claims_publishes_txt_and_verifies(org_setup, dns_zone):
    ns = org_setup
    claim = domain_add(actor=ns.owner, org=ns.org, domain=" @Acme.TEST. ")
    assert claim.domain == "acme.test" and not claim.is_verified
    assert claim.txt_value.startswith("signalsmith-verification=")
    assert _events("sso.domain_added") == 1

    # Nothing published yet: refused with the value to publish, nothing changes.
    with pytest.raises(ValidationFailed) as exc:
        domain_verify(actor=ns.owner, org=ns.org, claim=claim)
    assert claim.txt_value in exc.value.message
    assert not VerifiedDomain.objects.get(pk=claim.pk).is_verified
    assert "acme.test" in dns_zone.queries  # the lookup really went to our server

    # A wrong value does not count either.
    dns_zone.records["acme.test"] = ["v=spf1 -all", "signalsmith-verification=wrong"]
    with pytest.raises(ValidationFailed):
        domain_verify(actor=ns.owner, org=ns.org, claim=claim)

    dns_zone.records["acme.test"] = ["v=spf1 -all", claim.txt_value]
    domain_verify(actor=ns.owner, org=ns.org, claim=claim)
    assert VerifiedDomain.objects.get(pk=claim.pk).is_verified
    assert verified_domains(ns.org) == ["acme.test"]
    assert org_for_email("Someone@ACME.test") == ns.org
    assert _events("sso.domain_verified") == 1
    # Verifying again changes nothing and records nothing.
    domain_verify(actor=ns.owner, org=ns.org, claim=claim)
    assert _events("sso.domain_verified") == 1


def test_a_domain_is_verified_by_one_org_only(org_setup, dns_zone):
    ns = org_setup
    other_owner = UserFactory(email="eve@other.test")
    other = org_create(actor=other_owner, name="Other")
    mine = domain_add(actor=ns.owner, org=ns.org, domain="acme.test")
    theirs = domain_add(actor=other_owner, org=other, domain="acme.test")  # both may claim
    dns_zone.records["acme.test"] = [mine.txt_value, theirs.txt_value]
    domain_verify(actor=ns.owner, org=ns.org, claim=mine)
    with pytest.raises(Conflict) as exc:
        domain_verify(actor=other_owner, org=other, claim=theirs)
    assert exc.value.code == "domain_taken"
    assert not VerifiedDomain.objects.get(pk=theirs.pk).is_verified
    with pytest.raises(Conflict):
        domain_add(actor=other_owner, org=other, domain="ACME.test")
    # Once the first org lets go, the other can verify.
    domain_remove(actor=ns.owner, org=ns.org, claim=mine)
    assert _events("sso.domain_removed") == 1
    domain_verify(actor=other_owner, org=other, claim=theirs)
    assert org_for_email("x@acme.test") == other


def test_only_owners_manage_domains_and_bad_input_is_refused(org_setup, dns_zone):
    ns = org_setup
    with pytest.raises(PermissionDenied):
        domain_add(actor=ns.admin, org=ns.org, domain="acme.test")
    with pytest.raises(NotFound):
        domain_add(actor=ns.stranger, org=ns.org, domain="acme.test")
    for bad in ["", "acme", "http://acme.test/x", "a..b.test", "x" * 300 + ".test"]:
        with pytest.raises(ValidationFailed):
            domain_add(actor=ns.owner, org=ns.org, domain=bad)
    claim = domain_add(actor=ns.owner, org=ns.org, domain="acme.test")
    with pytest.raises(Conflict):
        domain_add(actor=ns.owner, org=ns.org, domain="acme.test")
    dns_zone.records["acme.test"] = [claim.txt_value]
    with pytest.raises(PermissionDenied):
        domain_verify(actor=ns.admin, org=ns.org, claim=claim)
    with pytest.raises(PermissionDenied):
        domain_remove(actor=ns.admin, org=ns.org, claim=claim)
    assert AuditEvent.objects.filter(action__startswith="sso.").count() == 1


def test_dns_down_is_a_clear_refusal(org_setup, settings):
    ns = org_setup
    server = LoopbackDns()  # a port nobody answers on
    port = server.port
    server.server.server.server_close()
    settings.SSO_DNS_NAMESERVERS = ["127.0.0.1"]
    settings.SSO_DNS_PORT = port
    settings.SSO_DNS_TIMEOUT = 0.5
    claim = domain_add(actor=ns.owner, org=ns.org, domain="acme.test")
    with pytest.raises(Conflict) as exc:
        domain_verify(actor=ns.owner, org=ns.org, claim=claim)
    assert exc.value.code == "dns_unavailable"
    assert not VerifiedDomain.objects.get(pk=claim.pk).is_verified
