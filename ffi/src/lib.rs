//! libsqueeze: the C ABI of the squeeze runtime, and behind the `jni`
//! feature the glue of its Android library, so an app ships one library.
//!
//! Every export returns an [`SqzStatus`] (or is a free or a getter that
//! cannot fail), checks its pointers, and runs its body under
//! [`status::guard`]: no panic unwinds into C. The header
//! `ffi/include/squeeze.h` is generated from this crate by cbindgen and
//! checked by `tests/header.rs`.
//!
//! `unsafe` here is the boundary itself: turning C pointers into references
//! and slices, each under a `// SAFETY:` line naming the caller's contract
//! the header documents.

/// `from_code` for a `#[repr(u32)]` C enum: its values arrive from C as
/// plain `u32`s, so that an out-of-range value is
/// `SQZ_STATUS_INVALID_ARGUMENT`, never undefined behaviour. (The enums
/// themselves are written out, for cbindgen to see.)
macro_rules! from_code {
    ($name:ident: $($variant:ident),+) => {
        impl $name {
            /// The variant for a value from C.
            pub(crate) fn from_code(code: u32, field: &str) -> crate::status::Outcome<$name> {
                $(if code == $name::$variant as u32 {
                    return Ok($name::$variant);
                })+
                Err(crate::status::Failure::invalid(format!(
                    "{field} = {code} is not an {}",
                    stringify!($name)
                )))
            }
        }
    };
}

mod api;
mod frame;
#[cfg(feature = "jni")]
mod jni;
mod model;
mod session;
mod status;

pub use api::*;
pub use frame::{
    SqzFrame, SqzFrameOptions, SqzPixelFormat, SqzPlane, SqzRect, SqzResize, SqzYuvMatrix,
    SqzYuvRange,
};
pub use model::{
    SqzBufferMode, SqzDtype, SqzIsa, SqzLoadOptions, SqzModel, SqzModelMetadata, SqzTensorInfo,
};
pub use session::{SqzInput, SqzOutput, SqzOutputs, SqzSession, SqzTensorView};
pub use status::SqzStatus;
