//! Dense tensors: the values of constants, inputs and outputs.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Element types the runtime computes with. `U8`, `I8` and `I32` are the
/// quantized activations, weights and biases of int8 models; other ONNX
/// integer tensors are widened to `I64` at import (in float CNNs they only
/// carry shapes and indices).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum DType {
    F32,
    I64,
    U8,
    I8,
    I32,
}

impl DType {
    pub fn size(self) -> usize {
        match self {
            DType::F32 | DType::I32 => 4,
            DType::I64 => 8,
            DType::U8 | DType::I8 => 1,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            DType::F32 => "f32",
            DType::I64 => "i64",
            DType::U8 => "u8",
            DType::I8 => "i8",
            DType::I32 => "i32",
        }
    }
}

/// Upper bound on the elements of any one tensor (2^28, 1 GiB of f32): a
/// hostile model declaring more is refused before anything is allocated.
pub const MAX_TENSOR_ELEMENTS: u64 = 1 << 28;

/// Number of elements of `shape`, refusing overflow and sizes over
/// [`MAX_TENSOR_ELEMENTS`].
pub fn checked_numel(shape: &[usize], what: &str) -> Result<usize> {
    let mut n: u128 = 1;
    for &d in shape {
        n = n.saturating_mul(d as u128);
    }
    if n > MAX_TENSOR_ELEMENTS as u128 {
        return Err(Error::TooLarge {
            what: what.to_string(),
            elements: n,
            limit: MAX_TENSOR_ELEMENTS,
        });
    }
    Ok(n as usize)
}

/// Element count of an already validated shape.
pub fn numel(shape: &[usize]) -> usize {
    shape.iter().product()
}

/// The elements of a tensor.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum TensorData {
    F32(Vec<f32>),
    I64(Vec<i64>),
    U8(Vec<u8>),
    I8(Vec<i8>),
    I32(Vec<i32>),
    /// f32 read in place from a loaded file (never serialized: weights
    /// travel in their own sections).
    #[serde(skip)]
    SharedF32(SharedF32),
}

/// f32 elements inside a shared byte buffer (a memory-mapped `.sqz`):
/// weights used where they lie, with no copy at load.
#[derive(Clone)]
pub struct SharedF32 {
    bytes: Arc<dyn AsRef<[u8]> + Send + Sync>,
    offset: usize,
    len: usize,
}

impl SharedF32 {
    /// `len` f32s at byte `offset` of `bytes`; `None` if out of bounds or
    /// not 4-byte aligned in memory (the caller then copies).
    pub fn new(
        bytes: Arc<dyn AsRef<[u8]> + Send + Sync>,
        offset: usize,
        len: usize,
    ) -> Option<SharedF32> {
        let end = len.checked_mul(4)?.checked_add(offset)?;
        let region = (*bytes).as_ref().get(offset..end)?;
        bytemuck::try_cast_slice::<u8, f32>(region).ok()?;
        Some(SharedF32 { bytes, offset, len })
    }
    pub fn as_slice(&self) -> &[f32] {
        // Bounds and alignment were checked in `new`; the buffer is immutable.
        (*self.bytes)
            .as_ref()
            .get(self.offset..self.offset + self.len * 4)
            .and_then(|b| bytemuck::try_cast_slice(b).ok())
            .unwrap_or(&[])
    }
}

impl std::fmt::Debug for SharedF32 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "SharedF32 {{ offset: {}, len: {} }}",
            self.offset, self.len
        )
    }
}

impl PartialEq for SharedF32 {
    fn eq(&self, other: &Self) -> bool {
        self.as_slice() == other.as_slice()
    }
}

/// An owned tensor with a static shape (row-major).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Tensor {
    shape: Vec<usize>,
    data: TensorData,
}

impl Tensor {
    /// Builds a tensor, checking that the data matches the shape.
    pub fn new(shape: Vec<usize>, data: TensorData) -> Result<Tensor> {
        let n = checked_numel(&shape, "tensor")?;
        let len = match &data {
            TensorData::F32(v) => v.len(),
            TensorData::I64(v) => v.len(),
            TensorData::U8(v) => v.len(),
            TensorData::I8(v) => v.len(),
            TensorData::I32(v) => v.len(),
            TensorData::SharedF32(v) => v.len,
        };
        if n != len {
            return Err(Error::Shape(format!(
                "shape {shape:?} needs {n} elements, data has {len}"
            )));
        }
        Ok(Tensor { shape, data })
    }
    pub fn from_f32(shape: Vec<usize>, v: Vec<f32>) -> Result<Tensor> {
        Tensor::new(shape, TensorData::F32(v))
    }
    pub fn from_i64(shape: Vec<usize>, v: Vec<i64>) -> Result<Tensor> {
        Tensor::new(shape, TensorData::I64(v))
    }
    pub fn zeros(dtype: DType, shape: Vec<usize>) -> Result<Tensor> {
        let n = checked_numel(&shape, "tensor")?;
        let data = match dtype {
            DType::F32 => TensorData::F32(vec![0.0; n]),
            DType::I64 => TensorData::I64(vec![0; n]),
            DType::U8 => TensorData::U8(vec![0; n]),
            DType::I8 => TensorData::I8(vec![0; n]),
            DType::I32 => TensorData::I32(vec![0; n]),
        };
        Ok(Tensor { shape, data })
    }
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }
    pub fn dtype(&self) -> DType {
        match self.data {
            TensorData::F32(_) | TensorData::SharedF32(_) => DType::F32,
            TensorData::I64(_) => DType::I64,
            TensorData::U8(_) => DType::U8,
            TensorData::I8(_) => DType::I8,
            TensorData::I32(_) => DType::I32,
        }
    }
    pub fn len(&self) -> usize {
        numel(&self.shape)
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    pub fn data(&self) -> &TensorData {
        &self.data
    }
    /// Shape and data borrowed at once (the shape stays fixed).
    pub fn parts_mut(&mut self) -> (&[usize], &mut TensorData) {
        (&self.shape, &mut self.data)
    }
    pub fn as_f32(&self) -> Option<&[f32]> {
        match &self.data {
            TensorData::F32(v) => Some(v),
            TensorData::SharedF32(v) => Some(v.as_slice()),
            _ => None,
        }
    }
    pub fn as_i64(&self) -> Option<&[i64]> {
        match &self.data {
            TensorData::I64(v) => Some(v),
            _ => None,
        }
    }
    /// Values as i64 (floats truncated), for shape arithmetic.
    pub fn to_i64_vec(&self) -> Vec<i64> {
        match &self.data {
            TensorData::F32(v) => v.iter().map(|&x| x as i64).collect(),
            TensorData::SharedF32(v) => v.as_slice().iter().map(|&x| x as i64).collect(),
            TensorData::I64(v) => v.clone(),
            TensorData::U8(v) => v.iter().map(|&x| x as i64).collect(),
            TensorData::I8(v) => v.iter().map(|&x| x as i64).collect(),
            TensorData::I32(v) => v.iter().map(|&x| x as i64).collect(),
        }
    }
    /// Values as f32 (integers converted).
    pub fn to_f32_vec(&self) -> Vec<f32> {
        match &self.data {
            TensorData::F32(v) => v.clone(),
            TensorData::SharedF32(v) => v.as_slice().to_vec(),
            _ => self.to_i64_vec().into_iter().map(|x| x as f32).collect(),
        }
    }
    /// The elements' bytes in memory (native order).
    pub fn as_bytes(&self) -> &[u8] {
        match &self.data {
            TensorData::F32(v) => bytemuck::cast_slice(v),
            TensorData::SharedF32(v) => bytemuck::cast_slice(v.as_slice()),
            TensorData::I64(v) => bytemuck::cast_slice(v),
            TensorData::U8(v) => v,
            TensorData::I8(v) => bytemuck::cast_slice(v),
            TensorData::I32(v) => bytemuck::cast_slice(v),
        }
    }
    /// The elements as little-endian bytes (what `.sqz` stores for integer
    /// tensors).
    pub fn to_le_bytes(&self) -> Vec<u8> {
        match &self.data {
            TensorData::F32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            TensorData::SharedF32(v) => v.as_slice().iter().flat_map(|x| x.to_le_bytes()).collect(),
            TensorData::I64(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            TensorData::U8(v) => v.clone(),
            TensorData::I8(v) => v.iter().map(|&x| x as u8).collect(),
            TensorData::I32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        }
    }
    /// A tensor of `dtype` from little-endian bytes (the inverse of
    /// [`Tensor::to_le_bytes`]); the byte count must match the shape.
    pub fn from_le_bytes(dtype: DType, shape: Vec<usize>, bytes: &[u8]) -> Result<Tensor> {
        let n = checked_numel(&shape, "tensor")?;
        if n.checked_mul(dtype.size()) != Some(bytes.len()) {
            return Err(Error::Shape(format!(
                "{} bytes for {n} elements of {}",
                bytes.len(),
                dtype.name()
            )));
        }
        let words4 = || bytes.chunks_exact(4).map(|c| [c[0], c[1], c[2], c[3]]);
        let data = match dtype {
            DType::F32 => TensorData::F32(words4().map(f32::from_le_bytes).collect()),
            DType::I32 => TensorData::I32(words4().map(i32::from_le_bytes).collect()),
            DType::I64 => TensorData::I64(
                bytes
                    .chunks_exact(8)
                    .map(|c| i64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
                    .collect(),
            ),
            DType::U8 => TensorData::U8(bytes.to_vec()),
            DType::I8 => TensorData::I8(bytes.iter().map(|&b| b as i8).collect()),
        };
        Tensor::new(shape, data)
    }
}
