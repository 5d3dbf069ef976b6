//! AVX-512F: an 8×32 microkernel (16 zmm accumulators, two B vectors and
//! one broadcast; half the register file, so no spills).

use std::arch::x86_64::*;

use crate::exec::kernels::contract::RegisterActivation;
use crate::exec::kernels::depthwise::{BlockClamp, LANES, ROWS};
use crate::exec::kernels::gemm::TileClamp;
use crate::exec::kernels::simd::impl_simd;

/// Proof that the CPU has AVX-512F (and the AVX2+FMA the shared loops use).
#[derive(Clone, Copy, Debug)]
pub struct Avx512(());

impl Avx512 {
    pub fn detect() -> Option<Avx512> {
        (is_x86_feature_detected!("avx512f")
            && is_x86_feature_detected!("avx2")
            && is_x86_feature_detected!("fma"))
        .then_some(Avx512(()))
    }
}

impl_simd!(
    Avx512,
    "avx512f,avx2,fma",
    "8x32",
    "avx512",
    tile_8x32,
    MR,
    NR,
    dw_window_8x16,
    crate::exec::kernels::x86_64::avx2::transpose_8x8
);

const MR: usize = 8;
const NR: usize = 32;

/// Only the first `cols` columns of C are read and written (masked loads
/// and stores).
///
/// # Safety
/// The CPU has AVX-512F; `a` holds `k*8` values, `b_row(p)` points at 32
/// readable values for every `p < k`, `cols <= 32`, and `c` is valid for
/// `7*ldc + cols` values.
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
unsafe fn tile_8x32<R: Fn(usize) -> *const f32>(
    k: usize,
    a: *const f32,
    b_row: R,
    c: *mut f32,
    ldc: usize,
    cols: usize,
    acc: bool,
    clamp: Option<&TileClamp>,
) {
    let bits = u32::MAX.checked_shr(32 - cols as u32).unwrap_or(0);
    let (m_lo, m_hi) = (bits as u16, (bits >> 16) as u16);
    let mut lo = [_mm512_setzero_ps(); MR];
    let mut hi = [_mm512_setzero_ps(); MR];
    for p in 0..k {
        let b0 = _mm512_loadu_ps(b_row(p));
        let b1 = _mm512_loadu_ps(b_row(p).add(16));
        for i in 0..MR {
            let av = _mm512_set1_ps(*a.add(p * MR + i));
            lo[i] = _mm512_fmadd_ps(av, b0, lo[i]);
            hi[i] = _mm512_fmadd_ps(av, b1, hi[i]);
        }
    }
    for i in 0..MR {
        let row = c.add(i * ldc);
        if acc {
            lo[i] = _mm512_add_ps(lo[i], _mm512_maskz_loadu_ps(m_lo, row));
            hi[i] = _mm512_add_ps(hi[i], _mm512_maskz_loadu_ps(m_hi, row.add(16)));
        }
        if let Some(t) = clamp {
            let bias = _mm512_set1_ps(t.bias[i]);
            lo[i] = activate(_mm512_add_ps(lo[i], bias), &t.act);
            hi[i] = activate(_mm512_add_ps(hi[i], bias), &t.act);
        }
        _mm512_mask_storeu_ps(row, m_lo, lo[i]);
        _mm512_mask_storeu_ps(row.add(16), m_hi, hi[i]);
    }
}

/// Depthwise taps of 8 rows × 16 lanes: one zmm accumulator per row, so
/// eight independent FMA chains (or maxima, with `MAX`); then `clamp`.
/// Tap `t` weighs every lane by `w[t]`, or lane `l` by `w[16t + l]` with
/// `LANE_WEIGHTS` (lanes are channels).
///
/// # Safety
/// The CPU has AVX-512F; `w` holds `offsets.len()` values (16 times that
/// with `LANE_WEIGHTS`) and `pad.add(offsets[t] + r*row_step)` points at
/// 16 readable values for every tap `t` and row `r < 8`; `out.add(r *
/// out_step)` is valid for `cols <= 16` writes for every row `r < rows <= 8`.
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
unsafe fn dw_window_8x16<const MAX: bool, const LANE_WEIGHTS: bool>(
    pad: *const f32,
    row_step: usize,
    offsets: &[usize],
    w: *const f32,
    clamp: &BlockClamp,
    out: *mut f32,
    out_step: usize,
    cols: usize,
    rows: usize,
) {
    const { assert!(LANES == 16 && ROWS == 8) };
    let mut acc = [_mm512_set1_ps(if MAX { f32::NEG_INFINITY } else { 0.0 }); ROWS];
    for (t, &off) in offsets.iter().enumerate() {
        let wv = match (MAX, LANE_WEIGHTS) {
            (true, _) => _mm512_setzero_ps(),
            (false, true) => _mm512_loadu_ps(w.add(t * LANES)),
            (false, false) => _mm512_set1_ps(*w.add(t)),
        };
        let src = pad.add(off);
        for (r, a) in acc.iter_mut().enumerate() {
            let v = _mm512_loadu_ps(src.add(r * row_step));
            *a = if MAX {
                _mm512_max_ps(v, *a)
            } else {
                _mm512_fmadd_ps(wv, v, *a)
            };
        }
    }
    let bias = _mm512_loadu_ps(clamp.bias.as_ptr());
    let mask = ((1u32 << cols) - 1) as u16;
    for (r, a) in acc.into_iter().enumerate().take(rows) {
        let v = activate(_mm512_add_ps(a, bias), &clamp.act);
        _mm512_mask_storeu_ps(out.add(r * out_step), mask, v);
    }
}

/// [`RegisterActivation::apply`] on 16 lanes.
#[inline]
#[target_feature(enable = "avx512f")]
fn activate(v: __m512, act: &RegisterActivation) -> __m512 {
    let v = _mm512_min_ps(
        _mm512_max_ps(v, _mm512_set1_ps(act.min)),
        _mm512_set1_ps(act.max),
    );
    if !act.hard_swish {
        return v;
    }
    let gate = _mm512_fmadd_ps(v, _mm512_set1_ps(1.0 / 6.0), _mm512_set1_ps(0.5));
    let gate = _mm512_min_ps(
        _mm512_max_ps(gate, _mm512_setzero_ps()),
        _mm512_set1_ps(1.0),
    );
    _mm512_mul_ps(v, gate)
}
