//! The command line: clap types turned into plain config structs, progress bars, text and JSON
//! output, exit codes. The library core never sees clap.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};

use crate::collection::{Collection, INDEX_DIR_ENV, SearchMode};
use crate::crawl::CrawlConfig;
use crate::error::{Error, Result};
use crate::features::{Fusion, Profile, Registry};
use crate::index::{IndexConfig, IndexSummary, Progress};
use crate::query::{QueryConfig, Searcher};
use crate::query_expansion::{DEFAULT_QE, QueryExpansion};

mod eval;
pub mod restore;

/// Exit status when indexing finished but some files could not be indexed.
pub const EXIT_SOME_FAILED: u8 = 3;

#[derive(Debug, Parser)]
#[command(
    name = "lookalike",
    version,
    about = "Find images that look alike: index photo folders, query by example, restore blur, measure accuracy",
    after_help = "Examples:\n  lookalike index ~/Pictures\n  lookalike query holiday.jpg -k 5\n  lookalike status --json\n\nThe index lives in ./.lookalike unless --index-dir or $LOOKALIKE_INDEX says otherwise."
)]
struct Cli {
    /// Folder holding the index (database and HNSW dump).
    #[arg(long, global = true, env = INDEX_DIR_ENV, value_name = "DIR")]
    index_dir: Option<PathBuf>,

    /// No progress bar and no summary on stderr.
    #[arg(short, long, global = true)]
    quiet: bool,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Index image folders (incremental: unchanged files are not decoded again).
    #[command(
        after_help = "Examples:\n  lookalike index ~/Pictures                  # track this folder from now on\n  lookalike index                             # refresh every tracked folder\n  lookalike index ~/Pictures/new/img_001.jpg  # one file inside a tracked folder\n  lookalike index ~/Pictures --profile fast   # colour and texture only, several times faster\n  lookalike index photos scans --exclude '**/thumbs/**'\n  lookalike --index-dir idx index photos --json\n\nFolders given are tracked: the index mirrors them, and a file under two overlapping folders is one image. `lookalike forget DIR` stops tracking one.\n\nExit status: 0 when every file was indexed, 3 when some could not be (they are listed and recorded; `lookalike status` shows them), a tracked folder is missing, or files kept changing while read."
    )]
    Index(IndexArgs),
    /// Stop tracking an indexed folder: its images leave the index (files are not touched).
    #[command(
        after_help = "Examples:\n  lookalike forget ~/Pictures/old\n  lookalike forget /media/usb/photos --json\n\nImages that another tracked folder also holds stay indexed. The folder need not exist any more."
    )]
    Forget(ForgetArgs),
    /// Find the indexed images most similar to an example image.
    #[command(
        after_help = "Examples:\n  lookalike query photo.jpg\n  lookalike query photo.jpg -k 20 --json\n  lookalike query photo.jpg --exact --weights color=1,conv=0.3"
    )]
    Query(QueryArgs),
    /// Show what the index holds: images, failures, feature versions, HNSW state.
    Status(StatusArgs),
    /// Measure retrieval accuracy on a labelled set, or robustness to distortions on any folder.
    #[command(
        after_help = "Examples:\n  lookalike eval ../shared/datasets/wang            # images/ + groundtruth.tsv\n  lookalike eval photos --labels folders --report /tmp/report\n  lookalike eval ../shared/datasets/wang --query-distortion blur:2\n  lookalike eval --distort ~/Pictures --sample 50 --suite blur:2,jpeg:30,crop:0.2\n\nThe evaluated folder is indexed into a cache under the system temp folder unless --index-dir is given."
    )]
    Eval(Box<eval::EvalArgs>),
    /// Blur an image with a PSF (and noise): makes test cases for deblurring.
    #[command(
        after_help = "Examples:\n  lookalike blur sharp.png blurred.png --psf gaussian:2 --noise 0.005\n  lookalike blur sharp.png shaken.png --psf motion:15,30\n\nPSF specs: gaussian:SIGMA, disk:RADIUS, motion:LENGTH,ANGLE, file:PATH (a whitespace-separated matrix)."
    )]
    Blur(restore::BlurArgs),
    /// Restore a blurred image by deconvolution (PSF given or estimated blind).
    #[command(
        after_help = "Examples:\n  lookalike deblur blurred.png restored.png                 # blind: PSF estimated\n  lookalike deblur blurred.png restored.png --psf gaussian:2 --method wiener\n  lookalike deblur photo.jpg sharper.jpg --strength 0.5      # mild, safe sharpening"
    )]
    Deblur(restore::DeblurArgs),
    /// Compare an image with a reference: PSNR, SSIM, MS-SSIM.
    #[command(
        after_help = "Examples:\n  lookalike quality original.png restored.png\n  lookalike quality original.png restored.png --json"
    )]
    Quality(restore::QualityArgs),
}

#[derive(Debug, Args)]
struct IndexArgs {
    /// Folders to index (recursively) and track; files inside tracked folders. None: refresh
    /// every tracked folder.
    #[arg(value_name = "PATH")]
    dirs: Vec<PathBuf>,
    /// Only index files whose path (relative to its folder) matches this glob; repeatable.
    #[arg(long, value_name = "GLOB")]
    include: Vec<String>,
    /// Skip files and folders matching this glob; repeatable.
    #[arg(long, value_name = "GLOB")]
    exclude: Vec<String>,
    /// Follow symbolic links (loops are detected).
    #[arg(long)]
    follow_symlinks: bool,
    /// Include hidden files and folders.
    #[arg(long)]
    hidden: bool,
    /// Try again files that failed before even if unchanged.
    #[arg(long)]
    retry_failed: bool,
    /// Worker threads (default: all cores).
    #[arg(long, value_name = "N")]
    threads: Option<usize>,
    /// Database-side augmentation: average each stored vector with its N nearest neighbours
    /// in the graph (default 2; 0 ranks the plain vectors, which keeps near-duplicates under
    /// brightness, contrast or noise changes a little closer). Remembered by the collection.
    #[arg(long, value_name = "N")]
    dba: Option<usize>,
    /// Rebuild the HNSW graph in full. Without it, small changes to a large collection are
    /// inserted into the existing graph; this also refreshes the augmentation of the images
    /// that were already there.
    #[arg(long)]
    rebuild_graph: bool,
    /// Feature profile: what each image is described by. Remembered by the collection;
    /// changing it re-extracts every image. Default: the collection's, else full.
    #[arg(long, value_enum)]
    profile: Option<Profile>,
    /// Print the summary as JSON on stdout.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct ForgetArgs {
    /// Tracked folders to forget (as `lookalike status` lists them).
    #[arg(required = true, value_name = "DIR")]
    dirs: Vec<PathBuf>,
    /// Print the summary as JSON on stdout.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct QueryArgs {
    /// The example image (inside or outside the index).
    image: PathBuf,
    /// Number of results.
    #[arg(short, default_value_t = 10)]
    k: usize,
    /// Print JSON.
    #[arg(long)]
    json: bool,
    /// Search all stored vectors by brute force instead of the HNSW graph.
    #[arg(long)]
    exact: bool,
    #[command(flatten)]
    search: SearchArgs,
}

/// How a query vector is built and expanded; shared by `query` and `eval`.
#[derive(Debug, Args)]
struct SearchArgs {
    /// Feature families and weights, e.g. `color=1,conv=0.5` or `conv` (default: the index's).
    #[arg(long, value_name = "SPEC")]
    weights: Option<String>,
    /// Query expansion: average this many nearest neighbours into the query and search again
    /// (alpha-QE; 0 = off).
    #[arg(long, value_name = "N", default_value_t = DEFAULT_QE.n)]
    qe: usize,
    /// Exponent on the similarity weights of query expansion.
    #[arg(long, value_name = "ALPHA", default_value_t = DEFAULT_QE.alpha)]
    qe_alpha: f32,
    /// Of the first ten results, the one nearest to the example itself goes first (`false`:
    /// rank by expansion and augmentation alone).
    #[arg(long, value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set)]
    nearest_first: bool,
}

impl SearchArgs {
    /// The fusion `--weights` asks for, else the profile's.
    fn fusion(&self, profile: Profile) -> Result<Fusion> {
        match &self.weights {
            Some(spec) => Fusion::parse(spec, &Registry::for_profile(profile).families()),
            None => Ok(Fusion::for_profile(profile)),
        }
    }

    fn expansion(&self) -> QueryExpansion {
        QueryExpansion {
            n: self.qe,
            alpha: self.qe_alpha,
        }
    }
}

#[derive(Debug, Args)]
struct StatusArgs {
    /// Print JSON.
    #[arg(long)]
    json: bool,
    /// Also run SQLite's integrity check and validate every stored vector (exit status 1 when
    /// either fails).
    #[arg(long)]
    check: bool,
}

/// Entry point used by `main.rs`.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::BrokenPipe => {
            ExitCode::SUCCESS
        }
        Err(Error::Interrupted) => ExitCode::from(130),
        Err(e) => {
            eprintln!("error: {e}");
            if e.is_user_error() {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    let collection = Collection::resolve(cli.index_dir.as_deref());
    match cli.command {
        Command::Index(args) => cmd_index(&collection, args, cli.quiet),
        Command::Forget(args) => cmd_forget(&collection, args, cli.quiet),
        Command::Query(args) => cmd_query(&collection, args),
        Command::Status(args) => cmd_status(&collection, args),
        Command::Eval(args) => eval::cmd_eval(cli.index_dir.as_deref(), *args, cli.quiet),
        Command::Blur(args) => restore::run_blur(&args).map(|()| ExitCode::SUCCESS),
        Command::Deblur(args) => restore::run_deblur(&args).map(|()| ExitCode::SUCCESS),
        Command::Quality(args) => restore::run_quality(&args).map(|()| ExitCode::SUCCESS),
    }
}

fn out_err(e: std::io::Error) -> Error {
    Error::io("<stdout>", e)
}

fn print_json(value: &impl serde::Serialize) -> Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, value).map_err(|e| out_err(std::io::Error::other(e)))?;
    writeln!(out).map_err(out_err)
}

fn install_stop_flag() -> Arc<AtomicBool> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    // A second Ctrl-C leaves at once; the first lets the writer commit what it has.
    let _ = ctrlc::set_handler(move || {
        if flag.swap(true, Ordering::SeqCst) {
            std::process::exit(130);
        }
        eprintln!("\nstopping: finishing the current batch (Ctrl-C again to quit at once)");
    });
    stop
}

fn cmd_index(collection: &Collection, args: IndexArgs, quiet: bool) -> Result<ExitCode> {
    if let Some(n) = args.threads {
        rayon::ThreadPoolBuilder::new()
            .num_threads(n.max(1))
            .build_global()
            .map_err(|e| Error::InvalidInput(format!("--threads: {e}")))?;
    }
    let config = IndexConfig {
        crawl: CrawlConfig {
            roots: args.dirs.clone(),
            include: args.include,
            exclude: args.exclude,
            follow_symlinks: args.follow_symlinks,
            hidden: args.hidden,
            ..Default::default()
        },
        retry_failed: args.retry_failed,
        dba: args.dba,
        rebuild_graph: args.rebuild_graph,
        profile: args.profile,
        ..Default::default()
    };
    let bar = progress_bar(quiet);
    let on_progress = |p: Progress| render_progress(&bar, p);
    let stop = install_stop_flag();
    let summary = crate::index::run(collection, &config, &on_progress, &stop);
    bar.finish_and_clear();
    let summary = summary?;
    if args.json {
        print_json(&summary)?;
    }
    if !quiet {
        report_index(collection, &summary);
    }
    if summary.interrupted {
        return Ok(ExitCode::from(130));
    }
    Ok(
        if summary.failed.is_empty()
            && summary.changing.is_empty()
            && summary.missing_roots.is_empty()
        {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(EXIT_SOME_FAILED)
        },
    )
}

fn cmd_forget(collection: &Collection, args: ForgetArgs, quiet: bool) -> Result<ExitCode> {
    let mut summaries = Vec::new();
    for dir in &args.dirs {
        summaries.push(crate::index::forget(
            collection,
            dir,
            &crate::collection::UpdatePolicy::default(),
        )?);
    }
    if args.json {
        print_json(&summaries)?;
    }
    if !quiet {
        for s in &summaries {
            eprintln!(
                "forgot {}: {} images removed from the index, {} kept under other tracked folders; {} images in {}",
                s.root.display(),
                s.removed,
                s.kept,
                s.total_images,
                collection.dir().display()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A progress bar on stderr, hidden when stderr is not a terminal or with --quiet.
fn progress_bar(quiet: bool) -> ProgressBar {
    let bar = ProgressBar::hidden();
    if !quiet && std::io::stderr().is_terminal() {
        bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} {msg} [{bar:30}] {pos}/{len} {per_sec} ETA {eta}",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        bar.set_message("crawling");
    }
    bar
}

fn render_progress(bar: &ProgressBar, p: Progress) {
    match p {
        Progress::Crawled { files } => bar.set_message(format!("found {files} images")),
        Progress::Planned { to_process, .. } => {
            bar.set_length(to_process as u64);
            bar.set_message("indexing");
        }
        Progress::Processed { done, .. } => bar.set_position(done as u64),
        Progress::BuildingAnn { images } => {
            bar.set_message(format!("building HNSW over {images} images"))
        }
    }
}

fn report_index(collection: &Collection, s: &IndexSummary) {
    for f in &s.failed {
        eprintln!("failed: {}: {}", f.path.display(), f.reason);
    }
    for p in &s.problems {
        eprintln!("skipped: {}: {}", p.path.display(), p.reason);
    }
    for p in &s.changing {
        eprintln!(
            "changing: {}: modified while it was read; not indexed this time (run `lookalike index` again once it is written)",
            p.display()
        );
    }
    for p in &s.missing_roots {
        eprintln!(
            "missing: {}: tracked folder not found (deleted, or on a disk not mounted); its images are kept; `lookalike forget` stops tracking it",
            p.display()
        );
    }
    if s.merged > 0 {
        eprintln!(
            "merged: {} images were stored twice under overlapping folders; each file is now one image",
            s.merged
        );
    }
    eprintln!(
        "{} new, {} unchanged, {} updated, {} moved, {} duplicates, {} removed, {} failed{} in {:.2}s ({:.1} images/s); {} images in {} ({} profile)",
        s.new,
        s.unchanged,
        s.updated,
        s.moved,
        s.duplicates,
        s.removed,
        s.failed.len(),
        if s.still_failing > 0 {
            format!(
                " ({} earlier failures unchanged, not retried)",
                s.still_failing
            )
        } else {
            String::new()
        },
        s.elapsed_secs,
        s.images_per_sec,
        s.total_images,
        collection.dir().display(),
        s.profile.name()
    );
    if let Some(u) = s.ann_updated {
        eprintln!(
            "HNSW graph updated in place: {} images inserted, {} old points hidden (`index --rebuild-graph` rebuilds it)",
            u.inserted, u.hidden
        );
    } else if s.ann_rebuilt {
        eprintln!("HNSW graph rebuilt over {} images", s.total_images);
    }
    damage_note(&s.damaged_vectors);
    if s.interrupted {
        eprintln!(
            "interrupted: everything extracted so far is saved; run the same command again to resume"
        );
    }
}

fn cmd_query(collection: &Collection, args: QueryArgs) -> Result<ExitCode> {
    if args.k == 0 {
        return Err(Error::InvalidInput("-k must be at least 1".into()));
    }
    let fusion = args.search.fusion(collection.recorded_profile()?)?;
    let searcher = Searcher::open(collection, &fusion)?;
    let cfg = QueryConfig {
        k: args.k,
        mode: if args.exact {
            SearchMode::Exact
        } else {
            SearchMode::Hnsw
        },
        fusion,
        qe: args.search.expansion(),
        nearest_first: args.search.nearest_first,
        ..Default::default()
    };
    let result = searcher.query(&args.image, &cfg)?;
    damage_note(&searcher.store().take_damaged());
    if args.json {
        print_json(&result)?;
    } else {
        if let Some(note) = &result.note {
            eprintln!("note: {note}");
        }
        for path in &result.stale {
            eprintln!(
                "stale: {} is gone or changed since it was indexed; left out (`lookalike index` updates the index)",
                path.display()
            );
        }
        if result
            .hits
            .windows(2)
            .any(|w| w[1].distance < w[0].distance)
        {
            if searcher.space().is_augmented() {
                eprintln!(
                    "note: ranked against stored vectors averaged with their nearest neighbours (and with query expansion unless --qe 0); distances are to the example itself"
                );
            } else {
                eprintln!(
                    "note: ranked with query expansion, which also weighs the example's nearest neighbours; distances are to the example itself (--qe 0 ranks by distance alone)"
                );
            }
        }
        let mut out = std::io::stdout().lock();
        for hit in &result.hits {
            writeln!(
                out,
                "{:>3}  {:.4}  {}",
                hit.rank,
                hit.distance,
                display_path(&hit.path)
            )
            .map_err(out_err)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Paths under the working directory are shown relative to it.
fn display_path(p: &Path) -> String {
    std::env::current_dir()
        .ok()
        .and_then(|cwd| p.strip_prefix(cwd).ok().map(|r| r.display().to_string()))
        .unwrap_or_else(|| p.display().to_string())
}

/// One line on how the last `index` run went, with what to do next.
fn describe_run(run: &crate::store::RunEntry) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let ago = |t: i64| {
        let s = (now - t).max(0);
        match s {
            0..120 => format!("{s} s ago"),
            120..7200 => format!("{} min ago", s / 60),
            7200..172800 => format!("{} h ago", s / 3600),
            _ => format!("{} days ago", s / 86400),
        }
    };
    let roots = run.roots.join(" ");
    match (run.outcome.as_deref(), run.finished_at) {
        (Some("complete"), Some(t)) => format!("complete, {}", ago(t)),
        (Some("interrupted"), Some(t)) => format!(
            "interrupted {}; `lookalike index {roots}` resumes it",
            ago(t)
        ),
        (Some("error"), Some(t)) => format!(
            "failed {}: {}",
            ago(t),
            run.summary.as_deref().unwrap_or("no message")
        ),
        _ => format!(
            "started {} and has not finished (still running, or the process was killed); `lookalike index {roots}` resumes it",
            ago(run.started_at)
        ),
    }
}

fn cmd_status(collection: &Collection, args: StatusArgs) -> Result<ExitCode> {
    let store = collection.open_store_read_only()?;
    let integrity = if args.check {
        Some(check_index(&store)?)
    } else {
        None
    };
    let stats = store.stats()?;
    let failures = store.failures()?;
    let roots = store.roots()?;
    let record = collection.dump_record(&store)?;
    let ann_state = match &record {
        None => "missing (run `lookalike index`)".to_string(),
        Some(r) if r.data_version != stats.data_version => {
            "stale: the index changed since it was built (run `lookalike index`)".to_string()
        }
        Some(r) => match crate::ann::AnnIndex::verify(&crate::ann::ann_dir(collection.dir()), r) {
            Ok(()) => {
                let projection = r.projection.as_ref().and_then(|_| {
                    let path = crate::ann::ann_dir(collection.dir())
                        .join(&r.folder)
                        .join(crate::ann::PROJECTION_FILE);
                    let bytes = std::fs::read(path).ok()?;
                    crate::pca::Projection::from_bytes(&bytes).ok()
                });
                let updates = if r.updates > 0 {
                    format!(
                        "; updated in place {} times since its full build of {} images, {} points hidden",
                        r.updates,
                        r.built_count,
                        r.hidden.len()
                    )
                } else {
                    String::new()
                };
                let augmentation = if r.params.dba > 0 {
                    format!("; stored vectors averaged with {} neighbours", r.params.dba)
                } else if collection.ann_params(&store)?.dba > 0 {
                    "; no augmentation (the next `lookalike index` adds it)".to_string()
                } else {
                    "; no augmentation (index --dba 0)".to_string()
                };
                match projection {
                    Some(p) => format!(
                        "current ({} images; {} dimensions, PCA to {} in the graph, {:.1}% of variance{augmentation}{updates})",
                        r.count.saturating_sub(r.hidden.len()),
                        r.dim,
                        p.dim_out(),
                        100.0 * p.explained()
                    ),
                    None => format!(
                        "current ({} images, {} dimensions{augmentation}{updates})",
                        r.count.saturating_sub(r.hidden.len()),
                        r.dim
                    ),
                }
            }
            Err(e) => format!("damaged ({e}); `lookalike index` rebuilds it"),
        },
    };
    let last_run = store.last_run()?;
    let size_on_disk = dir_size(collection.dir());
    let profile = collection.profile(&store)?;
    let registry = Registry::for_profile(profile);
    let current = registry.signatures();
    let outdated: u64 = stats
        .feature_versions
        .iter()
        .filter(|(f, v, p, _)| !current.contains(&(f.clone(), *v, p.clone())))
        .map(|row| row.3)
        .sum();
    let missing_families: Vec<(&str, u64)> = registry
        .families()
        .into_iter()
        .map(|family| {
            let have: u64 = stats
                .feature_versions
                .iter()
                .filter(|row| row.0 == family)
                .map(|row| row.3)
                .sum();
            (family, stats.images.saturating_sub(have))
        })
        .filter(|(_, missing)| *missing > 0)
        .collect();
    if args.json {
        let failures_json: Vec<_> = failures
            .iter()
            .map(|f| {
                serde_json::json!({
                    "path": roots.get(&f.root_id).map(|r| r.join(&f.rel_path)).unwrap_or_default(),
                    "reason": f.reason,
                })
            })
            .collect();
        print_json(&serde_json::json!({
            "index_dir": collection.dir(),
            "images": stats.images,
            "profile": profile,
            "working_size": registry.working_size(),
            "failures": failures_json,
            "roots": stats.roots,
            "feature_versions": stats.feature_versions,
            "outdated_feature_rows": outdated,
            "images_missing_family": missing_families.iter().copied().collect::<std::collections::BTreeMap<_, _>>(),
            "schema_version": stats.schema_version,
            "hnsw": ann_state,
            "hnsw_in_place": record.as_ref().map(|r| serde_json::json!({
                "updates_since_full_build": r.updates,
                "full_build_images": if r.built_count == 0 { r.count } else { r.built_count },
                "hidden_points": r.hidden.len(),
            })),
            "bytes_on_disk": size_on_disk,
            "integrity": integrity,
            "last_run": last_run,
        }))?;
        return Ok(integrity_exit(integrity.as_deref()));
    }
    let mut out = std::io::stdout().lock();
    let mut w = |s: String| writeln!(out, "{s}").map_err(out_err);
    w(format!("index:     {}", collection.dir().display()))?;
    w(format!("images:    {}", stats.images))?;
    w(format!("failures:  {}", stats.failures))?;
    w(format!("roots:     {}", stats.roots.join(", ")))?;
    w(format!(
        "profile:   {} ({} on a {}-pixel working image)",
        profile.name(),
        registry.families().join(", "),
        registry.working_size()
    ))?;
    for (family, version, params, count) in &stats.feature_versions {
        w(format!(
            "features:  {family} v{version} [{params}]: {count} images"
        ))?;
    }
    if outdated > 0 {
        w(format!(
            "outdated:  {outdated} feature rows from an older extractor (run `lookalike index` to update)"
        ))?;
    }
    for (family, missing) in &missing_families {
        w(format!(
            "missing:   {missing} images have no {family} vector yet; they are searched without it (run `lookalike index` on their folders)"
        ))?;
    }
    w(format!("hnsw:      {ann_state}"))?;
    w(format!(
        "size:      {:.1} MB on disk",
        size_on_disk as f64 / 1e6
    ))?;
    w(format!("schema:    v{}", stats.schema_version))?;
    if let Some(run) = &last_run {
        w(format!("last run:  {}", describe_run(run)))?;
    }
    if let Some(verdict) = &integrity {
        w(format!("integrity: {verdict}"))?;
    }
    for f in failures.iter().take(20) {
        let path = roots
            .get(&f.root_id)
            .map(|r| r.join(&f.rel_path))
            .unwrap_or_else(|| f.rel_path.clone());
        w(format!("failed:    {}: {}", path.display(), f.reason))?;
    }
    if failures.len() > 20 {
        w(format!(
            "           ... and {} more (--json lists all)",
            failures.len() - 20
        ))?;
    }
    Ok(integrity_exit(integrity.as_deref()))
}

/// Damaged vectors met while reading, which were left out of the search or the graph.
fn damage_note(damaged: &[crate::store::DamagedVector]) {
    if !damaged.is_empty() {
        eprintln!(
            "note: {} images left out because a stored vector is damaged (first: image {}, {}); `lookalike status --check` lists them",
            damaged.len(),
            damaged[0].image_id,
            damaged[0].reason
        );
    }
}

/// SQLite's integrity check, then every stored vector's: "ok" or what is wrong.
fn check_index(store: &crate::store::Store) -> Result<String> {
    const SHOWN: usize = 5;
    let mut problems = Vec::new();
    if let Err(e) = store.integrity_check() {
        problems.push(e.to_string());
    }
    let damaged = store.check_vectors()?;
    if !damaged.is_empty() {
        let ids: Vec<i64> = damaged.iter().take(SHOWN).map(|d| d.image_id).collect();
        let paths = store.paths(&ids)?;
        let mut first: Vec<String> = damaged
            .iter()
            .take(SHOWN)
            .map(|d| {
                let path = paths
                    .get(&d.image_id)
                    .cloned()
                    .unwrap_or_else(|| PathBuf::from(format!("image id {}", d.image_id)));
                d.to_error(&path).to_string()
            })
            .collect();
        if damaged.len() > SHOWN {
            first.push(format!("... and {} more", damaged.len() - SHOWN));
        }
        problems.push(format!(
            "{} damaged stored vectors, left out of searches until their images are indexed into a fresh index: {}",
            damaged.len(),
            first.join("; ")
        ));
    }
    Ok(if problems.is_empty() {
        "ok".to_string()
    } else {
        problems.join("; ")
    })
}

fn integrity_exit(verdict: Option<&str>) -> ExitCode {
    match verdict {
        Some(v) if v != "ok" => ExitCode::FAILURE,
        _ => ExitCode::SUCCESS,
    }
}

fn dir_size(dir: &Path) -> u64 {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .flatten()
        .filter_map(|e| e.metadata().ok())
        .filter(|m| m.is_file())
        .map(|m| m.len())
        .sum()
}
