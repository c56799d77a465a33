"""Access reviews in the admin, read-only: decisions go through reviews.services (audited)."""

from django.contrib import admin

from config.admin import ViewOnlyAdmin, ViewOnlyInline
from reviews.models import AccessReview, AccessReviewer, AccessReviewItem


class ItemInline(ViewOnlyInline):
    model = AccessReviewItem
    fields = ("workspace_label", "user_label", "role", "decision", "decided_by_label", "outcome")
    readonly_fields = fields


@admin.register(AccessReview)
class AccessReviewAdmin(ViewOnlyAdmin):
    list_display = ("name", "organization", "status", "due_at", "started_by")
    list_filter = ("status",)
    search_fields = ("name", "public_id", "organization__name")
    readonly_fields = ("public_id", "organization", "started_by", "started_at", "due_at")
    inlines = [ItemInline]


@admin.register(AccessReviewItem)
class AccessReviewItemAdmin(ViewOnlyAdmin):
    list_display = ("review", "workspace_label", "user_label", "role", "decision", "outcome")
    list_filter = ("decision",)
    search_fields = ("user_label", "workspace_label", "review__name")


@admin.register(AccessReviewer)
class AccessReviewerAdmin(ViewOnlyAdmin):
    list_display = ("review", "user", "workspace")
    search_fields = ("user__email", "review__name")
