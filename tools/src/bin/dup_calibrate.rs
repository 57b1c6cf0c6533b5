//! How far edited copies and unrelated photos lie in the duplicate signature: for every image
//! of a folder (up to LIMIT), each edit kind's distance to its original, and each image's
//! nearest other image. Prints per-kind percentiles and, per threshold, the copies found and
//! the unrelated pairs that fall under it.
//! Usage: dup_calibrate FOLDER [LIMIT]

use lookalike::decode::{DecodeConfig, decode_file, resize_to_fit};
use lookalike::eval::distort::{Distortion, apply_chain, parse_chain};
use lookalike::features::dup::{duplicate_distance, signature};
use lookalike::features::luma_plane;
use rayon::prelude::*;

const EDITS: &[&str] = &[
    "brightness:0.2",
    "brightness:-0.2",
    "contrast:0.6",
    "contrast:1.4",
    "gamma:0.6",
    "sat:0.5",
    "grey",
    "pad:0.08",
    "crop:0.15",
    "corner:0.12",
    "flip",
    "turn:1",
    "turn:2",
    "rotate:5:crop",
    "scale:0.5",
    "jpeg:40",
    "sharpen:1",
    "blur:1.5",
    "mark:0.35",
    "noise:0.05",
];

fn main() {
    let paths = lookalike_tools::image_files_from_args("dup_calibrate FOLDER [LIMIT]");
    let cfg = DecodeConfig {
        working_size: 512,
        ..Default::default()
    };
    let chains: Vec<Vec<Distortion>> = EDITS.iter().map(|e| parse_chain(e).unwrap()).collect();
    let rows: Vec<(Vec<f32>, Vec<f32>)> = paths
        .par_iter()
        .enumerate()
        .map(|(i, p)| {
            let img = decode_file(p, &cfg).unwrap_or_else(|e| panic!("{e}")).image;
            let sig = |im: &image::RgbImage| signature(&luma_plane(&resize_to_fit(im, 256)));
            let base = sig(&img);
            let d = chains
                .iter()
                .map(|c| duplicate_distance(&base, &sig(&apply_chain(c, &img, i as u64).unwrap())))
                .collect();
            (base, d)
        })
        .collect();
    let nearest: Vec<f32> = (0..rows.len())
        .into_par_iter()
        .map(|i| {
            (0..rows.len())
                .filter(|&j| j != i)
                .map(|j| duplicate_distance(&rows[i].0, &rows[j].0))
                .fold(f32::MAX, f32::min)
        })
        .collect();
    let pct = |mut v: Vec<f32>, p: f64| {
        v.sort_by(f32::total_cmp);
        v[((v.len() - 1) as f64 * p).round() as usize]
    };
    println!("{} images", rows.len());
    println!(
        "{:<16} {:>6} {:>6} {:>6} {:>6}",
        "edit", "p50", "p90", "p95", "max"
    );
    for (k, e) in EDITS.iter().enumerate() {
        let v: Vec<f32> = rows.iter().map(|r| r.1[k]).collect();
        println!(
            "{:<16} {:6.3} {:6.3} {:6.3} {:6.3}",
            e,
            pct(v.clone(), 0.5),
            pct(v.clone(), 0.9),
            pct(v.clone(), 0.95),
            pct(v, 1.0)
        );
    }
    println!(
        "{:<16} {:6.3} {:6.3} {:6.3} (p1 {:.3}, p5 {:.3})",
        "nearest other",
        pct(nearest.clone(), 0.5),
        pct(nearest.clone(), 0.1),
        pct(nearest.clone(), 0.05),
        pct(nearest.clone(), 0.01),
        pct(nearest.clone(), 0.05)
    );
    for t in [0.2f32, 0.3, 0.4, 0.5, 0.6, 0.7] {
        let found: Vec<String> = (0..EDITS.len())
            .map(|k| {
                let n = rows.iter().filter(|r| r.1[k] <= t).count();
                format!("{:.2}", n as f64 / rows.len() as f64)
            })
            .collect();
        let false_pairs = nearest.iter().filter(|&&d| d <= t).count();
        println!(
            "t={t:.2} images with an unrelated match {false_pairs}; recall {}",
            found.join(" ")
        );
    }
}
