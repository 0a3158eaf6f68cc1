-- Retention: usage_records is range-partitioned by month on recorded_at, so old months can be
-- detached or dropped as a whole. Partitions are created ahead by the service
-- (`SELECT ensure_usage_partitions(3)` at start and in the daily job); a DEFAULT partition
-- catches anything outside them, so an insert never fails.
--
-- A unique index on a partitioned table must include the partition key, so exactly-once
-- ingestion by (tenant_id, event_id) moves to usage_event_ids: a writer claims the event id
-- (INSERT ... ON CONFLICT DO NOTHING RETURNING) in the same statement as the record and writes
-- the record only for claimed ids. A concurrent copy waits on that primary key until the first
-- commits, exactly as it waited on the old unique index.

CREATE TABLE usage_records_partitioned (
    record_id        uuid NOT NULL,
    tenant_id        text NOT NULL REFERENCES tenants (tenant_id),
    subscription_id  uuid REFERENCES subscriptions (subscription_id),
    metric           text NOT NULL REFERENCES metrics (metric),
    action           usage_action NOT NULL DEFAULT 'increment',
    -- increment: units added (negative only for gauge deltas); set: the new gauge level
    quantity         bigint NOT NULL,
    event_id         text CHECK (char_length(event_id) BETWEEN 1 AND 200),
    recorded_at      timestamptz NOT NULL DEFAULT now(),
    metadata         jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
) PARTITION BY RANGE (recorded_at);

CREATE TABLE usage_records_default PARTITION OF usage_records_partitioned DEFAULT;

-- Monthly partitions are named usage_records_pYYYYMM and cover [month start, next month start)
-- in UTC. Creates the partitions from the current month to `months_ahead` months after it that
-- do not exist yet; returns how many it created. Rows already in DEFAULT for a new month would
-- block its creation, so such a month is left to DEFAULT (partitions are created ahead).
CREATE FUNCTION ensure_usage_partitions(months_ahead int) RETURNS int
LANGUAGE plpgsql AS $$
DECLARE
    first_month date := date_trunc('month', now() AT TIME ZONE 'UTC')::date;
    m date;
    part text;
    created int := 0;
BEGIN
    -- Two replicas starting together must not race on the same CREATE TABLE.
    PERFORM pg_advisory_xact_lock(hashtext('ensure_usage_partitions'));
    FOR i IN 0 .. GREATEST(months_ahead, 0) LOOP
        m := (first_month + make_interval(months => i))::date;
        part := 'usage_records_p' || to_char(m, 'YYYYMM');
        IF to_regclass(format('public.%I', part)) IS NULL THEN
            IF EXISTS (SELECT 1 FROM usage_records_default
                       WHERE recorded_at >= (m::timestamp AT TIME ZONE 'UTC')
                         AND recorded_at < ((m + interval '1 month')::timestamp AT TIME ZONE 'UTC')) THEN
                RAISE NOTICE 'usage partition % skipped: DEFAULT holds rows of that month', part;
                CONTINUE;
            END IF;
            EXECUTE format(
                'CREATE TABLE IF NOT EXISTS public.%I PARTITION OF usage_records FOR VALUES FROM (%L) TO (%L)',
                part,
                (m::timestamp AT TIME ZONE 'UTC'),
                ((m + interval '1 month')::timestamp AT TIME ZONE 'UTC'));
            created := created + 1;
        END IF;
    END LOOP;
    RETURN created;
END
$$;

-- Monthly partitions from 2024-01 (or the oldest existing row's month) to 3 months ahead (or
-- the newest existing row's month), before any rows move in, so DEFAULT starts empty.
DO $$
DECLARE
    m date := LEAST(date '2024-01-01',
                    (SELECT date_trunc('month', min(recorded_at) AT TIME ZONE 'UTC')::date
                     FROM usage_records));
    last_month date := GREATEST(
        (date_trunc('month', now() AT TIME ZONE 'UTC') + interval '3 months')::date,
        (SELECT date_trunc('month', max(recorded_at) AT TIME ZONE 'UTC')::date FROM usage_records));
BEGIN
    WHILE m <= last_month LOOP
        EXECUTE format(
            'CREATE TABLE public.%I PARTITION OF usage_records_partitioned FOR VALUES FROM (%L) TO (%L)',
            'usage_records_p' || to_char(m, 'YYYYMM'),
            (m::timestamp AT TIME ZONE 'UTC'),
            ((m + interval '1 month')::timestamp AT TIME ZONE 'UTC'));
        m := (m + interval '1 month')::date;
    END LOOP;
END
$$;

-- Move the rows; the old table is locked so nothing is written in between.
LOCK TABLE usage_records IN ACCESS EXCLUSIVE MODE;
INSERT INTO usage_records_partitioned
    (record_id, tenant_id, subscription_id, metric, action, quantity, event_id, recorded_at,
     metadata, created_at, updated_at)
SELECT record_id, tenant_id, subscription_id, metric, action, quantity, event_id, recorded_at,
       metadata, created_at, updated_at
FROM usage_records;

CREATE TABLE usage_event_ids (
    tenant_id    text NOT NULL,
    event_id     text NOT NULL,
    record_id    uuid NOT NULL,
    recorded_at  timestamptz NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, event_id)
);
INSERT INTO usage_event_ids (tenant_id, event_id, record_id, recorded_at)
SELECT tenant_id, event_id, record_id, recorded_at
FROM usage_records WHERE event_id IS NOT NULL;

DROP TABLE usage_records;
ALTER TABLE usage_records_partitioned RENAME TO usage_records;

ALTER TABLE usage_records ADD CONSTRAINT usage_records_pkey PRIMARY KEY (record_id, recorded_at);
CREATE INDEX usage_records_event_idx ON usage_records (tenant_id, event_id) WHERE event_id IS NOT NULL;
CREATE INDEX usage_records_tenant_metric_idx ON usage_records (tenant_id, metric, recorded_at);
CREATE INDEX usage_records_subscription_idx ON usage_records (subscription_id, recorded_at);
ALTER TABLE usage_records RENAME CONSTRAINT usage_records_partitioned_tenant_id_fkey TO usage_records_tenant_id_fkey;
ALTER TABLE usage_records RENAME CONSTRAINT usage_records_partitioned_subscription_id_fkey TO usage_records_subscription_id_fkey;
ALTER TABLE usage_records RENAME CONSTRAINT usage_records_partitioned_metric_fkey TO usage_records_metric_fkey;
ALTER TABLE usage_records RENAME CONSTRAINT usage_records_partitioned_event_id_check TO usage_records_event_id_check;
