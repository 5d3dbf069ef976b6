//! Affine quantization parameters: what a quantized tensor's integers mean.

use serde::{Deserialize, Serialize};

use super::tensor::DType;

/// Per-tensor affine quantization of a u8 or i8 tensor:
/// `real = scale · (q − zero_point)`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Quant {
    pub scale: f32,
    pub zero_point: i32,
    pub dtype: DType,
}

impl Quant {
    /// The integers the dtype holds.
    pub fn range(self) -> (i32, i32) {
        match self.dtype {
            DType::U8 => (0, 255),
            DType::I8 => (-128, 127),
            _ => (i32::MIN, i32::MAX),
        }
    }

    /// A positive finite scale, a zero point the dtype holds, a u8/i8 dtype.
    pub fn is_valid(self) -> bool {
        let (lo, hi) = self.range();
        matches!(self.dtype, DType::U8 | DType::I8)
            && self.scale.is_finite()
            && self.scale > 0.0
            && (lo..=hi).contains(&self.zero_point)
    }

    /// ONNX QuantizeLinear: `saturate(round_half_even(x / scale) + zero_point)`.
    #[inline]
    pub fn quantize(self, x: f32) -> i32 {
        let (lo, hi) = self.range();
        let q = (x / self.scale).round_ties_even() + self.zero_point as f32;
        // NaN saturates to the zero point, as ORT's conversion does not define it.
        if q.is_nan() {
            return self.zero_point;
        }
        q.clamp(lo as f32, hi as f32) as i32
    }

    /// ONNX DequantizeLinear.
    #[inline]
    pub fn dequantize(self, q: i32) -> f32 {
        (q - self.zero_point) as f32 * self.scale
    }

    /// The integer interval that `[lo, hi]` (real values) maps into: how a
    /// fused Relu or Clip becomes a clamp in the quantized domain.
    pub fn clamp_range(self, lo: f32, hi: f32) -> (i32, i32) {
        let (qlo, qhi) = self.range();
        let lo = if lo.is_finite() {
            self.quantize(lo)
        } else {
            qlo
        };
        let hi = if hi.is_finite() {
            self.quantize(hi)
        } else {
            qhi
        };
        (lo.max(qlo), hi.min(qhi))
    }
}
