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

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use hnsw_rs::prelude::{AnnT, Distance, Hnsw, HnswIo};
use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::pca::Projection;
pub use crate::vector::{dot, finite, sanitize, squared_l2};

/// The PCA projection's file inside a dump folder.
pub const PROJECTION_FILE: &str = "projection.bin";

/// Basename of the two hnsw_rs files inside a dump folder.
const GRAPH_BASENAME: &str = "graph";

/// File written first into every dump folder: with the folder's name pattern, it tells
/// lookalike's own folders from anything else found under `ann/`.
pub const DUMP_MARKER_FILE: &str = "lookalike-dump";

/// The marker file's exact content.
const DUMP_MARKER: &[u8] = b"HNSW dump written by lookalike; removed by lookalike when replaced\n";

/// Every file lookalike writes into a dump folder; clean-up removes these names and no other.
const DUMP_FILES: [&str; 3] = ["graph.hnsw.data", "graph.hnsw.graph", PROJECTION_FILE];

/// True for the names `dump` gives its folders: `v<version>-<hex nanoseconds>-<process id>`.
fn is_dump_folder_name(name: &str) -> bool {
    let Some(rest) = name.strip_prefix('v') else {
        return false;
    };
    let parts: Vec<&str> = rest.split('-').collect();
    let digits = |s: &str, radix: u32| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_digit(radix) && !c.is_ascii_uppercase())
    };
    parts.len() == 3 && digits(parts[0], 10) && digits(parts[1], 16) && digits(parts[2], 10)
}

/// True when `dir` is a real folder (not a link) holding lookalike's marker file.
pub fn is_own_dump(dir: &Path) -> bool {
    let marker = dir.join(DUMP_MARKER_FILE);
    std::fs::symlink_metadata(dir).is_ok_and(|m| m.is_dir())
        && std::fs::symlink_metadata(&marker)
            .is_ok_and(|m| m.is_file() && m.len() == DUMP_MARKER.len() as u64)
        && std::fs::read(&marker).is_ok_and(|b| b == DUMP_MARKER)
}

/// Removes a dump folder lookalike wrote: only the file names it writes, then the marker and
/// the folder if nothing else is left. Anything else leaves the folder in place.
fn remove_dump_folder(dir: &Path) {
    if !is_own_dump(dir) {
        return;
    }
    for name in DUMP_FILES {
        let path = dir.join(name);
        if std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_file()) {
            let _ = std::fs::remove_file(&path);
        }
    }
    let only_marker = std::fs::read_dir(dir).is_ok_and(|entries| {
        let names: Vec<_> = entries.flatten().map(|e| e.file_name()).collect();
        names.len() == 1 && names[0] == DUMP_MARKER_FILE
    });
    if only_marker {
        let _ = std::fs::remove_file(dir.join(DUMP_MARKER_FILE));
        // Fails, harmlessly, if something appeared meanwhile.
        let _ = std::fs::remove_dir(dir);
    }
}

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

/// Euclidean distance, written so the compiler vectorises it (eight independent accumulators).
#[derive(Debug, Default, Clone, Copy)]
pub struct FusedL2;

impl Distance<f32> for FusedL2 {
    fn eval(&self, va: &[f32], vb: &[f32]) -> f32 {
        squared_l2(va, vb).sqrt()
    }
}

/// Graph dimension for fused vectors: on wang and ukbench1000 a 128-dimensional PCA ranks as
/// well as the full vector (BENCHMARKS.md), at an eighth of the graph's memory.
pub const DEFAULT_PCA_DIMS: usize = 128;

/// Graph size up to which searches use `ef_search` as configured.
const EF_BASE_POINTS: f64 = 100_000.0;

/// `base` up to `EF_BASE_POINTS` points, then doubled for every tenfold growth: a graph's
/// search path lengthens with its size, and a fixed beam loses recall (measured: 100,000
/// points at ef 64, recall@10 0.998; 1,000,000 at ef 64, 0.940).
pub fn scaled_ef(base: usize, n: usize) -> usize {
    let growth = (n as f64 / EF_BASE_POINTS).max(1.0).log10();
    (base as f64 * 2f64.powf(growth)).round() as usize
}

/// Candidates taken from the graph for exact re-ranking, whatever the number of results asked.
pub const RERANK_DEPTH: usize = 32;

/// Neighbours averaged into each stored vector (database-side augmentation). Two, as for query
/// expansion and for the same reason: on ukbench1000 (4 views per object) more neighbours pull
/// in other objects; both shared sets gain (BENCHMARKS.md).
pub const DEFAULT_DBA: usize = 2;

/// Links per node and construction beam of the graph an augmented build makes first, only to
/// find each point's augmentation neighbours. On 100,980 projected vectors of the fast profile
/// (`tools/src/bin/neighbour_graph.rs`), against the searchable graph's 24 and 200: built in 41.2 s
/// instead of 136.8 s, 99.9% of the neighbours an exact search finds (100.0% with 24 and 200).
const NEIGHBOUR_GRAPH: (usize, usize) = (12, 64);

/// Graphs up to this size are built with the construction beam [`SMALL_GRAPH_EF_CONSTRUCTION`]
/// instead of `AnnParams::ef_construction`.
const SMALL_GRAPH_UP_TO: usize = 10_000;

/// Construction beam of small graphs: on 10,000 projected vectors of the fast profile
/// (`tools/src/bin/neighbour_graph.rs`), recall@10 1.0000 as with 200, built in 1.7 s instead of 3.1 s.
const SMALL_GRAPH_EF_CONSTRUCTION: usize = 100;

/// Collections up to this size find augmentation neighbours by exact search (deterministic;
/// 10,000 points cost about 10^10 multiply-adds), larger ones through the first graph.
const EXACT_NEIGHBOURS_UP_TO: usize = 10_000;

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

/// Points per round of an in-place update: each round's augmentation neighbours are searched
/// in the graph holding the rounds before it, plus exactly among the round's own points.
const UPDATE_ROUND: usize = 1024;

/// Graph candidates whose plain vectors an inserted point's augmentation neighbours are chosen
/// from (the graph ranks by augmented vectors, the augmentation by plain ones).
const UPDATE_CANDIDATES: usize = 32;

/// Neighbours enter an augmented vector at this share of the weight query expansion gives
/// them: full weight, as alpha-DBA is defined. Until rankings put the candidate nearest to the
/// example first ([`crate::nearest_first`]), half weight was used because distorted copies
/// lost their originals to the originals' neighbours (wang, JPEG quality 30: recall@1 0.97 ->
/// 0.94); with it they do not (BENCHMARKS.md, "What each ranking step adds").
pub const DEFAULT_DBA_SHARE: f32 = 1.0;

/// Graph construction and search parameters.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AnnParams {
    /// Links per node (hnsw_rs exits the process above 256; kept far below).
    pub max_connections: usize,
    pub ef_construction: usize,
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

/// What SQLite records about a dump, checked before loading it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DumpRecord {
    /// Folder (relative to the collection's `ann/`) holding the two hnsw_rs files.
    pub folder: String,
    /// Basename hnsw_rs used.
    pub basename: String,
    pub data_blake3: String,
    pub graph_blake3: String,
    pub data_len: u64,
    pub graph_len: u64,
    /// Number of points.
    pub count: usize,
    pub dim: usize,
    /// The store's data version the graph was built from.
    pub data_version: u64,
    /// The fusion the vectors were built with.
    pub fusion: String,
    pub params: AnnParams,
    /// Checksum and length of the PCA projection file, when the graph holds projected vectors.
    #[serde(default)]
    pub projection: Option<(String, u64)>,
    /// Data ids of points left in the graph but never returned (removed or changed images).
    #[serde(default)]
    pub hidden: Vec<usize>,
    /// In-place updates since the graph was last built in full.
    #[serde(default)]
    pub updates: u32,
    /// Points of that full build (0 in records written before in-place updates: `count`).
    #[serde(default)]
    pub built_count: usize,
}

/// An HNSW graph over `(image id, fused vector)` points.
pub struct AnnIndex {
    hnsw: Hnsw<'static, f32, FusedL2>,
    /// Points searches can return (the graph's points less the hidden ones).
    count: usize,
    /// Data ids of points searches skip, sorted.
    hidden: Vec<usize>,
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

fn file_blake3(path: &Path) -> Result<(String, u64)> {
    let mut hasher = blake3::Hasher::new();
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let len = file.metadata().map_err(|e| Error::io(path, e))?.len();
    hasher.update_reader(file).map_err(|e| Error::io(path, e))?;
    Ok((hasher.finalize().to_hex().to_string(), len))
}

/// Builds a graph batch by batch, so that callers streaming vectors (from SQLite, say) need
/// not hold them all: the graph keeps its own copy of each, a batch can be dropped once inserted.
pub struct AnnBuilder {
    hnsw: Hnsw<'static, f32, FusedL2>,
    /// Points kept out of the graph until `finish`: an augmented build small enough to find
    /// neighbours by exact search needs no plain graph, only the augmented one.
    held: Option<Vec<(i64, Vec<f32>)>>,
    count: usize,
    dim: usize,
    projection: Option<Projection>,
    params: AnnParams,
}

impl AnnBuilder {
    /// A builder for about `capacity` points of length `dim` (before `projection`). With
    /// `params.dba > 0` the graph it fills first only finds augmentation neighbours (see
    /// `NEIGHBOUR_GRAPH`); `finish` builds the searchable one with `params`.
    pub fn new(
        capacity: usize,
        dim: usize,
        projection: Option<Projection>,
        params: AnnParams,
    ) -> AnnBuilder {
        if params.dba == 0 {
            return Self::searchable(capacity, dim, projection, params);
        }
        if capacity <= EXACT_NEIGHBOURS_UP_TO {
            // Points wait outside the graph, which will hold their augmented vectors.
            let mut builder = Self::searchable(capacity, dim, projection, params);
            builder.held = Some(Vec::new());
            return builder;
        }
        let (links, ef_construction) = NEIGHBOUR_GRAPH;
        Self::with_graph(capacity, dim, projection, params, links, ef_construction)
    }

    /// A builder whose graph is made with `links` per node and beam `ef_construction`.
    fn with_graph(
        capacity: usize,
        dim: usize,
        projection: Option<Projection>,
        params: AnnParams,
        links: usize,
        ef_construction: usize,
    ) -> AnnBuilder {
        // hnsw_rs only dumps graphs made with its maximum layer count.
        let layers = 16;
        let hnsw = Hnsw::<f32, FusedL2>::new(
            links.min(255),
            capacity.max(1),
            layers,
            ef_construction,
            FusedL2,
        );
        AnnBuilder {
            hnsw,
            held: None,
            count: 0,
            dim,
            projection,
            params,
        }
    }

    /// A builder of the searchable graph itself, made with `params` whatever `params.dba`
    /// (a graph of at most [`SMALL_GRAPH_UP_TO`] points with a narrower construction beam).
    fn searchable(
        capacity: usize,
        dim: usize,
        projection: Option<Projection>,
        params: AnnParams,
    ) -> AnnBuilder {
        let ef_construction = if capacity <= SMALL_GRAPH_UP_TO {
            params.ef_construction.min(SMALL_GRAPH_EF_CONSTRUCTION)
        } else {
            params.ef_construction
        };
        Self::with_graph(
            capacity,
            dim,
            projection,
            params,
            params.max_connections,
            ef_construction,
        )
    }

    /// The projection vectors must have gone through before `insert`.
    pub fn projection(&self) -> Option<&Projection> {
        self.projection.as_ref()
    }

    /// Inserts a batch of (already projected) points, in parallel. Non-finite components
    /// are taken as zero ([`sanitize`]).
    pub fn insert(&mut self, points: &[(i64, Vec<f32>)]) {
        let points = finite_points(points);
        let points = points.as_ref();
        self.count += points.len();
        if let Some(held) = &mut self.held {
            if self.count <= EXACT_NEIGHBOURS_UP_TO {
                held.extend_from_slice(points);
                return;
            }
            // More points than announced: the plain graph is needed after all.
            let held = self.held.take().unwrap_or_default();
            self.insert_into_graph(&held);
        }
        self.insert_into_graph(points);
    }

    fn insert_into_graph(&mut self, points: &[(i64, Vec<f32>)]) {
        // Augmentation of extreme (finite) values can overflow: the graph must never see a NaN.
        let points = finite_points(points);
        let data: Vec<(&[f32], usize)> = points
            .iter()
            .map(|(id, v)| (v.as_slice(), *id as usize))
            .collect();
        if !data.is_empty() {
            insert_points(&self.hnsw, &data);
        }
    }

    /// The finished, searchable index; with `params.dba > 0`, a graph over the augmented
    /// vectors (a larger collection first builds a plain graph to find each point's neighbours).
    pub fn finish(mut self) -> AnnIndex {
        let dba = self.params.dba;
        if let Some(mut held) = self.held.take() {
            held.sort_unstable_by_key(|p| p.0);
            let nearest = all_exact_ids(&held, dba + 1);
            let augmented = augment(&held, dba, &self.params, |i, _| nearest[i].clone());
            drop(held);
            self.insert_into_graph(&augmented);
            return self.finish_plain();
        }
        let plain = self.finish_plain();
        // A lone point has no neighbour: its augmentation is itself.
        if dba == 0 || plain.count < 2 {
            return plain;
        }
        plain.augmented(dba)
    }

    fn finish_plain(self) -> AnnIndex {
        let mut hnsw = self.hnsw;
        hnsw.set_searching_mode(true);
        AnnIndex {
            hnsw,
            count: self.count,
            hidden: Vec::new(),
            updates: 0,
            built_count: self.count,
            dim: self.dim,
            projection: self.projection,
            ef: scaled_ef(self.params.ef_search, self.count),
            params: self.params,
        }
    }
}

/// Inserts points into a graph, in parallel. Unit tests insert one at a time: hnsw_rs draws
/// node levels from a fixed seed, so a test's graph is then a function of its data and the
/// data seed a failing test prints rebuilds the same graph.
fn insert_points(hnsw: &Hnsw<'static, f32, FusedL2>, data: &Vec<(&[f32], usize)>) {
    if cfg!(test) {
        data.iter().for_each(|&point| hnsw.insert_slice(point));
    } else {
        hnsw.parallel_insert_slice(data);
    }
}

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
fn all_exact_ids(points: &[(i64, Vec<f32>)], k: usize) -> Vec<Vec<i64>> {
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
fn augment(
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
    /// Builds the graph from points (inserted in parallel).
    /// Vectors longer than `params.pca_dims` are projected on a PCA fitted to these points.
    pub fn build(points: &[(i64, Vec<f32>)], params: AnnParams) -> AnnIndex {
        let points = finite_points(points);
        let points = points.as_ref();
        let dim = points.first().map_or(0, |p| p.1.len());
        let refs: Vec<&[f32]> = points.iter().map(|p| p.1.as_slice()).collect();
        match Projection::fit(&refs, params.pca_dims) {
            Some(p) => {
                let projected: Vec<(i64, Vec<f32>)> =
                    points.par_iter().map(|(id, v)| (*id, p.apply(v))).collect();
                Self::build_projected(&projected, dim, Some(p), params)
            }
            None => Self::build_projected(points, dim, None, params),
        }
    }

    /// Builds the graph over vectors already passed through `projection` (which takes vectors
    /// of length `dim`); without a projection the vectors are used as they are.
    pub fn build_projected(
        points: &[(i64, Vec<f32>)],
        dim: usize,
        projection: Option<Projection>,
        params: AnnParams,
    ) -> AnnIndex {
        let mut builder = AnnBuilder::new(points.len(), dim, projection, params);
        builder.insert(points);
        builder.finish()
    }

    /// Rebuilds the graph over every point averaged with its `k` nearest neighbours (found in
    /// this graph, the point itself left out), weighted as query expansion weighs them.
    fn augmented(self, k: usize) -> AnnIndex {
        let points = self.graph_points();
        let ef = self.ef.max(k + 1);
        // Small collections find neighbours exactly, so evaluations are reproducible.
        let exact = (points.len() <= EXACT_NEIGHBOURS_UP_TO).then(|| all_exact_ids(&points, k + 1));
        let augmented = augment(&points, k, &self.params, |i, v| {
            if let Some(exact) = &exact {
                exact[i].clone()
            } else {
                let hits = self.hnsw.search(v, k + 1, ef);
                hits.iter().map(|n| n.d_id as i64).collect()
            }
        });
        drop(points);
        let params = AnnParams {
            dba: k,
            ..self.params
        };
        let mut builder = AnnBuilder::searchable(self.count, self.dim, self.projection, params);
        drop(self.hnsw);
        builder.insert(&augmented);
        builder.finish_plain()
    }

    /// True when the graph holds augmented vectors: searches rank by them, not by full vectors.
    pub fn is_augmented(&self) -> bool {
        self.params.dba > 0
    }

    /// The graph's own vectors with their ids, sorted by id (projected, augmented if so built).
    pub fn graph_points(&self) -> Vec<(i64, Vec<f32>)> {
        if self.hnsw.get_nb_point() == 0 {
            // hnsw_rs cannot iterate a graph without an entry point.
            return Vec::new();
        }
        let mut points: Vec<(i64, Vec<f32>)> = self
            .hnsw
            .get_point_indexation()
            .into_iter()
            .filter(|p| !self.is_hidden(p.get_origin_id()))
            .map(|p| (image_of(p.get_origin_id()), p.get_v().to_vec()))
            .collect();
        points.sort_unstable_by_key(|p| p.0);
        points
    }

    /// A full-length vector in the graph's space (projected when the graph is).
    pub fn to_graph_space(&self, v: &[f32]) -> Vec<f32> {
        match &self.projection {
            Some(p) => p.apply(v),
            None => v.to_vec(),
        }
    }

    /// The `k` nearest ids to a vector already in the graph's space, with distances in it.
    pub fn search_graph_space(&self, query: &[f32], k: usize) -> Vec<(i64, f32)> {
        if self.count == 0 || k == 0 || query.len() != self.graph_dim() {
            return Vec::new();
        }
        let query = finite(query);
        let query = query.as_ref();
        // Hidden points still route searches; when they crowd the results, the search widens.
        let total = self.hnsw.get_nb_point();
        let mut want = k;
        let mut hits: Vec<(i64, f32)> = loop {
            let found = self.hnsw.search(query, want, self.ef.max(want));
            let reached = found.len();
            let visible: Vec<(i64, f32)> = found
                .into_iter()
                .filter(|n| !self.is_hidden(n.d_id))
                .map(|n| (image_of(n.d_id), n.distance))
                .collect();
            if visible.len() >= k || reached < want || want >= total {
                break visible;
            }
            want = (want * 2).min(total);
        };
        hits.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
        hits.truncate(k);
        hits
    }

    fn is_hidden(&self, data_id: usize) -> bool {
        !self.hidden.is_empty() && self.hidden.binary_search(&data_id).is_ok()
    }

    /// The data id of each image's visible point, by image id.
    fn visible_points(&self) -> std::collections::HashMap<i64, usize> {
        if self.hnsw.get_nb_point() == 0 {
            return std::collections::HashMap::new();
        }
        self.hnsw
            .get_point_indexation()
            .into_iter()
            .map(|p| p.get_origin_id())
            .filter(|&d| !self.is_hidden(d))
            .map(|d| (image_of(d), d))
            .collect()
    }

    /// Image ids the graph returns, sorted.
    pub fn image_ids(&self) -> Vec<i64> {
        let mut ids: Vec<i64> = self.visible_points().into_keys().collect();
        ids.sort_unstable();
        ids
    }

    /// In-place updates since the graph was last built in full.
    pub fn updates(&self) -> u32 {
        self.updates
    }

    /// Points of the last full build.
    pub fn built_count(&self) -> usize {
        self.built_count
    }

    /// Points kept in the graph only to route searches (removed or changed images).
    pub fn hidden_count(&self) -> usize {
        self.hidden.len()
    }

    /// Data ids of the hidden points, sorted.
    pub fn hidden(&self) -> &[usize] {
        &self.hidden
    }

    /// Hides the visible points of `images` (the graph itself is unchanged: a dump of it stays
    /// valid, with these points added to its record's hidden ones). Counts as an update.
    pub fn hide(&mut self, images: &[i64]) {
        let visible = self.visible_points();
        self.hidden
            .extend(images.iter().filter_map(|id| visible.get(id).copied()));
        self.hidden.sort_unstable();
        self.hidden.dedup();
        self.updates += 1;
        self.recount();
    }

    /// Derives the searchable count and the beam width from the graph and its hidden points.
    fn recount(&mut self) {
        self.count = self.hnsw.get_nb_point() - self.hidden.len();
        self.ef = scaled_ef(self.params.ef_search, self.count);
    }

    /// True when `changed` images (new, or with new vectors) and `removed` ones can be applied
    /// in place: image ids fit the data ids, and update numbers remain.
    pub fn can_update(&self, changed: &[i64]) -> bool {
        self.updates < MAX_UPDATES
            && changed
                .iter()
                .all(|&id| (0..=IMAGE_ID_MASK as i64).contains(&id))
    }

    /// Brings the graph up to date without rebuilding it: the points of `removed` images and
    /// the old points of `changed` ones are hidden (they still route searches), and `changed`
    /// images (new, or with new vectors) are inserted through the same projection, a round at a
    /// time. `full` gives full fused vectors by image id, sorted by id.
    ///
    /// In an augmented graph each inserted vector is averaged with its nearest neighbours as a
    /// full build would average it. Points already in the graph keep their augmentation (a
    /// full build would also average them with the new images); `index --rebuild-graph`
    /// refreshes them.
    pub fn update(
        &mut self,
        changed: &[i64],
        removed: &[i64],
        full: impl Fn(&[i64]) -> Result<Vec<(i64, Vec<f32>)>>,
    ) -> Result<()> {
        if !self.can_update(changed) {
            return Err(Error::InvalidInput(
                "graph cannot be updated in place; rebuild it".into(),
            ));
        }
        let stale: Vec<i64> = removed.iter().chain(changed).copied().collect();
        self.hide(&stale);
        let update = self.updates;
        let dba = self.params.dba;
        let rule = crate::query_expansion::QueryExpansion {
            n: dba,
            alpha: self.params.dba_alpha,
        };
        for round in changed.chunks(UPDATE_ROUND) {
            let projected: Vec<(i64, Vec<f32>)> = full(round)?
                .par_iter()
                .map(|(id, v)| (*id, self.to_graph_space(&finite(v))))
                .collect();
            let inserted: Vec<(i64, Vec<f32>)> = if dba == 0 {
                projected
            } else {
                // Neighbours come from the graph's candidates (by their plain vectors) and from
                // this round, which the graph does not hold yet.
                let candidates: Vec<Vec<i64>> = projected
                    .par_iter()
                    .map(|(_, v)| {
                        self.search_graph_space(v, UPDATE_CANDIDATES)
                            .into_iter()
                            .map(|h| h.0)
                            .collect()
                    })
                    .collect();
                let mut wanted: Vec<i64> = candidates.iter().flatten().copied().collect();
                wanted.sort_unstable();
                wanted.dedup();
                // Fetched a round's worth at a time: full vectors are large, projected ones small.
                let mut known: Vec<(i64, Vec<f32>)> = Vec::with_capacity(wanted.len());
                for ids in wanted.chunks(UPDATE_ROUND) {
                    known.par_extend(
                        full(ids)?
                            .into_par_iter()
                            .map(|(id, v)| (id, self.to_graph_space(&finite(&v)))),
                    );
                }
                known.sort_unstable_by_key(|p| p.0);
                projected
                    .par_iter()
                    .zip(&candidates)
                    .map(|((id, v), near)| {
                        let mut scored: Vec<(i64, f32, &[f32])> = near
                            .iter()
                            .filter_map(|&n| lookup(&known, n).map(|w| (n, w)))
                            .chain(projected.iter().map(|(n, w)| (*n, w.as_slice())))
                            .filter(|(n, _)| n != id)
                            .map(|(n, w)| (n, squared_l2(v, w), w))
                            .collect();
                        scored.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
                        scored.dedup_by_key(|s| s.0);
                        let neighbours = scored.iter().take(dba).map(|s| s.2);
                        (
                            *id,
                            rule.expand_scaled(v, neighbours, self.params.dba_share),
                        )
                    })
                    .collect()
            };
            let inserted = finite_points(&inserted);
            let data: Vec<(&[f32], usize)> = inserted
                .iter()
                .map(|(id, v)| (v.as_slice(), data_id(*id, update)))
                .collect();
            self.hnsw.set_searching_mode(false);
            insert_points(&self.hnsw, &data);
            self.hnsw.set_searching_mode(true);
        }
        self.recount();
        Ok(())
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
    pub fn len(&self) -> usize {
        self.count
    }

    /// True when the graph has no point.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Vector dimension.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The `k` nearest ids to a full-length query, with distances in the graph's space.
    pub fn search(&self, query: &[f32], k: usize) -> Vec<(i64, f32)> {
        if query.len() != self.dim {
            return Vec::new();
        }
        self.search_graph_space(&self.to_graph_space(&finite(query)), k)
    }

    /// Graph search, then exact re-ranking of at least [`RERANK_DEPTH`] candidates on the full
    /// vectors (`full` looks them up by id): the order and distances exact search would give
    /// among those candidates.
    pub fn search_reranked<'a>(
        &self,
        query: &[f32],
        k: usize,
        full: impl Fn(i64) -> Option<&'a [f32]>,
    ) -> Vec<(i64, f32)> {
        rerank(query, &self.search(query, k.max(RERANK_DEPTH)), k, full)
    }

    /// Writes the graph into a new folder under `ann_dir` and returns what to record in SQLite.
    /// The folder is made by this call (never one that exists), its marker file written first,
    /// so that clean-up can tell it is lookalike's; on failure what was written is removed. An
    /// empty graph writes no files: its record alone describes it.
    pub fn dump(&self, ann_dir: &Path, data_version: u64, fusion: &str) -> Result<DumpRecord> {
        let mut record = DumpRecord {
            folder: String::new(),
            basename: String::new(),
            data_blake3: String::new(),
            graph_blake3: String::new(),
            data_len: 0,
            graph_len: 0,
            count: self.hnsw.get_nb_point(),
            dim: self.dim,
            data_version,
            fusion: fusion.to_string(),
            params: self.params,
            projection: None,
            hidden: self.hidden.clone(),
            updates: self.updates,
            built_count: self.built_count,
        };
        if record.count == 0 {
            return Ok(record);
        }
        std::fs::create_dir_all(ann_dir).map_err(|e| Error::io(ann_dir, e))?;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let folder = format!("v{data_version}-{nanos:x}-{}", std::process::id());
        let dir = ann_dir.join(&folder);
        std::fs::create_dir(&dir).map_err(|e| Error::io(&dir, e))?;
        let marker = dir.join(DUMP_MARKER_FILE);
        let written = std::fs::File::options()
            .write(true)
            .create_new(true)
            .open(&marker)
            .and_then(|mut f| std::io::Write::write_all(&mut f, DUMP_MARKER))
            .map_err(|e| Error::io(&marker, e));
        if let Err(e) = written {
            // Only the empty folder this call made is removed.
            let _ = std::fs::remove_dir(&dir);
            return Err(e);
        }
        match self.dump_files(&dir) {
            Ok(files) => {
                record.folder = folder;
                (record.basename, record.projection) = (GRAPH_BASENAME.to_string(), files.2);
                (record.data_blake3, record.data_len) = files.0;
                (record.graph_blake3, record.graph_len) = files.1;
                Ok(record)
            }
            Err(e) => {
                remove_dump_folder(&dir);
                Err(e)
            }
        }
    }

    /// Writes the graph's files into `dir` (a new dump folder); returns the checksums and
    /// lengths of the data, graph and projection files.
    #[allow(clippy::type_complexity)]
    fn dump_files(
        &self,
        dir: &Path,
    ) -> Result<((String, u64), (String, u64), Option<(String, u64)>)> {
        let basename = self
            .hnsw
            .file_dump(dir, GRAPH_BASENAME)
            .map_err(|e| Error::io(dir, std::io::Error::other(e.to_string())))?;
        if basename != GRAPH_BASENAME {
            return Err(Error::Internal(format!(
                "{}: the graph was dumped as '{basename}', not '{GRAPH_BASENAME}'",
                dir.display()
            )));
        }
        let data = dir.join(format!("{basename}.hnsw.data"));
        let graph = dir.join(format!("{basename}.hnsw.graph"));
        for p in [&data, &graph] {
            std::fs::File::open(p)
                .and_then(|f| f.sync_all())
                .map_err(|e| Error::io(p, e))?;
        }
        let projection = match &self.projection {
            Some(p) => {
                let path = dir.join(PROJECTION_FILE);
                std::fs::File::options()
                    .write(true)
                    .create_new(true)
                    .open(&path)
                    .and_then(|mut f| {
                        std::io::Write::write_all(&mut f, &p.to_bytes())?;
                        f.sync_all()
                    })
                    .map_err(|e| Error::io(&path, e))?;
                Some(file_blake3(&path)?)
            }
            None => None,
        };
        Ok((file_blake3(&data)?, file_blake3(&graph)?, projection))
    }

    /// Checks a dump's files against its record: sizes first, then checksums.
    pub fn verify(ann_dir: &Path, record: &DumpRecord) -> Result<()> {
        if record.count == 0 {
            // An empty graph has no files.
            return Ok(());
        }
        let dir = ann_dir.join(&record.folder);
        let data = dir.join(format!("{}.hnsw.data", record.basename));
        let graph = dir.join(format!("{}.hnsw.graph", record.basename));
        let projection = dir.join(PROJECTION_FILE);
        let mut files = vec![
            (&data, record.data_len, &record.data_blake3),
            (&graph, record.graph_len, &record.graph_blake3),
        ];
        if let Some((sum, len)) = &record.projection {
            files.push((&projection, *len, sum));
        }
        for (path, len, sum) in files {
            let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
            if meta.len() != len {
                return Err(Error::Corrupt {
                    path: path.to_path_buf(),
                    reason: format!(
                        "{} bytes, expected {len}; the dump will be rebuilt",
                        meta.len()
                    ),
                });
            }
            let (actual, _) = file_blake3(path)?;
            if actual != *sum {
                return Err(Error::Corrupt {
                    path: path.to_path_buf(),
                    reason: "checksum mismatch; the dump will be rebuilt".into(),
                });
            }
        }
        Ok(())
    }

    /// Loads a dump after verifying it. A failed check is an error, never a process exit.
    pub fn load(ann_dir: &Path, record: &DumpRecord) -> Result<AnnIndex> {
        Self::verify(ann_dir, record)?;
        if record.count == 0 {
            let builder = AnnBuilder::searchable(0, record.dim, None, record.params);
            return Ok(AnnIndex {
                updates: record.updates,
                ..builder.finish_plain()
            });
        }
        let dir = ann_dir.join(&record.folder);
        // hnsw_rs ties the graph's lifetime to its loader; the loader is small and lives as long
        // as the process, so it is leaked rather than made self-referential.
        let io: &'static mut HnswIo = Box::leak(Box::new(HnswIo::new(&dir, &record.basename)));
        let mut hnsw = io.load_hnsw::<f32, FusedL2>().map_err(|e| Error::Corrupt {
            path: dir.clone(),
            reason: e.to_string(),
        })?;
        if hnsw.get_nb_point() != record.count {
            return Err(Error::Corrupt {
                path: dir.clone(),
                reason: format!("{} points, expected {}", hnsw.get_nb_point(), record.count),
            });
        }
        let projection = match record.projection {
            Some(_) => {
                let path = dir.join(PROJECTION_FILE);
                let bytes = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
                let p = Projection::from_bytes(&bytes)?;
                if p.dim_in() != record.dim
                    || p.dim_out() != hnsw.get_point_indexation().get_data_dimension()
                {
                    return Err(Error::InvalidInput(format!(
                        "{}: projection {}->{} does not fit the graph",
                        path.display(),
                        p.dim_in(),
                        p.dim_out()
                    )));
                }
                Some(p)
            }
            None => None,
        };
        let mut hidden = record.hidden.clone();
        hidden.sort_unstable();
        hidden.dedup();
        if hidden.len() > record.count {
            return Err(Error::InvalidInput(format!(
                "{}: {} hidden points of {}",
                dir.display(),
                hidden.len(),
                record.count
            )));
        }
        let count = record.count - hidden.len();
        hnsw.set_searching_mode(true);
        Ok(AnnIndex {
            hnsw,
            count,
            hidden,
            updates: record.updates,
            built_count: if record.built_count == 0 {
                record.count
            } else {
                record.built_count
            },
            dim: record.dim,
            projection,
            ef: scaled_ef(record.params.ef_search, count),
            params: record.params,
        })
    }

    /// Deletes lookalike's own dump folders other than `keep` (left-overs of earlier or
    /// interrupted runs): folders named as `dump` names them and holding its marker file, and
    /// in them only the files a dump writes. Anything else under `ann_dir` is left alone.
    pub fn remove_other_dumps(ann_dir: &Path, keep: &str) {
        let Ok(entries) = std::fs::read_dir(ann_dir) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            if let Some(name) = name.to_str()
                && name != keep
                && is_dump_folder_name(name)
            {
                remove_dump_folder(&entry.path());
            }
        }
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
    let mut hits: Vec<(i64, f32)> = candidates
        .iter()
        .filter_map(|&(id, _)| full(id).map(|v| (id, squared_l2(v, query).sqrt())))
        .filter(|h| !h.1.is_nan())
        .collect();
    hits.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
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
    let cmp = |a: &(i64, f32), b: &(i64, f32)| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0));
    all.select_nth_unstable_by(k - 1, cmp);
    all.truncate(k);
    all.sort_by(cmp);
    all
}

/// The collection's `ann/` folder.
pub fn ann_dir(collection: &Path) -> PathBuf {
    collection.join("ann")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query_expansion::QueryExpansion;

    /// Deterministic pseudo-random vectors (SplitMix64); with serial insertion in tests, the
    /// seed a failure prints rebuilds its graph too.
    pub(crate) fn random_points(n: usize, dim: usize, seed: u64) -> Vec<(i64, Vec<f32>)> {
        let mut rng = crate::rng::SplitMix64::new(seed);
        let mut next = || (rng.next_u64() >> 40) as f32 / (1u64 << 24) as f32;
        (0..n)
            .map(|i| ((i + 1) as i64, (0..dim).map(|_| next()).collect()))
            .collect()
    }

    #[test]
    fn hnsw_recall_at_10_against_exact_is_high() {
        let seed = 20261122;
        let points = random_points(3000, 32, seed);
        let plain = AnnParams {
            dba: 0,
            ..AnnParams::default()
        };
        let index = AnnIndex::build(&points, plain);
        assert!(!index.is_augmented());
        let queries = random_points(200, 32, seed + 1);
        let mut hit = 0;
        for (_, q) in &queries {
            let exact = exact_ids(&points, q, 10);
            let approx: Vec<i64> = index.search(q, 10).iter().map(|h| h.0).collect();
            hit += approx.iter().filter(|id| exact.contains(id)).count();
        }
        let recall = hit as f64 / (10.0 * queries.len() as f64);
        assert!(recall >= 0.95, "recall@10 {recall} (seed {seed})");
    }

    /// Ids of the `k` points of `points` nearest to `query`, best first (exact search).
    fn exact_ids(points: &[(i64, Vec<f32>)], query: &[f32], k: usize) -> Vec<i64> {
        exact_search(points, query, k).iter().map(|h| h.0).collect()
    }

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

    /// The `DEFAULT_DBA` exact nearest neighbours of point `id` (at `v`), itself left out.
    fn exact_neighbours<'a>(points: &'a [(i64, Vec<f32>)], id: i64, v: &[f32]) -> Vec<&'a [f32]> {
        exact_search(points, v, DEFAULT_DBA + 1)
            .iter()
            .filter(|h| h.0 != id)
            .take(DEFAULT_DBA)
            .filter_map(|h| lookup(points, h.0))
            .collect()
    }

    #[test]
    fn augmented_graph_holds_each_point_averaged_with_its_neighbours() {
        let seed = 20261123;
        let points = random_points(600, 24, seed);
        let index = AnnIndex::build(&points, AnnParams::default());
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
            let q = index.to_graph_space(q);
            let exact = exact_ids(&stored, &q, 10);
            let approx = index.search_graph_space(&q, 10);
            hit += approx.iter().filter(|h| exact.contains(&h.0)).count();
        }
        assert!(
            hit >= 950,
            "recall@10 {} (seed {seed})",
            hit as f64 / 1000.0
        );
    }

    /// An in-place update leaves the graph as a full build over the final points would be:
    /// the same images, each inserted one averaged with its exact neighbours, hidden points
    /// never returned, high recall; and a dump of it loads back the same.
    #[test]
    fn in_place_update_inserts_hides_and_survives_a_dump() {
        let seed = 20261127;
        let dim = 24;
        let mut points = random_points(800, dim, seed);
        let mut ann = AnnIndex::build(&points[..600], AnnParams::default());
        // 200 new images, 20 changed (same ids, new vectors), 30 removed.
        let fresh = random_points(20, dim, seed + 1);
        for (i, (_, v)) in fresh.into_iter().enumerate() {
            points[10 * i].1 = v;
        }
        let removed: Vec<i64> = (0..30).map(|i| points[5 + 10 * i].0).collect();
        points.retain(|p| !removed.contains(&p.0));
        let mut changed: Vec<i64> = (0..20).map(|i| points[10 * i].0).collect();
        changed.extend(points.iter().filter(|p| p.0 > 600).map(|p| p.0));
        // Changed ids are looked up before the removals shifted the indices above.
        assert!(changed.iter().all(|id| !removed.contains(id)));
        let full = |ids: &[i64]| -> Result<Vec<(i64, Vec<f32>)>> { Ok(pick_sorted(&points, ids)) };
        ann.update(&changed, &removed, full).unwrap();
        assert_eq!((ann.updates(), ann.built_count()), (1, 600));
        assert_eq!(ann.hidden_count(), 50);
        assert_eq!(ann.len(), points.len());
        let ids: Vec<i64> = points.iter().map(|p| p.0).collect();
        assert_eq!(ann.image_ids(), ids);

        let stored = ann.graph_points();
        assert_eq!(stored.iter().map(|p| p.0).collect::<Vec<_>>(), ids);
        let rule = QueryExpansion {
            n: DEFAULT_DBA,
            alpha: crate::query_expansion::DEFAULT_QE.alpha,
        };
        let mut matching = 0;
        for id in &changed {
            let v = lookup(&points, *id).unwrap();
            let expected = rule.expand_scaled(v, exact_neighbours(&points, *id, v), 1.0);
            if squared_l2(&expected, lookup(&stored, *id).unwrap()) < 1e-8 {
                matching += 1;
            }
        }
        // The neighbours come from graph candidates, as a full build's do above 10,000 points.
        assert!(matching >= 200, "{matching} of 220 match (seed {seed})");

        // Removed images and the old vectors of changed ones are never returned.
        for id in &removed {
            let old = random_points(800, dim, seed)[(*id - 1) as usize].1.clone();
            let hits = ann.search_graph_space(&old, 10);
            assert_eq!(hits.len(), 10);
            assert!(hits.iter().all(|h| !removed.contains(&h.0)));
        }
        let queries = random_points(100, dim, seed + 2);
        let recall = |index: &AnnIndex| {
            let mut hit = 0;
            for (_, q) in &queries {
                let exact = exact_ids(&stored, q, 10);
                let approx = index.search_graph_space(q, 10);
                let mut seen: Vec<i64> = approx.iter().map(|h| h.0).collect();
                seen.sort_unstable();
                seen.dedup();
                assert_eq!(seen.len(), approx.len(), "an image returned twice");
                hit += approx.iter().filter(|h| exact.contains(&h.0)).count();
            }
            hit as f64 / 1000.0
        };
        assert!(
            recall(&ann) >= 0.95,
            "recall@10 {} (seed {seed})",
            recall(&ann)
        );

        let tmp = tempfile::tempdir().unwrap();
        let rec = ann.dump(tmp.path(), 9, "w").unwrap();
        assert_eq!(
            (rec.count, rec.hidden.len(), rec.updates, rec.built_count),
            (820, 50, 1, 600)
        );
        let loaded = AnnIndex::load(tmp.path(), &rec).unwrap();
        assert_eq!(loaded.image_ids(), ids);
        assert_eq!(loaded.graph_points(), stored);
        for (_, q) in queries.iter().take(20) {
            assert_eq!(
                loaded.search_graph_space(q, 10),
                ann.search_graph_space(q, 10)
            );
        }
    }

    /// The points of `ids` (sorted by id) found in `points` (sorted by id).
    fn pick_sorted(points: &[(i64, Vec<f32>)], ids: &[i64]) -> Vec<(i64, Vec<f32>)> {
        let mut out: Vec<(i64, Vec<f32>)> = ids
            .iter()
            .filter_map(|&id| lookup(points, id).map(|v| (id, v.to_vec())))
            .collect();
        out.sort_unstable_by_key(|p| p.0);
        out
    }

    #[test]
    fn augmentation_uses_the_recorded_exponent() {
        let points = random_points(200, 24, 20261125);
        let params = AnnParams {
            dba_alpha: 1.0,
            ..AnnParams::default()
        };
        let stored = AnnIndex::build(&points, params).graph_points();
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

    #[test]
    fn records_without_the_augmentation_exponent_were_built_with_alpha_3() {
        let mut json = serde_json::to_value(AnnParams::default()).unwrap();
        json.as_object_mut().unwrap().remove("dba_alpha");
        let old: AnnParams = serde_json::from_value(json).unwrap();
        assert_eq!(old.dba_alpha, 3.0);
        // Today's default differs, so the next `index` run rebuilds such a graph.
        assert_ne!(old, AnnParams::default());
    }

    #[test]
    fn dump_verify_load_and_detect_damage() {
        let dir = tempfile::tempdir().unwrap();
        let points = random_points(300, 8, 7);
        let index = AnnIndex::build(&points, AnnParams::default());
        let rec = index.dump(dir.path(), 3, "color=1").unwrap();
        let loaded = AnnIndex::load(dir.path(), &rec).unwrap();
        assert_eq!(loaded.len(), 300);
        assert!(loaded.is_augmented() && rec.params.dba == DEFAULT_DBA);
        assert_eq!(loaded.graph_points(), index.graph_points());
        assert_eq!(loaded.search(&points[5].1, 1)[0].0, points[5].0);
        // Flip one byte: detected before hnsw_rs sees it.
        let data = dir
            .path()
            .join(&rec.folder)
            .join(format!("{}.hnsw.data", rec.basename));
        let mut bytes = std::fs::read(&data).unwrap();
        let mid = bytes.len() / 2;
        bytes[mid] ^= 0xFF;
        std::fs::write(&data, &bytes).unwrap();
        assert!(AnnIndex::load(dir.path(), &rec).is_err());
        // Truncate: detected by size.
        std::fs::write(&data, &bytes[..10]).unwrap();
        assert!(
            AnnIndex::load(dir.path(), &rec)
                .unwrap_err()
                .to_string()
                .contains("expected")
        );
    }

    #[test]
    fn projected_graph_dumps_loads_and_detects_a_damaged_projection() {
        let dir = tempfile::tempdir().unwrap();
        let points = random_points(300, 200, 11);
        let params = AnnParams {
            pca_dims: 16,
            ..AnnParams::default()
        };
        let index = AnnIndex::build(&points, params);
        assert_eq!((index.dim(), index.graph_dim()), (200, 16));
        let full = |id: i64| Some(points[(id - 1) as usize].1.as_slice());
        let hit = index.search_reranked(&points[7].1, 3, full);
        assert_eq!(
            hit[0],
            (points[7].0, 0.0),
            "exact distance after re-ranking"
        );

        let rec = index.dump(dir.path(), 1, "color=1").unwrap();
        assert!(rec.projection.is_some());
        let loaded = AnnIndex::load(dir.path(), &rec).unwrap();
        assert_eq!(loaded.graph_dim(), 16);
        assert_eq!(loaded.search_reranked(&points[7].1, 3, full), hit);

        let proj = dir.path().join(&rec.folder).join(PROJECTION_FILE);
        let mut bytes = std::fs::read(&proj).unwrap();
        bytes[30] ^= 0x55;
        std::fs::write(&proj, &bytes).unwrap();
        let err = AnnIndex::load(dir.path(), &rec).unwrap_err().to_string();
        assert!(err.contains("checksum mismatch"), "{err}");
        std::fs::remove_file(&proj).unwrap();
        assert!(AnnIndex::load(dir.path(), &rec).is_err());
    }

    /// Writes a file, making its folder.
    fn put(path: &Path, bytes: &[u8]) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }

    #[test]
    fn dump_clean_up_removes_only_its_own_folders_and_files() {
        let tmp = tempfile::tempdir().unwrap();
        let ann = tmp.path().join("ann");
        let index = AnnIndex::build(&random_points(50, 8, 3), AnnParams::default());
        let old = index.dump(&ann, 1, "w").unwrap();
        let kept = index.dump(&ann, 2, "w").unwrap();
        assert!(ann.join(&old.folder).join(DUMP_MARKER_FILE).is_file());
        // A user's folders: any name, a dump's name without the marker, a marker under
        // another name; and a user's file inside a real dump folder.
        put(&ann.join("holiday/beach.jpg"), b"photo");
        put(&ann.join("v7-abc-12/graph.hnsw.data"), b"mine");
        put(&ann.join("v7-abc-12/photo.jpg"), b"photo");
        put(&ann.join("v8-abc-12x").join(DUMP_MARKER_FILE), DUMP_MARKER);
        put(&ann.join("v8-abc-12x/graph.hnsw.data"), b"mine");
        put(
            &ann.join("v9-abc-12").join(DUMP_MARKER_FILE),
            b"something else",
        );
        put(&ann.join("v9-abc-12/graph.hnsw.graph"), b"mine");
        put(&ann.join("notes.txt"), b"text");
        let crowded = index.dump(&ann, 3, "w").unwrap();
        put(&ann.join(&crowded.folder).join("photo.jpg"), b"photo");
        AnnIndex::remove_other_dumps(&ann, &kept.folder);

        assert!(!ann.join(&old.folder).exists(), "an old dump is removed");
        assert!(AnnIndex::load(&ann, &kept).is_ok(), "the kept dump stays");
        for (path, bytes) in [
            ("holiday/beach.jpg", &b"photo"[..]),
            ("v7-abc-12/graph.hnsw.data", b"mine"),
            ("v7-abc-12/photo.jpg", b"photo"),
            ("v8-abc-12x/graph.hnsw.data", b"mine"),
            ("v9-abc-12/graph.hnsw.graph", b"mine"),
            ("notes.txt", b"text"),
        ] {
            assert_eq!(std::fs::read(ann.join(path)).unwrap(), bytes, "{path}");
        }
        // The crowded dump loses its own files only: the user's file and the folder stay.
        let crowded = ann.join(&crowded.folder);
        assert_eq!(std::fs::read(crowded.join("photo.jpg")).unwrap(), b"photo");
        assert!(!crowded.join("graph.hnsw.data").exists());
        assert!(!crowded.join("graph.hnsw.graph").exists());
    }

    #[test]
    fn dump_folder_names_follow_one_exact_pattern() {
        for name in ["v0-1f-7", "v12-abcdef0123-99999"] {
            assert!(is_dump_folder_name(name), "{name}");
        }
        for name in [
            "holiday",
            "v1-1f",
            "v1-1f-7-2",
            "v-1f-7",
            "v1--7",
            "v1-1F-7",
            "v1-xy-7",
            "w1-1f-7",
            "v1-1f-7 ",
            "V1-1f-7",
        ] {
            assert!(!is_dump_folder_name(name), "{name}");
        }
    }

    #[test]
    fn an_empty_graph_dumps_no_files_and_loads_back() {
        let tmp = tempfile::tempdir().unwrap();
        let ann = tmp.path().join("ann");
        let index = AnnIndex::build(&[], AnnParams::default());
        assert!(index.is_empty());
        let rec = index.dump(&ann, 4, "w").unwrap();
        assert_eq!(rec.count, 0);
        assert!(!ann.exists(), "no files for an empty graph");
        let loaded = AnnIndex::load(&ann, &rec).unwrap();
        assert!(loaded.is_empty());
        assert!(loaded.search(&[0.0; 8], 5).is_empty());
        assert!(loaded.image_ids().is_empty());
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
            let mut ann = AnnIndex::build(&points, params);
            assert_eq!(ann.len(), points.len());
            for (_, v) in ann.graph_points() {
                assert!(v.iter().all(|x| x.is_finite()));
            }
            let hits = ann.search(&query, 5);
            assert_eq!(hits.len(), 5);
            assert!(hits.iter().all(|h| h.1.is_finite()));
            assert_eq!(ann.search(&vec![f32::INFINITY; dim], 3).len(), 3);
            let graph_query = ann.to_graph_space(&query);
            assert_eq!(ann.search_graph_space(&graph_query, 4).len(), 4);
            let full = |id: i64| Some(points[(id - 1) as usize].1.as_slice());
            assert!(!ann.search_reranked(&query, 3, full).is_empty());

            // The streaming builder with a batch of non-finite points.
            let mut builder = AnnBuilder::new(points.len(), dim, None, params);
            builder.insert(&points);
            assert_eq!(builder.finish().search(&query, 3).len(), 3);

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
            assert_eq!(ann.search(&query, 4).len(), 4);
            let rec = ann.dump(tmp.path(), 1, "w").unwrap();
            let loaded = AnnIndex::load(tmp.path(), &rec).unwrap();
            assert_eq!(loaded.search(&query, 4), ann.search(&query, 4));
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
                let ann = AnnIndex::build(&points, params);
                assert_eq!(ann.len(), n as usize);
                let hits = ann.search(&v, n as usize);
                assert_eq!(hits.len(), n as usize, "{n} points, dba {dba}");
                let tmp = tempfile::tempdir().unwrap();
                let rec = ann.dump(tmp.path(), 1, "w").unwrap();
                let loaded = AnnIndex::load(tmp.path(), &rec).unwrap();
                assert_eq!(loaded.search(&v, n as usize).len(), n as usize);
            }
        }
    }
}
