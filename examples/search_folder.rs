//! Library use: index a folder of images, then find the indexed images that look most like an
//! example image, and print them ranked with their distances.
//!
//! Usage: `cargo run --example search_folder -- DIR IMAGE [INDEX_DIR]`
//! Without INDEX_DIR the index goes to a temporary folder, removed on exit; with it, the index
//! is kept there and a second run only reads what changed.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;

use lookalike::collection::Collection;
use lookalike::crawl::CrawlConfig;
use lookalike::features::Fusion;
use lookalike::index::{self, IndexConfig, Progress};
use lookalike::query::{QueryConfig, Searcher};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (dir, image) = match args.as_slice() {
        [dir, image] | [dir, image, _] => (PathBuf::from(dir), PathBuf::from(image)),
        _ => {
            eprintln!("usage: search_folder DIR IMAGE [INDEX_DIR]");
            std::process::exit(2);
        }
    };
    // The temporary folder lives until the end of `main`.
    let temp = tempfile::tempdir()?;
    let index_dir = args
        .get(2)
        .map_or_else(|| temp.path().to_path_buf(), PathBuf::from);
    let collection = Collection::at(&index_dir);

    // Index: walk DIR, decode and describe every new or changed image, build the graph.
    let config = IndexConfig {
        crawl: CrawlConfig {
            roots: vec![dir.clone()],
            ..CrawlConfig::default()
        },
        ..IndexConfig::default()
    };
    let on_progress = |p: Progress| {
        if let Progress::BuildingAnn { images } = p {
            eprintln!("building the search graph over {images} images");
        }
    };
    // Setting this flag from another thread would stop the run cleanly; nothing sets it here.
    let stop = AtomicBool::new(false);
    let summary = index::run(&collection, &config, &on_progress, &stop)?;
    println!(
        "indexed {}: {} new, {} updated, {} unchanged, {} failed",
        dir.display(),
        summary.new,
        summary.updated,
        summary.unchanged,
        summary.failed.len()
    );
    for failed in &summary.failed {
        println!(
            "  not indexed: {}: {}",
            failed.path.display(),
            failed.reason
        );
    }

    // Query: rank with the weights of the profile the index was made with.
    let fusion = Fusion::for_profile(summary.profile);
    let searcher = Searcher::open(&collection, &fusion)?;
    let query = QueryConfig {
        k: 5,
        ..QueryConfig::default()
    };
    let result = searcher.query(&image, &query)?;
    let origin = if result.indexed {
        "indexed"
    } else {
        "not indexed"
    };
    // Ranked with query expansion over the graph's vectors; the distances are to the example
    // itself, so they need not grow down the list.
    println!("nearest to {} ({origin}):", image.display());
    for hit in &result.hits {
        println!(
            "{:>3}  {:.4}  {}",
            hit.rank,
            hit.distance,
            hit.path.display()
        );
    }
    if let Some(note) = &result.note {
        println!("note: {note}");
    }
    Ok(())
}
