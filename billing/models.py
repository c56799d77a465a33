"""Billing account, plans and payment methods of an org, and the daily usage roll-ups."""

from django.db import models
from django.utils import timezone


class Plan(models.Model):
    code = models.SlugField(max_length=30, unique=True)
    name = models.CharField(max_length=60)
    monthly_price_cents = models.PositiveIntegerField(default=0)
    max_workspaces = models.PositiveIntegerField()
    max_members = models.PositiveIntegerField()
    max_rows_per_month = models.BigIntegerField()
    is_default = models.BooleanField(default=False)
    sort_order = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["sort_order", "monthly_price_cents"]

    def __str__(self):
        return self.name


class BillingAccount(models.Model):
    organization = models.OneToOneField(
        "orgs.Organization", on_delete=models.CASCADE, related_name="billing_account"
    )
    plan = models.ForeignKey(Plan, on_delete=models.PROTECT, related_name="+")
    billing_email = models.EmailField(blank=True)
    company_name = models.CharField(max_length=150, blank=True)
    address = models.TextField(blank=True)
    tax_id = models.CharField(max_length=50, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self):
        return f"Billing for {self.organization}"


class PaymentMethod(models.Model):
    """A card on file: brand, last four digits, expiry and the provider's reference — never more."""

    account = models.ForeignKey(
        BillingAccount, on_delete=models.CASCADE, related_name="payment_methods"
    )
    brand = models.CharField(max_length=20)
    last4 = models.CharField(max_length=4)
    exp_month = models.PositiveSmallIntegerField()
    exp_year = models.PositiveSmallIntegerField()
    provider_ref = models.CharField(max_length=64)
    is_default = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self):
        return f"{self.brand} •••• {self.last4}"


class DailyWorkspaceUsage(models.Model):
    """Sync-run figures of one workspace on one day, kept current by the roll-up task."""

    workspace = models.ForeignKey(
        "workspaces.Workspace", on_delete=models.CASCADE, related_name="+"
    )
    day = models.DateField()
    runs = models.IntegerField(default=0)
    succeeded = models.IntegerField(default=0)
    failed = models.IntegerField(default=0)
    rows_processed = models.BigIntegerField(default=0)
    bytes_processed = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "day"], name="one_usage_row_per_day")
        ]
        indexes = [models.Index(fields=["day", "workspace"])]


class DailyActiveMember(models.Model):
    """A person was active in a workspace on a day (written at most once per day and workspace)."""

    workspace = models.ForeignKey(
        "workspaces.Workspace", on_delete=models.CASCADE, related_name="+"
    )
    user = models.ForeignKey("members.User", on_delete=models.CASCADE, related_name="+")
    day = models.DateField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "day", "user"], name="one_active_row")
        ]
        indexes = [models.Index(fields=["day", "workspace"])]


class RollupWatermark(models.Model):
    """How far a roll-up has read its source (by SyncRun.recorded_at)."""

    name = models.CharField(max_length=50, unique=True)
    value = models.DateTimeField()


class ActiveMemberCount(models.Model):
    """Distinct people active in an org's workspaces over the last 30 days, as of the last
    roll-up pass: one row per (org, workspace linked during the window) and one org-wide row
    (workspace NULL). Only days the workspace was linked to the org count. Replaced wholesale
    by each roll-up pass (billing.rollups.refresh_active_member_counts)."""

    organization = models.ForeignKey(
        "orgs.Organization", on_delete=models.CASCADE, related_name="+"
    )
    workspace = models.ForeignKey(
        "workspaces.Workspace", on_delete=models.CASCADE, related_name="+", null=True
    )
    window_start = models.DateField()
    window_end = models.DateField()
    active_members = models.IntegerField(default=0)
    computed_at = models.DateTimeField()


class Invoice(models.Model):
    """One closed calendar month of an org's billing (written by billing.invoices.invoice_close_month).

    Figures are copied at closing time (plan, price, seats, rows), so a later plan change or a
    renamed org never rewrites history. One invoice per org and month.
    """

    class Status(models.TextChoices):
        PAID = "paid", "Paid"
        FAILED = "failed", "Payment failed"
        NO_CHARGE = "no_charge", "No charge"

    organization = models.ForeignKey(
        "orgs.Organization", on_delete=models.PROTECT, related_name="invoices"
    )
    number = models.CharField(max_length=40, unique=True)
    period_start = models.DateField()
    period_end = models.DateField()  # inclusive: the month's last day
    plan_code = models.CharField(max_length=30)
    plan_name = models.CharField(max_length=60)
    amount_cents = models.PositiveIntegerField()
    seats = models.PositiveIntegerField()  # members at closing
    workspaces = models.PositiveIntegerField()  # linked workspaces at closing
    rows_synced = models.BigIntegerField()
    rows_included = models.BigIntegerField()  # the plan's monthly rows (soft limit)
    status = models.CharField(max_length=10, choices=Status.choices)
    card_label = models.CharField(max_length=60, blank=True)  # e.g. "Visa •••• 4242"
    charge_ref = models.CharField(max_length=64, blank=True)
    failure_message = models.CharField(max_length=255, blank=True)
    bill_to = models.TextField(blank=True)  # company, address, tax id at closing
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "period_start"], name="one_invoice_per_org_month"
            )
        ]
        ordering = ["-period_start"]

    def __str__(self):
        return self.number

    @property
    def amount(self) -> str:
        return f"${self.amount_cents / 100:,.2f}"
