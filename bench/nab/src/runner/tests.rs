use std::cell::RefCell;
use std::rc::Rc;

use super::*;
use crate::builtin;
use crate::scorer::{Benchmark, DataFile, load_results};
use crate::testutil::{TempDir, synthetic_nab, write};

type Log = Rc<RefCell<Vec<(usize, i64, f64)>>>;

/// Records every call, tagged with the detector instance; answers a score
/// that depends on the number of rows seen so far.
struct Recorder {
    id: usize,
    seen: usize,
    log: Log,
}

impl Streaming for Recorder {
    fn observe(&mut self, t_ms: i64, value: f64) -> f64 {
        self.log.borrow_mut().push((self.id, t_ms, value));
        self.seen += 1;
        1.0 / self.seen as f64
    }
}

struct RecorderFactory {
    made: RefCell<usize>,
    log: Log,
}

impl DetectorFactory for RecorderFactory {
    fn name(&self) -> &str {
        "recorder"
    }

    fn new_for_file(&self) -> Box<dyn Streaming> {
        let mut made = self.made.borrow_mut();
        *made += 1;
        Box::new(Recorder {
            id: *made,
            seen: 0,
            log: self.log.clone(),
        })
    }
}

#[test]
fn feeds_each_file_row_by_row_to_a_fresh_detector() {
    let dir = TempDir::new("runner");
    synthetic_nab(dir.path());
    let corpus = Corpus::load(dir.path()).unwrap();
    let factory = RecorderFactory {
        made: RefCell::new(0),
        log: Rc::default(),
    };
    let scores = run(&corpus, &factory).unwrap();
    assert_eq!(*factory.made.borrow(), corpus.files.len());
    let log = factory.log.borrow();
    let mut expected = Vec::new();
    for (k, f) in corpus.files.iter().enumerate() {
        for i in 0..f.len() {
            expected.push((k + 1, f.times_ms[i], f.values[i]));
        }
    }
    assert_eq!(*log, expected);
    for (f, a) in corpus.files.iter().zip(&scores) {
        assert_eq!(a.len(), f.len());
        assert_eq!(a[0], 1.0);
        assert_eq!(a[3], 0.25);
    }
}

/// Running on prefixes of the files gives prefixes of the scores: nothing
/// a detector answers for row i depends on rows after i.
#[test]
fn scores_do_not_depend_on_later_rows() {
    let dir = TempDir::new("causal");
    synthetic_nab(dir.path());
    let corpus = Corpus::load(dir.path()).unwrap();
    let truncated = Corpus::from_files(
        corpus
            .files
            .iter()
            .map(|f| {
                let cut = f.len() * 2 / 3;
                DataFile {
                    timestamps: f.timestamps[..cut].to_vec(),
                    times_ms: f.times_ms[..cut].to_vec(),
                    value_text: f.value_text[..cut].to_vec(),
                    values: f.values[..cut].to_vec(),
                    windows: Vec::new(),
                    ..f.clone()
                }
            })
            .collect(),
    );
    for name in builtin::NAMES {
        let factory = builtin::factory(name).unwrap();
        let full = run(&corpus, factory.as_ref()).unwrap();
        let part = run(&truncated, factory.as_ref()).unwrap();
        for (a, b) in full.iter().zip(&part) {
            assert_eq!(&a[..b.len()], &b[..], "{name}");
        }
    }
}

struct Constant(f64);

impl Streaming for Constant {
    fn observe(&mut self, _: i64, _: f64) -> f64 {
        self.0
    }
}

struct ConstantFactory(f64);

impl DetectorFactory for ConstantFactory {
    fn name(&self) -> &str {
        "constant"
    }

    fn new_for_file(&self) -> Box<dyn Streaming> {
        Box::new(Constant(self.0))
    }
}

#[test]
fn rejects_scores_outside_0_1() {
    let dir = TempDir::new("range");
    synthetic_nab(dir.path());
    let corpus = Corpus::load(dir.path()).unwrap();
    for bad in [1.5, -0.1, f64::NAN] {
        let err = run(&corpus, &ConstantFactory(bad)).unwrap_err();
        assert!(err.message().contains("must be in [0, 1]"), "{err}");
    }
    assert!(run(&corpus, &ConstantFactory(1.0)).is_ok());
}

#[test]
fn written_results_read_back_exactly() {
    let dir = TempDir::new("write");
    synthetic_nab(dir.path());
    let corpus = Corpus::load(dir.path()).unwrap();
    let out = dir.path().join("out");
    let scores: Vec<Vec<f64>> = corpus
        .files
        .iter()
        .map(|f| {
            (0..f.len())
                .map(|i| (i as f64 * 0.1).sin().abs() / 3.0)
                .collect()
        })
        .collect();
    let det_dir = write_results(&corpus, "mine", &scores, &out).unwrap();
    assert_eq!(det_dir, out.join("mine"));
    assert_eq!(load_results(&corpus, &out, "mine").unwrap(), scores);

    let text = std::fs::read_to_string(out.join("mine/catA/mine_one.csv")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "timestamp,value,anomaly_score,label");
    assert_eq!(lines.len(), 201);
    let f = &corpus.files[0];
    for (i, line) in lines[1..].iter().enumerate() {
        let cols: Vec<&str> = line.split(',').collect();
        assert_eq!(cols[0], f.timestamps[i]);
        assert_eq!(cols[1], f.value_text[i]);
        let label = if (60..=79).contains(&i) || (140..=159).contains(&i) {
            "1"
        } else {
            "0"
        };
        assert_eq!(cols[3], label, "row {i}");
    }

    // Writing again is fine; a stray CSV the scorer would read is not.
    write_results(&corpus, "mine", &scores, &out).unwrap();
    write(&out.join("mine/catA/mine_other.csv"), "x\n");
    let err = write_results(&corpus, "mine", &scores, &out).unwrap_err();
    assert!(err.message().contains("catA/mine_other.csv"), "{err}");
    assert!(write_results(&corpus, "a/b", &scores, &out).is_err());
}

#[test]
fn null_detector_scores_zero_end_to_end() {
    let dir = TempDir::new("null");
    synthetic_nab(dir.path());
    let bench = Benchmark::load(dir.path()).unwrap();
    let out = dir.path().join("results");
    let factory = builtin::factory("null").unwrap();
    run_and_write(&bench.corpus, factory.as_ref(), &out).unwrap();
    for r in bench.score_results(&out, "null").unwrap() {
        assert_eq!(r.score, 0.0, "{}", r.profile);
    }
}
