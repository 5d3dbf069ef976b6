//! Convolution as GEMM, for every ISA with a [`Simd`] token: weights are
//! the packed A (`[M/g, C/g·kh·kw]` per group), the input is B, read in
//! place for 1×1 stride-1 convolutions and through im2col otherwise.

use super::contract::{Epilogue, Input, Kernel, Output, Threads};
use super::gemm::{self, BSource, PackedA, RowsB};
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
    oh: usize,
    ow: usize,
}

impl BSource for Im2col<'_> {
    fn pack(&self, k0: usize, kc: usize, j0: usize, nc: usize, nr: usize, out: &mut [f32]) {
        let [kh, kw] = self.g.kernel;
        let (n, taps) = (self.oh * self.ow, kh * kw);
        for p in 0..kc {
            let kk = k0 + p;
            let (c, ky, kx) = (kk / taps, kk % taps / kw, kk % kw);
            let plane = &self.x[c * self.ih * self.iw..][..self.ih * self.iw];
            let dy = (ky * self.g.dilations[0]) as isize - self.g.pads[0] as isize;
            let dx = (kx * self.g.dilations[1]) as isize - self.g.pads[1] as isize;
            let (sh, sw) = (self.g.strides[0] as isize, self.g.strides[1] as isize);
            for (pi, jp) in (j0..j0 + nc).step_by(nr).enumerate() {
                let dst = &mut out[(pi * kc + p) * nr..][..nr];
                let (mut oy, mut ox) = (jp / self.ow, jp % self.ow);
                for (j, d) in dst.iter_mut().enumerate() {
                    *d = if jp + j >= n {
                        0.0
                    } else {
                        let iy = oy as isize * sh + dy;
                        let ix = ox as isize * sw + dx;
                        if iy >= 0 && (iy as usize) < self.ih && ix >= 0 && (ix as usize) < self.iw
                        {
                            plane[iy as usize * self.iw + ix as usize]
                        } else {
                            0.0
                        }
                    };
                    ox += 1;
                    if ox == self.ow {
                        ox = 0;
                        oy += 1;
                    }
                }
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
                        oh,
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
