//! The `deconv` family: what the blind blur estimate makes possible. Three parts:
//!
//! - the `conv` filter bank computed on the luminance restored with its blindly estimated PSF.
//!   Blur removes high frequencies, so a blurred photo's filter-bank energies move towards the
//!   coarse scales; estimating the blur (Gaussian, defocus disk or motion; see
//!   `restore::estimate`) and Wiener-restoring the 128x128 plane the bank filters puts the
//!   energy back where the sharp original has it. A sharp image is left as it is.
//! - a blur-canonical texture: LBP (radii 2, 4, 8 working pixels) on the luminance blurred *up*
//!   to a common Gaussian sigma of 2 working pixels, the added blur being
//!   `sqrt(2^2 - sigma_est^2)`. A sharp photo and its blurred copy are described at the same
//!   blur, so their textures agree where plain LBP (radii 1-4 on the image as it is) does not.
//!   Restoring fine texture instead does not work: Wiener noise and ringing are exactly the
//!   micro-patterns LBP counts (BENCHMARKS.md, "Blurred queries against a sharp index").
//! - a blur signature (Gaussian-equivalent sigma, motion length, and the motion direction as a
//!   doubled-angle unit vector), appended at a small scale: it describes the photo's condition,
//!   and tells the fusion's query view that an example is blurred.

use std::ops::Range;

use ndarray::Array2;

use super::conv::{FilterBank, resample_square};
use super::lbp::LocalBinaryPatterns;
use super::{Extractor, FeatureInput, l2_normalize};
use crate::imageops::gaussian_blur;
use crate::restore::estimate::SHARP_SIGMA;
use crate::restore::{BlurEstimate, BlurKind, restore_for_features};

/// Parameters of the deconvolution features.
#[derive(Debug, Clone, PartialEq)]
pub struct DeconvFeatures {
    /// The filter bank run on the restored plane (its `size` is also the restoration size).
    pub(crate) bank: FilterBank,
    /// The texture descriptor run on the blur-canonical plane.
    pub(crate) texture: LocalBinaryPatterns,
    /// Gaussian sigma, in working pixels, every plane is blurred up to for the texture.
    pub(crate) canonical_sigma: f32,
    /// Share of the family's squared length that the texture part takes (the bank has the rest).
    pub(crate) texture_share: f32,
    /// Scale of the blur signature relative to the unit-length bank and texture parts.
    pub(crate) signature_scale: f32,
}

impl Default for DeconvFeatures {
    fn default() -> Self {
        DeconvFeatures {
            bank: FilterBank::default(),
            texture: LocalBinaryPatterns {
                radii: vec![2.0, 4.0, 8.0],
                ..LocalBinaryPatterns::default()
            },
            canonical_sigma: 2.0,
            texture_share: 2.0 / 3.0,
            signature_scale: 0.05,
        }
    }
}

/// Number of blur-signature values appended.
pub(crate) const SIGNATURE_LEN: usize = 4;

/// Blur signature: `[sigma / 4, motion length / 20, cos 2θ, sin 2θ]` (direction zero when not motion).
pub(crate) fn blur_signature(est: &BlurEstimate) -> [f32; SIGNATURE_LEN] {
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
    /// The family vector of a luminance plane and its blur estimate.
    #[cfg(test)]
    pub(crate) fn describe(&self, luma: &Array2<f32>) -> (Vec<f32>, BlurEstimate) {
        let (restored, est) = restore_for_features(luma);
        let bank = if est.is_blurred() {
            self.bank
                .describe(&restored_square(&restored, self.bank.size))
        } else {
            self.bank.describe(luma)
        };
        (self.assemble(bank, luma, &est), est)
    }

    /// The texture part: the descriptor of `luma` blurred up to the canonical sigma.
    pub fn canonical_texture(&self, luma: &Array2<f32>, est: &BlurEstimate) -> Vec<f32> {
        let added = (self.canonical_sigma.powi(2) - est.sigma.powi(2))
            .max(0.0)
            .sqrt();
        let mut v = if added > 0.1 {
            self.texture.describe(&gaussian_blur(luma, added))
        } else {
            self.texture.describe(luma)
        };
        l2_normalize(&mut v);
        v
    }

    /// `[bank * sqrt(1 - share) | texture * sqrt(share) | signature * scale]`.
    fn assemble(&self, mut bank: Vec<f32>, luma: &Array2<f32>, est: &BlurEstimate) -> Vec<f32> {
        l2_normalize(&mut bank);
        let (b, t) = ((1.0 - self.texture_share).sqrt(), self.texture_share.sqrt());
        let mut v: Vec<f32> = bank.into_iter().map(|x| x * b).collect();
        v.extend(self.canonical_texture(luma, est).into_iter().map(|x| x * t));
        v.extend(blur_signature(est).iter().map(|x| x * self.signature_scale));
        v
    }

    /// Where the texture part lies in the family vector.
    pub(crate) fn texture_range(&self) -> Range<usize> {
        let start = self.bank.dim();
        start..start + self.texture.dim()
    }

    /// The Gaussian-equivalent blur sigma a family vector records, read from a copy scaled by
    /// any factor (as fusion scales it); `None` when the bank part is zero.
    pub(crate) fn sigma_of(&self, v: &[f32]) -> Option<f32> {
        if v.len() != self.dim() {
            return None;
        }
        let bank_norm = v[..self.bank.dim()]
            .iter()
            .map(|x| x * x)
            .sum::<f32>()
            .sqrt();
        if bank_norm <= 1e-9 {
            return None;
        }
        let scale = bank_norm / (1.0 - self.texture_share).sqrt();
        Some(v[self.texture_range().end] / scale / self.signature_scale * 4.0)
    }

    /// True when a family vector records a blur (the estimate's own threshold).
    pub(crate) fn records_blur(&self, v: &[f32]) -> bool {
        self.sigma_of(v).is_some_and(|s| s >= SHARP_SIGMA)
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
        3
    }

    fn params(&self) -> String {
        format!(
            "wiener-blind-working n{} s{} o{} grid{} tex{:?}@{}x{} sig{}",
            self.bank.size,
            self.bank.scales,
            self.bank.orientations,
            self.bank.grid,
            self.texture.radii,
            self.canonical_sigma,
            self.texture_share,
            self.signature_scale
        )
    }

    fn dim(&self) -> usize {
        self.bank.dim() + self.texture.dim() + SIGNATURE_LEN
    }

    fn extract(&self, input: &FeatureInput) -> Vec<f32> {
        let (restored, est) = restore_for_features(&input.luma);
        let bank = if est.is_blurred() {
            self.bank
                .describe(&restored_square(&restored, self.bank.size))
        } else {
            // Restoration left the image alone: the plain bank's energies, shared with `conv`.
            input.bank_energies(&self.bank)
        };
        self.assemble(bank, &input.luma, &est)
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
        let blurred = convolve(&sharp, &Psf::gaussian_clamped(2.0));
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
        let direct = deconv.assemble(
            deconv
                .bank
                .describe(&restored_square(&input.luma, deconv.bank.size)),
            &input.luma,
            &est,
        );
        assert_eq!(shared, direct);
        let mut normalised = conv;
        l2_normalize(&mut normalised);
        let b = (1.0 - deconv.texture_share).sqrt();
        let scaled: Vec<f32> = normalised.iter().map(|x| x * b).collect();
        assert_eq!(&shared[..scaled.len()], &scaled[..]);
    }

    #[test]
    fn the_canonical_texture_of_a_blurred_copy_is_nearer_its_original_than_plain_lbp() {
        let sharp = scene();
        let blurred = convolve(&sharp, &Psf::gaussian_clamped(1.5));
        let deconv = DeconvFeatures::default();
        let (_, est_sharp) = deconv.describe(&sharp);
        let (_, est_blurred) = deconv.describe(&blurred);
        let lbp = LocalBinaryPatterns::default();
        let unit = |mut v: Vec<f32>| {
            l2_normalize(&mut v);
            v
        };
        let plain = dist(&unit(lbp.describe(&sharp)), &unit(lbp.describe(&blurred)));
        let canonical = dist(
            &deconv.canonical_texture(&sharp, &est_sharp),
            &deconv.canonical_texture(&blurred, &est_blurred),
        );
        assert!(
            canonical < 0.5 * plain,
            "canonical {canonical} vs plain {plain}"
        );
    }

    #[test]
    fn the_recorded_sigma_survives_fusion_scaling() {
        let deconv = DeconvFeatures::default();
        let blurred = convolve(&scene(), &Psf::gaussian_clamped(2.0));
        let (v, est) = deconv.describe(&blurred);
        let mut scaled = v.clone();
        l2_normalize(&mut scaled);
        scaled.iter_mut().for_each(|x| *x *= 0.7);
        let sigma = deconv.sigma_of(&scaled).unwrap();
        assert!((sigma - est.sigma).abs() < 1e-4, "{sigma} vs {est:?}");
        assert!(deconv.records_blur(&scaled));
        let (sharp, _) = deconv.describe(&scene());
        assert!(!deconv.records_blur(&sharp));
        assert_eq!(deconv.sigma_of(&vec![0.0; deconv.dim()]), None);
        assert_eq!(
            deconv.sigma_of(&[1.0; 3]),
            None,
            "a vector of another length"
        );
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
