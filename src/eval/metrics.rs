//! Retrieval metrics over ranked lists: AP/mAP, P@k, R@k, NDCG@k, UKBench N-S, per-class figures,
//! 11-point precision-recall curves and approximate-vs-exact k-NN recall. Pure functions.
//!
//! Conventions (identical to `peer_baseline.py`'s `scores`, so figures agree to 4 decimals):
//! * a ranking lists database item ids best first; it may contain the query itself and may be
//!   truncated; items beyond the end count as not retrieved;
//! * AP, P@k, R@k and NDCG@k skip the query; AP is the sum of the precision at each relevant hit
//!   divided by the total number of relevant items (0 when the query has none);
//! * N-S counts the items in the first 4 positions (query included) that are the query itself or
//!   relevant to it; a ranking without the query is read as having it first;
//! * P@k divides by k even when the ranking is shorter.

use std::collections::{HashMap, HashSet};

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// The relevance definition metrics are computed against.
pub trait Relevance: Sync {
    /// True when `item` is relevant to `query` (never for `item == query`).
    fn is_relevant(&self, query: usize, item: usize) -> bool;
    /// Number of relevant database items of `query`, the query itself excluded.
    fn num_relevant(&self, query: usize) -> usize;
    /// Class (label) name of `query`, for the per-class breakdown; `None` when there are no classes.
    fn class_of(&self, _query: usize) -> Option<String> {
        None
    }
}

/// Relevance by integer labels: items with the query's label are relevant.
/// Ids at or beyond `labels.len()` are distractors, relevant to nothing.
#[derive(Debug, Clone)]
pub struct LabelRelevance {
    labels: Vec<i64>,
    counts: HashMap<i64, usize>,
}

impl LabelRelevance {
    /// Builds the relevance of a fully labelled database (item id = position in `labels`).
    pub fn new(labels: Vec<i64>) -> Self {
        let mut counts = HashMap::new();
        for &l in &labels {
            *counts.entry(l).or_insert(0) += 1;
        }
        Self { labels, counts }
    }
}

impl Relevance for LabelRelevance {
    fn is_relevant(&self, query: usize, item: usize) -> bool {
        query != item
            && match (self.labels.get(query), self.labels.get(item)) {
                (Some(a), Some(b)) => a == b,
                _ => false,
            }
    }
    fn num_relevant(&self, query: usize) -> usize {
        self.labels
            .get(query)
            .map_or(0, |l| self.counts[l].saturating_sub(1))
    }
    fn class_of(&self, query: usize) -> Option<String> {
        self.labels.get(query).map(i64::to_string)
    }
}

/// One query's ranked result list (database item ids, best first).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ranking {
    /// Item id of the query.
    pub query: usize,
    /// Ranked item ids; may include the query and may be truncated.
    pub items: Vec<usize>,
}

/// Which cut-offs to report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalConfig {
    /// Cut-offs for P@k, R@k and NDCG@k (default 1, 5, 10).
    pub ks: Vec<usize>,
    /// Depth of the N-S score (4 for UKBench).
    pub ns_depth: usize,
    /// Cut-off of the per-class precision column (10).
    pub class_k: usize,
}

impl Default for EvalConfig {
    fn default() -> Self {
        Self {
            ks: vec![1, 5, 10],
            ns_depth: 4,
            class_k: 10,
        }
    }
}

/// A metric value at cut-off `k`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AtK {
    pub(crate) k: usize,
    /// The metric's value (0 to 1).
    pub value: f64,
}

/// A point of a precision-recall curve.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub(crate) struct PrPoint {
    pub(crate) recall: f64,
    pub(crate) precision: f64,
}

/// Figures of one query.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueryMetrics {
    /// Item id of the query.
    pub query: usize,
    /// Class name of the query, when relevance has classes.
    pub(crate) class: Option<String>,
    pub(crate) num_relevant: usize,
    /// Average precision (0 to 1; 0 when the query has no relevant item).
    pub ap: f64,
    /// Precision at each cut-off of `EvalConfig::ks`.
    pub precision: Vec<AtK>,
    /// Recall at each cut-off of `EvalConfig::ks`.
    pub recall: Vec<AtK>,
    /// NDCG at each cut-off of `EvalConfig::ks`.
    pub ndcg: Vec<AtK>,
    /// Precision at `EvalConfig::class_k` (feeds the per-class table).
    pub(crate) precision_class_k: f64,
    /// Query-or-relevant items in the first `ns_depth` positions (query included).
    pub ns: usize,
    /// 1-based rank (query skipped) of the first relevant item, if any was retrieved.
    pub first_hit: Option<usize>,
    /// 11-point interpolated precision at recall 0, 0.1, ..., 1.
    pub(crate) pr11: Vec<f64>,
}

/// Per-class averages.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassMetrics {
    /// Class (label) name.
    pub class: String,
    pub(crate) queries: usize,
    /// Mean average precision over the class's queries (0 to 1).
    pub map: f64,
    /// Mean precision at `k`.
    pub precision: f64,
    pub(crate) k: usize,
}

/// Averages over all queries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub(crate) queries: usize,
    /// Queries with no relevant item (their AP counts as 0, as in peer_baseline.py).
    pub(crate) queries_without_relevant: usize,
    /// Mean average precision (0 to 1).
    pub map: f64,
    pub(crate) precision: Vec<AtK>,
    pub(crate) recall: Vec<AtK>,
    pub(crate) ndcg: Vec<AtK>,
    /// Mean N-S score (max = `ns_depth`).
    pub ns_score: f64,
    pub(crate) ns_depth: usize,
    /// Mean 11-point interpolated precision-recall curve.
    pub(crate) pr_curve: Vec<PrPoint>,
    /// Per-class figures, sorted by class (numerically when class names are numbers).
    pub per_class: Vec<ClassMetrics>,
}

impl Summary {
    /// Mean precision at `k`, if `k` was configured.
    pub fn precision_at(&self, k: usize) -> Option<f64> {
        self.precision.iter().find(|a| a.k == k).map(|a| a.value)
    }
    /// Mean recall at `k`, if `k` was configured.
    pub fn recall_at(&self, k: usize) -> Option<f64> {
        self.recall.iter().find(|a| a.k == k).map(|a| a.value)
    }
    /// Mean NDCG at `k`, if `k` was configured.
    pub(crate) fn ndcg_at(&self, k: usize) -> Option<f64> {
        self.ndcg.iter().find(|a| a.k == k).map(|a| a.value)
    }
}

/// Everything computed for a set of rankings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    pub(crate) config: EvalConfig,
    /// Averages over all queries.
    pub summary: Summary,
    /// In the order the rankings were given.
    pub per_query: Vec<QueryMetrics>,
}

/// Recall levels of the 11-point curve.
pub(crate) const PR_LEVELS: usize = 11;

/// 1-based ranks (query skipped) of the relevant items in `items`.
fn hit_ranks<R: Relevance + ?Sized>(query: usize, items: &[usize], rel: &R) -> Vec<usize> {
    items
        .iter()
        .filter(|&&i| i != query)
        .enumerate()
        .filter(|&(_, &i)| rel.is_relevant(query, i))
        .map(|(r, _)| r + 1)
        .collect()
}

/// Average precision of one ranking: mean over relevant hits of the precision at the hit,
/// divided by the total number of relevant items (`num_relevant`); 0 when there are none.
pub fn average_precision<R: Relevance + ?Sized>(query: usize, items: &[usize], rel: &R) -> f64 {
    ap_from_hits(&hit_ranks(query, items, rel), rel.num_relevant(query))
}

fn ap_from_hits(hits: &[usize], num_relevant: usize) -> f64 {
    if num_relevant == 0 {
        return 0.0;
    }
    // a fold from +0: an empty float sum is -0, which reports print as "-0.0"
    let s: f64 = hits
        .iter()
        .enumerate()
        .map(|(j, &r)| (j + 1) as f64 / r as f64)
        .fold(0.0, |a, b| a + b);
    s / num_relevant as f64
}

fn hits_within(hits: &[usize], k: usize) -> usize {
    hits.partition_point(|&r| r <= k)
}

/// Binary-gain NDCG at `k` with log2(rank + 1) discount; 0 when there is no relevant item.
fn ndcg_from_hits(hits: &[usize], num_relevant: usize, k: usize) -> f64 {
    let ideal: f64 = (1..=k.min(num_relevant))
        .map(|i| 1.0 / ((i + 1) as f64).log2())
        .sum();
    if ideal == 0.0 {
        return 0.0;
    }
    let dcg: f64 = hits
        .iter()
        .take_while(|&&r| r <= k)
        .map(|&r| 1.0 / ((r + 1) as f64).log2())
        .fold(0.0, |a, b| a + b);
    dcg / ideal
}

/// 11-point interpolated precision: at recall level r, the best precision reached at recall >= r.
fn pr11_from_hits(hits: &[usize], num_relevant: usize) -> Vec<f64> {
    let mut out = vec![0.0; PR_LEVELS];
    if num_relevant == 0 {
        return out;
    }
    // precision and recall at each hit; interpolated precision is the max over later hits.
    let mut best_from = vec![0.0f64; hits.len() + 1];
    for j in (0..hits.len()).rev() {
        let p = (j + 1) as f64 / hits[j] as f64;
        best_from[j] = best_from[j + 1].max(p);
    }
    for (level, slot) in out.iter_mut().enumerate() {
        let r = level as f64 / (PR_LEVELS - 1) as f64;
        // first hit whose recall reaches r (small tolerance for 0.1 * n rounding)
        let need = r * num_relevant as f64 - 1e-9;
        let j = (0..hits.len()).find(|&j| (j + 1) as f64 >= need);
        *slot = j.map_or(0.0, |j| best_from[j]);
    }
    out
}

/// Computes all figures of one query.
pub fn query_metrics<R: Relevance + ?Sized>(
    ranking: &Ranking,
    rel: &R,
    cfg: &EvalConfig,
) -> QueryMetrics {
    let q = ranking.query;
    let hits = hit_ranks(q, &ranking.items, rel);
    let nrel = rel.num_relevant(q);
    let at = |f: &dyn Fn(usize) -> f64| -> Vec<AtK> {
        cfg.ks.iter().map(|&k| AtK { k, value: f(k) }).collect()
    };
    let precision_at = |k: usize| {
        if k == 0 {
            0.0
        } else {
            hits_within(&hits, k) as f64 / k as f64
        }
    };
    // The query is at distance 0 from itself: a ranking that leaves it out is read as having
    // it first, so N-S is the same whether or not the search returned the query.
    let self_listed = ranking.items.contains(&q);
    let depth = if self_listed {
        cfg.ns_depth
    } else {
        cfg.ns_depth.saturating_sub(1)
    };
    let ns = ranking
        .items
        .iter()
        .take(depth)
        .filter(|&&i| i == q || rel.is_relevant(q, i))
        .count()
        + usize::from(!self_listed && cfg.ns_depth > 0);
    QueryMetrics {
        query: q,
        class: rel.class_of(q),
        num_relevant: nrel,
        ap: ap_from_hits(&hits, nrel),
        precision: at(&precision_at),
        recall: at(&|k| {
            if nrel == 0 {
                0.0
            } else {
                hits_within(&hits, k) as f64 / nrel as f64
            }
        }),
        ndcg: at(&|k| ndcg_from_hits(&hits, nrel, k)),
        precision_class_k: precision_at(cfg.class_k),
        ns,
        first_hit: hits.first().copied(),
        pr11: pr11_from_hits(&hits, nrel),
    }
}

fn mean(values: impl Iterator<Item = f64>) -> f64 {
    let (s, n) = values.fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    if n == 0 { 0.0 } else { s / n as f64 }
}

fn mean_at(
    per_query: &[QueryMetrics],
    pick: fn(&QueryMetrics) -> &Vec<AtK>,
    ks: &[usize],
) -> Vec<AtK> {
    ks.iter()
        .enumerate()
        .map(|(i, &k)| AtK {
            k,
            value: mean(per_query.iter().map(|m| pick(m)[i].value)),
        })
        .collect()
}

fn class_order(a: &str, b: &str) -> std::cmp::Ordering {
    match (a.parse::<i64>(), b.parse::<i64>()) {
        (Ok(x), Ok(y)) => x.cmp(&y),
        _ => a.cmp(b),
    }
}

/// Evaluates rankings against a relevance definition.
///
/// Fails (`InvalidInput`) when there are no rankings, two rankings share a query, or a ranking
/// lists an item twice.
pub fn evaluate<R: Relevance + ?Sized>(
    rankings: &[Ranking],
    rel: &R,
    cfg: &EvalConfig,
) -> Result<Evaluation> {
    if rankings.is_empty() {
        return Err(Error::InvalidInput(
            "no rankings to evaluate: the query set is empty".into(),
        ));
    }
    if cfg.ks.contains(&0) {
        return Err(Error::InvalidInput(
            "cut-off k = 0 is meaningless; use k >= 1".into(),
        ));
    }
    let mut seen_q = HashSet::with_capacity(rankings.len());
    for r in rankings {
        if !seen_q.insert(r.query) {
            return Err(Error::InvalidInput(format!(
                "query item {} has two rankings; rank each query once",
                r.query
            )));
        }
    }
    let per_query: Vec<QueryMetrics> = rankings
        .par_iter()
        .map(|r| {
            let mut seen = HashSet::with_capacity(r.items.len());
            if let Some(dup) = r.items.iter().find(|&&i| !seen.insert(i)) {
                return Err(Error::InvalidInput(format!(
                    "ranking of query item {} lists item {dup} twice",
                    r.query
                )));
            }
            Ok(query_metrics(r, rel, cfg))
        })
        .collect::<Result<_>>()?;
    Ok(Evaluation {
        summary: summarise(&per_query, cfg),
        config: cfg.clone(),
        per_query,
    })
}

/// Averages per-query figures (all computed with the same `cfg`).
pub(crate) fn summarise(per_query: &[QueryMetrics], cfg: &EvalConfig) -> Summary {
    let pr_curve = (0..PR_LEVELS)
        .map(|i| PrPoint {
            recall: i as f64 / (PR_LEVELS - 1) as f64,
            precision: mean(per_query.iter().map(|m| m.pr11[i])),
        })
        .collect();
    let mut classes: HashMap<&str, Vec<&QueryMetrics>> = HashMap::new();
    for m in per_query {
        if let Some(c) = &m.class {
            classes.entry(c.as_str()).or_default().push(m);
        }
    }
    let mut per_class: Vec<ClassMetrics> = classes
        .into_iter()
        .map(|(c, ms)| ClassMetrics {
            class: c.to_string(),
            queries: ms.len(),
            map: mean(ms.iter().map(|m| m.ap)),
            precision: mean(ms.iter().map(|m| m.precision_class_k)),
            k: cfg.class_k,
        })
        .collect();
    per_class.sort_by(|a, b| class_order(&a.class, &b.class));
    Summary {
        queries: per_query.len(),
        queries_without_relevant: per_query.iter().filter(|m| m.num_relevant == 0).count(),
        map: mean(per_query.iter().map(|m| m.ap)),
        precision: mean_at(per_query, |m| &m.precision, &cfg.ks),
        recall: mean_at(per_query, |m| &m.recall, &cfg.ks),
        ndcg: mean_at(per_query, |m| &m.ndcg, &cfg.ks),
        ns_score: mean(per_query.iter().map(|m| m.ns as f64)),
        ns_depth: cfg.ns_depth,
        pr_curve,
        per_class,
    }
}

/// Recall@k of an approximate search against exact search: the mean over queries of
/// |approx top-k ∩ exact top-k| / |exact top-k| (lists are compared as given, query included
/// if present; a collection with fewer than k other items has fewer to find, and a query with
/// none scores 1).
pub fn knn_recall(approx: &[Vec<usize>], exact: &[Vec<usize>], k: usize) -> Result<f64> {
    if k == 0 {
        return Err(Error::InvalidInput("recall@k needs k >= 1".into()));
    }
    if approx.len() != exact.len() {
        return Err(Error::InvalidInput(format!(
            "recall@k: {} but {}; give one of each per query",
            crate::text::counted(
                approx.len(),
                "approximate result list",
                "approximate result lists"
            ),
            crate::text::counted(exact.len(), "exact one", "exact ones")
        )));
    }
    if approx.is_empty() {
        return Err(Error::InvalidInput("recall@k: no queries".into()));
    }
    Ok(mean(approx.iter().zip(exact).map(|(a, e)| {
        let truth: HashSet<usize> = e.iter().take(k).copied().collect();
        let found = a
            .iter()
            .take(k)
            .collect::<HashSet<_>>()
            .into_iter()
            .filter(|i| truth.contains(i))
            .count();
        if truth.is_empty() {
            1.0
        } else {
            found as f64 / truth.len() as f64
        }
    })))
}

/// Item ids sorted by ascending distance; ties keep id order (like numpy's stable argsort),
/// NaN distances go last.
pub fn rank_by_distance(distances: &[f64]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..distances.len()).collect();
    order.sort_by(|&a, &b| {
        let (x, y) = (distances[a], distances[b]);
        match (x.is_nan(), y.is_nan()) {
            (false, false) => x.partial_cmp(&y).unwrap_or(std::cmp::Ordering::Equal),
            (a_nan, b_nan) => a_nan.cmp(&b_nan),
        }
    });
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Relevance given directly as the set of relevant ids of query 0.
    struct Fixed {
        relevant: Vec<usize>,
    }
    impl Relevance for Fixed {
        fn is_relevant(&self, q: usize, i: usize) -> bool {
            q == 0 && self.relevant.contains(&i)
        }
        fn num_relevant(&self, q: usize) -> usize {
            if q == 0 { self.relevant.len() } else { 0 }
        }
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn a_query_that_finds_nothing_scores_plus_zero() {
        let ap = ap_from_hits(&[], 3);
        assert!(ap == 0.0 && ap.is_sign_positive(), "{ap}");
        let ndcg = ndcg_from_hits(&[], 3, 10);
        assert!(ndcg == 0.0 && ndcg.is_sign_positive(), "{ndcg}");
    }

    #[test]
    fn ap_of_1010_with_two_relevant() {
        let rel = Fixed {
            relevant: vec![1, 3],
        };
        let ap = average_precision(0, &[1, 2, 3, 4], &rel);
        assert!(close(ap, (1.0 + 2.0 / 3.0) / 2.0), "{ap}");
        // the query itself anywhere in the list is skipped
        let ap2 = average_precision(0, &[1, 0, 2, 3, 4], &rel);
        assert!(close(ap, ap2));
    }

    #[test]
    fn ap_counts_unretrieved_relevant_items() {
        let rel = Fixed {
            relevant: vec![1, 3, 9],
        };
        // truncated: item 9 never retrieved
        let ap = average_precision(0, &[1, 2, 3], &rel);
        assert!(close(ap, (1.0 + 2.0 / 3.0) / 3.0), "{ap}");
        let none = Fixed { relevant: vec![] };
        assert_eq!(average_precision(0, &[1, 2], &none), 0.0);
    }

    #[test]
    fn precision_recall_ndcg_ns() {
        // query 0; ranking includes the query first; relevance pattern after it: 1 0 1 0 0 1
        let rel = Fixed {
            relevant: vec![1, 3, 6, 8],
        };
        let r = Ranking {
            query: 0,
            items: vec![0, 1, 2, 3, 4, 5, 6],
        };
        let cfg = EvalConfig {
            ks: vec![1, 2, 4, 10],
            ns_depth: 4,
            class_k: 10,
        };
        let m = query_metrics(&r, &rel, &cfg);
        let p: Vec<f64> = m.precision.iter().map(|a| a.value).collect();
        assert_eq!(p, vec![1.0, 0.5, 0.5, 0.3]);
        let rc: Vec<f64> = m.recall.iter().map(|a| a.value).collect();
        assert_eq!(rc, vec![0.25, 0.25, 0.5, 0.75]);
        // NDCG@4: dcg = 1/log2(2) + 1/log2(4) = 1.5; ideal = 1 + 1/log2 3 + 1/2 + 1/log2 5
        let ideal4 = 1.0 + 1.0 / 3f64.log2() + 0.5 + 1.0 / 5f64.log2();
        assert!(close(m.ndcg[2].value, 1.5 / ideal4));
        assert!(close(m.ndcg[0].value, 1.0));
        // N-S: top 4 = [0 (self), 1 (rel), 2, 3 (rel)] = 3
        assert_eq!(m.ns, 3);
        assert_eq!(m.first_hit, Some(1));
        // AP = (1/1 + 2/3 + 3/6) / 4
        assert!(close(m.ap, (1.0 + 2.0 / 3.0 + 0.5) / 4.0));
    }

    #[test]
    fn eleven_point_curve() {
        // two relevant at ranks 1 and 3: recall 0.5 at precision 1, recall 1 at precision 2/3
        let rel = Fixed {
            relevant: vec![1, 3],
        };
        let m = query_metrics(
            &Ranking {
                query: 0,
                items: vec![1, 2, 3],
            },
            &rel,
            &EvalConfig::default(),
        );
        for (i, p) in m.pr11.iter().enumerate() {
            let want = if i <= 5 { 1.0 } else { 2.0 / 3.0 };
            assert!(close(*p, want), "level {i}: {p}");
        }
    }

    #[test]
    fn labels_map_and_per_class() {
        // labels: items 0,1 class 7; items 2,3 class 8
        let rel = LabelRelevance::new(vec![7, 7, 8, 8]);
        let rankings = vec![
            Ranking {
                query: 0,
                items: vec![0, 1, 2, 3],
            }, // AP 1
            Ranking {
                query: 1,
                items: vec![1, 2, 0, 3],
            }, // AP 1/2
            Ranking {
                query: 2,
                items: vec![2, 0, 1, 3],
            }, // AP 1/3
            Ranking {
                query: 3,
                items: vec![3, 2, 0, 1],
            }, // AP 1
        ];
        let e = evaluate(&rankings, &rel, &EvalConfig::default()).unwrap();
        assert!(close(e.summary.map, (1.0 + 0.5 + 1.0 / 3.0 + 1.0) / 4.0));
        assert_eq!(e.summary.precision_at(1), Some(0.5));
        // N-S with 2 per class: every query finds self + its partner in the top 4 -> 2
        assert_eq!(e.summary.ns_score, 2.0);
        assert_eq!(e.summary.per_class.len(), 2);
        assert_eq!(e.summary.per_class[0].class, "7");
        assert!(close(e.summary.per_class[0].map, 0.75));
        assert!(close(e.summary.per_class[1].map, (1.0 / 3.0 + 1.0) / 2.0));
        assert!(close(e.summary.per_class[0].precision, 0.1));
    }

    #[test]
    fn evaluate_rejects_duplicates() {
        let rel = LabelRelevance::new(vec![0, 0]);
        let dup_item = vec![Ranking {
            query: 0,
            items: vec![1, 1],
        }];
        assert!(evaluate(&dup_item, &rel, &EvalConfig::default()).is_err());
        let dup_query = vec![
            Ranking {
                query: 0,
                items: vec![1],
            },
            Ranking {
                query: 0,
                items: vec![1],
            },
        ];
        assert!(evaluate(&dup_query, &rel, &EvalConfig::default()).is_err());
        assert!(evaluate(&[], &rel, &EvalConfig::default()).is_err());
    }

    #[test]
    fn knn_recall_counts_overlap() {
        let approx = vec![vec![0, 1, 5], vec![1, 2, 3]];
        let exact = vec![vec![0, 1, 2], vec![1, 2, 3]];
        assert!(close(
            knn_recall(&approx, &exact, 3).unwrap(),
            (2.0 / 3.0 + 1.0) / 2.0
        ));
        assert!(close(knn_recall(&approx, &exact, 2).unwrap(), 1.0));
        assert!(knn_recall(&approx, &exact[..1], 2).is_err());
        // fewer than k items: every one there is found
        let small = vec![vec![4, 2], vec![]];
        assert!(close(
            knn_recall(&small, &[vec![2, 4], vec![]], 10).unwrap(),
            1.0
        ));
        assert!(close(
            knn_recall(&[vec![4]], &[vec![2, 4]], 10).unwrap(),
            0.5
        ));
    }

    #[test]
    fn rank_by_distance_is_stable() {
        assert_eq!(
            rank_by_distance(&[0.5, f64::NAN, 0.1, 0.5, 0.0]),
            vec![4, 2, 0, 3, 1]
        );
    }
}
