"""Shared pieces of the support-staff admin: view-only admins and a count-free paginator."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.core.paginator import Paginator
from django.db import connections
from django.utils.functional import cached_property


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


class ViewOnlyInline(admin.TabularInline):
    extra = 0
    show_change_link = True
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class EstimatedCountPaginator(Paginator):
    """Never COUNTs a huge table: the planner's estimate for the whole table on PostgreSQL,
    otherwise a count capped at CAP rows (enough pages for any support search)."""

    CAP = 10_000

    @cached_property
    def count(self) -> int:
        qs: Any = self.object_list  # a queryset (the admin's changelist)
        if not qs.query.where and connections[qs.db].vendor == "postgresql":
            with connections[qs.db].cursor() as cursor:
                cursor.execute(
                    "SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass",
                    [qs.model._meta.db_table],
                )
                row = cursor.fetchone()
            if row and row[0] > self.CAP:
                return int(row[0])
        return qs.order_by().values("pk")[: self.CAP].count()
