//! Small image primitives shared by features, restoration and evaluation.

/// The sample that index `i` (any integer) reads in a signal of length `n` extended by
/// symmetric reflection, the edge sample repeated: ..., 1, 0 | 0, 1, ..., n-1 | n-1, n-2, ...
pub fn mirror_index(i: isize, n: usize) -> usize {
    let n = n as isize;
    let m = i.rem_euclid(2 * n);
    (if m < n { m } else { 2 * n - 1 - m }) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mirror_index_repeats_the_edge_sample() {
        let got: Vec<usize> = (-4..8).map(|i| mirror_index(i, 4)).collect();
        assert_eq!(got, [3, 2, 1, 0, 0, 1, 2, 3, 3, 2, 1, 0]);
        assert_eq!(mirror_index(-1, 1), 0);
    }
}
