//! The detectors the `nab` binary knows by name.
//!
//! * `null`: always 0. Must score 0.0 on every profile (a pipeline check).
//! * `baseline_gaussian`: a placeholder baseline, a causal windowed Gaussian
//!   tail probability in the spirit of NAB's `windowedGaussian` (window of
//!   6400 values, statistics refreshed every 100 rows once the window is
//!   full, score = 1 − Q(|x − mean| / std)). Not tuned; it is here to check
//!   that runner and scorer agree with the published numbers. medic's real
//!   detectors will live in `detectors/`.
//! * `medic_mad`, `medic_ewma`, `medic_ph`, `medic_seasonal`,
//!   `medic_cluster`, `medic_ensemble`, `medic_ensemble_cluster`,
//!   `medic_contextual`, `medic_art`, `medic_art_contextual`: medic's
//!   anomaly models from
//!   `medic_detectors::anomaly` (see [`medic`]).

use std::collections::VecDeque;

pub mod medic;

use crate::runner::{DetectorFactory, Streaming};

/// Names accepted by [`factory`].
pub const NAMES: [&str; 12] = [
    "null",
    "baseline_gaussian",
    "medic_mad",
    "medic_ewma",
    "medic_ph",
    "medic_seasonal",
    "medic_cluster",
    "medic_ensemble",
    "medic_ensemble_cluster",
    "medic_contextual",
    "medic_art",
    "medic_art_contextual",
];

/// The built-in detector called `name`.
pub fn factory(name: &str) -> Option<Box<dyn DetectorFactory>> {
    match name {
        "null" => Some(Box::new(Null)),
        "baseline_gaussian" => Some(Box::new(BaselineGaussian::default())),
        _ => medic::factory(name).map(|f| Box::new(f) as Box<dyn DetectorFactory>),
    }
}

/// Always answers 0.
#[derive(Debug, Clone, Copy, Default)]
pub struct Null;

impl Streaming for Null {
    fn observe(&mut self, _t_ms: i64, _value: f64) -> f64 {
        0.0
    }
}

impl DetectorFactory for Null {
    fn name(&self) -> &str {
        "null"
    }

    fn new_for_file(&self) -> Box<dyn Streaming> {
        Box::new(Null)
    }
}

/// Parameters of the windowed Gaussian baseline (same for every file).
#[derive(Debug, Clone, Copy)]
pub struct BaselineGaussian {
    /// Values kept in the window.
    pub window: usize,
    /// Once the window is full, it slides by this many values at a time.
    pub step: usize,
}

impl Default for BaselineGaussian {
    fn default() -> Self {
        BaselineGaussian {
            window: 6400,
            step: 100,
        }
    }
}

impl DetectorFactory for BaselineGaussian {
    fn name(&self) -> &str {
        "baseline_gaussian"
    }

    fn new_for_file(&self) -> Box<dyn Streaming> {
        Box::new(GaussianState {
            params: *self,
            window: VecDeque::with_capacity(self.window),
            pending: Vec::with_capacity(self.step),
            mean: 0.0,
            m2: 0.0,
            std: 1.0,
        })
    }
}

struct GaussianState {
    params: BaselineGaussian,
    window: VecDeque<f64>,
    pending: Vec<f64>,
    mean: f64,
    /// Sum of squared deviations (Welford) while the window fills.
    m2: f64,
    std: f64,
}

impl GaussianState {
    fn set_std(&mut self, variance: f64) {
        let std = variance.max(0.0).sqrt();
        self.std = if std == 0.0 { 1e-6 } else { std };
    }

    /// Mean and population standard deviation of the window, two-pass.
    fn recompute(&mut self) {
        let n = self.window.len() as f64;
        let mean = self.window.iter().sum::<f64>() / n;
        let m2: f64 = self.window.iter().map(|x| (x - mean) * (x - mean)).sum();
        self.mean = mean;
        self.m2 = m2;
        self.set_std(m2 / n);
    }
}

impl Streaming for GaussianState {
    fn observe(&mut self, _t_ms: i64, value: f64) -> f64 {
        // Score against the statistics of earlier rows only.
        let score = if self.window.is_empty() || !value.is_finite() {
            0.0
        } else {
            let z = (value - self.mean).abs() / self.std;
            (1.0 - 0.5 * erfc(z / std::f64::consts::SQRT_2)).clamp(0.0, 1.0)
        };
        if !value.is_finite() {
            return score;
        }
        if self.window.len() < self.params.window {
            // Filling: Welford's running update.
            self.window.push_back(value);
            let n = self.window.len() as f64;
            let delta = value - self.mean;
            self.mean += delta / n;
            self.m2 += delta * (value - self.mean);
            let variance = self.m2 / n;
            self.set_std(variance);
        } else {
            self.pending.push(value);
            if self.pending.len() >= self.params.step.max(1) {
                for v in self.pending.drain(..) {
                    self.window.pop_front();
                    self.window.push_back(v);
                }
                self.recompute();
            }
        }
        score
    }
}

/// The complementary error function, to about 1e-14 relative: a positive
/// power series for erf below 1.5, Laplace's continued fraction above.
pub fn erfc(x: f64) -> f64 {
    const FRAC_1_SQRT_PI: f64 = 0.564_189_583_547_756_3;
    if x.is_nan() {
        return f64::NAN;
    }
    if x < 0.0 {
        return 2.0 - erfc(-x);
    }
    if x < 1.5 {
        // erf(x) = 2/√π · e^{−x²} · Σ 2ⁿ x^{2n+1} / (1·3·…·(2n+1))
        let x2 = x * x;
        let mut term = x;
        let mut sum = x;
        let mut n = 0.0;
        while term > sum * 1e-17 {
            n += 1.0;
            term *= 2.0 * x2 / (2.0 * n + 1.0);
            sum += term;
        }
        1.0 - 2.0 * FRAC_1_SQRT_PI * (-x2).exp() * sum
    } else if x > 27.3 {
        0.0
    } else {
        // erfc(x) = e^{−x²}/√π · 1/(x + (1/2)/(x + (2/2)/(x + (3/2)/(x + …))))
        let mut tail = x;
        for k in (1..=120).rev() {
            tail = x + f64::from(k) * 0.5 / tail;
        }
        FRAC_1_SQRT_PI * (-x * x).exp() / tail
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn erfc_matches_reference_values() {
        // Python's math.erfc.
        let cases = [
            (0.0, 1.0),
            (0.1, 0.8875370839817152),
            (0.5, 0.4795001221869535),
            (1.0, 0.15729920705028513),
            (1.5, 0.033894853524689274),
            (2.0, 0.004677734981047265),
            (2.4999, 0.0004071699003334514),
            (2.5, 0.0004069520174449589),
            (3.0, 2.2090496998585438e-05),
            (4.0, 1.541725790028002e-08),
            (5.0, 1.5374597944280351e-12),
            (7.5, 2.776649386030569e-26),
            (10.0, 2.088487583762545e-45),
            (20.0, 5.3958656116079005e-176),
            (26.0, 5.663192408856143e-296),
        ];
        for (x, want) in cases {
            let got = erfc(x);
            assert!(
                ((got - want) / want).abs() < 1e-13,
                "erfc({x}) = {got:e}, want {want:e}"
            );
        }
        assert!((erfc(-1.0) - (2.0 - 0.15729920705028513)).abs() < 1e-15);
        assert_eq!(erfc(40.0), 0.0);
    }

    #[test]
    fn null_is_always_zero() {
        let mut d = Null.new_for_file();
        assert!((0..100).all(|i| d.observe(i, i as f64) == 0.0));
    }

    #[test]
    fn gaussian_flags_a_spike() {
        let mut d = BaselineGaussian::default().new_for_file();
        assert_eq!(d.observe(0, 10.0), 0.0);
        let mut last = 0.0;
        for i in 1..500 {
            last = d.observe(i, 10.0 + (i % 5) as f64 * 0.1);
            assert!((0.0..=1.0).contains(&last));
        }
        assert!(last < 0.99);
        assert_eq!(d.observe(500, 100.0), 1.0);
        // A constant series: std floor, then any change is extreme.
        let mut d = BaselineGaussian::default().new_for_file();
        for i in 0..10 {
            d.observe(i, 3.0);
        }
        assert_eq!(d.observe(10, 3.0), 0.5);
        assert_eq!(d.observe(11, 3.1), 1.0);
    }

    #[test]
    fn gaussian_window_slides() {
        let params = BaselineGaussian {
            window: 50,
            step: 10,
        };
        let mut d = params.new_for_file();
        for i in 0..200 {
            d.observe(i, if i < 100 { 0.0 } else { 1000.0 } + (i % 3) as f64);
        }
        // The window now holds only values near 1000.
        let s = d.observe(200, 1001.0);
        assert!(s < 0.9, "{s}");
    }
}
