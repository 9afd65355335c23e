"""The event log and the processing tables, in plain SQL.

The log is time-partitioned. TimescaleDB is used when the extension is available on the server (detected
at migrate time in a DO block: create_hypertable + a compression policy); otherwise native monthly RANGE
partitions plus a DEFAULT partition so an event of any date is never lost, and a function
`ingestion_event_partition_ensure(month)` that creates a month's partition (moving rows out of DEFAULT
first), called ahead of time by a beat job. Own DDL rather than django-timescaledb: its backend runs
CREATE EXTENSION on migrate and fails on plain PostgreSQL."""

from django.db import migrations

FORWARD = r"""
CREATE TABLE ingestion_event_key (
    tenant_id bigint NOT NULL,
    event_id text NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, event_id)
);
CREATE INDEX ingestion_event_key_received ON ingestion_event_key (received_at);

CREATE TABLE ingestion_event (
    id bigserial NOT NULL,
    tenant_id bigint NOT NULL,
    event_id text NOT NULL,
    type text NOT NULL,
    occurred_at timestamptz NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    user_id text NOT NULL,
    session_id text,
    device_id text,
    artist_id bigint,
    show_id bigint,
    city text NOT NULL DEFAULT '',
    genre text NOT NULL DEFAULT '',
    amount_minor bigint,
    currency text NOT NULL DEFAULT '',
    properties jsonb NOT NULL DEFAULT '{}'::jsonb,
    context jsonb NOT NULL DEFAULT '{}'::jsonb,
    source text NOT NULL,
    PRIMARY KEY (id, occurred_at)
) PARTITION BY RANGE (occurred_at);

CREATE OR REPLACE FUNCTION ingestion_event_refuse_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'ingestion_event is append-only: UPDATE refused';
END $$;

CREATE TABLE ingestion_pending (
    id bigserial PRIMARY KEY,
    tenant_id bigint NOT NULL,
    event_pk bigint NOT NULL,
    occurred_at timestamptz NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE ingestion_backfill (
    tenant_id bigint NOT NULL,
    bucket timestamptz NOT NULL,
    queued_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, bucket)
);

CREATE TABLE ingestion_rollup_hourly (
    tenant_id bigint NOT NULL,
    metric text NOT NULL,
    bucket timestamptz NOT NULL,
    artist_id bigint NOT NULL,
    city text NOT NULL,
    show_id bigint NOT NULL,
    currency text NOT NULL,
    value bigint NOT NULL,
    PRIMARY KEY (tenant_id, metric, bucket, artist_id, city, show_id, currency)
);

CREATE TABLE ingestion_listener_hourly (
    tenant_id bigint NOT NULL,
    bucket timestamptz NOT NULL,
    artist_id bigint NOT NULL,
    city text NOT NULL,
    show_id bigint NOT NULL,
    user_id text NOT NULL,
    PRIMARY KEY (tenant_id, bucket, artist_id, city, show_id, user_id)
);

CREATE TABLE ingestion_vote_counted (
    tenant_id bigint NOT NULL,
    show_id bigint NOT NULL,
    round integer NOT NULL,
    user_id text NOT NULL,
    event_id text NOT NULL,
    occurred_at timestamptz NOT NULL,
    artist_id bigint NOT NULL,
    weight integer NOT NULL,
    city text NOT NULL,
    PRIMARY KEY (tenant_id, show_id, round, user_id)
);

-- Creates the monthly partition holding `month` (plain PostgreSQL only). Rows that landed in DEFAULT for that
-- month are moved into the new partition first (ATTACH refuses otherwise). Returns whether it created one.
CREATE OR REPLACE FUNCTION ingestion_event_partition_ensure(month date) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    lo timestamptz := date_trunc('month', month::timestamp) AT TIME ZONE 'UTC';
    hi timestamptz := (date_trunc('month', month::timestamp) + interval '1 month') AT TIME ZONE 'UTC';
    part text := 'ingestion_event_' || to_char(month, 'YYYYMM');
BEGIN
    IF to_regclass(part) IS NOT NULL THEN
        RETURN false;
    END IF;
    EXECUTE format('CREATE TABLE %I (LIKE ingestion_event INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', part);
    EXECUTE format(
        'WITH moved AS (DELETE FROM ingestion_event_default WHERE occurred_at >= %L AND occurred_at < %L '
        'RETURNING *) INSERT INTO %I SELECT * FROM moved', lo, hi, part);
    EXECUTE format('ALTER TABLE ingestion_event ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)', part, lo, hi);
    RETURN true;
END $$;

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb') THEN
        -- TimescaleDB: a hypertable wants an unpartitioned parent; rebuild the table as one.
        CREATE EXTENSION IF NOT EXISTS timescaledb;
        ALTER TABLE ingestion_event RENAME TO ingestion_event_partitioned;
        CREATE TABLE ingestion_event (LIKE ingestion_event_partitioned INCLUDING ALL);
        DROP TABLE ingestion_event_partitioned;
        PERFORM create_hypertable('ingestion_event', 'occurred_at', chunk_time_interval => interval '7 days');
        EXECUTE 'ALTER TABLE ingestion_event SET (timescaledb.compress, '
                'timescaledb.compress_segmentby = ''tenant_id'', timescaledb.compress_orderby = ''occurred_at'')';
        PERFORM add_compression_policy('ingestion_event', interval '30 days');
    ELSE
        CREATE TABLE ingestion_event_default PARTITION OF ingestion_event DEFAULT;
        PERFORM ingestion_event_partition_ensure((date_trunc('month', now()) + make_interval(months => m))::date)
        FROM generate_series(-2, 3) AS m;
    END IF;
END $$;

CREATE INDEX ingestion_event_tenant_time ON ingestion_event (tenant_id, occurred_at);
CREATE INDEX ingestion_event_tenant_user ON ingestion_event (tenant_id, user_id);
CREATE TRIGGER ingestion_event_append_only BEFORE UPDATE ON ingestion_event
    FOR EACH ROW EXECUTE FUNCTION ingestion_event_refuse_update();
"""

BACKWARD = r"""
DROP TABLE IF EXISTS ingestion_event CASCADE;
DROP TABLE IF EXISTS ingestion_event_key, ingestion_pending, ingestion_backfill, ingestion_rollup_hourly,
    ingestion_listener_hourly, ingestion_vote_counted;
DROP FUNCTION IF EXISTS ingestion_event_partition_ensure(date);
DROP FUNCTION IF EXISTS ingestion_event_refuse_update();
"""


class Migration(migrations.Migration):
    dependencies = [("ingestion", "0001_initial")]

    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
