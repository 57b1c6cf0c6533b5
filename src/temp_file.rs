//! Temporary files beside their destination, for writes that appear whole or not at all.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A short hidden name in `path`'s folder, unique within this process: short, so that a
/// destination named at the file system's length limit still has one.
pub(crate) fn temporary_beside(path: &Path) -> PathBuf {
    static TEMPORARIES: AtomicUsize = AtomicUsize::new(0);
    let n = TEMPORARIES.fetch_add(1, Ordering::Relaxed);
    path.with_file_name(format!(".lookalike-{}-{n}.partial", std::process::id()))
}

/// Temporary files being written now, removed by [`remove_unfinished`] when a signal ends
/// the process.
static UNFINISHED: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// A temporary file being written: listed for [`remove_unfinished`] while it lives.
pub(crate) struct Unfinished(PathBuf);

impl Unfinished {
    /// Lists `path` as being written.
    pub(crate) fn new(path: &Path) -> Unfinished {
        unfinished().push(path.to_path_buf());
        Unfinished(path.to_path_buf())
    }
}

impl Drop for Unfinished {
    fn drop(&mut self) {
        let mut list = unfinished();
        if let Some(at) = list.iter().position(|p| *p == self.0) {
            list.swap_remove(at);
        }
    }
}

fn unfinished() -> std::sync::MutexGuard<'static, Vec<PathBuf>> {
    UNFINISHED
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Removes every temporary file still being written: for a process about to exit on a signal.
pub(crate) fn remove_unfinished() {
    for path in unfinished().iter() {
        let _ = fs::remove_file(path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temporary_names_are_short_and_distinct() {
        let long = Path::new("/photos").join("x".repeat(255));
        let (a, b) = (temporary_beside(&long), temporary_beside(&long));
        assert_ne!(a, b);
        assert_eq!(a.parent(), Some(Path::new("/photos")));
        assert!(a.file_name().unwrap().len() < 64, "{}", a.display());
    }
}
