//! Image restoration: PSFs, FFT convolution, Wiener / Richardson-Lucy / hyper-Laplacian
//! deconvolution, blind blur estimation, the deblur pipeline and quality metrics.
//!
//! Everything here is a pure function on `Plane`s (rows x cols, values in `[0, 1]`).

pub mod color;
pub mod deblur;
mod edge_width;
pub mod estimate;
pub mod fft;
pub mod file;
pub mod hyper;
pub mod memory;
pub mod noise;
pub mod psf;
pub mod quality;
pub mod rl;
pub mod wiener;

/// A single-channel image, rows x cols, values nominally in `[0, 1]`.
pub type Plane = ndarray::Array2<f32>;

pub use deblur::{DeblurConfig, Deblurred, Method, deblur};
pub use estimate::{BlurEstimate, BlurKind, estimate_blur};
pub use hyper::{HyperParams, hyper_laplacian};
pub use psf::{Psf, PsfSpec};
pub use quality::{Scores, ms_ssim, psnr, scores, ssim};
pub use rl::{RlParams, RlReport, richardson_lucy};
pub use wiener::{WienerParams, wiener};

/// Working-image restoration for retrieval features: estimates the blur of a small (about
/// 256x256) luminance plane and, if it is blurred, Wiener-restores it with that estimate.
/// Returns the plane to extract features from and the estimate (itself a useful feature).
pub fn restore_for_features(plane: &Plane) -> (Plane, BlurEstimate) {
    let est = estimate_blur(plane);
    if !est.is_blurred() {
        return (plane.clone(), est);
    }
    let params = WienerParams {
        noise_sigma: Some(est.noise_sigma),
        model_border: false,
        ..WienerParams::default()
    };
    (wiener(plane, &est.to_psf(), &params), est)
}

#[cfg(test)]
pub(crate) mod test_util {
    use super::Plane;
    use super::noise::add_gaussian_noise;

    /// A deterministic image with edges, gradients and texture.
    pub(crate) fn textured(h: usize, w: usize) -> Plane {
        Plane::from_shape_fn((h, w), |(r, c)| {
            let (x, y) = (c as f32 / w as f32, r as f32 / h as f32);
            let mut v = 0.3 + 0.2 * (9.0 * x + 4.0 * y).sin() * (6.0 * y).cos();
            if (x - 0.5).powi(2) + (y - 0.45).powi(2) < 0.06 {
                v += 0.3;
            }
            if ((c / 8) + (r / 8)) % 2 == 0 && x < 0.35 {
                v += 0.15;
            }
            if y > 0.75 && ((c as f32 * 0.9).sin() > 0.0) {
                v += 0.1;
            }
            v.clamp(0.0, 1.0)
        })
    }

    /// A "dead leaves" image: random overlapping discs with power-law radii, whose spectrum
    /// falls off like natural photos' (about 1/f^2).
    pub(crate) fn dead_leaves(h: usize, w: usize, seed: u64) -> Plane {
        let mut rng = super::noise::Rng::new(seed);
        let mut img = Plane::from_elem((h, w), 0.5);
        let (rmin, rmax) = (2.0f64, (h.min(w) as f64) / 4.0);
        for _ in 0..3000 {
            // radius density ~ r^-3 between rmin and rmax
            let u = rng.uniform();
            let r = 1.0 / ((1.0 - u) / (rmin * rmin) + u / (rmax * rmax)).sqrt();
            let cx = rng.uniform() * w as f64;
            let cy = rng.uniform() * h as f64;
            let v = (0.1 + 0.8 * rng.uniform()) as f32;
            let (y0, y1) = (
                (cy - r).max(0.0) as usize,
                ((cy + r).ceil() as usize).min(h),
            );
            let (x0, x1) = (
                (cx - r).max(0.0) as usize,
                ((cx + r).ceil() as usize).min(w),
            );
            for y in y0..y1 {
                for x in x0..x1 {
                    let (dx, dy) = (x as f64 + 0.5 - cx, y as f64 + 0.5 - cy);
                    if dx * dx + dy * dy <= r * r {
                        img[[y, x]] = v;
                    }
                }
            }
        }
        img
    }

    /// `plane` plus seeded Gaussian noise.
    pub(crate) fn noisy(plane: &Plane, sigma: f32, seed: u64) -> Plane {
        add_gaussian_noise(plane, sigma, seed)
    }
}
