//! The blind blur estimate of each image's working luminance, one line per file: path, kind,
//! sigma, disk radius, motion length and angle. Two builds' outputs compared line by line show
//! what a change to the estimator moved.
//! Usage: blur_estimates FOLDER [LIMIT]   (every image format the indexer takes, in path order)

use lookalike::decode::{DecodeConfig, decode_file};
use lookalike::features::FeatureInput;
use lookalike::restore::estimate_blur;

fn main() {
    for path in lookalike_tools::image_files_from_args("blur_estimates FOLDER [LIMIT]") {
        let decoded = match decode_file(&path, &DecodeConfig::default()) {
            Ok(d) => d,
            Err(e) => {
                eprintln!("{e}");
                continue;
            }
        };
        let e = estimate_blur(&FeatureInput::new(decoded.image).luma);
        println!(
            "{} {:?} {} {} {} {}",
            path.display(),
            e.kind,
            e.sigma,
            e.radius,
            e.length,
            e.angle_deg
        );
    }
}
