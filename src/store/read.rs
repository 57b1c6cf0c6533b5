//! Reading the index back: vectors (each checked against its checksum), files, paths, counts.

use super::*;

impl Store {
    /// The vector in `blob` when it passes [`check_vector`]; else the damage is noted for
    /// [`Store::take_damaged`] and `None` returned.
    fn checked(
        &self,
        id: i64,
        family: &str,
        version: u32,
        blob: &[u8],
        checksum: Option<&[u8]>,
    ) -> Option<Vec<f32>> {
        match check_vector(family, version, blob, checksum) {
            Ok(v) => Some(v),
            Err(reason) => {
                let mut noted = self.damaged.borrow_mut();
                if !noted.iter().any(|d| d.image_id == id && d.family == family) {
                    noted.push(DamagedVector {
                        image_id: id,
                        family: family.to_string(),
                        reason,
                    });
                }
                None
            }
        }
    }

    /// Damaged vectors that reads met (and left out) since the last call, in the order met.
    pub(crate) fn take_damaged(&self) -> Vec<DamagedVector> {
        std::mem::take(&mut *self.damaged.borrow_mut())
    }

    /// When reads met a damaged vector since the last [`Store::take_damaged`], notes every
    /// damaged vector of `families` in its place: what a search says it left out then does not
    /// depend on which candidates it read (a graph search reads fewer than an exact one).
    pub(crate) fn note_all_damage(&self, families: &[&str]) -> Result<()> {
        if self.damaged.borrow().is_empty() {
            return Ok(());
        }
        let all: Vec<DamagedVector> = self
            .check_vectors()?
            .into_iter()
            .filter(|d| families.contains(&d.family.as_str()))
            .collect();
        *self.damaged.borrow_mut() = all;
        Ok(())
    }

    /// Scans every stored vector and returns the damaged ones, in image id order.
    pub(crate) fn check_vectors(&self) -> Result<Vec<DamagedVector>> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT image_id, family, version, vector, checksum FROM features ORDER BY image_id, family",
            )
            .map_err(|e| db(&self.path, e))?;
        let mut rows = stmt.query([]).map_err(|e| db(&self.path, e))?;
        let mut out = Vec::new();
        while let Some(r) = rows.next().map_err(|e| db(&self.path, e))? {
            let (id, family, version, blob, sum) = (|| {
                Ok::<_, rusqlite::Error>((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, u32>(2)?,
                    r.get::<_, Vec<u8>>(3)?,
                    r.get::<_, Option<Vec<u8>>>(4)?,
                ))
            })()
            .map_err(|e| db(&self.path, e))?;
            if let Err(reason) = check_vector(&family, version, &blob, sum.as_deref()) {
                out.push(DamagedVector {
                    image_id: id,
                    family,
                    reason,
                });
            }
        }
        Ok(out)
    }

    /// Every image id with the vectors of the requested families, in id order.
    /// Images missing one of the families are skipped.
    pub fn vectors(&self, families: &[&str]) -> Result<Vec<(i64, Vec<Vec<f32>>)>> {
        let mut out = Vec::new();
        self.for_each_vector(families, |id, parts| {
            out.push((id, parts));
            Ok(())
        })?;
        Ok(out)
    }

    /// Streams the vectors of the given families image by image, in id order, without holding
    /// more than one image's rows. Images lacking one of the families (indexed before it
    /// existed, or with another profile's rows) are skipped, as searches leave them out.
    pub(crate) fn for_each_vector(
        &self,
        families: &[&str],
        mut f: impl FnMut(i64, Vec<Vec<f32>>) -> Result<()>,
    ) -> Result<()> {
        let searched = self.searched_signatures()?;
        // Other families' rows are skipped by the query, so their vectors are never read.
        let wanted = vec!["?"; families.len()].join(",");
        let mut stmt = self
            .conn
            .prepare(&format!(
                "SELECT image_id, family, version, vector, checksum, params FROM features \
                 WHERE family IN ({wanted}) ORDER BY image_id"
            ))
            .map_err(|e| db(&self.path, e))?;
        let rows = stmt
            .query_map(rusqlite::params_from_iter(families.iter()), |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, u32>(2)?,
                    r.get::<_, Vec<u8>>(3)?,
                    r.get::<_, Option<Vec<u8>>>(4)?,
                    r.get::<_, String>(5)?,
                ))
            })
            .map_err(|e| db(&self.path, e))?;
        // `bool`: one of the image's vectors is damaged, so the image is left out.
        /// An image's id, its family vectors so far, and whether one of them is damaged.
        type Pending = Option<(i64, Vec<Option<Vec<f32>>>, bool)>;
        let mut current: Pending = None;
        let mut flush = |done: Pending| -> Result<()> {
            if let Some((id, parts, false)) = done
                && let Some(parts) = parts.into_iter().collect::<Option<Vec<_>>>()
            {
                f(id, parts)?;
            }
            Ok(())
        };
        for row in rows {
            let (id, fam, version, blob, sum, params) = row.map_err(|e| db(&self.path, e))?;
            if current.as_ref().is_none_or(|c| c.0 != id) {
                flush(current.take())?;
                current = Some((id, vec![None; families.len()], false));
            }
            if !super::is_searched(searched.as_deref(), &fam, version, &params) {
                continue;
            }
            if let Some(slot) = families.iter().position(|f| *f == fam)
                && let Some(c) = current.as_mut()
            {
                match self.checked(id, &fam, version, &blob, sum.as_deref()) {
                    Some(v) => c.1[slot] = Some(v),
                    None => c.2 = true,
                }
            }
        }
        flush(current)
    }

    /// Vectors of the given families for the given images, sorted by id; images lacking one
    /// of them are left out.
    pub(crate) fn vectors_of(
        &self,
        ids: &[i64],
        families: &[&str],
    ) -> Result<Vec<(i64, Vec<Vec<f32>>)>> {
        let mut unique = ids.to_vec();
        unique.sort_unstable();
        unique.dedup();
        let mut by_id: std::collections::BTreeMap<i64, Vec<Option<Vec<f32>>>> = Default::default();
        let mut damaged = std::collections::HashSet::new();
        let searched = self.searched_signatures()?;
        // One statement per chunk of ids, reading only the families asked for (each image holds
        // several large vectors); SQLite allows far more than 64 + families parameters.
        let family_marks = vec!["?"; families.len()].join(",");
        for chunk in unique.chunks(64) {
            let marks = vec!["?"; chunk.len()].join(",");
            let mut stmt = self
                .conn
                .prepare_cached(&format!(
                    "SELECT image_id, family, version, vector, checksum, params FROM features \
                     WHERE image_id IN ({marks}) AND family IN ({family_marks})"
                ))
                .map_err(|e| db(&self.path, e))?;
            let params: Vec<rusqlite::types::Value> = chunk
                .iter()
                .map(|&id| id.into())
                .chain(families.iter().map(|&f| f.to_string().into()))
                .collect();
            let rows = stmt
                .query_map(rusqlite::params_from_iter(params), |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, u32>(2)?,
                        r.get::<_, Vec<u8>>(3)?,
                        r.get::<_, Option<Vec<u8>>>(4)?,
                        r.get::<_, String>(5)?,
                    ))
                })
                .map_err(|e| db(&self.path, e))?;
            for row in rows {
                let (id, fam, version, blob, sum, params) = row.map_err(|e| db(&self.path, e))?;
                if !super::is_searched(searched.as_deref(), &fam, version, &params) {
                    continue;
                }
                if let Some(slot) = families.iter().position(|f| *f == fam) {
                    match self.checked(id, &fam, version, &blob, sum.as_deref()) {
                        Some(v) => {
                            by_id
                                .entry(id)
                                .or_insert_with(|| vec![None; families.len()])[slot] = Some(v)
                        }
                        None => {
                            damaged.insert(id);
                        }
                    }
                }
            }
        }
        Ok(by_id
            .into_iter()
            .filter(|(id, _)| !damaged.contains(id))
            .filter_map(|(id, vs)| Some((id, vs.into_iter().collect::<Option<Vec<_>>>()?)))
            .collect())
    }

    /// Absolute paths of the given image ids; ids no longer present are left out.
    pub fn paths(&self, ids: &[i64]) -> Result<HashMap<i64, PathBuf>> {
        let roots = self.roots()?;
        let mut stmt = self
            .conn
            .prepare_cached("SELECT root_id, rel_path FROM images WHERE id = ?1")
            .map_err(|e| db(&self.path, e))?;
        let mut out = HashMap::new();
        for &id in ids {
            let row = stmt
                .query_row(params![id], |r| {
                    Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?))
                })
                .optional()
                .map_err(|e| db(&self.path, e))?;
            if let Some((root, rel)) = row {
                let base = roots.get(&root).cloned().unwrap_or_default();
                out.insert(id, base.join(blob_to_path(rel)));
            }
        }
        Ok(out)
    }

    /// Every image with what choosing among copies needs: its folder, relative path, stamp,
    /// hash, format and size in pixels, in id order.
    pub fn image_records(&self) -> Result<Vec<ImageRecord>> {
        self.records_where("1 ORDER BY id", [])
    }

    /// The image with this id, if it is still indexed.
    pub fn image_record(&self, id: i64) -> Result<Option<ImageRecord>> {
        Ok(self.records_where("id = ?1", params![id])?.pop())
    }

    /// One page of images in path order, all of them or those under one tracked folder
    /// (see [`Store::image_counts`] for which images those are).
    pub fn image_page(
        &self,
        root_id: Option<i64>,
        offset: u64,
        limit: u64,
    ) -> Result<Vec<ImageRecord>> {
        let (filter, mut args) = match root_id {
            Some(id) => under_folder(&self.roots()?, id),
            None => ("1".to_string(), Vec::new()),
        };
        // SQLite reads a negative OFFSET as 0: clamp, so a huge offset gives an empty page
        args.push(rusqlite::types::Value::Integer(
            limit.min(i64::MAX as u64) as i64
        ));
        args.push(rusqlite::types::Value::Integer(
            offset.min(i64::MAX as u64) as i64
        ));
        self.records_where(
            &format!("{filter} ORDER BY root_id, rel_path LIMIT ? OFFSET ?"),
            rusqlite::params_from_iter(args),
        )
    }

    /// How many images lie under each tracked folder, by folder id: the images whose path is
    /// below the folder, whatever tracked folder they are stored under (a file below nested
    /// tracked folders is stored once, under the outermost one, and counts for each of them).
    pub fn image_counts(&self) -> Result<HashMap<i64, u64>> {
        let roots = self.roots()?;
        roots
            .keys()
            .map(|&id| {
                let (filter, args) = under_folder(&roots, id);
                self.conn
                    .query_row(
                        &format!("SELECT COUNT(*) FROM images WHERE {filter}"),
                        rusqlite::params_from_iter(args),
                        |r| r.get::<_, i64>(0),
                    )
                    .map(|n| (id, n as u64))
                    .map_err(|e| db(&self.path, e))
            })
            .collect()
    }

    /// An indexed image holding exactly these bytes (by content hash), if any.
    pub(crate) fn id_of_hash(&self, hash: &[u8; 32]) -> Result<Option<i64>> {
        self.conn
            .query_row(
                "SELECT id FROM images WHERE hash = ?1 ORDER BY id LIMIT 1",
                params![hash.as_slice()],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| db(&self.path, e))
    }

    /// An image's content as stored, to write again under another path: its facts, its
    /// vectors (each checked) and its content's thumbnail; `None` when the row is gone or a
    /// vector is damaged.
    pub(crate) fn content_of(&self, id: i64) -> Result<Option<StoredContent>> {
        let e = |err| db(&self.path, err);
        let row = self
            .conn
            .query_row(
                "SELECT format, width, height, hash FROM images WHERE id = ?1",
                params![id],
                |r| {
                    Ok((
                        ImageFacts {
                            format: r.get(0)?,
                            width: r.get(1)?,
                            height: r.get(2)?,
                        },
                        r.get::<_, Vec<u8>>(3)?,
                    ))
                },
            )
            .optional()
            .map_err(e)?;
        let Some((facts, hash)) = row else {
            return Ok(None);
        };
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT family, version, params, vector, checksum FROM features WHERE image_id = ?1",
            )
            .map_err(e)?;
        let rows = stmt
            .query_map(params![id], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, u32>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, Vec<u8>>(3)?,
                    r.get::<_, Option<Vec<u8>>>(4)?,
                ))
            })
            .map_err(e)?;
        let mut features = Vec::new();
        for row in rows {
            let (family, version, params, blob, sum) = row.map_err(e)?;
            let Ok(vector) = check_vector(&family, version, &blob, sum.as_deref()) else {
                return Ok(None);
            };
            features.push(FeatureRow {
                family,
                version,
                params,
                vector,
            });
        }
        let thumbnail = match <[u8; 32]>::try_from(hash.as_slice()) {
            Ok(hash) => self.thumbnail(&hash)?,
            Err(_) => None,
        };
        Ok(Some(StoredContent {
            facts,
            features,
            thumbnail,
        }))
    }

    /// The stored thumbnail of this content ([`crate::thumbnail`]), if one was made.
    pub fn thumbnail(&self, hash: &[u8; 32]) -> Result<Option<Vec<u8>>> {
        self.conn
            .query_row(
                "SELECT jpeg FROM thumbnails WHERE hash = ?1",
                params![hash.as_slice()],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| db(&self.path, e))
    }

    fn records_where(&self, filter: &str, args: impl rusqlite::Params) -> Result<Vec<ImageRecord>> {
        let roots = self.roots()?;
        let mut stmt = self
            .conn
            .prepare_cached(&format!(
                "SELECT id, size, mtime_ns, ctime_ns, hash, root_id, rel_path, format, width, height
                 FROM images WHERE {filter}"
            ))
            .map_err(|e| db(&self.path, e))?;
        let rows = stmt
            .query_map(args, |r| {
                let root = roots.get(&r.get::<_, i64>(5)?).cloned().unwrap_or_default();
                let rel_path = blob_to_path(r.get(6)?);
                let file = recorded_file(r, root.join(&rel_path))?;
                Ok(ImageRecord {
                    id: file.id,
                    path: file.path,
                    root,
                    rel_path,
                    stamp: file.stamp,
                    hash: file.hash,
                    format: r.get(7)?,
                    width: r.get(8)?,
                    height: r.get(9)?,
                })
            })
            .map_err(|e| db(&self.path, e))?;
        rows.collect::<std::result::Result<_, _>>()
            .map_err(|e| db(&self.path, e))
    }

    /// The id of the image stored at an absolute path, if any.
    #[cfg(test)]
    pub(crate) fn id_of_path(&self, abs: &Path) -> Result<Option<i64>> {
        Ok(self.file_at(abs)?.map(|f| f.id))
    }

    /// The id of the image stored under a root at a relative path, if any.
    pub(crate) fn id_at(&self, root_id: i64, rel: &Path) -> Result<Option<i64>> {
        self.conn
            .query_row(
                "SELECT id FROM images WHERE root_id = ?1 AND rel_path = ?2",
                params![root_id, path_to_blob(rel)],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| db(&self.path, e))
    }

    /// The image stored at an absolute path, if any, with its stamp and hash.
    pub(crate) fn file_at(&self, abs: &Path) -> Result<Option<RecordedFile>> {
        for (root_id, root) in self.roots()? {
            if let Ok(rel) = abs.strip_prefix(&root)
                && !rel.as_os_str().is_empty()
            {
                let found = self
                    .conn
                    .query_row(
                        "SELECT id, size, mtime_ns, ctime_ns, hash FROM images
                         WHERE root_id = ?1 AND rel_path = ?2",
                        params![root_id, path_to_blob(rel)],
                        |r| recorded_file(r, abs.to_path_buf()),
                    )
                    .optional()
                    .map_err(|e| db(&self.path, e))?;
                if found.is_some() {
                    return Ok(found);
                }
            }
        }
        Ok(None)
    }

    /// The recorded files of the given image ids; ids no longer present are left out.
    pub(crate) fn files_of(&self, ids: &[i64]) -> Result<HashMap<i64, RecordedFile>> {
        let roots = self.roots()?;
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT id, size, mtime_ns, ctime_ns, hash, root_id, rel_path FROM images WHERE id = ?1",
            )
            .map_err(|e| db(&self.path, e))?;
        let mut out = HashMap::new();
        for &id in ids {
            let row = stmt
                .query_row(params![id], |r| {
                    let base = roots.get(&r.get::<_, i64>(5)?).cloned().unwrap_or_default();
                    recorded_file(r, base.join(blob_to_path(r.get(6)?)))
                })
                .optional()
                .map_err(|e| db(&self.path, e))?;
            if let Some(file) = row {
                out.insert(id, file);
            }
        }
        Ok(out)
    }

    /// Images holding a vector of any of `families` (those `for_each_vector` yields), sorted by
    /// id, each with the data version at which its vectors were last written.
    pub(crate) fn vector_versions(&self, families: &[&str]) -> Result<Vec<(i64, u64)>> {
        let marks = vec!["?"; families.len()].join(", ");
        let sql = format!(
            "SELECT id, vectors_version FROM images WHERE EXISTS
               (SELECT 1 FROM features WHERE image_id = images.id AND family IN ({marks}))
             ORDER BY id"
        );
        let mut stmt = self.conn.prepare(&sql).map_err(|e| db(&self.path, e))?;
        let rows = stmt
            .query_map(rusqlite::params_from_iter(families), |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)? as u64))
            })
            .map_err(|e| db(&self.path, e))?;
        rows.collect::<std::result::Result<_, _>>()
            .map_err(|e| db(&self.path, e))
    }

    /// The first data version from which every write records its `vectors_version` (schema 3).
    pub(crate) fn vectors_tracked_from(&self) -> Result<u64> {
        Ok(self
            .meta("vectors_tracked_from")?
            .and_then(|v| v.parse().ok())
            .unwrap_or(0))
    }

    /// Number of indexed images (cheap, unlike `stats`, which scans every feature row).
    pub(crate) fn image_count(&self) -> Result<u64> {
        self.conn
            .query_row("SELECT COUNT(*) FROM images", [], |r| r.get::<_, i64>(0))
            .map(|n| n as u64)
            .map_err(|e| db(&self.path, e))
    }

    /// Summary counts for `status`.
    pub fn stats(&self) -> Result<StoreStats> {
        let count = |sql: &str| -> Result<u64> {
            self.conn
                .query_row(sql, [], |r| r.get::<_, i64>(0))
                .map(|n| n as u64)
                .map_err(|e| db(&self.path, e))
        };
        let images = count("SELECT COUNT(*) FROM images")?;
        let failures = count("SELECT COUNT(*) FROM failures")?;
        let mut roots: Vec<String> = self
            .roots()?
            .into_values()
            .map(|p| p.display().to_string())
            .collect();
        roots.sort();
        let mut stmt = self
            .conn
            .prepare("SELECT family, version, params, COUNT(*) FROM features GROUP BY family, version, params ORDER BY family, version")
            .map_err(|e| db(&self.path, e))?;
        let feature_versions = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, u32>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, i64>(3)? as u64,
                ))
            })
            .map_err(|e| db(&self.path, e))?
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| db(&self.path, e))?;
        Ok(StoreStats {
            images,
            failures,
            roots,
            feature_versions,
            schema_version: self.schema_version()?,
            data_version: self.data_version()?,
        })
    }

    /// Runs `PRAGMA quick_check`: every page of every table, thumbnails included, is read and
    /// its structure checked (not index contents; about 0.04 s on 1000 images). A damaged
    /// database is an [`Error::Db`] SQLite calls corrupt, as a read of a damaged page gives.
    pub(crate) fn quick_check(&self) -> Result<()> {
        let verdict: String = self
            .conn
            .query_row("PRAGMA quick_check(1)", [], |r| r.get(0))
            .map_err(|e| db(&self.path, e))?;
        if verdict == "ok" {
            return Ok(());
        }
        Err(db(
            &self.path,
            rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CORRUPT),
                Some(format!("quick check failed: {verdict}")),
            ),
        ))
    }

    /// Runs `PRAGMA integrity_check`; `Ok(())` when the database is sound.
    pub fn integrity_check(&self) -> Result<()> {
        let verdict: String = self
            .conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .map_err(|e| db(&self.path, e))?;
        if verdict == "ok" {
            Ok(())
        } else {
            Err(Error::Corrupt {
                path: self.path.clone(),
                reason: format!("integrity check failed: {verdict}"),
            })
        }
    }
}

/// A [`RecordedFile`] from a row starting `id, size, mtime_ns, ctime_ns, hash`.
/// A stored content hash (zeros when the blob is not 32 bytes long).
fn hash_of(blob: Vec<u8>) -> [u8; 32] {
    blob.try_into().unwrap_or([0u8; 32])
}

fn recorded_file(r: &rusqlite::Row, path: PathBuf) -> rusqlite::Result<RecordedFile> {
    let hash = hash_of(r.get(4)?);
    Ok(RecordedFile {
        id: r.get(0)?,
        path,
        stamp: FileStamp {
            size: r.get::<_, i64>(1)? as u64,
            mtime_ns: r.get(2)?,
            ctime_ns: r.get(3)?,
        },
        hash,
    })
}

/// The condition (with its arguments) on `images` rows that holds for the images whose path
/// lies under the tracked folder `folder`, by path components: all images of the tracked
/// folders at or inside it, and those of a tracked folder around it whose relative path lies
/// below the folder's own path relative to that one (`trip` holds `trip/a.jpg`, not
/// `trip2/a.jpg`). No row matches a folder id that is not tracked.
fn under_folder(
    roots: &HashMap<i64, PathBuf>,
    folder: i64,
) -> (String, Vec<rusqlite::types::Value>) {
    use rusqlite::types::Value;
    let Some(path) = roots.get(&folder) else {
        return ("0".to_string(), Vec::new());
    };
    let mut terms = Vec::new();
    let mut args = Vec::new();
    for (&id, root) in roots {
        if root.starts_with(path) {
            terms.push("root_id = ?");
            args.push(Value::Integer(id));
        } else if let Ok(rel) = path.strip_prefix(root) {
            // Below `rel` is every blob from `rel/` up to, not including, `rel` followed by the
            // byte after the separator (blobs compare byte by byte).
            let sep = std::path::MAIN_SEPARATOR as u8;
            let mut low = path_to_blob(rel);
            let mut high = low.clone();
            low.push(sep);
            high.push(sep + 1);
            terms.push("(root_id = ? AND rel_path >= ? AND rel_path < ?)");
            args.extend([Value::Integer(id), Value::Blob(low), Value::Blob(high)]);
        }
    }
    (format!("({})", terms.join(" OR ")), args)
}
