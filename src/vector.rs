//! Vector kernels shared by the graph, PCA and features: distances, dot products and the
//! replacement of non-finite components.

use std::borrow::Cow;

use crate::error::{Error, Result};

/// [`Error::VectorLength`] unless `v` holds `expected` values; `what` names `v` in it.
pub(crate) fn check_length(what: &str, v: &[f32], expected: usize) -> Result<()> {
    if v.len() == expected {
        return Ok(());
    }
    Err(Error::VectorLength {
        what: what.to_string(),
        found: v.len(),
        expected,
    })
}

/// Replaces non-finite components (NaN, infinities) by zero and returns how many there were.
/// The graph library panics on a NaN distance; a zero component adds nothing to a distance, so
/// the rest of the vector stays comparable.
pub fn sanitize(v: &mut [f32]) -> usize {
    let mut bad = 0;
    for x in v.iter_mut().filter(|x| !x.is_finite()) {
        *x = 0.0;
        bad += 1;
    }
    bad
}

/// `v` with its non-finite components replaced by zero (borrowed when there are none).
pub fn finite(v: &[f32]) -> Cow<'_, [f32]> {
    if v.iter().all(|x| x.is_finite()) {
        Cow::Borrowed(v)
    } else {
        let mut owned = v.to_vec();
        sanitize(&mut owned);
        Cow::Owned(owned)
    }
}

/// `sum f(a_i, b_i)` over two equal-length vectors, in eight independent accumulators so the
/// compiler vectorises it.
#[inline(always)]
fn lanes8(a: &[f32], b: &[f32], f: impl Fn(f32, f32) -> f32) -> f32 {
    let mut acc = [0.0f32; 8];
    let chunks_a = a.chunks_exact(8);
    let chunks_b = b.chunks_exact(8);
    let (ra, rb) = (chunks_a.remainder(), chunks_b.remainder());
    for (ca, cb) in chunks_a.zip(chunks_b) {
        for i in 0..8 {
            acc[i] += f(ca[i], cb[i]);
        }
    }
    acc.iter().sum::<f32>() + ra.iter().zip(rb).map(|(x, y)| f(*x, *y)).sum::<f32>()
}

/// Squared Euclidean distance between two equal-length vectors.
///
/// # Panics
/// When `a` and `b` are of different lengths: a distance over their common start would read
/// different vectors as near, or the same.
#[inline]
pub fn squared_l2(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(
        a.len(),
        b.len(),
        "squared_l2 of vectors of different lengths"
    );
    lanes8(a, b, |x, y| (x - y) * (x - y))
}

/// Dot product of two equal-length vectors.
///
/// # Panics
/// When `a` and `b` are of different lengths.
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "dot of vectors of different lengths");
    lanes8(a, b, |x, y| x * y)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn squared_l2_matches_naive() {
        let a: Vec<f32> = (0..19).map(|i| i as f32 * 0.5).collect();
        let b: Vec<f32> = (0..19).map(|i| (i * i) as f32 * 0.1).collect();
        let naive: f32 = a.iter().zip(&b).map(|(x, y)| (x - y) * (x - y)).sum();
        assert!((squared_l2(&a, &b) - naive).abs() < 1e-3);
    }

    /// Vectors of different lengths are refused (their distance was over the common start: 0
    /// between `[1, 2]` and `[1, 2, 5]`).
    #[test]
    #[should_panic(expected = "squared_l2 of vectors of different lengths")]
    fn squared_l2_of_different_lengths_panics() {
        squared_l2(&[1.0, 2.0], &[1.0, 2.0, 5.0]);
    }

    #[test]
    #[should_panic(expected = "dot of vectors of different lengths")]
    fn dot_of_different_lengths_panics() {
        dot(&[1.0; 9], &[1.0; 8]);
    }

    #[test]
    fn dot_matches_naive_and_finite_zeroes_only_bad_components() {
        let a: Vec<f32> = (0..13).map(|i| i as f32 - 6.0).collect();
        let naive: f32 = a.iter().map(|x| x * x).sum();
        assert_eq!(dot(&a, &a), naive);
        let v = [1.0, f32::NAN, -2.0, f32::INFINITY];
        assert_eq!(finite(&v).as_ref(), &[1.0, 0.0, -2.0, 0.0]);
        assert!(matches!(finite(&a), Cow::Borrowed(_)));
    }
}
