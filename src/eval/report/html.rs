//! The report's HTML: escaping, the CSS, summary and per-class tables, contact sheets, the page.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::svg::{Styles, distortion_charts, legend_html, pr_chart};
use super::{QueryExamples, ReportInput, RunReport};

/// Escapes text for HTML element content and attribute values.
pub(crate) fn escape(s: &str) -> String {
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

fn duplicates_html(d: &crate::eval::duplicates::DuplicateScores) -> String {
    let mut s = String::from(
        "<table class=\"num\"><thead><tr><th>edit</th><th>true pairs</th><th>found</th><th>false pairs</th><th>precision</th><th>recall</th><th>F1</th></tr></thead><tbody>",
    );
    let row = |s: &mut String, name: &str, p: &crate::eval::duplicates::PairScore, bold: bool| {
        let (o, c) = if bold { ("<b>", "</b>") } else { ("", "") };
        let _ = write!(
            s,
            "<tr><td class=\"t\">{o}{}{c}</td><td>{}</td><td>{}</td><td>{}</td><td>{o}{:.3}{c}</td><td>{o}{:.3}{c}</td><td>{o}{:.3}{c}</td></tr>",
            escape(name),
            p.found + p.missed,
            p.found,
            p.false_pairs,
            p.precision,
            p.recall,
            p.f1
        );
    };
    for (kind, p) in &d.by_edit {
        row(&mut s, kind, p, false);
    }
    row(&mut s, "all", &d.overall, true);
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

pub(super) fn render_html(
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
    if let Some(d) = &input.duplicates {
        h.push_str("<section><h2>Duplicates</h2><p class=\"key\">Pairs of files that are copies of one photo: found, missed, and false pairs (files of different photos grouped together), overall and by the edit the copy carries.</p><div class=\"scroll\">");
        h.push_str(&duplicates_html(d));
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
                "<li>{} could not be read for thumbnails, e.g. {}</li>",
                crate::text::counted(failures.len(), "image", "images"),
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
    use std::collections::BTreeMap;

    use super::*;
    use crate::eval::distort::Distortion;
    use crate::eval::metrics::{EvalConfig, LabelRelevance, Ranking, evaluate};
    use crate::eval::report::DistortionPoint;

    #[test]
    fn escapes_markup() {
        assert_eq!(
            escape("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
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
            duplicates: Some(crate::eval::duplicates::DuplicateScores {
                overall: crate::eval::duplicates::PairScore {
                    found: 9,
                    false_pairs: 1,
                    missed: 1,
                    precision: 0.9,
                    recall: 0.9,
                    f1: 0.9,
                },
                by_edit: [("<flip>".to_string(), Default::default())].into(),
            }),
            ..Default::default()
        };
        let html = render_html(&input, &HashMap::new(), &[]);
        assert!(html.contains("<h2>Duplicates</h2>"));
        assert!(html.contains("&lt;flip&gt;") && html.contains("<b>0.900</b>"));
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
