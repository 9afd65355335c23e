"""The processing queue holds one row per ingest statement instead of one per event, and the dedupe keys'
received_at index becomes a BRIN (issue #3).

- ingestion_pending: the log ids and occurred_at values of one accepted request (or import chunk) as two
  aligned arrays, with their count. Per event, the queue used to cost a heap tuple, a primary-key entry and
  their WAL on insert, then a row lock, a delete and vacuum work in processing; now that is paid once per
  request. Rows queued by the previous version are converted here, grouped per tenant in id order into rows
  of at most 1,000 events (below INGEST_PROCESS_BATCH_SIZE's default, since processing takes a row whole),
  keeping the earliest received_at of each group so the ingest lag is never understated. Backward splits
  them into one row per event again.
- ingestion_event_key_received: only the daily prune reads it (received_at < cutoff). Keys are appended in
  received_at order, so a BRIN answers that range as well, at almost no cost per insert; the prune keeps its
  summaries tight (ingestion/services/maintenance.py).

Non-atomic, so the indexes are built and dropped CONCURRENTLY: the key table holds every key of the dedupe
window, and a plain CREATE INDEX would block ingestion for the whole build. The queue conversion is one DO
block, atomic on its own, under an exclusive lock so no row queued meanwhile is left behind; each step can be
re-run after a failure."""

from django.db import migrations

QUEUE_FORWARD = r"""
DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_attribute WHERE attrelid = 'ingestion_pending'::regclass
               AND attname = 'event_pks' AND NOT attisdropped) THEN
        RETURN;  -- converted by an earlier run
    END IF;
    LOCK TABLE ingestion_pending IN ACCESS EXCLUSIVE MODE;
    CREATE TABLE ingestion_pending_statement (
        id bigserial PRIMARY KEY,
        tenant_id bigint NOT NULL,
        received_at timestamptz NOT NULL DEFAULT now(),
        event_count integer NOT NULL,
        event_pks bigint[] NOT NULL,
        occurred_ats timestamptz[] NOT NULL,
        CONSTRAINT ingestion_pending_arrays_aligned CHECK (
            event_count > 0 AND cardinality(event_pks) = event_count
            AND cardinality(occurred_ats) = event_count)
    );
    INSERT INTO ingestion_pending_statement (tenant_id, received_at, event_count, event_pks, occurred_ats)
    SELECT tenant_id, min(received_at), count(*), array_agg(event_pk ORDER BY id),
           array_agg(occurred_at ORDER BY id)
    FROM (SELECT p.*, (row_number() OVER (PARTITION BY tenant_id ORDER BY id) - 1) / 1000 AS part
          FROM ingestion_pending p) AS old
    GROUP BY tenant_id, part
    ORDER BY min(id);
    DROP TABLE ingestion_pending;
    ALTER TABLE ingestion_pending_statement RENAME TO ingestion_pending;
    ALTER TABLE ingestion_pending
        RENAME CONSTRAINT ingestion_pending_statement_pkey TO ingestion_pending_pkey;
    ALTER SEQUENCE ingestion_pending_statement_id_seq RENAME TO ingestion_pending_id_seq;
END $$;
"""

QUEUE_BACKWARD = r"""
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_attribute WHERE attrelid = 'ingestion_pending'::regclass
                   AND attname = 'event_pks' AND NOT attisdropped) THEN
        RETURN;
    END IF;
    LOCK TABLE ingestion_pending IN ACCESS EXCLUSIVE MODE;
    CREATE TABLE ingestion_pending_event (
        id bigserial PRIMARY KEY,
        tenant_id bigint NOT NULL,
        event_pk bigint NOT NULL,
        occurred_at timestamptz NOT NULL,
        received_at timestamptz NOT NULL DEFAULT now()
    );
    INSERT INTO ingestion_pending_event (tenant_id, event_pk, occurred_at, received_at)
    SELECT p.tenant_id, q.event_pk, q.occurred_at, p.received_at
    FROM ingestion_pending p,
        unnest(p.event_pks, p.occurred_ats) WITH ORDINALITY AS q(event_pk, occurred_at, n)
    ORDER BY p.id, q.n;
    DROP TABLE ingestion_pending;
    ALTER TABLE ingestion_pending_event RENAME TO ingestion_pending;
    ALTER TABLE ingestion_pending RENAME CONSTRAINT ingestion_pending_event_pkey TO ingestion_pending_pkey;
    ALTER SEQUENCE ingestion_pending_event_id_seq RENAME TO ingestion_pending_id_seq;
END $$;
"""

# One statement per entry: Django's PostgreSQL backend sends a script as one query, which runs as one
# transaction, and CONCURRENTLY refuses to run inside one. The first DROP clears an INVALID index a failed
# earlier run may have left. pages_per_range is spelled out: the prune desummarizes the ranges it emptied
# and assumes this size (ingestion/services/maintenance.py).
KEY_INDEX_FORWARD = [
    "DROP INDEX CONCURRENTLY IF EXISTS ingestion_event_key_received_new",
    "CREATE INDEX CONCURRENTLY ingestion_event_key_received_new ON ingestion_event_key "
    "USING brin (received_at) WITH (pages_per_range = 128)",
    "DROP INDEX CONCURRENTLY IF EXISTS ingestion_event_key_received",
    "ALTER INDEX ingestion_event_key_received_new RENAME TO ingestion_event_key_received",
]

KEY_INDEX_BACKWARD = [
    "DROP INDEX CONCURRENTLY IF EXISTS ingestion_event_key_received_new",
    "CREATE INDEX CONCURRENTLY ingestion_event_key_received_new ON ingestion_event_key (received_at)",
    "DROP INDEX CONCURRENTLY IF EXISTS ingestion_event_key_received",
    "ALTER INDEX ingestion_event_key_received_new RENAME TO ingestion_event_key_received",
]


class Migration(migrations.Migration):
    atomic = False

    dependencies = [("ingestion", "0003_admin_views")]

    operations = [
        migrations.RunSQL(QUEUE_FORWARD, QUEUE_BACKWARD),
        migrations.RunSQL(KEY_INDEX_FORWARD, KEY_INDEX_BACKWARD),
    ]
