//! Where an index lives: one folder per collection holding the SQLite database, the HNSW dump
//! and the writer lock.

use std::cell::OnceCell;
use std::fs::File;
use std::path::{Path, PathBuf};

use crate::ann::{
    AnnBuilder, AnnIndex, AnnParams, DumpRecord, RERANK_DEPTH, ann_dir, exact_search, lookup,
    rerank,
};
use crate::error::{Error, Result};
use crate::features::{Fusion, Profile};
use crate::store::Store;

/// Default index folder, relative to the working directory.
pub const DEFAULT_INDEX_DIR: &str = ".lookalike";
/// Environment variable that overrides the default index folder.
pub const INDEX_DIR_ENV: &str = "LOOKALIKE_INDEX";
const DB_FILE: &str = "lookalike.db";
const LOCK_FILE: &str = "index.lock";
/// The first bytes of every SQLite database file.
const SQLITE_HEADER: &[u8; 16] = b"SQLite format 3\0";
const DUMP_KEY: &str = "ann_dump";
const DBA_KEY: &str = "ann_dba";
const PROFILE_KEY: &str = "feature_profile";

/// When `index` may bring the graph up to date in place instead of rebuilding it. In-place
/// updates cost time in proportion to what changed; a rebuild, to the whole collection (about
/// six minutes for 100,000 augmented images on two cores).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct UpdatePolicy {
    /// Graphs whose full build held fewer points are rebuilt: that takes seconds, and a fresh
    /// graph's augmentation is exact (evaluations on the shared sets are rebuilt every time).
    pub min_built: usize,
    /// Rebuild once the points inserted since the full build would exceed this share of it
    /// (the PCA was fitted to that build, and old points miss new augmentation neighbours)...
    pub max_growth: f64,
    /// ...or once hidden points would exceed this share of the graph (they lengthen searches).
    pub max_hidden: f64,
}

impl Default for UpdatePolicy {
    fn default() -> Self {
        UpdatePolicy {
            min_built: 5_000,
            max_growth: 0.25,
            max_hidden: 0.10,
        }
    }
}

/// What an in-place graph update did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct GraphUpdate {
    /// Images inserted (new, or whose vectors changed).
    pub inserted: usize,
    /// Points hidden (images removed, or the old points of changed ones).
    pub hidden: usize,
}

/// What an index run did to the graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GraphRefresh {
    /// The dump was current: nothing written.
    Current,
    /// Updated in place.
    Updated(GraphUpdate),
    /// Built in full from SQLite.
    Rebuilt,
}

/// A collection's folder.
#[derive(Debug, Clone)]
pub struct Collection {
    dir: PathBuf,
}

/// Held while a process writes to the collection; released on drop.
#[derive(Debug)]
pub struct WriteLock {
    _file: File,
}

pub use crate::rank::SearchMode;

/// The ANN graph over a collection's fused vectors and the space searches rank in.
///
/// With an augmented graph (see `ann`), queries are mapped into the graph's space by
/// [`SearchSpace::embed`] and ranked against the graph's own vectors, both for HNSW and exact
/// search. With a plain graph (dumps written before augmentation existed), queries stay full
/// fused vectors and the candidates are re-ranked on full vectors read from SQLite.
pub struct SearchSpace {
    pub fusion: Fusion,
    pub ann: Option<AnnIndex>,
    /// Why the graph is missing or was rebuilt in memory, for the user.
    pub note: Option<String>,
    /// Every image's fused vector, sorted by id, once loaded.
    points: OnceCell<Vec<(i64, Vec<f32>)>>,
    /// The augmented graph's vectors, sorted by id, once read from it.
    graph_points: OnceCell<Vec<(i64, Vec<f32>)>>,
}

impl SearchSpace {
    fn augmented(&self) -> Option<&AnnIndex> {
        self.ann.as_ref().filter(|a| a.is_augmented())
    }

    /// True when searches rank against augmented vectors (distances are then in that space).
    pub fn is_augmented(&self) -> bool {
        self.augmented().is_some()
    }

    /// A full fused vector (an example's) in the space searches rank in.
    pub fn embed(&self, full: &[f32]) -> Vec<f32> {
        match self.augmented() {
            Some(ann) => ann.to_graph_space(full),
            None => crate::ann::finite(full).into_owned(),
        }
    }

    /// What exact search scans: the augmented graph's vectors, else all full fused vectors.
    pub fn exact_points(&self, store: &Store) -> Result<&[(i64, Vec<f32>)]> {
        match self.augmented() {
            Some(ann) => Ok(self.graph_points.get_or_init(|| ann.graph_points())),
            None => self.points(store),
        }
    }

    /// All fused vectors, sorted by id (read from SQLite on first use).
    pub fn points(&self, store: &Store) -> Result<&[(i64, Vec<f32>)]> {
        if let Some(p) = self.points.get() {
            return Ok(p);
        }
        let loaded = load_points(store, &self.fusion)?;
        Ok(self.points.get_or_init(|| loaded))
    }

    /// The `k` nearest images to a query already [embedded](Self::embed), with exact distances
    /// in the search space.
    pub fn search(
        &self,
        store: &Store,
        query: &[f32],
        k: usize,
        mode: SearchMode,
    ) -> Result<Vec<(i64, f32)>> {
        if let Some(ann) = self.augmented() {
            return Ok(match mode {
                SearchMode::Hnsw => ann.search_graph_space(query, k),
                SearchMode::Exact => exact_search(self.exact_points(store)?, query, k),
            });
        }
        match (&self.ann, mode) {
            (Some(ann), SearchMode::Hnsw) => {
                if let Some(points) = self.points.get() {
                    return Ok(ann.search_reranked(query, k, |id| lookup(points, id)));
                }
                let candidates = ann.search(query, k.max(RERANK_DEPTH));
                let ids: Vec<i64> = candidates.iter().map(|h| h.0).collect();
                let full = self.vectors_of(store, &ids)?;
                Ok(rerank(query, &candidates, k, |id| lookup(&full, id)))
            }
            _ => Ok(exact_search(self.points(store)?, query, k)),
        }
    }

    /// Vectors of the given images in the search space, sorted by id; ids without vectors are
    /// left out.
    pub fn vectors_of(&self, store: &Store, ids: &[i64]) -> Result<Vec<(i64, Vec<f32>)>> {
        if self.augmented().is_some() {
            return Ok(pick(self.exact_points(store)?, ids));
        }
        self.full_vectors_of(store, ids)
    }

    /// Full fused vectors of the given images, sorted by id; ids without vectors are left out.
    pub fn full_vectors_of(&self, store: &Store, ids: &[i64]) -> Result<Vec<(i64, Vec<f32>)>> {
        if let Some(points) = self.points.get() {
            return Ok(pick(points, ids));
        }
        let families = self.fusion.families();
        Ok(store
            .vectors_of(ids, &families)?
            .into_iter()
            .map(|(id, parts)| (id, fused(&self.fusion, &parts)))
            .collect())
    }

    /// The full fused vector of one image.
    pub fn vector_of(&self, store: &Store, id: i64) -> Result<Option<Vec<f32>>> {
        Ok(self.full_vectors_of(store, &[id])?.pop().map(|p| p.1))
    }
}

/// Copies of the vectors of `ids` found in `points` (sorted by id), sorted by id, no repeats.
fn pick(points: &[(i64, Vec<f32>)], ids: &[i64]) -> Vec<(i64, Vec<f32>)> {
    ids.iter()
        .filter_map(|&id| lookup(points, id).map(|v| (id, v.to_vec())))
        .collect::<std::collections::BTreeMap<_, _>>()
        .into_iter()
        .collect()
}

/// Builds the graph with bounded memory: one pass over SQLite gathers the PCA sample (every
/// k-th image, as `Projection::fit` would pick), a second keeps only projected vectors. When
/// the sample is every image, the graph is built from it instead of reading again.
fn build_streaming(store: &Store, fusion: &Fusion, params: AnnParams) -> Result<AnnIndex> {
    let families = fusion.families();
    let n = store.image_count()? as usize;
    let step = n.div_ceil(crate::pca::MAX_FIT_SAMPLES).max(1);
    let (mut sample, mut seen, mut dim) = (Vec::new(), 0usize, 0usize);
    store.for_each_vector(&families, |id, parts| {
        if seen % step == 0 {
            let v = fused(fusion, &parts);
            dim = v.len();
            sample.push((id, v));
        }
        seen += 1;
        Ok(())
    })?;
    if step == 1 {
        // The sample is every image: the graph is built from it, without a second read.
        return Ok(AnnIndex::build(&sample, params));
    }
    let refs: Vec<&[f32]> = sample.iter().map(|p| p.1.as_slice()).collect();
    let projection = crate::pca::Projection::fit(&refs, params.pca_dims);
    drop(sample);
    // Batches go into the graph as they are read: only the graph holds every vector.
    const BATCH: usize = 16_384;
    let mut builder = AnnBuilder::new(n, dim, projection, params);
    let mut batch = Vec::with_capacity(BATCH.min(n));
    store.for_each_vector(&families, |id, parts| {
        let v = fused(fusion, &parts);
        batch.push((
            id,
            match builder.projection() {
                Some(p) => p.apply(&v),
                None => v,
            },
        ));
        if batch.len() == BATCH {
            builder.insert(&batch);
            batch.clear();
        }
        Ok(())
    })?;
    builder.insert(&batch);
    Ok(builder.finish())
}

fn load_points(store: &Store, fusion: &Fusion) -> Result<Vec<(i64, Vec<f32>)>> {
    let families = fusion.families();
    Ok(store
        .vectors(&families)?
        .into_iter()
        .map(|(id, parts)| (id, fused(fusion, &parts)))
        .collect())
}

/// The fused vector of an image's family vectors, non-finite components taken as zero
/// ([`crate::ann::sanitize`]): searches and the graph compare the rest of it.
fn fused(fusion: &Fusion, parts: &[Vec<f32>]) -> Vec<f32> {
    let mut v = fusion.fuse(parts);
    crate::ann::sanitize(&mut v);
    v
}

impl Collection {
    /// The folder from `--index-dir`, else `$LOOKALIKE_INDEX`, else `./.lookalike`.
    pub fn resolve(flag: Option<&Path>) -> Collection {
        let dir = flag
            .map(Path::to_path_buf)
            .or_else(|| std::env::var_os(INDEX_DIR_ENV).map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from(DEFAULT_INDEX_DIR));
        Collection { dir }
    }

    /// A collection at an explicit folder.
    pub fn at(dir: impl Into<PathBuf>) -> Collection {
        Collection { dir: dir.into() }
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The files and folders lookalike made here and owns: the database and its side files,
    /// the writer lock, and the graph dumps bearing its marker.
    pub fn own_paths(&self) -> Vec<PathBuf> {
        let mut own: Vec<PathBuf> = ["", "-wal", "-shm", "-journal"]
            .iter()
            .map(|suffix| self.dir.join(format!("{DB_FILE}{suffix}")))
            .chain([self.dir.join(LOCK_FILE)])
            .collect();
        if let Ok(entries) = std::fs::read_dir(ann_dir(&self.dir)) {
            own.extend(
                entries
                    .flatten()
                    .map(|e| e.path())
                    .filter(|p| crate::ann::is_own_dump(p)),
            );
        }
        own
    }

    /// The SQLite database path.
    pub fn db_path(&self) -> PathBuf {
        self.dir.join(DB_FILE)
    }

    /// True when an index database exists here.
    pub fn exists(&self) -> bool {
        self.db_path().is_file()
    }

    /// Refuses a folder where the names of the index's files are taken by something else:
    /// lookalike never overwrites or removes what it did not write. A `lookalike.db` must be a
    /// SQLite database (or empty), `ann` a folder, the lock a file; SQLite's side files must not
    /// exist without their database (SQLite would replay or delete them).
    pub fn check_own_names(&self) -> Result<()> {
        let taken = |path: &Path, what: &str| {
            Error::InvalidInput(format!(
                "{}: exists but is not {what}; lookalike will not overwrite or remove it: move it away, or choose another folder with --index-dir",
                path.display()
            ))
        };
        let db = self.db_path();
        match std::fs::metadata(&db) {
            Ok(meta) if !meta.is_file() => {
                return Err(taken(&db, "a lookalike index database"));
            }
            Ok(meta) if meta.len() > 0 => {
                let mut head = [0u8; 16];
                let read = File::open(&db)
                    .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut head))
                    .is_ok();
                if !read || &head != SQLITE_HEADER {
                    return Err(Error::Corrupt {
                        path: db,
                        reason: "not a SQLite database; lookalike will not overwrite or remove it: restore a backup, move it away, or choose another folder with --index-dir".into(),
                    });
                }
            }
            Ok(_) => {}
            Err(_) => {
                for suffix in ["-wal", "-shm", "-journal"] {
                    let side = self.dir.join(format!("{DB_FILE}{suffix}"));
                    if std::fs::symlink_metadata(&side).is_ok() {
                        return Err(taken(
                            &side,
                            "part of a lookalike index (it has no database)",
                        ));
                    }
                }
            }
        }
        let ann = ann_dir(&self.dir);
        if std::fs::symlink_metadata(&ann).is_ok() && !ann.is_dir() {
            return Err(taken(
                &ann,
                "a folder (lookalike keeps its HNSW graph in it)",
            ));
        }
        let lock = self.dir.join(LOCK_FILE);
        if std::fs::symlink_metadata(&lock).is_ok() && !lock.is_file() {
            return Err(taken(&lock, "a file (lookalike's writer lock)"));
        }
        Ok(())
    }

    /// Creates the folder and takes the writer lock, refusing if another writer holds it or if
    /// the index's file names are taken ([`Self::check_own_names`]).
    pub fn lock_for_writing(&self) -> Result<WriteLock> {
        self.check_own_names()?;
        std::fs::create_dir_all(&self.dir).map_err(|e| Error::io(&self.dir, e))?;
        let path = self.dir.join(LOCK_FILE);
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        match file.try_lock() {
            Ok(()) => Ok(WriteLock { _file: file }),
            Err(std::fs::TryLockError::WouldBlock) => Err(Error::Locked(self.dir.clone())),
            Err(std::fs::TryLockError::Error(e)) => Err(Error::io(&path, e)),
        }
    }

    /// Opens the database for writing (caller holds the lock).
    pub fn open_store(&self) -> Result<Store> {
        self.check_own_names()?;
        Store::open(&self.db_path())
    }

    /// Opens the database for reading; a missing index is a clear error.
    pub fn open_store_read_only(&self) -> Result<Store> {
        if !self.exists() {
            return Err(Error::NoIndex(self.dir.clone()));
        }
        self.check_own_names()?;
        Store::open_read_only(&self.db_path())
    }

    /// Graph parameters of this collection: the defaults, with the augmentation recorded by
    /// `index --dba` if any.
    pub fn ann_params(&self, store: &Store) -> Result<AnnParams> {
        let dba = store
            .meta(DBA_KEY)?
            .and_then(|v| v.parse().ok())
            .unwrap_or(crate::ann::DEFAULT_DBA);
        Ok(AnnParams {
            dba,
            ..AnnParams::default()
        })
    }

    /// The feature profile the collection records (`index --profile`); full when none is.
    pub fn profile(&self, store: &Store) -> Result<Profile> {
        match store.meta(PROFILE_KEY)? {
            None => Ok(Profile::Full),
            Some(name) => Profile::from_name(&name).ok_or_else(|| {
                Error::InvalidInput(format!(
                    "the index at {} was made with feature profile '{name}', which this version of lookalike does not know: upgrade lookalike, or run `lookalike index --profile full` to re-extract it",
                    self.dir.display()
                ))
            }),
        }
    }

    /// The recorded profile read without the writer lock; full when there is no index yet.
    pub fn recorded_profile(&self) -> Result<Profile> {
        if !self.exists() {
            return Ok(Profile::Full);
        }
        self.profile(&self.open_store_read_only()?)
    }

    /// Records the feature profile every image of the collection is described with.
    pub fn set_profile(&self, store: &mut Store, profile: Profile) -> Result<()> {
        store.set_meta(&[(PROFILE_KEY, profile.name().to_string())])
    }

    /// Records how many neighbours the graph averages into each stored vector (0: none).
    pub fn set_dba(&self, store: &mut Store, neighbours: usize) -> Result<()> {
        store.set_meta(&[(DBA_KEY, neighbours.to_string())])
    }

    /// The dump record kept in SQLite, if any.
    pub fn dump_record(&self, store: &Store) -> Result<Option<DumpRecord>> {
        Ok(store
            .meta(DUMP_KEY)?
            .and_then(|json| serde_json::from_str(&json).ok()))
    }

    /// Loads fused vectors and, when the dump on disk is current and intact, the HNSW graph.
    /// A stale, damaged or missing dump is not loaded: the graph is rebuilt in memory.
    pub fn search_space(&self, store: &Store, fusion: &Fusion) -> Result<SearchSpace> {
        let record = self.dump_record(store)?;
        let version = store.data_version()?;
        let mut note = None;
        let ann = match record {
            Some(rec) if rec.data_version == version && rec.fusion == fusion.fingerprint() => {
                match AnnIndex::load(&ann_dir(&self.dir), &rec) {
                    Ok(ann) => Some(ann),
                    Err(e) => {
                        note = Some(format!(
                            "HNSW dump unusable ({e}); searched a graph rebuilt in memory (`lookalike index` rewrites the dump)"
                        ));
                        None
                    }
                }
            }
            Some(rec) if rec.fusion != fusion.fingerprint() => {
                note = Some(format!(
                    "weights {} differ from the indexed ones ({}); built a graph in memory",
                    fusion.fingerprint(),
                    rec.fusion
                ));
                None
            }
            Some(_) => {
                note = Some(
                    "index changed since the HNSW dump was written; searched a graph rebuilt in memory (`lookalike index` refreshes it)".into(),
                );
                None
            }
            None => None,
        };
        let points = OnceCell::new();
        let ann = match ann {
            Some(ann) => Some(ann),
            None => {
                let loaded = load_points(store, fusion)?;
                let params = self.ann_params(store)?;
                let ann = (!loaded.is_empty()).then(|| AnnIndex::build(&loaded, params));
                let _ = points.set(loaded);
                ann
            }
        };
        Ok(SearchSpace {
            fusion: fusion.clone(),
            ann,
            note,
            points,
            graph_points: OnceCell::new(),
        })
    }

    /// Brings the graph up to date with SQLite: nothing when the dump is current, an in-place
    /// update when `policy` allows it, else a full rebuild (always with `rebuild`, and when the
    /// dump is missing, damaged or made with other weights or parameters). Caller holds the
    /// write lock.
    pub fn refresh_ann(
        &self,
        store: &mut Store,
        fusion: &Fusion,
        policy: &UpdatePolicy,
        rebuild: bool,
    ) -> Result<GraphRefresh> {
        let version = store.data_version()?;
        let dir = ann_dir(&self.dir);
        let params = self.ann_params(store)?;
        let usable = self.dump_record(store)?.filter(|rec| {
            rec.fusion == fusion.fingerprint()
                && rec.params == params
                && AnnIndex::verify(&dir, rec).is_ok()
        });
        if let Some(rec) = usable.filter(|_| !rebuild) {
            if rec.data_version == version {
                AnnIndex::remove_other_dumps(&dir, &rec.folder);
                return Ok(GraphRefresh::Current);
            }
            if let Some(done) = self.update_in_place(store, fusion, &rec, policy, version)? {
                return Ok(done);
            }
        }
        let ann = build_streaming(store, fusion, params)?;
        self.record_dump(store, &ann, version, fusion)?;
        Ok(GraphRefresh::Rebuilt)
    }

    fn record_dump(
        &self,
        store: &mut Store,
        ann: &AnnIndex,
        version: u64,
        fusion: &Fusion,
    ) -> Result<()> {
        let rec = ann.dump(&ann_dir(&self.dir), version, &fusion.fingerprint())?;
        self.save_record(store, &rec)
    }

    /// Records `rec` as the collection's dump and deletes the other dump folders.
    fn save_record(&self, store: &mut Store, rec: &DumpRecord) -> Result<()> {
        let json = serde_json::to_string(rec)
            .map_err(|e| Error::InvalidInput(format!("cannot record dump: {e}")))?;
        store.set_meta(&[(DUMP_KEY, json)])?;
        AnnIndex::remove_other_dumps(&ann_dir(&self.dir), &rec.folder);
        Ok(())
    }

    /// Applies what changed since `rec` to its graph and dumps it, when `policy` allows;
    /// `None` when the graph must be rebuilt instead.
    fn update_in_place(
        &self,
        store: &mut Store,
        fusion: &Fusion,
        rec: &DumpRecord,
        policy: &UpdatePolicy,
        version: u64,
    ) -> Result<Option<GraphRefresh>> {
        let built = if rec.built_count == 0 {
            rec.count
        } else {
            rec.built_count
        };
        // Before schema 3, writes did not record which images they changed.
        if rec.data_version < store.vectors_tracked_from()? {
            return Ok(None);
        }
        let Ok(mut ann) = AnnIndex::load(&ann_dir(&self.dir), rec) else {
            return Ok(None);
        };
        let families = fusion.families();
        let current = store.vector_versions(&families)?;
        let in_graph = ann.image_ids();
        let held = |id: &i64| in_graph.binary_search(id).is_ok();
        let changed: Vec<i64> = current
            .iter()
            .filter(|(id, written)| *written > rec.data_version || !held(id))
            .map(|p| p.0)
            .collect();
        let removed: Vec<i64> = in_graph
            .iter()
            .filter(|&&id| current.binary_search_by_key(&id, |p| p.0).is_err())
            .copied()
            .collect();
        // Moves, touched stamps and failures change the data version, not the graph.
        let graph_unchanged = changed.is_empty() && removed.is_empty();
        let hidden = removed.len() + changed.iter().filter(|id| held(id)).count();
        let points = rec.count + changed.len();
        if !graph_unchanged
            && (built < policy.min_built
                || (points - built) as f64 > policy.max_growth * built as f64
                || (ann.hidden_count() + hidden) as f64 > policy.max_hidden * points as f64
                || !ann.can_update(&changed))
        {
            return Ok(None);
        }
        if changed.is_empty() {
            // Nothing to insert: the dump's files stay as they are; its record takes the new
            // version and hides the removed images' points.
            if !removed.is_empty() {
                ann.hide(&removed);
            }
            let restamped = DumpRecord {
                data_version: version,
                hidden: ann.hidden().to_vec(),
                updates: ann.updates(),
                ..rec.clone()
            };
            self.save_record(store, &restamped)?;
            return Ok(Some(if graph_unchanged {
                GraphRefresh::Current
            } else {
                GraphRefresh::Updated(GraphUpdate {
                    inserted: 0,
                    hidden,
                })
            }));
        }
        {
            let reader: &Store = store;
            ann.update(&changed, &removed, |ids| {
                Ok(reader
                    .vectors_of(ids, &families)?
                    .into_iter()
                    .map(|(id, parts)| (id, fused(fusion, &parts)))
                    .collect())
            })?;
        }
        self.record_dump(store, &ann, version, fusion)?;
        Ok(Some(GraphRefresh::Updated(GraphUpdate {
            inserted: changed.len(),
            hidden,
        })))
    }
}
