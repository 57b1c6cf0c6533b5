//! Image distortions for the robustness benchmark: pure, deterministic transforms of an
//! `RgbImage` (blur, motion blur, JPEG, crop, scale, rotation, flip, photometric changes, noise),
//! the `Distortion` spec type with a `kind:strength` text form, and the default benchmark suite.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use image::codecs::jpeg::JpegEncoder;
use image::imageops::{self, FilterType};
use image::{Rgb, RgbImage};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::imageops::rgb_to_hsv_sixths;
use crate::rng::SplitMix64;
use crate::{Error, Result};

/// How a rotation fills the corners that the rotated image no longer covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RotateFill {
    /// Mirror the image at its borders (keeps the full field of view).
    Reflect,
    /// Crop to the largest centred rectangle of the original aspect ratio inside the rotated
    /// image and scale it back up to the original size.
    Crop,
}

/// One distortion with its strength. Text form (`Display`/`FromStr`):
/// `blur:SIGMA`, `motion:LENGTH[:ANGLE_DEG]`, `jpeg:QUALITY`, `crop:FRACTION`, `scale:FACTOR`,
/// `rotate:DEGREES[:crop]`, `flip`, `brightness:DELTA`, `contrast:FACTOR`, `hue:DEGREES`,
/// `sat:FACTOR`, `noise:SIGMA`, `grey`, `gamma:G`, `pad:FRACTION`, `corner:FRACTION`,
/// `turn:QUARTERS`, `sharpen:AMOUNT`, `mark:FRACTION`. Several are separated by commas in [`parse_list`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Distortion {
    /// Gaussian blur with standard deviation `sigma` pixels.
    Blur {
        /// Standard deviation in pixels (0..=50).
        sigma: f32,
    },
    /// Linear motion blur over `length` pixels at `angle` degrees (counter-clockwise from +x).
    Motion {
        /// Blur length in pixels (0..=200).
        length: f32,
        /// Direction in degrees, counter-clockwise from +x.
        angle: f32,
    },
    /// JPEG re-encoding at `quality` (1..=100).
    Jpeg {
        /// JPEG quality (1..=100).
        quality: u8,
    },
    /// Centre crop removing `fraction` of the width and of the height (the result is smaller).
    Crop {
        /// Share of the width and of the height removed (0..=0.95).
        fraction: f32,
    },
    /// Resize by `factor` (0.25..=4).
    Scale {
        /// Size multiplier (0.25..=4).
        factor: f32,
    },
    /// Rotation about the centre keeping the image size.
    Rotate {
        /// Angle in degrees, counter-clockwise (-180..=180).
        degrees: f32,
        /// How the uncovered corners are filled.
        fill: RotateFill,
    },
    /// Horizontal mirror.
    Flip,
    /// Adds `delta` x 255 to every channel (-1..=1).
    Brightness {
        /// Shift as a fraction of 255 (-1..=1).
        delta: f32,
    },
    /// Scales the distance of every channel from the mean grey level by `factor`.
    Contrast {
        /// Multiplier of the distance from mean grey (0..=10).
        factor: f32,
    },
    /// Rotates the hue by `degrees`.
    Hue {
        /// Hue shift in degrees (-360..=360).
        degrees: f32,
    },
    /// Multiplies the HSV saturation by `factor`.
    Saturation {
        /// Saturation multiplier (0..=10).
        factor: f32,
    },
    /// Adds Gaussian noise with standard deviation `sigma` x 255 (seeded).
    Noise {
        /// Standard deviation as a fraction of 255 (0..=1).
        sigma: f32,
    },
    /// Rec. 601 greyscale.
    Grey,
    /// Raises every channel (0..1) to the power `gamma`.
    Gamma {
        /// Exponent (0.1..=10).
        gamma: f32,
    },
    /// A white border on every side, each `fraction` of the image's width or height.
    Pad {
        /// Border width as a fraction of the image's width or height (0..=1).
        fraction: f32,
    },
    /// Crop keeping the top-left corner: removes `fraction` of the width and of the height
    /// from the right and bottom.
    Corner {
        /// Share of the width and of the height removed (0..=0.95).
        fraction: f32,
    },
    /// Rotation by `quarters` quarter turns clockwise (1, 2 or 3).
    Turn {
        /// Number of clockwise quarter turns (1, 2 or 3).
        quarters: u8,
    },
    /// Unsharp masking: adds `amount` x (image - Gaussian blur of sigma 1.5).
    Sharpen {
        /// Weight of the added detail (0..=10).
        amount: f32,
    },
    /// A line of white glyph-like marks, half opaque, across `fraction` of the width near the
    /// bottom right, as a text watermark (glyphs seeded).
    Mark {
        /// Width of the mark line as a fraction of the image width (0..=0.9).
        fraction: f32,
    },
}

/// The most a chain of distortions may enlarge the sides of an image, counted at every step:
/// what the largest single step, `scale:4`, does. `scale:4+scale:4+scale:4` would turn a
/// 512-pixel query into one of 32768 pixels a side.
pub const MAX_CHAIN_GROWTH: f32 = 4.0;

const SYNTAX: &str = "blur:SIGMA, motion:LENGTH[:ANGLE], jpeg:QUALITY, crop:FRACTION, scale:FACTOR, \
     rotate:DEGREES[:crop], flip, brightness:DELTA, contrast:FACTOR, hue:DEGREES, sat:FACTOR, noise:SIGMA, grey, gamma:G, pad:FRACTION, corner:FRACTION, \
     turn:QUARTERS, sharpen:AMOUNT, mark:FRACTION";

impl Distortion {
    /// Short kind name (the part before the colon): groups strengths in plots.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Distortion::Blur { .. } => "blur",
            Distortion::Motion { .. } => "motion",
            Distortion::Jpeg { .. } => "jpeg",
            Distortion::Crop { .. } => "crop",
            Distortion::Scale { .. } => "scale",
            Distortion::Rotate { .. } => "rotate",
            Distortion::Flip => "flip",
            Distortion::Brightness { .. } => "brightness",
            Distortion::Contrast { .. } => "contrast",
            Distortion::Hue { .. } => "hue",
            Distortion::Saturation { .. } => "sat",
            Distortion::Noise { .. } => "noise",
            Distortion::Grey => "grey",
            Distortion::Gamma { .. } => "gamma",
            Distortion::Pad { .. } => "pad",
            Distortion::Corner { .. } => "corner",
            Distortion::Turn { .. } => "turn",
            Distortion::Sharpen { .. } => "sharpen",
            Distortion::Mark { .. } => "mark",
        }
    }

    /// The main strength parameter (x axis of plots); 1 for `flip`. Widened through its
    /// shortest decimal form, so 0.2 reads 0.2 in JSON, not 0.20000000298023224.
    pub(crate) fn strength(&self) -> f64 {
        let narrow: f32 = match *self {
            Distortion::Blur { sigma } => sigma,
            Distortion::Motion { length, .. } => length,
            Distortion::Jpeg { quality } => f32::from(quality),
            Distortion::Crop { fraction } => fraction,
            Distortion::Scale { factor } => factor,
            Distortion::Rotate { degrees, .. } => degrees,
            Distortion::Flip => 1.0,
            Distortion::Brightness { delta } => delta,
            Distortion::Contrast { factor } => factor,
            Distortion::Hue { degrees } => degrees,
            Distortion::Saturation { factor } => factor,
            Distortion::Noise { sigma } => sigma,
            Distortion::Grey => 1.0,
            Distortion::Gamma { gamma } => gamma,
            Distortion::Pad { fraction }
            | Distortion::Corner { fraction }
            | Distortion::Mark { fraction } => fraction,
            Distortion::Turn { quarters } => f32::from(quarters),
            Distortion::Sharpen { amount } => amount,
        };
        narrow.to_string().parse().unwrap_or(f64::from(narrow))
    }

    /// How many times its input's sides the output's are at most (scale and pad enlarge, crop
    /// and corner shrink; the others keep the size, a turn swapping the sides).
    pub(crate) fn growth(&self) -> f32 {
        match *self {
            Distortion::Scale { factor } => factor,
            Distortion::Pad { fraction } => 1.0 + 2.0 * fraction,
            Distortion::Crop { fraction } | Distortion::Corner { fraction } => 1.0 - fraction,
            _ => 1.0,
        }
    }

    /// The output's size for a `width` x `height` input, as `apply` makes it.
    fn output_size(&self, (width, height): (u32, u32)) -> (u64, u64) {
        let (w, h) = (u64::from(width), u64::from(height));
        match *self {
            Distortion::Scale { factor } => {
                let side = |n: u64| ((n as f64 * f64::from(factor)).round() as u64).max(1);
                (side(w), side(h))
            }
            Distortion::Pad { fraction } => {
                let border = |n: u64| (n as f64 * f64::from(fraction)).round() as u64;
                (w + 2 * border(w), h + 2 * border(h))
            }
            Distortion::Turn { quarters } if quarters % 2 == 1 => (h, w),
            _ => (w, h),
        }
    }

    /// True when the parameters leave the image unchanged.
    pub(crate) fn is_identity(&self) -> bool {
        match *self {
            Distortion::Blur { sigma } => sigma == 0.0,
            Distortion::Motion { length, .. } => length <= 1.0,
            Distortion::Jpeg { .. } | Distortion::Flip | Distortion::Grey => false,
            Distortion::Gamma { gamma } => gamma == 1.0,
            Distortion::Pad { fraction }
            | Distortion::Corner { fraction }
            | Distortion::Mark { fraction } => fraction == 0.0,
            Distortion::Turn { quarters } => quarters % 4 == 0,
            Distortion::Sharpen { amount } => amount == 0.0,
            Distortion::Crop { fraction } => fraction == 0.0,
            Distortion::Scale { factor } => factor == 1.0,
            Distortion::Rotate { degrees, .. } => degrees == 0.0,
            Distortion::Brightness { delta } => delta == 0.0,
            Distortion::Contrast { factor } => factor == 1.0,
            Distortion::Hue { degrees } => degrees.rem_euclid(360.0) == 0.0,
            Distortion::Saturation { factor } => factor == 1.0,
            Distortion::Noise { sigma } => sigma == 0.0,
        }
    }

    /// Checks the parameter ranges.
    pub(crate) fn validate(&self) -> Result<()> {
        let check = |ok: bool, what: &str| -> Result<()> {
            if ok {
                Ok(())
            } else {
                Err(Error::InvalidInput(format!("distortion `{self}`: {what}")))
            }
        };
        let fin = |v: f32| v.is_finite();
        match *self {
            Distortion::Blur { sigma } => check(
                fin(sigma) && (0.0..=50.0).contains(&sigma),
                "sigma must be in 0..=50 pixels",
            ),
            // the ranges `deblur --psf motion:LENGTH,ANGLE` takes
            Distortion::Motion { length, angle } => check(
                crate::restore::psf::extent_accepted(length)
                    && crate::restore::psf::angle_accepted(angle),
                &format!(
                    "length must be in 0..={} pixels and the angle in -360..=360 degrees",
                    crate::restore::psf::MAX_EXTENT
                ),
            ),
            Distortion::Jpeg { quality } => {
                check((1..=100).contains(&quality), "quality must be in 1..=100")
            }
            Distortion::Crop { fraction } => check(
                fin(fraction) && (0.0..=0.95).contains(&fraction),
                "fraction removed must be in 0..=0.95",
            ),
            Distortion::Scale { factor } => check(
                fin(factor) && (0.25..=4.0).contains(&factor),
                "factor must be in 0.25..=4",
            ),
            Distortion::Rotate { degrees, .. } => check(
                fin(degrees) && (-180.0..=180.0).contains(&degrees),
                "degrees must be in -180..=180",
            ),
            Distortion::Flip => Ok(()),
            Distortion::Brightness { delta } => check(
                fin(delta) && (-1.0..=1.0).contains(&delta),
                "delta must be in -1..=1",
            ),
            Distortion::Contrast { factor } => check(
                fin(factor) && (0.0..=10.0).contains(&factor),
                "factor must be in 0..=10",
            ),
            Distortion::Hue { degrees } => check(
                fin(degrees) && (-360.0..=360.0).contains(&degrees),
                "degrees must be in -360..=360",
            ),
            Distortion::Saturation { factor } => check(
                fin(factor) && (0.0..=10.0).contains(&factor),
                "factor must be in 0..=10",
            ),
            Distortion::Noise { sigma } => check(
                fin(sigma) && (0.0..=1.0).contains(&sigma),
                "sigma must be in 0..=1 (fraction of 255)",
            ),
            Distortion::Grey => Ok(()),
            Distortion::Gamma { gamma } => check(
                fin(gamma) && (0.1..=10.0).contains(&gamma),
                "gamma must be in 0.1..=10",
            ),
            Distortion::Pad { fraction } => check(
                fin(fraction) && (0.0..=1.0).contains(&fraction),
                "border must be in 0..=1 of the side",
            ),
            Distortion::Corner { fraction } => check(
                fin(fraction) && (0.0..=0.95).contains(&fraction),
                "fraction removed must be in 0..=0.95",
            ),
            Distortion::Turn { quarters } => check(
                (1..=3).contains(&quarters),
                "quarter turns must be 1, 2 or 3",
            ),
            Distortion::Sharpen { amount } => check(
                fin(amount) && (0.0..=10.0).contains(&amount),
                "amount must be in 0..=10",
            ),
            Distortion::Mark { fraction } => check(
                fin(fraction) && (0.0..=0.9).contains(&fraction),
                "width must be in 0..=0.9 of the image",
            ),
        }
    }

    /// Applies the distortion. `seed` drives the random parts (noise); the same image, spec and
    /// seed always give the same result. Errors only for invalid parameters or a failed JPEG codec.
    pub fn apply(&self, img: &RgbImage, seed: u64) -> Result<RgbImage> {
        self.validate()?;
        if img.width() == 0 || img.height() == 0 {
            return Err(Error::InvalidInput(format!(
                "distortion `{self}`: image is empty ({}x{})",
                img.width(),
                img.height()
            )));
        }
        if self.is_identity() {
            return Ok(img.clone());
        }
        let (w, h) = self.output_size(img.dimensions());
        let limit = crate::decode::DecodeConfig::default();
        if w > u64::from(limit.max_side)
            || h > u64::from(limit.max_side)
            || w * h > limit.max_pixels
        {
            return Err(Error::InvalidInput(format!(
                "distortion `{self}`: the {}x{} image would become {w}x{h} pixels, over the {} pixels a side and {} megapixels a distortion makes (the decoder's limits)",
                img.width(),
                img.height(),
                limit.max_side,
                limit.max_pixels / 1_000_000
            )));
        }
        Ok(match *self {
            Distortion::Blur { sigma } => gaussian_blur(img, sigma),
            Distortion::Motion { length, angle } => motion_blur(img, length, angle),
            Distortion::Jpeg { quality } => jpeg_roundtrip(img, quality)?,
            Distortion::Crop { fraction } => centre_crop(img, fraction),
            Distortion::Scale { factor } => scale(img, factor),
            Distortion::Rotate { degrees, fill } => rotate(img, degrees, fill),
            Distortion::Flip => imageops::flip_horizontal(img),
            Distortion::Brightness { delta } => map_pixels(img, |c| c + delta * 255.0),
            Distortion::Contrast { factor } => contrast(img, factor),
            Distortion::Hue { degrees } => hsv_adjust(img, degrees, 1.0),
            Distortion::Saturation { factor } => hsv_adjust(img, 0.0, factor),
            Distortion::Noise { sigma } => add_noise(img, sigma, seed),
            Distortion::Grey => greyscale(img),
            Distortion::Gamma { gamma } => map_pixels(img, |c| 255.0 * (c / 255.0).powf(gamma)),
            Distortion::Pad { fraction } => pad(img, fraction),
            Distortion::Corner { fraction } => corner_crop(img, fraction),
            Distortion::Turn { quarters } => match quarters % 4 {
                1 => imageops::rotate90(img),
                2 => imageops::rotate180(img),
                _ => imageops::rotate270(img),
            },
            Distortion::Sharpen { amount } => sharpen(img, amount),
            Distortion::Mark { fraction } => watermark(img, fraction, seed),
        })
    }
}

impl fmt::Display for Distortion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Distortion::Motion { length, angle } if angle != 0.0 => {
                write!(f, "motion:{length}:{angle}")
            }
            Distortion::Rotate {
                degrees,
                fill: RotateFill::Crop,
            } => write!(f, "rotate:{degrees}:crop"),
            Distortion::Flip => write!(f, "flip"),
            Distortion::Grey => write!(f, "grey"),
            Distortion::Turn { quarters } => write!(f, "turn:{quarters}"),
            Distortion::Jpeg { quality } => write!(f, "jpeg:{quality}"),
            _ => write!(f, "{}:{}", self.kind(), self.strength() as f32),
        }
    }
}

impl FromStr for Distortion {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let s = s.trim();
        let mut parts = s.split(':');
        let kind = parts.next().unwrap_or("").to_ascii_lowercase();
        let args: Vec<&str> = parts.collect();
        let bad = |why: &str| {
            Error::InvalidInput(format!("distortion {s:?}: {why}; expected one of {SYNTAX}"))
        };
        let num = |i: usize| -> Result<f32> {
            let a = args
                .get(i)
                .ok_or_else(|| bad("missing strength after the colon"))?;
            a.trim()
                .parse::<f32>()
                .ok()
                .filter(|v| v.is_finite())
                .ok_or_else(|| bad(&format!("{a:?} is not a number")))
        };
        let max_args = |n: usize| -> Result<()> {
            if args.len() > n {
                Err(bad("too many `:` parameters"))
            } else {
                Ok(())
            }
        };
        let d = match kind.as_str() {
            "blur" => {
                max_args(1)?;
                Distortion::Blur { sigma: num(0)? }
            }
            "motion" => {
                if args.iter().any(|a| a.contains(',')) {
                    return Err(bad(
                        "the angle follows a second colon here (`motion:15:30`), not a comma",
                    ));
                }
                max_args(2)?;
                Distortion::Motion {
                    length: num(0)?,
                    angle: if args.len() > 1 { num(1)? } else { 0.0 },
                }
            }
            "jpeg" => {
                max_args(1)?;
                let q = num(0)?;
                if q.fract() != 0.0 || !(1.0..=100.0).contains(&q) {
                    return Err(bad("JPEG quality must be a whole number in 1..=100"));
                }
                Distortion::Jpeg { quality: q as u8 }
            }
            "crop" => {
                max_args(1)?;
                Distortion::Crop { fraction: num(0)? }
            }
            "scale" => {
                max_args(1)?;
                Distortion::Scale { factor: num(0)? }
            }
            "rotate" => {
                max_args(2)?;
                let fill = match args.get(1).map(|a| a.trim().to_ascii_lowercase()) {
                    None => RotateFill::Reflect,
                    Some(a) if a == "reflect" => RotateFill::Reflect,
                    Some(a) if a == "crop" => RotateFill::Crop,
                    Some(_) => return Err(bad("rotation fill must be `reflect` or `crop`")),
                };
                Distortion::Rotate {
                    degrees: num(0)?,
                    fill,
                }
            }
            "flip" => {
                max_args(0)?;
                Distortion::Flip
            }
            "brightness" => {
                max_args(1)?;
                Distortion::Brightness { delta: num(0)? }
            }
            "contrast" => {
                max_args(1)?;
                Distortion::Contrast { factor: num(0)? }
            }
            "hue" => {
                max_args(1)?;
                Distortion::Hue { degrees: num(0)? }
            }
            "sat" | "saturation" => {
                max_args(1)?;
                Distortion::Saturation { factor: num(0)? }
            }
            "noise" => {
                max_args(1)?;
                Distortion::Noise { sigma: num(0)? }
            }
            "grey" | "gray" | "greyscale" | "grayscale" => {
                max_args(0)?;
                Distortion::Grey
            }
            "gamma" => {
                max_args(1)?;
                Distortion::Gamma { gamma: num(0)? }
            }
            "pad" => {
                max_args(1)?;
                Distortion::Pad { fraction: num(0)? }
            }
            "corner" => {
                max_args(1)?;
                Distortion::Corner { fraction: num(0)? }
            }
            "turn" => {
                max_args(1)?;
                let q = num(0)?;
                if q.fract() != 0.0 || !(1.0..=3.0).contains(&q) {
                    return Err(bad("quarter turns must be 1, 2 or 3"));
                }
                Distortion::Turn { quarters: q as u8 }
            }
            "sharpen" => {
                max_args(1)?;
                Distortion::Sharpen { amount: num(0)? }
            }
            "mark" => {
                max_args(1)?;
                Distortion::Mark { fraction: num(0)? }
            }
            _ => return Err(bad("unknown kind")),
        };
        d.validate()?;
        Ok(d)
    }
}

impl Serialize for Distortion {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Distortion {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Parses a comma-separated list such as `blur:2,jpeg:30,flip`.
pub fn parse_list(s: &str) -> Result<Vec<Distortion>> {
    let items: Vec<&str> = s.split(',').filter(|p| !p.trim().is_empty()).collect();
    let mut v = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        if item.contains('+') {
            let parts: Vec<&str> = item
                .split('+')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .collect();
            return Err(Error::InvalidInput(format!(
                "distortion {:?}: a list scores each distortion alone, so it takes no `+` chain; write `{}` to score each, or give the chain to --query-distortion",
                item.trim(),
                parts.join(",")
            )));
        }
        // `motion:15,30`, as --psf writes it: the comma made the angle an item of its own
        let previous = i.checked_sub(1).map(|p| items[p].trim());
        if item.trim().parse::<f32>().is_ok()
            && let Some(motion) = previous.filter(|p| {
                p.to_ascii_lowercase().starts_with("motion:") && p.matches(':').count() == 1
            })
        {
            return Err(Error::InvalidInput(format!(
                "distortion {:?} after {motion:?}: in a list a motion's angle follows a second colon (`{motion}:{}`); commas separate distortions",
                item.trim(),
                item.trim()
            )));
        }
        // `blur:2,3`: a bare number after an item of one kind, read as a second strength
        if item.trim().parse::<f32>().is_ok()
            && let Some(kind) = previous.and_then(|p| p.split(':').next())
        {
            return Err(Error::InvalidInput(format!(
                "distortion {:?}: each item of a list names its kind; for {kind} at a second strength write `{kind}:{}`",
                item.trim(),
                item.trim()
            )));
        }
        v.push(item.parse()?);
    }
    if v.is_empty() {
        return Err(Error::InvalidInput(format!(
            "no distortions given; expected a comma-separated list of {SYNTAX}"
        )));
    }
    Ok(v)
}

/// Parses distortions applied one after another, joined by `+`: `blur:3+jpeg:75` is a photo
/// blurred, then saved as JPEG. A chain that would make the image's sides more than
/// [`MAX_CHAIN_GROWTH`] times the input's at some step is refused.
pub fn parse_chain(s: &str) -> Result<Vec<Distortion>> {
    let chain: Vec<Distortion> = s.split('+').map(str::parse).collect::<Result<_>>()?;
    let mut growth = 1.0f32;
    for (i, d) in chain.iter().enumerate() {
        growth *= d.growth();
        // a little slack for the rounding of products such as 1.6 x 2.5
        if growth > MAX_CHAIN_GROWTH * 1.0001 {
            return Err(Error::InvalidInput(format!(
                "distortion chain `{}`: after step {} (`{d}`) the image's sides are {growth} times the input's, over the {MAX_CHAIN_GROWTH} times a chain may make (as much as one `scale:{MAX_CHAIN_GROWTH}`)",
                chain_label(&chain),
                i + 1
            )));
        }
    }
    Ok(chain)
}

/// Applies `chain` in order, each step with `seed`.
pub fn apply_chain(chain: &[Distortion], img: &RgbImage, seed: u64) -> Result<RgbImage> {
    chain
        .iter()
        .try_fold(img.clone(), |img, d| d.apply(&img, seed))
}

/// The text form of a chain, as [`parse_chain`] reads it.
pub fn chain_label(chain: &[Distortion]) -> String {
    chain
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("+")
}

/// The default benchmark suite: each kind at a few strengths, mild to strong.
pub fn default_suite() -> Vec<Distortion> {
    use Distortion::*;
    let mut v = Vec::new();
    v.extend([1.0, 2.0, 3.0].map(|sigma| Blur { sigma }));
    v.extend([5.0, 10.0, 15.0].map(|length| Motion { length, angle: 0.0 }));
    v.extend([90, 50, 30, 10].map(|quality| Jpeg { quality }));
    v.extend([0.1, 0.2, 0.3].map(|fraction| Crop { fraction }));
    v.extend([0.5, 0.75, 1.5, 2.0].map(|factor| Scale { factor }));
    v.extend([5.0, 15.0].map(|degrees| Rotate {
        degrees,
        fill: RotateFill::Reflect,
    }));
    v.push(Flip);
    v.extend([-0.2, 0.2].map(|delta| Brightness { delta }));
    v.extend([0.6, 1.4].map(|factor| Contrast { factor }));
    v.push(Hue { degrees: 15.0 });
    v.push(Saturation { factor: 0.5 });
    v.extend([0.02, 0.05].map(|sigma| Noise { sigma }));
    v
}

/// A per-image seed from a base seed and the image name (stable across runs and platforms).
pub fn seed_for(base: u64, name: &str) -> u64 {
    crate::eval::stable_hash(name.as_bytes()) ^ base.wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

fn to_u8(v: f32) -> u8 {
    v.round().clamp(0.0, 255.0) as u8
}

fn map_pixels(img: &RgbImage, f: impl Fn(f32) -> f32) -> RgbImage {
    let mut out = img.clone();
    for c in out.iter_mut() {
        *c = to_u8(f(f32::from(*c)));
    }
    out
}

/// Mirrors a continuous coordinate into [0, n-1].
fn reflect_coord(x: f32, n: u32) -> f32 {
    if n <= 1 {
        return 0.0;
    }
    let last = (n - 1) as f32;
    let m = x.rem_euclid(2.0 * last);
    if m > last { 2.0 * last - m } else { m }
}

/// Bilinear sample with mirrored borders.
fn sample(img: &RgbImage, x: f32, y: f32) -> [f32; 3] {
    let (w, h) = img.dimensions();
    let x = reflect_coord(x, w);
    let y = reflect_coord(y, h);
    let x0 = x.floor() as u32;
    let y0 = y.floor() as u32;
    let x1 = (x0 + 1).min(w - 1);
    let y1 = (y0 + 1).min(h - 1);
    let fx = x - x0 as f32;
    let fy = y - y0 as f32;
    let p = |xx, yy| img.get_pixel(xx, yy).0.map(f32::from);
    let (a, b, c, d) = (p(x0, y0), p(x1, y0), p(x0, y1), p(x1, y1));
    std::array::from_fn(|k| {
        let top = a[k] + (b[k] - a[k]) * fx;
        let bot = c[k] + (d[k] - c[k]) * fx;
        top + (bot - top) * fy
    })
}

/// Gaussian blur of each channel ([`crate::imageops::gaussian_blur`]).
fn gaussian_blur(img: &RgbImage, sigma: f32) -> RgbImage {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let channels: Vec<ndarray::Array2<f32>> = (0..3)
        .map(|c| {
            let plane = ndarray::Array2::from_shape_fn((h, w), |(y, x)| {
                f32::from(img.get_pixel(x as u32, y as u32)[c])
            });
            crate::imageops::gaussian_blur(&plane, sigma)
        })
        .collect();
    RgbImage::from_fn(w as u32, h as u32, |x, y| {
        Rgb(std::array::from_fn(|c| {
            to_u8(channels[c][[y as usize, x as usize]])
        }))
    })
}

/// Averages `length` evenly spaced bilinear samples along a centred line at `angle` degrees.
fn motion_blur(img: &RgbImage, length: f32, angle: f32) -> RgbImage {
    let n = length.round().max(1.0) as usize;
    let (dx, dy) = {
        let a = angle.to_radians();
        (a.cos(), -a.sin())
    };
    let step = length / n as f32;
    let offsets: Vec<(f32, f32)> = (0..n)
        .map(|t| {
            let s = (t as f32 + 0.5) * step - length / 2.0;
            (s * dx, s * dy)
        })
        .collect();
    RgbImage::from_fn(img.width(), img.height(), |x, y| {
        let mut acc = [0.0f32; 3];
        for &(ox, oy) in &offsets {
            let p = sample(img, x as f32 + ox, y as f32 + oy);
            for c in 0..3 {
                acc[c] += p[c];
            }
        }
        Rgb(acc.map(|v| to_u8(v / n as f32)))
    })
}

fn jpeg_roundtrip(img: &RgbImage, quality: u8) -> Result<RgbImage> {
    let mut buf = Vec::new();
    let fail = |e: image::ImageError| Error::Decode {
        path: PathBuf::from(format!("<in-memory JPEG, quality {quality}>")),
        reason: e.to_string(),
    };
    JpegEncoder::new_with_quality(&mut buf, quality)
        .encode_image(img)
        .map_err(fail)?;
    Ok(
        image::load_from_memory_with_format(&buf, image::ImageFormat::Jpeg)
            .map_err(fail)?
            .to_rgb8(),
    )
}

fn greyscale(img: &RgbImage) -> RgbImage {
    let mut out = img.clone();
    for p in out.pixels_mut() {
        let l = to_u8(0.299 * f32::from(p[0]) + 0.587 * f32::from(p[1]) + 0.114 * f32::from(p[2]));
        *p = Rgb([l, l, l]);
    }
    out
}

fn pad(img: &RgbImage, fraction: f32) -> RgbImage {
    let (w, h) = img.dimensions();
    let (bx, by) = (
        (w as f32 * fraction).round() as u32,
        (h as f32 * fraction).round() as u32,
    );
    let mut out = RgbImage::from_pixel(w + 2 * bx, h + 2 * by, Rgb([255, 255, 255]));
    imageops::replace(&mut out, img, i64::from(bx), i64::from(by));
    out
}

fn corner_crop(img: &RgbImage, fraction: f32) -> RgbImage {
    let (w, h) = img.dimensions();
    let nw = ((w as f32 * (1.0 - fraction)).round() as u32).clamp(1, w);
    let nh = ((h as f32 * (1.0 - fraction)).round() as u32).clamp(1, h);
    imageops::crop_imm(img, 0, 0, nw, nh).to_image()
}

fn sharpen(img: &RgbImage, amount: f32) -> RgbImage {
    let blurred = gaussian_blur(img, 1.5);
    let mut out = img.clone();
    for (o, b) in out.iter_mut().zip(blurred.iter()) {
        let (c, bl) = (f32::from(*o), f32::from(*b));
        *o = to_u8(c + amount * (c - bl));
    }
    out
}

/// Glyphs of 5 x 7 cells, drawn from `seed`, in a row across `fraction` of the width, 2 cells
/// apart, in the lower right; each lit cell is blended half-way to white.
fn watermark(img: &RgbImage, fraction: f32, seed: u64) -> RgbImage {
    let (w, h) = img.dimensions();
    let mut out = img.clone();
    let glyphs = 8u32;
    let width = (w as f32 * fraction).max(1.0);
    // 8 glyphs of 5 cells plus 7 gaps of 2 cells.
    let cell = (width / (glyphs * 5 + (glyphs - 1) * 2) as f32).max(1.0);
    let x0 = w as f32 * 0.95 - width;
    let y0 = h as f32 * 0.92 - 7.0 * cell;
    let mut rng = SplitMix64::new(seed ^ 0x6d61_726b);
    for g in 0..glyphs {
        let bits = rng.next_u64();
        for cy in 0..7u32 {
            for cx in 0..5u32 {
                if bits >> (cy * 5 + cx) & 1 == 0 {
                    continue;
                }
                let gx = x0 + (g * 7 + cx) as f32 * cell;
                let gy = y0 + cy as f32 * cell;
                let (xa, ya) = (gx.max(0.0) as u32, gy.max(0.0) as u32);
                let (xb, yb) = (((gx + cell) as u32).min(w), ((gy + cell) as u32).min(h));
                for y in ya..yb {
                    for x in xa..xb {
                        let p = out.get_pixel_mut(x, y);
                        *p = Rgb(p.0.map(|c| to_u8(0.5 * f32::from(c) + 127.5)));
                    }
                }
            }
        }
    }
    out
}

fn centre_crop(img: &RgbImage, fraction: f32) -> RgbImage {
    let (w, h) = img.dimensions();
    let nw = ((w as f32 * (1.0 - fraction)).round() as u32).clamp(1, w);
    let nh = ((h as f32 * (1.0 - fraction)).round() as u32).clamp(1, h);
    imageops::crop_imm(img, (w - nw) / 2, (h - nh) / 2, nw, nh).to_image()
}

fn scale(img: &RgbImage, factor: f32) -> RgbImage {
    let (w, h) = img.dimensions();
    let nw = ((w as f32 * factor).round() as u32).max(1);
    let nh = ((h as f32 * factor).round() as u32).max(1);
    imageops::resize(img, nw, nh, FilterType::CatmullRom)
}

fn rotate(img: &RgbImage, degrees: f32, fill: RotateFill) -> RgbImage {
    let (w, h) = img.dimensions();
    let (wf, hf) = (w as f32, h as f32);
    let a = degrees.to_radians();
    let (sin, cos) = a.sin_cos();
    let zoom = match fill {
        RotateFill::Reflect => 1.0,
        RotateFill::Crop => {
            // largest s with an (s*w x s*h) centred rectangle inside the rotated w x h image
            let (s, c) = (sin.abs(), cos.abs());
            (wf / (wf * c + hf * s)).min(hf / (wf * s + hf * c))
        }
    };
    let cx = (wf - 1.0) / 2.0;
    let cy = (hf - 1.0) / 2.0;
    RgbImage::from_fn(w, h, |x, y| {
        let u = (x as f32 - cx) * zoom;
        let v = (y as f32 - cy) * zoom;
        // inverse rotation (image y axis points down; positive degrees turn counter-clockwise)
        let sx = cos * u - sin * v + cx;
        let sy = sin * u + cos * v + cy;
        Rgb(sample(img, sx, sy).map(to_u8))
    })
}

fn contrast(img: &RgbImage, factor: f32) -> RgbImage {
    let n = (img.width() * img.height()) as f64;
    let mean = img
        .pixels()
        .map(|p| 0.299 * f64::from(p[0]) + 0.587 * f64::from(p[1]) + 0.114 * f64::from(p[2]))
        .sum::<f64>()
        / n;
    let m = mean as f32;
    map_pixels(img, |c| m + factor * (c - m))
}

fn hsv_to_rgb([h, s, v]: [f32; 3]) -> [f32; 3] {
    let c = v * s;
    let hp = h.rem_euclid(360.0) / 60.0;
    let x = c * (1.0 - (hp.rem_euclid(2.0) - 1.0).abs());
    let (r, g, b) = match hp as u32 {
        0 => (c, x, 0.0),
        1 => (x, c, 0.0),
        2 => (0.0, c, x),
        3 => (0.0, x, c),
        4 => (x, 0.0, c),
        _ => (c, 0.0, x),
    };
    let m = v - c;
    [r + m, g + m, b + m]
}

fn hsv_adjust(img: &RgbImage, hue_degrees: f32, sat_factor: f32) -> RgbImage {
    let mut out = img.clone();
    for p in out.pixels_mut() {
        let [r, g, b] = p.0.map(f32::from);
        let [sixths, s, v] = rgb_to_hsv_sixths(r, g, b);
        let h = 60.0 * sixths;
        let rgb = hsv_to_rgb([h + hue_degrees, (s * sat_factor).clamp(0.0, 1.0), v]);
        p.0 = rgb.map(to_u8);
    }
    out
}

/// Uniform in (0, 1], so that its logarithm is finite.
fn unit(rng: &mut SplitMix64) -> f64 {
    ((rng.next_u64() >> 11) as f64 + 1.0) / (1u64 << 53) as f64
}

/// Two independent standard normal values (Box-Muller).
fn normal_pair(rng: &mut SplitMix64) -> (f64, f64) {
    let r = (-2.0 * unit(rng).ln()).sqrt();
    let t = std::f64::consts::TAU * unit(rng);
    (r * t.cos(), r * t.sin())
}

fn add_noise(img: &RgbImage, sigma: f32, seed: u64) -> RgbImage {
    let mut rng = SplitMix64::new(seed);
    let mut out = img.clone();
    let s = f64::from(sigma) * 255.0;
    let mut spare: Option<f64> = None;
    for c in out.iter_mut() {
        let n = match spare.take() {
            Some(n) => n,
            None => {
                let (a, b) = normal_pair(&mut rng);
                spare = Some(b);
                a
            }
        };
        *c = to_u8((f64::from(*c) + s * n) as f32);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A smooth colour gradient with a sharp square, 48x32.
    fn test_image() -> RgbImage {
        RgbImage::from_fn(48, 32, |x, y| {
            let inside = (16..28).contains(&x) && (8..20).contains(&y);
            if inside {
                Rgb([240, 30, 30])
            } else {
                Rgb([(x * 5) as u8, (y * 7) as u8, ((x + y) * 3) as u8])
            }
        })
    }

    fn mean_abs_diff(a: &RgbImage, b: &RgbImage) -> f64 {
        assert_eq!(a.dimensions(), b.dimensions());
        a.iter()
            .zip(b.iter())
            .map(|(&x, &y)| (f64::from(x) - f64::from(y)).abs())
            .sum::<f64>()
            / a.len() as f64
    }

    #[test]
    fn chains_parse_apply_in_order_and_print_back() {
        let chain = parse_chain("blur:2+jpeg:30").unwrap();
        assert_eq!(
            chain,
            vec![
                Distortion::Blur { sigma: 2.0 },
                Distortion::Jpeg { quality: 30 }
            ]
        );
        assert_eq!(chain_label(&chain), "blur:2+jpeg:30");
        let img = RgbImage::from_fn(48, 32, |x, y| Rgb([(x * 5) as u8, (y * 7) as u8, 90]));
        let by_hand = Distortion::Jpeg { quality: 30 }
            .apply(&Distortion::Blur { sigma: 2.0 }.apply(&img, 1).unwrap(), 1)
            .unwrap();
        assert_eq!(apply_chain(&chain, &img, 1).unwrap(), by_hand);
        assert_ne!(apply_chain(&chain, &img, 1).unwrap(), img);
        for bad in ["blur:2+", "+jpeg:30", "blur:2+nope"] {
            assert!(parse_chain(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn text_form_round_trips() {
        for s in [
            "blur:2",
            "motion:15",
            "motion:15:45",
            "jpeg:30",
            "crop:0.2",
            "scale:0.5",
            "rotate:10",
            "rotate:-5:crop",
            "flip",
            "brightness:0.2",
            "brightness:-0.2",
            "contrast:0.7",
            "hue:20",
            "sat:0.5",
            "noise:0.05",
        ] {
            let d: Distortion = s.parse().unwrap();
            assert_eq!(d.to_string(), s);
            assert_eq!(d.to_string().parse::<Distortion>().unwrap(), d);
        }
        for d in default_suite() {
            assert_eq!(d.to_string().parse::<Distortion>().unwrap(), d);
        }
        assert_eq!(
            "rotate:10:reflect"
                .parse::<Distortion>()
                .unwrap()
                .to_string(),
            "rotate:10"
        );
        let json = serde_json::to_string(&Distortion::Jpeg { quality: 30 }).unwrap();
        assert_eq!(json, "\"jpeg:30\"");
    }

    #[test]
    fn bad_specs_are_rejected() {
        for s in [
            "",
            "blurr:2",
            "blur",
            "blur:x",
            "jpeg:0",
            "jpeg:50.5",
            "scale:8",
            "flip:1",
            "rotate:5:wrap",
            "crop:1",
        ] {
            let e = s.parse::<Distortion>().unwrap_err().to_string();
            assert!(e.contains("distortion"), "{s}: {e}");
        }
        assert_eq!(parse_list("blur:1, jpeg:50 ,flip").unwrap().len(), 3);
        assert!(parse_list(" , ").is_err());
    }

    /// A motion takes the ranges `deblur --psf motion:LENGTH,ANGLE` takes: `motion:15:400` and
    /// `motion:150` were accepted here and refused there.
    #[test]
    fn motion_takes_the_ranges_of_the_psf() {
        for bad in ["motion:15:400", "motion:15:-361", "motion:150"] {
            let e = parse_list(bad).expect_err(bad).to_string();
            assert!(e.contains("-360..=360 degrees"), "{bad}: {e}");
        }
        for psf in ["motion:15,400", "motion:150,0"] {
            assert!(
                psf.parse::<crate::restore::psf::PsfSpec>().is_err(),
                "{psf}"
            );
        }
        for good in ["motion:15:360", "motion:100:-360", "motion:0"] {
            assert!(parse_list(good).is_ok(), "{good}");
        }
    }

    #[test]
    fn strength_reads_as_written() {
        let d: Distortion = "blur:0.2".parse().unwrap();
        assert_eq!(d.strength(), 0.2);
        let d: Distortion = "jpeg:30".parse().unwrap();
        assert_eq!(d.strength(), 30.0);
    }

    #[test]
    fn zero_strength_is_identity() {
        let img = test_image();
        for s in [
            "blur:0",
            "motion:0",
            "crop:0",
            "scale:1",
            "rotate:0",
            "brightness:0",
            "contrast:1",
            "hue:0",
            "sat:1",
            "noise:0",
        ] {
            let d: Distortion = s.parse().unwrap();
            assert_eq!(d.apply(&img, 1).unwrap(), img, "{s}");
        }
        // the real code paths at neutral settings also preserve the image (within rounding)
        assert_eq!(rotate(&img, 0.0, RotateFill::Reflect), img);
        assert_eq!(contrast(&img, 1.0), img);
        assert!(mean_abs_diff(&hsv_adjust(&img, 0.0, 1.0), &img) < 0.01);
        assert!(mean_abs_diff(&hsv_adjust(&img, 360.0, 1.0), &img) < 0.01);
    }

    /// Each step's factor was checked but not the chain's: `scale:4+scale:4+scale:4` made a
    /// 512-pixel query 32768 pixels a side (10 GB). A chain may enlarge the sides at most as
    /// much as one `scale:4`, at every step.
    #[test]
    fn a_chain_enlarges_no_more_than_one_scale_step() {
        for bad in [
            "scale:4+scale:4",
            "scale:4+scale:4+scale:4",
            "scale:2+scale:2.5",
            "scale:4+scale:4+scale:0.25",
            "pad:1+pad:1",
            "pad:0.5+scale:4",
        ] {
            let e = parse_chain(bad).expect_err(bad).to_string();
            assert!(
                e.contains("over the 4 times a chain may make"),
                "{bad}: {e}"
            );
        }
        for good in [
            "scale:4",
            "scale:2+scale:2",
            "scale:4+scale:0.25+scale:4",
            "crop:0.5+scale:4+scale:2",
            "pad:1+blur:2",
            "scale:1.6+scale:2.5",
        ] {
            assert!(parse_chain(good).is_ok(), "{good}");
        }
    }

    /// No distortion makes an image over the decoder's limits: `scale:4` of a 22000-pixel-wide
    /// strip would be 88000 pixels wide, `pad:1` 66000.
    #[test]
    fn no_distortion_makes_an_image_over_the_decoders_limits() {
        let strip = RgbImage::new(22_000, 1);
        for d in ["scale:4", "pad:1"] {
            let made = d.parse::<Distortion>().unwrap().apply(&strip, 0);
            let e = made.map(|img| img.dimensions()).expect_err(d).to_string();
            assert!(e.contains("over the 65535 pixels a side"), "{d}: {e}");
        }
        assert_eq!(
            Distortion::Scale { factor: 2.0 }
                .apply(&strip, 0)
                .unwrap()
                .dimensions(),
            (44_000, 2)
        );
    }

    #[test]
    fn sizes() {
        let img = test_image();
        let dims = |s: &str| {
            s.parse::<Distortion>()
                .unwrap()
                .apply(&img, 0)
                .unwrap()
                .dimensions()
        };
        assert_eq!(dims("crop:0.25"), (36, 24));
        assert_eq!(dims("scale:0.5"), (24, 16));
        assert_eq!(dims("scale:2"), (96, 64));
        assert_eq!(dims("scale:0.25"), (12, 8));
        for s in [
            "blur:2",
            "motion:9:30",
            "jpeg:40",
            "rotate:15",
            "rotate:15:crop",
            "flip",
            "hue:90",
            "noise:0.1",
        ] {
            assert_eq!(dims(s), (48, 32), "{s}");
        }
    }

    #[test]
    fn flip_twice_is_identity() {
        let img = test_image();
        let once = Distortion::Flip.apply(&img, 0).unwrap();
        assert_ne!(once, img);
        assert_eq!(once.get_pixel(0, 5), img.get_pixel(47, 5));
        assert_eq!(Distortion::Flip.apply(&once, 0).unwrap(), img);
    }

    #[test]
    fn jpeg_quality_orders_error() {
        let img = test_image();
        let err = |q| {
            mean_abs_diff(
                &Distortion::Jpeg { quality: q }.apply(&img, 0).unwrap(),
                &img,
            )
        };
        let (e100, e50, e10) = (err(100), err(50), err(10));
        assert!(e100 < 2.0, "quality 100 error {e100}");
        assert!(e100 < e50 && e50 < e10, "{e100} {e50} {e10}");
    }

    #[test]
    fn blur_smooths_and_preserves_flat_images() {
        let flat = RgbImage::from_pixel(20, 10, Rgb([100, 150, 200]));
        for s in ["blur:3", "motion:7:30", "rotate:33", "rotate:33:crop"] {
            let d: Distortion = s.parse().unwrap();
            assert_eq!(d.apply(&flat, 0).unwrap(), flat, "{s}");
        }
        let img = test_image();
        let b1 = gaussian_blur(&img, 1.0);
        let b3 = gaussian_blur(&img, 3.0);
        assert!(mean_abs_diff(&img, &b1) < mean_abs_diff(&img, &b3));
        // the blurred square edge is no longer sharp
        assert!(b3.get_pixel(16, 14)[0] < 240 && b3.get_pixel(16, 14)[0] > 100);
        // horizontal motion blur leaves a horizontally constant image unchanged
        let stripes = RgbImage::from_fn(20, 10, |_, y| Rgb([(y * 20) as u8, 0, 0]));
        assert_eq!(motion_blur(&stripes, 9.0, 0.0), stripes);
    }

    #[test]
    fn rotation_by_180_reverses_the_image() {
        let img = test_image();
        let r = rotate(&img, 180.0, RotateFill::Reflect);
        let expect = imageops::rotate180(&img);
        assert!(
            mean_abs_diff(&r, &expect) < 0.5,
            "{}",
            mean_abs_diff(&r, &expect)
        );
    }

    #[test]
    fn photometric_changes() {
        let img = test_image();
        let brighter = "brightness:0.2"
            .parse::<Distortion>()
            .unwrap()
            .apply(&img, 0)
            .unwrap();
        assert_eq!(brighter.get_pixel(0, 0)[0], 51);
        assert_eq!(brighter.get_pixel(20, 10)[0], 255);
        let grey = "contrast:0"
            .parse::<Distortion>()
            .unwrap()
            .apply(&img, 0)
            .unwrap();
        let p = grey.get_pixel(3, 3);
        assert!(p[0] == p[1] && p[1] == p[2] && grey.get_pixel(40, 30) == p);
        // hue by 120 degrees maps pure red to pure green
        let red = RgbImage::from_pixel(2, 2, Rgb([200, 0, 0]));
        assert_eq!(
            hsv_adjust(&red, 120.0, 1.0).get_pixel(0, 0),
            &Rgb([0, 200, 0])
        );
        assert_eq!(
            hsv_adjust(&red, 0.0, 0.0).get_pixel(0, 0),
            &Rgb([200, 200, 200])
        );
    }

    #[test]
    fn noise_is_seeded() {
        let img = RgbImage::from_pixel(64, 64, Rgb([128, 128, 128]));
        let d = Distortion::Noise { sigma: 0.05 };
        let a = d.apply(&img, 7).unwrap();
        assert_eq!(a, d.apply(&img, 7).unwrap());
        assert_ne!(a, d.apply(&img, 8).unwrap());
        let vals: Vec<f64> = a.iter().map(|&v| f64::from(v) - 128.0).collect();
        let mean = vals.iter().sum::<f64>() / vals.len() as f64;
        let sd = (vals.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / vals.len() as f64).sqrt();
        assert!(mean.abs() < 0.5, "mean {mean}");
        assert!((sd - 0.05 * 255.0).abs() < 0.6, "sd {sd}");
        assert_ne!(seed_for(1, "a.jpg"), seed_for(1, "b.jpg"));
    }
}
