//! ANN at scale, alone: build time, peak memory, query latency and recall@10 against exact
//! search for N synthetic vectors of a given dimension.
//! Usage: ann_scale N DIM [QUERIES] [EF...]
//! Vectors are clustered (like real image descriptors) and generated from their id, so the
//! benchmark never holds them all: they stream into the graph in batches, as `index` streams
//! them from SQLite, and the peak RSS is the graph's. Searches go the way `query` does: graph
//! candidates re-ranked on the full vectors; vectors longer than the PCA dimension are
//! projected first, as in the index. Without EF arguments the index's own beam width is
//! measured; with them, each listed width too.

use std::time::Instant;

use lookalike::ann::{AnnBuilder, AnnIndex, AnnParams, RERANK_DEPTH, rerank, squared_l2};
use lookalike::pca::{MAX_FIT_SAMPLES, Projection};
use rayon::prelude::*;

fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|v| v.parse::<f64>().ok())
            })
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

/// Deterministic vectors: vector `id` is a cluster centre plus uniform noise.
struct Corpus {
    dim: usize,
    centres: Vec<Vec<f32>>,
}

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

impl Corpus {
    fn new(n: usize, dim: usize) -> Corpus {
        let centres = (0..(n / 100).max(10) as u64)
            .map(|c| {
                let mut s = splitmix(c ^ 0xC0FF_EE00_0000_0000);
                (0..dim)
                    .map(|_| {
                        s = splitmix(s);
                        (s >> 40) as f32 / (1u64 << 24) as f32
                    })
                    .collect()
            })
            .collect();
        Corpus { dim, centres }
    }

    fn vector(&self, id: u64) -> Vec<f32> {
        let mut s = splitmix(id);
        let centre = &self.centres[(s % self.centres.len() as u64) as usize];
        (0..self.dim)
            .map(|j| {
                s = splitmix(s);
                centre[j] + 0.15 * ((s >> 40) as f32 / (1u64 << 24) as f32 - 0.5)
            })
            .collect()
    }
}

/// Exact top 10 ids of every query, in one streaming pass over the corpus.
fn exact_top10(corpus: &Corpus, n: usize, queries: &[Vec<f32>]) -> Vec<Vec<i64>> {
    let mut best: Vec<Vec<(f32, i64)>> = vec![Vec::new(); queries.len()];
    let chunk = 65_536;
    for start in (1..=n as u64).step_by(chunk) {
        let end = (start + chunk as u64).min(n as u64 + 1);
        let points: Vec<(i64, Vec<f32>)> = (start..end)
            .into_par_iter()
            .map(|id| (id as i64, corpus.vector(id)))
            .collect();
        best.par_iter_mut().zip(queries).for_each(|(top, q)| {
            for (id, v) in &points {
                let d = squared_l2(q, v);
                if top.len() < 10 || d < top[top.len() - 1].0 {
                    let at = top.partition_point(|e| e.0 <= d);
                    top.insert(at, (d, *id));
                    top.truncate(10);
                }
            }
        });
    }
    best.into_iter()
        .map(|t| t.into_iter().map(|e| e.1).collect())
        .collect()
}

fn build(corpus: &Corpus, n: usize, params: AnnParams) -> AnnIndex {
    let step = n.div_ceil(MAX_FIT_SAMPLES).max(1) as u64;
    let sample: Vec<Vec<f32>> = (1..=n as u64)
        .step_by(step as usize)
        .map(|id| corpus.vector(id))
        .collect();
    let refs: Vec<&[f32]> = sample.iter().map(Vec::as_slice).collect();
    let projection =
        Projection::fit(&refs, params.pca_dims).expect("the corpus's vectors are of one length");
    drop(sample);
    let mut builder = AnnBuilder::new(n, corpus.dim, projection, params);
    let batch = 16_384u64;
    for start in (1..=n as u64).step_by(batch as usize) {
        let end = (start + batch).min(n as u64 + 1);
        let points: Vec<(i64, Vec<f32>)> = (start..end)
            .into_par_iter()
            .map(|id| {
                let v = corpus.vector(id);
                let v = match builder.projection() {
                    Some(p) => p.apply(&v).expect("the corpus's vectors are of one length"),
                    None => v,
                };
                (id as i64, v)
            })
            .collect();
        builder.insert(&points);
    }
    builder.finish()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n: usize = args.get(1).and_then(|v| v.parse().ok()).unwrap_or(100_000);
    let dim: usize = args.get(2).and_then(|v| v.parse().ok()).unwrap_or(256);
    let nq: usize = args.get(3).and_then(|v| v.parse().ok()).unwrap_or(500);
    let extra_ef: Vec<usize> = args.iter().skip(4).filter_map(|v| v.parse().ok()).collect();
    let corpus = Corpus::new(n, dim);
    let queries: Vec<Vec<f32>> = (0..nq as u64)
        .map(|q| corpus.vector(u64::MAX - q))
        .collect();
    let recall_queries = nq.min(200);
    let t = Instant::now();
    let truth = exact_top10(&corpus, n, &queries[..recall_queries]);
    let truth_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    // The graph alone, re-ranked on full vectors: no database-side augmentation.
    let params = AnnParams {
        dba: 0,
        ..AnnParams::default()
    };
    let mut ann = build(&corpus, n, params);
    let build_s = t.elapsed().as_secs_f64();
    println!(
        "ann_scale n={n} dim={dim} (graph dim {}): build {build_s:.1} s ({:.0} inserts/s), peak RSS {:.0} MB (exact top-10 of {recall_queries} queries: {truth_s:.1} s)",
        ann.graph_dim(),
        n as f64 / build_s,
        peak_rss_mb()
    );
    let default_ef = ann.ef_search();
    let mut efs = vec![default_ef];
    efs.extend(extra_ef.into_iter().filter(|e| *e != default_ef));
    for ef in efs {
        ann.set_ef_search(ef);
        let mut lat = Vec::with_capacity(nq);
        let mut hits = 0usize;
        for (i, q) in queries.iter().enumerate() {
            let t = Instant::now();
            let candidates = ann
                .search(q, RERANK_DEPTH)
                .expect("the query is of the points' length");
            let full: Vec<(i64, Vec<f32>)> = candidates
                .iter()
                .map(|c| (c.0, corpus.vector(c.0 as u64)))
                .collect();
            let got = rerank(q, &candidates, 10, |id| {
                full.iter().find(|f| f.0 == id).map(|f| f.1.as_slice())
            });
            lat.push(t.elapsed().as_secs_f64() * 1e3);
            if i < recall_queries {
                hits += got.iter().filter(|g| truth[i].contains(&g.0)).count();
            }
        }
        lat.sort_by(f64::total_cmp);
        println!(
            "  ef {ef}{}: query p50 {:.3} ms p99 {:.3} ms, recall@10 {:.4} ({} queries)",
            if ef == default_ef { " (default)" } else { "" },
            lat[lat.len() / 2],
            lat[(lat.len() * 99 / 100).min(lat.len() - 1)],
            hits as f64 / (10 * recall_queries) as f64,
            recall_queries,
        );
    }
}
