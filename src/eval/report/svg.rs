//! SVG charts of the report: series styles, precision-recall and distortion plots, their legend.

use std::fmt::Write as _;

use super::html::escape;
use super::{DistortionPoint, ReportInput};

const PALETTE: &[&str] = &[
    "#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#4b5563", "#ca8a04",
];

/// Colour per family (stable by first appearance), dash per mode (first mode solid).
pub(super) struct Styles {
    families: Vec<String>,
    modes: Vec<String>,
}

impl Styles {
    pub(super) fn new(input: &ReportInput) -> Self {
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

pub(super) fn pr_chart(input: &ReportInput, st: &Styles) -> String {
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

pub(super) fn distortion_charts(input: &ReportInput, st: &Styles) -> String {
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

pub(super) fn legend_html(st: &Styles) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_short() {
        assert_eq!(fmt_tick(0.2), "0.2");
        assert_eq!(fmt_tick(10.0), "10");
        assert_eq!(fmt_tick(-0.0), "0");
        assert_eq!(fmt_tick(0.75), "0.75");
    }
}
