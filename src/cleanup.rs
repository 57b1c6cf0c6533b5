//! Acting on duplicate groups: moving, trashing, hard-linking or deleting the copies that are
//! not kept, each step written to a journal before it runs, and undoing the last run.
//!
//! A step never touches a file whose bytes differ from what was indexed, nor one whose keeper
//! changed or vanished, nor a read-only file, nor one with other names (hard links): those are
//! reported and left alone.

use std::ffi::OsStr;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::duplicates::Group;
use crate::error::{Error, Result};
use crate::held_dir::{FileId, HeldDir, handle_id, temporary_name};

/// What to do with each copy that is not kept.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Move into this folder, under a folder named after the copy's indexed folder among all
    /// the index's folders (see `move_folder_names`), keeping the path relative to it.
    MoveTo(PathBuf),
    /// Move to the desktop trash.
    Trash,
    /// Replace by a hard link to the keeper (byte-identical copies only).
    Hardlink,
    /// Delete for good (cannot be undone).
    Delete,
}

impl Action {
    /// The verb stored in the journal and printed.
    pub fn name(&self) -> &'static str {
        match self {
            Action::MoveTo(_) => "move",
            Action::Trash => "trash",
            Action::Hardlink => "hardlink",
            Action::Delete => "delete",
        }
    }
}

/// One planned step: a copy, the keeper it duplicates, and where a move sends it.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub(crate) path: PathBuf,
    /// blake3 of the copy when indexed.
    pub(crate) hash: [u8; 32],
    pub(crate) keeper: PathBuf,
    pub(crate) keeper_hash: [u8; 32],
    /// The indexed folders of the copy and of the keeper.
    pub(crate) root: PathBuf,
    pub(crate) keeper_root: PathBuf,
    /// Destination of a move.
    pub(crate) target: Option<PathBuf>,
    /// Bytes the step frees when done (0 for a copy that shares its file with another).
    pub(crate) frees: u64,
}

impl Step {
    /// The copy the step acts on.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The copy kept, which this one duplicates.
    pub fn keeper(&self) -> &Path {
        &self.keeper
    }

    /// Where a move sends the copy (`None` for the other actions).
    pub fn target(&self) -> Option<&Path> {
        self.target.as_deref()
    }

    /// Bytes the step frees when done (0 for a copy that shares its file with another).
    pub fn frees(&self) -> u64 {
        self.frees
    }
}

/// How a step ended.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "outcome", content = "reason", rename_all = "snake_case")]
pub enum Outcome {
    /// Dry run: what would happen.
    WouldDo,
    /// Carried out.
    Done,
    /// Left alone on purpose (changed since indexed, read-only, target exists...).
    Skipped(String),
    /// Tried and failed; the file is where it was.
    Failed(String),
}

/// The steps that `action` takes for `groups`: every copy but the keeper. `tracked` are all
/// the index's folders, which name a move's destination folders (see `move_folder_names`).
pub fn plan<'a>(
    groups: &[Group],
    action: &Action,
    tracked: impl IntoIterator<Item = &'a Path>,
) -> Vec<Step> {
    let mut frees = crate::duplicates::reclaimable_each(groups).into_iter();
    let mut steps = steps_of(groups, action, tracked);
    for s in &mut steps {
        s.frees = frees.next().unwrap_or(0);
    }
    steps
}

/// The steps of [`plan`], each freeing 0 bytes.
fn steps_of<'a>(
    groups: &[Group],
    action: &Action,
    tracked: impl IntoIterator<Item = &'a Path>,
) -> Vec<Step> {
    let folders = match action {
        Action::MoveTo(_) => {
            // from every tracked folder, not only those with copies in this run: a folder's
            // destination stays the same from run to run
            let mut roots: Vec<&Path> = tracked.into_iter().collect();
            roots.extend(
                groups
                    .iter()
                    .flat_map(|g| &g.members)
                    .map(|m| m.record.root.as_path()),
            );
            move_folder_names(roots)
        }
        _ => Default::default(),
    };
    let mut steps = Vec::new();
    for g in groups {
        let keeper = &g.keeper().record;
        for copy in g.copies() {
            let r = &copy.record;
            let target = match action {
                Action::MoveTo(dest) => Some(dest.join(&folders[&r.root]).join(&r.rel_path)),
                _ => None,
            };
            steps.push(Step {
                path: r.path.clone(),
                hash: r.hash,
                keeper: keeper.path.clone(),
                keeper_hash: keeper.hash,
                root: r.root.clone(),
                keeper_root: keeper.root.clone(),
                target,
                frees: 0,
            });
        }
    }
    steps
}

/// The folder under a `--move-to` folder that each of `roots` (all the index's folders) gets
/// its copies in: the folder's name, and when two of `roots` share a name, the name followed by
/// `-` and 8 hex digits of the blake3 of its whole path (the same on every run).
fn move_folder_names<'a>(
    roots: impl IntoIterator<Item = &'a Path>,
) -> std::collections::HashMap<PathBuf, std::ffi::OsString> {
    let base = |root: &Path| {
        root.file_name()
            .map_or_else(|| std::ffi::OsString::from("root"), OsStr::to_os_string)
    };
    let mut roots: Vec<&Path> = roots.into_iter().collect();
    roots.sort();
    roots.dedup();
    let mut uses: std::collections::HashMap<std::ffi::OsString, usize> = Default::default();
    for root in &roots {
        *uses.entry(base(root)).or_default() += 1;
    }
    roots
        .into_iter()
        .map(|root| {
            let mut name = base(root);
            if uses[&name] > 1 {
                let digest = blake3::hash(root.as_os_str().as_encoded_bytes());
                name.push(format!("-{}", &hex(digest.as_bytes())[..8]));
            }
            (root.to_path_buf(), name)
        })
        .collect()
}

/// Bytes an applied run freed: those of the copies whose step was done.
pub fn freed_bytes(steps: &[Step], outcomes: &[Outcome]) -> u64 {
    bytes_of(steps, outcomes, &Outcome::Done)
}

/// Bytes a dry run's apply would free: those of the copies whose step it would do (not an
/// edited copy `--hardlink` skips, nor a file left alone).
pub fn would_free_bytes(steps: &[Step], outcomes: &[Outcome]) -> u64 {
    bytes_of(steps, outcomes, &Outcome::WouldDo)
}

fn bytes_of(steps: &[Step], outcomes: &[Outcome], counted: &Outcome) -> u64 {
    steps
        .iter()
        .zip(outcomes)
        .filter(|(_, o)| *o == counted)
        .map(|(s, _)| s.frees)
        .sum()
}

/// A journal line. Paths are kept as their raw bytes (hex) so that any file name survives.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum Entry {
    Run {
        action: String,
        started_at: u64,
    },
    /// Written before the step runs.
    Intent(Box<Intent>),
    /// Written after the step succeeded.
    Done {
        step: usize,
        /// A trashed copy's `.trashinfo` file (hex of its path), which names where in the
        /// trash the copy lies: `undo` restores it from there whatever the environment then
        /// says (absent from journals of older versions, and where it could not be found).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        trashed_as: Option<String>,
    },
}

/// A step as the journal records it before it runs.
#[derive(Debug, Serialize, Deserialize)]
struct Intent {
    step: usize,
    op: String,
    from: String,
    to: Option<String>,
    keeper: String,
    hash: String,
    /// The copy's folder with every link resolved, so that `undo` puts nothing back
    /// through a link made since (absent from journals of older versions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    from_dir: Option<String>,
    /// A hard-linked copy's own permission bits and modification time (nanoseconds since
    /// 1970, negative before), which the link replaces with the keeper's and `undo` gives back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    mode: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    modified_ns: Option<i64>,
    /// The folders a move makes for its file (missing before it), deepest first: `undo`
    /// removes those left empty (absent from journals of older versions).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    made_dirs: Vec<String>,
    /// The hidden name a hard link or a deletion sets the copy aside under in its folder:
    /// `undo` puts back a copy a run killed while it acted left there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    aside: Option<String>,
    /// Where a trashed copy lies in the trash (its `.trashinfo`), read from the step's done line.
    #[serde(skip)]
    trashed_as: Option<PathBuf>,
}

/// The folders missing on the way to `dir`, deepest first: those making `dir` makes.
fn missing_folders(dir: &Path) -> Vec<PathBuf> {
    dir.ancestors()
        .take_while(|a| a.symlink_metadata().is_err())
        .map(Path::to_path_buf)
        .collect()
}

/// Removes the folders a run made (`made`, each with its links resolved as recorded) that are
/// empty now, deepest first; a folder holding anything, or now reached through a link, stays.
fn remove_made_folders(mut made: Vec<PathBuf>) {
    made.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
    made.dedup();
    for dir in made {
        if resolved_dir(&dir).is_ok_and(|real| real == dir) {
            // fails, changing nothing, unless the folder is empty
            let _ = fs::remove_dir(&dir);
        }
    }
}

/// A file's own permission bits and modification time, as a hard-link intent records them.
fn own_look(meta: &fs::Metadata) -> (Option<u32>, Option<i64>) {
    #[cfg(unix)]
    let mode = {
        use std::os::unix::fs::PermissionsExt;
        Some(meta.permissions().mode() & 0o7777)
    };
    #[cfg(not(unix))]
    let mode = None;
    // negative before 1970
    let modified =
        meta.modified()
            .ok()
            .and_then(|t| match t.duration_since(std::time::UNIX_EPOCH) {
                Ok(after) => i64::try_from(after.as_nanos()).ok(),
                Err(e) => i64::try_from(e.duration().as_nanos()).ok().map(|n| -n),
            });
    (mode, modified)
}

/// Gives `file` the permission bits and modification time a hard-link intent recorded.
fn give_look(file: &fs::File, mode: Option<u32>, modified_ns: Option<i64>) -> std::io::Result<()> {
    #[cfg(unix)]
    if let Some(mode) = mode {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(fs::Permissions::from_mode(mode))?;
    }
    #[cfg(not(unix))]
    let _ = mode;
    if let Some(ns) = modified_ns {
        let since = std::time::Duration::from_nanos(ns.unsigned_abs());
        let t = if ns < 0 {
            std::time::UNIX_EPOCH.checked_sub(since)
        } else {
            std::time::UNIX_EPOCH.checked_add(since)
        };
        if let Some(t) = t {
            file.set_times(fs::FileTimes::new().set_modified(t))?;
        }
    }
    Ok(())
}

fn path_hex(p: &Path) -> String {
    hex(p.as_os_str().as_encoded_bytes())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(unix)]
fn path_of_hex(s: &str) -> Option<PathBuf> {
    use std::os::unix::ffi::OsStringExt;
    unhex(s).map(|b| PathBuf::from(std::ffi::OsString::from_vec(b)))
}

#[cfg(not(unix))]
fn path_of_hex(s: &str) -> Option<PathBuf> {
    unhex(s)
        .and_then(|b| String::from_utf8(b).ok())
        .map(PathBuf::from)
}

fn hash_of_hex(s: &str) -> Option<[u8; 32]> {
    unhex(s).and_then(|b| b.try_into().ok())
}

/// An action's plan and outcomes as JSON: `{"kind", "applied", "freed_bytes"? (applied runs),
/// "steps": [{path, target?, outcome, reason?}]}` (the schema README.md documents).
pub fn action_json(
    action: &Action,
    steps: &[Step],
    outcomes: &[Outcome],
    applied: bool,
) -> serde_json::Value {
    let items: Vec<serde_json::Value> = steps
        .iter()
        .zip(outcomes)
        .map(|(s, o)| {
            let mut m = crate::path_repr::object("path", &s.path);
            if let Some(t) = &s.target {
                crate::path_repr::insert(&mut m, "target", t);
            }
            if let Ok(serde_json::Value::Object(o)) = serde_json::to_value(o) {
                m.extend(o);
            }
            serde_json::Value::Object(m)
        })
        .collect();
    let mut doc = serde_json::json!({"kind": action.name(), "applied": applied, "steps": items});
    if applied {
        doc["freed_bytes"] = freed_bytes(steps, outcomes).into();
    }
    doc
}

/// A digest of a plan: the action, every step's copy, content, keeper and target, and the
/// runs recorded in `journal_dir` so far (its `run-` files). A dry run's digest given back with the apply lets the
/// apply refuse a plan that changed since, or one already applied or undone since.
pub fn plan_digest(action: &Action, steps: &[Step], journal_dir: &Path) -> String {
    let mut h = blake3::Hasher::new();
    let mut field = |bytes: &[u8]| {
        h.update(&(bytes.len() as u64).to_le_bytes());
        h.update(bytes);
    };
    let mut journals: Vec<std::ffi::OsString> = fs::read_dir(journal_dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok().map(|e| e.file_name()))
                .filter(|name| name.as_encoded_bytes().starts_with(b"run-"))
                .collect()
        })
        .unwrap_or_default();
    journals.sort();
    for name in &journals {
        field(name.as_encoded_bytes());
    }
    field(action.name().as_bytes());
    if let Action::MoveTo(dest) = action {
        field(path_hex(dest).as_bytes());
    }
    for s in steps {
        field(path_hex(&s.path).as_bytes());
        field(&s.hash);
        field(path_hex(&s.keeper).as_bytes());
        field(&s.keeper_hash);
        field(
            s.target
                .as_deref()
                .map(path_hex)
                .unwrap_or_default()
                .as_bytes(),
        );
    }
    hex(&h.finalize().as_bytes()[..16])
}

/// The absolute form of a `--move-to` folder: its longest existing ancestor resolved (so
/// symlinks cannot hide an overlap with an indexed folder) with the rest appended.
pub fn resolve_move_target(p: &Path) -> Result<PathBuf> {
    if p.as_os_str().is_empty() {
        return Err(Error::InvalidInput("--move-to needs a folder".into()));
    }
    if p.as_os_str().as_encoded_bytes().contains(&0) {
        return Err(Error::InvalidInput(
            "--move-to: the folder's name holds a NUL byte, which no file name can".into(),
        ));
    }
    let abs = if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir()
            .map_err(|e| Error::io(".", e))?
            .join(p)
    };
    let resolved = resolved_dir(&abs).map_err(|e| {
        if abs
            .components()
            .any(|c| c == std::path::Component::ParentDir)
        {
            Error::InvalidInput(format!(
                "--move-to {}: `..` follows a folder that does not exist; give the folder without it",
                crate::path_repr::shown(p)
            ))
        } else {
            Error::io(&abs, e)
        }
    })?;
    // a link to nothing on the way would be listed as a folder to make, and refused only when
    // acting
    if let Some(dangling) = resolved
        .ancestors()
        .find(|a| a.symlink_metadata().is_ok_and(|m| m.is_symlink()))
    {
        return Err(Error::InvalidInput(format!(
            "--move-to {}: {} is a symbolic link to nothing (its target is gone or not mounted)",
            crate::path_repr::shown(p),
            crate::path_repr::shown(dangling)
        )));
    }
    // the part that exists must be a folder this process can add to, or the dry run would
    // promise moves that all fail
    if let Some(existing) = resolved.ancestors().find(|a| a.exists()) {
        if !existing.is_dir() {
            return Err(Error::InvalidInput(format!(
                "--move-to {}: {} is not a folder",
                crate::path_repr::shown(p),
                crate::path_repr::shown(existing)
            )));
        }
        if let Some(where_) = holds_no_new_files(existing) {
            return Err(Error::InvalidInput(format!(
                "--move-to {}: {} is {where_}, where no file can be made; choose a folder on a disk you can write",
                crate::path_repr::shown(p),
                crate::path_repr::shown(existing)
            )));
        }
        if !folder_writable(existing) {
            return Err(Error::InvalidInput(format!(
                "--move-to {}: {} cannot be written (read-only, protected or owned by another user); choose a folder you can write",
                crate::path_repr::shown(p),
                crate::path_repr::shown(existing)
            )));
        }
    }
    Ok(resolved)
}

/// Why the folder `dir` cannot be made or added to, if so: its nearest existing part is a file,
/// or a folder this process cannot write.
fn no_folder_to_make(dir: &Path) -> Option<String> {
    let existing = dir.ancestors().find(|a| a.symlink_metadata().is_ok())?;
    if !existing.is_dir() {
        return Some(format!(
            "{} is a file, not a folder: the copy cannot be moved under it (move that file away, or choose another --move-to)",
            crate::path_repr::shown(existing)
        ));
    }
    (!folder_writable(existing)).then(|| {
        format!(
            "{} cannot be written (read-only, protected or owned by another user)",
            crate::path_repr::shown(existing)
        )
    })
}

/// Refuses `--trash` where the desktop trash cannot take files, before a dry run lists them:
/// no XDG_DATA_HOME nor HOME to find it by, or a trash folder that cannot be made or written.
pub fn check_trash() -> Result<()> {
    #[cfg(all(unix, not(target_os = "macos")))]
    {
        if let Some((var, value)) = crate::desktop_trash::relative_trash_var() {
            return Err(Error::InvalidInput(format!(
                "--trash: {var} is a relative path ({}), which the desktop trash spec says to ignore, yet the trash would be made under the working folder and not found from elsewhere; set {var} to an absolute path or unset it, or use --move-to DIR",
                crate::path_repr::shown(&value)
            )));
        }
        let Some(trash) = crate::desktop_trash::home_trash() else {
            return Err(Error::InvalidInput(
                "--trash: no desktop trash to move the copies to, as neither XDG_DATA_HOME nor HOME is set; set HOME, or use --move-to DIR".into(),
            ));
        };
        if let Some(existing) = trash.ancestors().find(|a| a.exists())
            && (!existing.is_dir() || !folder_writable(existing))
        {
            return Err(Error::InvalidInput(format!(
                "--trash: the desktop trash {} cannot be made or written ({} is not a folder this user can write); fix it, or use --move-to DIR",
                crate::path_repr::shown(&trash),
                crate::path_repr::shown(existing)
            )));
        }
    }
    Ok(())
}

/// Makes the missing trash folders the desktop trash is about to put `file` (its folder's
/// links resolved) in, chosen as the `trash` crate chooses them, readable by this user only
/// (0700, as GLib makes them): made by the crate they would be readable by every user, and so
/// would a copy trashed from a private folder. Folders that exist are left as they are; one
/// that cannot be made is left to the trash to report. Returns the trash chosen.
#[cfg(all(unix, not(target_os = "macos")))]
fn make_trash_folders(file: &Path) -> Option<PathBuf> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    let private = |dir: &Path| {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
    };
    let with_parts = |trash: &Path| private(&trash.join("files")).and(private(&trash.join("info")));
    let home = crate::desktop_trash::home_trash()?;
    let mounts = mount_points();
    let top = topdir(file, &mounts);
    if top == topdir(&resolved_or_parents(&home), &mounts) {
        let _ = with_parts(&home);
        return Some(home);
    }
    // on another file system: `$topdir/.Trash/$uid` in a sticky `.Trash` (not a link), else
    // `$topdir/.Trash-$uid`, and the home trash when that is not permitted
    let uid = user_id().to_string();
    let shared = top.join(".Trash");
    let valid = fs::symlink_metadata(&shared)
        .is_ok_and(|m| m.is_dir() && m.permissions().mode() & 0o1000 != 0);
    if valid && shared.join(&uid).is_dir() {
        let _ = with_parts(&shared.join(&uid));
        return Some(shared.join(&uid));
    }
    let own = top.join(format!(".Trash-{uid}"));
    let made = if own.is_dir() {
        Ok(())
    } else {
        fs::DirBuilder::new().mode(0o700).create(&own)
    };
    if made
        .and_then(|()| with_parts(&own))
        .is_err_and(|e| e.kind() == std::io::ErrorKind::PermissionDenied)
    {
        let _ = with_parts(&home);
        return Some(home);
    }
    Some(own)
}

/// The `.trashinfo` of the file `id` the trash just took from the name `name`, looked for in
/// `trashes`: the trash names it `NAME`, else `NAME.2`, `NAME.3`... (the first free).
#[cfg(all(unix, not(target_os = "macos")))]
fn trashed_as(trashes: &[PathBuf], name: &OsStr, id: FileId) -> Option<PathBuf> {
    for trash in trashes {
        for n in 1.. {
            let mut in_trash = name.to_os_string();
            if n > 1 {
                in_trash.push(format!(".{n}"));
            }
            let mut info_name = in_trash.clone();
            info_name.push(".trashinfo");
            let info = trash.join("info").join(info_name);
            if info.symlink_metadata().is_err() {
                break;
            }
            if file_id(&trash.join("files").join(&in_trash)) == Some(id) {
                return Some(info);
            }
        }
    }
    None
}

/// The mount points listed in `/proc/mounts` (else `/etc/mtab`), their escapes decoded.
#[cfg(all(unix, not(target_os = "macos")))]
fn mount_points() -> Vec<PathBuf> {
    use std::os::unix::ffi::OsStringExt;
    let table = fs::read("/proc/mounts")
        .or_else(|_| fs::read("/etc/mtab"))
        .unwrap_or_default();
    table
        .split(|&b| b == b'\n')
        .filter_map(|line| line.split(|&b| b == b' ').nth(1))
        .filter(|dir| !dir.is_empty())
        .map(|dir| PathBuf::from(std::ffi::OsString::from_vec(unescape_mount(dir))))
        .collect()
}

/// A mount table field with its octal escapes (`\040` for a space) decoded.
#[cfg(all(unix, not(target_os = "macos")))]
fn unescape_mount(field: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(field.len());
    let mut i = 0;
    while i < field.len() {
        let digits = field
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|b| (b'0'..=b'7').contains(b)));
        match (field[i], digits) {
            (b'\\', Some(d)) => {
                let value = d.iter().fold(0u32, |v, b| v * 8 + u32::from(b - b'0'));
                out.push(u8::try_from(value).unwrap_or(b'?'));
                i += 4;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

/// The mount point `path` lies under: the longest of `mounts` it starts with, else `/`.
#[cfg(all(unix, not(target_os = "macos")))]
fn topdir(path: &Path, mounts: &[PathBuf]) -> PathBuf {
    mounts
        .iter()
        .filter(|m| path.starts_with(m))
        .max_by_key(|m| m.as_os_str().len())
        .cloned()
        .unwrap_or_else(|| PathBuf::from("/"))
}

/// `path` with its links resolved, through its nearest existing folder when it is missing.
#[cfg(all(unix, not(target_os = "macos")))]
fn resolved_or_parents(path: &Path) -> PathBuf {
    let mut missing = Vec::new();
    let mut at = path;
    loop {
        if let Ok(real) = fs::canonicalize(at) {
            return missing.iter().rev().fold(real, |p: PathBuf, n| p.join(n));
        }
        match (at.parent(), at.file_name()) {
            (Some(parent), Some(name)) => {
                missing.push(name);
                at = parent;
            }
            _ => return path.to_path_buf(),
        }
    }
}

/// Refuses a move target inside an indexed folder (`tracked`, or one holding a group), or
/// holding one: moved copies would be found again, or their folder moved into itself. Folders
/// are compared with their links resolved and by identity (a folder bind-mounted elsewhere is
/// one folder under two names), and when the walks follow links (`follows_links`) the folders
/// those links lead to count as indexed too. The index folder is refused too: it may be
/// deleted and made again (`index_dir`).
pub fn check_move_target<'a>(
    dest: &Path,
    index_dir: &Path,
    groups: &'a [Group],
    tracked: impl IntoIterator<Item = &'a Path>,
    follows_links: bool,
) -> Result<()> {
    let index_dir = fs::canonicalize(index_dir).unwrap_or_else(|_| index_dir.to_path_buf());
    let dest_ids = ancestor_ids(dest);
    let dest_id = file_id(dest);
    // one inside the other, whatever names they are reached by
    let nested = |folder: &Path| {
        file_id(folder).is_some_and(|id| dest_ids.contains(&id))
            || dest_id.is_some_and(|id| ancestor_ids(folder).contains(&id))
    };
    if dest.starts_with(&index_dir) || index_dir.starts_with(dest) || nested(&index_dir) {
        return Err(Error::InvalidInput(format!(
            "--move-to {}: overlaps the index folder {}, which is rebuilt by deleting it; choose a folder outside it",
            crate::path_repr::shown(dest),
            crate::path_repr::shown(&index_dir)
        )));
    }
    let mut roots: Vec<&Path> = groups
        .iter()
        .flat_map(|g| &g.members)
        .map(|m| m.record.root.as_path())
        .chain(tracked)
        .collect();
    roots.sort();
    roots.dedup();
    let overlaps = |folder: &Path| dest.starts_with(folder) || folder.starts_with(dest);
    for root in &roots {
        let real = fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
        if overlaps(root) || overlaps(&real) || nested(&real) {
            return Err(Error::InvalidInput(format!(
                "--move-to {}: overlaps the indexed folder {}; choose a folder outside it",
                crate::path_repr::shown(dest),
                crate::path_repr::shown(root)
            )));
        }
    }
    if follows_links {
        for root in &roots {
            if let Some((link, real)) = crate::crawl::followed_links(root)
                .into_iter()
                .find(|(_, real)| overlaps(real))
            {
                return Err(Error::InvalidInput(format!(
                    "--move-to {}: overlaps {}, which the index walks through the symbolic link {} (it follows links); choose a folder outside it",
                    crate::path_repr::shown(dest),
                    crate::path_repr::shown(&real),
                    crate::path_repr::shown(&link)
                )));
            }
        }
    }
    Ok(())
}

/// What a dry run showed of its plan: the plan's digest, and the copies it left alone, which
/// the apply leaves alone too (a file made writable since would otherwise be acted on unseen).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Reviewed {
    /// [`plan_digest`] of the plan shown.
    pub digest: String,
    /// The copies the dry run left alone.
    pub held: std::collections::HashSet<PathBuf>,
}

impl Reviewed {
    /// The review of a dry run of `steps` with `digest` that gave `outcomes`.
    pub fn of(digest: &str, steps: &[Step], outcomes: &[Outcome]) -> Reviewed {
        Reviewed {
            digest: digest.to_string(),
            held: steps
                .iter()
                .zip(outcomes)
                .filter(|(_, o)| matches!(o, Outcome::Skipped(_)))
                .map(|(s, _)| s.path.clone())
                .collect(),
        }
    }

    fn to_text(&self) -> String {
        let mut text = self.digest.clone();
        for p in &self.held {
            text.push('\n');
            text.push_str(&path_hex(p));
        }
        text
    }

    fn parse(text: &str) -> Option<Reviewed> {
        let mut lines = text.lines();
        let digest = lines.next()?.trim().to_string();
        let held = lines
            .filter(|l| !l.trim().is_empty())
            .map(|l| path_of_hex(l.trim()))
            .collect::<Option<_>>()?;
        Some(Reviewed { digest, held })
    }
}

/// The last dry run made with `settings` (the action, its target, the rule for the copy kept,
/// the similarity and the folders looked in), if one is recorded in `index_dir`.
pub fn reviewed_plan(index_dir: &Path, settings: &str) -> Option<Reviewed> {
    fs::read_to_string(reviewed_path(index_dir, settings))
        .ok()
        .and_then(|s| Reviewed::parse(&s))
}

/// Records what a dry run with `settings` showed, for the apply to check.
pub fn record_reviewed_plan(
    index_dir: &Path,
    settings: &str,
    reviewed: &Reviewed,
) -> std::io::Result<()> {
    let path = reviewed_path(index_dir, settings);
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir)?;
    }
    fs::write(path, reviewed.to_text())
}

/// Forgets the dry run recorded for `settings` (once applied, its plan is spent).
pub fn forget_reviewed_plan(index_dir: &Path, settings: &str) {
    let _ = fs::remove_file(reviewed_path(index_dir, settings));
}

/// Records `dest` as the folder the last dry run of `--move-to` in `index_dir` moved into, so
/// that an apply naming another folder is told which.
pub fn record_move_target(index_dir: &Path, dest: &Path) -> std::io::Result<()> {
    let path = move_target_path(index_dir);
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir)?;
    }
    fs::write(path, path_hex(dest))
}

/// The folder the last dry run of `--move-to` recorded in `index_dir` moved into, unless a run
/// into it was applied since.
pub fn reviewed_move_target(index_dir: &Path) -> Option<PathBuf> {
    fs::read_to_string(move_target_path(index_dir))
        .ok()
        .and_then(|hex| path_of_hex(hex.trim()))
}

/// Forgets the folder of the last dry run of `--move-to` once a run into `dest` is applied.
pub fn forget_move_target(index_dir: &Path, dest: &Path) {
    if reviewed_move_target(index_dir).is_some_and(|last| last == dest) {
        let _ = fs::remove_file(move_target_path(index_dir));
    }
}

fn move_target_path(index_dir: &Path) -> PathBuf {
    index_dir.join("reviewed").join("last-move-target")
}

fn reviewed_path(index_dir: &Path, settings: &str) -> PathBuf {
    let key = blake3::hash(settings.as_bytes());
    index_dir.join("reviewed").join(hex(&key.as_bytes()[..16]))
}

/// Where journals live inside an index folder.
pub fn journal_dir(index_dir: &Path) -> PathBuf {
    index_dir.join("journal")
}

/// Why an applied run could not write its journal in `journal_dir`, if it could not: the
/// journal folder (or, while it is missing, the index folder that would hold it) is not
/// writable by this process. Nothing is written to find out.
pub fn journal_unwritable(journal_dir: &Path) -> Option<String> {
    let folder = if journal_dir.exists() {
        journal_dir
    } else {
        journal_dir.parent()?
    };
    if folder_writable(folder) {
        return None;
    }
    Some(format!(
        "{} cannot be written by this user, so the journal that makes a run undoable cannot be kept there and applying will fail: make the index folder writable (or run as its owner), or use an index folder you can write, then run the dry run again",
        crate::path_repr::shown(folder)
    ))
}

/// The BLAKE3 hash of a regular file's bytes; anything else (a pipe, which would block the
/// read for ever, a device, a folder) is an error, without opening it.
fn file_hash(path: &Path) -> std::io::Result<[u8; 32]> {
    open_regular(path)
        .and_then(hash_and_id)
        .map(|(hash, _)| hash)
}

/// Opens a regular file for reading; anything else (a pipe, whose opening would block) is an
/// error without opening it.
fn open_regular(path: &Path) -> std::io::Result<fs::File> {
    if !fs::metadata(path)?.is_file() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    fs::File::open(path)
}

/// The BLAKE3 hash of an open regular file's bytes, and which file on disk it is.
fn hash_and_id(file: fs::File) -> std::io::Result<([u8; 32], FileId)> {
    if !file.metadata()?.is_file() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    let id = handle_id(&file)?;
    let mut hasher = blake3::Hasher::new();
    hasher.update_reader(file)?;
    Ok((*hasher.finalize().as_bytes(), id))
}

/// Locks a step's copy and kept file (advisory, exclusive) from its check to its end, so that
/// another run at once (another user's, another index's: no shared run lock) checks them only
/// after this step is done: two runs each keeping the file the other acts on cannot both act.
/// Locked in file-identity order, each file once; a file that cannot be opened, or whose file
/// system has no locks, is left to the check to judge. A file another program keeps locked
/// longer than [`STEP_LOCK_WAIT`] leaves the step undone, with the reason.
fn hold_step_files(step: &Step) -> std::result::Result<Vec<fs::File>, String> {
    let mut files: Vec<(FileId, &Path, fs::File)> = [&step.path, &step.keeper]
        .into_iter()
        .filter_map(|p| open_regular(p).ok().map(|f| (p, f)))
        .filter_map(|(p, f)| handle_id(&f).ok().map(|id| (id, p.as_path(), f)))
        .collect();
    files.sort_by_key(|(id, _, _)| *id);
    files.dedup_by_key(|(id, _, _)| *id);
    let waited_since = std::time::Instant::now();
    let mut held = Vec::with_capacity(files.len());
    for (_, path, file) in files {
        loop {
            match file.try_lock() {
                Ok(()) => break,
                Err(fs::TryLockError::WouldBlock) if waited_since.elapsed() < STEP_LOCK_WAIT => {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                Err(fs::TryLockError::WouldBlock) => {
                    return Err(format!(
                        "{} is locked by another program (another lookalike run acting on it?); run again later",
                        crate::path_repr::shown(path)
                    ));
                }
                Err(fs::TryLockError::Error(_)) => break,
            }
        }
        held.push(file);
    }
    Ok(held)
}

/// How long a step waits for another program to release a file it acts on.
const STEP_LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// Held while a run acts on files or undoes one; released on drop.
struct ActionLock {
    _dir: fs::File,
    _user: fs::File,
}

/// Takes the lock on acting on this index's files, refusing at once when another process
/// holds it: two runs with different keepers would each remove the other's keeper. The lock is
/// on the index folder itself (opened as a folder), not on a file in it: a file could be
/// deleted or swapped for a pipe under a running apply, letting a second one in or hanging it.
fn lock_actions(journal_dir: &Path) -> Result<ActionLock> {
    let index_dir = journal_dir.parent().unwrap_or(journal_dir);
    let unwritable = |e: std::io::Error| match e.kind() {
        std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::ReadOnlyFilesystem => {
            Error::InvalidInput(format!(
                "{}: cannot write the journal that makes the run undoable ({e}); give an index folder you can write",
                crate::path_repr::shown(journal_dir)
            ))
        }
        _ => Error::io(journal_dir, e),
    };
    fs::create_dir_all(journal_dir).map_err(unwritable)?;
    let dir = fs::File::open(index_dir).map_err(|e| Error::io(index_dir, e))?;
    match dir.try_lock() {
        Ok(()) => {}
        Err(fs::TryLockError::WouldBlock) => {
            return Err(Error::ActionRunning(index_dir.to_path_buf()));
        }
        Err(fs::TryLockError::Error(e)) => return Err(Error::io(index_dir, e)),
    }
    // Two indexes over the same photos act on the same files: one run at a time for the user
    // too, and no run without that lock.
    let user = user_lock_file()?;
    match user.try_lock() {
        Ok(()) => {}
        Err(fs::TryLockError::WouldBlock) => {
            return Err(Error::ActionRunning(index_dir.to_path_buf()));
        }
        Err(fs::TryLockError::Error(e)) => return Err(user_lock_error(&user_lock_path().0, e)),
    }
    Ok(ActionLock {
        _dir: dir,
        _user: user,
    })
}

/// Where the user's lock on acting on photos lives: `lookalike/actions.lock` in the user's
/// cache folder (`$XDG_CACHE_HOME`, else `~/.cache`); with neither set, `lookalike-UID/actions.lock`
/// in the temporary folder, which other users share (`true`: see [`user_lock_file`]).
fn user_lock_path() -> (PathBuf, bool) {
    #[cfg(test)]
    if let Some(cache) = tests::LOCK_CACHE.with(|c| c.borrow().clone()) {
        return (cache.join("lookalike").join("actions.lock"), false);
    }
    let absolute = |v: Option<std::ffi::OsString>| v.map(PathBuf::from).filter(|p| p.is_absolute());
    let cache = absolute(std::env::var_os("XDG_CACHE_HOME"))
        .or_else(|| absolute(std::env::var_os("HOME")).map(|home| home.join(".cache")));
    match cache {
        Some(cache) => (cache.join("lookalike").join("actions.lock"), false),
        None => (
            std::env::temp_dir()
                .join(format!("lookalike-{}", user_id()))
                .join("actions.lock"),
            true,
        ),
    }
}

/// The effective user id (0 where there is none).
#[cfg(unix)]
#[allow(unsafe_code)]
fn user_id() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

#[cfg(not(unix))]
fn user_id() -> u32 {
    0
}

fn user_lock_error(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::InvalidInput(format!(
        "cannot take the lock that keeps two runs off the same photos, {} ({e}); make it a \
         writable file, or set XDG_CACHE_HOME to a folder you can write",
        crate::path_repr::shown(path)
    ))
}

/// Opens the user's lock file ([`user_lock_path`]), made if missing; it must be a regular file.
/// In the shared temporary folder, its folder and the file must be this user's alone: another
/// user could otherwise make them first, and hold the lock or swap the file.
fn user_lock_file() -> Result<fs::File> {
    let (path, shared) = user_lock_path();
    let folder = path.parent().unwrap_or(Path::new("."));
    let mut builder = fs::DirBuilder::new();
    // in the shared temporary folder, only `lookalike-UID`: a missing temp folder is not made
    builder.recursive(!shared);
    #[cfg(unix)]
    if shared {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    match builder.create(folder) {
        Ok(()) => {}
        Err(e) if shared && e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(_) if shared && !folder.parent().is_some_and(Path::is_dir) => {
            let temp = folder.parent().unwrap_or(Path::new("."));
            let source = if std::env::var_os("TMPDIR").is_some() {
                "TMPDIR"
            } else {
                "the system temp folder"
            };
            return Err(Error::InvalidInput(format!(
                "HOME and XDG_CACHE_HOME are both unset, so the lock that keeps two runs off the \
                 same photos goes in the temporary folder, but {source} ({}) is not an existing \
                 folder, and none is created; create it or unset TMPDIR, or set XDG_CACHE_HOME \
                 (or HOME) to a folder you own",
                crate::path_repr::shown(temp)
            )));
        }
        Err(e) => return Err(user_lock_error(&path, e)),
    }
    let not_ours = |what: &Path, why: &str| {
        Error::InvalidInput(format!(
            "HOME and XDG_CACHE_HOME are both unset, and the lock that keeps two runs off the \
             same photos would be {} in the shared temporary folder, but {} {why}; set \
             XDG_CACHE_HOME (or HOME) to a folder you own",
            crate::path_repr::shown(&path),
            crate::path_repr::shown(what)
        ))
    };
    if shared {
        let meta = fs::symlink_metadata(folder).map_err(|e| user_lock_error(&path, e))?;
        if let Some(why) = not_users_alone(&meta) {
            return Err(not_ours(folder, &why));
        }
    }
    let mut options = fs::OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        // a pipe planted at the name is never waited on; in the shared folder, no link followed
        let nofollow = if shared { libc::O_NOFOLLOW } else { 0 };
        options
            .custom_flags(libc::O_NONBLOCK | nofollow)
            .mode(0o600);
    }
    let file = options.open(&path).map_err(|e| user_lock_error(&path, e))?;
    match file.metadata() {
        Ok(m) if m.is_file() => {
            if shared && let Some(why) = not_users_alone(&m) {
                return Err(not_ours(&path, &why));
            }
            Ok(file)
        }
        Ok(_) => Err(user_lock_error(&path, "not a regular file")),
        Err(e) => Err(user_lock_error(&path, e)),
    }
}

/// Why a file or folder is not this user's alone (another owner, a link, writable by others),
/// or `None` when it is.
#[cfg(unix)]
fn not_users_alone(meta: &fs::Metadata) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    if meta.file_type().is_symlink() {
        Some("is a symbolic link".to_string())
    } else if meta.uid() != user_id() {
        Some(format!("belongs to user id {}", meta.uid()))
    } else if meta.mode() & 0o022 != 0 {
        Some(format!(
            "may be written by other users (mode {:o})",
            meta.mode() & 0o777
        ))
    } else {
        None
    }
}

#[cfg(not(unix))]
fn not_users_alone(_meta: &fs::Metadata) -> Option<String> {
    None
}

/// `dir` with its longest existing ancestor's links resolved and the rest appended: where
/// creating and writing below `dir` would really land.
fn resolved_dir(dir: &Path) -> std::io::Result<PathBuf> {
    let mut existing = dir;
    let mut rest = Vec::new();
    while !existing.exists() {
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_os_string());
                existing = parent;
            }
            _ => break,
        }
    }
    let mut resolved = fs::canonicalize(existing)?;
    for name in rest.into_iter().rev() {
        resolved.push(name);
    }
    Ok(resolved)
}

/// True when the folder's entries can be added and removed by this process (a file can only
/// be moved, trashed, linked over or deleted from such a folder).
#[cfg(unix)]
#[allow(unsafe_code)]
fn folder_writable(dir: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c) = std::ffi::CString::new(dir.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: `c` is a valid NUL-terminated path that outlives the call.
    let allowed = unsafe { libc::access(c.as_ptr(), libc::W_OK | libc::X_OK) == 0 };
    // access(2) lets root write anywhere, /proc and /sys included
    allowed && holds_no_new_files(dir).is_none()
}

/// Kernel file systems where no one, root included, can make a file of their own: their
/// statfs(2) magic numbers and names.
#[cfg(target_os = "linux")]
const VIRTUAL_FILE_SYSTEMS: [(u32, &str); 20] = [
    (0x0000_9fa0, "proc"),
    (0x6265_6572, "sysfs"),
    (0x0027_e0eb, "cgroup"),
    (0x6367_7270, "cgroup2"),
    (0x0000_1cd1, "devpts"),
    (0x6462_6720, "debugfs"),
    (0x7472_6163, "tracefs"),
    (0x7363_6673, "securityfs"),
    (0x6165_676c, "pstore"),
    (0xde5e_81e4, "efivarfs"),
    (0xcafe_4a11, "bpf"),
    (0x6265_6570, "configfs"),
    (0xf97c_ff8c, "selinuxfs"),
    (0x4341_5d53, "smackfs"),
    (0x6573_5543, "fusectl"),
    (0x4249_4e4d, "binfmt_misc"),
    (0x6e73_6673, "nsfs"),
    (0x1980_0202, "mqueue"),
    (0x9584_58f6, "hugetlbfs"),
    (0x0765_5821, "resctrl"),
];

/// Why no file can be made in `dir` by anyone, if so: it is on a read-only mount, or on a
/// kernel file system (proc, sysfs, cgroup ...). Nothing is written to find out.
#[cfg(unix)]
#[allow(unsafe_code)]
fn holds_no_new_files(dir: &Path) -> Option<String> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    #[cfg(target_os = "linux")]
    {
        // SAFETY: all-zero bytes are a valid `statfs`; `c` is a valid NUL-terminated path and
        // `st` a writable `statfs`, both outliving the call.
        let (got, st) = unsafe {
            let mut st: libc::statfs = std::mem::zeroed();
            (libc::statfs(c.as_ptr(), &mut st), st)
        };
        // the magic numbers are 32 bits wide, whatever the width of `f_type`
        let magic = st.f_type as u32;
        if got == 0
            && let Some((_, name)) = VIRTUAL_FILE_SYSTEMS.iter().find(|(m, _)| *m == magic)
        {
            return Some(format!("on the kernel's {name} file system"));
        }
    }
    // SAFETY: as above, for `statvfs`.
    let (got, st) = unsafe {
        let mut st: libc::statvfs = std::mem::zeroed();
        (libc::statvfs(c.as_ptr(), &mut st), st)
    };
    (got == 0 && st.f_flag & libc::ST_RDONLY != 0).then(|| "on a read-only mount".to_string())
}

/// True when `dir` has the sticky bit (as /tmp) and neither the file nor the folder is this
/// user's: only they (or root) may remove or rename the file there.
#[cfg(unix)]
#[allow(unsafe_code)]
fn sticky_and_not_ours(dir: &Path, file: &fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    let Ok(d) = fs::metadata(dir) else {
        return false;
    };
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    d.mode() & 0o1000 != 0 && me != 0 && file.uid() != me && d.uid() != me
}

#[cfg(not(unix))]
fn sticky_and_not_ours(_dir: &Path, _file: &fs::Metadata) -> bool {
    false
}

#[cfg(not(unix))]
fn holds_no_new_files(_dir: &Path) -> Option<String> {
    None
}

#[cfg(not(unix))]
fn folder_writable(dir: &Path) -> bool {
    fs::metadata(dir).is_ok_and(|m| !m.permissions().readonly())
}

/// Longest file name the desktop trash can record: 255 bytes less `.trashinfo` and room for a
/// number.
const TRASH_NAME_MAX: usize = 240;

/// A step's copy as checked: its folder held open, its name there, the file that was hashed
/// and the keeper that was, and the hidden name `--hardlink` and `--delete` set it aside under.
struct Checked {
    dir: HeldDir,
    name: std::ffi::OsString,
    id: FileId,
    keeper_id: FileId,
    aside: std::ffi::OsString,
}

impl Checked {
    /// Fails unless `name` still is the file that was checked.
    fn still_there(&self) -> std::io::Result<()> {
        still_the_file(&self.dir, &self.name, self.id)
    }
}

/// Fails unless `name` in `dir` is still the file `id`: replaced while the run acts, it is
/// left alone.
fn still_the_file(dir: &HeldDir, name: &OsStr, id: FileId) -> std::io::Result<()> {
    if dir.entry_id(name)? == id {
        Ok(())
    } else {
        Err(std::io::Error::other(format!(
            "{} was replaced while the run acted: left alone; run `lookalike index` again",
            crate::path_repr::shown(&dir.path().join(name))
        )))
    }
}

/// Why a step must not run, read from the files' metadata alone (no content is read), if it
/// must not: the reasons that hold for every action (`action` only words them), which a
/// listing shows as well.
fn left_alone(step: &Step, action: Option<&Action>) -> Option<String> {
    let meta = match fs::symlink_metadata(&step.path) {
        Ok(m) => m,
        Err(e) => return Some(format!("cannot read it ({e}); run `lookalike index` again")),
    };
    if meta.is_symlink() {
        return Some("a symbolic link, not a file".into());
    }
    if !meta.is_file() {
        return Some("no longer a regular file; run `lookalike index` again".into());
    }
    if let Some(real) = outside_its_folder(&step.path, &step.root) {
        return Some(format!(
            "it is {} on disk, outside its indexed folder {} (reached through a symbolic link)",
            crate::path_repr::shown(&real),
            crate::path_repr::shown(&step.root)
        ));
    }
    if meta.permissions().readonly() {
        return Some("the file is read-only (make it writable to include it)".into());
    }
    if let Some(dir) = step.path.parent() {
        // the folder's mode bits, as the file's: access(2) lets root write in a read-only
        // folder, though not in an immutable one
        let read_only = fs::metadata(dir).is_ok_and(|m| m.permissions().readonly());
        if read_only || !folder_writable(dir) {
            return Some(format!(
                "its folder {} is read-only (make the folder writable to include it)",
                crate::path_repr::shown(dir)
            ));
        }
        if sticky_and_not_ours(dir, &meta) {
            return Some(format!(
                "its folder {} lets only a file's owner remove it (sticky), and it is another user's",
                crate::path_repr::shown(dir)
            ));
        }
    }
    if step.path == step.keeper {
        return Some("it is the copy to keep".into());
    }
    // A symbolic link as the copy to keep would keep a name only: the content may be the copy
    // itself, or outside the folder, and a hard link to it would dangle.
    if fs::symlink_metadata(&step.keeper).is_ok_and(|m| m.is_symlink()) {
        return Some(format!(
            "the copy to keep, {}, is a symbolic link, not a file: choose another (`--keep`)",
            crate::path_repr::shown(&step.keeper)
        ));
    }
    if let Some(real) = outside_its_folder(&step.keeper, &step.keeper_root) {
        return Some(format!(
            "the copy to keep, {}, is {} on disk, outside its indexed folder {} (reached through a symbolic link): choose another (`--keep`)",
            crate::path_repr::shown(&step.keeper),
            crate::path_repr::shown(&real),
            crate::path_repr::shown(&step.keeper_root)
        ));
    }
    // Two names of one file (hard links, or one file seen through a linked folder): removing
    // either would remove the copy to keep, and linking them changes nothing.
    if same_file(&step.path, &step.keeper) {
        return Some(if matches!(action, Some(Action::Hardlink)) {
            "already a hard link to the copy to keep".into()
        } else {
            "the same file on disk as the copy to keep (a hard link, or a path through a linked folder)".into()
        });
    }
    // Other names of the copy (in the indexed folders or out) keep its bytes on disk, and
    // `undo` would bring this name back as a file of its own, no longer one with them.
    if link_count(&step.path) > 1 {
        return Some(
            "it has other names (hard links): acting on this one would free nothing and part them"
                .into(),
        );
    }
    None
}

/// What no action would touch among the copies of `groups`, copy by copy in the order of
/// [`plan`]: the reason each is left alone, read from metadata as a dry run reads it first.
pub(crate) fn left_alone_each(groups: &[Group]) -> Vec<Option<String>> {
    steps_of(groups, &Action::Delete, [])
        .iter()
        .map(|s| left_alone(s, None))
        .collect()
}

/// Why a step must not run, if it must not; otherwise the copy as checked.
fn check_step(step: &Step, action: &Action) -> std::result::Result<Checked, String> {
    if let Some(why) = left_alone(step, Some(action)) {
        return Err(why);
    }
    // From here on the copy is reached through its folder held open: a folder swapped for a
    // link after this check cannot lead a step to another file.
    let (Some(parent), Some(name)) = (step.path.parent(), step.path.file_name()) else {
        return Err("not a file in a folder".into());
    };
    let dir = resolved_dir(parent)
        .and_then(|real| HeldDir::open(&real, false))
        .map_err(|e| format!("cannot read its folder ({e})"))?;
    let id = match dir.open_file(name).and_then(hash_and_id) {
        Ok((h, id)) if h == step.hash => id,
        Ok(_) => return Err("changed since it was indexed; run `lookalike index` again".into()),
        Err(e) => return Err(format!("cannot read it ({e})")),
    };
    let keeper_id = match open_regular(&step.keeper).and_then(hash_and_id) {
        Ok((h, id)) if h == step.keeper_hash => id,
        _ => {
            return Err(format!(
                "the copy to keep, {}, changed or is gone; run `lookalike index` again",
                crate::path_repr::shown(&step.keeper)
            ));
        }
    };
    // The trash records a file under its own name plus `.trashinfo` (and a number when the name
    // is taken there): a name near the 255-byte limit cannot be recorded.
    if matches!(action, Action::Trash)
        && step
            .path
            .file_name()
            .is_some_and(|n| n.len() > TRASH_NAME_MAX)
    {
        return Err(format!(
            "its name is over {TRASH_NAME_MAX} bytes, too long for the desktop trash's record (use --move-to for it)"
        ));
    }
    let refused = match action {
        Action::Hardlink if step.hash != step.keeper_hash => Some(
            "not byte-identical to the copy to keep: a hard link would lose its content".into(),
        ),
        Action::Hardlink if id.0 != keeper_id.0 => Some(format!(
            "on another disk than the copy to keep, {}: a hard link cannot cross disks (use --move-to or --trash for it)",
            crate::path_repr::shown(&step.keeper)
        )),
        Action::Hardlink => match (dir.open_file(name), open_regular(&step.keeper)) {
            (Ok(copy), Ok(keeper)) => own_but_not_keepers(&copy, &keeper).map(|what| {
                format!(
                    "its {what} from the kept file's: a link would take the kept file's"
                )
            }),
            (Err(e), _) | (_, Err(e)) => Some(format!("cannot read it ({e})")),
        },
        Action::MoveTo(_) => match &step.target {
            Some(t) if t.exists() || t.symlink_metadata().is_ok() => {
                Some(format!("{} already exists", crate::path_repr::shown(t)))
            }
            // a link inside the --move-to folder could lead the copy back into an indexed
            // folder, or anywhere
            Some(t) => t.parent().and_then(|dir| match resolved_dir(dir) {
                // a link to nothing on the way is no folder to make
                _ if dir.ancestors().any(|a| a.symlink_metadata().is_ok_and(|m| m.is_symlink())) => {
                    Some(format!(
                        "{} goes through a symbolic link (moves stay inside the --move-to folder)",
                        crate::path_repr::shown(dir)
                    ))
                }
                // a file where a folder is to be made, or a folder no file can be added to,
                // would fail the move the dry run promised
                Ok(real) => no_folder_to_make(dir).or_else(|| {
                    (real != dir).then(|| {
                        format!(
                            "{} leads to {} through a symbolic link (moves stay inside the --move-to folder)",
                            crate::path_repr::shown(dir),
                            crate::path_repr::shown(&real)
                        )
                    })
                }),
                Err(e) => Some(format!("cannot read {} ({e})", crate::path_repr::shown(dir))),
            }),
            None => None,
        },
        _ => None,
    };
    match refused {
        Some(why) => Err(why),
        None => Ok(Checked {
            dir,
            name: name.to_os_string(),
            id,
            keeper_id,
            aside: temporary_name(),
        }),
    }
}

/// What a hard link to `keeper` would take from it in place of the copy's own, worded as
/// "owner and permissions differ": its owner, group, permission bits or extended attributes,
/// where they differ (its modification time is not, as `undo` gives it back); `None` when none does.
fn own_but_not_keepers(copy: &fs::File, keeper: &fs::File) -> Option<String> {
    let mut differ: Vec<&str> = Vec::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        if let (Ok(c), Ok(k)) = (copy.metadata(), keeper.metadata()) {
            if c.uid() != k.uid() {
                differ.push("owner");
            }
            if c.gid() != k.gid() {
                differ.push("group");
            }
            if c.mode() & 0o7777 != k.mode() & 0o7777 {
                differ.push("permissions");
            }
        }
    }
    if attributes(copy) != attributes(keeper) {
        differ.push("extended attributes");
    }
    let (last, rest) = differ.split_last()?;
    let verb = if rest.is_empty() && matches!(*last, "owner" | "group") {
        "differs"
    } else {
        "differ"
    };
    Some(if rest.is_empty() {
        format!("{last} {verb}")
    } else {
        format!("{} and {last} {verb}", rest.join(", "))
    })
}

/// A file's extended attributes, names with their values, sorted: none where the file system
/// keeps none, and an attribute that cannot be read is left out.
#[cfg(target_os = "linux")]
fn attributes(file: &fs::File) -> Vec<(std::ffi::CString, Vec<u8>)> {
    // a buffer large enough for the answer, which may grow between two calls
    let sized = |read: &dyn Fn(&mut [u8]) -> rustix::io::Result<usize>| {
        let mut buf = vec![0u8; 1024];
        loop {
            match read(&mut buf[..]) {
                Ok(n) => {
                    buf.truncate(n);
                    return Some(buf);
                }
                Err(rustix::io::Errno::RANGE) if buf.len() < 1 << 24 => {
                    buf.resize(buf.len() * 4, 0);
                }
                Err(_) => return None,
            }
        }
    };
    let Some(names) = sized(&|b| rustix::fs::flistxattr(file, b)) else {
        return Vec::new();
    };
    let mut all: Vec<(std::ffi::CString, Vec<u8>)> = names
        .split(|&b| b == 0)
        .filter_map(|name| std::ffi::CString::new(name).ok())
        .filter(|name| !name.is_empty())
        .filter_map(|name| {
            let value = sized(&|b| rustix::fs::fgetxattr(file, name.as_c_str(), b))?;
            Some((name, value))
        })
        .collect();
    all.sort();
    all
}

#[cfg(not(target_os = "linux"))]
fn attributes(_file: &fs::File) -> Vec<(std::ffi::CString, Vec<u8>)> {
    Vec::new()
}

/// Gives `copy` the owner and group of `source` (where permitted: as for `mv`, a user who
/// may not give a file away keeps it), its permission bits again (a change of owner clears
/// the set-id ones), and each of its extended attributes the copy's file system takes.
fn give_owner_and_attributes(source: &fs::File, copy: &fs::File) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let meta = source.metadata()?;
        let owner = rustix::fs::Uid::from_raw(meta.uid());
        let group = rustix::fs::Gid::from_raw(meta.gid());
        if rustix::fs::fchown(copy, Some(owner), Some(group)).is_err() {
            let _ = rustix::fs::fchown(copy, None, Some(group));
        }
        copy.set_permissions(meta.permissions())?;
    }
    #[cfg(target_os = "linux")]
    for (name, value) in attributes(source) {
        let _ = rustix::fs::fsetxattr(copy, &name, &value, rustix::fs::XattrFlags::empty());
    }
    Ok(())
}

/// Where `path` really is, when that is outside its indexed folder `root` (a name reached
/// through a followed link that leads out) or cannot be told; `None` when it is inside.
pub(crate) fn outside_its_folder(path: &Path, root: &Path) -> Option<PathBuf> {
    let real = match (path.parent(), path.file_name()) {
        // the name itself is not resolved: a link as the file is refused on its own
        (Some(dir), Some(name)) => resolved_dir(dir).map(|d| d.join(name)),
        _ => fs::canonicalize(path),
    };
    match (real, fs::canonicalize(root)) {
        (Ok(real), Ok(root)) if real.starts_with(&root) => None,
        (Ok(real), _) => Some(real),
        (Err(_), _) => Some(path.to_path_buf()),
    }
}

/// True when an action on `path` (a copy in `root`) could free its bytes: a regular file, not
/// a symbolic link, inside its indexed folder.
pub(crate) fn actionable(path: &Path, root: &Path) -> bool {
    fs::symlink_metadata(path).is_ok_and(|m| m.is_file())
        && outside_its_folder(path, root).is_none()
}

/// How many names the file has on disk (1 where the platform does not tell).
fn link_count(path: &Path) -> u64 {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        fs::symlink_metadata(path).map_or(1, |m| m.nlink())
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        1
    }
}

/// The file a name refers to on disk (device and inode), where the platform tells.
pub(crate) fn file_id(path: &Path) -> Option<(u64, u64)> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        None
    }
}

/// The identities (device and inode) of the folders on the way to `path` that exist, `path`
/// included: a folder keeps its identity under every name it is reached by.
pub(crate) fn ancestor_ids(path: &Path) -> Vec<(u64, u64)> {
    path.ancestors().filter_map(file_id).collect()
}

/// True when both names are one file on disk (hard links of each other); read from metadata,
/// without opening either.
pub(crate) fn same_file(a: &Path, b: &Path) -> bool {
    matches!((file_id(a), file_id(b)), (Some(x), Some(y)) if x == y)
}

/// Moves `name` in `from` (the file `id`, when known) to `to_name` in `to`, never replacing a
/// file there; across file systems the file is copied under a temporary name, checked against
/// `hash`, renamed into place and only then removed from `from`.
fn move_file(
    from: &HeldDir,
    name: &OsStr,
    id: FileId,
    to: &HeldDir,
    to_name: &OsStr,
    hash: &[u8; 32],
) -> std::io::Result<()> {
    still_the_file(from, name, id)?;
    let describe = |e: std::io::Error| {
        std::io::Error::new(
            e.kind(),
            format!(
                "cannot move {} to {}: {e}",
                crate::path_repr::shown(&from.path().join(name)),
                crate::path_repr::shown(&to.path().join(to_name))
            ),
        )
    };
    match from.rename_new(name, to, to_name) {
        Ok(()) => Ok(()),
        Err(e) if e.raw_os_error() == Some(18) => {
            // EXDEV: another device. The copy keeps the file's times, permissions, owner
            // and extended attributes: its date is part of the photo.
            let mut source = from.open_file(name)?;
            if handle_id(&source)? != id {
                return Err(std::io::Error::other("the file changed while it was moved"));
            }
            let shown = from.path().join(name);
            let stamp = settled(&source, &shown)?;
            let meta = source.metadata()?;
            let tmp = temporary_name();
            let copied = (|| {
                let mut copy = to.create_file(&tmp)?;
                copy_into(&mut source, &mut copy)?;
                give_owner_and_attributes(&source, &copy)?;
                let mut times = fs::FileTimes::new();
                if let Ok(t) = meta.modified() {
                    times = times.set_modified(t);
                }
                if let Ok(t) = meta.accessed() {
                    times = times.set_accessed(t);
                }
                copy.set_times(times)?;
                copy.sync_all()?;
                if hash_and_id(to.open_file(&tmp)?)?.0 != *hash {
                    return Err(std::io::Error::other(
                        "the copy did not match; nothing moved",
                    ));
                }
                to.rename_new(&tmp, to, to_name)
            })();
            if let Err(e) = copied {
                let _ = to.remove(&tmp);
                return Err(describe(e));
            }
            #[cfg(test)]
            tests::at_moment(tests::Moment::Copied);
            // written to since it was stamped (before the copy read it): the copy may lack
            // the new bytes, so it goes and the file stays
            if stamp_of(&source)? != stamp {
                let _ = to.remove(to_name);
                return Err(changed_while_acting(&shown));
            }
            still_the_file(from, name, id)?;
            from.remove(name)
        }
        Err(e) => Err(describe(e)),
    }
}

/// Carries out `step`, checked as `checked`; for a trashed copy, returns its `.trashinfo` when
/// found.
fn run_step(step: &Step, action: &Action, checked: &Checked) -> std::io::Result<Option<PathBuf>> {
    #[cfg(test)]
    tests::at_moment(tests::Moment::Checked);
    checked.still_there()?;
    let (dir, name) = (&checked.dir, checked.name.as_os_str());
    match action {
        Action::MoveTo(_) => {
            let to = step.target.as_ref().expect("a move has a target");
            let (Some(to_dir), Some(to_name)) = (to.parent(), to.file_name()) else {
                return Err(std::io::Error::other(format!(
                    "{}: not a file name",
                    crate::path_repr::shown(to)
                )));
            };
            let to_dir = HeldDir::open(to_dir, true)?;
            move_file(dir, name, checked.id, &to_dir, to_name, &step.hash).map(|()| None)
        }
        Action::Trash => {
            // the trash takes a path: it must still lead to the folder checked
            match step.path.parent().map(resolved_dir) {
                Some(Ok(real)) if real == dir.path() => {}
                _ => {
                    return Err(std::io::Error::other(format!(
                        "{} leads elsewhere than when it was checked: left alone",
                        crate::path_repr::shown(&step.path)
                    )));
                }
            }
            #[cfg(all(unix, not(target_os = "macos")))]
            {
                let chosen = make_trash_folders(&dir.path().join(name));
                trash::delete(&step.path).map_err(trash_error)?;
                let trashes: Vec<PathBuf> = chosen
                    .into_iter()
                    .chain(crate::desktop_trash::home_trash())
                    .collect();
                Ok(trashed_as(&trashes, name, checked.id))
            }
            #[cfg(not(all(unix, not(target_os = "macos"))))]
            trash::delete(&step.path)
                .map_err(trash_error)
                .map(|()| None)
        }
        Action::Hardlink | Action::Delete => {
            set_aside_and_act(step, action, checked).map(|()| None)
        }
    }
}

/// Deletes the copy, or replaces it by a hard link to the keeper, dropping no byte it did not
/// verify. The copy is first renamed to a hidden name in its folder (`checked.aside`, which the
/// journal holds), so no program opens it by its name from then on, then hashed again through
/// its handle; changed, it goes back under its name. A program that opened it before may still
/// write to it: its size and times are read again right before the set-aside file is removed,
/// and a write between that last read and the removal (microseconds) is the one that can still
/// be lost.
fn set_aside_and_act(step: &Step, action: &Action, checked: &Checked) -> std::io::Result<()> {
    let (dir, name, aside) = (
        &checked.dir,
        checked.name.as_os_str(),
        checked.aside.as_os_str(),
    );
    dir.rename_new(name, dir, aside)?;
    let verified = match dir.entry_id(aside) {
        Ok(id) if id == checked.id => verify_set_aside(dir, aside, &step.hash, &step.path),
        Ok(_) => Err(std::io::Error::other(format!(
            "{} was replaced while the run acted: left alone; run `lookalike index` again",
            crate::path_repr::shown(&step.path)
        ))),
        Err(e) => Err(e),
    };
    let (file, stamp) = match verified {
        Ok(v) => v,
        Err(e) => return Err(put_back(dir, aside, name, e)),
    };
    #[cfg(test)]
    tests::at_moment(tests::Moment::Verified);
    let unchanged = || match stamp_of(&file) {
        Ok(now) if now == stamp => Ok(()),
        Ok(_) => Err(changed_while_acting(&step.path)),
        Err(e) => Err(e),
    };
    if matches!(action, Action::Delete) {
        return match unchanged().and_then(|()| dir.remove(aside)) {
            Ok(()) => {
                #[cfg(test)]
                tests::at_moment(tests::Moment::Removed);
                Ok(())
            }
            Err(e) => Err(put_back(dir, aside, name, e)),
        };
    }
    if let Err(e) = link_keeper(dir, name, step, checked.keeper_id) {
        return Err(put_back(dir, aside, name, e));
    }
    #[cfg(test)]
    tests::at_moment(tests::Moment::Linked);
    match unchanged().and_then(|()| dir.remove(aside)) {
        Ok(()) => {
            #[cfg(test)]
            tests::at_moment(tests::Moment::Removed);
            Ok(())
        }
        // the name holds the link made just now: the copy goes back over it
        Err(e) => match dir.entry_id(name) {
            Ok(id) if id == checked.keeper_id => match dir.rename_over(aside, name) {
                Ok(()) => Err(e),
                Err(back) => Err(not_put_back(dir, aside, name, e, back)),
            },
            _ => Err(put_back(dir, aside, name, e)),
        },
    }
}

/// Makes `name` in `dir`, free now, a hard link to the step's keeper, which must still be the
/// file `keeper_id`; a file made at `name` since is never replaced.
fn link_keeper(dir: &HeldDir, name: &OsStr, step: &Step, keeper_id: FileId) -> std::io::Result<()> {
    let tmp = temporary_name();
    dir.link_from(&step.keeper, &tmp)?;
    let linked = match dir.entry_id(&tmp) {
        Ok(id) if id == keeper_id => dir.rename_new(&tmp, dir, name),
        Ok(_) => Err(std::io::Error::other(format!(
            "the copy to keep, {}, was replaced while the run acted: left alone",
            crate::path_repr::shown(&step.keeper)
        ))),
        Err(e) => Err(e),
    };
    if dir.has(&tmp) {
        let _ = dir.remove(&tmp);
    }
    linked
}

/// Puts the file set aside as `aside` in `dir` back under `name` after `why` stopped the step;
/// the error to report is `why`, naming both paths when the file could not go back.
fn put_back(dir: &HeldDir, aside: &OsStr, name: &OsStr, why: std::io::Error) -> std::io::Error {
    match dir.rename_new(aside, dir, name) {
        Ok(()) => why,
        Err(back) => not_put_back(dir, aside, name, why, back),
    }
}

fn not_put_back(
    dir: &HeldDir,
    aside: &OsStr,
    name: &OsStr,
    why: std::io::Error,
    back: std::io::Error,
) -> std::io::Error {
    std::io::Error::new(
        why.kind(),
        format!(
            "{why}; and the file could not go back under its name ({back}): it is at {}, move it back to {}",
            crate::path_repr::shown(&dir.path().join(aside)),
            crate::path_repr::shown(&dir.path().join(name))
        ),
    )
}

fn changed_while_acting(path: &Path) -> std::io::Error {
    std::io::Error::other(format!(
        "{} changed while the run acted: left alone; run `lookalike index` again",
        crate::path_repr::shown(path)
    ))
}

/// A file's size and modification and change times, read from its handle: a write changes
/// them, unless it falls within the same tick of the file system's clock (see [`settled`]).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Stamp {
    len: u64,
    modified: Option<std::time::SystemTime>,
    changed: (i64, i64),
}

fn stamp_of(file: &fs::File) -> std::io::Result<Stamp> {
    let meta = file.metadata()?;
    #[cfg(unix)]
    let changed = {
        use std::os::unix::fs::MetadataExt;
        (meta.ctime(), meta.ctime_nsec())
    };
    #[cfg(not(unix))]
    let changed = (0, 0);
    Ok(Stamp {
        len: meta.len(),
        modified: meta.modified().ok(),
        changed,
    })
}

/// The longest a file system may keep one modification time across writes: a tick of the
/// kernel's clock, or 2 s where times are kept in whole seconds (FAT, ext3).
fn time_grain(modified: std::time::SystemTime) -> std::time::Duration {
    let whole_seconds = modified
        .duration_since(std::time::UNIX_EPOCH)
        .is_ok_and(|d| d.subsec_nanos() == 0);
    if whole_seconds {
        std::time::Duration::from_secs(2)
    } else {
        std::time::Duration::from_millis(20)
    }
}

/// The stamp of `file`, once its modification time is older than its clock's grain: a write
/// within the grain of the last one may leave the times as they were, so a file written just
/// now is waited on once, and refused when written again meanwhile.
fn settled(file: &fs::File, shown: &Path) -> std::io::Result<Stamp> {
    let recent = |stamp: &Stamp| {
        stamp.modified.and_then(|t| {
            let grain = time_grain(t);
            let age = match std::time::SystemTime::now().duration_since(t) {
                Ok(age) => age,
                Err(ahead) => ahead.duration(),
            };
            (age < grain).then_some(grain)
        })
    };
    let stamp = stamp_of(file)?;
    let Some(grain) = recent(&stamp) else {
        return Ok(stamp);
    };
    std::thread::sleep(grain);
    let again = stamp_of(file)?;
    if again != stamp || recent(&again).is_some() {
        return Err(changed_while_acting(shown));
    }
    Ok(again)
}

/// Opens the file set aside as `aside` in `dir` and hashes it again: its handle and stamp
/// when its bytes are still `hash`, else an error naming `shown`, the copy's path.
fn verify_set_aside(
    dir: &HeldDir,
    aside: &OsStr,
    hash: &[u8; 32],
    shown: &Path,
) -> std::io::Result<(fs::File, Stamp)> {
    let file = dir.open_file(aside)?;
    let stamp = settled(&file, shown)?;
    let mut hasher = blake3::Hasher::new();
    hasher.update_reader(&file)?;
    if hasher.finalize().as_bytes() != hash || stamp_of(&file)? != stamp {
        return Err(changed_while_acting(shown));
    }
    Ok((file, stamp))
}

/// The trash's error as a sentence (its own display is a debug dump).
fn trash_error(e: trash::Error) -> std::io::Error {
    match e {
        #[cfg(all(unix, not(target_os = "macos")))]
        trash::Error::FileSystem { path, source } => std::io::Error::new(
            source.kind(),
            format!("the trash: {}: {source}", crate::path_repr::shown(&path)),
        ),
        trash::Error::Os { description, .. } | trash::Error::Unknown { description } => {
            std::io::Error::other(format!("the trash: {description}"))
        }
        e => std::io::Error::other(format!("the trash: {e:?}")),
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Runs (or, when `apply` is false, describes) `steps`. When applying, the journal is written
/// to `journal_dir` and every step's intent reaches the disk before the step runs; once `stop`
/// is set, the steps not begun are skipped.
/// Steps whose copy is in `held` (the dry run reviewed left them alone) are left alone.
pub fn execute(
    journal_dir: &Path,
    action: &Action,
    steps: &[Step],
    apply: bool,
    held: &std::collections::HashSet<PathBuf>,
    stop: &std::sync::atomic::AtomicBool,
) -> Result<Vec<Outcome>> {
    // Two copies with one relative path under different folders would move to one name.
    let mut targets_taken = std::collections::HashSet::new();
    let mut check = |step: &Step| {
        let checked = check_step(step, action)?;
        match &step.target {
            Some(target) if !targets_taken.insert(target.clone()) => Err(format!(
                "{} is the destination of another copy too",
                crate::path_repr::shown(target)
            )),
            _ => Ok(checked),
        }
    };
    if !apply {
        return Ok(steps
            .iter()
            .map(|s| match check(s) {
                Err(why) => Outcome::Skipped(why),
                Ok(_) => Outcome::WouldDo,
            })
            .collect());
    }
    let _lock = lock_actions(journal_dir)?;
    let started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let path = journal_dir.join(format!("run-{started:024}.jsonl"));
    let mut journal = fs::OpenOptions::new()
        .create_new(true)
        .append(true)
        .open(&path)
        .map_err(|e| Error::io(&path, e))?;
    let mut write = |entry: &Entry| -> Result<()> {
        let mut line = serde_json::to_string(entry).expect("journal entries serialise");
        line.push('\n');
        journal
            .write_all(line.as_bytes())
            .and_then(|()| journal.sync_data())
            .map_err(|e| Error::io(&path, e))
    };
    write(&Entry::Run {
        action: action.name().into(),
        started_at: unix_now(),
    })?;
    let mut outcomes = Vec::with_capacity(steps.len());
    for (i, step) in steps.iter().enumerate() {
        if stop.load(std::sync::atomic::Ordering::Relaxed) {
            outcomes.push(Outcome::Skipped("stopped before this step".into()));
            continue;
        }
        let _held = match hold_step_files(step) {
            Ok(held) => held,
            Err(why) => {
                outcomes.push(Outcome::Skipped(why));
                continue;
            }
        };
        let checked = match check(step) {
            // the dry run left it alone, and so does its apply, whatever changed since
            Ok(_) if held.contains(&step.path) => {
                outcomes.push(Outcome::Skipped(
                    "the dry run left it alone, so this apply does too; run the dry run again to include it".into(),
                ));
                continue;
            }
            Ok(checked) => checked,
            Err(why) => {
                outcomes.push(Outcome::Skipped(why));
                continue;
            }
        };
        let (mode, modified_ns) = match action {
            Action::Hardlink => checked
                .dir
                .open_file(&checked.name)
                .and_then(|f| f.metadata())
                .map_or((None, None), |m| own_look(&m)),
            _ => (None, None),
        };
        let made_dirs = step
            .target
            .as_deref()
            .and_then(Path::parent)
            .map(missing_folders)
            .unwrap_or_default()
            .iter()
            .map(|d| path_hex(d))
            .collect();
        write(&Entry::Intent(Box::new(Intent {
            step: i,
            op: action.name().into(),
            from: path_hex(&step.path),
            to: step.target.as_deref().map(path_hex),
            keeper: path_hex(&step.keeper),
            hash: hex(&step.hash),
            from_dir: Some(path_hex(checked.dir.path())),
            mode,
            modified_ns,
            made_dirs,
            aside: matches!(action, Action::Hardlink | Action::Delete)
                .then(|| hex(checked.aside.as_encoded_bytes())),
            trashed_as: None,
        })))?;
        match run_step(step, action, &checked) {
            Ok(trashed_as) => {
                write(&Entry::Done {
                    step: i,
                    trashed_as: trashed_as.as_deref().map(path_hex),
                })?;
                outcomes.push(Outcome::Done);
            }
            Err(e) => outcomes.push(Outcome::Failed(e.to_string())),
        }
    }
    // a run that changed no file leaves nothing to undo: its journal would only hide the
    // run before it from `undo`
    if !outcomes.contains(&Outcome::Done) {
        drop(journal);
        fs::remove_file(&path).map_err(|e| Error::io(&path, e))?;
    }
    advise_on_this_index(journal_dir, outcomes.iter_mut());
    Ok(outcomes)
}

/// The reasons of steps name what to run next as `lookalike index` and `lookalike undo`:
/// names them as they act on the index whose journal is at `journal_dir`.
fn advise_on_this_index<'a>(journal_dir: &Path, outcomes: impl Iterator<Item = &'a mut Outcome>) {
    let index_dir = journal_dir.parent().unwrap_or(Path::new("."));
    for outcome in outcomes {
        if let Outcome::Skipped(why) | Outcome::Failed(why) = outcome {
            for command in ["index", "undo"] {
                let advised = crate::collection::advised_command(index_dir, command);
                *why = why.replace(&format!("`lookalike {command}`"), &format!("`{advised}`"));
            }
        }
    }
}

/// One reversed (or irreversible) step of an undo.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Reversal {
    #[serde(flatten, serialize_with = "crate::path_repr::path")]
    pub(crate) path: PathBuf,
    pub(crate) op: String,
    #[serde(flatten)]
    pub(crate) outcome: Outcome,
    /// The run had changed this file, and undoing could have given it back.
    #[serde(skip)]
    pub(crate) reversible: bool,
    /// Back as it was before this undo began (put back by an earlier undo or by hand): nothing
    /// was done.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub(crate) already_back: bool,
}

impl Reversal {
    /// A file the run changed that is not back as it was.
    pub(crate) fn not_restored(&self) -> bool {
        self.reversible && self.outcome != Outcome::Done
    }
}

/// What `undo` did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UndoReport {
    /// The journal undone.
    #[serde(flatten, serialize_with = "crate::path_repr::journal")]
    pub(crate) journal: PathBuf,
    pub(crate) action: String,
    pub(crate) steps: Vec<Reversal>,
    /// Numbers (from 1) of the journal's lines that could not be read: a step they held was
    /// not undone.
    pub(crate) damaged_lines: Vec<usize>,
    /// False when a line is damaged, or some step failed, or was blocked by a file in its way and can still be
    /// undone: the journal stays, and `undo` again retries it.
    pub(crate) closed: bool,
}

/// Largest journal `undo` reads: about a million steps.
const MAX_JOURNAL_BYTES: u64 = 1 << 30;

/// The newest journal not yet undone: a `run-*.jsonl` file, as [`execute`] names them; other
/// files in the folder are not lookalike's, and are left alone.
fn last_journal(dir: &Path) -> Result<Option<PathBuf>> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(dir, e)),
    };
    let mut journals: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name().is_some_and(|name| {
                let name = name.as_encoded_bytes();
                name.starts_with(b"run-") && name.ends_with(b".jsonl")
            })
        })
        .collect();
    journals.sort();
    Ok(journals.pop())
}

/// The journal of the last applied run when every run's journal is undone already (renamed
/// `*.undone`), so that `undo` has nothing to do; `None` when one is not, or none is recorded.
pub fn last_undone(journal_dir: &Path) -> Option<PathBuf> {
    let names: Vec<PathBuf> = fs::read_dir(journal_dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension().is_some_and(|x| x == "jsonl")
                || p.to_string_lossy().ends_with(".jsonl.undone")
        })
        .collect();
    if names
        .iter()
        .any(|p| p.extension().is_some_and(|x| x == "jsonl"))
    {
        return None;
    }
    names.into_iter().max()
}

/// Reverses the last applied run: moved files go back, trashed ones are restored from the
/// trash, hard links become separate files again. Deletions cannot be reversed and are listed.
/// The journal is then renamed `*.undone`, so a second undo reaches the run before, unless a
/// step failed or a file in its way blocked a file that can still come back: then it stays, and
/// the next undo tries again.
pub fn undo(journal_dir: &Path) -> Result<Option<UndoReport>> {
    if !journal_dir.is_dir() {
        return Ok(None);
    }
    let _lock = lock_actions(journal_dir)?;
    let Some(path) = last_journal(journal_dir)? else {
        return Ok(None);
    };
    // a journal is a regular file of the run's own writing: anything else (a pipe, a link to a
    // device) is refused before it is opened
    if !fs::symlink_metadata(&path).is_ok_and(|m| m.is_file()) {
        return Err(Error::InvalidInput(format!(
            "{}: not a journal lookalike wrote (not a regular file); move it out of the journal folder",
            crate::path_repr::shown(&path)
        )));
    }
    let bytes = crate::decode::read_file_bounded(&path, MAX_JOURNAL_BYTES, "journal")
        .map_err(|e| Error::io(&path, e))?;
    let text = String::from_utf8_lossy(&bytes);
    let mut action = None;
    let mut intents = Vec::new();
    let mut done = std::collections::HashMap::new();
    let mut damaged_lines = Vec::new();
    // A torn last line (a crash while writing it: no line end) is ignored: its step had not
    // started. Any other line that cannot be read is damaged, and named.
    let torn_at = (!text.ends_with('\n')).then(|| text.lines().count());
    for (n, line) in text.lines().enumerate().map(|(i, l)| (i + 1, l)) {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Entry>(line) {
            Ok(Entry::Run { action: a, .. }) if n == 1 => action = Some(a),
            Ok(Entry::Intent(intent)) => intents.push((n, *intent)),
            Ok(Entry::Done { step, trashed_as }) => {
                done.insert(step, trashed_as);
            }
            Ok(Entry::Run { .. }) | Err(_) if Some(n) != torn_at => damaged_lines.push(n),
            Ok(Entry::Run { .. }) | Err(_) => {}
        }
    }
    let known = ["move", "trash", "hardlink", "delete"];
    let Some(action) = action.filter(|a| known.contains(&a.as_str())) else {
        return Err(Error::InvalidInput(format!(
            "{}: not a journal lookalike can read (its first line, which names the run, cannot be read): nothing was undone; move it out of the journal folder to reach the run before it",
            path.display()
        )));
    };
    let mut steps = Vec::new();
    let mut made = Vec::new();
    for (n, mut intent) in intents.into_iter().rev() {
        made.extend(intent.made_dirs.iter().filter_map(|d| path_of_hex(d)));
        let (Some(from), Some(hash)) = (path_of_hex(&intent.from), hash_of_hex(&intent.hash))
        else {
            damaged_lines.push(n);
            continue;
        };
        let to = intent.to.as_deref().and_then(path_of_hex);
        let keeper = path_of_hex(&intent.keeper).unwrap_or_default();
        let recorded = done.contains_key(&intent.step);
        intent.trashed_as = done
            .get(&intent.step)
            .and_then(Option::as_deref)
            .and_then(path_of_hex);
        let from_dir = intent.from_dir.as_deref().and_then(path_of_hex);
        let op = intent.op.clone();
        // a run killed while it acted may have left its copy set aside
        let set_aside = match (&intent.aside, &from_dir) {
            (Some(aside), Some(dir)) if !recorded => path_of_hex(aside)
                .and_then(|aside| put_back_set_aside(aside.as_os_str(), &from, dir, &keeper)),
            _ => None,
        };
        let was_done = recorded || set_aside.is_none() && done_unrecorded(&intent, &from, &keeper);
        let already_back = was_done && already_back(&intent, &from, to.as_deref(), &keeper, &hash);
        let outcome = match relinked(&from, from_dir.as_deref()) {
            _ if let Some(outcome) = &set_aside => outcome.clone(),
            Some(why) if was_done && op != "delete" => Outcome::Failed(why),
            _ if already_back => Outcome::Done,
            _ => reverse(
                &intent,
                &from,
                from_dir.as_deref(),
                to.as_deref(),
                &keeper,
                &hash,
                was_done,
            ),
        };
        steps.push(Reversal {
            path: from,
            reversible: was_done && op != "delete" || set_aside.is_some(),
            already_back,
            op,
            outcome,
        });
    }
    steps.reverse();
    advise_on_this_index(journal_dir, steps.iter_mut().map(|r| &mut r.outcome));
    remove_made_folders(made);
    damaged_lines.sort_unstable();
    // a failed step (a permission, a full disk, a file in the way) may succeed later, and a
    // damaged line may hide a step: keep the journal
    let closed = damaged_lines.is_empty()
        && !steps
            .iter()
            .any(|r| matches!(r.outcome, Outcome::Failed(_)));
    let journal = if closed {
        let mut undone = path.clone().into_os_string();
        undone.push(".undone");
        fs::rename(&path, &undone).map_err(|e| Error::io(&path, e))?;
        PathBuf::from(undone)
    } else {
        path
    };
    let journal = crate::path_repr::absolute(&journal);
    Ok(Some(UndoReport {
        journal,
        action,
        steps,
        damaged_lines,
        closed,
    }))
}

/// Whether a step the journal does not record as done, whose copy is set aside no more, was
/// done all the same: a run killed after it acted, before it wrote the step done, leaves no
/// file at `from` (a delete, its folder still there) or a hard link to `keeper` there (a hard
/// link). The disk tells it for journals of every version, with a set-aside name or without.
fn done_unrecorded(intent: &Intent, from: &Path, keeper: &Path) -> bool {
    match intent.op.as_str() {
        "delete" => from.parent().is_some_and(Path::is_dir) && from.symlink_metadata().is_err(),
        "hardlink" => same_file(from, keeper),
        _ => false,
    }
}

/// Puts back under its name `from` the copy a run killed while it acted left under the hidden
/// name `aside` in its folder `from_dir`, over the hard link to `keeper` a killed `--hardlink`
/// may have made at `from`; `None` when no copy is set aside there.
fn put_back_set_aside(
    aside: &OsStr,
    from: &Path,
    from_dir: &Path,
    keeper: &Path,
) -> Option<Outcome> {
    let name = from.file_name()?;
    let dir = match HeldDir::open(from_dir, false) {
        Ok(dir) => dir,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => return Some(Outcome::Failed(e.to_string())),
    };
    if !dir.has(aside) {
        return None;
    }
    let put = match dir.entry_id(name) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => dir.rename_new(aside, &dir, name),
        Ok(id) if file_id(keeper) == Some(id) => dir.rename_over(aside, name),
        Ok(_) => {
            return Some(Outcome::Failed(format!(
                "{} exists; left alone: the copy the run set aside is at {}; move one of them away and run `lookalike undo` again",
                crate::path_repr::shown(from),
                crate::path_repr::shown(&from_dir.join(aside))
            )));
        }
        Err(e) => Err(e),
    };
    Some(match put {
        Ok(()) => Outcome::Done,
        Err(e) => Outcome::Failed(e.to_string()),
    })
}

/// Why a file must not be put back at `from`: its folder now leads somewhere else than
/// `from_dir`, where it was (a folder replaced by a link since the run).
fn relinked(from: &Path, from_dir: Option<&Path>) -> Option<String> {
    let (dir, was) = (from.parent()?, from_dir?);
    match resolved_dir(dir) {
        Ok(now) if now == was => None,
        Ok(now) => Some(format!(
            "{} now leads to {} (a symbolic link made since the run), not to {}: left where it is; put the folder back and run `lookalike undo` again",
            crate::path_repr::shown(dir),
            crate::path_repr::shown(&now),
            crate::path_repr::shown(was)
        )),
        Err(e) => Some(format!(
            "cannot read {} ({e})",
            crate::path_repr::shown(dir)
        )),
    }
}

/// Whether the file a done step changed is back as it was (an earlier undo that stopped
/// part-way or was interrupted, or the user, put it back): a moved or trashed file in its place with its
/// content, the mover's destination empty; a hard-linked file separate again, with its content,
/// permissions and date.
fn already_back(
    intent: &Intent,
    from: &Path,
    to: Option<&Path>,
    keeper: &Path,
    hash: &[u8; 32],
) -> bool {
    let back = from.symlink_metadata().is_ok_and(|m| m.is_file())
        && !same_file(from, keeper)
        && file_hash(from).is_ok_and(|h| h == *hash);
    match intent.op.as_str() {
        "move" => back && to.is_some_and(|to| to.symlink_metadata().is_err()),
        "trash" => back,
        "hardlink" => back && link_count(from) <= 1 && has_look(from, intent),
        _ => false,
    }
}

/// Whether `path` has the permissions and date the journal recorded for it.
fn has_look(path: &Path, intent: &Intent) -> bool {
    let Ok(meta) = fs::metadata(path) else {
        return false;
    };
    #[cfg(unix)]
    if let Some(mode) = intent.mode {
        use std::os::unix::fs::PermissionsExt;
        if meta.permissions().mode() & 0o7777 != mode {
            return false;
        }
    }
    match intent.modified_ns {
        Some(ns) => meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .is_some_and(|d| i64::try_from(d.as_nanos()).is_ok_and(|n| n == ns)),
        None => true,
    }
}

fn reverse(
    intent: &Intent,
    from: &Path,
    from_dir: Option<&Path>,
    to: Option<&Path>,
    keeper: &Path,
    hash: &[u8; 32],
    done: bool,
) -> Outcome {
    let occupied = from.symlink_metadata().is_ok();
    // A file back in place with its content (restored by an earlier undo that stopped
    // part-way, or by hand) counts as restored.
    let back = || {
        from.symlink_metadata().is_ok_and(|m| m.is_file())
            && !same_file(from, keeper)
            && file_hash(from).is_ok_and(|h| h == *hash)
    };
    let op = intent.op.as_str();
    match op {
        "move" => {
            let Some(to) = to else {
                return Outcome::Failed("the journal lacks the destination".into());
            };
            if occupied {
                return if !done {
                    Outcome::Skipped("it was never moved".into())
                } else if back() && to.symlink_metadata().is_err() {
                    Outcome::Done
                } else if file_hash(to).is_ok_and(|h| h == *hash) {
                    // the moved file can still come back: the journal stays for a retry
                    Outcome::Failed(format!(
                        "{} exists again; left alone: move it away and run `lookalike undo` again to bring back the moved file ({})",
                        crate::path_repr::shown(from),
                        crate::path_repr::shown(to)
                    ))
                } else {
                    Outcome::Skipped(format!(
                        "{} exists again; left alone (the moved file is at {})",
                        crate::path_repr::shown(from),
                        crate::path_repr::shown(to)
                    ))
                };
            }
            // both folders held open from here: the file hashed is the file moved, and it
            // goes back to the folder it came from, not through a link made since
            let moved = to
                .parent()
                .zip(to.file_name())
                .ok_or_else(|| std::io::Error::other("not a file name"))
                .and_then(|(dir, name)| {
                    // the destination was recorded resolved: a link on its way now is refused
                    let dir = HeldDir::open(dir, false)?;
                    let (h, id) = dir.open_file(name).and_then(hash_and_id)?;
                    Ok((dir, name, h, id))
                });
            match moved {
                Ok((dir, name, h, id)) if h == *hash => {
                    match back_folder(from, from_dir).and_then(|(back, back_name)| {
                        move_file(&dir, name, id, &back, back_name, hash)
                    }) {
                        Ok(()) => Outcome::Done,
                        Err(e) => Outcome::Failed(e.to_string()),
                    }
                }
                Ok(_) => Outcome::Skipped(format!(
                    "{} changed since it was moved",
                    crate::path_repr::shown(to)
                )),
                // Its folder is there but the file is not: it was deleted, and no retry can
                // bring it back. A missing folder may be a disk not mounted: retry later.
                Err(e)
                    if e.kind() == std::io::ErrorKind::NotFound
                        && to.parent().is_some_and(Path::is_dir) =>
                {
                    Outcome::Skipped(format!(
                        "{} is gone from where it was moved: it cannot come back",
                        crate::path_repr::shown(to)
                    ))
                }
                Err(e) => Outcome::Failed(format!("{}: {e}", crate::path_repr::shown(to))),
            }
        }
        "trash" => {
            if occupied {
                if back() {
                    return Outcome::Done;
                }
                return match in_trash(intent, from, hash) {
                    // the trashed file can still come back: the journal stays for a retry
                    InTrash::Found(_) => Outcome::Failed(format!(
                        "{} exists; left alone: move it away and run `lookalike undo` again to bring back the trashed file (still in the trash)",
                        crate::path_repr::shown(from)
                    )),
                    InTrash::Gone(why) => Outcome::Skipped(format!(
                        "{} exists; left alone ({why})",
                        crate::path_repr::shown(from)
                    )),
                    InTrash::NotFound(why) => Outcome::Failed(format!(
                        "{} exists; left alone, and {why}",
                        crate::path_repr::shown(from)
                    )),
                };
            }
            restore_from_trash(intent, from, hash)
        }
        "hardlink" => {
            if !done {
                return Outcome::Skipped("it was never linked".into());
            }
            // The content was the keeper's, byte for byte: a separate copy restores the file,
            // unless the shared content was changed since (through either name).
            let mut source = keeper;
            if occupied && !same_file(from, keeper) {
                // The keeper was replaced (an editor saving by rename), or a file saved here
                // since: one that holds the content still shares it with the other copies
                // linked with it, and is separated from them.
                if !back() {
                    // the kept copy still holds the content: the journal stays for a retry
                    return if file_hash(keeper).is_ok_and(|h| h == *hash) {
                        Outcome::Failed(format!(
                            "{} is no longer a link to {}: a file saved there since is left alone; move it away and run `lookalike undo` again to get the copy back",
                            crate::path_repr::shown(from),
                            crate::path_repr::shown(keeper)
                        ))
                    } else {
                        Outcome::Skipped(format!(
                            "{} is no longer a link to {}: a file saved there since is left alone",
                            crate::path_repr::shown(from),
                            crate::path_repr::shown(keeper)
                        ))
                    };
                }
                // its only name now: separate already, with the keeper's look it shared
                if link_count(from) <= 1 {
                    return match open_regular(from)
                        .and_then(|f| give_look(&f, intent.mode, intent.modified_ns))
                    {
                        Ok(()) => Outcome::Done,
                        Err(e) => Outcome::Failed(e.to_string()),
                    };
                }
                source = from;
            }
            let (dir, name) = match back_folder(from, from_dir) {
                Ok(held) => held,
                Err(e) => return Outcome::Failed(e.to_string()),
            };
            let tmp = temporary_name();
            let copied = (|| {
                let mut copy = dir.create_file(&tmp)?;
                let mut shared = open_regular(source)?;
                copy_into(&mut shared, &mut copy)?;
                // the owner and attributes it shared (a link is made only where they match)
                give_owner_and_attributes(&shared, &copy)?;
                // its own permissions and date, not the keeper's it shared
                give_look(&copy, intent.mode, intent.modified_ns)?;
                copy.sync_all()?;
                let (h, _) = hash_and_id(dir.open_file(&tmp)?)?;
                dir.rename_over(&tmp, name)?;
                Ok::<_, std::io::Error>(h)
            })();
            match copied {
                Ok(h) if h == *hash => Outcome::Done,
                Ok(_) => Outcome::Skipped(format!(
                    "separate again, but not as it was: the content it shared with {} changed after the run, and its own is gone",
                    crate::path_repr::shown(keeper)
                )),
                Err(e) => {
                    let _ = dir.remove(&tmp);
                    Outcome::Failed(e.to_string())
                }
            }
        }
        "delete" if done => Outcome::Skipped("deleted for good: cannot be undone".into()),
        _ => Outcome::Skipped("it was never changed".into()),
    }
}

/// The folder a file of the run goes back to, held open, and its name there: the folder as it
/// was resolved at the run (`from_dir`), or as it resolves now for journals without it. A
/// missing folder is not made again (see [`gone_folder`]).
fn back_folder<'a>(
    from: &'a Path,
    from_dir: Option<&Path>,
) -> std::io::Result<(HeldDir, &'a OsStr)> {
    let (Some(parent), Some(name)) = (from.parent(), from.file_name()) else {
        return Err(std::io::Error::other(format!(
            "{}: not a file name",
            crate::path_repr::shown(from)
        )));
    };
    let dir = match from_dir {
        Some(dir) => dir.to_path_buf(),
        None => resolved_dir(parent)?,
    };
    if let Some(why) = gone_folder(&dir) {
        return Err(std::io::Error::other(why));
    }
    Ok((HeldDir::open(&dir, false)?, name))
}

/// Why nothing can go back into `dir`: it is missing. A run removes no folder, so a folder
/// missing now was deleted, renamed or is on a disk not mounted, and one made in its place
/// would hide the file once that disk is mounted again.
fn gone_folder(dir: &Path) -> Option<String> {
    let top = missing_folders(dir).pop()?;
    let from = if top == dir {
        String::new()
    } else {
        format!("{} is missing: ", crate::path_repr::shown(&top))
    };
    Some(format!(
        "its folder {} is gone ({from}deleted, renamed, or on a disk not mounted): make it exist again and run `lookalike undo` again",
        crate::path_repr::shown(dir)
    ))
}

/// Copies `source`'s bytes and permissions into `copy`, and waits until they are on disk.
fn copy_into(source: &mut fs::File, copy: &mut fs::File) -> std::io::Result<()> {
    let permissions = source.metadata()?.permissions();
    std::io::copy(source, copy)?;
    copy.set_permissions(permissions)?;
    copy.sync_all()
}

/// Where the trash holds a trashed copy, as far as `undo` can tell.
enum InTrash {
    /// There, with the content it was trashed with.
    Found(trash::TrashItem),
    /// Not there, and it cannot come back (the trash was emptied of it): why.
    Gone(String),
    /// Not found where looked, though it may still be in a trash (one on a disk not mounted,
    /// or one the environment no longer names): why; a retry may find it.
    NotFound(String),
}

/// Looks for the copy trashed from `from` with content `hash`: where the journal recorded the
/// trash put it, else (journals of older versions) the newest item from that name in the
/// trash the environment names now.
fn in_trash(intent: &Intent, from: &Path, hash: &[u8; 32]) -> InTrash {
    let Some(info) = &intent.trashed_as else {
        return match trashed_item(from, hash) {
            Ok(Some(item)) => InTrash::Found(item),
            Ok(None) if trash_holds_name(from) => InTrash::Gone(
                "the trash holds files deleted from that name, none with its content: left there"
                    .into(),
            ),
            Ok(None) => InTrash::NotFound(
                "it is not in the trash (if XDG_DATA_HOME or HOME differ from the run's, run `lookalike undo` again with the run's)"
                    .into(),
            ),
            Err(why) => InTrash::NotFound(why),
        };
    };
    let (Some(trash), Some(stem), Some(name), Some(parent)) = (
        info.parent().and_then(Path::parent),
        info.file_stem(),
        from.file_name(),
        from.parent(),
    ) else {
        return InTrash::Gone("the journal's record of it in the trash is not a path".into());
    };
    let file = trash.join("files").join(stem);
    if info.is_file() && file_hash(&file).is_ok_and(|h| h == *hash) {
        return InTrash::Found(trash::TrashItem {
            id: info.clone().into_os_string(),
            name: name.to_os_string(),
            original_parent: parent.to_path_buf(),
            time_deleted: 0,
        });
    }
    if trash.join("files").is_dir() {
        InTrash::Gone(format!(
            "no longer in the trash: {} is gone or holds another file",
            crate::path_repr::shown(&file)
        ))
    } else {
        InTrash::NotFound(format!(
            "the trash it went to, {}, is missing (on a disk not mounted?): make it exist again and run `lookalike undo` again",
            crate::path_repr::shown(trash)
        ))
    }
}

/// Restores the copy trashed from `original` with content `hash` (see [`in_trash`]).
fn restore_from_trash(intent: &Intent, original: &Path, hash: &[u8; 32]) -> Outcome {
    match in_trash(intent, original, hash) {
        InTrash::Found(item) => {
            // the trash would make the missing folders again
            if let Some(why) = original.parent().and_then(gone_folder) {
                return Outcome::Failed(why);
            }
            match trash::os_limited::restore_all([item]) {
                Ok(()) => Outcome::Done,
                Err(e) => Outcome::Failed(format!("cannot restore from the trash: {e}")),
            }
        }
        InTrash::Gone(why) => Outcome::Skipped(why),
        InTrash::NotFound(why) => Outcome::Failed(why),
    }
}

/// The newest trashed item from `original` whose content is `hash`; an error says why the
/// trash could not be read.
fn trashed_item(
    original: &Path,
    hash: &[u8; 32],
) -> std::result::Result<Option<trash::TrashItem>, String> {
    let items = trash::os_limited::list().map_err(|e| format!("cannot read the trash: {e}"))?;
    let mut named: Vec<trash::TrashItem> = items
        .into_iter()
        .filter(|item| item.original_path() == original)
        .collect();
    named.sort_by_key(|item| std::cmp::Reverse(item.time_deleted));
    Ok(named.into_iter().find(|item| match trashed_file(item) {
        Some(file) => file_hash(&file).is_ok_and(|h| h == *hash),
        // where the trash's layout is not the freedesktop one, the newest item by that name
        None => true,
    }))
}

/// True when the trash holds some item deleted from `original`.
fn trash_holds_name(original: &Path) -> bool {
    trash::os_limited::list()
        .is_ok_and(|items| items.iter().any(|item| item.original_path() == original))
}

/// Where a trashed item's content lies: in a freedesktop trash, `files/NAME` beside the
/// `info/NAME.trashinfo` that is the item's id.
fn trashed_file(item: &trash::TrashItem) -> Option<PathBuf> {
    if !cfg!(target_os = "linux") {
        return None;
    }
    let info = Path::new(&item.id);
    if info.extension()? != "trashinfo" {
        return None;
    }
    Some(
        info.parent()?
            .parent()?
            .join("files")
            .join(info.file_stem()?),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    /// Moments inside a step at which a test writes as another program would.
    #[derive(Debug, Clone, Copy, PartialEq)]
    pub(super) enum Moment {
        /// The copy was checked and its intent journaled; nothing acted yet.
        Checked,
        /// The copy was set aside and hashed again; the step acts next.
        Verified,
        /// A hard link to the keeper took the copy's name; the copy set aside is removed next.
        Linked,
        /// The copy set aside was removed; the journal records the step done next.
        Removed,
        /// A move across disks copied the file and checked the copy; the file is removed next.
        Copied,
    }

    type Hook = Box<dyn FnMut(Moment)>;

    thread_local! {
        static HOOK: RefCell<Option<Hook>> = const { RefCell::new(None) };
        /// The cache folder of the user's lock, kept apart from other runs on the machine.
        pub(super) static LOCK_CACHE: RefCell<Option<PathBuf>> = const { RefCell::new(None) };
    }

    pub(super) fn at_moment(moment: Moment) {
        let hook = HOOK.with(|h| h.borrow_mut().take());
        if let Some(mut hook) = hook {
            hook(moment);
            HOOK.with(|h| *h.borrow_mut() = Some(hook));
        }
    }

    fn on_moment(hook: impl FnMut(Moment) + 'static) {
        HOOK.with(|h| *h.borrow_mut() = Some(Box::new(hook)));
    }

    /// Runs `step` with `hook` called at each moment inside it: the step must fail, as its copy
    /// changed while the run acted.
    fn refused_as_changed(
        step: &Step,
        action: &Action,
        checked: &Checked,
        hook: impl FnMut(Moment) + 'static,
    ) {
        on_moment(hook);
        let acted = run_step(step, action, checked);
        on_moment(|_| {});
        let err = acted.expect_err("a changed copy is not acted on");
        assert!(
            err.to_string().contains("changed while the run acted"),
            "{action:?}: {err}"
        );
    }

    /// The copy of `step` holds its edit under its name, apart from the kept copy, which keeps
    /// its bytes, and `root` holds no other name.
    fn assert_edit_kept(step: &Step, root: &Path, action: &Action) {
        assert_eq!(fs::read(&step.path).unwrap(), EDITED, "{action:?}");
        assert!(!same_file(&step.path, &step.keeper), "{action:?}");
        assert_eq!(fs::read(&step.keeper).unwrap(), BYTES, "{action:?}");
        assert_eq!(names_in(root), ["copy0.jpg", "keep.jpg"], "{action:?}");
    }

    const BYTES: &[u8] = b"the same photo, byte for byte";
    const EDITED: &[u8] = b"the photo as edited while the run acts";

    /// A folder with a kept photo and `copies` byte-identical copies, dated in 2020 as indexed
    /// photos are, and the steps that act on the copies.
    fn identical_copies(copies: usize) -> (tempfile::TempDir, PathBuf, Vec<Step>) {
        let tmp = tempfile::tempdir().unwrap();
        let root = fs::canonicalize(tmp.path()).unwrap().join("photos");
        fs::create_dir(&root).unwrap();
        let hash = *blake3::hash(BYTES).as_bytes();
        let keeper = root.join("keep.jpg");
        fs::write(&keeper, BYTES).unwrap();
        let mut steps = Vec::new();
        for i in 0..copies {
            let path = root.join(format!("copy{i}.jpg"));
            fs::write(&path, BYTES).unwrap();
            let old = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_577_836_800);
            let file = fs::File::options().write(true).open(&path).unwrap();
            file.set_times(fs::FileTimes::new().set_modified(old))
                .unwrap();
            steps.push(Step {
                path,
                hash,
                keeper: keeper.clone(),
                keeper_hash: hash,
                root: root.clone(),
                keeper_root: root.clone(),
                target: None,
                frees: BYTES.len() as u64,
            });
        }
        (tmp, root, steps)
    }

    /// Rewrites `path` in place, as an editor saving over a file does: same file, new bytes.
    fn rewrite_in_place(path: &Path) {
        let mut f = fs::File::options()
            .write(true)
            .truncate(true)
            .open(path)
            .unwrap();
        f.write_all(EDITED).unwrap();
    }

    fn names_in(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    /// A copy rewritten in place after it was checked and before the step acts keeps its new
    /// bytes under its name: neither linked over nor deleted, and no temporary name is left.
    #[test]
    fn a_copy_rewritten_after_its_check_is_left_alone() {
        for action in [Action::Hardlink, Action::Delete] {
            let (_tmp, root, steps) = identical_copies(1);
            let step = &steps[0];
            let checked = check_step(step, &action).unwrap();
            let path = step.path.clone();
            refused_as_changed(step, &action, &checked, move |m| {
                if m == Moment::Checked {
                    rewrite_in_place(&path);
                }
            });
            assert_edit_kept(step, &root, &action);
        }
    }

    /// A copy written through a handle opened before the run, after it was set aside and
    /// hashed again, is caught by its size and times and goes back under its name, for a hard
    /// link after the link took the name.
    #[test]
    fn a_copy_written_after_its_second_hash_goes_back() {
        use std::io::Seek;
        for action in [Action::Hardlink, Action::Delete] {
            let (_tmp, root, steps) = identical_copies(1);
            let step = &steps[0];
            let checked = check_step(step, &action).unwrap();
            let mut open = fs::File::options().write(true).open(&step.path).unwrap();
            refused_as_changed(step, &action, &checked, move |m| {
                if m == Moment::Verified {
                    open.set_len(0).unwrap();
                    open.rewind().unwrap();
                    open.write_all(EDITED).unwrap();
                }
            });
            assert_edit_kept(step, &root, &action);
        }
    }

    /// A file rewritten in place while a move across disks copied it stays where it was, with
    /// its new bytes, and the copy is removed (when the temporary folder and /dev/shm are on two
    /// disks).
    #[cfg(target_os = "linux")]
    #[test]
    fn a_file_rewritten_while_moved_across_disks_stays() {
        let Ok(shm) = tempfile::tempdir_in("/dev/shm") else {
            return;
        };
        let (_tmp, root, mut steps) = identical_copies(1);
        if file_id(shm.path()).map(|i| i.0) == file_id(&root).map(|i| i.0) {
            return;
        }
        let dest = fs::canonicalize(shm.path()).unwrap();
        let action = Action::MoveTo(dest.clone());
        steps[0].target = Some(dest.join("copy0.jpg"));
        let step = &steps[0];
        let checked = check_step(step, &action).unwrap();
        let path = step.path.clone();
        refused_as_changed(step, &action, &checked, move |m| {
            if m == Moment::Copied {
                rewrite_in_place(&path);
            }
        });
        assert_eq!(fs::read(&step.path).unwrap(), EDITED);
        assert_eq!(names_in(&root), ["copy0.jpg", "keep.jpg"]);
        assert!(names_in(&dest).is_empty(), "{:?}", names_in(&dest));
    }

    /// An applied run whose copy was rewritten while it acted reports that step failed, does
    /// the others, and its undo gives back only what it did, never the old bytes over the new.
    #[test]
    fn an_applied_run_and_its_undo_keep_a_copy_rewritten_while_it_acted() {
        for action in [Action::Hardlink, Action::Delete] {
            let (tmp, root, steps) = identical_copies(2);
            LOCK_CACHE.with(|c| *c.borrow_mut() = Some(tmp.path().join("cache")));
            let journal = tmp.path().join("index").join("journal");
            let edited = steps[0].path.clone();
            let target = edited.clone();
            on_moment(move |m| {
                if m == Moment::Checked && target.exists() {
                    rewrite_in_place(&target);
                }
            });
            let stop = std::sync::atomic::AtomicBool::new(false);
            let ran = execute(&journal, &action, &steps, true, &Default::default(), &stop);
            on_moment(|_| {});
            let outcomes = ran.unwrap();
            assert!(
                matches!(outcomes[0], Outcome::Failed(_)),
                "{action:?}: {outcomes:?}"
            );
            assert_eq!(outcomes[1], Outcome::Done, "{action:?}");
            assert_eq!(fs::read(&edited).unwrap(), EDITED, "{action:?}");
            let report = undo(&journal).unwrap().expect("a run to undo");
            assert_eq!(fs::read(&edited).unwrap(), EDITED, "{action:?}: {report:?}");
            assert!(!same_file(&edited, &steps[0].keeper), "{action:?}");
            let first = &report.steps[0];
            assert_ne!(first.outcome, Outcome::Done, "{action:?}: {report:?}");
            assert!(!first.not_restored(), "{action:?}: {report:?}");
            let left = names_in(&root);
            match action {
                Action::Hardlink => assert_eq!(left, ["copy0.jpg", "copy1.jpg", "keep.jpg"]),
                _ => assert_eq!(left, ["copy0.jpg", "keep.jpg"]),
            }
            LOCK_CACHE.with(|c| *c.borrow_mut() = None);
        }
    }

    /// Two runs at once (other users, other indexes: no shared run lock), each keeping the
    /// file the other deletes, never delete both: a step holds both files from its check to its
    /// end, so the second run finds its kept copy gone and leaves its copy alone.
    #[test]
    fn two_runs_keeping_each_others_copy_never_delete_both() {
        let (tmp, _root, steps) = identical_copies(1);
        let first = steps[0].clone();
        let mut second = first.clone();
        std::mem::swap(&mut second.path, &mut second.keeper);
        LOCK_CACHE.with(|c| *c.borrow_mut() = Some(tmp.path().join("cache-a")));
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        let other = std::sync::Arc::new(std::sync::Mutex::new(None));
        let (other_run, base) = (other.clone(), tmp.path().to_path_buf());
        on_moment(move |m| {
            if m != Moment::Checked || other_run.lock().unwrap().is_some() {
                return;
            }
            let (second, base, done_tx) = (second.clone(), base.clone(), done_tx.clone());
            *other_run.lock().unwrap() = Some(std::thread::spawn(move || {
                LOCK_CACHE.with(|c| *c.borrow_mut() = Some(base.join("cache-b")));
                let stop = std::sync::atomic::AtomicBool::new(false);
                let journal = base.join("index-b").join("journal");
                let ran = execute(
                    &journal,
                    &Action::Delete,
                    &[second],
                    true,
                    &Default::default(),
                    &stop,
                );
                let _ = done_tx.send(());
                ran.unwrap()
            }));
            // the other run goes as far as it can before this one acts
            let _ = done_rx.recv_timeout(std::time::Duration::from_secs(2));
        });
        let stop = std::sync::atomic::AtomicBool::new(false);
        let journal = tmp.path().join("index-a").join("journal");
        let ran = execute(
            &journal,
            &Action::Delete,
            std::slice::from_ref(&first),
            true,
            &Default::default(),
            &stop,
        );
        on_moment(|_| {});
        LOCK_CACHE.with(|c| *c.borrow_mut() = None);
        let second_outcomes = other.lock().unwrap().take().unwrap().join().unwrap();
        let left: Vec<_> = [&first.path, &first.keeper]
            .into_iter()
            .filter(|p| p.exists())
            .collect();
        assert_eq!(left.len(), 1, "{ran:?} {second_outcomes:?}");
    }

    /// A run killed right after it set a copy aside (a panic stands for the kill), for a hard
    /// link before or after the link took the copy's name, leaves the copy under a hidden
    /// name; `undo` puts it back under its own name, with its bytes, apart from the kept copy.
    #[test]
    fn undo_puts_back_a_copy_a_killed_run_left_set_aside() {
        for (action, moment) in [
            (Action::Delete, Moment::Verified),
            (Action::Hardlink, Moment::Verified),
            (Action::Hardlink, Moment::Linked),
        ] {
            let (tmp, root, steps) = identical_copies(1);
            LOCK_CACHE.with(|c| *c.borrow_mut() = Some(tmp.path().join("cache")));
            let journal = tmp.path().join("index").join("journal");
            on_moment(move |m| {
                if m == moment {
                    panic!("killed at {m:?}");
                }
            });
            let stop = std::sync::atomic::AtomicBool::new(false);
            let killed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                execute(&journal, &action, &steps, true, &Default::default(), &stop)
            }));
            on_moment(|_| {});
            assert!(killed.is_err(), "{action:?} {moment:?}");
            let aside = names_in(&root);
            assert!(
                aside.iter().any(|n| n.starts_with(".lookalike-")),
                "{action:?} {moment:?}: {aside:?}"
            );
            let report = undo(&journal).unwrap().expect("a run to undo");
            let copy = &steps[0].path;
            assert_eq!(
                fs::read(copy).ok().as_deref(),
                Some(BYTES),
                "{action:?} {moment:?}: {:?}; {report:?}",
                names_in(&root)
            );
            assert!(!same_file(copy, &steps[0].keeper), "{action:?} {moment:?}");
            assert_eq!(names_in(&root), ["copy0.jpg", "keep.jpg"], "{action:?}");
            assert_eq!(report.steps[0].outcome, Outcome::Done, "{report:?}");
            assert!(report.closed, "{report:?}");
            LOCK_CACHE.with(|c| *c.borrow_mut() = None);
        }
    }

    /// A run killed after it removed the copy it set aside, before the journal said the step
    /// was done: `undo` tells a delete as done (it cannot be undone), not as never changed, and
    /// separates a hard link from the kept copy again.
    #[test]
    fn undo_tells_a_step_a_killed_run_did_but_did_not_record() {
        for action in [Action::Delete, Action::Hardlink] {
            let (tmp, root, steps) = identical_copies(1);
            LOCK_CACHE.with(|c| *c.borrow_mut() = Some(tmp.path().join("cache")));
            let journal = tmp.path().join("index").join("journal");
            on_moment(move |m| {
                if m == Moment::Removed {
                    panic!("killed at {m:?}");
                }
            });
            let stop = std::sync::atomic::AtomicBool::new(false);
            let killed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                execute(&journal, &action, &steps, true, &Default::default(), &stop)
            }));
            on_moment(|_| {});
            assert!(killed.is_err(), "{action:?}");
            let report = undo(&journal).unwrap().expect("a run to undo");
            let step = &report.steps[0];
            match action {
                Action::Delete => {
                    assert_eq!(names_in(&root), ["keep.jpg"]);
                    assert_eq!(
                        step.outcome,
                        Outcome::Skipped("deleted for good: cannot be undone".into()),
                        "left: {step:?}"
                    );
                    assert!(!step.reversible && !step.not_restored(), "{step:?}");
                }
                _ => {
                    assert_eq!(step.outcome, Outcome::Done, "left: {step:?}");
                    assert!(step.reversible, "{step:?}");
                    assert_eq!(fs::read(&steps[0].path).unwrap(), BYTES);
                    assert!(!same_file(&steps[0].path, &steps[0].keeper));
                    assert_eq!(names_in(&root), ["copy0.jpg", "keep.jpg"]);
                }
            }
            assert!(report.closed, "{report:?}");
            LOCK_CACHE.with(|c| *c.borrow_mut() = None);
        }
    }

    /// No file can be made on /proc or /sys, by root either (whom access(2) lets write there);
    /// a folder on a disk is writable.
    #[cfg(target_os = "linux")]
    #[test]
    fn kernel_file_systems_are_not_writable_folders() {
        for (dir, kind) in [("/proc", "proc"), ("/sys", "sysfs")] {
            let dir = Path::new(dir);
            assert!(!folder_writable(dir), "{}", dir.display());
            let why = holds_no_new_files(dir).unwrap_or_default();
            assert!(why.contains(kind), "{}: {why}", dir.display());
        }
        let tmp = tempfile::tempdir().unwrap();
        assert!(folder_writable(tmp.path()));
        assert_eq!(holds_no_new_files(tmp.path()), None);
    }

    /// A move target reached by another name than its path (a link here; a bind mount keeps no
    /// link to resolve) is refused by identity: inside an indexed folder, holding one, or inside
    /// the index folder.
    #[test]
    fn a_move_target_is_compared_with_the_indexed_folders_by_identity() {
        let tmp = tempfile::tempdir().unwrap();
        let top = tmp.path().canonicalize().unwrap();
        let (outer, index) = (top.join("outer"), top.join("idx"));
        let photos = outer.join("photos");
        fs::create_dir_all(&photos).unwrap();
        fs::create_dir(&index).unwrap();
        for (link, to) in [
            ("alias", &photos),
            ("outer-alias", &outer),
            ("idx-alias", &index),
        ] {
            std::os::unix::fs::symlink(to, top.join(link)).unwrap();
        }
        let check = |dest: &Path| {
            check_move_target(dest, &index, &[], [photos.as_path()], false)
                .err()
                .map(|e| e.to_string())
        };
        for (dest, says) in [
            (top.join("alias/dupes"), "overlaps the indexed folder"),
            (top.join("outer-alias"), "overlaps the indexed folder"),
            (top.join("idx-alias/dupes"), "overlaps the index folder"),
        ] {
            let refused = check(&dest).unwrap_or_default();
            assert!(refused.contains(says), "{}: {refused:?}", dest.display());
        }
        assert_eq!(check(&top.join("dupes")), None);
        assert_eq!(check(&outer.join("dupes")), None);
    }
}
