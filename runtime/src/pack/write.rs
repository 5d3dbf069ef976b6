//! The packer: an optimized graph → `.sqz` bytes, with a per-tensor report.

use rayon::prelude::*;

use super::codec;
use super::container::{write_container, Codec, SectionInput, WriteOptions};
use super::format::{kind, GraphSection, Metadata, Storage, WeightEntry};
use crate::error::{Error, Result};
use crate::ir::{Graph, Op, TensorData};

/// Packing choices.
#[derive(Clone, Debug)]
pub struct PackOptions {
    /// Storage of conv/gemm/matmul weights; other constants stay f32.
    pub weights: Storage,
    /// Byte-shuffle float storage before zstd.
    pub shuffle: bool,
    pub zstd_level: i32,
    /// Store a blob raw unless zstd saves at least this percentage.
    pub min_saving_percent: u32,
    /// Weights with fewer elements stay f32 (biases, tiny kernels).
    pub min_quantized_elements: usize,
}

impl Default for PackOptions {
    fn default() -> Self {
        PackOptions {
            weights: Storage::F32,
            shuffle: true,
            zstd_level: 19,
            min_saving_percent: 5,
            min_quantized_elements: 256,
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

/// Packs a validated graph. `progress` is called once per tensor encoded.
pub fn pack(
    graph: &Graph,
    meta: &Metadata,
    opts: &PackOptions,
    progress: &(dyn Fn() + Sync),
) -> Result<(Vec<u8>, PackReport)> {
    graph.validate()?;
    let is_weight = weight_operands(graph);
    let used = graph.used_values();
    let consts: Vec<usize> = (0..graph.values.len())
        .filter(|&v| used[v] && graph.values[v].constant.is_some())
        .collect();
    // Encode every constant in parallel.
    let encoded: Vec<(WeightEntry, Vec<u8>)> = consts
        .par_iter()
        .enumerate()
        .map(|(i, &v)| {
            let t = graph.values[v]
                .constant
                .as_deref()
                .ok_or_else(|| Error::Pack("constant vanished".into()))?;
            let channels = t.shape().first().copied().unwrap_or(1).max(1);
            let (storage, bytes) = match t.data() {
                TensorData::I64(d) => (
                    Storage::I64,
                    d.iter().flat_map(|x| x.to_le_bytes()).collect(),
                ),
                TensorData::F32(d) => {
                    let storage = if is_weight[v] && d.len() >= opts.min_quantized_elements {
                        opts.weights
                    } else {
                        Storage::F32
                    };
                    let channels = if t.shape().is_empty() || d.is_empty() {
                        1
                    } else {
                        channels
                    };
                    let filter = if opts.shuffle {
                        codec::Filter::ByteShuffle
                    } else {
                        codec::Filter::None
                    };
                    let c = storage
                        .codec()
                        .ok_or_else(|| Error::Pack("f32 tensor with i64 storage".into()))?;
                    (storage, codec::encode(d, channels, c, filter)?)
                }
            };
            progress();
            let entry = WeightEntry {
                value: v,
                storage,
                shuffled: opts.shuffle,
                channels,
                section: 2 + i,
            };
            Ok((entry, bytes))
        })
        .collect::<Result<_>>()?;
    let mut stripped = graph.clone();
    for v in &mut stripped.values {
        v.constant = None;
    }
    let section = GraphSection {
        graph: stripped,
        weights: encoded.iter().map(|(e, _)| e.clone()).collect(),
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
    for (entry, bytes) in encoded {
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
            codec: Codec::Zstd,
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
    // Report the stored (compressed) size of each weight section.
    let parsed = super::container::Container::parse(&file, &super::container::Limits::default())?;
    for (r, e) in reports.iter_mut().zip(parsed.sections().iter().skip(2)) {
        r.packed_bytes = e.stored_len as usize;
    }
    let file_bytes = file.len();
    Ok((
        file,
        PackReport {
            tensors: reports,
            file_bytes,
        },
    ))
}
