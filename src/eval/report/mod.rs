//! The `--report DIR` output: a self-contained `index.html` (inline CSS and SVG plots, no
//! scripts, no network) with summary and per-class tables, precision-recall curves, distortion
//! robustness plots and contact sheets of the best and worst queries, plus `thumbs/*.jpg` and
//! the input itself as `report.json`.
//!
//! Submodules: `svg` (the charts and their legend) and `html` (the page, its sections and
//! escaping).

pub(crate) mod html;
mod svg;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::eval::distort::Distortion;
use crate::eval::groundtruth::GroundTruth;
use crate::eval::metrics::{Evaluation, Ranking, Relevance, Summary};
use crate::{Error, Result};

use html::render_html;

/// Everything the report shows. The main crate fills it; it is also written as `report.json`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ReportInput {
    /// Page title, e.g. "lookalike evaluation".
    pub title: String,
    /// What was evaluated, e.g. "wang: 1000 images, 10 classes (groundtruth.tsv)".
    pub dataset: String,
    /// Command line / version that produced the figures.
    pub generated_by: String,
    /// One entry per (feature family, search mode).
    pub runs: Vec<RunReport>,
    /// Name of the metric in `distortions` (e.g. "mAP" or "recall@1").
    pub distortion_metric: String,
    /// Robustness measurements, one per (family, mode, distortion).
    pub distortions: Vec<DistortionPoint>,
    /// Contact sheets.
    pub examples: Vec<QueryExamples>,
    /// Free-form remarks shown at the end (caveats, settings).
    pub notes: Vec<String>,
    /// The planted-duplicates benchmark (`eval --duplicates`): pair scores overall and per edit.
    #[serde(default)]
    pub duplicates: Option<crate::eval::duplicates::DuplicateScores>,
}

/// Figures of one feature family under one search mode.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunReport {
    /// "color", "conv", "deconv", "fused", ...
    pub family: String,
    /// "exact" or "hnsw".
    pub mode: String,
    /// Averages over all queries of the run.
    pub summary: Summary,
    /// Extra columns for the summary table, e.g. "recall@10 vs exact" -> "0.9870",
    /// "query ms" -> "1.3". Shown in key order.
    #[serde(default)]
    pub extra: BTreeMap<String, String>,
}

/// One robustness measurement.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DistortionPoint {
    /// Feature family, e.g. "color" or "fused".
    pub family: String,
    /// Search mode, "exact" or "hnsw".
    pub mode: String,
    /// The distortion applied to the queries.
    pub distortion: Distortion,
    /// The metric named by `ReportInput::distortion_metric` (0 to 1).
    pub value: f64,
}

/// Best and worst queries of one run, for contact sheets.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct QueryExamples {
    pub(crate) family: String,
    pub(crate) mode: String,
    /// Queries with the highest AP, best first.
    pub best: Vec<Example>,
    /// Queries with the lowest AP, worst first.
    pub worst: Vec<Example>,
}

/// One query and its top results.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Example {
    /// Image file of the query.
    pub(crate) query: PathBuf,
    /// Short name shown under the thumbnail (relative name).
    pub(crate) name: String,
    /// Class of the query, if any.
    pub(crate) class: Option<String>,
    /// Average precision of the query (0 to 1).
    pub ap: f64,
    pub(crate) num_relevant: usize,
    /// Top results, query itself excluded, best first.
    pub(crate) results: Vec<ExampleHit>,
}

/// One result of an example query.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ExampleHit {
    pub(crate) path: PathBuf,
    pub(crate) name: String,
    pub(crate) relevant: bool,
}

impl QueryExamples {
    /// Picks the `n` best and `n` worst queries by AP (ties: earlier first relevant hit is
    /// better, then lower item id) and their top `k` results (query skipped). `rankings` must be
    /// the ones `eval` was computed from.
    pub fn from_evaluation(
        family: &str,
        mode: &str,
        gt: &GroundTruth,
        eval: &Evaluation,
        rankings: &[Ranking],
        n: usize,
        k: usize,
    ) -> Result<Self> {
        if rankings.len() != eval.per_query.len() {
            return Err(Error::InvalidInput(format!(
                "report examples: {} but {}; pass the rankings the evaluation used",
                crate::text::counted(rankings.len(), "ranking", "rankings"),
                crate::text::counted(eval.per_query.len(), "evaluated query", "evaluated queries")
            )));
        }
        let mut order: Vec<usize> = (0..rankings.len()).collect();
        order.sort_by(|&a, &b| {
            let (ma, mb) = (&eval.per_query[a], &eval.per_query[b]);
            mb.ap
                .total_cmp(&ma.ap)
                .then(
                    ma.first_hit
                        .unwrap_or(usize::MAX)
                        .cmp(&mb.first_hit.unwrap_or(usize::MAX)),
                )
                .then(ma.query.cmp(&mb.query))
        });
        let example = |i: usize| -> Result<Example> {
            let r = &rankings[i];
            let m = &eval.per_query[i];
            if m.query != r.query {
                return Err(Error::InvalidInput(
                    "report examples: rankings and evaluation are in different orders".into(),
                ));
            }
            let results = r
                .items
                .iter()
                .filter(|&&it| it != r.query && it < gt.len())
                .take(k)
                .map(|&it| ExampleHit {
                    path: gt.path(it),
                    name: gt.name(it).to_string(),
                    relevant: gt.is_relevant(r.query, it),
                })
                .collect();
            Ok(Example {
                query: gt.path(r.query),
                name: gt.name(r.query).to_string(),
                class: m.class.clone(),
                ap: m.ap,
                num_relevant: m.num_relevant,
                results,
            })
        };
        let n = n.min(order.len());
        let best = order[..n]
            .iter()
            .map(|&i| example(i))
            .collect::<Result<_>>()?;
        let worst = order[order.len() - n..]
            .iter()
            .rev()
            .map(|&i| example(i))
            .collect::<Result<_>>()?;
        Ok(Self {
            family: family.into(),
            mode: mode.into(),
            best,
            worst,
        })
    }
}

/// What `write_report` produced.
#[derive(Debug, Clone)]
pub struct ReportOutput {
    /// Path of the written `index.html`.
    pub index: PathBuf,
    /// Number of thumbnails written.
    pub thumbnails: usize,
    /// Images that could not be read for a thumbnail (shown as grey boxes), with the reason.
    pub thumbnail_failures: Vec<String>,
}

/// Longest side of thumbnails, pixels.
pub const THUMB_SIZE: u32 = 128;

/// Writes `index.html`, `report.json` and `thumbs/` into `dir` (created if needed).
pub fn write_report(dir: &Path, input: &ReportInput) -> Result<ReportOutput> {
    let thumbs = dir.join("thumbs");
    std::fs::create_dir_all(&thumbs).map_err(|e| Error::io(&thumbs, e))?;
    let mut paths: Vec<&Path> = input
        .examples
        .iter()
        .flat_map(|e| e.best.iter().chain(&e.worst))
        .flat_map(|ex| {
            std::iter::once(ex.query.as_path()).chain(ex.results.iter().map(|h| h.path.as_path()))
        })
        .collect();
    paths.sort();
    paths.dedup();
    let results: Vec<(PathBuf, std::result::Result<String, String>)> = paths
        .par_iter()
        .map(|p| (p.to_path_buf(), make_thumb(p, &thumbs)))
        .collect();
    let mut thumb_of = HashMap::new();
    let mut failures = Vec::new();
    for (p, r) in results {
        match r {
            Ok(name) => {
                thumb_of.insert(p, name);
            }
            Err(e) => failures.push(format!("{}: {e}", crate::path_repr::shown(&p))),
        }
    }
    let html = render_html(input, &thumb_of, &failures);
    let index = dir.join("index.html");
    std::fs::write(&index, html).map_err(|e| Error::io(&index, e))?;
    let json_path = dir.join("report.json");
    let json = serde_json::to_string_pretty(input)
        .map_err(|e| Error::io(&json_path, std::io::Error::other(e)))?;
    std::fs::write(&json_path, json).map_err(|e| Error::io(&json_path, e))?;
    Ok(ReportOutput {
        index,
        thumbnails: thumb_of.len(),
        thumbnail_failures: failures,
    })
}

/// True when `dir` holds only what [`write_report`] writes (and rankings files an evaluation
/// dumped there), its `report.json` read as a report: a report that another may replace.
pub(crate) fn is_report_folder(dir: &Path) -> bool {
    let is_thumb = |name: &str| {
        name.strip_suffix(".jpg")
            .is_some_and(|hex| hex.len() == 16 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
    };
    let own = |entry: &std::fs::DirEntry| {
        let (name, kind) = (entry.file_name(), entry.file_type());
        match (name.to_str(), kind) {
            (Some("index.html" | "report.json"), Ok(k)) => k.is_file(),
            // rankings a run dumped next to its report (`--dump-rankings DIR/FILE`)
            (Some(_), Ok(k)) if k.is_file() => {
                crate::eval::rankings::is_rankings_file(&entry.path()).unwrap_or(false)
            }
            (Some("thumbs"), Ok(k)) if k.is_dir() => {
                std::fs::read_dir(entry.path()).is_ok_and(|mut thumbs| {
                    thumbs.all(|t| {
                        t.is_ok_and(|t| {
                            t.file_type().is_ok_and(|k| k.is_file())
                                && t.file_name().to_str().is_some_and(is_thumb)
                        })
                    })
                })
            }
            _ => false,
        }
    };
    std::fs::read(dir.join("report.json"))
        .is_ok_and(|json| serde_json::from_slice::<ReportInput>(&json).is_ok())
        && std::fs::read_dir(dir).is_ok_and(|mut entries| entries.all(|e| e.is_ok_and(|e| own(&e))))
}

/// Thumbnail file name of an image path (hash of the path).
pub fn thumb_name(path: &Path) -> String {
    format!(
        "{:016x}.jpg",
        crate::eval::stable_hash(path.to_string_lossy().as_bytes())
    )
}

/// Writes the thumbnail of the image at `path` into `thumbs`, the file read as every command
/// reads it (by content, upright), and gives its name.
fn make_thumb(path: &Path, thumbs: &Path) -> std::result::Result<String, String> {
    let cfg = crate::decode::DecodeConfig {
        working_size: THUMB_SIZE,
        ..Default::default()
    };
    let t = crate::decode::decode_file(path, &cfg)
        .map_err(|e| e.to_string())?
        .image;
    let name = thumb_name(path);
    let out = thumbs.join(&name);
    let mut buf = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut buf, 85)
        .encode_image(&t)
        .map_err(|e| e.to_string())?;
    std::fs::write(&out, buf).map_err(|e| format!("{}: {e}", crate::path_repr::shown(&out)))?;
    Ok(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A thumbnail is made from a file as `index` reads it: a TIFF under a RAW name too.
    #[test]
    fn a_thumbnail_is_made_of_a_file_as_index_reads_it() {
        let dir = tempfile::tempdir().unwrap();
        let img = image::RgbImage::from_fn(300, 150, |x, y| image::Rgb([x as u8, y as u8, 9]));
        let path = dir.path().join("scan.nef");
        img.save_with_format(&path, image::ImageFormat::Tiff)
            .unwrap();
        let name = make_thumb(&path, dir.path()).unwrap_or_else(|e| panic!("{e}"));
        let thumb = image::open(dir.path().join(name)).unwrap();
        assert_eq!(
            (thumb.width(), thumb.height()),
            (THUMB_SIZE, THUMB_SIZE / 2)
        );
    }
}
