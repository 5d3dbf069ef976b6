//! ONNX TensorProto → [`Tensor`], with external data read only from inside
//! the model's folder and every size checked before allocation.

use std::path::{Component, Path};

use tract_onnx::pb::TensorProto;

use crate::error::{Error, Result};
use crate::ir::{checked_numel, DType, Tensor, TensorData};

/// ONNX element type numbers.
pub mod elem {
    pub const FLOAT: i32 = 1;
    pub const UINT8: i32 = 2;
    pub const INT8: i32 = 3;
    pub const UINT16: i32 = 4;
    pub const INT16: i32 = 5;
    pub const INT32: i32 = 6;
    pub const INT64: i32 = 7;
    pub const BOOL: i32 = 9;
    pub const FLOAT16: i32 = 10;
    pub const DOUBLE: i32 = 11;
    pub const UINT32: i32 = 12;
    pub const UINT64: i32 = 13;
}

/// The runtime dtype an ONNX element type computes in.
pub fn dtype_of(elem_type: i32) -> Option<DType> {
    use elem::*;
    match elem_type {
        FLOAT | FLOAT16 | DOUBLE => Some(DType::F32),
        UINT8 | INT8 | UINT16 | INT16 | INT32 | INT64 | BOOL | UINT32 | UINT64 => Some(DType::I64),
        _ => None,
    }
}

/// The narrow integer dtype of quantized tensors an element type stands
/// for (its values are still read as i64; see `Importer::narrow`).
pub fn narrow_dtype(elem_type: i32) -> Option<DType> {
    match elem_type {
        elem::UINT8 => Some(DType::U8),
        elem::INT8 => Some(DType::I8),
        elem::INT32 => Some(DType::I32),
        _ => None,
    }
}

fn byte_size(elem_type: i32) -> Option<usize> {
    use elem::*;
    Some(match elem_type {
        UINT8 | INT8 | BOOL => 1,
        UINT16 | INT16 | FLOAT16 => 2,
        FLOAT | INT32 | UINT32 => 4,
        INT64 | DOUBLE | UINT64 => 8,
        _ => return None,
    })
}

/// Reads `location` (relative to `dir`) refusing anything that escapes it.
fn read_external(dir: Option<&Path>, t: &TensorProto, expected: usize) -> Result<Vec<u8>> {
    let dir = dir.ok_or_else(|| {
        Error::ExternalData(format!(
            "tensor {:?} has external data but the model was not loaded from a file",
            t.name
        ))
    })?;
    let (mut location, mut offset, mut length) = (None, 0u64, None);
    for kv in &t.external_data {
        match kv.key.as_str() {
            "location" => location = Some(kv.value.clone()),
            "offset" => {
                offset = kv
                    .value
                    .parse()
                    .map_err(|_| Error::ExternalData(format!("bad offset {:?}", kv.value)))?
            }
            "length" => {
                length = Some(
                    kv.value
                        .parse::<u64>()
                        .map_err(|_| Error::ExternalData(format!("bad length {:?}", kv.value)))?,
                )
            }
            _ => {}
        }
    }
    let location =
        location.ok_or_else(|| Error::ExternalData(format!("tensor {:?}: no location", t.name)))?;
    let rel = Path::new(&location);
    if rel
        .components()
        .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
    {
        return Err(Error::ExternalData(format!(
            "{location:?} is not a plain path inside the model's folder"
        )));
    }
    let io = |path: &Path, e: std::io::Error| Error::Io {
        path: path.to_path_buf(),
        source: e,
    };
    let root = dir.canonicalize().map_err(|e| io(dir, e))?;
    let full = root.join(rel);
    let real = full.canonicalize().map_err(|e| io(&full, e))?;
    if !real.starts_with(&root) {
        return Err(Error::ExternalData(format!(
            "{location:?} leads outside the model's folder"
        )));
    }
    let len = length.unwrap_or(expected as u64);
    if len != expected as u64 {
        return Err(Error::ExternalData(format!(
            "tensor {:?}: length {len}, expected {expected}",
            t.name
        )));
    }
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(&real).map_err(|e| io(&real, e))?;
    let size = f.metadata().map_err(|e| io(&real, e))?.len();
    if offset.checked_add(len).is_none_or(|end| end > size) {
        return Err(Error::ExternalData(format!(
            "{location:?} is shorter than offset {offset} + length {len}"
        )));
    }
    f.seek(SeekFrom::Start(offset)).map_err(|e| io(&real, e))?;
    let mut buf = vec![0u8; expected];
    f.read_exact(&mut buf).map_err(|e| io(&real, e))?;
    Ok(buf)
}

/// Converts a TensorProto; `dir` is the model's folder, for external data.
pub fn to_tensor(t: &TensorProto, dir: Option<&Path>) -> Result<Tensor> {
    let bad = |m: String| Error::Malformed(format!("tensor {:?}: {m}", t.name));
    dtype_of(t.data_type)
        .ok_or_else(|| bad(format!("unsupported element type {}", t.data_type)))?;
    let mut shape = Vec::with_capacity(t.dims.len().min(16));
    for &d in &t.dims {
        shape.push(usize::try_from(d).map_err(|_| bad(format!("negative dim {d}")))?);
    }
    let n = checked_numel(&shape, &t.name)?;
    let esize = byte_size(t.data_type).ok_or_else(|| bad("no byte size".into()))?;
    let external = t.data_location == Some(1);
    let raw_owned;
    let raw: &[u8] = if external {
        raw_owned = read_external(dir, t, n * esize)?;
        &raw_owned
    } else {
        &t.raw_data
    };
    let count = |len: usize| {
        if len == n {
            Ok(())
        } else {
            Err(bad(format!("{len} elements for shape {shape:?}")))
        }
    };
    use elem::*;
    let data = if external || !raw.is_empty() {
        if raw.len() != n * esize {
            return Err(bad(format!(
                "{} raw bytes for {n} elements of {esize} bytes",
                raw.len()
            )));
        }
        let chunks = raw.chunks_exact(esize);
        match t.data_type {
            FLOAT => TensorData::F32(
                chunks
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect(),
            ),
            DOUBLE => TensorData::F32(
                chunks
                    .map(|c| f64::from_le_bytes(c.try_into().unwrap_or([0; 8])) as f32)
                    .collect(),
            ),
            FLOAT16 => TensorData::F32(
                chunks
                    .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
                    .collect(),
            ),
            UINT8 | BOOL => TensorData::I64(raw.iter().map(|&b| b as i64).collect()),
            INT8 => TensorData::I64(raw.iter().map(|&b| b as i8 as i64).collect()),
            UINT16 => TensorData::I64(
                chunks
                    .map(|c| u16::from_le_bytes([c[0], c[1]]) as i64)
                    .collect(),
            ),
            INT16 => TensorData::I64(
                chunks
                    .map(|c| i16::from_le_bytes([c[0], c[1]]) as i64)
                    .collect(),
            ),
            INT32 => TensorData::I64(
                chunks
                    .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as i64)
                    .collect(),
            ),
            UINT32 => TensorData::I64(
                chunks
                    .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]) as i64)
                    .collect(),
            ),
            _ => TensorData::I64(
                chunks
                    .map(|c| i64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
                    .collect(),
            ),
        }
    } else {
        match t.data_type {
            FLOAT => {
                count(t.float_data.len())?;
                TensorData::F32(t.float_data.clone())
            }
            DOUBLE => {
                count(t.double_data.len())?;
                TensorData::F32(t.double_data.iter().map(|&v| v as f32).collect())
            }
            FLOAT16 => {
                count(t.int32_data.len())?;
                TensorData::F32(
                    t.int32_data
                        .iter()
                        .map(|&v| half::f16::from_bits(v as u16).to_f32())
                        .collect(),
                )
            }
            INT64 => {
                count(t.int64_data.len())?;
                TensorData::I64(t.int64_data.clone())
            }
            UINT32 | UINT64 => {
                count(t.uint64_data.len())?;
                TensorData::I64(t.uint64_data.iter().map(|&v| v as i64).collect())
            }
            _ => {
                count(t.int32_data.len())?;
                TensorData::I64(t.int32_data.iter().map(|&v| v as i64).collect())
            }
        }
    };
    Tensor::new(shape, data)
}
