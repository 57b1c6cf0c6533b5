//! The duplicate signature: low-frequency cosine coefficients of a rank-normalised grey
//! thumbnail of the image without its uniform borders, compared up to the eight flips and
//! quarter turns of the square.
//!
//! Each step removes one family of edits a copy may carry. Luma alone ignores colour, so a
//! greyscale or desaturated copy reads like its original. Replacing each thumbnail pixel by
//! its rank among the others removes any change that keeps the order of brightness levels
//! (brightness, contrast, gamma). Trimming near-uniform rows and columns at the edges removes
//! added borders. The lowest 8 x 8 cosine frequencies of a 32 x 32 thumbnail keep the layout
//! of the picture and drop what resizing, recompression, sharpening, mild blur, noise and
//! small overlays change. A horizontal flip negates the coefficients of odd horizontal
//! frequency, a vertical flip those of odd vertical frequency and a transpose swaps the two
//! frequencies, so the distance to each of the eight poses of the other image costs one pass
//! over the coefficients ([`pose_distance`]).

use ndarray::Array2;

use super::{Extractor, FeatureInput};

/// Side of the rank-normalised thumbnail.
const THUMB: usize = 32;
/// Frequencies kept along each axis (the DC term is dropped: ranks fix it).
const FREQS: usize = 8;
/// Number of coefficients describing one window.
pub const DIM: usize = FREQS * FREQS - 1;
/// Windows described: the whole picture, then its centre and four corners at `WINDOW` of each
/// side, so that a copy cropped by up to about 15% matches one of its original's windows.
const WINDOWS: usize = 6;
/// Side of the centre and corner windows, as a fraction of the picture's.
const WINDOW: f32 = 0.86;
/// Length of a signature.
pub const LEN: usize = WINDOWS * DIM;
/// Signature distance at or below which two images are edited copies of one photo, by
/// default (`duplicates --similarity default`, and the copies `query` ranks first).
pub const COPY_DISTANCE: f32 = 0.3;
/// Bandwidth (luma units) of the smoothed histogram that turns values into ranks.
const RANK_BANDWIDTH: f32 = 0.03;

/// A row or column at the edge is border when its values spread less than this (luma units)...
const BORDER_SPREAD: f32 = 0.03;
/// ...and its mean lies this close to the outermost line's mean.
const BORDER_MATCH: f32 = 0.06;
/// At most this fraction of each side is trimmed as border.
const BORDER_MAX: f32 = 0.3;

/// The duplicate signature extractor (family `dup`).
#[derive(Debug, Clone, Default)]
pub struct DuplicateSignature;

impl Extractor for DuplicateSignature {
    fn family(&self) -> &'static str {
        "dup"
    }

    fn version(&self) -> u32 {
        1
    }

    fn params(&self) -> String {
        format!(
            "softrank{RANK_BANDWIDTH}-dct t{THUMB} f{FREQS} w{WINDOWS}x{WINDOW} border{BORDER_SPREAD}/{BORDER_MATCH}/{BORDER_MAX}"
        )
    }

    fn dim(&self) -> usize {
        LEN
    }

    fn extract(&self, input: &FeatureInput) -> Vec<f32> {
        signature(&input.luma)
    }
}

/// The signature of a luma plane (values in [0, 1]): per window, its unit coefficient
/// vector; all zeros for an empty or flat image.
pub fn signature(luma: &Array2<f32>) -> Vec<f32> {
    let (rows, cols) = trimmed(luma);
    if rows.is_empty() || cols.is_empty() {
        return vec![0.0; LEN];
    }
    let (h, w) = (rows.len(), cols.len());
    let (wh, ww) = (
        ((h as f32 * WINDOW).round() as usize).clamp(1, h),
        ((w as f32 * WINDOW).round() as usize).clamp(1, w),
    );
    let at = |top: usize, left: usize| {
        (
            rows.start + top..rows.start + top + wh,
            cols.start + left..cols.start + left + ww,
        )
    };
    let windows = [
        (rows.clone(), cols.clone()),
        at((h - wh) / 2, (w - ww) / 2),
        at(0, 0),
        at(0, w - ww),
        at(h - wh, 0),
        at(h - wh, w - ww),
    ];
    let mut out = Vec::with_capacity(LEN);
    for (r, c) in windows {
        let thumb = box_resample(luma, r, c);
        let ranks = soft_ranks(&thumb);
        let mut coefficients = low_dct(&ranks);
        super::l2_normalize(&mut coefficients);
        out.extend(coefficients);
    }
    out
}

/// The distance between two images' signatures: between the whole pictures, or between one
/// whole picture and a window of the other (a crop), whichever is least, each up to the eight
/// poses of the square ([`pose_distance`]). In [0, 2].
pub fn duplicate_distance(a: &[f32], b: &[f32]) -> f32 {
    if a.len() != LEN || b.len() != LEN {
        return 2.0;
    }
    let (a_whole, b_whole) = (&a[..DIM], &b[..DIM]);
    let mut best = pose_distance(a_whole, b_whole).0;
    for w in 1..WINDOWS {
        let window = w * DIM..(w + 1) * DIM;
        best = best
            .min(pose_distance(a_whole, &b[window.clone()]).0)
            .min(pose_distance(&a[window], b_whole).0);
    }
    best
}

/// The rows and columns left after trimming near-uniform borders from each side.
fn trimmed(luma: &Array2<f32>) -> (std::ops::Range<usize>, std::ops::Range<usize>) {
    let (h, w) = luma.dim();
    if h == 0 || w == 0 {
        return (0..0, 0..0);
    }
    let row = |r: usize, c0: usize, c1: usize| luma.slice(ndarray::s![r, c0..c1]).to_vec();
    let col = |c: usize, r0: usize, r1: usize| luma.slice(ndarray::s![r0..r1, c]).to_vec();
    let (mut top, mut bottom, mut left, mut right) = (0usize, h, 0usize, w);
    let max_rows = (h as f32 * BORDER_MAX) as usize;
    let max_cols = (w as f32 * BORDER_MAX) as usize;
    // Rows first against the full width, then columns against the rows that are left; each
    // side stops at the first line that is not border.
    let edge_mean = |v: &[f32]| mean(v);
    let top_ref = edge_mean(&row(0, 0, w));
    while top < max_rows && is_border(&row(top, 0, w), top_ref) {
        top += 1;
    }
    let bottom_ref = edge_mean(&row(h - 1, 0, w));
    while h - bottom < max_rows && bottom > top + 1 && is_border(&row(bottom - 1, 0, w), bottom_ref)
    {
        bottom -= 1;
    }
    if bottom <= top {
        return (0..h, 0..w);
    }
    let left_ref = edge_mean(&col(0, top, bottom));
    while left < max_cols && is_border(&col(left, top, bottom), left_ref) {
        left += 1;
    }
    let right_ref = edge_mean(&col(w - 1, top, bottom));
    while w - right < max_cols
        && right > left + 1
        && is_border(&col(right - 1, top, bottom), right_ref)
    {
        right -= 1;
    }
    (top..bottom, left..right)
}

fn mean(v: &[f32]) -> f32 {
    v.iter().sum::<f32>() / v.len().max(1) as f32
}

/// A line of border: nearly constant, at about the outermost line's level.
fn is_border(line: &[f32], outer_mean: f32) -> bool {
    if line.is_empty() {
        return false;
    }
    let (lo, hi) = line
        .iter()
        .fold((f32::MAX, f32::MIN), |(lo, hi), &x| (lo.min(x), hi.max(x)));
    hi - lo < BORDER_SPREAD && (mean(line) - outer_mean).abs() < BORDER_MATCH
}

/// Area-average resampling of the given window of `luma` to `THUMB x THUMB`.
fn box_resample(
    luma: &Array2<f32>,
    rows: std::ops::Range<usize>,
    cols: std::ops::Range<usize>,
) -> Vec<f32> {
    let weights = |len: usize| -> Vec<Vec<(usize, f32)>> {
        // Output cell i covers [i * len / THUMB, (i + 1) * len / THUMB) in input units.
        let scale = len as f32 / THUMB as f32;
        (0..THUMB)
            .map(|i| {
                let (a, b) = (i as f32 * scale, (i + 1) as f32 * scale);
                let mut out = Vec::new();
                let mut x = a.floor() as usize;
                while (x as f32) < b && x < len {
                    let overlap = (b.min(x as f32 + 1.0) - a.max(x as f32)).max(0.0);
                    if overlap > 0.0 {
                        out.push((x, overlap / scale));
                    }
                    x += 1;
                }
                out
            })
            .collect()
    };
    let wy = weights(rows.len());
    let wx = weights(cols.len());
    let mut out = vec![0.0f32; THUMB * THUMB];
    for (i, ys) in wy.iter().enumerate() {
        for (j, xs) in wx.iter().enumerate() {
            let mut acc = 0.0f32;
            for &(y, a) in ys {
                for &(x, b) in xs {
                    acc += a * b * luma[[rows.start + y, cols.start + x]];
                }
            }
            out[i * THUMB + j] = acc;
        }
    }
    out
}

/// Each value replaced by its smoothed rank, centred on zero, in [-0.5, 0.5]: the share of
/// values below it, counted from a histogram blurred by `RANK_BANDWIDTH`, so that values
/// that differ by less than the bandwidth (a flat region re-encoded or clipped) stay close.
fn soft_ranks(values: &[f32]) -> Vec<f32> {
    const BINS: usize = 256;
    let bin_of = |x: f32| ((x.clamp(0.0, 1.0) * (BINS - 1) as f32).round()) as usize;
    let mut histogram = vec![0.0f32; BINS];
    for &x in values {
        histogram[bin_of(x)] += 1.0;
    }
    let sigma = RANK_BANDWIDTH * (BINS - 1) as f32;
    let reach = (3.0 * sigma).ceil() as isize;
    let kernel: Vec<f32> = (-reach..=reach)
        .map(|d| (-0.5 * (d as f32 / sigma).powi(2)).exp())
        .collect();
    // Mass that the kernel would push past either end stays at that end.
    let mut smooth = vec![0.0f32; BINS];
    for (i, &count) in histogram.iter().enumerate() {
        if count == 0.0 {
            continue;
        }
        let total: f32 = kernel.iter().sum();
        for (k, &weight) in kernel.iter().enumerate() {
            let j = (i as isize + k as isize - reach).clamp(0, BINS as isize - 1) as usize;
            smooth[j] += count * weight / total;
        }
    }
    // Share below each bin's centre: everything in lower bins and half of its own.
    let n = values.len().max(1) as f32;
    let mut below = vec![0.0f32; BINS];
    let mut acc = 0.0f32;
    for (b, &m) in smooth.iter().enumerate() {
        below[b] = (acc + m / 2.0) / n;
        acc += m;
    }
    values.iter().map(|&x| below[bin_of(x)] - 0.5).collect()
}

/// The DCT-II coefficients `(u, v)`, `u, v < FREQS`, of a `THUMB x THUMB` block, DC left out,
/// in the order `v * FREQS + u - 1` (`u` horizontal, `v` vertical frequency).
fn low_dct(block: &[f32]) -> Vec<f32> {
    let basis: Vec<f32> = (0..FREQS)
        .flat_map(|k| {
            (0..THUMB).map(move |x| {
                (std::f32::consts::PI * k as f32 * (x as f32 + 0.5) / THUMB as f32).cos()
            })
        })
        .collect();
    // Rows first: per row y, the horizontal frequencies.
    let mut horizontal = vec![0.0f32; THUMB * FREQS];
    for y in 0..THUMB {
        for u in 0..FREQS {
            horizontal[y * FREQS + u] = (0..THUMB)
                .map(|x| block[y * THUMB + x] * basis[u * THUMB + x])
                .sum();
        }
    }
    let mut out = Vec::with_capacity(DIM);
    for v in 0..FREQS {
        for u in 0..FREQS {
            if u == 0 && v == 0 {
                continue;
            }
            let c: f32 = (0..THUMB)
                .map(|y| horizontal[y * FREQS + u] * basis[v * THUMB + y])
                .sum();
            out.push(c / THUMB as f32);
        }
    }
    out
}

/// Position of coefficient `(u, v)` in a signature.
fn slot(u: usize, v: usize) -> usize {
    v * FREQS + u - 1
}

/// Euclidean distance between two signatures, minimised over the eight poses of the second
/// (flips and quarter turns), with the pose that gave it. Signatures are unit vectors, so the
/// distance lies in [0, 2]; a flat image's (all zeros) or a mismatched one is at distance 2.
pub fn pose_distance(a: &[f32], b: &[f32]) -> (f32, Pose) {
    let na: f32 = a.iter().map(|x| x * x).sum();
    let nb: f32 = b.iter().map(|x| x * x).sum();
    // A flat image has no layout to compare: it matches nothing but byte-identical copies.
    if a.len() != DIM || b.len() != DIM || na < 0.25 || nb < 0.25 {
        return (2.0, Pose::default());
    }
    // Dot products split by the parity of (u, v): straight and with b transposed.
    let mut straight = [[0.0f32; 2]; 2];
    let mut transposed = [[0.0f32; 2]; 2];
    for v in 0..FREQS {
        for u in 0..FREQS {
            if u == 0 && v == 0 {
                continue;
            }
            let x = a[slot(u, v)];
            straight[u % 2][v % 2] += x * b[slot(u, v)];
            transposed[u % 2][v % 2] += x * b[slot(v, u)];
        }
    }
    let mut best = (f32::MIN, Pose::default());
    for transpose in [false, true] {
        let p = if transpose { &transposed } else { &straight };
        for flip_h in [false, true] {
            for flip_v in [false, true] {
                let sh = if flip_h { -1.0 } else { 1.0 };
                let sv = if flip_v { -1.0 } else { 1.0 };
                let dot = p[0][0] + sh * p[1][0] + sv * p[0][1] + sh * sv * p[1][1];
                if dot > best.0 {
                    best = (
                        dot,
                        Pose {
                            transpose,
                            flip_h,
                            flip_v,
                        },
                    );
                }
            }
        }
    }
    ((na + nb - 2.0 * best.0).max(0.0).sqrt(), best.1)
}

/// One of the eight symmetries of the square, as applied to the second image of a pair.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pose {
    pub transpose: bool,
    pub flip_h: bool,
    pub flip_v: bool,
}

/// A pose-free summary of a signature: per pair of frequencies `{(u, v), (v, u)}` the larger
/// and the smaller magnitude. The distance between two keys never exceeds
/// [`pose_distance`] between their signatures, so it can rule pairs out cheaply.
pub fn pose_free_key(a: &[f32]) -> Vec<f32> {
    let mut key = Vec::with_capacity(DIM);
    if a.len() != DIM {
        return vec![0.0; DIM];
    }
    for v in 0..FREQS {
        for u in 0..=v {
            if u == 0 && v == 0 {
                continue;
            }
            if u == v {
                key.push(a[slot(u, v)].abs());
            } else {
                let (p, q) = (a[slot(u, v)].abs(), a[slot(v, u)].abs());
                key.push(p.max(q));
                key.push(p.min(q));
            }
        }
    }
    key
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::features::luma_plane;
    use image::{Rgb, RgbImage};

    fn scene(w: u32, h: u32, seed: u32) -> RgbImage {
        RgbImage::from_fn(w, h, |x, y| {
            let (fx, fy) = (x as f32 / w as f32, y as f32 / h as f32);
            let s = seed as f32;
            let r = 120.0 + 90.0 * (fx * (3.0 + s) + fy * 1.7).sin();
            let g = 110.0 + 80.0 * (fy * (2.3 + 0.5 * s) - fx).cos();
            let b = 60.0 + 150.0 * ((fx - 0.6).powi(2) + (fy - 0.3 * s.sin()).powi(2)).sqrt();
            Rgb([r as u8, g as u8, b.min(255.0) as u8])
        })
    }

    fn sig(img: &RgbImage) -> Vec<f32> {
        signature(&luma_plane(img))
    }

    fn map(img: &RgbImage, f: impl Fn(f32) -> f32) -> RgbImage {
        let mut out = img.clone();
        out.iter_mut()
            .for_each(|c| *c = f(f32::from(*c)).round().clamp(0.0, 255.0) as u8);
        out
    }

    #[test]
    fn every_pose_of_the_square_is_at_distance_zero() {
        let img = scene(120, 90, 1);
        let a = sig(&img);
        let turned = [
            image::imageops::flip_horizontal(&img),
            image::imageops::flip_vertical(&img),
            image::imageops::rotate90(&img),
            image::imageops::rotate180(&img),
            image::imageops::rotate270(&img),
            image::imageops::flip_horizontal(&image::imageops::rotate90(&img)),
        ];
        for t in &turned {
            let d = duplicate_distance(&a, &sig(t));
            assert!(d < 1e-3, "distance {d}");
            let key = |s: &[f32]| pose_free_key(&s[..DIM]);
            assert!(crate::vector::squared_l2(&key(&a), &key(&sig(t))) < 1e-6);
        }
    }

    #[test]
    fn a_crop_matches_a_window_of_its_original() {
        let img = scene(200, 150, 2);
        let a = sig(&img);
        let crop = image::imageops::crop_imm(&img, 0, 0, 174, 130).to_image();
        let centre = image::imageops::crop_imm(&img, 14, 10, 172, 129).to_image();
        for c in [&crop, &centre] {
            let d = duplicate_distance(&a, &sig(c));
            assert!(d < 0.15, "crop at {d}");
        }
    }

    #[test]
    fn photometric_edits_and_borders_barely_move_it_while_another_scene_is_far() {
        let img = scene(160, 120, 1);
        let a = sig(&img);
        let grey = RgbImage::from_fn(160, 120, |x, y| {
            let p = img.get_pixel(x, y);
            let l =
                (0.299 * f32::from(p[0]) + 0.587 * f32::from(p[1]) + 0.114 * f32::from(p[2])) as u8;
            Rgb([l, l, l])
        });
        let mut padded = RgbImage::from_pixel(200, 150, Rgb([255, 255, 255]));
        image::imageops::overlay(&mut padded, &img, 20, 15);
        let edits = [
            map(&img, |c| c * 0.6 + 40.0),
            map(&img, |c| 255.0 * (c / 255.0).powf(0.6)),
            grey,
            padded,
        ];
        for e in &edits {
            let d = duplicate_distance(&a, &sig(e));
            assert!(d < 0.1, "edited copy at {d}");
        }
        let far = duplicate_distance(&a, &sig(&scene(160, 120, 4)));
        assert!(far > 0.5, "another scene at {far}");
    }

    #[test]
    fn the_pose_free_key_bounds_the_distance_from_below() {
        let a = sig(&scene(100, 80, 2))[..DIM].to_vec();
        let b = sig(&scene(90, 120, 3))[..DIM].to_vec();
        let (d, _) = pose_distance(&a, &b);
        let k = crate::vector::squared_l2(&pose_free_key(&a), &pose_free_key(&b)).sqrt();
        assert!(k <= d + 1e-5, "key {k} > distance {d}");
    }

    #[test]
    fn a_flat_image_has_a_zero_signature_at_the_far_end() {
        let flat = RgbImage::from_pixel(50, 50, Rgb([90, 90, 90]));
        let a = sig(&flat);
        assert!(a.iter().all(|&x| x == 0.0));
        assert_eq!(duplicate_distance(&a, &a), 2.0);
        assert_eq!(a.len(), LEN);
    }
}
