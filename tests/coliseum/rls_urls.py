"""A test-only endpoint whose code "forgets" its tenant filter (issue #8): raw SQL over every tenant's tables,
answered through the real middleware and TenantApi."""

from __future__ import annotations

from typing import Any

from django.db import connection
from django.urls import path
from rest_framework.request import Request
from rest_framework.response import Response

from coliseum.tenancy import TenantApi


class ForgetfulApi(TenantApi):
    def get(self, request: Request) -> Response:
        with connection.cursor() as cursor:
            cursor.execute(
                """
                SELECT current_user,
                       current_setting('app.tenant_id', true),
                       (SELECT array_agg(DISTINCT tenant_id ORDER BY tenant_id) FROM coliseum_artist),
                       (SELECT array_agg(DISTINCT tenant_id ORDER BY tenant_id) FROM ingestion_event),
                       (SELECT count(*) FROM pg_tables
                        WHERE tablename IN ('coliseum_artist', 'ingestion_event', 'ingestion_rollup_hourly')
                          AND tableowner = current_user)
                """
            )
            row: Any = cursor.fetchone()
        user, setting, artist_tenants, event_tenants, owned = row
        return Response(
            {
                "current_user": user,
                "tenant_setting": setting,
                "artist_tenants": artist_tenants or [],
                "event_tenants": event_tenants or [],
                "tables_owned": owned,
            }
        )


urlpatterns = [path("forgetful", ForgetfulApi.as_view())]
