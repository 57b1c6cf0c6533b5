//! The blind blur estimate of each image's working luminance, one line per file: path, kind,
//! sigma, disk radius, motion length and angle. Two builds' outputs compared line by line show
//! what a change to the estimator moved.
//! Usage: blur_estimates FOLDER [LIMIT]   (every image format the indexer takes, in path order)

use lookalike::crawl::{CrawlConfig, crawl};
use lookalike::decode::{DecodeConfig, decode_file};
use lookalike::features::FeatureInput;
use lookalike::restore::estimate_blur;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let dir = args.get(1).expect("usage: blur_estimates FOLDER [LIMIT]");
    let limit: usize = args
        .get(2)
        .and_then(|v| v.parse().ok())
        .unwrap_or(usize::MAX);
    let config = CrawlConfig {
        roots: vec![dir.into()],
        ..CrawlConfig::default()
    };
    let files = crawl(&config).unwrap_or_else(|e| panic!("{e}")).files;
    for file in files.iter().take(limit) {
        let decoded = match decode_file(&file.abs_path, &DecodeConfig::default()) {
            Ok(d) => d,
            Err(e) => {
                eprintln!("{e}");
                continue;
            }
        };
        let e = estimate_blur(&FeatureInput::new(decoded.image).luma);
        println!(
            "{} {:?} {} {} {} {}",
            file.abs_path.display(),
            e.kind,
            e.sigma,
            e.radius,
            e.length,
            e.angle_deg
        );
    }
}
