//! Near pairs without comparing every pair: a k-d tree over the signatures' layout blocks finds
//! each image's partners within a layout limit.
//!
//! Two images can pass the copy test only when the whole picture of one, in some pose, lies
//! within the layout limit of some window of the other ([`crate::features::dup::compare`]). So
//! every window of every image is a point, and each image asks for the points within the limit
//! of its whole picture in each of the eight poses. The tree splits on the blocks' first
//! principal directions, where distances never exceed the full ones; the lengths of what those
//! leave out of two blocks differ by no more than the rest of their distance, which screens
//! the points of a leaf further, and the full block distance confirms each point before the
//! caller runs the copy test.
//!
//! The layout blocks spread over about ten effective dimensions and the default limit is a
//! third of their typical distance, so an exhaustive search looks at about one point in six:
//! its cost grows with the square of the collection. The search therefore visits the tree's
//! cells nearest first and stops after [`LEAF_BUDGET`] leaves: a partner is missed only when
//! that many leaves' worth of windows lie nearer to the query than its cell. Edited copies lie
//! far nearer to each other than the limit, so they come first; on the planted benchmark the
//! budgeted search finds exactly the pairs an exhaustive one finds, alone and among 100,000
//! other images (BENCHMARKS.md, "Duplicates").

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use crate::features::dup::{BLOCK, WINDOWS, block_poses, layout_block};
use crate::pca::Projection;
use crate::vector::squared_l2;

/// Principal directions the tree splits on.
const TREE_DIMS: usize = 16;
/// Most points in a leaf.
const LEAF: usize = 16;
/// Added to the limit against rounding; the copy test decides after.
const SLACK: f32 = 1e-3;
/// Most leaves one posed query scans, nearest cells first (512 windows).
const LEAF_BUDGET: usize = 32;
/// Most partners a budgeted search gives one signature, nearest first: a limit far above the
/// copy tests' would otherwise pair nearly every window scanned.
pub(crate) const MOST_PARTNERS: usize = 64;

type Coords = [f32; TREE_DIMS];

enum Node {
    Leaf {
        start: usize,
        end: usize,
    },
    Split {
        dim: usize,
        at: f32,
        low: usize,
        high: usize,
    },
}

/// The windows of a set of signatures, ready to be asked for near pairs.
pub(crate) struct NearPairs<'a> {
    signatures: &'a [&'a [f32]],
    projection: Option<Projection>,
    /// Tree coordinates of the points, in tree order.
    coords: Vec<Coords>,
    /// Lengths of what the tree coordinates leave out of each point's block, in tree order:
    /// their difference bounds the rest of a distance from below.
    residuals: Vec<f32>,
    /// `(signature, window)` of each point, in tree order.
    points: Vec<(u32, u8)>,
    nodes: Vec<Node>,
    root: usize,
    /// Most leaves one posed query scans.
    budget: usize,
}

impl<'a> NearPairs<'a> {
    /// Indexes every window of `signatures` (each a full duplicate signature; others have no
    /// windows and no partners).
    pub fn new(signatures: &'a [&'a [f32]]) -> NearPairs<'a> {
        Self::with_budget(signatures, LEAF_BUDGET)
    }

    /// As [`NearPairs::new`], scanning at most `budget` leaves per posed query (`usize::MAX`:
    /// an exhaustive search).
    fn with_budget(signatures: &'a [&'a [f32]], budget: usize) -> NearPairs<'a> {
        let wholes: Vec<[f32; BLOCK]> = signatures
            .iter()
            .filter_map(|s| layout_block(s, 0))
            .collect();
        let refs: Vec<&[f32]> = wholes.iter().map(|b| b.as_slice()).collect();
        // Too few or identical blocks have no principal directions: their first
        // coordinates are a projection too.
        let projection = Projection::fit(&refs, TREE_DIMS)
            .unwrap_or_else(|_| unreachable!("the blocks are all of one length"));
        let mut coords = Vec::new();
        let mut residuals = Vec::new();
        let mut points = Vec::new();
        for (i, s) in signatures.iter().enumerate() {
            for w in 0..WINDOWS {
                if let Some(block) = layout_block(s, w) {
                    let (c, r) = tree_point(projection.as_ref(), &block);
                    coords.push(c);
                    residuals.push(r);
                    points.push((i as u32, w as u8));
                }
            }
        }
        let mut order: Vec<usize> = (0..coords.len()).collect();
        let mut nodes = Vec::new();
        let root = build(&coords, &mut order, 0, &mut nodes);
        NearPairs {
            signatures,
            projection,
            coords: order.iter().map(|&p| coords[p]).collect(),
            residuals: order.iter().map(|&p| residuals[p]).collect(),
            points: order.iter().map(|&p| points[p]).collect(),
            nodes,
            root,
            budget,
        }
    }

    /// Every signature with windows (by position), in the tree's order of their whole
    /// pictures: neighbours in it search much the same cells, so asking for their partners in
    /// this order keeps those cells in the processor's cache.
    pub fn tree_order(&self) -> Vec<usize> {
        self.points
            .iter()
            .filter(|&&(_, w)| w == 0)
            .map(|&(i, _)| i as usize)
            .collect()
    }

    /// The signatures (by position) other than `i` that have a window within `limit` of the
    /// whole picture of `i` in some pose, among the windows in the leaves searched; with a
    /// budget, the [`MOST_PARTNERS`] nearest of them only; sorted. Without a budget, the pairs
    /// over every `i` include every pair whose layout distance is within `limit`.
    pub(crate) fn partners(&self, i: usize, limit: f32) -> Vec<usize> {
        let Some(whole) = self.signatures.get(i).and_then(|s| layout_block(s, 0)) else {
            return Vec::new();
        };
        let reach = limit.max(0.0) + SLACK;
        let reach2 = reach * reach;
        let mut found: Vec<(f32, usize)> = Vec::new();
        for posed in block_poses(&whole) {
            let query = tree_point(self.projection.as_ref(), &posed);
            self.within(&query, reach2, &mut |p| {
                let (j, w) = self.points[p];
                let j = j as usize;
                if j != i
                    && let Some(block) = layout_block(self.signatures[j], usize::from(w))
                {
                    let d2 = squared_l2(&posed, &block);
                    if d2 <= reach2 {
                        found.push((d2, j));
                    }
                }
            });
        }
        if self.budget != usize::MAX && found.len() > MOST_PARTNERS {
            // Nearest first, each signature once, then the nearest few.
            found.sort_unstable_by(|a, b| a.0.total_cmp(&b.0));
            let mut seen = std::collections::HashSet::new();
            found.retain(|&(_, j)| seen.insert(j));
            found.truncate(MOST_PARTNERS);
        }
        let mut partners: Vec<usize> = found.into_iter().map(|(_, j)| j).collect();
        partners.sort_unstable();
        partners.dedup();
        partners
    }

    /// Calls `hit` with the points whose tree coordinates and residual length (`query.1`)
    /// lie within `reach2` (squared) of `query`, among those in the `budget` leaves whose
    /// cells lie nearest to it. A pending cell carries the query's distance to it along each split dimension, and `cell`
    /// their squared sum: a lower bound of the distance to any point in it.
    fn within(&self, query: &(Coords, f32), reach2: f32, hit: &mut impl FnMut(usize)) {
        let (query, residual) = (&query.0, query.1);
        let mut pending = BinaryHeap::new();
        pending.push(Pending {
            cell: 0.0,
            node: self.root,
            offsets: [0.0; TREE_DIMS],
        });
        let mut leaves = 0;
        while let Some(Pending {
            cell,
            mut node,
            offsets,
        }) = pending.pop()
        {
            if cell > reach2 || leaves >= self.budget {
                break;
            }
            // Down to the leaf on the query's side, leaving the far sides pending.
            loop {
                match self.nodes[node] {
                    Node::Leaf { start, end } => {
                        leaves += 1;
                        for p in start..end {
                            let d2 = squared_l2(query, &self.coords[p]);
                            let rest = residual - self.residuals[p];
                            if d2 + rest * rest <= reach2 {
                                hit(p);
                            }
                        }
                        break;
                    }
                    Node::Split { dim, at, low, high } => {
                        let diff = query[dim] - at;
                        let (near, far) = if diff <= 0.0 {
                            (low, high)
                        } else {
                            (high, low)
                        };
                        let old = offsets[dim];
                        let far_cell = cell - old * old + diff * diff;
                        if far_cell <= reach2 {
                            let mut far_offsets = offsets;
                            far_offsets[dim] = diff;
                            pending.push(Pending {
                                cell: far_cell,
                                node: far,
                                offsets: far_offsets,
                            });
                        }
                        node = near;
                    }
                }
            }
        }
    }
}

/// A cell waiting to be searched, nearest first.
struct Pending {
    cell: f32,
    node: usize,
    offsets: Coords,
}

impl PartialEq for Pending {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Pending {}

impl PartialOrd for Pending {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Pending {
    /// Reversed, so that the heap yields the nearest cell first.
    fn cmp(&self, other: &Self) -> Ordering {
        other
            .cell
            .total_cmp(&self.cell)
            .then(other.node.cmp(&self.node))
    }
}

/// Builds the subtree over `order[..]` (indices into `coords`), splitting at the median of the
/// dimension that spreads most; returns its node.
fn build(coords: &[Coords], order: &mut [usize], start: usize, nodes: &mut Vec<Node>) -> usize {
    let len = order.len();
    if len <= LEAF {
        nodes.push(Node::Leaf {
            start,
            end: start + len,
        });
        return nodes.len() - 1;
    }
    let mut low = [f32::INFINITY; TREE_DIMS];
    let mut high = [f32::NEG_INFINITY; TREE_DIMS];
    for &p in order.iter() {
        for d in 0..TREE_DIMS {
            low[d] = low[d].min(coords[p][d]);
            high[d] = high[d].max(coords[p][d]);
        }
    }
    let dim = (0..TREE_DIMS)
        .max_by(|&a, &b| (high[a] - low[a]).total_cmp(&(high[b] - low[b])))
        .unwrap_or(0);
    let mid = len / 2;
    order.select_nth_unstable_by(mid, |&a, &b| coords[a][dim].total_cmp(&coords[b][dim]));
    let at = coords[order[mid]][dim];
    let (below, above) = order.split_at_mut(mid);
    let low_node = build(coords, below, start, nodes);
    let high_node = build(coords, above, start + mid, nodes);
    nodes.push(Node::Split {
        dim,
        at,
        low: low_node,
        high: high_node,
    });
    nodes.len() - 1
}

/// The tree coordinates of a block (its principal components, or its leading coefficients)
/// and the length of the rest of it.
fn tree_point(projection: Option<&Projection>, block: &[f32; BLOCK]) -> (Coords, f32) {
    let mut c = [0.0; TREE_DIMS];
    let rest = match projection {
        Some(pca) => {
            let (projected, residual) = pca
                .apply_with_residual(block)
                .unwrap_or_else(|_| unreachable!("the projection is fitted on blocks"));
            c.iter_mut().zip(&projected).for_each(|(c, x)| *c = *x);
            residual
        }
        None => {
            c.copy_from_slice(&block[..TREE_DIMS]);
            block[TREE_DIMS..].iter().map(|x| x * x).sum::<f32>().sqrt()
        }
    };
    (c, rest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::features::dup::{LEN, compare};
    use crate::rng::SplitMix64;

    /// Random signatures with unit layout blocks, some of them near copies of others in
    /// another pose, so that pairs fall on both sides of the limits.
    fn signatures(n: usize, seed: u64) -> Vec<Vec<f32>> {
        let mut rng = SplitMix64::new(seed);
        let mut out: Vec<Vec<f32>> = Vec::new();
        for i in 0..n {
            let mut s: Vec<f32> = if i % 3 == 2 {
                let source = &out[i - 1];
                source
                    .iter()
                    .map(|x| x + 0.01 * (rng.uniform() as f32 - 0.5))
                    .collect()
            } else {
                (0..LEN).map(|_| rng.uniform() as f32 - 0.5).collect()
            };
            if i % 3 == 2 {
                // A flipped copy: odd horizontal frequencies negated in every window.
                let dim = crate::features::dup::DIM;
                for w in 0..WINDOWS {
                    for (k, x) in s[w * dim..(w + 1) * dim].iter_mut().enumerate() {
                        if (k + 1) % 12 % 2 == 1 {
                            *x = -*x;
                        }
                    }
                }
            }
            normalise_layout(&mut s);
            out.push(s);
        }
        out
    }

    fn normalise_layout(s: &mut [f32]) {
        let dim = crate::features::dup::DIM;
        for w in 0..WINDOWS {
            let window = &mut s[w * dim..(w + 1) * dim];
            let layout: Vec<usize> = (0..dim)
                .filter(|k| (k + 1) % 12 < 8 && (k + 1) / 12 < 8)
                .collect();
            let norm: f32 = layout
                .iter()
                .map(|&k| window[k] * window[k])
                .sum::<f32>()
                .sqrt();
            for &k in &layout {
                window[k] /= norm;
            }
        }
    }

    #[test]
    fn without_a_budget_the_tree_finds_exactly_the_pairs_within_the_limit() {
        let owned = signatures(150, 7);
        let sigs: Vec<&[f32]> = owned.iter().map(|s| s.as_slice()).collect();
        let near = NearPairs::with_budget(&sigs, usize::MAX);
        let n = sigs.len();
        let layout: Vec<Vec<f32>> = (0..n)
            .map(|i| (0..n).map(|j| compare(sigs[i], sigs[j]).layout).collect())
            .collect();
        for limit in [0.1, 0.4, 1.2, 1.3] {
            let partners: Vec<Vec<usize>> = (0..n).map(|i| near.partners(i, limit)).collect();
            let mut within = 0;
            for i in 0..n {
                for j in (0..n).filter(|&j| j != i) {
                    let found = partners[i].contains(&j) || partners[j].contains(&i);
                    if layout[i][j] <= limit {
                        within += 1;
                        assert!(found, "limit {limit}: {i} {j} at {} missed", layout[i][j]);
                    } else if found {
                        assert!(layout[i][j] <= limit + 2.0 * SLACK, "{i} {j}");
                    }
                }
            }
            assert!(
                within > 0 && within < n * (n - 1),
                "limit {limit}: {within} pairs"
            );
        }
    }

    #[test]
    fn with_the_budget_every_near_copy_is_found_among_many_points() {
        // 3,000 signatures (18,000 windows, over 1,000 leaves): a third are flipped near
        // copies of the one before, each well within the limit.
        let owned = signatures(3000, 11);
        let sigs: Vec<&[f32]> = owned.iter().map(|s| s.as_slice()).collect();
        let near = NearPairs::new(&sigs);
        assert!(near.nodes.len() / 2 > 30 * LEAF_BUDGET);
        for i in (2..sigs.len()).step_by(3) {
            assert!(compare(sigs[i], sigs[i - 1]).layout < 0.1);
            assert!(
                near.partners(i, 0.4).contains(&(i - 1)),
                "copy {i} of {} missed",
                i - 1
            );
        }
    }

    #[test]
    fn a_limit_far_above_the_tests_gives_the_nearest_partners_only() {
        let sigs = signatures(600, 7);
        let refs: Vec<&[f32]> = sigs.iter().map(|s| s.as_slice()).collect();
        let near = NearPairs::new(&refs);
        // Signature 2 is a flipped near copy of signature 1: nearest of all, it stays.
        let far = near.partners(1, 2.0);
        assert!(
            far.len() <= MOST_PARTNERS && far.contains(&2),
            "{}",
            far.len()
        );
        let exhaustive = NearPairs::with_budget(&refs, usize::MAX).partners(1, 2.0);
        assert!(exhaustive.len() > MOST_PARTNERS, "{}", exhaustive.len());
    }

    #[test]
    fn signatures_without_windows_have_no_partners() {
        let owned = signatures(30, 3);
        let mut sigs: Vec<&[f32]> = owned.iter().map(|s| s.as_slice()).collect();
        let empty: Vec<f32> = Vec::new();
        sigs.push(&empty);
        let near = NearPairs::new(&sigs);
        assert!(near.partners(30, 2.0).is_empty());
        assert!(near.partners(99, 2.0).is_empty());
        assert!((0..30).all(|i| !near.partners(i, 2.0).contains(&30)));
        let one = [sigs[0]];
        assert!(NearPairs::new(&one).partners(0, 2.0).is_empty());
    }
}
