"""Keeping an org's SAML IdP metadata current when it was configured from a URL.

IdPs rotate their signing certificates and move endpoints; an org that gave us the metadata
URL gets it re-fetched daily (beat `refresh-saml-metadata`) and whenever an owner presses
"Refresh now". The fetch is the same as at configuration (saml.fetch_metadata: https, or
loopback http where SSO_METADATA_ALLOW_PRIVATE allows it; at most 500 KB, 10 seconds, no
redirects). Rules (README › Single sign-on):
- a failed fetch or invalid metadata keeps the metadata we have and records
  `sso.metadata_refresh_failed`;
- metadata describing another IdP (a different entity id) is refused the same way: only an
  owner saving the settings may change which IdP the org trusts;
- changed metadata is stored and recorded as `sso.metadata_refreshed` (old and new signing
  certificate fingerprints); unchanged metadata changes and records nothing.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass

from celery import shared_task
from django.db import transaction
from saml2.mdstore import InMemoryMetaData

from audit.services import record
from config.errors import DomainError, NotFound, ValidationFailed
from members.models import User
from orgs.models import Organization
from orgs.permissions import OrgCapability, require_org_capability
from orgs.sso.models import SamlConnection
from orgs.sso.saml import fetch_metadata, parse_idp_metadata


@dataclass
class RefreshOutcome:
    status: str  # "updated", "unchanged" or "failed"
    message: str = ""


def signing_fingerprints(xml: str, entity_id: str) -> list[str]:
    """SHA-256 fingerprints of the IdP's signing certificates in the metadata."""
    md = InMemoryMetaData(None, xml)
    md.load()
    prints = []
    for _name, pem in md.certs(entity_id, "idpsso", use="signing"):
        body = "".join(line for line in str(pem).split() if not line.startswith("-----"))
        prints.append(hashlib.sha256(base64.b64decode(body)).hexdigest())
    return sorted(set(prints))


def _connection(org: Organization) -> SamlConnection:
    conn = SamlConnection.objects.filter(organization=org).first()
    if conn is None or not conn.metadata_url:
        raise NotFound(
            "SAML single sign-on was not configured from a metadata URL: there is nothing to "
            "refresh. Save the settings with your IdP's metadata URL first.",
            code="saml_no_metadata_url",
        )
    return conn


def saml_metadata_refresh(*, actor: User | None, org: Organization) -> RefreshOutcome:
    """Fetch the metadata again from its URL and store it if it changed (actor=None: beat)."""
    if actor is not None:
        require_org_capability(actor, org, OrgCapability.MANAGE_SSO)
    conn = _connection(org)
    url = conn.metadata_url
    try:
        xml = fetch_metadata(url).strip()  # the network is asked outside any transaction
        info = parse_idp_metadata(xml)
        if info.entity_id != conn.idp_entity_id:
            raise ValidationFailed(
                f"The metadata at this URL now describes another identity provider "
                f"({info.entity_id}, not {conn.idp_entity_id}); save the SSO settings to "
                "switch to it.",
                code="saml_entity_changed",
            )
    except DomainError as exc:
        _record_failure(actor=actor, org=org, url=url, error=exc)
        return RefreshOutcome("failed", exc.message)
    return _store(actor=actor, org=org, url=url, xml=xml, sso_url=info.sso_url)


@transaction.atomic
def _store(
    *, actor: User | None, org: Organization, url: str, xml: str, sso_url: str
) -> RefreshOutcome:
    from orgs.services import lock_org

    org = lock_org(org)
    if actor is not None:
        require_org_capability(actor, org, OrgCapability.MANAGE_SSO)
    conn = SamlConnection.objects.select_for_update().filter(organization=org).first()
    if conn is None or conn.metadata_url != url:
        # Removed or reconfigured while we fetched: the owner's newer choice stands.
        return RefreshOutcome("unchanged", "The SSO settings changed meanwhile.")
    if conn.idp_metadata_xml.strip() == xml:
        return RefreshOutcome("unchanged", "The metadata has not changed.")
    before = signing_fingerprints(conn.idp_metadata_xml, conn.idp_entity_id)
    after = signing_fingerprints(xml, conn.idp_entity_id)
    conn.idp_metadata_xml = xml
    if actor is not None:
        conn.updated_by = actor
    conn.save()
    record(
        actor=actor,
        action="sso.metadata_refreshed",
        organization=org,
        target=org,
        target_label=conn.idp_entity_id,
        details={
            "metadata_url": url,
            "sso_url": sso_url,
            "signing_certificates_before": before,
            "signing_certificates_after": after,
            "certificates_changed": before != after,
            "trigger": "owner" if actor else "schedule",
        },
    )
    return RefreshOutcome("updated", "The identity provider's metadata was updated.")


def _record_failure(*, actor: User | None, org: Organization, url: str, error: DomainError) -> None:
    """The failure's own event; the stored metadata stays as it was."""
    with transaction.atomic():
        record(
            actor=actor,
            action="sso.metadata_refresh_failed",
            organization=org,
            target=org,
            details={
                "metadata_url": url,
                "reason": error.code,
                "message": error.message,
                "trigger": "owner" if actor else "schedule",
            },
        )


# --- tasks (registered as orgs.tasks.*, imported by orgs/tasks.py) -------------------------


@shared_task(
    name="orgs.tasks.refresh_org_saml_metadata",
    ignore_result=True,
    autoretry_for=(OSError,),
    retry_backoff=True,
    max_retries=3,
)
def refresh_org_saml_metadata(organization_id: int) -> str:
    """One org's refresh (a fetch failure is an outcome, recorded, not an error to retry)."""
    org = Organization.objects.alive().filter(pk=organization_id).first()
    if org is None:
        return "gone"
    try:
        return saml_metadata_refresh(actor=None, org=org).status
    except NotFound:
        return "not configured by URL"


@shared_task(name="orgs.tasks.refresh_saml_metadata", ignore_result=True)
def refresh_saml_metadata() -> int:
    """Beat (daily): queue a refresh for every enabled SAML connection set up by URL."""
    ids = list(
        SamlConnection.objects.filter(enabled=True, organization__deleted_at__isnull=True)
        .exclude(metadata_url="")
        .order_by("organization_id")
        .values_list("organization_id", flat=True)
    )
    for organization_id in ids:
        refresh_org_saml_metadata.delay(organization_id)
    return len(ids)
