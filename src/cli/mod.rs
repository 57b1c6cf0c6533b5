//! The command line: clap types turned into plain config structs, progress bars, text and JSON
//! output, exit codes. The library core never sees clap.

/// `eprintln!` that never panics: a message to a closed or full standard error is dropped,
/// so a pipe closed early (`lookalike index DIR 2>&1 | head`) cannot turn a finished run
/// into a crash.
macro_rules! note {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};

use crate::collection::{Collection, INDEX_DIR_ENV, advised_command};
use crate::crawl::CrawlConfig;
use crate::error::{Error, Result};
use crate::features::{Fusion, Profile, Registry};
use crate::index::{IndexConfig, IndexSummary, Progress};
use crate::path_repr::{escape_message, escape_text, shell_word, shown};
use crate::query::{QueryConfig, Searcher};
use crate::query_expansion::{DEFAULT_QE, QueryExpansion};
use crate::rank::SearchMode;
use crate::status::resume_command;
use crate::text::{counted, for_count};

mod duplicates;
mod eval;
pub(crate) mod restore;
mod serve;

/// Exit status of a fault inside lookalike (a bug, an impossible state).
pub(crate) const EXIT_INTERNAL: u8 = 1;
/// Exit status of a usage error or bad input: a wrong flag or value, a missing or unreadable
/// file, an undecodable example, no index, an index busy or made by a newer lookalike.
pub(crate) const EXIT_USAGE: u8 = 2;
/// Exit status when indexing finished but some files under the indexed folders are recorded
/// as failing (in this run or an earlier one, unchanged since).
pub(crate) const EXIT_SOME_FAILED: u8 = 3;
/// Exit status when the index is damaged (a failed integrity check, a corrupt database).
pub(crate) const EXIT_CORRUPT: u8 = 4;
/// Exit status after Ctrl-C; what was done is kept.
pub(crate) const EXIT_INTERRUPTED: u8 = 130;

/// `--profile` values: each profile under its recorded name, described for `--help`.
impl clap::ValueEnum for Profile {
    fn value_variants<'a>() -> &'a [Self] {
        &Profile::ALL
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        Some(clap::builder::PossibleValue::new(self.name()).help(self.description()))
    }
}

/// The exit status for an error; every error leaves `main` through here.
pub(crate) fn exit_code(e: &Error) -> u8 {
    if matches!(e, Error::Interrupted) {
        EXIT_INTERRUPTED
    } else if e.is_out_of_space() || e.is_read_only_index() {
        EXIT_USAGE
    } else if e.is_corrupt() {
        EXIT_CORRUPT
    } else if e.is_user_error() {
        EXIT_USAGE
    } else {
        EXIT_INTERNAL
    }
}

const TOP_HELP: &str = "Examples:\n  lookalike index ~/Pictures\n  lookalike query holiday.jpg -k 5\n  lookalike status --json\n\nThe index lives in ./.lookalike unless --index-dir or $LOOKALIKE_INDEX says otherwise.\n\nExit status:\n  0    success\n  1    internal error (a bug: please report it)\n  2    usage error or bad input (wrong flag or value, missing file, no index, index busy), or no space left to write\n  3    `index` finished but some files or folders under its roots failed (`lookalike status` lists the files); `duplicates --apply` could not do a step; `undo` could not restore a file or read a line of its journal\n  4    the index is damaged (a corrupt database; `status --check` failed)\n  130  interrupted (Ctrl-C); what was done is kept";

/// A whole-number flag within `range`; anything else is refused naming the range.
fn usize_in(
    range: std::ops::RangeInclusive<usize>,
) -> impl Fn(&str) -> std::result::Result<usize, String> + Clone + Send + Sync + 'static {
    move |s| {
        let t = s.trim();
        let digits = t.strip_prefix(['-', '+']).unwrap_or(t);
        match t.parse::<usize>() {
            Ok(n) if range.contains(&n) => Ok(n),
            // a signed or too long whole number is out of range; anything else is no number
            _ if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) => Err(format!(
                "{s} is out of range: use a whole number from {} to {}",
                range.start(),
                range.end()
            )),
            _ => Err(format!(
                "'{s}' is not a whole number: use a whole number from {} to {}",
                range.start(),
                range.end()
            )),
        }
    }
}

/// Parses a finite number within `lo..=hi`.
/// The range is checked on the number as written, before it is rounded to `f32` (which would
/// take 2.0000001 to 2).
fn f32_in(s: &str, lo: f32, hi: f32) -> std::result::Result<f32, String> {
    let x: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("'{s}' is not a number"))?;
    if x.is_finite() && (f64::from(lo)..=f64::from(hi)).contains(&x) {
        Ok(x as f32)
    } else {
        Err(format!(
            "{s} is out of range: use a number from {lo} to {hi}"
        ))
    }
}

/// An exponent on similarity weights (query expansion, augmentation).
pub(crate) fn parse_alpha(s: &str) -> std::result::Result<f32, String> {
    f32_in(s, 0.0, 100.0)
}

#[derive(Debug, Parser)]
#[command(
    name = "lookalike",
    version,
    about = "Find images that look alike: index photo folders, query by example, restore blur, measure accuracy",
    after_help = TOP_HELP
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
        after_help = "Examples:\n  lookalike index ~/Pictures                  # track this folder from now on\n  lookalike index                             # refresh every tracked folder\n  lookalike index ~/Pictures/new/img_001.jpg  # one file inside a tracked folder\n  lookalike index ~/Pictures --profile fast   # colour and texture only, several times faster\n  lookalike index photos scans --exclude '**/thumbs/**'\n  lookalike --index-dir idx index photos --json\n\nFolders given are tracked: the index mirrors them, and a file under two overlapping folders is one image. `lookalike forget DIR` stops tracking one.\n\nExit status: 0 when every file was indexed; 3 when some could not be, in this run or an earlier one and unchanged since (they are listed and recorded; `lookalike status` shows them), a tracked folder is missing, or files kept changing while read; 130 when interrupted."
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
    /// Find groups of copies (identical or edited) and, when asked, move, trash, hard-link or
    /// delete the copies not kept. A dry run unless --apply is given.
    #[command(
        after_help = "Examples:\n  lookalike duplicates ~/Pictures                      # index, then list groups\n  lookalike duplicates --similarity strict --json\n  lookalike duplicates --keep newest --move-to ~/dupes          # dry run: what would move\n  lookalike duplicates --keep newest --move-to ~/dupes --apply  # do it (`lookalike undo` reverses)\n  lookalike duplicates -0 | xargs -0 ls -l\n\nA copy is acted on only if its bytes are still those indexed and the copy kept is unchanged; read-only files are left alone. Every applied run is journaled in the index folder first."
    )]
    Duplicates(duplicates::DuplicatesArgs),
    /// Reverse the last `duplicates --apply` run: moved and trashed files go back, hard links
    /// become separate files again.
    Undo(duplicates::UndoArgs),
    /// Browse the index in a local web app: thumbnails, look-alikes, search by example,
    /// duplicate review with the same safe actions, status and eval reports.
    #[command(
        after_help = "Examples:\n  lookalike serve                      # http://127.0.0.1:8080/\n  lookalike serve --port 0 --open      # a free port, in the default browser\n  lookalike serve --reports reports    # list eval --report outputs too\n\nImages are served by id from the index only. Actions that change files need the token of the page the server gave out, so other sites cannot trigger them. The server listens on loopback unless --bind says otherwise."
    )]
    Serve(serve::ServeArgs),
    /// Measure retrieval accuracy on a labelled set, or robustness to distortions on any folder.
    #[command(
        after_help = "Examples:\n  lookalike eval ../shared/datasets/wang            # images/ + groundtruth.tsv\n  lookalike eval photos --labels folders --report report\n  lookalike eval ../shared/datasets/wang --query-distortion blur:2\n  lookalike eval --distort ~/Pictures --sample 50 --suite blur:2,jpeg:30,crop:0.2\n\nThe evaluated folder is indexed into a cache under the system temp folder unless --index-dir is given on the command line ($LOOKALIKE_INDEX does not count)."
    )]
    Eval(Box<eval::EvalArgs>),
    /// Blur an image with a PSF (and noise): makes test cases for deblurring.
    #[command(
        after_help = "Examples:\n  lookalike blur sharp.png blurred.png --psf gaussian:2 --noise 0.005\n  lookalike blur sharp.png shaken.png --psf motion:15,30 --psf-out kernel.txt\n\nPSF specs: gaussian:SIGMA, disk:RADIUS, motion:LENGTH,ANGLE, file:PATH (a whitespace-separated matrix, as --psf-out writes). A transparent image's alpha is blurred with its colours (premultiplied by it), so a cut-out's outline blurs as well."
    )]
    Blur(restore::BlurArgs),
    /// Restore a blurred image by deconvolution (PSF given or estimated blind).
    #[command(
        after_help = "Examples:\n  lookalike deblur blurred.png restored.png                 # blind: PSF estimated\n  lookalike deblur blurred.png restored.png --psf gaussian:2 --method wiener\n  lookalike deblur photo.jpg sharper.jpg --strength 0.5      # half the restoration, if blur is found\n  lookalike deblur shaken.png fixed.png --psf file:kernel.txt --json\n\nPrints the PSF, the method, each channel's noise level and the iterations run. An image with no measurable blur (sharp, or only noise) is copied unchanged.\n\nTransparency: only the colours are restored; the alpha channel is written back as it was (a blurred outline stays blurred)."
    )]
    Deblur(restore::DeblurArgs),
    /// Compare an image with a reference: PSNR, SSIM, MS-SSIM.
    #[command(
        after_help = "Examples:\n  lookalike quality original.png restored.png\n  lookalike quality original.png restored.png --json\n\nColour pairs are scored per channel (as scikit-image's channel_axis) and on luminance; a grey image against a colour one on luminance. MS-SSIM needs 176 pixels a side."
    )]
    Quality(restore::QualityArgs),
}

#[derive(Debug, Args)]
struct IndexArgs {
    /// Folders to index (recursively) and track; files inside tracked folders. None: refresh
    /// every tracked folder.
    #[arg(value_name = "PATH", value_parser = PathArg)]
    dirs: Vec<PathBuf>,
    /// Only index files whose path (relative to its folder) matches this glob, in any letter
    /// case; repeatable.
    #[arg(long, value_name = "GLOB")]
    include: Vec<String>,
    /// Skip files and folders matching this glob, in any letter case; repeatable.
    #[arg(long, value_name = "GLOB")]
    exclude: Vec<String>,
    /// Follow symbolic links (loops are detected).
    #[arg(long)]
    follow_symlinks: bool,
    /// Include hidden files and folders.
    #[arg(long)]
    hidden: bool,
    /// Walk with none of --include, --exclude, --follow-symlinks and --hidden, and forget the
    /// ones the index remembers (a run that gives any of them records them for later runs).
    #[arg(long, conflicts_with_all = ["include", "exclude", "follow_symlinks", "hidden"])]
    walk_defaults: bool,
    /// Try again files that failed before even if unchanged.
    #[arg(long)]
    retry_failed: bool,
    /// Check every stored vector (as `status --check` does) and extract again, from their
    /// files, the images whose vectors are damaged.
    #[arg(long)]
    repair: bool,
    /// Worker threads, 1 to 1024 (default: all cores).
    #[arg(long, value_name = "N", value_parser = usize_in(1..=1024), allow_negative_numbers = true)]
    threads: Option<usize>,
    /// Database-side augmentation: average each stored vector with its N nearest neighbours
    /// in the graph (default 2; 0 ranks the plain vectors, which keeps near-duplicates under
    /// brightness, contrast or noise changes a little closer; at most 100). Remembered by the
    /// collection.
    #[arg(long, value_name = "N", value_parser = usize_in(0..=100))]
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
    /// Memory one image's decoding may use, per worker thread, in MiB (64 to 65536; default
    /// 512). Larger images are recorded as failures; camera RAW files without a preview need
    /// about 48 bytes per pixel.
    #[arg(long, value_name = "MIB", value_parser = usize_in(64..=65_536))]
    memory_budget: Option<usize>,
    /// Print the summary as JSON on stdout.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct ForgetArgs {
    /// Tracked folders to forget (as `lookalike status` lists them).
    #[arg(required = true, value_name = "DIR", value_parser = PathArg)]
    dirs: Vec<PathBuf>,
    /// Print the summary as JSON on stdout.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct QueryArgs {
    /// The example image (inside or outside the index).
    #[arg(value_parser = PathArg)]
    image: PathBuf,
    /// Number of results, 1 to 10000.
    #[arg(short, default_value_t = 10, value_parser = usize_in(1..=10_000), allow_negative_numbers = true)]
    k: usize,
    /// Print JSON.
    #[arg(long)]
    json: bool,
    /// Search all stored vectors by brute force instead of the HNSW graph.
    #[arg(long)]
    exact: bool,
    /// Memory the example's decoding may use, in MiB (64 to 65536; default 512).
    #[arg(long, value_name = "MIB", value_parser = usize_in(64..=65_536))]
    memory_budget: Option<usize>,
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
    /// (alpha-QE; 0 = off; at most 100).
    #[arg(long, value_name = "N", default_value_t = DEFAULT_QE.n, value_parser = usize_in(0..=100))]
    qe: usize,
    /// Exponent on the similarity weights of query expansion (0 to 100).
    #[arg(long, value_name = "ALPHA", default_value_t = DEFAULT_QE.alpha, value_parser = parse_alpha, allow_negative_numbers = true)]
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
    /// Also run SQLite's integrity check and validate every stored vector (exit status 4 when
    /// either fails).
    #[arg(long)]
    check: bool,
}

/// Entry point used by `main.rs`.
pub fn main() -> ExitCode {
    let env = std::env::var_os(INDEX_DIR_ENV);
    // clap would blame an empty variable on a flag the user never gave: it is read without
    // the variable, which is refused below for the commands that use the index
    let matches = if env.as_ref().is_some_and(|v| v.is_empty()) {
        Cli::command()
            .mut_arg("index_dir", |a| a.env(None::<&'static str>))
            .get_matches()
    } else {
        Cli::command().get_matches()
    };
    let index_dir_given =
        matches.value_source("index_dir") == Some(clap::parser::ValueSource::CommandLine);
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    if let Some(refusal) = index_dir_refusal(&cli, index_dir_given, env.as_deref()) {
        note!("error: {refusal}");
        return ExitCode::from(EXIT_USAGE);
    }
    ignore_file_size_signal();
    let report_panic = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let file = info.location().map_or("", |l| l.file());
        if !crate::decode::is_caught_decoder_panic(file) {
            report_panic(info);
        }
    }));
    let outcome =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(cli, index_dir_given)))
            .unwrap_or_else(|panic| Err(Error::Internal(panic_message(panic.as_ref()))));
    match outcome {
        Ok(code) => code,
        Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::BrokenPipe => {
            ExitCode::SUCCESS
        }
        Err(e) => {
            if !matches!(e, Error::Interrupted) {
                note!("error: {}", e.terminal_text());
            }
            if e.is_out_of_space() {
                note!(
                    "the disk refused to write (full, or over a size limit): free some space and run the same command again; what was done before is kept"
                );
            } else if e.is_read_only_index() {
                note!(
                    "the index may not be written by this user: make its folder and the files in it writable (`chmod -R u+w`), or give another `--index-dir`; what was done before is kept"
                );
            } else if let Error::Db { path, .. } = &e
                && e.is_corrupt()
            {
                note!(
                    "the index database is damaged: {}",
                    crate::error::damaged_database_advice(path)
                );
            }
            ExitCode::from(exit_code(&e))
        }
    }
}

/// Why the index folder given cannot be used, if it cannot: `--index-dir` with a `~` the shell
/// did not expand, or `env` (the value of `$LOOKALIKE_INDEX`) empty or so for a command that
/// reads it. `eval` and the commands that use no index do not read the variable.
fn index_dir_refusal(
    cli: &Cli,
    index_dir_given: bool,
    env: Option<&std::ffi::OsStr>,
) -> Option<String> {
    if index_dir_given {
        let dir = cli.index_dir.as_deref()?;
        return unexpanded_home(dir).map(|why| format!("--index-dir {why}"));
    }
    let reads_env = !matches!(
        cli.command,
        Command::Eval(_) | Command::Blur(_) | Command::Deblur(_) | Command::Quality(_)
    );
    match env.filter(|_| reads_env) {
        Some(v) if v.is_empty() => Some(format!(
            "${INDEX_DIR_ENV} is set but empty: set it to the index folder, or unset it to use ./.lookalike"
        )),
        Some(v) => unexpanded_home(Path::new(v)).map(|why| format!("${INDEX_DIR_ENV} {why}")),
        None => None,
    }
}

/// Why `path` is refused when it begins with a `~` (`~`, `~/…`, `~user/…`): a shell expands
/// one only when it is not quoted, so this one names a folder `~` in the working directory,
/// not a home folder.
pub(crate) fn unexpanded_home(path: &Path) -> Option<String> {
    let first = path.components().next()?;
    let std::path::Component::Normal(first) = first else {
        return None;
    };
    first.as_encoded_bytes().starts_with(b"~").then(|| {
        format!(
            "{}: begins with a `~` no shell expanded (it was quoted, or set where no shell reads it); write $HOME/… for the home folder, or ./~… for a folder really named so",
            shell_word(path.as_os_str())
        )
    })
}

/// Parses a path argument, refusing one that begins with a `~` no shell expanded
/// ([`unexpanded_home`]).
#[derive(Clone)]
pub(crate) struct PathArg;

impl clap::builder::TypedValueParser for PathArg {
    type Value = PathBuf;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> std::result::Result<PathBuf, clap::Error> {
        match unexpanded_home(Path::new(value)) {
            Some(why) => {
                let name = arg.map_or_else(|| "a path".to_string(), |a| a.to_string());
                Err(clap::Error::raw(
                    clap::error::ErrorKind::ValueValidation,
                    format!("{name} {why}\n"),
                )
                .with_cmd(cmd))
            }
            None => clap::builder::PathBufValueParser::new().parse_ref(cmd, arg, value),
        }
    }
}

/// A write over the file-size limit (`ulimit -f`) then fails with an error the commands report
/// (exit status 2, what was done before kept) instead of killing the process with SIGXFSZ.
#[cfg(unix)]
#[allow(unsafe_code)]
fn ignore_file_size_signal() {
    // SAFETY: setting a signal's disposition to SIG_IGN installs no handler code; it is done
    // once, before any thread starts.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
    }
}

#[cfg(not(unix))]
fn ignore_file_size_signal() {}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic".into())
}

/// Runs the command; `index_dir_given`: `--index-dir` was given on the command line (not
/// through the environment, which scripts may set for every command).
fn run(cli: Cli, index_dir_given: bool) -> Result<ExitCode> {
    let indexless = match &cli.command {
        Command::Blur(_) => Some("blur"),
        Command::Deblur(_) => Some("deblur"),
        Command::Quality(_) => Some("quality"),
        _ => None,
    };
    // warned, not refused: a global flag is often given to every command by an alias
    if let Some(name) = indexless.filter(|_| index_dir_given && !cli.quiet) {
        note!("warning: --index-dir has no effect on `lookalike {name}`, which uses no index");
    }
    let collection = Collection::resolve(cli.index_dir.as_deref());
    match cli.command {
        Command::Index(args) => cmd_index(&collection, args, cli.quiet),
        Command::Forget(args) => cmd_forget(&collection, args, cli.quiet),
        Command::Query(args) => cmd_query(&collection, args, cli.quiet),
        Command::Status(args) => cmd_status(&collection, args),
        Command::Duplicates(args) => duplicates::cmd_duplicates(&collection, args, cli.quiet),
        Command::Undo(args) => duplicates::cmd_undo(&collection, args, cli.quiet),
        Command::Serve(args) => serve::cmd_serve(&collection, args, cli.quiet),
        // eval indexes into its own cache unless --index-dir says where: not $LOOKALIKE_INDEX,
        // which names the user's own index
        Command::Eval(args) => eval::cmd_eval(
            cli.index_dir.as_deref().filter(|_| index_dir_given),
            *args,
            cli.quiet,
        ),
        Command::Blur(args) => restore::run_blur(&args, cli.quiet).map(|()| ExitCode::SUCCESS),
        Command::Deblur(args) => restore::run_deblur(&args, cli.quiet).map(|()| ExitCode::SUCCESS),
        Command::Quality(args) => restore::run_quality(&args).map(|()| ExitCode::SUCCESS),
    }
}

fn out_err(e: std::io::Error) -> Error {
    Error::io("<stdout>", e)
}

/// Prints JSON on stdout; it is built in full first, so a failure never leaves half a document.
fn print_json(value: &impl serde::Serialize) -> Result<()> {
    let mut text = serde_json::to_vec_pretty(value)
        .map_err(|e| Error::Internal(format!("cannot serialize the output as JSON: {e}")))?;
    text.push(b'\n');
    let mut out = std::io::stdout().lock();
    out.write_all(&text).map_err(out_err)?;
    out.flush().map_err(out_err)
}

fn install_stop_flag() -> Arc<AtomicBool> {
    install_stop_flag_saying("finishing the current batch")
}

/// What the first signal lets finish, told by [`stop_message`].
static STOP_WHAT: std::sync::Mutex<&str> = std::sync::Mutex::new("");

/// [`install_stop_flag`], saying `what` the first signal lets finish. The handler is set once
/// in a process; a later call returns the same flag, which the signal sets, and the signal
/// then tells the later call's `what` (a run that indexes, then queries, says which it is in).
fn install_stop_flag_saying(what: &'static str) -> Arc<AtomicBool> {
    static STOP: std::sync::OnceLock<Arc<AtomicBool>> = std::sync::OnceLock::new();
    *STOP_WHAT.lock().unwrap_or_else(|e| e.into_inner()) = what;
    STOP.get_or_init(|| {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        // A second Ctrl-C or signal leaves at once; the first lets the writer commit what it has.
        let _ = ctrlc::set_handler(move || {
            if flag.swap(true, Ordering::SeqCst) {
                std::process::exit(130);
            }
            tell_stop(&mut std::io::stderr(), drawn_bar().as_ref());
        });
        stop
    })
    .clone()
}

/// What the first Ctrl-C, SIGTERM or SIGHUP says (which one came is not known): what the run
/// lets finish, as the last call to [`install_stop_flag_saying`] named it.
fn stop_message() -> String {
    let what = *STOP_WHAT.lock().unwrap_or_else(|e| e.into_inner());
    format!("stopping: {what} (a second Ctrl-C or signal quits at once)")
}

/// Writes [`stop_message`] on its own line to `out`, with `bar` (the progress bar drawn on
/// stderr, if any) cleared for it and drawn again below.
fn tell_stop(out: &mut impl Write, bar: Option<&ProgressBar>) {
    let line = format!("{}\n", stop_message());
    let _ = match bar {
        Some(bar) => bar.suspend(|| out.write_all(line.as_bytes())),
        None => out.write_all(line.as_bytes()),
    };
}

/// The progress bar [`stderr_bar`] last drew on stderr, held weakly: gone once dropped.
static DRAWN_BAR: std::sync::Mutex<Option<indicatif::WeakProgressBar>> =
    std::sync::Mutex::new(None);

/// The progress bar on stderr now, if one is drawn and not finished.
fn drawn_bar() -> Option<ProgressBar> {
    let drawn = DRAWN_BAR.lock().unwrap_or_else(|e| e.into_inner());
    drawn
        .as_ref()
        .and_then(indicatif::WeakProgressBar::upgrade)
        .filter(|bar| !bar.is_finished())
}

/// Decoding limits with `--memory-budget MIB`, if given.
fn decode_config(memory_budget_mib: Option<usize>) -> crate::decode::DecodeConfig {
    let mut decode = crate::decode::DecodeConfig::default();
    if let Some(mib) = memory_budget_mib {
        decode.memory_budget = (mib as u64) << 20;
    }
    decode
}

fn cmd_index(collection: &Collection, args: IndexArgs, quiet: bool) -> Result<ExitCode> {
    if let Some(n) = args.threads {
        rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build_global()
            .map_err(|e| Error::InvalidInput(format!("--threads: {e}")))?;
    }
    let decode = decode_config(args.memory_budget);
    let config = IndexConfig {
        decode,
        crawl: CrawlConfig {
            roots: args.dirs.clone(),
            include: args.include,
            exclude: args.exclude,
            follow_symlinks: args.follow_symlinks,
            hidden: args.hidden,
            ..Default::default()
        },
        retry_failed: args.retry_failed,
        repair: args.repair,
        dba: args.dba,
        rebuild_graph: args.rebuild_graph,
        profile: args.profile,
        walk_defaults: args.walk_defaults,
        ..Default::default()
    };
    let given_walk = !crate::collection::WalkOptions::of(&config.crawl).is_default();
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
        if let Some(before) = &summary.replaced_walk_options {
            let shown = |o: &crate::collection::WalkOptions| {
                if o.is_default() {
                    "none".to_string()
                } else {
                    o.flags()
                }
            };
            note!(
                "note: this index's walk options are now {} (they were {}); later runs keep them",
                shown(&summary.walk_options),
                shown(before)
            );
        }
        if !given_walk {
            note_remembered_walk(&summary);
        }
    }
    report_index(collection, &summary, quiet);
    if summary.interrupted {
        return Ok(ExitCode::from(EXIT_INTERRUPTED));
    }
    Ok(
        if some_failed(&summary)
            || !summary.changing.is_empty()
            || !summary.missing_roots.is_empty()
            || summary.problems.iter().any(|p| p.hides_files)
        {
            ExitCode::from(EXIT_SOME_FAILED)
        } else {
            ExitCode::SUCCESS
        },
    )
}

fn cmd_forget(collection: &Collection, args: ForgetArgs, quiet: bool) -> Result<ExitCode> {
    let stop = install_stop_flag();
    let summaries = crate::index::forget(
        collection,
        &args.dirs,
        &crate::graph::UpdatePolicy::default(),
        &stop,
    )?;
    if args.json {
        print_json(&summaries)?;
    }
    if !quiet {
        for s in &summaries {
            if s.merged > 0 {
                note!(
                    "merged: {} stored twice under overlapping folders; each file is now one image",
                    counted(s.merged, "image was", "images were")
                );
            }
            note!(
                "forgot {}: {} removed from the index, {} kept under other tracked folders; {} in {}",
                shown(&s.root),
                counted(s.removed, "image", "images"),
                s.kept,
                counted(s.total_images, "image", "images"),
                crate::path_repr::shown(collection.dir())
            );
        }
    }
    if summaries.iter().any(|s| s.graph_stopped) {
        // why the exit status is not 0: printed under -q too
        note!(
            "interrupted while the HNSW graph was brought up to date: the folders are forgotten and the previous graph is kept (searches leave the forgotten images out); run `{}` to finish the graph",
            advised_command(collection, "index")
        );
        return Ok(ExitCode::from(EXIT_INTERRUPTED));
    }
    Ok(ExitCode::SUCCESS)
}

/// Files under the indexed folders are recorded as failing: failed now, or before and unchanged.
fn some_failed(s: &IndexSummary) -> bool {
    !s.failed.is_empty() || s.still_failing > 0
}

/// A progress bar on stderr, hidden when stderr is not a terminal or with --quiet.
fn progress_bar(quiet: bool) -> ProgressBar {
    stderr_bar(quiet, BAR_TEMPLATE, "crawling")
}

/// The indexing bar: `{rate}` is [`rate_text`] of the files handled.
const BAR_TEMPLATE: &str = "{spinner} {msg} [{bar:30}] {pos}/{len} {rate} ETA {eta}";

/// The HNSW step: no count of its own to show, so the time it has taken.
const GRAPH_TEMPLATE: &str = "{spinner} {msg} {elapsed}";

/// A rate per second with the digits that matter: `251/s`, `10.2/s`, `0.25/s`.
fn rate_text(per_sec: f64) -> String {
    if !per_sec.is_finite() || per_sec <= 0.0 {
        "0/s".into()
    } else if per_sec >= 100.0 {
        format!("{per_sec:.0}/s")
    } else if per_sec >= 1.0 {
        format!("{per_sec:.1}/s")
    } else {
        format!("{per_sec:.2}/s")
    }
}

/// `template` with the `{rate}` key of [`rate_text`].
fn bar_style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template)
        .expect("valid template")
        .with_key(
            "rate",
            |state: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                let _ = w.write_str(&rate_text(state.per_sec()));
            },
        )
        .progress_chars("=> ")
}

/// A spinner with `message` on stderr while a step without measurable progress runs (hidden
/// with `quiet` or when stderr is not a terminal).
fn spinner(quiet: bool, message: &'static str) -> ProgressBar {
    let spinner = stderr_bar(quiet, "{spinner} {msg} {elapsed}", message);
    if !spinner.is_hidden() {
        spinner.enable_steady_tick(std::time::Duration::from_millis(120));
    }
    spinner
}

/// A bar drawn on stderr with `template` and `message`; hidden with `quiet` or when stderr is
/// not a terminal.
fn stderr_bar(quiet: bool, template: &str, message: &'static str) -> ProgressBar {
    let bar = ProgressBar::hidden();
    if !quiet && std::io::stderr().is_terminal() {
        bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
        bar.set_style(bar_style(template));
        bar.set_message(message);
        *DRAWN_BAR.lock().unwrap_or_else(|e| e.into_inner()) = Some(bar.downgrade());
    }
    bar
}

fn render_progress(bar: &ProgressBar, p: Progress) {
    match p {
        Progress::Crawled { files } => {
            bar.set_message(format!("found {}", counted(files, "image", "images")))
        }
        Progress::Planned { to_process, .. } => {
            bar.set_length(to_process as u64);
            bar.set_message("indexing");
        }
        Progress::Processed { done, .. } => bar.set_position(done as u64),
        Progress::BuildingAnn { images } => {
            // the indexing rate and ETA are not this step's
            if !bar.is_hidden() {
                bar.set_style(bar_style(GRAPH_TEMPLATE));
                bar.enable_steady_tick(std::time::Duration::from_millis(120));
            }
            bar.set_message(format!(
                "building the HNSW graph over {}",
                counted(images, "image", "images")
            ))
        }
    }
}

/// Reports an indexing run on stderr. With `quiet` only the warnings are printed: the files
/// that failed, were skipped or changed, the missing folders, tracked folders the walk skips
/// whole, images left out of searches, damage, and why the exit status is not 0.
fn report_index(collection: &Collection, s: &IndexSummary, quiet: bool) {
    for f in &s.failed {
        note!("failed: {}: {}", shown(&f.path), escape_message(&f.reason));
    }
    let index = advised_command(collection, "index");
    for p in &s.problems {
        note!(
            "skipped: {}: {}{}",
            shown(&p.path),
            escape_message(&p.reason),
            if p.hides_files {
                format!(
                    " (images already indexed there are kept until it can be read; then `{index}` updates them)"
                )
            } else {
                String::new()
            }
        );
    }
    for p in &s.changing {
        note!(
            "changing: {}: modified while it was read; not indexed this time (run `{index}` again once it is written)",
            shown(p)
        );
    }
    for p in &s.missing_roots {
        let what = if p.symlink_metadata().is_ok() {
            "tracked folder is no longer a folder (a file or a link to nothing has its name)"
        } else {
            "tracked folder not found (deleted, or on a disk not mounted)"
        };
        note!(
            "missing: {}: {what}; its images are kept; `{}` stops tracking it",
            shown(p),
            advised_command(
                collection,
                &format!("forget {}", crate::path_repr::shell_word(p.as_os_str()))
            )
        );
    }
    for p in &s.excluded_folders {
        if s.walk_options.is_default() {
            note!(
                "warning: {}: tracked, but this index's walk skips every image in it (hidden files and folders, and files reached through symbolic links, are skipped without --hidden and --follow-symlinks): none of its files is indexed",
                shown(p)
            );
        } else {
            note!(
                "warning: {}: tracked, but this index's walk options ({}) skip every image in it (patterns match from the outermost tracked folder that holds it): none of its files is indexed",
                shown(p),
                s.walk_options.flags()
            );
        }
    }
    if !quiet {
        report_index_summary(collection, s);
    }
    if let Some(graphed) = s.graph_images
        && graphed < s.total_images
    {
        note!(
            "warning: {} no usable vector of the {} profile (a folder away, a run stopped, or damage) and {} left out of searches until `{index}` extracts {}",
            counted(
                s.total_images - graphed,
                "indexed image has",
                "indexed images have"
            ),
            s.profile.name(),
            for_count(s.total_images - graphed, "is", "are"),
            for_count(s.total_images - graphed, "it", "them")
        );
    }
    damage_note(collection, &s.damaged_vectors);
    if s.interrupted {
        note_interrupted(s);
    } else if some_failed(s) {
        note!(
            "{} not be indexed ({} in this run, {} unchanged since {} failed before): exit status {EXIT_SOME_FAILED}; `{}` lists {}, `--retry-failed` tries {} again",
            counted(
                s.failed.len() + s.still_failing,
                "file could",
                "files could"
            ),
            s.failed.len(),
            s.still_failing,
            for_count(s.still_failing, "it", "they"),
            advised_command(collection, "status"),
            for_count(s.failed.len() + s.still_failing, "it", "them"),
            for_count(s.failed.len() + s.still_failing, "it", "them")
        );
    }
}

/// Says that a run given no walk options walked with the ones the index remembers, if any.
pub(crate) fn note_remembered_walk(summary: &IndexSummary) {
    if !summary.walk_options.is_default() {
        note!(
            "note: walked with the options this index remembers: {} (`--walk-defaults` drops them)",
            summary.walk_options.flags()
        );
    }
}

/// The notes and counts of an indexing run, which `-q` hides.
fn report_index_summary(collection: &Collection, s: &IndexSummary) {
    for (alias, into) in &s.aliased {
        note!(
            "note: {} now leads into {} (a symbolic link, or a mount of that folder): its images are indexed there, once",
            shown(alias),
            shown(into)
        );
    }
    if s.removed_on_disk > 0 {
        let options = if s.walk_options.is_default() {
            "none".to_string()
        } else {
            s.walk_options.flags()
        };
        note!(
            "note: {} of the images removed {} still on disk, skipped by this index's walk options ({options}) or no longer {}: removed from the index only, {} untouched",
            s.removed_on_disk,
            for_count(s.removed_on_disk, "is", "are"),
            for_count(s.removed_on_disk, "an image file", "image files"),
            for_count(s.removed_on_disk, "its file", "their files"),
        );
    }
    if s.merged > 0 {
        note!(
            "merged: {} stored twice under overlapping folders; each file is now one image",
            counted(s.merged, "image was", "images were")
        );
    }
    note!(
        "{} new, {} unchanged, {} updated, {} moved, {}, {} removed, {} failed{} in {:.2}s{}; {} in {} ({} profile)",
        s.new,
        s.unchanged,
        s.updated,
        s.moved,
        counted(s.duplicates, "duplicate", "duplicates"),
        s.removed,
        s.failed.len(),
        if s.still_failing > 0 {
            format!(
                " ({} unchanged, not retried)",
                counted(s.still_failing, "earlier failure", "earlier failures")
            )
        } else {
            String::new()
        },
        s.elapsed_secs,
        // the rate of images extracted, when there were any
        if s.images_per_sec > 0.0 {
            format!(" ({:.1} images/s)", s.images_per_sec)
        } else {
            String::new()
        },
        counted(s.total_images, "image", "images"),
        shown(collection.dir()),
        s.profile.name()
    );
    if let Some(u) = s.ann_updated {
        note!(
            "HNSW graph updated in place: {} inserted, {} hidden (`index --rebuild-graph` rebuilds it)",
            counted(u.inserted, "image", "images"),
            counted(u.hidden, "old point", "old points")
        );
    } else if s.ann_rebuilt {
        note!(
            "HNSW graph rebuilt over {}",
            counted(s.graph_images.unwrap_or(s.total_images), "image", "images")
        );
    }
    if s.repaired > 0 {
        note!(
            "{} a damaged stored vector: taken again from {}",
            counted(s.repaired, "image had", "images had"),
            for_count(s.repaired, "its file", "their files")
        );
    }
}

/// Tells that an indexing run was interrupted, what it kept and how to resume it.
fn note_interrupted(s: &IndexSummary) {
    if s.graph_stopped {
        note!(
            "interrupted while the HNSW graph was brought up to date: every image extracted is saved and the previous graph is kept; run the same command again to finish the graph"
        );
    } else {
        note!(
            "interrupted: everything extracted so far is saved; run the same command again to resume"
        );
    }
}

fn cmd_query(collection: &Collection, args: QueryArgs, quiet: bool) -> Result<ExitCode> {
    let fusion = args.search.fusion(collection.recorded_profile()?)?;
    let searcher = Searcher::open(collection, &fusion)?;
    let cfg = QueryConfig {
        k: args.k,
        mode: if args.exact {
            SearchMode::Exact
        } else {
            SearchMode::Hnsw
        },
        qe: args.search.expansion(),
        nearest_first: args.search.nearest_first,
        decode: decode_config(args.memory_budget),
    };
    let result = searcher.query(&args.image, &cfg)?;
    // images left out of the search: a warning
    if let Some(note) = &result.damage_note {
        note!("warning: {note}");
    }
    if args.json {
        print_json(&result)?;
    } else {
        // the JSON's one note, said apart: how the graph was had is informative, the images
        // left out of every search a warning
        let space = searcher.space();
        if let Some(note) = space.graph_note(result.mode).filter(|_| !quiet) {
            note!("note: {}", escape_message(note));
        }
        if let Some(left_out) = &space.left_out {
            note!("warning: {}", escape_message(left_out));
        }
        for path in &result.stale {
            note!(
                "stale: {} is gone or changed since it was indexed; left out (`{}` updates the index)",
                shown(path),
                advised_command(collection, "index")
            );
        }
        for path in &result.unreadable {
            note!(
                "unreadable: {} cannot be read by this user (permission denied), so it cannot be checked to be as indexed; left out",
                shown(path)
            );
        }
        if !quiet
            && result
                .hits
                .windows(2)
                .any(|w| w[1].distance < w[0].distance)
        {
            if searcher.space().is_augmented() {
                note!(
                    "note: ranked against stored vectors averaged with their nearest neighbours (and with query expansion unless --qe 0); distances are to the example itself"
                );
            } else {
                note!(
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

/// Paths under the working directory are shown relative to it, escaped for the terminal.
fn display_path(p: &Path) -> String {
    let cwd = std::env::current_dir().ok();
    shown(
        cwd.as_deref()
            .and_then(|cwd| p.strip_prefix(cwd).ok())
            .unwrap_or(p),
    )
}

/// One line on how the last `index` run went, with what to do next (`resume`: the command
/// that resumes it). `writer`: `Some` while a writer holds the index's lock, with its record
/// when there is one to believe.
fn describe_run(
    run: &crate::store::RunEntry,
    resume: &str,
    writer: Option<Option<&crate::collection::Writer>>,
) -> String {
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
    match (run.outcome.as_deref(), run.finished_at) {
        (Some("complete"), Some(t)) => format!("complete, {}", ago(t)),
        (Some("interrupted"), Some(t)) => {
            format!("interrupted {}; `{resume}` resumes it", ago(t))
        }
        (Some("error"), Some(t)) => format!(
            "failed {}: {}",
            ago(t),
            escape_message(run.summary.as_deref().unwrap_or("no message"))
        ),
        _ => match writer {
            Some(Some(w)) if w.run == Some(run.id) => {
                format!("started {} and running now", ago(run.started_at))
            }
            Some(Some(w)) => format!(
                "started {} and interrupted (its process was killed); `lookalike {}` is running now (process {}), and `{resume}` resumes the run once it is done",
                ago(run.started_at),
                escape_text(&w.command),
                w.pid
            ),
            Some(None) => format!(
                "started {}; a lookalike process is writing to the index now: this run, or a command after it if it was killed",
                ago(run.started_at)
            ),
            None => format!(
                "started {} and interrupted (its process was killed); `{resume}` resumes it",
                ago(run.started_at)
            ),
        },
    }
}

fn cmd_status(collection: &Collection, args: StatusArgs) -> Result<ExitCode> {
    let report = match crate::status::status(collection, args.check) {
        Ok(report) => report,
        // a check tells damage in `integrity`, also damage met before the report could be
        // read (a corrupt database, tables not as lookalike made them); the error follows on
        // stderr, with its exit status
        Err(e) if args.check && args.json && e.is_corrupt() => {
            print_json(&crate::status::damaged_json(
                collection.dir(),
                &e.to_string(),
            ))?;
            return Err(e);
        }
        Err(e) => return Err(e),
    };
    let exit = if report.is_damaged() {
        ExitCode::from(EXIT_CORRUPT)
    } else {
        ExitCode::SUCCESS
    };
    let stats = &report.stats;
    if args.json {
        let doc = report.to_json(collection.dir());
        print_json(&doc)?;
        return Ok(exit);
    }
    let mut out = std::io::stdout().lock();
    let mut w = |s: String| writeln!(out, "{s}").map_err(out_err);
    w(format!("index:     {}", shown(collection.dir())))?;
    w(format!("images:    {}", stats.images))?;
    w(format!("failures:  {}", stats.failures))?;
    let roots = report.root_paths();
    w(if roots.is_empty() {
        format!(
            "roots:     none (no folder is tracked: `{}` tracks one)",
            advised_command(collection, "index DIR")
        )
    } else {
        format!(
            "roots:     {}",
            roots
                .iter()
                .map(|p| shown(p))
                .collect::<Vec<_>>()
                .join(", ")
        )
    })?;
    w(format!(
        "profile:   {} ({} on a {}-pixel working image)",
        report.profile.name(),
        report.families.join(", "),
        report.working_size
    ))?;
    if !report.walk_options.is_default() {
        w(format!(
            "walk:      {} (reused by `lookalike index` runs that give none; `--walk-defaults` drops them)",
            report.walk_options.flags()
        ))?;
    }
    for (family, version, params, count) in &stats.feature_versions {
        w(format!(
            "features:  {family} v{version} [{params}]: {}",
            counted(*count as usize, "image", "images")
        ))?;
    }
    if report.outdated_feature_rows > 0 {
        w(format!(
            "outdated:  {} of another profile or an older extractor, not searched (run `{}` to update)",
            counted(
                report.outdated_feature_rows as usize,
                "feature row",
                "feature rows"
            ),
            advised_command(collection, "index")
        ))?;
    }
    for (family, missing) in &report.missing_families {
        w(format!(
            "missing:   {} no {family} vector yet; searches that use {family} leave {} out until `{}` extracts it",
            counted(*missing as usize, "image has", "images have"),
            for_count(*missing as usize, "it", "them"),
            advised_command(collection, "index")
        ))?;
    }
    w(format!("hnsw:      {}", escape_message(&report.hnsw)))?;
    w(format!(
        "size:      {:.1} MB on disk",
        report.bytes_on_disk as f64 / 1e6
    ))?;
    w(format!("schema:    v{}", stats.schema_version))?;
    if let Some(run) = &report.last_run {
        let resume = resume_command(collection, run, &report.roots);
        w(format!(
            "last run:  {}",
            describe_run(
                run,
                &resume,
                report.writer_running.then_some(report.writer.as_ref())
            )
        ))?;
    }
    if let Some(verdict) = &report.integrity {
        w(format!("integrity: {}", escape_message(verdict)))?;
    }
    for (path, reason) in report.failures.iter().take(20) {
        w(format!(
            "failed:    {}: {}",
            shown(path),
            escape_message(reason)
        ))?;
    }
    if report.failures.len() > 20 {
        w(format!(
            "           ... and {} more (--json lists all)",
            report.failures.len() - 20
        ))?;
    }
    Ok(exit)
}

/// Damaged vectors met while reading, whose images were left out of the search or the graph.
fn damage_note(collection: &Collection, damaged: &[crate::store::DamagedVector]) {
    if let Some(note) = crate::store::DamagedVector::left_out_note(collection.dir(), damaged) {
        note!("warning: {note}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A run that indexes, then queries, tells on Ctrl-C (or SIGTERM, SIGHUP) what it is doing
    /// now, not what it did first, in words that fit any of them, with no blank line before
    /// when no progress bar is drawn.
    #[test]
    fn a_stop_tells_what_the_run_is_doing_now() {
        let first = install_stop_flag();
        let later = install_stop_flag_saying("finishing the current query");
        assert!(Arc::ptr_eq(&first, &later), "one flag per process");
        let said =
            "stopping: finishing the current query (a second Ctrl-C or signal quits at once)";
        assert_eq!(stop_message(), said);
        // no progress bar drawn (-q, or stderr no terminal): the line alone, no blank line
        for bar in [None, Some(&ProgressBar::hidden())] {
            let mut out = Vec::new();
            tell_stop(&mut out, bar);
            assert_eq!(String::from_utf8_lossy(&out), format!("{said}\n"));
        }
    }

    /// The command that resumes a run gives its flags, each one shell word, before its roots.
    #[test]
    fn the_resume_command_gives_the_runs_flags() {
        let run = crate::store::RunEntry {
            id: 7,
            started_at: 0,
            finished_at: Some(1),
            outcome: Some("interrupted".into()),
            roots: vec!["/photos/my trip".into()],
            summary: None,
            flags: [
                "--exclude",
                "**/it's/**",
                "--exclude=-draft*",
                "--dba",
                "0",
                "--follow-symlinks",
            ]
            .map(String::from)
            .to_vec(),
        };
        let roots = std::collections::HashMap::new();
        let cmd = resume_command(
            &Collection::at(crate::collection::DEFAULT_INDEX_DIR),
            &run,
            &roots,
        );
        assert_eq!(
            cmd,
            r#"lookalike index --exclude '**/it'"'"'s/**' '--exclude=-draft*' --dba 0 --follow-symlinks '/photos/my trip'"#
        );
        let line = describe_run(&run, &cmd, None);
        assert!(line.contains(&format!("`{cmd}` resumes it")), "{line}");
    }

    /// An unfinished run is told running while its own writer holds the index's lock;
    /// interrupted (its process killed), with the command that resumes it, when no writer
    /// does or when the writer is another command, which is named.
    #[test]
    fn an_unfinished_run_is_told_running_or_interrupted() {
        let run = crate::store::RunEntry {
            id: 1,
            started_at: 0,
            finished_at: None,
            outcome: None,
            roots: vec!["/photos".into()],
            summary: None,
            flags: Vec::new(),
        };
        let writer = |command: &str, run: Option<i64>| crate::collection::Writer {
            pid: 42,
            command: command.into(),
            run,
        };
        let resume = "lookalike index /photos";
        let own = writer("index", Some(1));
        let running = describe_run(&run, resume, Some(Some(&own)));
        assert!(running.contains("running now"), "{running}");
        assert!(!running.contains("resumes"), "{running}");
        let killed = describe_run(&run, resume, None);
        assert!(
            killed.contains("interrupted")
                && killed.contains("`lookalike index /photos` resumes it"),
            "{killed}"
        );
        assert!(!killed.contains("running now"), "{killed}");
        for other in [writer("forget", None), writer("duplicates", Some(2))] {
            let line = describe_run(&run, resume, Some(Some(&other)));
            assert!(
                line.contains("interrupted (its process was killed)")
                    && line.contains(&format!(
                        "`lookalike {}` is running now (process 42)",
                        other.command
                    ))
                    && line.contains("`lookalike index /photos` resumes the run"),
                "{line}"
            );
        }
        let unknown = describe_run(&run, resume, Some(None));
        assert!(
            unknown.contains("a lookalike process is writing"),
            "{unknown}"
        );
    }

    #[test]
    fn number_flags_are_checked_before_rounding() {
        assert_eq!(f32_in("1", 0.0, 1.0), Ok(1.0));
        assert!(f32_in("1.00000001", 0.0, 1.0).is_err());
        assert!(f32_in("-1e-300", 0.0, 1.0).is_err());
        assert!(f32_in("inf", 0.0, 1.0).is_err());
    }

    /// A rate shows the digits that matter (was `251.355/s`, `10.1643/s`); the HNSW step shows
    /// no rate, which would be indexing's.
    #[test]
    fn progress_rates_are_rounded_and_the_graph_step_shows_none() {
        assert_eq!(rate_text(251.355), "251/s");
        assert_eq!(rate_text(10.1643), "10.2/s");
        assert_eq!(rate_text(0.2512), "0.25/s");
        assert_eq!(rate_text(0.0), "0/s");
        assert!(BAR_TEMPLATE.contains("{rate}") && !BAR_TEMPLATE.contains("per_sec"));
        assert!(!GRAPH_TEMPLATE.contains("rate") && !GRAPH_TEMPLATE.contains("{pos}"));
        let _ = bar_style(BAR_TEMPLATE);
        let _ = bar_style(GRAPH_TEMPLATE);
    }

    #[test]
    fn errors_map_to_their_exit_statuses() {
        let p = PathBuf::from("/idx/lookalike.db");
        assert_eq!(exit_code(&Error::Internal("x".into())), EXIT_INTERNAL);
        assert_eq!(exit_code(&Error::InvalidInput("x".into())), EXIT_USAGE);
        assert_eq!(exit_code(&Error::NoIndex(p.clone())), EXIT_USAGE);
        assert_eq!(
            exit_code(&Error::Locked {
                dir: p.clone(),
                holder: None
            }),
            EXIT_USAGE
        );
        assert_eq!(exit_code(&Error::Interrupted), EXIT_INTERRUPTED);
        let corrupt = Error::Corrupt {
            path: p.clone(),
            reason: "integrity check failed".into(),
        };
        assert_eq!(exit_code(&corrupt), EXIT_CORRUPT);
        let not_a_db = Error::Db {
            path: p.clone(),
            source: rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_NOTADB),
                None,
            ),
        };
        assert_eq!(exit_code(&not_a_db), EXIT_CORRUPT);
        let full = Error::Db {
            path: p.clone(),
            source: rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_FULL),
                None,
            ),
        };
        assert_eq!(exit_code(&full), EXIT_USAGE);
        let no_space = Error::io(p, std::io::Error::from(std::io::ErrorKind::StorageFull));
        assert_eq!(exit_code(&no_space), EXIT_USAGE);
    }

    #[test]
    fn paths_are_quoted_as_one_shell_word() {
        assert_eq!(
            crate::path_repr::shell_word(std::ffi::OsStr::new("/photos/2024")),
            "/photos/2024"
        );
        assert_eq!(
            crate::path_repr::shell_word(std::ffi::OsStr::new("/my idx's")),
            r#"'/my idx'"'"'s'"#
        );
        assert_eq!(
            crate::path_repr::shell_word(std::ffi::OsStr::new(r"/a\b c")),
            r"'/a\b c'"
        );
        assert_eq!(
            crate::path_repr::shell_word(std::ffi::OsStr::new("/a/$(rm -rf x)")),
            "'/a/$(rm -rf x)'"
        );
        assert_eq!(
            crate::path_repr::shell_word(std::ffi::OsStr::new("/a\nb\\c'")),
            r"$'/a\x0ab\\c\''"
        );
        assert_eq!(
            crate::path_repr::shell_word(std::ffi::OsStr::new("-x")),
            "'-x'"
        );
        use std::os::unix::ffi::OsStrExt;
        let raw = Path::new(std::ffi::OsStr::from_bytes(b"/caf\xe9"));
        assert_eq!(
            crate::path_repr::shell_word(raw.as_os_str()),
            r"$'/caf\xe9'"
        );
    }
}
