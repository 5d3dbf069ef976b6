//! The AVX2 int8 GEMM tile, for x86 without VNNI: u8 activations and i8
//! weights are widened to i16 and multiplied pairwise by `vpmaddwd` into i32
//! lanes. `vpmaddubsw` would be twice as fast but saturates its i16 pair
//! sums (255·127·2 > 32767); `vpmaddwd` is exact for every u8 × i8 pair, so
//! the tile matches the scalar loop bit for bit.

use std::arch::x86_64::*;

use super::Avx2;
use crate::exec::kernels::contract::Requantize;
use crate::exec::kernels::qgemm::{requantize_u8, IsaWork, QTile};

const MR: usize = 4;
const NR: usize = 16;
const KG: usize = 2;

impl QTile for Avx2 {
    const MR: usize = MR;
    const NR: usize = NR;
    const KG: usize = KG;
    const WEIGHT_BYTES: usize = 2;
    const NAME: &'static str = "u8_qconv_gemm_4x16_avx2";
    const DEPTHWISE_NAME: &'static str = "u8_qdepthwise_avx2";
    const ELEMENTWISE_NAME: &'static str = "u8_qelementwise_avx2";
    fn detect() -> Option<Self> {
        Avx2::detect()
    }
    fn tile(self, groups: usize, a: &[i8], b: &[u8], acc: &mut [i32]) {
        assert!(
            a.len() >= groups * MR * KG * 2 && b.len() >= groups * NR * KG && acc.len() >= MR * NR
        );
        // SAFETY: the token proves the CPU has AVX2; the assert bounds every
        // read of `a` and `b` and every write of `acc`.
        unsafe { tile_4x16(groups, a.as_ptr(), b.as_ptr(), acc.as_mut_ptr()) }
    }
    #[inline(always)]
    fn requantize(self, acc: &[i32], bias: i32, rq: Requantize, out: &mut [u8]) {
        let n = acc.len().min(out.len());
        let vectors = n / 8 * 8;
        // A shift of 31 or more keeps |acc · real| within an i32 (real < 1),
        // so the low half of each 64-bit product lane holds the result.
        if rq.shift >= 31 && rq.min >= 0 && rq.max <= 255 {
            // SAFETY: the token proves AVX2; both slices hold `vectors` values.
            unsafe { requantize_8(&acc[..vectors], bias, rq, &mut out[..vectors]) };
        } else {
            requantize_u8(&acc[..vectors], bias, rq, &mut out[..vectors]);
        }
        requantize_u8(&acc[vectors..n], bias, rq, &mut out[vectors..n]);
    }
    #[inline(always)]
    fn vectorized<W: IsaWork>(self, work: W) -> W::Output {
        // SAFETY: the token proves the CPU has AVX2 and FMA.
        unsafe { with_avx2(work) }
    }
}

/// [`Requantize::apply`] on 8 lanes at a time: 32×32→64-bit products of
/// the even and odd lanes (`vpmuldq`) and the rounding term added; then the
/// arithmetic right shift. With a shift of 32 or more (every scale below
/// ½) that is the high half of each product, shifted right as 32-bit lanes
/// (`vpsrad`); at 31, a 64-bit shift built from a logical one and the sign
/// (AVX2 has no `vpsraq`). Then the zero point, the clamp and a pack to
/// u8. Exact: the same integers as the scalar form.
#[target_feature(enable = "avx2")]
unsafe fn requantize_8(acc: &[i32], bias: i32, rq: Requantize, out: &mut [u8]) {
    let zero = _mm256_setzero_si256();
    let bias = _mm256_set1_epi32(bias);
    let multiplier = _mm256_set1_epi32(rq.multiplier);
    let round = _mm256_set1_epi64x(1i64 << (rq.shift - 1));
    let shift = _mm_cvtsi32_si128(rq.shift as i32);
    let fill = _mm_cvtsi32_si128(64 - rq.shift as i32);
    // Clamped before the zero point is added, so the sum cannot wrap.
    let zero_point = _mm256_set1_epi32(rq.zero_point);
    let min = _mm256_set1_epi32(rq.min.saturating_sub(rq.zero_point));
    let max = _mm256_set1_epi32(rq.max.saturating_sub(rq.zero_point));
    let sra = |v: __m256i| {
        let negative = _mm256_cmpgt_epi64(zero, v);
        _mm256_or_si256(_mm256_srl_epi64(v, shift), _mm256_sll_epi64(negative, fill))
    };
    // (t >> 32) >> (s - 32) = t >> s, and |t| < 2^63 puts t >> 32 in an i32.
    let high_shift = rq.shift >= 32;
    let rest = _mm_cvtsi32_si128(rq.shift as i32 - 32);
    for (a, o) in acc.chunks_exact(8).zip(out.chunks_exact_mut(8)) {
        // SAFETY: `a` holds 8 i32 and `o` 8 bytes.
        let x = unsafe { _mm256_loadu_si256(a.as_ptr() as *const __m256i) };
        let x = _mm256_add_epi32(x, bias);
        let even = _mm256_add_epi64(_mm256_mul_epi32(x, multiplier), round);
        let odd = _mm256_mul_epi32(_mm256_srli_epi64::<32>(x), multiplier);
        let odd = _mm256_add_epi64(odd, round);
        let y = if high_shift {
            let high = _mm256_blend_epi32::<0b1010_1010>(_mm256_srli_epi64::<32>(even), odd);
            _mm256_sra_epi32(high, rest)
        } else {
            _mm256_blend_epi32::<0b1010_1010>(sra(even), _mm256_slli_epi64::<32>(sra(odd)))
        };
        let y = _mm256_add_epi32(_mm256_min_epi32(_mm256_max_epi32(y, min), max), zero_point);
        let words = _mm_packs_epi32(_mm256_castsi256_si128(y), _mm256_extracti128_si256::<1>(y));
        // SAFETY: `o` holds 8 bytes.
        unsafe {
            _mm_storel_epi64(
                o.as_mut_ptr() as *mut __m128i,
                _mm_packus_epi16(words, words),
            )
        };
    }
}

/// Runs `work` with AVX2 enabled: inlined here, the gathers, depthwise rows
/// and requantization around the tile compile to AVX2.
#[target_feature(enable = "avx2,fma")]
unsafe fn with_avx2<W: IsaWork>(work: W) -> W::Output {
    work.run()
}

/// Per k-pair `g`: 16 pixels' two activations (32 bytes) widen to two
/// vectors of i16 pairs, and each row's pair of weights, stored widened to
/// i16 at packing, is one broadcast load.
#[target_feature(enable = "avx2")]
unsafe fn tile_4x16(groups: usize, a: *const i8, b: *const u8, acc: *mut i32) {
    let mut lo = [_mm256_setzero_si256(); MR];
    let mut hi = [_mm256_setzero_si256(); MR];
    for g in 0..groups {
        // SAFETY: group `g` < `groups`: NR·KG activations and MR·KG i16
        // weights inside the lengths the caller checked.
        let (x0, x1, w) = unsafe {
            let bg = b.add(g * NR * KG);
            (
                _mm256_cvtepu8_epi16(_mm_loadu_si128(bg as *const __m128i)),
                _mm256_cvtepu8_epi16(_mm_loadu_si128(bg.add(16) as *const __m128i)),
                a.add(g * MR * KG * 2) as *const i32,
            )
        };
        for r in 0..MR {
            // SAFETY: row `r` < MR of group `g`'s MR weight pairs.
            let wr = _mm256_set1_epi32(unsafe { w.add(r).read_unaligned() });
            lo[r] = _mm256_add_epi32(lo[r], _mm256_madd_epi16(x0, wr));
            hi[r] = _mm256_add_epi32(hi[r], _mm256_madd_epi16(x1, wr));
        }
    }
    for r in 0..MR {
        // SAFETY: `acc` holds MR·NR values (checked by the caller).
        unsafe {
            _mm256_storeu_si256(acc.add(r * NR) as *mut __m256i, lo[r]);
            _mm256_storeu_si256(acc.add(r * NR + 8) as *mut __m256i, hi[r]);
        }
    }
}
