"""Writes on the core domain."""

from __future__ import annotations

from collections.abc import Collection

from django.db import connection


def artists_resolve(*, tenant_id: int, external_ids: Collection[str]) -> dict[str, int]:
    """Map artists' external ids to primary keys, creating the unknown ones on first sight (named after their
    external id until an operator edits them). One INSERT ... ON CONFLICT and one SELECT, whatever the count,
    and safe under concurrent callers: the unique (tenant, external_id) constraint decides."""
    return _resolve("coliseum_artist", "name", tenant_id, external_ids)


def shows_resolve(*, tenant_id: int, external_ids: Collection[str]) -> dict[str, int]:
    """As artists_resolve, for shows (title defaults to the external id)."""
    return _resolve("coliseum_show", "title", tenant_id, external_ids)


def _resolve(table: str, label_column: str, tenant_id: int, external_ids: Collection[str]) -> dict[str, int]:
    ids = sorted({e for e in external_ids if e})
    if not ids:
        return {}
    extra = ", genres, home_city" if table == "coliseum_artist" else ", venue, city"
    extra_values = ", '{}'::varchar[], ''" if table == "coliseum_artist" else ", '', ''"
    with connection.cursor() as cursor:
        # Sorted input keeps lock order stable between concurrent inserts of overlapping sets (no deadlocks).
        cursor.execute(
            f"INSERT INTO {table} (tenant_id, external_id, {label_column}{extra}, created_at) "  # noqa: S608
            f"SELECT %s, x, left(x, 200){extra_values}, now() FROM unnest(%s::text[]) AS x "
            "ON CONFLICT (tenant_id, external_id) DO NOTHING",
            [tenant_id, ids],
        )
        cursor.execute(
            f"SELECT external_id, id FROM {table} WHERE tenant_id = %s AND external_id = ANY(%s)",  # noqa: S608
            [tenant_id, ids],
        )
        return {external_id: pk for external_id, pk in cursor.fetchall()}
