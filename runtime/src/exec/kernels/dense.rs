//! Gemm and MatMul whose weight operand is constant, as GEMM with the
//! weights packed once. The weights are the A side (`[N out][K]`), the
//! activations the B side (one column per row of the input), so a batch-1
//! fully connected layer streams its weights once. With more than one
//! input row the `[N][rows]` product is transposed out of scratch.

use super::contract::{AlignedF32, Epilogue, Input, Kernel, Output, Threads};
use super::gemm::{self, ALayout, BSource, ColsB, PackedA, RowsB};
use super::simd::Simd;
use super::Operand;
use crate::error::Result;
use crate::ir::Op;

#[derive(Debug)]
pub struct Dense<S: Simd> {
    simd: S,
    a: PackedA,
    epilogue: Epilogue,
    /// Rows of the input (columns of the product).
    rows: usize,
    /// The input is stored `[K][rows]` (Gemm `transA`).
    input_transposed: bool,
}

impl<S: Simd> Dense<S> {
    pub fn build(simd: S, op: &Op, ins: &[Operand], output: &[usize]) -> Option<Dense<S>> {
        let w = ins.get(1)?.constant?;
        let wv = w.as_f32()?;
        let x = &ins[0].info.shape;
        match op {
            Op::Gemm {
                alpha,
                beta,
                trans_a,
                trans_b,
                activation,
            } => {
                let (rows, k) = if *trans_a { (x[1], x[0]) } else { (x[0], x[1]) };
                let n = output[1];
                let layout = if *trans_b {
                    ALayout::RowMajor { data: wv, ld: k }
                } else {
                    ALayout::ColMajor { data: wv, ld: n }
                };
                let mut a = PackedA::pack(n, k, S::MR, layout);
                a.scale(*alpha);
                let bias = match ins.get(2) {
                    None => None,
                    Some(c) => {
                        let cv = c.constant?.as_f32()?;
                        let per_output = match c.info.shape.as_slice() {
                            [len] | [1, len] => *len == n,
                            _ => false,
                        };
                        let b: Vec<f32> = if per_output {
                            cv.iter().map(|v| beta * v).collect()
                        } else if cv.len() == 1 {
                            vec![beta * cv[0]; n]
                        } else {
                            return None;
                        };
                        Some(AlignedF32::from_slice(&b))
                    }
                };
                Some(Dense {
                    simd,
                    a,
                    epilogue: Epilogue {
                        scale: None,
                        bias,
                        residual: false,
                        activation: *activation,
                    },
                    rows,
                    input_transposed: *trans_a,
                })
            }
            Op::MatMul => {
                let [k, n] = w.shape() else { return None };
                let (k, n) = (*k, *n);
                let rows = if x.len() == 1 {
                    1
                } else {
                    x[..x.len() - 1].iter().product()
                };
                Some(Dense {
                    simd,
                    a: PackedA::pack(n, k, S::MR, ALayout::ColMajor { data: wv, ld: n }),
                    epilogue: Epilogue::default(),
                    rows,
                    input_transposed: false,
                })
            }
            _ => None,
        }
    }

    fn transposed_words(&self) -> usize {
        if self.rows > 1 {
            self.a.m * self.rows
        } else {
            0
        }
    }
}

impl<S: Simd> Kernel for Dense<S> {
    fn name(&self) -> &'static str {
        S::names().dense
    }
    fn scratch_bytes(&self, threads: usize) -> usize {
        if self.rows == 1 {
            return 0; // gemv: no packing
        }
        (self.transposed_words() + threads * gemm::scratch_words::<S>()) * 4
    }
    fn packed_bytes(&self) -> usize {
        self.a.data.bytes()
    }
    fn run(
        &self,
        ins: &[Input],
        outs: &mut [Output],
        scratch: &mut [f32],
        threads: &Threads,
    ) -> Result<()> {
        let (n, k, rows) = (self.a.m, self.a.k, self.rows);
        let x = ins[0].f32()?;
        let cols;
        let trows;
        let src: &dyn BSource = if self.input_transposed {
            trows = RowsB {
                data: x,
                ld: rows,
                n: rows,
            };
            &trows
        } else {
            cols = ColsB {
                data: x,
                ld: k,
                n: rows,
            };
            &cols
        };
        let y = outs[0].f32()?;
        if rows == 1 {
            gemm::gemv(self.simd, &self.a, x, y, &self.epilogue, threads);
            return Ok(());
        }
        let (t, rest) = scratch.split_at_mut(self.transposed_words());
        gemm::gemm(
            self.simd,
            &self.a,
            gemm::B::Packed(src),
            rows,
            t,
            rows,
            &self.epilogue,
            None,
            rest,
            threads,
        );
        for (r, yr) in y.chunks_mut(n).enumerate() {
            for (j, v) in yr.iter_mut().enumerate() {
                *v = t[j * rows + r];
            }
        }
        Ok(())
    }
}
