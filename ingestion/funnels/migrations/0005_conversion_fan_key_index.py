"""Replace `funnels_conv_user` (tenant_id, user_id, artist_id, conversion_at) with `funnels_conv_fan` on
(fan_key, artist_id, conversion_at), where `fan_key` is a stored generated column `tenant_id::text || ':' ||
user_id` (one value naming a fan of a tenant; the tenant is a number, so the first ':' ends it).

The processor's late-touch lookup probes this table once per touch. Every other index of the table starts with
tenant_id, and while the table has no planner statistics (a new deployment, a first import: autovacuum analyzes
at most once a minute) every path is estimated at one row, so the planner took the smallest index led by
tenant_id and filtered all of the tenant's conversions on every probe: the processor's touch statement slowed
from 0.15 s to 0.8 s per batch within one bench drain (auto_explain). A lookup by fan_key alone can only use
this index, whatever the statistics say. A column rather than an expression index: under row-level security
only leakproof conditions become index conditions, and `||` is not leakproof; `fan_key = <value>` is."""

from django.db import migrations

FORWARD = """
ALTER TABLE funnels_attributedconversion
    ADD COLUMN IF NOT EXISTS fan_key text GENERATED ALWAYS AS ((tenant_id)::text || ':' || user_id) STORED;
CREATE INDEX IF NOT EXISTS funnels_conv_fan ON funnels_attributedconversion (fan_key, artist_id, conversion_at);
"""
BACKWARD = """
DROP INDEX IF EXISTS funnels_conv_fan;
ALTER TABLE funnels_attributedconversion DROP COLUMN IF EXISTS fan_key;
"""


class Migration(migrations.Migration):
    dependencies = [("funnels", "0004_drop_event_user_artist_index")]

    operations = [
        migrations.RunSQL(FORWARD, BACKWARD),
        migrations.RemoveIndex(model_name="attributedconversion", name="funnels_conv_user"),
    ]
