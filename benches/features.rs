//! Feature extraction cost per family, and decode + extract of a sample photo.

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use lookalike::decode::{DecodeConfig, decode};
use lookalike::features::deconv::DeconvFeatures;
use lookalike::features::{FeatureInput, Registry};
use lookalike::restore::estimate_blur;
use std::hint::black_box;
use std::path::Path;

fn sample_bytes() -> Vec<u8> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("sample_data/coffee/original.jpg");
    std::fs::read(p).expect("sample_data/coffee/original.jpg")
}

fn bench_features(c: &mut Criterion) {
    let bytes = sample_bytes();
    let cfg = DecodeConfig::default();
    let decoded = decode(&bytes, Path::new("coffee.jpg"), &cfg).unwrap();
    let input = FeatureInput::new(decoded.image.clone());
    let registry = Registry::default();
    let mut g = c.benchmark_group("features");
    // A fresh input per run: the input keeps the filter bank's response for the families
    // that share it, and conv would otherwise measure a cache read.
    for e in registry.extractors() {
        g.bench_function(e.family(), |b| {
            b.iter_batched(
                || FeatureInput::new(decoded.image.clone()),
                |fresh| black_box(e.extract(&fresh)),
                BatchSize::SmallInput,
            )
        });
    }
    // The part deconv version 3 added, given the blur estimate the family makes anyway.
    let deconv = DeconvFeatures::default();
    let est = estimate_blur(&input.luma);
    g.bench_function("deconv canonical texture", |b| {
        b.iter(|| black_box(deconv.canonical_texture(&input.luma, &est)))
    });
    g.bench_function("decode 320px jpeg", |b| {
        b.iter(|| black_box(decode(&bytes, Path::new("coffee.jpg"), &cfg).unwrap()))
    });
    g.bench_function("decode + all families", |b| {
        b.iter(|| {
            let d = decode(&bytes, Path::new("coffee.jpg"), &cfg).unwrap();
            black_box(registry.extract_all(&FeatureInput::new(d.image)))
        })
    });
    g.finish();
}

criterion_group!(benches, bench_features);
criterion_main!(benches);
