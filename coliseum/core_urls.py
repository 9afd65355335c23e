"""The core's routes (full paths; included at "" by coliseum/urls.py)."""

from django.urls import URLPattern, URLResolver, path

from . import apis, views

urlpatterns: list[URLPattern | URLResolver] = [
    path("", views.landing, name="landing"),
    path("favicon.ico", views.favicon, name="favicon"),
    path("healthz", apis.HealthzApi.as_view(), name="healthz"),
    path("readyz", apis.ReadyzApi.as_view(), name="readyz"),
    path("api/v1/auth/signup", apis.AuthSignupApi.as_view(), name="auth-signup"),
    path("api/v1/auth/token", apis.AuthTokenApi.as_view(), name="auth-token"),
    path("api/v1/auth/token/refresh", apis.AuthTokenRefreshApi.as_view(), name="auth-token-refresh"),
    path("api/v1/auth/me", apis.AuthMeApi.as_view(), name="auth-me"),
    path("api/v1/auth/mfa/totp", apis.AuthMfaTotpApi.as_view(), name="auth-mfa-totp"),
    path("api/v1/auth/mfa/totp/confirm", apis.AuthMfaTotpConfirmApi.as_view(), name="auth-mfa-totp-confirm"),
    path("api/v1/keys", apis.ApiKeyListCreateApi.as_view(), name="api-keys"),
    path("api/v1/keys/<str:key_id>", apis.ApiKeyRevokeApi.as_view(), name="api-key-revoke"),
    path("api/v1/artists", apis.ArtistListApi.as_view(), name="artists"),
    path("api/v1/shows", apis.ShowListApi.as_view(), name="shows"),
]
