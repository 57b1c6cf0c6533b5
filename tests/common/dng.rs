//! A minimal DNG writer for test fixtures: an RGB image becomes a 16-bit RGGB Bayer mosaic
//! (linear light, uncompressed), optionally with a full-size JPEG preview and an orientation.
//! Shared by the decoding tests and the `make_dng` tool.

use image::RgbImage;

/// What goes into the file besides the mosaic.
#[derive(Debug, Clone, Default)]
pub struct DngOptions {
    /// A JPEG file stored as the preview (NewSubFileType 1) in a sub-directory.
    pub preview_jpeg: Option<Vec<u8>>,
    /// The preview's size, as its frame header gives it.
    pub preview_size: (u32, u32),
    /// EXIF/TIFF orientation of the image (1 = upright).
    pub orientation: u16,
    /// The DefaultCropSize written in the sensor data's directory, if any.
    pub default_crop_size: Option<(u32, u32)>,
    /// An uncompressed RGB thumbnail (NewSubFileType 1) as the first directory, with the mosaic
    /// in its sub-directory, as libtiff and tifffile write a DNG: the SubIFDs entry typed IFD
    /// (13). No preview is written then.
    pub thumbnail_first: Option<RgbImage>,
}

struct Entry {
    tag: u16,
    kind: u16,
    count: u32,
    data: Vec<u8>,
}

fn short(tag: u16, values: &[u16]) -> Entry {
    Entry {
        tag,
        kind: 3,
        count: values.len() as u32,
        data: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
    }
}

fn long(tag: u16, values: &[u32]) -> Entry {
    Entry {
        tag,
        kind: 4,
        count: values.len() as u32,
        data: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
    }
}

fn bytes(tag: u16, kind: u16, values: &[u8]) -> Entry {
    Entry {
        tag,
        kind,
        count: values.len() as u32,
        data: values.to_vec(),
    }
}

fn ascii(tag: u16, text: &str) -> Entry {
    let mut data = text.as_bytes().to_vec();
    data.push(0);
    bytes(tag, 2, &data)
}

fn rational(tag: u16, signed: bool, values: &[(i32, i32)]) -> Entry {
    Entry {
        tag,
        kind: if signed { 10 } else { 5 },
        count: values.len() as u32,
        data: values
            .iter()
            .flat_map(|(n, d)| n.to_le_bytes().into_iter().chain(d.to_le_bytes()))
            .collect(),
    }
}

/// sRGB-encoded 8-bit value to linear light in 16 bits.
fn linear16(v: u8) -> u16 {
    let c = f64::from(v) / 255.0;
    let l = if c <= 0.04045 {
        c / 12.92
    } else {
        ((c + 0.055) / 1.055).powf(2.4)
    };
    (l * 65535.0).round() as u16
}

/// Lays out directories and their data: each directory is a list of entries; a `u32::MAX`
/// placeholder in the value of an entry tagged 273 (strip offsets) or 330 (sub-directories)
/// is filled with the strip's or the next directory's offset.
fn write(dirs: Vec<(Vec<Entry>, Vec<u8>)>) -> Vec<u8> {
    // Offsets: header (8), then per directory: entries, then out-of-line values, then its strip.
    let mut out = vec![b'I', b'I', 42, 0, 8, 0, 0, 0];
    let mut starts = Vec::new();
    let mut at = 8usize;
    for (entries, strip) in &dirs {
        starts.push(at);
        at += 2 + entries.len() * 12 + 4;
        for e in entries {
            if e.data.len() > 4 {
                at += e.data.len().next_multiple_of(2);
            }
        }
        at += strip.len().next_multiple_of(2);
    }
    for (d, (mut entries, strip)) in dirs.into_iter().enumerate() {
        entries.sort_by_key(|e| e.tag);
        let start = starts[d];
        let mut extra = start + 2 + entries.len() * 12 + 4;
        let mut out_of_line = Vec::new();
        let strip_offset = extra
            + entries
                .iter()
                .filter(|e| e.data.len() > 4)
                .map(|e| e.data.len().next_multiple_of(2))
                .sum::<usize>();
        out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
        for e in &entries {
            let mut data = e.data.clone();
            if e.tag == 273 && data == u32::MAX.to_le_bytes() {
                data = (strip_offset as u32).to_le_bytes().to_vec();
            }
            if e.tag == 330 && data == u32::MAX.to_le_bytes() {
                data = (starts[d + 1] as u32).to_le_bytes().to_vec();
            }
            out.extend_from_slice(&e.tag.to_le_bytes());
            out.extend_from_slice(&e.kind.to_le_bytes());
            out.extend_from_slice(&e.count.to_le_bytes());
            if data.len() <= 4 {
                let mut field = data.clone();
                field.resize(4, 0);
                out.extend_from_slice(&field);
            } else {
                out.extend_from_slice(&(extra as u32).to_le_bytes());
                extra += data.len().next_multiple_of(2);
                out_of_line.extend_from_slice(&data);
                if data.len() % 2 == 1 {
                    out_of_line.push(0);
                }
            }
        }
        out.extend_from_slice(&0u32.to_le_bytes()); // no next directory in the chain
        out.extend_from_slice(&out_of_line);
        out.extend_from_slice(&strip);
        if strip.len() % 2 == 1 {
            out.push(0);
        }
    }
    out
}

/// A DNG whose sensor data is `rgb` sampled through an RGGB colour filter array.
pub fn dng_from_rgb(rgb: &RgbImage, options: &DngOptions) -> Vec<u8> {
    let (w, h) = rgb.dimensions();
    let mut mosaic = Vec::with_capacity((w * h * 2) as usize);
    for y in 0..h {
        for x in 0..w {
            let channel = match (y % 2, x % 2) {
                (0, 0) => 0,
                (1, 1) => 2,
                _ => 1,
            };
            mosaic.extend_from_slice(&linear16(rgb.get_pixel(x, y)[channel]).to_le_bytes());
        }
    }
    // XYZ (D65) to linear sRGB: the camera "sees" sRGB primaries, so calibration is exact.
    let xyz_to_srgb = [
        (32406, 10000),
        (-15372, 10000),
        (-4986, 10000),
        (-9689, 10000),
        (18758, 10000),
        (415, 10000),
        (557, 10000),
        (-2040, 10000),
        (10570, 10000),
    ];
    let mut raw = vec![
        long(254, &[0]),
        long(256, &[w]),
        long(257, &[h]),
        short(258, &[16]),
        short(259, &[1]),
        short(262, &[32803]),
        ascii(271, "lookalike"),
        ascii(272, "test mosaic"),
        long(273, &[u32::MAX]),
        short(274, &[options.orientation.max(1)]),
        short(277, &[1]),
        long(278, &[h]),
        long(279, &[mosaic.len() as u32]),
        short(284, &[1]),
        short(33421, &[2, 2]),
        bytes(33422, 1, &[0, 1, 1, 2]),
        bytes(50706, 1, &[1, 4, 0, 0]),
        ascii(50708, "lookalike test mosaic"),
        long(50717, &[65535]),
        rational(50721, true, &xyz_to_srgb),
        rational(50728, false, &[(1, 1), (1, 1), (1, 1)]),
        short(50778, &[21]),
    ];
    if let Some((cw, ch)) = options.default_crop_size {
        raw.push(long(50720, &[cw, ch]));
    }
    let mut dirs = Vec::new();
    if let Some(thumbnail) = &options.thumbnail_first {
        // the file's own tags go to the first directory
        let (own, sensor): (Vec<Entry>, Vec<Entry>) = raw.into_iter().partition(|e| {
            matches!(
                e.tag,
                271 | 272 | 274 | 50706 | 50708 | 50721 | 50728 | 50778
            )
        });
        let (tw, th) = thumbnail.dimensions();
        let mut first = vec![
            long(254, &[1]),
            long(256, &[tw]),
            long(257, &[th]),
            short(258, &[8, 8, 8]),
            short(259, &[1]),
            short(262, &[2]),
            long(273, &[u32::MAX]),
            short(277, &[3]),
            long(278, &[th]),
            long(279, &[tw * th * 3]),
            Entry {
                tag: 330,
                kind: 13,
                count: 1,
                data: u32::MAX.to_le_bytes().to_vec(),
            },
        ];
        first.extend(own);
        dirs.push((first, thumbnail.as_raw().clone()));
        dirs.push((sensor, mosaic));
        return write(dirs);
    }
    match &options.preview_jpeg {
        None => dirs.push((raw, mosaic)),
        Some(jpeg) => {
            raw.push(long(330, &[u32::MAX]));
            dirs.push((raw, mosaic));
            let (pw, ph) = options.preview_size;
            let preview = vec![
                long(254, &[1]),
                long(256, &[pw]),
                long(257, &[ph]),
                short(258, &[8, 8, 8]),
                short(259, &[7]),
                short(262, &[6]),
                long(273, &[u32::MAX]),
                short(277, &[3]),
                long(278, &[ph]),
                long(279, &[jpeg.len() as u32]),
            ];
            dirs.push((preview, jpeg.clone()));
        }
    }
    write(dirs)
}
