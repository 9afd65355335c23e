"""Root URLconf. Each app's urls.py declares full paths (API routes under api/v1/, plus the app's
non-API routes such as /webhooks/..., /v1/... for Segment, /jumbotron/, /r/<token>)."""

from csp.constants import UNSAFE_INLINE
from csp.decorators import csp_update
from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerSplitView

# API documentation from our own static files (drf-spectacular-sidecar): it works with no internet access.
# ReDoc writes its styles into <style> elements and runs its search in a blob: worker, so its page alone
# widens the CSP by those two.
_redoc = SpectacularRedocView.as_view(url_name="schema", template_name="api_docs/redoc.html")

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path(
        "api/docs/",
        SpectacularSwaggerSplitView.as_view(url_name="schema", template_name="api_docs/swagger_ui.html"),
        name="api-docs",
    ),
    path(
        "api/redoc/",
        csp_update({"style-src": [UNSAFE_INLINE], "worker-src": ["blob:"]})(_redoc),
        name="api-redoc",
    ),
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
