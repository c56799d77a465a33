"""Access reviews: someone accountable confirms, grant by grant, that each person still needs
each workspace (SOC 2 / ISO 27001). A review snapshots the grants in scope when it starts; each
item is decided keep / change role / revoke by a named reviewer, and the decision is applied
through the existing membership services (reviews/services.py)."""

from django.conf import settings
from django.db import models
from django.utils import timezone

from config.ids import PublicIdField
from config.roles import Role


class AccessReview(models.Model):
    class Status(models.TextChoices):
        OPEN = "open"
        COMPLETED = "completed"

    class Default(models.TextChoices):
        KEEP = "keep", "keep them"
        REVOKE = "revoke", "revoke them"

    public_id = PublicIdField(prefix="rev")
    organization = models.ForeignKey(
        "orgs.Organization", on_delete=models.CASCADE, related_name="access_reviews"
    )
    name = models.CharField(max_length=100)
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    started_at = models.DateTimeField(default=timezone.now)
    due_at = models.DateTimeField()
    # What happens at the due date to grants nobody reviewed.
    unreviewed = models.CharField(max_length=10, choices=Default.choices, default=Default.KEEP)
    whole_org = models.BooleanField(default=True)
    workspaces = models.ManyToManyField("workspaces.Workspace", blank=True, related_name="+")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    completed_at = models.DateTimeField(null=True, blank=True)
    reminded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["organization", "-started_at"]),
            models.Index(fields=["status", "due_at"]),
        ]

    def __str__(self):
        return self.name


class AccessReviewer(models.Model):
    """A reviewer of the whole review (workspace empty) or of one workspace's grants."""

    review = models.ForeignKey(AccessReview, on_delete=models.CASCADE, related_name="reviewers")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    workspace = models.ForeignKey(
        "workspaces.Workspace", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["review", "user", "workspace"], name="one_reviewer_row")
        ]


class AccessReviewItem(models.Model):
    """One grant (person, workspace, role) as it was when the review started, and its fate."""

    class Decision(models.TextChoices):
        KEEP = "keep", "keep"
        CHANGE = "change", "change role"
        REVOKE = "revoke", "revoke"

    public_id = PublicIdField(prefix="rvi")
    review = models.ForeignKey(AccessReview, on_delete=models.CASCADE, related_name="items")
    # Labels are snapshotted: the report still reads after people or workspaces are gone.
    workspace = models.ForeignKey(
        "workspaces.Workspace", on_delete=models.SET_NULL, null=True, related_name="+"
    )
    workspace_label = models.CharField(max_length=100)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    user_label = models.CharField(max_length=254)
    role = models.PositiveSmallIntegerField(choices=Role.choices)
    source = models.CharField(max_length=10)
    granted_by_label = models.CharField(max_length=254, blank=True)
    granted_at = models.DateTimeField(null=True, blank=True)
    last_active_at = models.DateTimeField(null=True, blank=True)
    decision = models.CharField(max_length=10, choices=Decision.choices, blank=True)
    new_role = models.PositiveSmallIntegerField(choices=Role.choices, null=True, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    decided_by_label = models.CharField(max_length=254, blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    by_default = models.BooleanField(default=False)  # decided at the due date, not by a person
    outcome = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["workspace_label", "user_label", "pk"]
        indexes = [models.Index(fields=["review", "decision"])]

    @property
    def role_name(self) -> str:
        return Role(self.role).label
