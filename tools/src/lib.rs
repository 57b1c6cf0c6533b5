//! What the measuring tools share: their `FOLDER [LIMIT]` arguments, read into the image files
//! the indexer would take (every supported format, in path order).

use std::path::PathBuf;

use lookalike::crawl::{CrawlConfig, crawl};

/// The first LIMIT (default all) image files under FOLDER, from the command line; `usage` is
/// printed when FOLDER is missing.
pub fn image_files_from_args(usage: &str) -> Vec<PathBuf> {
    let args: Vec<String> = std::env::args().collect();
    let Some(dir) = args.get(1) else {
        eprintln!("usage: {usage}");
        std::process::exit(2);
    };
    let limit: usize = args
        .get(2)
        .and_then(|v| v.parse().ok())
        .unwrap_or(usize::MAX);
    let config = CrawlConfig {
        roots: vec![dir.into()],
        ..CrawlConfig::default()
    };
    let files = crawl(&config).unwrap_or_else(|e| panic!("{e}")).files;
    files.into_iter().take(limit).map(|f| f.abs_path).collect()
}
