//! The space searches rank in: a collection's fused vectors and its HNSW graph, loaded from
//! SQLite and the dump (rebuilt in memory when the dump is stale or damaged).

use std::cell::OnceCell;

use crate::ann::{AnnIndex, RERANK_DEPTH, ann_dir, exact_search, lookup, rerank};
use crate::collection::Collection;
use crate::error::Result;
use crate::features::Fusion;
use crate::rank::SearchMode;
use crate::store::Store;

/// The ANN graph over a collection's fused vectors and the space searches rank in.
///
/// With an augmented graph (see `ann`), queries are mapped into the graph's space by
/// [`SearchSpace::embed`] and ranked against the graph's own vectors, both for HNSW and exact
/// search. With a plain graph (dumps written before augmentation existed), queries stay full
/// fused vectors and the candidates are re-ranked on full vectors read from SQLite.
pub struct SearchSpace {
    /// The per-family weights the fused vectors are made with.
    pub fusion: Fusion,
    pub(crate) ann: Option<AnnIndex>,
    /// Why the graph is missing or was rebuilt in memory, for the user: of graph searches.
    pub(crate) note: Option<String>,
    /// The images left out of every search, for the user.
    pub(crate) left_out: Option<String>,
    /// Every image's fused vector, sorted by id, once loaded.
    points: OnceCell<Vec<(i64, Vec<f32>)>>,
    /// The augmented graph's vectors, sorted by id, once read from it.
    graph_points: OnceCell<Vec<(i64, Vec<f32>)>>,
}

impl SearchSpace {
    /// What the user should know of a search in `mode`: why the graph is missing or was
    /// rebuilt in memory (of a graph search only), then the images left out.
    pub(crate) fn note_for(&self, mode: crate::rank::SearchMode) -> Option<String> {
        match (self.graph_note(mode), &self.left_out) {
            (Some(g), Some(l)) => Some(format!("{g}; {l}")),
            (g, l) => g.or(l.as_ref()).cloned(),
        }
    }

    /// Why the graph is missing or was rebuilt in memory, of a search in `mode` (graph only).
    pub(crate) fn graph_note(&self, mode: crate::rank::SearchMode) -> Option<&String> {
        self.note
            .as_ref()
            .filter(|_| mode == crate::rank::SearchMode::Hnsw)
    }

    fn augmented(&self) -> Option<&AnnIndex> {
        self.ann.as_ref().filter(|a| a.is_augmented())
    }

    /// True when searches rank against augmented vectors (distances are then in that space).
    pub fn is_augmented(&self) -> bool {
        self.augmented().is_some()
    }

    /// A full fused vector (an example's) in the space searches rank in.
    ///
    /// # Errors
    /// [`Error::VectorLength`](crate::error::Error::VectorLength) when the graph's vectors are
    /// of another length than `full`.
    pub fn embed(&self, full: &[f32]) -> Result<Vec<f32>> {
        match self.augmented() {
            Some(ann) => ann.to_graph_space(full),
            None => Ok(crate::ann::finite(full).into_owned()),
        }
    }

    /// What exact search scans: the augmented graph's vectors, else all full fused vectors.
    pub fn exact_points(&self, store: &Store) -> Result<&[(i64, Vec<f32>)]> {
        match self.augmented() {
            Some(ann) => Ok(self.graph_points.get_or_init(|| ann.graph_points())),
            None => self.points(store),
        }
    }

    /// All fused vectors, sorted by id (read from SQLite on first use).
    pub(crate) fn points(&self, store: &Store) -> Result<&[(i64, Vec<f32>)]> {
        if let Some(p) = self.points.get() {
            return Ok(p);
        }
        let loaded = load_points(store, &self.fusion)?;
        Ok(self.points.get_or_init(|| loaded))
    }

    /// The `k` nearest images to a query already [embedded](Self::embed), with exact distances
    /// in the search space.
    pub(crate) fn search(
        &self,
        store: &Store,
        query: &[f32],
        k: usize,
        mode: SearchMode,
    ) -> Result<Vec<(i64, f32)>> {
        if let Some(ann) = self.augmented() {
            return match mode {
                SearchMode::Hnsw => ann.search_graph_space(query, k),
                SearchMode::Exact => Ok(exact_search(self.exact_points(store)?, query, k)),
            };
        }
        match (&self.ann, mode) {
            (Some(ann), SearchMode::Hnsw) => {
                if let Some(points) = self.points.get() {
                    return ann.search_reranked(query, k, |id| lookup(points, id));
                }
                let candidates = ann.search(query, k.max(RERANK_DEPTH))?;
                let ids: Vec<i64> = candidates.iter().map(|h| h.0).collect();
                let full = self.vectors_of(store, &ids)?;
                Ok(rerank(query, &candidates, k, |id| lookup(&full, id)))
            }
            _ => Ok(exact_search(self.points(store)?, query, k)),
        }
    }

    /// Vectors of the given images in the search space, sorted by id; ids without vectors are
    /// left out.
    pub(crate) fn vectors_of(&self, store: &Store, ids: &[i64]) -> Result<Vec<(i64, Vec<f32>)>> {
        if self.augmented().is_some() {
            return Ok(pick(self.exact_points(store)?, ids));
        }
        self.full_vectors_of(store, ids)
    }

    /// Full fused vectors of the given images, sorted by id; ids without vectors are left out.
    pub(crate) fn full_vectors_of(
        &self,
        store: &Store,
        ids: &[i64],
    ) -> Result<Vec<(i64, Vec<f32>)>> {
        if let Some(points) = self.points.get() {
            return Ok(pick(points, ids));
        }
        let families = self.fusion.families();
        Ok(store
            .vectors_of(ids, &families)?
            .into_iter()
            .map(|(id, parts)| (id, fused(&self.fusion, &parts)))
            .collect())
    }

    /// The full fused vector of one image.
    pub fn vector_of(&self, store: &Store, id: i64) -> Result<Option<Vec<f32>>> {
        Ok(self.full_vectors_of(store, &[id])?.pop().map(|p| p.1))
    }
}

/// Copies of the vectors of `ids` found in `points` (sorted by id), sorted by id, no repeats.
fn pick(points: &[(i64, Vec<f32>)], ids: &[i64]) -> Vec<(i64, Vec<f32>)> {
    ids.iter()
        .filter_map(|&id| lookup(points, id).map(|v| (id, v.to_vec())))
        .collect::<std::collections::BTreeMap<_, _>>()
        .into_iter()
        .collect()
}

fn load_points(store: &Store, fusion: &Fusion) -> Result<Vec<(i64, Vec<f32>)>> {
    let families = fusion.families();
    Ok(store
        .vectors(&families)?
        .into_iter()
        .map(|(id, parts)| (id, fused(fusion, &parts)))
        .collect())
}

/// The fused vector of an image's family vectors, non-finite components taken as zero
/// ([`crate::ann::sanitize`]): searches and the graph compare the rest of it.
pub(crate) fn fused(fusion: &Fusion, parts: &[Vec<f32>]) -> Vec<f32> {
    let mut v = fusion.fuse(parts);
    crate::ann::sanitize(&mut v);
    v
}

impl Collection {
    /// Loads fused vectors and, when the dump on disk is current and intact, the HNSW graph.
    /// A stale, damaged or missing dump is not loaded: the graph is rebuilt in memory.
    pub(crate) fn search_space(&self, store: &Store, fusion: &Fusion) -> Result<SearchSpace> {
        let record = self.dump_record(store)?;
        let version = store.data_version()?;
        let mut note = None;
        let mut left_out_note_set = None;
        let left_out_note = |left_out: u64| {
            let n = left_out as usize;
            format!(
                "{} no usable vector for this search (not extracted yet, as while an `index --profile` change is unfinished, or damaged) and {} left out; `{}` (or `index --repair`) brings {} in",
                crate::text::counted(n, "indexed image has", "indexed images have"),
                crate::text::for_count(n, "is", "are"),
                crate::collection::advised_command(self, "index"),
                crate::text::for_count(n, "it", "them")
            )
        };
        let ann = match record {
            Some(rec) if rec.data_version == version && rec.fusion == fusion.fingerprint() => {
                match AnnIndex::load(&ann_dir(self.dir()), &rec) {
                    Ok(ann) => {
                        // a graph written by a run that could not extract every image
                        let live = rec.images() as u64;
                        let left_out = store.image_count()?.saturating_sub(live);
                        if left_out > 0 {
                            left_out_note_set = Some(left_out_note(left_out));
                        }
                        Some(ann)
                    }
                    Err(e) => {
                        note = Some(format!(
                            "HNSW dump unusable ({e}); searched a graph rebuilt in memory (`{}` rewrites the dump)",
                            crate::collection::advised_command(self, "index")
                        ));
                        None
                    }
                }
            }
            Some(rec) if rec.fusion != fusion.fingerprint() => {
                note = Some(format!(
                    "the graph on disk was built for other weights ({}, here {}); searched a graph built in memory",
                    rec.fusion,
                    fusion.fingerprint()
                ));
                None
            }
            Some(_) => {
                note = Some(format!(
                    "index changed since the HNSW dump was written; searched a graph rebuilt in memory (`{}` refreshes it)",
                    crate::collection::advised_command(self, "index")
                ));
                None
            }
            None => None,
        };
        let points = OnceCell::new();
        let ann = match ann {
            Some(ann) => Some(ann),
            None => {
                let loaded = load_points(store, fusion)?;
                let left_out = store.image_count()?.saturating_sub(loaded.len() as u64);
                if left_out > 0 {
                    left_out_note_set = Some(left_out_note(left_out));
                }
                let params = self.ann_params(store)?;
                let ann = (!loaded.is_empty())
                    .then(|| AnnIndex::build(&loaded, params))
                    .transpose()?;
                let _ = points.set(loaded);
                ann
            }
        };
        Ok(SearchSpace {
            fusion: fusion.clone(),
            ann,
            note,
            left_out: left_out_note_set,
            points,
            graph_points: OnceCell::new(),
        })
    }
}
