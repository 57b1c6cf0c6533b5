//! The `status` report: what an index holds, whether its graph and features are current, how
//! its last run went and, on request, whether its database and vectors are intact.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::ann::{AnnIndex, DumpRecord, PROJECTION_FILE, ann_dir};
use crate::collection::{Collection, advised_command};
use crate::error::Result;
use crate::features::{Profile, Registry};
use crate::pca::Projection;
use crate::store::{RunEntry, Store, StoreStats};
use crate::text::counted;

/// Everything `lookalike status` shows, computed from the index without changing it.
#[derive(Debug)]
pub struct StatusReport {
    /// Counts, feature versions and schema from the database.
    pub(crate) stats: StoreStats,
    /// Tracked folders by id, as recorded.
    pub(crate) roots: HashMap<i64, PathBuf>,
    /// The feature profile the collection is indexed with.
    pub(crate) profile: Profile,
    /// The walk options `index` reuses when it is given none.
    pub(crate) walk_options: crate::collection::WalkOptions,
    /// Its families, in fusion order.
    pub families: Vec<&'static str>,
    /// Side of the working image the families see.
    pub(crate) working_size: u32,
    /// Stored feature rows written by another version or with other parameters.
    pub(crate) outdated_feature_rows: u64,
    /// `(family, images without a vector of it)`, for the families some images lack.
    pub missing_families: Vec<(&'static str, u64)>,
    /// The graph's state in one phrase: missing, stale, damaged or current (with its shape).
    pub(crate) hnsw: String,
    /// The graph's record, when one was written.
    pub(crate) graph: Option<DumpRecord>,
    /// Bytes of every file in the index folder.
    pub(crate) bytes_on_disk: u64,
    /// With a check: "ok" or what is wrong.
    pub(crate) integrity: Option<String>,
    /// The last `index` run.
    pub(crate) last_run: Option<RunEntry>,
    /// A writer (`index`, `forget`, `duplicates DIR`, `eval`) holds the index's lock now.
    pub(crate) writer_running: bool,
    /// What that writer recorded of itself, when there is a record to believe: an unfinished
    /// run is still going when it is the writer's run, and was killed when it is not.
    pub(crate) writer: Option<crate::collection::Writer>,
    /// Files recorded as failed: their full path and why.
    pub(crate) failures: Vec<(PathBuf, String)>,
}

impl StatusReport {
    /// Tracked folders, sorted.
    pub fn root_paths(&self) -> Vec<&Path> {
        let mut paths: Vec<&Path> = self.roots.values().map(PathBuf::as_path).collect();
        paths.sort();
        paths
    }

    /// True when a check ran and found damage.
    pub fn is_damaged(&self) -> bool {
        self.integrity.as_deref().is_some_and(|v| v != "ok")
    }

    /// The report as JSON (the `status --json` schema README.md documents).
    pub fn to_json(&self, index_dir: &Path) -> serde_json::Value {
        let stats = &self.stats;
        let failures_json: Vec<_> = self
            .failures
            .iter()
            .map(|(path, reason)| {
                let mut entry = crate::path_repr::object("path", path);
                entry.insert("reason".into(), reason.clone().into());
                serde_json::Value::Object(entry)
            })
            .collect();
        let mut doc = crate::path_repr::object("index_dir", &crate::path_repr::absolute(index_dir));
        crate::path_repr::insert_list(&mut doc, "roots", self.root_paths());
        let rest = serde_json::json!({
            "images": stats.images,
            "profile": self.profile,
            "walk_options": self.walk_options,
            "working_size": self.working_size,
            "failures": failures_json,
            "feature_versions": stats.feature_versions,
            "outdated_feature_rows": self.outdated_feature_rows,
            "images_missing_family": self.missing_families.iter().copied().collect::<std::collections::BTreeMap<_, _>>(),
            "schema_version": stats.schema_version,
            "hnsw": self.hnsw,
            "hnsw_in_place": self.graph.as_ref().map(|r| serde_json::json!({
                "updates_since_full_build": r.updates,
                "full_build_images": if r.built_count == 0 { r.count } else { r.built_count },
                "hidden_points": r.hidden.len(),
            })),
            "bytes_on_disk": self.bytes_on_disk,
            "integrity": self.integrity,
            "last_run": self.last_run,
            "writer_running": self.writer_running,
            "writer_command": self.writer.as_ref().map(|w| &w.command),
            "writer_pid": self.writer.as_ref().map(|w| w.pid),
            "writer_run": self.writer.as_ref().and_then(|w| w.run),
        });
        if let serde_json::Value::Object(rest) = rest {
            doc.extend(rest);
        }
        if let (Some(state), Some(serde_json::Value::Object(run))) =
            (self.last_run_state(), doc.get_mut("last_run"))
        {
            run.insert("state".into(), state.into());
        }
        serde_json::Value::Object(doc)
    }

    /// The last run's state: its recorded outcome once it ended; else `running` while its own
    /// process holds the writer lock, `killed` when no process or another command's holds it,
    /// and `unknown` when a writer left no record to tell which.
    pub(crate) fn last_run_state(&self) -> Option<&'static str> {
        let run = self.last_run.as_ref()?;
        Some(match run.outcome.as_deref() {
            Some("complete") => "complete",
            Some("interrupted") => "interrupted",
            Some(_) => "error",
            None => match (&self.writer, self.writer_running) {
                (Some(w), true) if w.run == Some(run.id) => "running",
                (Some(_), true) | (None, false) | (Some(_), false) => "killed",
                (None, true) => "unknown",
            },
        })
    }
}

/// The keys of the `status --json` document besides `index_dir` and `roots`.
const REPORT_KEYS: [&str; 18] = [
    "images",
    "profile",
    "walk_options",
    "working_size",
    "failures",
    "feature_versions",
    "outdated_feature_rows",
    "images_missing_family",
    "schema_version",
    "hnsw",
    "hnsw_in_place",
    "bytes_on_disk",
    "integrity",
    "last_run",
    "writer_running",
    "writer_command",
    "writer_pid",
    "writer_run",
];

/// The `status --check --json` document of an index whose report could not be read for
/// `damage` found in it: `integrity` names the damage, the fields not read are null.
pub fn damaged_json(index_dir: &Path, damage: &str) -> serde_json::Value {
    let mut doc = crate::path_repr::object("index_dir", &crate::path_repr::absolute(index_dir));
    doc.insert("roots".into(), serde_json::Value::Null);
    for key in REPORT_KEYS {
        doc.insert(key.into(), serde_json::Value::Null);
    }
    doc.insert("integrity".into(), damage.into());
    doc.insert("bytes_on_disk".into(), dir_size(index_dir).into());
    serde_json::Value::Object(doc)
}

/// The command that resumes `run`: its flags that change what it does, its roots (as
/// recorded, with their exact bytes when known) and `--index-dir` unless the index is the
/// default one.
pub(crate) fn resume_command(
    collection: &Collection,
    run: &RunEntry,
    roots: &HashMap<i64, PathBuf>,
) -> String {
    let mut cmd = advised_command(collection, "index");
    for word in &run.flags {
        let flag = word.starts_with("--")
            && word[2..]
                .chars()
                .all(|c| c.is_ascii_lowercase() || c == '-');
        cmd.push(' ');
        cmd.push_str(&if flag {
            word.clone()
        } else {
            crate::path_repr::shell_word(word.as_ref())
        });
    }
    for root in &run.roots {
        // Older versions recorded display strings: the exact path is the root that displays so.
        let exact = if roots.values().any(|p| p == root) {
            root
        } else {
            roots
                .values()
                .find(|p| p.to_string_lossy() == root.to_string_lossy())
                .unwrap_or(root)
        };
        cmd.push(' ');
        cmd.push_str(&crate::path_repr::shell_word(exact.as_os_str()));
    }
    cmd
}

/// Computes the report of `collection` from a read-only connection; `check` also runs the
/// integrity checks (`check_index`).
pub fn status(collection: &Collection, check: bool) -> Result<StatusReport> {
    let writer = collection.writer();
    let store = collection.open_store_read_only()?;
    let integrity = if check {
        Some(check_index(&store)?)
    } else {
        None
    };
    let stats = store.stats()?;
    let roots = store.roots()?;
    let failures = store
        .failures()?
        .into_iter()
        .map(|f| {
            let path = roots
                .get(&f.root_id)
                .map(|r| r.join(&f.rel_path))
                .unwrap_or_else(|| f.rel_path.clone());
            (path, f.reason)
        })
        .collect();
    let graph = collection.dump_record(&store)?;
    let profile = collection.profile(&store)?;
    let hnsw = if profile.ranks() {
        graph_state(collection, &store, &stats, graph.as_ref())?
    } else {
        format!(
            "none: the {} profile ranks nothing (`{}` builds one)",
            profile.name(),
            advised_command(collection, "index --profile full")
        )
    };
    let registry = Registry::for_profile(profile);
    let current = registry.signatures();
    let outdated_feature_rows = stats
        .feature_versions
        .iter()
        .filter(|(f, v, p, _)| !crate::store::is_searched(Some(&current), f, *v, p))
        .map(|row| row.3)
        .sum();
    // a row of another profile's signature is no vector for this one's searches
    let missing_families = registry
        .families()
        .into_iter()
        .zip(&current)
        .map(|(name, signature)| {
            let this = std::slice::from_ref(signature);
            let have: u64 = stats
                .feature_versions
                .iter()
                .filter(|row| crate::store::is_searched(Some(this), &row.0, row.1, &row.2))
                .map(|row| row.3)
                .sum();
            (name, stats.images.saturating_sub(have))
        })
        .filter(|(_, missing)| *missing > 0)
        .collect();
    Ok(StatusReport {
        roots,
        profile,
        walk_options: collection.walk_options(&store)?.unwrap_or_default(),
        families: registry.families(),
        working_size: registry.working_size(),
        outdated_feature_rows,
        missing_families,
        hnsw,
        graph,
        bytes_on_disk: dir_size(collection.dir()),
        integrity,
        last_run: store.last_run()?,
        writer_running: writer.is_some(),
        writer: writer.flatten(),
        failures,
        stats,
    })
}

/// The graph's state in one phrase, with what to do about it.
fn graph_state(
    collection: &Collection,
    store: &Store,
    stats: &StoreStats,
    record: Option<&DumpRecord>,
) -> Result<String> {
    let index = advised_command(collection, "index");
    let r = match record {
        None => return Ok(format!("missing (run `{index}`)")),
        Some(r) if r.data_version != stats.data_version => {
            return Ok(format!(
                "stale: the index changed since it was built (run `{index}`)"
            ));
        }
        Some(r) => r,
    };
    if let Err(e) = AnnIndex::verify(&ann_dir(collection.dir()), r) {
        return Ok(format!("damaged ({e}); `{index}` rebuilds it"));
    }
    let projection = r.projection.as_ref().and_then(|_| {
        let path = ann_dir(collection.dir())
            .join(&r.folder)
            .join(PROJECTION_FILE);
        let bytes = std::fs::read(path).ok()?;
        Projection::from_bytes(&bytes).ok()
    });
    let updates = if r.updates > 0 {
        format!(
            "; updated in place {} since its full build of {}, {} hidden",
            counted(r.updates as usize, "time", "times"),
            counted(r.built_count, "image", "images"),
            counted(r.hidden.len(), "point", "points")
        )
    } else {
        String::new()
    };
    let augmentation = if r.params.dba > 0 {
        format!(
            "; stored vectors averaged with {}",
            counted(r.params.dba, "neighbour", "neighbours")
        )
    } else if collection.ann_params(store)?.dba > 0 {
        format!("; no augmentation (the next `{index}` adds it)")
    } else {
        "; no augmentation (index --dba 0)".to_string()
    };
    Ok(match projection {
        Some(p) => format!(
            "current ({}; {} dimensions, PCA to {} in the graph, {:.1}% of variance{augmentation}{updates})",
            counted(r.images(), "image", "images"),
            r.dim,
            p.dim_out(),
            100.0 * p.explained()
        ),
        None => format!(
            "current ({}, {} dimensions{augmentation}{updates})",
            counted(r.images(), "image", "images"),
            r.dim
        ),
    })
}

/// SQLite's integrity check, then every stored vector's: "ok" or what is wrong.
pub(crate) fn check_index(store: &Store) -> Result<String> {
    const SHOWN: usize = 5;
    let mut problems = Vec::new();
    if let Err(e) = store.integrity_check() {
        problems.push(e.to_string());
    }
    let damaged = store.check_vectors()?;
    if !damaged.is_empty() {
        let ids: Vec<i64> = damaged.iter().take(SHOWN).map(|d| d.image_id).collect();
        let paths = store.paths(&ids)?;
        let mut first: Vec<String> = damaged
            .iter()
            .take(SHOWN)
            .map(|d| {
                let path = paths
                    .get(&d.image_id)
                    .cloned()
                    .unwrap_or_else(|| PathBuf::from(format!("image id {}", d.image_id)));
                d.to_error(&path).to_string()
            })
            .collect();
        if damaged.len() > SHOWN {
            first.push(format!("... and {} more", damaged.len() - SHOWN));
        }
        problems.push(format!(
            "{}, left out of searches until `{}` extracts {} again: {}",
            counted(
                damaged.len(),
                "damaged stored vector",
                "damaged stored vectors"
            ),
            advised_command(store.index_dir(), "index --repair"),
            crate::text::for_count(damaged.len(), "its image", "their images"),
            first.join("; ")
        ));
    }
    Ok(if problems.is_empty() {
        "ok".to_string()
    } else {
        problems.join("; ")
    })
}

/// Bytes of every file below `dir` (unreadable entries count zero).
pub(crate) fn dir_size(dir: &Path) -> u64 {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .flatten()
        .filter_map(|e| e.metadata().ok())
        .filter(|m| m.is_file())
        .map(|m| m.len())
        .sum()
}
