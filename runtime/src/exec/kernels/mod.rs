//! Kernels per ISA behind one dispatch table. The executor only calls
//! through [`Kernels`]; a faster ISA fills the same table with its own
//! functions and is tested against the scalar twin.

pub mod scalar;

use std::sync::Arc;

use crate::ir::{BinaryOp, ConvGeometry, PoolGeometry, PoolKind, Tensor, UnaryOp};
pub use scalar::conv::ConvShape;
pub use scalar::gemm::{GemmBias, MatRef};

/// Conv weights in the layout the table's conv kernel wants, made once at load.
#[derive(Clone, Debug)]
pub struct PackedConv {
    pub data: PackedData,
}

/// Packed weight storage: the model's own tensor when the layout needs no
/// change (no copy at load), else a repacked buffer.
#[derive(Clone, Debug)]
pub enum PackedData {
    Shared(Arc<Tensor>),
    Owned(Vec<f32>),
}

impl PackedData {
    pub fn as_slice(&self) -> &[f32] {
        match self {
            PackedData::Shared(t) => t.as_f32().unwrap_or(&[]),
            PackedData::Owned(v) => v,
        }
    }
}

/// One function per hot operation, all of the same ISA. The signatures are
/// spelled out so each ISA's functions slot in by type.
#[allow(clippy::type_complexity)]
pub struct Kernels {
    pub pack_conv: fn(&ConvGeometry, &Arc<Tensor>) -> PackedConv,
    pub conv2d: fn(&ConvShape, &[f32], &PackedConv, Option<&[f32]>, Option<UnaryOp>, &mut [f32]),
    pub conv_transpose2d:
        fn(&ConvShape, &[f32], &[f32], Option<&[f32]>, Option<UnaryOp>, &mut [f32]),
    pub gemm: fn(MatRef, MatRef, f32, Option<GemmBias>, Option<UnaryOp>, &mut [f32]),
    pub pool2d: fn(&PoolGeometry, [usize; 4], &[f32], [usize; 4], &mut [f32]),
    pub global_pool: fn(PoolKind, usize, &[f32], &mut [f32]),
    pub unary: fn(UnaryOp, &[f32], &mut [f32]),
    pub binary: fn(BinaryOp, (&[f32], &[usize]), (&[f32], &[usize]), &[usize], &mut [f32]),
    pub channel_affine: fn(&[usize], &[f32], &[f32], &[f32], Option<UnaryOp>, &mut [f32]),
    pub softmax: fn(&[f32], &[usize], usize, &mut [f32]),
}

/// The scalar kernel reads ONNX's \[m, c/groups, kh, kw\] layout as is.
fn scalar_pack_conv(_: &ConvGeometry, w: &Arc<Tensor>) -> PackedConv {
    PackedConv {
        data: PackedData::Shared(Arc::clone(w)),
    }
}

fn scalar_conv2d(
    s: &ConvShape,
    x: &[f32],
    w: &PackedConv,
    b: Option<&[f32]>,
    a: Option<UnaryOp>,
    y: &mut [f32],
) {
    scalar::conv::conv2d(s, x, w.data.as_slice(), b, a, y)
}

/// The reference table.
pub static SCALAR: Kernels = Kernels {
    pack_conv: scalar_pack_conv,
    conv2d: scalar_conv2d,
    conv_transpose2d: scalar::conv::conv_transpose2d,
    gemm: scalar::gemm::gemm,
    pool2d: scalar::pool::pool2d,
    global_pool: scalar::pool::global_pool,
    unary: scalar::elementwise::unary,
    binary: scalar::elementwise::binary_f32,
    channel_affine: scalar::elementwise::channel_affine,
    softmax: scalar::reduce::softmax,
};

/// The best table for this CPU, unless `SQUEEZE_ISA` names one (for tests).
pub fn select() -> &'static Kernels {
    match std::env::var("SQUEEZE_ISA").as_deref() {
        Ok("scalar") | Err(_) => &SCALAR,
        Ok(other) => {
            log::warn!("SQUEEZE_ISA={other} is not available here; using scalar kernels");
            &SCALAR
        }
    }
}
