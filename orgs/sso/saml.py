"""SAML 2.0 for an organization (pysaml2, signatures checked by xmlsec1).

Our side (the SP) per org: entity id = the metadata URL, one ACS (HTTP-POST). An assertion
is accepted only if pysaml2 verified it (assertion signed by the IdP's metadata certificate,
audience = our entity id, Destination/Recipient = our ACS, inside its validity window, in
response to a request this browser started — unless the owner turned IdP-initiated on), its
id was never used before, and its email is in one of the org's verified domains.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from defusedxml import ElementTree
from django.conf import settings
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone
from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
from saml2.client import Saml2Client
from saml2.config import SPConfig
from saml2.mdstore import InMemoryMetaData
from saml2.metadata import create_metadata_string
from saml2.response import (
    IncorrectlySigned,
    SignatureError,
    StatusError,
    UnsolicitedResponse,
    VerificationError,
)
from saml2.saml import NAMEID_FORMAT_EMAILADDRESS
from saml2.sigver import MissingKey, SigverError
from saml2.validate import ResponseLifetimeExceed, ToEarly

from audit.services import record
from config.errors import DomainError, NotFound, ValidationFailed
from members.models import User
from orgs.models import Organization
from orgs.permissions import OrgCapability, require_org_capability
from orgs.sso.enforcement import refuse_while_required
from orgs.sso.keys import sp_key_pair
from orgs.sso.models import OidcConnection, SamlAssertionUse, SamlConnection

PROTOCOL_NS = "urn:oasis:names:tc:SAML:2.0:protocol"
# Clock skew we tolerate between the IdP and us, in seconds.
CLOCK_SKEW = 60
MAX_METADATA_BYTES = 500_000
# Where the email may arrive, after the attribute the owner configured (Okta: email;
# Entra: the emailaddress claim; LDAP-style: mail), and finally an email-format NameID.
EMAIL_ATTRIBUTES = (
    "email",
    "mail",
    "emailAddress",
    "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress",
    "urn:oid:0.9.2342.19200300.100.1.3",
)
NAME_ATTRIBUTES = (
    "name",
    "displayName",
    "http://schemas.microsoft.com/identity/claims/displayname",
    "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name",
)


class SamlRefused(DomainError):
    """A SAML response we will not accept; `reason` is a stable code for the audit log."""

    status = 403
    code = "saml_refused"

    def __init__(self, reason: str, message: str):
        super().__init__(message, code="saml_" + reason)
        self.reason = reason


# --- our side -----------------------------------------------------------------------------


def sp_entity_id(org: Organization) -> str:
    return settings.SITE_URL + reverse("sso:saml_metadata", args=[org.slug])


def acs_url(org: Organization) -> str:
    return settings.SITE_URL + reverse("sso:saml_acs", args=[org.slug])


def _config(org: Organization, conn: SamlConnection | None) -> SPConfig:
    key_file, cert_file = sp_key_pair()
    sp = {
        "endpoints": {"assertion_consumer_service": [(acs_url(org), BINDING_HTTP_POST)]},
        "allow_unsolicited": bool(conn and conn.allow_idp_initiated),
        "authn_requests_signed": False,
        "want_assertions_signed": True,  # the assertion itself; a signed response alone is not enough
        "want_response_signed": False,
        "name_id_format": NAMEID_FORMAT_EMAILADDRESS,
        "name_id_format_allow_create": True,
    }
    cnf = {
        "entityid": sp_entity_id(org),
        "xmlsec_binary": settings.SAML_XMLSEC_BINARY,
        "key_file": key_file,
        "cert_file": cert_file,
        "encryption_keypairs": [{"key_file": key_file, "cert_file": cert_file}],
        "service": {"sp": sp},
        "accepted_time_diff": CLOCK_SKEW,
        "allow_unknown_attributes": True,
    }
    if conn is not None:
        cnf["metadata"] = {"inline": [conn.idp_metadata_xml]}
    config = SPConfig()
    config.load(cnf)
    return config


def sp_metadata(org: Organization) -> str:
    conn = SamlConnection.objects.filter(organization=org).first()
    xml = create_metadata_string(None, config=_config(org, conn), valid=None)
    return xml.decode() if isinstance(xml, bytes) else xml


# --- the IdP's metadata (owner's configuration) ----------------------------------------------


@dataclass
class IdpInfo:
    entity_id: str
    sso_url: str


def parse_idp_metadata(xml: str) -> IdpInfo:
    """The IdP's entity id and redirect sign-on URL, or ValidationFailed saying what is wrong."""

    def bad(message):
        return ValidationFailed(message, fields={"metadata": message}, code="invalid_metadata")

    xml = (xml or "").strip()
    if not xml:
        raise bad("Paste or upload your identity provider's SAML metadata (XML).")
    if len(xml.encode()) > MAX_METADATA_BYTES:
        raise bad("That metadata is too large (over 500 KB).")
    try:
        ElementTree.fromstring(xml.encode())  # refuses entity expansion and DTD tricks
        md = InMemoryMetaData(None, xml)
        md.load()
    except Exception:
        raise bad("That is not valid SAML metadata XML.") from None
    idps = [eid for eid, entity in md.entity.items() if entity.get("idpsso_descriptor")]
    if len(idps) != 1:
        raise bad("The metadata must describe exactly one identity provider (IDPSSODescriptor).")
    entity_id = idps[0]
    sso = md.service(
        entity_id, "idpsso_descriptor", "single_sign_on_service", BINDING_HTTP_REDIRECT
    )
    if not sso:
        raise bad("The identity provider has no single sign-on URL for the HTTP-Redirect binding.")
    if not md.certs(entity_id, "idpsso", use="signing"):
        raise bad("The metadata has no signing certificate for the identity provider.")
    return IdpInfo(entity_id=entity_id, sso_url=sso[0]["location"])


def fetch_metadata(url: str) -> str:
    """The IdP's metadata from its URL: https, a public address, at most 500 KB, 10 seconds."""
    import urllib.request

    from orgs.sso.outbound import outbound_url_problem

    def bad(message):
        return ValidationFailed(message, fields={"metadata_url": message}, code="invalid_metadata")

    problem = outbound_url_problem(url, what="the metadata URL")
    if problem:
        raise bad(problem)

    class NoRedirects(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None  # a redirect could lead into our network: give the final URL instead

    request = urllib.request.Request(url.strip(), headers={"Accept": "application/xml"})
    opener = urllib.request.build_opener(NoRedirects)
    try:
        with opener.open(request, timeout=10) as response:
            body = response.read(MAX_METADATA_BYTES + 1)
    except Exception as exc:
        raise bad(f"Could not fetch the metadata ({exc.__class__.__name__}).") from None
    if len(body) > MAX_METADATA_BYTES:
        raise bad("That metadata is too large (over 500 KB).")
    return body.decode("utf-8", "replace")


def _clean_attribute(value: str, default: str, field: str) -> str:
    value = (value or "").strip() or default
    if len(value) > 200 or any(ch.isspace() for ch in value):
        message = (
            "Give the attribute's name as the IdP sends it (no spaces, at most 200 characters)."
        )
        raise ValidationFailed(message, fields={field: message})
    return value


def saml_configure(
    *,
    actor: User,
    org: Organization,
    metadata_xml: str,
    email_attribute: str = "email",
    name_attribute: str = "name",
    allow_idp_initiated: bool = False,
    enabled: bool = True,
    metadata_url: str = "",
) -> SamlConnection:
    """Set (or replace) the org's SAML identity provider from its metadata (given, or fetched
    from `metadata_url` when none is given). The fetch happens before our transaction opens."""
    require_org_capability(actor, org, OrgCapability.MANAGE_SSO)  # before fetching anything
    metadata_url = (metadata_url or "").strip()
    if metadata_url and not (metadata_xml or "").strip():
        metadata_xml = fetch_metadata(metadata_url)
    with transaction.atomic():
        return _saml_store(
            actor=actor,
            org=org,
            metadata_xml=metadata_xml,
            metadata_url=metadata_url,
            email_attribute=email_attribute,
            name_attribute=name_attribute,
            allow_idp_initiated=allow_idp_initiated,
            enabled=enabled,
        )


def _saml_store(
    *,
    actor: User,
    org: Organization,
    metadata_xml: str,
    metadata_url: str,
    email_attribute: str,
    name_attribute: str,
    allow_idp_initiated: bool,
    enabled: bool,
) -> SamlConnection:
    from orgs.services import lock_org

    org = lock_org(org)
    require_org_capability(actor, org, OrgCapability.MANAGE_SSO)
    info = parse_idp_metadata(metadata_xml)
    if OidcConnection.objects.filter(organization=org).exists():
        from config.errors import Conflict

        raise Conflict(
            f"{org.name} signs in with OpenID Connect. An organization uses one single sign-on "
            "protocol: remove the OpenID Connect setup first.",
            code="sso_protocol_in_use",
        )
    if not enabled:
        refuse_while_required(org, "turn SAML off")
    values = {
        "idp_metadata_xml": metadata_xml.strip(),
        "metadata_url": metadata_url[:500],
        "idp_entity_id": info.entity_id,
        "email_attribute": _clean_attribute(email_attribute, "email", "email_attribute"),
        "name_attribute": _clean_attribute(name_attribute, "name", "name_attribute"),
        "allow_idp_initiated": bool(allow_idp_initiated),
        "enabled": bool(enabled),
    }
    conn = SamlConnection.objects.select_for_update().filter(organization=org).first()
    before = None
    if conn is not None:
        before = {k: getattr(conn, k) for k in values if k != "idp_metadata_xml"}
        if all(getattr(conn, k) == v for k, v in values.items()):
            return conn
        for k, v in values.items():
            setattr(conn, k, v)
        conn.updated_by = actor
        conn.save()
    else:
        conn = SamlConnection.objects.create(organization=org, updated_by=actor, **values)
    after = {k: v for k, v in values.items() if k != "idp_metadata_xml"}
    record(
        actor=actor,
        action="sso.saml_configured",
        organization=org,
        target=org,
        target_label=info.entity_id,
        details={"before": before, "after": after, "sso_url": info.sso_url},
    )
    return conn


@transaction.atomic
def saml_remove(*, actor: User, org: Organization) -> None:
    """Forget the IdP (and turn off required SSO, which would otherwise lock people out)."""
    from orgs.services import lock_org

    org = lock_org(org)
    require_org_capability(actor, org, OrgCapability.MANAGE_SSO)
    conn = SamlConnection.objects.select_for_update().filter(organization=org).first()
    if conn is None:
        raise NotFound("SAML single sign-on is not set up.", code="saml_not_configured")
    refuse_while_required(org, "remove the SAML identity provider")
    record(
        actor=actor,
        action="sso.saml_removed",
        organization=org,
        target=org,
        target_label=conn.idp_entity_id,
        details={"idp_entity_id": conn.idp_entity_id},
    )
    conn.delete()


def active_connection(org: Organization) -> SamlConnection | None:
    return SamlConnection.objects.filter(organization=org, enabled=True).first()


# --- signing in ------------------------------------------------------------------------------


def login_redirect(
    org: Organization, conn: SamlConnection, relay_state: str = ""
) -> tuple[str, str]:
    """(request id, the IdP URL carrying our AuthnRequest) for an SP-initiated sign-in."""
    client = Saml2Client(config=_config(org, conn))
    request_id, info = client.prepare_for_authenticate(
        entityid=conn.idp_entity_id, relay_state=relay_state, binding=BINDING_HTTP_REDIRECT
    )
    location = dict(info["headers"])["Location"]
    return request_id, location


@dataclass
class SamlIdentity:
    email: str
    full_name: str
    assertion_id: str
    not_on_or_after: datetime | None
    in_response_to: str | None


def _first(ava: dict, names) -> str:
    lowered = {k.lower(): v for k, v in ava.items()}
    for name in names:
        values = ava.get(name) or lowered.get(name.lower())
        if values:
            value = values[0] if isinstance(values, list | tuple) else values
            if isinstance(value, str) and value.strip():
                return value.strip()
    return ""


def _precheck(org: Organization, raw: str) -> str:
    """Decode the POSTed response and check what pysaml2 would only log: a Destination."""
    if not raw:
        raise SamlRefused("missing", "No SAML response was posted.")
    try:
        xml = base64.b64decode(raw, validate=False)
        root = ElementTree.fromstring(xml)
    except (binascii.Error, ValueError, ElementTree.ParseError, Exception):
        raise SamlRefused("malformed", "The SAML response could not be read.") from None
    if root.tag != f"{{{PROTOCOL_NS}}}Response":
        raise SamlRefused("malformed", "That is not a SAML response.")
    destination = root.get("Destination")
    if destination != acs_url(org):
        raise SamlRefused(
            "wrong_destination",
            "The SAML response was addressed to another destination, not this organization's "
            "sign-in URL. Check the ACS URL configured at your identity provider.",
        )
    return xml.decode("utf-8", "replace")


def saml_verify(
    org: Organization, conn: SamlConnection, raw: str, outstanding: dict[str, str]
) -> SamlIdentity:
    """Verify a posted SAMLResponse (base64) against the org's IdP; SamlRefused if not good."""
    _precheck(org, raw)
    client = Saml2Client(config=_config(org, conn))
    try:
        response = client.parse_authn_request_response(raw, BINDING_HTTP_POST, outstanding)
    except (SignatureError, IncorrectlySigned, SigverError, MissingKey) as exc:
        if "missing" in str(exc).lower():
            raise SamlRefused(
                "unsigned", "The SAML assertion is not signed; the identity provider must sign it."
            ) from None
        raise SamlRefused(
            "bad_signature",
            "The SAML response's signature does not match the identity provider's certificate.",
        ) from None
    except ToEarly:
        raise SamlRefused("not_yet_valid", "The SAML assertion is not valid yet.") from None
    except ResponseLifetimeExceed:
        raise SamlRefused("expired", "The SAML assertion has expired; sign in again.") from None
    except UnsolicitedResponse:
        raise SamlRefused(
            "unsolicited",
            "This sign-in was not started here (IdP-initiated sign-in is off for this "
            "organization, or the request is too old). Start from the sign-in page.",
        ) from None
    except StatusError as exc:
        raise SamlRefused(
            "idp_error", f"The identity provider did not sign you in ({exc.__class__.__name__})."
        ) from None
    except VerificationError:
        raise SamlRefused("invalid", "The SAML assertion failed verification.") from None
    except Exception as exc:
        text = str(exc)
        if "AudienceRestrictions" in text:
            raise SamlRefused(
                "wrong_audience",
                "The SAML assertion is meant for another service (audience). Check the entity id "
                "configured at your identity provider.",
            ) from None
        if "signature" in text.lower() or "xmlsec" in text.lower():
            raise SamlRefused(
                "bad_signature",
                "The SAML response's signature does not match the identity provider's certificate.",
            ) from None
        raise SamlRefused("invalid", "The SAML response could not be verified.") from None
    if response is None or response.assertion is None:
        raise SamlRefused("invalid", "The SAML response could not be verified.")
    if response.issuer() != conn.idp_entity_id:
        raise SamlRefused("wrong_issuer", "The SAML response came from another identity provider.")
    ava = response.get_identity() or {}
    email = _first(ava, (conn.email_attribute, *EMAIL_ATTRIBUTES))
    name_id = response.name_id
    if not email and name_id is not None and name_id.format == NAMEID_FORMAT_EMAILADDRESS:
        email = (name_id.text or "").strip()
    full_name = _first(ava, (conn.name_attribute, *NAME_ATTRIBUTES))
    if not full_name:
        full_name = " ".join(
            filter(
                None,
                [
                    _first(ava, ("givenName", "firstName", "first_name")),
                    _first(ava, ("sn", "surname", "lastName", "last_name")),
                ],
            )
        )
    expires = None
    if getattr(response, "not_on_or_after", 0):
        expires = datetime.fromtimestamp(response.not_on_or_after, tz=UTC)
    return SamlIdentity(
        email=email,
        full_name=full_name,
        assertion_id=response.assertion.id,
        not_on_or_after=expires,
        in_response_to=response.in_response_to,
    )


def saml_consume(*, org: Organization, identity: SamlIdentity) -> None:
    """Use up the assertion id: the same assertion posted again is a replay."""
    try:
        with transaction.atomic():
            SamlAssertionUse.objects.create(
                organization=org,
                assertion_id=identity.assertion_id,
                not_on_or_after=identity.not_on_or_after,
            )
    except IntegrityError:
        raise SamlRefused(
            "replayed", "This SAML assertion was already used; sign in again."
        ) from None
    # An assertion past its NotOnOrAfter (and the clock skew) is refused as expired anyway, so
    # its id need not be remembered any more: the table holds only live assertions.
    SamlAssertionUse.objects.filter(
        organization=org,
        not_on_or_after__lt=timezone.now() - timedelta(seconds=2 * CLOCK_SKEW),
    ).delete()


@transaction.atomic
def sso_signin(*, org: Organization, email: str, full_name: str, source: str, ref: str = ""):
    """Provision (first time) and record the sign-in, in one transaction."""
    from orgs.sso.provisioning import sso_provision_member

    result = sso_provision_member(org=org, email=email, full_name=full_name, source=source)
    record(
        actor=result.user,
        action="sso.signed_in",
        organization=org,
        target=result.user,
        details={"source": source, "ref": ref, "joined": result.joined},
    )
    return result


def record_refusal(org: Organization, *, source: str, error: DomainError, email: str = "") -> None:
    """The refusal's own audit event (nothing else changed)."""
    with transaction.atomic():
        record(
            actor=None,
            action="sso.signin_refused",
            organization=org,
            details={
                "source": source,
                "reason": getattr(error, "reason", error.code),
                "message": error.message,
                "email": email,
            },
        )
