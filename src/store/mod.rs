//! SQLite storage: connection and pragmas, embedded migrations, batched writes, reading vectors back.
//!
//! SQLite is the source of truth; everything else (the HNSW dump) is rebuilt from it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension, params};

use crate::error::{Error, Result};
pub use crate::features::FeatureRow;

mod read;
mod schema;
mod write;

/// Migrations in order; entry `i` moves the schema from version `i` to `i + 1`.
/// Files in `migrations/` are never edited once landed: a change is a new file.
pub(crate) const MIGRATIONS: &[(&str, &str)] = &[
    (
        "0001_initial.sql",
        include_str!("../../migrations/0001_initial.sql"),
    ),
    (
        "0002_index_runs.sql",
        include_str!("../../migrations/0002_index_runs.sql"),
    ),
    (
        "0003_vectors_version.sql",
        include_str!("../../migrations/0003_vectors_version.sql"),
    ),
    (
        "0004_file_identity.sql",
        include_str!("../../migrations/0004_file_identity.sql"),
    ),
    (
        "0005_thumbnails.sql",
        include_str!("../../migrations/0005_thumbnails.sql"),
    ),
];

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// What change detection needs to know about an indexed file.
#[derive(Debug, Clone)]
pub struct CatalogEntry {
    /// The image's id.
    pub id: i64,
    /// Id of the root folder the file lies under.
    pub root_id: i64,
    /// Path relative to that root.
    pub rel_path: PathBuf,
    pub(crate) stamp: FileStamp,
    /// blake3 hash of the file's content when indexed.
    pub hash: [u8; 32],
    /// `(family, version, params)` of every stored feature row.
    pub(crate) features: Vec<(String, u32, String)>,
}

/// A file that could not be indexed, as recorded.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FailureEntry {
    pub(crate) root_id: i64,
    #[serde(flatten, serialize_with = "crate::path_repr::rel_path")]
    pub(crate) rel_path: PathBuf,
    #[serde(skip)]
    pub(crate) stamp: FileStamp,
    pub(crate) reason: String,
}

/// One recorded `index` run.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RunEntry {
    pub(crate) id: i64,
    pub(crate) started_at: i64,
    /// `None` while the run goes on, or when its process was killed.
    pub(crate) finished_at: Option<i64>,
    /// `complete`, `interrupted` or `error`; `None` as for `finished_at`.
    pub(crate) outcome: Option<String>,
    /// The folders given to the run; `roots_bytes` in JSON when one is not UTF-8.
    #[serde(flatten, serialize_with = "crate::path_repr::roots")]
    pub(crate) roots: Vec<PathBuf>,
    /// The run's counts as JSON, or the error message; serialised as that JSON object, or as
    /// a string.
    #[serde(serialize_with = "summary_json")]
    pub(crate) summary: Option<String>,
    /// The flags given to the run that change what it does, as command-line words (empty
    /// for runs recorded before flags were).
    pub(crate) flags: Vec<String>,
}

/// Metadata key of the flags of the last `index` run: `{"run": ID, "flags": [WORD, ...]}`.
const RUN_FLAGS_KEY: &str = "run_flags";

fn summary_json<S: serde::Serializer>(
    summary: &Option<String>,
    out: S,
) -> std::result::Result<S::Ok, S::Error> {
    use serde::Serialize;
    let parsed = summary
        .as_deref()
        .and_then(|s| serde_json::from_str::<serde_json::Value>(s).ok())
        .filter(serde_json::Value::is_object);
    match parsed {
        Some(object) => object.serialize(out),
        None => summary.serialize(out),
    }
}

/// File identity as seen by the crawler: size, modification time and inode change time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FileStamp {
    pub(crate) size: u64,
    pub(crate) mtime_ns: i64,
    /// 0 when not recorded (rows written before schema 4).
    pub(crate) ctime_ns: i64,
}

/// How close to the moment a file is read its times must be for the stamp to be unsettled:
/// file systems keep times at a coarse granularity, so a rewrite within it may keep them.
const SETTLE_WINDOW_NS: i64 = 2_000_000_000;

impl FileStamp {
    /// Recorded in place of the modification time of an unsettled stamp: it matches no file,
    /// so the next run reads and hashes the file again.
    pub(crate) const UNSETTLED_MTIME: i64 = i64::MIN;

    /// The stamp of a file's metadata. Times are nanoseconds from 1970, negative before it, and
    /// saturate beyond what 64 bits hold (the year 2262; they wrapped to 1861).
    pub(crate) fn of(meta: &std::fs::Metadata) -> FileStamp {
        let ns = |t: std::io::Result<std::time::SystemTime>| match t {
            Ok(t) => match t.duration_since(std::time::UNIX_EPOCH) {
                Ok(after) => i64::try_from(after.as_nanos()).unwrap_or(i64::MAX),
                Err(before) => {
                    i64::try_from(before.duration().as_nanos()).map_or(i64::MIN + 1, |n| -n)
                }
            },
            Err(_) => 0,
        };
        #[cfg(unix)]
        let ctime_ns = {
            use std::os::unix::fs::MetadataExt;
            meta.ctime()
                .saturating_mul(1_000_000_000)
                .saturating_add(meta.ctime_nsec())
        };
        #[cfg(not(unix))]
        let ctime_ns = 0;
        FileStamp {
            size: meta.len(),
            mtime_ns: ns(meta.modified()),
            ctime_ns,
        }
    }

    /// True when a file now stamped `self` is unchanged since `recorded` was taken.
    pub(crate) fn matches(&self, recorded: &FileStamp) -> bool {
        self.size == recorded.size
            && self.mtime_ns == recorded.mtime_ns
            && (recorded.ctime_ns == 0 || self.ctime_ns == recorded.ctime_ns)
    }

    /// The stamp to record for bytes read at `read_at`: when either time lies within the
    /// file system's granularity of that moment, a later rewrite could keep the same stamp, so
    /// the modification time is replaced by [`Self::UNSETTLED_MTIME`].
    pub(crate) fn settled(self, read_at: std::time::SystemTime) -> FileStamp {
        let now = read_at
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as i64)
            .unwrap_or(0);
        let near = |t: i64| t != 0 && (now - t).abs() < SETTLE_WINDOW_NS;
        if near(self.mtime_ns) || near(self.ctime_ns) {
            FileStamp {
                mtime_ns: Self::UNSETTLED_MTIME,
                ..self
            }
        } else {
            self
        }
    }
}

/// Decoded-image facts kept with each row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageFacts {
    pub(crate) format: String,
    pub(crate) width: u32,
    pub(crate) height: u32,
}

/// An image's content as stored, read back to be written under another path.
#[derive(Debug, Clone)]
pub(crate) struct StoredContent {
    pub(crate) facts: ImageFacts,
    pub(crate) features: Vec<FeatureRow>,
    /// The thumbnail of its bytes, when one was made.
    pub(crate) thumbnail: Option<Vec<u8>>,
}

/// One change to apply; the writer groups many into a transaction.
#[derive(Debug, Clone)]
pub(crate) enum WriteOp {
    /// A new or changed file with freshly extracted features.
    Upsert {
        root_id: i64,
        rel_path: PathBuf,
        stamp: FileStamp,
        hash: [u8; 32],
        facts: ImageFacts,
        features: Vec<FeatureRow>,
        /// A JPEG thumbnail of the content ([`crate::thumbnail`]), when one could be made.
        thumbnail: Option<Vec<u8>>,
    },
    /// Same content, new size/mtime stamp (e.g. `touch`).
    Touch { id: i64, stamp: FileStamp },
    /// A known file found under a new path: it keeps its id and features.
    Move {
        id: i64,
        root_id: i64,
        rel_path: PathBuf,
        stamp: FileStamp,
    },
    /// A new path whose content is already indexed elsewhere: copy the features, provided
    /// the source still holds that content.
    Copy {
        source_id: i64,
        hash: [u8; 32],
        root_id: i64,
        rel_path: PathBuf,
        stamp: FileStamp,
    },
    /// The file could not be indexed: record why, and drop any stale row for that path.
    Fail {
        root_id: i64,
        rel_path: PathBuf,
        stamp: FileStamp,
        reason: String,
    },
    /// The file could not be read, but its indexed image stays: record why.
    FailKept {
        root_id: i64,
        rel_path: PathBuf,
        stamp: FileStamp,
        reason: String,
    },
    /// The file is gone.
    Remove { id: i64 },
}

/// What [`Store::settle_roots`] changed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub(crate) struct Settled {
    /// Images now recorded under another root (same file, same id).
    pub(crate) rehomed: usize,
    /// Images removed: second rows of one file, or no longer under any tracked root.
    pub(crate) removed: usize,
}

/// One indexed file as recorded: where, its stamp and its content hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RecordedFile {
    pub(crate) id: i64,
    pub(crate) path: PathBuf,
    pub(crate) stamp: FileStamp,
    pub(crate) hash: [u8; 32],
}
/// One indexed image with its file facts: where, stamp, hash, format and size in pixels.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageRecord {
    pub(crate) id: i64,
    /// Absolute path (the folder joined with `rel_path`).
    pub(crate) path: PathBuf,
    /// The tracked folder it was found under.
    pub(crate) root: PathBuf,
    pub(crate) rel_path: PathBuf,
    pub(crate) stamp: FileStamp,
    /// blake3 of the file's bytes when indexed.
    pub(crate) hash: [u8; 32],
    pub(crate) format: String,
    pub(crate) width: u32,
    pub(crate) height: u32,
}

impl ImageRecord {
    /// The image's row id in the index.
    pub fn id(&self) -> i64 {
        self.id
    }

    /// The image's absolute path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// blake3 of the file's bytes when indexed (the key of its thumbnail).
    pub fn hash(&self) -> &[u8; 32] {
        &self.hash
    }
}

/// A run's folders as stored: a JSON list holding each name as a string, or as its bytes
/// when it is not UTF-8.
fn runs_roots_json(roots: &[PathBuf]) -> String {
    let items: Vec<serde_json::Value> = roots
        .iter()
        .map(|r| match crate::path_repr::invalid_bytes(r) {
            Some(bytes) => bytes.into(),
            None => r.to_string_lossy().into_owned().into(),
        })
        .collect();
    serde_json::Value::from(items).to_string()
}

/// A run's folders from [`runs_roots_json`]'s list (older versions stored strings only).
fn runs_roots_of_json(json: &str) -> Vec<PathBuf> {
    let items: Vec<serde_json::Value> = serde_json::from_str(json).unwrap_or_default();
    items
        .into_iter()
        .filter_map(|item| match item {
            serde_json::Value::String(s) => Some(PathBuf::from(s)),
            serde_json::Value::Array(_) => {
                let bytes: Vec<u8> = serde_json::from_value(item).ok()?;
                Some(blob_to_path(bytes))
            }
            _ => None,
        })
        .collect()
}

/// Counts for `lookalike status`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StoreStats {
    pub(crate) images: u64,
    pub(crate) failures: u64,
    pub(crate) roots: Vec<String>,
    /// `(family, version, params, count)`.
    pub(crate) feature_versions: Vec<(String, u32, String, u64)>,
    pub(crate) schema_version: i64,
    pub(crate) data_version: u64,
}

/// Metadata key of the signatures vector reads return.
const SEARCHED_KEY: &str = "searched_signatures";

/// True when a row of `(family, version, params)` is one of `searched` (none recorded: every
/// row). The read route of a picture (` jpeg-y`) leaves its vector unchanged, so it is not
/// compared.
pub(crate) fn is_searched(
    searched: Option<&[(String, u32, String)]>,
    family: &str,
    version: u32,
    params: &str,
) -> bool {
    fn meaning(params: &str) -> &str {
        params.strip_suffix(" jpeg-y").unwrap_or(params)
    }
    searched.is_none_or(|list| {
        list.iter()
            .any(|(f, v, p)| f == family && *v == version && meaning(p) == meaning(params))
    })
}

/// A SQLite connection holding a lookalike index.
pub struct Store {
    conn: Connection,
    path: PathBuf,
    /// Damaged vectors met by reads since the last `take_damaged`.
    damaged: std::cell::RefCell<Vec<DamagedVector>>,
}

/// A stored vector that failed validation (wrong length, not finite): reads leave its image
/// out rather than rank it or feed it to the graph.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub(crate) struct DamagedVector {
    pub(crate) image_id: i64,
    pub(crate) family: String,
    pub(crate) reason: String,
}

impl DamagedVector {
    /// What a search or a graph build says of the images `damaged` left out, or `None` when
    /// none was: how many images (an image may have more than one damaged vector), the first
    /// with its damage, and the commands that list and repair them.
    /// `index_dir`: the index the commands act on.
    pub(crate) fn left_out_note(index_dir: &Path, damaged: &[DamagedVector]) -> Option<String> {
        let first = damaged.first()?;
        let images = damaged
            .iter()
            .map(|d| d.image_id)
            .collect::<std::collections::BTreeSet<_>>()
            .len();
        let them = crate::text::for_count(images, "it", "them");
        Some(format!(
            "{} left out because a stored vector is damaged (first: image {}, {}); `{}` lists {them}, `{}` extracts {them} again",
            crate::text::counted(images, "image", "images"),
            first.image_id,
            first.reason,
            crate::collection::advised_command(index_dir, "status --check"),
            crate::collection::advised_command(index_dir, "index --repair")
        ))
    }

    /// The damage as an error naming the image (`path`) and the family.
    pub(crate) fn to_error(&self, path: &Path) -> Error {
        Error::Corrupt {
            path: path.to_path_buf(),
            reason: format!("stored '{}' vector: {}", self.family, self.reason),
        }
    }
}

/// Validates a stored vector: whole little-endian f32s, finite, and of the family's length
/// when it was written by the family's current version (older versions may differ in
/// length; fusion zero-fills those). Unknown families are checked for finiteness only.
pub(crate) fn check_vector(
    family: &str,
    version: u32,
    blob: &[u8],
    checksum: Option<&[u8]>,
) -> std::result::Result<Vec<f32>, String> {
    // Rows written since schema 4 carry a checksum of their bytes.
    if let Some(sum) = checksum
        && sum != vector_checksum(blob).as_slice()
    {
        return Err("bytes differ from their checksum (damaged on disk?)".to_string());
    }
    static CURRENT: std::sync::OnceLock<Vec<(&'static str, u32, usize)>> =
        std::sync::OnceLock::new();
    let current = CURRENT.get_or_init(|| {
        crate::features::Registry::default()
            .extractors()
            .iter()
            .map(|e| (e.family(), e.version(), e.dim()))
            .collect()
    });
    if !blob.len().is_multiple_of(4) {
        return Err(format!(
            "{}, not a whole number of 4-byte values (cut short?)",
            crate::text::counted(blob.len(), "byte", "bytes")
        ));
    }
    let v = blob_to_vector(blob);
    if let Some(&(_, _, dim)) = current
        .iter()
        .find(|(f, ver, _)| *f == family && *ver == version)
        && v.len() != dim
    {
        return Err(format!(
            "{}, expected {dim}",
            crate::text::counted(v.len(), "value", "values")
        ));
    }
    if let Some(i) = v.iter().position(|x| !x.is_finite()) {
        return Err(format!("value {i} is {} (not a finite number)", v[i]));
    }
    Ok(v)
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

fn path_to_blob(path: &Path) -> Vec<u8> {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        path.as_os_str().as_bytes().to_vec()
    }
    #[cfg(not(unix))]
    {
        path.to_string_lossy().into_owned().into_bytes()
    }
}

fn blob_to_path(bytes: Vec<u8>) -> PathBuf {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStringExt;
        PathBuf::from(std::ffi::OsString::from_vec(bytes))
    }
    #[cfg(not(unix))]
    {
        PathBuf::from(String::from_utf8_lossy(&bytes).into_owned())
    }
}

/// Encodes a vector as little-endian f32 bytes.
pub(crate) fn vector_to_blob(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// The checksum stored beside a vector's bytes: the first 8 bytes of their blake3 hash.
pub(crate) fn vector_checksum(blob: &[u8]) -> [u8; 8] {
    let mut out = [0u8; 8];
    out.copy_from_slice(&blake3::hash(blob).as_bytes()[..8]);
    out
}

/// Decodes little-endian f32 bytes.
pub(crate) fn blob_to_vector(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

impl Store {
    /// The index folder that holds this database.
    pub(crate) fn index_dir(&self) -> &Path {
        index_dir_of(&self.path)
    }

    /// Opens (creating if needed) the database at `path` and brings its schema up to date.
    pub(crate) fn open(path: &Path) -> Result<Store> {
        let conn = Connection::open(path).map_err(|e| db(path, e))?;
        conn.busy_timeout(Duration::from_secs(30))
            .map_err(|e| db(path, e))?;
        let mut store = Store {
            conn,
            path: path.to_path_buf(),
            damaged: Default::default(),
        };
        // before any pragma that writes (the journal mode): the file may be someone else's
        store.refuse_foreign()?;
        store.configure()?;
        store.migrate()?;
        Ok(store)
    }

    /// Refuses the database at `path` when it is not a lookalike index (see `refuse_foreign`),
    /// reading only; one that cannot be read now is left to the open that follows.
    pub(crate) fn refuse_foreign_file(path: &Path) -> Result<()> {
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let Ok(conn) = Connection::open_with_flags(path, flags) else {
            return Ok(());
        };
        let store = Store {
            conn,
            path: path.to_path_buf(),
            damaged: Default::default(),
        };
        match store.refuse_foreign() {
            Err(e @ Error::InvalidInput(_)) => Err(e),
            _ => Ok(()),
        }
    }

    /// Refuses a database that is not a lookalike index (schema objects without a recorded
    /// version, or a version with little of lookalike's schema), and one whose schema is not
    /// the one its version's migrations made (a table, index, trigger or column missing,
    /// changed or added): damage. Returns the schema version. An empty database is an index to
    /// be.
    fn refuse_foreign(&self) -> Result<i64> {
        let (version, verdict) = self.schema_verdict()?;
        let tables = match verdict {
            schema::SchemaVerdict::Made => return Ok(version),
            schema::SchemaVerdict::Damaged(why) => {
                return Err(Error::Corrupt {
                    path: self.path.clone(),
                    reason: format!(
                        "its tables are not those lookalike made ({why}); {}",
                        crate::error::damaged_database_advice(&self.path)
                    ),
                });
            }
            schema::SchemaVerdict::Foreign(tables) => tables,
        };
        let shown: Vec<&str> = tables.iter().take(5).map(String::as_str).collect();
        Err(Error::InvalidInput(format!(
            "{}: exists but is not a lookalike index (a SQLite database of another program{}); lookalike will not overwrite or remove it: move it away, or choose another folder with --index-dir",
            crate::path_repr::shown(&self.path),
            if shown.is_empty() {
                String::new()
            } else {
                format!(
                    ", tables: {}{}",
                    shown.join(", "),
                    if tables.len() > shown.len() {
                        ", ..."
                    } else {
                        ""
                    }
                )
            }
        )))
    }

    /// Opens an existing database for reading only (queries while `index` runs). An index
    /// in a folder this user cannot write (a read-only mount, another user's files) is opened
    /// as immutable: SQLite's shared-memory file for the journal cannot be made there.
    pub fn open_read_only(path: &Path) -> Result<Store> {
        if !path.exists() {
            return Err(Error::NoIndex(
                path.parent().unwrap_or(Path::new(".")).to_path_buf(),
            ));
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let shared = Connection::open_with_flags(path, flags).and_then(|conn| {
            // Reading the schema is the first access to need the shared-memory file.
            conn.query_row("SELECT COUNT(*) FROM sqlite_master", [], |r| {
                r.get::<_, i64>(0)
            })?;
            Ok(conn)
        });
        let conn = match shared {
            Ok(conn) => conn,
            Err(e) if cannot_share(&e) => {
                Connection::open_with_flags(immutable_uri(path), flags | OpenFlags::SQLITE_OPEN_URI)
                    .map_err(|e| db(path, e))?
            }
            Err(e) => return Err(db(path, e)),
        };
        conn.busy_timeout(Duration::from_secs(10))
            .map_err(|e| db(path, e))?;
        let store = Store {
            conn,
            path: path.to_path_buf(),
            damaged: Default::default(),
        };
        let version = store.refuse_foreign()?;
        if version > SCHEMA_VERSION {
            return Err(Error::SchemaTooNew {
                path: path.to_path_buf(),
                found: version,
                supported: SCHEMA_VERSION,
            });
        }
        let tables: i64 = store
            .conn
            .query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))
            .map_err(|e| db(path, e))?;
        if version == 0 && tables == 0 {
            // no schema at all: an empty file, not an index of an older version
            return Err(Error::InvalidInput(format!(
                "{}: holds no index (the database is empty); `{}` makes one there",
                crate::path_repr::shown(path),
                crate::collection::advised_command(index_dir_of(path), "index DIR")
            )));
        }
        if version < SCHEMA_VERSION {
            return Err(Error::InvalidInput(format!(
                "{}: index made by an older lookalike (schema {version}, current {SCHEMA_VERSION}); run `{}` once to upgrade it",
                crate::path_repr::shown(path),
                crate::collection::advised_command(index_dir_of(path), "index")
            )));
        }
        Ok(store)
    }

    /// Records the feature signatures (family, version, params) vector reads return from now
    /// on, in every connection: the index's profile's, so that rows of another profile (a
    /// change not finished) read as absent and searches leave their images out instead of
    /// comparing vectors of two profiles.
    pub(crate) fn set_searched_signatures(
        &mut self,
        signatures: &[(String, u32, String)],
    ) -> Result<()> {
        let json = serde_json::to_string(signatures).unwrap_or_default();
        if self.cached_meta(SEARCHED_KEY)?.as_deref() != Some(json.as_str()) {
            self.set_meta(&[(SEARCHED_KEY, json)])?;
        }
        Ok(())
    }

    /// The recorded signatures vector reads return (none recorded: every row).
    pub(crate) fn searched_signatures(&self) -> Result<Option<Vec<(String, u32, String)>>> {
        Ok(self
            .meta(SEARCHED_KEY)?
            .and_then(|json| serde_json::from_str(&json).ok()))
    }

    /// Reads pages through a memory map from now on: searches read scattered vectors, and a map
    /// saves a system call and a copy per page. The index never shrinks its file (no VACUUM),
    /// so a mapped page cannot vanish under a reader. Scans of every vector are better without
    /// it: the pages they touch would all count in the process's resident memory.
    pub(crate) fn map_for_searches(&self) -> Result<()> {
        let _size: Option<i64> = self
            .conn
            .query_row("PRAGMA mmap_size = 17179869184", [], |r| r.get(0))
            .optional()
            .map_err(|e| db(&self.path, e))?;
        Ok(())
    }

    /// An empty, migrated database in memory (tests).
    #[cfg(test)]
    pub(crate) fn open_in_memory() -> Result<Store> {
        let path = PathBuf::from(":memory:");
        let conn = Connection::open_in_memory().map_err(|e| db(&path, e))?;
        let mut store = Store {
            conn,
            path,
            damaged: Default::default(),
        };
        store.configure()?;
        store.migrate()?;
        Ok(store)
    }

    fn configure(&self) -> Result<()> {
        let c = &self.conn;
        c.busy_timeout(Duration::from_secs(30))
            .map_err(|e| db(&self.path, e))?;
        // `journal_mode` returns a row, so it is read rather than executed.
        let _mode: String = c
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .map_err(|e| db(&self.path, e))?;
        c.execute_batch("PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL;")
            .map_err(|e| db(&self.path, e))?;
        Ok(())
    }

    fn schema_version(&self) -> Result<i64> {
        self.conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(|e| db(&self.path, e))
    }

    fn migrate(&mut self) -> Result<()> {
        let current = self.schema_version()?;
        if current > SCHEMA_VERSION {
            return Err(Error::SchemaTooNew {
                path: self.path.clone(),
                found: current,
                supported: SCHEMA_VERSION,
            });
        }
        for (i, (_name, sql)) in MIGRATIONS.iter().enumerate().skip(current as usize) {
            let tx = self.conn.transaction().map_err(|e| db(&self.path, e))?;
            tx.execute_batch(sql).map_err(|e| db(&self.path, e))?;
            tx.pragma_update(None, "user_version", (i + 1) as i64)
                .map_err(|e| db(&self.path, e))?;
            tx.commit().map_err(|e| db(&self.path, e))?;
        }
        Ok(())
    }

    /// Records the start of an `index` run over `roots`; returns its id.
    pub fn begin_run(&mut self, roots: &[PathBuf]) -> Result<i64> {
        let roots = runs_roots_json(roots);
        self.conn
            .execute(
                "INSERT INTO index_runs(started_at, roots) VALUES (?1, ?2)",
                params![now_unix(), roots],
            )
            .map_err(|e| db(&self.path, e))?;
        Ok(self.conn.last_insert_rowid())
    }

    /// Records how run `id` ended.
    pub(crate) fn finish_run(&mut self, id: i64, outcome: &str, summary: &str) -> Result<()> {
        self.conn
            .execute(
                "UPDATE index_runs SET finished_at = ?1, outcome = ?2, summary = ?3 WHERE id = ?4",
                params![now_unix(), outcome, summary, id],
            )
            .map_err(|e| db(&self.path, e))?;
        Ok(())
    }

    /// Records the flags of run `id` that change what it does, as command-line words.
    pub(crate) fn set_run_flags(&mut self, id: i64, flags: &[String]) -> Result<()> {
        let json = serde_json::json!({ "run": id, "flags": flags }).to_string();
        self.set_meta(&[(RUN_FLAGS_KEY, json)])
    }

    /// The flags recorded for run `id` (none when another run's are recorded).
    fn run_flags(&self, id: i64) -> Result<Vec<String>> {
        let recorded = self
            .cached_meta(RUN_FLAGS_KEY)?
            .and_then(|json| serde_json::from_str::<serde_json::Value>(&json).ok())
            .filter(|v| v["run"].as_i64() == Some(id));
        Ok(recorded
            .and_then(|v| serde_json::from_value(v["flags"].clone()).ok())
            .unwrap_or_default())
    }

    /// The most recent `index` run, if any.
    pub fn last_run(&self) -> Result<Option<RunEntry>> {
        let run = self
            .conn
            .query_row(
                "SELECT id, started_at, finished_at, outcome, roots, summary FROM index_runs ORDER BY id DESC LIMIT 1",
                [],
                |r| {
                    let roots = lossy_text(r, 4)?.unwrap_or_default();
                    Ok(RunEntry {
                        id: r.get(0)?,
                        started_at: r.get(1)?,
                        finished_at: r.get(2)?,
                        outcome: lossy_text(r, 3)?,
                        roots: runs_roots_of_json(&roots),
                        summary: lossy_text(r, 5)?,
                        flags: Vec::new(),
                    })
                },
            )
            .optional()
            .map_err(|e| db(&self.path, e))?;
        run.map(|run| {
            Ok(RunEntry {
                flags: self.run_flags(run.id)?,
                ..run
            })
        })
        .transpose()
    }

    /// The id of an indexed root folder, adding it if new.
    pub(crate) fn root_id(&mut self, root: &Path) -> Result<i64> {
        let blob = path_to_blob(root);
        self.conn
            .execute(
                "INSERT INTO roots(path) VALUES (?1) ON CONFLICT(path) DO NOTHING",
                params![blob],
            )
            .map_err(|e| db(&self.path, e))?;
        self.conn
            .query_row("SELECT id FROM roots WHERE path = ?1", params![blob], |r| {
                r.get(0)
            })
            .map_err(|e| db(&self.path, e))
    }

    /// All root folders, by id.
    pub fn roots(&self) -> Result<HashMap<i64, PathBuf>> {
        let mut stmt = self
            .conn
            .prepare("SELECT id, path FROM roots")
            .map_err(|e| db(&self.path, e))?;
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?)))
            .map_err(|e| db(&self.path, e))?;
        let mut out = HashMap::new();
        for row in rows {
            let (id, p) = row.map_err(|e| db(&self.path, e))?;
            out.insert(id, blob_to_path(p));
        }
        Ok(out)
    }

    /// Every indexed image with its stamp, hash and feature versions.
    pub fn catalog(&self) -> Result<Vec<CatalogEntry>> {
        let mut features: HashMap<i64, Vec<(String, u32, String)>> = HashMap::new();
        {
            let mut stmt = self
                .conn
                .prepare("SELECT image_id, family, version, params FROM features")
                .map_err(|e| db(&self.path, e))?;
            let rows = stmt
                .query_map([], |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, u32>(2)?,
                        r.get::<_, String>(3)?,
                    ))
                })
                .map_err(|e| db(&self.path, e))?;
            for row in rows {
                let (id, fam, ver, par) = row.map_err(|e| db(&self.path, e))?;
                features.entry(id).or_default().push((fam, ver, par));
            }
        }
        let mut stmt = self
            .conn
            .prepare(
                "SELECT id, root_id, rel_path, size, mtime_ns, ctime_ns, hash FROM images ORDER BY id",
            )
            .map_err(|e| db(&self.path, e))?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, Vec<u8>>(2)?,
                    r.get::<_, i64>(3)?,
                    r.get::<_, i64>(4)?,
                    r.get::<_, i64>(5)?,
                    r.get::<_, Vec<u8>>(6)?,
                ))
            })
            .map_err(|e| db(&self.path, e))?;
        let mut out = Vec::new();
        for row in rows {
            let (id, root_id, rel, size, mtime_ns, ctime_ns, hash) =
                row.map_err(|e| db(&self.path, e))?;
            let mut h = [0u8; 32];
            if hash.len() == 32 {
                h.copy_from_slice(&hash);
            }
            out.push(CatalogEntry {
                id,
                root_id,
                rel_path: blob_to_path(rel),
                stamp: FileStamp {
                    size: size as u64,
                    mtime_ns,
                    ctime_ns,
                },
                hash: h,
                features: features.remove(&id).unwrap_or_default(),
            });
        }
        Ok(out)
    }

    /// Every recorded failure.
    pub fn failures(&self) -> Result<Vec<FailureEntry>> {
        let mut stmt = self
            .conn
            .prepare("SELECT root_id, rel_path, size, mtime_ns, ctime_ns, reason FROM failures ORDER BY root_id, rel_path")
            .map_err(|e| db(&self.path, e))?;
        let rows = stmt
            .query_map([], |r| {
                Ok(FailureEntry {
                    root_id: r.get(0)?,
                    rel_path: blob_to_path(r.get(1)?),
                    stamp: FileStamp {
                        size: r.get::<_, i64>(2)? as u64,
                        mtime_ns: r.get(3)?,
                        ctime_ns: r.get(4)?,
                    },
                    reason: lossy_text(r, 5)?.unwrap_or_default(),
                })
            })
            .map_err(|e| db(&self.path, e))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| db(&self.path, e))
    }

    /// Forgets failures recorded for paths that no longer exist under the given roots.
    pub(crate) fn forget_failures(&mut self, gone: &[(i64, PathBuf)]) -> Result<()> {
        let tx = self.conn.transaction().map_err(|e| db(&self.path, e))?;
        {
            let mut stmt = tx
                .prepare_cached("DELETE FROM failures WHERE root_id = ?1 AND rel_path = ?2")
                .map_err(|e| db(&self.path, e))?;
            for (root, rel) in gone {
                stmt.execute(params![root, path_to_blob(rel)])
                    .map_err(|e| db(&self.path, e))?;
            }
        }
        tx.commit().map_err(|e| db(&self.path, e))
    }

    /// Increases whenever images or features change; the HNSW dump records the one it was built from.
    pub(crate) fn data_version(&self) -> Result<u64> {
        Ok(self
            .meta("data_version")?
            .and_then(|v| v.parse().ok())
            .unwrap_or(0))
    }

    /// Reads a metadata value kept as a cache: one whose bytes are not UTF-8 reads as absent,
    /// so that it is rebuilt.
    pub(crate) fn cached_meta(&self, key: &str) -> Result<Option<String>> {
        Ok(self
            .meta_bytes(key)?
            .and_then(|b| String::from_utf8(b).ok()))
    }

    /// A metadata value's bytes, whatever they hold.
    fn meta_bytes(&self, key: &str) -> Result<Option<Vec<u8>>> {
        Ok(self
            .conn
            .query_row(
                "SELECT CAST(value AS BLOB) FROM meta WHERE key = ?1",
                params![key],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| db(&self.path, e))?
            .flatten())
    }

    /// Reads a metadata value; one whose bytes are not UTF-8 is a damaged index, named by
    /// its key.
    pub(crate) fn meta(&self, key: &str) -> Result<Option<String>> {
        self.meta_bytes(key)?
            .map(|b| {
                String::from_utf8(b).map_err(|_| Error::Corrupt {
                    path: self.path.clone(),
                    reason: format!(
                        "the index record `{key}` is not UTF-8 text; {}",
                        crate::error::damaged_database_advice(&self.path)
                    ),
                })
            })
            .transpose()
    }

    /// Removes a metadata value (nothing when there is none).
    pub(crate) fn delete_meta(&mut self, key: &str) -> Result<()> {
        self.conn
            .execute("DELETE FROM meta WHERE key = ?1", params![key])
            .map(|_| ())
            .map_err(|e| db(&self.path, e))
    }

    /// Writes several metadata values in one transaction.
    pub(crate) fn set_meta(&mut self, pairs: &[(&str, String)]) -> Result<()> {
        let path = self.path.clone();
        let tx = self.conn.transaction().map_err(|e| db(&path, e))?;
        for (k, v) in pairs {
            tx.execute(
                "INSERT INTO meta(key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                params![k, v],
            )
            .map_err(|e| db(&path, e))?;
        }
        tx.commit().map_err(|e| db(&path, e))
    }
}

/// True for the errors of a read-only open that cannot create or write the shared-memory
/// file beside the database.
fn cannot_share(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::CannotOpen | rusqlite::ErrorCode::ReadOnly)
    )
}

/// A `file:` URI opening `path` as immutable (no locks, no shared memory), with the bytes
/// URIs reserve percent-encoded.
fn immutable_uri(path: &Path) -> String {
    let mut uri = String::from("file:");
    for &b in path.as_os_str().as_encoded_bytes() {
        if b.is_ascii_alphanumeric() || b"/-_.~".contains(&b) {
            uri.push(b as char);
        } else {
            uri.push_str(&format!("%{b:02X}"));
        }
    }
    uri.push_str("?immutable=1");
    uri
}

/// Column `i` as text, bytes that are not UTF-8 replaced: for records only shown (a reason, a
/// run's history), which a damaged byte should not make unreadable. `None` for NULL.
fn lossy_text(r: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<Option<String>> {
    use rusqlite::types::ValueRef;
    Ok(match r.get_ref(i)? {
        ValueRef::Null => None,
        ValueRef::Text(b) | ValueRef::Blob(b) => Some(String::from_utf8_lossy(b).into_owned()),
        ValueRef::Integer(n) => Some(n.to_string()),
        ValueRef::Real(x) => Some(x.to_string()),
    })
}

/// The index folder that holds the database at `db_path`.
fn index_dir_of(db_path: &Path) -> &Path {
    db_path.parent().unwrap_or(Path::new("."))
}

fn db(path: &Path, source: rusqlite::Error) -> Error {
    Error::Db {
        path: path.to_path_buf(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_times_before_1970_and_after_2262_keep_their_order() {
        let dir = tempfile::tempdir().unwrap();
        let year = 365 * 24 * 3600;
        let stamp_at = |name: &str, t: std::time::SystemTime| {
            let path = dir.path().join(name);
            let file = std::fs::File::create(&path).unwrap();
            file.set_modified(t).unwrap();
            FileStamp::of(&std::fs::metadata(&path).unwrap()).mtime_ns
        };
        let epoch = std::time::UNIX_EPOCH;
        let old = stamp_at("1960", epoch - Duration::from_secs(10 * year));
        let older = stamp_at("1950", epoch - Duration::from_secs(20 * year));
        assert!(older < old && old < 0, "{older} {old}");
        let far = stamp_at("2400", epoch + Duration::from_secs(430 * year));
        let now = stamp_at("now", std::time::SystemTime::now());
        assert!(now > 0 && far > now, "{now} {far}");
    }

    fn upsert(root: i64, rel: &str, hash: u8) -> WriteOp {
        WriteOp::Upsert {
            root_id: root,
            rel_path: rel.into(),
            stamp: FileStamp {
                size: 10,
                mtime_ns: 5,
                ctime_ns: 5,
            },
            hash: [hash; 32],
            facts: ImageFacts {
                format: "png".into(),
                width: 4,
                height: 3,
            },
            features: vec![FeatureRow {
                family: "color".into(),
                version: 1,
                params: "p".into(),
                vector: vec![1.0, -2.5],
            }],
            thumbnail: Some(vec![0xFF, 0xD8, 0xFF, hash]),
        }
    }

    #[cfg(unix)]
    #[test]
    fn a_tracked_folder_holds_the_images_below_it_whatever_folder_stores_them() {
        use std::os::unix::ffi::OsStrExt;
        let mut s = Store::open_in_memory().unwrap();
        let photos = s.root_id(Path::new("/photos")).unwrap();
        let trip = s.root_id(Path::new("/photos/trip")).unwrap();
        let day = s.root_id(Path::new("/photos/trip/day")).unwrap();
        let other = s.root_id(Path::new("/other")).unwrap();
        let odd = |bytes: &[u8]| PathBuf::from(std::ffi::OsStr::from_bytes(bytes));
        let mut ops: Vec<WriteOp> = [
            (photos, "a.png"),
            (photos, "trip/b.png"),
            (photos, "trip2/c.png"),
            (photos, "trip.png"),
            (photos, "trip/day/d.png"),
            (trip, "e.png"),
            (other, "trip/f.png"),
        ]
        .iter()
        .enumerate()
        .map(|(i, (root, rel))| upsert(*root, rel, i as u8))
        .collect();
        let mut named = upsert(photos, "x", 9);
        if let WriteOp::Upsert { rel_path, .. } = &mut named {
            *rel_path = odd(b"trip/\xff.png");
        }
        ops.push(named);
        s.apply(&ops).unwrap();
        let counts = s.image_counts().unwrap();
        let want = HashMap::from([(photos, 7), (trip, 4), (day, 1), (other, 1)]);
        assert_eq!(counts, want);
        let page = |folder| {
            let mut paths: Vec<PathBuf> = s
                .image_page(Some(folder), 0, 100)
                .unwrap()
                .into_iter()
                .map(|r| r.path)
                .collect();
            paths.sort();
            paths
        };
        let mut in_trip = vec![
            PathBuf::from("/photos/trip/b.png"),
            PathBuf::from("/photos/trip/day/d.png"),
            PathBuf::from("/photos/trip/e.png"),
            odd(b"/photos/trip/\xff.png"),
        ];
        in_trip.sort();
        assert_eq!(page(trip), in_trip);
        assert_eq!(page(day), [PathBuf::from("/photos/trip/day/d.png")]);
        assert_eq!(page(other), [PathBuf::from("/other/trip/f.png")]);
        assert_eq!(page(photos).len(), 7);
        assert_eq!(s.image_page(Some(trip), 3, 2).unwrap().len(), 1);
        assert!(s.image_page(Some(99), 0, 100).unwrap().is_empty());
    }

    #[test]
    fn damaged_vectors_are_found_and_left_out() {
        let dim = crate::features::family_dim("color");
        let registry = crate::features::Registry::default();
        let version = registry
            .extractors()
            .iter()
            .find(|e| e.family() == "color")
            .unwrap()
            .version();
        let good: Vec<f32> = (0..dim).map(|i| i as f32 / dim as f32).collect();
        let mut s = Store::open_in_memory().unwrap();
        let root = s.root_id(Path::new("/photos")).unwrap();
        let ops: Vec<WriteOp> = ["a.png", "b.png", "c.png", "d.png"]
            .iter()
            .enumerate()
            .map(|(i, name)| {
                let mut op = upsert(root, name, i as u8);
                if let WriteOp::Upsert { features, .. } = &mut op {
                    features[0].version = version;
                    features[0].vector = good.clone();
                }
                op
            })
            .collect();
        s.apply(&ops).unwrap();
        let ids: Vec<i64> = {
            let mut c = s.catalog().unwrap();
            c.sort_by(|x, y| x.rel_path.cmp(&y.rel_path));
            c.iter().map(|e| e.id).collect()
        };
        assert!(s.check_vectors().unwrap().is_empty());
        // b: cut short by a few values; c: one value made NaN; d: a stray byte appended.
        let mut nan = vector_to_blob(&good);
        nan[8..12].copy_from_slice(&f32::NAN.to_le_bytes());
        let mut stray = vector_to_blob(&good);
        stray.push(7);
        for (id, blob) in [
            (ids[1], vector_to_blob(&good[..dim - 3])),
            (ids[2], nan),
            (ids[3], stray),
        ] {
            s.conn
                .execute(
                    // Without a checksum, as rows written before schema 4.
                    "UPDATE features SET vector = ?1, checksum = NULL WHERE image_id = ?2",
                    params![blob, id],
                )
                .unwrap();
        }
        let damaged = s.check_vectors().unwrap();
        assert_eq!(
            damaged.iter().map(|d| d.image_id).collect::<Vec<_>>(),
            ids[1..].to_vec()
        );
        assert!(damaged[0].reason.contains("expected"), "{damaged:?}");
        assert!(damaged[1].reason.contains("NaN"), "{damaged:?}");
        assert!(damaged[2].reason.contains("bytes"), "{damaged:?}");
        let e = damaged[1].to_error(Path::new("/photos/c.png")).to_string();
        assert!(e.contains("/photos/c.png") && e.contains("'color'"), "{e}");

        // Reads leave the damaged images out and note them once.
        let all = s.vectors(&["color"]).unwrap();
        assert_eq!(all.iter().map(|v| v.0).collect::<Vec<_>>(), vec![ids[0]]);
        let some = s.vectors_of(&ids, &["color"]).unwrap();
        assert_eq!(some.iter().map(|v| v.0).collect::<Vec<_>>(), vec![ids[0]]);
        let noted = s.take_damaged();
        assert_eq!(noted.len(), 3, "{noted:?}");
        assert!(s.take_damaged().is_empty());
        // A vector of an older version may have another length; it is not damage.
        let old = version - 1;
        assert!(check_vector("color", old, &vector_to_blob(&[1.0, 2.0]), None).is_ok());
        assert!(check_vector("color", old, &vector_to_blob(&[f32::INFINITY]), None).is_err());
    }

    #[test]
    fn every_migration_file_is_embedded_in_order() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
        let mut files: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".sql"))
            .collect();
        files.sort();
        let embedded: Vec<&str> = MIGRATIONS.iter().map(|(n, _)| *n).collect();
        assert_eq!(files, embedded);
    }

    /// `tests/fixtures/schema_v1/lookalike.db` was written by the v1 build (commit 257c230),
    /// indexing `tests/fixtures/schema_v1/images`; it is never regenerated.
    #[test]
    fn schema_v1_database_migrates_and_keeps_its_data() {
        let fixture =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/schema_v1/lookalike.db");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lookalike.db");
        std::fs::copy(&fixture, &path).unwrap();
        // Every stored feature row, raw, straight from SQLite.
        let rows = |path: &Path| -> Vec<(i64, String, Vec<u8>)> {
            let c = Connection::open(path).unwrap();
            let mut st = c
                .prepare("SELECT image_id, family, vector FROM features ORDER BY image_id, family")
                .unwrap();
            st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .unwrap()
                .collect::<std::result::Result<_, _>>()
                .unwrap()
        };
        let version: i64 = Connection::open(&path)
            .unwrap()
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, 1, "the fixture must stay a v1 database");
        let before = rows(&path);
        assert_eq!(before.len(), 16, "4 images x 4 families");
        let err = Store::open_read_only(&path).unwrap_err().to_string();
        assert!(
            err.contains(&format!(
                "run `{}` once to upgrade",
                crate::collection::advised_command(path.parent().unwrap(), "index")
            )),
            "{err}"
        );

        let mut store = Store::open(&path).unwrap();
        assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
        assert_eq!(store.stats().unwrap().images, 4);
        assert_eq!(store.catalog().unwrap().len(), 4);
        assert_eq!(store.last_run().unwrap(), None);
        let run = store.begin_run(&[PathBuf::from("/photos")]).unwrap();
        store.finish_run(run, "complete", "{}").unwrap();
        assert_eq!(
            store.last_run().unwrap().unwrap().outcome.as_deref(),
            Some("complete")
        );
        drop(store);
        assert_eq!(before, rows(&path));
        Store::open_read_only(&path).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn a_runs_folders_keep_their_bytes_and_older_rows_still_read() {
        use std::os::unix::ffi::OsStrExt;
        let mut s = Store::open_in_memory().unwrap();
        let odd = PathBuf::from(std::ffi::OsStr::from_bytes(b"/photos/caf\xe9"));
        let run = s.begin_run(&[PathBuf::from("/ok"), odd.clone()]).unwrap();
        s.finish_run(run, "complete", "{}").unwrap();
        let last = s.last_run().unwrap().unwrap();
        assert_eq!(last.roots, vec![PathBuf::from("/ok"), odd]);
        let json = serde_json::to_value(&last).unwrap();
        assert_eq!(
            json["roots"],
            serde_json::json!(["/ok", "/photos/caf\u{fffd}"])
        );
        assert_eq!(
            json["roots_bytes"],
            serde_json::json!([null, b"/photos/caf\xe9".to_vec()])
        );
        // a row as older versions wrote it: display strings
        s.conn
            .execute(
                "INSERT INTO index_runs(started_at, roots) VALUES (1, '[\"/a\",\"/b\"]')",
                [],
            )
            .unwrap();
        let last = s.last_run().unwrap().unwrap();
        assert_eq!(last.roots, vec![PathBuf::from("/a"), PathBuf::from("/b")]);
        let json = serde_json::to_value(&last).unwrap();
        assert_eq!(json["roots"], serde_json::json!(["/a", "/b"]));
        assert!(json.get("roots_bytes").is_none(), "{json}");
    }

    #[test]
    fn upsert_copy_move_remove_round_trip() {
        let mut s = Store::open_in_memory().unwrap();
        let root = s.root_id(Path::new("/photos")).unwrap();
        assert_eq!(s.root_id(Path::new("/photos")).unwrap(), root);
        s.apply(&[upsert(root, "a.png", 1)]).unwrap();
        let cat = s.catalog().unwrap();
        assert_eq!(cat.len(), 1);
        let id = cat[0].id;
        assert_eq!(
            s.vectors(&["color"]).unwrap(),
            vec![(id, vec![vec![1.0, -2.5]])]
        );
        let stamp = FileStamp {
            size: 10,
            mtime_ns: 9,
            ctime_ns: 9,
        };
        s.apply(&[WriteOp::Copy {
            source_id: id,
            hash: [1; 32],
            root_id: root,
            rel_path: "b.png".into(),
            stamp,
        }])
        .unwrap();
        assert_eq!(s.vectors(&["color"]).unwrap().len(), 2);
        s.apply(&[WriteOp::Move {
            id,
            root_id: root,
            rel_path: "sub/c.png".into(),
            stamp,
        }])
        .unwrap();
        let paths = s.paths(&[id]).unwrap();
        assert_eq!(paths[&id], PathBuf::from("/photos/sub/c.png"));
        s.apply(&[WriteOp::Remove { id }]).unwrap();
        assert_eq!(s.vectors(&["color"]).unwrap().len(), 1);
        assert!(s.data_version().unwrap() >= 4);
        s.integrity_check().unwrap();
    }

    /// Bytes flipped in a stored vector that still read as finite numbers are caught by the
    /// checksum, both by the scan and by reads.
    #[test]
    fn flipped_bytes_in_a_vector_are_caught_by_its_checksum() {
        let mut s = Store::open_in_memory().unwrap();
        let root = s.root_id(Path::new("/r")).unwrap();
        s.apply(&[upsert(root, "a.png", 1)]).unwrap();
        assert!(s.check_vectors().unwrap().is_empty());
        let flipped = vector_to_blob(&[1.0, -2.0]);
        s.conn
            .execute("UPDATE features SET vector = ?1", params![flipped])
            .unwrap();
        let damaged = s.check_vectors().unwrap();
        assert_eq!(damaged.len(), 1, "{damaged:?}");
        assert!(damaged[0].reason.contains("checksum"), "{damaged:?}");
        assert!(s.vectors(&["color"]).unwrap().is_empty());
    }

    #[test]
    fn failure_replaces_stale_row_and_success_clears_failure() {
        let mut s = Store::open_in_memory().unwrap();
        let root = s.root_id(Path::new("/r")).unwrap();
        s.apply(&[upsert(root, "x.jpg", 1)]).unwrap();
        s.apply(&[WriteOp::Fail {
            root_id: root,
            rel_path: "x.jpg".into(),
            stamp: FileStamp {
                size: 1,
                mtime_ns: 1,
                ctime_ns: 1,
            },
            reason: "truncated".into(),
        }])
        .unwrap();
        assert!(s.catalog().unwrap().is_empty());
        assert_eq!(s.failures().unwrap().len(), 1);
        s.apply(&[upsert(root, "x.jpg", 2)]).unwrap();
        assert!(s.failures().unwrap().is_empty());
        assert_eq!(s.catalog().unwrap().len(), 1);
    }

    #[test]
    fn thumbnails_follow_the_content_they_show() {
        let mut s = Store::open_in_memory().unwrap();
        let root = s.root_id(Path::new("/photos")).unwrap();
        s.apply(&[upsert(root, "a.png", 1), upsert(root, "copy.png", 1)])
            .unwrap();
        let id_of = |s: &Store, name: &str| {
            s.id_of_path(&Path::new("/photos").join(name))
                .unwrap()
                .unwrap()
        };
        assert!(s.thumbnail(&[1; 32]).unwrap().is_some());
        // One copy gone: the other still shows that content.
        s.apply(&[WriteOp::Remove {
            id: id_of(&s, "a.png"),
        }])
        .unwrap();
        assert!(s.thumbnail(&[1; 32]).unwrap().is_some());
        // Rewritten with other bytes: the old thumbnail goes, the new one comes.
        s.apply(&[upsert(root, "copy.png", 2)]).unwrap();
        assert!(s.thumbnail(&[1; 32]).unwrap().is_none());
        assert_eq!(s.thumbnail(&[2; 32]).unwrap().unwrap()[3], 2);
        // Failing now: the row and its thumbnail go.
        s.apply(&[WriteOp::Fail {
            root_id: root,
            rel_path: "copy.png".into(),
            stamp: FileStamp {
                size: 1,
                mtime_ns: 1,
                ctime_ns: 1,
            },
            reason: "damaged".into(),
        }])
        .unwrap();
        assert!(s.thumbnail(&[2; 32]).unwrap().is_none());
        // A forgotten folder takes its images' thumbnails with it.
        s.apply(&[upsert(root, "b.png", 3)]).unwrap();
        s.conn
            .execute("DELETE FROM roots WHERE id = ?1", params![root])
            .unwrap();
        assert!(s.thumbnail(&[3; 32]).unwrap().is_none());
        let left: i64 = s
            .conn
            .query_row("SELECT COUNT(*) FROM thumbnails", [], |r| r.get(0))
            .unwrap();
        assert_eq!(left, 0);
    }

    #[test]
    fn non_utf8_paths_survive() {
        #[cfg(unix)]
        {
            use std::os::unix::ffi::OsStrExt;
            let name = std::ffi::OsStr::from_bytes(b"caf\xe9.png");
            let mut s = Store::open_in_memory().unwrap();
            let root = s.root_id(Path::new("/r")).unwrap();
            let mut op = upsert(root, "x", 1);
            if let WriteOp::Upsert { rel_path, .. } = &mut op {
                *rel_path = PathBuf::from(name);
            }
            s.apply(&[op]).unwrap();
            assert_eq!(s.catalog().unwrap()[0].rel_path, PathBuf::from(name));
        }
    }
}
