//! The `--report DIR` output: a self-contained `index.html` (inline CSS and SVG plots, no
//! scripts, no network) with summary and per-class tables, precision-recall curves, distortion
//! robustness plots and contact sheets of the best and worst queries, plus `thumbs/*.jpg` and
//! the input itself as `report.json`.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::eval::distort::Distortion;
use crate::eval::groundtruth::GroundTruth;
use crate::eval::metrics::{Evaluation, Ranking, Relevance, Summary};
use crate::{Error, Result};

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
}

/// Figures of one feature family under one search mode.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunReport {
    /// "color", "conv", "deconv", "fused", ...
    pub family: String,
    /// "exact" or "hnsw".
    pub mode: String,
    pub summary: Summary,
    /// Extra columns for the summary table, e.g. "recall@10 vs exact" -> "0.9870",
    /// "query ms" -> "1.3". Shown in key order.
    #[serde(default)]
    pub extra: BTreeMap<String, String>,
}

/// One robustness measurement.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DistortionPoint {
    pub family: String,
    pub mode: String,
    pub distortion: Distortion,
    pub value: f64,
}

/// Best and worst queries of one run, for contact sheets.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct QueryExamples {
    pub family: String,
    pub mode: String,
    pub best: Vec<Example>,
    pub worst: Vec<Example>,
}

/// One query and its top results.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Example {
    /// Image file of the query.
    pub query: PathBuf,
    /// Short name shown under the thumbnail (relative name).
    pub name: String,
    /// Class of the query, if any.
    pub class: Option<String>,
    pub ap: f64,
    pub num_relevant: usize,
    /// Top results, query itself excluded, best first.
    pub results: Vec<ExampleHit>,
}

/// One result of an example query.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExampleHit {
    pub path: PathBuf,
    pub name: String,
    pub relevant: bool,
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
                "report examples: {} rankings but {} evaluated queries; pass the rankings the evaluation used",
                rankings.len(),
                eval.per_query.len()
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
    pub index: PathBuf,
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
            Err(e) => failures.push(format!("{}: {e}", p.display())),
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

/// Thumbnail file name of an image path (hash of the path).
pub fn thumb_name(path: &Path) -> String {
    format!(
        "{:016x}.jpg",
        crate::eval::stable_hash(path.to_string_lossy().as_bytes())
    )
}

fn make_thumb(path: &Path, thumbs: &Path) -> std::result::Result<String, String> {
    let img = image::open(path).map_err(|e| e.to_string())?;
    let t = img.thumbnail(THUMB_SIZE, THUMB_SIZE).to_rgb8();
    let name = thumb_name(path);
    let out = thumbs.join(&name);
    let mut buf = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut buf, 85)
        .encode_image(&t)
        .map_err(|e| e.to_string())?;
    std::fs::write(&out, buf).map_err(|e| format!("{}: {e}", out.display()))?;
    Ok(name)
}

/// Escapes text for HTML element content and attribute values.
pub fn escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            _ => o.push(c),
        }
    }
    o
}

const PALETTE: &[&str] = &[
    "#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#4b5563", "#ca8a04",
];

/// Colour per family (stable by first appearance), dash per mode (first mode solid).
struct Styles {
    families: Vec<String>,
    modes: Vec<String>,
}

impl Styles {
    fn new(input: &ReportInput) -> Self {
        let mut families: Vec<String> = Vec::new();
        let mut modes: Vec<String> = Vec::new();
        let pairs = input
            .runs
            .iter()
            .map(|r| (&r.family, &r.mode))
            .chain(input.distortions.iter().map(|d| (&d.family, &d.mode)));
        for (f, m) in pairs {
            if !families.contains(f) {
                families.push(f.clone());
            }
            if !modes.contains(m) {
                modes.push(m.clone());
            }
        }
        Self { families, modes }
    }
    fn color(&self, family: &str) -> &'static str {
        if family == crate::eval::run::FUSED {
            return "#111827";
        }
        let i = self.families.iter().position(|f| f == family).unwrap_or(0);
        PALETTE[i % PALETTE.len()]
    }
    fn dash(&self, mode: &str) -> &'static str {
        match self.modes.iter().position(|m| m == mode).unwrap_or(0) {
            0 => "",
            1 => "6 4",
            2 => "2 3",
            _ => "8 3 2 3",
        }
    }
}

struct Series {
    name: String,
    /// Drawn thick and on large markers: the fused ranking, which `query` uses.
    emphasis: bool,
    color: &'static str,
    dash: &'static str,
    points: Vec<(f64, f64)>,
}

struct Chart<'a> {
    title: &'a str,
    x_label: &'a str,
    y_label: &'a str,
    x_range: (f64, f64),
    y_range: (f64, f64),
    x_ticks: Vec<f64>,
    y_ticks: Vec<f64>,
    width: f64,
    height: f64,
    legend: bool,
}

fn fmt_tick(v: f64) -> String {
    let s = format!("{v:.2}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" { "0".into() } else { s.to_string() }
}

fn svg_chart(c: &Chart, series: &[Series]) -> String {
    let legend_w = if c.legend { 150.0 } else { 0.0 };
    let (ml, mr, mt, mb) = (48.0, 12.0 + legend_w, 28.0, 40.0);
    let pw = c.width - ml - mr;
    let ph = c.height - mt - mb;
    let (x0, x1) = c.x_range;
    let (y0, y1) = c.y_range;
    let sx = |x: f64| {
        ml + if x1 > x0 {
            (x - x0) / (x1 - x0) * pw
        } else {
            pw / 2.0
        }
    };
    let sy = |y: f64| {
        mt + ph
            - if y1 > y0 {
                (y - y0) / (y1 - y0) * ph
            } else {
                ph / 2.0
            }
    };
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="{w}" height="{h}" viewBox="0 0 {w} {h}" role="img" aria-label="{t}">"#,
        w = c.width,
        h = c.height,
        t = escape(c.title)
    );
    let _ = write!(
        s,
        r#"<text x="{}" y="17" class="ct">{}</text>"#,
        ml,
        escape(c.title)
    );
    let _ = write!(
        s,
        r##"<rect x="{ml}" y="{mt}" width="{pw}" height="{ph}" fill="#fff" stroke="#cbd5e1"/>"##
    );
    for &t in &c.y_ticks {
        let y = sy(t);
        let _ = write!(
            s,
            r##"<line x1="{ml}" x2="{}" y1="{y:.1}" y2="{y:.1}" stroke="#e2e8f0"/><text x="{}" y="{:.1}" class="tk" text-anchor="end">{}</text>"##,
            ml + pw,
            ml - 5.0,
            y + 4.0,
            fmt_tick(t)
        );
    }
    for &t in &c.x_ticks {
        let x = sx(t);
        let _ = write!(
            s,
            r##"<line x1="{x:.1}" x2="{x:.1}" y1="{mt}" y2="{}" stroke="#eef2f7"/><text x="{x:.1}" y="{}" class="tk" text-anchor="middle">{}</text>"##,
            mt + ph,
            mt + ph + 15.0,
            fmt_tick(t)
        );
    }
    let _ = write!(
        s,
        r#"<text x="{}" y="{}" class="al" text-anchor="middle">{}</text>"#,
        ml + pw / 2.0,
        c.height - 6.0,
        escape(c.x_label)
    );
    let _ = write!(
        s,
        r#"<text transform="translate(13 {}) rotate(-90)" class="al" text-anchor="middle">{}</text>"#,
        mt + ph / 2.0,
        escape(c.y_label)
    );
    for (si, se) in series.iter().enumerate() {
        // the fused series stands out; later ones get smaller markers so coinciding points
        // stay visible as rings
        let (radius, width) = if se.emphasis {
            (5.0, 4.0)
        } else {
            ((3.5 - 0.75 * si as f64).max(2.0), 1.5)
        };
        let pts: Vec<String> = se
            .points
            .iter()
            .map(|&(x, y)| format!("{:.1},{:.1}", sx(x), sy(y)))
            .collect();
        if pts.len() > 1 {
            let _ = write!(
                s,
                r#"<polyline fill="none" stroke="{}" stroke-opacity="0.9" stroke-width="{width}" stroke-dasharray="{}" points="{}"><title>{}</title></polyline>"#,
                se.color,
                se.dash,
                pts.join(" "),
                escape(&se.name)
            );
        }
        for &(x, y) in &se.points {
            let _ = write!(
                s,
                r##"<circle cx="{:.1}" cy="{:.1}" r="{radius}" fill="{}" stroke="#fff" stroke-width="1"><title>{}: {} = {:.4}</title></circle>"##,
                sx(x),
                sy(y),
                se.color,
                escape(&se.name),
                fmt_tick(x),
                y
            );
        }
    }
    if c.legend {
        let lx = ml + pw + 14.0;
        for (i, se) in series.iter().enumerate() {
            let y = mt + 8.0 + i as f64 * 18.0;
            let _ = write!(
                s,
                r#"<line x1="{lx}" x2="{}" y1="{y}" y2="{y}" stroke="{}" stroke-width="2.5" stroke-dasharray="{}"/><text x="{}" y="{}" class="lg">{}</text>"#,
                lx + 24.0,
                se.color,
                se.dash,
                lx + 30.0,
                y + 4.0,
                escape(&se.name)
            );
        }
    }
    s.push_str("</svg>");
    s
}

fn pr_chart(input: &ReportInput, st: &Styles) -> String {
    let series: Vec<Series> = input
        .runs
        .iter()
        .map(|r| Series {
            name: format!("{} / {}", r.family, r.mode),
            emphasis: r.family == crate::eval::run::FUSED,
            color: st.color(&r.family),
            dash: st.dash(&r.mode),
            points: r
                .summary
                .pr_curve
                .iter()
                .map(|p| (p.recall, p.precision))
                .collect(),
        })
        .collect();
    let ticks: Vec<f64> = (0..=5).map(|i| f64::from(i) * 0.2).collect();
    svg_chart(
        &Chart {
            title: "Precision-recall (11-point interpolated, mean over queries)",
            x_label: "recall",
            y_label: "precision",
            x_range: (0.0, 1.0),
            y_range: (0.0, 1.0),
            x_ticks: ticks.clone(),
            y_ticks: ticks,
            width: 720.0,
            height: 400.0,
            legend: true,
        },
        &series,
    )
}

fn distortion_charts(input: &ReportInput, st: &Styles) -> String {
    let mut kinds: Vec<&'static str> = Vec::new();
    for d in &input.distortions {
        if !kinds.contains(&d.distortion.kind()) {
            kinds.push(d.distortion.kind());
        }
    }
    let metric = if input.distortion_metric.is_empty() {
        "score"
    } else {
        input.distortion_metric.as_str()
    };
    let vmax = input
        .distortions
        .iter()
        .map(|d| d.value)
        .fold(1.0f64, f64::max)
        .ceil();
    let y_ticks: Vec<f64> = (0..=4).map(|i| vmax * f64::from(i) / 4.0).collect();
    let mut out = String::new();
    for kind in kinds {
        let pts: Vec<&DistortionPoint> = input
            .distortions
            .iter()
            .filter(|d| d.distortion.kind() == kind)
            .collect();
        let mut xs: Vec<f64> = pts.iter().map(|d| d.distortion.strength()).collect();
        xs.sort_by(f64::total_cmp);
        xs.dedup();
        let (lo, hi) = (xs[0], xs[xs.len() - 1]);
        let pad = if hi > lo { (hi - lo) * 0.06 } else { 1.0 };
        // ((family, mode), points), in order of first appearance
        type Group = ((String, String), Vec<(f64, f64)>);
        let mut groups: Vec<Group> = Vec::new();
        for d in &pts {
            let key = (d.family.clone(), d.mode.clone());
            let p = (d.distortion.strength(), d.value);
            match groups.iter_mut().find(|(k, _)| *k == key) {
                Some((_, v)) => v.push(p),
                None => groups.push((key, vec![p])),
            }
        }
        let series: Vec<Series> = groups
            .into_iter()
            .map(|((f, m), mut points)| {
                points.sort_by(|a, b| a.0.total_cmp(&b.0));
                Series {
                    emphasis: f == crate::eval::run::FUSED,
                    name: format!("{f} / {m}"),
                    color: st.color(&f),
                    dash: st.dash(&m),
                    points,
                }
            })
            .collect();
        let title = format!("{metric} vs {kind}");
        out.push_str(&svg_chart(
            &Chart {
                title: &title,
                x_label: &strength_label(kind),
                y_label: metric,
                x_range: (lo - pad, hi + pad),
                y_range: (0.0, vmax),
                x_ticks: xs,
                y_ticks: y_ticks.clone(),
                width: 360.0,
                height: 240.0,
                legend: false,
            },
            &series,
        ));
    }
    out
}

fn strength_label(kind: &str) -> String {
    match kind {
        "blur" => "sigma (px)",
        "motion" => "length (px)",
        "jpeg" => "quality",
        "crop" => "fraction removed",
        "scale" => "factor",
        "rotate" => "degrees",
        "flip" => "(horizontal flip)",
        "brightness" => "delta (x255)",
        "contrast" => "factor",
        "hue" => "degrees",
        "sat" => "saturation factor",
        "noise" => "sigma (x255)",
        other => other,
    }
    .to_string()
}

fn legend_html(st: &Styles) -> String {
    let mut s = String::from(r#"<div class="legend">"#);
    for f in &st.families {
        let _ = write!(
            s,
            r#"<span><i style="background:{}"></i>{}</span>"#,
            st.color(f),
            escape(f)
        );
    }
    for m in &st.modes {
        let _ = write!(
            s,
            r##"<span><svg width="26" height="8"><line x1="0" x2="26" y1="4" y2="4" stroke="#334155" stroke-width="2.5" stroke-dasharray="{}"/></svg>{}</span>"##,
            st.dash(m),
            escape(m)
        );
    }
    s.push_str("</div>");
    s
}

fn summary_html(input: &ReportInput) -> String {
    let ks: Vec<usize> = input
        .runs
        .first()
        .map(|r| r.summary.precision.iter().map(|a| a.k).collect())
        .unwrap_or_default();
    let mut extra_keys: Vec<&String> = input.runs.iter().flat_map(|r| r.extra.keys()).collect();
    extra_keys.sort();
    extra_keys.dedup();
    // columns: (header, value per run); best numeric value per metric column is highlighted
    let mut cols: Vec<(String, Vec<Option<f64>>, usize)> = Vec::new();
    cols.push((
        "mAP".into(),
        input.runs.iter().map(|r| Some(r.summary.map)).collect(),
        4,
    ));
    for &k in &ks {
        cols.push((
            format!("P@{k}"),
            input
                .runs
                .iter()
                .map(|r| r.summary.precision_at(k))
                .collect(),
            4,
        ));
    }
    for &k in &ks {
        cols.push((
            format!("R@{k}"),
            input.runs.iter().map(|r| r.summary.recall_at(k)).collect(),
            4,
        ));
    }
    for &k in &ks {
        cols.push((
            format!("NDCG@{k}"),
            input.runs.iter().map(|r| r.summary.ndcg_at(k)).collect(),
            4,
        ));
    }
    cols.push((
        "N-S".into(),
        input
            .runs
            .iter()
            .map(|r| Some(r.summary.ns_score))
            .collect(),
        3,
    ));
    let mut s = String::from(
        "<table class=\"num\"><thead><tr><th>family</th><th>mode</th><th>queries</th>",
    );
    for (h, _, _) in &cols {
        let _ = write!(s, "<th>{}</th>", escape(h));
    }
    for k in &extra_keys {
        let _ = write!(s, "<th>{}</th>", escape(k));
    }
    s.push_str("</tr></thead><tbody>");
    let best: Vec<Option<f64>> = cols
        .iter()
        .map(|(_, v, _)| v.iter().flatten().copied().reduce(f64::max))
        .collect();
    for (i, r) in input.runs.iter().enumerate() {
        let _ = write!(
            s,
            "<tr><td class=\"t\">{}</td><td class=\"t\">{}</td><td>{}</td>",
            escape(&r.family),
            escape(&r.mode),
            r.summary.queries
        );
        for (c, (_, vals, dec)) in cols.iter().enumerate() {
            match vals[i] {
                Some(v) => {
                    let cls = if input.runs.len() > 1 && Some(v) == best[c] {
                        " class=\"best\""
                    } else {
                        ""
                    };
                    let _ = write!(s, "<td{cls}>{v:.dec$}</td>", dec = *dec);
                }
                None => s.push_str("<td>-</td>"),
            }
        }
        for k in &extra_keys {
            let _ = write!(
                s,
                "<td>{}</td>",
                escape(r.extra.get(*k).map_or("-", String::as_str))
            );
        }
        s.push_str("</tr>");
    }
    s.push_str("</tbody></table>");
    s
}

fn per_class_html(input: &ReportInput) -> String {
    let runs: Vec<&RunReport> = input
        .runs
        .iter()
        .filter(|r| !r.summary.per_class.is_empty())
        .collect();
    if runs.is_empty() {
        return String::new();
    }
    let mut classes: Vec<String> = Vec::new();
    for r in &runs {
        for c in &r.summary.per_class {
            if !classes.contains(&c.class) {
                classes.push(c.class.clone());
            }
        }
    }
    let k = runs[0].summary.per_class[0].k;
    let mut s = String::from(
        "<table class=\"num\"><thead><tr><th rowspan=\"2\">class</th><th rowspan=\"2\">queries</th>",
    );
    for r in &runs {
        let _ = write!(
            s,
            "<th colspan=\"2\" class=\"grp\">{} / {}</th>",
            escape(&r.family),
            escape(&r.mode)
        );
    }
    s.push_str("</tr><tr>");
    for _ in &runs {
        let _ = write!(s, "<th>mAP</th><th>P@{k}</th>");
    }
    s.push_str("</tr></thead><tbody>");
    for class in &classes {
        let n = runs
            .iter()
            .find_map(|r| r.summary.per_class.iter().find(|c| &c.class == class))
            .map_or(0, |c| c.queries);
        let _ = write!(s, "<tr><td class=\"t\">{}</td><td>{n}</td>", escape(class));
        for r in &runs {
            match r.summary.per_class.iter().find(|c| &c.class == class) {
                Some(c) => {
                    let _ = write!(
                        s,
                        "<td>{}{:.4}</td><td>{:.4}</td>",
                        bar(c.map),
                        c.map,
                        c.precision
                    );
                }
                None => s.push_str("<td>-</td><td>-</td>"),
            }
        }
        s.push_str("</tr>");
    }
    s.push_str("</tbody></table>");
    s
}

/// A tiny inline bar for a value in [0, 1].
fn bar(v: f64) -> String {
    format!(
        r#"<span class="bar"><span style="width:{:.0}%"></span></span>"#,
        (v.clamp(0.0, 1.0) * 100.0)
    )
}

fn thumb_html(
    path: &Path,
    name: &str,
    thumbs: &HashMap<PathBuf, String>,
    class: &str,
    caption: &str,
) -> String {
    let img = match thumbs.get(path) {
        Some(t) => format!(
            r#"<img src="thumbs/{}" alt="{}" loading="lazy">"#,
            escape(t),
            escape(name)
        ),
        None => r#"<span class="missing">unreadable</span>"#.to_string(),
    };
    format!(
        r#"<figure class="{class}" title="{}">{img}<figcaption>{}</figcaption></figure>"#,
        escape(name),
        caption
    )
}

fn examples_html(ex: &QueryExamples, thumbs: &HashMap<PathBuf, String>) -> String {
    let mut s = String::new();
    for (title, list) in [("Best queries", &ex.best), ("Worst queries", &ex.worst)] {
        if list.is_empty() {
            continue;
        }
        let _ = write!(s, "<h4>{title}</h4>");
        for e in list {
            s.push_str(r#"<div class="sheet">"#);
            let class = e
                .class
                .as_deref()
                .map(|c| format!("<br>class {}", escape(c)))
                .unwrap_or_default();
            let cap = format!(
                "<b>{}</b>{class}<br>AP {:.3} · {} rel.",
                escape(&short(&e.name)),
                e.ap,
                e.num_relevant
            );
            s.push_str(&thumb_html(&e.query, &e.name, thumbs, "q", &cap));
            for (i, h) in e.results.iter().enumerate() {
                let cls = if h.relevant { "rel" } else { "irr" };
                let cap = format!("{}. {}", i + 1, escape(&short(&h.name)));
                s.push_str(&thumb_html(&h.path, &h.name, thumbs, cls, &cap));
            }
            s.push_str("</div>");
        }
    }
    s
}

/// Shortens long names for captions (keeps the end, which is usually the distinctive part).
fn short(name: &str) -> String {
    let chars: Vec<char> = name.chars().collect();
    if chars.len() <= 18 {
        name.to_string()
    } else {
        format!("…{}", chars[chars.len() - 17..].iter().collect::<String>())
    }
}

const CSS: &str = r#"
:root{--fg:#0f172a;--mut:#64748b;--line:#e2e8f0;--bg:#f8fafc;--rel:#16a34a;--irr:#dc2626;--q:#2563eb}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--fg);font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif}
main{max-width:1240px;margin:0 auto;padding:24px 28px 60px}
header h1{margin:0 0 4px;font-size:24px}
header p{margin:2px 0;color:var(--mut)}
section{background:#fff;border:1px solid var(--line);border-radius:10px;padding:16px 20px;margin:18px 0}
h2{font-size:17px;margin:0 0 12px}
h3{font-size:15px;margin:18px 0 6px}
h4{font-size:13px;margin:12px 0 6px;color:var(--mut);text-transform:uppercase;letter-spacing:.04em}
table{border-collapse:collapse;font-size:13px}
th,td{padding:5px 10px;border-bottom:1px solid var(--line);white-space:nowrap}
th{background:#f1f5f9;font-weight:600;text-align:right}
th.grp{text-align:center}
td{text-align:right;font-variant-numeric:tabular-nums}
td.t,th:first-child{text-align:left}
tbody tr:nth-child(even){background:#fafcff}
td.best{font-weight:700;color:#1d4ed8}
.scroll{overflow-x:auto}
.charts{display:flex;flex-wrap:wrap;gap:12px}
.chart{background:#fff}
.chart .ct{font-size:13px;font-weight:600;fill:var(--fg)}
.chart .tk{font-size:11px;fill:var(--mut)}
.chart .al{font-size:12px;fill:var(--fg)}
.chart .lg{font-size:12px;fill:var(--fg)}
.legend{display:flex;flex-wrap:wrap;gap:16px;margin:0 0 10px;color:var(--fg);font-size:13px}
.legend span{display:inline-flex;align-items:center;gap:6px}
.legend i{display:inline-block;width:14px;height:14px;border-radius:3px}
.bar{display:inline-block;width:60px;height:8px;background:#e2e8f0;border-radius:4px;margin-right:8px;vertical-align:middle;overflow:hidden}
.bar span{display:block;height:100%;background:#60a5fa}
.sheet{display:flex;flex-wrap:wrap;gap:6px;align-items:flex-start;margin:6px 0 10px;padding-bottom:8px;border-bottom:1px dashed var(--line)}
figure{margin:0;width:112px;text-align:center}
figure img,figure .missing{display:block;width:108px;height:84px;object-fit:cover;border:4px solid #cbd5e1;border-radius:4px;background:#e2e8f0}
figure .missing{font-size:11px;color:var(--mut);line-height:76px}
figure.q img,figure.q .missing{border-color:var(--q)}
figure.rel img,figure.rel .missing{border-color:var(--rel)}
figure.irr img,figure.irr .missing{border-color:var(--irr)}
figure.q{margin-right:14px}
figcaption{font-size:11px;color:var(--mut);overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
figure.q figcaption{white-space:normal;color:var(--fg)}
.key{font-size:12px;color:var(--mut);margin:0 0 8px}
.key b.r{color:var(--rel)}.key b.i{color:var(--irr)}.key b.q{color:var(--q)}
ul.notes{margin:0;padding-left:20px;color:var(--fg)}
"#;

fn render_html(
    input: &ReportInput,
    thumbs: &HashMap<PathBuf, String>,
    failures: &[String],
) -> String {
    let st = Styles::new(input);
    let title = if input.title.is_empty() {
        "lookalike evaluation"
    } else {
        input.title.as_str()
    };
    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><title>{}</title><style>{CSS}</style></head><body><main>",
        escape(title)
    );
    let _ = write!(h, "<header><h1>{}</h1>", escape(title));
    if !input.dataset.is_empty() {
        let _ = write!(h, "<p>{}</p>", escape(&input.dataset));
    }
    if !input.generated_by.is_empty() {
        let _ = write!(h, "<p><code>{}</code></p>", escape(&input.generated_by));
    }
    h.push_str("</header>");
    if !input.runs.is_empty() {
        h.push_str("<section><h2>Summary</h2><p class=\"key\">Means over all queries; the query itself is excluded except in N-S (UKBench score: query-or-relevant items in the top 4). Best value per column in bold.</p><div class=\"scroll\">");
        h.push_str(&summary_html(input));
        h.push_str("</div></section>");
        h.push_str("<section><h2>Precision-recall</h2>");
        h.push_str(&pr_chart(input, &st));
        h.push_str("</section>");
    }
    if !input.distortions.is_empty() {
        let _ = write!(
            h,
            "<section><h2>Robustness to distortions</h2><p class=\"key\">{} of distorted queries against the undistorted database, by distortion strength.</p>",
            escape(if input.distortion_metric.is_empty() {
                "score"
            } else {
                &input.distortion_metric
            })
        );
        h.push_str(&legend_html(&st));
        h.push_str("<div class=\"charts\">");
        h.push_str(&distortion_charts(input, &st));
        h.push_str("</div></section>");
    }
    let per_class = per_class_html(input);
    if !per_class.is_empty() {
        h.push_str("<section><h2>Per class</h2><div class=\"scroll\">");
        h.push_str(&per_class);
        h.push_str("</div></section>");
    }
    if !input.examples.is_empty() {
        h.push_str("<section><h2>Example queries</h2><p class=\"key\"><b class=\"q\">blue</b>: query · <b class=\"r\">green</b>: relevant result · <b class=\"i\">red</b>: irrelevant result (query itself skipped).</p>");
        for ex in &input.examples {
            let _ = write!(h, "<h3>{} / {}</h3>", escape(&ex.family), escape(&ex.mode));
            h.push_str(&examples_html(ex, thumbs));
        }
        h.push_str("</section>");
    }
    if !input.notes.is_empty() || !failures.is_empty() {
        h.push_str("<section><h2>Notes</h2><ul class=\"notes\">");
        for n in &input.notes {
            let _ = write!(h, "<li>{}</li>", escape(n));
        }
        if !failures.is_empty() {
            let _ = write!(
                h,
                "<li>{} image(s) could not be read for thumbnails, e.g. {}</li>",
                failures.len(),
                escape(&failures[0])
            );
        }
        h.push_str("</ul></section>");
    }
    h.push_str("</main></body></html>\n");
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::metrics::{EvalConfig, LabelRelevance, evaluate};

    #[test]
    fn escapes_markup() {
        assert_eq!(
            escape("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }

    #[test]
    fn ticks_are_short() {
        assert_eq!(fmt_tick(0.2), "0.2");
        assert_eq!(fmt_tick(10.0), "10");
        assert_eq!(fmt_tick(-0.0), "0");
        assert_eq!(fmt_tick(0.75), "0.75");
    }

    #[test]
    fn html_has_all_sections_and_no_scripts() {
        let rel = LabelRelevance::new(vec![0, 0, 1, 1]);
        let rankings: Vec<Ranking> = (0..4)
            .map(|q| Ranking {
                query: q,
                items: vec![q, (q + 1) % 4, (q + 2) % 4, (q + 3) % 4],
            })
            .collect();
        let e = evaluate(&rankings, &rel, &EvalConfig::default()).unwrap();
        let input = ReportInput {
            title: "t <x>".into(),
            runs: vec![RunReport {
                family: "color".into(),
                mode: "exact".into(),
                summary: e.summary.clone(),
                extra: BTreeMap::from([("query ms".to_string(), "1.5".to_string())]),
            }],
            distortion_metric: "recall@1".into(),
            distortions: vec![
                DistortionPoint {
                    family: "color".into(),
                    mode: "exact".into(),
                    distortion: "blur:1".parse().unwrap(),
                    value: 0.9,
                },
                DistortionPoint {
                    family: "color".into(),
                    mode: "exact".into(),
                    distortion: "blur:3".parse().unwrap(),
                    value: 0.5,
                },
                DistortionPoint {
                    family: "color".into(),
                    mode: "exact".into(),
                    distortion: Distortion::Flip,
                    value: 0.7,
                },
            ],
            ..Default::default()
        };
        let html = render_html(&input, &HashMap::new(), &[]);
        assert!(html.contains("t &lt;x&gt;"));
        assert!(!html.contains("<script"));
        assert!(
            !html.contains("src=\"http") && !html.contains("href=\"http") && !html.contains("url(")
        );
        assert!(html.contains("recall@1 vs blur"));
        assert!(html.contains("recall@1 vs flip"));
        assert!(html.contains("Per class"));
        assert!(html.contains("query ms"));
        assert_eq!(html.matches("<svg xmlns").count(), 3);
    }
}
