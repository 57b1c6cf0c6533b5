-- lookalike schema v2: one row per `index` run, so that `status` can tell whether the last run
-- finished, was interrupted, or died (a row whose finished_at stayed NULL).

CREATE TABLE index_runs (
    id          INTEGER PRIMARY KEY,
    started_at  INTEGER NOT NULL,        -- unix seconds
    finished_at INTEGER,                 -- NULL while running, or if the process was killed
    outcome     TEXT,                    -- 'complete', 'interrupted' or 'error'; NULL as above
    roots       TEXT    NOT NULL,        -- JSON array of the folders given to `index`
    summary     TEXT                     -- JSON of the run's counts, or the error message
);
