//! LSTM, GRU and RNN with constant weights, for every ISA with a [`Simd`]
//! token. `W · x` for every step at once is one GEMM (W packed once, its
//! bias fused); each step's `R · h` is one GEMV per gate block, R stored
//! column-major per block ([`gemv_columns`]). The cell arithmetic is the
//! reference kernel's ([`recurrent::recurrent`]).

use std::ops::Range;

use super::contract::{AlignedF32, Epilogue, Input, Kernel, Output, Threads};
use super::gemm::{self, ALayout, ColsB, PackedA};
use super::scalar::recurrent::{self, Products};
use super::simd::Simd;
use super::Operand;
use crate::error::Result;
use crate::ir::{DType, Recurrent, TypeInfo, UnaryOp};

/// One direction's packed weights.
#[derive(Debug)]
struct Weights {
    /// W, all gates' rows, with the input bias `Wb` as its epilogue.
    w: PackedA,
    w_bias: Epilogue,
    /// R per gate block (`hidden` rows each), column-major, and `Rb` of
    /// that block.
    r: Vec<(AlignedF32, AlignedF32)>,
}

#[derive(Debug)]
pub struct RecurrentGemm<S: Simd> {
    simd: S,
    rec: Recurrent,
    /// `[seq, batch, features]`.
    shape: [usize; 3],
    weights: Vec<Weights>,
}

/// `y[i] += Σ_k a[k·m + i] · x[k]`, `m = y.len()`, `a` column-major:
/// rows in blocks of 32 held in registers over all of K, each column read
/// once as contiguous vectors (a GEMV with one input vector, where packed
/// tiles would idle most of their lanes).
#[inline(always)]
pub fn gemv_columns(a: &[f32], x: &[f32], y: &mut [f32]) {
    const BLOCK: usize = 32;
    let m = y.len();
    for (i, ys) in y.chunks_mut(BLOCK).enumerate() {
        let rows = i * BLOCK..i * BLOCK + ys.len();
        let mut acc = [0f32; BLOCK];
        if ys.len() == BLOCK {
            for (col, &xv) in a.chunks_exact(m).zip(x) {
                let col: &[f32; BLOCK] = col[rows.clone()].try_into().expect("a block");
                for (s, &w) in acc.iter_mut().zip(col) {
                    *s += w * xv;
                }
            }
        } else {
            for (col, &xv) in a.chunks_exact(m).zip(x) {
                for (s, &w) in acc.iter_mut().zip(&col[rows.clone()]) {
                    *s += w * xv;
                }
            }
        }
        for (o, s) in ys.iter_mut().zip(acc) {
            *o += s;
        }
    }
}

fn bias(b: &[f32]) -> Epilogue {
    Epilogue {
        bias: Some(AlignedF32::from_slice(b)),
        ..Epilogue::default()
    }
}

impl<S: Simd> RecurrentGemm<S> {
    /// Packs a recurrent layer whose W, R and bias are constant.
    pub fn build(
        simd: S,
        rec: &Recurrent,
        ins: &[Operand],
        outs: &[TypeInfo],
    ) -> Option<RecurrentGemm<S>> {
        let f32s = |i: usize| ins.get(i).filter(|o| o.info.dtype == DType::F32);
        let (w, r, b) = (
            f32s(1)?.constant?.as_f32()?,
            f32s(2)?.constant?.as_f32()?,
            f32s(3)?.constant?.as_f32()?,
        );
        let x = f32s(0)?.info.shape.as_slice();
        let &[seq, batch, features] = x else {
            return None;
        };
        if outs.iter().any(|o| o.dtype != DType::F32) {
            return None;
        }
        let (hd, g) = (rec.hidden, rec.cell.gates());
        let weights = (0..rec.direction.count())
            .map(|d| {
                let (wd, rd) = (&w[d * g * hd * features..], &r[d * g * hd * hd..]);
                let (wb, rb) = b[d * 2 * g * hd..][..2 * g * hd].split_at(g * hd);
                let block = |gate: usize| {
                    let rows = &rd[gate * hd * hd..][..hd * hd];
                    let mut columns = AlignedF32::zeros(hd * hd);
                    for (k, column) in columns.as_mut_slice().chunks_exact_mut(hd).enumerate() {
                        for (c, row) in column.iter_mut().zip(rows.chunks_exact(hd)) {
                            *c = row[k];
                        }
                    }
                    (columns, AlignedF32::from_slice(&rb[gate * hd..][..hd]))
                };
                Weights {
                    w: PackedA::pack(
                        g * hd,
                        features,
                        S::MR,
                        ALayout::RowMajor {
                            data: wd,
                            ld: features,
                        },
                    ),
                    w_bias: bias(wb),
                    r: (0..g).map(block).collect(),
                }
            })
            .collect();
        Some(RecurrentGemm {
            simd,
            rec: rec.clone(),
            shape: [seq, batch, features],
            weights,
        })
    }

    /// Words of `W · x` for every direction, step and batch element.
    fn products_words(&self) -> usize {
        let [seq, batch, _] = self.shape;
        self.weights.len() * self.rec.cell.gates() * self.rec.hidden * seq * batch
    }
}

/// The products of [`RecurrentGemm`]: `W · x + Wb` computed for every step
/// beforehand (`[dir][row][step·batch]`), `R · v + Rb` by GEMV.
struct Packed<'a, S: Simd> {
    simd: S,
    weights: &'a [Weights],
    /// `W · x + Wb` of one direction: `rows × columns`.
    xw: &'a [f32],
    rows: usize,
    columns: usize,
    batch: usize,
    hidden: usize,
}

impl<S: Simd> Products for Packed<'_, S> {
    fn input(&self, d: usize, t: usize, b: usize, pre: &mut [f32]) {
        let xw = &self.xw[d * self.rows * self.columns..][..self.rows * self.columns];
        let column = t * self.batch + b;
        for (p, row) in pre.iter_mut().zip(xw.chunks_exact(self.columns)) {
            *p = row[column];
        }
    }
    fn recurrent(&self, d: usize, gates: Range<usize>, v: &[f32], out: &mut [f32]) {
        let blocks = &self.weights[d].r[gates];
        for ((r, rb), out) in blocks.iter().zip(out.chunks_exact_mut(self.hidden)) {
            out.copy_from_slice(rb.as_slice());
            self.simd.gemv_columns(r.as_slice(), v, out);
        }
    }
    fn activate(&self, op: UnaryOp, x: &[f32], y: &mut [f32]) {
        self.simd.unary(op, x, y);
    }
}

impl<S: Simd> Kernel for RecurrentGemm<S> {
    fn name(&self) -> &'static str {
        S::names().recurrent
    }
    fn scratch_bytes(&self, threads: usize) -> usize {
        let [seq, batch, features] = self.shape;
        let rows = self.rec.cell.gates() * self.rec.hidden;
        let pack = gemm::packed_scratch_words::<S>(rows, features, seq * batch, threads);
        let cell = recurrent::scratch_words(&self.rec);
        (self.products_words() + pack.max(cell)) * 4
    }
    fn packed_bytes(&self) -> usize {
        let blocks = |w: &Weights| w.r.iter().map(|(r, _)| r.bytes()).sum::<usize>();
        self.weights
            .iter()
            .map(|w| w.w.data.bytes() + blocks(w))
            .sum()
    }
    fn run(
        &self,
        ins: &[Input],
        outs: &mut [Output],
        scratch: &mut [f32],
        threads: &Threads,
    ) -> Result<()> {
        let [seq, batch, features] = self.shape;
        let (rows, columns) = (self.rec.cell.gates() * self.rec.hidden, seq * batch);
        let x = ins[0].f32()?;
        let (xw, rest) = scratch.split_at_mut(self.products_words());
        let b = ColsB {
            data: x,
            ld: features,
            n: columns,
        };
        for (weights, xw) in self.weights.iter().zip(xw.chunks_exact_mut(rows * columns)) {
            let (w, e) = (&weights.w, &weights.w_bias);
            let b = gemm::B::Packed(&b);
            gemm::gemm(
                self.simd, w, b, columns, xw, columns, e, None, rest, threads,
            );
        }
        let products = Packed {
            simd: self.simd,
            weights: &self.weights,
            xw,
            rows,
            columns,
            batch,
            hidden: self.rec.hidden,
        };
        let io = recurrent::io(ins, outs)?;
        recurrent::recurrent(&self.rec, [seq, batch], &products, io, rest);
        Ok(())
    }
}
