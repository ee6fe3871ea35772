-- Evidence images (plate crops, overviews) live in the evidence store (anpr_stream/evidence.py), one directory per
-- UTC day of the read, and go with the passages of their day: the purge records what it removed there beside the
-- partitions it dropped. Defaults of 0 for the runs logged before this migration (they removed no images).
ALTER TABLE purge_log
    ADD COLUMN evidence_days_removed  integer NOT NULL DEFAULT 0,
    ADD COLUMN evidence_files_removed bigint  NOT NULL DEFAULT 0;
COMMENT ON COLUMN purge_log.evidence_days_removed IS 'day directories of the evidence store removed by this run';
COMMENT ON COLUMN purge_log.evidence_files_removed IS 'images in them';
