//! Database-side augmentation: every stored vector averaged with its nearest neighbours.

use std::sync::atomic::AtomicBool;

use rayon::prelude::*;

use super::build::check_stop;
use super::{AnnBuilder, AnnIndex, AnnParams, dot, lookup, squared_l2};
use crate::error::Result;

/// Collections up to this size find augmentation neighbours by exact search (deterministic;
/// 10,000 points cost about 10^10 multiply-adds), larger ones through the first graph.
pub(super) const EXACT_NEIGHBOURS_UP_TO: usize = 10_000;

/// Candidates per point taken from the matrix products of [`all_exact_ids`] beyond the `k`
/// asked for, re-measured exactly: room for rounding to have reordered near-ties.
const EXACT_IDS_SLACK: usize = 8;

/// Query rows per matrix product of [`all_exact_ids`] (a block's distances: rows x points).
const EXACT_IDS_BLOCK: usize = 128;

/// For every point of `points`, the ids `exact_search` ranks first for its vector: its `k`
/// nearest points (itself included), best first. Distances come in blocks from single-precision
/// matrix products (`|a|^2 + |b|^2 - 2 a.b`), about ten times faster than one scan per point;
/// each point's best `k + EXACT_IDS_SLACK` are then re-measured and ordered as `exact_search`
/// orders them. All vectors must have one length.
pub(super) fn all_exact_ids(points: &[(i64, Vec<f32>)], k: usize) -> Vec<Vec<i64>> {
    let (n, dim) = (points.len(), points.first().map_or(0, |p| p.1.len()));
    let matrix = ndarray::Array2::from_shape_fn((n, dim), |(r, c)| points[r].1[c]);
    let norms: Vec<f32> = points.iter().map(|p| dot(&p.1, &p.1)).collect();
    let take = (k + EXACT_IDS_SLACK).min(n);
    let blocks: Vec<usize> = (0..n).step_by(EXACT_IDS_BLOCK).collect();
    blocks
        .into_par_iter()
        .flat_map_iter(|start| {
            let rows = matrix.slice(ndarray::s![start..(start + EXACT_IDS_BLOCK).min(n), ..]);
            let products = rows.dot(&matrix.t());
            let mut approx: Vec<(f32, usize)> = Vec::with_capacity(n);
            let mut ids = Vec::with_capacity(products.nrows());
            for (r, row) in products.outer_iter().enumerate() {
                let (query, query_norm) = (&points[start + r].1, norms[start + r]);
                approx.clear();
                approx.extend(
                    row.iter()
                        .zip(&norms)
                        .enumerate()
                        .map(|(j, (ab, b))| (query_norm + b - 2.0 * ab, j)),
                );
                if take < n {
                    approx.select_nth_unstable_by(take - 1, |a, b| a.0.total_cmp(&b.0));
                }
                let mut best: Vec<(i64, f32)> = approx[..take]
                    .iter()
                    .map(|&(_, j)| (points[j].0, squared_l2(&points[j].1, query).sqrt()))
                    .collect();
                best.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
                ids.push(best.iter().take(k).map(|h| h.0).collect());
            }
            ids
        })
        .collect()
}

/// Each point of `points` (sorted by id) averaged with its `k` nearest others, which
/// `nearest(index, vector)` lists best first (the point itself may be among them), weighted as
/// query expansion weighs them (alpha-DBA).
pub(super) fn augment(
    points: &[(i64, Vec<f32>)],
    k: usize,
    params: &AnnParams,
    nearest: impl Fn(usize, &[f32]) -> Vec<i64> + Sync,
) -> Vec<(i64, Vec<f32>)> {
    let rule = crate::query_expansion::QueryExpansion {
        n: k,
        alpha: params.dba_alpha,
    };
    points
        .par_iter()
        .enumerate()
        .map(|(i, (id, v))| {
            let neighbours = nearest(i, v)
                .into_iter()
                .filter(|n| n != id)
                .take(k)
                .filter_map(|n| lookup(points, n));
            (*id, rule.expand_scaled(v, neighbours, params.dba_share))
        })
        .collect()
}

impl AnnIndex {
    /// Rebuilds the graph over every point averaged with its `k` nearest neighbours (found in
    /// this graph, the point itself left out), weighted as query expansion weighs them.
    /// [`Error::Interrupted`] once `stop` is set.
    pub(super) fn augmented(self, k: usize, stop: &AtomicBool) -> Result<AnnIndex> {
        check_stop(stop)?;
        let points = self.graph_points();
        // Small collections find neighbours exactly, so evaluations are reproducible.
        let exact = (points.len() <= EXACT_NEIGHBOURS_UP_TO).then(|| all_exact_ids(&points, k + 1));
        check_stop(stop)?;
        let augmented = augment(&points, k, &self.params, |i, v| {
            if let Some(exact) = &exact {
                exact[i].clone()
            } else {
                // every image of a shared point, ties by id as exact search orders them
                let hits = self.nearest_in_graph_space(v, k + 1);
                hits.iter().map(|h| h.0).collect()
            }
        });
        drop(points);
        let params = AnnParams {
            dba: k,
            ..self.params
        };
        let mut builder = AnnBuilder::searchable(self.count, self.dim, self.projection, params);
        drop(self.hnsw);
        builder.insert_stoppable(&augmented, stop)?;
        Ok(builder.finish_plain())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ann::tests::{exact_ids, exact_neighbours, random_points};
    use crate::ann::{DEFAULT_DBA, DEFAULT_DBA_SHARE};
    use crate::query_expansion::QueryExpansion;

    #[test]
    fn batched_exact_neighbours_are_those_of_one_search_per_point() {
        // Several blocks of rows, and exact duplicates (ties broken by id, as exact search does).
        let mut points = random_points(700, 24, 5);
        for (i, j) in [(3, 400), (10, 650), (11, 651), (12, 652)] {
            points[j].1 = points[i].1.clone();
        }
        for k in [1, 3, 10] {
            let batched = all_exact_ids(&points, k);
            assert_eq!(batched.len(), points.len());
            for ((_, v), ids) in points.iter().zip(&batched) {
                assert_eq!(ids, &exact_ids(&points, v, k), "k {k}");
            }
        }
        // Fewer points than the slack: every point is a candidate.
        let few = random_points(5, 8, 6);
        for ((_, v), ids) in few.iter().zip(all_exact_ids(&few, 3)) {
            assert_eq!(ids, exact_ids(&few, v, 3));
        }
    }

    #[test]
    fn augmented_graph_holds_each_point_averaged_with_its_neighbours() {
        let seed = 20261123;
        let points = random_points(600, 24, seed);
        let index = AnnIndex::build(&points, AnnParams::default()).unwrap();
        assert!(index.is_augmented());
        let stored = index.graph_points();
        assert_eq!(stored.len(), points.len());
        let rule = QueryExpansion {
            n: DEFAULT_DBA,
            alpha: crate::query_expansion::DEFAULT_QE.alpha,
        };
        // Each stored vector is the point with its two exact nearest neighbours mixed in.
        let mut matching = 0;
        for ((id, v), (sid, sv)) in points.iter().zip(&stored) {
            assert_eq!(id, sid);
            let near = exact_neighbours(&points, *id, v);
            let expected = rule.expand_scaled(v, near, DEFAULT_DBA_SHARE);
            assert!(
                squared_l2(&expected, v) > 1e-6,
                "augmentation moved nothing"
            );
            if squared_l2(&expected, sv) < 1e-8 {
                matching += 1;
            }
        }
        assert!(matching >= 590, "{matching} of 600 match (seed {seed})");
        // Searches rank by the stored vectors: against exact search over them, recall is high.
        let queries = random_points(100, 24, seed + 1);
        let mut hit = 0;
        for (_, q) in &queries {
            let q = index.to_graph_space(q).unwrap();
            let exact = exact_ids(&stored, &q, 10);
            let approx = index.search_graph_space(&q, 10).unwrap();
            hit += approx.iter().filter(|h| exact.contains(&h.0)).count();
        }
        assert!(
            hit >= 950,
            "recall@10 {} (seed {seed})",
            hit as f64 / 1000.0
        );
    }

    #[test]
    fn augmentation_uses_the_recorded_exponent() {
        let points = random_points(200, 24, 20261125);
        let params = AnnParams {
            dba_alpha: 1.0,
            ..AnnParams::default()
        };
        let stored = AnnIndex::build(&points, params).unwrap().graph_points();
        let (id, v) = &points[0];
        assert_eq!(stored[0].0, *id);
        let near = exact_neighbours(&points, *id, v);
        let mixed = |alpha: f32| {
            QueryExpansion {
                n: DEFAULT_DBA,
                alpha,
            }
            .expand_scaled(v, near.iter().copied(), DEFAULT_DBA_SHARE)
        };
        assert!(squared_l2(&mixed(1.0), &stored[0].1) < 1e-8);
        assert!(squared_l2(&mixed(3.0), &stored[0].1) > 1e-6);
    }
}
