//! Where the desktop trash lies, as the freedesktop trash and base-directory specs place it:
//! the user's home trash, and the trash folders at the top of other disks.

use std::ffi::OsStr;
use std::path::PathBuf;

/// An environment variable's value as a folder: set, not empty, and absolute. The
/// base-directory spec has a relative path ignored.
fn absolute_var(name: &str) -> Option<PathBuf> {
    std::env::var_os(name)
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
}

/// The user's home trash: `$XDG_DATA_HOME/Trash`, else `$HOME/.local/share/Trash`, a relative
/// value of either ignored as unset.
pub(crate) fn home_trash() -> Option<PathBuf> {
    absolute_var("XDG_DATA_HOME")
        .map(|data| data.join("Trash"))
        .or_else(|| absolute_var("HOME").map(|home| home.join(".local/share/Trash")))
}

/// The variable the `trash` crate would take a relative path from (it does not ignore one as
/// the spec says), with its value: the trash would then be made under the working folder.
pub(crate) fn relative_trash_var() -> Option<(&'static str, PathBuf)> {
    let set = |name: &str| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    match set("XDG_DATA_HOME") {
        Some(data) => (!data.is_absolute()).then_some(("XDG_DATA_HOME", data)),
        None => set("HOME")
            .filter(|home| !home.is_absolute())
            .map(|home| ("HOME", home)),
    }
}

/// The home trashes a walk leaves out: the one in use, and the default one under `$HOME`
/// when `XDG_DATA_HOME` moves it elsewhere (another desktop session may still use it).
pub(crate) fn home_trashes() -> Vec<PathBuf> {
    let mut trashes: Vec<PathBuf> = home_trash().into_iter().collect();
    if let Some(default) = absolute_var("HOME").map(|home| home.join(".local/share/Trash"))
        && !trashes.contains(&default)
    {
        trashes.push(default);
    }
    trashes
}

/// True for the name of a trash folder at the top of a disk: `.Trash` (which holds a
/// `.Trash/UID` folder for each user) or `.Trash-UID`.
pub(crate) fn is_top_dir_trash(name: &OsStr) -> bool {
    let name = name.as_encoded_bytes();
    name == b".Trash"
        || name
            .strip_prefix(b".Trash-")
            .is_some_and(|uid| !uid.is_empty() && uid.iter().all(u8::is_ascii_digit))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_dir_trash_names_are_those_of_the_spec() {
        for name in [".Trash", ".Trash-1000", ".Trash-0"] {
            assert!(is_top_dir_trash(OsStr::new(name)), "{name}");
        }
        for name in [".Trash-", ".Trash-me", "Trash", ".trash", ".Trash-1000x"] {
            assert!(!is_top_dir_trash(OsStr::new(name)), "{name}");
        }
    }
}
