//! Globs matched one character at a time, in any letter case, for every Unicode letter: the
//! pattern and each path are compared in NFC and case-folded alike, so `**/CAFÉ*` takes
//! `café.png` (written either way) as `*.jpg` takes `IMG_1.JPG`, and `?` or `[é]` match `é`.
//! `--include`, `--exclude` and `--keep match:` all match through here.

use std::borrow::Cow;
use std::fmt;
use std::path::Path;

use globset::GlobBuilder;
use regex::{Regex, RegexBuilder, RegexSet, RegexSetBuilder};
use unicode_normalization::{IsNormalized, UnicodeNormalization, is_nfc_quick};

/// Why a pattern is not a glob; the caller names the pattern.
#[derive(Debug, Clone)]
pub struct GlobError(String);

impl fmt::Display for GlobError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for GlobError {}

/// `text` in NFC.
fn nfc(text: Cow<'_, str>) -> Cow<'_, str> {
    if is_nfc_quick(text.chars()) == IsNormalized::Yes {
        text
    } else {
        Cow::Owned(text.nfc().collect())
    }
}

/// `path` as the text a glob is matched against: in NFC, each run of bytes that is not UTF-8
/// one U+FFFD, so `?` takes it as one character and `*` passes over it.
fn text_of(path: &Path) -> Cow<'_, str> {
    nfc(path.to_string_lossy())
}

/// The regex of `pattern` that matches one character where globset's matches one byte.
/// globset parses the glob (its `?`, `*`, `**`, `[...]`, `{a,b}` and `\` escapes) and writes
/// a byte regex, each character past ASCII as its UTF-8 bytes (`\xc3\xa9`); those are written
/// back as characters and the regex read in Unicode mode, case-insensitive by Unicode's simple
/// case folding (`Σ`, `σ` and `ς` alike).
fn regex_of(pattern: &str) -> Result<String, GlobError> {
    let pattern = nfc(Cow::Borrowed(pattern));
    let glob = GlobBuilder::new(&pattern)
        .case_insensitive(true)
        .build()
        .map_err(|e| GlobError(e.kind().to_string()))?;
    let odd = || {
        GlobError(format!(
            "globset wrote a regex this version cannot read: {}",
            glob.regex()
        ))
    };
    let bytes_regex = glob.regex().strip_prefix("(?-u)").ok_or_else(odd)?;
    let mut out = String::with_capacity(bytes_regex.len());
    let mut utf8 = Vec::new();
    let mut rest = bytes_regex;
    while !rest.is_empty() {
        // a byte past ASCII, `\xNN`; any other escape is two characters kept together
        let byte = rest
            .strip_prefix("\\x")
            .and_then(|r| r.get(..2))
            .and_then(|h| u8::from_str_radix(h, 16).ok())
            .filter(|b| *b >= 0x80);
        if let Some(b) = byte {
            utf8.push(b);
            rest = &rest[4..];
            continue;
        }
        if !utf8.is_empty() {
            let text = std::str::from_utf8(&utf8).map_err(|_| odd())?;
            for c in text.chars() {
                use fmt::Write as _;
                let _ = write!(out, "\\x{{{:x}}}", c as u32);
            }
            utf8.clear();
        }
        let mut chars = rest.chars();
        let c = chars.next().unwrap_or_default();
        out.push(c);
        if c == '\\'
            && let Some(next) = chars.next()
        {
            out.push(next);
        }
        rest = chars.as_str();
    }
    if !utf8.is_empty() {
        return Err(odd());
    }
    Ok(out)
}

/// A regex of `pattern`'s, `.` taking a line break too, as globset's does.
fn compile(pattern: &str) -> Result<Regex, GlobError> {
    RegexBuilder::new(&regex_of(pattern)?)
        .dot_matches_new_line(true)
        .build()
        .map_err(|e| GlobError(e.to_string()))
}

/// One glob, matched in any letter case.
#[derive(Debug, Clone)]
pub struct Glob(Regex);

impl Glob {
    /// The glob of `pattern`; the error says why it is not one.
    pub fn new(pattern: &str) -> Result<Glob, GlobError> {
        compile(pattern).map(Glob)
    }

    /// True when `path` matches, in any letter case.
    pub fn is_match(&self, path: &Path) -> bool {
        self.0.is_match(&text_of(path))
    }
}

/// Globs matched together, each in any letter case.
#[derive(Debug, Clone)]
pub(crate) struct GlobSet(RegexSet);

impl GlobSet {
    /// The set of `patterns`; the error gives the pattern at fault (all of them when the set
    /// as a whole is refused) apart from the reason.
    pub(crate) fn new(patterns: &[String]) -> Result<GlobSet, (String, GlobError)> {
        let mut regexes = Vec::with_capacity(patterns.len());
        for p in patterns {
            regexes.push(regex_of(p).map_err(|e| (p.clone(), e))?);
        }
        RegexSetBuilder::new(regexes)
            .dot_matches_new_line(true)
            .build()
            .map(GlobSet)
            .map_err(|e| {
                let all = patterns.join(", ");
                (all, GlobError(e.to_string()))
            })
    }

    /// True when `path` matches one of the globs, in any letter case.
    pub(crate) fn is_match(&self, path: &Path) -> bool {
        self.0.is_match(&text_of(path))
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

    fn matches(pattern: &str, path: &str) -> bool {
        let one = Glob::new(pattern).unwrap().is_match(Path::new(path));
        let set = GlobSet::new(&[pattern.to_string()])
            .unwrap()
            .is_match(Path::new(path));
        assert_eq!(one, set, "{pattern} {path}");
        one
    }

    #[test]
    fn a_wildcard_or_class_takes_one_character_in_either_normal_form() {
        let (nfc, nfd) = ("caf\u{e9}.png", "cafe\u{301}.png");
        for (pattern, path) in [
            ("caf?.png", nfc),
            ("caf?.png", nfd),
            ("caf[\u{e9}].png", nfc),
            ("caf[e\u{301}].png", nfc),
            ("caf[\u{c9}].png", nfd),
            ("caf[!e].png", nfc),
            ("caf[\u{e0}-\u{ff}].png", "CAF\u{c9}.PNG"),
            ("**/?t?/*", "km/\u{c9}t\u{c9}/a.jpg"),
            ("*/\u{f6}l.png", "d/o\u{308}l.png"),
            ("*/o\u{308}l.png", "d/\u{f6}l.png"),
            (
                "\u{d55c}?.jpg",
                "\u{1112}\u{1161}\u{11ab}\u{1100}\u{1161}.jpg",
            ),
        ] {
            assert!(matches(pattern, path), "{pattern} {path}");
        }
        for (pattern, path) in [
            ("caf??.png", nfc),
            ("caf??.png", nfd),
            ("caf[e].png", nfd),
            ("caf[!\u{e9}].png", nfd),
        ] {
            assert!(!matches(pattern, path), "{pattern} {path}");
        }
    }

    #[test]
    fn a_range_means_what_it_says_in_any_case_or_is_refused_by_name() {
        for path in ["Zx.png", "zx.png", "_x.png", "`x.png", "ax.png", "Ax.png"] {
            assert!(matches("[Z-a]x.png", path), "{path}");
        }
        for path in ["bx.png", "Yx.png", "0x.png"] {
            assert!(!matches("[Z-a]x.png", path), "{path}");
        }
        assert!(matches("[A-Z]*.png", "b.PNG"));
        assert!(matches("[a-z]*.png", "B.png"));
        // the reason alone: the caller names the pattern, once
        let e = Glob::new("[a-Z]*.png").unwrap_err().to_string();
        assert_eq!(e, "invalid range; 'a' > 'Z'");
        let (p, e) = GlobSet::new(&["*.jpg".into(), "[z-a]".into()]).unwrap_err();
        assert_eq!(p, "[z-a]");
        assert_eq!(e.to_string(), "invalid range; 'z' > 'a'");
        let e = Glob::new("{a,b").unwrap_err().to_string();
        assert!(
            !e.contains("{a,b") && e.contains("unclosed alternate"),
            "{e}"
        );
    }

    #[test]
    fn escapes_and_alternates_keep_their_meaning() {
        assert!(matches("a\\?b", "a?b"));
        assert!(!matches("a\\?b", "axb"));
        assert!(matches("*.{jpg,PNG}", "x.png"));
        assert!(matches("*.{jpg,\u{e9}}", "x.\u{c9}"));
        assert!(matches("x\\\\x80?", "x\\x80\u{e9}"));
        assert!(!matches("x\\\\x80?", "xx80\u{e9}"));
        assert!(matches("*", "a/b\nc"));
        assert!(matches("**/x", "x"));
    }

    #[cfg(unix)]
    #[test]
    fn a_name_not_utf8_still_matches_by_its_letters() {
        use std::os::unix::ffi::OsStrExt;
        let bytes = [&b"\xff"[..], "ÉTÉ/a.JPG".as_bytes()].concat();
        let path = Path::new(std::ffi::OsStr::from_bytes(&bytes));
        assert!(Glob::new("*été/*.jpg").unwrap().is_match(path));
        assert!(!Glob::new("*ete/*.jpg").unwrap().is_match(path));
        // a byte that is not UTF-8 is one character to `?`
        let byte = Path::new(std::ffi::OsStr::from_bytes(b"caf\xe9.jpg"));
        assert!(Glob::new("caf?.jpg").unwrap().is_match(byte));
        assert!(Glob::new("CAF*").unwrap().is_match(byte));
        assert!(!Glob::new("caf??.jpg").unwrap().is_match(byte));
    }
}
