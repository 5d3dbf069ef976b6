//! Reference integer kernels of quantized models: plain loops with i32
//! accumulation and the fixed-point [`Requantize`] every fast kernel uses,
//! so fast and reference kernels agree exactly.

use super::conv::ConvShape;
use super::elementwise::broadcast_strides;
use crate::error::{Error, Result};
use crate::exec::kernels::contract::{Requantize, View, ViewMut};
use crate::ir::{BinaryOp, Quant, UnaryOp};

/// The 8-bit integers of quantized activations.
pub trait QInt: Copy + Send + Sync + 'static {
    fn to_i32(self) -> i32;
    /// `v` already clamped to the type's range.
    fn from_i32(v: i32) -> Self;
}

impl QInt for u8 {
    #[inline]
    fn to_i32(self) -> i32 {
        self as i32
    }
    #[inline]
    fn from_i32(v: i32) -> u8 {
        v as u8
    }
}

impl QInt for i8 {
    #[inline]
    fn to_i32(self) -> i32 {
        self as i32
    }
    #[inline]
    fn from_i32(v: i32) -> i8 {
        v as i8
    }
}

/// Quantized input data as i32 values, whichever 8-bit type holds them.
fn q_at(x: View, i: usize) -> i32 {
    match x {
        View::U8(v) => v[i] as i32,
        View::I8(v) => v[i] as i32,
        _ => 0,
    }
}

/// Writes `f(i)` to every element of a u8 or i8 output.
fn q_fill(y: &mut ViewMut, f: impl Fn(usize) -> i32) -> Result<()> {
    match y {
        ViewMut::U8(v) => v.iter_mut().enumerate().for_each(|(i, o)| *o = f(i) as u8),
        ViewMut::I8(v) => v.iter_mut().enumerate().for_each(|(i, o)| *o = f(i) as i8),
        _ => return Err(Error::Input("quantized output must be u8 or i8".into())),
    }
    Ok(())
}

fn q_len(x: View) -> usize {
    match x {
        View::U8(v) => v.len(),
        View::I8(v) => v.len(),
        _ => 0,
    }
}

/// QuantizeLinear.
pub fn quantize(q: Quant, x: &[f32], y: &mut ViewMut) -> Result<()> {
    q_fill(y, |i| q.quantize(x[i]))
}

/// DequantizeLinear.
pub fn dequantize(q: Quant, x: View, y: &mut [f32]) {
    for (i, o) in y.iter_mut().enumerate().take(q_len(x)) {
        *o = q.dequantize(q_at(x, i));
    }
}

/// The integer clamp of a fused Relu/Clip in the output's quantized domain.
pub fn activation_range(y: Quant, activation: Option<UnaryOp>) -> (i32, i32) {
    match activation {
        Some(UnaryOp::Relu) => y.clamp_range(0.0, f32::INFINITY),
        Some(UnaryOp::Clip { min, max }) => y.clamp_range(min, max),
        _ => y.range(),
    }
}

/// One requantizer per output channel of a QLinearConv: `x.scale ·
/// w_scale[m] / y.scale`, onto `y`'s zero point, clamped to the fused
/// activation.
pub fn conv_requantizers(
    x: Quant,
    y: Quant,
    w_scales: &[f32],
    activation: Option<UnaryOp>,
) -> Result<Vec<Requantize>> {
    let (lo, hi) = activation_range(y, activation);
    w_scales
        .iter()
        .map(|&ws| {
            let real = x.scale as f64 * ws as f64 / y.scale as f64;
            Requantize::new(real, y.zero_point, lo, hi)
                .ok_or_else(|| Error::Input(format!("requantization scale {real} is out of range")))
        })
        .collect()
}

/// QLinearConv, direct: `w` is i8 \[m, c/groups, kh, kw\], `bias` i32 per
/// output channel; padding reads as the input's zero point.
pub fn qconv2d(
    s: &ConvShape,
    x: View,
    x_zero: i32,
    w: &[i8],
    bias: Option<&[i32]>,
    requant: &[Requantize],
    y: &mut ViewMut,
) -> Result<()> {
    let g = s.geometry;
    let [_, c, ih, iw] = s.input;
    let [_, m, oh, ow] = s.output;
    let (cg, mg) = (c / g.groups, m / g.groups);
    let [kh, kw] = g.kernel;
    let at = |i: usize| {
        let b = i / (m * oh * ow);
        let oc = i / (oh * ow) % m;
        let (oy, ox) = (i / ow % oh, i % ow);
        let grp = oc / mg;
        let mut acc = bias.map_or(0, |b| b[oc]);
        for icg in 0..cg {
            let ic = grp * cg + icg;
            for ky in 0..kh {
                let iy = (oy * g.strides[0] + ky * g.dilations[0]) as isize - g.pads[0] as isize;
                if iy < 0 || iy >= ih as isize {
                    continue;
                }
                for kx in 0..kw {
                    let ix =
                        (ox * g.strides[1] + kx * g.dilations[1]) as isize - g.pads[1] as isize;
                    if ix < 0 || ix >= iw as isize {
                        continue;
                    }
                    let xi = ((b * c + ic) * ih + iy as usize) * iw + ix as usize;
                    let wv = w[((oc * cg + icg) * kh + ky) * kw + kx] as i32;
                    acc = acc.wrapping_add(wv * (q_at(x, xi) - x_zero));
                }
            }
        }
        requant[oc].apply(acc)
    };
    q_fill(y, at)
}

/// The integer form of `y = q_y(a_real + b_real)`: both operands brought
/// to a common fine scale (`2^20` steps of twice the larger input scale),
/// summed, then requantized, as TFLite does, so no float is needed per
/// element.
#[derive(Clone, Copy, Debug)]
pub struct AddRequant {
    a: Requantize,
    b: Requantize,
    out: Requantize,
    a_zero: i32,
    b_zero: i32,
}

/// Left shift of the operands of a quantized Add: room for 20 more bits of
/// precision in an i32 (8-bit differences use 9).
const ADD_LEFT_SHIFT: u32 = 20;

impl AddRequant {
    pub fn new(a: Quant, b: Quant, y: Quant, activation: Option<UnaryOp>) -> Result<AddRequant> {
        let twice_max = 2.0 * (a.scale as f64).max(b.scale as f64);
        let (lo, hi) = activation_range(y, activation);
        let unit = |real: f64, zero, lo, hi| {
            Requantize::new(real, zero, lo, hi)
                .ok_or_else(|| Error::Input(format!("quantized Add scale {real} is out of range")))
        };
        Ok(AddRequant {
            a: unit(a.scale as f64 / twice_max, 0, i32::MIN, i32::MAX)?,
            b: unit(b.scale as f64 / twice_max, 0, i32::MIN, i32::MAX)?,
            out: unit(
                twice_max / ((1u64 << ADD_LEFT_SHIFT) as f64 * y.scale as f64),
                y.zero_point,
                lo,
                hi,
            )?,
            a_zero: a.zero_point,
            b_zero: b.zero_point,
        })
    }
    /// Inlined into each ISA's loop, where it vectorizes (a call per
    /// element was a fifth of QLinearAdd's time).
    #[inline(always)]
    pub fn apply(&self, a: i32, b: i32) -> i32 {
        let a = self.a.apply((a - self.a_zero) << ADD_LEFT_SHIFT);
        let b = self.b.apply((b - self.b_zero) << ADD_LEFT_SHIFT);
        self.out.apply(a.wrapping_add(b))
    }
}

/// QLinearAdd / QLinearMul with numpy broadcasting.
pub fn qbinary(
    op: BinaryOp,
    (a, aq, a_shape): (View, Quant, &[usize]),
    (b, bq, b_shape): (View, Quant, &[usize]),
    yq: Quant,
    out_shape: &[usize],
    y: &mut ViewMut,
) -> Result<()> {
    let sa = broadcast_strides(a_shape, out_shape);
    let sb = broadcast_strides(b_shape, out_shape);
    let index = |mut i: usize, strides: &[usize]| {
        let mut at = 0;
        for d in (0..out_shape.len()).rev() {
            at += (i % out_shape[d]) * strides[d];
            i /= out_shape[d];
        }
        at
    };
    match op {
        BinaryOp::Add => {
            let r = AddRequant::new(aq, bq, yq, None)?;
            q_fill(y, |i| {
                r.apply(q_at(a, index(i, &sa)), q_at(b, index(i, &sb)))
            })
        }
        BinaryOp::Mul => {
            let real = aq.scale as f64 * bq.scale as f64 / yq.scale as f64;
            let (lo, hi) = yq.range();
            let r = Requantize::new(real, yq.zero_point, lo, hi)
                .ok_or_else(|| Error::Input(format!("quantized Mul scale {real} out of range")))?;
            q_fill(y, |i| {
                let va = q_at(a, index(i, &sa)) - aq.zero_point;
                let vb = q_at(b, index(i, &sb)) - bq.zero_point;
                r.apply(va * vb)
            })
        }
        other => Err(Error::Input(format!("quantized {other:?}"))),
    }
}

/// The requantizer of a quantized global average over `area` values.
pub fn mean_requant(x: Quant, y: Quant, area: usize) -> Result<Requantize> {
    let real = x.scale as f64 / (y.scale as f64 * area as f64);
    let (lo, hi) = y.range();
    Requantize::new(real, y.zero_point, lo, hi)
        .ok_or_else(|| Error::Input(format!("quantized average scale {real} out of range")))
}

/// QLinearGlobalAveragePool over planes of `area` values each (one per
/// output element).
pub fn qglobal_avg_pool(x: View, xq: Quant, yq: Quant, area: usize, y: &mut ViewMut) -> Result<()> {
    let r = mean_requant(xq, yq, area)?;
    q_fill(y, |p| {
        let sum: i32 = (0..area)
            .map(|i| q_at(x, p * area + i) - xq.zero_point)
            .sum();
        r.apply(sum)
    })
}
