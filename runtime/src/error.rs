//! The one error type of the crate: every failure is typed, none panics.

use std::path::PathBuf;

/// Result alias used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong while loading, optimizing or running a model.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("malformed model: {0}")]
    Malformed(String),
    #[error("unsupported op {op_type} (node {node:?}, opset {opset}): {reason}")]
    UnsupportedOp {
        op_type: String,
        node: String,
        opset: i64,
        reason: String,
    },
    /// A model input feeds an operand that must be known when the model is
    /// prepared (a Reshape's shape, a Reduce's axes, a Resize's scales…).
    #[error("input {input:?} feeds {what} of node {node:?} ({op_type}), which must be known when the model is prepared: give the input's value at load (LoadOptions::input_values, or --input-value {input}=FILE.npy)")]
    InputValueNeeded {
        input: String,
        node: String,
        op_type: String,
        what: String,
    },
    #[error("invalid graph at node {node:?}: {reason}")]
    InvalidGraph { node: String, reason: String },
    #[error("the graph has a cycle through node {0:?}")]
    Cycle(String),
    #[error("tensor too large: {what} declares {elements} elements (limit {limit})")]
    TooLarge {
        what: String,
        elements: u128,
        limit: u64,
    },
    #[error("shape mismatch: {0}")]
    Shape(String),
    #[error("input error: {0}")]
    Input(String),
    #[error("external data refused: {0}")]
    ExternalData(String),
    #[error("packed model: {0}")]
    Container(#[from] crate::pack::ContainerError),
    #[error("weight codec: {0}")]
    Codec(#[from] crate::pack::CodecError),
    #[error("packed model: {0}")]
    Pack(String),
    #[error("camera frame: {0}")]
    Frame(String),
}

impl Error {
    pub(crate) fn invalid(node: &str, reason: impl Into<String>) -> Self {
        Error::InvalidGraph {
            node: node.to_string(),
            reason: reason.into(),
        }
    }
}
