//! Confirming a candidate pair of copies: the second picture is aligned to the first by an
//! affine map, started from the window pair and pose the signatures matched in, and the
//! pair is scored by how well their fine edges agree once aligned.
//!
//! An edited copy lines up with its original everywhere after one global map (a crop, a
//! small rotation, a flip or turn, a resize), while another shot of the same scene, taken a
//! step to the side or a moment later, does not: its parallax and motion leave edges that no
//! single map puts back in place. Both pictures are first rank-normalised, as the signature
//! is, so that tone and colour edits do not count. The alignment is a Gauss-Newton fit of
//! the affine map with a gain and an offset between the two pictures, coarse then fine, in
//! the manner of the enhanced correlation coefficient method (Evangelidis and Psarakis,
//! "Parametric Image Alignment Using Enhanced Correlation Coefficient Maximization", IEEE
//! TPAMI 30(10), 2008).

use nalgebra::{Matrix6, Vector6};
use ndarray::Array2;

use crate::features::dup::{Match, box_resample, trimmed, window_rect};
use crate::imageops::gaussian_blur;

/// Side of the square view pictures are aligned in.
const SIDE: usize = 128;
/// Smoothing (pixels of the view), most iterations and sampling stride of the coarse and the
/// fine alignment passes; the fine smoothing is also the one edges are measured at.
const COARSE: Pass = Pass {
    sigma: 2.5,
    iterations: 10,
    stride: 4,
};
const FINE: Pass = Pass {
    sigma: 1.0,
    iterations: 15,
    stride: 3,
};

/// Least correlation of the coarse pictures after the coarse pass for the fine pass to run
/// (the edited copies of the planted benchmarks on wang and ukbench1000 reach 0.88 or more).
const COARSE_GATE: f64 = 0.85;

struct Pass {
    sigma: f32,
    iterations: usize,
    stride: usize,
}

/// A picture prepared for alignment: its trimmed luma resampled to a square, replaced by the
/// ranks of its values unless it is plain, and smoothed for each pass; with its chroma, and
/// whether it is plain.
pub struct View {
    /// A content view's luma values before smoothing (empty in other views).
    values: Vec<f32>,
    /// View pixels per pixel of the picture part, along the axis that enlarges most.
    scale: f32,
    /// The part of the picture viewed: top, left, bottom, right as fractions of its sides.
    frame: [f32; 4],
    coarse: Vec<f32>,
    fine: Vec<f32>,
    /// Blue-difference and red-difference chroma of the trimmed picture, `CHROMA_SIDE` a side.
    chroma: [Vec<f32>; 2],
    /// Few of its pixels lie on an edge (a mostly blank page, a smooth gradient), or it is a
    /// page (`PAGE_BACKGROUND`).
    plain: bool,
    /// A content view's mean chroma over its marks (the pixels off its background).
    ink: Option<[f32; 2]>,
}

/// Side of the chroma a plain picture's colours are compared in.
const CHROMA_SIDE: usize = 32;
/// A pixel of the view, smoothed as for the fine pass, lies on an edge when its luma changes
/// by this much (luma units per pixel of the view)...
const EDGE_STEP: f32 = 0.02;
/// ...and a picture is plain when less than this share of its pixels do.
const PLAIN_SHARE: f32 = 0.03;
/// Largest chroma difference between aligned plain pictures that are copies: tones and colours
/// are the content of a plain picture, not edits to it.
const PLAIN_CHROMA: f32 = 0.1;

impl View {
    /// The view of a picture; `None` for an empty one.
    pub fn of(picture: &image::RgbImage) -> Option<View> {
        let luma = crate::features::luma_plane(picture);
        let (rows, cols) = trimmed(&luma);
        let mut view = View::of_part(picture, &luma, rows, cols, false)?;
        // a page: its marks may fill the trimmed view, yet they are all it holds
        view.plain |= background_share(&luma) >= PAGE_BACKGROUND;
        Some(view)
    }

    /// The view of `rows x cols` of a picture whose luma is `luma`. The luma is replaced by its
    /// ranks unless the part is plain or `as_stored`: on a plain picture, ranks would spread
    /// the levels of one background (a recompressed page's noise) over the whole range.
    fn of_part(
        picture: &image::RgbImage,
        luma: &Array2<f32>,
        rows: std::ops::Range<usize>,
        cols: std::ops::Range<usize>,
        as_stored: bool,
    ) -> Option<View> {
        if rows.is_empty() || cols.is_empty() {
            return None;
        }
        let resampled = box_resample(luma, rows.clone(), cols.clone(), SIDE);
        let plain = edge_share(&smooth(&resampled, FINE.sigma)) < PLAIN_SHARE;
        let values = if plain || as_stored {
            resampled
        } else {
            ranks(&resampled)
        };
        let chroma = chroma_planes(picture)
            .map(|plane| box_resample(&plane, rows.clone(), cols.clone(), CHROMA_SIDE));
        let scale = SIDE as f32 / rows.len().min(cols.len()) as f32;
        let (h, w) = (luma.nrows() as f32, luma.ncols() as f32);
        let frame = [
            rows.start as f32 / h,
            cols.start as f32 / w,
            rows.end as f32 / h,
            cols.end as f32 / w,
        ];
        Some(View {
            frame,
            coarse: smooth(&values, COARSE.sigma),
            fine: smooth(&values, FINE.sigma),
            values: if as_stored { values } else { Vec::new() },
            scale,
            chroma,
            plain,
            ink: None,
        })
    }

    /// Whether few of the picture's pixels lie on an edge (a mostly blank page, a smooth
    /// gradient) or nearly all are its background (a page, whatever its marks): its marks,
    /// tones and colours are then most of what tells it from another.
    pub fn is_plain(&self) -> bool {
        self.plain
    }
}

/// Least share of a picture's pixels within `BACKGROUND_SPREAD` of its median luma for it to
/// be a page, and plain whatever its marks: the documents tried hold 96% or more, no photo of
/// wang (most 88.6%) or ukbench1000 (74%).
const PAGE_BACKGROUND: f32 = 0.93;
/// Luma distance from the median within which a pixel is a page's background.
const BACKGROUND_SPREAD: f32 = 0.04;

/// The median of a luma plane, its background when most of it is one; `None` when empty.
fn median(luma: &Array2<f32>) -> Option<f32> {
    let mut values: Vec<f32> = luma.iter().copied().collect();
    if values.is_empty() {
        return None;
    }
    let middle = values.len() / 2;
    Some(*values.select_nth_unstable_by(middle, f32::total_cmp).1)
}

/// The share of a luma plane's pixels within `BACKGROUND_SPREAD` of its median.
fn background_share(luma: &Array2<f32>) -> f32 {
    let Some(median) = median(luma) else {
        return 0.0;
    };
    let near = luma
        .iter()
        .filter(|&&v| (v - median).abs() <= BACKGROUND_SPREAD)
        .count();
    near as f32 / luma.len() as f32
}

/// A value differs from a plain picture's background (its median luma) by this much to be
/// part of its content.
const CONTENT_STEP: f32 = 0.1;

/// The view of a plain picture's content: the box around every pixel that differs from its
/// background, with a margin, so that marks too small to tell apart in the whole picture's
/// view (a page number, a small stamp) fill this one. `None` for a picture with no content or
/// an empty one.
pub fn content_view(picture: &image::RgbImage) -> Option<View> {
    let luma = crate::features::luma_plane(picture);
    let background = median(&luma)?;
    let (mut top, mut left, mut bottom, mut right) = (usize::MAX, usize::MAX, 0, 0);
    for ((y, x), v) in luma.indexed_iter() {
        if (v - background).abs() >= CONTENT_STEP {
            top = top.min(y);
            left = left.min(x);
            bottom = bottom.max(y + 1);
            right = right.max(x + 1);
        }
    }
    if top == usize::MAX {
        return None;
    }
    // a margin in proportion, so that a resized copy's box frames the same content
    let (h, w) = luma.dim();
    let margin = ((bottom - top).max(right - left) as f32 * CONTENT_MARGIN).ceil() as usize;
    let rows = top.saturating_sub(margin)..(bottom + margin).min(h);
    let cols = left.saturating_sub(margin)..(right + margin).min(w);
    let mut view = View::of_part(picture, &luma, rows, cols, true)?;
    let (mut sum, mut count) = ([0.0f64; 2], 0usize);
    for ((y, x), v) in luma.indexed_iter() {
        if (v - background).abs() >= CONTENT_STEP {
            let [r, g, b] = picture
                .get_pixel(x as u32, y as u32)
                .0
                .map(|c| f32::from(c) / 255.0);
            let [cb, cr] = chroma_of(r, g, b);
            sum[0] += f64::from(cb);
            sum[1] += f64::from(cr);
            count += 1;
        }
    }
    view.ink = Some(sum.map(|s| (s / count as f64) as f32));
    Some(view)
}

/// Margin around a plain picture's content in its content view, as a share of the content's
/// longer side.
const CONTENT_MARGIN: f32 = 0.15;

/// The blue-difference and red-difference chroma planes (BT.601, in [-0.5, 0.5]) of a picture.
fn chroma_planes(picture: &image::RgbImage) -> [Array2<f32>; 2] {
    let (w, h) = (picture.width() as usize, picture.height() as usize);
    let mut blue = Array2::<f32>::zeros((h, w));
    let mut red = Array2::<f32>::zeros((h, w));
    for (x, y, p) in picture.enumerate_pixels() {
        let [r, g, b] = p.0.map(|v| f32::from(v) / 255.0);
        let [cb, cr] = chroma_of(r, g, b);
        blue[(y as usize, x as usize)] = cb;
        red[(y as usize, x as usize)] = cr;
    }
    [blue, red]
}

/// The blue-difference and red-difference chroma (BT.601) of a colour in [0, 1].
fn chroma_of(r: f32, g: f32, b: f32) -> [f32; 2] {
    [
        -0.168_736 * r - 0.331_264 * g + 0.5 * b,
        0.5 * r - 0.418_688 * g - 0.081_312 * b,
    ]
}

/// The share of a `SIDE x SIDE` picture's pixels where its luma changes by `EDGE_STEP` or more
/// per pixel.
fn edge_share(picture: &[f32]) -> f32 {
    let (gx, gy) = gradients(picture);
    let edges = gx
        .iter()
        .zip(&gy)
        .filter(|(x, y)| x.hypot(**y) >= EDGE_STEP)
        .count();
    edges as f32 / (SIDE * SIDE) as f32
}

/// Bins of the histogram that turns values in [0, 1] into ranks.
const RANK_BINS: usize = 4096;

/// Each value (in [0, 1]) replaced by the share of values below its histogram bin plus half
/// of its own bin's share: its rank among the others in [0, 1], ties sharing the middle.
fn ranks(values: &[f32]) -> Vec<f32> {
    let bin = |x: f32| ((x.clamp(0.0, 1.0) * (RANK_BINS - 1) as f32).round()) as usize;
    let mut counts = vec![0u32; RANK_BINS];
    for &x in values {
        counts[bin(x)] += 1;
    }
    let n = values.len().max(1) as f32;
    let mut below = vec![0.0f32; RANK_BINS];
    let mut acc = 0u32;
    for (b, &c) in counts.iter().enumerate() {
        below[b] = (acc as f32 + c as f32 / 2.0) / n;
        acc += c;
    }
    values.iter().map(|&x| below[bin(x)]).collect()
}

/// A `SIDE x SIDE` picture smoothed by a Gaussian of standard deviation `sigma`.
fn smooth(picture: &[f32], sigma: f32) -> Vec<f32> {
    let plane = Array2::from_shape_vec((SIDE, SIDE), picture.to_vec())
        .expect("a view holds SIDE x SIDE values");
    gaussian_blur(&plane, sigma).into_raw_vec_and_offset().0
}

/// Bilinear sample of a `SIDE x SIDE` picture at `(x, y)` (pixel centres at integers), edges
/// repeated.
fn sample(picture: &[f32], x: f64, y: f64) -> f32 {
    sample_grid(picture, SIDE, x, y)
}

/// Bilinear sample of a `side x side` picture at `(x, y)` (pixel centres at integers), edges
/// repeated.
fn sample_grid(picture: &[f32], side: usize, x: f64, y: f64) -> f32 {
    let last = (side - 1) as f64;
    let (x, y) = (x.clamp(0.0, last), y.clamp(0.0, last));
    // Truncation is the floor here: both are clamped to be non-negative.
    let (x0, y0) = (x as usize, y as usize);
    let (x1, y1) = ((x0 + 1).min(side - 1), (y0 + 1).min(side - 1));
    let (fx, fy) = ((x - x0 as f64) as f32, (y - y0 as f64) as f32);
    let row = |yy: usize| picture[yy * side + x0] * (1.0 - fx) + picture[yy * side + x1] * fx;
    row(y0) * (1.0 - fy) + row(y1) * fy
}

/// Central-difference gradients of a `SIDE x SIDE` picture, edges repeated.
fn gradients(picture: &[f32]) -> (Vec<f32>, Vec<f32>) {
    let mut gx = vec![0.0f32; SIDE * SIDE];
    let mut gy = vec![0.0f32; SIDE * SIDE];
    for y in 0..SIDE {
        for x in 0..SIDE {
            let (l, r) = (x.saturating_sub(1), (x + 1).min(SIDE - 1));
            let (u, d) = (y.saturating_sub(1), (y + 1).min(SIDE - 1));
            gx[y * SIDE + x] =
                (picture[y * SIDE + r] - picture[y * SIDE + l]) / (r - l).max(1) as f32;
            gy[y * SIDE + x] =
                (picture[d * SIDE + x] - picture[u * SIDE + x]) / (d - u).max(1) as f32;
        }
    }
    (gx, gy)
}

/// An affine map from the first view's pixels to the second's:
/// `(x, y) -> (p0 x + p1 y + p2, p3 x + p4 y + p5)`.
type Affine = [f64; 6];

fn apply(p: &Affine, x: f64, y: f64) -> (f64, f64) {
    (p[0] * x + p[1] * y + p[2], p[3] * x + p[4] * y + p[5])
}

/// The map the signatures' match implies: the first picture's window `window_a` shows the
/// second's window `window_b` in pose `pose` (transposed when `pose & 4`, then flipped
/// left-right when `pose & 1` and upside down when `pose & 2`).
fn initial_map(m: &Match) -> Affine {
    let side = SIDE as f64;
    let (ta, la, ha, wa) = window_rect(m.window_a);
    let (tb, lb, hb, wb) = window_rect(m.window_b);
    let to_b = |x: f64, y: f64| {
        // Unit position in the first window, through the pose into the second window.
        let qx = ((x + 0.5) / side - f64::from(la)) / f64::from(wa);
        let qy = ((y + 0.5) / side - f64::from(ta)) / f64::from(ha);
        let fx = if m.pose & 1 != 0 { 1.0 - qx } else { qx };
        let fy = if m.pose & 2 != 0 { 1.0 - qy } else { qy };
        let (rx, ry) = if m.pose & 4 != 0 { (fy, fx) } else { (fx, fy) };
        (
            (f64::from(lb) + rx * f64::from(wb)) * side - 0.5,
            (f64::from(tb) + ry * f64::from(hb)) * side - 0.5,
        )
    };
    let (ox, oy) = to_b(0.0, 0.0);
    let (xx, xy) = to_b(1.0, 0.0);
    let (yx, yy) = to_b(0.0, 1.0);
    [xx - ox, yx - ox, ox, xy - oy, yy - oy, oy]
}

/// Pixels of the view left out along each side of a region: the edge of a picture, where
/// trimming a border may leave a line of its colour and re-encoding rings, is not compared.
const MARGIN: usize = 3;

/// The first view's pixels inside its matched window, without its margin.
fn region(m: &Match) -> (std::ops::Range<usize>, std::ops::Range<usize>) {
    let (t, l, h, w) = window_rect(m.window_a);
    let span = |start: f32, len: f32| {
        let a = ((start * SIDE as f32).round() as usize + MARGIN).min(SIDE);
        let b = ((start + len) * SIDE as f32).round() as usize;
        a..b.saturating_sub(MARGIN).clamp(a, SIDE)
    };
    (span(t, h), span(l, w))
}

/// Refines `map` so that the second picture, sampled through it, best matches the first in
/// `rows x cols` up to a gain and an offset: Gauss-Newton steps until they are small. Returns
/// the map and the pictures' correlation through the map before its last step (-1 when they
/// could not be compared).
fn refine(
    a: &[f32],
    b: &[f32],
    rows: &std::ops::Range<usize>,
    cols: &std::ops::Range<usize>,
    mut map: Affine,
    pass: &Pass,
) -> (Affine, f64) {
    let (gx, gy) = gradients(b);
    let last = (SIDE - 1) as f64;
    let count = rows.len().div_ceil(pass.stride) * cols.len().div_ceil(pass.stride);
    let mut first = Vec::with_capacity(count);
    let mut second = Vec::with_capacity(count);
    let mut jacobians: Vec<[f64; 6]> = Vec::with_capacity(count);
    let mut correlation = -1.0;
    for _ in 0..pass.iterations {
        first.clear();
        second.clear();
        jacobians.clear();
        for y in rows.clone().step_by(pass.stride) {
            for x in cols.clone().step_by(pass.stride) {
                let (bx, by) = apply(&map, x as f64, y as f64);
                if !(0.0..=last).contains(&bx) || !(0.0..=last).contains(&by) {
                    continue;
                }
                let (dx, dy) = (
                    f64::from(sample(&gx, bx, by)),
                    f64::from(sample(&gy, bx, by)),
                );
                let (xf, yf) = (x as f64, y as f64);
                first.push(f64::from(a[y * SIDE + x]));
                second.push(f64::from(sample(b, bx, by)));
                jacobians.push([dx * xf, dx * yf, dx, dy * xf, dy * yf, dy]);
            }
        }
        // The map has left the second picture: nothing to fit.
        if first.len() < count / 4 || first.is_empty() {
            break;
        }
        let m = first.len() as f64;
        let mean = |v: &[f64]| v.iter().sum::<f64>() / m;
        let (mean_a, mean_b) = (mean(&first), mean(&second));
        let mut mean_j = [0.0f64; 6];
        for j in &jacobians {
            for k in 0..6 {
                mean_j[k] += j[k] / m;
            }
        }
        let (mut cross, mut power, mut power_a) = (0.0f64, 0.0f64, 0.0f64);
        for (p, q) in first.iter().zip(&second) {
            cross += (p - mean_a) * (q - mean_b);
            power += (q - mean_b).powi(2);
            power_a += (p - mean_a).powi(2);
        }
        if power <= 1e-12 || power_a <= 1e-12 {
            break;
        }
        correlation = cross / (power * power_a).sqrt();
        if cross <= 0.0 {
            break;
        }
        let gain = cross / power;
        // The normal equations, upper triangle first.
        let mut normal = Matrix6::<f64>::zeros();
        let mut rhs = Vector6::<f64>::zeros();
        for ((p, q), j) in first.iter().zip(&second).zip(&jacobians) {
            let centred: [f64; 6] = std::array::from_fn(|k| j[k] - mean_j[k]);
            let residual = (p - mean_a) / gain - (q - mean_b);
            for r in 0..6 {
                for c in r..6 {
                    normal[(r, c)] += centred[r] * centred[c];
                }
                rhs[r] += centred[r] * residual;
            }
        }
        for r in 0..6 {
            for c in 0..r {
                normal[(r, c)] = normal[(c, r)];
            }
        }
        let Some(step) = normal.cholesky().map(|c| c.solve(&rhs)) else {
            break;
        };
        for (k, s) in step.iter().enumerate() {
            map[k] += s;
        }
        let shift = step[2].abs().max(step[5].abs());
        let stretch = [0, 1, 3, 4]
            .iter()
            .map(|&k| step[k].abs())
            .fold(0.0, f64::max);
        if shift < 0.02 && stretch < 2e-4 {
            break;
        }
    }
    (map, correlation)
}

/// How well two pictures agree once aligned, from the match their signatures found: the
/// correlation of their edge vectors over the first picture's matched window, in [-1, 1]
/// (1: the same edges in the same places).
pub fn agreement(a: &View, b: &View, m: &Match) -> f32 {
    aligned(a, b, m).0
}

/// Whether two pictures are copies by their alignment: their edges agree at least `least`
/// once aligned, and, when either is plain, their chroma agrees too wherever the first
/// picture's matched window shows.
pub fn confirms(a: &View, b: &View, m: &Match, least: f32) -> bool {
    let (score, map) = aligned(a, b, m);
    score >= least && (!(a.plain || b.plain) || chroma_agrees(a, b, m, &map, CHROMA_SIDE))
}

/// Whether the content views ([`content_view`]) of two plain pictures whose signatures
/// matched as `m` are copies: their contents sit in the same place of their pictures in the
/// pose of the match, their marks have the same mean colour, and they line up in it as
/// [`confirms`] asks (at least `PLAIN_LEAST`), both smoothed as the more enlarged one must be
/// (a small copy's content fills the view with its pixels' steps), with their chroma within
/// `PLAIN_CHROMA` in blocks of the view (tones and colours are the content of a plain picture,
/// not edits to it).
pub fn contents_confirm(a: &View, b: &View, m: &Match, least: f32) -> bool {
    if !frames_agree(&a.frame, &b.frame, m.pose) {
        return false;
    }
    // marks of another colour, however thin (a red tick, a blue one)
    if let (Some(ia), Some(ib)) = (a.ink, b.ink)
        && ia
            .iter()
            .zip(&ib)
            .any(|(p, q)| (p - q).abs() > PLAIN_CHROMA)
    {
        return false;
    }
    let whole = Match {
        window_a: 0,
        window_b: 0,
        ..*m
    };
    // Both are smoothed as the more enlarged one must be: an enlarged view shows its picture's
    // pixels as steps.
    let fine = (a.scale.max(b.scale) * ENLARGED_SIGMA).max(FINE.sigma);
    let resmoothed = |v: &View| View {
        coarse: smooth(&v.values, fine.max(COARSE.sigma)),
        fine: smooth(&v.values, fine),
        values: Vec::new(),
        chroma: v.chroma.clone(),
        ..*v
    };
    let (a, b) = (resmoothed(a), resmoothed(b));
    let (score, map) = aligned(&a, &b, &whole);
    score >= least.max(PLAIN_LEAST)
        && !differs_in_places(&a, &b, &whole, &map)
        && chroma_agrees(&a, &b, &whole, &map, CONTENT_CHROMA_SIDE)
}

/// Share of the matched region whose residual may exceed `MARK_RESIDUAL` in copies: specks of
/// noise, not a mark.
const MARK_SHARE: f64 = 0.0005;

/// Residual, as a share of the first view's contrast, of a mark one picture has and the other
/// has not (a different digit, a tick), once the second is fitted to the first by a gain and
/// an offset.
const MARK_RESIDUAL: f32 = 0.25;

/// Whether the second view, seen through `map` and fitted to the first by a gain and an offset,
/// differs from it by more than `MARK_RESIDUAL` of its contrast in more than `MARK_SHARE` of
/// the matched region: a mark one content has and the other has not, though their edges
/// correlate well overall ("Page 8" and "Page 9").
fn differs_in_places(a: &View, b: &View, m: &Match, map: &Affine) -> bool {
    let (rows, cols) = region(m);
    let mut first = Vec::with_capacity(rows.len() * cols.len());
    let mut second = Vec::with_capacity(first.capacity());
    for y in rows {
        for x in cols.clone() {
            let (bx, by) = apply(map, x as f64, y as f64);
            first.push(a.fine[y * SIDE + x]);
            second.push(sample(&b.fine, bx, by));
        }
    }
    if first.is_empty() {
        return true;
    }
    let n = first.len() as f64;
    let mean = |v: &[f32]| v.iter().map(|&x| f64::from(x)).sum::<f64>() / n;
    let (mean_a, mean_b) = (mean(&first), mean(&second));
    let (mut cross, mut power) = (0.0f64, 0.0f64);
    for (p, q) in first.iter().zip(&second) {
        cross += (f64::from(*p) - mean_a) * (f64::from(*q) - mean_b);
        power += (f64::from(*q) - mean_b).powi(2);
    }
    let gain = if power > 1e-12 { cross / power } else { 0.0 };
    let (low, high) = first
        .iter()
        .fold((f32::MAX, f32::MIN), |(l, h), &v| (l.min(v), h.max(v)));
    let contrast = f64::from(high - low).max(1e-6);
    let off = first
        .iter()
        .zip(&second)
        .filter(|(p, q)| {
            let fitted = mean_a + gain * (f64::from(**q) - mean_b);
            (f64::from(**p) - fitted).abs() > f64::from(MARK_RESIDUAL) * contrast
        })
        .count();
    off as f64 > MARK_SHARE * n
}

/// Least agreement of copies' content views at any similarity: their content is all that
/// tells plain pictures apart (a page numbered 3 from one numbered 4).
const PLAIN_LEAST: f32 = 0.9;

/// Side of the blocks a content view's chroma is compared in: coarse enough that a copy's
/// softer or slightly shifted edges do not count.
const CONTENT_CHROMA_SIDE: usize = 4;

/// Farthest apart, as a fraction of a side, the edges of two copies' content boxes lie.
const FRAME_SLACK: f32 = 0.05;

/// Whether the part `a` of one picture and the part `b` of another are the same part once the
/// first is put in `pose` (as [`initial_map`] reads it).
fn frames_agree(a: &[f32; 4], b: &[f32; 4], pose: u8) -> bool {
    let [top, left, bottom, right] = *a;
    let (mut xs, mut ys) = ([left, right], [top, bottom]);
    if pose & 1 != 0 {
        xs = [1.0 - right, 1.0 - left];
    }
    if pose & 2 != 0 {
        ys = [1.0 - bottom, 1.0 - top];
    }
    if pose & 4 != 0 {
        std::mem::swap(&mut xs, &mut ys);
    }
    let posed = [ys[0], xs[0], ys[1], xs[1]];
    posed
        .iter()
        .zip(b)
        .all(|(p, q)| (p - q).abs() <= FRAME_SLACK)
}

/// Smoothing, in pixels of the picture part, of an enlarged view: about the blur a resized
/// copy's edges carry.
const ENLARGED_SIGMA: f32 = 0.5;

/// The edge agreement of two pictures (see [`agreement`]) and the map that aligns them.
fn aligned(a: &View, b: &View, m: &Match) -> (f32, Affine) {
    let (rows, cols) = region(m);
    let start = initial_map(m);
    if rows.len() < 8 || cols.len() < 8 {
        return (-1.0, start);
    }
    let (map, coarse) = refine(&a.coarse, &b.coarse, &rows, &cols, start, &COARSE);
    // Pictures that disagree even in their coarse shapes are not worth the fine pass.
    if coarse < COARSE_GATE {
        return (-1.0, map);
    }
    let (map, _) = refine(&a.fine, &b.fine, &rows, &cols, map, &FINE);
    // The second picture through the map, on the region and a pixel around it (the gradients
    // read one pixel to each side).
    let mut warped = vec![0.0f32; SIDE * SIDE];
    for y in rows.start.saturating_sub(1)..(rows.end + 1).min(SIDE) {
        for x in cols.start.saturating_sub(1)..(cols.end + 1).min(SIDE) {
            let (bx, by) = apply(&map, x as f64, y as f64);
            warped[y * SIDE + x] = sample(&b.fine, bx, by);
        }
    }
    let (ax, ay) = gradients(&a.fine);
    let (bx, by) = gradients(&warped);
    let (mut cross, mut first, mut second) = (0.0f64, 0.0f64, 0.0f64);
    for y in rows {
        for x in cols.clone() {
            let i = y * SIDE + x;
            cross += f64::from(ax[i] * bx[i] + ay[i] * by[i]);
            first += f64::from(ax[i] * ax[i] + ay[i] * ay[i]);
            second += f64::from(bx[i] * bx[i] + by[i] * by[i]);
        }
    }
    if first <= 1e-12 || second <= 1e-12 {
        return (-1.0, map);
    }
    ((cross / (first * second).sqrt()) as f32, map)
}

/// Whether the chroma of the second picture, seen through `map`, stays within `PLAIN_CHROMA`
/// of the first's at every pixel, `side` a side, of the first picture's matched window.
fn chroma_agrees(a: &View, b: &View, m: &Match, map: &Affine, side: usize) -> bool {
    let (first, second) = (
        a.chroma.clone().map(|c| shrunk(&c, side)),
        b.chroma.clone().map(|c| shrunk(&c, side)),
    );
    let scale = (SIDE / side) as f64;
    let (rows, cols) = region(m);
    let to_grid = |v: f64| (v + 0.5) / scale - 0.5;
    let last = (side - 1) as f64;
    for cy in 0..side {
        for cx in 0..side {
            // the pixel's centre in view pixels
            let (x, y) = (
                (cx as f64 + 0.5) * scale - 0.5,
                (cy as f64 + 0.5) * scale - 0.5,
            );
            if !rows.contains(&(y as usize)) || !cols.contains(&(x as usize)) {
                continue;
            }
            let (bx, by) = apply(map, x, y);
            let (bx, by) = (to_grid(bx).clamp(0.0, last), to_grid(by).clamp(0.0, last));
            for k in 0..2 {
                let there = sample_grid(&second[k], side, bx, by);
                if (first[k][cy * side + cx] - there).abs() > PLAIN_CHROMA {
                    return false;
                }
            }
        }
    }
    true
}

/// A `CHROMA_SIDE` square averaged down to `side` a side (a divisor of `CHROMA_SIDE`).
fn shrunk(plane: &[f32], side: usize) -> Vec<f32> {
    let block = CHROMA_SIDE / side;
    let mut out = vec![0.0f32; side * side];
    for y in 0..CHROMA_SIDE {
        for x in 0..CHROMA_SIDE {
            out[(y / block) * side + x / block] += plane[y * CHROMA_SIDE + x];
        }
    }
    out.iter_mut().for_each(|v| *v /= (block * block) as f32);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::features::dup::{compare, signature};
    use crate::features::luma_plane;
    use crate::test_support::shot;
    use image::RgbImage;

    fn score(a: &RgbImage, b: &RgbImage) -> (Match, f32) {
        let (la, lb) = (luma_plane(a), luma_plane(b));
        let m = compare(&signature(&la), &signature(&lb));
        let views = (View::of(a).unwrap(), View::of(b).unwrap());
        (m, agreement(&views.0, &views.1, &m))
    }

    #[test]
    fn edited_copies_line_up_with_their_original() {
        let original = shot(240, 180, 0.45, 0.5);
        let brighter = {
            let mut out = original.clone();
            out.iter_mut()
                .for_each(|c| *c = (f32::from(*c) * 0.7 + 60.0) as u8);
            out
        };
        let copies = [
            image::imageops::rotate90(&original),
            image::imageops::flip_horizontal(&original),
            image::imageops::crop_imm(&original, 0, 0, 210, 158).to_image(),
            image::imageops::crop_imm(&original, 15, 12, 210, 156).to_image(),
            image::imageops::resize(&original, 160, 120, image::imageops::FilterType::Triangle),
            brighter,
        ];
        for (k, copy) in copies.iter().enumerate() {
            let (m, aligned) = score(&original, copy);
            assert!(aligned > 0.9, "copy {k}: {aligned} {m:?}");
        }
    }

    #[test]
    fn another_shot_with_parallax_does_not_line_up() {
        let first = shot(240, 180, 0.45, 0.5);
        let moved = shot(240, 180, 0.5, 0.5);
        let (m, aligned) = score(&first, &moved);
        assert!(aligned < 0.8, "{aligned} {m:?}");
        let (_, same) = score(&first, &first);
        assert!(same > 0.99, "{same}");
    }

    /// A page whose marks fill its trimmed view with edges (words all over it) is still plain:
    /// nearly all of it is background. A photo is not.
    #[test]
    fn a_page_is_plain_however_many_edges_its_marks_make() {
        let page = RgbImage::from_fn(600, 800, |x, y| {
            let word = (x % 60 < 24) && (y % 40 < 6) && x > 40 && x < 560 && y > 40 && y < 760;
            image::Rgb(if word { [30, 30, 30] } else { [250, 250, 250] })
        });
        let luma = luma_plane(&page);
        let (rows, cols) = trimmed(&luma);
        let resampled = box_resample(&luma, rows, cols, SIDE);
        assert!(
            edge_share(&smooth(&resampled, FINE.sigma)) >= PLAIN_SHARE,
            "the marks alone make it a picture with edges"
        );
        assert!(View::of(&page).unwrap().is_plain());
        assert!(!View::of(&shot(240, 180, 0.45, 0.5)).unwrap().is_plain());
    }
}
