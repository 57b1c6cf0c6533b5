//! The duplicate signature: low-frequency cosine coefficients of a rank-normalised grey
//! thumbnail of the image without its uniform borders, compared up to the eight flips and
//! quarter turns of the square.
//!
//! Each step removes one family of edits a copy may carry. Luma alone ignores colour, so a
//! greyscale or desaturated copy reads like its original. Replacing each thumbnail pixel by
//! its rank among the others removes any change that keeps the order of brightness levels
//! (brightness, contrast, gamma). Trimming near-uniform rows and columns at the edges removes
//! added borders, and describing the centre and four corners as well as the whole picture
//! lets a cropped copy meet its original. The lowest 8 x 8 cosine frequencies of a 32 x 32
//! thumbnail keep the layout of the picture and drop what resizing, recompression,
//! sharpening, mild blur, noise and small overlays change: they find candidates. The band of
//! frequencies 8 to 11 above them holds finer detail that an edited copy keeps and another
//! photo of the same scene (a step to the side, a moment later) does not: it confirms them.
//! A horizontal flip negates the coefficients of odd horizontal frequency, a vertical flip
//! those of odd vertical frequency and a transpose swaps the two frequencies, so comparing
//! with each of the eight poses of the other image costs one pass (`compare_windows`).

use ndarray::Array2;

use super::{Extractor, FeatureInput};

/// Side of the rank-normalised thumbnail.
const THUMB: usize = 32;
/// Frequencies along each axis of the layout block (the DC term is dropped: ranks fix it).
const LAYOUT: usize = 8;
/// Least side, in pixels, of an image whose signature tells it from others: a smaller one has
/// fewer pixels a side than the layout has frequencies, so its layout is mostly resampling.
pub(crate) const LEAST_SIDE: u32 = LAYOUT as u32;
/// Frequencies along each axis of the whole block: the detail band is what lies outside the
/// layout block.
const FREQS: usize = 12;
/// Coefficients of one window: the whole block without DC, in the order `v * FREQS + u - 1`.
pub(crate) const DIM: usize = FREQS * FREQS - 1;
/// Windows described: the whole picture, then its centre and four corners at `WINDOW` of each
/// side, so that a copy cropped by up to about 15% matches one of its original's windows.
pub(crate) const WINDOWS: usize = 6;
/// Side of the centre and corner windows, as a fraction of the picture's.
const WINDOW: f32 = 0.86;
/// Length of a signature.
pub(crate) const LEN: usize = WINDOWS * DIM;
/// Bandwidth (luma units) of the smoothed histogram that turns values into ranks.
const RANK_BANDWIDTH: f32 = 0.03;

/// A row or column at the edge is border when its values spread less than this (luma units)...
const BORDER_SPREAD: f32 = 0.03;
/// ...and its mean lies this close to the outermost line's mean.
const BORDER_MATCH: f32 = 0.06;
/// At most this fraction of each side is trimmed as border.
const BORDER_MAX: f32 = 0.3;

/// When two images count as copies of one photo: their layouts within `layout`, their
/// detail, compared in the same windows and pose, within `detail`, and, when `aligned` is
/// set, the edges of their pictures aligned on each other agreeing at least that much
/// ([`crate::duplicates`] checks this on the index's thumbnails).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct CopyTest {
    /// Largest layout distance of copies, in [0, 2].
    #[serde(serialize_with = "as_decimal")]
    pub layout: f32,
    /// Largest detail distance of copies, in [0, 2].
    #[serde(serialize_with = "as_decimal")]
    pub detail: f32,
    /// Least agreement of the aligned pictures' edges, in [-1, 1]; `None`: signatures only.
    #[serde(serialize_with = "as_optional_decimal")]
    pub aligned: Option<f32>,
}

/// A limit as the decimal it was written as (0.4, not 0.4000000059604645).
fn as_decimal<S: serde::Serializer>(x: &f32, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64((f64::from(*x) * 1e6).round() / 1e6)
}

fn as_optional_decimal<S: serde::Serializer>(x: &Option<f32>, s: S) -> Result<S::Ok, S::Error> {
    match x {
        Some(v) => as_decimal(v, s),
        None => s.serialize_none(),
    }
}

impl CopyTest {
    /// The signatures-only test: the copies `query` ranks first, and the pairs `duplicates`
    /// joins when it has no thumbnails to align; chosen on wang (BENCHMARKS.md, "Duplicates").
    pub const DEFAULT: CopyTest = CopyTest {
        layout: 0.4,
        detail: 0.85,
        aligned: None,
    };

    /// Pairs this close need no alignment: no pair of different photos came this close on
    /// the benchmarks (BENCHMARKS.md, "Duplicates").
    pub const SURE: CopyTest = CopyTest {
        layout: 0.05,
        detail: 0.15,
        aligned: None,
    };

    /// True when a comparison passes the signature part of the test.
    pub fn accepts(&self, m: &Match) -> bool {
        m.layout <= self.layout && m.detail <= self.detail
    }

    /// The test without alignment, as strict as the signatures-only default at least.
    pub fn signatures_only(&self) -> CopyTest {
        CopyTest {
            layout: self.layout.min(CopyTest::DEFAULT.layout),
            detail: self.detail.min(CopyTest::DEFAULT.detail),
            aligned: None,
        }
    }
}

impl std::fmt::Display for CopyTest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "layout distance <= {:.2}, detail <= {:.2}",
            self.layout, self.detail
        )?;
        match self.aligned {
            Some(least) => write!(f, ", aligned edges agreeing >= {least:.2}"),
            None => Ok(()),
        }
    }
}

/// How two signatures compare: the least layout distance over the window pairs and poses
/// tried, and the detail distance in that window pair and pose. Both in [0, 2].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Match {
    /// Least layout distance over the window pairs and poses tried, in [0, 2].
    pub layout: f32,
    /// Detail distance in that window pair and pose, in [0, 2].
    pub detail: f32,
    /// The first image's window in that pair (0 the whole picture, then [`window_rect`]'s).
    pub(crate) window_a: u8,
    /// The second image's window in that pair.
    pub(crate) window_b: u8,
    /// The pose of the second image's window (see [`block_poses`]).
    pub(crate) pose: u8,
}

impl Match {
    /// The comparison of an image without a usable signature (flat, or none stored).
    pub(crate) const NONE: Match = Match {
        layout: 2.0,
        detail: 2.0,
        window_a: 0,
        window_b: 0,
        pose: 0,
    };
}

/// Window `w` of a trimmed picture as `(top, left, height, width)`, fractions of its sides.
pub(crate) fn window_rect(w: u8) -> (f32, f32, f32, f32) {
    let rest = 1.0 - WINDOW;
    let (top, left) = match w {
        0 => return (0.0, 0.0, 1.0, 1.0),
        1 => (rest / 2.0, rest / 2.0),
        2 => (0.0, 0.0),
        3 => (0.0, rest),
        4 => (rest, 0.0),
        _ => (rest, rest),
    };
    (top, left, WINDOW, WINDOW)
}

/// The duplicate signature extractor (family `dup`).
#[derive(Debug, Clone, Default)]
pub(crate) struct DuplicateSignature;

impl Extractor for DuplicateSignature {
    fn family(&self) -> &'static str {
        "dup"
    }

    fn version(&self) -> u32 {
        2
    }

    fn params(&self) -> String {
        format!(
            "softrank{RANK_BANDWIDTH}-dct t{THUMB} f{LAYOUT}+{FREQS} w{WINDOWS}x{WINDOW} border{BORDER_SPREAD}/{BORDER_MATCH}/{BORDER_MAX}"
        )
    }

    fn dim(&self) -> usize {
        LEN
    }

    fn reads_fine_luma(&self) -> bool {
        true
    }

    fn extract(&self, input: &FeatureInput) -> Vec<f32> {
        signature(input.fine_luma())
    }
}

/// True for a coefficient of the layout block.
const fn in_layout(u: usize, v: usize) -> bool {
    u < LAYOUT && v < LAYOUT
}

/// Position of coefficient `(u, v)` in a window's block.
const fn slot(u: usize, v: usize) -> usize {
    v * FREQS + u - 1
}

/// The signature of a luma plane (values in [0, 1]): per window, its coefficients with the
/// layout block and the detail band each scaled to unit length; all zeros for an empty or
/// flat image.
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
    let sums = AreaSums::of(luma);
    let mut out = Vec::with_capacity(LEN);
    for (r, c) in windows {
        let thumb = sums.resample(r, c, THUMB);
        // A window spreading less than the rank bandwidth holds no layout, only rounding noise
        // that unit scaling would blow up into one: a blank white page read as a layout that
        // matched, at distance 0, every white page with its content at one edge.
        let (low, high) = thumb
            .iter()
            .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &v| {
                (lo.min(v), hi.max(v))
            });
        if high - low < RANK_BANDWIDTH {
            out.extend([0.0; DIM]);
            continue;
        }
        let ranks = soft_ranks(&thumb);
        let mut block = low_dct(&ranks);
        for part in [true, false] {
            let norm = (1..FREQS * FREQS)
                .map(|i| (i % FREQS, i / FREQS))
                .filter(|&(u, v)| in_layout(u, v) == part)
                .map(|(u, v)| block[slot(u, v)].powi(2))
                .sum::<f32>()
                .sqrt();
            if norm > 1e-12 {
                for i in 1..FREQS * FREQS {
                    let (u, v) = (i % FREQS, i / FREQS);
                    if in_layout(u, v) == part {
                        block[slot(u, v)] /= norm;
                    }
                }
            }
        }
        out.extend(block);
    }
    out
}

/// Length of one window's layout block: the 8 x 8 lowest frequencies without DC.
pub(crate) const BLOCK: usize = LAYOUT * LAYOUT - 1;
/// Poses of the square: the identity, the flips and the quarter turns.
pub(crate) const POSES: usize = 8;

/// The layout coefficients `(u, v)` in block order (row-major, DC left out).
fn block_slots() -> impl Iterator<Item = (usize, usize)> {
    (0..LAYOUT)
        .flat_map(|v| (0..LAYOUT).map(move |u| (u, v)))
        .filter(|&(u, v)| (u, v) != (0, 0))
}

/// Window `window`'s layout block (the coefficients [`compare`] measures layout on), or
/// `None` when the signature is not one.
pub(crate) fn layout_block(signature: &[f32], window: usize) -> Option<[f32; BLOCK]> {
    if signature.len() != LEN || window >= WINDOWS {
        return None;
    }
    let coefficients = &signature[window * DIM..(window + 1) * DIM];
    Some(BLOCK_SLOTS.map(|at| coefficients[at]))
}

/// [`slot`] of each coefficient of a layout block, in [`block_slots`] order: the pair search
/// gathers blocks in its inner loop.
const BLOCK_SLOTS: [usize; BLOCK] = {
    let mut out = [0; BLOCK];
    let (mut k, mut v) = (0, 0);
    while v < LAYOUT {
        let mut u = 0;
        while u < LAYOUT {
            if u != 0 || v != 0 {
                out[k] = slot(u, v);
                k += 1;
            }
            u += 1;
        }
        v += 1;
    }
    out
};

/// The block in each of the eight poses [`compare_windows`] tries: pose `p` transposes when
/// `p & 4`, negates odd horizontal frequencies when `p & 1` and odd vertical ones when `p & 2`.
/// The least distance from a block to the poses of another is their layout distance.
pub(crate) fn block_poses(block: &[f32; BLOCK]) -> [[f32; BLOCK]; POSES] {
    let position = |u: usize, v: usize| v * LAYOUT + u - 1;
    let mut out = [[0.0; BLOCK]; POSES];
    for (p, posed) in out.iter_mut().enumerate() {
        for (k, (u, v)) in block_slots().enumerate() {
            let source = if p & 4 != 0 {
                position(v, u)
            } else {
                position(u, v)
            };
            let flip_h = p & 1 != 0 && u % 2 == 1;
            let flip_v = p & 2 != 0 && v % 2 == 1;
            let sign = if flip_h != flip_v { -1.0 } else { 1.0 };
            posed[k] = sign * block[source];
        }
    }
    out
}

/// Compares two images' signatures: the whole pictures, and one whole picture with each
/// window of the other (a crop), each in the eight poses of the square; the window pair and
/// pose with the least layout distance decide.
pub fn compare(a: &[f32], b: &[f32]) -> Match {
    if a.len() != LEN || b.len() != LEN {
        return Match::NONE;
    }
    fn window(s: &[f32], w: usize) -> &[f32] {
        &s[w * DIM..(w + 1) * DIM]
    }
    let (a_whole, b_whole) = (window(a, 0), window(b, 0));
    let mut best = compare_windows(a_whole, b_whole);
    for w in 1..WINDOWS {
        for (wa, wb) in [(0, w), (w, 0)] {
            let m = compare_windows(window(a, wa), window(b, wb));
            if m.layout < best.layout {
                best = Match {
                    window_a: wa as u8,
                    window_b: wb as u8,
                    ..m
                };
            }
        }
    }
    best
}

/// What [`compare_windows`] sums for each coefficient `(u, v)` but DC, in row order: its slot,
/// the slot of `(v, u)`, its part (0: layout, 1: detail) and the parities of `u` and `v`.
const COMPARE_TERMS: [(usize, usize, usize, usize, usize); DIM] = {
    let mut out = [(0, 0, 0, 0, 0); DIM];
    let (mut k, mut v) = (0, 0);
    while v < FREQS {
        let mut u = 0;
        while u < FREQS {
            if u != 0 || v != 0 {
                let part = if in_layout(u, v) { 0 } else { 1 };
                out[k] = (slot(u, v), slot(v, u), part, u % 2, v % 2);
                k += 1;
            }
            u += 1;
        }
        v += 1;
    }
    out
};

/// Compares two windows in the eight poses of the second (flips and quarter turns) and keeps
/// the pose with the least layout distance.
pub(crate) fn compare_windows(a: &[f32], b: &[f32]) -> Match {
    if a.len() != DIM || b.len() != DIM {
        return Match::NONE;
    }
    // Dot products split by block part and by the parity of (u, v): straight and with b
    // transposed. Sums in f64, and the norms binned as the dot products are, so that equal
    // windows are at distance 0 exactly (f32 sums left about 0.001).
    let mut straight = [[[0.0f64; 2]; 2]; 2];
    let mut transposed = [[[0.0f64; 2]; 2]; 2];
    let mut norms = [[[[0.0f64; 2]; 2]; 2]; 2];
    for &(at, mirrored, part, odd_u, odd_v) in &COMPARE_TERMS {
        let (x, y) = (f64::from(a[at]), f64::from(b[at]));
        straight[part][odd_u][odd_v] += x * y;
        transposed[part][odd_u][odd_v] += x * f64::from(b[mirrored]);
        norms[part][0][odd_u][odd_v] += x * x;
        norms[part][1][odd_u][odd_v] += y * y;
    }
    let norm = |part: usize, side: usize| {
        let q = &norms[part][side];
        q[0][0] + q[1][0] + q[0][1] + q[1][1]
    };
    // A flat image has no layout to compare: it matches nothing but byte-identical copies.
    if norm(0, 0) < 0.25 || norm(0, 1) < 0.25 {
        return Match::NONE;
    }
    let distance =
        |dot: f64, part: usize| (norm(part, 0) + norm(part, 1) - 2.0 * dot).max(0.0).sqrt() as f32;
    let mut best = Match::NONE;
    for (transpose, p) in [(0u8, &straight), (4, &transposed)] {
        for (flip_h, sh) in [(0u8, 1.0f64), (1, -1.0)] {
            for (flip_v, sv) in [(0u8, 1.0f64), (2, -1.0)] {
                let dot = |part: usize| {
                    let q = &p[part];
                    q[0][0] + sh * q[1][0] + sv * q[0][1] + sh * sv * q[1][1]
                };
                let layout = distance(dot(0), 0);
                if layout < best.layout {
                    best = Match {
                        layout,
                        detail: distance(dot(1), 1),
                        window_a: 0,
                        window_b: 0,
                        pose: transpose | flip_h | flip_v,
                    };
                }
            }
        }
    }
    best
}

/// The rows and columns left after trimming near-uniform borders from each side.
pub(crate) fn trimmed(luma: &Array2<f32>) -> (std::ops::Range<usize>, std::ops::Range<usize>) {
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

/// Area-average resampling of the given window of `luma` to `side x side`, row-major.
pub(crate) fn box_resample(
    luma: &Array2<f32>,
    rows: std::ops::Range<usize>,
    cols: std::ops::Range<usize>,
    side: usize,
) -> Vec<f32> {
    AreaSums::of(luma).resample(rows, cols, side)
}

/// The summed-area table of a plane: `sums[y * (w + 1) + x]` is the sum of the values above
/// row `y` and left of column `x`. The sum over any rectangle, with fractional edges too, is
/// four lookups: within a pixel the table grows bilinearly, since the pixel is constant.
pub(crate) struct AreaSums {
    sums: Vec<f64>,
    rows: usize,
    cols: usize,
}

impl AreaSums {
    pub(crate) fn of(plane: &Array2<f32>) -> AreaSums {
        let (rows, cols) = plane.dim();
        let stride = cols + 1;
        let mut sums = vec![0.0f64; (rows + 1) * stride];
        for (y, line) in plane.outer_iter().enumerate() {
            let (above, below) = sums.split_at_mut((y + 1) * stride);
            let above = &above[y * stride..];
            let mut along = 0.0f64;
            for (x, &v) in line.iter().enumerate() {
                along += f64::from(v);
                below[x + 1] = above[x + 1] + along;
            }
        }
        AreaSums { sums, rows, cols }
    }

    /// The table at the point `(y, x)`, `0 <= y <= rows`, `0 <= x <= cols`, interpolated
    /// bilinearly between whole pixels.
    fn at(&self, y: (usize, f64), x: (usize, f64)) -> f64 {
        let stride = self.cols + 1;
        let (y0, fy) = y;
        let (x0, fx) = x;
        let s = |yy: usize, xx: usize| self.sums[yy * stride + xx];
        let top = s(y0, x0) + fx * (s(y0, x0 + 1) - s(y0, x0));
        let bottom = s(y0 + 1, x0) + fx * (s(y0 + 1, x0 + 1) - s(y0 + 1, x0));
        top + fy * (bottom - top)
    }

    /// Area averages of the window over `side x side` equal cells, row-major: cell `(i, j)`
    /// covers rows `[i, i + 1) * rows.len() / side` and the like for columns, from the
    /// window's corner.
    pub(crate) fn resample(
        &self,
        rows: std::ops::Range<usize>,
        cols: std::ops::Range<usize>,
        side: usize,
    ) -> Vec<f32> {
        debug_assert!(!rows.is_empty() && !cols.is_empty());
        debug_assert!(rows.end <= self.rows && cols.end <= self.cols);
        // Each cell edge as a whole pixel and the fraction beyond it (the last edge of a
        // side is taken as the far end of its last pixel, inside the table).
        let edges = |range: &std::ops::Range<usize>, limit: usize| -> Vec<(usize, f64)> {
            let step = range.len() as f64 / side as f64;
            (0..=side)
                .map(|k| {
                    let at = range.start as f64 + k as f64 * step;
                    let whole = (at.floor() as usize).min(limit.saturating_sub(1));
                    (whole, at - whole as f64)
                })
                .collect()
        };
        let (ys, xs) = (edges(&rows, self.rows), edges(&cols, self.cols));
        let area = (rows.len() as f64 / side as f64) * (cols.len() as f64 / side as f64);
        let mut corners = Vec::with_capacity(ys.len() * xs.len());
        for &y in &ys {
            for &x in &xs {
                corners.push(self.at(y, x));
            }
        }
        let stride = side + 1;
        let mut out = Vec::with_capacity(side * side);
        for i in 0..side {
            for j in 0..side {
                let c = |a: usize, b: usize| corners[a * stride + b];
                let sum = c(i + 1, j + 1) - c(i, j + 1) - c(i + 1, j) + c(i, j);
                out.push((sum / area) as f32);
            }
        }
        out
    }
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
    // The kernel, its reach and its total, once.
    static KERNEL: std::sync::OnceLock<(Vec<f32>, usize, f32)> = std::sync::OnceLock::new();
    let (kernel, reach, total) = KERNEL.get_or_init(|| {
        let sigma = RANK_BANDWIDTH * (BINS - 1) as f32;
        let reach = (3.0 * sigma).ceil() as isize;
        let kernel: Vec<f32> = (-reach..=reach)
            .map(|d| (-0.5 * (d as f32 / sigma).powi(2)).exp())
            .collect();
        let total = kernel.iter().sum();
        (kernel, reach as usize, total)
    });
    // Mass that the kernel would push past either end stays at that end. Each bin's spread
    // is added in kernel order: first what falls below the first bin, then the bins it
    // reaches, then what falls past the last.
    let mut smooth = vec![0.0f32; BINS];
    for (i, &count) in histogram.iter().enumerate() {
        if count == 0.0 {
            continue;
        }
        let below = reach.saturating_sub(i);
        let first = i.saturating_sub(*reach);
        let inside = (BINS - first).min(kernel.len() - below);
        for &weight in &kernel[..below] {
            smooth[0] += count * weight / total;
        }
        for (s, &weight) in smooth[first..first + inside]
            .iter_mut()
            .zip(&kernel[below..below + inside])
        {
            *s += count * weight / total;
        }
        for &weight in &kernel[below + inside..] {
            smooth[BINS - 1] += count * weight / total;
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
    let cosine = |k: usize, x: usize| {
        (std::f32::consts::PI * k as f32 * (x as f32 + 0.5) / THUMB as f32).cos()
    };
    // The basis frequency-major, and position-major for the pass that takes all the
    // frequencies of one position at once.
    static BASIS: std::sync::OnceLock<(Vec<f32>, Vec<f32>)> = std::sync::OnceLock::new();
    let (basis, by_position) = BASIS.get_or_init(|| {
        let by_frequency = (0..FREQS)
            .flat_map(|k| (0..THUMB).map(move |x| cosine(k, x)))
            .collect();
        let by_position = (0..THUMB)
            .flat_map(|x| (0..FREQS).map(move |k| cosine(k, x)))
            .collect();
        (by_frequency, by_position)
    });
    // Rows first: per row y, the horizontal frequencies; each sum runs over x in order, with
    // the frequencies side by side so that they are computed together.
    let mut horizontal = vec![0.0f32; THUMB * FREQS];
    for (line, sums) in block
        .chunks_exact(THUMB)
        .zip(horizontal.chunks_exact_mut(FREQS))
    {
        for (&value, cosines) in line.iter().zip(by_position.chunks_exact(FREQS)) {
            for (sum, &c) in sums.iter_mut().zip(cosines) {
                *sum += value * c;
            }
        }
    }
    // Then down each column of horizontal frequencies, over y in order.
    let mut coefficients = [[0.0f32; FREQS]; FREQS];
    for (y, sums) in horizontal.chunks_exact(FREQS).enumerate() {
        for (v, row) in coefficients.iter_mut().enumerate() {
            let weight = basis[v * THUMB + y];
            for (c, &h) in row.iter_mut().zip(sums) {
                *c += h * weight;
            }
        }
    }
    let mut out = Vec::with_capacity(DIM);
    for (v, row) in coefficients.iter().enumerate() {
        for (u, &c) in row.iter().enumerate() {
            if (u, v) != (0, 0) {
                out.push(c / THUMB as f32);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::features::luma_plane;
    use image::{Rgb, RgbImage};

    #[test]
    fn the_block_slot_table_follows_the_block_order() {
        let expected: Vec<usize> = block_slots().map(|(u, v)| slot(u, v)).collect();
        assert_eq!(BLOCK_SLOTS.to_vec(), expected);
    }

    #[test]
    fn the_compare_table_lists_every_coefficient_in_row_order() {
        let expected: Vec<(usize, usize, usize, usize, usize)> = (0..FREQS)
            .flat_map(|v| (0..FREQS).map(move |u| (u, v)))
            .filter(|&(u, v)| (u, v) != (0, 0))
            .map(|(u, v)| {
                let part = usize::from(!in_layout(u, v));
                (slot(u, v), slot(v, u), part, u % 2, v % 2)
            })
            .collect();
        assert_eq!(COMPARE_TERMS.to_vec(), expected);
    }

    fn scene(w: u32, h: u32, seed: u32) -> RgbImage {
        RgbImage::from_fn(w, h, |x, y| {
            let (fx, fy) = (x as f32 / w as f32, y as f32 / h as f32);
            let s = seed as f32;
            let r = 120.0 + 90.0 * (fx * (3.0 + s) + fy * 1.7).sin() + 30.0 * (fx * 40.0).sin();
            let g = 110.0 + 80.0 * (fy * (2.3 + 0.5 * s) - fx).cos() + 20.0 * (fy * 33.0 + s).cos();
            let b = 60.0 + 150.0 * ((fx - 0.6).powi(2) + (fy - 0.3 * s.sin()).powi(2)).sqrt();
            Rgb([
                r.clamp(0.0, 255.0) as u8,
                g.clamp(0.0, 255.0) as u8,
                b.min(255.0) as u8,
            ])
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
    fn every_pose_of_the_square_matches_exactly() {
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
            let m = compare(&a, &sig(t));
            assert!(m.layout < 1e-3 && m.detail < 1e-3, "{m:?}");
        }
    }

    #[test]
    fn equal_signatures_are_at_distance_zero_exactly() {
        // Pixel-identical files (a PNG and a BMP of one photo) store equal signatures; the
        // strictest similarity, 0, must still group them.
        for seed in 0..4 {
            let a = sig(&scene(160 + seed * 7, 120, seed));
            let m = compare(&a, &a.clone());
            assert_eq!((m.layout, m.detail), (0.0, 0.0), "seed {seed}: {m:?}");
        }
    }

    #[test]
    fn a_crop_matches_a_window_of_its_original() {
        let img = scene(200, 150, 2);
        let a = sig(&img);
        let crop = image::imageops::crop_imm(&img, 0, 0, 174, 130).to_image();
        let centre = image::imageops::crop_imm(&img, 14, 10, 172, 129).to_image();
        for c in [&crop, &centre] {
            let m = compare(&a, &sig(c));
            assert!(CopyTest::DEFAULT.accepts(&m), "crop: {m:?}");
        }
    }

    #[test]
    fn photometric_edits_and_borders_pass_while_another_scene_does_not() {
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
            let m = compare(&a, &sig(e));
            assert!(
                m.layout < 0.15 && CopyTest::DEFAULT.accepts(&m),
                "edited copy: {m:?}"
            );
        }
        let far = compare(&a, &sig(&scene(160, 120, 4)));
        assert!(!CopyTest::DEFAULT.accepts(&far), "another scene: {far:?}");
    }

    #[test]
    fn the_nearest_pose_of_a_block_is_the_layout_distance() {
        let img = scene(200, 150, 3);
        let a = sig(&img);
        let distance = |x: &[f32; BLOCK], y: &[f32; BLOCK]| {
            x.iter()
                .zip(y)
                .map(|(p, q)| (p - q) * (p - q))
                .sum::<f32>()
                .sqrt()
        };
        for other in [
            sig(&image::imageops::rotate90(&img)),
            sig(&image::imageops::rotate270(&img)),
            sig(&image::imageops::flip_vertical(&img)),
            sig(&image::imageops::crop_imm(&img, 0, 0, 174, 130).to_image()),
            sig(&scene(200, 150, 5)),
        ] {
            let whole = |s: &[f32]| s[..DIM].to_vec();
            let m = compare_windows(&whole(&a), &whole(&other));
            let a0 = layout_block(&a, 0).unwrap();
            let nearest = block_poses(&layout_block(&other, 0).unwrap())
                .iter()
                .map(|posed| distance(&a0, posed))
                .fold(f32::INFINITY, f32::min);
            assert!((nearest - m.layout).abs() < 1e-4, "{nearest} {m:?}");
        }
        assert!(layout_block(&a, WINDOWS).is_none() && layout_block(&a[1..], 0).is_none());
    }

    /// White and black are where soft ranks clamp: a blank page of either had a signature of
    /// scaled rounding noise, the same for every blank page, and so matched at distance 0 any
    /// page whose content lies along one edge (its far window blank).
    #[test]
    fn a_blank_white_or_black_page_has_no_layout_and_matches_no_page_with_content() {
        for level in [255u8, 0] {
            let blank = RgbImage::from_pixel(1280, 720, Rgb([level; 3]));
            let a = sig(&blank);
            assert!(a.iter().all(|&x| x == 0.0), "{level}: {:?}", &a[..8]);
            let mut bar = blank.clone();
            for y in 640..680 {
                for x in 300..980 {
                    bar.put_pixel(x, y, Rgb([255 - level; 3]));
                }
            }
            let m = compare(&a, &sig(&bar));
            assert_eq!(m, Match::NONE, "{level}");
        }
    }

    #[test]
    fn a_flat_image_matches_nothing() {
        let flat = RgbImage::from_pixel(50, 50, Rgb([90, 90, 90]));
        let a = sig(&flat);
        assert!(a.iter().all(|&x| x == 0.0));
        assert_eq!(a.len(), LEN);
        assert_eq!(compare(&a, &a), Match::NONE);
    }

    /// The separable resampling gives each output cell the area average of the input cells
    /// it covers, computed here directly from the definition, for windows larger and smaller
    /// than the output and for a plane that is not in standard order.
    #[test]
    fn box_resampling_averages_the_area_each_cell_covers() {
        let plane = Array2::from_shape_fn((45, 70), |(y, x)| ((y * 7 + x * 13) % 29) as f32 / 29.0);
        let direct = |luma: &Array2<f32>,
                      rows: std::ops::Range<usize>,
                      cols: std::ops::Range<usize>,
                      side: usize| {
            let cover = |i: usize, len: usize, x: usize| {
                let scale = len as f32 / side as f32;
                let (a, b) = (i as f32 * scale, (i + 1) as f32 * scale);
                (b.min(x as f32 + 1.0) - a.max(x as f32)).max(0.0) / scale
            };
            let mut out = vec![0.0f32; side * side];
            for i in 0..side {
                for j in 0..side {
                    for y in 0..rows.len() {
                        for x in 0..cols.len() {
                            out[i * side + j] += cover(i, rows.len(), y)
                                * cover(j, cols.len(), x)
                                * luma[[rows.start + y, cols.start + x]];
                        }
                    }
                }
            }
            out
        };
        // The same values in column-major order, and a plane whose rows run backwards: neither
        // has rows that are contiguous slices.
        let column_major = plane.t().to_owned().reversed_axes();
        let mut mirrored = plane.clone();
        mirrored.invert_axis(ndarray::Axis(1));
        for (rows, cols, side) in [
            (0..45, 0..70, 32),
            (3..40, 10..60, 32),
            (5..20, 2..23, 32),
            (0..45, 0..70, 7),
        ] {
            for luma in [&plane, &column_major, &mirrored] {
                let want = direct(luma, rows.clone(), cols.clone(), side);
                let got = box_resample(luma, rows.clone(), cols.clone(), side);
                for (g, w) in got.iter().zip(&want) {
                    assert!((g - w).abs() < 1e-5, "{g} {w} at {rows:?} {cols:?} {side}");
                }
            }
        }
    }

    /// The smoothing of the rank histogram spreads each bin over its neighbours, clamped at
    /// the ends, exactly as the kernel written out term by term does.
    #[test]
    fn soft_ranks_spread_each_bin_as_the_clamped_kernel_does() {
        let reference = |values: &[f32]| -> Vec<f32> {
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
            let total: f32 = kernel.iter().sum();
            let mut smooth = vec![0.0f32; BINS];
            for (i, &count) in histogram.iter().enumerate() {
                for (k, &weight) in kernel.iter().enumerate() {
                    let j = (i as isize + k as isize - reach).clamp(0, BINS as isize - 1);
                    smooth[j as usize] += count * weight / total;
                }
            }
            let n = values.len().max(1) as f32;
            let mut below = vec![0.0f32; BINS];
            let mut acc = 0.0f32;
            for (b, &m) in smooth.iter().enumerate() {
                below[b] = (acc + m / 2.0) / n;
                acc += m;
            }
            values.iter().map(|&x| below[bin_of(x)] - 0.5).collect()
        };
        // Values at both ends, in the middle, and out of range.
        let values: Vec<f32> = (0..1024)
            .map(|i| match i % 4 {
                0 => (i as f32 / 1024.0).powi(3),
                1 => 1.0 - (i as f32 / 1024.0).powi(4),
                2 => 0.5 + 0.01 * (i as f32).sin(),
                _ => i as f32 / 512.0 - 0.5,
            })
            .collect();
        let (got, want) = (soft_ranks(&values), reference(&values));
        assert!(
            got.iter()
                .zip(&want)
                .all(|(g, w)| g.to_bits() == w.to_bits())
        );
    }
}
