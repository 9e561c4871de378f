//! The ASD files: `omi-N_train.csv`, `omi-N_test.csv` (with a `label`
//! column) and `interpretation_label/omi-N.txt`.

use std::path::Path;

/// One entity (service) of the dataset.
pub struct Entity {
    /// Unlabelled, mostly normal history.
    pub train: Vec<Vec<f64>>,
    /// Rows to score.
    pub test: Vec<Vec<f64>>,
    /// 1 = anomalous test row.
    pub labels: Vec<bool>,
    /// Labelled segments with the metrics at fault (0-based metric
    /// indices; test rows `start..=end`, 0-based).
    pub faults: Vec<Fault>,
}

/// One line of `interpretation_label/omi-N.txt`.
pub struct Fault {
    pub start: usize,
    pub end: usize,
    pub metrics: Vec<usize>,
}

/// Reads entity `omi-{n}` from `dir`.
pub fn load(dir: &Path, n: usize) -> Result<Entity, String> {
    let name = format!("omi-{n}");
    let train = read_csv(&dir.join(format!("{name}_train.csv")))?;
    let test = read_csv(&dir.join(format!("{name}_test.csv")))?;
    let (labels, test): (Vec<bool>, Vec<Vec<f64>>) = test
        .into_iter()
        .map(|mut r| {
            let label = r.pop().unwrap_or(0.0) != 0.0;
            (label, r)
        })
        .unzip();
    let path = dir.join("interpretation_label").join(format!("{name}.txt"));
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let faults = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(i, line)| {
            parse_fault(line)
                .ok_or_else(|| format!("{}:{}: bad line {line:?}", path.display(), i + 1))
        })
        .collect::<Result<_, _>>()?;
    Ok(Entity {
        train,
        test,
        labels,
        faults,
    })
}

/// `start-end:m,m,…`: 0-based test rows, both ends included (75 of the 77
/// lines match the `label` column exactly so, none as 1-based rows), and
/// 1-based metrics.
fn parse_fault(line: &str) -> Option<Fault> {
    let (rows, metrics) = line.trim().split_once(':')?;
    let (start, end) = rows.split_once('-')?;
    let metrics = metrics
        .split(',')
        .map(|m| m.trim().parse::<usize>().ok()?.checked_sub(1))
        .collect::<Option<Vec<_>>>()?;
    Some(Fault {
        start: start.trim().parse().ok()?,
        end: end.trim().parse().ok()?,
        metrics,
    })
}

fn read_csv(path: &Path) -> Result<Vec<Vec<f64>>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    text.lines()
        .skip(1)
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, line)| {
            line.split(',')
                .map(|v| v.trim().parse::<f64>())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("{}:{}: {e}", path.display(), i + 2))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_an_interpretation_line() {
        let f = parse_fault("760-765:4,5,19").unwrap();
        assert_eq!((f.start, f.end), (760, 765));
        assert_eq!(f.metrics, vec![3, 4, 18]);
        assert!(parse_fault("760:4").is_none());
    }
}
