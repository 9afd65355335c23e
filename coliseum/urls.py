"""Root URLconf. Each app's urls.py declares full paths (API routes under api/v1/, plus the app's
non-API routes such as /webhooks/..., /v1/... for Segment, /jumbotron/, /r/<token>)."""

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("", include("coliseum.core_urls")),
    path("", include("ingestion.urls")),
    path("", include("leaderboards.urls")),
    path("", include("reports.urls")),
    path("", include("billing.urls")),
    path("", include("audit.urls")),
    path("", include("coliseum.privacy.urls")),
    path("", include("ingestion.funnels.urls")),
]

handler400 = "coliseum.errors.handler400"
handler403 = "coliseum.errors.handler403"
handler404 = "coliseum.errors.handler404"
handler500 = "coliseum.errors.handler500"
