//! PCA projection fitted without labels on the collection: the HNSW graph works on the few
//! directions that carry the fused vectors' variance, so it is smaller and faster to build and search.
//!
//! Fitting is deterministic (a fixed, evenly spaced sample), so a lost projection is refitted
//! from SQLite exactly like the graph it belongs to.

use multiversion::multiversion;
use nalgebra::{DMatrix, SymmetricEigen};
use ndarray::linalg::general_mat_mul;
use ndarray::{Array1, Array2, ArrayView2, Axis, s};
use rayon::prelude::*;
use std::sync::atomic::AtomicBool;

use crate::ann::{NEVER_STOP, check_stop};
use crate::error::{Error, Result};

/// At most this many vectors are used to fit; beyond it an evenly spaced sample is taken.
pub const MAX_FIT_SAMPLES: usize = 20_000;
const MAGIC: &[u8; 8] = b"LKPCA\x01\0\0";

/// `x -> basis * (x - mean)`: the top principal directions of the fitted vectors.
#[derive(Debug, Clone, PartialEq)]
pub struct Projection {
    dim_in: usize,
    dim_out: usize,
    mean: Vec<f32>,
    /// `dim_out` rows of `dim_in` values, most variance first; orthonormal.
    basis: Vec<f32>,
    /// Share of the sample's total variance the kept directions carry.
    explained: f32,
}

impl Projection {
    /// Fits up to `max_dims` principal directions on `vectors` (all of one length); vectors
    /// with non-finite components are left out of the fit. Returns `None` when there is
    /// nothing to gain: fewer than two such vectors, vectors already no longer than `max_dims`,
    /// or vectors that do not vary (all equal: no direction carries variance).
    ///
    /// # Errors
    /// [`Error::VectorLength`] when a vector is not of the first one's length, naming its
    /// position in `vectors`.
    pub fn fit(vectors: &[&[f32]], max_dims: usize) -> Result<Option<Projection>> {
        Self::fit_stoppable(vectors, max_dims, &NEVER_STOP)
    }

    /// As [`Projection::fit`], looking at `stop` between the steps of the fit and between
    /// blocks of its large matrix products: [`Error::Interrupted`] once it is set.
    pub(crate) fn fit_stoppable(
        vectors: &[&[f32]],
        max_dims: usize,
        stop: &AtomicBool,
    ) -> Result<Option<Projection>> {
        check_stop(stop)?;
        let Some(first) = vectors.first() else {
            return Ok(None);
        };
        let dim_in = first.len();
        if let Some((i, v)) = vectors.iter().enumerate().find(|(_, v)| v.len() != dim_in) {
            crate::vector::check_length(&format!("vector {i}"), v, dim_in)?;
        }
        if vectors.len() < 2 || dim_in <= max_dims || max_dims == 0 {
            return Ok(None);
        }
        let step = vectors.len().div_ceil(MAX_FIT_SAMPLES);
        let sample: Vec<&[f32]> = vectors
            .iter()
            .step_by(step)
            .copied()
            .filter(|v| v.iter().all(|x| x.is_finite()))
            .collect();
        let n = sample.len();
        if n < 2 {
            return Ok(None);
        }
        let mut mean = vec![0.0f64; dim_in];
        for v in &sample {
            for (m, x) in mean.iter_mut().zip(v.iter()) {
                *m += *x as f64;
            }
        }
        mean.iter_mut().for_each(|m| *m /= n as f64);
        let centred =
            Array2::<f64>::from_shape_fn((n, dim_in), |(r, c)| sample[r][c] as f64 - mean[c]);
        check_stop(stop)?;
        // Eigen-decompose the smaller of the Gram (n x n) and covariance (d x d) matrices;
        // both have the same non-zero eigenvalues. Products go through ndarray's blocked GEMM.
        let (total, values, directions) = if n < dim_in {
            let gram = par_dot(centred.view(), centred.t(), stop)?;
            let (vals, vecs) = top_eigen(&gram, max_dims, stop)?;
            // Only kept directions are needed: v = X^T u / sqrt(lambda), all in one product.
            let kept: Vec<(f64, Vec<f64>)> = vals
                .iter()
                .zip(vecs)
                .filter(|(lambda, _)| **lambda > 0.0)
                .map(|(lambda, u)| (*lambda, u))
                .collect();
            let u = Array2::from_shape_fn((n, kept.len()), |(r, c)| kept[c].1[r]);
            let v = par_dot(centred.t(), u.view(), stop)?;
            let dirs = kept
                .iter()
                .enumerate()
                .map(|(c, (lambda, _))| v.column(c).iter().map(|x| x / lambda.sqrt()).collect())
                .collect();
            (trace(&gram), vals, dirs)
        } else {
            let covariance = par_dot(centred.t(), centred.view(), stop)?;
            let (vals, dirs) = top_eigen(&covariance, max_dims, stop)?;
            (trace(&covariance), vals, dirs)
        };
        let top = values.first().copied().unwrap_or(0.0);
        // Squared length of the sample: variance far below it is rounding in the mean.
        let energy: f64 = sample
            .iter()
            .flat_map(|v| v.iter())
            .map(|x| (*x as f64) * (*x as f64))
            .sum();
        if !(top > 1e-12 * energy && total.is_finite()) {
            // No variance (all vectors equal): no direction is better than another.
            return Ok(None);
        }
        let keep = values
            .iter()
            .take(max_dims.min(directions.len()))
            .take_while(|v| **v > top * 1e-9)
            .count();
        if keep == 0 {
            return Ok(None);
        }
        let kept: f64 = values[..keep].iter().sum();
        let basis = directions[..keep]
            .iter()
            .flat_map(|d| d.iter().map(|x| *x as f32))
            .collect();
        Ok(Some(Projection {
            dim_in,
            dim_out: keep,
            mean: mean.iter().map(|m| *m as f32).collect(),
            basis,
            explained: if total > 0.0 {
                (kept / total) as f32
            } else {
                1.0
            },
        }))
    }

    /// Length of the vectors it accepts.
    pub(crate) fn dim_in(&self) -> usize {
        self.dim_in
    }

    /// Length of the vectors it returns.
    pub(crate) fn dim_out(&self) -> usize {
        self.dim_out
    }

    /// Share of the fitted variance kept, in 0..=1.
    pub(crate) fn explained(&self) -> f32 {
        self.explained
    }

    /// Projects one vector (of length `dim_in`); non-finite components are taken as zero
    /// ([`crate::vector::sanitize`]).
    ///
    /// # Errors
    /// [`Error::VectorLength`] when `v` is not of the length the projection was fitted on.
    pub fn apply(&self, v: &[f32]) -> Result<Vec<f32>> {
        crate::vector::check_length("projected vector", v, self.dim_in)?;
        Ok(project(&self.basis, &self.mean, &crate::vector::finite(v)))
    }

    /// [`Projection::apply`], and the length of what it leaves out of `v`: its distance from
    /// the mean along the directions the projection drops.
    ///
    /// # Errors
    /// [`Error::VectorLength`] when `v` is not of the length the projection was fitted on.
    pub fn apply_with_residual(&self, v: &[f32]) -> Result<(Vec<f32>, f32)> {
        crate::vector::check_length("projected vector", v, self.dim_in)?;
        let v = crate::vector::finite(v);
        let projected = project(&self.basis, &self.mean, &v);
        let centred: f32 = v
            .iter()
            .zip(&self.mean)
            .map(|(x, m)| (x - m) * (x - m))
            .sum();
        let kept: f32 = projected.iter().map(|p| p * p).sum();
        let residual = (centred - kept).max(0.0).sqrt();
        Ok((projected, residual))
    }

    /// Little-endian serialisation: magic, dims, explained share, mean, basis.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(20 + 4 * (self.mean.len() + self.basis.len()));
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&(self.dim_in as u32).to_le_bytes());
        out.extend_from_slice(&(self.dim_out as u32).to_le_bytes());
        out.extend_from_slice(&self.explained.to_le_bytes());
        for x in self.mean.iter().chain(&self.basis) {
            out.extend_from_slice(&x.to_le_bytes());
        }
        out
    }

    /// Reads what `to_bytes` wrote; anything else is an error, never a panic.
    pub fn from_bytes(bytes: &[u8]) -> Result<Projection> {
        let bad = |why: &str| Error::InvalidInput(format!("PCA projection file: {why}"));
        if bytes.len() < 20 || &bytes[..8] != MAGIC {
            return Err(bad("not a lookalike projection"));
        }
        let word = |i: usize| [bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]];
        let dim_in = u32::from_le_bytes(word(8)) as usize;
        let dim_out = u32::from_le_bytes(word(12)) as usize;
        let explained = f32::from_le_bytes(word(16));
        let expected_len = dim_in
            .checked_mul(dim_out)
            .and_then(|f| f.checked_add(dim_in))
            .and_then(|f| f.checked_mul(4))
            .and_then(|b| b.checked_add(20));
        if dim_in == 0 || dim_out == 0 || expected_len != Some(bytes.len()) {
            return Err(bad("length does not match its dimensions"));
        }
        let values: Vec<f32> = bytes[20..]
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        Ok(Projection {
            dim_in,
            dim_out,
            mean: values[..dim_in].to_vec(),
            basis: values[dim_in..].to_vec(),
            explained,
        })
    }
}

/// `basis * (v - mean)`, `basis` holding rows of `mean.len()` values. Compiled also for AVX2
/// and chosen at run time (the same operations, so the same result).
#[multiversion(targets("x86_64+avx2+fma"))]
fn project(basis: &[f32], mean: &[f32], v: &[f32]) -> Vec<f32> {
    let centred: Vec<f32> = v.iter().zip(mean).map(|(x, m)| x - m).collect();
    basis
        .chunks_exact(mean.len())
        .map(|row| crate::vector::dot(row, &centred))
        .collect()
}

/// Extra directions the randomized eigensolver tracks beyond those asked for.
const OVERSAMPLING: usize = 64;
/// Power iterations of the randomized eigensolver. Four, as scikit-learn's randomized SVD
/// takes when the rank asked is above a tenth of the size: with ten, the projection kept the
/// same share of variance on wang, ukbench1000 and 3,000 generated photos, the same mAP within
/// 0.0002 (BENCHMARKS.md, "Graph build of a small collection"), and a fit of 3,000 vectors
/// took twice as long.
const POWER_ITERATIONS: usize = 4;

/// The `k` largest eigenvalues of the symmetric positive semi-definite `m`, largest first, with
/// their unit eigenvectors. A full decomposition costs O(size^3) (about 7 s at the fused
/// vectors' 1999 dimensions, paid at every graph rebuild), so for `k` well below the size it
/// uses randomized subspace iteration with a Rayleigh-Ritz step (Halko, Martinsson & Tropp,
/// "Finding structure with randomness", SIAM Review 53(2), 2011, algorithms 4.4 and 5.3):
/// a fixed pseudo-random start, so a refit gives the same projection. [`Error::Interrupted`]
/// once `stop` is set.
fn top_eigen(m: &Array2<f64>, k: usize, stop: &AtomicBool) -> Result<(Vec<f64>, Vec<Vec<f64>>)> {
    let size = m.nrows();
    let width = (k + OVERSAMPLING).min(size);
    if 2 * width >= size {
        let eig = SymmetricEigen::new(to_nalgebra(m));
        let order = descending(&eig.eigenvalues);
        return Ok(order
            .iter()
            .take(k)
            .map(|&i| {
                let v = eig.eigenvectors.column(i).iter().copied().collect();
                (eig.eigenvalues[i], v)
            })
            .unzip());
    }
    let mut state = 0x5EED_u64;
    let start = Array2::from_shape_fn((size, width), |_| centred_uniform(&mut state));
    let mut basis = orthonormal_columns(&par_dot(m.view(), start.view(), stop)?);
    for _ in 0..POWER_ITERATIONS {
        check_stop(stop)?;
        basis = orthonormal_columns(&par_dot(m.view(), basis.view(), stop)?);
    }
    let reduced = basis.t().dot(&par_dot(m.view(), basis.view(), stop)?);
    check_stop(stop)?;
    let eig = SymmetricEigen::new(to_nalgebra(&reduced));
    let order = descending(&eig.eigenvalues);
    Ok(order
        .iter()
        .take(k)
        .map(|&i| {
            let w = Array1::from_iter(eig.eigenvectors.column(i).iter().copied());
            (eig.eigenvalues[i], basis.dot(&w).to_vec())
        })
        .unzip())
}

/// Multiply-adds of one thread's share of a slice of a large product, between two looks at the
/// stop flag: about a quarter of a second.
const SLICE_MULTIPLY_ADDS: usize = 1 << 30;

/// `a . b`, with the columns of `b` split into one block per worker thread, each block's
/// product written in place, and the inner dimension cut into slices of whole 256-multiples
/// (the depth of the GEMM's own blocks), added up in order, `stop` looked at between them:
/// [`Error::Interrupted`] once it is set. Each element sums the products `a.dot(&b)` sums, in
/// the same blocks; small products are `a.dot(&b)`, on one thread.
fn par_dot(a: ArrayView2<f64>, b: ArrayView2<f64>, stop: &AtomicBool) -> Result<Array2<f64>> {
    par_dot_in_slices(a, b, stop, SLICE_MULTIPLY_ADDS)
}

/// [`par_dot`] with slices of about `slice` multiply-adds a thread.
fn par_dot_in_slices(
    a: ArrayView2<f64>,
    b: ArrayView2<f64>,
    stop: &AtomicBool,
    slice: usize,
) -> Result<Array2<f64>> {
    const SERIAL_UP_TO: usize = 1 << 22;
    check_stop(stop)?;
    let (rows, inner, cols) = (a.nrows(), a.ncols(), b.ncols());
    let threads = rayon::current_num_threads();
    if rows * inner * cols <= SERIAL_UP_TO {
        return Ok(a.dot(&b));
    }
    // Blocks in whole 16-column multiples, the width of the GEMM micro-kernels.
    let width = cols.div_ceil(threads).div_ceil(16) * 16;
    let depth = (slice * threads / (rows * cols).max(1)).div_ceil(256) * 256;
    let depth = depth.max(256);
    let mut out = Array2::<f64>::zeros((rows, cols));
    for from in (0..inner).step_by(depth) {
        check_stop(stop)?;
        let to = (from + depth).min(inner);
        let (a_slice, b_slice) = (a.slice(s![.., from..to]), b.slice(s![from..to, ..]));
        let beta = if from == 0 { 0.0 } else { 1.0 };
        let blocks: Vec<_> = out
            .axis_chunks_iter_mut(Axis(1), width)
            .zip(b_slice.axis_chunks_iter(Axis(1), width))
            .collect();
        blocks.into_par_iter().for_each(|(mut out_block, b_block)| {
            general_mat_mul(1.0, &a_slice, &b_block, beta, &mut out_block);
        });
    }
    Ok(out)
}

/// The next number of a 64-bit linear congruential generator (Knuth's MMIX constants), as a
/// uniform value in [-0.5, 0.5).
fn centred_uniform(state: &mut u64) -> f64 {
    *state = state
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    ((*state >> 11) as f64 / (1u64 << 53) as f64) - 0.5
}

/// An orthonormal basis of the columns' span (thin Householder QR).
fn orthonormal_columns(a: &Array2<f64>) -> Array2<f64> {
    let (rows, cols) = a.dim();
    let q = DMatrix::from_row_iterator(rows, cols, a.iter().copied())
        .qr()
        .q();
    Array2::from_shape_fn((rows, q.ncols()), |(r, c)| q[(r, c)])
}

fn to_nalgebra(m: &Array2<f64>) -> DMatrix<f64> {
    DMatrix::from_row_iterator(m.nrows(), m.ncols(), m.iter().copied())
}

fn trace(m: &Array2<f64>) -> f64 {
    m.diag().sum()
}

fn descending(values: &nalgebra::DVector<f64>) -> Vec<usize> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| values[b].total_cmp(&values[a]));
    order
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering;

    /// Points near a 3-dimensional subspace of a 40-dimensional space, plus small noise.
    fn low_rank_points(n: usize) -> Vec<Vec<f32>> {
        let mut state = 99u64;
        let mut next = || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 33) as f32 / (1u64 << 31) as f32) - 0.5
        };
        let axes: Vec<Vec<f32>> = (0..3).map(|_| (0..40).map(|_| next()).collect()).collect();
        (0..n)
            .map(|_| {
                let c: Vec<f32> = (0..3).map(|_| next() * 4.0).collect();
                (0..40)
                    .map(|j| 1.0 + (0..3).map(|a| c[a] * axes[a][j]).sum::<f32>() + next() * 0.01)
                    .collect()
            })
            .collect()
    }

    fn dist(a: &[f32], b: &[f32]) -> f32 {
        a.iter()
            .zip(b)
            .map(|(x, y)| (x - y) * (x - y))
            .sum::<f32>()
            .sqrt()
    }

    #[test]
    fn keeps_distances_of_low_rank_data_both_ways_of_fitting() {
        // 30 < 40 dims fits through the Gram matrix, 300 through the covariance.
        for n in [30, 300] {
            let pts = low_rank_points(n);
            let refs: Vec<&[f32]> = pts.iter().map(Vec::as_slice).collect();
            let p = Projection::fit(&refs, 8).unwrap().unwrap();
            assert_eq!(p.dim_in(), 40);
            assert!(p.explained() > 0.999, "{n}: {}", p.explained());
            let proj: Vec<Vec<f32>> = pts.iter().map(|v| p.apply(v).unwrap()).collect();
            for i in 0..10 {
                let (a, b) = (dist(&pts[i], &pts[i + 1]), dist(&proj[i], &proj[i + 1]));
                assert!((a - b).abs() < 0.05 * a.max(0.1), "{n}: {a} vs {b}");
            }
            // Basis rows are orthonormal.
            for r in 0..p.dim_out() {
                for s in 0..p.dim_out() {
                    let row = |k: usize| &p.basis[k * 40..(k + 1) * 40];
                    let dot: f32 = row(r).iter().zip(row(s)).map(|(a, b)| a * b).sum();
                    let want = if r == s { 1.0 } else { 0.0 };
                    assert!((dot - want).abs() < 1e-3, "{n}: <{r},{s}> = {dot}");
                }
            }
        }
    }

    #[test]
    fn the_residual_is_the_distance_the_projection_drops() {
        let pts = low_rank_points(300);
        let refs: Vec<&[f32]> = pts.iter().map(Vec::as_slice).collect();
        let p = Projection::fit(&refs, 3).unwrap().unwrap();
        let mut state = 5u64;
        for (i, v) in pts.iter().take(20).enumerate() {
            // A point off the fitted data too, so that much lies outside the projection.
            let v: Vec<f32> = v
                .iter()
                .map(|x| x + (i % 2) as f32 * centred_uniform(&mut state) as f32)
                .collect();
            let (a, b) = (&v, &pts[(i + 7) % pts.len()]);
            let ((pa, ra), (pb, rb)) = (
                p.apply_with_residual(a).unwrap(),
                p.apply_with_residual(b).unwrap(),
            );
            assert_eq!(pa, p.apply(a).unwrap());
            let whole = dist(a, b);
            let bound = (dist(&pa, &pb).powi(2) + (ra - rb).powi(2)).sqrt();
            assert!(
                bound <= whole * (1.0 + 1e-4) + 1e-5,
                "{i}: {bound} > {whole}"
            );
            let centred: f32 = a.iter().zip(&p.mean).map(|(x, m)| (x - m).powi(2)).sum();
            let kept: f32 = pa.iter().map(|x| x * x).sum();
            assert!(
                (ra * ra + kept - centred).abs() < 1e-3 * centred.max(1.0),
                "{i}"
            );
        }
    }

    /// The product split over threads, and over slices of the inner dimension, equals the
    /// serial one; a stop flag set before it stops it.
    #[test]
    fn parallel_product_equals_the_serial_one() {
        let mut state = 3u64;
        let a = Array2::from_shape_fn((300, 700), |_| centred_uniform(&mut state));
        let b = Array2::from_shape_fn((700, 150), |_| centred_uniform(&mut state));
        assert!(
            a.nrows() * a.ncols() * b.ncols() > 1 << 22,
            "the test must exercise the split"
        );
        let serial = a.dot(&b);
        // one slice, then slices of 256 of the 700 inner values
        for slice in [SLICE_MULTIPLY_ADDS, 1] {
            let parallel = par_dot_in_slices(a.view(), b.view(), &NEVER_STOP, slice).unwrap();
            assert_eq!(parallel.dim(), serial.dim());
            let worst = parallel
                .iter()
                .zip(&serial)
                .fold(0.0f64, |m, (p, s)| m.max((p - s).abs()));
            assert!(worst <= 1e-12, "largest difference {worst}");
        }
        let stop = AtomicBool::new(true);
        assert!(matches!(
            par_dot(a.view(), b.view(), &stop),
            Err(Error::Interrupted)
        ));
    }

    /// A fit stops when asked: at once when the flag is set before it, and between blocks of
    /// its products when it is set during them, where it used to run to the end.
    #[test]
    fn a_fit_stops_when_asked() {
        let pts = low_rank_points(300);
        let refs: Vec<&[f32]> = pts.iter().map(Vec::as_slice).collect();
        let stop = AtomicBool::new(true);
        assert!(matches!(
            Projection::fit_stoppable(&refs, 8, &stop),
            Err(Error::Interrupted)
        ));
        // a sample whose covariance product alone is billions of multiply-adds
        let mut state = 11u64;
        let (n, dim) = (4000, 1500);
        let big: Vec<Vec<f32>> = (0..n)
            .map(|_| {
                (0..dim)
                    .map(|_| centred_uniform(&mut state) as f32)
                    .collect()
            })
            .collect();
        let refs: Vec<&[f32]> = big.iter().map(Vec::as_slice).collect();
        let stop = AtomicBool::new(false);
        let started = std::time::Instant::now();
        let fitted = std::thread::scope(|scope| {
            scope.spawn(|| {
                std::thread::sleep(std::time::Duration::from_millis(300));
                stop.store(true, Ordering::Relaxed);
            });
            Projection::fit_stoppable(&refs, 128, &stop)
        });
        assert!(
            matches!(fitted, Err(Error::Interrupted)),
            "not stopped: {:?} after {:?}",
            fitted.map(|p| p.map(|p| p.dim_out())),
            started.elapsed()
        );
        eprintln!("fit stopped after {:?}", started.elapsed());
    }

    #[test]
    fn randomized_eigensolver_matches_the_full_decomposition() {
        // 400 x 400 covariance with a decaying spectrum: large enough for the randomized path.
        let mut state = 7u64;
        let x = Array2::from_shape_fn((600, 400), |(_, c)| {
            centred_uniform(&mut state) / (1.0 + c as f64)
        });
        let m = x.t().dot(&x);
        let k = 20;
        let (values, vectors) = top_eigen(&m, k, &NEVER_STOP).unwrap();
        assert!(
            2 * (k + OVERSAMPLING) < 400,
            "the test must exercise the randomized path"
        );
        let full = SymmetricEigen::new(to_nalgebra(&m));
        let order = descending(&full.eigenvalues);
        for (i, &j) in order.iter().take(k).enumerate() {
            let exact = full.eigenvalues[j];
            assert!(
                (values[i] - exact).abs() <= 1e-9 * exact,
                "eigenvalue {i}: {} vs {exact}",
                values[i]
            );
            // Same direction up to sign.
            let dot: f64 = full
                .eigenvectors
                .column(j)
                .iter()
                .zip(&vectors[i])
                .map(|(a, b)| a * b)
                .sum();
            assert!(
                (dot.abs() - 1.0).abs() < 1e-6,
                "eigenvector {i}: |cos| {}",
                dot.abs()
            );
        }
    }

    #[test]
    fn many_copies_of_few_points_keep_their_distances() {
        // 600 vectors of 500 dimensions, only 10 distinct: a rank-9 covariance on the
        // randomized path, whose spare directions must be dropped, not kept as noise.
        let mut state = 11u64;
        let distinct: Vec<Vec<f32>> = (0..10)
            .map(|_| {
                (0..500)
                    .map(|_| centred_uniform(&mut state) as f32)
                    .collect()
            })
            .collect();
        let pts: Vec<Vec<f32>> = (0..600).map(|i| distinct[i % 10].clone()).collect();
        let refs: Vec<&[f32]> = pts.iter().map(Vec::as_slice).collect();
        let p = Projection::fit(&refs, 128).unwrap().unwrap();
        assert!(p.dim_out() <= 9, "kept {} directions", p.dim_out());
        assert!(p.explained() > 0.999, "{}", p.explained());
        for i in 0..9 {
            let (a, b) = (&distinct[i], &distinct[i + 1]);
            let (d, e) = (dist(a, b), dist(&p.apply(a).unwrap(), &p.apply(b).unwrap()));
            assert!((d - e).abs() < 1e-3 * d, "{d} vs {e}");
        }
    }

    #[test]
    fn nothing_to_fit_gives_none() {
        let pts = low_rank_points(10);
        let refs: Vec<&[f32]> = pts.iter().map(Vec::as_slice).collect();
        assert!(Projection::fit(&refs, 40).unwrap().is_none());
        assert!(Projection::fit(&refs[..1], 8).unwrap().is_none());
        assert!(Projection::fit(&[], 8).unwrap().is_none());
    }

    #[test]
    fn bytes_round_trip_and_damage_is_an_error() {
        let pts = low_rank_points(50);
        let refs: Vec<&[f32]> = pts.iter().map(Vec::as_slice).collect();
        let p = Projection::fit(&refs, 5).unwrap().unwrap();
        let bytes = p.to_bytes();
        assert_eq!(Projection::from_bytes(&bytes).unwrap(), p);
        assert!(Projection::from_bytes(&bytes[..bytes.len() - 1]).is_err());
        assert!(
            Projection::from_bytes(b"LKPCA\x01\0\0\xff\xff\xff\xff\xff\xff\xff\xff\0\0\0\0")
                .is_err()
        );
        assert!(Projection::from_bytes(b"short").is_err());
    }

    #[test]
    fn identical_vectors_have_no_projection() {
        // Both ways of fitting (Gram: fewer vectors than dims; covariance: more), values whose
        // mean is not exact in binary.
        for n in [2, 3, 30, 300] {
            let v: Vec<f32> = (0..40).map(|i| 0.1 + i as f32 * 0.3).collect();
            let pts = vec![v; n];
            let refs: Vec<&[f32]> = pts.iter().map(Vec::as_slice).collect();
            assert_eq!(Projection::fit(&refs, 8).unwrap(), None, "{n}");
            let zeros = vec![vec![0.0f32; 40]; n];
            let refs: Vec<&[f32]> = zeros.iter().map(Vec::as_slice).collect();
            assert_eq!(Projection::fit(&refs, 8).unwrap(), None, "{n}");
        }
    }

    #[test]
    fn non_finite_vectors_are_left_out_of_the_fit_and_projected_as_zero() {
        let mut pts = low_rank_points(60);
        let clean = Projection::fit(&pts.iter().map(Vec::as_slice).collect::<Vec<_>>(), 8)
            .unwrap()
            .unwrap();
        pts.push(vec![f32::NAN; 40]);
        pts.push(vec![f32::INFINITY; 40]);
        let refs: Vec<&[f32]> = pts.iter().map(Vec::as_slice).collect();
        assert_eq!(Projection::fit(&refs, 8).unwrap().unwrap(), clean);
        let mut v = pts[0].clone();
        v[3] = f32::NAN;
        let projected = clean.apply(&v).unwrap();
        assert!(projected.iter().all(|x| x.is_finite()));
        v[3] = 0.0;
        assert_eq!(projected, clean.apply(&v).unwrap());
        // Only one finite vector: nothing to fit.
        let refs: Vec<&[f32]> = vec![&pts[0], &pts[60], &pts[61]];
        assert_eq!(Projection::fit(&refs, 8).unwrap(), None);
    }

    /// A vector of another length than the fitted ones is refused, by both ways of
    /// projecting, with both lengths (a debug assertion panicked, a release build read past
    /// or short of the mean).
    #[test]
    fn a_vector_of_another_length_is_refused() {
        let pts = low_rank_points(50);
        let refs: Vec<&[f32]> = pts.iter().map(Vec::as_slice).collect();
        let p = Projection::fit(&refs, 5).unwrap().unwrap();
        for len in [0, 3, 39, 41] {
            let v = vec![1.0; len];
            let refused = |e: Error| matches!(e, Error::VectorLength { found, expected: 40, .. } if found == len);
            assert!(refused(p.apply(&v).unwrap_err()), "{len}");
            assert!(refused(p.apply_with_residual(&v).unwrap_err()), "{len}");
        }
    }

    /// Vectors of mixed lengths are refused, the first of another length than the first
    /// vector named by its position (it was left out of the fit, which went on without it).
    #[test]
    fn vectors_of_mixed_lengths_are_refused() {
        let mut pts = low_rank_points(50);
        pts[7].truncate(39);
        pts[9].push(1.0);
        let refs: Vec<&[f32]> = pts.iter().map(Vec::as_slice).collect();
        let refused = Projection::fit(&refs, 5).unwrap_err();
        assert!(
            matches!(&refused, Error::VectorLength { what, found: 39, expected: 40 } if what == "vector 7"),
            "{refused}"
        );
        // too few vectors to fit, mixed all the same
        assert!(Projection::fit(&refs[6..8], 5).is_err());
    }
}
