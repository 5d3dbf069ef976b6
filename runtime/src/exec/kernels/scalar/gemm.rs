//! Matrix products: Gemm (with transposes, alpha/beta, bias, activation) and
//! numpy-style batched MatMul.

use crate::ir::UnaryOp;

/// Row-major matrix operand with an optional transpose.
#[derive(Clone, Copy, Debug)]
pub struct MatRef<'a> {
    pub data: &'a [f32],
    pub rows: usize,
    pub cols: usize,
    pub transposed: bool,
}

impl MatRef<'_> {
    #[inline]
    fn at(&self, r: usize, c: usize) -> f32 {
        if self.transposed {
            self.data[c * self.rows + r]
        } else {
            self.data[r * self.cols + c]
        }
    }
}

/// Epilogue addend of a Gemm: `beta * c` broadcast to \[m, n\].
#[derive(Clone, Copy, Debug)]
pub struct GemmBias<'a> {
    pub data: &'a [f32],
    pub shape: &'a [usize],
    pub beta: f32,
}

/// `y[m,n] = act(alpha * a·b + beta * c)`; `a` is m×k, `b` is k×n (after transposes).
pub fn gemm(
    a: MatRef,
    b: MatRef,
    alpha: f32,
    bias: Option<GemmBias>,
    act: Option<UnaryOp>,
    y: &mut [f32],
) {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    // C broadcasts from [n], [1,n], [m,1], [m,n] or a scalar.
    let bias_dims = bias.map(|c| match c.shape {
        [x] => (1, *x),
        [r, x] => (*r, *x),
        _ => (1, 1),
    });
    for i in 0..m {
        // Accumulate straight into the output row: no scratch per call.
        let row = &mut y[i * n..][..n];
        row.fill(0.0);
        for p in 0..k {
            let av = a.at(i, p);
            if b.transposed {
                for (j, r) in row.iter_mut().enumerate() {
                    *r += av * b.data[j * k + p];
                }
            } else {
                let brow = &b.data[p * n..][..n];
                for (r, &bv) in row.iter_mut().zip(brow) {
                    *r += av * bv;
                }
            }
        }
        for (j, o) in row.iter_mut().enumerate() {
            let mut v = alpha * *o;
            if let (Some(c), Some((cr, cc))) = (&bias, bias_dims) {
                let idx = if cr == 1 { 0 } else { i * cc } + if cc == 1 { 0 } else { j };
                v += c.beta * c.data[idx];
            }
            *o = act.map_or(v, |a| a.apply(v));
        }
    }
}

/// Batched matmul; shapes are already promoted to rank ≥ 2 and the batch
/// dims of `y_batch` broadcast from `a_batch` and `b_batch`.
pub fn matmul(
    a: &[f32],
    a_batch: &[usize],
    b: &[f32],
    b_batch: &[usize],
    y_batch: &[usize],
    (m, k, n): (usize, usize, usize),
    y: &mut [f32],
) {
    let batches: usize = y_batch.iter().product();
    let rank = y_batch.len();
    let mut idx: super::Dims = smallvec::smallvec![0usize; rank];
    for bi in 0..batches {
        // Map the output batch index to the (broadcast) operand batches.
        let offset = |shape: &[usize]| {
            let lead = rank - shape.len();
            let mut off = 0;
            for (d, &len) in shape.iter().enumerate() {
                off = off * len + if len == 1 { 0 } else { idx[lead + d] };
            }
            off
        };
        let (ao, bo) = (offset(a_batch), offset(b_batch));
        gemm(
            MatRef {
                data: &a[ao * m * k..][..m * k],
                rows: m,
                cols: k,
                transposed: false,
            },
            MatRef {
                data: &b[bo * k * n..][..k * n],
                rows: k,
                cols: n,
                transposed: false,
            },
            1.0,
            None,
            None,
            &mut y[bi * m * n..][..m * n],
        );
        for d in (0..rank).rev() {
            idx[d] += 1;
            if idx[d] < y_batch[d] {
                break;
            }
            idx[d] = 0;
        }
    }
}
