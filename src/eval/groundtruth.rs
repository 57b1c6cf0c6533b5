//! Ground truth for evaluation: which database items exist, which are queries, which are relevant.
//!
//! Three sources are understood:
//! * a labelled table (`groundtruth.tsv`): a header line (optional: a first column with no `.`
//!   naming no file, and no whole number after it), then `file<TAB>integer label[<TAB>...]`;
//!   every labelled image is a query and its relevant items are the others with its label;
//! * folder-as-class (`--labels folders`): the parent folder of each image below a root is its class;
//! * a query list (Oxford/Holidays style): `query<TAB>relevant[<TAB>relevant...]` per line;
//!   only the listed queries are asked and relevance is given per query.
//!
//! Item names are paths relative to the images folder, with `/` as separator. Items get dense ids
//! `0..len()` in file order; those ids are what [`crate::eval::metrics`] rankings are made of.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

use crate::crawl::{CrawlConfig, IMAGE_EXTENSIONS};
use crate::eval::metrics::Relevance;
use crate::{Error, Result};

/// How many missing or offending names an error message lists before summarising.
const MAX_NAMES_IN_ERROR: usize = 5;

/// How relevance is defined.
#[derive(Debug, Clone)]
enum Kind {
    /// Every labelled item is a query; relevant = same label.
    Labels {
        /// Label of each item; `None` for distractors added later.
        labels: Vec<Option<i64>>,
        /// Number of items carrying each label.
        counts: HashMap<i64, usize>,
        /// Display name of each label (folder name, or the number itself).
        names: BTreeMap<i64, String>,
    },
    /// Explicit queries, each with its own set of relevant items.
    Queries {
        queries: Vec<usize>,
        /// Relevant item ids of each query, sorted, query itself excluded.
        relevant: HashMap<usize, Vec<usize>>,
    },
}

/// Loaded ground truth: database item names, the query set and the relevance judgements.
#[derive(Debug, Clone)]
pub struct GroundTruth {
    root: PathBuf,
    source: PathBuf,
    names: Vec<String>,
    ids: HashMap<String, usize>,
    kind: Kind,
    /// Images the folder holds whose names are not UTF-8: left out of the evaluation.
    unnamed: Vec<PathBuf>,
}

/// Image files below `root` (names relative to it), sorted, as the index walks it with
/// `walk`'s options, and apart those whose names are not UTF-8 (as walked); `hint` says what
/// the folder is for.
fn sorted_images_below(
    root: &Path,
    walk: &CrawlConfig,
    hint: &str,
) -> Result<(Vec<String>, Vec<PathBuf>)> {
    let meta = std::fs::metadata(root).map_err(|e| Error::io(root, e))?;
    if !meta.is_dir() {
        return Err(Error::InvalidInput(format!(
            "{}: is not a folder; {hint}",
            crate::path_repr::shown(root)
        )));
    }
    let walked = crate::crawl::crawl(&CrawlConfig {
        roots: vec![root.to_path_buf()],
        ..walk.clone()
    })?;
    let mut files = Vec::new();
    let mut unnamed = Vec::new();
    for file in &walked.files {
        let parts: Option<Vec<&str>> = file
            .rel_path
            .components()
            .map(|c| c.as_os_str().to_str())
            .collect();
        let Some(parts) = parts else {
            unnamed.push(file.abs_path.clone());
            continue;
        };
        files.push(parts.join("/"));
    }
    files.sort();
    unnamed.sort();
    if files.is_empty() {
        let unnamed_too = match unnamed.len() {
            0 => String::new(),
            n => format!(
                " ({} whose {} not valid UTF-8 left out, e.g. {}: rename {} to include {})",
                crate::text::counted(n, "image", "images"),
                crate::text::for_count(n, "name is", "names are"),
                crate::path_repr::shown(&unnamed[0]),
                crate::text::for_count(n, "it", "them"),
                crate::text::for_count(n, "it", "them"),
            ),
        };
        return Err(Error::InvalidInput(format!(
            "{}: no images found (extensions {}){unnamed_too}; {hint}",
            crate::path_repr::shown(root),
            IMAGE_EXTENSIONS.join(", ")
        )));
    }
    Ok((files, unnamed))
}

impl GroundTruth {
    /// Loads a labelled table: a header line (optional: its first column has no `.` and names
    /// no file, its second is no whole number), then `file<TAB>label` lines (extra columns
    /// ignored); any other label that is not a whole number is refused.
    /// File names are relative to `images_dir`; every listed file must exist there.
    pub fn from_tsv(tsv: &Path, images_dir: &Path) -> Result<Self> {
        let text = read_table(tsv)?;
        let mut names = Vec::new();
        let mut labels = Vec::new();
        let mut first_line: HashMap<String, usize> = HashMap::new();
        let mut class_names: BTreeMap<i64, String> = BTreeMap::new();
        let mut saw_header = false;
        for (lineno, line) in numbered_lines(&text) {
            let cols: Vec<&str> = line.split('\t').collect();
            // the first line is a header only when it cannot be data: its first column has no
            // `.` and names no file in the images folder, and its second is no whole number
            if !saw_header {
                saw_header = true;
                let first = cols[0].trim();
                let header = !first.contains('.')
                    && !images_dir.join(first).exists()
                    && cols.get(1).is_none_or(|l| l.trim().parse::<i64>().is_err());
                if header {
                    continue;
                }
            }
            if cols.len() < 2 {
                return Err(parse_err(
                    tsv,
                    lineno,
                    format!(
                        "expected at least 2 tab-separated columns (file name, integer label), found {}; \
                         separate columns with a TAB, not spaces",
                        cols.len()
                    ),
                ));
            }
            let name = listed_name(cols[0].trim(), images_dir);
            if name.is_empty() {
                return Err(parse_err(tsv, lineno, "empty file name in column 1".into()));
            }
            let label_text = cols[1].trim();
            let label: i64 = label_text.parse().map_err(|e: std::num::ParseIntError| {
                let why = match e.kind() {
                    std::num::IntErrorKind::PosOverflow | std::num::IntErrorKind::NegOverflow => {
                        format!(
                            "label {label_text:?} in column 2 is out of range: give each file a whole-number label from {} to {}",
                            i64::MIN,
                            i64::MAX
                        )
                    }
                    _ => format!(
                        "label {label_text:?} in column 2 is not an integer: give each file a whole-number label (a header line names no image file)"
                    ),
                };
                parse_err(tsv, lineno, why)
            })?;
            if let Some(prev) = first_line.insert(name.clone(), lineno) {
                return Err(parse_err(
                    tsv,
                    lineno,
                    format!(
                        "duplicate file name {name:?} (first listed on line {prev}); list each file once"
                    ),
                ));
            }
            // An optional third column names the class (e.g. `class_name`).
            if let Some(class) = cols.get(2).map(|c| c.trim()).filter(|c| !c.is_empty()) {
                class_names
                    .entry(label)
                    .or_insert_with(|| class.to_string());
            }
            names.push(name);
            labels.push(label);
        }
        if names.is_empty() {
            return Err(parse_err(
                tsv,
                1,
                "no data lines after the header; expected `file<TAB>label` lines".into(),
            ));
        }
        check_exist(tsv, images_dir, &names)?;
        let names_map = labels
            .iter()
            .map(|&l| {
                let name = class_names.get(&l).cloned();
                (l, name.unwrap_or_else(|| l.to_string()))
            })
            .collect();
        Ok(Self::with_labels(
            images_dir.to_path_buf(),
            tsv.to_path_buf(),
            names,
            labels,
            names_map,
        ))
    }

    /// Folder-as-class: every image below `root` belongs to the class named by its parent folder
    /// (relative to `root`, e.g. `cats` or `animals/cats`). The images are those the index walks
    /// by default: hidden files and folders and symbolic links are skipped.
    pub fn from_folders(root: &Path) -> Result<Self> {
        Self::from_folders_walked(root, &CrawlConfig::default())
    }

    /// As [`from_folders`](Self::from_folders), the folder walked with `walk`'s options (an
    /// index's recorded `--hidden`, `--follow-symlinks`, globs).
    pub fn from_folders_walked(root: &Path, walk: &CrawlConfig) -> Result<Self> {
        let (files, unnamed) = sorted_images_below(
            root,
            walk,
            "--labels folders needs a folder with one sub-folder per class",
        )?;
        let loose: Vec<&String> = files.iter().filter(|f| !f.contains('/')).collect();
        if !loose.is_empty() {
            return Err(Error::InvalidInput(format!(
                "{}: {} image(s) lie directly in the root and have no class folder ({}); \
                 move them into a sub-folder named after their class",
                crate::path_repr::shown(root),
                loose.len(),
                list_some(loose.iter().map(|s| s.as_str()))
            )));
        }
        let class_of = |f: &str| f[..f.rfind('/').unwrap_or(0)].to_string();
        let classes: Vec<String> = {
            let set: std::collections::BTreeSet<String> =
                files.iter().map(|f| class_of(f)).collect();
            set.into_iter().collect()
        };
        let class_id: HashMap<&str, i64> = classes
            .iter()
            .enumerate()
            .map(|(i, c)| (c.as_str(), i as i64))
            .collect();
        let labels: Vec<i64> = files
            .iter()
            .map(|f| class_id[class_of(f).as_str()])
            .collect();
        let names_map = classes
            .iter()
            .enumerate()
            .map(|(i, c)| (i as i64, c.clone()))
            .collect();
        Ok(Self::of_folder(root, files, labels, names_map, unnamed))
    }

    /// Every image below `root` as its own class (unlabelled folders: a distorted copy's only
    /// relevant item is its original).
    pub fn from_folders_flat(root: &Path) -> Result<Self> {
        Self::from_folders_flat_walked(root, &CrawlConfig::default())
    }

    /// As [`from_folders_flat`](Self::from_folders_flat), the folder walked with `walk`'s
    /// options.
    pub fn from_folders_flat_walked(root: &Path, walk: &CrawlConfig) -> Result<Self> {
        let (files, unnamed) =
            sorted_images_below(root, walk, "--distort needs a folder of images")?;
        let labels: Vec<i64> = (0..files.len() as i64).collect();
        let names_map = files
            .iter()
            .enumerate()
            .map(|(i, f)| (i as i64, f.clone()))
            .collect();
        Ok(Self::of_folder(root, files, labels, names_map, unnamed))
    }

    /// Loads a query list: each line `query<TAB>relevant[<TAB>relevant...]`, names relative to
    /// `images_dir`. Blank lines and lines starting with `#` are skipped; a first line whose first
    /// column is `query` or `query_file` is taken as a header. Database items are all files named
    /// in the list, in order of first mention; a query listing itself as relevant is not counted.
    pub fn from_query_list(tsv: &Path, images_dir: &Path) -> Result<Self> {
        let text = read_table(tsv)?;
        let mut names: Vec<String> = Vec::new();
        let mut ids: HashMap<String, usize> = HashMap::new();
        let mut queries = Vec::new();
        let mut relevant: HashMap<usize, Vec<usize>> = HashMap::new();
        let mut query_line: HashMap<usize, usize> = HashMap::new();
        let mut intern = |name: String, names: &mut Vec<String>| -> usize {
            *ids.entry(name.clone()).or_insert_with(|| {
                names.push(name);
                names.len() - 1
            })
        };
        let mut first = true;
        for (lineno, line) in numbered_lines(&text) {
            let is_first = std::mem::replace(&mut first, false);
            if line.trim_start().starts_with('#') {
                continue;
            }
            let cols: Vec<&str> = line.split('\t').map(str::trim).collect();
            if is_first
                && matches!(
                    cols[0].to_ascii_lowercase().as_str(),
                    "query" | "query_file"
                )
            {
                continue;
            }
            if cols.len() < 2 {
                return Err(parse_err(
                    tsv,
                    lineno,
                    format!(
                        "expected a query and at least one relevant file separated by TABs, found {} column(s)",
                        cols.len()
                    ),
                ));
            }
            if let Some(i) = cols.iter().position(|c| c.is_empty()) {
                return Err(parse_err(
                    tsv,
                    lineno,
                    format!("column {} is empty; remove doubled or trailing TABs", i + 1),
                ));
            }
            let q = intern(listed_name(cols[0], images_dir), &mut names);
            if let Some(prev) = query_line.insert(q, lineno) {
                return Err(parse_err(
                    tsv,
                    lineno,
                    format!(
                        "duplicate query {:?} (first listed on line {prev}); put all its relevant files on one line",
                        names[q]
                    ),
                ));
            }
            let mut rel = Vec::with_capacity(cols.len() - 1);
            let mut seen = HashSet::new();
            for c in &cols[1..] {
                let r = intern(listed_name(c, images_dir), &mut names);
                if !seen.insert(r) {
                    return Err(parse_err(
                        tsv,
                        lineno,
                        format!(
                            "relevant file {:?} is listed twice for this query",
                            names[r]
                        ),
                    ));
                }
                if r != q {
                    rel.push(r);
                }
            }
            rel.sort_unstable();
            queries.push(q);
            relevant.insert(q, rel);
        }
        if queries.is_empty() {
            return Err(parse_err(
                tsv,
                1,
                "no query lines; expected `query<TAB>relevant[<TAB>relevant...]`".into(),
            ));
        }
        check_exist(tsv, images_dir, &names)?;
        let ids = names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.clone(), i))
            .collect();
        Ok(Self {
            root: images_dir.to_path_buf(),
            source: tsv.to_path_buf(),
            names,
            ids,
            kind: Kind::Queries { queries, relevant },
            unnamed: Vec::new(),
        })
    }

    /// A folder's labelled images, with those left out for their names.
    fn of_folder(
        root: &Path,
        files: Vec<String>,
        labels: Vec<i64>,
        label_names: BTreeMap<i64, String>,
        unnamed: Vec<PathBuf>,
    ) -> Self {
        let (root, source) = (root.to_path_buf(), root.to_path_buf());
        Self {
            unnamed,
            ..Self::with_labels(root, source, files, labels, label_names)
        }
    }

    fn with_labels(
        root: PathBuf,
        source: PathBuf,
        names: Vec<String>,
        labels: Vec<i64>,
        label_names: BTreeMap<i64, String>,
    ) -> Self {
        let mut counts = HashMap::new();
        for &l in &labels {
            *counts.entry(l).or_insert(0) += 1;
        }
        let ids = names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.clone(), i))
            .collect();
        Self {
            root,
            source,
            names,
            ids,
            kind: Kind::Labels {
                labels: labels.into_iter().map(Some).collect(),
                counts,
                names: label_names,
            },
            unnamed: Vec::new(),
        }
    }

    /// Images of the folder whose names are not UTF-8, left out of the evaluation (absolute
    /// paths): a labelled run cannot name them in its figures.
    pub fn unnamed(&self) -> &[PathBuf] {
        &self.unnamed
    }

    /// Number of database items (including distractors added with `add_distractor`).
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// True when there are no items (never the case for a successfully loaded ground truth).
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// The folder item names are relative to.
    pub(crate) fn root(&self) -> &Path {
        &self.root
    }

    /// The file (or folder, for folder-as-class) the ground truth was read from.
    pub(crate) fn source(&self) -> &Path {
        &self.source
    }

    /// Item names (relative, `/`-separated), indexed by item id.
    #[cfg(test)]
    pub(crate) fn names(&self) -> &[String] {
        &self.names
    }

    /// Name of item `id`.
    pub(crate) fn name(&self, id: usize) -> &str {
        &self.names[id]
    }

    /// Full path of item `id` (root joined with its name).
    pub fn path(&self, id: usize) -> PathBuf {
        self.root.join(&self.names[id])
    }

    /// Item id of a relative name (`a/b.jpg`; a leading `./` is accepted, and backslashes as
    /// separators when no item has the name as written).
    pub fn id_of(&self, name: &str) -> Option<usize> {
        self.id_of_exact(name).or_else(|| {
            name.contains('\\')
                .then(|| self.id_of_exact(&name.replace('\\', "/")))
                .flatten()
        })
    }

    /// Item id of a relative name as written (a backslash is part of a name).
    fn id_of_exact(&self, name: &str) -> Option<usize> {
        self.ids.get(&normalise_name(name)).copied()
    }

    /// Item id of a path: relative to the root, or absolute/prefixed with the root.
    pub(crate) fn id_of_path(&self, path: &Path) -> Option<usize> {
        let rel = path.strip_prefix(&self.root).unwrap_or(path);
        rel.to_str().and_then(|s| self.id_of_exact(s))
    }

    /// Adds an item that is relevant to nothing and is never a query (e.g. an indexed image
    /// the ground truth does not mention). Returns its id; an already known name keeps its id.
    pub(crate) fn add_distractor(&mut self, name: &str) -> usize {
        let name = normalise_name(name);
        if let Some(&id) = self.ids.get(&name) {
            return id;
        }
        let id = self.names.len();
        self.names.push(name.clone());
        self.ids.insert(name, id);
        if let Kind::Labels { labels, .. } = &mut self.kind {
            labels.push(None);
        }
        id
    }

    /// Leaves `ids` out of the evaluation: they are no longer queries, nor relevant to any.
    pub(crate) fn leave_out(&mut self, ids: &[usize]) {
        match &mut self.kind {
            Kind::Labels { labels, counts, .. } => {
                for &id in ids {
                    if let Some(l) = labels.get_mut(id).and_then(Option::take)
                        && let Some(n) = counts.get_mut(&l)
                    {
                        *n -= 1;
                    }
                }
            }
            Kind::Queries { queries, relevant } => {
                queries.retain(|q| !ids.contains(q));
                for ids_of in relevant.values_mut() {
                    ids_of.retain(|i| !ids.contains(i));
                }
                for id in ids {
                    relevant.remove(id);
                }
            }
        }
    }

    /// Ids of the items that are queries: every labelled item, or the listed queries.
    pub fn queries(&self) -> Vec<usize> {
        match &self.kind {
            Kind::Labels { labels, .. } => {
                (0..labels.len()).filter(|&i| labels[i].is_some()).collect()
            }
            Kind::Queries { queries, .. } => queries.clone(),
        }
    }

    /// Label of item `id` (labelled ground truth only; `None` for distractors and query lists).
    pub(crate) fn label(&self, id: usize) -> Option<i64> {
        match &self.kind {
            Kind::Labels { labels, .. } => labels.get(id).copied().flatten(),
            Kind::Queries { .. } => None,
        }
    }

    /// Labels of all items when every item is labelled (what peer_baseline.py's `scores` takes).
    #[cfg(test)]
    pub(crate) fn labels(&self) -> Option<Vec<i64>> {
        match &self.kind {
            Kind::Labels { labels, .. } => labels.iter().copied().collect(),
            Kind::Queries { .. } => None,
        }
    }

    /// True when relevance comes from labels (so N-S and per-class figures are meaningful).
    #[cfg(test)]
    pub(crate) fn is_labelled(&self) -> bool {
        matches!(self.kind, Kind::Labels { .. })
    }

    /// Display name of a label: the class folder, the table's class name, else the number.
    pub(crate) fn label_name(&self, label: i64) -> String {
        match &self.kind {
            Kind::Labels { names, .. } => names
                .get(&label)
                .cloned()
                .unwrap_or_else(|| label.to_string()),
            Kind::Queries { .. } => label.to_string(),
        }
    }

    /// Relevant item ids of a query (query itself excluded), in id order.
    #[cfg(test)]
    pub(crate) fn relevant_items(&self, query: usize) -> Vec<usize> {
        match &self.kind {
            Kind::Labels { labels, .. } => match labels.get(query).copied().flatten() {
                Some(l) => (0..labels.len())
                    .filter(|&i| i != query && labels[i] == Some(l))
                    .collect(),
                None => Vec::new(),
            },
            Kind::Queries { relevant, .. } => relevant.get(&query).cloned().unwrap_or_default(),
        }
    }
}

impl Relevance for GroundTruth {
    fn is_relevant(&self, query: usize, item: usize) -> bool {
        if query == item {
            return false;
        }
        match &self.kind {
            Kind::Labels { labels, .. } => match (
                labels.get(query).copied().flatten(),
                labels.get(item).copied().flatten(),
            ) {
                (Some(a), Some(b)) => a == b,
                _ => false,
            },
            Kind::Queries { relevant, .. } => relevant
                .get(&query)
                .is_some_and(|r| r.binary_search(&item).is_ok()),
        }
    }

    fn num_relevant(&self, query: usize) -> usize {
        match &self.kind {
            Kind::Labels { labels, counts, .. } => labels
                .get(query)
                .copied()
                .flatten()
                .map_or(0, |l| counts[&l] - 1),
            Kind::Queries { relevant, .. } => relevant.get(&query).map_or(0, Vec::len),
        }
    }

    fn class_of(&self, query: usize) -> Option<String> {
        self.label(query).map(|l| self.label_name(l))
    }
}

/// Reads a table file, rejecting missing, unreadable, non-UTF-8 and empty files with a clear message.
fn read_table(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let text = String::from_utf8(bytes).map_err(|e| {
        let upto = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        let line = upto.iter().filter(|&&b| b == b'\n').count() + 1;
        parse_err(
            path,
            line,
            "not valid UTF-8 text; save the file as UTF-8".into(),
        )
    })?;
    // a byte-order mark (spreadsheets write one) is not part of the first name
    let text = match text.strip_prefix('\u{feff}') {
        Some(rest) => rest.to_string(),
        None => text,
    };
    if text.trim().is_empty() {
        return Err(parse_err(
            path,
            1,
            "file is empty; expected a tab-separated table".into(),
        ));
    }
    Ok(text)
}

/// Non-blank lines with 1-based line numbers, without trailing `\r`.
fn numbered_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.strip_suffix('\r').unwrap_or(l)))
        .filter(|(_, l)| !l.trim().is_empty())
}

fn parse_err(path: &Path, line: usize, reason: String) -> Error {
    Error::Parse {
        path: path.to_path_buf(),
        line,
        reason,
    }
}

/// `./a/b.jpg` -> `a/b.jpg`.
/// A name in the index's form: `.` and `a/..` steps resolved (a `..` that leads out of the
/// images folder stays, for [`check_exist`] to refuse). A backslash is part of a name (as on
/// disk); see [`listed_name`] for lists written with backslash separators.
fn normalise_name(s: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    if s.starts_with('/') {
        // absolute: kept so, for `check_exist` to refuse
        parts.push("");
    }
    for part in s.split('/') {
        match part {
            "" | "." => {}
            ".." if parts.last().is_some_and(|p| !p.is_empty() && *p != "..") => {
                parts.pop();
            }
            _ => parts.push(part),
        }
    }
    parts.join("/")
}

/// A name as a list gives it: backslashes are separators (a list written on Windows) unless a
/// file of `images_dir` has the name as written.
fn listed_name(name: &str, images_dir: &Path) -> String {
    if name.contains('\\') && !images_dir.join(name).exists() {
        normalise_name(&name.replace('\\', "/"))
    } else {
        normalise_name(name)
    }
}

fn list_some<'a>(names: impl Iterator<Item = &'a str>) -> String {
    let v: Vec<&str> = names.take(MAX_NAMES_IN_ERROR).collect();
    v.join(", ")
}

/// Fails when listed files are missing below `images_dir`, naming a few and the total count.
fn check_exist(listing: &Path, images_dir: &Path, names: &[String]) -> Result<()> {
    if !images_dir.is_dir() {
        return Err(Error::InvalidInput(format!(
            "{}: images folder does not exist (needed for the files listed in {}); pass the folder the listed names are relative to",
            crate::path_repr::shown(images_dir),
            crate::path_repr::shown(listing)
        )));
    }
    if let Some(absolute) = names.iter().find(|n| n.starts_with('/')) {
        return Err(Error::InvalidInput(format!(
            "{}: {absolute:?} is an absolute path; write each name relative to the images folder {}",
            crate::path_repr::shown(listing),
            crate::path_repr::shown(images_dir)
        )));
    }
    if let Some(outside) = names.iter().find(|n| n.split('/').next() == Some("..")) {
        return Err(Error::InvalidInput(format!(
            "{}: {outside:?} leads out of the images folder {}; write each name relative to that folder",
            crate::path_repr::shown(listing),
            crate::path_repr::shown(images_dir)
        )));
    }
    let missing: Vec<&str> = names
        .iter()
        .filter(|n| !images_dir.join(n).is_file())
        .map(String::as_str)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let more = if missing.len() > MAX_NAMES_IN_ERROR {
        ", ..."
    } else {
        ""
    };
    Err(Error::InvalidInput(format!(
        "{}: {} of {} {} not exist in {}: {}{more}; fix the names or pass the right images folder",
        crate::path_repr::shown(listing),
        missing.len(),
        crate::text::counted(names.len(), "listed file", "listed files"),
        if missing.len() == 1 { "does" } else { "do" },
        crate::path_repr::shown(images_dir),
        list_some(missing.into_iter()),
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn touch(dir: &Path, name: &str) {
        let p = dir.join(name);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, b"x").unwrap();
    }

    #[test]
    fn folder_labels_count_the_files_the_index_crawls() {
        let d = tempfile::tempdir().unwrap();
        for n in [
            "a/1.qoi",
            "a/2.TGA",
            "a/3.ppm",
            "a/4.jpg",
            "b/5.png",
            "b/notes.txt",
        ] {
            touch(d.path(), n);
        }
        fs::write(d.path().join("b/6"), b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR").unwrap();
        // a link to an image, which the index does not follow by default
        #[cfg(unix)]
        std::os::unix::fs::symlink("../a/4.jpg", d.path().join("b/link.jpg")).unwrap();
        let crawled = crate::crawl::crawl(&crate::crawl::CrawlConfig {
            roots: vec![d.path().to_path_buf()],
            ..Default::default()
        })
        .unwrap();
        let crawled: Vec<String> = crawled
            .files
            .iter()
            .map(|f| f.rel_path.to_str().unwrap().replace('\\', "/"))
            .collect();
        let g = GroundTruth::from_folders(d.path()).unwrap();
        assert_eq!(g.names(), crawled.as_slice());
        assert_eq!(
            g.names(),
            ["a/1.qoi", "a/2.TGA", "a/3.ppm", "a/4.jpg", "b/5.png", "b/6"]
        );
        assert_eq!(g.labels(), Some(vec![0, 0, 0, 0, 1, 1]));
    }

    /// A backslash in a name on disk is part of the name: the image is found by its path, as
    /// the index stores it; a list's backslash is a separator only when no file has the name
    /// as written.
    #[cfg(unix)]
    #[test]
    fn a_backslash_is_part_of_a_name_on_disk() {
        let d = tempfile::tempdir().unwrap();
        touch(d.path(), "a/x\\0.jpg");
        touch(d.path(), "b/1.jpg");
        let g = GroundTruth::from_folders(d.path()).unwrap();
        assert_eq!(
            g.id_of_path(Path::new("a/x\\0.jpg")),
            Some(0),
            "{:?}",
            g.names()
        );
        assert_eq!(g.id_of_path(Path::new("a/x/0.jpg")), None);
        let tsv = d.path().join("gt.tsv");
        fs::write(&tsv, "a/x\\0.jpg\t1\nb\\1.jpg\t2\n").unwrap();
        let listed = GroundTruth::from_tsv(&tsv, d.path()).unwrap();
        assert_eq!(listed.names(), ["a/x\\0.jpg", "b/1.jpg"]);
        assert_eq!(listed.id_of("b\\1.jpg"), Some(1));
    }

    /// An image whose name is not UTF-8 is left out of a folder's evaluation, and named, not
    /// a reason to refuse the whole folder.
    #[cfg(target_os = "linux")]
    #[test]
    fn an_image_named_in_other_bytes_is_left_out_not_refused() {
        use std::os::unix::ffi::OsStrExt;
        let d = tempfile::tempdir().unwrap();
        touch(d.path(), "a/0.jpg");
        touch(d.path(), "b/1.jpg");
        let odd = d
            .path()
            .join("b")
            .join(std::ffi::OsStr::from_bytes(b"z\xff.jpg"));
        fs::write(&odd, b"x").unwrap();
        let g = GroundTruth::from_folders(d.path()).unwrap();
        assert_eq!(g.names(), ["a/0.jpg", "b/1.jpg"]);
        assert_eq!(g.unnamed(), std::slice::from_ref(&odd));
        let flat = GroundTruth::from_folders_flat(d.path()).unwrap();
        assert_eq!(flat.unnamed(), [odd]);
    }

    #[test]
    fn tsv_loads_labels_and_relevance() {
        let d = tempfile::tempdir().unwrap();
        let img = d.path().join("images");
        for n in ["a.jpg", "b.jpg", "c.jpg", "d.jpg"] {
            touch(&img, n);
        }
        let gt = d.path().join("groundtruth.tsv");
        fs::write(
            &gt,
            "filename\tlabel\tname\na.jpg\t0\tx\nb.jpg\t1\ty\r\nc.jpg\t0\n\nd.jpg\t1\n",
        )
        .unwrap();
        let g = GroundTruth::from_tsv(&gt, &img).unwrap();
        assert_eq!(g.len(), 4);
        assert_eq!(g.id_of("./c.jpg"), Some(2));
        assert_eq!(g.id_of_path(&img.join("d.jpg")), Some(3));
        assert!(g.is_relevant(0, 2));
        assert!(!g.is_relevant(0, 0));
        assert!(!g.is_relevant(0, 1));
        assert_eq!(g.num_relevant(1), 1);
        assert_eq!(g.relevant_items(1), vec![3]);
        assert_eq!(g.queries(), vec![0, 1, 2, 3]);
        assert_eq!(g.labels(), Some(vec![0, 1, 0, 1]));
        assert_eq!(g.label_name(0), "x", "the third column names the class");
        assert_eq!(g.class_of(3).as_deref(), Some("y"));
        let unnamed = d.path().join("two.tsv");
        fs::write(&unnamed, "filename\tlabel\na.jpg\t7\n").unwrap();
        let g = GroundTruth::from_tsv(&unnamed, &img).unwrap();
        assert_eq!(g.label_name(7), "7");
        // without a header every line is data; `x/../` steps resolve, leaving the folder is refused
        let bare = d.path().join("bare.tsv");
        fs::write(&bare, "a.jpg\t0\nsub/../b.jpg\t0\nc.jpg\t1\n").unwrap();
        let g = GroundTruth::from_tsv(&bare, &img).unwrap();
        assert_eq!(g.names(), &["a.jpg", "b.jpg", "c.jpg"]);
        let outside = d.path().join("outside.tsv");
        fs::write(&outside, "file\tlabel\n../images/a.jpg\t0\nb.jpg\t0\n").unwrap();
        let e = GroundTruth::from_tsv(&outside, &img)
            .unwrap_err()
            .to_string();
        assert!(e.contains("leads out of the images folder"), "{e}");
        let absolute = d.path().join("absolute.tsv");
        let name = img.join("a.jpg");
        fs::write(&absolute, format!("{}\t0\nb.jpg\t0\n", name.display())).unwrap();
        let e = GroundTruth::from_tsv(&absolute, &img)
            .unwrap_err()
            .to_string();
        assert!(e.contains("absolute path"), "{e}");
        // a byte-order mark before a header-less first row
        let bom = d.path().join("bom.tsv");
        fs::write(&bom, "\u{feff}a.jpg\t0\nb.jpg\t0\n").unwrap();
        let g = GroundTruth::from_tsv(&bom, &img).unwrap();
        assert_eq!(g.names(), &["a.jpg", "b.jpg"]);
    }

    #[test]
    fn distractors_are_never_relevant() {
        let d = tempfile::tempdir().unwrap();
        touch(d.path(), "a/1.jpg");
        touch(d.path(), "a/2.png");
        touch(d.path(), "b/3.JPG");
        touch(d.path(), "b/notes.txt");
        let mut g = GroundTruth::from_folders(d.path()).unwrap();
        assert_eq!(g.names(), &["a/1.jpg", "a/2.png", "b/3.JPG"]);
        let x = g.add_distractor("extra.jpg");
        assert_eq!(x, 3);
        assert_eq!(g.add_distractor("a/1.jpg"), 0);
        assert!(!g.is_relevant(0, x));
        assert_eq!(g.num_relevant(0), 1);
        assert_eq!(g.queries(), vec![0, 1, 2]);
        assert_eq!(g.class_of(2).as_deref(), Some("b"));
        assert_eq!(g.labels(), None);
    }

    #[test]
    fn query_list_relevance_is_per_query() {
        let d = tempfile::tempdir().unwrap();
        for n in ["q1.jpg", "r1.jpg", "r2.jpg", "q2.jpg"] {
            touch(d.path(), n);
        }
        let list = d.path().join("queries.tsv");
        fs::write(
            &list,
            "query\trelevant\nq1.jpg\tr1.jpg\tr2.jpg\tq1.jpg\n# c\nq2.jpg\tr2.jpg\n",
        )
        .unwrap();
        let g = GroundTruth::from_query_list(&list, d.path()).unwrap();
        assert_eq!(g.names(), &["q1.jpg", "r1.jpg", "r2.jpg", "q2.jpg"]);
        assert_eq!(g.queries(), vec![0, 3]);
        assert_eq!(g.num_relevant(0), 2);
        assert!(g.is_relevant(3, 2));
        assert!(!g.is_relevant(3, 1));
        assert!(!g.is_labelled());
    }

    #[test]
    fn errors_name_file_and_line() {
        let d = tempfile::tempdir().unwrap();
        touch(d.path(), "a.jpg");
        touch(d.path(), "b.jpg");
        let gt = d.path().join("gt.tsv");
        let cases = [
            ("", "empty"),
            ("f\tl\n", "no data lines"),
            ("f\tl\na.jpg 0\n", "columns"),
            ("f\tl\na.jpg\tcat\n", "not an integer"),
            (
                "f\tl\na.jpg\t99999999999999999999\n",
                "out of range: give each file a whole-number label from -9223372036854775808 to 9223372036854775807",
            ),
            ("f\tl\na.jpg\t-99999999999999999999\n", "out of range"),
            ("f\tl\na.jpg\t0\nb.jpg\t1\na.jpg\t2\n", "duplicate"),
        ];
        for (content, want) in cases {
            fs::write(&gt, content).unwrap();
            let e = GroundTruth::from_tsv(&gt, d.path()).unwrap_err();
            let msg = e.to_string();
            assert!(msg.contains("gt.tsv"), "{msg}");
            assert!(msg.contains(want), "{msg} should mention {want}");
        }
        // a first line naming an image is data: a label that is no whole number is refused
        for label in ["x", "0.5"] {
            fs::write(&gt, format!("a.jpg\t{label}\nb.jpg\t0\n")).unwrap();
            let msg = GroundTruth::from_tsv(&gt, d.path())
                .unwrap_err()
                .to_string();
            assert!(
                msg.contains("gt.tsv:1:") && msg.contains("not an integer"),
                "{msg}"
            );
        }
        fs::write(&gt, "f\tl\na.jpg\t0\nb.jpg\t1\na.jpg\t2\n").unwrap();
        let msg = GroundTruth::from_tsv(&gt, d.path())
            .unwrap_err()
            .to_string();
        assert!(msg.contains("gt.tsv:4:") && msg.contains("line 2"), "{msg}");
    }

    #[test]
    fn missing_files_are_counted_and_named() {
        let d = tempfile::tempdir().unwrap();
        touch(d.path(), "a.jpg");
        let gt = d.path().join("gt.tsv");
        let mut s = String::from("file\tlabel\na.jpg\t0\n");
        for i in 0..8 {
            s.push_str(&format!("gone{i}.jpg\t1\n"));
        }
        fs::write(&gt, s).unwrap();
        let msg = GroundTruth::from_tsv(&gt, d.path())
            .unwrap_err()
            .to_string();
        assert!(msg.contains("8 of 9"), "{msg}");
        assert!(msg.contains("gone0.jpg") && msg.contains("..."), "{msg}");
        assert!(!msg.contains("gone7.jpg"), "{msg}");
        let missing = d.path().join("nope.tsv");
        let msg = GroundTruth::from_tsv(&missing, d.path())
            .unwrap_err()
            .to_string();
        assert!(msg.contains("nope.tsv"), "{msg}");
    }

    #[test]
    fn folders_reject_loose_images() {
        let d = tempfile::tempdir().unwrap();
        touch(d.path(), "a/1.jpg");
        touch(d.path(), "loose.jpg");
        let msg = GroundTruth::from_folders(d.path()).unwrap_err().to_string();
        assert!(
            msg.contains("loose.jpg") && msg.contains("sub-folder"),
            "{msg}"
        );
    }
}
