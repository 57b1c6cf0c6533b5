//! Gaussian blur width read from edge profiles: a second opinion beside the spectral estimate,
//! which assumes a power-law scene spectrum and misreads photos whose own spectrum is not one.
//!
//! The profile across each strong edge is fitted with one blurred step, or two (an edge next to
//! another, as mortar lines or thin bars give), over a grid of widths; the 20th percentile of
//! the well-fitted edges' widths, less a typical sharp photo's own softness, is the estimate.
//! An edge method reads a photo's own softness with the blur, so it is used only where the
//! spectral estimate is clearly off (see [`super::estimate::estimate_blur_thorough`]).

use std::sync::OnceLock;

use super::Plane;

/// Profile samples across an edge: `-REACH..=REACH` pixels in steps of `STEP`.
const SAMPLES: usize = 41;
const REACH: f64 = 10.0;
const STEP: f64 = 0.5;
/// Width (pixels) of the Gaussian weight on the profile samples.
const WEIGHT_SIGMA: f64 = 5.0;
/// Widths tried: geometric from 0.35 to 6 pixels.
const WIDTHS: usize = 22;
const WIDTH_MIN: f64 = 0.35;
const WIDTH_MAX: f64 = 6.0;
/// Two steps of opposite sign closer than this many widths are not told apart: refused.
const OPPOSITE_APART: f64 = 2.0;
/// Two steps of the same sign closer than this many widths read as one wider edge.
const MERGE_APART: f64 = 3.0;
/// Two steps are taken over one when they explain this many noise variances more.
const TWO_STEP_GAIN: f64 = 3.0;
/// Edges kept: residual under this many noise variances (or the best [`MIN_EDGES`]).
const FIT_LIMIT: f64 = 10.0;
const MIN_EDGES: usize = 30;
/// The width percentile taken.
const QUANTILE: f64 = 0.2;
/// A sharp photo's own edge width squared (px²), taken off the reading.
const OWN_SOFTNESS: f64 = 0.15;
/// Edges fitted at most, and one per cell of this side.
const MAX_EDGES: usize = 300;
const CELL: usize = 4;
/// Pixels left out at each border (the profile's reach and the gradient filter's).
const BORDER: usize = 13;

fn widths() -> [f64; WIDTHS] {
    std::array::from_fn(|i| {
        WIDTH_MIN * (WIDTH_MAX / WIDTH_MIN).powf(i as f64 / (WIDTHS - 1) as f64)
    })
}

fn offset(i: usize) -> f64 {
    -REACH + STEP * i as f64
}

fn sample_weight(t: f64) -> f64 {
    (-0.5 * (t / WEIGHT_SIGMA).powi(2)).exp()
}

/// The error function, Abramowitz & Stegun 7.1.26 (absolute error under 1.5e-7).
fn erf(x: f64) -> f64 {
    let t = 1.0 / (1.0 + 0.327_591_1 * x.abs());
    let poly = ((((1.061_405_429 * t - 1.453_152_027) * t + 1.421_413_741) * t - 0.284_496_736)
        * t
        + 0.254_829_592)
        * t;
    let y = 1.0 - poly * (-x * x).exp();
    if x >= 0.0 { y } else { -y }
}

fn step(x: f64) -> f64 {
    0.5 * (1.0 + erf(x / std::f64::consts::SQRT_2))
}

/// One least-squares design: an offset, a slope and one or two blurred steps, as an orthonormal
/// basis of the (weighted) profile space and the parts of its triangular factor that give the
/// steps' amplitudes back.
struct Design {
    basis: [[f64; SAMPLES]; 4],
    r22: f64,
    r23: f64,
    r33: f64,
    width: usize,
    two: bool,
    apart: f64,
}

/// Every design, built once.
fn designs() -> &'static [Design] {
    static DESIGNS: OnceLock<Vec<Design>> = OnceLock::new();
    DESIGNS.get_or_init(|| {
        let sqrt_weight: Vec<f64> = (0..SAMPLES)
            .map(|k| sample_weight(offset(k)).sqrt())
            .collect();
        let mut out = Vec::new();
        for (wi, &s) in widths().iter().enumerate() {
            for i1 in 0..7 {
                let x1 = -0.75 + 0.25 * i1 as f64;
                let seconds = (0..SAMPLES)
                    .map(offset)
                    .filter(|x2| (x2 - x1).abs() >= 1.0)
                    .map(Some);
                for x2 in std::iter::once(None).chain(seconds) {
                    let columns = if x2.is_some() { 4 } else { 3 };
                    let mut a = [[0.0; SAMPLES]; 4];
                    for k in 0..SAMPLES {
                        let t = offset(k);
                        a[0][k] = sqrt_weight[k];
                        a[1][k] = t / REACH * sqrt_weight[k];
                        a[2][k] = step((t - x1) / s) * sqrt_weight[k];
                        if let Some(x2) = x2 {
                            a[3][k] = step((t - x2) / s) * sqrt_weight[k];
                        }
                    }
                    // modified Gram-Schmidt
                    let mut r = [[0.0; 4]; 4];
                    for j in 0..columns {
                        for i in 0..j {
                            let d: f64 = (0..SAMPLES).map(|k| a[i][k] * a[j][k]).sum();
                            r[i][j] = d;
                            let earlier = a[i];
                            for (v, e) in a[j].iter_mut().zip(earlier) {
                                *v -= d * e;
                            }
                        }
                        let norm = (0..SAMPLES).map(|k| a[j][k] * a[j][k]).sum::<f64>().sqrt();
                        r[j][j] = norm;
                        for v in a[j].iter_mut() {
                            *v /= norm;
                        }
                    }
                    out.push(Design {
                        basis: a,
                        r22: r[2][2],
                        r23: r[2][3],
                        r33: r[3][3],
                        width: wi,
                        two: x2.is_some(),
                        apart: x2.map_or(0.0, |v| (v - x1).abs()),
                    });
                }
            }
        }
        out
    })
}

/// Separable convolution with mirrored borders.
fn convolve(img: &[f64], w: usize, h: usize, kx: &[f64], ky: &[f64]) -> Vec<f64> {
    let mirror = |i: isize, n: usize| -> usize {
        let n = n as isize;
        let i = if i < 0 { -i - 1 } else { i };
        (if i >= n { 2 * n - i - 1 } else { i }).clamp(0, n - 1) as usize
    };
    let (rx, ry) = ((kx.len() / 2) as isize, (ky.len() / 2) as isize);
    let mut rows = vec![0.0; w * h];
    for y in 0..h {
        for x in 0..w {
            rows[y * w + x] = kx
                .iter()
                .enumerate()
                .map(|(i, k)| k * img[y * w + mirror(x as isize + i as isize - rx, w)])
                .sum();
        }
    }
    let mut out = vec![0.0; w * h];
    for y in 0..h {
        for x in 0..w {
            out[y * w + x] = ky
                .iter()
                .enumerate()
                .map(|(i, k)| k * rows[mirror(y as isize + i as isize - ry, h) * w + x])
                .sum();
        }
    }
    out
}

fn bilinear(a: &[f64], w: usize, h: usize, y: f64, x: f64) -> f64 {
    let y = y.clamp(0.0, h as f64 - 1.001);
    let x = x.clamp(0.0, w as f64 - 1.001);
    let (y0, x0) = (y.floor() as usize, x.floor() as usize);
    let (fy, fx) = (y - y0 as f64, x - x0 as f64);
    a[y0 * w + x0] * (1.0 - fy) * (1.0 - fx)
        + a[y0 * w + x0 + 1] * (1.0 - fy) * fx
        + a[(y0 + 1) * w + x0] * fy * (1.0 - fx)
        + a[(y0 + 1) * w + x0 + 1] * fy * fx
}

/// Keys' cubic convolution (a = -0.5), borders clamped.
fn bicubic(a: &[f64], w: usize, h: usize, y: f64, x: f64) -> f64 {
    let kernel = |t: f64| {
        let t = t.abs();
        if t <= 1.0 {
            1.5 * t * t * t - 2.5 * t * t + 1.0
        } else if t < 2.0 {
            -0.5 * t * t * t + 2.5 * t * t - 4.0 * t + 2.0
        } else {
            0.0
        }
    };
    let (y0, x0) = (y.floor(), x.floor());
    let (fy, fx) = (y - y0, x - x0);
    let mut sum = 0.0;
    for i in 0..4 {
        let yy = (y0 as isize - 1 + i).clamp(0, h as isize - 1) as usize;
        let wy = kernel(fy + 1.0 - i as f64);
        for j in 0..4 {
            let xx = (x0 as isize - 1 + j).clamp(0, w as isize - 1) as usize;
            sum += wy * kernel(fx + 1.0 - j as f64) * a[yy * w + xx];
        }
    }
    sum
}

/// Immerkær's noise estimate: the mean absolute response of a Laplacian difference mask. The
/// mean, not the median `noise::noise_sigma` takes: edges raise it, and the fit limits here
/// were set with it.
fn noise_sigma(img: &[f64], w: usize, h: usize) -> f64 {
    let mut acc = 0.0;
    for y in 1..h - 1 {
        for x in 1..w - 1 {
            let p = |dy: usize, dx: usize| img[(y + dy - 1) * w + x + dx - 1];
            acc += (p(0, 0) - 2.0 * p(0, 1) + p(0, 2) - 2.0 * p(1, 0) + 4.0 * p(1, 1)
                - 2.0 * p(1, 2)
                + p(2, 0)
                - 2.0 * p(2, 1)
                + p(2, 2))
            .abs();
        }
    }
    (std::f64::consts::PI / 2.0).sqrt() * acc / ((w - 2) * (h - 2)) as f64 / 6.0
}

/// The Gaussian blur sigma (pixels) the image's edges show, or `None` when it has too few
/// edges or is too small to tell.
pub(crate) fn edge_blur_sigma(plane: &Plane) -> Option<f32> {
    let (h, w) = plane.dim();
    if h < 2 * BORDER + 8 || w < 2 * BORDER + 8 {
        return None;
    }
    let img: Vec<f64> = plane.iter().map(|&v| f64::from(v)).collect();
    let weight_sum: f64 = (0..SAMPLES).map(|i| sample_weight(offset(i))).sum();
    let noise = noise_sigma(&img, w, h);
    let noise_var = (noise * noise * weight_sum).max(1e-12);

    // gradients: derivative of a Gaussian of sigma 1
    let gauss: Vec<f64> = {
        let v: Vec<f64> = (-4..=4)
            .map(|x: i32| (-(x * x) as f64 / 2.0).exp())
            .collect();
        let s: f64 = v.iter().sum();
        v.iter().map(|a| a / s).collect()
    };
    let deriv: Vec<f64> = {
        let v: Vec<f64> = (-4..=4_i32)
            .map(|x| x as f64 * gauss[(x + 4) as usize])
            .collect();
        let s: f64 = (-4..=4_i32).map(|x| x as f64 * v[(x + 4) as usize]).sum();
        v.iter().map(|a| a / s).collect()
    };
    let gx = convolve(&img, w, h, &deriv, &gauss);
    let gy = convolve(&img, w, h, &gauss, &deriv);
    let magnitude: Vec<f64> = gx.iter().zip(&gy).map(|(a, b)| a.hypot(*b)).collect();

    // edge points: the strongest tenth, maxima along their gradient, one per cell
    let mut inner: Vec<f64> = (BORDER..h - BORDER)
        .flat_map(|y| (BORDER..w - BORDER).map(move |x| (y, x)))
        .map(|(y, x)| magnitude[y * w + x])
        .collect();
    let at = ((inner.len() - 1) as f64 * 0.9) as usize;
    let threshold = *inner.select_nth_unstable_by(at, f64::total_cmp).1;
    let mut candidates: Vec<(f64, usize, usize)> = Vec::new();
    for y in BORDER..h - BORDER {
        for x in BORDER..w - BORDER {
            let m = magnitude[y * w + x];
            if m <= threshold || m <= 0.0 {
                continue;
            }
            let (ux, uy) = (gx[y * w + x] / m, gy[y * w + x] / m);
            let ahead = bilinear(&magnitude, w, h, y as f64 + uy, x as f64 + ux);
            let behind = bilinear(&magnitude, w, h, y as f64 - uy, x as f64 - ux);
            if m >= ahead && m > behind {
                candidates.push((m, y, x));
            }
        }
    }
    candidates.sort_by(|a, b| b.0.total_cmp(&a.0));
    let cells_across = w / CELL + 1;
    let mut taken = vec![false; (h / CELL + 1) * cells_across];
    let mut edges = Vec::new();
    for &(_, y, x) in &candidates {
        let cell = (y / CELL) * cells_across + x / CELL;
        if !taken[cell] {
            taken[cell] = true;
            edges.push((y, x));
            if edges.len() == MAX_EDGES {
                break;
            }
        }
    }
    if edges.is_empty() {
        return None;
    }

    // each edge's profile fitted with every design; its width and fit
    let sigmas = widths();
    let mut fitted: Vec<(f64, f64)> = Vec::with_capacity(edges.len());
    for &(y, x) in &edges {
        let m = magnitude[y * w + x];
        let (ux, uy) = (gx[y * w + x] / m, gy[y * w + x] / m);
        let mut profile = [0.0; SAMPLES];
        let mut total = 0.0;
        for (i, p) in profile.iter_mut().enumerate() {
            let t = offset(i);
            let across: f64 = [-1.0, 0.0, 1.0]
                .iter()
                .map(|k| {
                    bicubic(
                        &img,
                        w,
                        h,
                        y as f64 + t * uy + k * ux,
                        x as f64 + t * ux - k * uy,
                    )
                })
                .sum();
            *p = across / 3.0 * sample_weight(t).sqrt();
            total += *p * *p;
        }
        let mut best = [[f64::INFINITY; WIDTHS]; 2];
        let mut extra = [[0.0; WIDTHS]; 2];
        for design in designs() {
            let projection: [f64; 4] = std::array::from_fn(|j| {
                design.basis[j]
                    .iter()
                    .zip(&profile)
                    .map(|(q, p)| q * p)
                    .sum()
            });
            let residual = total - projection.iter().map(|v| v * v).sum::<f64>();
            let model = usize::from(design.two);
            if residual >= best[model][design.width] {
                continue;
            }
            let mut widen = 0.0;
            if design.two {
                let a2 = projection[3] / design.r33;
                let a1 = (projection[2] - design.r23 * a2) / design.r22;
                let s = sigmas[design.width];
                if a1 * a2 < 0.0 {
                    if design.apart < OPPOSITE_APART * s {
                        continue;
                    }
                } else if design.apart < MERGE_APART * s {
                    let share = a1.abs() / (a1.abs() + a2.abs()).max(1e-12);
                    widen = share * (1.0 - share) * design.apart * design.apart;
                }
            }
            best[model][design.width] = residual;
            extra[model][design.width] = widen;
        }
        let least = |c: &[f64; WIDTHS]| c.iter().copied().fold(f64::INFINITY, f64::min);
        let model = usize::from(least(&best[1]) + TWO_STEP_GAIN * noise_var < least(&best[0]));
        let c = &best[model];
        let i = (0..WIDTHS).min_by(|&a, &b| c[a].total_cmp(&c[b]))?;
        if !c[i].is_finite() {
            continue;
        }
        // a parabola through the neighbours, in log width
        let sigma = if i == 0 || i == WIDTHS - 1 {
            sigmas[i]
        } else {
            let curvature = c[i - 1] - 2.0 * c[i] + c[i + 1];
            let shift = if curvature > 0.0 {
                (0.5 * (c[i - 1] - c[i + 1]) / curvature).clamp(-1.0, 1.0)
            } else {
                0.0
            };
            sigmas[i] * (sigmas[1] / sigmas[0]).powf(shift)
        };
        fitted.push(((sigma * sigma + extra[model][i]).sqrt(), c[i] / noise_var));
    }
    if fitted.is_empty() {
        return None;
    }
    let mut kept: Vec<f64> = fitted
        .iter()
        .filter(|f| f.1 < FIT_LIMIT)
        .map(|f| f.0)
        .collect();
    if kept.len() < MIN_EDGES {
        fitted.sort_by(|a, b| a.1.total_cmp(&b.1));
        kept = fitted.iter().take(MIN_EDGES).map(|f| f.0).collect();
    }
    kept.sort_by(f64::total_cmp);
    let pos = QUANTILE * (kept.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = (lo + 1).min(kept.len() - 1);
    let width = kept[lo] + (pos - lo as f64) * (kept[hi] - kept[lo]);
    let sigma = (width * width - OWN_SOFTNESS).max(0.0).sqrt();
    sigma.is_finite().then_some(sigma as f32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::restore::fft::convolve as blur;
    use crate::restore::psf::Psf;

    /// Bars and discs of several sizes: edges of every orientation.
    fn scene() -> Plane {
        Plane::from_shape_fn((160, 192), |(r, c)| {
            let (y, x) = (r as f32, c as f32);
            let bars = if (c / 24) % 2 == 0 { 0.25 } else { 0.0 };
            let disc = if (y - 80.0).powi(2) + (x - 96.0).powi(2) < 40.0f32.powi(2) {
                0.4
            } else {
                0.0
            };
            let square = if (20..60).contains(&r) && (120..170).contains(&c) {
                0.3
            } else {
                0.0
            };
            0.1 + bars + disc + square
        })
    }

    #[test]
    fn edges_read_the_gaussian_that_blurred_them() {
        let sharp = scene();
        for sigma in [1.0f32, 2.0, 3.0] {
            let blurred = blur(&sharp, &Psf::gaussian_clamped(sigma));
            let read = edge_blur_sigma(&blurred).unwrap();
            // a synthetic scene has none of the own softness a photo's reading loses
            let expected = (sigma * sigma - OWN_SOFTNESS as f32).sqrt();
            assert!(
                (read - expected).abs() < 0.15 * expected,
                "sigma {sigma} read as {read}"
            );
        }
        assert!(edge_blur_sigma(&sharp).unwrap() < 0.5);
    }

    #[test]
    fn small_and_flat_images_read_nothing() {
        assert_eq!(edge_blur_sigma(&Plane::zeros((20, 200))), None);
        assert_eq!(edge_blur_sigma(&Plane::from_elem((64, 64), 0.5)), None);
    }
}
