//! Helpers for unit tests: a throw-away folder and a tiny synthetic NAB folder.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

/// A fresh folder under the system temp dir, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let dir = std::env::temp_dir().join(format!(
            "medic-nab-{tag}-{}-{}-{nanos}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(path, text).expect("write");
}

/// `2020-01-01 00:00:00` plus `i` minutes.
pub fn ts(i: usize) -> String {
    let secs = 1_577_836_800 + 60 * i as i64;
    let day = crate::time::format_date(secs);
    let rem = secs.rem_euclid(86_400);
    format!(
        "{day} {:02}:{:02}:{:02}",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    )
}

pub const PROFILES_JSON: &str = r#"{
"standard": {"CostMatrix": {"tpWeight": 1.0, "fnWeight": 1.0, "fpWeight": 0.11, "tnWeight": 1.0}},
"reward_low_FP_rate": {"CostMatrix": {"tpWeight": 1.0, "fnWeight": 1.0, "fpWeight": 0.22, "tnWeight": 1.0}},
"reward_low_FN_rate": {"CostMatrix": {"tpWeight": 1.0, "fnWeight": 2.0, "fpWeight": 0.11, "tnWeight": 1.0}}
}"#;

/// A small NAB folder: `catA/one.csv` (200 rows, windows at rows 60–79 and
/// 140–159), `catA/two.csv` (120 rows, no window), `catB/three.csv` (150
/// rows, window 100–114, and a repeated timestamp at rows 20/21).
pub fn synthetic_nab(dir: &Path) {
    let data = |rows: usize, dup_at: Option<usize>| {
        let mut s = String::from("timestamp,value\n");
        for i in 0..rows {
            let t = match dup_at {
                Some(d) if i == d + 1 => ts(d),
                Some(d) if i > d + 1 => ts(i - 1),
                _ => ts(i),
            };
            s.push_str(&format!("{t},{}\n", (i % 7) as f64 * 1.5));
        }
        s
    };
    write(&dir.join("data/catA/one.csv"), &data(200, None));
    write(&dir.join("data/catA/two.csv"), &data(120, None));
    write(&dir.join("data/catB/three.csv"), &data(150, Some(20)));
    let w = |a: usize, b: usize| format!("[\"{}.000000\", \"{}.000000\"]", ts(a), ts(b));
    write(
        &dir.join("labels/combined_windows.json"),
        &format!(
            "{{\"catA/one.csv\": [{}, {}], \"catA/two.csv\": [], \"catB/three.csv\": [{}]}}",
            w(140, 159),
            w(60, 79),
            // three.csv repeats ts(20) at row 21, so row r > 21 has ts(r - 1).
            w(99, 113)
        ),
    );
    write(&dir.join("config/profiles.json"), PROFILES_JSON);
}
