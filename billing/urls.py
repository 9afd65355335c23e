"""Billing routes (full paths). dj-stripe's signed webhook endpoint lives at /stripe/webhook/<uuid>/."""

from django.urls import URLPattern, URLResolver, include, path

from . import apis

urlpatterns: list[URLPattern | URLResolver] = [
    path("api/v1/subscriptions", apis.SubscriptionDetailApi.as_view(), name="subscription-detail"),
    path("api/v1/subscriptions/upgrade", apis.SubscriptionUpgradeApi.as_view(), name="subscription-upgrade"),
    path("api/v1/subscriptions/portal", apis.SubscriptionPortalApi.as_view(), name="subscription-portal"),
    # Our wrapper first (schema, error envelope); dj-stripe's own route stays for reverse() and admin links.
    path("stripe/webhook/<uuid:uuid>/", apis.StripeWebhookApi.as_view(), name="stripe-webhook"),
    path("stripe/", include("djstripe.urls", namespace="djstripe")),
]
