-- lookalike schema v3: the data version at which each image's vectors were last written, so that
-- the HNSW graph can be brought up to date by inserting only what changed since its dump.

ALTER TABLE images ADD COLUMN vectors_version INTEGER NOT NULL DEFAULT 0;

-- Vectors written before this migration carry 0: a dump older than this point cannot tell
-- which of its images changed, and is rebuilt in full.
INSERT INTO meta(key, value)
SELECT 'vectors_tracked_from', COALESCE((SELECT value FROM meta WHERE key = 'data_version'), '0');
