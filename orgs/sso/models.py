"""Verified email domains, an org's SAML connection, and the assertion ids already used.

Registered by the orgs app (imported at the end of orgs/models.py), so the tables are orgs_*.
"""

from django.conf import settings
from django.db import models
from django.utils import timezone

from config.ids import PublicIdField


class VerifiedDomain(models.Model):
    """A domain an org claims; verified once its TXT record holds `token`. A domain is verified
    by at most one org (the partial unique constraint), though several may try to claim it."""

    public_id = PublicIdField(prefix="dom")
    organization = models.ForeignKey(
        "orgs.Organization", on_delete=models.CASCADE, related_name="domains"
    )
    domain = models.CharField(max_length=253)
    token = models.CharField(max_length=64)
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    verified_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        app_label = "orgs"
        constraints = [
            models.UniqueConstraint(fields=["organization", "domain"], name="one_claim_per_org"),
            models.UniqueConstraint(
                fields=["domain"],
                condition=models.Q(verified_at__isnull=False),
                name="domain_verified_once",
            ),
        ]

    def __str__(self):
        return self.domain

    @property
    def is_verified(self) -> bool:
        return self.verified_at is not None

    @property
    def txt_value(self) -> str:
        """What the org publishes as a TXT record on the domain itself."""
        return f"signalsmith-verification={self.token}"


class SamlConnection(models.Model):
    """The org's SAML 2.0 identity provider (one per org): its metadata and how we read it."""

    organization = models.OneToOneField(
        "orgs.Organization", on_delete=models.CASCADE, related_name="saml"
    )
    idp_metadata_xml = models.TextField()
    idp_entity_id = models.CharField(max_length=500)
    metadata_url = models.URLField(max_length=500, blank=True)
    enabled = models.BooleanField(default=True)
    allow_idp_initiated = models.BooleanField(default=False)
    email_attribute = models.CharField(max_length=200, default="email")
    name_attribute = models.CharField(max_length=200, default="name", blank=True)
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )

    class Meta:
        app_label = "orgs"

    def __str__(self):
        return f"SAML for {self.organization}"


class SamlAssertionUse(models.Model):
    """An assertion id we accepted: the same id again is a replay, refused until it expires."""

    organization = models.ForeignKey(
        "orgs.Organization", on_delete=models.CASCADE, related_name="+"
    )
    assertion_id = models.CharField(max_length=200, unique=True)
    not_on_or_after = models.DateTimeField(null=True, blank=True)
    used_at = models.DateTimeField(default=timezone.now)

    class Meta:
        app_label = "orgs"


class OidcConnection(models.Model):
    """The org's OpenID Connect provider (one per org, and only when it has no SAML connection:
    an org signs in through one protocol). The provider's endpoints are read from its discovery
    document when an owner saves; the client secret is stored sealed (orgs/sso/sealed.py) and
    never shown again."""

    organization = models.OneToOneField(
        "orgs.Organization", on_delete=models.CASCADE, related_name="oidc"
    )
    issuer = models.CharField(max_length=500)
    discovery_url = models.URLField(max_length=600)
    # The discovery document's endpoints we use (authorization, token, jwks, algorithms).
    provider_metadata = models.JSONField(default=dict)
    client_id = models.CharField(max_length=255)
    client_secret_sealed = models.TextField()
    enabled = models.BooleanField(default=True)
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )

    class Meta:
        app_label = "orgs"

    def __str__(self):
        return f"OpenID Connect for {self.organization}"
