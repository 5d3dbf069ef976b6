//! Resize (nearest and linear) as separable 1-D passes over the axes whose
//! size or scale changes: N-linear interpolation factors per axis.

use crate::ir::{CoordTransform, NearestMode, ResizeMode};

/// Source coordinate of output position `x` on an axis (`crop` the
/// region of interest, for [`CoordTransform::TfCropAndResize`]).
fn source_coord(
    coord: CoordTransform,
    crop: Option<AxisCrop>,
    x: usize,
    scale: f32,
    len_in: usize,
    len_out: usize,
) -> f32 {
    let x = x as f32;
    match coord {
        CoordTransform::HalfPixel => (x + 0.5) / scale - 0.5,
        CoordTransform::PytorchHalfPixel => {
            if len_out > 1 {
                (x + 0.5) / scale - 0.5
            } else {
                0.0
            }
        }
        // ONNX divides by the resized length before it is floored (the
        // input's times the scale), not by the output's.
        CoordTransform::AlignCorners => {
            if len_out > 1 {
                x * (len_in as f32 - 1.0) / (len_in as f32 * scale - 1.0)
            } else {
                0.0
            }
        }
        CoordTransform::Asymmetric => x / scale,
        CoordTransform::TfHalfPixelForNearest => (x + 0.5) / scale,
        CoordTransform::HalfPixelSymmetric => {
            let adjustment = len_out as f32 / (len_in as f32 * scale);
            let offset = len_in as f32 / 2.0 * (1.0 - adjustment);
            offset + (x + 0.5) / scale - 0.5
        }
        CoordTransform::TfCropAndResize => {
            let AxisCrop { start, end, .. } = crop.unwrap_or(AxisCrop::WHOLE);
            let span = len_in as f32 - 1.0;
            if len_out > 1 {
                start * span + x * (end - start) * span / (len_out as f32 - 1.0)
            } else {
                0.5 * (start + end) * span
            }
        }
    }
}

/// One axis's region of interest for [`CoordTransform::TfCropAndResize`]
/// (`start` and `end` as fractions of `len - 1`), and the value of outputs
/// whose source lies outside the input.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AxisCrop {
    pub start: f32,
    pub end: f32,
    pub extrapolation: f32,
}

impl AxisCrop {
    /// The whole axis.
    pub const WHOLE: AxisCrop = AxisCrop {
        start: 0.0,
        end: 1.0,
        extrapolation: 0.0,
    };

    /// The crop of each of `rank` axes from a Resize's roi input: starts,
    /// ends, then the extrapolation value.
    pub fn from_roi(roi: &[f32], rank: usize) -> impl Iterator<Item = AxisCrop> + '_ {
        (0..rank).map(move |a| AxisCrop {
            start: roi[a],
            end: roi[rank + a],
            extrapolation: roi[2 * rank],
        })
    }
}

/// The cubic convolution kernel at distance `d` with coefficient `a`.
fn cubic(d: f32, a: f32) -> f32 {
    let d = d.abs();
    if d <= 1.0 {
        ((a + 2.0) * d - (a + 3.0)) * d * d + 1.0
    } else if d < 2.0 {
        ((a * d - 5.0 * a) * d + 8.0 * a) * d - 4.0 * a
    } else {
        0.0
    }
}

/// The source taps of one output position: input indices and weights.
pub type Taps = smallvec::SmallVec<[(usize, f32); 8]>;

fn nearest_index(mode: NearestMode, c: f32, len: usize) -> usize {
    let i = match mode {
        NearestMode::RoundPreferFloor => {
            if c.fract() == 0.5 {
                c.floor()
            } else {
                c.round()
            }
        }
        NearestMode::RoundPreferCeil => c.round(),
        NearestMode::Floor => c.floor(),
        NearestMode::Ceil => c.ceil(),
    };
    (i.max(0.0) as usize).min(len - 1)
}

/// Output position `o` of one axis: two source indices and the weight of
/// the second.
#[derive(Clone, Copy, Debug)]
pub struct AxisMap {
    pub mode: ResizeMode,
    pub coord: CoordTransform,
    pub scale: f32,
    pub len_in: usize,
    pub len_out: usize,
    /// The region of interest, with [`CoordTransform::TfCropAndResize`].
    pub crop: Option<AxisCrop>,
}

impl AxisMap {
    /// Output `o`'s taps for any mode, as ONNX's reference computes them:
    /// around `base`, the source coordinate's floor (one less when it is
    /// whole, with the fraction then 1), a kernel of the fraction, widened
    /// by the shrink factor with antialias; taps outside the input read
    /// its edge, or are dropped with `exclude_outside`.
    pub fn taps(&self, o: usize) -> Taps {
        let (kernel_cubic, a, exclude, antialias) = match self.mode {
            ResizeMode::Nearest(_) | ResizeMode::Linear => {
                let (i0, i1, w) = self.tap(o);
                return smallvec::smallvec![(i0, 1.0 - w), (i1, w)];
            }
            ResizeMode::Cubic {
                a,
                exclude_outside,
                antialias,
            } => (true, a, exclude_outside, antialias),
            ResizeMode::LinearAntialias { exclude_outside } => (false, 0.0, exclude_outside, true),
        };
        let c = self.coord(o);
        let (base, fraction) = if c == c.floor() {
            (c as i64 - 1, 1.0)
        } else {
            (c.floor() as i64, c - c.floor())
        };
        let s = if antialias { self.scale.min(1.0) } else { 1.0 };
        // The kernel reaches 2 (cubic) or 1 (linear) input pixels, scaled.
        let reach = if kernel_cubic { 2.0 } else { 1.0 };
        let first = (-reach / s).floor() as i64 + 1;
        let last = 2 - first;
        let last_index = self.len_in as i64 - 1;
        let mut taps = Taps::new();
        for i in first..last {
            let d = (i as f32 - fraction) * s;
            let w = if kernel_cubic {
                cubic(d, a)
            } else {
                (1.0 - d.abs()).max(0.0)
            };
            let at = base + i;
            if exclude && !(0..=last_index).contains(&at) {
                continue;
            }
            taps.push((at.clamp(0, last_index) as usize, w));
        }
        if antialias || exclude {
            let sum: f32 = taps.iter().map(|&(_, w)| w).sum();
            taps.iter_mut().for_each(|(_, w)| *w /= sum);
        }
        taps
    }

    fn coord(&self, o: usize) -> f32 {
        source_coord(
            self.coord,
            self.crop,
            o,
            self.scale,
            self.len_in,
            self.len_out,
        )
    }

    /// The extrapolation value when output `o` of a crop reads outside the
    /// input (ONNX checks the source coordinate, not the taps).
    pub fn outside(&self, o: usize) -> Option<f32> {
        let crop = self.crop?;
        let c = self.coord(o);
        (c < 0.0 || c > (self.len_in - 1) as f32).then_some(crop.extrapolation)
    }

    /// Output `o`'s two taps and the second's weight (nearest and linear).
    pub fn tap(&self, o: usize) -> (usize, usize, f32) {
        let c = self.coord(o);
        match self.mode {
            ResizeMode::Nearest(m) => {
                let i = nearest_index(m, c, self.len_in);
                (i, i, 0.0)
            }
            _ => {
                let c = c.clamp(0.0, (self.len_in - 1) as f32);
                let i0 = c.floor() as usize;
                let i1 = (i0 + 1).min(self.len_in - 1);
                (i0, i1, c - i0 as f32)
            }
        }
    }
}

/// Resizes one axis of `x` (shape `shape`) as `map` says; taps are
/// computed on the fly, so nothing is allocated.
pub fn resize_axis(x: &[f32], shape: &[usize], axis: usize, map: &AxisMap, y: &mut [f32]) {
    let outer: usize = shape[..axis].iter().product();
    let inner: usize = shape[axis + 1..].iter().product();
    let (n_in, n_out) = (shape[axis], map.len_out);
    for o in 0..outer {
        let src = &x[o * n_in * inner..][..n_in * inner];
        let dst = &mut y[o * n_out * inner..][..n_out * inner];
        for k in 0..n_out {
            let dst = &mut dst[k * inner..][..inner];
            if let Some(value) = map.outside(k) {
                dst.fill(value);
                continue;
            }
            if let ResizeMode::Nearest(_) | ResizeMode::Linear = map.mode {
                let (i0, i1, w) = map.tap(k);
                let (a, b) = (&src[i0 * inner..][..inner], &src[i1 * inner..][..inner]);
                for ((d, &va), &vb) in dst.iter_mut().zip(a).zip(b) {
                    *d = if w == 0.0 { va } else { va + (vb - va) * w };
                }
                continue;
            }
            dst.fill(0.0);
            for (i, w) in map.taps(k) {
                for (d, &v) in dst.iter_mut().zip(&src[i * inner..][..inner]) {
                    *d += w * v;
                }
            }
        }
    }
}
