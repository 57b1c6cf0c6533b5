//! Writing to the index: batches of changes in one transaction, and settling every file under
//! the outermost tracked folder.

use super::*;

impl Store {
    /// Applies a batch of changes in one transaction and bumps the data version.
    pub(crate) fn apply(&mut self, ops: &[WriteOp]) -> Result<()> {
        if ops.is_empty() {
            return Ok(());
        }
        let path = self.path.clone();
        let e = |err| db(&path, err);
        let tx = self.conn.transaction().map_err(e)?;
        let now = now_unix();
        // The version this transaction commits; rows whose vectors it writes carry it.
        let next_version: i64 = tx
            .query_row(
                "SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'data_version'",
                [],
                |r| r.get(0),
            )
            .optional()
            .map_err(e)?
            .unwrap_or(0)
            + 1;
        for op in ops {
            match op {
                WriteOp::Upsert {
                    root_id,
                    rel_path,
                    stamp,
                    hash,
                    facts,
                    features,
                    thumbnail,
                } => {
                    let rel = path_to_blob(rel_path);
                    let id: i64 = tx
                        .query_row(
                            "INSERT INTO images(root_id, rel_path, size, mtime_ns, hash, format, width, height, indexed_at, vectors_version, ctime_ns)
                             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
                             ON CONFLICT(root_id, rel_path) DO UPDATE SET
                               size = excluded.size, mtime_ns = excluded.mtime_ns,
                               ctime_ns = excluded.ctime_ns, hash = excluded.hash,
                               format = excluded.format, width = excluded.width, height = excluded.height,
                               indexed_at = excluded.indexed_at, vectors_version = excluded.vectors_version
                             RETURNING id",
                            params![
                                root_id,
                                rel,
                                stamp.size as i64,
                                stamp.mtime_ns,
                                hash.as_slice(),
                                facts.format,
                                facts.width,
                                facts.height,
                                now,
                                next_version,
                                stamp.ctime_ns
                            ],
                            |r| r.get(0),
                        )
                        .map_err(e)?;
                    tx.execute("DELETE FROM features WHERE image_id = ?1", params![id])
                        .map_err(e)?;
                    let mut ins = tx
                        .prepare_cached(
                            "INSERT INTO features(image_id, family, version, params, vector, checksum)
                             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                        )
                        .map_err(e)?;
                    for f in features {
                        let blob = vector_to_blob(&f.vector);
                        ins.execute(params![
                            id,
                            f.family,
                            f.version,
                            f.params,
                            &blob,
                            vector_checksum(&blob).as_slice()
                        ])
                        .map_err(e)?;
                    }
                    if let Some(jpeg) = thumbnail {
                        tx.execute(
                            "INSERT OR REPLACE INTO thumbnails(hash, jpeg) VALUES (?1, ?2)",
                            params![hash.as_slice(), jpeg],
                        )
                        .map_err(e)?;
                    }
                    tx.execute(
                        "DELETE FROM failures WHERE root_id = ?1 AND rel_path = ?2",
                        params![root_id, rel],
                    )
                    .map_err(e)?;
                }
                WriteOp::Touch { id, stamp } => {
                    tx.execute(
                        "UPDATE images SET size = ?2, mtime_ns = ?3, ctime_ns = ?4 WHERE id = ?1",
                        params![id, stamp.size as i64, stamp.mtime_ns, stamp.ctime_ns],
                    )
                    .map_err(e)?;
                    // read again: a failure recorded while it could not be read is over
                    tx.execute(
                        "DELETE FROM failures WHERE (root_id, rel_path) IN
                           (SELECT root_id, rel_path FROM images WHERE id = ?1)",
                        params![id],
                    )
                    .map_err(e)?;
                }
                WriteOp::Move {
                    id,
                    root_id,
                    rel_path,
                    stamp,
                } => {
                    let rel = path_to_blob(rel_path);
                    // A stale row may still hold the destination path; the moved file replaces it.
                    tx.execute(
                        "DELETE FROM images WHERE root_id = ?1 AND rel_path = ?2 AND id <> ?3",
                        params![root_id, rel, id],
                    )
                    .map_err(e)?;
                    tx.execute(
                        "UPDATE images SET root_id = ?2, rel_path = ?3, size = ?4, mtime_ns = ?5, ctime_ns = ?6
                         WHERE id = ?1",
                        params![
                            id,
                            root_id,
                            rel,
                            stamp.size as i64,
                            stamp.mtime_ns,
                            stamp.ctime_ns
                        ],
                    )
                    .map_err(e)?;
                    tx.execute(
                        "DELETE FROM failures WHERE root_id = ?1 AND rel_path = ?2",
                        params![root_id, rel],
                    )
                    .map_err(e)?;
                }
                WriteOp::Copy {
                    source_id,
                    hash,
                    root_id,
                    rel_path,
                    stamp,
                } => {
                    let rel = path_to_blob(rel_path);
                    tx.execute(
                        "DELETE FROM images WHERE root_id = ?1 AND rel_path = ?2",
                        params![root_id, rel],
                    )
                    .map_err(e)?;
                    let id: Option<i64> = tx
                        .query_row(
                            "INSERT INTO images(root_id, rel_path, size, mtime_ns, hash, format, width, height, indexed_at, vectors_version, ctime_ns)
                             SELECT ?2, ?3, ?4, ?5, hash, format, width, height, ?6, ?7, ?8 FROM images
                             WHERE id = ?1 AND hash = ?9
                             RETURNING id",
                            params![
                                source_id,
                                root_id,
                                rel,
                                stamp.size as i64,
                                stamp.mtime_ns,
                                now,
                                next_version,
                                stamp.ctime_ns,
                                hash.as_slice()
                            ],
                            |r| r.get(0),
                        )
                        .optional()
                        .map_err(e)?;
                    if let Some(id) = id {
                        tx.execute(
                            "INSERT INTO features(image_id, family, version, params, vector, checksum)
                             SELECT ?2, family, version, params, vector, checksum FROM features WHERE image_id = ?1",
                            params![source_id, id],
                        )
                        .map_err(e)?;
                    }
                    tx.execute(
                        "DELETE FROM failures WHERE root_id = ?1 AND rel_path = ?2",
                        params![root_id, rel],
                    )
                    .map_err(e)?;
                }
                WriteOp::Fail {
                    root_id,
                    rel_path,
                    stamp,
                    reason,
                }
                | WriteOp::FailKept {
                    root_id,
                    rel_path,
                    stamp,
                    reason,
                } => {
                    let rel = path_to_blob(rel_path);
                    if matches!(op, WriteOp::Fail { .. }) {
                        tx.execute(
                            "DELETE FROM images WHERE root_id = ?1 AND rel_path = ?2",
                            params![root_id, rel],
                        )
                        .map_err(e)?;
                    }
                    tx.execute(
                        "INSERT INTO failures(root_id, rel_path, size, mtime_ns, reason, at, ctime_ns)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                         ON CONFLICT(root_id, rel_path) DO UPDATE SET size = excluded.size,
                           mtime_ns = excluded.mtime_ns, ctime_ns = excluded.ctime_ns,
                           reason = excluded.reason, at = excluded.at",
                        params![
                            root_id,
                            rel,
                            stamp.size as i64,
                            stamp.mtime_ns,
                            reason,
                            now,
                            stamp.ctime_ns
                        ],
                    )
                    .map_err(e)?;
                }
                WriteOp::Remove { id } => {
                    tx.execute("DELETE FROM images WHERE id = ?1", params![id])
                        .map_err(e)?;
                }
            }
        }
        bump_data_version(&tx).map_err(e)?;
        tx.commit().map_err(e)
    }

    /// Gives every file the outermost tracked root that holds it, so that a file under
    /// overlapping roots is stored once: rows under a nested root move to the outer one (when
    /// the outer one already has that file, its row is kept and the other dropped). With
    /// `dropping`, that root stops being tracked: its rows move to another tracked root that
    /// holds them, and the rest are removed. Image ids are kept.
    pub(crate) fn settle_roots(&mut self, dropping: Option<i64>) -> Result<Settled> {
        let all = self.roots()?;
        let kept: Vec<(i64, &PathBuf)> = all
            .iter()
            .filter(|(id, _)| Some(**id) != dropping)
            .map(|(id, p)| (*id, p))
            .collect();
        let nested = kept
            .iter()
            .any(|(a, pa)| kept.iter().any(|(b, pb)| a != b && pa.starts_with(pb)));
        if dropping.is_none() && !nested {
            return Ok(Settled::default());
        }
        // The outermost kept root holding `abs` (strictly below it), with the path relative to it.
        let home = |abs: &Path| -> Option<(i64, PathBuf)> {
            kept.iter()
                .filter(|(_, root)| abs != root.as_path() && abs.starts_with(root))
                .min_by_key(|(_, root)| root.components().count())
                .and_then(|(id, root)| abs.strip_prefix(root).ok().map(|r| (*id, r.to_path_buf())))
        };
        let path = self.path.clone();
        let e = |err| db(&path, err);
        let tx = self.conn.transaction().map_err(e)?;
        let mut settled = Settled::default();
        for table in ["images", "failures"] {
            let rows: Vec<(i64, i64, Vec<u8>)> = {
                let mut stmt = tx
                    .prepare(&format!("SELECT rowid, root_id, rel_path FROM {table}"))
                    .map_err(e)?;
                stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                    .map_err(e)?
                    .collect::<rusqlite::Result<_>>()
                    .map_err(e)?
            };
            for (rowid, root_id, rel) in rows {
                let Some(root) = all.get(&root_id) else {
                    continue;
                };
                let abs = root.join(blob_to_path(rel));
                match home(&abs) {
                    Some((id, _)) if id == root_id => {}
                    Some((id, rel)) => {
                        let rel = path_to_blob(&rel);
                        let taken: bool = tx
                            .query_row(
                                &format!(
                                    "SELECT EXISTS(SELECT 1 FROM {table} WHERE root_id = ?1 AND rel_path = ?2)"
                                ),
                                params![id, rel],
                                |r| r.get(0),
                            )
                            .map_err(e)?;
                        if taken {
                            tx.execute(&format!("DELETE FROM {table} WHERE rowid = ?1"), [rowid])
                                .map_err(e)?;
                            settled.removed += usize::from(table == "images");
                        } else {
                            tx.execute(
                                &format!(
                                    "UPDATE {table} SET root_id = ?2, rel_path = ?3 WHERE rowid = ?1"
                                ),
                                params![rowid, id, rel],
                            )
                            .map_err(e)?;
                            settled.rehomed += usize::from(table == "images");
                        }
                    }
                    None => {
                        tx.execute(&format!("DELETE FROM {table} WHERE rowid = ?1"), [rowid])
                            .map_err(e)?;
                        settled.removed += usize::from(table == "images");
                    }
                }
            }
        }
        if let Some(id) = dropping {
            tx.execute("DELETE FROM roots WHERE id = ?1", [id])
                .map_err(e)?;
        }
        if settled != Settled::default() {
            bump_data_version(&tx).map_err(e)?;
        }
        tx.commit().map_err(e)?;
        Ok(settled)
    }
}

fn bump_data_version(tx: &rusqlite::Transaction) -> rusqlite::Result<usize> {
    tx.execute(
        "INSERT INTO meta(key, value) VALUES ('data_version', '1')
         ON CONFLICT(key) DO UPDATE SET value = CAST(CAST(value AS INTEGER) + 1 AS TEXT)",
        [],
    )
}
