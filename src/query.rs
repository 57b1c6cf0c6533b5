//! Search by example: the example's fused vector (stored if it is indexed, extracted if not),
//! nearest images from the HNSW graph or by exact search, mapped back to paths.

use std::path::{Path, PathBuf};

use crate::collection::{Collection, SearchMode, SearchSpace};
use crate::decode::DecodeConfig;
use crate::error::{Error, Result};
use crate::features::{Fusion, Registry};
use crate::index::extract_bytes;
use crate::query_expansion::QueryExpansion;
use crate::store::Store;

/// Options of one query.
#[derive(Debug, Clone)]
pub struct QueryConfig {
    pub k: usize,
    pub mode: SearchMode,
    pub fusion: Fusion,
    pub decode: DecodeConfig,
    /// Query expansion (a second search from the query averaged with its first neighbours).
    pub qe: QueryExpansion,
    /// The head's candidate nearest to the example goes first (see [`crate::nearest_first`]).
    pub nearest_first: bool,
}

impl Default for QueryConfig {
    fn default() -> Self {
        QueryConfig {
            k: 10,
            mode: SearchMode::Hnsw,
            fusion: Fusion::default(),
            decode: DecodeConfig::default(),
            qe: QueryExpansion::default(),
            nearest_first: true,
        }
    }
}

/// One result.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Hit {
    pub rank: usize,
    /// Fused-vector distance to the example (the ranking may also use query expansion and the
    /// augmented vectors of the graph).
    pub distance: f32,
    #[serde(flatten, serialize_with = "crate::path_repr::path")]
    pub path: PathBuf,
    pub id: i64,
}

/// The answer to a query.
#[derive(Debug, Clone, serde::Serialize)]
pub struct QueryResult {
    #[serde(flatten, serialize_with = "crate::path_repr::query")]
    pub query: PathBuf,
    /// True when the example is itself in the index (its stored vector was used).
    pub indexed: bool,
    pub mode: SearchMode,
    pub hits: Vec<Hit>,
    /// Indexed files that would have been hits but are gone or changed on disk since they
    /// were indexed: left out of `hits` (`lookalike index` brings the index up to date).
    #[serde(serialize_with = "crate::path_repr::list")]
    pub stale: Vec<PathBuf>,
    pub note: Option<String>,
}

/// An open index ready to answer many queries.
pub struct Searcher {
    store: Store,
    space: SearchSpace,
    registry: Registry,
}

impl Searcher {
    /// Opens a collection read-only with the given fusion (normally its profile's,
    /// [`Fusion::for_profile`]).
    pub fn open(collection: &Collection, fusion: &Fusion) -> Result<Searcher> {
        let store = collection.open_store_read_only()?;
        if store.image_count()? == 0 {
            return Err(Error::InvalidInput(format!(
                "the index at {} holds no images yet: run `lookalike index DIR`",
                collection.dir().display()
            )));
        }
        let registry = Registry::for_profile(collection.profile(&store)?);
        let space = collection.search_space(&store, fusion)?;
        Ok(Searcher {
            store,
            space,
            registry,
        })
    }

    /// The families (and working side) of the collection's profile, which examples that are
    /// not indexed are described with.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The loaded vectors and graph.
    pub fn space(&self) -> &SearchSpace {
        &self.space
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The fused vector of an example file: the stored one when the file is indexed and its
    /// bytes are those indexed, else freshly extracted.
    pub fn example_vector(&self, path: &Path, decode: &DecodeConfig) -> Result<(Vec<f32>, bool)> {
        let bytes = crate::decode::read_image_file(path, decode)?;
        if let Some(id) = self.indexed_id(path, &bytes)?
            && let Some(v) = self.space.vector_of(&self.store, id)?
        {
            return Ok((v, true));
        }
        let (_, rows) = extract_bytes(&bytes, path, decode, &self.registry)?;
        let (names, parts): (Vec<String>, Vec<Vec<f32>>) =
            rows.into_iter().map(|r| (r.family, r.vector)).unzip();
        Ok((self.space.fusion.fuse_named(&names, &parts), false))
    }

    /// The id of the indexed image at `path`, when `bytes` (read from it) are what was indexed.
    fn indexed_id(&self, path: &Path, bytes: &[u8]) -> Result<Option<i64>> {
        let Ok(abs) = std::fs::canonicalize(path) else {
            return Ok(None);
        };
        Ok(self
            .store
            .file_at(&abs)?
            .filter(|f| f.hash == *blake3::hash(bytes).as_bytes())
            .map(|f| f.id))
    }

    /// The `k` nearest indexed images to a vector in the search space (a fused vector passed
    /// through [`SearchSpace::embed`]), with paths; deleted images never appear.
    pub fn nearest(&self, vector: &[f32], k: usize, mode: SearchMode) -> Result<Vec<Hit>> {
        // Ask for a few more in case some ids were deleted since the graph was built.
        let raw = self.space.search(&self.store, vector, k + 8, mode)?;
        let ids: Vec<i64> = raw.iter().map(|h| h.0).collect();
        let paths = self.store.paths(&ids)?;
        Ok(raw
            .into_iter()
            .filter_map(|(id, d)| paths.get(&id).map(|p| (id, d, p.clone())))
            .take(k)
            .enumerate()
            .map(|(i, (id, distance, path))| Hit {
                rank: i + 1,
                distance,
                path,
                id,
            })
            .collect())
    }

    /// Answers one query by example.
    pub fn query(&self, path: &Path, cfg: &QueryConfig) -> Result<QueryResult> {
        let (example, indexed) = self.example_vector(path, &cfg.decode)?;
        let vector = self.space.embed(&self.space.fusion.query_view(&example));
        let mode = if self.space.ann.is_some() {
            cfg.mode
        } else {
            SearchMode::Exact
        };
        let vector = if cfg.qe.enabled() {
            // The example's own stored vector is not a neighbour to expand with.
            let own = if indexed {
                std::fs::canonicalize(path)
                    .ok()
                    .and_then(|abs| self.store.id_of_path(&abs).ok().flatten())
            } else {
                None
            };
            let first: Vec<i64> = self
                .space
                .search(&self.store, &vector, cfg.qe.n + 1, mode)?
                .into_iter()
                .map(|h| h.0)
                .filter(|id| Some(*id) != own)
                .take(cfg.qe.n)
                .collect();
            let neighbours = self.space.vectors_of(&self.store, &first)?;
            cfg.qe
                .expand(&vector, neighbours.iter().map(|p| p.1.as_slice()))
        } else {
            vector
        };
        // The nearest-first step looks at the same head whatever `k` is (and one more, for the
        // example itself when it is indexed).
        let mut hits = self.nearest(&vector, cfg.k.max(crate::nearest_first::POOL) + 1, mode)?;
        // Distances are reported to the user's example on full fused vectors (with the weights
        // its query view ranks by), not to the expanded query nor to augmented vectors.
        let ids: Vec<i64> = hits.iter().map(|h| h.id).collect();
        let full: std::collections::HashMap<i64, Vec<f32>> = self
            .space
            .full_vectors_of(&self.store, &ids)?
            .into_iter()
            .collect();
        let fusion = &self.space.fusion;
        for h in hits.iter_mut() {
            if let Some(v) = full.get(&h.id) {
                h.distance = fusion.example_distance(&example, v);
            }
        }
        // Expansion moves the query; exact duplicates of the example still come first, then
        // the nearest of the rest.
        hits.sort_by_key(|h| h.distance >= 1e-4);
        let exact_duplicates = hits.iter().take_while(|h| h.distance < 1e-4).count();
        if cfg.nearest_first {
            crate::nearest_first::promote(&mut hits[exact_duplicates..], |h| h.distance);
        }
        let stale = self.drop_stale(&mut hits)?;
        hits.truncate(cfg.k);
        for (i, h) in hits.iter_mut().enumerate() {
            h.rank = i + 1;
        }
        Ok(QueryResult {
            query: path.to_path_buf(),
            indexed,
            mode,
            hits,
            stale,
            note: self.space.note.clone(),
        })
    }

    /// Removes the hits whose file is gone or no longer holds the bytes indexed, and returns
    /// their paths. A stamp that differs from the recorded one is settled by the file's hash.
    pub fn drop_stale(&self, hits: &mut Vec<Hit>) -> Result<Vec<PathBuf>> {
        let ids: Vec<i64> = hits.iter().map(|h| h.id).collect();
        let recorded = self.store.files_of(&ids)?;
        let mut stale = Vec::new();
        hits.retain(|h| {
            let current = recorded.get(&h.id).is_some_and(on_disk_as_recorded);
            if !current {
                stale.push(h.path.clone());
            }
            current
        });
        Ok(stale)
    }
}

/// True when the file is still on disk with the content it was indexed with.
fn on_disk_as_recorded(file: &crate::store::RecordedFile) -> bool {
    let Ok(meta) = std::fs::metadata(&file.path) else {
        return false;
    };
    if !meta.is_file() {
        return false;
    }
    if crate::store::FileStamp::of(&meta).matches(&file.stamp) {
        return true;
    }
    std::fs::read(&file.path).is_ok_and(|bytes| *blake3::hash(&bytes).as_bytes() == file.hash)
}
