"""Accounts and org-level membership: User, OrgMembership, Invitation, ApiToken, two-factor."""

from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone

from config.ids import PublicIdField
from config.roles import Role


def normalize_email(email: str) -> str:
    """Emails compare trimmed and case-insensitively; we store them lowercased."""
    return (email or "").strip().lower()


class UserManager(BaseUserManager):
    use_in_migrations = True

    def get_by_natural_key(self, email):
        return self.get(email=normalize_email(email))

    def create_user(self, email, password=None, **extra):
        user = self.model(email=normalize_email(email), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_superuser(self, email, password=None, **extra):
        # An operator creating an account on the server vouches for its address.
        extra.update(is_staff=True, is_superuser=True, email_verified_at=timezone.now())
        return self.create_user(email, password, **extra)


class User(AbstractBaseUser, PermissionsMixin):
    """One person, one account: email is the login, unique case-insensitively."""

    public_id = PublicIdField(prefix="usr")
    email = models.EmailField(max_length=254, unique=True)
    full_name = models.CharField(max_length=150, blank=True)
    is_active = models.BooleanField(default=True)
    is_staff = models.BooleanField(default=False)
    date_joined = models.DateTimeField(default=timezone.now)
    last_active_at = models.DateTimeField(null=True, blank=True)
    # When the person proved they read this address (a verification link, an invitation or a
    # password-reset link). Unverified self-service accounts cannot be added anywhere.
    email_verified_at = models.DateTimeField(null=True, blank=True)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS = ["full_name"]

    class Meta:
        constraints = [models.UniqueConstraint(Lower("email"), name="user_email_ci_unique")]

    def __str__(self):
        return self.display_name

    @property
    def display_name(self) -> str:
        return self.full_name or self.email

    def save(self, *args, **kwargs):
        self.email = normalize_email(self.email)
        super().save(*args, **kwargs)


class OrgMembership(models.Model):
    """A person's membership of an organization, with their org role."""

    public_id = PublicIdField(prefix="mem")
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="org_memberships")
    organization = models.ForeignKey(
        "orgs.Organization", on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.PositiveSmallIntegerField(choices=Role.choices, default=Role.MEMBER)
    joined_at = models.DateTimeField(default=timezone.now)
    # Suspended: role and grants stay, but the person cannot use the org's pages, its linked
    # workspaces or API tokens there until unsuspended (members/lifecycle.py). Still a seat.
    suspended_at = models.DateTimeField(null=True, blank=True)
    suspended_by = models.ForeignKey(
        User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    suspension_reason = models.CharField(max_length=200, blank=True)
    # Kept by the database (triggers in migration 0007, in the statement that changes the
    # rows, so in the same transaction as every grant, revoke, link, unlink, deletion or
    # rename, whichever service or cascade does it): how many of the org's workspaces the
    # person has access to, and lower(name or email). They let every directory sort walk an
    # index instead of counting and sorting all members (README "Benchmark results").
    workspace_count = models.PositiveIntegerField(default=0, db_default=0, editable=False)
    sort_name = models.CharField(max_length=254, default="", db_default="", editable=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "organization"], name="one_org_membership")
        ]
        # The directory's sorts, each with the tie-breakers it orders by (same direction).
        indexes = [
            models.Index(fields=["organization", "sort_name", "id"], name="mem_dir_name"),
            models.Index(fields=["organization", "role", "sort_name", "id"], name="mem_dir_role"),
            models.Index(
                fields=["organization", "workspace_count", "sort_name", "id"],
                name="mem_dir_workspaces",
            ),
            models.Index(fields=["organization", "joined_at"]),
        ]

    def __str__(self):
        return f"{self.user} in {self.organization} ({Role(self.role).label})"

    @property
    def role_name(self) -> str:
        return Role(self.role).label

    @property
    def is_suspended(self) -> bool:
        return self.suspended_at is not None


class Invitation(models.Model):
    token: str  # the raw token, only on the instance the inviting service returns (never stored)

    class Status(models.TextChoices):
        PENDING = "pending"
        ACCEPTED = "accepted"
        REVOKED = "revoked"
        EXPIRED = "expired"

    class Delivery(models.TextChoices):
        QUEUED = "queued"
        SENT = "sent"
        FAILED = "failed"

    public_id = PublicIdField(prefix="inv")
    organization = models.ForeignKey(
        "orgs.Organization", on_delete=models.CASCADE, related_name="invitations"
    )
    email = models.EmailField(max_length=254)
    org_role = models.PositiveSmallIntegerField(choices=Role.choices, default=Role.MEMBER)
    invited_by = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, related_name="+")
    token_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(
        User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    delivery_state = models.CharField(
        max_length=10, choices=Delivery.choices, default=Delivery.QUEUED
    )
    delivery_attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            # At most one pending invitation per (org, email).
            models.UniqueConstraint(
                fields=["organization", "email"],
                condition=models.Q(status="pending"),
                name="one_pending_invitation_per_email",
            )
        ]
        indexes = [
            models.Index(fields=["organization", "status", "created_at"]),
            models.Index(fields=["delivery_state", "next_attempt_at"]),
            models.Index(fields=["invited_by", "created_at"]),
        ]

    def __str__(self):
        return f"Invitation of {self.email} to {self.organization}"

    @property
    def is_expired(self) -> bool:
        return self.expires_at <= timezone.now()

    @property
    def expires_in(self) -> str:
        """ "in 7 days", "in 1 day", "in 5 hours", "in under an hour" (for the pending list)."""
        seconds = (self.expires_at - timezone.now()).total_seconds()
        if seconds >= 86400:
            days = round(seconds / 86400)
            return f"in {days} day{'s' if days != 1 else ''}"
        hours = int(seconds // 3600)
        if hours >= 1:
            return f"in {hours} hour{'s' if hours != 1 else ''}"
        return "in under an hour"


class InvitationGrant(models.Model):
    """One (workspace, role) an invitation grants on acceptance."""

    invitation = models.ForeignKey(Invitation, on_delete=models.CASCADE, related_name="grants")
    workspace = models.ForeignKey(
        "workspaces.Workspace", on_delete=models.CASCADE, related_name="+"
    )
    role = models.PositiveSmallIntegerField(choices=Role.choices, default=Role.MEMBER)
    # "direct" when a workspace admin invited the person from inside the workspace: the access
    # then survives an unlink like any direct membership (WorkspaceMembership.Source).
    source = models.CharField(max_length=10, default="org")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["invitation", "workspace"], name="one_grant_per_ws")
        ]


class ApiToken(models.Model):
    """A personal API token: shown once, stored hashed, acts with its user's roles."""

    public_id = PublicIdField(prefix="tok")
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16)
    token_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    def __str__(self):
        return f"{self.name} ({self.prefix}…)"


class TwoFactorDevice(models.Model):
    """A confirmed TOTP secret and hashed one-time recovery codes."""

    user = models.OneToOneField(User, on_delete=models.CASCADE, related_name="two_factor")
    secret = models.CharField(max_length=64)
    confirmed_at = models.DateTimeField(null=True, blank=True)
    recovery_code_hashes = models.JSONField(default=list, blank=True)
    last_used_step = models.BigIntegerField(default=0)

    def __str__(self):
        return f"2FA for {self.user}"

    @property
    def is_confirmed(self) -> bool:
        return self.confirmed_at is not None


class WorkspaceInvitation(models.Model):
    """An emailed invitation into a workspace that is in no organization.

    Adding someone inside a workspace always goes by email (docs/rules.md invariant 7: no response
    reveals whether an account exists); inside a linked workspace it is an org Invitation
    instead, so the org's policies and seats apply.
    """

    token: str  # the raw token, only on the instance the inviting service returns (never stored)

    class Status(models.TextChoices):
        PENDING = "pending"
        ACCEPTED = "accepted"

    public_id = PublicIdField(prefix="winv")
    workspace = models.ForeignKey(
        "workspaces.Workspace", on_delete=models.CASCADE, related_name="invitations"
    )
    email = models.EmailField(max_length=254)
    role = models.PositiveSmallIntegerField(choices=Role.choices, default=Role.MEMBER)
    invited_by = models.ForeignKey(User, on_delete=models.CASCADE, related_name="+")
    token_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)

    class Meta:
        indexes = [models.Index(fields=["workspace", "email", "status"])]

    def __str__(self):
        return f"Invitation of {self.email} to {self.workspace}"


class EmailVerification(models.Model):
    """The one live email-verification link of an account: only its SHA-256 hash is stored;
    sending a new link replaces it."""

    user = models.OneToOneField(User, on_delete=models.CASCADE, related_name="email_verification")
    token_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()

    def __str__(self):
        return f"Email verification for {self.user}"


from members.account_models import EmailChange, UserSession  # noqa: E402, F401  (account data)
