//! Fusion and elimination passes: no-op removal, activation into the
//! conv/gemm epilogue, zero Pad into conv padding.

use crate::error::Result;
use crate::ir::{BinaryOp, CoordTransform, Graph, Op, PadMode, Tensor, UnaryOp};

use super::{replace_uses, retain_unremoved};

/// True when `op` returns its single input unchanged.
fn is_noop(graph: &Graph, op: &Op, input: usize, output: usize) -> bool {
    let same = graph.values[input].info == graph.values[output].info;
    same && match op {
        Op::Identity | Op::Reshape { .. } | Op::Cast { .. } => true,
        Op::Pool(p) => p.kernel == [1, 1] && p.strides == [1, 1] && p.pads == [0; 4],
        Op::Concat { .. } => true,
        Op::Pad { pads, .. } => pads.iter().all(|&(a, b)| a == 0 && b == 0),
        Op::Slice { axes } => axes.iter().all(|a| a.start == 0 && a.step == 1),
        Op::Transpose { perm } => perm.iter().enumerate().all(|(i, &p)| i == p),
        // A crop samples its region even at scale 1.
        Op::Resize { scales, coord, .. } => {
            *coord != CoordTransform::TfCropAndResize && scales.iter().all(|&s| s == 1.0)
        }
        _ => false,
    }
}

/// Drops Identity, Dropout (imported as Identity) and ops that leave their
/// input unchanged. Kept when its output is a graph output (the name matters).
#[allow(clippy::needless_range_loop)] // `i` indexes both nodes and flags
pub fn eliminate_noops(graph: &mut Graph) -> Result<usize> {
    let mut removed = vec![false; graph.nodes.len()];
    for i in 0..graph.nodes.len() {
        let n = &graph.nodes[i];
        if n.inputs.len() != 1 || n.outputs.len() != 1 {
            continue;
        }
        let (x, y) = (n.inputs[0], n.outputs[0]);
        if graph.outputs.contains(&y) || !is_noop(graph, &n.op, x, y) {
            continue;
        }
        replace_uses(graph, y, x);
        removed[i] = true;
    }
    retain_unremoved(graph, &removed);
    Ok(removed.iter().filter(|&&r| r).count())
}

/// Moves a fusable activation into the epilogue of the op before it, also
/// across a Reshape between them (a 1-D conv's unit axis leaving): an
/// elementwise op commutes with a Reshape, which then yields its output.
pub fn fuse_activation(graph: &mut Graph) -> Result<usize> {
    let consumers = graph.consumers();
    let mut removed = vec![false; graph.nodes.len()];
    for j in 0..graph.nodes.len() {
        let Op::Unary(u) = graph.nodes[j].op else {
            continue;
        };
        if !u.is_fusable() {
            continue;
        }
        let x = graph.nodes[j].inputs[0];
        if consumers[x].len() != 1 || graph.outputs.contains(&x) {
            continue;
        }
        // The producer takes over the activation's output; when it is a
        // Reshape, the activation fuses into the node before that.
        let Some(producer) = graph.nodes.iter().position(|n| n.outputs == [x]) else {
            continue;
        };
        let i = match graph.nodes[producer].op {
            Op::Reshape { .. } => {
                let z = graph.nodes[producer].inputs[0];
                match graph.nodes.iter().position(|n| n.outputs == [z]) {
                    Some(k) if consumers[z].len() == 1 && !graph.outputs.contains(&z) => k,
                    _ => continue,
                }
            }
            _ => producer,
        };
        if removed[i] {
            continue;
        }
        let slot = match &mut graph.nodes[i].op {
            Op::Conv { activation, .. }
            | Op::ConvTranspose { activation, .. }
            | Op::Gemm { activation, .. }
            | Op::ChannelAffine { activation } => activation,
            _ => continue,
        };
        if slot.is_some() {
            continue;
        }
        *slot = Some(u);
        graph.nodes[producer].outputs = graph.nodes[j].outputs.clone();
        removed[j] = true;
    }
    retain_unremoved(graph, &removed);
    Ok(removed.iter().filter(|&&r| r).count())
}

/// Merges a constant-zero spatial Pad into the padding of the Conv reading it.
#[allow(clippy::needless_range_loop)] // `p` indexes both nodes and flags
pub fn fuse_pad_into_conv(graph: &mut Graph) -> Result<usize> {
    let consumers = graph.consumers();
    let mut removed = vec![false; graph.nodes.len()];
    for p in 0..graph.nodes.len() {
        let Op::Pad {
            pads,
            mode: PadMode::Constant,
            value,
        } = &graph.nodes[p].op
        else {
            continue;
        };
        if *value != 0.0 || pads.len() != 4 || pads[0] != (0, 0) || pads[1] != (0, 0) {
            continue;
        }
        let pads = pads.clone();
        let y = graph.nodes[p].outputs[0];
        if consumers[y].len() != 1 || graph.outputs.contains(&y) {
            continue;
        }
        let c = consumers[y][0];
        let source = graph.nodes[p].inputs[0];
        let conv = &mut graph.nodes[c];
        let Op::Conv { geometry, .. } = &mut conv.op else {
            continue;
        };
        if conv.inputs[0] != y || conv.inputs[1..].contains(&y) {
            continue;
        }
        geometry.pads[0] += pads[2].0;
        geometry.pads[1] += pads[3].0;
        geometry.pads[2] += pads[2].1;
        geometry.pads[3] += pads[3].1;
        conv.inputs[0] = source;
        removed[p] = true;
    }
    retain_unremoved(graph, &removed);
    Ok(removed.iter().filter(|&&r| r).count())
}

/// Fuses `Add(conv(x), r)` into the Conv as a residual input (added in its
/// epilogue, before any activation fused later), for a Conv without
/// activation whose only reader is the Add. The fused Conv takes the Add's
/// place in node order, where `r` is already computed.
pub fn fuse_residual_add(graph: &mut Graph) -> Result<usize> {
    let consumers = graph.consumers();
    let producers = graph.producers();
    let mut removed = vec![false; graph.nodes.len()];
    let mut count = 0;
    for j in 0..graph.nodes.len() {
        if graph.nodes[j].op != Op::Binary(BinaryOp::Add) || graph.nodes[j].inputs.len() != 2 {
            continue;
        }
        let y = graph.nodes[j].outputs[0];
        let out_info = graph.values[y].info.clone();
        let conv_side = (0..2).find(|&side| {
            let v = graph.nodes[j].inputs[side];
            let other = graph.nodes[j].inputs[1 - side];
            let Some(i) = producers[v] else { return false };
            !removed[i]
                && matches!(
                    graph.nodes[i].op,
                    Op::Conv {
                        activation: None,
                        ..
                    }
                )
                && graph.nodes[i].inputs.len() <= 3
                && consumers[v] == [j]
                && !graph.outputs.contains(&v)
                && graph.values[v].info == out_info
                && graph.values[other].info == out_info
                && graph.values[other].constant.is_none()
        });
        let Some(side) = conv_side else { continue };
        let (v, residual) = (graph.nodes[j].inputs[side], graph.nodes[j].inputs[1 - side]);
        let Some(i) = producers[v] else { continue };
        let mut conv = graph.nodes[i].clone();
        if conv.inputs.len() == 2 {
            let m = graph.values[conv.inputs[1]].info.shape[0];
            let zero = graph.add_constant(
                format!("{}.bias", conv.name),
                Tensor::from_f32(vec![m], vec![0.0; m])?,
            );
            conv.inputs.push(zero);
        }
        conv.inputs.push(residual);
        conv.outputs = vec![y];
        graph.nodes[j] = conv;
        removed[i] = true;
        count += 1;
    }
    retain_unremoved(graph, &removed);
    Ok(count)
}

/// Is `v` the constant scalar `want`?
fn is_scalar(graph: &Graph, v: usize, want: f32) -> bool {
    graph
        .constant(v)
        .and_then(|t| t.as_f32())
        .is_some_and(|d| d.len() == 1 && (d[0] - want).abs() <= 1e-6 * want.abs().max(1.0))
}

/// Rewrites `x * clip(x + 3, 0, 6) / 6` (also `* (1/6)`, either operand
/// order) into one HardSwish, which then fuses into a conv epilogue; and
/// `clip(x + 3, 0, 6) / 6` into a HardSigmoid. Exporters write both as
/// primitive ops.
pub fn fuse_hard_activations(graph: &mut Graph) -> Result<usize> {
    let consumers = graph.consumers();
    let producers = graph.producers();
    let mut removed = vec![false; graph.nodes.len()];
    let mut count = 0;
    let single = |v: usize| consumers[v].len() == 1 && !graph.outputs.contains(&v);
    for d in 0..graph.nodes.len() {
        let n = &graph.nodes[d];
        let scaled = match n.op {
            Op::Binary(BinaryOp::Div)
                if n.inputs.len() == 2 && is_scalar(graph, n.inputs[1], 6.0) =>
            {
                n.inputs[0]
            }
            Op::Binary(BinaryOp::Mul)
                if n.inputs.len() == 2 && is_scalar(graph, n.inputs[1], 1.0 / 6.0) =>
            {
                n.inputs[0]
            }
            _ => continue,
        };
        // The clip(x + 3, 0, 6) node and its x.
        let clip_of = |v: usize| -> Option<(usize, usize)> {
            let c = producers[v]?;
            let Op::Unary(UnaryOp::Clip { min, max }) = graph.nodes[c].op else {
                return None;
            };
            if min != 0.0 || max != 6.0 || !single(v) {
                return None;
            }
            let a = producers[graph.nodes[c].inputs[0]]?;
            let an = &graph.nodes[a];
            if an.op != Op::Binary(BinaryOp::Add) || an.inputs.len() != 2 || !single(an.outputs[0])
            {
                return None;
            }
            let x = match (
                is_scalar(graph, an.inputs[0], 3.0),
                is_scalar(graph, an.inputs[1], 3.0),
            ) {
                (false, true) => an.inputs[0],
                (true, false) => an.inputs[1],
                _ => return None,
            };
            graph.values[x].constant.is_none().then_some((c, a))
        };
        let mut plan: Option<(Vec<usize>, usize, UnaryOp)> = None;
        if let Some((c, a)) = clip_of(scaled) {
            // HardSigmoid: clip(x + 3, 0, 6) / 6.
            let x = graph.nodes[a]
                .inputs
                .iter()
                .copied()
                .find(|&v| graph.values[v].constant.is_none());
            if let Some(x) = x {
                plan = Some((
                    vec![c, a],
                    x,
                    UnaryOp::HardSigmoid {
                        alpha: 1.0 / 6.0,
                        beta: 0.5,
                    },
                ));
            }
        } else if let Some(m) = producers[scaled].filter(|_| single(scaled)) {
            let mn = &graph.nodes[m];
            if mn.op == Op::Binary(BinaryOp::Mul) && mn.inputs.len() == 2 {
                for side in 0..2 {
                    let (x, other) = (mn.inputs[side], mn.inputs[1 - side]);
                    if let Some((c, a)) = clip_of(other) {
                        if graph.nodes[a].inputs.contains(&x) {
                            plan = Some((vec![m, c, a], x, UnaryOp::HardSwish));
                            break;
                        }
                    }
                }
            }
        }
        let Some((gone, x, u)) = plan else { continue };
        if gone.iter().any(|&g| removed[g]) {
            continue;
        }
        gone.iter().for_each(|&g| removed[g] = true);
        graph.nodes[d].op = Op::Unary(u);
        graph.nodes[d].inputs = vec![x];
        count += 1;
    }
    retain_unremoved(graph, &removed);
    Ok(count + fuse_mul_hard_sigmoid(graph))
}

/// Rewrites `x * HardSigmoid(x)` with HardSigmoid's HardSwish constants
/// (alpha 1/6, beta 1/2; either operand order) into one HardSwish: how
/// exporters before ONNX opset 14 write HardSwish.
fn fuse_mul_hard_sigmoid(graph: &mut Graph) -> usize {
    let consumers = graph.consumers();
    let producers = graph.producers();
    let mut removed = vec![false; graph.nodes.len()];
    let mut count = 0;
    for d in 0..graph.nodes.len() {
        let n = &graph.nodes[d];
        if n.op != Op::Binary(BinaryOp::Mul) || n.inputs.len() != 2 {
            continue;
        }
        let hard_sigmoid_of = |side: usize| -> Option<(usize, usize)> {
            let (x, h) = (n.inputs[side], n.inputs[1 - side]);
            let p = producers[h]?;
            let Op::Unary(UnaryOp::HardSigmoid { alpha, beta }) = graph.nodes[p].op else {
                return None;
            };
            let swish = (alpha - 1.0 / 6.0).abs() <= 1e-6 && (beta - 0.5).abs() <= 1e-6;
            let only_here = consumers[h].len() == 1 && !graph.outputs.contains(&h);
            (swish && only_here && graph.nodes[p].inputs[0] == x && !removed[p]).then_some((p, x))
        };
        let Some((p, x)) = hard_sigmoid_of(0).or_else(|| hard_sigmoid_of(1)) else {
            continue;
        };
        removed[p] = true;
        graph.nodes[d].op = Op::Unary(UnaryOp::HardSwish);
        graph.nodes[d].inputs = vec![x];
        count += 1;
    }
    retain_unremoved(graph, &removed);
    count
}
