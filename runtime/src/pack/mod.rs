//! The `.sqz` packed model: a checksummed container ([`container`]) of
//! metadata, graph and weight sections, weights stored per tensor as f32,
//! f16, int8 or a k-means palette ([`codec`]), each zstd-compressed.

mod calibrate;
pub mod codec;
pub mod container;
pub mod format;
mod load;
pub mod ptq;
mod write;

pub use codec::{CodecError, Filter, WeightStorage};
pub use container::{Container, ContainerError, Limits, MAGIC};
pub use format::{Metadata, Preprocessing, Storage, TensorDesc};
pub use load::{
    load_bytes, load_file_region, load_path, load_reader, load_shared_bytes, PackageInfo,
    SharedBytes,
};
pub use write::{pack, PackOptions, PackReport, TensorReport};

/// True when `prefix` starts like a `.sqz` file.
pub fn is_sqz(prefix: &[u8]) -> bool {
    prefix.starts_with(&MAGIC)
}
