//! The indexing pipeline: crawl, change detection, parallel decode + extraction, one SQLite
//! writer committing in batches, then the HNSW refresh. Reports progress through events and
//! stops cleanly when asked; it never prints.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rayon::prelude::*;

use crate::collection::{Collection, WalkOptions};
use crate::crawl::{CrawlConfig, CrawlProblem, crawl};
use crate::decode::{DecodeConfig, decode, shrunk_to_fit};
use crate::error::{Error, Result};
use crate::features::{FeatureInput, Fusion, Profile, Registry};
use crate::graph::{GraphRefresh, GraphUpdate, UpdatePolicy};
use crate::store::{
    CatalogEntry, FeatureRow, FileStamp, ImageFacts, Store, StoredContent, WriteOp,
};
use image::RgbImage;

/// Everything `index` needs besides the collection.
#[derive(Debug, Clone, Default)]
pub struct IndexConfig {
    /// Which files the walk visits.
    pub crawl: CrawlConfig,
    /// Decoding limits and the working resolution.
    pub decode: DecodeConfig,
    /// Try again files that failed before even if they have not changed.
    pub retry_failed: bool,
    /// Check every stored vector and extract again the images whose vectors are damaged (a
    /// read of every vector: a plain run reads none).
    pub repair: bool,
    /// Rows per write transaction (0 = default).
    pub batch_size: usize,
    /// Neighbours averaged into each stored vector of the graph, recorded for the collection
    /// (0: none); `None` keeps what the collection recorded, or the default.
    pub dba: Option<usize>,
    /// Rebuild the HNSW graph in full even when it could be updated in place.
    pub rebuild_graph: bool,
    /// Feature profile, recorded for the collection (a change re-extracts every image);
    /// `None` keeps what the collection recorded, or the full profile.
    pub profile: Option<Profile>,
    /// When the graph may be updated in place.
    pub graph_update: UpdatePolicy,
    /// Walk with the default options and forget the remembered ones. Without it, a run whose
    /// `crawl` sets no walk option reuses the options the collection remembers, and one that
    /// sets some records them.
    pub walk_defaults: bool,
    /// The lookalike command running the pass, which `status` names while it writes
    /// (`None`: `index`).
    pub command: Option<&'static str>,
}

impl IndexConfig {
    /// The flags of a run with this configuration that change what it does, as command-line
    /// words, with `walk` the walk options it applies: what a command resuming it must give.
    fn result_flags(&self, walk: &WalkOptions) -> Vec<String> {
        let mut words: Vec<String> = Vec::new();
        // a glob starting with `-` is one word with its flag, which would read it as a flag
        let mut glob_words = |flag: &str, glob: &String| {
            if glob.starts_with('-') {
                words.push(format!("{flag}={glob}"));
            } else {
                words.extend([flag.to_string(), glob.clone()]);
            }
        };
        for glob in &walk.include {
            glob_words("--include", glob);
        }
        for glob in &walk.exclude {
            glob_words("--exclude", glob);
        }
        let switches = [
            (walk.follow_symlinks, "--follow-symlinks"),
            (walk.hidden, "--hidden"),
            (self.walk_defaults, "--walk-defaults"),
            (self.retry_failed, "--retry-failed"),
            (self.repair, "--repair"),
            (self.rebuild_graph, "--rebuild-graph"),
        ];
        words.extend(switches.iter().filter(|s| s.0).map(|s| s.1.to_string()));
        if let Some(k) = self.dba {
            words.extend(["--dba".to_string(), k.to_string()]);
        }
        if let Some(p) = self.profile {
            words.extend(["--profile".to_string(), p.name().to_string()]);
        }
        if self.decode.memory_budget != DecodeConfig::default().memory_budget {
            words.extend([
                "--memory-budget".to_string(),
                (self.decode.memory_budget >> 20).to_string(),
            ]);
        }
        words
    }
}

/// Progress events; the CLI renders them.
#[derive(Debug, Clone)]
pub enum Progress {
    /// The walk found this many candidate files.
    Crawled {
        /// Candidate files found.
        files: usize,
    },
    /// This many files need reading (the rest are unchanged).
    Planned {
        /// Files that need reading.
        to_process: usize,
        /// Files already indexed and unchanged.
        unchanged: usize,
    },
    /// One more file was handled.
    Processed {
        /// Files handled so far.
        done: usize,
        /// Files to handle in all (the planned `to_process`).
        total: usize,
    },
    /// The HNSW graph is being rebuilt over this many images.
    BuildingAnn {
        /// Images in the index.
        images: usize,
    },
}

/// A file that could not be indexed in this run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FailedFile {
    /// Absolute path of the file.
    #[serde(flatten, serialize_with = "crate::path_repr::path")]
    pub path: PathBuf,
    /// Why it failed.
    pub reason: String,
}

/// What a run did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct IndexSummary {
    /// The feature profile the collection is indexed with.
    pub profile: Profile,
    /// The walk options this run used (given, or remembered by the collection).
    pub walk_options: WalkOptions,
    /// The options the collection remembered before, when this run's replaced them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replaced_walk_options: Option<WalkOptions>,
    /// Files seen for the first time and extracted.
    pub new: usize,
    /// Files already indexed and unchanged (nothing decoded).
    pub unchanged: usize,
    /// Files whose content changed, or whose features were outdated, re-extracted.
    pub updated: usize,
    /// Of `updated`, images whose stored vectors were damaged (a failed check).
    pub(crate) repaired: usize,
    /// Files found under a new path, recognised by content hash (features kept).
    pub(crate) moved: usize,
    /// New paths with content already indexed elsewhere (features copied, nothing decoded).
    pub duplicates: usize,
    /// Files gone from disk, or no longer walked, removed from the index.
    pub(crate) removed: usize,
    /// Of `removed`, files still on disk: the walk options skip them now (or they are no
    /// longer images); the files themselves are untouched.
    pub(crate) removed_on_disk: usize,
    /// Files that failed in this run.
    pub failed: Vec<FailedFile>,
    /// Files that failed before and are unchanged (not retried; see `--retry-failed`).
    pub still_failing: usize,
    /// Paths the walk could not read.
    pub problems: Vec<CrawlProblem>,
    /// Files that kept changing while they were read: not recorded, the next run reads them.
    #[serde(flatten, serialize_with = "crate::path_repr::changing")]
    pub(crate) changing: Vec<PathBuf>,
    /// Tracked folders that are gone (or not mounted): their images are kept until they come
    /// back or `lookalike forget` drops them.
    #[serde(flatten, serialize_with = "crate::path_repr::missing_roots")]
    pub(crate) missing_roots: Vec<PathBuf>,
    /// Second rows of one file under overlapping folders, merged into one.
    pub(crate) merged: usize,
    /// Tracked folders that have become links into other tracked folders, with the folder
    /// each leads into: not walked, their images indexed under the other.
    #[serde(serialize_with = "crate::path_repr::pairs")]
    pub(crate) aliased: Vec<(PathBuf, PathBuf)>,
    /// Folders named in this run, inside another tracked folder whose `--exclude` patterns
    /// (matched from it) skip everything in them: tracked, but no file of theirs is indexed.
    #[serde(flatten, serialize_with = "crate::path_repr::excluded_folders")]
    pub(crate) excluded_folders: Vec<PathBuf>,
    /// Images in the index after the run.
    pub total_images: usize,
    pub(crate) elapsed_secs: f64,
    /// Images decoded and extracted per second during extraction (0 when none were).
    pub(crate) images_per_sec: f64,
    /// The HNSW graph was built in full.
    pub ann_rebuilt: bool,
    /// Images the graph answers for after the run (fewer than `total_images` while some lack
    /// the profile's vectors).
    pub graph_images: Option<usize>,
    /// The HNSW graph was updated in place: images inserted and points hidden.
    pub ann_updated: Option<GraphUpdate>,
    pub(crate) interrupted: bool,
    /// The stop came while the graph was built or updated: the previous graph dump is kept.
    pub(crate) graph_stopped: bool,
    /// Stored vectors found damaged while the graph was refreshed; their images were left out.
    pub(crate) damaged_vectors: Vec<crate::store::DamagedVector>,
}

/// One file to look at, placed under the outermost tracked root that holds it.
#[derive(Debug, Clone)]
struct FileAt {
    root_id: i64,
    /// Relative to that root.
    rel_path: PathBuf,
    abs_path: PathBuf,
    /// As the walk saw it.
    stamp: FileStamp,
}

/// Outcome of one file, produced by a worker.
enum Outcome {
    Extracted {
        file: FileAt,
        hash: [u8; 32],
        facts: ImageFacts,
        features: Vec<FeatureRow>,
        /// `None` when the profile stores none.
        thumbnail: Option<Vec<u8>>,
    },
    /// Same bytes as the row at the same path: only the stamp changed.
    Touched { id: i64, stamp: FileStamp },
    /// Content already indexed (under some id): move or copy, no decoding.
    KnownContent { file: FileAt, hash: [u8; 32] },
    /// Same bytes as a file another worker of this run decodes: copied from it once written,
    /// no decoding.
    SameAsInRun { file: FileAt, hash: [u8; 32] },
    Failed {
        file: FileAt,
        reason: String,
        /// The bytes' hash, when they were read.
        hash: Option<[u8; 32]>,
    },
    /// An indexed file this run may not read (its permissions changed): reported as failed,
    /// its row kept, for the file is still there.
    Unreadable { file: FileAt, reason: String },
    /// The file kept changing while it was read: nothing recorded, the next run reads it.
    Changing { file: FileAt },
    /// Deleted between the walk and the read, or reached through a link the run may not
    /// follow: the row of a file deleted leaves with the run's removals.
    Gone { file: FileAt },
}

fn features_current(entry: &CatalogEntry, signatures: &[(String, u32, String)]) -> bool {
    signatures.iter().all(|sig| entry.features.contains(sig))
}

/// What `index` was asked to look at, checked before anything is written.
#[derive(Debug, Default)]
struct Targets {
    /// Folders, canonical: tracked from now on.
    folders: Vec<PathBuf>,
    /// Single files: indexed under the tracked root that holds them, never tracked.
    files: Vec<NamedFile>,
}

/// A file named alone: the path as given, and where the walks of its folder list it.
#[derive(Debug)]
struct NamedFile {
    given: PathBuf,
    /// Canonical until placed below a folder ([`place_files`]).
    path: PathBuf,
}

fn resolve_targets(paths: &[PathBuf]) -> Result<Targets> {
    let mut targets = Targets::default();
    for path in paths {
        let real = std::fs::canonicalize(path).map_err(|e| Error::io(path, e))?;
        let meta = std::fs::metadata(&real).map_err(|e| Error::io(path, e))?;
        if meta.is_dir() {
            targets.folders.push(real);
        } else if meta.is_file() {
            targets.files.push(NamedFile {
                given: path.clone(),
                path: real,
            });
        } else {
            return Err(Error::InvalidInput(format!(
                "{}: not a folder nor a regular file; `lookalike index` takes folders of images",
                crate::path_repr::shown(path)
            )));
        }
    }
    Ok(targets)
}

/// True when some indexed image lacks a feature of the profile, or keeps one of another.
fn profile_incomplete(store: &Store, registry: &Registry) -> Result<bool> {
    let stats = store.stats()?;
    let current = registry.signatures();
    let outdated = stats
        .feature_versions
        .iter()
        .any(|(f, v, p, n)| *n > 0 && !current.contains(&(f.clone(), *v, p.clone())));
    let missing = current.iter().any(|(family, version, params)| {
        let have: u64 = stats
            .feature_versions
            .iter()
            .filter(|(f, v, p, _)| f == family && v == version && p == params)
            .map(|row| row.3)
            .sum();
        have < stats.images
    });
    Ok(outdated || missing)
}

/// Refuses a file named on its own that the walks of its folder skip (hidden, excluded, not
/// included, not an image): indexed now, it would be dropped by the next refresh.
fn refuse_files_walks_skip(
    collection: &Collection,
    targets: &Targets,
    tracked: &HashMap<i64, PathBuf>,
    crawl: &CrawlConfig,
) -> Result<()> {
    let roots: Vec<&PathBuf> = tracked.values().chain(&targets.folders).collect();
    for NamedFile { given, path: file } in &targets.files {
        // placed through its own link: a walk that does not follow links skips it
        if !crawl.follow_symlinks && file.symlink_metadata().is_ok_and(|m| m.is_symlink()) {
            let following = WalkOptions {
                follow_symlinks: true,
                ..WalkOptions::of(crawl)
            };
            return Err(Error::InvalidWithCommand {
                reason: format!(
                    "{}: not indexed: a symbolic link, and the walks do not follow links",
                    crate::path_repr::shown(given)
                ),
                command: take_in_command(collection, &following, given),
                then: "takes it in, and the index then follows links everywhere".into(),
            });
        }
        let Some(root) = roots
            .iter()
            .filter(|root| below(file, root))
            .min_by_key(|root| root.components().count())
        else {
            continue;
        };
        let walk = CrawlConfig {
            keep_dirs: roots
                .iter()
                .filter(|r| **r != *root && r.starts_with(root))
                .map(|r| (*r).clone())
                .collect(),
            ..crawl.clone()
        };
        if let Some(why) = crate::crawl::why_not_walked(&walk, root, file)? {
            let reason = format!("{}: not indexed: {why}", crate::path_repr::shown(given));
            if !why.contains("hidden") {
                return Err(Error::InvalidInput(reason));
            }
            let with_hidden = WalkOptions {
                hidden: true,
                ..WalkOptions::of(crawl)
            };
            return Err(Error::InvalidWithCommand {
                reason,
                command: take_in_command(collection, &with_hidden, given),
                then: "takes it in, and the index then walks hidden files everywhere".into(),
            });
        }
    }
    Ok(())
}

/// The `index` command that takes in `file` with the walk options `walk`, as shell words.
fn take_in_command(collection: &Collection, walk: &WalkOptions, file: &Path) -> String {
    // a name starting with `-` would be read as a flag
    let file = if file.as_os_str().as_encoded_bytes().starts_with(b"-") {
        Path::new(".").join(file)
    } else {
        file.to_path_buf()
    };
    crate::collection::advised_command(
        collection,
        &format!(
            "index {} {}",
            walk.flags(),
            crate::path_repr::shell_word(file.as_os_str())
        ),
    )
}

/// True when `path` lies strictly below `root`: a file is never the folder it is matched to.
pub(crate) fn below(path: &Path, root: &Path) -> bool {
    path != root && path.starts_with(root)
}

/// The outermost of `roots` holding the file `path` (strictly below it), with the path
/// relative to it.
fn home<'a>(roots: &'a [(i64, PathBuf)], path: &Path) -> Option<(i64, &'a Path, PathBuf)> {
    roots
        .iter()
        .filter(|(_, root)| below(path, root))
        .min_by_key(|(_, root)| root.components().count())
        .and_then(|(id, root)| {
            path.strip_prefix(root)
                .ok()
                .map(|rel| (*id, root.as_path(), rel.to_path_buf()))
        })
}

/// The real path of `abs`, its links resolved, with each parent folder resolved once
/// (`parents` caches them); `None` when it does not resolve.
fn real_path(abs: &Path, parents: &mut HashMap<PathBuf, Option<PathBuf>>) -> Option<PathBuf> {
    if abs
        .symlink_metadata()
        .map_or(true, |m| m.file_type().is_symlink())
    {
        return std::fs::canonicalize(abs).ok();
    }
    let (parent, name) = (abs.parent()?, abs.file_name()?);
    parents
        .entry(parent.to_path_buf())
        .or_insert_with(|| std::fs::canonicalize(parent).ok())
        .as_ref()
        .map(|p| p.join(name))
}

/// With links followed, the rows outside `walked` reached through a link into a tracked folder
/// (indexed before that folder was tracked) are that folder's files, as a walk finds them: each
/// moves to where its real path lies, or goes when a row is there already. Returns the rows
/// that went.
fn rehome_linked_rows(
    store: &mut Store,
    roots: &[(i64, PathBuf)],
    walked: &[PathBuf],
) -> Result<usize> {
    let catalog = store.catalog()?;
    let mut taken: HashSet<(i64, PathBuf)> = catalog
        .iter()
        .map(|e| (e.root_id, e.rel_path.clone()))
        .collect();
    let mut parents = HashMap::new();
    let mut ops = Vec::new();
    let mut removed = 0;
    for e in &catalog {
        let Some((_, root)) = roots.iter().find(|(id, _)| *id == e.root_id) else {
            continue;
        };
        let abs = root.join(&e.rel_path);
        if walked.iter().any(|w| below(&abs, w)) {
            continue;
        }
        let Some(real) = real_path(&abs, &mut parents) else {
            continue;
        };
        if real == abs {
            continue;
        }
        let Some((root_id, _, rel_path)) = home(roots, &real) else {
            continue;
        };
        match claim_move(&mut taken, e, root_id, rel_path) {
            Some(to) => ops.push(to),
            None => {
                removed += 1;
                ops.push(WriteOp::Remove { id: e.id });
            }
        }
    }
    store.apply(&ops)?;
    Ok(removed)
}

/// The move of row `e` to `rel_path` under `root_id`, claiming that place in `taken`; `None`
/// when another row holds it already.
fn claim_move(
    taken: &mut HashSet<(i64, PathBuf)>,
    e: &CatalogEntry,
    root_id: i64,
    rel_path: PathBuf,
) -> Option<WriteOp> {
    taken
        .insert((root_id, rel_path.clone()))
        .then_some(WriteOp::Move {
            id: e.id,
            root_id,
            rel_path,
            stamp: e.stamp,
        })
}

/// The folders a walk of every folder in `present` starts from: the outermost ones, and those
/// now links (a walk does not follow them into a folder inside another).
fn walk_starts(present: &[PathBuf]) -> Vec<PathBuf> {
    let is_link = |p: &Path| p.symlink_metadata().is_ok_and(|m| m.is_symlink());
    present
        .iter()
        .filter(|w| is_link(w) || !present.iter().any(|o| o != *w && w.starts_with(o)))
        .cloned()
        .collect()
}

/// Places each file named alone where the walks of the tracked folders and those named with
/// it list it ([`placed`]), and refuses one that lies in none of them.
fn place_files(collection: &Collection, targets: &mut Targets, tracked: &[&PathBuf]) -> Result<()> {
    let roots: Vec<&PathBuf> = tracked.iter().copied().chain(&targets.folders).collect();
    let mut files = std::mem::take(&mut targets.files);
    for file in &mut files {
        let Some(path) = placed(&file.given, &roots) else {
            return Err(Error::InvalidInput(format!(
                "{}: not inside an indexed folder; index the folder that holds it (`{}`)",
                crate::path_repr::shown(&file.given),
                crate::collection::advised_command(collection, "index DIR")
            )));
        };
        file.path = path;
    }
    targets.files = files;
    Ok(())
}

/// Where the walks of `roots` list the file `given`: its real path when that lies below one of
/// them; else the path through a folder of `roots` that is now a link (moved, a link left at
/// its name), or through the file's own link (its folder resolved, as a walk following links
/// lists it). `None` when none of them holds it.
pub(crate) fn placed(given: &Path, roots: &[&PathBuf]) -> Option<PathBuf> {
    let real = std::fs::canonicalize(given).ok()?;
    let through_link = std::path::absolute(given).ok().and_then(|abs| {
        let folder = std::fs::canonicalize(abs.parent()?).ok()?;
        Some(folder.join(abs.file_name()?))
    });
    for path in std::iter::once(real).chain(through_link) {
        if roots.iter().any(|root| below(&path, root)) {
            return Some(path);
        }
        for root in roots {
            if let Ok(resolved) = std::fs::canonicalize(root)
                && resolved != **root
                && below(&path, &resolved)
                && let Ok(rel) = path.strip_prefix(&resolved)
            {
                return Some(root.join(rel));
            }
        }
    }
    None
}

/// Runs one indexing pass into `collection`, with the families and fusion of its feature
/// profile. `config.crawl.roots` may name folders (tracked from then on) and files inside
/// tracked folders; when it is empty, every tracked folder is walked again.
pub fn run(
    collection: &Collection,
    config: &IndexConfig,
    progress: &(dyn Fn(Progress) + Sync),
    stop: &AtomicBool,
) -> Result<IndexSummary> {
    let start = Instant::now();
    let mut targets = resolve_targets(&config.crawl.roots)?;
    crate::crawl::check_globs(&config.crawl)?;
    // A request refused on a new index leaves no index behind: what can be refused without
    // the tracked folders is refused before the index folder is made.
    if !collection.exists() {
        place_files(collection, &mut targets, &[])?;
        if targets.folders.is_empty() {
            return Err(Error::InvalidInput(format!(
                "no folder is indexed yet: run `{}`",
                crate::collection::advised_command(collection, "index DIR")
            )));
        }
    }
    let mut lock = collection.lock_for_writing(config.command.unwrap_or("index"))?;
    let mut store = collection.open_store()?;
    let database = crate::cleanup::file_id(&collection.db_path());
    let tracked = store.roots()?;
    if targets.folders.is_empty() && targets.files.is_empty() && tracked.is_empty() {
        return Err(Error::InvalidInput(
            "no folder is indexed yet: run `lookalike index DIR`".into(),
        ));
    }
    let tracked_folders: Vec<&PathBuf> = tracked.values().collect();
    // a tracked folder that has become a file, or a link to one, is named as the folder it
    // was: it is told missing
    for f in std::mem::take(&mut targets.files) {
        match [spelled_form(&f.given), f.path.clone()]
            .into_iter()
            .find(|p| tracked_folders.contains(&p))
        {
            Some(folder) => targets.folders.push(folder),
            None => targets.files.push(f),
        }
    }
    place_files(collection, &mut targets, &tracked_folders)?;
    let profile = match config.profile {
        Some(p) => {
            collection.set_profile(&mut store, p)?;
            p
        }
        None => collection.profile(&store)?,
    };
    let (registry, fusion) = (Registry::for_profile(profile), Fusion::for_profile(profile));
    let given = WalkOptions::of(&config.crawl);
    crate::crawl::check_globs(&config.crawl)?;
    let walk = if !given.is_default() || config.walk_defaults {
        given.clone()
    } else {
        collection.walk_options(&store)?.unwrap_or_default()
    };
    refuse_files_walks_skip(
        collection,
        &targets,
        &tracked,
        &walk.applied_to(&config.crawl),
    )?;
    let remembered = collection.walk_options(&store)?.unwrap_or_default();
    // options given to an index that already tracks folders are announced even when it had
    // none: its next refresh walks every folder with them
    let replaced_walk_options = (remembered != walk
        && (!remembered.is_default() || !tracked.is_empty()))
    .then_some(remembered);
    if !given.is_default() {
        collection.set_walk_options(&mut store, Some(&given))?;
    } else if config.walk_defaults {
        collection.set_walk_options(&mut store, None)?;
    }
    let flags = config.result_flags(&walk);
    let config = &IndexConfig {
        crawl: walk.applied_to(&config.crawl),
        ..config.clone()
    };
    // indexes made before the signatures were recorded get them at their next run
    store.set_searched_signatures(&registry.signatures())?;
    let asked: Vec<PathBuf> = if config.crawl.roots.is_empty() {
        let mut all: Vec<PathBuf> = tracked.into_values().collect();
        all.sort();
        all
    } else {
        targets
            .folders
            .iter()
            .chain(targets.files.iter().map(|f| &f.path))
            .cloned()
            .collect()
    };
    let run_id = store.begin_run(&asked)?;
    lock.record_run(run_id);
    store.set_run_flags(run_id, &flags)?;
    let result = index_pass(
        collection, &mut store, &targets, config, &registry, &fusion, progress, stop,
    )
    .map(|summary| IndexSummary {
        profile,
        walk_options: walk,
        replaced_walk_options,
        ..summary
    });
    // one figure for the run, as recorded and as printed
    let elapsed_secs = start.elapsed().as_secs_f64();
    let (outcome, record) = match &result {
        Ok(summary) => {
            let mut summary = summary.clone();
            summary.elapsed_secs = elapsed_secs;
            let outcome = if summary.interrupted {
                "interrupted"
            } else {
                "complete"
            };
            (outcome, serde_json::to_string(&summary).unwrap_or_default())
        }
        Err(e) => ("error", e.to_string()),
    };
    // A failure to record the outcome must not hide the run's own result.
    let _ = store.finish_run(run_id, outcome, &record);
    let mut summary = result?;
    // The database written is no longer the index's: its folder was deleted (or replaced)
    // while the run went on, and what the run wrote went with it.
    if crate::cleanup::file_id(&collection.db_path()) != database {
        return Err(Error::InvalidInput(format!(
            "{}: the index folder was deleted or replaced during the run, and what the run wrote went with it; run `{}` again",
            crate::path_repr::shown(collection.dir()),
            crate::collection::advised_command(collection, "index")
        )));
    }
    summary.elapsed_secs = elapsed_secs;
    summary.damaged_vectors = store.take_damaged();
    Ok(summary)
}

/// What [`forget`] did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ForgetSummary {
    /// The folder no longer tracked.
    #[serde(flatten, serialize_with = "crate::path_repr::root")]
    pub(crate) root: PathBuf,
    /// Images removed from the index.
    pub(crate) removed: usize,
    /// Images kept because another tracked folder holds them.
    pub(crate) kept: usize,
    /// Second rows of one file under overlapping folders (an index written before each file
    /// was stored once), merged into one before the images are counted.
    pub(crate) merged: usize,
    /// Images in the index afterwards.
    pub(crate) total_images: usize,
    /// A stop (Ctrl-C) came while the graph was brought up to date: the folder is forgotten,
    /// the previous graph dump is kept (searches see it is stale and leave the forgotten
    /// images out) and the next `index` brings it up to date.
    pub(crate) graph_stopped: bool,
}

/// The stored form of a folder the user names, which may no longer exist.
fn tracked_form(path: &Path) -> PathBuf {
    if let Ok(real) = std::fs::canonicalize(path) {
        return real;
    }
    spelled_form(path)
}

/// `path` absolute as spelled, its folder resolved but not its last part: a tracked folder
/// replaced by a link is named so.
fn spelled_form(path: &Path) -> PathBuf {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut out = PathBuf::new();
    for part in absolute.components() {
        match part {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    match (out.parent(), out.file_name()) {
        (Some(parent), Some(name)) => std::fs::canonicalize(parent)
            .map(|p| p.join(name))
            .unwrap_or(out),
        _ => out,
    }
}

/// Stops tracking the folders `dirs`, each once: their images leave the index unless another
/// tracked folder holds them, and the graph follows. Every folder is checked first, so an error
/// changes nothing. Files on disk are not touched. Once `stop` is set the graph is left as it
/// was (each summary's `graph_stopped`); the folders stay forgotten.
pub fn forget(
    collection: &Collection,
    dirs: &[PathBuf],
    policy: &UpdatePolicy,
    stop: &AtomicBool,
) -> Result<Vec<ForgetSummary>> {
    if !collection.exists() {
        return Err(Error::NoIndex(collection.dir().to_path_buf()));
    }
    let _lock = collection.lock_for_writing("forget")?;
    let mut store = collection.open_store()?;
    let roots = store.roots()?;
    let mut ids: Vec<i64> = Vec::new();
    for dir in dirs {
        let (real, spelled) = (tracked_form(dir), spelled_form(dir));
        // a tracked folder named as spelled comes first: one now a link is that folder, not
        // the folder the link leads to
        let Some((&id, _)) = roots
            .iter()
            .find(|(_, p)| **p == spelled)
            .or_else(|| roots.iter().find(|(_, p)| **p == real))
        else {
            let mut tracked: Vec<String> =
                roots.values().map(|p| crate::path_repr::shown(p)).collect();
            tracked.sort();
            return Err(Error::InvalidInput(format!(
                "{}: not a tracked folder; nothing was forgotten; tracked: {}",
                crate::path_repr::shown(dir),
                if tracked.is_empty() {
                    "none".to_string()
                } else {
                    tracked.join(", ")
                }
            )));
        };
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    let mut summaries = ids
        .into_iter()
        .map(|id| forget_one(collection, &mut store, id))
        .collect::<Result<Vec<_>>>()?;
    let fusion = Fusion::for_profile(collection.profile(&store)?);
    // SQLite holds the change; a stop keeps the previous dump, which is stale from now on
    match collection.refresh_ann(&mut store, &fusion, policy, false, stop) {
        Ok(_) => {}
        Err(Error::Interrupted) => summaries.iter_mut().for_each(|s| s.graph_stopped = true),
        Err(e) => return Err(e),
    }
    Ok(summaries)
}

/// Stops tracking the folder `id` in SQLite, with the lock held; the graph is left to the
/// caller.
fn forget_one(collection: &Collection, store: &mut Store, id: i64) -> Result<ForgetSummary> {
    let roots = store.roots()?;
    let Some(root) = roots.get(&id) else {
        return Err(Error::Internal(format!(
            "tracked folder {id} went during forget"
        )));
    };
    let root = root.clone();
    // One file, one row, before counting: a file stored twice is one image, kept or removed.
    let merged = store.settle_roots(None)?.removed;
    let before = store.image_count()? as usize;
    let under: usize = store
        .catalog()?
        .iter()
        .filter(|e| {
            roots
                .get(&e.root_id)
                .is_some_and(|r| below(&r.join(&e.rel_path), &root))
        })
        .count();
    // A tracked folder that is now a link into the one forgotten (an alias) still holds the
    // images below the link's target: they move to it rather than leave.
    let aliases: Vec<(i64, PathBuf)> = roots
        .iter()
        .filter(|(other, _)| **other != id)
        .filter_map(|(other, path)| {
            let real = std::fs::canonicalize(path).ok()?;
            (real != *path && real.starts_with(&root) && real.is_dir()).then_some((*other, real))
        })
        .collect();
    if !aliases.is_empty() {
        let mut moves = Vec::new();
        for e in store.catalog()? {
            let Some(owner) = roots.get(&e.root_id) else {
                continue;
            };
            let abs = owner.join(&e.rel_path);
            if let Some((alias, real)) = aliases.iter().find(|(_, real)| below(&abs, real))
                && let Ok(rel) = abs.strip_prefix(real)
            {
                moves.push(WriteOp::Move {
                    id: e.id,
                    root_id: *alias,
                    rel_path: rel.to_path_buf(),
                    stamp: e.stamp,
                });
            }
        }
        store.apply(&moves)?;
    }
    // Walks that follow links reach the folder's files through links in the folders that
    // stay tracked: those rows move to the path a walk lists, rather than leave.
    let walk = collection
        .walk_options(store)?
        .unwrap_or_default()
        .applied_to(&CrawlConfig::default());
    if walk.follow_symlinks {
        keep_linked_rows(collection, store, &roots, id, &walk)?;
    }
    store.settle_roots(Some(id))?;
    // Rows taken over by an outer tracked folder whose walks skip them (hidden, excluded), or
    // left by a forgotten folder that is missing, would go at its next refresh: they go now,
    // and count as removed.
    let remaining = store.roots()?;
    let root_missing = !root.is_dir();
    let mut skipped = Vec::new();
    for e in store.catalog()? {
        let Some(owner) = remaining.get(&e.root_id) else {
            continue;
        };
        let abs = owner.join(&e.rel_path);
        if !below(&abs, &root) {
            continue;
        }
        let rules = CrawlConfig {
            keep_dirs: remaining
                .values()
                .filter(|r| *r != owner && r.starts_with(owner))
                .cloned()
                .collect(),
            ..walk.clone()
        };
        // a forgotten folder that is missing: its images, taken over by an outer folder that is
        // there, are not on disk, and that folder's next refresh would drop them anyway
        let gone = root_missing && owner.is_dir();
        if gone || crate::crawl::why_rules_skip(&rules, owner, &abs)?.is_some() {
            skipped.push(WriteOp::Remove { id: e.id });
        }
    }
    store.apply(&skipped)?;
    let total_images = store.image_count()? as usize;
    let removed = before - total_images;
    Ok(ForgetSummary {
        root,
        removed,
        kept: under.saturating_sub(removed),
        merged,
        total_images,
        graph_stopped: false,
    })
}

/// Before the tracked folder `id` is forgotten: its rows that no other tracked folder holds,
/// but that a walk of the others (`walk`, following links) lists through a link, move to the
/// path that walk lists.
fn keep_linked_rows(
    collection: &Collection,
    store: &mut Store,
    roots: &HashMap<i64, PathBuf>,
    id: i64,
    walk: &CrawlConfig,
) -> Result<()> {
    let Some(root) = roots.get(&id) else {
        return Ok(());
    };
    let mut others: Vec<(i64, PathBuf)> = roots
        .iter()
        .filter(|(other, _)| **other != id)
        .map(|(other, path)| (*other, path.clone()))
        .collect();
    others.sort();
    let leaving: Vec<(CatalogEntry, PathBuf)> = store
        .catalog()?
        .into_iter()
        .filter_map(|e| {
            let abs = roots.get(&e.root_id)?.join(&e.rel_path);
            (below(&abs, root) && home(&others, &abs).is_none()).then_some((e, abs))
        })
        .collect();
    if leaving.is_empty() {
        return Ok(());
    }
    let tracked: Vec<PathBuf> = others.iter().map(|o| o.1.clone()).collect();
    let present: Vec<PathBuf> = tracked.iter().filter(|t| t.is_dir()).cloned().collect();
    let starts = walk_starts(&present);
    // a tracked folder that cannot be walked now shows no link: the rows leave
    let Ok(walked) = crawl(&CrawlConfig {
        roots: starts.clone(),
        skip_paths: collection.own_paths(),
        keep_dirs: tracked
            .iter()
            .filter(|r| starts.iter().any(|w| r != &w && r.starts_with(w)))
            .cloned()
            .collect(),
        tracked,
        ..walk.clone()
    }) else {
        return Ok(());
    };
    // the first path the walk lists for each real file of the folder
    let mut through: HashMap<PathBuf, PathBuf> = HashMap::new();
    for f in walked.files {
        if let Ok(real) = std::fs::canonicalize(&f.abs_path)
            && real != f.abs_path
            && below(&real, root)
        {
            through.entry(real).or_insert(f.abs_path);
        }
    }
    let mut taken: HashSet<(i64, PathBuf)> = store
        .catalog()?
        .into_iter()
        .map(|e| (e.root_id, e.rel_path))
        .collect();
    let mut moves = Vec::new();
    for (e, abs) in leaving {
        let Some(link) = std::fs::canonicalize(&abs)
            .ok()
            .and_then(|real| through.get(&real))
        else {
            continue;
        };
        let Some((root_id, _, rel_path)) = home(&others, link) else {
            continue;
        };
        moves.extend(claim_move(&mut taken, &e, root_id, rel_path));
    }
    store.apply(&moves)
}

/// The work of one run, with the lock held and the run recorded.
#[allow(clippy::too_many_arguments)]
fn index_pass(
    collection: &Collection,
    store: &mut Store,
    targets: &Targets,
    config: &IndexConfig,
    registry: &Registry,
    fusion: &Fusion,
    progress: &(dyn Fn(Progress) + Sync),
    stop: &AtomicBool,
) -> Result<IndexSummary> {
    let mut summary = IndexSummary::default();
    for folder in &targets.folders {
        store.root_id(folder)?;
    }
    // One file, one row: files under nested roots belong to the outermost one.
    summary.merged = store.settle_roots(None)?.removed;
    let mut roots: Vec<(i64, PathBuf)> = store.roots()?.into_iter().collect();
    roots.sort();
    let tracked: Vec<PathBuf> = roots.iter().map(|r| r.1.clone()).collect();
    for folder in &targets.folders {
        let anchor = crate::crawl::rules_anchor(&tracked, folder);
        if anchor != folder
            && folder.is_dir()
            && crate::crawl::excludes_all_inside(&config.crawl, anchor, folder)?
        {
            summary.excluded_folders.push(folder.clone());
        }
    }
    // A tracked folder that has become a link into another tracked folder (renamed, with a
    // link left at the old name), or that is another tracked folder under a second name (a bind
    // mount: the same device and inode), shows the same files again: it is not walked, and its
    // rows go, their files being indexed under the other folder (the name `FolderNames` keeps:
    // the one tracked first), as the walk does with a folder met under two names.
    let mut names = crate::crawl::FolderNames::seeded(&tracked);
    let aliases: Vec<(PathBuf, PathBuf)> = roots
        .iter()
        .filter_map(|(_, root)| {
            // a link to a file is no folder: the tracked folder is missing
            let real = std::fs::canonicalize(root).ok().filter(|r| r.is_dir())?;
            if let Some(into) = roots
                .iter()
                .map(|(_, other)| other)
                .find(|other| *other != root && real.starts_with(other))
            {
                return (real != *root).then(|| (root.clone(), into.clone()));
            }
            // links are told by their paths, above
            if real != *root {
                return None;
            }
            let meta = std::fs::metadata(root).ok()?;
            names
                .walked_before(&meta, root)
                .map(|into| (root.clone(), into))
        })
        .collect();
    summary.aliased = aliases.clone();
    // While some images lack the profile's features (the profile was just changed, or a change
    // was interrupted), every tracked folder is walked: a run over one folder would leave the
    // others searched with another profile's vectors, or left out.
    let refresh_all = (targets.folders.is_empty() && targets.files.is_empty())
        || profile_incomplete(store, registry)?;
    let mut walk: Vec<PathBuf> = if refresh_all {
        roots.iter().map(|r| r.1.clone()).collect()
    } else {
        // the tracked folders inside those named come too, to be told missing or walked
        let mut named = targets.folders.clone();
        named.extend(
            roots
                .iter()
                .map(|r| r.1.clone())
                .filter(|r| targets.folders.iter().any(|t| r.starts_with(t))),
        );
        named
    };
    walk.retain(|w| !aliases.iter().any(|(alias, _)| alias == w));
    walk.sort();
    walk.dedup();
    // An unmounted disk looks like a deleted folder: a tracked folder that is missing, nested in
    // another or not, is reported and its images are kept (and, in a profile change, keep the
    // old profile's vectors until it is back).
    let (present, missing): (Vec<PathBuf>, Vec<PathBuf>) = walk
        .into_iter()
        .partition(|folder| std::fs::metadata(folder).is_ok_and(|m| m.is_dir()));
    summary.missing_roots.extend(missing.iter().cloned());
    // A folder inside another is walked with it, unless it is now a link (the outer walk does
    // not follow links): then it is walked on its own, through the link, as a tracked folder
    // replaced by a link is.
    let walk = walk_starts(&present);
    if config.crawl.follow_symlinks {
        let settled: Vec<PathBuf> = walk
            .iter()
            .chain(aliases.iter().map(|(alias, _)| alias))
            .cloned()
            .collect();
        summary.merged += rehome_linked_rows(store, &roots, &settled)?;
    }
    let crawl_cfg = CrawlConfig {
        roots: walk.clone(),
        skip_paths: collection.own_paths(),
        keep_dirs: roots
            .iter()
            .map(|r| r.1.clone())
            .filter(|r| walk.iter().any(|w| r != w && r.starts_with(w)))
            .collect(),
        tracked,
        ..config.crawl.clone()
    };
    let walked = crawl(&crawl_cfg)?;
    summary.problems = walked.problems.clone();
    // a tracked folder walked under another name is an alias of it too
    summary.aliased.extend(
        walked
            .met_again
            .iter()
            .filter(|(folder, _)| roots.iter().any(|(_, root)| root == folder))
            .cloned(),
    );
    // A folder named (or, when none is, tracked) whose images the walk options all skip is
    // told so, as one the excludes cover is above.
    let told = if targets.folders.is_empty() && targets.files.is_empty() {
        &walk
    } else {
        &targets.folders
    };
    for folder in told {
        // a tracked folder whose name a file now has is missing, not skipped; one walked under
        // another name is not skipped either
        if !summary.excluded_folders.contains(folder)
            && !summary.aliased.iter().any(|(alias, _)| alias == folder)
            && !walked
                .met_again
                .iter()
                .any(|(again, _)| folder.starts_with(again))
            && folder.is_dir()
            && !walked.files.iter().any(|f| f.abs_path.starts_with(folder))
            && !walked.problems.iter().any(|p| p.path.starts_with(folder))
            && crate::crawl::holds_an_image(folder, config.crawl.follow_symlinks)
        {
            summary.excluded_folders.push(folder.clone());
        }
    }
    let mut files: Vec<FileAt> = Vec::with_capacity(walked.files.len() + targets.files.len());
    let mut listed: HashSet<PathBuf> = HashSet::new();
    for (abs, stamp) in walked
        .files
        .into_iter()
        .map(|f| (f.abs_path, f.stamp))
        .chain(targets.files.iter().filter_map(|f| {
            let meta = std::fs::metadata(&f.path).ok()?;
            Some((f.path.clone(), FileStamp::of(&meta)))
        }))
    {
        if !listed.insert(abs.clone()) {
            continue;
        }
        if let Some((root_id, _, rel_path)) = home(&roots, &abs) {
            files.push(FileAt {
                root_id,
                rel_path,
                abs_path: abs,
                stamp,
            });
        }
    }
    progress(Progress::Crawled { files: files.len() });

    let signatures = registry.signatures();
    // An image whose stored vector fails its check counts as never extracted: its file is
    // read again, and its row is no source for copies or moves.
    let damaged: HashSet<i64> = if config.repair {
        store
            .check_vectors()?
            .into_iter()
            .map(|d| d.image_id)
            .collect()
    } else {
        HashSet::new()
    };
    let catalog: Vec<CatalogEntry> = store
        .catalog()?
        .into_iter()
        .map(|mut e| {
            if damaged.contains(&e.id) {
                e.features.clear();
            }
            e
        })
        .collect();
    // An indexed file the walk passed over for its content alone (no image extension, and
    // its first bytes unreadable or no longer an image's) is still there: it is read again,
    // and fails as a damaged `.jpg` does, instead of leaving the index as if deleted.
    for e in &catalog {
        let Some((_, root)) = roots.iter().find(|(id, _)| *id == e.root_id) else {
            continue;
        };
        let abs = root.join(&e.rel_path);
        if listed.contains(&abs)
            || crate::crawl::has_image_extension(&abs)
            || !walk.iter().any(|w| below(&abs, w))
        {
            continue;
        }
        let meta = if crawl_cfg.follow_symlinks {
            std::fs::metadata(&abs)
        } else {
            std::fs::symlink_metadata(&abs)
        };
        let Ok(meta) = meta else { continue };
        if !meta.is_file()
            || crate::crawl::why_rules_skip(&crawl_cfg, root, &abs)?.is_some()
            || crate::crawl::looks_like_image(&abs)
        {
            continue;
        }
        if let Some((root_id, _, rel_path)) = home(&roots, &abs) {
            listed.insert(abs.clone());
            files.push(FileAt {
                root_id,
                rel_path,
                abs_path: abs,
                stamp: FileStamp::of(&meta),
            });
        }
    }
    let by_path: HashMap<(i64, &Path), &CatalogEntry> = catalog
        .iter()
        .map(|e| ((e.root_id, e.rel_path.as_path()), e))
        .collect();
    // a file refused for a memory budget smaller than this run's is tried again
    let budget_mib = config.decode.memory_budget >> 20;
    let failures: HashMap<(i64, PathBuf), FileStamp> = store
        .failures()?
        .into_iter()
        .filter(|f| refused_budget_mib(&f.reason).is_none_or(|refused| refused >= budget_mib))
        .map(|f| ((f.root_id, f.rel_path), f.stamp))
        .collect();

    let mut seen: HashSet<(i64, &Path)> = HashSet::new();
    let mut jobs: Vec<(&FileAt, Option<&CatalogEntry>)> = Vec::new();
    for file in &files {
        seen.insert((file.root_id, file.rel_path.as_path()));
        let existing = by_path
            .get(&(file.root_id, file.rel_path.as_path()))
            .copied();
        match existing {
            Some(e) if file.stamp.matches(&e.stamp) && features_current(e, &signatures) => {
                summary.unchanged += 1;
            }
            None if !config.retry_failed
                && failures
                    .get(&(file.root_id, file.rel_path.clone()))
                    .is_some_and(|recorded| file.stamp.matches(recorded)) =>
            {
                summary.still_failing += 1;
            }
            _ => jobs.push((file, existing)),
        }
    }
    // Rows under walked folders whose path was not seen: deleted, or moved. Below a folder
    // the walk could not read, files may exist unseen: their rows stay.
    let relative = |paths: &mut dyn Iterator<Item = &PathBuf>| -> Vec<(i64, PathBuf)> {
        paths
            .filter_map(|p| {
                roots
                    .iter()
                    .filter(|(_, root)| p.starts_with(root))
                    .min_by_key(|(_, root)| root.components().count())
                    .and_then(|(id, root)| Some((*id, p.strip_prefix(root).ok()?.to_path_buf())))
            })
            .collect()
    };
    let walked_prefixes = relative(&mut walk.iter().chain(aliases.iter().map(|(alias, _)| alias)));
    let unread = relative(
        &mut walked
            .problems
            .iter()
            .filter(|p| p.hides_files)
            .map(|p| &p.path)
            .chain(&missing),
    );
    let under_walk = |root_id: i64, rel: &Path| {
        let under = |list: &[(i64, PathBuf)]| {
            list.iter()
                .any(|(id, prefix)| *id == root_id && rel.starts_with(prefix))
        };
        under(&walked_prefixes) && !under(&unread)
    };
    let vanished: Vec<&CatalogEntry> = catalog
        .iter()
        .filter(|e| {
            under_walk(e.root_id, &e.rel_path) && !seen.contains(&(e.root_id, e.rel_path.as_path()))
        })
        .collect();
    // Every row with current features is a source of its content, also one whose path this
    // run reads again (files that swapped names, or a file written just after it was
    // indexed): it stays a source until the writer overwrites its path with other bytes, and
    // its content is read back first when it was the last row holding it (see `Sources`).
    let mut vanished_by_hash: HashMap<[u8; 32], Vec<i64>> = HashMap::new();
    for e in vanished.iter().filter(|e| features_current(e, &signatures)) {
        vanished_by_hash.entry(e.hash).or_default().push(e.id);
    }
    let mut sources = Sources {
        by_path: &by_path,
        live: HashMap::new(),
        kept: HashMap::new(),
        overwritten: HashMap::new(),
        given: HashMap::new(),
    };
    for e in catalog.iter().filter(|e| features_current(e, &signatures)) {
        sources.live.entry(e.hash).or_default().push(e.id);
    }
    let known_hashes: HashSet<[u8; 32]> = sources.live.keys().copied().collect();

    progress(Progress::Planned {
        to_process: jobs.len(),
        unchanged: summary.unchanged,
    });

    let total = jobs.len();
    let batch_size = if config.batch_size == 0 {
        256
    } else {
        config.batch_size
    };
    let (tx, rx) = crossbeam_channel::bounded::<Outcome>(batch_size * 2);
    let mut claimed: HashSet<i64> = HashSet::new();
    // rows of files the walk saw but that were gone when read
    let mut gone_at_read: Vec<i64> = Vec::new();
    let mut handled = 0usize;
    // decoded and described: what the rate counts (a file read again unchanged is not)
    let mut extracted = 0usize;
    let extract_start = Instant::now();

    let claimed_in_run: Mutex<HashSet<[u8; 32]>> = Mutex::new(HashSet::new());
    let mut write_outcomes = || -> Result<()> {
        let mut in_run = InRunCopies::default();
        // files given indexed content no vanished row holds: given once every outcome is in,
        // when it is known which rows files trading paths leave free to move
        let mut to_give: Vec<(FileAt, [u8; 32])> = Vec::new();
        let mut batch: Vec<WriteOp> = Vec::with_capacity(batch_size);
        let mut last_commit = Instant::now();
        for outcome in rx.iter() {
            handled += 1;
            match outcome {
                Outcome::Extracted {
                    file,
                    hash,
                    facts,
                    features,
                    thumbnail,
                } => {
                    extracted += 1;
                    sources.overwrite(store, &file, Some(hash))?;
                    if let Some(e) = by_path.get(&(file.root_id, file.rel_path.as_path())) {
                        summary.updated += 1;
                        if damaged.contains(&e.id) {
                            summary.repaired += 1;
                        }
                    } else {
                        summary.new += 1;
                    }
                    let (root_id, rel_path) = (file.root_id, file.rel_path.clone());
                    batch.push(WriteOp::Upsert {
                        root_id: file.root_id,
                        rel_path: file.rel_path,
                        stamp: file.stamp,
                        hash,
                        facts,
                        features,
                        thumbnail,
                    });
                    let waited = in_run.waiting.remove(&hash).unwrap_or_default();
                    let mut decoded = InRun::Batched(root_id, rel_path);
                    for copy in waited {
                        sources.overwrite(store, &copy, Some(hash))?;
                        copy_in_run(&mut summary, store, &mut batch, &mut decoded, copy, hash)?;
                        last_commit = Instant::now();
                    }
                    in_run.decoded.insert(hash, decoded);
                }
                Outcome::Touched { id, stamp } => {
                    summary.unchanged += 1;
                    batch.push(WriteOp::Touch { id, stamp });
                }
                Outcome::KnownContent { file, hash } => {
                    sources.overwrite(store, &file, Some(hash))?;
                    let movable = vanished_by_hash
                        .get(&hash)
                        .and_then(|ids| ids.iter().find(|id| !claimed.contains(id)).copied());
                    if let Some(id) = movable {
                        claimed.insert(id);
                        record_move(&mut summary, &mut batch, id, file);
                    } else {
                        to_give.push((file, hash));
                    }
                }
                Outcome::SameAsInRun { file, hash } => match in_run.decoded.get_mut(&hash) {
                    Some(decoded) => {
                        sources.overwrite(store, &file, Some(hash))?;
                        copy_in_run(&mut summary, store, &mut batch, decoded, file, hash)?;
                        last_commit = Instant::now();
                    }
                    None => in_run.waiting.entry(hash).or_default().push(file),
                },
                Outcome::Changing { file } => summary.changing.push(file.abs_path),
                Outcome::Unreadable { file, reason } => {
                    summary.failed.push(FailedFile {
                        path: file.abs_path,
                        reason: reason.clone(),
                    });
                    batch.push(WriteOp::FailKept {
                        root_id: file.root_id,
                        rel_path: file.rel_path,
                        stamp: file.stamp,
                        reason,
                    });
                }
                Outcome::Gone { file } => {
                    // gone for good, not only refused through a link
                    let deleted = std::fs::metadata(&file.abs_path)
                        .is_err_and(|e| e.kind() == std::io::ErrorKind::NotFound);
                    if let Some(e) = by_path.get(&(file.root_id, file.rel_path.as_path()))
                        && deleted
                    {
                        gone_at_read.push(e.id);
                    }
                }
                Outcome::Failed { file, reason, hash } => {
                    sources.overwrite(store, &file, None)?;
                    if let Some(hash) = hash {
                        // the same bytes fail the same way
                        for copy in in_run.waiting.remove(&hash).unwrap_or_default() {
                            sources.overwrite(store, &copy, None)?;
                            record_failure(&mut summary, &mut batch, copy, reason.clone());
                        }
                        in_run.decoded.insert(hash, InRun::Failed(reason.clone()));
                    }
                    record_failure(&mut summary, &mut batch, file, reason);
                }
            }
            if batch.len() >= batch_size || last_commit.elapsed() > Duration::from_millis(500) {
                store.apply(&batch)?;
                batch.clear();
                last_commit = Instant::now();
            }
            progress(Progress::Processed {
                done: handled,
                total,
            });
        }
        // The rows at those files' paths, read again with other content: a file takes one of
        // its content (moved: its id and vectors kept, so the graph stays as it is, as when
        // files swap names), else a copy of it.
        let mut freed: HashMap<[u8; 32], Vec<i64>> = HashMap::new();
        for (file, _) in &to_give {
            if let Some(e) = by_path.get(&(file.root_id, file.rel_path.as_path()))
                && features_current(e, &signatures)
            {
                freed.entry(e.hash).or_default().push(e.id);
            }
        }
        let mut moves = Vec::new();
        let mut copies = Vec::new();
        for (file, hash) in to_give {
            match freed.get_mut(&hash).and_then(Vec::pop) {
                Some(id) => moves.push((id, hash, file)),
                None => match sources.give(&file, hash) {
                    Some(op) => {
                        if by_path
                            .get(&(file.root_id, file.rel_path.as_path()))
                            .is_some_and(|e| damaged.contains(&e.id))
                        {
                            summary.repaired += 1;
                        }
                        copies.push(op);
                    }
                    // its last row was overwritten and its vectors could not be read back
                    None => summary.changing.push(file.abs_path),
                },
            }
        }
        // Each row to move leaves its path first (for a name no file has), so that no move or
        // copy lands on a row still to move; all are applied in one transaction.
        for (id, _, file) in &moves {
            batch.push(WriteOp::Move {
                id: *id,
                root_id: file.root_id,
                rel_path: PathBuf::from(format!("\0moving\0{id}")),
                stamp: file.stamp,
            });
        }
        for (id, hash, file) in moves {
            sources.took_row(hash);
            record_move(&mut summary, &mut batch, id, file);
        }
        batch.extend(copies);
        store.apply(&batch)?;
        // Copies whose decoding file never reported (a stop): read again by the next run.
        for copies in in_run.waiting.into_values() {
            summary
                .changing
                .extend(copies.into_iter().map(|f| f.abs_path));
        }
        let (moved, duplicates) = sources.moved_and_duplicates();
        summary.moved += moved;
        summary.duplicates += duplicates;
        Ok(())
    };
    // Set when the writer fails (a full disk, say): the workers stop taking files.
    let abandoned = AtomicBool::new(false);
    let writer_result: Result<()> = std::thread::scope(|scope| {
        let jobs = &jobs;
        let known_hashes = &known_hashes;
        let claimed_in_run = &claimed_in_run;
        let abandoned = &abandoned;
        let signatures = &signatures;
        scope.spawn(move || {
            jobs.par_iter().for_each_with(tx, |tx, (file, existing)| {
                if stop.load(Ordering::Relaxed) || abandoned.load(Ordering::Relaxed) {
                    return;
                }
                let seen = Seen {
                    indexed: known_hashes,
                    this_run: claimed_in_run,
                };
                let outcome = process_file(file, *existing, &seen, signatures, config, registry);
                let _ = tx.send(outcome);
            });
        });
        let result = write_outcomes();
        if result.is_err() {
            // Workers blocked on the full channel would wait for ever: stop them, drain it.
            abandoned.store(true, Ordering::Relaxed);
            for _ in rx.iter() {}
        }
        result
    });
    writer_result?;
    // A folder renamed, deleted or unmounted during the run: its files read as gone from then
    // on, so the run did not see all of them.
    for folder in &walk {
        if !std::fs::metadata(folder).is_ok_and(|m| m.is_dir())
            && !summary.missing_roots.contains(folder)
        {
            summary.missing_roots.push(folder.clone());
        }
    }
    let extract_secs = extract_start.elapsed().as_secs_f64();
    // Images actually extracted: after Ctrl-C that is fewer than were planned.
    summary.images_per_sec = if extract_secs > 0.0 {
        extracted as f64 / extract_secs
    } else {
        0.0
    };

    if stop.load(Ordering::Relaxed) {
        summary.interrupted = true;
    } else {
        let removals: Vec<WriteOp> = vanished
            .iter()
            .map(|e| e.id)
            .chain(gone_at_read)
            .filter(|id| !claimed.contains(id))
            .map(|id| WriteOp::Remove { id })
            .collect();
        summary.removed = removals.len();
        summary.removed_on_disk = vanished
            .iter()
            .filter(|e| !claimed.contains(&e.id))
            .filter(|e| {
                roots
                    .iter()
                    .find(|(id, _)| *id == e.root_id)
                    // a folder now has its name: the image is gone
                    .is_some_and(|(_, root)| {
                        root.join(&e.rel_path)
                            .symlink_metadata()
                            .is_ok_and(|m| !m.is_dir())
                    })
            })
            .count();
        for chunk in removals.chunks(batch_size) {
            store.apply(chunk)?;
        }
        let gone_failures: Vec<(i64, PathBuf)> = failures
            .keys()
            .filter(|(root, rel)| under_walk(*root, rel) && !seen.contains(&(*root, rel.as_path())))
            .cloned()
            .collect();
        store.forget_failures(&gone_failures)?;
        let images = store.image_count()? as usize;
        progress(Progress::BuildingAnn { images });
        if let Some(k) = config.dba {
            collection.set_dba(store, k)?;
        }
        let refreshed = collection.refresh_ann(
            store,
            fusion,
            &config.graph_update,
            config.rebuild_graph,
            stop,
        );
        match refreshed {
            Ok(GraphRefresh::Current) => {}
            Ok(GraphRefresh::Rebuilt) => summary.ann_rebuilt = true,
            Ok(GraphRefresh::Updated(update)) => summary.ann_updated = Some(update),
            // SQLite holds everything extracted; the previous dump stays, and the next run
            // brings the graph up to date
            Err(Error::Interrupted) => {
                summary.interrupted = true;
                summary.graph_stopped = true;
            }
            Err(e) => return Err(e),
        }
        summary.graph_images = collection.dump_record(store)?.map(|r| r.images());
    }
    summary.total_images = store.image_count()? as usize;
    Ok(summary)
}

/// The content hashes a worker checks before decoding a file.
struct Seen<'a> {
    /// Content indexed before this run, with current features.
    indexed: &'a HashSet<[u8; 32]>,
    /// Content some worker of this run has taken to decode.
    this_run: &'a Mutex<HashSet<[u8; 32]>>,
}

/// The rows whose content the files of a run holding indexed bytes take, kept current as the
/// writer overwrites paths. An old row whose path now holds other bytes (a swap, a rotation,
/// a copy over it) is no source from then on; when it was the last row holding its content,
/// that content is read back first, for the files still to come that hold it.
struct Sources<'a> {
    /// The rows as the run found them, by path.
    by_path: &'a HashMap<(i64, &'a Path), &'a CatalogEntry>,
    /// Rows holding each content.
    live: HashMap<[u8; 32], Vec<i64>>,
    /// Content whose last row was overwritten (`None`: a vector was damaged).
    kept: HashMap<[u8; 32], Option<StoredContent>>,
    /// Per content: source rows overwritten with other bytes.
    overwritten: HashMap<[u8; 32], usize>,
    /// Per content: files given it.
    given: HashMap<[u8; 32], usize>,
}

impl Sources<'_> {
    /// Called before a write to `file`'s path that replaces its row, with the hash of the
    /// bytes written (`None`: a failure, which drops the row).
    fn overwrite(&mut self, store: &Store, file: &FileAt, hash: Option<[u8; 32]>) -> Result<()> {
        let Some(e) = self.by_path.get(&(file.root_id, file.rel_path.as_path())) else {
            return Ok(());
        };
        let Some(rows) = self.live.get_mut(&e.hash) else {
            return Ok(());
        };
        let Some(at) = rows.iter().position(|id| *id == e.id) else {
            return Ok(());
        };
        if hash == Some(e.hash) {
            return Ok(());
        }
        rows.swap_remove(at);
        *self.overwritten.entry(e.hash).or_default() += 1;
        if rows.is_empty() {
            self.live.remove(&e.hash);
            self.kept.insert(e.hash, store.content_of(e.id)?);
        }
        Ok(())
    }

    /// The write giving `file` the indexed content `hash`: a copy of a row holding it, or that
    /// content read back before its last row was overwritten; `None` when neither is left.
    fn give(&mut self, file: &FileAt, hash: [u8; 32]) -> Option<WriteOp> {
        let op = if let Some(&source_id) = self.live.get(&hash).and_then(|rows| rows.first()) {
            WriteOp::Copy {
                source_id,
                hash,
                root_id: file.root_id,
                rel_path: file.rel_path.clone(),
                stamp: file.stamp,
            }
        } else {
            let content = self.kept.get(&hash)?.as_ref()?;
            WriteOp::Upsert {
                root_id: file.root_id,
                rel_path: file.rel_path.clone(),
                stamp: file.stamp,
                hash,
                facts: content.facts.clone(),
                features: content.features.clone(),
                thumbnail: content.thumbnail.clone(),
            }
        };
        *self.given.entry(hash).or_default() += 1;
        Some(op)
    }

    /// A row whose path was overwritten moved to a file of its content `hash`: that content
    /// is no longer left for a file given it to have taken from there.
    fn took_row(&mut self, hash: [u8; 32]) {
        if let Some(n) = self.overwritten.get_mut(&hash) {
            *n = n.saturating_sub(1);
        }
    }

    /// The files given indexed content, as moves and duplicates: a file given content whose
    /// old row was overwritten took it from there (moved); the others are byte-identical to
    /// a file that still holds it (duplicates).
    fn moved_and_duplicates(&self) -> (usize, usize) {
        self.given
            .iter()
            .fold((0, 0), |(moved, dups), (hash, &given)| {
                let left = self.overwritten.get(hash).copied().unwrap_or(0).min(given);
                (moved + left, dups + given - left)
            })
    }
}

/// What became of content decoded in this run, for the other files holding the same bytes.
enum InRun {
    /// Written to the batch under this root and relative path; its id is known once applied.
    Batched(i64, PathBuf),
    Written(i64),
    Failed(String),
    /// Its row was not found after the write (a file that replaced it, say).
    Lost,
}

#[derive(Default)]
struct InRunCopies {
    decoded: HashMap<[u8; 32], InRun>,
    /// Files whose bytes another file of this run is still decoding.
    waiting: HashMap<[u8; 32], Vec<FileAt>>,
}

/// Records `file` as moved: it takes the row `id` of its content, vectors and graph node kept.
fn record_move(summary: &mut IndexSummary, batch: &mut Vec<WriteOp>, id: i64, file: FileAt) {
    summary.moved += 1;
    batch.push(WriteOp::Move {
        id,
        root_id: file.root_id,
        rel_path: file.rel_path,
        stamp: file.stamp,
    });
}

fn record_failure(
    summary: &mut IndexSummary,
    batch: &mut Vec<WriteOp>,
    file: FileAt,
    reason: String,
) {
    summary.failed.push(FailedFile {
        path: file.abs_path.clone(),
        reason: reason.clone(),
    });
    batch.push(WriteOp::Fail {
        root_id: file.root_id,
        rel_path: file.rel_path,
        stamp: file.stamp,
        reason,
    });
}

/// Records a file whose bytes another file of this run was decoded from: a copy of that row,
/// or the same failure.
fn copy_in_run(
    summary: &mut IndexSummary,
    store: &mut Store,
    batch: &mut Vec<WriteOp>,
    decoded: &mut InRun,
    file: FileAt,
    hash: [u8; 32],
) -> Result<()> {
    if let InRun::Batched(root_id, rel_path) = decoded {
        // the source row needs its id: write the batch holding it
        store.apply(batch)?;
        batch.clear();
        *decoded = match store.id_at(*root_id, rel_path)? {
            Some(id) => InRun::Written(id),
            None => InRun::Lost,
        };
    }
    match decoded {
        InRun::Written(source_id) => {
            summary.duplicates += 1;
            batch.push(WriteOp::Copy {
                source_id: *source_id,
                hash,
                root_id: file.root_id,
                rel_path: file.rel_path,
                stamp: file.stamp,
            });
        }
        // the next run reads this file
        InRun::Lost => summary.changing.push(file.abs_path),
        InRun::Failed(reason) => record_failure(summary, batch, file, reason.clone()),
        InRun::Batched(..) => unreachable!("resolved above"),
    }
    Ok(())
}

/// How many times a file that changes while it is read is read again before it is left for
/// the next run.
const READ_ATTEMPTS: usize = 3;

/// Pause before the second read of a file written moments ago.
const SETTLE_PAUSE: Duration = Duration::from_millis(100);

/// Reads a file whose metadata is the same before and after the read, with the stamp to
/// record for those bytes; `Ok(None)` when it kept changing.
fn read_settled(
    path: &Path,
    max_size: u64,
    links: crate::decode::Links<'_>,
) -> std::io::Result<Option<(Vec<u8>, FileStamp)>> {
    let identity = |m: &std::fs::Metadata| {
        #[cfg(unix)]
        let inode = {
            use std::os::unix::fs::MetadataExt;
            (m.dev(), m.ino())
        };
        #[cfg(not(unix))]
        let inode = (0u64, 0u64);
        (FileStamp::of(m), inode)
    };
    for _ in 0..READ_ATTEMPTS {
        let before = std::fs::metadata(path)?;
        let bytes = crate::decode::read_file_bounded_as(path, max_size, "image", links)?;
        let read_at = std::time::SystemTime::now();
        let after = std::fs::metadata(path)?;
        if identity(&before) == identity(&after) && bytes.len() as u64 == after.len() {
            let stamp = FileStamp::of(&after).settled(read_at);
            // Written within the file system's time granularity, a file may be mid-write
            // although its times did not move: a second read, after a pause long enough for a
            // writer that was only descheduled to go on, must give the same bytes and times.
            if stamp.mtime_ns == FileStamp::UNSETTLED_MTIME {
                std::thread::sleep(SETTLE_PAUSE);
                let again = crate::decode::read_file_bounded_as(path, max_size, "image", links)?;
                let last = std::fs::metadata(path)?;
                if again != bytes || identity(&last) != identity(&after) {
                    continue;
                }
            }
            return Ok(Some((bytes, stamp)));
        }
    }
    Ok(None)
}

fn process_file(
    file: &FileAt,
    existing: Option<&CatalogEntry>,
    seen: &Seen<'_>,
    signatures: &[(String, u32, String)],
    config: &IndexConfig,
    registry: &Registry,
) -> Outcome {
    let mut file = file.clone();
    // The tracked folder holding the file: links below it are followed only when asked.
    let root = file
        .abs_path
        .ancestors()
        .nth(file.rel_path.components().count());
    let links = match root {
        Some(root) if !config.crawl.follow_symlinks => crate::decode::Links::RefusedBelow(root),
        _ => crate::decode::Links::Followed,
    };
    let read = read_settled(&file.abs_path, config.decode.max_file_size, links);
    let bytes = match read {
        Ok(Some((bytes, stamp))) => {
            // The stamp recorded describes these bytes, not the walk's view of the file.
            file.stamp = stamp;
            bytes
        }
        Ok(None) => return Outcome::Changing { file },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Outcome::Gone { file },
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied && existing.is_some() => {
            return Outcome::Unreadable {
                file,
                reason: format!("cannot read: {e}; its indexed image is kept"),
            };
        }
        Err(e) => {
            return Outcome::Failed {
                file,
                reason: format!("cannot read: {e}"),
                hash: None,
            };
        }
    };
    let hash: [u8; 32] = *blake3::hash(&bytes).as_bytes();
    if let Some(e) = existing
        && e.hash == hash
        && features_current(e, signatures)
    {
        return Outcome::Touched {
            id: e.id,
            stamp: file.stamp,
        };
    }
    if seen.indexed.contains(&hash) {
        return Outcome::KnownContent { file, hash };
    }
    if !seen
        .this_run
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(hash)
    {
        return Outcome::SameAsInRun { file, hash };
    }
    let with_thumbnail = registry.makes_thumbnails();
    match extract(
        &bytes,
        &file.abs_path,
        &config.decode,
        registry,
        with_thumbnail,
    ) {
        Ok((facts, features, thumbnail)) => Outcome::Extracted {
            file,
            hash,
            facts,
            features,
            thumbnail,
        },
        Err(e) => Outcome::Failed {
            reason: match e {
                Error::Decode { reason, .. } => reason,
                other => other.to_string(),
            },
            file,
            hash: Some(hash),
        },
    }
}

/// Decodes an image and runs every feature family on it (panics in either are caught), exactly
/// as indexing does, so that an example and its indexed twin get the same vectors.
pub fn extract_bytes(
    bytes: &[u8],
    path: &Path,
    decode_cfg: &DecodeConfig,
    registry: &Registry,
) -> Result<(ImageFacts, Vec<FeatureRow>)> {
    let (facts, features, _) = extract(bytes, path, decode_cfg, registry, false)?;
    Ok((facts, features))
}

/// Decodes an image and runs every family on it, and makes its thumbnail
/// ([`crate::thumbnail`]) when asked. The picture is decoded at the larger of the registry's
/// picture side and the thumbnail's, then shrunk to the picture side: one decoding serves
/// both, and every caller sees the same picture whether or not it asks for the thumbnail. A
/// registry that reads luma alone takes a small JPEG's own luma instead, without its colours.
fn extract(
    bytes: &[u8],
    path: &Path,
    decode_cfg: &DecodeConfig,
    registry: &Registry,
    with_thumbnail: bool,
) -> Result<(ImageFacts, Vec<FeatureRow>, Option<Vec<u8>>)> {
    let side = registry.picture_size();
    let decode_cfg = DecodeConfig {
        working_size: side.max(crate::thumbnail::SIDE),
        ..*decode_cfg
    };
    if registry.reads_luma_only()
        && !with_thumbnail
        && let Some(luma) = crate::decode::decode_jpeg_luma(bytes, path, &decode_cfg)
    {
        let facts = ImageFacts {
            format: luma.format,
            width: luma.width,
            height: luma.height,
        };
        let plane = if side < crate::thumbnail::SIDE {
            crate::decode::resize_grey_to_fit(&luma.plane, side)
        } else {
            luma.plane
        };
        let input = FeatureInput::luma_only(grey_plane(&plane));
        return Ok((facts, run_families(&input, path, registry)?, None));
    }
    let decoded = decode(bytes, path, &decode_cfg)?;
    let thumbnail = with_thumbnail.then(|| {
        crate::thumbnail::encode(
            &decoded.image,
            crate::decode::icc_profile(bytes, path).as_deref(),
        )
    });
    let facts = facts_of(&decoded);
    let picture = if side < crate::thumbnail::SIDE {
        shrunk_to_fit(&decoded.image, side)
    } else {
        decoded.image
    };
    Ok((facts, extract_decoded(picture, path, registry)?, thumbnail))
}

/// The memory budget, in MiB, a recorded failure reason says the file was refused at.
fn refused_budget_mib(reason: &str) -> Option<u64> {
    let (_, after) = reason.split_once("memory budget of ")?;
    let digits: String = after.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

fn facts_of(decoded: &crate::decode::Decoded) -> ImageFacts {
    ImageFacts {
        format: decoded.format.clone(),
        width: decoded.width,
        height: decoded.height,
    }
}

fn extract_decoded(picture: RgbImage, path: &Path, registry: &Registry) -> Result<Vec<FeatureRow>> {
    run_families(&registry.input(picture), path, registry)
}

/// A grey image's levels in [0, 1], as [`crate::features::luma_plane`] gives a colour one's.
fn grey_plane(grey: &image::GrayImage) -> ndarray::Array2<f32> {
    let (w, h) = grey.dimensions();
    let values = grey
        .as_raw()
        .iter()
        .map(|&v| f32::from(v) / 255.0)
        .collect();
    ndarray::Array2::from_shape_vec((h as usize, w as usize), values).expect("one value per pixel")
}

/// Every family of `registry` on `input`, a panic in one reported as this file's failure.
fn run_families(input: &FeatureInput, path: &Path, registry: &Registry) -> Result<Vec<FeatureRow>> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| registry.extract_all(input))).map_err(
        |_| Error::Decode {
            path: path.to_path_buf(),
            reason: "feature extraction failed on this image (please report it)".into(),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::Links;

    fn write_png(path: &Path, seed: u32) {
        let img = image::RgbImage::from_fn(64, 48, |x, y| {
            let v = (x * (seed + 3) + y * (seed * 7 + 1)) % 256;
            image::Rgb([v as u8, (255 - v) as u8, (seed * 40 % 256) as u8])
        });
        img.save(path).unwrap();
    }

    /// A file the walk saw, replaced by a symbolic link before it is read, is gone for a run
    /// that does not follow links: the link's target (perhaps outside the folder) is not read.
    #[cfg(unix)]
    #[test]
    fn a_file_become_a_link_is_read_only_when_links_are_followed() {
        let tmp = tempfile::tempdir().unwrap();
        let outside = tmp.path().join("private.png");
        write_png(&outside, 1);
        let swapped = tmp.path().join("a.png");
        std::os::unix::fs::symlink(&outside, &swapped).unwrap();
        let refused = Links::RefusedBelow(tmp.path());
        let e = read_settled(&swapped, 1 << 20, refused).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::NotFound, "{e}");
        let (bytes, _) = read_settled(&swapped, 1 << 20, Links::Followed)
            .unwrap()
            .unwrap();
        assert_eq!(bytes, std::fs::read(&outside).unwrap());
        // a plain file reads either way
        let (plain, _) = read_settled(&outside, 1 << 20, refused).unwrap().unwrap();
        assert_eq!(plain, bytes);
    }

    /// A folder on the way to a file the walk saw, replaced by a symbolic link before the file
    /// is read, is not passed through: the file is gone for a run that does not follow links.
    /// The tracked folder's own path may hold links.
    #[cfg(unix)]
    #[test]
    fn a_folder_become_a_link_is_passed_through_only_when_links_are_followed() {
        let tmp = tempfile::tempdir().unwrap();
        let outside = tmp.path().join("outside");
        std::fs::create_dir_all(outside.join("deeper")).unwrap();
        write_png(&outside.join("deeper/a.png"), 2);
        let real_root = tmp.path().join("photos");
        std::fs::create_dir_all(real_root.join("sub")).unwrap();
        // the tracked folder is reached through a link of its own
        let root = tmp.path().join("photos-link");
        std::os::unix::fs::symlink(&real_root, &root).unwrap();
        let inside = root.join("sub/deeper/a.png");
        std::fs::create_dir(root.join("sub/deeper")).unwrap();
        write_png(&inside, 4);
        let refused = Links::RefusedBelow(&root);
        let (own, _) = read_settled(&inside, 1 << 20, refused).unwrap().unwrap();
        assert_eq!(own, std::fs::read(&inside).unwrap());
        // `sub` becomes a link out of the folder, holding a file of the same name
        std::fs::rename(real_root.join("sub"), tmp.path().join("old-sub")).unwrap();
        std::os::unix::fs::symlink(&outside, real_root.join("sub")).unwrap();
        let e = read_settled(&inside, 1 << 20, refused).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::NotFound, "{e}");
        let (followed, _) = read_settled(&inside, 1 << 20, Links::Followed)
            .unwrap()
            .unwrap();
        assert_eq!(
            followed,
            std::fs::read(outside.join("deeper/a.png")).unwrap()
        );
    }

    /// Stopped before any file is handled, the rate counts what was handled (none), not the
    /// planned files.
    #[test]
    fn images_per_sec_counts_only_the_files_handled() {
        let (_tmp, _photos, collection, config) = png_folder(4);
        let stop = AtomicBool::new(true);
        let planned = std::sync::Mutex::new(0);
        let on_progress = |p: Progress| {
            if let Progress::Planned { to_process, .. } = p {
                *planned.lock().unwrap() = to_process;
            }
        };
        let summary = run(&collection, &config, &on_progress, &stop).unwrap();
        assert!(summary.interrupted);
        assert_eq!(*planned.lock().unwrap(), 4);
        assert_eq!(summary.new, 0);
        assert_eq!(summary.images_per_sec, 0.0);
    }

    /// An indexed file that changed and was then deleted between the walk and its read is
    /// removed with the run, not kept with its old content until the next one.
    #[test]
    fn a_file_deleted_between_the_walk_and_its_read_leaves_the_index() {
        let (_tmp, photos, collection, config) = png_folder(4);
        let stop = AtomicBool::new(false);
        assert_eq!(run(&collection, &config, &|_| {}, &stop).unwrap().new, 4);
        let doomed = photos.join("0.png");
        write_png(&doomed, 9);
        let on_progress = |p: Progress| {
            if let Progress::Planned { .. } = p {
                std::fs::remove_file(&doomed).unwrap();
            }
        };
        let summary = run(&collection, &config, &on_progress, &stop).unwrap();
        assert_eq!((summary.updated, summary.removed), (0, 1), "{summary:?}");
        assert_eq!(summary.total_images, 3, "{summary:?}");
        let store = collection.open_store().unwrap();
        assert_eq!(store.image_count().unwrap(), 3);
    }

    /// Files read again but unchanged (written too recently to trust their stamps) are not
    /// extracted: the rate counts none.
    #[test]
    fn images_per_sec_counts_only_images_extracted() {
        let (_tmp, _photos, collection, config) = png_folder(4);
        let stop = AtomicBool::new(false);
        let first = run(&collection, &config, &|_| {}, &stop).unwrap();
        assert_eq!(first.new, 4);
        assert!(first.images_per_sec > 0.0);
        let again = run(&collection, &config, &|_| {}, &stop).unwrap();
        assert_eq!((again.new, again.updated, again.unchanged), (0, 0, 4));
        assert_eq!(again.images_per_sec, 0.0);
    }

    /// A stop that comes as the graph is brought up to date ends the run as interrupted,
    /// said so in its JSON: the graph dump and its record stay as they were, and the next run
    /// brings the graph up to date.
    #[test]
    fn a_stop_during_the_graph_build_keeps_the_previous_graph() {
        let (_tmp, photos, collection, config) = png_folder(3);
        let never = AtomicBool::new(false);
        run(&collection, &config, &|_| {}, &never).unwrap();
        let dump = || {
            let store = collection.open_store().unwrap();
            let record = collection.dump_record(&store).unwrap().unwrap();
            let last = store.last_run().unwrap().unwrap();
            (record, last.outcome)
        };
        let (before, _) = dump();
        for i in 3..6 {
            write_png(&photos.join(format!("{i}.png")), i);
        }
        let stop = AtomicBool::new(false);
        // every image is extracted when the graph's turn comes: the stop comes then
        let on_progress = |p: Progress| {
            if matches!(p, Progress::BuildingAnn { .. }) {
                stop.store(true, Ordering::SeqCst);
            }
        };
        let summary = run(&collection, &config, &on_progress, &stop).unwrap();
        assert_eq!(summary.new, 3);
        assert!(summary.interrupted);
        let json = serde_json::to_value(&summary).unwrap();
        assert_eq!(json["graph_stopped"], true, "{json}");
        assert_eq!(json["ann_rebuilt"], false, "{json}");
        let (after, outcome) = dump();
        assert_eq!(after, before);
        assert_eq!(outcome.as_deref(), Some("interrupted"));
        let dir = crate::ann::ann_dir(collection.dir());
        crate::ann::AnnIndex::verify(&dir, &after).unwrap();

        let again = run(&collection, &config, &|_| {}, &never).unwrap();
        assert!(!again.interrupted && again.ann_rebuilt);
        assert_eq!(again.graph_images, Some(6));
        assert_eq!(dump().1.as_deref(), Some("complete"));
    }

    /// A stop while `forget` brings the graph up to date: the folder stays forgotten, the graph
    /// dump stays as it was (stale: a search leaves the forgotten images out), and the next run
    /// rebuilds the graph without them.
    #[test]
    fn a_stop_during_forget_keeps_the_folder_forgotten_and_the_previous_graph() {
        let (tmp, photos, collection, mut config) = png_folder(3);
        let extra = tmp.path().join("extra");
        std::fs::create_dir_all(&extra).unwrap();
        for i in 3..6 {
            write_png(&extra.join(format!("{i}.png")), i);
        }
        config.crawl.roots.push(extra.clone());
        let never = AtomicBool::new(false);
        run(&collection, &config, &|_| {}, &never).unwrap();
        let record = || {
            let store = collection.open_store().unwrap();
            collection.dump_record(&store).unwrap().unwrap()
        };
        let before = record();

        let stop = AtomicBool::new(true);
        let forgot = forget(
            &collection,
            std::slice::from_ref(&extra),
            &UpdatePolicy::default(),
            &stop,
        )
        .unwrap();
        assert_eq!(forgot.len(), 1);
        assert_eq!((forgot[0].removed, forgot[0].total_images), (3, 3));
        let json = serde_json::to_value(&forgot).unwrap();
        assert_eq!(json[0]["graph_stopped"], true, "{json}");
        let store = collection.open_store().unwrap();
        assert_eq!(store.image_count().unwrap(), 3);
        assert_eq!(store.roots().unwrap().len(), 1);
        let stale = record();
        assert_eq!(stale, before);
        assert_ne!(stale.data_version, store.data_version().unwrap());
        let fusion = Fusion::for_profile(collection.profile(&store).unwrap());
        drop(store);

        let searcher = crate::query::Searcher::open(&collection, &fusion).unwrap();
        let cfg = crate::query::QueryConfig::default();
        for example in [photos.join("0.png"), extra.join("3.png")] {
            let found = searcher.query(&example, &cfg).unwrap();
            assert!(!found.hits.is_empty(), "{found:?}");
            assert!(
                found.hits.iter().all(|h| h.path.starts_with(&photos)),
                "{found:?}"
            );
        }
        drop(searcher);

        let refresh = IndexConfig {
            crawl: CrawlConfig::default(),
            ..config
        };
        let again = run(&collection, &refresh, &|_| {}, &never).unwrap();
        assert!(!again.interrupted && again.ann_rebuilt, "{again:?}");
        assert_eq!(again.graph_images, Some(3));
        let store = collection.open_store().unwrap();
        assert_eq!(record().data_version, store.data_version().unwrap());
    }

    /// The flags of a run that change what it does are recorded with it, for the command that
    /// resumes it; a later run without them records none.
    #[test]
    fn a_runs_flags_are_recorded_for_its_resume_command() {
        let (_tmp, _photos, collection, config) = png_folder(2);
        let stopped = AtomicBool::new(true);
        let flagged = IndexConfig {
            crawl: CrawlConfig {
                exclude: vec!["**/skip me/**".into(), "-draft*".into()],
                hidden: true,
                ..config.crawl.clone()
            },
            dba: Some(0),
            profile: Some(Profile::Fast),
            decode: DecodeConfig {
                memory_budget: 1024 << 20,
                ..DecodeConfig::default()
            },
            ..config.clone()
        };
        let last_run = || {
            collection
                .open_store()
                .unwrap()
                .last_run()
                .unwrap()
                .unwrap()
        };
        let summary = run(&collection, &flagged, &|_| {}, &stopped).unwrap();
        assert!(summary.interrupted);
        let last = last_run();
        assert_eq!(last.outcome.as_deref(), Some("interrupted"));
        let words: Vec<&str> = last.flags.iter().map(String::as_str).collect();
        assert_eq!(
            words,
            [
                "--exclude",
                "**/skip me/**",
                "--exclude=-draft*",
                "--hidden",
                "--dba",
                "0",
                "--profile",
                "fast",
                "--memory-budget",
                "1024"
            ]
        );
        let json = serde_json::to_value(&last).unwrap();
        assert_eq!(json["flags"][4], "--dba", "{json}");

        // a run given no flags walks with the remembered options, which it names
        run(&collection, &config, &|_| {}, &AtomicBool::new(false)).unwrap();
        let last = last_run();
        assert_eq!(
            last.flags,
            [
                "--exclude",
                "**/skip me/**",
                "--exclude=-draft*",
                "--hidden"
            ]
        );
    }

    /// A temporary folder of `n` generated PNGs, the collection to index it into, and a
    /// configuration that indexes it.
    /// A query notes every image a damaged vector leaves out, in graph and exact mode alike,
    /// not only those among the candidates it read.
    #[test]
    fn a_query_notes_every_image_a_damaged_vector_leaves_out() {
        use crate::query::{QueryConfig, Searcher};
        use crate::rank::SearchMode;
        let (_tmp, photos, collection, config) = png_folder(30);
        let never = AtomicBool::new(false);
        run(&collection, &config, &|_| {}, &never).unwrap();
        let store = collection.open_store().unwrap();
        let fusion = Fusion::for_profile(collection.profile(&store).unwrap());
        drop(store);
        let example = photos.join("0.png");
        let all = QueryConfig {
            k: 30,
            mode: SearchMode::Exact,
            ..Default::default()
        };
        let hits = Searcher::open(&collection, &fusion)
            .unwrap()
            .query(&example, &all)
            .unwrap()
            .hits;
        // the example's own image, read first, and the farthest, which a short list never reads
        let (own, far) = (hits[0].id, hits.last().unwrap().id);
        let db = rusqlite::Connection::open(collection.db_path()).unwrap();
        for (id, set) in [
            (own, "zeroblob(length(vector))"),
            (far, "substr(vector, 1, 10)"),
        ] {
            db.execute(
                &format!(
                    "UPDATE features SET vector = {set} WHERE image_id = ?1 AND family = 'color'"
                ),
                [id],
            )
            .unwrap();
        }
        drop(db);
        let searcher = Searcher::open(&collection, &fusion).unwrap();
        for mode in [SearchMode::Hnsw, SearchMode::Exact] {
            let cfg = QueryConfig {
                k: 1,
                mode,
                ..Default::default()
            };
            let note = searcher.query(&example, &cfg).unwrap().damage_note;
            let note = note.unwrap_or_else(|| panic!("{mode:?}: no note"));
            let first = format!(
                "2 images left out because a stored vector is damaged (first: image {},",
                own.min(far)
            );
            assert!(note.starts_with(&first), "{mode:?}: {note}");
            assert!(searcher.store().take_damaged().is_empty(), "{mode:?}");
        }
    }

    fn png_folder(n: u32) -> (tempfile::TempDir, PathBuf, Collection, IndexConfig) {
        let tmp = tempfile::tempdir().unwrap();
        let photos = tmp.path().join("photos");
        std::fs::create_dir_all(&photos).unwrap();
        for i in 0..n {
            write_png(&photos.join(format!("{i}.png")), i);
        }
        let collection = Collection::at(tmp.path().join("idx"));
        let config = IndexConfig {
            crawl: CrawlConfig {
                roots: vec![photos.clone()],
                ..Default::default()
            },
            ..Default::default()
        };
        (tmp, photos, collection, config)
    }

    /// An example of another length than the index's fused vectors is refused with both
    /// lengths, by graph and exact search alike (a debug assertion in the projection panicked;
    /// exact search compared the vectors' common start).
    #[test]
    fn ranking_an_example_of_another_length_is_refused() {
        use crate::query::Searcher;
        use crate::rank::{RankConfig, SearchMode};
        let (_tmp, _photos, collection, config) = png_folder(12);
        run(&collection, &config, &|_| {}, &AtomicBool::new(false)).unwrap();
        let store = collection.open_store().unwrap();
        let fusion = Fusion::for_profile(collection.profile(&store).unwrap());
        drop(store);
        let searcher = Searcher::open(&collection, &fusion).unwrap();
        let dim = fusion.dim();
        for mode in [SearchMode::Hnsw, SearchMode::Exact] {
            let cfg = RankConfig {
                mode,
                ..RankConfig::default()
            };
            assert_eq!(
                searcher
                    .rank(&vec![0.1; dim], &[], None, 3, &cfg)
                    .unwrap()
                    .len(),
                3
            );
            for len in [0, 3, dim - 1, dim + 1] {
                let refused = searcher
                    .rank(&vec![0.1; len], &[], None, 3, &cfg)
                    .unwrap_err();
                assert!(
                    matches!(refused, Error::VectorLength { found, expected, .. } if found == len && expected == dim),
                    "{len}: {refused}"
                );
            }
        }
    }

    /// A copy of a file indexed just after it was written (its stamp not yet settled, so the
    /// file is read again) takes that file's features without being decoded.
    #[test]
    fn a_copy_of_a_file_indexed_as_it_was_written_is_known_by_its_content() {
        let (_tmp, photos, collection, config) = png_folder(3);
        let stop = AtomicBool::new(false);
        let index = |config: &IndexConfig| run(&collection, config, &|_| {}, &stop).unwrap();
        assert_eq!(index(&config).new, 3);
        std::fs::copy(photos.join("1.png"), photos.join("copy.png")).unwrap();
        let second = index(&config);
        assert_eq!(
            (second.new, second.duplicates, second.updated),
            (0, 1, 0),
            "{second:?}"
        );
        let store = collection.open_store().unwrap();
        let source = store.id_of_path(&photos.join("1.png")).unwrap().unwrap();
        let copy = store.id_of_path(&photos.join("copy.png")).unwrap().unwrap();
        let space = collection.search_space(&store, &Fusion::default()).unwrap();
        assert_eq!(
            space.vector_of(&store, source).unwrap(),
            space.vector_of(&store, copy).unwrap()
        );
    }

    /// Byte-identical files met in one run are decoded once: the others copy that row, or
    /// record the same failure, whichever worker reaches them first.
    #[test]
    fn identical_files_found_in_one_run_are_decoded_once() {
        let (_tmp, photos, collection, config) = png_folder(3);
        for i in 0..40 {
            std::fs::copy(photos.join("1.png"), photos.join(format!("copy{i}.png"))).unwrap();
        }
        for i in 0..5 {
            std::fs::write(photos.join(format!("bad{i}.png")), b"not a picture").unwrap();
        }
        let stop = AtomicBool::new(false);
        let summary = run(&collection, &config, &|_| {}, &stop).unwrap();
        assert_eq!(
            (summary.new, summary.duplicates, summary.failed.len()),
            (3, 40, 5),
            "{summary:?}"
        );
        let store = collection.open_store().unwrap();
        assert_eq!(store.failures().unwrap().len(), 5);
        let space = collection.search_space(&store, &Fusion::default()).unwrap();
        let source = store.id_of_path(&photos.join("1.png")).unwrap().unwrap();
        let wanted = space.vector_of(&store, source).unwrap();
        for i in 0..40 {
            let copy = store
                .id_of_path(&photos.join(format!("copy{i}.png")))
                .unwrap()
                .unwrap();
            assert_eq!(space.vector_of(&store, copy).unwrap(), wanted);
        }
        assert_eq!(store.image_count().unwrap(), 43);
    }

    /// Changes to an indexed folder reach the graph in place when the policy allows: new and
    /// rewritten images are inserted, removed ones hidden, twice in a row through dumps; a
    /// query then finds the rewritten image by its new content, and `rebuild_graph` rebuilds.
    #[test]
    fn graph_is_updated_in_place_through_dumps() {
        let (_tmp, photos, collection, mut config) = png_folder(12);
        config.graph_update = UpdatePolicy {
            min_built: 0,
            max_growth: 1.0,
            max_hidden: 0.5,
        };
        let stop = AtomicBool::new(false);
        let index = |config: &IndexConfig| run(&collection, config, &|_| {}, &stop).unwrap();
        assert!(index(&config).ann_rebuilt);

        std::fs::remove_file(photos.join("0.png")).unwrap();
        write_png(&photos.join("1.png"), 51);
        write_png(&photos.join("12.png"), 52);
        write_png(&photos.join("13.png"), 53);
        let first = index(&config);
        assert!(!first.ann_rebuilt, "{first:?}");
        let update = GraphUpdate {
            inserted: 3,
            hidden: 2,
        };
        assert_eq!(first.ann_updated, Some(update));

        write_png(&photos.join("2.png"), 54);
        let second = index(&config);
        let update = GraphUpdate {
            inserted: 1,
            hidden: 1,
        };
        assert_eq!(second.ann_updated, Some(update));
        let unchanged = index(&config);
        assert_eq!(
            (unchanged.ann_rebuilt, unchanged.ann_updated),
            (false, None)
        );
        // A move changes the data version, not the graph: the dump is restamped, not rewritten.
        std::fs::rename(photos.join("3.png"), photos.join("3b.png")).unwrap();
        let moved = index(&config);
        assert_eq!(moved.moved, 1, "{moved:?}");
        assert_eq!((moved.ann_rebuilt, moved.ann_updated), (false, None));
        // A removal alone hides the point in the record; the dump's files are kept.
        let folder = |c: &Collection| {
            let store = c.open_store().unwrap();
            c.dump_record(&store).unwrap().unwrap().folder
        };
        let before = folder(&collection);
        std::fs::remove_file(photos.join("4.png")).unwrap();
        let update = GraphUpdate {
            inserted: 0,
            hidden: 1,
        };
        assert_eq!(index(&config).ann_updated, Some(update));
        assert_eq!(folder(&collection), before);

        let store = collection.open_store().unwrap();
        let rec = collection.dump_record(&store).unwrap().unwrap();
        assert_eq!(
            (rec.count, rec.hidden.len(), rec.updates, rec.built_count),
            (16, 4, 3, 12)
        );
        assert_eq!(rec.data_version, store.data_version().unwrap());
        let space = collection.search_space(&store, &Fusion::default()).unwrap();
        assert!(space.note.is_none(), "{:?}", space.note);
        let ann = space.ann.as_ref().unwrap();
        let mut ids: Vec<i64> = store.catalog().unwrap().iter().map(|e| e.id).collect();
        ids.sort_unstable();
        assert_eq!(ann.image_ids(), ids);
        let rewritten = store.id_of_path(&photos.join("2.png")).unwrap().unwrap();
        let query = space
            .embed(&space.vector_of(&store, rewritten).unwrap().unwrap())
            .unwrap();
        let hits = space
            .search(&store, &query, 3, crate::rank::SearchMode::Hnsw)
            .unwrap();
        assert_eq!(hits[0].0, rewritten, "{hits:?}");
        drop((space, store));

        config.rebuild_graph = true;
        assert!(index(&config).ann_rebuilt);
        let store = collection.open_store().unwrap();
        let rec = collection.dump_record(&store).unwrap().unwrap();
        assert_eq!((rec.count, rec.hidden.len(), rec.updates), (12, 0, 0));
    }

    /// 12 images, `copies` copies of `1.png` (whose images share its point) and an update
    /// policy that updates graphs of any size in place; the graph is built.
    fn a_folder_with_a_crowd(
        copies: usize,
    ) -> (tempfile::TempDir, PathBuf, Collection, IndexConfig) {
        let (tmp, photos, collection, mut config) = png_folder(12);
        for i in 0..copies {
            std::fs::copy(photos.join("1.png"), photos.join(format!("copy{i}.png"))).unwrap();
        }
        config.graph_update = UpdatePolicy {
            min_built: 0,
            ..UpdatePolicy::default()
        };
        let stop = AtomicBool::new(false);
        assert!(
            run(&collection, &config, &|_| {}, &stop)
                .unwrap()
                .ann_rebuilt
        );
        (tmp, photos, collection, config)
    }

    /// The graph's images and points, and its hidden points.
    fn graph_shape(collection: &Collection) -> (usize, usize, usize) {
        let store = collection.open_store().unwrap();
        let rec = collection.dump_record(&store).unwrap().unwrap();
        (rec.images(), rec.count, rec.hidden.len())
    }

    /// Removed copies whose point still stands for an image hide no point: the update stays in
    /// place (the hidden share counted them as hidden points, and the graph was rebuilt).
    #[test]
    fn removed_copies_sharing_a_point_hide_nothing() {
        let (_tmp, photos, collection, config) = a_folder_with_a_crowd(3);
        assert_eq!(graph_shape(&collection), (15, 12, 0));
        for (i, seed) in [(12, 60), (13, 61), (14, 62)] {
            write_png(&photos.join(format!("{i}.png")), seed);
        }
        for i in 0..2 {
            std::fs::remove_file(photos.join(format!("copy{i}.png"))).unwrap();
        }
        let stop = AtomicBool::new(false);
        let s = run(&collection, &config, &|_| {}, &stop).unwrap();
        assert!(!s.ann_rebuilt, "{s:?}");
        let update = GraphUpdate {
            inserted: 3,
            hidden: 0,
        };
        assert_eq!(s.ann_updated, Some(update));
        assert_eq!(graph_shape(&collection), (16, 15, 0));
    }

    /// A graph built over more images than it holds points (a crowd of identical files) is
    /// updated in place: the growth since its full build compared points with images and
    /// underflowed, a rebuild on every run that changed anything (a panic in debug builds).
    #[test]
    fn a_crowd_of_copies_does_not_rebuild_the_graph_on_every_change() {
        let (_tmp, photos, collection, config) = a_folder_with_a_crowd(30);
        assert_eq!(graph_shape(&collection), (42, 12, 0));
        let stop = AtomicBool::new(false);
        for (i, seed) in [(12, 60), (13, 61)] {
            write_png(&photos.join(format!("{i}.png")), seed);
            let s = run(&collection, &config, &|_| {}, &stop).unwrap();
            assert!(!s.ann_rebuilt, "{s:?}");
            let update = GraphUpdate {
                inserted: 1,
                hidden: 0,
            };
            assert_eq!(s.ann_updated, Some(update));
        }
        assert_eq!(graph_shape(&collection), (44, 14, 0));
    }

    /// A crowd of new byte-identical images adds one point to the graph, and the growth since
    /// its full build counts points: it is updated in place (counted as 10 new points against
    /// the 3 a graph of 12 may grow by, it was rebuilt).
    #[test]
    fn a_crowd_of_new_copies_grows_the_graph_by_one_point() {
        let (_tmp, photos, collection, config) = a_folder_with_a_crowd(0);
        assert_eq!(graph_shape(&collection), (12, 12, 0));
        write_png(&photos.join("new.png"), 70);
        for i in 0..9 {
            std::fs::copy(photos.join("new.png"), photos.join(format!("new{i}.png"))).unwrap();
        }
        let stop = AtomicBool::new(false);
        let s = run(&collection, &config, &|_| {}, &stop).unwrap();
        assert!(!s.ann_rebuilt, "{s:?}");
        let update = GraphUpdate {
            inserted: 10,
            hidden: 0,
        };
        assert_eq!(s.ann_updated, Some(update));
        assert_eq!(graph_shape(&collection), (22, 13, 0));
    }

    /// Files deleted or rewritten after the walk listed them, before a worker reads them.
    #[test]
    fn files_deleted_or_rewritten_during_the_run_are_handled() {
        let (_tmp, photos, collection, config) = png_folder(6);
        let stop = AtomicBool::new(false);
        let rewritten = photos.join("1.png");
        let on_progress = |p: Progress| {
            if let Progress::Crawled { .. } = p {
                std::fs::remove_file(photos.join("0.png")).unwrap();
                std::fs::write(&rewritten, b"half-copied").unwrap();
                write_png(&rewritten, 99);
            }
        };
        let summary = run(&collection, &config, &on_progress, &stop).unwrap();
        assert_eq!(summary.new, 5, "{summary:?}");
        assert!(summary.failed.is_empty(), "{:?}", summary.failed);
        assert_eq!(summary.total_images, 5);

        let store = collection.open_store().unwrap();
        let catalog = store.catalog().unwrap();
        let names: HashSet<String> = catalog
            .iter()
            .map(|e| e.rel_path.display().to_string())
            .collect();
        assert!(!names.contains("0.png"));
        let row = catalog
            .iter()
            .find(|e| e.rel_path == Path::new("1.png"))
            .unwrap();
        let bytes = std::fs::read(&rewritten).unwrap();
        assert_eq!(
            row.hash,
            *blake3::hash(&bytes).as_bytes(),
            "new content indexed"
        );
        assert_eq!(row.stamp.size, bytes.len() as u64);
        drop(store);

        // The next run sees nothing to do: the stored stamp describes the bytes indexed.
        let again = run(&collection, &config, &|_| {}, &stop).unwrap();
        assert_eq!((again.unchanged, again.new, again.updated), (5, 0, 0));
        assert_eq!(
            collection
                .open_store()
                .unwrap()
                .last_run()
                .unwrap()
                .unwrap()
                .outcome
                .as_deref(),
            Some("complete")
        );
    }

    #[test]
    fn the_profile_is_recorded_and_a_change_re_extracts_every_image() {
        let (_tmp, _photos, collection, mut config) = png_folder(4);
        config.profile = Some(Profile::Fast);
        let stop = AtomicBool::new(false);
        let index = |config: &IndexConfig| run(&collection, config, &|_| {}, &stop).unwrap();
        let fast = index(&config);
        assert_eq!((fast.profile, fast.new), (Profile::Fast, 4));
        let store = collection.open_store().unwrap();
        assert_eq!(collection.profile(&store).unwrap(), Profile::Fast);
        let families: HashSet<String> = store.catalog().unwrap()[0]
            .features
            .iter()
            .map(|(f, _, p)| {
                // The duplicate signature reads the full profile's side in every profile.
                assert_eq!(p.ends_with(" @96px"), f != "dup", "{f}: {p}");
                f.clone()
            })
            .collect();
        let expected: HashSet<String> = ["color", "lbp", "orient", "dup"].map(String::from).into();
        assert_eq!(families, expected);
        let record = collection.dump_record(&store).unwrap().unwrap();
        assert_eq!(
            record.fusion,
            Fusion::for_profile(Profile::Fast).fingerprint()
        );
        drop(store);

        config.profile = None;
        let kept = index(&config);
        assert_eq!(
            (kept.profile, kept.unchanged, kept.updated),
            (Profile::Fast, 4, 0)
        );

        config.profile = Some(Profile::Full);
        let full = index(&config);
        assert_eq!(
            (full.profile, full.updated, full.unchanged),
            (Profile::Full, 4, 0)
        );
        assert!(full.ann_rebuilt);
        let store = collection.open_store().unwrap();
        let signatures = Registry::default().signatures();
        for entry in store.catalog().unwrap() {
            let mut stored = entry.features.clone();
            stored.sort();
            let mut wanted = signatures.clone();
            wanted.sort();
            assert_eq!(stored, wanted, "the fast rows were replaced");
        }
    }

    /// Files of settled stamps and different sizes that trade names (two or three at a time,
    /// within a folder or across folders) keep their features by content hash: none is
    /// decoded, each counts as moved, and a second run finds nothing to do.
    #[test]
    fn settled_files_trading_names_are_moved_not_decoded() {
        type Cycle = [&'static str; 3];
        let cases: [(&str, Cycle, usize); 3] = [
            ("two", ["a/0.png", "a/1.png", ""], 2),
            ("three", ["a/0.png", "a/1.png", "a/2.png"], 3),
            ("three across folders", ["a/0.png", "b/1.png", "c/2.png"], 3),
        ];
        for (name, cycle, moved) in cases {
            let (_tmp, photos, collection, config) = png_folder(0);
            for (i, rel) in ["a/0.png", "a/1.png", "a/2.png", "b/1.png", "c/2.png"]
                .iter()
                .enumerate()
            {
                let path = photos.join(rel);
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                // sizes differ: each picture has its own width
                let img = image::RgbImage::from_fn(48 + 7 * i as u32, 40, |x, y| {
                    image::Rgb([(x * 9 + y) as u8, (y * 13 + i as u32 * 40) as u8, x as u8])
                });
                img.save(&path).unwrap();
            }
            index_settled(&collection, &config, 5, name);
            let stop = AtomicBool::new(false);
            let index = || run(&collection, &config, &|_| {}, &stop).unwrap();
            let names: Vec<&str> = cycle.into_iter().filter(|n| !n.is_empty()).collect();
            let hash_of =
                |rel: &str| *blake3::hash(&std::fs::read(photos.join(rel)).unwrap()).as_bytes();
            let before: Vec<[u8; 32]> = names.iter().map(|n| hash_of(n)).collect();
            // each file takes the next one's name
            let tmp_name = photos.join("t");
            std::fs::rename(photos.join(names[0]), &tmp_name).unwrap();
            for w in names.windows(2) {
                std::fs::rename(photos.join(w[1]), photos.join(w[0])).unwrap();
            }
            std::fs::rename(&tmp_name, photos.join(names[names.len() - 1])).unwrap();
            let summary = index();
            assert_eq!(
                (
                    summary.new,
                    summary.updated,
                    summary.moved,
                    summary.duplicates
                ),
                (0, 0, moved, 0),
                "{name}: {summary:?}"
            );
            assert!(summary.changing.is_empty(), "{name}: {summary:?}");
            let store = collection.open_store().unwrap();
            for (k, rel) in names.iter().enumerate() {
                let row = store.file_at(&photos.join(rel)).unwrap().unwrap();
                assert_eq!(row.hash, before[(k + 1) % names.len()], "{name}: {rel}");
            }
            drop(store);
            let again = index();
            assert_eq!(
                (again.new, again.updated, again.moved, again.unchanged),
                (0, 0, 0, 5),
                "{name}: {again:?}"
            );
        }
    }

    /// Four same-size BMPs indexed as they were written: every row's stamp is unsettled.
    /// Indexes `collection` past the settle window, so its rows get their files' own stamps,
    /// checking that `new` images were added and every row is settled.
    fn index_settled(collection: &Collection, config: &IndexConfig, new: usize, name: &str) {
        std::thread::sleep(Duration::from_millis(2100));
        let stop = AtomicBool::new(false);
        let summary = run(collection, config, &|_| {}, &stop).unwrap();
        assert_eq!(summary.new, new, "{name}");
        let store = collection.open_store().unwrap();
        assert!(
            store
                .catalog()
                .unwrap()
                .iter()
                .all(|e| e.stamp.mtime_ns != FileStamp::UNSETTLED_MTIME),
            "{name}"
        );
    }

    fn fresh_bmps() -> (tempfile::TempDir, PathBuf, Collection, IndexConfig) {
        let (tmp, photos, collection, config) = png_folder(0);
        for i in 0..4u32 {
            let img = image::RgbImage::from_fn(40, 30, |x, y| {
                let v = (x * (i + 2) + y * (i * 5 + 1)) % 256;
                image::Rgb([v as u8, (255 - v) as u8, (i * 60) as u8])
            });
            img.save(photos.join(format!("{i}.bmp"))).unwrap();
        }
        (tmp, photos, collection, config)
    }

    /// Swaps, rotations, chains of moves and copies over paths of images indexed as they
    /// were written (rows read again, same sizes), and copies whose source is then swapped,
    /// rotated or overwritten: whichever old row is copied or moved from first, every file
    /// ends up indexed with its own content's vector after one run (a second finds nothing to
    /// do), and only byte-identical files count as duplicates.
    #[test]
    fn paths_trading_contents_after_a_fresh_index_lose_no_image() {
        let mv = |dir: &Path, from: &str, to: &str| {
            std::fs::rename(dir.join(from), dir.join(to)).unwrap()
        };
        type Shuffle = fn(&Path, &dyn Fn(&Path, &str, &str));
        let cases: [(&str, Shuffle, usize, usize); 10] = [
            (
                "swap",
                |d, mv| {
                    mv(d, "0.bmp", "t");
                    mv(d, "1.bmp", "0.bmp");
                    mv(d, "t", "1.bmp");
                },
                0,
                2,
            ),
            (
                "rotation",
                |d, mv| {
                    mv(d, "0.bmp", "t");
                    mv(d, "1.bmp", "0.bmp");
                    mv(d, "2.bmp", "1.bmp");
                    mv(d, "t", "2.bmp");
                },
                0,
                3,
            ),
            (
                "two swaps",
                |d, mv| {
                    mv(d, "0.bmp", "t");
                    mv(d, "1.bmp", "0.bmp");
                    mv(d, "t", "1.bmp");
                    mv(d, "2.bmp", "t");
                    mv(d, "3.bmp", "2.bmp");
                    mv(d, "t", "3.bmp");
                },
                0,
                4,
            ),
            (
                "chain",
                |d, mv| {
                    std::fs::remove_file(d.join("2.bmp")).unwrap();
                    mv(d, "1.bmp", "2.bmp");
                    mv(d, "0.bmp", "1.bmp");
                },
                0,
                2,
            ),
            (
                "copies",
                |d, _| {
                    std::fs::copy(d.join("1.bmp"), d.join("n.bmp")).unwrap();
                    std::fs::copy(d.join("0.bmp"), d.join("1.bmp")).unwrap();
                    std::fs::copy(d.join("2.bmp"), d.join("3.bmp")).unwrap();
                },
                2,
                1,
            ),
            (
                "a copy, then its source swapped",
                |d, mv| {
                    std::fs::copy(d.join("0.bmp"), d.join("n.bmp")).unwrap();
                    mv(d, "0.bmp", "t");
                    mv(d, "1.bmp", "0.bmp");
                    mv(d, "t", "1.bmp");
                },
                1,
                2,
            ),
            (
                "a copy named first, then its source swapped",
                |d, mv| {
                    std::fs::copy(d.join("2.bmp"), d.join("+.bmp")).unwrap();
                    mv(d, "2.bmp", "t");
                    mv(d, "3.bmp", "2.bmp");
                    mv(d, "t", "3.bmp");
                },
                1,
                2,
            ),
            (
                "a copy, then its source rotated",
                |d, mv| {
                    std::fs::copy(d.join("1.bmp"), d.join("n.bmp")).unwrap();
                    mv(d, "0.bmp", "t");
                    mv(d, "1.bmp", "0.bmp");
                    mv(d, "2.bmp", "1.bmp");
                    mv(d, "t", "2.bmp");
                },
                1,
                3,
            ),
            (
                "a copy, then its source overwritten",
                |d, _| {
                    std::fs::copy(d.join("0.bmp"), d.join("n.bmp")).unwrap();
                    std::fs::copy(d.join("1.bmp"), d.join("0.bmp")).unwrap();
                },
                1,
                1,
            ),
            (
                "copies, then their sources overwritten by each other",
                |d, mv| {
                    std::fs::copy(d.join("0.bmp"), d.join("+.bmp")).unwrap();
                    std::fs::copy(d.join("3.bmp"), d.join("n.bmp")).unwrap();
                    std::fs::copy(d.join("3.bmp"), d.join("0.bmp")).unwrap();
                    mv(d, "+.bmp", "3.bmp");
                },
                1,
                2,
            ),
        ];
        for (name, shuffle, duplicates, moved) in cases {
            let (_tmp, photos, collection, config) = fresh_bmps();
            let stop = AtomicBool::new(false);
            let index = || run(&collection, &config, &|_| {}, &stop).unwrap();
            assert_eq!(index().new, 4, "{name}");
            let store = collection.open_store().unwrap();
            let space = collection.search_space(&store, &Fusion::default()).unwrap();
            let mut vector_of_content = HashMap::new();
            for e in store.catalog().unwrap() {
                assert_eq!(e.stamp.mtime_ns, FileStamp::UNSETTLED_MTIME, "{name}");
                vector_of_content.insert(e.hash, space.vector_of(&store, e.id).unwrap());
            }
            drop((space, store));
            shuffle(&photos, &mv);
            let summary = index();
            let store = collection.open_store().unwrap();
            let space = collection.search_space(&store, &Fusion::default()).unwrap();
            let mut on_disk = 0;
            for entry in std::fs::read_dir(&photos).unwrap() {
                let path = entry.unwrap().path();
                let hash = *blake3::hash(&std::fs::read(&path).unwrap()).as_bytes();
                let row = store.file_at(&path).unwrap();
                let row = row.unwrap_or_else(|| panic!("{name}: {path:?} left out: {summary:?}"));
                assert_eq!(row.hash, hash, "{name}: {path:?}");
                assert_eq!(
                    space.vector_of(&store, row.id).unwrap(),
                    vector_of_content[&hash],
                    "{name}: {path:?}"
                );
                on_disk += 1;
            }
            assert_eq!(summary.total_images, on_disk, "{name}: {summary:?}");
            assert_eq!(
                (summary.duplicates, summary.moved, summary.new),
                (duplicates, moved, 0),
                "{name}: {summary:?}"
            );
            assert!(summary.changing.is_empty(), "{name}: {summary:?}");
            drop((space, store));
            // nothing was left for a later run
            let again = index();
            assert_eq!(
                (again.new, again.updated, again.moved, again.duplicates),
                (0, 0, 0, 0),
                "{name}: {again:?}"
            );
            assert_eq!((again.removed, again.unchanged), (0, on_disk), "{name}");
        }
    }

    /// Files indexed a while ago (settled stamps, so every changed path is read again) that
    /// swap names, or one renamed while another image is written at its path: their content is
    /// counted moved, as after a fresh index, not new or updated, and is not decoded again.
    #[test]
    fn settled_files_trading_paths_count_as_moved() {
        let mv = |dir: &Path, from: &str, to: &str| {
            std::fs::rename(dir.join(from), dir.join(to)).unwrap()
        };
        type Shuffle = fn(&Path, &dyn Fn(&Path, &str, &str));
        /// new, updated, moved, duplicates
        type Counts = (usize, usize, usize, usize);
        let cases: [(&str, Shuffle, Counts); 3] = [
            (
                "swap",
                |d, mv| {
                    mv(d, "0.bmp", "t");
                    mv(d, "1.bmp", "0.bmp");
                    mv(d, "t", "1.bmp");
                },
                (0, 0, 2, 0),
            ),
            (
                "renamed, another image written at its path",
                |d, mv| {
                    mv(d, "0.bmp", "w.bmp");
                    write_png(&d.join("0.bmp"), 77);
                },
                (0, 1, 1, 0),
            ),
            (
                "copied, then overwritten by another indexed image",
                |d, _| {
                    std::fs::copy(d.join("0.bmp"), d.join("n.bmp")).unwrap();
                    std::fs::copy(d.join("1.bmp"), d.join("0.bmp")).unwrap();
                },
                (0, 0, 1, 1),
            ),
        ];
        for (name, shuffle, counts) in cases {
            let (_tmp, photos, collection, config) = fresh_bmps();
            index_settled(&collection, &config, 4, name);
            let stop = AtomicBool::new(false);
            let index = || run(&collection, &config, &|_| {}, &stop).unwrap();
            shuffle(&photos, &mv);
            let summary = index();
            assert_eq!(
                (
                    summary.new,
                    summary.updated,
                    summary.moved,
                    summary.duplicates
                ),
                counts,
                "{name}: {summary:?}"
            );
            let store = collection.open_store().unwrap();
            for entry in std::fs::read_dir(&photos).unwrap() {
                let path = entry.unwrap().path();
                let hash = *blake3::hash(&std::fs::read(&path).unwrap()).as_bytes();
                let row = store.file_at(&path).unwrap();
                assert_eq!(row.map(|r| r.hash), Some(hash), "{name}: {path:?}");
            }
            drop(store);
            let again = index();
            assert_eq!(
                (again.new, again.updated, again.moved, again.duplicates),
                (0, 0, 0, 0),
                "{name}: {again:?}"
            );
        }
    }
}
