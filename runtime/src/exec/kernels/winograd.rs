//! 3×3 stride-1 convolution by Winograd's minimal filtering F(2×2, 3×3)
//! (Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks",
//! 2015): a 2×2 output tile costs 16 multiplies per channel pair instead of
//! 36, so the GEMM work of a 3×3 layer drops 2.25×.
//!
//! With `U = G g Gᵀ` (weights, transformed once at preparation) and
//! `V = Bᵀ d B` (each overlapping 4×4 input tile `d`), each of the 16
//! positions ξ of the 4×4 transformed tile is one GEMM over channels,
//! `M[ξ] = U[ξ] · V[ξ]` (`out × in · in × tiles`), and `Y = Aᵀ M A` gives
//! the 2×2 outputs of each tile. The GEMMs run on the ISA's microkernel
//! through the shared driver; the transforms are the loops below, compiled
//! per ISA through [`Simd`].

use super::contract::{plane_parts, AlignedF32, Epilogue, Input, Kernel, Output, Threads};
use super::conv::{dims4, residual_of};
use super::gemm::{self, MicroKernel, PackedA, RowsB};
use super::simd::Simd;
use super::{residual_input, Operand};
use crate::error::Result;
use crate::ir::{ConvGeometry, UnaryOp};
use smallvec::SmallVec;

/// Positions of a transformed 4×4 tile: one GEMM each.
const POSITIONS: usize = 16;

/// Where a layer's output tiles lie over its input.
#[derive(Clone, Copy, Debug)]
pub struct TileGrid {
    pub ih: usize,
    pub iw: usize,
    pub oh: usize,
    pub ow: usize,
    /// Top and left padding.
    pub pt: usize,
    pub pl: usize,
    /// Tile rows and columns: 2×2 outputs each.
    pub th: usize,
    pub tw: usize,
}

impl TileGrid {
    fn tiles(&self) -> usize {
        self.th * self.tw
    }
    /// Width of a zero-padded input row that every tile reads inside.
    fn padded_width(&self) -> usize {
        2 * self.tw + 2
    }
    /// Scratch words of one worker's transform rows.
    fn row_words(&self) -> usize {
        8 * self.padded_width()
    }
}

/// `V = Bᵀ d B` for every tile of one input channel `x` (`ih × iw`):
/// position ξ of tile `t` goes to `v[ξ][at + t]`. `rows` is scratch of
/// [`TileGrid::row_words`].
///
/// `Bᵀ = [[1,0,-1,0], [0,1,1,0], [0,-1,1,0], [0,1,0,-1]]`: the row pass
/// combines four zero-padded input rows over the whole width (plain vector
/// arithmetic), then the column pass combines each tile's columns.
#[inline(always)]
pub fn input_tiles(grid: &TileGrid, x: &[f32], rows: &mut [f32], v: &mut [&mut [f32]], at: usize) {
    let (wp, tw) = (grid.padded_width(), grid.tw);
    let (d, combos) = rows[..8 * wp].split_at_mut(4 * wp);
    for ty in 0..grid.th {
        for (r, dst) in d.chunks_exact_mut(wp).enumerate() {
            dst.fill(0.0);
            let iy = (2 * ty + r).wrapping_sub(grid.pt);
            if iy < grid.ih {
                dst[grid.pl..grid.pl + grid.iw].copy_from_slice(&x[iy * grid.iw..][..grid.iw]);
            }
        }
        let (d0, rest) = d.split_at(wp);
        let (d1, rest) = rest.split_at(wp);
        let (d2, d3) = rest.split_at(wp);
        let (a0, rest) = combos.split_at_mut(wp);
        let (a1, rest) = rest.split_at_mut(wp);
        let (a2, a3) = rest.split_at_mut(wp);
        for j in 0..wp {
            a0[j] = d0[j] - d2[j];
            a1[j] = d1[j] + d2[j];
            a2[j] = d2[j] - d1[j];
            a3[j] = d1[j] - d3[j];
        }
        let first = at + ty * tw;
        for (a, out) in combos.chunks_exact(wp).zip(v.chunks_exact_mut(4)) {
            let [o0, o1, o2, o3] = out else {
                unreachable!("chunks of 4")
            };
            let (o0, o1) = (&mut o0[first..][..tw], &mut o1[first..][..tw]);
            let (o2, o3) = (&mut o2[first..][..tw], &mut o3[first..][..tw]);
            for tx in 0..tw {
                let c = &a[2 * tx..][..4];
                o0[tx] = c[0] - c[2];
                o1[tx] = c[1] + c[2];
                o2[tx] = c[2] - c[1];
                o3[tx] = c[1] - c[3];
            }
        }
    }
}

/// `Y = Aᵀ M A` for every tile of one output channel: position ξ of all
/// its tiles is `m[ξ * stride..][..tiles]`; writes the `oh × ow` plane `y`.
/// `rows` is scratch of [`TileGrid::row_words`] (the column sums of a row
/// of tiles, then its two output rows: `12 · tw` words).
///
/// `Aᵀ = [[1,1,1,0], [0,1,-1,-1]]`.
#[inline(always)]
pub fn output_tiles(grid: &TileGrid, m: &[f32], stride: usize, rows: &mut [f32], y: &mut [f32]) {
    let (tw, ow) = (grid.tw, grid.ow);
    // Rows of Aᵀ M per tile column j (`top[j]`, `bottom[j]`), then the
    // two output rows; each a pass over whole runs of tiles.
    let (sums, out) = rows[..12 * tw].split_at_mut(8 * tw);
    let (r0, r1) = out.split_at_mut(2 * tw);
    for ty in 0..grid.th {
        let at = |xi: usize| &m[xi * stride + ty * tw..][..tw];
        for (j, pair) in sums.chunks_exact_mut(2 * tw).enumerate() {
            let (top, bottom) = pair.split_at_mut(tw);
            let (c0, c1, c2, c3) = (at(j), at(4 + j), at(8 + j), at(12 + j));
            for (((t, &a0), &a1), &a2) in top.iter_mut().zip(c0).zip(c1).zip(c2) {
                *t = a0 + a1 + a2;
            }
            for (((b, &a1), &a2), &a3) in bottom.iter_mut().zip(c1).zip(c2).zip(c3) {
                *b = a1 - a2 - a3;
            }
        }
        for (half, row) in [&mut *r0, &mut *r1].into_iter().enumerate() {
            let s = |j: usize| &sums[(2 * j + half) * tw..][..tw];
            let (s0, s1, s2, s3) = (s(0), s(1), s(2), s(3));
            let cols = row.chunks_exact_mut(2).zip(s0).zip(s1).zip(s2).zip(s3);
            for ((((pair, &v0), &v1), &v2), &v3) in cols {
                pair[0] = v0 + v1 + v2;
                pair[1] = v1 - v2 - v3;
            }
        }
        let oy = 2 * ty;
        y[oy * ow..][..ow].copy_from_slice(&r0[..ow]);
        if oy + 1 < grid.oh {
            y[(oy + 1) * ow..][..ow].copy_from_slice(&r1[..ow]);
        }
    }
}

/// `U = G g Gᵀ` of one 3×3 filter `g`, `G = [[1,0,0], [½,½,½], [½,-½,½],
/// [0,0,1]]`: the 16 values in position order.
fn filter_tile(g: &[f32]) -> [f32; POSITIONS] {
    let rows = |c: [f32; 3]| {
        [
            c[0],
            (c[0] + c[1] + c[2]) / 2.0,
            (c[0] - c[1] + c[2]) / 2.0,
            c[2],
        ]
    };
    // G g: each column of g transformed.
    let cols: [[f32; 4]; 3] = std::array::from_fn(|j| rows([g[j], g[3 + j], g[6 + j]]));
    // (G g) Gᵀ: each row of G g transformed.
    let mut u = [0f32; POSITIONS];
    for i in 0..4 {
        let r = rows([cols[0][i], cols[1][i], cols[2][i]]);
        u[4 * i..4 * i + 4].copy_from_slice(&r);
    }
    u
}

/// One worker's share of the input transform: its first channel, its rows
/// of each position's matrix, its transform rows.
type InputPart<'a> = (usize, SmallVec<[&'a mut [f32]; POSITIONS]>, &'a mut [f32]);

/// A 3×3, stride-1, ungrouped Conv by F(2×2, 3×3).
#[derive(Debug)]
pub struct Winograd<S: Simd> {
    simd: S,
    input: [usize; 4],
    output: [usize; 4],
    grid: TileGrid,
    /// `U[ξ]`, `out × in`, packed as each GEMM's A.
    u: Vec<PackedA>,
    epilogue: Epilogue,
    residual: bool,
}

impl<S: Simd> Winograd<S> {
    /// Fewest input and output channels. The input channels are the
    /// GEMMs' K: at 16 (SqueezeNet's 64@55×55 expand) the short K blocks
    /// and the transforms cost more than the saved multiplies (about 1.5 ms
    /// against 1.0 ms direct on AVX2, in 2 of 3 interleaved rounds); at 32
    /// Winograd wins (1.12 against 1.47 ms). The output channels are M, the work done per transformed
    /// input value: at 24 (PP-OCRv4 det's 96→24 at 80×80) moving the
    /// transformed tiles costs more than the GEMMs save (7.8 ms against
    /// 5.2 ms direct).
    const MIN_CHANNELS: usize = 32;
    /// Fewest tiles (an 8×8 output). ResNet18's 512@7×7 (16 tiles) still
    /// gains (3.4 ms against 5.5 ms), its wide K filling the microkernel.
    const MIN_TILES: usize = 16;

    /// Takes a Conv where F(2×2, 3×3) pays (see the constants above).
    pub fn build(
        simd: S,
        geometry: &ConvGeometry,
        activation: Option<UnaryOp>,
        ins: &[Operand],
        output: &[usize],
    ) -> Option<Winograd<S>> {
        let fits = geometry.kernel == [3, 3]
            && geometry.strides == [1, 1]
            && geometry.dilations == [1, 1]
            && geometry.groups == 1;
        let (x, y) = (dims4(&ins[0].info.shape)?, dims4(output)?);
        let grid = TileGrid {
            ih: x[2],
            iw: x[3],
            oh: y[2],
            ow: y[3],
            pt: geometry.pads[0],
            pl: geometry.pads[1],
            th: y[2].div_ceil(2),
            tw: y[3].div_ceil(2),
        };
        let pays = x[1] >= Self::MIN_CHANNELS
            && y[1] >= Self::MIN_CHANNELS
            && grid.tiles() >= Self::MIN_TILES;
        if !fits || !pays {
            return None;
        }
        let w = ins.get(1)?.constant?.as_f32()?;
        let bias = match ins.get(2) {
            Some(b) => Some(AlignedF32::from_slice(b.constant?.as_f32()?)),
            None => None,
        };
        let (cin, cout) = (x[1], y[1]);
        // Each filter's 16 transformed values written straight into their
        // places in the 16 packed matrices: no unpacked copy, which made
        // preparing ResNet18 three times slower.
        let mut u: Vec<PackedA> = (0..POSITIONS)
            .map(|_| PackedA::zeroed(cout, cin, S::MR))
            .collect();
        let mut dst: Vec<&mut [f32]> = u.iter_mut().map(|a| a.data.as_mut_slice()).collect();
        let dst: &mut [&mut [f32]; POSITIONS] = dst.as_mut_slice().try_into().ok()?;
        for (o, filters) in w.chunks_exact(9 * cin).take(cout).enumerate() {
            // Within a K block, consecutive inputs are MR values apart.
            for k0 in (0..cin).step_by(gemm::KC) {
                let first = PackedA::index(cout, cin, S::MR, o, k0);
                let block = &filters[9 * k0..][..9 * gemm::KC.min(cin - k0)];
                for (p, g) in block.chunks_exact(9).enumerate() {
                    let at = first + p * S::MR;
                    for (d, v) in dst.iter_mut().zip(filter_tile(g)) {
                        d[at] = v;
                    }
                }
            }
        }
        let residual = residual_input(ins);
        Some(Winograd {
            simd,
            input: x,
            output: y,
            grid,
            u,
            epilogue: Epilogue {
                scale: None,
                bias,
                residual,
                activation,
            },
            residual,
        })
    }

    /// Scratch words: `V` and `M` of one image, then each worker's B
    /// blocks (a GEMM runs on one worker) and transform rows.
    fn scratch_words(&self, threads: usize) -> (usize, usize, usize) {
        let tiles = self.grid.tiles();
        let v = POSITIONS * self.input[1] * tiles;
        let m = POSITIONS * self.output[1] * tiles;
        let per_worker = gemm::scratch_words::<S>().max(self.grid.row_words());
        (v, m, threads.max(1) * per_worker)
    }
}

impl<S: Simd> Kernel for Winograd<S> {
    fn name(&self) -> &'static str {
        S::names().conv_winograd
    }
    fn scratch_bytes(&self, threads: usize) -> usize {
        let (v, m, workers) = self.scratch_words(threads);
        (v + m + workers) * 4
    }
    fn packed_bytes(&self) -> usize {
        self.u.iter().map(|a| a.data.bytes()).sum()
    }
    fn run(
        &self,
        ins: &[Input],
        outs: &mut [Output],
        scratch: &mut [f32],
        threads: &Threads,
    ) -> Result<()> {
        let [n, cin, ih, iw] = self.input;
        let [_, cout, oh, ow] = self.output;
        let (grid, tiles, simd) = (&self.grid, self.grid.tiles(), self.simd);
        let x = ins[0].f32()?;
        let res = residual_of(ins, self.residual)?;
        let y = outs[0].f32()?;
        let workers = threads.count().max(1);
        let (v_words, m_words, worker_words) = self.scratch_words(workers);
        let (v, rest) = scratch.split_at_mut(v_words);
        let (m, rest) = rest.split_at_mut(m_words);
        let per_worker = worker_words / workers;
        let own = &mut rest[..worker_words];
        for b in 0..n {
            let xb = &x[b * cin * ih * iw..][..cin * ih * iw];
            // V, `[ξ][in][tile]` (each GEMM's B a plain matrix), input
            // channels split among workers: each gets its rows of every ξ.
            {
                let per = cin.div_ceil(workers);
                let mut rows = own.chunks_mut(per_worker);
                let mut parts: SmallVec<[InputPart; 8]> = (0..cin.div_ceil(per))
                    .map(|w| (w * per, SmallVec::new(), rows.next().unwrap_or_default()))
                    .collect();
                for vx in v.chunks_exact_mut(cin * tiles) {
                    for (part, rows) in parts.iter_mut().zip(vx.chunks_mut(per * tiles)) {
                        part.1.push(rows);
                    }
                }
                threads.for_each_part(&mut parts, |(c0, vs, rows)| {
                    let count = vs[0].len() / tiles;
                    for i in 0..count {
                        let xc = &xb[(*c0 + i) * ih * iw..][..ih * iw];
                        simd.winograd_input(grid, xc, rows, vs, i * tiles);
                    }
                });
            }
            // M[ξ] = U[ξ] · V[ξ], `[ξ][out][tile]`: positions split among
            // workers, each GEMM on one worker with its own B blocks.
            {
                let v = &*v;
                let mut parts = plane_parts(m, cout * tiles, workers, own, per_worker);
                threads.for_each_part(&mut parts, |(xi0, ms, bpack)| {
                    for (i, mx) in ms.chunks_exact_mut(cout * tiles).enumerate() {
                        let xi = *xi0 + i;
                        let src = RowsB {
                            data: &v[xi * cin * tiles..][..cin * tiles],
                            ld: tiles,
                            n: tiles,
                        };
                        gemm::gemm(
                            simd,
                            &self.u[xi],
                            gemm::B::Packed(&src),
                            tiles,
                            mx,
                            tiles,
                            &Epilogue::default(),
                            None,
                            bpack,
                            &Threads::single(),
                        );
                    }
                });
            }
            // Y per output channel, then its epilogue while it is in cache.
            let at = b * cout * oh * ow;
            let yb = &mut y[at..][..cout * oh * ow];
            let m = &*m;
            let mut parts = plane_parts(yb, oh * ow, workers, own, per_worker);
            threads.for_each_part(&mut parts, |(o0, ys, rows)| {
                for (i, plane) in ys.chunks_exact_mut(oh * ow).enumerate() {
                    let o = *o0 + i;
                    simd.winograd_output(grid, &m[o * tiles..], cout * tiles, rows, plane);
                    let r = res.map(|r| &r[at + o * oh * ow..][..oh * ow]);
                    MicroKernel::epilogue(simd, &self.epilogue, o, plane, r);
                }
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The filter transform against `G g Gᵀ` written out as matrices.
    #[test]
    fn filter_tile_is_g_g_gt() {
        let g: Vec<f32> = (0..9).map(|i| i as f32 * 0.5 - 1.0).collect();
        let gm = [
            [1.0, 0.0, 0.0],
            [0.5, 0.5, 0.5],
            [0.5, -0.5, 0.5],
            [0.0, 0.0, 1.0],
        ];
        let u = filter_tile(&g);
        for i in 0..4 {
            for j in 0..4 {
                let mut s = 0.0f32;
                for a in 0..3 {
                    for b in 0..3 {
                        s += gm[i][a] * g[3 * a + b] * gm[j][b];
                    }
                }
                assert!((u[4 * i + j] - s).abs() < 1e-6, "U[{i}][{j}]");
            }
        }
    }
}
