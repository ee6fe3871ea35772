-- The query API's side of the schema: users with hashed bearer tokens, hit outcomes (acknowledgements), and the
-- trigram index for wildcard and fuzzy plate search.

-- pg_trgm is a trusted extension (PostgreSQL 13+): the database owner may create it. It lives in `public` so that
-- every schema of the database (one per environment or test) finds its operator classes as public.gin_trgm_ops.
DO $$
BEGIN
    CREATE EXTENSION IF NOT EXISTS pg_trgm WITH SCHEMA public;
EXCEPTION WHEN insufficient_privilege OR duplicate_object OR unique_violation THEN
    RAISE NOTICE 'pg_trgm not created here (%): wildcard search falls back to a scan of the plate index', SQLERRM;
END
$$;

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_opclass c JOIN pg_namespace n ON n.oid = c.opcnamespace
               WHERE c.opcname = 'gin_trgm_ops' AND n.nspname = 'public') THEN
        -- Wildcard (LIKE with `_` and `%`) and similarity search on the normalised plate.
        CREATE INDEX IF NOT EXISTS passages_plate_norm_trgm ON passages USING gin (plate_norm public.gin_trgm_ops);
    END IF;
END
$$;

CREATE TABLE api_users (
    user_id       bigserial   PRIMARY KEY,
    name          text        NOT NULL UNIQUE CHECK (name ~ '^[A-Za-z0-9._@-]{1,64}$'),
    role          text        NOT NULL CHECK (role IN ('dispatcher', 'investigator', 'dpo', 'admin')),
    camera_scope  text[],                 -- NULL: every camera
    covert        boolean     NOT NULL DEFAULT false,  -- may see covert lists' details
    -- sha256 of the token: tokens are 256-bit random, so a fast unsalted hash is as good as a slow one here and
    -- lets the lookup be one index probe; the token itself is shown once, at creation, and never stored.
    token_hash    bytea       NOT NULL UNIQUE CHECK (octet_length(token_hash) = 32),
    created_at    timestamptz NOT NULL DEFAULT now(),
    created_by    text        NOT NULL,
    revoked_at    timestamptz
);

-- What dispatch did about a hit. Append-only history: an outcome is never edited, a later one supersedes it.
CREATE TABLE hit_outcomes (
    outcome_id    bigserial   PRIMARY KEY,
    hit_id        uuid        NOT NULL REFERENCES hits (hit_id) ON DELETE CASCADE,
    outcome       text        NOT NULL CHECK (outcome IN ('intercepted', 'not_found', 'false_read', 'other')),
    note          text        CHECK (note IS NULL OR length(note) <= 2000),
    recorded_by   text        NOT NULL,
    recorded_at   timestamptz NOT NULL DEFAULT now(),
    CHECK (outcome <> 'other' OR coalesce(length(trim(note)), 0) > 0)
);

CREATE INDEX hit_outcomes_hit ON hit_outcomes (hit_id, recorded_at DESC);
CREATE INDEX hit_outcomes_recorded_at ON hit_outcomes (recorded_at);

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'anpr_service') THEN
        GRANT SELECT ON api_users TO anpr_service;
        GRANT SELECT, INSERT ON hit_outcomes TO anpr_service;
        GRANT USAGE ON SEQUENCE hit_outcomes_outcome_id_seq TO anpr_service;
        GRANT SELECT ON passages, hits, purge_log TO anpr_service;
    END IF;
END
$$;
