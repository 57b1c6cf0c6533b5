//! Local phase quantisation (Ojansivu and Heikkilä, "Blur insensitive texture classification
//! using local phase quantization", ICISP 2008): a texture histogram that blur leaves alone.
//!
//! At every pixel the short-term Fourier transform over a 7x7 window is taken at the four
//! lowest non-zero frequencies (a,0), (0,a), (a,a), (a,-a) with a = 1/7. A centrally symmetric
//! blur (Gaussian, defocus, a straight motion streak) multiplies each coefficient by a real
//! number that is positive at these low frequencies, so the signs of their real and imaginary
//! parts, the 8-bit code counted here, survive it. The histograms (global plus a grid) are
//! Hellinger-mapped like the colour histogram's.

use ndarray::Array2;

/// Window half-width: the window is `2 * HALF + 1` pixels wide.
const HALF: usize = 3;
/// Codes per histogram.
pub const CODES: usize = 256;

/// Parameters of the LPQ histogram.
#[derive(Debug, Clone, PartialEq)]
pub struct PhaseQuantisation {
    /// The histogram is global plus `grid` x `grid` cells.
    pub grid: usize,
}

impl Default for PhaseQuantisation {
    fn default() -> Self {
        PhaseQuantisation { grid: 2 }
    }
}

impl PhaseQuantisation {
    /// Length of the vector `describe` returns.
    pub fn dim(&self) -> usize {
        CODES * (1 + self.grid * self.grid)
    }

    /// Stable text form of the parameters.
    pub fn params(&self) -> String {
        format!("lpq w{} grid{}", 2 * HALF + 1, self.grid)
    }

    /// Hellinger-mapped code histograms, global block first; global and grid parts weigh equally.
    pub fn describe(&self, luma: &Array2<f32>) -> Vec<f32> {
        let (h, w) = luma.dim();
        let mut out = vec![0.0f32; self.dim()];
        if h <= 2 * HALF || w <= 2 * HALF {
            return out;
        }
        let codes = phase_codes(luma);
        let (ch, cw) = codes.dim();
        let cells = self.grid * self.grid;
        for ((y, x), &code) in codes.indexed_iter() {
            out[code as usize] += 1.0;
            let cy = (y * self.grid / ch).min(self.grid - 1);
            let cx = (x * self.grid / cw).min(self.grid - 1);
            out[CODES * (1 + cy * self.grid + cx) + code as usize] += 1.0;
        }
        let cell_scale = 1.0 / (cells as f32).sqrt();
        for (b, block) in out.chunks_mut(CODES).enumerate() {
            let scale = if b == 0 { 1.0 } else { cell_scale };
            let sum: f32 = block.iter().sum();
            if sum > 0.0 {
                block
                    .iter_mut()
                    .for_each(|v| *v = (*v / sum).sqrt() * scale);
            }
        }
        out
    }
}

/// The 8-bit LPQ code of every pixel whose window fits inside the plane.
pub fn phase_codes(luma: &Array2<f32>) -> Array2<u8> {
    let (h, w) = luma.dim();
    let n = 2 * HALF + 1;
    let (oh, ow) = (h - 2 * HALF, w - 2 * HALF);
    // e^{-2 pi i a k} for k = -HALF..=HALF, a = 1/n.
    let basis: Vec<(f32, f32)> = (0..n)
        .map(|j| {
            let k = j as f32 - HALF as f32;
            let t = -2.0 * std::f32::consts::PI * k / n as f32;
            (t.cos(), t.sin())
        })
        .collect();
    // Row pass: the plain sum (frequency 0) and the frequency-a sum along x.
    let mut r0 = Array2::<f32>::zeros((h, ow));
    let mut r1re = Array2::<f32>::zeros((h, ow));
    let mut r1im = Array2::<f32>::zeros((h, ow));
    for y in 0..h {
        let row = luma.row(y);
        for x in 0..ow {
            let (mut s0, mut sre, mut sim) = (0.0f32, 0.0f32, 0.0f32);
            for (j, &(c, s)) in basis.iter().enumerate() {
                let v = row[x + j];
                s0 += v;
                sre += v * c;
                sim += v * s;
            }
            r0[[y, x]] = s0;
            r1re[[y, x]] = sre;
            r1im[[y, x]] = sim;
        }
    }
    // Column pass: the four frequencies, then the signs of their 8 real and imaginary parts.
    Array2::from_shape_fn((oh, ow), |(y, x)| {
        let mut f = [0.0f32; 8];
        for (j, &(c, s)) in basis.iter().enumerate() {
            let (p0, pre, pim) = (r0[[y + j, x]], r1re[[y + j, x]], r1im[[y + j, x]]);
            // (a, 0): frequency a along x only.
            f[0] += pre;
            f[4] += pim;
            // (0, a): frequency a along y only.
            f[1] += p0 * c;
            f[5] += p0 * s;
            // (a, a): product of the two.
            f[2] += pre * c - pim * s;
            f[6] += pre * s + pim * c;
            // (a, -a): x frequency times the conjugate y frequency.
            f[3] += pre * c + pim * s;
            f[7] += pim * c - pre * s;
        }
        f.iter()
            .enumerate()
            .fold(0u8, |code, (bit, v)| code | (u8::from(*v > 0.0) << bit))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::restore::test_util::dead_leaves;
    use crate::restore::{Psf, fft::convolve};

    fn hellinger_distance(a: &[f32], b: &[f32]) -> f32 {
        a[..CODES]
            .iter()
            .zip(&b[..CODES])
            .map(|(x, y)| (x - y).powi(2))
            .sum::<f32>()
            .sqrt()
    }

    #[test]
    fn histograms_are_unit_blocks_and_have_the_stated_length() {
        let lpq = PhaseQuantisation::default();
        let v = lpq.describe(&dead_leaves(96, 80, 3));
        assert_eq!(v.len(), lpq.dim());
        let global: f32 = v[..CODES].iter().map(|x| x * x).sum();
        assert!((global - 1.0).abs() < 1e-4, "{global}");
        assert!(lpq.describe(&Array2::zeros((4, 4))).iter().all(|v| *v == 0.0));
    }

    #[test]
    fn blur_changes_codes_less_than_a_different_texture_does() {
        let lpq = PhaseQuantisation::default();
        let sharp = dead_leaves(128, 128, 11);
        let blurred = convolve(&sharp, &Psf::gaussian(1.5));
        let other = dead_leaves(128, 128, 12);
        let (a, b, c) = (
            lpq.describe(&sharp),
            lpq.describe(&blurred),
            lpq.describe(&other),
        );
        let (blur_d, other_d) = (hellinger_distance(&a, &b), hellinger_distance(&a, &c));
        assert!(blur_d < 0.5 * other_d, "blur {blur_d} vs other {other_d}");
    }

    #[test]
    fn codes_follow_the_phase_of_a_shifted_pattern() {
        // A vertical cosine grating at frequency a: F(a,0) has magnitude and a phase set by
        // the shift; moving the grating by a quarter period turns the phase by 90 degrees.
        let grating = |shift: f32| {
            Array2::from_shape_fn((16, 16), |(_, x)| {
                (2.0 * std::f32::consts::PI * (x as f32 + shift) / 7.0).cos()
            })
        };
        let a = phase_codes(&grating(0.0));
        let b = phase_codes(&grating(7.0));
        assert_eq!(a, b, "a whole period shift keeps every code");
        let c = phase_codes(&grating(1.75));
        assert_ne!(a, c);
    }
}

impl super::Extractor for PhaseQuantisation {
    fn family(&self) -> &'static str {
        "lpq"
    }
    fn version(&self) -> u32 {
        1
    }
    fn params(&self) -> String {
        PhaseQuantisation::params(self)
    }
    fn dim(&self) -> usize {
        PhaseQuantisation::dim(self)
    }
    fn extract(&self, input: &super::FeatureInput) -> Vec<f32> {
        self.describe(&input.luma)
    }
}
