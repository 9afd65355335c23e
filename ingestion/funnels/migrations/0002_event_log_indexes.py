"""Two indexes on ingestion's event log that funnels and attribution read through (CREATE INDEX on the
partitioned parent cascades to every partition, present and future; on a TimescaleDB hypertable it is created
on every chunk). Each adds a little to the cost of an insert on the ingest path (measured in `make bench` a).

- (tenant_id, type, occurred_at): a funnel reads only its steps' types over its date range.
- (tenant_id, user_id, artist_id, occurred_at) for rows with an artist: a conversion's last touch of an artist
  is one backward index probe."""

from django.db import migrations

FORWARD = """
CREATE INDEX IF NOT EXISTS funnels_event_tenant_type_time ON ingestion_event (tenant_id, type, occurred_at);
CREATE INDEX IF NOT EXISTS funnels_event_user_artist_time ON ingestion_event (tenant_id, user_id, artist_id, occurred_at)
    WHERE artist_id IS NOT NULL;
"""
BACKWARD = """
DROP INDEX IF EXISTS funnels_event_tenant_type_time;
DROP INDEX IF EXISTS funnels_event_user_artist_time;
"""


class Migration(migrations.Migration):
    dependencies = [("funnels", "0001_initial"), ("ingestion", "0002_event_log")]

    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
