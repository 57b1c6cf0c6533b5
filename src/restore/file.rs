//! Image files for the restoration commands: read upright with any alpha kept aside, written in
//! the format the extension names through a temporary file, so a failed write leaves an
//! existing file as it was.

use std::io::{BufWriter, Write};
use std::path::Path;

use image::codecs::jpeg::JpegEncoder;
use image::codecs::pnm::{PnmEncoder, PnmSubtype, SampleEncoding};
use image::codecs::tga::TgaEncoder;
use image::{DynamicImage, GrayImage, ImageFormat};

use super::color::Planes;
use crate::{Error, Result};

/// JPEG quality of written JPEGs: high, as a restored photo should lose little more.
pub const JPEG_QUALITY: u8 = 95;

/// A decoded image file.
#[derive(Debug, Clone)]
pub struct ImageFile {
    /// The colour or grey channels, upright, values in `[0, 1]`, in sRGB: an image with an RGB
    /// (grey) colour profile is converted from it, as thumbnails are.
    pub planes: Planes,
    /// The alpha channel, when the file has one: written back unchanged.
    pub alpha: Option<GrayImage>,
    /// The format the content was read as, for the formats the `image` crate names.
    pub format: Option<ImageFormat>,
    /// Stored by a lossy block codec: JPEG, lossy WebP, HEIC/AVIF (taken as lossy: libheif
    /// does not tell), or JPEG XL unless coded losslessly.
    pub lossy: bool,
    /// More than 8 bits a channel (16-bit or floating point), which [`save_at_depth`] keeps in
    /// PNG and TIFF.
    pub deep: bool,
    /// An animation (GIF, APNG, WebP or JPEG XL of more than one frame, an AVIF or HEIF image
    /// sequence) or a TIFF of several pages: only its first frame (page) is read.
    pub animated: bool,
}

/// Reads and decodes an image file, upright (EXIF orientation applied), within `cfg`'s limits.
pub fn load(path: &Path, cfg: &crate::decode::DecodeConfig) -> Result<ImageFile> {
    load_inner(path, cfg, None)
}

/// As [`load`], refusing an image whose `work` needs more than `budget_mib`
/// ([`super::memory::check`]): from its header's size before decoding where the header can be
/// read, and once decoded, before its float planes are made.
pub fn load_for(
    path: &Path,
    cfg: &crate::decode::DecodeConfig,
    work: super::memory::Work,
    budget_mib: u64,
) -> Result<ImageFile> {
    load_inner(path, cfg, Some((work, budget_mib)))
}

fn load_inner(
    path: &Path,
    cfg: &crate::decode::DecodeConfig,
    work: Option<(super::memory::Work, u64)>,
) -> Result<ImageFile> {
    let bytes = crate::decode::read_image_file(path, cfg)?;
    // refused from the header's size where it can be read, before decoding
    if let Some((work, budget_mib)) = work
        && let Some((size, colour)) = crate::decode::header_size(&bytes, path)
    {
        super::memory::check(path, size, colour, work, budget_mib)?;
    }
    let crate::decode::FullSize { image: img, format } =
        crate::decode::decode_full_size(&bytes, path, cfg)?;
    if let Some((work, budget_mib)) = work {
        let colour = img.color().has_color();
        super::memory::check(path, (img.width(), img.height()), colour, work, budget_mib)?;
    }
    let mut planes = Planes::from_image(&img);
    if let Some(icc) = crate::decode::icc_profile(&bytes, path) {
        to_srgb(&mut planes, &icc);
    }
    let jxl = crate::decode::jxl_coding(&bytes);
    let alpha = img.color().has_alpha().then(|| {
        let rgba = img.to_rgba8();
        GrayImage::from_fn(rgba.width(), rgba.height(), |x, y| {
            image::Luma([rgba.get_pixel(x, y)[3]])
        })
    });
    Ok(ImageFile {
        planes,
        alpha,
        format,
        lossy: jxl.map_or_else(|| is_lossy(&bytes), |c| !c.lossless),
        deep: img.color().bytes_per_pixel() > img.color().channel_count(),
        animated: match jxl {
            Some(coding) => coding.animated,
            // read as a format of the `image` crate: not a RAW file's directories
            None => {
                crate::decode::heif_is_sequence(&bytes) || (format.is_some() && is_animated(&bytes))
            }
        },
    })
}

/// Converts `planes`, whose values are in the colour space of the ICC profile `icc`, to sRGB, as
/// a colour-managed viewer shows them: outputs carry no profile and must look as the input did.
/// Left as they are when the profile does not parse, does not match the planes (CMYK, Lab, grey
/// for colour), or is sRGB already (a probe of colours comes back within 1/4096).
fn to_srgb(planes: &mut Planes, icc: &[u8]) {
    use moxcms::{ColorProfile, DataColorSpace, Layout, TransformOptions};
    let Ok(profile) = ColorProfile::new_from_slice(icc) else {
        return;
    };
    let (layout, channels) = match (&*planes, profile.color_space) {
        (Planes::Rgb(_), DataColorSpace::Rgb) => (Layout::Rgb, 3),
        (Planes::Grey(_), DataColorSpace::Gray) => (Layout::Gray, 1),
        _ => return,
    };
    let converted = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let transform = profile
            .create_transform_f32(
                layout,
                &ColorProfile::new_srgb(),
                Layout::Rgb,
                TransformOptions::default(),
            )
            .ok()?;
        // ramps of grey and of each primary
        let probe: Vec<f32> = (0..=16)
            .flat_map(|k| {
                let v = k as f32 / 16.0;
                if channels == 1 {
                    vec![v]
                } else {
                    vec![v, v, v, v, 0.0, 0.0, 0.0, v, 0.0, 0.0, 0.0, v]
                }
            })
            .collect();
        let mut seen = vec![0.0f32; probe.len() / channels * 3];
        transform.transform(&probe, &mut seen).ok()?;
        let unchanged = seen
            .chunks(3)
            .zip(probe.chunks(channels))
            .all(|(out, inp)| (0..3).all(|c| (out[c] - inp[c % channels]).abs() < 1.0 / 4096.0));
        if unchanged {
            return None;
        }
        let mut out = planes.clone();
        let (rows, cols) = planes.dim();
        let mut source = vec![0.0f32; cols * channels];
        let mut row = vec![0.0f32; cols * 3];
        for r in 0..rows {
            for (k, plane) in planes.channels().iter().enumerate() {
                for c in 0..cols {
                    source[c * channels + k] = plane[(r, c)];
                }
            }
            transform.transform(&source, &mut row).ok()?;
            let written = match &mut out {
                Planes::Grey(p) => vec![p],
                Planes::Rgb(ps) => ps.iter_mut().collect(),
            };
            for (k, plane) in written.into_iter().enumerate() {
                for c in 0..cols {
                    plane[(r, c)] = row[c * 3 + k].clamp(0.0, 1.0);
                }
            }
        }
        Some(out)
    }));
    if let Ok(Some(out)) = converted {
        *planes = out;
    }
}

/// Whether `bytes` hold an animation whose frames after the first are not read: a GIF of two
/// or more images, a PNG with an animation control chunk (APNG), a WebP flagged animated, or a
/// TIFF of two or more pages.
fn is_animated(bytes: &[u8]) -> bool {
    if bytes.starts_with(b"II*\0") || bytes.starts_with(b"MM\0*") {
        return crate::decode::raw::tiff_pages(bytes) > 1;
    }
    if bytes.starts_with(b"GIF8") {
        return gif_frames(bytes) > 1;
    }
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        // chunks before the image data: acTL must come before IDAT
        let mut at = 8usize;
        while let Some(head) = bytes.get(at..at.saturating_add(8)) {
            match &head[4..8] {
                b"acTL" => return true,
                b"IDAT" => return false,
                _ => {}
            }
            let size = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize;
            at = at.saturating_add(12).saturating_add(size);
        }
        return false;
    }
    // WebP's extended header: the animation flag
    bytes.starts_with(b"RIFF")
        && bytes.get(8..16) == Some(b"WEBPVP8X")
        && bytes.get(20).is_some_and(|flags| flags & 0x02 != 0)
}

/// Images in a GIF, counted up to 2 by walking its blocks (0 when the walk fails).
fn gif_frames(bytes: &[u8]) -> usize {
    // header (6) and logical screen descriptor (7), then the global colour table
    let Some(&packed) = bytes.get(10) else {
        return 0;
    };
    let table = |packed: u8| {
        if packed & 0x80 != 0 {
            3usize << ((packed & 0x07) + 1)
        } else {
            0
        }
    };
    // data sub-blocks from `at`: the offset after their terminator
    let skip_sub_blocks = |mut at: usize| -> Option<usize> {
        loop {
            let size = *bytes.get(at)? as usize;
            at = at.checked_add(1 + size)?;
            if size == 0 {
                return Some(at);
            }
        }
    };
    let mut at = 13 + table(packed);
    let mut frames = 0;
    while frames < 2 {
        match bytes.get(at) {
            Some(0x21) => match skip_sub_blocks(at + 2) {
                Some(next) => at = next,
                None => break,
            },
            Some(0x2C) => {
                frames += 1;
                let Some(&local) = bytes.get(at + 9) else {
                    break;
                };
                // descriptor (10), local colour table, LZW code size (1), then the data
                match skip_sub_blocks(at + 10 + table(local) + 1) {
                    Some(next) => at = next,
                    None => break,
                }
            }
            _ => break,
        }
    }
    frames
}

/// Whether a WebP file holds a lossy (VP8) image: its first chunk, or, in the extended
/// container (VP8X, when the file carries metadata or animation), any chunk.
fn webp_is_lossy(bytes: &[u8]) -> bool {
    let mut at = 12usize;
    while let Some(head) = bytes.get(at..at.saturating_add(8)) {
        if &head[..4] == b"VP8 " {
            return true;
        }
        let size = u32::from_le_bytes([head[4], head[5], head[6], head[7]]) as usize;
        at = at
            .saturating_add(8)
            .saturating_add(size.saturating_add(size & 1));
    }
    false
}

/// Whether `bytes` start as a file of a lossy block codec: JPEG, WebP's lossy (VP8) kind, an
/// ISO media file (HEIC, AVIF: libheif does not tell a lossless one), or JPEG XL (its headers
/// tell a lossless one; [`load`] asks them first).
fn is_lossy(bytes: &[u8]) -> bool {
    bytes.starts_with(&[0xFF, 0xD8, 0xFF])
        || (bytes.starts_with(b"RIFF") && bytes.get(8..12) == Some(b"WEBP") && webp_is_lossy(bytes))
        || bytes.get(4..8) == Some(b"ftyp")
        || bytes.starts_with(&[0xFF, 0x0A])
        || bytes.starts_with(b"\0\0\0\x0cJXL ")
}

/// `path`'s extension, lowercase.
fn lowercase_extension(path: &Path) -> Option<String> {
    path.extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
}

/// Every extension an output may have, and the format written under it: each read extension of
/// a format written (`.pbm`, black and white, is not written).
const WRITTEN_EXTENSIONS: &[(&str, ImageFormat)] = &[
    ("jpg", ImageFormat::Jpeg),
    ("jpeg", ImageFormat::Jpeg),
    ("jpe", ImageFormat::Jpeg),
    ("jfif", ImageFormat::Jpeg),
    ("png", ImageFormat::Png),
    ("apng", ImageFormat::Png),
    ("webp", ImageFormat::WebP),
    ("gif", ImageFormat::Gif),
    ("bmp", ImageFormat::Bmp),
    ("dib", ImageFormat::Bmp),
    ("tif", ImageFormat::Tiff),
    ("tiff", ImageFormat::Tiff),
    ("pnm", ImageFormat::Pnm),
    ("pgm", ImageFormat::Pnm),
    ("ppm", ImageFormat::Pnm),
    ("pam", ImageFormat::Pnm),
    ("qoi", ImageFormat::Qoi),
    ("ico", ImageFormat::Ico),
    ("tga", ImageFormat::Tga),
];

/// The format `path`'s extension asks for (each read extension of a written format is taken),
/// refused before any work when it cannot be written.
pub fn output_format(path: &Path) -> Result<ImageFormat> {
    let refuse = |why: &str| {
        Err(Error::InvalidInput(format!(
            "cannot write {}: {why} (use an extension such as .png, .jpg, .tif or .webp)",
            crate::path_repr::shown(path)
        )))
    };
    let extension = lowercase_extension(path);
    let Some(extension) = extension.as_deref() else {
        return refuse("its extension names no image format");
    };
    if let Some(&(_, format)) = WRITTEN_EXTENSIONS.iter().find(|(e, _)| *e == extension) {
        return Ok(format);
    }
    match ImageFormat::from_extension(extension) {
        _ if extension == "pbm" => refuse("black-and-white .pbm is not written"),
        Some(format) => refuse(&format!("{format:?} files are not written")),
        None if crate::crawl::IMAGE_EXTENSIONS.contains(&extension)
            || crate::decode::raw::RAW_EXTENSIONS.contains(&extension) =>
        {
            refuse("that format is read but not written")
        }
        None => refuse("its extension names no image format"),
    }
}

/// Refuses, before any work, an image of `width` x `height` that `path`'s format cannot hold:
/// icons are at most 256 pixels a side, WebP 16383, GIF 65535.
pub fn check_fits(path: &Path, width: usize, height: usize) -> Result<()> {
    let most = match output_format(path)? {
        ImageFormat::Ico => 256,
        ImageFormat::WebP => 16_383,
        ImageFormat::Gif => 65_535,
        _ => return Ok(()),
    };
    if width > most || height > most {
        return Err(Error::InvalidInput(format!(
            "cannot write {}: the image is {width}x{height} pixels and this format holds at most {most} a side; use .png or .tif",
            crate::path_repr::shown(path)
        )));
    }
    Ok(())
}

/// Writes `planes` (8 bits per channel) with `alpha`, if any, as the file `path`; the format
/// follows the extension ([`output_format`]); JPEG at [`JPEG_QUALITY`]. Alpha goes where the
/// format holds it; a JPEG, PGM, PPM or PNM gets the image flattened on white (PAM keeps alpha).
pub fn save(planes: &Planes, alpha: Option<&GrayImage>, path: &Path) -> Result<()> {
    save_at_depth(planes, alpha, path, false).map(|_| ())
}

/// [`save`], at 16 bits a channel when `deep` (the input had more than 8) and the format holds
/// them (PNG and TIFF); true when written at 16 bits.
pub fn save_at_depth(
    planes: &Planes,
    alpha: Option<&GrayImage>,
    path: &Path,
    deep: bool,
) -> Result<bool> {
    let format = output_format(path)?;
    if deep && matches!(format, ImageFormat::Png | ImageFormat::Tiff) {
        let img = match planes.to_image16(alpha)? {
            // TIFF holds alpha only beside colour
            DynamicImage::ImageLumaA16(grey) if format == ImageFormat::Tiff => {
                DynamicImage::ImageRgba16(DynamicImage::ImageLumaA16(grey).to_rgba16())
            }
            img => img,
        };
        write_atomically(path, |out| encode(&img, format, path, out))?;
        return Ok(true);
    }
    // PAM, of the PNM family, has an alpha tuple type
    let holds_alpha = match format {
        ImageFormat::Jpeg => false,
        ImageFormat::Pnm => lowercase_extension(path).as_deref() == Some("pam"),
        _ => true,
    };
    let img = in_format_layout(with_alpha(planes.to_image()?, alpha, holds_alpha), format);
    write_atomically(path, |out| encode(&img, format, path, out))?;
    Ok(false)
}

/// Whether a file of `format` named `from` copied to `to` is what `to`'s extension asks for:
/// always, but for PNM, whose extensions name subtypes (`.pgm` grey, `.ppm` colour...).
pub fn same_subtype(from: &Path, to: &Path, format: ImageFormat) -> bool {
    format != ImageFormat::Pnm || lowercase_extension(from) == lowercase_extension(to)
}

/// Copies the file `from` to `to` byte for byte, through a temporary file.
pub fn copy(from: &Path, to: &Path) -> Result<()> {
    let bytes = std::fs::read(from).map_err(|e| Error::io(from, e))?;
    write_bytes(to, &bytes)
}

/// Writes `bytes` as the file `to`, through a temporary file.
pub fn write_bytes(to: &Path, bytes: &[u8]) -> Result<()> {
    write_atomically(to, |out| out.write_all(bytes).map_err(|e| Error::io(to, e)))
}

/// The image with its alpha channel, or flattened on white when the format holds none.
fn with_alpha(img: DynamicImage, alpha: Option<&GrayImage>, holds_alpha: bool) -> DynamicImage {
    let Some(alpha) = alpha.filter(|a| a.dimensions() == (img.width(), img.height())) else {
        return img;
    };
    let mut rgba = img.to_rgba8();
    for (p, a) in rgba.pixels_mut().zip(alpha.pixels()) {
        p[3] = a[0];
    }
    let img = DynamicImage::ImageRgba8(rgba);
    let grey = planes_are_grey(&img);
    match (holds_alpha, grey) {
        (true, true) => DynamicImage::ImageLumaA8(img.to_luma_alpha8()),
        (true, false) => img,
        (false, true) => DynamicImage::ImageRgb8(crate::decode::flatten_to_rgb(img)).grayscale(),
        (false, false) => DynamicImage::ImageRgb8(crate::decode::flatten_to_rgb(img)),
    }
}

/// The image in a channel layout `format`'s encoder takes and its readers expect: GIF and QOI
/// hold colour only, BMP and TIFF hold alpha only beside colour, and icons are RGBA.
fn in_format_layout(img: DynamicImage, format: ImageFormat) -> DynamicImage {
    match (format, &img) {
        (ImageFormat::Ico, _) => DynamicImage::ImageRgba8(img.to_rgba8()),
        (ImageFormat::Gif | ImageFormat::Qoi, DynamicImage::ImageLuma8(_)) => {
            DynamicImage::ImageRgb8(img.to_rgb8())
        }
        (
            ImageFormat::Gif | ImageFormat::Qoi | ImageFormat::Bmp | ImageFormat::Tiff,
            DynamicImage::ImageLumaA8(_),
        ) => DynamicImage::ImageRgba8(img.to_rgba8()),
        _ => img,
    }
}

fn planes_are_grey(img: &DynamicImage) -> bool {
    img.as_rgba8()
        .is_some_and(|rgba| rgba.pixels().all(|p| p[0] == p[1] && p[1] == p[2]))
}

/// Encodes `img` in `format` onto `out`: PNM by its extension's own subtype (`.pgm` grey,
/// `.ppm` colour, `.pnm` as the image is, `.pam` PAM).
fn encode(
    img: &DynamicImage,
    format: ImageFormat,
    path: &Path,
    out: &mut BufWriter<std::fs::File>,
) -> Result<()> {
    let failed = |e: image::ImageError| match e {
        image::ImageError::IoError(io) => Error::io(path, io),
        other => Error::InvalidInput(format!(
            "cannot write {}: {other} (use an extension such as .png)",
            crate::path_repr::shown(path)
        )),
    };
    match format {
        ImageFormat::Jpeg => {
            let encoder = JpegEncoder::new_with_quality(&mut *out, JPEG_QUALITY);
            img.write_with_encoder(encoder).map_err(failed)
        }
        ImageFormat::Pnm => {
            let extension = lowercase_extension(path);
            let grey = matches!(img, DynamicImage::ImageLuma8(_));
            let (subtype, img) = match extension.as_deref() {
                Some("pam") => (None, img.clone()),
                Some("pgm") => (
                    Some(PnmSubtype::Graymap(SampleEncoding::Binary)),
                    img.grayscale(),
                ),
                Some("pnm") if grey => (
                    Some(PnmSubtype::Graymap(SampleEncoding::Binary)),
                    img.clone(),
                ),
                _ => (
                    Some(PnmSubtype::Pixmap(SampleEncoding::Binary)),
                    DynamicImage::ImageRgb8(img.to_rgb8()),
                ),
            };
            let encoder = PnmEncoder::new(&mut *out);
            let encoder = match subtype {
                Some(subtype) => encoder.with_subtype(subtype),
                None => encoder,
            };
            img.write_with_encoder(encoder).map_err(failed)
        }
        ImageFormat::Tiff => write_tiff(img, out).map_err(|e| match e {
            tiff::TiffError::IoError(io) => Error::io(path, io),
            other => Error::InvalidInput(format!(
                "cannot write {}: {other} (use an extension such as .png)",
                crate::path_repr::shown(path)
            )),
        }),
        // run-length packets kept within a row, as most readers expect
        ImageFormat::Tga => img
            .write_with_encoder(TgaEncoder::new(&mut *out).disable_rle())
            .map_err(failed),
        _ => img.write_to(out, format).map_err(failed),
    }
}

/// Writes `img` as an uncompressed TIFF, its alpha tagged as unassociated (ExtraSamples 2), which
/// the TIFF specification requires of a fourth sample and without which libtiff reads the
/// alpha as premultiplied; grey with alpha is written as colour with alpha.
fn write_tiff(
    img: &DynamicImage,
    out: &mut BufWriter<std::fs::File>,
) -> std::result::Result<(), tiff::TiffError> {
    use tiff::encoder::colortype::{Gray8, Gray16, RGB8, RGB16, RGBA8, RGBA16};
    let mut encoder = tiff::encoder::TiffEncoder::new(out)?;
    let (w, h) = (img.width(), img.height());
    match img {
        DynamicImage::ImageLuma8(i) => tiff_image::<Gray8>(&mut encoder, w, h, i.as_raw(), false),
        DynamicImage::ImageRgb8(i) => tiff_image::<RGB8>(&mut encoder, w, h, i.as_raw(), false),
        DynamicImage::ImageLuma16(i) => tiff_image::<Gray16>(&mut encoder, w, h, i.as_raw(), false),
        DynamicImage::ImageRgb16(i) => tiff_image::<RGB16>(&mut encoder, w, h, i.as_raw(), false),
        DynamicImage::ImageRgba16(i) => tiff_image::<RGBA16>(&mut encoder, w, h, i.as_raw(), true),
        DynamicImage::ImageLumaA16(_) => {
            tiff_image::<RGBA16>(&mut encoder, w, h, img.to_rgba16().as_raw(), true)
        }
        _ if img.color().has_alpha() => {
            tiff_image::<RGBA8>(&mut encoder, w, h, img.to_rgba8().as_raw(), true)
        }
        _ => tiff_image::<RGB8>(&mut encoder, w, h, img.to_rgb8().as_raw(), false),
    }
}

/// One TIFF image of colour type `C` from `data`, its last sample tagged unassociated alpha
/// when `alpha`.
fn tiff_image<C: tiff::encoder::colortype::ColorType>(
    encoder: &mut tiff::encoder::TiffEncoder<&mut BufWriter<std::fs::File>>,
    width: u32,
    height: u32,
    data: &[C::Inner],
    alpha: bool,
) -> std::result::Result<(), tiff::TiffError>
where
    [C::Inner]: tiff::encoder::TiffValue,
{
    let mut image = encoder.new_image::<C>(width, height)?;
    if alpha {
        image.encoder().write_tag(
            tiff::tags::Tag::ExtraSamples,
            tiff::tags::ExtraSamples::UnassociatedAlpha.to_u16(),
        )?;
    }
    image.write_data(data)
}

/// Writes `path` by `fill`ing a temporary file beside it and renaming that over `path`: a
/// failure (a full disk, an encoder refusing the image, an interruption) leaves `path` as it was.
fn write_atomically(
    path: &Path,
    fill: impl FnOnce(&mut BufWriter<std::fs::File>) -> Result<()>,
) -> Result<()> {
    // an output that is a symbolic link is written where it points, as a plain write would
    let resolved;
    let path = match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_symlink() => {
            // a link to a file not made yet points at its name all the same
            resolved = std::fs::canonicalize(path)
                .or_else(|_| {
                    std::fs::read_link(path)
                        .map(|to| path.parent().unwrap_or(Path::new("")).join(to))
                })
                .unwrap_or_else(|_| path.to_path_buf());
            resolved.as_path()
        }
        _ => path,
    };
    let temp = crate::temp_file::temporary_beside(path);
    let _listed = crate::temp_file::Unfinished::new(&temp);
    // a new file only: whatever already has the name (a link planted there) is left alone
    let result = std::fs::File::options()
        .write(true)
        .create_new(true)
        .open(&temp)
        .map_err(|e| Error::io(path, e))
        .and_then(|file| {
            keep_owner_and_mode(path, &file);
            let mut out = BufWriter::new(file);
            fill(&mut out)?;
            let file = out
                .into_inner()
                .map_err(|e| Error::io(path, e.into_error()))?;
            file.sync_all().map_err(|e| Error::io(path, e))
        })
        .and_then(|()| std::fs::rename(&temp, path).map_err(|e| Error::io(path, e)));
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result
}

/// Gives `file` the mode and owner of the file it will replace at `path`, as far as allowed
/// (only a privileged user can give a file to another owner): a replaced file keeps them.
fn keep_owner_and_mode(path: &Path, file: &std::fs::File) {
    let old = match std::fs::metadata(path) {
        Ok(m) if m.is_file() => m,
        _ => return,
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let _ = std::os::unix::fs::fchown(file, Some(old.uid()), Some(old.gid()));
    }
    let _ = file.set_permissions(old.permissions());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::restore::Plane;
    use image::GenericImageView;

    /// A GIF of `frames` frames of 4x3 pixels, as the `image` crate writes it.
    fn gif_of(frames: u8) -> Vec<u8> {
        use image::codecs::gif::GifEncoder;
        let mut bytes = Vec::new();
        let mut encoder = GifEncoder::new(&mut bytes);
        for k in 0..frames {
            let rgba = image::RgbaImage::from_pixel(4, 3, image::Rgba([k * 60, 20, 200, 255]));
            encoder.encode_frame(image::Frame::new(rgba)).unwrap();
        }
        drop(encoder);
        bytes
    }

    #[test]
    fn an_animation_is_told_from_a_still_image() {
        assert!(!is_animated(&gif_of(1)));
        assert!(is_animated(&gif_of(2)));
        assert!(is_animated(&gif_of(3)));
        // a GIF cut inside its first frame is no animation
        let cut = gif_of(2);
        assert!(!is_animated(&cut[..20]));
        // PNG: an animation control chunk before the image data
        let chunk = |kind: &[u8], data: &[u8]| {
            let mut c = (data.len() as u32).to_be_bytes().to_vec();
            c.extend_from_slice(kind);
            c.extend_from_slice(data);
            c.extend_from_slice(&[0; 4]);
            c
        };
        let png = |chunks: &[Vec<u8>]| {
            let mut b = b"\x89PNG\r\n\x1a\n".to_vec();
            chunks.iter().for_each(|c| b.extend_from_slice(c));
            b
        };
        let ihdr = chunk(b"IHDR", &[0; 13]);
        let idat = chunk(b"IDAT", &[0; 5]);
        let actl = chunk(b"acTL", &[0, 0, 0, 2, 0, 0, 0, 0]);
        assert!(is_animated(&png(&[ihdr.clone(), actl, idat.clone()])));
        assert!(!is_animated(&png(&[ihdr, idat])));
        // WebP: the extended header's animation flag
        let webp = |flags: u8| {
            let mut b = b"RIFF\0\0\0\0WEBPVP8X\x0a\0\0\0".to_vec();
            b.extend_from_slice(&[flags, 0, 0, 0, 3, 0, 0, 2, 0, 0]);
            b
        };
        assert!(is_animated(&webp(0x02)));
        assert!(!is_animated(&webp(0x10)));
    }

    /// A 2x2 grey TIFF of one page per entry of `subfile_types` (its NewSubfileType), in both
    /// byte orders.
    fn tiff_of_pages(subfile_types: &[u32], big_endian: bool) -> Vec<u8> {
        let u16b = |v: u16| {
            if big_endian {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            }
        };
        let u32b = |v: u32| {
            if big_endian {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            }
        };
        let mut tiff = if big_endian {
            b"MM\0*".to_vec()
        } else {
            b"II*\0".to_vec()
        };
        tiff.extend_from_slice(&u32b(8));
        // each page: 10 entries, the next directory's offset, then 4 pixels
        let page_len = 2 + 10 * 12 + 4 + 4;
        for (k, &subfile) in subfile_types.iter().enumerate() {
            let at = 8 + k * page_len;
            let pixels = (at + page_len - 4) as u32;
            let next = if k + 1 < subfile_types.len() {
                (at + page_len) as u32
            } else {
                0
            };
            tiff.extend_from_slice(&u16b(10));
            for (tag, kind, value) in [
                (254u16, 4u16, subfile),
                (256, 3, 2),
                (257, 3, 2),
                (258, 3, 8),
                (259, 3, 1),
                (262, 3, 1),
                (273, 4, pixels),
                (277, 3, 1),
                (278, 3, 2),
                (279, 4, 4),
            ] {
                tiff.extend_from_slice(&u16b(tag));
                tiff.extend_from_slice(&u16b(kind));
                tiff.extend_from_slice(&u32b(1));
                if kind == 3 {
                    tiff.extend_from_slice(&u16b(value as u16));
                    tiff.extend_from_slice(&[0, 0]);
                } else {
                    tiff.extend_from_slice(&u32b(value));
                }
            }
            tiff.extend_from_slice(&u32b(next));
            tiff.extend_from_slice(&[10, 80, 160, 240]);
        }
        tiff
    }

    #[test]
    fn a_tiff_of_several_pages_is_read_as_an_animation() {
        for big_endian in [false, true] {
            assert!(!is_animated(&tiff_of_pages(&[0], big_endian)));
            assert!(is_animated(&tiff_of_pages(&[0, 2], big_endian)));
            // a reduced-resolution copy (a thumbnail) is no page
            assert!(!is_animated(&tiff_of_pages(&[0, 1], big_endian)));
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pages.tif");
        std::fs::write(&path, tiff_of_pages(&[0, 2], false)).unwrap();
        let img = load(&path, &Default::default()).unwrap();
        assert!(img.animated);
        assert_eq!(img.planes.dim(), (2, 2));
        // under a RAW name, the same TIFF is read as a TIFF, pages and all
        let raw_named = dir.path().join("pages.nef");
        std::fs::copy(&path, &raw_named).unwrap();
        assert!(load(&raw_named, &Default::default()).unwrap().animated);
    }

    /// A PNG of one colour `rgb` (16 bits when `deep`) carrying the colour profile `icc`.
    fn png_with_profile(rgb: [u8; 3], icc: Vec<u8>, deep: bool, path: &Path) {
        use image::ImageEncoder;
        let picture = image::RgbImage::from_pixel(8, 6, image::Rgb(rgb));
        let img = if deep {
            DynamicImage::ImageRgb16(DynamicImage::ImageRgb8(picture).to_rgb16())
        } else {
            DynamicImage::ImageRgb8(picture)
        };
        let mut png = Vec::new();
        let mut encoder = image::codecs::png::PngEncoder::new(&mut png);
        encoder.set_icc_profile(icc).unwrap();
        encoder
            .write_image(img.as_bytes(), 8, 6, img.color().into())
            .unwrap();
        std::fs::write(path, png).unwrap();
    }

    #[test]
    fn a_wide_gamut_image_is_read_in_srgb() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p3.png");
        let colour = |img: &ImageFile| match &img.planes {
            Planes::Rgb(ps) => ps.each_ref().map(|p| (p[(3, 4)] * 255.0).round() as i32),
            Planes::Grey(_) => panic!("read as grey"),
        };
        // Display P3 (200, 60, 60) is sRGB (218, 42, 52), as thumbnails show it
        for deep in [false, true] {
            let p3 = moxcms::ColorProfile::new_display_p3().encode().unwrap();
            png_with_profile([200, 60, 60], p3, deep, &path);
            let seen = colour(&load(&path, &Default::default()).unwrap());
            let expected = [218, 42, 52];
            assert!(
                seen.iter().zip(expected).all(|(a, b)| a.abs_diff(b) <= 1),
                "deep {deep}: {seen:?}"
            );
        }
        // an sRGB profile leaves the values exactly as stored
        let srgb = moxcms::ColorProfile::new_srgb().encode().unwrap();
        png_with_profile([200, 60, 60], srgb, false, &path);
        assert_eq!(
            colour(&load(&path, &Default::default()).unwrap()),
            [200, 60, 60]
        );
    }

    #[test]
    fn bad_files_are_reported_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let bad = dir.path().join("not_an_image.png");
        std::fs::write(&bad, b"hello").unwrap();
        let e = load(&bad, &Default::default()).unwrap_err().to_string();
        assert!(
            e.contains("not_an_image.png") && e.contains("cannot decode"),
            "{e}"
        );
        let e = load(&dir.path().join("missing.png"), &Default::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("missing.png"), "{e}");
    }

    /// An image whose work is over the budget is refused from its header's size, before its
    /// pixels are decoded (a 3.6-gigapixel JPEG took 7.5 s and 3.6 GB to be refused): here the
    /// pixels are cut off, so only a refusal before decoding names the budget.
    #[test]
    fn an_image_over_the_work_budget_is_refused_before_decoding() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("large.png");
        let mut bytes = Vec::new();
        image::GrayImage::new(5000, 5000)
            .write_to(&mut std::io::Cursor::new(&mut bytes), ImageFormat::Png)
            .unwrap();
        bytes.truncate(200);
        std::fs::write(&path, &bytes).unwrap();
        let work = crate::restore::memory::Work::Blur { psf_radius: 0 };
        let e = load_for(&path, &Default::default(), work, 512)
            .map(|img| img.planes.dim())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("5000x5000") && e.contains("over the memory budget of 512 MiB"),
            "{e}"
        );
    }

    #[test]
    fn a_failed_write_leaves_the_existing_file_and_no_partial_one() {
        let dir = tempfile::tempdir().unwrap();
        let planes = Planes::Grey(Plane::from_elem((300, 300), 0.5));
        // ICO holds at most 256 pixels a side: the encoder fails after the file is opened
        let out = dir.path().join("kept.ico");
        std::fs::write(&out, b"what was there").unwrap();
        assert!(save(&planes, None, &out).is_err());
        assert_eq!(std::fs::read(&out).unwrap(), b"what was there");
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "{names:?}");
        assert!(output_format(&dir.path().join("x.xyz")).is_err());
        assert!(output_format(&dir.path().join("x.pbm")).is_err());
    }

    /// The ExtraSamples tags of the TIFF at `path`'s first directory, empty when it has none.
    fn tiff_extra_samples(path: &Path) -> Vec<u32> {
        let file = std::io::BufReader::new(std::fs::File::open(path).unwrap());
        let mut decoder = tiff::decoder::Decoder::new(file).unwrap();
        decoder
            .find_tag(tiff::tags::Tag::ExtraSamples)
            .unwrap()
            .map(|v| v.into_u32_vec().unwrap())
            .unwrap_or_default()
    }

    #[test]
    fn a_tiffs_alpha_is_tagged_unassociated() {
        let dir = tempfile::tempdir().unwrap();
        let grey = Planes::Grey(Plane::from_shape_fn((4, 5), |(r, c)| (r + c) as f32 / 8.0));
        let colour = Planes::Rgb(std::array::from_fn(|k| {
            Plane::from_shape_fn((4, 5), |(r, c)| ((r + c * k) % 3) as f32 / 3.0)
        }));
        let alpha = GrayImage::from_fn(5, 4, |x, _| image::Luma([x as u8 * 60]));
        for (what, planes) in [("grey", &grey), ("colour", &colour)] {
            for deep in [false, true] {
                let path = dir.path().join(format!("{what}-{deep}.tif"));
                save_at_depth(planes, Some(&alpha), &path, deep).unwrap();
                assert_eq!(tiff_extra_samples(&path), [2], "{}", path.display());
                let back = image::open(&path).unwrap().to_rgba16();
                assert_eq!(back.get_pixel(2, 1)[3], 120 * 257, "{}", path.display());
                let opaque = dir.path().join(format!("{what}-{deep}-opaque.tif"));
                save_at_depth(planes, None, &opaque, deep).unwrap();
                assert!(
                    tiff_extra_samples(&opaque).is_empty(),
                    "{}",
                    opaque.display()
                );
            }
        }
    }

    #[test]
    fn every_read_extension_of_a_written_format_is_written() {
        let not_written = ["pbm", "heic", "heif", "hif", "avif", "jxl"];
        for &extension in crate::crawl::IMAGE_EXTENSIONS {
            let path = Path::new("out").with_extension(extension.to_ascii_uppercase());
            let read_as = ImageFormat::from_extension(extension);
            match output_format(&path) {
                Ok(format) => {
                    assert!(
                        read_as.is_none_or(|f| f == format),
                        "{extension}: {format:?}"
                    );
                    assert!(!not_written.contains(&extension), "{extension}");
                }
                Err(e) => assert!(not_written.contains(&extension), "{extension}: {e}"),
            }
        }
        assert_eq!(
            output_format(Path::new("out.jpe")).unwrap(),
            ImageFormat::Jpeg
        );
        assert_eq!(
            output_format(Path::new("out.dib")).unwrap(),
            ImageFormat::Bmp
        );
        let e = output_format(Path::new("out.exr")).unwrap_err().to_string();
        assert!(e.contains("OpenExr files are not written"), "{e}");
    }

    #[test]
    fn lossy_webp_is_told_in_the_extended_container_too() {
        let webp = |chunks: &[(&[u8; 4], usize)]| {
            let mut b = b"RIFF\0\0\0\0WEBP".to_vec();
            for (id, size) in chunks {
                b.extend_from_slice(*id);
                b.extend_from_slice(&(*size as u32).to_le_bytes());
                b.extend(std::iter::repeat_n(0u8, size + (size & 1)));
            }
            b
        };
        assert!(is_lossy(&webp(&[(b"VP8 ", 20)])));
        assert!(is_lossy(&webp(&[
            (b"VP8X", 10),
            (b"ICCP", 7),
            (b"VP8 ", 20)
        ])));
        assert!(!is_lossy(&webp(&[(b"VP8X", 10), (b"VP8L", 20)])));
        assert!(!is_lossy(&webp(&[(b"VP8L", 20)])));
        assert!(is_lossy(&[0xFF, 0xD8, 0xFF, 0xE0]));
        assert!(!is_lossy(b"\x89PNG\r\n\x1a\n"));
    }

    #[test]
    fn alpha_and_pnm_subtypes_are_written_as_asked() {
        let dir = tempfile::tempdir().unwrap();
        let planes = Planes::Grey(Plane::from_shape_fn((4, 5), |(r, c)| (r + c) as f32 / 8.0));
        let alpha = GrayImage::from_fn(5, 4, |x, _| image::Luma([x as u8 * 60]));
        let png = dir.path().join("a.png");
        save(&planes, Some(&alpha), &png).unwrap();
        let back = image::open(&png).unwrap();
        assert_eq!(back.color(), image::ColorType::La8);
        assert_eq!(back.to_luma_alpha8().get_pixel(2, 1)[1], 120);
        for (name, magic) in [("g.pgm", b"P5"), ("c.ppm", b"P6"), ("n.pnm", b"P5")] {
            let path = dir.path().join(name);
            save(&planes, None, &path).unwrap();
            assert_eq!(&std::fs::read(&path).unwrap()[..2], magic, "{name}");
        }
    }

    #[test]
    fn every_written_format_takes_grey_colour_and_alpha() {
        let dir = tempfile::tempdir().unwrap();
        let grey = Planes::Grey(Plane::from_shape_fn((20, 24), |(r, c)| {
            (r * 24 + c) as f32 / 480.0
        }));
        let colour = Planes::Rgb(std::array::from_fn(|k| {
            Plane::from_shape_fn((20, 24), |(r, c)| ((r + c * k) % 7) as f32 / 7.0)
        }));
        let alpha = GrayImage::from_fn(24, 20, |x, _| image::Luma([if x < 12 { 0 } else { 200 }]));
        let holds_alpha = [
            "png", "gif", "bmp", "tif", "webp", "qoi", "ico", "tga", "pam",
        ];
        for ext in [
            "png", "jpg", "gif", "bmp", "tif", "webp", "qoi", "ico", "tga", "pgm", "ppm", "pnm",
            "pam",
        ] {
            for (what, planes) in [("grey", &grey), ("colour", &colour)] {
                for with_alpha in [false, true] {
                    let path = dir.path().join(format!("{what}-{with_alpha}.{ext}"));
                    save(planes, with_alpha.then_some(&alpha), &path)
                        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                    let back =
                        image::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                    assert_eq!(back.dimensions(), (24, 20), "{}", path.display());
                    if with_alpha && holds_alpha.contains(&ext) {
                        let a = back.to_rgba8();
                        // GIF's transparency is all or nothing
                        let seen = if ext == "gif" { 255 } else { 200 };
                        assert_eq!(
                            (a.get_pixel(3, 3)[3], a.get_pixel(20, 3)[3]),
                            (0, seen),
                            "{}",
                            path.display()
                        );
                    }
                }
            }
        }
    }
}
