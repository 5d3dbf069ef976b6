//! Integer depthwise convolution (QLinearConv with one input channel per
//! group), any kernel, stride, dilation and padding. Portable code the
//! compiler vectorizes (u8 widened to i16 products, summed in i32) for the
//! ISA of the token it runs under ([`QTile::vectorized`]); no hand-written
//! intrinsics yet. Two layouts:
//! - wide planes: each channel's plane is copied once into scratch with the
//!   zero point in the border, split into its stride phases, so every tap
//!   reads a whole output row without bounds checks;
//! - narrow planes (at most [`BLOCKED_MAX_OW`] columns, the 7×7 and 14×14
//!   maps of a mobile net's later stages, where per-plane setup cost more
//!   than the taps): [`BLOCK`] channels interleaved per pixel, so the
//!   vector lanes are channels and every output pixel is one pass over its
//!   taps.

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
    /// Whether planes run channel-blocked ([`QDepthwise::block`]).
    blocked: bool,
}

/// Channels interleaved per pixel on the narrow-plane path (one i32 lane
/// each in an AVX-512 register, four NEON ones).
const BLOCK: usize = 16;

/// Widest output rows run channel-blocked: EfficientNet-Lite0 int8's 5×5
/// depthwise on 1152 channels of 7×7 took 0.69 ms plane by plane on AVX2.
const BLOCKED_MAX_OW: usize = 14;

/// Most taps of a channel-blocked kernel (its lane weights sit on the stack).
const BLOCKED_MAX_TAPS: usize = 49;

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
        let blocked = os[3] <= BLOCKED_MAX_OW && taps <= BLOCKED_MAX_TAPS;
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
            blocked,
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
    /// Channel-blocked: the interleaved padded planes, then the sums of
    /// every channel's plane.
    fn worker_words(&self) -> usize {
        if self.blocked {
            let (ph, pw) = self.padded();
            return (ph * pw * BLOCK).div_ceil(4) + BLOCK * self.output[0] * self.output[1];
        }
        let (rows, cols, n) = self.phases();
        (rows * cols * n + VECTOR).div_ceil(4) + self.acc_len() + self.acc_len().div_ceil(4)
    }

    /// Height and width of the padded input plane.
    fn padded(&self) -> (usize, usize) {
        let (g, [ih, iw]) = (&self.geometry, self.input);
        (ih + g.pads[0] + g.pads[2], iw + g.pads[1] + g.pads[3])
    }

    /// Planes `first..` of the batch (`x` all of it) into `ys`.
    #[inline(always)]
    fn planes(&self, first: usize, x: &[u8], ys: &mut [u8], scratch: &mut [u32]) {
        let in_plane = self.input[0] * self.input[1];
        let out_plane = self.output[0] * self.output[1];
        if self.blocked {
            // Blocks of up to BLOCK channels, none across two images.
            let count = ys.len() / out_plane.max(1);
            let mut k = 0;
            while k < count {
                let (p, ch) = (first + k, (first + k) % self.channels);
                let n = BLOCK.min(self.channels - ch).min(count - k);
                let xs = &x[p * in_plane..][..n * in_plane];
                self.block(ch, xs, &mut ys[k * out_plane..][..n * out_plane], scratch);
                k += n;
            }
            return;
        }
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

impl<T: QTile> QDepthwise<T> {
    /// Channels `ch..ch + n` of one image (`x`, `n` planes) into their
    /// output planes `y`: the planes interleaved [`BLOCK`] channels per
    /// padded pixel (zero point in the border), each output pixel summed
    /// over its taps with one lane per channel, then each channel's sums
    /// requantized with its own parameters.
    #[inline(always)]
    fn block(&self, ch: usize, x: &[u8], y: &mut [u8], scratch: &mut [u32]) {
        let g = &self.geometry;
        let ([ih, iw], [oh, ow]) = (self.input, self.output);
        let (ph, pw) = self.padded();
        let ([kh, kw], [sh, sw], [dh, dw]) = (g.kernel, g.strides, g.dilations);
        let (taps, out_plane) = (kh * kw, oh * ow);
        let n = x.len() / (ih * iw).max(1);
        let (pad_words, rest) = scratch.split_at_mut((ph * pw * BLOCK).div_ceil(4));
        let pad: &mut [u8] = &mut bytemuck::cast_slice_mut(pad_words)[..ph * pw * BLOCK];
        pad.fill(self.x_zero);
        for (lane, plane) in x.chunks_exact(ih * iw).enumerate() {
            for (r, row) in plane.chunks_exact(iw).enumerate() {
                let at = ((r + g.pads[0]) * pw + g.pads[1]) * BLOCK + lane;
                for (d, &v) in pad[at..].iter_mut().step_by(BLOCK).zip(row) {
                    *d = v;
                }
            }
        }
        // |w · x| ≤ 128 · 255 fits an i16 (see `plane`).
        let mut w = [[0i16; BLOCK]; BLOCKED_MAX_TAPS];
        for (lane, filter) in self.weights[ch * taps..][..n * taps]
            .chunks_exact(taps)
            .enumerate()
        {
            for (t, &v) in filter.iter().enumerate() {
                w[t][lane] = v as i16;
            }
        }
        let mut bias = [0i32; BLOCK];
        bias[..n].copy_from_slice(&self.bias[ch..ch + n]);
        // Each tap's pixel relative to the window's first, in blocks.
        let mut offsets = [0usize; BLOCKED_MAX_TAPS];
        for (t, off) in offsets.iter_mut().take(taps).enumerate() {
            *off = (t / kw) * dh * pw + (t % kw) * dw;
        }
        let (w, offsets) = (&w[..taps], &offsets[..taps]);
        let pixels: &[[u8; BLOCK]] = pad.as_chunks().0;
        let sums: &mut [i32] = &mut bytemuck::cast_slice_mut(rest)[..BLOCK * out_plane];
        for oy in 0..oh {
            for ox in 0..ow {
                let mut sum = bias;
                let first = oy * sh * pw + ox * sw;
                for (wt, &off) in w.iter().zip(offsets) {
                    let v = &pixels[first + off];
                    for l in 0..BLOCK {
                        sum[l] += (wt[l] * v[l] as i16) as i32;
                    }
                }
                let o = oy * ow + ox;
                for (l, &s) in sum.iter().enumerate().take(n) {
                    sums[l * out_plane + o] = s;
                }
            }
        }
        for (l, yp) in y.chunks_exact_mut(out_plane).enumerate() {
            let acc = &sums[l * out_plane..][..out_plane];
            self.tile.requantize(acc, 0, self.requant[ch + l], yp);
        }
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
        // Whole channel blocks per worker when blocked.
        let unit = if self.blocked { BLOCK } else { 1 };
        let per = planes.div_ceil(workers).next_multiple_of(unit);
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
