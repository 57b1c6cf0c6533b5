//! Where an index lives: one folder per collection holding the SQLite database, the HNSW dump
//! and the writer lock, and what the database records about the collection (its profile and
//! graph settings). The search space is in [`crate::search_space`], the graph's upkeep in
//! [`crate::graph`].

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::ann::{AnnParams, DumpRecord, ann_dir};
use crate::error::{Error, Result};
use crate::features::Profile;
use crate::store::Store;

/// Default index folder, relative to the working directory.
pub const DEFAULT_INDEX_DIR: &str = ".lookalike";
/// Environment variable that overrides the default index folder.
pub const INDEX_DIR_ENV: &str = "LOOKALIKE_INDEX";
const DB_FILE: &str = "lookalike.db";
const LOCK_FILE: &str = "index.lock";
/// The first bytes of every SQLite database file.
const SQLITE_HEADER: &[u8; 16] = b"SQLite format 3\0";
/// The meta key of the dump record.
pub(crate) const DUMP_KEY: &str = "ann_dump";
const DBA_KEY: &str = "ann_dba";
const PROFILE_KEY: &str = "feature_profile";
const WALK_KEY: &str = "walk_options";

/// A collection's folder.
#[derive(Debug, Clone)]
pub struct Collection {
    dir: PathBuf,
}

/// Held while a process writes to the collection; released on drop. The lock file holds the
/// writer's record ([`Writer`]) while it is held, and is emptied on release.
#[derive(Debug)]
pub struct WriteLock {
    file: File,
    writer: Writer,
}

/// Who holds an index's writer lock: recorded in the lock file by the holder.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Writer {
    /// Its process id.
    pub pid: u32,
    /// The lookalike command it runs (`index`, `forget`, `duplicates`, `eval`).
    pub command: String,
    /// The `index` run it records, once it has begun one.
    pub run: Option<i64>,
}

impl WriteLock {
    /// Records in the lock file that the holder runs `run` (a recorded `index` run).
    pub fn record_run(&mut self, run: i64) {
        self.writer.run = Some(run);
        self.write_record();
    }

    /// Writes the holder's record over the lock file's content. A record that cannot be
    /// written is left out: `status` then names no command, and the run goes on.
    fn write_record(&mut self) {
        use std::io::{Seek, Write};
        let Ok(json) = serde_json::to_string(&self.writer) else {
            return;
        };
        let _ = self
            .file
            .set_len(0)
            .and_then(|()| self.file.seek(std::io::SeekFrom::Start(0)))
            .and_then(|_| self.file.write_all(json.as_bytes()));
    }
}

impl Drop for WriteLock {
    fn drop(&mut self) {
        // emptied before the lock goes (with the file): no record outlives its writer
        let _ = self.file.set_len(0);
    }
}

impl AsRef<Path> for Collection {
    fn as_ref(&self) -> &Path {
        &self.dir
    }
}

/// The command line `lookalike ARGS` that a message advises, acting on the index at
/// `index_dir`: with `--index-dir` and its absolute path as one shell word, unless that is the
/// default `./.lookalike` and `$LOOKALIKE_INDEX` names no other, so that the line pasted in a
/// shell acts on this index. In `lookalike serve` the folder is always named (its advice is read
/// in a browser, whatever folder the user's shell is in).
pub fn advised_command(index_dir: impl AsRef<Path>, args: &str) -> String {
    let dir = index_dir.as_ref();
    let absolute = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    let the_default = !ADVICE_NAMES_THE_INDEX.load(std::sync::atomic::Ordering::Relaxed)
        && absolute(dir)
            .components()
            .eq(absolute(Path::new(DEFAULT_INDEX_DIR)).components())
        && std::env::var_os(INDEX_DIR_ENV).is_none_or(|v| v.is_empty());
    if the_default {
        format!("lookalike {args}")
    } else {
        format!(
            "lookalike --index-dir {} {args}",
            crate::path_repr::shell_word(absolute(dir).as_os_str())
        )
    }
}

/// Set by `lookalike serve`: its advice is read in a browser, not in the server's working
/// folder, so every command it advises names the index folder.
static ADVICE_NAMES_THE_INDEX: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

/// From now on in this process, [`advised_command`] names the index folder even when it is the
/// default one.
pub(crate) fn name_the_index_in_every_advice() {
    ADVICE_NAMES_THE_INDEX.store(true, std::sync::atomic::Ordering::Relaxed);
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
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// The files and folders lookalike made here and owns: the database and its side files,
    /// the writer lock, and the graph dumps bearing its marker.
    pub(crate) fn own_paths(&self) -> Vec<PathBuf> {
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
    pub(crate) fn exists(&self) -> bool {
        self.db_path().is_file()
    }

    /// Refuses a folder where the names of the index's files are taken by something else:
    /// lookalike never overwrites or removes what it did not write. A `lookalike.db` must be a
    /// SQLite database (or empty), `ann` a folder, the lock a file; SQLite's side files must not
    /// exist without their database (SQLite would replay or delete them).
    pub(crate) fn check_own_names(&self) -> Result<()> {
        let taken = |path: &Path, what: &str| {
            Error::InvalidInput(format!(
                "{}: exists but is not {what}; lookalike will not overwrite or remove it: move it away, or choose another folder with --index-dir",
                crate::path_repr::shown(path)
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
                Store::refuse_foreign_file(&db)?;
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
    /// the index's file names are taken (`check_own_names`). `command` (the lookalike command
    /// writing) is recorded with this process's id in the lock file, for `status` to name.
    pub fn lock_for_writing(&self, command: &str) -> Result<WriteLock> {
        self.check_own_names()?;
        if self.dir.exists() && !self.dir.is_dir() {
            return Err(Error::InvalidInput(format!(
                "{}: the index folder is a file; give another --index-dir (or LOOKALIKE_INDEX)",
                crate::path_repr::shown(&self.dir)
            )));
        }
        if !self.dir.exists() && std::fs::symlink_metadata(&self.dir).is_ok() {
            return Err(Error::InvalidInput(format!(
                "{}: the index folder is a link to nothing; make the folder it leads to, or give another --index-dir (or LOOKALIKE_INDEX)",
                crate::path_repr::shown(&self.dir)
            )));
        }
        std::fs::create_dir_all(&self.dir).map_err(|e| {
            // a file, or a link to nothing, on the way: named, rather than "Not a directory"
            // or "File exists"
            let blocked = |a: &Path| {
                a.is_file()
                    || (std::fs::symlink_metadata(a).is_ok() && std::fs::metadata(a).is_err())
            };
            match self.dir.ancestors().skip(1).find(|a| blocked(a)) {
                Some(file) if file.is_file() => Error::InvalidInput(format!(
                    "{}: cannot make the index folder: {} is a file; give another --index-dir (or LOOKALIKE_INDEX)",
                    crate::path_repr::shown(&self.dir),
                    crate::path_repr::shown(file)
                )),
                Some(link) => Error::InvalidInput(format!(
                    "{}: cannot make the index folder: {} is a link to nothing; make the folder it leads to, or give another --index-dir (or LOOKALIKE_INDEX)",
                    crate::path_repr::shown(&self.dir),
                    crate::path_repr::shown(link)
                )),
                None => Error::io(&self.dir, e),
            }
        })?;
        let path = self.dir.join(LOCK_FILE);
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::PermissionDenied
                | std::io::ErrorKind::ReadOnlyFilesystem => Error::InvalidInput(format!(
                    "{}: cannot write to this index ({e}); `query` and `status` read it as it is, or give an index folder you can write",
                    crate::path_repr::shown(&self.dir)
                )),
                std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded => {
                    Error::io(&path, e)
                }
                // a folder no file can be made in (/proc, /sys)
                _ => Error::InvalidInput(format!(
                    "{}: the index folder cannot be used: no file can be made in it ({} failed: {e}); give a folder you can write with --index-dir (or LOOKALIKE_INDEX)",
                    crate::path_repr::shown(&self.dir),
                    crate::path_repr::shown(&path)
                )),
            })?;
        // A lock held for a moment is waited for (up to half a second): between fork and exec
        // a child process of the holder shares its lock, and a writer may be finishing.
        for attempt in 0.. {
            match file.try_lock() {
                Ok(()) => {
                    let mut lock = WriteLock {
                        file,
                        writer: Writer {
                            pid: std::process::id(),
                            command: command.to_string(),
                            run: None,
                        },
                    };
                    lock.write_record();
                    return Ok(lock);
                }
                Err(std::fs::TryLockError::WouldBlock) if attempt < 20 => {
                    std::thread::sleep(std::time::Duration::from_millis(25));
                }
                Err(std::fs::TryLockError::WouldBlock) => break,
                Err(std::fs::TryLockError::Error(e)) => return Err(Error::io(&path, e)),
            }
        }
        Err(Error::Locked {
            dir: self.dir.clone(),
            holder: self.writer().flatten(),
        })
    }

    /// `Some` when a writer (`index`, `forget`, `duplicates DIR`, `eval`) holds the index's
    /// lock now (a shared lock on the lock file is refused while it does), with the record it
    /// wrote in the lock file (`None` when there is none to believe: not written yet, written
    /// by a version that writes none, or left by a process that is gone). Takes nothing it
    /// keeps.
    pub(crate) fn writer(&self) -> Option<Option<Writer>> {
        let file = File::open(self.dir.join(LOCK_FILE)).ok()?;
        if !matches!(
            file.try_lock_shared(),
            Err(std::fs::TryLockError::WouldBlock)
        ) {
            return None;
        }
        let mut text = String::new();
        let read = (&file).take(4096).read_to_string(&mut text);
        let record = read
            .ok()
            .and_then(|_| serde_json::from_str::<Writer>(&text).ok())
            .filter(|w| process_alive(w.pid));
        Some(record)
    }

    /// Opens the database for writing (caller holds the lock).
    pub fn open_store(&self) -> Result<Store> {
        self.check_own_names()?;
        Store::open(&self.db_path())
    }

    /// Opens the database for reading; a missing index is a clear error.
    pub fn open_store_read_only(&self) -> Result<Store> {
        if self.dir.is_file() {
            return Err(Error::InvalidInput(format!(
                "{}: a file, not an index folder; give the folder that holds lookalike.db (--index-dir or LOOKALIKE_INDEX)",
                crate::path_repr::shown(&self.dir)
            )));
        }
        if !self.exists() {
            return Err(Error::NoIndex(self.dir.clone()));
        }
        self.check_own_names()?;
        Store::open_read_only(&self.db_path())
    }

    /// Graph parameters of this collection: the defaults, with the augmentation recorded by
    /// `index --dba` if any.
    pub(crate) fn ann_params(&self, store: &Store) -> Result<AnnParams> {
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
                    "the index at {} was made with feature profile '{name}', which this version of lookalike does not know: upgrade lookalike, or run `{}` to re-extract it",
                    crate::path_repr::shown(&self.dir),
                    advised_command(self, "index --profile full")
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
    pub(crate) fn set_profile(&self, store: &mut Store, profile: Profile) -> Result<()> {
        store.set_meta(&[(PROFILE_KEY, profile.name().to_string())])?;
        store.set_searched_signatures(&crate::features::Registry::for_profile(profile).signatures())
    }

    /// The walk options (`--include`, `--exclude`, `--follow-symlinks`, `--hidden`) the last
    /// `index` run that gave any recorded, if any.
    pub(crate) fn walk_options(&self, store: &Store) -> Result<Option<WalkOptions>> {
        Ok(store
            .meta(WALK_KEY)?
            .and_then(|json| serde_json::from_str(&json).ok()))
    }

    /// The refusal of a search in this collection, which holds no image: when it tracks
    /// folders, the walk options it remembers may skip every file in them, and the command
    /// that walks them without is named.
    pub(crate) fn empty_index(&self, store: &Store) -> Error {
        let tracked = store.roots().map_or(0, |r| r.len());
        if tracked == 0 {
            return Error::empty_index(&self.dir);
        }
        let (folders, them) = if tracked == 1 {
            ("1 folder".to_string(), "it")
        } else {
            (format!("{tracked} folders"), "them")
        };
        let walk = self.walk_options(store).ok().flatten().unwrap_or_default();
        let advice = if walk.is_default() {
            format!(
                "though it tracks {folders}: none of the files in {them} was indexed (`{}` lists those that failed); `{}` adds a folder of images",
                advised_command(&self.dir, "status"),
                advised_command(&self.dir, "index DIR")
            )
        } else {
            format!(
                "though it tracks {folders}: the walk options it remembers ({}) may skip every file in {them}; `{}` walks {them} without",
                walk.flags(),
                advised_command(&self.dir, "index --walk-defaults")
            )
        };
        Error::EmptyIndex {
            dir: self.dir.clone(),
            advice,
        }
    }

    /// Records the walk options later runs reuse; `None` forgets them.
    pub(crate) fn set_walk_options(
        &self,
        store: &mut Store,
        options: Option<&WalkOptions>,
    ) -> Result<()> {
        match options {
            Some(o) => store.set_meta(&[(
                WALK_KEY,
                serde_json::to_string(o).map_err(|e| Error::Internal(e.to_string()))?,
            )]),
            None => store.delete_meta(WALK_KEY),
        }
    }

    /// Records how many neighbours the graph averages into each stored vector (0: none).
    pub(crate) fn set_dba(&self, store: &mut Store, neighbours: usize) -> Result<()> {
        store.set_meta(&[(DBA_KEY, neighbours.to_string())])
    }

    /// The dump record kept in SQLite, if any.
    pub(crate) fn dump_record(&self, store: &Store) -> Result<Option<DumpRecord>> {
        Ok(store
            .cached_meta(DUMP_KEY)?
            .and_then(|json| serde_json::from_str(&json).ok()))
    }
}

/// False when process `pid` is known to be gone: on a system with `/proc`, it has no entry
/// there. Elsewhere every process is taken as alive.
fn process_alive(pid: u32) -> bool {
    let proc = Path::new("/proc");
    !proc.join("self").exists() || proc.join(pid.to_string()).exists()
}

/// What a walk keeps, as `index` was told it: remembered by the collection so that a refresh
/// walks the tracked folders as they were first walked.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct WalkOptions {
    /// `--include` globs.
    pub include: Vec<String>,
    /// `--exclude` globs.
    pub exclude: Vec<String>,
    /// `--follow-symlinks`.
    pub follow_symlinks: bool,
    /// `--hidden`.
    pub hidden: bool,
}

impl WalkOptions {
    /// The options a crawl configuration carries.
    pub fn of(crawl: &crate::crawl::CrawlConfig) -> WalkOptions {
        WalkOptions {
            include: crawl.include.clone(),
            exclude: crawl.exclude.clone(),
            follow_symlinks: crawl.follow_symlinks,
            hidden: crawl.hidden,
        }
    }

    /// `crawl` walking with these options instead of its own.
    pub fn applied_to(&self, crawl: &crate::crawl::CrawlConfig) -> crate::crawl::CrawlConfig {
        crate::crawl::CrawlConfig {
            include: self.include.clone(),
            exclude: self.exclude.clone(),
            follow_symlinks: self.follow_symlinks,
            hidden: self.hidden,
            ..crawl.clone()
        }
    }

    /// True when every option is its default.
    pub fn is_default(&self) -> bool {
        *self == WalkOptions::default()
    }

    /// The options as command-line flags a user can copy, each glob one shell word; safe to
    /// print as it is (it holds no character a terminal acts on).
    pub fn flags(&self) -> String {
        // quoted even when plain, as globs usually need
        let quote = |g: &str| match crate::path_repr::shell_word(std::ffi::OsStr::new(g)) {
            word if word.starts_with(['\'', '$']) => word,
            bare => format!("'{bare}'"),
        };
        // a glob starting with `-` is joined to its flag, which would read it as a flag
        let joined = |flag: &str, g: &str| {
            let sep = if g.starts_with('-') { "=" } else { " " };
            format!("{flag}{sep}{}", quote(g))
        };
        let mut out: Vec<String> = Vec::new();
        out.extend(self.include.iter().map(|g| joined("--include", g)));
        out.extend(self.exclude.iter().map(|g| joined("--exclude", g)));
        if self.follow_symlinks {
            out.push("--follow-symlinks".into());
        }
        if self.hidden {
            out.push("--hidden".into());
        }
        out.join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer refused for a held lock is told which command holds it, as `status` names it.
    #[test]
    fn a_refused_writer_is_told_who_holds_the_lock() {
        let dir = tempfile::tempdir().unwrap();
        let collection = Collection::at(dir.path().join("idx"));
        let _held = collection.lock_for_writing("duplicates").unwrap();
        for command in ["index", "forget"] {
            let refused = collection
                .lock_for_writing(command)
                .unwrap_err()
                .to_string();
            let holder = format!("`lookalike duplicates` (process {})", std::process::id());
            assert!(refused.contains(&holder), "{refused}");
        }
    }

    /// The writer lock records its holder's command, process and run in the lock file while it
    /// is held, and empties it on release; a record is believed only while the lock is held
    /// and its process lives.
    #[test]
    fn the_writer_lock_records_its_holder() {
        let dir = tempfile::tempdir().unwrap();
        let collection = Collection::at(dir.path().join("idx"));
        assert_eq!(collection.writer(), None);
        let mut lock = collection.lock_for_writing("forget").unwrap();
        let me = |command: &str, run| Writer {
            pid: std::process::id(),
            command: command.into(),
            run,
        };
        assert_eq!(collection.writer(), Some(Some(me("forget", None))));
        lock.record_run(7);
        assert_eq!(collection.writer(), Some(Some(me("forget", Some(7)))));
        let path = dir.path().join("idx").join(LOCK_FILE);
        // a record left by a process that is gone, under a lock held by one that wrote none
        let gone = r#"{"pid":4294967295,"command":"index","run":7}"#;
        std::fs::write(&path, gone).unwrap();
        assert_eq!(collection.writer(), Some(None));
        let refused = collection
            .lock_for_writing("index")
            .unwrap_err()
            .to_string();
        assert!(refused.contains("by another lookalike run ("), "{refused}");
        drop(lock);
        assert_eq!(std::fs::read(&path).unwrap(), b"");
        assert_eq!(collection.writer(), None);
        // a record under no lock is not believed
        let record = serde_json::to_string(&me("index", Some(7))).unwrap();
        std::fs::write(&path, record).unwrap();
        assert_eq!(collection.writer(), None);
    }

    /// The walk options as flags a shell user can copy: globs quoted, and one starting with `-`
    /// joined to its flag, as `--exclude -x` reads `-x` as a flag.
    #[test]
    fn walk_options_read_back_as_copyable_flags() {
        let walk = WalkOptions {
            include: vec!["**/*.jpg".into()],
            exclude: vec!["-draft*".into(), "it's/**".into()],
            follow_symlinks: true,
            hidden: false,
        };
        assert_eq!(
            walk.flags(),
            r#"--include '**/*.jpg' --exclude='-draft*' --exclude 'it'"'"'s/**' --follow-symlinks"#
        );
    }
}
