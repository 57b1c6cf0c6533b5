//! Noise level estimation: Donoho's robust MAD estimator on the finest diagonal wavelet band.

use super::Plane;
use crate::rng::SplitMix64;

/// Standard deviation of additive white noise: the median absolute response to Immerkaer's
/// (1996) second-difference mask `[1 -2 1; -2 4 -2; 1 -2 1]` (which has gain 6 on white noise
/// and cancels smooth image content) divided by `6 * 0.6745`: Donoho's robust MAD rule applied
/// to the finest Laplacian band. Blur removes this band's image content, so on blurred photos
/// it is almost pure noise; the median ignores the edges that survive. Unlike a 2x2 Haar band,
/// the responses span many 8-bit steps, so the median is not quantised.
pub(crate) fn noise_sigma(plane: &Plane) -> f32 {
    let (h, w) = plane.dim();
    if h < 3 || w < 3 {
        return 0.0;
    }
    let data = plane.as_standard_layout();
    let px = data.as_slice().expect("standard layout");
    let iw = w - 2;
    let mut d = vec![0f32; (h - 2) * iw];
    // Row slices of equal length (interior column j + 1 is index j), so the loop vectorises.
    for (i, out) in (1..h - 1).zip(d.chunks_exact_mut(iw)) {
        let (a, b, c) = (
            &px[(i - 1) * w..i * w],
            &px[i * w..(i + 1) * w],
            &px[(i + 1) * w..(i + 2) * w],
        );
        let (a0, a1, a2) = (&a[..iw], &a[1..=iw], &a[2..]);
        let (b0, b1, b2) = (&b[..iw], &b[1..=iw], &b[2..]);
        let (c0, c1, c2) = (&c[..iw], &c[1..=iw], &c[2..]);
        for j in 0..iw {
            let v = (a0[j] + a2[j] + c0[j] + c2[j]) - 2.0 * (a1[j] + c1[j] + b0[j] + b2[j])
                + 4.0 * b1[j];
            out[j] = v.abs();
        }
    }
    let mid = d.len() / 2;
    let (_, m, _) = d.select_nth_unstable_by(mid, |a, b| a.total_cmp(b));
    *m / (6.0 * 0.6745)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn estimates_known_noise_on_smooth_image() {
        // deterministic pseudo-Gaussian noise (sum of 12 uniforms from an LCG)
        let mut s: u64 = 12345;
        let mut next = || {
            let mut acc = 0.0f32;
            for _ in 0..12 {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                acc += (s >> 40) as f32 / (1u64 << 24) as f32;
            }
            acc - 6.0
        };
        let p = Plane::from_shape_fn((256, 256), |(r, c)| {
            0.5 + 0.2 * (r as f32 * 0.03).sin() * (c as f32 * 0.02).cos()
        });
        let noisy = p.mapv(|v| v + 0.01 * next());
        let est = noise_sigma(&noisy);
        assert!((est - 0.01).abs() < 0.001, "{est}");
        assert!(noise_sigma(&p) < 0.001);
    }
}

/// Deterministic pseudo-random generator ([`SplitMix64`]) with Gaussian samples (Box-Muller),
/// so that `lookalike blur --seed N` and the tests are reproducible without extra crates.
#[derive(Debug, Clone)]
pub(crate) struct Rng {
    bits: SplitMix64,
    spare: Option<f64>,
}

impl Rng {
    /// A generator from a seed.
    pub(crate) fn new(seed: u64) -> Rng {
        Rng {
            bits: SplitMix64::new(seed ^ 0x9E37_79B9_7F4A_7C15),
            spare: None,
        }
    }

    /// Uniform in [0, 1).
    pub(crate) fn uniform(&mut self) -> f64 {
        self.bits.uniform()
    }

    /// Standard normal sample.
    pub(crate) fn normal(&mut self) -> f64 {
        if let Some(v) = self.spare.take() {
            return v;
        }
        let u1 = self.uniform().max(1e-300);
        let u2 = self.uniform();
        let r = (-2.0 * u1.ln()).sqrt();
        let t = 2.0 * std::f64::consts::PI * u2;
        self.spare = Some(r * t.sin());
        r * t.cos()
    }
}

/// Adds white Gaussian noise of standard deviation `sigma` (no clamping).
pub fn add_gaussian_noise(plane: &Plane, sigma: f32, seed: u64) -> Plane {
    let mut rng = Rng::new(seed);
    plane.mapv(|v| v + sigma * rng.normal() as f32)
}
