//! AVX2+FMA: a 6×16 microkernel (12 ymm accumulators, two B vectors and one
//! broadcast: 15 of the 16 registers).

use std::arch::x86_64::*;

use crate::exec::kernels::contract::RegisterActivation;
use crate::exec::kernels::depthwise::{BlockClamp, LANES, ROWS};
use crate::exec::kernels::gemm::TileClamp;
use crate::exec::kernels::simd::impl_simd;

/// Proof that the CPU has AVX2 and FMA.
#[derive(Clone, Copy, Debug)]
pub struct Avx2(());

impl Avx2 {
    pub fn detect() -> Option<Avx2> {
        (is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")).then_some(Avx2(()))
    }
}

impl_simd!(
    Avx2,
    "avx2,fma",
    "6x16",
    "avx2",
    tile_6x16,
    MR,
    NR,
    dw_window_8x16,
    transpose_8x8
);

const MR: usize = 6;
const NR: usize = 16;

/// # Safety
/// The CPU has AVX2 and FMA; `a` holds `k*6` values, `b_row(p)` points at 16
/// readable values for every `p < k`, `cols <= 16`, and `c` is valid for
/// `5*ldc + cols` values.
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn tile_6x16<R: Fn(usize) -> *const f32>(
    k: usize,
    a: *const f32,
    b_row: R,
    c: *mut f32,
    ldc: usize,
    cols: usize,
    acc: bool,
    clamp: Option<&TileClamp>,
) {
    let mut lo = [_mm256_setzero_ps(); MR];
    let mut hi = [_mm256_setzero_ps(); MR];
    for p in 0..k {
        let b0 = _mm256_loadu_ps(b_row(p));
        let b1 = _mm256_loadu_ps(b_row(p).add(8));
        for i in 0..MR {
            let av = _mm256_broadcast_ss(&*a.add(p * MR + i));
            lo[i] = _mm256_fmadd_ps(av, b0, lo[i]);
            hi[i] = _mm256_fmadd_ps(av, b1, hi[i]);
        }
    }
    // Each row finished by a call with a constant index, so the
    // accumulators stay in registers (a loop over `i` spilled them all).
    let finish = |i: usize, mut lo: __m256, mut hi: __m256| {
        let c_row = c.add(i * ldc);
        if cols == NR {
            if acc {
                lo = _mm256_add_ps(lo, _mm256_loadu_ps(c_row));
                hi = _mm256_add_ps(hi, _mm256_loadu_ps(c_row.add(8)));
            }
            if let Some(t) = clamp {
                let bias = _mm256_set1_ps(t.bias[i]);
                lo = activate(_mm256_add_ps(lo, bias), &t.act);
                hi = activate(_mm256_add_ps(hi, bias), &t.act);
            }
            _mm256_storeu_ps(c_row, lo);
            _mm256_storeu_ps(c_row.add(8), hi);
            return;
        }
        // A row of fewer than NR columns goes through a stack row
        // (AVX2's masked stores are slow on some cores).
        let mut row = [0f32; NR];
        if acc {
            std::ptr::copy_nonoverlapping(c_row, row.as_mut_ptr(), cols);
            lo = _mm256_add_ps(lo, _mm256_loadu_ps(row.as_ptr()));
            hi = _mm256_add_ps(hi, _mm256_loadu_ps(row.as_ptr().add(8)));
        }
        if let Some(t) = clamp {
            let bias = _mm256_set1_ps(t.bias[i]);
            lo = activate(_mm256_add_ps(lo, bias), &t.act);
            hi = activate(_mm256_add_ps(hi, bias), &t.act);
        }
        _mm256_storeu_ps(row.as_mut_ptr(), lo);
        _mm256_storeu_ps(row.as_mut_ptr().add(8), hi);
        std::ptr::copy_nonoverlapping(row.as_ptr(), c_row, cols);
    };
    finish(0, lo[0], hi[0]);
    finish(1, lo[1], hi[1]);
    finish(2, lo[2], hi[2]);
    finish(3, lo[3], hi[3]);
    finish(4, lo[4], hi[4]);
    finish(5, lo[5], hi[5]);
}

/// Depthwise taps of 8 rows × 16 lanes, as two passes of 4 rows × 2 ymm:
/// eight independent FMA chains (or maxima, with `MAX`) and no spills in
/// 16 registers; then `clamp`. Tap `t` weighs every lane by `w[t]`, or
/// lane `l` by `w[16t + l]` with `LANE_WEIGHTS` (lanes are channels).
///
/// # Safety
/// The CPU has AVX2 and FMA; `w` holds `offsets.len()` values (16 times
/// that with `LANE_WEIGHTS`) and `pad.add(offsets[t] + r*row_step)` points
/// at 16 readable values for every tap `t` and row `r < 8`; `out.add(r *
/// out_step)` is valid for `cols <= 16` writes for every row `r < rows <= 8`.
#[target_feature(enable = "avx2,fma")]
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
    let bias = [clamp.bias.as_ptr(), clamp.bias.as_ptr().add(8)].map(|b| _mm256_loadu_ps(b));
    let finish = |v, h: usize| activate(_mm256_add_ps(v, bias[h]), &clamp.act);
    for half in 0..2 {
        let mut acc = [[_mm256_set1_ps(if MAX { f32::NEG_INFINITY } else { 0.0 }); 2]; 4];
        let first = pad.add(half * 4 * row_step);
        for (t, &off) in offsets.iter().enumerate() {
            let wv = match (MAX, LANE_WEIGHTS) {
                (true, _) => [_mm256_setzero_ps(); 2],
                (false, true) => {
                    let lanes = w.add(t * LANES);
                    [_mm256_loadu_ps(lanes), _mm256_loadu_ps(lanes.add(8))]
                }
                (false, false) => [_mm256_set1_ps(*w.add(t)); 2],
            };
            let src = first.add(off);
            for (r, a) in acc.iter_mut().enumerate() {
                let row = src.add(r * row_step);
                for (h, v) in a.iter_mut().enumerate() {
                    let x = _mm256_loadu_ps(row.add(8 * h));
                    *v = if MAX {
                        _mm256_max_ps(x, *v)
                    } else {
                        _mm256_fmadd_ps(wv[h], x, *v)
                    };
                }
            }
        }
        for (r, a) in acc
            .into_iter()
            .enumerate()
            .take(rows.saturating_sub(half * 4))
        {
            // A row of fewer than LANES columns goes through a stack row.
            let dst = out.add((half * 4 + r) * out_step);
            let mut part = [0f32; LANES];
            let row = if cols == LANES {
                dst
            } else {
                part.as_mut_ptr()
            };
            _mm256_storeu_ps(row, finish(a[0], 0));
            _mm256_storeu_ps(row.add(8), finish(a[1], 1));
            if cols < LANES {
                std::ptr::copy_nonoverlapping(part.as_ptr(), dst, cols);
            }
        }
    }
}

/// [`RegisterActivation::apply`] on 8 lanes.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn activate(v: __m256, act: &RegisterActivation) -> __m256 {
    let v = _mm256_min_ps(
        _mm256_max_ps(v, _mm256_set1_ps(act.min)),
        _mm256_set1_ps(act.max),
    );
    if !act.hard_swish {
        return v;
    }
    let gate = _mm256_fmadd_ps(v, _mm256_set1_ps(1.0 / 6.0), _mm256_set1_ps(0.5));
    let gate = _mm256_min_ps(
        _mm256_max_ps(gate, _mm256_setzero_ps()),
        _mm256_set1_ps(1.0),
    );
    _mm256_mul_ps(v, gate)
}

/// An 8×8 transpose in registers: `dst[c*dst_step + r] = src[r*src_step + c]`
/// (pairs interleaved, then quads, then 128-bit halves swapped).
///
/// # Safety
/// The CPU has AVX2; `src.add(r * src_step)` and `dst.add(r * dst_step)`
/// are valid for 8 values each for every `r < 8`.
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn transpose_8x8(
    src: *const f32,
    src_step: usize,
    dst: *mut f32,
    dst_step: usize,
) {
    let r: [__m256; 8] = std::array::from_fn(|i| _mm256_loadu_ps(src.add(i * src_step)));
    // Rows a..h: t0 = a0 b0 a1 b1 | a4 b4 a5 b5, t1 = a2 b2 a3 b3 | a6 b6 a7 b7, …
    let t: [__m256; 8] = std::array::from_fn(|i| {
        let (x, y) = (r[i / 2 * 2], r[i / 2 * 2 + 1]);
        if i % 2 == 0 {
            _mm256_unpacklo_ps(x, y)
        } else {
            _mm256_unpackhi_ps(x, y)
        }
    });
    // u0 = a0 b0 c0 d0 | a4 b4 c4 d4, u1 = a1 … d1 | a5 … d5, u2 = column 2|6,
    // u3 = column 3|7; u4..u7 the same for rows e..h.
    let quads = |lo: __m256, hi: __m256| {
        (
            _mm256_shuffle_ps::<0x44>(lo, hi),
            _mm256_shuffle_ps::<0xEE>(lo, hi),
        )
    };
    let (u0, u1) = quads(t[0], t[2]);
    let (u2, u3) = quads(t[1], t[3]);
    let (u4, u5) = quads(t[4], t[6]);
    let (u6, u7) = quads(t[5], t[7]);
    let columns = [
        _mm256_permute2f128_ps::<0x20>(u0, u4),
        _mm256_permute2f128_ps::<0x20>(u1, u5),
        _mm256_permute2f128_ps::<0x20>(u2, u6),
        _mm256_permute2f128_ps::<0x20>(u3, u7),
        _mm256_permute2f128_ps::<0x31>(u0, u4),
        _mm256_permute2f128_ps::<0x31>(u1, u5),
        _mm256_permute2f128_ps::<0x31>(u2, u6),
        _mm256_permute2f128_ps::<0x31>(u3, u7),
    ];
    for (c, v) in columns.into_iter().enumerate() {
        _mm256_storeu_ps(dst.add(c * dst_step), v);
    }
}
