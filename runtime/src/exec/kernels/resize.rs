//! Resize of the two spatial axes of an NCHW tensor (nearest or linear),
//! with the source taps of every output row and column computed once at
//! preparation. Planes are split across workers. Taps that only repeat
//! each input pixel a whole number of times (the nearest ×2 upsampling of
//! FPN and U-Net heads) copy rows instead of blending.

use std::marker::PhantomData;

use super::contract::{plane_parts, Input, Kernel, Output, Threads};
use super::scalar::resize::AxisMap;
use super::simd::Simd;
use super::Operand;
use crate::error::Result;
use crate::ir::{CoordTransform, ResizeMode};

type Taps = Vec<(usize, usize, f32)>;

#[derive(Debug)]
pub struct Resize2d<S: Simd> {
    /// Chosen per ISA like every list entry; the loop needs no intrinsics.
    isa: PhantomData<S>,
    input: [usize; 4],
    output: [usize; 4],
    rows: Taps,
    cols: Taps,
    /// `[rows, cols]` repeats when every tap is `o / repeat`, unblended.
    repeat: Option<[usize; 2]>,
}

/// `Some(r)` when output `o` reads input `o / r` alone, for every `o`.
fn repeats(taps: &Taps, len_in: usize) -> Option<usize> {
    let r = taps.len().checked_div(len_in)?;
    if r == 0 || r * len_in != taps.len() {
        return None;
    }
    let all = taps
        .iter()
        .enumerate()
        .all(|(o, &(i0, i1, w))| i0 == o / r && i1 == i0 && w == 0.0);
    all.then_some(r)
}

impl<S: Simd> Resize2d<S> {
    pub fn build(
        _simd: S,
        mode: ResizeMode,
        coord: CoordTransform,
        scales: &[f32],
        ins: &[Operand],
        output: &[usize],
    ) -> Option<Self> {
        if !matches!(mode, ResizeMode::Nearest(_) | ResizeMode::Linear)
            || coord == CoordTransform::TfCropAndResize
        {
            return None;
        }
        let x = super::conv::dims4(&ins[0].info.shape)?;
        let y = super::conv::dims4(output)?;
        if x[0] != y[0] || x[1] != y[1] || scales.len() != 4 || scales[0] != 1.0 || scales[1] != 1.0
        {
            return None;
        }
        let taps = |axis: usize| -> Taps {
            let map = AxisMap {
                mode,
                coord,
                scale: scales[axis],
                len_in: x[axis],
                len_out: y[axis],
                crop: None,
            };
            (0..y[axis]).map(|o| map.tap(o)).collect()
        };
        let (rows, cols) = (taps(2), taps(3));
        let repeat = repeats(&rows, x[2])
            .zip(repeats(&cols, x[3]))
            .map(|(r, c)| [r, c]);
        Some(Resize2d {
            isa: PhantomData,
            input: x,
            output: y,
            rows,
            cols,
            repeat,
        })
    }
}

/// One output plane from one input plane of width `iw` whose pixels
/// repeat `[rows, cols]` times: each output row is built once from its
/// input row, then copied.
fn repeat_plane(x: &[f32], iw: usize, [rows, cols]: [usize; 2], y: &mut [f32]) {
    let ow = iw * cols;
    for (src, out) in x.chunks_exact(iw).zip(y.chunks_exact_mut(ow * rows)) {
        let (first, copies) = out.split_at_mut(ow);
        for (run, &v) in first.chunks_exact_mut(cols).zip(src) {
            run.fill(v);
        }
        for copy in copies.chunks_exact_mut(ow) {
            copy.copy_from_slice(first);
        }
    }
}

/// One output plane from one input plane of width `iw`.
#[inline(always)]
fn plane(x: &[f32], iw: usize, rows: &Taps, cols: &Taps, y: &mut [f32]) {
    let ow = cols.len();
    for (out, &(y0, y1, wy)) in y.chunks_exact_mut(ow).zip(rows) {
        let (r0, r1) = (&x[y0 * iw..][..iw], &x[y1 * iw..][..iw]);
        for (o, &(x0, x1, wx)) in out.iter_mut().zip(cols) {
            let top = r0[x0] + (r0[x1] - r0[x0]) * wx;
            let bottom = r1[x0] + (r1[x1] - r1[x0]) * wx;
            *o = top + (bottom - top) * wy;
        }
    }
}

impl<S: Simd> Kernel for Resize2d<S> {
    fn name(&self) -> &'static str {
        S::names().resize
    }
    fn run(
        &self,
        ins: &[Input],
        outs: &mut [Output],
        _: &mut [f32],
        threads: &Threads,
    ) -> Result<()> {
        let [n, c, ih, iw] = self.input;
        let [_, _, oh, ow] = self.output;
        let (ihw, ohw, planes) = (ih * iw, oh * ow, n * c);
        let x = ins[0].f32()?;
        let y = outs[0].f32()?;
        let mut parts = plane_parts(&mut y[..planes * ohw], ohw, threads.count(), &mut [], 0);
        threads.for_each_part(&mut parts, |(p0, ys, _)| {
            for (i, yp) in ys.chunks_exact_mut(ohw).enumerate() {
                let p = *p0 + i;
                let xp = &x[p * ihw..][..ihw];
                match self.repeat {
                    Some(r) => repeat_plane(xp, iw, r, yp),
                    None => plane(xp, iw, &self.rows, &self.cols, yp),
                }
            }
        });
        Ok(())
    }
}
