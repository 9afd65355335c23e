"""Attribution's own touch table: one row per touch (an event with an artist that can be credited), keyed
exactly like the lookup a conversion makes, "the fan's last touch of this artist at or before t":
(tenant_id, user_id, artist_id, occurred_at, event_id in byte order). A conversion's lookup is one backward
probe of the only index of a plain table, whatever the statistics say; the same probe on the partitioned
event log depended on them (a partition not yet analyzed got the (tenant_id, occurred_at) index and scanned
every event of the tenant in the lookback window, ~9 ms per conversion). Written by
ingestion.funnels.services in the processor's batch transaction; filled here from the log once. No foreign
key: a per-row check would cost more than the insert itself (the log has none either)."""

from django.db import migrations

# As of this migration (ingestion.funnels.services): the touch types, and a touch's source.
TOUCH_TYPES_SQL = "'player.track_played', 'social.track_shared', 'social.artist_followed'"
SOURCE_SQL = """COALESCE(NULLIF(e.context->'campaign'->>'source', ''),
    NULLIF(e.context->'campaign'->>'name', ''),
    CASE WHEN jsonb_typeof(e.context->'source') = 'string' THEN NULLIF(e.context->>'source', '') END)"""

FORWARD = f"""
CREATE TABLE funnels_touch (
    tenant_id bigint NOT NULL,
    user_id text NOT NULL,
    artist_id bigint NOT NULL,
    occurred_at timestamptz NOT NULL,
    event_id text NOT NULL,
    touch_pk bigint NOT NULL,
    type text NOT NULL,
    source text NOT NULL
);
CREATE UNIQUE INDEX funnels_touch_lookup
    ON funnels_touch (tenant_id, user_id, artist_id, occurred_at, event_id COLLATE "C");
INSERT INTO funnels_touch (tenant_id, user_id, artist_id, occurred_at, event_id, touch_pk, type, source)
SELECT e.tenant_id, e.user_id, e.artist_id, e.occurred_at, e.event_id, e.id, e.type,
       COALESCE({SOURCE_SQL}, 'direct')
FROM ingestion_event e
WHERE e.artist_id IS NOT NULL AND (e.type IN ({TOUCH_TYPES_SQL}) OR {SOURCE_SQL} IS NOT NULL)
ON CONFLICT DO NOTHING;
"""  # noqa: S608 - constant fragments
BACKWARD = "DROP TABLE IF EXISTS funnels_touch;"


class Migration(migrations.Migration):
    dependencies = [("funnels", "0002_event_log_indexes"), ("ingestion", "0002_event_log")]

    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
