-- Least privilege for the service, and the outcomes purge's column in purge_log.
--
-- The worker and the API connect as a login role that is a member of `anpr_service` (`anpr-stream db
-- create-service-login NAME`). What that role may do, per schema:
--   passages, hits       SELECT, INSERT (the worker's COPY and INSERT ... ON CONFLICT DO NOTHING; the API reads)
--   hit_outcomes         SELECT, INSERT (acknowledgements are appended, never edited)
--   audit_log            SELECT, INSERT (append; never UPDATE, DELETE, TRUNCATE)
--   api_users, purge_log, schema_migrations   SELECT
--   ensure_passage_partition(day)             EXECUTE: a SECURITY DEFINER function owned by the schema owner,
--                                             since creating a partition needs ownership of `passages`
-- and nothing else: no UPDATE or DELETE anywhere, no DDL. The purge (DETACH and DROP of day partitions, DELETE of
-- hits and outcomes) stays with the owner: `anpr-stream retention purge` runs as the owner or a maintenance role
-- (cron, systemd timer); the worker's scheduled purge runs only when the worker itself connects as the owner.

ALTER TABLE purge_log
    ADD COLUMN outcome_horizon  timestamptz,  -- NULL in runs recorded before outcomes were purged
    ADD COLUMN outcomes_removed bigint NOT NULL DEFAULT 0;

-- A SECURITY DEFINER function runs with its owner's rights: its search_path is pinned to the schema it lives in
-- (then pg_temp, last, so that no temporary table can shadow `passages`), or a caller could redirect the unqualified
-- names in its body with a search_path of their own. Schemas are per environment (and per test), so the setting is
-- made with the schema's name at migration time.
DO $$
BEGIN
    EXECUTE format(
        'ALTER FUNCTION %I.ensure_passage_partition(date) SECURITY DEFINER SET search_path = %I, pg_temp',
        current_schema(), current_schema()
    );
    EXECUTE format('REVOKE ALL ON FUNCTION %I.ensure_passage_partition(date) FROM PUBLIC', current_schema());
END
$$;

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'anpr_service') THEN
        RAISE NOTICE 'role anpr_service missing: least-privilege grants skipped (see 0002 for creating it)';
        RETURN;
    END IF;
    GRANT EXECUTE ON FUNCTION ensure_passage_partition(date) TO anpr_service;
    GRANT SELECT, INSERT ON passages, hits, hit_outcomes, audit_log TO anpr_service;
    GRANT SELECT ON api_users, purge_log, schema_migrations TO anpr_service;
    -- nextval for appends; SELECT for `audit verify`'s look at the sequence (rows removed from the end).
    GRANT USAGE, SELECT ON SEQUENCE audit_log_id_seq TO anpr_service;
    GRANT USAGE ON SEQUENCE hit_outcomes_outcome_id_seq TO anpr_service;
    REVOKE UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER
        ON passages, hits, hit_outcomes, audit_log, api_users, purge_log, schema_migrations FROM anpr_service;
END
$$;
