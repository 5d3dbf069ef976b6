//! Reductions: Softmax, LogSoftmax and Hardmax, ReduceMean and the other Reduce ops, and LRN
//! (local response normalization).

use crate::ir::ReduceKind;

/// Softmax over `axis` of a tensor of `shape`.
pub fn softmax(x: &[f32], shape: &[usize], axis: usize, y: &mut [f32]) {
    for_each_lane(shape, axis, |base, stride, n| {
        let at = |k: usize| base + k * stride;
        let max = (0..n).map(|k| x[at(k)]).fold(f32::NEG_INFINITY, f32::max);
        let mut sum = 0.0;
        for k in 0..n {
            let e = (x[at(k)] - max).exp();
            y[at(k)] = e;
            sum += e;
        }
        for k in 0..n {
            y[at(k)] /= sum;
        }
    });
}

/// `ln softmax(x)` over `axis`: `x - max - ln Σ e^(x - max)`, exact where
/// the softmax itself would underflow to 0.
pub fn log_softmax(x: &[f32], shape: &[usize], axis: usize, y: &mut [f32]) {
    for_each_lane(shape, axis, |base, stride, n| {
        let at = |k: usize| base + k * stride;
        let max = (0..n).map(|k| x[at(k)]).fold(f32::NEG_INFINITY, f32::max);
        let sum: f32 = (0..n).map(|k| (x[at(k)] - max).exp()).sum();
        let shift = max + sum.ln();
        for k in 0..n {
            y[at(k)] = x[at(k)] - shift;
        }
    });
}

/// LayerNormalization of each of the `outer` rows of `n` values of `x`:
/// `(x - mean) / √(var + epsilon) · scale + bias`; each row's mean and
/// `1/√(var + epsilon)` go to `stats` when given.
pub fn layer_norm(
    x: &[f32],
    n: usize,
    epsilon: f32,
    scale: &[f32],
    bias: Option<&[f32]>,
    y: &mut [f32],
    mut stats: Option<(&mut [f32], &mut [f32])>,
) {
    if n == 0 {
        return;
    }
    for (r, (row, out)) in x.chunks_exact(n).zip(y.chunks_exact_mut(n)).enumerate() {
        let mean = row.iter().map(|&v| v as f64).sum::<f64>() / n as f64;
        let var = row.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n as f64;
        let inv = 1.0 / (var + epsilon as f64).sqrt();
        for (i, (o, &v)) in out.iter_mut().zip(row).enumerate() {
            let b = bias.map_or(0.0, |b| b[i]);
            *o = ((v as f64 - mean) * inv) as f32 * scale[i] + b;
        }
        if let Some((m, s)) = stats.as_mut() {
            m[r] = mean as f32;
            s[r] = inv as f32;
        }
    }
}

/// The index of the largest (`max`) or smallest value of each lane along
/// `axis`: the first of equal ones, or the last with `select_last`.
pub fn arg_extreme(
    x: &[f32],
    shape: &[usize],
    axis: usize,
    max: bool,
    select_last: bool,
    y: &mut [i64],
) {
    let mut lane = 0;
    for_each_lane(shape, axis, |base, stride, n| {
        let better = |v: f32, best: f32| match (max, select_last) {
            (true, false) => v > best,
            (true, true) => v >= best,
            (false, false) => v < best,
            (false, true) => v <= best,
        };
        let mut best = 0;
        for k in 1..n {
            if better(x[base + k * stride], x[base + best * stride]) {
                best = k;
            }
        }
        y[lane] = best as i64;
        lane += 1;
    });
}

/// Hardmax: 1 at the first maximum of each lane along `axis`, else 0.
pub fn hardmax(x: &[f32], shape: &[usize], axis: usize, y: &mut [f32]) {
    for_each_lane(shape, axis, |base, stride, n| {
        let mut best = 0;
        for k in 0..n {
            y[base + k * stride] = 0.0;
            if x[base + k * stride] > x[base + best * stride] {
                best = k;
            }
        }
        if n > 0 {
            y[base + best * stride] = 1.0;
        }
    });
}

/// Calls `f(base, stride, n)` once per lane along `axis`: the lane's
/// `k`-th element is at `base + k * stride`, `n` the axis length.
fn for_each_lane(shape: &[usize], axis: usize, mut f: impl FnMut(usize, usize, usize)) {
    let outer: usize = shape[..axis].iter().product();
    let n = shape[axis];
    let inner: usize = shape[axis + 1..].iter().product();
    for o in 0..outer {
        for i in 0..inner {
            f(o * n * inner + i, inner, n);
        }
    }
}

/// Mean over `axes`; `y` has the reduced element count (keepdims is a reshape).
pub fn reduce_mean(x: &[f32], shape: &[usize], axes: &[usize], y: &mut [f32]) {
    let rank = shape.len();
    // Trailing axes (a global pool): the mean of each contiguous chunk.
    let trailing = !axes.is_empty() && (0..axes.len()).all(|i| axes.contains(&(rank - 1 - i)));
    if trailing {
        let inner: usize = shape[rank - axes.len()..].iter().product();
        if inner > 0 {
            let inv = 1.0 / inner as f32;
            for (o, chunk) in y.iter_mut().zip(x.chunks_exact(inner)) {
                *o = chunk.iter().sum::<f32>() * inv;
            }
        }
        return;
    }
    y.fill(0.0);
    for_each_reduced(x, shape, axes, |o, v| y[o] += v);
    let count: usize = axes.iter().map(|&a| shape[a]).product();
    let inv = 1.0 / count.max(1) as f32;
    y.iter_mut().for_each(|v| *v *= inv);
}

/// Calls `f(o, v)` for every element `v` of `x` (of `shape`), where `o` is
/// its place in the output reduced over `axes`.
fn for_each_reduced(x: &[f32], shape: &[usize], axes: &[usize], mut f: impl FnMut(usize, f32)) {
    let rank = shape.len();
    // Output strides over the input index space (0 on reduced axes).
    let mut out_strides: super::Dims = smallvec::smallvec![0usize; rank];
    let mut s = 1;
    for d in (0..rank).rev() {
        if !axes.contains(&d) {
            out_strides[d] = s;
            s *= shape[d];
        }
    }
    let mut idx: super::Dims = smallvec::smallvec![0usize; rank];
    for &v in x {
        let o: usize = idx.iter().zip(&out_strides).map(|(i, s)| i * s).sum();
        f(o, v);
        for d in (0..rank).rev() {
            idx[d] += 1;
            if idx[d] < shape[d] {
                break;
            }
            idx[d] = 0;
        }
    }
}

/// `kind` over `axes`; `y` has the reduced element count. An empty
/// reduction gives the operation's identity (0, 1, or -inf/+inf for max
/// and min, -inf for LogSumExp and LogSum).
pub fn reduce(kind: ReduceKind, x: &[f32], shape: &[usize], axes: &[usize], y: &mut [f32]) {
    let init = match kind {
        ReduceKind::Max | ReduceKind::LogSumExp => f32::NEG_INFINITY,
        ReduceKind::Min => f32::INFINITY,
        ReduceKind::Prod => 1.0,
        _ => 0.0,
    };
    y.fill(init);
    match kind {
        ReduceKind::Sum | ReduceKind::LogSum => for_each_reduced(x, shape, axes, |o, v| y[o] += v),
        ReduceKind::Max | ReduceKind::LogSumExp => {
            for_each_reduced(x, shape, axes, |o, v| y[o] = y[o].max(v))
        }
        ReduceKind::Min => for_each_reduced(x, shape, axes, |o, v| y[o] = y[o].min(v)),
        ReduceKind::Prod => for_each_reduced(x, shape, axes, |o, v| y[o] *= v),
        ReduceKind::L1 => for_each_reduced(x, shape, axes, |o, v| y[o] += v.abs()),
        ReduceKind::L2 | ReduceKind::SumSquare => {
            for_each_reduced(x, shape, axes, |o, v| y[o] += v * v)
        }
    }
    match kind {
        ReduceKind::L2 => y.iter_mut().for_each(|v| *v = v.sqrt()),
        ReduceKind::LogSum => y.iter_mut().for_each(|v| *v = v.ln()),
        ReduceKind::LogSumExp => {
            // ln Σ eˣ = m + ln Σ e^(x - m), m the maximum, so nothing overflows.
            let max = y.to_vec();
            y.fill(0.0);
            for_each_reduced(x, shape, axes, |o, v| {
                if max[o].is_finite() {
                    y[o] += (v - max[o]).exp()
                }
            });
            for (v, m) in y.iter_mut().zip(&max) {
                *v = if m.is_finite() { m + v.ln() } else { *m };
            }
        }
        _ => {}
    }
}

/// Across-channel LRN: `y = x / (bias + alpha/size * Σ x²)^beta`.
pub fn lrn(
    x: &[f32],
    shape: &[usize],
    size: usize,
    alpha: f32,
    beta: f32,
    bias: f32,
    y: &mut [f32],
) {
    let (n, c) = (shape[0], shape[1]);
    let inner: usize = shape[2..].iter().product();
    // ONNX: floor((size-1)/2) channels before, ceil((size-1)/2) after.
    let before = (size - 1) / 2;
    let after = size - 1 - before;
    for b in 0..n {
        for ch in 0..c {
            let lo = ch.saturating_sub(before);
            let hi = (ch + after).min(c - 1);
            for i in 0..inner {
                let sq: f32 = (lo..=hi).map(|k| x[(b * c + k) * inner + i].powi(2)).sum();
                let at = (b * c + ch) * inner + i;
                y[at] = x[at] / (bias + alpha / size as f32 * sq).powf(beta);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KINDS: [ReduceKind; 9] = [
        ReduceKind::Sum,
        ReduceKind::Max,
        ReduceKind::Min,
        ReduceKind::Prod,
        ReduceKind::L1,
        ReduceKind::L2,
        ReduceKind::SumSquare,
        ReduceKind::LogSumExp,
        ReduceKind::LogSum,
    ];

    /// The reduction of a list, written out.
    fn naive(kind: ReduceKind, v: &[f32]) -> f32 {
        let v: Vec<f64> = v.iter().map(|&x| x as f64).collect();
        let sum = |f: &dyn Fn(f64) -> f64| v.iter().map(|&x| f(x)).sum::<f64>();
        (match kind {
            ReduceKind::Sum => sum(&|x| x),
            ReduceKind::Max => v.iter().cloned().fold(f64::NEG_INFINITY, f64::max),
            ReduceKind::Min => v.iter().cloned().fold(f64::INFINITY, f64::min),
            ReduceKind::Prod => v.iter().product(),
            ReduceKind::L1 => sum(&|x| x.abs()),
            ReduceKind::L2 => sum(&|x| x * x).sqrt(),
            ReduceKind::SumSquare => sum(&|x| x * x),
            ReduceKind::LogSumExp => sum(&|x| x.exp()).ln(),
            ReduceKind::LogSum => sum(&|x| x).ln(),
        }) as f32
    }

    #[test]
    fn every_kind_over_inner_and_outer_axes() {
        let shape = [2, 3, 4];
        // Positive values, so that LogSum is defined.
        let x: Vec<f32> = (0..24).map(|i| 0.25 + (i * 7 % 24) as f32 / 8.0).collect();
        let at = |a: usize, b: usize, c: usize| x[(a * 3 + b) * 4 + c];
        for kind in KINDS {
            let mut y = vec![0.0; 8];
            reduce(kind, &x, &shape, &[1], &mut y);
            for (a, c) in (0..2).flat_map(|a| (0..4).map(move |c| (a, c))) {
                let want = naive(kind, &[at(a, 0, c), at(a, 1, c), at(a, 2, c)]);
                let got = y[a * 4 + c];
                assert!(
                    (got - want).abs() <= 1e-5 * want.abs().max(1.0),
                    "{kind:?} [{a},{c}]: {got} vs {want}"
                );
            }
            let mut y = vec![0.0; 3];
            reduce(kind, &x, &shape, &[0, 2], &mut y);
            for (b, &got) in y.iter().enumerate() {
                let vals: Vec<f32> = (0..2)
                    .flat_map(|a| (0..4).map(move |c| (a, c)))
                    .map(|(a, c)| at(a, b, c))
                    .collect();
                let want = naive(kind, &vals);
                assert!(
                    (got - want).abs() <= 1e-5 * want.abs().max(1.0),
                    "{kind:?} [{b}]: {got} vs {want}"
                );
            }
        }
    }

    #[test]
    fn log_sum_exp_does_not_overflow_and_empty_sets_give_identities() {
        let mut y = [0.0];
        reduce(ReduceKind::LogSumExp, &[1000.0, 1000.0], &[2], &[0], &mut y);
        assert!((y[0] - (1000.0 + 2f32.ln())).abs() < 1e-3, "{}", y[0]);
        for (kind, want) in [
            (ReduceKind::Sum, 0.0),
            (ReduceKind::Prod, 1.0),
            (ReduceKind::Max, f32::NEG_INFINITY),
            (ReduceKind::Min, f32::INFINITY),
            (ReduceKind::LogSumExp, f32::NEG_INFINITY),
        ] {
            let mut y = [7.0; 2];
            reduce(kind, &[], &[2, 0], &[1], &mut y);
            assert_eq!(y, [want; 2], "{kind:?}");
        }
    }
}
