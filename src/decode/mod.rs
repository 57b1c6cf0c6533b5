//! Bytes to a small, upright RGB working image (or, for a small JPEG, its own luma): format
//! sniffing, limits, EXIF orientation, DCT-domain scaled JPEG decoding, alpha flattening and
//! fast resizing; JPEG XL, HEIC/AVIF (libheif) and camera RAW beside the `image` crate's
//! formats.

use std::io::Cursor;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

use fast_image_resize as fir;
use image::metadata::Orientation;
use image::{DynamicImage, GrayImage, ImageDecoder, ImageReader, RgbImage};

use crate::error::{Error, Result};

#[cfg(feature = "heif")]
pub(crate) mod heif;
pub(crate) mod raw;

/// Default decode memory budget per worker: 512 MiB.
pub(crate) const DEFAULT_MEMORY_BUDGET: u64 = 512 << 20;

/// The largest `--memory-budget` any command takes, in MiB.
pub const MAX_MEMORY_BUDGET_MIB: u64 = 65_536;

/// The advice closing a refusal over a memory budget of `budget_mib`: `raise`, how a larger
/// budget helps; or, at the largest budget there is or when the image needs more than it
/// (`need_mib`, where known), that none does.
pub(crate) fn budget_advice(budget_mib: u64, need_mib: Option<u64>, raise: &str) -> String {
    if budget_mib >= MAX_MEMORY_BUDGET_MIB || need_mib.is_some_and(|n| n > MAX_MEMORY_BUDGET_MIB) {
        format!(
            "a decompression bomb? no budget lets it through: {MAX_MEMORY_BUDGET_MIB} MiB is the largest there is"
        )
    } else {
        format!("a decompression bomb? if not, {raise}")
    }
}

/// Default largest image file read: 256 MiB.
pub const DEFAULT_MAX_FILE_SIZE: u64 = 256 << 20;

/// Limits and the working resolution.
#[derive(Debug, Clone, Copy)]
pub struct DecodeConfig {
    /// The working image fits in a square of this side (never upscaled).
    pub working_size: u32,
    /// Images with more pixels than this are refused (decompression bombs).
    pub max_pixels: u64,
    /// Longest accepted side.
    pub max_side: u32,
    /// Memory one decode may use, in bytes: the decoder's buffers plus the conversions after
    /// it. An image whose dimensions need more is refused before anything is allocated.
    pub memory_budget: u64,
    /// Files larger than this, in bytes, are refused without being read.
    pub max_file_size: u64,
}

impl Default for DecodeConfig {
    fn default() -> Self {
        DecodeConfig {
            working_size: 256,
            max_pixels: 200_000_000,
            max_side: 65_535,
            memory_budget: DEFAULT_MEMORY_BUDGET,
            max_file_size: DEFAULT_MAX_FILE_SIZE,
        }
    }
}

/// `O_NONBLOCK`, so that opening a FIFO never waits for a writer (regular files ignore it).
#[cfg(any(target_os = "linux", target_os = "android"))]
const O_NONBLOCK: i32 = 0o4000;
#[cfg(all(unix, not(any(target_os = "linux", target_os = "android"))))]
const O_NONBLOCK: i32 = 0x0004;

/// Reads a regular file of at most `max_bytes` bytes. FIFOs, devices and other special files
/// are refused before they are read (and a FIFO is never waited on); a file that grows past
/// the cap while it is read is refused too. I/O errors keep their kind (`NotFound`...).
/// `kind` names what the file should be in messages ("image", "journal").
pub(crate) fn read_file_bounded(
    path: &Path,
    max_bytes: u64,
    kind: &str,
) -> std::io::Result<Vec<u8>> {
    read_file_bounded_as(path, max_bytes, kind, Links::Followed)
}

/// How a read treats symbolic links on the way to the file.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Links<'a> {
    /// Followed wherever they are.
    Followed,
    /// Not followed below this folder, which holds the file (its own path may hold links): a
    /// link there, the file's name or a folder on the way, makes the file `NotFound`.
    RefusedBelow(&'a Path),
}

/// [`read_file_bounded`] with a rule for links: a file a walk that skips links saw, whose
/// path leads through a link by the time it is opened, is gone.
pub(crate) fn read_file_bounded_as(
    path: &Path,
    max_bytes: u64,
    kind: &str,
    links: Links<'_>,
) -> std::io::Result<Vec<u8>> {
    use std::io::{Error as IoError, ErrorKind, Read};
    let now_a_link = || {
        IoError::new(
            ErrorKind::NotFound,
            "now a symbolic link, which is not followed",
        )
    };
    let follow_links = matches!(links, Links::Followed);
    let link_met = |e: IoError| {
        #[cfg(unix)]
        if e.raw_os_error() == Some(libc::ELOOP) {
            return now_a_link();
        }
        e
    };
    // The folder holding the file, reached without links below `folder`, before any look at
    // the file: a path leading out through a link is gone, whatever it leads to.
    #[cfg(unix)]
    let parent = match links {
        Links::RefusedBelow(folder) => Some(parent_below(folder, path).map_err(link_met)?),
        Links::Followed => None,
    };
    if !follow_links && std::fs::symlink_metadata(path)?.is_symlink() {
        return Err(now_a_link());
    }
    let article = if kind.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    };
    let not_regular = || {
        IoError::new(
            ErrorKind::InvalidInput,
            format!("not a regular file (a pipe, device or socket); only {kind} files are read"),
        )
    };
    let too_big = |size: String| {
        IoError::new(
            ErrorKind::InvalidInput,
            format!(
                "file {size} over the limit of {max_bytes} bytes ({} MiB); is it really {article} \
                 {kind} file?",
                max_bytes >> 20,
            ),
        )
    };
    let meta = std::fs::metadata(path)?;
    if meta.is_dir() {
        let advice = if kind == "image" {
            " (give one image; `lookalike index` takes folders)"
        } else {
            ""
        };
        return Err(IoError::new(
            ErrorKind::InvalidInput,
            format!("a folder, not {article} {kind} file{advice}"),
        ));
    }
    if !meta.is_file() {
        return Err(not_regular());
    }
    if meta.len() > max_bytes {
        return Err(too_big(format!("is {} bytes,", meta.len())));
    }
    #[cfg(unix)]
    let held = parent.map(|(dir, name)| {
        use rustix::fs::{Mode, OFlags, openat};
        // non-blocking: a pipe put in the file's place does not hang the open
        let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
        openat(&dir, name, flags, Mode::empty()).map(std::fs::File::from)
    });
    #[cfg(not(unix))]
    let held: Option<std::io::Result<std::fs::File>> = None;
    let file = match held {
        Some(opened) => opened.map_err(|e| link_met(e.into()))?,
        None => {
            let mut options = std::fs::OpenOptions::new();
            options.read(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                let no_follow = if follow_links { 0 } else { libc::O_NOFOLLOW };
                options.custom_flags(O_NONBLOCK | no_follow);
            }
            match options.open(path) {
                // O_NOFOLLOW met a link put in place after the look above
                #[cfg(unix)]
                Err(e) if !follow_links && e.raw_os_error() == Some(libc::ELOOP) => {
                    return Err(now_a_link());
                }
                other => other?,
            }
        }
    };
    // The path may have been replaced between the two looks: the opened file decides.
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(not_regular());
    }
    let mut bytes = Vec::with_capacity(meta.len().min(max_bytes) as usize);
    file.take(max_bytes.saturating_add(1))
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max_bytes {
        return Err(too_big("grew while it was read,".into()));
    }
    Ok(bytes)
}

/// The folder holding `path`, a file below `folder`, opened from `folder` as the system
/// resolves it, then one name at a time without following a link (`ELOOP` when one is met),
/// with the file's name.
#[cfg(unix)]
fn parent_below<'p>(
    folder: &Path,
    path: &'p Path,
) -> std::io::Result<(std::os::fd::OwnedFd, &'p std::ffi::OsStr)> {
    use rustix::fs::{AtFlags, FileType, Mode, OFlags, openat, statat};
    use std::path::Component;
    let not_plain = || {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!(
                "{}: not a plain path below {}",
                crate::path_repr::shown(path),
                crate::path_repr::shown(folder)
            ),
        )
    };
    let rel = path.strip_prefix(folder).map_err(|_| not_plain())?;
    let name = rel.file_name().ok_or_else(not_plain)?;
    let flags = OFlags::DIRECTORY | OFlags::CLOEXEC | OFlags::RDONLY;
    let mut dir = openat(rustix::fs::CWD, folder, flags, Mode::empty())?;
    for component in rel.parent().into_iter().flat_map(Path::components) {
        let Component::Normal(step) = component else {
            return Err(not_plain());
        };
        dir = match openat(&dir, step, flags | OFlags::NOFOLLOW, Mode::empty()) {
            // O_NOFOLLOW with O_DIRECTORY meeting a link may say ENOTDIR
            Err(rustix::io::Errno::NOTDIR)
                if statat(&dir, step, AtFlags::SYMLINK_NOFOLLOW)
                    .is_ok_and(|st| FileType::from_raw_mode(st.st_mode) == FileType::Symlink) =>
            {
                return Err(std::io::Error::from_raw_os_error(libc::ELOOP));
            }
            other => other?,
        };
    }
    Ok((dir, name))
}

/// Reads an image file for decoding: a regular file no larger than `cfg.max_file_size`.
/// The one way lookalike reads images and other inputs it decodes.
pub fn read_image_file(path: &Path, cfg: &DecodeConfig) -> Result<Vec<u8>> {
    read_file_bounded(path, cfg.max_file_size, "image").map_err(|e| Error::io(path, e))
}

/// A decoded image ready for feature extraction.
#[derive(Debug, Clone)]
pub struct Decoded {
    /// Upright RGB at working resolution.
    pub image: RgbImage,
    /// Lower-case format name (`jpeg`, `png`...).
    pub format: String,
    /// Full-size width after orientation.
    pub width: u32,
    /// Full-size height after orientation.
    pub height: u32,
}

/// A JPEG's luma plane ready for the families that read luma alone.
#[derive(Debug, Clone)]
pub(crate) struct DecodedLuma {
    /// Upright luma at working resolution.
    pub(crate) plane: GrayImage,
    /// Lower-case format name.
    pub(crate) format: String,
    /// Full-size width after orientation.
    pub(crate) width: u32,
    /// Full-size height after orientation.
    pub(crate) height: u32,
}

/// The luma of a small JPEG read from its own Y channel, upright and shrunk to fit the
/// working side as [`decode`] shrinks its pictures; the chroma is never transformed,
/// upsampled or converted. `None` for whatever it leaves to [`decode`], which reports any
/// fault: other formats, JPEGs large enough for the DCT-scaled path, colour spaces other than
/// YCbCr and grey, and anything the decoder objects to.
pub(crate) fn decode_jpeg_luma(
    bytes: &[u8],
    path: &Path,
    cfg: &DecodeConfig,
) -> Option<DecodedLuma> {
    guarded(|| decode_jpeg_luma_inner(bytes, path, cfg))
        .ok()
        .flatten()
}

fn decode_jpeg_luma_inner(bytes: &[u8], path: &Path, cfg: &DecodeConfig) -> Option<DecodedLuma> {
    use zune_core::colorspace::ColorSpace;
    if checked_kind(bytes, path).ok()? != Kind::Image(image::ImageFormat::Jpeg) {
        return None;
    }
    // The options `image` decodes JPEGs with, and grey output.
    let options = zune_core::options::DecoderOptions::default()
        .set_strict_mode(false)
        .set_max_width(usize::MAX)
        .set_max_height(usize::MAX)
        .jpeg_set_out_colorspace(ColorSpace::Luma);
    let mut decoder = zune_jpeg::JpegDecoder::new_with_options(
        zune_core::bytestream::ZCursor::new(bytes),
        options,
    );
    decoder.decode_headers().ok()?;
    let (w, h) = decoder.dimensions()?;
    let (w, h) = (u32::try_from(w).ok()?, u32::try_from(h).ok()?);
    check_size(w, h, path, cfg).ok()?;
    check_jpeg_data(bytes.len(), w, h, path).ok()?;
    // Both sides are under twice the working side here, so the buffers are small.
    if idct_scale(w, h, cfg.working_size) != 8
        || !matches!(
            decoder.input_colorspace()?,
            ColorSpace::YCbCr | ColorSpace::Luma
        )
    {
        return None;
    }
    let orientation = decoder
        .exif()
        .and_then(|exif| Orientation::from_exif_chunk(exif))
        .unwrap_or(Orientation::NoTransforms);
    let pixels = decoder.decode().ok()?;
    let mut img = DynamicImage::ImageLuma8(GrayImage::from_raw(w, h, pixels)?);
    img.apply_orientation(orientation);
    let upright = img.into_luma8();
    let (width, height) = upright.dimensions();
    Some(DecodedLuma {
        plane: resize_grey_to_fit(&upright, cfg.working_size),
        format: format_name(image::ImageFormat::Jpeg, bytes),
        width,
        height,
    })
}

/// The name of the format `f` of a file starting with `bytes`: a PNM file is named by its kind
/// (pbm, pgm, ppm or pam, from its magic number), which the image crate does not tell apart.
fn format_name(f: image::ImageFormat, bytes: &[u8]) -> String {
    if f == image::ImageFormat::Pnm {
        let kind = match bytes.get(..2) {
            Some(b"P1" | b"P4") => Some("pbm"),
            Some(b"P2" | b"P5") => Some("pgm"),
            Some(b"P3" | b"P6") => Some("ppm"),
            Some(b"P7") => Some("pam"),
            _ => None,
        };
        if let Some(kind) = kind {
            return kind.into();
        }
    }
    f.extensions_str()
        .first()
        .map(|s| s.to_string())
        .unwrap_or_else(|| format!("{f:?}").to_lowercase())
}

/// Decodes under way in [`guarded`], in any thread.
static GUARDED_DECODES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Runs a decoder, its panics caught (a damaged file may trip assertions in third-party
/// decoders, on this thread or on their worker threads).
fn guarded<T>(run: impl FnOnce() -> T) -> std::thread::Result<T> {
    use std::sync::atomic::Ordering::SeqCst;
    GUARDED_DECODES.fetch_add(1, SeqCst);
    let out = catch_unwind(AssertUnwindSafe(run));
    GUARDED_DECODES.fetch_sub(1, SeqCst);
    out
}

/// True when a panic raised at `file` is a third-party decoder's, caught by [`guarded`] and
/// reported as the file's failure: its own message on standard error would only repeat that.
pub(crate) fn is_caught_decoder_panic(file: &str) -> bool {
    GUARDED_DECODES.load(std::sync::atomic::Ordering::SeqCst) > 0 && !file.starts_with("src/")
}

/// Decodes `bytes` (the content of `path`, named in errors) into a working image.
/// Decoder panics are caught and reported as errors.
pub fn decode(bytes: &[u8], path: &Path, cfg: &DecodeConfig) -> Result<Decoded> {
    // a bad setting is no fault of the file's
    check_working_size(cfg.working_size)?;
    guarded_decode(path, || decode_inner(bytes, path, cfg))
}

/// Runs a decode, reporting a decoder's panic as the file's failure.
fn guarded_decode<T>(path: &Path, run: impl FnOnce() -> Result<T>) -> Result<T> {
    match guarded(run) {
        Ok(result) => result,
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown".into());
            Err(bad(
                path,
                format!("decoder crashed ({what}); the file is probably damaged"),
            ))
        }
    }
}

/// Reads and decodes a file.
pub fn decode_file(path: &Path, cfg: &DecodeConfig) -> Result<Decoded> {
    let bytes = read_image_file(path, cfg)?;
    decode(&bytes, path, cfg)
}

/// A full-size, upright image.
#[derive(Debug, Clone)]
pub(crate) struct FullSize {
    pub(crate) image: DynamicImage,
    /// The `image` crate format the content was read as: none for camera RAW data (a preview
    /// or the sensor's), JPEG XL and HEIF.
    pub(crate) format: Option<image::ImageFormat>,
}

/// Decodes `bytes` (the content of `path`) at full size and upright (EXIF orientation applied,
/// as for indexing), for the restoration commands; the memory budget counts the decoder's buffers and an 8-bit RGB copy,
/// as for indexing. A file is read as [`decode`] reads it, with the same fallbacks, or refused
/// for the same reason. Decoder panics are caught and reported as errors.
pub(crate) fn decode_full_size(bytes: &[u8], path: &Path, cfg: &DecodeConfig) -> Result<FullSize> {
    guarded_decode(path, || decode_full_size_inner(bytes, path, cfg))
}

/// The dimensions of an image of a format the `image` crate reads, and whether it has colour,
/// from its header alone (no pixel decoded); `None` for other formats or a header not read.
pub(crate) fn header_size(bytes: &[u8], path: &Path) -> Option<((u32, u32), bool)> {
    let Some(Kind::Image(format)) = guess_kind(bytes, path) else {
        return None;
    };
    let decoder = ImageReader::with_format(Cursor::new(bytes), format)
        .into_decoder()
        .ok()?;
    Some((decoder.dimensions(), decoder.color_type().has_color()))
}

fn limits(cfg: &DecodeConfig) -> image::Limits {
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(cfg.max_side);
    limits.max_image_height = Some(cfg.max_side);
    limits.max_alloc = Some(cfg.memory_budget);
    limits
}

/// What a file's content is, as far as decoding goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A format the `image` crate reads.
    Image(image::ImageFormat),
    /// JPEG XL (jxl-oxide).
    Jxl,
    /// HEIF: HEIC or AVIF (libheif); the name is the one reported.
    Heif(&'static str),
    /// A camera RAW file.
    Raw,
}

/// The kind of non-empty `bytes`, refusing JPEGs cut short before their end marker.
fn checked_kind(bytes: &[u8], path: &Path) -> Result<Kind> {
    if bytes.is_empty() {
        return Err(bad(path, "empty file (0 bytes); was it copied completely?"));
    }
    let kind = guess_kind(bytes, path).ok_or_else(|| {
        bad(
            path,
            "not a recognised image format (JPEG, PNG, WebP, GIF, BMP, TIFF, HEIC, AVIF, JPEG XL, camera RAW...)",
        )
    })?;
    if kind == Kind::Image(image::ImageFormat::Jpeg)
        && let Some(coding) = raw::jpeg_unsupported_coding(bytes)
    {
        return Err(bad(
            path,
            format!(
                "{coding} JPEG, a rare kind lookalike does not read: convert it to an ordinary JPEG or PNG (for example `jpegtran -optimize` or `djpeg`)"
            ),
        ));
    }
    if kind == Kind::Image(image::ImageFormat::Tiff)
        && let Some(samples) = raw::tiff_unsupported_samples(bytes)
    {
        return Err(bad(
            path,
            format!(
                "TIFF of {samples}, a kind lookalike does not read: convert it to an 8- or 16-bit PNG or TIFF"
            ),
        ));
    }
    if kind == Kind::Image(image::ImageFormat::Jpeg) && !jpeg_has_end(bytes) {
        return Err(bad(
            path,
            "truncated JPEG (no end-of-image marker after the last scan); was it copied completely?",
        ));
    }
    Ok(kind)
}

/// The brands of an ISO base media file: its `ftyp` box's major and compatible brands.
fn ftyp_brands(bytes: &[u8]) -> Option<Vec<&[u8]>> {
    if bytes.get(4..8)? != b"ftyp" {
        return None;
    }
    let size = u32::from_be_bytes(bytes.get(..4)?.try_into().ok()?) as usize;
    let end = size.clamp(16, 256).min(bytes.len());
    let major = bytes.get(8..12)?;
    let compatible = bytes.get(16..end).unwrap_or(&[]).chunks_exact(4);
    Some(std::iter::once(major).chain(compatible).collect())
}

/// The HEIF name (`heic` or `avif`) of an ISO base media file whose brands are HEIF images.
fn heif_brand(bytes: &[u8]) -> Option<&'static str> {
    let brands = ftyp_brands(bytes)?;
    let any = |set: &[&[u8; 4]]| brands.iter().any(|b| set.iter().any(|s| *b == &s[..]));
    if any(&[b"avif", b"avis"]) {
        Some("avif")
    } else if any(&[
        b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"hevm", b"hevs", b"mif1", b"msf1",
    ]) {
        Some("heic")
    } else {
        None
    }
}

/// True for a HEIF or AVIF image sequence, of which only the primary (first) image is read: an
/// image sequence brand (`avis`, `msf1`, `hevs`) or a movie box (`moov`) at the top level.
pub(crate) fn heif_is_sequence(bytes: &[u8]) -> bool {
    if heif_brand(bytes).is_none() {
        return false;
    }
    let sequence_brand = ftyp_brands(bytes)
        .unwrap_or_default()
        .iter()
        .any(|b| [b"avis", b"msf1", b"hevs"].iter().any(|s| *b == &s[..]));
    let mut at = 0usize;
    // a file of many top-level boxes ends the walk after 64
    for _ in 0..64 {
        let Some(head) = bytes
            .get(at..at.saturating_add(16))
            .or_else(|| bytes.get(at..at + 8))
        else {
            break;
        };
        if &head[4..8] == b"moov" {
            return true;
        }
        let size = match u32::from_be_bytes([head[0], head[1], head[2], head[3]]) {
            0 => break,
            1 => head
                .get(8..16)
                .map_or(0, |b| u64::from_be_bytes(b.try_into().unwrap_or([0; 8]))),
            n => u64::from(n),
        };
        if size < 8 {
            break;
        }
        at = at.saturating_add(usize::try_from(size).unwrap_or(usize::MAX));
    }
    sequence_brand
}

/// How a JPEG XL file is coded, from its headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct JxlCoding {
    /// An animation of more than one frame, of which only the first is read.
    pub(crate) animated: bool,
    /// Lossless: no XYB colour transform and every frame modular (a recompressed JPEG, stored
    /// as its DCT coefficients, is not).
    pub(crate) lossless: bool,
}

/// The coding of a JPEG XL file, `None` for another file or one whose headers do not read.
pub(crate) fn jxl_coding(bytes: &[u8]) -> Option<JxlCoding> {
    if !is_jxl(bytes) {
        return None;
    }
    let image = guarded(|| jxl_oxide::JxlImage::builder().read(Cursor::new(bytes)).ok())
        .ok()
        .flatten()?;
    let metadata = &image.image_header().metadata;
    let frames = (0..image.num_loaded_frames()).filter_map(|i| image.frame(i));
    let modular = frames
        .map(|f| f.header().encoding == jxl_oxide::frame::Encoding::Modular)
        .collect::<Vec<_>>();
    Some(JxlCoding {
        animated: metadata.animation.is_some() && image.num_loaded_keyframes() > 1,
        lossless: !metadata.xyb_encoded && !modular.is_empty() && modular.iter().all(|&m| m),
    })
}

/// True for the JPEG XL signatures: a bare codestream or the ISO container.
fn is_jxl(bytes: &[u8]) -> bool {
    bytes.starts_with(&[0xFF, 0x0A])
        || bytes.starts_with(&[
            0, 0, 0, 0x0C, b'J', b'X', b'L', b' ', 0x0D, 0x0A, 0x87, 0x0A,
        ])
}

/// True when the first bytes of a file (32 are enough) are a signature of a format read here
/// beyond the `image` crate's: HEIC, AVIF, JPEG XL and the RAW formats with their own
/// signature (TIFF-based RAW files are told by their extension).
pub(crate) fn has_extra_signature(head: &[u8]) -> bool {
    is_jxl(head) || heif_brand(head).is_some() || raw::sniff(head, Path::new(""))
}

/// The kind from the content's signature; formats without one (TGA) from the extension.
fn guess_kind(bytes: &[u8], path: &Path) -> Option<Kind> {
    if raw::sniff(bytes, path) {
        return Some(Kind::Raw);
    }
    if let Some(name) = heif_brand(bytes) {
        return Some(Kind::Heif(name));
    }
    if is_jxl(bytes) {
        return Some(Kind::Jxl);
    }
    image::guess_format(bytes)
        .ok()
        .filter(|f| *f != image::ImageFormat::Avif)
        .or_else(|| {
            image::ImageFormat::from_path(path)
                .ok()
                .filter(|f| *f == image::ImageFormat::Tga)
        })
        .map(Kind::Image)
}

fn bad(path: &Path, reason: impl Into<String>) -> Error {
    Error::Decode {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// Decodes through an `image` decoder: size and memory checks first, then the pixels, upright
/// when `exif_orientation` (formats whose decoders apply their own orientation pass false).
fn from_decoder(
    mut decoder: impl ImageDecoder,
    path: &Path,
    cfg: &DecodeConfig,
    exif_orientation: bool,
) -> Result<DynamicImage> {
    decoder
        .set_limits(limits(cfg))
        .map_err(|e| image_error(path, e, cfg))?;
    let (w, h) = decoder.dimensions();
    check_size(w, h, path, cfg)?;
    // The decoded buffer, a second one as large (a GIF frame placed on its screen, a rotation)
    // and the 8-bit RGB copy.
    let need = decoder
        .total_bytes()
        .saturating_mul(2)
        .saturating_add(u64::from(w) * u64::from(h) * 3);
    check_memory(need, w, h, path, cfg)?;
    let orientation = if exif_orientation {
        decoder.orientation().unwrap_or(Orientation::NoTransforms)
    } else {
        Orientation::NoTransforms
    };
    let mut img = DynamicImage::from_decoder(decoder).map_err(|e| image_error(path, e, cfg))?;
    img.apply_orientation(orientation);
    Ok(img)
}

/// An `image` crate decoder for `bytes` in `format`.
fn image_decoder<'a>(
    bytes: &'a [u8],
    path: &Path,
    cfg: &DecodeConfig,
    format: image::ImageFormat,
) -> Result<impl ImageDecoder + 'a> {
    // the ICO decoder takes only RGBA PNG entries; any PNG decodes as a PNG
    let (bytes, format) = match ico_largest_png(bytes).filter(|_| format == image::ImageFormat::Ico)
    {
        Some(png) => (png, image::ImageFormat::Png),
        None => (bytes, format),
    };
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    reader.limits(limits(cfg));
    let decoder = reader
        .into_decoder()
        .map_err(|e| image_error(path, e, cfg))?;
    if format == image::ImageFormat::Jpeg {
        let (w, h) = decoder.dimensions();
        check_size(w, h, path, cfg)?;
        check_jpeg_data(bytes.len(), w, h, path)?;
    }
    Ok(decoder)
}

/// The ICC colour profile embedded in a file of a format the `image` crate reads (JPEG, PNG,
/// TIFF, WebP...), when it has one; `None` for other kinds and for a file that does not parse.
pub(crate) fn icc_profile(bytes: &[u8], path: &Path) -> Option<Vec<u8>> {
    let Some(Kind::Image(format)) = guess_kind(bytes, path) else {
        return None;
    };
    guarded(|| {
        let mut decoder = ImageReader::with_format(Cursor::new(bytes), format)
            .into_decoder()
            .ok()?;
        decoder.icc_profile().ok().flatten()
    })
    .ok()
    .flatten()
}

/// The largest image of an ICO or CUR file when that image is stored as a PNG.
fn ico_largest_png(ico: &[u8]) -> Option<&[u8]> {
    let u16_at = |at: usize| Some(u16::from_le_bytes(ico.get(at..at + 2)?.try_into().ok()?));
    let u32_at = |at: usize| Some(u32::from_le_bytes(ico.get(at..at + 4)?.try_into().ok()?));
    if u16_at(0)? != 0 || !matches!(u16_at(2)?, 1 | 2) {
        return None;
    }
    let entries = (0..usize::from(u16_at(4)?)).map_while(|i| {
        let at = 6 + 16 * i;
        // a side of 0 stands for 256
        let side = |b: u8| if b == 0 { 256 } else { u32::from(b) };
        let (w, h) = (side(*ico.get(at)?), side(*ico.get(at + 1)?));
        let (size, offset) = (u32_at(at + 8)? as usize, u32_at(at + 12)? as usize);
        Some((w * h, u16_at(at + 6)?, offset, size))
    });
    let (_, _, offset, size) = entries.max_by_key(|&(area, bits, _, _)| (area, bits))?;
    let image = ico.get(offset..offset.checked_add(size)?)?;
    image.starts_with(b"\x89PNG\r\n\x1a\n").then_some(image)
}

/// What a JPEG XL file decodes to.
enum JxlDecoded {
    Pixels(DynamicImage),
    /// A JPEG transcoded losslessly into JPEG XL, reconstructed bit for bit.
    Jpeg(Vec<u8>),
}

/// Decodes a JPEG XL file, upright (the decoder applies the codestream's orientation; the EXIF
/// copy of it is not used). A file cut short is refused rather than rendered in part. With
/// `reconstruct`, a transcoded JPEG is given back as the JPEG it was, which the scaled JPEG path
/// decodes several times faster than rendering.
fn decode_jxl(
    bytes: &[u8],
    path: &Path,
    cfg: &DecodeConfig,
    reconstruct: bool,
) -> Result<JxlDecoded> {
    use jxl_oxide::{AllocTracker, JxlImage};
    let unreadable = |e: &dyn std::fmt::Display| bad(path, format!("unreadable JPEG XL file: {e}"));
    let budget = usize::try_from(cfg.memory_budget).unwrap_or(usize::MAX);
    let mut image = JxlImage::builder()
        .alloc_tracker(AllocTracker::with_limit(budget))
        .read(Cursor::new(bytes))
        .map_err(|e| unreadable(&e))?;
    if !image.is_loading_done() {
        return Err(bad(
            path,
            "truncated JPEG XL file (it ends before its last frame); was it copied completely?",
        ));
    }
    let (w, h) = (image.width(), image.height());
    check_size(w, h, path, cfg)?;
    if reconstruct
        && image.jpeg_reconstruction_status() == jxl_oxide::JpegReconstructionStatus::Available
    {
        // A reconstruction that fails, or trips the decoder's own assertions (as some
        // transcoded progressive JPEGs do), leaves the pixels to render.
        // A panic may leave the decoder's state half-changed: the file is read afresh.
        let mut jpeg = Vec::new();
        match guarded(|| image.reconstruct_jpeg(&mut jpeg)) {
            Ok(Ok(_)) => return Ok(JxlDecoded::Jpeg(jpeg)),
            Ok(Err(_)) => {}
            Err(_) => return decode_jxl(bytes, path, cfg, false),
        }
    }
    // Rendering keeps 32-bit float planes (up to 4 channels, with a working copy) and the
    // 8-bit output.
    check_memory(u64::from(w) * u64::from(h) * 36, w, h, path, cfg)?;
    if image.pixel_format().has_black() {
        image.request_color_encoding(jxl_oxide::EnumColourEncoding::srgb(
            jxl_oxide::RenderingIntent::Relative,
        ));
    }
    let render = image.render_frame(0).map_err(|e| unreadable(&e))?;
    let mut stream = render.stream();
    let (sw, sh, channels) = (stream.width(), stream.height(), stream.channels());
    let mut data = vec![0u8; sw as usize * sh as usize * channels as usize];
    stream.write_to_buffer(&mut data);
    let img = match channels {
        1 => image::GrayImage::from_raw(sw, sh, data).map(DynamicImage::ImageLuma8),
        2 => image::GrayAlphaImage::from_raw(sw, sh, data).map(DynamicImage::ImageLumaA8),
        3 => RgbImage::from_raw(sw, sh, data).map(DynamicImage::ImageRgb8),
        4 => image::RgbaImage::from_raw(sw, sh, data).map(DynamicImage::ImageRgba8),
        _ => None,
    };
    img.map(JxlDecoded::Pixels).ok_or_else(|| {
        bad(
            path,
            format!("JPEG XL image with {channels} channels is not supported"),
        )
    })
}

#[cfg(feature = "heif")]
fn decode_heif(bytes: &[u8], path: &Path, cfg: &DecodeConfig) -> Result<DynamicImage> {
    heif::decode(bytes, path, cfg)
}

#[cfg(not(feature = "heif"))]
fn decode_heif(_bytes: &[u8], path: &Path, _cfg: &DecodeConfig) -> Result<DynamicImage> {
    Err(bad(
        path,
        "HEIC/HEIF and AVIF files need libheif, and this build of lookalike has no support for it \
         (it was built without the `heif` feature)",
    ))
}

/// The working image of a full-size, upright image.
fn working(img: DynamicImage, format: String, cfg: &DecodeConfig) -> Decoded {
    let (width, height) = (img.width(), img.height());
    let rgb = flatten_to_rgb(img);
    Decoded {
        image: shrunk_to_fit(&rgb, cfg.working_size),
        format,
        width,
        height,
    }
}

fn decode_inner(bytes: &[u8], path: &Path, cfg: &DecodeConfig) -> Result<Decoded> {
    match checked_kind(bytes, path)? {
        Kind::Image(format) => {
            if format == image::ImageFormat::Jpeg
                && let Some(decoded) = decode_jpeg_scaled(bytes, path, cfg)?
            {
                return Ok(decoded);
            }
            let decoder = image_decoder(bytes, path, cfg, format)?;
            let img = from_decoder(decoder, path, cfg, true)?;
            Ok(working(img, format_name(format, bytes), cfg))
        }
        Kind::Jxl => match decode_jxl(bytes, path, cfg, true)? {
            JxlDecoded::Pixels(img) => Ok(working(img, "jxl".into(), cfg)),
            // A reconstruction that does not decode cleanly is put aside for the pixels.
            JxlDecoded::Jpeg(jpeg) => match decode_jpeg_bytes(&jpeg, path, cfg) {
                Ok(d) if jpeg_has_end(&jpeg) => Ok(Decoded {
                    format: "jxl".into(),
                    ..d
                }),
                _ => match decode_jxl(bytes, path, cfg, false)? {
                    JxlDecoded::Pixels(img) => Ok(working(img, "jxl".into(), cfg)),
                    JxlDecoded::Jpeg(_) => unreachable!("reconstruction was not asked for"),
                },
            },
        },
        Kind::Heif(name) => Ok(working(decode_heif(bytes, path, cfg)?, name.into(), cfg)),
        Kind::Raw => decode_raw(
            bytes,
            path,
            cfg,
            |p| {
                let d = decode_preview(p, path, cfg)?;
                let (width, height) = raw::photo_size(bytes).unwrap_or((d.width, d.height));
                Ok(Decoded {
                    format: raw_name(path),
                    width,
                    height,
                    ..d
                })
            },
            |img, format, (width, height)| {
                let name = format.map_or_else(|| raw_name(path), |f| format_name(f, bytes));
                Decoded {
                    width,
                    height,
                    ..working(img, name, cfg)
                }
            },
        ),
    }
}

/// The lower-case extension of a RAW file, as its format name.
fn raw_name(path: &Path) -> String {
    path.extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .filter(|e| raw::RAW_EXTENSIONS.contains(&e.as_str()))
        .unwrap_or_else(|| "raw".into())
}

/// A RAW file: its largest embedded preview when that covers the working size, else its
/// sensor data, else a smaller preview; a TIFF under a RAW name (a scan saved as .dng, a renamed
/// file) without RAW sensor data in it, with no preview or that no RAW decoder knows, is read
/// as that TIFF. A file with sensor data that no decoder develops and no preview is refused
/// with the decoder's reason, never read as its TIFF thumbnail. `preview` reads a preview, `image`
/// takes a full-size upright image, the `image` crate format it was read as (none for
/// sensor data) and the upright size of the photo it stands for: [`decode`] and
/// [`decode_full_size`] read a RAW file alike through this.
fn decode_raw<T>(
    bytes: &[u8],
    path: &Path,
    cfg: &DecodeConfig,
    preview: impl Fn(&raw::Preview) -> Result<T>,
    image: impl Fn(DynamicImage, Option<image::ImageFormat>, (u32, u32)) -> T,
) -> Result<T> {
    let big_enough = |p: &raw::Preview| p.width.max(p.height) >= cfg.working_size;
    let walked = raw::find_preview(bytes);
    let found = walked
        .filter(big_enough)
        .or_else(|| raw::scan_for_preview(bytes))
        .or(walked);
    let mut preview_error = None;
    if let Some(p) = found
        && big_enough(&p)
    {
        match preview(&p) {
            Ok(d) => return Ok(d),
            Err(e) => preview_error = Some(e),
        }
    }
    let sensor_error = match raw::decode_sensor(bytes, path, cfg) {
        Ok((img, size)) => return Ok(image(img, None, size)),
        Err(e) => e,
    };
    if !raw::has_sensor_data(bytes)
        && (found.is_none() || !raw::has_raw_data(bytes))
        && let Ok(format @ image::ImageFormat::Tiff) = image::guess_format(bytes)
        && let Ok(img) = image_decoder(bytes, path, cfg, format)
            .and_then(|decoder| from_decoder(decoder, path, cfg, true))
    {
        let size = (img.width(), img.height());
        return Ok(image(img, Some(format), size));
    }
    match (found, preview_error) {
        (_, Some(e)) => Err(e),
        (Some(p), None) => preview(&p),
        (None, None) => Err(sensor_error),
    }
}

/// Decodes JPEG bytes embedded in another file (a RAW preview, a JPEG kept in JPEG XL) with
/// their own EXIF orientation.
fn decode_jpeg_bytes(jpeg: &[u8], path: &Path, cfg: &DecodeConfig) -> Result<Decoded> {
    if let Some(d) = decode_jpeg_scaled(jpeg, path, cfg)? {
        return Ok(d);
    }
    let decoder = image_decoder(jpeg, path, cfg, image::ImageFormat::Jpeg)?;
    Ok(working(
        from_decoder(decoder, path, cfg, true)?,
        "jpg".into(),
        cfg,
    ))
}

/// Decodes a RAW file's JPEG preview, upright: by the JPEG's own EXIF orientation when it has
/// one, else by the RAW file's.
fn decode_preview(p: &raw::Preview, path: &Path, cfg: &DecodeConfig) -> Result<Decoded> {
    if !jpeg_has_end(p.jpeg) {
        return Err(bad(path, "the embedded preview JPEG is truncated"));
    }
    let mut d = decode_jpeg_bytes(p.jpeg, path, cfg)?;
    if raw::jpeg_orientation(p.jpeg).is_none()
        && let Some(orientation) = p.orientation
        && orientation != Orientation::NoTransforms
    {
        let mut img = DynamicImage::ImageRgb8(d.image);
        img.apply_orientation(orientation);
        d.image = img.into_rgb8();
        if swaps_sides(orientation) {
            std::mem::swap(&mut d.width, &mut d.height);
        }
    }
    Ok(d)
}

/// Decodes a file's content at full size and upright for the restoration commands.
fn decode_full_size_inner(bytes: &[u8], path: &Path, cfg: &DecodeConfig) -> Result<FullSize> {
    let full = |image, format| FullSize { image, format };
    match checked_kind(bytes, path)? {
        Kind::Image(format) => {
            let decoder = image_decoder(bytes, path, cfg, format)?;
            Ok(full(from_decoder(decoder, path, cfg, true)?, Some(format)))
        }
        Kind::Jxl => match decode_jxl(bytes, path, cfg, false)? {
            JxlDecoded::Pixels(img) => Ok(full(img, None)),
            JxlDecoded::Jpeg(_) => unreachable!("reconstruction was not asked for"),
        },
        Kind::Heif(_) => Ok(full(decode_heif(bytes, path, cfg)?, None)),
        Kind::Raw => decode_raw(
            bytes,
            path,
            cfg,
            |p| {
                if !jpeg_has_end(p.jpeg) {
                    return Err(bad(path, "the embedded preview JPEG is truncated"));
                }
                let decoder = image_decoder(p.jpeg, path, cfg, image::ImageFormat::Jpeg)?;
                let mut img = from_decoder(decoder, path, cfg, true)?;
                if raw::jpeg_orientation(p.jpeg).is_none()
                    && let Some(orientation) = p.orientation
                {
                    img.apply_orientation(orientation);
                }
                Ok(full(img, None))
            },
            |img, format, _| full(img, format),
        ),
    }
}

fn swaps_sides(orientation: Orientation) -> bool {
    matches!(
        orientation,
        Orientation::Rotate90
            | Orientation::Rotate270
            | Orientation::Rotate90FlipH
            | Orientation::Rotate270FlipH
    )
}

/// True when the JPEG's first image is complete: its segments, read from the start, reach an
/// end-of-image marker after a scan. Data after that marker (a Motion Photo's video, a vendor
/// trailer) is not the image's. Decoders pad a truncated scan with grey instead of failing;
/// entropy-coded data cannot contain a marker (byte stuffing), so a file that ends inside a
/// scan was cut short. A file is also taken as whole when, scanning back from its end, an end
/// marker comes before any start of scan (a file whose segments cannot be followed).
fn jpeg_has_end(bytes: &[u8]) -> bool {
    // the last-marker rule first: it reads a few bytes of a whole file, where following the
    // segments reads the whole scan
    bytes
        .windows(2)
        .rev()
        .find(|w| w[0] == 0xFF && (w[1] == 0xD9 || w[1] == 0xDA))
        .is_some_and(|w| w[1] == 0xD9)
        || jpeg_segments_end(bytes)
}

/// Follows a JPEG's segments from its start: true when an end-of-image marker follows a scan.
fn jpeg_segments_end(bytes: &[u8]) -> bool {
    if !bytes.starts_with(&[0xFF, 0xD8]) {
        return false;
    }
    let mut i = 2;
    let mut scanned = false;
    loop {
        // a marker: fill bytes of FF, then its code
        while i < bytes.len() && bytes[i] != 0xFF {
            i += 1;
        }
        while i < bytes.len() && bytes[i] == 0xFF {
            i += 1;
        }
        let Some(&code) = bytes.get(i) else {
            return false;
        };
        i += 1;
        match code {
            0xD9 => return scanned,
            // markers without a length
            0x01 | 0xD0..=0xD8 => {}
            _ => {
                let Some(len) = bytes.get(i..i + 2) else {
                    return false;
                };
                let len = usize::from(u16::from_be_bytes([len[0], len[1]]));
                if len < 2 {
                    return false;
                }
                i += len;
                if code == 0xDA {
                    scanned = true;
                    // entropy-coded data runs to the next marker that is not a restart
                    loop {
                        let (Some(&a), Some(&b)) = (bytes.get(i), bytes.get(i + 1)) else {
                            return false;
                        };
                        if a == 0xFF && b != 0x00 && b != 0xFF && !(0xD0..=0xD7).contains(&b) {
                            break;
                        }
                        i += 1;
                    }
                }
            }
        }
    }
}

/// Refuses a JPEG whose data cannot cover its declared size. Every 8x8 block of the largest
/// component costs at least one bit of Huffman-coded data (its DC code), so a file with fewer
/// bits than blocks was cut short or lies about its size; decoders would pad it with grey.
fn check_jpeg_data(len: usize, w: u32, h: u32, path: &Path) -> Result<()> {
    let blocks = u64::from(w.div_ceil(8)) * u64::from(h.div_ceil(8));
    if (len as u64).saturating_mul(8) < blocks {
        return Err(bad(
            path,
            format!(
                "truncated or damaged JPEG: it declares {w}x{h} pixels but holds only {len} bytes, too few for that size"
            ),
        ));
    }
    Ok(())
}

/// Refuses an image whose decoding needs more than the memory budget, before allocating.
fn check_memory(need: u64, w: u32, h: u32, path: &Path, cfg: &DecodeConfig) -> Result<()> {
    if need > cfg.memory_budget {
        return Err(bad(
            path,
            format!(
                "image is {w}x{h} pixels and would need {} MiB to decode, over the memory budget of {} MiB ({})",
                need.div_ceil(1 << 20),
                cfg.memory_budget >> 20,
                budget_advice(
                    cfg.memory_budget >> 20,
                    Some(need.div_ceil(1 << 20)),
                    "give the command a larger `--memory-budget MIB`"
                )
            ),
        ));
    }
    Ok(())
}

fn image_error(path: &Path, e: image::ImageError, cfg: &DecodeConfig) -> Error {
    match e {
        // the limit hit, named alone: the side limit is the same at every budget
        image::ImageError::Limits(e) => match e.kind() {
            image::error::LimitErrorKind::DimensionError => bad(
                path,
                format!(
                    "image is over {} pixels a side, the largest the decoder takes, a limit no setting lifts (a decompression bomb?)",
                    cfg.max_side
                ),
            ),
            image::error::LimitErrorKind::InsufficientMemory => bad(
                path,
                format!(
                    "image needs more than the memory budget of {} MiB to decode ({})",
                    cfg.memory_budget >> 20,
                    budget_advice(
                        cfg.memory_budget >> 20,
                        None,
                        "try a larger `--memory-budget MIB`"
                    )
                ),
            ),
            _ => bad(path, e.to_string()),
        },
        image::ImageError::Unsupported(e) => bad(
            path,
            format!(
                "{}: a kind of this format lookalike does not read; convert it to an 8- or 16-bit PNG or JPEG",
                e.to_string().trim_end()
            ),
        ),
        image::ImageError::IoError(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => bad(
            path,
            format!("{e}: the file ends early (truncated? was it copied completely?)"),
        ),
        other => {
            let text = other.to_string().trim_end().to_string();
            let lower = text.to_ascii_lowercase();
            let damaged = [
                "end of file",
                "eof",
                "enough data",
                "truncated",
                "corrupt",
                "crc",
            ]
            .iter()
            .any(|sign| lower.contains(sign));
            if damaged {
                bad(
                    path,
                    format!("{text} (the file is damaged or cut short: was it copied completely?)"),
                )
            } else {
                bad(path, text)
            }
        }
    }
}

fn check_size(w: u32, h: u32, path: &Path, cfg: &DecodeConfig) -> Result<()> {
    if w == 0 || h == 0 {
        return Err(bad(path, format!("image has zero size ({w}x{h})")));
    }
    if w > cfg.max_side || h > cfg.max_side {
        return Err(bad(
            path,
            format!(
                "image is {w}x{h} pixels, over the limit of {} pixels a side (a decompression bomb?)",
                cfg.max_side
            ),
        ));
    }
    // a budget over the default raises the pixel limit in proportion
    let max_pixels = cfg
        .max_pixels
        .saturating_mul(cfg.memory_budget.max(DEFAULT_MEMORY_BUDGET))
        / DEFAULT_MEMORY_BUDGET;
    if u64::from(w) * u64::from(h) > max_pixels {
        return Err(bad(
            path,
            format!(
                "image is {w}x{h} pixels, over the limit of {} megapixels at a memory budget of {} MiB ({})",
                max_pixels / 1_000_000,
                cfg.memory_budget >> 20,
                budget_advice(
                    cfg.memory_budget >> 20,
                    // the budget at which the limit would take the image
                    Some(
                        (u64::from(w) * u64::from(h))
                            .saturating_mul(DEFAULT_MEMORY_BUDGET >> 20)
                            .div_ceil(cfg.max_pixels.max(1))
                    ),
                    "a larger `--memory-budget MIB` raises the limit in proportion"
                )
            ),
        ));
    }
    Ok(())
}

/// JPEG fast path (libjpeg-turbo, via mozjpeg): the IDCT scales by 1/2, 1/4 or 1/8 so a camera
/// photo is never decoded in full. Returns `None` for what it leaves to the general decoder:
/// images too small to scale, CMYK and YCCK, 12-bit and arithmetic coding, data libjpeg calls
/// corrupt (even where it would only warn), and images whose whole-image buffers could pass
/// the memory budget.
fn decode_jpeg_scaled(bytes: &[u8], path: &Path, cfg: &DecodeConfig) -> Result<Option<Decoded>> {
    // libjpeg reports errors by unwinding out of its callbacks; any of them means "not here".
    match guarded(|| decode_jpeg_scaled_inner(bytes, path, cfg)) {
        Ok(result) => result,
        Err(_) => Ok(None),
    }
}

fn decode_jpeg_scaled_inner(
    bytes: &[u8],
    path: &Path,
    cfg: &DecodeConfig,
) -> Result<Option<Decoded>> {
    use mozjpeg::{ColorSpace, Marker};
    let Ok(mut dec) = mozjpeg::Decompress::builder()
        .with_err(strict_error_manager())
        .with_markers(&[Marker::APP(1)])
        .from_mem(bytes)
    else {
        return Ok(None);
    };
    let (w, h) = (dec.width() as u32, dec.height() as u32);
    check_size(w, h, path, cfg)?;
    check_jpeg_data(bytes.len(), w, h, path)?;
    // A progressive file keeps every coefficient (2 bytes each, up to 3 per pixel) in memory;
    // a sequential one a few rows of blocks, and the scaled output.
    let scale = idct_scale(w, h, cfg.working_size);
    let need = if raw::jpeg_is_sequential(bytes) {
        (u64::from(w) * u64::from(scale)).div_ceil(8)
            * (u64::from(h) * u64::from(scale)).div_ceil(8)
            * 3
            + u64::from(w) * 3 * 32
    } else {
        u64::from(w) * u64::from(h) * 6
    };
    if need > cfg.memory_budget {
        return Ok(None);
    }
    let colour = dec.color_space();
    if !matches!(
        colour,
        ColorSpace::JCS_GRAYSCALE | ColorSpace::JCS_YCbCr | ColorSpace::JCS_RGB
    ) {
        return Ok(None);
    }
    // Unscaled, the general decoder (zune-jpeg, with SIMD) is faster than this build of
    // libjpeg-turbo (without its assembly): 1.9 against 2.35 ms to the working image and its
    // luminance for a 384x256 photo (BENCHMARKS.md, "Decoding small JPEGs").
    if scale == 8 {
        return Ok(None);
    }
    dec.scale(scale);
    let orientation = dec
        .markers()
        .filter_map(|m| m.data.strip_prefix(b"Exif\0\0"))
        // the last EXIF block, as the general decoder reads it
        .last()
        .and_then(Orientation::from_exif_chunk)
        .unwrap_or(Orientation::NoTransforms);
    let Ok(mut started) = dec.rgb() else {
        return Ok(None);
    };
    let (sw, sh) = (started.width() as u32, started.height() as u32);
    let Ok(pixels) = started.read_scanlines::<u8>() else {
        return Ok(None);
    };
    if started.finish().is_err() {
        return Ok(None);
    }
    let Some(rgb) = RgbImage::from_raw(sw, sh, pixels) else {
        return Ok(None);
    };
    let mut img = DynamicImage::ImageRgb8(rgb);
    img.apply_orientation(orientation);
    let (width, height) = match orientation {
        Orientation::Rotate90
        | Orientation::Rotate270
        | Orientation::Rotate90FlipH
        | Orientation::Rotate270FlipH => (h, w),
        _ => (w, h),
    };
    let rgb = img.into_rgb8();
    Ok(Some(Decoded {
        image: shrunk_to_fit(&rgb, cfg.working_size),
        format: "jpg".into(),
        width,
        height,
    }))
}

/// The IDCT scale numerator (of 8): the smallest of 1, 2, 4 that keeps the longer side at or
/// above the working size, else 8 (no scaling).
fn idct_scale(w: u32, h: u32, working_size: u32) -> u8 {
    let longer = w.max(h);
    [1u8, 2, 4]
        .into_iter()
        .find(|&n| (longer * u32::from(n)).div_ceil(8) >= working_size)
        .unwrap_or(8)
}

/// libjpeg's standard error manager, except that warnings (corrupt data it would decode
/// anyway, such as a bad Huffman code) unwind like errors. The crate's one `unsafe`: setting
/// up a C struct the way libjpeg's own examples do.
#[allow(unsafe_code)]
fn strict_error_manager() -> mozjpeg_sys::jpeg_error_mgr {
    extern "C-unwind" fn warnings_are_errors(
        _cinfo: &mut mozjpeg_sys::jpeg_common_struct,
        level: std::os::raw::c_int,
    ) {
        if level < 0 {
            std::panic::resume_unwind(Box::new("corrupt JPEG data"));
        }
    }
    extern "C-unwind" fn unwind_on_error(_cinfo: &mut mozjpeg_sys::jpeg_common_struct) {
        std::panic::resume_unwind(Box::new("JPEG error"));
    }
    // SAFETY: jpeg_std_error only fills in the plain fields of the struct it is given; an
    // all-zero jpeg_error_mgr (null pointers, zero counts) is a valid value to start from.
    let mut err: mozjpeg_sys::jpeg_error_mgr = unsafe { std::mem::zeroed() };
    unsafe { mozjpeg_sys::jpeg_std_error(&mut err) };
    err.error_exit = Some(unwind_on_error);
    err.emit_message = Some(warnings_are_errors);
    err
}

/// Converts any colour type to 8-bit RGB, compositing transparency over white.
pub(crate) fn flatten_to_rgb(img: DynamicImage) -> RgbImage {
    if !img.color().has_alpha() {
        return img.into_rgb8();
    }
    let rgba = img.into_rgba8();
    let (w, h) = rgba.dimensions();
    let mut out = RgbImage::new(w, h);
    for (o, p) in out.pixels_mut().zip(rgba.pixels()) {
        let a = u32::from(p[3]);
        for c in 0..3 {
            o[c] = ((u32::from(p[c]) * a + 255 * (255 - a) + 127) / 255) as u8;
        }
    }
    out
}

/// Shrinks an image to fit in `side` x `side`, keeping its aspect ratio; never enlarges. A
/// side of 0 is refused: no image fits in it.
pub fn resize_to_fit(img: &RgbImage, side: u32) -> Result<RgbImage> {
    check_working_size(side)?;
    Ok(shrunk_to_fit(img, side))
}

/// Refuses a side of 0 to fit an image in.
fn check_working_size(side: u32) -> Result<()> {
    if side == 0 {
        return Err(Error::InvalidInput(
            "working_size must be at least 1 pixel: no image fits in a square of side 0".into(),
        ));
    }
    Ok(())
}

/// [`resize_to_fit`] for sides known to be at least 1 (a side of 0 is taken as 1).
pub(crate) fn shrunk_to_fit(img: &RgbImage, side: u32) -> RgbImage {
    match fitted(img.dimensions(), side) {
        Some((nw, nh)) => resize_exact(img, nw, nh),
        None => img.clone(),
    }
}

/// The size an image of `(w, h)` is shrunk to so that it fits in `side` x `side`, keeping its
/// aspect ratio; `None` when it already fits.
fn fitted((w, h): (u32, u32), side: u32) -> Option<(u32, u32)> {
    let side = side.max(1);
    if w <= side && h <= side {
        return None;
    }
    let scale = f64::from(side) / f64::from(w.max(h));
    let nw = ((f64::from(w) * scale).round() as u32).clamp(1, side);
    let nh = ((f64::from(h) * scale).round() as u32).clamp(1, side);
    Some((nw, nh))
}

/// [`resize_to_fit`] for a grey image, with the same filter.
pub(crate) fn resize_grey_to_fit(img: &GrayImage, side: u32) -> GrayImage {
    let Some((nw, nh)) = fitted(img.dimensions(), side) else {
        return img.clone();
    };
    let pixels = resized(img.as_raw(), img.dimensions(), (nw, nh), fir::PixelType::U8);
    GrayImage::from_raw(nw, nh, pixels).expect("resizer output matches its dimensions")
}

/// Resizes to exactly `nw` x `nh` with an antialiasing filter.
pub(crate) fn resize_exact(img: &RgbImage, nw: u32, nh: u32) -> RgbImage {
    if img.dimensions() == (nw, nh) {
        return img.clone();
    }
    let pixels = resized(
        img.as_raw(),
        img.dimensions(),
        (nw, nh),
        fir::PixelType::U8x3,
    );
    RgbImage::from_raw(nw, nh, pixels).expect("resizer output matches its dimensions")
}

/// The pixels of a `(w, h)` image of `kind` resized to `(nw, nh)` with the antialiasing filter
/// every working image is made with.
fn resized(raw: &[u8], (w, h): (u32, u32), (nw, nh): (u32, u32), kind: fir::PixelType) -> Vec<u8> {
    let src = fir::images::ImageRef::new(w, h, raw, kind).expect("buffer matches its dimensions");
    let mut dst = fir::images::Image::new(nw, nh, kind);
    let opts = fir::ResizeOptions::new()
        .resize_alg(fir::ResizeAlg::Convolution(fir::FilterType::Bilinear));
    fir::Resizer::new()
        .resize(&src, &mut dst, &opts)
        .expect("same pixel type on both sides");
    dst.into_vec()
}

#[cfg(test)]
mod tests {
    /// A PNM file is named by its kind: a colour .ppm and a grey .pgm were both "pbm".
    /// A refusal names the limit hit and advises no budget that cannot help: a 65536x1 PNG is
    /// over the side limit at every budget, and at the largest budget nothing is to be raised.
    #[test]
    fn a_refusal_names_the_limit_hit_and_no_budget_that_cannot_help() {
        let largest = DecodeConfig {
            memory_budget: MAX_MEMORY_BUDGET_MIB << 20,
            ..Default::default()
        };
        let wide = png_bytes(&DynamicImage::ImageLuma8(GrayImage::new(65536, 1)));
        let e = decode_full_size(&wide, Path::new("w65536.png"), &largest)
            .map(|f| (f.image.width(), f.image.height()))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("over 65535 pixels a side") && !e.contains("budget"),
            "{e}"
        );
        let over = [
            check_memory(u64::MAX, 9, 9, Path::new("a.png"), &largest),
            crate::restore::memory::check(
                Path::new("c.png"),
                (60_000, 60_000),
                false,
                crate::restore::memory::Work::Quality,
                MAX_MEMORY_BUDGET_MIB,
            ),
        ];
        for e in over {
            let e = e.unwrap_err().to_string();
            assert!(!e.contains("larger `--memory-budget"), "{e}");
        }
        // where a larger budget helps, the advice stays
        let e = check_memory(
            600 << 20,
            9,
            9,
            Path::new("d.png"),
            &DecodeConfig::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("a larger `--memory-budget MIB`"), "{e}");
    }

    #[test]
    fn pnm_files_are_named_by_their_kind() {
        let dir = tempfile::tempdir().unwrap();
        let (w, h) = (40usize, 30usize);
        let mut ppm = format!("P6\n{w} {h}\n255\n").into_bytes();
        ppm.extend((0..w * h * 3).map(|i| (i * 7 % 251) as u8));
        let mut pgm = format!("P5\n{w} {h}\n255\n").into_bytes();
        pgm.extend((0..w * h).map(|i| (i * 5 % 251) as u8));
        let mut pbm = format!("P4\n{w} {h}\n").into_bytes();
        pbm.extend((0..w.div_ceil(8) * h).map(|i| (i * 37 % 256) as u8));
        std::fs::write(dir.path().join("a.ppm"), ppm).unwrap();
        std::fs::write(dir.path().join("b.pgm"), pgm).unwrap();
        std::fs::write(dir.path().join("c.pbm"), pbm).unwrap();
        let cfg = super::DecodeConfig::default();
        for (name, format) in [("a.ppm", "ppm"), ("b.pgm", "pgm"), ("c.pbm", "pbm")] {
            let decoded = super::decode_file(&dir.path().join(name), &cfg).unwrap();
            assert_eq!(decoded.format, format);
        }
    }

    use super::*;
    use image::{ImageEncoder, Rgba, RgbaImage};

    /// A working size of 0 is the caller's mistake, not the file's: `decode` blamed a sound
    /// PNG ("decoder crashed (min > max ...); the file is probably damaged") and
    /// `resize_to_fit` panicked.
    #[test]
    fn a_working_size_of_zero_is_refused_as_a_setting() {
        let mut png = std::io::Cursor::new(Vec::new());
        DynamicImage::ImageRgb8(RgbImage::from_pixel(20, 10, image::Rgb([9, 200, 30])))
            .write_to(&mut png, image::ImageFormat::Png)
            .unwrap();
        let cfg = DecodeConfig {
            working_size: 0,
            ..Default::default()
        };
        let refused = |r: &Result<(u32, u32)>| matches!(r, Err(Error::InvalidInput(m)) if m.contains("working_size must be at least 1"));
        let decoded =
            decode(png.get_ref(), Path::new("good.png"), &cfg).map(|d| d.image.dimensions());
        assert!(refused(&decoded), "{decoded:?}");
        let resized = resize_to_fit(&RgbImage::new(10, 10), 0).map(|i| i.dimensions());
        assert!(refused(&resized), "{resized:?}");
        assert_eq!(
            resize_to_fit(&RgbImage::new(10, 4), 5)
                .unwrap()
                .dimensions(),
            (5, 2)
        );
    }

    fn png_bytes(img: &DynamicImage) -> Vec<u8> {
        let mut buf = Vec::new();
        img.write_to(&mut Cursor::new(&mut buf), image::ImageFormat::Png)
            .unwrap();
        buf
    }

    #[test]
    fn heif_and_jxl_are_told_by_their_signatures() {
        let ftyp = |major: &[u8; 4], compatible: &[u8]| {
            let mut b = ((16 + compatible.len()) as u32).to_be_bytes().to_vec();
            b.extend_from_slice(b"ftyp");
            b.extend_from_slice(major);
            b.extend_from_slice(&[0; 4]);
            b.extend_from_slice(compatible);
            b
        };
        assert_eq!(heif_brand(&ftyp(b"heic", b"mif1heic")), Some("heic"));
        assert_eq!(heif_brand(&ftyp(b"mif1", b"mif1avif")), Some("avif"));
        assert_eq!(heif_brand(&ftyp(b"avis", b"")), Some("avif"));
        assert_eq!(
            heif_brand(&ftyp(b"isom", b"mp41")),
            None,
            "a video is not an image"
        );
        assert_eq!(heif_brand(&ftyp(b"crx ", b"")), None);
        let p = Path::new("x");
        assert_eq!(guess_kind(&ftyp(b"avif", b""), p), Some(Kind::Heif("avif")));
        assert_eq!(guess_kind(&[0xFF, 0x0A, 0xFA], p), Some(Kind::Jxl));
        assert!(has_extra_signature(b"\0\0\0\x0cJXL \r\n\x87\n"));
        assert!(!has_extra_signature(b"\0\0\0\x0cJXL"));
    }

    #[cfg(feature = "raw")]
    #[test]
    fn a_raw_file_is_read_from_its_preview_or_else_its_sensor_data() {
        use raw::dng_tests::{dng, picture};
        let img = picture(384, 256);
        let cfg = DecodeConfig::default();
        let path = Path::new("IMG_0001.dng");
        // Preview, turned by the file's orientation (6: rotate 90 degrees clockwise).
        let d = decode(&dng(&img, true, 6), path, &cfg).unwrap();
        assert_eq!((d.format.as_str(), d.width, d.height), ("dng", 256, 384));
        assert_eq!(d.image.dimensions(), (171, 256));
        // A preview smaller than the sensor image: the photo's size is the sensor's.
        let options = raw::dng_tests::DngOptions {
            preview_jpeg: Some(raw::dng_tests::jpeg(&picture(192, 128))),
            preview_size: (192, 128),
            orientation: 6,
            default_crop_size: None,
            thumbnail_first: None,
        };
        let small_cfg = DecodeConfig {
            working_size: 128,
            ..DecodeConfig::default()
        };
        let bytes = raw::dng_tests::dng_from_rgb(&img, &options);
        let d = decode(&bytes, path, &small_cfg).unwrap();
        assert_eq!((d.width, d.height), (256, 384));
        assert_eq!(d.image.dimensions(), (85, 128), "read from the preview");
        // No preview: the mosaic is developed; it shows the same picture.
        let d = decode(&dng(&img, false, 1), path, &cfg).unwrap();
        assert_eq!((d.width, d.height), (384, 256));
        let expected = shrunk_to_fit(&img, cfg.working_size);
        assert_eq!(d.image.dimensions(), expected.dimensions());
        let mean_error = d
            .image
            .as_raw()
            .iter()
            .zip(expected.as_raw())
            .map(|(a, b)| f64::from(a.abs_diff(*b)))
            .sum::<f64>()
            / expected.as_raw().len() as f64;
        assert!(
            mean_error < 12.0,
            "developed mosaic differs by {mean_error:.1} on average"
        );
        // Cut short: a clear error naming the file, whatever the cut.
        let bytes = dng(&img, false, 1);
        for cut in [100, 2_000, bytes.len() / 2, bytes.len() - 1] {
            let e = decode(&bytes[..cut], path, &cfg).unwrap_err().to_string();
            assert!(e.contains("IMG_0001.dng"), "{e}");
        }
    }

    /// A DNG whose mosaic sits under a thumbnail, in a sub-directory typed IFD as libtiff writes
    /// it, is developed at full size; with sensor data no decoder develops and no preview it is
    /// refused with the reason, never read as that thumbnail.
    #[cfg(feature = "raw")]
    #[test]
    fn a_dng_under_a_thumbnail_is_developed_or_refused_never_read_as_the_thumbnail() {
        use raw::dng_tests::{DngOptions, dng_from_rgb, picture};
        let options = DngOptions {
            orientation: 1,
            thumbnail_first: Some(picture(48, 32)),
            ..DngOptions::default()
        };
        let bytes = dng_from_rgb(&picture(384, 256), &options);
        let cfg = DecodeConfig::default();
        let path = Path::new("IMG_0001.dng");
        let d = decode(&bytes, path, &cfg).unwrap();
        assert_eq!((d.format.as_str(), d.width, d.height), ("dng", 384, 256));
        let full = decode_full_size(&bytes, path, &cfg).unwrap();
        assert_eq!((full.image.width(), full.image.height()), (384, 256));
        assert_eq!(full.format, None);
        // The mosaic's compression (the last 259 entry, SHORT 1) made one no decoder knows.
        let plain = [3, 1, 3, 0, 1, 0, 0, 0, 1, 0, 0, 0];
        let at = bytes.windows(12).rposition(|w| w == plain).unwrap();
        let mut unknown = bytes.clone();
        unknown[at + 8..at + 10].copy_from_slice(&65000u16.to_le_bytes());
        let e = decode(&unknown, path, &cfg).unwrap_err().to_string();
        assert!(
            e.contains("RAW sensor data") && e.contains("convert it to DNG"),
            "{e}"
        );
        let e = decode_full_size(&unknown, path, &cfg)
            .unwrap_err()
            .to_string();
        assert!(e.contains("RAW sensor data"), "{e}");
    }

    #[test]
    fn an_image_sequence_is_told_by_its_brand_or_movie_box() {
        let boxed = |kind: &[u8], body: &[u8]| {
            let mut b = ((8 + body.len()) as u32).to_be_bytes().to_vec();
            b.extend_from_slice(kind);
            b.extend_from_slice(body);
            b
        };
        let file = |brands: &[u8], top: &[u8]| {
            let mut b = boxed(b"ftyp", brands);
            b.extend(boxed(b"meta", &[0; 12]));
            b.extend(boxed(top, &[0; 4]));
            b
        };
        assert!(!heif_is_sequence(&file(b"avif\0\0\0\0avifmif1", b"mdat")));
        assert!(heif_is_sequence(&file(
            b"avis\0\0\0\0avisavifmsf1",
            b"mdat"
        )));
        assert!(heif_is_sequence(&file(b"avif\0\0\0\0avifmif1", b"moov")));
        assert!(heif_is_sequence(&file(b"heic\0\0\0\0mif1msf1", b"mdat")));
        // Canon CR3 is ISO media with a movie box, but no HEIF image.
        assert!(!heif_is_sequence(&file(b"crx \0\0\0\0crx isom", b"moov")));
    }

    #[test]
    fn an_icon_of_rgb_png_entries_and_a_pam_decode_and_rare_jpeg_codings_say_what_to_do() {
        let big = DynamicImage::ImageRgb8(RgbImage::from_pixel(48, 48, image::Rgb([200, 10, 20])));
        let small = DynamicImage::ImageRgb8(RgbImage::from_pixel(16, 16, image::Rgb([0, 0, 255])));
        let (big, small) = (png_bytes(&big), png_bytes(&small));
        // an icon holding the small entry first, each an RGB (not RGBA) PNG
        let mut ico = vec![0, 0, 1, 0, 2, 0];
        let mut offset = 6 + 2 * 16;
        for (side, png) in [(16u8, &small), (48, &big)] {
            ico.extend_from_slice(&[side, side, 0, 0, 1, 0, 24, 0]);
            ico.extend_from_slice(&(png.len() as u32).to_le_bytes());
            ico.extend_from_slice(&(offset as u32).to_le_bytes());
            offset += png.len();
        }
        ico.extend_from_slice(&small);
        ico.extend_from_slice(&big);
        let cfg = DecodeConfig::default();
        let d = decode(&ico, Path::new("app.ico"), &cfg).unwrap();
        assert_eq!((d.width, d.height), (48, 48));
        assert_eq!(d.image.get_pixel(5, 5).0, [200, 10, 20]);

        let mut pam =
            b"P7\nWIDTH 3\nHEIGHT 2\nDEPTH 3\nMAXVAL 255\nTUPLTYPE RGB\nENDHDR\n".to_vec();
        pam.extend(std::iter::repeat_n([1u8, 2, 3], 6).flatten());
        assert!(crate::crawl::has_image_extension(Path::new("x.PAM")));
        let d = decode(&pam, Path::new("x.pam"), &cfg).unwrap();
        assert_eq!((d.width, d.height), (3, 2));

        // start of image, an arithmetic-coded frame header (SOF9), end of image
        let mut jpeg = vec![
            0xFF, 0xD8, 0xFF, 0xC9, 0, 11, 8, 0, 16, 0, 16, 1, 1, 0x11, 0,
        ];
        jpeg.extend_from_slice(&[0xFF, 0xD9]);
        let e = decode(&jpeg, Path::new("old.jpg"), &cfg)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("old.jpg") && e.contains("arithmetic-coded JPEG"),
            "{e}"
        );
        assert!(e.contains("convert it"), "{e}");
    }

    #[test]
    fn downsizes_and_keeps_aspect() {
        let img = DynamicImage::ImageRgb8(RgbImage::from_pixel(1000, 500, image::Rgb([9, 8, 7])));
        let d = decode(
            &png_bytes(&img),
            Path::new("x.png"),
            &DecodeConfig::default(),
        )
        .unwrap();
        assert_eq!(d.image.dimensions(), (256, 128));
        assert_eq!((d.width, d.height), (1000, 500));
        assert_eq!(d.image.get_pixel(10, 10).0, [9, 8, 7]);
    }

    #[test]
    fn alpha_is_composited_over_white_and_grey16_works() {
        let img = DynamicImage::ImageRgba8(RgbaImage::from_pixel(4, 4, Rgba([0, 0, 0, 0])));
        let d = decode(
            &png_bytes(&img),
            Path::new("a.png"),
            &DecodeConfig::default(),
        )
        .unwrap();
        assert_eq!(d.image.get_pixel(0, 0).0, [255, 255, 255]);
        let g16 = DynamicImage::ImageLuma16(image::ImageBuffer::from_pixel(
            3,
            2,
            image::Luma([65535u16]),
        ));
        let d = decode(
            &png_bytes(&g16),
            Path::new("g.png"),
            &DecodeConfig::default(),
        )
        .unwrap();
        assert_eq!(d.image.get_pixel(2, 1).0, [255, 255, 255]);
    }

    /// `jpeg` with an EXIF segment whose orientation is 6 (turned a quarter clockwise).
    fn with_orientation_6(jpeg: &[u8]) -> Vec<u8> {
        let mut tiff = b"II*\0\x08\0\0\0\x01\0".to_vec();
        tiff.extend_from_slice(&0x0112u16.to_le_bytes());
        tiff.extend_from_slice(&3u16.to_le_bytes());
        tiff.extend_from_slice(&1u32.to_le_bytes());
        tiff.extend_from_slice(&[6, 0, 0, 0, 0, 0, 0, 0]);
        let mut app1 = b"Exif\0\0".to_vec();
        app1.extend_from_slice(&tiff);
        let mut out = jpeg[..2].to_vec();
        out.extend_from_slice(&[0xFF, 0xE1]);
        out.extend_from_slice(&((app1.len() + 2) as u16).to_be_bytes());
        out.extend_from_slice(&app1);
        out.extend_from_slice(&jpeg[2..]);
        out
    }

    fn jpeg_of(img: &DynamicImage) -> Vec<u8> {
        let mut buf = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut buf, 90)
            .encode_image(img)
            .unwrap();
        buf
    }

    /// A 4x4 little-endian TIFF, one strip of `samples` channels of `bits` each, in sample
    /// `format` (1 unsigned, 2 signed, 3 float).
    fn tiff_of_samples(bits: u16, samples: u16, format: u16) -> Vec<u8> {
        let data_len = 16 * u32::from(samples) * u32::from(bits / 8);
        let tags: [(u16, u16, u32); 10] = [
            (256, 3, 4),
            (257, 3, 4),
            (258, 3, u32::from(bits)),
            (259, 3, 1),
            (262, 3, if samples >= 3 { 2 } else { 1 }),
            (273, 4, 0),
            (277, 3, u32::from(samples)),
            (278, 3, 4),
            (279, 4, data_len),
            (339, 3, u32::from(format)),
        ];
        let data_at = 8 + 2 + 12 * tags.len() as u32 + 4;
        let mut out = b"II*\0\x08\0\0\0".to_vec();
        out.extend_from_slice(&(tags.len() as u16).to_le_bytes());
        for (tag, kind, value) in tags {
            let value = if tag == 273 { data_at } else { value };
            // a BitsPerSample or SampleFormat of several channels lists one per channel: the
            // first value is what is read, so one value stands for all here
            out.extend_from_slice(&tag.to_le_bytes());
            out.extend_from_slice(&kind.to_le_bytes());
            out.extend_from_slice(&1u32.to_le_bytes());
            if kind == 3 {
                out.extend_from_slice(&(value as u16).to_le_bytes());
                out.extend_from_slice(&[0, 0]);
            } else {
                out.extend_from_slice(&value.to_le_bytes());
            }
        }
        out.extend_from_slice(&0u32.to_le_bytes());
        out.resize(out.len() + data_len as usize, 0);
        out
    }

    /// A TIFF of samples the decoder does not read is refused naming their kind (the
    /// decoder's own words were "color type Unknown(32)").
    #[test]
    fn a_tiff_of_samples_not_read_names_their_kind() {
        for (bits, samples, format, kind) in [
            (32, 1, 3, "grey 32-bit floating-point samples"),
            (32, 1, 1, "grey 32-bit unsigned integer samples"),
            (64, 3, 3, "3-channel 64-bit floating-point samples"),
        ] {
            let err = decode(
                &tiff_of_samples(bits, samples, format),
                Path::new("f.tif"),
                &DecodeConfig::default(),
            )
            .unwrap_err()
            .to_string();
            assert!(err.contains(kind), "{err}");
            assert!(err.contains("convert it"), "{err}");
        }
        assert!(raw::tiff_unsupported_samples(&tiff_of_samples(8, 1, 1)).is_none());
        assert!(raw::tiff_unsupported_samples(&tiff_of_samples(16, 3, 1)).is_none());
        assert!(raw::tiff_unsupported_samples(&tiff_of_samples(32, 3, 3)).is_none());
    }

    /// A grey `w` x `h` TIFF whose one strip is a JPEG without its tables, which are kept in
    /// the JPEGTables tag (as libtiff writes JPEG-compressed TIFFs).
    fn tiff_with_jpeg_tables(w: u32, h: u32) -> Vec<u8> {
        let grey = GrayImage::from_fn(w, h, |x, y| image::Luma([((x * 3 + y) % 256) as u8]));
        let jpeg = jpeg_of(&DynamicImage::ImageLuma8(grey));
        // SOI, then segments up to the scan; the tables go apart, the frame and scan stay
        let (mut tables, mut strip) = (vec![0xFF, 0xD8], vec![0xFF, 0xD8]);
        let mut at = 2;
        loop {
            let marker = jpeg[at + 1];
            if marker == 0xDA {
                strip.extend_from_slice(&jpeg[at..]);
                break;
            }
            let len = usize::from(u16::from_be_bytes([jpeg[at + 2], jpeg[at + 3]]));
            let segment = &jpeg[at..at + 2 + len];
            match marker {
                0xDB | 0xC4 => tables.extend_from_slice(segment),
                0xC0 => strip.extend_from_slice(segment),
                _ => {}
            }
            at += 2 + len;
        }
        tables.extend_from_slice(&[0xFF, 0xD9]);
        // header, one directory of 10 entries, then the tables and the strip
        let ifd_len = 2 + 10 * 12 + 4;
        let tables_at = 8 + ifd_len;
        let strip_at = tables_at + tables.len();
        let entries: [(u16, u16, u32, u32); 10] = [
            (256, 4, 1, w),
            (257, 4, 1, h),
            (258, 3, 1, 8),
            (259, 3, 1, 7),
            (262, 3, 1, 1),
            (273, 4, 1, strip_at as u32),
            (277, 3, 1, 1),
            (278, 4, 1, h),
            (279, 4, 1, strip.len() as u32),
            (347, 7, tables.len() as u32, tables_at as u32),
        ];
        let mut tiff = b"II*\0\x08\0\0\0".to_vec();
        tiff.extend_from_slice(&10u16.to_le_bytes());
        for (tag, kind, count, value) in entries {
            tiff.extend_from_slice(&tag.to_le_bytes());
            tiff.extend_from_slice(&kind.to_le_bytes());
            tiff.extend_from_slice(&count.to_le_bytes());
            tiff.extend_from_slice(&value.to_le_bytes());
        }
        tiff.extend_from_slice(&[0; 4]);
        tiff.extend_from_slice(&tables);
        tiff.extend_from_slice(&strip);
        tiff
    }

    /// A plain TIFF, uncompressed or JPEG-compressed with its tables apart, under a RAW file's
    /// name is read as the TIFF it is, alike by `decode` and `decode_full_size`.
    #[test]
    fn a_tiff_named_as_raw_is_read_as_tiff_by_every_decode() {
        let img = DynamicImage::ImageRgb8(RgbImage::from_fn(320, 200, |x, y| {
            image::Rgb([(x % 256) as u8, (y % 256) as u8, 90])
        }));
        let mut plain = Vec::new();
        img.write_to(&mut Cursor::new(&mut plain), image::ImageFormat::Tiff)
            .unwrap();
        let cfg = DecodeConfig::default();
        for tiff in [plain, tiff_with_jpeg_tables(320, 200)] {
            let as_tiff = decode_full_size(&tiff, Path::new("scan.tif"), &cfg).unwrap();
            for name in ["scan.dng", "scan.nef"] {
                let path = Path::new(name);
                let decoded = decode(&tiff, path, &cfg).unwrap_or_else(|e| panic!("{e}"));
                assert_eq!(
                    (decoded.width, decoded.height, decoded.format.as_str()),
                    (320, 200, "tiff")
                );
                let full = decode_full_size(&tiff, path, &cfg).unwrap_or_else(|e| panic!("{e}"));
                assert_eq!(full.format, Some(image::ImageFormat::Tiff), "{name}");
                assert_eq!(full.image, as_tiff.image, "{name}");
            }
        }
    }

    /// A sequential (baseline) JPEG is decoded scaled in a few rows of blocks, so a large one
    /// passes a budget its whole pixels would not; a progressive one keeps every coefficient
    /// and is held to its size.
    #[test]
    fn a_large_baseline_jpeg_fits_a_budget_its_pixels_would_not() {
        let img = DynamicImage::ImageLuma8(image::GrayImage::from_fn(3000, 2000, |x, y| {
            image::Luma([((x / 7 + y / 5) % 200) as u8])
        }));
        let jpeg = jpeg_of(&img);
        assert!(raw::jpeg_is_sequential(&jpeg));
        let cfg = DecodeConfig {
            memory_budget: 8 << 20,
            ..DecodeConfig::default()
        };
        let decoded = decode(&jpeg, Path::new("big.jpg"), &cfg).unwrap();
        assert_eq!((decoded.width, decoded.height), (3000, 2000));
        // the same frame marked progressive (SOF2) is not read as sequential
        let mut progressive = jpeg.clone();
        let sof = progressive
            .windows(2)
            .position(|m| m == [0xFF, 0xC0])
            .unwrap();
        progressive[sof + 1] = 0xC2;
        assert!(!raw::jpeg_is_sequential(&progressive));
        // past the side limit, the message names the side limit
        let thin = DecodeConfig {
            max_side: 100,
            ..DecodeConfig::default()
        };
        let err = decode(&jpeg, Path::new("big.jpg"), &thin)
            .unwrap_err()
            .to_string();
        assert!(err.contains("100 pixels a side"), "{err}");
    }

    /// A small JPEG's own luma is the luma of its decoded colours to within rounding, upright
    /// and sized as the colour decode; what it does not handle is left to `decode`.
    #[test]
    fn a_small_jpegs_luma_is_its_colour_decodes_luma() {
        let cfg = DecodeConfig::default();
        let path = Path::new("p.jpg");
        let colours = DynamicImage::ImageRgb8(RgbImage::from_fn(300, 200, |x, y| {
            let v = (x as f32 / 40.0).sin() * 60.0 + (y as f32 / 25.0).cos() * 50.0;
            image::Rgb([
                (120.0 + v) as u8,
                (110.0 - v / 2.0) as u8,
                (90.0 + y as f32 / 3.0) as u8,
            ])
        }));
        let jpeg = jpeg_of(&colours);
        let grey = jpeg_of(&DynamicImage::ImageLuma8(colours.to_luma8()));
        for bytes in [jpeg.clone(), with_orientation_6(&jpeg), grey] {
            let colour = decode(&bytes, path, &cfg).unwrap();
            let luma = decode_jpeg_luma(&bytes, path, &cfg).expect("a small JPEG");
            assert_eq!(
                (luma.width, luma.height, luma.format.as_str()),
                (colour.width, colour.height, colour.format.as_str())
            );
            assert_eq!(luma.plane.dimensions(), colour.image.dimensions());
            let want = crate::features::luma_plane(&colour.image);
            let (w, _) = luma.plane.dimensions();
            let diffs: Vec<f32> = luma
                .plane
                .as_raw()
                .iter()
                .enumerate()
                .map(|(i, &v)| {
                    (f32::from(v) / 255.0 - want[[i / w as usize, i % w as usize]]).abs()
                })
                .collect();
            let mean = diffs.iter().sum::<f32>() / diffs.len() as f32;
            let worst = diffs.iter().fold(0.0f32, |a, &b| a.max(b));
            assert!(mean < 1.0 / 255.0 && worst < 4.0 / 255.0, "{mean} {worst}");
        }
        assert_eq!(
            decode_jpeg_luma(&with_orientation_6(&jpeg), path, &cfg)
                .unwrap()
                .plane
                .dimensions(),
            (171, 256)
        );
        // Left to `decode`: another format, a JPEG for the scaled path, a cut one, garbage.
        let large = jpeg_of(&DynamicImage::ImageRgb8(RgbImage::new(1200, 800)));
        for other in [
            png_bytes(&colours),
            large,
            jpeg[..jpeg.len() / 2].to_vec(),
            b"not an image".to_vec(),
        ] {
            assert!(decode_jpeg_luma(&other, path, &cfg).is_none());
        }
    }

    #[test]
    fn jpeg_fast_path_scales_in_dct_domain() {
        let img = RgbImage::from_fn(2048, 1024, |x, y| {
            image::Rgb([(x % 256) as u8, (y % 256) as u8, 128])
        });
        let mut buf = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut buf, 90)
            .write_image(img.as_raw(), 2048, 1024, image::ExtendedColorType::Rgb8)
            .unwrap();
        let d = decode(&buf, Path::new("p.jpg"), &DecodeConfig::default()).unwrap();
        assert_eq!(d.image.dimensions(), (256, 128));
        assert_eq!((d.width, d.height, d.format.as_str()), (2048, 1024, "jpg"));
    }

    #[test]
    fn garbage_empty_and_truncated_are_clear_errors() {
        let cfg = DecodeConfig::default();
        let e = decode(b"", Path::new("empty.jpg"), &cfg)
            .unwrap_err()
            .to_string();
        assert!(e.contains("empty.jpg") && e.contains("0 bytes"), "{e}");
        let e = decode(b"hello world, not an image", Path::new("t.jpg"), &cfg)
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a recognised image format"), "{e}");
        let img = DynamicImage::ImageRgb8(RgbImage::from_pixel(64, 64, image::Rgb([1, 2, 3])));
        let full = png_bytes(&img);
        assert!(decode(&full[..full.len() / 2], Path::new("half.png"), &cfg).is_err());
    }

    #[test]
    fn end_marker_must_follow_the_last_scan() {
        // SOI, a thumbnail's own EOI, the main scan, then entropy data with a stuffed FF 00.
        let head = [
            0xFF, 0xD8, 0xFF, 0xD9, 0x00, 0xFF, 0xDA, 0x12, 0xFF, 0x00, 0x34,
        ];
        let whole = [&head[..], &[0xFF, 0xD9]].concat();
        assert!(jpeg_has_end(&whole));
        assert!(jpeg_has_end(&[&whole[..], b"trailing junk"].concat()));
        assert!(
            !jpeg_has_end(&head),
            "the thumbnail's EOI comes before the scan"
        );
        assert!(!jpeg_has_end(&[0xFF, 0xD8, 0x01]));
        let mut buf = Vec::new();
        let img = DynamicImage::ImageRgb8(RgbImage::from_pixel(64, 48, image::Rgb([9, 8, 7])));
        img.write_to(&mut Cursor::new(&mut buf), image::ImageFormat::Jpeg)
            .unwrap();
        assert!(jpeg_has_end(&buf));
        let cut = &buf[..buf.len() - 2];
        assert!(!jpeg_has_end(cut));
        // data after the image (a Motion Photo's video) that ends in a start-of-scan pair
        let trailer = b"MotionPhoto_Data\x00\x00\x00\x18ftypmp42\xff\xda\x12\x34";
        let motion = [&buf[..], &trailer[..]].concat();
        assert!(jpeg_has_end(&motion));
        assert!(decode(&motion, Path::new("motion.jpg"), &DecodeConfig::default()).is_ok());
        let e = decode(cut, Path::new("cut.jpg"), &DecodeConfig::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("cut.jpg") && e.contains("truncated JPEG"), "{e}");
    }

    #[test]
    fn decompression_bomb_header_is_refused() {
        // A PNG header claiming 100000 x 100000 pixels, with no data behind it.
        let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
        let mut ihdr = b"IHDR".to_vec();
        ihdr.extend_from_slice(&100_000u32.to_be_bytes());
        ihdr.extend_from_slice(&100_000u32.to_be_bytes());
        ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
        let crc = crc32(&ihdr);
        png.extend_from_slice(&13u32.to_be_bytes());
        png.extend_from_slice(&ihdr);
        png.extend_from_slice(&crc.to_be_bytes());
        let e = decode(&png, Path::new("bomb.png"), &DecodeConfig::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("bomb.png"), "{e}");
    }

    /// A GIF of a few dozen bytes whose logical screen is `side` x `side` with a 1x1 frame.
    pub(crate) fn huge_screen_gif(side: u16) -> Vec<u8> {
        let mut g = b"GIF89a".to_vec();
        g.extend_from_slice(&side.to_le_bytes());
        g.extend_from_slice(&side.to_le_bytes());
        g.extend_from_slice(&[0x80, 0, 0, 0, 0, 0, 255, 255, 255]);
        g.extend_from_slice(&[0x2C, 0, 0, 0, 0, 1, 0, 1, 0, 0]);
        g.extend_from_slice(&[2, 2, 0x4C, 0x01, 0, 0x3B]);
        g
    }

    /// A small JPEG whose frame header is rewritten to claim `w` x `h` pixels.
    pub(crate) fn lying_jpeg(w: u16, h: u16) -> Vec<u8> {
        let img = DynamicImage::ImageRgb8(RgbImage::from_fn(64, 64, |x, y| {
            image::Rgb([(x * 4) as u8, (y * 4) as u8, 90])
        }));
        let mut buf = Vec::new();
        img.write_to(&mut Cursor::new(&mut buf), image::ImageFormat::Jpeg)
            .unwrap();
        let sof = buf
            .windows(2)
            .position(|w| w == [0xFF, 0xC0])
            .expect("baseline frame header");
        buf[sof + 5..sof + 7].copy_from_slice(&h.to_be_bytes());
        buf[sof + 7..sof + 9].copy_from_slice(&w.to_be_bytes());
        buf
    }

    #[test]
    fn huge_gif_screen_is_refused_by_the_memory_budget() {
        let gif = huge_screen_gif(14_000);
        assert!(gif.len() < 64);
        let e = decode(&gif, Path::new("screen.gif"), &DecodeConfig::default())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("screen.gif") && e.contains("memory budget of 512 MiB"),
            "{e}"
        );
        // A smaller budget refuses smaller images; the same file within budget decodes.
        let small = DecodeConfig {
            memory_budget: 1 << 20,
            ..DecodeConfig::default()
        };
        let modest = huge_screen_gif(1000);
        assert!(decode(&modest, Path::new("m.gif"), &small).is_err());
        let d = decode(&modest, Path::new("m.gif"), &DecodeConfig::default()).unwrap();
        assert_eq!((d.width, d.height), (1000, 1000));
    }

    #[test]
    fn jpeg_claiming_more_pixels_than_its_data_is_refused() {
        let cfg = DecodeConfig::default();
        for (w, h) in [(14_000, 14_000), (4000, 4000)] {
            let e = decode(&lying_jpeg(w, h), Path::new("liar.jpg"), &cfg)
                .unwrap_err()
                .to_string();
            assert!(
                e.contains("liar.jpg") && e.contains("truncated or damaged JPEG"),
                "{e}"
            );
        }
        // A flat photo compresses to almost nothing yet keeps more bits than blocks.
        let flat = RgbImage::from_pixel(2000, 1500, image::Rgb([40, 40, 40]));
        let mut buf = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut buf, 50)
            .write_image(flat.as_raw(), 2000, 1500, image::ExtendedColorType::Rgb8)
            .unwrap();
        let d = decode(&buf, Path::new("flat.jpg"), &cfg).unwrap();
        assert_eq!((d.width, d.height), (2000, 1500));
        assert!(decode_full_size(&lying_jpeg(4000, 4000), Path::new("l.jpg"), &cfg).is_err());
    }

    #[test]
    fn tga_is_recognised_by_its_extension() {
        let img = DynamicImage::ImageRgb8(RgbImage::from_pixel(30, 20, image::Rgb([200, 10, 60])));
        let mut tga = Vec::new();
        img.write_to(&mut Cursor::new(&mut tga), image::ImageFormat::Tga)
            .unwrap();
        let d = decode(&tga, Path::new("pic.TGA"), &DecodeConfig::default()).unwrap();
        assert_eq!((d.width, d.height, d.format.as_str()), (30, 20, "tga"));
        assert_eq!(d.image.get_pixel(3, 3).0, [200, 10, 60]);
        let full = decode_full_size(&tga, Path::new("pic.tga"), &DecodeConfig::default()).unwrap();
        assert_eq!(full.image.width(), 30);
        // Without the hint the content alone is not taken as an image.
        assert!(decode(&tga, Path::new("pic.bin"), &DecodeConfig::default()).is_err());
    }

    #[cfg(unix)]
    #[test]
    fn only_regular_files_within_the_cap_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = DecodeConfig::default();
        let e = read_image_file(Path::new("/dev/zero"), &cfg)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("/dev/zero") && e.contains("not a regular file"),
            "{e}"
        );
        let fifo = dir.path().join("pipe.jpg");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        if made.is_ok_and(|s| s.success()) {
            let e = read_image_file(&fifo, &cfg).unwrap_err().to_string();
            assert!(
                e.contains("pipe.jpg") && e.contains("not a regular file"),
                "{e}"
            );
        }
        let big = dir.path().join("big.jpg");
        let f = std::fs::File::create(&big).unwrap();
        f.set_len(cfg.max_file_size + 1).unwrap(); // sparse: no disk used
        let e = read_image_file(&big, &cfg).unwrap_err().to_string();
        assert!(e.contains("big.jpg") && e.contains("over the limit"), "{e}");
        let ok = dir.path().join("ok.bin");
        std::fs::write(&ok, b"12345").unwrap();
        assert_eq!(read_file_bounded(&ok, 5, "image").unwrap(), b"12345");
        assert!(read_file_bounded(&ok, 4, "image").is_err());
        let missing = read_file_bounded(&dir.path().join("gone"), 5, "image").unwrap_err();
        assert_eq!(missing.kind(), std::io::ErrorKind::NotFound);
    }

    fn crc32(data: &[u8]) -> u32 {
        let mut crc = 0xFFFF_FFFFu32;
        for &b in data {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 != 0 {
                    (crc >> 1) ^ 0xEDB8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }
}
