//! The `lbp` family: multi-scale rotation-invariant uniform local binary patterns (Ojala,
//! Pietikäinen, Mäenpää, "Multiresolution gray-scale and rotation invariant texture
//! classification with local binary patterns", IEEE TPAMI 24(7), 2002).
//!
//! For every pixel `g_c` of the luminance and each radius `R`, `P = 8` neighbours `g_p` are
//! sampled on a circle (bilinear interpolation) and thresholded, `s_p = [g_p - g_c >= -t]`.
//! The `riu2` code is the number of ones when the circular pattern has at most two 0/1
//! transitions ("uniform": spots, flats, edges, corners, line ends), and `P + 1` otherwise:
//! `P + 2` bins, invariant to any monotonic grey-level change and to rotation. The small
//! tolerance `t` (a couple of grey levels, as in local ternary patterns, Tan & Triggs 2010)
//! keeps JPEG noise in flat regions from scattering into random codes.
//!
//! Histograms are taken over the whole image and over a 2x2 grid, normalised to sum 1,
//! square-rooted (Hellinger map) and weighted so the global and grid parts count equally.

use std::f32::consts::PI;

use multiversion::multiversion;
use ndarray::Array2;

use super::{Extractor, FeatureInput};

/// Parameters of the LBP descriptor.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct LocalBinaryPatterns {
    /// Radii in pixels of the working image.
    pub(crate) radii: Vec<f32>,
    /// Spatial grid is `grid` x `grid` cells (besides the global histogram).
    pub(crate) grid: usize,
    /// Tolerance on grey differences, luma in [0, 1].
    pub(crate) tolerance: f32,
}

impl Default for LocalBinaryPatterns {
    fn default() -> Self {
        LocalBinaryPatterns {
            radii: vec![1.0, 2.0, 4.0],
            grid: 2,
            tolerance: 2.0 / 255.0,
        }
    }
}

/// Neighbours per circle.
const P: usize = 8;
/// Bins of one riu2 histogram.
const BINS: usize = P + 2;

/// One circle neighbour relative to the centre pixel: interpolation corners and weights.
struct Tap {
    y0: isize,
    x0: isize,
    y1: isize,
    x1: isize,
    ty: f32,
    tx: f32,
}

impl Tap {
    fn new(dy: f32, dx: f32) -> Tap {
        let (fy, fx) = (dy.floor(), dx.floor());
        let (ty, tx) = (dy - fy, dx - fx);
        // A zero weight needs no second corner (and it might lie outside the image).
        Tap {
            y0: fy as isize,
            x0: fx as isize,
            y1: fy as isize + isize::from(ty > 0.0),
            x1: fx as isize + isize::from(tx > 0.0),
            ty,
            tx,
        }
    }
}

/// The riu2 code of an 8-bit circular pattern.
fn riu2(bits: u8) -> usize {
    let transitions = (bits ^ bits.rotate_left(1)).count_ones();
    if transitions <= 2 {
        bits.count_ones() as usize
    } else {
        P + 1
    }
}

impl Extractor for LocalBinaryPatterns {
    fn family(&self) -> &'static str {
        "lbp"
    }

    fn version(&self) -> u32 {
        1
    }

    fn params(&self) -> String {
        format!(
            "lbp riu2 p{P} r{:?} grid{} t{}",
            self.radii, self.grid, self.tolerance
        )
    }

    fn dim(&self) -> usize {
        BINS * self.radii.len() * (1 + self.grid * self.grid)
    }

    fn extract(&self, input: &FeatureInput) -> Vec<f32> {
        self.describe(&input.luma)
    }
}

impl LocalBinaryPatterns {
    /// The descriptor of a luminance plane.
    pub(crate) fn describe(&self, img: &Array2<f32>) -> Vec<f32> {
        describe_plane(self, img)
    }
}

/// Each histogram to sum 1, square root; the global and the grid parts weigh equally.
fn hellinger_blocks(out: &mut [f32], grid: usize) {
    let regions = 1 + grid * grid;
    let cell_scale = 1.0 / ((grid * grid) as f32).sqrt();
    for (i, block) in out.chunks_mut(BINS).enumerate() {
        let scale = if i % regions == 0 { 1.0 } else { cell_scale };
        let sum: f32 = block.iter().sum();
        if sum > 0.0 {
            block
                .iter_mut()
                .for_each(|v| *v = (*v / sum).sqrt() * scale);
        }
    }
}

/// [`LocalBinaryPatterns::describe`], compiled also for AVX2 and chosen at run time (the same
/// operations, so the same result).
#[multiversion(targets("x86_64+avx2+fma"))]
fn describe_plane(o: &LocalBinaryPatterns, img: &Array2<f32>) -> Vec<f32> {
    let (h, w) = img.dim();
    let regions = 1 + o.grid * o.grid;
    let per_radius = BINS * regions;
    let mut out = vec![0.0f32; o.dim()];
    for (ri, &r) in o.radii.iter().enumerate() {
        let offsets: Vec<(f32, f32)> = (0..P)
            .map(|p| {
                let a = 2.0 * PI * p as f32 / P as f32;
                (-r * a.sin(), r * a.cos())
            })
            .collect();
        let margin = r.ceil() as usize;
        if h <= 2 * margin || w <= 2 * margin {
            continue;
        }
        let base = ri * per_radius;
        let (ih, iw) = (h - 2 * margin, w - 2 * margin);
        // Pixel centres are integers, so each neighbour's interpolation corners and weights
        // are the same for every pixel: computed once (same arithmetic as `bilinear`).
        let taps: Vec<Tap> = offsets.iter().map(|&(dy, dx)| Tap::new(dy, dx)).collect();
        let data = img.as_standard_layout();
        let px = data.as_slice().expect("standard layout");
        // One pass per neighbour over whole rows (vectorisable), setting that neighbour's
        // bit in every pixel's code; then one histogram pass.
        let mut codes = vec![0u8; ih * iw];
        for (p, t) in taps.iter().enumerate() {
            let row_at = |y: usize, dy: isize, dx: isize| {
                let start = (y as isize + dy) as usize * w + (margin as isize + dx) as usize;
                &px[start..start + iw]
            };
            for y in margin..h - margin {
                let (a, b) = (row_at(y, t.y0, t.x0), row_at(y, t.y0, t.x1));
                let (c, d) = (row_at(y, t.y1, t.x0), row_at(y, t.y1, t.x1));
                let centre = row_at(y, 0, 0);
                let out_row = &mut codes[(y - margin) * iw..(y - margin + 1) * iw];
                for i in 0..iw {
                    let top = a[i] * (1.0 - t.tx) + b[i] * t.tx;
                    let bottom = c[i] * (1.0 - t.tx) + d[i] * t.tx;
                    let v = top * (1.0 - t.ty) + bottom * t.ty;
                    out_row[i] |= u8::from(v >= centre[i] - o.tolerance) << p;
                }
            }
        }
        // Counts per cell (whole numbers, so the global histogram is exactly their sum),
        // over the run of columns each grid column covers; four interleaved counters, as
        // neighbouring pixels often share a code.
        let table: [u8; 256] = std::array::from_fn(|bits| riu2(bits as u8) as u8);
        let runs = super::grid_runs(iw, o.grid);
        let mut counts = vec![[0u32; BINS]; o.grid * o.grid];
        for (row, y) in codes.chunks_exact(iw).zip(0..) {
            let cy = (y * o.grid / ih).min(o.grid - 1);
            for (cx, run) in runs.iter().enumerate() {
                let mut lanes = [[0u32; BINS]; 4];
                let quads = row[run.clone()].chunks_exact(4);
                for &bits in quads.remainder() {
                    lanes[0][table[bits as usize] as usize] += 1;
                }
                for quad in quads {
                    for (lane, &bits) in lanes.iter_mut().zip(quad) {
                        lane[table[bits as usize] as usize] += 1;
                    }
                }
                let cell = &mut counts[cy * o.grid + cx];
                for lane in &lanes {
                    for (c, n) in cell.iter_mut().zip(lane) {
                        *c += n;
                    }
                }
            }
        }
        for (c, cell) in counts.iter().enumerate() {
            for (code, &n) in cell.iter().enumerate() {
                out[base + code] += n as f32;
                out[base + BINS * (1 + c) + code] += n as f32;
            }
        }
    }
    hellinger_blocks(&mut out, o.grid);
    out
}

#[cfg(test)]
mod tests {
    use ndarray::Array2;

    /// Direct per-pixel bilinear sampling: the reference the precomputed taps must match.
    fn bilinear(img: &Array2<f32>, y: f32, x: f32) -> f32 {
        let (h, w) = img.dim();
        let y = y.clamp(0.0, (h - 1) as f32);
        let x = x.clamp(0.0, (w - 1) as f32);
        let (y0, x0) = (y.floor() as usize, x.floor() as usize);
        let (y1, x1) = ((y0 + 1).min(h - 1), (x0 + 1).min(w - 1));
        let (ty, tx) = (y - y0 as f32, x - x0 as f32);
        let top = img[[y0, x0]] * (1.0 - tx) + img[[y0, x1]] * tx;
        let bottom = img[[y1, x0]] * (1.0 - tx) + img[[y1, x1]] * tx;
        top * (1.0 - ty) + bottom * ty
    }

    fn reference(lbp: &LocalBinaryPatterns, img: &Array2<f32>) -> Vec<f32> {
        let (h, w) = img.dim();
        let regions = 1 + lbp.grid * lbp.grid;
        let mut out = vec![0.0f32; lbp.dim()];
        for (ri, &r) in lbp.radii.iter().enumerate() {
            let margin = r.ceil() as usize;
            let (ih, iw) = (h - 2 * margin, w - 2 * margin);
            for y in margin..h - margin {
                let cy = ((y - margin) * lbp.grid / ih).min(lbp.grid - 1);
                for x in margin..w - margin {
                    let cx = ((x - margin) * lbp.grid / iw).min(lbp.grid - 1);
                    let c = img[[y, x]] - lbp.tolerance;
                    let mut bits = 0u8;
                    for p in 0..P {
                        let a = 2.0 * PI * p as f32 / P as f32;
                        if bilinear(img, y as f32 - r * a.sin(), x as f32 + r * a.cos()) >= c {
                            bits |= 1 << p;
                        }
                    }
                    let base = ri * BINS * regions;
                    out[base + riu2(bits)] += 1.0;
                    out[base + BINS * (1 + cy * lbp.grid + cx) + riu2(bits)] += 1.0;
                }
            }
        }
        hellinger_blocks(&mut out, lbp.grid);
        out
    }

    #[test]
    fn precomputed_taps_match_direct_bilinear_sampling() {
        let mut state = 5u32;
        let rgb = image::RgbImage::from_fn(83, 61, |x, y| {
            state = state.wrapping_mul(1664525).wrapping_add(1013904223);
            let v = ((x * 3 + y * 5) % 17 * 12) as u8 ^ (state >> 28) as u8;
            image::Rgb([v, v / 2, 255 - v])
        });
        let input = FeatureInput::new(rgb);
        let img = input.luma.clone();
        // Grids of 2 and 3 cells split the 81 and 79 interior columns and rows unevenly.
        for grid in [2, 3] {
            let lbp = LocalBinaryPatterns {
                grid,
                ..LocalBinaryPatterns::default()
            };
            let fast = lbp.extract(&input);
            let slow = reference(&lbp, &img);
            let worst = crate::test_support::largest_difference(&fast, &slow);
            assert!(worst < 2e-3, "grid {grid}: largest difference {worst}");
        }
    }
    use super::*;
    use image::{Rgb, RgbImage};

    fn feature(img: RgbImage) -> Vec<f32> {
        LocalBinaryPatterns::default().extract(&FeatureInput::new(img))
    }

    fn dist(u: &[f32], v: &[f32]) -> f32 {
        u.iter().zip(v).map(|(x, y)| (x - y).powi(2)).sum()
    }

    #[test]
    fn riu2_codes() {
        assert_eq!(riu2(0), 0);
        assert_eq!(riu2(0xff), 8);
        assert_eq!(riu2(0b0000_0111), 3);
        assert_eq!(riu2(0b1000_0011), 3);
        assert_eq!(riu2(0b0101_0101), 9);
    }

    #[test]
    fn length_finite_and_flat_image() {
        let img = RgbImage::from_fn(61, 43, |x, y| Rgb([(x * 3) as u8, (y * 5) as u8, 9]));
        let v = feature(img);
        assert_eq!(v.len(), LocalBinaryPatterns::default().dim());
        assert!(v.iter().all(|x| x.is_finite()));
        // A flat image is all "flat" patterns (code P).
        let flat = feature(RgbImage::from_pixel(40, 40, Rgb([90, 90, 90])));
        assert!((flat[P] - 1.0).abs() < 1e-6);
    }

    #[test]
    fn invariant_to_monotonic_grey_change_and_rotation() {
        let tex = RgbImage::from_fn(64, 64, |x, y| {
            let v = (((x * 7 + y * 3) % 23) * 9 + ((x * y) % 5) * 8) as u8;
            Rgb([v, v, v])
        });
        // Monotonic (gamma-like) change with expanded contrast: same codes.
        let brighter = RgbImage::from_fn(64, 64, |x, y| {
            let v = tex.get_pixel(x, y)[0] as f32 / 255.0;
            let u = (v.sqrt() * 255.0) as u8;
            Rgb([u, u, u])
        });
        let a = feature(tex.clone());
        assert!(dist(&a, &feature(brighter)) < 0.02);
        // Rotation by 90 degrees permutes grid cells but keeps the global histograms.
        let rotated = image::imageops::rotate90(&tex);
        let b = feature(rotated);
        let regions = 1 + 4;
        for ri in 0..3 {
            let g = ri * BINS * regions;
            assert!(dist(&a[g..g + BINS], &b[g..g + BINS]) < 1e-3);
        }
    }
}
