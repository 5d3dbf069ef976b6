//! Fusion and elimination passes: no-op removal, activation into the
//! conv/gemm epilogue, zero Pad into conv padding.

use crate::error::Result;
use crate::ir::{BinaryOp, Graph, Op, PadMode, Tensor};

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
        Op::Resize { scales, .. } => scales.iter().all(|&s| s == 1.0),
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

/// Moves a fusable activation into the epilogue of the op before it.
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
        let Some(i) = graph.nodes.iter().position(|n| n.outputs == [x]) else {
            continue;
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
        graph.nodes[i].outputs = graph.nodes[j].outputs.clone();
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
