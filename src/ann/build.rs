//! Building the graph: the streaming [`AnnBuilder`] and [`AnnIndex::build`].

use std::sync::atomic::{AtomicBool, Ordering};

use hnsw_rs::prelude::Hnsw;
use rayon::prelude::*;

use super::augment::{EXACT_NEIGHBOURS_UP_TO, all_exact_ids, augment};
use super::{
    AnnIndex, AnnParams, FusedL2, Groups, VectorKey, finite_points, scaled_ef, split_equal, tidy,
};
use crate::error::{Error, Result};
use crate::pca::Projection;

/// Points inserted between two looks at the stop flag of a stoppable build.
pub(crate) const STOP_CHECK_EVERY: usize = 1024;

/// A stop flag never set: the builds that cannot be stopped.
pub(crate) static NEVER_STOP: AtomicBool = AtomicBool::new(false);

/// [`Error::Interrupted`] once `stop` is set.
pub(crate) fn check_stop(stop: &AtomicBool) -> Result<()> {
    if stop.load(Ordering::Relaxed) {
        return Err(Error::Interrupted);
    }
    Ok(())
}

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

/// Builds a graph batch by batch, so that callers streaming vectors (from SQLite, say) need
/// not hold them all: the graph keeps its own copy of each, a batch can be dropped once inserted.
pub struct AnnBuilder {
    hnsw: Hnsw<'static, f32, FusedL2>,
    /// Points kept out of the graph until `finish`: an augmented build small enough to find
    /// neighbours by exact search needs no plain graph, only the augmented one.
    held: Option<Vec<(i64, Vec<f32>)>>,
    /// The point holding each vector inserted so far, and the images sharing points.
    seen: std::collections::HashMap<VectorKey, usize>,
    groups: Groups,
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
            seen: Default::default(),
            groups: Groups::new(),
            count: 0,
            dim,
            projection,
            params,
        }
    }

    /// A builder of the searchable graph itself, made with `params` whatever `params.dba`
    /// (a graph of at most [`SMALL_GRAPH_UP_TO`] points with a narrower construction beam).
    pub(super) fn searchable(
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
    /// are taken as zero ([`sanitize`](super::sanitize)).
    pub fn insert(&mut self, points: &[(i64, Vec<f32>)]) {
        let _ = self.insert_stoppable(points, &NEVER_STOP);
    }

    /// As [`AnnBuilder::insert`], looking at `stop` every [`STOP_CHECK_EVERY`] points:
    /// [`Error::Interrupted`] once it is set.
    pub(crate) fn insert_stoppable(
        &mut self,
        points: &[(i64, Vec<f32>)],
        stop: &AtomicBool,
    ) -> Result<()> {
        let points = finite_points(points);
        let points = points.as_ref();
        self.count += points.len();
        if let Some(held) = &mut self.held {
            if self.count <= EXACT_NEIGHBOURS_UP_TO {
                held.extend_from_slice(points);
                return check_stop(stop);
            }
            // More points than announced: the plain graph is needed after all.
            let held = self.held.take().unwrap_or_default();
            self.insert_into_graph(&held, stop)?;
        }
        self.insert_into_graph(points, stop)
    }

    fn insert_into_graph(&mut self, points: &[(i64, Vec<f32>)], stop: &AtomicBool) -> Result<()> {
        // Augmentation of extreme (finite) values can overflow: the graph must never see a NaN.
        let points = finite_points(points);
        let ids: Vec<i64> = points.iter().map(|p| p.0).collect();
        for chunk in insertion_order(&ids).chunks(STOP_CHECK_EVERY) {
            check_stop(stop)?;
            let chunk: Vec<(i64, Vec<f32>)> = chunk.iter().map(|&i| points[i].clone()).collect();
            // A vector already in the graph adds its image to that point instead.
            let data = split_equal(&chunk, |id| id as usize, &mut self.seen, &mut self.groups);
            insert_points(&self.hnsw, &data);
        }
        check_stop(stop)
    }

    /// The finished, searchable index; with `params.dba > 0`, a graph over the augmented
    /// vectors (a larger collection first builds a plain graph to find each point's neighbours).
    pub fn finish(self) -> AnnIndex {
        self.finish_stoppable(&NEVER_STOP)
            .unwrap_or_else(|_| unreachable!("a build without a stop flag is not stopped"))
    }

    /// As [`AnnBuilder::finish`], looking at `stop` between steps and every
    /// [`STOP_CHECK_EVERY`] points inserted: [`Error::Interrupted`] once it is set.
    pub(crate) fn finish_stoppable(mut self, stop: &AtomicBool) -> Result<AnnIndex> {
        let dba = self.params.dba;
        if let Some(mut held) = self.held.take() {
            held.sort_unstable_by_key(|p| p.0);
            check_stop(stop)?;
            let nearest = all_exact_ids(&held, dba + 1);
            check_stop(stop)?;
            let augmented = augment(&held, dba, &self.params, |i, _| nearest[i].clone());
            drop(held);
            self.insert_into_graph(&augmented, stop)?;
            return Ok(self.finish_plain());
        }
        let plain = self.finish_plain();
        // A lone point has no neighbour: its augmentation is itself.
        if dba == 0 || plain.count < 2 {
            return Ok(plain);
        }
        plain.augmented(dba, stop)
    }

    pub(super) fn finish_plain(self) -> AnnIndex {
        let mut hnsw = self.hnsw;
        hnsw.set_searching_mode(true);
        let mut groups = self.groups;
        tidy(&mut groups);
        AnnIndex {
            hnsw,
            count: self.count,
            hidden: Vec::new(),
            groups,
            updates: 0,
            built_count: self.count,
            dim: self.dim,
            projection: self.projection,
            ef: scaled_ef(self.params.ef_search, self.count),
            params: self.params,
        }
    }
}

/// [`Error::VectorLength`] for the first point not of the first one's length,
/// [`Error::InvalidInput`] for the first id given twice.
fn check_points(points: &[(i64, Vec<f32>)]) -> Result<()> {
    let dim = points.first().map_or(0, |p| p.1.len());
    let mut seen = std::collections::HashSet::with_capacity(points.len());
    for (id, v) in points {
        if v.len() != dim {
            return crate::vector::check_length(&format!("point {id}"), v, dim);
        }
        if !seen.insert(*id) {
            return Err(Error::InvalidInput(format!(
                "point {id} is given twice: give each id once"
            )));
        }
    }
    Ok(())
}

/// The order to insert points with these image ids in: scrambled, the same for the same ids.
/// hnsw_rs links a neighbour back to a new point only when the point is nearer to it than its
/// farthest link, so a tight crowd (many near-identical images, filed side by side) inserted
/// ahead of the rest would keep links only among itself, and searches entering it could not
/// leave.
pub(super) fn insertion_order(ids: &[i64]) -> Vec<usize> {
    let scramble = |id: i64| crate::rng::SplitMix64::new(id as u64).next_u64();
    let mut order: Vec<usize> = (0..ids.len()).collect();
    order.sort_by_cached_key(|&i| (scramble(ids[i]), ids[i]));
    order
}

/// Inserts points into a graph, in parallel. Unit tests insert one at a time: hnsw_rs draws
/// node levels from a fixed seed, so a test's graph is then a function of its data and the
/// data seed a failing test prints rebuilds the same graph.
pub(super) fn insert_points(hnsw: &Hnsw<'static, f32, FusedL2>, data: &Vec<(&[f32], usize)>) {
    if cfg!(test) {
        data.iter().for_each(|&point| hnsw.insert_slice(point));
    } else {
        hnsw.parallel_insert_slice(data);
    }
}

impl AnnIndex {
    /// Builds the graph from points (inserted in parallel).
    /// Vectors longer than `params.pca_dims` are projected on a PCA fitted to these points.
    ///
    /// # Errors
    /// [`Error::VectorLength`] when a point is not of the first point's length, and
    /// [`Error::InvalidInput`] when an id is given twice: both name the first such point's id.
    pub fn build(points: &[(i64, Vec<f32>)], params: AnnParams) -> Result<AnnIndex> {
        Self::build_stoppable(points, params, &NEVER_STOP)
    }

    /// As [`AnnIndex::build`], looking at `stop` during the PCA fit and every
    /// [`STOP_CHECK_EVERY`] points inserted: [`Error::Interrupted`] once it is set.
    pub(crate) fn build_stoppable(
        points: &[(i64, Vec<f32>)],
        params: AnnParams,
        stop: &AtomicBool,
    ) -> Result<AnnIndex> {
        check_points(points)?;
        let points = finite_points(points);
        let points = points.as_ref();
        let dim = points.first().map_or(0, |p| p.1.len());
        let refs: Vec<&[f32]> = points.iter().map(|p| p.1.as_slice()).collect();
        match Projection::fit_stoppable(&refs, params.pca_dims, stop)? {
            Some(p) => {
                let projected: Vec<(i64, Vec<f32>)> = points
                    .par_iter()
                    .map(|(id, v)| Ok((*id, p.apply(v)?)))
                    .collect::<Result<_>>()?;
                check_stop(stop)?;
                Self::build_projected(&projected, dim, Some(p), params, stop)
            }
            None => Self::build_projected(points, dim, None, params, stop),
        }
    }

    /// Builds the graph over vectors already passed through `projection` (which takes vectors
    /// of length `dim`); without a projection the vectors are used as they are.
    pub(crate) fn build_projected(
        points: &[(i64, Vec<f32>)],
        dim: usize,
        projection: Option<Projection>,
        params: AnnParams,
        stop: &AtomicBool,
    ) -> Result<AnnIndex> {
        let mut builder = AnnBuilder::new(points.len(), dim, projection, params);
        builder.insert_stoppable(points, stop)?;
        builder.finish_stoppable(stop)
    }
}
