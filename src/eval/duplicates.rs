//! The duplicates benchmark: plants edited copies of sampled photos in a fresh folder, with
//! the rest as distractors, and scores the groups found by pairwise precision, recall and F1,
//! overall and per edit kind.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use crate::decode::{DecodeConfig, decode_full_size, flatten_to_rgb, read_image_file};
use crate::error::{Error, Result};
use crate::eval::distort::{Distortion, parse_chain};
use crate::rng::SplitMix64;

/// The edits a copy may carry, one each, at the strengths people apply them.
pub const EDIT_KINDS: &[&str] = &[
    "brightness:0.2",
    "brightness:-0.2",
    "contrast:0.6",
    "contrast:1.4",
    "gamma:0.6",
    "sat:0.5",
    "grey",
    "pad:0.08",
    "crop:0.15",
    "corner:0.12",
    "flip",
    "turn:1",
    "turn:2",
    "turn:3",
    "rotate:3:crop",
    "scale:0.5",
    "jpeg:40",
    "sharpen:1",
    "blur:1.5",
    "mark:0.35",
];

/// File name of the manifest written next to the planted files.
pub(crate) const TRUTH_FILE: &str = "truth.tsv";

/// One planted file: its path relative to the benchmark folder, the photo it shows (`None`
/// for a distractor), the edit it carries (`None` for an original or a distractor) and the
/// index of its source among those given to [`plant`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planted {
    pub(crate) rel_path: PathBuf,
    pub(crate) family: Option<usize>,
    pub(crate) edit: Option<String>,
    pub(crate) source: usize,
}

/// What [`plant`] wrote, and the sources it left out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planting {
    /// The manifest, also written to `truth.tsv`.
    pub planted: Vec<Planted>,
    /// Sources sampled as photos that could not be read as images, with why; none of their
    /// files is planted.
    pub unreadable: Vec<(PathBuf, String)>,
}

impl Planting {
    /// The photos with edited copies.
    pub fn originals(&self) -> usize {
        self.planted
            .iter()
            .filter(|p| p.family.is_some() && p.edit.is_none())
            .count()
    }

    /// The distractors.
    pub fn distractors(&self) -> usize {
        self.planted.iter().filter(|p| p.family.is_none()).count()
    }
}

/// Writes the benchmark into `out` (which must be empty or absent): `originals` photos sampled
/// from `sources` with `seed`, each with `edits` edited copies of distinct kinds, and every
/// other source as a distractor. A sampled source that cannot be read as an image is left out
/// (in [`Planting::unreadable`]) and the next in the sample's order taken instead; one readable
/// source at least stays a distractor when another is left. Copies are saved as JPEG
/// (quality 92). The manifest is also written to `out/truth.tsv`.
pub fn plant(
    sources: &[PathBuf],
    originals: usize,
    edits: usize,
    seed: u64,
    out: &Path,
) -> Result<Planting> {
    if let Ok(mut entries) = std::fs::read_dir(out)
        && entries.next().is_some()
    {
        return Err(Error::InvalidInput(format!(
            "{}: not empty; the benchmark writes its files into an empty or new folder",
            crate::path_repr::shown(out)
        )));
    }
    let edits = edits.clamp(1, EDIT_KINDS.len());
    let kinds: Vec<Vec<Distortion>> = EDIT_KINDS
        .iter()
        .map(|k| parse_chain(k))
        .collect::<Result<_>>()?;
    // The sample depends on the paths below the sources' common folder only, so that the
    // same folder named another way (relative, absolute, through a link) plants the same files.
    let base = common_folder(sources);
    let mut order: Vec<usize> = (0..sources.len()).collect();
    order.sort_by_key(|&i| {
        let rel = sources[i].strip_prefix(&base).unwrap_or(&sources[i]);
        crate::eval::stable_hash(rel.as_os_str().as_encoded_bytes()) ^ seed
    });
    for sub in ["originals", "copies", "others"] {
        std::fs::create_dir_all(out.join(sub)).map_err(|e| Error::io(out.join(sub), e))?;
    }
    let ext = |p: &Path| {
        p.extension()
            .map(|e| e.to_string_lossy().to_ascii_lowercase())
            .unwrap_or_else(|| "img".into())
    };
    let distractor = |i: usize| -> Result<Planted> {
        let src = &sources[i];
        let rel = PathBuf::from("others").join(format!("{i:05}.{}", ext(src)));
        std::fs::copy(src, out.join(&rel)).map_err(|e| Error::io(src, e))?;
        Ok(Planted {
            rel_path: rel,
            family: None,
            edit: None,
            source: i,
        })
    };
    // The photo of source `i` and its copies; `Ok(Err(why))` when it cannot be read as an image.
    let photo = |i: usize| -> Result<std::result::Result<Vec<Planted>, String>> {
        let src = &sources[i];
        let cfg = DecodeConfig::default();
        let decoded = read_image_file(src, &cfg).and_then(|b| decode_full_size(&b, src, &cfg));
        let image = match decoded {
            Ok(d) => flatten_to_rgb(d.image),
            Err(Error::Decode { reason, .. }) => return Ok(Err(reason)),
            Err(Error::Io { source, .. }) => return Ok(Err(source.to_string())),
            Err(e) => return Ok(Err(e.to_string())),
        };
        let rel = PathBuf::from("originals").join(format!("{i:05}.{}", ext(src)));
        std::fs::copy(src, out.join(&rel)).map_err(|e| Error::io(src, e))?;
        let mut list = vec![Planted {
            rel_path: rel,
            family: Some(i),
            edit: None,
            source: i,
        }];
        let mut rng = SplitMix64::new(seed ^ crate::eval::stable_hash(&(i as u64).to_le_bytes()));
        let mut chosen: Vec<usize> = Vec::new();
        while chosen.len() < edits {
            let k = (rng.next_u64() % EDIT_KINDS.len() as u64) as usize;
            if !chosen.contains(&k) {
                chosen.push(k);
            }
        }
        for k in chosen {
            let copy = crate::eval::distort::apply_chain(&kinds[k], &image, rng.next_u64())?;
            let name = EDIT_KINDS[k].replace(':', "_");
            let rel = PathBuf::from("copies").join(format!("{i:05}_{name}.jpg"));
            let path = out.join(&rel);
            let mut buf = Vec::new();
            image::codecs::jpeg::JpegEncoder::new_with_quality(&mut buf, 92)
                .encode_image(&copy)
                .map_err(|e| {
                    Error::InvalidInput(format!("{}: {e}", crate::path_repr::shown(&path)))
                })?;
            std::fs::write(&path, buf).map_err(|e| Error::io(&path, e))?;
            list.push(Planted {
                rel_path: rel,
                family: Some(i),
                edit: Some(EDIT_KINDS[k].to_string()),
                source: i,
            });
        }
        Ok(Ok(list))
    };
    // Photos in the sample's order, each unreadable one replaced by the next source.
    let mut photos: Vec<(usize, Vec<Planted>)> = Vec::new();
    let mut left_out: HashSet<usize> = HashSet::new();
    let mut unreadable = Vec::new();
    let mut tried = 0;
    while photos.len() < originals && tried < order.len() {
        let batch = &order[tried..(tried + originals - photos.len()).min(order.len())];
        tried += batch.len();
        let done: Vec<_> = batch
            .par_iter()
            .map(|&i| photo(i).map(|r| (i, r)))
            .collect::<Result<_>>()?;
        for (i, r) in done {
            match r {
                Ok(list) => photos.push((i, list)),
                Err(why) => {
                    left_out.insert(i);
                    unreadable.push((sources[i].clone(), why));
                }
            }
        }
    }
    // Every other source unreadable: the last photo taken stays a distractor instead.
    if tried == order.len() && photos.len() >= 2 && photos.len() + left_out.len() == sources.len() {
        let last = order
            .iter()
            .rev()
            .find(|i| photos.iter().any(|(p, _)| p == *i))
            .copied();
        if let Some(last) = last {
            let at = photos.iter().position(|(p, _)| *p == last).unwrap_or(0);
            for p in photos.remove(at).1 {
                let path = out.join(&p.rel_path);
                std::fs::remove_file(&path).map_err(|e| Error::io(&path, e))?;
            }
        }
    }
    let taken: HashSet<usize> = photos.iter().map(|(i, _)| *i).collect();
    let others: Vec<Planted> = (0..sources.len())
        .into_par_iter()
        .filter(|i| !taken.contains(i) && !left_out.contains(i))
        .map(distractor)
        .collect::<Result<_>>()?;
    photos.sort_by_key(|(i, _)| *i);
    let mut planted: Vec<Planted> = photos.into_iter().flat_map(|(_, list)| list).collect();
    planted.extend(others);
    planted.sort_by_key(|p| p.source);
    unreadable.sort();
    let truth = out.join(TRUTH_FILE);
    let mut text = String::from("path\tfamily\tedit\n");
    for p in &planted {
        text.push_str(&format!(
            "{}\t{}\t{}\n",
            p.rel_path.display(),
            p.family.map_or("-".into(), |f| f.to_string()),
            p.edit.as_deref().unwrap_or("-")
        ));
    }
    std::fs::File::create(&truth)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .map_err(|e| Error::io(&truth, e))?;
    Ok(Planting {
        planted,
        unreadable,
    })
}

/// The deepest folder that holds every one of `paths` (empty when they share none).
fn common_folder(paths: &[PathBuf]) -> PathBuf {
    let mut common: Option<PathBuf> = None;
    for p in paths {
        let folder = p.parent().unwrap_or(Path::new(""));
        common = Some(match common {
            None => folder.to_path_buf(),
            Some(c) => c
                .components()
                .zip(folder.components())
                .take_while(|(a, b)| a == b)
                .map(|(a, _)| a)
                .collect(),
        });
    }
    common.unwrap_or_default()
}

/// Pair counts and the scores made from them.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub(crate) struct PairScore {
    /// True pairs found.
    pub(crate) found: usize,
    /// Pairs found that are not copies of one photo.
    pub(crate) false_pairs: usize,
    /// True pairs missed.
    pub(crate) missed: usize,
    pub(crate) precision: f64,
    pub(crate) recall: f64,
    pub(crate) f1: f64,
}

impl PairScore {
    fn from_counts(found: usize, false_pairs: usize, missed: usize) -> PairScore {
        let ratio = |a: usize, b: usize| if b == 0 { 1.0 } else { a as f64 / b as f64 };
        let precision = ratio(found, found + false_pairs);
        let recall = ratio(found, found + missed);
        let f1 = if precision + recall > 0.0 {
            2.0 * precision * recall / (precision + recall)
        } else {
            0.0
        };
        PairScore {
            found,
            false_pairs,
            missed,
            precision,
            recall,
            f1,
        }
    }
}

/// Scores of one run: overall, and per edit kind over the pairs that hold a copy of that kind.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DuplicateScores {
    pub(crate) overall: PairScore,
    pub(crate) by_edit: BTreeMap<String, PairScore>,
}

/// Scores `groups` (each a list of paths relative to the benchmark folder) against the
/// manifest: every pair of files in one group is a predicted pair; every pair of files of one
/// photo is a true pair. Files the manifest does not name are ignored.
pub fn score(planted: &[Planted], groups: &[Vec<PathBuf>]) -> DuplicateScores {
    let index: HashMap<&Path, usize> = planted
        .iter()
        .enumerate()
        .map(|(i, p)| (p.rel_path.as_path(), i))
        .collect();
    let mut predicted: HashSet<(usize, usize)> = HashSet::new();
    for g in groups {
        let members: Vec<usize> = g
            .iter()
            .filter_map(|p| index.get(p.as_path()).copied())
            .collect();
        for (a, &x) in members.iter().enumerate() {
            for &y in &members[a + 1..] {
                predicted.insert((x.min(y), x.max(y)));
            }
        }
    }
    let is_true =
        |x: usize, y: usize| planted[x].family.is_some() && planted[x].family == planted[y].family;
    let mut truth: Vec<(usize, usize)> = Vec::new();
    let mut by_family: HashMap<usize, Vec<usize>> = HashMap::new();
    for (i, p) in planted.iter().enumerate() {
        if let Some(f) = p.family {
            by_family.entry(f).or_default().push(i);
        }
    }
    for members in by_family.values() {
        for (a, &x) in members.iter().enumerate() {
            for &y in &members[a + 1..] {
                truth.push((x.min(y), x.max(y)));
            }
        }
    }
    let count = |keep: &dyn Fn(usize, usize) -> bool| {
        let found = truth
            .iter()
            .filter(|&&(x, y)| keep(x, y) && predicted.contains(&(x, y)))
            .count();
        let missed = truth
            .iter()
            .filter(|&&(x, y)| keep(x, y) && !predicted.contains(&(x, y)))
            .count();
        let false_pairs = predicted
            .iter()
            .filter(|&&(x, y)| keep(x, y) && !is_true(x, y))
            .count();
        PairScore::from_counts(found, false_pairs, missed)
    };
    let overall = count(&|_, _| true);
    let mut by_edit = BTreeMap::new();
    for kind in EDIT_KINDS {
        let has = |i: usize| planted[i].edit.as_deref() == Some(*kind);
        let s = count(&|x, y| has(x) || has(y));
        if s.found + s.missed + s.false_pairs > 0 {
            by_edit.insert(kind.to_string(), s);
        }
    }
    DuplicateScores { overall, by_edit }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(path: &str, family: Option<usize>, edit: Option<&str>) -> Planted {
        Planted {
            rel_path: PathBuf::from(path),
            family,
            edit: edit.map(str::to_string),
            source: 0,
        }
    }

    #[test]
    fn the_same_folder_named_two_ways_plants_the_same_benchmark() {
        let dir = tempfile::tempdir().unwrap();
        let photos = dir.path().join("photos");
        std::fs::create_dir_all(photos.join("sub")).unwrap();
        let mut sources = Vec::new();
        for i in 0..8u8 {
            let path = photos
                .join(if i % 2 == 0 { "sub" } else { "" })
                .join(format!("{i}.png"));
            image::RgbImage::from_fn(24, 16, |x, y| {
                image::Rgb([(x * 9) as u8, (y * 13) as u8 ^ (i * 20), 255 - i * 25])
            })
            .save(&path)
            .unwrap();
            sources.push(path);
        }
        sources.sort();
        assert_eq!(common_folder(&sources), photos);
        // The same files through a path with more components.
        let longer: Vec<PathBuf> = sources
            .iter()
            .map(|p| {
                photos
                    .join("sub")
                    .join("..")
                    .join(p.strip_prefix(&photos).unwrap())
            })
            .collect();
        let a = plant(&sources, 3, 2, 7, &dir.path().join("a")).unwrap();
        let b = plant(&longer, 3, 2, 7, &dir.path().join("b")).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.planted.iter().filter(|p| p.edit.is_some()).count(), 6);
        let c = plant(&sources, 3, 2, 8, &dir.path().join("c")).unwrap();
        assert_eq!(c.planted.len(), a.planted.len());
    }

    /// A sampled source that cannot be decoded is left out, named with why, and the next in
    /// the sample's order is taken instead; with every other source unreadable, one photo
    /// stays a distractor.
    #[test]
    fn an_unreadable_source_is_left_out_and_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let mut sources = Vec::new();
        for i in 0..6u8 {
            let path = dir.path().join(format!("{i}.png"));
            image::RgbImage::from_fn(24, 16, |x, y| {
                image::Rgb([(x * 9) as u8, (y * 13) as u8 ^ (i * 20), 255 - i * 25])
            })
            .save(&path)
            .unwrap();
            sources.push(path);
        }
        // cut short: the header is there, the pixels are not
        let bytes = std::fs::read(&sources[5]).unwrap();
        std::fs::write(&sources[5], &bytes[..bytes.len() / 2]).unwrap();
        for sample in [2, 6, 9] {
            let out = dir.path().join(format!("out{sample}"));
            let planting = plant(&sources, sample, 1, 7, &out).unwrap();
            let cut: Vec<&Planted> = planting.planted.iter().filter(|p| p.source == 5).collect();
            if planting.unreadable.is_empty() {
                // not sampled: a distractor, as any other file
                assert!(cut.len() == 1 && cut[0].family.is_none(), "{planting:?}");
            } else {
                assert_eq!(planting.unreadable[0].0, sources[5]);
                assert!(!planting.unreadable[0].1.is_empty());
                assert!(cut.is_empty(), "{planting:?}");
            }
            // every source tried: the cut one is found, and one photo stays a distractor
            assert!(sample == 2 || !planting.unreadable.is_empty());
            let expected = if sample == 2 {
                (2, 4 - planting.unreadable.len())
            } else {
                (4, 1)
            };
            assert_eq!(
                (planting.originals(), planting.distractors()),
                expected,
                "{planting:?}"
            );
            let written = ["originals", "copies", "others"]
                .iter()
                .map(|d| std::fs::read_dir(out.join(d)).unwrap().count())
                .sum::<usize>();
            assert_eq!(written, planting.planted.len());
        }
    }

    #[test]
    fn pairs_are_scored_overall_and_per_edit() {
        let planted = vec![
            p("o1", Some(1), None),
            p("c1a", Some(1), Some("flip")),
            p("c1b", Some(1), Some("grey")),
            p("x", None, None),
        ];
        // Found: o1-c1a; false: c1b-x; missed: o1-c1b, c1a-c1b.
        let groups = vec![
            vec![PathBuf::from("o1"), PathBuf::from("c1a")],
            vec![PathBuf::from("c1b"), PathBuf::from("x")],
        ];
        let s = score(&planted, &groups);
        assert_eq!(
            (s.overall.found, s.overall.false_pairs, s.overall.missed),
            (1, 1, 2)
        );
        assert!((s.overall.precision - 0.5).abs() < 1e-12);
        assert!((s.overall.recall - 1.0 / 3.0).abs() < 1e-12);
        let flip = s.by_edit["flip"];
        assert_eq!((flip.found, flip.false_pairs, flip.missed), (1, 0, 1));
        let grey = s.by_edit["grey"];
        assert_eq!((grey.found, grey.false_pairs, grey.missed), (0, 1, 2));
    }
}
