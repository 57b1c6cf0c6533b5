//! Near-duplicate groups: byte-identical copies by content hash, edited copies by the
//! duplicate signature ([`crate::features::dup`]), each group led by the copy to keep.

use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use crate::decode::DecodeConfig;
use crate::error::{Error, Result};
use crate::features::dup::{CopyTest, LEAST_SIDE, LEN, Match, compare};
use crate::store::{ImageRecord, Store};

mod pairs;
pub mod verify;

/// How alike two images must be to count as copies, as a person would choose it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Similarity {
    /// Only very close copies (recompressed, resized, re-exported, flipped or turned).
    Strict,
    /// The calibrated default: edited copies too (brightness, contrast, colour, borders,
    /// small crops, watermarks), few false pairs (BENCHMARKS.md, "Duplicates").
    Default,
    /// More edited copies, more pairs that are only alike.
    Loose,
    /// A signature distance in 0..=2 (0: the same layout in the same tones).
    Threshold(f32),
}

impl Similarity {
    /// The test a pair of copies passes: the greatest layout distance, and the greatest
    /// detail distance (a numeric level keeps the default's).
    pub fn test(self) -> CopyTest {
        let default = CopyTest {
            layout: 0.4,
            detail: 0.95,
            aligned: Some(0.8),
        };
        match self {
            Similarity::Strict => CopyTest {
                layout: 0.3,
                detail: 0.75,
                aligned: Some(0.9),
            },
            Similarity::Default => default,
            Similarity::Loose => CopyTest {
                layout: 0.4,
                detail: 1.0,
                aligned: Some(0.7),
            },
            Similarity::Threshold(t) => CopyTest {
                layout: t,
                ..default
            },
        }
    }

    /// `strict`, `default`, `loose` or a number in 0..=2.
    pub fn parse(s: &str) -> Result<Similarity> {
        match s.trim().to_ascii_lowercase().as_str() {
            "strict" => Ok(Similarity::Strict),
            "default" => Ok(Similarity::Default),
            "loose" => Ok(Similarity::Loose),
            // the range is checked before rounding to f32, which takes 2.0000001 to 2
            other => match other.parse::<f64>() {
                Ok(t) if t.is_finite() && (0.0..=2.0).contains(&t) => {
                    Ok(Similarity::Threshold(t as f32))
                }
                _ => Err(Error::InvalidInput(format!(
                    "similarity {s:?}: use strict, default, loose or a distance from 0 to 2"
                ))),
            },
        }
    }
}

/// Which copy of a group is proposed for keeping.
#[derive(Debug, Clone)]
pub enum KeepRule {
    /// Most pixels, then the oldest (an edit or a copy is made after its original), then the
    /// largest file, then the shortest path.
    Best,
    /// The most recently modified (ties as `Best`).
    Newest,
    /// The least recently modified (ties as `Best`).
    Oldest,
    /// The shortest path (ties as `Best`).
    ShortestPath,
    /// A copy whose path matches the pattern (ties as `Best`); else as `Best`.
    Matching(crate::globs::Glob),
}

/// Why a `match:` pattern `given` (the rule as the user wrote it) may match no copy: it is
/// matched against the absolute path, which listings show relative to the working
/// directory; a relative pattern is offered under `**/`, and another one as an example.
pub(crate) fn pattern_hint(given: &str) -> String {
    let pattern = given.trim().strip_prefix("match:").unwrap_or(given.trim());
    let example = if !pattern.starts_with(['/', '*']) {
        format!("; match:**/{pattern} matches it below any folder")
    } else if pattern != "**/originals/**" {
        "; e.g. match:**/originals/**".to_string()
    } else {
        String::new()
    };
    format!(
        "it is matched against the whole absolute path, which listings show relative to the working directory{example}"
    )
}

impl KeepRule {
    /// `best`, `newest`, `oldest`, `shortest-path` or `match:GLOB`.
    pub fn parse(s: &str) -> Result<KeepRule> {
        let bad = || {
            Error::InvalidInput(format!(
                "--keep {s:?}: use best, newest, oldest, shortest-path or match:GLOB"
            ))
        };
        match s.trim() {
            "best" => Ok(KeepRule::Best),
            "newest" => Ok(KeepRule::Newest),
            "oldest" => Ok(KeepRule::Oldest),
            "shortest-path" => Ok(KeepRule::ShortestPath),
            other => {
                let pattern = other.strip_prefix("match:").ok_or_else(bad)?;
                if pattern.is_empty() {
                    return Err(Error::InvalidInput(format!(
                        "--keep {s:?}: give a pattern after match: (e.g. match:**/originals/**)"
                    )));
                }
                // letter case ignored, as for --include and --exclude
                let glob = crate::globs::Glob::new(pattern)
                    .map_err(|e| Error::InvalidInput(format!("--keep {s:?}: bad pattern: {e}")))?;
                Ok(KeepRule::Matching(glob))
            }
        }
    }

    /// True when the rule is a pattern that no member of `group` matches (the group then keeps
    /// its best copy).
    pub fn matches_none_of(&self, group: &Group) -> bool {
        match self {
            KeepRule::Matching(m) => !group.members.iter().any(|x| m.is_match(&x.record.path)),
            _ => false,
        }
    }

    /// Refuses a pattern that no copy of any of `groups` matches: every group would keep its
    /// best copy instead, which is not what was asked. `given` is the rule as the user wrote
    /// it, `flag` how they gave it (`--keep` on the command line, `keep` in the web API).
    pub fn check_matches_some(&self, flag: &str, given: &str, groups: &[Group]) -> Result<()> {
        if groups.is_empty() || !groups.iter().all(|g| self.matches_none_of(g)) {
            return Ok(());
        }
        let which = match groups.len() {
            1 => "the only group, so it".to_string(),
            n => format!("any of the {n} groups, so every group"),
        };
        Err(Error::InvalidInput(format!(
            "{flag} {}: no copy matches in {which} would keep its best copy instead: nothing was done; check the pattern ({})",
            given.trim(),
            pattern_hint(given),
        )))
    }

    /// Orders copies so that the one to keep comes first; `eras` numbers the copies' times
    /// (see [`time_eras`]) for `best`.
    fn compare(
        &self,
        a: &ImageRecord,
        b: &ImageRecord,
        eras: &HashMap<i64, usize>,
    ) -> std::cmp::Ordering {
        let pixels = |r: &ImageRecord| u64::from(r.width) * u64::from(r.height);
        let path_len = |r: &ImageRecord| r.path.as_os_str().len();
        let era = |r: &ImageRecord| eras.get(&r.id).copied().unwrap_or(0);
        let best = || {
            pixels(b)
                .cmp(&pixels(a))
                .then(era(a).cmp(&era(b)))
                .then(b.stamp.size.cmp(&a.stamp.size))
                .then(path_len(a).cmp(&path_len(b)))
                .then(a.path.cmp(&b.path))
        };
        match self {
            KeepRule::Best => best(),
            KeepRule::Newest => b.stamp.mtime_ns.cmp(&a.stamp.mtime_ns).then_with(best),
            KeepRule::Oldest => a.stamp.mtime_ns.cmp(&b.stamp.mtime_ns).then_with(best),
            KeepRule::ShortestPath => path_len(a).cmp(&path_len(b)).then_with(best),
            KeepRule::Matching(m) => m
                .is_match(&b.path)
                .cmp(&m.is_match(&a.path))
                .then_with(best),
        }
    }
}

/// Files written within this of the oldest of them count as written at once by `--keep best`:
/// a copied or checked-out folder writes its files microseconds apart, in name order.
const SAME_TIME_NS: i64 = 2_000_000_000;

/// Numbers the times of `records` in order: each era starts at the oldest time not yet in one
/// and takes the times less than [`SAME_TIME_NS`] after it, so two times of one era are never
/// that far apart, and the order on eras (unlike "within 2 s") is transitive.
fn time_eras<'a>(records: impl Iterator<Item = &'a ImageRecord>) -> HashMap<i64, usize> {
    let mut times: Vec<(i64, i64)> = records.map(|r| (r.stamp.mtime_ns, r.id)).collect();
    times.sort_unstable();
    let mut eras = HashMap::new();
    let mut era = 0;
    let mut start = times.first().map_or(0, |t| t.0);
    for &(t, id) in &times {
        if t.saturating_sub(start) >= SAME_TIME_NS {
            era += 1;
            start = t;
        }
        eras.insert(id, era);
    }
    eras
}

/// One image of a group.
#[derive(Debug, Clone)]
pub struct Member {
    pub(crate) record: ImageRecord,
    /// Layout distance of the signatures to the group's keeper (0 for the keeper and
    /// byte-identical copies; 2 when either has no usable signature).
    pub(crate) distance: f32,
    /// Byte-identical to the keeper.
    pub(crate) exact: bool,
}

impl Member {
    /// The indexed image.
    pub fn record(&self) -> &ImageRecord {
        &self.record
    }

    /// Layout distance of its signature to the keeper's (0 for the keeper and byte-identical
    /// copies; 2 when either has no usable signature).
    pub fn distance(&self) -> f32 {
        self.distance
    }

    /// True when its bytes are the keeper's.
    pub fn is_exact(&self) -> bool {
        self.exact
    }
}

/// A group of copies; `members[0]` is the proposed keeper.
#[derive(Debug, Clone)]
pub struct Group {
    pub(crate) members: Vec<Member>,
}

impl Group {
    /// The copy proposed for keeping.
    pub fn keeper(&self) -> &Member {
        &self.members[0]
    }

    /// The other copies.
    pub fn copies(&self) -> &[Member] {
        &self.members[1..]
    }
}

/// An image with its duplicate signature (empty when the index has none for it yet).
#[derive(Debug, Clone)]
pub struct Candidate {
    pub(crate) record: ImageRecord,
    pub(crate) signature: Vec<f32>,
}

/// What a search found.
#[derive(Debug, Clone)]
pub struct Findings {
    pub(crate) groups: Vec<Group>,
    /// Images compared.
    pub(crate) images: usize,
    /// Images without a signature (indexed by an older version): only their byte-identical
    /// copies are found until `lookalike index` runs again.
    pub(crate) unsigned: usize,
    /// Images whose stored signature is damaged: only their byte-identical copies are found
    /// until `lookalike index --repair` extracts them again.
    pub(crate) damaged: usize,
    /// Indexed images whose file is gone since: left out, so that a copy is never proposed for
    /// removal with a missing file as the one kept.
    pub(crate) gone: usize,
    /// The signatures compared were made by an older extractor than this version's: the
    /// groups may differ from those it gives once `lookalike index` makes them again.
    pub(crate) outdated: bool,
    pub(crate) test: CopyTest,
}

impl Findings {
    /// Refuses to act on groups found with signatures an older extractor made:
    /// `index_command` makes them again.
    pub(crate) fn check_current(&self, index_command: &str) -> Result<()> {
        if self.outdated {
            return Err(Error::InvalidInput(format!(
                "the duplicate signatures in this index were made by an older version of lookalike, and its groups may differ from this version's: run `{index_command}` first, then review the dry run again"
            )));
        }
        Ok(())
    }

    /// The groups of copies found, by their keeper's path.
    pub fn groups(&self) -> &[Group] {
        &self.groups
    }

    /// Images compared.
    pub fn images(&self) -> usize {
        self.images
    }
}

/// Largest joined set whose images are all compared with each other to find its centres;
/// a larger one (a loose test over many near-uniform pictures) is split around its best image.
const PAIRWISE_COMPONENT: usize = 64;
/// Images whose near pairs are compared together before their copies are joined.
const JOIN_CHUNK: usize = 2048;
/// Partners of an image, nearest first, whose pairs are aligned when they need to be; pairs
/// with farther partners are left out.
const ALIGNED_PARTNERS: usize = 8;
/// Aligned views kept between chunks (128 kB each).
const VIEW_CACHE: usize = 2048;

/// The thumbnail (JPEG bytes) of an indexed image, when the index has one.
pub type Thumbnails<'a> = dyn FnMut(&ImageRecord) -> Option<Vec<u8>> + 'a;

/// Whether a pair that passed the signature part of `test` are copies. When the test asks
/// for aligned pictures, the pair's views are aligned unless its signatures are
/// [`CopyTest::SURE`] and neither picture is plain; a plain picture (a mostly blank page or a
/// smooth gradient has too little layout for its signature to tell it from another) is a copy
/// only when its content views line up too. A pair without both views is judged by its
/// signatures, [`CopyTest::signatures_only`] unless sure.
fn confirmed(test: &CopyTest, m: &Match, a: Option<&Pictures>, b: Option<&Pictures>) -> bool {
    let Some(least) = test.aligned else {
        return true;
    };
    let sure = CopyTest::SURE.accepts(m);
    match (a, b) {
        (Some(a), Some(b)) if a.whole.is_plain() || b.whole.is_plain() => {
            match (&a.content, &b.content) {
                (Some(ca), Some(cb)) => verify::contents_confirm(ca, cb, m, least),
                _ => false,
            }
        }
        (Some(a), Some(b)) => sure || verify::confirms(&a.whole, &b.whole, m, least),
        _ => sure || test.signatures_only().accepts(m),
    }
}

/// What a pair of images is confirmed on: the view of the whole picture, from its thumbnail,
/// and for a plain one the view of its content, from its file when it still holds the indexed
/// content (else from the thumbnail).
struct Pictures {
    whole: verify::View,
    content: Option<verify::View>,
}

/// Longest side an image is decoded at for its content view.
const CONTENT_SIDE: u32 = 1024;

/// The pictures of an indexed image from its thumbnail (JPEG bytes), when it decodes.
fn pictures_of(
    jpeg: Option<&[u8]>,
    record: &ImageRecord,
    files: Option<&DecodeConfig>,
) -> Option<Pictures> {
    let thumbnail = image::load_from_memory(jpeg?).ok()?.to_rgb8();
    let whole = verify::View::of(&thumbnail)?;
    let content = whole.is_plain().then(|| {
        let decoded = files.and_then(|cfg| {
            let cfg = DecodeConfig {
                working_size: CONTENT_SIDE,
                ..*cfg
            };
            let bytes = indexed_bytes(record, &cfg)?;
            crate::decode::decode(&bytes, &record.path, &cfg).ok()
        });
        match decoded {
            Some(d) => verify::content_view(&d.image),
            None => verify::content_view(&thumbnail),
        }
    });
    Some(Pictures {
        whole,
        content: content.flatten(),
    })
}

/// The thumbnail of an indexed image made from its file, exactly as indexing makes it, when
/// the file still holds the content that was indexed; `None` when it changed, went or does
/// not decode.
fn thumbnail_from_file(record: &ImageRecord, cfg: &DecodeConfig) -> Option<Vec<u8>> {
    let bytes = indexed_bytes(record, cfg)?;
    crate::thumbnail::from_bytes(&bytes, &record.path, cfg).ok()
}

/// The bytes of an indexed image's file (read under `cfg`'s size limit) while it holds the
/// content that was indexed; `None` when it changed, went or cannot be read.
fn indexed_bytes(record: &ImageRecord, cfg: &DecodeConfig) -> Option<Vec<u8>> {
    let bytes = crate::decode::read_file_bounded(&record.path, cfg.max_file_size, "image").ok()?;
    (*blake3::hash(&bytes).as_bytes() == record.hash).then_some(bytes)
}

/// Groups `candidates`: byte-identical copies and pairs that pass `test`, joined
/// transitively, then split so that each group holds a centre and images that pass `test`
/// with the centre itself; groups of one are left out. Groups come in keeper path order. When `test`
/// asks for aligned pictures, pairs are confirmed on the `thumbnails` of their images (see
/// `confirmed`), or, for an image without one when `files` is given, on a thumbnail made
/// from its file (decoded under `files`) if the file still holds the indexed content. An image under
/// 8 pixels (`LEAST_SIDE`) a side is grouped only with byte-identical copies and images of the
/// same signature (its pixels in another file). Images are taken in path order, so the groups
/// do not depend on the order the index numbered them in.
pub fn group(
    mut candidates: Vec<Candidate>,
    test: CopyTest,
    keep: &KeepRule,
    thumbnails: &mut Thumbnails,
    files: Option<&DecodeConfig>,
) -> Vec<Group> {
    candidates.sort_by(|a, b| a.record.path.cmp(&b.record.path));
    let n = candidates.len();
    let mut parent: Vec<usize> = (0..n).collect();
    /// The set's representative, without shortening paths (for shared reads).
    fn root(parent: &[usize], mut i: usize) -> usize {
        while parent[i] != i {
            i = parent[i];
        }
        i
    }
    fn find(parent: &mut [usize], mut i: usize) -> usize {
        while parent[i] != i {
            parent[i] = parent[parent[i]];
            i = parent[i];
        }
        i
    }
    let join = |parent: &mut Vec<usize>, a: usize, b: usize| {
        let (ra, rb) = (find(parent, a), find(parent, b));
        if ra != rb {
            parent[ra.max(rb)] = ra.min(rb);
        }
    };
    let mut by_hash: HashMap<[u8; 32], usize> = HashMap::new();
    for (i, c) in candidates.iter().enumerate() {
        match by_hash.get(&c.record.hash) {
            Some(&first) => join(&mut parent, first, i),
            None => {
                by_hash.insert(c.record.hash, i);
            }
        }
    }
    let tiny = |i: usize| {
        let r = &candidates[i].record;
        r.width.min(r.height) < LEAST_SIDE && r.width.min(r.height) > 0
    };
    // A flat image's signature is all zeros whatever its colour: it tells no pixels.
    let same_signature = |a: usize, b: usize| {
        let (sa, sb) = (&candidates[a].signature, &candidates[b].signature);
        sa.len() == LEN
            && sa.iter().any(|&v| v != 0.0)
            && sa
                .iter()
                .map(|v| v.to_bits())
                .eq(sb.iter().map(|v| v.to_bits()))
    };
    let mut by_signature: HashMap<Vec<u32>, usize> = HashMap::new();
    for i in (0..n).filter(|&i| {
        let signature = &candidates[i].signature;
        tiny(i) && signature.len() == LEN && signature.iter().any(|&v| v != 0.0)
    }) {
        let bits = candidates[i]
            .signature
            .iter()
            .map(|v| v.to_bits())
            .collect();
        match by_signature.get(&bits) {
            Some(&first) => join(&mut parent, first, i),
            None => {
                by_signature.insert(bits, i);
            }
        }
    }
    let signed: Vec<usize> = (0..n)
        .filter(|&i| candidates[i].signature.len() == LEN && !tiny(i))
        .collect();
    let signatures: Vec<&[f32]> = signed
        .iter()
        .map(|&i| candidates[i].signature.as_slice())
        .collect();
    let near = pairs::NearPairs::new(&signatures);
    let mut views: HashMap<usize, Option<Pictures>> = HashMap::new();
    let mut passed_pairs: HashSet<(usize, usize)> = HashSet::new();
    // Images are taken in chunks: a pair already joined (through byte-identical or earlier
    // copies) is not compared again, and pairs never pile up in memory.
    let order = near.tree_order();
    for chunk in order.chunks(JOIN_CHUNK) {
        let joined = |parent: &[usize], a: usize, b: usize| root(parent, a) == root(parent, b);
        let mut passed: Vec<(usize, usize, Match)> = chunk
            .par_iter()
            .flat_map_iter(|&k| {
                let (near, parent, signed, candidates) = (&near, &parent, &signed, &candidates);
                let mut found: Vec<(usize, usize, Match)> = near
                    .partners(k, test.layout)
                    .into_iter()
                    .filter_map(move |l| {
                        let (i, j) = (signed[k.min(l)], signed[k.max(l)]);
                        if joined(parent, i, j) {
                            return None;
                        }
                        let m = compare(&candidates[i].signature, &candidates[j].signature);
                        test.accepts(&m).then_some((i, j, m))
                    })
                    .collect();
                // The nearest unsure partners only: the cost of aligning stays bounded
                // however loose the test.
                found.sort_by(|a, b| a.2.layout.total_cmp(&b.2.layout));
                let mut unsure_kept = 0;
                found.retain(|(_, _, m)| {
                    if test.aligned.is_none() || CopyTest::SURE.accepts(m) {
                        return true;
                    }
                    unsure_kept += 1;
                    unsure_kept <= ALIGNED_PARTNERS
                });
                found
            })
            .collect();
        passed.sort_by_key(|&(i, j, _)| (i, j));
        passed.dedup_by_key(|&mut (i, j, _)| (i, j));
        if views.len() > VIEW_CACHE {
            views.clear();
        }
        let mut wanted: Vec<usize> = passed
            .iter()
            .filter(|_| test.aligned.is_some())
            .flat_map(|&(i, j, _)| [i, j])
            .filter(|i| !views.contains_key(i))
            .collect();
        wanted.sort_unstable();
        wanted.dedup();
        let jpegs: Vec<(usize, Option<Vec<u8>>)> = wanted
            .into_iter()
            .map(|i| (i, thumbnails(&candidates[i].record)))
            .collect();
        views.par_extend(jpegs.into_par_iter().map(|(i, jpeg)| {
            let record = &candidates[i].record;
            let jpeg = jpeg.or_else(|| files.and_then(|cfg| thumbnail_from_file(record, cfg)));
            (i, pictures_of(jpeg.as_deref(), record, files))
        }));
        let accepted: Vec<(usize, usize)> = passed
            .into_par_iter()
            .filter(|(i, j, m)| {
                let view = |k: &usize| views.get(k).and_then(Option::as_ref);
                confirmed(&test, m, view(i), view(j))
            })
            .map(|(i, j, _)| (i, j))
            .collect();
        for (a, b) in accepted {
            join(&mut parent, a, b);
            passed_pairs.insert((a, b));
        }
    }
    // The same content's signed stand-in, so that a byte-identical copy without a signature
    // is judged as its twins are.
    let mut signed_twin: HashMap<[u8; 32], usize> = HashMap::new();
    for &i in &signed {
        signed_twin.entry(candidates[i].record.hash).or_insert(i);
    }
    let stand_in = |i: usize| *signed_twin.get(&candidates[i].record.hash).unwrap_or(&i);
    // Whether `a` and `b` are copies of each other by the test itself: the joins above are
    // transitive, and a chain of small edits can lead from a photo to an unrelated one.
    let mut copies_of_each_other = |a: usize, b: usize| -> bool {
        if candidates[a].record.hash == candidates[b].record.hash {
            return true;
        }
        if tiny(a) || tiny(b) {
            return same_signature(a, b);
        }
        let (a, b) = (stand_in(a).min(stand_in(b)), stand_in(a).max(stand_in(b)));
        if passed_pairs.contains(&(a, b)) {
            return true;
        }
        let (sa, sb) = (&candidates[a].signature, &candidates[b].signature);
        if sa.len() != LEN || sb.len() != LEN {
            return false;
        }
        let m = compare(sa, sb);
        if !test.accepts(&m) {
            return false;
        }
        if test.aligned.is_none() {
            return true;
        }
        if views.len() > VIEW_CACHE {
            views.clear();
        }
        for i in [a, b] {
            views.entry(i).or_insert_with(|| {
                let record = &candidates[i].record;
                let jpeg = thumbnails(record)
                    .or_else(|| files.and_then(|cfg| thumbnail_from_file(record, cfg)));
                pictures_of(jpeg.as_deref(), record, files)
            });
        }
        confirmed(&test, &m, views[&a].as_ref(), views[&b].as_ref())
    };
    let mut members: HashMap<usize, Vec<usize>> = HashMap::new();
    for i in 0..n {
        let r = find(&mut parent, i);
        members.entry(r).or_default().push(i);
    }
    let mut components: Vec<Vec<usize>> = members.into_values().filter(|m| m.len() > 1).collect();
    components.sort_unstable();
    let mut groups: Vec<Group> = Vec::new();
    for mut m in components {
        // A symbolic link, or a file reached through a link that leads out of its indexed
        // folder, is kept only when no other file is: no action may use it as the keeper.
        let links: HashSet<usize> = m
            .iter()
            .copied()
            .filter(|&i| {
                let r = &candidates[i].record;
                std::fs::symlink_metadata(&r.path).is_ok_and(|meta| meta.is_symlink())
                    || crate::cleanup::outside_its_folder(&r.path, &r.root).is_some()
            })
            .collect();
        let eras = time_eras(m.iter().map(|&i| &candidates[i].record));
        m.sort_by(|&a, &b| {
            links
                .contains(&a)
                .cmp(&links.contains(&b))
                .then_with(|| keep.compare(&candidates[a].record, &candidates[b].record, &eras))
        });
        // Each group is a centre, the image left that the most others are copies of by the
        // test itself, and those copies; the rest are grouped again among themselves. So every
        // image of a group is one step of the test from its centre (the original of its edited
        // copies, typically), never a chain of steps away.
        let pairwise = m.len() <= PAIRWISE_COMPONENT;
        let adjacent: Vec<Vec<bool>> = if pairwise {
            let mut adj = vec![vec![false; m.len()]; m.len()];
            for x in 0..m.len() {
                for y in x + 1..m.len() {
                    let linked = copies_of_each_other(m[x], m[y]);
                    adj[x][y] = linked;
                    adj[y][x] = linked;
                }
            }
            adj
        } else {
            Vec::new()
        };
        let mut rest: Vec<usize> = (0..m.len()).collect();
        while rest.len() > 1 {
            let centre = if pairwise {
                // the most copies, then the earliest in keeping order
                *rest
                    .iter()
                    .max_by_key(|&&x| {
                        let degree = rest.iter().filter(|&&y| adjacent[x][y]).count();
                        (degree, std::cmp::Reverse(x))
                    })
                    .expect("rest is not empty")
            } else {
                rest[0]
            };
            let (star, others): (Vec<usize>, Vec<usize>) = rest.iter().partition(|&&y| {
                y == centre
                    || if pairwise {
                        adjacent[centre][y]
                    } else {
                        copies_of_each_other(m[centre], m[y])
                    }
            });
            rest = others;
            // in keeping order: the first is kept
            let mut star: Vec<usize> = star.into_iter().map(|x| m[x]).collect();
            let first = star[0];
            // Other names of the kept file (hard links, a path through a linked folder) are
            // not copies: removing one would remove the file kept.
            if let Some(kept) = crate::cleanup::file_id(&candidates[first].record.path) {
                star.retain(|&i| {
                    i == first || crate::cleanup::file_id(&candidates[i].record.path) != Some(kept)
                });
            }
            if star.len() < 2 {
                continue;
            }
            let keeper = &candidates[stand_in(first)];
            let members = star
                .iter()
                .map(|&i| {
                    let c = &candidates[i];
                    let exact = c.record.hash == candidates[first].record.hash;
                    let distance = if exact {
                        0.0
                    } else {
                        compare(&keeper.signature, &candidates[stand_in(i)].signature).layout
                    };
                    Member {
                        record: c.record.clone(),
                        distance,
                        exact,
                    }
                })
                .collect();
            groups.push(Group { members });
        }
    }
    groups.sort_by(|a, b| a.keeper().record.path.cmp(&b.keeper().record.path));
    groups
}

/// Finds the groups among the indexed images under `within` (every image when empty).
pub fn find_in_store(
    store: &Store,
    within: &[PathBuf],
    test: CopyTest,
    keep: &KeepRule,
) -> Result<Findings> {
    let under = |p: &Path| within.is_empty() || within.iter().any(|w| p.starts_with(w));
    let records: Vec<ImageRecord> = store
        .image_records()?
        .into_iter()
        .filter(|r| under(&r.path))
        .collect();
    // Every signature in one scan, or those of the folders' images only.
    let signed = if within.is_empty() {
        store.vectors(&["dup"])?
    } else {
        let ids: Vec<i64> = records.iter().map(|r| r.id).collect();
        store.vectors_of(&ids, &["dup"])?
    };
    let damaged: HashSet<i64> = store
        .take_damaged()
        .into_iter()
        .map(|d| d.image_id)
        .collect();
    let mut signatures: HashMap<i64, Vec<f32>> = signed
        .into_iter()
        .filter_map(|(id, mut parts)| parts.pop().map(|v| (id, v)))
        .collect();
    let listed = records.len();
    let candidates: Vec<Candidate> = records
        .into_iter()
        .filter(|record| std::fs::symlink_metadata(&record.path).is_ok())
        .map(|mut record| {
            // A time recorded as unsettled (the file was new while indexed) is read again, so
            // that "oldest" and "newest" compare real times.
            if record.stamp.mtime_ns == crate::store::FileStamp::UNSETTLED_MTIME
                && let Ok(meta) = std::fs::metadata(&record.path)
            {
                record.stamp.mtime_ns = crate::store::FileStamp::of(&meta).mtime_ns;
            }
            record
        })
        .map(|record| Candidate {
            signature: signatures.remove(&record.id).unwrap_or_default(),
            record,
        })
        .collect();
    let images = candidates.len();
    let gone = listed - images;
    let unsigned = candidates
        .iter()
        .filter(|c| c.signature.len() != LEN && !damaged.contains(&c.record.id))
        .count();
    let damaged = candidates
        .iter()
        .filter(|c| damaged.contains(&c.record.id))
        .count();
    use crate::features::Extractor;
    let current = crate::features::dup::DuplicateSignature;
    let outdated = store.searched_signatures()?.is_some_and(|searched| {
        searched.iter().any(|(family, version, params)| {
            family == current.family()
                && !crate::store::is_searched(
                    Some(&[(family.clone(), *version, params.clone())]),
                    family,
                    current.version(),
                    &current.params(),
                )
        })
    });
    let mut thumbnails = |r: &ImageRecord| store.thumbnail(&r.hash).ok().flatten();
    // An index of the duplicates profile stores no thumbnails: the few pictures aligned are
    // made from the files, decoded as indexing decodes them.
    let files = DecodeConfig::default();
    Ok(Findings {
        groups: group(candidates, test, keep, &mut thumbnails, Some(&files)),
        images,
        unsigned,
        damaged,
        gone,
        outdated,
        test,
    })
}

fn member_json(m: &Member) -> Value {
    let r = &m.record;
    let mut obj = crate::path_repr::object("path", &r.path);
    obj.insert("id".into(), json!(r.id));
    obj.insert("width".into(), json!(r.width));
    obj.insert("height".into(), json!(r.height));
    obj.insert("bytes".into(), json!(r.stamp.size));
    obj.insert(
        "modified_unix".into(),
        json!(r.stamp.mtime_ns.div_euclid(1_000_000_000)),
    );
    obj.insert("format".into(), json!(r.format));
    obj.insert("distance".into(), json!(m.distance));
    obj.insert("exact".into(), json!(m.exact));
    Value::Object(obj)
}

/// The listing as JSON (the schema README.md documents): every group with its keeper and
/// copies, a copy no action would touch with the reason in `left_alone` (`held`: each copy's,
/// in order, from `cleanup::left_alone_each`).
pub fn listing_json(f: &Findings, held: &[Option<String>]) -> Value {
    let mut held = held.iter();
    let groups: Vec<Value> = f
        .groups
        .iter()
        .map(|g| {
            let copies: Vec<Value> = g
                .copies()
                .iter()
                .map(|m| {
                    let mut copy = member_json(m);
                    if let Some(why) = held.next().and_then(Option::as_ref) {
                        copy["left_alone"] = json!(why);
                    }
                    copy
                })
                .collect();
            json!({"keep": member_json(g.keeper()), "copies": copies})
        })
        .collect();
    json!({
        "test": f.test,
        "images": f.images,
        "without_signature": f.unsigned,
        "gone": f.gone,
        "outdated_signatures": f.outdated,
        "groups": groups,
        "copies": f.groups.iter().map(|g| g.copies().len()).sum::<usize>(),
        "reclaimable_bytes": reclaimable(&f.groups),
    })
}

/// Bytes an action would free (keepers stay): only copies it would act on count, so not one
/// every action leaves alone (a symbolic link, a file outside its indexed folder, a read-only
/// file or folder, a file with other names (hard links), any copy of a keeper that is a link or
/// outside its folder); and a copy that is the same file as its keeper, or as a copy already
/// counted (seen through a linked folder), frees nothing.
pub fn reclaimable(groups: &[Group]) -> u64 {
    reclaimable_each(groups).iter().sum()
}

/// The bytes acting on each copy would free, group by group and copy by copy in order (what
/// `reclaimable` adds up).
pub(crate) fn reclaimable_each(groups: &[Group]) -> Vec<u64> {
    use crate::cleanup::{actionable, file_id};
    let mut each = Vec::new();
    let mut left_alone = crate::cleanup::left_alone_each(groups).into_iter();
    for g in groups {
        let keeper = &g.keeper().record;
        let keeper_actionable = actionable(&keeper.path, &keeper.root);
        let mut seen: std::collections::HashSet<(u64, u64)> =
            file_id(&keeper.path).into_iter().collect();
        for m in g.copies() {
            let r = &m.record;
            let held = left_alone.next().flatten().is_some();
            let frees = keeper_actionable
                && !held
                && actionable(&r.path, &r.root)
                && file_id(&r.path).is_none_or(|id| seen.insert(id));
            each.push(if frees { r.stamp.size } else { 0 });
        }
    }
    each
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::FileStamp;

    /// The hint for a pattern matching no copy never offers the pattern given, and offers a
    /// relative one under `**/`.
    #[test]
    fn a_pattern_hint_does_not_suggest_the_pattern_given() {
        let given = pattern_hint("match:**/originals/**");
        assert!(!given.contains("e.g. match:**/originals/**"), "{given}");
        assert!(given.contains("absolute path"), "{given}");
        let relative = pattern_hint("match:a/originals/*");
        assert!(
            relative.contains("match:**/a/originals/* matches"),
            "{relative}"
        );
        assert!(pattern_hint("match:/x/*").contains("e.g. match:**/originals/**"));
    }

    /// A `--keep match:` pattern that is not a glob is named once, with the reason.
    #[test]
    fn a_bad_keep_pattern_is_named_once() {
        for (pattern, why) in [("[a", "unclosed"), ("[z-a]", "invalid range")] {
            let e = KeepRule::parse(&format!("match:{pattern}"))
                .err()
                .unwrap()
                .to_string();
            assert_eq!(e.matches(pattern).count(), 1, "{e}");
            assert!(e.contains(why), "{e}");
        }
    }

    fn record(id: i64, path: &str, pixels: (u32, u32), size: u64, mtime: i64) -> ImageRecord {
        ImageRecord {
            id,
            path: PathBuf::from(path),
            root: PathBuf::from("/r"),
            rel_path: PathBuf::from(path.trim_start_matches("/r/")),
            stamp: FileStamp {
                size,
                mtime_ns: mtime,
                ctime_ns: 0,
            },
            hash: [id as u8; 32],
            format: "jpeg".into(),
            width: pixels.0,
            height: pixels.1,
        }
    }

    /// The ids of each group's members, each group's and the groups in order.
    fn member_ids(groups: &[Group]) -> Vec<Vec<i64>> {
        let mut out: Vec<Vec<i64>> = groups
            .iter()
            .map(|g| {
                let mut ids: Vec<i64> = g.members.iter().map(|m| m.record.id).collect();
                ids.sort();
                ids
            })
            .collect();
        out.sort();
        out
    }

    fn unit(axis: usize) -> Vec<f32> {
        let mut v = vec![0.0; LEN];
        for w in 0..LEN / crate::features::dup::DIM {
            v[w * crate::features::dup::DIM + axis] = 1.0;
        }
        v
    }

    #[test]
    fn near_and_exact_copies_group_and_the_largest_leads() {
        let mut twin = record(4, "/r/d.jpg", (10, 10), 5, 1);
        twin.hash = [1; 32];
        let candidates = vec![
            Candidate {
                record: record(1, "/r/a.jpg", (100, 100), 10, 5),
                signature: unit(0),
            },
            Candidate {
                record: record(2, "/r/b.jpg", (200, 100), 10, 9),
                signature: unit(0),
            },
            Candidate {
                record: record(3, "/r/c.jpg", (300, 300), 10, 1),
                signature: unit(5),
            },
            Candidate {
                record: twin,
                signature: Vec::new(),
            },
        ];
        let groups = group(
            candidates.clone(),
            CopyTest::DEFAULT,
            &KeepRule::Best,
            &mut |_| None,
            None,
        );
        assert_eq!(groups.len(), 1);
        let paths: Vec<_> = groups[0].members.iter().map(|m| m.record.id).collect();
        assert_eq!(paths, vec![2, 1, 4]);
        assert!(!groups[0].members[2].exact && groups[0].members[1].distance < 1e-6);
        let oldest = group(
            candidates.clone(),
            CopyTest::DEFAULT,
            &KeepRule::Oldest,
            &mut |_| None,
            None,
        );
        assert_eq!(oldest[0].keeper().record.id, 4);
        let newest = group(
            candidates.clone(),
            CopyTest::DEFAULT,
            &KeepRule::Newest,
            &mut |_| None,
            None,
        );
        assert_eq!(newest[0].keeper().record.id, 2);
        // in any letter case, every letter
        let KeepRule::Matching(m) = KeepRule::parse("match:**/éTé/**").unwrap() else {
            panic!("a pattern")
        };
        assert!(m.is_match(Path::new("/km/Été/a.jpg")));
        assert!(!m.is_match(Path::new("/km/other/a.jpg")));
        let matching = KeepRule::parse("match:**/A.JPG").unwrap();
        assert_eq!(
            group(
                candidates,
                CopyTest::DEFAULT,
                &matching,
                &mut |_| None,
                None
            )[0]
            .keeper()
            .record
            .id,
            1
        );
    }

    #[test]
    fn best_takes_files_written_together_as_written_at_once() {
        let t = 1_700_000_000_000_000_000;
        let candidate = |id, path: &str, size, mtime| Candidate {
            record: record(id, path, (100, 100), size, mtime),
            signature: unit(0),
        };
        let keeper = |candidates: Vec<Candidate>| {
            group(
                candidates,
                CopyTest::DEFAULT,
                &KeepRule::Best,
                &mut |_| None,
                None,
            )[0]
            .keeper()
            .record
            .id
        };
        // a folder copied in name order: the smaller blurred copy a microsecond older
        let copied = vec![
            candidate(1, "/r/blur.jpg", 5, t),
            candidate(2, "/r/original.jpg", 20, t + 1_000),
        ];
        assert_eq!(keeper(copied.clone()), 2);
        // times within 2 s of the oldest are one era; a third file between two 3 s apart does
        // not join them
        let mut within = copied.clone();
        within.push(candidate(3, "/r/later.jpg", 10, t + 1_500_000_000));
        assert_eq!(keeper(within), 2);
        let spread = vec![
            candidate(1, "/r/orig.jpg", 5, t),
            candidate(2, "/r/mid.jpg", 1, t + 1_500_000_000),
            candidate(3, "/r/edit.jpg", 20, t + 3_000_000_000),
        ];
        assert_eq!(keeper(spread), 1);
        // written well before: older wins over larger
        let mut older = copied;
        older.push(candidate(3, "/r/old.jpg", 1, t - 10_000_000_000));
        assert_eq!(keeper(older), 3);
    }

    #[test]
    fn another_shot_passes_the_signatures_but_not_the_alignment() {
        use crate::features::dup::signature;
        use crate::test_support::shot;
        let original = shot(240, 180, 0.45, 0.5);
        let mut copy = image::imageops::crop_imm(&original, 10, 8, 216, 162).to_image();
        copy.iter_mut()
            .for_each(|c| *c = (f32::from(*c) * 0.8 + 30.0) as u8);
        let other = shot(240, 180, 0.5, 0.5);
        let pictures = [original, copy, other];
        let candidates: Vec<Candidate> = pictures
            .iter()
            .enumerate()
            .map(|(i, p)| Candidate {
                record: record(i as i64 + 1, &format!("/r/{i}.jpg"), p.dimensions(), 10, 1),
                signature: signature(&crate::features::luma_plane(p)),
            })
            .collect();
        let test = Similarity::Default.test();
        let m = compare(&candidates[0].signature, &candidates[2].signature);
        assert!(test.accepts(&m) && !CopyTest::SURE.accepts(&m), "{m:?}");
        // With thumbnails the other shot is left out; without them the signatures decide.
        let mut thumbnails =
            |r: &ImageRecord| Some(crate::thumbnail::encode(&pictures[r.id as usize - 1], None));
        let aligned = group(
            candidates.clone(),
            test,
            &KeepRule::Best,
            &mut thumbnails,
            None,
        );
        assert_eq!(member_ids(&aligned), vec![vec![1, 2]]);
        let signatures_only = group(candidates, test, &KeepRule::Best, &mut |_| None, None);
        assert_eq!(member_ids(&signatures_only), vec![vec![1, 2, 3]]);
    }

    #[test]
    fn pages_with_little_on_them_are_copies_only_when_their_marks_and_colours_match() {
        use crate::features::dup::signature;
        use image::{Rgb, RgbImage};
        let page = |marks: &[(u32, u32, u32, u32, [u8; 3])]| {
            RgbImage::from_fn(1200, 1600, |x, y| {
                let mark = marks
                    .iter()
                    .find(|(l, t, w, h, _)| (*l..l + w).contains(&x) && (*t..t + h).contains(&y));
                Rgb(mark.map_or([255, 255, 255], |m| m.4))
            })
        };
        // seven-segment page numbers between dashes at the foot of a page: "3" and "4"
        let digit = |segments: &[(u32, u32, u32, u32)]| {
            let ink = [20, 20, 20];
            let marks: Vec<_> = segments
                .iter()
                .map(|&(l, t, w, h)| (590 + l, 1500 + 2 * t, 2 * w, 2 * h, ink))
                .chain([(530, 1522, 28, 6, ink), (650, 1522, 28, 6, ink)])
                .collect();
            page(&marks)
        };
        let three = digit(&[
            (0, 0, 14, 3),
            (12, 0, 3, 24),
            (0, 11, 14, 3),
            (0, 22, 14, 3),
        ]);
        let four = digit(&[(0, 0, 3, 13), (12, 0, 3, 24), (0, 11, 14, 3)]);
        // "8" and "9" differ by one of seven segments
        let eight = digit(&[
            (0, 0, 14, 3),
            (0, 0, 3, 24),
            (12, 0, 3, 24),
            (0, 11, 14, 3),
            (0, 22, 14, 3),
        ]);
        let nine = digit(&[
            (0, 0, 14, 3),
            (0, 0, 3, 13),
            (12, 0, 3, 24),
            (0, 11, 14, 3),
            (0, 22, 14, 3),
        ]);
        let gradient = |top: [f32; 3], bottom: [f32; 3]| {
            RgbImage::from_fn(900, 600, |_, y| {
                let t = y as f32 / 599.0;
                Rgb(std::array::from_fn(|k| {
                    (top[k] * (1.0 - t) + bottom[k] * t) as u8
                }))
            })
        };
        let red = page(&[(150, 150, 40, 40, [220, 30, 30])]);
        // a thin square outline: its colour is too little of any block of the view
        let outline = |ink: [u8; 3]| {
            page(&[
                (500, 600, 200, 3, ink),
                (500, 797, 200, 3, ink),
                (500, 600, 3, 200, ink),
                (697, 600, 3, 200, ink),
            ])
        };
        let sky = gradient([40.0, 90.0, 200.0], [170.0, 210.0, 250.0]);
        let half = |p: &RgbImage| {
            let (w, h) = p.dimensions();
            image::imageops::resize(p, w / 2, h / 2, image::imageops::FilterType::Triangle)
        };
        let pictures = [
            red.clone(),
            page(&[(1010, 1410, 40, 40, [30, 30, 220])]),
            half(&image::imageops::rotate180(&red)),
            three.clone(),
            four,
            half(&three),
            sky.clone(),
            gradient([250.0, 120.0, 30.0], [120.0, 30.0, 80.0]),
            gradient([0.0, 0.0, 0.0], [255.0, 255.0, 255.0]),
            half(&sky),
            eight,
            nine,
            outline([200, 20, 20]),
            outline([20, 20, 200]),
        ];
        let files = tempfile::tempdir().unwrap();
        let candidates: Vec<Candidate> = pictures
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let path = files.path().join(format!("{i:02}.png"));
                p.save(&path).unwrap();
                let mut r = record(i as i64 + 1, path.to_str().unwrap(), p.dimensions(), 10, 1);
                r.hash = *blake3::hash(&std::fs::read(&path).unwrap()).as_bytes();
                Candidate {
                    record: r,
                    signature: signature(&crate::features::luma_plane(p)),
                }
            })
            .collect();
        let mut thumbnails =
            |r: &ImageRecord| Some(crate::thumbnail::encode(&pictures[r.id as usize - 1], None));
        for similarity in [Similarity::Strict, Similarity::Default, Similarity::Loose] {
            let groups = group(
                candidates.clone(),
                similarity.test(),
                &KeepRule::Best,
                &mut thumbnails,
                Some(&DecodeConfig::default()),
            );
            assert_eq!(
                member_ids(&groups),
                vec![vec![1, 3], vec![4, 6], vec![7, 10]],
                "{similarity:?}"
            );
        }
    }

    /// Flat images under 8 pixels a side have all-zero signatures whatever their colour: they
    /// grouped as copies of each other (a blue and a red 4x4 swatch, a white 1x1, a 3000x4 strip
    /// at d=2.000). Only their byte-identical copies are theirs; two files of the same small
    /// checker still group.
    #[test]
    fn flat_tiny_images_of_different_colours_are_not_copies() {
        use crate::features::dup::signature;
        use image::{Rgb, RgbImage};
        let flat = |w, h, c: [u8; 3]| RgbImage::from_pixel(w, h, Rgb(c));
        let checker = RgbImage::from_fn(4, 4, |x, y| Rgb([((x + y) % 2 * 200) as u8; 3]));
        let pictures = [
            flat(4, 4, [0, 0, 255]),
            flat(4, 4, [255, 0, 0]),
            flat(1, 1, [255, 255, 255]),
            flat(3000, 4, [255, 255, 255]),
            checker.clone(),
            checker,
        ];
        let candidates: Vec<Candidate> = pictures
            .iter()
            .enumerate()
            .map(|(i, p)| Candidate {
                record: record(i as i64 + 1, &format!("/r/{i}.png"), p.dimensions(), 10, 1),
                signature: signature(&crate::features::luma_plane(p)),
            })
            .collect();
        assert!(candidates[0].signature.iter().all(|&v| v == 0.0));
        for similarity in [Similarity::Strict, Similarity::Threshold(2.0)] {
            let groups = group(
                candidates.clone(),
                similarity.test(),
                &KeepRule::Best,
                &mut |_| None,
                None,
            );
            assert_eq!(member_ids(&groups), vec![vec![5, 6]], "{similarity:?}");
        }
    }

    /// Stripes and a bright square: nothing like [`shot`]'s scene.
    fn other_scene(w: u32, h: u32) -> image::RgbImage {
        image::RgbImage::from_fn(w, h, |x, y| {
            let v = if (60..140).contains(&x) && (40..120).contains(&y) {
                230.0
            } else {
                90.0 + 70.0 * ((x + 2 * y) as f32 * 0.09).sin()
            };
            image::Rgb([v as u8, (255.0 - v) as u8, (v * 0.5) as u8])
        })
    }

    #[test]
    fn a_chain_of_small_changes_never_groups_its_two_ends() {
        use crate::features::dup::signature;
        use crate::test_support::shot;
        // one scene fades into another a little from each picture to the next
        let (from, to) = (shot(240, 180, 0.3, 0.5), other_scene(240, 180));
        let candidates: Vec<Candidate> = (0..21)
            .map(|i| {
                let t = i as f32 / 20.0;
                let p = image::RgbImage::from_fn(240, 180, |x, y| {
                    let (a, b) = (from.get_pixel(x, y), to.get_pixel(x, y));
                    image::Rgb(std::array::from_fn(|c| {
                        (f32::from(a[c]) * (1.0 - t) + f32::from(b[c]) * t) as u8
                    }))
                });
                Candidate {
                    record: record(i + 1, &format!("/r/{i:02}.jpg"), (240, 180), 10, i),
                    signature: signature(&crate::features::luma_plane(&p)),
                }
            })
            .collect();
        let test = CopyTest::DEFAULT;
        let passes = |a: usize, b: usize| {
            test.accepts(&compare(&candidates[a].signature, &candidates[b].signature))
        };
        assert!((0..20).all(|i| passes(i, i + 1)), "neighbours are copies");
        assert!(!passes(0, 20), "the ends are not");
        let groups = group(
            candidates.clone(),
            test,
            &KeepRule::Best,
            &mut |_| None,
            None,
        );
        assert!(!groups.is_empty());
        for g in &groups {
            let ids: Vec<usize> = g
                .members
                .iter()
                .map(|m| (m.record.id - 1) as usize)
                .collect();
            assert!(
                !(ids.contains(&0) && ids.contains(&20)),
                "the two ends in one group: {ids:?}"
            );
            // one member that every other passes the test with
            assert!(
                ids.iter()
                    .any(|&c| ids.iter().all(|&i| i == c || passes(c, i))),
                "no centre in {ids:?}"
            );
        }
    }

    #[test]
    fn similarity_and_keep_rules_parse_or_explain() {
        assert_eq!(Similarity::parse("strict").unwrap().test().layout, 0.3);
        assert_eq!(Similarity::parse("0.5").unwrap().test().layout, 0.5);
        assert!(Similarity::parse("3").is_err());
        assert!(Similarity::parse("NaN").is_err());
        // checked before rounding to f32, which would take it to 2
        assert!(Similarity::parse("2.0000001").is_err());
        assert_eq!(Similarity::parse("2").unwrap().test().layout, 2.0);
        assert!(KeepRule::parse("largest").is_err());
        assert!(KeepRule::parse("match:[").is_err());
    }

    /// A picture for alignment is made from the file only while the file holds the content
    /// that was indexed, and exactly as indexing makes a thumbnail.
    #[test]
    fn a_file_gives_its_thumbnail_only_while_it_holds_the_indexed_content() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("a.png");
        image::RgbImage::from_fn(600, 300, |x, y| {
            image::Rgb([(x % 256) as u8, (y % 256) as u8, 7])
        })
        .save(&path)
        .unwrap();
        let bytes = std::fs::read(&path).unwrap();
        let mut r = record(1, path.to_str().unwrap(), (600, 300), bytes.len() as u64, 0);
        r.hash = *blake3::hash(&bytes).as_bytes();
        let cfg = DecodeConfig::default();
        let made = thumbnail_from_file(&r, &cfg).expect("unchanged file");
        assert_eq!(
            made,
            crate::thumbnail::from_bytes(&bytes, &path, &cfg).unwrap()
        );
        assert!(pictures_of(Some(&made), &r, Some(&cfg)).is_some());
        image::RgbImage::from_pixel(600, 300, image::Rgb([1, 2, 3]))
            .save(&path)
            .unwrap();
        assert!(
            thumbnail_from_file(&r, &cfg).is_none(),
            "changed since indexed"
        );
        std::fs::remove_file(&path).unwrap();
        assert!(thumbnail_from_file(&r, &cfg).is_none(), "gone");
    }
}
