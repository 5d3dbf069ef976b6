//! The packer: an optimized graph → `.sqz` bytes, with a per-tensor report.

use rayon::prelude::*;

use super::codec;
use super::container::{write_container, Codec, SectionInput, WriteOptions};
use super::format::{kind, GraphSection, Metadata, Storage, WeightEntry};
use crate::error::{Error, Result};
use std::collections::HashMap;
use std::sync::Arc;

use super::calibrate;
use super::ptq::{self, LayerReport, QuantizeOptions};
use crate::ir::{Graph, Op, Tensor, ValueId};

/// Packing choices.
#[derive(Clone, Debug)]
pub struct PackOptions {
    /// Storage of conv/gemm/matmul weights; other constants stay f32.
    pub weights: Storage,
    /// Byte-shuffle float storage before zstd.
    pub shuffle: bool,
    /// Store f32 weights raw (no filter, no zstd), so a mapped file is used
    /// in place: the fastest load, the largest file.
    pub in_place: bool,
    pub zstd_level: i32,
    /// Store a blob raw unless zstd saves at least this percentage.
    pub min_saving_percent: u32,
    /// Weights with fewer elements stay f32 (biases, tiny kernels).
    pub min_quantized_elements: usize,
    /// In int8/palette modes, weights with at most this many values per
    /// output channel (depthwise, stem and narrow 1x1 convs) are stored f16
    /// instead: they hold few bytes but much of the quantization error.
    /// 128 measured best for size against accuracy (docs/BENCHMARKS.md).
    pub f16_kernel_max: usize,
    /// Real model inputs; with them, int8/palette biases are corrected for
    /// the mean shift rounding causes.
    pub calibration: Vec<Vec<Tensor>>,
    /// Static int8 quantization of weights and activations (on
    /// `calibration`), before the weights are stored.
    pub quantize: Option<QuantizeOptions>,
}

impl Default for PackOptions {
    fn default() -> Self {
        PackOptions {
            weights: Storage::F32,
            shuffle: true,
            in_place: false,
            zstd_level: 19,
            min_saving_percent: 5,
            min_quantized_elements: 256,
            f16_kernel_max: 128,
            calibration: Vec::new(),
            quantize: None,
        }
    }
}

/// What happened to one constant.
#[derive(Clone, Debug)]
pub struct TensorReport {
    pub name: String,
    pub shape: Vec<usize>,
    pub storage: Storage,
    /// f32 bytes before packing.
    pub raw_bytes: usize,
    /// Bytes in the file after encoding and zstd.
    pub packed_bytes: usize,
}

#[derive(Clone, Debug)]
pub struct PackReport {
    pub tensors: Vec<TensorReport>,
    /// With static quantization, what became of each quantizable layer.
    pub layers: Vec<LayerReport>,
    pub file_bytes: usize,
}

/// Values read as the weight operand of Conv/ConvTranspose/Gemm/MatMul.
fn weight_operands(graph: &Graph) -> Vec<bool> {
    let mut w = vec![false; graph.values.len()];
    for n in &graph.nodes {
        if matches!(
            n.op,
            Op::Conv { .. } | Op::ConvTranspose { .. } | Op::Gemm { .. } | Op::MatMul
        ) {
            if let Some(&v) = n.inputs.get(1) {
                w[v] = true;
            }
        }
    }
    w
}

/// Storage for one f32 constant under `opts`.
fn storage_for(graph: &Graph, v: ValueId, is_weight: bool, opts: &PackOptions) -> Storage {
    let shape = &graph.values[v].info.shape;
    let len: usize = shape.iter().product();
    if !is_weight || len < opts.min_quantized_elements {
        return Storage::F32;
    }
    let per_channel = len / shape.first().copied().unwrap_or(1).max(1);
    match opts.weights {
        Storage::Int8 | Storage::Palette { .. } if per_channel <= opts.f16_kernel_max => {
            Storage::F16
        }
        s => s,
    }
}

fn is_lossy(storage: Storage) -> bool {
    matches!(storage, Storage::Int8 | Storage::Palette { .. })
}

/// Gives every Conv and Gemm with lossy weights a bias (zeros), so bias
/// correction has somewhere to go.
fn add_zero_biases(graph: &Graph, opts: &PackOptions) -> Result<Graph> {
    let mut g = graph.clone();
    let is_weight = weight_operands(&g);
    for i in 0..g.nodes.len() {
        let n = &g.nodes[i];
        let Some(&w) = n.inputs.get(1) else { continue };
        let channels = match &n.op {
            Op::Conv { .. } if n.inputs.len() == 2 => g.values[w].info.shape[0],
            Op::Gemm { trans_b, .. } if n.inputs.len() == 2 => {
                g.values[w].info.shape[usize::from(!*trans_b)]
            }
            _ => continue,
        };
        if !is_lossy(storage_for(&g, w, is_weight[w], opts)) {
            continue;
        }
        let name = format!("{}.bias", n.name);
        let b = g.add_constant(name, Tensor::from_f32(vec![channels], vec![0.0; channels])?);
        if let Op::Gemm { beta, .. } = &mut g.nodes[i].op {
            *beta = 1.0;
        }
        g.nodes[i].inputs.push(b);
    }
    g.validate()?;
    Ok(g)
}

/// Biases corrected for the quantization of their node's weights, from the
/// calibration inputs' means (empty without calibration data).
fn corrected_biases(
    graph: &Graph,
    is_weight: &[bool],
    opts: &PackOptions,
) -> Result<HashMap<ValueId, Arc<Tensor>>> {
    let lossy = |v: ValueId| is_lossy(storage_for(graph, v, is_weight[v], opts));
    if opts.calibration.is_empty() || !(0..graph.values.len()).any(lossy) {
        return Ok(HashMap::new());
    }
    let means = calibrate::input_means(graph, &opts.calibration)?;
    let mut fixed = HashMap::new();
    for (i, n) in graph.nodes.iter().enumerate() {
        let Some(&w) = n.inputs.get(1) else { continue };
        let Some(wt) = graph.constant(w).and_then(|t| t.as_f32()) else {
            continue;
        };
        if !lossy(w) {
            continue;
        }
        let storage = storage_for(graph, w, true, opts);
        let c = storage
            .codec()
            .ok_or_else(|| Error::Pack("lossy storage without codec".into()))?;
        let channels = graph.values[w].info.shape[0].max(1);
        let plain = codec::Filter::None;
        let wq = codec::decode(
            &codec::encode(wt, channels, c, plain)?,
            wt.len(),
            channels,
            c,
            plain,
        )?;
        if let Some((b, t)) = calibrate::corrected_bias(graph, i, wt, &wq, &means) {
            fixed.insert(b, t);
        }
    }
    Ok(fixed)
}

/// Packs a validated graph. `progress` is called once per tensor encoded.
pub fn pack(
    graph: &Graph,
    meta: &Metadata,
    opts: &PackOptions,
    progress: &(dyn Fn() + Sync),
) -> Result<(Vec<u8>, PackReport)> {
    graph.validate()?;
    let (quantized, layers) = match &opts.quantize {
        Some(q) => {
            let (g, layers) = ptq::quantize_static(graph, &opts.calibration, q)?;
            (Some(g), layers)
        }
        None => (None, Vec::new()),
    };
    let graph = quantized.as_ref().unwrap_or(graph);
    let with_biases;
    let graph = if opts.calibration.is_empty() {
        graph
    } else {
        with_biases = add_zero_biases(graph, opts)?;
        &with_biases
    };
    let is_weight = weight_operands(graph);
    let used = graph.used_values();
    let consts: Vec<usize> = (0..graph.values.len())
        .filter(|&v| used[v] && graph.values[v].constant.is_some())
        .collect();
    let fixed = corrected_biases(graph, &is_weight, opts)?;
    // Encode every constant in parallel.
    let encoded: Vec<(WeightEntry, Codec, Vec<u8>)> = consts
        .par_iter()
        .enumerate()
        .map(|(i, &v)| {
            let t = match fixed.get(&v) {
                Some(t) => t.as_ref(),
                None => graph.values[v]
                    .constant
                    .as_deref()
                    .ok_or_else(|| Error::Pack("constant vanished".into()))?,
            };
            let channels = t.shape().first().copied().unwrap_or(1).max(1);
            let (storage, shuffled, codec, bytes) = match t.as_f32() {
                None => {
                    let storage = if t.dtype() == crate::ir::DType::I64 {
                        Storage::I64
                    } else {
                        Storage::Raw
                    };
                    (storage, false, Codec::Zstd, t.to_le_bytes())
                }
                Some(d) => {
                    let storage = storage_for(graph, v, is_weight[v], opts);
                    // In-place f32 is stored exactly as the kernels read it.
                    let in_place = opts.in_place && storage == Storage::F32;
                    let shuffled = opts.shuffle && !in_place;
                    let channels = if t.shape().is_empty() || d.is_empty() {
                        1
                    } else {
                        channels
                    };
                    let filter = if shuffled {
                        codec::Filter::ByteShuffle
                    } else {
                        codec::Filter::None
                    };
                    let c = storage
                        .codec()
                        .ok_or_else(|| Error::Pack("f32 tensor with i64 storage".into()))?;
                    let section_codec = if in_place { Codec::None } else { Codec::Zstd };
                    (
                        storage,
                        shuffled,
                        section_codec,
                        codec::encode(d, channels, c, filter)?,
                    )
                }
            };
            progress();
            let entry = WeightEntry {
                value: v,
                storage,
                shuffled,
                channels,
                section: 2 + i,
            };
            Ok((entry, codec, bytes))
        })
        .collect::<Result<_>>()?;
    let mut stripped = graph.clone();
    for v in &mut stripped.values {
        v.constant = None;
    }
    let section = GraphSection {
        graph: stripped,
        weights: encoded.iter().map(|(e, _, _)| e.clone()).collect(),
    };
    let graph_bytes =
        postcard::to_allocvec(&section).map_err(|e| Error::Pack(format!("graph encoding: {e}")))?;
    let meta_bytes = serde_json::to_vec_pretty(meta)
        .map_err(|e| Error::Pack(format!("metadata encoding: {e}")))?;
    let mut sections = vec![
        SectionInput {
            kind: kind::METADATA,
            codec: Codec::Zstd,
            data: meta_bytes,
        },
        SectionInput {
            kind: kind::GRAPH,
            codec: Codec::Zstd,
            data: graph_bytes,
        },
    ];
    let mut reports = Vec::new();
    for (entry, codec, bytes) in encoded {
        let value = &graph.values[entry.value];
        reports.push(TensorReport {
            name: value.name.clone(),
            shape: value.info.shape.clone(),
            storage: entry.storage,
            raw_bytes: value.info.shape.iter().product::<usize>() * value.info.dtype.size(),
            packed_bytes: 0,
        });
        sections.push(SectionInput {
            kind: kind::WEIGHT,
            codec,
            data: bytes,
        });
    }
    let file = write_container(
        &sections,
        &WriteOptions {
            zstd_level: opts.zstd_level,
            min_saving_percent: opts.min_saving_percent,
        },
    )?;
    // Report the stored (compressed) size of each weight section; the file
    // was just written, so its SHA-256 need not be recomputed.
    let limits = super::container::Limits {
        verify_sha256: false,
        ..Default::default()
    };
    let parsed = super::container::Container::parse(&file, &limits)?;
    for (r, e) in reports.iter_mut().zip(parsed.sections().iter().skip(2)) {
        r.packed_bytes = e.stored_len as usize;
    }
    let file_bytes = file.len();
    Ok((
        file,
        PackReport {
            tensors: reports,
            layers,
            file_bytes,
        },
    ))
}
