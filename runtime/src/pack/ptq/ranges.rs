//! Activation ranges from calibration: a histogram per tensor, candidate
//! clipping ranges from min/max, percentiles and an MSE search, and the
//! choice among them by the quantization error each gives on the histogram.

use crate::ir::{DType, Quant};

/// Bins per histogram: fine enough that a bin is far narrower than one of
/// the 255 quantization steps.
const BINS: usize = 2048;

/// How a tensor's clipping range is chosen.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum RangeMethod {
    /// The observed minimum and maximum.
    MinMax,
    /// The central `p` percent of the observed values (two-sided).
    Percentile(f32),
    /// The range, shrunk from min/max, with the least mean squared error.
    Mse,
    /// Every candidate above; the one with the least mean squared error.
    Auto,
}

impl RangeMethod {
    pub fn parse(s: &str) -> Option<RangeMethod> {
        match s {
            "auto" => Some(RangeMethod::Auto),
            "minmax" => Some(RangeMethod::MinMax),
            "mse" => Some(RangeMethod::Mse),
            _ => {
                let p: f32 = s.strip_prefix("percentile")?.parse().ok()?;
                (p > 50.0 && p <= 100.0).then_some(RangeMethod::Percentile(p))
            }
        }
    }
}

/// Observed values of one tensor: exact extremes, then (second pass) a
/// histogram over them.
#[derive(Clone, Debug)]
pub struct Observed {
    pub min: f32,
    pub max: f32,
    counts: Vec<u64>,
}

impl Default for Observed {
    fn default() -> Self {
        Observed {
            min: f32::INFINITY,
            max: f32::NEG_INFINITY,
            counts: Vec::new(),
        }
    }
}

impl Observed {
    /// First pass: widen the extremes to cover `data` (NaNs ignored).
    pub fn extend_range(&mut self, data: &[f32]) {
        for &x in data.iter().filter(|x| x.is_finite()) {
            self.min = self.min.min(x);
            self.max = self.max.max(x);
        }
    }

    /// The histogram's span: the observed range widened to hold zero, which
    /// every quantized range must represent exactly.
    fn span(&self) -> (f32, f32) {
        if self.min > self.max {
            return (0.0, 0.0);
        }
        (self.min.min(0.0), self.max.max(0.0))
    }

    /// Second pass: count `data` into the histogram over the first pass's span.
    pub fn count(&mut self, data: &[f32]) {
        let (lo, hi) = self.span();
        if self.counts.is_empty() {
            self.counts = vec![0; BINS];
        }
        let width = (hi - lo).max(f32::MIN_POSITIVE);
        for &x in data.iter().filter(|x| x.is_finite()) {
            let bin = ((x - lo) / width * BINS as f32) as usize;
            self.counts[bin.min(BINS - 1)] += 1;
        }
    }

    fn bin_center(&self, i: usize) -> f32 {
        let (lo, hi) = self.span();
        lo + (hi - lo) * (i as f32 + 0.5) / BINS as f32
    }

    /// The value below which `fraction` of the counted values lie.
    fn quantile(&self, fraction: f64) -> f32 {
        let total: u64 = self.counts.iter().sum();
        let target = (fraction * total as f64).ceil() as u64;
        let mut seen = 0;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= target.max(1) {
                return self.bin_center(i);
            }
        }
        self.span().1
    }

    /// Mean squared error of quantizing the histogram to `q`: clipping error
    /// outside the grid, a uniform step²/12 inside it.
    fn mse(&self, q: Quant) -> f64 {
        let (qlo, qhi) = q.range();
        let (lo, hi) = (q.dequantize(qlo) as f64, q.dequantize(qhi) as f64);
        let step = q.scale as f64;
        let total: u64 = self.counts.iter().sum();
        let err: f64 = self
            .counts
            .iter()
            .enumerate()
            .filter(|(_, &c)| c > 0)
            .map(|(i, &c)| {
                let x = self.bin_center(i) as f64;
                let e = if x < lo {
                    (lo - x).powi(2)
                } else if x > hi {
                    (x - hi).powi(2)
                } else {
                    step * step / 12.0
                };
                e * c as f64
            })
            .sum();
        err / total.max(1) as f64
    }

    /// The quantization of this tensor under `method`, and the name of the
    /// candidate that won.
    pub fn choose(&self, method: RangeMethod) -> (Quant, &'static str) {
        let (lo, hi) = self.span();
        let minmax = (u8_quant(lo, hi), "minmax");
        let percentile = |p: f32| {
            let tail = (1.0 - p as f64 / 100.0) / 2.0;
            u8_quant(
                self.quantile(tail).min(0.0),
                self.quantile(1.0 - tail).max(0.0),
            )
        };
        let mse_search = || {
            (1..=100)
                .map(|k| {
                    let a = k as f32 / 100.0;
                    u8_quant(lo * a, hi * a)
                })
                .min_by(|a, b| self.mse(*a).total_cmp(&self.mse(*b)))
                .unwrap_or(minmax.0)
        };
        if self.counts.is_empty() {
            return minmax;
        }
        match method {
            RangeMethod::MinMax => minmax,
            RangeMethod::Percentile(p) => (percentile(p), "percentile"),
            RangeMethod::Mse => (mse_search(), "mse"),
            RangeMethod::Auto => [
                minmax,
                (percentile(99.99), "percentile99.99"),
                (percentile(99.9), "percentile99.9"),
                (mse_search(), "mse"),
            ]
            .into_iter()
            .min_by(|a, b| self.mse(a.0).total_cmp(&self.mse(b.0)))
            .unwrap_or(minmax),
        }
    }
}

/// Smallest scale a calibrated tensor gets: a tensor that was always zero
/// still needs a valid (positive) scale.
const MIN_SCALE: f32 = 1e-6;

/// Asymmetric u8 quantization of `[lo, hi]` (which holds 0), with zero
/// exactly representable.
pub fn u8_quant(lo: f32, hi: f32) -> Quant {
    let (lo, hi) = (lo.min(0.0), hi.max(0.0));
    let scale = ((hi - lo) / 255.0).max(MIN_SCALE);
    let zero_point = (-lo / scale).round().clamp(0.0, 255.0) as i32;
    Quant {
        scale,
        zero_point,
        dtype: DType::U8,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn observed(data: &[f32]) -> Observed {
        let mut o = Observed::default();
        o.extend_range(data);
        o.count(data);
        o
    }

    #[test]
    fn u8_quant_represents_zero_and_the_ends() {
        let q = u8_quant(-1.0, 3.0);
        assert_eq!(q.dequantize(q.zero_point), 0.0);
        assert!((q.dequantize(0) + 1.0).abs() <= q.scale);
        assert!((q.dequantize(255) - 3.0).abs() <= q.scale);
        let relu = u8_quant(0.0, 6.0);
        assert_eq!(relu.zero_point, 0);
        assert!(u8_quant(0.0, 0.0).is_valid());
    }

    #[test]
    fn minmax_covers_every_value() {
        let data: Vec<f32> = (0..1000)
            .map(|i| (i as f32 * 0.37).sin() * 4.0 - 1.0)
            .collect();
        let o = observed(&data);
        let (q, _) = o.choose(RangeMethod::MinMax);
        for &x in &data {
            let back = q.dequantize(q.quantize(x));
            assert!((back - x).abs() <= q.scale * 0.5 + 1e-5, "{x} -> {back}");
        }
    }

    #[test]
    fn an_outlier_is_clipped_by_percentile_but_not_minmax() {
        // 10,000 values in [0, 1) and one at 100.
        let mut data: Vec<f32> = (0..10_000).map(|i| i as f32 / 10_000.0).collect();
        data.push(100.0);
        let o = observed(&data);
        let hi = |q: Quant| q.dequantize(255);
        assert!(hi(o.choose(RangeMethod::MinMax).0) >= 99.0);
        assert!(hi(o.choose(RangeMethod::Percentile(99.9)).0) < 2.0);
        // Auto takes the candidate of least error, whichever it is.
        let (auto, _) = o.choose(RangeMethod::Auto);
        for m in [
            RangeMethod::MinMax,
            RangeMethod::Mse,
            RangeMethod::Percentile(99.9),
        ] {
            assert!(o.mse(auto) <= o.mse(o.choose(m).0), "{m:?} beats auto");
        }
    }

    #[test]
    fn mse_clips_a_rare_outlier_only_when_clipping_costs_less() {
        // A million values in [0, 1) and one at 5: a grid up to 5 costs
        // (5/255)²/12 ≈ 3.2e-5 in MSE; clipping at c costs (5-c)²/1e6 plus
        // (c/255)²/12, least (1.4e-5) near c = 2.2.
        let mut data: Vec<f32> = (0..1_000_000).map(|i| i as f32 / 1e6).collect();
        data.push(5.0);
        let o = observed(&data);
        let (mse, _) = o.choose(RangeMethod::Mse);
        let top = mse.dequantize(255);
        assert!((1.8..2.7).contains(&top), "{top}");
        assert!(o.mse(mse) < 0.5 * o.mse(o.choose(RangeMethod::MinMax).0));
        // With ten thousand values the outlier weighs more: kept.
        let mut few: Vec<f32> = (0..10_000).map(|i| i as f32 / 1e4).collect();
        few.push(5.0);
        let (kept, _) = observed(&few).choose(RangeMethod::Mse);
        assert!(kept.dequantize(255) > 4.5, "{}", kept.dequantize(255));
    }

    #[test]
    fn methods_parse() {
        assert_eq!(RangeMethod::parse("auto"), Some(RangeMethod::Auto));
        assert_eq!(
            RangeMethod::parse("percentile99.9"),
            Some(RangeMethod::Percentile(99.9))
        );
        assert_eq!(RangeMethod::parse("percentile20"), None);
        assert_eq!(RangeMethod::parse("entropy"), None);
    }
}
