//! CPU time per image of each step of indexing, on one thread: decoding to the working image
//! (with its luminance), the blind blur estimate alone, and each feature family.
//! Usage: family_costs FOLDER [LIMIT] [WORKING_SIZE]   (every image format the indexer takes, in
//! path order; the working size defaults to the indexer's)

use std::time::Instant;

use lookalike::decode::{DecodeConfig, decode_file};
use lookalike::features::{FeatureInput, Registry};
use lookalike::restore::estimate_blur;

fn main() {
    let paths =
        lookalike_tools::image_files_from_args("family_costs FOLDER [LIMIT] [WORKING_SIZE]");
    let mut cfg = DecodeConfig::default();
    if let Some(side) = std::env::args().nth(3).and_then(|v| v.parse().ok()) {
        cfg.working_size = side;
    }
    let registry = Registry::default();
    let (mut decode, mut estimate) = (0.0f64, 0.0f64);
    let mut families = vec![0.0f64; registry.extractors().len()];
    for path in &paths {
        let t = Instant::now();
        let decoded = decode_file(path, &cfg).unwrap_or_else(|e| panic!("{e}"));
        let input = FeatureInput::new(decoded.image);
        decode += t.elapsed().as_secs_f64();
        let t = Instant::now();
        std::hint::black_box(estimate_blur(&input.luma));
        estimate += t.elapsed().as_secs_f64();
        for (extractor, total) in registry.extractors().iter().zip(&mut families) {
            let t = Instant::now();
            std::hint::black_box(extractor.extract(&input));
            *total += t.elapsed().as_secs_f64();
        }
    }
    let per = |s: f64| s / paths.len().max(1) as f64 * 1e3;
    println!("{} images, ms per image:", paths.len());
    println!("  decode + luma  {:6.2}", per(decode));
    for (extractor, total) in registry.extractors().iter().zip(&families) {
        println!("  {:<14} {:6.2}", extractor.family(), per(*total));
    }
    println!("  all families   {:6.2}", per(families.iter().sum()));
    println!("  (blur estimate {:6.2}, part of deconv)", per(estimate));
}
