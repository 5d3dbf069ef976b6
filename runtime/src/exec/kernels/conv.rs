//! Convolution as GEMM, for every ISA with a [`Simd`] token: weights are
//! the packed A (`[M/g, C/g·kh·kw]` per group), the input is B, read in
//! place for 1×1 stride-1 convolutions and through im2col otherwise.

use super::contract::{Epilogue, Input, Kernel, Output, Threads};
use super::depthwise::{pad_plane, DwShape, Window};
use super::gemm::{self, copy_run, ALayout, BSource, MicroKernel, PackedA, RowsB};
use super::simd::Simd;
use super::{residual_input, Operand};
use crate::error::Result;
use crate::ir::{ConvGeometry, UnaryOp};

/// im2col of one group: `B[(c, ky, kx)][(oy, ox)]`, zero outside the input.
struct Im2col<'a> {
    x: &'a [f32],
    g: &'a ConvGeometry,
    ih: usize,
    iw: usize,
    ow: usize,
}

impl Im2col<'_> {
    /// Output columns `[lo, hi)` whose tap at column offset `dx` reads
    /// inside the input row.
    fn valid_cols(&self, dx: isize) -> (usize, usize) {
        let sw = self.g.strides[1];
        let lo = if dx < 0 {
            ((-dx) as usize).div_ceil(sw)
        } else {
            0
        };
        let end = self.iw as isize - dx;
        let hi = if end <= 0 {
            0
        } else {
            (end as usize).div_ceil(sw).min(self.ow)
        };
        (lo.min(hi), hi)
    }
}

impl BSource for Im2col<'_> {
    /// Zero-fills the block, then copies each tap's in-bounds runs of one
    /// output row at a time, split at panel edges: divisions per run, not
    /// per element, and plain copies at stride 1.
    fn pack(&self, k0: usize, kc: usize, j0: usize, nc: usize, nr: usize, out: &mut [f32]) {
        let [kh, kw] = self.g.kernel;
        let taps = kh * kw;
        let (sh, sw) = (self.g.strides[0], self.g.strides[1]);
        out[..nc.div_ceil(nr) * kc * nr].fill(0.0);
        for p in 0..kc {
            let kk = k0 + p;
            let (c, ky, kx) = (kk / taps, kk % taps / kw, kk % kw);
            let plane = &self.x[c * self.ih * self.iw..][..self.ih * self.iw];
            let dy = (ky * self.g.dilations[0]) as isize - self.g.pads[0] as isize;
            let dx = (kx * self.g.dilations[1]) as isize - self.g.pads[1] as isize;
            let (lo, hi) = self.valid_cols(dx);
            let mut j = j0;
            while j < j0 + nc {
                let (oy, ox0) = (j / self.ow, j % self.ow);
                let ox1 = self.ow.min(ox0 + (j0 + nc - j));
                let iy = (oy * sh) as isize + dy;
                if iy >= 0 && (iy as usize) < self.ih {
                    let row = &plane[iy as usize * self.iw..][..self.iw];
                    let mut ox = ox0.max(lo);
                    let end = ox1.min(hi);
                    while ox < end {
                        let col = oy * self.ow + ox - j0;
                        let lane = col % nr;
                        let len = (end - ox).min(nr - lane);
                        let dst = &mut out[(col / nr) * kc * nr + p * nr + lane..][..len];
                        let start = (ox * sw) as isize + dx;
                        let src = &row[start as usize..];
                        if sw == 1 {
                            copy_run(dst, &src[..len]);
                        } else {
                            for (d, &v) in dst.iter_mut().zip(src.iter().step_by(sw)) {
                                *d = v;
                            }
                        }
                        ox += len;
                    }
                }
                j += ox1 - ox0;
            }
        }
    }
}

/// Shortest K read in place (implicit GEMM) rather than through im2col.
const MIN_IN_PLACE_K: usize = 32;

/// One group's packed weights and epilogue (bias rows of that group).
#[derive(Debug)]
struct Group {
    a: PackedA,
    epilogue: Epilogue,
}

/// Conv (any geometry, any groups) as one GEMM per group and image.
#[derive(Debug)]
pub struct ConvGemm<S: Simd> {
    simd: S,
    geometry: ConvGeometry,
    input: [usize; 4],
    output: [usize; 4],
    groups: Vec<Group>,
    /// How B is read: the input itself (1×1, stride 1, no padding), in
    /// place from a padded copy, or through im2col.
    source: Source,
    residual: bool,
    /// Run as `Cᵀ = Bᵀ·Aᵀ` ([`gemm::gemm_transposed`]): few output pixels,
    /// so output channels fill the vector lanes instead. The weights are
    /// then packed in NR-row panels, and B is never read in place.
    transposed: bool,
}

#[derive(Debug)]
enum Source {
    Pointwise,
    /// Implicit GEMM: each group's input channels padded and phase-split
    /// once per run, B rows read in place at these offsets.
    Padded {
        plane: DwShape,
        offsets: Vec<usize>,
    },
    Im2col,
}

impl<S: Simd> ConvGemm<S> {
    /// Packs a non-depthwise Conv with constant weights.
    pub fn build(
        simd: S,
        geometry: &ConvGeometry,
        activation: Option<UnaryOp>,
        ins: &[Operand],
        output: &[usize],
    ) -> Option<ConvGemm<S>> {
        let w = ins.get(1)?.constant?.as_f32()?;
        let bias = match ins.get(2) {
            Some(b) => Some(b.constant?.as_f32()?),
            None => None,
        };
        let residual = residual_input(ins);
        let (x, y) = (dims4(&ins[0].info.shape)?, dims4(output)?);
        let g = geometry.groups;
        let (cg, mg) = (x[1] / g, y[1] / g);
        let kdim = cg * geometry.kernel[0] * geometry.kernel[1];
        let transposed = gemm::transposed_pays::<S>(mg, y[2] * y[3]);
        let mr = if transposed { S::NR } else { S::MR };
        let groups = (0..g)
            .map(|gi| Group {
                a: PackedA::pack(
                    mg,
                    kdim,
                    mr,
                    ALayout::RowMajor {
                        data: &w[gi * mg * kdim..],
                        ld: kdim,
                    },
                ),
                epilogue: Epilogue {
                    scale: None,
                    bias: bias
                        .map(|b| super::contract::AlignedF32::from_slice(&b[gi * mg..][..mg])),
                    residual,
                    activation,
                },
            })
            .collect();
        let pointwise =
            geometry.kernel == [1, 1] && geometry.strides == [1, 1] && geometry.pads == [0; 4];
        // Reading B in place computes whole NR panels per output row: worth
        // it (no im2col copies) while that pads a row by at most a quarter,
        // and while K is long enough that the copies would cost (a 3×3
        // stem on 3 channels, K = 27, ran 1.9 ms through im2col against
        // 3.3 ms in place in SqueezeNet1.1 on AVX2; ResNet18's 7×7 stem,
        // K = 147, runs faster in place).
        let padded_row = y[3].div_ceil(S::NR) * S::NR;
        let source = if pointwise {
            Source::Pointwise
        } else if !transposed && padded_row * 4 <= y[3] * 5 && kdim >= MIN_IN_PLACE_K {
            let plane = DwShape::new(
                Window::WeightedSum,
                [S::NR, 1],
                x,
                y,
                [geometry.kernel, geometry.strides, geometry.dilations],
                geometry.pads,
            );
            let [kh, kw] = geometry.kernel;
            let offsets = (0..kdim)
                .map(|p| {
                    let (c, t) = (p / (kh * kw), p % (kh * kw));
                    c * plane.pad_words() + plane.tap_offset(t / kw, t % kw)
                })
                .collect();
            Source::Padded { plane, offsets }
        } else {
            Source::Im2col
        };
        Some(ConvGemm {
            simd,
            geometry: geometry.clone(),
            input: x,
            output: y,
            groups,
            source,
            residual,
            transposed,
        })
    }
}

/// The residual input of a Conv that carries one (its last input).
pub(super) fn residual_of<'a>(ins: &[Input<'a>], residual: bool) -> Result<Option<&'a [f32]>> {
    match ins.last() {
        Some(r) if residual => Ok(Some(r.f32()?)),
        _ => Ok(None),
    }
}

pub(super) fn dims4(s: &[usize]) -> Option<[usize; 4]> {
    (s.len() == 4).then(|| [s[0], s[1], s[2], s[3]])
}

impl<S: Simd> ConvGemm<S> {
    fn channels_per_group(&self) -> usize {
        self.input[1] / self.groups.len()
    }
}

impl<S: Simd> Kernel for ConvGemm<S> {
    fn name(&self) -> &'static str {
        if self.groups.len() > 1 {
            S::names().conv_grouped
        } else {
            S::names().conv_gemm
        }
    }
    fn scratch_bytes(&self, threads: usize) -> usize {
        let mg = self.output[1] / self.groups.len();
        let words = match &self.source {
            _ if self.transposed => {
                gemm::transposed_scratch_words::<S>(mg, self.output[2] * self.output[3])
            }
            Source::Padded { plane, .. } => self.channels_per_group() * plane.pad_words(),
            _ => {
                let k = self.groups[0].a.k;
                gemm::packed_scratch_words::<S>(mg, k, self.output[2] * self.output[3], threads)
            }
        };
        words * 4
    }
    fn packed_bytes(&self) -> usize {
        self.groups.iter().map(|g| g.a.data.bytes()).sum()
    }
    fn run(
        &self,
        ins: &[Input],
        outs: &mut [Output],
        scratch: &mut [f32],
        threads: &Threads,
    ) -> Result<()> {
        let [n, c, ih, iw] = self.input;
        let [_, m, oh, ow] = self.output;
        let (cg, mg, hw, ohw) = (
            c / self.groups.len(),
            m / self.groups.len(),
            ih * iw,
            oh * ow,
        );
        let x = ins[0].f32()?;
        let res = residual_of(ins, self.residual)?;
        let y = outs[0].f32()?;
        // The padded input (implicit GEMM) or the workers' B blocks.
        let pad_words = match &self.source {
            Source::Padded { plane, .. } => cg * plane.pad_words(),
            _ => 0,
        };
        let (pads, bpack) = scratch.split_at_mut(pad_words);
        /// B of one group and image.
        enum BIn<'a> {
            Rows(RowsB<'a>),
            Cols(Im2col<'a>),
            Gathered(gemm::Gathered<'a>),
        }
        for b in 0..n {
            for (gi, group) in self.groups.iter().enumerate() {
                let xg = &x[(b * c + gi * cg) * hw..][..cg * hw];
                let at = (b * m + gi * mg) * ohw;
                let yg = &mut y[at..][..mg * ohw];
                let rg = res.map(|r| &r[at..][..mg * ohw]);
                let b_in = match &self.source {
                    Source::Pointwise => BIn::Rows(RowsB {
                        data: xg,
                        ld: hw,
                        n: ohw,
                    }),
                    Source::Im2col => BIn::Cols(Im2col {
                        x: xg,
                        g: &self.geometry,
                        ih,
                        iw,
                        ow,
                    }),
                    Source::Padded { plane, offsets } => {
                        let words = plane.pad_words();
                        for (ci, pad) in pads.chunks_exact_mut(words).enumerate() {
                            pad_plane(plane, &xg[ci * hw..][..hw], pad, Some(0.0));
                        }
                        BIn::Gathered(gemm::Gathered {
                            data: pads,
                            offsets,
                            row_step: plane.sh * plane.row_words(),
                            oh,
                            ow,
                        })
                    }
                };
                // Transposed convs never read B in place (see `build`).
                let packed: Option<&dyn gemm::BSource> = match &b_in {
                    BIn::Rows(r) => Some(r),
                    BIn::Cols(c) => Some(c),
                    BIn::Gathered(_) => None,
                };
                if let (true, Some(b)) = (self.transposed, packed) {
                    gemm::gemm_transposed(
                        self.simd,
                        &group.a,
                        b,
                        ohw,
                        yg,
                        &group.epilogue,
                        rg,
                        &mut *bpack,
                        threads,
                    );
                    continue;
                }
                let b = match &b_in {
                    BIn::Rows(r) => gemm::B::Packed(r),
                    BIn::Cols(c) => gemm::B::Packed(c),
                    BIn::Gathered(g) => gemm::B::Gathered(g),
                };
                gemm::gemm(
                    self.simd,
                    &group.a,
                    b,
                    ohw,
                    yg,
                    ohw,
                    &group.epilogue,
                    rg,
                    &mut *bpack,
                    threads,
                );
            }
        }
        Ok(())
    }
}

/// ConvTranspose (one group) as a GEMM and a col2im: `cols[(m, ky, kx)][pixel]
/// = Σ_c w[c][m][ky][kx] · x[c][pixel]`, then every column is added at its
/// output position and the epilogue runs per output plane.
#[derive(Debug)]
pub struct ConvTransposeGemm<S: Simd> {
    simd: S,
    geometry: ConvGeometry,
    input: [usize; 4],
    output: [usize; 4],
    a: PackedA,
    epilogue: Epilogue,
}

impl<S: Simd> ConvTransposeGemm<S> {
    pub fn build(
        simd: S,
        geometry: &ConvGeometry,
        activation: Option<UnaryOp>,
        ins: &[Operand],
        output: &[usize],
    ) -> Option<Self> {
        if geometry.groups != 1 {
            return None;
        }
        let w = ins.get(1)?.constant?.as_f32()?;
        let bias = match ins.get(2) {
            Some(b) => Some(super::contract::AlignedF32::from_slice(
                b.constant?.as_f32()?,
            )),
            None => None,
        };
        let (x, y) = (dims4(&ins[0].info.shape)?, dims4(output)?);
        let rows = y[1] * geometry.kernel[0] * geometry.kernel[1];
        Some(ConvTransposeGemm {
            simd,
            geometry: geometry.clone(),
            input: x,
            output: y,
            a: PackedA::pack(rows, x[1], S::MR, ALayout::ColMajor { data: w, ld: rows }),
            epilogue: Epilogue {
                scale: None,
                bias,
                residual: false,
                activation,
            },
        })
    }

    fn cols_words(&self) -> usize {
        self.a.m * self.input[2] * self.input[3]
    }
}

impl<S: Simd> Kernel for ConvTransposeGemm<S> {
    fn name(&self) -> &'static str {
        S::names().conv_transpose
    }
    fn scratch_bytes(&self, threads: usize) -> usize {
        (self.cols_words() + threads * gemm::scratch_words::<S>()) * 4
    }
    fn packed_bytes(&self) -> usize {
        self.a.data.bytes()
    }
    fn run(
        &self,
        ins: &[Input],
        outs: &mut [Output],
        scratch: &mut [f32],
        threads: &Threads,
    ) -> Result<()> {
        let [n, c, ih, iw] = self.input;
        let [_, m, oh, ow] = self.output;
        let g = &self.geometry;
        let [kh, kw] = g.kernel;
        let (hw, ohw) = (ih * iw, oh * ow);
        let x = ins[0].f32()?;
        let y = outs[0].f32()?;
        let (cols, rest) = scratch.split_at_mut(self.cols_words());
        let none = Epilogue::default();
        for b in 0..n {
            let src = RowsB {
                data: &x[b * c * hw..][..c * hw],
                ld: hw,
                n: hw,
            };
            let packed = gemm::B::Packed(&src);
            gemm::gemm(
                self.simd, &self.a, packed, hw, cols, hw, &none, None, rest, threads,
            );
            let yb = &mut y[b * m * ohw..][..m * ohw];
            yb.fill(0.0);
            for (r, col) in cols.chunks_exact(hw).enumerate() {
                let (oc, ky, kx) = (r / (kh * kw), r / kw % kh, r % kw);
                let plane = &mut yb[oc * ohw..][..ohw];
                let dx = (kx * g.dilations[1]) as isize - g.pads[1] as isize;
                for iy in 0..ih {
                    let oy =
                        (iy * g.strides[0] + ky * g.dilations[0]) as isize - g.pads[0] as isize;
                    if oy < 0 || oy as usize >= oh {
                        continue;
                    }
                    let out_row = &mut plane[oy as usize * ow..][..ow];
                    for (ix, &v) in col[iy * iw..][..iw].iter().enumerate() {
                        let ox = (ix * g.strides[1]) as isize + dx;
                        if ox >= 0 && (ox as usize) < ow {
                            out_row[ox as usize] += v;
                        }
                    }
                }
            }
            for (oc, plane) in yb.chunks_exact_mut(ohw).enumerate() {
                MicroKernel::epilogue(self.simd, &self.epilogue, oc, plane, None);
            }
        }
        Ok(())
    }
}
