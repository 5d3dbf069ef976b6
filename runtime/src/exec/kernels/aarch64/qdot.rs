//! The NEON dotprod int8 GEMM tile: `sdot` multiplies four i8 weights by
//! four i8 activations and adds them into an i32 lane, four times the
//! work of a widening `smlal`. `sdot` is signed only, so the tile reads
//! activations as `x − 128` ([`QTile::SIGNED_ACTIVATIONS`]). Stable Rust
//! has no dotprod intrinsics: the instruction is written with `asm!`.

use std::arch::aarch64::*;
use std::arch::asm;

use super::Neon;
use crate::exec::kernels::qgemm::QTile;

/// Token for NEON with the dot-product extension (ARMv8.2 dotprod);
/// only [`QTile::detect`] makes one.
#[derive(Clone, Copy, Debug)]
pub struct NeonDot(());

const MR: usize = 8;
const NR: usize = 8;
const KG: usize = 4;

impl QTile for NeonDot {
    const MR: usize = MR;
    const NR: usize = NR;
    const KG: usize = KG;
    const SIGNED_ACTIVATIONS: bool = true;
    const NAME: &'static str = "u8_qconv_gemm_8x8c4_dotprod_neon";
    const DEPTHWISE_NAME: &'static str = <Neon as QTile>::DEPTHWISE_NAME;
    const ELEMENTWISE_NAME: &'static str = <Neon as QTile>::ELEMENTWISE_NAME;
    fn detect() -> Option<Self> {
        (Neon::detect().is_some() && std::arch::is_aarch64_feature_detected!("dotprod"))
            .then_some(NeonDot(()))
    }
    fn tile(self, groups: usize, a: &[i8], b: &[u8], acc: &mut [i32]) {
        assert!(a.len() >= groups * MR * KG && b.len() >= groups * NR * KG && acc.len() >= MR * NR);
        // SAFETY: the token proves dotprod; the assert bounds every access.
        unsafe { tile_8x8(groups, a.as_ptr(), b.as_ptr(), acc.as_mut_ptr()) }
    }
}

/// `acc.4s += Σ_t b.16b[4j+t] · a.4b[LANE][t]` for each lane j.
macro_rules! sdot_lane {
    ($acc:expr, $b:expr, $a:expr, $lane:literal) => {
        // SAFETY: register-only arithmetic; the CPU has dotprod (token).
        unsafe {
            asm!(
                concat!("sdot {acc:v}.4s, {b:v}.16b, {a:v}.4b[", $lane, "]"),
                acc = inout(vreg) $acc,
                b = in(vreg) $b,
                a = in(vreg) $a,
                options(pure, nomem, nostack),
            )
        }
    };
}

#[target_feature(enable = "neon,dotprod")]
unsafe fn tile_8x8(groups: usize, a: *const i8, b: *const u8, acc: *mut i32) {
    // c[r][h]: row r, pixels 4h..4h+4.
    let mut c = [[vdupq_n_s32(0); 2]; MR];
    for g in 0..groups {
        // SAFETY: group `g` < `groups`: 32 weights and 32 activations in bounds.
        let (b0, b1, a0, a1) = unsafe {
            let bg = b.add(g * NR * KG) as *const i8;
            let ag = a.add(g * MR * KG);
            (
                vld1q_s8(bg),
                vld1q_s8(bg.add(16)),
                vld1q_s8(ag),
                vld1q_s8(ag.add(16)),
            )
        };
        macro_rules! rows {
            ($weights:ident, $($r:literal => $lane:literal),*) => {$(
                sdot_lane!(c[$r][0], b0, $weights, $lane);
                sdot_lane!(c[$r][1], b1, $weights, $lane);
            )*};
        }
        rows!(a0, 0 => "0", 1 => "1", 2 => "2", 3 => "3");
        rows!(a1, 4 => "0", 5 => "1", 6 => "2", 7 => "3");
    }
    for (r, row) in c.iter().enumerate() {
        // SAFETY: `acc` holds MR·NR values (checked by the caller).
        unsafe {
            vst1q_s32(acc.add(r * NR), row[0]);
            vst1q_s32(acc.add(r * NR + 4), row[1]);
        }
    }
}
