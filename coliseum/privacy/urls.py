from django.urls import URLPattern, URLResolver, path

from . import apis

urlpatterns: list[URLPattern | URLResolver] = [
    path("api/v1/privacy/exports", apis.PrivacyExportCreateApi.as_view(), name="privacy-exports"),
    path(
        "api/v1/privacy/exports/<uuid:request_id>",
        apis.PrivacyExportDetailApi.as_view(),
        name="privacy-export-detail",
    ),
    path("api/v1/privacy/erasures", apis.PrivacyErasureCreateApi.as_view(), name="privacy-erasures"),
    path(
        "api/v1/privacy/erasures/<uuid:request_id>",
        apis.PrivacyErasureDetailApi.as_view(),
        name="privacy-erasure-detail",
    ),
    path("privacy/exports/<str:token>", apis.PrivacyExportFileApi.as_view(), name="privacy-export-file"),
]
