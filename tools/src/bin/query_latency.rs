//! Query latency inside one process: examples already indexed (stored vector, no decoding)
//! and the same files as outside examples (decoded and extracted), HNSW then exact; HNSW
//! recall@10 against exact search; index load time.
//! Usage: query_latency INDEX_DIR [QUERIES] [hnsw] (`hnsw`: the graph only, no recall figure)

use std::time::Instant;

use lookalike::collection::Collection;
use lookalike::decode::DecodeConfig;
use lookalike::features::Fusion;
use lookalike::query::Searcher;
use lookalike::rank::{RankConfig, SearchMode};

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((v.len() - 1) as f64 * p).round() as usize]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let dir = args
        .get(1)
        .expect("usage: query_latency INDEX_DIR [QUERIES]");
    let nq: usize = args.get(2).and_then(|v| v.parse().ok()).unwrap_or(200);
    let t = Instant::now();
    let collection = Collection::at(dir);
    let profile = collection
        .recorded_profile()
        .expect("read the index's profile");
    let searcher = Searcher::open(&collection, &Fusion::for_profile(profile)).expect("open index");
    let load = t.elapsed().as_secs_f64();
    let mut ids: Vec<i64> = searcher
        .store()
        .catalog()
        .unwrap()
        .iter()
        .map(|e| e.id)
        .collect();
    ids.sort_unstable();
    let step = (ids.len() / nq).max(1);
    let sample: Vec<i64> = ids.iter().step_by(step).take(nq).copied().collect();
    let paths = searcher.store().paths(&sample).unwrap();
    let mut top10: Vec<Vec<Vec<i64>>> = Vec::new();
    let modes: &[SearchMode] = if args.get(3).is_some_and(|m| m == "hnsw") {
        &[SearchMode::Hnsw]
    } else {
        &[SearchMode::Hnsw, SearchMode::Exact]
    };
    for &mode in modes {
        let mut stored = Vec::new();
        let mut decoded = Vec::new();
        let mut tops = Vec::new();
        if mode == SearchMode::Exact {
            let t = Instant::now();
            let n = searcher
                .space()
                .exact_points(searcher.store())
                .unwrap()
                .len();
            println!(
                "exact search loads all {n} vectors first: {:.2} s",
                t.elapsed().as_secs_f64()
            );
        }
        for id in &sample {
            // As `query` ranks an indexed example: its stored vector and duplicate signature.
            let (v, signature, own) = searcher.example_of_id(*id).unwrap().unwrap();
            let t = Instant::now();
            let hits = searcher
                .rank(&v, &signature, own, 10, &ranking(mode))
                .unwrap();
            stored.push(t.elapsed().as_secs_f64() * 1e3);
            tops.push(hits.iter().map(|h| h.id).collect::<Vec<_>>());
            let bytes = std::fs::read(&paths[id]).unwrap();
            let t = Instant::now();
            let (q, signature, _) = searcher
                .extract_example(&bytes, &paths[id], &DecodeConfig::default())
                .unwrap();
            let _ = searcher
                .rank(&q, &signature, None, 10, &ranking(mode))
                .unwrap();
            decoded.push(t.elapsed().as_secs_f64() * 1e3);
        }
        top10.push(tops);
        println!(
            "{mode:?}: {} images, {} queries: stored vector p50 {:.3} ms p99 {:.3} ms; decode+extract+search p50 {:.1} ms p99 {:.1} ms (index load {:.2} s)",
            ids.len(),
            sample.len(),
            pct(&mut stored, 0.5),
            pct(&mut stored, 0.99),
            pct(&mut decoded, 0.5),
            pct(&mut decoded, 0.99),
            load
        );
    }
    let [approx, exact] = &top10[..] else {
        return;
    };
    let found: usize = approx
        .iter()
        .zip(exact)
        .map(|(a, e)| a.iter().filter(|id| e.contains(id)).count())
        .sum();
    let wanted: usize = exact.iter().map(Vec::len).sum();
    println!(
        "HNSW recall@10 against exact search: {:.4} ({} queries)",
        found as f64 / wanted.max(1) as f64,
        exact.len()
    );
}

/// The ranking `query` uses, in one search mode.
fn ranking(mode: SearchMode) -> RankConfig {
    RankConfig {
        mode,
        ..RankConfig::default()
    }
}
