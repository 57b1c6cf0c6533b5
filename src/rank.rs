//! The one ranker: an example's fused vector in, a ranked list of indexed images out.
//!
//! `query` and `eval` (and every later command that ranks) call [`rank`], so the figures eval
//! measures are those of the rankings users get. The steps, in order:
//!
//! 1. the example is put in the space searches rank in ([`Space::embed`]: its query view, and
//!    the graph's projection when the stored vectors are augmented);
//! 2. query expansion ([`crate::query_expansion`]) searches once, averages the first
//!    neighbours into the query (never the example's own indexed image) and searches again;
//! 3. the candidates' [`HEAD`] is reordered: exact duplicates of the example (distance to it
//!    below [`DUPLICATE_DISTANCE`]) first, then the candidate nearest to the example among the
//!    others and the first [`POOL_BEFORE_EXPANSION`] of the search before expansion (the
//!    `nearest_first` step); the rest keep the search's order.
//!
//! 4. when the example has a duplicate signature, the indexed images whose signature passes
//!    [`CopyTest::DEFAULT`] with it are edited copies of the example: they go first, right
//!    after exact duplicates, nearest to the example first by the distance users are shown
//!    (`rank_with_copies`). A space too large to
//!    compare every signature looks among the first [`COPY_POOL`] candidates of a plain
//!    search.
//!
//! The head has a fixed size, so a longer list starts with the shorter one (exactly so for
//! exact search; a graph search may find other candidates when asked for more).

use crate::error::Result;
use crate::features::dup::{CopyTest, LEN as SIGNATURE_LEN, Match, compare};
use crate::nearest_first;
use crate::query_expansion::QueryExpansion;

/// Where a search's candidates come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SearchMode {
    /// The HNSW graph.
    Hnsw,
    /// Every indexed vector.
    Exact,
}

/// Candidates at the head of a ranking that are reordered by their distance to the example:
/// the nearest-first pool and one more, for the example itself when it is indexed.
pub const HEAD: usize = nearest_first::POOL + 1;

/// Candidates of the search before query expansion that compete for first place with the
/// head's (`nearest_first`).
pub const POOL_BEFORE_EXPANSION: usize = nearest_first::POOL;

/// Candidates of a plain search checked for being edited copies of the example.
pub const COPY_POOL: usize = 100;

/// Below this distance to the example an indexed image is an exact duplicate of it.
pub const DUPLICATE_DISTANCE: f32 = 1e-4;

/// How to rank.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RankConfig {
    /// Where the candidates come from.
    pub mode: SearchMode,
    /// Query expansion (a second search from the query averaged with its first neighbours).
    pub qe: QueryExpansion,
    /// The head's candidate nearest to the example goes first.
    pub nearest_first: bool,
}

impl Default for RankConfig {
    fn default() -> Self {
        RankConfig {
            mode: SearchMode::Hnsw,
            qe: QueryExpansion::default(),
            nearest_first: true,
        }
    }
}

/// What a ranking searches: indexed vectors in one search space.
pub trait Space {
    /// The example's full vector as searches compare it.
    fn embed(&self, example: &[f32]) -> Result<Vec<f32>>;
    /// The `k` nearest indexed images to an embedded query, nearest first, with distances in
    /// the search space.
    fn search(&self, query: &[f32], k: usize, mode: SearchMode) -> Result<Vec<(i64, f32)>>;
    /// Search-space vectors of `ids`; ids without one are left out.
    fn vectors_of(&self, ids: &[i64]) -> Result<Vec<(i64, Vec<f32>)>>;
    /// The distance users are shown from the example's full vector to each of `ids`, in
    /// order (infinite for an id without a vector).
    fn example_distances(&self, example: &[f32], ids: &[i64]) -> Result<Vec<f32>>;
    /// Duplicate signatures of `ids`; ids without one are left out. A space without
    /// signatures ranks no edited copies first.
    fn signatures_of(&self, ids: &[i64]) -> Result<Vec<(i64, Vec<f32>)>> {
        let _ = ids;
        Ok(Vec::new())
    }
    /// Every indexed image whose signature passes `test` with `signature`, when the space can
    /// afford to compare them all; `None` leaves the search to the first [`COPY_POOL`]
    /// candidates of a plain search.
    fn all_copies(&self, signature: &[f32], test: &CopyTest) -> Result<Option<Vec<(i64, Match)>>> {
        let _ = (signature, test);
        Ok(None)
    }
}

/// One ranked image.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ranked {
    /// The image's id in the index.
    pub id: i64,
    /// Distance to the example, as [`Space::example_distances`] gives it: known for the head,
    /// filled in further down by [`describe`].
    pub distance: Option<f32>,
    /// An exact duplicate or an edited copy of the example, ranked ahead of the rest.
    pub copy: bool,
}

/// Ranks the indexed images for an example's full vector and returns the first `k`. `own` is
/// the example's own indexed image, if it is one: it never expands the query.
pub fn rank<S: Space + ?Sized>(
    space: &S,
    example: &[f32],
    own: Option<i64>,
    k: usize,
    cfg: &RankConfig,
) -> Result<Vec<Ranked>> {
    Ok(rank_and_pool(space, example, own, k, cfg, 0)?.0)
}

/// [`rank`], and the first `pool` candidates of a plain search for the example: the search
/// query expansion starts from, or without expansion the one search, asked for at least
/// `pool` candidates.
fn rank_and_pool<S: Space + ?Sized>(
    space: &S,
    example: &[f32],
    own: Option<i64>,
    k: usize,
    cfg: &RankConfig,
    pool: usize,
) -> Result<(Vec<Ranked>, Vec<i64>)> {
    let mut query = space.embed(example)?;
    let mut plain: Option<Vec<i64>> = None;
    if cfg.qe.enabled() {
        let found: Vec<i64> = space
            .search(
                &query,
                (cfg.qe.n + 1).max(pool).max(POOL_BEFORE_EXPANSION),
                cfg.mode,
            )?
            .into_iter()
            .map(|h| h.0)
            .collect();
        let first: Vec<i64> = found
            .iter()
            .copied()
            .filter(|&id| Some(id) != own)
            .take(cfg.qe.n)
            .collect();
        plain = Some(found);
        let mut neighbours = space.vectors_of(&first)?;
        neighbours.sort_by_key(|(id, _)| first.iter().position(|f| f == id));
        query = cfg
            .qe
            .expand(&query, neighbours.iter().map(|p| p.1.as_slice()));
    }
    // Without expansion this search is the plain one: it also fetches the pool.
    let wanted = if plain.is_none() {
        k.max(HEAD).max(pool)
    } else {
        k.max(HEAD)
    };
    let candidates = space.search(&query, wanted, cfg.mode)?;
    if plain.is_none() && pool > 0 {
        plain = Some(candidates.iter().map(|h| h.0).collect());
    }
    let head_len = candidates.len().min(HEAD);
    let head_ids: Vec<i64> = candidates[..head_len].iter().map(|h| h.0).collect();
    let distances = space.example_distances(example, &head_ids)?;
    let mut head: Vec<Ranked> = head_ids
        .iter()
        .zip(distances)
        .map(|(&id, d)| Ranked {
            id,
            distance: Some(d),
            copy: d < DUPLICATE_DISTANCE,
        })
        .collect();
    // Expansion can carry the image nearest to the example out of the head: the first
    // candidates of the search before it compete for first place too.
    if cfg.nearest_first
        && cfg.qe.enabled()
        && let Some(found) = &plain
    {
        let outside: Vec<i64> = found
            .iter()
            .take(POOL_BEFORE_EXPANSION)
            .copied()
            .filter(|id| !head_ids.contains(id))
            .collect();
        let nearest_in_head = head
            .iter()
            .filter_map(|r| r.distance)
            .fold(f32::INFINITY, f32::min);
        let nearest_outside = outside
            .iter()
            .copied()
            .zip(space.example_distances(example, &outside)?)
            .filter(|&(_, d)| d < nearest_in_head)
            .min_by(|a, b| a.1.total_cmp(&b.1));
        if let Some((id, d)) = nearest_outside {
            head.insert(
                0,
                Ranked {
                    id,
                    distance: Some(d),
                    copy: d < DUPLICATE_DISTANCE,
                },
            );
        }
    }
    let is_duplicate = |r: &Ranked| r.copy;
    // the example's own image first among its exact duplicates
    head.sort_by_key(|r| (!is_duplicate(r), Some(r.id) != own));
    let duplicates = head.iter().take_while(|r| is_duplicate(r)).count();
    if cfg.nearest_first {
        nearest_first::promote(&mut head[duplicates..], |r| {
            r.distance.unwrap_or(f32::INFINITY)
        });
    }
    let tail: Vec<Ranked> = candidates[head_len..]
        .iter()
        .filter(|&&(id, _)| !head.iter().any(|r| r.id == id))
        .map(|&(id, _)| Ranked {
            id,
            distance: None,
            copy: false,
        })
        .collect();
    let mut ranking = head;
    ranking.extend(tail);
    ranking.truncate(k);
    let mut pool_ids = plain.unwrap_or_default();
    pool_ids.truncate(pool);
    Ok((ranking, pool_ids))
}

/// [`rank`], then the example's edited copies first: among the first [`COPY_POOL`] candidates
/// of a plain search, those whose duplicate signature passes [`CopyTest::DEFAULT`] with
/// `signature`, nearest to the example first ([`Space::example_distances`]), after the exact
/// duplicates. An empty `signature` (an example without one) ranks as [`rank`] does.
pub(crate) fn rank_with_copies<S: Space + ?Sized>(
    space: &S,
    example: &[f32],
    signature: &[f32],
    own: Option<i64>,
    k: usize,
    cfg: &RankConfig,
) -> Result<Vec<Ranked>> {
    if signature.len() != SIGNATURE_LEN || k == 0 {
        return rank(space, example, own, k, cfg);
    }
    let test = CopyTest::DEFAULT;
    let all = space.all_copies(signature, &test)?;
    let pool_len = if all.is_some() { 0 } else { COPY_POOL };
    let (ranking, pool) = rank_and_pool(space, example, own, k, cfg, pool_len)?;
    let matches = match all {
        Some(all) => all,
        None => space
            .signatures_of(&pool)?
            .into_iter()
            .map(|(id, s)| (id, compare(signature, &s)))
            .filter(|(_, m)| test.accepts(m))
            .collect(),
    };
    let copy_ids: Vec<i64> = matches
        .into_iter()
        .map(|(id, _)| id)
        .filter(|&id| Some(id) != own)
        .collect();
    if copy_ids.is_empty() {
        return Ok(ranking);
    }
    // Nearest copy first by the distance shown: the layout distance of signatures sees no
    // colour, and would put a greyscale copy above the colour original.
    let distances = space.example_distances(example, &copy_ids)?;
    let mut copies: Vec<(i64, f32)> = copy_ids.into_iter().zip(distances).collect();
    copies.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
    let exact = ranking.iter().take_while(|r| r.copy).count();
    let mut out: Vec<Ranked> = ranking[..exact].to_vec();
    for (id, d) in copies {
        if !out.iter().any(|r| r.id == id) {
            out.push(Ranked {
                id,
                distance: Some(d),
                copy: true,
            });
        }
    }
    for r in &ranking[exact..] {
        if !out.iter().any(|o| o.id == r.id) {
            out.push(*r);
        }
    }
    out.truncate(k);
    Ok(out)
}

/// Puts a ranking some of whose entries were left out (images whose files are gone or changed
/// since indexing) in the order it has without them: the exact duplicates and edited copies
/// of the example (`copy`) stay first as ranked, nearest first; among the rest the one nearest
/// to the example goes first again, as the nearest-first step would pick it (the entry it
/// moved first may be one left out). A copy never moves below the rest.
pub(crate) fn reorder_after_leaving_out<T>(
    ranking: &mut [T],
    copy: impl Fn(&T) -> bool,
    distance: impl Fn(&T) -> f32,
) {
    let copies = ranking.iter().take_while(|r| copy(r)).count();
    nearest_first::promote(&mut ranking[copies..], distance);
}

/// Fills in the distance to the example wherever `ranking` lacks it.
pub fn describe<S: Space + ?Sized>(
    space: &S,
    example: &[f32],
    ranking: &mut [Ranked],
) -> Result<()> {
    let missing: Vec<i64> = ranking
        .iter()
        .filter(|r| r.distance.is_none())
        .map(|r| r.id)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let mut found = space.example_distances(example, &missing)?.into_iter();
    for r in ranking.iter_mut().filter(|r| r.distance.is_none()) {
        r.distance = found.next();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ann::{exact_search, lookup, squared_l2};

    /// Indexed points searched in one space and shown by distance in another (as an augmented
    /// graph searches its own vectors and users see distances on full ones).
    struct Spaces {
        search: Vec<(i64, Vec<f32>)>,
        full: Vec<(i64, Vec<f32>)>,
    }

    impl Space for Spaces {
        fn embed(&self, example: &[f32]) -> Result<Vec<f32>> {
            Ok(example.to_vec())
        }
        fn search(&self, query: &[f32], k: usize, _: SearchMode) -> Result<Vec<(i64, f32)>> {
            Ok(exact_search(&self.search, query, k))
        }
        fn vectors_of(&self, ids: &[i64]) -> Result<Vec<(i64, Vec<f32>)>> {
            Ok(ids
                .iter()
                .filter_map(|&id| lookup(&self.search, id).map(|v| (id, v.to_vec())))
                .collect())
        }
        fn example_distances(&self, example: &[f32], ids: &[i64]) -> Result<Vec<f32>> {
            Ok(ids
                .iter()
                .map(|&id| {
                    lookup(&self.full, id).map_or(f32::INFINITY, |v| squared_l2(example, v).sqrt())
                })
                .collect())
        }
    }

    /// `n` points on a line, the same in both spaces.
    fn line(n: i64) -> Spaces {
        let points: Vec<(i64, Vec<f32>)> = (0..n).map(|i| (i, vec![i as f32, 1.0])).collect();
        Spaces {
            search: points.clone(),
            full: points,
        }
    }

    fn ids(r: &[Ranked]) -> Vec<i64> {
        r.iter().map(|r| r.id).collect()
    }

    const PLAIN: RankConfig = RankConfig {
        mode: SearchMode::Exact,
        qe: QueryExpansion { n: 0, alpha: 1.0 },
        nearest_first: true,
    };

    #[test]
    fn in_one_space_without_expansion_the_ranking_is_the_search_order() {
        let space = line(30);
        let r = rank(&space, &[4.2, 1.0], None, 6, &PLAIN).unwrap();
        assert_eq!(ids(&r), vec![4, 5, 3, 6, 2, 7]);
        assert!(
            r.iter().all(|r| r.distance.is_some()),
            "the head has distances"
        );
    }

    #[test]
    fn a_longer_list_starts_with_the_shorter_one_and_describe_fills_the_tail() {
        let space = line(40);
        let cfg = RankConfig {
            qe: QueryExpansion { n: 2, alpha: 1.0 },
            ..PLAIN
        };
        let short = rank(&space, &[10.4, 1.0], Some(10), 5, &cfg).unwrap();
        let mut long = rank(&space, &[10.4, 1.0], Some(10), 30, &cfg).unwrap();
        assert_eq!(ids(&long[..5]), ids(&short));
        assert_eq!(long.len(), 30);
        assert!(long[HEAD..].iter().all(|r| r.distance.is_none()));
        describe(&space, &[10.4, 1.0], &mut long).unwrap();
        assert!(long.iter().all(|r| r.distance.is_some()));
        assert_eq!(rank(&space, &[10.4, 1.0], None, 0, &cfg).unwrap(), vec![]);
    }

    /// Search order 0, 1, 2, 3, ...; in the full space 3 and 20..25 are exact duplicates of
    /// the example and 2 is nearer to it than the rest.
    fn reordered() -> Spaces {
        let mut search: Vec<(i64, Vec<f32>)> = (0..20).map(|i| (i, vec![i as f32, 0.0])).collect();
        let mut full = search.clone();
        full[3].1 = vec![50.0, 50.0];
        full[2].1 = vec![50.0, 49.0];
        search.extend((20..25).map(|i| (i, vec![100.0 + i as f32, 0.0])));
        full.extend((20..25).map(|i| (i, vec![50.0, 50.0])));
        Spaces { search, full }
    }

    #[test]
    fn exact_duplicates_come_first_then_the_nearest_of_the_rest() {
        let space = reordered();
        let example = [50.0, 50.0];
        let cfg = RankConfig {
            nearest_first: false,
            ..PLAIN
        };
        let origin = Shifted(&space);
        let r = rank(&origin, &example, None, 6, &cfg).unwrap();
        assert_eq!(
            ids(&r),
            vec![3, 0, 1, 2, 4, 5],
            "duplicate first, the rest in order"
        );
        let r = rank(&origin, &example, None, 6, &PLAIN).unwrap();
        assert_eq!(
            ids(&r),
            vec![3, 2, 0, 1, 4, 5],
            "then the nearest of the rest"
        );
        // Duplicates outside the head are not looked for.
        assert!(!ids(&rank(&origin, &example, None, 25, &PLAIN).unwrap()[..HEAD]).contains(&20));
    }

    /// Expansion averages the query with a cluster beside the example and carries the image
    /// nearest to the example out of the head: it still goes first, once.
    #[test]
    fn the_nearest_image_goes_first_when_expansion_carries_it_out_of_the_head() {
        let mut points: Vec<(i64, Vec<f32>)> = vec![(0, vec![1.0, 0.3, 0.0])];
        points.extend((1..=20).map(|i| (i, vec![1.0, 0.0, 0.32 + 0.001 * i as f32])));
        let space = Spaces {
            search: points.clone(),
            full: points,
        };
        let cfg = RankConfig {
            qe: QueryExpansion { n: 3, alpha: 1.0 },
            ..PLAIN
        };
        let example = [1.0, 0.0, 0.0];
        let without = RankConfig {
            nearest_first: false,
            ..cfg
        };
        let expanded = rank(&space, &example, None, 21, &without).unwrap();
        assert!(
            !ids(&expanded[..HEAD]).contains(&0),
            "expansion leaves it out of the head: {:?}",
            ids(&expanded)
        );
        let short = rank(&space, &example, None, 5, &cfg).unwrap();
        assert_eq!(short[0].id, 0, "{:?}", ids(&short));
        let long = rank(&space, &example, None, 21, &cfg).unwrap();
        assert_eq!(ids(&long[..5]), ids(&short));
        let mut once = ids(&long);
        once.sort_unstable();
        once.dedup();
        assert_eq!(once.len(), 21, "every image once: {:?}", ids(&long));
    }

    /// A space that searches from the origin whatever the example.
    struct Shifted<'a>(&'a Spaces);

    impl Space for Shifted<'_> {
        fn embed(&self, _: &[f32]) -> Result<Vec<f32>> {
            Ok(vec![0.0, 0.0])
        }
        fn search(&self, query: &[f32], k: usize, mode: SearchMode) -> Result<Vec<(i64, f32)>> {
            self.0.search(query, k, mode)
        }
        fn vectors_of(&self, ids: &[i64]) -> Result<Vec<(i64, Vec<f32>)>> {
            self.0.vectors_of(ids)
        }
        fn example_distances(&self, example: &[f32], ids: &[i64]) -> Result<Vec<f32>> {
            self.0.example_distances(example, ids)
        }
    }

    /// Points on a line with duplicate signatures: `copy` holds the same signature as the
    /// example, every other point a random one.
    struct Signed {
        line: Spaces,
        signatures: Vec<(i64, Vec<f32>)>,
    }

    impl Space for Signed {
        fn embed(&self, example: &[f32]) -> Result<Vec<f32>> {
            self.line.embed(example)
        }
        fn search(&self, query: &[f32], k: usize, mode: SearchMode) -> Result<Vec<(i64, f32)>> {
            self.line.search(query, k, mode)
        }
        fn vectors_of(&self, ids: &[i64]) -> Result<Vec<(i64, Vec<f32>)>> {
            self.line.vectors_of(ids)
        }
        fn example_distances(&self, example: &[f32], ids: &[i64]) -> Result<Vec<f32>> {
            self.line.example_distances(example, ids)
        }
        fn signatures_of(&self, ids: &[i64]) -> Result<Vec<(i64, Vec<f32>)>> {
            Ok(self
                .signatures
                .iter()
                .filter(|(id, _)| ids.contains(id))
                .cloned()
                .collect())
        }
    }

    fn random_signature(rng: &mut crate::rng::SplitMix64) -> Vec<f32> {
        (0..SIGNATURE_LEN)
            .map(|_| rng.uniform() as f32 - 0.5)
            .collect()
    }

    #[test]
    fn an_edited_copy_in_the_plain_search_pool_comes_first_with_and_without_expansion() {
        let mut rng = crate::rng::SplitMix64::new(5);
        let example_signature = random_signature(&mut rng);
        let n = 300;
        for copy in [40, COPY_POOL as i64 - 1, COPY_POOL as i64 + 20] {
            let signatures = (0..n)
                .map(|id| {
                    let s = if id == copy {
                        example_signature.clone()
                    } else {
                        random_signature(&mut rng)
                    };
                    (id, s)
                })
                .collect();
            let space = Signed {
                line: line(n),
                signatures,
            };
            for qe in [0, 2] {
                let cfg = RankConfig {
                    qe: QueryExpansion { n: qe, alpha: 1.0 },
                    ..PLAIN
                };
                let r = rank_with_copies(&space, &[0.0, 1.0], &example_signature, None, 10, &cfg)
                    .unwrap();
                let found = ids(&r).contains(&copy);
                assert_eq!(
                    found,
                    copy < COPY_POOL as i64,
                    "copy at {copy}, qe {qe}: {:?}",
                    ids(&r)
                );
                if found {
                    assert_eq!(r[0].id, 0, "the exact duplicate first");
                    assert_eq!(r[1].id, copy, "then the copy");
                }
            }
        }
    }

    /// Points on a line whose edited copies of any example are given with their layout
    /// distances, as a collection small enough to compare every signature gives them.
    struct Copies {
        line: Spaces,
        layouts: Vec<(i64, f32)>,
    }

    impl Space for Copies {
        fn embed(&self, example: &[f32]) -> Result<Vec<f32>> {
            self.line.embed(example)
        }
        fn search(&self, query: &[f32], k: usize, mode: SearchMode) -> Result<Vec<(i64, f32)>> {
            self.line.search(query, k, mode)
        }
        fn vectors_of(&self, ids: &[i64]) -> Result<Vec<(i64, Vec<f32>)>> {
            self.line.vectors_of(ids)
        }
        fn example_distances(&self, example: &[f32], ids: &[i64]) -> Result<Vec<f32>> {
            self.line.example_distances(example, ids)
        }
        fn all_copies(&self, _: &[f32], _: &CopyTest) -> Result<Option<Vec<(i64, Match)>>> {
            Ok(Some(
                self.layouts
                    .iter()
                    .map(|&(id, layout)| {
                        let m = Match {
                            layout,
                            ..Match::NONE
                        };
                        (id, m)
                    })
                    .collect(),
            ))
        }
    }

    #[test]
    fn copies_rank_nearest_to_the_example_first_whatever_their_layout_distance() {
        // 9 lines up with the example's layout exactly (as a greyscale copy does) but lies far
        // from it; 3 lies near it with a looser layout (as the colour original under a
        // recompressed example); 0 is an exact duplicate.
        let space = Copies {
            line: line(30),
            layouts: vec![(9, 0.0), (3, 0.2), (0, 0.0)],
        };
        for qe in [0, 2] {
            let cfg = RankConfig {
                qe: QueryExpansion { n: qe, alpha: 1.0 },
                ..PLAIN
            };
            let sig = vec![0.0; SIGNATURE_LEN];
            let r = rank_with_copies(&space, &[0.0, 1.0], &sig, None, 5, &cfg).unwrap();
            assert_eq!(ids(&r), vec![0, 3, 9, 1, 2], "qe {qe}");
            let shown: Vec<f32> = r[..3].iter().map(|r| r.distance.unwrap()).collect();
            assert_eq!(shown, vec![0.0, 3.0, 9.0], "qe {qe}");
        }
    }

    /// A ranking with an image left out (its file gone or changed since indexing) is the
    /// ranking of the space without that image: the copies stay first, nearest first, and a
    /// nearer image that is no copy stays below them.
    #[test]
    fn leaving_out_a_stale_image_keeps_the_copies_first() {
        // from the example at -0.5, each point i lies at i + 0.5; 3 and 9 are edited copies
        let copies = |without: Option<i64>| {
            let mut line = line(30);
            line.search.retain(|p| Some(p.0) != without);
            line.full.retain(|p| Some(p.0) != without);
            let mut layouts = vec![(9, 0.0), (3, 0.2)];
            layouts.retain(|l| Some(l.0) != without);
            Copies { line, layouts }
        };
        let example = [-0.5, 1.0];
        let sig = vec![0.0; SIGNATURE_LEN];
        let full = rank_with_copies(&copies(None), &example, &sig, None, 8, &PLAIN).unwrap();
        assert_eq!(ids(&full), vec![3, 9, 0, 1, 2, 4, 5, 6]);
        for stale in [3, 9, 0, 1] {
            let mut left = full.clone();
            left.retain(|r| r.id != stale);
            reorder_after_leaving_out(&mut left, |r| r.copy, |r| r.distance.unwrap());
            let without =
                rank_with_copies(&copies(Some(stale)), &example, &sig, None, 7, &PLAIN).unwrap();
            assert_eq!(ids(&left), ids(&without), "{stale} left out");
        }
    }

    #[test]
    fn the_own_image_never_expands_the_query() {
        // Own image far from the others: expanding with it would pull the query to it.
        let points = vec![
            (0, vec![0.0, 1.0]),
            (1, vec![1.0, 1.0]),
            (2, vec![1.1, 1.0]),
            (3, vec![-1.05, 1.0]),
        ];
        let space = Spaces {
            search: points.clone(),
            full: points,
        };
        let cfg = RankConfig {
            qe: QueryExpansion { n: 1, alpha: 1.0 },
            nearest_first: false,
            ..PLAIN
        };
        // Expanded with 1, the query moves right: 2 before 3 (expanded with its own image, 3 first).
        let r = rank(&space, &[0.0, 1.0], Some(0), 4, &cfg).unwrap();
        let pos = |id| ids(&r).iter().position(|&x| x == id).unwrap();
        assert!(pos(2) < pos(3), "{:?}", ids(&r));
    }
}
