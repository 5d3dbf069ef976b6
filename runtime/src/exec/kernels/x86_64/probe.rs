//! FMA probe: this core's f32 FMA throughput, measured rather than looked
//! up, so that a GEMM's efficiency can be stated against something honest.
//! Two loops per ISA, each timed as the best of a few samples:
//! - a chain of *dependent* FMAs: latency-bound, one FMA per FMA latency.
//!   With the documented latency ([`FMA_LATENCY_CYCLES`]) this gives the
//!   clock the core actually ran at (boost included, which `/proc/cpuinfo`
//!   does not always show in a VM);
//! - many *independent* FMAs over [`AVX2_ACCUMULATORS`] or
//!   [`AVX512_ACCUMULATORS`] registers: throughput-bound, the peak FLOP/s.
//!
//! `squeeze bench --fma-peak` prints the result; `scripts/bench.py` sets a
//! 1×1 conv's GFLOP/s against it.

use std::arch::x86_64::*;
use std::hint::black_box;
use std::time::Instant;

use super::{Avx2, Avx512};
use crate::exec::kernels::Isa;

/// Latency of a vector f32 FMA in cycles: 4 on AMD Zen 2 to Zen 5 and on
/// Intel from Skylake on (Agner Fog's instruction tables, uops.info).
pub const FMA_LATENCY_CYCLES: f64 = 4.0;
/// Independent ymm accumulators (of 16 registers; two more hold operands).
pub const AVX2_ACCUMULATORS: usize = 12;
/// Independent zmm accumulators (of 32 registers).
pub const AVX512_ACCUMULATORS: usize = 16;

/// Dependent FMAs per iteration of the latency loop.
const CHAIN_UNROLL: usize = 8;
/// Wall time aimed at per timed sample.
const SAMPLE_SECONDS: f64 = 0.02;
/// Timed samples per loop (the fastest one counts).
const SAMPLES: usize = 7;

/// What the probe measured on one core.
#[derive(Clone, Copy, Debug)]
pub struct FmaPeak {
    pub isa: Isa,
    /// f32 lanes per vector.
    pub lanes: usize,
    /// Independent accumulators in the throughput loop.
    pub accumulators: usize,
    /// Clock from the dependent chain at [`FMA_LATENCY_CYCLES`], GHz.
    pub clock_ghz: f64,
    /// Measured FLOP/s (an FMA is 2 FLOPs per lane) over the clock.
    pub flops_per_cycle: f64,
    /// Measured peak of the independent FMAs, GFLOP/s.
    pub peak_gflops: f64,
}

/// Measures FMA latency and throughput with AVX2+FMA (about half a second).
pub fn fma_peak_avx2(_token: Avx2) -> FmaPeak {
    measure(
        Isa::Avx2,
        8,
        AVX2_ACCUMULATORS,
        // SAFETY: the `Avx2` token proves the CPU has AVX2 and FMA.
        |n, m, c| unsafe { chain_avx2(n, m, c) },
        // SAFETY: as above.
        |n, m, c| unsafe { independent_avx2(n, m, c) },
    )
}

/// Measures FMA latency and throughput with AVX-512F (about half a second).
pub fn fma_peak_avx512(_token: Avx512) -> FmaPeak {
    measure(
        Isa::Avx512,
        16,
        AVX512_ACCUMULATORS,
        // SAFETY: the `Avx512` token proves the CPU has AVX-512F.
        |n, m, c| unsafe { chain_avx512(n, m, c) },
        // SAFETY: as above.
        |n, m, c| unsafe { independent_avx512(n, m, c) },
    )
}

/// The probe for `isa` if it is an x86 SIMD ISA this CPU has.
pub fn fma_peak(isa: Isa) -> Option<FmaPeak> {
    match isa {
        Isa::Avx512 => Avx512::detect().map(fma_peak_avx512),
        Isa::Avx2 => Avx2::detect().map(fma_peak_avx2),
        Isa::Scalar | Isa::Neon => None,
    }
}

type Loop = fn(usize, f32, f32) -> f32;

fn seconds(f: Loop, n: usize, m: f32, c: f32) -> f64 {
    let t = Instant::now();
    black_box(f(black_box(n), m, c));
    t.elapsed().as_secs_f64()
}

/// Iterations of `f` that take about [`SAMPLE_SECONDS`].
fn calibrate(f: Loop, m: f32, c: f32) -> usize {
    let mut n = 1 << 12;
    loop {
        let s = seconds(f, n, m, c);
        if s >= SAMPLE_SECONDS / 8.0 || n >= 1 << 34 {
            return ((n as f64 * SAMPLE_SECONDS / s.max(1e-9)) as usize).max(1);
        }
        n *= 2;
    }
}

fn measure(isa: Isa, lanes: usize, accumulators: usize, chain: Loop, independent: Loop) -> FmaPeak {
    // acc·m + c with m = 1 - 2^-20 and c = 2^-20 keeps acc = 1 exactly: no
    // denormals, no overflow. black_box hides the values from the optimizer.
    let m = black_box(1.0 - 1.0 / (1u32 << 20) as f32);
    let c = black_box(1.0 / (1u32 << 20) as f32);
    // Warm up (clock ramp, wide-vector power state), then size the samples.
    seconds(independent, 1 << 16, m, c);
    let (n_chain, n_ind) = (calibrate(chain, m, c), calibrate(independent, m, c));
    let (mut t_chain, mut t_ind) = (f64::INFINITY, f64::INFINITY);
    for _ in 0..SAMPLES {
        // Interleaved, so both loops see the same clock state.
        t_chain = t_chain.min(seconds(chain, n_chain, m, c));
        t_ind = t_ind.min(seconds(independent, n_ind, m, c));
    }
    let clock_hz = FMA_LATENCY_CYCLES * (n_chain * CHAIN_UNROLL) as f64 / t_chain;
    let flops = (n_ind * accumulators * lanes * 2) as f64 / t_ind;
    FmaPeak {
        isa,
        lanes,
        accumulators,
        clock_ghz: clock_hz / 1e9,
        flops_per_cycle: flops / clock_hz,
        peak_gflops: flops / 1e9,
    }
}

/// `iters × 8` dependent FMAs on one ymm register.
///
/// # Safety
/// The CPU has AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
unsafe fn chain_avx2(iters: usize, m: f32, c: f32) -> f32 {
    let (m, c) = (_mm256_set1_ps(m), _mm256_set1_ps(c));
    let mut a = _mm256_set1_ps(1.0);
    for _ in 0..iters {
        for _ in 0..CHAIN_UNROLL {
            a = _mm256_fmadd_ps(a, m, c);
        }
    }
    _mm256_cvtss_f32(a)
}

/// `iters × AVX2_ACCUMULATORS` independent FMAs.
///
/// # Safety
/// The CPU has AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
unsafe fn independent_avx2(iters: usize, m: f32, c: f32) -> f32 {
    let (m, c) = (_mm256_set1_ps(m), _mm256_set1_ps(c));
    let mut acc = [_mm256_set1_ps(1.0); AVX2_ACCUMULATORS];
    for _ in 0..iters {
        for a in acc.iter_mut() {
            *a = _mm256_fmadd_ps(*a, m, c);
        }
    }
    let mut s = acc[0];
    for a in &acc[1..] {
        s = _mm256_add_ps(s, *a);
    }
    _mm256_cvtss_f32(s)
}

/// `iters × 8` dependent FMAs on one zmm register.
///
/// # Safety
/// The CPU has AVX-512F.
#[target_feature(enable = "avx512f")]
unsafe fn chain_avx512(iters: usize, m: f32, c: f32) -> f32 {
    let (m, c) = (_mm512_set1_ps(m), _mm512_set1_ps(c));
    let mut a = _mm512_set1_ps(1.0);
    for _ in 0..iters {
        for _ in 0..CHAIN_UNROLL {
            a = _mm512_fmadd_ps(a, m, c);
        }
    }
    _mm512_reduce_add_ps(a)
}

/// `iters × AVX512_ACCUMULATORS` independent FMAs.
///
/// # Safety
/// The CPU has AVX-512F.
#[target_feature(enable = "avx512f")]
unsafe fn independent_avx512(iters: usize, m: f32, c: f32) -> f32 {
    let (m, c) = (_mm512_set1_ps(m), _mm512_set1_ps(c));
    let mut acc = [_mm512_set1_ps(1.0); AVX512_ACCUMULATORS];
    for _ in 0..iters {
        for a in acc.iter_mut() {
            *a = _mm512_fmadd_ps(*a, m, c);
        }
    }
    let mut s = acc[0];
    for a in &acc[1..] {
        s = _mm512_add_ps(s, *a);
    }
    _mm512_reduce_add_ps(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_reports_plausible_numbers() {
        for isa in [Isa::Avx2, Isa::Avx512] {
            let Some(p) = fma_peak(isa) else { continue };
            assert!(p.clock_ghz > 0.1 && p.clock_ghz < 10.0, "{p:?}");
            assert!(p.peak_gflops > 0.0, "{p:?}");
            // at most 2 FMA pipes of `lanes`, with room for timing noise
            assert!(
                p.flops_per_cycle <= 2.0 * 2.0 * p.lanes as f64 * 1.5,
                "{p:?}"
            );
        }
    }
}
