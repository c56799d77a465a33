"""Support admin for the audit log: read-only, and listed without a full COUNT."""

import re

from django.contrib import admin

from audit.events import CATEGORIES
from audit.models import (
    AuditChainHead,
    AuditEvent,
    AuditPruneRecord,
    ChainCheckpoint,
    ChainVerification,
    StreamDelivery,
    StreamDestination,
)
from config.admin import EstimatedCountPaginator, ViewOnlyAdmin


class ActionCategoryFilter(admin.SimpleListFilter):
    """Categories come from the registry (no SELECT DISTINCT over millions of rows)."""

    title = "action category"
    parameter_name = "category"

    def lookups(self, request, model_admin):
        return [(c, f"{c}.*") for c in CATEGORIES]

    def queryset(self, request, queryset):
        if self.value() in CATEGORIES:
            return queryset.filter(action__startswith=self.value() + ".")
        return queryset


class SearchCountPaginator(EstimatedCountPaginator):
    """A search over millions of events counts its matches up to 500 (ten pages), not
    10,000: counting reads the table until that many match."""

    CAP = 500


EVENT_ID = re.compile(r"evt_[0-9a-z]+")


@admin.register(AuditEvent)
class AuditEventAdmin(ViewOnlyAdmin):
    """The database refuses UPDATE/DELETE on this table; the admin offers neither."""

    list_display = (
        "occurred_at",
        "action",
        "actor_label",
        "actor_type",
        "target_type",
        "target_label",
        "workspace_label",
        "organization",
        "ip",
    )
    list_filter = (ActionCategoryFilter, "actor_type")
    # Every one is served by a pg_trgm GIN index on UPPER(column) (migration 0010): icontains
    # is UPPER(col) LIKE UPPER('%term%'), and "=" (iexact) is UPPER(col) = UPPER(term).
    search_fields = ("=public_id", "=target_id", "=action", "actor_label", "target_label")
    search_help_text = "Event id, target id or exact action; or part of an actor/target name."
    list_select_related = ("organization",)
    autocomplete_fields = ("organization", "workspace", "actor_user")
    ordering = ("-pk",)  # the primary-key index: no sort over the whole table
    paginator = SearchCountPaginator
    list_per_page = 50
    show_full_result_count = False
    actions = None

    def get_search_results(self, request, queryset, search_term):
        # An event's id is unique: look it up by its index, not among five case-insensitive
        # comparisons over every row.
        term = search_term.strip()
        if EVENT_ID.fullmatch(term):
            return queryset.filter(public_id=term), False
        if " " in term and '"' not in term:
            # "Ada Lovelace" is the start of one name, not two words each starting a field
            # (which nothing matches, read over every row): search it as one phrase.
            term = f'"{term}"'
        return super().get_search_results(request, queryset, term)


@admin.register(AuditChainHead)
class AuditChainHeadAdmin(ViewOnlyAdmin):
    list_display = ("chain_key", "last_seq", "last_hash")
    search_fields = ("=chain_key",)


@admin.register(ChainVerification)
class ChainVerificationAdmin(ViewOnlyAdmin):
    list_display = (
        "chain_key",
        "ok",
        "verified_at",
        "verified_count",
        "last_event_public_id",
        "first_bad_event_public_id",
    )
    list_filter = ("ok",)
    search_fields = ("=chain_key", "=first_bad_event_public_id")


@admin.register(AuditPruneRecord)
class AuditPruneRecordAdmin(ViewOnlyAdmin):
    """Written only by the database's prune function."""

    list_display = ("chain_key", "first_seq", "last_seq", "count", "cutoff", "pruned_at")
    search_fields = ("=chain_key",)


@admin.register(ChainCheckpoint)
class ChainCheckpointAdmin(ViewOnlyAdmin):
    """Signed by the application; the database role may only add them."""

    list_display = ("chain_key", "seq", "head_hash", "created_at")
    search_fields = ("=chain_key",)


@admin.register(StreamDestination)
class StreamDestinationAdmin(ViewOnlyAdmin):
    """Where an org streams its audit events. The signing secret is a credential: never shown."""

    list_display = ("name", "organization", "url", "status", "failing_since", "last_delivered_at")
    list_filter = ("status",)
    search_fields = ("name", "url", "organization__name")
    list_select_related = ("organization",)
    exclude = ("secret",)


@admin.register(StreamDelivery)
class StreamDeliveryAdmin(ViewOnlyAdmin):
    """The delivery outbox (never COUNTed in full: it grows with every event)."""

    list_display = ("destination", "seq", "status", "attempts", "last_status_code", "created_at")
    list_filter = ("status",)
    list_select_related = ("destination",)
    paginator = EstimatedCountPaginator
    show_full_result_count = False
