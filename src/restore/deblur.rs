//! The deblur pipeline: a PSF (given, or estimated from the luminance), one deconvolution
//! method on every channel, and the result blended with the input by a strength.

use super::Plane;
use super::color::Planes;
use super::estimate::{BlurEstimate, estimate_blur};
use super::hyper::{HyperParams, hyper_laplacian};
use super::noise::noise_sigma;
use super::psf::{Psf, PsfSpec};
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
    /// Hyper-Laplacian prior, half-quadratic splitting (best quality).
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
    pub method: Method,
    /// Richardson-Lucy's iteration cap, 1 to [`MAX_ITERATIONS`].
    pub iterations: usize,
    /// Blend with the input: 1 = fully restored, 0 = unchanged.
    pub strength: f32,
}

/// A deblurred image and how it was made.
#[derive(Debug, Clone)]
pub struct Deblurred {
    pub image: Planes,
    /// The PSF used, as a spec (`none` when an estimate found no blur).
    pub psf_text: String,
    /// The blind estimate, when the PSF was estimated.
    pub estimate: Option<BlurEstimate>,
    /// Noise level measured on the input's luminance.
    pub noise_sigma: f32,
}

impl Deblurred {
    /// True when the PSF was estimated and no blur was found: the image is the input.
    pub fn found_no_blur(&self) -> bool {
        self.estimate.is_some_and(|e| !e.is_blurred())
    }
}

impl DeblurConfig {
    /// An error naming the setting that is out of range.
    pub fn validate(&self) -> Result<()> {
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
/// sharp is returned unchanged); every channel is restored with the same PSF and the noise
/// level of the luminance, then blended with its input by `config.strength`.
pub fn deblur(img: &Planes, config: &DeblurConfig) -> Result<Deblurred> {
    config.validate()?;
    let luma = img.luma();
    let noise = noise_sigma(&luma);
    let (psf, psf_text, estimate) = match &config.psf {
        Some(spec) => (spec.to_psf()?, spec.to_string(), None),
        None => {
            let est = estimate_blur(&luma);
            let text = est
                .to_spec()
                .map(|s| s.to_string())
                .unwrap_or_else(|| "none".into());
            (est.to_psf(), text, Some(est))
        }
    };
    let image = if estimate.is_some_and(|e| !e.is_blurred()) {
        img.clone()
    } else {
        img.map(|p| restore_plane(p, &psf, config, noise))
    };
    Ok(Deblurred {
        image,
        psf_text,
        estimate,
        noise_sigma: noise,
    })
}

/// One channel restored by `config.method`, blended with its input by `config.strength`.
fn restore_plane(p: &Plane, psf: &Psf, config: &DeblurConfig, noise: f32) -> Plane {
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
            richardson_lucy(
                p,
                psf,
                &RlParams {
                    iterations: config.iterations,
                    noise_sigma: Some(noise),
                    ..RlParams::default()
                },
            )
            .0
        }
        Method::Hyper => hyper_laplacian(
            p,
            psf,
            &HyperParams {
                noise_sigma: Some(noise),
                ..HyperParams::default()
            },
        ),
    };
    blend(p, restored, config.strength)
}

/// `input + strength * (restored - input)`; `restored` itself at strength 1 or more.
pub fn blend(input: &Plane, restored: Plane, strength: f32) -> Plane {
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
    fn out_of_range_settings_are_refused() {
        let config = DeblurConfig {
            psf: None,
            method: Method::Wiener,
            iterations: 10,
            strength: 1.5,
        };
        assert!(deblur(&Planes::Grey(Plane::zeros((8, 8))), &config).is_err());
        let config = DeblurConfig {
            strength: 1.0,
            iterations: 0,
            ..config
        };
        assert!(config.validate().is_err());
    }
}
