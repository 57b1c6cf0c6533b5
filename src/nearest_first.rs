//! Nearest first: query expansion and augmented stored vectors rank by neighbourhood, which
//! favours images typical of their kind and can push an example's own original (the sharp
//! photo behind a blurred, recompressed or cropped copy) below one of its neighbours. The head
//! of that ranking is reordered once: the candidate nearest to the example itself, by the
//! distance `query` reports (`Fusion::example_distance`: fused distance, with a blurred
//! example's LBP weight on the blur-canonical texture), goes first; the rest keep their
//! neighbourhood order.
//!
//! The first result is then the image that looks most like the example, as a user expects,
//! and the list below it keeps what expansion and augmentation gain for "more of the same
//! kind" (BENCHMARKS.md: wang's blurred copies at sigma 3 recall@1 0.90 -> 1.00 with them).

/// Candidates at the head of the ranking compared by distance to the example (the default `query -k`).
pub(crate) const POOL: usize = 10;

/// Moves the entry of the first [`POOL`] of `ranking` with the smallest `plain_distance` to
/// the front, the others keeping their order. Returns true when the order changed.
pub(crate) fn promote<T>(ranking: &mut [T], plain_distance: impl Fn(&T) -> f32) -> bool {
    let pool = ranking.len().min(POOL);
    let mut best = (f32::INFINITY, 0usize);
    for (i, item) in ranking[..pool].iter().enumerate() {
        let d = plain_distance(item);
        if d < best.0 {
            best = (d, i);
        }
    }
    if best.1 == 0 {
        return false;
    }
    ranking[..=best.1].rotate_right(1);
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_nearest_candidate_moves_first_and_the_rest_keep_their_order() {
        let mut r = vec![(1, 0.50), (2, 0.55), (3, 0.10), (4, 0.60)];
        assert!(promote(&mut r, |h| h.1));
        assert_eq!(r.iter().map(|h| h.0).collect::<Vec<_>>(), vec![3, 1, 2, 4]);
        assert!(!promote(&mut r, |h| h.1), "already first");
    }

    #[test]
    fn candidates_beyond_the_pool_and_short_rankings_change_nothing() {
        let mut long: Vec<(usize, f32)> = (0..POOL + 1).map(|i| (i, 1.0)).collect();
        long[POOL].1 = 0.01;
        assert!(!promote(&mut long, |h| h.1));
        assert_eq!(long[0].0, 0);
        let mut empty: Vec<(usize, f32)> = Vec::new();
        assert!(!promote(&mut empty, |h| h.1));
    }

    #[test]
    fn ties_and_not_a_number_keep_the_earlier_entry() {
        let mut r = vec![(1, 0.5), (2, f32::NAN), (3, 0.5)];
        assert!(!promote(&mut r, |h| h.1));
        assert_eq!(r[0].0, 1);
    }
}
