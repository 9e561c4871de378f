//! The three scores reported side by side, and the threshold choice.

/// Row counts at one threshold.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Counts {
    pub tp: usize,
    pub fp: usize,
    pub fn_: usize,
}

impl Counts {
    pub fn add(&mut self, o: Counts) {
        self.tp += o.tp;
        self.fp += o.fp;
        self.fn_ += o.fn_;
    }

    pub fn f1(&self) -> f64 {
        let d = 2 * self.tp + self.fp + self.fn_;
        if d == 0 {
            0.0
        } else {
            2.0 * self.tp as f64 / d as f64
        }
    }
}

/// Contiguous runs of labelled rows, as `start..end` (end exclusive).
pub fn segments(labels: &[bool]) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, &l) in labels.iter().chain(std::iter::once(&false)).enumerate() {
        match (l, start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                out.push(s..i);
                start = None;
            }
            _ => {}
        }
    }
    out
}

/// Row counts of `flags` against `labels`; with `adjust`, a segment with
/// any flagged row counts as flagged entirely (point adjustment).
pub fn counts(flags: &[bool], labels: &[bool], adjust: bool) -> Counts {
    let mut flags = flags.to_vec();
    if adjust {
        for seg in segments(labels) {
            if flags[seg.clone()].iter().any(|&f| f) {
                flags[seg].iter_mut().for_each(|f| *f = true);
            }
        }
    }
    let mut c = Counts::default();
    for (&f, &l) in flags.iter().zip(labels) {
        match (f, l) {
            (true, true) => c.tp += 1,
            (true, false) => c.fp += 1,
            (false, true) => c.fn_ += 1,
            _ => {}
        }
    }
    c
}

/// Segments with a flagged row among their first `within` rows, and all
/// segments.
pub fn early(flags: &[bool], labels: &[bool], within: usize) -> (usize, usize) {
    let segs = segments(labels);
    let found = segs
        .iter()
        .filter(|s| {
            flags[s.start..s.end.min(s.start + within)]
                .iter()
                .any(|&f| f)
        })
        .count();
    (found, segs.len())
}

/// The threshold (a score value; flagged = score ≥ threshold) with the best
/// pooled row F1 without point adjustment over `(scores, labels)` pairs.
/// Ties go to the higher threshold.
pub fn best_threshold(series: &[(&[f64], &[bool])]) -> (f64, f64) {
    let mut all: Vec<(f64, bool)> = series
        .iter()
        .flat_map(|(s, l)| s.iter().copied().zip(l.iter().copied()))
        .collect();
    all.sort_by(|a, b| b.0.total_cmp(&a.0));
    let positives = all.iter().filter(|p| p.1).count();
    let (mut tp, mut fp) = (0usize, 0usize);
    let mut best = (f64::INFINITY, 0.0);
    let mut i = 0;
    while i < all.len() {
        let th = all[i].0;
        while i < all.len() && all[i].0 == th {
            if all[i].1 {
                tp += 1;
            } else {
                fp += 1;
            }
            i += 1;
        }
        let f1 = 2.0 * tp as f64 / (tp + fp + positives) as f64;
        if f1 > best.1 {
            best = (th, f1);
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn point_adjustment_fills_found_segments() {
        let labels = [false, true, true, true, false, true, true];
        let flags = [false, false, true, false, true, false, false];
        assert_eq!(segments(&labels), vec![1..4, 5..7]);
        let raw = counts(&flags, &labels, false);
        assert_eq!(
            raw,
            Counts {
                tp: 1,
                fp: 1,
                fn_: 4
            }
        );
        let adjusted = counts(&flags, &labels, true);
        assert_eq!(
            adjusted,
            Counts {
                tp: 3,
                fp: 1,
                fn_: 2
            }
        );
        assert_eq!(early(&flags, &labels, 1), (0, 2));
        assert_eq!(early(&flags, &labels, 2), (1, 2));
    }

    #[test]
    fn best_threshold_maximises_f1() {
        let scores = [0.1, 0.9, 0.8, 0.2, 0.7];
        let labels = [false, true, true, false, false];
        let (th, f1) = best_threshold(&[(&scores, &labels)]);
        assert_eq!(th, 0.8);
        assert_eq!(f1, 1.0);
    }
}
