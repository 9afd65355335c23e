from django.urls import URLPattern, URLResolver, path

from . import apis

urlpatterns: list[URLPattern | URLResolver] = [
    path("api/v1/reports", apis.ReportsApi.as_view(), name="reports"),
    path("api/v1/reports/schema.json", apis.ReportSchemaApi.as_view(), name="report-json-schema"),
    path("api/v1/reports/<int:report_id>", apis.ReportDetailApi.as_view(), name="report-detail"),
    path("api/v1/reports/<int:report_id>/download", apis.ReportDownloadApi.as_view(), name="report-download"),
    path("api/v1/report-schedules", apis.ReportSchedulesApi.as_view(), name="report-schedules"),
    path(
        "api/v1/report-schedules/<int:schedule_id>",
        apis.ReportScheduleDetailApi.as_view(),
        name="report-schedule-detail",
    ),
    path("api/v1/uploads", apis.UploadCreateApi.as_view(), name="uploads"),
    path("api/v1/uploads/<int:upload_id>", apis.UploadDetailApi.as_view(), name="upload-detail"),
    path("api/v1/uploads/<int:upload_id>/ocr", apis.UploadOcrApi.as_view(), name="upload-ocr"),
    path("r/<str:token>", apis.ReportShareApi.as_view(), name="report-share"),
]
