//! Thumbnails: a small JPEG of each indexed image, made from the decoded picture at index time
//! and stored by content hash, for `lookalike serve`.

use std::path::Path;

use image::RgbImage;

use crate::decode::{DecodeConfig, decode, resize_to_fit};
use crate::error::Result;

/// A thumbnail fits in a square of this side, in pixels.
pub(crate) const SIDE: u32 = 256;

/// JPEG quality of thumbnails: small files, no visible blocks at this size.
const QUALITY: u8 = 80;

/// The JPEG thumbnail of an upright picture (shrunk to fit [`SIDE`], never enlarged).
pub(crate) fn encode(picture: &RgbImage) -> Vec<u8> {
    let small = resize_to_fit(picture, SIDE);
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
    Ok(encode(&decoded.image))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thumbnails_fit_the_side_and_keep_the_aspect_ratio() {
        let picture = RgbImage::from_fn(1000, 500, |x, y| {
            image::Rgb([(x % 256) as u8, (y % 256) as u8, 90])
        });
        let jpeg = encode(&picture);
        let back = image::load_from_memory(&jpeg).unwrap();
        assert_eq!((back.width(), back.height()), (SIDE, SIDE / 2));
        assert!(jpeg.starts_with(&[0xFF, 0xD8, 0xFF]));
        let tiny = RgbImage::from_pixel(3, 2, image::Rgb([1, 2, 3]));
        let back = image::load_from_memory(&encode(&tiny)).unwrap();
        assert_eq!((back.width(), back.height()), (3, 2));
    }
}
