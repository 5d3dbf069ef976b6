//! NEON: an 8×8 microkernel (16 q-register accumulators; A and B rows in
//! four more, multiplied by lane with `fmla`).

use std::arch::aarch64::*;

use crate::exec::kernels::contract::RegisterActivation;
use crate::exec::kernels::depthwise::{BlockClamp, LANES, ROWS};
use crate::exec::kernels::gemm::TileClamp;
use crate::exec::kernels::simd::impl_simd;

/// Proof that the CPU has NEON (Advanced SIMD with fused multiply-add).
#[derive(Clone, Copy, Debug)]
pub struct Neon(());

impl Neon {
    pub fn detect() -> Option<Neon> {
        std::arch::is_aarch64_feature_detected!("neon").then_some(Neon(()))
    }
}

impl_simd!(
    Neon,
    "neon",
    "8x8",
    "neon",
    tile_8x8,
    MR,
    NR,
    dw_window_8x16,
    transpose_8x8
);

const MR: usize = 8;
const NR: usize = 8;

/// # Safety
/// The CPU has NEON; `a` holds `k*8` values, `b_row(p)` points at 8
/// readable values for every `p < k`, `cols <= 8`, and `c` is valid for
/// `7*ldc + cols` values.
#[target_feature(enable = "neon")]
#[allow(clippy::too_many_arguments)]
unsafe fn tile_8x8<R: Fn(usize) -> *const f32>(
    k: usize,
    a: *const f32,
    b_row: R,
    c: *mut f32,
    ldc: usize,
    cols: usize,
    acc: bool,
    clamp: Option<&TileClamp>,
) {
    let mut lo = [vdupq_n_f32(0.0); MR];
    let mut hi = [vdupq_n_f32(0.0); MR];
    for p in 0..k {
        let b0 = vld1q_f32(b_row(p));
        let b1 = vld1q_f32(b_row(p).add(4));
        let a0 = vld1q_f32(a.add(p * MR));
        let a1 = vld1q_f32(a.add(p * MR + 4));
        lo[0] = vfmaq_laneq_f32::<0>(lo[0], b0, a0);
        hi[0] = vfmaq_laneq_f32::<0>(hi[0], b1, a0);
        lo[1] = vfmaq_laneq_f32::<1>(lo[1], b0, a0);
        hi[1] = vfmaq_laneq_f32::<1>(hi[1], b1, a0);
        lo[2] = vfmaq_laneq_f32::<2>(lo[2], b0, a0);
        hi[2] = vfmaq_laneq_f32::<2>(hi[2], b1, a0);
        lo[3] = vfmaq_laneq_f32::<3>(lo[3], b0, a0);
        hi[3] = vfmaq_laneq_f32::<3>(hi[3], b1, a0);
        lo[4] = vfmaq_laneq_f32::<0>(lo[4], b0, a1);
        hi[4] = vfmaq_laneq_f32::<0>(hi[4], b1, a1);
        lo[5] = vfmaq_laneq_f32::<1>(lo[5], b0, a1);
        hi[5] = vfmaq_laneq_f32::<1>(hi[5], b1, a1);
        lo[6] = vfmaq_laneq_f32::<2>(lo[6], b0, a1);
        hi[6] = vfmaq_laneq_f32::<2>(hi[6], b1, a1);
        lo[7] = vfmaq_laneq_f32::<3>(lo[7], b0, a1);
        hi[7] = vfmaq_laneq_f32::<3>(hi[7], b1, a1);
    }
    // Each row finished by a call with a constant index, so the
    // accumulators stay in registers (as on AVX2, where a loop over `i`
    // spilled them all).
    let finish = |i: usize, mut lo: float32x4_t, mut hi: float32x4_t| {
        let c_row = c.add(i * ldc);
        // A row of fewer than NR columns goes through a stack row.
        let mut part = [0f32; NR];
        let row = if cols == NR { c_row } else { part.as_mut_ptr() };
        if acc {
            if cols < NR {
                std::ptr::copy_nonoverlapping(c_row, row, cols);
            }
            lo = vaddq_f32(lo, vld1q_f32(row));
            hi = vaddq_f32(hi, vld1q_f32(row.add(4)));
        }
        if let Some(t) = clamp {
            let bias = vdupq_n_f32(t.bias[i]);
            lo = activate(vaddq_f32(lo, bias), &t.act);
            hi = activate(vaddq_f32(hi, bias), &t.act);
        }
        vst1q_f32(row, lo);
        vst1q_f32(row.add(4), hi);
        if cols < NR {
            std::ptr::copy_nonoverlapping(row, c_row, cols);
        }
    };
    finish(0, lo[0], hi[0]);
    finish(1, lo[1], hi[1]);
    finish(2, lo[2], hi[2]);
    finish(3, lo[3], hi[3]);
    finish(4, lo[4], hi[4]);
    finish(5, lo[5], hi[5]);
    finish(6, lo[6], hi[6]);
    finish(7, lo[7], hi[7]);
}

/// Depthwise taps of 8 rows × 16 lanes, as two passes of 4 rows × 4 q
/// registers: sixteen independent FMA chains (or maxima, with `MAX`); then
/// `clamp`. Tap `t` weighs every lane by `w[t]`, or lane `l` by
/// `w[16t + l]` with `LANE_WEIGHTS` (lanes are channels).
///
/// # Safety
/// The CPU has NEON; `w` holds `offsets.len()` values (16 times that with
/// `LANE_WEIGHTS`) and `pad.add(offsets[t] + r*row_step)` points at 16
/// readable values for every tap `t` and row `r < 8`; `out.add(r *
/// out_step)` is valid for `cols <= 16` writes for every row `r < rows <= 8`.
#[target_feature(enable = "neon")]
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
    let bias = [0, 4, 8, 12].map(|l| vld1q_f32(clamp.bias.as_ptr().add(l)));
    for half in 0..2 {
        let mut acc = [[vdupq_n_f32(if MAX { f32::NEG_INFINITY } else { 0.0 }); 4]; 4];
        let first = pad.add(half * 4 * row_step);
        for (t, &off) in offsets.iter().enumerate() {
            let wv = match (MAX, LANE_WEIGHTS) {
                (true, _) => [vdupq_n_f32(0.0); 4],
                (false, true) => [0, 4, 8, 12].map(|l| vld1q_f32(w.add(t * LANES + l))),
                (false, false) => [vdupq_n_f32(*w.add(t)); 4],
            };
            let src = first.add(off);
            for (r, a) in acc.iter_mut().enumerate() {
                let row = src.add(r * row_step);
                for (q, v) in a.iter_mut().enumerate() {
                    let x = vld1q_f32(row.add(4 * q));
                    *v = if MAX {
                        vmaxq_f32(x, *v)
                    } else {
                        vfmaq_f32(*v, wv[q], x)
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
            for (q, v) in a.into_iter().enumerate() {
                let v = activate(vaddq_f32(v, bias[q]), &clamp.act);
                vst1q_f32(row.add(4 * q), v);
            }
            if cols < LANES {
                std::ptr::copy_nonoverlapping(part.as_ptr(), dst, cols);
            }
        }
    }
}

/// [`RegisterActivation::apply`] on 4 lanes.
#[inline]
#[target_feature(enable = "neon")]
fn activate(v: float32x4_t, act: &RegisterActivation) -> float32x4_t {
    let v = vminq_f32(vmaxq_f32(v, vdupq_n_f32(act.min)), vdupq_n_f32(act.max));
    if !act.hard_swish {
        return v;
    }
    let gate = vfmaq_f32(vdupq_n_f32(0.5), v, vdupq_n_f32(1.0 / 6.0));
    let gate = vminq_f32(vmaxq_f32(gate, vdupq_n_f32(0.0)), vdupq_n_f32(1.0));
    vmulq_f32(v, gate)
}

/// An 8×8 transpose as four 4×4 ones in registers: `dst[c*dst_step + r] =
/// src[r*src_step + c]`.
///
/// # Safety
/// The CPU has NEON; `src.add(r * src_step)` and `dst.add(r * dst_step)`
/// are valid for 8 values each for every `r < 8`.
#[target_feature(enable = "neon")]
unsafe fn transpose_8x8(src: *const f32, src_step: usize, dst: *mut f32, dst_step: usize) {
    let pairs = |x: float32x4_t, y: float32x4_t, high: bool| {
        let (x, y) = (vreinterpretq_f64_f32(x), vreinterpretq_f64_f32(y));
        vreinterpretq_f32_f64(if high {
            vtrn2q_f64(x, y)
        } else {
            vtrn1q_f64(x, y)
        })
    };
    for (bi, bj) in [(0, 0), (0, 1), (1, 0), (1, 1)] {
        let s = src.add(bi * 4 * src_step + bj * 4);
        let r: [float32x4_t; 4] = std::array::from_fn(|i| vld1q_f32(s.add(i * src_step)));
        // t0 = a0 b0 a2 b2, t1 = a1 b1 a3 b3, t2 = c0 d0 c2 d2, t3 = c1 d1 c3 d3.
        let (t0, t1) = (vtrn1q_f32(r[0], r[1]), vtrn2q_f32(r[0], r[1]));
        let (t2, t3) = (vtrn1q_f32(r[2], r[3]), vtrn2q_f32(r[2], r[3]));
        let d = dst.add(bj * 4 * dst_step + bi * 4);
        vst1q_f32(d, pairs(t0, t2, false));
        vst1q_f32(d.add(dst_step), pairs(t1, t3, false));
        vst1q_f32(d.add(2 * dst_step), pairs(t0, t2, true));
        vst1q_f32(d.add(3 * dst_step), pairs(t1, t3, true));
    }
}
