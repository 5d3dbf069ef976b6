//! Dense tensors: the values of constants, inputs and outputs.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Element types the runtime computes with. Other ONNX integer types are
/// widened to `I64` at import (they only carry shapes and indices in CNNs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum DType {
    F32,
    I64,
}

impl DType {
    pub fn size(self) -> usize {
        match self {
            DType::F32 => 4,
            DType::I64 => 8,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            DType::F32 => "f32",
            DType::I64 => "i64",
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
        }
    }
    /// Values as f32 (integers converted).
    pub fn to_f32_vec(&self) -> Vec<f32> {
        match &self.data {
            TensorData::F32(v) => v.clone(),
            TensorData::SharedF32(v) => v.as_slice().to_vec(),
            TensorData::I64(v) => v.iter().map(|&x| x as f32).collect(),
        }
    }
}
