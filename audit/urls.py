"""Audit-log APIs, and the ops endpoints (coliseum.ops is a plain package, so its routes live here)."""

from django.urls import URLPattern, URLResolver, path

from coliseum.ops.apis import DashboardGetApi, HealthGetApi, MetricsGetApi

from .apis import AdminAuditLogExportApi, AdminAuditLogListApi, TenantAuditLogExportApi, TenantAuditLogListApi

urlpatterns: list[URLPattern | URLResolver] = [
    path("api/v1/admin/audit-logs", AdminAuditLogListApi.as_view(), name="admin-audit-logs"),
    path("api/v1/admin/audit-logs/export.csv", AdminAuditLogExportApi.as_view(), name="admin-audit-logs-csv"),
    path("api/v1/audit-logs", TenantAuditLogListApi.as_view(), name="audit-logs"),
    path("api/v1/audit-logs/export.csv", TenantAuditLogExportApi.as_view(), name="audit-logs-csv"),
    path("api/v1/admin/health", HealthGetApi.as_view(), name="ops-health"),
    path("api/v1/admin/dashboard", DashboardGetApi.as_view(), name="ops-dashboard"),
    path("metrics", MetricsGetApi.as_view(), name="metrics"),
]
