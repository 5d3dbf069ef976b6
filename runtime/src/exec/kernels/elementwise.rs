//! Elementwise kernels for every ISA with a [`Simd`] token: the reference
//! loops, compiled for the ISA (see [`super::simd`]).

use super::contract::{plane_parts, AlignedF32, Epilogue, Input, Kernel, Output, Threads};
use super::gemm::MicroKernel;
use super::simd::Simd;
use super::Operand;
use crate::error::Result;
use crate::ir::{BinaryOp, PoolKind, UnaryOp};

/// Broadcasting binary op on f32.
#[derive(Debug)]
pub struct Binary<S: Simd> {
    pub simd: S,
    pub op: BinaryOp,
}

impl<S: Simd> Kernel for Binary<S> {
    fn name(&self) -> &'static str {
        S::names().binary
    }
    fn run(&self, ins: &[Input], outs: &mut [Output], _: &mut [f32], _: &Threads) -> Result<()> {
        let shape = outs[0].shape;
        self.simd.binary(
            self.op,
            (ins[0].f32()?, ins[0].shape),
            (ins[1].f32()?, ins[1].shape),
            shape,
            outs[0].f32()?,
        );
        Ok(())
    }
}

/// Unary function on f32.
#[derive(Debug)]
pub struct Unary<S: Simd> {
    pub simd: S,
    pub op: UnaryOp,
}

impl<S: Simd> Kernel for Unary<S> {
    fn name(&self) -> &'static str {
        S::names().unary
    }
    fn run(&self, ins: &[Input], outs: &mut [Output], _: &mut [f32], _: &Threads) -> Result<()> {
        self.simd.unary(self.op, ins[0].f32()?, outs[0].f32()?);
        Ok(())
    }
}

/// Global max or average pooling; planes split across workers.
#[derive(Debug)]
pub struct GlobalPool<S: Simd> {
    pub simd: S,
    pub kind: PoolKind,
}

impl<S: Simd> Kernel for GlobalPool<S> {
    fn name(&self) -> &'static str {
        S::names().global_pool
    }
    fn run(
        &self,
        ins: &[Input],
        outs: &mut [Output],
        _: &mut [f32],
        threads: &Threads,
    ) -> Result<()> {
        let planes = ins[0].shape[0] * ins[0].shape[1];
        let x = ins[0].f32()?;
        let inner = x.len().checked_div(planes).unwrap_or(0);
        let y = &mut outs[0].f32()?[..planes];
        let mut parts = plane_parts(y, 1, threads.count(), &mut [], 0);
        threads.for_each_part(&mut parts, |(p0, ys, _)| {
            let xs = &x[*p0 * inner..][..ys.len() * inner];
            self.simd.global_pool(self.kind, ys.len(), xs, ys);
        });
        Ok(())
    }
}

/// `act(x * scale[c] + shift[c])` with constant scale and shift: the conv
/// epilogue applied to each plane, split across workers by planes.
#[derive(Debug)]
pub struct ChannelAffine<S: Simd> {
    simd: S,
    epilogue: Epilogue,
    channels: usize,
}

impl<S: Simd> ChannelAffine<S> {
    pub fn build(simd: S, activation: Option<UnaryOp>, ins: &[Operand]) -> Option<Self> {
        let scale = ins.get(1)?.constant?.as_f32()?;
        let shift = ins.get(2)?.constant?.as_f32()?;
        let shape = &ins[0].info.shape;
        (shape.len() >= 2 && scale.len() == shape[1] && shift.len() == shape[1]).then(|| {
            ChannelAffine {
                simd,
                epilogue: Epilogue {
                    scale: Some(AlignedF32::from_slice(scale)),
                    bias: Some(AlignedF32::from_slice(shift)),
                    residual: false,
                    activation,
                },
                channels: shape[1],
            }
        })
    }
}

impl<S: Simd> Kernel for ChannelAffine<S> {
    fn name(&self) -> &'static str {
        S::names().channel_affine
    }
    fn packed_bytes(&self) -> usize {
        2 * self.channels * 4
    }
    fn run(
        &self,
        ins: &[Input],
        outs: &mut [Output],
        _: &mut [f32],
        threads: &Threads,
    ) -> Result<()> {
        let x = ins[0].f32()?;
        let inner: usize = ins[0].shape[2..].iter().product();
        let y = outs[0].f32()?;
        if inner == 0 {
            return Ok(());
        }
        let mut parts = plane_parts(y, inner, threads.count(), &mut [], 0);
        threads.for_each_part(&mut parts, |(p0, ys, _)| {
            for (i, yp) in ys.chunks_mut(inner).enumerate() {
                let p = *p0 + i;
                yp.copy_from_slice(&x[p * inner..][..inner]);
                MicroKernel::epilogue(self.simd, &self.epilogue, p % self.channels, yp, None);
            }
        });
        Ok(())
    }
}
