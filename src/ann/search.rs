//! Searching: the graph in its own space, exact re-ranking on full vectors, brute-force search.

use rayon::prelude::*;

use super::{AnnIndex, RERANK_DEPTH, finite, squared_l2};
use crate::error::Result;
use crate::vector::check_length;

/// Distance from the nearest beam point, as a share of the query's, within which beam points
/// count as one crowd (see `AnnIndex::caught_in_crowd`).
const CROWD_RADIUS: f32 = 0.2;

/// Beams narrower than this are not judged.
const MIN_CROWD_BEAM: usize = 16;

/// Beam points tried as a crowd's centre: at most this many, spread over the beam.
const CROWD_PROBES: usize = 16;

/// A search for at least one point in this many is a scan of every point: a graph search
/// that wide visits most of them, many times over.
const SCAN_SHARE: usize = 4;

impl AnnIndex {
    /// The `k` nearest ids to a full-length query, with distances in the graph's space.
    ///
    /// # Errors
    /// [`Error::VectorLength`](crate::error::Error::VectorLength) when `query` is not of the
    /// length the graph was built from (a graph built from no points finds nothing for any
    /// query).
    pub fn search(&self, query: &[f32], k: usize) -> Result<Vec<(i64, f32)>> {
        if self.dim == 0 {
            return Ok(Vec::new());
        }
        check_length("query", query, self.dim)?;
        let query = self.to_graph_space(&finite(query))?;
        Ok(self.nearest_in_graph_space(&query, k))
    }

    /// Graph search, then exact re-ranking of at least [`RERANK_DEPTH`] candidates on the full
    /// vectors (`full` looks them up by id): the order and distances exact search would give
    /// among those candidates.
    pub fn search_reranked<'a>(
        &self,
        query: &[f32],
        k: usize,
        full: impl Fn(i64) -> Option<&'a [f32]>,
    ) -> Result<Vec<(i64, f32)>> {
        let candidates = self.search(query, k.max(RERANK_DEPTH))?;
        Ok(rerank(query, &candidates, k, full))
    }

    /// The graph's own vectors with their ids, sorted by id (projected, augmented if so built);
    /// images sharing a point each get its vector.
    pub fn graph_points(&self) -> Vec<(i64, Vec<f32>)> {
        if self.hnsw.get_nb_point() == 0 {
            // hnsw_rs cannot iterate a graph without an entry point.
            return Vec::new();
        }
        let mut points: Vec<(i64, Vec<f32>)> = Vec::with_capacity(self.count);
        for p in self.hnsw.get_point_indexation().into_iter() {
            if self.is_hidden(p.get_origin_id()) {
                continue;
            }
            for &id in self.images_of(p.get_origin_id()).iter() {
                points.push((id, p.get_v().to_vec()));
            }
        }
        points.sort_unstable_by_key(|p| p.0);
        points
    }

    /// A full-length vector in the graph's space (projected when the graph is).
    ///
    /// # Errors
    /// [`Error::VectorLength`](crate::error::Error::VectorLength) when `v` is not of the length
    /// the graph was built from.
    pub fn to_graph_space(&self, v: &[f32]) -> crate::error::Result<Vec<f32>> {
        crate::vector::check_length("vector", v, self.dim)?;
        match &self.projection {
            Some(p) => p.apply(v),
            None => Ok(v.to_vec()),
        }
    }

    /// The `k` nearest ids to a vector already in the graph's space, with distances in it.
    ///
    /// # Errors
    /// [`Error::VectorLength`](crate::error::Error::VectorLength) when `query` is not of the
    /// graph's length (a graph built from no points finds nothing for any query).
    pub fn search_graph_space(&self, query: &[f32], k: usize) -> Result<Vec<(i64, f32)>> {
        if self.graph_dim() != 0 {
            check_length("query", query, self.graph_dim())?;
        }
        Ok(self.nearest_in_graph_space(query, k))
    }

    /// [`AnnIndex::search_graph_space`] for a query of the graph's length.
    pub(super) fn nearest_in_graph_space(&self, query: &[f32], k: usize) -> Vec<(i64, f32)> {
        if self.count == 0 || k == 0 {
            return Vec::new();
        }
        let query = finite(query);
        let query = query.as_ref();
        // Hidden points still route searches; when they crowd the results, the search widens.
        let total = self.hnsw.get_nb_point();
        if k.min(total).saturating_mul(SCAN_SHARE) >= total {
            return self.scan_graph_space(query, k);
        }
        let mut want = k.min(total);
        let hits: Vec<(i64, f32)> = loop {
            let mut found = self
                .hnsw
                .search(query, want.max(self.ef), self.ef.max(want));
            if want == k.min(total) && self.caught_in_crowd(&found) {
                return self.scan_graph_space(query, k);
            }
            found.truncate(want);
            let reached = found.len();
            let mut visible: Vec<(i64, f32)> = Vec::with_capacity(reached);
            for n in found.iter().filter(|n| !self.is_hidden(n.d_id)) {
                visible.extend(self.images_of(n.d_id).iter().map(|&id| (id, n.distance)));
            }
            if visible.len() >= k || reached < want || want >= total {
                break visible;
            }
            want = (want * 2).min(total);
        };
        if hits.len() < k.min(self.count) {
            // The graph reached fewer images than asked for and held: every point is measured.
            return self.scan_graph_space(query, k);
        }
        nearest(hits, k)
    }

    /// True when half of a search's beam or more is one tight crowd away from the query: points
    /// within [`CROWD_RADIUS`] times the query's distance of one of them (every fourth point of
    /// the beam is tried, at most [`CROWD_PROBES`] spread evenly). A crowd of near-identical images keeps its graph links among itself
    /// (hnsw_rs links a neighbour back to a new point only when nearer than its farthest link),
    /// so a search entering it may not leave. On wang with ukbench queries, at most 6 of 64 beam
    /// points were that close to one; beams caught in 1,000 re-encoded copies, 64.
    fn caught_in_crowd(&self, beam: &[hnsw_rs::prelude::Neighbour]) -> bool {
        if beam.len() < MIN_CROWD_BEAM {
            return false;
        }
        let points = self.hnsw.get_point_indexation();
        let half = beam.len().div_ceil(2);
        // each beam point's vector, read once
        let data: Vec<Option<Vec<f32>>> = beam
            .iter()
            .map(|n| points.get_point_data(&n.p_id))
            .collect();
        let step = beam.len().div_ceil(CROWD_PROBES).max(4);
        let largest = beam
            .iter()
            .zip(&data)
            .step_by(step)
            .map(|(probe, centre)| {
                let radius = CROWD_RADIUS * probe.distance;
                // A point that much nearer or farther from the query is that far from the probe.
                let band: Vec<usize> = (0..beam.len())
                    .filter(|&j| (beam[j].distance - probe.distance).abs() <= radius)
                    .collect();
                if radius.is_nan() || radius <= 0.0 || band.len() < half {
                    return band.len().min(1);
                }
                let Some(centre) = centre else {
                    return 0;
                };
                band.iter()
                    .filter_map(|&j| data[j].as_ref())
                    .filter(|v| squared_l2(v, centre).sqrt() <= radius)
                    .count()
            })
            .max()
            .unwrap_or(0);
        largest >= half
    }

    /// The `k` nearest images to a vector in the graph's space, by measuring every point.
    fn scan_graph_space(&self, query: &[f32], k: usize) -> Vec<(i64, f32)> {
        let points: Vec<(usize, f32)> = self
            .hnsw
            .get_point_indexation()
            .into_iter()
            .filter(|p| !self.is_hidden(p.get_origin_id()))
            .map(|p| (p.get_origin_id(), squared_l2(p.get_v(), query).sqrt()))
            .filter(|p| !p.1.is_nan())
            .collect();
        let mut hits: Vec<(i64, f32)> = Vec::with_capacity(self.count);
        for (node, distance) in points {
            hits.extend(self.images_of(node).iter().map(|&id| (id, distance)));
        }
        nearest(hits, k)
    }

    pub(super) fn is_hidden(&self, data_id: usize) -> bool {
        !self.hidden.is_empty() && self.hidden.binary_search(&data_id).is_ok()
    }

    /// The data id of each image's visible point, by image id.
    pub(super) fn visible_points(&self) -> std::collections::HashMap<i64, usize> {
        if self.hnsw.get_nb_point() == 0 {
            return std::collections::HashMap::new();
        }
        let mut images = std::collections::HashMap::with_capacity(self.count);
        for p in self.hnsw.get_point_indexation().into_iter() {
            let node = p.get_origin_id();
            if !self.is_hidden(node) {
                images.extend(self.images_of(node).iter().map(|&id| (id, node)));
            }
        }
        images
    }

    /// The point holding each distinct visible vector, by the vector's key.
    pub(super) fn visible_keys(&self) -> std::collections::HashMap<super::VectorKey, usize> {
        if self.hnsw.get_nb_point() == 0 {
            return std::collections::HashMap::new();
        }
        self.hnsw
            .get_point_indexation()
            .into_iter()
            .filter(|p| !self.is_hidden(p.get_origin_id()))
            .map(|p| (super::vector_key(p.get_v()), p.get_origin_id()))
            .collect()
    }

    /// Image ids the graph returns, sorted.
    pub(crate) fn image_ids(&self) -> Vec<i64> {
        let mut ids: Vec<i64> = self.visible_points().into_keys().collect();
        ids.sort_unstable();
        ids
    }
}

/// The `k` nearest of `candidates` to `query` by exact distance on the full vectors (`full`
/// looks them up by id; candidates it does not know, or at a distance that is not a number,
/// are dropped).
pub fn rerank<'a>(
    query: &[f32],
    candidates: &[(i64, f32)],
    k: usize,
    full: impl Fn(i64) -> Option<&'a [f32]>,
) -> Vec<(i64, f32)> {
    let query = finite(query);
    let query = query.as_ref();
    let hits: Vec<(i64, f32)> = candidates
        .iter()
        .filter_map(|&(id, _)| full(id).map(|v| (id, squared_l2(v, query).sqrt())))
        .filter(|h| !h.1.is_nan())
        .collect();
    nearest(hits, k)
}

/// Nearest first, equal distances by id: the order every search returns.
fn by_distance(a: &(i64, f32), b: &(i64, f32)) -> std::cmp::Ordering {
    a.1.total_cmp(&b.1).then(a.0.cmp(&b.0))
}

/// The `k` nearest of `hits`, nearest first.
fn nearest(mut hits: Vec<(i64, f32)>, k: usize) -> Vec<(i64, f32)> {
    hits.sort_by(by_distance);
    hits.truncate(k);
    hits
}

/// The vector of `id` in points sorted by id.
pub fn lookup(points: &[(i64, Vec<f32>)], id: i64) -> Option<&[f32]> {
    points
        .binary_search_by_key(&id, |p| p.0)
        .ok()
        .map(|i| points[i].1.as_slice())
}

/// Brute-force search: the `k` nearest of `points` to `query`, nearest first.
/// Points whose distance is not a number (non-finite components) are left out.
pub fn exact_search(points: &[(i64, Vec<f32>)], query: &[f32], k: usize) -> Vec<(i64, f32)> {
    let query = finite(query);
    let query = query.as_ref();
    let mut all: Vec<(i64, f32)> = points
        .par_iter()
        .filter(|(_, v)| v.len() == query.len())
        .map(|(id, v)| (*id, squared_l2(v, query).sqrt()))
        .filter(|h| !h.1.is_nan())
        .collect();
    let k = k.min(all.len());
    if k == 0 {
        return Vec::new();
    }
    all.select_nth_unstable_by(k - 1, by_distance);
    all.truncate(k);
    all.sort_by(by_distance);
    all
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ann::AnnParams;
    use crate::ann::tests::{exact_ids, random_points};

    /// A beam that is mostly one tight crowd away from the query is caught; the exact
    /// neighbourhood of an ordinary point, or a beam of the crowd around a query inside it, is
    /// not.
    #[test]
    fn a_beam_of_one_far_crowd_is_caught_and_an_ordinary_one_is_not() {
        let dim = 16;
        let centre = random_points(1, dim, 11)[0].1.clone();
        let mut points: Vec<(i64, Vec<f32>)> = random_points(200, dim, 12)
            .into_iter()
            .map(|(id, j)| {
                (
                    id,
                    centre.iter().zip(&j).map(|(c, j)| c + 0.01 * j).collect(),
                )
            })
            .collect();
        let others: Vec<(i64, Vec<f32>)> = random_points(300, dim, 13)
            .into_iter()
            .map(|(id, v)| (id + 200, v))
            .collect();
        points.extend(others.iter().cloned());
        let plain = AnnParams {
            dba: 0,
            ..AnnParams::default()
        };
        let index = AnnIndex::build(&points, plain).unwrap();
        let ids: std::collections::HashMap<usize, hnsw_rs::prelude::PointId> = index
            .hnsw
            .get_point_indexation()
            .into_iter()
            .map(|p| (p.get_origin_id(), p.get_point_id()))
            .collect();
        // the 64 nearest of `pool` to `query`, as a search's beam
        let beam = |query: &[f32], pool: &[(i64, Vec<f32>)]| -> Vec<hnsw_rs::prelude::Neighbour> {
            exact_search(pool, query, 64)
                .into_iter()
                .map(|(id, distance)| hnsw_rs::prelude::Neighbour {
                    d_id: id as usize,
                    distance,
                    p_id: ids[&(id as usize)],
                })
                .collect()
        };
        let crowd = &points[..200];
        let query = &others[0].1;
        assert!(index.caught_in_crowd(&beam(query, crowd)));
        // a third of the beam from the crowd is not half of it
        let mut mixed: Vec<(i64, Vec<f32>)> = crowd[..21].to_vec();
        mixed.extend(others.iter().skip(1).cloned());
        let mixed_beam = beam(query, &mixed);
        assert!(mixed_beam.iter().filter(|n| n.d_id <= 200).count() <= 21);
        assert!(!index.caught_in_crowd(&mixed_beam));
        for (_, v) in others.iter().take(50) {
            assert!(!index.caught_in_crowd(&beam(v, &others)));
        }
        assert!(!index.caught_in_crowd(&beam(&centre, &points)));
    }

    /// A search for a large share of the points gives what exact search gives, every point
    /// measured.
    #[test]
    fn a_search_for_most_points_is_exact() {
        let points = random_points(2000, 16, 5);
        let plain = AnnParams {
            dba: 0,
            ..AnnParams::default()
        };
        let index = AnnIndex::build(&points, plain).unwrap();
        for (_, q) in random_points(5, 16, 6) {
            for k in [500, 1500, 1999, 2000] {
                let found: Vec<i64> = index.search(&q, k).unwrap().iter().map(|h| h.0).collect();
                assert_eq!(found, exact_ids(&points, &q, k), "k {k}");
            }
        }
    }

    #[test]
    fn hnsw_recall_at_10_against_exact_is_high() {
        let seed = 20261122;
        let points = random_points(3000, 32, seed);
        let plain = AnnParams {
            dba: 0,
            ..AnnParams::default()
        };
        let index = AnnIndex::build(&points, plain).unwrap();
        assert!(!index.is_augmented());
        let queries = random_points(200, 32, seed + 1);
        let mut hit = 0;
        for (_, q) in &queries {
            let exact = exact_ids(&points, q, 10);
            let approx: Vec<i64> = index.search(q, 10).unwrap().iter().map(|h| h.0).collect();
            hit += approx.iter().filter(|id| exact.contains(id)).count();
        }
        let recall = hit as f64 / (10.0 * queries.len() as f64);
        assert!(recall >= 0.95, "recall@10 {recall} (seed {seed})");
    }

    /// A query of another length than the graph's is refused by every search, with both
    /// lengths (an empty list was returned, as from a graph with nothing in it).
    #[test]
    fn a_query_of_another_length_is_refused() {
        use crate::error::Error;
        let points = random_points(40, 24, 5);
        let params = AnnParams {
            pca_dims: 8,
            ..AnnParams::default()
        };
        let index = AnnIndex::build(&points, params).unwrap();
        let full = |id: i64| lookup(&points, id);
        let refused = |r: Result<Vec<(i64, f32)>>, len: usize, expected: usize| matches!(r, Err(Error::VectorLength { found, expected: e, .. }) if found == len && e == expected);
        for len in [0, 8, 23, 25] {
            let q = vec![0.5; len];
            assert!(refused(index.search(&q, 3), len, 24), "{len}");
            assert!(
                refused(index.search_reranked(&q, 3, full), len, 24),
                "{len}"
            );
        }
        let graph_dim = index.graph_dim();
        for len in [0, graph_dim + 1, 24] {
            let q = vec![0.5; len];
            assert!(
                refused(index.search_graph_space(&q, 3), len, graph_dim),
                "{len}"
            );
        }
        assert_eq!(index.search(&[0.5; 24], 3).unwrap().len(), 3);
        assert_eq!(
            index
                .search_graph_space(&vec![0.5; graph_dim], 3)
                .unwrap()
                .len(),
            3
        );
    }

    /// Points of mixed lengths and an id given twice are refused, naming the first such point
    /// (the graph was built with them).
    #[test]
    fn points_of_mixed_lengths_or_a_repeated_id_are_refused() {
        use crate::error::Error;
        let mut points = random_points(30, 12, 9);
        points[11].1.pop();
        points[20].1.push(0.0);
        match AnnIndex::build(&points, AnnParams::default()) {
            Err(Error::VectorLength {
                what,
                found: 11,
                expected: 12,
            }) => assert_eq!(what, "point 12"),
            other => panic!("{other:?}"),
        }
        let mut points = random_points(30, 12, 9);
        points[25].0 = 4;
        points[28].0 = 2;
        match AnnIndex::build(&points, AnnParams::default()) {
            Err(Error::InvalidInput(why)) => {
                assert!(why.starts_with("point 4 is given twice"), "{why}")
            }
            other => panic!("{other:?}"),
        }
    }
}
