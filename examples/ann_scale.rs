//! ANN at scale, alone: build time, peak memory, query latency and recall@10 against exact
//! search for N synthetic vectors of a given dimension.
//! Usage: ann_scale N DIM [QUERIES]
//! Vectors are clustered (like real image descriptors), deterministic. Searches go the way
//! `query` does: graph candidates re-ranked exactly (`search_reranked`); vectors longer than
//! the PCA dimension are projected first, as in the index.

use std::time::Instant;

use lookalike::ann::{AnnIndex, AnnParams, exact_search};

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

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n: usize = args.get(1).and_then(|v| v.parse().ok()).unwrap_or(100_000);
    let dim: usize = args.get(2).and_then(|v| v.parse().ok()).unwrap_or(256);
    let nq: usize = args.get(3).and_then(|v| v.parse().ok()).unwrap_or(500);
    let mut s = 0x1234_5678_9ABC_DEF1u64;
    let mut rnd = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        (s >> 40) as f32 / (1u64 << 24) as f32
    };
    let centres: Vec<Vec<f32>> = (0..(n / 100).max(10))
        .map(|_| (0..dim).map(|_| rnd()).collect())
        .collect();
    let mut make = |count: usize, id0: i64| -> Vec<(i64, Vec<f32>)> {
        (0..count)
            .map(|i| {
                let c = &centres[(rnd() * centres.len() as f32) as usize % centres.len()];
                (
                    id0 + i as i64,
                    c.iter().map(|v| v + 0.15 * (rnd() - 0.5)).collect(),
                )
            })
            .collect()
    };
    let points = make(n, 1);
    let queries = make(nq, 0);
    let t = Instant::now();
    let ann = AnnIndex::build(&points, AnnParams::default());
    let build = t.elapsed().as_secs_f64();
    let mut lat = Vec::with_capacity(nq);
    let mut hits = 0usize;
    let recall_queries = nq.min(200);
    for (i, (_, q)) in queries.iter().enumerate() {
        let t = Instant::now();
        let got = ann.search_reranked(q, 10, |id| Some(points[(id - 1) as usize].1.as_slice()));
        lat.push(t.elapsed().as_secs_f64() * 1e3);
        if i < recall_queries {
            let exact = exact_search(&points, q, 10);
            hits += got
                .iter()
                .filter(|g| exact.iter().any(|e| e.0 == g.0))
                .count();
        }
    }
    lat.sort_by(f64::total_cmp);
    println!(
        "ann_scale n={n} dim={dim} (graph dim {}): build {build:.1} s ({:.0} inserts/s), query p50 {:.3} ms p99 {:.3} ms, recall@10 {:.4} ({} queries), peak RSS {:.0} MB",
        ann.graph_dim(),
        n as f64 / build,
        lat[lat.len() / 2],
        lat[(lat.len() * 99 / 100).min(lat.len() - 1)],
        hits as f64 / (10 * recall_queries) as f64,
        recall_queries,
        peak_rss_mb()
    );
}
