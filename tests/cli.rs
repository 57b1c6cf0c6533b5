//! End-to-end tests: the real binary on copies of sample_data in temporary folders.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use serde_json::{Value, json};

fn sample_data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("sample_data")
}

/// Copies the given sample groups into `dst/photos/<group>/...`.
fn copy_groups(dst: &Path, groups: &[&str]) -> PathBuf {
    let photos = dst.join("photos");
    for g in groups {
        let from = sample_data().join(g);
        let to = photos.join(g);
        std::fs::create_dir_all(&to).unwrap();
        for entry in std::fs::read_dir(&from).unwrap() {
            let entry = entry.unwrap();
            std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }
    photos
}

struct Env {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    photos: PathBuf,
    index: PathBuf,
}

fn setup(groups: &[&str]) -> Env {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().to_path_buf();
    let photos = copy_groups(&root, groups);
    Env {
        index: root.join("idx"),
        root,
        photos,
        _tmp: tmp,
    }
}

impl Env {
    fn cmd(&self) -> Command {
        let mut c = Command::cargo_bin("lookalike").unwrap();
        c.current_dir(&self.root)
            .env_remove("LOOKALIKE_INDEX")
            .arg("--index-dir")
            .arg(&self.index);
        c
    }

    fn index_json(&self, expect_code: i32) -> Value {
        let out = self
            .cmd()
            .args(["index", "--json"])
            .arg(&self.photos)
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(expect_code),
            "stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    fn query_paths(&self, image: &Path, k: usize, extra: &[&str]) -> Vec<String> {
        let out = run_ok(
            self.cmd()
                .args(["query", "--json", "-k", &k.to_string()])
                .args(extra)
                .arg(image),
        );
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        v["hits"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["path"].as_str().unwrap().to_string())
            .collect()
    }
}

/// Runs `cmd` and returns its output, failing the test (with its stderr) unless it succeeded.
fn run_ok(cmd: &mut Command) -> std::process::Output {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn n(v: &Value, key: &str) -> u64 {
    v[key]
        .as_u64()
        .or_else(|| v[key].as_array().map(|a| a.len() as u64))
        .unwrap_or_else(|| panic!("no {key} in {v}"))
}

#[test]
fn index_is_incremental_and_tracks_changes() {
    let env = setup(&["camera", "coffee", "horse"]);
    let first = env.index_json(0);
    assert_eq!(n(&first, "new"), 18);
    assert!(first["ann_rebuilt"].as_bool().unwrap());

    let again = env.index_json(0);
    assert_eq!(n(&again, "unchanged"), 18);
    assert_eq!(
        n(&again, "new") + n(&again, "updated") + n(&again, "moved"),
        0
    );
    assert!(!again["ann_rebuilt"].as_bool().unwrap());
    assert!(again["ann_updated"].is_null(), "{again}");

    // Asked for, the graph is rebuilt even though nothing changed.
    let out = env
        .cmd()
        .args(["index", "--json", "--rebuild-graph"])
        .arg(&env.photos)
        .output()
        .unwrap();
    assert!(out.status.success());
    let rebuilt: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(rebuilt["ann_rebuilt"].as_bool().unwrap(), "{rebuilt}");

    // Rename: recognised by content, nothing decoded.
    std::fs::rename(
        env.photos.join("camera/crop.jpg"),
        env.photos.join("camera/renamed.jpg"),
    )
    .unwrap();
    // Rewrite: another image's bytes under an existing name.
    std::fs::copy(
        sample_data().join("chelsea/original.jpg"),
        env.photos.join("coffee/q30.jpg"),
    )
    .unwrap();
    // Delete.
    std::fs::remove_file(env.photos.join("horse/blur.jpg")).unwrap();
    let changed = env.index_json(0);
    assert_eq!(n(&changed, "moved"), 1, "{changed}");
    assert_eq!(n(&changed, "updated"), 1, "{changed}");
    assert_eq!(n(&changed, "removed"), 1, "{changed}");
    assert_eq!(n(&changed, "new"), 0, "{changed}");
    assert_eq!(n(&changed, "total_images"), 17);

    // A copy of indexed content reuses its features.
    std::fs::copy(
        env.photos.join("horse/original.jpg"),
        env.photos.join("horse/copy.jpg"),
    )
    .unwrap();
    // (It is extracted instead when the original was written within two seconds of the
    // previous run, which reads the original again in the same run.)
    let dup = env.index_json(0);
    assert_eq!(n(&dup, "duplicates") + n(&dup, "new"), 1, "{dup}");

    // The deleted file is never returned; the renamed one is, under its new name.
    let hits = env.query_paths(&env.photos.join("camera/original.jpg"), 17, &[]);
    assert!(!hits.iter().any(|h| h.ends_with("horse/blur.jpg")));
    assert!(hits.iter().any(|h| h.ends_with("camera/renamed.jpg")));
}

#[test]
fn corrupt_files_are_recorded_and_the_rest_indexed() {
    let env = setup(&["chelsea"]);
    std::fs::write(
        env.photos.join("chelsea/broken.jpg"),
        b"\xFF\xD8\xFF\xE0 not really",
    )
    .unwrap();
    std::fs::write(env.photos.join("empty.png"), b"").unwrap();
    let bytes = std::fs::read(sample_data().join("rocket/original.jpg")).unwrap();
    std::fs::write(env.photos.join("truncated.jpg"), &bytes[..bytes.len() / 3]).unwrap();
    std::fs::write(
        env.photos.join("notes.txt"),
        b"not an image, not named like one",
    )
    .unwrap();
    let out = env
        .cmd()
        .args(["index", "--json"])
        .arg(&env.photos)
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(3), "{v}");
    let failed: Vec<String> = v["failed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap().to_string())
        .collect();
    assert!(failed.iter().any(|p| p.ends_with("broken.jpg")), "{v}");
    assert!(failed.iter().any(|p| p.ends_with("empty.png")), "{v}");
    // The six good images (and the decodable prefix of the truncated JPEG, if any) are in.
    assert!(n(&v, "total_images") >= 6, "{v}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("broken.jpg"), "{stderr}");

    // Unchanged failures are not retried, but still reported by status and the exit status.
    // (Files written within two seconds of a run are checked again by the next one.)
    let again = env.index_json(3);
    let failing = n(&again, "still_failing") + again["failed"].as_array().unwrap().len() as u64;
    assert!(failing >= 2, "{again}");
    let status = env.cmd().args(["status", "--json"]).output().unwrap();
    let s: Value = serde_json::from_slice(&status.stdout).unwrap();
    assert!(s["failures"].as_array().unwrap().len() >= 2, "{s}");
    let graph = &s["hnsw_in_place"];
    assert_eq!(graph["updates_since_full_build"], 0, "{s}");
    assert_eq!(graph["hidden_points"], 0, "{s}");
    assert_eq!(graph["full_build_images"], s["images"], "{s}");
}

#[test]
fn query_returns_group_mates_first_and_exact_agrees() {
    let groups = ["astronaut", "brick", "coffee", "rocket", "retina"];
    let env = setup(&groups);
    env.index_json(0);
    for g in groups {
        let example = env.photos.join(g).join("original.jpg");
        let hits = env.query_paths(&example, 6, &[]);
        let mates = hits
            .iter()
            .filter(|h| h.contains(&format!("/{g}/")))
            .count();
        assert!(mates >= 5, "{g}: {hits:?}");
        let exact = env.query_paths(&example, 6, &["--exact"]);
        assert_eq!(hits, exact, "{g}");
    }
    // An example outside the index works too (decoded and extracted on the fly).
    let outside = sample_data().join("coffee/shift.jpg");
    let copy = env.root.join("outside.jpg");
    std::fs::copy(outside, &copy).unwrap();
    let hits = env.query_paths(&copy, 3, &[]);
    assert!(hits.iter().all(|h| h.contains("/coffee/")), "{hits:?}");
    // Family selection.
    let hits = env.query_paths(&copy, 3, &["--weights", "color"]);
    assert_eq!(hits.len(), 3);
}

#[test]
fn the_fast_profile_is_remembered_ranks_group_mates_first_and_can_be_left() {
    let groups = ["astronaut", "brick", "coffee", "rocket", "retina"];
    let env = setup(&groups);
    let out = run_ok(
        env.cmd()
            .args(["index", "--json", "--profile", "fast"])
            .arg(&env.photos),
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["profile"], "fast");
    let images = n(&v, "new");
    assert_eq!(n(&v, "failed"), 0);
    let status: Value =
        serde_json::from_slice(&run_ok(env.cmd().args(["status", "--json"])).stdout).unwrap();
    assert_eq!(status["profile"], "fast");
    assert_eq!(n(&status, "working_size"), 96);
    assert_eq!(n(&status, "outdated_feature_rows"), 0);
    let families: Vec<&str> = status["feature_versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| row[0].as_str().unwrap())
        .collect();
    assert_eq!(families, ["color", "dup", "lbp", "orient"]);
    for g in groups {
        let hits = env.query_paths(&env.photos.join(g).join("original.jpg"), 6, &[]);
        let mates = hits
            .iter()
            .filter(|h| h.contains(&format!("/{g}/")))
            .count();
        assert!(mates >= 5, "{g}: {hits:?}");
    }
    // An outside example is described as the index's images are.
    let copy = env.root.join("outside.jpg");
    std::fs::copy(sample_data().join("coffee/shift.jpg"), &copy).unwrap();
    let hits = env.query_paths(&copy, 3, &[]);
    assert!(hits.iter().all(|h| h.contains("/coffee/")), "{hits:?}");
    let out = env
        .cmd()
        .args(["query", "--weights", "conv"])
        .arg(&copy)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("choose from color, lbp, orient"),
        "{stderr}"
    );
    // The profile is remembered; asking for another re-extracts everything.
    let again = env.index_json(0);
    assert_eq!((n(&again, "unchanged"), n(&again, "updated")), (images, 0));
    assert_eq!(again["profile"], "fast");
    let out = run_ok(
        env.cmd()
            .args(["index", "--json", "--profile", "full"])
            .arg(&env.photos),
    );
    let full: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((n(&full, "updated"), n(&full, "unchanged")), (images, 0));
    assert_eq!(full["profile"], "full");
}

#[test]
fn query_expansion_of_an_outside_example_uses_its_nearest_neighbour() {
    // Without augmentation, an example's exact copy is its nearest neighbour at distance 0, and
    // expanding with it alone (--qe 1) gives back the example's own direction: the ranking must
    // equal the one without expansion. Expanding with any other hit would move it.
    // A blurred example (blur.jpg) ranks by its query view, LBP's weight moved onto the deconv
    // texture, not by its stored direction, so expansion may reorder its list; its exact copy
    // still comes first.
    let groups = ["astronaut", "brick", "coffee", "rocket", "retina", "horse"];
    let env = setup(&groups);
    run_ok(
        env.cmd()
            .args(["index", "--json", "--dba", "0"])
            .arg(&env.photos),
    );
    for g in groups {
        for variant in ["original.jpg", "blur.jpg", "shift.jpg", "q30.jpg"] {
            // bytes after the image's end: decoded as the indexed file is, but not its bytes
            // (a byte-identical copy is queried as the indexed image itself)
            let copy = env.root.join(format!("outside-{g}-{variant}"));
            let mut bytes = std::fs::read(env.photos.join(g).join(variant)).unwrap();
            bytes.extend_from_slice(b"outside");
            std::fs::write(&copy, bytes).unwrap();
            let expanded = env.query_paths(&copy, 12, &["--qe", "1", "--exact"]);
            let plain = env.query_paths(&copy, 12, &["--qe", "0", "--exact"]);
            if variant == "blur.jpg" {
                for list in [&expanded, &plain] {
                    assert!(list[0].ends_with(&format!("{g}/{variant}")), "{list:?}");
                }
            } else {
                assert_eq!(expanded, plain, "{g}/{variant}");
            }
        }
    }
}

#[test]
fn the_first_result_is_the_nearest_to_the_example() {
    // Blurred copies made outside the index: expansion and augmentation order the list, but
    // the first result is the shown one nearest to the example (the reordering itself is
    // tested on constructed spaces in the rank module).
    let groups: Vec<String> = std::fs::read_dir(sample_data())
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    let refs: Vec<&str> = groups.iter().map(String::as_str).collect();
    let env = setup(&refs);
    env.index_json(0);
    let first_is_nearest = |image: &Path| -> bool {
        let out = run_ok(
            env.cmd()
                .args(["query", "--json", "--exact", "-k", "10"])
                .arg(image),
        );
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        let d: Vec<f64> = v["hits"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["distance"].as_f64().unwrap())
            .collect();
        d.iter().all(|&x| d[0] <= x + 1e-6)
    };
    for g in &groups {
        let blurred = env.root.join(format!("{g}-blurred.png"));
        run_ok(
            env.cmd()
                .arg("blur")
                .arg(env.photos.join(g).join("original.jpg"))
                .arg(&blurred)
                .args(["--psf", "gaussian:3"]),
        );
        assert!(first_is_nearest(&blurred), "{g}");
    }
}

#[test]
fn numbers_out_of_range_are_refused_with_the_range_even_when_negative() {
    let env = setup(&["horse"]);
    for (args, expected) in [
        (
            &["query", "x.png", "--qe-alpha", "-1"][..],
            "use a number from 0 to 100",
        ),
        (
            &["query", "x.png", "-k", "-5"][..],
            "use a whole number from 1 to 10000",
        ),
        (
            &["query", "x.png", "-k", "2.5"][..],
            "use a whole number from 1 to 10000",
        ),
        (
            &["deblur", "a.png", "b.png", "--strength", "-0.5"][..],
            "use a number from 0 to 1",
        ),
        (
            &["index", ".", "--threads", "-1"][..],
            "use a whole number from 1 to 1024",
        ),
        (&["query", "x.png", "-k", "-5"][..], "-5 is out of range"),
        (&["eval", "x", "-k", "1,a"][..], "'a' is not a whole number"),
        (
            &["eval", "x", "-k", "5,,10"][..],
            "'' is not a whole number",
        ),
    ] {
        let out = env.cmd().args(args).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(expected), "{args:?}: {err}");
    }
}

#[test]
fn clear_errors_for_missing_index_bad_weights_and_busy_index() {
    let env = setup(&["horse"]);
    let out = env
        .cmd()
        .args(["query"])
        .arg(env.photos.join("horse/original.jpg"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("`lookalike --index-dir ") && err.contains(" index DIR`"),
        "{err}"
    );

    env.index_json(0);
    let out = env
        .cmd()
        .args(["query", "--weights", "colour=1"])
        .arg(env.photos.join("horse/original.jpg"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown feature family"));

    let out = env
        .cmd()
        .args(["index"])
        .arg(env.root.join("nope"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("nope"));

    let lock = lookalike::collection::Collection::at(&env.index)
        .lock_for_writing("index")
        .unwrap();
    let out = env.cmd().args(["index"]).arg(&env.photos).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("is being updated by `lookalike index` (process "),
        "{err}"
    );
    drop(lock);
}

#[test]
fn damaged_hnsw_dump_is_detected_and_rebuilt() {
    let env = setup(&["gravel", "grass"]);
    env.index_json(0);
    let ann = env.index.join("ann");
    let dump_dir = std::fs::read_dir(&ann)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    for entry in std::fs::read_dir(&dump_dir).unwrap() {
        let p = entry.unwrap().path();
        let bytes = std::fs::read(&p).unwrap();
        std::fs::write(&p, &bytes[..bytes.len() / 2]).unwrap();
    }
    // The query still answers (graph rebuilt in memory) and says why.
    let out = env
        .cmd()
        .args(["query"])
        .arg(env.photos.join("grass/original.jpg"))
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("dump unusable"));
    let again = env.index_json(0);
    assert!(again["ann_rebuilt"].as_bool().unwrap(), "{again}");
    let status = env.cmd().args(["status"]).output().unwrap();
    assert!(String::from_utf8_lossy(&status.stdout).contains("hnsw:      current"));
}

#[test]
fn augmentation_upgrades_old_dumps_and_can_be_turned_off_per_collection() {
    let env = setup(&["gravel", "grass"]);
    env.index_json(0);
    // Make the recorded dump look like one written before augmentation existed.
    let db = rusqlite::Connection::open(env.index.join("lookalike.db")).unwrap();
    let json: String = db
        .query_row("SELECT value FROM meta WHERE key = 'ann_dump'", [], |r| {
            r.get(0)
        })
        .unwrap();
    let mut record: Value = serde_json::from_str(&json).unwrap();
    let params = record["params"].as_object_mut().unwrap();
    params.remove("dba");
    params.remove("dba_share");
    db.execute(
        "UPDATE meta SET value = ?1 WHERE key = 'ann_dump'",
        [record.to_string()],
    )
    .unwrap();
    drop(db);
    let status = env.cmd().args(["status"]).output().unwrap();
    assert!(String::from_utf8_lossy(&status.stdout).contains("no augmentation"));
    let out = env
        .cmd()
        .args(["query", "--json"])
        .arg(env.photos.join("grass/original.jpg"))
        .output()
        .unwrap();
    assert!(out.status.success());
    let hits: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        hits["hits"][0]["path"]
            .as_str()
            .unwrap()
            .ends_with("grass/original.jpg")
    );
    let again = env.index_json(0);
    assert!(again["ann_rebuilt"].as_bool().unwrap(), "{again}");
    let status = env.cmd().args(["status"]).output().unwrap();
    assert!(String::from_utf8_lossy(&status.stdout).contains("averaged with 2 neighbours"));

    // `index --dba 0` turns augmentation off for the collection, and it stays off.
    let index_with = |extra: &[&str]| -> Value {
        let out = env
            .cmd()
            .args(["index", "--json"])
            .args(extra)
            .arg(&env.photos)
            .output()
            .unwrap();
        assert!(out.status.success());
        serde_json::from_slice(&out.stdout).unwrap()
    };
    assert!(
        index_with(&["--dba", "0"])["ann_rebuilt"]
            .as_bool()
            .unwrap()
    );
    let status = env.cmd().args(["status"]).output().unwrap();
    assert!(String::from_utf8_lossy(&status.stdout).contains("no augmentation (index --dba 0)"));
    assert!(!index_with(&[])["ann_rebuilt"].as_bool().unwrap());
    let out = env
        .cmd()
        .args(["query", "--json", "--qe", "0"])
        .arg(env.photos.join("gravel/original.jpg"))
        .output()
        .unwrap();
    let hits: Value = serde_json::from_slice(&out.stdout).unwrap();
    // The example's edited copies (the other gravel variants) come first; the rest rank by
    // distance.
    let hits = hits["hits"].as_array().unwrap();
    let copies = hits
        .iter()
        .take_while(|h| h["path"].as_str().unwrap().contains("/gravel/"))
        .count();
    assert!(copies >= 4, "{hits:?}");
    let distances: Vec<f64> = hits[copies..]
        .iter()
        .map(|h| h["distance"].as_f64().unwrap())
        .collect();
    assert!(
        distances.windows(2).all(|w| w[0] <= w[1]),
        "plain vectors without QE rank by distance after the copies: {distances:?}"
    );
    assert!(
        index_with(&["--dba", "2"])["ann_rebuilt"]
            .as_bool()
            .unwrap()
    );
}

#[test]
fn eval_on_sample_groups_and_distortion_benchmark_end_to_end() {
    let env = setup(&["astronaut", "coffee", "rocket"]);
    // Folder-as-class: the three groups are the classes.
    let labelled = |args: &[&str]| -> Value {
        let out = run_ok(
            env.cmd()
                .args(["eval", "--labels", "folders", "--json"])
                .args(args)
                .arg(&env.photos),
        );
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let v = labelled(&["--families", "color,fused"]);
    let runs = v["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 4, "color and fused, exact and hnsw");
    for r in runs {
        let map = r["evaluation"]["summary"]["map"].as_f64().unwrap();
        assert!(map > 0.8, "{}: mAP {map}", r["family"]);
    }
    // Queries blurred, then saved as JPEG: a chain of distortions, named in the title.
    let v = labelled(&[
        "--families",
        "fused",
        "--no-hnsw",
        "--query-distortion",
        "blur:2+jpeg:50",
    ]);
    let title = v["dataset"].as_str().unwrap();
    assert!(
        title.ends_with("queries distorted with blur:2+jpeg:50"),
        "{title}"
    );
    let map = v["runs"][0]["evaluation"]["summary"]["map"]
        .as_f64()
        .unwrap();
    assert!(map > 0.6, "fused under blur:2+jpeg:50: mAP {map}");
    // A bad chain is refused before anything is indexed.
    let unused_index = env.root.join("never-made");
    let refused_chain = |chain: &str| {
        Command::cargo_bin("lookalike")
            .unwrap()
            .arg("--index-dir")
            .arg(&unused_index)
            .args(["eval", "--labels", "folders"])
            .args(["--query-distortion", chain])
            .arg(&env.photos)
            .output()
            .unwrap()
    };
    let out = refused_chain("blur:2+nope");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("\"nope\"") && err.contains("unknown kind"),
        "{err}"
    );
    assert!(!unused_index.exists());
    // A chain that enlarges the queries past one `scale:4` is refused too, naming the limit.
    let out = refused_chain("scale:4+scale:4+scale:4");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("16 times the input's, over the 4 times a chain may make"),
        "{err}"
    );
    assert!(!unused_index.exists());
    // Distortion benchmark on an unlabelled folder: every distorted copy finds its original.
    let out = run_ok(
        env.cmd()
            .args(["eval", "--distort"])
            .arg(&env.photos)
            .args([
                "--sample",
                "4",
                "--suite",
                "blur:1,jpeg:50,crop:0.1",
                "--families",
                "fused",
                "--json",
            ]),
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = v.as_array().unwrap();
    assert_eq!(rows.len(), 6, "3 distortions x exact/hnsw");
    for r in rows {
        assert_eq!(r["queries"].as_u64(), Some(4));
        assert!(r["recall_at_10"].as_f64().unwrap() >= 0.75, "{r}");
    }
    // A bad ground-truth file is a clear error naming it.
    let gt = env.root.join("gt.tsv");
    std::fs::write(&gt, "file\tlabel\nastronaut/original.jpg\tnot-a-number\n").unwrap();
    let out = env
        .cmd()
        .args(["eval", "--groundtruth"])
        .arg(&gt)
        .arg("--images")
        .arg(&env.photos)
        .arg(&env.photos)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("gt.tsv"), "{err}");
}

#[test]
fn exif_orientation_is_applied() {
    // JPEGs whose EXIF says "rotate 90 degrees", indexed upright: 64x32 (decoded whole) and
    // 1024x512 (scaled by 1/4 in the DCT domain).
    use image::ImageEncoder;
    for ((w, h), working) in [((64, 32), (32, 64)), ((1024, 512), (128, 256))] {
        let img = image::RgbImage::from_fn(w, h, |x, _| image::Rgb([(x * 4) as u8, 0, 0]));
        let mut jpeg = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 90)
            .write_image(img.as_raw(), w, h, image::ExtendedColorType::Rgb8)
            .unwrap();
        let d = lookalike::decode::decode(
            &with_orientation_6(&jpeg),
            Path::new("rotated.jpg"),
            &lookalike::decode::DecodeConfig::default(),
        )
        .unwrap();
        assert_eq!((d.width, d.height), (h, w));
        assert_eq!(d.image.dimensions(), working);
    }
}

/// `jpeg` with an APP1 "Exif" segment (little-endian TIFF, one IFD entry: Orientation = 6).
fn with_orientation_6(jpeg: &[u8]) -> Vec<u8> {
    let mut tiff = b"II*\0\x08\0\0\0".to_vec();
    tiff.extend_from_slice(&1u16.to_le_bytes());
    tiff.extend_from_slice(&0x0112u16.to_le_bytes());
    tiff.extend_from_slice(&3u16.to_le_bytes());
    tiff.extend_from_slice(&1u32.to_le_bytes());
    tiff.extend_from_slice(&6u16.to_le_bytes());
    tiff.extend_from_slice(&[0, 0]);
    tiff.extend_from_slice(&0u32.to_le_bytes());
    let mut app1 = b"Exif\0\0".to_vec();
    app1.extend_from_slice(&tiff);
    let mut with_exif = jpeg[..2].to_vec();
    with_exif.extend_from_slice(&[0xFF, 0xE1]);
    with_exif.extend_from_slice(&((app1.len() + 2) as u16).to_be_bytes());
    with_exif.extend_from_slice(&app1);
    with_exif.extend_from_slice(&jpeg[2..]);
    with_exif
}

#[test]
fn schema_v1_index_migrates_keeps_its_images_and_records_runs() {
    let env = setup(&["brick"]);
    std::fs::create_dir_all(&env.index).unwrap();
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/schema_v1");
    std::fs::copy(fixture.join("lookalike.db"), env.index.join("lookalike.db")).unwrap();
    // The v1 folder, as recorded, is not there (a disk not mounted): its rows are kept as they
    // were written, whatever the machine.
    let gone = env.index.join("gone/images");
    rusqlite::Connection::open(env.index.join("lookalike.db"))
        .unwrap()
        .execute(
            "UPDATE roots SET path = ?1",
            [gone.to_str().unwrap().as_bytes()],
        )
        .unwrap();

    // Reading commands do not write, so they ask for the one-off upgrade.
    let out = env.cmd().args(["status"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "run `lookalike --index-dir {} index` once to upgrade",
            env.index.display()
        )),
        "{err}"
    );

    // The run walks every tracked folder to bring all images to the profile: the v1 folder
    // is reported missing (exit 3) and its images kept.
    let summary = env.index_json(3);
    assert_eq!(n(&summary, "new"), 6);
    assert_eq!(
        summary["missing_roots"][0],
        gone.to_str().unwrap(),
        "{summary}"
    );
    assert_eq!(summary["graph_images"], 6, "{summary}");
    let out = env.cmd().args(["status", "--json"]).output().unwrap();
    assert!(out.status.success());
    let status: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["schema_version"], lookalike::store::SCHEMA_VERSION);
    assert_eq!(status["images"], 4 + 6, "the v1 images are kept");
    assert_eq!(status["last_run"]["outcome"], "complete");
    // the run's time as printed is the time recorded
    assert_eq!(
        status["last_run"]["summary"]["elapsed_secs"], summary["elapsed_secs"],
        "{status}"
    );
    // The v1 images' vectors are of older extractors (and lack orient), and their folder is
    // away: status says so, and searches leave them out, with a note, rather than compare
    // vectors of two versions.
    assert_eq!(status["images_missing_family"]["orient"], 4, "{status}");
    assert_eq!(status["images_missing_family"]["color"], 4, "{status}");
    let red = fixture.join("images/red_disc.png");
    let out = run_ok(env.cmd().args(["query", "--json", "-k", "20"]).arg(&red));
    let hits: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(hits["hits"].as_array().unwrap().len(), 6, "{hits}");
    assert!(
        hits["note"]
            .as_str()
            .is_some_and(|n| n.contains("4 indexed images")),
        "{hits}"
    );

    // With their folder back, the next run extracts them again and they are found.
    std::fs::create_dir_all(&gone).unwrap();
    for entry in std::fs::read_dir(fixture.join("images")).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), gone.join(entry.file_name())).unwrap();
    }
    let summary = env.index_json(0);
    assert_eq!(n(&summary, "updated"), 4, "{summary}");
    for name in ["red_disc", "green_bars", "blue_grid", "yellow_noise"] {
        let hits = env.query_paths(&fixture.join(format!("images/{name}.png")), 1, &[]);
        assert!(
            hits[0].ends_with(&format!("gone/images/{name}.png")),
            "{name}: {hits:?}"
        );
    }
}

/// A file name made of raw bytes (not necessarily UTF-8).
fn raw_name(bytes: &[u8]) -> std::ffi::OsString {
    use std::os::unix::ffi::OsStrExt;
    std::ffi::OsStr::from_bytes(bytes).to_os_string()
}

const FORGED: &[u8] = b"x.jpg\n  2  0.0000  spoof";

/// Photos named with bytes that are not UTF-8 and with a newline that would forge a result line
/// (plus a broken one with such a name): every JSON output stays whole and keeps the exact bytes,
/// every text output escapes them.
#[test]
fn odd_file_names_keep_json_whole_and_cannot_forge_text() {
    let env = setup(&["horse", "grass"]);
    let horse = std::fs::read(env.photos.join("horse/original.jpg")).unwrap();
    let latin1 = b"caf\xe9.jpg".to_vec();
    std::fs::write(env.photos.join("horse").join(raw_name(&latin1)), &horse).unwrap();
    std::fs::write(env.photos.join("horse").join(raw_name(FORGED)), &horse).unwrap();
    let broken = b"bad\xff\x1b[2J.jpg".to_vec();
    std::fs::write(
        env.photos.join(raw_name(&broken)),
        b"\xFF\xD8\xFF not a jpeg",
    )
    .unwrap();

    let out = env
        .cmd()
        .args(["index", "--json"])
        .arg(&env.photos)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    let v: Value = serde_json::from_slice(&out.stdout).expect("index --json is whole JSON");
    let failed = &v["failed"][0];
    let photos = std::fs::canonicalize(&env.photos).unwrap();
    let mut expected = photos.as_os_str().as_encoded_bytes().to_vec();
    expected.push(b'/');
    expected.extend_from_slice(&broken);
    assert_eq!(failed["path_bytes"], serde_json::json!(expected), "{v}");
    assert!(
        failed["path"]
            .as_str()
            .unwrap()
            .ends_with("bad\u{fffd}\u{1b}[2J.jpg")
    );
    assert!(stderr.contains("bad\\xff\\u{1b}[2J.jpg"), "{stderr}");
    assert!(!stderr.contains('\u{1b}'), "{stderr}");

    let out = run_ok(
        env.cmd()
            .args(["query", "--json", "-k", "10"])
            .arg(env.photos.join("horse/original.jpg")),
    );
    let q: Value = serde_json::from_slice(&out.stdout).expect("query --json is whole JSON");
    let hits = q["hits"].as_array().unwrap();
    let with_bytes: Vec<&Value> = hits
        .iter()
        .filter(|h| h.get("path_bytes").is_some())
        .collect();
    assert_eq!(with_bytes.len(), 1, "{q}");
    let bytes: Vec<u8> = with_bytes[0]["path_bytes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b.as_u64().unwrap() as u8)
        .collect();
    assert!(bytes.ends_with(&latin1), "{q}");
    assert!(
        hits.iter().any(|h| h["path"]
            .as_str()
            .unwrap()
            .ends_with("x.jpg\n  2  0.0000  spoof")),
        "{q}"
    );
    // Only names that are not UTF-8 carry bytes: the query path here is plain.
    assert!(q.get("query_bytes").is_none(), "{q}");

    let out = run_ok(
        env.cmd()
            .args(["query", "-k", "10"])
            .arg(env.photos.join("horse/original.jpg")),
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text.lines().count(), hits.len(), "{text}");
    assert!(
        !text
            .lines()
            .any(|l| l.contains("spoof") && !l.contains("x.jpg\\n")),
        "{text}"
    );
    assert!(text.contains("caf\\xe9.jpg"), "{text}");

    let out = env.cmd().args(["status", "--json"]).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s: Value = serde_json::from_slice(&out.stdout).expect("status --json is whole JSON");
    assert_eq!(
        s["failures"][0]["path_bytes"],
        serde_json::json!(expected),
        "{s}"
    );
    assert!(s["roots"].as_array().unwrap().len() == 1 && s.get("roots_bytes").is_none());

    let out = run_ok(env.cmd().args(["status"]));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("bad\\xff\\u{1b}[2J.jpg"), "{text}");
    assert!(!text.contains('\u{1b}'), "{text}");
}

/// Messages that name a file in their text show its bytes that are not UTF-8 as `\xNN`, as the
/// listings do, so names differing in such a byte read apart (each was U+FFFD).
#[cfg(unix)]
#[test]
fn messages_name_files_that_are_not_utf8_by_their_bytes() {
    let env = setup(&["horse"]);
    let photo = env.photos.join("horse/original.jpg");
    let refused = |cmd: &mut Command, names: &[&str]| {
        let out = cmd.output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(2), "{err}");
        for name in names {
            assert!(err.contains(name), "{name}: {err}");
        }
        assert!(!err.contains('\u{fffd}'), "{err}");
    };
    // `duplicates` given a file, not a folder
    let file = env.root.join(raw_name(b"a\xfe.jpg"));
    std::fs::copy(&photo, &file).unwrap();
    refused(
        env.cmd().arg("duplicates").arg(&file),
        &["a\\xfe.jpg: not a folder"],
    );
    // `deblur` told to write over its input, named through a link
    let link = env.root.join(raw_name(b"a\xff.jpg"));
    std::os::unix::fs::symlink(&file, &link).unwrap();
    refused(
        env.cmd().arg("deblur").arg(&file).arg(&link),
        &["a\\xff.jpg is the input ", "a\\xfe.jpg"],
    );
    // `eval --labels folders` left with no image it can name
    let classes = env.root.join("classes");
    std::fs::create_dir_all(classes.join("horse")).unwrap();
    std::fs::copy(&photo, classes.join("horse").join(raw_name(b"b\xfe.jpg"))).unwrap();
    refused(
        env.cmd()
            .args(["eval", "--labels", "folders"])
            .arg(&classes),
        &[
            "not valid UTF-8 left out, e.g. ",
            "horse/b\\xfe.jpg: rename it",
        ],
    );
}

/// An index folder whose name is not UTF-8: `status --json` names it whole and exactly.
#[test]
fn an_index_dir_named_with_raw_bytes_is_reported_exactly() {
    let env = setup(&["horse"]);
    let dir = env.root.join(raw_name(b"idx\xfe"));
    let mut index = Command::cargo_bin("lookalike").unwrap();
    index
        .current_dir(&env.root)
        .env_remove("LOOKALIKE_INDEX")
        .arg("--index-dir")
        .arg(&dir)
        .args(["-q", "index", "--json"])
        .arg(&env.photos);
    let out = run_ok(&mut index);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(n(&v, "total_images") > 0, "{v}");
    let out = run_ok(
        Command::cargo_bin("lookalike")
            .unwrap()
            .env_remove("LOOKALIKE_INDEX")
            .arg("--index-dir")
            .arg(&dir)
            .args(["status", "--json"]),
    );
    let s: Value = serde_json::from_slice(&out.stdout).unwrap();
    let bytes: Vec<u8> = s["index_dir_bytes"]
        .as_array()
        .unwrap_or_else(|| panic!("{s}"))
        .iter()
        .map(|b| b.as_u64().unwrap() as u8)
        .collect();
    assert_eq!(bytes, dir.as_os_str().as_encoded_bytes());
}

/// Out-of-range and non-finite flag values are refused up front with exit status 2 and a
/// message naming the flag, never a panic or a runaway.
#[test]
fn absurd_flag_values_are_refused_with_exit_status_2() {
    let env = setup(&["horse"]);
    let img = env.photos.join("horse/original.jpg");
    let img = img.to_str().unwrap();
    let out_png = env.root.join("out.png");
    let out_png = out_png.to_str().unwrap();
    let cases: Vec<Vec<&str>> = vec![
        vec!["query", img, "-k", "0"],
        vec!["query", img, "-k", "10001"],
        vec!["query", img, "-k", "4294967296"],
        vec!["query", img, "-k", "4611686018427387904"],
        vec!["query", img, "-k", "-1"],
        vec!["query", img, "--qe-alpha", "NaN"],
        vec!["query", img, "--qe-alpha", "inf"],
        vec!["query", img, "--qe-alpha", "-1"],
        vec!["query", img, "--qe", "18446744073709551615"],
        vec!["index", "photos", "--threads", "100000"],
        vec!["index", "photos", "--threads", "0"],
        vec!["index", "photos", "--dba", "1000000"],
        vec!["eval", "photos", "-k", "0"],
        vec!["eval", "photos", "-k", "1,99999"],
        vec!["eval", "--distort", "photos", "--sample", "0"],
        vec!["eval", "photos", "--depth", "0"],
        vec!["eval", "photos", "--dba-alpha", "NaN"],
        vec!["eval", "photos", "--dba-share", "-inf"],
        vec![
            "blur",
            img,
            out_png,
            "--psf",
            "gaussian:2",
            "--noise",
            "NaN",
        ],
        vec!["blur", img, out_png, "--psf", "gaussian:1e30"],
        vec!["blur", img, out_png, "--psf", "motion:5,inf"],
        vec!["deblur", img, out_png, "--iterations", "0"],
        vec!["deblur", img, out_png, "--iterations", "100000000"],
        vec!["deblur", img, out_png, "--iterations", "7"],
        vec![
            "deblur",
            img,
            out_png,
            "--method",
            "wiener",
            "--no-early-stop",
        ],
        vec!["deblur", img, out_png, "--strength", "NaN"],
        vec!["deblur", img, out_png, "--strength", "2"],
    ];
    for args in &cases {
        let out = env.cmd().args(args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert!(stderr.contains("error"), "{args:?}: {stderr}");
        // a flag is named as it is typed
        if args.contains(&"-k") {
            assert!(stderr.contains("'-k <K>'"), "{args:?}: {stderr}");
        }
    }
    assert!(!env.root.join("out.png").exists());

    env.index_json(0);
    for (weights, says) in [
        ("color=1,color=2", "given twice"),
        ("color=-1", "0 or a number from 0.001 to 1000"),
        ("color=NaN", "0 or a number from 0.001 to 1000"),
        ("color=1e-45", "0 or a number from 0.001 to 1000"),
        ("color=0,conv=0", "above 0"),
    ] {
        let out = env
            .cmd()
            .args(["query", img, "--weights", weights])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{weights}: {stderr}");
        assert!(stderr.contains(says), "{weights}: {stderr}");
    }
    // The largest accepted values work.
    let out = run_ok(
        env.cmd()
            .args(["query", img, "-k", "10000", "--qe-alpha", "100", "--json"]),
    );
    let q: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(!q["hits"].as_array().unwrap().is_empty());
}

/// One file that cannot be decoded is counted in the singular, with the verb that agrees.
#[test]
fn index_counts_one_failed_file_in_the_singular() {
    let env = setup(&["horse"]);
    std::fs::write(env.photos.join("broken.jpg"), b"\xFF\xD8\xFF\xE0 nope").unwrap();
    let out = env.cmd().args(["index"]).arg(&env.photos).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains(
            "1 file could not be indexed (1 in this run, 0 unchanged since they failed before)"
        ),
        "{stderr}"
    );
    assert!(stderr.contains(", 1 failed in "), "{stderr}");
}

/// A re-run that leaves earlier failures in place still exits 3 and says why.
#[test]
fn index_exits_3_while_recorded_failures_remain() {
    let env = setup(&["horse"]);
    std::fs::write(env.photos.join("broken.jpg"), b"\xFF\xD8\xFF\xE0 nope").unwrap();
    let first = env.index_json(3);
    assert_eq!(first["failed"].as_array().unwrap().len(), 1, "{first}");
    let out = env.cmd().args(["index"]).arg(&env.photos).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("1 file could not be indexed"), "{stderr}");
    assert!(
        stderr.contains("`lookalike --index-dir ") && stderr.contains(" status` lists"),
        "{stderr}"
    );
    // Once the file is gone, all is well again.
    std::fs::remove_file(env.photos.join("broken.jpg")).unwrap();
    env.index_json(0);
}

/// The resume hint of an unfinished run names the index folder, shell-quoted, when it is not
/// the default one.
#[test]
fn the_resume_hint_names_a_non_default_index_dir() {
    let env = setup(&["horse"]);
    let index = env.root.join("my idx's");
    let cmd = || {
        let mut c = Command::cargo_bin("lookalike").unwrap();
        c.current_dir(&env.root)
            .env_remove("LOOKALIKE_INDEX")
            .arg("--index-dir")
            .arg(&index);
        c
    };
    run_ok(cmd().args(["-q", "index"]).arg(&env.photos));
    let photos = std::fs::canonicalize(&env.photos).unwrap();
    {
        let mut store = lookalike::collection::Collection::at(&index)
            .open_store()
            .unwrap();
        store.begin_run(std::slice::from_ref(&photos)).unwrap();
    }
    let out = run_ok(cmd().args(["status"]));
    let text = String::from_utf8(out.stdout).unwrap();
    let quoted = format!("'{}'", index.to_str().unwrap().replace('\'', r#"'"'"'"#));
    let expected = format!(
        "`lookalike --index-dir {quoted} index {}`",
        photos.display()
    );
    assert!(text.contains(&expected), "{expected}\n{text}");

    // In the default folder the hint needs no --index-dir.
    let mut plain = Command::cargo_bin("lookalike").unwrap();
    plain.current_dir(&env.root).env_remove("LOOKALIKE_INDEX");
    run_ok(plain.args(["-q", "index"]).arg(&env.photos));
    {
        let mut store = lookalike::collection::Collection::at(env.root.join(".lookalike"))
            .open_store()
            .unwrap();
        store.begin_run(std::slice::from_ref(&photos)).unwrap();
    }
    let mut plain = Command::cargo_bin("lookalike").unwrap();
    let out = run_ok(
        plain
            .current_dir(&env.root)
            .env_remove("LOOKALIKE_INDEX")
            .arg("status"),
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains(&format!("`lookalike index {}`", photos.display())),
        "{text}"
    );
}

/// With -q, blur, deblur and quality print nothing on stderr; without it blur and deblur say
/// what they wrote there.
#[test]
fn restore_commands_are_silent_with_quiet() {
    let env = setup(&["horse"]);
    let img = env.photos.join("horse/original.jpg");
    let blurred = env.root.join("blurred.png");
    let restored = env.root.join("restored.png");
    // without --index-dir, which these commands, using no index, warn about
    let run = |quiet: bool, args: &[&std::ffi::OsStr]| {
        let mut c = Command::cargo_bin("lookalike").unwrap();
        c.current_dir(&env.root).env_remove("LOOKALIKE_INDEX");
        if quiet {
            c.arg("-q");
        }
        run_ok(c.args(args))
    };
    for quiet in [true, false] {
        let blur = run(
            quiet,
            &[
                "blur".as_ref(),
                img.as_os_str(),
                blurred.as_os_str(),
                "--psf".as_ref(),
                "gaussian:1.5".as_ref(),
            ],
        );
        let deblur = run(
            quiet,
            &[
                "deblur".as_ref(),
                blurred.as_os_str(),
                restored.as_os_str(),
                "--psf".as_ref(),
                "gaussian:1.5".as_ref(),
                "--method".as_ref(),
                "wiener".as_ref(),
            ],
        );
        let quality = run(
            quiet,
            &["quality".as_ref(), img.as_os_str(), restored.as_os_str()],
        );
        assert!(quality.stderr.is_empty());
        assert!(String::from_utf8_lossy(&quality.stdout).contains("PSNR"));
        if quiet {
            for out in [&blur, &deblur] {
                assert!(
                    out.stderr.is_empty(),
                    "{}",
                    String::from_utf8_lossy(&out.stderr)
                );
                assert!(
                    out.stdout.is_empty(),
                    "{}",
                    String::from_utf8_lossy(&out.stdout)
                );
            }
        } else {
            assert!(String::from_utf8_lossy(&blur.stderr).contains("->"));
            assert!(String::from_utf8_lossy(&deblur.stderr).contains("->"));
        }
    }
}

/// A damaged database exits 4 (status, status --check, query); the exit statuses are listed in
/// the top-level help.
#[test]
fn a_damaged_index_exits_4_and_the_help_lists_exit_statuses() {
    let env = setup(&["horse", "grass"]);
    env.index_json(0);
    let db = lookalike::collection::Collection::at(&env.index).db_path();
    let mut bytes = std::fs::read(&db).unwrap();
    // Garbage over every page but the first: the header opens, the tables are damaged.
    let page = u16::from_be_bytes([bytes[16], bytes[17]]) as usize;
    for b in &mut bytes[page..] {
        *b = 0xA5;
    }
    std::fs::write(&db, &bytes).unwrap();
    for suffix in ["-wal", "-shm"] {
        let mut side = db.clone().into_os_string();
        side.push(suffix);
        let _ = std::fs::remove_file(side);
    }
    let mut advised = 0;
    for args in [&["status", "--check"][..], &["status"], &["query", "x.jpg"]] {
        let out = env.cmd().args(args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(4), "{args:?}: {stderr}");
        // the index folder may be a photo folder too: only the database is named for deletion
        assert!(!stderr.contains("delete the index folder"), "{stderr}");
        advised += usize::from(stderr.contains("restore lookalike.db from a backup, or delete it"));
    }
    assert!(advised > 0);
    std::fs::write(
        &db,
        b"this is not a database at all, not even close to one......",
    )
    .unwrap();
    let out = env.cmd().args(["status"]).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let help = run_ok(Command::cargo_bin("lookalike").unwrap().arg("--help"));
    let help = String::from_utf8(help.stdout).unwrap();
    for code in ["0 ", "1 ", "2 ", "3 ", "4 ", "130 "] {
        assert!(help.contains(&format!("\n  {code}")), "{code}: {help}");
    }
    // clap's own usage errors are 2 as well.
    let out = Command::cargo_bin("lookalike")
        .unwrap()
        .arg("--no-such-flag")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

/// An index folder no file can be made in (/proc) is named as unusable, with what to do; it
/// said only "/proc/index.lock: No such file or directory".
#[cfg(target_os = "linux")]
#[test]
fn an_index_folder_no_file_can_be_made_in_says_what_to_do() {
    let env = setup(&["horse"]);
    let out = Command::cargo_bin("lookalike")
        .unwrap()
        .current_dir(&env.root)
        .env("LOOKALIKE_INDEX", "/proc")
        .args(["index"])
        .arg(&env.photos)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("/proc: the index folder cannot be used"),
        "{stderr}"
    );
    assert!(
        stderr.contains("--index-dir (or LOOKALIKE_INDEX)"),
        "{stderr}"
    );
}

/// Copies the folder `from` with everything in it to `to`.
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &to.join(entry.file_name()));
        } else {
            std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }
}

/// Every command that opens the index, as its words: `image` is an indexed image, `photos` a
/// tracked folder.
fn commands_opening_the_index(image: &str, photos: &str) -> Vec<Vec<String>> {
    [
        &["status"][..],
        &["status", "--check"],
        &["query", image],
        &["duplicates"],
        &["forget", photos],
        &["eval", "--labels", "folders", photos],
        &["serve", "--port", "0"],
        &["index"],
    ]
    .iter()
    .map(|words| words.iter().map(|w| w.to_string()).collect())
    .collect()
}

/// A database cut short while its write-ahead log holds pages past the cut reads as damaged by
/// every command that opens the index (exit 4, the damage advice), never as a full disk.
#[test]
fn a_database_cut_short_is_damage_for_every_command_not_a_full_disk() {
    let env = setup(&["horse", "grass"]);
    env.index_json(0);
    let db = lookalike::collection::Collection::at(&env.index).db_path();
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute_batch(
        "PRAGMA wal_autocheckpoint = 0; INSERT INTO meta(key, value) VALUES ('cut', 'x');",
    )
    .unwrap();
    // left open: its log stays unmerged, as a process stopped while writing leaves it
    std::mem::forget(conn);
    let len = std::fs::metadata(&db).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&db)
        .unwrap()
        .set_len(len / 2)
        .unwrap();
    let mut wal = db.clone().into_os_string();
    wal.push("-wal");
    assert!(std::fs::metadata(&wal).unwrap().len() > 0);
    let image = env.photos.join("horse/original.jpg");
    let image = image.to_str().unwrap();
    let photos = env.photos.to_str().unwrap();
    for args in commands_opening_the_index(image, photos) {
        // each on its own copy of the damaged index: a command may write to it
        let copy = env
            .root
            .join(format!("idx-{}", args.join("-").replace('/', "")));
        copy_tree(&env.index, &copy);
        let out = Command::cargo_bin("lookalike")
            .unwrap()
            .current_dir(&env.root)
            .env_remove("LOOKALIKE_INDEX")
            .arg("--index-dir")
            .arg(&copy)
            .args(&args)
            .timeout(std::time::Duration::from_secs(60))
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(4), "{args:?}: {stderr}");
        assert!(!stderr.contains("free some space"), "{args:?}: {stderr}");
        assert!(
            stderr.contains("restore lookalike.db from a backup, or delete it"),
            "{args:?}: {stderr}"
        );
    }
}

/// A database whose schema is not the one lookalike's migrations made (a table another tool
/// dropped, an index gone, a table of another program added, a table made again with other
/// columns) is damage for every command that opens it: exit 4 and the advice. It passed
/// `status --check`, and `index` then failed with exit 1 and SQLite's "no such table".
#[test]
fn a_database_unlike_the_schema_lookalike_made_is_damage_for_every_command() {
    let env = setup(&["horse", "grass"]);
    env.index_json(0);
    let db = lookalike::collection::Collection::at(&env.index).db_path();
    // a new image: `index` has a thumbnail to write
    copy_groups(&env.root.join("more"), &["gravel"]);
    let image = env.photos.join("horse/original.jpg");
    let image = image.to_str().unwrap();
    let photos = env.photos.to_str().unwrap();
    let every = commands_opening_the_index(image, photos);
    let few: Vec<Vec<String>> = every
        .iter()
        .filter(|c| **c == ["status", "--check"] || c[0] == "query" || **c == ["index"])
        .cloned()
        .collect();
    assert_eq!(few.len(), 3);
    for (change, told, commands) in [
        (
            "DROP TABLE thumbnails",
            "table `thumbnails` is missing",
            &every,
        ),
        (
            "DROP INDEX images_by_hash",
            "index `images_by_hash` is missing",
            &few,
        ),
        (
            "CREATE TABLE moz_places (id INTEGER PRIMARY KEY, url TEXT)",
            "table `moz_places` is not lookalike's",
            &few,
        ),
        (
            "DROP TABLE failures; CREATE TABLE failures (root_id INTEGER, rel_path BLOB)",
            "table `failures` is not as lookalike made it",
            &few,
        ),
    ] {
        for args in commands {
            // each on its own copy: a command may write to it
            let copy = env.root.join("idx-copy");
            let _ = std::fs::remove_dir_all(&copy);
            copy_tree(&env.index, &copy);
            let copied_db = copy.join(db.file_name().unwrap());
            rusqlite::Connection::open(&copied_db)
                .unwrap()
                .execute_batch(change)
                .unwrap();
            let mut cmd = Command::cargo_bin("lookalike").unwrap();
            cmd.current_dir(&env.root)
                .env_remove("LOOKALIKE_INDEX")
                .arg("--index-dir")
                .arg(&copy)
                .args(args);
            if *args == ["index"] {
                cmd.arg(&env.photos).arg(env.root.join("more"));
            }
            let out = cmd
                .timeout(std::time::Duration::from_secs(60))
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(4), "{change}: {args:?}: {stderr}");
            assert!(stderr.contains(told), "{change}: {args:?}: {stderr}");
            assert!(
                stderr.contains("restore lookalike.db from a backup, or delete it"),
                "{change}: {args:?}: {stderr}"
            );
            assert!(
                !stderr.contains("internal error"),
                "{change}: {args:?}: {stderr}"
            );
        }
    }
}

/// `status --check --json` tells damage in `integrity`, also damage met on opening the index (a
/// table another tool dropped): the same object on stdout, the fields it could not read null,
/// and exit status 4 with the error on stderr. It printed nothing on stdout; other commands
/// under `--json` still do not.
#[test]
fn status_check_json_reports_damage_found_on_opening_the_index() {
    let env = setup(&["horse"]);
    env.index_json(0);
    let keys = |doc: &Value| -> Vec<String> {
        let mut keys: Vec<String> = doc.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        keys
    };
    let out = run_ok(env.cmd().args(["status", "--check", "--json"]));
    let healthy: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(healthy["integrity"], "ok", "{healthy}");
    let db = lookalike::collection::Collection::at(&env.index).db_path();
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute_batch("DROP TABLE thumbnails")
        .unwrap();
    let out = env
        .cmd()
        .args(["status", "--check", "--json"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    assert!(stderr.contains("table `thumbnails` is missing"), "{stderr}");
    let doc: Value = serde_json::from_slice(&out.stdout).expect("one JSON object on stdout");
    assert!(
        doc["integrity"]
            .as_str()
            .is_some_and(|s| s.contains("table `thumbnails` is missing")),
        "{doc}"
    );
    assert_eq!(keys(&doc), keys(&healthy), "{doc}");
    assert!(doc["images"].is_null() && doc["roots"].is_null(), "{doc}");
    assert_eq!(doc["index_dir"], healthy["index_dir"]);
    // without --check, or for another command, the error is on stderr only
    for args in [&["status", "--json"][..], &["duplicates", "--json"]] {
        let out = env.cmd().args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(4), "{args:?}");
        assert!(out.stdout.is_empty(), "{args:?}");
    }
}

/// Files indexed a while ago that only trade names keep their images (ids and vectors): the
/// run counts them moved and neither rebuilds nor updates the graph, and `query` finds each
/// under its new name from the graph on disk. A swap gave one a new id and the other the
/// other's vectors, and the graph was rebuilt.
#[test]
fn files_trading_names_keep_the_graph() {
    let env = setup(&["horse", "camera"]);
    env.index_json(0);
    // past the settle window: the rows take their files' own stamps
    std::thread::sleep(std::time::Duration::from_millis(2100));
    env.index_json(0);
    let first_hit = |image: &Path| -> Value {
        let out = run_ok(env.cmd().args(["query", "--json", "-k", "1"]).arg(image));
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert!(v["note"].is_null(), "{v}");
        assert!(
            !String::from_utf8_lossy(&out.stderr).contains("rebuilt in memory"),
            "{out:?}"
        );
        assert_eq!(v["hits"][0]["distance"], 0.0, "{v}");
        v["hits"][0].clone()
    };
    let horse = env.photos.join("horse/original.jpg");
    let camera = env.photos.join("camera/original.jpg");
    let (horse_id, camera_id) = (
        first_hit(&horse)["id"].clone(),
        first_hit(&camera)["id"].clone(),
    );
    let swap = env.photos.join("swap.jpg");
    std::fs::rename(&horse, &swap).unwrap();
    std::fs::rename(&camera, &horse).unwrap();
    std::fs::rename(&swap, &camera).unwrap();
    let run = env.index_json(0);
    assert_eq!(
        (&run["moved"], &run["new"], &run["updated"], &run["removed"]),
        (&json!(2), &json!(0), &json!(0), &json!(0)),
        "{run}"
    );
    assert_eq!(run["ann_rebuilt"], false, "{run}");
    assert!(run["ann_updated"].is_null(), "{run}");
    // the horse's image is now at camera/original.jpg, and the camera's at horse/
    let hit = first_hit(&camera);
    assert_eq!(hit["id"], horse_id, "{hit}");
    assert!(
        hit["path"]
            .as_str()
            .unwrap()
            .ends_with("camera/original.jpg"),
        "{hit}"
    );
    let hit = first_hit(&horse);
    assert_eq!(hit["id"], camera_id, "{hit}");
    assert!(
        hit["path"]
            .as_str()
            .unwrap()
            .ends_with("horse/original.jpg"),
        "{hit}"
    );
}

/// `deblur --json` reports each colour channel's noise and iterations with the method used;
/// a kernel written by `blur --psf-out` deblurs as its spec does; `quality --json` scores a
/// colour pair per channel and on luminance.
#[test]
fn restore_json_reports_channels_and_colour_scores() {
    let env = setup(&["horse"]);
    let img = env.photos.join("horse/original.jpg");
    let blurred = env.root.join("blurred.png");
    let kernel = env.root.join("k.txt");
    let out = |name: &str| env.root.join(name);
    let json = |args: &[&std::ffi::OsStr]| -> Value {
        let o = run_ok(env.cmd().args(args));
        serde_json::from_slice(&o.stdout).expect("one JSON object")
    };
    run_ok(env.cmd().args([
        "blur".as_ref(),
        img.as_os_str(),
        blurred.as_os_str(),
        "--psf".as_ref(),
        "motion:9,30".as_ref(),
        "--noise".as_ref(),
        "0.004".as_ref(),
        "--psf-out".as_ref(),
        kernel.as_os_str(),
    ]));
    let by_spec = json(&[
        "deblur".as_ref(),
        blurred.as_os_str(),
        out("a.png").as_os_str(),
        "--psf".as_ref(),
        "motion:9,30".as_ref(),
        "--json".as_ref(),
    ]);
    assert_eq!(by_spec["method"], "hyper", "{by_spec}");
    assert_eq!(by_spec["blurred"], true);
    // a PSF given is not checked against the input
    assert!(by_spec["fit"].is_null(), "{by_spec}");
    let channels = by_spec["channels"].as_array().expect("channels");
    assert_eq!(channels.len(), 3, "{by_spec}");
    for c in channels {
        assert!(
            c["noise_sigma"]
                .as_f64()
                .is_some_and(|s| s > 0.002 && s < 0.01),
            "{c}"
        );
        assert!(c["iterations"].as_u64().is_some_and(|n| n > 0), "{c}");
    }
    let file_spec = format!("file:{}", kernel.display());
    let rl = json(&[
        "deblur".as_ref(),
        blurred.as_os_str(),
        out("b.png").as_os_str(),
        "--psf".as_ref(),
        file_spec.as_ref(),
        "--method".as_ref(),
        "rl".as_ref(),
        "--iterations".as_ref(),
        "7".as_ref(),
        "--no-early-stop".as_ref(),
        "--json".as_ref(),
    ]);
    assert_eq!(rl["iterations"], 7, "{rl}");
    let by_file = json(&[
        "deblur".as_ref(),
        blurred.as_os_str(),
        out("c.png").as_os_str(),
        "--psf".as_ref(),
        file_spec.as_ref(),
        "--json".as_ref(),
    ]);
    assert_eq!(by_file["channels"], by_spec["channels"]);
    let same = json(&[
        "quality".as_ref(),
        out("a.png").as_os_str(),
        out("c.png").as_os_str(),
        "--json".as_ref(),
    ]);
    assert!(same["psnr_db"].as_f64().is_none_or(|p| p > 60.0), "{same}");
    let scored = json(&[
        "quality".as_ref(),
        img.as_os_str(),
        out("a.png").as_os_str(),
        "--json".as_ref(),
    ]);
    assert_eq!(scored["measured_on"], "rgb", "{scored}");
    let (rgb, luma) = (&scored["psnr_db"], &scored["luma"]["psnr_db"]);
    assert!(
        rgb.as_f64().is_some() && luma.as_f64().is_some(),
        "{scored}"
    );
    assert_ne!(rgb, luma);
}

/// PSNR of `test` against `reference` as `quality --json` gives it.
fn psnr_of(env: &Env, reference: &Path, test: &Path) -> f64 {
    let out = run_ok(
        env.cmd()
            .arg("quality")
            .arg(reference)
            .arg(test)
            .arg("--json"),
    );
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    doc["psnr_db"].as_f64().unwrap_or(f64::INFINITY)
}

/// `blur SHARP BLURRED BLUR_ARGS...`, then `deblur BLURRED --json` into a PNG beside it: the
/// deblur's JSON and the restored file.
fn blur_and_deblur(
    env: &Env,
    sharp: &Path,
    blurred: &Path,
    blur_args: &[&str],
) -> (Value, PathBuf) {
    run_ok(
        env.cmd()
            .arg("blur")
            .arg(sharp)
            .arg(blurred)
            .args(blur_args),
    );
    let restored = blurred.with_extension("restored.png");
    let out = run_ok(
        env.cmd()
            .arg("deblur")
            .arg(blurred)
            .arg(&restored)
            .arg("--json"),
    );
    (serde_json::from_slice(&out.stdout).unwrap(), restored)
}

/// An animated GIF is read at its first frame: `blur` and `deblur` write that frame alone and
/// say so (a GIF of two frames came out as one, silently), a copy keeps every frame, and
/// `quality` says it compared first frames.
#[test]
fn an_animation_is_said_to_be_read_at_its_first_frame() {
    use image::codecs::gif::GifEncoder;
    let env = setup(&[]);
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/restore/photos");
    let photo = image::open(fixtures.join("camera.png"))
        .unwrap()
        .crop_imm(150, 50, 128, 128)
        .to_rgba8();
    let animated = env.root.join("anim.gif");
    {
        let mut encoder = GifEncoder::new(std::fs::File::create(&animated).unwrap());
        for shift in [0u8, 40] {
            let mut frame = photo.clone();
            frame
                .pixels_mut()
                .for_each(|p| p[0] = p[0].saturating_add(shift));
            encoder.encode_frame(image::Frame::new(frame)).unwrap();
        }
    }
    let blurred = env.root.join("anim_blurred.gif");
    let out = run_ok(
        env.cmd()
            .arg("blur")
            .arg(&animated)
            .arg(&blurred)
            .args(["--psf", "gaussian:2"]),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("is an animation: only its first frame is read"),
        "{stderr}"
    );
    let out = run_ok(
        env.cmd()
            .arg("quality")
            .arg(&animated)
            .arg(&blurred)
            .arg("--json"),
    );
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["first_frames_only"], true, "{doc}");
    // a sharp animation is copied whole: nothing to say
    let copy = env.root.join("anim_copy.gif");
    let out = run_ok(env.cmd().arg("deblur").arg(&animated).arg(&copy));
    assert_eq!(
        std::fs::read(&copy).unwrap(),
        std::fs::read(&animated).unwrap()
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("animation"), "{stderr}");
}

/// A long shake read as another line is not restored with it: camera blurred by a 70 px line
/// at 50 degrees was read as `motion:62.75,154.35` and came out 8 dB under its input while the
/// command said it restored it. The restoration now has to explain its input: this one is
/// rejected, said in a warning, and the input kept.
#[test]
fn a_blind_restoration_that_does_not_explain_its_input_is_rejected() {
    let env = setup(&[]);
    let sharp =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/restore/photos/camera.png");
    let blurred = env.root.join("shaken.png");
    let blur = ["--psf", "motion:70,50", "--noise", "0.002", "--seed", "1"];
    let (doc, restored) = blur_and_deblur(&env, &sharp, &blurred, &blur);
    let rejected = &doc["rejected"];
    assert!(
        rejected["psf"]
            .as_str()
            .is_some_and(|p| p.starts_with("motion:")),
        "{doc}"
    );
    assert!(
        rejected["score_db"].as_f64().is_some_and(|s| s < 28.0),
        "{doc}"
    );
    assert_eq!(doc["fit"]["score_db"], rejected["score_db"], "{doc}");
    assert_eq!(
        (doc["psf"].as_str(), doc["blurred"].as_bool()),
        (Some("none"), Some(true))
    );
    assert_eq!(doc["copied"], true, "{doc}");
    assert_eq!(
        std::fs::read(&restored).unwrap(),
        std::fs::read(&blurred).unwrap()
    );
    // the text says so, under -q too
    let out = run_ok(
        env.cmd()
            .args(["-q", "deblur"])
            .arg(&blurred)
            .arg(env.root.join("again.png")),
    );
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(
        text.contains("warning:") && text.contains("does not explain"),
        "{text}"
    );
}

/// A blurred photo saved as JPEG is restored blind without being made worse: compression's
/// high-frequency floor was read as a long line, and restoring with it wrecked the image.
#[test]
fn blind_deblur_of_a_blurred_jpeg_never_makes_it_worse() {
    let env = setup(&[]);
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/restore/photos");
    for photo in ["camera", "astronaut"] {
        let sharp = fixtures.join(format!("{photo}.png"));
        for psf in ["gaussian:2", "disk:3", "disk:4"] {
            let blurred = env
                .root
                .join(format!("{photo}_{}.jpg", psf.replace(':', "")));
            run_ok(
                env.cmd()
                    .arg("blur")
                    .arg(&sharp)
                    .arg(&blurred)
                    .args(["--psf", psf]),
            );
            // the JPEG as it is, and decoded then saved as PNG (its block grid kept)
            let png = blurred.with_extension("png");
            image::open(&blurred).unwrap().save(&png).unwrap();
            for input in [&blurred, &png] {
                let restored = input.with_extension("restored.png");
                let out = run_ok(
                    env.cmd()
                        .arg("deblur")
                        .arg(input)
                        .arg(&restored)
                        .arg("--json"),
                );
                let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
                let (before, after) = (
                    psnr_of(&env, &sharp, input),
                    psnr_of(&env, &sharp, &restored),
                );
                assert!(
                    after >= before - 0.1,
                    "{}: {before:.2} dB blurred, {after:.2} dB restored with {}",
                    input.display(),
                    doc["psf"]
                );
            }
        }
    }
}

/// A JPEG's noise is not reported as measured: quantisation empties the finest differences,
/// where it is measured, and a JPEG left unchanged read "noise 0.0000".
#[test]
fn deblur_of_a_jpeg_says_its_noise_is_not_measurable() {
    let env = setup(&[]);
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("sample_data/clock_motion/blur.jpg");
    let out = run_ok(
        env.cmd()
            .arg("deblur")
            .arg(&sample)
            .arg(env.root.join("kept.png")),
    );
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(
        text.contains("noise not measurable in a lossy file") && !text.contains("noise 0.0000"),
        "{text}"
    );
    let out = run_ok(
        env.cmd()
            .arg("deblur")
            .arg(&sample)
            .arg(env.root.join("kept_again.png"))
            .arg("--json"),
    );
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["lossy"], true, "{doc}");
    // the JSON agrees with the text: no noise level, in any field
    assert_eq!(doc["blurred"], false, "{doc}");
    assert!(doc["noise_sigma"].is_null(), "{doc}");
    assert!(doc["estimate"]["noise_sigma"].is_null(), "{doc}");
    let channels = doc["channels"].as_array().unwrap();
    assert!(
        !channels.is_empty() && channels.iter().all(|c| c["noise_sigma"].is_null()),
        "{doc}"
    );
    // restored, it names the floor its noise was taken at
    let sharp =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/restore/photos/camera.png");
    let blurred = env.root.join("camera.jpg");
    run_ok(
        env.cmd()
            .arg("blur")
            .arg(&sharp)
            .arg(&blurred)
            .args(["--psf", "gaussian:2"]),
    );
    let out = run_ok(
        env.cmd()
            .arg("deblur")
            .arg(&blurred)
            .arg(env.root.join("camera_restored.png")),
    );
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(
        text.contains("estimated psf gaussian:")
            && text.contains("(at least 0.0080 for a lossy file)"),
        "{text}"
    );
    let png = env.root.join("camera.png");
    run_ok(env.cmd().arg("blur").arg(&sharp).arg(&png).args([
        "--psf",
        "gaussian:2",
        "--noise",
        "0.002",
    ]));
    let out = run_ok(
        env.cmd()
            .arg("deblur")
            .arg(&png)
            .arg(env.root.join("png_restored.png"))
            .arg("--json"),
    );
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["lossy"], false, "{doc}");
}

/// A Gaussian blur in a JPEG is read at its width from the image's edges and restored: the
/// spectrum of a JPEG read it as a disk or as barely blurred, and restoring with that gained
/// under 1 dB, or lost.
#[test]
fn a_gaussian_blur_in_a_jpeg_is_found_and_restored() {
    let env = setup(&[]);
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/restore/photos");
    for photo in ["camera", "astronaut"] {
        let sharp = fixtures.join(format!("{photo}.png"));
        let blurred = env.root.join(format!("{photo}.jpg"));
        let (doc, restored) = blur_and_deblur(&env, &sharp, &blurred, &["--psf", "gaussian:3"]);
        let sigma = doc["estimate"]["sigma"].as_f64().unwrap();
        assert_eq!(doc["estimate"]["kind"], "gaussian", "{doc}");
        assert!((sigma - 3.0).abs() < 0.3, "{doc}");
        let (before, after) = (
            psnr_of(&env, &sharp, &blurred),
            psnr_of(&env, &sharp, &restored),
        );
        assert!(
            after > before + 2.0,
            "{photo}: {before:.2} -> {after:.2} dB"
        );
    }
}

/// A large defocus on a photo of soft edges is read as the disk it is: the edges read nearly as
/// wide as the radius, as a Gaussian's would, and overruled the disk with a Gaussian, whose
/// restoration lost 10 dB.
#[test]
fn a_large_defocus_is_read_as_a_disk_and_restored() {
    let env = setup(&[]);
    let sharp = Path::new(env!("CARGO_MANIFEST_DIR")).join("sample_data/horse/original.jpg");
    let blurred = env.root.join("horse_disk8.png");
    let (doc, restored) = blur_and_deblur(
        &env,
        &sharp,
        &blurred,
        &["--psf", "disk:8", "--noise", "0.002", "--seed", "2"],
    );
    assert_eq!(doc["estimate"]["kind"], "disk", "{doc}");
    let radius = doc["estimate"]["radius"].as_f64().unwrap();
    assert!((radius - 8.0).abs() < 0.8, "{doc}");
    // kept, with how it fitted its input
    assert!(doc["rejected"].is_null(), "{doc}");
    let reblurred = doc["fit"]["reblurred_psnr_db"].as_f64().unwrap();
    assert!(reblurred >= 20.0, "{doc}");
    assert!(doc["fit"]["contrast_gain"].as_f64().unwrap() > 0.5, "{doc}");
    let (before, after) = (
        psnr_of(&env, &sharp, &blurred),
        psnr_of(&env, &sharp, &restored),
    );
    assert!(after > before + 1.0, "{before:.2} -> {after:.2} dB");
}

/// An image half transparent is measured on its picture: the transparent half is flat, and read
/// the noise as none and a Gaussian as a disk.
#[test]
fn a_half_transparent_image_is_measured_on_its_picture() {
    let env = setup(&[]);
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/restore/photos");
    let rgb = image::open(fixtures.join("astronaut.png"))
        .unwrap()
        .to_rgb8();
    let (w, h) = rgb.dimensions();
    let cut = image::RgbaImage::from_fn(w, h, |x, y| {
        let [r, g, b] = rgb.get_pixel(x, y).0;
        image::Rgba([r, g, b, if x < w / 2 { 0 } else { 255 }])
    });
    let sharp = env.root.join("cut.png");
    cut.save(&sharp).unwrap();
    let blurred = env.root.join("cut_blurred.png");
    let (doc, _) = blur_and_deblur(
        &env,
        &sharp,
        &blurred,
        &["--psf", "gaussian:2", "--noise", "0.002", "--seed", "1"],
    );
    assert_eq!(doc["estimate"]["kind"], "gaussian", "{doc}");
    assert!(
        (doc["estimate"]["sigma"].as_f64().unwrap() - 2.0).abs() < 0.3,
        "{doc}"
    );
    for channel in doc["channels"].as_array().unwrap() {
        let noise = channel["noise_sigma"].as_f64().unwrap();
        assert!((0.001..0.004).contains(&noise), "{doc}");
    }
}

/// `deblur --strength 0` leaves the image as it is: copied byte for byte to its own format.
/// An output format that is read but not written, and transparency in `quality`, are said.
#[test]
fn strength_zero_copies_and_what_is_not_done_is_said() {
    let env = setup(&[]);
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/restore/photos");
    let jpeg = env.root.join("camera.jpg");
    run_ok(
        env.cmd()
            .arg("blur")
            .arg(fixtures.join("camera.png"))
            .arg(&jpeg)
            .args(["--psf", "gaussian:2"]),
    );
    let same = env.root.join("same.jpg");
    let out =
        run_ok(
            env.cmd()
                .arg("deblur")
                .arg(&jpeg)
                .arg(&same)
                .args(["--strength", "0", "--json"]),
        );
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["copied"], true, "{doc}");
    assert_eq!(std::fs::read(&same).unwrap(), std::fs::read(&jpeg).unwrap());
    // the text says so too
    let out = run_ok(
        env.cmd()
            .arg("deblur")
            .arg(&jpeg)
            .arg(env.root.join("same2.jpg"))
            .args(["--strength", "0"]),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("strength 0") && stderr.contains("copied unchanged"),
        "{stderr}"
    );

    let out = env
        .cmd()
        .arg("deblur")
        .arg(&jpeg)
        .arg(env.root.join("out.jxl"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("read but not written"), "{stderr}");
    let out = env
        .cmd()
        .arg("deblur")
        .arg(&jpeg)
        .arg(env.root.join("out.dng"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("read but not written"), "{stderr}");

    let mut rgba = image::open(fixtures.join("camera.png")).unwrap().to_rgba8();
    for p in rgba.pixels_mut() {
        p[3] = 0;
    }
    let clear = env.root.join("clear.png");
    rgba.save(&clear).unwrap();
    let out = run_ok(
        env.cmd()
            .arg("quality")
            .arg(fixtures.join("camera.png"))
            .arg(&clear),
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("transparency is not compared"), "{text}");
    let out = run_ok(
        env.cmd()
            .arg("quality")
            .arg(fixtures.join("camera.png"))
            .arg(&clear)
            .arg("--json"),
    );
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["alpha_ignored"], true, "{doc}");

    // two images alike wherever they are seen: their hidden colours do not count
    let mut seen = image::open(fixtures.join("camera.png")).unwrap().to_rgba8();
    let width = seen.width();
    for (x, _, p) in seen.enumerate_pixels_mut() {
        if x < width / 2 {
            p[3] = 0;
        }
    }
    let mut hidden_black = seen.clone();
    for p in hidden_black.pixels_mut().filter(|p| p[3] == 0) {
        *p = image::Rgba([0, 0, 0, 0]);
    }
    let (a, b) = (env.root.join("half.png"), env.root.join("half_black.png"));
    seen.save(&a).unwrap();
    hidden_black.save(&b).unwrap();
    let out = run_ok(env.cmd().arg("quality").arg(&a).arg(&b).arg("--json"));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["psnr_db"], Value::Null, "{doc}");
    // nothing seen in either: nothing told apart
    let mut black = rgba.clone();
    for p in black.pixels_mut() {
        *p = image::Rgba([0, 0, 0, 0]);
    }
    let clear_black = env.root.join("clear_black.png");
    black.save(&clear_black).unwrap();
    let out = run_ok(
        env.cmd()
            .arg("quality")
            .arg(&clear)
            .arg(&clear_black)
            .arg("--json"),
    );
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["psnr_db"], Value::Null, "{doc}");
}

/// `blur` and `deblur` never harm an existing file: an output that is the input under another
/// name (a hard link) is refused, a failed encode leaves the old file whole, a folder or an
/// unwritable format is refused before any work, and a sharp image going to its own format is
/// copied byte for byte.
#[test]
fn restoration_outputs_never_harm_existing_files() {
    let env = setup(&[]);
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/restore/photos");
    let input = env.root.join("camera.png");
    std::fs::copy(fixtures.join("camera.png"), &input).unwrap();
    let original = std::fs::read(&input).unwrap();
    let link = env.root.join("link.png");
    std::fs::hard_link(&input, &link).unwrap();
    let refused = env
        .cmd()
        .arg("blur")
        .arg(&input)
        .arg(&link)
        .args(["--psf", "gaussian:2"])
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("is the input"),
        "{refused:?}"
    );
    assert_eq!(std::fs::read(&input).unwrap(), original);

    // ICO holds at most 256 pixels a side: refused before the work
    let kept = env.root.join("kept.ico");
    std::fs::write(&kept, b"an older file").unwrap();
    let failed = env
        .cmd()
        .arg("blur")
        .arg(&input)
        .arg(&kept)
        .args(["--psf", "gaussian:1"])
        .output()
        .unwrap();
    assert_eq!(failed.status.code(), Some(2));
    assert_eq!(std::fs::read(&kept).unwrap(), b"an older file");
    let names: Vec<String> = std::fs::read_dir(&env.root)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(!names.iter().any(|n| n.ends_with(".partial")), "{names:?}");

    for (output, why) in [
        ("sub", "folder"),
        ("out.avif", "not written"),
        ("out.xyz", "extension"),
    ] {
        std::fs::create_dir_all(env.root.join("sub")).unwrap();
        let o = env
            .cmd()
            .arg("deblur")
            .arg(&input)
            .arg(env.root.join(output))
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(2), "{output}");
        assert!(
            String::from_utf8_lossy(&o.stderr).contains(why),
            "{output}: {o:?}"
        );
    }

    // a pipe as the output is refused without being opened (opening it waits for a reader)
    let pipe = env.root.join("pipe.png");
    let made = std::process::Command::new("mkfifo")
        .arg(&pipe)
        .status()
        .unwrap();
    assert!(made.success());
    let o = env
        .cmd()
        .arg("blur")
        .arg(&input)
        .arg(&pipe)
        .args(["--psf", "gaussian:1"])
        .timeout(std::time::Duration::from_secs(60))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{o:?}");
    // the kernel file and the image are one new name: refused, not one written over the other
    let both = env.root.join("both.png");
    let o = env
        .cmd()
        .arg("blur")
        .arg(&input)
        .arg(&both)
        .args(["--psf", "gaussian:1", "--psf-out"])
        .arg(env.root.join("./both.png"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{o:?}");
    assert!(!both.exists());

    // a read-only output is refused; a linked one is written where it points; a name at the
    // file system's length limit still gets its temporary file
    let locked = env.root.join("locked.png");
    std::fs::write(&locked, b"keep me").unwrap();
    let mut mode = std::fs::metadata(&locked).unwrap().permissions();
    mode.set_readonly(true);
    std::fs::set_permissions(&locked, mode).unwrap();
    let o = env
        .cmd()
        .arg("blur")
        .arg(&input)
        .arg(&locked)
        .args(["--psf", "gaussian:1"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{o:?}");
    assert_eq!(std::fs::read(&locked).unwrap(), b"keep me");
    let target = env.root.join("target.png");
    let link = env.root.join("via_link.png");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    run_ok(
        env.cmd()
            .arg("blur")
            .arg(&input)
            .arg(&link)
            .args(["--psf", "gaussian:1"]),
    );
    assert!(std::fs::symlink_metadata(&link).unwrap().is_symlink());
    assert!(image::open(&target).is_ok());
    let long = env.root.join(format!("{}.png", "n".repeat(250)));
    run_ok(
        env.cmd()
            .arg("blur")
            .arg(&input)
            .arg(&long)
            .args(["--psf", "gaussian:1"]),
    );
    assert!(image::open(&long).is_ok());

    let copy = env.root.join("copy.png");
    let out = run_ok(env.cmd().arg("deblur").arg(&input).arg(&copy).arg("--json"));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (doc["psf"].as_str(), doc["copied"].as_bool()),
        (Some("none"), Some(true)),
        "{doc}"
    );
    assert_eq!(std::fs::read(&copy).unwrap(), original);
}

/// `--psf none` blurs nothing (noise only) and restores nothing; a replaced output keeps its
/// mode; a byte copy is made only when the output's extension names the input's own kind.
#[test]
fn no_psf_and_replaced_outputs() {
    use std::os::unix::fs::PermissionsExt;
    let env = setup(&[]);
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/restore/photos");
    let input = env.root.join("camera.png");
    std::fs::copy(fixtures.join("camera.png"), &input).unwrap();
    let noisy = env.root.join("noisy.png");
    std::fs::write(&noisy, b"an older file").unwrap();
    std::fs::set_permissions(&noisy, std::fs::Permissions::from_mode(0o640)).unwrap();
    run_ok(
        env.cmd()
            .arg("blur")
            .arg(&input)
            .arg(&noisy)
            .args(["--psf", "none", "--noise", "0.01", "--seed", "3"]),
    );
    let mode = std::fs::metadata(&noisy).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o640);
    let out = run_ok(
        env.cmd()
            .arg("quality")
            .arg(&input)
            .arg(&noisy)
            .arg("--json"),
    );
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let psnr = doc["psnr_db"].as_f64().unwrap();
    // noise of 0.01 alone is 40 dB; any blur would take it far lower
    assert!((38.5..41.5).contains(&psnr), "{doc}");

    let kept = env.root.join("kept.png");
    let out = run_ok(
        env.cmd()
            .arg("deblur")
            .arg(&noisy)
            .arg(&kept)
            .args(["--psf", "none", "--json"]),
    );
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["blurred"], false, "{doc}");
    assert_eq!(
        std::fs::read(&kept).unwrap(),
        std::fs::read(&noisy).unwrap()
    );
    // a PSF of one pixel, or all but a thousandth of its weight on one, is no blur, whichever
    // spec gives it
    let centre_only = env.root.join("centre.txt");
    std::fs::write(&centre_only, "0 0 0\n0 1 0\n0 0 0\n").unwrap();
    let centre_only = format!("file:{}", centre_only.display());
    for psf in [
        "gaussian:0",
        "disk:0",
        "motion:0,0",
        "gaussian:0.1",
        centre_only.as_str(),
    ] {
        let out = run_ok(
            env.cmd()
                .arg("deblur")
                .arg(&noisy)
                .arg(&kept)
                .args(["--psf", psf, "--json"]),
        );
        let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(
            (&doc["blurred"], &doc["copied"]),
            (&json!(false), &json!(true)),
            "{doc}"
        );
        let out = run_ok(
            env.cmd()
                .arg("deblur")
                .arg(&noisy)
                .arg(&kept)
                .args(["--psf", psf]),
        );
        let text = String::from_utf8_lossy(&out.stderr);
        assert!(
            text.contains("is no blur (all but 0.1% of its weight on one pixel)")
                && !text.contains("strength 0"),
            "{text}"
        );
    }

    // a colour .ppm going to .pgm is written grey, not copied
    let ppm = env.root.join("c.ppm");
    run_ok(
        env.cmd()
            .arg("blur")
            .arg(&input)
            .arg(&ppm)
            .args(["--psf", "none"]),
    );
    let pgm = env.root.join("c.pgm");
    run_ok(
        env.cmd()
            .arg("deblur")
            .arg(&ppm)
            .arg(&pgm)
            .args(["--psf", "none"]),
    );
    assert_eq!(&std::fs::read(&pgm).unwrap()[..2], b"P5");
}

/// The restoration commands read photos upright, as indexing does: a JPEG whose EXIF says
/// "rotate 90" is blurred, deblurred and scored as it is shown.
#[test]
fn restoration_reads_exif_orientation() {
    let env = setup(&["camera"]);
    let upright = image::open(env.photos.join("camera/original.jpg"))
        .unwrap()
        .to_rgb8();
    let (w, h) = upright.dimensions();
    // stored turned a quarter left, with orientation 6 (display turned a quarter right)
    let stored = image::imageops::rotate270(&upright);
    let mut bytes = Vec::new();
    let mut encoder = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, 95);
    image::ImageEncoder::set_exif_metadata(&mut encoder, exif_orientation_6())
        .expect("the JPEG encoder writes EXIF");
    image::ImageEncoder::write_image(
        encoder,
        stored.as_raw(),
        h,
        w,
        image::ExtendedColorType::Rgb8,
    )
    .unwrap();
    let turned = env.root.join("turned.jpg");
    std::fs::write(&turned, bytes).unwrap();
    let blurred = env.root.join("turned_blurred.png");
    run_ok(
        env.cmd()
            .arg("blur")
            .arg(&turned)
            .arg(&blurred)
            .args(["--psf", "gaussian:1"]),
    );
    assert_eq!(image::image_dimensions(&blurred).unwrap(), (w, h));
    // same size as the upright photo, so the two can be scored
    run_ok(
        env.cmd()
            .arg("quality")
            .arg(env.photos.join("camera/original.jpg"))
            .arg(&blurred),
    );
}

/// A little-endian TIFF-style EXIF block holding orientation 6.
fn exif_orientation_6() -> Vec<u8> {
    let mut exif = b"II*\0\x08\0\0\0".to_vec();
    exif.extend_from_slice(&1u16.to_le_bytes()); // one entry
    exif.extend_from_slice(&0x0112u16.to_le_bytes()); // Orientation
    exif.extend_from_slice(&3u16.to_le_bytes()); // SHORT
    exif.extend_from_slice(&1u32.to_le_bytes()); // one value
    exif.extend_from_slice(&6u16.to_le_bytes());
    exif.extend_from_slice(&[0, 0]);
    exif.extend_from_slice(&0u32.to_le_bytes()); // no next directory
    exif
}

/// Every name of one picture finds itself first: ties at distance 0 go to the example's own
/// image.
#[test]
fn each_of_identical_images_finds_itself_first() {
    let env = setup(&[]);
    std::fs::create_dir_all(&env.photos).unwrap();
    let black = image::RgbImage::new(64, 64);
    let names = ["a.png", "b.bmp", "c.tif", "d.ppm"];
    for name in names {
        black.save(env.photos.join(name)).unwrap();
    }
    env.index_json(0);
    for name in names {
        let example = env.photos.join(name);
        let hits = env.query_paths(&example, 4, &[]);
        assert_eq!(hits[0], example.to_str().unwrap(), "{hits:?}");
    }
}

/// `eval` refuses flags it would ignore, and a distortion run with no readable image.
#[test]
fn eval_refuses_what_it_would_ignore() {
    let env = setup(&["camera"]);
    let refused = |args: &[&str]| {
        let o = env.cmd().arg("eval").args(args).output().unwrap();
        assert_eq!(o.status.code(), Some(2), "{args:?}: {o:?}");
        String::from_utf8_lossy(&o.stderr).into_owned()
    };
    refused(&["photos", "--labels", "folders", "--queries", "missing.tsv"]);
    refused(&[
        "photos",
        "--groundtruth",
        "missing.tsv",
        "--queries",
        "q.tsv",
    ]);
    refused(&["--distort", "photos", "--dump-rankings", "r.jsonl"]);
    refused(&["--distort", "photos", "-k", "5"]);
    refused(&["photos", "--labels", "folders", "--suite", "blur:1"]);
    let bad = env.root.join("bad");
    std::fs::create_dir_all(&bad).unwrap();
    std::fs::write(bad.join("x.png"), b"not an image").unwrap();
    let e = refused(&["--distort", "bad"]);
    assert!(
        e.contains("x.png") && e.contains("nothing to distort"),
        "{e}"
    );
}

/// A colour under nearly transparent pixels counts by its opacity in `blur`: it does not bleed
/// into the opaque pixels beside it.
#[test]
fn nearly_transparent_colours_do_not_bleed_in_blur() {
    let env = setup(&[]);
    let input = env.root.join("half.png");
    image::RgbaImage::from_fn(120, 100, |x, _| {
        if x < 60 {
            image::Rgba([128, 128, 128, 255])
        } else {
            image::Rgba([255, 0, 0, 1])
        }
    })
    .save(&input)
    .unwrap();
    let output = env.root.join("half_blurred.png");
    run_ok(
        env.cmd()
            .arg("blur")
            .arg(&input)
            .arg(&output)
            .args(["--psf", "gaussian:3"]),
    );
    let out = image::open(&output).unwrap().to_rgba8();
    // the opacity is blurred too, and falls towards the edge; the colour stays grey
    for x in 40..60 {
        let p = out.get_pixel(x, 50);
        assert!(
            p[0].abs_diff(128) <= 1 && p[1].abs_diff(128) <= 1 && p[3] > 100,
            "pixel {x}: {p:?}"
        );
    }
}

/// An index folder given as a file is named as such by the commands that read the index.
#[test]
fn an_index_folder_that_is_a_file_is_said_to_be_one() {
    let env = setup(&[]);
    let file = env.root.join("notes.txt");
    std::fs::write(&file, b"not an index").unwrap();
    for args in [vec!["status"], vec!["status", "--json"]] {
        let out = Command::cargo_bin("lookalike")
            .unwrap()
            .env_remove("LOOKALIKE_INDEX")
            .arg("--index-dir")
            .arg(&file)
            .args(&args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("a file, not an index folder"), "{stderr}");
    }
    assert_eq!(std::fs::read(&file).unwrap(), b"not an index");
}

/// A dithered photo (two levels, Floyd-Steinberg) is sharp: blind `deblur` leaves it as it is,
/// where its spectrum read as a motion blur and the restoration smoothed it to grey.
#[test]
fn a_dithered_photo_is_left_as_it_is() {
    let env = setup(&[]);
    let sharp = Path::new(env!("CARGO_MANIFEST_DIR")).join("sample_data/camera/original.jpg");
    let mut grey = image::open(sharp).unwrap().to_luma8();
    image::imageops::dither(&mut grey, &image::imageops::colorops::BiLevel);
    let dithered = env.root.join("dithered.png");
    grey.save(&dithered).unwrap();
    let restored = env.root.join("dithered.restored.png");
    let out = run_ok(
        env.cmd()
            .arg("deblur")
            .arg(&dithered)
            .arg(&restored)
            .arg("--json"),
    );
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["blurred"], false, "{doc}");
    assert_eq!(
        std::fs::read(&restored).unwrap(),
        std::fs::read(&dithered).unwrap()
    );
}

/// A given PSF wider or taller than the image is refused before any work (restoring it padded
/// the image to the kernel's size: gigabytes for a thin strip); so are a motion angle beyond a
/// full turn and parameters given to `none`.
#[test]
fn a_psf_larger_than_the_image_and_odd_psf_specs_are_refused() {
    let env = setup(&[]);
    let strip = env.root.join("strip.png");
    image::GrayImage::from_fn(400, 3, |x, _| image::Luma([(x % 256) as u8]))
        .save(&strip)
        .unwrap();
    let out_png = env.root.join("out.png");
    for (psf, says) in [
        ("gaussian:3", "larger than the image"),
        ("motion:15,1e30", "from -360 to 360"),
        ("none:3", "none takes no parameters"),
    ] {
        let out = env
            .cmd()
            .arg("deblur")
            .arg(&strip)
            .arg(&out_png)
            .args(["--psf", psf])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{psf}: {stderr}");
        assert!(stderr.contains(says), "{psf}: {stderr}");
        assert!(!out_png.exists());
    }
    // a line along the strip fits it and is restored
    run_ok(
        env.cmd()
            .arg("deblur")
            .arg(&strip)
            .arg(&out_png)
            .args(["--psf", "motion:3,0"]),
    );
    // a kernel file exactly as wide as the image fits it, though its even size is centred by
    // a zero column
    let kernel = env.root.join("k.txt");
    std::fs::write(&kernel, format!("{}\n", vec!["1"; 400].join(" "))).unwrap();
    std::fs::remove_file(&out_png).unwrap();
    run_ok(
        env.cmd()
            .arg("deblur")
            .arg(&strip)
            .arg(&out_png)
            .arg("--psf")
            .arg(format!("file:{}", kernel.display())),
    );
    assert!(out_png.exists());
}

#[test]
fn quality_keeps_sixteen_bits_and_hides_the_same_pixels_in_both_images() {
    let env = setup(&[]);
    let quality = |a: &Path, b: &Path| -> Value {
        let out = run_ok(env.cmd().arg("quality").arg(a).arg(b).arg("--json"));
        serde_json::from_slice(&out.stdout).unwrap()
    };
    // 16-bit images under one 8-bit step apart are not the same image
    let a16 = env.root.join("a16.png");
    let b16 = env.root.join("b16.png");
    let level = |x: u32, y: u32| ((x * 37 + y * 101) % 256 * 257) as u16;
    image::ImageBuffer::<image::Luma<u16>, _>::from_fn(64, 64, |x, y| image::Luma([level(x, y)]))
        .save(&a16)
        .unwrap();
    image::ImageBuffer::<image::Luma<u16>, _>::from_fn(64, 64, |x, y| {
        image::Luma([level(x, y).saturating_add(100)])
    })
    .save(&b16)
    .unwrap();
    let doc = quality(&a16, &b16);
    let psnr = doc["psnr_db"].as_f64().unwrap_or(f64::INFINITY);
    assert!(psnr > 50.0 && psnr < 60.0, "{doc}");

    // the same grey, hidden in one image only: alike wherever both are seen
    let grey = env.root.join("grey.png");
    let hidden = env.root.join("hidden.png");
    let value = |x: u32, y: u32| ((x * 7 + y * 13) % 256) as u8;
    image::GrayImage::from_fn(64, 64, |x, y| image::Luma([value(x, y)]))
        .save(&grey)
        .unwrap();
    image::GrayAlphaImage::from_fn(64, 64, |x, y| {
        image::LumaA([value(x, y), if y < 20 { 0 } else { 255 }])
    })
    .save(&hidden)
    .unwrap();
    let doc = quality(&grey, &hidden);
    assert!(doc["psnr_db"].is_null(), "{doc}");
    let doc = quality(&hidden, &grey);
    assert!(doc["psnr_db"].is_null(), "{doc}");
}

/// An `--index-dir` that is a link to nothing, or below a file, says what is wrong and what to
/// do: they gave "File exists (os error 17)" and "Not a directory (os error 20)".
#[test]
fn an_index_folder_that_cannot_be_made_says_why() {
    let env = setup(&["camera"]);
    std::os::unix::fs::symlink("nowhere", env.root.join("dangle")).unwrap();
    std::fs::write(env.root.join("f"), b"").unwrap();
    for (dir, says) in [
        (
            "dangle",
            "dangle: the index folder is a link to nothing; make the folder it leads to, or give another --index-dir",
        ),
        (
            "f/x",
            "f/x: cannot make the index folder: f is a file; give another --index-dir",
        ),
        (
            "dangle/sub",
            "dangle/sub: cannot make the index folder: dangle is a link to nothing",
        ),
    ] {
        let out = Command::cargo_bin("lookalike")
            .unwrap()
            .current_dir(&env.root)
            .env_remove("LOOKALIKE_INDEX")
            .args(["--index-dir", dir, "index"])
            .arg(&env.photos)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{dir}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{dir}: {err}");
    }
}

/// `eval` writes rankings and reports only where they replace nothing of the user's: not inside
/// the folder evaluated, not over another file, a folder of other files or a read-only file.
#[test]
fn eval_outputs_never_replace_the_users_files() {
    let env = setup(&["camera", "horse"]);
    let photo = env.photos.join("camera/original.jpg");
    let photo_bytes = std::fs::read(&photo).unwrap();
    let own_page = env.photos.join("camera/index.html");
    std::fs::write(&own_page, "<html>mine</html>").unwrap();
    std::fs::create_dir_all(env.root.join("page")).unwrap();
    std::fs::write(env.root.join("page/index.html"), "<html>mine</html>").unwrap();
    std::fs::write(env.root.join("notes.txt"), "mine").unwrap();
    let locked = env.root.join("locked.jsonl");
    std::fs::write(
        &locked,
        "{\"format\":\"lookalike-rankings\",\"version\":1}\n",
    )
    .unwrap();
    let mut perms = std::fs::metadata(&locked).unwrap().permissions();
    perms.set_readonly(true);
    std::fs::set_permissions(&locked, perms).unwrap();
    // a link to a file not made yet, inside the folder evaluated
    std::os::unix::fs::symlink(
        env.photos.join("camera/rank.jsonl"),
        env.root.join("dangling.jsonl"),
    )
    .unwrap();
    let eval = |extra: &[&str]| {
        env.cmd()
            .args([
                "eval",
                "--labels",
                "folders",
                "--families",
                "color",
                "--no-hnsw",
            ])
            .arg(&env.photos)
            .args(extra)
            .output()
            .unwrap()
    };
    for extra in [
        &["--dump-rankings", "photos/camera/original.jpg"][..],
        &["--report", "photos/camera"],
        &["--report", "photos/camera/../report"],
        &["--dump-rankings", "notes.txt"],
        &["--dump-rankings", "page"],
        &["--report", "page"],
        &["--report", "notes.txt"],
        &["--dump-rankings", "locked.jsonl"],
        &["--dump-rankings", "dangling.jsonl"],
    ] {
        let out = eval(extra);
        assert_eq!(out.status.code(), Some(2), "{extra:?}: {out:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(extra[0]) && err.contains(extra[1]), "{err}");
    }
    assert_eq!(std::fs::read(&photo).unwrap(), photo_bytes);
    assert_eq!(
        std::fs::read_to_string(&own_page).unwrap(),
        "<html>mine</html>"
    );
    assert_eq!(
        std::fs::read_to_string(env.root.join("notes.txt")).unwrap(),
        "mine"
    );
    assert!(!env.photos.join("camera/thumbs").exists());
    assert!(!env.photos.join("camera/rank.jsonl").exists());
    assert!(!env.photos.join("report").exists());
    assert!(!env.index.exists(), "nothing indexed before the refusal");
    // What eval wrote, and an empty file, are written again.
    std::fs::write(env.root.join("empty.jsonl"), "").unwrap();
    for _ in 0..2 {
        let out = eval(&["--dump-rankings", "empty.jsonl", "--report", "report"]);
        assert!(out.status.success(), "{out:?}");
    }
    let rankings = std::fs::read_to_string(env.root.join("empty.jsonl")).unwrap();
    assert!(rankings.starts_with("{\"format\":\"lookalike-rankings\""));
    assert!(env.root.join("report/index.html").is_file());
}

/// The duplicates benchmark indexes its temporary files into a temporary index, not into the
/// user's (which would keep tracking a folder that is gone), and leaves nothing behind.
#[test]
fn the_duplicates_benchmark_adds_nothing_to_the_users_index() {
    let env = setup(&["camera"]);
    let images = n(&env.index_json(0), "new");
    let tmp = env.root.join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    run_ok(
        env.cmd()
            .env("TMPDIR", &tmp)
            .args(["-q", "eval", "--duplicates"])
            .arg(&env.photos)
            .args(["--sample", "2", "--edits", "2", "--json"]),
    );
    let again = env.index_json(0);
    assert_eq!(
        (n(&again, "total_images"), n(&again, "removed")),
        (images, 0),
        "{again}"
    );
    assert_eq!(std::fs::read_dir(&tmp).unwrap().count(), 0);
}

/// Without --profile, eval uses the profile of the index it is given; an index of duplicate
/// signatures is refused as `query` refuses it; another --profile is said to re-extract.
#[test]
fn eval_keeps_the_profile_of_the_index_it_is_given() {
    let env = setup(&["camera", "horse"]);
    run_ok(
        env.cmd()
            .args(["-q", "index", "--profile", "fast"])
            .arg(&env.photos),
    );
    let at = |index: &Path| {
        let mut c = Command::cargo_bin("lookalike").unwrap();
        c.current_dir(&env.root).env_remove("LOOKALIKE_INDEX");
        c.arg("--index-dir").arg(index);
        c
    };
    let eval = |index: &Path, extra: &[&str]| {
        at(index)
            .args([
                "eval",
                "--labels",
                "folders",
                "--families",
                "fused",
                "--no-hnsw",
            ])
            .args(extra)
            .arg(&env.photos)
            .output()
            .unwrap()
    };
    let profile_of = |index: &Path| -> Value {
        let out = run_ok(at(index).args(["status", "--json"]));
        serde_json::from_slice::<Value>(&out.stdout).unwrap()["profile"].clone()
    };
    let out = eval(&env.index, &[]);
    assert!(out.status.success(), "{out:?}");
    assert!(!String::from_utf8_lossy(&out.stderr).contains("holds the fast profile"));
    assert_eq!(profile_of(&env.index), "fast");
    // the index changes for good: said under -q too
    let out = eval(&env.index, &["--profile", "full", "-q"]);
    assert!(out.status.success(), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("warning: the index at")
            && err.contains("holds the fast profile")
            && err.contains("again"),
        "{err}"
    );
    assert_eq!(profile_of(&env.index), "full");
    let dup = env.root.join("dup");
    run_ok(at(&dup).args(["-q", "duplicates"]).arg(&env.photos));
    assert_eq!(profile_of(&dup), "duplicates");
    let out = eval(&dup, &[]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("duplicate signatures only"), "{err}");
    assert_eq!(profile_of(&dup), "duplicates");
}

/// A --sample larger than the folder allows is said, with the number used, under -q too: the
/// figures are not of the sample asked for.
#[test]
fn a_sample_larger_than_the_folder_is_said() {
    let env = setup(&[]);
    let two = env.root.join("two");
    std::fs::create_dir_all(&two).unwrap();
    for g in ["camera", "horse"] {
        std::fs::copy(
            sample_data().join(g).join("original.jpg"),
            two.join(format!("{g}.jpg")),
        )
        .unwrap();
    }
    let out = run_ok(env.cmd().args(["-q", "eval", "--distort"]).arg(&two).args([
        "--sample",
        "100",
        "--suite",
        "blur:1",
        "--families",
        "color",
    ]));
    let err = String::from_utf8_lossy(&out.stderr);
    // the figures are not of the sample asked for: a warning
    assert!(
        err.contains("warning: --sample 100") && err.contains("2 images"),
        "{err}"
    );
    let out = run_ok(
        env.cmd()
            .args(["-q", "eval", "--duplicates"])
            .arg(&two)
            .args(["--sample", "5", "--edits", "1"]),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("warning: --sample 5")
            && err.contains("2 images")
            && err.contains("; 1 sampled"),
        "{err}"
    );
}

/// A folder `some` of `env` holding camera, horse and coffee, and chelsea cut in half; and
/// chelsea's bytes.
fn three_photos_and_a_cut_jpeg(env: &Env) -> (PathBuf, Vec<u8>) {
    let dir = env.root.join("some");
    std::fs::create_dir_all(&dir).unwrap();
    for g in ["camera", "horse", "coffee"] {
        std::fs::copy(
            sample_data().join(g).join("original.jpg"),
            dir.join(format!("{g}.jpg")),
        )
        .unwrap();
    }
    let bytes = std::fs::read(sample_data().join("chelsea/original.jpg")).unwrap();
    std::fs::write(dir.join("cut.jpg"), &bytes[..bytes.len() / 2]).unwrap();
    (dir, bytes)
}

/// The duplicates benchmark says what it planted once the damaged file sampled is replaced
/// (two photos, not three, as one readable photo stays a distractor), each figure in the
/// singular or plural its number needs.
#[test]
fn the_duplicates_benchmark_counts_what_it_planted() {
    let env = setup(&[]);
    let (dir, _) = three_photos_and_a_cut_jpeg(&env);
    let out = run_ok(
        env.cmd()
            .args(["eval", "--duplicates"])
            .arg(&dir)
            .args(["--sample", "100", "--edits", "1"]),
    );
    let (text, err) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(
        err.contains("planted 2 edited copies of 2 photos among 1 other file in ")
            && err.contains("); it is left out of the benchmark"),
        "{err}"
    );
    assert!(
        text.contains(
            "(2 photos with 1 edited copy each, 1 distractor; 1 unreadable file left out)"
        ),
        "{text}"
    );
}

/// The duplicates benchmark says it is planting before it plants, promising no count it has
/// not planted (a damaged photo sampled is replaced); `-q` hides that line.
#[test]
fn the_duplicates_benchmark_says_it_is_planting_before_it_does() {
    let env = setup(&[]);
    let (dir, _) = three_photos_and_a_cut_jpeg(&env);
    let run = |quiet: bool| {
        let mut cmd = env.cmd();
        if quiet {
            cmd.arg("-q");
        }
        let out = run_ok(
            cmd.args(["eval", "--duplicates"])
                .arg(&dir)
                .args(["--sample", "100", "--edits", "1"]),
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let err = run(false);
    let planting = err.find("planting edited copies of up to 3 photos in ");
    let planted = err.find("planted 2 edited copies");
    assert!(
        planting.is_some() && planting < planted,
        "left: {:?}",
        err.lines().next()
    );
    assert!(!run(true).contains("planting"));
}

/// A damaged file in the duplicates benchmark's folder is left out with a warning naming it,
/// under -q too, as labelled and distortion runs leave it out: the copies are planted from the
/// readable photos and the figures count them. No readable image is still an error.
#[test]
fn the_duplicates_benchmark_leaves_a_damaged_file_out() {
    let env = setup(&[]);
    let (dir, bytes) = three_photos_and_a_cut_jpeg(&env);
    // every file sampled: the damaged one among them
    let out = run_ok(
        env.cmd()
            .args(["-q", "eval", "--duplicates"])
            .arg(&dir)
            .args(["--sample", "100", "--edits", "1", "--json"]),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("warning: 1 of the 4 files") && err.contains("cut.jpg: "),
        "{err}"
    );
    assert!(
        err.contains("(3 readable)") && err.contains("; 2 sampled"),
        "{err}"
    );
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (
            n(&json, "originals"),
            n(&json, "distractors"),
            n(&json, "files"),
            n(&json, "failed")
        ),
        (2, 1, 5, 1),
        "{json}"
    );
    assert!(
        json["left_out"][0].as_str().unwrap().ends_with("cut.jpg"),
        "{json}"
    );
    // the figures say it
    let out = run_ok(
        env.cmd()
            .args(["-q", "eval", "--duplicates"])
            .arg(&dir)
            .args(["--sample", "1", "--edits", "1"]),
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(
            "(1 photo with 1 edited copy each, 2 distractors; 1 unreadable file left out)"
        ) && text.contains(", 1 group, "),
        "{text}"
    );
    // nothing readable: an error naming the folder and the file
    for g in ["camera", "horse", "coffee"] {
        std::fs::remove_file(dir.join(format!("{g}.jpg"))).unwrap();
    }
    std::fs::write(dir.join("cut2.jpg"), &bytes[..bytes.len() / 3]).unwrap();
    let out = env
        .cmd()
        .args(["-q", "eval", "--duplicates"])
        .arg(&dir)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("some: the duplicates benchmark needs at least two images that can be read")
            && err.contains("cut.jpg"),
        "{err}"
    );
}

/// `blur` blurs what is seen: a cut-out's opacity with its colours, which keep their hue where
/// the edge turns half transparent.
#[test]
fn blur_blurs_a_cut_outs_silhouette() {
    let env = setup(&[]);
    let cutout = env.root.join("cutout.png");
    image::RgbaImage::from_fn(120, 100, |x, y| {
        let inside = (x as f32 - 60.0).powi(2) + (y as f32 - 50.0).powi(2) < 30.0f32.powi(2);
        image::Rgba(if inside {
            [200, 30, 30, 255]
        } else {
            [0, 0, 0, 0]
        })
    })
    .save(&cutout)
    .unwrap();
    let blurred = env.root.join("blurred.png");
    run_ok(
        env.cmd()
            .arg("blur")
            .arg(&cutout)
            .arg(&blurred)
            .args(["--psf", "gaussian:3"]),
    );
    let out = image::open(&blurred).unwrap().to_rgba8();
    // across the left edge at x = 30, the opacity rises over several pixels
    let row: Vec<u8> = (22..40).map(|x| out.get_pixel(x, 50)[3]).collect();
    let between = row.iter().filter(|&&a| a > 10 && a < 245).count();
    assert!(between >= 4, "alpha across the edge: {row:?}");
    for x in 22..40 {
        let p = out.get_pixel(x, 50);
        if p[3] > 10 {
            assert!(
                p[0].abs_diff(200) <= 2 && p[1].abs_diff(30) <= 2 && p[2].abs_diff(30) <= 2,
                "x {x}: {p:?}"
            );
        }
    }
}

/// The notes say what the output's format did: PNM is written at 8 bits by lookalike, not by
/// its format's limit; a JPEG of an image left as it was is re-encoded; a `.pgm` is grey.
#[test]
fn the_notes_say_what_the_output_format_did_to_the_image() {
    let env = setup(&[]);
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/restore/photos");
    let colour = fixtures.join("astronaut.png");
    let deep = env.root.join("deep.png");
    image::open(&colour)
        .unwrap()
        .to_rgb16()
        .save(&deep)
        .unwrap();
    for name in ["out.ppm", "out.pam"] {
        let out = run_ok(
            env.cmd()
                .arg("blur")
                .arg(&deep)
                .arg(env.root.join(name))
                .args(["--psf", "gaussian:1"]),
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("8 bits a channel, as lookalike writes this format")
                && !stderr.contains("all its format holds"),
            "{name}: {stderr}"
        );
    }
    let out = run_ok(
        env.cmd()
            .arg("deblur")
            .arg(&colour)
            .arg(env.root.join("same.jpg"))
            .args(["--psf", "gaussian:1", "--strength", "0"]),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("re-encoded as JPEG") && !stderr.contains("unchanged"),
        "{stderr}"
    );
    let out = run_ok(
        env.cmd()
            .arg("blur")
            .arg(&colour)
            .arg(env.root.join("grey.pgm"))
            .args(["--psf", "gaussian:1"]),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("note:") && stderr.contains("is grey") && stderr.contains(".ppm keeps"),
        "{stderr}"
    );
    // a grey image written as .pgm loses nothing
    let out = run_ok(
        env.cmd()
            .arg("blur")
            .arg(fixtures.join("camera.png"))
            .arg(env.root.join("camera.pgm"))
            .args(["--psf", "gaussian:1"]),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("note:"), "{stderr}");
}

#[test]
fn a_blurred_sixteen_bit_photo_of_low_contrast_is_restored_and_its_depth_told() {
    let env = setup(&[]);
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/restore/photos");
    let camera = image::open(fixtures.join("camera.png")).unwrap().to_luma8();
    // 13 levels at 8 bits, hundreds at 16
    let faint = image::ImageBuffer::<image::Luma<u16>, _>::from_fn(
        camera.width(),
        camera.height(),
        |x, y| image::Luma([30_000 + u16::from(camera.get_pixel(x, y)[0]) * 13]),
    );
    let blurred = env.root.join("faint16.png");
    image::imageops::blur(&faint, 3.0).save(&blurred).unwrap();
    let out_png = env.root.join("out.png");
    let out = run_ok(
        env.cmd()
            .arg("deblur")
            .arg(&blurred)
            .arg(&out_png)
            .arg("--json"),
    );
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["blurred"], true, "{doc}");
    // a PNG keeps the 16 bits: the restored photo has far more than 13 levels
    let restored = image::open(&out_png).unwrap();
    assert!(
        matches!(restored, image::DynamicImage::ImageLuma16(_)),
        "{:?}",
        restored.color()
    );
    let levels: std::collections::HashSet<u16> =
        restored.to_luma16().pixels().map(|p| p[0]).collect();
    assert!(levels.len() > 200, "{} levels", levels.len());
    let out = run_ok(env.cmd().arg("deblur").arg(&blurred).arg(&out_png));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("8 bits a channel"), "{stderr}");
    // a JPEG holds 8 bits, and the note says so
    let out_jpg = env.root.join("out.jpg");
    let out = run_ok(env.cmd().arg("deblur").arg(&blurred).arg(&out_jpg));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("8 bits a channel"), "{stderr}");
    // blur keeps the depth too, in TIFF as in PNG
    let again = env.root.join("again.tif");
    run_ok(
        env.cmd()
            .arg("blur")
            .arg(&blurred)
            .arg(&again)
            .args(["--psf", "gaussian:1"]),
    );
    let img = image::open(&again).unwrap();
    assert!(
        matches!(img, image::DynamicImage::ImageLuma16(_)),
        "{:?}",
        img.color()
    );
}

/// An image whose restoration needs more memory than the budget is refused with exit status 2
/// before the work starts, naming the file, its size, the need and the flag that lifts it; the
/// output is not written. The decoding budget alone would take it.
#[test]
fn restoration_over_its_memory_budget_is_refused_before_the_work() {
    let env = setup(&[]);
    std::fs::create_dir_all(&env.photos).unwrap();
    let input = env.photos.join("large.png");
    image::GrayImage::from_fn(2000, 2000, |x, y| image::Luma([((x ^ y) & 0xff) as u8]))
        .save(&input)
        .unwrap();
    let output = env.root.join("out.png");
    let started = std::time::Instant::now();
    let runs: [&[&str]; 5] = [
        &["quality"],
        &["blur", "--psf", "gaussian:2"],
        &["deblur", "--method", "wiener", "--psf", "gaussian:2"],
        &["deblur", "--method", "rl"],
        &["deblur"],
    ];
    for args in runs {
        let mut cmd = env.cmd();
        cmd.args(args).arg(&input);
        cmd.arg(if args[0] == "quality" {
            &input
        } else {
            &output
        });
        let out = cmd.args(["--memory-budget", "64"]).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.contains("large.png")
                && err.contains("2000x2000")
                && err.contains("MiB")
                && err.contains("memory budget of 64 MiB")
                && err.contains("--memory-budget"),
            "{args:?}: {err}"
        );
        assert!(!output.exists(), "{args:?}");
    }
    // refused at once, not after the work
    assert!(
        started.elapsed() < std::time::Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    // the help says the default
    let help = env.cmd().args(["deblur", "--help"]).output().unwrap();
    assert!(String::from_utf8_lossy(&help.stdout).contains("default 4096"));
}

/// `duplicates DIR` stopped (SIGINT) while it indexes exits 130 and says, as `index` does,
/// that what was extracted is kept and how to resume.
#[cfg(unix)]
#[test]
fn duplicates_interrupted_while_indexing_says_how_to_resume() {
    let env = setup(&[]);
    std::fs::create_dir_all(&env.photos).unwrap();
    for i in 0..400u32 {
        image::RgbImage::from_fn(320, 240, |x, y| {
            let v = (x * (i % 17 + 1) + y * (i / 17 + 3)) as u8;
            image::Rgb([v, v.wrapping_mul(3), (i * 7) as u8])
        })
        .save(env.photos.join(format!("{i}.png")))
        .unwrap();
    }
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("lookalike"))
        .current_dir(&env.root)
        .env_remove("LOOKALIKE_INDEX")
        .arg("--index-dir")
        .arg(&env.index)
        .arg("duplicates")
        .arg(&env.photos)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // the stop handler is in place before the index database is made
    let db = env.index.join("lookalike.db");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !db.exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    let sent = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    // a run that ignored the signal is stopped and fails the test, not left to finish
    let stopped = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > stopped {
            let _ = child.kill();
            let _ = child.wait();
            panic!("duplicates still ran a minute after SIGINT");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{err}");
    assert!(err.contains("stopping"), "{err}");
    assert!(
        err.contains("interrupted: everything extracted so far is saved; run the same command again to resume"),
        "{err}"
    );
}

/// `status` tells an unfinished run whose writer still holds the index's lock (running now)
/// from one whose process is gone (interrupted, with the command that resumes it), also while
/// another command (`forget`) holds the lock: that command is named as the one running.
#[test]
fn status_tells_a_running_index_from_a_killed_one() {
    let env = setup(&["horse"]);
    env.index_json(0);
    let collection = lookalike::collection::Collection::at(&env.index);
    let photos = std::fs::canonicalize(&env.photos).unwrap();
    let run = collection
        .open_store()
        .unwrap()
        .begin_run(std::slice::from_ref(&photos))
        .unwrap();
    let status = |json: bool| {
        let mut cmd = env.cmd();
        cmd.arg("status");
        if json {
            cmd.arg("--json");
        }
        String::from_utf8(run_ok(&mut cmd).stdout).unwrap()
    };
    let mut lock = collection.lock_for_writing("index").unwrap();
    lock.record_run(run);
    let running = status(false);
    assert!(running.contains("running now"), "{running}");
    assert!(!running.contains("resumes"), "{running}");
    let json: Value = serde_json::from_str(&status(true)).unwrap();
    assert_eq!(json["writer_running"], true, "{json}");
    assert_eq!(json["writer_command"], "index", "{json}");
    assert_eq!(json["writer_run"], run, "{json}");
    assert_eq!(json["writer_pid"], std::process::id(), "{json}");
    assert_eq!(json["last_run"]["state"], "running", "{json}");
    assert_eq!(json["last_run"]["outcome"], Value::Null, "{json}");
    drop(lock);
    let killed = status(false);
    assert!(
        killed.contains("interrupted") && killed.contains("resumes it"),
        "{killed}"
    );
    assert!(!killed.contains("running now"), "{killed}");
    let json: Value = serde_json::from_str(&status(true)).unwrap();
    assert_eq!(json["writer_running"], false, "{json}");
    assert_eq!(json["writer_command"], Value::Null, "{json}");
    assert_eq!(json["last_run"]["state"], "killed", "{json}");
    // the killed run is not the one a running `forget` writes
    let forget = collection.lock_for_writing("forget").unwrap();
    let line = status(false);
    assert!(
        line.contains("interrupted (its process was killed)")
            && line.contains(&format!(
                "`lookalike forget` is running now (process {})",
                std::process::id()
            ))
            && line.contains("resumes the run once it is done"),
        "{line}"
    );
    let json: Value = serde_json::from_str(&status(true)).unwrap();
    assert_eq!(json["writer_running"], true, "{json}");
    assert_eq!(json["writer_command"], "forget", "{json}");
    assert_eq!(json["writer_run"], Value::Null, "{json}");
    drop(forget);
}

/// A file the walks skip is refused with the command that takes it in, its globs quoted once
/// for the shell: a backslash stays single and a control character is a `$'...'` escape, not
/// escaped again with the rest of the message.
#[test]
fn a_refused_files_command_is_quoted_once() {
    let env = setup(&["horse"]);
    let exclude = ["x\\*", "a\tb"];
    let mut first = env.cmd();
    first.arg("index");
    for glob in exclude {
        first.args(["--exclude", glob]);
    }
    run_ok(first.arg("photos"));
    std::fs::copy(
        env.photos.join("horse/original.jpg"),
        env.photos.join(".hidden.jpg"),
    )
    .unwrap();
    // a link to a file outside the tracked folder (one to a file in it is that file)
    let outside = env.root.join("outside.jpg");
    std::fs::copy(env.photos.join("horse/blur.jpg"), &outside).unwrap();
    std::os::unix::fs::symlink(&outside, env.photos.join("link.jpg")).unwrap();
    let globs = r"--exclude 'x\*' --exclude $'a\x09b'";
    for (file, flag, then) in [
        ("photos/.hidden.jpg", "--hidden", "walks hidden files"),
        ("photos/link.jpg", "--follow-symlinks", "follows links"),
    ] {
        let out = env.cmd().args(["index", file]).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        let command = format!(
            "`lookalike --index-dir {} index {globs} {flag} {file}` takes it in",
            env.index.display()
        );
        assert!(err.contains(&command) && err.contains(then), "{err}");
        assert!(!err.contains(r"\\"), "{err}");
    }
}

/// `--index-dir` given on the command line of a command that uses no index is warned about
/// (not under -q); from `LOOKALIKE_INDEX`, which scripts may set for every command, it is not.
#[test]
fn index_dir_on_a_command_without_an_index_gets_a_warning() {
    let env = setup(&["horse"]);
    let img = env.photos.join("horse/original.jpg");
    let blurred = env.root.join("blurred.png");
    let restored = env.root.join("restored.png");
    let commands: [(&str, Vec<&std::ffi::OsStr>); 3] = [
        (
            "blur",
            vec![
                "blur".as_ref(),
                img.as_os_str(),
                blurred.as_os_str(),
                "--psf".as_ref(),
                "gaussian:1".as_ref(),
            ],
        ),
        (
            "deblur",
            vec![
                "deblur".as_ref(),
                blurred.as_os_str(),
                restored.as_os_str(),
                "--psf".as_ref(),
                "gaussian:1".as_ref(),
                "--method".as_ref(),
                "rl".as_ref(),
                "--iterations".as_ref(),
                "2".as_ref(),
            ],
        ),
        (
            "quality",
            vec!["quality".as_ref(), img.as_os_str(), blurred.as_os_str()],
        ),
    ];
    for (name, args) in &commands {
        let warning = format!("warning: --index-dir has no effect on `lookalike {name}`");
        let given = run_ok(env.cmd().args(args));
        let err = String::from_utf8_lossy(&given.stderr);
        assert!(err.contains(&warning), "{name}: {err}");
        let quiet = run_ok(env.cmd().arg("-q").args(args));
        let err = String::from_utf8_lossy(&quiet.stderr);
        assert!(!err.contains("warning"), "{name}: {err}");
        let from_env = run_ok(
            Command::cargo_bin("lookalike")
                .unwrap()
                .current_dir(&env.root)
                .env("LOOKALIKE_INDEX", &env.index)
                .args(args),
        );
        let err = String::from_utf8_lossy(&from_env.stderr);
        assert!(!err.contains("warning"), "{name}: {err}");
    }
}

/// The duplicates benchmark's kept files may not be planted inside the folder it reads: they
/// would stay among the photos and count as distractors in the next run.
#[test]
fn the_duplicates_benchmark_refuses_to_plant_inside_the_folder_it_reads() {
    let env = setup(&["horse", "camera"]);
    let before = walkdir::WalkDir::new(&env.photos).into_iter().count();
    let out = env
        .cmd()
        .args(["eval", "--duplicates"])
        .arg(&env.photos)
        .arg("--work")
        .arg(env.photos.join("bench"))
        .args(["--sample", "1"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("which is evaluated"), "{err}");
    assert_eq!(
        walkdir::WalkDir::new(&env.photos).into_iter().count(),
        before
    );
}

/// A --work that is a file or a folder holding files is refused before anything is planted.
#[test]
fn the_duplicates_benchmark_refuses_a_work_path_it_cannot_fill_before_planting() {
    let env = setup(&["horse", "camera"]);
    let file = env.root.join("afile");
    std::fs::write(&file, b"x").unwrap();
    let full = env.root.join("full");
    std::fs::create_dir_all(&full).unwrap();
    std::fs::write(full.join("notes.txt"), b"x").unwrap();
    for (work, why) in [(&file, "not a folder"), (&full, "not empty")] {
        let out = env
            .cmd()
            .args(["eval", "--duplicates"])
            .arg(&env.photos)
            .arg("--work")
            .arg(work)
            .args(["--sample", "1"])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(!err.contains("planting"), "{err}");
        assert!(
            err.contains(&format!("--work {}: {why}", work.display())),
            "{err}"
        );
    }
}

/// A first ground-truth line naming an image is data, never a header: a label on it that is
/// not a whole number is refused with the file and line, not taken as a header and dropped.
#[test]
fn a_bad_label_on_the_first_ground_truth_line_is_refused() {
    let env = setup(&["astronaut", "horse"]);
    let gt = env.root.join("gt.tsv");
    for label in ["x", "0.5"] {
        std::fs::write(
            &gt,
            format!(
                "astronaut/original.jpg\t{label}\nastronaut/crop.jpg\t0\nhorse/original.jpg\t1\nhorse/crop.jpg\t1\n"
            ),
        )
        .unwrap();
        let out = env
            .cmd()
            .args(["eval", "--groundtruth"])
            .arg(&gt)
            .arg("--images")
            .arg(&env.photos)
            .arg(&env.photos)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(
            err.contains("gt.tsv:1:") && err.contains("not an integer"),
            "{err}"
        );
    }
}

/// Distinct generated pictures (blocks of colour and stripes, a different layout for each `i`).
fn distinct_picture(i: u64) -> image::RgbImage {
    let mix = |mut z: u64| {
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58476d1ce4e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d049bb133111eb);
        z ^ (z >> 31)
    };
    image::RgbImage::from_fn(48, 48, |x, y| {
        let block = mix(i * 1_000_003 + u64::from(x / 12) * 31 + u64::from(y / 12));
        let stripe = if (x + y * (1 + (i % 5) as u32)).is_multiple_of(3 + (i % 7) as u32) {
            60
        } else {
            0
        };
        image::Rgb([
            (block as u8).saturating_add(stripe),
            (block >> 8) as u8,
            ((block >> 16) as u8).saturating_sub(stripe),
        ])
    })
}

/// A crowd of byte-identical files in the graph leaves the other images reachable: through
/// HNSW each distinct image finds itself first and nearly the top 10 exact search gives; and
/// `-k` beyond the collection returns every image.
#[test]
fn a_crowd_of_identical_files_leaves_the_graph_searchable() {
    let env = setup(&[]);
    let dups = env.photos.join("a_dups");
    let distinct = env.photos.join("w");
    std::fs::create_dir_all(&dups).unwrap();
    std::fs::create_dir_all(&distinct).unwrap();
    let copy = dups.join("c1.png");
    distinct_picture(10_000).save(&copy).unwrap();
    for i in 2..=1500 {
        std::fs::copy(&copy, dups.join(format!("c{i}.png"))).unwrap();
    }
    let names: Vec<PathBuf> = (0..150)
        .map(|i| {
            let path = distinct.join(format!("{i:03}.png"));
            distinct_picture(i).save(&path).unwrap();
            path
        })
        .collect();
    env.index_json(0);
    let (mut shared, mut queries) = (0, 0);
    for example in names.iter().step_by(5) {
        let graph = env.query_paths(example, 10, &["--qe", "0"]);
        let exact = env.query_paths(example, 10, &["--qe", "0", "--exact"]);
        assert_eq!(graph[0], example.to_str().unwrap(), "{graph:?}");
        shared += graph.iter().filter(|p| exact.contains(p)).count();
        queries += 1;
    }
    let overlap = shared as f64 / (10 * queries) as f64;
    assert!(
        overlap >= 0.95,
        "top-10 overlap with exact search {overlap}"
    );
    // every image, as many as exact search gives
    let all = env.query_paths(&names[7], 10_000, &[]);
    assert_eq!(all.len(), 1650);
    assert_eq!(env.query_paths(&names[7], 10_000, &["--exact"]).len(), 1650);
}

/// `-k` larger than a small collection gives every image through the graph, as `--exact` does.
#[test]
fn k_beyond_the_collection_returns_every_image() {
    let env = setup(&[]);
    std::fs::create_dir_all(&env.photos).unwrap();
    for i in 0..60 {
        distinct_picture(i)
            .save(env.photos.join(format!("{i:02}.png")))
            .unwrap();
    }
    env.index_json(0);
    for i in [0, 17, 42] {
        let example = env.photos.join(format!("{i:02}.png"));
        assert_eq!(env.query_paths(&example, 10_000, &[]).len(), 60);
        assert_eq!(env.query_paths(&example, 10_000, &["--qe", "0"]).len(), 60);
    }
}

/// A query whose weights differ from the graph's says what it searched: a graph built in
/// memory for the graph search, and nothing of a graph for `--exact`, which uses none.
#[test]
fn the_note_of_a_query_matches_its_search_mode() {
    let env = setup(&["horse"]);
    env.index_json(0);
    let img = env.photos.join("horse/original.jpg");
    let note_of = |extra: &[&str]| {
        let out = run_ok(
            env.cmd()
                .args(["query", "--json", "--weights", "color"])
                .args(extra)
                .arg(&img),
        );
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        (v["mode"].clone(), v["note"].clone())
    };
    let (mode, note) = note_of(&[]);
    assert_eq!(mode, "hnsw");
    assert!(
        note.as_str()
            .is_some_and(|n| n.contains("graph built in memory")),
        "{note}"
    );
    let (mode, note) = note_of(&["--exact"]);
    assert_eq!(mode, "exact");
    assert!(
        !note.as_str().is_some_and(|n| n.contains("graph")),
        "{note}"
    );
}

/// `quality` says transparency is left out only when some pixel is not fully opaque: an
/// RGBA PNG all opaque, or a GIF without transparency, is compared as it is, without the note.
#[test]
fn quality_tells_of_transparency_only_when_some_pixel_is_not_opaque() {
    let env = setup(&[]);
    std::fs::create_dir_all(&env.root).unwrap();
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/restore/photos");
    let reference = fixtures.join("camera.png");
    let mut rgba = image::open(&reference).unwrap().to_rgba8();
    let (opaque, gif, one) = (
        env.root.join("opaque.png"),
        env.root.join("plain.gif"),
        env.root.join("one.png"),
    );
    rgba.save(&opaque).unwrap();
    rgba.save(&gif).unwrap();
    rgba.get_pixel_mut(0, 0)[3] = 254;
    rgba.save(&one).unwrap();
    for (test, transparent) in [(&opaque, false), (&gif, false), (&one, true)] {
        let out = run_ok(env.cmd().arg("quality").arg(&reference).arg(test));
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            text.contains("transparency is not compared"),
            transparent,
            "{}: {text}",
            test.display()
        );
        let out = run_ok(
            env.cmd()
                .arg("quality")
                .arg(&reference)
                .arg(test)
                .arg("--json"),
        );
        let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(doc["alpha_ignored"], transparent, "{doc}");
    }
}

/// A labelled run given --images and --groundtruth needs no DATASET, which the help shows as
/// optional; without both, the refusal says what to give.
#[test]
fn eval_needs_no_dataset_beside_images_and_groundtruth() {
    let env = setup(&["astronaut", "coffee"]);
    let gt = env.root.join("gt.tsv");
    let mut lines = String::new();
    for (label, group) in ["astronaut", "coffee"].iter().enumerate() {
        for entry in std::fs::read_dir(env.photos.join(group)).unwrap() {
            let name = entry.unwrap().file_name();
            lines.push_str(&format!("{group}/{}\t{label}\n", name.to_string_lossy()));
        }
    }
    std::fs::write(&gt, lines).unwrap();
    let out = run_ok(
        env.cmd()
            .args(["eval", "--families", "fused", "--no-hnsw", "--json"])
            .arg("--images")
            .arg(&env.photos)
            .arg("--groundtruth")
            .arg(&gt),
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["dataset"].as_str().unwrap().contains("photos"), "{v}");
    let out = env
        .cmd()
        .args(["eval", "--images"])
        .arg(&env.photos)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--groundtruth FILE"), "{err}");
}

/// The labelled eval's title counts one unlabelled image in the singular.
#[test]
fn eval_counts_one_distractor_in_the_singular() {
    let env = setup(&["astronaut", "coffee"]);
    let gt = env.root.join("gt.tsv");
    let mut lines = String::new();
    for (label, group) in ["astronaut", "coffee"].iter().enumerate() {
        for entry in std::fs::read_dir(env.photos.join(group)).unwrap() {
            let name = entry.unwrap().file_name().to_string_lossy().into_owned();
            // one image left unlabelled: a distractor
            if !(*group == "coffee" && name == "q30.jpg") {
                lines.push_str(&format!("{group}/{name}\t{label}\n"));
            }
        }
    }
    std::fs::write(&gt, lines).unwrap();
    let out = run_ok(
        env.cmd()
            .args(["eval", "--families", "fused", "--no-hnsw", "--json"])
            .arg("--images")
            .arg(&env.photos)
            .arg("--groundtruth")
            .arg(&gt),
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let title = v["dataset"].as_str().unwrap();
    assert!(
        title.ends_with(": 12 images (1 unlabelled distractor)"),
        "left: {title:?}"
    );
}

/// `eval --images` on an index that already holds byte-identical copies of the images says
/// they were added as duplicates, with the counts `index` gives, not "0 new".
#[test]
fn eval_counts_images_added_as_copies() {
    let env = setup(&["astronaut", "coffee"]);
    env.index_json(0);
    let copies = env.root.join("copies");
    let mut lines = String::new();
    let mut n = 0;
    for (label, group) in ["astronaut", "coffee"].iter().enumerate() {
        std::fs::create_dir_all(copies.join(group)).unwrap();
        for entry in std::fs::read_dir(env.photos.join(group)).unwrap() {
            let entry = entry.unwrap();
            std::fs::copy(entry.path(), copies.join(group).join(entry.file_name())).unwrap();
            let name = entry.file_name();
            lines.push_str(&format!("{group}/{}\t{label}\n", name.to_string_lossy()));
            n += 1;
        }
    }
    let gt = env.root.join("gt.tsv");
    std::fs::write(&gt, lines).unwrap();
    let out = run_ok(
        env.cmd()
            .args(["eval", "--families", "fused", "--no-hnsw"])
            .arg("--images")
            .arg(&copies)
            .arg("--groundtruth")
            .arg(&gt),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    let want =
        format!(": 0 new, 0 unchanged, 0 updated, 0 moved, {n} duplicates, 0 removed, 0 failed");
    assert!(
        err.lines()
            .any(|l| l.starts_with("indexed ") && l.contains(&want)),
        "{want}: {err}"
    );
}

/// A labelled run sees the images the index walks (a link to an image is not followed, as by
/// the index), and a file that fails to decode is counted as failed, named in a warning that
/// `-q` keeps, and left out of the figures: they are those of the images indexed.
#[test]
fn eval_leaves_out_what_could_not_be_indexed_and_says_so_under_quiet() {
    let env = setup(&["astronaut", "coffee"]);
    let mixed = env.root.join("mixed");
    for (class, group) in [("a", "astronaut"), ("b", "coffee")] {
        std::fs::create_dir_all(mixed.join(class)).unwrap();
        for name in ["original.jpg", "blur.jpg"] {
            std::fs::copy(
                env.photos.join(group).join(name),
                mixed.join(class).join(name),
            )
            .unwrap();
        }
    }
    std::fs::write(mixed.join("b/fake.jpg"), "not an image\n").unwrap();
    #[cfg(unix)]
    std::os::unix::fs::symlink("../a/original.jpg", mixed.join("b/link0.jpg")).unwrap();
    let run = |quiet: bool| {
        let mut c = env.cmd();
        if quiet {
            c.arg("-q");
        }
        c.args([
            "eval",
            "--labels",
            "folders",
            "--families",
            "fused",
            "--json",
        ])
        .arg(&mixed);
        let out = run_ok(&mut c);
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        (v, String::from_utf8_lossy(&out.stderr).into_owned())
    };
    for quiet in [true, false] {
        let (v, err) = run(quiet);
        assert_eq!(v["left_out"], json!(["b/fake.jpg"]), "{v}");
        for r in v["runs"].as_array().unwrap() {
            let s = &r["evaluation"]["summary"];
            assert_eq!(s["queries"], 4, "{s}");
            let r10 = s["recall"]
                .as_array()
                .unwrap()
                .iter()
                .find(|a| a["k"] == 10);
            assert_eq!(r10.unwrap()["value"].as_f64(), Some(1.0), "{s}");
        }
        assert!(
            err.contains("1 labelled file could not be read as an image")
                && err.contains("b/fake.jpg"),
            "-q {quiet}: {err}"
        );
        assert!(!err.contains("never retrieved"), "{err}");
        // the second run reads the file no more: it still counts as failed, and is named
        if !quiet {
            assert!(err.contains(" 1 failed"), "{err}");
            assert!(
                err.contains("mixed/b/fake.jpg: not a recognised image"),
                "{err}"
            );
        }
    }
}

/// `-q` hides the summary, not the warnings that explain a non-zero exit status: files that
/// failed, a missing tracked folder and the closing line say why `index` exits 3.
#[test]
fn quiet_index_still_says_why_it_exits_3() {
    let env = setup(&["camera", "horse"]);
    run_ok(
        env.cmd()
            .args(["-q", "index"])
            .arg(env.photos.join("camera"))
            .arg(env.photos.join("horse")),
    );
    std::fs::remove_dir_all(env.photos.join("horse")).unwrap();
    std::fs::write(env.photos.join("camera/bad.jpg"), "junk\n").unwrap();
    let out = env.cmd().args(["-q", "index"]).output().unwrap();
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("failed: ") && err.contains("bad.jpg"), "{err}");
    assert!(
        err.contains("missing: ") && err.contains("tracked folder not found"),
        "{err}"
    );
    assert!(err.contains("could not be indexed"), "{err}");
    // the summary stays hidden
    assert!(!err.contains(" new, "), "{err}");
}

/// The line for a missing tracked folder names the `forget` command that stops tracking it,
/// the folder quoted for a shell and the index named: run as written, it works.
#[test]
fn a_missing_folders_forget_command_works_as_written() {
    let env = setup(&["camera"]);
    let gone = env.root.join("my horse's");
    copy_groups(&gone, &["horse"]);
    run_ok(env.cmd().args(["-q", "index"]).arg(&env.photos).arg(&gone));
    std::fs::remove_dir_all(&gone).unwrap();
    let out = env.cmd().args(["-q", "index"]).output().unwrap();
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    let line = err.lines().find(|l| l.starts_with("missing: ")).unwrap();
    let command = line
        .split('`')
        .nth(1)
        .filter(|c| c.starts_with("lookalike ") && c.contains(" forget "))
        .unwrap_or_else(|| panic!("no forget command: {line}"));
    let bin = env!("CARGO_BIN_EXE_lookalike");
    let words = format!("'{bin}'{}", &command["lookalike".len()..]);
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(&words)
        .current_dir(&env.photos)
        .env_remove("LOOKALIKE_INDEX")
        .output()
        .unwrap();
    assert!(out.status.success(), "{words}: {out:?}");
    let out = run_ok(env.cmd().args(["status", "--json"]));
    let status: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["roots"].as_array().unwrap().len(), 1, "{status}");
}

/// `status` after every folder is forgotten says that none is tracked.
#[test]
fn status_with_no_folder_tracked_says_so() {
    let env = setup(&["camera"]);
    env.index_json(0);
    run_ok(env.cmd().arg("forget").arg(&env.photos));
    let out = run_ok(env.cmd().arg("status"));
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().find(|l| l.starts_with("roots:")).unwrap();
    assert!(
        line.contains("none") && line.contains("no folder is tracked"),
        "{text}"
    );
}

/// A missing `$TMPDIR` is refused by name, and never created.
#[test]
fn eval_refuses_a_missing_tmpdir_and_creates_none() {
    let env = setup(&["camera", "horse"]);
    let missing = env.root.join("no-such/tmp");
    for extra in [&["--labels", "folders"][..], &["--duplicates"][..]] {
        let out = Command::cargo_bin("lookalike")
            .unwrap()
            .current_dir(&env.root)
            .env_remove("LOOKALIKE_INDEX")
            .env("TMPDIR", &missing)
            .arg("eval")
            .args(extra)
            .arg(&env.photos)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{extra:?}: {out:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("TMPDIR") && err.contains("no-such/tmp"),
            "{extra:?}: {err}"
        );
        assert!(!env.root.join("no-such").exists(), "{extra:?}");
    }
}

/// Rankings dumped into the report's folder are part of what the next report replaces: the
/// same command runs again, and a report alone goes to that folder too.
#[test]
fn rankings_dumped_into_the_report_folder_do_not_block_the_next_report() {
    let env = setup(&["camera", "horse"]);
    let eval = |extra: &[&str]| {
        env.cmd()
            .args([
                "-q",
                "eval",
                "--labels",
                "folders",
                "--families",
                "color",
                "--no-hnsw",
            ])
            .arg(&env.photos)
            .args(extra)
            .output()
            .unwrap()
    };
    for extra in [
        &["--report", "rep", "--dump-rankings", "rep/r.jsonl"][..],
        &["--report", "rep", "--dump-rankings", "rep/r.jsonl"],
        &["--report", "rep"],
    ] {
        let out = eval(extra);
        assert!(out.status.success(), "{extra:?}: {out:?}");
    }
    let rankings = std::fs::read_to_string(env.root.join("rep/r.jsonl")).unwrap();
    assert!(rankings.starts_with("{\"format\":\"lookalike-rankings\""));
    assert!(env.root.join("rep/index.html").is_file());
}

/// `-q` hides `note:` remarks as it hides the summary: `query`'s note on the order of its
/// distances and `undo`'s "nothing to undo"; what it prints without -q is there.
#[test]
fn query_and_undo_remarks_are_hidden_by_quiet() {
    let env = setup(&["brick", "camera", "coffee", "horse", "rocket"]);
    env.index_json(0);
    let stderr_of = |quiet: bool, args: &[&std::ffi::OsStr]| {
        let mut c = env.cmd();
        if quiet {
            c.arg("-q");
        }
        let out = c.args(args).output().unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let mut noted = 0;
    for entry in walkdir::WalkDir::new(&env.photos) {
        let path = entry.unwrap().into_path();
        if !path.is_file() {
            continue;
        }
        let query = ["query".as_ref(), path.as_os_str()];
        if stderr_of(false, &query).contains("note: ") {
            noted += 1;
            assert_eq!(stderr_of(true, &query), "", "{}", path.display());
        }
    }
    assert!(noted > 0, "no query printed a note to hide");
    assert!(stderr_of(false, &["undo".as_ref()]).contains("nothing to undo"));
    assert_eq!(stderr_of(true, &["undo".as_ref()]), "");
}

/// `eval --index-dir` on the user's own index: the folder evaluated stays tracked there, and
/// the first run says so (a later one, the folder tracked, does not).
#[test]
fn eval_into_the_users_index_says_it_now_tracks_the_folder() {
    let env = setup(&["brick", "camera"]);
    let run = || {
        let out = env
            .cmd()
            .arg("eval")
            .arg(&env.photos)
            .args(["--labels", "folders"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let said = "is now tracked by the index at";
    assert!(run().contains(said));
    assert!(!run().contains(said));
}

/// `lookalike` in `root`, with `$LOOKALIKE_INDEX` set to `index_env` (unset when `None`).
fn plain_cmd(root: &Path, index_env: Option<&str>) -> Command {
    let mut c = Command::cargo_bin("lookalike").unwrap();
    c.current_dir(root);
    match index_env {
        Some(v) => c.env("LOOKALIKE_INDEX", v),
        None => c.env_remove("LOOKALIKE_INDEX"),
    };
    c
}

/// Advice after a run on an index given by a relative `--index-dir`, or by
/// `$LOOKALIKE_INDEX`, names that index by its absolute path: pasted as it is, it acts on the
/// index the run used, not on `./.lookalike`. On the default index it stays bare.
#[test]
fn advised_commands_name_the_index_the_run_used() {
    let env = setup(&["camera"]);
    let named = |c: &mut Command| {
        c.args(["--index-dir", "idx2"]);
    };
    for apply in [false, true] {
        let mut c = plain_cmd(&env.root, None);
        named(&mut c);
        c.args(["duplicates", "--move-to", "dupes", "photos"]);
        if apply {
            c.arg("--apply");
        }
        let out = run_ok(&mut c);
        if apply {
            let text = String::from_utf8_lossy(&out.stdout);
            let idx = env.root.join("idx2");
            let undo = format!("`lookalike --index-dir {} undo` reverses", idx.display());
            let index = format!("`lookalike --index-dir {} index` brings", idx.display());
            assert!(text.contains(&undo) && text.contains(&index), "{text}");
        }
    }
    // the index `duplicates` made holds signatures only: `query` advises re-indexing it
    let out = plain_cmd(&env.root, Some("idx2"))
        .args(["query", "photos/camera/blur.jpg"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    let advice = format!(
        "run `lookalike --index-dir {} index --profile fast`",
        env.root.join("idx2").display()
    );
    assert!(
        out.status.code() == Some(2) && err.contains(&advice),
        "{err}"
    );
    // the default index: the advice needs no flag
    let out = run_ok(plain_cmd(&env.root, None).args(["-q", "duplicates", "photos"]));
    assert!(out.status.success());
    let out = plain_cmd(&env.root, None)
        .args(["query", "photos/camera/blur.jpg"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("run `lookalike index --profile fast`"),
        "{err}"
    );
}

/// `eval` indexes into its own cache unless `--index-dir` is on the command line: an exported
/// `$LOOKALIKE_INDEX`, the user's own index, is left as it was.
#[test]
fn eval_leaves_the_index_of_the_environment_alone() {
    let env = setup(&["camera", "coffee"]);
    let library = env.root.join("library");
    let library = library.to_str().unwrap();
    run_ok(plain_cmd(&env.root, Some(library)).args(["-q", "index", "photos/camera"]));
    let out =
        run_ok(plain_cmd(&env.root, Some(library)).args(["eval", "photos", "--labels", "folders"]));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("now tracked by the index"), "{err}");
    let out = run_ok(plain_cmd(&env.root, Some(library)).args(["status", "--json"]));
    let status: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        status["roots"],
        json!([env.photos.join("camera").to_str().unwrap()]),
        "{status}"
    );
}

/// An empty `$LOOKALIKE_INDEX` is refused by the commands that use the index only: those
/// that use none, help and the version ignore it.
#[test]
fn an_empty_index_variable_is_refused_only_where_an_index_is_used() {
    let env = setup(&["camera"]);
    let image = env.photos.join("camera/blur.jpg");
    let image = image.to_str().unwrap();
    for args in [
        vec!["quality", image, image],
        vec!["blur", "--psf", "gaussian:1", image, "out.png"],
        vec!["--help"],
        vec!["--version"],
        vec!["help"],
    ] {
        let out = plain_cmd(&env.root, Some("")).args(&args).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {err}");
    }
    let out = plain_cmd(&env.root, Some(""))
        .arg("status")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.code() == Some(2) && err.contains("$LOOKALIKE_INDEX is set but empty"),
        "{err}"
    );
}

/// A path beginning with a `~` no shell expanded, in `$LOOKALIKE_INDEX` or a flag, is refused
/// (exit status 2) before anything is made: it would name a folder `~` here.
#[test]
fn a_path_with_an_unexpanded_home_is_refused() {
    let env = setup(&["camera"]);
    let said = "begins with a `~` no shell expanded";
    let runs: [(Option<&str>, Vec<&str>); 5] = [
        (Some("~/idx"), vec!["index", "photos"]),
        (Some("~"), vec!["status"]),
        (None, vec!["--index-dir", "~/idx", "index", "photos"]),
        (None, vec!["--index-dir=~alice/idx", "status"]),
        (None, vec!["duplicates", "--move-to", "~/dupes", "photos"]),
    ];
    for (index_env, args) in runs {
        let out = plain_cmd(&env.root, index_env)
            .args(&args)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.code() == Some(2) && err.contains(said) && err.contains("$HOME/"),
            "{args:?}: {err}"
        );
        assert!(!env.root.join("~").exists() && !env.root.join("~alice").exists());
    }
    // written as a path, a folder really named `~` is used
    run_ok(plain_cmd(&env.root, None).args(["-q", "--index-dir", "./~/idx", "index", "photos"]));
    assert!(env.root.join("~/idx/lookalike.db").is_file());
}

/// JSON gives the index folder and the undo journal as absolute paths, as every other path,
/// whatever `--index-dir` was typed as.
#[test]
fn json_gives_the_index_folder_and_journal_absolute() {
    let env = setup(&["camera"]);
    let sub = env.root.join("sub");
    std::fs::create_dir(&sub).unwrap();
    let idx = |c: &mut Command| {
        c.args(["--index-dir", "../idx/"]);
    };
    let mut c = plain_cmd(&sub, None);
    idx(&mut c);
    run_ok(c.args(["-q", "duplicates", "--move-to", "../dupes", "../photos"]));
    let mut c = plain_cmd(&sub, None);
    idx(&mut c);
    run_ok(c.args([
        "-q",
        "duplicates",
        "--move-to",
        "../dupes",
        "../photos",
        "--apply",
    ]));
    let mut c = plain_cmd(&sub, None);
    idx(&mut c);
    let out = run_ok(c.args(["status", "--json"]));
    let status: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["index_dir"], json!(env.index.to_str().unwrap()));
    let mut c = plain_cmd(&sub, None);
    idx(&mut c);
    let out = run_ok(c.args(["undo", "--json"]));
    let undo: Value = serde_json::from_slice(&out.stdout).unwrap();
    let journal = undo["journal"].as_str().unwrap();
    assert!(
        journal.starts_with(env.index.join("journal/").to_str().unwrap()),
        "{undo}"
    );
}

/// An index whose remembered walk options skip every file of its tracked folder: `query` says
/// so and names the command that walks them without, which, run as written, makes it work.
#[test]
fn an_empty_index_names_the_walk_options_that_skip_its_folders() {
    let env = setup(&["camera"]);
    run_ok(
        env.cmd()
            .args(["-q", "index", "--include", "*.gif"])
            .arg(&env.photos),
    );
    let example = env.photos.join("camera/original.jpg");
    let out = env.cmd().arg("query").arg(&example).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("though it tracks 1 folder") && err.contains("--include '*.gif'"),
        "{err}"
    );
    let command = err
        .split('`')
        .find(|c| c.ends_with(" index --walk-defaults"))
        .unwrap_or_else(|| panic!("no index --walk-defaults command: {err}"));
    let words = format!(
        "'{}'{} -q",
        env!("CARGO_BIN_EXE_lookalike"),
        &command["lookalike".len()..]
    );
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(&words)
        .env_remove("LOOKALIKE_INDEX")
        .output()
        .unwrap();
    assert!(out.status.success(), "{words}: {out:?}");
    run_ok(env.cmd().arg("query").arg(&example));
}

/// A second `undo` says that the last applied run was undone already, not that none was
/// recorded; a dry run with nothing to do does not advise --apply.
#[test]
fn a_second_undo_says_the_run_was_undone_already() {
    let env = setup(&["camera"]);
    let folder = env.photos.join("camera");
    let first = std::fs::read_dir(&folder).unwrap().next().unwrap().unwrap();
    std::fs::copy(first.path(), folder.join("again.jpg")).unwrap();
    let moved = env.root.join("moved");
    run_ok(
        env.cmd()
            .args(["-q", "duplicates", "--move-to"])
            .arg(&moved)
            .arg(&folder),
    );
    run_ok(
        env.cmd()
            .args(["-q", "duplicates", "--move-to"])
            .arg(&moved)
            .arg("--apply"),
    );
    let stderr_of = |args: &[&str]| {
        let out = run_ok(env.cmd().args(args));
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout)
    };
    assert!(stderr_of(&["undo"]).contains("restored"));
    let again = stderr_of(&["undo"]);
    assert!(
        again.contains("nothing to undo: the last applied run (journal ")
            && again.contains(".jsonl.undone) was undone already"),
        "{again}"
    );
    // one image alone: no copy to move, no run ever applied
    let fresh = setup(&[]);
    let alone = fresh.root.join("alone");
    std::fs::create_dir(&alone).unwrap();
    std::fs::copy(first.path(), alone.join("one.jpg")).unwrap();
    let out = run_ok(
        fresh
            .cmd()
            .args(["duplicates", "--move-to", "elsewhere"])
            .arg(&alone),
    );
    let dry =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    assert!(
        String::from_utf8_lossy(&run_ok(fresh.cmd().arg("undo")).stderr)
            .contains("no `duplicates --apply` run is recorded")
    );
    assert!(
        dry.contains("dry run: 0 would be done") && !dry.contains("--apply"),
        "{dry}"
    );
}
