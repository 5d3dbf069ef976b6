//! Elementwise ops: unary functions, broadcasting binary ops, PRelu and the
//! per-channel affine (BatchNorm).

use crate::ir::{BinaryOp, CompareOp, UnaryOp};

#[inline(always)]
pub fn unary(op: UnaryOp, x: &[f32], y: &mut [f32]) {
    // The epilogue's loops (one per activation) serve plain unary ops too.
    let e = crate::exec::kernels::contract::Epilogue {
        activation: Some(op),
        ..Default::default()
    };
    y.copy_from_slice(x);
    e.apply_row(0, y, None);
}

/// Strides of `shape` seen through a broadcast to `out` (0 on broadcast axes).
pub(crate) fn broadcast_strides(shape: &[usize], out: &[usize]) -> super::Dims {
    let lead = out.len() - shape.len();
    let mut strides: super::Dims = smallvec::smallvec![0; out.len()];
    let mut s = 1;
    for d in (0..shape.len()).rev() {
        strides[lead + d] = if shape[d] == 1 { 0 } else { s };
        s *= shape[d];
    }
    strides
}

/// Merges adjacent axes along which both operands step alike (each one
/// contiguous across the pair, or broadcast along both), so the innermost
/// rows are as long as they can be: `[C, H, W] × [C, 1, 1]` runs as `C`
/// rows of `H·W`, not `C·H` rows of `W`.
fn coalesce(
    shape: &[usize],
    sa: super::Dims,
    sb: super::Dims,
) -> (super::Dims, super::Dims, super::Dims) {
    let mut dims: super::Dims = smallvec::smallvec![*shape.last().unwrap_or(&1)];
    let mut ta: super::Dims = smallvec::smallvec![*sa.last().unwrap_or(&0)];
    let mut tb: super::Dims = smallvec::smallvec![*sb.last().unwrap_or(&0)];
    for axis in (0..shape.len().saturating_sub(1)).rev() {
        let (d, a, b) = (dims[0], ta[0], tb[0]);
        let joins = |outer: usize, inner: usize| outer == inner * d;
        if joins(sa[axis], a) && joins(sb[axis], b) {
            dims[0] *= shape[axis];
        } else {
            dims.insert(0, shape[axis]);
            ta.insert(0, sa[axis]);
            tb.insert(0, sb[axis]);
        }
    }
    (dims, ta, tb)
}

/// `y = f(a, b)` with numpy broadcasting of `a` and `b` to `y_shape`.
#[inline(always)]
pub fn broadcast_binary<T: Copy, U>(
    (a, a_shape): (&[T], &[usize]),
    (b, b_shape): (&[T], &[usize]),
    y_shape: &[usize],
    y: &mut [U],
    f: impl Fn(T, T) -> U,
) {
    if a.len() == y.len() && b.len() == y.len() {
        for ((o, &x), &z) in y.iter_mut().zip(a).zip(b) {
            *o = f(x, z);
        }
        return;
    }
    if y.is_empty() {
        return;
    }
    let (y_shape, sa, sb) = coalesce(
        y_shape,
        broadcast_strides(a_shape, y_shape),
        broadcast_strides(b_shape, y_shape),
    );
    let rank = y_shape.len();
    let inner = y_shape[rank - 1];
    let (ia, ib) = (sa[rank - 1], sb[rank - 1]);
    let mut idx: super::Dims = smallvec::smallvec![0usize; rank - 1];
    for row in y.chunks_mut(inner) {
        let oa: usize = idx.iter().zip(&sa).map(|(i, s)| i * s).sum();
        let ob: usize = idx.iter().zip(&sb).map(|(i, s)| i * s).sum();
        // Rows whose operands are contiguous or one value: plain loops
        // the compiler vectorizes.
        match (ia, ib) {
            (1, 1) => row
                .iter_mut()
                .zip(&a[oa..oa + inner])
                .zip(&b[ob..ob + inner])
                .for_each(|((o, &x), &z)| *o = f(x, z)),
            (1, 0) => {
                let z = b[ob];
                row.iter_mut()
                    .zip(&a[oa..oa + inner])
                    .for_each(|(o, &x)| *o = f(x, z));
            }
            (0, 1) => {
                let x = a[oa];
                row.iter_mut()
                    .zip(&b[ob..ob + inner])
                    .for_each(|(o, &z)| *o = f(x, z));
            }
            _ => {
                for (j, o) in row.iter_mut().enumerate() {
                    *o = f(a[oa + j * ia], b[ob + j * ib]);
                }
            }
        }
        for d in (0..rank - 1).rev() {
            idx[d] += 1;
            if idx[d] < y_shape[d] {
                break;
            }
            idx[d] = 0;
        }
    }
}

#[inline(always)]
pub fn binary_f32(
    op: BinaryOp,
    a: (&[f32], &[usize]),
    b: (&[f32], &[usize]),
    y_shape: &[usize],
    y: &mut [f32],
) {
    // One loop per op, so each vectorizes (a match per element would not).
    match op {
        BinaryOp::Add => broadcast_binary(a, b, y_shape, y, |x, z| x + z),
        BinaryOp::Sub => broadcast_binary(a, b, y_shape, y, |x, z| x - z),
        BinaryOp::Mul => broadcast_binary(a, b, y_shape, y, |x, z| x * z),
        BinaryOp::Div => broadcast_binary(a, b, y_shape, y, |x, z| x / z),
        other => broadcast_binary(a, b, y_shape, y, |x, z| other.apply(x, z)),
    }
}

pub fn binary_i64(
    op: BinaryOp,
    a: (&[i64], &[usize]),
    b: (&[i64], &[usize]),
    y_shape: &[usize],
    y: &mut [i64],
) {
    broadcast_binary(a, b, y_shape, y, |x, z| op.apply_i64(x, z));
}

/// `y = (a op b)` as i64 1 or 0, with broadcasting.
pub fn compare<T: PartialOrd + Copy>(
    op: CompareOp,
    a: (&[T], &[usize]),
    b: (&[T], &[usize]),
    y_shape: &[usize],
    y: &mut [i64],
) {
    broadcast_binary(a, b, y_shape, y, |x, z| i64::from(op.apply(x, z)));
}

/// `out = if cond { x } else { y }` elementwise, all three broadcast to
/// `out_shape` (a nonzero condition is true).
pub fn select<T: Copy>(
    cond: (&[i64], &[usize]),
    x: (&[T], &[usize]),
    y: (&[T], &[usize]),
    out_shape: &[usize],
    out: &mut [T],
) {
    let strides = [cond.1, x.1, y.1].map(|s| broadcast_strides(s, out_shape));
    let rank = out_shape.len();
    let mut idx: super::Dims = smallvec::smallvec![0usize; rank];
    for o in out.iter_mut() {
        let at = strides
            .each_ref()
            .map(|s| idx.iter().zip(s).map(|(i, s)| i * s).sum::<usize>());
        *o = if cond.0[at[0]] != 0 {
            x.0[at[1]]
        } else {
            y.0[at[2]]
        };
        for d in (0..rank).rev() {
            idx[d] += 1;
            if idx[d] < out_shape[d] {
                break;
            }
            idx[d] = 0;
        }
    }
}

pub fn prelu(x: (&[f32], &[usize]), slope: (&[f32], &[usize]), y: &mut [f32]) {
    let shape = x.1;
    broadcast_binary(x, slope, shape, y, |v, s| if v < 0.0 { v * s } else { v });
}

/// `y = act(x * scale[c] + shift[c])` over NC… tensors.
pub fn channel_affine(
    shape: &[usize],
    x: &[f32],
    scale: &[f32],
    shift: &[f32],
    act: Option<UnaryOp>,
    y: &mut [f32],
) {
    let c = shape[1];
    let inner: usize = shape[2..].iter().product();
    if inner == 0 {
        return;
    }
    for (i, (xs, ys)) in x.chunks(inner).zip(y.chunks_mut(inner)).enumerate() {
        let (s, t) = (scale[i % c], shift[i % c]);
        for (o, &v) in ys.iter_mut().zip(xs) {
            let r = v * s + t;
            *o = act.map_or(r, |a| a.apply(r));
        }
    }
}

/// Inference BatchNormalization of one channel as its scale and shift.
#[inline]
pub fn batchnorm_channel(eps: f32, gamma: f32, beta: f32, mean: f32, var: f32) -> (f32, f32) {
    let scale = gamma / (var + eps).sqrt();
    (scale, beta - mean * scale)
}

/// Inference BatchNormalization expressed as its per-channel scale and shift.
pub fn batchnorm_to_affine(
    eps: f32,
    gamma: &[f32],
    beta: &[f32],
    mean: &[f32],
    var: &[f32],
) -> (Vec<f32>, Vec<f32>) {
    (0..gamma.len())
        .map(|c| batchnorm_channel(eps, gamma[c], beta[c], mean[c], var[c]))
        .unzip()
}
