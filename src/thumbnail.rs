//! Thumbnails: a small JPEG of each indexed image, made from the decoded picture at index time
//! and stored by content hash, for `lookalike serve`.

use std::path::Path;

use image::RgbImage;

use crate::decode::{DecodeConfig, decode, shrunk_to_fit};
use crate::error::Result;

/// A thumbnail fits in a square of this side, in pixels.
pub(crate) const SIDE: u32 = 256;

/// JPEG quality of thumbnails: small files, no visible blocks at this size.
const QUALITY: u8 = 80;

/// The JPEG thumbnail of an upright picture (shrunk to fit [`SIDE`], never enlarged), its
/// colours converted to sRGB from `icc`, the colour profile of the file it was decoded from.
pub(crate) fn encode(picture: &RgbImage, icc: Option<&[u8]>) -> Vec<u8> {
    let mut small = shrunk_to_fit(picture, SIDE);
    if let Some(icc) = icc {
        to_srgb(&mut small, icc);
    }
    let mut out = Vec::with_capacity(16 * 1024);
    // The side is at most SIDE, so it fits the encoder's u16.
    jpeg_encoder::Encoder::new(&mut out, QUALITY)
        .encode(
            small.as_raw(),
            small.width() as u16,
            small.height() as u16,
            jpeg_encoder::ColorType::Rgb,
        )
        .expect("encoding an RGB buffer in memory cannot fail");
    out
}

/// Decodes an image file's bytes (under the decoding limits of `cfg`) and makes its thumbnail:
/// for images indexed before thumbnails were stored.
pub fn from_bytes(bytes: &[u8], path: &Path, cfg: &DecodeConfig) -> Result<Vec<u8>> {
    let cfg = DecodeConfig {
        working_size: SIDE,
        ..*cfg
    };
    let decoded = decode(bytes, path, &cfg)?;
    Ok(encode(
        &decoded.image,
        crate::decode::icc_profile(bytes, path).as_deref(),
    ))
}

/// Converts a picture whose values are in the colour space of the ICC profile `icc` (RGB or
/// grey) to sRGB, as a colour-managed browser shows the file; left as it is when the profile
/// does not parse or describes another kind of colour space (CMYK, Lab).
fn to_srgb(picture: &mut RgbImage, icc: &[u8]) {
    use moxcms::{ColorProfile, DataColorSpace, Layout, TransformOptions};
    let Ok(profile) = ColorProfile::new_from_slice(icc) else {
        return;
    };
    let grey = match profile.color_space {
        DataColorSpace::Rgb => false,
        DataColorSpace::Gray => true,
        _ => return,
    };
    let source: Vec<u8> = if grey {
        picture.pixels().map(|p| p[0]).collect()
    } else {
        picture.as_raw().clone()
    };
    let layout = if grey { Layout::Gray } else { Layout::Rgb };
    let converted = std::panic::catch_unwind(|| {
        let transform = profile
            .create_transform_8bit(
                layout,
                &ColorProfile::new_srgb(),
                Layout::Rgb,
                TransformOptions::default(),
            )
            .ok()?;
        let mut out = vec![0u8; source.len() / if grey { 1 } else { 3 } * 3];
        transform.transform(&source, &mut out).ok()?;
        Some(out)
    });
    if let Ok(Some(out)) = converted
        && let Some(srgb) = RgbImage::from_raw(picture.width(), picture.height(), out)
    {
        *picture = srgb;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thumbnails_fit_the_side_and_keep_the_aspect_ratio() {
        let picture = RgbImage::from_fn(1000, 500, |x, y| {
            image::Rgb([(x % 256) as u8, (y % 256) as u8, 90])
        });
        let jpeg = encode(&picture, None);
        let back = image::load_from_memory(&jpeg).unwrap();
        assert_eq!((back.width(), back.height()), (SIDE, SIDE / 2));
        assert!(jpeg.starts_with(&[0xFF, 0xD8, 0xFF]));
        let tiny = RgbImage::from_pixel(3, 2, image::Rgb([1, 2, 3]));
        let back = image::load_from_memory(&encode(&tiny, None)).unwrap();
        assert_eq!((back.width(), back.height()), (3, 2));
    }

    /// A PNG of one flat colour carrying the colour profile `icc`.
    fn flat_png(colour: [u8; 3], icc: Option<Vec<u8>>) -> Vec<u8> {
        use image::ImageEncoder;
        let picture = RgbImage::from_pixel(64, 48, image::Rgb(colour));
        let mut png = Vec::new();
        let mut encoder = image::codecs::png::PngEncoder::new(&mut png);
        if let Some(icc) = icc {
            encoder.set_icc_profile(icc).unwrap();
        }
        encoder
            .write_image(picture.as_raw(), 64, 48, image::ExtendedColorType::Rgb8)
            .unwrap();
        png
    }

    fn thumbnail_colour(png: &[u8]) -> [i32; 3] {
        let jpeg = from_bytes(png, Path::new("p.png"), &DecodeConfig::default()).unwrap();
        let p = image::load_from_memory(&jpeg).unwrap().to_rgb8()[(32, 24)];
        [p[0], p[1], p[2]].map(i32::from)
    }

    #[test]
    fn a_thumbnail_shows_a_wide_gamut_file_in_srgb_as_browsers_do() {
        let p3 = moxcms::ColorProfile::new_display_p3().encode().unwrap();
        // Display P3 (200, 60, 60) is sRGB (218, 42, 52): the P3-to-sRGB matrix on linear
        // values, both with the sRGB transfer curve.
        let shown = thumbnail_colour(&flat_png([200, 60, 60], Some(p3)));
        let expected = [218, 42, 52];
        assert!(
            shown.iter().zip(expected).all(|(a, b)| (a - b).abs() <= 3),
            "{shown:?}, expected about {expected:?}"
        );
        // Without a profile the values are sRGB already.
        let plain = thumbnail_colour(&flat_png([200, 60, 60], None));
        assert!(
            plain
                .iter()
                .zip([200, 60, 60])
                .all(|(a, b)| (a - b).abs() <= 3),
            "{plain:?}"
        );
    }

    #[test]
    fn a_grey_profile_gives_grey_and_a_profile_that_does_not_parse_changes_nothing() {
        let grey = moxcms::ColorProfile::new_gray_with_gamma(2.2)
            .encode()
            .unwrap();
        let shown = thumbnail_colour(&flat_png([100, 100, 100], Some(grey)));
        // Gamma 2.2 and the sRGB curve nearly agree at 100: grey 100 stays about 100.
        assert!(shown.iter().all(|v| (v - 100).abs() <= 3), "{shown:?}");
        let junk = thumbnail_colour(&flat_png([200, 60, 60], Some(vec![7; 200])));
        assert!(
            junk.iter()
                .zip([200, 60, 60])
                .all(|(a, b)| (a - b).abs() <= 3),
            "{junk:?}"
        );
    }
}
