-- Exact repeat suppression with several workers (scale-out): a hit that would be dispatched is decided only once every
-- input partition has been stored past its observed_at (the watermark), so that every predecessor of it is known.
-- Until then its row is stored with suppressed NULL (pending: the vehicle is on record, no alert has gone out yet).
ALTER TABLE hits ALTER COLUMN suppressed DROP NOT NULL;
COMMENT ON COLUMN hits.suppressed IS
    'true: repeat within the window (logged, not dispatched); false: dispatched; NULL: waiting for the watermark';

-- How far each input partition is stored, written by the partition's owner in the transaction that stores its reads.
-- observed_upto: the latest observed_at stored from the partition (reads arrive in event-time order per partition:
-- the replay and the cameras send them so); idle_since: the owner found nothing left to read there (an idle partition
-- does not hold the watermark back while its owner keeps the claim fresh); generation: the consumer-group generation
-- of the owner, so that a worker that lost the partition (a zombie) cannot claim it idle.
CREATE TABLE read_progress (
    consumer_group text        NOT NULL,
    topic          text        NOT NULL,
    partition      integer     NOT NULL,
    observed_upto  timestamptz,
    idle_since     timestamptz,
    claimed_at     timestamptz NOT NULL,
    generation     integer     NOT NULL,
    PRIMARY KEY (consumer_group, topic, partition)
);

-- A hit's decision is written once: NULL -> true/false, nothing else changes. The trigger holds for every role; the
-- service role additionally may update only these three columns (grants below).
CREATE FUNCTION hits_decide_once() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.suppressed IS NOT NULL OR NEW.suppressed IS NULL THEN
        RAISE EXCEPTION 'hit % is already decided (a decision is written once)', OLD.hit_id
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF (NEW.hit_id, NEW.read_id, NEW.entry_id, NEW.list, NEW.camera_id, NEW.observed_at, NEW.plate_raw, NEW.plate_norm,
        NEW.plate_class, NEW.entry_plate, NEW.match_kind, NEW.distance, NEW.priority, NEW.action, NEW.covert,
        NEW.dispatch)
       IS DISTINCT FROM
       (OLD.hit_id, OLD.read_id, OLD.entry_id, OLD.list, OLD.camera_id, OLD.observed_at, OLD.plate_raw, OLD.plate_norm,
        OLD.plate_class, OLD.entry_plate, OLD.match_kind, OLD.distance, OLD.priority, OLD.action, OLD.covert,
        OLD.dispatch) THEN
        RAISE EXCEPTION 'hit %: only the pending decision may be written', OLD.hit_id
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER hits_decide_once BEFORE UPDATE ON hits FOR EACH ROW EXECUTE FUNCTION hits_decide_once();

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'anpr_service') THEN
        RAISE NOTICE 'role anpr_service missing: least-privilege grants skipped (see 0002 for creating it)';
        RETURN;
    END IF;
    GRANT SELECT, INSERT, UPDATE ON read_progress TO anpr_service;
    GRANT UPDATE (suppressed, detected_at, payload) ON hits TO anpr_service;
END
$$;
