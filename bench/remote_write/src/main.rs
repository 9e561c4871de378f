//! `rwload`: drive one remote_write receiver with a synthetic stream and
//! measure it from /proc.
//!
//! ```text
//! rwload --url http://127.0.0.1:9090/api/v1/write --pid 1234 \
//!        --series 100000 --duration 20 --threads 2 --batch 1000
//! ```
//!
//! Phase 1 (memory): every series gets one sample per round for 3 rounds;
//! then the receiver's RSS growth over its idle RSS, divided by the series
//! count, is its memory per active series.
//! Phase 2 (throughput): for `duration` seconds, `threads` clients each own
//! a slice of the series and send their samples (strictly increasing
//! timestamps per series) in requests of `batch` samples. Samples accepted
//! (2xx) per CPU-second of the receiver (utime + stime from
//! /proc/PID/stat) is its ingest rate per core.
//! Prints one JSON object.

use std::time::{Duration, Instant};

use medic_agent::sources::remote_write::proto::{Label, Sample, TimeSeries, WriteRequest};
use prost::Message;

struct Args {
    url: String,
    pid: u32,
    series: usize,
    duration: u64,
    threads: usize,
    batch: usize,
}

fn args() -> Args {
    let mut a = Args {
        url: String::new(),
        pid: 0,
        series: 100_000,
        duration: 20,
        threads: 2,
        batch: 1000,
    };
    let v: Vec<String> = std::env::args().skip(1).collect();
    for w in v.chunks(2) {
        let val = w.get(1).cloned().unwrap_or_default();
        match w[0].as_str() {
            "--url" => a.url = val,
            "--pid" => a.pid = val.parse().expect("--pid"),
            "--series" => a.series = val.parse().expect("--series"),
            "--duration" => a.duration = val.parse().expect("--duration"),
            "--threads" => a.threads = val.parse().expect("--threads"),
            "--batch" => a.batch = val.parse().expect("--batch"),
            other => panic!("unknown argument {other}"),
        }
    }
    assert!(
        !a.url.is_empty() && a.pid > 0,
        "--url and --pid are required"
    );
    a
}

/// utime + stime of a process, in seconds.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    // Fields after the parenthesised command name.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap();
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    ticks / hz
}

/// Resident set size in bytes.
fn rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|k| k.parse::<u64>().ok())
        .unwrap_or(0)
        * 1024
}

fn labels(i: usize) -> Vec<Label> {
    let l = |n: &str, v: String| Label {
        name: n.into(),
        value: v,
    };
    vec![
        l("__name__", format!("bench_metric_{}", i % 50)),
        l(
            "instance",
            format!("10.0.{}.{}:9100", (i / 50) / 250, (i / 50) % 250),
        ),
        l("job", "bench".into()),
        l("region", ["eu", "us", "ap"][i % 3].into()),
    ]
}

fn body(series: &[usize], t_ms: i64, round: u64) -> Vec<u8> {
    let req = WriteRequest {
        timeseries: series
            .iter()
            .map(|&i| TimeSeries {
                labels: labels(i),
                samples: vec![Sample {
                    value: ((i as u64 * 31 + round) % 1000) as f64,
                    timestamp: t_ms,
                }],
            })
            .collect(),
        metadata: vec![],
    };
    snap::raw::Encoder::new()
        .compress_vec(&req.encode_to_vec())
        .unwrap()
}

fn post(c: &reqwest::blocking::Client, url: &str, b: Vec<u8>) -> bool {
    c.post(url)
        .header("Content-Encoding", "snappy")
        .header("Content-Type", "application/x-protobuf")
        .header("X-Prometheus-Remote-Write-Version", "0.1.0")
        .body(b)
        .send()
        .map(|r| r.status().is_success())
        .unwrap_or(false)
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn main() {
    let a = args();
    let client = reqwest::blocking::Client::new();
    let idle_rss = rss(a.pid);
    let all: Vec<usize> = (0..a.series).collect();
    // Timestamps: each round one millisecond later for every series (the
    // receivers see strictly increasing samples per series).
    let t0 = now_ms() - 60_000;
    let mut round = 0u64;
    let mut refused = 0usize;
    for _ in 0..3 {
        for chunk in all.chunks(a.batch) {
            if !post(&client, &a.url, body(chunk, t0 + round as i64, round)) {
                refused += 1;
            }
        }
        round += 1;
    }
    std::thread::sleep(Duration::from_secs(2));
    let loaded_rss = rss(a.pid);

    let cpu0 = cpu_seconds(a.pid);
    let start = Instant::now();
    let deadline = start + Duration::from_secs(a.duration);
    let per = a.series.div_ceil(a.threads);
    let handles: Vec<_> = all
        .chunks(per)
        .map(|slice| {
            let slice = slice.to_vec();
            let url = a.url.clone();
            let batch = a.batch;
            std::thread::spawn(move || {
                let c = reqwest::blocking::Client::new();
                let mut accepted = 0u64;
                let mut r = round;
                while Instant::now() < deadline {
                    for chunk in slice.chunks(batch) {
                        if post(&c, &url, body(chunk, t0 + r as i64, r)) {
                            accepted += chunk.len() as u64;
                        }
                        if Instant::now() >= deadline {
                            break;
                        }
                    }
                    r += 1;
                }
                accepted
            })
        })
        .collect();
    let accepted: u64 = handles.into_iter().map(|h| h.join().unwrap()).sum();
    let wall = start.elapsed().as_secs_f64();
    let cpu = cpu_seconds(a.pid) - cpu0;
    let out = serde_json::json!({
        "series": a.series,
        "idle_rss_bytes": idle_rss,
        "loaded_rss_bytes": loaded_rss,
        "bytes_per_series": (loaded_rss.saturating_sub(idle_rss)) as f64 / a.series as f64,
        "refused_requests_in_load": refused,
        "accepted_samples": accepted,
        "wall_seconds": wall,
        "receiver_cpu_seconds": cpu,
        "samples_per_second": accepted as f64 / wall,
        "samples_per_cpu_second": accepted as f64 / cpu.max(1e-9),
    });
    println!("{out}");
}
