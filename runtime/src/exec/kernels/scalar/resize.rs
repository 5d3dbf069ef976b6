//! Resize (nearest and linear) as separable 1-D passes over the axes whose
//! size or scale changes: N-linear interpolation factors per axis.

use crate::ir::{CoordTransform, NearestMode, ResizeMode};

/// Source coordinate of output position `x` on an axis.
fn source_coord(coord: CoordTransform, x: usize, scale: f32, len_in: usize, len_out: usize) -> f32 {
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
    }
}

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
}

impl AxisMap {
    pub fn tap(&self, o: usize) -> (usize, usize, f32) {
        let c = source_coord(self.coord, o, self.scale, self.len_in, self.len_out);
        match self.mode {
            ResizeMode::Nearest(m) => {
                let i = nearest_index(m, c, self.len_in);
                (i, i, 0.0)
            }
            ResizeMode::Linear => {
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
            let (i0, i1, w) = map.tap(k);
            let (a, b) = (&src[i0 * inner..][..inner], &src[i1 * inner..][..inner]);
            for ((d, &va), &vb) in dst[k * inner..][..inner].iter_mut().zip(a).zip(b) {
                *d = if w == 0.0 { va } else { va + (vb - va) * w };
            }
        }
    }
}
