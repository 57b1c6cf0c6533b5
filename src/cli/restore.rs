//! CLI for `lookalike blur`, `deblur` and `quality`: argument types, running, and printing.

use super::PathArg;
use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};
use serde_json::json;

use crate::path_repr::{self, shown};
use crate::restore::color::Planes;
use crate::restore::deblur::{self, DeblurConfig, deblur};
use crate::restore::fft::convolve;
use crate::restore::file;
use crate::restore::memory::{self, Work};
use crate::restore::noise::add_gaussian_noise;
use crate::restore::psf::PsfSpec;
use crate::restore::quality::MS_SSIM_MIN_SIDE;
use crate::restore::scores;
use crate::{Error, Result};

/// Richardson-Lucy iterations when `--iterations` is not given.
const DEFAULT_ITERATIONS: usize = 50;

/// Most deconvolution iterations `--iterations` accepts.
pub(crate) const MAX_ITERATIONS: usize = deblur::MAX_ITERATIONS;

fn parse_noise(s: &str) -> std::result::Result<f32, String> {
    super::f32_in(s, 0.0, 1.0)
}

fn parse_strength(s: &str) -> std::result::Result<f32, String> {
    super::f32_in(s, 0.0, 1.0)
}

/// `lookalike blur IN OUT --psf SPEC`: blur an image with a known PSF (and optional noise).
#[derive(Debug, Args)]
pub(crate) struct BlurArgs {
    /// Image to blur.
    #[arg(value_parser = PathArg)]
    pub(crate) input: PathBuf,
    /// Where to write the blurred image (format from the extension).
    #[arg(value_parser = PathArg)]
    pub(crate) output: PathBuf,
    /// PSF: gaussian:SIGMA, disk:RADIUS, motion:LENGTH,ANGLE, file:PATH or none (noise only).
    #[arg(long)]
    pub(crate) psf: String,
    /// Standard deviation of added white Gaussian noise (data range 1; 0 to 1).
    #[arg(long, default_value_t = 0.0, value_parser = parse_noise)]
    pub(crate) noise: f32,
    /// Seed of the noise generator.
    #[arg(long, default_value_t = 0)]
    pub(crate) seed: u64,
    /// Also write the PSF used as a text matrix (the format `--psf file:PATH` reads).
    #[arg(long, value_name = "PATH", value_parser = PathArg)]
    pub(crate) psf_out: Option<PathBuf>,
    /// Memory the command may use, in MiB (64 to 65536): decoding the image (default 512)
    /// and the restoration work (default 4096, which a 24-megapixel colour photo fits); a
    /// larger image is refused before the work starts.
    #[arg(long, value_name = "MIB", value_parser = super::usize_in(64..=65_536))]
    pub(crate) memory_budget: Option<usize>,
}

/// Deconvolution method (`--method`; [`deblur::Method`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Method {
    /// Wiener filter with a 1/f^2 image prior (fast).
    Wiener,
    /// Richardson-Lucy with TV regularisation and a noise stopping rule.
    Rl,
    /// Hyper-Laplacian prior, half-quadratic splitting (the best on every blur measured).
    Hyper,
}

/// `lookalike deblur IN OUT`: restore a blurred image.
#[derive(Debug, Args)]
pub(crate) struct DeblurArgs {
    /// Blurred image.
    #[arg(value_parser = PathArg)]
    pub(crate) input: PathBuf,
    /// Where to write the restored image.
    #[arg(value_parser = PathArg)]
    pub(crate) output: PathBuf,
    /// PSF spec (as `blur --psf`), or `auto` to estimate it from the image.
    #[arg(long, default_value = "auto")]
    pub(crate) psf: String,
    /// Deconvolution method.
    #[arg(long, value_enum, default_value_t = Method::Hyper)]
    pub(crate) method: Method,
    /// Maximum iterations of Richardson-Lucy (`--method rl`), 1 to 1000; the other methods run
    /// their own fixed schedules.
    #[arg(long, value_parser = super::usize_in(1..=MAX_ITERATIONS))]
    pub(crate) iterations: Option<usize>,
    /// Run every iteration of Richardson-Lucy (it otherwise stops once its residual reaches
    /// the noise level).
    #[arg(long)]
    pub(crate) no_early_stop: bool,
    /// Blend with the input, 0 to 1: 1 = fully restored, 0 = unchanged.
    #[arg(long, default_value_t = 1.0, value_parser = parse_strength, allow_negative_numbers = true)]
    pub(crate) strength: f32,
    /// Memory the command may use, in MiB (64 to 65536): decoding the image (default 512)
    /// and the restoration work (default 4096, which a 24-megapixel colour photo fits); a
    /// larger image is refused before the work starts.
    #[arg(long, value_name = "MIB", value_parser = super::usize_in(64..=65_536))]
    pub(crate) memory_budget: Option<usize>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub(crate) json: bool,
}

/// `lookalike quality REFERENCE TEST`: PSNR, SSIM and MS-SSIM of TEST against REFERENCE.
#[derive(Debug, Args)]
pub(crate) struct QualityArgs {
    /// Reference (original) image.
    #[arg(value_parser = PathArg)]
    pub(crate) reference: PathBuf,
    /// Image to score.
    #[arg(value_parser = PathArg)]
    pub(crate) test: PathBuf,
    /// Memory the command may use, in MiB (64 to 65536): decoding each image (default 512)
    /// and scoring the pair (default 4096, which two 24-megapixel colour photos fit); larger
    /// images are refused before the scoring starts.
    #[arg(long, value_name = "MIB", value_parser = super::usize_in(64..=65_536))]
    pub(crate) memory_budget: Option<usize>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub(crate) json: bool,
}

impl From<Method> for deblur::Method {
    fn from(m: Method) -> Self {
        match m {
            Method::Wiener => deblur::Method::Wiener,
            Method::Rl => deblur::Method::Rl,
            Method::Hyper => deblur::Method::Hyper,
        }
    }
}

impl DeblurArgs {
    fn config(&self) -> Result<DeblurConfig> {
        let psf = if self.psf.trim().eq_ignore_ascii_case("auto") {
            None
        } else {
            Some(PsfSpec::parse(&self.psf)?)
        };
        let method: crate::restore::Method = self.method.into();
        if method != crate::restore::Method::Rl && (self.iterations.is_some() || self.no_early_stop)
        {
            return Err(Error::InvalidInput(format!(
                "--iterations and --no-early-stop are for --method rl; {} runs its own fixed schedule",
                method.name()
            )));
        }
        let config = DeblurConfig {
            psf,
            method,
            iterations: self.iterations.unwrap_or(DEFAULT_ITERATIONS),
            stop_at_noise: !self.no_early_stop,
            strength: self.strength,
            lossy_source: false,
            measure_within: None,
        };
        config.validate()?;
        Ok(config)
    }
}

fn check_noise(noise: f32) -> Result<()> {
    if !noise.is_finite() || !(0.0..=1.0).contains(&noise) {
        return Err(Error::InvalidInput(format!(
            "--noise {noise} is out of range: use a standard deviation between 0 and 1"
        )));
    }
    Ok(())
}

/// Refuses an output that would overwrite the input (under any name: a link counts), that is a
/// folder, or whose folder does not exist, before any work is done.
fn check_output(input: &Path, role: &str, output: &Path, flag: &str) -> Result<()> {
    let same = input == output
        || matches!((input.canonicalize(), output.canonicalize()), (Ok(a), Ok(b)) if a == b)
        || crate::cleanup::same_file(input, output);
    if same {
        return Err(Error::InvalidInput(format!(
            "{flag}{} is the {role} {}: write the result to another file",
            crate::path_repr::shown(output),
            crate::path_repr::shown(input)
        )));
    }
    if output.is_dir() {
        return Err(Error::InvalidInput(format!(
            "cannot write {flag}{}: it is a folder; give a file name",
            crate::path_repr::shown(output)
        )));
    }
    if output
        .metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().readonly())
    {
        return Err(Error::InvalidInput(format!(
            "cannot write {flag}{}: the file is read-only; make it writable or give another name",
            crate::path_repr::shown(output)
        )));
    }
    if output.metadata().is_ok_and(|m| !m.is_file() && !m.is_dir()) {
        return Err(Error::InvalidInput(format!(
            "cannot write {flag}{}: it is not a regular file (a pipe or a device); give a file name",
            crate::path_repr::shown(output)
        )));
    }
    let folder = output.parent().filter(|p| !p.as_os_str().is_empty());
    if let Some(folder) = folder
        && !folder.is_dir()
    {
        return Err(Error::InvalidInput(format!(
            "cannot write {flag}{}: the folder {} does not exist; create it first",
            crate::path_repr::shown(output),
            crate::path_repr::shown(folder)
        )));
    }
    Ok(())
}

/// Prints one line on stdout; a closed pipe ends the command quietly (`main` treats it so).
fn print_line(text: &str) -> Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{text}")
        .and_then(|()| out.flush())
        .map_err(|e| Error::io(Path::new("<stdout>"), e))
}

/// True when two paths name one place, existing or not: the same folder (as resolved) and the
/// same file name.
fn same_place(a: &Path, b: &Path) -> bool {
    let folder = |p: &Path| {
        let parent = p
            .parent()
            .filter(|f| !f.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        parent.canonicalize().ok()
    };
    a.file_name() == b.file_name() && folder(a).is_some() && folder(a) == folder(b)
}

/// Reads an image to blur or deblur; colours under full transparency are replaced by the
/// visible ones about them, so none of them bleeds into the visible image.
fn load_for_restoration(
    path: &Path,
    memory_budget: Option<usize>,
    work: Work,
) -> Result<file::ImageFile> {
    let mut img = file::load_for(
        path,
        &super::decode_config(memory_budget),
        work,
        work_budget(memory_budget),
    )?;
    if let Some(alpha) = &img.alpha {
        img.planes.fill_hidden(alpha);
    }
    Ok(img)
}

/// The larger of a PSF's two radii: the padding it adds to each side of the image.
fn psf_radius(psf: &crate::restore::psf::Psf) -> usize {
    let (ry, rx) = psf.radius();
    ry.max(rx)
}

/// The memory budget of the restoration work, in MiB: `--memory-budget`, else the default.
fn work_budget(memory_budget: Option<usize>) -> u64 {
    memory_budget.map_or(memory::DEFAULT_BUDGET_MIB, |mib| mib as u64)
}

/// The box `(top, left, height, width)` around the fully opaque pixels, when transparency
/// takes a large part of the image (over a tenth) and the box is large enough to measure blur
/// in (64 pixels a side); `None` otherwise.
fn opaque_box(alpha: &image::GrayImage) -> Option<(usize, usize, usize, usize)> {
    let (w, h) = alpha.dimensions();
    let (mut top, mut left, mut bottom, mut right) = (u32::MAX, u32::MAX, 0, 0);
    let mut opaque = 0u64;
    for (x, y, a) in alpha.enumerate_pixels() {
        if a[0] == 255 {
            opaque += 1;
            (top, left) = (top.min(y), left.min(x));
            (bottom, right) = (bottom.max(y), right.max(x));
        }
    }
    let total = u64::from(w) * u64::from(h);
    if opaque == 0 || opaque * 10 > total * 9 {
        return None;
    }
    let (height, width) = (bottom - top + 1, right - left + 1);
    (height >= 64 && width >= 64).then_some((
        top as usize,
        left as usize,
        height as usize,
        width as usize,
    ))
}

/// Ctrl-C, SIGTERM and SIGHUP end a restoration command at once with exit 130, removing the
/// temporary file of an output being written: an existing output stays as it was.
fn stop_on_signal() {
    let _ = ctrlc::set_handler(|| {
        crate::temp_file::remove_unfinished();
        std::process::exit(i32::from(super::EXIT_INTERRUPTED));
    });
}

/// Runs `lookalike blur`; the one-line summary goes to stderr unless `quiet`.
pub(crate) fn run_blur(args: &BlurArgs, quiet: bool) -> Result<()> {
    stop_on_signal();
    check_noise(args.noise)?;
    check_output(&args.input, "input", &args.output, "")?;
    file::output_format(&args.output)?;
    if let Some(path) = &args.psf_out {
        check_output(&args.input, "input", path, "--psf-out ")?;
        check_output(&args.output, "output", path, "--psf-out ")?;
        if same_place(path, &args.output) {
            return Err(Error::InvalidInput(format!(
                "--psf-out {} is the output {}: write the kernel to another file",
                crate::path_repr::shown(path),
                crate::path_repr::shown(&args.output)
            )));
        }
    }
    let psf = PsfSpec::parse(&args.psf)?.to_psf()?;
    let work = Work::Blur {
        psf_radius: psf_radius(&psf),
    };
    let img = load_for_restoration(&args.input, args.memory_budget, work)?;
    let (rows, cols) = img.planes.dim();
    file::check_fits(&args.output, cols, rows)?;
    // channel c gets the noise stream of seed + c, so grey and colour runs are reproducible
    // Colours count by their opacity (a blur of premultiplied colour, divided by the blurred
    // opacity, which is the output's): a nearly transparent pixel's colour barely reaches its
    // opaque neighbours.
    let opacity = img
        .alpha
        .as_ref()
        .filter(|a| a.pixels().any(|p| p[0] < u8::MAX))
        .map(crate::restore::color::gray_to_plane);
    let spread_opacity = opacity.as_ref().map(|a| convolve(a, &psf));
    let blur = |p: &crate::restore::Plane, c: u64| {
        let b = match (&opacity, &spread_opacity) {
            (Some(a), Some(spread)) => {
                // where no opacity reaches, the pixel (transparent, its colour already taken
                // from the visible ones about it) keeps its colour
                let mut weighted = convolve(&(p * a), &psf);
                ndarray::Zip::from(&mut weighted)
                    .and(spread)
                    .and(p)
                    .for_each(|w, &s, &own| *w = if s > 1e-3 { *w / s } else { own });
                weighted
            }
            _ => convolve(p, &psf),
        };
        if args.noise > 0.0 {
            add_gaussian_noise(&b, args.noise, args.seed.wrapping_add(c))
        } else {
            b
        }
    };
    let out = match &img.planes {
        Planes::Grey(p) => Planes::Grey(blur(p, 0)),
        Planes::Rgb([r, g, b]) => Planes::Rgb([blur(r, 0), blur(g, 1), blur(b, 2)]),
    };
    // the opacity is blurred with the colours: what is seen is blurred, a silhouette too
    let alpha = spread_opacity
        .as_ref()
        .map(crate::restore::color::plane_to_gray)
        .or(img.alpha);
    let sixteen = file::save_at_depth(&out, alpha.as_ref(), &args.output, img.deep)?;
    if !quiet {
        note_format_losses(&args.output, &args.input, &out, img.deep && !sixteen);
    }
    if img.animated && !quiet {
        note_first_frame(&args.output, &args.input, img.format);
    }
    if let Some(path) = &args.psf_out {
        file::write_bytes(path, psf.to_text().as_bytes())?;
    }
    if !quiet {
        note!(
            "{} -> {} (psf {}, noise {})",
            shown(&args.input),
            shown(&args.output),
            path_repr::escape_text(&args.psf),
            args.noise
        );
    }
    Ok(())
}

/// Says that `output` holds only the first frame of the animation `input` (read as `format`),
/// or the first page of a TIFF of several.
fn note_first_frame(output: &Path, input: &Path, format: Option<image::ImageFormat>) {
    let (is, frame) = if format == Some(image::ImageFormat::Tiff) {
        ("a TIFF of several pages", "page")
    } else {
        ("an animation", "frame")
    };
    note!(
        "note: {} is {is}: only its first {frame} is read, and {} holds that {frame} alone",
        shown(input),
        shown(output)
    );
}

/// Says what writing `planes` read from `input` as `output` lost: the bits over 8 a channel
/// (`eight_bits`: the input had more and the output holds 8), and the colour of a colour image
/// written as grey `.pgm`.
fn note_format_losses(output: &Path, input: &Path, planes: &Planes, eight_bits: bool) {
    let extension = output
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    if eight_bits {
        // PNM and PAM hold 16 bits, but lookalike writes them at 8
        let why = if file::output_format(output).ok() == Some(image::ImageFormat::Pnm) {
            "as lookalike writes this format"
        } else {
            "all its format holds"
        };
        note!(
            "note: {} is written at 8 bits a channel, {why}; {} has more (.png and .tif are \
             written at 16 bits)",
            shown(output),
            shown(input)
        );
    }
    if extension.as_deref() == Some("pgm") && has_colour(planes) {
        note!(
            "note: {} is grey, as PGM holds no colour; {} has colour, which .ppm keeps",
            shown(output),
            shown(input)
        );
    }
}

/// True when some pixel of `planes` is not grey.
fn has_colour(planes: &Planes) -> bool {
    match planes {
        Planes::Grey(_) => false,
        Planes::Rgb([r, g, b]) => ndarray::Zip::from(r)
            .and(g)
            .and(b)
            .fold(false, |any, &r, &g, &b| any || r != g || g != b),
    }
}

/// How an image left as it was is written when not copied: re-encoded when `format` is lossy.
fn written_unchanged(format: image::ImageFormat) -> &'static str {
    if format == image::ImageFormat::Jpeg {
        "re-encoded as JPEG"
    } else {
        "pixels written unchanged"
    }
}

/// Runs `lookalike deblur`; the text summary goes to stderr unless `quiet`, `--json` to stdout.
pub(crate) fn run_deblur(args: &DeblurArgs, quiet: bool) -> Result<()> {
    stop_on_signal();
    let cfg = args.config()?;
    check_output(&args.input, "input", &args.output, "")?;
    let format = file::output_format(&args.output)?;
    let work = Work::Deblur {
        method: cfg.method,
        blind: cfg.psf.is_none(),
        psf_radius: match &cfg.psf {
            Some(spec) => psf_radius(&spec.to_psf()?),
            None => 0,
        },
    };
    let img = load_for_restoration(&args.input, args.memory_budget, work)?;
    let (rows, cols) = img.planes.dim();
    file::check_fits(&args.output, cols, rows)?;
    let cfg = DeblurConfig {
        lossy_source: img.lossy,
        measure_within: img.alpha.as_ref().and_then(opaque_box),
        ..cfg
    };
    let done = deblur(&img.planes, &cfg)?;
    // an image left as it is (found sharp, or at strength 0) is copied when it goes to the
    // same format
    let copied = done.unchanged
        && img.format == Some(format)
        && file::same_subtype(&args.input, &args.output, format);
    if copied {
        file::copy(&args.input, &args.output)?;
    } else {
        let sixteen = file::save_at_depth(&done.image, img.alpha.as_ref(), &args.output, img.deep)?;
        if !quiet {
            note_format_losses(&args.output, &args.input, &done.image, img.deep && !sixteen);
        }
    }
    // a copy keeps every frame
    if img.animated && !copied && !quiet {
        note_first_frame(&args.output, &args.input, img.format);
    }
    let est = done.estimate;
    let method = cfg.method.name();
    let iterations = done.channels.iter().filter_map(|c| c.iterations).max();
    if args.json {
        let mut doc = path_repr::object("input", &args.input);
        path_repr::insert(&mut doc, "output", &args.output);
        // a lossy file left unchanged has no measured noise, as the text says: null
        let unmeasured = done.lossy && done.unchanged;
        let mut channels = json!(done.channels);
        let mut estimate = json!(est);
        if unmeasured {
            for c in channels.as_array_mut().into_iter().flatten() {
                c["noise_sigma"] = serde_json::Value::Null;
            }
            if let Some(e) = estimate.as_object_mut() {
                e.insert("noise_sigma".into(), serde_json::Value::Null);
            }
        }
        let serde_json::Value::Object(rest) = json!({
                "psf": done.psf_text,
                "estimated": est.is_some(),
                "estimate": estimate,
                "blurred": !done.found_no_blur(),
                "copied": copied,
                "rejected": done.rejected,
                "fit": done.fit,
                "method": method,
                "strength": cfg.strength,
                "noise_sigma": (!unmeasured).then(|| done.noise_sigma()),
                "lossy": done.lossy,
                "iterations": iterations,
                "channels": channels,
        }) else {
            return Err(Error::Internal("deblur JSON is not an object".into()));
        };
        doc.extend(rest);
        print_line(&serde_json::Value::Object(doc).to_string())?;
    }
    if let Some(rejected) = &done.rejected {
        // a result that is not what was asked for: said under -q too
        let how = if copied {
            "copied unchanged"
        } else {
            written_unchanged(format)
        };
        note!(
            "warning: {}: blur read as {}, but the image restored with it does not explain the \
             input (blurred again it is {:.1} dB from it, with {:.2} times its contrast: a wrong \
             PSF's ringing); {how} to {}. If you know the blur, give it with --psf",
            shown(&args.input),
            path_repr::escape_message(&rejected.psf),
            rejected.fit.reblurred_psnr_db,
            rejected.fit.contrast_gain,
            shown(&args.output)
        );
    } else if !quiet && !args.json {
        if done.unchanged {
            let how = if copied {
                "copied unchanged"
            } else {
                written_unchanged(format)
            };
            let why = if !done.found_no_blur() {
                format!(
                    "strength 0 (psf {})",
                    path_repr::escape_message(&done.psf_text)
                )
            } else if est.is_some() {
                "no blur found".into()
            } else if done.psf_text == "none" {
                "no blur given".into()
            } else {
                format!(
                    "the PSF given ({}) is no blur (all but 0.1% of its weight on one pixel)",
                    path_repr::escape_message(&done.psf_text)
                )
            };
            // quantisation empties a lossy file's finest differences, where noise is measured
            let noise = if done.lossy {
                "noise not measurable in a lossy file".to_string()
            } else {
                format!("noise {:.4}", done.noise_sigma())
            };
            note!(
                "{}: {why} ({noise}), {how} to {}",
                shown(&args.input),
                shown(&args.output)
            );
        } else {
            let how = if est.is_some() {
                "estimated psf"
            } else {
                "psf"
            };
            let noise: Vec<String> = done
                .channels
                .iter()
                .map(|c| format!("{:.4}", c.noise_sigma))
                .collect();
            let runs = match (iterations, done.channels.iter().any(|c| c.stopped_early)) {
                (Some(0), true) => {
                    ", 0 iterations: the input already fits this PSF at its noise level, so the \
                     output is the input"
                        .to_string()
                }
                (Some(n), true) => format!(
                    ", {} (stopped at the noise level)",
                    crate::text::counted(n, "iteration", "iterations")
                ),
                (Some(n), false) => {
                    format!(", {}", crate::text::counted(n, "iteration", "iterations"))
                }
                (None, _) => String::new(),
            };
            let floor = if done.lossy {
                format!(
                    " (at least {:.4} for a lossy file)",
                    deblur::LOSSY_NOISE_FLOOR
                )
            } else {
                String::new()
            };
            note!(
                "{} -> {} ({how} {}, {method}, noise {}{floor}{runs})",
                shown(&args.input),
                shown(&args.output),
                path_repr::escape_message(&done.psf_text),
                noise.join("/"),
            );
        }
    }
    Ok(())
}

/// Runs `lookalike quality`: the scores go to stdout (they are the result, printed with `-q`
/// too); nothing goes to stderr but errors.
pub(crate) fn run_quality(args: &QualityArgs) -> Result<()> {
    let decode = super::decode_config(args.memory_budget);
    let budget = work_budget(args.memory_budget);
    let (mut a, mut b) = (
        file::load_for(&args.reference, &decode, Work::Quality, budget)?,
        file::load_for(&args.test, &decode, Work::Quality, budget)?,
    );
    if a.planes.dim() != b.planes.dim() {
        let (ah, aw) = a.planes.dim();
        let (bh, bw) = b.planes.dim();
        return Err(Error::InvalidInput(format!(
            "{} is {aw}x{ah} but {} is {bw}x{bh}: compare images of the same size",
            crate::path_repr::shown(&args.reference),
            crate::path_repr::shown(&args.test)
        )));
    }
    // the scores are of the colours; transparency is not compared, and colours under full
    // transparency in either image, which nobody sees there, are filled in both from the
    // visible ones about them
    let hidden = match (&a.alpha, &b.alpha) {
        (Some(x), Some(y)) => Some(image::GrayImage::from_fn(x.width(), x.height(), |i, j| {
            image::Luma([x.get_pixel(i, j)[0].min(y.get_pixel(i, j)[0])])
        })),
        (Some(x), None) | (None, Some(x)) => Some(x.clone()),
        (None, None) => None,
    };
    // an alpha channel all opaque (an RGBA PNG, a GIF without transparency) hides nothing
    let hidden = hidden.filter(|alpha| alpha.pixels().any(|p| p[0] < u8::MAX));
    let alpha_ignored = hidden.is_some();
    let first_frames_only = a.animated || b.animated;
    // a TIFF of several pages is read at its first page, as an animation at its first frame
    let tiff_pages = [&a, &b]
        .iter()
        .any(|img| img.animated && img.format == Some(image::ImageFormat::Tiff));
    if let Some(alpha) = &hidden {
        for img in [&mut a, &mut b] {
            if alpha.pixels().all(|p| p[0] == 0) {
                // nothing is seen: nothing to fill from, and nothing to tell apart
                img.planes = Planes::from_channels(
                    img.planes
                        .channels()
                        .iter()
                        .map(|p| p.mapv(|_| 0.0))
                        .collect(),
                );
            } else {
                img.planes.fill_hidden(alpha);
            }
        }
    }
    let (a, b) = (a.planes, b.planes);
    // colour pairs: per channel (the main figures) and on luminance; grey against colour
    // only on luminance
    let measured_on = match (&a, &b) {
        (Planes::Grey(_), Planes::Grey(_)) => "grey",
        (Planes::Rgb(_), Planes::Rgb(_)) => "rgb",
        _ => "luma",
    };
    let (la, lb) = (a.luma(), b.luma());
    let name_them = |e: Error| match e {
        Error::InvalidInput(m) => Error::InvalidInput(format!(
            "{} and {}: {m}",
            crate::path_repr::shown(&args.reference),
            crate::path_repr::shown(&args.test)
        )),
        other => other,
    };
    let main = match measured_on {
        "luma" => scores(&[&la], &[&lb]),
        _ => scores(&a.channels(), &b.channels()),
    }
    .map_err(name_them)?;
    let luma = (measured_on == "rgb")
        .then(|| scores(&[&la], &[&lb]))
        .transpose()?;
    let finite = |v: f64| if v.is_finite() { json!(v) } else { json!(null) };
    if args.json {
        let mut doc = path_repr::object("reference", &args.reference);
        path_repr::insert(&mut doc, "test", &args.test);
        doc.insert("measured_on".into(), json!(measured_on));
        doc.insert("alpha_ignored".into(), json!(alpha_ignored));
        doc.insert("first_frames_only".into(), json!(first_frames_only));
        doc.insert("psnr_db".into(), finite(main.psnr_db));
        doc.insert("ssim".into(), json!(main.ssim));
        doc.insert("ms_ssim".into(), json!(main.ms_ssim));
        if let Some(l) = luma {
            doc.insert(
                "luma".into(),
                json!({"psnr_db": finite(l.psnr_db), "ssim": l.ssim, "ms_ssim": l.ms_ssim}),
            );
        }
        print_line(&serde_json::Value::Object(doc).to_string())?;
    } else {
        let line = |s: &crate::restore::Scores| {
            let ms = s
                .ms_ssim
                .map(|m| format!("{m:.4}"))
                .unwrap_or_else(|| format!("n/a (under {MS_SSIM_MIN_SIDE} px a side)"));
            let ssim = s
                .ssim
                .map(|v| format!("{v:.4}"))
                .unwrap_or_else(|| "n/a (under 11 px a side)".into());
            format!("PSNR {:.3} dB  SSIM {ssim}  MS-SSIM {ms}", s.psnr_db)
        };
        let what = match measured_on {
            "rgb" => "  (R, G, B channels, as scikit-image's channel_axis)",
            "luma" => "  (luminance: one image is grey)",
            _ => "",
        };
        let alpha = if alpha_ignored {
            "  (colours only: transparency is not compared)"
        } else {
            ""
        };
        let frames = if tiff_pages {
            "  (first frames only: other pages or frames are not compared)"
        } else if first_frames_only {
            "  (first frames only: an animation's other frames are not compared)"
        } else {
            ""
        };
        print_line(&format!("{}{what}{alpha}{frames}", line(&main)))?;
        if let Some(l) = luma {
            print_line(&format!("{}  (luminance, Rec. 601)", line(&l)))?;
        }
    }
    Ok(())
}
