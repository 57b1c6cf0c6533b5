//! The `deconv` family: the `conv` filter bank computed on the luminance restored with its
//! blindly estimated PSF, plus a small blur signature.
//!
//! Blur removes high frequencies, so a blurred photo's filter-bank energies move towards the
//! coarse scales and away from its sharp twin's. Estimating the blur (Gaussian, defocus disk or
//! motion; see `restore::estimate`) and Wiener-restoring the image before filtering puts the
//! energy back where the sharp original has it; a sharp image is left as it is. Both happen on
//! the 128x128 plane the bank filters, which keeps the cost to a few milliseconds.
//!
//! The blur signature (Gaussian-equivalent sigma, motion length, and the motion direction as
//! a doubled-angle unit vector) is appended at a small scale: it describes the photo's
//! condition, and is kept small so that it barely separates a blurred copy from its original.

use ndarray::Array2;

use super::conv::{FilterBank, resample_square};
use super::{Extractor, FeatureInput, l2_normalize};
use crate::restore::{BlurEstimate, BlurKind, restore_for_features};

/// Parameters of the deconvolution features.
#[derive(Debug, Clone, PartialEq)]
pub struct DeconvFeatures {
    /// The filter bank run on the restored plane (its `size` is also the restoration size).
    pub bank: FilterBank,
    /// Scale of the blur signature relative to the unit-length bank vector.
    pub signature_scale: f32,
}

impl Default for DeconvFeatures {
    fn default() -> Self {
        DeconvFeatures {
            bank: FilterBank::default(),
            signature_scale: 0.05,
        }
    }
}

/// Number of blur-signature values appended.
pub const SIGNATURE_LEN: usize = 4;

/// Blur signature: `[sigma / 4, motion length / 20, cos 2θ, sin 2θ]` (direction zero when not motion).
pub fn blur_signature(est: &BlurEstimate) -> [f32; SIGNATURE_LEN] {
    let (c, s) = if est.kind == BlurKind::Motion {
        let t = (2.0 * est.angle_deg).to_radians();
        (t.cos(), t.sin())
    } else {
        (0.0, 0.0)
    };
    let length = if est.kind == BlurKind::Motion {
        est.length
    } else {
        0.0
    };
    [
        (est.sigma / 4.0).clamp(0.0, 2.0),
        (length / 20.0).clamp(0.0, 2.0),
        c,
        s,
    ]
}

impl DeconvFeatures {
    /// Restored-plane bank energies and the blur estimate of a luminance plane.
    pub fn describe(&self, luma: &Array2<f32>) -> (Vec<f32>, BlurEstimate) {
        let (restored, est) = restore_for_features(luma);
        let v = if est.is_blurred() {
            self.bank
                .describe(&restored_square(&restored, self.bank.size))
        } else {
            self.bank.describe(luma)
        };
        (self.finish(v, &est), est)
    }

    /// Normalises bank energies and appends the blur signature.
    fn finish(&self, mut v: Vec<f32>, est: &BlurEstimate) -> Vec<f32> {
        l2_normalize(&mut v);
        v.extend(blur_signature(est).iter().map(|x| x * self.signature_scale));
        v
    }
}

/// The restored plane resampled to the bank's square and clipped to the valid range.
fn restored_square(restored: &Array2<f32>, size: usize) -> Array2<f32> {
    resample_square(restored, size).mapv(|v| v.clamp(0.0, 1.0))
}

impl Extractor for DeconvFeatures {
    fn family(&self) -> &'static str {
        "deconv"
    }

    fn version(&self) -> u32 {
        2
    }

    fn params(&self) -> String {
        format!(
            "wiener-blind-working n{} s{} o{} grid{} sig{}",
            self.bank.size,
            self.bank.scales,
            self.bank.orientations,
            self.bank.grid,
            self.signature_scale
        )
    }

    fn dim(&self) -> usize {
        self.bank.dim() + SIGNATURE_LEN
    }

    fn extract(&self, input: &FeatureInput) -> Vec<f32> {
        let (restored, est) = restore_for_features(&input.luma);
        let v = if est.is_blurred() {
            self.bank
                .describe(&restored_square(&restored, self.bank.size))
        } else {
            // Restoration left the image alone: the plain bank's energies, shared with `conv`.
            input.bank_energies(&self.bank)
        };
        self.finish(v, &est)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::restore::{Psf, fft::convolve};

    fn scene() -> Array2<f32> {
        Array2::from_shape_fn((128, 128), |(y, x)| {
            let (xf, yf) = (x as f32, y as f32);
            let mut v = 0.4 + 0.25 * (xf * 0.35).sin() * (yf * 0.21).cos();
            if (xf - 60.0).powi(2) + (yf - 50.0).powi(2) < 500.0 {
                v += 0.3;
            }
            if (x / 9 + y / 13) % 2 == 0 && y > 90 {
                v -= 0.2;
            }
            v.clamp(0.0, 1.0)
        })
    }

    fn dist(a: &[f32], b: &[f32]) -> f32 {
        a.iter()
            .zip(b)
            .map(|(x, y)| (x - y).powi(2))
            .sum::<f32>()
            .sqrt()
    }

    #[test]
    fn restored_features_bring_a_blurred_copy_closer_to_its_original() {
        let sharp = scene();
        let blurred = convolve(&sharp, &Psf::gaussian(2.0));
        let deconv = DeconvFeatures::default();
        let bank = FilterBank::default();
        let plain = dist(&bank.describe(&sharp), &bank.describe(&blurred));
        let (a, _) = deconv.describe(&sharp);
        let (b, est) = deconv.describe(&blurred);
        let restored = dist(&a, &b);
        assert!(est.sigma > 1.0, "blur not seen: {est:?}");
        assert!(restored < plain, "restored {restored} vs plain {plain}");
    }

    #[test]
    fn a_sharp_image_shares_the_conv_energies_and_matches_the_restored_path() {
        let sharp = scene();
        let rgb = image::RgbImage::from_fn(128, 128, |x, y| {
            let v = (sharp[[y as usize, x as usize]] * 255.0).round() as u8;
            image::Rgb([v, v, v])
        });
        let input = FeatureInput::new(rgb);
        let deconv = DeconvFeatures::default();
        let (_, est) = restore_for_features(&input.luma);
        assert!(!est.is_blurred(), "{est:?}");
        let conv = FilterBank::default().extract(&input);
        let shared = deconv.extract(&input);
        // What the restored path computes when restoration leaves the plane alone.
        let direct = deconv.finish(
            deconv
                .bank
                .describe(&restored_square(&input.luma, deconv.bank.size)),
            &est,
        );
        assert_eq!(shared, direct);
        let mut normalised = conv;
        l2_normalize(&mut normalised);
        assert_eq!(&shared[..normalised.len()], &normalised[..]);
    }

    #[test]
    fn vector_length_and_signature() {
        let d = DeconvFeatures::default();
        let (v, _) = d.describe(&scene());
        assert_eq!(v.len(), d.dim());
        assert!(v.iter().all(|x| x.is_finite()));
        let est = BlurEstimate {
            kind: BlurKind::Motion,
            sigma: 2.0,
            radius: 0.0,
            length: 10.0,
            angle_deg: 45.0,
            noise_sigma: 0.0,
        };
        let s = blur_signature(&est);
        assert!((s[0] - 0.5).abs() < 1e-6 && (s[1] - 0.5).abs() < 1e-6);
        assert!(s[2].abs() < 1e-6 && (s[3] - 1.0).abs() < 1e-6);
    }
}
