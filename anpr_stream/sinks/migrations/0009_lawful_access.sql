-- Lawful access that can be proven: the audit log appended only through a function that assigns id, time and hashes
-- (the service login loses its INSERT), audit rows that carry the user's id and the authorisation relied on, and the
-- registry of authorisations (prosecutor decisions, senior authorisations) that restricted-tier requests cite.
--
-- Threat model (README, "Lawful access"): the service login can append rows only through audit_append(), which it
-- cannot change (owned by the schema owner, SECURITY DEFINER, search_path pinned); it cannot pick a row's id, time or
-- hashes, so it cannot forge a link or break the chain with a huge id. The schema owner can still do anything in the
-- database (disable triggers, rewrite and re-hash rows): that is caught outside the database, by the Ed25519-signed
-- checkpoints of the chain head (anpr_stream/audit/checkpoint.py), whose key the owner does not hold.

ALTER TABLE audit_log
    ADD COLUMN actor_id         bigint,    -- api_users.user_id of the actor, where there is one
    ADD COLUMN authorisation_id bigint,    -- authorisations.authorisation_id a restricted-tier request relied on
    -- 1: rows appended by the client (canonical JSON object, anpr_stream/audit/chain.py); 2: rows appended by
    -- audit_append() (canonical JSON array, computed in SQL below and re-computed by the verifier in Python).
    ADD COLUMN format           smallint NOT NULL DEFAULT 1 CHECK (format IN (1, 2));

CREATE INDEX audit_log_authorisation ON audit_log (authorisation_id) WHERE authorisation_id IS NOT NULL;

-- The canonical text of a format-2 row: a JSON array of every field but the hashes, in this order, each value as
-- PostgreSQL's to_json() writes it (the same escapes as Python's json.dumps(ensure_ascii=False): \" \\ \b \f \n \r
-- \t and \u00XX for other control characters), joined by commas without spaces. The time is written in UTC with
-- microseconds; the parameters are PostgreSQL's canonical jsonb text, as a JSON string.
CREATE FUNCTION audit_canonical_v2(
    p_id bigint, p_at timestamptz, p_actor text, p_actor_id bigint, p_role text, p_endpoint text,
    p_parameters text, p_purpose text, p_case_reference text, p_authorisation_reference text,
    p_authorisation_id bigint, p_allowed boolean, p_reason text, p_result_count integer
) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT '[' || concat_ws(',',
        '2',
        to_json(p_id)::text,
        to_json(to_char(p_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'))::text,
        coalesce(to_json(p_actor)::text, 'null'),
        coalesce(to_json(p_actor_id)::text, 'null'),
        coalesce(to_json(p_role)::text, 'null'),
        coalesce(to_json(p_endpoint)::text, 'null'),
        coalesce(to_json(p_parameters)::text, 'null'),
        coalesce(to_json(p_purpose)::text, 'null'),
        coalesce(to_json(p_case_reference)::text, 'null'),
        coalesce(to_json(p_authorisation_reference)::text, 'null'),
        coalesce(to_json(p_authorisation_id)::text, 'null'),
        coalesce(to_json(p_allowed)::text, 'null'),
        coalesce(to_json(p_reason)::text, 'null'),
        coalesce(to_json(p_result_count)::text, 'null')
    ) || ']'
$$;

-- Append one row. Appenders serialise on the advisory lock the client-side appender used (0x61756474 "audt", with
-- the schema's hash as second key); the transaction must be read committed, so that the row links to the last one
-- committed by any appender (each statement of this VOLATILE function takes a fresh snapshot).
CREATE FUNCTION audit_append(
    p_actor text, p_actor_id bigint, p_role text, p_endpoint text, p_allowed boolean, p_parameters jsonb,
    p_purpose text, p_case_reference text, p_authorisation_reference text, p_authorisation_id bigint,
    p_reason text, p_result_count integer
) RETURNS TABLE (id bigint, at timestamptz, parameters_json text, prev_hash text, row_hash text)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    v_id bigint;
    v_at timestamptz;
    v_params text;
    v_prev text;
    v_hash text;
BEGIN
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION 'audit_append needs a read committed transaction, not %',
            current_setting('transaction_isolation') USING ERRCODE = 'invalid_transaction_state';
    END IF;
    PERFORM pg_advisory_xact_lock(1635083380, hashtext(current_schema()));
    SELECT a.row_hash INTO v_prev FROM audit_log a ORDER BY a.id DESC LIMIT 1;
    v_prev := coalesce(v_prev, repeat('0', 64));
    v_id := nextval(pg_get_serial_sequence('audit_log', 'id'));
    v_at := clock_timestamp();
    v_params := coalesce(p_parameters, '{}'::jsonb)::text;
    v_hash := encode(sha256(convert_to(v_prev || audit_canonical_v2(
        v_id, v_at, p_actor, p_actor_id, p_role, p_endpoint, v_params, p_purpose, p_case_reference,
        p_authorisation_reference, p_authorisation_id, p_allowed, p_reason, p_result_count), 'UTF8')), 'hex');
    INSERT INTO audit_log (id, at, actor, actor_id, role, endpoint, parameters, purpose, case_reference,
                           authorisation_reference, authorisation_id, allowed, reason, result_count, prev_hash,
                           row_hash, format)
    VALUES (v_id, v_at, p_actor, p_actor_id, p_role, p_endpoint, v_params::jsonb, p_purpose, p_case_reference,
            p_authorisation_reference, p_authorisation_id, p_allowed, p_reason, p_result_count, v_prev, v_hash, 2);
    RETURN QUERY SELECT v_id, v_at, v_params, v_prev, v_hash;
END
$$;

-- The registry of authorisations: records, not headers. Registered and revoked by the zone's information manager
-- (role information_manager) or the schema owner's CLI, never by an investigator; never widened, extended or
-- deleted (trigger below): a correction is a revocation and a new record.
CREATE TABLE authorisations (
    authorisation_id   bigserial   PRIMARY KEY,
    kind               text        NOT NULL CHECK (kind IN ('judicial_with_prosecutor_decision',
                                                            'senior_authorisation', 'prosecutor_every_query')),
    issuing_authority  text        NOT NULL CHECK (length(trim(issuing_authority)) BETWEEN 1 AND 200),
    issued_by          text        NOT NULL CHECK (length(trim(issued_by)) BETWEEN 1 AND 200),  -- the magistrate
    reference          text        NOT NULL CHECK (length(trim(reference)) BETWEEN 1 AND 200),
    case_reference     text        NOT NULL CHECK (length(trim(case_reference)) BETWEEN 1 AND 500),
    plates             text[]      CHECK (plates IS NULL OR cardinality(plates) BETWEEN 1 AND 1000),  -- normalised
    cameras            text[]      CHECK (cameras IS NULL OR cardinality(cameras) BETWEEN 1 AND 1000),
    data_from          timestamptz NOT NULL,
    data_until         timestamptz NOT NULL,
    valid_from         timestamptz NOT NULL,
    valid_until        timestamptz NOT NULL,
    single_query       boolean     NOT NULL DEFAULT false,  -- NL: the prosecutor approved one query
    used_at            timestamptz,                         -- when a single-query authorisation was used
    note               text        CHECK (note IS NULL OR length(note) <= 2000),
    registered_by      text        NOT NULL,
    registered_by_id   bigint,
    registered_at      timestamptz NOT NULL DEFAULT now(),
    revoked_at         timestamptz,
    revoked_by         text,
    revoked_by_id      bigint,
    revocation_reason  text        CHECK (revocation_reason IS NULL OR length(revocation_reason) <= 2000),
    UNIQUE (issuing_authority, reference),
    CHECK (plates IS NOT NULL OR cameras IS NOT NULL),   -- no blanket authorisation: a scope of plates or cameras
    CHECK (data_from < data_until),
    CHECK (valid_from < valid_until),
    CHECK ((revoked_at IS NULL) = (revoked_by IS NULL))
);

CREATE INDEX authorisations_case ON authorisations (case_reference);

-- Only a revocation (once) and the use of a single-query authorisation (once) change a row; nothing is deleted.
CREATE FUNCTION authorisations_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'UPDATE' THEN
        RAISE EXCEPTION 'authorisations are never deleted: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF (NEW.authorisation_id, NEW.kind, NEW.issuing_authority, NEW.issued_by, NEW.reference, NEW.case_reference,
        NEW.plates, NEW.cameras, NEW.data_from, NEW.data_until, NEW.valid_from, NEW.valid_until, NEW.single_query,
        NEW.note, NEW.registered_by, NEW.registered_by_id, NEW.registered_at)
       IS DISTINCT FROM
       (OLD.authorisation_id, OLD.kind, OLD.issuing_authority, OLD.issued_by, OLD.reference, OLD.case_reference,
        OLD.plates, OLD.cameras, OLD.data_from, OLD.data_until, OLD.valid_from, OLD.valid_until, OLD.single_query,
        OLD.note, OLD.registered_by, OLD.registered_by_id, OLD.registered_at) THEN
        RAISE EXCEPTION 'an authorisation is never changed, widened or extended: revoke it and register a new one'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF OLD.revoked_at IS NOT NULL AND (NEW.revoked_at, NEW.revoked_by, NEW.revoked_by_id, NEW.revocation_reason)
            IS DISTINCT FROM (OLD.revoked_at, OLD.revoked_by, OLD.revoked_by_id, OLD.revocation_reason) THEN
        RAISE EXCEPTION 'authorisation % is revoked: its revocation stands', OLD.authorisation_id
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF OLD.used_at IS NOT NULL AND NEW.used_at IS DISTINCT FROM OLD.used_at THEN
        RAISE EXCEPTION 'authorisation % was used at %', OLD.authorisation_id, OLD.used_at
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER authorisations_guard BEFORE UPDATE OR DELETE ON authorisations
    FOR EACH ROW EXECUTE FUNCTION authorisations_guard();
CREATE TRIGGER authorisations_no_truncate BEFORE TRUNCATE ON authorisations
    FOR EACH STATEMENT EXECUTE FUNCTION authorisations_guard();

-- The information manager: registers and revokes authorisations; sees no camera data.
ALTER TABLE api_users DROP CONSTRAINT api_users_role_check;
ALTER TABLE api_users ADD CONSTRAINT api_users_role_check
    CHECK (role IN ('dispatcher', 'investigator', 'dpo', 'admin', 'information_manager'));

DO $$
BEGIN
    EXECUTE format(
        'ALTER FUNCTION %I.audit_append(text, bigint, text, text, boolean, jsonb, text, text, text, bigint, text, '
        'integer) SECURITY DEFINER SET search_path = %I, pg_temp', current_schema(), current_schema()
    );
    EXECUTE format(
        'REVOKE ALL ON FUNCTION %I.audit_append(text, bigint, text, text, boolean, jsonb, text, text, text, bigint, '
        'text, integer) FROM PUBLIC', current_schema()
    );
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'anpr_service') THEN
        RAISE NOTICE 'role anpr_service missing: least-privilege grants skipped (see 0002 for creating it)';
        RETURN;
    END IF;
    -- No direct INSERT any more: appends go through audit_append(), which assigns id, time and hashes.
    REVOKE INSERT ON audit_log FROM anpr_service;
    REVOKE USAGE ON SEQUENCE audit_log_id_seq FROM anpr_service;
    GRANT SELECT ON SEQUENCE audit_log_id_seq TO anpr_service;  -- `audit verify`'s look at the sequence
    GRANT EXECUTE ON FUNCTION audit_append(text, bigint, text, text, boolean, jsonb, text, text, text, bigint, text,
                                           integer) TO anpr_service;
    -- The API registers (information manager), revokes and marks single-query authorisations used; the guard
    -- trigger keeps every other column as registered.
    GRANT SELECT, INSERT ON authorisations TO anpr_service;
    GRANT UPDATE (revoked_at, revoked_by, revoked_by_id, revocation_reason, used_at) ON authorisations
        TO anpr_service;
    GRANT USAGE ON SEQUENCE authorisations_authorisation_id_seq TO anpr_service;
    REVOKE DELETE, TRUNCATE, REFERENCES, TRIGGER ON authorisations FROM anpr_service;
END
$$;
