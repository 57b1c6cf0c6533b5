//! Query expansion by weighted averaging, "alpha-QE" (Radenović, Tolias, Chum, "Fine-tuning
//! CNN image retrieval with no human annotation", TPAMI 2019, section 5.2; after average query
//! expansion, Chum et al., ICCV 2007).
//!
//! A first search returns the query's nearest neighbours `x_1..x_n`; the expanded query is
//! `q' = q + sum_i max(0, cos(q, x_i))^alpha * x_i`, rescaled to the norm of `q`, and the
//! collection is searched again with `q'`. Neighbours that are very similar to the query pull
//! it towards the dense part of the collection they share (the other views of an object, the
//! other images of a class); `alpha` damps the less similar ones. Unsupervised: no labels, no
//! training, only the indexed vectors.

/// Settings of alpha query expansion.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct QueryExpansion {
    /// Neighbours averaged into the query (0 = off).
    pub(crate) n: usize,
    /// Exponent on the cosine similarity weights.
    pub(crate) alpha: f32,
}

/// The default of `query` and `eval`.
/// Two neighbours: on ukbench1000 (4 views per object) more neighbours pull in other objects
/// (n = 5: N-S 3.70 -> 3.56), on wang (100 per class) 1-2 already give most of the gain.
/// Weights are the cosines themselves (alpha 1). Radenović et al.'s alpha 3 suits CNN
/// descriptors, whose true neighbours have cosines near 0.9; in the graph's centred PCA space
/// the median cosine of the first neighbour is 0.76 on wang, and cubing it cuts a true
/// neighbour to less than half its weight (BENCHMARKS.md, "What each ranking step adds").
pub(crate) const DEFAULT_QE: QueryExpansion = QueryExpansion { n: 2, alpha: 1.0 };

impl Default for QueryExpansion {
    fn default() -> Self {
        DEFAULT_QE
    }
}

impl QueryExpansion {
    /// Off: the first search is the answer.
    #[cfg(test)]
    pub(crate) fn off() -> Self {
        QueryExpansion { n: 0, ..DEFAULT_QE }
    }

    /// True when expansion changes anything.
    pub(crate) fn enabled(&self) -> bool {
        self.n > 0
    }

    /// The expanded query from `query` and its nearest neighbours' vectors, best first (only the
    /// first `n` are used; the query itself should not be among them).
    pub(crate) fn expand<'a, I>(&self, query: &[f32], neighbours: I) -> Vec<f32>
    where
        I: IntoIterator<Item = &'a [f32]>,
    {
        self.expand_scaled(query, neighbours, 1.0)
    }

    /// [`expand`](Self::expand) with every neighbour's weight multiplied by `share`.
    pub(crate) fn expand_scaled<'a, I>(&self, query: &[f32], neighbours: I, share: f32) -> Vec<f32>
    where
        I: IntoIterator<Item = &'a [f32]>,
    {
        let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
        let qn = norm(query);
        let mut out = query.to_vec();
        if qn <= 1e-12 {
            return out;
        }
        for x in neighbours.into_iter().take(self.n) {
            let xn = norm(x);
            if xn <= 1e-12 || x.len() != query.len() {
                continue;
            }
            let cos = query.iter().zip(x).map(|(a, b)| a * b).sum::<f32>() / (qn * xn);
            let w = share * cos.max(0.0).powf(self.alpha);
            // Neighbours enter with the query's norm so the weights alone set their share.
            let s = w * qn / xn;
            out.iter_mut().zip(x).for_each(|(o, v)| *o += s * v);
        }
        let on = norm(&out);
        if on > 1e-12 {
            out.iter_mut().for_each(|v| *v *= qn / on);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn off_or_no_neighbours_is_identity() {
        let q = vec![0.6, 0.8, 0.0];
        let n = [1.0f32, 0.0, 0.0];
        assert_eq!(QueryExpansion::off().expand(&q, [&n[..]]), q);
        let on = QueryExpansion { n: 3, alpha: 3.0 };
        assert_eq!(on.expand(&q, std::iter::empty()), q);
    }

    #[test]
    fn moves_towards_similar_neighbours_keeps_norm_ignores_opposite() {
        let qe = QueryExpansion { n: 2, alpha: 1.0 };
        let q = vec![1.0, 0.0];
        let near = [1.0f32, 1.0];
        let opposite = [-1.0f32, 0.0];
        let e = qe.expand(&q, [&near[..], &opposite[..]]);
        assert!(e[1] > 0.0 && e[0] > 0.0);
        let n: f32 = e.iter().map(|x| x * x).sum();
        assert!((n - 1.0).abs() < 1e-5);
        // Only the opposite neighbour: weight 0, unchanged.
        assert_eq!(qe.expand(&q, [&opposite[..]]), q);
        // Only the first n neighbours count.
        let one = QueryExpansion { n: 1, alpha: 1.0 };
        assert_eq!(
            one.expand(&q, [&opposite[..], &near[..]]),
            q,
            "second neighbour must be ignored"
        );
    }
}
