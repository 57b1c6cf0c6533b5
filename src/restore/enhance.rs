//! Mild, safe sharpening: deconvolve with the estimated PSF and blend with the original.

use super::Plane;
use super::estimate::{BlurEstimate, estimate_blur};
use super::wiener::{WienerParams, wiener};

/// Restores detail with a Wiener deconvolution by the blur estimated from `plane`, blended
/// with the input: `out = plane + strength * (restored - plane)`. `strength` is clamped to
/// [0, 1]; images judged sharp are returned unchanged. Also returns the estimate used.
pub fn enhance(plane: &Plane, strength: f32) -> (Plane, BlurEstimate) {
    let est = estimate_blur(plane);
    (enhance_with(plane, &est, strength), est)
}

/// As `enhance`, with a blur estimate computed elsewhere (e.g. on the luminance of a colour
/// image, applied to each channel).
pub fn enhance_with(plane: &Plane, est: &BlurEstimate, strength: f32) -> Plane {
    let s = strength.clamp(0.0, 1.0);
    if !est.is_blurred() || s == 0.0 {
        return plane.clone();
    }
    let params = WienerParams {
        noise_sigma: Some(est.noise_sigma),
        // a little more regularisation than the MMSE choice: enhancement must never add noise
        regularization: 2.0 * super::wiener::DEFAULT_REGULARIZATION,
        ..WienerParams::default()
    };
    let restored = wiener(plane, &est.to_psf(), &params);
    let mut out = plane.clone();
    out.zip_mut_with(&restored, |o, &r| *o = (*o + s * (r - *o)).clamp(0.0, 1.0));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::restore::fft::convolve;
    use crate::restore::psf::Psf;
    use crate::restore::quality::psnr;
    use crate::restore::test_util::{dead_leaves, noisy};

    #[test]
    fn enhancing_a_blurred_image_brings_it_closer_to_the_original() {
        let img = dead_leaves(256, 256, 9);
        let blurred = noisy(&convolve(&img, &Psf::gaussian(2.0)), 0.003, 2);
        let (out, est) = enhance(&blurred, 0.7);
        assert!(est.is_blurred());
        assert!(psnr(&img, &out).unwrap() > psnr(&img, &blurred).unwrap());
        let (same, _) = enhance(&blurred, 0.0);
        assert_eq!(same, blurred);
    }
}
