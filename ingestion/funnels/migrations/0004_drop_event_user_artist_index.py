"""Drop `funnels_event_user_artist_time` from the event log. Attribution's last-touch lookup reads
`funnels_touch` (0003) and funnels read through (tenant_id, type, occurred_at), so nothing reads this index any
more, while every ingested event paid for it: 8-10 µs of PostgreSQL CPU per event, the costliest index on the
write path (README, "Ingestion hot path, second pass"). Exports and erasures by fan use
`ingestion_event_tenant_user`."""

from django.db import migrations

FORWARD = "DROP INDEX IF EXISTS funnels_event_user_artist_time;"
BACKWARD = """
CREATE INDEX IF NOT EXISTS funnels_event_user_artist_time ON ingestion_event (tenant_id, user_id, artist_id, occurred_at)
    WHERE artist_id IS NOT NULL;
"""


class Migration(migrations.Migration):
    dependencies = [("funnels", "0003_touch")]

    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
