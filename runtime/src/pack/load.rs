//! The loader: `.sqz` bytes → a validated graph with its weights, each
//! phase timed. Every size is checked against the container's caps and the
//! graph before anything is allocated from it.

use std::io::Read;
use std::path::Path;
use std::sync::Arc;

use rayon::prelude::*;

use super::codec;
use super::container::{declared_file_len, Codec, Container, Limits, SectionEntry};
use super::format::{kind, GraphSection, Metadata, Storage, WeightEntry};
use crate::error::{Error, Result};
use crate::ir::{checked_numel, DType, Graph, SharedF32, Tensor, TensorData};
use crate::session::LoadTimings;

/// What a `.sqz` carried besides its graph: metadata and facts for reports.
#[derive(Clone, Debug)]
pub struct PackageInfo {
    pub metadata: Metadata,
    pub sections: Vec<SectionEntry>,
    /// (value name, storage) per weight, for `inspect`.
    pub storage: Vec<(String, Storage)>,
    pub sha256: [u8; 32],
    pub file_bytes: usize,
}

fn pack_err(m: impl Into<String>) -> Error {
    Error::Pack(m.into())
}

/// Bytes that outlive the load, so raw f32 weights can be used in place.
pub type SharedBytes = Arc<dyn AsRef<[u8]> + Send + Sync>;

/// Decodes a whole `.sqz` held in memory (copying what it keeps).
pub fn load_bytes(
    bytes: &[u8],
    limits: &Limits,
    timings: &mut LoadTimings,
) -> Result<(Graph, PackageInfo)> {
    load_shared(bytes, None, limits, timings)
}

/// Decodes a `.sqz`; with `backing` (the same bytes, shared), raw f32
/// weight sections become tensors that point into it instead of copies.
fn load_shared(
    bytes: &[u8],
    backing: Option<&SharedBytes>,
    limits: &Limits,
    timings: &mut LoadTimings,
) -> Result<(Graph, PackageInfo)> {
    // Parsing checks every checksum (and the SHA-256 when asked).
    let container = timings.time("verify", || Container::parse(bytes, limits))?;
    let only = |k: u32, what: &str| {
        let mut all = container.sections().iter().filter(|e| e.kind == k);
        match (all.next(), all.next()) {
            (Some(e), None) => Ok(e),
            (None, _) => Err(pack_err(format!("no {what} section"))),
            (Some(_), Some(_)) => Err(pack_err(format!("more than one {what} section"))),
        }
    };
    let meta_entry = only(kind::METADATA, "metadata")?;
    let graph_entry = only(kind::GRAPH, "graph")?;
    let (meta_raw, graph_raw) = timings.time("decompress", || -> Result<_> {
        Ok((
            container.decode(meta_entry)?,
            container.decode(graph_entry)?,
        ))
    })?;
    let metadata: Metadata =
        serde_json::from_slice(&meta_raw).map_err(|e| pack_err(format!("metadata: {e}")))?;
    let GraphSection { mut graph, weights } =
        postcard::from_bytes(&graph_raw).map_err(|e| pack_err(format!("graph section: {e}")))?;
    // Check the weight table against the graph and the container before decoding.
    let sections = container.sections();
    let mut seen = vec![false; graph.values.len()];
    let mut section_used = vec![false; sections.len()];
    let mut decoded_bytes: u64 = 0;
    for w in &weights {
        let value = graph
            .values
            .get(w.value)
            .ok_or_else(|| pack_err(format!("weight for value {} out of range", w.value)))?;
        let entry = sections
            .get(w.section)
            .filter(|e| e.kind == kind::WEIGHT)
            .ok_or_else(|| pack_err(format!("weight section {} missing", w.section)))?;
        if std::mem::replace(&mut seen[w.value], true)
            || std::mem::replace(&mut section_used[w.section], true)
        {
            return Err(pack_err(format!(
                "value {} or section {} used twice",
                w.value, w.section
            )));
        }
        let n = checked_numel(&value.info.shape, &value.name)?;
        // What decoding will allocate, capped before anything is decoded.
        decoded_bytes = decoded_bytes.saturating_add(n as u64 * value.info.dtype.size() as u64);
        if decoded_bytes > limits.max_total_raw_bytes {
            return Err(pack_err(format!(
                "weights decode to over {} bytes",
                limits.max_total_raw_bytes
            )));
        }
        let expected = match w.storage.codec() {
            Some(c) if value.info.dtype == DType::F32 => codec::encoded_len(n, w.channels, c),
            None if w.storage == Storage::I64 && value.info.dtype == DType::I64 => n.checked_mul(8),
            None if w.storage == Storage::Raw && value.info.dtype != DType::F32 => {
                n.checked_mul(value.info.dtype.size())
            }
            _ => None,
        };
        if expected != Some(entry.raw_len as usize) {
            return Err(pack_err(format!(
                "weight {:?}: section holds {} bytes, {:?} expected",
                value.name, entry.raw_len, expected
            )));
        }
    }
    // Raw, unfiltered f32 sections of a shared buffer are used in place.
    let in_place = |w: &WeightEntry| -> Option<SharedF32> {
        let entry = &sections[w.section];
        if w.storage != Storage::F32 || w.shuffled || entry.codec != Codec::None {
            return None;
        }
        let n = graph.values[w.value].info.shape.iter().product::<usize>();
        SharedF32::new(Arc::clone(backing?), entry.offset as usize, n)
    };
    let shared: Vec<Option<SharedF32>> = weights.iter().map(in_place).collect();
    let indices: Vec<usize> = weights
        .iter()
        .zip(&shared)
        .filter(|(_, s)| s.is_none())
        .map(|(w, _)| w.section)
        .collect();
    let mut raw = timings
        .time("decompress", || container.decode_indices(&indices))?
        .into_iter();
    let raw: Vec<Option<std::borrow::Cow<[u8]>>> = shared
        .iter()
        .map(|s| if s.is_some() { None } else { raw.next() })
        .collect();
    let tensors: Vec<Tensor> = timings.time("dequantize", || {
        weights
            .par_iter()
            .zip(raw.par_iter())
            .zip(shared.par_iter())
            .map(|((w, bytes), shared)| {
                let info = &graph.values[w.value].info;
                let n = info.shape.iter().product::<usize>();
                let bytes: &[u8] = bytes.as_deref().unwrap_or(&[]);
                match (shared, w.storage.codec()) {
                    (Some(s), _) => {
                        Tensor::new(info.shape.clone(), TensorData::SharedF32(s.clone()))
                    }
                    (None, Some(c)) => Tensor::from_f32(
                        info.shape.clone(),
                        codec::decode(bytes, n, w.channels, c, w.filter())?,
                    ),
                    (None, None) => Tensor::from_le_bytes(info.dtype, info.shape.clone(), bytes),
                }
            })
            .collect::<Result<_>>()
    })?;
    let mut storage = Vec::with_capacity(weights.len());
    for (w, t) in weights.iter().zip(tensors) {
        storage.push((graph.values[w.value].name.clone(), w.storage));
        graph.values[w.value].constant = Some(Arc::new(t));
    }
    timings.time("validate", || graph.validate())?;
    let info = PackageInfo {
        metadata,
        sections: sections.to_vec(),
        storage,
        sha256: container.sha256(),
        file_bytes: bytes.len(),
    };
    Ok((graph, info))
}

/// Maps a file and decodes it.
pub fn load_path(
    path: &Path,
    limits: &Limits,
    timings: &mut LoadTimings,
) -> Result<(Graph, PackageInfo)> {
    let io = |e| Error::Io {
        path: path.to_path_buf(),
        source: e,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let len = file.metadata().map_err(io)?.len();
    map_and_load(&file, 0, len, path, limits, timings)
}

/// Maps `len` bytes of an open file from `offset` (a model inside an APK,
/// reached through an asset's file descriptor) and decodes them.
pub fn load_file_region(
    file: &std::fs::File,
    offset: u64,
    len: u64,
    limits: &Limits,
    timings: &mut LoadTimings,
) -> Result<(Graph, PackageInfo)> {
    let path = Path::new("<file descriptor>");
    let io = |e| Error::Io {
        path: path.to_path_buf(),
        source: e,
    };
    let file_len = file.metadata().map_err(io)?.len();
    if offset.checked_add(len).is_none_or(|end| end > file_len) {
        return Err(Error::Input(format!(
            "region {offset}+{len} lies outside the {file_len} byte file"
        )));
    }
    map_and_load(file, offset, len, path, limits, timings)
}

fn map_and_load(
    file: &std::fs::File,
    offset: u64,
    len: u64,
    path: &Path,
    limits: &Limits,
    timings: &mut LoadTimings,
) -> Result<(Graph, PackageInfo)> {
    if len > limits.max_file_bytes {
        return Err(pack_err(format!(
            "{} is {len} bytes, over the {} byte limit",
            path.display(),
            limits.max_file_bytes
        )));
    }
    let map_len =
        usize::try_from(len).map_err(|_| pack_err(format!("{len} bytes do not fit in memory")))?;
    let io = |e| Error::Io {
        path: path.to_path_buf(),
        source: e,
    };
    // SAFETY: the map is read-only (the file is opened read-only) and is
    // kept alive by an Arc for as long as any tensor points into it.
    // Another process truncating the file meanwhile could fault (SIGBUS):
    // the known limit of mmap, accepted for zero-copy loads. The one
    // `unsafe` outside the ISA kernels: mapping a file is the OS boundary.
    // The whole file is read at load (checksums, then weights), so its
    // pages are mapped up front (MAP_POPULATE): one call instead of a page
    // fault per 4 KiB.
    #[allow(unsafe_code)]
    let map = timings
        .time("read", || unsafe {
            memmap2::MmapOptions::new()
                .offset(offset)
                .len(map_len)
                .populate()
                .map(file)
        })
        .map_err(io)?;
    load_shared_bytes(Arc::new(map), limits, timings)
}

/// Decodes a `.sqz` whose bytes stay alive with the model: raw f32 weights
/// point into them instead of being copied.
pub fn load_shared_bytes(
    bytes: SharedBytes,
    limits: &Limits,
    timings: &mut LoadTimings,
) -> Result<(Graph, PackageInfo)> {
    load_shared((*bytes).as_ref(), Some(&bytes), limits, timings)
}

/// Reads a `.sqz` from a stream (no temporary file): the header says how
/// long the file is, which is checked against the cap before allocating.
pub fn load_reader(
    reader: &mut dyn Read,
    limits: &Limits,
    timings: &mut LoadTimings,
) -> Result<(Graph, PackageInfo)> {
    let io = |e| Error::Io {
        path: "<stream>".into(),
        source: e,
    };
    let bytes = timings.time("read", || -> Result<Vec<u8>> {
        let mut head = [0u8; super::container::HEADER_LEN];
        reader.read_exact(&mut head).map_err(io)?;
        let total = declared_file_len(&head, limits)?;
        // Grow with the data actually received, so a short stream claiming
        // a large size never causes a large allocation.
        let mut bytes = Vec::with_capacity((total as usize).min(16 << 20));
        bytes.extend_from_slice(&head);
        reader
            .take(total.saturating_sub(head.len() as u64))
            .read_to_end(&mut bytes)
            .map_err(io)?;
        if (bytes.len() as u64) != total {
            return Err(pack_err(format!(
                "stream ended after {} of {total} declared bytes",
                bytes.len()
            )));
        }
        Ok(bytes)
    })?;
    load_shared_bytes(Arc::new(bytes), limits, timings)
}
