-- The day partition being written keeps only the btree indexes; the two GIN trigram indexes (wildcard search on
-- plate_norm, 0003; fuzzy search and partial-plate look-backs on plate_class, 0004) are built on each day partition
-- once its day has ended, by index_closed_passage_partitions(before): the worker runs it in its maintenance loop
-- (ANPR_PURGE_INTERVAL_SECONDS) and `anpr-stream retention purge` before it purges. Measured (benchmarks/latest/
-- report.md, each index's write cost): the two GIN indexes are the largest write cost of the set.
--
-- PostgreSQL plans every partition with the indexes it has: a wildcard or fuzzy search over a window uses the
-- trigram indexes of the closed days and scans the open day (today, and a day whose index is not built yet) with the
-- same condition; the results are the same, only the way to them differs. Exact, OCR-equivalent, route, camera and
-- co-travel queries use the btree indexes of 0001, on every partition as before.
DROP INDEX IF EXISTS passages_plate_norm_trgm;
DROP INDEX IF EXISTS passages_plate_class_trgm;

CREATE FUNCTION index_closed_passage_partitions(before date) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    part record;
    made integer := 0;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_opclass c JOIN pg_namespace n ON n.oid = c.opcnamespace
                   WHERE c.opcname = 'gin_trgm_ops' AND n.nspname = 'public') THEN
        RETURN 0;  -- no pg_trgm: wildcard and fuzzy searches scan the window (0003, 0004)
    END IF;
    -- Two callers at once (two workers' loops, a worker and `retention purge`) would both find an index missing and
    -- the second CREATE INDEX would fail on the name: one caller per schema at a time, the other then finds it made.
    PERFORM pg_advisory_xact_lock(hashtext('index_closed_passage_partitions:' || current_schema()));
    FOR part IN
        SELECT c.relname::text AS name FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
         WHERE i.inhparent = 'passages'::regclass AND c.relname ~ '^passages_[0-9]{8}$'
           AND to_date(substr(c.relname, 10), 'YYYYMMDD') < before
         ORDER BY c.relname
    LOOP
        IF to_regclass(part.name || '_norm_trgm') IS NULL THEN
            EXECUTE format('CREATE INDEX %I ON %I USING gin (plate_norm public.gin_trgm_ops)',
                           part.name || '_norm_trgm', part.name);
            made := made + 1;
        END IF;
        IF to_regclass(part.name || '_class_trgm') IS NULL THEN
            EXECUTE format('CREATE INDEX %I ON %I USING gin (plate_class public.gin_trgm_ops)',
                           part.name || '_class_trgm', part.name);
            made := made + 1;
        END IF;
    END LOOP;
    RETURN made;
END
$$;

-- As ensure_passage_partition (0005): an index needs ownership of the table, so the service role calls a SECURITY
-- DEFINER function with its search_path pinned to this schema.
DO $$
BEGIN
    EXECUTE format(
        'ALTER FUNCTION %I.index_closed_passage_partitions(date) SECURITY DEFINER SET search_path = %I, pg_temp',
        current_schema(), current_schema()
    );
    EXECUTE format('REVOKE ALL ON FUNCTION %I.index_closed_passage_partitions(date) FROM PUBLIC', current_schema());
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'anpr_service') THEN
        GRANT EXECUTE ON FUNCTION index_closed_passage_partitions(date) TO anpr_service;
    END IF;
END
$$;

-- The days already closed get their indexes now (on a large store this migration takes as long as building them).
SELECT index_closed_passage_partitions((now() AT TIME ZONE 'UTC')::date);
