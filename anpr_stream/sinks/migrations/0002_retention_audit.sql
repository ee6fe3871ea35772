-- Audit log (append-only, hash-chained), purge log, and the service role that may append to the audit log but never
-- change it.
--
-- Three lines of defence for the audit log:
--  1. privileges: the service role `anpr_service` has SELECT and INSERT on audit_log, never UPDATE, DELETE or
--     TRUNCATE; deployments connect the service as a login role that is a member of it;
--  2. a trigger that refuses UPDATE, DELETE and TRUNCATE for everyone, the owner included (only someone who may
--     disable triggers, i.e. the owner or a superuser, can get past it, and that leaves a trail in the DDL log);
--  3. the hash chain: each row's row_hash = sha256(prev_hash || canonical JSON of the row), computed by the
--     appender under an advisory lock (anpr_stream.audit), so `anpr-stream audit verify` finds any row altered,
--     removed or inserted even by someone who got past 1 and 2.

CREATE TABLE audit_log (
    id                      bigserial   PRIMARY KEY,
    at                      timestamptz NOT NULL,
    actor                   text        NOT NULL,
    role                    text        NOT NULL,
    endpoint                text        NOT NULL,
    parameters              jsonb       NOT NULL DEFAULT '{}'::jsonb,
    purpose                 text,
    case_reference          text,
    authorisation_reference text,
    allowed                 boolean     NOT NULL,
    reason                  text,
    result_count            integer,
    prev_hash               text        NOT NULL CHECK (prev_hash ~ '^[0-9a-f]{64}$'),
    row_hash                text        NOT NULL UNIQUE CHECK (row_hash ~ '^[0-9a-f]{64}$')
);

CREATE INDEX audit_log_at ON audit_log (at);

CREATE FUNCTION audit_log_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_refuse_change();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_refuse_change();

-- One row per `anpr-stream retention purge` run (dry runs are not recorded: they remove nothing).
CREATE TABLE purge_log (
    id                  bigserial   PRIMARY KEY,
    ran_at              timestamptz NOT NULL DEFAULT now(),
    as_of               timestamptz NOT NULL,  -- the "now" the horizons were computed from
    policy              text        NOT NULL,
    passage_horizon     timestamptz NOT NULL,
    hit_horizon         timestamptz NOT NULL,
    dropped_partitions  text[]      NOT NULL,
    passages_removed    bigint      NOT NULL,
    hits_removed        bigint      NOT NULL
);

-- Role names are cluster-wide while this schema may be one of many (one per test, one per environment): create the
-- role only when missing, tolerate a concurrent creator, and skip all of it where the connecting role may not create
-- roles (the tables above still work; the DBA then creates the role and grants by hand, as below).
DO $$
DECLARE
    may_create boolean;
BEGIN
    SELECT rolcreaterole OR rolsuper INTO may_create FROM pg_roles WHERE rolname = current_user;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'anpr_service') THEN
        IF NOT may_create THEN
            RAISE NOTICE 'role anpr_service not created: % may not create roles', current_user;
            RETURN;
        END IF;
        BEGIN
            CREATE ROLE anpr_service NOLOGIN;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL;  -- created meanwhile by another schema's migration
        END;
    END IF;
    -- The owner becomes a member so that it can SET ROLE anpr_service (tests, and checks by the DBA).
    IF NOT pg_has_role(current_user, 'anpr_service', 'MEMBER') THEN
        BEGIN
            EXECUTE format('GRANT anpr_service TO %I', current_user);
        EXCEPTION WHEN insufficient_privilege OR invalid_grant_operation THEN
            RAISE NOTICE 'could not make % a member of anpr_service', current_user;
        END;
    END IF;
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO anpr_service', current_schema());
    GRANT SELECT, INSERT ON audit_log TO anpr_service;
    GRANT USAGE ON SEQUENCE audit_log_id_seq TO anpr_service;
    REVOKE UPDATE, DELETE, TRUNCATE ON audit_log FROM anpr_service;
END
$$;
