//! The library's one error type: user mistakes and bad inputs carry the path and what to do.

use std::path::{Path, PathBuf};

use crate::path_repr::shown;

/// Every fallible operation in lookalike returns this.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file or folder could not be read or written.
    #[error("{}: {source}", shown(.path))]
    Io {
        /// The file or folder concerned.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },

    /// A file is not an image we can decode, or its content is damaged.
    #[error("{}: cannot decode image: {reason}", shown(.path))]
    Decode {
        /// The image file.
        path: PathBuf,
        /// Why decoding failed.
        reason: String,
    },

    /// An argument or specification given by the user is invalid.
    #[error("{0}")]
    InvalidInput(String),

    /// An argument refused, with a command that does what was meant.
    #[error("{reason}; `{command}` {then}")]
    InvalidWithCommand {
        /// What is wrong.
        reason: String,
        /// The command, as shell words a user can copy: printed as it is
        /// ([`Error::terminal_text`]).
        command: String,
        /// What the command does.
        then: String,
    },

    /// A vector given to a search, a projection or a graph build is not of the length the
    /// others are.
    #[error("{what}: a vector of {found} values where {expected} were expected")]
    VectorLength {
        /// Which vector: the query, or the point named by its id.
        what: String,
        /// Its length.
        found: usize,
        /// The length the index, the projection or the first vector has.
        expected: usize,
    },

    /// A ground-truth or other input table is malformed.
    #[error("{}:{line}: {reason}", shown(.path))]
    Parse {
        /// The malformed file.
        path: PathBuf,
        /// Line number of the fault, from 1.
        line: usize,
        /// What is wrong.
        reason: String,
    },

    /// No index exists where one was expected.
    #[error(
        "no index at {}: run `{}` first (or pass --index-dir)",
        shown(.0),
        crate::collection::advised_command(.0, "index DIR")
    )]
    NoIndex(PathBuf),

    /// The index holds no images to search.
    #[error("the index at {} holds no images {advice}", shown(.dir))]
    EmptyIndex {
        /// The index folder.
        dir: PathBuf,
        /// Why, and what to do (a `yet: run …` advice when it tracks no folder).
        advice: String,
    },

    /// Another process holds the index for writing.
    #[error("{} is being updated by {}; wait for it to finish", shown(.dir), holder_text(.holder))]
    Locked {
        /// The index folder.
        dir: PathBuf,
        /// The holder's record in the lock file, when there is one to believe.
        holder: Option<crate::collection::Writer>,
    },

    /// Another process is moving, deleting or restoring this index's duplicates.
    #[error(
        "another `duplicates --apply` or `undo` is acting on files, on the index at {} or on another index of this user; wait for it to finish, then run this again",
        shown(.0)
    )]
    ActionRunning(PathBuf),

    /// The database reported an error.
    #[error("database {}: {source}", shown(.path))]
    Db {
        /// The database file.
        path: PathBuf,
        /// The SQLite error.
        #[source]
        source: rusqlite::Error,
    },

    /// The index was made by a newer lookalike.
    #[error(
        "{}: schema version {found} is newer than this lookalike supports ({supported}); upgrade lookalike",
        shown(.path)
    )]
    SchemaTooNew {
        /// The database file.
        path: PathBuf,
        /// Schema version stored in the database.
        found: i64,
        /// Newest schema version this lookalike reads.
        supported: i64,
    },

    /// The run was stopped by the user (Ctrl-C); what was done is kept.
    #[error("interrupted")]
    Interrupted,

    /// Stored data is damaged: a vector, the database or the HNSW dump failed a check.
    #[error("{}: damaged: {reason}", shown(.path))]
    Corrupt {
        /// Where the damage is: a file, a folder, or the image a damaged vector belongs to.
        path: PathBuf,
        /// Which check failed.
        reason: String,
    },

    /// A fault inside lookalike (a bug): not caused by the input.
    #[error("internal error: {0} (please report it)")]
    Internal(String),
}

/// The writer that holds an index's lock, as `status` names it: its command and process, or
/// any writer when its record is not known.
fn holder_text(holder: &Option<crate::collection::Writer>) -> String {
    match holder {
        Some(w) => format!("`lookalike {}` (process {})", w.command, w.pid),
        None => "another lookalike run (`index`, `forget`, `duplicates DIR` or `eval`)".into(),
    }
}

/// Shorthand used across the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What to do about a damaged index database.
/// What to do about a damaged index database at `db_path`.
pub(crate) fn damaged_database_advice(db_path: &Path) -> String {
    format!(
        "restore lookalike.db from a backup, or delete it and its -wal and -shm files from the index folder and run `{}` again (only the index is lost; your images are not touched)",
        crate::collection::advised_command(db_path.parent().unwrap_or(Path::new(".")), "index DIR")
    )
}

impl Error {
    /// Wraps an I/O error with the path it concerns.
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// The refusal of a search in the index at `dir`, which tracks no folder.
    pub(crate) fn empty_index(dir: &std::path::Path) -> Self {
        Error::EmptyIndex {
            dir: dir.to_path_buf(),
            advice: format!(
                "yet: run `{}`",
                crate::collection::advised_command(dir, "index DIR")
            ),
        }
    }

    /// True for errors caused by what the user passed or the state they asked about (a bad
    /// flag or file, no index, a busy or too new index) rather than faults or damage.
    pub fn is_user_error(&self) -> bool {
        matches!(
            self,
            Error::InvalidInput(_)
                | Error::InvalidWithCommand { .. }
                | Error::VectorLength { .. }
                | Error::Parse { .. }
                | Error::NoIndex(_)
                | Error::EmptyIndex { .. }
                | Error::Decode { .. }
                | Error::Io { .. }
                | Error::Locked { .. }
                | Error::ActionRunning(_)
                | Error::SchemaTooNew { .. }
        )
    }

    /// The message for a terminal: control characters escaped. Every name in it is shown as
    /// listings show it (bytes that are not UTF-8 as `\xNN`, a backslash doubled), and a
    /// command to copy is shell words, which hold none but a backslash: a backslash stays single.
    pub fn terminal_text(&self) -> String {
        crate::path_repr::escape_message(&self.to_string())
    }

    /// True when the disk is full or refuses to write (no space, a file size limit, a write
    /// SQLite reports failed): not a fault of lookalike, and what was written is kept. A read
    /// that failed is not: see [`Error::is_corrupt`].
    pub fn is_out_of_space(&self) -> bool {
        match self {
            Error::Io { source, .. } => {
                source.kind() == std::io::ErrorKind::StorageFull
                    || source.kind() == std::io::ErrorKind::FileTooLarge
                    || source.kind() == std::io::ErrorKind::QuotaExceeded
            }
            Error::Db {
                source: rusqlite::Error::SqliteFailure(e, _),
                ..
            } => {
                e.code == rusqlite::ErrorCode::DiskFull
                    || (e.code == rusqlite::ErrorCode::SystemIoFailure
                        && FAILED_WRITES.contains(&e.extended_code))
            }
            _ => false,
        }
    }

    /// True when SQLite may not write the index database (a read-only file or folder): the
    /// user's to fix, and nothing written before is lost.
    pub fn is_read_only_index(&self) -> bool {
        matches!(
            self,
            Error::Db {
                source: rusqlite::Error::SqliteFailure(e, _),
                ..
            } if e.code == rusqlite::ErrorCode::ReadOnly
        )
    }

    /// True when stored data is damaged: [`Error::Corrupt`], a database SQLite reports as
    /// corrupt or not a database at all, or a stored text whose bytes are not UTF-8.
    pub fn is_corrupt(&self) -> bool {
        match self {
            Error::Corrupt { .. } => true,
            Error::Db {
                source: rusqlite::Error::Utf8Error(..),
                ..
            } => true,
            Error::Db {
                source: rusqlite::Error::SqliteFailure(e, _),
                ..
            } => {
                matches!(
                    e.code,
                    rusqlite::ErrorCode::DatabaseCorrupt | rusqlite::ErrorCode::NotADatabase
                ) || (e.code == rusqlite::ErrorCode::SystemIoFailure
                    && FAILED_READS.contains(&e.extended_code))
            }
            _ => false,
        }
    }
}

/// SQLite's I/O errors of a write: a full disk or a file-size limit (SQLite reports ENOSPC as
/// `SQLITE_FULL`, EFBIG as a failed write or truncate).
const FAILED_WRITES: [std::ffi::c_int; 5] = [
    rusqlite::ffi::SQLITE_IOERR_WRITE,
    rusqlite::ffi::SQLITE_IOERR_FSYNC,
    rusqlite::ffi::SQLITE_IOERR_DIR_FSYNC,
    rusqlite::ffi::SQLITE_IOERR_TRUNCATE,
    rusqlite::ffi::SQLITE_IOERR_SHMSIZE,
];

/// SQLite's I/O errors of a read: a database cut short (a page its journal counts is past the
/// file's end), unreadable or on a damaged file system. Freeing space cannot help them.
const FAILED_READS: [std::ffi::c_int; 4] = [
    rusqlite::ffi::SQLITE_IOERR,
    rusqlite::ffi::SQLITE_IOERR_READ,
    rusqlite::ffi::SQLITE_IOERR_SHORT_READ,
    rusqlite::ffi::SQLITE_IOERR_CORRUPTFS,
];

#[cfg(test)]
mod tests {
    use super::*;

    /// A failed read (a database cut short) is damage, not a full disk; a failed write or a
    /// full disk is a full disk.
    #[test]
    fn sqlite_io_errors_of_reads_are_damage_and_of_writes_a_full_disk() {
        let db = |code| Error::Db {
            path: PathBuf::from("/idx/lookalike.db"),
            source: rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(code), None),
        };
        for code in [
            rusqlite::ffi::SQLITE_IOERR_SHORT_READ,
            rusqlite::ffi::SQLITE_IOERR_READ,
            rusqlite::ffi::SQLITE_IOERR,
        ] {
            assert!(db(code).is_corrupt(), "{code}");
            assert!(!db(code).is_out_of_space(), "{code}");
        }
        for code in [
            rusqlite::ffi::SQLITE_FULL,
            rusqlite::ffi::SQLITE_IOERR_WRITE,
            rusqlite::ffi::SQLITE_IOERR_TRUNCATE,
        ] {
            assert!(db(code).is_out_of_space(), "{code}");
            assert!(!db(code).is_corrupt(), "{code}");
        }
    }

    /// A name that is not UTF-8 is shown with its bytes as `\xNN` in an error, as in listings:
    /// two names differing in such a byte read apart (both were U+FFFD).
    #[cfg(unix)]
    #[test]
    fn an_error_shows_the_bytes_of_a_name_that_is_not_utf8() {
        use std::os::unix::ffi::OsStrExt;
        let named = |name: &[u8]| {
            let path = PathBuf::from(std::ffi::OsStr::from_bytes(name));
            Error::io(path, std::io::ErrorKind::NotFound.into()).terminal_text()
        };
        let (fe, ff) = (named(b"dir/a\xfe.png"), named(b"dir/a\xff.png"));
        assert!(fe.starts_with("dir/a\\xfe.png: "), "{fe}");
        assert!(ff.starts_with("dir/a\\xff.png: "), "{ff}");
        assert!(!fe.contains('\u{fffd}'), "{fe}");
        // a backslash in a name is doubled, so no name reads as another's escape
        assert!(named(b"a\\xfe.png").starts_with("a\\\\xfe.png: "));
        let decode = Error::Decode {
            path: PathBuf::from(std::ffi::OsStr::from_bytes(b"b\x80.jpg")),
            reason: "line\nbreak".into(),
        };
        assert_eq!(
            decode.terminal_text(),
            "b\\x80.jpg: cannot decode image: line\\nbreak"
        );
    }
}
