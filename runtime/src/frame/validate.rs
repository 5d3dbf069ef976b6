//! Every check on a frame and its geometry, done before any pixel is read:
//! sizes, strides and plane lengths in checked arithmetic, crop bounds and
//! the output's size. Code after these checks indexes without re-checking.

use super::{Frame, Pixels, Plane, Rect, TensorSpec};
use crate::error::{Error, Result};

fn err(msg: String) -> Error {
    Error::Frame(msg)
}

/// The product of sizes, or a typed error on overflow.
pub(super) fn product(dims: &[usize]) -> Result<usize> {
    dims.iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or_else(|| err(format!("size {dims:?} overflows")))
}

/// `plane` holds `cols` x `rows` pixels of `bytes` bytes each.
fn plane(name: &str, p: &Plane, cols: usize, rows: usize, bytes: usize) -> Result<()> {
    if p.pixel_stride < bytes {
        return Err(err(format!(
            "{name} plane: pixel stride {} under the {bytes} bytes of a pixel",
            p.pixel_stride
        )));
    }
    let overflow = || err(format!("{name} plane: {cols}x{rows} overflows"));
    let row = (cols - 1)
        .checked_mul(p.pixel_stride)
        .and_then(|b| b.checked_add(bytes))
        .ok_or_else(overflow)?;
    if p.row_stride < row && rows > 1 {
        return Err(err(format!(
            "{name} plane: row stride {} shorter than a row of {row} bytes",
            p.row_stride
        )));
    }
    let need = (rows - 1)
        .checked_mul(p.row_stride)
        .and_then(|b| b.checked_add(row))
        .ok_or_else(overflow)?;
    if p.data.len() < need {
        return Err(err(format!(
            "{name} plane: {} bytes, {cols}x{rows} with row stride {} needs {need}",
            p.data.len(),
            p.row_stride
        )));
    }
    Ok(())
}

/// The frame's planes hold its declared geometry.
pub(super) fn frame(f: &Frame) -> Result<()> {
    if f.width == 0 || f.height == 0 {
        return Err(err(format!("empty frame {}x{}", f.width, f.height)));
    }
    match &f.pixels {
        Pixels::Yuv420 { y, u, v } => {
            let (cw, ch) = (f.width.div_ceil(2), f.height.div_ceil(2));
            plane("Y", y, f.width, f.height, 1)?;
            plane("U", u, cw, ch, 1)?;
            plane("V", v, cw, ch, 1)
        }
        Pixels::Packed { plane: p, r, g, b } => {
            let bytes = 1 + *r.max(g).max(b) as usize;
            plane("pixel", p, f.width, f.height, bytes)
        }
    }
}

/// The frame's planes and the crop (the whole frame when `None`), which
/// must lie inside the frame and not be empty.
pub(super) fn frame_and_crop(f: &Frame, crop: Option<Rect>) -> Result<Rect> {
    frame(f)?;
    let c = crop.unwrap_or(Rect {
        x: 0,
        y: 0,
        width: f.width,
        height: f.height,
    });
    let inside =
        |at: usize, len: usize, size: usize| at.checked_add(len).is_some_and(|e| e <= size);
    if c.width == 0
        || c.height == 0
        || !inside(c.x, c.width, f.width)
        || !inside(c.y, c.height, f.height)
    {
        return Err(err(format!(
            "crop {}x{} at ({}, {}) is empty or outside the {}x{} frame",
            c.width, c.height, c.x, c.y, f.width, f.height
        )));
    }
    Ok(c)
}

/// The output has pixels and its size fits in memory arithmetic.
pub(super) fn spec(s: &TensorSpec) -> Result<()> {
    if s.width == 0 || s.height == 0 {
        return Err(err(format!("empty output {}x{}", s.width, s.height)));
    }
    product(&[s.width, s.height, 3, 4])?;
    let n = &s.normalize;
    if !n.scale.is_finite()
        || n.std.iter().any(|v| !v.is_normal())
        || n.mean.iter().any(|v| !v.is_finite())
    {
        return Err(err(format!("normalization {n:?} is not finite")));
    }
    Ok(())
}

/// `(1 / scale, zero point)` of a quantized output.
pub(super) fn quantization(scale: f32, zero_point: f32) -> Result<(f32, f32)> {
    if !scale.is_normal() || scale < 0.0 {
        return Err(err(format!("quantization scale {scale} unusable")));
    }
    Ok((1.0 / scale, zero_point))
}
