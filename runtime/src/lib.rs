//! squeeze: a small, fast inference runtime for CNNs on phones.
//!
//! The pipeline: [`onnx`] import → [`ir`] graph → [`opt`] passes →
//! [`plan`] memory plan → [`exec`] executor with per-ISA kernels →
//! [`session`], plus the packed `.sqz` format in [`pack`].

#[cfg(feature = "cli")]
pub mod cli;
pub mod error;
pub mod exec;
pub mod ir;
#[cfg(feature = "onnx")]
pub mod onnx;
pub mod opt;
pub mod pack;
pub mod plan;
pub mod session;
pub mod npy;

pub use error::{Error, Result};
pub use ir::{DType, Tensor};
pub use session::{Model, Session, LoadOptions};

/// The crate version, for reports and the C ABI.
pub fn version() -> &'static str {
    env!("CARGO_PKG_VERSION")
}
