"""Verified domains: an owner claims a domain, publishes a TXT record, and we look it up.

A verified domain drives SSO discovery ("Sign in with SSO" finds the org by the email's
domain), bounds what the org's identity provider may vouch for, and decides who is under
required SSO. A domain is verified by at most one org (a partial unique constraint, and the
claim rows of a domain are locked before one is verified). Lock order: organization row →
the domain's claim rows by id.
"""

from __future__ import annotations

import secrets

import dns.exception
import dns.resolver
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from audit.services import record
from config.errors import Conflict, NotFound, ValidationFailed
from members.models import User
from orgs.models import Organization
from orgs.permissions import OrgCapability, require_org_capability
from orgs.sso.models import VerifiedDomain

MAX_DOMAINS_PER_ORG = 20


def normalize_domain(raw: str) -> str:
    """`@Acme.COM.` → `acme.com` (IDNA), or ValidationFailed naming the field."""
    from orgs.governance_services import DOMAIN_RE

    domain = str(raw or "").strip().lower().lstrip("@").rstrip(".")
    try:
        domain = domain.encode("idna").decode("ascii")
    except UnicodeError:
        domain = ""
    if not DOMAIN_RE.match(domain):
        message = "Enter a domain such as acme.com (no http://, no path)."
        raise ValidationFailed(message, fields={"domain": message}, code="invalid_domain")
    return domain


def verified_domain_of(domain: str) -> int | None:
    """The pk of the org that verified this domain, or None."""
    return (
        VerifiedDomain.objects.filter(
            domain=domain.lower(),
            verified_at__isnull=False,
            organization__deleted_at__isnull=True,
        )
        .values_list("organization_id", flat=True)
        .first()
    )


def org_for_email(email: str) -> Organization | None:
    """The live org whose verified domain this address is in (SSO discovery)."""
    domain = (email or "").rsplit("@", 1)[-1].strip().lower()
    pk = verified_domain_of(domain) if domain else None
    return Organization.objects.alive().filter(pk=pk).first() if pk else None


def verified_domains(org: Organization) -> list[str]:
    return list(
        VerifiedDomain.objects.filter(organization=org, verified_at__isnull=False)
        .order_by("domain")
        .values_list("domain", flat=True)
    )


def domains_for_org(org: Organization):
    return VerifiedDomain.objects.filter(organization=org).order_by("domain")


def _lock(actor: User, org: Organization) -> Organization:
    from orgs.services import lock_org

    org = lock_org(org)
    require_org_capability(actor, org, OrgCapability.MANAGE_SSO)
    return org


def get_domain(org: Organization, public_id: str) -> VerifiedDomain:
    claim = VerifiedDomain.objects.filter(organization=org, public_id=public_id).first()
    if claim is None:
        raise NotFound("No such domain.", code="domain_not_found")
    return claim


@transaction.atomic
def domain_add(*, actor: User, org: Organization, domain: str) -> VerifiedDomain:
    """Claim a domain for the org; it counts once its TXT record is found (domain_verify)."""
    org = _lock(actor, org)
    domain = normalize_domain(domain)
    if VerifiedDomain.objects.filter(organization=org, domain=domain).exists():
        raise Conflict(f"{domain} is already listed for this organization.", code="domain_exists")
    if verified_domain_of(domain):
        raise Conflict(
            f"{domain} is verified by another organization. A domain can be verified by one "
            "organization only; ask its owners to remove it first.",
            code="domain_taken",
        )
    if VerifiedDomain.objects.filter(organization=org).count() >= MAX_DOMAINS_PER_ORG:
        raise Conflict(
            f"An organization can list at most {MAX_DOMAINS_PER_ORG} domains.",
            code="domain_limit",
        )
    claim = VerifiedDomain.objects.create(
        organization=org, domain=domain, token=secrets.token_urlsafe(24), created_by=actor
    )
    record(
        actor=actor,
        action="sso.domain_added",
        organization=org,
        target=claim,
        target_label=domain,
        details={"domain": domain},
    )
    return claim


def txt_records(domain: str) -> list[str]:
    """The TXT strings published at `domain`, from SSO_DNS_NAMESERVERS (or the system's)."""
    if settings.SSO_DNS_NAMESERVERS:
        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers = list(settings.SSO_DNS_NAMESERVERS)
    else:
        resolver = dns.resolver.Resolver()
    resolver.port = settings.SSO_DNS_PORT
    resolver.lifetime = settings.SSO_DNS_TIMEOUT
    try:
        answer = resolver.resolve(domain, "TXT", search=False)
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
        return []
    except (dns.exception.DNSException, OSError) as exc:
        raise Conflict(
            f"Could not look up {domain} in DNS right now ({exc.__class__.__name__}). "
            "Try again in a few minutes.",
            code="dns_unavailable",
        ) from None
    return [b"".join(r.strings).decode("utf-8", "replace") for r in answer]


def domain_verify(*, actor: User, org: Organization, claim: VerifiedDomain) -> VerifiedDomain:
    """Look for the TXT record, then mark the claim verified (refused if another org won it)."""
    require_org_capability(actor, org, OrgCapability.MANAGE_SSO)
    found = txt_records(claim.domain)  # the network is asked outside the transaction
    return _mark_verified(actor=actor, org=org, claim=claim, found=found)


@transaction.atomic
def _mark_verified(
    *, actor: User, org: Organization, claim: VerifiedDomain, found: list[str]
) -> VerifiedDomain:
    org = _lock(actor, org)
    claims = list(
        VerifiedDomain.objects.select_for_update().filter(domain=claim.domain).order_by("pk")
    )
    mine = next((c for c in claims if c.pk == claim.pk and c.organization_id == org.pk), None)
    if mine is None:
        raise NotFound("No such domain.", code="domain_not_found")
    if mine.is_verified:
        return mine
    if any(c.is_verified for c in claims):
        raise Conflict(f"{mine.domain} is verified by another organization.", code="domain_taken")
    if mine.txt_value not in [value.strip() for value in found]:
        message = (
            f"No TXT record with the value {mine.txt_value} was found at {mine.domain}. "
            "Add it at your DNS provider; changes can take a while to show."
        )
        raise ValidationFailed(message, fields={"domain": message}, code="txt_record_missing")
    mine.verified_at = timezone.now()
    mine.save(update_fields=["verified_at"])
    record(
        actor=actor,
        action="sso.domain_verified",
        organization=org,
        target=mine,
        target_label=mine.domain,
        details={"domain": mine.domain},
    )
    return mine


@transaction.atomic
def domain_remove(*, actor: User, org: Organization, claim: VerifiedDomain) -> None:
    """Forget the domain: its people are no longer discovered, provisioned or held to SSO."""
    org = _lock(actor, org)
    mine = VerifiedDomain.objects.select_for_update().filter(pk=claim.pk, organization=org).first()
    if mine is None:
        raise NotFound("No such domain.", code="domain_not_found")
    record(
        actor=actor,
        action="sso.domain_removed",
        organization=org,
        target=mine,
        target_label=mine.domain,
        details={"domain": mine.domain, "was_verified": mine.is_verified},
    )
    mine.delete()
