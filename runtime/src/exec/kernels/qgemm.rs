//! Integer convolution as GEMM (QLinearConv, 1×1 and general, any groups
//! but depthwise): `acc[m][p] = Σ_k w[m][k] · x[k][p]` over u8 activations
//! and i8 weights, i32 accumulators, then the fixed-point [`Requantize`]
//! stage per output channel.
//!
//! Weights are packed once at preparation into panels of [`QTile::MR`]
//! rows and groups of [`QTile::KG`] consecutive k (the layout a tile's
//! dot-product instruction reads: 4 for VNNI's `vpdpbusd`, 1 for NEON's
//! widening `smlal`). Per frame, each worker gathers a panel of
//! [`QTile::NR`] output pixels of the input (im2col, the zero point in the
//! padding) into its scratch, in the same k grouping, and runs every weight
//! panel over it. The input's zero point is folded into the bias at
//! preparation: `Σ w·(x − zx) = Σ w·x − zx·Σ w`.

use super::contract::{Input, Kernel, Output, Requantize, Threads};
use super::scalar::quant::conv_requantizers;
use super::Operand;
use crate::error::{Error, Result};
use crate::ir::{ConvGeometry, DType, Op, Quant, TensorData, TypeInfo};

/// An int8 GEMM tile of one ISA: `acc[r][c] = Σ_g Σ_t a[g][r][t] · b[g][c][t]`
/// over `groups` k-groups of `KG`, for `MR` weight rows and `NR` pixels.
pub trait QTile: Copy + Send + Sync + std::fmt::Debug + 'static {
    const MR: usize;
    const NR: usize;
    const KG: usize;
    /// Whether the tile reads activations as i8, `x − 128` (`x ^ 0x80`),
    /// for signed-only dot products (NEON `sdot`); the kernel flips the
    /// gathered panel and adds `128 · Σ w` back through the bias.
    const SIGNED_ACTIVATIONS: bool = false;
    /// Bytes per packed weight: 1 (i8), or 2 for tiles that multiply in
    /// 16 bits and read each weight pre-widened (i16, little-endian), so a
    /// row's k-group is one broadcast load ([`tile_weights`]).
    const WEIGHT_BYTES: usize = 1;
    /// `u8_qconv_gemm_{MR}x{NR}_{isa}`.
    const NAME: &'static str;
    /// `u8_qdepthwise_{isa}`: the depthwise kernel run under this token.
    const DEPTHWISE_NAME: &'static str;
    /// `u8_qelementwise_{isa}`: the elementwise kernels under this token.
    const ELEMENTWISE_NAME: &'static str;
    fn detect() -> Option<Self>;
    /// `a` holds `groups · MR · KG` weights (in `WEIGHT_BYTES` each), `b`
    /// `groups · NR · KG` activations; `acc` (`MR · NR`, row-major) is
    /// overwritten.
    fn tile(self, groups: usize, a: &[i8], b: &[u8], acc: &mut [i32]);
    /// `out[i] = rq(acc[i] + bias)` as u8 (`rq` clamps to 0..=255), over
    /// the shorter of the two; a tile may override it with intrinsics the
    /// compiler cannot find alone (AVX2 has no 64-bit arithmetic shift).
    #[inline(always)]
    fn requantize(self, acc: &[i32], bias: i32, rq: Requantize, out: &mut [u8]) {
        requantize_u8(acc, bias, rq, out);
    }
    /// Runs `work` compiled for this ISA (its features enabled), so the
    /// portable loops around the tile (im2col gathers, requantization,
    /// depthwise rows) vectorize for it.
    #[inline(always)]
    fn vectorized<W: IsaWork>(self, work: W) -> W::Output {
        work.run()
    }
}

/// A piece of kernel work whose `run` is `#[inline(always)]`: inlined into
/// an ISA's `#[target_feature]` wrapper ([`QTile::vectorized`]), it is
/// compiled for that ISA. (A closure would not be: it cannot be forced
/// inline.)
pub trait IsaWork {
    type Output;
    fn run(self) -> Self::Output;
}

/// The portable tile: plain loops the compiler vectorizes, and the twin
/// every ISA tile is tested against.
#[derive(Clone, Copy, Debug)]
pub struct ScalarQTile;

impl QTile for ScalarQTile {
    const MR: usize = 4;
    const NR: usize = 16;
    const KG: usize = 4;
    const NAME: &'static str = "u8_qconv_gemm_4x16_scalar";
    const DEPTHWISE_NAME: &'static str = "u8_qdepthwise_scalar";
    const ELEMENTWISE_NAME: &'static str = "u8_qelementwise_scalar";
    fn detect() -> Option<Self> {
        Some(ScalarQTile)
    }
    fn tile(self, groups: usize, a: &[i8], b: &[u8], acc: &mut [i32]) {
        scalar_tile::<4, 16, 4, false>(groups, a, b, acc);
    }
}

/// Packed i8 weights in the form tile `T` reads: as they are, or each
/// widened to an i16 (two bytes, little-endian) for `WEIGHT_BYTES == 2`.
pub fn tile_weights<T: QTile>(packed: Vec<i8>) -> Vec<i8> {
    if T::WEIGHT_BYTES == 1 {
        return packed;
    }
    packed
        .iter()
        .flat_map(|&w| (w as i16).to_le_bytes().map(|b| b as i8))
        .collect()
}

/// The portable [`QTile::requantize`], and the twin of every override.
#[inline(always)]
pub fn requantize_u8(acc: &[i32], bias: i32, rq: Requantize, out: &mut [u8]) {
    for (o, &a) in out.iter_mut().zip(acc) {
        *o = rq.apply(a.wrapping_add(bias)) as u8;
    }
}

/// The reference loop of a tile, for any shape (ISA tests call it with
/// their own `MR`, `NR`, `KG`); `SIGNED` reads `b` as i8.
pub fn scalar_tile<const MR: usize, const NR: usize, const KG: usize, const SIGNED: bool>(
    groups: usize,
    a: &[i8],
    b: &[u8],
    acc: &mut [i32],
) {
    let acc = &mut acc[..MR * NR];
    acc.fill(0);
    for (ag, bg) in a
        .chunks_exact(MR * KG)
        .zip(b.chunks_exact(NR * KG))
        .take(groups)
    {
        for r in 0..MR {
            let row = &mut acc[r * NR..][..NR];
            for (c, o) in row.iter_mut().enumerate() {
                let mut s = 0i32;
                for t in 0..KG {
                    let b = if SIGNED {
                        bg[c * KG + t] as i8 as i32
                    } else {
                        bg[c * KG + t] as i32
                    };
                    s += ag[r * KG + t] as i32 * b;
                }
                *o += s;
            }
        }
    }
}

/// What the integer convolution kernels take of a QConv node.
pub struct QConvParts<'a> {
    pub geometry: &'a ConvGeometry,
    pub x: Quant,
    /// i8 \[M, C/g, kh, kw\], zero point 0.
    pub weights: &'a [i8],
    pub bias: Option<&'a [i32]>,
    /// One per output channel.
    pub requant: Vec<Requantize>,
}

/// The parts of a QConv with u8 input and output and constant weights,
/// scales and bias; `None` for anything else.
pub fn qconv_parts<'a>(op: &'a Op, ins: &[Operand<'a>]) -> Option<QConvParts<'a>> {
    let Op::QConv {
        geometry,
        x,
        y,
        activation,
    } = op
    else {
        return None;
    };
    if x.dtype != DType::U8 || y.dtype != DType::U8 {
        return None;
    }
    let TensorData::I8(weights) = ins[1].constant?.data() else {
        return None;
    };
    let bias = match ins.get(3) {
        Some(b) => match b.constant?.data() {
            TensorData::I32(v) => Some(v.as_slice()),
            _ => return None,
        },
        None => None,
    };
    let scales = ins[2].constant?.as_f32()?;
    Some(QConvParts {
        geometry,
        x: *x,
        weights,
        bias,
        requant: conv_requantizers(*x, *y, scales, *activation).ok()?,
    })
}

/// A prepared QLinearConv run as GEMM with tile `T`.
#[derive(Debug)]
pub struct QConvGemm<T: QTile> {
    tile: T,
    geometry: ConvGeometry,
    /// Input \[C, H, W\] and output \[M, OH, OW\] per image.
    input: [usize; 3],
    output: [usize; 3],
    x_zero: u8,
    /// k per group (C/g · kh · kw) in whole k-groups.
    k_groups: usize,
    /// 1×1, stride 1, no padding: im2col is an interleave of input rows.
    pointwise: bool,
    /// For one output pixel per image (a classifier head: Gemm or MatMul
    /// of one row), the weight rows as they are, \[M, K\]: a tile of NR
    /// pixels would compute NR − 1 columns for nothing, a row dot does not.
    /// With them, each channel's bias for a dot of unshifted u8 inputs:
    /// `bias − x_zero · Σ w`.
    rows: Option<(Vec<i8>, Vec<i32>)>,
    /// Per group, per panel of MR rows: `k_groups · MR · KG` weights.
    packed: Vec<i8>,
    /// Bias plus `(offset − x_zero) · Σ_k w` (offset 128 for signed
    /// activations, else 0), per output channel (rows padded).
    bias: Vec<i32>,
    requant: Vec<Requantize>,
}

impl<T: QTile> QConvGemm<T> {
    /// Accepts a QConv with u8 input and output and constant i8 weights,
    /// scales and bias; `None` for anything else (depthwise included).
    pub fn build(tile: T, op: &Op, ins: &[Operand], outs: &[TypeInfo]) -> Option<Self> {
        let QConvParts {
            geometry: g,
            x,
            weights: wv,
            bias: b,
            requant,
        } = qconv_parts(op, ins)?;
        let xs = &ins[0].info.shape;
        let depthwise = g.groups > 1 && g.groups == xs[1] && ins[1].info.shape[1] == 1;
        if depthwise || outs[0].shape[0] != xs[0] {
            return None;
        }
        let os = &outs[0].shape;
        let (m, groups) = (os[1], g.groups);
        let mg = m / groups;
        let k = xs[1] / groups * g.kernel[0] * g.kernel[1];
        let k_groups = k.div_ceil(T::KG);
        let panels = mg.div_ceil(T::MR);
        let mut packed = vec![0i8; groups * panels * k_groups * T::MR * T::KG];
        let mut bias_eff = vec![0i32; groups * panels * T::MR];
        for grp in 0..groups {
            for r in 0..mg {
                let oc = grp * mg + r;
                let row = &wv[oc * k..][..k];
                let (panel, lane) = (r / T::MR, r % T::MR);
                let base = (grp * panels + panel) * k_groups * T::MR * T::KG;
                // Each k-group of the row is one run in the panel: no
                // division per weight, and a loop rather than a `memcpy`
                // call per run of KG bytes.
                for (kg, run) in row.chunks(T::KG).enumerate() {
                    let at = base + kg * T::MR * T::KG + lane * T::KG;
                    for (d, &v) in packed[at..at + run.len()].iter_mut().zip(run) {
                        *d = v;
                    }
                }
                let sum: i32 = row.iter().map(|&v| v as i32).sum();
                let b0 = b.and_then(|b| b.get(oc).copied()).unwrap_or(0);
                // Σ w·(x − zx) = Σ w·(x − offset) + (offset − zx)·Σ w.
                let offset = if T::SIGNED_ACTIVATIONS { 128 } else { 0 };
                bias_eff[(grp * panels + panel) * T::MR + lane] =
                    b0.wrapping_add((offset - x.zero_point).wrapping_mul(sum));
            }
        }
        Some(QConvGemm {
            tile,
            geometry: g.clone(),
            input: [xs[1], xs[2], xs[3]],
            output: [os[1], os[2], os[3]],
            x_zero: x.zero_point as u8,
            pointwise: g.kernel == [1, 1] && g.strides == [1, 1] && g.pads == [0; 4],
            rows: (groups == 1 && g.kernel == [1, 1] && os[2] * os[3] == 1 && xs[2] * xs[3] == 1)
                .then(|| {
                    let biases = wv
                        .chunks_exact(k.max(1))
                        .enumerate()
                        .map(|(oc, w)| {
                            let sum: i32 = w.iter().map(|&v| v as i32).sum();
                            let b0 = b.and_then(|b| b.get(oc).copied()).unwrap_or(0);
                            b0.wrapping_sub(x.zero_point.wrapping_mul(sum))
                        })
                        .collect();
                    (wv.to_vec(), biases)
                }),
            k_groups,
            packed: tile_weights::<T>(packed),
            bias: bias_eff,
            requant,
        })
    }

    /// Bytes of one worker's activation panel.
    fn panel_bytes(&self) -> usize {
        self.k_groups * T::NR * T::KG
    }

    /// Gathers the im2col panel of group `grp` for output pixels
    /// `p0 .. p0 + NR` (past the end: zero point) of image `x`.
    #[inline(always)]
    fn gather(&self, x: &[u8], grp: usize, p0: usize, panel: &mut [u8]) {
        let g = &self.geometry;
        if self.pointwise && p0 + T::NR <= self.output[1] * self.output[2] {
            // 1×1, stride 1, no padding: k-groups of KG whole input rows,
            // interleaved pixel by pixel.
            let pixels = self.input[1] * self.input[2];
            let cg = self.input[0] / g.groups;
            let pad = [self.x_zero; MAX_NR];
            for (kg, dst) in panel.chunks_exact_mut(T::NR * T::KG).enumerate() {
                // The KG input rows of this k-group (the zero point past
                // the channels), interleaved pixel by pixel in one pass.
                let mut rows = [&pad[..T::NR]; MAX_KG];
                for (t, row) in rows.iter_mut().enumerate().take(T::KG) {
                    let k = kg * T::KG + t;
                    if k < cg {
                        *row = &x[(grp * cg + k) * pixels + p0..][..T::NR];
                    }
                }
                for (c, d) in dst.chunks_exact_mut(T::KG).enumerate() {
                    for (v, row) in d.iter_mut().zip(&rows) {
                        *v = row[c];
                    }
                }
            }
            return;
        }
        let [c, ih, iw] = self.input;
        let [_, oh, ow] = self.output;
        let cg = c / g.groups;
        let [kh, kw] = g.kernel;
        let cols = T::NR.min(oh * ow - p0);
        panel.fill(self.x_zero);
        // Each column's window origin, stepped along the output rows.
        let mut origin = [(0isize, 0isize); MAX_NR];
        let (mut oy, mut ox) = (p0 / ow, p0 % ow);
        for o in origin.iter_mut().take(cols) {
            *o = (
                (oy * g.strides[0]) as isize - g.pads[0] as isize,
                (ox * g.strides[1]) as isize - g.pads[1] as isize,
            );
            ox += 1;
            if ox == ow {
                (oy, ox) = (oy + 1, 0);
            }
        }
        let mut kk = 0;
        for icg in 0..cg {
            let plane = &x[(grp * cg + icg) * ih * iw..][..ih * iw];
            for ky in 0..kh {
                let dy = (ky * g.dilations[0]) as isize;
                for kx in 0..kw {
                    let dx = (kx * g.dilations[1]) as isize;
                    let dst = &mut panel[(kk / T::KG) * T::NR * T::KG + kk % T::KG..];
                    for (col, &(y0, x0)) in origin[..cols].iter().enumerate() {
                        let (iy, ix) = (y0 + dy, x0 + dx);
                        if iy >= 0 && (iy as usize) < ih && ix >= 0 && (ix as usize) < iw {
                            dst[col * T::KG] = plane[iy as usize * iw + ix as usize];
                        }
                    }
                    kk += 1;
                }
            }
        }
    }

    /// Weight panels in channel order: (group, panel, first channel, rows).
    fn units(&self) -> impl Iterator<Item = (usize, usize, usize, usize)> + '_ {
        let groups = self.geometry.groups;
        let mg = self.output[0] / groups;
        let panels = mg.div_ceil(T::MR);
        (0..groups * panels).map(move |u| {
            let (grp, pi) = (u / panels, u % panels);
            (grp, pi, grp * mg + pi * T::MR, T::MR.min(mg - pi * T::MR))
        })
    }

    /// The channels of weight panels `units` (starting at channel `c0`)
    /// for every pixel of image `x`, into `y` (those channels' planes),
    /// with `panel` as this worker's im2col scratch.
    #[inline(always)]
    fn run_units(
        &self,
        x: &[u8],
        units: (usize, usize),
        c0: usize,
        y: &mut [u8],
        panel: &mut [u8],
    ) {
        let [_, oh, ow] = self.output;
        let pixels = oh * ow;
        let panels = (self.output[0] / self.geometry.groups).div_ceil(T::MR);
        let a_panel = self.k_groups * T::MR * T::KG * T::WEIGHT_BYTES;
        let mut acc = [0i32; MAX_TILE];
        let acc = &mut acc[..T::MR * T::NR];
        for p0 in (0..pixels).step_by(T::NR) {
            let cols = T::NR.min(pixels - p0);
            let mut gathered = None;
            for (grp, pi, oc0, rows) in self.units().skip(units.0).take(units.1 - units.0) {
                if gathered != Some(grp) {
                    self.gather(x, grp, p0, panel);
                    if T::SIGNED_ACTIVATIONS {
                        panel.iter_mut().for_each(|v| *v ^= 0x80);
                    }
                    gathered = Some(grp);
                }
                let at = (grp * panels + pi) * a_panel;
                self.tile
                    .tile(self.k_groups, &self.packed[at..at + a_panel], panel, acc);
                for r in 0..rows {
                    let oc = oc0 + r;
                    let (bias, rq) = (self.bias[(grp * panels + pi) * T::MR + r], self.requant[oc]);
                    let out = &mut y[(oc - c0) * pixels + p0..][..cols];
                    self.tile
                        .requantize(&acc[r * T::NR..][..cols], bias, rq, out);
                }
            }
        }
    }
}

/// One worker's share: its weight panels, first channel, output band and
/// im2col scratch.
type UnitPart<'a> = ((usize, usize), usize, &'a mut [u8], &'a mut [u8]);

/// One worker's weight panels over one image ([`QConvGemm::run_units`]).
struct GemmUnits<'a, T: QTile> {
    kernel: &'a QConvGemm<T>,
    x: &'a [u8],
    units: (usize, usize),
    c0: usize,
    y: &'a mut [u8],
    panel: &'a mut [u8],
}

impl<T: QTile> IsaWork for GemmUnits<'_, T> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        self.kernel
            .run_units(self.x, self.units, self.c0, self.y, self.panel);
    }
}

/// A one-pixel 1×1 conv over the batch: one dot product per image and
/// output channel, straight from the weight rows.
struct RowDots<'a, T: QTile> {
    kernel: &'a QConvGemm<T>,
    biases: &'a [i32],
    rows: &'a [i8],
    x: &'a [u8],
    y: &'a mut [u8],
}

impl<T: QTile> IsaWork for RowDots<'_, T> {
    type Output = Result<()>;
    #[inline(always)]
    fn run(self) -> Result<()> {
        let (k, m) = (self.kernel.input[0], self.kernel.output[0]);
        for (xb, yb) in self.x.chunks_exact(k).zip(self.y.chunks_exact_mut(m)) {
            for (oc, (o, w)) in yb.iter_mut().zip(self.rows.chunks_exact(k)).enumerate() {
                let dot: i32 = w.iter().zip(xb).map(|(&w, &v)| w as i32 * v as i32).sum();
                *o = self.kernel.requant[oc].apply(dot.wrapping_add(self.biases[oc])) as u8;
            }
        }
        Ok(())
    }
}

/// Largest `MR · NR` of any tile (the accumulators live on the stack).
const MAX_TILE: usize = 512;
/// Largest `NR` of any tile (column origins of a gather, on the stack).
const MAX_NR: usize = 64;
/// Largest `KG` of any tile.
const MAX_KG: usize = 4;

impl<T: QTile> Kernel for QConvGemm<T> {
    fn name(&self) -> &'static str {
        T::NAME
    }
    fn scratch_bytes(&self, threads: usize) -> usize {
        threads.max(1) * self.panel_bytes().next_multiple_of(64)
    }
    fn packed_bytes(&self) -> usize {
        self.packed.len() + self.bias.len() * 4
    }
    fn run(
        &self,
        ins: &[Input],
        outs: &mut [Output],
        scratch: &mut [f32],
        threads: &Threads,
    ) -> Result<()> {
        let x = ins[0].u8()?;
        let y = outs[0].u8()?;
        let [c, ih, iw] = self.input;
        let [m, oh, ow] = self.output;
        let (image_in, image_out, pixels) = (c * ih * iw, m * oh * ow, oh * ow);
        let scratch: &mut [u8] = bytemuck::cast_slice_mut(scratch);
        let per_worker = self.panel_bytes().next_multiple_of(64);
        let units = self.units().count();
        let workers = threads.count().min(units).max(1);
        if T::MR * T::NR > MAX_TILE
            || T::KG > MAX_KG
            || T::NR > MAX_NR
            || scratch.len() < workers * per_worker
            || x.len() < image_in
            || y.len() < image_out
        {
            return Err(Error::Input("QLinearConv buffers too small".into()));
        }
        if let Some((rows, biases)) = &self.rows {
            return self.tile.vectorized(RowDots {
                kernel: self,
                biases,
                rows,
                x,
                y,
            });
        }
        let per = units.div_ceil(workers);
        for (xb, yb) in x.chunks_exact(image_in).zip(y.chunks_exact_mut(image_out)) {
            // Each worker takes a run of weight panels: a contiguous band
            // of output channels, so of output planes.
            let mut parts: smallvec::SmallVec<[UnitPart; 8]> = smallvec::SmallVec::new();
            let mut rest = &mut yb[..];
            let mut scratch = scratch.chunks_exact_mut(per_worker);
            let mut c0 = 0;
            for w in 0..workers {
                let (u0, u1) = (w * per, ((w + 1) * per).min(units));
                let c1 = self
                    .units()
                    .nth(u1 - 1)
                    .map_or(c0, |(_, _, oc, rows)| oc + rows);
                let (band, tail) = std::mem::take(&mut rest).split_at_mut((c1 - c0) * pixels);
                let panel = scratch.next().unwrap_or(&mut []);
                parts.push(((u0, u1), c0, band, panel));
                rest = tail;
                c0 = c1;
                if u1 == units {
                    break;
                }
            }
            threads.for_each_part(&mut parts, |(units, c0, band, panel)| {
                self.tile.vectorized(GemmUnits {
                    kernel: self,
                    x: xb,
                    units: *units,
                    c0: *c0,
                    y: band,
                    panel,
                });
            });
        }
        Ok(())
    }
}
