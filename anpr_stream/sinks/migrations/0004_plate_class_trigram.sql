-- Investigations: the trigram index on the confusion-class plate. Fuzzy plate search and retroactive hits of fuzzy
-- and partial-plate watchlist entries compare confusion classes (as the live matcher does) and pull their candidates
-- with LIKE patterns on plate_class (see anpr_stream/api/plate_query.py); exact, OCR-equivalent, route, camera and
-- co-travel queries use the btree indexes of 0001, wildcard search the plate_norm trigram index of 0003.
-- Cost: a second GIN index on the passages' write path (fastupdate keeps the worker's batches cheap; the pending
-- list is merged by autovacuum).

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_opclass c JOIN pg_namespace n ON n.oid = c.opcnamespace
               WHERE c.opcname = 'gin_trgm_ops' AND n.nspname = 'public') THEN
        CREATE INDEX IF NOT EXISTS passages_plate_class_trgm ON passages USING gin (plate_class public.gin_trgm_ops);
    ELSE
        RAISE NOTICE 'pg_trgm missing: fuzzy search and retroactive partial-plate hits scan the window';
    END IF;
END
$$;
