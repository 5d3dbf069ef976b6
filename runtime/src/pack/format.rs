//! What the sections of a `.sqz` hold: metadata (JSON), the graph with its
//! weight table (postcard), and one section per constant tensor.

use serde::{Deserialize, Serialize};

use super::codec::{Filter, WeightStorage};
use crate::ir::{DType, Graph};

/// Section kinds of `.sqz` v1 (readers skip kinds they do not know).
pub mod kind {
    pub const METADATA: u32 = 1;
    pub const GRAPH: u32 = 2;
    pub const WEIGHT: u32 = 3;
}

/// How one constant tensor is stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Storage {
    F32,
    F16,
    Int8,
    Palette {
        bits: u8,
    },
    /// i64 little-endian, for index and shape constants.
    I64,
    /// The value's own integer dtype, little-endian (u8, i8 and i32
    /// tensors of quantized models: weights already int8, biases i32).
    Raw,
}

impl Storage {
    pub fn codec(self) -> Option<WeightStorage> {
        Some(match self {
            Storage::F32 => WeightStorage::F32,
            Storage::F16 => WeightStorage::F16,
            Storage::Int8 => WeightStorage::Int8,
            Storage::Palette { bits } => WeightStorage::Palette { bits },
            Storage::I64 | Storage::Raw => return None,
        })
    }
    pub fn name(self) -> String {
        match self {
            Storage::F32 => "f32".into(),
            Storage::F16 => "f16".into(),
            Storage::Int8 => "int8".into(),
            Storage::Palette { bits } => format!("palette{bits}"),
            Storage::I64 => "i64".into(),
            Storage::Raw => "raw".into(),
        }
    }
    /// Parses `f32`, `f16`, `int8`, `palette2`..`palette8`.
    pub fn parse(s: &str) -> Option<Storage> {
        match s {
            "f32" => Some(Storage::F32),
            "f16" => Some(Storage::F16),
            "int8" => Some(Storage::Int8),
            _ => s
                .strip_prefix("palette")
                .and_then(|b| b.parse().ok())
                .filter(|b| (2..=8).contains(b))
                .map(|bits| Storage::Palette { bits }),
        }
    }
}

/// One constant of the graph and where its data lives.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct WeightEntry {
    /// The graph value this tensor fills.
    pub value: usize,
    pub storage: Storage,
    pub shuffled: bool,
    /// Rows along the leading axis (one scale per row for int8).
    pub channels: usize,
    /// Index of its section in the container's table.
    pub section: usize,
}

impl WeightEntry {
    pub fn filter(&self) -> Filter {
        if self.shuffled {
            Filter::ByteShuffle
        } else {
            Filter::None
        }
    }
}

/// The GRAPH section.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct GraphSection {
    pub graph: Graph,
    pub weights: Vec<WeightEntry>,
}

/// Input description kept in the metadata.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TensorDesc {
    pub name: String,
    pub dtype: DType,
    pub shape: Vec<usize>,
}

/// How to turn an image into the model's input, set at pack time.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Preprocessing {
    /// "NCHW"
    pub layout: String,
    /// "RGB" or "BGR"
    pub color_order: String,
    /// `(pixel * scale - mean) / std` per channel.
    pub scale: f32,
    pub mean: [f32; 3],
    pub std: [f32; 3],
    /// \[height, width\]
    pub input_size: [usize; 2],
}

/// The METADATA section.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Metadata {
    pub name: String,
    pub version: String,
    pub producer: String,
    pub inputs: Vec<TensorDesc>,
    pub outputs: Vec<TensorDesc>,
    pub preprocessing: Option<Preprocessing>,
    pub labels: Vec<String>,
}
