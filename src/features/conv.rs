//! The `conv` family: a GIST-like bank of log-Gabor filters (several scales and orientations)
//! convolved over luminance in the frequency domain, rectified and pooled on a spatial grid.
//!
//! The luminance is resized to a fixed square, normalised to zero mean and unit variance
//! (so brightness and contrast changes cancel), and its borders are tapered so the circular
//! FFT convolution does not see a seam. Each filter is one-sided in orientation, so its response
//! is complex (analytic) and its modulus is a phase-free local energy. Energies are averaged per
//! grid cell, square-rooted (power normalisation) and the whole vector L2-normalised.

use multiversion::multiversion;
use std::f32::consts::PI;
use std::sync::{Arc, OnceLock};

use ndarray::Array2;
use rustfft::num_complex::Complex32;
use rustfft::{Fft, FftPlanner};

use super::{Extractor, FeatureInput, l2_normalize};

/// Parameters of the filter bank.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct FilterBank {
    /// Side of the square the luminance is resized to (a power of two).
    pub(crate) size: usize,
    /// Number of scales (centre frequencies halve from 0.25 cycles/pixel).
    pub(crate) scales: usize,
    /// Number of orientations over 180 degrees.
    pub(crate) orientations: usize,
    /// Pooling grid is `grid` x `grid`.
    pub(crate) grid: usize,
}

impl Default for FilterBank {
    fn default() -> Self {
        FilterBank {
            size: 128,
            scales: 4,
            orientations: 6,
            grid: 4,
        }
    }
}

/// Forward and inverse FFT plans for a square of side `n`.
struct Plans {
    n: usize,
    fwd: Arc<dyn Fft<f32>>,
    inv: Arc<dyn Fft<f32>>,
}

impl Plans {
    fn new(n: usize) -> Self {
        let mut planner = FftPlanner::new();
        Plans {
            n,
            fwd: planner.plan_fft_forward(n),
            inv: planner.plan_fft_inverse(n),
        }
    }

    /// In-place 2-D FFT of an `n` x `n` row-major buffer, leaving the result transposed
    /// (rows, transpose, rows: one transpose instead of two). The forward transform of an
    /// image gives its spectrum indexed `[fx][fy]`; the inverse of such a spectrum gives the
    /// image back in its natural `[y][x]` layout.
    fn fft2_transposed(&self, data: &mut [Complex32], inverse: bool) {
        let n = self.n;
        let plan = if inverse { &self.inv } else { &self.fwd };
        let mut scratch = vec![Complex32::default(); plan.get_inplace_scratch_len()];
        plan.process_with_scratch(data, &mut scratch);
        transpose(data, n);
        plan.process_with_scratch(data, &mut scratch);
    }
}

/// Sum of the moduli of a run of complex values, in eight independent lanes (vectorised).
#[inline(always)]
fn modulus_sum(values: &[Complex32]) -> f32 {
    let mut lanes = [0.0f32; 8];
    let mut chunks = values.chunks_exact(8);
    for chunk in &mut chunks {
        for (lane, v) in lanes.iter_mut().zip(chunk) {
            *lane += (v.re * v.re + v.im * v.im).sqrt();
        }
    }
    let tail: f32 = chunks.remainder().iter().map(|v| v.norm_sqr().sqrt()).sum();
    lanes.iter().sum::<f32>() + tail
}

/// `work = spectrum * filter`, element by element. Compiled also for AVX2 and chosen at run
/// time (the same operations, so the same result), as is `pool_moduli`.
#[multiversion(targets("x86_64+avx2+fma"))]
fn apply_filter(work: &mut [Complex32], spectrum: &[Complex32], filter: &[f32]) {
    for ((w, s), g) in work.iter_mut().zip(spectrum).zip(filter) {
        *w = s * *g;
    }
}

/// Adds `norm` times the moduli of each grid cell of the `n x n` response to `pooled`.
#[multiversion(targets("x86_64+avx2+fma"))]
fn pool_moduli(work: &[Complex32], n: usize, grid: usize, norm: f32, pooled: &mut [f32]) {
    let cell = n / grid;
    for (y, row) in work.chunks_exact(n).enumerate() {
        let cy = (y / cell).min(grid - 1);
        for cx in 0..grid {
            // the last cell also takes the columns left over when grid does not divide n
            let end = if cx + 1 == grid { n } else { (cx + 1) * cell };
            pooled[cy * grid + cx] += modulus_sum(&row[cx * cell..end]) * norm;
        }
    }
}

fn transpose(data: &mut [Complex32], n: usize) {
    for y in 0..n {
        for x in (y + 1)..n {
            data.swap(y * n + x, x * n + y);
        }
    }
}

/// Bilinear resampling of a plane to `n` x `n` (area-averaged first when shrinking a lot); an
/// empty plane resamples to black.
pub(crate) fn resample_square(plane: &Array2<f32>, n: usize) -> Array2<f32> {
    if plane.is_empty() {
        return Array2::zeros((n, n));
    }
    let (h, w) = plane.dim();
    let mut src = plane.clone();
    // Box-filter by 2 until within a factor of 2 of the target, to avoid aliasing.
    while src.nrows() >= 2 * n && src.ncols() >= 2 * n {
        let (sh, sw) = (src.nrows() / 2, src.ncols() / 2);
        src = Array2::from_shape_fn((sh, sw), |(y, x)| {
            0.25 * (src[[2 * y, 2 * x]]
                + src[[2 * y + 1, 2 * x]]
                + src[[2 * y, 2 * x + 1]]
                + src[[2 * y + 1, 2 * x + 1]])
        });
    }
    let _ = (h, w);
    let (sh, sw) = src.dim();
    Array2::from_shape_fn((n, n), |(y, x)| {
        let fy = ((y as f32 + 0.5) * sh as f32 / n as f32 - 0.5).clamp(0.0, (sh - 1) as f32);
        let fx = ((x as f32 + 0.5) * sw as f32 / n as f32 - 0.5).clamp(0.0, (sw - 1) as f32);
        let (y0, x0) = (fy.floor() as usize, fx.floor() as usize);
        let (y1, x1) = ((y0 + 1).min(sh - 1), (x0 + 1).min(sw - 1));
        let (ty, tx) = (fy - y0 as f32, fx - x0 as f32);
        let top = src[[y0, x0]] * (1.0 - tx) + src[[y0, x1]] * tx;
        let bottom = src[[y1, x0]] * (1.0 - tx) + src[[y1, x1]] * tx;
        top * (1.0 - ty) + bottom * ty
    })
}

/// The precomputed filters of one bank configuration.
struct Bank {
    plans: Plans,
    /// Transfer functions, `scales * orientations` of them, each `size * size`, indexed
    /// `[fx][fy]` like the spectra `Plans::fft2_transposed` makes.
    filters: Vec<Vec<f32>>,
    /// Border taper window.
    taper: Vec<f32>,
}

impl Bank {
    fn new(cfg: &FilterBank) -> Self {
        let n = cfg.size;
        let mut filters = Vec::with_capacity(cfg.scales * cfg.orientations);
        // Log-Gabor: radial bandwidth sigma ratio 0.55 (about two octaves), angular spread
        // matched to the orientation spacing so the bank tiles the plane.
        let sigma_ratio_ln = 0.55f32.ln();
        let angle_step = PI / cfg.orientations as f32;
        let sigma_theta = angle_step / 1.2;
        for s in 0..cfg.scales {
            let f0 = 0.25 / 2f32.powi(s as i32);
            for o in 0..cfg.orientations {
                let theta0 = o as f32 * angle_step;
                let mut g = vec![0.0f32; n * n];
                for v in 0..n {
                    let fy = if v < n / 2 {
                        v as f32
                    } else {
                        v as f32 - n as f32
                    } / n as f32;
                    for u in 0..n {
                        let fx = if u < n / 2 {
                            u as f32
                        } else {
                            u as f32 - n as f32
                        } / n as f32;
                        let f = (fx * fx + fy * fy).sqrt();
                        if f == 0.0 {
                            continue;
                        }
                        let radial =
                            (-(f / f0).ln().powi(2) / (2.0 * sigma_ratio_ln.powi(2))).exp();
                        let theta = fy.atan2(fx);
                        let d = (theta - theta0 + PI).rem_euclid(2.0 * PI) - PI;
                        let angular = (-(d * d) / (2.0 * sigma_theta * sigma_theta)).exp();
                        g[u * n + v] = radial * angular;
                    }
                }
                filters.push(g);
            }
        }
        let border = n / 16;
        let edge = |i: usize| -> f32 {
            let d = i.min(n - 1 - i);
            if d >= border {
                1.0
            } else {
                0.5 - 0.5 * (PI * (d as f32 + 0.5) / border as f32).cos()
            }
        };
        let mut taper = vec![0.0f32; n * n];
        for y in 0..n {
            for x in 0..n {
                taper[y * n + x] = edge(y) * edge(x);
            }
        }
        Bank {
            plans: Plans::new(n),
            filters,
            taper,
        }
    }
}

fn default_bank() -> &'static Bank {
    static BANK: OnceLock<Bank> = OnceLock::new();
    BANK.get_or_init(|| Bank::new(&FilterBank::default()))
}

impl FilterBank {
    /// Filter-bank energies of a luminance plane, pooled on the grid, power- and L2-normalised.
    pub(crate) fn describe(&self, luma: &Array2<f32>) -> Vec<f32> {
        let owned;
        let bank = if *self == FilterBank::default() {
            default_bank()
        } else {
            owned = Bank::new(self);
            &owned
        };
        let n = self.size;
        let img = resample_square(luma, n);
        let mean = img.mean().unwrap_or(0.0);
        let var = img.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / (n * n) as f32;
        if var < 1e-8 {
            // A flat image has no texture: the zero vector (fusion leaves it at zero).
            return vec![0.0; self.dim()];
        }
        let inv_std = 1.0 / var.sqrt();
        let mut spectrum: Vec<Complex32> = img
            .iter()
            .zip(&bank.taper)
            .map(|(v, t)| Complex32::new((v - mean) * inv_std * t, 0.0))
            .collect();
        bank.plans.fft2_transposed(&mut spectrum, false);
        let cell = n / self.grid;
        let cells = self.grid * self.grid;
        let mut out = vec![0.0f32; bank.filters.len() * cells];
        let mut work = vec![Complex32::default(); n * n];
        let norm = 1.0 / (n * n) as f32;
        for (fi, filter) in bank.filters.iter().enumerate() {
            apply_filter(&mut work, &spectrum, filter);
            bank.plans.fft2_transposed(&mut work, true);
            pool_moduli(
                &work,
                n,
                self.grid,
                norm,
                &mut out[fi * cells..(fi + 1) * cells],
            );
        }
        let per_cell = 1.0 / (cell * cell) as f32;
        out.iter_mut().for_each(|v| *v = (*v * per_cell).sqrt());
        l2_normalize(&mut out);
        out
    }
}

impl Extractor for FilterBank {
    fn family(&self) -> &'static str {
        "conv"
    }

    fn version(&self) -> u32 {
        1
    }

    fn params(&self) -> String {
        format!(
            "loggabor n{} s{} o{} grid{} sqrt",
            self.size, self.scales, self.orientations, self.grid
        )
    }

    fn dim(&self) -> usize {
        self.scales * self.orientations * self.grid * self.grid
    }

    fn extract(&self, input: &FeatureInput) -> Vec<f32> {
        input.bank_energies(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_picture_gives_every_family_its_vector() {
        assert_eq!(
            resample_square(&Array2::zeros((0, 0)), 4),
            Array2::<f32>::zeros((4, 4))
        );
        assert_eq!(
            resample_square(&Array2::zeros((0, 9)), 4),
            Array2::<f32>::zeros((4, 4))
        );
        let registry = crate::features::Registry::default();
        for (w, h) in [(0, 0), (0, 5), (5, 0)] {
            let rows = registry.extract_all(&registry.input(image::RgbImage::new(w, h)));
            for row in rows {
                let dim = crate::features::family_dim(&row.family);
                assert_eq!(row.vector.len(), dim, "{w}x{h} {}", row.family);
            }
        }
    }

    fn stripes(angle_deg: f32, period: f32) -> Array2<f32> {
        let (s, c) = angle_deg.to_radians().sin_cos();
        Array2::from_shape_fn((128, 128), |(y, x)| {
            0.5 + 0.5 * (2.0 * PI * (x as f32 * c + y as f32 * s) / period).sin()
        })
    }

    #[test]
    fn fft_round_trip_is_identity() {
        let p = Plans::new(16);
        let orig: Vec<Complex32> = (0..256)
            .map(|i| Complex32::new((i % 7) as f32, 0.0))
            .collect();
        let mut d = orig.clone();
        p.fft2_transposed(&mut d, false);
        p.fft2_transposed(&mut d, true);
        for (a, b) in orig.iter().zip(&d) {
            assert!((a.re - b.re / 256.0).abs() < 1e-4);
        }
    }

    #[test]
    fn vector_is_unit_length_and_constant_image_is_zero() {
        let bank = FilterBank::default();
        let v = bank.describe(&stripes(0.0, 8.0));
        assert_eq!(v.len(), bank.dim());
        let n: f32 = v.iter().map(|x| x * x).sum();
        assert!((n - 1.0).abs() < 1e-4);
        let flat = bank.describe(&Array2::from_elem((50, 70), 0.3));
        assert!(flat.iter().all(|x| x.abs() < 1e-6));
    }

    #[test]
    fn responds_to_orientation_and_ignores_contrast() {
        let bank = FilterBank::default();
        let energy_per_orientation = |v: &[f32]| -> Vec<f32> {
            let cells = bank.grid * bank.grid;
            (0..bank.orientations)
                .map(|o| {
                    (0..bank.scales)
                        .map(|s| {
                            let f = s * bank.orientations + o;
                            v[f * cells..(f + 1) * cells].iter().sum::<f32>()
                        })
                        .sum()
                })
                .collect()
        };
        let vertical = energy_per_orientation(&bank.describe(&stripes(0.0, 8.0)));
        let best = vertical
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .unwrap()
            .0;
        assert_eq!(best, 0, "{vertical:?}");
        let diagonal = energy_per_orientation(&bank.describe(&stripes(60.0, 8.0)));
        let best = diagonal
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .unwrap()
            .0;
        assert_eq!(best, 2, "{diagonal:?}");
        let a = bank.describe(&stripes(30.0, 10.0));
        let low_contrast = stripes(30.0, 10.0).mapv(|v| 0.4 + 0.2 * v);
        let b = bank.describe(&low_contrast);
        let d: f32 = a.iter().zip(&b).map(|(x, y)| (x - y).powi(2)).sum();
        assert!(d < 1e-6, "{d}");
    }
}
