//! Running evaluations against an index: every labelled image (or listed query) ranks the
//! collection per feature family, exactly and through HNSW; distortion benchmarks query
//! distorted copies against the clean index. Pure orchestration: storage, search and metrics
//! live in their own modules.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Instant;

use image::RgbImage;
use rayon::prelude::*;

use crate::ann::{AnnIndex, AnnParams, squared_l2};
use crate::decode::{DecodeConfig, decode_file, resize_to_fit};
use crate::error::{Error, Result};
use crate::eval::distort::{Distortion, apply_chain, seed_for};
use crate::eval::groundtruth::GroundTruth;
use crate::eval::metrics::{EvalConfig, Evaluation, Ranking, evaluate, knn_recall};
use crate::features::{FeatureInput, Fusion, Registry, l2_normalize};
use crate::query_expansion::QueryExpansion;
use crate::store::Store;

/// Name used for the fused vector in reports.
pub const FUSED: &str = "fused";

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

    /// The vector to search with, from per-family vectors in `families` order.
    pub fn vector(&self, families: &[String], parts: &[Vec<f32>]) -> Vec<f32> {
        match self {
            Target::Family(f) => {
                let i = families.iter().position(|x| x == f).unwrap_or(0);
                let mut v = parts[i].clone();
                l2_normalize(&mut v);
                v
            }
            Target::Fused(fusion) => fusion.fuse_named(families, parts),
        }
    }

    /// The distance `query` reports from an example's [`vector`](Self::vector) to an indexed
    /// one ([`Fusion::example_distance`]; plain L2 for a single family).
    pub fn example_distance(&self, example: &[f32], indexed: &[f32]) -> f32 {
        match self {
            Target::Family(_) => squared_l2(example, indexed).sqrt(),
            Target::Fused(fusion) => fusion.example_distance(example, indexed),
        }
    }

    /// The vector a query ranks with, from its [`vector`](Self::vector) (the fused target's
    /// [`Fusion::query_view`]).
    pub fn query_view(&self, vector: &[f32]) -> Vec<f32> {
        match self {
            Target::Family(_) => vector.to_vec(),
            Target::Fused(fusion) => fusion.query_view(vector),
        }
    }
}

/// Parses `color,conv,fused` into targets (`fused` uses `fusion`).
pub fn parse_targets(spec: &str, registry: &Registry, fusion: &Fusion) -> Result<Vec<Target>> {
    let known = registry.families();
    spec.split(',')
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
        .collect()
}

/// Figures of one target under one search mode.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TargetRun {
    pub family: String,
    pub mode: String,
    pub evaluation: Evaluation,
    /// HNSW recall@10 against exact search (HNSW runs only).
    pub ann_recall_at_10: Option<f64>,
    /// Per-query search latency percentiles in milliseconds (HNSW runs only).
    pub query_ms_p50: Option<f64>,
    pub query_ms_p95: Option<f64>,
    #[serde(skip)]
    pub rankings: Vec<Ranking>,
}

/// Settings of a labelled evaluation.
#[derive(Debug, Clone)]
pub struct LabelledConfig {
    pub targets: Vec<Target>,
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
    pub seed: u64,
    /// Query expansion applied after the first search (exact and HNSW alike).
    pub qe: QueryExpansion,
    /// The head's candidate nearest to the query goes first, as `query` ranks.
    pub nearest_first: bool,
    /// Graph settings; with `dba > 0` both exact and HNSW rows rank in the augmented space,
    /// as `lookalike query` does.
    pub ann: AnnParams,
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let idx = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[idx]
}

/// Extracts per-family vectors of a copy of an image file with `chain` applied in order.
pub fn distorted_vectors(
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
pub fn vectors_of_image(img: &RgbImage, registry: &Registry) -> Vec<Vec<f32>> {
    let working = resize_to_fit(img, registry.working_size());
    registry
        .extract_all(&FeatureInput::new(working))
        .into_iter()
        .map(|r| r.vector)
        .collect()
}

/// Ranks every query for every target, exactly and (optionally) through HNSW, and scores.
pub fn run_labelled(
    gt: &GroundTruth,
    items: &ItemVectors,
    registry: &Registry,
    cfg: &LabelledConfig,
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
                let name = gt.name(q);
                let seed = seed_for(cfg.seed, name);
                distorted_vectors(&gt.path(q), &cfg.query_distortion, seed, registry)
            })
            .collect::<Result<_>>()?
    };
    let mut db_ids: Vec<usize> = items.by_item.keys().copied().collect();
    db_ids.sort_unstable();
    let mut runs = Vec::new();
    for target in &cfg.targets {
        let db: Vec<(i64, Vec<f32>)> = db_ids
            .iter()
            .map(|&i| (i as i64, target.vector(&items.families, &items.by_item[&i])))
            .collect();
        let plain_qv: Vec<Vec<f32>> = query_parts
            .iter()
            .map(|p| target.vector(&items.families, p))
            .collect();
        let qv: Vec<Vec<f32>> = plain_qv.iter().map(|v| target.query_view(v)).collect();
        let ann = (cfg.hnsw || cfg.ann.dba > 0).then(|| AnnIndex::build(&db, cfg.ann));
        let augmented = ann.as_ref().is_some_and(AnnIndex::is_augmented);
        // Nearest first compares distances to the example on full fused vectors, as `query`
        // shows them: the database's kept aside only when the augmented space replaces them.
        let plain_db = (cfg.nearest_first && augmented).then(|| db.clone());
        let (db, qv) = into_search_space(ann.as_ref(), db, qv);
        let pos: HashMap<usize, usize> = db_ids.iter().enumerate().map(|(p, &i)| (i, p)).collect();
        // Leave-one-out: the query's own image is never one of its expansion neighbours, whether
        // the query is its stored vector or a distorted copy of it. A copy's clean original would
        // otherwise stand in for the query itself (a help clean queries never get), and the
        // clean and distorted figures would not measure the same thing.
        let expand = |q: &[f32], qid: usize, first: &[usize]| -> Vec<f32> {
            cfg.qe.expand(
                q,
                first
                    .iter()
                    .filter(|&&i| i != qid)
                    .map(|i| db[pos[i]].1.as_slice()),
            )
        };
        let nearest_first = |order: &mut Vec<usize>, qi: usize, qid: usize| {
            if !cfg.nearest_first {
                return;
            }
            let plain_db = plain_db.as_ref().unwrap_or(&db);
            promote_nearest(order, Some(qid), |i| {
                target.example_distance(&plain_qv[qi], &plain_db[pos[&i]].1)
            });
        };
        let exact: Vec<Vec<usize>> = qv
            .par_iter()
            .zip(&queries)
            .enumerate()
            .map(|(qi, (q, &qid))| {
                let first = exact_order(&db, q);
                let mut order = if cfg.qe.enabled() {
                    exact_order(
                        &db,
                        &expand(q, qid, &first[..first.len().min(cfg.qe.n + 1)]),
                    )
                } else {
                    first
                };
                nearest_first(&mut order, qi, qid);
                order
            })
            .collect();
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
        let Some(ann) = ann.filter(|_| cfg.hnsw) else {
            continue;
        };
        let full: HashMap<i64, &[f32]> = db.iter().map(|(id, v)| (*id, v.as_slice())).collect();
        let lookup = |id: i64| full.get(&id).copied();
        let search = |q: &[f32], k: usize| {
            if augmented {
                ann.search_graph_space(q, k)
            } else {
                ann.search_reranked(q, k, lookup)
            }
        };
        let depth = cfg.hnsw_depth.max(10);
        let mut latencies = Vec::with_capacity(qv.len());
        let mut heads = Vec::with_capacity(qv.len());
        for (qi, (q, &qid)) in qv.iter().zip(&queries).enumerate() {
            let t = Instant::now();
            let hits = if cfg.qe.enabled() {
                let first: Vec<usize> = search(q, cfg.qe.n + 1)
                    .into_iter()
                    .map(|h| h.0 as usize)
                    .collect();
                search(&expand(q, qid, &first), depth)
            } else {
                search(q, depth)
            };
            let mut head: Vec<usize> = hits.into_iter().map(|h| h.0 as usize).collect();
            nearest_first(&mut head, qi, qid);
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

/// Database and query vectors in the space searches rank in: an augmented graph's own vectors
/// and projected queries, else the full vectors as they are.
fn into_search_space(
    ann: Option<&AnnIndex>,
    db: Points,
    queries: Vec<Vec<f32>>,
) -> (Points, Vec<Vec<f32>>) {
    match ann.filter(|a| a.is_augmented()) {
        Some(a) => (
            a.graph_points(),
            queries.iter().map(|q| a.to_graph_space(q)).collect(),
        ),
        None => (db, queries),
    }
}

/// Moves the head's item nearest to the query first ([`crate::nearest_first`]), leaving the
/// query's own item (when it is in the ranking) where it is.
fn promote_nearest(order: &mut [usize], own: Option<usize>, plain_distance: impl Fn(usize) -> f32) {
    let slots: Vec<usize> = (0..order.len())
        .filter(|&p| Some(order[p]) != own)
        .take(crate::nearest_first::POOL)
        .collect();
    let mut head: Vec<usize> = slots.iter().map(|&p| order[p]).collect();
    if crate::nearest_first::promote(&mut head, |&i| plain_distance(i)) {
        for (&p, i) in slots.iter().zip(head) {
            order[p] = i;
        }
    }
}

/// All database items ordered by distance to `q` (ties by item id).
fn exact_order(db: &[(i64, Vec<f32>)], q: &[f32]) -> Vec<usize> {
    let mut d: Vec<(f32, usize)> = db
        .iter()
        .map(|(id, v)| (squared_l2(v, q), *id as usize))
        .collect();
    d.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    d.into_iter().map(|x| x.1).collect()
}

/// Settings of a distortion benchmark on an unlabelled folder.
#[derive(Debug, Clone)]
pub struct DistortConfig {
    pub targets: Vec<Target>,
    pub suite: Vec<Distortion>,
    /// How many images to distort (a deterministic sample).
    pub sample: usize,
    pub seed: u64,
    pub hnsw: bool,
    /// Graph settings, as in [`LabelledConfig::ann`].
    pub ann: AnnParams,
    /// Query expansion, as `query` applies it (the distorted copy is not in the index).
    pub qe: QueryExpansion,
    /// The head's candidate nearest to the query goes first, as `query` ranks.
    pub nearest_first: bool,
}

/// Where distorted copies of one distortion found their originals, for one target and mode.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DistortionResult {
    pub distortion: String,
    pub kind: String,
    pub strength: f64,
    pub family: String,
    pub mode: String,
    pub queries: usize,
    pub recall_at_1: f64,
    pub recall_at_10: f64,
    /// Mean reciprocal rank of the original (= mAP with one relevant item).
    pub map: f64,
}

/// Queries distorted copies of sampled indexed images against the clean index.
pub fn run_distortions(
    items: &ItemVectors,
    paths: &HashMap<usize, PathBuf>,
    registry: &Registry,
    cfg: &DistortConfig,
    on_step: &(dyn Fn(usize, usize) + Sync),
) -> Result<Vec<DistortionResult>> {
    let mut ids: Vec<usize> = items.by_item.keys().copied().collect();
    ids.sort_by_key(|&i| crate::eval::stable_hash(&(i as u64 ^ cfg.seed).to_le_bytes()));
    let sample: Vec<usize> = ids.into_iter().take(cfg.sample.max(1)).collect();
    let mut db_ids: Vec<usize> = items.by_item.keys().copied().collect();
    db_ids.sort_unstable();
    let dbs: Vec<Vec<(i64, Vec<f32>)>> = cfg
        .targets
        .iter()
        .map(|t| {
            db_ids
                .iter()
                .map(|&i| (i as i64, t.vector(&items.families, &items.by_item[&i])))
                .collect()
        })
        .collect();
    let anns: Vec<Option<AnnIndex>> = dbs
        .iter()
        .map(|db| (cfg.hnsw || cfg.ann.dba > 0).then(|| AnnIndex::build(db, cfg.ann)))
        .collect();
    // Nearest first compares full fused distances, as `query` shows them: kept aside only
    // where an augmented space replaces them.
    let plain_dbs: Vec<Option<Points>> = dbs
        .iter()
        .zip(&anns)
        .map(|(db, ann)| {
            (cfg.nearest_first && ann.as_ref().is_some_and(AnnIndex::is_augmented))
                .then(|| db.clone())
        })
        .collect();
    let dbs: Vec<Vec<(i64, Vec<f32>)>> = dbs
        .into_iter()
        .zip(&anns)
        .map(|(db, ann)| into_search_space(ann.as_ref(), db, Vec::new()).0)
        .collect();
    let mut out = Vec::new();
    for (step, d) in cfg.suite.iter().enumerate() {
        on_step(step, cfg.suite.len());
        let parts: Vec<Option<Vec<Vec<f32>>>> = sample
            .par_iter()
            .map(|&i| {
                let name = paths[&i].to_string_lossy();
                let seed = seed_for(cfg.seed, &name);
                distorted_vectors(&paths[&i], std::slice::from_ref(d), seed, registry).ok()
            })
            .collect();
        for (ti, ((target, db), ann)) in cfg.targets.iter().zip(&dbs).zip(&anns).enumerate() {
            let mut exact_ranks = Vec::new();
            let mut ann_ranks = Vec::new();
            for (&orig, p) in sample.iter().zip(&parts) {
                let Some(p) = p else { continue };
                let q_plain = target.vector(&items.families, p);
                // Rank of the original in a ranking's head after nearest-first, or
                // None when it is not in the head.
                let rank_in_head = |head: &mut Vec<usize>| {
                    if cfg.nearest_first {
                        let plain = plain_dbs[ti].as_ref().unwrap_or(db);
                        promote_nearest(head, None, |i| {
                            crate::ann::lookup(plain, i as i64)
                                .map_or(f32::INFINITY, |v| target.example_distance(&q_plain, v))
                        });
                    }
                    head.iter().position(|&i| i == orig).map(|r| r + 1)
                };
                let q = target.query_view(&q_plain);
                let q = match ann.as_ref().filter(|a| a.is_augmented()) {
                    Some(a) => a.to_graph_space(&q),
                    None => q,
                };
                let expand_with = |first: Vec<(i64, f32)>| {
                    cfg.qe.expand(
                        &q,
                        first
                            .iter()
                            .filter_map(|(id, _)| crate::ann::lookup(db, *id)),
                    )
                };
                let q_graph = match ann.as_ref().filter(|_| cfg.hnsw && cfg.qe.enabled()) {
                    Some(a) if a.is_augmented() => expand_with(a.search_graph_space(&q, cfg.qe.n)),
                    Some(a) => expand_with(
                        a.search_reranked(&q, cfg.qe.n, |id| crate::ann::lookup(db, id)),
                    ),
                    None => q.clone(),
                };
                let q = if cfg.qe.enabled() {
                    expand_with(crate::ann::exact_search(db, &q, cfg.qe.n))
                } else {
                    q
                };
                let d_orig = db
                    .iter()
                    .find(|(id, _)| *id as usize == orig)
                    .map(|(_, v)| squared_l2(v, &q))
                    .unwrap_or(f32::INFINITY);
                let better = db
                    .iter()
                    .filter(|(id, v)| {
                        let dv = squared_l2(v, &q);
                        dv < d_orig || (dv == d_orig && (*id as usize) < orig)
                    })
                    .count();
                let rank = if better < crate::nearest_first::POOL && cfg.nearest_first {
                    let mut head = exact_order(db, &q);
                    head.truncate(crate::nearest_first::POOL);
                    rank_in_head(&mut head).unwrap_or(better + 1)
                } else {
                    better + 1
                };
                exact_ranks.push(rank);
                if let Some(ann) = ann.as_ref().filter(|_| cfg.hnsw) {
                    let hits = if ann.is_augmented() {
                        ann.search_graph_space(&q_graph, 10)
                    } else {
                        ann.search_reranked(&q_graph, 10, |id| crate::ann::lookup(db, id))
                    };
                    let mut head: Vec<usize> = hits.iter().map(|h| h.0 as usize).collect();
                    ann_ranks.push(rank_in_head(&mut head).unwrap_or(usize::MAX));
                }
            }
            for (mode, ranks) in [("exact", &exact_ranks), ("hnsw", &ann_ranks)] {
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
