//! Plain-text tables with aligned columns for terminal output (numbers right-aligned).

use crate::eval::metrics::Summary;

/// A table of strings rendered with aligned columns.
#[derive(Debug, Clone, Default)]
pub struct TextTable {
    headers: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl TextTable {
    /// A table with the given column headers.
    pub fn new<S: Into<String>>(headers: impl IntoIterator<Item = S>) -> Self {
        Self {
            headers: headers.into_iter().map(Into::into).collect(),
            rows: Vec::new(),
        }
    }

    /// Appends a row; missing cells are left blank, extra cells are kept (and widen the table).
    pub fn row<S: Into<String>>(&mut self, cells: impl IntoIterator<Item = S>) -> &mut Self {
        self.rows.push(cells.into_iter().map(Into::into).collect());
        self
    }

    /// Renders the table: header, a rule of dashes, rows. Columns are separated by two spaces;
    /// a column whose cells all look numeric is right-aligned. Widths count characters.
    pub fn render(&self) -> String {
        let ncols = self
            .rows
            .iter()
            .map(Vec::len)
            .chain([self.headers.len()])
            .max()
            .unwrap_or(0);
        let cell = |r: &Vec<String>, c: usize| r.get(c).map_or("", String::as_str).to_string();
        let mut widths = vec![0usize; ncols];
        let mut numeric = vec![true; ncols];
        for (c, w) in widths.iter_mut().enumerate() {
            *w = cell(&self.headers, c).chars().count();
            for r in &self.rows {
                let v = cell(r, c);
                *w = (*w).max(v.chars().count());
                if !v.is_empty() && !looks_numeric(&v) {
                    numeric[c] = false;
                }
            }
        }
        let line = |r: &Vec<String>| -> String {
            let parts: Vec<String> = (0..ncols)
                .map(|c| {
                    let v = cell(r, c);
                    let pad = widths[c] - v.chars().count();
                    if numeric[c] {
                        format!("{}{v}", " ".repeat(pad))
                    } else {
                        format!("{v}{}", " ".repeat(pad))
                    }
                })
                .collect();
            parts.join("  ").trim_end().to_string()
        };
        let mut out = String::new();
        out.push_str(&line(&self.headers));
        out.push('\n');
        let rule: Vec<String> = widths.iter().map(|&w| "-".repeat(w)).collect();
        out.push_str(&rule.join("  "));
        out.push('\n');
        for r in &self.rows {
            out.push_str(&line(r));
            out.push('\n');
        }
        out
    }
}

impl std::fmt::Display for TextTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.render())
    }
}

fn looks_numeric(s: &str) -> bool {
    let t = s.trim().trim_end_matches('%');
    (!t.is_empty() && t.parse::<f64>().is_ok()) || t == "-"
}

/// Formats a metric in [0, 1] (or a score such as N-S) with 4 decimals.
pub(crate) fn fmt_metric(v: f64) -> String {
    format!("{v:.4}")
}

/// The standard terminal summary: one row per (family, mode) with mAP, P@k, R@k, NDCG@k, N-S.
/// All summaries are expected to share the same cut-offs (those of the first are used).
pub fn summary_table(runs: &[(&str, &str, &Summary)]) -> TextTable {
    let ks: Vec<usize> = runs
        .first()
        .map(|(_, _, s)| s.precision.iter().map(|a| a.k).collect())
        .unwrap_or_default();
    let mut headers = vec![
        "family".to_string(),
        "mode".into(),
        "queries".into(),
        "mAP".into(),
    ];
    headers.extend(ks.iter().map(|k| format!("P@{k}")));
    headers.extend(ks.iter().map(|k| format!("R@{k}")));
    headers.extend(ks.iter().map(|k| format!("NDCG@{k}")));
    headers.push("N-S".into());
    let mut t = TextTable::new(headers);
    for (family, mode, s) in runs {
        let mut row = vec![
            family.to_string(),
            mode.to_string(),
            s.queries.to_string(),
            fmt_metric(s.map),
        ];
        let get = |v: Option<f64>| v.map_or("-".to_string(), fmt_metric);
        row.extend(ks.iter().map(|&k| get(s.precision_at(k))));
        row.extend(ks.iter().map(|&k| get(s.recall_at(k))));
        row.extend(ks.iter().map(|&k| get(s.ndcg_at(k))));
        row.push(format!("{:.3}", s.ns_score));
        t.row(row);
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_align() {
        let mut t = TextTable::new(["name", "value"]);
        t.row(["colour", "0.5"]).row(["x", "12.25"]);
        let s = t.render();
        let lines: Vec<&str> = s.lines().collect();
        assert_eq!(lines[0], "name    value");
        assert_eq!(lines[1], "------  -----");
        assert_eq!(lines[2], "colour    0.5");
        assert_eq!(lines[3], "x       12.25");
    }

    #[test]
    fn text_columns_left_aligned_and_ragged_rows() {
        let mut t = TextTable::new(["a", "b"]);
        t.row(["1", "yes"]).row(["22"]);
        let s = t.render();
        assert_eq!(s.lines().nth(2).unwrap(), " 1  yes");
        assert_eq!(s.lines().nth(3).unwrap(), "22");
    }
}
