"""/api/v1/organizations/{org_id}/domains, …/saml and …/oidc: the same services as the owners' page."""

from __future__ import annotations

from datetime import datetime

from django.http import HttpRequest
from django.urls import reverse
from ninja import Router, Schema

from config.apikit import Page, errors, public_id_or_none, text
from config.errors import NotFound
from orgs.api import org_of
from orgs.permissions import OrgCapability, require_org
from orgs.sso import domains, oidc, oidc_setup, saml
from orgs.sso.models import OidcConnection, SamlConnection, VerifiedDomain

router = Router(tags=["single sign-on"])


class DomainIn(Schema):
    domain: text(300, min_length=1)


class DomainOut(Schema):
    id: str
    domain: str
    verified: bool
    verified_at: datetime | None
    txt_name: str
    txt_value: str
    created_at: datetime


class DomainPage(Page):
    items: list[DomainOut]


class SamlIn(Schema):
    metadata_xml: text(saml.MAX_METADATA_BYTES) | None = None
    metadata_url: text(500) | None = None
    email_attribute: text(200) = "email"
    name_attribute: text(200) = "name"
    allow_idp_initiated: bool = False
    enabled: bool = True


class SamlOut(Schema):
    configured: bool
    enabled: bool
    idp_entity_id: str | None
    metadata_url: str | None
    allow_idp_initiated: bool
    email_attribute: str | None
    name_attribute: str | None
    sp_entity_id: str
    acs_url: str
    login_url: str


def _org(request: HttpRequest, org_id: str):
    org, role = org_of(request, org_id)
    require_org(role, OrgCapability.MANAGE_SSO)
    return org


def _domain_out(d: VerifiedDomain) -> dict:
    return {
        "id": d.public_id,
        "domain": d.domain,
        "verified": d.is_verified,
        "verified_at": d.verified_at,
        "txt_name": d.domain,
        "txt_value": d.txt_value,
        "created_at": d.created_at,
    }


def _claim(org, domain_id: str) -> VerifiedDomain:
    public_id = public_id_or_none(domain_id, "dom")
    if public_id is None:
        raise NotFound("No such domain.", code="domain_not_found")
    return domains.get_domain(org, public_id)


def _saml_out(org, conn: SamlConnection | None) -> dict:
    from django.conf import settings

    return {
        "configured": conn is not None,
        "enabled": bool(conn and conn.enabled),
        "idp_entity_id": conn.idp_entity_id if conn else None,
        "metadata_url": (conn.metadata_url or None) if conn else None,
        "allow_idp_initiated": bool(conn and conn.allow_idp_initiated),
        "email_attribute": conn.email_attribute if conn else None,
        "name_attribute": conn.name_attribute if conn else None,
        "sp_entity_id": saml.sp_entity_id(org),
        "acs_url": saml.acs_url(org),
        "login_url": settings.SITE_URL + reverse("sso:login", args=[org.slug]),
    }


@router.get(
    "/{org_id}/domains", response={200: DomainPage, **errors(403, 404)}, summary="List domains"
)
def list_domains(request, org_id: str):
    """The org's claimed domains (at most 20), verified or waiting for their TXT record."""
    org = _org(request, org_id)
    return {"items": [_domain_out(d) for d in domains.domains_for_org(org)], "next": None}


@router.post(
    "/{org_id}/domains",
    response={201: DomainOut, **errors(400, 403, 404, 409)},
    summary="Add a domain",
)
def add_domain(request, org_id: str, payload: DomainIn):
    """Claim a domain: publish `txt_value` as a TXT record on it, then call verify."""
    org = _org(request, org_id)
    claim = domains.domain_add(actor=request.user, org=org, domain=payload.domain)
    return 201, _domain_out(claim)


@router.post(
    "/{org_id}/domains/{domain_id}/verify",
    response={200: DomainOut, **errors(403, 404, 409)},
    summary="Verify a domain",
)
def verify_domain(request, org_id: str, domain_id: str):
    """Look the TXT record up in DNS; 422 `txt_record_missing` when it is not there yet."""
    org = _org(request, org_id)
    claim = domains.domain_verify(actor=request.user, org=org, claim=_claim(org, domain_id))
    return _domain_out(claim)


@router.delete(
    "/{org_id}/domains/{domain_id}",
    response={204: None, **errors(403, 404)},
    summary="Remove a domain",
)
def remove_domain(request, org_id: str, domain_id: str):
    org = _org(request, org_id)
    domains.domain_remove(actor=request.user, org=org, claim=_claim(org, domain_id))
    return 204, None


@router.get("/{org_id}/saml", response={200: SamlOut, **errors(403, 404)}, summary="Get SAML")
def get_saml(request, org_id: str):
    """Our SP values for the IdP (entity id, ACS URL) and the org's IdP setup, if any."""
    org = _org(request, org_id)
    return _saml_out(org, SamlConnection.objects.filter(organization=org).first())


@router.put(
    "/{org_id}/saml", response={200: SamlOut, **errors(400, 403, 404)}, summary="Set up SAML"
)
def put_saml(request, org_id: str, payload: SamlIn):
    """Set the IdP from its metadata XML, or from `metadata_url` (fetched now) when no XML is
    given."""
    org = _org(request, org_id)
    conn = saml.saml_configure(
        actor=request.user,
        org=org,
        metadata_xml=payload.metadata_xml or "",
        metadata_url=payload.metadata_url or "",
        email_attribute=payload.email_attribute,
        name_attribute=payload.name_attribute,
        allow_idp_initiated=payload.allow_idp_initiated,
        enabled=payload.enabled,
    )
    return _saml_out(org, conn)


@router.delete(
    "/{org_id}/saml", response={204: None, **errors(403, 404, 409)}, summary="Remove SAML"
)
def delete_saml(request, org_id: str):
    org = _org(request, org_id)
    saml.saml_remove(actor=request.user, org=org)
    return 204, None


class OidcIn(Schema):
    issuer: text(500, min_length=1)
    client_id: text(255, min_length=1)
    client_secret: text(1000) | None = None
    enabled: bool = True


class OidcOut(Schema):
    configured: bool
    enabled: bool
    issuer: str | None
    client_id: str | None
    client_secret_set: bool
    redirect_uri: str
    scopes: str
    login_url: str


def _oidc_out(org, conn: OidcConnection | None) -> dict:
    from django.conf import settings

    return {
        "configured": conn is not None,
        "enabled": bool(conn and conn.enabled),
        "issuer": conn.issuer if conn else None,
        "client_id": conn.client_id if conn else None,
        "client_secret_set": conn is not None,  # the secret itself is never returned
        "redirect_uri": oidc.callback_url(org),
        "scopes": oidc.SCOPES,
        "login_url": settings.SITE_URL + reverse("sso:login", args=[org.slug]),
    }


@router.get(
    "/{org_id}/oidc", response={200: OidcOut, **errors(403, 404)}, summary="Get OpenID Connect"
)
def get_oidc(request, org_id: str):
    """Our redirect URI and scopes for the provider, and the org's provider setup, if any."""
    org = _org(request, org_id)
    return _oidc_out(org, OidcConnection.objects.filter(organization=org).first())


@router.put(
    "/{org_id}/oidc",
    response={200: OidcOut, **errors(400, 403, 404, 409)},
    summary="Set up OpenID Connect",
)
def put_oidc(request, org_id: str, payload: OidcIn):
    """Set the provider from its issuer (discovery read now); `client_secret` may be left out
    to keep the stored one. 409 `sso_protocol_in_use` while the org uses SAML."""
    org = _org(request, org_id)
    conn = oidc_setup.oidc_configure(
        actor=request.user,
        org=org,
        issuer=payload.issuer,
        client_id=payload.client_id,
        client_secret=payload.client_secret or "",
        enabled=payload.enabled,
    )
    return _oidc_out(org, conn)


@router.delete(
    "/{org_id}/oidc",
    response={204: None, **errors(403, 404, 409)},
    summary="Remove OpenID Connect",
)
def delete_oidc(request, org_id: str):
    org = _org(request, org_id)
    oidc_setup.oidc_remove(actor=request.user, org=org)
    return 204, None
