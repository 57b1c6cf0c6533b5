-- lookalike schema v4: a file's stamp also holds its inode change time, which no tool can set
-- back, so a same-size rewrite that restores the modification time is still noticed; each
-- feature vector carries a checksum of its bytes, so damage to stored vectors is detected.

ALTER TABLE images ADD COLUMN ctime_ns INTEGER NOT NULL DEFAULT 0;   -- 0: not recorded
ALTER TABLE failures ADD COLUMN ctime_ns INTEGER NOT NULL DEFAULT 0;
ALTER TABLE features ADD COLUMN checksum BLOB;                       -- NULL: written before v4
