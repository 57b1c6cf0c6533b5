//! Approximate nearest neighbours over fused vectors: a wrapper over hnsw_rs that builds, dumps,
//! verifies and loads the graph. The dump is a cache; SQLite stays the truth.
//!
//! The graph's space: vectors longer than `pca_dims` are PCA-projected, and with `dba > 0`
//! every stored vector is replaced by its database-side augmentation (DBA: averaged with its
//! `dba` nearest neighbours by the alpha-QE rule, their weights scaled by `dba_share`;
//! Arandjelovic & Zisserman, "Three things everyone should know to improve object retrieval",
//! CVPR 2012). Queries are projected, not augmented. An augmented graph is searched on its own
//! vectors, with exact distances in that space; a plain one re-ranks its candidates on the full
//! vectors.
//!
//! hnsw_rs calls `process::exit` on damaged dumps, so a dump is only handed to it after its
//! files match the checksums and counts recorded in SQLite when it was written.
//!
//! Points whose graph-space vectors are equal to the bit share one graph point, which stands
//! for all their images: a crowd of points at distance 0 fills HNSW's neighbour lists with
//! each other and cuts the rest of the graph off (1,500 copies of one photo among 300 others:
//! 43 of 50 queries kept fewer than 8 of their exact top 10). Searches return every image of
//! a point found, at its distance, ties by id as exact search orders them. The groups are made
//! from the vectors read from SQLite and recorded in SQLite with the dump.
//!
//! Submodules: `build` (the streaming [`AnnBuilder`] and [`AnnIndex::build`]),
//! `augment` (database-side augmentation), `update` (in-place updates), `search` (graph search,
//! re-ranking and exact search) and `persist` (dump, verify, load and the dump folders).

mod augment;
mod build;
mod persist;
mod search;
mod update;

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};

use hnsw_rs::prelude::{Distance, Hnsw};
use rayon::prelude::*;

use crate::pca::Projection;
pub use crate::vector::{dot, finite, sanitize, squared_l2};

pub use build::AnnBuilder;
pub(crate) use build::{NEVER_STOP, STOP_CHECK_EVERY, check_stop};
pub(crate) use persist::{DumpRecord, PROJECTION_FILE, ann_dir, is_own_dump};
pub use search::{exact_search, lookup, rerank};

/// `points` with non-finite components replaced by zero (borrowed when there are none).
fn finite_points(points: &[(i64, Vec<f32>)]) -> Cow<'_, [(i64, Vec<f32>)]> {
    if points.iter().all(|p| p.1.iter().all(|x| x.is_finite())) {
        Cow::Borrowed(points)
    } else {
        let mut owned = points.to_vec();
        owned.par_iter_mut().for_each(|p| {
            sanitize(&mut p.1);
        });
        Cow::Owned(owned)
    }
}

/// Key of a vector's exact bits (BLAKE3): equal keys, equal vectors.
type VectorKey = [u8; 32];

fn vector_key(v: &[f32]) -> VectorKey {
    let mut hasher = blake3::Hasher::new();
    for x in v {
        hasher.update(&x.to_le_bytes());
    }
    *hasher.finalize().as_bytes()
}

/// Images that share a graph point, by the point's data id: sorted image ids, kept only for
/// points that stand for other images than their own alone.
type Groups = BTreeMap<usize, Vec<i64>>;

/// The points of `points` (inserted as `node_of` names them) whose vector is new to `seen`,
/// ready to insert; the others join the group of the point holding their vector. `seen` maps
/// vector keys to points, and learns the new ones. Groups are left unsorted.
fn split_equal<'a>(
    points: &'a [(i64, Vec<f32>)],
    node_of: impl Fn(i64) -> usize,
    seen: &mut HashMap<VectorKey, usize>,
    groups: &mut Groups,
) -> Vec<(&'a [f32], usize)> {
    let keys: Vec<VectorKey> = points.par_iter().map(|p| vector_key(&p.1)).collect();
    let mut fresh = Vec::with_capacity(points.len());
    for ((id, v), key) in points.iter().zip(keys) {
        match seen.entry(key) {
            std::collections::hash_map::Entry::Occupied(e) => {
                let node = *e.get();
                groups
                    .entry(node)
                    .or_insert_with(|| vec![image_of(node)])
                    .push(*id);
            }
            std::collections::hash_map::Entry::Vacant(e) => {
                let node = node_of(*id);
                e.insert(node);
                fresh.push((v.as_slice(), node));
            }
        }
    }
    fresh
}

/// Sorts each group and drops those that stand for their point's own image alone.
fn tidy(groups: &mut Groups) {
    for g in groups.values_mut() {
        g.sort_unstable();
        g.dedup();
    }
    groups.retain(|&node, g| !g.is_empty() && *g != [image_of(node)]);
}

/// Euclidean distance, written so the compiler vectorises it (eight independent accumulators).
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct FusedL2;

impl Distance<f32> for FusedL2 {
    fn eval(&self, va: &[f32], vb: &[f32]) -> f32 {
        squared_l2(va, vb).sqrt()
    }
}

/// Graph dimension for fused vectors: on wang and ukbench1000 a 128-dimensional PCA ranks as
/// well as the full vector (BENCHMARKS.md), at an eighth of the graph's memory.
pub(crate) const DEFAULT_PCA_DIMS: usize = 128;

/// Graph size up to which searches use `ef_search` as configured.
const EF_BASE_POINTS: f64 = 100_000.0;

/// `base` up to `EF_BASE_POINTS` points, then doubled for every tenfold growth: a graph's
/// search path lengthens with its size, and a fixed beam loses recall (measured: 100,000
/// points at ef 64, recall@10 0.998; 1,000,000 at ef 64, 0.940).
pub(crate) fn scaled_ef(base: usize, n: usize) -> usize {
    let growth = (n as f64 / EF_BASE_POINTS).max(1.0).log10();
    (base as f64 * 2f64.powf(growth)).round() as usize
}

/// Candidates taken from the graph for exact re-ranking, whatever the number of results asked.
pub const RERANK_DEPTH: usize = 32;

/// Neighbours averaged into each stored vector (database-side augmentation). Two, as for query
/// expansion and for the same reason: on ukbench1000 (4 views per object) more neighbours pull
/// in other objects; both shared sets gain (BENCHMARKS.md).
pub const DEFAULT_DBA: usize = 2;

/// Low bits of a graph point's data id: the image id. The bits above count the in-place update
/// that inserted the point (0: the full build), so that an image whose vectors changed gets a
/// new data id and its old point can be hidden.
const IMAGE_ID_BITS: u32 = 40;
const IMAGE_ID_MASK: usize = (1 << IMAGE_ID_BITS) - 1;
/// In-place updates a graph can record in its data ids.
const MAX_UPDATES: u32 = (1 << (usize::BITS - IMAGE_ID_BITS)) - 1;

/// The image a graph point belongs to.
fn image_of(data_id: usize) -> i64 {
    (data_id & IMAGE_ID_MASK) as i64
}

/// The data id of `image`'s point inserted by update number `update`.
fn data_id(image: i64, update: u32) -> usize {
    image as usize | (update as usize) << IMAGE_ID_BITS
}

/// Neighbours enter an augmented vector at this share of the weight query expansion gives
/// them: full weight, as alpha-DBA is defined. Until rankings put the candidate nearest to the
/// example first (the `nearest_first` step), half weight was used because distorted copies
/// lost their originals to the originals' neighbours (wang, JPEG quality 30: recall@1 0.97 ->
/// 0.94); with it they do not (BENCHMARKS.md, "What each ranking step adds").
pub const DEFAULT_DBA_SHARE: f32 = 1.0;

/// Graph construction and search parameters.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AnnParams {
    /// Links per node (hnsw_rs exits the process above 256; kept far below).
    pub max_connections: usize,
    /// Beam width while the graph is built (capped at 100 for graphs of up to 10,000 points).
    pub ef_construction: usize,
    /// Beam width of a search, for graphs of up to 100,000 points; doubled for every tenfold
    /// growth beyond.
    pub ef_search: usize,
    /// Vectors longer than this are PCA-projected to this many dimensions before entering the
    /// graph (0: never). Absent from records written before projection existed.
    #[serde(default)]
    pub pca_dims: usize,
    /// Database-side augmentation: neighbours averaged into each stored vector (0: off).
    /// Absent from records written before augmentation existed (those graphs are plain).
    #[serde(default)]
    pub dba: usize,
    /// Weight share of each neighbour in an augmented vector (see [`DEFAULT_DBA_SHARE`]).
    #[serde(default)]
    pub dba_share: f32,
    /// Exponent on the similarity weights of the augmentation (the alpha-QE rule's).
    /// Records written before it was recorded were built with 3.
    #[serde(default = "dba_alpha_before_it_was_recorded")]
    pub dba_alpha: f32,
}

fn dba_alpha_before_it_was_recorded() -> f32 {
    3.0
}

impl Default for AnnParams {
    fn default() -> Self {
        AnnParams {
            max_connections: 24,
            ef_construction: 200,
            ef_search: 64,
            pca_dims: DEFAULT_PCA_DIMS,
            dba: DEFAULT_DBA,
            dba_share: DEFAULT_DBA_SHARE,
            dba_alpha: crate::query_expansion::DEFAULT_QE.alpha,
        }
    }
}

/// An HNSW graph over `(image id, fused vector)` points.
pub struct AnnIndex {
    hnsw: Hnsw<'static, f32, FusedL2>,
    /// Points searches can return (the graph's points less the hidden ones).
    count: usize,
    /// Data ids of points searches skip, sorted.
    hidden: Vec<usize>,
    /// Visible points standing for several images, or for other images than their own.
    groups: Groups,
    /// In-place updates since the full build, and that build's point count.
    updates: u32,
    built_count: usize,
    /// Length of the vectors given to `build` and `search`.
    dim: usize,
    /// Applied to every vector before it meets the graph.
    projection: Option<Projection>,
    params: AnnParams,
    /// Beam width of a search: `params.ef_search` scaled to the graph's size.
    ef: usize,
}

impl std::fmt::Debug for AnnIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AnnIndex")
            .field("count", &self.count)
            .field("dim", &self.dim)
            .field("graph_dim", &self.graph_dim())
            .finish()
    }
}

impl AnnIndex {
    /// True when the graph holds augmented vectors: searches rank by them, not by full vectors.
    pub(crate) fn is_augmented(&self) -> bool {
        self.params.dba > 0
    }

    /// In-place updates since the graph was last built in full.
    pub(crate) fn updates(&self) -> u32 {
        self.updates
    }

    /// Points of the last full build.
    #[cfg(test)]
    pub(crate) fn built_count(&self) -> usize {
        self.built_count
    }

    /// Points kept in the graph only to route searches (removed or changed images).
    pub(crate) fn hidden_count(&self) -> usize {
        self.hidden.len()
    }

    /// Data ids of the hidden points, sorted.
    pub(crate) fn hidden(&self) -> &[usize] {
        &self.hidden
    }

    /// The groups of images sharing a point, as a dump record keeps them.
    pub(crate) fn groups(&self) -> Vec<(usize, Vec<i64>)> {
        self.groups
            .iter()
            .map(|(node, g)| (*node, g.clone()))
            .collect()
    }

    /// The images the (visible) point `node` stands for, sorted.
    fn images_of(&self, node: usize) -> Cow<'_, [i64]> {
        match self.groups.get(&node) {
            Some(g) => Cow::Borrowed(g.as_slice()),
            None => Cow::Owned(vec![image_of(node)]),
        }
    }

    /// Beam width searches use.
    pub fn ef_search(&self) -> usize {
        self.ef
    }

    /// Overrides the beam width (for measuring recall against latency).
    pub fn set_ef_search(&mut self, ef: usize) {
        self.ef = ef.max(1);
    }

    /// Dimension of the vectors inside the graph (after projection).
    pub fn graph_dim(&self) -> usize {
        self.projection
            .as_ref()
            .map_or(self.dim, Projection::dim_out)
    }

    /// The PCA projection in front of the graph, if any.
    pub fn projection(&self) -> Option<&Projection> {
        self.projection.as_ref()
    }

    /// Number of points.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.count
    }

    /// True when the graph has no point.
    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Vector dimension.
    #[cfg(test)]
    pub(crate) fn dim(&self) -> usize {
        self.dim
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic pseudo-random vectors (SplitMix64); with serial insertion in tests, the
    /// seed a failure prints rebuilds its graph too.
    pub(crate) fn random_points(n: usize, dim: usize, seed: u64) -> Vec<(i64, Vec<f32>)> {
        let mut rng = crate::rng::SplitMix64::new(seed);
        let mut next = || (rng.next_u64() >> 40) as f32 / (1u64 << 24) as f32;
        (0..n)
            .map(|i| ((i + 1) as i64, (0..dim).map(|_| next()).collect()))
            .collect()
    }

    /// Ids of the `k` points of `points` nearest to `query`, best first (exact search).
    pub(super) fn exact_ids(points: &[(i64, Vec<f32>)], query: &[f32], k: usize) -> Vec<i64> {
        exact_search(points, query, k).iter().map(|h| h.0).collect()
    }

    /// The `DEFAULT_DBA` exact nearest neighbours of point `id` (at `v`), itself left out.
    pub(super) fn exact_neighbours<'a>(
        points: &'a [(i64, Vec<f32>)],
        id: i64,
        v: &[f32],
    ) -> Vec<&'a [f32]> {
        exact_search(points, v, DEFAULT_DBA + 1)
            .iter()
            .filter(|h| h.0 != id)
            .take(DEFAULT_DBA)
            .filter_map(|h| lookup(points, h.0))
            .collect()
    }

    /// The points of `ids` (sorted by id) found in `points` (sorted by id).
    pub(super) fn pick_sorted(points: &[(i64, Vec<f32>)], ids: &[i64]) -> Vec<(i64, Vec<f32>)> {
        let mut out: Vec<(i64, Vec<f32>)> = ids
            .iter()
            .filter_map(|&id| lookup(points, id).map(|v| (id, v.to_vec())))
            .collect();
        out.sort_unstable_by_key(|p| p.0);
        out
    }

    #[test]
    fn records_without_the_augmentation_exponent_were_built_with_alpha_3() {
        let mut json = serde_json::to_value(AnnParams::default()).unwrap();
        json.as_object_mut().unwrap().remove("dba_alpha");
        let old: AnnParams = serde_json::from_value(json).unwrap();
        assert_eq!(old.dba_alpha, 3.0);
        // Today's default differs, so the next `index` run rebuilds such a graph.
        assert_ne!(old, AnnParams::default());
    }

    /// Points with NaN and infinite components, plain and augmented, projected or not.
    #[test]
    fn non_finite_vectors_never_panic_in_build_update_dump_load_or_search() {
        let dim = 40;
        let mut points = random_points(120, dim, 21);
        points[3].1[5] = f32::NAN;
        points[4].1 = vec![f32::NAN; dim];
        points[7].1[0] = f32::INFINITY;
        points[8].1[1] = f32::NEG_INFINITY;
        let mut query = points[10].1.clone();
        query[2] = f32::NAN;
        let tmp = tempfile::tempdir().unwrap();
        for (dba, pca_dims) in [(0, 0), (2, 0), (0, 8), (2, 8)] {
            let params = AnnParams {
                dba,
                pca_dims,
                ..AnnParams::default()
            };
            let mut ann = AnnIndex::build(&points, params).unwrap();
            assert_eq!(ann.len(), points.len());
            for (_, v) in ann.graph_points() {
                assert!(v.iter().all(|x| x.is_finite()));
            }
            let hits = ann.search(&query, 5).unwrap();
            assert_eq!(hits.len(), 5);
            assert!(hits.iter().all(|h| h.1.is_finite()));
            assert_eq!(ann.search(&vec![f32::INFINITY; dim], 3).unwrap().len(), 3);
            let graph_query = ann.to_graph_space(&query).unwrap();
            assert_eq!(ann.search_graph_space(&graph_query, 4).unwrap().len(), 4);
            let full = |id: i64| Some(points[(id - 1) as usize].1.as_slice());
            assert!(!ann.search_reranked(&query, 3, full).unwrap().is_empty());

            // The streaming builder with a batch of non-finite points.
            let mut builder = AnnBuilder::new(points.len(), dim, None, params);
            builder.insert(&points);
            assert_eq!(builder.finish().search(&query, 3).unwrap().len(), 3);

            // An in-place update inserting non-finite vectors, then a dump and a load.
            let mut bad = random_points(130, dim, 22)[120..].to_vec();
            bad[0].1[0] = f32::NAN;
            bad[1].1 = vec![f32::NEG_INFINITY; dim];
            let mut all = points.clone();
            all.extend(bad.iter().cloned());
            let ids: Vec<i64> = bad.iter().map(|p| p.0).collect();
            ann.update(&ids, &[], |want| Ok(pick_sorted(&all, want)))
                .unwrap();
            assert_eq!(ann.len(), all.len());
            assert_eq!(ann.search(&query, 4).unwrap().len(), 4);
            let rec = ann.dump(tmp.path(), 1, "w").unwrap();
            let loaded = AnnIndex::load(tmp.path(), &rec).unwrap();
            assert_eq!(
                loaded.search(&query, 4).unwrap(),
                ann.search(&query, 4).unwrap()
            );
        }
        // Exact search ranks the finite points and the NaN query's finite part.
        let hits = exact_search(&points, &query, 200);
        assert!(hits.iter().all(|h| !h.1.is_nan()));
        assert_eq!(hits[0].0, points[10].0);
        // Point 5 is all NaN: at no distance, it is dropped.
        let nan_free = rerank(&query, &[(5, 0.0), (6, 0.0), (7, 0.0)], 3, |id| {
            Some(points[(id - 1) as usize].1.as_slice())
        });
        assert_eq!(nan_free.iter().map(|h| h.0).collect::<Vec<_>>().len(), 2);
        assert!(nan_free.iter().all(|h| h.0 != 5 && h.1.is_finite()));
    }

    /// Identical vectors (no variance for the PCA), one point, two points.
    #[test]
    fn identical_vectors_and_tiny_collections_build_and_search() {
        let dim = 300;
        let v: Vec<f32> = (0..dim).map(|i| (i as f32 * 0.37).sin()).collect();
        for n in [1, 2, 3, 40] {
            let points: Vec<(i64, Vec<f32>)> = (1..=n).map(|id| (id, v.clone())).collect();
            for dba in [0, 2] {
                let params = AnnParams {
                    dba,
                    ..AnnParams::default()
                };
                let ann = AnnIndex::build(&points, params).unwrap();
                assert_eq!(ann.len(), n as usize);
                let hits = ann.search(&v, n as usize).unwrap();
                assert_eq!(hits.len(), n as usize, "{n} points, dba {dba}");
                let tmp = tempfile::tempdir().unwrap();
                let rec = ann.dump(tmp.path(), 1, "w").unwrap();
                let loaded = AnnIndex::load(tmp.path(), &rec).unwrap();
                assert_eq!(loaded.search(&v, n as usize).unwrap().len(), n as usize);
            }
        }
    }
}

#[cfg(test)]
mod shared_point_tests {
    use super::tests::{exact_ids, pick_sorted, random_points};
    use super::*;

    /// Mean share of each distinct point's exact top 10 (in the graph's own space) that the
    /// graph search returns, and whether each point found itself first.
    fn overlap(ann: &AnnIndex, distinct: &[(i64, Vec<f32>)]) -> (f64, bool) {
        let stored = ann.graph_points();
        let (mut shared, mut itself_first) = (0, true);
        for (id, _) in distinct {
            let v = lookup(&stored, *id).unwrap();
            let exact = exact_ids(&stored, v, 10);
            let approx: Vec<i64> = ann
                .search_graph_space(v, 10)
                .unwrap()
                .iter()
                .map(|h| h.0)
                .collect();
            shared += approx.iter().filter(|a| exact.contains(a)).count();
            itself_first &= approx.first() == Some(id);
        }
        (shared as f64 / (10 * distinct.len()) as f64, itself_first)
    }

    /// A crowd of equal vectors shares one point: the other images are found as exact search
    /// finds them, ties come back by id, and the groups survive dumps and in-place updates.
    #[test]
    fn equal_vectors_share_one_point_and_the_rest_stay_reachable() {
        let seed = 20261206;
        let dim = 32;
        let distinct = random_points(300, dim, seed);
        let copy = random_points(1, dim, seed + 1)[0].1.clone();
        let copies: Vec<(i64, Vec<f32>)> = (301..=1800).map(|id| (id, copy.clone())).collect();
        let mut points = distinct.clone();
        points.extend(copies.iter().cloned());
        let tmp = tempfile::tempdir().unwrap();
        for dba in [0, DEFAULT_DBA] {
            let params = AnnParams {
                dba,
                ..AnnParams::default()
            };
            let mut ann = AnnIndex::build(&points, params).unwrap();
            assert_eq!(ann.len(), 1800);
            assert_eq!(ann.graph_points().len(), 1800);
            let (share, first) = overlap(&ann, &distinct);
            assert!(
                share >= 0.95 && first,
                "dba {dba}: overlap {share}, first {first}"
            );
            // the crowd comes back whole, by id
            let hits = ann.search(&copy, 1800).unwrap();
            assert_eq!(hits.len(), 1800, "dba {dba}");
            let ids: Vec<i64> = hits.iter().take(1500).map(|h| h.0).collect();
            assert_eq!(ids, (301..=1800).collect::<Vec<_>>(), "dba {dba}");
            assert_eq!(
                ann.search(&copy, 3)
                    .unwrap()
                    .iter()
                    .map(|h| h.0)
                    .collect::<Vec<_>>(),
                [301, 302, 303]
            );

            let rec = ann.dump(tmp.path(), 1, "w").unwrap();
            assert!(
                rec.count < 400,
                "{} points for 301 distinct vectors",
                rec.count
            );
            assert_eq!(rec.images(), 1800);
            let loaded = AnnIndex::load(tmp.path(), &rec).unwrap();
            assert_eq!(loaded.graph_points(), ann.graph_points());
            // a group naming a point the graph lacks is refused
            let mut bad = rec.clone();
            bad.groups.push((1 << 39, vec![1, 2]));
            assert!(AnnIndex::load(tmp.path(), &bad).is_err());

            // The point's own image removed, one copy changed, one removed: the rest stay.
            let mut now = points.clone();
            now.retain(|p| p.0 != 301 && p.0 != 302);
            let changed_id = 303;
            let fresh = random_points(1, dim, seed + 2)[0].1.clone();
            now.iter_mut().find(|p| p.0 == changed_id).unwrap().1 = fresh.clone();
            // and a new copy, which joins the crowd
            now.push((1801, copy.clone()));
            ann.update(&[changed_id, 1801], &[301, 302], |want| {
                Ok(pick_sorted(&now, want))
            })
            .unwrap();
            assert_eq!(ann.len(), 1799);
            let ids = ann.image_ids();
            assert_eq!(ids, now.iter().map(|p| p.0).collect::<Vec<_>>());
            let hits = ann.search(&copy, 1500).unwrap();
            assert_eq!(hits[0].0, 304, "dba {dba}");
            assert!(hits.iter().take(1497).all(|h| h.0 > 303), "dba {dba}");
            assert!(hits.iter().any(|h| h.0 == 1801), "dba {dba}");
            let rec = ann.dump(tmp.path(), 2, "w").unwrap();
            assert_eq!(rec.images(), 1799);
            let loaded = AnnIndex::load(tmp.path(), &rec).unwrap();
            assert_eq!(loaded.image_ids(), ids);
            let (share, first) = overlap(&loaded, &distinct);
            assert!(
                share >= 0.95 && first,
                "dba {dba}: after update, overlap {share}"
            );
        }
    }

    /// A crowd of near-identical vectors (no two equal) filed ahead of the rest: every other
    /// point still finds itself first and its exact neighbours, also after an in-place update.
    #[test]
    fn a_crowd_of_near_identical_vectors_does_not_trap_searches() {
        let seed = 20261207;
        let dim = 32;
        let centre = random_points(1, dim, seed)[0].1.clone();
        let jitter = random_points(1500, dim, seed + 1);
        let mut points: Vec<(i64, Vec<f32>)> = jitter
            .iter()
            .map(|(id, j)| {
                let v = centre.iter().zip(j).map(|(c, j)| c + 0.002 * j).collect();
                (*id, v)
            })
            .collect();
        let distinct: Vec<(i64, Vec<f32>)> = random_points(300, dim, seed + 2)
            .into_iter()
            .map(|(id, v)| (id + 1500, v))
            .collect();
        points.extend(distinct.iter().cloned());
        for dba in [0, DEFAULT_DBA] {
            let params = AnnParams {
                dba,
                ..AnnParams::default()
            };
            let mut ann = AnnIndex::build(&points, params).unwrap();
            assert_eq!(ann.graph_points().len(), 1800, "no two vectors are equal");
            let (share, first) = overlap(&ann, &distinct);
            assert!(
                share >= 0.95 && first,
                "dba {dba}: overlap {share}, first {first}"
            );
            // 100 more distinct points inserted in place
            let more: Vec<(i64, Vec<f32>)> = random_points(100, dim, seed + 3)
                .into_iter()
                .map(|(id, v)| (id + 1800, v))
                .collect();
            let mut now = points.clone();
            now.extend(more.iter().cloned());
            let ids: Vec<i64> = more.iter().map(|p| p.0).collect();
            ann.update(&ids, &[], |want| Ok(pick_sorted(&now, want)))
                .unwrap();
            let (share, first) = overlap(&ann, &more);
            assert!(
                share >= 0.95 && first,
                "dba {dba}: after update, overlap {share}, first {first}"
            );
        }
    }

    /// More results asked for than the graph reaches: every image comes back, as by exact
    /// search.
    #[test]
    fn asking_for_more_than_the_graph_holds_returns_every_image() {
        let points = random_points(250, 16, 7);
        for dba in [0, DEFAULT_DBA] {
            let params = AnnParams {
                dba,
                ..AnnParams::default()
            };
            let ann = AnnIndex::build(&points, params).unwrap();
            for k in [249, 250, 10_000] {
                let hits = ann.search(&points[0].1, k).unwrap();
                assert_eq!(hits.len(), k.min(250), "dba {dba}, k {k}");
            }
        }
    }
}
