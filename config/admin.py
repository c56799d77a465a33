"""Shared pieces of the support-staff admin: view-only admins and a count-free paginator."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.core.paginator import Paginator
from django.db import connections
from django.utils.functional import cached_property
from django.utils.text import smart_split, unescape_string_literal


class ViewOnlyAdmin(admin.ModelAdmin):
    """Support staff read here; changes go through the services, which audit them and hold
    the invariants (last owner, one org per workspace), so the admin cannot add, change or
    delete these rows."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


_PREFIXES = {"=": "iexact", "^": "istartswith"}


def _lookup(field: str) -> str:
    if field[0] in _PREFIXES:
        return f"{field[1:]}__{_PREFIXES[field[0]]}"
    return f"{field.lstrip('@')}__icontains"


class IndexedSearchMixin:
    """Admin search across related tables, served by each table's own indexes (the pg_trgm
    indexes of migration audit/0010) on PostgreSQL.

    The stock admin ORs every search field in one WHERE over a join, which no index can
    serve: the whole table is scanned. Here each field is its own subquery of primary keys
    (`user__email` icontains: users by their trigram index, then their memberships by the
    foreign-key index), combined with UNION; a row matches when every word matches some field,
    as in the stock admin."""

    def get_search_results(self, request, queryset, search_term):
        if connections[queryset.db].vendor != "postgresql":
            return super().get_search_results(request, queryset, search_term)
        fields = self.get_search_fields(request)
        if not fields or not search_term:
            return queryset, False
        manager = queryset.model._default_manager
        for word in smart_split(search_term):
            if word[0] in {'"', "'"} and word[0] == word[-1]:
                word = unescape_string_literal(word)
            matching = [
                manager.filter(**{_lookup(field): word}).order_by().values("pk") for field in fields
            ]
            queryset = queryset.filter(pk__in=matching[0].union(*matching[1:]))
        return queryset, False


class ViewOnlyInline(admin.TabularInline):
    extra = 0
    show_change_link = True
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


ESTIMATE_SQL = """
SELECT CASE WHEN c.relkind = 'p' THEN (
           SELECT coalesce(sum(greatest(p.reltuples, 0)), 0) FROM pg_inherits i
           JOIN pg_class p ON p.oid = i.inhrelid WHERE i.inhparent = c.oid)
       ELSE c.reltuples END::bigint
FROM pg_class c WHERE c.oid = %s::regclass
"""


class EstimatedCountPaginator(Paginator):
    """Never COUNTs a huge table: the planner's estimate for the whole table on PostgreSQL,
    otherwise a count capped at CAP rows (enough pages for any support search)."""

    CAP = 10_000

    @cached_property
    def count(self) -> int:
        qs: Any = self.object_list  # a queryset (the admin's changelist)
        if not qs.query.where and connections[qs.db].vendor == "postgresql":
            with connections[qs.db].cursor() as cursor:
                # A partitioned table (the audit events) has no rows of its own, and
                # autovacuum never analyses it: add up its partitions' estimates.
                cursor.execute(ESTIMATE_SQL, [qs.model._meta.db_table])
                row = cursor.fetchone()
            if row and row[0] > self.CAP:
                return int(row[0])
        return qs.order_by().values("pk")[: self.CAP].count()
