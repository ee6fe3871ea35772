-- OCR candidates: a hit may be raised by one of the read's top-N alternative readings (`candidates` in the reading,
-- matched for lists whose policy opts in, anpr_stream/core/policy.py). The hit says which one: its text, its rank
-- (1-based, in the engine's order) and the engine's confidence in it. All three NULL when the read's best plate
-- matched, as for every hit stored before this migration. Nullable without a default: adding them rewrites nothing.
ALTER TABLE hits
    ADD COLUMN matched_plate        text,
    ADD COLUMN candidate_rank       smallint,
    ADD COLUMN candidate_confidence double precision;  -- as in the payload, not rounded to real
COMMENT ON COLUMN hits.matched_plate IS 'the OCR candidate that matched (as read); NULL: the read''s best plate';
COMMENT ON COLUMN hits.candidate_rank IS 'rank of the matched OCR candidate, 1 = the engine''s first; NULL: best plate';
COMMENT ON COLUMN hits.candidate_confidence IS 'the engine''s confidence in the matched candidate (0..1), if given';

-- NOT VALID: rows stored before this migration hold NULLs, which pass; no scan of the hits table under a lock.
ALTER TABLE hits ADD CONSTRAINT hits_candidate_consistent CHECK (
    (matched_plate IS NULL) = (candidate_rank IS NULL)
    AND (candidate_rank IS NOT NULL OR candidate_confidence IS NULL)
    AND (candidate_rank IS NULL OR candidate_rank BETWEEN 1 AND 10)
    AND (candidate_confidence IS NULL OR candidate_confidence BETWEEN 0 AND 1)
) NOT VALID;

-- A hit's decision is still written once, and nothing else changes (migration 0007): the candidate columns are part
-- of what a decision must leave as stored. The service role's column grants (0007) do not cover them either.
CREATE OR REPLACE FUNCTION hits_decide_once() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.suppressed IS NOT NULL OR NEW.suppressed IS NULL THEN
        RAISE EXCEPTION 'hit % is already decided (a decision is written once)', OLD.hit_id
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF (NEW.hit_id, NEW.read_id, NEW.entry_id, NEW.list, NEW.camera_id, NEW.observed_at, NEW.plate_raw, NEW.plate_norm,
        NEW.plate_class, NEW.entry_plate, NEW.match_kind, NEW.distance, NEW.priority, NEW.action, NEW.covert,
        NEW.dispatch, NEW.matched_plate, NEW.candidate_rank, NEW.candidate_confidence)
       IS DISTINCT FROM
       (OLD.hit_id, OLD.read_id, OLD.entry_id, OLD.list, OLD.camera_id, OLD.observed_at, OLD.plate_raw, OLD.plate_norm,
        OLD.plate_class, OLD.entry_plate, OLD.match_kind, OLD.distance, OLD.priority, OLD.action, OLD.covert,
        OLD.dispatch, OLD.matched_plate, OLD.candidate_rank, OLD.candidate_confidence) THEN
        RAISE EXCEPTION 'hit %: only the pending decision may be written', OLD.hit_id
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END
$$;
