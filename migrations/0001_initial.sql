-- lookalike schema v1: images, their per-family feature vectors, failures, metadata.
-- Paths are stored as raw OS bytes (BLOB) so that names which are not valid UTF-8 survive.

CREATE TABLE roots (
    id   INTEGER PRIMARY KEY,
    path BLOB NOT NULL UNIQUE            -- absolute, canonical folder given to `index`
);

CREATE TABLE images (
    id         INTEGER PRIMARY KEY,      -- also the HNSW point id
    root_id    INTEGER NOT NULL REFERENCES roots(id) ON DELETE CASCADE,
    rel_path   BLOB    NOT NULL,         -- relative to the root
    size       INTEGER NOT NULL,
    mtime_ns   INTEGER NOT NULL,
    hash       BLOB    NOT NULL,         -- blake3 of the file's bytes
    format     TEXT    NOT NULL,
    width      INTEGER NOT NULL,         -- after EXIF orientation
    height     INTEGER NOT NULL,
    indexed_at INTEGER NOT NULL,         -- unix seconds
    UNIQUE (root_id, rel_path)
);
CREATE INDEX images_by_hash ON images(hash);

CREATE TABLE features (
    image_id INTEGER NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    family   TEXT    NOT NULL,           -- 'color', 'conv', 'deconv', ...
    version  INTEGER NOT NULL,           -- extractor version
    params   TEXT    NOT NULL,           -- fingerprint of the extractor's parameters
    vector   BLOB    NOT NULL,           -- little-endian f32
    PRIMARY KEY (image_id, family)
) WITHOUT ROWID;

CREATE TABLE failures (
    root_id  INTEGER NOT NULL REFERENCES roots(id) ON DELETE CASCADE,
    rel_path BLOB    NOT NULL,
    size     INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    reason   TEXT    NOT NULL,
    at       INTEGER NOT NULL,
    PRIMARY KEY (root_id, rel_path)
);

CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
