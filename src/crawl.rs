//! Walking image folders: filters, content sniffing, deterministic order, file stamps.

use std::io::Read;
use std::path::{Path, PathBuf};

use walkdir::WalkDir;

use crate::error::{Error, Result};
use crate::globs::GlobSet;
use crate::store::FileStamp;

/// Extensions of the formats decode reads, taken as images without reading the file (decode
/// still verifies the content). The index and evaluation's folder scans both use this list and
/// [`crate::decode::raw::RAW_EXTENSIONS`].
pub(crate) const IMAGE_EXTENSIONS: &[&str] = &[
    "jpg", "jpeg", "jpe", "jfif", "png", "webp", "gif", "bmp", "dib", "tif", "tiff", "pnm", "pbm",
    "pgm", "ppm", "pam", "qoi", "ico", "tga", "heic", "heif", "hif", "avif", "jxl",
];

/// What to walk and what to keep.
#[derive(Debug, Clone, Default)]
pub struct CrawlConfig {
    /// Folders to walk, recursively.
    pub roots: Vec<PathBuf>,
    /// Only files whose path relative to their root matches one of these globs (all when empty).
    pub include: Vec<String>,
    /// Files and folders whose relative path matches one of these globs are skipped.
    pub exclude: Vec<String>,
    /// Follow symbolic links (loops are detected and reported).
    pub follow_symlinks: bool,
    /// Also walk hidden files and folders (names starting with a dot).
    pub hidden: bool,
    /// Files and folders never walked: the index's own (its database, lock and graph dumps).
    /// Anything else in the index folder is the user's and is walked like the rest. The
    /// desktop trash folders (the home trash, `.Trash` and `.Trash-UID`) are never walked either.
    pub skip_paths: Vec<PathBuf>,
    /// Folders walked even when hidden or excluded (tracked roots nested in a walked one).
    pub keep_dirs: Vec<PathBuf>,
    /// Other folders the index tracks: a followed link into one of them is not a file of this
    /// walk (its target is indexed there), whether or not that folder is walked this time. A
    /// root inside one of them is walked by the rules of the outermost: globs match paths
    /// relative to it, as they do when that folder is walked.
    pub tracked: Vec<PathBuf>,
}

/// One candidate image file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrawledFile {
    /// Index into `CrawlConfig::roots`.
    pub(crate) root: usize,
    /// Path relative to its root.
    pub(crate) rel_path: PathBuf,
    /// Path of the file: its root joined with its relative path.
    pub abs_path: PathBuf,
    pub(crate) stamp: FileStamp,
}

/// A path the walk could not read (permission, symlink loop...).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CrawlProblem {
    #[serde(flatten, serialize_with = "crate::path_repr::path")]
    pub(crate) path: PathBuf,
    /// Why it could not be read.
    pub reason: String,
    /// A folder left unread: files below it may exist unseen (a symbolic link loop hides
    /// nothing).
    #[serde(skip)]
    pub(crate) hides_files: bool,
}

/// Result of walking all roots.
#[derive(Debug, Default)]
pub struct Crawl {
    /// Candidate image files, in walk order.
    pub files: Vec<CrawledFile>,
    /// Paths the walk could not read; below those that hide files, unseen files may exist.
    pub(crate) problems: Vec<CrawlProblem>,
    /// Folders not walked as they are walked or tracked under another name (a link, a bind
    /// mount), with that name.
    pub(crate) met_again: Vec<(PathBuf, PathBuf)>,
}

fn build_globs(patterns: &[String]) -> Result<Option<GlobSet>> {
    if patterns.is_empty() {
        return Ok(None);
    }
    for p in patterns {
        // patterns are matched against paths relative to the tracked folder, without a
        // leading or trailing separator: these forms would match nothing
        let never = if p.trim().is_empty() {
            Some("an empty pattern matches no file".to_string())
        } else if p.starts_with('/') || p.starts_with("./") {
            Some(format!(
                "patterns match paths relative to the folder: write '{}'",
                p.trim_start_matches("./").trim_start_matches('/')
            ))
        } else if p.ends_with('/') {
            Some(format!(
                "a pattern ending in '/' matches nothing: write '{}' for the folder, or '{}**' for what is in it",
                p.trim_end_matches('/'),
                p
            ))
        } else {
            None
        };
        if let Some(why) = never {
            return Err(Error::InvalidInput(format!(
                "bad glob '{p}': {why} (if the index already remembers it, `lookalike index --walk-defaults` forgets it)"
            )));
        }
    }
    // letter case is ignored: `*.jpg` is meant to take a camera's `IMG_0001.JPG` too
    GlobSet::new(patterns).map(Some).map_err(|(p, e)| {
        Error::InvalidInput(format!(
            "bad glob '{p}': {e} (if the index already remembers it, `lookalike index --walk-defaults` forgets it)"
        ))
    })
}

/// Refuses `--include` / `--exclude` patterns that are not globs, before anything remembers them.
pub(crate) fn check_globs(config: &CrawlConfig) -> Result<()> {
    build_globs(&config.include)?;
    build_globs(&config.exclude)?;
    Ok(())
}

/// Why a walk of `root` under `config` would not list the file `path` (canonical, below
/// `root`), or `None` when it would. A file named on its own is held to the rules its folder's
/// walks follow, or the next refresh would drop it again.
pub(crate) fn why_not_walked(
    config: &CrawlConfig,
    root: &Path,
    path: &Path,
) -> Result<Option<String>> {
    if let Some(why) = why_rules_skip(config, root, path)? {
        return Ok(Some(why));
    }
    if !looks_like_image(path) {
        return Ok(Some(
            "neither its name nor its first bytes are those of an image format lookalike reads"
                .to_string(),
        ));
    }
    Ok(None)
}

/// Why the walk rules skip an entry below a root: hidden, or excluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Skip {
    Hidden,
    Excluded,
}

/// The rule that skips the entry `path` (a folder when `is_dir`) at `rel` below its root, if
/// any: the one the walk prunes by and a file named on its own is held to. A folder leading to
/// a kept folder (a tracked root nested in the walked one) is never skipped.
fn skipped_by(
    config: &CrawlConfig,
    exclude: Option<&GlobSet>,
    path: &Path,
    rel: &Path,
    is_dir: bool,
) -> Option<Skip> {
    if is_dir && config.keep_dirs.iter().any(|k| k.starts_with(path)) {
        return None;
    }
    if !config.hidden && path.file_name().is_some_and(is_hidden) {
        return Some(Skip::Hidden);
    }
    if exclude.is_some_and(|ex| ex.is_match(rel)) {
        return Some(Skip::Excluded);
    }
    None
}

/// Why the walk rules (hidden, `--exclude`, `--include`) skip `path` below `root`, reading
/// nothing from the disk.
pub(crate) fn why_rules_skip(
    config: &CrawlConfig,
    root: &Path,
    path: &Path,
) -> Result<Option<String>> {
    let include = build_globs(&config.include)?;
    let exclude = build_globs(&config.exclude)?;
    let Ok(rel) = path.strip_prefix(root) else {
        return Ok(None);
    };
    // each folder on the way down, then the file
    let mut prefix = PathBuf::new();
    let parts: Vec<_> = rel.components().collect();
    for (k, part) in parts.iter().enumerate() {
        prefix.push(part);
        let is_file = k + 1 == parts.len();
        let entry = root.join(&prefix);
        let Some(skip) = skipped_by(config, exclude.as_ref(), &entry, &prefix, !is_file) else {
            continue;
        };
        let why = match skip {
            Skip::Hidden if is_file => {
                "it is a hidden file, which the walks of this index skip".into()
            }
            Skip::Hidden => format!(
                "it is inside the hidden folder {}, which the walks of this index skip",
                crate::path_repr::shown(&entry)
            ),
            Skip::Excluded => format!(
                "{} matches an --exclude pattern of this index ({})",
                if is_file { "it" } else { "its folder" },
                config.exclude.join(", ")
            ),
        };
        return Ok(Some(why));
    }
    if let Some(inc) = &include
        && !inc.is_match(rel)
    {
        return Ok(Some(format!(
            "it matches none of the --include patterns of this index ({})",
            config.include.join(", ")
        )));
    }
    Ok(None)
}

/// True when the `--exclude` patterns, matched from `anchor`, skip whatever lies in `folder`
/// (below `anchor`): a walk lists no file there, whatever its name.
pub(crate) fn excludes_all_inside(
    config: &CrawlConfig,
    anchor: &Path,
    folder: &Path,
) -> Result<bool> {
    let Some(exclude) = build_globs(&config.exclude)? else {
        return Ok(false);
    };
    let Ok(rel) = folder.strip_prefix(anchor) else {
        return Ok(false);
    };
    // a name no literal pattern spells: only wildcards match it
    Ok(exclude.is_match(&rel.join("\u{1}")))
}

/// True when some file below `folder`, hidden or not, is an image; the walk stops at the
/// first one.
pub(crate) fn holds_an_image(folder: &Path, follow_links: bool) -> bool {
    WalkDir::new(folder)
        .follow_links(follow_links)
        .into_iter()
        .filter_map(std::result::Result::ok)
        .any(|e| e.file_type().is_file() && looks_like_image(e.path()))
}

/// The links to folders a walk of `root` that follows links goes through, each with the
/// folder it leads to (links resolved); loops and unreadable folders are passed over.
pub(crate) fn followed_links(root: &Path) -> Vec<(PathBuf, PathBuf)> {
    WalkDir::new(root)
        .follow_links(true)
        .into_iter()
        .filter_entry(|e| e.file_type().is_dir())
        .filter_map(std::result::Result::ok)
        .filter(|e| e.path_is_symlink())
        .filter_map(|e| {
            let real = std::fs::canonicalize(e.path()).ok()?;
            Some((e.path().to_path_buf(), real))
        })
        .collect()
}

/// True when the first bytes of a file are a signature of an image format we decode.
pub(crate) fn sniff_is_image(head: &[u8]) -> bool {
    matches!(
        image::guess_format(head),
        Ok(image::ImageFormat::Jpeg
            | image::ImageFormat::Png
            | image::ImageFormat::WebP
            | image::ImageFormat::Gif
            | image::ImageFormat::Bmp
            | image::ImageFormat::Tiff
            | image::ImageFormat::Qoi
            | image::ImageFormat::Ico)
    ) || crate::decode::has_extra_signature(head)
}

/// True when `path`'s extension is one of [`IMAGE_EXTENSIONS`] (any case).
pub(crate) fn has_image_extension(path: &Path) -> bool {
    path.extension().and_then(|e| e.to_str()).is_some_and(|e| {
        IMAGE_EXTENSIONS
            .iter()
            .chain(crate::decode::raw::RAW_EXTENSIONS)
            .any(|x| x.eq_ignore_ascii_case(e))
    })
}

/// True for a file the index takes as an image: a known extension, or else image content.
pub(crate) fn looks_like_image(path: &Path) -> bool {
    if has_image_extension(path) {
        return true;
    }
    let mut head = [0u8; 32];
    let Ok(mut f) = std::fs::File::open(path) else {
        return false;
    };
    let mut n = 0;
    while n < head.len() {
        match f.read(&mut head[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(_) => return false,
        }
    }
    sniff_is_image(&head[..n])
}

fn is_hidden(name: &std::ffi::OsStr) -> bool {
    name.as_encoded_bytes().first() == Some(&b'.')
}

/// The folder whose walk rules hold below `root`: the outermost tracked folder holding it,
/// or `root` itself.
pub(crate) fn rules_anchor<'a>(tracked: &'a [PathBuf], root: &'a Path) -> &'a Path {
    tracked
        .iter()
        .filter(|t| root.starts_with(t))
        .min_by_key(|t| t.components().count())
        .map_or(root, PathBuf::as_path)
}

/// Walks every root in file-name order and returns the candidate images.
/// A root that is missing or unreadable is an error: nothing under it may be taken as deleted.
pub fn crawl(config: &CrawlConfig) -> Result<Crawl> {
    let include = build_globs(&config.include)?;
    let exclude = build_globs(&config.exclude)?;
    // the index's own files, and the desktop's home trash: what it holds was taken out
    let skip_paths: Vec<PathBuf> = config
        .skip_paths
        .iter()
        .cloned()
        .chain(crate::desktop_trash::home_trashes())
        .filter_map(|d| std::fs::canonicalize(d).ok())
        .collect();
    let mut out = Crawl::default();
    // With links followed, a file is listed once, at its own path when a walked root holds it.
    let mut listed: std::collections::HashSet<PathBuf> = Default::default();
    // One folder under two names (a link, a bind mount) is walked once: see `FolderNames`.
    let mut names = FolderNames::seeded(&config.tracked);
    let mut met_again = Vec::new();
    let inside_walked = |real: &Path| {
        config
            .roots
            .iter()
            .chain(&config.tracked)
            .any(|r| real.starts_with(r))
    };
    for (root_idx, root) in config.roots.iter().enumerate() {
        let meta = std::fs::metadata(root).map_err(|e| Error::io(root, e))?;
        if !meta.is_dir() {
            return Err(Error::InvalidInput(format!(
                "{}: not a folder; `lookalike index` takes folders (`lookalike query {}` searches by this image)",
                crate::path_repr::shown(root),
                crate::path_repr::shell_word(root.as_os_str())
            )));
        }
        if let Some(first) = names.walked_before(&meta, root) {
            met_again.push((root.clone(), first));
            continue;
        }
        let anchor = rules_anchor(&config.tracked, root);
        let walker = WalkDir::new(root)
            .follow_links(config.follow_symlinks)
            .sort_by_file_name()
            .into_iter()
            .filter_entry(|entry| {
                if entry.depth() == 0 {
                    return true;
                }
                let is_dir = entry.file_type().is_dir();
                let rel = entry.path().strip_prefix(anchor).unwrap_or(entry.path());
                let kept = is_dir && config.keep_dirs.iter().any(|k| k.starts_with(entry.path()));
                // Walked paths are canonical roots joined with names, so they compare directly.
                let walked = kept
                    || (skipped_by(config, exclude.as_ref(), entry.path(), rel, is_dir).is_none()
                        && !skip_paths.iter().any(|p| p == entry.path())
                        && !(is_dir && crate::desktop_trash::is_top_dir_trash(entry.file_name())));
                if !walked || !is_dir {
                    return walked;
                }
                // a followed link into a walked or tracked folder: walked there, under its own name
                if entry.path_is_symlink()
                    && let Ok(real) = std::fs::canonicalize(entry.path())
                    && inside_walked(&real)
                {
                    met_again.push((entry.path().to_path_buf(), real));
                    return false;
                }
                entry
                    .metadata()
                    .ok()
                    .and_then(|m| names.walked_before(&m, entry.path()))
                    .map(|first| met_again.push((entry.path().to_path_buf(), first)))
                    .is_none()
            });
        for entry in walker {
            let entry = match entry {
                Ok(e) => e,
                Err(err) => {
                    let path = err
                        .path()
                        .map(Path::to_path_buf)
                        .unwrap_or_else(|| root.clone());
                    let broken_link = path.symlink_metadata().is_ok_and(|m| m.is_symlink())
                        && std::fs::metadata(&path).is_err();
                    let reason = if err.loop_ancestor().is_some() {
                        "symbolic link loop".to_string()
                    } else if broken_link {
                        "a symbolic link to nothing (its target is gone or not mounted)".to_string()
                    } else {
                        err.io_error()
                            .map(|e| e.to_string())
                            .unwrap_or_else(|| err.to_string())
                    };
                    // An unreadable folder (or a link to one not mounted) hides files that may
                    // still exist; a loop hides nothing.
                    let hides_files = err.loop_ancestor().is_none();
                    out.problems.push(CrawlProblem {
                        path,
                        reason,
                        hides_files,
                    });
                    continue;
                }
            };
            let followed_link = entry.path_is_symlink() && config.follow_symlinks;
            if !(entry.file_type().is_file() || followed_link) {
                continue;
            }
            let path = entry.path();
            let meta = match entry.metadata() {
                Ok(m) if m.is_file() => m,
                Ok(_) => continue,
                Err(err) => {
                    // listed but not readable (a folder that can be listed, not searched): the
                    // file is there, unseen
                    let gone = err
                        .io_error()
                        .is_some_and(|e| e.kind() == std::io::ErrorKind::NotFound);
                    out.problems.push(CrawlProblem {
                        path: path.to_path_buf(),
                        reason: err
                            .io_error()
                            .map(|e| e.to_string())
                            .unwrap_or_else(|| err.to_string()),
                        hides_files: !gone,
                    });
                    continue;
                }
            };
            let Ok(rel) = path.strip_prefix(root) else {
                continue;
            };
            if config.follow_symlinks {
                let Ok(real) = std::fs::canonicalize(path) else {
                    continue;
                };
                let walked_elsewhere = real != path && inside_walked(&real);
                if walked_elsewhere || !listed.insert(real) {
                    continue;
                }
            }
            if let Some(inc) = &include
                && !inc.is_match(path.strip_prefix(anchor).unwrap_or(rel))
            {
                continue;
            }
            if !looks_like_image(path) {
                continue;
            }
            out.files.push(CrawledFile {
                root: root_idx,
                rel_path: rel.to_path_buf(),
                abs_path: path.to_path_buf(),
                stamp: FileStamp::of(&meta),
            });
        }
    }
    out.met_again = met_again;
    Ok(out)
}

/// The one name each folder (device and inode) is walked and indexed under in a run, whatever
/// the paths to it (links, bind mounts). The rule, first match wins:
/// 1. a folder's own path over a link's: a followed link into a walked or tracked folder is
///    never walked (the walk checks that before asking here);
/// 2. a tracked folder's name over one met inside a walk, and among tracked names the one
///    tracked first (the stored roots' order): the names are seeded in that order;
/// 3. then the first name met, the walk visiting roots and each folder's entries in path order.
///
/// An inode of 0 tells nothing: such a folder is walked under every name.
pub(crate) struct FolderNames {
    first: std::collections::HashMap<(u64, u64), PathBuf>,
}

impl FolderNames {
    /// Names seeded with the tracked folders, in the order they were tracked; a tracked name
    /// that is a link, or missing, is left out (links are told by their paths).
    pub(crate) fn seeded(tracked: &[PathBuf]) -> FolderNames {
        let mut names = FolderNames {
            first: Default::default(),
        };
        for t in tracked {
            if std::fs::canonicalize(t).is_ok_and(|r| r == *t)
                && let Ok(meta) = std::fs::metadata(t)
                && meta.is_dir()
            {
                names.walked_before(&meta, t);
            }
        }
        names
    }

    /// The name the folder `meta` describes is kept under, when that is not `path`; otherwise
    /// `path` is recorded as its name, if it has none yet.
    pub(crate) fn walked_before(
        &mut self,
        meta: &std::fs::Metadata,
        path: &Path,
    ) -> Option<PathBuf> {
        let key = identity(meta)?;
        match self.first.entry(key) {
            std::collections::hash_map::Entry::Occupied(first) => {
                (first.get() != path).then(|| first.get().clone())
            }
            std::collections::hash_map::Entry::Vacant(slot) => {
                slot.insert(path.to_path_buf());
                None
            }
        }
    }
}

/// A folder's device and inode; `None` for an inode of 0, which tells nothing.
#[cfg(unix)]
fn identity(meta: &std::fs::Metadata) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    (meta.ino() != 0).then(|| (meta.dev(), meta.ino()))
}

#[cfg(not(unix))]
fn identity(_meta: &std::fs::Metadata) -> Option<(u64, u64)> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(p: &Path, bytes: &[u8]) {
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, bytes).unwrap();
    }

    const PNG_MAGIC: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";

    /// Each refusal of a pattern names it once, with the reason.
    #[test]
    fn a_bad_glob_is_named_once() {
        for (pattern, why) in [
            ("[", "unclosed character class"),
            ("**/[a-Z]*.png", "invalid range; 'a' > 'Z'"),
            ("{a,b", "unclosed alternate group"),
            ("a,b}", "unopened alternate group"),
            ("x\\", "dangling"),
            ("", "an empty pattern"),
            ("/x/**", "relative to the folder"),
        ] {
            for config in [
                CrawlConfig {
                    include: vec!["*.jpg".into(), pattern.into()],
                    ..Default::default()
                },
                CrawlConfig {
                    exclude: vec![pattern.into()],
                    ..Default::default()
                },
            ] {
                let e = check_globs(&config).expect_err(pattern).to_string();
                assert_eq!(e.matches(&format!("'{pattern}'")).count(), 1, "{e}");
                assert!(e.contains(why), "{e}");
            }
        }
    }

    #[test]
    fn globs_ignore_letter_case() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        touch(&d.join("a.jpg"), b"x");
        touch(&d.join("sub/UP.JPG"), b"x");
        touch(&d.join("Thumbs/t.jpg"), b"x");
        touch(&d.join("café.jpg"), b"x");
        touch(&d.join("Été/b.jpg"), b"x");
        let cfg = CrawlConfig {
            roots: vec![d.to_path_buf()],
            include: vec!["**/*.jpg".into()],
            // every letter, not only ASCII ones
            exclude: vec!["thumbs".into(), "**/CAFÉ*".into(), "éTé".into()],
            ..Default::default()
        };
        let found: Vec<PathBuf> = crawl(&cfg)
            .unwrap()
            .files
            .into_iter()
            .map(|f| f.rel_path)
            .collect();
        assert_eq!(
            found,
            vec![PathBuf::from("a.jpg"), PathBuf::from("sub/UP.JPG")]
        );
    }

    #[test]
    fn finds_images_by_extension_and_content_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        touch(&d.join("b.jpg"), b"x");
        touch(&d.join("a/noext"), PNG_MAGIC);
        touch(&d.join("notes.txt"), b"hello");
        touch(&d.join(".hidden/c.png"), PNG_MAGIC);
        touch(&d.join(".lookalike/d.png"), PNG_MAGIC);
        touch(&d.join("skip/e.png"), PNG_MAGIC);
        let cfg = CrawlConfig {
            roots: vec![d.to_path_buf()],
            exclude: vec!["skip".into()],
            ..Default::default()
        };
        let c = crawl(&cfg).unwrap();
        let rels: Vec<_> = c.files.iter().map(|f| f.rel_path.clone()).collect();
        assert_eq!(rels, vec![PathBuf::from("a/noext"), PathBuf::from("b.jpg")]);
        assert!(c.problems.is_empty(), "{:?}", c.problems);
    }

    #[test]
    fn include_globs_and_skip_dir() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        touch(&d.join("x/1.png"), PNG_MAGIC);
        touch(&d.join("y/2.png"), PNG_MAGIC);
        touch(&d.join("idx/3.png"), PNG_MAGIC);
        let cfg = CrawlConfig {
            roots: vec![d.to_path_buf()],
            include: vec!["x/**".into(), "idx/**".into()],
            skip_paths: vec![d.join("idx")],
            ..Default::default()
        };
        let rels: Vec<_> = crawl(&cfg)
            .unwrap()
            .files
            .into_iter()
            .map(|f| f.rel_path)
            .collect();
        assert_eq!(rels, vec![PathBuf::from("x/1.png")]);
    }

    #[test]
    fn missing_root_is_an_error_naming_it() {
        let cfg = CrawlConfig {
            roots: vec![PathBuf::from("/definitely/not/here")],
            ..Default::default()
        };
        let err = crawl(&cfg).unwrap_err().to_string();
        assert!(err.contains("/definitely/not/here"), "{err}");
    }

    #[cfg(unix)]
    #[test]
    fn symlink_loop_is_reported_not_fatal() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        touch(&d.join("a/1.png"), PNG_MAGIC);
        std::os::unix::fs::symlink(d.join("a"), d.join("a/loop")).unwrap();
        let cfg = CrawlConfig {
            roots: vec![d.to_path_buf()],
            follow_symlinks: true,
            ..Default::default()
        };
        let c = crawl(&cfg).unwrap();
        assert_eq!(c.files.len(), 1);
        assert!(c.problems.iter().any(|p| p.reason.contains("loop")));
        // Without following, the link is simply not walked.
        let cfg = CrawlConfig {
            roots: vec![d.to_path_buf()],
            ..Default::default()
        };
        let c = crawl(&cfg).unwrap();
        assert_eq!(c.files.len(), 1);
        assert!(c.problems.is_empty());
    }

    /// With links followed, a link to a folder inside the walked root is not walked: the
    /// folder is walked once, under its own name (a loop inside it is met once, not once per
    /// name), and the link is told met again.
    #[cfg(unix)]
    #[test]
    fn a_followed_link_to_a_walked_folder_is_not_walked_again() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path().canonicalize().unwrap();
        touch(&d.join("b/1.png"), PNG_MAGIC);
        std::os::unix::fs::symlink(d.join("b"), d.join("b/loop")).unwrap();
        // met before the folder it leads to, in the walk's order
        std::os::unix::fs::symlink(d.join("b"), d.join("a-link")).unwrap();
        let cfg = CrawlConfig {
            roots: vec![d.clone()],
            follow_symlinks: true,
            ..Default::default()
        };
        let c = crawl(&cfg).unwrap();
        let files: Vec<_> = c.files.iter().map(|f| f.abs_path.clone()).collect();
        assert_eq!(files, [d.join("b/1.png")]);
        let loops: Vec<_> = c.problems.iter().map(|p| p.path.clone()).collect();
        assert_eq!(loops, [d.join("b/loop")], "left: {loops:?}");
        assert_eq!(c.met_again, [(d.join("a-link"), d.join("b"))]);
    }

    /// One folder reached by two names (a link here; a bind mount in use) is walked under the
    /// first only; another folder is walked too.
    #[test]
    fn a_folder_met_again_under_another_name_is_told_walked() {
        let tmp = tempfile::tempdir().unwrap();
        let (real, link, other) = (
            tmp.path().join("real"),
            tmp.path().join("link"),
            tmp.path().join("other"),
        );
        std::fs::create_dir(&real).unwrap();
        std::fs::create_dir(&other).unwrap();
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let mut names = FolderNames::seeded(&[]);
        let meta = |p: &Path| std::fs::metadata(p).unwrap();
        assert_eq!(names.walked_before(&meta(&real), &real), None);
        assert_eq!(names.walked_before(&meta(&other), &other), None);
        assert_eq!(names.walked_before(&meta(&link), &link), Some(real.clone()));
        // a name met again as itself is walked
        assert_eq!(names.walked_before(&meta(&real), &real), None);
    }
}
