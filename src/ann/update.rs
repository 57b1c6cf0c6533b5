//! In-place update: hiding the points of removed and changed images, inserting the changed ones.

use rayon::prelude::*;

use super::build::{insert_points, insertion_order};
use super::{
    AnnIndex, IMAGE_ID_MASK, MAX_UPDATES, data_id, finite, finite_points, lookup, scaled_ef,
    split_equal, squared_l2, tidy,
};
use crate::error::{Error, Result};

/// Points per round of an in-place update: each round's augmentation neighbours are searched
/// in the graph holding the rounds before it, plus exactly among the round's own points.
const UPDATE_ROUND: usize = 1024;

/// Graph candidates whose plain vectors an inserted point's augmentation neighbours are chosen
/// from (the graph ranks by augmented vectors, the augmentation by plain ones).
const UPDATE_CANDIDATES: usize = 32;

impl AnnIndex {
    /// Takes `images` out of the searches: a point standing for no other image is hidden (the
    /// graph itself is unchanged: a dump of it stays valid, with these points added to its
    /// record's hidden ones), a shared one keeps standing for the others. Counts as an update.
    pub(crate) fn hide(&mut self, images: &[i64]) {
        let visible = self.visible_points();
        for id in images {
            let Some(&node) = visible.get(id) else {
                continue;
            };
            let mut left = self.images_of(node).into_owned();
            left.retain(|i| i != id);
            if left.is_empty() {
                self.groups.remove(&node);
                self.hidden.push(node);
            } else {
                self.groups.insert(node, left);
            }
        }
        tidy(&mut self.groups);
        self.hidden.sort_unstable();
        self.hidden.dedup();
        self.updates += 1;
        self.recount();
    }

    /// The points hiding `images` would hide: those standing for no image left.
    pub(crate) fn points_hidden_by(&self, images: &[i64]) -> usize {
        let visible = self.visible_points();
        let mut images = images.to_vec();
        images.sort_unstable();
        images.dedup();
        let mut leaving: std::collections::HashMap<usize, usize> = Default::default();
        for id in &images {
            if let Some(&node) = visible.get(id) {
                *leaving.entry(node).or_default() += 1;
            }
        }
        leaving
            .into_iter()
            .filter(|&(node, n)| self.images_of(node).len() == n)
            .count()
    }

    /// The graph's points from its full build, hidden or not: those no update inserted.
    pub(crate) fn built_points(&self) -> usize {
        if self.hnsw.get_nb_point() == 0 {
            // hnsw_rs cannot iterate a graph without an entry point.
            return 0;
        }
        self.hnsw
            .get_point_indexation()
            .into_iter()
            .filter(|p| p.get_origin_id() & !IMAGE_ID_MASK == 0)
            .count()
    }

    /// Derives the searchable count and the beam width from the graph, its hidden points and
    /// its groups.
    pub(super) fn recount(&mut self) {
        let shared: usize = self.groups.values().map(|g| g.len() - 1).sum();
        self.count = self.hnsw.get_nb_point() - self.hidden.len() + shared;
        self.ef = scaled_ef(self.params.ef_search, self.count);
    }

    /// True when `changed` images (new, or with new vectors) and `removed` ones can be applied
    /// in place: image ids fit the data ids, and update numbers remain.
    pub(crate) fn can_update(&self, changed: &[i64]) -> bool {
        self.updates < MAX_UPDATES
            && changed
                .iter()
                .all(|&id| (0..=IMAGE_ID_MASK as i64).contains(&id))
    }

    /// Brings the graph up to date without rebuilding it: the points of `removed` images and
    /// the old points of `changed` ones are hidden (they still route searches), and `changed`
    /// images (new, or with new vectors) are inserted through the same projection, a round at a
    /// time. `full` gives full fused vectors by image id, sorted by id.
    ///
    /// In an augmented graph each inserted vector is averaged with its nearest neighbours as a
    /// full build would average it. Points already in the graph keep their augmentation (a
    /// full build would also average them with the new images); `index --rebuild-graph`
    /// refreshes them.
    pub fn update(
        &mut self,
        changed: &[i64],
        removed: &[i64],
        full: impl Fn(&[i64]) -> Result<Vec<(i64, Vec<f32>)>>,
    ) -> Result<()> {
        if !self.can_update(changed) {
            return Err(Error::InvalidInput(
                "graph cannot be updated in place; rebuild it".into(),
            ));
        }
        let stale: Vec<i64> = removed.iter().chain(changed).copied().collect();
        self.hide(&stale);
        let update = self.updates;
        let dba = self.params.dba;
        let rule = crate::query_expansion::QueryExpansion {
            n: dba,
            alpha: self.params.dba_alpha,
        };
        let mut seen = self.visible_keys();
        let scrambled: Vec<i64> = insertion_order(changed)
            .into_iter()
            .map(|i| changed[i])
            .collect();
        for round in scrambled.chunks(UPDATE_ROUND) {
            let mut round = round.to_vec();
            round.sort_unstable();
            let round = round.as_slice();
            let projected: Vec<(i64, Vec<f32>)> = full(round)?
                .par_iter()
                .map(|(id, v)| Ok((*id, self.to_graph_space(&finite(v))?)))
                .collect::<Result<_>>()?;
            let inserted: Vec<(i64, Vec<f32>)> = if dba == 0 {
                projected
            } else {
                // Neighbours come from the graph's candidates (by their plain vectors) and from
                // this round, which the graph does not hold yet.
                let candidates: Vec<Vec<i64>> = projected
                    .par_iter()
                    .map(|(_, v)| {
                        self.nearest_in_graph_space(v, UPDATE_CANDIDATES)
                            .into_iter()
                            .map(|h| h.0)
                            .collect()
                    })
                    .collect();
                let mut wanted: Vec<i64> = candidates.iter().flatten().copied().collect();
                wanted.sort_unstable();
                wanted.dedup();
                // Fetched a round's worth at a time: full vectors are large, projected ones small.
                let mut known: Vec<(i64, Vec<f32>)> = Vec::with_capacity(wanted.len());
                for ids in wanted.chunks(UPDATE_ROUND) {
                    let round: Vec<(i64, Vec<f32>)> = full(ids)?
                        .into_par_iter()
                        .map(|(id, v)| Ok((id, self.to_graph_space(&finite(&v))?)))
                        .collect::<Result<_>>()?;
                    known.extend(round);
                }
                known.sort_unstable_by_key(|p| p.0);
                projected
                    .par_iter()
                    .zip(&candidates)
                    .map(|((id, v), near)| {
                        let mut scored: Vec<(i64, f32, &[f32])> = near
                            .iter()
                            .filter_map(|&n| lookup(&known, n).map(|w| (n, w)))
                            .chain(projected.iter().map(|(n, w)| (*n, w.as_slice())))
                            .filter(|(n, _)| n != id)
                            .map(|(n, w)| (n, squared_l2(v, w), w))
                            .collect();
                        scored.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
                        scored.dedup_by_key(|s| s.0);
                        let neighbours = scored.iter().take(dba).map(|s| s.2);
                        (
                            *id,
                            rule.expand_scaled(v, neighbours, self.params.dba_share),
                        )
                    })
                    .collect()
            };
            let inserted = finite_points(&inserted);
            // A vector a visible point holds adds its image to that point instead.
            let mut groups = std::mem::take(&mut self.groups);
            let data = split_equal(&inserted, |id| data_id(id, update), &mut seen, &mut groups);
            tidy(&mut groups);
            self.groups = groups;
            self.hnsw.set_searching_mode(false);
            insert_points(&self.hnsw, &data);
            self.hnsw.set_searching_mode(true);
            self.recount();
        }
        self.recount();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ann::tests::{exact_ids, exact_neighbours, pick_sorted, random_points};
    use crate::ann::{AnnParams, DEFAULT_DBA};
    use crate::query_expansion::QueryExpansion;

    /// An in-place update leaves the graph as a full build over the final points would be:
    /// the same images, each inserted one averaged with its exact neighbours, hidden points
    /// never returned, high recall; and a dump of it loads back the same.
    #[test]
    fn in_place_update_inserts_hides_and_survives_a_dump() {
        let seed = 20261127;
        let dim = 24;
        let mut points = random_points(800, dim, seed);
        let mut ann = AnnIndex::build(&points[..600], AnnParams::default()).unwrap();
        // 200 new images, 20 changed (same ids, new vectors), 30 removed.
        let fresh = random_points(20, dim, seed + 1);
        for (i, (_, v)) in fresh.into_iter().enumerate() {
            points[10 * i].1 = v;
        }
        let removed: Vec<i64> = (0..30).map(|i| points[5 + 10 * i].0).collect();
        points.retain(|p| !removed.contains(&p.0));
        let mut changed: Vec<i64> = (0..20).map(|i| points[10 * i].0).collect();
        changed.extend(points.iter().filter(|p| p.0 > 600).map(|p| p.0));
        // Changed ids are looked up before the removals shifted the indices above.
        assert!(changed.iter().all(|id| !removed.contains(id)));
        let full = |ids: &[i64]| -> Result<Vec<(i64, Vec<f32>)>> { Ok(pick_sorted(&points, ids)) };
        ann.update(&changed, &removed, full).unwrap();
        assert_eq!((ann.updates(), ann.built_count()), (1, 600));
        assert_eq!(ann.hidden_count(), 50);
        assert_eq!(ann.len(), points.len());
        let ids: Vec<i64> = points.iter().map(|p| p.0).collect();
        assert_eq!(ann.image_ids(), ids);

        let stored = ann.graph_points();
        assert_eq!(stored.iter().map(|p| p.0).collect::<Vec<_>>(), ids);
        let rule = QueryExpansion {
            n: DEFAULT_DBA,
            alpha: crate::query_expansion::DEFAULT_QE.alpha,
        };
        let mut matching = 0;
        for id in &changed {
            let v = lookup(&points, *id).unwrap();
            let expected = rule.expand_scaled(v, exact_neighbours(&points, *id, v), 1.0);
            if squared_l2(&expected, lookup(&stored, *id).unwrap()) < 1e-8 {
                matching += 1;
            }
        }
        // The neighbours come from graph candidates, as a full build's do above 10,000 points.
        assert!(matching >= 200, "{matching} of 220 match (seed {seed})");

        // Removed images and the old vectors of changed ones are never returned.
        for id in &removed {
            let old = random_points(800, dim, seed)[(*id - 1) as usize].1.clone();
            let hits = ann.search_graph_space(&old, 10).unwrap();
            assert_eq!(hits.len(), 10);
            assert!(hits.iter().all(|h| !removed.contains(&h.0)));
        }
        let queries = random_points(100, dim, seed + 2);
        let recall = |index: &AnnIndex| {
            let mut hit = 0;
            for (_, q) in &queries {
                let exact = exact_ids(&stored, q, 10);
                let approx = index.search_graph_space(q, 10).unwrap();
                let mut seen: Vec<i64> = approx.iter().map(|h| h.0).collect();
                seen.sort_unstable();
                seen.dedup();
                assert_eq!(seen.len(), approx.len(), "an image returned twice");
                hit += approx.iter().filter(|h| exact.contains(&h.0)).count();
            }
            hit as f64 / 1000.0
        };
        assert!(
            recall(&ann) >= 0.95,
            "recall@10 {} (seed {seed})",
            recall(&ann)
        );

        let tmp = tempfile::tempdir().unwrap();
        let rec = ann.dump(tmp.path(), 9, "w").unwrap();
        assert_eq!(
            (rec.count, rec.hidden.len(), rec.updates, rec.built_count),
            (820, 50, 1, 600)
        );
        let loaded = AnnIndex::load(tmp.path(), &rec).unwrap();
        assert_eq!(loaded.image_ids(), ids);
        assert_eq!(loaded.graph_points(), stored);
        for (_, q) in queries.iter().take(20) {
            assert_eq!(
                loaded.search_graph_space(q, 10).unwrap(),
                ann.search_graph_space(q, 10).unwrap()
            );
        }
    }
}
