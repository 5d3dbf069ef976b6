//! The AVX-512 VNNI int8 GEMM tile: `vpdpbusd` multiplies four u8
//! activations by four i8 weights and adds them into an i32 lane with no
//! intermediate saturation (unlike `vpmaddubsw`), so results are exact.

use std::arch::x86_64::*;

use crate::exec::kernels::qgemm::{IsaWork, QTile};

/// Token for AVX-512F/BW with VNNI; only [`QTile::detect`] makes one.
#[derive(Clone, Copy, Debug)]
pub struct Avx512Vnni(());

const MR: usize = 8;
const NR: usize = 32;
const KG: usize = 4;

impl QTile for Avx512Vnni {
    const MR: usize = MR;
    const NR: usize = NR;
    const KG: usize = KG;
    const NAME: &'static str = "u8_qconv_gemm_8x32_avx512vnni";
    const DEPTHWISE_NAME: &'static str = "u8_qdepthwise_avx512vnni";
    const ELEMENTWISE_NAME: &'static str = "u8_qelementwise_avx512vnni";
    fn detect() -> Option<Self> {
        (is_x86_feature_detected!("avx512f")
            && is_x86_feature_detected!("avx512bw")
            && is_x86_feature_detected!("avx512dq")
            && is_x86_feature_detected!("avx512vnni"))
        .then_some(Avx512Vnni(()))
    }
    fn tile(self, groups: usize, a: &[i8], b: &[u8], acc: &mut [i32]) {
        assert!(a.len() >= groups * MR * KG && b.len() >= groups * NR * KG && acc.len() >= MR * NR);
        // SAFETY: the token proves the CPU has the features; the assert
        // bounds every read of `a` and `b` and every write of `acc`.
        unsafe { tile_8x32(groups, a.as_ptr(), b.as_ptr(), acc.as_mut_ptr()) }
    }
    #[inline(always)]
    fn vectorized<W: IsaWork>(self, work: W) -> W::Output {
        // SAFETY: the token proves the CPU has the features.
        unsafe { with_avx512(work) }
    }
}

/// Runs `work` with AVX-512 enabled: inlined here, its loops compile to
/// AVX-512 (the i64 multiplies of the requantization too).
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx512vnni")]
unsafe fn with_avx512<W: IsaWork>(work: W) -> W::Output {
    work.run()
}

#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
unsafe fn tile_8x32(groups: usize, a: *const i8, b: *const u8, acc: *mut i32) {
    let mut c = [[_mm512_setzero_si512(); 2]; MR];
    for g in 0..groups {
        // SAFETY: group `g` < `groups` lies inside the checked lengths.
        let (x0, x1, w) = unsafe {
            let bg = b.add(g * NR * KG);
            (
                _mm512_loadu_si512(bg as *const __m512i),
                _mm512_loadu_si512(bg.add(64) as *const __m512i),
                a.add(g * MR * KG) as *const i32,
            )
        };
        for (r, row) in c.iter_mut().enumerate() {
            // SAFETY: row `r` < MR of group `g`'s MR·KG weights.
            let wr = _mm512_set1_epi32(unsafe { w.add(r).read_unaligned() });
            row[0] = _mm512_dpbusd_epi32(row[0], x0, wr);
            row[1] = _mm512_dpbusd_epi32(row[1], x1, wr);
        }
    }
    for (r, row) in c.iter().enumerate() {
        // SAFETY: `acc` holds MR·NR values (checked by the caller).
        unsafe {
            _mm512_storeu_si512(acc.add(r * NR) as *mut __m512i, row[0]);
            _mm512_storeu_si512(acc.add(r * NR + 16) as *mut __m512i, row[1]);
        }
    }
}
