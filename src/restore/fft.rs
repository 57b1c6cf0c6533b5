//! 2-D real FFTs (cached plans, rayon over rows/columns), boundary padding and FFT convolution.
//!
//! Spectra are stored transposed: `cols/2 + 1` frequency columns, each a contiguous run of
//! `rows` complex values, so that the column FFTs work on contiguous memory.
//!
//! Boundaries: images are padded to an FFT-friendly size with a *pure* symmetric reflection
//! (`d c b a | a b c d | d c b a`, scipy's "symm") for `pure` pixels on each side; the rest of
//! the gap cross-fades (raised cosine) from the reflection of one border to the reflection of the
//! opposite one, so the padded image is smooth across the periodic wrap and deconvolution does
//! not ring at the borders. Convolution is exact symmetric-boundary convolution when `pure` is at
//! least the kernel radius.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use rayon::prelude::*;
use realfft::{ComplexToReal, RealFftPlanner, RealToComplex};
use rustfft::num_complex::Complex32;
use rustfft::{Fft, FftPlanner};

use super::Plane;
use super::psf::Psf;
#[cfg(test)]
use crate::imageops::mirror_index;

/// A 2-D spectrum of a real `rows x cols` image (transposed half-plane layout).
#[derive(Debug, Clone)]
pub(crate) struct Spectrum {
    /// Image rows.
    pub(crate) rows: usize,
    /// Image columns.
    pub(crate) cols: usize,
    /// `(cols/2 + 1) * rows` values; frequency (r, c) is at `c * rows + r`.
    pub(crate) data: Vec<Complex32>,
}

impl Spectrum {}

/// Signed frequencies `(fy, fx)` in cycles/pixel of transposed-spectrum index `i`.
pub(crate) fn freq_of(i: usize, rows: usize, cols: usize) -> (f32, f32) {
    let c = i / rows;
    let r = i % rows;
    let fy = if r <= rows / 2 {
        r as f32
    } else {
        r as f32 - rows as f32
    } / rows as f32;
    (fy, c as f32 / cols as f32)
}

/// Planned 2-D real FFT of a fixed size.
pub(crate) struct Fft2 {
    rows: usize,
    cols: usize,
    r2c: Arc<dyn RealToComplex<f32>>,
    c2r: Arc<dyn ComplexToReal<f32>>,
    cfwd: Arc<dyn Fft<f32>>,
    cinv: Arc<dyn Fft<f32>>,
}

type Cache = Mutex<HashMap<(usize, usize), Arc<Fft2>>>;

fn cache() -> &'static Cache {
    static C: OnceLock<Cache> = OnceLock::new();
    C.get_or_init(|| Mutex::new(HashMap::new()))
}

const ROW_CHUNK: usize = 16;

impl Fft2 {
    /// The (cached) plan for `rows x cols`; `cols` should be even for best speed.
    pub(crate) fn get(rows: usize, cols: usize) -> Arc<Fft2> {
        let mut c = cache().lock().unwrap_or_else(|p| p.into_inner());
        c.entry((rows, cols))
            .or_insert_with(|| {
                let mut rp = RealFftPlanner::<f32>::new();
                let mut cp = FftPlanner::<f32>::new();
                Arc::new(Fft2 {
                    rows,
                    cols,
                    r2c: rp.plan_fft_forward(cols),
                    c2r: rp.plan_fft_inverse(cols),
                    cfwd: cp.plan_fft_forward(rows),
                    cinv: cp.plan_fft_inverse(rows),
                })
            })
            .clone()
    }

    /// Forward transform of a row-major `rows x cols` image.
    pub(crate) fn forward(&self, input: &[f32]) -> Spectrum {
        let mut out = Spectrum {
            rows: self.rows,
            cols: self.cols,
            data: vec![Complex32::default(); (self.cols / 2 + 1) * self.rows],
        };
        self.forward_into(input, &mut out);
        out
    }

    /// Forward transform into an existing spectrum of the right size.
    pub(crate) fn forward_into(&self, input: &[f32], out: &mut Spectrum) {
        let (h, w) = (self.rows, self.cols);
        let cc = w / 2 + 1;
        assert_eq!(input.len(), h * w);
        assert_eq!(out.data.len(), h * cc);
        let mut tmp = vec![Complex32::default(); h * cc];
        let r2c = &self.r2c;
        input
            .par_chunks(w * ROW_CHUNK)
            .zip(tmp.par_chunks_mut(cc * ROW_CHUNK))
            .for_each(|(inp, outp)| {
                let mut buf = vec![0f32; w];
                let mut scratch = r2c.make_scratch_vec();
                for (irow, orow) in inp.chunks(w).zip(outp.chunks_mut(cc)) {
                    buf.copy_from_slice(irow);
                    r2c.process_with_scratch(&mut buf, orow, &mut scratch)
                        .expect("buffer sizes match the plan");
                }
            });
        transpose(&tmp, &mut out.data, h, cc);
        let f = &self.cfwd;
        out.data.par_chunks_mut(h * 4).for_each(|cols| {
            let mut scratch = vec![Complex32::default(); f.get_inplace_scratch_len()];
            f.process_with_scratch(cols, &mut scratch);
        });
    }

    /// Inverse transform, normalised (so `inverse(forward(x)) == x`); consumes `spec` as work space.
    pub(crate) fn inverse_into(&self, spec: &mut Spectrum, out: &mut [f32]) {
        let (h, w) = (self.rows, self.cols);
        let cc = w / 2 + 1;
        assert_eq!(out.len(), h * w);
        let f = &self.cinv;
        spec.data.par_chunks_mut(h * 4).for_each(|cols| {
            let mut scratch = vec![Complex32::default(); f.get_inplace_scratch_len()];
            f.process_with_scratch(cols, &mut scratch);
        });
        let mut tmp = vec![Complex32::default(); h * cc];
        transpose(&spec.data, &mut tmp, cc, h);
        let scale = 1.0 / (h * w) as f32;
        let c2r = &self.c2r;
        tmp.par_chunks_mut(cc * ROW_CHUNK)
            .zip(out.par_chunks_mut(w * ROW_CHUNK))
            .for_each(|(inp, outp)| {
                let mut scratch = c2r.make_scratch_vec();
                for (irow, orow) in inp.chunks_mut(cc).zip(outp.chunks_mut(w)) {
                    irow[0].im = 0.0;
                    if w % 2 == 0 {
                        irow[cc - 1].im = 0.0;
                    }
                    c2r.process_with_scratch(irow, orow, &mut scratch)
                        .expect("buffer sizes match the plan");
                    for v in orow.iter_mut() {
                        *v *= scale;
                    }
                }
            });
    }

    /// Inverse transform returning a new buffer.
    #[cfg(test)]
    pub(crate) fn inverse(&self, mut spec: Spectrum) -> Vec<f32> {
        let mut out = vec![0f32; self.rows * self.cols];
        self.inverse_into(&mut spec, &mut out);
        out
    }
}

/// Blocked parallel transpose of a row-major `rows x cols` matrix into `cols x rows`.
fn transpose<T: Copy + Send + Sync>(src: &[T], dst: &mut [T], rows: usize, cols: usize) {
    const B: usize = 16;
    dst.par_chunks_mut(rows * B)
        .enumerate()
        .for_each(|(bi, chunk)| {
            let c0 = bi * B;
            let nc = chunk.len() / rows;
            for r0 in (0..rows).step_by(B) {
                let r1 = (r0 + B).min(rows);
                for r in r0..r1 {
                    let srow = &src[r * cols + c0..r * cols + c0 + nc];
                    for (k, &v) in srow.iter().enumerate() {
                        chunk[k * rows + r] = v;
                    }
                }
            }
        });
}

/// Smallest even size `>= n` whose only prime factors are 2, 3, 5 and 7 (fast for rustfft).
pub(crate) fn fast_size(n: usize) -> usize {
    let mut m = n.max(2);
    loop {
        if m.is_multiple_of(2) {
            let mut k = m;
            for p in [2, 3, 5, 7] {
                while k.is_multiple_of(p) {
                    k /= p;
                }
            }
            if k == 1 {
                return m;
            }
        }
        m += 1;
    }
}

/// An image embedded in a larger periodic canvas; the image occupies `[0..h, 0..w]`.
#[derive(Debug, Clone)]
pub(crate) struct Padded {
    /// Row-major canvas `rows x cols`.
    pub(crate) data: Vec<f32>,
    /// Canvas rows (FFT-friendly).
    pub(crate) rows: usize,
    /// Canvas columns (FFT-friendly, even).
    pub(crate) cols: usize,
    /// Image rows.
    pub(crate) h: usize,
    /// Image columns.
    pub(crate) w: usize,
}

impl Padded {
    /// Pads `plane` with `pure` pixels of exact reflection each side and at least `fade` more
    /// pixels of cross-faded reflection, rounded up to FFT-friendly sizes.
    pub(crate) fn new(plane: &Plane, pure: usize, fade: usize) -> Padded {
        let (h, w) = plane.dim();
        let rows = fast_size(h + 2 * pure + fade);
        let cols = fast_size(w + 2 * pure + fade);
        Padded::with_size(plane, pure, rows, cols)
    }

    /// Pads into an explicit canvas size (each at least the image size).
    pub(crate) fn with_size(plane: &Plane, pure: usize, rows: usize, cols: usize) -> Padded {
        let (h, w) = plane.dim();
        assert!(rows >= h && cols >= w && h > 0 && w > 0);
        let mut data = vec![0f32; rows * cols];
        let src = plane.as_standard_layout();
        let src = src.as_slice().expect("standard layout");
        let xw = extension_weights(w, cols, pure);
        data.par_chunks_mut(cols)
            .take(h)
            .zip(src.par_chunks(w))
            .for_each(|(dst, s)| {
                dst[..w].copy_from_slice(s);
                for (t, &(a, b, wt)) in xw.iter().enumerate() {
                    dst[w + t] = wt * s[a] + (1.0 - wt) * s[b];
                }
            });
        let yw = extension_weights(h, rows, pure);
        let (top, bottom) = data.split_at_mut(h * cols);
        bottom
            .par_chunks_mut(cols)
            .zip(yw.par_iter())
            .for_each(|(dst, &(a, b, wt))| {
                let ra = &top[a * cols..(a + 1) * cols];
                let rb = &top[b * cols..(b + 1) * cols];
                for ((d, &x), &y) in dst.iter_mut().zip(ra).zip(rb) {
                    *d = wt * x + (1.0 - wt) * y;
                }
            });
        Padded {
            data,
            rows,
            cols,
            h,
            w,
        }
    }

    /// The image part of a canvas-sized buffer.
    pub(crate) fn crop(&self, buf: &[f32]) -> Plane {
        let mut out = Plane::zeros((self.h, self.w));
        for (r, mut row) in out.rows_mut().into_iter().enumerate() {
            let s = &buf[r * self.cols..r * self.cols + self.w];
            for (d, &v) in row.iter_mut().zip(s) {
                *d = v;
            }
        }
        out
    }
}

/// For each gap position `t` (after the last image sample, wrapping to the first), the two
/// reflected source indices and the weight of the first.
fn extension_weights(n: usize, total: usize, pure: usize) -> Vec<(usize, usize, f32)> {
    let g = total - n;
    let pure = pure.min(g / 2);
    let fade = g - 2 * pure;
    let refl = |d: usize| {
        let m = d % (2 * n);
        if m < n { m } else { 2 * n - 1 - m }
    };
    (0..g)
        .map(|t| {
            let right = n - 1 - refl(t); // reflection about the last sample
            let left = refl(g - 1 - t); // reflection about the first sample (wrapping)
            let wt = if t < pure {
                1.0
            } else if t >= pure + fade {
                0.0
            } else {
                let u = (t - pure) as f32 + 0.5;
                0.5 * (1.0 + (std::f32::consts::PI * u / fade as f32).cos())
            };
            (right, left, wt)
        })
        .collect()
}

/// Spectrum of `psf` on a `rows x cols` canvas, kernel centre at the origin.
pub(crate) fn psf_spectrum(psf: &Psf, rows: usize, cols: usize) -> Spectrum {
    let k = psf.kernel();
    let (kh, kw) = k.dim();
    let (ry, rx) = (kh / 2, kw / 2);
    assert!(kh <= rows && kw <= cols, "PSF larger than the canvas");
    let mut buf = vec![0f32; rows * cols];
    for ((i, j), &v) in k.indexed_iter() {
        let r = (i + rows - ry) % rows;
        let c = (j + cols - rx) % cols;
        buf[r * cols + c] += v;
    }
    Fft2::get(rows, cols).forward(&buf)
}

/// Pointwise `a * b` (or `a * conj(b)`) into `a`.
pub(crate) fn multiply(a: &mut Spectrum, b: &Spectrum, conj: bool) {
    a.data
        .par_chunks_mut(4096)
        .zip(b.data.par_chunks(4096))
        .for_each(|(x, y)| {
            for (p, q) in x.iter_mut().zip(y) {
                *p *= if conj { q.conj() } else { *q };
            }
        });
}

/// Convolves `plane` with `psf` using symmetric ("symm") boundaries, via FFT; the same result
/// as `scipy.signal.convolve2d(plane, psf, "same", boundary="symm")` for odd kernels. An
/// empty plane is returned as it is.
pub fn convolve(plane: &Plane, psf: &Psf) -> Plane {
    if plane.is_empty() {
        return plane.clone();
    }
    let (ry, rx) = psf.radius();
    let pure = ry.max(rx);
    let pad = Padded::new(plane, pure, 2);
    let fft = Fft2::get(pad.rows, pad.cols);
    let mut x = fft.forward(&pad.data);
    let k = psf_spectrum(psf, pad.rows, pad.cols);
    multiply(&mut x, &k, false);
    let mut out = vec![0f32; pad.rows * pad.cols];
    fft.inverse_into(&mut x, &mut out);
    pad.crop(&out)
}

/// Direct spatial convolution with symmetric boundaries (reference / small kernels).
#[cfg(test)]
pub(crate) fn convolve_direct(plane: &Plane, psf: &Psf) -> Plane {
    let (h, w) = plane.dim();
    let k = psf.kernel();
    let (ry, rx) = psf.radius();
    let refl = mirror_index;
    let mut out = vec![0f32; h * w];
    out.par_chunks_mut(w).enumerate().for_each(|(r, row)| {
        for (c, o) in row.iter_mut().enumerate() {
            let mut acc = 0f32;
            for ((i, j), &kv) in k.indexed_iter() {
                let y = refl(r as isize + ry as isize - i as isize, h);
                let x = refl(c as isize + rx as isize - j as isize, w);
                acc += kv * plane[[y, x]];
            }
            *o = acc;
        }
    });
    Plane::from_shape_vec((h, w), out).expect("buffer is h*w")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn test_image(h: usize, w: usize) -> Plane {
        Plane::from_shape_fn((h, w), |(r, c)| {
            let (x, y) = (c as f32 / w as f32, r as f32 / h as f32);
            0.5 + 0.3 * (7.0 * x + 3.0 * y * y).sin() * (5.0 * y).cos()
                + 0.1 * ((r * 7 + c * 13) % 11) as f32 / 11.0
        })
    }

    #[test]
    fn separable_gaussian_blur_matches_fft_convolution() {
        let plane = Plane::from_shape_fn((37, 52), |(y, x)| {
            ((x * 7 + y * 13) % 17) as f32 / 17.0 + 0.2 * (x as f32 * 0.3).sin()
        });
        for sigma in [0.4f32, 1.0, 2.0, 3.5] {
            let want = convolve(&plane, &Psf::gaussian_clamped(sigma));
            let got = crate::imageops::gaussian_blur(&plane, sigma);
            let worst = crate::test_support::largest_difference(&want, &got);
            assert!(worst < 1e-5, "sigma {sigma}: {worst}");
        }
        assert_eq!(crate::imageops::gaussian_blur(&plane, 0.0), plane);
    }

    #[test]
    fn forward_inverse_round_trip() {
        for (h, w) in [(30, 42), (17, 64), (64, 30)] {
            let x: Vec<f32> = (0..h * w)
                .map(|i| ((i * 37) % 101) as f32 / 101.0)
                .collect();
            let f = Fft2::get(h, w);
            let y = f.inverse(f.forward(&x));
            let err = crate::test_support::largest_difference(&x, &y);
            assert!(err < 1e-5, "{h}x{w}: {err}");
        }
    }

    #[test]
    fn convolving_a_delta_gives_the_kernel() {
        let psf = Psf::motion_clamped(9.0, 30.0);
        let (kh, kw) = psf.kernel().dim();
        let mut img = Plane::zeros((41, 40));
        img[[20, 19]] = 1.0;
        let out = convolve(&img, &psf);
        for i in 0..kh {
            for j in 0..kw {
                let v = out[[20 + i - kh / 2, 19 + j - kw / 2]];
                assert!((v - psf.kernel()[[i, j]]).abs() < 1e-6);
            }
        }
        assert!((out.sum() - 1.0).abs() < 1e-4);
    }

    #[test]
    fn fft_convolution_matches_direct_symmetric_boundary() {
        let img = test_image(37, 52);
        for psf in [
            Psf::gaussian_clamped(2.0),
            Psf::disk_clamped(3.0),
            Psf::motion_clamped(7.0, 20.0),
        ] {
            let a = convolve(&img, &psf);
            let b = convolve_direct(&img, &psf);
            let err = crate::test_support::largest_difference(&a, &b);
            assert!(err < 1e-5, "{err}");
        }
    }

    #[test]
    fn padding_is_reflective_then_smooth() {
        let img = test_image(20, 24);
        let p = Padded::new(&img, 5, 10);
        // pure reflection next to the right border and (wrapping) the left border
        for r in 0..20 {
            for t in 0..5 {
                assert_eq!(p.data[r * p.cols + 24 + t], img[[r, 23 - t]]);
                assert_eq!(p.data[r * p.cols + p.cols - 1 - t], img[[r, t]]);
            }
        }
        assert!(fast_size(1037) >= 1037 && fast_size(1037).is_multiple_of(2));
    }
}
