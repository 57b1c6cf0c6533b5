//! The indexing pipeline: crawl, change detection, parallel decode + extraction, one SQLite
//! writer committing in batches, then the HNSW refresh. Reports progress through events and
//! stops cleanly when asked; it never prints.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rayon::prelude::*;

use crate::collection::{Collection, GraphRefresh, GraphUpdate, UpdatePolicy};
use crate::crawl::{CrawlConfig, CrawlProblem, CrawledFile, crawl};
use crate::decode::{DecodeConfig, decode};
use crate::error::{Error, Result};
use crate::features::{FeatureInput, Fusion, Profile, Registry};
use crate::store::{CatalogEntry, FeatureRow, FileStamp, ImageFacts, Store, WriteOp};

/// Everything `index` needs besides the collection.
#[derive(Debug, Clone, Default)]
pub struct IndexConfig {
    pub crawl: CrawlConfig,
    pub decode: DecodeConfig,
    /// Try again files that failed before even if they have not changed.
    pub retry_failed: bool,
    /// Rows per write transaction (0 = default).
    pub batch_size: usize,
    /// Neighbours averaged into each stored vector of the graph, recorded for the collection
    /// (0: none); `None` keeps what the collection recorded, or the default.
    pub dba: Option<usize>,
    /// Rebuild the HNSW graph in full even when it could be updated in place.
    pub rebuild_graph: bool,
    /// Feature profile, recorded for the collection (a change re-extracts every image);
    /// `None` keeps what the collection recorded, or the full profile.
    pub profile: Option<Profile>,
    /// When the graph may be updated in place.
    pub graph_update: UpdatePolicy,
}

/// Progress events; the CLI renders them.
#[derive(Debug, Clone)]
pub enum Progress {
    /// The walk found this many candidate files.
    Crawled { files: usize },
    /// This many files need reading (the rest are unchanged).
    Planned { to_process: usize, unchanged: usize },
    /// One more file was handled.
    Processed { done: usize, total: usize },
    /// The HNSW graph is being rebuilt over this many images.
    BuildingAnn { images: usize },
}

/// A file that could not be indexed in this run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FailedFile {
    #[serde(flatten, serialize_with = "crate::path_repr::path")]
    pub path: PathBuf,
    pub reason: String,
}

/// What a run did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct IndexSummary {
    /// The feature profile the collection is indexed with.
    pub profile: Profile,
    /// Files seen for the first time and extracted.
    pub new: usize,
    /// Files already indexed and unchanged (nothing decoded).
    pub unchanged: usize,
    /// Files whose content changed, or whose features were outdated, re-extracted.
    pub updated: usize,
    /// Files found under a new path, recognised by content hash (features kept).
    pub moved: usize,
    /// New paths with content already indexed elsewhere (features copied, nothing decoded).
    pub duplicates: usize,
    /// Files gone from disk, removed from the index.
    pub removed: usize,
    /// Files that failed in this run.
    pub failed: Vec<FailedFile>,
    /// Files that failed before and are unchanged (not retried; see `--retry-failed`).
    pub still_failing: usize,
    /// Paths the walk could not read.
    pub problems: Vec<CrawlProblem>,
    /// Images in the index after the run.
    pub total_images: usize,
    pub elapsed_secs: f64,
    /// Files read or decoded per second during extraction.
    pub images_per_sec: f64,
    /// The HNSW graph was built in full.
    pub ann_rebuilt: bool,
    /// The HNSW graph was updated in place: images inserted and points hidden.
    pub ann_updated: Option<GraphUpdate>,
    pub interrupted: bool,
}

/// Outcome of one file, produced by a worker.
enum Outcome {
    Extracted {
        file: CrawledFile,
        hash: [u8; 32],
        facts: ImageFacts,
        features: Vec<FeatureRow>,
    },
    /// Same bytes as the row at the same path: only the stamp changed.
    Touched {
        id: i64,
        stamp: FileStamp,
    },
    /// Content already indexed (under some id): move or copy, no decoding.
    KnownContent {
        file: CrawledFile,
        hash: [u8; 32],
    },
    Failed {
        file: CrawledFile,
        reason: String,
    },
    /// Deleted between the walk and the read: nothing to record (the next run drops its row).
    Gone,
}

fn features_current(entry: &CatalogEntry, signatures: &[(String, u32, String)]) -> bool {
    signatures.iter().all(|sig| entry.features.contains(sig))
}

/// Runs one indexing pass over `config.crawl.roots` into `collection`, with the families and
/// fusion of its feature profile.
pub fn run(
    collection: &Collection,
    config: &IndexConfig,
    progress: &(dyn Fn(Progress) + Sync),
    stop: &AtomicBool,
) -> Result<IndexSummary> {
    let start = Instant::now();
    let mut crawl_cfg = config.crawl.clone();
    crawl_cfg.roots = config
        .crawl
        .roots
        .iter()
        .map(|r| std::fs::canonicalize(r).map_err(|e| Error::io(r, e)))
        .collect::<Result<_>>()?;
    crawl_cfg.skip_dir = Some(collection.dir().to_path_buf());
    let _lock = collection.lock_for_writing()?;
    let mut store = collection.open_store()?;
    let profile = match config.profile {
        Some(p) => {
            collection.set_profile(&mut store, p)?;
            p
        }
        None => collection.profile(&store)?,
    };
    let (registry, fusion) = (Registry::for_profile(profile), Fusion::for_profile(profile));
    let run_id = store.begin_run(&crawl_cfg.roots)?;
    let result = index_pass(
        collection, &mut store, &crawl_cfg, config, &registry, &fusion, progress, stop,
    )
    .map(|summary| IndexSummary { profile, ..summary });
    let (outcome, record) = match &result {
        Ok(summary) => {
            let mut summary = summary.clone();
            summary.elapsed_secs = start.elapsed().as_secs_f64();
            let outcome = if summary.interrupted {
                "interrupted"
            } else {
                "complete"
            };
            (outcome, serde_json::to_string(&summary).unwrap_or_default())
        }
        Err(e) => ("error", e.to_string()),
    };
    // A failure to record the outcome must not hide the run's own result.
    let _ = store.finish_run(run_id, outcome, &record);
    let mut summary = result?;
    summary.elapsed_secs = start.elapsed().as_secs_f64();
    Ok(summary)
}

/// The work of one run, with the lock held and the run recorded.
#[allow(clippy::too_many_arguments)]
fn index_pass(
    collection: &Collection,
    store: &mut Store,
    crawl_cfg: &CrawlConfig,
    config: &IndexConfig,
    registry: &Registry,
    fusion: &Fusion,
    progress: &(dyn Fn(Progress) + Sync),
    stop: &AtomicBool,
) -> Result<IndexSummary> {
    let mut summary = IndexSummary::default();
    let root_ids: Vec<i64> = crawl_cfg
        .roots
        .iter()
        .map(|r| store.root_id(r))
        .collect::<Result<_>>()?;
    let walked = crawl(crawl_cfg)?;
    summary.problems = walked.problems.clone();
    progress(Progress::Crawled {
        files: walked.files.len(),
    });

    let signatures = registry.signatures();
    let catalog = store.catalog()?;
    let by_path: HashMap<(i64, &Path), &CatalogEntry> = catalog
        .iter()
        .map(|e| ((e.root_id, e.rel_path.as_path()), e))
        .collect();
    let known_hashes: HashSet<[u8; 32]> = catalog
        .iter()
        .filter(|e| features_current(e, &signatures))
        .map(|e| e.hash)
        .collect();
    let failures: HashMap<(i64, PathBuf), FileStamp> = store
        .failures()?
        .into_iter()
        .map(|f| {
            (
                (f.root_id, f.rel_path),
                FileStamp {
                    size: f.size,
                    mtime_ns: f.mtime_ns,
                },
            )
        })
        .collect();

    let mut seen: HashSet<(i64, &Path)> = HashSet::new();
    let mut jobs: Vec<(&CrawledFile, Option<&CatalogEntry>)> = Vec::new();
    for file in &walked.files {
        let root_id = root_ids[file.root];
        seen.insert((root_id, file.rel_path.as_path()));
        let existing = by_path.get(&(root_id, file.rel_path.as_path())).copied();
        match existing {
            Some(e)
                if e.size == file.stamp.size
                    && e.mtime_ns == file.stamp.mtime_ns
                    && features_current(e, &signatures) =>
            {
                summary.unchanged += 1;
            }
            None if !config.retry_failed
                && failures.get(&(root_id, file.rel_path.clone())) == Some(&file.stamp) =>
            {
                summary.still_failing += 1;
            }
            _ => jobs.push((file, existing)),
        }
    }
    // Rows under completely walked roots whose path was not seen: deleted, or moved.
    let crawled_roots: HashSet<i64> = root_ids
        .iter()
        .zip(&walked.complete_roots)
        .filter(|(_, complete)| **complete)
        .map(|(id, _)| *id)
        .collect();
    let vanished: Vec<&CatalogEntry> = catalog
        .iter()
        .filter(|e| {
            crawled_roots.contains(&e.root_id) && !seen.contains(&(e.root_id, e.rel_path.as_path()))
        })
        .collect();
    let mut vanished_by_hash: HashMap<[u8; 32], Vec<i64>> = HashMap::new();
    for e in &vanished {
        vanished_by_hash.entry(e.hash).or_default().push(e.id);
    }
    let mut any_id_by_hash: HashMap<[u8; 32], i64> = HashMap::new();
    for e in catalog.iter().filter(|e| features_current(e, &signatures)) {
        any_id_by_hash.entry(e.hash).or_insert(e.id);
    }

    progress(Progress::Planned {
        to_process: jobs.len(),
        unchanged: summary.unchanged,
    });

    let total = jobs.len();
    let batch_size = if config.batch_size == 0 {
        256
    } else {
        config.batch_size
    };
    let (tx, rx) = crossbeam_channel::bounded::<Outcome>(batch_size * 2);
    let mut claimed: HashSet<i64> = HashSet::new();
    let mut extracted = 0usize;
    // Files actually handled: fewer than `total` after Ctrl-C.
    let mut handled = 0usize;
    let extract_start = Instant::now();

    let writer_result: Result<()> = std::thread::scope(|scope| {
        let jobs = &jobs;
        let known_hashes = &known_hashes;
        scope.spawn(move || {
            jobs.par_iter().for_each_with(tx, |tx, (file, existing)| {
                if stop.load(Ordering::Relaxed) {
                    return;
                }
                let outcome =
                    process_file(file, *existing, known_hashes, &signatures, config, registry);
                // The writer has gone only after an error; nothing more to do then.
                let _ = tx.send(outcome);
            });
        });

        let mut batch: Vec<WriteOp> = Vec::with_capacity(batch_size);
        let mut last_commit = Instant::now();
        for (i, outcome) in rx.iter().enumerate() {
            let done = i + 1;
            handled = done;
            match outcome {
                Outcome::Extracted {
                    file,
                    hash,
                    facts,
                    features,
                } => {
                    extracted += 1;
                    let root_id = root_ids[file.root];
                    if by_path.contains_key(&(root_id, file.rel_path.as_path())) {
                        summary.updated += 1;
                    } else {
                        summary.new += 1;
                    }
                    batch.push(WriteOp::Upsert {
                        root_id,
                        rel_path: file.rel_path,
                        stamp: file.stamp,
                        hash,
                        facts,
                        features,
                    });
                }
                Outcome::Touched { id, stamp } => {
                    summary.unchanged += 1;
                    batch.push(WriteOp::Touch { id, stamp });
                }
                Outcome::KnownContent { file, hash } => {
                    let root_id = root_ids[file.root];
                    let movable = vanished_by_hash
                        .get(&hash)
                        .and_then(|ids| ids.iter().find(|id| !claimed.contains(id)).copied());
                    if let Some(id) = movable {
                        claimed.insert(id);
                        summary.moved += 1;
                        batch.push(WriteOp::Move {
                            id,
                            root_id,
                            rel_path: file.rel_path,
                            stamp: file.stamp,
                        });
                    } else if let Some(&source_id) = any_id_by_hash.get(&hash) {
                        summary.duplicates += 1;
                        batch.push(WriteOp::Copy {
                            source_id,
                            root_id,
                            rel_path: file.rel_path,
                            stamp: file.stamp,
                        });
                    }
                }
                Outcome::Gone => {}
                Outcome::Failed { file, reason } => {
                    summary.failed.push(FailedFile {
                        path: file.abs_path.clone(),
                        reason: reason.clone(),
                    });
                    batch.push(WriteOp::Fail {
                        root_id: root_ids[file.root],
                        rel_path: file.rel_path,
                        stamp: file.stamp,
                        reason,
                    });
                }
            }
            if batch.len() >= batch_size || last_commit.elapsed() > Duration::from_millis(500) {
                store.apply(&batch)?;
                batch.clear();
                last_commit = Instant::now();
            }
            progress(Progress::Processed { done, total });
        }
        store.apply(&batch)?;
        Ok(())
    });
    writer_result?;
    let extract_secs = extract_start.elapsed().as_secs_f64();
    summary.images_per_sec = if extract_secs > 0.0 {
        handled as f64 / extract_secs
    } else {
        0.0
    };
    let _ = extracted;

    if stop.load(Ordering::Relaxed) {
        summary.interrupted = true;
    } else {
        let removals: Vec<WriteOp> = vanished
            .iter()
            .filter(|e| !claimed.contains(&e.id))
            .map(|e| WriteOp::Remove { id: e.id })
            .collect();
        summary.removed = removals.len();
        for chunk in removals.chunks(batch_size) {
            store.apply(chunk)?;
        }
        let gone_failures: Vec<(i64, PathBuf)> = failures
            .keys()
            .filter(|(root, rel)| {
                crawled_roots.contains(root) && !seen.contains(&(*root, rel.as_path()))
            })
            .cloned()
            .collect();
        store.forget_failures(&gone_failures)?;
        let images = store.image_count()? as usize;
        progress(Progress::BuildingAnn { images });
        if let Some(k) = config.dba {
            collection.set_dba(store, k)?;
        }
        match collection.refresh_ann(store, fusion, &config.graph_update, config.rebuild_graph)? {
            GraphRefresh::Current => {}
            GraphRefresh::Rebuilt => summary.ann_rebuilt = true,
            GraphRefresh::Updated(update) => summary.ann_updated = Some(update),
        }
    }
    summary.total_images = store.image_count()? as usize;
    Ok(summary)
}

fn process_file(
    file: &CrawledFile,
    existing: Option<&CatalogEntry>,
    known_hashes: &HashSet<[u8; 32]>,
    signatures: &[(String, u32, String)],
    config: &IndexConfig,
    registry: &Registry,
) -> Outcome {
    let bytes = match std::fs::read(&file.abs_path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Outcome::Gone,
        Err(e) => {
            return Outcome::Failed {
                file: file.clone(),
                reason: format!("cannot read: {e}"),
            };
        }
    };
    // The file may have changed between the walk and now; the stamp must describe these bytes.
    let mut file = file.clone();
    if let Ok(meta) = std::fs::metadata(&file.abs_path) {
        file.stamp = FileStamp {
            size: meta.len(),
            mtime_ns: crate::crawl::mtime_ns(&meta),
        };
        if meta.len() != bytes.len() as u64 {
            file.stamp.mtime_ns = 0;
        }
    }
    let hash: [u8; 32] = *blake3::hash(&bytes).as_bytes();
    if let Some(e) = existing
        && e.hash == hash
        && features_current(e, signatures)
    {
        return Outcome::Touched {
            id: e.id,
            stamp: file.stamp,
        };
    }
    if known_hashes.contains(&hash) {
        return Outcome::KnownContent { file, hash };
    }
    match extract_bytes(&bytes, &file.abs_path, &config.decode, registry) {
        Ok((facts, features)) => Outcome::Extracted {
            file,
            hash,
            facts,
            features,
        },
        Err(e) => Outcome::Failed {
            reason: match e {
                Error::Decode { reason, .. } => reason,
                other => other.to_string(),
            },
            file,
        },
    }
}

/// Decodes an image to the registry's working size and runs every feature family on it
/// (panics in either are caught).
pub fn extract_bytes(
    bytes: &[u8],
    path: &Path,
    decode_cfg: &DecodeConfig,
    registry: &Registry,
) -> Result<(ImageFacts, Vec<FeatureRow>)> {
    let decode_cfg = DecodeConfig {
        working_size: registry.working_size(),
        ..*decode_cfg
    };
    let decoded = decode(bytes, path, &decode_cfg)?;
    let facts = ImageFacts {
        format: decoded.format.clone(),
        width: decoded.width,
        height: decoded.height,
    };
    let input = FeatureInput::new(decoded.image);
    let features = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        registry.extract_all(&input)
    }))
    .map_err(|_| Error::Decode {
        path: path.to_path_buf(),
        reason: "feature extraction failed on this image (please report it)".into(),
    })?;
    Ok((facts, features))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_png(path: &Path, seed: u32) {
        let img = image::RgbImage::from_fn(64, 48, |x, y| {
            let v = (x * (seed + 3) + y * (seed * 7 + 1)) % 256;
            image::Rgb([v as u8, (255 - v) as u8, (seed * 40 % 256) as u8])
        });
        img.save(path).unwrap();
    }

    /// Stopped before any file is handled, the rate counts what was handled (none), not the
    /// planned files.
    #[test]
    fn images_per_sec_counts_only_the_files_handled() {
        let (_tmp, _photos, collection, config) = png_folder(4);
        let stop = AtomicBool::new(true);
        let planned = std::sync::Mutex::new(0);
        let on_progress = |p: Progress| {
            if let Progress::Planned { to_process, .. } = p {
                *planned.lock().unwrap() = to_process;
            }
        };
        let summary = run(&collection, &config, &on_progress, &stop).unwrap();
        assert!(summary.interrupted);
        assert_eq!(*planned.lock().unwrap(), 4);
        assert_eq!(summary.new, 0);
        assert_eq!(summary.images_per_sec, 0.0);
    }

    /// A temporary folder of `n` generated PNGs, the collection to index it into, and a
    /// configuration that indexes it.
    fn png_folder(n: u32) -> (tempfile::TempDir, PathBuf, Collection, IndexConfig) {
        let tmp = tempfile::tempdir().unwrap();
        let photos = tmp.path().join("photos");
        std::fs::create_dir_all(&photos).unwrap();
        for i in 0..n {
            write_png(&photos.join(format!("{i}.png")), i);
        }
        let collection = Collection::at(tmp.path().join("idx"));
        let config = IndexConfig {
            crawl: CrawlConfig {
                roots: vec![photos.clone()],
                ..Default::default()
            },
            ..Default::default()
        };
        (tmp, photos, collection, config)
    }

    /// Changes to an indexed folder reach the graph in place when the policy allows: new and
    /// rewritten images are inserted, removed ones hidden, twice in a row through dumps; a
    /// query then finds the rewritten image by its new content, and `rebuild_graph` rebuilds.
    #[test]
    fn graph_is_updated_in_place_through_dumps() {
        let (_tmp, photos, collection, mut config) = png_folder(12);
        config.graph_update = UpdatePolicy {
            min_built: 0,
            max_growth: 1.0,
            max_hidden: 0.5,
        };
        let stop = AtomicBool::new(false);
        let index = |config: &IndexConfig| run(&collection, config, &|_| {}, &stop).unwrap();
        assert!(index(&config).ann_rebuilt);

        std::fs::remove_file(photos.join("0.png")).unwrap();
        write_png(&photos.join("1.png"), 51);
        write_png(&photos.join("12.png"), 52);
        write_png(&photos.join("13.png"), 53);
        let first = index(&config);
        assert!(!first.ann_rebuilt, "{first:?}");
        let update = GraphUpdate {
            inserted: 3,
            hidden: 2,
        };
        assert_eq!(first.ann_updated, Some(update));

        write_png(&photos.join("2.png"), 54);
        let second = index(&config);
        let update = GraphUpdate {
            inserted: 1,
            hidden: 1,
        };
        assert_eq!(second.ann_updated, Some(update));
        let unchanged = index(&config);
        assert_eq!(
            (unchanged.ann_rebuilt, unchanged.ann_updated),
            (false, None)
        );
        // A move changes the data version, not the graph: the dump is restamped, not rewritten.
        std::fs::rename(photos.join("3.png"), photos.join("3b.png")).unwrap();
        let moved = index(&config);
        assert_eq!(moved.moved, 1, "{moved:?}");
        assert_eq!((moved.ann_rebuilt, moved.ann_updated), (false, None));
        // A removal alone hides the point in the record; the dump's files are kept.
        let folder = |c: &Collection| {
            let store = c.open_store().unwrap();
            c.dump_record(&store).unwrap().unwrap().folder
        };
        let before = folder(&collection);
        std::fs::remove_file(photos.join("4.png")).unwrap();
        let update = GraphUpdate {
            inserted: 0,
            hidden: 1,
        };
        assert_eq!(index(&config).ann_updated, Some(update));
        assert_eq!(folder(&collection), before);

        let store = collection.open_store().unwrap();
        let rec = collection.dump_record(&store).unwrap().unwrap();
        assert_eq!(
            (rec.count, rec.hidden.len(), rec.updates, rec.built_count),
            (16, 4, 3, 12)
        );
        assert_eq!(rec.data_version, store.data_version().unwrap());
        let space = collection.search_space(&store, &Fusion::default()).unwrap();
        assert!(space.note.is_none(), "{:?}", space.note);
        let ann = space.ann.as_ref().unwrap();
        let mut ids: Vec<i64> = store.catalog().unwrap().iter().map(|e| e.id).collect();
        ids.sort_unstable();
        assert_eq!(ann.image_ids(), ids);
        let rewritten = store.id_of_path(&photos.join("2.png")).unwrap().unwrap();
        let query = space.embed(&space.vector_of(&store, rewritten).unwrap().unwrap());
        let hits = space
            .search(&store, &query, 3, crate::collection::SearchMode::Hnsw)
            .unwrap();
        assert_eq!(hits[0].0, rewritten, "{hits:?}");
        drop((space, store));

        config.rebuild_graph = true;
        assert!(index(&config).ann_rebuilt);
        let store = collection.open_store().unwrap();
        let rec = collection.dump_record(&store).unwrap().unwrap();
        assert_eq!((rec.count, rec.hidden.len(), rec.updates), (12, 0, 0));
    }

    /// Files deleted or rewritten after the walk listed them, before a worker reads them.
    #[test]
    fn files_deleted_or_rewritten_during_the_run_are_handled() {
        let (_tmp, photos, collection, config) = png_folder(6);
        let stop = AtomicBool::new(false);
        let rewritten = photos.join("1.png");
        let on_progress = |p: Progress| {
            if let Progress::Crawled { .. } = p {
                std::fs::remove_file(photos.join("0.png")).unwrap();
                std::fs::write(&rewritten, b"half-copied").unwrap();
                write_png(&rewritten, 99);
            }
        };
        let summary = run(&collection, &config, &on_progress, &stop).unwrap();
        assert_eq!(summary.new, 5, "{summary:?}");
        assert!(summary.failed.is_empty(), "{:?}", summary.failed);
        assert_eq!(summary.total_images, 5);

        let store = collection.open_store().unwrap();
        let catalog = store.catalog().unwrap();
        let names: HashSet<String> = catalog
            .iter()
            .map(|e| e.rel_path.display().to_string())
            .collect();
        assert!(!names.contains("0.png"));
        let row = catalog
            .iter()
            .find(|e| e.rel_path == Path::new("1.png"))
            .unwrap();
        let bytes = std::fs::read(&rewritten).unwrap();
        assert_eq!(
            row.hash,
            *blake3::hash(&bytes).as_bytes(),
            "new content indexed"
        );
        assert_eq!(row.size, bytes.len() as u64);
        drop(store);

        // The next run sees nothing to do: the stored stamp describes the bytes indexed.
        let again = run(&collection, &config, &|_| {}, &stop).unwrap();
        assert_eq!((again.unchanged, again.new, again.updated), (5, 0, 0));
        assert_eq!(
            collection
                .open_store()
                .unwrap()
                .last_run()
                .unwrap()
                .unwrap()
                .outcome
                .as_deref(),
            Some("complete")
        );
    }

    #[test]
    fn the_profile_is_recorded_and_a_change_re_extracts_every_image() {
        let (_tmp, _photos, collection, mut config) = png_folder(4);
        config.profile = Some(Profile::Fast);
        let stop = AtomicBool::new(false);
        let index = |config: &IndexConfig| run(&collection, config, &|_| {}, &stop).unwrap();
        let fast = index(&config);
        assert_eq!((fast.profile, fast.new), (Profile::Fast, 4));
        let store = collection.open_store().unwrap();
        assert_eq!(collection.profile(&store).unwrap(), Profile::Fast);
        let families: HashSet<String> = store.catalog().unwrap()[0]
            .features
            .iter()
            .map(|(f, _, p)| {
                assert!(p.ends_with(" @96px"), "{p}");
                f.clone()
            })
            .collect();
        let expected: HashSet<String> = ["color", "lbp", "orient"].map(String::from).into();
        assert_eq!(families, expected);
        let record = collection.dump_record(&store).unwrap().unwrap();
        assert_eq!(
            record.fusion,
            Fusion::for_profile(Profile::Fast).fingerprint()
        );
        drop(store);

        config.profile = None;
        let kept = index(&config);
        assert_eq!(
            (kept.profile, kept.unchanged, kept.updated),
            (Profile::Fast, 4, 0)
        );

        config.profile = Some(Profile::Full);
        let full = index(&config);
        assert_eq!(
            (full.profile, full.updated, full.unchanged),
            (Profile::Full, 4, 0)
        );
        assert!(full.ann_rebuilt);
        let store = collection.open_store().unwrap();
        let signatures = Registry::default().signatures();
        for entry in store.catalog().unwrap() {
            let mut stored = entry.features.clone();
            stored.sort();
            let mut wanted = signatures.clone();
            wanted.sort();
            assert_eq!(stored, wanted, "the fast rows were replaced");
        }
    }
}
