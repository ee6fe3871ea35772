-- One passage per read, whoever delivers it again (gateways deliver at least once), and never two reads merged into
-- one: a read is its read_id, camera, instant and normalised plate (anpr_stream/core/identity.py). The same read sent
-- again is the same row; a read_id reused for another read (a camera whose counter restarted, another camera, time or
-- plate) is a row of its own, with hits of its own (hit_id derives from all four).
ALTER TABLE passages DROP CONSTRAINT passages_pkey;
ALTER TABLE passages ADD PRIMARY KEY (read_id, observed_at, camera_id, plate_norm);

-- The Kafka record that delivered the read first (partition and offset of the reads topic). Its hits are published by
-- that record's transaction only: a replay of that record after a crash publishes what its aborted transaction did
-- not; a copy of the read in another record publishes nothing. NULL in rows stored before this migration.
ALTER TABLE passages ADD COLUMN source_partition integer, ADD COLUMN source_offset bigint;
COMMENT ON COLUMN passages.source_partition IS 'partition of the reads topic whose record first delivered the read';
COMMENT ON COLUMN passages.source_offset IS 'offset of that record';
