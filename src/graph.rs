//! Keeping a collection's HNSW graph in step with SQLite: nothing when its dump is current, an
//! in-place update when little changed, else a full rebuild with bounded memory.

use std::sync::atomic::AtomicBool;

use crate::ann::{AnnBuilder, AnnIndex, AnnParams, DumpRecord, ann_dir, check_stop};
use crate::collection::{Collection, DUMP_KEY};
use crate::error::{Error, Result};
use crate::features::Fusion;
use crate::search_space::fused;
use crate::store::Store;

/// When `index` may bring the graph up to date in place instead of rebuilding it. In-place
/// updates cost time in proportion to what changed; a rebuild, to the whole collection (about
/// six minutes for 100,000 augmented images on two cores).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct UpdatePolicy {
    /// Graphs whose full build held fewer points are rebuilt: that takes seconds, and a fresh
    /// graph's augmentation is exact (evaluations on the shared sets are rebuilt every time).
    pub min_built: usize,
    /// Rebuild once the points inserted since the full build would exceed this share of it
    /// (the PCA was fitted to that build, and old points miss new augmentation neighbours)...
    pub max_growth: f64,
    /// ...or once hidden points would exceed this share of the graph (they lengthen searches).
    pub max_hidden: f64,
}

impl Default for UpdatePolicy {
    fn default() -> Self {
        UpdatePolicy {
            min_built: 5_000,
            max_growth: 0.25,
            max_hidden: 0.10,
        }
    }
}

/// What an in-place graph update did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct GraphUpdate {
    /// Images inserted (new, or whose vectors changed).
    pub(crate) inserted: usize,
    /// Points hidden (images removed, or the old points of changed ones).
    pub(crate) hidden: usize,
}

/// What an index run did to the graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GraphRefresh {
    /// The dump was current: nothing written.
    Current,
    /// Updated in place.
    Updated(GraphUpdate),
    /// Built in full from SQLite.
    Rebuilt,
}

/// Builds the graph with bounded memory: one pass over SQLite gathers the PCA sample (every
/// k-th image, as `Projection::fit` would pick), a second keeps only projected vectors. When
/// the sample is every image, the graph is built from it instead of reading again.
/// [`Error::Interrupted`] once `stop` is set.
fn build_streaming(
    store: &Store,
    fusion: &Fusion,
    params: AnnParams,
    stop: &AtomicBool,
) -> Result<AnnIndex> {
    let families = fusion.families();
    let n = store.image_count()? as usize;
    let step = n.div_ceil(crate::pca::MAX_FIT_SAMPLES).max(1);
    let (mut sample, mut seen, mut dim) = (Vec::new(), 0usize, 0usize);
    store.for_each_vector(&families, |id, parts| {
        if seen % crate::ann::STOP_CHECK_EVERY == 0 {
            check_stop(stop)?;
        }
        if seen % step == 0 {
            let v = fused(fusion, &parts);
            dim = v.len();
            sample.push((id, v));
        }
        seen += 1;
        Ok(())
    })?;
    if step == 1 {
        // The sample is every image: the graph is built from it, without a second read.
        return AnnIndex::build_stoppable(&sample, params, stop);
    }
    let refs: Vec<&[f32]> = sample.iter().map(|p| p.1.as_slice()).collect();
    let projection = crate::pca::Projection::fit_stoppable(&refs, params.pca_dims, stop)?;
    drop(sample);
    // Batches go into the graph as they are read: only the graph holds every vector.
    const BATCH: usize = 16_384;
    let mut builder = AnnBuilder::new(n, dim, projection, params);
    let mut batch = Vec::with_capacity(BATCH.min(n));
    store.for_each_vector(&families, |id, parts| {
        let v = fused(fusion, &parts);
        batch.push((
            id,
            match builder.projection() {
                Some(p) => p.apply(&v)?,
                None => v,
            },
        ));
        if batch.len() == BATCH {
            builder.insert_stoppable(&batch, stop)?;
            batch.clear();
        }
        Ok(())
    })?;
    builder.insert_stoppable(&batch, stop)?;
    builder.finish_stoppable(stop)
}

/// The most points inserting `changed` images adds to the graph: one per distinct content, as
/// images of the same bytes hold the same vectors and share a point (a crowd of copies adds
/// one point, not one per image).
fn points_added_by(store: &Store, changed: &[i64]) -> Result<usize> {
    if changed.is_empty() {
        return Ok(0);
    }
    let files = store.files_of(changed)?;
    let contents: std::collections::HashSet<&[u8; 32]> = files.values().map(|f| &f.hash).collect();
    // an image without a file row (none expected) counts as a point of its own
    Ok(contents.len() + (changed.len() - files.len()))
}

impl Collection {
    /// Brings the graph up to date with SQLite: nothing when the dump is current, an in-place
    /// update when `policy` allows it, else a full rebuild (always with `rebuild`, and when the
    /// dump is missing, damaged or made with other weights or parameters). Caller holds the
    /// write lock. Once `stop` is set the build or update ends with [`Error::Interrupted`],
    /// and the dump and its record stay as they were.
    pub(crate) fn refresh_ann(
        &self,
        store: &mut Store,
        fusion: &Fusion,
        policy: &UpdatePolicy,
        rebuild: bool,
        stop: &AtomicBool,
    ) -> Result<GraphRefresh> {
        if fusion.weights.is_empty() {
            // A profile that ranks nothing keeps no graph; one left from another profile goes.
            store.delete_meta(DUMP_KEY)?;
            AnnIndex::remove_other_dumps(&ann_dir(self.dir()), "");
            return Ok(GraphRefresh::Current);
        }
        let version = store.data_version()?;
        let dir = ann_dir(self.dir());
        let params = self.ann_params(store)?;
        let usable = self.dump_record(store)?.filter(|rec| {
            rec.fusion == fusion.fingerprint()
                && rec.params == params
                && rec.shares_points
                && AnnIndex::verify(&dir, rec).is_ok()
        });
        if let Some(rec) = usable.filter(|_| !rebuild) {
            if rec.data_version == version {
                AnnIndex::remove_other_dumps(&dir, &rec.folder);
                return Ok(GraphRefresh::Current);
            }
            if let Some(done) = self.update_in_place(store, fusion, &rec, policy, version, stop)? {
                return Ok(done);
            }
        }
        let ann = build_streaming(store, fusion, params, stop)?;
        check_stop(stop)?;
        self.record_dump(store, &ann, version, fusion)?;
        Ok(GraphRefresh::Rebuilt)
    }

    fn record_dump(
        &self,
        store: &mut Store,
        ann: &AnnIndex,
        version: u64,
        fusion: &Fusion,
    ) -> Result<()> {
        let rec = ann.dump(&ann_dir(self.dir()), version, &fusion.fingerprint())?;
        self.save_record(store, &rec)
    }

    /// Records `rec` as the collection's dump and deletes the other dump folders.
    fn save_record(&self, store: &mut Store, rec: &DumpRecord) -> Result<()> {
        let json = serde_json::to_string(rec)
            .map_err(|e| Error::InvalidInput(format!("cannot record dump: {e}")))?;
        store.set_meta(&[(DUMP_KEY, json)])?;
        AnnIndex::remove_other_dumps(&ann_dir(self.dir()), &rec.folder);
        Ok(())
    }

    /// Applies what changed since `rec` to its graph and dumps it, when `policy` allows;
    /// `None` when the graph must be rebuilt instead.
    fn update_in_place(
        &self,
        store: &mut Store,
        fusion: &Fusion,
        rec: &DumpRecord,
        policy: &UpdatePolicy,
        version: u64,
        stop: &AtomicBool,
    ) -> Result<Option<GraphRefresh>> {
        // Before schema 3, writes did not record which images they changed.
        if rec.data_version < store.vectors_tracked_from()? {
            return Ok(None);
        }
        let Ok(mut ann) = AnnIndex::load(&ann_dir(self.dir()), rec) else {
            return Ok(None);
        };
        let families = fusion.families();
        let current = store.vector_versions(&families)?;
        let in_graph = ann.image_ids();
        let held = |id: &i64| in_graph.binary_search(id).is_ok();
        let changed: Vec<i64> = current
            .iter()
            .filter(|(id, written)| *written > rec.data_version || !held(id))
            .map(|p| p.0)
            .collect();
        let removed: Vec<i64> = in_graph
            .iter()
            .filter(|&&id| current.binary_search_by_key(&id, |p| p.0).is_err())
            .copied()
            .collect();
        // Moves, touched stamps and failures change the data version, not the graph.
        let graph_unchanged = changed.is_empty() && removed.is_empty();
        // All in graph points, which images of equal vectors share: a point is hidden once
        // none of its images is left, and each changed image adds at most one.
        let stale: Vec<i64> = removed
            .iter()
            .chain(changed.iter().filter(|id| held(id)))
            .copied()
            .collect();
        let hidden = ann.points_hidden_by(&stale);
        let built = ann.built_points();
        let points = rec.count + points_added_by(store, &changed)?;
        if !graph_unchanged
            && (built < policy.min_built
                || (points - built) as f64 > policy.max_growth * built as f64
                || (ann.hidden_count() + hidden) as f64 > policy.max_hidden * points as f64
                || !ann.can_update(&changed))
        {
            return Ok(None);
        }
        if changed.is_empty() {
            // Nothing to insert: the dump's files stay as they are; its record takes the new
            // version and hides the removed images' points.
            if !removed.is_empty() {
                ann.hide(&removed);
            }
            let restamped = DumpRecord {
                data_version: version,
                hidden: ann.hidden().to_vec(),
                groups: ann.groups(),
                updates: ann.updates(),
                ..rec.clone()
            };
            self.save_record(store, &restamped)?;
            return Ok(Some(if graph_unchanged {
                GraphRefresh::Current
            } else {
                GraphRefresh::Updated(GraphUpdate {
                    inserted: 0,
                    hidden,
                })
            }));
        }
        {
            let reader: &Store = store;
            // the update fetches vectors a round (1,024 images) at a time
            ann.update(&changed, &removed, |ids| {
                check_stop(stop)?;
                Ok(reader
                    .vectors_of(ids, &families)?
                    .into_iter()
                    .map(|(id, parts)| (id, fused(fusion, &parts)))
                    .collect())
            })?;
        }
        check_stop(stop)?;
        self.record_dump(store, &ann, version, fusion)?;
        Ok(Some(GraphRefresh::Updated(GraphUpdate {
            inserted: changed.len(),
            hidden,
        })))
    }
}
