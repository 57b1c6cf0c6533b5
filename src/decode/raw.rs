//! Camera RAW files: the embedded full-size preview (what the camera showed) when there is one,
//! the raw sensor data otherwise.

use std::path::Path;

use image::DynamicImage;
use image::metadata::Orientation;

use super::DecodeConfig;
use crate::error::Result;

/// Extensions of the camera RAW formats (Adobe DNG, Canon, Nikon, Sony, Fujifilm, Olympus,
/// Panasonic, Pentax, Samsung, Epson, Kodak, Minolta, Mamiya, Leaf/Phase One, Hasselblad).
pub(crate) const RAW_EXTENSIONS: &[&str] = &[
    "dng", "cr2", "cr3", "crw", "nef", "nrw", "arw", "srf", "sr2", "raf", "orf", "rw2", "pef",
    "srw", "erf", "kdc", "dcr", "mrw", "mef", "mos", "iiq", "3fr",
];

/// TIFF tags read here.
mod tag {
    pub(crate) const NEW_SUBFILE_TYPE: u16 = 0xFE;
    pub(crate) const IMAGE_WIDTH: u16 = 0x100;
    pub(crate) const IMAGE_LENGTH: u16 = 0x101;
    pub(crate) const COMPRESSION: u16 = 0x103;
    pub(crate) const PHOTOMETRIC: u16 = 0x106;
    pub(crate) const STRIP_OFFSETS: u16 = 0x111;
    pub(crate) const ORIENTATION: u16 = 0x112;
    pub(crate) const STRIP_BYTE_COUNTS: u16 = 0x117;
    pub(crate) const SUB_IFDS: u16 = 0x14A;
    pub(crate) const JPEG_OFFSET: u16 = 0x201;
    pub(crate) const JPEG_LENGTH: u16 = 0x202;
    /// Panasonic RW2's full-size JPEG, stored as the tag's value.
    pub(crate) const RW2_JPEG: u16 = 0x2E;
    pub(crate) const DNG_VERSION: u16 = 0xC612;
    pub(crate) const DEFAULT_CROP_SIZE: u16 = 0xC620;
}

/// Photometric interpretations of sensor data: colour filter array and linear raw.
const SENSOR_PHOTOMETRICS: [u32; 2] = [32803, 34892];

/// At most this many image file directories are read from one file (loops and bombs).
const MAX_IFDS: usize = 64;
/// At most this many entries are read from one directory.
const MAX_ENTRIES: usize = 1024;

fn has_raw_extension(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| RAW_EXTENSIONS.iter().any(|x| x.eq_ignore_ascii_case(e)))
}

/// True when `bytes` hold a camera RAW file: a RAW signature (Fujifilm, Olympus, Panasonic,
/// Canon CR3), or a TIFF structure that is a DNG, a CR2, or carries a RAW extension.
pub(crate) fn sniff(bytes: &[u8], path: &Path) -> bool {
    if bytes.starts_with(b"FUJIFILMCCD-RAW") || is_cr3(bytes) {
        return true;
    }
    let Some((tiff, first)) = Tiff::parse(bytes) else {
        return false;
    };
    if tiff.magic != 42 {
        return true; // ORF ("RO", "RS") and RW2 (0x55) are TIFF with their own magic number.
    }
    has_raw_extension(path)
        || bytes.get(8..10) == Some(b"CR")
        || tiff
            .entries(first as usize)
            .iter()
            .any(|e| e.tag == tag::DNG_VERSION)
}

fn is_cr3(bytes: &[u8]) -> bool {
    bytes.get(4..12) == Some(b"ftypcrx ")
}

/// An embedded JPEG preview.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Preview<'a> {
    /// The JPEG file, as stored.
    pub(crate) jpeg: &'a [u8],
    pub(crate) width: u32,
    pub(crate) height: u32,
    /// The RAW file's orientation (which also applies to previews without their own).
    pub(crate) orientation: Option<Orientation>,
}

/// The largest embedded JPEG preview of a RAW file, if it has one this module can find:
/// TIFF-structured files (DNG, CR2, NEF, ARW, PEF, SRW, ORF, RW2...) and Fujifilm RAF.
pub(crate) fn find_preview(bytes: &[u8]) -> Option<Preview<'_>> {
    if bytes.starts_with(b"FUJIFILMCCD-RAW") {
        let offset = u32::from_be_bytes(bytes.get(84..88)?.try_into().ok()?) as usize;
        let length = u32::from_be_bytes(bytes.get(88..92)?.try_into().ok()?) as usize;
        let jpeg = bytes.get(offset..offset.checked_add(length)?)?;
        let (width, height) = jpeg_size(jpeg)?;
        return Some(Preview {
            jpeg,
            width,
            height,
            orientation: None,
        });
    }
    let (tiff, first) = Tiff::parse(bytes)?;
    let mut best: Option<Preview> = None;
    for ifd in directories(&tiff, first) {
        let entries = tiff.entries(ifd);
        let find = |t: u16| entries.iter().find(|e| e.tag == t);
        let first_value = |t: u16| find(t).and_then(|e| tiff.value(e, 0));
        let mut spans = Vec::new();
        if let (Some(offset), Some(length)) =
            (first_value(tag::JPEG_OFFSET), first_value(tag::JPEG_LENGTH))
        {
            spans.push((offset, length));
        }
        let jpeg_compressed = matches!(first_value(tag::COMPRESSION), Some(6 | 7));
        let sensor_data =
            first_value(tag::PHOTOMETRIC).is_some_and(|p| SENSOR_PHOTOMETRICS.contains(&p));
        if jpeg_compressed
            && !sensor_data
            && let (Some(offsets), Some(counts)) =
                (find(tag::STRIP_OFFSETS), find(tag::STRIP_BYTE_COUNTS))
            && offsets.count == 1
            && let (Some(offset), Some(length)) = (tiff.value(offsets, 0), tiff.value(counts, 0))
        {
            spans.push((offset, length));
        }
        if let Some(e) = find(tag::RW2_JPEG)
            && e.kind == 7
        {
            spans.push((tiff.data_offset(e) as u32, e.count));
        }
        for (offset, length) in spans {
            let (offset, length) = (offset as usize, length as usize);
            let Some(jpeg) = bytes.get(offset..offset.saturating_add(length)) else {
                continue;
            };
            let Some((width, height)) = jpeg_size(jpeg) else {
                continue;
            };
            keep_larger(&mut best, jpeg, width, height);
        }
    }
    let orientation = file_orientation(&tiff, first);
    best.map(|p| Preview { orientation, ..p })
}

/// Makes the `width x height` JPEG `jpeg` the best preview unless one at least as large is.
fn keep_larger<'a>(best: &mut Option<Preview<'a>>, jpeg: &'a [u8], width: u32, height: u32) {
    let area = u64::from(width) * u64::from(height);
    if best.is_none_or(|b| area > u64::from(b.width) * u64::from(b.height)) {
        *best = Some(Preview {
            jpeg,
            width,
            height,
            orientation: None,
        });
    }
}

/// The directories of a TIFF-structured file: its chain from the first, and every SubIFD, each
/// once, at most [`MAX_IFDS`].
fn directories(tiff: &Tiff, first: u32) -> Vec<usize> {
    let mut queue = vec![first as usize];
    let mut seen = Vec::new();
    while let Some(ifd) = queue.pop() {
        if ifd == 0 || seen.contains(&ifd) || seen.len() >= MAX_IFDS {
            continue;
        }
        seen.push(ifd);
        let entries = tiff.entries(ifd);
        if let Some(next) = tiff.u32(ifd + 2 + entries.len() * 12) {
            queue.push(next as usize);
        }
        if let Some(e) = entries.iter().find(|e| e.tag == tag::SUB_IFDS) {
            for i in 0..e.count.min(MAX_IFDS as u32) {
                if let Some(offset) = tiff.value(e, i) {
                    queue.push(offset as usize);
                }
            }
        }
    }
    seen
}

/// The size of the photo a RAW file holds, upright: its sensor image's, which a preview may
/// be smaller than. From the TIFF directory of full-resolution sensor data (a DNG's
/// DefaultCropSize when it has one, else the directory's width and length), else from the RAW
/// decoder's reading of the header.
pub(crate) fn photo_size(bytes: &[u8]) -> Option<(u32, u32)> {
    tiff_sensor_size(bytes).or_else(|| decoder_sensor_size(bytes))
}

fn tiff_sensor_size(bytes: &[u8]) -> Option<(u32, u32)> {
    let (tiff, first) = Tiff::parse(bytes)?;
    let size = directories(&tiff, first).into_iter().find_map(|ifd| {
        let entries = tiff.entries(ifd);
        let find = |t: u16| entries.iter().find(|e| e.tag == t);
        let first_value = |t: u16| find(t).and_then(|e| tiff.value(e, 0));
        let sensor = first_value(tag::PHOTOMETRIC)
            .is_some_and(|p| SENSOR_PHOTOMETRICS.contains(&p))
            && first_value(tag::NEW_SUBFILE_TYPE).unwrap_or(0) & 1 == 0;
        if !sensor {
            return None;
        }
        let crop = find(tag::DEFAULT_CROP_SIZE)
            .and_then(|e| Some((tiff.number(e, 0)?, tiff.number(e, 1)?)));
        crop.or_else(|| {
            Some((
                first_value(tag::IMAGE_WIDTH)?,
                first_value(tag::IMAGE_LENGTH)?,
            ))
        })
        .filter(|&(w, h)| w > 0 && h > 0)
    })?;
    Some(upright_size(size, file_orientation(&tiff, first)))
}

/// `(width, height)` after `orientation`.
fn upright_size((w, h): (u32, u32), orientation: Option<Orientation>) -> (u32, u32) {
    match orientation {
        Some(
            Orientation::Rotate90
            | Orientation::Rotate270
            | Orientation::Rotate90FlipH
            | Orientation::Rotate270FlipH,
        ) => (h, w),
        _ => (w, h),
    }
}

/// The sensor image's size as the RAW decoder reads it from the header (its crop when it
/// gives one), upright.
#[cfg(feature = "raw")]
fn decoder_sensor_size(bytes: &[u8]) -> Option<(u32, u32)> {
    use rawler::decoders::RawDecodeParams;
    use rawler::rawsource::RawSource;
    let bytes = with_sub_ifds_as_long(bytes);
    let source = RawSource::new_from_slice(&bytes);
    let decoder = rawler::get_decoder(&source).ok()?;
    let header = decoder
        .raw_image(&source, &RawDecodeParams::default(), true)
        .ok()?;
    let d = header
        .crop_area
        .or(header.active_area)
        .map_or((header.width, header.height), |r| (r.d.w, r.d.h));
    let size = (u32::try_from(d.0).ok()?, u32::try_from(d.1).ok()?);
    let orientation = u8::try_from(header.orientation.to_u16())
        .ok()
        .and_then(Orientation::from_exif);
    (size.0 > 0 && size.1 > 0).then(|| upright_size(size, orientation))
}

/// Without the `raw` feature the header is read by the TIFF walk alone.
#[cfg(not(feature = "raw"))]
fn decoder_sensor_size(_bytes: &[u8]) -> Option<(u32, u32)> {
    None
}

/// True when a TIFF-structured file holds RAW sensor data: a DNGVersion tag, or a directory of
/// colour filter array or linear raw data.
pub(crate) fn has_sensor_data(bytes: &[u8]) -> bool {
    let Some((tiff, first)) = Tiff::parse(bytes) else {
        return false;
    };
    directories(&tiff, first).into_iter().any(|ifd| {
        tiff.entries(ifd).iter().any(|e| {
            e.tag == tag::DNG_VERSION
                || (e.tag == tag::PHOTOMETRIC
                    && tiff
                        .value(e, 0)
                        .is_some_and(|p| SENSOR_PHOTOMETRICS.contains(&p)))
        })
    })
}

/// `bytes` with every SubIFDs entry typed IFD (13), as libtiff writes them, retyped LONG (4),
/// the type rawler follows; the same bytes when there is none.
#[cfg(feature = "raw")]
fn with_sub_ifds_as_long(bytes: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    let Some((tiff, first)) = Tiff::parse(bytes) else {
        return bytes.into();
    };
    // the type field sits 2 bytes into an entry, 6 before its value field
    let typed_ifd: Vec<usize> = directories(&tiff, first)
        .into_iter()
        .flat_map(|ifd| tiff.entries(ifd))
        .filter(|e| e.tag == tag::SUB_IFDS && e.kind == 13)
        .map(|e| e.field - 6)
        .collect();
    if typed_ifd.is_empty() {
        return bytes.into();
    }
    let long = if tiff.little_endian {
        4u16.to_le_bytes()
    } else {
        4u16.to_be_bytes()
    };
    let mut copy = bytes.to_vec();
    for at in typed_ifd {
        copy[at..at + 2].copy_from_slice(&long);
    }
    copy.into()
}

/// At most this many candidate JPEG starts are examined by [`scan_for_preview`].
const MAX_SCAN_CANDIDATES: usize = 4096;

/// The largest complete baseline or progressive JPEG embedded anywhere in a RAW file, found by
/// its structure (start marker, segments, entropy-coded data, end marker): for formats that keep
/// their preview where the TIFF walk does not look, such as Olympus ORF's maker note. Canon CR3
/// is left to the sensor decoder, which also reads its orientation.
pub(crate) fn scan_for_preview(bytes: &[u8]) -> Option<Preview<'_>> {
    if is_cr3(bytes) {
        return None;
    }
    let mut best: Option<Preview> = None;
    let mut at = 0;
    for _ in 0..MAX_SCAN_CANDIDATES {
        let Some(found) = bytes
            .get(at..)?
            .windows(3)
            .position(|w| w == [0xFF, 0xD8, 0xFF])
        else {
            break;
        };
        let start = at + found;
        let candidate = jpeg_extent(&bytes[start..]).and_then(|len| {
            let jpeg = &bytes[start..start + len];
            jpeg_size(jpeg).map(|(width, height)| (jpeg, width, height))
        });
        match candidate {
            Some((jpeg, width, height)) => {
                keep_larger(&mut best, jpeg, width, height);
                at = start + jpeg.len();
            }
            None => at = start + 1,
        }
    }
    let orientation = Tiff::parse(bytes).and_then(|(tiff, first)| file_orientation(&tiff, first));
    best.map(|p| Preview { orientation, ..p })
}

/// The length of the JPEG file at the start of `bytes`, through its end marker, if its
/// structure holds together.
fn jpeg_extent(bytes: &[u8]) -> Option<usize> {
    if !bytes.starts_with(&[0xFF, 0xD8]) {
        return None;
    }
    let mut at = 2;
    loop {
        if *bytes.get(at)? != 0xFF {
            return None;
        }
        while bytes.get(at + 1) == Some(&0xFF) {
            at += 1;
        }
        let marker = *bytes.get(at + 1)?;
        match marker {
            0xD9 => return Some(at + 2),
            0xD0..=0xD7 | 0x01 => at += 2,
            0x00 | 0xD8 => return None,
            _ => {
                let length = usize::from(u16::from_be_bytes([
                    *bytes.get(at + 2)?,
                    *bytes.get(at + 3)?,
                ]));
                if length < 2 {
                    return None;
                }
                at += 2 + length;
                if marker == 0xDA {
                    // Entropy-coded data: a 0xFF is followed by 0 (stuffing) or a restart
                    // marker until the next real marker.
                    loop {
                        let ff = bytes.get(at..)?.iter().position(|&b| b == 0xFF)?;
                        at += ff;
                        match *bytes.get(at + 1)? {
                            0x00 | 0xD0..=0xD7 => at += 2,
                            0xFF => at += 1,
                            _ => break,
                        }
                    }
                }
            }
        }
    }
}

/// The size a JPEG declares in its frame header, for baseline, extended and progressive
/// JPEGs only (a lossless JPEG, as DNG uses for sensor data, is not a picture).
pub(crate) fn jpeg_size(jpeg: &[u8]) -> Option<(u32, u32)> {
    segments(jpeg).find_map(|(marker, body)| match marker {
        0xC0..=0xC2 => {
            let h = u16::from_be_bytes([*body.get(1)?, *body.get(2)?]);
            let w = u16::from_be_bytes([*body.get(3)?, *body.get(4)?]);
            Some((w > 0 && h > 0).then_some((u32::from(w), u32::from(h))))
        }
        // Lossless, hierarchical and arithmetic-coded frames.
        0xC3 | 0xC5..=0xC7 | 0xC9..=0xCB | 0xCD..=0xCF => Some(None),
        _ => None,
    })?
}

/// True when a JPEG's frame is sequential (baseline or extended, Huffman-coded): a decoder
/// then holds a few rows of blocks, where a progressive frame keeps every coefficient.
pub(crate) fn jpeg_is_sequential(jpeg: &[u8]) -> bool {
    segments(jpeg)
        .find(|(marker, _)| matches!(marker, 0xC0..=0xC3 | 0xC5..=0xC7 | 0xC9..=0xCB | 0xCD..=0xCF))
        .is_some_and(|(marker, _)| matches!(marker, 0xC0 | 0xC1))
}

/// The name of a JPEG's coding when it is one no decoder here reads (arithmetic, lossless or
/// hierarchical), from its frame marker.
pub(crate) fn jpeg_unsupported_coding(jpeg: &[u8]) -> Option<&'static str> {
    let (marker, _) = segments(jpeg).find(
        |(marker, _)| matches!(marker, 0xC0..=0xC3 | 0xC5..=0xC7 | 0xC9..=0xCB | 0xCD..=0xCF),
    )?;
    match marker {
        0xC3 => Some("lossless"),
        0xC5..=0xC7 => Some("hierarchical"),
        0xC9..=0xCB | 0xCD..=0xCF => Some("arithmetic-coded"),
        _ => None,
    }
}

/// The kind of a TIFF's samples, from its first directory, when the decoder here does not read
/// them: 64-bit samples, 32-bit integers, and grey (one or two channel) 32-bit floats.
pub(crate) fn tiff_unsupported_samples(bytes: &[u8]) -> Option<String> {
    const BITS_PER_SAMPLE: u16 = 0x102;
    const SAMPLES_PER_PIXEL: u16 = 0x115;
    const SAMPLE_FORMAT: u16 = 0x153;
    let (tiff, first) = Tiff::parse(bytes)?;
    if tiff.magic != 42 {
        return None;
    }
    let entries = tiff.entries(first as usize);
    let first_value = |tag: u16| {
        entries
            .iter()
            .find(|e| e.tag == tag)
            .and_then(|e| tiff.value(e, 0))
    };
    let bits = first_value(BITS_PER_SAMPLE)?;
    let channels = first_value(SAMPLES_PER_PIXEL).unwrap_or(1);
    let format = first_value(SAMPLE_FORMAT).unwrap_or(1);
    let number = match format {
        1 => "unsigned integer",
        2 => "signed integer",
        3 => "floating-point",
        _ => return None,
    };
    let unread = bits == 64 || (bits == 32 && (format != 3 || channels <= 2));
    let layout = match channels {
        1 => "grey".to_string(),
        2 => "grey and alpha".to_string(),
        n => format!("{n}-channel"),
    };
    unread.then(|| format!("{layout} {bits}-bit {number} samples"))
}

/// The orientation a JPEG's own EXIF block gives, if it has one.
pub(crate) fn jpeg_orientation(jpeg: &[u8]) -> Option<Orientation> {
    segments(jpeg).find_map(|(marker, body)| {
        let exif = body.strip_prefix(b"Exif\0\0").filter(|_| marker == 0xE1)?;
        Some(Orientation::from_exif_chunk(exif))
    })?
}

/// The (marker, body) of each marker segment of a JPEG before its first scan; fill bytes
/// before a marker are skipped, and the walk ends at a scan, an end marker or broken data.
fn segments(jpeg: &[u8]) -> impl Iterator<Item = (u8, &[u8])> {
    let mut at = if jpeg.starts_with(&[0xFF, 0xD8]) {
        2
    } else {
        jpeg.len()
    };
    std::iter::from_fn(move || {
        while jpeg.get(at) == Some(&0xFF) && jpeg.get(at + 1) == Some(&0xFF) {
            at += 1;
        }
        if jpeg.get(at) != Some(&0xFF) {
            return None;
        }
        let marker = *jpeg.get(at + 1)?;
        if marker == 0xDA || marker == 0xD9 {
            return None;
        }
        let length = usize::from(u16::from_be_bytes([*jpeg.get(at + 2)?, *jpeg.get(at + 3)?]));
        let body = jpeg.get(at + 4..(at + 2 + length).max(at + 4))?;
        at += 2 + length;
        Some((marker, body))
    })
}

/// The orientation in the first directory of a TIFF-structured file.
fn file_orientation(tiff: &Tiff, first: u32) -> Option<Orientation> {
    let entries = tiff.entries(first as usize);
    let e = entries.iter().find(|e| e.tag == tag::ORIENTATION)?;
    Orientation::from_exif(u8::try_from(tiff.value(e, 0)?).ok()?)
}

/// Pages in a TIFF, counted up to 2 by walking its directories (0 when the walk fails); a
/// reduced-resolution copy (NewSubfileType bit 0, as a thumbnail is marked) is no page.
pub(crate) fn tiff_pages(bytes: &[u8]) -> usize {
    const NEW_SUBFILE_TYPE: u16 = 0xFE;
    let Some((tiff, first)) = Tiff::parse(bytes) else {
        return 0;
    };
    let mut directory = first as usize;
    let (mut pages, mut walked) = (0, 0);
    // a directory chain that loops ends the walk after 64 directories
    while directory != 0 && pages < 2 && walked < 64 {
        walked += 1;
        let Some(count) = tiff.u16(directory) else {
            break;
        };
        let reduced = tiff
            .entries(directory)
            .iter()
            .any(|e| e.tag == NEW_SUBFILE_TYPE && tiff.value(e, 0).is_some_and(|v| v & 1 != 0));
        if !reduced {
            pages += 1;
        }
        let next = directory + 2 + 12 * usize::from(count);
        directory = tiff.u32(next).map_or(0, |at| at as usize);
    }
    pages
}

/// A little- or big-endian TIFF structure.
struct Tiff<'a> {
    bytes: &'a [u8],
    little_endian: bool,
    magic: u16,
}

/// One directory entry: its tag, type, value count and where its 4-byte value field is.
struct Entry {
    tag: u16,
    kind: u16,
    count: u32,
    field: usize,
}

impl<'a> Tiff<'a> {
    /// The structure and the offset of its first directory.
    fn parse(bytes: &'a [u8]) -> Option<(Tiff<'a>, u32)> {
        let little_endian = match bytes.get(..2)? {
            b"II" => true,
            b"MM" => false,
            _ => return None,
        };
        let mut tiff = Tiff {
            bytes,
            little_endian,
            magic: 0,
        };
        tiff.magic = tiff.u16(2)?;
        if !matches!(tiff.magic, 42 | 0x4F52 | 0x5352 | 0x55) {
            return None;
        }
        let first = tiff.u32(4)?;
        Some((tiff, first))
    }

    fn u16(&self, at: usize) -> Option<u16> {
        let b: [u8; 2] = self.bytes.get(at..at + 2)?.try_into().ok()?;
        Some(if self.little_endian {
            u16::from_le_bytes(b)
        } else {
            u16::from_be_bytes(b)
        })
    }

    fn u32(&self, at: usize) -> Option<u32> {
        let b: [u8; 4] = self.bytes.get(at..at + 4)?.try_into().ok()?;
        Some(if self.little_endian {
            u32::from_le_bytes(b)
        } else {
            u32::from_be_bytes(b)
        })
    }

    fn entries(&self, ifd: usize) -> Vec<Entry> {
        let count = self.u16(ifd).map_or(0, usize::from).min(MAX_ENTRIES);
        (0..count)
            .map_while(|i| {
                let at = ifd + 2 + i * 12;
                Some(Entry {
                    tag: self.u16(at)?,
                    kind: self.u16(at + 2)?,
                    count: self.u32(at + 4)?,
                    field: at + 8,
                })
            })
            .collect()
    }

    fn type_size(kind: u16) -> usize {
        match kind {
            1 | 2 | 6 | 7 => 1,
            3 | 8 => 2,
            4 | 9 | 11 | 13 => 4,
            5 | 10 | 12 => 8,
            _ => 0,
        }
    }

    /// Where an entry's data is: in its value field when it fits, else at the offset there.
    fn data_offset(&self, e: &Entry) -> usize {
        let size = Self::type_size(e.kind).saturating_mul(e.count as usize);
        if size <= 4 {
            e.field
        } else {
            self.u32(e.field).unwrap_or(u32::MAX) as usize
        }
    }

    /// The `i`-th value of a SHORT, LONG or IFD entry, or of a RATIONAL one rounded.
    fn number(&self, e: &Entry, i: u32) -> Option<u32> {
        if e.kind != 5 {
            return self.value(e, i);
        }
        if i >= e.count {
            return None;
        }
        let at = self.data_offset(e) + 8 * i as usize;
        let (n, d) = (self.u32(at)?, self.u32(at + 4)?);
        (d > 0).then(|| ((u64::from(n) + u64::from(d) / 2) / u64::from(d)) as u32)
    }

    /// The `i`-th value of a SHORT, LONG or IFD entry.
    fn value(&self, e: &Entry, i: u32) -> Option<u32> {
        if i >= e.count {
            return None;
        }
        let at = self.data_offset(e);
        match e.kind {
            3 => self.u16(at + 2 * i as usize).map(u32::from),
            4 | 13 => self.u32(at + 4 * i as usize),
            _ => None,
        }
    }
}

/// True when a RAW decoder knows `bytes`: a camera's data, not a plain TIFF under a RAW name.
#[cfg(feature = "raw")]
pub(crate) fn has_raw_data(bytes: &[u8]) -> bool {
    let bytes = with_sub_ifds_as_long(bytes);
    rawler::get_decoder(&rawler::rawsource::RawSource::new_from_slice(&bytes)).is_ok()
}

/// Without the `raw` feature, true when the content has a RAW signature or DNG or CR2 marks.
#[cfg(not(feature = "raw"))]
pub(crate) fn has_raw_data(bytes: &[u8]) -> bool {
    sniff(bytes, Path::new(""))
}

/// What to do with RAW sensor data no decoder here develops, after the reason.
#[cfg(feature = "raw")]
const CONVERT_RAW: &str = "; convert it to DNG (Adobe DNG Converter) or export it as TIFF or JPEG \
     from a RAW developer, and index that";

/// Decodes the raw sensor data (demosaicing, white balance, colour calibration, sRGB), upright,
/// for RAW files without a usable preview; with the size of the photo, upright, which is the
/// picture's but for a preview the decoder finds (Canon CR3's).
#[cfg(feature = "raw")]
pub(crate) fn decode_sensor(
    bytes: &[u8],
    path: &Path,
    cfg: &DecodeConfig,
) -> Result<(DynamicImage, (u32, u32))> {
    use rawler::decoders::RawDecodeParams;
    use rawler::imgop::develop::RawDevelop;
    use rawler::rawsource::RawSource;

    use super::{bad, check_memory, check_size};

    let retyped = with_sub_ifds_as_long(bytes);
    let source = RawSource::new_from_slice(&retyped);
    let decoder = rawler::get_decoder(&source).map_err(|e| {
        bad(
            path,
            format!("not a RAW file lookalike can read ({e}){CONVERT_RAW}"),
        )
    })?;
    let params = RawDecodeParams::default();
    let upright = |img: DynamicImage, tiff_orientation: u16| {
        let mut img = img;
        if let Some(o) = u8::try_from(tiff_orientation)
            .ok()
            .and_then(Orientation::from_exif)
        {
            img.apply_orientation(o);
        }
        img
    };
    // Formats whose preview is outside TIFF structures (Canon CR3's preview track).
    if let Ok(Some(preview)) = decoder.preview_image(&source, &params)
        && preview.width().max(preview.height()) >= cfg.working_size
    {
        let orientation = decoder
            .raw_metadata(&source, &params)
            .ok()
            .and_then(|m| m.exif.orientation)
            .unwrap_or(1);
        let preview = upright(preview, orientation);
        let size = photo_size(bytes).unwrap_or((preview.width(), preview.height()));
        return Ok((preview, size));
    }
    let header = decoder.raw_image(&source, &params, true).map_err(|e| {
        bad(
            path,
            format!("unreadable RAW sensor data ({e}){CONVERT_RAW}"),
        )
    })?;
    let (w, h) = (header.width as u32, header.height as u32);
    check_size(w, h, path, cfg)?;
    // Development keeps a few floating-point copies of the frame: about 48 bytes per pixel.
    check_memory(u64::from(w) * u64::from(h) * 48, w, h, path, cfg)?;
    let raw = decoder.raw_image(&source, &params, false).map_err(|e| {
        bad(
            path,
            format!("unreadable RAW sensor data ({e}){CONVERT_RAW}"),
        )
    })?;
    let developed = RawDevelop::default()
        .develop_intermediate(&raw)
        .map_err(|e| {
            bad(
                path,
                format!("could not develop the RAW sensor data ({e}){CONVERT_RAW}"),
            )
        })?
        .to_dynamic_image()
        .ok_or_else(|| {
            bad(
                path,
                format!("could not develop the RAW sensor data{CONVERT_RAW}"),
            )
        })?;
    let developed = upright(developed, raw.orientation.to_u16());
    let size = (developed.width(), developed.height());
    Ok((developed, size))
}

/// Without the `raw` feature only embedded previews are read.
#[cfg(not(feature = "raw"))]
pub(crate) fn decode_sensor(
    _bytes: &[u8],
    path: &Path,
    _cfg: &DecodeConfig,
) -> Result<(DynamicImage, (u32, u32))> {
    Err(super::bad(
        path,
        "this RAW file has no embedded preview, and this build of lookalike cannot decode raw \
         sensor data (it was built without the `raw` feature)",
    ))
}

#[cfg(test)]
#[path = "../../tests/common/dng.rs"]
mod dng_fixture;

/// DNG fixtures for the decoding tests here and in the parent module.
#[cfg(test)]
pub(super) mod dng_tests {
    pub(crate) use super::dng_fixture::{DngOptions, dng_from_rgb};
    use image::{Rgb, RgbImage};

    pub(crate) fn picture(w: u32, h: u32) -> RgbImage {
        RgbImage::from_fn(w, h, |x, y| {
            Rgb([
                (x * 255 / w) as u8,
                (y * 255 / h) as u8,
                if (x / 8 + y / 8) % 2 == 0 { 200 } else { 40 },
            ])
        })
    }

    pub(crate) fn jpeg(img: &RgbImage) -> Vec<u8> {
        let mut out = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90)
            .encode_image(img)
            .unwrap();
        out
    }

    pub(crate) fn dng(img: &RgbImage, preview: bool, orientation: u16) -> Vec<u8> {
        dng_from_rgb(
            img,
            &DngOptions {
                preview_jpeg: preview.then(|| jpeg(img)),
                preview_size: img.dimensions(),
                orientation,
                default_crop_size: None,
                thumbnail_first: None,
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::dng_tests::{dng, jpeg, picture};
    use super::*;

    #[test]
    fn a_dng_preview_is_found_with_its_size_and_the_file_orientation() {
        let img = picture(96, 64);
        let bytes = dng(&img, true, 6);
        let p = find_preview(&bytes).expect("preview");
        assert_eq!((p.width, p.height), (96, 64));
        assert_eq!(p.jpeg, jpeg(&img).as_slice());
        assert_eq!(p.orientation, Some(Orientation::Rotate90));
        // The sensor data (uncompressed colour filter array) is never taken for a preview.
        assert!(find_preview(&dng(&img, false, 1)).is_none());
    }

    #[test]
    fn the_photo_size_is_the_sensor_images_upright() {
        use super::dng_fixture::{DngOptions, dng_from_rgb};
        let img = picture(96, 64);
        let with = |orientation, default_crop_size| {
            dng_from_rgb(
                &img,
                &DngOptions {
                    preview_jpeg: Some(jpeg(&picture(48, 32))),
                    preview_size: (48, 32),
                    orientation,
                    default_crop_size,
                    thumbnail_first: None,
                },
            )
        };
        assert_eq!(photo_size(&with(1, None)), Some((96, 64)));
        assert_eq!(photo_size(&with(6, None)), Some((64, 96)));
        assert_eq!(photo_size(&with(1, Some((90, 60)))), Some((90, 60)));
        assert_eq!(photo_size(&with(8, Some((90, 60)))), Some((60, 90)));
        // A plain TIFF has no sensor data.
        let tiff = plain_tiff(img);
        assert_eq!(tiff_sensor_size(&tiff), None);
    }

    /// `img` as a plain TIFF, without RAW data.
    fn plain_tiff(img: image::RgbImage) -> Vec<u8> {
        let mut tiff = Vec::new();
        image::DynamicImage::ImageRgb8(img)
            .write_to(
                &mut std::io::Cursor::new(&mut tiff),
                image::ImageFormat::Tiff,
            )
            .unwrap();
        tiff
    }

    #[test]
    fn raw_files_are_told_from_plain_tiffs() {
        let img = picture(32, 32);
        let dng_bytes = dng(&img, false, 1);
        assert!(sniff(&dng_bytes, Path::new("photo.bin")), "DNGVersion tag");
        let tiff = plain_tiff(img);
        assert!(!sniff(&tiff, Path::new("scan.tif")));
        assert!(sniff(&tiff, Path::new("DSC_0001.NEF")), "a RAW extension");
        let mut raf = b"FUJIFILMCCD-RAW 0201FF383501".to_vec();
        raf.resize(100, 0);
        assert!(sniff(&raf, Path::new("x")));
        assert!(!sniff(b"\x89PNG\r\n\x1a\n", Path::new("x.dng")));
    }

    #[test]
    fn a_fujifilm_preview_is_read_from_the_header() {
        let preview = jpeg(&picture(80, 60));
        let mut raf = b"FUJIFILMCCD-RAW 0201FF383501".to_vec();
        raf.resize(100, 0);
        raf[84..88].copy_from_slice(&100u32.to_be_bytes());
        raf[88..92].copy_from_slice(&(preview.len() as u32).to_be_bytes());
        raf.extend_from_slice(&preview);
        let p = find_preview(&raf).expect("preview");
        assert_eq!((p.width, p.height), (80, 60));
        // A length past the end of the file is no preview.
        raf[88..92].copy_from_slice(&(preview.len() as u32 + 1).to_be_bytes());
        assert!(find_preview(&raf).is_none());
    }

    #[test]
    fn lossless_jpeg_sensor_data_is_not_a_picture() {
        let baseline = jpeg(&picture(40, 30));
        assert_eq!(jpeg_size(&baseline), Some((40, 30)));
        // SOI, then a lossless (SOF3) frame header.
        let lossless = [
            0xFF, 0xD8, 0xFF, 0xC3, 0, 11, 16, 0, 30, 0, 40, 1, 0, 0x11, 0,
        ];
        assert_eq!(jpeg_size(&lossless), None);
        assert_eq!(jpeg_size(&[0xFF, 0xD8, 0xFF]), None);
        assert_eq!(jpeg_orientation(&baseline), None);
    }

    #[test]
    fn a_preview_outside_the_tiff_directories_is_found_by_its_structure() {
        // Olympus-like: the preview sits in maker-note data the walk does not read, between
        // runs of bytes that look like JPEG starts.
        let small = jpeg(&picture(40, 30));
        let large = jpeg(&picture(320, 240));
        let mut file = dng(&picture(16, 16), false, 8);
        file.extend_from_slice(&[0xFF, 0xD8, 0xFF, 0xE1, 0x00]);
        file.extend_from_slice(&small);
        file.extend_from_slice(&[0x12, 0xFF, 0xD8, 0xFF, 0xFF, 0xD8]);
        file.extend_from_slice(&large);
        file.extend_from_slice(&[0xFF, 0xD8, 0xFF, 0xC0]);
        assert!(find_preview(&file).is_none());
        let p = scan_for_preview(&file).expect("preview");
        assert_eq!((p.width, p.height), (320, 240));
        assert_eq!(p.jpeg, large.as_slice());
        assert_eq!(p.orientation, Some(Orientation::Rotate270));
        // A JPEG cut short has no end marker: not a preview.
        let cut = &large[..large.len() - 10];
        assert!(scan_for_preview(cut).is_none());
    }

    #[test]
    fn directory_loops_and_absurd_offsets_end_the_walk() {
        // Little-endian TIFF whose first directory points to itself, by its next-directory
        // offset and by a SubIFDs entry, with a JPEG offset far past the end of the file.
        let mut b = vec![b'I', b'I', 42, 0, 8, 0, 0, 0];
        b.extend_from_slice(&3u16.to_le_bytes());
        for (tag, kind, value) in [
            (0x14Au16, 4u16, 8u32),
            (0x201, 4, u32::MAX),
            (0x202, 4, 1000),
        ] {
            b.extend_from_slice(&tag.to_le_bytes());
            b.extend_from_slice(&kind.to_le_bytes());
            b.extend_from_slice(&1u32.to_le_bytes());
            b.extend_from_slice(&value.to_le_bytes());
        }
        b.extend_from_slice(&8u32.to_le_bytes());
        assert!(find_preview(&b).is_none());
        // A directory count larger than the file.
        let mut b = vec![b'M', b'M', 0, 42, 0, 0, 0, 8, 0xFF, 0xFF];
        b.extend_from_slice(&[0; 16]);
        assert!(find_preview(&b).is_none());
    }
}
