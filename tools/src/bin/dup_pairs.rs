//! Every pair of indexed images whose duplicate signatures compare within a layout limit, with
//! their layout and detail distances and the agreement of their thumbnails once aligned
//! (-2 when either has no thumbnail): the raw material for choosing a copy test.
//! Usage: dup_pairs INDEX_DIR [MAX_LAYOUT]
//! Prints `path_a TAB path_b TAB layout TAB detail TAB aligned`.

use std::collections::HashMap;
use std::path::PathBuf;

use lookalike::duplicates::verify::{View, agreement};
use lookalike::features::dup::compare;
use lookalike::store::Store;
use rayon::prelude::*;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let Some(dir) = args.get(1) else {
        eprintln!("usage: dup_pairs INDEX_DIR [MAX_LAYOUT]");
        std::process::exit(2);
    };
    let limit: f32 = args.get(2).and_then(|v| v.parse().ok()).unwrap_or(0.6);
    let store = Store::open_read_only(&PathBuf::from(dir).join("lookalike.db"))
        .unwrap_or_else(|e| panic!("{e}"));
    let records: HashMap<i64, _> = store
        .image_records()
        .unwrap_or_else(|e| panic!("{e}"))
        .into_iter()
        .map(|r| (r.id(), r))
        .collect();
    let signed: Vec<(i64, Vec<f32>)> = store
        .vectors(&["dup"])
        .unwrap_or_else(|e| panic!("{e}"))
        .into_iter()
        .filter_map(|(id, mut parts)| parts.pop().map(|v| (id, v)))
        .collect();
    let jpegs: Vec<Option<Vec<u8>>> = signed
        .iter()
        .map(|(id, _)| store.thumbnail(records[id].hash()).ok().flatten())
        .collect();
    let views: Vec<Option<View>> = jpegs
        .par_iter()
        .map(|j| View::of(&image::load_from_memory(j.as_deref()?).ok()?.to_rgb8()))
        .collect();
    let rows: Vec<String> = (0..signed.len())
        .into_par_iter()
        .flat_map_iter(|i| {
            let (signed, records, views) = (&signed, &records, &views);
            (i + 1..signed.len()).filter_map(move |j| {
                let m = compare(&signed[i].1, &signed[j].1);
                (m.layout <= limit).then(|| {
                    let aligned = match (&views[i], &views[j]) {
                        (Some(a), Some(b)) => agreement(a, b, &m),
                        _ => -2.0,
                    };
                    format!(
                        "{}\t{}\t{:.4}\t{:.4}\t{:.4}",
                        records[&signed[i].0].path().display(),
                        records[&signed[j].0].path().display(),
                        m.layout,
                        m.detail,
                        aligned
                    )
                })
            })
        })
        .collect();
    for r in rows {
        println!("{r}");
    }
}
