//! Reference kernels: plain loops, clear rather than clever. Every fast
//! kernel of another ISA is tested against these.

pub mod conv;
pub mod einsum;
pub mod elementwise;
pub mod gemm;
pub mod movement;
pub mod nms;
pub mod pool;
pub mod quant;
pub mod recurrent;
pub mod reduce;
pub mod reference;
pub mod resize;

/// A shape or stride list kept on the stack (no allocation per run).
pub type Dims = smallvec::SmallVec<[usize; 8]>;
