//! The deblur pipeline: a PSF (given, or estimated from the luminance), one deconvolution
//! method on every channel, and the result blended with the input by a strength.

use rayon::prelude::*;
use serde::Serialize;

use super::Plane;
use super::color::Planes;
use super::estimate::{
    BlurEstimate, BlurKind, estimate_blur_compressed, estimate_blur_thorough_as_stored,
};
use super::fft::convolve;
use super::hyper::{HyperParams, hyper_laplacian, hyper_laplacian_family};
use super::noise::noise_sigma;
use super::psf::{Psf, PsfFamily, PsfSpec};
use super::rl::{RlParams, richardson_lucy};
use super::wiener::{WienerParams, wiener};
use crate::{Error, Result};

/// Most deconvolution iterations [`DeblurConfig::iterations`] accepts.
pub const MAX_ITERATIONS: usize = 1000;

/// Deconvolution method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// Wiener filter with a 1/f^2 image prior (fast).
    Wiener,
    /// Richardson-Lucy with TV regularisation and a noise stopping rule.
    Rl,
    /// Hyper-Laplacian prior, half-quadratic splitting (the default: the best measured on
    /// Gaussian, disk and motion blur).
    Hyper,
}

impl Method {
    /// The method's name, lowercase.
    pub fn name(self) -> &'static str {
        match self {
            Method::Wiener => "wiener",
            Method::Rl => "rl",
            Method::Hyper => "hyper",
        }
    }
}

/// What to deblur with.
#[derive(Debug, Clone)]
pub struct DeblurConfig {
    /// The blur, or `None` to estimate it from the image.
    pub psf: Option<PsfSpec>,
    /// The deconvolution method run on every channel.
    pub method: Method,
    /// Richardson-Lucy's iteration cap, 1 to [`MAX_ITERATIONS`].
    pub iterations: usize,
    /// Richardson-Lucy stops once its residual reaches the noise level; `false` runs every
    /// iteration.
    pub stop_at_noise: bool,
    /// Blend with the input: 1 = fully restored, 0 = unchanged.
    pub strength: f32,
    /// The image was stored by a lossy block codec (JPEG and the like): the blind estimate then
    /// reads a Gaussian, a disk or a long line, never a short line (see
    /// [`estimate_blur_compressed`]), and the
    /// restoration takes the noise as at least [`LOSSY_NOISE_FLOOR`] (as it does for an image
    /// the blind estimate reads as a decoded JPEG saved losslessly).
    pub lossy_source: bool,
    /// Where the picture is, as `(top, left, height, width)`: blur and noise are measured
    /// there only (the opaque part of an image with large transparent areas, which are flat
    /// and would read as no noise); `None`: the whole image.
    pub measure_within: Option<(usize, usize, usize, usize)>,
}

impl Default for DeblurConfig {
    /// As `lookalike deblur` runs by default: blind, hyper-Laplacian, the input lossless.
    fn default() -> Self {
        DeblurConfig {
            psf: None,
            method: Method::Hyper,
            iterations: 50,
            stop_at_noise: true,
            strength: 1.0,
            lossy_source: false,
            measure_within: None,
        }
    }
}

/// The least noise a lossily stored image is restored with (data range 1, about 2 grey levels
/// of 255). A codec's error sits in block edges and discarded detail, which the noise measure
/// (on the finest differences) does not see: restored with the measured noise, a blurred JPEG
/// got its artifacts sharpened with it. On 216 JPEGs (6 photos, Gaussians of sigma 1-5 and disks
/// of radius 2-5, `blur`'s own JPEGs with and without noise and Pillow's at quality 90 and 95),
/// 20 blind restorations came out more than 0.05 dB under their input (down to -9.3 dB) with
/// the measured noise, 1 (-0.36 dB) with this floor, and the gains over the inputs summed
/// 470.7 dB against 294.1; 0.004 and 0.006 left 8 and 3 under their input.
pub const LOSSY_NOISE_FLOOR: f32 = 0.008;

/// A deblurred image and how it was made.
#[derive(Debug, Clone)]
pub struct Deblurred {
    /// The restored image, blended with the input by [`DeblurConfig::strength`].
    pub image: Planes,
    /// The PSF used, as a spec (`none` when an estimate found no blur or its restoration was
    /// rejected).
    pub psf_text: String,
    /// The blind estimate, when the PSF was estimated.
    pub(crate) estimate: Option<BlurEstimate>,
    /// What was done to each channel (one for grey, red, green and blue for colour).
    pub(crate) channels: Vec<ChannelReport>,
    /// The image is the input's own pixels: no blur found or given, or a strength of 0.
    pub(crate) unchanged: bool,
    /// The PSF used is no blur: a single pixel (`--psf none`, `gaussian:0`, `disk:0`...) or a
    /// kernel all but a thousandth of whose weight is at its centre.
    pub(crate) psf_is_identity: bool,
    /// The image was read as lossily stored (see [`DeblurConfig::lossy_source`]): its measured
    /// noise says little, and a restoration takes at least [`LOSSY_NOISE_FLOOR`].
    pub(crate) lossy: bool,
    /// The blind estimate's restoration, refused because it does not explain the input: the
    /// image is then the input's own pixels.
    pub(crate) rejected: Option<Rejected>,
    /// How the blind estimate's restoration fitted the input, kept or rejected; `None` when
    /// the PSF was given or no restoration was made.
    pub(crate) fit: Option<Fit>,
}

/// A blind restoration left out: the PSF estimated, and how the restoration fitted.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Rejected {
    /// The estimated PSF, as a spec.
    pub(crate) psf: String,
    /// How the restoration with it fitted the input.
    #[serde(flatten)]
    pub(crate) fit: Fit,
}

/// How a restoration fits its input, on the luminance, with the output's values held to the
/// data range as a file holds them.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub(crate) struct Fit {
    /// PSNR (dB, data range 1) of the restoration blurred again by the PSF, against the input.
    pub(crate) reblurred_psnr_db: f32,
    /// The restoration's standard deviation over the input's.
    pub(crate) contrast_gain: f32,
    /// [`Fit::score`]: see [`Fit::explains_input`].
    pub(crate) score_db: f32,
    /// For a line of [`EXPLAINED_LINE_LENGTH`] px or more: how much closer to the input the
    /// restoration blurred again comes than the input blurred again does, in dB, the noise
    /// taken off both (`10 log10 ((mse_again - s2) / (mse_restored - s2))`); `None` otherwise.
    pub(crate) explained_db: Option<f32>,
}

/// Least [`Fit::score`] a blind restoration that gains over [`CONTRAST_GAIN_CHECKED`] in
/// contrast is kept at. A wrong PSF's ringing, clipped at black and white, both misses the input
/// when blurred again and adds contrast. On 360 blind restorations of 11 photos (the
/// restoration benchmarks' Gaussians, disks and lines of 15-60 px, lines of 55-70 px at 20-140
/// degrees, lines read wrong by an earlier estimator, shrunk shakes), the 30 that came out 5-20
/// dB under their input scored 7-27 dB, and every one that gained scored from 28.6 dB (a
/// silhouette, whose black and white clip any restoration).
pub(crate) const LEAST_FIT_SCORE_DB: f32 = 28.0;

/// Contrast gain from which [`LEAST_FIT_SCORE_DB`] applies: below it, a restoration that adds
/// no ringing is kept unless it misses its input by [`LEAST_REBLURRED_PSNR_DB`]. A silhouette on
/// a white ground, its black and white clipped, restored from a disk of radius 8 with a gain of
/// 0.99, re-blurs to 24.6 dB.
pub(crate) const CONTRAST_GAIN_CHECKED: f32 = 1.1;

/// Least [`Fit::explained_db`] of a blind restoration with a long line: the restoration,
/// blurred again, must leave under half the difference the input blurred again leaves. On 135
/// lines of 55-70 px at 20-140 degrees on chelsea, horse and rocket, the restorations that came
/// out 3.8-5.9 dB under their input with a line read at another angle (140 or 126 degrees for
/// 20-40) scored 0.1-2.7 dB; right lines 4.7-14.3 dB (a silhouette, horse, lowest), the clock
/// photo 4.0, and lines of 20-45 px on camera and coffee at noise 0.002 and 0.01 from 4.6.
pub(crate) const LEAST_EXPLAINED_DB: f32 = 3.0;

/// Shortest line [`LEAST_EXPLAINED_DB`] applies to: wrong reads of long lines.
pub(crate) const EXPLAINED_LINE_LENGTH: f32 = 20.0;

/// Least re-blurred PSNR (dB) of any blind restoration kept: a silhouette restored with a line
/// read 80-110 degrees off re-blurred to 13-18 dB.
pub(crate) const LEAST_REBLURRED_PSNR_DB: f32 = 20.0;

impl Fit {
    /// The fit of `restored` to `input` under `psf`; `None` for a flat input. `line_noise`,
    /// the input's noise level, is given for a line of [`EXPLAINED_LINE_LENGTH`] px or more,
    /// whose fit is measured against the input blurred again too ([`Fit::explained_db`]).
    pub(crate) fn of(
        input: &Plane,
        restored: &Plane,
        psf: &Psf,
        line_noise: Option<f32>,
    ) -> Option<Fit> {
        let std = |p: &Plane| {
            let mean = p.mean().unwrap_or(0.0);
            (p.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / p.len().max(1) as f32).sqrt()
        };
        let input_std = std(input);
        if input_std < 1e-4 || input.dim() != restored.dim() {
            return None;
        }
        let mse_from_input = |p: &Plane| {
            p.iter()
                .zip(input.iter())
                .map(|(a, b)| (a - b).powi(2))
                .sum::<f32>()
                / input.len() as f32
        };
        let held = restored.mapv(|v| v.clamp(0.0, 1.0));
        let mse = mse_from_input(&convolve(&held, psf));
        let reblurred_psnr_db = -10.0 * mse.max(1e-12).log10();
        let contrast_gain = std(&held) / input_std;
        let explained_db = line_noise.and_then(|sigma| {
            let noise = sigma * sigma;
            let again = mse_from_input(&convolve(input, psf)) - noise;
            // a PSF that changes the input less than its noise does has nothing to explain;
            // a restoration that fits within the noise explains it all (capped at 40 dB)
            (again > 0.0).then(|| 10.0 * (again / (mse - noise).max(again * 1e-4)).log10())
        });
        Some(Fit {
            reblurred_psnr_db,
            contrast_gain,
            score_db: Fit::score(reblurred_psnr_db, contrast_gain),
            explained_db,
        })
    }

    /// The re-blurred PSNR less the contrast gain counted twice in dB (`40 log10`).
    fn score(reblurred_psnr_db: f32, contrast_gain: f32) -> f32 {
        reblurred_psnr_db - 40.0 * contrast_gain.max(1e-6).log10()
    }

    /// True when the restoration explains its input well enough to be kept.
    pub(crate) fn explains_input(&self) -> bool {
        self.reblurred_psnr_db >= LEAST_REBLURRED_PSNR_DB
            && (self.contrast_gain <= CONTRAST_GAIN_CHECKED || self.score_db >= LEAST_FIT_SCORE_DB)
            && self.explained_db.is_none_or(|d| d >= LEAST_EXPLAINED_DB)
    }
}

/// How one channel was restored.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub(crate) struct ChannelReport {
    /// Noise standard deviation measured on this channel (data range 1).
    pub(crate) noise_sigma: f32,
    /// Iterations run: Richardson-Lucy updates or hyper-Laplacian continuation steps; `None`
    /// for Wiener (a closed form) and for an image left unchanged.
    pub(crate) iterations: Option<usize>,
    /// True when Richardson-Lucy's noise rule stopped before the iteration cap.
    pub(crate) stopped_early: bool,
}

impl ChannelReport {
    /// A channel with noise `noise` that no iteration has touched yet.
    fn untouched(noise: f32) -> ChannelReport {
        ChannelReport {
            noise_sigma: noise,
            iterations: None,
            stopped_early: false,
        }
    }
}

impl Deblurred {
    /// True when no blur was found or given (`--psf none`): the image is the input.
    pub fn found_no_blur(&self) -> bool {
        self.estimate.is_some_and(|e| !e.is_blurred()) || self.psf_is_identity
    }

    /// The largest noise level over the channels.
    pub fn noise_sigma(&self) -> f32 {
        self.channels
            .iter()
            .map(|c| c.noise_sigma)
            .fold(0.0, f32::max)
    }
}

impl DeblurConfig {
    /// An error naming the setting that is out of range.
    pub(crate) fn validate(&self) -> Result<()> {
        if !(0.0..=1.0).contains(&self.strength) {
            return Err(Error::InvalidInput(format!(
                "--strength {} is out of range: use a value between 0 and 1",
                self.strength
            )));
        }
        if !(1..=MAX_ITERATIONS).contains(&self.iterations) {
            return Err(Error::InvalidInput(format!(
                "--iterations {} is out of range: use 1 to {MAX_ITERATIONS}",
                self.iterations
            )));
        }
        Ok(())
    }
}

/// Deblurs `img`: the PSF is `config.psf`, or else estimated on the luminance (an image found
/// sharp is returned unchanged; the hyper-Laplacian deconvolves an estimated long line as a
/// family of lines about it); every channel is restored with the same PSF and its own noise
/// level, then blended with its input by `config.strength`.
///
/// A dark image (its brightest value under [`DARK_PEAK`]: an underexposed frame, or 8 or 10
/// bits stored in a 16-bit file) is worked on brought to full range and the result scaled
/// back: the blur estimate, the fit check and the priors all read contrast on the data range
/// of 1, and a sharp camera photo stored at 1/64 of its range read as `gaussian:1.45`.
pub fn deblur(img: &Planes, config: &DeblurConfig) -> Result<Deblurred> {
    config.validate()?;
    img.check()?;
    let peak = img
        .channels()
        .iter()
        .flat_map(|p| p.iter())
        .fold(0.0f32, |m, &v| m.max(v));
    if peak >= DARK_PEAK || peak <= 0.0 {
        return deblur_at_gain(img, config, 1.0);
    }
    let gain = 1.0 / peak;
    let bright = Planes::from_channels(
        img.channels()
            .into_iter()
            .map(|p| p.mapv(|v| v * gain))
            .collect(),
    );
    let mut done = deblur_at_gain(&bright, config, gain)?;
    done.image = if done.unchanged {
        img.clone()
    } else {
        Planes::from_channels(
            done.image
                .channels()
                .into_iter()
                .map(|p| p.mapv(|v| v * peak))
                .collect(),
        )
    };
    for c in &mut done.channels {
        c.noise_sigma *= peak;
    }
    if let Some(e) = done.estimate.as_mut() {
        e.noise_sigma *= peak;
    }
    Ok(done)
}

/// A brightest value under this (data range 1) makes an image dark for [`deblur`].
pub const DARK_PEAK: f32 = 0.5;

/// [`deblur`] on an image whose values were multiplied by `gain` (1 for one at full range):
/// the lossy noise floor is multiplied too.
fn deblur_at_gain(img: &Planes, config: &DeblurConfig, gain: f32) -> Result<Deblurred> {
    let measured = |p: &Plane| -> Plane {
        match config.measure_within {
            Some((top, left, height, width))
                if top
                    .checked_add(height)
                    .is_some_and(|bottom| bottom <= p.nrows())
                    && left
                        .checked_add(width)
                        .is_some_and(|right| right <= p.ncols()) =>
            {
                p.slice(ndarray::s![top..top + height, left..left + width])
                    .to_owned()
            }
            _ => p.clone(),
        }
    };
    // a blind run reads the blur on the luminance, and checks its restoration there
    let input_luma = config.psf.is_none().then(|| measured(&img.luma()));
    let (psf, mut psf_text, estimate, lossy) = match (&config.psf, &input_luma) {
        (Some(spec), _) => {
            let psf = spec.to_psf()?;
            let (kh, kw) = support(psf.kernel());
            let (h, w) = img.dim();
            if kh > h || kw > w {
                return Err(Error::InvalidInput(format!(
                    "the PSF {spec} is {kw}x{kh} pixels, larger than the image ({w}x{h}): a blur wider than the picture cannot be undone; give a smaller PSF"
                )));
            }
            (psf, spec.to_string(), None, config.lossy_source)
        }
        (None, luma) => {
            let luma = luma.as_ref().expect("a blind run measures the luminance");
            let (mut est, lossy) = if config.lossy_source {
                (estimate_blur_compressed(luma), true)
            } else {
                estimate_blur_thorough_as_stored(luma)
            };
            // dithered, posterised or line art: its hard steps between few levels are no blur,
            // though their spectrum can read as one
            if img
                .channels()
                .iter()
                .all(|p| has_few_levels(&measured(p), FEW_LEVELS))
            {
                est.kind = BlurKind::None;
            }
            // a clean gradient or vignette, or one crisp line on one: too few edges to read a
            // blur from, only quantisation steps and a line's width
            let eight_bit = img.channels().iter().all(|p| on_8_bit_grid(p));
            if has_too_few_edges(luma, eight_bit) {
                est.kind = BlurKind::None;
            }
            let text = est
                .to_spec()
                .map(|s| s.to_string())
                .unwrap_or_else(|| "none".into());
            (est.to_psf(), text, Some(est), lossy)
        }
    };
    // nothing to undo: no blur found, a PSF that is no blur (a single pixel, as gaussian:0
    // gives, or nearly one), or a blend that keeps none of the result
    let psf_is_identity = psf.is_identity();
    let mut unchanged =
        estimate.is_some_and(|e| !e.is_blurred()) || psf_is_identity || config.strength == 0.0;
    let family = estimate.and_then(|e| e.psf_family());
    let channels = img.channels();
    let done: Vec<(Plane, ChannelReport)> = channels
        .par_iter()
        .map(|p| {
            let noise = noise_sigma(&measured(p));
            if unchanged {
                return ((*p).clone(), ChannelReport::untouched(noise));
            }
            let noise = if lossy {
                noise.max(LOSSY_NOISE_FLOOR * gain)
            } else {
                noise
            };
            restore_plane(p, &psf, family.as_ref(), config, noise)
        })
        .collect();
    let (planes, mut channels): (Vec<Plane>, Vec<ChannelReport>) = done.into_iter().unzip();
    let mut image = Planes::from_channels(planes);
    // a blind estimate's restoration is kept only when it explains the input
    let mut rejected = None;
    let mut fit = None;
    if let Some(input_luma) = input_luma
        .as_ref()
        .filter(|_| estimate.is_some() && !unchanged)
    {
        let line_noise = estimate
            .filter(|e| e.kind == BlurKind::Motion && e.length >= EXPLAINED_LINE_LENGTH)
            .map(|e| e.noise_sigma);
        fit = Fit::of(input_luma, &measured(&image.luma()), &psf, line_noise);
        // The fit thresholds were set on the default method's restorations: another method's
        // is kept only when the default one's explains the input too (Richardson-Lucy fits a
        // wrong line on a smooth picture closely, and moves its content).
        let default_fit = || {
            let luma = img.luma();
            let noise = noise_sigma(&measured(&luma));
            let noise = if lossy {
                noise.max(LOSSY_NOISE_FLOOR * gain)
            } else {
                noise
            };
            let by_default = DeblurConfig {
                method: Method::Hyper,
                strength: 1.0,
                ..config.clone()
            };
            let (restored, _) = restore_plane(&luma, &psf, family.as_ref(), &by_default, noise);
            Fit::of(input_luma, &measured(&restored), &psf, line_noise)
        };
        let failed = match fit {
            Some(f) if !f.explains_input() => Some(f),
            Some(_) if config.method != Method::Hyper => {
                default_fit().filter(|f| !f.explains_input())
            }
            _ => None,
        };
        if let Some(fit) = failed {
            rejected = Some(Rejected {
                psf: std::mem::replace(&mut psf_text, "none".into()),
                fit,
            });
            image = img.clone();
            unchanged = true;
            for c in &mut channels {
                *c = ChannelReport::untouched(c.noise_sigma);
            }
        }
    }
    Ok(Deblurred {
        image,
        psf_text,
        estimate,
        channels,
        unchanged,
        psf_is_identity,
        lossy,
        rejected,
        fit,
    })
}

/// Rows and columns spanned by a kernel's non-zero weights (a kernel file's zero margins and
/// the zero row or column that centres an even size are no blur).
fn support(kernel: &Plane) -> (usize, usize) {
    let span = |nonzero: Vec<usize>| match (nonzero.first(), nonzero.last()) {
        (Some(first), Some(last)) => last - first + 1,
        _ => 0,
    };
    let rows = kernel
        .outer_iter()
        .enumerate()
        .filter(|(_, r)| r.iter().any(|&v| v > 0.0))
        .map(|(i, _)| i)
        .collect();
    let cols = kernel
        .axis_iter(ndarray::Axis(1))
        .enumerate()
        .filter(|(_, c)| c.iter().any(|&v| v > 0.0))
        .map(|(j, _)| j)
        .collect();
    (span(rows), span(cols))
}

/// Quantisation levels a luminance step between pixels two apart spans to count as an edge for
/// [`has_too_few_edges`]: a clean gradient steps one level at a time.
const LEAST_EDGE_LEVELS: f32 = 4.0;

/// Fewest such steps that give blind deblurring an edge to read...
const FEWEST_EDGE_STEPS: usize = 64;

/// ...and the least share of all pixel pairs two apart they must be: one crisp line or ring on
/// a gradient reads, by its width alone, as a disk or a line of blur along it (0.1% to 0.4%
/// of pairs), while blurred photos keep 3% or more (`src/restore/deblur.rs` tests).
const LEAST_EDGE_SHARE: f64 = 0.01;

/// True when the luminance `plane` of an image has too few pixel pairs, two apart across or
/// down, that differ by [`LEAST_EDGE_LEVELS`] levels of its depth (8 bits when `eight_bit`,
/// every channel's value on the 8-bit grid, else 16): fewer than [`FEWEST_EDGE_STEPS`] or
/// than [`LEAST_EDGE_SHARE`] of the pairs. A sky gradient, a ramp or a vignette, or one crisp
/// line across a gradient: their blur cannot be told, and restoring them only sharpens
/// quantisation steps into stripes or rings the line.
fn has_too_few_edges(plane: &Plane, eight_bit: bool) -> bool {
    let level = if eight_bit { 255.0 } else { 65_535.0 };
    let least_step = LEAST_EDGE_LEVELS / level;
    let (h, w) = plane.dim();
    let pairs = h * w.saturating_sub(2) + w * h.saturating_sub(2);
    let needed = FEWEST_EDGE_STEPS.max((pairs as f64 * LEAST_EDGE_SHARE).ceil() as usize);
    let mut steps = 0;
    for i in 0..h {
        for j in 0..w {
            let v = plane[[i, j]];
            let across = j + 2 < w && (plane[[i, j + 2]] - v).abs() >= least_step;
            let down = i + 2 < h && (plane[[i + 2, j]] - v).abs() >= least_step;
            steps += usize::from(across) + usize::from(down);
            if steps >= needed {
                return false;
            }
        }
    }
    true
}

/// True when every value of `plane` lies on the 8-bit grid.
fn on_8_bit_grid(plane: &Plane) -> bool {
    plane.iter().all(|&v| {
        let level = v * 255.0;
        (level - level.round()).abs() < 1e-3
    })
}

/// Most distinct levels per channel of an image that blind deblurring leaves as it is.
const FEW_LEVELS: usize = 16;

/// True when `plane` holds at most `most` distinct levels, counted at 16 bits (an 8-bit
/// image's levels each stay one).
fn has_few_levels(plane: &Plane, most: usize) -> bool {
    let mut seen = vec![false; 65_536];
    let mut count = 0;
    for &v in plane.iter() {
        let level = (v.clamp(0.0, 1.0) * 65_535.0).round() as usize;
        if !seen[level] {
            seen[level] = true;
            count += 1;
            if count > most {
                return false;
            }
        }
    }
    true
}

/// One channel restored by `config.method`, blended with its input by `config.strength`. The
/// hyper-Laplacian deconvolves with `family` when the estimate gives one.
fn restore_plane(
    p: &Plane,
    psf: &Psf,
    family: Option<&PsfFamily>,
    config: &DeblurConfig,
    noise: f32,
) -> (Plane, ChannelReport) {
    let mut report = ChannelReport::untouched(noise);
    let restored = match config.method {
        Method::Wiener => wiener(
            p,
            psf,
            &WienerParams {
                noise_sigma: Some(noise),
                ..WienerParams::default()
            },
        ),
        Method::Rl => {
            let (out, rl) = richardson_lucy(
                p,
                psf,
                &RlParams {
                    iterations: config.iterations,
                    noise_sigma: Some(noise),
                    stop_at_noise: config.stop_at_noise,
                    ..RlParams::default()
                },
            );
            report.iterations = Some(rl.iterations);
            report.stopped_early = rl.stopped_early;
            out
        }
        Method::Hyper => {
            let params = HyperParams {
                noise_sigma: Some(noise),
                ..HyperParams::default()
            };
            report.iterations = Some(params.beta_steps);
            match family {
                Some(family) => hyper_laplacian_family(p, psf, family, &params),
                None => hyper_laplacian(p, psf, &params),
            }
        }
    };
    (blend(p, restored, config.strength), report)
}

/// `input + strength * (restored - input)`; `restored` itself at strength 1 or more.
pub(crate) fn blend(input: &Plane, restored: Plane, strength: f32) -> Plane {
    if strength >= 1.0 {
        return restored;
    }
    let mut out = input.clone();
    out.zip_mut_with(&restored, |o, &r| *o += strength * (r - *o));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An 8-bit plane of `f(row, col)` (values 0-255).
    fn quantised(h: usize, w: usize, f: impl Fn(f32, f32) -> f32) -> Plane {
        Plane::from_shape_fn((h, w), |(i, j)| {
            (f(i as f32, j as f32).clamp(0.0, 255.0)).round() / 255.0
        })
    }

    /// A clean 8-bit gradient (a sky, a ramp, a vignette) has no edge to read a blur from, only
    /// quantisation steps: a blind run leaves it as it is and says so, whatever the method. The
    /// sky read as a disk of 7.9 px and came out striped (SSIM 0.77 against its input).
    #[test]
    fn a_clean_gradient_is_left_as_it_is_by_every_method() {
        let (h, w) = (240, 320);
        let hf = h as f32;
        let sky = Planes::from_channels(vec![
            quantised(h, w, |i, _| 60.0 + 80.0 * i / hf),
            quantised(h, w, |i, _| 120.0 + 90.0 * i / hf),
            quantised(h, w, |i, _| 220.0 + 30.0 * i / hf),
        ]);
        let ramp = Planes::from_channels(vec![quantised(h, w, |_, j| 255.0 * j / w as f32)]);
        let vignette = Planes::from_channels(vec![quantised(h, w, |i, j| {
            255.0 - (i - hf / 2.0).hypot(j - w as f32 / 2.0)
        })]);
        for (name, img) in [("sky", &sky), ("ramp", &ramp), ("vignette", &vignette)] {
            for method in [Method::Hyper, Method::Rl, Method::Wiener] {
                let config = DeblurConfig {
                    method,
                    ..DeblurConfig::default()
                };
                let done = deblur(img, &config).unwrap();
                assert!(
                    done.unchanged && done.found_no_blur(),
                    "{name} {method:?}: {}",
                    done.psf_text
                );
            }
        }
    }

    /// One crisp line or ring on a colour gradient gives too few edges to read a blur from: its
    /// width alone read as `disk:1.94` (a line of 2 px on a green-to-maroon gradient) or as a
    /// line of blur along it, and the restoration rang.
    #[test]
    fn one_crisp_line_on_a_colour_gradient_is_left_as_it_is() {
        let (h, w) = (480, 640);
        let (top, bottom) = ([146.0, 254.0, 188.0], [80.0, 16.0, 46.0]);
        let drawn = |ink: &dyn Fn(f32, f32) -> bool, colour: [f32; 3]| {
            Planes::from_channels(
                (0..3)
                    .map(|k| {
                        quantised(h, w, |i, j| {
                            if ink(i, j) {
                                colour[k]
                            } else {
                                let t = j / w as f32;
                                top[k] * (1.0 - t) + bottom[k] * t
                            }
                        })
                    })
                    .collect(),
            )
        };
        let across = |width: f32| {
            move |i: f32, j: f32| (128.0..512.0).contains(&j) && (240.0..240.0 + width).contains(&i)
        };
        let ring = |i: f32, j: f32| ((i - 240.0).hypot(j - 320.0) - 100.0).abs() < 1.5;
        let slanted = |i: f32, j: f32| (96.0..384.0).contains(&i) && (i - j * 0.75).abs() < 1.0;
        type Ink<'a> = &'a dyn Fn(f32, f32) -> bool;
        let cases: [(&str, Ink); 5] = [
            ("1 px", &across(1.0)),
            ("2 px", &across(2.0)),
            ("3 px", &across(3.0)),
            ("ring", &ring),
            ("slanted", &slanted),
        ];
        for (name, ink) in cases {
            for colour in [[20.0, 20.0, 20.0], [230.0, 120.0, 40.0]] {
                let done = deblur(&drawn(ink, colour), &DeblurConfig::default()).unwrap();
                assert!(
                    done.unchanged && done.found_no_blur(),
                    "{name} {colour:?}: {}",
                    done.psf_text
                );
            }
        }
    }

    /// A blind estimate the default method's restoration rejects is rejected for Richardson-Lucy
    /// and Wiener too: on a sharp vignette with noise, both kept the line `motion:26.6,65.5`
    /// the default method refused, Richardson-Lucy fitting it closely.
    #[test]
    fn an_estimate_the_default_method_rejects_is_rejected_for_every_method() {
        let (h, w) = (300.0, 400.0);
        let vignette = quantised(300, 400, |i, j| 255.0 - (i - h / 2.0).hypot(j - w / 2.0));
        let noisy = crate::restore::test_util::noisy(&vignette, 2.0 / 255.0, 1)
            .mapv(|v| (v.clamp(0.0, 1.0) * 255.0).round() / 255.0);
        let img = Planes::from_channels(vec![noisy]);
        let hyper = deblur(&img, &DeblurConfig::default()).unwrap();
        assert!(
            hyper.unchanged && hyper.rejected.is_some(),
            "{}",
            hyper.psf_text
        );
        for method in [Method::Rl, Method::Wiener] {
            let config = DeblurConfig {
                method,
                ..DeblurConfig::default()
            };
            let done = deblur(&img, &config).unwrap();
            assert!(
                done.unchanged && done.rejected.is_some(),
                "{method:?}: {}",
                done.psf_text
            );
        }
    }

    #[test]
    fn strength_blends_between_input_and_restored() {
        let input = Plane::from_elem((2, 3), 0.2);
        let restored = Plane::from_elem((2, 3), 0.6);
        assert_eq!(blend(&input, restored.clone(), 1.0), restored);
        assert_eq!(blend(&input, restored.clone(), 0.0), input);
        let half = blend(&input, restored, 0.5);
        assert!(half.iter().all(|&v| (v - 0.4).abs() < 1e-6));
    }

    #[test]
    fn no_blur_and_no_strength_leave_the_image_as_it_is() {
        use crate::restore::test_util::textured;
        let img = Planes::Grey(textured(64, 64));
        let base = DeblurConfig {
            psf: Some(PsfSpec::Gaussian { sigma: 0.0 }),
            iterations: 10,
            ..DeblurConfig::default()
        };
        for config in [
            base.clone(),
            DeblurConfig {
                psf: Some(PsfSpec::Gaussian { sigma: 2.0 }),
                strength: 0.0,
                ..base.clone()
            },
        ] {
            let done = deblur(&img, &config).unwrap();
            assert_eq!(done.image, img, "{config:?}");
            assert!(done.channels.iter().all(|c| c.iterations.is_none()));
        }
    }

    #[test]
    fn a_restoration_with_a_wrong_line_does_not_explain_its_input() {
        use crate::restore::color::gray_to_plane;
        use crate::restore::test_util::noisy;
        let line =
            |length: f32, angle_deg: f32| PsfSpec::Motion { length, angle_deg }.to_psf().unwrap();
        let photo = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/restore/photos/camera.png");
        let sharp = gray_to_plane(&image::open(photo).unwrap().to_luma8());
        let blurred = noisy(&convolve(&sharp, &line(40.0, 10.0)), 0.002, 1);
        let params = HyperParams {
            noise_sigma: Some(0.002),
            ..HyperParams::default()
        };
        for (psf, explains) in [(line(40.0, 10.0), true), (line(44.0, 85.0), false)] {
            let restored = hyper_laplacian(&blurred, &psf, &params);
            let fit = Fit::of(&blurred, &restored, &psf, Some(0.002)).unwrap();
            assert_eq!(fit.explains_input(), explains, "{fit:?}");
        }
        // a right long line explains most of what blurring the input again changes
        let blurred = noisy(&convolve(&sharp, &line(60.0, 40.0)), 0.002, 1);
        let restored = hyper_laplacian(&blurred, &line(60.0, 40.0), &params);
        let fit = Fit::of(&blurred, &restored, &line(60.0, 40.0), Some(0.002)).unwrap();
        assert!(
            fit.explained_db
                .is_some_and(|d| d > 2.0 * LEAST_EXPLAINED_DB),
            "{fit:?}"
        );
        // rocket blurred by a 60 px line at 40 degrees, read at 141.9: the contrast rule keeps
        // it (score 28.5), but it explains less than the input blurred again (5.5 dB under)
        let misread = Fit {
            reblurred_psnr_db: 35.6,
            contrast_gain: 1.51,
            score_db: Fit::score(35.6, 1.51),
            explained_db: Some(2.5),
        };
        assert!(!misread.explains_input(), "{misread:?}");
        assert!(
            Fit {
                explained_db: None,
                ..misread
            }
            .explains_input()
        );
        // a flat image has no contrast to compare
        let flat = Plane::from_elem((32, 32), 0.5);
        assert_eq!(Fit::of(&flat, &flat, &line(5.0, 0.0), None), None);
    }

    #[test]
    fn a_dark_image_is_read_as_at_full_range() {
        use crate::restore::color::gray_to_plane;
        let photo = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/restore/photos/camera.png");
        let sharp = gray_to_plane(&image::open(photo).unwrap().to_luma8());
        let blurred = convolve(&sharp, &PsfSpec::Gaussian { sigma: 2.0 }.to_psf().unwrap());
        // at a peak of 1, 1/64 of it is brought back to full range exactly
        let peak = blurred.fold(0.0f32, |m, &v| m.max(v));
        let blurred = blurred.mapv(|v| v / peak);
        let dark = |p: &Plane| Planes::Grey(p.mapv(|v| v / 64.0));
        let config = DeblurConfig::default();
        // a sharp photo stored at 1/64 of its range read as gaussian:1.45 and was "restored"
        let done = deblur(&dark(&sharp), &config).unwrap();
        assert!(done.unchanged && done.found_no_blur(), "{}", done.psf_text);
        assert_eq!(done.image, dark(&sharp));
        // a blurred one is read as at full range, and restored at its own range
        let full = deblur(&Planes::Grey(blurred.clone()), &config).unwrap();
        let done = deblur(&dark(&blurred), &config).unwrap();
        assert_eq!(done.psf_text, full.psf_text);
        assert!(
            (done.noise_sigma() * 64.0 - full.noise_sigma()).abs() < 1e-4,
            "{} {}",
            done.noise_sigma(),
            full.noise_sigma()
        );
        let Planes::Grey(restored) = &done.image else {
            panic!("grey in, grey out")
        };
        let Planes::Grey(restored_full) = &full.image else {
            panic!("grey in, grey out")
        };
        let largest = restored
            .iter()
            .zip(restored_full.iter())
            .map(|(a, b)| (a * 64.0 - b).abs())
            .fold(0.0f32, f32::max);
        assert!(largest < 1e-3, "{largest}");
    }

    #[test]
    fn out_of_range_settings_are_refused() {
        let config = DeblurConfig {
            method: Method::Wiener,
            iterations: 10,
            strength: 1.5,
            ..DeblurConfig::default()
        };
        assert!(deblur(&Planes::Grey(Plane::zeros((8, 8))), &config).is_err());
        let config = DeblurConfig {
            strength: 1.0,
            iterations: 0,
            ..config
        };
        assert!(config.validate().is_err());
    }

    #[test]
    fn a_psf_spec_out_of_range_is_refused_not_run() {
        let img = Planes::Grey(Plane::from_shape_fn((64, 64), |(r, c)| {
            0.3 + 0.4 * (((r / 8 + c / 8) % 2) as f32)
        }));
        for spec in [
            PsfSpec::Gaussian { sigma: f32::NAN },
            PsfSpec::Disk { radius: f32::NAN },
            PsfSpec::Motion {
                length: f32::INFINITY,
                angle_deg: 0.0,
            },
            PsfSpec::Motion {
                length: 9.0,
                angle_deg: f32::NAN,
            },
        ] {
            let config = DeblurConfig {
                psf: Some(spec.clone()),
                ..DeblurConfig::default()
            };
            match deblur(&img, &config) {
                Err(Error::InvalidInput(m)) => assert!(m.contains("out of range"), "{m}"),
                Err(e) => panic!("{spec}: {e}"),
                Ok(done) => panic!(
                    "{spec}: Ok, {} NaN pixels",
                    done.image.channels()[0]
                        .iter()
                        .filter(|v| v.is_nan())
                        .count()
                ),
            }
        }
    }

    #[test]
    fn a_measuring_box_past_the_image_is_ignored_even_where_its_end_overflows() {
        let img = Planes::Grey(Plane::from_shape_fn((64, 64), |(r, c)| {
            ((r * 7 + c * 3) % 11) as f32 / 11.0
        }));
        let whole = deblur(&img, &DeblurConfig::default()).unwrap();
        for within in [(usize::MAX, 0, 1, 1), (0, 1, 1, usize::MAX), (60, 0, 8, 8)] {
            let config = DeblurConfig {
                measure_within: Some(within),
                ..DeblurConfig::default()
            };
            let done = deblur(&img, &config).unwrap();
            assert_eq!(done.psf_text, whole.psf_text, "{within:?}");
        }
    }

    #[test]
    fn colour_channels_of_different_sizes_are_refused() {
        let p = |h, w| Plane::from_elem((h, w), 0.5);
        let img = Planes::Rgb([p(64, 64), p(32, 48), p(80, 80)]);
        match deblur(&img, &DeblurConfig::default()) {
            Err(Error::InvalidInput(m)) => {
                assert!(m.contains("64x64") && m.contains("48x32"), "{m}")
            }
            other => panic!("{:?}", other.map(|d| d.psf_text)),
        }
    }

    #[test]
    fn each_channel_is_restored_with_its_own_noise_level_and_reported() {
        use crate::restore::fft::convolve;
        use crate::restore::test_util::{noisy, textured};
        let psf = Psf::gaussian_clamped(1.5);
        let sharp = textured(96, 96);
        let blurred = convolve(&sharp, &psf);
        let img = Planes::Rgb([
            noisy(&blurred, 0.002, 1),
            noisy(&blurred, 0.02, 2),
            noisy(&blurred, 0.002, 3),
        ]);
        for method in [Method::Wiener, Method::Rl, Method::Hyper] {
            let config = DeblurConfig {
                psf: Some(PsfSpec::Gaussian { sigma: 1.5 }),
                method,
                iterations: 20,
                ..DeblurConfig::default()
            };
            let done = deblur(&img, &config).unwrap();
            assert_eq!(done.channels.len(), 3);
            let noise: Vec<f32> = done.channels.iter().map(|c| c.noise_sigma).collect();
            assert!(
                noise[1] > 5.0 * noise[0] && noise[1] > 5.0 * noise[2],
                "{noise:?}"
            );
            assert_eq!(done.noise_sigma(), noise[1]);
            for c in &done.channels {
                match method {
                    Method::Wiener => assert_eq!(c.iterations, None),
                    Method::Rl => assert!(c.iterations.is_some_and(|n| n <= 20)),
                    Method::Hyper => assert!(c.iterations.is_some_and(|n| n > 0)),
                }
            }
        }
    }
}
