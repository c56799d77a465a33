"""Support admin for billing: the plan catalogue is editable; accounts and usage are read here."""

from django.contrib import admin

from billing.models import (
    ActiveMemberCount,
    BillingAccount,
    DailyActiveMember,
    DailyWorkspaceUsage,
    Invoice,
    PaymentMethod,
    Plan,
    RollupWatermark,
)
from config.admin import EstimatedCountPaginator, ViewOnlyAdmin, ViewOnlyInline


@admin.register(Plan)
class PlanAdmin(admin.ModelAdmin):
    """The catalogue of plans (not an org's choice of plan, which is audited in billing)."""

    list_display = (
        "name",
        "code",
        "monthly_price_cents",
        "max_workspaces",
        "max_members",
        "max_rows_per_month",
        "is_default",
    )
    list_filter = ("is_default",)
    search_fields = ("name", "code")
    ordering = ("sort_order",)

    def has_delete_permission(self, request, obj=None):
        return False  # accounts point at plans (PROTECT)


class PaymentMethodInline(ViewOnlyInline):
    model = PaymentMethod
    fields = ("brand", "last4", "exp_month", "exp_year", "is_default", "created_at")
    readonly_fields = fields
    show_change_link = False


@admin.register(BillingAccount)
class BillingAccountAdmin(ViewOnlyAdmin):
    list_display = ("organization", "plan", "billing_email", "company_name", "updated_at")
    list_filter = ("plan",)
    search_fields = ("organization__name", "billing_email", "company_name", "=tax_id")
    list_select_related = ("organization", "plan")
    autocomplete_fields = ("organization", "plan")
    inlines = [PaymentMethodInline]


@admin.register(PaymentMethod)
class PaymentMethodAdmin(ViewOnlyAdmin):
    list_display = ("account", "brand", "last4", "exp_month", "exp_year", "is_default")
    list_filter = ("brand", "is_default")
    search_fields = ("=last4", "account__organization__name", "=provider_ref")
    list_select_related = ("account__organization",)
    autocomplete_fields = ("account",)


@admin.register(DailyWorkspaceUsage)
class DailyWorkspaceUsageAdmin(ViewOnlyAdmin):
    list_display = ("day", "workspace", "runs", "succeeded", "failed", "rows_processed")
    list_filter = ("day",)
    search_fields = ("workspace__name", "=workspace__public_id")
    list_select_related = ("workspace",)
    autocomplete_fields = ("workspace",)
    ordering = ("-day", "workspace")
    paginator = EstimatedCountPaginator
    show_full_result_count = False


@admin.register(DailyActiveMember)
class DailyActiveMemberAdmin(ViewOnlyAdmin):
    list_display = ("day", "workspace", "user")
    list_filter = ("day",)
    search_fields = ("user__email", "workspace__name")
    list_select_related = ("workspace", "user")
    autocomplete_fields = ("workspace", "user")
    ordering = ("-day",)
    paginator = EstimatedCountPaginator
    show_full_result_count = False


@admin.register(ActiveMemberCount)
class ActiveMemberCountAdmin(ViewOnlyAdmin):
    list_display = ("organization", "workspace", "active_members", "window_start", "window_end")
    search_fields = ("organization__name", "workspace__name")
    list_select_related = ("organization", "workspace")
    autocomplete_fields = ("organization", "workspace")


@admin.register(RollupWatermark)
class RollupWatermarkAdmin(ViewOnlyAdmin):
    list_display = ("name", "value")
    search_fields = ("name",)


@admin.register(Invoice)
class InvoiceAdmin(ViewOnlyAdmin):
    """Closed months (written only by billing.invoices.invoice_close_month)."""

    list_display = ("number", "organization", "period_start", "plan_name", "amount", "status")
    list_filter = ("status",)
    search_fields = ("number", "organization__slug", "organization__name")
    list_select_related = ("organization",)
