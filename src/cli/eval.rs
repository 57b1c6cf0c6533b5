//! `lookalike eval`: labelled benchmarks and distortion benchmarks, as tables, JSON and reports.

use super::PathArg;
use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, ValueEnum};

use crate::ann::AnnParams;
use crate::collection::Collection;
use crate::crawl::CrawlConfig;
use crate::error::{Error, Result};
use crate::eval::distort::{chain_label, default_suite, parse_chain, parse_list};
use crate::eval::groundtruth::GroundTruth;
use crate::eval::metrics::EvalConfig;
use crate::eval::rankings::{DumpSummary, RankingsHeader, RankingsWriter};
use crate::eval::report::{DistortionPoint, QueryExamples, ReportInput, RunReport, write_report};
use crate::eval::run::{
    DistortConfig, ItemVectors, LabelledConfig, TargetRun, load_item_vectors, parse_targets,
    run_distortions, run_labelled,
};
use crate::eval::table::{TextTable, summary_table};
use crate::features::{Profile, Registry};
use crate::index::IndexConfig;
use crate::store::Store;
use crate::text::{counted, for_count};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum LabelSource {
    /// Each image's parent folder is its class.
    Folders,
}

#[derive(Debug, Args)]
pub(crate) struct EvalArgs {
    /// A labelled dataset folder (holding images/ and groundtruth.tsv), or with --labels folders
    /// a folder of class folders. Not needed with --images and --groundtruth (or --queries).
    #[arg(value_name = "DATASET", value_parser = PathArg)]
    dataset: Option<PathBuf>,
    /// Ground truth (file name TAB integer label); default DATASET/groundtruth.tsv.
    #[arg(long, value_name = "TSV", value_parser = PathArg)]
    groundtruth: Option<PathBuf>,
    /// Image folder the ground truth's names are relative to; default DATASET/images.
    #[arg(long, value_name = "DIR", value_parser = PathArg)]
    images: Option<PathBuf>,
    /// Take classes from folders instead of a ground-truth file.
    #[arg(long, value_enum, conflicts_with_all = ["groundtruth", "queries", "images"])]
    labels: Option<LabelSource>,
    /// Query list: each line a query file then its relevant files, tab-separated.
    #[arg(long, value_name = "TSV", conflicts_with = "groundtruth", value_parser = PathArg)]
    queries: Option<PathBuf>,
    /// Distortion benchmark on any (unlabelled) folder: where do distorted copies find their originals?
    #[arg(long, value_name = "DIR", conflicts_with_all = LABELLED_ONLY, value_parser = PathArg)]
    distort: Option<PathBuf>,
    /// Duplicates benchmark on any folder: plants edited copies of --sample photos (--edits
    /// each) among the rest, runs `duplicates` and scores pairwise precision, recall and F1.
    #[arg(long, value_name = "DIR", conflicts_with_all = LABELLED_ONLY, conflicts_with_all = ["distort", "suite"], value_parser = PathArg)]
    duplicates: Option<PathBuf>,
    /// Edited copies per sampled photo in the duplicates benchmark (distinct kinds, 1 to 20).
    #[arg(long, value_name = "N", default_value_t = 4, value_parser = super::usize_in(1..=20), conflicts_with_all = ["dataset", "distort"])]
    edits: usize,
    /// Where the duplicates benchmark writes its files (an empty or new folder; kept, with
    /// truth.tsv, so that other tools can be scored on them, and indexed into --index-dir when
    /// given). Default: a temporary folder and a temporary index, removed afterwards.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["dataset", "distort"], value_parser = PathArg)]
    work: Option<PathBuf>,
    /// Similarity of the duplicates benchmark: strict, default, loose or a distance.
    #[arg(
        long,
        value_name = "LEVEL",
        default_value = "default",
        conflicts_with_all = ["dataset", "distort"]
    )]
    similarity: String,
    /// Distortions to apply (e.g. `blur:2,jpeg:30,crop:0.2`); default: a suite of 28.
    #[arg(long, value_name = "LIST", conflicts_with_all = ["dataset", "duplicates"])]
    suite: Option<String>,
    /// Number of images distorted in the distortion benchmark (1 to 1000000).
    #[arg(long, default_value_t = 100, value_parser = super::usize_in(1..=1_000_000), conflicts_with = "dataset")]
    sample: usize,
    /// Labelled run with distorted queries (e.g. `blur:2`) against the clean index; `+` chains
    /// distortions in order (`blur:3+jpeg:75`: a blurred photo saved as JPEG).
    #[arg(long, value_name = "DISTORTION")]
    query_distortion: Option<String>,
    /// Families to evaluate, `fused` being the weighted combination (default: the profile's
    /// families, then fused).
    #[arg(long)]
    families: Option<String>,
    /// Feature profile the folder is indexed with (see `lookalike index --profile`). Default:
    /// the profile of the index at --index-dir, else full; another re-extracts its images.
    #[arg(long, value_enum)]
    profile: Option<Profile>,
    #[command(flatten)]
    search: super::SearchArgs,
    /// Cut-offs for P@k, R@k, NDCG@k (each 1 to 10000).
    #[arg(short, value_delimiter = ',', default_value = "1,5,10", value_parser = super::usize_in(1..=10_000))]
    k: Vec<usize>,
    /// HNSW ranking depth (the rest follows in exact order; 1 to 10000).
    #[arg(long, default_value_t = 100, value_parser = super::usize_in(1..=10_000))]
    depth: usize,
    /// Exact search only.
    #[arg(long)]
    no_hnsw: bool,
    /// Database-side augmentation: neighbours averaged into each stored vector (0: rank the
    /// full vectors; at most 100). Default: the index's, as `index --dba` set it, so that eval
    /// ranks as `query` does.
    #[arg(long, value_name = "N", value_parser = super::usize_in(0..=100))]
    dba: Option<usize>,
    /// Exponent on the similarity weights of that augmentation (0 to 100).
    #[arg(long, value_name = "ALPHA", default_value_t = crate::query_expansion::DEFAULT_QE.alpha, value_parser = super::parse_alpha)]
    dba_alpha: f32,
    /// Share of the weight query expansion would give each augmentation neighbour (0 to 10).
    #[arg(long, value_name = "SHARE", default_value_t = crate::ann::DEFAULT_DBA_SHARE, value_parser = parse_share, allow_negative_numbers = true)]
    dba_share: f32,
    /// Seed for distortions and sampling.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Print JSON instead of tables.
    #[arg(long)]
    json: bool,
    /// Write an HTML report (plots, contact sheets) into this folder.
    #[arg(long, value_name = "DIR", value_parser = PathArg)]
    report: Option<PathBuf>,
    /// Write every ranking (JSON lines) for scripts/crosscheck_eval.py.
    #[arg(long, value_name = "FILE", value_parser = PathArg)]
    dump_rankings: Option<PathBuf>,
}

/// Flags of a labelled run only: refused beside `--distort` or `--duplicates`, where they
/// would be ignored.
const LABELLED_ONLY: [&str; 9] = [
    "dataset",
    "groundtruth",
    "images",
    "labels",
    "queries",
    "query_distortion",
    "dump_rankings",
    "k",
    "depth",
];

/// The graph settings an evaluation ranks with: the collection's, with the flags given.
fn graph_params(args: &EvalArgs, collection: &Collection, store: &Store) -> Result<AnnParams> {
    let recorded = collection.ann_params(store)?;
    Ok(AnnParams {
        dba: args.dba.unwrap_or(recorded.dba),
        dba_alpha: args.dba_alpha,
        dba_share: args.dba_share,
        ..recorded
    })
}

fn parse_share(s: &str) -> std::result::Result<f32, String> {
    super::f32_in(s, 0.0, 10.0)
}

/// The index folder for an evaluated image folder: `--index-dir` when given, else a folder
/// under the system temp dir keyed by the image folder's path and the profile (reused across
/// runs).
fn eval_collection(explicit: Option<&Path>, images: &Path, profile: Profile) -> Result<Collection> {
    if let Some(dir) = explicit {
        return Ok(Collection::at(dir));
    }
    let abs = std::fs::canonicalize(images).map_err(|e| Error::io(images, e))?;
    let mut key_text = abs.to_string_lossy().into_owned();
    if profile != Profile::Full {
        key_text.push_str(&format!("\0{}", profile.name()));
    }
    let key = blake3::hash(key_text.as_bytes()).to_hex();
    Ok(Collection::at(
        temp_root()?
            .join(format!("lookalike-eval-{}", user_tag()))
            .join(&key.as_str()[..16]),
    ))
}

/// True when the index at `collection` tracks `folder` or a folder holding it.
fn holds_folder(collection: &Collection, folder: &Path) -> bool {
    let Ok(folder) = std::fs::canonicalize(folder) else {
        return false;
    };
    collection.exists()
        && collection
            .open_store_read_only()
            .and_then(|store| store.roots())
            .is_ok_and(|roots| roots.values().any(|root| folder.starts_with(root)))
}

/// The system temp folder (`$TMPDIR`, else `/tmp`), which must exist: a missing one is never
/// created (a mistyped `TMPDIR` would put folders at the root of the file system).
fn temp_root() -> Result<PathBuf> {
    let dir = std::env::temp_dir();
    if dir.is_dir() {
        return Ok(dir);
    }
    let source = if std::env::var_os("TMPDIR").is_some() {
        "TMPDIR is"
    } else {
        "the system temp folder is"
    };
    Err(Error::InvalidInput(format!(
        "{source} {}, which is not an existing folder: eval keeps its working files there and creates no missing temp folder; set TMPDIR to a folder you can write",
        crate::path_repr::shown(&dir)
    )))
}

/// Who runs this process, for a cache folder of their own in the shared temp folder: the
/// user id where the system tells it, else the login name.
fn user_tag() -> String {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        if let Ok(meta) = std::fs::metadata("/proc/self") {
            return meta.uid().to_string();
        }
    }
    std::env::var("USER")
        .or_else(|_| std::env::var("USERNAME"))
        .map(|name| name.chars().filter(char::is_ascii_alphanumeric).collect())
        .unwrap_or_default()
}

/// The profile a run indexes with: --profile when given, else the one the index at
/// --index-dir records (full for a new index, and for the cache of each folder). A profile
/// other than an index's re-extracts its images, and the index keeps it: a note says so.
fn eval_profile(index_dir: Option<&Path>, given: Option<Profile>) -> Result<Profile> {
    let recorded = match index_dir.map(Collection::at) {
        Some(c) if c.exists() => Some((c.recorded_profile()?, c)),
        _ => None,
    };
    match (given, recorded) {
        (Some(p), Some((r, c))) if p != r && p.ranks() => {
            // the index is changed for good: a warning, printed under -q too
            note!(
                "warning: the index at {} holds the {} profile: --profile {} extracts every image again, and the index keeps the {} profile",
                crate::path_repr::shown(c.dir()),
                r.name(),
                p.name(),
                p.name()
            );
            Ok(p)
        }
        (Some(p), _) => Ok(p),
        (None, r) => Ok(r.map_or(Profile::Full, |(r, _)| r)),
    }
}

/// Indexes `folder` into `collection` for an eval run. `users_index`: the collection is the
/// user's own (`--index-dir`), which keeps tracking a folder it did not hold before: said so.
fn index_folder(
    collection: &Collection,
    folder: &Path,
    profile: Profile,
    quiet: bool,
    users_index: bool,
) -> Result<crate::index::IndexSummary> {
    let newly_tracked = users_index && !holds_folder(collection, folder);
    let cfg = IndexConfig {
        crawl: CrawlConfig {
            roots: vec![folder.to_path_buf()],
            ..Default::default()
        },
        profile: Some(profile),
        command: Some("eval"),
        ..Default::default()
    };
    let stop = super::install_stop_flag();
    let bar = super::progress_bar(quiet);
    let summary = crate::index::run(
        collection,
        &cfg,
        &|p| super::render_progress(&bar, p),
        &stop,
    );
    bar.finish_and_clear();
    let summary = summary?;
    if summary.interrupted {
        return Err(Error::Interrupted);
    }
    if newly_tracked && !quiet {
        let shown = crate::path_repr::shown(folder);
        note!(
            "note: {shown} is now tracked by the index at {}: later `{}` runs keep it up to date (`{}` stops that)",
            crate::path_repr::shown(collection.dir()),
            crate::collection::advised_command(collection, "index"),
            crate::collection::advised_command(
                collection,
                &format!(
                    "forget {}",
                    crate::path_repr::shell_word(folder.as_os_str())
                )
            )
        );
    }
    if !quiet {
        // the counts `index` gives: images taken as copies or moves count too
        note!(
            "indexed {}: {} new, {} unchanged, {} updated, {} moved, {}, {} removed, {} failed{}",
            crate::path_repr::shown(folder),
            summary.new,
            summary.unchanged,
            summary.updated,
            summary.moved,
            counted(summary.duplicates, "duplicate", "duplicates"),
            summary.removed,
            // failures recorded before and unchanged since fail still
            summary.failed.len() + summary.still_failing,
            if summary.images_per_sec > 0.0 {
                format!(", {:.1} images/s", summary.images_per_sec)
            } else {
                String::new()
            }
        );
        let mut failed: Vec<(PathBuf, String)> = summary
            .failed
            .iter()
            .map(|f| (f.path.clone(), f.reason.clone()))
            .collect();
        // and those not read again, recorded failing before and unchanged since
        if summary.still_failing > 0 {
            let store = collection.open_store_read_only()?;
            let roots = store.roots()?;
            let folder = std::fs::canonicalize(folder).map_err(|e| Error::io(folder, e))?;
            for f in store.failures()? {
                let Some(root) = roots.get(&f.root_id) else {
                    continue;
                };
                let path = root.join(&f.rel_path);
                if path.starts_with(&folder) && !summary.failed.iter().any(|s| s.path == path) {
                    failed.push((path, f.reason));
                }
            }
        }
        const SHOWN: usize = 5;
        for (path, reason) in failed.iter().take(SHOWN) {
            note!(
                "failed: {}: {}",
                crate::path_repr::shown(path),
                crate::path_repr::escape_message(reason)
            );
        }
        let total = summary.failed.len() + summary.still_failing;
        if total > SHOWN.min(failed.len()) {
            note!(
                "failed: {} more (`{}` lists them)",
                total - SHOWN.min(failed.len()),
                crate::collection::advised_command(collection, "status")
            );
        }
    }
    Ok(summary)
}

/// The walk the index at `collection` makes: its recorded walk options, else the defaults,
/// its own files skipped. The labelled images are those it walks.
fn eval_walk(collection: &Collection) -> Result<CrawlConfig> {
    let mut walk = CrawlConfig {
        skip_paths: collection.own_paths(),
        ..Default::default()
    };
    if collection.exists() {
        let store = collection.open_store_read_only()?;
        if let Some(options) = collection.walk_options(&store)? {
            walk = options.applied_to(&walk);
        }
    }
    Ok(walk)
}

/// The `missing` labelled images the index records as failing, each with its id and the reason.
fn labelled_failures(
    store: &Store,
    gt: &GroundTruth,
    missing: &[String],
) -> Result<Vec<(usize, String)>> {
    if missing.is_empty() {
        return Ok(Vec::new());
    }
    let roots = store.roots()?;
    let root = std::fs::canonicalize(gt.root()).map_err(|e| Error::io(gt.root(), e))?;
    let missing: std::collections::HashSet<&str> = missing.iter().map(String::as_str).collect();
    let mut failed: Vec<(usize, String)> = store
        .failures()?
        .into_iter()
        .filter_map(|f| {
            let abs = roots.get(&f.root_id)?.join(&f.rel_path);
            let id = gt.id_of_path(abs.strip_prefix(&root).ok()?)?;
            missing.contains(gt.name(id)).then_some((id, f.reason))
        })
        .collect();
    failed.sort_by_key(|(id, _)| *id);
    Ok(failed)
}

/// The folder a labelled run is named after: DATASET, else --images when it and the labels
/// (--groundtruth or --queries) are given, which leave DATASET nothing to default.
fn labelled_dataset(args: &EvalArgs) -> Result<PathBuf> {
    if let Some(dataset) = &args.dataset {
        return Ok(dataset.clone());
    }
    match &args.images {
        Some(images) if args.groundtruth.is_some() || args.queries.is_some() => Ok(images.clone()),
        _ => Err(Error::InvalidInput(
            "no DATASET: give the dataset folder (holding groundtruth.tsv and images/), a folder of class folders with --labels folders, --images DIR with --groundtruth FILE or --queries FILE, or --distort DIR or --duplicates DIR".into(),
        )),
    }
}

/// DATASET/images when it exists (the shared datasets' layout), else DATASET itself.
fn default_images_dir(dataset: &Path) -> PathBuf {
    let sub = dataset.join("images");
    if sub.is_dir() {
        sub
    } else {
        dataset.to_path_buf()
    }
}

/// `path` made absolute, its links resolved as far as it exists; the rest (not made yet) is
/// read as written, `..` stepping back.
fn resolved(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut abs = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    // a link to a file not made yet: where writing through it would make the file
    for _ in 0..40 {
        let Ok(target) = std::fs::read_link(&abs) else {
            break;
        };
        abs = match abs.parent() {
            Some(parent) => parent.join(target),
            None => target,
        };
    }
    let parts: Vec<Component> = abs.components().collect();
    for split in (1..=parts.len()).rev() {
        if let Ok(mut out) = parts[..split].iter().collect::<PathBuf>().canonicalize() {
            for part in &parts[split..] {
                match part {
                    Component::ParentDir => {
                        out.pop();
                    }
                    Component::Normal(name) => out.push(name),
                    _ => {}
                }
            }
            return out;
        }
    }
    abs
}

/// Refuses, before any work, outputs that would replace what is not theirs: a rankings file or
/// report inside a folder evaluated (the next `index` would take them for images), an existing
/// file that is not a rankings file, a folder holding more than a report, and read-only files
/// (which a privileged user could replace all the same).
fn check_outputs(args: &EvalArgs) -> Result<()> {
    let evaluated: Vec<(PathBuf, &PathBuf)> = [
        &args.dataset,
        &args.images,
        &args.distort,
        &args.duplicates,
        &args.work,
    ]
    .into_iter()
    .flatten()
    .map(|f| (resolved(f), f))
    .collect();
    let inside = |out: &Path| {
        let out = resolved(out);
        evaluated
            .iter()
            .find(|(folder, _)| out.starts_with(folder))
            .map(|(_, given)| crate::path_repr::shown(given))
    };
    let read_only = |p: &Path| std::fs::metadata(p).is_ok_and(|m| m.permissions().readonly());
    // the planted copies would join the photos they are planted among, and stay there
    if let (Some(work), Some(folder)) = (&args.work, &args.duplicates)
        && resolved(work).starts_with(resolved(folder))
    {
        return Err(Error::InvalidInput(format!(
            "--work {}: it is inside {}, which is evaluated; give a folder outside it",
            crate::path_repr::shown(work),
            crate::path_repr::shown(folder)
        )));
    }
    // the benchmark writes its files into an empty or new folder, which --work must be
    if let (Some(work), Some(_)) = (&args.work, &args.duplicates) {
        let why = match std::fs::metadata(work) {
            Ok(m) if !m.is_dir() => Some("not a folder"),
            Ok(_) => match std::fs::read_dir(work).map(|mut e| e.next().is_some()) {
                Ok(true) => Some("not empty"),
                Ok(false) => None,
                Err(_) => Some("a folder that cannot be read"),
            },
            Err(_) => None,
        };
        if let Some(why) = why {
            return Err(Error::InvalidInput(format!(
                "--work {}: {why}; the benchmark writes its files into an empty or new folder: give one",
                work.display()
            )));
        }
    }
    if let Some(path) = &args.dump_rankings {
        let bad = |why: String| {
            Err(Error::InvalidInput(format!(
                "--dump-rankings {}: {why}",
                crate::path_repr::shown(path)
            )))
        };
        let folder = path.parent().filter(|p| !p.as_os_str().is_empty());
        // the --report folder is made before the rankings are written
        let made = |f: &Path| args.report.as_deref() == Some(f);
        if path.is_dir() || folder.is_some_and(|f| !f.is_dir() && !made(f)) {
            return bad("give a file name in an existing folder".into());
        }
        if let Some(folder) = inside(path) {
            return bad(format!(
                "it is inside {folder}, which is evaluated; write the rankings elsewhere"
            ));
        }
        if let Ok(meta) = std::fs::metadata(path) {
            #[cfg(unix)]
            let stream = {
                use std::os::unix::fs::FileTypeExt;
                meta.file_type().is_fifo() || meta.file_type().is_char_device()
            };
            #[cfg(not(unix))]
            let stream = false;
            if !meta.is_file() && !stream {
                return bad("it is not a regular file; give a file name".into());
            }
            if meta.is_file() && meta.permissions().readonly() {
                return bad("the file is read-only; make it writable or give another name".into());
            }
            // a rankings file is replaced, an empty one filled; anything else is the user's
            if meta.is_file()
                && meta.len() > 0
                && !crate::eval::rankings::is_rankings_file(path).unwrap_or(false)
            {
                return bad(
                    "the file exists and is not a rankings file lookalike wrote; give a new name, or remove it first".into(),
                );
            }
        }
    }
    if let Some(dir) = &args.report {
        let bad = |why: String| {
            Err(Error::InvalidInput(format!(
                "--report {}: {why}",
                crate::path_repr::shown(dir)
            )))
        };
        if let Some(folder) = inside(dir) {
            return bad(format!(
                "it is inside {folder}, which is evaluated; write the report elsewhere"
            ));
        }
        if dir.is_dir() {
            let empty = std::fs::read_dir(dir).is_ok_and(|mut e| e.next().is_none());
            if !empty && !crate::eval::report::is_report_folder(dir) {
                return bad(
                    "the folder holds files other than a lookalike report; give an empty or new folder".into(),
                );
            }
            if read_only(dir) {
                return bad(
                    "the folder is read-only; make it writable or give another folder".into(),
                );
            }
            for name in ["index.html", "report.json"] {
                if read_only(&dir.join(name)) {
                    return bad(format!(
                        "its {name} is read-only; make it writable or give another folder"
                    ));
                }
            }
        }
    }
    Ok(())
}

pub(crate) fn cmd_eval(index_dir: Option<&Path>, args: EvalArgs, quiet: bool) -> Result<ExitCode> {
    check_outputs(&args)?;
    // the report's folder is made before the work, so a bad path fails at once
    if let Some(dir) = &args.report {
        std::fs::create_dir_all(dir).map_err(|e| {
            Error::InvalidInput(format!(
                "--report {}: cannot make the report folder there ({e}); give another folder",
                crate::path_repr::shown(dir)
            ))
        })?;
    }
    if let Some(folder) = &args.duplicates {
        return duplicates_benchmark(index_dir, folder, &args, quiet);
    }
    if let Some(profile) = args.profile
        && !profile.ranks()
    {
        return Err(Error::InvalidInput(format!(
            "--profile {} describes images for `duplicates` only and ranks nothing: evaluate retrieval with --profile full or fast, or duplicates with `eval --duplicates DIR --profile {}`",
            profile.name(),
            profile.name()
        )));
    }
    let profile = eval_profile(index_dir, args.profile)?;
    if !profile.ranks() {
        let dir = index_dir.expect("only a recorded profile can rank nothing");
        return Err(crate::query::ranks_nothing(&Collection::at(dir), profile));
    }
    let registry = Registry::for_profile(profile);
    let fusion = args.search.fusion(profile)?;
    let families = args
        .families
        .clone()
        .unwrap_or_else(|| format!("{},fused", registry.families().join(",")));
    let targets = parse_targets(&families, &registry, &fusion)?;
    if let Some(folder) = &args.distort {
        return distort_benchmark(index_dir, folder, &args, profile, &registry, targets, quiet);
    }
    let dataset = labelled_dataset(&args)?;
    let mut gt = match (args.labels, &args.queries) {
        (Some(LabelSource::Folders), _) => {
            let collection = eval_collection(index_dir, &dataset, profile)?;
            let gt = GroundTruth::from_folders_walked(&dataset, &eval_walk(&collection)?)?;
            warn_unnamed(&gt);
            gt
        }
        (None, Some(list)) => {
            let images = args
                .images
                .clone()
                .unwrap_or_else(|| default_images_dir(&dataset));
            GroundTruth::from_query_list(list, &images)?
        }
        (None, None) => {
            let tsv = args
                .groundtruth
                .clone()
                .unwrap_or_else(|| dataset.join("groundtruth.tsv"));
            let images = args
                .images
                .clone()
                .unwrap_or_else(|| default_images_dir(&dataset));
            if args.groundtruth.is_none() && !dataset.exists() {
                return Err(Error::InvalidInput(format!(
                    "{}: no such folder; give the dataset folder (holding groundtruth.tsv and images/)",
                    crate::path_repr::shown(&dataset)
                )));
            }
            if !tsv.is_file() {
                return Err(Error::InvalidInput(format!(
                    "{}: no ground truth; pass --groundtruth FILE, --labels folders, --queries FILE, or use --distort DIR for unlabelled folders",
                    crate::path_repr::shown(&tsv)
                )));
            }
            GroundTruth::from_tsv(&tsv, &images)?
        }
    };
    // Checked before indexing, which may take a while.
    let query_distortion = args
        .query_distortion
        .as_deref()
        .map(parse_chain)
        .transpose()?
        .unwrap_or_default();
    let images_root = gt.root().to_path_buf();
    let collection = eval_collection(index_dir, &images_root, profile)?;
    let index_summary = index_folder(
        &collection,
        &images_root,
        profile,
        quiet,
        index_dir.is_some(),
    )?;
    let store = collection.open_store_read_only()?;
    let mut items = load_item_vectors(&store, &mut gt, &registry)?;
    // warnings that change what the figures mean are printed under -q too
    let failed = labelled_failures(&store, &gt, &items.missing)?;
    let left_out: Vec<String> = failed
        .iter()
        .map(|(id, _)| gt.name(*id).to_string())
        .collect();
    if !failed.is_empty() {
        let named: Vec<String> = failed
            .iter()
            .take(5)
            .map(|(id, why)| {
                format!(
                    "{}: {}",
                    crate::path_repr::escape_text(gt.name(*id)),
                    crate::path_repr::escape_message(why)
                )
            })
            .collect();
        let one = failed.len() == 1;
        note!(
            "warning: {} could not be read as {} ({}{}); {} left out of the figures, neither {} nor relevant to any",
            counted(failed.len(), "labelled file", "labelled files"),
            if one { "an image" } else { "images" },
            named.join("; "),
            if failed.len() > named.len() {
                "; ..."
            } else {
                ""
            },
            if one { "it is" } else { "they are" },
            if one { "a query" } else { "queries" }
        );
        let ids: Vec<usize> = failed.iter().map(|(id, _)| *id).collect();
        gt.leave_out(&ids);
        items.missing.retain(|m| !left_out.contains(m));
    }
    if !items.missing.is_empty() {
        let one = items.missing.len() == 1;
        note!(
            "warning: {} {} not indexed (e.g. {}); {} as never retrieved",
            counted(items.missing.len(), "labelled image", "labelled images"),
            if one { "is" } else { "are" },
            crate::path_repr::escape_text(&items.missing[0]),
            if one { "it counts" } else { "they count" }
        );
    }
    let cfg = LabelledConfig {
        targets,
        metrics: EvalConfig {
            // each cut-off once, in order
            ks: {
                let mut ks = args.k.clone();
                ks.sort_unstable();
                ks.dedup();
                ks
            },
            ..Default::default()
        },
        hnsw_depth: args.depth,
        hnsw: !args.no_hnsw,
        query_distortion,
        seed: args.seed,
        qe: args.search.expansion(),
        nearest_first: args.search.nearest_first,
        ann: graph_params(&args, &collection, &store)?,
    };
    let stop = super::install_stop_flag_saying("finishing the current query");
    let runs = run_labelled(&gt, &items, &registry, &cfg, &stop)?;

    if let Some(path) = &args.dump_rankings {
        let mut w = RankingsWriter::create(path)?;
        for run in &runs {
            w.begin(&RankingsHeader::new(&run.family, &run.mode, &gt))?;
            for r in &run.rankings {
                w.write_ranking(&gt, r)?;
            }
            w.write_summary(&DumpSummary::from(&run.evaluation.summary))?;
        }
        w.finish()?;
    }
    let title = format!(
        "{}: {}{}{}",
        crate::path_repr::shown(&dataset),
        counted(items.by_item.len(), "image", "images"),
        if items.distractors > 0 {
            format!(
                " ({})",
                counted(
                    items.distractors,
                    "unlabelled distractor",
                    "unlabelled distractors"
                )
            )
        } else {
            String::new()
        },
        if cfg.query_distortion.is_empty() {
            String::new()
        } else {
            format!(
                ", queries distorted with {}",
                chain_label(&cfg.query_distortion)
            )
        }
    );
    if let Some(dir) = &args.report {
        let input = ReportInput {
            title: "lookalike evaluation".into(),
            dataset: title.clone(),
            generated_by: std::env::args().collect::<Vec<_>>().join(" "),
            runs: runs.iter().map(run_report).collect(),
            examples: runs
                .iter()
                .filter(|r| r.mode == "exact")
                .map(|r| {
                    QueryExamples::from_evaluation(
                        &r.family,
                        &r.mode,
                        &gt,
                        &r.evaluation,
                        &r.rankings,
                        4,
                        8,
                    )
                })
                .collect::<Result<_>>()?,
            notes: vec![format!(
                "HNSW rankings: the first {} from the graph, the rest in exact order.",
                if args.depth == 1 {
                    "result comes".to_string()
                } else {
                    format!("{} results come", args.depth)
                }
            )],
            ..Default::default()
        };
        let out = write_report(dir, &input)?;
        if !quiet {
            note!("report: {}", crate::path_repr::shown(&out.index));
        }
    }
    if args.json {
        let mut doc =
            crate::path_repr::object("index_dir", &crate::path_repr::absolute(collection.dir()));
        doc.insert("dataset".into(), title.into());
        doc.insert("left_out".into(), left_out.into());
        doc.insert(
            "indexing_images_per_sec".into(),
            index_summary.images_per_sec.into(),
        );
        doc.insert(
            "runs".into(),
            serde_json::to_value(&runs).map_err(|e| Error::Internal(e.to_string()))?,
        );
        super::print_json(&doc)?;
    } else {
        let rows: Vec<(&str, &str, &crate::eval::metrics::Summary)> = runs
            .iter()
            .map(|r| (r.family.as_str(), r.mode.as_str(), &r.evaluation.summary))
            .collect();
        let mut out = std::io::stdout().lock();
        writeln!(out, "{title}").map_err(super::out_err)?;
        write!(out, "{}", summary_table(&rows)).map_err(super::out_err)?;
        if let Some(r) = runs.first()
            && r.evaluation.summary.queries_without_relevant > 0
        {
            let alone = r.evaluation.summary.queries_without_relevant;
            let one = alone == 1;
            writeln!(
                out,
                "note: {alone} of {} {} no other relevant image (alone in {} class); {} 0 in every mean",
                counted(r.evaluation.summary.queries, "query", "queries"),
                if one { "has" } else { "have" },
                if one { "its" } else { "their" },
                if one { "it scores" } else { "they score" }
            )
            .map_err(super::out_err)?;
        }
        for r in runs.iter().filter(|r| r.mode == "hnsw") {
            writeln!(
                out,
                "{} hnsw: recall@10 vs exact {:.4}, search p50 {:.3} ms, p95 {:.3} ms",
                r.family,
                r.ann_recall_at_10.unwrap_or(0.0),
                r.query_ms_p50.unwrap_or(0.0),
                r.query_ms_p95.unwrap_or(0.0)
            )
            .map_err(super::out_err)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn run_report(r: &TargetRun) -> RunReport {
    let mut extra = BTreeMap::new();
    if let Some(rec) = r.ann_recall_at_10 {
        extra.insert("recall@10 vs exact".to_string(), format!("{rec:.4}"));
    }
    if let Some(p50) = r.query_ms_p50 {
        extra.insert("search p50 ms".to_string(), format!("{p50:.3}"));
    }
    RunReport {
        family: r.family.clone(),
        mode: r.mode.clone(),
        summary: r.evaluation.summary.clone(),
        extra,
    }
}

/// A temporary folder, removed with everything in it when this is dropped.
struct RemovedAfter(PathBuf);

impl Drop for RemovedAfter {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn duplicates_benchmark(
    index_dir: Option<&Path>,
    folder: &Path,
    args: &EvalArgs,
    quiet: bool,
) -> Result<ExitCode> {
    use crate::eval::duplicates::{plant, score};
    let test = crate::duplicates::Similarity::parse(&args.similarity)?.test();
    let crawled = crate::crawl::crawl(&CrawlConfig {
        roots: vec![folder.to_path_buf()],
        ..Default::default()
    })?;
    let sources: Vec<PathBuf> = crawled.files.into_iter().map(|f| f.abs_path).collect();
    if sources.len() < 2 {
        return Err(Error::InvalidInput(format!(
            "{}: the duplicates benchmark needs at least two images",
            crate::path_repr::shown(folder)
        )));
    }
    let temp = temp_root()?.join(format!(
        "lookalike-duplicates-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    ));
    let work = args.work.clone().unwrap_or_else(|| temp.join("files"));
    let originals = args.sample.min(sources.len() - 1);
    // removed however the run ends: the temporary files, and the index of them
    let _temp = RemovedAfter(temp.clone());
    if !quiet {
        // the count is an upper bound: a damaged photo sampled is replaced by the next, if any
        note!(
            "planting edited copies of up to {} in {} ...",
            counted(originals, "photo", "photos"),
            crate::path_repr::shown(&work)
        );
    }
    let mut planting = plant(&sources, originals, args.edits, args.seed, &work)?;
    if !quiet {
        // what was planted: a damaged photo sampled was replaced by the next, if any
        let edited = planting.planted.iter().filter(|p| p.edit.is_some()).count();
        note!(
            "planted {} of {} among {} in {}",
            counted(edited, "edited copy", "edited copies"),
            counted(planting.originals(), "photo", "photos"),
            counted(planting.distractors(), "other file", "other files"),
            crate::path_repr::shown(&work)
        );
    }
    let too_few = |unreadable: &[(PathBuf, String)]| {
        Error::InvalidInput(format!(
            "{}: the duplicates benchmark needs at least two images that can be read, and {} of its {} can ({})",
            crate::path_repr::shown(folder),
            sources.len() - unreadable.len(),
            sources.len(),
            named_with_why(folder, unreadable)
        ))
    };
    if sources.len() - planting.unreadable.len() < 2 {
        return Err(too_few(&planting.unreadable));
    }
    // Temporary files go into a temporary index: one of the user's would keep tracking a
    // folder that is gone.
    let collection = match (index_dir, &args.work) {
        (Some(d), Some(_)) => Collection::at(d),
        _ => Collection::at(temp.join("index")),
    };
    let started = std::time::Instant::now();
    let profile = match (index_dir, &args.work) {
        (Some(_), Some(_)) => eval_profile(index_dir, args.profile)?,
        _ => args.profile.unwrap_or(Profile::Full),
    };
    let users_index = index_dir.is_some() && args.work.is_some();
    let summary = index_folder(&collection, &work, profile, quiet, users_index)?;
    let store = collection.open_store_read_only()?;
    let root = std::fs::canonicalize(&work).map_err(|e| Error::io(&work, e))?;
    // Distractors the index could not read are left out as sampled photos that could not be.
    let failed: HashMap<PathBuf, &str> = summary
        .failed
        .iter()
        .filter_map(|f| {
            Some((
                f.path.strip_prefix(&root).ok()?.to_path_buf(),
                f.reason.as_str(),
            ))
        })
        .collect();
    planting.planted.retain(|p| {
        let Some(why) = failed.get(&p.rel_path).filter(|_| p.family.is_none()) else {
            return true;
        };
        planting
            .unreadable
            .push((sources[p.source].clone(), why.to_string()));
        false
    });
    let (planted, unreadable) = (planting.planted, planting.unreadable);
    // warnings that change what the figures mean are printed under -q too
    let readable = sources.len() - unreadable.len();
    if !unreadable.is_empty() {
        note!(
            "warning: {} of the {} of {} could not be read as images ({}); {} left out of the benchmark",
            unreadable.len(),
            counted(sources.len(), "file", "files"),
            crate::path_repr::shown(folder),
            named_with_why(folder, &unreadable),
            if unreadable.len() == 1 {
                "it is"
            } else {
                "they are"
            }
        );
    }
    let originals = planted
        .iter()
        .filter(|p| p.family.is_some() && p.edit.is_none())
        .count();
    let distractors = planted.iter().filter(|p| p.family.is_none()).count();
    if readable < 2 {
        return Err(too_few(&unreadable));
    }
    // fewer than asked: a warning, printed under -q too
    if originals < args.sample {
        note!(
            "warning: --sample {}: {} holds {} images{}, of which one at least stays a distractor; {originals} sampled",
            args.sample,
            crate::path_repr::shown(folder),
            sources.len(),
            if unreadable.is_empty() {
                String::new()
            } else {
                format!(" ({readable} readable)")
            }
        );
    }
    let findings = crate::duplicates::find_in_store(
        &store,
        std::slice::from_ref(&root),
        test,
        &crate::duplicates::KeepRule::Best,
    )?;
    let seconds = started.elapsed().as_secs_f64();
    let groups: Vec<Vec<PathBuf>> = findings
        .groups
        .iter()
        .map(|g| {
            g.members
                .iter()
                .filter_map(|m| {
                    m.record
                        .path
                        .strip_prefix(&root)
                        .ok()
                        .map(Path::to_path_buf)
                })
                .collect()
        })
        .collect();
    let scores = score(&planted, &groups);
    let left_out = match unreadable.len() {
        0 => String::new(),
        n => format!(
            "; {} left out",
            counted(n, "unreadable file", "unreadable files")
        ),
    };
    // the planted files as the figures describe them
    let dataset = format!(
        "{} ({} with {} each, {}{left_out})",
        counted(planted.len(), "file", "files"),
        counted(originals, "photo", "photos"),
        counted(args.edits, "edited copy", "edited copies"),
        counted(distractors, "distractor", "distractors"),
    );
    let groups_found = counted(findings.groups.len(), "group", "groups");
    if let Some(dir) = &args.report {
        let input = ReportInput {
            title: "lookalike duplicates benchmark".into(),
            dataset: format!(
                "{}: {dataset}, seed {}",
                crate::path_repr::shown(folder),
                args.seed
            ),
            generated_by: std::env::args().collect::<Vec<_>>().join(" "),
            notes: vec![format!("Copies when {test}; {groups_found}.")],
            duplicates: Some(scores.clone()),
            ..Default::default()
        };
        let out = write_report(dir, &input)?;
        if !quiet {
            note!("report: {}", crate::path_repr::shown(&out.index));
        }
    }
    if args.json {
        super::print_json(&serde_json::json!({
            "folder": folder.to_string_lossy(),
            "files": planted.len(),
            "originals": originals,
            "edits_per_original": args.edits,
            "seed": args.seed,
            "test": test,
            "distractors": distractors,
            "failed": unreadable.len(),
            "left_out": unreadable.iter().map(|(p, _)| p.to_string_lossy()).collect::<Vec<_>>(),
            "groups": findings.groups.len(),
            "seconds": seconds,
            "scores": scores,
        }))?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut table = TextTable::new([
        "edit",
        "pairs",
        "found",
        "false",
        "precision",
        "recall",
        "F1",
    ]);
    let mut row = |name: &str, s: &crate::eval::duplicates::PairScore| {
        table.row(vec![
            name.to_string(),
            (s.found + s.missed).to_string(),
            s.found.to_string(),
            s.false_pairs.to_string(),
            format!("{:.3}", s.precision),
            format!("{:.3}", s.recall),
            format!("{:.3}", s.f1),
        ]);
    };
    for (kind, s) in &scores.by_edit {
        row(kind, s);
    }
    row("all", &scores.overall);
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "duplicates benchmark: {dataset}, {test}, {groups_found}, {seconds:.1} s index + search"
    )
    .map_err(super::out_err)?;
    write!(out, "{}", table.render()).map_err(super::out_err)?;
    Ok(ExitCode::SUCCESS)
}

/// `n` and the noun it counts, in the singular for 1.
/// Up to five of `files` (found in `folder`), each named as under `folder` with why it failed.
fn named_with_why(folder: &Path, files: &[(PathBuf, String)]) -> String {
    const SHOWN: usize = 5;
    let base = std::fs::canonicalize(folder).unwrap_or_else(|_| folder.to_path_buf());
    let mut named: Vec<String> = files
        .iter()
        .take(SHOWN)
        .map(|(path, why)| {
            let shown = path
                .strip_prefix(&base)
                .map_or_else(|_| path.clone(), |rel| folder.join(rel));
            format!(
                "{}: {}",
                crate::path_repr::shown(&shown),
                crate::path_repr::escape_message(why)
            )
        })
        .collect();
    if files.len() > SHOWN {
        named.push("...".into());
    }
    named.join("; ")
}

fn distort_benchmark(
    index_dir: Option<&Path>,
    folder: &Path,
    args: &EvalArgs,
    profile: Profile,
    registry: &Registry,
    targets: Vec<crate::eval::run::Target>,
    quiet: bool,
) -> Result<ExitCode> {
    let suite = match &args.suite {
        Some(list) => parse_list(list)?,
        None => default_suite(),
    };
    if folder.exists() && !folder.is_dir() {
        return Err(Error::InvalidInput(format!(
            "--distort {}: not a folder; give the folder of images to distort",
            crate::path_repr::shown(folder)
        )));
    }
    let collection = eval_collection(index_dir, folder, profile)?;
    index_folder(&collection, folder, profile, quiet, index_dir.is_some())?;
    let store = collection.open_store_read_only()?;
    // Every indexed image is its own class: a distorted copy's only relevant item is its original.
    let mut gt = GroundTruth::from_folders_flat_walked(folder, &eval_walk(&collection)?)?;
    warn_unnamed(&gt);
    let items: ItemVectors = load_item_vectors(&store, &mut gt, registry)?;
    if items.by_item.is_empty() {
        return Err(Error::InvalidInput(format!(
            "{}: none of its images could be read, so there is nothing to distort (`{}` lists the failures)",
            crate::path_repr::shown(folder),
            crate::collection::advised_command(&collection, "status")
        )));
    }
    // fewer than asked: a warning, printed under -q too
    if items.by_item.len() < args.sample {
        let n = items.by_item.len();
        note!(
            "warning: --sample {}: {} holds {} that could be read; {}",
            args.sample,
            crate::path_repr::shown(folder),
            counted(n, "image", "images"),
            if n == 1 {
                "it is distorted".to_string()
            } else {
                format!("all {n} are distorted")
            }
        );
    }
    let paths: HashMap<usize, PathBuf> = items.by_item.keys().map(|&i| (i, gt.path(i))).collect();
    let cfg = DistortConfig {
        targets,
        suite,
        sample: args.sample,
        seed: args.seed,
        hnsw: !args.no_hnsw,
        ann: graph_params(args, &collection, &store)?,
        qe: args.search.expansion(),
        nearest_first: args.search.nearest_first,
    };
    let bar = super::progress_bar(quiet);
    bar.set_length(cfg.suite.len() as u64);
    bar.set_message("distortions");
    let stop = super::install_stop_flag_saying("finishing the current query");
    let results = run_distortions(&items, &paths, registry, &cfg, &stop, &|step, _| {
        bar.set_position(step as u64)
    })?;
    bar.finish_and_clear();
    if let Some(dir) = &args.report {
        let input = ReportInput {
            title: "lookalike distortion benchmark".into(),
            dataset: format!("{}: {}, {} distorted per setting", crate::path_repr::shown(folder), counted(items.by_item.len(), "image", "images"), args.sample.min(items.by_item.len())),
            generated_by: std::env::args().collect::<Vec<_>>().join(" "),
            distortion_metric: "recall@1".into(),
            distortions: results
                .iter()
                .filter_map(|r| {
                    r.distortion.parse().ok().map(|d| DistortionPoint {
                        family: r.family.clone(),
                        mode: r.mode.clone(),
                        distortion: d,
                        value: r.recall_at_1,
                    })
                })
                .collect(),
            notes: vec!["HNSW figures look at the top 10 only (mAP there is the reciprocal rank within the top 10).".into()],
            ..Default::default()
        };
        let out = write_report(dir, &input)?;
        if !quiet {
            note!("report: {}", crate::path_repr::shown(&out.index));
        }
    }
    if args.json {
        super::print_json(&results)?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut table = TextTable::new([
        "distortion",
        "family",
        "mode",
        "queries",
        "R@1",
        "R@10",
        "mAP",
    ]);
    for r in &results {
        table.row(vec![
            r.distortion.clone(),
            r.family.clone(),
            r.mode.clone(),
            r.queries.to_string(),
            format!("{:.3}", r.recall_at_1),
            format!("{:.3}", r.recall_at_10),
            format!("{:.3}", r.map),
        ]);
    }
    let mut out = std::io::stdout().lock();
    write!(out, "{table}").map_err(super::out_err)?;
    Ok(ExitCode::SUCCESS)
}

/// Warns of the folder's images left out because their names are not UTF-8 (a warning: the
/// figures leave them out).
fn warn_unnamed(gt: &GroundTruth) {
    let unnamed = gt.unnamed();
    if let Some(first) = unnamed.first() {
        note!(
            "warning: {} left out of the evaluation: {} not valid UTF-8 (e.g. {}); rename {} to include {}",
            counted(unnamed.len(), "image", "images"),
            for_count(unnamed.len(), "its name is", "their names are"),
            crate::path_repr::shown(first),
            for_count(unnamed.len(), "it", "them"),
            for_count(unnamed.len(), "it", "them"),
        );
    }
}
