"""What an organization's identity provider told us over SCIM, and the grants it led to.

A ScimUser is the IdP's record of one person in one org (userName, externalId, active), linked
to the account it provisioned. ScimGroups hold ScimUsers; a group's GroupMappings say which
workspace role its members get; a ScimGrant remembers each workspace access SCIM gave, so a
group change can take back exactly what SCIM handed out and nothing given by hand.
"""

from django.conf import settings
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone

from config.ids import PublicIdField
from config.roles import Role


class ScimToken(models.Model):
    """An org-scoped bearer token for the IdP: shown once, stored as a SHA-256 hash."""

    public_id = PublicIdField(prefix="sct")
    organization = models.ForeignKey(
        "orgs.Organization", on_delete=models.CASCADE, related_name="scim_tokens"
    )
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16)
    token_hash = models.CharField(max_length=64, unique=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    def __str__(self):
        return f"{self.name} ({self.prefix}…)"


class ScimUser(models.Model):
    public_id = PublicIdField(prefix="scu")
    organization = models.ForeignKey(
        "orgs.Organization", on_delete=models.CASCADE, related_name="scim_users"
    )
    # The account it provisioned; None while the IdP has sent no usable email address (the
    # record waits: no account, no seat, no access until one arrives).
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="scim_identities",
        null=True,
        blank=True,
    )
    user_name = models.CharField(max_length=254)
    external_id = models.CharField(max_length=254, blank=True)
    display_name = models.CharField(max_length=150, blank=True)
    # The complex attributes as the IdP sent them (RFC 7643 §4.1.1 name, §4.1.2 emails): kept
    # so they read back as written; the account's own email never changes through SCIM.
    name = models.JSONField(default=dict, blank=True)
    emails = models.JSONField(default=list, blank=True)
    # None when the IdP never sent `active` (or removed it): treated as active.
    active = models.BooleanField(null=True, default=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    version = models.PositiveIntegerField(default=1)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                "organization", Lower("user_name"), name="scim_user_name_unique_per_org"
            ),
            models.UniqueConstraint(fields=["organization", "user"], name="scim_user_once_per_org"),
        ]

    def __str__(self):
        return self.user_name

    @property
    def is_active(self) -> bool:
        return self.active is not False

    @property
    def provisioned(self) -> bool:
        """Has an account and is meant to hold a seat."""
        return self.user_id is not None and self.is_active


class ScimGroup(models.Model):
    public_id = PublicIdField(prefix="scg")
    organization = models.ForeignKey(
        "orgs.Organization", on_delete=models.CASCADE, related_name="scim_groups"
    )
    display_name = models.CharField(max_length=150)
    external_id = models.CharField(max_length=254, blank=True)
    members = models.ManyToManyField(ScimUser, related_name="groups", blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    version = models.PositiveIntegerField(default=1)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                "organization", Lower("display_name"), name="scim_group_name_unique_per_org"
            )
        ]

    def __str__(self):
        return self.display_name


class GroupMapping(models.Model):
    """'Members of group G get role R in workspace W', set by org owners/admins in the UI.

    Keyed by the group's displayName, so a mapping can be set before the IdP pushes the group.
    """

    organization = models.ForeignKey(
        "orgs.Organization", on_delete=models.CASCADE, related_name="scim_group_mappings"
    )
    group_name = models.CharField(max_length=150)
    workspace = models.ForeignKey(
        "workspaces.Workspace", on_delete=models.CASCADE, related_name="+"
    )
    role = models.PositiveSmallIntegerField(choices=Role.choices, default=Role.MEMBER)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                "organization",
                Lower("group_name"),
                "workspace",
                name="one_scim_mapping_per_group_and_workspace",
            )
        ]


class ScimGrant(models.Model):
    """A workspace access that SCIM group mappings gave (and so may change or take back)."""

    scim_user = models.ForeignKey(ScimUser, on_delete=models.CASCADE, related_name="grants")
    workspace = models.ForeignKey(
        "workspaces.Workspace", on_delete=models.CASCADE, related_name="+"
    )
    role = models.PositiveSmallIntegerField(choices=Role.choices)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["scim_user", "workspace"], name="one_scim_grant")
        ]
