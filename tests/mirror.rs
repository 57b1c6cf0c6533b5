//! The index mirrors the user's folders: one file is one image whatever the folders given,
//! stored content matches the bytes on disk, and queries name only files that exist as indexed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use assert_cmd::Command;
use lookalike::store::Store;
use serde_json::Value;

fn sample_data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("sample_data")
}

/// Copies sample groups into `dst/<group>/...`.
fn copy_groups(dst: &Path, groups: &[&str]) {
    for g in groups {
        let to = dst.join(g);
        std::fs::create_dir_all(&to).unwrap();
        for entry in std::fs::read_dir(sample_data().join(g)).unwrap() {
            let entry = entry.unwrap();
            std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }
}

struct Env {
    tmp: tempfile::TempDir,
}

impl Env {
    fn new() -> Env {
        Env {
            tmp: tempfile::tempdir().unwrap(),
        }
    }

    fn root(&self) -> PathBuf {
        std::fs::canonicalize(self.tmp.path()).unwrap()
    }

    fn index_dir(&self) -> PathBuf {
        self.root().join("idx")
    }

    fn cmd(&self) -> Command {
        let mut c = Command::cargo_bin("lookalike").unwrap();
        c.current_dir(self.root())
            .env_remove("LOOKALIKE_INDEX")
            .arg("--index-dir")
            .arg(self.index_dir());
        c
    }

    /// `index ARGS --profile fast --json`, expecting `code`.
    fn index(&self, args: &[&str], code: i32) -> Value {
        let out = self
            .cmd()
            .arg("index")
            .args(args)
            .args(["--profile", "fast", "--json"])
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(code),
            "index {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    fn query(&self, image: &Path, extra: &[&str]) -> Value {
        let out = self
            .cmd()
            .arg("query")
            .arg(image)
            .args(["--json", "-k", "100"])
            .args(extra)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "query: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// Every stored image: absolute path -> stored hash.
    fn stored(&self) -> BTreeMap<PathBuf, [u8; 32]> {
        let store = Store::open_read_only(&self.index_dir().join("lookalike.db")).unwrap();
        let roots = store.roots().unwrap();
        let mut out = BTreeMap::new();
        for e in store.catalog().unwrap() {
            let path = roots[&e.root_id].join(&e.rel_path);
            assert!(out.insert(path.clone(), e.hash).is_none(), "{path:?} twice");
        }
        out
    }

    fn tracked(&self) -> Vec<PathBuf> {
        let store = Store::open_read_only(&self.index_dir().join("lookalike.db")).unwrap();
        let mut roots: Vec<PathBuf> = store.roots().unwrap().into_values().collect();
        roots.sort();
        roots
    }
}

/// Every image file under `dir` with the hash of its bytes.
fn on_disk(dir: &Path) -> BTreeMap<PathBuf, [u8; 32]> {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().is_file())
        .map(|e| {
            let bytes = std::fs::read(e.path()).unwrap();
            (e.path().to_path_buf(), *blake3::hash(&bytes).as_bytes())
        })
        .collect()
}

fn hit_paths(result: &Value) -> Vec<PathBuf> {
    result["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| PathBuf::from(h["path"].as_str().unwrap()))
        .collect()
}

/// Copies of photos made before the originals were overwritten keep their own content: the
/// copy's row is never filled from a row the same run rewrites.
#[test]
fn copies_of_replaced_photos_keep_their_own_content() {
    let env = Env::new();
    let photos = env.root().join("photos");
    copy_groups(&photos, &["brick", "camera"]);
    env.index(&[photos.to_str().unwrap()], 0);
    let other = photos.join("camera/original.jpg");
    for p in ["brick/original.jpg", "brick/blur.jpg", "brick/crop.jpg"] {
        let p = photos.join(p);
        std::fs::copy(&p, p.with_extension("copy.jpg")).unwrap();
        std::fs::copy(&other, &p).unwrap();
    }
    env.index(&[photos.to_str().unwrap()], 0);
    assert_eq!(env.stored(), on_disk(&photos));
    let again = env.index(&[photos.to_str().unwrap()], 0);
    assert_eq!(again["new"].as_u64(), Some(0), "{again}");
    assert_eq!(env.stored(), on_disk(&photos));
    // Each copy finds itself, at distance 0.
    let copy = photos.join("brick/original.copy.jpg");
    let result = env.query(&copy, &["--exact"]);
    assert_eq!(hit_paths(&result)[0], copy, "{result}");
}

/// A rewrite of the same size that keeps the modification time (as a rewrite within the file
/// system's time granularity does) is noticed by the next run.
#[test]
fn same_size_rewrite_keeping_mtime_is_noticed() {
    let env = Env::new();
    let photos = env.root().join("photos");
    std::fs::create_dir_all(&photos).unwrap();
    let bmp = |seed: u32| {
        image::RgbImage::from_fn(64, 48, |x, y| {
            image::Rgb([
                (x * seed) as u8,
                (y * 3 + seed) as u8,
                ((x ^ y) * seed) as u8,
            ])
        })
    };
    let a = photos.join("a.bmp");
    bmp(3).save(&a).unwrap();
    bmp(11).save(photos.join("b.bmp")).unwrap();
    env.index(&["photos"], 0);
    let before = std::fs::metadata(&a).unwrap();
    bmp(7).save(&a).unwrap();
    std::fs::File::options()
        .write(true)
        .open(&a)
        .unwrap()
        .set_modified(before.modified().unwrap())
        .unwrap();
    let after = std::fs::metadata(&a).unwrap();
    assert_eq!(
        (after.len(), after.modified().unwrap()),
        (before.len(), before.modified().unwrap())
    );
    let summary = env.index(&["photos"], 0);
    assert_eq!(summary["updated"].as_u64(), Some(1), "{summary}");
    assert_eq!(env.stored(), on_disk(&photos));
}

/// Overlapping folders, in either order or in one command: each file is one image, and a
/// query never returns a file twice.
#[test]
fn overlapping_folders_store_each_file_once() {
    for order in [["sd/camera", "sd"], ["sd", "sd/camera"]] {
        let env = Env::new();
        let sd = env.root().join("sd");
        copy_groups(&sd, &["camera", "brick", "coffee"]);
        for folder in order {
            env.index(&[folder], 0);
        }
        assert_eq!(env.stored(), on_disk(&sd), "{order:?}");
        let result = env.query(&sd.join("camera/original.jpg"), &["--exact"]);
        let hits = hit_paths(&result);
        let mut unique = hits.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), hits.len(), "{order:?}: {result}");
        assert_eq!(hits.len(), 18);
        // Both folders stay tracked; refreshing all of them changes nothing.
        assert_eq!(env.tracked(), vec![sd.clone(), sd.join("camera")]);
        let refresh = env.index(&[], 0);
        assert_eq!(refresh["unchanged"].as_u64(), Some(18), "{refresh}");
    }
    let env = Env::new();
    let sd = env.root().join("sd");
    copy_groups(&sd, &["camera", "brick"]);
    env.index(&["sd", "sd/camera", "sd/brick/.."], 0);
    assert_eq!(env.stored(), on_disk(&sd));
}

#[test]
fn walk_options_are_remembered_until_walk_defaults() {
    let env = Env::new();
    let sd = env.root().join("sd");
    copy_groups(&sd, &["camera", "brick"]);
    let first = env.index(&["sd", "--exclude", "brick/**"], 0);
    assert_eq!(first["total_images"].as_u64(), Some(6), "{first}");
    // a refresh, a new tracked folder and a refresh from another run all keep the exclusion
    let refresh = env.index(&[], 0);
    assert_eq!(refresh["total_images"].as_u64(), Some(6), "{refresh}");
    assert_eq!(
        refresh["walk_options"]["exclude"][0], "brick/**",
        "{refresh}"
    );
    copy_groups(&env.root().join("more"), &["brick"]);
    let more = env.index(&["more"], 0);
    assert_eq!(more["total_images"].as_u64(), Some(6), "{more}");
    // given options replace the remembered ones; --walk-defaults forgets them
    let plain = env.index(&["--walk-defaults"], 0);
    assert_eq!(plain["total_images"].as_u64(), Some(18), "{plain}");
    let again = env.index(&[], 0);
    assert_eq!(again["total_images"].as_u64(), Some(18), "{again}");
    let include = env.index(&["--include", "camera/**"], 0);
    assert_eq!(include["total_images"].as_u64(), Some(6), "{include}");
    // a pattern that is not a glob is refused and never remembered
    let out = env
        .cmd()
        .args(["index", "--exclude", "["])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    // as are patterns that can match nothing (an empty shell variable would empty the index)
    for (flag, pattern) in [
        ("--include", ""),
        ("--include", "/camera/**"),
        ("--exclude", "./brick"),
        ("--exclude", "brick/"),
    ] {
        let out = env.cmd().args(["index", flag, pattern]).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{flag} {pattern:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("bad glob"), "{flag} {pattern:?}: {err}");
    }
    let kept = env.index(&[], 0);
    assert_eq!(kept["walk_options"]["include"][0], "camera/**", "{kept}");
    let out = env
        .cmd()
        .args(["index", "--walk-defaults", "--hidden"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

/// A file named on its own is held to its folder's walk rules: one the refreshes would drop
/// again (hidden, excluded, not an image) is refused with the reason and nothing is written.
#[test]
fn a_file_named_alone_that_the_walks_skip_is_refused_with_the_reason() {
    let env = Env::new();
    let sd = env.root().join("sd");
    copy_groups(&sd, &["camera"]);
    let original = sd.join("camera/original.jpg");
    std::fs::create_dir_all(sd.join(".private")).unwrap();
    std::fs::copy(&original, sd.join(".hidden.jpg")).unwrap();
    std::fs::copy(&original, sd.join(".private/x.jpg")).unwrap();
    std::fs::write(sd.join("notes.txt"), "not a picture").unwrap();
    let first = env.index(&["sd", "--exclude", "camera/q30.jpg"], 0);
    assert_eq!(first["total_images"].as_u64(), Some(5), "{first}");
    for (file, why) in [
        ("sd/.hidden.jpg", "hidden file"),
        ("sd/.private/x.jpg", "hidden folder"),
        ("sd/camera/q30.jpg", "--exclude"),
        ("sd/notes.txt", "image format"),
    ] {
        let out = env.cmd().args(["index", file]).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{file}: {err}");
        assert!(
            err.contains(why) && err.contains("not indexed"),
            "{file}: {err}"
        );
        if why.starts_with("hidden") {
            // the way in keeps the options the index remembers
            assert!(
                err.contains("--exclude 'camera/q30.jpg' --hidden"),
                "{file}: {err}"
            );
        }
    }
    let after = env.index(&[], 0);
    assert_eq!(after["total_images"].as_u64(), Some(5), "{after}");
    assert_eq!(
        after["walk_options"]["exclude"][0], "camera/q30.jpg",
        "{after}"
    );
    // with the option that takes it in, the file is indexed and the refresh keeps it
    let taken = env.index(
        &["--hidden", "--exclude", "camera/q30.jpg", "sd/.hidden.jpg"],
        0,
    );
    assert_eq!(
        taken["replaced_walk_options"]["exclude"][0], "camera/q30.jpg",
        "the options replaced are reported: {taken}"
    );
    assert_eq!(taken["walk_options"]["hidden"], true, "{taken}");
    let kept = env.index(&[], 0);
    assert_eq!(kept["total_images"].as_u64(), Some(7), "{kept}");
}

/// Walk options given to an index that had none are announced as those it keeps from now on,
/// as a replacement of other options is.
#[test]
fn walk_options_given_to_an_index_without_any_are_announced() {
    let env = Env::new();
    copy_groups(&env.root().join("sd"), &["camera"]);
    let first = env.index(&["sd"], 0);
    assert!(first.get("replaced_walk_options").is_none(), "{first}");
    let out = env
        .cmd()
        .args(["index", "--hidden", "--json"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains("walk options are now --hidden (they were none); later runs keep them"),
        "{err}"
    );
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        summary["replaced_walk_options"]["hidden"], false,
        "{summary}"
    );
}

/// A profile change given with one folder re-extracts every tracked folder: the others kept
/// the old profile's vectors and were searched against the new ones.
#[test]
fn a_profile_change_with_one_folder_re_extracts_every_folder() {
    let env = Env::new();
    let sd = env.root().join("sd");
    copy_groups(&sd, &["camera", "brick"]);
    let first = env.index(&["sd/camera", "sd/brick"], 0);
    assert_eq!(first["total_images"].as_u64(), Some(12), "{first}");
    let out = env
        .cmd()
        .args(["index", "sd/camera", "--profile", "full", "--json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let change: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(change["updated"].as_u64(), Some(12), "{change}");
    let status = env.cmd().args(["status", "--json"]).output().unwrap();
    let status: Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(
        status["outdated_feature_rows"].as_u64(),
        Some(0),
        "{status}"
    );
    // with every image current, a run over one folder walks that folder only
    let out = env
        .cmd()
        .args(["index", "sd/camera", "--json"])
        .output()
        .unwrap();
    let again: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(again["unchanged"].as_u64(), Some(6), "{again}");
}

/// While a profile change is unfinished (here a tracked folder was away), the images still
/// holding the old profile's vectors are left out of searches, with a note, instead of being
/// compared with vectors of the new profile; the next run that sees them re-extracts them.
#[test]
fn images_with_another_profiles_vectors_are_left_out_until_re_extracted() {
    let env = Env::new();
    let sd = env.root().join("sd");
    copy_groups(&sd, &["camera", "brick"]);
    let full = env
        .cmd()
        .args(["index", "sd/camera", "sd/brick", "--profile", "full", "-q"])
        .output()
        .unwrap();
    assert_eq!(full.status.code(), Some(0));
    std::fs::rename(sd.join("brick"), env.root().join("away")).unwrap();
    let change = env
        .cmd()
        .args(["index", "--profile", "fast", "-q"])
        .output()
        .unwrap();
    assert_eq!(change.status.code(), Some(3), "a tracked folder is missing");
    std::fs::rename(env.root().join("away"), sd.join("brick")).unwrap();
    let hits = env.query(&sd.join("brick/original.jpg"), &[]);
    let found: Vec<&str> = hits["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["path"].as_str().unwrap())
        .collect();
    assert!(found.iter().all(|p| p.contains("/camera/")), "{hits}");
    assert_eq!(found.len(), 6, "{hits}");
    let notes = hits.to_string();
    assert!(notes.contains("left out"), "{hits}");
    let status = env.cmd().args(["status", "--json"]).output().unwrap();
    let status: Value = serde_json::from_slice(&status.stdout).unwrap();
    assert!(
        status["images_missing_family"]
            .as_object()
            .is_some_and(|m| m.values().all(|n| n.as_u64() == Some(6))),
        "{status}"
    );
    // the next run re-extracts them, and they are found again
    let again = env.index(&[], 0);
    assert_eq!(again["updated"].as_u64(), Some(6), "{again}");
    let hits = env.query(&sd.join("brick/original.jpg"), &[]);
    assert_eq!(hits["hits"].as_array().unwrap().len(), 12, "{hits}");
}

/// An index written when overlapping folders were stored twice is repaired by the next run.
#[test]
fn duplicate_rows_of_one_file_are_merged() {
    let env = Env::new();
    let sd = env.root().join("sd");
    copy_groups(&sd, &["camera"]);
    env.index(&["sd/camera"], 0);
    store_twice_under(&env, &sd, "camera");
    let summary = env.index(&[], 0);
    assert_eq!(summary["merged"].as_u64(), Some(6), "{summary}");
    assert_eq!(env.stored(), on_disk(&sd));
}

/// Tracks `outer`, around the one tracked folder `outer/inner`, with a second row for every
/// file of `inner` under it, written directly, as indexes did before each file was stored once.
fn store_twice_under(env: &Env, outer: &Path, inner: &str) {
    let db = rusqlite::Connection::open(env.index_dir().join("lookalike.db")).unwrap();
    let outer_blob = outer.to_str().unwrap().as_bytes().to_vec();
    db.execute("INSERT INTO roots(path) VALUES (?1)", [&outer_blob])
        .unwrap();
    let outer: i64 = db.last_insert_rowid();
    db.execute_batch(&format!(
        "INSERT INTO images(root_id, rel_path, size, mtime_ns, hash, format, width, height, indexed_at)
         SELECT {outer}, CAST('{inner}/' || CAST(rel_path AS TEXT) AS BLOB), size, mtime_ns, hash,
                format, width, height, indexed_at FROM images;"
    ))
    .unwrap();
}

/// Forgetting the inner of two overlapping folders whose files an older index stored twice
/// counts each file once: kept, not also removed; the second rows are said to be merged.
#[test]
fn forget_counts_a_file_stored_twice_once() {
    let env = Env::new();
    let sd = env.root().join("sd");
    copy_groups(&sd, &["camera"]);
    env.index(&["sd/camera"], 0);
    store_twice_under(&env, &sd, "camera");
    let out = env
        .cmd()
        .args(["forget", "sd/camera", "--json"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    let counts = ["removed", "kept", "merged", "total_images"].map(|k| json[0][k].as_u64());
    assert_eq!(counts, [0, 6, 6, 6].map(Some), "{json}");
    assert!(
        err.contains("0 images removed from the index, 6 kept")
            && err.contains("merged: 6 images were stored twice"),
        "{err}"
    );
    assert_eq!(env.stored(), on_disk(&sd));
    assert_eq!(env.tracked(), vec![sd]);
}

/// Deleted files never come back in answers; `index` alone refreshes every tracked folder,
/// `forget` stops tracking one, and a single file is never tracked as a folder.
#[test]
fn deleted_files_never_come_back() {
    let env = Env::new();
    let e = env.root().join("e");
    copy_groups(&e.join("one"), &["camera"]);
    copy_groups(&e.join("two"), &["brick"]);
    env.index(&["e/one"], 0);
    env.index(&["e/two"], 0);
    std::fs::remove_dir_all(e.join("one")).unwrap();
    env.index(&["e/two"], 0);
    // The query drops and reports the files that are gone.
    let example = env.root().join("example.jpg");
    std::fs::copy(sample_data().join("camera/original.jpg"), &example).unwrap();
    let result = env.query(&example, &["--exact"]);
    let hits = hit_paths(&result);
    assert!(hits.iter().all(|p| p.exists()), "{result}");
    assert_eq!(hits.len(), 6);
    assert_eq!(result["stale"].as_array().unwrap().len(), 6, "{result}");
    // Refreshing every folder: the missing one is reported and its images kept until forgotten.
    let refresh = env.index(&[], 3);
    assert_eq!(
        refresh["missing_roots"][0].as_str(),
        e.join("one").to_str(),
        "{refresh}"
    );
    env.cmd().args(["forget", "e/one"]).assert().success();
    assert_eq!(env.stored(), on_disk(&e));
    assert_eq!(env.tracked(), vec![e.join("two")]);
    // Emptying a folder and refreshing all removes its images.
    for f in std::fs::read_dir(e.join("two/brick")).unwrap() {
        std::fs::remove_file(f.unwrap().path()).unwrap();
    }
    let refresh = env.index(&[], 0);
    assert_eq!(refresh["removed"].as_u64(), Some(6), "{refresh}");
    assert!(env.stored().is_empty());

    // A file inside a tracked folder is indexed without being tracked; one outside is refused.
    copy_groups(&e.join("two"), &["coffee"]);
    env.index(&["e/two/coffee/original.jpg"], 0);
    assert_eq!(env.tracked(), vec![e.join("two")]);
    assert_eq!(env.stored().len(), 1);
    let out = env.cmd().args(["index", "example.jpg"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not inside an indexed folder"), "{err}");
    assert_eq!(env.tracked(), vec![e.join("two")]);
    // Forgetting an unknown folder says which are tracked.
    let out = env.cmd().args(["forget", "e/nope"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not a tracked folder"), "{err}");
}

/// Forgetting a folder nested in another tracked one keeps its images; forgetting the outer
/// one keeps those under the nested one.
#[test]
fn forget_keeps_what_another_folder_tracks() {
    let env = Env::new();
    let sd = env.root().join("sd");
    copy_groups(&sd, &["camera", "brick"]);
    env.index(&["sd/camera"], 0);
    env.index(&["sd"], 0);
    env.cmd().args(["forget", "sd/camera"]).assert().success();
    assert_eq!(env.stored(), on_disk(&sd));
    env.index(&["sd/camera"], 0);
    let out = env.cmd().args(["forget", "sd", "--json"]).output().unwrap();
    assert!(out.status.success());
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json[0]["removed"].as_u64(), Some(6), "{json}");
    assert_eq!(json[0]["kept"].as_u64(), Some(6), "{json}");
    assert_eq!(env.stored(), on_disk(&sd.join("camera")));
    let result = env.query(&sd.join("camera/original.jpg"), &["--exact"]);
    assert_eq!(hit_paths(&result).len(), 6, "{result}");
}

/// Forgetting a folder nested in another tracked folder whose walks skip it (hidden, or
/// excluded) removes its images: the outer folder's next refresh would drop them anyway, and
/// `forget` said they were kept.
#[test]
fn forget_removes_what_the_outer_folders_walks_skip() {
    let env = Env::new();
    let sd = env.root().join("sd");
    copy_groups(&sd, &["camera", "brick", "coffee"]);
    std::fs::rename(sd.join("coffee"), sd.join(".private")).unwrap();
    env.index(&["sd", "--exclude", "brick"], 0);
    env.index(&["sd/.private"], 0);
    env.index(&["sd/brick"], 0);
    for inner in ["sd/.private", "sd/brick"] {
        let out = env
            .cmd()
            .args(["forget", inner, "--json"])
            .output()
            .unwrap();
        assert!(out.status.success());
        let json: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(json[0]["removed"].as_u64(), Some(6), "{inner}: {json}");
        assert_eq!(json[0]["kept"].as_u64(), Some(0), "{inner}: {json}");
    }
    assert_eq!(env.stored(), on_disk(&sd.join("camera")));
    let refresh = env.index(&[], 0);
    assert_eq!(refresh["removed"].as_u64(), Some(0), "{refresh}");
}

/// An indexed file overwritten with another photo is queried by its new content.
#[test]
fn a_changed_example_is_queried_by_its_new_content() {
    let env = Env::new();
    let photos = env.root().join("photos");
    copy_groups(&photos, &["brick", "camera"]);
    env.index(&["photos"], 0);
    let a = photos.join("brick/original.jpg");
    let other = photos.join("camera/original.jpg");
    std::fs::copy(&other, &a).unwrap();
    let result = env.query(&a, &["--exact"]);
    // its new bytes are those of an indexed image: that image's stored vector describes it
    assert_eq!(result["indexed"].as_bool(), Some(true), "{result}");
    let hits = hit_paths(&result);
    assert_eq!(hits[0], other, "{result}");
    assert!(
        !hits.contains(&a),
        "the stale row of the example is left out: {result}"
    );
    assert_eq!(
        result["hits"][0]["distance"].as_f64(),
        Some(0.0),
        "{result}"
    );
    let stale: Vec<&str> = result["stale"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(stale, vec![a.to_str().unwrap()]);
}

/// An example re-saved since indexing: its own stale row is left out, and the nearest of the
/// images left still goes first.
#[test]
fn the_nearest_hit_left_goes_first_when_a_stale_one_is_dropped() {
    let env = Env::new();
    let photos = env.root().join("photos");
    copy_groups(&photos, &["camera", "coffee"]);
    env.index(&["photos"], 0);
    let example = photos.join("camera/q30.jpg");
    let mut bytes = std::fs::read(&example).unwrap();
    bytes.push(b'x');
    std::fs::write(&example, bytes).unwrap();
    let result = env.query(&example, &[]);
    assert_eq!(result["stale"].as_array().unwrap().len(), 1, "{result}");
    let distances: Vec<f64> = result["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["distance"].as_f64().unwrap())
        .take(10)
        .collect();
    let nearest = distances.iter().cloned().fold(f64::INFINITY, f64::min);
    assert_eq!(distances[0], nearest, "{result}");
}

/// A tracked folder renamed, with a link left at its old name into the new one (also tracked):
/// each file stays one image, under the real folder.
#[test]
fn a_folder_renamed_with_a_link_left_behind_is_not_indexed_twice() {
    let env = Env::new();
    let old = env.root().join("p9");
    copy_groups(&old, &["camera"]);
    env.index(&["p9"], 0);
    let new = env.root().join("p9new");
    std::fs::rename(&old, &new).unwrap();
    std::os::unix::fs::symlink(&new, &old).unwrap();
    env.index(&["p9new"], 0);
    let refresh = env.index(&[], 0);
    assert_eq!(
        refresh["aliased"][0]["into"].as_str(),
        new.to_str(),
        "{refresh}"
    );
    assert_eq!(env.stored(), on_disk(&new));
}

/// A followed link into another tracked folder is that folder's file, whichever folders a run
/// walks: the image count does not flip between runs.
#[test]
fn a_link_into_another_tracked_folder_is_indexed_once_whatever_is_walked() {
    let env = Env::new();
    let (sa, sb) = (env.root().join("sa"), env.root().join("sb"));
    copy_groups(&sa, &["camera"]);
    copy_groups(&sb, &["brick"]);
    std::os::unix::fs::symlink(
        sb.join("brick/original.jpg"),
        sa.join("camera/link_to_brick.jpg"),
    )
    .unwrap();
    let both = env.index(&["sa", "sb", "--follow-symlinks"], 0);
    let total = both["total_images"].as_u64();
    for args in [&["sa"][..], &[], &["sb"]] {
        let run = env.index(args, 0);
        assert_eq!(run["total_images"].as_u64(), total, "{args:?}: {run}");
        assert_eq!(run["removed"].as_u64(), Some(0), "{args:?}: {run}");
    }
}

/// A tracked folder inside another is reported missing and its images kept, as a tracked folder
/// on its own is (an unmounted disk looks like a deleted folder); replaced by a link, it is
/// walked through the link.
#[test]
fn a_nested_tracked_folder_gone_or_swapped_for_a_link_keeps_its_images() {
    let env = Env::new();
    let p = env.root().join("p");
    copy_groups(&p, &["brick"]);
    copy_groups(&p.join("sub"), &["camera"]);
    env.index(&["p", "p/sub"], 0);
    let before = env.stored();
    assert_eq!(before, on_disk(&p));

    let away = env.root().join("away");
    std::fs::rename(p.join("sub"), &away).unwrap();
    let json = env.index(&[], 3);
    let missing: Vec<&str> = json["missing_roots"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(missing, [p.join("sub").to_str().unwrap()], "{json}");
    assert_eq!(json["removed"], 0, "{json}");
    assert_eq!(env.stored(), before);
    // the same when the outer folder is named
    let json = env.index(&["p"], 3);
    assert_eq!(json["removed"], 0, "{json}");
    assert_eq!(env.stored(), before);

    // the folder comes back as a link to where it went
    std::os::unix::fs::symlink(&away, p.join("sub")).unwrap();
    let json = env.index(&[], 0);
    assert_eq!(json["removed"], 0, "{json}");
    assert_eq!(env.stored().len(), before.len(), "{json}");
    env.index(&[], 0);
    assert_eq!(env.stored().len(), before.len());

    // forgotten while missing, its images leave at once (the outer folder holds none of them)
    std::fs::remove_file(p.join("sub")).unwrap();
    let out = env
        .cmd()
        .args(["forget", "p/sub", "--json"])
        .assert()
        .success();
    let json: Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    let under_sub = before
        .keys()
        .filter(|k| k.starts_with(p.join("sub")))
        .count();
    assert_eq!(
        json[0]["removed"].as_u64(),
        Some(under_sub as u64),
        "{json}"
    );
    assert_eq!(json[0]["kept"].as_u64(), Some(0), "{json}");
    assert_eq!(env.stored(), on_disk(&p));
}

/// A file whose permissions no longer let it be read keeps its image, and says so (as an
/// unreadable folder does); root reads anything, so this runs for other users only.
#[test]
fn an_indexed_file_made_unreadable_keeps_its_image() {
    use std::os::unix::fs::PermissionsExt;
    let env = Env::new();
    let sd = env.root().join("sd");
    copy_groups(&sd, &["camera"]);
    env.index(&["sd"], 0);
    let before = env.stored();
    let probe = sd.join("camera/original.jpg");
    std::fs::set_permissions(&probe, std::fs::Permissions::from_mode(0o000)).unwrap();
    if std::fs::read(&probe).is_ok() {
        // running as root: permissions do not stop a read
        std::fs::set_permissions(&probe, std::fs::Permissions::from_mode(0o644)).unwrap();
        return;
    }
    let folder = sd.join("camera");
    let json = env.index(&[], 3);
    assert_eq!(env.stored(), before, "{json}");
    // a folder that can be listed but not searched: every file in it unreadable
    std::fs::set_permissions(&probe, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::set_permissions(&folder, std::fs::Permissions::from_mode(0o644)).unwrap();
    let json = env.index(&[], 3);
    std::fs::set_permissions(&folder, std::fs::Permissions::from_mode(0o755)).unwrap();
    assert_eq!(env.stored(), before, "{json}");
    env.index(&[], 0);
    assert_eq!(env.stored(), before);
}

/// An image named without an extension is taken by its content. Emptied or overwritten with
/// other bytes, it fails as a damaged `.jpg` does (listed, exit status 3), rather than leaving
/// the index counted as a deleted file; put back, it is taken in again.
#[test]
fn an_image_without_an_extension_damaged_is_a_failure_not_a_deletion() {
    let env = Env::new();
    let sd = env.root().join("sd");
    copy_groups(&sd, &["camera"]);
    let bare = sd.join("camera/IMG_0001");
    let noise = sd.join("camera/IMG_0002");
    std::fs::copy(sd.join("camera/original.jpg"), &bare).unwrap();
    std::fs::copy(sd.join("camera/blur.jpg"), &noise).unwrap();
    env.index(&["sd"], 0);
    assert!(
        env.stored()
            .contains_key(&std::fs::canonicalize(&bare).unwrap())
    );
    let good = std::fs::read(&bare).unwrap();
    std::fs::write(&bare, b"").unwrap();
    std::fs::write(&noise, vec![7u8; 4000]).unwrap();
    let json = env.index(&[], 3);
    assert_eq!(json["removed"], 0, "{json}");
    let failed = json["failed"].to_string();
    assert!(
        failed.contains("IMG_0001") && failed.contains("IMG_0002"),
        "{json}"
    );
    std::fs::write(&bare, &good).unwrap();
    std::fs::remove_file(&noise).unwrap();
    env.index(&[], 0);
    assert!(
        env.stored()
            .contains_key(&std::fs::canonicalize(&bare).unwrap())
    );
}

/// A first run refused before any work leaves no index folder behind.
#[test]
fn a_refused_first_run_leaves_no_index() {
    let env = Env::new();
    let sd = env.root().join("sd");
    copy_groups(&sd, &["camera"]);
    for args in [
        vec!["index", "sd/camera/original.jpg"],
        vec!["index"],
        vec!["index", "sd", "--exclude", "["],
        vec!["forget", "sd"],
    ] {
        let out = env.cmd().args(&args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(!env.index_dir().exists(), "{args:?} left an index folder");
    }
}

/// Forgetting a folder keeps the images a tracked link into it still holds: `trip`, moved
/// into `lib` and left as a link, keeps its images when `lib` is forgotten, and the next run
/// reads none of them again.
#[test]
fn forget_keeps_what_a_tracked_link_into_the_folder_holds() {
    let env = Env::new();
    let rf = env.root().join("rf");
    copy_groups(&rf.join("lib"), &["brick"]);
    copy_groups(&rf.join("trip"), &["camera"]);
    env.index(&["rf/lib", "rf/trip"], 0);
    std::fs::rename(rf.join("trip"), rf.join("lib/trip")).unwrap();
    std::os::unix::fs::symlink("lib/trip", rf.join("trip")).unwrap();
    env.index(&[], 0);
    let trip = on_disk(&rf.join("lib/trip")).len();
    let out = env
        .cmd()
        .args(["forget", "rf/lib", "--json"])
        .assert()
        .success();
    let json: Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(json[0]["kept"].as_u64(), Some(trip as u64), "{json}");
    assert_eq!(env.stored().len(), trip, "{json}");
    let json = env.index(&[], 0);
    assert_eq!(
        (json["new"].as_u64(), json["removed"].as_u64()),
        (Some(0), Some(0)),
        "{json}"
    );
    assert_eq!(env.stored().len(), trip);
}

/// A folder named whose images the walk options all skip, by `--exclude` or `--include`, is
/// told so; an empty folder is not.
#[test]
fn a_named_folder_whose_images_the_walk_options_all_skip_is_told() {
    for (patterns, told) in [
        (&["--exclude", "**"][..], true),
        (&["--include", "**/*.png"][..], true),
        (&["--include", "**/*.jpg"][..], false),
    ] {
        let env = Env::new();
        copy_groups(&env.root().join("p"), &["brick"]);
        std::fs::create_dir(env.root().join("empty")).unwrap();
        let mut args = vec!["p", "empty"];
        args.extend_from_slice(patterns);
        let run = env.index(&args, 0);
        let listed: Vec<&str> = run["excluded_folders"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p.as_str().unwrap())
            .collect();
        assert_eq!(listed.len(), usize::from(told), "{patterns:?}: {run}");
        assert!(listed.iter().all(|p| p.ends_with("/p")), "{run}");
        let out = env.cmd().args(["index"]).output().unwrap();
        let text = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            text.contains("skip every image in it"),
            told,
            "{patterns:?}: {text}"
        );
    }
}

/// A pattern takes only what it writes: a U+FFFD in it is not a name's byte that is not UTF-8,
/// which only wildcards take.
#[cfg(target_os = "linux")]
#[test]
fn a_replacement_character_in_a_pattern_never_takes_a_byte_not_utf8() {
    use std::os::unix::ffi::OsStrExt;
    for (pattern, total) in [
        ("**/*\u{fffd}*", 7),
        ("**/odd\u{fffd}.jpg", 7),
        ("**/odd?.jpg", 6),
        ("**/odd*", 6),
    ] {
        let env = Env::new();
        let p = env.root().join("p");
        copy_groups(&p, &["brick"]);
        let odd = p.join(std::ffi::OsStr::from_bytes(b"brick/odd\xff.jpg"));
        std::fs::copy(sample_data().join("brick/original.jpg"), odd).unwrap();
        let run = env.index(&["p", "--exclude", pattern], 0);
        assert_eq!(
            run["total_images"].as_u64(),
            Some(total),
            "{pattern}: {run}"
        );
    }
}

/// A tracked folder none of whose files is indexed is a warning, which `-q` keeps.
#[test]
fn quiet_index_still_tells_a_tracked_folder_the_walk_skips_whole() {
    let env = Env::new();
    copy_groups(&env.root().join("p"), &["brick"]);
    env.index(&["p", "--exclude", "**"], 0);
    let out = env.cmd().args(["-q", "index"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(text.contains("skip every image in it"), "{text}");
    assert!(
        text.lines()
            .filter(|l| l.contains("skip every image in it"))
            .all(|l| l.starts_with("warning: ")),
        "{text}"
    );
    assert!(!text.contains(" new, "), "{text}");
}

/// `--exclude` patterns are matched from the outermost tracked folder, whichever tracked folder
/// a run walks, so a nested tracked folder's images do not come and go between runs; a file
/// named alone and `forget` follow the same rule.
#[test]
fn exclude_patterns_hold_a_nested_tracked_folder_to_the_outer_folders_rule() {
    // (pattern, images while p is tracked, nested folder's files excluded)
    for (pattern, total, inner_excluded) in [("**/sub/**", 6, true), ("camera/**", 12, false)] {
        let env = Env::new();
        let p = env.root().join("p");
        copy_groups(&p, &["brick"]);
        copy_groups(&p.join("sub"), &["camera"]);
        env.index(&["p", "--exclude", pattern], 0);
        let mut inner = Value::Null;
        for args in [&["p/sub"][..], &[], &["p/sub"], &[]] {
            let run = env.index(args, 0);
            assert_eq!(
                (
                    run["total_images"].as_u64(),
                    run["new"].as_u64(),
                    run["removed"].as_u64()
                ),
                (Some(total), Some(0), Some(0)),
                "{pattern} {args:?}: {run}"
            );
            if !args.is_empty() {
                inner = run;
            }
        }
        // told when the folder named is one whose files the outer folder's patterns skip
        let told = inner["excluded_folders"].as_array().map_or(0, Vec::len);
        assert_eq!(told, usize::from(inner_excluded), "{pattern}: {inner}");
        let file = env
            .cmd()
            .args(["index", "p/sub/camera/original.jpg"])
            .output()
            .unwrap();
        let expected = if inner_excluded { 2 } else { 0 };
        assert_eq!(
            file.status.code(),
            Some(expected),
            "{pattern}: {}",
            String::from_utf8_lossy(&file.stderr)
        );
        // Forgotten, p no longer rules p/sub: what p/sub's own walk skips goes now.
        if !inner_excluded {
            let out = env.cmd().args(["forget", "p", "--json"]).output().unwrap();
            assert!(out.status.success());
            let json: Value = serde_json::from_slice(&out.stdout).unwrap();
            assert_eq!(json[0]["total_images"].as_u64(), Some(0), "{json}");
            let refresh = env.index(&[], 0);
            assert_eq!(
                (refresh["new"].as_u64(), refresh["removed"].as_u64()),
                (Some(0), Some(0)),
                "{refresh}"
            );
        }
    }
}

/// With links followed, a file reached through a link and then in its own tracked folder is one
/// image, and forgetting that folder keeps what the link still reaches.
#[test]
fn a_followed_link_into_a_folder_tracked_later_is_one_image_and_survives_its_forget() {
    let env = Env::new();
    let (p, q) = (env.root().join("p"), env.root().join("q"));
    copy_groups(&p, &["camera"]);
    copy_groups(&q, &["brick"]);
    std::os::unix::fs::symlink("../q", p.join("qlink")).unwrap();
    env.index(&["p", "--follow-symlinks"], 0);
    let tracked_later = env.index(&["q"], 0);
    assert_eq!(
        (
            tracked_later["total_images"].as_u64(),
            tracked_later["duplicates"].as_u64()
        ),
        (Some(12), Some(0)),
        "{tracked_later}"
    );
    assert_eq!(env.stored(), {
        let mut both = on_disk(&p.join("camera"));
        both.extend(on_disk(&q));
        both
    });
    let hits = hit_paths(&env.query(&q.join("brick/original.jpg"), &["--exact"]));
    assert_eq!(hits.len(), 12, "{hits:?}");
    assert!(
        !hits.iter().any(|h| h.starts_with(p.join("qlink"))),
        "{hits:?}"
    );
    let refresh = env.index(&[], 0);
    assert_eq!(
        (
            refresh["total_images"].as_u64(),
            refresh["removed"].as_u64()
        ),
        (Some(12), Some(0)),
        "{refresh}"
    );

    let out = env.cmd().args(["forget", "q", "--json"]).output().unwrap();
    assert!(out.status.success());
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (json[0]["removed"].as_u64(), json[0]["kept"].as_u64()),
        (Some(0), Some(6)),
        "{json}"
    );
    let refresh = env.index(&[], 0);
    assert_eq!(
        (
            refresh["total_images"].as_u64(),
            refresh["new"].as_u64(),
            refresh["removed"].as_u64()
        ),
        (Some(12), Some(0), Some(0)),
        "{refresh}"
    );
    assert!(
        env.stored()
            .keys()
            .filter(|k| !k.starts_with(p.join("camera")))
            .all(|k| k.starts_with(p.join("qlink"))),
        "{:?}",
        env.stored().keys()
    );
}

/// A tracked folder that has become a file, named to `index`, is told missing (exit 3) and its
/// images kept: the file was indexed as an image of itself, with an empty path in the folder.
#[test]
fn a_tracked_folder_become_a_file_is_missing_not_indexed() {
    let env = Env::new();
    let r = env.root().join("r");
    copy_groups(&r, &["camera"]);
    env.index(&["r"], 0);
    let before = env.stored();
    std::fs::rename(&r, env.root().join("r.bak")).unwrap();
    std::fs::copy(sample_data().join("brick/original.jpg"), &r).unwrap();
    let json = env.index(&["r"], 3);
    assert_eq!(json["missing_roots"][0].as_str(), r.to_str(), "{json}");
    assert_eq!(json["new"].as_u64(), Some(0), "{json}");
    assert_eq!(env.stored(), before);
}

/// `forget` of a missing tracked folder inside another keeps the image the outer folder holds
/// at its path: a file given the folder's name was removed, and new again at the next refresh.
#[test]
fn forget_of_a_missing_nested_folder_keeps_a_file_at_its_path() {
    let env = Env::new();
    let o = env.root().join("o");
    copy_groups(&o, &["camera"]);
    copy_groups(&o.join("i"), &["brick"]);
    env.index(&["o", "o/i"], 0);
    std::fs::remove_dir_all(o.join("i")).unwrap();
    std::fs::copy(sample_data().join("coffee/original.jpg"), o.join("i")).unwrap();
    env.index(&[], 3);
    let out = env
        .cmd()
        .args(["forget", "o/i", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json[0]["removed"].as_u64(), Some(6), "{json}");
    assert_eq!(json[0]["kept"].as_u64(), Some(0), "{json}");
    assert_eq!(env.stored(), on_disk(&o));
    let refresh = env.index(&[], 0);
    assert_eq!(refresh["new"].as_u64(), Some(0), "{refresh}");
}

/// `forget` checks every folder named before forgetting any: `forget a typo` forgot `a`, then
/// failed with no word of it. A folder named twice is forgotten once.
#[test]
fn forget_checks_every_folder_before_forgetting_any() {
    let env = Env::new();
    copy_groups(&env.root().join("a"), &["camera"]);
    copy_groups(&env.root().join("b"), &["brick"]);
    env.index(&["a", "b"], 0);
    let out = env.cmd().args(["forget", "a", "typo"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("typo: not a tracked folder; nothing was forgotten"),
        "{err}"
    );
    let (a, b) = (env.root().join("a"), env.root().join("b"));
    assert_eq!(env.tracked(), vec![a.clone(), b.clone()]);
    let out = env
        .cmd()
        .args(["forget", "b", "b", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json.as_array().unwrap().len(), 1, "{json}");
    assert_eq!(json[0]["removed"].as_u64(), Some(6), "{json}");
    assert_eq!(env.tracked(), vec![a.clone()]);
    assert_eq!(env.stored(), on_disk(&a));
}

/// A file a walk of a tracked folder lists can be named alone, and a query knows it indexed:
/// through the folder replaced by a link to its moved contents, and through a link in it that
/// a walk following links takes. Both were "not inside an indexed folder", naming the target.
#[test]
fn a_file_walked_through_a_link_can_be_named_alone() {
    let env = Env::new();
    let root = env.root();
    copy_groups(&root.join("r"), &["camera"]);
    env.index(&["r"], 0);
    std::fs::rename(root.join("r"), root.join("real")).unwrap();
    std::os::unix::fs::symlink("real", root.join("r")).unwrap();
    let one = root.join("r/camera/original.jpg");
    assert_eq!(env.query(&one, &["--exact"])["indexed"], true);
    std::fs::copy(sample_data().join("brick/original.jpg"), &one).unwrap();
    let json = env.index(&["r/camera/original.jpg"], 0);
    assert_eq!(json["updated"].as_u64(), Some(1), "{json}");
    assert_eq!(env.query(&one, &["--exact"])["indexed"], true);
    std::fs::create_dir(root.join("out")).unwrap();
    std::fs::copy(
        sample_data().join("coffee/original.jpg"),
        root.join("out/o.jpg"),
    )
    .unwrap();
    std::os::unix::fs::symlink("../out/o.jpg", root.join("real/lnk.jpg")).unwrap();
    // the walks do not follow links yet: refused, naming the link
    let out = env.cmd().args(["index", "r/lnk.jpg"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("r/lnk.jpg: not indexed: a symbolic link"),
        "{err}"
    );
    let json = env.index(&["r", "--follow-symlinks"], 0);
    assert_eq!(json["new"].as_u64(), Some(1), "{json}");
    std::fs::copy(
        sample_data().join("rocket/original.jpg"),
        root.join("out/o.jpg"),
    )
    .unwrap();
    let json = env.index(&["r/lnk.jpg"], 0);
    assert_eq!(json["updated"].as_u64(), Some(1), "{json}");
    assert_eq!(
        env.query(&root.join("r/lnk.jpg"), &["--exact"])["indexed"],
        true
    );
}

/// Images dropped because new walk options skip them are told apart from files gone: their
/// files are still there, untouched.
#[test]
fn images_the_walk_options_now_skip_are_told_as_still_on_disk() {
    let env = Env::new();
    let sd = env.root().join("sd");
    copy_groups(&sd, &["camera"]);
    env.index(&["sd"], 0);
    std::fs::remove_file(sd.join("camera/blur.jpg")).unwrap();
    let refresh = env.index(&["sd", "--exclude", "**"], 0);
    assert_eq!(refresh["removed"].as_u64(), Some(6), "{refresh}");
    assert_eq!(refresh["removed_on_disk"].as_u64(), Some(5), "{refresh}");
    assert!(env.stored().is_empty());
    assert_eq!(on_disk(&sd).len(), 5);

    env.index(&["sd", "--walk-defaults"], 0);
    std::fs::remove_file(sd.join("camera/original.jpg")).unwrap();
    let refresh = env.index(&["sd"], 0);
    assert_eq!(refresh["removed"].as_u64(), Some(1), "{refresh}");
    assert_eq!(refresh["removed_on_disk"].as_u64(), Some(0), "{refresh}");
    let out = env
        .cmd()
        .args(["index", "sd", "--profile", "fast", "--exclude", "**"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("4 of the images removed are still on disk"),
        "{err}"
    );
}

/// A tracked folder replaced by a link to an image in another tracked folder is missing, not
/// a second name of that folder: its images are kept, as for any folder gone.
#[test]
fn a_tracked_folder_become_a_link_to_a_file_is_missing() {
    let env = Env::new();
    let a = env.root().join("a");
    let b = env.root().join("b");
    copy_groups(&a, &["camera"]);
    copy_groups(&b, &["brick"]);
    env.index(&["a", "b"], 0);
    let before = env.stored();
    std::fs::remove_dir_all(&b).unwrap();
    std::os::unix::fs::symlink(a.join("camera/original.jpg"), &b).unwrap();
    let refresh = env.index(&[], 3);
    assert_eq!(
        refresh["missing_roots"][0].as_str(),
        b.to_str(),
        "{refresh}"
    );
    assert_eq!(refresh["removed"].as_u64(), Some(0), "{refresh}");
    assert_eq!(env.stored(), before);
    // named, it is the folder it was
    let named = env.index(&["b"], 3);
    assert_eq!(named["missing_roots"][0].as_str(), b.to_str(), "{named}");
    assert_eq!(env.stored(), before);
    env.cmd().args(["forget", "b"]).assert().success();
    assert_eq!(env.stored(), on_disk(&a));
    assert_eq!(env.tracked(), vec![a.clone()]);

    // a tracked folder become a link to another tracked folder is forgotten by its own name
    let c = env.root().join("c");
    copy_groups(&c, &["horse"]);
    env.index(&["c"], 0);
    std::fs::remove_dir_all(&c).unwrap();
    std::os::unix::fs::symlink(&a, &c).unwrap();
    env.index(&[], 0);
    env.cmd().args(["forget", "c"]).assert().success();
    assert_eq!(env.tracked(), vec![a.clone()]);
    assert_eq!(env.stored(), on_disk(&a));
}

/// The notes of a refresh say what is true after a file and a folder swap names: an image
/// replaced by a folder is gone, not still on disk; a tracked folder replaced by an image is
/// missing, not skipped by walk options (which were printed empty).
#[test]
fn notes_after_a_file_and_a_folder_swap_names_say_what_is_on_disk() {
    let env = Env::new();
    let root = env.root();
    copy_groups(&root.join("f2d"), &["camera"]);
    env.index(&["f2d"], 0);
    let blur = root.join("f2d/camera/blur.jpg");
    std::fs::remove_file(&blur).unwrap();
    std::fs::create_dir(&blur).unwrap();
    let refresh = env.index(&["f2d"], 0);
    assert_eq!(refresh["removed"].as_u64(), Some(1), "{refresh}");
    assert_eq!(refresh["removed_on_disk"].as_u64(), Some(0), "{refresh}");

    copy_groups(&root.join("d2f"), &["camera"]);
    env.index(&["d2f"], 0);
    std::fs::rename(root.join("d2f"), root.join("d2f.dir")).unwrap();
    std::fs::copy(root.join("d2f.dir/camera/original.jpg"), root.join("d2f")).unwrap();
    let out = env.cmd().args(["index", "d2f"]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("missing: "), "{err}");
    assert!(!err.contains("skip every image"), "{err}");
    assert!(!err.contains("()"), "{err}");
}

/// A byte-identical copy of an indexed image kept outside the tracked folders is queried as
/// that image is, by the CLI as by the web app's upload: the same results in the same order.
#[test]
fn a_copy_outside_the_index_is_queried_as_its_indexed_twin() {
    let env = Env::new();
    let photos = env.root().join("photos");
    copy_groups(&photos, &["brick", "camera", "coffee"]);
    env.index(&["photos"], 0);
    let original = photos.join("camera/original.jpg");
    let outside = env.root().join("downloads");
    std::fs::create_dir_all(&outside).unwrap();
    let copy = outside.join("copy.jpg");
    std::fs::copy(&original, &copy).unwrap();
    let of_original = env.query(&original, &[]);
    let of_copy = env.query(&copy, &[]);
    assert_eq!(of_copy["indexed"].as_bool(), Some(true), "{of_copy}");
    assert_eq!(
        of_copy["hits"], of_original["hits"],
        "{of_copy}\n{of_original}"
    );
}
