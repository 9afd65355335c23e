"""Funnel and attribution routes (full paths: the root URLconf includes this at "")."""

from django.urls import URLPattern, URLResolver, path

from ingestion.funnels import apis

urlpatterns: list[URLPattern | URLResolver] = [
    path("api/v1/funnels", apis.FunnelReportApi.as_view(), name="funnels"),
    path("api/v1/attribution", apis.AttributionReportApi.as_view(), name="attribution"),
]
