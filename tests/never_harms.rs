//! lookalike never deletes, moves or overwrites files it did not write, and degenerate
//! collections (empty, one image, identical images) index and answer queries.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use assert_cmd::Command;
use lookalike::collection::Collection;
use lookalike::crawl::CrawlConfig;
use lookalike::graph::UpdatePolicy;
use lookalike::index::IndexConfig;
use serde_json::Value;

fn sample(group: &str, file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("sample_data")
        .join(group)
        .join(file)
}

fn copy(from: &Path, to: &Path) {
    std::fs::create_dir_all(to.parent().unwrap()).unwrap();
    std::fs::copy(from, to).unwrap();
}

fn lookalike(index_dir: &Path) -> Command {
    let mut c = Command::cargo_bin("lookalike").unwrap();
    c.env_remove("LOOKALIKE_INDEX")
        .arg("--index-dir")
        .arg(index_dir);
    c
}

/// Runs and returns (exit code, stdout as JSON when it parses, stderr).
fn run(cmd: &mut Command) -> (i32, Value, String) {
    let out = cmd.output().unwrap();
    let json = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (
        out.status.code().unwrap_or(-1),
        json,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn index(index_dir: &Path, photos: &Path, extra: &[&str]) -> Value {
    let (code, json, err) = run(lookalike(index_dir)
        .args(["index", "--json"])
        .args(extra)
        .arg(photos));
    assert_eq!(code, 0, "index failed: {err}");
    json
}

/// Paths of the hits of a query, best first.
fn query(index_dir: &Path, example: &Path, extra: &[&str]) -> Vec<PathBuf> {
    let (code, json, err) = run(lookalike(index_dir)
        .args(["query", "--json", "-k", "50"])
        .args(extra)
        .arg(example));
    assert_eq!(code, 0, "query failed: {err}");
    json["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| PathBuf::from(h["path"].as_str().unwrap()))
        .collect()
}

/// Every file under `dir` with its bytes.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.insert(path.clone(), std::fs::read(&path).unwrap());
            }
        }
    }
    out
}

fn canonical(p: &Path) -> PathBuf {
    std::fs::canonicalize(p).unwrap()
}

/// The reported command: `lookalike --index-dir pics index pics`, where `pics/ann/holiday/`
/// holds photos (and `pics/ann/` a folder named like a dump, without lookalike's marker).
#[test]
fn photos_under_the_index_folders_ann_survive_every_run_and_are_indexed() {
    let tmp = tempfile::tempdir().unwrap();
    let pics = tmp.path().join("pics");
    copy(
        &sample("brick", "original.jpg"),
        &pics.join("ann/holiday/brick.jpg"),
    );
    copy(
        &sample("coffee", "original.jpg"),
        &pics.join("ann/holiday/coffee.jpg"),
    );
    copy(
        &sample("camera", "original.jpg"),
        &pics.join("ann/v1-1a2b-42/camera.jpg"),
    );
    std::fs::write(pics.join("ann/v1-1a2b-42/graph.hnsw.data"), b"my notes").unwrap();
    copy(&sample("grass", "original.jpg"), &pics.join("grass.jpg"));
    copy(&sample("grass", "crop.jpg"), &pics.join("grass_crop.jpg"));
    let user_files = snapshot(&pics);
    let survive = |when: &str| {
        for (path, bytes) in &user_files {
            let now = std::fs::read(path).unwrap_or_else(|e| panic!("{when}: {path:?}: {e}"));
            assert!(&now == bytes, "{when}: {path:?} changed");
        }
    };

    // First run builds the graph.
    let summary = index(&pics, &pics, &[]);
    assert_eq!(summary["total_images"], 5, "{summary}");
    assert_eq!(summary["ann_rebuilt"], true);
    survive("first run");
    // Nothing changed: the dump is current.
    let summary = index(&pics, &pics, &[]);
    assert_eq!(summary["unchanged"], 5, "{summary}");
    survive("second run");
    // A new photo: the graph is rebuilt, the old dump removed.
    copy(
        &sample("chelsea", "original.jpg"),
        &pics.join("chelsea.jpg"),
    );
    let summary = index(&pics, &pics, &[]);
    assert_eq!(summary["new"], 1, "{summary}");
    survive("run with a new photo");
    let summary = index(&pics, &pics, &["--rebuild-graph"]);
    assert_eq!(summary["ann_rebuilt"], true, "{summary}");
    survive("forced rebuild");
    // A moved photo: the dump's record is restamped, dump clean-up runs again.
    std::fs::rename(pics.join("chelsea.jpg"), pics.join("chelsea2.jpg")).unwrap();
    let summary = index(&pics, &pics, &[]);
    assert_eq!(summary["moved"], 1, "{summary}");
    survive("run with a moved photo");
    // Only lookalike's own dump folder is left beside the user's.
    let own: Vec<String> = std::fs::read_dir(pics.join("ann"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != "holiday" && n != "v1-1a2b-42")
        .collect();
    assert_eq!(own.len(), 1, "{own:?}");

    // The photos under ann/ are indexed and found.
    for example in ["ann/holiday/brick.jpg", "ann/holiday/coffee.jpg"] {
        let hits = query(&pics, &pics.join(example), &[]);
        assert_eq!(hits[0], canonical(&pics.join(example)), "{hits:?}");
        let exact = query(&pics, &pics.join(example), &["--exact"]);
        assert_eq!(exact[0], canonical(&pics.join(example)), "{exact:?}");
    }
    let hits = query(&pics, &pics.join("ann/v1-1a2b-42/camera.jpg"), &[]);
    assert_eq!(hits[0], canonical(&pics.join("ann/v1-1a2b-42/camera.jpg")));
    survive("queries");
}

/// In-place graph updates (insertions and removals) inside a photo folder that is its own
/// index folder leave the user's files as they were.
#[test]
fn in_place_updates_inside_the_photo_folder_keep_user_files() {
    let tmp = tempfile::tempdir().unwrap();
    let pics = tmp.path().join("pics");
    for (i, group) in ["brick", "coffee", "camera", "grass"].iter().enumerate() {
        copy(
            &sample(group, "original.jpg"),
            &pics.join(format!("ann/holiday/{i}.jpg")),
        );
    }
    copy(&sample("chelsea", "original.jpg"), &pics.join("c.jpg"));
    let user_files = snapshot(&pics);
    let collection = Collection::at(&pics);
    let config = IndexConfig {
        crawl: CrawlConfig {
            roots: vec![pics.clone()],
            ..Default::default()
        },
        graph_update: UpdatePolicy {
            min_built: 0,
            max_growth: 10.0,
            max_hidden: 0.9,
        },
        ..Default::default()
    };
    let stop = AtomicBool::new(false);
    let run = || lookalike::index::run(&collection, &config, &|_| {}, &stop).unwrap();
    assert!(run().ann_rebuilt);
    copy(&sample("gravel", "original.jpg"), &pics.join("g.jpg"));
    let summary = run();
    assert!(summary.ann_updated.is_some(), "{summary:?}");
    std::fs::remove_file(pics.join("g.jpg")).unwrap();
    let summary = run();
    assert!(summary.ann_updated.is_some(), "{summary:?}");
    for (path, bytes) in &user_files {
        assert!(&std::fs::read(path).unwrap() == bytes, "{path:?} changed");
    }
    assert_eq!(summary.total_images, 5);
}

/// An index folder whose file names are taken by something else is refused, untouched.
#[test]
fn foreign_files_named_like_the_index_are_refused_and_kept() {
    let tmp = tempfile::tempdir().unwrap();
    let pics = tmp.path().join("pics");
    copy(&sample("brick", "original.jpg"), &pics.join("brick.jpg"));

    let not_db = tmp.path().join("notes");
    std::fs::create_dir_all(&not_db).unwrap();
    std::fs::write(not_db.join("lookalike.db"), b"my shopping list").unwrap();
    let (code, _, err) = run(lookalike(&not_db).arg("index").arg(&pics));
    assert_eq!(code, 4, "{err}");
    assert!(err.contains("lookalike.db") && err.contains("not"), "{err}");
    assert_eq!(
        std::fs::read(not_db.join("lookalike.db")).unwrap(),
        b"my shopping list"
    );
    let (code, _, err) = run(lookalike(&not_db).arg("status"));
    assert_eq!(code, 4, "{err}");
    assert_eq!(
        std::fs::read(not_db.join("lookalike.db")).unwrap(),
        b"my shopping list"
    );

    let ann_file = tmp.path().join("annfile");
    std::fs::create_dir_all(&ann_file).unwrap();
    std::fs::write(ann_file.join("ann"), b"not a folder").unwrap();
    let (code, _, err) = run(lookalike(&ann_file).arg("index").arg(&pics));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("ann") && err.contains("not a folder"), "{err}");
    assert_eq!(
        std::fs::read(ann_file.join("ann")).unwrap(),
        b"not a folder"
    );
    assert!(!ann_file.join("lookalike.db").exists());
}

/// A SQLite database of another program named like the index is refused, untouched; an empty
/// one (no tables left) is taken as a new index.
#[test]
fn a_sqlite_database_of_another_program_is_refused_and_kept() {
    let tmp = tempfile::tempdir().unwrap();
    let pics = tmp.path().join("pics");
    copy(&sample("brick", "original.jpg"), &pics.join("brick.jpg"));

    let other = tmp.path().join("other");
    std::fs::create_dir_all(&other).unwrap();
    let db = other.join("lookalike.db");
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute_batch("CREATE TABLE x(a); INSERT INTO x VALUES (1);")
        .unwrap();
    let bytes = std::fs::read(&db).unwrap();
    let pics_arg = pics.display().to_string();
    for args in [vec!["index", pics_arg.as_str()], vec!["status"]] {
        let (code, _, err) = run(lookalike(&other).args(&args));
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(
            err.contains(&db.display().to_string()) && err.contains("not a lookalike index"),
            "{args:?}: {err}"
        );
        assert_eq!(std::fs::read(&db).unwrap(), bytes, "{args:?}");
        for made in ["lookalike.db-wal", "index.lock"] {
            assert!(!other.join(made).exists(), "{args:?} made {made}");
        }
    }

    let emptied = tmp.path().join("emptied");
    std::fs::create_dir_all(&emptied).unwrap();
    rusqlite::Connection::open(emptied.join("lookalike.db"))
        .unwrap()
        .execute_batch("CREATE TABLE x(a); DROP TABLE x;")
        .unwrap();
    assert_eq!(index(&emptied, &pics, &[])["total_images"], 1);
}

/// An index folder inside the photo folder: its own files are never walked, the photos a user
/// put in it are indexed like any other.
#[test]
fn the_index_folder_inside_the_photos_keeps_only_its_own_files_out() {
    let tmp = tempfile::tempdir().unwrap();
    let pics = tmp.path().join("pics");
    copy(&sample("brick", "original.jpg"), &pics.join("brick.jpg"));
    copy(
        &sample("coffee", "original.jpg"),
        &pics.join("idx/coffee.jpg"),
    );
    let idx = pics.join("idx");
    assert_eq!(index(&idx, &pics, &[])["total_images"], 2);
    assert_eq!(index(&idx, &pics, &[])["total_images"], 2);
    let hits = query(&idx, &pics.join("idx/coffee.jpg"), &[]);
    assert_eq!(hits[0], canonical(&pics.join("idx/coffee.jpg")));
    assert!(idx.join("coffee.jpg").is_file());
}

/// The same pixels saved as PNG, BMP and PNG with another compression.
fn identical_pictures(dir: &Path, formats: usize) {
    use image::ImageEncoder;
    use image::codecs::png::{CompressionType, FilterType, PngEncoder};
    let img = image::open(sample("chelsea", "original.jpg"))
        .unwrap()
        .thumbnail(96, 96)
        .to_rgb8();
    std::fs::create_dir_all(dir).unwrap();
    img.save(dir.join("a.png")).unwrap();
    if formats > 1 {
        img.save(dir.join("b.bmp")).unwrap();
    }
    if formats > 2 {
        let mut png = Vec::new();
        PngEncoder::new_with_quality(&mut png, CompressionType::Best, FilterType::Paeth)
            .write_image(
                img.as_raw(),
                img.width(),
                img.height(),
                image::ExtendedColorType::Rgb8,
            )
            .unwrap();
        std::fs::write(dir.join("c.png"), png).unwrap();
    }
}

/// Visually identical, byte-different images (no variance for the PCA), and collections of
/// one and two images: index and every query succeed, each image finds the others.
#[test]
fn identical_images_and_tiny_collections_index_and_answer_queries() {
    for formats in [3, 2, 1] {
        let tmp = tempfile::tempdir().unwrap();
        let pics = tmp.path().join("pics");
        let idx = tmp.path().join("idx");
        identical_pictures(&pics, formats);
        let files: Vec<PathBuf> = std::fs::read_dir(&pics)
            .unwrap()
            .map(|e| canonical(&e.unwrap().path()))
            .collect();
        assert_eq!(files.len(), formats);
        assert_eq!(index(&idx, &pics, &[])["total_images"], formats);
        assert_eq!(
            index(&idx, &pics, &["--rebuild-graph"])["total_images"],
            formats
        );
        for file in &files {
            for extra in [&[][..], &["--exact"][..], &["--qe", "0"][..]] {
                let mut hits = query(&idx, file, extra);
                hits.sort();
                let mut expected = files.clone();
                expected.sort();
                assert_eq!(hits, expected, "{formats} images, {extra:?}");
            }
        }
        let (code, status, err) = run(lookalike(&idx).args(["status", "--json"]));
        assert_eq!(code, 0, "{err}");
        assert_eq!(status["images"], formats);
    }
}

/// An empty folder, or `--include` matching nothing, is an empty collection: indexed without
/// error, shown by `status`, answered with a clear message; images added later are indexed.
#[test]
fn empty_collections_index_and_later_grow() {
    let tmp = tempfile::tempdir().unwrap();
    let pics = tmp.path().join("pics");
    std::fs::create_dir_all(&pics).unwrap();
    let idx = tmp.path().join("idx");
    let example = sample("brick", "original.jpg");
    for _ in 0..2 {
        let summary = index(&idx, &pics, &[]);
        assert_eq!(summary["total_images"], 0, "{summary}");
    }
    let (code, status, err) = run(lookalike(&idx).args(["status", "--json"]));
    assert_eq!(code, 0, "{err}");
    assert_eq!(status["images"], 0);
    for extra in [&[][..], &["--exact"][..]] {
        let (code, _, err) = run(lookalike(&idx).arg("query").args(extra).arg(&example));
        assert_eq!(code, 2, "{err}");
        assert!(
            err.contains("holds no images though it tracks 1 folder"),
            "{err}"
        );
        assert!(!err.contains("unexpected"), "{err}");
    }

    copy(&example, &pics.join("brick.jpg"));
    copy(&sample("coffee", "original.jpg"), &pics.join("coffee.jpg"));
    let summary = index(&idx, &pics, &["--include", "*.png"]);
    assert_eq!(summary["total_images"], 0, "{summary}");
    // the include is remembered until the walk's defaults are asked for
    let summary = index(&idx, &pics, &[]);
    assert_eq!(summary["total_images"], 0, "{summary}");
    let summary = index(&idx, &pics, &["--walk-defaults"]);
    assert_eq!(summary["total_images"], 2, "{summary}");
    let hits = query(&idx, &pics.join("brick.jpg"), &[]);
    assert_eq!(hits[0], canonical(&pics.join("brick.jpg")));
    assert_eq!(hits.len(), 2);
}
