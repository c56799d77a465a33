"""A workspace, its members, and its resources: warehouses, models, destinations, syncs, runs."""

from django.conf import settings
from django.db import models
from django.db.models import TextChoices
from django.utils import timezone

from config.ids import PublicIdField
from config.roles import Role


class Workspace(models.Model):
    """The unit of work. `organization` is its one org (or none): invariant 1 held by the FK."""

    public_id = PublicIdField(prefix="ws")
    name = models.CharField(max_length=100)
    slug = models.SlugField(max_length=50, unique=True)
    organization = models.ForeignKey(
        "orgs.Organization",
        on_delete=models.PROTECT,  # unlinking is a service; never a cascade
        null=True,
        blank=True,
        related_name="workspaces",
    )
    linked_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["organization", "name"])]

    def __str__(self):
        return self.name


class WorkspaceMembership(models.Model):
    class Source(models.TextChoices):
        DIRECT = "direct"
        ORG = "org", "via organization"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="workspace_memberships"
    )
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="memberships")
    role = models.PositiveSmallIntegerField(choices=Role.choices, default=Role.MEMBER)
    source = models.CharField(max_length=10, choices=Source.choices, default=Source.DIRECT)
    granted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "workspace"], name="one_workspace_membership")
        ]
        indexes = [models.Index(fields=["workspace", "role"])]

    def __str__(self):
        return f"{self.user} in {self.workspace} ({Role(self.role).label})"

    @property
    def role_name(self) -> str:
        return Role(self.role).label


class WorkspaceResource(models.Model):
    """Fields every workspace resource shares."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    name = models.CharField(max_length=100)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True
        ordering = ["name"]

    def __str__(self):
        return self.name


class Warehouse(WorkspaceResource):
    class Kind(TextChoices):  # `models` in this class is the reverse relation to DataModel
        SNOWFLAKE = "snowflake", "Snowflake"
        BIGQUERY = "bigquery", "BigQuery"
        REDSHIFT = "redshift", "Redshift"
        POSTGRES = "postgres", "PostgreSQL"
        DATABRICKS = "databricks", "Databricks"

    public_id = PublicIdField(prefix="wh")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    host = models.CharField(max_length=255, blank=True)
    database = models.CharField(max_length=100, blank=True)
    username = models.CharField(max_length=100, blank=True)

    class Meta(WorkspaceResource.Meta):
        indexes = [models.Index(fields=["workspace", "name"])]


class DataModel(WorkspaceResource):
    public_id = PublicIdField(prefix="mdl")
    warehouse = models.ForeignKey(Warehouse, on_delete=models.PROTECT, related_name="models")
    sql = models.TextField()

    class Meta(WorkspaceResource.Meta):
        indexes = [models.Index(fields=["workspace", "name"])]


class Destination(WorkspaceResource):
    class Kind(models.TextChoices):
        SALESFORCE = "salesforce", "Salesforce"
        HUBSPOT = "hubspot", "HubSpot"
        BRAZE = "braze", "Braze"
        MARKETO = "marketo", "Marketo"
        WEBHOOK = "webhook", "Webhook"

    public_id = PublicIdField(prefix="dst")
    kind = models.CharField(max_length=20, choices=Kind.choices)

    class Meta(WorkspaceResource.Meta):
        indexes = [models.Index(fields=["workspace", "name"])]


class Sync(WorkspaceResource):
    class Schedule(models.TextChoices):
        MANUAL = "manual", "Manual"
        HOURLY = "hourly", "Hourly"
        DAILY = "daily", "Daily"
        WEEKLY = "weekly", "Weekly"

    public_id = PublicIdField(prefix="syn")
    model = models.ForeignKey(DataModel, on_delete=models.PROTECT, related_name="syncs")
    destination = models.ForeignKey(Destination, on_delete=models.PROTECT, related_name="syncs")
    schedule = models.CharField(max_length=10, choices=Schedule.choices, default=Schedule.DAILY)
    enabled = models.BooleanField(default=True)

    class Meta(WorkspaceResource.Meta):
        indexes = [models.Index(fields=["workspace", "name"])]


class SyncRun(models.Model):
    """One finished run of a sync, reported by the sync engine; the source of usage figures."""

    class Status(models.TextChoices):
        SUCCEEDED = "succeeded"
        FAILED = "failed"

    public_id = PublicIdField(prefix="run")
    sync = models.ForeignKey(Sync, on_delete=models.CASCADE, related_name="runs")
    # Denormalised from sync.workspace so roll-ups group without a join.
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField()
    status = models.CharField(max_length=10, choices=Status.choices)
    rows_processed = models.BigIntegerField(default=0)
    bytes_processed = models.BigIntegerField(default=0)
    error = models.TextField(blank=True)
    # When the run was recorded here: the roll-up watermark, so late-arriving runs are counted.
    recorded_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [
            models.Index(fields=["recorded_at"]),
            models.Index(fields=["workspace", "finished_at"]),
            models.Index(fields=["sync", "-finished_at"]),
        ]
