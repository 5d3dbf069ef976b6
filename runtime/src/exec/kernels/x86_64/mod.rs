//! x86_64 kernels: AVX2+FMA and AVX-512F microkernels, plus the ISA-neutral
//! loops (depthwise, elementwise) compiled for each with `#[target_feature]`.
//! Each ISA is a zero-sized token type that only [`detect`](Avx2::detect)
//! makes, so holding one proves the CPU runs its instructions.

mod avx2;
mod avx512;

pub use avx2::Avx2;
pub use avx512::Avx512;
