//! Model-based test of the index as a mirror of the disk. A seeded generator applies random
//! file operations (create, copy, move, rename, same-size rewrite, touch, delete, symlinks,
//! swaps and rotations of the contents of two or three files, a copy whose source then trades
//! contents with another file or is overwritten by one)
//! to a tree with nested folders, tracks and forgets folders, runs `index` between steps
//! (sometimes killing it at a random moment) and checks the database against a model:
//! every image file under the tracked folders exactly once with the hash of its bytes, no row
//! for anything else, nothing outside the index folder changed, queries naming only files on
//! disk, and a second run right after a complete one changing nothing. `LOOKALIKE_MODEL_OPS` sets the number of file operations per seed (default 60),
//! `LOOKALIKE_MODEL_SEEDS` the seeds (comma-separated); a failure names its seed and the steps.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use lookalike::store::Store;

/// Seeded draws over SplitMix64, so a failing run can be replayed.
struct Rng(lookalike::rng::SplitMix64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0.next_u64()
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> Option<&'a T> {
        (!items.is_empty()).then(|| &items[self.below(items.len())])
    }
}

/// What a path on disk holds, as the model knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Entry {
    /// Index into the content pool.
    File(usize),
    /// A symbolic link to a path (not followed by `index`).
    Link(PathBuf),
}

/// Contents: images of one byte size (so rewrites can keep the size), plus files that are
/// not images.
fn content_pool() -> Vec<(Vec<u8>, bool)> {
    let mut pool = Vec::new();
    for seed in 0..10u32 {
        let img = image::RgbImage::from_fn(40, 30, |x, y| {
            let v = (x * (seed + 2) + y * (seed * 5 + 1)) % 256;
            image::Rgb([v as u8, (255 - v) as u8, (seed * 25) as u8])
        });
        let mut bytes = Vec::new();
        img.write_to(
            &mut std::io::Cursor::new(&mut bytes),
            image::ImageFormat::Bmp,
        )
        .unwrap();
        pool.push((bytes, true));
    }
    let size = pool[0].0.len();
    assert!(pool.iter().all(|p| p.0.len() == size));
    pool.push((b"not an image at all".to_vec(), false));
    let mut damaged = pool[0].0.clone();
    damaged.truncate(60);
    pool.push((damaged, false));
    pool
}

const FOLDERS: &[&str] = &["w", "w/a", "w/a/b", "w/c", "w/c/d"];
const NAMES: &[&str] = &["p.bmp", "q.bmp", "r.jpg", "s.png", "ann/t.bmp", "u v.bmp"];

struct Model {
    seed: u64,
    base: PathBuf,
    index_dir: PathBuf,
    bin: PathBuf,
    pool: Vec<(Vec<u8>, bool)>,
    /// Every path under `base/w` (relative to base) and what it holds.
    disk: BTreeMap<PathBuf, Entry>,
    tracked: BTreeSet<PathBuf>,
    log: Vec<String>,
    rng: Rng,
    /// The index has changed since the database was last compared with the model.
    clock: u64,
}

impl Model {
    fn fail(&self, what: &str) -> ! {
        let tail: Vec<&String> = self.log.iter().rev().take(40).collect();
        panic!(
            "seed {}: {what}\nlast steps (newest first):\n  {}",
            self.seed,
            tail.iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join("\n  ")
        );
    }

    fn abs(&self, rel: &Path) -> PathBuf {
        self.base.join(rel)
    }

    fn files(&self) -> Vec<PathBuf> {
        self.disk
            .iter()
            .filter(|(_, e)| matches!(e, Entry::File(_)))
            .map(|(p, _)| p.clone())
            .collect()
    }

    fn write(&mut self, rel: &Path, content: usize) {
        let abs = self.abs(rel);
        std::fs::create_dir_all(abs.parent().unwrap()).unwrap();
        if let Some(Entry::Link(_)) = self.disk.get(rel) {
            std::fs::remove_file(&abs).unwrap();
        }
        std::fs::write(&abs, &self.pool[content].0).unwrap();
        self.disk.insert(rel.to_path_buf(), Entry::File(content));
    }

    /// One random file operation.
    fn step(&mut self) {
        let folder = PathBuf::from(*self.rng.pick(FOLDERS).unwrap());
        let name = *self.rng.pick(NAMES).unwrap();
        let target = folder.join(name);
        let files = self.files();
        let op = self.rng.below(116);
        match op {
            0..=24 => {
                let c = self.rng.below(self.pool.len());
                self.log
                    .push(format!("create {} <- content {c}", target.display()));
                self.write(&target, c);
            }
            25..=39 => {
                if let Some(src) = self.rng.pick(&files).cloned() {
                    let Entry::File(c) = self.disk[&src] else {
                        unreachable!()
                    };
                    self.log
                        .push(format!("copy {} -> {}", src.display(), target.display()));
                    self.write(&target, c);
                }
            }
            40..=51 => {
                if let Some(src) = self.rng.pick(&files).cloned()
                    && src != target
                {
                    self.log
                        .push(format!("move {} -> {}", src.display(), target.display()));
                    let dst = self.abs(&target);
                    std::fs::create_dir_all(dst.parent().unwrap()).unwrap();
                    if let Some(Entry::Link(_)) = self.disk.get(&target) {
                        std::fs::remove_file(&dst).unwrap();
                    }
                    std::fs::rename(self.abs(&src), &dst).unwrap();
                    let e = self.disk.remove(&src).unwrap();
                    self.disk.insert(target, e);
                }
            }
            52..=66 => {
                // Same-size rewrite; half the time the old modification time is put back.
                if let Some(src) = self.rng.pick(&files).cloned() {
                    let c = self.rng.below(10);
                    let abs = self.abs(&src);
                    let mtime = std::fs::metadata(&abs).unwrap().modified().unwrap();
                    self.write(&src, c);
                    let keep = self.rng.below(2) == 0;
                    if keep {
                        std::fs::File::options()
                            .write(true)
                            .open(&abs)
                            .unwrap()
                            .set_modified(mtime)
                            .unwrap();
                    }
                    self.log.push(format!(
                        "rewrite {} <- content {c}{}",
                        src.display(),
                        if keep { " (mtime kept)" } else { "" }
                    ));
                }
            }
            67..=72 => {
                if let Some(src) = self.rng.pick(&files).cloned() {
                    let abs = self.abs(&src);
                    let shift = Duration::from_secs(self.rng.below(1000) as u64);
                    let when = std::time::SystemTime::now() - shift;
                    std::fs::File::options()
                        .write(true)
                        .open(&abs)
                        .unwrap()
                        .set_modified(when)
                        .unwrap();
                    self.log.push(format!("touch {}", src.display()));
                }
            }
            73..=86 => {
                if let Some(src) = self.rng.pick(&files).cloned() {
                    self.log.push(format!("delete {}", src.display()));
                    std::fs::remove_file(self.abs(&src)).unwrap();
                    self.disk.remove(&src);
                }
            }
            87..=90 => {
                let dir = PathBuf::from(*self.rng.pick(&FOLDERS[1..]).unwrap());
                // Deleting the folder that holds the index would delete the index itself.
                if self.index_dir.starts_with(self.abs(&dir)) {
                    return;
                }
                self.log.push(format!("delete folder {}", dir.display()));
                let abs = self.abs(&dir);
                if abs.exists() {
                    std::fs::remove_dir_all(&abs).unwrap();
                }
                self.disk.retain(|p, _| !p.starts_with(&dir));
            }
            100..=107 => {
                // Paths trade contents in a cycle (a swap, or a rotation of three), by renames.
                let mut ring: Vec<PathBuf> = Vec::new();
                for _ in 0..2 + self.rng.below(2) {
                    if let Some(p) = self.rng.pick(&files)
                        && !ring.contains(p)
                    {
                        ring.push(p.clone());
                    }
                }
                if ring.len() < 2 {
                    return;
                }
                self.log.push(format!(
                    "rotate {}",
                    ring.iter()
                        .map(|p| p.display().to_string())
                        .collect::<Vec<_>>()
                        .join(" -> ")
                ));
                let parked = self.abs(Path::new("w/.parked"));
                std::fs::rename(self.abs(&ring[ring.len() - 1]), &parked).unwrap();
                for i in (1..ring.len()).rev() {
                    std::fs::rename(self.abs(&ring[i - 1]), self.abs(&ring[i])).unwrap();
                }
                std::fs::rename(&parked, self.abs(&ring[0])).unwrap();
                let contents: Vec<Entry> = ring.iter().map(|p| self.disk[p].clone()).collect();
                for (i, p) in ring.iter().enumerate() {
                    let from = (i + ring.len() - 1) % ring.len();
                    self.disk.insert(p.clone(), contents[from].clone());
                }
            }
            108..=115 => {
                // A copy, then its source trades contents with another file or is overwritten
                // by one: the old row the copy would take its vectors from is replaced too.
                let Some(src) = self.rng.pick(&files).cloned() else {
                    return;
                };
                if src == target {
                    return;
                }
                let Entry::File(c) = self.disk[&src] else {
                    unreachable!()
                };
                self.write(&target, c);
                let others: Vec<PathBuf> = self
                    .files()
                    .into_iter()
                    .filter(|p| *p != src && *p != target)
                    .collect();
                let Some(other) = self.rng.pick(&others).cloned() else {
                    self.log
                        .push(format!("copy {} -> {}", src.display(), target.display()));
                    return;
                };
                let Entry::File(o) = self.disk[&other] else {
                    unreachable!()
                };
                if self.rng.below(2) == 0 {
                    let parked = self.abs(Path::new("w/.parked"));
                    std::fs::rename(self.abs(&src), &parked).unwrap();
                    std::fs::rename(self.abs(&other), self.abs(&src)).unwrap();
                    std::fs::rename(&parked, self.abs(&other)).unwrap();
                    self.disk.insert(src.clone(), Entry::File(o));
                    self.disk.insert(other.clone(), Entry::File(c));
                    self.log.push(format!(
                        "copy {} -> {}, then swap {} <-> {}",
                        src.display(),
                        target.display(),
                        src.display(),
                        other.display()
                    ));
                } else {
                    self.write(&src, o);
                    self.log.push(format!(
                        "copy {} -> {}, then copy {} -> {}",
                        src.display(),
                        target.display(),
                        other.display(),
                        src.display()
                    ));
                }
            }
            _ => {
                if let Some(src) = self.rng.pick(&files).cloned()
                    && !self.disk.contains_key(&target)
                {
                    self.log
                        .push(format!("symlink {} -> {}", target.display(), src.display()));
                    let abs = self.abs(&target);
                    std::fs::create_dir_all(abs.parent().unwrap()).unwrap();
                    std::os::unix::fs::symlink(self.abs(&src), &abs).unwrap();
                    self.disk.insert(target, Entry::Link(src));
                }
            }
        }
    }

    fn lookalike(&self) -> Command {
        let mut c = Command::new(&self.bin);
        c.current_dir(&self.base)
            .env_remove("LOOKALIKE_INDEX")
            .arg("--index-dir")
            .arg(&self.index_dir)
            .arg("-q")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        c
    }

    /// Runs `index` with these arguments; when `kill_after` is set, kills it then.
    fn index(&mut self, args: &[PathBuf], kill_after: Option<Duration>) -> bool {
        let mut cmd = self.lookalike();
        cmd.arg("index").args(args).args(["--profile", "fast"]);
        self.log.push(format!(
            "index {}{}",
            args.iter()
                .map(|a| a.display().to_string())
                .collect::<Vec<_>>()
                .join(" "),
            kill_after
                .map(|d| format!(" (killed after {d:?})"))
                .unwrap_or_default()
        ));
        self.clock += 1;
        let mut child = cmd.spawn().unwrap();
        if let Some(after) = kill_after {
            std::thread::sleep(after);
            let _ = child.kill();
            let _ = child.wait();
            return false;
        }
        let out = child.wait_with_output().unwrap();
        let code = out.status.code();
        // A refresh after a first run killed before it recorded its folder has none to refresh.
        if args.is_empty()
            && self.tracked.is_empty()
            && code == Some(2)
            && String::from_utf8_lossy(&out.stderr).contains("no folder is indexed yet")
        {
            return true;
        }
        // 0: all indexed; 3: some files are not images, or a tracked folder is missing.
        if code != Some(0) && code != Some(3) {
            self.fail(&format!(
                "index exited {code:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        true
    }

    /// Runs `index` again with these arguments right after a complete run, the disk unchanged:
    /// every file must already be indexed with its own content, so nothing is new, updated,
    /// moved, copied, removed or left for a later run.
    fn index_again_changes_nothing(&mut self, args: &[PathBuf]) {
        self.log.push(format!(
            "index {} (again)",
            args.iter()
                .map(|a| a.display().to_string())
                .collect::<Vec<_>>()
                .join(" ")
        ));
        let out = self
            .lookalike()
            .arg("index")
            .args(args)
            .args(["--profile", "fast", "--json"])
            .stdout(Stdio::piped())
            .output()
            .unwrap();
        let code = out.status.code();
        if code != Some(0) && code != Some(3) {
            self.fail(&format!(
                "index exited {code:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let changed: Vec<&str> = ["new", "updated", "moved", "duplicates", "removed"]
            .into_iter()
            .filter(|k| summary[*k] != 0)
            .collect();
        if !changed.is_empty() || summary["changing"] != serde_json::json!([]) {
            self.fail(&format!(
                "a second run changed {changed:?} (the first left them): {summary}"
            ));
        }
    }

    /// Checks the tree on disk against the model: lookalike changed nothing outside its folder.
    fn check_disk(&self) {
        let mut found = BTreeMap::new();
        for entry in walkdir::WalkDir::new(self.base.join("w")) {
            let entry = entry.unwrap();
            let abs = entry.path();
            if entry.file_type().is_dir() {
                continue;
            }
            let rel = abs.strip_prefix(&self.base).unwrap().to_path_buf();
            // lookalike's own files; the user's files in its folder are checked like others.
            if abs.starts_with(&self.index_dir) && !self.disk.contains_key(&rel) {
                continue;
            }
            let e = if entry.file_type().is_symlink() {
                Entry::Link(
                    std::fs::read_link(abs)
                        .unwrap()
                        .strip_prefix(&self.base)
                        .unwrap()
                        .to_path_buf(),
                )
            } else {
                let bytes = std::fs::read(abs).unwrap();
                match self.pool.iter().position(|p| p.0 == bytes) {
                    Some(c) => Entry::File(c),
                    None => self.fail(&format!(
                        "{} holds bytes lookalike did not write",
                        rel.display()
                    )),
                }
            };
            found.insert(rel, e);
        }
        if found != self.disk {
            self.fail(&format!(
                "the tree changed outside the index folder:\n disk:  {found:?}\n model: {:?}",
                self.disk
            ));
        }
    }

    /// Rows of the database as (relative path, content index); fails on a file stored twice.
    fn stored(&self) -> BTreeMap<PathBuf, usize> {
        // a first run killed before it made the database
        if self.tracked.is_empty() && !self.index_dir.join("lookalike.db").exists() {
            return BTreeMap::new();
        }
        let store = match Store::open_read_only(&self.index_dir.join("lookalike.db")) {
            Ok(s) => s,
            Err(e) => self.fail(&format!("cannot open the index: {e}")),
        };
        let roots = store.roots().unwrap();
        let mut out = BTreeMap::new();
        for e in store.catalog().unwrap() {
            let abs = roots[&e.root_id].join(&e.rel_path);
            let rel = abs.strip_prefix(&self.base).unwrap().to_path_buf();
            let content = self
                .pool
                .iter()
                .position(|p| *blake3::hash(&p.0).as_bytes() == e.hash)
                .unwrap_or(usize::MAX);
            if out.insert(rel.clone(), content).is_some() {
                self.fail(&format!("{} is stored twice", rel.display()));
            }
        }
        let tracked: BTreeSet<PathBuf> = roots
            .values()
            .map(|p| p.strip_prefix(&self.base).unwrap().to_path_buf())
            .collect();
        if tracked != self.tracked {
            self.fail(&format!("tracked {tracked:?}, expected {:?}", self.tracked));
        }
        out
    }

    /// What the database must hold for the files under `scope` after a complete walk of it.
    fn expected_under(&self, scope: &[PathBuf]) -> BTreeMap<PathBuf, usize> {
        self.disk
            .iter()
            .filter(|(p, _)| scope.iter().any(|s| p.starts_with(s)))
            .filter(|(p, _)| self.tracked.iter().any(|t| p.starts_with(t)))
            .filter_map(|(p, e)| match e {
                Entry::File(c) if self.pool[*c].1 => Some((p.clone(), *c)),
                _ => None,
            })
            .collect()
    }

    /// True when a tracked folder holding `path` (nested in another or not) is missing: its
    /// rows are kept (an unmounted disk looks the same) until it comes back or is forgotten.
    fn kept_while_missing(&self, path: &Path) -> bool {
        self.tracked
            .iter()
            .any(|t| path.starts_with(t) && !self.abs(t).is_dir())
    }

    /// After a complete run over `scope`: rows under it are exactly the image files under it
    /// (rows under a missing tracked folder aside); rows elsewhere are under tracked folders.
    fn check_index(&self, scope: &[PathBuf]) {
        let stored = self.stored();
        let under: BTreeMap<PathBuf, usize> = stored
            .iter()
            .filter(|(p, _)| scope.iter().any(|s| p.starts_with(s)))
            .filter(|(p, _)| !self.kept_while_missing(p))
            .map(|(p, c)| (p.clone(), *c))
            .collect();
        let expected = self.expected_under(scope);
        if under != expected {
            self.fail(&format!(
                "index differs from disk under {scope:?}:\n stored:   {under:?}\n expected: {expected:?}"
            ));
        }
        for p in stored.keys() {
            if !self.tracked.iter().any(|t| p.starts_with(t)) {
                self.fail(&format!(
                    "{} is stored but under no tracked folder",
                    p.display()
                ));
            }
        }
    }

    /// A query by an existing image names only files on disk.
    fn check_query(&mut self) {
        let images: Vec<PathBuf> = self
            .expected_under(&[PathBuf::from("w")])
            .into_keys()
            .collect();
        let Some(example) = self.rng.pick(&images).cloned() else {
            return;
        };
        let exact = self.rng.below(2) == 0;
        let mut cmd = self.lookalike();
        cmd.arg("query")
            .arg(self.abs(&example))
            .args(["--json", "-k", "50"]);
        if exact {
            cmd.arg("--exact");
        }
        cmd.stdout(Stdio::piped());
        let out = cmd.output().unwrap();
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            if err.contains("holds no images") {
                return;
            }
            self.fail(&format!("query {} failed: {err}", example.display()));
        }
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        for hit in json["hits"].as_array().unwrap() {
            let path = PathBuf::from(hit["path"].as_str().unwrap());
            if !path.is_file() {
                self.fail(&format!(
                    "query returned {}, not on disk: {json}",
                    path.display()
                ));
            }
        }
    }

    fn run(&mut self, ops: usize) {
        let mut done = 0;
        while done < ops {
            let burst = 1 + self.rng.below(4);
            for _ in 0..burst {
                self.step();
            }
            done += burst;
            self.check_disk();
            let choice = self.rng.below(100);
            let folder = PathBuf::from(*self.rng.pick(FOLDERS).unwrap());
            match choice {
                0..=39 if self.abs(&folder).is_dir() => {
                    let _ = self.index(std::slice::from_ref(&folder), None);
                    self.tracked.insert(folder.clone());
                    self.check_index(std::slice::from_ref(&folder));
                    if self.rng.below(2) == 0 {
                        self.index_again_changes_nothing(std::slice::from_ref(&folder));
                        self.check_index(&[folder]);
                    }
                }
                40..=69 if !self.tracked.is_empty() => {
                    self.index(&[], None);
                    self.check_index(&self.present_tracked());
                    if self.rng.below(2) == 0 {
                        self.index_again_changes_nothing(&[]);
                        self.check_index(&self.present_tracked());
                    }
                }
                70..=79 if self.abs(&folder).is_dir() => {
                    let ms = self.rng.below(150) as u64;
                    self.index(&[folder], Some(Duration::from_millis(ms)));
                    // A killed run may have recorded its folder or not: the next run tells.
                    let _ = self.index(&[], None);
                    self.tracked = self.stored_roots();
                    self.check_index(&self.present_tracked());
                }
                80..=87 => {
                    let tracked: Vec<PathBuf> = self.tracked.iter().cloned().collect();
                    if let Some(t) = self.rng.pick(&tracked).cloned() {
                        // Rows kept under another folder are as fresh as its last run.
                        self.index(&[], None);
                        self.log.push(format!("forget {}", t.display()));
                        let out = self.lookalike().arg("forget").arg(&t).output().unwrap();
                        if !out.status.success() {
                            self.fail(&format!("forget: {}", String::from_utf8_lossy(&out.stderr)));
                        }
                        self.tracked.remove(&t);
                        self.check_index(&[t]);
                    }
                }
                _ => {}
            }
            if self.clock > 0
                && self.rng.below(5) == 0
                && self.index_dir.join("lookalike.db").exists()
            {
                self.check_query();
            }
        }
    }

    /// The tracked folders that exist on disk: what a refresh of every folder walks.
    fn present_tracked(&self) -> Vec<PathBuf> {
        self.tracked
            .iter()
            .filter(|t| self.abs(t).is_dir())
            .cloned()
            .collect()
    }

    fn stored_roots(&self) -> BTreeSet<PathBuf> {
        if !self.index_dir.join("lookalike.db").exists() {
            return BTreeSet::new();
        }
        let store = Store::open_read_only(&self.index_dir.join("lookalike.db")).unwrap();
        store
            .roots()
            .unwrap()
            .values()
            .map(|p| p.strip_prefix(&self.base).unwrap().to_path_buf())
            .collect()
    }
}

fn run_seed(seed: u64, ops: usize) {
    let tmp = tempfile::tempdir().unwrap();
    let base = std::fs::canonicalize(tmp.path()).unwrap();
    std::fs::create_dir_all(base.join("w")).unwrap();
    let mut rng = Rng(lookalike::rng::SplitMix64::new(seed));
    // The index sometimes lives inside the photo tree, under a name a photo folder could have.
    // `w/c` is a photo folder that is also the index folder, holding `w/c/ann/t.bmp`.
    let index_dir = match rng.below(4) {
        0 => base.join("w/a/idx"),
        1 => base.join("w/ann"),
        2 => base.join("w/c"),
        _ => base.join("index"),
    };
    let mut model = Model {
        seed,
        base,
        index_dir,
        bin: PathBuf::from(env!("CARGO_BIN_EXE_lookalike")),
        pool: content_pool(),
        disk: BTreeMap::new(),
        tracked: BTreeSet::new(),
        log: Vec::new(),
        rng,
        clock: 0,
    };
    model.run(ops);
}

#[test]
fn the_index_mirrors_the_disk_under_random_operations() {
    let ops: usize = std::env::var("LOOKALIKE_MODEL_OPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(60);
    let seeds: Vec<u64> = std::env::var("LOOKALIKE_MODEL_SEEDS")
        .ok()
        .map(|v| v.split(',').filter_map(|s| s.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![1, 2]);
    for seed in seeds {
        run_seed(seed, ops);
        eprintln!("seed {seed}: {ops} operations, no divergence");
    }
}
