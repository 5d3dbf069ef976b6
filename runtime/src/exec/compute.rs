//! One node's computation on borrowed buffers: maps an [`Op`] to kernel
//! calls. Shared by the arena executor and by constant folding.

use std::sync::Arc;

use smallvec::SmallVec;

use super::kernels::scalar::{elementwise, movement, reduce, resize};
use super::kernels::{ConvShape, GemmBias, Kernels, MatRef, PackedConv};
use crate::error::{Error, Result};
use crate::ir::{Op, Tensor, TensorData, TypeInfo};

/// Borrowed input data.
#[derive(Clone, Copy, Debug)]
pub enum View<'a> {
    F32(&'a [f32]),
    I64(&'a [i64]),
}

/// Borrowed output data.
#[derive(Debug)]
pub enum ViewMut<'a> {
    F32(&'a mut [f32]),
    I64(&'a mut [i64]),
}

#[derive(Clone, Copy, Debug)]
pub struct Input<'a> {
    pub shape: &'a [usize],
    pub data: View<'a>,
}

pub struct Output<'a> {
    pub shape: &'a [usize],
    pub data: ViewMut<'a>,
}

impl<'a> Input<'a> {
    pub fn of(t: &'a Tensor) -> Input<'a> {
        let data = match t.data() {
            TensorData::F32(v) => View::F32(v),
            TensorData::SharedF32(v) => View::F32(v.as_slice()),
            TensorData::I64(v) => View::I64(v),
        };
        Input {
            shape: t.shape(),
            data,
        }
    }
    /// f32 data; validation guarantees the dtype, so a mismatch is a bug
    /// reported as an error rather than a panic.
    fn f32(&self) -> Result<&'a [f32]> {
        match self.data {
            View::F32(v) => Ok(v),
            View::I64(_) => Err(Error::Input("expected f32 data, found i64".into())),
        }
    }
}

impl Output<'_> {
    fn f32(&mut self) -> Result<&mut [f32]> {
        match &mut self.data {
            ViewMut::F32(v) => Ok(v),
            ViewMut::I64(_) => Err(Error::Input("expected f32 output, found i64".into())),
        }
    }
}

/// Weights prepared once at load for ops that have them.
#[derive(Clone, Debug)]
pub enum Prepared {
    Conv(PackedConv),
}

fn dims4(s: &[usize]) -> [usize; 4] {
    [s[0], s[1], s[2], s[3]]
}

/// Applies `f` to the data of matching dtypes (data-movement ops are generic).
macro_rules! by_dtype {
    ($input:expr, $out:expr, |$x:ident, $y:ident| $body:expr) => {
        match ($input, $out) {
            (View::F32($x), ViewMut::F32($y)) => $body,
            (View::I64($x), ViewMut::I64($y)) => $body,
            _ => return Err(Error::Input("input and output dtypes differ".into())),
        }
    };
}

/// Runs `op` on validated inputs into preallocated outputs.
pub fn compute(
    k: &Kernels,
    op: &Op,
    prepared: Option<&Prepared>,
    ins: &[Input],
    outs: &mut [Output],
) -> Result<()> {
    let out_shape = outs[0].shape;
    match op {
        Op::Conv {
            geometry,
            activation,
        }
        | Op::ConvTranspose {
            geometry,
            activation,
            ..
        } => {
            let shape = ConvShape {
                geometry,
                input: dims4(ins[0].shape),
                output: dims4(out_shape),
            };
            let bias = ins.get(2).map(|b| b.f32()).transpose()?;
            let (x, y) = (ins[0].f32()?, outs[0].f32()?);
            if matches!(op, Op::ConvTranspose { .. }) {
                (k.conv_transpose2d)(&shape, x, ins[1].f32()?, bias, *activation, y);
                return Ok(());
            }
            let owned;
            let packed = match prepared {
                Some(Prepared::Conv(p)) => p,
                None => {
                    // Weights computed at run time: pack them now.
                    let w = Arc::new(Tensor::from_f32(
                        ins[1].shape.to_vec(),
                        ins[1].f32()?.to_vec(),
                    )?);
                    owned = (k.pack_conv)(geometry, &w);
                    &owned
                }
            };
            (k.conv2d)(&shape, x, packed, bias, *activation, y);
        }
        Op::BatchNorm { epsilon } => {
            let p: SmallVec<[&[f32]; 4]> =
                ins[1..5].iter().map(|i| i.f32()).collect::<Result<_>>()?;
            let (scale, shift) = elementwise::batchnorm_to_affine(*epsilon, p[0], p[1], p[2], p[3]);
            (k.channel_affine)(
                ins[0].shape,
                ins[0].f32()?,
                &scale,
                &shift,
                None,
                outs[0].f32()?,
            );
        }
        Op::ChannelAffine { activation } => {
            (k.channel_affine)(
                ins[0].shape,
                ins[0].f32()?,
                ins[1].f32()?,
                ins[2].f32()?,
                *activation,
                outs[0].f32()?,
            );
        }
        Op::Unary(u) => (k.unary)(*u, ins[0].f32()?, outs[0].f32()?),
        Op::Binary(b) => match (ins[0].data, ins[1].data, &mut outs[0].data) {
            (View::I64(x), View::I64(z), ViewMut::I64(y)) => {
                elementwise::binary_i64(*b, (x, ins[0].shape), (z, ins[1].shape), out_shape, y)
            }
            _ => (k.binary)(
                *b,
                (ins[0].f32()?, ins[0].shape),
                (ins[1].f32()?, ins[1].shape),
                out_shape,
                outs[0].f32()?,
            ),
        },
        Op::PRelu => elementwise::prelu(
            (ins[0].f32()?, ins[0].shape),
            (ins[1].f32()?, ins[1].shape),
            outs[0].f32()?,
        ),
        Op::Pool(p) => (k.pool2d)(
            p,
            dims4(ins[0].shape),
            ins[0].f32()?,
            dims4(out_shape),
            outs[0].f32()?,
        ),
        Op::GlobalPool(kind) => {
            let planes = ins[0].shape[0] * ins[0].shape[1];
            (k.global_pool)(*kind, planes, ins[0].f32()?, outs[0].f32()?)
        }
        Op::Gemm {
            alpha,
            beta,
            trans_a,
            trans_b,
            activation,
        } => {
            let a = ins[0].shape;
            let (m, kk) = if *trans_a { (a[1], a[0]) } else { (a[0], a[1]) };
            let n = out_shape[1];
            let bias = match ins.get(2) {
                Some(c) => Some(GemmBias {
                    data: c.f32()?,
                    shape: c.shape,
                    beta: *beta,
                }),
                None => None,
            };
            (k.gemm)(
                MatRef {
                    data: ins[0].f32()?,
                    rows: m,
                    cols: kk,
                    transposed: *trans_a,
                },
                MatRef {
                    data: ins[1].f32()?,
                    rows: kk,
                    cols: n,
                    transposed: *trans_b,
                },
                *alpha,
                bias,
                *activation,
                outs[0].f32()?,
            );
        }
        Op::MatMul => {
            let (a, b) = (ins[0].shape, ins[1].shape);
            let a2: SmallVec<[usize; 6]> = if a.len() == 1 {
                [1, a[0]].into_iter().collect()
            } else {
                a.iter().copied().collect()
            };
            let b2: SmallVec<[usize; 6]> = if b.len() == 1 {
                [b[0], 1].into_iter().collect()
            } else {
                b.iter().copied().collect()
            };
            let (m, kk, n) = (a2[a2.len() - 2], a2[a2.len() - 1], b2[b2.len() - 1]);
            let (ab, bb) = (&a2[..a2.len() - 2], &b2[..b2.len() - 2]);
            let yb = crate::ir::broadcast_shapes(ab, bb).unwrap_or_default();
            super::kernels::scalar::gemm::matmul(
                ins[0].f32()?,
                ab,
                ins[1].f32()?,
                bb,
                &yb,
                (m, kk, n),
                outs[0].f32()?,
            );
        }
        Op::Softmax { axis } => (k.softmax)(ins[0].f32()?, ins[0].shape, *axis, outs[0].f32()?),
        Op::Concat { axis } => match &mut outs[0].data {
            ViewMut::F32(y) => {
                let parts: SmallVec<[(&[f32], &[usize]); 8]> = ins
                    .iter()
                    .map(|i| Ok((i.f32()?, i.shape)))
                    .collect::<Result<_>>()?;
                movement::concat(&parts, *axis, y)
            }
            ViewMut::I64(y) => {
                let parts: SmallVec<[(&[i64], &[usize]); 8]> = ins
                    .iter()
                    .map(|i| match i.data {
                        View::I64(v) => Ok((v, i.shape)),
                        View::F32(_) => Err(Error::Input("concat of mixed dtypes".into())),
                    })
                    .collect::<Result<_>>()?;
                movement::concat(&parts, *axis, y)
            }
        },
        Op::Split { axis, .. } => match ins[0].data {
            View::F32(x) => {
                let mut ys: SmallVec<[&mut [f32]; 4]> = SmallVec::new();
                for o in outs.iter_mut() {
                    match &mut o.data {
                        ViewMut::F32(y) => ys.push(y),
                        ViewMut::I64(_) => return Err(Error::Input("split dtype".into())),
                    }
                }
                movement::split(x, ins[0].shape, *axis, &mut ys)
            }
            View::I64(x) => {
                let mut ys: SmallVec<[&mut [i64]; 4]> = SmallVec::new();
                for o in outs.iter_mut() {
                    match &mut o.data {
                        ViewMut::I64(y) => ys.push(y),
                        ViewMut::F32(_) => return Err(Error::Input("split dtype".into())),
                    }
                }
                movement::split(x, ins[0].shape, *axis, &mut ys)
            }
        },
        Op::Slice { axes } => by_dtype!(ins[0].data, &mut outs[0].data, |x, y| movement::slice(
            x,
            ins[0].shape,
            axes,
            y
        )),
        Op::Transpose { perm } => {
            by_dtype!(ins[0].data, &mut outs[0].data, |x, y| movement::transpose(
                x,
                ins[0].shape,
                perm,
                y
            ))
        }
        Op::Reshape { .. } | Op::Identity => {
            by_dtype!(ins[0].data, &mut outs[0].data, |x, y| y.copy_from_slice(x))
        }
        Op::Gather { axis } => {
            let n = ins[0].shape[*axis] as i64;
            let View::I64(raw) = ins[1].data else {
                return Err(Error::Input("Gather indices must be i64".into()));
            };
            let idx: SmallVec<[usize; 16]> = raw
                .iter()
                .map(|&i| {
                    let j = if i < 0 { i + n } else { i };
                    if (0..n).contains(&j) {
                        Ok(j as usize)
                    } else {
                        Err(Error::Input(format!(
                            "Gather index {i} out of range for axis of {n}"
                        )))
                    }
                })
                .collect::<Result<_>>()?;
            by_dtype!(ins[0].data, &mut outs[0].data, |x, y| movement::gather(
                x,
                ins[0].shape,
                *axis,
                &idx,
                y
            ))
        }
        Op::Pad { pads, mode, value } => movement::pad(
            ins[0].f32()?,
            ins[0].shape,
            pads,
            *mode,
            *value,
            outs[0].f32()?,
        ),
        Op::Resize {
            mode,
            coord,
            out_shape: target,
            scales,
            ..
        } => {
            // Separable passes, one per axis that changes; shrinking axes
            // first, so no intermediate is larger than the input or output.
            let mut cur: Vec<f32> = ins[0].f32()?.to_vec();
            let mut shape: Vec<usize> = ins[0].shape.to_vec();
            let mut order: SmallVec<[usize; 6]> = (0..shape.len()).collect();
            order.sort_by_key(|&a| target[a] > shape[a]);
            for axis in order {
                if shape[axis] == target[axis] && scales[axis] == 1.0 {
                    continue;
                }
                let taps =
                    resize::axis_taps(*mode, *coord, scales[axis], shape[axis], target[axis]);
                let mut next_shape = shape.clone();
                next_shape[axis] = target[axis];
                let mut next = vec![0.0; next_shape.iter().product()];
                resize::resize_axis(&cur, &shape, axis, &taps, &mut next);
                cur = next;
                shape = next_shape;
            }
            outs[0].f32()?.copy_from_slice(&cur);
        }
        Op::ReduceMean { axes, .. } => {
            reduce::reduce_mean(ins[0].f32()?, ins[0].shape, axes, outs[0].f32()?)
        }
        Op::Lrn {
            size,
            alpha,
            beta,
            bias,
        } => reduce::lrn(
            ins[0].f32()?,
            ins[0].shape,
            *size,
            *alpha,
            *beta,
            *bias,
            outs[0].f32()?,
        ),
        Op::Cast { .. } => match (ins[0].data, &mut outs[0].data) {
            (View::F32(x), ViewMut::F32(y)) => y.copy_from_slice(x),
            (View::I64(x), ViewMut::I64(y)) => y.copy_from_slice(x),
            (View::F32(x), ViewMut::I64(y)) => {
                y.iter_mut().zip(x).for_each(|(o, &v)| *o = v as i64)
            }
            (View::I64(x), ViewMut::F32(y)) => {
                y.iter_mut().zip(x).for_each(|(o, &v)| *o = v as f32)
            }
        },
    }
    Ok(())
}

/// Evaluates one node on owned tensors (constant folding, tests).
pub fn eval(k: &Kernels, op: &Op, inputs: &[&Tensor]) -> Result<Vec<Tensor>> {
    let infos: Vec<_> = inputs
        .iter()
        .map(|t| TypeInfo::new(t.dtype(), t.shape().to_vec()))
        .collect();
    let refs: Vec<_> = infos.iter().collect();
    let mut outs: Vec<Tensor> = op
        .infer("<eval>", &refs)?
        .into_iter()
        .map(|t| Tensor::zeros(t.dtype, t.shape))
        .collect::<Result<_>>()?;
    let ins: Vec<Input> = inputs.iter().map(|t| Input::of(t)).collect();
    let mut views: Vec<Output> = outs
        .iter_mut()
        .map(|t| {
            let (shape, data) = t.parts_mut();
            let data = match data {
                TensorData::F32(v) => ViewMut::F32(v),
                TensorData::I64(v) => ViewMut::I64(v),
                // `Tensor::zeros` never makes shared data.
                TensorData::SharedF32(_) => ViewMut::F32(&mut []),
            };
            Output { shape, data }
        })
        .collect();
    compute(k, op, None, &ins, &mut views)?;
    drop(views);
    Ok(outs)
}
