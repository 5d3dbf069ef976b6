//! One node's computation on borrowed buffers: maps an [`Op`] to kernel
//! calls. Shared by the arena executor and by constant folding.

use smallvec::SmallVec;

use super::conv::ConvShape;
use super::gemm::{GemmBias, MatRef};
use super::{
    conv, einsum, elementwise, gemm, movement, nms, pool, quant, recurrent, reduce, resize,
};
use crate::error::{Error, Result};
use crate::exec::kernels::contract::{Input, Kernel, Output, Threads, View, ViewMut};
use crate::exec::kernels::Operand;
use crate::ir::{CoordTransform, Op, Tensor, TensorData, TypeInfo};

/// The reference kernel of every op: what the SIMD lists do not take, and
/// the twin every fast kernel is tested against.
#[derive(Debug)]
pub struct Reference {
    op: Op,
    scratch_words: usize,
}

impl Reference {
    pub fn new(op: &Op, ins: &[Operand], _outs: &[TypeInfo]) -> Reference {
        Reference {
            op: op.clone(),
            scratch_words: scratch_words(op, ins.first().map_or(&[][..], |i| &i.info.shape)),
        }
    }
}

impl Kernel for Reference {
    fn name(&self) -> &'static str {
        "f32_reference_scalar"
    }
    fn scratch_bytes(&self, _threads: usize) -> usize {
        self.scratch_words * 4
    }
    fn run(
        &self,
        ins: &[Input],
        outs: &mut [Output],
        scratch: &mut [f32],
        _: &Threads,
    ) -> Result<()> {
        compute(&self.op, ins, outs, scratch)
    }
}

/// Scratch of the reference `op` on an input of shape `x`: Resize keeps two
/// intermediates (one pass per changed axis) of at most the larger of the
/// input and output sizes, since shrinking axes go first; a recurrent
/// layer its state and gate sums.
fn scratch_words(op: &Op, x: &[usize]) -> usize {
    match op {
        Op::Resize { out_shape, .. } => {
            let biggest = x.iter().product::<usize>().max(out_shape.iter().product());
            2 * biggest
        }
        Op::Recurrent(r) => recurrent::scratch_words(r),
        // One line's order (u32 positions in f32 words).
        Op::TopK { axis, .. } => x[*axis],
        // One class's candidates (positions of the boxes `[batch, n, 4]`).
        Op::NonMaxSuppression(_) => x.get(1).copied().unwrap_or(0),
        _ => 0,
    }
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
            (View::U8($x), ViewMut::U8($y)) => $body,
            (View::I8($x), ViewMut::I8($y)) => $body,
            (View::I32($x), ViewMut::I32($y)) => $body,
            _ => return Err(Error::Input("input and output dtypes differ".into())),
        }
    };
}

/// The i64 scalar of an op's optional second input (a Trilu `k`, a CumSum
/// axis given at run time), else the value fixed at import.
fn runtime_scalar(ins: &[Input], fixed: i64) -> i64 {
    match ins.get(1).map(|a| a.data) {
        Some(View::I64(v)) => v[0],
        _ => fixed,
    }
}

/// Runs `op` on validated inputs into preallocated outputs; `scratch`
/// holds at least [`scratch_words`] values.
pub fn compute(op: &Op, ins: &[Input], outs: &mut [Output], scratch: &mut [f32]) -> Result<()> {
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
            let residual = ins.get(3).map(|r| r.f32()).transpose()?;
            let (x, w, y) = (ins[0].f32()?, ins[1].f32()?, outs[0].f32()?);
            // With a residual the activation follows the addition.
            let act = if residual.is_some() {
                None
            } else {
                *activation
            };
            if matches!(op, Op::ConvTranspose { .. }) {
                conv::conv_transpose2d(&shape, x, w, bias, act, y);
            } else {
                conv::conv2d(&shape, x, w, bias, act, y);
            }
            if let Some(r) = residual {
                for (o, &v) in y.iter_mut().zip(r) {
                    let s = *o + v;
                    *o = activation.map_or(s, |a| a.apply(s));
                }
            }
        }
        Op::BatchNorm { epsilon } => {
            let p: SmallVec<[&[f32]; 4]> =
                ins[1..5].iter().map(|i| i.f32()).collect::<Result<_>>()?;
            let (x, y) = (ins[0].f32()?, outs[0].f32()?);
            let c = ins[0].shape[1];
            let inner: usize = ins[0].shape[2..].iter().product();
            for (i, (xs, ys)) in x
                .chunks(inner.max(1))
                .zip(y.chunks_mut(inner.max(1)))
                .enumerate()
            {
                let ch = i % c;
                let (scale, shift) = elementwise::batchnorm_channel(
                    *epsilon, p[0][ch], p[1][ch], p[2][ch], p[3][ch],
                );
                for (o, &v) in ys.iter_mut().zip(xs) {
                    *o = v * scale + shift;
                }
            }
        }
        Op::ChannelAffine { activation } => {
            elementwise::channel_affine(
                ins[0].shape,
                ins[0].f32()?,
                ins[1].f32()?,
                ins[2].f32()?,
                *activation,
                outs[0].f32()?,
            );
        }
        Op::Unary(u) => match (ins[0].data, &mut outs[0].data) {
            (View::I64(x), ViewMut::I64(y)) => {
                for (o, &v) in y.iter_mut().zip(x) {
                    *o = u
                        .apply_i64(v)
                        .ok_or_else(|| Error::Input(format!("{} of i64", op.name())))?;
                }
            }
            _ => elementwise::unary(*u, ins[0].f32()?, outs[0].f32()?),
        },
        Op::Binary(b) => match (ins[0].data, ins[1].data, &mut outs[0].data) {
            (View::I64(x), View::I64(z), ViewMut::I64(y)) => {
                elementwise::binary_i64(*b, (x, ins[0].shape), (z, ins[1].shape), out_shape, y)
            }
            _ => elementwise::binary_f32(
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
        Op::Pool(p) => pool::pool2d(
            p,
            dims4(ins[0].shape),
            ins[0].f32()?,
            dims4(out_shape),
            outs[0].f32()?,
        ),
        Op::GlobalPool(kind) => {
            let planes = ins[0].shape[0] * ins[0].shape[1];
            pool::global_pool(*kind, planes, ins[0].f32()?, outs[0].f32()?)
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
            gemm::gemm(
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
            // The output's leading dims are the broadcast batch dims (as
            // validated), whatever 1-D operand dims were dropped after them.
            let yb = &out_shape[..ab.len().max(bb.len())];
            gemm::matmul(
                ins[0].f32()?,
                ab,
                ins[1].f32()?,
                bb,
                yb,
                (m, kk, n),
                outs[0].f32()?,
            );
        }
        Op::Softmax { axis } => reduce::softmax(ins[0].f32()?, ins[0].shape, *axis, outs[0].f32()?),
        Op::LayerNorm { axis, epsilon, .. } => {
            let n: usize = ins[0].shape[*axis..].iter().product();
            let bias = match ins.get(2) {
                Some(b) => Some(b.f32()?),
                None => None,
            };
            let (y, rest) = outs.split_at_mut(1);
            let stats = match rest {
                [m, s] => Some((m.f32()?, s.f32()?)),
                _ => None,
            };
            reduce::layer_norm(
                ins[0].f32()?,
                n,
                *epsilon,
                ins[1].f32()?,
                bias,
                y[0].f32()?,
                stats,
            )
        }
        Op::ArgExtreme {
            max,
            axis,
            select_last,
            ..
        } => reduce::arg_extreme(
            ins[0].f32()?,
            ins[0].shape,
            *axis,
            *max,
            *select_last,
            outs[0].i64()?,
        ),
        Op::Hardmax { axis } => reduce::hardmax(ins[0].f32()?, ins[0].shape, *axis, outs[0].f32()?),
        Op::LogSoftmax { axis } => {
            reduce::log_softmax(ins[0].f32()?, ins[0].shape, *axis, outs[0].f32()?)
        }
        Op::Concat { axis } => {
            macro_rules! concat_as {
                ($variant:ident, $y:expr) => {{
                    let parts: SmallVec<[(&[_], &[usize]); 8]> = ins
                        .iter()
                        .map(|i| match i.data {
                            View::$variant(v) => Ok((v, i.shape)),
                            _ => Err(Error::Input("concat of mixed dtypes".into())),
                        })
                        .collect::<Result<_>>()?;
                    movement::concat(&parts, *axis, $y)
                }};
            }
            match &mut outs[0].data {
                ViewMut::F32(y) => concat_as!(F32, y),
                ViewMut::I64(y) => concat_as!(I64, y),
                ViewMut::U8(y) => concat_as!(U8, y),
                ViewMut::I8(y) => concat_as!(I8, y),
                ViewMut::I32(y) => concat_as!(I32, y),
            }
        }
        Op::Split { axis, .. } => {
            macro_rules! split_as {
                ($variant:ident, $x:expr) => {{
                    let mut ys: SmallVec<[&mut [_]; 4]> = SmallVec::new();
                    for o in outs.iter_mut() {
                        match &mut o.data {
                            ViewMut::$variant(y) => ys.push(y),
                            _ => return Err(Error::Input("split dtype".into())),
                        }
                    }
                    movement::split($x, ins[0].shape, *axis, &mut ys)
                }};
            }
            match ins[0].data {
                View::F32(x) => split_as!(F32, x),
                View::I64(x) => split_as!(I64, x),
                View::U8(x) => split_as!(U8, x),
                View::I8(x) => split_as!(I8, x),
                View::I32(x) => split_as!(I32, x),
            }
        }
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
        Op::Expand { .. } => by_dtype!(ins[0].data, &mut outs[0].data, |x, y| {
            let from = (x, ins[0].shape);
            elementwise::broadcast_binary(from, from, out_shape, y, |v, _| v)
        }),
        Op::Compare(c) => {
            let (sa, sb) = (ins[0].shape, ins[1].shape);
            match (ins[0].data, ins[1].data, &mut outs[0].data) {
                (View::F32(a), View::F32(b), ViewMut::I64(y)) => {
                    elementwise::compare(*c, (a, sa), (b, sb), out_shape, y)
                }
                (View::I64(a), View::I64(b), ViewMut::I64(y)) => {
                    elementwise::compare(*c, (a, sa), (b, sb), out_shape, y)
                }
                _ => return Err(Error::Input("compared operands differ in type".into())),
            }
        }
        Op::Bitwise(b) => match (ins[0].data, ins[1].data, &mut outs[0].data) {
            (View::I64(x), View::I64(z), ViewMut::I64(y)) => elementwise::broadcast_binary(
                (x, ins[0].shape),
                (z, ins[1].shape),
                out_shape,
                y,
                |p, q| b.apply(p, q),
            ),
            _ => return Err(Error::Input("bitwise operands are i64".into())),
        },
        Op::Recurrent(rec) => {
            let x = ins[0].shape;
            let products = recurrent::PlainProducts {
                rec,
                shape: [x[0], x[1], x[2]],
                x: ins[0].f32()?,
                w: ins[1].f32()?,
                r: ins[2].f32()?,
                bias: ins[3].f32()?,
            };
            let io = recurrent::io(ins, outs)?;
            recurrent::recurrent(rec, [x[0], x[1]], &products, io, scratch);
        }
        Op::NonMaxSuppression(p) => {
            let s = ins[1].shape;
            let order: &mut [u32] = bytemuck::cast_slice_mut(&mut scratch[..s[2]]);
            let (boxes, scores) = (ins[0].f32()?, ins[1].f32()?);
            nms::nms(p, boxes, scores, [s[0], s[1], s[2]], order, outs[0].i64()?);
        }
        Op::TopK { axis, k, largest } => {
            let (values, rest) = outs.split_at_mut(1);
            let shape = ins[0].shape;
            let lines = movement::Lines::new(shape, *axis);
            let order: &mut [u32] = bytemuck::cast_slice_mut(&mut scratch[..lines.len]);
            movement::top_k(
                ins[0].f32()?,
                lines,
                (*k, *largest),
                order,
                values[0].f32()?,
                rest[0].i64()?,
            );
        }
        Op::GatherNd { batch_dims } => {
            let View::I64(idx) = ins[1].data else {
                return Err(Error::Input("GatherND indices must be i64".into()));
            };
            let out_of_range = |i: i64| Error::Input(format!("GatherND index {i} out of range"));
            let at = movement::NdIndex {
                shape: ins[0].shape,
                indices: idx,
                index_shape: ins[1].shape,
                batch_dims: *batch_dims,
            };
            by_dtype!(ins[0].data, &mut outs[0].data, |x, y| {
                movement::gather_nd(x, &at, y).map_err(out_of_range)?
            })
        }
        Op::Einsum { terms, output } => {
            let xs: SmallVec<[(&[f32], &[usize]); 4]> = ins
                .iter()
                .map(|i| Ok((i.f32()?, i.shape)))
                .collect::<Result<_>>()?;
            let shapes: SmallVec<[&[usize]; 4]> = ins.iter().map(|i| i.shape).collect();
            let sizes = crate::ir::einsum_sizes(terms, &shapes)
                .ok_or_else(|| Error::Input("einsum operands disagree".into()))?;
            einsum::einsum(&xs, terms, output, &sizes, outs[0].f32()?);
        }
        Op::BitShift { left, width } => match (ins[0].data, ins[1].data, &mut outs[0].data) {
            (View::I64(a), View::I64(b), ViewMut::I64(y)) => elementwise::broadcast_binary(
                (a, ins[0].shape),
                (b, ins[1].shape),
                out_shape,
                y,
                |x, s| {
                    let mask = u64::MAX >> (64 - width);
                    let (x, s) = (x as u64, u32::try_from(s).unwrap_or(64));
                    let shifted = match left {
                        true => x.checked_shl(s).unwrap_or(0) & mask,
                        false => x.checked_shr(s).unwrap_or(0),
                    };
                    shifted as i64
                },
            ),
            _ => return Err(Error::Input("BitShift operands are i64".into())),
        },
        Op::OneHot { axis, depth } => {
            let indices = ins[0].data;
            if !matches!(indices, View::I64(_) | View::F32(_)) {
                return Err(Error::Input("OneHot indices are i64 or f32".into()));
            }
            // Read in place: collecting them allocated per run.
            let index = |p: usize| match indices {
                View::F32(v) => v[p] as i64,
                View::I64(v) => v[p],
                _ => 0,
            };
            let lines = movement::Lines::new(out_shape, *axis);
            by_dtype!(ins[1].data, &mut outs[0].data, |values, y| {
                movement::one_hot(index, *depth, [values[0], values[1]], lines, y)
            })
        }
        Op::Where => {
            let View::I64(cond) = ins[0].data else {
                return Err(Error::Input("Where's condition is i64".into()));
            };
            let cond = (cond, ins[0].shape);
            match (ins[1].data, ins[2].data, &mut outs[0].data) {
                (View::F32(x), View::F32(z), ViewMut::F32(y)) => {
                    elementwise::select(cond, (x, ins[1].shape), (z, ins[2].shape), out_shape, y)
                }
                (View::I64(x), View::I64(z), ViewMut::I64(y)) => {
                    elementwise::select(cond, (x, ins[1].shape), (z, ins[2].shape), out_shape, y)
                }
                _ => return Err(Error::Input("Where's operands differ in type".into())),
            }
        }
        Op::ScatterElements { reduction, .. } | Op::ScatterNd { reduction } => {
            let View::I64(idx) = ins[1].data else {
                return Err(Error::Input("scatter indices must be i64".into()));
            };
            let y = outs[0].f32()?;
            y.copy_from_slice(ins[0].f32()?);
            let (shape, updates) = (ins[0].shape, ins[2].f32()?);
            let done = match op {
                Op::ScatterElements { axis, .. } => movement::scatter_elements(
                    shape,
                    idx,
                    ins[1].shape,
                    updates,
                    *axis,
                    *reduction,
                    y,
                ),
                _ => {
                    let q = ins[1].shape.last().copied().unwrap_or(0);
                    movement::scatter_nd(shape, idx, q, updates, *reduction, y)
                }
            };
            done.map_err(|i| Error::Input(format!("{} index {i} out of range", op.name())))?
        }
        Op::CumSum {
            axis,
            exclusive,
            reverse,
        } => {
            let axis = runtime_scalar(ins, *axis);
            let rank = ins[0].shape.len() as i64;
            let axis = if axis < 0 { axis + rank } else { axis };
            if !(0..rank).contains(&axis) {
                return Err(Error::Input(format!("CumSum axis {axis} of rank {rank}")));
            }
            by_dtype!(ins[0].data, &mut outs[0].data, |x, y| {
                movement::cumsum(x, ins[0].shape, axis as usize, *exclusive, *reverse, y)
            })
        }
        Op::Trilu { upper, k } => {
            let k = runtime_scalar(ins, *k);
            by_dtype!(ins[0].data, &mut outs[0].data, |x, y| {
                movement::trilu(x, ins[0].shape, *upper, k, y)
            })
        }
        Op::Tile { repeats } => by_dtype!(ins[0].data, &mut outs[0].data, |x, y| {
            movement::tile(x, ins[0].shape, repeats, y)
        }),
        Op::GatherElements { axis } => {
            let View::I64(idx) = ins[1].data else {
                return Err(Error::Input("GatherElements indices must be i64".into()));
            };
            let out_of_range =
                |i: i64| Error::Input(format!("GatherElements index {i} out of range"));
            by_dtype!(ins[0].data, &mut outs[0].data, |x, y| {
                movement::gather_elements(x, ins[0].shape, idx, ins[1].shape, *axis, y)
                    .map_err(out_of_range)?
            })
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
            // Intermediates ping-pong between the two halves of scratch.
            let x = ins[0].f32()?;
            let mut shape: SmallVec<[usize; 6]> = ins[0].shape.iter().copied().collect();
            let crops: SmallVec<[Option<resize::AxisCrop>; 6]> = match ins.get(1) {
                Some(roi) if *coord == CoordTransform::TfCropAndResize => {
                    resize::AxisCrop::from_roi(roi.f32()?, shape.len())
                        .map(Some)
                        .collect()
                }
                _ => smallvec::smallvec![None; shape.len()],
            };
            let cropped = |a: usize| crops[a].is_some_and(|c| (c.start, c.end) != (0.0, 1.0));
            let mut order: SmallVec<[usize; 6]> = (0..shape.len())
                .filter(|&a| shape[a] != target[a] || scales[a] != 1.0 || cropped(a))
                .collect();
            order.sort_by_key(|&a| target[a] > shape[a]);
            let y = outs[0].f32()?;
            if order.is_empty() {
                y.copy_from_slice(x);
            }
            let half = scratch.len() / 2;
            let (ping, pong) = scratch.split_at_mut(half);
            let mut cur_in_ping = None;
            for (step, &axis) in order.iter().enumerate() {
                let map = resize::AxisMap {
                    mode: *mode,
                    coord: *coord,
                    scale: scales[axis],
                    len_in: shape[axis],
                    len_out: target[axis],
                    crop: crops[axis],
                };
                let mut next_shape = shape.clone();
                next_shape[axis] = target[axis];
                let len: usize = next_shape.iter().product();
                let src_len: usize = shape.iter().product();
                let last = step + 1 == order.len();
                match (cur_in_ping, last) {
                    (None, true) => resize::resize_axis(x, &shape, axis, &map, y),
                    (None, false) => resize::resize_axis(x, &shape, axis, &map, &mut ping[..len]),
                    (Some(true), true) => {
                        resize::resize_axis(&ping[..src_len], &shape, axis, &map, y)
                    }
                    (Some(false), true) => {
                        resize::resize_axis(&pong[..src_len], &shape, axis, &map, y)
                    }
                    (Some(true), false) => {
                        resize::resize_axis(&ping[..src_len], &shape, axis, &map, &mut pong[..len])
                    }
                    (Some(false), false) => {
                        resize::resize_axis(&pong[..src_len], &shape, axis, &map, &mut ping[..len])
                    }
                }
                cur_in_ping = Some(!cur_in_ping.unwrap_or(false));
                shape = next_shape;
            }
        }
        Op::ReduceMean { axes, .. } => {
            reduce::reduce_mean(ins[0].f32()?, ins[0].shape, axes, outs[0].f32()?)
        }
        Op::Reduce { kind, axes, .. } => {
            reduce::reduce(*kind, ins[0].f32()?, ins[0].shape, axes, outs[0].f32()?)
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
        Op::Cast { .. } => cast(ins[0].data, &mut outs[0].data),
        Op::Quantize(q) => quant::quantize(*q, ins[0].f32()?, &mut outs[0].data)?,
        Op::Dequantize(q) => quant::dequantize(*q, ins[0].data, outs[0].f32()?),
        Op::QConv {
            geometry,
            x,
            y,
            activation,
        } => {
            let shape = ConvShape {
                geometry,
                input: dims4(ins[0].shape),
                output: dims4(out_shape),
            };
            let requant = quant::conv_requantizers(*x, *y, ins[2].f32()?, *activation)?;
            let bias = ins.get(3).map(|b| b.i32()).transpose()?;
            quant::qconv2d(
                &shape,
                ins[0].data,
                x.zero_point,
                ins[1].i8()?,
                bias,
                &requant,
                &mut outs[0].data,
            )?;
        }
        Op::QBinary { op, a, b, y } => quant::qbinary(
            *op,
            (ins[0].data, *a, ins[0].shape),
            (ins[1].data, *b, ins[1].shape),
            *y,
            out_shape,
            &mut outs[0].data,
        )?,
        Op::QGlobalAvgPool { x, y } => {
            let s = ins[0].shape;
            quant::qglobal_avg_pool(ins[0].data, *x, *y, s[2] * s[3], &mut outs[0].data)?
        }
    }
    Ok(())
}

/// Evaluates one node on owned tensors (constant folding, tests).
pub fn eval(op: &Op, inputs: &[&Tensor]) -> Result<Vec<Tensor>> {
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
                TensorData::U8(v) => ViewMut::U8(v),
                TensorData::I8(v) => ViewMut::I8(v),
                TensorData::I32(v) => ViewMut::I32(v),
                // `Tensor::zeros` never makes shared data.
                TensorData::SharedF32(_) => ViewMut::F32(&mut []),
            };
            Output { shape, data }
        })
        .collect();
    let first = inputs.first().map_or(&[][..], |t| t.shape());
    let mut scratch = vec![0.0; scratch_words(op, first)];
    compute(op, &ins, &mut views, &mut scratch)?;
    drop(views);
    Ok(outs)
}

/// Cast between any two dtypes: floats to integers truncate toward zero
/// and saturate, integers to narrower integers wrap (as ONNX leaves it).
fn cast(x: View, y: &mut ViewMut) {
    fn fill<T, U: Copy>(x: &[U], y: &mut [T], f: impl Fn(U) -> T) {
        y.iter_mut().zip(x).for_each(|(o, &v)| *o = f(v));
    }
    macro_rules! from_int {
        ($x:expr) => {
            match y {
                ViewMut::F32(y) => fill($x, y, |v| v as f32),
                ViewMut::I64(y) => fill($x, y, |v| v as i64),
                ViewMut::U8(y) => fill($x, y, |v| v as u8),
                ViewMut::I8(y) => fill($x, y, |v| v as i8),
                ViewMut::I32(y) => fill($x, y, |v| v as i32),
            }
        };
    }
    match x {
        View::F32(x) => match y {
            ViewMut::F32(y) => y.copy_from_slice(x),
            ViewMut::I64(y) => fill(x, y, |v| v as i64),
            ViewMut::U8(y) => fill(x, y, |v| v as u8),
            ViewMut::I8(y) => fill(x, y, |v| v as i8),
            ViewMut::I32(y) => fill(x, y, |v| v as i32),
        },
        View::I64(x) => from_int!(x),
        View::U8(x) => from_int!(x),
        View::I8(x) => from_int!(x),
        View::I32(x) => from_int!(x),
    }
}
