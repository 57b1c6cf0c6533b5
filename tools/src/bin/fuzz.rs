//! A mutational fuzzer for the paths that take untrusted input: decode + feature extraction
//! (mutated images from sample_data), the query path on whatever they yield (fusion, PCA
//! projection, graph search, exact re-ranking), the projection file reader, and the parsers of
//! user specifications (PSF specs, fusion weights, distortions). Runs for a set time; any panic that escapes, or a crash, is a bug.
//! Failing inputs are written to `fuzz-crashes/` to become regression tests.
//! Usage: fuzz [SECONDS=60] [SEED=1]

use std::path::Path;
use std::time::{Duration, Instant};

use lookalike::ann::{AnnIndex, AnnParams, exact_search};
use lookalike::decode::DecodeConfig;
use lookalike::features::{Fusion, Registry};
use lookalike::pca::Projection;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn mutate(rng: &mut Rng, seed: &[u8]) -> Vec<u8> {
    let mut b = seed.to_vec();
    for _ in 0..1 + rng.below(8) {
        if b.is_empty() {
            break;
        }
        match rng.below(6) {
            0 => {
                let i = rng.below(b.len());
                b[i] ^= 1 << rng.below(8);
            }
            1 => {
                let i = rng.below(b.len());
                b[i] = rng.next() as u8;
            }
            2 => b.truncate(rng.below(b.len())),
            3 => {
                let i = rng.below(b.len());
                let n = rng.below(16);
                let bytes: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
                b.splice(i..i, bytes);
            }
            4 => {
                // Interesting values in headers (sizes, counts).
                let i = rng.below(b.len().min(64));
                b[i] = [0x00, 0xFF, 0x7F, 0x80, 0x01][rng.below(5)];
            }
            _ => {
                let i = rng.below(b.len());
                let j = rng.below(b.len());
                b.swap(i, j);
            }
        }
    }
    b
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let secs: u64 = args.get(1).and_then(|v| v.parse().ok()).unwrap_or(60);
    let mut rng = Rng(args.get(2).and_then(|v| v.parse().ok()).unwrap_or(1) | 1);
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../sample_data");
    let mut seeds: Vec<Vec<u8>> = Vec::new();
    for entry in walkdir::WalkDir::new(&root).into_iter().flatten() {
        if entry.file_type().is_file() && entry.path().extension().is_some_and(|e| e == "jpg") {
            seeds.push(std::fs::read(entry.path()).unwrap());
        }
    }
    // Small seeds of other formats, made here.
    let img = image::DynamicImage::ImageRgb8(image::RgbImage::from_fn(24, 16, |x, y| {
        image::Rgb([x as u8 * 9, y as u8 * 13, 77])
    }));
    for f in [
        image::ImageFormat::Png,
        image::ImageFormat::Gif,
        image::ImageFormat::Bmp,
        image::ImageFormat::Tiff,
        image::ImageFormat::WebP,
    ] {
        let mut buf = Vec::new();
        img.write_to(&mut std::io::Cursor::new(&mut buf), f)
            .unwrap();
        seeds.push(buf);
    }
    let registry = Registry::default();
    let cfg = DecodeConfig::default();
    let specs = [
        "gaussian:2",
        "disk:3",
        "motion:15,30",
        "color=1,conv=0.5",
        "blur:2",
        "jpeg:30",
        "crop:0.2",
    ];
    // The query path: a small graph (with a PCA projection in front) over the seeds' vectors.
    let fusion = Fusion::default();
    let fused = |rows: Vec<lookalike::store::FeatureRow>| {
        let (names, parts): (Vec<String>, Vec<Vec<f32>>) =
            rows.into_iter().map(|r| (r.family, r.vector)).unzip();
        fusion.fuse_named(&names, &parts)
    };
    let points: Vec<(i64, Vec<f32>)> = seeds
        .iter()
        .filter_map(|b| lookalike::index::extract_bytes(b, Path::new("seed"), &cfg, &registry).ok())
        .enumerate()
        .map(|(i, (_, rows))| (i as i64 + 1, fused(rows)))
        .collect();
    let params = AnnParams {
        pca_dims: 16,
        ..AnnParams::default()
    };
    let ann = AnnIndex::build(&points, params).expect("the points are of one length, each id once");
    let projection_seed = ann.projection().expect("projected graph").to_bytes();
    let lookup = |id: i64| Some(points[(id - 1) as usize].1.as_slice());
    let deadline = Instant::now() + Duration::from_secs(secs);
    let (mut runs, mut decoded, mut rejected) = (0u64, 0u64, 0u64);
    std::panic::set_hook(Box::new(|_| {}));
    while Instant::now() < deadline {
        let which = rng.below(seeds.len());
        let seed = &seeds[which];
        let input = mutate(&mut rng, seed);
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            match lookalike::index::extract_bytes(&input, Path::new("fuzz.bin"), &cfg, &registry) {
                Ok((_, rows)) => {
                    // What `query` does with an outside example: fuse, graph search, re-rank.
                    let q = fused(rows);
                    let hits = ann
                        .search_reranked(&q, 10, lookup)
                        .expect("the query is of the points' length");
                    let exact = exact_search(&points, &q, 10);
                    assert!(hits.len() == exact.len() && hits.iter().all(|h| h.1.is_finite()));
                    Ok(true)
                }
                // Panics caught inside the library are reported as these errors: still bugs.
                Err(e)
                    if e.to_string().contains("crashed")
                        || e.to_string().contains("feature extraction failed") =>
                {
                    Err(e.to_string())
                }
                Err(_) => Ok(false),
            }
        }));
        match outcome {
            Ok(Ok(true)) => decoded += 1,
            Ok(Ok(false)) => rejected += 1,
            Ok(Err(msg)) => {
                std::fs::create_dir_all("fuzz-crashes").unwrap();
                let name = format!("fuzz-crashes/caught-{runs}.bin");
                std::fs::write(&name, &input).unwrap();
                eprintln!("panic caught inside the library ({msg}); input saved to {name}");
                rejected += 1;
            }
            Err(_) => {
                std::fs::create_dir_all("fuzz-crashes").unwrap();
                let name = format!("fuzz-crashes/decode-{runs}.bin");
                std::fs::write(&name, &input).unwrap();
                eprintln!("PANIC escaped decode/extract; input saved to {name}");
            }
        }
        // The projection file reader on mutated bytes: an error, never a panic.
        let bytes = mutate(&mut rng, &projection_seed);
        if std::panic::catch_unwind(|| Projection::from_bytes(&bytes)).is_err() {
            std::fs::create_dir_all("fuzz-crashes").unwrap();
            let name = format!("fuzz-crashes/projection-{runs}.bin");
            std::fs::write(&name, &bytes).unwrap();
            eprintln!("PANIC in Projection::from_bytes; input saved to {name}");
        }
        // Specification parsers on mutated text.
        let which = rng.below(specs.len());
        let spec = mutate(&mut rng, specs[which].as_bytes());
        let text = String::from_utf8_lossy(&spec).into_owned();
        let parsed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _ = lookalike::restore::PsfSpec::parse(&text).and_then(|p| p.to_psf());
            let _ = Fusion::parse(&text, &registry.families());
            let _ = text.parse::<lookalike::eval::distort::Distortion>();
        }));
        if parsed.is_err() {
            std::fs::create_dir_all("fuzz-crashes").unwrap();
            let name = format!("fuzz-crashes/spec-{runs}.txt");
            std::fs::write(&name, text.as_bytes()).unwrap();
            eprintln!("PANIC in a spec parser; input saved to {name}");
        }
        runs += 1;
    }
    println!(
        "fuzz: {runs} inputs in {secs} s: {decoded} decoded, {rejected} rejected with an error"
    );
}
