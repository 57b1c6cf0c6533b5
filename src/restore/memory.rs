//! Working-set estimates of `blur`, `deblur` and `quality`, so that an image whose float work
//! would exceed the memory budget is refused before that work starts.

use std::path::Path;

use super::Method;
use super::fft::fast_size;
use crate::{Error, Result};

/// Memory budget of the restoration work when `--memory-budget` is not given, in MiB: a
/// 24-megapixel colour photo fits every command and method (the most, blind `deblur
/// --method hyper`, needs about 3,250 MiB for it).
pub const DEFAULT_BUDGET_MIB: u64 = 4096;

/// What the float work of a restoration command is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Work {
    /// `blur` with a PSF of this radius (the larger of its two), in pixels.
    Blur {
        /// The PSF's radius, which pads the image for the FFT.
        psf_radius: usize,
    },
    /// `deblur` with `method`; `blind` when the PSF is estimated from the image.
    Deblur {
        /// Deconvolution method.
        method: Method,
        /// The PSF is estimated (`--psf auto`).
        blind: bool,
        /// The given PSF's radius (0 when estimated), which pads the image for the FFTs.
        psf_radius: usize,
    },
    /// `quality`, both images counted.
    Quality,
}

impl Work {
    /// Peak resident bytes per pixel of the whole command on a grey or a colour image, decoding
    /// included: peak RSS (`/usr/bin/time -v`) on 1200x1200 PNGs (a blur of `gaussian:2` at
    /// noise 0.005 for `deblur`), divided by the pixel count, plus about a tenth.
    pub fn bytes_per_pixel(self, colour: bool) -> u64 {
        let (grey, rgb) = match self {
            Work::Blur { .. } => (GREY_BLUR, RGB_BLUR),
            Work::Quality => (GREY_QUALITY, RGB_QUALITY),
            Work::Deblur { method, blind, .. } => {
                let (grey, rgb) = match method {
                    Method::Wiener => (GREY_WIENER, RGB_WIENER),
                    Method::Rl => (GREY_RL, RGB_RL),
                    Method::Hyper => (GREY_HYPER, RGB_HYPER),
                };
                if blind {
                    (grey + GREY_BLIND, rgb + RGB_BLIND)
                } else {
                    (grey, rgb)
                }
            }
        };
        if colour { rgb } else { grey }
    }

    /// The command as a user types it.
    fn name(self) -> String {
        match self {
            Work::Blur { .. } => "blur".into(),
            Work::Quality => "quality".into(),
            Work::Deblur { method, blind, .. } => format!(
                "deblur --method {}{}",
                method.name(),
                if blind { " (PSF estimated)" } else { "" }
            ),
        }
    }
}

/// Bytes a pixel, measured as [`Work::bytes_per_pixel`] says (measured: blur 33.8 and 50.1;
/// quality 95.3 and 111.5; deblur wiener 37.8 and 71.6, rl 43.9 and 92.3, hyper 60.3 and
/// 116.1; a PSF estimate added 6.5-7.4 and 8.5-12.4).
const GREY_BLUR: u64 = 38;
const RGB_BLUR: u64 = 56;
const GREY_QUALITY: u64 = 105;
const RGB_QUALITY: u64 = 123;
const GREY_WIENER: u64 = 42;
const RGB_WIENER: u64 = 79;
const GREY_RL: u64 = 49;
const RGB_RL: u64 = 102;
const GREY_HYPER: u64 = 67;
const RGB_HYPER: u64 = 128;
/// What estimating the PSF adds to the method's own need.
const GREY_BLIND: u64 = 8;
const RGB_BLIND: u64 = 14;

/// Longest canvas side [`Work::canvas`] works out; a longer one is taken as needing all memory.
const MAX_CANVAS_SIDE: usize = u32::MAX as usize;

impl Work {
    /// The FFT canvas `work` pads a `width` x `height` image into, as `convolve` (blur) and
    /// `pad_for` (deblur) make it; the image itself for `quality`.
    fn canvas(self, width: u64, height: u64) -> (u64, u64) {
        let (pure, fade) = match self {
            Work::Blur { psf_radius } => (psf_radius, 2),
            Work::Deblur { psf_radius, .. } => (
                psf_radius.saturating_add(4),
                psf_radius.saturating_mul(2).max(16),
            ),
            Work::Quality => return (width, height),
        };
        // a side past any image's is no FFT size to search for: it needs all there is
        let side = |n: u64| {
            let padded = usize::try_from(n)
                .unwrap_or(usize::MAX)
                .saturating_add(pure.saturating_mul(2))
                .saturating_add(fade);
            if padded > MAX_CANVAS_SIDE {
                u64::MAX
            } else {
                fast_size(padded) as u64
            }
        };
        (side(width), side(height))
    }
}

/// Bytes `work` needs for a `width` x `height` image: its bytes a pixel for each pixel of the
/// image or of the padded FFT canvas, whichever is larger. A long thin image padded by a large
/// PSF (65535x2 by a Gaussian of sigma 100: a canvas of 66150x630) needs the canvas's.
pub fn need(work: Work, width: u64, height: u64, colour: bool) -> u64 {
    let (cols, rows) = work.canvas(width, height);
    width
        .saturating_mul(height)
        .max(cols.saturating_mul(rows))
        .saturating_mul(work.bytes_per_pixel(colour))
}

/// Refuses `path`, a `width` x `height` image, when `work` on it needs more than `budget_mib`.
pub fn check(
    path: &Path,
    (width, height): (u32, u32),
    colour: bool,
    work: Work,
    budget_mib: u64,
) -> Result<()> {
    let need = need(work, u64::from(width), u64::from(height), colour);
    if need > budget_mib << 20 {
        let megapixels = f64::from(width) * f64::from(height) / 1e6;
        let (cols, rows) = work.canvas(u64::from(width), u64::from(height));
        let padded = if cols.saturating_mul(rows)
            > u64::from(width)
                .saturating_mul(u64::from(height))
                .saturating_mul(2)
        {
            format!(" padded by the PSF to {cols}x{rows}")
        } else {
            String::new()
        };
        return Err(Error::InvalidInput(format!(
            "{}: image is {width}x{height} pixels ({megapixels:.1} megapixels, {}); {} needs about {} MiB for it{padded}, over the memory budget of {budget_mib} MiB: {}scale the image down first",
            crate::path_repr::shown(path),
            if colour { "colour" } else { "grey" },
            work.name(),
            need.div_ceil(1 << 20),
            if budget_mib < crate::decode::MAX_MEMORY_BUDGET_MIB
                && need <= crate::decode::MAX_MEMORY_BUDGET_MIB << 20
            {
                format!(
                    "give a larger `--memory-budget MIB` (at most {}) if the machine has that memory, or ",
                    crate::decode::MAX_MEMORY_BUDGET_MIB
                )
            } else {
                String::new()
            },
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 24-megapixel colour photo fits the default budget in every command and method; a
    /// 100-megapixel grey image does not fit `quality` nor the default `deblur`.
    #[test]
    fn a_24_megapixel_photo_fits_the_default_budget_and_a_bomb_does_not() {
        // the PSF of a blur of gaussian:2 (the README's example), or none
        let psf_radius = crate::restore::psf::Psf::gaussian_clamped(2.0).radius().0;
        let mut works = vec![Work::Blur { psf_radius }, Work::Quality];
        for method in [Method::Wiener, Method::Rl, Method::Hyper] {
            for blind in [false, true] {
                let psf_radius = if blind { 0 } else { psf_radius };
                works.push(Work::Deblur {
                    method,
                    blind,
                    psf_radius,
                });
            }
        }
        for work in works {
            check(
                Path::new("photo.jpg"),
                (6000, 4000),
                true,
                work,
                DEFAULT_BUDGET_MIB,
            )
            .unwrap();
        }
        let hyper = Work::Deblur {
            method: Method::Hyper,
            blind: true,
            psf_radius: 0,
        };
        for work in [Work::Quality, hyper] {
            let e = check(
                Path::new("bomb.png"),
                (10_000, 10_000),
                false,
                work,
                DEFAULT_BUDGET_MIB,
            )
            .unwrap_err()
            .to_string();
            assert!(
                e.contains("bomb.png")
                    && e.contains("10000x10000")
                    && e.contains("memory budget of 4096 MiB")
                    && e.contains("--memory-budget"),
                "{e}"
            );
        }
    }

    #[test]
    fn a_psf_radius_past_any_image_needs_all_memory() {
        for method in [Method::Wiener, Method::Rl, Method::Hyper] {
            let work = Work::Deblur {
                method,
                blind: false,
                psf_radius: usize::MAX,
            };
            assert_eq!(need(work, 100, 100, true), u64::MAX);
            assert!(
                check(
                    Path::new("a.png"),
                    (100, 100),
                    true,
                    work,
                    DEFAULT_BUDGET_MIB
                )
                .is_err()
            );
        }
        let blur = Work::Blur {
            psf_radius: usize::MAX / 2,
        };
        assert_eq!(need(blur, u64::MAX, 1, false), u64::MAX);
    }

    /// The padding a PSF adds counts: a 65535x2 strip blurred by gaussian:100 (measured peak
    /// 831 MB) or deblurred with motion:100,0 (1.2 GB) was let through a budget of 64 MiB,
    /// as the strip's own pixels need 7 MiB.
    #[test]
    fn the_padding_of_a_large_psf_counts() {
        let radius = |psf: crate::restore::psf::Psf| {
            let (ry, rx) = psf.radius();
            ry.max(rx)
        };
        let blur = Work::Blur {
            psf_radius: radius(crate::restore::psf::Psf::gaussian_clamped(100.0)),
        };
        let deblur = Work::Deblur {
            method: Method::Hyper,
            blind: false,
            psf_radius: radius(crate::restore::psf::Psf::motion_clamped(100.0, 0.0)),
        };
        for work in [blur, deblur] {
            let e = check(Path::new("strip.png"), (65535, 2), true, work, 64)
                .map(|()| need(work, 65535, 2, true) >> 20)
                .expect_err("a 65535x2 strip")
                .to_string();
            assert!(
                e.contains("padded by the PSF to") && e.contains("memory budget of 64 MiB"),
                "{e}"
            );
        }
        // a photo's own size still decides: 1600x1200 by gaussian:100 fits the default budget
        check(
            Path::new("photo.png"),
            (1600, 1200),
            true,
            blur,
            DEFAULT_BUDGET_MIB,
        )
        .unwrap();
        assert!(need(blur, 1600, 1200, true) < need(blur, 65535, 2, true));
    }
}
