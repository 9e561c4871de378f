//! Reads the published scores of `SCOREBOARD-dev.md`: the table of
//! normalised scores (`| rank | detector | standard | … |`) and the table of
//! optimal thresholds and raw scores (`| detector | standard threshold | … |`).

use std::path::Path;

use crate::{Error, Result, read_text};

/// One published detector.
#[derive(Debug, Clone, PartialEq)]
pub struct Published {
    pub detector: String,
    /// `(profile, normalised score)`, in the column order of the table.
    pub scores: Vec<(String, f64)>,
    /// `(profile, threshold, raw)`, if the second table lists the detector.
    pub thresholds: Vec<(String, f64, f64)>,
}

impl Published {
    pub fn score(&self, profile: &str) -> Option<f64> {
        self.scores
            .iter()
            .find(|(p, _)| p == profile)
            .map(|&(_, s)| s)
    }

    pub fn threshold_and_raw(&self, profile: &str) -> Option<(f64, f64)> {
        self.thresholds
            .iter()
            .find(|(p, _, _)| p == profile)
            .map(|&(_, t, r)| (t, r))
    }
}

/// A markdown table: header cells and body rows.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    pub header: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

fn cells(line: &str) -> Vec<String> {
    let inner = line.trim().trim_start_matches('|').trim_end_matches('|');
    inner.split('|').map(|c| c.trim().to_string()).collect()
}

fn is_rule(line: &str) -> bool {
    let t = line.trim();
    t.starts_with('|') && t.chars().all(|c| matches!(c, '|' | '-' | ':' | ' '))
}

/// Every table of a markdown document.
pub fn tables(markdown: &str) -> Vec<Table> {
    let lines: Vec<&str> = markdown.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i + 1 < lines.len() {
        if lines[i].trim().starts_with('|') && is_rule(lines[i + 1]) {
            let header = cells(lines[i]);
            let mut rows = Vec::new();
            i += 2;
            while i < lines.len() && lines[i].trim().starts_with('|') {
                rows.push(cells(lines[i]));
                i += 1;
            }
            out.push(Table { header, rows });
        } else {
            i += 1;
        }
    }
    out
}

fn number(cell: &str) -> Result<f64> {
    cell.trim_matches('*')
        .parse()
        .map_err(|_| Error::new(format!("not a number: {cell:?}")))
}

/// Parses the scoreboard text; `profiles` are the profile names to read.
pub fn parse(markdown: &str, profiles: &[&str]) -> Result<Vec<Published>> {
    let tables = tables(markdown);
    let scores_table = tables
        .iter()
        .find(|t| t.header.iter().any(|h| h == "rank") && t.header.iter().any(|h| h == "detector"))
        .ok_or_else(|| Error::new("no `| rank | detector | … |` table"))?;
    let col = |t: &Table, name: &str| -> Result<usize> {
        t.header
            .iter()
            .position(|h| h == name)
            .ok_or_else(|| Error::new(format!("no column {name:?} in {:?}", t.header)))
    };
    let det_col = col(scores_table, "detector")?;
    let mut out = Vec::new();
    for row in &scores_table.rows {
        let mut scores = Vec::new();
        for p in profiles {
            let c = col(scores_table, p)?;
            scores.push((
                p.to_string(),
                number(row.get(c).map_or("", String::as_str))?,
            ));
        }
        out.push(Published {
            detector: row.get(det_col).cloned().unwrap_or_default(),
            scores,
            thresholds: Vec::new(),
        });
    }
    let first_profile_threshold = format!("{} threshold", profiles.first().copied().unwrap_or(""));
    if let Some(t) = tables
        .iter()
        .find(|t| t.header.contains(&first_profile_threshold))
    {
        let det_col = col(t, "detector")?;
        for row in &t.rows {
            let name = row.get(det_col).map_or("", String::as_str);
            let Some(entry) = out.iter_mut().find(|p| p.detector == name) else {
                continue;
            };
            for p in profiles {
                let tc = col(t, &format!("{p} threshold"))?;
                let rc = col(t, &format!("{p} raw"))?;
                entry.thresholds.push((
                    p.to_string(),
                    number(row.get(tc).map_or("", String::as_str))?,
                    number(row.get(rc).map_or("", String::as_str))?,
                ));
            }
        }
    }
    Ok(out)
}

/// Reads and parses a scoreboard file.
pub fn load(path: &Path, profiles: &[&str]) -> Result<Vec<Published>> {
    parse(&read_text(path)?, profiles).map_err(|e| Error::new(format!("{}: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
# Title

| rank | detector | standard | reward_low_FP_rate | reward_low_FN_rate |
|---|---|---|---|---|
| 1 | ARTime | 77.04 | 67.70 | 82.29 |
| 16 | null | 0.00 | 0.00 | 0.00 |

text

| detector | standard threshold | standard raw | reward_low_FP_rate threshold | reward_low_FP_rate raw | reward_low_FN_rate threshold | reward_low_FN_rate raw |
|---|---|---|---|---|---|---|
| null | 1.1 | -97.0000 | 1.1 | -97.0000 | 1.1 | -194.0000 |
";

    #[test]
    fn parses_both_tables() {
        let p = parse(SAMPLE, &crate::scorer::PROFILE_NAMES).unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].detector, "ARTime");
        assert_eq!(p[0].score("reward_low_FP_rate"), Some(67.70));
        assert!(p[0].thresholds.is_empty());
        assert_eq!(
            p[1].threshold_and_raw("reward_low_FN_rate"),
            Some((1.1, -194.0))
        );
    }
}
