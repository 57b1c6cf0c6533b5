//! The library used from outside the crate: a duplicate search planned into cleanup steps and
//! a labelled evaluation, through public items only.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use image::{Rgb, RgbImage};
use lookalike::cleanup::{self, Action};
use lookalike::collection::Collection;
use lookalike::crawl::CrawlConfig;
use lookalike::duplicates::{self, KeepRule};
use lookalike::eval::groundtruth::GroundTruth;
use lookalike::eval::run::{self, LabelledConfig, Target};
use lookalike::features::dup::CopyTest;
use lookalike::features::{Fusion, Profile, Registry};
use lookalike::index::{self, IndexConfig};

/// A picture of two colours side by side, the first `split` columns of 96 in `left`.
fn picture(left: [u8; 3], right: [u8; 3], split: u32) -> RgbImage {
    RgbImage::from_fn(96, 64, |x, y| {
        let shade = (y / 4) as u8;
        let [r, g, b] = if x < split { left } else { right };
        Rgb([r.saturating_sub(shade), g.saturating_sub(shade), b])
    })
}

/// Indexes `dir` with `profile` into a collection under `at`.
fn indexed(dir: &Path, at: &Path, profile: Profile) -> Collection {
    let collection = Collection::at(at);
    let config = IndexConfig {
        crawl: CrawlConfig {
            roots: vec![dir.to_path_buf()],
            ..CrawlConfig::default()
        },
        profile: Some(profile),
        ..IndexConfig::default()
    };
    let summary = index::run(&collection, &config, &|_| {}, &AtomicBool::new(false)).unwrap();
    assert!(summary.failed.is_empty(), "{:?}", summary.failed);
    collection
}

/// A byte-identical copy is found, and its cleanup planned: one step per copy, naming the copy,
/// its keeper, a move's destination and the bytes it frees.
#[test]
fn a_cleanup_is_planned_from_the_duplicates_found() {
    let tmp = tempfile::tempdir().unwrap();
    let photos = std::fs::canonicalize(tmp.path()).unwrap().join("photos");
    std::fs::create_dir_all(&photos).unwrap();
    picture([200, 30, 30], [30, 30, 200], 40)
        .save(photos.join("a.png"))
        .unwrap();
    picture([30, 200, 30], [240, 240, 240], 70)
        .save(photos.join("b.png"))
        .unwrap();
    std::fs::copy(photos.join("a.png"), photos.join("a copy.png")).unwrap();
    let collection = indexed(&photos, &tmp.path().join("idx"), Profile::Duplicates);
    let store = collection.open_store_read_only().unwrap();

    let findings =
        duplicates::find_in_store(&store, &[], CopyTest::DEFAULT, &KeepRule::Best).unwrap();
    assert_eq!(findings.images(), 3);
    let [group] = findings.groups() else {
        panic!("{findings:?}");
    };
    assert_eq!(group.copies().len(), 1);
    assert!(group.copies()[0].is_exact());
    assert_eq!(group.copies()[0].distance(), 0.0);
    let mut pair: Vec<PathBuf> = [group.keeper(), &group.copies()[0]]
        .iter()
        .map(|m| m.record().path().to_path_buf())
        .collect();
    pair.sort();
    assert_eq!(pair, [photos.join("a copy.png"), photos.join("a.png")]);

    let tracked = store.roots().unwrap();
    let size = std::fs::metadata(photos.join("a.png")).unwrap().len();
    let steps = cleanup::plan(
        findings.groups(),
        &Action::Delete,
        tracked.values().map(PathBuf::as_path),
    );
    let [step] = steps.as_slice() else {
        panic!("{steps:?}");
    };
    assert_eq!(step.path(), group.copies()[0].record().path());
    assert_eq!(step.keeper(), group.keeper().record().path());
    assert_eq!((step.target(), step.frees()), (None, size));

    let aside = tmp.path().join("aside");
    let moved = cleanup::plan(
        findings.groups(),
        &Action::MoveTo(aside.clone()),
        tracked.values().map(PathBuf::as_path),
    );
    let target = moved[0].target().unwrap();
    assert!(target.starts_with(&aside), "{}", target.display());
    assert_eq!(target.file_name(), step.path().file_name());
    // planning moves nothing
    assert!(step.path().exists() && !aside.exists());
}

/// A labelled evaluation of two classes of three pictures each (the same colours split near
/// the same column): every query finds its class first, which a mean average precision of 1
/// and a precision at 1 of 1 say.
#[test]
fn a_labelled_evaluation_runs_on_a_few_generated_images() {
    let tmp = tempfile::tempdir().unwrap();
    let root = std::fs::canonicalize(tmp.path()).unwrap().join("classes");
    for (class, left, right, splits) in [
        ("red", [220, 20, 20], [250, 200, 200], [20, 24, 28]),
        ("blue", [20, 20, 220], [20, 120, 60], [68, 72, 76]),
    ] {
        std::fs::create_dir_all(root.join(class)).unwrap();
        for (i, split) in splits.into_iter().enumerate() {
            picture(left, right, split)
                .save(root.join(class).join(format!("{i}.png")))
                .unwrap();
        }
    }
    let collection = indexed(&root, &tmp.path().join("idx"), Profile::Fast);
    let store = collection.open_store_read_only().unwrap();
    let registry = Registry::for_profile(Profile::Fast);
    let mut gt = GroundTruth::from_folders(&root).unwrap();
    let items = run::load_item_vectors(&store, &mut gt, &registry).unwrap();
    assert_eq!((items.by_item.len(), items.distractors), (6, 0));

    let cfg = LabelledConfig {
        targets: vec![Target::Fused(Fusion::for_profile(Profile::Fast))],
        hnsw: false,
        ..LabelledConfig::default()
    };
    let runs = run::run_labelled(&gt, &items, &registry, &cfg, &AtomicBool::new(false)).unwrap();
    let [only] = runs.as_slice() else {
        panic!("{runs:?}");
    };
    assert_eq!((only.family(), only.mode()), ("fused", "exact"));
    let summary = &only.evaluation().summary;
    assert_eq!(only.rankings.len(), 6);
    assert_eq!(summary.map, 1.0, "{summary:?}");
    assert_eq!(summary.precision_at(1), Some(1.0), "{summary:?}");
}
