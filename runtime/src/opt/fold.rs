//! Folding passes: constant subgraphs, and BatchNormalization into the
//! weights of the Conv / ConvTranspose / Gemm before it.

use std::sync::Arc;

use super::retain_unremoved;
use crate::error::Result;
use crate::exec::kernels::scalar::elementwise::batchnorm_to_affine;
use crate::exec::kernels::scalar::reference as compute;
use crate::ir::{BinaryOp, Graph, Op, Tensor};

/// Evaluates nodes whose inputs are all constants.
#[allow(clippy::needless_range_loop)] // `i` indexes both nodes and flags
pub fn fold_constants(graph: &mut Graph) -> Result<usize> {
    let mut removed = vec![false; graph.nodes.len()];
    let mut count = 0;
    for i in 0..graph.nodes.len() {
        let node = &graph.nodes[i];
        if node.op.rows_depend_on_data() {
            continue;
        }
        let consts: Option<Vec<&Tensor>> = node.inputs.iter().map(|&v| graph.constant(v)).collect();
        let Some(consts) = consts else { continue };
        let results = compute::eval(&node.op, &consts)?;
        let outs = node.outputs.clone();
        for (o, t) in outs.into_iter().zip(results) {
            graph.values[o].constant = Some(Arc::new(t));
        }
        removed[i] = true;
        count += 1;
    }
    retain_unremoved(graph, &removed);
    Ok(count)
}

fn f32_const(graph: &Graph, v: usize) -> Option<Vec<f32>> {
    graph
        .constant(v)
        .and_then(|t| t.as_f32())
        .map(|d| d.to_vec())
}

/// Folds each BatchNormalization into its producer when it is the only
/// reader of a Conv/ConvTranspose/Gemm without activation; a BN with
/// nothing to fold into becomes a per-channel scale and shift.
pub fn fold_batchnorm(graph: &mut Graph) -> Result<usize> {
    let consumers = graph.consumers();
    let producers = graph.producers();
    let mut removed = vec![false; graph.nodes.len()];
    let mut count = 0;
    for i in 0..graph.nodes.len() {
        let Op::BatchNorm { epsilon } = graph.nodes[i].op else {
            continue;
        };
        let ins = graph.nodes[i].inputs.clone();
        let params: Option<Vec<Vec<f32>>> = ins[1..].iter().map(|&v| f32_const(graph, v)).collect();
        let Some(p) = params else { continue };
        let (scale, shift) = batchnorm_to_affine(epsilon, &p[0], &p[1], &p[2], &p[3]);
        let x = ins[0];
        let bn_out = graph.nodes[i].outputs[0];
        let target = producers[x].filter(|&j| {
            !removed[j]
                && consumers[x].len() == 1
                && !graph.outputs.contains(&x)
                && graph.nodes[j].op.activation().is_none()
                // A fused residual would be scaled too.
                && graph.nodes[j].inputs.len() <= 3
        });
        if let Some(j) = target.filter(|&j| fold_into(graph, j, &scale, &shift)) {
            graph.nodes[j].outputs[0] = bn_out;
            removed[i] = true;
        } else {
            let name = graph.nodes[i].name.clone();
            let (s, t) = affine_constants(graph, &name, scale, shift)?;
            graph.nodes[i].op = Op::ChannelAffine { activation: None };
            graph.nodes[i].inputs = vec![x, s, t];
        }
        count += 1;
    }
    retain_unremoved(graph, &removed);
    Ok(count)
}

/// Per-channel values of constant `c` broadcast against an output of
/// `shape` (channels on axis 1): a scalar, or a shape that is 1 on every
/// axis but the channel axis. `None` otherwise.
fn per_channel(graph: &Graph, c: usize, shape: &[usize]) -> Option<Vec<f32>> {
    let t = graph.constant(c)?;
    let v = t.as_f32()?;
    let (rank, channels) = (shape.len(), *shape.get(1)?);
    let cs = t.shape();
    if v.len() == 1 {
        return Some(vec![v[0]; channels]);
    }
    let lead = rank.checked_sub(cs.len())?;
    let only_channels = cs
        .iter()
        .enumerate()
        .all(|(i, &d)| d == 1 || (i + lead == 1 && d == channels));
    (only_channels && v.len() == channels).then(|| v.to_vec())
}

/// Folds a Mul, Div, Add or Sub by a per-channel (or scalar) constant into
/// the weights and bias of the Conv / ConvTranspose / Gemm before it, when
/// that op has no activation and no other reader (the affine layers that
/// exporters leave as primitive ops). Where there is no such op, it joins
/// the channel affine before it, or becomes one: a scale after an
/// activation then an offset (PP-LCNet's learnable affine blocks) is one
/// pass over the tensor, not two.
pub fn fold_affine(graph: &mut Graph) -> Result<usize> {
    let consumers = graph.consumers();
    let producers = graph.producers();
    let mut removed = vec![false; graph.nodes.len()];
    let mut count = 0;
    for i in 0..graph.nodes.len() {
        let Op::Binary(op) = graph.nodes[i].op else {
            continue;
        };
        let ins = graph.nodes[i].inputs.clone();
        if ins.len() != 2 {
            continue;
        }
        // The data operand is the non-constant one; Div and Sub only fold
        // with the data first.
        let (x, c) = match (graph.constant(ins[0]), graph.constant(ins[1])) {
            (None, Some(_)) => (ins[0], ins[1]),
            (Some(_), None) if matches!(op, BinaryOp::Mul | BinaryOp::Add) => (ins[1], ins[0]),
            _ => continue,
        };
        let out = graph.nodes[i].outputs[0];
        let shape = graph.values[out].info.shape.clone();
        if graph.values[x].info.shape != shape {
            continue;
        }
        let Some(k) = per_channel(graph, c, &shape) else {
            continue;
        };
        let ones = vec![1.0; k.len()];
        let zeros = vec![0.0; k.len()];
        let (scale, shift) = match op {
            BinaryOp::Mul => (k, zeros),
            BinaryOp::Div if k.iter().all(|&v| v != 0.0) => {
                (k.iter().map(|v| 1.0 / v).collect(), zeros)
            }
            BinaryOp::Add => (ones, k),
            BinaryOp::Sub => (ones, k.iter().map(|v| -v).collect()),
            _ => continue,
        };
        let target = producers[x].filter(|&j| {
            !removed[j]
                && consumers[x].len() == 1
                && !graph.outputs.contains(&x)
                && graph.nodes[j].op.activation().is_none()
                && graph.nodes[j].inputs.len() <= 3
                && matches!(
                    graph.nodes[j].op,
                    Op::Conv { .. } | Op::ConvTranspose { .. } | Op::Gemm { .. }
                )
        });
        if let Some(j) = target.filter(|&j| fold_into(graph, j, &scale, &shift)) {
            graph.nodes[j].outputs[0] = out;
            removed[i] = true;
            count += 1;
            continue;
        }
        if producers[x].is_some_and(|j| removed[j]) {
            // Its producer just folded away: the next round sees the new one.
            continue;
        }
        let affine = producers[x].filter(|&j| {
            !removed[j]
                && consumers[x].len() == 1
                && !graph.outputs.contains(&x)
                && graph.nodes[j].op == Op::ChannelAffine { activation: None }
        });
        let name = graph.nodes[i].name.clone();
        if let Some(j) = affine {
            let ins_j = graph.nodes[j].inputs.clone();
            let (Some(s1), Some(t1)) = (f32_const(graph, ins_j[1]), f32_const(graph, ins_j[2]))
            else {
                continue;
            };
            if s1.len() != scale.len() || t1.len() != scale.len() {
                continue;
            }
            // (x·s1 + t1)·s + t = x·(s1·s) + (t1·s + t)
            let s: Vec<f32> = s1.iter().zip(&scale).map(|(a, b)| a * b).collect();
            let t: Vec<f32> = t1
                .iter()
                .zip(&scale)
                .zip(&shift)
                .map(|((a, b), c)| a * b + c)
                .collect();
            let (s, t) = affine_constants(graph, &name, s, t)?;
            graph.nodes[j].inputs = vec![ins_j[0], s, t];
            graph.nodes[j].outputs[0] = out;
            removed[i] = true;
        } else if feeds_constant_binary(graph, &consumers[out], out) {
            // Only where the next op joins it: a lone constant op may be
            // part of a pattern another pass rewrites (HardSwish's `+ 3`).
            let (s, t) = affine_constants(graph, &name, scale, shift)?;
            graph.nodes[i].op = Op::ChannelAffine { activation: None };
            graph.nodes[i].inputs = vec![x, s, t];
        } else {
            continue;
        }
        count += 1;
    }
    retain_unremoved(graph, &removed);
    Ok(count)
}

/// Whether `v`, a graph value read only by `readers`, feeds exactly one
/// Mul, Div, Add or Sub whose other operand is a constant.
fn feeds_constant_binary(graph: &Graph, readers: &[usize], v: usize) -> bool {
    let [r] = readers else { return false };
    let n = &graph.nodes[*r];
    let affine_op = matches!(
        n.op,
        Op::Binary(BinaryOp::Mul | BinaryOp::Div | BinaryOp::Add | BinaryOp::Sub)
    );
    let other = n.inputs.iter().find(|&&u| u != v);
    affine_op
        && n.inputs.len() == 2
        && !graph.outputs.contains(&v)
        && other.is_some_and(|&u| graph.constant(u).is_some())
}

/// Per-channel scale and shift constants for a ChannelAffine node.
fn affine_constants(
    graph: &mut Graph,
    name: &str,
    scale: Vec<f32>,
    shift: Vec<f32>,
) -> Result<(usize, usize)> {
    let c = scale.len();
    let s = graph.add_constant(format!("{name}.scale"), Tensor::from_f32(vec![c], scale)?);
    let t = graph.add_constant(format!("{name}.shift"), Tensor::from_f32(vec![c], shift)?);
    Ok((s, t))
}

/// Rewrites node `j`'s weights and bias so its output is `y*scale + shift`
/// per output channel. Returns false (changing nothing) when it cannot.
fn fold_into(graph: &mut Graph, j: usize, scale: &[f32], shift: &[f32]) -> bool {
    let node = &graph.nodes[j];
    let Some(w_t) = graph.constant(node.inputs[1]) else {
        return false;
    };
    let Some(w) = w_t.as_f32() else { return false };
    let w_shape = w_t.shape().to_vec();
    let c = scale.len();
    let bias: Vec<f32> = match node.inputs.get(2) {
        None => vec![0.0; c],
        Some(&b) => match f32_const(graph, b) {
            Some(b) if b.len() == c => b,
            _ => return false,
        },
    };
    let mut w = w.to_vec();
    let mut new_op = node.op.clone();
    match &mut new_op {
        Op::Conv { .. } => {
            let per = w.len() / c.max(1);
            for (k, chunk) in w.chunks_mut(per.max(1)).enumerate() {
                chunk.iter_mut().for_each(|v| *v *= scale[k]);
            }
        }
        Op::ConvTranspose { geometry, .. } => {
            // weights [cin, m/g, kh, kw]; output channel = group*(m/g) + j
            let (cin, mg, khw) = (w_shape[0], w_shape[1], w_shape[2] * w_shape[3]);
            let cg = cin / geometry.groups;
            for ic in 0..cin {
                for jj in 0..mg {
                    let oc = (ic / cg) * mg + jj;
                    w[(ic * mg + jj) * khw..][..khw]
                        .iter_mut()
                        .for_each(|v| *v *= scale[oc]);
                }
            }
        }
        Op::Gemm { trans_b, beta, .. } => {
            let (rows, cols) = (w_shape[0], w_shape[1]);
            for r in 0..rows {
                for col in 0..cols {
                    let n = if *trans_b { r } else { col };
                    w[r * cols + col] *= scale[n];
                }
            }
            // beta*C becomes part of the folded bias, broadcast over rows.
            // Only a per-column C ([N] or [1, N]) folds into a per-channel bias.
            if node.inputs.len() == 3 {
                let shape = graph.values[node.inputs[2]].info.shape.as_slice();
                if !(shape == [c] || shape == [1, c]) {
                    return false;
                }
            }
            let b2: Vec<f32> = bias.iter().map(|v| v * *beta).collect();
            *beta = 1.0;
            return finish(graph, j, new_op, w, w_shape, &b2, scale, shift);
        }
        _ => return false,
    }
    finish(graph, j, new_op, w, w_shape, &bias, scale, shift)
}

#[allow(clippy::too_many_arguments)]
fn finish(
    graph: &mut Graph,
    j: usize,
    op: Op,
    w: Vec<f32>,
    w_shape: Vec<usize>,
    bias: &[f32],
    scale: &[f32],
    shift: &[f32],
) -> bool {
    let b: Vec<f32> = bias
        .iter()
        .zip(scale)
        .zip(shift)
        .map(|((b, s), t)| b * s + t)
        .collect();
    let name = graph.nodes[j].name.clone();
    let (Ok(wt), Ok(bt)) = (
        Tensor::from_f32(w_shape, w),
        Tensor::from_f32(vec![b.len()], b),
    ) else {
        return false;
    };
    let wv = graph.add_constant(format!("{name}.weight_bn"), wt);
    let bv = graph.add_constant(format!("{name}.bias_bn"), bt);
    let node = &mut graph.nodes[j];
    node.op = op;
    node.inputs.truncate(1);
    node.inputs.extend([wv, bv]);
    true
}
