//! Reductions: Softmax, ReduceMean and LRN (local response normalization).

/// Softmax over `axis` of a tensor of `shape`.
pub fn softmax(x: &[f32], shape: &[usize], axis: usize, y: &mut [f32]) {
    let outer: usize = shape[..axis].iter().product();
    let n = shape[axis];
    let inner: usize = shape[axis + 1..].iter().product();
    for o in 0..outer {
        for i in 0..inner {
            let at = |k: usize| (o * n + k) * inner + i;
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
    // Output strides over the input index space (0 on reduced axes).
    let mut out_strides: super::Dims = smallvec::smallvec![0usize; rank];
    let mut s = 1;
    for d in (0..rank).rev() {
        if !axes.contains(&d) {
            out_strides[d] = s;
            s *= shape[d];
        }
    }
    let count: usize = axes.iter().map(|&a| shape[a]).product();
    y.fill(0.0);
    let mut idx: super::Dims = smallvec::smallvec![0usize; rank];
    for &v in x {
        let o: usize = idx.iter().zip(&out_strides).map(|(i, s)| i * s).sum();
        y[o] += v;
        for d in (0..rank).rev() {
            idx[d] += 1;
            if idx[d] < shape[d] {
                break;
            }
            idx[d] = 0;
        }
    }
    let inv = 1.0 / count.max(1) as f32;
    y.iter_mut().for_each(|v| *v *= inv);
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
