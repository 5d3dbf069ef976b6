//! aarch64 kernels: a NEON (with FMA) microkernel plus the ISA-neutral loops
//! compiled for NEON. NEON is part of the aarch64 baseline, but the token is
//! still made by detection so the dispatch tests can see it.

mod neon;
mod qdot;
mod qneon;

pub use neon::Neon;
pub use qdot::NeonDot;
