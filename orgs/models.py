"""Organizations, the history of which workspace was linked when, and governance policies."""

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models
from django.utils import timezone

from config.ids import PublicIdField

SLUG_RE = r"^[a-z0-9](?:[a-z0-9-]{1,48}[a-z0-9])$"
slug_validator = RegexValidator(
    SLUG_RE,
    "Use 3–50 lowercase letters, digits or hyphens, starting and ending with a letter or digit.",
    code="invalid_slug",
)


class OrganizationQuerySet(models.QuerySet):
    def alive(self):
        return self.filter(deleted_at__isnull=True)


class Organization(models.Model):
    """Groups workspaces. Deleting one keeps the row (deleted_at) so its audit history survives."""

    public_id = PublicIdField(prefix="org")
    name = models.CharField(max_length=100)
    slug = models.CharField(max_length=50, validators=[slug_validator])
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    deleted_at = models.DateTimeField(null=True, blank=True)

    objects = OrganizationQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["slug"],
                condition=models.Q(deleted_at__isnull=True),
                name="org_slug_unique_alive",
            )
        ]

    def __str__(self):
        return self.name


class WorkspaceLinkPeriod(models.Model):
    """When a workspace was linked to an org: usage counts a workspace only for these days."""

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="link_periods"
    )
    workspace = models.ForeignKey(
        "workspaces.Workspace", on_delete=models.CASCADE, related_name="link_periods"
    )
    linked_at = models.DateTimeField(default=timezone.now)
    unlinked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["organization", "linked_at"])]
        constraints = [
            models.UniqueConstraint(
                fields=["workspace"],
                condition=models.Q(unlinked_at__isnull=True),
                name="one_open_link_period",
            )
        ]


class GovernancePolicy(models.Model):
    """One policy of an org, inherited by every linked workspace; `value` depends on `kind`.

    allowed_email_domains: {"domains": ["acme.com"]}
    sync_min_role:         {"role": 20|30}  (workspace role needed to write syncs/destinations)
    default_workspace_grant: {"workspaces": ["ws_…"], "role": 10|20}
    require_two_factor:    {"enabled": true}
    require_sso:           {"enabled": true}  (orgs/sso/enforcement.py)
    support_access:        {"mode": "off"} | {"mode": "always"} | {"mode": "until", "hours": 24, "until": "<ISO>"}
    """

    class Kind(models.TextChoices):
        ALLOWED_EMAIL_DOMAINS = "allowed_email_domains", "Allowed email domains for invitations"
        SYNC_MIN_ROLE = "sync_min_role", "Minimum role to manage syncs and destinations"
        DEFAULT_WORKSPACE_GRANT = "default_workspace_grant", "Default workspace grant"
        REQUIRE_TWO_FACTOR = "require_two_factor", "Require two-factor sign-in"
        SUPPORT_ACCESS = "support_access", "Support access"
        REQUIRE_SSO = "require_sso", "Require single sign-on"

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="policies"
    )
    kind = models.CharField(max_length=40, choices=Kind.choices)
    value = models.JSONField(default=dict)
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "kind"], name="one_policy_per_kind")
        ]

    def __str__(self):
        return f"{self.get_kind_display()} for {self.organization}"


# Enterprise identity lives in its own package; its models belong to this app.
from orgs.sso.models import (  # noqa: E402
    OidcConnection,
    SamlAssertionUse,
    SamlConnection,
    VerifiedDomain,
)

__all__ = [
    "GovernancePolicy",
    "OidcConnection",
    "Organization",
    "SamlAssertionUse",
    "SamlConnection",
    "VerifiedDomain",
    "WorkspaceLinkPeriod",
]
