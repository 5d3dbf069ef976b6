//! Integer depthwise convolution (QLinearConv with one input channel per
//! group), any kernel, stride, dilation and padding. Portable code: each
//! channel's plane is copied once into scratch with the zero point in the
//! border, so every tap reads a whole output row without bounds checks and
//! the compiler vectorizes the row loops (u8 widened to i32) for the ISA
//! of the token it runs under ([`QTile::vectorized`]); no hand-written
//! intrinsics yet.

use smallvec::SmallVec;

use super::contract::{Input, Kernel, Output, Requantize, Threads};
use super::qgemm::{qconv_parts, IsaWork, QConvParts, QTile};
use super::Operand;
use crate::error::{Error, Result};
use crate::ir::{ConvGeometry, Op, TypeInfo};

#[derive(Debug)]
pub struct QDepthwise<T: QTile> {
    tile: T,
    geometry: ConvGeometry,
    /// Per image: channels, input H and W, output H and W.
    channels: usize,
    input: [usize; 2],
    output: [usize; 2],
    x_zero: u8,
    /// Per channel: kh·kw weights as i32.
    weights: Vec<i32>,
    /// Bias minus `x_zero · Σ w`, per channel.
    bias: Vec<i32>,
    requant: Vec<Requantize>,
}

impl<T: QTile> QDepthwise<T> {
    pub fn build(tile: T, op: &Op, ins: &[Operand], outs: &[TypeInfo]) -> Option<Self> {
        let QConvParts {
            geometry: g,
            x,
            weights: wv,
            bias,
            requant,
        } = qconv_parts(op, ins)?;
        let xs = &ins[0].info.shape;
        let w = &ins[1].info.shape;
        if !(g.groups == xs[1] && w[0] == g.groups && w[1] == 1) {
            return None;
        }
        let taps = g.kernel[0] * g.kernel[1];
        let bias = bias.map_or_else(|| vec![0; g.groups], <[i32]>::to_vec);
        let bias = wv
            .chunks_exact(taps)
            .zip(&bias)
            .map(|(w, &b)| b.wrapping_sub(x.zero_point * w.iter().map(|&v| v as i32).sum::<i32>()))
            .collect();
        let os = &outs[0].shape;
        Some(QDepthwise {
            tile,
            geometry: g.clone(),
            channels: xs[1],
            input: [xs[2], xs[3]],
            output: [os[2], os[3]],
            x_zero: x.zero_point as u8,
            weights: wv.iter().map(|&v| v as i32).collect(),
            bias,
            requant,
        })
    }

    /// Height and width of each stride phase of the padded plane (one
    /// spare row, so every tap's run of reads stays inside), and the
    /// phase count `sh · sw`.
    fn phases(&self) -> (usize, usize, usize) {
        let (g, [ih, iw]) = (&self.geometry, self.input);
        let [sh, sw] = g.strides;
        let (ph, pw) = (ih + g.pads[0] + g.pads[2], iw + g.pads[1] + g.pads[3]);
        (ph.div_ceil(sh) + 1, pw.div_ceil(sw), sh * sw)
    }

    /// Accumulators of one plane: output rows at the phases' row stride,
    /// rounded up to whole vectors.
    fn acc_len(&self) -> usize {
        let (_, cols, _) = self.phases();
        ((self.output[0] - 1) * cols + self.output[1]).next_multiple_of(VECTOR)
    }

    /// Scratch words (u32) of one worker: the phase planes (and a vector
    /// of slack, read into the dropped accumulators), the accumulators,
    /// then their requantized bytes.
    fn worker_words(&self) -> usize {
        let (rows, cols, n) = self.phases();
        (rows * cols * n + VECTOR).div_ceil(4) + self.acc_len() + self.acc_len().div_ceil(4)
    }

    /// Planes `first..` of the batch (`x` all of it) into `ys`.
    #[inline(always)]
    fn planes(&self, first: usize, x: &[u8], ys: &mut [u8], scratch: &mut [u32]) {
        let in_plane = self.input[0] * self.input[1];
        let out_plane = self.output[0] * self.output[1];
        for (k, yp) in ys.chunks_exact_mut(out_plane).enumerate() {
            let p = first + k;
            self.plane(
                p % self.channels,
                &x[p * in_plane..][..in_plane],
                yp,
                scratch,
            );
        }
    }

    /// Channel `ch` of one image: plane `x` into plane `y`. The padded
    /// plane is split into its `sh · sw` stride phases (phase `(a, b)`
    /// holds padded pixels `(i·sh + a, j·sw + b)`), so every tap of any
    /// stride reads one contiguous run of a phase, accumulated over the
    /// whole output at once (the columns past `ow` are computed and
    /// dropped).
    #[inline(always)]
    fn plane(&self, ch: usize, x: &[u8], y: &mut [u8], scratch: &mut [u32]) {
        let g = &self.geometry;
        let [ih, iw] = self.input;
        let [oh, ow] = self.output;
        let [sh, sw] = g.strides;
        let (rows, cols, n) = self.phases();
        let phase_len = rows * cols;
        let (phase_words, rest) = scratch.split_at_mut((phase_len * n + VECTOR).div_ceil(4));
        let phases: &mut [u8] =
            &mut bytemuck::cast_slice_mut(phase_words)[..phase_len * n + VECTOR];
        phases.fill(self.x_zero);
        let len = self.acc_len();
        let (acc, bytes) = rest.split_at_mut(len);
        for (r, row) in x.chunks_exact(iw).take(ih).enumerate() {
            let pr = r + g.pads[0];
            let (a, i) = (pr % sh, pr / sh);
            if sw == 1 {
                phases[a * phase_len + i * cols + g.pads[1]..][..iw].copy_from_slice(row);
                continue;
            }
            if sw == 2 {
                split_pair(phases, phase_len, (a, i, cols, g.pads[1]), row);
                continue;
            }
            // Pixel `cx` goes to column phase `(pl + cx) % sw`, index
            // `(pl + cx) / sw`: a run of `sw` pixels fills one column of
            // every phase (whole runs first, then the ragged tail).
            let pl = g.pads[1];
            let at = |u: usize| {
                let pc = pl + u;
                (a * sw + pc % sw) * phase_len + i * cols + pc / sw
            };
            let starts: SmallVec<[usize; 4]> = (0..sw).map(at).collect();
            let whole = iw / sw * sw;
            for (t, run) in row[..whole].chunks_exact(sw).enumerate() {
                for (&v, &start) in run.iter().zip(&starts) {
                    phases[start + t] = v;
                }
            }
            for (u, &v) in row.iter().enumerate().skip(whole) {
                phases[at(u)] = v;
            }
        }
        let acc: &mut [i32] = bytemuck::cast_slice_mut(acc);
        acc.fill(self.bias[ch]);
        let [kh, kw] = g.kernel;
        let w = &self.weights[ch * kh * kw..][..kh * kw];
        for ky in 0..kh {
            let (dy, a) = (ky * g.dilations[0] / sh, ky * g.dilations[0] % sh);
            for kx in 0..kw {
                let (dx, b) = (kx * g.dilations[1] / sw, kx * g.dilations[1] % sw);
                // |w · x| ≤ 128 · 255 fits an i16: a 16-bit multiply
                // (twice the lanes of a 32-bit one), widened for the sum.
                let wt = w[ky * kw + kx] as i16;
                let src = &phases[(a * sw + b) * phase_len + dy * cols + dx..][..len];
                // `len` is whole vectors: the vector loop leaves no tail.
                for (o, &v) in acc.iter_mut().zip(src) {
                    *o += (wt * v as i16) as i32;
                }
            }
        }
        let rq = self.requant[ch];
        let bytes: &mut [u8] = &mut bytemuck::cast_slice_mut(bytes)[..len];
        self.tile.requantize(acc, 0, rq, bytes);
        for (out, row) in y.chunks_exact_mut(ow).zip(bytes.chunks(cols)) {
            out.copy_from_slice(&row[..ow]);
        }
        debug_assert!(oh * ow == y.len());
    }
}

/// Accumulators per vector step (16 i32: one AVX-512 register, four NEON).
const VECTOR: usize = 16;

/// Row `i` of row phase `a` for stride-2 columns: even pixels of `row` to
/// one column phase, odd ones to the other (which is which depends on the
/// left pad `pl`), as one pass the compiler vectorizes.
#[inline(always)]
fn split_pair(
    phases: &mut [u8],
    phase_len: usize,
    (a, i, cols, pl): (usize, usize, usize, usize),
    row: &[u8],
) {
    let even = a * 2 + pl % 2;
    let odd = a * 2 + (pl + 1) % 2;
    let (lo, hi) = phases.split_at_mut(even.max(odd) * phase_len);
    let (even_plane, odd_plane) = if even < odd {
        (&mut lo[even * phase_len..], &mut hi[..])
    } else {
        (&mut hi[..], &mut lo[odd * phase_len..])
    };
    let n = row.len();
    let de = &mut even_plane[i * cols + pl / 2..][..n.div_ceil(2)];
    let dodd = &mut odd_plane[i * cols + pl.div_ceil(2)..][..n / 2];
    for ((pair, e), o) in row.chunks_exact(2).zip(de.iter_mut()).zip(dodd.iter_mut()) {
        *e = pair[0];
        *o = pair[1];
    }
    if n % 2 == 1 {
        de[n / 2] = row[n - 1];
    }
}

/// One worker's share: its first plane, its output planes and scratch.
type PlanePart<'a> = (usize, &'a mut [u8], &'a mut [u32]);

/// One worker's planes ([`QDepthwise::planes`]).
struct DwPlanes<'a, T: QTile> {
    kernel: &'a QDepthwise<T>,
    first: usize,
    x: &'a [u8],
    ys: &'a mut [u8],
    scratch: &'a mut [u32],
}

impl<T: QTile> IsaWork for DwPlanes<'_, T> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        self.kernel
            .planes(self.first, self.x, self.ys, self.scratch);
    }
}

impl<T: QTile> Kernel for QDepthwise<T> {
    fn name(&self) -> &'static str {
        T::DEPTHWISE_NAME
    }
    fn scratch_bytes(&self, threads: usize) -> usize {
        threads.max(1) * (self.worker_words() * 4).next_multiple_of(64)
    }
    fn packed_bytes(&self) -> usize {
        (self.weights.len() + self.bias.len()) * 4
    }
    fn run(
        &self,
        ins: &[Input],
        outs: &mut [Output],
        scratch: &mut [f32],
        threads: &Threads,
    ) -> Result<()> {
        let (x, y) = (ins[0].u8()?, outs[0].u8()?);
        let (in_plane, out_plane) = (
            self.input[0] * self.input[1],
            self.output[0] * self.output[1],
        );
        let planes = y.len() / out_plane.max(1);
        let per_worker = (self.worker_words() * 4).next_multiple_of(64) / 4;
        let workers = threads.count().min(planes).max(1);
        let scratch: &mut [u32] = bytemuck::cast_slice_mut(scratch);
        if scratch.len() < workers * per_worker || x.len() < planes * in_plane {
            return Err(Error::Input(
                "QLinearConv depthwise buffers too small".into(),
            ));
        }
        let per = planes.div_ceil(workers);
        let mut parts: smallvec::SmallVec<[PlanePart; 8]> = y
            .chunks_mut(per * out_plane)
            .zip(scratch.chunks_exact_mut(per_worker))
            .enumerate()
            .map(|(i, (ys, s))| (i * per, ys, s))
            .collect();
        threads.for_each_part(&mut parts, |(first, ys, s)| {
            self.tile.vectorized(DwPlanes {
                kernel: self,
                first: *first,
                x,
                ys,
                scratch: s,
            })
        });
        Ok(())
    }
}
