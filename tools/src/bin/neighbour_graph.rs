//! How cheaply the first graph of an augmented build may be made. That graph only finds each
//! point's augmentation neighbours (its `DEFAULT_DBA` nearest others) and is then dropped. For
//! each (links, construction beam) pair: the build time of a plain graph over an index's
//! PCA-projected fused vectors, and the recall of those neighbours, searched as `index`
//! searches them, against exact search on a sample of points; and, for the graph a search
//! uses, recall@10 of the same points' searches.
//! Usage: neighbour_graph INDEX_DIR [SAMPLE=1000] [LINKS:EF_CONSTRUCTION ...]
//! (default pairs: the index's own 24:200, then 16:100 and 12:64)

use std::time::Instant;

use lookalike::ann::{AnnBuilder, AnnParams, DEFAULT_DBA, exact_search};
use lookalike::collection::Collection;
use lookalike::features::Fusion;
use lookalike::pca::Projection;

fn main() -> lookalike::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let Some(dir) = args.get(1) else {
        eprintln!("usage: neighbour_graph INDEX_DIR [SAMPLE=1000] [LINKS:EF_CONSTRUCTION ...]");
        std::process::exit(2);
    };
    let sample: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(1000);
    let mut pairs: Vec<(usize, usize)> = args
        .iter()
        .skip(3)
        .filter_map(|p| {
            let (m, ef) = p.split_once(':')?;
            Some((m.parse().ok()?, ef.parse().ok()?))
        })
        .collect();
    if pairs.is_empty() {
        pairs = vec![(24, 200), (16, 100), (12, 64)];
    }
    let collection = Collection::at(dir);
    let store = collection.open_store_read_only()?;
    let fusion = Fusion::for_profile(collection.profile(&store)?);
    let t = Instant::now();
    let fused: Vec<(i64, Vec<f32>)> = store
        .vectors(&fusion.families())?
        .into_iter()
        .map(|(id, parts)| (id, fusion.fuse(&parts)))
        .collect();
    let refs: Vec<&[f32]> = fused.iter().map(|p| p.1.as_slice()).collect();
    let params = AnnParams::default();
    let projection = Projection::fit(&refs, params.pca_dims)?;
    drop(refs);
    let points: Vec<(i64, Vec<f32>)> = fused
        .into_iter()
        .map(|(id, v)| match &projection {
            Some(p) => Ok((id, p.apply(&v)?)),
            None => Ok((id, v)),
        })
        .collect::<lookalike::Result<_>>()?;
    let dim = points.first().map_or(0, |p| p.1.len());
    println!(
        "{} points of {dim} dimensions (loaded and projected in {:.1} s)",
        points.len(),
        t.elapsed().as_secs_f64()
    );
    let step = (points.len() / sample.max(1)).max(1);
    let probes: Vec<&(i64, Vec<f32>)> = points.iter().step_by(step).take(sample).collect();
    let k = DEFAULT_DBA;
    let top10: Vec<Vec<i64>> = probes
        .iter()
        .map(|(_, v)| {
            exact_search(&points, v, 10)
                .into_iter()
                .map(|h| h.0)
                .collect()
        })
        .collect();
    let truth: Vec<Vec<i64>> = probes
        .iter()
        .zip(&top10)
        .map(|((id, _), top)| top.iter().copied().filter(|n| n != id).take(k).collect())
        .collect();
    for (links, ef_construction) in pairs {
        let params = AnnParams {
            max_connections: links,
            ef_construction,
            dba: 0,
            ..AnnParams::default()
        };
        let t = Instant::now();
        let mut builder = AnnBuilder::new(points.len(), dim, None, params);
        builder.insert(&points);
        let graph = builder.finish();
        let build = t.elapsed().as_secs_f64();
        let found: usize = probes
            .iter()
            .zip(&truth)
            .map(|((id, v), want)| {
                let got: Vec<i64> = graph
                    .search_graph_space(v, k + 1)
                    .expect("the query is of the points' length")
                    .into_iter()
                    .map(|h| h.0)
                    .filter(|n| n != id)
                    .take(k)
                    .collect();
                want.iter().filter(|n| got.contains(n)).count()
            })
            .sum();
        let found10: usize = probes
            .iter()
            .zip(&top10)
            .map(|((_, v), want)| {
                let got = graph
                    .search_graph_space(v, 10)
                    .expect("the query is of the points' length");
                want.iter()
                    .filter(|n| got.iter().any(|h| h.0 == **n))
                    .count()
            })
            .sum();
        println!(
            "links {links:>3}, ef_construction {ef_construction:>3}: built in {build:6.1} s, augmentation neighbours found {:.4}, recall@10 {:.4}",
            found as f64 / (truth.len() * k).max(1) as f64,
            found10 as f64 / (top10.len() * 10).max(1) as f64
        );
    }
    Ok(())
}
