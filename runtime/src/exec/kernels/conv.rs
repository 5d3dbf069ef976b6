//! Convolution as GEMM, for every ISA with a [`Simd`] token: weights are
//! the packed A (`[M/g, C/g·kh·kw]` per group), the input is B, read in
//! place for 1×1 stride-1 convolutions and through im2col otherwise.

use super::contract::{Epilogue, Input, Kernel, Output, Threads};
use super::gemm::{self, BSource, MicroKernel, PackedA, RowsB};
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
        let lo = if dx < 0 { ((-dx) as usize).div_ceil(sw) } else { 0 };
        let end = self.iw as isize - dx;
        let hi = if end <= 0 { 0 } else { (end as usize).div_ceil(sw).min(self.ow) };
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
                            dst.copy_from_slice(&src[..len]);
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
    /// 1×1, stride 1, no padding: B is the input itself.
    pointwise: bool,
    residual: bool,
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
        let groups = (0..g)
            .map(|gi| Group {
                a: PackedA::pack(mg, kdim, S::MR, |i, p| w[(gi * mg + i) * kdim + p]),
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
        Some(ConvGemm {
            simd,
            geometry: geometry.clone(),
            input: x,
            output: y,
            groups,
            pointwise,
            residual,
        })
    }
}

pub(super) fn dims4(s: &[usize]) -> Option<[usize; 4]> {
    (s.len() == 4).then(|| [s[0], s[1], s[2], s[3]])
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
        threads * gemm::scratch_words::<S>() * 4
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
        let res = if self.residual {
            Some(ins[ins.len() - 1].f32()?)
        } else {
            None
        };
        let y = outs[0].f32()?;
        for b in 0..n {
            for (gi, group) in self.groups.iter().enumerate() {
                let xg = &x[(b * c + gi * cg) * hw..][..cg * hw];
                let at = (b * m + gi * mg) * ohw;
                let yg = &mut y[at..][..mg * ohw];
                let rg = res.map(|r| &r[at..][..mg * ohw]);
                let rows;
                let cols;
                let src: &dyn BSource = if self.pointwise {
                    rows = RowsB {
                        data: xg,
                        ld: hw,
                        n: ohw,
                    };
                    &rows
                } else {
                    cols = Im2col {
                        x: xg,
                        g: &self.geometry,
                        ih,
                        iw,
                        ow,
                    };
                    &cols
                };
                gemm::gemm(
                    self.simd,
                    &group.a,
                    src,
                    ohw,
                    yg,
                    ohw,
                    &group.epilogue,
                    rg,
                    scratch,
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
            Some(b) => Some(super::contract::AlignedF32::from_slice(b.constant?.as_f32()?)),
            None => None,
        };
        let (x, y) = (dims4(&ins[0].info.shape)?, dims4(output)?);
        let rows = y[1] * geometry.kernel[0] * geometry.kernel[1];
        Some(ConvTransposeGemm {
            simd,
            geometry: geometry.clone(),
            input: x,
            output: y,
            a: PackedA::pack(rows, x[1], S::MR, |r, c| w[c * rows + r]),
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
            gemm::gemm(self.simd, &self.a, &src, hw, cols, hw, &none, None, rest, threads);
            let yb = &mut y[b * m * ohw..][..m * ohw];
            yb.fill(0.0);
            for (r, col) in cols.chunks_exact(hw).enumerate() {
                let (oc, ky, kx) = (r / (kh * kw), r / kw % kh, r % kw);
                let plane = &mut yb[oc * ohw..][..ohw];
                let dx = (kx * g.dilations[1]) as isize - g.pads[1] as isize;
                for iy in 0..ih {
                    let oy = (iy * g.strides[0] + ky * g.dilations[0]) as isize - g.pads[0] as isize;
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
