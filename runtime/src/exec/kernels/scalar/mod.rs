//! Reference kernels: plain loops, clear rather than clever. Every fast
//! kernel of another ISA is tested against these.

pub mod conv;
pub mod elementwise;
pub mod gemm;
pub mod movement;
pub mod pool;
pub mod reduce;
pub mod resize;
