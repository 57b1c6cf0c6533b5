//! Search by example: the example's fused vector (stored if it is indexed, extracted if not),
//! nearest images from the HNSW graph or by exact search, mapped back to paths.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::collection::Collection;
use crate::decode::DecodeConfig;
use crate::error::{Error, Result};
use crate::features::dup::{CopyTest, Match, compare};
use crate::features::{Fusion, Registry};
use crate::index::extract_bytes;
use crate::query_expansion::QueryExpansion;
use crate::rank::SearchMode;
use crate::rank::{RankConfig, Space, describe, rank_with_copies};
use crate::search_space::SearchSpace;
use crate::store::Store;

/// Options of one query.
#[derive(Debug, Clone)]
pub struct QueryConfig {
    /// Number of results.
    pub k: usize,
    /// Where candidates come from; exact search when the index has no graph.
    pub mode: SearchMode,
    /// Decoding limits and the working resolution for the example.
    pub decode: DecodeConfig,
    /// Query expansion (a second search from the query averaged with its first neighbours).
    pub qe: QueryExpansion,
    /// The head's candidate nearest to the example goes first (see [`crate::rank`]).
    pub nearest_first: bool,
}

impl Default for QueryConfig {
    fn default() -> Self {
        QueryConfig {
            k: 10,
            mode: SearchMode::Hnsw,
            decode: DecodeConfig::default(),
            qe: QueryExpansion::default(),
            nearest_first: true,
        }
    }
}

/// One result.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Hit {
    /// Position in the results, from 1.
    pub rank: usize,
    /// Fused-vector distance to the example (the ranking may also use query expansion and the
    /// augmented vectors of the graph).
    pub distance: f32,
    /// Path of the image file.
    #[serde(flatten, serialize_with = "crate::path_repr::path")]
    pub path: PathBuf,
    /// The image's id in the index.
    pub id: i64,
    /// An exact duplicate or an edited copy of the example, ranked ahead of the rest.
    #[serde(skip)]
    pub(crate) copy: bool,
}

/// The answer to a query.
#[derive(Debug, Clone, serde::Serialize)]
pub struct QueryResult {
    #[serde(flatten, serialize_with = "crate::path_repr::query")]
    pub(crate) query: PathBuf,
    /// True when the example is itself in the index (its stored vector was used).
    pub indexed: bool,
    pub(crate) mode: SearchMode,
    /// The results, best first.
    pub hits: Vec<Hit>,
    /// Indexed files that would have been hits but are gone or changed on disk since they
    /// were indexed: left out of `hits` (`lookalike index` brings the index up to date).
    #[serde(flatten, serialize_with = "crate::path_repr::stale")]
    pub(crate) stale: Vec<PathBuf>,
    /// Indexed files that would have been hits but cannot be read by this user (a
    /// permission), so they cannot be checked to be as indexed: left out of `hits` too.
    #[serde(flatten, serialize_with = "crate::path_repr::unreadable")]
    pub(crate) unreadable: Vec<PathBuf>,
    /// Why the graph is missing or was rebuilt in memory, for the user.
    pub note: Option<String>,
    /// How many images the search left out for a damaged stored vector, for the user: every
    /// image with a damaged vector of a searched family, once the search met one.
    #[serde(skip)]
    pub(crate) damage_note: Option<String>,
}

/// An example as the ranker takes it: its fused vector, its duplicate signature (empty when
/// the profile has none) and its id when it is an indexed image.
pub type Example = (Vec<f32>, Vec<f32>, Option<i64>);

/// An open index ready to answer many queries.
pub struct Searcher {
    store: Store,
    space: SearchSpace,
    registry: Registry,
    /// Images indexed when the searcher was opened: what decides whether every signature is
    /// compared for edited copies ([`ALL_COPIES_UP_TO`]).
    opened_with: u64,
}

/// The refusal of a search in an index of `profile`, which ranks nothing.
pub(crate) fn ranks_nothing(collection: &Collection, profile: crate::features::Profile) -> Error {
    Error::InvalidInput(format!(
        "the index at {} holds duplicate signatures only (profile '{}', made by `lookalike duplicates`): run `{}` (or `--profile full`) to describe its images for similarity search",
        crate::path_repr::shown(collection.dir()),
        profile.name(),
        crate::collection::advised_command(collection, "index --profile fast")
    ))
}

impl Searcher {
    /// Opens a collection read-only with the given fusion (normally its profile's,
    /// [`Fusion::for_profile`]).
    pub fn open(collection: &Collection, fusion: &Fusion) -> Result<Searcher> {
        let store = collection.open_store_read_only()?;
        store.map_for_searches()?;
        let opened_with = store.image_count()?;
        if opened_with == 0 {
            return Err(collection.empty_index(&store));
        }
        let profile = collection.profile(&store)?;
        if !profile.ranks() {
            return Err(ranks_nothing(collection, profile));
        }
        let registry = Registry::for_profile(profile);
        let space = collection.search_space(&store, fusion)?;
        Ok(Searcher {
            store,
            space,
            registry,
            opened_with,
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

    /// The fused vector of an example file and, when the file is indexed with these bytes or
    /// holds the bytes of an indexed image, that image's id: the stored vector is used then,
    /// else one is freshly extracted.
    pub(crate) fn example_vector(&self, path: &Path, decode: &DecodeConfig) -> Result<Example> {
        let bytes = crate::decode::read_image_file(path, decode)?;
        let hash = blake3::hash(&bytes);
        if let Some(id) = self.indexed_id(path, &hash)?
            && let Some(example) = self.example_of_id(id)?
        {
            return Ok(example);
        }
        // a byte-identical copy of an indexed image, elsewhere: as the web app's upload is
        self.example_of_hashed(&bytes, &hash, path, decode)
    }

    /// The stored vectors of an indexed image, as an example; `None` when it is not indexed.
    pub fn example_of_id(&self, id: i64) -> Result<Option<Example>> {
        let Some(fused) = self.space.vector_of(&self.store, id)? else {
            return Ok(None);
        };
        let signature = IndexedSpace(self)
            .signatures_of(&[id])?
            .pop()
            .map(|s| s.1)
            .unwrap_or_default();
        Ok(Some((fused, signature, Some(id))))
    }

    /// An example given as bytes (an upload; `name` names it in errors): the stored vectors
    /// when an indexed image holds the same bytes, else freshly extracted ones.
    pub fn example_of_bytes(
        &self,
        bytes: &[u8],
        name: &Path,
        decode: &DecodeConfig,
    ) -> Result<Example> {
        self.example_of_hashed(bytes, &blake3::hash(bytes), name, decode)
    }

    /// [`Searcher::example_of_bytes`] for bytes whose hash is `hash`.
    fn example_of_hashed(
        &self,
        bytes: &[u8],
        hash: &blake3::Hash,
        name: &Path,
        decode: &DecodeConfig,
    ) -> Result<Example> {
        if let Some(id) = self.store.id_of_hash(hash.as_bytes())?
            && let Some(example) = self.example_of_id(id)?
        {
            return Ok(example);
        }
        self.extract_example(bytes, name, decode)
    }

    /// An example freshly described from its bytes (`path` names it in errors), even when an
    /// indexed image holds the same bytes.
    pub fn extract_example(
        &self,
        bytes: &[u8],
        path: &Path,
        decode: &DecodeConfig,
    ) -> Result<Example> {
        let (_, rows) = extract_bytes(bytes, path, decode, &self.registry)?;
        let (names, parts): (Vec<String>, Vec<Vec<f32>>) =
            rows.into_iter().map(|r| (r.family, r.vector)).unzip();
        let signature = names
            .iter()
            .position(|n| n == "dup")
            .map(|i| parts[i].clone())
            .unwrap_or_default();
        Ok((
            self.space.fusion.fuse_named(&names, &parts),
            signature,
            None,
        ))
    }

    /// The id of the indexed image at `path`, when the bytes read from it (hashed `hash`) are
    /// what was indexed.
    fn indexed_id(&self, path: &Path, hash: &blake3::Hash) -> Result<Option<i64>> {
        // where a walk lists it: through a tracked folder now a link, or its own followed link
        let roots = self.store.roots()?;
        let roots: Vec<&PathBuf> = roots.values().collect();
        let Some(abs) = crate::index::placed(path, &roots) else {
            return Ok(None);
        };
        Ok(self
            .store
            .file_at(&abs)?
            .filter(|f| f.hash == *hash.as_bytes())
            .map(|f| f.id))
    }

    /// The search mode a query can use: exact when the collection has no graph.
    pub(crate) fn mode(&self, wanted: SearchMode) -> SearchMode {
        if self.space.ann.is_some() {
            wanted
        } else {
            SearchMode::Exact
        }
    }

    /// The first `k` images for an example's fused vector ([`crate::rank::rank`]), each with
    /// its distance to the example and its path; `own` is the example's indexed id, if any.
    /// Images deleted from the index since the graph was built never appear; files gone or
    /// changed on disk are not checked here (see `drop_stale`).
    ///
    /// # Errors
    /// [`Error::VectorLength`] when `example` is not of the fused length of the searcher's
    /// [`Fusion`]; the errors of reading the index.
    pub fn rank(
        &self,
        example: &[f32],
        signature: &[f32],
        own: Option<i64>,
        k: usize,
        cfg: &RankConfig,
    ) -> Result<Vec<Hit>> {
        crate::vector::check_length("example", example, self.space.fusion.dim())?;
        let space = IndexedSpace(self);
        let mut ranking = rank_with_copies(&space, example, signature, own, k, cfg)?;
        describe(&space, example, &mut ranking)?;
        let ids: Vec<i64> = ranking.iter().map(|r| r.id).collect();
        let paths = self.store.paths(&ids)?;
        // an image without a usable stored vector (damaged) has no distance: it is left out,
        // as the damage note says
        Ok(ranking
            .into_iter()
            .filter_map(|r| {
                let distance = r.distance.filter(|d| d.is_finite())?;
                paths
                    .get(&r.id)
                    .map(|p| (r.id, distance, p.clone(), r.copy))
            })
            .enumerate()
            .map(|(i, (id, distance, path, copy))| Hit {
                rank: i + 1,
                distance,
                path,
                id,
                copy,
            })
            .collect())
    }

    /// Answers one query by example.
    pub fn query(&self, path: &Path, cfg: &QueryConfig) -> Result<QueryResult> {
        let example = self.example_vector(path, &cfg.decode)?;
        self.answer(path, example, cfg)
    }

    /// Ranks the images for an example (labelled `query` in the result) and drops the hits
    /// gone or changed on disk. The result notes the damaged vectors met since the store's
    /// last [`Store::take_damaged`] (reading the example's own vectors too), and takes them.
    pub(crate) fn answer(
        &self,
        query: &Path,
        example: Example,
        cfg: &QueryConfig,
    ) -> Result<QueryResult> {
        let (example, signature, own) = example;
        let mode = self.mode(cfg.mode);
        let rank_cfg = RankConfig {
            mode,
            qe: cfg.qe,
            nearest_first: cfg.nearest_first,
        };
        // A few more than asked for, in case some were deleted or changed on disk.
        let mut hits = self.rank(
            &example,
            &signature,
            own,
            cfg.k.saturating_add(STALE_MARGIN),
            &rank_cfg,
        )?;
        let (stale, unreadable) = self.drop_stale(&mut hits)?;
        // the hit moved first may be one just dropped: the nearest of those left after the
        // copies goes first
        if cfg.nearest_first && !(stale.is_empty() && unreadable.is_empty()) {
            crate::rank::reorder_after_leaving_out(&mut hits, |h| h.copy, |h| h.distance);
        }
        hits.truncate(cfg.k);
        for (i, h) in hits.iter_mut().enumerate() {
            h.rank = i + 1;
        }
        // what the search read of damaged vectors depends on its candidates: all are noted
        self.store.note_all_damage(&self.space.fusion.families())?;
        let damage_note = crate::store::DamagedVector::left_out_note(
            self.store.index_dir(),
            &self.store.take_damaged(),
        );
        Ok(QueryResult {
            damage_note,
            query: query.to_path_buf(),
            indexed: own.is_some(),
            mode,
            hits,
            stale,
            unreadable,
            note: self.space.note_for(mode),
        })
    }

    /// Removes the hits whose file is gone or no longer holds the bytes indexed, and those
    /// this user cannot read to check, and returns their paths (stale, then unreadable). A
    /// stamp that differs from the recorded one is settled by the file's hash.
    pub(crate) fn drop_stale(&self, hits: &mut Vec<Hit>) -> Result<(Vec<PathBuf>, Vec<PathBuf>)> {
        let ids: Vec<i64> = hits.iter().map(|h| h.id).collect();
        let recorded = self.store.files_of(&ids)?;
        let mut stale = Vec::new();
        let mut unreadable = Vec::new();
        hits.retain(|h| match recorded.get(&h.id).map(on_disk_as_recorded) {
            Some(OnDisk::AsRecorded) => true,
            Some(OnDisk::Unreadable) => {
                unreadable.push(h.path.clone());
                false
            }
            Some(OnDisk::Stale) | None => {
                stale.push(h.path.clone());
                false
            }
        });
        Ok((stale, unreadable))
    }
}

/// Collections up to this size have every duplicate signature compared with the example's;
/// larger ones look for copies among the first candidates of the search.
const ALL_COPIES_UP_TO: u64 = 10_000;

/// Ranked images beyond the `k` asked for, standing in for those found gone or changed.
const STALE_MARGIN: usize = 8;

/// An open collection as the ranker sees it: the search space over the images still indexed.
struct IndexedSpace<'a>(&'a Searcher);

impl Space for IndexedSpace<'_> {
    fn embed(&self, example: &[f32]) -> Result<Vec<f32>> {
        let space = &self.0.space;
        space.embed(&space.fusion.query_view(example))
    }

    fn search(&self, query: &[f32], k: usize, mode: SearchMode) -> Result<Vec<(i64, f32)>> {
        let searcher = self.0;
        let mut found = searcher.space.search(&searcher.store, query, k, mode)?;
        // Images deleted by an `index` run since the search space was loaded are left out.
        let ids: Vec<i64> = found.iter().map(|h| h.0).collect();
        let indexed = searcher.store.paths(&ids)?;
        found.retain(|h| indexed.contains_key(&h.0));
        Ok(found)
    }

    fn vectors_of(&self, ids: &[i64]) -> Result<Vec<(i64, Vec<f32>)>> {
        self.0.space.vectors_of(&self.0.store, ids)
    }

    fn all_copies(&self, signature: &[f32], test: &CopyTest) -> Result<Option<Vec<(i64, Match)>>> {
        let store = &self.0.store;
        if self.0.opened_with > ALL_COPIES_UP_TO {
            return Ok(None);
        }
        let mut found = Vec::new();
        store.for_each_vector(&["dup"], |id, mut parts| {
            if let Some(s) = parts.pop() {
                let m = compare(signature, &s);
                if test.accepts(&m) {
                    found.push((id, m));
                }
            }
            Ok(())
        })?;
        // Images deleted by an `index` run since the search space was loaded are left out.
        let ids: Vec<i64> = found.iter().map(|f| f.0).collect();
        let indexed = store.paths(&ids)?;
        found.retain(|f| indexed.contains_key(&f.0));
        Ok(Some(found))
    }

    fn signatures_of(&self, ids: &[i64]) -> Result<Vec<(i64, Vec<f32>)>> {
        Ok(self
            .0
            .store
            .vectors_of(ids, &["dup"])?
            .into_iter()
            .filter_map(|(id, mut parts)| parts.pop().filter(|s| !s.is_empty()).map(|s| (id, s)))
            .collect())
    }

    fn example_distances(&self, example: &[f32], ids: &[i64]) -> Result<Vec<f32>> {
        let space = &self.0.space;
        let full: HashMap<i64, Vec<f32>> = space
            .full_vectors_of(&self.0.store, ids)?
            .into_iter()
            .collect();
        Ok(ids
            .iter()
            .map(|id| {
                full.get(id)
                    .map_or(f32::INFINITY, |v| space.fusion.example_distance(example, v))
            })
            .collect())
    }
}

/// True when the file is still on disk with the content it was indexed with.
/// What a hit's file is now, against its record.
enum OnDisk {
    AsRecorded,
    /// Gone, no longer a file, or holding other bytes.
    Stale,
    /// Its stamp changed and this user may not read it to check its bytes.
    Unreadable,
}

fn on_disk_as_recorded(file: &crate::store::RecordedFile) -> OnDisk {
    let meta = match std::fs::metadata(&file.path) {
        Ok(meta) => meta,
        // a folder on the way this user may not enter
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => return OnDisk::Unreadable,
        Err(_) => return OnDisk::Stale,
    };
    if !meta.is_file() {
        return OnDisk::Stale;
    }
    if crate::store::FileStamp::of(&meta).matches(&file.stamp) {
        return OnDisk::AsRecorded;
    }
    match std::fs::read(&file.path) {
        Ok(bytes) if *blake3::hash(&bytes).as_bytes() == file.hash => OnDisk::AsRecorded,
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => OnDisk::Unreadable,
        _ => OnDisk::Stale,
    }
}
