//! Globs matched in any letter case, for every Unicode letter: the pattern and each path are
//! folded alike before matching, so `**/CAFÉ*` takes `café.png` as `*.jpg` takes `IMG_1.JPG`.
//! `--include`, `--exclude` and `--keep match:` all match through here.

use std::borrow::Cow;
use std::path::Path;

use globset::{GlobBuilder, GlobSetBuilder};

/// One letter in the form its case variants share: lower case, with letters that have two
/// lower forms (`ς` and `σ`, `ſ` and `s`) brought to one. A letter whose other case is more
/// than one letter (`ß`, `İ`) stays as it is.
fn fold_char(c: char) -> char {
    fn single(mut it: impl Iterator<Item = char>) -> Option<char> {
        let first = it.next()?;
        it.next().is_none().then_some(first)
    }
    let lower = single(c.to_lowercase()).unwrap_or(c);
    single(lower.to_uppercase())
        .and_then(|upper| single(upper.to_lowercase()))
        .unwrap_or(lower)
}

/// `text` with every letter folded ([`fold_char`]).
pub(crate) fn fold(text: &str) -> String {
    text.chars().map(fold_char).collect()
}

/// `path` with every letter folded; bytes that are not UTF-8 are kept as they are.
fn fold_path(path: &Path) -> Cow<'_, Path> {
    if let Some(text) = path.to_str() {
        if text.chars().all(|c| fold_char(c) == c) {
            return Cow::Borrowed(path);
        }
        return Cow::Owned(fold(text).into());
    }
    #[cfg(unix)]
    {
        use std::os::unix::ffi::{OsStrExt, OsStringExt};
        let mut out = Vec::new();
        for chunk in path.as_os_str().as_bytes().utf8_chunks() {
            out.extend_from_slice(fold(chunk.valid()).as_bytes());
            out.extend_from_slice(chunk.invalid());
        }
        Cow::Owned(std::ffi::OsString::from_vec(out).into())
    }
    #[cfg(not(unix))]
    Cow::Borrowed(path)
}

/// A glob built to match folded paths.
fn build(pattern: &str) -> Result<globset::Glob, globset::Error> {
    GlobBuilder::new(&fold(pattern))
        .case_insensitive(true)
        .build()
}

/// One glob, matched in any letter case.
#[derive(Debug, Clone)]
pub struct Glob(globset::GlobMatcher);

impl Glob {
    /// The glob of `pattern`; the error says why it is not one.
    pub fn new(pattern: &str) -> Result<Glob, globset::Error> {
        Ok(Glob(build(pattern)?.compile_matcher()))
    }

    /// True when `path` matches, in any letter case.
    pub fn is_match(&self, path: &Path) -> bool {
        self.0.is_match(fold_path(path))
    }
}

/// Globs matched together, each in any letter case.
#[derive(Debug, Clone)]
pub(crate) struct GlobSet(globset::GlobSet);

impl GlobSet {
    /// The set of `patterns`; the error names the first that is not a glob.
    pub(crate) fn new(patterns: &[String]) -> Result<GlobSet, (String, globset::Error)> {
        let mut set = GlobSetBuilder::new();
        for p in patterns {
            set.add(build(p).map_err(|e| (p.clone(), e))?);
        }
        set.build()
            .map(GlobSet)
            .map_err(|e| (patterns.join(", "), e))
    }

    /// True when `path` matches one of the globs, in any letter case.
    pub(crate) fn is_match(&self, path: &Path) -> bool {
        self.0.is_match(fold_path(path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_letter_matches_in_any_case() {
        let cases = [
            ("**/CAFÉ*", "g/café.png"),
            ("**/café*", "g/CAFÉ.PNG"),
            ("**/éTé/**", "km/Été/a.jpg"),
            ("*.jpg", "IMG_1.JPG"),
            ("ΣΟΦΊΑ/*", "σοφία/x.png"),
            ("**/όλος", "a/ΌΛΟΣ"),
            ("**/όλος", "a/όλοσ"),
            ("straẞe/*", "STRAßE/x.png"),
            ("ДОМ/*.png", "дом/a.PNG"),
            ("[A-Z]*.png", "b.PNG"),
        ];
        for (pattern, path) in cases {
            assert!(
                Glob::new(pattern).unwrap().is_match(Path::new(path)),
                "{pattern} {path}"
            );
            assert!(
                GlobSet::new(&[pattern.to_string()])
                    .unwrap()
                    .is_match(Path::new(path)),
                "{pattern} {path}"
            );
        }
        for (pattern, path) in [("**/CAFÉ*", "g/cafe.png"), ("дом/*", "дым/a.png")] {
            assert!(!Glob::new(pattern).unwrap().is_match(Path::new(path)));
        }
    }

    #[cfg(unix)]
    #[test]
    fn a_name_not_utf8_still_matches_by_its_letters() {
        use std::os::unix::ffi::OsStrExt;
        let bytes = [&b"\xff"[..], "ÉTÉ/a.JPG".as_bytes()].concat();
        let path = Path::new(std::ffi::OsStr::from_bytes(&bytes));
        assert!(Glob::new("*été/*.jpg").unwrap().is_match(path));
        assert!(!Glob::new("*ete/*.jpg").unwrap().is_match(path));
    }
}
