"""The append-only audit log: one table (partitioned by month on PostgreSQL), a hash chain per
organization."""

from django.db import models
from django.utils import timezone

from config.ids import PublicIdField


class AuditEvent(models.Model):
    """One recorded action. Never updated or deleted by the application (a DB trigger enforces it).

    Foreign keys carry no database constraint: events outlive the workspaces, tokens and users
    they mention, and labels are snapshotted so the log still reads after they are gone.
    """

    class ActorType(models.TextChoices):
        USER = "user"
        TOKEN = "token"
        SYSTEM = "system"
        SUPPORT = "support"  # a support engineer, with the ticket and reason in details

    # Not UNIQUE in the database: on PostgreSQL the table is partitioned by month on
    # occurred_at, and a unique index there must include the partition key. The ids are 16
    # random characters (config/ids.py) and the hash chain covers them.
    public_id = PublicIdField(prefix="evt", unique=False, db_index=True)
    # The partition key (PostgreSQL): the primary key there is (id, occurred_at), `id` still
    # comes from one identity sequence, and Django treats `id` alone as the primary key.
    occurred_at = models.DateTimeField(default=timezone.now)
    # The workspace's org at the time of the event, so history survives unlinking.
    organization = models.ForeignKey(
        "orgs.Organization",
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        null=True,
        blank=True,
        related_name="+",
    )
    workspace = models.ForeignKey(
        "workspaces.Workspace",
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        null=True,
        blank=True,
        related_name="+",
    )
    workspace_label = models.CharField(max_length=100, blank=True)
    actor_type = models.CharField(max_length=10, choices=ActorType.choices)
    actor_user = models.ForeignKey(
        "members.User",
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        null=True,
        blank=True,
        related_name="+",
    )
    actor_token = models.ForeignKey(
        "members.ApiToken",
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        null=True,
        blank=True,
        related_name="+",
    )
    actor_label = models.CharField(max_length=254, blank=True)
    action = models.CharField(max_length=64)
    target_type = models.CharField(max_length=32, blank=True)
    target_id = models.CharField(max_length=40, blank=True)
    target_label = models.CharField(max_length=254, blank=True)
    details = models.JSONField(default=dict, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    # Hash chain: chain_key is the org id (0 for events outside any org).
    chain_key = models.BigIntegerField(default=0)
    seq = models.BigIntegerField(default=0)
    prev_hash = models.CharField(max_length=64, blank=True)
    hash = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["-occurred_at", "-id"]
        # (chain_key, seq) is not UNIQUE in the database either (same partitioning rule): the
        # insert trigger only lets an event continue its chain at the head, so a seq is never
        # written twice, and verify_chain() reports a repeated or missing one.
        indexes = [
            models.Index(fields=["chain_key", "seq"], name="audit_chain_seq"),
            models.Index(
                "organization",
                models.F("occurred_at").desc(),
                models.F("id").desc(),
                name="audit_org_time",
            ),
            models.Index(
                "organization",
                "actor_user",
                models.F("occurred_at").desc(),
                models.F("id").desc(),
                name="audit_org_actor_time",
            ),
            models.Index(
                "organization",
                "workspace",
                models.F("occurred_at").desc(),
                models.F("id").desc(),
                name="audit_org_ws_time",
            ),
            # varchar_pattern_ops so that a category filter (action LIKE 'member.%') is an
            # index range on PostgreSQL whatever the database collation; equality uses it too.
            models.Index(
                fields=["organization", "action", "-occurred_at", "-id"],
                opclasses=["int8_ops", "varchar_pattern_ops", "timestamptz_ops", "int8_ops"],
                name="audit_org_action_time",
            ),
            models.Index("workspace", models.F("occurred_at").desc(), name="audit_ws_time"),
        ]

    def __str__(self):
        return f"{self.action} by {self.actor_label} at {self.occurred_at:%Y-%m-%d %H:%M}"


class AuditChainHead(models.Model):
    """The tip of one chain; appending locks this row so concurrent writers serialize."""

    chain_key = models.BigIntegerField(unique=True)
    last_seq = models.BigIntegerField(default=0)
    last_hash = models.CharField(max_length=64, blank=True)


class ChainVerification(models.Model):
    """The result of the last scheduled verification of one chain, shown on the audit page."""

    chain_key = models.BigIntegerField(unique=True)
    verified_at = models.DateTimeField(default=timezone.now)
    verified_count = models.BigIntegerField(default=0)
    last_event_public_id = models.CharField(max_length=32, blank=True)
    ok = models.BooleanField(default=True)
    first_bad_event_public_id = models.CharField(max_length=32, blank=True)


class AuditPruneRecord(models.Model):
    """What retention pruning removed from a chain, written by the database's own prune
    function (audit_prune_chain), in the same transaction as the delete. The application's
    database role can read this table, not write it (audit/dbsecurity.py)."""

    chain_key = models.BigIntegerField()
    cutoff = models.DateTimeField()
    first_seq = models.BigIntegerField()
    last_seq = models.BigIntegerField()
    last_hash = models.CharField(max_length=64)
    count = models.BigIntegerField()
    pruned_at = models.DateTimeField()
    pruned_by = models.CharField(max_length=63)

    class Meta:
        indexes = [models.Index(fields=["chain_key", "last_seq"], name="audit_prune_chain_seq")]

    def __str__(self):
        return f"chain {self.chain_key}: seq {self.first_seq}–{self.last_seq} pruned"


class ChainCheckpoint(models.Model):
    """A signed note that a chain reached `seq` with head hash `head_hash` at `created_at`.

    Written by the hourly verification (after the chain verified) and by record() every
    AUDIT_CHECKPOINT_EVERY events, in the event's own transaction. The application's
    database role may only INSERT here, never UPDATE or DELETE, and the MAC needs
    AUDIT_CHECKPOINT_KEY, which the database does not hold: removing the newest events and
    rewinding the chain head leaves checkpoints the chain no longer reaches (audit/chain.py).
    """

    chain_key = models.BigIntegerField()
    seq = models.BigIntegerField()
    head_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField()
    mac = models.CharField(max_length=64)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["chain_key", "seq"], name="audit_checkpoint_seq_unique")
        ]

    def __str__(self):
        return f"chain {self.chain_key} at seq {self.seq}"


class StreamDestination(models.Model):
    """A customer's webhook that receives every audit event of the org (audit/streaming.py).

    The signing secret is kept (it signs every delivery) but shown only once, when created.
    """

    class Status(models.TextChoices):
        ACTIVE = "active"
        DISABLED = "disabled"  # failing for AUDIT_STREAM_DISABLE_AFTER_HOURS, or by an owner

    public_id = PublicIdField(prefix="dst")
    organization = models.ForeignKey(
        "orgs.Organization", on_delete=models.CASCADE, related_name="stream_destinations"
    )
    name = models.CharField(max_length=100)
    url = models.URLField(max_length=500)
    secret = models.CharField(max_length=100)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACTIVE)
    created_at = models.DateTimeField(default=timezone.now)
    created_by_label = models.CharField(max_length=254, blank=True)
    # Delivery state: the head of the queue waits until next_attempt_at after a failure.
    failing_since = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_delivered_at = models.DateTimeField(null=True, blank=True)
    disabled_at = models.DateTimeField(null=True, blank=True)
    disabled_reason = models.CharField(max_length=254, blank=True)

    class Meta:
        indexes = [models.Index(fields=["organization", "status"], name="audit_stream_dest_org")]

    def __str__(self):
        return f"{self.name} ({self.url})"


class StreamDelivery(models.Model):
    """The outbox: one row per (destination, event), written by record() in the event's own
    INSERT statement, so an event is queued for delivery exactly when it commits. Delivered
    oldest row first per destination; a replay adds new rows for old events."""

    class Status(models.TextChoices):
        PENDING = "pending"
        DELIVERED = "delivered"
        SKIPPED = "skipped"  # the destination was removed or disabled before delivery

    destination = models.ForeignKey(
        StreamDestination, on_delete=models.CASCADE, related_name="deliveries"
    )
    event = models.ForeignKey(
        AuditEvent, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    seq = models.BigIntegerField()
    created_at = models.DateTimeField(default=timezone.now)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(
                fields=["destination", "id"],
                condition=models.Q(status="pending"),
                name="audit_stream_pending",
            ),
            models.Index(fields=["destination", "-id"], name="audit_stream_log"),
        ]

    def __str__(self):
        return f"event {self.event_id} → destination {self.destination_id} ({self.status})"
