//! Cost of medic's anomaly models: nanoseconds per observed point and bytes
//! of state per series.
//!
//! ```text
//! nice cargo bench -p medic-detectors --bench models -- --warm-up-time 1 --measurement-time 3
//! ```
//!
//! Every model is first warmed up on one week of a noisy daily cycle
//! sampled every minute (10 080 points, so the seasonal model has found its
//! period); each timed iteration then feeds the next 10 080 points to a
//! clone of the warmed-up model (the clone is not timed). Time per
//! iteration / 10 080 = time per point.
//!
//! Before the timings, the bench prints the state size of each warmed-up
//! model: its serde_json length, `size_of` of the value, and its heap (the
//! bytes a clone allocates, counted by this binary's allocator).

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use medic_detectors::Millis;
use medic_detectors::anomaly::{
    Art, ArtConfig, Cluster, ClusterConfig, Contextual, ContextualConfig, DAY_MS, Ensemble,
    EnsembleConfig, Ewma, EwmaConfig, Model, Multivariate, MultivariateConfig, PageHinkley,
    PageHinkleyConfig, RollingMad, RollingMadConfig, Seasonal, SeasonalConfig,
};
use medic_detectors::forecast::{Forecast, ForecastConfig};
use serde::Serialize;

/// The system allocator, counting the bytes currently allocated.
struct Counting;

static ALLOCATED: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded to the system allocator unchanged.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATED.fetch_add(layout.size(), Ordering::Relaxed);
        // SAFETY: same layout as given.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        ALLOCATED.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: ptr was allocated by System with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATED.fetch_add(new_size, Ordering::Relaxed);
        ALLOCATED.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: forwarded unchanged.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Points per timed iteration (and in the warm-up): one week at 1 minute.
const N: usize = 7 * 1440;

/// A noisy daily cycle every minute, from `from` (in points).
fn series(from: usize) -> Vec<(Millis, f64)> {
    let mut x: u64 = 0x2545_F491_4F6C_DD1D ^ from as u64;
    (from..from + N)
        .map(|i| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let noise = (x >> 11) as f64 / (1u64 << 53) as f64 - 0.5;
            let t = i as Millis * 60_000;
            let day = 2.0 * std::f64::consts::PI * (t % DAY_MS) as f64 / DAY_MS as f64;
            (t, 50.0 + 20.0 * day.sin() + 4.0 * noise)
        })
        .collect()
}

/// Bytes a clone of `m` allocates.
fn heap_of<T: Clone>(m: &T) -> usize {
    let before = ALLOCATED.load(Ordering::Relaxed);
    let c = m.clone();
    let after = ALLOCATED.load(Ordering::Relaxed);
    drop(black_box(c));
    after.saturating_sub(before)
}

fn print_state<T: Clone + Serialize>(name: &str, m: &T) {
    let json = serde_json::to_string(m).expect("state serialises").len();
    let size = std::mem::size_of::<T>();
    let heap = heap_of(m);
    println!(
        "state {name:<18} json {json:>7} B   size_of {size:>4} B   heap {heap:>6} B   total {:>6} B",
        size + heap
    );
}

/// The models benchmarked, fresh.
fn models() -> Vec<(&'static str, Box<dyn BenchModel>)> {
    let with_seasonal = EnsembleConfig {
        seasonal: Some(SeasonalConfig::default()),
        ..EnsembleConfig::default()
    };
    vec![
        (
            "rolling_mad",
            Box::new(RollingMad::new(RollingMadConfig::default())),
        ),
        ("ewma", Box::new(Ewma::new(EwmaConfig::default()))),
        (
            "page_hinkley",
            Box::new(PageHinkley::new(PageHinkleyConfig::default())),
        ),
        (
            "seasonal",
            Box::new(Seasonal::new(SeasonalConfig::default())),
        ),
        (
            "ensemble",
            Box::new(Ensemble::new(EnsembleConfig::default())),
        ),
        ("ensemble_seasonal", Box::new(Ensemble::new(with_seasonal))),
        ("cluster", Box::new(Cluster::new(ClusterConfig::default()))),
        (
            "contextual",
            Box::new(Contextual::new(ContextualConfig::default())),
        ),
        ("art", Box::new(Art::new(ArtConfig::default()))),
        (
            // `model: contextual_art` in medic.
            "contextual_art",
            Box::new(Ensemble::new(EnsembleConfig {
                mad: None,
                ewma: None,
                page_hinkley: None,
                contextual: Some(ContextualConfig::default()),
                art: Some(ArtConfig::default()),
                ..EnsembleConfig::default()
            })),
        ),
        (
            "multivariate_19",
            Box::new(Rows19(Multivariate::new(MultivariateConfig::default()))),
        ),
        (
            "forecast",
            Box::new(Forecast::new(ForecastConfig::default())),
        ),
    ]
}

/// What the bench needs of a model: feed a point, clone, report state.
trait BenchModel {
    fn feed(&mut self, t: Millis, v: f64) -> f64;
    fn boxed_clone(&self) -> Box<dyn BenchModel>;
    fn print_state(&self, name: &str);
}

macro_rules! bench_model {
    ($($model:ty),*) => {$(
        impl BenchModel for $model {
            fn feed(&mut self, t: Millis, v: f64) -> f64 {
                self.observe(t, v).score
            }
            fn boxed_clone(&self) -> Box<dyn BenchModel> {
                Box::new(self.clone())
            }
            fn print_state(&self, name: &str) {
                print_state(name, self);
            }
        }
    )*};
}

bench_model!(
    RollingMad,
    Ewma,
    PageHinkley,
    Seasonal,
    Ensemble,
    Cluster,
    Contextual,
    Art
);

/// The multivariate model fed rows of 19 metrics (as in the ASD dataset)
/// made from each point: the value, shifted copies and noise-free
/// combinations. ns/point is per row of 19 values.
#[derive(Clone)]
struct Rows19(Multivariate);

impl BenchModel for Rows19 {
    fn feed(&mut self, t: Millis, v: f64) -> f64 {
        let mut row = [0.0; 19];
        for (j, r) in row.iter_mut().enumerate() {
            let j = j as f64;
            *r = v * (1.0 + 0.1 * j) + j * (v * 0.37 + j).sin();
        }
        self.0.observe(t, &row).score
    }
    fn boxed_clone(&self) -> Box<dyn BenchModel> {
        Box::new(self.clone())
    }
    fn print_state(&self, name: &str) {
        print_state(name, &self.0);
    }
}

/// The forecasting detector's answer is an Evaluation; its score is the
/// time-to-breach score. Fed as medic feeds it: `observe_change`, which
/// builds an evaluation (and its reason text) only when the state changes.
impl BenchModel for Forecast {
    fn feed(&mut self, t: Millis, v: f64) -> f64 {
        let change = self.observe_change(t, v).map(|e| e.state);
        black_box(change);
        self.score().score
    }
    fn boxed_clone(&self) -> Box<dyn BenchModel> {
        Box::new(self.clone())
    }
    fn print_state(&self, name: &str) {
        print_state(name, self);
    }
}

fn bench_models(c: &mut Criterion) {
    let warm = series(0);
    let timed = series(N);
    let mut group = c.benchmark_group("observe");
    group.throughput(Throughput::Elements(N as u64));
    for (name, mut m) in models() {
        for &(t, v) in &warm {
            m.feed(t, v);
        }
        m.print_state(name);
        group.bench_function(name, |b| {
            b.iter_batched(
                || m.boxed_clone(),
                |mut m| {
                    let mut sum = 0.0;
                    for &(t, v) in &timed {
                        sum += m.feed(t, v);
                    }
                    black_box(sum)
                },
                BatchSize::LargeInput,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, bench_models);
criterion_main!(benches);
