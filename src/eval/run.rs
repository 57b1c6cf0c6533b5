//! Running evaluations against an index: every labelled image (or listed query) ranks the
//! collection per feature family, exactly and through HNSW; distortion benchmarks query
//! distorted copies against the clean index. Pure orchestration: storage, search and metrics
//! live in their own modules.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use image::RgbImage;
use rayon::prelude::*;

use crate::ann::{AnnIndex, AnnParams, exact_search, lookup, squared_l2};
use crate::decode::{DecodeConfig, decode_file, shrunk_to_fit};
use crate::error::{Error, Result};
use crate::eval::distort::{Distortion, apply_chain, seed_for};
use crate::eval::groundtruth::GroundTruth;
use crate::eval::metrics::{EvalConfig, Evaluation, Ranking, evaluate, knn_recall};
use crate::features::dup::{CopyTest, Match, compare};
use crate::features::{Fusion, Registry, l2_normalize};
use crate::query_expansion::QueryExpansion;
use crate::rank::{RankConfig, SearchMode, Space, rank_with_copies};
use crate::store::Store;

/// Name used for the fused vector in reports.
pub(crate) const FUSED: &str = "fused";

/// Decode side for images that are distorted before extraction (distortions such as crops and
/// rescaling need more than the 256-px working image).
const DISTORT_SOURCE_SIZE: u32 = 512;

/// Stored vectors of every indexed image, keyed by ground-truth item id.
pub struct ItemVectors {
    /// Families in column order.
    pub families: Vec<String>,
    /// `item id -> per-family vectors`.
    pub by_item: HashMap<usize, Vec<Vec<f32>>>,
    /// Indexed images the ground truth does not mention (added as distractors).
    pub distractors: usize,
    /// Ground-truth items that are not in the index (failed to decode, or missing).
    pub missing: Vec<String>,
}

/// Reads every stored vector and maps images to ground-truth items by path.
pub fn load_item_vectors(
    store: &Store,
    gt: &mut GroundTruth,
    registry: &Registry,
) -> Result<ItemVectors> {
    let families: Vec<&str> = registry.families();
    let rows = store.vectors(&families)?;
    let ids: Vec<i64> = rows.iter().map(|r| r.0).collect();
    let paths = store.paths(&ids)?;
    let root = std::fs::canonicalize(gt.root()).map_err(|e| Error::io(gt.root(), e))?;
    let mut by_item = HashMap::new();
    let mut distractors = 0;
    for (id, vectors) in rows {
        let Some(path) = paths.get(&id) else { continue };
        let Ok(rel) = path.strip_prefix(&root) else {
            continue;
        };
        if rel.to_str().is_none() && gt.unnamed().iter().any(|u| u.ends_with(rel)) {
            continue;
        }
        let item = match gt.id_of_path(rel) {
            Some(item) => item,
            None => {
                distractors += 1;
                gt.add_distractor(&rel.to_string_lossy())
            }
        };
        by_item.insert(item, vectors);
    }
    let missing = (0..gt.len())
        .filter(|i| !by_item.contains_key(i))
        .map(|i| gt.name(i).to_string())
        .collect();
    Ok(ItemVectors {
        families: families.iter().map(|s| s.to_string()).collect(),
        by_item,
        distractors,
        missing,
    })
}

/// How to turn per-family vectors into the vector one evaluated "family" searches.
#[derive(Debug, Clone)]
pub enum Target {
    /// One family alone (L2-normalised).
    Family(String),
    /// The weighted fusion.
    Fused(Fusion),
}

impl Target {
    /// Display name.
    pub fn name(&self) -> String {
        match self {
            Target::Family(f) => f.clone(),
            Target::Fused(_) => FUSED.into(),
        }
    }

    /// The vector to search with, from per-family vectors in `families` order. A family's
    /// part of another length than the family's (stored by an older version of it, or
    /// missing) is zeros of the family's length, as [`Fusion::fuse`] makes it.
    pub fn vector(&self, families: &[String], parts: &[Vec<f32>]) -> Vec<f32> {
        match self {
            Target::Family(f) => {
                let i = families.iter().position(|x| x == f).unwrap_or(0);
                let dim = crate::features::family_dim(f);
                if parts[i].len() != dim {
                    return vec![0.0; dim];
                }
                let mut v = parts[i].clone();
                l2_normalize(&mut v);
                v
            }
            Target::Fused(fusion) => fusion.fuse_named(families, parts),
        }
    }

    /// The distance `query` reports from an example's [`vector`](Self::vector) to an indexed
    /// one ([`Fusion::example_distance`]; plain L2 for a single family).
    pub(crate) fn example_distance(&self, example: &[f32], indexed: &[f32]) -> f32 {
        match self {
            Target::Family(_) => squared_l2(example, indexed).sqrt(),
            Target::Fused(fusion) => fusion.example_distance(example, indexed),
        }
    }

    /// The vector a query ranks with, from its [`vector`](Self::vector) (the fused target's
    /// [`Fusion::query_view`]).
    pub(crate) fn query_view(&self, vector: &[f32]) -> Vec<f32> {
        match self {
            Target::Family(_) => vector.to_vec(),
            Target::Fused(fusion) => fusion.query_view(vector),
        }
    }
}

/// Parses `color,conv,fused` into targets (`fused` uses `fusion`).
pub fn parse_targets(spec: &str, registry: &Registry, fusion: &Fusion) -> Result<Vec<Target>> {
    let known = registry.families();
    let targets: Vec<Target> = spec
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            if s == FUSED {
                Ok(Target::Fused(fusion.clone()))
            } else if known.contains(&s) {
                Ok(Target::Family(s.to_string()))
            } else {
                Err(Error::InvalidInput(format!(
                    "unknown family '{s}' in --families: choose from {}, {FUSED}",
                    known.join(", ")
                )))
            }
        })
        .collect::<Result<_>>()?;
    if targets.is_empty() {
        return Err(Error::InvalidInput(format!(
            "--families names no family: give one or more of {}, {FUSED}, separated by commas",
            known.join(", ")
        )));
    }
    Ok(targets)
}

/// Figures of one target under one search mode.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TargetRun {
    pub(crate) family: String,
    pub(crate) mode: String,
    pub(crate) evaluation: Evaluation,
    /// HNSW recall@10 against exact search (HNSW runs only).
    pub(crate) ann_recall_at_10: Option<f64>,
    /// Per-query search latency percentiles in milliseconds (HNSW runs only).
    pub(crate) query_ms_p50: Option<f64>,
    pub(crate) query_ms_p95: Option<f64>,
    /// The rankings the evaluation was computed from, one per query.
    #[serde(skip)]
    pub rankings: Vec<Ranking>,
}

impl TargetRun {
    /// The target's name: a family, or `fused`.
    pub fn family(&self) -> &str {
        &self.family
    }

    /// The search mode: `exact` or `hnsw`.
    pub fn mode(&self) -> &str {
        &self.mode
    }

    /// The figures of its rankings.
    pub fn evaluation(&self) -> &Evaluation {
        &self.evaluation
    }

    /// HNSW recall@10 against exact search (HNSW runs only).
    pub fn ann_recall_at_10(&self) -> Option<f64> {
        self.ann_recall_at_10
    }
}

/// Settings of a labelled evaluation; the default is `lookalike eval`'s: the fused target
/// of the full profile, exact and HNSW, query expansion and nearest-first as `query` ranks.
#[derive(Debug, Clone)]
pub struct LabelledConfig {
    /// What is ranked: single families or fused vectors.
    pub targets: Vec<Target>,
    /// Cut-offs and depths of the figures.
    pub metrics: EvalConfig,
    /// The first `hnsw_depth` results of an HNSW ranking come from the graph; the rest follow
    /// in exact order, so only the head reflects the approximation.
    pub hnsw_depth: usize,
    /// Also run through HNSW (besides exact search).
    pub hnsw: bool,
    /// Queries are copies of the labelled images with these distortions applied in order (their
    /// clean original held out of their ranking and expansion, as a clean query's own image is);
    /// none: the clean images.
    pub query_distortion: Vec<Distortion>,
    /// Seed of the distortions.
    pub seed: u64,
    /// Query expansion applied after the first search (exact and HNSW alike).
    pub qe: QueryExpansion,
    /// The head's candidate nearest to the query goes first, as `query` ranks.
    pub nearest_first: bool,
    /// Graph settings; with `dba > 0` both exact and HNSW rows rank in the augmented space,
    /// as `lookalike query` does.
    pub ann: AnnParams,
}

impl Default for LabelledConfig {
    fn default() -> Self {
        LabelledConfig {
            targets: vec![Target::Fused(Fusion::default())],
            metrics: EvalConfig::default(),
            hnsw_depth: 100,
            hnsw: true,
            query_distortion: Vec::new(),
            seed: 0,
            qe: QueryExpansion::default(),
            nearest_first: true,
            ann: AnnParams::default(),
        }
    }
}

impl LabelledConfig {
    /// The ranking settings of one search mode.
    fn ranking(&self, mode: SearchMode) -> RankConfig {
        RankConfig {
            mode,
            qe: self.qe,
            nearest_first: self.nearest_first,
        }
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let idx = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[idx]
}

/// Extracts per-family vectors of a copy of an image file with `chain` applied in order.
pub(crate) fn distorted_vectors(
    path: &std::path::Path,
    chain: &[Distortion],
    seed: u64,
    registry: &Registry,
) -> Result<Vec<Vec<f32>>> {
    let cfg = DecodeConfig {
        working_size: DISTORT_SOURCE_SIZE,
        ..Default::default()
    };
    let decoded = decode_file(path, &cfg)?;
    let distorted = apply_chain(chain, &decoded.image, seed)?;
    Ok(vectors_of_image(&distorted, registry))
}

/// Per-family vectors of an in-memory image, in registry order.
pub(crate) fn vectors_of_image(img: &RgbImage, registry: &Registry) -> Vec<Vec<f32>> {
    let picture = shrunk_to_fit(img, registry.picture_size());
    registry
        .extract_all(&registry.input(picture))
        .into_iter()
        .map(|r| r.vector)
        .collect()
}

/// `Err(Interrupted)` once `stop` is set: checked before each query's work.
fn check_stop(stop: &AtomicBool) -> Result<()> {
    if stop.load(Ordering::Relaxed) {
        Err(Error::Interrupted)
    } else {
        Ok(())
    }
}

/// Ranks every query for every target, exactly and (optionally) through HNSW, and scores.
/// Each query is ranked by [`crate::rank::rank`], as `lookalike query` ranks. Setting `stop`
/// ends the run at the next query with `Err(Interrupted)`.
pub fn run_labelled(
    gt: &GroundTruth,
    items: &ItemVectors,
    registry: &Registry,
    cfg: &LabelledConfig,
    stop: &AtomicBool,
) -> Result<Vec<TargetRun>> {
    let queries: Vec<usize> = gt
        .queries()
        .into_iter()
        .filter(|q| items.by_item.contains_key(q))
        .collect();
    if queries.is_empty() {
        return Err(Error::InvalidInput(
            "no labelled image is in the index: check that the ground truth names the indexed files".into(),
        ));
    }
    // Query-side per-family vectors: stored ones, or extracted from distorted copies.
    let query_parts: Vec<Vec<Vec<f32>>> = if cfg.query_distortion.is_empty() {
        queries.iter().map(|q| items.by_item[q].clone()).collect()
    } else {
        queries
            .par_iter()
            .map(|&q| {
                check_stop(stop)?;
                let name = gt.name(q);
                let seed = seed_for(cfg.seed, name);
                distorted_vectors(&gt.path(q), &cfg.query_distortion, seed, registry)
            })
            .collect::<Result<_>>()?
    };
    let all = items.by_item.len();
    let mut runs = Vec::new();
    for target in &cfg.targets {
        let space = EvalSpace::new(target, items, cfg.hnsw || cfg.ann.dba > 0, cfg.ann)?;
        let examples: Vec<Vec<f32>> = query_parts
            .iter()
            .map(|p| target.vector(&items.families, p))
            .collect();
        // The query's own image is never one of its expansion neighbours, whether the query is
        // its stored vector or a distorted copy of it: a copy's clean original would otherwise
        // stand in for the query itself (a help clean queries never get), and the clean and
        // distorted figures would not measure the same thing.
        let ranked = |qi: usize, k: usize, mode: SearchMode| -> Result<Vec<usize>> {
            check_stop(stop)?;
            let ranking = rank_with_copies(
                &space,
                &examples[qi],
                signature_of(items, &query_parts[qi]),
                Some(queries[qi] as i64),
                k,
                &cfg.ranking(mode),
            )?;
            Ok(ranking.into_iter().map(|r| r.id as usize).collect())
        };
        let exact: Vec<Vec<usize>> = (0..queries.len())
            .into_par_iter()
            .map(|qi| ranked(qi, all, SearchMode::Exact))
            .collect::<Result<_>>()?;
        let exact_rankings: Vec<Ranking> = queries
            .iter()
            .zip(&exact)
            .map(|(&q, order)| Ranking {
                query: q,
                items: order.clone(),
            })
            .collect();
        let evaluation = evaluate(&exact_rankings, gt, &cfg.metrics)?;
        runs.push(TargetRun {
            family: target.name(),
            mode: "exact".into(),
            evaluation,
            ann_recall_at_10: None,
            query_ms_p50: None,
            query_ms_p95: None,
            rankings: exact_rankings,
        });
        if !cfg.hnsw || space.ann.is_none() {
            continue;
        }
        let depth = cfg.hnsw_depth.max(10);
        let mut latencies = Vec::with_capacity(queries.len());
        let mut heads = Vec::with_capacity(queries.len());
        for qi in 0..queries.len() {
            let t = Instant::now();
            let head = ranked(qi, depth, SearchMode::Hnsw)?;
            latencies.push(t.elapsed().as_secs_f64() * 1e3);
            heads.push(head);
        }
        latencies.sort_by(f64::total_cmp);
        let approx_top: Vec<Vec<usize>> = heads
            .iter()
            .map(|h| h[..h.len().min(10)].to_vec())
            .collect();
        let exact_top: Vec<Vec<usize>> = exact
            .iter()
            .map(|e| e[..e.len().min(10)].to_vec())
            .collect();
        let recall = knn_recall(&approx_top, &exact_top, 10)?;
        // Below the graph's head the ranking follows in exact order, so that only the head
        // reflects the approximation.
        let hnsw_rankings: Vec<Ranking> = queries
            .iter()
            .zip(heads.iter().zip(&exact))
            .map(|(&q, (head, full))| {
                let mut seen: std::collections::HashSet<usize> = head.iter().copied().collect();
                let mut order = head.clone();
                order.extend(full.iter().filter(|i| seen.insert(**i)));
                Ranking {
                    query: q,
                    items: order,
                }
            })
            .collect();
        let evaluation = evaluate(&hnsw_rankings, gt, &cfg.metrics)?;
        runs.push(TargetRun {
            family: target.name(),
            mode: "hnsw".into(),
            evaluation,
            ann_recall_at_10: Some(recall),
            query_ms_p50: Some(percentile(&latencies, 0.5)),
            query_ms_p95: Some(percentile(&latencies, 0.95)),
            rankings: hnsw_rankings,
        });
    }
    Ok(runs)
}

/// Database vectors with their ids, sorted by id.
type Points = Vec<(i64, Vec<f32>)>;

/// One target's vectors of the indexed images as the ranker sees them, with the graph an index
/// would build over them. Ids are ground-truth item ids.
struct EvalSpace<'a> {
    target: &'a Target,
    ann: Option<AnnIndex>,
    /// What searches compare: the augmented graph's vectors, else the target's vectors.
    points: Points,
    /// The target's vectors, when `points` are augmented ones.
    full: Option<Points>,
    /// Duplicate signatures, for the fused target (the one `query` ranks with).
    signatures: Points,
}

impl<'a> EvalSpace<'a> {
    fn new(
        target: &'a Target,
        items: &ItemVectors,
        graph: bool,
        params: AnnParams,
    ) -> Result<Self> {
        let mut ids: Vec<usize> = items.by_item.keys().copied().collect();
        ids.sort_unstable();
        let db: Points = ids
            .iter()
            .map(|&i| (i as i64, target.vector(&items.families, &items.by_item[&i])))
            .collect();
        let ann = graph.then(|| AnnIndex::build(&db, params)).transpose()?;
        let (points, full) = match ann.as_ref().filter(|a| a.is_augmented()) {
            Some(a) => (a.graph_points(), Some(db)),
            None => (db, None),
        };
        let signatures = match (target, signature_column(items)) {
            (Target::Fused(_), Some(col)) => ids
                .iter()
                .map(|&i| (i as i64, items.by_item[&i][col].clone()))
                .collect(),
            _ => Vec::new(),
        };
        Ok(EvalSpace {
            target,
            ann,
            points,
            full,
            signatures,
        })
    }

    fn augmented(&self) -> Option<&AnnIndex> {
        self.ann.as_ref().filter(|a| a.is_augmented())
    }
}

/// Where the duplicate signature lies among an item's family vectors.
fn signature_column(items: &ItemVectors) -> Option<usize> {
    items.families.iter().position(|f| f == "dup")
}

/// An example's duplicate signature from its family vectors (empty when there is none).
fn signature_of<'p>(items: &ItemVectors, parts: &'p [Vec<f32>]) -> &'p [f32] {
    signature_column(items)
        .and_then(|c| parts.get(c))
        .map_or(&[], Vec::as_slice)
}

impl Space for EvalSpace<'_> {
    fn all_copies(&self, signature: &[f32], test: &CopyTest) -> Result<Option<Vec<(i64, Match)>>> {
        if self.signatures.is_empty() {
            return Ok(None);
        }
        Ok(Some(
            self.signatures
                .iter()
                .map(|(id, s)| (*id, compare(signature, s)))
                .filter(|(_, m)| test.accepts(m))
                .collect(),
        ))
    }

    fn signatures_of(&self, ids: &[i64]) -> Result<Vec<(i64, Vec<f32>)>> {
        Ok(ids
            .iter()
            .filter_map(|&id| lookup(&self.signatures, id).map(|v| (id, v.to_vec())))
            .collect())
    }

    fn embed(&self, example: &[f32]) -> Result<Vec<f32>> {
        let view = self.target.query_view(example);
        match self.augmented() {
            Some(a) => a.to_graph_space(&view),
            None => Ok(crate::ann::finite(&view).into_owned()),
        }
    }

    fn search(&self, query: &[f32], k: usize, mode: SearchMode) -> Result<Vec<(i64, f32)>> {
        match (&self.ann, mode) {
            (Some(a), SearchMode::Hnsw) if a.is_augmented() => a.search_graph_space(query, k),
            (Some(a), SearchMode::Hnsw) => {
                a.search_reranked(query, k, |id| lookup(&self.points, id))
            }
            _ => Ok(exact_search(&self.points, query, k)),
        }
    }

    fn vectors_of(&self, ids: &[i64]) -> Result<Vec<(i64, Vec<f32>)>> {
        Ok(ids
            .iter()
            .filter_map(|&id| lookup(&self.points, id).map(|v| (id, v.to_vec())))
            .collect())
    }

    fn example_distances(&self, example: &[f32], ids: &[i64]) -> Result<Vec<f32>> {
        let full = self.full.as_ref().unwrap_or(&self.points);
        Ok(ids
            .iter()
            .map(|&id| {
                lookup(full, id).map_or(f32::INFINITY, |v| self.target.example_distance(example, v))
            })
            .collect())
    }
}

/// Settings of a distortion benchmark on an unlabelled folder; the default is `lookalike
/// eval --distort`'s, with no distortion: set `suite`.
#[derive(Debug, Clone)]
pub struct DistortConfig {
    /// What is ranked: single families or fused vectors.
    pub targets: Vec<Target>,
    /// The distortions, each measured on its own.
    pub suite: Vec<Distortion>,
    /// How many images to distort (a deterministic sample).
    pub sample: usize,
    /// Seed of the sample and the distortions.
    pub seed: u64,
    /// Also run through HNSW (besides exact search).
    pub hnsw: bool,
    /// Graph settings, as in [`LabelledConfig::ann`].
    pub ann: AnnParams,
    /// Query expansion, as `query` applies it (the distorted copy is not in the index).
    pub qe: QueryExpansion,
    /// The head's candidate nearest to the query goes first, as `query` ranks.
    pub nearest_first: bool,
}

impl Default for DistortConfig {
    fn default() -> Self {
        DistortConfig {
            targets: vec![Target::Fused(Fusion::default())],
            suite: Vec::new(),
            sample: 100,
            seed: 0,
            hnsw: true,
            ann: AnnParams::default(),
            qe: QueryExpansion::default(),
            nearest_first: true,
        }
    }
}

/// Where distorted copies of one distortion found their originals, for one target and mode.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DistortionResult {
    pub(crate) distortion: String,
    pub(crate) kind: String,
    pub(crate) strength: f64,
    pub(crate) family: String,
    pub(crate) mode: String,
    pub(crate) queries: usize,
    pub(crate) recall_at_1: f64,
    pub(crate) recall_at_10: f64,
    /// Mean reciprocal rank of the original (= mAP with one relevant item).
    pub(crate) map: f64,
}

impl DistortionResult {
    /// The distortion, as it is written (`jpeg:40`).
    pub fn distortion(&self) -> &str {
        &self.distortion
    }

    /// The target's name: a family, or `fused`.
    pub fn family(&self) -> &str {
        &self.family
    }

    /// The search mode: `exact` or `hnsw`.
    pub fn mode(&self) -> &str {
        &self.mode
    }

    /// Distorted copies queried.
    pub fn queries(&self) -> usize {
        self.queries
    }

    /// Share of queries whose original came first.
    pub fn recall_at_1(&self) -> f64 {
        self.recall_at_1
    }

    /// Share of queries whose original was among the first ten.
    pub fn recall_at_10(&self) -> f64 {
        self.recall_at_10
    }

    /// Mean reciprocal rank of the original.
    pub fn map(&self) -> f64 {
        self.map
    }
}

/// Queries distorted copies of sampled indexed images against the clean index, each ranked by
/// [`crate::rank::rank`] as `lookalike query` ranks an example that is not indexed. Setting
/// `stop` ends the run at the next query with `Err(Interrupted)`.
pub fn run_distortions(
    items: &ItemVectors,
    paths: &HashMap<usize, PathBuf>,
    registry: &Registry,
    cfg: &DistortConfig,
    stop: &AtomicBool,
    on_step: &(dyn Fn(usize, usize) + Sync),
) -> Result<Vec<DistortionResult>> {
    let mut ids: Vec<usize> = items.by_item.keys().copied().collect();
    ids.sort_by_key(|&i| crate::eval::stable_hash(&(i as u64 ^ cfg.seed).to_le_bytes()));
    let sample: Vec<usize> = ids.into_iter().take(cfg.sample.max(1)).collect();
    let all = items.by_item.len();
    let spaces: Vec<EvalSpace> = cfg
        .targets
        .iter()
        .map(|t| EvalSpace::new(t, items, cfg.hnsw || cfg.ann.dba > 0, cfg.ann))
        .collect::<Result<_>>()?;
    let ranking = |mode| RankConfig {
        mode,
        qe: cfg.qe,
        nearest_first: cfg.nearest_first,
    };
    let mut out = Vec::new();
    for (step, d) in cfg.suite.iter().enumerate() {
        on_step(step, cfg.suite.len());
        let parts: Vec<Option<Vec<Vec<f32>>>> = sample
            .par_iter()
            .map(|&i| {
                check_stop(stop)?;
                let name = paths[&i].to_string_lossy();
                let seed = seed_for(cfg.seed, &name);
                Ok(distorted_vectors(&paths[&i], std::slice::from_ref(d), seed, registry).ok())
            })
            .collect::<Result<_>>()?;
        for (target, space) in cfg.targets.iter().zip(&spaces) {
            let mut modes = vec![("exact", SearchMode::Exact, all)];
            if cfg.hnsw && space.ann.is_some() {
                modes.push(("hnsw", SearchMode::Hnsw, 10));
            }
            for (mode, search, depth) in modes {
                // Rank of the original, usize::MAX when a graph search misses it.
                let ranks: Vec<usize> = sample
                    .par_iter()
                    .zip(&parts)
                    .filter_map(|(&orig, p)| p.as_ref().map(|p| (orig, p)))
                    .map(|(orig, p)| {
                        check_stop(stop)?;
                        let example = target.vector(&items.families, p);
                        let ranked = rank_with_copies(
                            space,
                            &example,
                            signature_of(items, p),
                            None,
                            depth,
                            &ranking(search),
                        )?;
                        Ok(ranked
                            .iter()
                            .position(|r| r.id as usize == orig)
                            .map_or(usize::MAX, |r| r + 1))
                    })
                    .collect::<Result<_>>()?;
                if ranks.is_empty() {
                    continue;
                }
                let n = ranks.len() as f64;
                out.push(DistortionResult {
                    distortion: d.to_string(),
                    kind: d.kind().to_string(),
                    strength: d.strength(),
                    family: target.name(),
                    mode: mode.into(),
                    queries: ranks.len(),
                    recall_at_1: ranks.iter().filter(|&&r| r == 1).count() as f64 / n,
                    recall_at_10: ranks.iter().filter(|&&r| r <= 10).count() as f64 / n,
                    map: ranks
                        .iter()
                        .map(|&r| if r == usize::MAX { 0.0 } else { 1.0 / r as f64 })
                        .sum::<f64>()
                        / n,
                });
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::features::Profile;

    /// An interrupt ends a labelled run at the next query with `Interrupted` (exit 130), not
    /// once every query of every target is ranked.
    #[test]
    fn a_stop_ends_the_run_at_the_next_query() {
        let dir = tempfile::tempdir().unwrap();
        for (class, name) in [
            ("a", "1.png"),
            ("a", "2.png"),
            ("b", "3.png"),
            ("b", "4.png"),
        ] {
            std::fs::create_dir_all(dir.path().join(class)).unwrap();
            RgbImage::new(4, 4)
                .save(dir.path().join(class).join(name))
                .unwrap();
        }
        let gt = GroundTruth::from_folders(dir.path()).unwrap();
        let items = ItemVectors {
            families: vec!["color".into()],
            by_item: (0..gt.len())
                .map(|i| (i, vec![vec![i as f32, 1.0]]))
                .collect(),
            distractors: 0,
            missing: Vec::new(),
        };
        let cfg = LabelledConfig {
            targets: vec![Target::Family("color".into())],
            metrics: EvalConfig::default(),
            hnsw_depth: 10,
            hnsw: false,
            query_distortion: Vec::new(),
            seed: 1,
            qe: QueryExpansion::default(),
            nearest_first: false,
            ann: AnnParams::default(),
        };
        let registry = Registry::for_profile(Profile::Full);
        let stop = AtomicBool::new(true);
        let run = run_labelled(&gt, &items, &registry, &cfg, &stop);
        assert!(
            matches!(run, Err(Error::Interrupted)),
            "{:?}",
            run.map(|runs| runs.len())
        );
        stop.store(false, Ordering::Relaxed);
        assert_eq!(
            run_labelled(&gt, &items, &registry, &cfg, &stop)
                .unwrap()
                .len(),
            1
        );
    }

    /// A family's part of another length (missing, or stored by an older version) searches as
    /// zeros of the family's length: it was searched as it was, and an empty one lay at
    /// distance 0 from every example.
    #[test]
    fn a_family_part_of_another_length_is_zeros_of_the_family_length() {
        let target = Target::Family("color".into());
        let families = vec!["color".to_string()];
        let dim = crate::features::family_dim("color");
        for part in [vec![], vec![1.0; 3]] {
            assert_eq!(target.vector(&families, &[part]), vec![0.0; dim]);
        }
        let whole = target.vector(&families, &[vec![2.0; dim]]);
        assert!((crate::vector::dot(&whole, &whole) - 1.0).abs() < 1e-5);
    }

    #[test]
    fn families_must_name_at_least_one_known_family() {
        let registry = Registry::for_profile(Profile::Full);
        let fusion = Fusion::for_profile(Profile::Full);
        let targets = parse_targets("color, fused", &registry, &fusion).unwrap();
        assert_eq!(targets.len(), 2);
        for spec in ["", ",", " , "] {
            let e = parse_targets(spec, &registry, &fusion)
                .unwrap_err()
                .to_string();
            assert!(e.contains("names no family") && e.contains("fused"), "{e}");
        }
        let e = parse_targets("colour", &registry, &fusion)
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown family 'colour'"), "{e}");
    }
}
