//! How edited copies and unrelated photos compare in the duplicate signature: for every image
//! of a folder (up to LIMIT), each edit kind's layout and detail distances to its original,
//! and each image's nearest other image. Prints per-kind percentiles and, for a grid of
//! tests, the share of copies that pass and the images with an unrelated image that passes.
//! Usage: dup_calibrate FOLDER [LIMIT]

use lookalike::decode::{DecodeConfig, decode_file, resize_to_fit};
use lookalike::eval::distort::{Distortion, apply_chain, parse_chain};
use lookalike::eval::duplicates::EDIT_KINDS;
use lookalike::features::dup::{CopyTest, Match, compare, signature};
use lookalike::features::luma_plane;
use rayon::prelude::*;

fn main() {
    let paths = lookalike_tools::image_files_from_args("dup_calibrate FOLDER [LIMIT]");
    let cfg = DecodeConfig {
        working_size: 512,
        ..Default::default()
    };
    let chains: Vec<Vec<Distortion>> = EDIT_KINDS.iter().map(|e| parse_chain(e).unwrap()).collect();
    let sig = |im: &image::RgbImage| {
        signature(&luma_plane(
            &resize_to_fit(im, 256).expect("256 is a working size"),
        ))
    };
    let rows: Vec<(Vec<f32>, Vec<Match>)> = paths
        .par_iter()
        .enumerate()
        .map(|(i, p)| {
            let img = decode_file(p, &cfg).unwrap_or_else(|e| panic!("{e}")).image;
            let base = sig(&img);
            let m = chains
                .iter()
                .map(|c| compare(&base, &sig(&apply_chain(c, &img, i as u64).unwrap())))
                .collect();
            (base, m)
        })
        .collect();
    let others: Vec<Vec<Match>> = (0..rows.len())
        .into_par_iter()
        .map(|i| {
            (0..rows.len())
                .filter(|&j| j != i)
                .map(|j| compare(&rows[i].0, &rows[j].0))
                .filter(|m| m.layout <= 0.6)
                .collect()
        })
        .collect();
    println!("{} images", rows.len());
    for layout in [0.25f32, 0.3, 0.35, 0.4, 0.45] {
        for detail in [0.75f32, 0.85, 0.95, 1.05] {
            let test = CopyTest {
                layout,
                detail,
                aligned: None,
            };
            let recall: Vec<String> = (0..EDIT_KINDS.len())
                .map(|k| {
                    let n = rows.iter().filter(|r| test.accepts(&r.1[k])).count();
                    format!("{:.2}", n as f64 / rows.len() as f64)
                })
                .collect();
            let confused = others
                .iter()
                .filter(|o| o.iter().any(|m| test.accepts(m)))
                .count();
            println!(
                "layout {layout:.2} detail {detail:.2}: confused {confused:4}; recall {}",
                recall.join(" ")
            );
        }
    }
    println!("kinds: {}", EDIT_KINDS.join(" "));
}
