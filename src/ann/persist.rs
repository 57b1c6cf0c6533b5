//! The graph's dump: writing, verifying and loading it; naming and cleaning up dump folders.

use std::path::{Path, PathBuf};

use hnsw_rs::prelude::{AnnT, HnswIo};

use super::{AnnBuilder, AnnIndex, AnnParams, FusedL2, scaled_ef};
use crate::error::{Error, Result};
use crate::pca::Projection;

/// The PCA projection's file inside a dump folder.
pub(crate) const PROJECTION_FILE: &str = "projection.bin";

/// Basename of the two hnsw_rs files inside a dump folder.
const GRAPH_BASENAME: &str = "graph";

/// File written first into every dump folder: with the folder's name pattern, it tells
/// lookalike's own folders from anything else found under `ann/`.
pub(crate) const DUMP_MARKER_FILE: &str = "lookalike-dump";

/// The marker file's exact content.
const DUMP_MARKER: &[u8] = b"HNSW dump written by lookalike; removed by lookalike when replaced\n";

/// Every file lookalike writes into a dump folder; clean-up removes these names and no other.
const DUMP_FILES: [&str; 3] = ["graph.hnsw.data", "graph.hnsw.graph", PROJECTION_FILE];

/// What SQLite records about a dump, checked before loading it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub(crate) struct DumpRecord {
    /// Folder (relative to the collection's `ann/`) holding the two hnsw_rs files.
    pub(crate) folder: String,
    /// Basename hnsw_rs used.
    pub(crate) basename: String,
    pub(crate) data_blake3: String,
    pub(crate) graph_blake3: String,
    pub(crate) data_len: u64,
    pub(crate) graph_len: u64,
    /// Number of points.
    pub(crate) count: usize,
    pub(crate) dim: usize,
    /// The store's data version the graph was built from.
    pub(crate) data_version: u64,
    /// The fusion the vectors were built with.
    pub(crate) fusion: String,
    pub(crate) params: AnnParams,
    /// Checksum and length of the PCA projection file, when the graph holds projected vectors.
    #[serde(default)]
    pub(crate) projection: Option<(String, u64)>,
    /// Data ids of points left in the graph but never returned (removed or changed images).
    #[serde(default)]
    pub(crate) hidden: Vec<usize>,
    /// In-place updates since the graph was last built in full.
    #[serde(default)]
    pub(crate) updates: u32,
    /// Points of that full build (0 in records written before in-place updates: `count`).
    #[serde(default)]
    pub(crate) built_count: usize,
    /// True when images of equal vectors share one point (false in records written before:
    /// such a graph is rebuilt by the next `index` run).
    #[serde(default)]
    pub(crate) shares_points: bool,
    /// Images sharing a point, by the point's data id (see `AnnIndex::groups`).
    #[serde(default)]
    pub(crate) groups: Vec<(usize, Vec<i64>)>,
}

impl DumpRecord {
    /// Images the graph returns: its visible points, and the further images sharing them.
    pub(crate) fn images(&self) -> usize {
        let shared: usize = self
            .groups
            .iter()
            .map(|g| g.1.len().saturating_sub(1))
            .sum();
        self.count.saturating_sub(self.hidden.len()) + shared
    }
}

/// True for the names `dump` gives its folders: `v<version>-<hex nanoseconds>-<process id>`.
fn is_dump_folder_name(name: &str) -> bool {
    let Some(rest) = name.strip_prefix('v') else {
        return false;
    };
    let parts: Vec<&str> = rest.split('-').collect();
    let digits = |s: &str, radix: u32| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_digit(radix) && !c.is_ascii_uppercase())
    };
    parts.len() == 3 && digits(parts[0], 10) && digits(parts[1], 16) && digits(parts[2], 10)
}

/// True when `dir` is a real folder (not a link) holding lookalike's marker file.
pub(crate) fn is_own_dump(dir: &Path) -> bool {
    let marker = dir.join(DUMP_MARKER_FILE);
    std::fs::symlink_metadata(dir).is_ok_and(|m| m.is_dir())
        && std::fs::symlink_metadata(&marker)
            .is_ok_and(|m| m.is_file() && m.len() == DUMP_MARKER.len() as u64)
        && std::fs::read(&marker).is_ok_and(|b| b == DUMP_MARKER)
}

/// Removes a dump folder lookalike wrote: only the file names it writes, then the marker and
/// the folder if nothing else is left. Anything else leaves the folder in place.
fn remove_dump_folder(dir: &Path) {
    if !is_own_dump(dir) {
        return;
    }
    for name in DUMP_FILES {
        let path = dir.join(name);
        if std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_file()) {
            let _ = std::fs::remove_file(&path);
        }
    }
    let only_marker = std::fs::read_dir(dir).is_ok_and(|entries| {
        let names: Vec<_> = entries.flatten().map(|e| e.file_name()).collect();
        names.len() == 1 && names[0] == DUMP_MARKER_FILE
    });
    if only_marker {
        let _ = std::fs::remove_file(dir.join(DUMP_MARKER_FILE));
        // Fails, harmlessly, if something appeared meanwhile.
        let _ = std::fs::remove_dir(dir);
    }
}

fn file_blake3(path: &Path) -> Result<(String, u64)> {
    let mut hasher = blake3::Hasher::new();
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let len = file.metadata().map_err(|e| Error::io(path, e))?.len();
    hasher.update_reader(file).map_err(|e| Error::io(path, e))?;
    Ok((hasher.finalize().to_hex().to_string(), len))
}

impl AnnIndex {
    /// Writes the graph into a new folder under `ann_dir` and returns what to record in SQLite.
    /// The folder is made by this call (never one that exists), its marker file written first,
    /// so that clean-up can tell it is lookalike's; on failure what was written is removed. An
    /// empty graph writes no files: its record alone describes it.
    pub(crate) fn dump(
        &self,
        ann_dir: &Path,
        data_version: u64,
        fusion: &str,
    ) -> Result<DumpRecord> {
        let mut record = DumpRecord {
            folder: String::new(),
            basename: String::new(),
            data_blake3: String::new(),
            graph_blake3: String::new(),
            data_len: 0,
            graph_len: 0,
            count: self.hnsw.get_nb_point(),
            dim: self.dim,
            data_version,
            fusion: fusion.to_string(),
            params: self.params,
            projection: None,
            hidden: self.hidden.clone(),
            updates: self.updates,
            built_count: self.built_count,
            shares_points: true,
            groups: self.groups(),
        };
        if record.count == 0 {
            return Ok(record);
        }
        std::fs::create_dir_all(ann_dir).map_err(|e| Error::io(ann_dir, e))?;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let folder = format!("v{data_version}-{nanos:x}-{}", std::process::id());
        let dir = ann_dir.join(&folder);
        std::fs::create_dir(&dir).map_err(|e| Error::io(&dir, e))?;
        let marker = dir.join(DUMP_MARKER_FILE);
        let written = std::fs::File::options()
            .write(true)
            .create_new(true)
            .open(&marker)
            .and_then(|mut f| std::io::Write::write_all(&mut f, DUMP_MARKER))
            .map_err(|e| Error::io(&marker, e));
        if let Err(e) = written {
            // Only the empty folder this call made is removed.
            let _ = std::fs::remove_dir(&dir);
            return Err(e);
        }
        match self.dump_files(&dir) {
            Ok(files) => {
                record.folder = folder;
                (record.basename, record.projection) = (GRAPH_BASENAME.to_string(), files.2);
                (record.data_blake3, record.data_len) = files.0;
                (record.graph_blake3, record.graph_len) = files.1;
                Ok(record)
            }
            Err(e) => {
                remove_dump_folder(&dir);
                Err(e)
            }
        }
    }

    /// Writes the graph's files into `dir` (a new dump folder); returns the checksums and
    /// lengths of the data, graph and projection files.
    #[allow(clippy::type_complexity)]
    fn dump_files(
        &self,
        dir: &Path,
    ) -> Result<((String, u64), (String, u64), Option<(String, u64)>)> {
        let basename = self
            .hnsw
            .file_dump(dir, GRAPH_BASENAME)
            .map_err(|e| Error::io(dir, dump_error(dir, &*e)))?;
        if basename != GRAPH_BASENAME {
            return Err(Error::Internal(format!(
                "{}: the graph was dumped as '{basename}', not '{GRAPH_BASENAME}'",
                crate::path_repr::shown(dir)
            )));
        }
        let data = dir.join(format!("{basename}.hnsw.data"));
        let graph = dir.join(format!("{basename}.hnsw.graph"));
        for p in [&data, &graph] {
            std::fs::File::open(p)
                .and_then(|f| f.sync_all())
                .map_err(|e| Error::io(p, e))?;
        }
        let projection = match &self.projection {
            Some(p) => {
                let path = dir.join(PROJECTION_FILE);
                std::fs::File::options()
                    .write(true)
                    .create_new(true)
                    .open(&path)
                    .and_then(|mut f| {
                        std::io::Write::write_all(&mut f, &p.to_bytes())?;
                        f.sync_all()
                    })
                    .map_err(|e| Error::io(&path, e))?;
                Some(file_blake3(&path)?)
            }
            None => None,
        };
        Ok((file_blake3(&data)?, file_blake3(&graph)?, projection))
    }

    /// Checks a dump's files against its record: sizes first, then checksums.
    pub(crate) fn verify(ann_dir: &Path, record: &DumpRecord) -> Result<()> {
        if record.count == 0 {
            // An empty graph has no files.
            return Ok(());
        }
        let dir = ann_dir.join(&record.folder);
        let data = dir.join(format!("{}.hnsw.data", record.basename));
        let graph = dir.join(format!("{}.hnsw.graph", record.basename));
        let projection = dir.join(PROJECTION_FILE);
        let mut files = vec![
            (&data, record.data_len, &record.data_blake3),
            (&graph, record.graph_len, &record.graph_blake3),
        ];
        if let Some((sum, len)) = &record.projection {
            files.push((&projection, *len, sum));
        }
        for (path, len, sum) in files {
            let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
            if meta.len() != len {
                return Err(Error::Corrupt {
                    path: path.to_path_buf(),
                    reason: format!(
                        "{}, expected {len}; the dump will be rebuilt",
                        crate::text::counted(meta.len() as usize, "byte", "bytes")
                    ),
                });
            }
            let (actual, _) = file_blake3(path)?;
            if actual != *sum {
                return Err(Error::Corrupt {
                    path: path.to_path_buf(),
                    reason: "checksum mismatch; the dump will be rebuilt".into(),
                });
            }
        }
        Ok(())
    }

    /// Loads a dump after verifying it. A failed check is an error, never a process exit.
    pub(crate) fn load(ann_dir: &Path, record: &DumpRecord) -> Result<AnnIndex> {
        Self::verify(ann_dir, record)?;
        if record.count == 0 {
            let builder = AnnBuilder::searchable(0, record.dim, None, record.params);
            return Ok(AnnIndex {
                updates: record.updates,
                ..builder.finish_plain()
            });
        }
        let dir = ann_dir.join(&record.folder);
        // hnsw_rs ties the graph's lifetime to its loader; the loader is small and lives as long
        // as the process, so it is leaked rather than made self-referential.
        let io: &'static mut HnswIo = Box::leak(Box::new(HnswIo::new(&dir, &record.basename)));
        let mut hnsw = io.load_hnsw::<f32, FusedL2>().map_err(|e| Error::Corrupt {
            path: dir.clone(),
            reason: e.to_string(),
        })?;
        if hnsw.get_nb_point() != record.count {
            return Err(Error::Corrupt {
                path: dir.clone(),
                reason: format!(
                    "{}, expected {}",
                    crate::text::counted(hnsw.get_nb_point(), "point", "points"),
                    record.count
                ),
            });
        }
        let projection = match record.projection {
            Some(_) => {
                let path = dir.join(PROJECTION_FILE);
                let bytes = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
                let p = Projection::from_bytes(&bytes)?;
                if p.dim_in() != record.dim
                    || p.dim_out() != hnsw.get_point_indexation().get_data_dimension()
                {
                    return Err(Error::InvalidInput(format!(
                        "{}: projection {}->{} does not fit the graph",
                        crate::path_repr::shown(&path),
                        p.dim_in(),
                        p.dim_out()
                    )));
                }
                Some(p)
            }
            None => None,
        };
        let mut hidden = record.hidden.clone();
        hidden.sort_unstable();
        hidden.dedup();
        if hidden.len() > record.count {
            return Err(Error::InvalidInput(format!(
                "{}: {} of {}",
                crate::path_repr::shown(&dir),
                crate::text::counted(hidden.len(), "hidden point", "hidden points"),
                record.count
            )));
        }
        let count = record.count - hidden.len();
        hnsw.set_searching_mode(true);
        let mut ann = AnnIndex {
            hnsw,
            count,
            hidden,
            groups: record.groups.iter().cloned().collect(),
            updates: record.updates,
            built_count: if record.built_count == 0 {
                record.count
            } else {
                record.built_count
            },
            dim: record.dim,
            projection,
            ef: scaled_ef(record.params.ef_search, count),
            params: record.params,
        };
        ann.check_groups().map_err(|reason| Error::Corrupt {
            path: dir.clone(),
            reason: format!("{reason}; the dump will be rebuilt"),
        })?;
        ann.recount();
        Ok(ann)
    }

    /// Checks the recorded groups against the graph: each names a visible point and sorted
    /// images, and no image is returned by two points.
    fn check_groups(&self) -> std::result::Result<(), String> {
        let mut nodes = std::collections::HashSet::new();
        let mut images = std::collections::HashSet::new();
        for p in self.hnsw.get_point_indexation().into_iter() {
            let node = p.get_origin_id();
            if self.is_hidden(node) {
                continue;
            }
            nodes.insert(node);
            for &id in self.images_of(node).iter() {
                if !images.insert(id) {
                    return Err(format!("image {id} is held by two points"));
                }
            }
        }
        for (node, g) in &self.groups {
            if !nodes.contains(node) {
                return Err(format!(
                    "a group names point {node}, which is not searchable"
                ));
            }
            if g.is_empty() || g.windows(2).any(|w| w[0] >= w[1]) {
                return Err(format!("the group of point {node} is empty or unsorted"));
            }
        }
        Ok(())
    }

    /// Deletes lookalike's own dump folders other than `keep` (left-overs of earlier or
    /// interrupted runs): folders named as `dump` names them and holding its marker file, and
    /// in them only the files a dump writes. Anything else under `ann_dir` is left alone.
    pub(crate) fn remove_other_dumps(ann_dir: &Path, keep: &str) {
        let Ok(entries) = std::fs::read_dir(ann_dir) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            if let Some(name) = name.to_str()
                && name != keep
                && is_dump_folder_name(name)
            {
                remove_dump_folder(&entry.path());
            }
        }
    }
}

/// The collection's `ann/` folder.
pub(crate) fn ann_dir(collection: &Path) -> PathBuf {
    collection.join("ann")
}

/// The I/O error behind a failed graph dump. hnsw_rs reports most write failures as
/// "unexpected error", so when no I/O error is attached, a refusal of the disk is told by
/// its signs: a file in `dir` at the file-size limit, or no space left under `dir`.
fn dump_error(dir: &Path, e: &(dyn std::error::Error + 'static)) -> std::io::Error {
    let mut cause = Some(e);
    while let Some(c) = cause {
        if let Some(io) = c.downcast_ref::<std::io::Error>() {
            return std::io::Error::new(io.kind(), io.to_string());
        }
        cause = c.source();
    }
    let text = e.to_string();
    #[cfg(unix)]
    {
        use std::io::ErrorKind;
        let limit = rustix::process::getrlimit(rustix::process::Resource::Fsize).current;
        let largest = std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .filter_map(|entry| entry.ok()?.metadata().ok())
            .map(|m| m.len())
            .max()
            .unwrap_or(0);
        if limit.is_some_and(|limit| largest >= limit) {
            return std::io::Error::new(
                ErrorKind::FileTooLarge,
                format!("{text}: a file reached the file-size limit"),
            );
        }
        if rustix::fs::statvfs(dir).is_ok_and(|v| v.f_bavail.saturating_mul(v.f_frsize) < 1 << 20) {
            return std::io::Error::new(
                ErrorKind::StorageFull,
                format!("{text}: no space left on the device"),
            );
        }
    }
    std::io::Error::other(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ann::DEFAULT_DBA;
    use crate::ann::tests::random_points;

    /// The disk's refusal keeps its kind through the graph library's error, so the command
    /// says to free space (exit 2) rather than report a bare failure.
    #[test]
    fn a_refused_dump_keeps_the_kind_of_its_io_error() {
        #[derive(Debug)]
        struct Wrapped(std::io::Error);
        impl std::fmt::Display for Wrapped {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("dump failed")
            }
        }
        impl std::error::Error for Wrapped {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.0)
            }
        }
        let dir = tempfile::tempdir().unwrap();
        let full = Wrapped(std::io::Error::from(std::io::ErrorKind::StorageFull));
        let e = dump_error(dir.path(), &full);
        assert_eq!(e.kind(), std::io::ErrorKind::StorageFull);
        assert!(Error::io(dir.path(), e).is_out_of_space());
    }

    #[test]
    fn dump_verify_load_and_detect_damage() {
        let dir = tempfile::tempdir().unwrap();
        let points = random_points(300, 8, 7);
        let index = AnnIndex::build(&points, AnnParams::default()).unwrap();
        let rec = index.dump(dir.path(), 3, "color=1").unwrap();
        let loaded = AnnIndex::load(dir.path(), &rec).unwrap();
        assert_eq!(loaded.len(), 300);
        assert!(loaded.is_augmented() && rec.params.dba == DEFAULT_DBA);
        assert_eq!(loaded.graph_points(), index.graph_points());
        assert_eq!(loaded.search(&points[5].1, 1).unwrap()[0].0, points[5].0);
        // Flip one byte: detected before hnsw_rs sees it.
        let data = dir
            .path()
            .join(&rec.folder)
            .join(format!("{}.hnsw.data", rec.basename));
        let mut bytes = std::fs::read(&data).unwrap();
        let mid = bytes.len() / 2;
        bytes[mid] ^= 0xFF;
        std::fs::write(&data, &bytes).unwrap();
        assert!(AnnIndex::load(dir.path(), &rec).is_err());
        // Truncate: detected by size.
        std::fs::write(&data, &bytes[..10]).unwrap();
        assert!(
            AnnIndex::load(dir.path(), &rec)
                .unwrap_err()
                .to_string()
                .contains("expected")
        );
    }

    #[test]
    fn projected_graph_dumps_loads_and_detects_a_damaged_projection() {
        let dir = tempfile::tempdir().unwrap();
        let points = random_points(300, 200, 11);
        let params = AnnParams {
            pca_dims: 16,
            ..AnnParams::default()
        };
        let index = AnnIndex::build(&points, params).unwrap();
        assert_eq!((index.dim(), index.graph_dim()), (200, 16));
        let full = |id: i64| Some(points[(id - 1) as usize].1.as_slice());
        let hit = index.search_reranked(&points[7].1, 3, full).unwrap();
        assert_eq!(
            hit[0],
            (points[7].0, 0.0),
            "exact distance after re-ranking"
        );

        let rec = index.dump(dir.path(), 1, "color=1").unwrap();
        assert!(rec.projection.is_some());
        let loaded = AnnIndex::load(dir.path(), &rec).unwrap();
        assert_eq!(loaded.graph_dim(), 16);
        assert_eq!(loaded.search_reranked(&points[7].1, 3, full).unwrap(), hit);

        let proj = dir.path().join(&rec.folder).join(PROJECTION_FILE);
        let mut bytes = std::fs::read(&proj).unwrap();
        bytes[30] ^= 0x55;
        std::fs::write(&proj, &bytes).unwrap();
        let err = AnnIndex::load(dir.path(), &rec).unwrap_err().to_string();
        assert!(err.contains("checksum mismatch"), "{err}");
        std::fs::remove_file(&proj).unwrap();
        assert!(AnnIndex::load(dir.path(), &rec).is_err());
    }

    /// Writes a file, making its folder.
    fn put(path: &Path, bytes: &[u8]) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }

    #[test]
    fn dump_clean_up_removes_only_its_own_folders_and_files() {
        let tmp = tempfile::tempdir().unwrap();
        let ann = tmp.path().join("ann");
        let index = AnnIndex::build(&random_points(50, 8, 3), AnnParams::default()).unwrap();
        let old = index.dump(&ann, 1, "w").unwrap();
        let kept = index.dump(&ann, 2, "w").unwrap();
        assert!(ann.join(&old.folder).join(DUMP_MARKER_FILE).is_file());
        // A user's folders: any name, a dump's name without the marker, a marker under
        // another name; and a user's file inside a real dump folder.
        put(&ann.join("holiday/beach.jpg"), b"photo");
        put(&ann.join("v7-abc-12/graph.hnsw.data"), b"mine");
        put(&ann.join("v7-abc-12/photo.jpg"), b"photo");
        put(&ann.join("v8-abc-12x").join(DUMP_MARKER_FILE), DUMP_MARKER);
        put(&ann.join("v8-abc-12x/graph.hnsw.data"), b"mine");
        put(
            &ann.join("v9-abc-12").join(DUMP_MARKER_FILE),
            b"something else",
        );
        put(&ann.join("v9-abc-12/graph.hnsw.graph"), b"mine");
        put(&ann.join("notes.txt"), b"text");
        let crowded = index.dump(&ann, 3, "w").unwrap();
        put(&ann.join(&crowded.folder).join("photo.jpg"), b"photo");
        AnnIndex::remove_other_dumps(&ann, &kept.folder);

        assert!(!ann.join(&old.folder).exists(), "an old dump is removed");
        assert!(AnnIndex::load(&ann, &kept).is_ok(), "the kept dump stays");
        for (path, bytes) in [
            ("holiday/beach.jpg", &b"photo"[..]),
            ("v7-abc-12/graph.hnsw.data", b"mine"),
            ("v7-abc-12/photo.jpg", b"photo"),
            ("v8-abc-12x/graph.hnsw.data", b"mine"),
            ("v9-abc-12/graph.hnsw.graph", b"mine"),
            ("notes.txt", b"text"),
        ] {
            assert_eq!(std::fs::read(ann.join(path)).unwrap(), bytes, "{path}");
        }
        // The crowded dump loses its own files only: the user's file and the folder stay.
        let crowded = ann.join(&crowded.folder);
        assert_eq!(std::fs::read(crowded.join("photo.jpg")).unwrap(), b"photo");
        assert!(!crowded.join("graph.hnsw.data").exists());
        assert!(!crowded.join("graph.hnsw.graph").exists());
    }

    #[test]
    fn dump_folder_names_follow_one_exact_pattern() {
        for name in ["v0-1f-7", "v12-abcdef0123-99999"] {
            assert!(is_dump_folder_name(name), "{name}");
        }
        for name in [
            "holiday",
            "v1-1f",
            "v1-1f-7-2",
            "v-1f-7",
            "v1--7",
            "v1-1F-7",
            "v1-xy-7",
            "w1-1f-7",
            "v1-1f-7 ",
            "V1-1f-7",
        ] {
            assert!(!is_dump_folder_name(name), "{name}");
        }
    }

    #[test]
    fn an_empty_graph_dumps_no_files_and_loads_back() {
        let tmp = tempfile::tempdir().unwrap();
        let ann = tmp.path().join("ann");
        let index = AnnIndex::build(&[], AnnParams::default()).unwrap();
        assert!(index.is_empty());
        let rec = index.dump(&ann, 4, "w").unwrap();
        assert_eq!(rec.count, 0);
        assert!(!ann.exists(), "no files for an empty graph");
        let loaded = AnnIndex::load(&ann, &rec).unwrap();
        assert!(loaded.is_empty());
        assert!(loaded.search(&[0.0; 8], 5).unwrap().is_empty());
        assert!(loaded.image_ids().is_empty());
    }
}
