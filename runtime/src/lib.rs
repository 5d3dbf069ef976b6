//! squeeze: a small, fast inference runtime for CNNs on phones.
//!
//! The pipeline: [`onnx`] import → [`ir`] graph → [`opt`] passes →
//! [`plan`] memory plan → [`exec`] executor with per-ISA kernels →
//! [`session`], plus the packed `.sqz` format in [`pack`] and camera
//! frames to input tensors in [`frame`].
//!
//! `unsafe` is denied everywhere except the ISA kernel modules
//! (`exec::kernels::{x86_64, aarch64}`) and the memory map of a `.sqz`
//! file, where each block says why it holds.
#![deny(unsafe_code)]

#[cfg(feature = "cli")]
pub mod cli;
pub mod error;
pub mod exec;
pub mod frame;
pub mod ir;
pub mod npy;
#[cfg(feature = "onnx")]
pub mod onnx;
pub mod opt;
pub mod pack;
pub mod plan;
pub mod session;

pub use error::{Error, Result};
pub use ir::{DType, Tensor};
pub use session::{IoInfo, LoadOptions, Model, Session};

/// Parameter and activation totals as `squeeze inspect` reports them.
pub use ir::{inspect_totals, Totals};

/// The crate version, for reports and the C ABI.
pub fn version() -> &'static str {
    env!("CARGO_PKG_VERSION")
}
