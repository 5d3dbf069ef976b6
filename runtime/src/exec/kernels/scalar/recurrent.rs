//! LSTM, GRU and RNN ([`Op::Recurrent`](crate::ir::Op::Recurrent)): each
//! batch element and direction runs its sequence step by step. The cell
//! arithmetic lives here once; the matrix products come from a
//! [`Products`]: plain loops for the reference kernel, packed GEMM and
//! GEMV for the SIMD one.

use std::ops::Range;

use crate::error::{Error, Result};
use crate::exec::kernels::contract::{Input, Output, View};
use crate::ir::{Cell, Recurrent, UnaryOp};

/// A recurrent layer's matrix products, for direction `d`.
pub trait Products {
    /// `pre[row] = W[row] · x_t + Wb[row]` for every row (all gates) of
    /// batch element `b` at step `t`.
    fn input(&self, d: usize, t: usize, b: usize, pre: &mut [f32]);
    /// `out[i] = R[row] · v + Rb[row]` for the rows of `gates` (a range of
    /// gate blocks of `hidden` rows each), `out` holding just those rows.
    fn recurrent(&self, d: usize, gates: Range<usize>, v: &[f32], out: &mut [f32]);
    /// `y = op(x)` elementwise (a gate's activation).
    fn activate(&self, op: UnaryOp, x: &[f32], y: &mut [f32]);
}

/// The sequences, states and outputs of one recurrent layer, shaped as
/// `Op::Recurrent` says.
pub struct RecurrentIo<'a> {
    pub lens: &'a [i64],
    pub h0: &'a [f32],
    /// LSTM only: initial c and peepholes.
    pub c0: &'a [f32],
    pub peepholes: &'a [f32],
    pub y: &'a mut [f32],
    pub y_h: &'a mut [f32],
    /// LSTM only (empty otherwise).
    pub y_c: &'a mut [f32],
}

/// Scratch words of [`recurrent`]: two rows of all gates, h, c and one
/// more hidden-sized row.
pub fn scratch_words(rec: &Recurrent) -> usize {
    (2 * rec.cell.gates() + 3) * rec.hidden
}

/// `a · b` over eight partial sums, so the loop vectorizes (one running
/// sum would fix the order of the additions and keep it scalar).
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0f32; 8];
    let (a8, b8) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = a8
        .remainder()
        .iter()
        .zip(b8.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in a8.zip(b8) {
        for i in 0..8 {
            lanes[i] += x[i] * y[i];
        }
    }
    lanes.iter().sum::<f32>() + tail
}

/// The reference products: the weights as given, plain dot products.
pub struct PlainProducts<'a> {
    pub rec: &'a Recurrent,
    /// `[seq, batch, features]` of `x`.
    pub shape: [usize; 3],
    pub x: &'a [f32],
    pub w: &'a [f32],
    pub r: &'a [f32],
    pub bias: &'a [f32],
}

impl Products for PlainProducts<'_> {
    fn input(&self, d: usize, t: usize, b: usize, pre: &mut [f32]) {
        let [_, batch, features] = self.shape;
        let rows = self.rec.cell.gates() * self.rec.hidden;
        let w = &self.w[d * rows * features..][..rows * features];
        let wb = &self.bias[d * 2 * rows..][..rows];
        let xt = &self.x[(t * batch + b) * features..][..features];
        for ((p, row), wb) in pre.iter_mut().zip(w.chunks_exact(features)).zip(wb) {
            *p = dot(row, xt) + wb;
        }
    }
    fn recurrent(&self, d: usize, gates: Range<usize>, v: &[f32], out: &mut [f32]) {
        let hd = self.rec.hidden;
        let rows = self.rec.cell.gates() * hd;
        let r = &self.r[d * rows * hd..][gates.start * hd * hd..gates.end * hd * hd];
        let rb = &self.bias[d * 2 * rows + rows..][gates.start * hd..gates.end * hd];
        for ((o, row), b) in out.iter_mut().zip(r.chunks_exact(hd)).zip(rb) {
            *o = dot(row, v) + b;
        }
    }
    fn activate(&self, op: UnaryOp, x: &[f32], y: &mut [f32]) {
        super::elementwise::unary(op, x, y);
    }
}

/// `a += b` elementwise.
fn add(a: &mut [f32], b: &[f32]) {
    a.iter_mut().zip(b).for_each(|(a, b)| *a += b);
}

/// `a += b ⊙ c` elementwise.
fn add_product(a: &mut [f32], b: &[f32], c: &[f32]) {
    a.iter_mut()
        .zip(b)
        .zip(c)
        .for_each(|((a, b), c)| *a += b * c);
}

/// Runs the layer over `seq` steps of `batch` sequences. Steps past a
/// batch element's sequence length leave zeros in `y`; the last h and c
/// are those of its last step (reverse directions start from its end).
/// Each step works on whole gate vectors, so the activations run as
/// vector loops ([`Products::activate`]).
pub fn recurrent(
    rec: &Recurrent,
    [seq, batch]: [usize; 2],
    products: &impl Products,
    io: RecurrentIo,
    scratch: &mut [f32],
) {
    let (hd, g, dirs) = (rec.hidden, rec.cell.gates(), rec.direction.count());
    let per = rec.cell.activations();
    io.y.fill(0.0);
    let (pre, rest) = scratch[..scratch_words(rec)].split_at_mut(g * hd);
    let (out, rest) = rest.split_at_mut(g * hd);
    let (h, rest) = rest.split_at_mut(hd);
    let (c, tmp) = rest.split_at_mut(hd);
    for d in 0..dirs {
        let acts = &rec.activations[d * per..][..per];
        // A gate's activation on its (clipped) inputs.
        let gate = |i: usize, x: &mut [f32], y: &mut [f32]| {
            if let Some(k) = rec.clip {
                x.iter_mut().for_each(|v| *v = v.clamp(-k, k));
            }
            products.activate(acts[i], x, y);
        };
        for b in 0..batch {
            let len = usize::try_from(io.lens[b]).unwrap_or(0).min(seq);
            let state = (d * batch + b) * hd;
            h.copy_from_slice(&io.h0[state..][..hd]);
            if rec.cell == Cell::Lstm {
                c.copy_from_slice(&io.c0[state..][..hd]);
            }
            for s in 0..len {
                let t = if rec.direction.reverse(d) {
                    len - 1 - s
                } else {
                    s
                };
                products.input(d, t, b, pre);
                match rec.cell {
                    Cell::Lstm => {
                        // Gates i, o, f, c; peepholes i, o, f.
                        products.recurrent(d, 0..4, h, out);
                        add(pre, out);
                        let p = &io.peepholes[d * 3 * hd..][..3 * hd];
                        let (pi, po, pf) = (&p[..hd], &p[hd..2 * hd], &p[2 * hd..]);
                        let [i_in, o_in, f_in, c_in] = blocks(pre, hd);
                        let [i, o, f, candidate] = blocks(out, hd);
                        add_product(i_in, pi, c);
                        add_product(f_in, pf, c);
                        gate(0, i_in, i);
                        gate(0, f_in, f);
                        gate(1, c_in, candidate);
                        for j in 0..hd {
                            c[j] = f[j] * c[j] + i[j] * candidate[j];
                        }
                        add_product(o_in, po, c);
                        gate(0, o_in, o);
                        products.activate(acts[2], c, tmp);
                        for j in 0..hd {
                            h[j] = o[j] * tmp[j];
                        }
                    }
                    Cell::Gru {
                        linear_before_reset,
                    } => {
                        products.recurrent(d, 0..2, h, &mut out[..2 * hd]);
                        let (zr_in, h_in) = pre.split_at_mut(2 * hd);
                        let (zr, rh) = out.split_at_mut(2 * hd);
                        add(zr_in, zr);
                        gate(0, zr_in, zr);
                        let (z, reset) = zr.split_at(hd);
                        if linear_before_reset {
                            products.recurrent(d, 2..3, h, rh);
                            add_product(h_in, reset, rh);
                        } else {
                            for j in 0..hd {
                                tmp[j] = reset[j] * h[j];
                            }
                            products.recurrent(d, 2..3, tmp, rh);
                            add(h_in, rh);
                        }
                        gate(1, h_in, tmp);
                        for j in 0..hd {
                            h[j] = (1.0 - z[j]) * tmp[j] + z[j] * h[j];
                        }
                    }
                    Cell::Rnn => {
                        products.recurrent(d, 0..1, h, out);
                        add(pre, out);
                        gate(0, pre, h);
                    }
                }
                io.y[((t * dirs + d) * batch + b) * hd..][..hd].copy_from_slice(h);
            }
            io.y_h[state..][..hd].copy_from_slice(h);
            if rec.cell == Cell::Lstm {
                io.y_c[state..][..hd].copy_from_slice(c);
            }
        }
    }
}

/// The four `hd`-long gate blocks of an LSTM's `4·hd` values.
fn blocks(v: &mut [f32], hd: usize) -> [&mut [f32]; 4] {
    let (a, rest) = v.split_at_mut(hd);
    let (b, rest) = rest.split_at_mut(hd);
    let (c, d) = rest.split_at_mut(hd);
    [a, b, c, &mut d[..hd]]
}

/// The states and outputs of an `Op::Recurrent` node's buffers.
pub fn io<'a>(ins: &[Input<'a>], outs: &'a mut [Output]) -> Result<RecurrentIo<'a>> {
    let View::I64(lens) = ins[4].data else {
        return Err(Error::Input("sequence lengths must be i64".into()));
    };
    let (c0, peepholes) = match ins.get(6..8) {
        Some([c0, p]) => (c0.f32()?, p.f32()?),
        _ => (&[][..], &[][..]),
    };
    let (y, states) = outs.split_at_mut(1);
    let (y_h, y_c) = states.split_at_mut(1);
    Ok(RecurrentIo {
        lens,
        h0: ins[5].f32()?,
        c0,
        peepholes,
        y: y[0].f32()?,
        y_h: y_h[0].f32()?,
        y_c: match y_c.first_mut() {
            Some(c) => c.f32()?,
            None => &mut [],
        },
    })
}
