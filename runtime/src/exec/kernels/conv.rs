//! Convolution as GEMM, for every ISA with a [`Simd`] token: weights are
//! the packed A (`[M/g, C/g·kh·kw]` per group), the input is B, read in
//! place for 1×1 stride-1 convolutions and through im2col otherwise.

use super::contract::{Epilogue, Input, Kernel, Output, Threads};
use super::depthwise::{pad_plane, DwShape, Window};
use super::gemm::{self, ALayout, BSource, MicroKernel, PackedA, RowsB};
use super::simd::Simd;
use super::{residual_input, Operand};
use crate::error::Result;
use crate::ir::{ConvGeometry, UnaryOp};

/// Shortest K read in place (implicit GEMM) rather than packed from the
/// padded copy: a 3×3 stem on 3 channels (K = 27) ran 3.3 ms in place in
/// SqueezeNet1.1 on AVX2 against 1.9 ms through the im2col packing this
/// replaced (and that packing is itself slower than packing from the copy,
/// 1.43 against 0.89 ms for a MobileNetV2-shaped stem alone).
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
    input: [usize; 4],
    output: [usize; 4],
    groups: Vec<Group>,
    /// How B is read: the input itself (1×1, stride 1, no padding), or a
    /// padded copy, in place or packed.
    source: Source,
    residual: bool,
    /// Run as `Cᵀ = Bᵀ·Aᵀ` ([`gemm::gemm_transposed`]): few output pixels,
    /// so output channels fill the vector lanes instead. The weights are
    /// then packed in NR-row panels, and B is always packed.
    transposed: bool,
}

#[derive(Debug)]
enum Source {
    Pointwise,
    /// Each group's input channels padded and phase-split once per run;
    /// B row `p` of output `(oy, ox)` is at `offsets[p]` past the output's
    /// place in the copy. Read there in place (implicit GEMM), or packed
    /// from there: contiguous copies, unlike an im2col of the raw input.
    Padded {
        plane: DwShape,
        offsets: Vec<usize>,
        in_place: bool,
    },
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
        let source = if pointwise {
            Source::Pointwise
        } else {
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
            // Reading B in place computes whole NR panels per output row:
            // worth it (no packing copies) while that pads a row by at most
            // a quarter, and while K is long enough that the copies would
            // cost. Short K packs: the tile then streams B from L1 rather
            // than from K planes at once.
            let padded_row = y[3].div_ceil(S::NR) * S::NR;
            let in_place = !transposed && padded_row * 4 <= y[3] * 5 && kdim >= MIN_IN_PLACE_K;
            Source::Padded {
                plane,
                offsets,
                in_place,
            }
        };
        Some(ConvGemm {
            simd,
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
        let (pad, in_place) = match &self.source {
            Source::Padded {
                plane, in_place, ..
            } => (self.channels_per_group() * plane.pad_words(), *in_place),
            Source::Pointwise => (0, false),
        };
        let n = self.output[2] * self.output[3];
        let product = if self.transposed {
            gemm::transposed_scratch_words::<S>(mg, n)
        } else if in_place {
            0
        } else {
            gemm::packed_scratch_words::<S>(mg, self.groups[0].a.k, n, threads)
        };
        let words = pad + product;
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
        // The padded input, then the workers' B blocks.
        let pad_words = match &self.source {
            Source::Padded { plane, .. } => cg * plane.pad_words(),
            Source::Pointwise => 0,
        };
        let (pads, bpack) = scratch.split_at_mut(pad_words);
        /// B of one group and image; whether the padded copy is read in place.
        enum BIn<'a> {
            Rows(RowsB<'a>),
            Padded(gemm::Gathered<'a>, bool),
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
                    Source::Padded {
                        plane,
                        offsets,
                        in_place,
                    } => {
                        let words = plane.pad_words();
                        for (ci, pad) in pads.chunks_exact_mut(words).enumerate() {
                            pad_plane(plane, &xg[ci * hw..][..hw], pad, Some(0.0));
                        }
                        let g = gemm::Gathered {
                            data: pads,
                            offsets,
                            row_step: plane.sh * plane.row_words(),
                            oh,
                            ow,
                        };
                        BIn::Padded(g, *in_place)
                    }
                };
                let packed: &dyn BSource = match &b_in {
                    BIn::Rows(r) => r,
                    BIn::Padded(g, _) => g,
                };
                if self.transposed {
                    gemm::gemm_transposed(
                        self.simd,
                        &group.a,
                        packed,
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
                    BIn::Padded(g, true) => gemm::B::Gathered(g),
                    _ => gemm::B::Packed(packed),
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
