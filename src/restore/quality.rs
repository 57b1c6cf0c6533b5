//! Full-reference image quality: PSNR, SSIM (scikit-image compatible) and MS-SSIM.
//!
//! SSIM follows Wang et al. (2004) exactly as `skimage.metrics.structural_similarity(...,
//! gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1)` computes it:
//! a Gaussian window of sigma 1.5 truncated at 3.5 sigma (11 taps), applied separably with
//! scipy's "reflect" boundary (`d c b a | a b c d`), K1 = 0.01, K2 = 0.03, population
//! covariances, and the mean taken over the map with 5 pixels cropped from every border.
//! Sums run in f64 like scikit-image.

use serde::Serialize;

use super::Plane;
use crate::imageops::{filter_columns, filter_rows, gaussian_taps};
use crate::{Error, Result};

const K1: f64 = 0.01;
const K2: f64 = 0.03;
const SIGMA: f64 = 1.5;
const TRUNCATE: f64 = 3.5;

fn check_same(a: &Plane, b: &Plane) -> Result<()> {
    if a.dim() != b.dim() {
        return Err(Error::InvalidInput(format!(
            "images differ in size: {}x{} vs {}x{} (width x height); compare images of the same size",
            a.ncols(),
            a.nrows(),
            b.ncols(),
            b.nrows()
        )));
    }
    if a.is_empty() {
        return Err(Error::InvalidInput(format!(
            "the images are {}x{}: an empty image has no quality to score",
            a.ncols(),
            a.nrows()
        )));
    }
    Ok(())
}

/// Mean squared error.
pub(crate) fn mse(a: &Plane, b: &Plane) -> Result<f64> {
    check_same(a, b)?;
    let s: f64 = a
        .iter()
        .zip(b.iter())
        .map(|(&x, &y)| {
            let d = x as f64 - y as f64;
            d * d
        })
        .sum();
    Ok(s / a.len() as f64)
}

/// Peak signal-to-noise ratio in dB for data range 1 (infinite for identical images); empty
/// images are refused.
pub fn psnr(reference: &Plane, test: &Plane) -> Result<f64> {
    let m = mse(reference, test)?;
    Ok(10.0 * (1.0 / m).log10())
}

/// Row-major f64 image used for the SSIM filters.
struct Img {
    h: usize,
    w: usize,
    d: Vec<f64>,
}

/// The SSIM window: sigma 1.5, truncated like scipy at `int(3.5 sigma + 0.5)` = 5 taps a side.
fn gauss_taps() -> Vec<f64> {
    gaussian_taps(SIGMA, (TRUNCATE * SIGMA + 0.5) as usize)
}

/// Separable Gaussian filter, scipy `gaussian_filter(mode="reflect")` (axis 0 then axis 1).
fn gfilter(x: &Img, taps: &[f64]) -> Img {
    let down = filter_columns(&x.d, x.h, x.w, taps);
    Img {
        h: x.h,
        w: x.w,
        d: filter_rows(&down, x.h, x.w, taps),
    }
}

fn to_img(p: &Plane) -> Img {
    Img {
        h: p.nrows(),
        w: p.ncols(),
        d: p.iter().map(|&v| v as f64).collect(),
    }
}

/// SSIM and contrast-structure maps' cropped means: `(mean ssim, mean cs)`.
fn ssim_parts(a: &Img, b: &Img) -> (f64, f64) {
    let taps = gauss_taps();
    let prod = |f: &dyn Fn(f64, f64) -> f64| Img {
        h: a.h,
        w: a.w,
        d: a.d.iter().zip(&b.d).map(|(&x, &y)| f(x, y)).collect(),
    };
    let ux = gfilter(a, &taps);
    let uy = gfilter(b, &taps);
    let uxx = gfilter(&prod(&|x, _| x * x), &taps);
    let uyy = gfilter(&prod(&|_, y| y * y), &taps);
    let uxy = gfilter(&prod(&|x, y| x * y), &taps);
    let c1 = (K1 * 1.0f64).powi(2);
    let c2 = (K2 * 1.0f64).powi(2);
    let pad = taps.len() / 2;
    let (h, w) = (a.h, a.w);
    let (mut s_sum, mut cs_sum, mut n) = (0.0f64, 0.0f64, 0usize);
    for i in pad..h.saturating_sub(pad) {
        for j in pad..w.saturating_sub(pad) {
            let k = i * w + j;
            let (mx, my) = (ux.d[k], uy.d[k]);
            let vx = uxx.d[k] - mx * mx;
            let vy = uyy.d[k] - my * my;
            let vxy = uxy.d[k] - mx * my;
            let a1 = 2.0 * mx * my + c1;
            let a2 = 2.0 * vxy + c2;
            let b1 = mx * mx + my * my + c1;
            let b2 = vx + vy + c2;
            s_sum += a1 * a2 / (b1 * b2);
            cs_sum += a2 / b2;
            n += 1;
        }
    }
    (s_sum / n.max(1) as f64, cs_sum / n.max(1) as f64)
}

fn check_window(a: &Plane) -> Result<()> {
    if a.nrows() < 11 || a.ncols() < 11 {
        return Err(Error::InvalidInput(format!(
            "image is {}x{}: SSIM needs at least 11x11 pixels",
            a.ncols(),
            a.nrows()
        )));
    }
    Ok(())
}

/// Mean SSIM (scikit-image `gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
/// data_range=1`).
pub fn ssim(reference: &Plane, test: &Plane) -> Result<f64> {
    check_same(reference, test)?;
    check_window(reference)?;
    Ok(ssim_parts(&to_img(reference), &to_img(test)).0)
}

fn downsample2(x: &Img) -> Img {
    let (h, w) = (x.h / 2, x.w / 2);
    let mut d = vec![0f64; h * w];
    for i in 0..h {
        for j in 0..w {
            let k = 2 * i * x.w + 2 * j;
            d[i * w + j] = 0.25 * (x.d[k] + x.d[k + 1] + x.d[k + x.w] + x.d[k + x.w + 1]);
        }
    }
    Img { h, w, d }
}

/// Smallest side MS-SSIM takes: an 11-pixel window at the fifth scale (16x smaller).
pub const MS_SSIM_MIN_SIDE: usize = 11 << 4;

/// Multi-scale SSIM (Wang, Simoncelli & Bovik 2003): five scales with the published weights,
/// 2x2 mean downsampling, the same Gaussian window as `ssim`; negative contrast-structure terms
/// are clamped at 0. `None` when the image is smaller than [`MS_SSIM_MIN_SIDE`] on a side: with
/// fewer scales the figure would not be MS-SSIM.
pub fn ms_ssim(reference: &Plane, test: &Plane) -> Result<Option<f64>> {
    check_same(reference, test)?;
    check_window(reference)?;
    const W: [f64; 5] = [0.0448, 0.2856, 0.3001, 0.2363, 0.1333];
    if reference.nrows().min(reference.ncols()) < MS_SSIM_MIN_SIDE {
        return Ok(None);
    }
    let (mut a, mut b) = (to_img(reference), to_img(test));
    let mut out = 1.0f64;
    for (s, &weight) in W.iter().enumerate() {
        let (ss, cs) = ssim_parts(&a, &b);
        if s + 1 == W.len() {
            out *= ss.max(0.0).powf(weight);
        } else {
            out *= cs.max(0.0).powf(weight);
            a = downsample2(&a);
            b = downsample2(&b);
        }
    }
    Ok(Some(out))
}

/// PSNR, SSIM and MS-SSIM of one comparison.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Scores {
    /// PSNR in dB (data range 1); infinite for identical images.
    pub psnr_db: f64,
    /// `None` below 11 pixels on a side (SSIM's window).
    pub(crate) ssim: Option<f64>,
    /// `None` below [`MS_SSIM_MIN_SIDE`] pixels on a side.
    pub(crate) ms_ssim: Option<f64>,
}

/// Scores over channels as scikit-image does with `channel_axis`: PSNR from the mean squared
/// error over every value, SSIM and MS-SSIM as the mean of the channels' figures.
pub fn scores(reference: &[&Plane], test: &[&Plane]) -> Result<Scores> {
    if reference.len() != test.len() || reference.is_empty() {
        return Err(Error::InvalidInput(format!(
            "{} against {}: compare images with the same channels",
            crate::text::counted(reference.len(), "channel", "channels"),
            test.len()
        )));
    }
    let n = reference.len() as f64;
    // PSNR takes any size; SSIM needs its 11-pixel window
    let windowed = reference[0].nrows().min(reference[0].ncols()) >= 11;
    let (mut err, mut ssim_sum, mut ms_sum) = (0.0, 0.0, windowed.then_some(0.0));
    for (a, b) in reference.iter().zip(test) {
        err += mse(a, b)?;
        if windowed {
            ssim_sum += ssim(a, b)?;
            ms_sum = ms_sum.zip(ms_ssim(a, b)?).map(|(s, m)| s + m);
        }
    }
    Ok(Scores {
        psnr_db: 10.0 * (n / err).log10(),
        ssim: windowed.then(|| ssim_sum / n),
        ms_ssim: ms_sum.map(|s| s / n),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn img(seed: u32) -> Plane {
        Plane::from_shape_fn((40, 50), |(r, c)| {
            let v = ((r as u32 * 131 + c as u32 * 71 + seed * 17) % 97) as f32 / 97.0;
            0.5 * v + 0.25 * ((r as f32) * 0.2).sin() + 0.25
        })
    }

    #[test]
    fn empty_images_are_refused_by_every_score() {
        let empty = Plane::zeros((0, 0));
        let refused =
            |r: Result<f64>| matches!(r, Err(Error::InvalidInput(m)) if m.contains("empty"));
        assert!(refused(psnr(&empty, &empty)), "{:?}", psnr(&empty, &empty));
        assert!(refused(ssim(&empty, &empty)));
        assert!(refused(scores(&[&empty], &[&empty]).map(|s| s.psnr_db)));
    }

    #[test]
    fn ssim_of_image_with_itself_is_one() {
        let a = img(1);
        assert!((ssim(&a, &a).unwrap() - 1.0).abs() < 1e-12);
        assert_eq!(
            ms_ssim(&a, &a).unwrap(),
            None,
            "40x50 is too small for five scales"
        );
        let big = Plane::from_shape_fn((180, 200), |(r, c)| img(1)[[r % 40, c % 50]]);
        assert!((ms_ssim(&big, &big).unwrap().unwrap() - 1.0).abs() < 1e-12);
        assert!(psnr(&a, &a).unwrap().is_infinite());
    }

    #[test]
    fn different_images_score_lower_and_sizes_are_checked() {
        let (a, b) = (img(1), img(2));
        let s = ssim(&a, &b).unwrap();
        assert!(s < 0.9 && s > -1.0);
        let c = a.mapv(|v| v + 0.1);
        assert!((psnr(&a, &c).unwrap() - 20.0).abs() < 1e-3);
        let small = Plane::zeros((40, 49));
        assert!(
            ssim(&a, &small)
                .unwrap_err()
                .to_string()
                .contains("differ in size")
        );
    }

    #[test]
    fn channel_scores_pool_the_error_and_average_the_similarities() {
        let (a, b) = (img(1), img(2));
        let c = a.mapv(|v| v + 0.1);
        let s = scores(&[&a, &a], &[&b, &c]).unwrap();
        let mean_mse = (mse(&a, &b).unwrap() + mse(&a, &c).unwrap()) / 2.0;
        assert!((s.psnr_db - 10.0 * (1.0 / mean_mse).log10()).abs() < 1e-9);
        let mean_ssim = (ssim(&a, &b).unwrap() + ssim(&a, &c).unwrap()) / 2.0;
        assert!((s.ssim.unwrap() - mean_ssim).abs() < 1e-12);
        assert!(scores(&[&a], &[&a, &b]).is_err());
    }

    #[test]
    fn window_matches_scipy_truncation() {
        let t = gauss_taps();
        assert_eq!(t.len(), 11);
        assert!((t.iter().sum::<f64>() - 1.0).abs() < 1e-12);
    }
}
