//! Depthwise convolution and pooling, written once for every ISA. Each
//! plane is copied with its border into a padded, phase-split buffer, so
//! every tap of every stride reads contiguous lanes; the ISA's block kernel
//! then accumulates all taps of 8 rows × 16 lanes in registers. Planes at
//! most [`BLOCKED_MAX_OW`] wide, and strided planes of at least
//! [`BLOCKED_MIN_CHANNELS`] channels, are interleaved 16 channels per pixel
//! instead (a strip of rows at a time, moved in 8×8 transposes), so the
//! lanes are channels.

use super::contract::{
    plane_parts, AlignedF32, Epilogue, Input, Kernel, Output, ReadOffsets, RegisterActivation,
    Threads, WorkerPart,
};
use super::conv::dims4;
use super::simd::Simd;
use super::{residual_input, Operand};
use crate::error::Result;
use crate::ir::{ConvGeometry, PoolGeometry, PoolKind, UnaryOp};

/// What a plane computes over its window: a depthwise convolution (also
/// average pooling, with equal weights) or a max.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Window {
    WeightedSum,
    Max,
}

/// Geometry of a depthwise plane (one input and one output channel).
#[derive(Clone, Copy, Debug)]
pub struct DwShape {
    pub window: Window,
    /// Output columns and rows computed per step: padding is laid out so a
    /// step never reads outside the buffer.
    pub step_cols: usize,
    pub step_rows: usize,
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

/// Output columns computed per step: one AVX-512 register, two AVX2 or four
/// NEON registers. Rows are padded so every step computes all lanes.
pub const LANES: usize = 16;

/// Output rows computed together: eight independent FMA chains per tap,
/// enough to cover the FMA latency on cores with two FMA pipes.
pub const ROWS: usize = 8;

impl Window {
    /// The value of padding: it never wins a maximum nor adds to a sum.
    fn pad_value(self) -> f32 {
        match self {
            Window::Max => f32::NEG_INFINITY,
            Window::WeightedSum => 0.0,
        }
    }
}

/// The buffers of one plane: input `x` (`ih*iw`), taps `w` (`kh*kw`),
/// output `y` (`oh*ow`), optional residual like `y`, and `pad`, at least
/// [`DwShape::pad_words`] of scratch; `offsets` from [`DwShape::tap_offsets`].
pub struct PlaneIo<'a> {
    pub x: &'a [f32],
    pub w: &'a [f32],
    pub offsets: &'a [usize],
    pub y: &'a mut [f32],
    pub res: Option<&'a [f32]>,
    pub pad: &'a mut [f32],
    /// Whether `pad` needs its border written: false when it holds the
    /// last plane of this shape, whose border stays (only the interior is
    /// rewritten).
    pub border: bool,
}

impl DwShape {
    /// The plane of an `x` → `y` NCHW window op with `[kernel, strides,
    /// dilations]` and `pads` (top, left, bottom, right), computing `steps`
    /// (`[cols, rows]`) outputs at a time.
    pub fn new(
        window: Window,
        steps: [usize; 2],
        x: [usize; 4],
        y: [usize; 4],
        [kernel, strides, dilations]: [[usize; 2]; 3],
        pads: [usize; 4],
    ) -> DwShape {
        DwShape {
            window,
            step_cols: steps[0],
            step_rows: steps[1],
            ih: x[2],
            iw: x[3],
            oh: y[2],
            ow: y[3],
            kh: kernel[0],
            kw: kernel[1],
            sh: strides[0],
            sw: strides[1],
            dh: dilations[0],
            dw: dilations[1],
            pt: pads[0],
            pl: pads[1],
        }
    }

    /// Padded rows: every row a tap can reach, with the output rows
    /// rounded up to whole steps.
    fn pad_rows(&self) -> usize {
        let oh = self.oh.div_ceil(self.step_rows) * self.step_rows;
        ((oh - 1) * self.sh + (self.kh - 1) * self.dh + 1).max(self.ih + self.pt)
    }
    /// Width of one phase row: the output columns rounded up to whole
    /// steps, plus the reach of the taps.
    pub fn phase_width(&self) -> usize {
        self.ow.div_ceil(self.step_cols) * self.step_cols + ((self.kw - 1) * self.dw) / self.sw + 1
    }
    /// Words of one padded row (all its phases).
    pub fn row_words(&self) -> usize {
        self.sw * self.phase_width()
    }
    /// Offset of tap `(ky, kx)` relative to output (0, 0) in a padded plane.
    pub fn tap_offset(&self, ky: usize, kx: usize) -> usize {
        let c = kx * self.dw;
        ky * self.dh * self.row_words() + (c % self.sw) * self.phase_width() + c / self.sw
    }
    /// Where each tap reads in the padded plane, relative to output (0, 0).
    pub fn tap_offsets(&self) -> Vec<usize> {
        (0..self.kh * self.kw)
            .map(|t| self.tap_offset(t / self.kw, t % self.kw))
            .collect()
    }
    /// Scratch words of the padded copy of one plane.
    pub fn pad_words(&self) -> usize {
        self.pad_rows() * self.row_words()
    }
}

/// Planes at most this wide run channel-blocked ([`Depthwise`]): the
/// lanes of a plane-wise window would be mostly padding. At 14 columns
/// (one eighth padding) the interleaving copies cost more than they save.
pub const BLOCKED_MAX_OW: usize = 10;

/// Wider planes at strides above 1 run channel-blocked too from this many
/// channels: a stride costs the plane layout a phase split of every input
/// row and output rows padded to 16 lanes, the channel-blocked one
/// neither (measured 23–32 % faster on stride-2 layers 7 to 28 columns
/// wide, the same at 56). At stride 1 the interleaving costs more than it
/// saves. Two blocks keep two workers busy; fewer channels run
/// plane-wise, split by plane.
pub const BLOCKED_MIN_CHANNELS: usize = 2 * LANES;

/// Bytes a channel block's padded strip aims at, so that with the tap
/// weights and the outputs beside it, it stays in a 32 KiB L1 data cache.
/// A strip holds at least the rows one output row reads, which is more
/// on wide planes (a 3×3 at stride 2 on 112 columns reads 3 padded rows
/// of 113 pixels: 22 KiB).
const BLOCKED_STRIP_BYTES: usize = 16 * 1024;

/// The padded copy of [`LANES`] channels in the channel-blocked layout,
/// one strip of rows at a time: `[row][col][lane]`, every row a tap of
/// `strip` output rows can reach and every column a tap of an output (the
/// columns rounded up to whole [`ROWS`] steps) can reach.
#[derive(Clone, Copy, Debug)]
struct BlockedPad {
    /// Output rows per strip.
    strip: usize,
    /// Padded input rows a strip reads.
    rows: usize,
    cols: usize,
}

impl BlockedPad {
    fn new(s: &DwShape) -> BlockedPad {
        let ow = s.ow.div_ceil(ROWS) * ROWS;
        let cols = ((ow - 1) * s.sw + (s.kw - 1) * s.dw + 1).max(s.iw + s.pl);
        let fit = BLOCKED_STRIP_BYTES / (cols * LANES * 4);
        let strip = (fit.saturating_sub(Self::reach(s)) / s.sh + 1).min(s.oh);
        BlockedPad {
            strip,
            rows: Self::rows_read(s, strip),
            cols,
        }
    }
    /// Input rows one output row reads.
    fn reach(s: &DwShape) -> usize {
        (s.kh - 1) * s.dh + 1
    }
    /// Padded input rows that `outputs >= 1` output rows read.
    fn rows_read(s: &DwShape, outputs: usize) -> usize {
        (outputs - 1) * s.sh + Self::reach(s)
    }
    fn words(self) -> usize {
        self.rows * self.cols * LANES
    }
    /// Where each tap reads, relative to output (0, 0) of a strip.
    fn tap_offsets(self, s: &DwShape) -> Vec<usize> {
        (0..s.kh * s.kw)
            .map(|t| ((t / s.kw) * s.dh * self.cols + (t % s.kw) * s.dw) * LANES)
            .collect()
    }
    /// Fills the strip of output rows from `oy`: padded input rows from
    /// `oy * sh`, the first `kept` of which the previous strip left at the
    /// top of `pad` (at least [`BlockedPad::words`]). Each row gets the `n
    /// <= LANES` planes of `x` (`ih*iw` each) interleaved, with a border of
    /// `fill` (and unused lanes of `fill`, so no stale value slows the
    /// arithmetic). Whole groups of 8 channels and 8 columns move as
    /// [`Simd::transpose8`] blocks.
    #[allow(clippy::too_many_arguments)]
    fn fill_strip<S: Simd>(
        self,
        simd: S,
        s: &DwShape,
        x: &[f32],
        n: usize,
        pad: &mut [f32],
        oy: usize,
        kept: usize,
        fill: f32,
    ) {
        let row_words = self.cols * LANES;
        let ihw = s.ih * s.iw;
        let (full_channels, full_cols) = (n / 8 * 8, s.iw / 8 * 8);
        let rows = Self::rows_read(s, self.strip.min(s.oh - oy));
        for r in kept..rows {
            let row = &mut pad[r * row_words..][..row_words];
            let iy = (oy * s.sh + r).wrapping_sub(s.pt);
            if iy >= s.ih || n < LANES {
                row.fill(fill);
            } else {
                row[..s.pl * LANES].fill(fill);
                row[(s.pl + s.iw) * LANES..].fill(fill);
            }
            if iy >= s.ih {
                continue;
            }
            let at = |ix: usize| (s.pl + ix) * LANES;
            for c0 in (0..full_channels).step_by(8) {
                for ix in (0..full_cols).step_by(8) {
                    let src = &x[c0 * ihw + iy * s.iw + ix..];
                    simd.transpose8(src, ihw, &mut row[at(ix) + c0..], LANES);
                }
            }
            for c in 0..n {
                let first = if c < full_channels { full_cols } else { 0 };
                if first == s.iw {
                    continue;
                }
                let src = &x[c * ihw + iy * s.iw..][first..s.iw];
                for (d, &v) in row[at(first) + c..].iter_mut().step_by(LANES).zip(src) {
                    *d = v;
                }
            }
        }
    }
}

/// What every output of a channel block computes: its taps and lane
/// weights, the epilogue applied in registers, and the activation
/// (applied after a residual).
struct BlockWindow<'a> {
    offsets: ReadOffsets<'a>,
    w: &'a [f32],
    clamp: BlockClamp,
    act: RegisterActivation,
}

/// `y = epilogue(depthwise(x, w))` for channel `ch`.
///
/// The plane is first copied into `pad` (its border written only when
/// `io.border`), each row split into `sw` phases (column `c` goes to phase
/// `c % sw` at `c / sw`), so every tap of every stride reads contiguous
/// lanes. Then the ISA's [`Simd::dw_window`] accumulates all taps of
/// [`ROWS`] rows of [`LANES`] outputs in registers (independent FMA chains
/// hide the latency) and stores them into `io.y`, with the bias and
/// activation applied unless a residual must come first; other epilogues
/// run on the finished rows.
#[inline(always)]
pub fn plane<S: Simd>(simd: S, s: &DwShape, ch: usize, io: PlaneIo, e: &Epilogue) {
    let row_words = s.row_words();
    let pad = &mut io.pad[..s.pad_words()];
    pad_plane(s, io.x, pad, io.border.then_some(s.window.pad_value()));
    let row_step = s.sh * row_words;
    let taps = ReadOffsets::new(io.offsets);
    let fused = e.in_registers().map(|act| BlockClamp {
        bias: [e.bias.as_ref().map_or(0.0, |b| b.as_slice()[ch]); LANES],
        act,
    });
    // Without a residual the ISA kernel applies the whole fused epilogue;
    // with one, the residual must come before the clamp, so it is done here.
    let in_kernel = fused.filter(|_| io.res.is_none());
    let clamp = in_kernel.unwrap_or(BlockClamp::NONE);
    for oy in (0..s.oh).step_by(ROWS) {
        let base = oy * row_step;
        let rows = ROWS.min(s.oh - oy);
        for ox in (0..s.ow).step_by(LANES) {
            let out = DwOut {
                y: &mut io.y[oy * s.ow + ox..],
                step: s.ow,
                cols: LANES.min(s.ow - ox),
                rows,
            };
            simd.dw_window(
                s.window,
                false,
                pad,
                base + ox,
                row_step,
                &taps,
                io.w,
                &clamp,
                out,
            );
        }
        let block = &mut io.y[oy * s.ow..(oy + rows) * s.ow];
        match (fused, io.res) {
            (Some(_), None) => {}
            (Some(c), Some(res)) => {
                let res = &res[oy * s.ow..(oy + rows) * s.ow];
                for (y, &x) in block.iter_mut().zip(res) {
                    *y = c.act.apply(*y + c.bias[0] + x);
                }
            }
            (None, res) => {
                for (r, y) in block.chunks_exact_mut(s.ow).enumerate() {
                    let res = res.map(|x| &x[(oy + r) * s.ow..][..s.ow]);
                    e.apply_row(ch, y, res);
                }
            }
        }
    }
}

/// Where an ISA depthwise block stores its outputs: `rows` rows of `cols`
/// values, `step` apart in `y`.
pub struct DwOut<'a> {
    pub y: &'a mut [f32],
    pub step: usize,
    pub cols: usize,
    pub rows: usize,
}

/// The epilogue `act(acc + bias[l])` of a block of outputs, applied in
/// registers: one bias per lane (all equal when the lanes are the columns
/// of one channel's plane).
#[derive(Clone, Copy, Debug)]
pub struct BlockClamp {
    pub bias: [f32; LANES],
    pub act: RegisterActivation,
}

impl BlockClamp {
    /// Leaves the sums as they are.
    pub const NONE: BlockClamp = BlockClamp {
        bias: [0.0; LANES],
        act: RegisterActivation::IDENTITY,
    };
}

/// Copies plane `x` into `pad` (at least [`DwShape::pad_words`]), each row
/// split into `sw` phases, after filling all of `pad` with `fill` if given
/// (the border; otherwise `pad` keeps the border of an earlier plane).
#[inline(always)]
pub fn pad_plane(s: &DwShape, x: &[f32], pad: &mut [f32], fill: Option<f32>) {
    let (pw, phases, row_words) = (s.phase_width(), s.sw, s.row_words());
    let pad = &mut pad[..s.pad_words()];
    if let Some(fill) = fill {
        pad.fill(fill);
    }
    for iy in 0..s.ih {
        let src = &x[iy * s.iw..][..s.iw];
        let dst = &mut pad[(iy + s.pt) * row_words..][..row_words];
        match phases {
            1 => dst[s.pl..s.pl + s.iw].copy_from_slice(src),
            2 => split_pairs(src, dst, pw, s.pl),
            _ => {
                // Column ix goes to phase (ix + pl) % sw; walk each phase
                // with a fixed step instead of dividing per element.
                for first in 0..phases.min(s.iw) {
                    let c = first + s.pl;
                    let row = &mut dst[(c % phases) * pw + c / phases..];
                    for (d, &v) in row.iter_mut().zip(src[first..].iter().step_by(phases)) {
                        *d = v;
                    }
                }
            }
        }
    }
}

/// Stride-2 de-interleave of one input row into the two phases of `dst`
/// (`pw` words each), the row starting at padded column `pl`.
#[inline(always)]
fn split_pairs(src: &[f32], dst: &mut [f32], pw: usize, pl: usize) {
    let (p0, p1) = dst.split_at_mut(pw);
    // Even source columns land in phase pl % 2, odd ones in the other.
    let (even, odd) = if pl.is_multiple_of(2) {
        (p0, p1)
    } else {
        (p1, p0)
    };
    let (even, odd) = (&mut even[pl / 2..], &mut odd[pl.div_ceil(2)..]);
    let pairs = src.chunks_exact(2);
    if let [last] = pairs.remainder() {
        even[src.len() / 2] = *last;
    }
    for ((e, o), pair) in even.iter_mut().zip(odd.iter_mut()).zip(pairs) {
        *e = pair[0];
        *o = pair[1];
    }
}

/// Depthwise Conv (groups = channels = outputs) for one ISA: channels are
/// split across workers, each plane run by the ISA's compiled loop. Narrow
/// planes (at most [`BLOCKED_MAX_OW`] columns, the 7×7 maps of a mobile
/// net's last stage) and strided ones with enough channels run
/// channel-blocked instead: [`LANES`] channels interleaved per pixel, so
/// the lanes are channels, none is padding and a stride costs nothing.
#[derive(Debug)]
pub struct Depthwise<S: Simd> {
    simd: S,
    shape: DwShape,
    batch: usize,
    channels: usize,
    /// `[channel][tap]`, or `[channel block][tap][lane]` when blocked.
    weights: AlignedF32,
    offsets: Vec<usize>,
    epilogue: Epilogue,
    /// The channel-blocked layout, when chosen.
    blocked: Option<BlockedPad>,
    /// Built from a pooling op (for the name only).
    pool: bool,
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
        let shape = DwShape::new(
            Window::WeightedSum,
            [LANES, ROWS],
            x,
            y,
            [g.kernel, g.strides, g.dilations],
            g.pads,
        );
        let epilogue = Epilogue {
            scale: None,
            bias,
            residual: residual_input(ins),
            activation,
        };
        Some(Depthwise::new(simd, shape, x, w, epilogue, false))
    }

    /// The kernel over `x`'s channels with taps `w` (`[channel][tap]`),
    /// in the layout its width asks for.
    fn new(
        simd: S,
        shape: DwShape,
        x: [usize; 4],
        w: &[f32],
        epilogue: Epilogue,
        pool: bool,
    ) -> Depthwise<S> {
        let channels = x[1];
        let taps = shape.kh * shape.kw;
        let blocked = (epilogue.in_registers().is_some()
            && shape.oh * shape.ow > 0
            && (shape.ow <= BLOCKED_MAX_OW || (shape.sw > 1 && channels >= BLOCKED_MIN_CHANNELS)))
            .then(|| BlockedPad::new(&shape));
        let (weights, offsets) = match blocked {
            Some(b) => {
                let blocks = channels.div_ceil(LANES);
                let mut packed = AlignedF32::zeros(blocks * taps * LANES);
                let dst = packed.as_mut_slice();
                for (c, taps_c) in w.chunks_exact(taps).take(channels).enumerate() {
                    let block = &mut dst[(c / LANES) * taps * LANES..][..taps * LANES];
                    for (t, &v) in taps_c.iter().enumerate() {
                        block[t * LANES + c % LANES] = v;
                    }
                }
                (packed, b.tap_offsets(&shape))
            }
            None => (AlignedF32::from_slice(w), shape.tap_offsets()),
        };
        Depthwise {
            simd,
            shape,
            batch: x[0],
            channels,
            weights,
            offsets,
            epilogue,
            blocked,
            pool,
        }
    }

    /// Max pooling (any padding, ceil mode, dilation), and average pooling
    /// where every window counts `kh*kw` inputs (no padding, or padding
    /// counted, and no window past the padded input).
    pub fn pool(simd: S, p: &PoolGeometry, x: &[usize], y: &[usize]) -> Option<Depthwise<S>> {
        let (x, y) = (dims4(x)?, dims4(y)?);
        let taps = p.kernel[0] * p.kernel[1];
        let window = match p.kind {
            PoolKind::Max => Window::Max,
            PoolKind::Avg { count_include_pad } => {
                let padded = p.pads.iter().any(|&v| v > 0);
                let overhang = (0..2).any(|a| {
                    (y[a + 2] - 1) * p.strides[a] + (p.kernel[a] - 1) * p.dilations[a] + 1
                        > x[a + 2] + p.pads[a] + p.pads[a + 2]
                });
                if (padded && !count_include_pad) || overhang {
                    return None;
                }
                Window::WeightedSum
            }
            // The reference kernel computes Lp norms.
            PoolKind::Lp { .. } => return None,
        };
        let shape = DwShape::new(
            window,
            [LANES, ROWS],
            x,
            y,
            [p.kernel, p.strides, p.dilations],
            p.pads,
        );
        let w = vec![1.0 / taps as f32; taps * x[1]];
        Some(Depthwise::new(
            simd,
            shape,
            x,
            &w,
            Epilogue::default(),
            true,
        ))
    }
}

impl<S: Simd> Kernel for Depthwise<S> {
    fn name(&self) -> &'static str {
        match (self.shape.window, self.pool, self.blocked.is_some()) {
            (Window::Max, _, _) => S::names().max_pool,
            (Window::WeightedSum, true, _) => S::names().avg_pool,
            (Window::WeightedSum, false, false) => S::names().depthwise,
            (Window::WeightedSum, false, true) => S::names().depthwise_blocked,
        }
    }
    fn packed_bytes(&self) -> usize {
        self.weights.bytes()
    }
    fn scratch_bytes(&self, threads: usize) -> usize {
        threads * self.pad_words() * 4
    }
    fn run(
        &self,
        ins: &[Input],
        outs: &mut [Output],
        scratch: &mut [f32],
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
        let y = &mut outs[0].f32()?[..planes * ohw];
        if let Some(b) = self.blocked {
            self.run_blocked(b, x, y, res, scratch, threads);
            return Ok(());
        }
        let mut parts = plane_parts(y, ohw, threads.count(), scratch, self.shape.pad_words());
        let w = self.weights.as_slice();
        threads.for_each_part(&mut parts, |(p0, ys, pad)| {
            for (i, yp) in ys.chunks_mut(ohw).enumerate() {
                let p = *p0 + i;
                let ch = p % self.channels;
                let io = PlaneIo {
                    x: &x[p * ihw..][..ihw],
                    w: &w[ch * taps..][..taps],
                    offsets: &self.offsets,
                    y: yp,
                    res: res.map(|r| &r[p * ohw..][..ohw]),
                    pad,
                    border: i == 0,
                };
                self.simd.depthwise_plane(s, ch, io, &self.epilogue);
            }
        });
        Ok(())
    }
}

impl<S: Simd> Depthwise<S> {
    /// Scratch words of one worker.
    fn pad_words(&self) -> usize {
        self.blocked
            .map_or(self.shape.pad_words(), BlockedPad::words)
    }

    /// The channel-blocked run: workers take whole blocks of [`LANES`]
    /// channels of each batch item.
    fn run_blocked(
        &self,
        b: BlockedPad,
        x: &[f32],
        y: &mut [f32],
        res: Option<&[f32]>,
        scratch: &mut [f32],
        threads: &Threads,
    ) {
        let s = &self.shape;
        let (c, ihw, ohw) = (self.channels, s.ih * s.iw, s.oh * s.ow);
        let blocks = c.div_ceil(LANES);
        let workers = threads.count().min(blocks).max(1);
        let per = blocks.div_ceil(workers);
        for (n, yn) in y.chunks_exact_mut(c * ohw).enumerate() {
            let xn = &x[n * c * ihw..][..c * ihw];
            let rn = res.map(|r| &r[n * c * ohw..][..c * ohw]);
            let mut parts: smallvec::SmallVec<[WorkerPart; 8]> = yn
                .chunks_mut(per * LANES * ohw)
                .zip(scratch.chunks_mut(b.words()))
                .enumerate()
                .map(|(i, (ys, pad))| (i * per, ys, pad))
                .collect();
            threads.for_each_part(&mut parts, |(first, ys, pad)| {
                for (i, yb) in ys.chunks_mut(LANES * ohw).enumerate() {
                    let block = *first + i;
                    let c0 = block * LANES;
                    let lanes = yb.len() / ohw;
                    let xb = &xn[c0 * ihw..][..lanes * ihw];
                    let rb = rn.map(|r| &r[c0 * ohw..][..lanes * ohw]);
                    self.channel_block(b, block, xb, yb, rb, pad);
                }
            });
        }
    }

    /// `y = epilogue(depthwise(x))` for the planes of channel block
    /// `block` (`x` and `y` hold its `lanes` planes), [`ROWS`] output
    /// pixels at a time with the channels in the lanes.
    fn channel_block(
        &self,
        b: BlockedPad,
        block: usize,
        x: &[f32],
        y: &mut [f32],
        res: Option<&[f32]>,
        pad: &mut [f32],
    ) {
        let s = &self.shape;
        let ohw = s.oh * s.ow;
        let lanes = y.len() / ohw;
        let fill = s.window.pad_value();
        let act = self
            .epilogue
            .in_registers()
            .unwrap_or(RegisterActivation::IDENTITY);
        let c0 = block * LANES;
        let mut clamp = BlockClamp {
            bias: [0.0; LANES],
            act,
        };
        if let Some(bias) = &self.epilogue.bias {
            clamp.bias[..lanes].copy_from_slice(&bias.as_slice()[c0..c0 + lanes]);
        }
        // A residual comes before the activation, so it is applied later.
        if res.is_some() {
            clamp.act = RegisterActivation::IDENTITY;
        }
        let taps = self.offsets.len();
        let window = BlockWindow {
            offsets: ReadOffsets::new(&self.offsets),
            w: &self.weights.as_slice()[block * taps * LANES..][..taps * LANES],
            clamp,
            act,
        };
        let mut acc = [0f32; ROWS * LANES];
        let row_words = b.cols * LANES;
        for (strip, oy) in (0..s.oh).step_by(b.strip).enumerate() {
            // The rows this strip shares with the previous one move up.
            let shift = b.strip * s.sh;
            let kept = if strip == 0 {
                0
            } else {
                b.rows.saturating_sub(shift)
            };
            if kept > 0 {
                pad.copy_within(shift * row_words..b.rows * row_words, 0);
            }
            b.fill_strip(self.simd, s, x, lanes, pad, oy, kept, fill);
            for dy in 0..b.strip.min(s.oh - oy) {
                let rows = &pad[dy * s.sh * row_words..];
                self.block_row(&window, rows, oy + dy, &mut acc, y, res);
            }
        }
    }

    /// Output row `oy` of a channel block from its padded input `rows`
    /// (from the first a tap reads), [`ROWS`] pixels at a time through
    /// `acc`: whole groups of 8 pixels × 8 channels go back to their planes
    /// as transposed blocks, the rest one value at a time.
    fn block_row(
        &self,
        window: &BlockWindow,
        rows: &[f32],
        oy: usize,
        acc: &mut [f32; ROWS * LANES],
        y: &mut [f32],
        res: Option<&[f32]>,
    ) {
        let s = &self.shape;
        let ohw = s.oh * s.ow;
        let lanes = y.len() / ohw;
        for ox in (0..s.ow).step_by(ROWS) {
            let pixels = ROWS.min(s.ow - ox);
            let out = DwOut {
                y: acc,
                step: LANES,
                cols: LANES,
                rows: pixels,
            };
            let (at, step) = (ox * s.sw * LANES, s.sw * LANES);
            let BlockWindow {
                offsets, w, clamp, ..
            } = window;
            self.simd
                .dw_window(s.window, true, rows, at, step, offsets, w, clamp, out);
            let first = oy * s.ow + ox;
            let full_channels = if pixels == ROWS { lanes / 8 * 8 } else { 0 };
            for c0 in (0..full_channels).step_by(8) {
                let ys = &mut y[c0 * ohw + first..];
                self.simd.transpose8(&acc[c0..], LANES, ys, ohw);
            }
            let rest = if full_channels < lanes { pixels } else { 0 };
            let tail = first + full_channels * ohw;
            for (r, pixel) in acc.chunks_exact(LANES).enumerate().take(rest) {
                let outs = y[tail + r..].iter_mut().step_by(ohw);
                outs.zip(&pixel[full_channels..lanes])
                    .for_each(|(o, &v)| *o = v);
            }
            // The residual comes before the activation (the kernel added
            // only the bias).
            if let Some(res) = res {
                for c in 0..lanes {
                    let at = c * ohw + first;
                    let ys = y[at..at + pixels].iter_mut().zip(&res[at..]);
                    ys.for_each(|(o, &a)| *o = window.act.apply(*o + a));
                }
            }
        }
    }
}
