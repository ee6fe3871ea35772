-- Users that stay and tokens that end. A user keeps its row, and so its user_id, for good: it is revoked, never
-- deleted, and its name is never given to anyone else (audit rows name users; a reused name would make them lie).
-- Bearer tokens move to api_tokens: each has its own expiry, a user may hold several (one per console session that
-- logs out on its own), `users rotate` issues a new one and revokes the others, `users revoke` ends the user and all
-- of its tokens.

CREATE TABLE api_tokens (
    token_id    bigserial   PRIMARY KEY,
    user_id     bigint      NOT NULL REFERENCES api_users (user_id),
    -- sha256 of the token (256 random bits, see 0003): the token itself is shown once and never stored.
    token_hash  bytea       NOT NULL UNIQUE CHECK (octet_length(token_hash) = 32),
    created_at  timestamptz NOT NULL DEFAULT now(),
    created_by  text        NOT NULL,
    expires_at  timestamptz NOT NULL,
    revoked_at  timestamptz,
    revoked_by  text,  -- the operator, or 'logout' when the token's holder ended it
    CHECK (expires_at > created_at),
    CHECK ((revoked_at IS NULL) = (revoked_by IS NULL))
);

CREATE INDEX api_tokens_user ON api_tokens (user_id);

-- Tokens issued before this migration had no expiry: they get the default lifetime of their role (README,
-- Configuration) counted from now, so that none stops working at the upgrade itself.
INSERT INTO api_tokens (user_id, token_hash, created_at, created_by, expires_at, revoked_at, revoked_by)
SELECT user_id, token_hash, created_at, created_by,
       greatest(now(), created_at) + CASE role WHEN 'admin' THEN interval '7 days'
                                               WHEN 'dpo' THEN interval '90 days'
                                               ELSE interval '30 days' END,
       revoked_at, CASE WHEN revoked_at IS NOT NULL THEN 'before migration 0010' END
FROM api_users;

ALTER TABLE api_users DROP COLUMN token_hash;
ALTER TABLE api_users ADD COLUMN revoked_by text;
UPDATE api_users SET revoked_by = 'before migration 0010' WHERE revoked_at IS NOT NULL;
ALTER TABLE api_users ADD CONSTRAINT api_users_revoked_by CHECK ((revoked_at IS NULL) = (revoked_by IS NULL));

-- For everyone, the owner included: a user is never deleted or renamed and its revocation stands; a token is never
-- deleted, and only its revocation (once) changes it.
CREATE FUNCTION api_users_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'UPDATE' THEN
        RAISE EXCEPTION 'API users are never deleted (revoke them): % refused', TG_OP
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF (NEW.user_id, NEW.name, NEW.created_at, NEW.created_by) IS DISTINCT FROM
       (OLD.user_id, OLD.name, OLD.created_at, OLD.created_by) THEN
        RAISE EXCEPTION 'an API user keeps its id and name for good' USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF OLD.revoked_at IS NOT NULL AND (NEW.revoked_at, NEW.revoked_by) IS DISTINCT FROM (OLD.revoked_at, OLD.revoked_by)
    THEN
        RAISE EXCEPTION 'user % is revoked: its revocation stands', OLD.name USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER api_users_guard BEFORE UPDATE OR DELETE ON api_users
    FOR EACH ROW EXECUTE FUNCTION api_users_guard();
CREATE TRIGGER api_users_no_truncate BEFORE TRUNCATE ON api_users
    FOR EACH STATEMENT EXECUTE FUNCTION api_users_guard();

CREATE FUNCTION api_tokens_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'UPDATE' THEN
        RAISE EXCEPTION 'API tokens are never deleted (revoke them): % refused', TG_OP
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF (NEW.token_id, NEW.user_id, NEW.token_hash, NEW.created_at, NEW.created_by, NEW.expires_at)
       IS DISTINCT FROM (OLD.token_id, OLD.user_id, OLD.token_hash, OLD.created_at, OLD.created_by, OLD.expires_at)
    THEN
        RAISE EXCEPTION 'a token is never changed or extended: issue a new one (users rotate)'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF OLD.revoked_at IS NOT NULL AND (NEW.revoked_at, NEW.revoked_by) IS DISTINCT FROM (OLD.revoked_at, OLD.revoked_by)
    THEN
        RAISE EXCEPTION 'token % is revoked: its revocation stands', OLD.token_id
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER api_tokens_guard BEFORE UPDATE OR DELETE ON api_tokens
    FOR EACH ROW EXECUTE FUNCTION api_tokens_guard();
CREATE TRIGGER api_tokens_no_truncate BEFORE TRUNCATE ON api_tokens
    FOR EACH STATEMENT EXECUTE FUNCTION api_tokens_guard();

-- Logout (POST /v1/session/logout): the API revokes the token the request came with, and nothing else. The service
-- login gets no UPDATE on api_tokens (a column grant would also let it clear a revocation the guard then refuses, or
-- write any revoked_by): only this function, which revokes one active token by its hash and says which.
CREATE FUNCTION api_token_logout(p_token_hash bytea) RETURNS TABLE (token_id bigint, user_id bigint)
LANGUAGE sql VOLATILE AS $$
    UPDATE api_tokens t SET revoked_at = now(), revoked_by = 'logout'
    WHERE t.token_hash = p_token_hash AND t.revoked_at IS NULL
    RETURNING t.token_id, t.user_id
$$;

DO $$
BEGIN
    EXECUTE format(
        'ALTER FUNCTION %I.api_token_logout(bytea) SECURITY DEFINER SET search_path = %I, pg_temp',
        current_schema(), current_schema()
    );
    EXECUTE format('REVOKE ALL ON FUNCTION %I.api_token_logout(bytea) FROM PUBLIC', current_schema());
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'anpr_service') THEN
        RAISE NOTICE 'role anpr_service missing: least-privilege grants skipped (see 0002 for creating it)';
        RETURN;
    END IF;
    -- The API looks tokens up (SELECT) and logs one out (the function); users and tokens are issued, changed and
    -- revoked by the owner's CLI (`anpr-stream users`).
    GRANT SELECT ON api_tokens TO anpr_service;
    GRANT EXECUTE ON FUNCTION api_token_logout(bytea) TO anpr_service;
    REVOKE INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER ON api_tokens FROM anpr_service;
END
$$;
