//! The `orient` family: multi-scale histograms of gradient orientation (edge direction and
//! density), global plus a spatial grid, Hellinger-mapped.
//!
//! At each of `scales` octaves of the luminance (2x2 box averaging between them), every
//! interior pixel's central-difference gradient votes for the two nearest of `bins` unsigned
//! orientations (0..pi, circular, linear weights) with its magnitude; a last bin counts the
//! flat pixels (magnitude under `flat_threshold`), weighted by the threshold, so that how much
//! of the picture is smooth (sky, sea, snow) is part of the description. The idea is the edge
//! histogram of MPEG-7 and the orientation histograms of Freeman & Roth (1995) and of HOG
//! (Dalal & Triggs 2005), here pooled over large regions for whole-scene similarity: horizons,
//! facades, the stripes of a bus or the petals of a flower. The same histograms are taken on
//! two opponent-colour planes (red - green, red + green - 2 blue), so that edges between
//! regions of equal brightness but different colour (a red flower on green leaves) count too.
//!
//! Every block (global and each grid cell) is normalised to sum 1 and square-rooted; each
//! octave's blocks together are scaled to unit L2 norm, so octaves weigh equally.

use multiversion::multiversion;
use ndarray::Array2;

use super::{Extractor, FeatureInput};

/// Parameters of the orientation histograms.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct OrientationHistograms {
    /// Octaves: 1 is the working image only, each further one halves it.
    pub(crate) scales: usize,
    /// Unsigned orientation bins over 0..pi.
    pub(crate) bins: usize,
    /// Spatial grid is `grid` x `grid` cells (besides the global histogram).
    pub(crate) grid: usize,
    /// Central-difference magnitude (channels in [0, 1] units) below which a pixel is flat.
    pub(crate) flat_threshold: f32,
    /// Also describe the two opponent-colour planes.
    pub(crate) opponent_colour: bool,
}

impl Default for OrientationHistograms {
    /// Three octaves of 8 orientations on a 2x2 grid: the first set-up measured, in a
    /// prototype on the shared sets (wang, ukbench1000), not tuned further; the opponent
    /// planes raised both sets (BENCHMARKS.md).
    fn default() -> Self {
        OrientationHistograms {
            scales: 3,
            bins: 8,
            grid: 2,
            flat_threshold: 0.02,
            opponent_colour: true,
        }
    }
}

impl OrientationHistograms {
    fn block_len(&self) -> usize {
        self.bins + 1
    }

    fn per_scale(&self) -> usize {
        self.block_len() * (1 + self.grid * self.grid)
    }

    fn planes(&self) -> usize {
        if self.opponent_colour { 3 } else { 1 }
    }
}

/// Votes of one octave into `out` (global block first, then the cells row by row). Compiled
/// also for AVX2 and chosen at run time; the same operations, so the same result.
#[multiversion(targets("x86_64+avx2+fma"))]
fn vote_octave(o: &OrientationHistograms, img: &Array2<f32>, out: &mut [f32]) {
    let (h, w) = img.dim();
    if h < 3 || w < 3 {
        return;
    }
    let data = img.as_standard_layout();
    let px = data.as_slice().expect("standard layout");
    let (bins, block) = (o.bins, o.block_len());
    let (ih, iw) = (h - 2, w - 2);
    // The interior columns of each grid column, in order (the cells split a row in runs).
    let runs = super::grid_runs(iw, o.grid);
    let bins_per_radian = bins as f32 / std::f32::consts::PI;
    // Per cell: two interleaved orientation histograms (neighbouring pixels usually vote
    // for the same bins; alternating copies keeps the additions independent) and a count
    // of flat pixels.
    let cells = o.grid * o.grid;
    let mut votes = vec![0f32; cells * 2 * bins];
    let mut flats = vec![0u32; cells];
    // Per row, first the arithmetic for every pixel (branch-free, so it vectorises), then
    // the votes.
    let (mut lo, mut hi) = (vec![0u32; iw], vec![0u32; iw]);
    let (mut w_lo, mut w_hi) = (vec![0f32; iw], vec![0f32; iw]);
    let mut flat = vec![0u32; iw];
    for y in 1..h - 1 {
        let cy = ((y - 1) * o.grid / ih).min(o.grid - 1);
        let (above, row, below) = (
            &px[(y - 1) * w..y * w],
            &px[y * w..(y + 1) * w],
            &px[(y + 1) * w..(y + 2) * w],
        );
        // Equal-length views (interior pixel i is column i + 1), so no index is checked.
        let (left, right) = (&row[..iw], &row[2..]);
        let (up, down) = (&above[1..=iw], &below[1..=iw]);
        let (lo, hi, w_lo, w_hi, flat) = (
            &mut lo[..iw],
            &mut hi[..iw],
            &mut w_lo[..iw],
            &mut w_hi[..iw],
            &mut flat[..iw],
        );
        for i in 0..iw {
            let gx = right[i] - left[i];
            let gy = down[i] - up[i];
            let mag = (gx * gx + gy * gy).sqrt();
            // Unsigned orientation in [0, pi), then a circular position among the bins.
            let angle = fast_atan2(gy, gx);
            let angle = if angle < 0.0 {
                angle + std::f32::consts::PI
            } else {
                angle
            };
            let pos = angle * bins_per_radian - 0.5;
            let pos = if pos < 0.0 { pos + bins as f32 } else { pos };
            // pos in [0, bins]: truncation is the floor; the top bin wraps by comparison.
            let floor = pos as u32;
            let t = pos - floor as f32;
            let low = if floor >= bins as u32 {
                floor - bins as u32
            } else {
                floor
            };
            lo[i] = low;
            hi[i] = if low + 1 == bins as u32 { 0 } else { low + 1 };
            // A zero magnitude votes zero (a flat pixel is counted apart).
            w_lo[i] = mag * (1.0 - t);
            w_hi[i] = mag * t;
            flat[i] = u32::from(mag < o.flat_threshold);
        }
        for (cx, run) in runs.iter().enumerate() {
            let cell = cy * o.grid + cx;
            let acc = &mut votes[cell * 2 * bins..(cell + 1) * 2 * bins];
            let mut count = 0u32;
            for i in run.clone() {
                let copy = (i & 1) * bins;
                acc[copy + lo[i] as usize] += w_lo[i];
                acc[copy + hi[i] as usize] += w_hi[i];
                count += flat[i];
            }
            flats[cell] += count;
        }
    }
    // Flat pixels weigh the threshold each; the global block is the sum of the cells.
    for cell in 0..cells {
        let acc = &votes[cell * 2 * bins..(cell + 1) * 2 * bins];
        let cell_block = block * (1 + cell);
        for b in 0..bins {
            let v = acc[b] + acc[bins + b];
            out[cell_block + b] += v;
            out[b] += v;
        }
        let flat_weight = flats[cell] as f32 * o.flat_threshold;
        out[cell_block + bins] += flat_weight;
        out[bins] += flat_weight;
    }
}

/// `atan2(y, x)` within 0.0015 rad (a bin is 0.39 rad wide): atan on [-1, 1] by the
/// approximation `pi/4 z - z (|z| - 1)(0.2447 + 0.0663 |z|)` (Rajan et al., IEEE Signal
/// Processing Magazine 2006), the octants by symmetry.
fn fast_atan2(y: f32, x: f32) -> f32 {
    use std::f32::consts::{FRAC_PI_2, FRAC_PI_4, PI};
    let atan = |z: f32| FRAC_PI_4 * z - z * (z.abs() - 1.0) * (0.2447 + 0.0663 * z.abs());
    // Written with selects rather than early returns so that a loop over pixels vectorises.
    let steep = x.abs() < y.abs();
    let a = atan(if steep { x / y } else { y / x });
    let angle = if steep {
        (if y >= 0.0 { FRAC_PI_2 } else { -FRAC_PI_2 }) - a
    } else if x >= 0.0 {
        a
    } else if y >= 0.0 {
        a + PI
    } else {
        a - PI
    };
    if x == 0.0 && y == 0.0 { 0.0 } else { angle }
}

/// Half-size image by 2x2 box averaging (odd last row or column dropped).
fn half(img: &Array2<f32>) -> Array2<f32> {
    let (h, w) = img.dim();
    Array2::from_shape_fn((h / 2, w / 2), |(y, x)| {
        0.25 * (img[[2 * y, 2 * x]]
            + img[[2 * y, 2 * x + 1]]
            + img[[2 * y + 1, 2 * x]]
            + img[[2 * y + 1, 2 * x + 1]])
    })
}

impl Extractor for OrientationHistograms {
    fn family(&self) -> &'static str {
        "orient"
    }

    fn version(&self) -> u32 {
        2
    }

    fn params(&self) -> String {
        format!(
            "grad-orient s{} b{} grid{} flat{} opp{}",
            self.scales, self.bins, self.grid, self.flat_threshold, self.opponent_colour
        )
    }

    fn dim(&self) -> usize {
        self.planes() * self.scales * self.per_scale()
    }

    fn extract(&self, input: &FeatureInput) -> Vec<f32> {
        let mut out = vec![0.0f32; self.dim()];
        let mut planes = vec![input.luma.clone()];
        if self.opponent_colour {
            planes.extend(opponent_planes(&input.rgb));
        }
        for (plane, plane_out) in planes
            .into_iter()
            .zip(out.chunks_mut(self.scales * self.per_scale()))
        {
            let mut octave = plane;
            for chunk in plane_out.chunks_mut(self.per_scale()) {
                vote_octave(self, &octave, chunk);
                for block in chunk.chunks_mut(self.block_len()) {
                    let sum: f32 = block.iter().sum();
                    if sum > 0.0 {
                        block.iter_mut().for_each(|v| *v = (*v / sum).sqrt());
                    }
                }
                super::l2_normalize(chunk);
                octave = half(&octave);
            }
        }
        out
    }
}

/// Opponent-colour planes `r - g` and `r + g - 2b`, channels in [0, 1].
fn opponent_planes(rgb: &image::RgbImage) -> [Array2<f32>; 2] {
    let (w, h) = rgb.dimensions();
    let n = (w * h) as usize;
    let (mut red_green, mut yellow_blue) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for p in rgb.pixels() {
        let [r, g, b] = p.0.map(|c| f32::from(c) / 255.0);
        red_green.push(r - g);
        yellow_blue.push(r + g - 2.0 * b);
    }
    let shape = (h as usize, w as usize);
    [
        Array2::from_shape_vec(shape, red_green).expect("one value per pixel"),
        Array2::from_shape_vec(shape, yellow_blue).expect("one value per pixel"),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{Rgb, RgbImage};

    fn feature(img: RgbImage) -> Vec<f32> {
        OrientationHistograms::default().extract(&FeatureInput::new(img))
    }

    fn stripes(vertical: bool) -> RgbImage {
        RgbImage::from_fn(96, 64, |x, y| {
            let t = if vertical { x } else { y };
            let v = if (t / 4) % 2 == 0 { 30 } else { 220 };
            Rgb([v, v, v])
        })
    }

    /// The votes of one octave, pixel by pixel in f64: what `vote_octave` must equal.
    fn reference_votes(o: &OrientationHistograms, img: &Array2<f32>) -> Vec<f64> {
        let (h, w) = img.dim();
        let (ih, iw) = (h - 2, w - 2);
        let block = o.block_len();
        let mut out = vec![0.0f64; o.per_scale()];
        for y in 1..h - 1 {
            for x in 1..w - 1 {
                let gx = img[[y, x + 1]] - img[[y, x - 1]];
                let gy = img[[y + 1, x]] - img[[y - 1, x]];
                let mag = (gx * gx + gy * gy).sqrt();
                let angle = fast_atan2(gy, gx).rem_euclid(std::f32::consts::PI);
                let pos =
                    (angle * o.bins as f32 / std::f32::consts::PI - 0.5).rem_euclid(o.bins as f32);
                let (lo, t) = (pos.floor() as usize % o.bins, pos - pos.floor());
                let cell_y = ((y - 1) * o.grid / ih).min(o.grid - 1);
                let cell_x = ((x - 1) * o.grid / iw).min(o.grid - 1);
                let cell = block * (1 + cell_y * o.grid + cell_x);
                for base in [0, cell] {
                    out[base + lo] += f64::from(mag * (1.0 - t));
                    out[base + (lo + 1) % o.bins] += f64::from(mag * t);
                    if mag < o.flat_threshold {
                        out[base + o.bins] += f64::from(o.flat_threshold);
                    }
                }
            }
        }
        out
    }

    #[test]
    fn octave_votes_match_a_per_pixel_reference() {
        let mut state = 11u32;
        let mut next = || {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (state >> 8) as f32 / (1u32 << 24) as f32
        };
        // Texture with flat patches, an odd size and grids whose cells split unevenly.
        let img = Array2::from_shape_fn((37, 53), |(y, x)| {
            if (x / 9 + y / 7) % 3 == 0 {
                0.5
            } else {
                next()
            }
        });
        for grid in [1, 2, 3] {
            let o = OrientationHistograms {
                grid,
                ..OrientationHistograms::default()
            };
            let mut fast = vec![0.0f32; o.per_scale()];
            vote_octave(&o, &img, &mut fast);
            let reference = reference_votes(&o, &img);
            let total: f64 = reference.iter().sum();
            for (i, (f, r)) in fast.iter().zip(&reference).enumerate() {
                assert!(
                    (f64::from(*f) - r).abs() <= 1e-6 * total,
                    "grid {grid}, bin {i}: {f} vs {r}"
                );
            }
        }
    }

    #[test]
    fn fast_atan2_is_close_to_atan2_everywhere() {
        for i in 0..3600 {
            let a = (i as f32 / 3600.0) * 2.0 * std::f32::consts::PI;
            for r in [1e-4f32, 0.3, 2.0] {
                let (y, x) = (r * a.sin(), r * a.cos());
                let d = (fast_atan2(y, x) - y.atan2(x)).abs();
                // Equal angles up to the +-pi wrap.
                let d = d.min((d - 2.0 * std::f32::consts::PI).abs());
                assert!(d < 0.002, "angle {a}: {d}");
            }
        }
    }

    #[test]
    fn length_and_flat_image() {
        let o = OrientationHistograms::default();
        let v = feature(RgbImage::from_pixel(50, 40, Rgb([90, 90, 90])));
        assert_eq!(v.len(), o.dim());
        assert_eq!(o.dim(), 3 * 3 * 9 * 5);
        // A flat image is all "flat" bins: each block is [0, .., 0, 1] before scaling.
        for block in v.chunks(o.block_len()) {
            assert!(block[..o.bins].iter().all(|&x| x == 0.0));
            assert!(block[o.bins] > 0.0);
        }
        assert!(
            feature(RgbImage::from_pixel(2, 2, Rgb([1, 2, 3])))
                .iter()
                .all(|x| x.is_finite())
        );
    }

    #[test]
    fn vertical_and_horizontal_stripes_vote_for_perpendicular_orientations() {
        let o = OrientationHistograms::default();
        let vert = feature(stripes(true));
        let horiz = feature(stripes(false));
        // Vertical stripes: gradients along x, orientation 0 (bins 0 and 7 around it).
        // Horizontal stripes: gradients along y, orientation pi/2 (bins 3 and 4).
        // Grey stripes: the luma plane's global block of the first octave.
        let global = |v: &[f32]| v[..o.bins].to_vec();
        let gv = global(&vert);
        let gh = global(&horiz);
        assert!(gv[0] + gv[7] > 0.9 * gv.iter().sum::<f32>(), "{gv:?}");
        assert!(gh[3] + gh[4] > 0.9 * gh.iter().sum::<f32>(), "{gh:?}");
        let d: f32 = vert.iter().zip(&horiz).map(|(a, b)| (a - b).powi(2)).sum();
        assert!(d > 1.0, "stripes of both directions look alike: {d}");
    }

    #[test]
    fn opponent_planes_see_edges_between_colours_of_equal_brightness() {
        let o = OrientationHistograms::default();
        // Red and green of nearly equal luma (0.299 * 200 ~ 0.587 * 102), in vertical stripes.
        let img = RgbImage::from_fn(96, 64, |x, _| {
            if (x / 4) % 2 == 0 {
                Rgb([200, 0, 0])
            } else {
                Rgb([0, 102, 0])
            }
        });
        let v = feature(img);
        let plane = o.scales * o.per_scale();
        // Squared entries of a block, over the block's own squared norm: the share of its mass.
        let share = |block: &[f32], bins: &[usize]| {
            let total: f32 = block.iter().map(|x| x * x).sum();
            bins.iter().map(|&i| block[i].powi(2)).sum::<f32>() / total
        };
        let luma = &v[..o.block_len()];
        assert!(share(luma, &[o.bins]) > 0.99, "luma sees edges: {luma:?}");
        let rg = &v[plane..plane + o.block_len()];
        assert!(
            share(rg, &[0, 7]) > 0.4,
            "red-green plane misses the stripes: {rg:?}"
        );
    }

    #[test]
    fn invariant_to_brightness_offset_and_close_under_scaling() {
        let img = RgbImage::from_fn(128, 96, |x, y| {
            let v = (((x as f32 / 7.0).sin() + (y as f32 / 11.0).cos()) * 50.0 + 120.0) as u8;
            Rgb([v, v, v])
        });
        let brighter = RgbImage::from_fn(128, 96, |x, y| {
            let p = img.get_pixel(x, y).0[0] + 20;
            Rgb([p, p, p])
        });
        let a = feature(img.clone());
        let b = feature(brighter);
        let d: f32 = a.iter().zip(&b).map(|(x, y)| (x - y).powi(2)).sum();
        assert!(d < 1e-3, "a brightness offset changed the feature by {d}");
        let small = image::imageops::resize(&img, 96, 72, image::imageops::FilterType::Triangle);
        let c = feature(small);
        let other = feature(stripes(false));
        let near: f32 = a.iter().zip(&c).map(|(x, y)| (x - y).powi(2)).sum();
        let far: f32 = a.iter().zip(&other).map(|(x, y)| (x - y).powi(2)).sum();
        assert!(near * 4.0 < far, "near {near} far {far}");
    }
}
