//! The `--dump-rankings FILE` format: JSON lines that `scripts/crosscheck_eval.py` re-scores.
//!
//! A file holds one or more sections. Each section starts with a header line
//! `{"format":"lookalike-rankings","version":1,"family":"color","mode":"exact",
//!   "groundtruth":"/abs/groundtruth.tsv","images":"/abs/images"}`,
//! followed by one line per query `{"query":"a.jpg","ranking":["a.jpg","b.jpg",...]}` (names
//! relative to the images folder, best first, the query itself included where the search found
//! it; a full ranking of the database lets the cross-check reproduce peer_baseline.py exactly),
//! and optionally ends with `{"summary":{"queries":1000,"map":0.41,"p_at_10":0.62,"ns":2.9}}`,
//! the figures lookalike computed, for the script to compare against.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::eval::groundtruth::GroundTruth;
use crate::eval::metrics::{Ranking, Summary};
use crate::{Error, Result};

/// Value of the header's `format` field.
pub const FORMAT_NAME: &str = "lookalike-rankings";
/// Current format version.
pub const FORMAT_VERSION: u32 = 1;

/// First line of a section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RankingsHeader {
    /// Always [`FORMAT_NAME`].
    pub format: String,
    /// Format version the section was written in (at most [`FORMAT_VERSION`]).
    pub version: u32,
    /// Feature family, e.g. "color", "conv", "deconv", "fused".
    pub family: String,
    /// Search mode, "exact" or "hnsw".
    pub mode: String,
    /// The labelled table the rankings are scored against, if any.
    pub groundtruth: Option<PathBuf>,
    /// The folder names in the rankings are relative to.
    pub images: Option<PathBuf>,
}

impl RankingsHeader {
    /// A header for `family`/`mode`, taking the source and images folder from the ground truth.
    pub fn new(family: &str, mode: &str, gt: &GroundTruth) -> Self {
        let abs = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
        Self {
            format: FORMAT_NAME.into(),
            version: FORMAT_VERSION,
            family: family.into(),
            mode: mode.into(),
            groundtruth: gt.source().is_file().then(|| abs(gt.source())),
            images: Some(abs(gt.root())),
        }
    }
}

/// The figures lookalike computed, written at the end of a section.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DumpSummary {
    pub(crate) queries: usize,
    /// Mean average precision (0 to 1).
    pub map: f64,
    pub(crate) p_at_10: Option<f64>,
    pub(crate) ns: f64,
}

impl From<&Summary> for DumpSummary {
    fn from(s: &Summary) -> Self {
        Self {
            queries: s.queries,
            map: s.map,
            p_at_10: s.precision_at(10),
            ns: s.ns_score,
        }
    }
}

#[derive(Serialize, Deserialize)]
struct QueryLine<S> {
    query: S,
    ranking: Vec<S>,
}

#[derive(Serialize, Deserialize)]
struct SummaryLine {
    summary: DumpSummary,
}

/// Writes a rankings file.
pub struct RankingsWriter<W: Write> {
    out: W,
    path: PathBuf,
    in_section: bool,
}

impl RankingsWriter<BufWriter<File>> {
    /// Creates (truncates) `path`.
    pub fn create(path: &Path) -> Result<Self> {
        let f = File::create(path).map_err(|e| Error::io(path, e))?;
        Ok(Self::from_writer(BufWriter::new(f), path))
    }
}

impl<W: Write> RankingsWriter<W> {
    /// Wraps any writer; `path` is only used in error messages.
    pub(crate) fn from_writer(out: W, path: &Path) -> Self {
        Self {
            out,
            path: path.to_path_buf(),
            in_section: false,
        }
    }

    fn line<T: Serialize>(&mut self, value: &T) -> Result<()> {
        serde_json::to_writer(&mut self.out, value)
            .map_err(|e| Error::io(&self.path, std::io::Error::other(e)))?;
        self.out
            .write_all(b"\n")
            .map_err(|e| Error::io(&self.path, e))
    }

    /// Starts a section (one family/mode).
    pub fn begin(&mut self, header: &RankingsHeader) -> Result<()> {
        self.in_section = true;
        self.line(header)
    }

    /// Writes one query's ranking by name.
    pub fn write_names(&mut self, query: &str, ranking: &[&str]) -> Result<()> {
        if !self.in_section {
            return Err(Error::InvalidInput(
                "rankings writer: call begin() with a header before writing rankings".into(),
            ));
        }
        self.line(&QueryLine {
            query,
            ranking: ranking.to_vec(),
        })
    }

    /// Writes one query's ranking of ground-truth item ids, as names.
    pub fn write_ranking(&mut self, gt: &GroundTruth, ranking: &Ranking) -> Result<()> {
        if let Some(&bad) = ranking
            .items
            .iter()
            .chain([&ranking.query])
            .find(|&&i| i >= gt.len())
        {
            return Err(Error::InvalidInput(format!(
                "rankings writer: item id {bad} is not in the ground truth ({})",
                crate::text::counted(gt.len(), "item", "items")
            )));
        }
        let names: Vec<&str> = ranking.items.iter().map(|&i| gt.name(i)).collect();
        self.write_names(gt.name(ranking.query), &names)
    }

    /// Ends the section with the figures lookalike computed.
    pub fn write_summary(&mut self, summary: &DumpSummary) -> Result<()> {
        self.in_section = false;
        self.line(&SummaryLine { summary: *summary })
    }

    /// Flushes and returns the inner writer.
    pub fn finish(mut self) -> Result<W> {
        self.out.flush().map_err(|e| Error::io(&self.path, e))?;
        Ok(self.out)
    }
}

/// True when the file at `path` starts as a rankings file does (`{"format":"lookalike-rankings"`):
/// one [`RankingsWriter`] wrote, which another dump may replace.
pub(crate) fn is_rankings_file(path: &Path) -> std::io::Result<bool> {
    use std::io::Read;
    let start = format!("{{\"format\":\"{FORMAT_NAME}\"");
    let mut head = Vec::with_capacity(start.len());
    File::open(path)?
        .take(start.len() as u64)
        .read_to_end(&mut head)?;
    Ok(head == start.as_bytes())
}

/// One section read back.
#[derive(Debug, Clone, PartialEq)]
pub struct RankingsSection {
    /// The section's header line.
    pub header: RankingsHeader,
    /// (query name, ranked names).
    pub rankings: Vec<(String, Vec<String>)>,
    /// The figures lookalike computed, when the section ends with a summary line.
    pub summary: Option<DumpSummary>,
}

/// Reads a rankings file written by [`RankingsWriter`].
pub fn read_rankings(path: &Path) -> Result<Vec<RankingsSection>> {
    let f = File::open(path).map_err(|e| Error::io(path, e))?;
    let mut sections: Vec<RankingsSection> = Vec::new();
    for (i, line) in BufReader::new(f).lines().enumerate() {
        let lineno = i + 1;
        let line = line.map_err(|e| Error::io(path, e))?;
        if line.trim().is_empty() {
            continue;
        }
        let bad = |reason: String| Error::Parse {
            path: path.to_path_buf(),
            line: lineno,
            reason,
        };
        let v: serde_json::Value =
            serde_json::from_str(&line).map_err(|e| bad(format!("not JSON: {e}")))?;
        if v.get("format").is_some() {
            let header: RankingsHeader =
                serde_json::from_value(v).map_err(|e| bad(format!("bad section header: {e}")))?;
            if header.format != FORMAT_NAME || header.version > FORMAT_VERSION {
                return Err(bad(format!(
                    "format {:?} version {} is not {FORMAT_NAME} version <= {FORMAT_VERSION}",
                    header.format, header.version
                )));
            }
            sections.push(RankingsSection {
                header,
                rankings: Vec::new(),
                summary: None,
            });
            continue;
        }
        let Some(section) = sections.last_mut() else {
            return Err(bad("data before the first section header line".into()));
        };
        if v.get("summary").is_some() {
            let s: SummaryLine =
                serde_json::from_value(v).map_err(|e| bad(format!("bad summary line: {e}")))?;
            section.summary = Some(s.summary);
        } else {
            let q: QueryLine<String> = serde_json::from_value(v)
                .map_err(|e| bad(format!("expected {{\"query\":..,\"ranking\":[..]}}: {e}")))?;
            section.rankings.push((q.query, q.ranking));
        }
    }
    if sections.is_empty() {
        return Err(Error::Parse {
            path: path.to_path_buf(),
            line: 1,
            reason: "no section header; not a lookalike rankings file".into(),
        });
    }
    Ok(sections)
}
