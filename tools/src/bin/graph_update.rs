//! In-place graph updates against full rebuilds, on a labelled set's stored vectors. A graph
//! built over all the images is compared with one built over a seeded share of them and then
//! updated in place with the rest: mAP (exact ranking in the graph's augmented space, as
//! `query --exact` ranks), P@10 and recall@10 through HNSW against that exact ranking, and the
//! time each took.
//! Usage: graph_update INDEX_DIR DATASET_DIR [ADDED_SHARE=0.1] [SEED=1]
//! INDEX_DIR must hold an index of DATASET_DIR/images (DATASET_DIR/groundtruth.tsv labels it).

use std::path::PathBuf;
use std::time::Instant;

use lookalike::ann::{AnnIndex, AnnParams, exact_search};
use lookalike::collection::Collection;
use lookalike::eval::groundtruth::GroundTruth;
use lookalike::eval::metrics::{Relevance, average_precision};
use lookalike::eval::run::{Target, load_item_vectors};
use lookalike::features::{Fusion, Registry};

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// mAP of exact rankings in the graph's space, P@10 and recall@10 of its HNSW searches.
fn score(ann: &AnnIndex, db: &[(i64, Vec<f32>)], gt: &GroundTruth) -> (f64, f64, f64) {
    let space = ann.graph_points();
    let (mut ap, mut p10, mut r10) = (0.0, 0.0, 0.0);
    for (id, v) in db {
        let q = ann
            .to_graph_space(v)
            .expect("the graph is built from these vectors");
        let exact: Vec<usize> = exact_search(&space, &q, space.len())
            .iter()
            .map(|h| h.0 as usize)
            .collect();
        ap += average_precision(*id as usize, &exact, gt);
        let approx: Vec<usize> = ann
            .search_graph_space(&q, 11)
            .expect("the query is of the points' length")
            .iter()
            .map(|h| h.0 as usize)
            .filter(|&i| i != *id as usize)
            .take(10)
            .collect();
        let head: Vec<usize> = exact
            .iter()
            .copied()
            .filter(|&i| i != *id as usize)
            .take(10)
            .collect();
        p10 += approx
            .iter()
            .filter(|&&i| gt.is_relevant(*id as usize, i))
            .count() as f64
            / 10.0;
        r10 += approx.iter().filter(|i| head.contains(i)).count() as f64 / 10.0;
    }
    let n = db.len() as f64;
    (ap / n, p10 / n, r10 / n)
}

fn main() -> lookalike::error::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        eprintln!("usage: graph_update INDEX_DIR DATASET_DIR [ADDED_SHARE=0.1] [SEED=1]");
        std::process::exit(2);
    }
    let dataset = PathBuf::from(&args[2]);
    let share: f64 = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(0.1);
    let seed: u64 = args.get(4).and_then(|s| s.parse().ok()).unwrap_or(1);
    let store = Collection::at(&args[1]).open_store_read_only()?;
    let mut gt = GroundTruth::from_tsv(&dataset.join("groundtruth.tsv"), &dataset.join("images"))?;
    let registry = Registry::default();
    let items = load_item_vectors(&store, &mut gt, &registry)?;
    let target = Target::Fused(Fusion::default());
    let mut db: Vec<(i64, Vec<f32>)> = items
        .by_item
        .iter()
        .map(|(&i, parts)| (i as i64, target.vector(&items.families, parts)))
        .collect();
    db.sort_unstable_by_key(|p| p.0);
    let params = AnnParams::default();

    let start = Instant::now();
    let full = AnnIndex::build(&db, params)?;
    let full_secs = start.elapsed().as_secs_f64();

    let is_added =
        |id: i64| (splitmix(seed ^ id as u64) >> 11) as f64 / (1u64 << 53) as f64 <= share;
    let base: Vec<(i64, Vec<f32>)> = db.iter().filter(|p| !is_added(p.0)).cloned().collect();
    let added: Vec<i64> = db.iter().map(|p| p.0).filter(|&id| is_added(id)).collect();
    let start = Instant::now();
    let mut updated = AnnIndex::build(&base, params)?;
    let base_secs = start.elapsed().as_secs_f64();
    let start = Instant::now();
    updated.update(&added, &[], |ids| {
        Ok(ids
            .iter()
            .filter_map(|id| db.binary_search_by_key(id, |p| p.0).ok())
            .map(|i| db[i].clone())
            .collect())
    })?;
    let update_secs = start.elapsed().as_secs_f64();

    println!(
        "{} images; {} in the base graph, {} inserted in place (share {share}, seed {seed})",
        db.len(),
        base.len(),
        added.len()
    );
    for (name, ann, secs) in [
        ("full build", &full, full_secs),
        ("base + update", &updated, update_secs),
    ] {
        let (map, p10, r10) = score(ann, &db, &gt);
        println!(
            "{name:14} mAP {map:.4}  P@10 {p10:.4}  HNSW recall@10 {r10:.4}  {secs:.2} s{}",
            if name == "base + update" {
                format!(" (base build {base_secs:.2} s)")
            } else {
                String::new()
            }
        );
    }
    Ok(())
}
