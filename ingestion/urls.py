"""Ingestion routes (full paths: the root URLconf includes this at "")."""

from django.urls import URLPattern, URLResolver, path

from ingestion import apis

urlpatterns: list[URLPattern | URLResolver] = [
    path("webhooks/passport/events", apis.PassportEventsIngestApi.as_view(), name="passport-events"),
    *[path(f"v1/{call}", view.as_view(), name=f"segment-{call}") for call, view in apis.SEGMENT_APIS.items()],
    path("v1/import", apis.SEGMENT_IMPORT_API.as_view(), name="segment-import"),
    path("api/v1/events/catalog", apis.EventCatalogListApi.as_view(), name="events-catalog"),
    path("api/v1/kpis", apis.KpiSeriesApi.as_view(), name="kpis"),
    path("api/v1/kpis/summary", apis.KpiSummaryApi.as_view(), name="kpis-summary"),
]
