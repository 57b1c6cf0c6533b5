-- Thumbnails for `lookalike serve`, one per distinct content: copies and moves share it.
-- The triggers drop a thumbnail when no image holds its content any more (deleted, forgotten,
-- or rewritten with other bytes), so the table follows the images without extra work.
CREATE TABLE thumbnails (
    hash BLOB PRIMARY KEY,               -- blake3 of the image file, as in images.hash
    jpeg BLOB NOT NULL                   -- at most 256 pixels per side
) WITHOUT ROWID;

CREATE TRIGGER thumbnails_follow_deleted_images AFTER DELETE ON images
WHEN NOT EXISTS (SELECT 1 FROM images WHERE hash = OLD.hash)
BEGIN
    DELETE FROM thumbnails WHERE hash = OLD.hash;
END;

CREATE TRIGGER thumbnails_follow_rewritten_images AFTER UPDATE OF hash ON images
WHEN OLD.hash <> NEW.hash AND NOT EXISTS (SELECT 1 FROM images WHERE hash = OLD.hash)
BEGIN
    DELETE FROM thumbnails WHERE hash = OLD.hash;
END;
