-- Passages (every valid read) partitioned by day on observed_at, hits, and the function that creates day
-- partitions ahead. Idempotency: a redelivered read or hit never makes a second row (primary keys + ON CONFLICT).

CREATE TABLE passages (
    read_id       text        NOT NULL,
    camera_id     text        NOT NULL,
    observed_at   timestamptz NOT NULL,
    plate_raw     text        NOT NULL,
    plate_norm    text        NOT NULL,
    plate_class   text        NOT NULL,
    country       text,
    confidence    real        NOT NULL,
    plate_format  text,
    camera_known  boolean     NOT NULL,
    has_hit       boolean     NOT NULL DEFAULT false,
    extra         jsonb       NOT NULL DEFAULT '{}'::jsonb,
    ingested_at   timestamptz NOT NULL DEFAULT now(),
    -- A partitioned table's unique key must contain the partition key; a read_id always carries the same
    -- observed_at (it is the same message), so this still makes redelivery idempotent.
    PRIMARY KEY (read_id, observed_at)
) PARTITION BY RANGE (observed_at);

CREATE INDEX passages_plate_norm_time ON passages (plate_norm, observed_at);
CREATE INDEX passages_plate_class_time ON passages (plate_class, observed_at);
CREATE INDEX passages_camera_time ON passages (camera_id, observed_at);

CREATE TABLE hits (
    hit_id        uuid        PRIMARY KEY,  -- uuid5(read_id, entry_id): a replay yields the same id
    read_id       text        NOT NULL,
    entry_id      text        NOT NULL,
    list          text        NOT NULL,
    camera_id     text        NOT NULL,
    observed_at   timestamptz NOT NULL,
    plate_raw     text        NOT NULL,
    plate_norm    text        NOT NULL,
    plate_class   text        NOT NULL,
    entry_plate   text        NOT NULL,
    match_kind    text        NOT NULL CHECK (match_kind IN ('exact', 'ocr', 'fuzzy', 'pattern')),
    distance      smallint    NOT NULL,
    priority      smallint    NOT NULL,
    action        text        NOT NULL,
    covert        boolean     NOT NULL,
    dispatch      boolean     NOT NULL,  -- per-list policy: false = log-only list
    suppressed    boolean     NOT NULL,  -- repeat within the suppression window: logged, not re-dispatched
    detected_at   timestamptz NOT NULL,
    payload       jsonb       NOT NULL   -- the hit exactly as published on anpr.hits
);

CREATE INDEX hits_observed_at ON hits (observed_at);
CREATE INDEX hits_list_time ON hits (list, observed_at);
CREATE INDEX hits_read_id ON hits (read_id);
-- Repeat suppression looks up the last dispatched hit for (confusion-class plate, entry).
CREATE INDEX hits_suppression ON hits (plate_class, entry_id, observed_at) WHERE NOT suppressed AND dispatch;

-- Creates the day partition holding `day` if missing. Called by the worker for the days it writes and ahead.
CREATE FUNCTION ensure_passage_partition(day date) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    name text := format('passages_%s', to_char(day, 'YYYYMMDD'));
BEGIN
    IF to_regclass(name) IS NULL THEN
        EXECUTE format(
            'CREATE TABLE IF NOT EXISTS %I PARTITION OF passages FOR VALUES FROM (%L) TO (%L)',
            name, (day::timestamp AT TIME ZONE 'UTC'), ((day + 1)::timestamp AT TIME ZONE 'UTC')
        );
    END IF;
    RETURN name;
END
$$;
