//! How paths are shown: escaped for terminals in text output, and in JSON as a readable string
//! plus the exact bytes when the name is not valid UTF-8.
//!
//! JSON: a path field `KEY` is always a string (`"KEY": "<lossy display>"`, invalid bytes
//! replaced by U+FFFD); when the name is not valid UTF-8, a sibling `"KEY_bytes": [..]` holds
//! its exact bytes. A list of paths gets a sibling list with `null` for the valid names.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::Serializer;
use serde::ser::SerializeMap;

/// The raw bytes of a path when they are not valid UTF-8; `None` for ordinary names.
pub(crate) fn invalid_bytes(path: &Path) -> Option<Vec<u8>> {
    if path.to_str().is_some() {
        return None;
    }
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        Some(path.as_os_str().as_bytes().to_vec())
    }
    #[cfg(not(unix))]
    {
        Some(path.to_string_lossy().into_owned().into_bytes())
    }
}

/// Writes `KEY` (and `KEY_bytes` when needed) into a map being serialized.
pub(crate) fn write_entries<M: SerializeMap>(
    map: &mut M,
    key: &str,
    path: &Path,
) -> Result<(), M::Error> {
    map.serialize_entry(key, &path.to_string_lossy())?;
    if let Some(bytes) = invalid_bytes(path) {
        map.serialize_entry(&format!("{key}_bytes"), &bytes)?;
    }
    Ok(())
}

/// Sets `KEY` (and `KEY_bytes` when needed) in a JSON object built by hand.
pub fn insert(map: &mut serde_json::Map<String, serde_json::Value>, key: &str, path: &Path) {
    map.insert(key.into(), path.to_string_lossy().into_owned().into());
    if let Some(bytes) = invalid_bytes(path) {
        map.insert(format!("{key}_bytes"), bytes.into());
    }
}

/// Sets `KEY` to a list of paths, and `KEY_bytes` (bytes or `null` per path) when any of them
/// is not valid UTF-8.
pub fn insert_list<'a>(
    map: &mut serde_json::Map<String, serde_json::Value>,
    key: &str,
    paths: impl IntoIterator<Item = &'a Path>,
) {
    let paths: Vec<&Path> = paths.into_iter().collect();
    let shown: Vec<serde_json::Value> = paths
        .iter()
        .map(|p| p.to_string_lossy().into_owned().into())
        .collect();
    map.insert(key.into(), shown.into());
    let bytes: Vec<Option<Vec<u8>>> = paths.iter().map(|p| invalid_bytes(p)).collect();
    if bytes.iter().any(Option::is_some) {
        map.insert(
            format!("{key}_bytes"),
            serde_json::to_value(bytes).unwrap_or_default(),
        );
    }
}

/// `path` made absolute, as JSON gives every path: the real path when it exists (`..` and
/// symbolic links resolved, no trailing slash), else joined to the working directory.
pub fn absolute(path: &Path) -> PathBuf {
    std::fs::canonicalize(path)
        .or_else(|_| std::path::absolute(path))
        .unwrap_or_else(|_| path.to_path_buf())
}

/// A JSON object holding `KEY` (and `KEY_bytes`) for one path, to merge into others.
pub fn object(key: &str, path: &Path) -> serde_json::Map<String, serde_json::Value> {
    let mut map = serde_json::Map::new();
    insert(&mut map, key, path);
    map
}

fn serialize_as<S: Serializer>(key: &str, path: &Path, s: S) -> Result<S::Ok, S::Error> {
    let mut map = s.serialize_map(None)?;
    write_entries(&mut map, key, path)?;
    map.end()
}

/// For `#[serde(flatten, serialize_with = "crate::path_repr::path")]` on a field `path`.
pub(crate) fn path<S: Serializer>(p: &Path, s: S) -> Result<S::Ok, S::Error> {
    serialize_as("path", p, s)
}

/// For `#[serde(flatten, serialize_with = "crate::path_repr::journal")]` on a field `journal`.
pub(crate) fn journal<S: Serializer>(p: &Path, s: S) -> Result<S::Ok, S::Error> {
    serialize_as("journal", p, s)
}

/// For `#[serde(flatten, serialize_with = "crate::path_repr::root")]` on a field `root`.
pub fn root<S: Serializer>(p: &Path, s: S) -> Result<S::Ok, S::Error> {
    serialize_as("root", p, s)
}

/// `KEY` and `KEY_bytes` for a list of paths, as [`insert_list`] writes them, for a flattened
/// field.
fn serialize_list_as<S: Serializer>(
    key: &str,
    paths: &[std::path::PathBuf],
    s: S,
) -> Result<S::Ok, S::Error> {
    use serde::Serialize;
    let mut map = serde_json::Map::new();
    insert_list(&mut map, key, paths.iter().map(|p| p.as_path()));
    map.serialize(s)
}

/// For `#[serde(flatten, serialize_with = "crate::path_repr::changing")]` on a list `changing`:
/// the paths as strings, and `changing_bytes` (bytes or `null` per path) when one is not UTF-8.
pub(crate) fn changing<S: Serializer>(p: &[std::path::PathBuf], s: S) -> Result<S::Ok, S::Error> {
    serialize_list_as("changing", p, s)
}

/// For `#[serde(serialize_with = "crate::path_repr::pairs")]` on a list of path pairs: each as
/// `{"path", "into"}` with `_bytes` siblings for names that are not UTF-8.
pub(crate) fn pairs<S: Serializer>(
    pairs: &[(std::path::PathBuf, std::path::PathBuf)],
    s: S,
) -> Result<S::Ok, S::Error> {
    s.collect_seq(pairs.iter().map(|(path, into)| {
        let mut m = object("path", path);
        insert(&mut m, "into", into);
        serde_json::Value::Object(m)
    }))
}

/// As [`changing`], for a list `roots`.
pub(crate) fn roots<S: Serializer>(p: &[std::path::PathBuf], s: S) -> Result<S::Ok, S::Error> {
    serialize_list_as("roots", p, s)
}

/// As [`changing`], for a list `missing_roots`.
pub(crate) fn missing_roots<S: Serializer>(
    p: &[std::path::PathBuf],
    s: S,
) -> Result<S::Ok, S::Error> {
    serialize_list_as("missing_roots", p, s)
}

/// As [`changing`], for a list `unreadable`.
pub(crate) fn unreadable<S: Serializer>(p: &[std::path::PathBuf], s: S) -> Result<S::Ok, S::Error> {
    serialize_list_as("unreadable", p, s)
}

/// As [`changing`], for a list `excluded_folders`.
pub(crate) fn excluded_folders<S: Serializer>(
    p: &[std::path::PathBuf],
    s: S,
) -> Result<S::Ok, S::Error> {
    serialize_list_as("excluded_folders", p, s)
}

/// As [`changing`], for a list `stale`.
pub(crate) fn stale<S: Serializer>(p: &[std::path::PathBuf], s: S) -> Result<S::Ok, S::Error> {
    serialize_list_as("stale", p, s)
}

/// For `#[serde(flatten, serialize_with = "crate::path_repr::query")]` on a field `query`.
pub(crate) fn query<S: Serializer>(p: &Path, s: S) -> Result<S::Ok, S::Error> {
    serialize_as("query", p, s)
}

/// For `#[serde(flatten, serialize_with = "crate::path_repr::rel_path")]` on a field
/// `rel_path`.
pub(crate) fn rel_path<S: Serializer>(p: &Path, s: S) -> Result<S::Ok, S::Error> {
    serialize_as("rel_path", p, s)
}

/// A path for a terminal: control and invisible formatting characters are escaped (`\n`,
/// `\u{202e}`), bytes that are not UTF-8 are shown as `\xNN`, a backslash as `\\`, and in a
/// stretch of text NFC would change the characters joined to its first as `\u{301}`, so a
/// file name can neither forge output lines nor drive the terminal, and each text shown is
/// one name's only.
pub fn shown(path: &Path) -> String {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        let mut out = String::new();
        for chunk in path.as_os_str().as_bytes().utf8_chunks() {
            push_escaped(&mut out, chunk.valid());
            for b in chunk.invalid() {
                let _ = write!(out, "\\x{b:02x}");
            }
        }
        out
    }
    #[cfg(not(unix))]
    {
        escape_text(&path.to_string_lossy())
    }
}

/// Text for a terminal with control and invisible formatting characters escaped, and a
/// backslash doubled.
pub fn escape_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    push_escaped(&mut out, text);
    out
}

/// A message for a terminal: control and invisible formatting characters escaped, a backslash
/// left single, as the names in it are [`shown`] already (their backslashes doubled).
pub fn escape_message(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    push_escaped_as(&mut out, text, false);
    out
}

fn push_escaped(out: &mut String, text: &str) {
    push_escaped_as(out, text, true);
}

/// Escapes `text` into `out`; a backslash doubled with `double_backslash`. In a stretch that
/// is not in NFC (a letter and the characters NFC may join to it), every character but a
/// leading letter is written `\u{hex}`: `cafe\u{301}` stays apart from `café`.
fn push_escaped_as(out: &mut String, text: &str, double_backslash: bool) {
    if text.is_ascii() {
        text.chars()
            .for_each(|c| push_char(out, c, double_backslash));
        return;
    }
    for stretch in nfc_stretches(text) {
        let odd = !unicode_normalization::is_nfc(stretch);
        for (i, c) in stretch.chars().enumerate() {
            if odd && (i > 0 || joins_before(c)) {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            } else {
                push_char(out, c, double_backslash);
            }
        }
    }
}

/// `text` cut into stretches: a character and the characters NFC may join to it.
fn nfc_stretches(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = text;
    std::iter::from_fn(move || {
        let first = rest.chars().next()?;
        let start = first.len_utf8();
        let end = rest[start..]
            .char_indices()
            .find(|&(_, c)| !joins_before(c))
            .map_or(rest.len(), |(i, _)| start + i);
        let (stretch, tail) = rest.split_at(end);
        rest = tail;
        Some(stretch)
    })
}

fn push_char(out: &mut String, c: char, double_backslash: bool) {
    match c {
        '\\' if double_backslash => out.push_str("\\\\"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        c if is_unprintable(c) => {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        }
        c => out.push(c),
    }
}

/// True for a character NFC may join to the one before it, move past it, or replace: a
/// combining mark, a Hangul vowel or final jamo, or a character not in NFC on its own. Text
/// splits into stretches before every other character, and is in NFC when each stretch is.
fn joins_before(c: char) -> bool {
    unicode_normalization::char::is_combining_mark(c)
        || matches!(c, '\u{1161}'..='\u{1175}' | '\u{11a8}'..='\u{11c2}')
        || !unicode_normalization::is_nfc(c.encode_utf8(&mut [0; 4]))
}

/// `text` as one shell word a user can copy: bare when safe, else single-quoted (a quote
/// as `'"'"'`), else, when it holds characters a terminal would act on, bytes that are not
/// UTF-8 or text not in NFC (which would look like its NFC twin), in `$'...'` with escapes. None of the three holds a character [`escape_text`]
/// escapes, but a backslash: print it as it is.
pub fn shell_word(text: &std::ffi::OsStr) -> String {
    let bytes = text.as_encoded_bytes();
    let safe = |b: &u8| b.is_ascii_alphanumeric() || b"_./,:@%+-".contains(b);
    if !bytes.is_empty() && bytes.iter().all(safe) && bytes[0] != b'-' {
        return String::from_utf8_lossy(bytes).into_owned();
    }
    if let Some(text) = text.to_str()
        && !text.chars().any(is_unprintable)
        && unicode_normalization::is_nfc(text)
    {
        return format!("'{}'", text.replace('\'', r#"'"'"'"#));
    }
    let mut out = String::from("$'");
    for &b in bytes {
        match b {
            b'\'' => out.push_str("\\'"),
            b'\\' => out.push_str("\\\\"),
            0x20..=0x7e => out.push(b as char),
            _ => {
                let _ = write!(out, "\\x{b:02x}");
            }
        }
    }
    out.push('\'');
    out
}

/// Control characters, and format characters that reorder or hide text (bidi overrides,
/// zero-width characters, line separators).
fn is_unprintable(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{ad}'
                | '\u{61c}'
                | '\u{180e}'
                | '\u{200b}'..='\u{200f}'
                | '\u{2028}'..='\u{202e}'
                | '\u{2060}'..='\u{2069}'
                | '\u{feff}'
                | '\u{fff9}'..='\u{fffb}'
        )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[derive(serde::Serialize)]
    struct Row {
        rank: u32,
        #[serde(flatten, serialize_with = "path")]
        path: PathBuf,
    }

    #[test]
    fn valid_names_are_plain_strings() {
        let v = serde_json::to_value(Row {
            rank: 1,
            path: PathBuf::from("/a/é b.jpg"),
        })
        .unwrap();
        assert_eq!(v, serde_json::json!({"rank": 1, "path": "/a/é b.jpg"}));
    }

    #[cfg(unix)]
    #[test]
    fn invalid_names_keep_their_bytes() {
        use std::os::unix::ffi::OsStrExt;
        let raw = b"/a/x\xff.jpg";
        let p = PathBuf::from(std::ffi::OsStr::from_bytes(raw));
        let v = serde_json::to_value(Row {
            rank: 2,
            path: p.clone(),
        })
        .unwrap();
        assert_eq!(v["path"], "/a/x\u{fffd}.jpg");
        assert_eq!(v["path_bytes"], serde_json::json!(raw.to_vec()));
        let mut map = serde_json::Map::new();
        insert_list(&mut map, "roots", [Path::new("/ok"), p.as_path()]);
        assert_eq!(
            serde_json::Value::Object(map),
            serde_json::json!({"roots": ["/ok", "/a/x\u{fffd}.jpg"], "roots_bytes": [null, raw.to_vec()]})
        );
        assert_eq!(shown(&p), "/a/x\\xff.jpg");
    }

    #[cfg(unix)]
    #[test]
    fn a_byte_and_the_text_that_spells_it_are_shown_apart() {
        use std::os::unix::ffi::OsStrExt;
        let byte = Path::new(std::ffi::OsStr::from_bytes(b"/p/caf\xe9.jpg"));
        let spelt = Path::new(r"/p/caf\xe9.jpg");
        assert_eq!(shown(byte), r"/p/caf\xe9.jpg");
        assert_eq!(shown(spelt), r"/p/caf\\xe9.jpg");
        assert_eq!(escape_text(r"a\nb"), r"a\\nb");
        assert_eq!(escape_text("a\nb"), r"a\nb");
        // as shell words each is its own name, and printed as they are
        assert_eq!(shell_word(byte.as_os_str()), r"$'/p/caf\xe9.jpg'");
        assert_eq!(shell_word(spelt.as_os_str()), r"'/p/caf\xe9.jpg'");
        assert_eq!(shell_word("it's".as_ref()), r#"'it'"'"'s'"#);
        assert_eq!(shell_word("a\tb\\".as_ref()), r"$'a\x09b\\'");
    }

    #[test]
    fn a_name_not_in_nfc_is_shown_apart_from_its_nfc_twin() {
        let cases = [
            ("/p/caf\u{e9}.png", "/p/caf\u{e9}.png"),
            ("/p/cafe\u{301}.png", r"/p/cafe\u{301}.png"),
            // a mark with no precomposed letter, in NFC, is left as it is
            ("x\u{301}", "x\u{301}"),
            // marks in an order NFC changes, each order shown as it is
            ("\u{1ea1}\u{301}", "\u{1ea1}\u{301}"),
            ("a\u{301}\u{323}", r"a\u{301}\u{323}"),
            ("a\u{323}\u{301}", r"a\u{323}\u{301}"),
            // Hangul syllable and its jamo; the Angstrom sign and the letter Å
            ("\u{d55c}.jpg", "\u{d55c}.jpg"),
            (
                "\u{1112}\u{1161}\u{11ab}.jpg",
                "\u{1112}\\u{1161}\\u{11ab}.jpg",
            ),
            ("\u{c5}.jpg", "\u{c5}.jpg"),
            ("\u{212b}.jpg", r"\u{212b}.jpg"),
            // an NFC folder keeps its look beside a name that is not NFC
            (
                "\u{928}\u{92e}\u{938}\u{94d}\u{924}\u{947}/e\u{301}",
                "\u{928}\u{92e}\u{938}\u{94d}\u{924}\u{947}/e\\u{301}",
            ),
            ("\u{301}\u{323}a", r"\u{301}\u{323}a"),
        ];
        for (name, want) in cases {
            assert_eq!(shown(Path::new(name)), want, "{name:?}");
        }
        assert_eq!(
            escape_message("keep cafe\u{301}.png"),
            r"keep cafe\u{301}.png"
        );
        assert_eq!(shell_word("cafe\u{301}".as_ref()), r"$'cafe\xcc\x81'");
        assert_eq!(shell_word("caf\u{e9} 1".as_ref()), "'caf\u{e9} 1'");
    }

    #[test]
    fn text_is_in_nfc_when_each_stretch_is() {
        let texts = [
            "e\u{301}",
            "\u{e9}",
            "a\u{323}\u{301}",
            "a\u{301}\u{323}",
            "\u{1112}\u{1161}",
            "\u{ac00}\u{11a8}",
            "\u{212b}",
            "\u{958}",
            "\u{b47}\u{b3e}",
            "\u{3099}",
            "\u{304b}\u{3099}",
            "x\u{1161}",
            "\u{1100}\u{1161}\u{11a8}",
            "\u{cc6}\u{cc2}\u{cd5}",
            "\u{11131}\u{11127}",
        ];
        for t in texts {
            for text in [t.to_string(), format!("a{t}b"), format!("{t}{t}")] {
                let every = nfc_stretches(&text).all(unicode_normalization::is_nfc);
                assert_eq!(every, unicode_normalization::is_nfc(&text), "{text:?}");
            }
        }
    }

    #[test]
    fn control_and_bidi_characters_are_escaped() {
        let p = Path::new("x.jpg\n  2  0.0000  spoof\u{1b}[2J\u{202e}gpj.exe\t");
        assert_eq!(
            shown(p),
            "x.jpg\\n  2  0.0000  spoof\\u{1b}[2J\\u{202e}gpj.exe\\t"
        );
        assert_eq!(escape_text("a\rb\u{7f}"), "a\\rb\\u{7f}");
        assert_eq!(shown(Path::new("/photos/été 1.jpg")), "/photos/été 1.jpg");
    }
}
