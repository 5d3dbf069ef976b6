//! The `.sqz` packed model: container, weight codecs, writer and loader.

pub mod codec;
pub mod container;

pub use codec::{CodecError, Filter, WeightStorage};
pub use container::{Container, ContainerError, Limits};
