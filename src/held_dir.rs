//! Folders held open while files are moved, linked or removed in them: a folder swapped for a
//! symbolic link after it was checked is refused, never followed.
//!
//! A step that checks a path and then acts on it by name acts wherever the path leads at that
//! later moment. Here the folder is opened once, walking its resolved path one name at a time
//! without following links, and every later operation names a file relative to that handle.

use std::ffi::{OsStr, OsString};
use std::fs;
use std::io;
use std::path::{Component, Path, PathBuf};

/// A file on disk: device and inode.
pub(crate) type FileId = (u64, u64);

/// An open folder, reached through its resolved path without following any link.
pub(crate) struct HeldDir {
    path: PathBuf,
    #[cfg(unix)]
    fd: std::os::fd::OwnedFd,
}

/// The error for a link met where a folder was expected.
fn link_in_path(path: &Path, at: &Path) -> io::Error {
    io::Error::other(format!(
        "{} leads elsewhere through a symbolic link at {}: left alone",
        crate::path_repr::shown(path),
        crate::path_repr::shown(at)
    ))
}

impl HeldDir {
    /// Opens the folder at `path`, which must be absolute with its links already resolved. A
    /// link met on the way is an error. With `create`, missing folders are made.
    #[cfg(unix)]
    pub(crate) fn open(path: &Path, create: bool) -> io::Result<HeldDir> {
        use rustix::fs::{Mode, mkdirat, openat};
        if !path.is_absolute() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{}: not an absolute path", crate::path_repr::shown(path)),
            ));
        }
        let flags = dir_flags();
        let mut fd = openat(rustix::fs::CWD, "/", flags, Mode::empty())?;
        let mut walked = PathBuf::from("/");
        for component in path.components() {
            let name = match component {
                Component::RootDir | Component::CurDir => continue,
                Component::Normal(name) => name,
                // a resolved path has no `..`; one that does is not walked blindly
                Component::ParentDir | Component::Prefix(_) => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidInput,
                        format!("{}: not a resolved path", crate::path_repr::shown(path)),
                    ));
                }
            };
            walked.push(name);
            let next = match openat(&fd, name, flags, Mode::empty()) {
                Err(rustix::io::Errno::NOENT) if create => {
                    match mkdirat(&fd, name, Mode::from_raw_mode(0o777)) {
                        Ok(()) | Err(rustix::io::Errno::EXIST) => {}
                        Err(e) => return Err(at(&walked, e.into())),
                    }
                    openat(&fd, name, flags, Mode::empty())
                }
                other => other,
            };
            fd = match next {
                Ok(next) => next,
                Err(rustix::io::Errno::LOOP | rustix::io::Errno::NOTDIR)
                    if fs::symlink_metadata(&walked).is_ok_and(|m| m.is_symlink()) =>
                {
                    return Err(link_in_path(path, &walked));
                }
                Err(e) => return Err(at(&walked, e.into())),
            };
        }
        Ok(HeldDir {
            path: path.to_path_buf(),
            fd,
        })
    }

    /// The path this folder was opened at.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The file named `name` here, without following a link: device and inode.
    #[cfg(unix)]
    pub(crate) fn entry_id(&self, name: &OsStr) -> io::Result<FileId> {
        use rustix::fs::{AtFlags, statat};
        let st = statat(&self.fd, name, AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|e| at(&self.path.join(name), e.into()))?;
        Ok((st.st_dev as u64, st.st_ino as u64))
    }

    /// True when something (a file, a link, a folder) has this name here.
    pub(crate) fn has(&self, name: &OsStr) -> bool {
        self.entry_id(name).is_ok()
    }

    /// Opens the regular file `name` here for reading, refusing a link.
    #[cfg(unix)]
    pub(crate) fn open_file(&self, name: &OsStr) -> io::Result<fs::File> {
        use rustix::fs::{Mode, OFlags, openat};
        let fd = openat(
            &self.fd,
            name,
            // non-blocking: a pipe put in the file's place does not hang the open
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| at(&self.path.join(name), e.into()))?;
        Ok(fs::File::from(fd))
    }

    /// Creates the file `name` here for writing; it must not exist (a link planted there is
    /// left alone, never written through).
    #[cfg(unix)]
    pub(crate) fn create_file(&self, name: &OsStr) -> io::Result<fs::File> {
        use rustix::fs::{Mode, OFlags, openat};
        let fd = openat(
            &self.fd,
            name,
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
        )
        .map_err(|e| at(&self.path.join(name), e.into()))?;
        Ok(fs::File::from(fd))
    }

    /// Removes the file `name` here.
    #[cfg(unix)]
    pub(crate) fn remove(&self, name: &OsStr) -> io::Result<()> {
        rustix::fs::unlinkat(&self.fd, name, rustix::fs::AtFlags::empty())
            .map_err(|e| at(&self.path.join(name), e.into()))
    }

    /// Renames `name` here to `to_name` in `to`, never replacing a file already there.
    #[cfg(unix)]
    pub(crate) fn rename_new(&self, name: &OsStr, to: &HeldDir, to_name: &OsStr) -> io::Result<()> {
        let target = || to.path.join(to_name);
        #[cfg(any(target_os = "linux", target_os = "android", target_vendor = "apple"))]
        match rustix::fs::renameat_with(
            &self.fd,
            name,
            &to.fd,
            to_name,
            rustix::fs::RenameFlags::NOREPLACE,
        ) {
            Ok(()) => return Ok(()),
            Err(rustix::io::Errno::EXIST) => {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    format!("{} already exists", crate::path_repr::shown(&target())),
                ));
            }
            // a file system without the flag: checked, then renamed
            Err(rustix::io::Errno::INVAL | rustix::io::Errno::NOSYS) => {}
            Err(e) => return Err(io::Error::from(e)),
        }
        if to.has(to_name) {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("{} already exists", crate::path_repr::shown(&target())),
            ));
        }
        rustix::fs::renameat(&self.fd, name, &to.fd, to_name).map_err(io::Error::from)
    }

    /// Renames `name` to `to_name` within this folder, replacing what `to_name` is.
    #[cfg(unix)]
    pub(crate) fn rename_over(&self, name: &OsStr, to_name: &OsStr) -> io::Result<()> {
        rustix::fs::renameat(&self.fd, name, &self.fd, to_name)
            .map_err(|e| at(&self.path.join(to_name), e.into()))
    }

    /// Makes `name` here a new hard link to the file at `target` (a link at `target` itself is
    /// linked, not followed).
    #[cfg(unix)]
    pub(crate) fn link_from(&self, target: &Path, name: &OsStr) -> io::Result<()> {
        rustix::fs::linkat(
            rustix::fs::CWD,
            target,
            &self.fd,
            name,
            rustix::fs::AtFlags::empty(),
        )
        .map_err(|e| at(&self.path.join(name), e.into()))
    }
}

/// Flags for walking folders: `O_PATH` where there is one, so that a folder only searchable
/// (mode 711, as many home folders) can be passed through.
#[cfg(unix)]
fn dir_flags() -> rustix::fs::OFlags {
    use rustix::fs::OFlags;
    let base = OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        base | OFlags::PATH
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    {
        base | OFlags::RDONLY
    }
}

/// Path-based stand-ins where the platform has no `*at` calls: the same checks, acting by name.
#[cfg(not(unix))]
impl HeldDir {
    pub(crate) fn open(path: &Path, create: bool) -> io::Result<HeldDir> {
        if create {
            fs::create_dir_all(path)?;
        }
        if !fs::symlink_metadata(path)?.is_dir() {
            return Err(link_in_path(path, path));
        }
        Ok(HeldDir {
            path: path.to_path_buf(),
        })
    }

    pub(crate) fn entry_id(&self, name: &OsStr) -> io::Result<FileId> {
        fs::symlink_metadata(self.path.join(name)).map(|_| (0, 0))
    }

    pub(crate) fn open_file(&self, name: &OsStr) -> io::Result<fs::File> {
        fs::File::open(self.path.join(name))
    }

    pub(crate) fn create_file(&self, name: &OsStr) -> io::Result<fs::File> {
        fs::File::options()
            .write(true)
            .create_new(true)
            .open(self.path.join(name))
    }

    pub(crate) fn remove(&self, name: &OsStr) -> io::Result<()> {
        fs::remove_file(self.path.join(name))
    }

    pub(crate) fn rename_new(&self, name: &OsStr, to: &HeldDir, to_name: &OsStr) -> io::Result<()> {
        if to.has(to_name) {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!(
                    "{} already exists",
                    crate::path_repr::shown(&to.path.join(to_name))
                ),
            ));
        }
        fs::rename(self.path.join(name), to.path.join(to_name))
    }

    pub(crate) fn rename_over(&self, name: &OsStr, to_name: &OsStr) -> io::Result<()> {
        fs::rename(self.path.join(name), self.path.join(to_name))
    }

    pub(crate) fn link_from(&self, target: &Path, name: &OsStr) -> io::Result<()> {
        fs::hard_link(target, self.path.join(name))
    }
}

/// The file behind an open handle: device and inode (zeros where the platform does not tell).
pub(crate) fn handle_id(file: &fs::File) -> io::Result<FileId> {
    let meta = file.metadata()?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        Ok((meta.dev(), meta.ino()))
    }
    #[cfg(not(unix))]
    {
        let _ = meta;
        Ok((0, 0))
    }
}

/// A short hidden name for a temporary file, unique within this process.
pub(crate) fn temporary_name() -> OsString {
    crate::temp_file::temporary_beside(Path::new("x")).into_os_string()
}

/// `e` with the path it concerns.
fn at(path: &Path, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {e}", crate::path_repr::shown(path)))
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn a_folder_reached_through_a_link_is_refused_and_a_missing_one_made() {
        let tmp = tempfile::tempdir().unwrap();
        let root = fs::canonicalize(tmp.path()).unwrap();
        fs::create_dir(root.join("real")).unwrap();
        std::os::unix::fs::symlink(root.join("real"), root.join("link")).unwrap();
        let err = HeldDir::open(&root.join("link").join("below"), true)
            .err()
            .expect("a link on the way is refused");
        assert!(err.to_string().contains("symbolic link"), "{err}");
        assert!(
            !root.join("real/below").exists(),
            "nothing made through the link"
        );

        let made = HeldDir::open(&root.join("new/deeper"), true).unwrap();
        assert!(root.join("new/deeper").is_dir());
        assert_eq!(made.path(), root.join("new/deeper"));
        assert!(HeldDir::open(&root.join("absent"), false).is_err());
    }

    #[test]
    fn a_held_folder_keeps_acting_where_it_was_opened_after_a_swap() {
        let tmp = tempfile::tempdir().unwrap();
        let root = fs::canonicalize(tmp.path()).unwrap();
        fs::create_dir_all(root.join("a")).unwrap();
        fs::create_dir_all(root.join("elsewhere")).unwrap();
        fs::write(root.join("a/f"), b"ours").unwrap();
        fs::write(root.join("elsewhere/f"), b"not ours").unwrap();
        let held = HeldDir::open(&root.join("a"), false).unwrap();
        // the folder moves away and a link to another takes its name
        fs::rename(root.join("a"), root.join("a-moved")).unwrap();
        std::os::unix::fs::symlink(root.join("elsewhere"), root.join("a")).unwrap();
        held.remove(OsStr::new("f")).unwrap();
        assert!(
            !root.join("a-moved/f").exists(),
            "removed where it was held"
        );
        assert_eq!(fs::read(root.join("elsewhere/f")).unwrap(), b"not ours");
    }

    #[test]
    fn a_new_file_is_never_written_through_an_existing_name() {
        let tmp = tempfile::tempdir().unwrap();
        let root = fs::canonicalize(tmp.path()).unwrap();
        fs::write(root.join("victim"), b"keep me").unwrap();
        std::os::unix::fs::symlink(root.join("victim"), root.join("to")).unwrap();
        let dir = HeldDir::open(&root, false).unwrap();
        assert!(dir.create_file(OsStr::new("to")).is_err());
        assert_eq!(fs::read(root.join("victim")).unwrap(), b"keep me");
        assert!(
            dir.open_file(OsStr::new("to")).is_err(),
            "a link is not opened"
        );
    }

    #[test]
    fn rename_new_never_replaces() {
        let tmp = tempfile::tempdir().unwrap();
        let root = fs::canonicalize(tmp.path()).unwrap();
        fs::write(root.join("from"), b"moving").unwrap();
        fs::write(root.join("to"), b"already here").unwrap();
        let dir = HeldDir::open(&root, false).unwrap();
        let err = dir
            .rename_new(OsStr::new("from"), &dir, OsStr::new("to"))
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(fs::read(root.join("to")).unwrap(), b"already here");
        assert_eq!(fs::read(root.join("from")).unwrap(), b"moving");
    }
}
