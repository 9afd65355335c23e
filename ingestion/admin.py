"""The operator console's read-only views of the event log and the hourly rollups.

Nothing can be added, changed or deleted here (the log is append-only; rollups are derived). The list never
shows fans' user ids (personal data): the event's detail page shows them. The changelists never COUNT(*)
the whole partitioned table: the paginator counts at most COUNT_CAP rows."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.functional import cached_property

from audit.admin import AuditedModelAdmin, ReadOnlyAdminMixin
from ingestion.catalog import CATALOG, METRICS

from .admin_models import EventLogEntry, RollupHourly

COUNT_CAP = 10_000


class CappedCountPaginator(Paginator):
    """Counts at most COUNT_CAP + 1 rows (SELECT COUNT(*) FROM (... LIMIT n)): the page links stop there,
    a filter or the date hierarchy narrows further. Cost is bounded however big the log grows."""

    @cached_property
    def count(self) -> int:
        object_list: Any = self.object_list
        if isinstance(object_list, QuerySet):
            return int(object_list[: COUNT_CAP + 1].count())
        return len(object_list)


class EventTypeFilter(admin.SimpleListFilter):
    """The catalog's types (a SELECT DISTINCT over the log would scan it); custom.* types via search."""

    title = "type"
    parameter_name = "type"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(name, name) for name in sorted(CATALOG)]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        return queryset.filter(type=value) if value else queryset


class MetricFilter(admin.SimpleListFilter):
    title = "metric"
    parameter_name = "metric"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(name, name) for name in METRICS]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        return queryset.filter(metric=value) if value else queryset


class ReadOnlyAdmin(ReadOnlyAdminMixin, AuditedModelAdmin):
    show_full_result_count = False
    paginator = CappedCountPaginator
    list_per_page = 100
    actions = None  # no "delete selected"


@admin.register(EventLogEntry)
class EventLogEntryAdmin(ReadOnlyAdmin):
    list_display = ("id", "tenant", "type", "occurred_at", "received_at", "artist", "show", "city", "source")
    list_filter = ("tenant", EventTypeFilter)
    date_hierarchy = "occurred_at"
    search_fields = ("=event_id",)  # exact: a LIKE over the log would scan it
    search_help_text = "Exact event id."
    ordering = ("-occurred_at", "-id")
    list_select_related = ("tenant", "artist", "show")
    fields = (
        "id", "tenant", "event_id", "type", "occurred_at", "received_at", "user_id", "session_id",
        "device_id", "artist", "show", "city", "genre", "amount_minor", "currency", "properties", "context",
        "source",
    )  # fmt: skip
    readonly_fields = fields


@admin.register(RollupHourly)
class RollupHourlyAdmin(ReadOnlyAdmin):
    list_display = ("bucket", "tenant", "metric", "artist", "city", "show_id", "currency", "value")
    list_display_links = None  # `bucket` is not unique: these rows have no detail page
    list_filter = ("tenant", MetricFilter)
    date_hierarchy = "bucket"
    ordering = ("-bucket", "tenant_id", "metric", "artist_id", "city", "show_id", "currency")
    list_select_related = ("tenant", "artist")

    def get_object(self, request: HttpRequest, object_id: str, from_field: str | None = None) -> None:
        return None  # the admin answers "does not exist" rather than picking one of many rows
