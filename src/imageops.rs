//! Small image primitives shared by features, restoration and evaluation: mirrored edge
//! indices, the separable Gaussian blur and RGB to HSV conversion.

use std::ops::{AddAssign, Mul};

use multiversion::multiversion;
use ndarray::Array2;
use rayon::prelude::*;

/// The sample that index `i` (any integer) reads in a signal of length `n` extended by
/// symmetric reflection, the edge sample repeated: ..., 1, 0 | 0, 1, ..., n-1 | n-1, n-2, ...
pub(crate) fn mirror_index(i: isize, n: usize) -> usize {
    let n = n as isize;
    let m = i.rem_euclid(2 * n);
    (if m < n { m } else { 2 * n - 1 - m }) as usize
}

/// Normalised Gaussian taps `exp(-x^2 / (2 sigma^2))` for `x` in `-radius..=radius`.
pub(crate) fn gaussian_taps(sigma: f64, radius: usize) -> Vec<f64> {
    let s2 = 2.0 * sigma.powi(2);
    let g: Vec<f64> = (0..=2 * radius)
        .map(|i| {
            let x = i as f64 - radius as f64;
            (-x * x / s2).exp()
        })
        .collect();
    let total: f64 = g.iter().sum();
    g.iter().map(|v| v / total).collect()
}

/// The sample types the separable filter runs in.
pub(crate) trait Sample:
    Copy + Default + AddAssign + Mul<Output = Self> + Send + Sync
{
}
impl Sample for f32 {}
impl Sample for f64 {}

/// Images from this many pixels up are filtered with their rows spread over threads.
const PARALLEL_FROM: usize = 1 << 18;

/// Runs `f(row index, output row)` over the rows of `out`, on several threads for large images.
#[inline(always)]
fn for_rows<T: Sample, S: Send>(
    out: &mut [T],
    w: usize,
    init: impl Fn() -> S + Sync + Send,
    f: impl Fn(&mut S, usize, &mut [T]) + Sync + Send,
) {
    // an image with no columns has no rows to hand out
    if out.is_empty() {
        return;
    }
    if out.len() >= PARALLEL_FROM {
        out.par_chunks_mut(w)
            .enumerate()
            .for_each_init(&init, |s, (y, row)| f(s, y, row));
    } else {
        let mut s = init();
        for (y, row) in out.chunks_mut(w).enumerate() {
            f(&mut s, y, row);
        }
    }
}

/// Correlates every row of the row-major `h x w` image `px` with `taps` (odd length, centred),
/// samples beyond the edges mirrored ([`mirror_index`]).
#[inline(always)]
pub(crate) fn filter_rows<T: Sample>(px: &[T], h: usize, w: usize, taps: &[T]) -> Vec<T> {
    let r = taps.len() / 2;
    let mut out = vec![T::default(); h * w];
    for_rows(
        &mut out,
        w,
        || vec![T::default(); w + 2 * r],
        |padded, y, o_row| {
            // padded index i is sample i - r
            let row = &px[y * w..(y + 1) * w];
            for (i, p) in padded.iter_mut().enumerate() {
                *p = row[mirror_index(i as isize - r as isize, w)];
            }
            for (k, &tap) in taps.iter().enumerate() {
                for (o, &v) in o_row.iter_mut().zip(&padded[k..k + w]) {
                    *o += tap * v;
                }
            }
        },
    );
    out
}

/// Correlates every column of the row-major `h x w` image `px` with `taps` (odd length,
/// centred), samples beyond the edges mirrored: each output row accumulates source rows.
#[inline(always)]
pub(crate) fn filter_columns<T: Sample>(px: &[T], h: usize, w: usize, taps: &[T]) -> Vec<T> {
    let r = taps.len() / 2;
    let mut out = vec![T::default(); h * w];
    for_rows(
        &mut out,
        w,
        || (),
        |_, y, o_row| {
            for (k, &tap) in taps.iter().enumerate() {
                let sy = mirror_index((y + k) as isize - r as isize, h);
                for (o, &v) in o_row.iter_mut().zip(&px[sy * w..(sy + 1) * w]) {
                    *o += tap * v;
                }
            }
        },
    );
    out
}

/// `plane` blurred by a Gaussian of standard deviation `sigma` truncated at `ceil(3 sigma)`,
/// edges mirrored: the result FFT convolution with `Psf::gaussian(sigma)` gives, in two 1-D
/// passes (rows, then columns), about `2 (2 ceil(3 sigma) + 1)` multiply-adds per pixel.
#[multiversion(targets("x86_64+avx2+fma"))]
pub(crate) fn gaussian_blur(plane: &Array2<f32>, sigma: f32) -> Array2<f32> {
    if sigma <= 1e-3 {
        return plane.clone();
    }
    let r = (3.0 * sigma as f64).ceil() as usize;
    let taps: Vec<f32> = gaussian_taps(sigma as f64, r)
        .iter()
        .map(|&v| v as f32)
        .collect();
    let (h, w) = plane.dim();
    let src = plane.as_standard_layout();
    let px = src.as_slice().expect("standard layout");
    let across = filter_rows(px, h, w, &taps);
    let out = filter_columns(&across, h, w, &taps);
    Array2::from_shape_vec((h, w), out).expect("buffer is h*w")
}

/// HSV of an RGB triple given at any scale: hue in sixths of a turn, in [0, 6] (red 0, green 2,
/// blue 4; 6 only by rounding), saturation in [0, 1], and value the largest channel, at the
/// input's scale. Grey has hue 0.
#[inline(always)]
pub(crate) fn rgb_to_hsv_sixths(r: f32, g: f32, b: f32) -> [f32; 3] {
    let max = r.max(g).max(b);
    let min = r.min(g).min(b);
    let delta = max - min;
    let s = if max > 0.0 { delta / max } else { 0.0 };
    // Every sector's formula, then a select (no branches, so a loop over pixels vectorises).
    // The wrap is `rem_euclid(6.0)` written out for the range that occurs, [-1, 1] (same
    // results, without a libm call per pixel).
    let red_sector = (g - b) / delta;
    let red = if red_sector < 0.0 {
        red_sector + 6.0
    } else {
        red_sector
    };
    let green = (b - r) / delta + 2.0;
    let blue = (r - g) / delta + 4.0;
    let h = if delta <= 0.0 {
        0.0
    } else if max == r {
        red
    } else if max == g {
        green
    } else {
        blue
    };
    [h, s, max]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mirror_index_repeats_the_edge_sample() {
        let got: Vec<usize> = (-4..8).map(|i| mirror_index(i, 4)).collect();
        assert_eq!(got, [3, 2, 1, 0, 0, 1, 2, 3, 3, 2, 1, 0]);
        assert_eq!(mirror_index(-1, 1), 0);
    }

    #[test]
    fn hsv_sixths_of_primaries_and_grey() {
        assert_eq!(rgb_to_hsv_sixths(255.0, 0.0, 0.0), [0.0, 1.0, 255.0]);
        assert_eq!(rgb_to_hsv_sixths(0.0, 1.0, 0.0), [2.0, 1.0, 1.0]);
        assert_eq!(rgb_to_hsv_sixths(0.0, 0.0, 1.0), [4.0, 1.0, 1.0]);
        assert_eq!(rgb_to_hsv_sixths(1.0, 0.0, 0.5), [5.5, 1.0, 1.0]);
        assert_eq!(rgb_to_hsv_sixths(0.5, 0.5, 0.5), [0.0, 0.0, 0.5]);
        assert_eq!(rgb_to_hsv_sixths(0.0, 0.0, 0.0), [0.0, 0.0, 0.0]);
    }
}
