//! Query latency: HNSW search against exact search over the same fused vectors.

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use lookalike::ann::{AnnIndex, AnnParams, exact_search};
use lookalike::rng::SplitMix64;
use std::hint::black_box;

/// Deterministic pseudo-random unit-ish vectors (SplitMix64).
fn points(n: usize, dim: usize, seed: u64) -> Vec<(i64, Vec<f32>)> {
    let mut rng = SplitMix64::new(seed);
    let mut next = || (rng.next_u64() >> 40) as f32 / (1u64 << 24) as f32;
    (0..n)
        .map(|i| (i as i64 + 1, (0..dim).map(|_| next()).collect()))
        .collect()
}

fn bench_query(c: &mut Criterion) {
    let dim = 256;
    let mut g = c.benchmark_group("query");
    for n in [1_000usize, 10_000] {
        let pts = points(n, dim, 42);
        let ann = AnnIndex::build(&pts, AnnParams::default())
            .expect("the points are of one length, each id once");
        let q = points(1, dim, 7).remove(0).1;
        g.bench_with_input(BenchmarkId::new("hnsw k10", n), &n, |b, _| {
            b.iter(|| {
                black_box(
                    ann.search(&q, 10)
                        .expect("the query is of the points' length"),
                )
            })
        });
        g.bench_with_input(BenchmarkId::new("exact k10", n), &n, |b, _| {
            b.iter(|| black_box(exact_search(&pts, &q, 10)))
        });
    }
    g.finish();
}

criterion_group!(benches, bench_query);
criterion_main!(benches);
