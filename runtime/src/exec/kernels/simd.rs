//! What an ISA provides beyond its GEMM microkernel: the ISA-neutral loops
//! (depthwise planes, elementwise, epilogues) compiled for it. Each ISA
//! module stamps these with [`impl_simd!`], so the loops are written once
//! and vectorized per ISA by the compiler under `#[target_feature]`.

use super::contract::{Epilogue, ReadOffsets};
use super::depthwise::{BlockClamp, DwOut, DwShape, PlaneIo, Window};
use super::gemm::MicroKernel;
use super::winograd::TileGrid;
use super::Isa;
use crate::ir::{BinaryOp, PoolKind, UnaryOp};

/// Kernel names of one ISA, `dtype_op_tile_isa` as in XNNPACK.
#[derive(Debug)]
pub struct KernelNames {
    pub conv_gemm: &'static str,
    pub conv_winograd: &'static str,
    pub conv_grouped: &'static str,
    pub conv_transpose: &'static str,
    pub depthwise: &'static str,
    pub depthwise_blocked: &'static str,
    pub max_pool: &'static str,
    pub avg_pool: &'static str,
    pub dense: &'static str,
    pub binary: &'static str,
    pub unary: &'static str,
    pub channel_affine: &'static str,
    pub resize: &'static str,
    pub global_pool: &'static str,
    pub recurrent: &'static str,
}

/// An ISA token: a [`MicroKernel`] plus the shared loops compiled for it.
pub trait Simd: MicroKernel {
    const ISA: Isa;
    /// The token, if this CPU has the ISA.
    fn detect() -> Option<Self>;
    fn names() -> &'static KernelNames;
    fn depthwise_plane(self, s: &DwShape, ch: usize, io: PlaneIo, e: &Epilogue);
    /// The `ROWS × LANES` windows of a block of outputs over the taps at
    /// `pad[at + offsets[t] + r*row_step + l]`, in registers: weighted sums
    /// `Σ_t w[t] · pad[…]` (`w[t*LANES + l]` with `lane_weights`, where
    /// lanes are channels), or maxima (`w` unread); then `clamp`, stored
    /// to the rows and columns of `out`.
    #[allow(clippy::too_many_arguments)]
    fn dw_window(
        self,
        window: Window,
        lane_weights: bool,
        pad: &[f32],
        at: usize,
        row_step: usize,
        taps: &ReadOffsets,
        w: &[f32],
        clamp: &BlockClamp,
        out: DwOut,
    );
    /// Transposes the 8×8 block at `src` (rows `src_step` apart) into `dst`
    /// (rows `dst_step` apart): `dst[c*dst_step + r] = src[r*src_step + c]`.
    /// It moves channel planes into and out of the channel-blocked
    /// depthwise layout, 8 pixels × 8 channels at a time.
    fn transpose8(self, src: &[f32], src_step: usize, dst: &mut [f32], dst_step: usize);
    fn binary(
        self,
        op: BinaryOp,
        a: (&[f32], &[usize]),
        b: (&[f32], &[usize]),
        shape: &[usize],
        y: &mut [f32],
    );
    fn unary(self, op: UnaryOp, x: &[f32], y: &mut [f32]);
    /// Global max or average pooling of `planes` planes of `x` into `y`.
    fn global_pool(self, kind: PoolKind, planes: usize, x: &[f32], y: &mut [f32]);
    /// [`super::winograd::input_tiles`] compiled for the ISA.
    fn winograd_input(
        self,
        grid: &TileGrid,
        x: &[f32],
        rows: &mut [f32],
        v: &mut [&mut [f32]],
        at: usize,
    );
    /// [`super::winograd::output_tiles`] compiled for the ISA.
    fn winograd_output(
        self,
        grid: &TileGrid,
        m: &[f32],
        stride: usize,
        rows: &mut [f32],
        y: &mut [f32],
    );
    /// [`super::recurrent::gemv_columns`] compiled for the ISA.
    fn gemv_columns(self, a: &[f32], x: &[f32], y: &mut [f32]);
    /// [`super::frame::accumulate_row`] compiled for the ISA.
    fn frame_accumulate(self, acc: &mut [f32], row: &[u8], weight: f32);
    /// [`super::frame::gather_channel`] compiled for the ISA.
    fn frame_gather(self, interleaved: &[f32], stride: usize, offset: usize, out: &mut [f32]);
    /// [`super::frame::color_row`] compiled for the ISA.
    fn frame_color_row(self, src: [&[f32]; 3], k: &super::frame::ColorRow, out: [&mut [f32]; 3]);
    /// [`super::frame::weighted_sums`] compiled for the ISA.
    fn frame_weighted_sums(
        self,
        acc: &[f32],
        starts: &[usize],
        weights: &[f32],
        width: usize,
        out: &mut [f32],
    );
}

/// Implements [`MicroKernel`] and [`Simd`] for token `$isa` around its
/// `$tile_fn` (an `unsafe fn(k, a, b_row, c, ldc, cols, accumulate, clamp)`
/// with `$mr × $nr` tiles) and its `$dw_fn` (an `unsafe fn(pad, row_step,
/// offsets, w, clamp, out, out_step, cols, rows)`, generic over `const MAX:
/// bool, const LANE_WEIGHTS: bool`, for [`Simd::dw_window`]) and its
/// `$transpose_fn` (an `unsafe fn(src, src_step, dst, dst_step)` for
/// [`Simd::transpose8`]): the safe
/// wrappers check every
/// bound, and each shared
/// loop is wrapped in a `#[target_feature(enable = $features)]` function,
/// reachable only through the token.
macro_rules! impl_simd {
    ($isa:ident, $features:literal, $tile:literal, $suffix:literal, $tile_fn:ident, $mr:ident, $nr:ident, $dw_fn:ident, $transpose_fn:path) => {
        impl $isa {
            /// Runs the tile over B rows at `rows(p)`, each of NR readable
            /// values when the caller found `b_fits`.
            #[allow(clippy::too_many_arguments)]
            #[inline(always)]
            fn run_tile(
                self,
                k: usize,
                a: &[f32],
                b_fits: bool,
                rows: impl Fn(usize) -> *const f32,
                c: &mut [f32],
                ldc: usize,
                cols: usize,
                accumulate: bool,
                clamp: Option<&$crate::exec::kernels::gemm::TileClamp>,
            ) {
                assert!(
                    b_fits
                        && a.len() >= k * $mr
                        && cols <= $nr
                        && c.len() >= ($mr - 1) * ldc + cols
                );
                // SAFETY: the token proves the ISA; the assert bounds every
                // access (`b_fits` the B rows, the rest here).
                unsafe {
                    let (a, c) = (a.as_ptr(), c.as_mut_ptr());
                    $tile_fn(k, a, rows, c, ldc, cols, accumulate, clamp)
                }
            }
        }

        impl $crate::exec::kernels::gemm::MicroKernel for $isa {
            const MR: usize = $mr;
            const NR: usize = $nr;
            #[allow(clippy::too_many_arguments)]
            fn tile(
                self,
                k: usize,
                a: &[f32],
                b: &[f32],
                c: &mut [f32],
                ldc: usize,
                cols: usize,
                accumulate: bool,
                clamp: Option<&$crate::exec::kernels::gemm::TileClamp>,
            ) {
                // B rows are consecutive panels of `b`.
                let b_fits = b.len() >= k * $nr;
                let rows = |p: usize| b.as_ptr().wrapping_add(p * $nr);
                self.run_tile(k, a, b_fits, rows, c, ldc, cols, accumulate, clamp)
            }
            #[allow(clippy::too_many_arguments)]
            fn tile_gather(
                self,
                k: usize,
                a: &[f32],
                b: &[f32],
                rows: &$crate::exec::kernels::contract::ReadOffsets,
                c: &mut [f32],
                ldc: usize,
                cols: usize,
                accumulate: bool,
                clamp: Option<&$crate::exec::kernels::gemm::TileClamp>,
            ) {
                // Each B row lies within `b`.
                let offsets = &rows.offsets()[..k];
                let b_fits = b.len() >= rows.furthest() + $nr;
                let rows = |p: usize| b.as_ptr().wrapping_add(offsets[p]);
                self.run_tile(k, a, b_fits, rows, c, ldc, cols, accumulate, clamp)
            }
            fn epilogue(
                self,
                e: &$crate::exec::kernels::contract::Epilogue,
                row: usize,
                y: &mut [f32],
                res: Option<&[f32]>,
            ) {
                // SAFETY: the token proves the CPU has these features; the
                // wrapped loop is safe Rust.
                unsafe { shared_loops::epilogue(e, row, y, res) }
            }
            fn gemv_rows(
                self,
                a: &$crate::exec::kernels::gemm::PackedA,
                row0: usize,
                x: &[f32],
                y: &mut [f32],
                e: &$crate::exec::kernels::contract::Epilogue,
            ) {
                // SAFETY: as above.
                unsafe { shared_loops::gemv_rows(a, row0, x, y, e) }
            }
            fn untranspose(self, ct: &[f32], nr: usize, c: &mut [f32], n: usize, col0: usize) {
                // SAFETY: as above.
                unsafe { shared_loops::untranspose(ct, nr, c, n, col0) }
            }
        }

        mod shared_loops {
            use $crate::exec::kernels::contract::Epilogue;
            use $crate::exec::kernels::depthwise::{self, DwShape, PlaneIo};
            use $crate::exec::kernels::scalar::elementwise;
            use $crate::ir::{BinaryOp, UnaryOp};

            #[target_feature(enable = $features)]
            pub unsafe fn epilogue(e: &Epilogue, row: usize, y: &mut [f32], res: Option<&[f32]>) {
                e.apply_row(row, y, res)
            }

            #[target_feature(enable = $features)]
            pub unsafe fn gemv_rows(
                a: &$crate::exec::kernels::gemm::PackedA,
                row0: usize,
                x: &[f32],
                y: &mut [f32],
                e: &Epilogue,
            ) {
                $crate::exec::kernels::gemm::gemv_rows::<super::$isa>(a, row0, x, y, e)
            }

            #[target_feature(enable = $features)]
            pub unsafe fn untranspose(ct: &[f32], nr: usize, c: &mut [f32], n: usize, col0: usize) {
                $crate::exec::kernels::gemm::untranspose(ct, nr, c, n, col0)
            }

            #[target_feature(enable = $features)]
            pub unsafe fn depthwise_plane(
                simd: super::$isa,
                s: &DwShape,
                ch: usize,
                io: PlaneIo,
                e: &Epilogue,
            ) {
                depthwise::plane(simd, s, ch, io, e)
            }

            #[target_feature(enable = $features)]
            pub unsafe fn binary(
                op: BinaryOp,
                a: (&[f32], &[usize]),
                b: (&[f32], &[usize]),
                shape: &[usize],
                y: &mut [f32],
            ) {
                elementwise::binary_f32(op, a, b, shape, y)
            }

            #[target_feature(enable = $features)]
            pub unsafe fn unary(op: UnaryOp, x: &[f32], y: &mut [f32]) {
                elementwise::unary(op, x, y)
            }

            #[target_feature(enable = $features)]
            pub unsafe fn global_pool(
                kind: $crate::ir::PoolKind,
                planes: usize,
                x: &[f32],
                y: &mut [f32],
            ) {
                $crate::exec::kernels::scalar::pool::global_pool_lanes(kind, planes, x, y)
            }

            #[target_feature(enable = $features)]
            pub unsafe fn winograd_input(
                grid: &$crate::exec::kernels::winograd::TileGrid,
                x: &[f32],
                rows: &mut [f32],
                v: &mut [&mut [f32]],
                at: usize,
            ) {
                $crate::exec::kernels::winograd::input_tiles(grid, x, rows, v, at)
            }

            #[target_feature(enable = $features)]
            pub unsafe fn winograd_output(
                grid: &$crate::exec::kernels::winograd::TileGrid,
                m: &[f32],
                stride: usize,
                rows: &mut [f32],
                y: &mut [f32],
            ) {
                $crate::exec::kernels::winograd::output_tiles(grid, m, stride, rows, y)
            }

            #[target_feature(enable = $features)]
            pub unsafe fn gemv_columns(a: &[f32], x: &[f32], y: &mut [f32]) {
                $crate::exec::kernels::recurrent::gemv_columns(a, x, y)
            }

            #[target_feature(enable = $features)]
            pub unsafe fn frame_accumulate(acc: &mut [f32], row: &[u8], weight: f32) {
                $crate::exec::kernels::frame::accumulate_row(acc, row, weight)
            }

            #[target_feature(enable = $features)]
            pub unsafe fn frame_gather(
                interleaved: &[f32],
                stride: usize,
                offset: usize,
                out: &mut [f32],
            ) {
                $crate::exec::kernels::frame::gather_channel(interleaved, stride, offset, out)
            }

            #[target_feature(enable = $features)]
            pub unsafe fn frame_color_row(
                src: [&[f32]; 3],
                k: &$crate::exec::kernels::frame::ColorRow,
                out: [&mut [f32]; 3],
            ) {
                $crate::exec::kernels::frame::color_row(src, k, out)
            }

            #[target_feature(enable = $features)]
            pub unsafe fn frame_weighted_sums(
                acc: &[f32],
                starts: &[usize],
                weights: &[f32],
                width: usize,
                out: &mut [f32],
            ) {
                $crate::exec::kernels::frame::weighted_sums(acc, starts, weights, width, out)
            }
        }

        static NAMES: $crate::exec::kernels::simd::KernelNames =
            $crate::exec::kernels::simd::KernelNames {
                conv_gemm: concat!("f32_conv_gemm_", $tile, "_", $suffix),
                conv_winograd: concat!("f32_conv_winograd_f2x3_", $tile, "_", $suffix),
                conv_grouped: concat!("f32_conv_grouped_gemm_", $tile, "_", $suffix),
                conv_transpose: concat!("f32_deconv_gemm_", $tile, "_", $suffix),
                depthwise: concat!("f32_dwconv_", $suffix),
                depthwise_blocked: concat!("f32_dwconv_c16_", $suffix),
                max_pool: concat!("f32_maxpool_", $suffix),
                avg_pool: concat!("f32_avgpool_", $suffix),
                dense: concat!("f32_dense_gemm_", $tile, "_", $suffix),
                binary: concat!("f32_binary_", $suffix),
                unary: concat!("f32_unary_", $suffix),
                channel_affine: concat!("f32_channel_affine_", $suffix),
                resize: concat!("f32_resize2d_", $suffix),
                global_pool: concat!("f32_global_pool_", $suffix),
                recurrent: concat!("f32_recurrent_gemm_", $tile, "_", $suffix),
            };

        impl $crate::exec::kernels::simd::Simd for $isa {
            const ISA: $crate::exec::kernels::Isa = $crate::exec::kernels::Isa::$isa;
            fn detect() -> Option<Self> {
                $isa::detect()
            }
            fn names() -> &'static $crate::exec::kernels::simd::KernelNames {
                &NAMES
            }
            fn depthwise_plane(
                self,
                s: &$crate::exec::kernels::depthwise::DwShape,
                ch: usize,
                io: $crate::exec::kernels::depthwise::PlaneIo,
                e: &$crate::exec::kernels::contract::Epilogue,
            ) {
                // SAFETY: the token proves the CPU has these features; the
                // wrapped loop is safe Rust.
                unsafe { shared_loops::depthwise_plane(self, s, ch, io, e) }
            }
            #[allow(clippy::too_many_arguments)]
            fn dw_window(
                self,
                window: $crate::exec::kernels::depthwise::Window,
                lane_weights: bool,
                pad: &[f32],
                at: usize,
                row_step: usize,
                taps: &$crate::exec::kernels::contract::ReadOffsets,
                w: &[f32],
                clamp: &$crate::exec::kernels::depthwise::BlockClamp,
                out: $crate::exec::kernels::depthwise::DwOut,
            ) {
                use $crate::exec::kernels::depthwise::{Window, LANES, ROWS};
                let offsets = taps.offsets();
                let weights = offsets.len() * if lane_weights { LANES } else { 1 };
                let (rows, cols) = (out.rows, out.cols);
                // Every extent computed without wrapping.
                let read_end = row_step
                    .checked_mul(ROWS - 1)
                    .and_then(|v| v.checked_add(taps.furthest()))
                    .and_then(|v| v.checked_add(LANES))
                    .and_then(|v| v.checked_add(at));
                let write_end = out
                    .step
                    .checked_mul(rows.saturating_sub(1))
                    .and_then(|v| v.checked_add(cols));
                assert!(
                    w.len() >= weights
                        && read_end.is_some_and(|end| end <= pad.len())
                        && (1..=ROWS).contains(&rows)
                        && (1..=LANES).contains(&cols)
                        && write_end.is_some_and(|end| end <= out.y.len())
                );
                // SAFETY: the token proves the ISA; the assert bounds every
                // read (`ROWS` rows of `LANES` at each tap offset, and
                // every weight) and every write (`rows` rows of `cols`).
                unsafe {
                    let (pad, w) = (pad.as_ptr().wrapping_add(at), w.as_ptr());
                    let (y, step) = (out.y.as_mut_ptr(), out.step);
                    match (window, lane_weights) {
                        (Window::WeightedSum, false) => $dw_fn::<false, false>(
                            pad, row_step, offsets, w, clamp, y, step, cols, rows,
                        ),
                        (Window::WeightedSum, true) => $dw_fn::<false, true>(
                            pad, row_step, offsets, w, clamp, y, step, cols, rows,
                        ),
                        (Window::Max, _) => $dw_fn::<true, false>(
                            pad, row_step, offsets, w, clamp, y, step, cols, rows,
                        ),
                    }
                }
            }
            fn transpose8(self, src: &[f32], src_step: usize, dst: &mut [f32], dst_step: usize) {
                // 8 rows of 8 from each, computed without wrapping.
                let fits = |len: usize, step: usize| {
                    step.checked_mul(7)
                        .and_then(|v| v.checked_add(8))
                        .is_some_and(|need| need <= len)
                };
                assert!(fits(src.len(), src_step) && fits(dst.len(), dst_step));
                // SAFETY: the token proves the ISA; the assert bounds the
                // 8 rows of 8 values read and written.
                unsafe { $transpose_fn(src.as_ptr(), src_step, dst.as_mut_ptr(), dst_step) }
            }
            fn binary(
                self,
                op: $crate::ir::BinaryOp,
                a: (&[f32], &[usize]),
                b: (&[f32], &[usize]),
                shape: &[usize],
                y: &mut [f32],
            ) {
                // SAFETY: as above.
                unsafe { shared_loops::binary(op, a, b, shape, y) }
            }
            fn unary(self, op: $crate::ir::UnaryOp, x: &[f32], y: &mut [f32]) {
                // SAFETY: as above.
                unsafe { shared_loops::unary(op, x, y) }
            }
            fn global_pool(
                self,
                kind: $crate::ir::PoolKind,
                planes: usize,
                x: &[f32],
                y: &mut [f32],
            ) {
                // SAFETY: as above.
                unsafe { shared_loops::global_pool(kind, planes, x, y) }
            }
            fn winograd_input(
                self,
                grid: &$crate::exec::kernels::winograd::TileGrid,
                x: &[f32],
                rows: &mut [f32],
                v: &mut [&mut [f32]],
                at: usize,
            ) {
                // SAFETY: as above.
                unsafe { shared_loops::winograd_input(grid, x, rows, v, at) }
            }
            fn winograd_output(
                self,
                grid: &$crate::exec::kernels::winograd::TileGrid,
                m: &[f32],
                stride: usize,
                rows: &mut [f32],
                y: &mut [f32],
            ) {
                // SAFETY: as above.
                unsafe { shared_loops::winograd_output(grid, m, stride, rows, y) }
            }
            fn gemv_columns(self, a: &[f32], x: &[f32], y: &mut [f32]) {
                // SAFETY: as above.
                unsafe { shared_loops::gemv_columns(a, x, y) }
            }
            fn frame_accumulate(self, acc: &mut [f32], row: &[u8], weight: f32) {
                // SAFETY: as above.
                unsafe { shared_loops::frame_accumulate(acc, row, weight) }
            }
            fn frame_gather(
                self,
                interleaved: &[f32],
                stride: usize,
                offset: usize,
                out: &mut [f32],
            ) {
                // SAFETY: as above.
                unsafe { shared_loops::frame_gather(interleaved, stride, offset, out) }
            }
            fn frame_color_row(
                self,
                src: [&[f32]; 3],
                k: &$crate::exec::kernels::frame::ColorRow,
                out: [&mut [f32]; 3],
            ) {
                // SAFETY: as above.
                unsafe { shared_loops::frame_color_row(src, k, out) }
            }
            fn frame_weighted_sums(
                self,
                acc: &[f32],
                starts: &[usize],
                weights: &[f32],
                width: usize,
                out: &mut [f32],
            ) {
                // SAFETY: as above.
                unsafe { shared_loops::frame_weighted_sums(acc, starts, weights, width, out) }
            }
        }
    };
}
pub(crate) use impl_simd;
