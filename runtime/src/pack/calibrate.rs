//! Calibration for weight-only quantization: the mean of every conv/gemm
//! input over real samples, used to cancel the mean shift that rounding the
//! weights adds to each output channel (bias correction, Nagel et al. 2019).

use std::collections::HashMap;
use std::sync::Arc;

use crate::error::Result;
use crate::exec::{ExecOptions, Executor};
use crate::ir::{Graph, Op, Tensor, ValueId};

/// Per-channel means of the data input of each weighted node, by value id.
pub fn input_means(graph: &Graph, samples: &[Vec<Tensor>]) -> Result<HashMap<ValueId, Vec<f64>>> {
    let mut probe = graph.clone();
    let mut wanted: Vec<ValueId> = Vec::new();
    for n in &graph.nodes {
        if matches!(n.op, Op::Conv { .. } | Op::Gemm { trans_a: false, .. })
            && !wanted.contains(&n.inputs[0])
        {
            wanted.push(n.inputs[0]);
        }
    }
    probe.outputs = wanted.clone();
    let mut exec = Executor::from_graph(probe, &ExecOptions::default())?;
    let mut sums: HashMap<ValueId, Vec<f64>> = HashMap::new();
    for sample in samples {
        let refs: Vec<&Tensor> = sample.iter().collect();
        for (&v, t) in wanted.iter().zip(exec.run(&refs)?) {
            let shape = t.shape().to_vec();
            // Channel axis 1 for NCHW conv inputs, the K columns of a Gemm's A.
            let (c, inner) = match shape.len() {
                4 => (shape[1], shape[2] * shape[3]),
                2 => (shape[1], 1),
                _ => continue,
            };
            let data = t.to_f32_vec();
            let acc = sums.entry(v).or_insert_with(|| vec![0.0; c]);
            let rows = data.len() / (c * inner).max(1);
            for (i, chunk) in data.chunks(inner.max(1)).enumerate() {
                acc[i % c] += chunk.iter().map(|&x| x as f64).sum::<f64>() / (inner * rows) as f64;
            }
        }
    }
    let n = samples.len().max(1) as f64;
    Ok(sums
        .into_iter()
        .map(|(v, s)| (v, s.into_iter().map(|x| x / n).collect()))
        .collect())
}

/// The bias of node `node` corrected for the change from `w` to `wq`, or
/// `None` when the node has no per-channel bias to correct.
pub fn corrected_bias(
    graph: &Graph,
    node: usize,
    w: &[f32],
    wq: &[f32],
    means: &HashMap<ValueId, Vec<f64>>,
) -> Option<(ValueId, Arc<Tensor>)> {
    let n = &graph.nodes[node];
    let mean = means.get(&n.inputs[0])?;
    let &b = n.inputs.get(2)?;
    let bias = graph.constant(b)?.as_f32()?;
    let w_shape = &graph.values[n.inputs[1]].info.shape;
    let shift: Vec<f64> = match &n.op {
        Op::Conv { geometry, .. } => {
            let (m, cg) = (w_shape[0], w_shape[1]);
            let khw = w_shape[2] * w_shape[3];
            let mg = m / geometry.groups;
            (0..m)
                .map(|o| {
                    let grp = o / mg;
                    (0..cg)
                        .map(|ci| {
                            let row = (o * cg + ci) * khw;
                            let d: f64 = (0..khw).map(|k| (wq[row + k] - w[row + k]) as f64).sum();
                            d * mean[grp * cg + ci]
                        })
                        .sum()
                })
                .collect()
        }
        Op::Gemm {
            alpha,
            beta,
            trans_b,
            ..
        } if *beta != 0.0 => {
            let (k, nn) = if *trans_b {
                (w_shape[1], w_shape[0])
            } else {
                (w_shape[0], w_shape[1])
            };
            (0..nn)
                .map(|j| {
                    let s: f64 = (0..k)
                        .map(|p| {
                            let at = if *trans_b { j * k + p } else { p * nn + j };
                            (wq[at] - w[at]) as f64 * mean[p]
                        })
                        .sum();
                    s * (*alpha / *beta) as f64
                })
                .collect()
        }
        _ => return None,
    };
    if bias.len() != shift.len()
        || graph.nodes.iter().filter(|x| x.inputs.contains(&b)).count() != 1
    {
        return None;
    }
    let fixed: Vec<f32> = bias
        .iter()
        .zip(&shift)
        .map(|(&x, &s)| (x as f64 - s) as f32)
        .collect();
    let shape = graph.values[b].info.shape.clone();
    Tensor::from_f32(shape, fixed)
        .ok()
        .map(|t| (b, Arc::new(t)))
}
