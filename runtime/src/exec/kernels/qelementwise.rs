//! Integer elementwise kernels: QuantizeLinear (f32 → u8), DequantizeLinear
//! (u8 → f32), QLinearAdd and QLinearMul of same-shaped u8 tensors, and
//! QLinearGlobalAveragePool. Portable loops compiled for the ISA token
//! they run under ([`QTile::vectorized`]); the same fixed-point arithmetic
//! as the reference, so results are identical.

use super::contract::{Input, Kernel, Output, Requantize, Threads};
use super::qgemm::{IsaWork, QTile};
use super::scalar::quant::{mean_requant, AddRequant};
use super::Operand;
use crate::error::Result;
use crate::ir::{BinaryOp, DType, Op, Quant, TypeInfo};

#[derive(Clone, Copy, Debug)]
enum Kind {
    Quantize(Quant),
    Dequantize(Quant),
    Add(AddRequant),
    Mul {
        a_zero: i32,
        b_zero: i32,
        requant: Requantize,
    },
    GlobalAverage {
        x_zero: i32,
        area: usize,
        requant: Requantize,
    },
}

#[derive(Debug)]
pub struct QElementwise<T: QTile> {
    tile: T,
    kind: Kind,
}

impl<T: QTile> QElementwise<T> {
    /// Accepts the integer elementwise ops on u8 data (binary ones on
    /// same-shaped operands); `None` for anything else.
    pub fn build(tile: T, op: &Op, ins: &[Operand], outs: &[TypeInfo]) -> Option<Self> {
        let u8_all = ins.iter().all(|i| i.info.dtype == DType::U8);
        let kind = match op {
            Op::Quantize(q) if q.dtype == DType::U8 => Kind::Quantize(*q),
            Op::Dequantize(q) if q.dtype == DType::U8 => Kind::Dequantize(*q),
            Op::QBinary { op, a, b, y }
                if u8_all
                    && y.dtype == DType::U8
                    && ins[0].info.shape == outs[0].shape
                    && ins[1].info.shape == outs[0].shape =>
            {
                match op {
                    BinaryOp::Add => Kind::Add(AddRequant::new(*a, *b, *y, None).ok()?),
                    BinaryOp::Mul => {
                        let real = a.scale as f64 * b.scale as f64 / y.scale as f64;
                        let (lo, hi) = y.range();
                        Kind::Mul {
                            a_zero: a.zero_point,
                            b_zero: b.zero_point,
                            requant: Requantize::new(real, y.zero_point, lo, hi)?,
                        }
                    }
                    _ => return None,
                }
            }
            Op::QGlobalAvgPool { x, y } if u8_all && y.dtype == DType::U8 => {
                let s = &ins[0].info.shape;
                let area = s[2] * s[3];
                Kind::GlobalAverage {
                    x_zero: x.zero_point,
                    area,
                    requant: mean_requant(*x, *y, area).ok()?,
                }
            }
            _ => return None,
        };
        Some(QElementwise { tile, kind })
    }
}

/// One run of an elementwise kernel over whole buffers.
struct Elementwise<'a, 'b, 'c> {
    kind: Kind,
    ins: &'a [Input<'b>],
    outs: &'a mut [Output<'c>],
}

impl IsaWork for Elementwise<'_, '_, '_> {
    type Output = Result<()>;
    #[inline(always)]
    fn run(self) -> Result<()> {
        let out = &mut self.outs[0];
        match self.kind {
            Kind::Quantize(q) => {
                let (lo, hi) = (q.range().0 as f32, q.range().1 as f32);
                let (scale, zero) = (q.scale, q.zero_point as f32);
                for (o, &v) in out.u8()?.iter_mut().zip(self.ins[0].f32()?) {
                    // As `Quant::quantize`: NaN becomes the zero point.
                    let r = (v / scale).round_ties_even() + zero;
                    *o = if r.is_nan() { zero } else { r.clamp(lo, hi) } as u8;
                }
            }
            Kind::Dequantize(q) => {
                let (scale, zero) = (q.scale, q.zero_point);
                for (o, &v) in out.f32()?.iter_mut().zip(self.ins[0].u8()?) {
                    *o = (v as i32 - zero) as f32 * scale;
                }
            }
            Kind::Add(r) => {
                let (a, b) = (self.ins[0].u8()?, self.ins[1].u8()?);
                for ((o, &x), &z) in out.u8()?.iter_mut().zip(a).zip(b) {
                    *o = r.apply(x as i32, z as i32) as u8;
                }
            }
            Kind::Mul {
                a_zero,
                b_zero,
                requant,
            } => {
                let (a, b) = (self.ins[0].u8()?, self.ins[1].u8()?);
                for ((o, &x), &z) in out.u8()?.iter_mut().zip(a).zip(b) {
                    *o = requant.apply((x as i32 - a_zero) * (z as i32 - b_zero)) as u8;
                }
            }
            Kind::GlobalAverage {
                x_zero,
                area,
                requant,
            } => {
                let x = self.ins[0].u8()?;
                for (o, plane) in out.u8()?.iter_mut().zip(x.chunks_exact(area.max(1))) {
                    let sum: i32 = plane.iter().map(|&v| v as i32).sum();
                    *o = requant.apply(sum - x_zero * area as i32) as u8;
                }
            }
        }
        Ok(())
    }
}

impl<T: QTile> Kernel for QElementwise<T> {
    fn name(&self) -> &'static str {
        T::ELEMENTWISE_NAME
    }
    fn run(
        &self,
        ins: &[Input],
        outs: &mut [Output],
        _scratch: &mut [f32],
        _threads: &Threads,
    ) -> Result<()> {
        self.tile.vectorized(Elementwise {
            kind: self.kind,
            ins,
            outs,
        })
    }
}
