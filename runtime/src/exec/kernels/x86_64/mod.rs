//! x86_64 kernels: AVX2+FMA and AVX-512F microkernels, int8 tiles (AVX2
//! `vpmaddwd`, AVX-512 VNNI `vpdpbusd`), plus the ISA-neutral
//! loops (depthwise, elementwise) compiled for each with `#[target_feature]`.
//! Each ISA is a zero-sized token type that only [`detect`](Avx2::detect)
//! makes, so holding one proves the CPU runs its instructions. [`fma_peak`]
//! measures the clock and peak FMA throughput for `squeeze bench --fma-peak`.

mod avx2;
mod avx512;
mod probe;
mod qavx2;
mod vnni;

pub use avx2::Avx2;
pub use avx512::Avx512;
pub use probe::{
    fma_peak, fma_peak_avx2, fma_peak_avx512, FmaPeak, AVX2_ACCUMULATORS, AVX512_ACCUMULATORS,
    FMA_LATENCY_CYCLES,
};
pub use vnni::Avx512Vnni;
