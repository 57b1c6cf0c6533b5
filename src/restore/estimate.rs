//! Blind blur estimation: Gaussian sigma, defocus (disk) radius, or motion length and angle,
//! from the image alone.
//!
//! Method: a parametric fit of the power spectrum by Whittle's likelihood. A blurred photo's
//! expected periodogram is `S(f, phi) = A(phi) |f|^-gamma |H(f, phi)|^2 + s2`: a power-law scene
//! spectrum (amplitude free per direction, so scene anisotropy such as strong horizontals is not
//! mistaken for blur), the blur's transfer function, and a white noise floor `s2` measured
//! separately (MAD of the finest Laplacian band, see `noise`). The periodogram of the
//! image's *periodic component* (Moisan 2011, which removes the border cross without the
//! spectral smearing of a window) is averaged in 24 directions x 32 radial bins, and each blur
//! family is scored by the Whittle negative log-likelihood `sum n (ln S + I/S)` with `A(phi)`
//! profiled out by Fisher scoring.
//!
//! Why this rather than edge profiles or the cepstrum: edge-width methods need clean isolated
//! step edges and fail on texture; cepstral peaks need deep spectral zeros, which a Gaussian
//! never has and noise fills in. The likelihood uses every frequency, weighs the noise floor
//! correctly (bins at the noise level carry little information instead of producing spurious
//! zeros), handles all three families with one criterion and compares them on the same scale.
//! Motion is found cheaply first: a Gaussian fitted separately in each direction gives
//! `sigma(phi)^2 = s0^2 + (L^2/24)(1 + cos 2(phi - theta))` for a line of length `L`
//! (small-frequency expansion of the sinc), so a linear fit in `cos 2 phi, sin 2 phi` yields an
//! initial angle and length, refined by the full sinc likelihood.
//! The polar bins cannot resolve the comb of zeros of a line longer than about 20 px, which
//! then reads as a short line or none: `deblur`'s estimate looks for such lines in strips of
//! the spectrum at full resolution (`long_motion`).
//! Cost on a 256x171 working plane: two FFTs plus about 250 model evaluations (some 6,000
//! per-direction likelihoods on 32 bins each), about 7 ms on one core of the 2-core machine
//! BENCHMARKS.md describes (`cargo run --release -p lookalike-tools --bin family_costs`): the
//! largest single cost of indexing.

use multiversion::multiversion;
use serde::Serialize;

use super::Plane;
use super::fft::{Fft2, freq_of, psf_spectrum};
use super::noise::noise_sigma;
use super::psf::{Psf, PsfFamily, PsfSpec};

/// Blur family found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BlurKind {
    /// No significant blur.
    None,
    /// Isotropic Gaussian-like blur (soft optics, downsampling, atmospheric).
    Gaussian,
    /// Defocus: a uniform disk.
    Disk,
    /// Linear camera or subject motion.
    Motion,
}

/// Result of blind estimation.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct BlurEstimate {
    /// Which family fits best.
    pub kind: BlurKind,
    /// Best isotropic Gaussian sigma in pixels (always filled; a blur-strength feature).
    pub sigma: f32,
    /// Disk radius in pixels (when `kind` is `Disk`, else 0).
    pub radius: f32,
    /// Motion length in pixels (when `kind` is `Motion`, else 0).
    pub length: f32,
    /// Motion angle in degrees anticlockwise from +x, in [0, 180) (when `Motion`, else 0).
    pub angle_deg: f32,
    /// Estimated noise standard deviation (data range 1).
    pub(crate) noise_sigma: f32,
}

impl BlurEstimate {
    /// The PSF specification, or `None` when no blur was found.
    pub(crate) fn to_spec(self) -> Option<PsfSpec> {
        let r2 = |v: f32| (v * 100.0).round() / 100.0;
        match self.kind {
            BlurKind::None => None,
            BlurKind::Gaussian => Some(PsfSpec::Gaussian {
                sigma: r2(self.sigma),
            }),
            BlurKind::Disk => Some(PsfSpec::Disk {
                radius: r2(self.radius),
            }),
            BlurKind::Motion => Some(PsfSpec::Motion {
                length: r2(self.length),
                angle_deg: r2(self.angle_deg),
            }),
        }
    }

    /// The PSF (a delta when no blur was found).
    pub fn to_psf(&self) -> Psf {
        match self.kind {
            BlurKind::None => Psf::delta(),
            BlurKind::Gaussian => Psf::gaussian_clamped(self.sigma),
            BlurKind::Disk => Psf::disk_clamped(self.radius),
            BlurKind::Motion => Psf::motion_clamped(self.length, self.angle_deg),
        }
    }

    /// The PSFs the blur may be, when the estimate is too coarse to deconvolve with as it
    /// stands: a line longer than [`LONG_MOTION_MIN`], found from its comb of zeros. The
    /// family spans lengths within [`LINE_LENGTH_SPREAD`] (the spread the line model averages)
    /// and angles within `FAMILY_ANGLE_SPREAD / length` radians (each end of the line moves a
    /// quarter pixel across it). On 50 synthetic long lines deblurred blind this gains 0.46 dB
    /// on average over the single line, and on the clock photo it weakens the bands a real
    /// shake leaves at the line's spectral zeros. Shorter lines are estimated closely enough
    /// that a family only softens the result: the length spread alone lost 0.24 dB on the
    /// restoration grid's 15-pixel lines at noise 0.002.
    pub(crate) fn psf_family(&self) -> Option<PsfFamily> {
        if self.kind != BlurKind::Motion || self.length <= LONG_MOTION_MIN {
            return None;
        }
        let angle_spread = (FAMILY_ANGLE_SPREAD / self.length).to_degrees();
        let steps = |n: usize| (0..n).map(move |i| 2.0 * i as f32 / (n - 1) as f32 - 1.0);
        let members: Vec<Psf> = steps(FAMILY_LENGTHS)
            .flat_map(|l| {
                steps(FAMILY_ANGLES).map(move |a| {
                    Psf::motion_clamped(
                        self.length * (1.0 + LINE_LENGTH_SPREAD * l),
                        self.angle_deg + angle_spread * a,
                    )
                })
            })
            .collect();
        Some(PsfFamily::new(&members))
    }

    /// True when some blur was found.
    pub(crate) fn is_blurred(&self) -> bool {
        self.kind != BlurKind::None
    }
}

const NA: usize = 24;
/// Newton steps allowed per likelihood evaluation (the amplitude of a model far from the data
/// may need several clamped steps).
const MAX_NEWTON_STEPS: usize = 12;
const NR: usize = 32;
/// Gaussian sigma below which an image counts as sharp.
pub(crate) const SHARP_SIGMA: f32 = 0.6;
/// Largest side analysed (central crop); larger images cost more without adding accuracy.
const MAX_SIDE: usize = 512;

/// Polar-binned periodogram.
struct Bins {
    /// Frequency count per (angle, radius) bin.
    n: Vec<f32>,
    /// Mean periodogram per bin.
    i: Vec<f32>,
    /// Radial bin centres (cycles/pixel), measured as the mean |f| of the members.
    f: Vec<f32>,
    /// Angle bin centres (radians, [0, pi)).
    phi: Vec<f32>,
    /// Noise floor.
    s2: f32,
    /// `n` and `i` widened once for the likelihood.
    n_f64: Vec<f64>,
    i_f64: Vec<f64>,
    /// The periodogram itself, kept only when asked for.
    power: Option<Periodogram>,
    /// The analysed plane's size.
    dim: (usize, usize),
}

/// The in-band periodogram values of a plane, one per frequency.
struct Periodogram {
    /// The plane's smaller side: frequency samples per cycle along any direction.
    samples: f32,
    /// `(fx, fy, power)` of each in-band frequency with some power.
    freqs: Vec<(f32, f32, f32)>,
    /// The plane's `(rows, cols)`.
    dim: (usize, usize),
}

impl Periodogram {
    /// The frequencies a block codec leaves as the scene's: those under [`LOSSY_BAND`], below
    /// the first harmonic of the 8-pixel block grid (1/8 cycle per pixel) and the band its
    /// coarser quantisation empties.
    fn below_block_grid(&self) -> Periodogram {
        Periodogram {
            samples: self.samples,
            freqs: self
                .freqs
                .iter()
                .copied()
                .filter(|&(fx, fy, _)| fx * fx + fy * fy < LOSSY_BAND * LOSSY_BAND)
                .collect(),
            dim: self.dim,
        }
    }
}

/// Highest frequency (cycles per pixel) a lossy file's long-line search reads.
const LOSSY_BAND: f32 = 0.1;

/// What only the plane's size decides about the binning: each half-spectrum frequency's bin,
/// the periodic-component denominator, and the bins' counts and radial centres. Built once per
/// size; a collection has few sizes.
struct BinLayout {
    /// Bin (`a * NR + r`) of each frequency, or `OUTSIDE_BAND`.
    bin: Vec<u16>,
    /// `2 cos 2 pi fx + 2 cos 2 pi fy - 4`, infinite where it vanishes (no correction there).
    den: Vec<f32>,
    /// Frequency count per bin.
    n: Vec<f32>,
    /// Radial bin centres, the mean |f| of the members.
    f: Vec<f32>,
}

const OUTSIDE_BAND: u16 = u16::MAX;
/// Sizes whose layout is kept (about 130 KB each at the working size).
const LAYOUTS_KEPT: usize = 16;

impl BinLayout {
    /// The layout of an `h x w` plane whose half spectrum has `len` frequencies (cached).
    fn get(h: usize, w: usize, len: usize) -> std::sync::Arc<BinLayout> {
        type Kept = std::sync::Mutex<Vec<((usize, usize), std::sync::Arc<BinLayout>)>>;
        static KEPT: Kept = std::sync::Mutex::new(Vec::new());
        let mut kept = KEPT.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, layout)) = kept.iter().find(|(size, _)| *size == (h, w)) {
            return layout.clone();
        }
        let layout = std::sync::Arc::new(BinLayout::new(h, w, len));
        if kept.len() == LAYOUTS_KEPT {
            kept.remove(0);
        }
        kept.push(((h, w), layout.clone()));
        layout
    }

    fn new(h: usize, w: usize, len: usize) -> BinLayout {
        let fmin = (3.0 / h.min(w) as f32).max(0.015);
        let fmax = 0.5f32;
        let mut n = vec![0f32; NA * NR];
        let mut fsum = vec![0f64; NR];
        let mut fcnt = vec![0f64; NR];
        let (mut bin, mut den) = (vec![OUTSIDE_BAND; len], vec![f32::INFINITY; len]);
        let tau = std::f32::consts::TAU;
        for idx in 0..len {
            let (fy, fx) = freq_of(idx, h, w);
            let fr = (fx * fx + fy * fy).sqrt();
            if fr < fmin || fr >= fmax {
                continue;
            }
            let d = 2.0 * (tau * fx).cos() + 2.0 * (tau * fy).cos() - 4.0;
            if d.abs() > 1e-9 {
                den[idx] = d;
            }
            // half-plane storage: frequencies with fx = 0 or fx = 1/2 appear once, others
            // stand for themselves and their mirror; both land in the same (phi mod pi) bin.
            let mut phi = fy.atan2(fx);
            if phi < 0.0 {
                phi += std::f32::consts::PI;
            }
            let a = ((phi / std::f32::consts::PI * NA as f32) as usize).min(NA - 1);
            let r = (((fr - fmin) / (fmax - fmin) * NR as f32) as usize).min(NR - 1);
            bin[idx] = (a * NR + r) as u16;
            n[a * NR + r] += 1.0;
            fsum[r] += fr as f64;
            fcnt[r] += 1.0;
        }
        let f = fsum
            .iter()
            .zip(&fcnt)
            .enumerate()
            .map(|(r, (&s, &c))| {
                if c > 0.0 {
                    (s / c) as f32
                } else {
                    fmin + (r as f32 + 0.5) * (fmax - fmin) / NR as f32
                }
            })
            .collect();
        BinLayout { bin, den, n, f }
    }
}

impl Bins {
    fn build(plane: &Plane, s2: f32, keep_power: bool) -> Bins {
        let (h, w) = plane.dim();
        let fft = Fft2::get(h, w);
        let data: Vec<f32> = plane.iter().copied().collect();
        let mean = data.iter().map(|&v| v as f64).sum::<f64>() / data.len() as f64;
        let data: Vec<f32> = data.iter().map(|&v| v - mean as f32).collect();
        // periodic component (Moisan): subtract the smooth part driven by border jumps
        let mut v = vec![0f32; h * w];
        for j in 0..w {
            let d = data[(h - 1) * w + j] - data[j];
            v[j] += d;
            v[(h - 1) * w + j] -= d;
        }
        for i in 0..h {
            let d = data[i * w + w - 1] - data[i * w];
            v[i * w] += d;
            v[i * w + w - 1] -= d;
        }
        let u = fft.forward(&data);
        let vs = fft.forward(&v);
        let layout = BinLayout::get(h, w, u.data.len());
        let norm = 1.0 / (h * w) as f32;
        let mut isum = vec![0f64; NA * NR];
        let mut power = keep_power.then(Vec::new);
        for (idx, ((uv, vv), (&bin, &den))) in u
            .data
            .iter()
            .zip(&vs.data)
            .zip(layout.bin.iter().zip(&layout.den))
            .enumerate()
        {
            if bin != OUTSIDE_BAND {
                // an infinite `den` leaves the frequency uncorrected
                let p = *uv - *vv / den;
                let value = p.norm_sqr() * norm;
                isum[usize::from(bin)] += value as f64;
                if let Some(power) = power.as_mut()
                    && value > 0.0
                {
                    let (fy, fx) = freq_of(idx, h, w);
                    power.push((fx, fy, value));
                }
            }
        }
        let n = layout.n.clone();
        let i: Vec<f32> = isum
            .iter()
            .zip(&n)
            .map(|(&s, &c)| if c > 0.0 { (s / c as f64) as f32 } else { 0.0 })
            .collect();
        let phi = (0..NA)
            .map(|a| (a as f32 + 0.5) * std::f32::consts::PI / NA as f32)
            .collect();
        Bins {
            n_f64: n.iter().map(|&c| c as f64).collect(),
            i_f64: i.iter().map(|&v| v as f64).collect(),
            n,
            i,
            f: layout.f.clone(),
            phi,
            s2,
            power: power.map(|freqs| Periodogram {
                samples: h.min(w) as f32,
                freqs,
                dim: (h, w),
            }),
            dim: (h, w),
        }
    }

    /// `|H|^2` of the discrete kernel `psf` averaged over the frequencies of each bin: the
    /// transfer function of a PSF integrated over pixels and sampled, aliases included, which
    /// the continuous models above only approximate near their zeros.
    fn kernel_h2(&self, psf: &Psf) -> Vec<f32> {
        let (h, w) = self.dim;
        let spec = psf_spectrum(psf, h, w);
        let layout = BinLayout::get(h, w, spec.data.len());
        let mut sum = vec![0f64; NA * NR];
        for (c, &bin) in spec.data.iter().zip(&layout.bin) {
            if bin != OUTSIDE_BAND {
                sum[usize::from(bin)] += c.norm_sqr() as f64;
            }
        }
        sum.iter()
            .zip(&self.n)
            .map(|(&s, &c)| if c > 0.0 { (s / c as f64) as f32 } else { 0.0 })
            .collect()
    }

    /// NLL of the scene spectrum `pl` seen through the discrete kernel `psf`.
    fn nll_kernel(&self, pl: &[f32; NR], psf: &Psf) -> f64 {
        let h2 = self.kernel_h2(psf);
        (0..NA)
            .map(|a| {
                let g: [f32; NR] = std::array::from_fn(|r| pl[r] * h2[a * NR + r]);
                self.nll_dir(a, &g)
            })
            .sum()
    }

    /// Whittle NLL of one direction with amplitude profiled out; `g[r]` is the model shape.
    ///
    /// The log-amplitude is solved by Newton's method from the least-squares amplitude, falling
    /// back to Fisher scoring where the observed curvature is not positive: three or four
    /// steps, where Fisher scoring alone used up the six it was allowed. (Starting from the
    /// noise-free Whittle estimate instead, which bins near the noise floor inflate, reached
    /// another stationary point and lost a sigma-3 blur.) The value is a pure function of the
    /// model, as the searches need.
    fn nll_dir(&self, a: usize, g: &[f32]) -> f64 {
        let bins = a * NR..(a + 1) * NR;
        whittle_nll(
            &self.n_f64[bins.clone()],
            &self.i_f64[bins.clone()],
            &self.n[bins.clone()],
            &self.i[bins],
            self.s2,
            g,
        )
    }

    /// NLL of an isotropic model whose radial shape is `g[r]`.
    fn nll_iso(&self, g: &[f32]) -> f64 {
        (0..NA).map(|a| self.nll_dir(a, g)).sum()
    }

    /// True when some bins hold clearly more power than the noise floor: a scene to measure
    /// blur on. (In pure noise each bin's mean scatters about `s2` by `s2 / sqrt(n)`.)
    fn has_scene(&self, s2: f32) -> bool {
        let strong = self
            .i
            .iter()
            .zip(&self.n)
            .filter(|&(&i, &n)| n > 0.0 && i > s2 * (1.0 + 8.0 / n.sqrt()))
            .count();
        strong >= SCENE_BINS
    }

    /// `|H|^2` of a line of length `l` whose attenuation runs along frequency angle `phim`,
    /// averaged over each radial bin of direction `a` (at least 5 angles x 3 radii a bin, more
    /// for a line long enough to put several zeros in one bin).
    fn motion_h2_averaged(&self, a: usize, l: f32, phim: f32) -> [f32; NR] {
        let wedge = std::f32::consts::PI / NA as f32;
        let df = if NR > 1 { self.f[1] - self.f[0] } else { 0.0 };
        // about three samples per period of the comb (zeros 1/l apart) across the bin's width
        // and across its wedge at the highest frequency, and at least 3 radii x 5 angles
        let sub_radii = ((l * df * SAMPLES_PER_ZERO).ceil() as usize).clamp(3, MAX_SUB_SAMPLES);
        let sub_angles =
            ((l * 0.5 * wedge * SAMPLES_PER_ZERO).ceil() as usize).clamp(5, MAX_SUB_SAMPLES);
        let cs: Vec<f32> = (0..sub_angles)
            .map(|k| {
                let off = ((k as f32 + 0.5) / sub_angles as f32 - 0.5) * wedge;
                (self.phi[a] + off - phim).cos()
            })
            .collect();
        std::array::from_fn(|r| {
            let mut acc = 0.0f32;
            for j in 0..sub_radii {
                let f = self.f[r] + ((j as f32 + 0.5) / sub_radii as f32 - 0.5) * df;
                for &c in &cs {
                    acc += sinc(l * f * c).powi(2);
                }
            }
            acc / (sub_angles * sub_radii) as f32
        })
    }

    fn powerlaw(&self, gamma: f32) -> [f32; NR] {
        std::array::from_fn(|r| self.f[r].powf(-gamma))
    }
}

/// Sub-samples per period of a line's comb of zeros when [`Bins::motion_h2_averaged`]
/// averages it over a bin.
const SAMPLES_PER_ZERO: f32 = 3.0;
/// Most sub-samples per bin along each of radius and angle.
const MAX_SUB_SAMPLES: usize = 16;

/// [`Bins::nll_dir`] on one direction's bins: counts and mean periodogram in f64 (`n`, `im`)
/// and f32 (`n32`, `i32`), noise floor `s2`, model shape `g`. Compiled also for AVX2 and chosen
/// at run time (the same operations in the same order, so the same result).
#[multiversion(targets("x86_64+avx2+fma"))]
fn whittle_nll(n: &[f64], im: &[f64], n32: &[f32], i32: &[f32], s2: f32, g: &[f32]) -> f64 {
    let g32 = &g[..NR];
    let g: [f64; NR] = std::array::from_fn(|r| g32[r] as f64);
    let s2_32 = s2;
    let s2 = s2 as f64;
    let (mut num, mut den) = (0.0f64, 0.0f64);
    for r in 0..NR {
        num += n[r] * (im[r] - s2).max(0.0);
        den += n[r] * g[r];
    }
    if den <= 0.0 {
        return f64::INFINITY;
    }
    let mut t = (num / den).max(1e-12).ln();
    // Newton in f32 (vectorised); its result only sets the amplitude, and the likelihood
    // itself is summed in f64 below. Each bin's terms first, then sums in 8 lanes (lane j
    // adds bins j, j + 8, ...).
    let (n32, i32): (&[f32; NR], &[f32; NR]) = (
        n32.try_into().expect("NR bins"),
        i32.try_into().expect("NR bins"),
    );
    let g32: &[f32; NR] = g32.try_into().expect("NR bins");
    for _ in 0..MAX_NEWTON_STEPS {
        let amp = t.exp() as f32;
        let (mut grad_terms, mut fisher_terms, mut hess_terms) =
            ([0.0f32; NR], [0.0f32; NR], [0.0f32; NR]);
        for r in 0..NR {
            let ag = amp * g32[r];
            let s = ag + s2_32;
            let inv = 1.0 / s;
            let w = n32[r] * ag * inv * inv;
            grad_terms[r] = w * (s - i32[r]);
            fisher_terms[r] = w * ag;
            hess_terms[r] = w * (s - i32[r] + ag * (2.0 * i32[r] - s) * inv);
        }
        let sum = |terms: [f32; NR]| {
            let mut lanes = [0.0f32; 8];
            for chunk in terms.chunks_exact(8) {
                for (lane, &v) in lanes.iter_mut().zip(chunk) {
                    *lane += v;
                }
            }
            lanes.iter().map(|&x| x as f64).sum::<f64>()
        };
        let (grad, fisher, hess) = (sum(grad_terms), sum(fisher_terms), sum(hess_terms));
        if fisher <= 0.0 || !fisher.is_finite() {
            break;
        }
        let curvature = if hess > 0.0 { hess } else { fisher };
        let step = (grad / curvature).clamp(-3.0, 3.0);
        t -= step;
        // Newton converges quadratically: after a step under 1e-3 the error left is about
        // 1e-6, worth ~1e-9 in the likelihood
        if step.abs() < 1e-3 {
            break;
        }
    }
    let amp = t.exp();
    let peak = g.iter().fold(0.0f64, |m, &v| m.max(v));
    if !(amp * peak + s2).is_finite() {
        return f64::INFINITY;
    }
    // bins without frequencies have n = 0 and add nothing (every s is >= s2 > 0)
    let mut lanes = [0.0f64; 4];
    for ((nc, ic), gc) in n
        .chunks_exact(4)
        .zip(im.chunks_exact(4))
        .zip(g.chunks_exact(4))
    {
        for j in 0..4 {
            let s = amp * gc[j] + s2;
            lanes[j] += nc[j] * (ln_positive(s) + ic[j] / s);
        }
    }
    lanes.iter().sum()
}

/// Natural logarithm of a positive, finite, normal `x`, without branches so that loops over it
/// vectorise. `x = m 2^k` with `m` in `[sqrt(1/2), sqrt(2))`, and `ln m = 2 atanh(u)`,
/// `u = (m - 1) / (m + 1)`, `|u| < 0.172`, by its series to `u^15` (relative error ~1e-14).
#[inline(always)]
fn ln_positive(x: f64) -> f64 {
    const SQRT_HALF_BITS: u64 = 0x3fe6_a09e_667f_3bcd;
    const MANTISSA: u64 = (1 << 52) - 1;
    let shifted = x.to_bits().wrapping_sub(SQRT_HALF_BITS);
    let k = (shifted as i64 >> 52) as f64;
    let m = f64::from_bits((shifted & MANTISSA) + SQRT_HALF_BITS);
    let u = (m - 1.0) / (m + 1.0);
    let z = u * u;
    let series = 1.0
        + z * (1.0 / 3.0
            + z * (1.0 / 5.0
                + z * (1.0 / 7.0
                    + z * (1.0 / 9.0 + z * (1.0 / 11.0 + z * (1.0 / 13.0 + z / 15.0))))));
    k * std::f64::consts::LN_2 + 2.0 * u * series
}

fn gauss_shape(pl: &[f32; NR], f: &[f32], sigma: f32) -> [f32; NR] {
    let c = 2.0 * std::f32::consts::PI * std::f32::consts::PI * sigma * sigma;
    std::array::from_fn(|r| pl[r] * (-c * 2.0 * f[r] * f[r]).exp())
}

/// Normalised sinc, `sin(pi x) / (pi x)`.
fn sinc(x: f32) -> f32 {
    let a = std::f32::consts::PI * x;
    if a.abs() < 1e-4 { 1.0 } else { a.sin() / a }
}

/// Transfer function of a uniform disk of radius 1 at frequency `u` cycles/pixel
/// (`2 J1(2 pi u) / (2 pi u)`), from a table built once by numerical integration of
/// `(2/pi) int_{-1}^{1} sqrt(1 - x^2) cos(2 pi u x) dx`.
fn disk_h(u: f32) -> f32 {
    const UMAX: f32 = 8.0;
    const N: usize = 4096;
    static TABLE: std::sync::OnceLock<Vec<f32>> = std::sync::OnceLock::new();
    let t = TABLE.get_or_init(|| {
        const M: usize = 512;
        // Midpoint rule in x = sin(t) (smooth at the square-root end points). For each node,
        // cos(2 pi u x) over the evenly spaced u is a rotation by a fixed angle, so the table
        // costs M sin/cos pairs instead of N * M cosines (which made process start-up slow).
        let mut acc = vec![0.0f64; N];
        let du = UMAX as f64 / (N - 1) as f64;
        for k in 0..M {
            let th =
                -std::f64::consts::FRAC_PI_2 + (k as f64 + 0.5) * std::f64::consts::PI / M as f64;
            let (x, c) = th.sin_cos();
            let weight = c * c;
            let (step_sin, step_cos) = (std::f64::consts::TAU * du * x).sin_cos();
            let (mut cos_ux, mut sin_ux) = (1.0f64, 0.0f64);
            for a in acc.iter_mut() {
                *a += weight * cos_ux;
                (cos_ux, sin_ux) = (
                    cos_ux * step_cos - sin_ux * step_sin,
                    sin_ux * step_cos + cos_ux * step_sin,
                );
            }
        }
        acc.iter()
            .map(|a| (a * std::f64::consts::PI / M as f64 * 2.0 / std::f64::consts::PI) as f32)
            .collect()
    });
    let x = (u.abs() / UMAX * (N - 1) as f32).min((N - 1) as f32);
    let i = (x as usize).min(N - 2);
    let f = x - i as f32;
    t[i] + f * (t[i + 1] - t[i])
}

/// Golden-section steps after the grid: the bracket of two grid cells shrinks to 0.618^7 = 3%
/// of its width (0.015 px of sigma, 0.15 degrees of motion angle).
const GOLDEN_STEPS: usize = 7;

/// Minimises `f` over a grid, then refines by golden-section search in the neighbouring cells.
fn grid_then_golden(grid: &[f32], f: &mut impl FnMut(f32) -> f64) -> (f32, f64) {
    let vals: Vec<f64> = grid.iter().map(|&x| f(x)).collect();
    let (bi, _) =
        vals.iter().enumerate().fold(
            (0, f64::INFINITY),
            |b, (i, &v)| if v < b.1 { (i, v) } else { b },
        );
    let lo = grid[bi.saturating_sub(1)];
    let hi = grid[(bi + 1).min(grid.len() - 1)];
    let (mut a, mut b) = (lo, hi);
    let gr = 0.618_034f32;
    let mut c = b - gr * (b - a);
    let mut d = a + gr * (b - a);
    let (mut fc, mut fd) = (f(c), f(d));
    for _ in 0..GOLDEN_STEPS {
        if fc < fd {
            b = d;
            d = c;
            fd = fc;
            c = b - gr * (b - a);
            fc = f(c);
        } else {
            a = c;
            c = d;
            fc = fd;
            d = a + gr * (b - a);
            fd = f(d);
        }
    }
    let (x, v) = if fc < fd { (c, fc) } else { (d, fd) };
    if v < vals[bi] {
        (x, v)
    } else {
        (grid[bi], vals[bi])
    }
}

fn central_crop(plane: &Plane) -> Plane {
    let (h, w) = plane.dim();
    let ch = h.min(MAX_SIDE) & !1;
    let cw = w.min(MAX_SIDE) & !1;
    let (y0, x0) = ((h - ch) / 2, (w - cw) / 2);
    plane
        .slice(ndarray::s![y0..y0 + ch, x0..x0 + cw])
        .to_owned()
}

/// Estimates the blur of a grey plane (values in `[0, 1]`; at least 32x32 pixels to say
/// anything): the fast estimate the indexer stores as a feature.
pub fn estimate_blur(plane: &Plane) -> BlurEstimate {
    estimate(plane, false, false)
}

/// The estimate `deblur` restores with: as [`estimate_blur`], and also motion searched at every
/// angle with its transfer function averaged over each bin (a long line's spectral zeros
/// shift across a bin, which a model sampled at the bin centre puts too deep), a disk that
/// fits its own scene slope and needs a smaller likelihood gain over a Gaussian, and an image
/// with no scene spectrum above its noise, or a motion shorter than the sharpness limit,
/// reported as not blurred; a Gaussian's sigma or a disk's radius is then refined with the
/// transfer function of the discrete kernel itself (on the restoration grid's disks of radius
/// 3 this took the radius read from 2.90-3.01 to 2.96-3.00 and gained 0.57 dB restored).
/// A few times slower (tens of milliseconds).
pub fn estimate_blur_thorough(plane: &Plane) -> BlurEstimate {
    estimate_blur_thorough_as_stored(plane).0
}

/// [`estimate_blur_thorough`], and whether the image was read as a lossy file's: a JPEG decoded
/// and saved losslessly keeps its block grid, whose floor reads as a line of about 50 pixels;
/// such a line on a gridded image is estimated as for a lossy file (and restored as one).
pub(crate) fn estimate_blur_thorough_as_stored(plane: &Plane) -> (BlurEstimate, bool) {
    let (est, disk_gain) = estimate_with_disk_gain(plane, true, false);
    if est.kind == BlurKind::Motion
        && est.length > GRID_LINE_LENGTH
        && block_grid_strength(plane) > GRID_STRENGTH
    {
        return (estimate_blur_compressed(plane), true);
    }
    (checked_by_edges(plane, est, disk_gain, true), false)
}

/// `est`, or the blur its edges show where they overrule it ([`edges_overrule`]): a Gaussian of
/// the edges' width or, when `spectral` and the spectrum prefers it ([`disk_at_edge_width`]), a
/// disk as wide. With `spectral`, a disk kept whose edges are wider than its radius allows is
/// also set to the disk as wide as the edges when that explains the spectrum better.
fn checked_by_edges(
    plane: &Plane,
    mut est: BlurEstimate,
    disk_gain: f64,
    spectral: bool,
) -> BlurEstimate {
    if !matches!(est.kind, BlurKind::Gaussian | BlurKind::Disk) {
        return est;
    }
    let Some(edges) = super::edge_width::edge_blur_sigma(&central_crop(plane)) else {
        return est;
    };
    // a Gaussian barely over the sharp limit on an image whose edges read sharp is the fine
    // texture or the codec's smoothing, not a blur: a sharp photo of gravel halved and saved as
    // JPEG read as gaussian:0.65 (edges 0.20) and was restored from 42.4 to 28.1 dB
    if est.kind == BlurKind::Gaussian && est.sigma < MARGINAL_SIGMA && edges < SHARP_SIGMA {
        est.kind = BlurKind::None;
        return est;
    }
    if edges_overrule(&est, edges, disk_gain) {
        est.kind = BlurKind::Gaussian;
        est.sigma = edges;
        est.radius = 0.0;
        if let Some(radius) = spectral
            .then(|| disk_at_edge_width(plane, edges, None))
            .flatten()
        {
            est.kind = BlurKind::Disk;
            est.radius = radius;
        }
    } else if spectral
        && est.kind == BlurKind::Disk
        && edges > EDGE_DISK_WIDTH.1 * est.radius
        && let Some(radius) = disk_at_edge_width(plane, edges, Some(est.radius))
    {
        est.radius = radius;
    }
    est
}

/// Gaussian sigma under which a spectral reading needs edges that are not sharp to count as
/// blur (see [`checked_by_edges`]).
const MARGINAL_SIGMA: f32 = 0.8;

/// Edge widths of a disk of radius `r`, as a Gaussian's sigma: from `EDGE_DISK_WIDTH.0 * r` to
/// `EDGE_DISK_WIDTH.1 * r` (true disks of radius 3-8 read 0.51-0.66).
const EDGE_DISK_WIDTH: (f32, f32) = (0.45, 0.72);

/// The radius of a disk whose edges are `edges` wide, when the discrete disk explains the
/// spectrum better than the Gaussian of that sigma, or than the disk of radius `other` when
/// given (by [`THOROUGH_DISK_MARGIN`] per frequency, each with its best scene slope). A disk's
/// edges read as wide as a Gaussian's, and a disk deconvolved as that Gaussian has its side lobes
/// inverted: on 128-160 pixel crops, disks of radius 5-6 read by their edges as Gaussians of
/// 2.7-3.4 were restored 4-7 dB under their input; one of radius 5 read by the spectrum as a
/// disk of 2.7 (its edges 2.8 wide), 0.8 dB under.
fn disk_at_edge_width(plane: &Plane, edges: f32, other: Option<f32>) -> Option<f32> {
    let crop = central_crop(plane);
    let noise = noise_sigma(&crop);
    let s2 = (noise * noise).max(1.0 / (255.0f32 * 255.0 * 12.0));
    let bins = Bins::build(&crop, s2, false);
    let (lo, hi) = (edges / EDGE_DISK_WIDTH.1, edges / EDGE_DISK_WIDTH.0);
    let (kh, kw) = Psf::disk_clamped(hi).kernel().dim();
    if kh > bins.dim.0 || kw > bins.dim.1 {
        return None;
    }
    let slopes: Vec<[f32; NR]> = (0..=10)
        .map(|k| bins.powerlaw(1.3 + 0.3 * k as f32))
        .collect();
    // the kernel's likelihood at its best scene slope
    let nll = |psf: &Psf| -> f64 {
        let h2 = bins.kernel_h2(psf);
        slopes
            .iter()
            .map(|pl| {
                (0..NA)
                    .map(|a| {
                        let g: [f32; NR] = std::array::from_fn(|r| pl[r] * h2[a * NR + r]);
                        bins.nll_dir(a, &g)
                    })
                    .sum::<f64>()
            })
            .fold(f64::INFINITY, f64::min)
    };
    let grid: Vec<f32> = (0..=8).map(|k| lo + (hi - lo) * k as f32 / 8.0).collect();
    let (radius, disk) = grid_then_golden(&grid, &mut |r| nll(&Psf::disk_clamped(r)));
    // the best disk at either end of the widths the edges allow is no disk of that width:
    // Gaussians of sigma 2 read so as disks of 2.75-2.77, the least radius, lost 3-5 dB
    if radius < grid[1] || radius > grid[7] {
        return None;
    }
    let rival = match other {
        Some(r) => nll(&Psf::disk_clamped(r)),
        None => nll(&Psf::gaussian_clamped(edges)),
    };
    let nfreq: f64 = bins.n.iter().map(|&c| c as f64).sum::<f64>().max(1.0);
    ((rival - disk) / nfreq > THOROUGH_DISK_MARGIN).then_some(radius)
}

/// Whether the edges' Gaussian width overrules a spectral Gaussian or disk: the spectral
/// reading is far narrower (edges wider by over 1.6 px² in variance), far wider (over 1.3
/// times), or a disk whose edges are as wide as a Gaussian's (over 0.7 of the radius; true
/// disks read 0.51-0.66) unless the spectrum shows the disk clearly (`disk_gain` over
/// [`CLEAR_DISK_GAIN`]). On the restoration grid this takes the blind estimate from 93 to 99
/// of 100 cases found, changing no case found before; an edge reading that would call the
/// image sharp never overrules.
fn edges_overrule(est: &BlurEstimate, edges: f32, disk_gain: f64) -> bool {
    if edges < SHARP_SIGMA {
        return false;
    }
    match est.kind {
        BlurKind::Gaussian => {
            edges * edges - est.sigma * est.sigma > 1.6 || est.sigma > 1.3 * edges
        }
        BlurKind::Disk => edges > 0.7 * est.radius && disk_gain < CLEAR_DISK_GAIN,
        _ => false,
    }
}

/// Lines longer than this (pixels) are checked for a JPEG block grid: the lines JPEG's floor
/// reads are 48-64 pixels; the longest blur of the long-line study is 45.
const GRID_LINE_LENGTH: f32 = 45.0;

/// [`block_grid_strength`] over this shows an 8-pixel grid: PNGs of blurred JPEGs at quality
/// 75-95 measured 1.06-3.1; motion-blurred PNGs of the long-line study 1.00-1.03 at lengths of 45.
const GRID_STRENGTH: f32 = 1.04;

/// How strongly an 8-pixel block grid shows: for rows and for columns, the mean absolute
/// difference between neighbouring pixels at each of the 8 phases, the largest over the median
/// (1 without a grid); the larger of the two.
pub(crate) fn block_grid_strength(plane: &Plane) -> f32 {
    let (h, w) = plane.dim();
    let strength = |sums: [f64; 8]| {
        let mut sorted = sums;
        sorted.sort_by(f64::total_cmp);
        let median = 0.5 * (sorted[3] + sorted[4]);
        if median > 0.0 {
            (sorted[7] / median) as f32
        } else {
            1.0
        }
    };
    if h < 16 || w < 16 {
        return 1.0;
    }
    let (mut across, mut down) = ([0.0f64; 8], [0.0f64; 8]);
    for r in 0..h {
        for c in 0..w {
            let v = plane[[r, c]];
            if c + 1 < w {
                across[c % 8] += f64::from((plane[[r, c + 1]] - v).abs());
            }
            if r + 1 < h {
                down[r % 8] += f64::from((plane[[r + 1, c]] - v).abs());
            }
        }
    }
    // phases hold different counts of differences at the far edge: compare means
    let mean = |sums: [f64; 8], n: usize, per: usize| {
        std::array::from_fn(|k| sums[k] / ((n - k).div_ceil(8) * per).max(1) as f64)
    };
    strength(mean(across, w - 1, h)).max(strength(mean(down, h - 1, w)))
}

/// As [`estimate_blur_thorough`], for an image stored by a lossy block codec (JPEG and the
/// like): a Gaussian or a disk, or a long line found below the block grid's frequencies (see
/// `long_motion`), never a short line. The codec's block edges (horizontal and vertical) and
/// discarded detail leave a high-frequency floor far above the measured noise, stronger along
/// the axes, which the line models explain best. On 5 photos blurred by
/// Gaussians, disks and lines of 15-40 px (noise 0.002) and saved as JPEG at quality 75, 90 and
/// 95, the thorough estimate read lines of 48-63 px in 40 of the 105 cases, and restoring with
/// them took PSNR from 22-35 dB down to 6-14 dB; with lines capped at 20 px, 12 cases still read
/// a line of 19-20 px and lost 15-22 dB. Without lines, none lost more than 0.05 dB. The
/// Gaussian or disk is checked by the edges as the thorough estimate's is: with Gaussians of
/// sigma 3-5 and disks of radius 5 added to those PSFs (165 JPEGs), 11 estimates changed (a
/// Gaussian of sigma 2-3 read as 0.65, or as a disk, now within 8%); restored with the lossy
/// noise floor of `deblur`, none of the 165 lost more than 0.05 dB and the gains summed 59.7 dB
/// (19.0 before both changes).
pub fn estimate_blur_compressed(plane: &Plane) -> BlurEstimate {
    // a codec's block edges make a disk's spectral gain no evidence: the edges decide
    checked_by_edges(plane, estimate(plane, true, true), 0.0, false)
}

fn estimate(plane: &Plane, thorough: bool, lossy: bool) -> BlurEstimate {
    estimate_with_disk_gain(plane, thorough, lossy).0
}

/// [`estimate`], and how much better a disk explains the spectrum than a Gaussian (mean
/// likelihood gain per analysed frequency; 0 when no blur is read).
fn estimate_with_disk_gain(plane: &Plane, thorough: bool, lossy: bool) -> (BlurEstimate, f64) {
    let none = |noise: f32| BlurEstimate {
        kind: BlurKind::None,
        sigma: 0.0,
        radius: 0.0,
        length: 0.0,
        angle_deg: 0.0,
        noise_sigma: noise,
    };
    let (h, w) = plane.dim();
    if h < 32 || w < 32 {
        return (none(0.0), 0.0);
    }
    let crop = central_crop(plane);
    let noise = noise_sigma(&crop);
    // 8-bit quantisation noise is always present: floor the noise power there
    let s2 = (noise * noise).max(1.0 / (255.0f32 * 255.0 * 12.0));
    let bins = Bins::build(&crop, s2, thorough);
    if bins.i.iter().all(|&v| v <= 0.0) || (thorough && !bins.has_scene(s2)) {
        return (none(noise), 0.0);
    }

    // 1. isotropic Gaussian, jointly with the scene spectral slope gamma
    let sig_grid: Vec<f32> = (0..=24).map(|k| k as f32 * 0.25).collect();
    let coarse_sig: Vec<f32> = (0..=12).map(|k| k as f32 * 0.5).collect();
    let gauss_nll = |pl: &[f32; NR], s: f32| bins.nll_iso(&gauss_shape(pl, &bins.f, s));
    let mut coarse = (f64::INFINITY, 2.0f32, 0.0f32);
    for gamma in [1.6f32, 2.2, 2.8, 3.4] {
        let pl = bins.powerlaw(gamma);
        for &s in &coarse_sig {
            let v = gauss_nll(&pl, s);
            if v < coarse.0 {
                coarse = (v, gamma, s);
            }
        }
    }
    // refine within a sigma unit of the coarse optimum: a slope change of 0.3 moves the
    // best sigma far less than that
    let near: Vec<f32> = sig_grid
        .iter()
        .copied()
        .filter(|s| (s - coarse.2).abs() <= 1.0)
        .collect();
    let mut fine = (f64::INFINITY, coarse.1, 0.0f32);
    for gamma in [coarse.1 - 0.3, coarse.1, coarse.1 + 0.3] {
        let pl = bins.powerlaw(gamma);
        let (s, v) = grid_then_golden(&near, &mut |s| gauss_nll(&pl, s));
        if v < fine.0 {
            fine = (v, gamma, s);
        }
    }
    let (nll_g, gamma, sigma) = fine;
    let pl = bins.powerlaw(gamma);

    // 2. disk (defocus): |H| of a uniform disk depends on radius * frequency only
    let disk_nll = |pl: &[f32; NR], r: f32| {
        let g: [f32; NR] = std::array::from_fn(|i| pl[i] * disk_h(r * bins.f[i]).powi(2));
        bins.nll_iso(&g)
    };
    let r_grid: Vec<f32> = (0..=18).map(|k| 1.0 + k as f32 * 0.5).collect();
    // the scene slope was fitted with the Gaussian; the thorough estimate refits it for the disk
    let disk_slopes: &[f32] = if thorough {
        &[-0.6, -0.3, 0.0, 0.3, 0.6]
    } else {
        &[0.0]
    };
    let (mut radius, mut nll_d, mut gamma_d) = (0.0f32, f64::INFINITY, gamma);
    for &dg in disk_slopes {
        let pl_d = bins.powerlaw(gamma + dg);
        let (r, v) = grid_then_golden(&r_grid, &mut |r| disk_nll(&pl_d, r));
        if v < nll_d {
            (radius, nll_d, gamma_d) = (r, v, gamma + dg);
        }
    }

    // 3. motion: a line of length L has |H| = |sinc(L f.d)| along its direction d
    let motion_nll = |l: f32, theta_deg: f32| -> f64 {
        // frequency direction of the attenuation: spatial angle mirrored (rows grow down)
        let phim = -theta_deg.to_radians();
        (0..NA)
            .map(|a| {
                let g: [f32; NR] = if thorough {
                    let h2 = bins.motion_h2_averaged(a, l, phim);
                    std::array::from_fn(|i| pl[i] * h2[i])
                } else {
                    let c = (bins.phi[a] - phim).cos();
                    std::array::from_fn(|i| pl[i] * sinc(l * bins.f[i] * c).powi(2))
                };
                bins.nll_dir(a, &g)
            })
            .sum()
    };
    // a lossy codec's block floor reads as lines: no line is searched for there
    let motion = if lossy {
        None
    } else {
        // initial angle from per-direction Gaussian widths: sigma(phi)^2 = s0^2 +
        // (L^2/24)(1 + cos 2(phi - phim)), a linear fit in cos 2phi and sin 2phi
        let dir_grid: Vec<f32> = (0..=16).map(|k| k as f32 * 0.5).collect();
        // the grid's shapes are the same in every direction
        let dir_shapes: Vec<[f32; NR]> = dir_grid
            .iter()
            .map(|&s| gauss_shape(&pl, &bins.f, s))
            .collect();
        let (mut cc, mut cs) = (0.0f32, 0.0f32);
        for a in 0..NA {
            let (sd, _) = grid_then_golden(&dir_grid, &mut |s| {
                let shape = match dir_grid.iter().position(|&g| g == s) {
                    Some(k) => dir_shapes[k],
                    None => gauss_shape(&pl, &bins.f, s),
                };
                bins.nll_dir(a, &shape)
            });
            let p = bins.phi[a];
            cc += sd * sd * (2.0 * p).cos();
            cs += sd * sd * (2.0 * p).sin();
        }
        let theta_dir = -0.5 * cs.atan2(cc).to_degrees();
        let mut coarse_m = (f64::INFINITY, 0.0f32, 0.0f32);
        let (angle_steps, lengths): (std::ops::RangeInclusive<i32>, &[f32]) = if thorough {
            (
                0..=23,
                &[3.0, 5.0, 7.0, 9.0, 12.0, 15.0, 19.0, 24.0, 30.0, 38.0, 48.0],
            )
        } else {
            (-2..=2, &[3.0, 5.0, 7.0, 9.0, 12.0, 15.0, 19.0, 24.0, 30.0])
        };
        // the thorough estimate searches lines up to a quarter of the analysed side (and keeps
        // none over a sixth: `LINE_SIDE_SHARE`)
        let longest = if thorough {
            crop.dim().0.min(crop.dim().1) as f32 / 4.0
        } else {
            f32::INFINITY
        };
        for k in angle_steps {
            let th = theta_dir + k as f32 * 7.5;
            for &l in lengths.iter().filter(|&&l| l <= longest.max(lengths[0])) {
                let v = motion_nll(l, th);
                if v < coarse_m.0 {
                    coarse_m = (v, l, th);
                }
            }
        }
        let (_, l0, t0) = coarse_m;
        let t_grid: Vec<f32> = (-3..=3).map(|k| t0 + k as f32 * 2.5).collect();
        let (t1, _) = grid_then_golden(&t_grid, &mut |t| motion_nll(l0, t));
        let l_grid: Vec<f32> = (-4..=4)
            .map(|k| (l0 + k as f32 * 1.0).clamp(2.0, longest.max(2.0)))
            .collect();
        let (l1, _) = grid_then_golden(&l_grid, &mut |l| motion_nll(l, t1));
        let (t2, v) = grid_then_golden(&[t1 - 2.0, t1, t1 + 2.0], &mut |t| motion_nll(l1, t));
        let side = crop.dim().0.min(crop.dim().1) as f32;
        let (l1, t2, v) = match bins.power.as_ref().filter(|_| thorough) {
            Some(power) => line_length_at_full_resolution(
                &FineSpectrum::new(power, bins.s2),
                gamma,
                (l1, t2),
                v,
                side / LINE_SIDE_SHARE,
                &motion_nll,
            ),
            None => (l1, t2, v),
        };
        // a line this long for the side is no measurement: the bins of a small image hold too
        // few frequencies to tell its comb from a disk's rings
        if thorough && l1 > side / LINE_SIDE_SHARE {
            None
        } else {
            Some((l1, t2.rem_euclid(180.0), v))
        }
    };

    let mut est = BlurEstimate {
        kind: BlurKind::Gaussian,
        sigma,
        radius: 0.0,
        length: 0.0,
        angle_deg: 0.0,
        noise_sigma: noise,
    };
    // model choice: likelihood differences per analysed frequency, with margins that keep the
    // simplest family unless another explains the spectrum clearly better
    let nfreq: f64 = bins.n.iter().map(|&c| c as f64).sum::<f64>().max(1.0);
    let best_iso = nll_g.min(nll_d);
    let disk_margin = if thorough {
        THOROUGH_DISK_MARGIN
    } else {
        DISK_MARGIN
    };
    if let Some((l, th, v)) = motion
        && (best_iso - v) / nfreq > MOTION_MARGIN
        && !(thorough && l / 12f32.sqrt() < SHARP_SIGMA)
    {
        est.kind = BlurKind::Motion;
        est.length = l;
        est.angle_deg = th;
    } else if (nll_g - nll_d) / nfreq > disk_margin && radius >= 1.5 {
        est.kind = BlurKind::Disk;
        est.radius = radius;
    } else if sigma < SHARP_SIGMA {
        est.kind = BlurKind::None;
    }
    if thorough {
        refine_with_kernel(&bins, &mut est, gamma, gamma_d);
    }
    let lossy_power = bins
        .power
        .as_ref()
        .filter(|_| lossy)
        .map(Periodogram::below_block_grid);
    if let Some(power) = lossy_power.as_ref().or(bins.power.as_ref())
        && let Some((length, angle_deg)) = long_motion(
            power,
            bins.s2,
            gamma,
            &est,
            &motion_nll,
            (!lossy).then(|| (motion.map_or(best_iso, |m| m.2.min(best_iso)), nfreq)),
        )
    {
        est.kind = BlurKind::Motion;
        est.length = length;
        est.angle_deg = angle_deg;
        est.radius = 0.0;
    }
    (est, (nll_g - nll_d) / nfreq)
}

/// The length of the polar bins' line at `angle` (`length`, NLL `polar`), read again by the
/// full-resolution likelihood ([`FineSpectrum`]) over lines from [`SCAN_SHORTEST`] to
/// `longest`: the bins average a line's comb of zeros away, and its envelope reads there much
/// as other lines'. Lines of 16-18 px read as lines of 47-52 px (restored from 23 to 11 dB), or
/// as lines of 2-3 px and the blur missed. A reading within [`LINE_LENGTH_AGREEMENT`] of the
/// bins', or at the scan's short end, is kept as the bins gave it; another is returned with its
/// own polar NLL, which must then beat the isotropic models as the bins' line's had to (a sharp
/// photo of grass, its long line refused as too long for the side, read as a line of 2.8 px
/// when the scan took that line's NLL).
fn line_length_at_full_resolution(
    fine: &FineSpectrum,
    gamma: f32,
    (length, angle): (f32, f32),
    polar: f64,
    longest: f32,
    motion_nll: &dyn Fn(f32, f32) -> f64,
) -> (f32, f32, f64) {
    let gammas = [gamma - 1.0, gamma - 0.5, gamma, gamma + 0.5];
    let grid: Vec<f32> =
        std::iter::successors(Some(SCAN_SHORTEST), |l| Some(l * LENGTH_SCAN_RATIO))
            .take_while(|&l| l <= longest)
            .collect();
    if grid.len() < 3 {
        return (length, angle, polar);
    }
    // the bins' angle can be a few degrees off when their length is
    let mut scanned = (f64::INFINITY, length, angle);
    for step in -LINE_ANGLE_STEPS..=LINE_ANGLE_STEPS {
        let theta = angle + step as f32 * LINE_ANGLE_STEP;
        for &l in &grid {
            // one kernel each here (a third of the cost); the spread of lengths refines below
            let v = fine.best_nll(&[Psf::motion_clamped(l, theta)], &gammas);
            if v < scanned.0 {
                scanned = (v, l, theta);
            }
        }
    }
    let (_, l0, theta) = scanned;
    let (best, _) = grid_then_golden(
        &[l0 / LENGTH_SCAN_RATIO, l0, l0 * LENGTH_SCAN_RATIO],
        &mut |l| fine.line_nll(l, theta, &gammas),
    );
    // a reading at the scan's short end is the bins' to make
    if (best - length).abs() <= LINE_LENGTH_AGREEMENT * length || best < grid[1] {
        return (length, angle, polar);
    }
    let theta = refine_long_angle(fine, gamma, best, theta);
    (best, theta, motion_nll(best, theta))
}

/// The shortest line [`line_length_at_full_resolution`] scans, in pixels.
const SCAN_SHORTEST: f32 = 5.0;

/// Steps either side of the bins' angle, and their size in degrees, at which
/// [`line_length_at_full_resolution`] scans lengths.
const LINE_ANGLE_STEPS: i32 = 2;
const LINE_ANGLE_STEP: f32 = 3.0;

/// Ratio between neighbouring lengths [`line_length_at_full_resolution`] scans.
const LENGTH_SCAN_RATIO: f32 = 1.06;
/// Relative difference within which the full-resolution length agrees with the bins'.
const LINE_LENGTH_AGREEMENT: f32 = 0.1;

/// Refines a Gaussian's sigma or a disk's radius by the likelihood of the discrete kernel
/// `deblur` will divide by (scene slopes `gamma_g` and `gamma_d` as fitted for each).
fn refine_with_kernel(bins: &Bins, est: &mut BlurEstimate, gamma_g: f32, gamma_d: f32) {
    let (value, gamma, kernel): (&mut f32, f32, fn(f32) -> Psf) = match est.kind {
        BlurKind::Gaussian => (&mut est.sigma, gamma_g, Psf::gaussian_clamped),
        BlurKind::Disk => (&mut est.radius, gamma_d, Psf::disk_clamped),
        _ => return,
    };
    let step = REFINE_SPAN * *value;
    let grid = [*value - step, *value, *value + step];
    let (kh, kw) = kernel(grid[2]).kernel().dim();
    if kh > bins.dim.0 || kw > bins.dim.1 {
        return;
    }
    let pl = bins.powerlaw(gamma);
    (*value, _) = grid_then_golden(&grid, &mut |x| bins.nll_kernel(&pl, &kernel(x)));
}

/// The thorough estimate reads no line from the polar bins longer than the analysed plane's
/// smaller side over this: on 128-160 pixel crops, disks of radius 5-6 read as lines of 30-40
/// px (a quarter of the side, the longest searched) and were restored 10-14 dB under the input.
const LINE_SIDE_SHARE: f32 = 6.0;

/// Relative span searched about the continuous model's estimate by [`refine_with_kernel`].
const REFINE_SPAN: f32 = 0.1;

/// Shortest line [`long_motion`] looks for: shorter lines put at least three polar bins
/// between their spectral zeros, which the fit above resolves.
const LONG_MOTION_MIN: f32 = 20.0;
/// Frequency samples between a line's spectral zeros needed to see them (bounds the length).
const LONG_MOTION_SAMPLES_PER_ZERO: f32 = 4.0;
/// Longest line looked for.
const LONG_MOTION_MAX: f32 = 64.0;
/// Step of the directions scanned, in degrees.
const LONG_MOTION_ANGLE_STEP: usize = 2;
/// Directions the strips propose that are refined and compared.
const LONG_MOTION_CANDIDATES: usize = 8;
/// How much worse per frequency than the best model found before a long line may explain the
/// polar bins, which average its comb coarsely. When it was set, the right long lines on 50
/// synthetic cases (20-45 px) and the clock photo scored at most 0.013 worse; the false long
/// lines the strips propose on the Gaussian and 15-pixel cases of the restoration grid, 0.025
/// and more. A right line can score worse than this (0.04 for 40 px on camera) and is missed.
const LONG_MOTION_EXCESS: f64 = 0.015;
/// Half-width of a strip across its direction, in frequency samples.
const STRIP_HALF_WIDTH: f32 = 3.0;
/// Mean per-frequency likelihood gain of the long line over the short one needed to report it.
const LONG_MOTION_MARGIN: f64 = 0.0;

/// Frequencies near one direction binned by their projection on it, one bin per frequency
/// sample: a line blur's transfer `sinc(L u)` depends on that projection `u` alone.
struct Strip {
    /// Frequencies per bin.
    n: Vec<f64>,
    /// Mean periodogram per bin.
    i: Vec<f64>,
    /// Mean projection `|u|` per bin (cycles/pixel).
    u: Vec<f32>,
    /// Mean `|f|` per bin.
    f: Vec<f32>,
}

impl Strip {
    /// The strip of frequencies along the attenuation direction of a line at `theta_deg`
    /// (image angle, anticlockwise from +x), `samples` bins per cycle.
    fn new(freqs: &[(f32, f32, f32)], samples: f32, theta_deg: f32) -> Strip {
        let n_bins = (samples / 2.0) as usize;
        let phim = -theta_deg.to_radians();
        let (sin, cos) = phim.sin_cos();
        let half_width = STRIP_HALF_WIDTH / samples;
        let (mut n, mut i) = (vec![0f64; n_bins], vec![0f64; n_bins]);
        let (mut usum, mut fsum) = (vec![0f64; n_bins], vec![0f64; n_bins]);
        for &(fx, fy, p) in freqs {
            let across = fy * cos - fx * sin;
            if across.abs() > half_width {
                continue;
            }
            let along = (fx * cos + fy * sin).abs();
            let j = (along * samples) as usize;
            if j >= n_bins {
                continue;
            }
            n[j] += 1.0;
            i[j] += p as f64;
            usum[j] += along as f64;
            fsum[j] += (fx * fx + fy * fy).sqrt() as f64;
        }
        let keep: Vec<usize> = (0..n_bins).filter(|&j| n[j] > 0.0).collect();
        Strip {
            i: keep.iter().map(|&j| i[j] / n[j]).collect(),
            u: keep.iter().map(|&j| (usum[j] / n[j]) as f32).collect(),
            f: keep.iter().map(|&j| (fsum[j] / n[j]) as f32).collect(),
            n: keep.iter().map(|&j| n[j]).collect(),
        }
    }

    /// Whittle NLL of the model `A g + s2` with the amplitude `A` profiled out.
    fn nll(&self, s2: f64, g: &[f64]) -> f64 {
        let (mut num, mut den) = (0.0f64, 0.0f64);
        for ((&n, &i), &g) in self.n.iter().zip(&self.i).zip(g) {
            num += n * (i - s2).max(0.0);
            den += n * g;
        }
        if den <= 0.0 {
            return f64::INFINITY;
        }
        let mut t = (num / den).max(1e-12).ln();
        for _ in 0..MAX_NEWTON_STEPS {
            let amp = t.exp();
            let (mut grad, mut fisher) = (0.0f64, 0.0f64);
            for ((&n, &i), &g) in self.n.iter().zip(&self.i).zip(g) {
                let ag = amp * g;
                let s = ag + s2;
                let w = n * ag / (s * s);
                grad += w * (s - i);
                fisher += w * ag;
            }
            if fisher <= 0.0 || !fisher.is_finite() {
                break;
            }
            let step = (grad / fisher).clamp(-3.0, 3.0);
            t -= step;
            if step.abs() < 1e-3 {
                break;
            }
        }
        let amp = t.exp();
        self.n
            .iter()
            .zip(&self.i)
            .zip(g)
            .map(|((&n, &i), &g)| {
                let s = amp * g + s2;
                n * (s.ln() + i / s)
            })
            .sum()
    }

    /// Scene shape `|f|^-gamma` times a transfer `t(u, |f|)`.
    fn shape(&self, gamma: f32, t: impl Fn(f32, f32) -> f32) -> Vec<f64> {
        self.u
            .iter()
            .zip(&self.f)
            .map(|(&u, &f)| (f.powf(-gamma) * t(u, f)) as f64)
            .collect()
    }

    /// `|H|^2` of a line of length `l` along the strip, averaged over each bin's width and
    /// over lengths within [`LINE_LENGTH_SPREAD`], with [`LINE_ENVELOPE_SHARE`] of the power
    /// spread as the sinc's envelope: a real shake is neither exactly straight nor exactly
    /// uniform, and fills its zeros in part.
    fn line_shape(&self, gamma: f32, l: f32, samples: f32) -> Vec<f64> {
        let du = 1.0 / samples;
        self.shape(gamma, |u, _| {
            let mut comb = 0.0;
            for length in [
                l * (1.0 - LINE_LENGTH_SPREAD),
                l,
                l * (1.0 + LINE_LENGTH_SPREAD),
            ] {
                for at in [u - du / 3.0, u, u + du / 3.0] {
                    comb += sinc(length * at).powi(2);
                }
            }
            let envelope = 1.0 / (1.0 + (std::f32::consts::PI * l * u).powi(2) / 2.0);
            (1.0 - LINE_ENVELOPE_SHARE) * comb / 9.0 + LINE_ENVELOPE_SHARE * envelope
        })
    }

    /// Smallest NLL of a line over `lengths` and scene slopes `gammas`: `(nll, length)`.
    fn best_line(
        &self,
        s2: f64,
        gammas: &[f32],
        lengths: impl Iterator<Item = f32> + Clone,
        samples: f32,
    ) -> (f64, f32) {
        let mut best = (f64::INFINITY, 0.0f32);
        for &gamma in gammas {
            for l in lengths.clone() {
                let v = self.nll(s2, &self.line_shape(gamma, l, samples));
                if v < best.0 {
                    best = (v, l);
                }
            }
        }
        best
    }
}

/// Relative spread of the lengths a line model averages.
const LINE_LENGTH_SPREAD: f32 = 0.03;
/// Half the angle a long line's PSF family spans, times the line's length (radians x px).
const FAMILY_ANGLE_SPREAD: f32 = 0.5;
/// Lengths and angles sampled in a long line's PSF family.
const FAMILY_LENGTHS: usize = 7;
const FAMILY_ANGLES: usize = 5;
/// Share of a line model's power given to the sinc's envelope instead of its comb.
const LINE_ENVELOPE_SHARE: f32 = 0.05;

/// A line blur longer than the polar bins resolve, found from its comb of spectral zeros.
///
/// The polar bins are 1/64 cycle/pixel wide, so a line over about 20 px puts its zeros a bin
/// or two apart and only their envelope is left: in every direction but across the line, a
/// sinc's envelope adds 2 to the spectral slope, which a steeper scene explains as well, and
/// a long shake reads as a short line or as no blur. In a strip about the line's direction,
/// binned at the plane's own frequency resolution, the comb shows. Each direction (every
/// [`LONG_MOTION_ANGLE_STEP`] degrees, and the estimate's own if it is a line) is scored by
/// the likelihood gain of the best long line (20 px and up) over the best short one on its
/// strip, both with the scene slope refitted. The best directions are refined by the polar
/// likelihood `motion_nll` at their long line's length, and a line is kept if its strip still
/// prefers it by [`LONG_MOTION_MARGIN`] per frequency and either it explains the polar bins
/// within [`LONG_MOTION_EXCESS`] of `polar_best` (the best model found before and the count
/// of frequencies it was measured on) or the full-resolution likelihood prefers it to any
/// isotropic blur ([`LONG_FINE_GAIN`]); of those kept, the most likely at full resolution is
/// reported. `polar_best` is `None` for a lossy file, whose polar bins hold its block grid:
/// `power` is then its band below the grid ([`Periodogram::below_block_grid`]).
/// Returns `(length, angle in [0, 180))`.
fn long_motion(
    power: &Periodogram,
    s2: f32,
    gamma: f32,
    est: &BlurEstimate,
    motion_nll: &dyn Fn(f32, f32) -> f64,
    polar_best: Option<(f64, f64)>,
) -> Option<(f32, f32)> {
    let samples = power.samples;
    let max_len = (samples / LONG_MOTION_SAMPLES_PER_ZERO).min(LONG_MOTION_MAX);
    if max_len < LONG_MOTION_MIN {
        return None;
    }
    let freqs = &power.freqs;
    let s2 = s2 as f64;
    let gammas = [gamma - 1.0, gamma - 0.5, gamma, gamma + 0.5];
    // gain per frequency of the best long line over the best short one on the strip at
    // `theta`, with the long line's length (refined) and scene slope
    let long_line = |theta: f32| -> Option<(f64, f32)> {
        let strip = Strip::new(freqs, samples, theta);
        let total: f64 = strip.n.iter().sum();
        if total == 0.0 {
            return None;
        }
        let short = (4..(2.0 * LONG_MOTION_MIN) as usize).map(|k| k as f32 * 0.5);
        let (nll_short, _) = strip.best_line(s2, &gammas, short, samples);
        let (mut nll_long, mut l0, mut slope) = (f64::INFINITY, 0.0f32, gamma);
        for &g in &gammas {
            let long = (LONG_MOTION_MIN as usize..=max_len as usize).map(|k| k as f32);
            let (v, l) = strip.best_line(s2, &[g], long, samples);
            if v < nll_long {
                (nll_long, l0, slope) = (v, l, g);
            }
        }
        let (length, v) = grid_then_golden(&[l0 - 1.0, l0, l0 + 1.0], &mut |l| {
            strip.nll(s2, &strip.line_shape(slope, l, samples))
        });
        Some(((nll_short - v.min(nll_long)) / total, length))
    };
    // (direction, gain, length) for each direction scanned
    let scanned: Vec<(f32, f64, f32)> = (0..180 / LONG_MOTION_ANGLE_STEP)
        .filter_map(|k| {
            let theta = (k * LONG_MOTION_ANGLE_STEP) as f32;
            long_line(theta).map(|(gain, length)| (theta, gain, length))
        })
        .collect();
    // local maxima of the gain over direction (circular), best first
    let mut candidates: Vec<(f32, f64, f32)> = scanned
        .iter()
        .enumerate()
        .filter(|&(i, &(_, gain, _))| {
            let n = scanned.len();
            gain > LONG_MOTION_MARGIN
                && gain >= scanned[(i + n - 1) % n].1
                && gain >= scanned[(i + 1) % n].1
        })
        .map(|(_, &c)| c)
        .collect();
    candidates.sort_by(|a, b| b.1.total_cmp(&a.1));
    candidates.truncate(LONG_MOTION_CANDIDATES);
    if est.kind == BlurKind::Motion
        && let Some((gain, length)) = long_line(est.angle_deg)
        && gain > LONG_MOTION_MARGIN
    {
        candidates.push((est.angle_deg, gain, length));
    }
    let fine = FineSpectrum::new(power, s2 as f32);
    let fine_iso = fine.best_isotropic(&gammas);
    let mut best: Option<(f64, f32, f32)> = None;
    for (theta, _, length) in candidates {
        // the polar bins refine the strip's angle; a lossy file's hold its block grid and
        // emptied band, and only the full-resolution likelihood below that band speaks there
        let angle = match polar_best {
            Some(_) => {
                let t_grid: Vec<f32> = (-3..=3).map(|k| theta + k as f32 * 1.5).collect();
                grid_then_golden(&t_grid, &mut |t| motion_nll(length, t)).0
            }
            None => theta,
        };
        let Some((gain, length)) = long_line(angle) else {
            continue;
        };
        let explains_bins = polar_best.is_some_and(|(best_nll, nfreq)| {
            (motion_nll(length, angle) - best_nll) / nfreq <= LONG_MOTION_EXCESS
        });
        let fine_line = fine.line_nll(length, angle, &gammas);
        if gain > LONG_MOTION_MARGIN
            && (explains_bins || fine_iso - fine_line > LONG_FINE_GAIN)
            && best.is_none_or(|b| fine_line < b.0)
        {
            best = Some((fine_line, length, angle));
        }
    }
    best.map(|(_, length, angle)| {
        let angle = refine_long_angle(&fine, gamma, length, angle);
        (length, angle.rem_euclid(180.0))
    })
}

/// Mean per-frequency gain of a long line over no blur or the best Gaussian, by the
/// full-resolution likelihood ([`FineSpectrum`]), that reports it when the polar bins do not.
/// On the blind-estimate benchmark (benches/restore_blind.py) the wrong lines proposed scored
/// at most -0.03 on PNG inputs and -0.47 on JPEG inputs; right lines on JPEG up to +0.39.
const LONG_FINE_GAIN: f64 = 0.0;

/// Refines the angle of a long line found by [`long_motion`] on every in-band frequency at
/// full resolution: the Whittle likelihood `sum ln S + I/S` of `S = A(phi) |f|^-gamma |H|^2 +
/// s2`, `H` the transfer function of the discrete line kernel `deblur` divides by (a continuous
/// sinc misses its steps across the line and read a line at 2 degrees as 1.46), with the scene
/// amplitude `A` profiled in each of [`FINE_DIRECTIONS`] directions ([`FineSpectrum`]). A
/// line's zeros run across its direction at every frequency, and a degree of tilt moves them by a sample or more at the band's edge; the
/// strips see only the frequencies near the line's own direction, where tilt moves them least,
/// and the polar bins average them away. Searched within [`LONG_ANGLE_SPAN`] degrees of `angle`.
/// On the clock photo the strips read 0.54 degrees and this 2.17, near where the restoration's
/// streaks beside the rim are weakest (1.5-2 degrees).
fn refine_long_angle(fine: &FineSpectrum, gamma: f32, length: f32, angle: f32) -> f32 {
    if fine.count == 0 {
        return angle;
    }
    let steps = (LONG_ANGLE_SPAN / LONG_ANGLE_STEP) as i32;
    let grid: Vec<f32> = (-steps..=steps)
        .map(|k| angle + k as f32 * LONG_ANGLE_STEP)
        .collect();
    grid_then_golden(&grid, &mut |t| {
        fine.transfer(&[Psf::motion_clamped(length, t)])
            .map_or(f64::INFINITY, |h2| fine.nll(&h2, gamma))
    })
    .0
}

/// Every in-band frequency of a periodogram at full resolution, grouped in
/// [`FINE_DIRECTIONS`] directions, for the Whittle likelihood of a discrete kernel.
struct FineSpectrum {
    /// `(spectrum index, ln |f|, power)` per direction.
    dirs: Vec<Vec<(usize, f32, f32)>>,
    count: usize,
    s2: f64,
    dim: (usize, usize),
}

impl FineSpectrum {
    fn new(power: &Periodogram, s2: f32) -> FineSpectrum {
        let pi = std::f32::consts::PI;
        let (rows, cols) = power.dim;
        let mut dirs: Vec<Vec<(usize, f32, f32)>> = vec![Vec::new(); FINE_DIRECTIONS];
        for &(fx, fy, p) in &power.freqs {
            let phi = fy.atan2(fx).rem_euclid(pi);
            let d = ((phi / pi * FINE_DIRECTIONS as f32) as usize).min(FINE_DIRECTIONS - 1);
            let f = (fx * fx + fy * fy).sqrt();
            let c = (fx * cols as f32).round() as usize;
            let r = (fy * rows as f32).round().rem_euclid(rows as f32) as usize;
            dirs[d].push((c * rows + r, f.ln(), p));
        }
        let count = dirs.iter().map(Vec::len).sum();
        FineSpectrum {
            dirs,
            count,
            s2: s2 as f64,
            dim: (rows, cols),
        }
    }

    /// `|H|^2` of the discrete kernels `psfs` averaged, on the plane's spectrum.
    fn transfer(&self, psfs: &[Psf]) -> Option<Vec<f32>> {
        let (rows, cols) = self.dim;
        let mut h2: Option<Vec<f32>> = None;
        for psf in psfs {
            let (kh, kw) = psf.kernel().dim();
            if kh > rows || kw > cols {
                return None;
            }
            let h = psf_spectrum(psf, rows, cols);
            let sum = h2.get_or_insert_with(|| vec![0.0; h.data.len()]);
            for (s, v) in sum.iter_mut().zip(&h.data) {
                *s += v.norm_sqr() / psfs.len() as f32;
            }
        }
        h2
    }

    /// Mean per-frequency Whittle NLL of `S = A(phi) |f|^-gamma h2 + s2`, the scene amplitude
    /// `A` profiled per direction.
    fn nll(&self, h2: &[f32], gamma: f32) -> f64 {
        if self.count == 0 {
            return 0.0;
        }
        let s2 = self.s2;
        let mut total = 0.0f64;
        let mut g = Vec::new();
        for dir in &self.dirs {
            g.clear();
            g.extend(
                dir.iter()
                    .map(|&(idx, ln_f, _)| ((-gamma * ln_f).exp() * h2[idx]) as f64),
            );
            let n = dir.len() as f64;
            if n == 0.0 {
                continue;
            }
            let mean_g = g.iter().sum::<f64>() / n;
            let excess = dir.iter().map(|t| (t.2 as f64 - s2).max(0.0)).sum::<f64>() / n;
            let mut a = (excess / mean_g.max(1e-30)).max(1e-30);
            // Newton on the amplitude, each step kept within a tenth of the last amplitude
            for _ in 0..8 {
                let (mut d1, mut d2) = (0.0f64, 0.0f64);
                for (&gi, t) in g.iter().zip(dir) {
                    let s = a * gi + s2;
                    let i = t.2 as f64;
                    d1 += gi / s - i * gi / (s * s);
                    d2 += -gi * gi / (s * s) + 2.0 * i * gi * gi / (s * s * s);
                }
                a = (a - d1 / d2.max(1e-300)).max(0.1 * a);
            }
            total += g
                .iter()
                .zip(dir)
                .map(|(&gi, t)| {
                    let s = a * gi + s2;
                    s.ln() + t.2 as f64 / s
                })
                .sum::<f64>();
        }
        total / self.count as f64
    }

    /// The smallest [`FineSpectrum::nll`] of `psfs` averaged, over scene slopes `gammas`.
    fn best_nll(&self, psfs: &[Psf], gammas: &[f32]) -> f64 {
        let Some(h2) = self.transfer(psfs) else {
            return f64::INFINITY;
        };
        gammas
            .iter()
            .map(|&g| self.nll(&h2, g))
            .fold(f64::INFINITY, f64::min)
    }

    /// A line of `length` at `angle`, its length spread as [`Strip::line_shape`] spreads it.
    fn line_nll(&self, length: f32, angle: f32, gammas: &[f32]) -> f64 {
        let lines: Vec<Psf> = [-LINE_LENGTH_SPREAD, 0.0, LINE_LENGTH_SPREAD]
            .iter()
            .map(|d| Psf::motion_clamped(length * (1.0 + d), angle))
            .collect();
        self.best_nll(&lines, gammas)
    }

    /// The smallest NLL of an isotropic blur: no blur or a Gaussian.
    fn best_isotropic(&self, gammas: &[f32]) -> f64 {
        let mut best = self.best_nll(&[Psf::delta()], gammas);
        for k in 1..=8 {
            best = best.min(self.best_nll(&[Psf::gaussian_clamped(k as f32 * 0.5)], gammas));
        }
        best
    }
}

/// Directions in which [`refine_long_angle`] profiles the scene amplitude.
const FINE_DIRECTIONS: usize = 48;
/// Degrees either side of the strips' angle that [`refine_long_angle`] searches, and its grid.
const LONG_ANGLE_SPAN: f32 = 3.0;
const LONG_ANGLE_STEP: f32 = 0.5;

/// Bins above the noise floor needed to measure blur at all (of 768).
const SCENE_BINS: usize = 8;
/// Mean per-frequency likelihood gain needed to prefer motion over an isotropic blur.
const MOTION_MARGIN: f64 = 0.0;
/// A disk's likelihood gain over a Gaussian above which edges do not overrule it: defocus of
/// radius 3-10 on the restoration grid's photos gains 0.03-0.19 (a soft scene's edges read as
/// wide as 0.9 of the radius at radius 6-8, as a Gaussian's would), the Gaussians the spectrum
/// misreads as disks 0.004-0.007.
const CLEAR_DISK_GAIN: f64 = 0.02;
/// Mean per-frequency likelihood gain needed to prefer a disk over a Gaussian.
const DISK_MARGIN: f64 = 0.03;
/// The same for the thorough estimate, whose disk also fits its own scene slope: on noisy
/// defocus (noise 0.01) the disk's gain falls to 0.005-0.01, on Gaussian blur it stays under
/// about 0.004 but for scenes that are mostly flat sky.
const THOROUGH_DISK_MARGIN: f64 = 0.004;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_block_grid_shows_and_smooth_images_do_not() {
        let mut rng = crate::rng::SplitMix64::new(7);
        let smooth = Plane::from_shape_fn((256, 256), |_| 0.5 + 0.1 * rng.uniform() as f32);
        assert!(block_grid_strength(&smooth) < GRID_STRENGTH);
        // the same with a step every 8 columns, as JPEG blocks leave
        let gridded = Plane::from_shape_fn((256, 256), |(r, c)| {
            smooth[[r, c]] + if (c / 8) % 2 == 0 { 0.03 } else { -0.03 }
        });
        assert!(block_grid_strength(&gridded) > 1.5);
    }
    use crate::restore::fft::convolve;
    use crate::restore::test_util::{dead_leaves, noisy};

    fn blurred(psf: &Psf) -> Plane {
        let img = dead_leaves(256, 256, 3);
        noisy(&convolve(&img, psf), 0.002, 5)
    }

    #[test]
    fn branch_free_log_matches_ln() {
        let mut x = 1e-300f64;
        while x < 1e300 {
            // either side of the sqrt(2) seam where the exponent k steps
            let seam = std::f64::consts::SQRT_2;
            for f in [
                1.0,
                1.234_567,
                seam * (1.0 - 1e-9),
                seam * (1.0 + 1e-9),
                1.9999,
            ] {
                let v = x * f;
                let (want, got) = (v.ln(), ln_positive(v));
                assert!(
                    (want - got).abs() <= 1e-13 * want.abs().max(1.0),
                    "{v}: {got} vs {want}"
                );
            }
            x *= 3.7;
        }
        assert_eq!(ln_positive(1.0), 0.0);
    }

    #[test]
    fn disk_transfer_matches_bessel_values() {
        // 2 J1(z) / z at z = 2 pi u; J1 values from Abramowitz & Stegun table 9.1.
        for (z, j1) in [
            (1.0f64, 0.440_050_585_7),
            (std::f64::consts::PI, 0.284_615_343_2),
            (5.0, -0.327_579_137_6),
            (20.0, 0.066_833_124_6),
        ] {
            let u = (z / std::f64::consts::TAU) as f32;
            let want = 2.0 * j1 / z;
            let got = disk_h(u) as f64;
            assert!((got - want).abs() < 2e-4, "z {z}: {got} vs {want}");
        }
        assert!((disk_h(0.0) - 1.0).abs() < 1e-6);
    }

    #[test]
    fn sharp_image_reports_no_blur() {
        let e = estimate_blur(&noisy(&dead_leaves(256, 256, 3), 0.002, 5));
        assert_eq!(e.kind, BlurKind::None, "{e:?}");
        assert!(e.to_spec().is_none());
    }

    #[test]
    fn gaussian_sigma_is_recovered() {
        for s in [1.0f32, 2.0, 3.0] {
            let e = estimate_blur(&blurred(&Psf::gaussian_clamped(s)));
            assert_eq!(e.kind, BlurKind::Gaussian, "{e:?}");
            assert!((e.sigma - s).abs() <= 0.25 * s, "sigma {s}: {e:?}");
        }
    }

    #[test]
    fn disk_and_motion_are_recovered() {
        let e = estimate_blur(&blurred(&Psf::disk_clamped(4.0)));
        assert_eq!(e.kind, BlurKind::Disk, "{e:?}");
        assert!((e.radius - 4.0).abs() <= 0.5, "{e:?}");
        for angle in [30.0f32, 90.0, 150.0] {
            let e = estimate_blur(&blurred(&Psf::motion_clamped(9.0, angle)));
            assert_eq!(e.kind, BlurKind::Motion, "{e:?}");
            // length: only a lower bound is enforced here (see the module limits)
            assert!(e.length >= 3.0 && e.length <= 12.0, "{e:?}");
            let d = (e.angle_deg - angle).rem_euclid(180.0);
            assert!(d.min(180.0 - d) <= 5.0, "{e:?}");
            let spec = e.to_spec().unwrap();
            assert!(matches!(spec, PsfSpec::Motion { .. }));
        }
    }

    #[test]
    fn a_long_line_just_off_the_axes_is_read_to_half_a_degree() {
        let img = dead_leaves(300, 400, 3);
        for angle in [2.0f32, 91.5] {
            let b = noisy(&convolve(&img, &Psf::motion_clamped(36.0, angle)), 0.002, 5);
            let e = estimate_blur_thorough(&b);
            assert_eq!(e.kind, BlurKind::Motion, "{e:?}");
            let d = (e.angle_deg - angle).rem_euclid(180.0);
            assert!(d.min(180.0 - d) <= 0.5, "{angle}: {e:?}");
        }
    }

    #[test]
    fn the_thorough_estimate_finds_long_motion_and_no_blur_in_noise() {
        let img = dead_leaves(384, 384, 3);
        for (angle, noise) in [(30.0f32, 0.002f32), (120.0, 0.01)] {
            let b = noisy(&convolve(&img, &Psf::motion_clamped(15.0, angle)), noise, 5);
            let e = estimate_blur_thorough(&b);
            assert_eq!(e.kind, BlurKind::Motion, "{e:?}");
            assert!((e.length - 15.0).abs() <= 2.25, "{e:?}");
            let d = (e.angle_deg - angle).rem_euclid(180.0);
            assert!(d.min(180.0 - d) <= 10.0, "{e:?}");
        }
        // refined with the discrete kernel, the radius is read to 1%
        for radius in [3.0f32, 4.5] {
            let e = estimate_blur_thorough(&blurred(&Psf::disk_clamped(radius)));
            assert_eq!(e.kind, BlurKind::Disk, "{e:?}");
            assert!((e.radius - radius).abs() <= 0.01 * radius, "{e:?}");
        }
        for sigma in [0.02f32, 0.1] {
            let pure_noise = noisy(&Plane::from_elem((256, 256), 0.5), sigma, 9);
            let e = estimate_blur_thorough(&pure_noise);
            assert_eq!(e.kind, BlurKind::None, "noise {sigma}: {e:?}");
        }
        let sharp = noisy(&dead_leaves(256, 256, 3), 0.002, 5);
        assert_eq!(estimate_blur_thorough(&sharp).kind, BlurKind::None);
    }

    /// `plane` saved as a JPEG of `quality` and decoded again.
    fn through_jpeg(plane: &Plane, quality: u8) -> Plane {
        let (h, w) = plane.dim();
        let grey = image::GrayImage::from_fn(w as u32, h as u32, |x, y| {
            image::Luma([(plane[[y as usize, x as usize]].clamp(0.0, 1.0) * 255.0).round() as u8])
        });
        let mut bytes = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, quality)
            .encode_image(&grey)
            .unwrap();
        let back = image::load_from_memory(&bytes).unwrap().to_luma8();
        Plane::from_shape_fn((h, w), |(y, x)| {
            f32::from(back.get_pixel(x as u32, y as u32)[0]) / 255.0
        })
    }

    fn camera() -> Plane {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/restore/photos/camera.png"
        );
        let grey = image::open(path).unwrap().to_luma8();
        let (w, h) = grey.dimensions();
        Plane::from_shape_fn((h as usize, w as usize), |(y, x)| {
            f32::from(grey.get_pixel(x as u32, y as u32)[0]) / 255.0
        })
    }

    #[test]
    fn a_line_of_16_to_18_px_is_read_at_its_length_not_as_a_multiple_or_missed() {
        let sharp = camera();
        for (length, angle, seed) in [(16.0, 30.0, 1), (17.0, 60.0, 2), (17.0, 90.0, 3)] {
            let b = noisy(
                &convolve(&sharp, &Psf::motion_clamped(length, angle)),
                0.002,
                seed,
            );
            let e = estimate_blur_thorough(&b);
            assert_eq!(e.kind, BlurKind::Motion, "motion:{length},{angle}: {e:?}");
            assert!(
                (e.length - length).abs() <= 0.15 * length,
                "motion:{length},{angle}: {e:?}"
            );
            let d = (e.angle_deg - angle).rem_euclid(180.0);
            assert!(d.min(180.0 - d) <= 10.0, "motion:{length},{angle}: {e:?}");
        }
    }

    #[test]
    fn a_marginal_gaussian_on_sharp_edges_is_no_blur() {
        let sharp = dead_leaves(256, 256, 3);
        let reading = |sigma: f32| BlurEstimate {
            kind: BlurKind::Gaussian,
            sigma,
            radius: 0.0,
            length: 0.0,
            angle_deg: 0.0,
            noise_sigma: 0.002,
        };
        let e = checked_by_edges(&sharp, reading(0.65), 0.0, false);
        assert_eq!(e.kind, BlurKind::None, "{e:?}");
        // edges as wide as the blur keep it
        let soft = convolve(&sharp, &Psf::gaussian_clamped(1.0));
        let e = checked_by_edges(&soft, reading(0.75), 0.0, false);
        assert_eq!(e.kind, BlurKind::Gaussian, "{e:?}");
    }

    #[test]
    fn a_long_line_is_found_in_a_jpeg_and_a_gaussian_is_not_read_as_one() {
        let img = dead_leaves(384, 384, 3);
        let line = noisy(&convolve(&img, &Psf::motion_clamped(30.0, 60.0)), 0.002, 5);
        let e = estimate_blur_compressed(&through_jpeg(&line, 90));
        assert_eq!(e.kind, BlurKind::Motion, "{e:?}");
        assert!((e.length - 30.0).abs() <= 4.5, "{e:?}");
        let d = (e.angle_deg - 60.0).rem_euclid(180.0);
        assert!(d.min(180.0 - d) <= 10.0, "{e:?}");
        for quality in [75, 90, 95] {
            let soft = noisy(&convolve(&img, &Psf::gaussian_clamped(2.0)), 0.002, 5);
            let e = estimate_blur_compressed(&through_jpeg(&soft, quality));
            assert_ne!(e.kind, BlurKind::Motion, "quality {quality}: {e:?}");
        }
    }
}
