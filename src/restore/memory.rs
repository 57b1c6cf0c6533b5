//! Working-set estimates of `blur`, `deblur` and `quality`, so that an image whose float work
//! would exceed the memory budget is refused before that work starts.

use std::path::Path;

use super::Method;
use crate::{Error, Result};

/// Memory budget of the restoration work when `--memory-budget` is not given, in MiB: a
/// 24-megapixel colour photo fits every command and method (the most, blind `deblur
/// --method hyper`, needs about 3,250 MiB for it).
pub const DEFAULT_BUDGET_MIB: u64 = 4096;

/// What the float work of a restoration command is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Work {
    /// `blur`.
    Blur,
    /// `deblur` with `method`; `blind` when the PSF is estimated from the image.
    Deblur {
        /// Deconvolution method.
        method: Method,
        /// The PSF is estimated (`--psf auto`).
        blind: bool,
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
            Work::Blur => (GREY_BLUR, RGB_BLUR),
            Work::Quality => (GREY_QUALITY, RGB_QUALITY),
            Work::Deblur { method, blind } => {
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
            Work::Blur => "blur".into(),
            Work::Quality => "quality".into(),
            Work::Deblur { method, blind } => format!(
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

/// Bytes `work` needs for a `width` x `height` image.
pub fn need(work: Work, width: u64, height: u64, colour: bool) -> u64 {
    width
        .saturating_mul(height)
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
        return Err(Error::InvalidInput(format!(
            "{}: image is {width}x{height} pixels ({megapixels:.1} megapixels, {}); {} needs about {} MiB for it, over the memory budget of {budget_mib} MiB: give a larger `--memory-budget MIB` (at most 65536) if the machine has that memory, or scale the image down first",
            crate::path_repr::shown(path),
            if colour { "colour" } else { "grey" },
            work.name(),
            need.div_ceil(1 << 20),
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
        let mut works = vec![Work::Blur, Work::Quality];
        for method in [Method::Wiener, Method::Rl, Method::Hyper] {
            for blind in [false, true] {
                works.push(Work::Deblur { method, blind });
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
}
