//! Depthwise convolution of one channel plane, written once for every ISA.
//! Output rows accumulate one tap at a time over the columns where the tap
//! lands inside the input, so the inner loops have no bounds logic and
//! vectorize (stride 1 as plain loads, stride 2 as even-lane loads).

use smallvec::SmallVec;

use super::contract::{AlignedF32, Epilogue, Input, Kernel, Output, Threads};
use super::conv::dims4;
use super::simd::Simd;
use super::{residual_input, Operand};
use crate::error::Result;
use crate::ir::{ConvGeometry, UnaryOp};

/// Geometry of a depthwise plane (one input and one output channel).
#[derive(Clone, Copy, Debug)]
pub struct DwShape {
    pub ih: usize,
    pub iw: usize,
    pub oh: usize,
    pub ow: usize,
    pub kh: usize,
    pub kw: usize,
    pub sh: usize,
    pub sw: usize,
    pub dh: usize,
    pub dw: usize,
    pub pt: usize,
    pub pl: usize,
}

impl DwShape {
    /// Output columns `[lo, hi)` whose tap `kx` reads inside the row.
    #[inline(always)]
    fn cols(&self, kx: usize) -> (usize, usize) {
        let off = (kx * self.dw) as isize - self.pl as isize;
        let lo = if off < 0 {
            ((-off) as usize).div_ceil(self.sw)
        } else {
            0
        };
        let end = self.iw as isize - off;
        let hi = if end <= 0 {
            0
        } else {
            (end as usize).div_ceil(self.sw).min(self.ow)
        };
        (lo.min(hi), hi)
    }
}

/// `y = epilogue(depthwise(x, w))` for channel `ch`: `x` is `ih*iw`, `w`
/// `kh*kw`, `y` `oh*ow`, `res` (if any) like `y`.
#[inline(always)]
pub fn plane(
    s: &DwShape,
    ch: usize,
    x: &[f32],
    w: &[f32],
    y: &mut [f32],
    e: &Epilogue,
    res: Option<&[f32]>,
) {
    for oy in 0..s.oh {
        let out = &mut y[oy * s.ow..][..s.ow];
        out.fill(0.0);
        for ky in 0..s.kh {
            let iy = (oy * s.sh + ky * s.dh) as isize - s.pt as isize;
            if iy < 0 || iy >= s.ih as isize {
                continue;
            }
            let row = &x[iy as usize * s.iw..][..s.iw];
            for kx in 0..s.kw {
                let wv = w[ky * s.kw + kx];
                let (lo, hi) = s.cols(kx);
                if lo >= hi {
                    continue;
                }
                let start = (lo * s.sw + kx * s.dw) - s.pl;
                let dst = &mut out[lo..hi];
                match s.sw {
                    1 => {
                        let src = &row[start..][..hi - lo];
                        for (o, &v) in dst.iter_mut().zip(src) {
                            *o += wv * v;
                        }
                    }
                    2 => {
                        // Pairs for all but the last column (whose odd
                        // partner may lie past the row), then the last.
                        let n = hi - lo;
                        let src = &row[start..][..2 * (n - 1) + 1];
                        for (o, pair) in dst[..n - 1].iter_mut().zip(src.chunks_exact(2)) {
                            *o += wv * pair[0];
                        }
                        dst[n - 1] += wv * src[2 * (n - 1)];
                    }
                    sw => {
                        for (j, o) in dst.iter_mut().enumerate() {
                            *o += wv * row[start + j * sw];
                        }
                    }
                }
            }
        }
        let r = res.map(|r| &r[oy * s.ow..][..s.ow]);
        e.apply_row(ch, out, r);
    }
}

/// Depthwise Conv (groups = channels = outputs) for one ISA: channels are
/// split across workers, each plane run by the ISA's compiled loop.
#[derive(Debug)]
pub struct Depthwise<S: Simd> {
    simd: S,
    shape: DwShape,
    batch: usize,
    channels: usize,
    weights: AlignedF32,
    epilogue: Epilogue,
}

impl<S: Simd> Depthwise<S> {
    pub fn build(
        simd: S,
        g: &ConvGeometry,
        activation: Option<UnaryOp>,
        ins: &[Operand],
        output: &[usize],
    ) -> Option<Depthwise<S>> {
        let x = dims4(&ins[0].info.shape)?;
        let y = dims4(output)?;
        if g.groups != x[1] || y[1] != x[1] {
            return None;
        }
        let w = ins.get(1)?.constant?.as_f32()?;
        let bias = match ins.get(2) {
            Some(b) => Some(AlignedF32::from_slice(b.constant?.as_f32()?)),
            None => None,
        };
        Some(Depthwise {
            simd,
            shape: DwShape {
                ih: x[2],
                iw: x[3],
                oh: y[2],
                ow: y[3],
                kh: g.kernel[0],
                kw: g.kernel[1],
                sh: g.strides[0],
                sw: g.strides[1],
                dh: g.dilations[0],
                dw: g.dilations[1],
                pt: g.pads[0],
                pl: g.pads[1],
            },
            batch: x[0],
            channels: x[1],
            weights: AlignedF32::from_slice(w),
            epilogue: Epilogue {
                scale: None,
                bias,
                residual: residual_input(ins),
                activation,
            },
        })
    }
}

impl<S: Simd> Kernel for Depthwise<S> {
    fn name(&self) -> &'static str {
        S::names().depthwise
    }
    fn packed_bytes(&self) -> usize {
        self.weights.bytes()
    }
    fn run(
        &self,
        ins: &[Input],
        outs: &mut [Output],
        _: &mut [f32],
        threads: &Threads,
    ) -> Result<()> {
        let s = &self.shape;
        let (ihw, ohw, taps) = (s.ih * s.iw, s.oh * s.ow, s.kh * s.kw);
        let x = ins[0].f32()?;
        let res = if self.epilogue.residual {
            Some(ins[ins.len() - 1].f32()?)
        } else {
            None
        };
        let planes = self.batch * self.channels;
        let y = outs[0].f32()?;
        let workers = threads.count().min(planes).max(1);
        let per = planes.div_ceil(workers);
        let mut parts: SmallVec<[(usize, &mut [f32]); 8]> = SmallVec::new();
        for (i, chunk) in y[..planes * ohw].chunks_mut(per * ohw).enumerate() {
            parts.push((i * per, chunk));
        }
        let w = self.weights.as_slice();
        threads.for_each_part(&mut parts, |(p0, ys)| {
            for (i, yp) in ys.chunks_mut(ohw).enumerate() {
                let p = *p0 + i;
                let ch = p % self.channels;
                let r = res.map(|r| &r[p * ohw..][..ohw]);
                self.simd.depthwise_plane(
                    s,
                    ch,
                    &x[p * ihw..][..ihw],
                    &w[ch * taps..][..taps],
                    yp,
                    &self.epilogue,
                    r,
                );
            }
        });
        Ok(())
    }
}
