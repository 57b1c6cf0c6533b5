//! Globs matched one character at a time, in any letter case, for every Unicode letter: the
//! pattern and each path are compared in NFC and case-folded alike, so `**/CAFÉ*` takes
//! `café.png` (written either way) as `*.jpg` takes `IMG_1.JPG`, and `?` or `[é]` match `é`.
//! A character is what a reader sees as one: an extended grapheme cluster (`x` + U+0301, a
//! Hangul syllable written as jamo). `--include`, `--exclude` and `--keep match:` all match
//! through here.

use std::borrow::Cow;
use std::fmt;
use std::path::Path;

use globset::{ErrorKind, GlobBuilder};
use regex::{Regex, RegexBuilder, RegexSet, RegexSetBuilder};
use unicode_normalization::{IsNormalized, UnicodeNormalization, is_nfc_quick};
use unicode_segmentation::UnicodeSegmentation;

/// Why a pattern is not a glob; the caller names the pattern.
#[derive(Debug, Clone)]
pub struct GlobError(String);

impl fmt::Display for GlobError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for GlobError {}

/// The first code point that stands for one of the patterns' characters made of several code
/// points (Supplementary Private Use Area-B, up to [`OTHER`]).
const FIRST_CLUSTER: u32 = 0x10_0000;
/// Stands for a path's character of several code points that no pattern names.
const OTHER: char = '\u{10fffc}';
/// Stands for a run of a path's bytes that is not UTF-8: only `?`, `*` and `[!...]` take it.
const NOT_UTF8: char = '\u{10fffd}';

/// `text` in NFC.
fn nfc(text: Cow<'_, str>) -> Cow<'_, str> {
    if is_nfc_quick(text.chars()) == IsNormalized::Yes {
        text
    } else {
        Cow::Owned(text.nfc().collect())
    }
}

/// The characters of `text` (in NFC) as `?` takes them: its extended grapheme clusters, but an
/// ASCII punctuation mark (glob syntax, the separator `/`) always alone, even with a mark after.
fn characters(text: &str) -> impl Iterator<Item = &str> {
    text.graphemes(true).flat_map(|g| {
        let split = g.len() > 1 && g.as_bytes()[0].is_ascii_punctuation();
        let (head, tail) = if split { g.split_at(1) } else { (g, "") };
        [head, tail].into_iter().filter(|c| !c.is_empty())
    })
}

/// The one code point `c` is, when it is one outside the range kept for [`Clusters`].
fn single(c: &str) -> Option<char> {
    let mut chars = c.chars();
    match (chars.next(), chars.next()) {
        (Some(one), None) if (one as u32) < FIRST_CLUSTER => Some(one),
        _ => None,
    }
}

/// The patterns' characters made of several code points, each matched as one code point of
/// its own: number `i` as `FIRST_CLUSTER + i` in the pattern and in every path that holds it
/// (in any letter case); a path's others are [`OTHER`].
#[derive(Debug, Clone, Default)]
struct Clusters {
    names: Vec<String>,
    /// `names`, each matched whole and in any letter case, as the regex compares characters.
    set: Option<RegexSet>,
}

impl Clusters {
    /// The code point standing for `name`, taken in any letter case.
    fn add(&mut self, name: &str) -> Result<char, GlobError> {
        let same = Regex::new(&format!("(?i)^(?:{})$", regex::escape(name)))
            .map_err(|e| GlobError(e.to_string()))?;
        let i = match self.names.iter().position(|n| same.is_match(n)) {
            Some(i) => i,
            None if FIRST_CLUSTER + (self.names.len() as u32) < OTHER as u32 => {
                self.names.push(name.to_string());
                self.names.len() - 1
            }
            None => {
                return Err(GlobError(
                    "too many characters of several code points".into(),
                ));
            }
        };
        Ok(char::from_u32(FIRST_CLUSTER + i as u32).unwrap_or(OTHER))
    }

    /// Readies [`Clusters::of`] once every pattern is added.
    fn finish(&mut self) -> Result<(), GlobError> {
        if !self.names.is_empty() {
            let whole = self
                .names
                .iter()
                .map(|n| format!("(?i)^(?:{})$", regex::escape(n)));
            self.set = Some(RegexSet::new(whole).map_err(|e| GlobError(e.to_string()))?);
        }
        Ok(())
    }

    /// The code point standing for the path's character `c` of several code points.
    fn of(&self, c: &str) -> char {
        self.set
            .as_ref()
            .and_then(|set| set.matches(c).iter().next())
            .and_then(|i| char::from_u32(FIRST_CLUSTER + i as u32))
            .unwrap_or(OTHER)
    }

    /// `c` as the pattern wrote it: the character it stands for.
    fn shown(&self, c: char) -> String {
        (c as u32)
            .checked_sub(FIRST_CLUSTER)
            .and_then(|i| self.names.get(i as usize))
            .cloned()
            .unwrap_or_else(|| c.to_string())
    }

    /// `path` as the text a glob is matched against: in NFC, each character one code point,
    /// each stretch of bytes that is not UTF-8 (cut as a lossy reading cuts them) one
    /// [`NOT_UTF8`].
    fn text_of<'a>(&self, path: &'a Path) -> Cow<'a, str> {
        let bytes = path.as_os_str().as_encoded_bytes();
        // in ASCII without CR (CR LF is one character), each code point is one character
        if bytes.is_ascii() && !bytes.contains(&b'\r') {
            return path.to_string_lossy();
        }
        let mut out = String::with_capacity(bytes.len());
        for chunk in bytes.utf8_chunks() {
            for c in characters(&nfc(Cow::Borrowed(chunk.valid()))) {
                out.push(single(c).unwrap_or_else(|| self.of(c)));
            }
            if !chunk.invalid().is_empty() {
                out.push(NOT_UTF8);
            }
        }
        Cow::Owned(out)
    }
}

/// `pattern` in NFC with each character of several code points written as one, added to
/// `clusters`.
fn one_point_each(pattern: &str, clusters: &mut Clusters) -> Result<String, GlobError> {
    let pattern = nfc(Cow::Borrowed(pattern));
    let mut out = String::with_capacity(pattern.len());
    for c in characters(&pattern) {
        out.push(match single(c) {
            Some(one) => one,
            None => clusters.add(c)?,
        });
    }
    Ok(out)
}

/// The regex of `pattern` that matches one character where globset's matches one byte.
/// globset parses the glob (its `?`, `*`, `**`, `[...]`, `{a,b}` and `\` escapes) and writes
/// a byte regex, each character past ASCII as its UTF-8 bytes (`\xc3\xa9`); those are written
/// back as characters and the regex read in Unicode mode, case-insensitive by Unicode's simple
/// case folding (`Σ`, `σ` and `ς` alike).
fn regex_of(pattern: &str, clusters: &mut Clusters) -> Result<String, GlobError> {
    let pattern = one_point_each(pattern, clusters)?;
    let glob = GlobBuilder::new(&pattern)
        .case_insensitive(true)
        .build()
        .map_err(|e| {
            GlobError(match e.kind() {
                ErrorKind::InvalidRange(a, z) => {
                    format!(
                        "invalid range; '{}' > '{}'",
                        clusters.shown(*a),
                        clusters.shown(*z)
                    )
                }
                kind => kind.to_string(),
            })
        })?;
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
fn compile(pattern: &str, clusters: &mut Clusters) -> Result<Regex, GlobError> {
    RegexBuilder::new(&regex_of(pattern, clusters)?)
        .dot_matches_new_line(true)
        .build()
        .map_err(|e| GlobError(e.to_string()))
}

/// One glob, matched in any letter case.
#[derive(Debug, Clone)]
pub struct Glob {
    regex: Regex,
    clusters: Clusters,
}

impl Glob {
    /// The glob of `pattern`; the error says why it is not one.
    pub fn new(pattern: &str) -> Result<Glob, GlobError> {
        let mut clusters = Clusters::default();
        let regex = compile(pattern, &mut clusters)?;
        clusters.finish()?;
        Ok(Glob { regex, clusters })
    }

    /// True when `path` matches, in any letter case.
    pub fn is_match(&self, path: &Path) -> bool {
        self.regex.is_match(&self.clusters.text_of(path))
    }
}

/// Globs matched together, each in any letter case.
#[derive(Debug, Clone)]
pub(crate) struct GlobSet {
    set: RegexSet,
    clusters: Clusters,
}

impl GlobSet {
    /// The set of `patterns`; the error gives the pattern at fault (all of them when the set
    /// as a whole is refused) apart from the reason.
    pub(crate) fn new(patterns: &[String]) -> Result<GlobSet, (String, GlobError)> {
        let mut clusters = Clusters::default();
        let mut regexes = Vec::with_capacity(patterns.len());
        for p in patterns {
            regexes.push(regex_of(p, &mut clusters).map_err(|e| (p.clone(), e))?);
        }
        let all = || patterns.join(", ");
        clusters.finish().map_err(|e| (all(), e))?;
        let set = RegexSetBuilder::new(regexes)
            .dot_matches_new_line(true)
            .build()
            .map_err(|e| (all(), GlobError(e.to_string())))?;
        Ok(GlobSet { set, clusters })
    }

    /// True when `path` matches one of the globs, in any letter case.
    pub(crate) fn is_match(&self, path: &Path) -> bool {
        self.set.is_match(&self.clusters.text_of(path))
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
    fn a_pattern_matches_the_whole_path_and_its_wildcards_cross_folders() {
        // as the README says: unlike a shell's or .gitignore's globs
        for (pattern, path, taken) in [
            ("*.jpg", "0.jpg", true),
            ("*.jpg", "a/b/2.jpg", true),
            ("*/*.jpg", "a/b/2.jpg", true),
            ("[0-9]*.jpg", "0.jpg", true),
            ("[0-9]*.jpg", "a/1.jpg", false),
            ("a?1.jpg", "a/1.jpg", true),
            ("?.jpg", "a/1.jpg", false),
        ] {
            assert_eq!(matches(pattern, path), taken, "{pattern} {path}");
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
    fn a_wildcard_or_class_takes_one_character_as_shown() {
        // a letter and a mark that has no precomposed form, in either letter case
        let (x, big) = ("x\u{301}.png", "X\u{301}.PNG");
        for (pattern, path) in [
            ("?.png", x),
            ("?.png", big),
            ("[x\u{301}].png", x),
            ("[x\u{301}].png", big),
            ("[ax\u{301}].png", x),
            ("[!x].png", x),
            ("x\u{301}.png", big),
            ("*.png", x),
            ("a/?/b", "a/x\u{301}/b"),
            // Hangul written as jamo that have no precomposed syllable (ᄀ + ᆞ + ᆫ)
            ("?.jpg", "\u{1100}\u{119e}\u{11ab}.jpg"),
            (
                "[\u{1100}\u{119e}\u{11ab}]?.jpg",
                "\u{1100}\u{119e}\u{11ab}\u{1100}\u{119e}.jpg",
            ),
            (
                "?\u{1100}\u{119e}.jpg",
                "\u{1100}\u{119e}\u{11ab}\u{1100}\u{119e}.jpg",
            ),
            // a flag: two regional indicators
            ("?.png", "\u{1f1eb}\u{1f1f7}.png"),
        ] {
            assert!(matches(pattern, path), "{pattern} {path}");
        }
        for (pattern, path) in [
            ("??.png", x),
            ("x?.png", x),
            ("[x].png", x),
            ("[a-z].png", x),
            ("[x\u{300}].png", x),
            ("x.png", x),
            ("??.jpg", "\u{1100}\u{119e}\u{11ab}.jpg"),
            ("\u{1100}?.jpg", "\u{1100}\u{119e}\u{11ab}.jpg"),
        ] {
            assert!(!matches(pattern, path), "{pattern} {path}");
        }
        // a set keeps each pattern's characters apart
        let set = GlobSet::new(&["[q\u{301}].png".into(), "x\u{301}?.png".into()]).unwrap();
        assert!(set.is_match(Path::new("Q\u{301}.png")));
        assert!(set.is_match(Path::new("x\u{301}q\u{301}.png")));
        assert!(!set.is_match(Path::new("x\u{301}.png")));
        // a range is reported as written
        let e = Glob::new("[x\u{301}-a]").unwrap_err().to_string();
        assert_eq!(e, "invalid range; 'x\u{301}' > 'a'");
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

    /// A byte that is not UTF-8 is taken by a wildcard only: a pattern that writes U+FFFD
    /// (what a lossy reading puts there) matches that character alone.
    #[cfg(unix)]
    #[test]
    fn a_byte_not_utf8_is_matched_by_wildcards_only() {
        use std::os::unix::ffi::OsStrExt;
        let odd = Path::new(std::ffi::OsStr::from_bytes(b"a/\xff.jpg"));
        let replacement = Path::new("a/\u{fffd}.jpg");
        for pattern in ["a/?.jpg", "a/*.jpg", "**/*", "a/[!x].jpg"] {
            assert!(Glob::new(pattern).unwrap().is_match(odd), "{pattern}");
            let set = GlobSet::new(&[pattern.to_string()]).unwrap();
            assert!(set.is_match(odd), "{pattern}");
        }
        for pattern in ["a/\u{fffd}.jpg", "a/[\u{fffd}].jpg", "**/\u{fffd}*"] {
            assert!(!Glob::new(pattern).unwrap().is_match(odd), "{pattern}");
            let set = GlobSet::new(&[pattern.to_string()]).unwrap();
            assert!(!set.is_match(odd), "{pattern}");
            assert!(
                Glob::new(pattern).unwrap().is_match(replacement),
                "{pattern}"
            );
        }
    }
}
