//! The final report: a human table and a JSON document.

use std::path::PathBuf;

/// What a scenario produced.
pub(crate) struct Report {
    pub(crate) title: String,
    pub(crate) header: Vec<&'static str>,
    pub(crate) rows: Vec<Vec<String>>,
    pub(crate) summary: Vec<String>,
    pub(crate) json: serde_json::Value,
    pub(crate) path: Option<PathBuf>,
}

impl Report {
    /// The table for humans.
    pub(crate) fn table(&self) -> String {
        let widths: Vec<usize> = (0..self.header.len())
            .map(|i| {
                self.rows
                    .iter()
                    .map(|r| r.get(i).map_or(0, String::len))
                    .chain([self.header[i].len()])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let line = |cells: Vec<&str>| -> String {
            cells
                .iter()
                .zip(&widths)
                .map(|(c, w)| format!("{c:>w$}"))
                .collect::<Vec<_>>()
                .join("  ")
        };
        let mut out = format!("\n{}\n", self.title);
        out.push_str(&line(self.header.clone()));
        out.push('\n');
        for row in &self.rows {
            out.push_str(&line(row.iter().map(String::as_str).collect()));
            out.push('\n');
        }
        for s in &self.summary {
            out.push_str(s);
            out.push('\n');
        }
        out
    }

    pub(crate) fn json(&self) -> &serde_json::Value {
        &self.json
    }

    pub(crate) fn path(&self) -> Option<&PathBuf> {
        self.path.as_ref()
    }
}
