//! Static post-training quantization: a float graph and calibration inputs
//! → a graph whose convolutions, residual adds and global pooling run as
//! int8 (u8 activations per tensor, i8 weights per output channel, i32
//! biases, fixed-point requantization), with each layer that quantizes
//! badly left float.
//!
//! 1. Residual convs are split so that every conv output and add is a value
//!    of its own ([`units::unfuse`]).
//! 2. The float graph runs on the calibration inputs twice: extremes, then a
//!    histogram per activation; each gets the range (min/max, percentile or
//!    MSE-searched) with the least error on its histogram ([`ranges`]).
//! 3. Weights are rounded per channel and biases corrected for the mean
//!    shift the rounding causes (Nagel et al. 2019).
//! 4. Each layer's int8 twin runs beside the float graph, fed the same float
//!    inputs quantized, so its own error is measured apart from its
//!    predecessors'. Layers under the SNR threshold stay float.
//! 5. The chosen layers are emitted between Quantize/Dequantize nodes and
//!    the optimizer fuses the float remainder again.

mod build;
mod ranges;
mod units;

#[cfg(test)]
mod tests;

use std::collections::HashMap;

use super::calibrate;
use crate::error::{Error, Result};
use crate::exec::{ExecOptions, Executor};
use crate::ir::{Graph, Quant, Tensor, ValueId};
use ranges::Observed;
pub use ranges::RangeMethod;

/// Static quantization choices.
#[derive(Clone, Debug)]
pub struct QuantizeOptions {
    pub method: RangeMethod,
    /// A layer whose int8 output, on its own, is further than this from
    /// float (signal-to-noise ratio in dB) stays float.
    pub min_snr_db: f64,
    /// Correct biases for the mean shift of rounded weights.
    pub bias_correction: bool,
}

impl Default for QuantizeOptions {
    fn default() -> Self {
        QuantizeOptions {
            method: RangeMethod::Auto,
            min_snr_db: 25.0,
            bias_correction: true,
        }
    }
}

/// What became of one quantizable layer.
#[derive(Clone, Debug)]
pub struct LayerReport {
    pub name: String,
    pub op: &'static str,
    /// Its int8 output's SNR against float, in isolation, on calibration.
    pub snr_db: f64,
    pub int8: bool,
    /// Which range candidate its output got.
    pub range: &'static str,
}

/// The largest SNR reported: an exact layer has no noise at all.
const MAX_SNR_DB: f64 = 99.0;

/// Quantizes `graph` (optimized, float) on `samples` (one input set each).
pub fn quantize_static(
    graph: &Graph,
    samples: &[Vec<Tensor>],
    opts: &QuantizeOptions,
) -> Result<(Graph, Vec<LayerReport>)> {
    if samples.is_empty() {
        return Err(Error::Pack(
            "static quantization needs calibration inputs".into(),
        ));
    }
    let source = units::unfuse(graph)?;
    let found = units::find(&source);
    let mut observed_values: Vec<ValueId> = Vec::new();
    for u in &found {
        for &v in u.inputs.iter().chain([&u.output]) {
            if !observed_values.contains(&v) {
                observed_values.push(v);
            }
        }
    }
    let stats = observe(&source, &observed_values, samples)?;
    let mut quants: HashMap<ValueId, Quant> = HashMap::new();
    let mut range_names: HashMap<ValueId, &'static str> = HashMap::new();
    for (&v, s) in observed_values.iter().zip(&stats) {
        let (q, name) = s.choose(opts.method);
        quants.insert(v, q);
        range_names.insert(v, name);
    }
    let weights = conv_weights(&source, &found, samples, opts)?;
    let plan = build::Plan {
        source: &source,
        units: &found,
        quants: &quants,
        weights: &weights,
    };
    let snr = isolated_snr(&plan, samples)?;
    let selected: Vec<bool> = snr.iter().map(|&s| s >= opts.min_snr_db).collect();
    let mut mixed = build::mixed(&plan, &selected)?;
    crate::opt::optimize(&mut mixed)?;
    let reports = found
        .iter()
        .zip(snr.iter().zip(&selected))
        .map(|(u, (&snr_db, &int8))| LayerReport {
            name: source.nodes[u.node].name.clone(),
            op: u.kind.name(),
            snr_db,
            int8,
            range: range_names.get(&u.output).copied().unwrap_or("minmax"),
        })
        .collect();
    Ok((mixed, reports))
}

/// Runs `graph` exposing `values` (f32) on every sample.
fn for_each_run(
    graph: &Graph,
    values: &[ValueId],
    samples: &[Vec<Tensor>],
    mut f: impl FnMut(&[Tensor]),
) -> Result<()> {
    let mut probe = graph.clone();
    probe.outputs = values.to_vec();
    let mut exec = Executor::from_graph(probe, &ExecOptions::default())?;
    for sample in samples {
        let refs: Vec<&Tensor> = sample.iter().collect();
        f(&exec.run(&refs)?);
    }
    Ok(())
}

/// Extremes, then histograms, of `values` over the samples.
fn observe(graph: &Graph, values: &[ValueId], samples: &[Vec<Tensor>]) -> Result<Vec<Observed>> {
    let mut stats = vec![Observed::default(); values.len()];
    for_each_run(graph, values, samples, |outs| {
        for (s, t) in stats.iter_mut().zip(outs) {
            s.extend_range(&t.to_f32_vec());
        }
    })?;
    for_each_run(graph, values, samples, |outs| {
        for (s, t) in stats.iter_mut().zip(outs) {
            s.count(&t.to_f32_vec());
        }
    })?;
    Ok(stats)
}

/// Each conv unit's int8 weights and (corrected) float bias, by node.
fn conv_weights(
    source: &Graph,
    found: &[units::Unit],
    samples: &[Vec<Tensor>],
    opts: &QuantizeOptions,
) -> Result<HashMap<usize, build::ConvWeights>> {
    let means = if opts.bias_correction {
        calibrate::input_means(source, samples)?
    } else {
        HashMap::new()
    };
    let mut weights = HashMap::new();
    for u in found.iter().filter(|u| u.kind == units::UnitKind::Conv) {
        let node = &source.nodes[u.node];
        let constant = |i: usize| {
            source
                .constant(node.inputs[i])
                .and_then(Tensor::as_f32)
                .ok_or_else(|| Error::Pack(format!("{}: weights are not constant", node.name)))
        };
        let (w, bias) = (constant(1)?, constant(2)?);
        let m = source.values[node.inputs[1]].info.shape[0];
        let (q, scales) = build::quantize_per_channel(w, m);
        let per = w.len() / m.max(1);
        let rounded: Vec<f32> = q
            .iter()
            .enumerate()
            .map(|(i, &x)| x as f32 * scales[i / per.max(1)])
            .collect();
        let bias = calibrate::corrected_bias(source, u.node, w, &rounded, &means)
            .and_then(|(_, t)| t.as_f32().map(<[f32]>::to_vec))
            .unwrap_or_else(|| bias.to_vec());
        weights.insert(
            u.node,
            build::ConvWeights {
                weights: q,
                scales,
                bias,
            },
        );
    }
    Ok(weights)
}

/// Per unit, the SNR (dB) of its int8 twin against its float output.
fn isolated_snr(plan: &build::Plan, samples: &[Vec<Tensor>]) -> Result<Vec<f64>> {
    let (shadow, pairs) = build::shadowed(plan)?;
    let values: Vec<ValueId> = pairs.iter().flat_map(|&(f, q)| [f, q]).collect();
    let mut energy = vec![(0f64, 0f64); pairs.len()];
    for_each_run(&shadow, &values, samples, |outs| {
        for (e, pair) in energy.iter_mut().zip(outs.chunks(2)) {
            let (f, q) = (pair[0].to_f32_vec(), pair[1].to_f32_vec());
            for (&a, &b) in f.iter().zip(&q) {
                e.0 += a as f64 * a as f64;
                e.1 += (a as f64 - b as f64).powi(2);
            }
        }
    })?;
    Ok(energy
        .iter()
        .map(|&(signal, noise)| {
            if noise == 0.0 {
                MAX_SNR_DB
            } else {
                (10.0 * (signal / noise).log10()).min(MAX_SNR_DB)
            }
        })
        .collect())
}
