//! The baseline NEON int8 GEMM tile: activations widened to i16
//! (`ushll`), weights to i16 (`sshll`), and `smlal`/`smlal2` by weight lane
//! into i32, exact for any u8 × i8 product.

use std::arch::aarch64::*;

use super::Neon;
use crate::exec::kernels::qgemm::QTile;

const MR: usize = 8;
const NR: usize = 8;
const KG: usize = 1;

impl QTile for Neon {
    const MR: usize = MR;
    const NR: usize = NR;
    const KG: usize = KG;
    const NAME: &'static str = "u8_qconv_gemm_8x8_neon";
    const DEPTHWISE_NAME: &'static str = "u8_qdepthwise_neon";
    const ELEMENTWISE_NAME: &'static str = "u8_qelementwise_neon";
    fn detect() -> Option<Self> {
        Neon::detect()
    }
    fn tile(self, groups: usize, a: &[i8], b: &[u8], acc: &mut [i32]) {
        assert!(a.len() >= groups * MR * KG && b.len() >= groups * NR * KG && acc.len() >= MR * NR);
        // SAFETY: the token proves NEON; the assert bounds every access.
        unsafe { tile_8x8(groups, a.as_ptr(), b.as_ptr(), acc.as_mut_ptr()) }
    }
}

#[target_feature(enable = "neon")]
unsafe fn tile_8x8(groups: usize, a: *const i8, b: *const u8, acc: *mut i32) {
    let mut c = [[vdupq_n_s32(0); 2]; MR];
    for g in 0..groups {
        // SAFETY: group `g` < `groups`: 8 weights and 8 activations in bounds.
        let (x, w) = unsafe {
            (
                vreinterpretq_s16_u16(vmovl_u8(vld1_u8(b.add(g * NR)))),
                vmovl_s8(vld1_s8(a.add(g * MR))),
            )
        };
        let xl = vget_low_s16(x);
        macro_rules! row {
            ($($r:literal),*) => {$(
                c[$r][0] = vmlal_laneq_s16::<$r>(c[$r][0], xl, w);
                c[$r][1] = vmlal_high_laneq_s16::<$r>(c[$r][1], x, w);
            )*};
        }
        row!(0, 1, 2, 3, 4, 5, 6, 7);
    }
    for (r, row) in c.iter().enumerate() {
        // SAFETY: `acc` holds MR·NR values (checked by the caller).
        unsafe {
            vst1q_s32(acc.add(r * NR), row[0]);
            vst1q_s32(acc.add(r * NR + 4), row[1]);
        }
    }
}
