//! Separable resampling of a frame's crop, in the frame's own orientation,
//! to three planes of the output's size: rows first (each source row the
//! output needs is read once, into row accumulators), then columns.

use super::{validate, Filter, Frame, Pixels, Plane, Rect, TensorSpec};
use crate::error::Result;
use crate::exec::kernels::frame::{FrameLoops, TAP_CHUNK};

/// What the tables depend on: the crop and whether the rotation swaps the
/// output's axes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Key {
    pub crop: Rect,
    pub swap: bool,
    pub filter: Filter,
}

/// For each output position along one axis, the consecutive source
/// positions (relative to the crop's start) it averages, and their weights.
#[derive(Debug)]
struct Taps {
    starts: Vec<usize>,
    /// `width` weights per output, zero past its last tap.
    weights: Vec<f32>,
    width: usize,
}

impl Taps {
    /// `from` source pixels to `to` output pixels with `filter`.
    fn new(from: usize, to: usize, filter: Filter) -> Taps {
        let ratio = from as f64 / to as f64;
        let taps = (0..to).map(|o| match filter {
            Filter::Area if ratio > 2.0 => {
                let (lo, hi) = (o as f64 * ratio, (o + 1) as f64 * ratio);
                let first = lo.floor() as usize;
                let last = (hi.ceil() as usize).min(from);
                let w = (first..last)
                    .map(|i| (hi.min(i as f64 + 1.0) - lo.max(i as f64)) / ratio)
                    .collect();
                (first, w)
            }
            Filter::Area => {
                let s = ((o as f64 + 0.5) * ratio - 0.5).clamp(0.0, (from - 1) as f64);
                let i = s.floor() as usize;
                let f = s - i as f64;
                (i, if f > 0.0 { vec![1.0 - f, f] } else { vec![1.0] })
            }
            Filter::Triangle => {
                // A tent as wide as the shrink factor (at least one pixel),
                // centred on the output pixel, normalized over the source
                // pixels inside the frame (PIL's BILINEAR).
                let (centre, radius) = ((o as f64 + 0.5) * ratio, ratio.max(1.0));
                let first = (centre - radius).floor().max(0.0) as usize;
                let last = ((centre + radius).ceil() as usize).min(from);
                let w: Vec<f64> = (first..last)
                    .map(|i| (1.0 - ((i as f64 + 0.5 - centre) / radius).abs()).max(0.0))
                    .collect();
                let sum: f64 = w.iter().sum();
                (first, w.iter().map(|v| v / sum).collect())
            }
        });
        Taps::padded(taps.collect())
    }

    fn padded(taps: Vec<(usize, Vec<f64>)>) -> Taps {
        let longest = taps.iter().map(|(_, w)| w.len()).max().unwrap_or(1);
        let width = longest.next_multiple_of(TAP_CHUNK);
        let mut weights = vec![0.0; taps.len() * width];
        for (o, (_, w)) in taps.iter().enumerate() {
            for (k, &v) in w.iter().enumerate() {
                weights[o * width + k] = v as f32;
            }
        }
        Taps {
            starts: taps.iter().map(|&(s, _)| s).collect(),
            weights,
            width,
        }
    }

    /// The same taps on a 4:2:0 chroma axis: source `x` of a crop starting
    /// at `x0` reads chroma `(x0 + x) / 2`, relative to `x0 / 2`; taps on
    /// the same chroma sample merge.
    fn chroma(&self, x0: usize) -> Taps {
        let taps = self.starts.iter().enumerate().map(|(o, &start)| {
            let w = &self.weights[o * self.width..][..self.width];
            let first = (x0 + start) / 2 - x0 / 2;
            let mut merged: Vec<f64> = Vec::new();
            for (k, &v) in w.iter().enumerate().filter(|(_, &v)| v != 0.0) {
                let at = (x0 + start + k) / 2 - x0 / 2 - first;
                merged.resize(merged.len().max(at + 1), 0.0);
                merged[at] += v as f64;
            }
            (first, merged)
        });
        Taps::padded(taps.collect())
    }

    /// For output `o` of a crop starting at row `y0`, the rows of a 4:2:0
    /// chroma plane (absolute) and weights: the luma rows halved, the two
    /// luma rows of one chroma row merged into one pass over it.
    fn chroma_rows(&self, o: usize, y0: usize) -> impl Iterator<Item = (usize, f32)> + '_ {
        let mut rows = self.of(o).map(move |(y, w)| ((y0 + y) / 2, w)).peekable();
        std::iter::from_fn(move || {
            let (row, mut weight) = rows.next()?;
            while let Some((_, more)) = rows.next_if(|&(next, _)| next == row) {
                weight += more;
            }
            Some((row, weight))
        })
    }

    /// Source positions and weights of output `o`.
    fn of(&self, o: usize) -> impl Iterator<Item = (usize, f32)> + '_ {
        let w = &self.weights[o * self.width..][..self.width];
        let start = self.starts[o];
        w.iter()
            .enumerate()
            .filter(|(_, &v)| v != 0.0)
            .map(move |(k, &v)| (start + k, v))
    }
}

/// The three resampled planes, row-major, `width` x `height` each.
pub(super) struct Planes<'a> {
    pub data: [&'a [f32]; 3],
    pub width: usize,
    pub height: usize,
    /// Whether the planes hold Y, U, V (else R, G, B).
    pub yuv: bool,
}

/// Tap tables and buffers for one frame geometry.
#[derive(Debug)]
pub(super) struct Resampler {
    key: Key,
    loops: FrameLoops,
    cols: Taps,
    chroma_cols: Taps,
    rows: Taps,
    width: usize,
    height: usize,
    /// Row accumulators of the three channels, each the crop's width plus
    /// room for the padded taps (zeros there).
    acc: [Vec<f32>; 3],
    /// A row of interleaved channels (packed pixels, NV21/NV12 chroma),
    /// summed as one run of bytes before it is split.
    interleaved: Vec<f32>,
    out: Vec<f32>,
}

/// Two chroma planes interleaved in one buffer (NV21, NV12, most Android
/// YUV_420_888): the plane at the lower address, the other one, and the
/// offset of U in a pair.
struct Interleaved<'p, 'a> {
    first: &'p Plane<'a>,
    second: &'p Plane<'a>,
    u_offset: usize,
}

fn interleaved<'p, 'a>(u: &'p Plane<'a>, v: &'p Plane<'a>) -> Option<Interleaved<'p, 'a>> {
    let (pu, pv) = (u.data.as_ptr() as usize, v.data.as_ptr() as usize);
    let pairs = u.pixel_stride == 2 && v.pixel_stride == 2 && u.row_stride == v.row_stride;
    (pairs && pu.abs_diff(pv) == 1).then_some({
        if pu < pv {
            Interleaved {
                first: u,
                second: v,
                u_offset: 0,
            }
        } else {
            Interleaved {
                first: v,
                second: u,
                u_offset: 1,
            }
        }
    })
}

impl Resampler {
    pub fn new(key: Key, spec: &TensorSpec, loops: FrameLoops) -> Result<Resampler> {
        let (width, height) = if key.swap {
            (spec.height, spec.width)
        } else {
            (spec.width, spec.height)
        };
        let crop = key.crop;
        let cols = Taps::new(crop.width, width, key.filter);
        let chroma_cols = cols.chroma(crop.x);
        let rows = Taps::new(crop.height, height, key.filter);
        let acc = validate::product(&[crop.width + cols.width.max(chroma_cols.width), 1])?;
        let out = validate::product(&[width, height, 3])?;
        Ok(Resampler {
            key,
            loops,
            cols,
            chroma_cols,
            rows,
            width,
            height,
            acc: std::array::from_fn(|_| vec![0.0; acc]),
            interleaved: Vec::new(),
            out: vec![0.0; out],
        })
    }

    pub fn key(&self) -> Key {
        self.key
    }

    /// Where the buffers live, to check they are reused.
    #[cfg(test)]
    pub fn buffers(&self) -> (*const f32, *const f32) {
        (self.acc[0].as_ptr(), self.out.as_ptr())
    }

    /// Resamples a frame validated against this key's crop.
    pub fn resample(&mut self, frame: &Frame) -> Planes<'_> {
        let plane_len = self.width * self.height;
        let yuv = matches!(frame.pixels, Pixels::Yuv420 { .. });
        for oy in 0..self.height {
            match &frame.pixels {
                Pixels::Yuv420 { y, u, v } => self.yuv_rows(oy, y, u, v),
                Pixels::Packed { plane, r, g, b } => {
                    self.packed_rows(oy, plane, [*r, *g, *b].map(usize::from))
                }
            }
            let cols = [&self.cols, if yuv { &self.chroma_cols } else { &self.cols }];
            for (c, acc) in self.acc.iter().enumerate() {
                let taps = cols[usize::from(c > 0)];
                let at = c * plane_len + oy * self.width;
                let out = &mut self.out[at..at + self.width];
                self.loops
                    .weighted_sums(acc, &taps.starts, &taps.weights, taps.width, out);
            }
        }
        let (p0, rest) = self.out.split_at(plane_len);
        let (p1, p2) = rest.split_at(plane_len);
        Planes {
            data: [p0, p1, p2],
            width: self.width,
            height: self.height,
            yuv,
        }
    }

    /// Sums the source rows of output row `oy` of a YUV frame into the
    /// accumulators: luma at full, chroma at half width.
    fn yuv_rows(&mut self, oy: usize, luma: &Plane, u: &Plane, v: &Plane) {
        let crop = self.key.crop;
        let n = crop.width;
        let x0 = crop.x / 2;
        let cn = (crop.x + n - 1) / 2 - x0 + 1;
        let [acc_y, acc_u, acc_v] = &mut self.acc;
        acc_y[..n].fill(0.0);
        for (y, w) in self.rows.of(oy) {
            accumulate(self.loops, &mut acc_y[..n], luma, crop.y + y, crop.x, w);
        }
        if let Some(pair) = interleaved(u, v) {
            let run = &mut grown(&mut self.interleaved, 2 * cn)[..2 * cn];
            run.fill(0.0);
            for (row, w) in self.rows.chroma_rows(oy, crop.y) {
                let start = row * pair.first.row_stride + 2 * x0;
                let bytes = &pair.first.data[start..];
                let take = bytes.len().min(2 * cn);
                self.loops
                    .accumulate_row(&mut run[..take], &bytes[..take], w);
                if take < 2 * cn {
                    // The other plane's last byte lies past the first
                    // plane's slice (Android hands over two overlapping
                    // buffers, each ending at its own last sample).
                    let last = start + 2 * (cn - 1);
                    run[2 * cn - 1] += w * pair.second.data[last] as f32;
                }
            }
            let v_offset = 1 - pair.u_offset;
            self.loops
                .gather_channel(run, 2, pair.u_offset, &mut acc_u[..cn]);
            self.loops
                .gather_channel(run, 2, v_offset, &mut acc_v[..cn]);
        } else {
            for (acc, plane) in [(acc_u, u), (acc_v, v)] {
                acc[..cn].fill(0.0);
                for (row, w) in self.rows.chroma_rows(oy, crop.y) {
                    accumulate(self.loops, &mut acc[..cn], plane, row, x0, w);
                }
            }
        }
    }

    /// Sums the source rows of output row `oy` of a packed frame as runs of
    /// bytes, then splits them into the three channel accumulators.
    fn packed_rows(&mut self, oy: usize, plane: &Plane, offsets: [usize; 3]) {
        let crop = self.key.crop;
        let (n, stride) = (crop.width, plane.pixel_stride);
        let run = &mut grown(&mut self.interleaved, n * stride)[..n * stride];
        run.fill(0.0);
        for (y, w) in self.rows.of(oy) {
            let start = (crop.y + y) * plane.row_stride + crop.x * stride;
            let bytes = &plane.data[start..];
            let take = bytes.len().min(n * stride);
            self.loops
                .accumulate_row(&mut run[..take], &bytes[..take], w);
        }
        for (acc, offset) in self.acc.iter_mut().zip(offsets) {
            self.loops
                .gather_channel(run, stride, offset, &mut acc[..n]);
        }
    }
}

/// `buf` grown to at least `len` (only the first frames of a stream grow it).
fn grown(buf: &mut Vec<f32>, len: usize) -> &mut Vec<f32> {
    if buf.len() < len {
        buf.resize(len, 0.0);
    }
    buf
}

/// `acc[i] += weight * byte(x0 + i, y)` of a single-channel plane.
fn accumulate(loops: FrameLoops, acc: &mut [f32], p: &Plane, y: usize, x0: usize, weight: f32) {
    let row = &p.data[y * p.row_stride + x0 * p.pixel_stride..];
    if p.pixel_stride == 1 {
        loops.accumulate_row(acc, row, weight);
    } else {
        for (a, &b) in acc.iter_mut().zip(row.iter().step_by(p.pixel_stride)) {
            *a += weight * b as f32;
        }
    }
}
