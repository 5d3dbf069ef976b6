//! The closed set of operations the runtime executes, with their static
//! shape rules. Every attribute is resolved at import (pads made explicit,
//! target shapes computed), so kernels never interpret ONNX semantics.

use serde::{Deserialize, Serialize};

use super::quant::Quant;
use super::tensor::DType;
use crate::error::{Error, Result};

/// Elementwise one-input functions. The ones marked fusable may run in the
/// epilogue of a Conv/Gemm (see [`UnaryOp::is_fusable`]).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum UnaryOp {
    Relu,
    Clip {
        min: f32,
        max: f32,
    },
    LeakyRelu {
        alpha: f32,
    },
    Sigmoid,
    HardSigmoid {
        alpha: f32,
        beta: f32,
    },
    HardSwish,
    Tanh,
    Sqrt,
    Exp,
    Neg,
    Abs,
    Reciprocal,
    Log,
    Floor,
    Ceil,
    /// Half to even, as ONNX rounds.
    Round,
    /// -1, 0 or 1 (0 for ±0); NaN stays NaN.
    Sign,
    Erf,
    Softplus,
    Softsign,
    /// `x` above 0, else `alpha · (eᵡ - 1)`.
    Elu {
        alpha: f32,
    },
    /// `gamma · elu(x, alpha)`.
    Selu {
        alpha: f32,
        gamma: f32,
    },
    /// `max(0, x) + min(0, alpha · (e^(x/alpha) - 1))`.
    Celu {
        alpha: f32,
    },
    /// `x` above `alpha`, else 0.
    ThresholdedRelu {
        alpha: f32,
    },
    /// `x · tanh(softplus(x))`.
    Mish,
    /// `x · Φ(x)`, exact (erf) or with the tanh approximation.
    Gelu {
        tanh: bool,
    },
    Trig(Trig),
    /// `x + bias` below `-lambd`, `x - bias` above `lambd`, else 0.
    Shrink {
        bias: f32,
        lambd: f32,
    },
}

/// Trigonometric and hyperbolic functions and their inverses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Trig {
    Sin,
    Cos,
    Tan,
    Asin,
    Acos,
    Atan,
    Sinh,
    Cosh,
    Asinh,
    Acosh,
    Atanh,
}

impl Trig {
    pub const ALL: [Trig; 11] = [
        Trig::Sin,
        Trig::Cos,
        Trig::Tan,
        Trig::Asin,
        Trig::Acos,
        Trig::Atan,
        Trig::Sinh,
        Trig::Cosh,
        Trig::Asinh,
        Trig::Acosh,
        Trig::Atanh,
    ];

    /// The ONNX op name.
    pub fn name(self) -> &'static str {
        match self {
            Trig::Sin => "Sin",
            Trig::Cos => "Cos",
            Trig::Tan => "Tan",
            Trig::Asin => "Asin",
            Trig::Acos => "Acos",
            Trig::Atan => "Atan",
            Trig::Sinh => "Sinh",
            Trig::Cosh => "Cosh",
            Trig::Asinh => "Asinh",
            Trig::Acosh => "Acosh",
            Trig::Atanh => "Atanh",
        }
    }

    fn apply(self, x: f32) -> f32 {
        match self {
            Trig::Sin => x.sin(),
            Trig::Cos => x.cos(),
            Trig::Tan => x.tan(),
            Trig::Asin => x.asin(),
            Trig::Acos => x.acos(),
            Trig::Atan => x.atan(),
            Trig::Sinh => x.sinh(),
            Trig::Cosh => x.cosh(),
            Trig::Asinh => x.asinh(),
            Trig::Acosh => x.acosh(),
            Trig::Atanh => x.atanh(),
        }
    }
}

impl UnaryOp {
    /// Activations cheap enough to apply while the conv output is in registers.
    pub fn is_fusable(self) -> bool {
        matches!(
            self,
            UnaryOp::Relu
                | UnaryOp::Clip { .. }
                | UnaryOp::LeakyRelu { .. }
                | UnaryOp::Sigmoid
                | UnaryOp::HardSigmoid { .. }
                | UnaryOp::HardSwish
        )
    }

    /// Ops that also take i64 tensors (shape arithmetic), exactly.
    pub fn integer(self) -> bool {
        matches!(self, UnaryOp::Neg | UnaryOp::Abs | UnaryOp::Sign)
    }

    /// The i64 form of an [`UnaryOp::integer`] op (wrapping at the extremes,
    /// as two's complement does); `None` for the others.
    pub fn apply_i64(self, x: i64) -> Option<i64> {
        match self {
            UnaryOp::Neg => Some(x.wrapping_neg()),
            UnaryOp::Abs => Some(x.wrapping_abs()),
            UnaryOp::Sign => Some(x.signum()),
            _ => None,
        }
    }

    #[inline]
    pub fn apply(self, x: f32) -> f32 {
        match self {
            UnaryOp::Relu => x.max(0.0),
            UnaryOp::Clip { min, max } => x.max(min).min(max),
            UnaryOp::LeakyRelu { alpha } => {
                if x >= 0.0 {
                    x
                } else {
                    alpha * x
                }
            }
            UnaryOp::Sigmoid => sigmoid(x),
            UnaryOp::HardSigmoid { alpha, beta } => (alpha * x + beta).clamp(0.0, 1.0),
            UnaryOp::HardSwish => x * (x / 6.0 + 0.5).clamp(0.0, 1.0),
            UnaryOp::Tanh => tanh(x),
            UnaryOp::Sqrt => x.sqrt(),
            UnaryOp::Exp => x.exp(),
            UnaryOp::Neg => -x,
            UnaryOp::Abs => x.abs(),
            UnaryOp::Reciprocal => 1.0 / x,
            UnaryOp::Log => x.ln(),
            UnaryOp::Floor => x.floor(),
            UnaryOp::Ceil => x.ceil(),
            UnaryOp::Round => x.round_ties_even(),
            UnaryOp::Sign => {
                if x == 0.0 || x.is_nan() {
                    x * 0.0
                } else {
                    x.signum()
                }
            }
            UnaryOp::Erf => erf(x),
            UnaryOp::Softplus => softplus(x),
            UnaryOp::Softsign => x / (1.0 + x.abs()),
            UnaryOp::Elu { alpha } => elu(x, alpha),
            UnaryOp::Selu { alpha, gamma } => gamma * elu(x, alpha),
            UnaryOp::Celu { alpha } => x.max(0.0) + (alpha * ((x / alpha).exp() - 1.0)).min(0.0),
            UnaryOp::ThresholdedRelu { alpha } => {
                if x > alpha {
                    x
                } else {
                    0.0
                }
            }
            UnaryOp::Mish => x * softplus(x).tanh(),
            UnaryOp::Gelu { tanh: false } => {
                0.5 * x * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2))
            }
            UnaryOp::Gelu { tanh: true } => {
                let k = (2.0 / std::f32::consts::PI).sqrt();
                0.5 * x * (1.0 + (k * (x + 0.044715 * x * x * x)).tanh())
            }
            UnaryOp::Trig(t) => t.apply(x),
            UnaryOp::Shrink { bias, lambd } => {
                if x < -lambd {
                    x + bias
                } else if x > lambd {
                    x - bias
                } else {
                    0.0
                }
            }
        }
    }
}

fn elu(x: f32, alpha: f32) -> f32 {
    if x > 0.0 {
        x
    } else {
        alpha * x.exp_m1()
    }
}

/// `ln(1 + eᵡ)` without overflow for large `x`.
fn softplus(x: f32) -> f32 {
    if x > 20.0 {
        x
    } else {
        x.exp().ln_1p()
    }
}

/// The error function (Rust's std has none): Abramowitz–Stegun 7.1.26,
/// evaluated in f64, absolute error below 1.5e-7.
fn erf(x: f32) -> f32 {
    let x = x as f64;
    let t = 1.0 / (1.0 + 0.327_591_1 * x.abs());
    let poly = t
        * (0.254_829_592
            + t * (-0.284_496_736
                + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
    let y = 1.0 - poly * (-x * x).exp();
    (if x < 0.0 { -y } else { y }) as f32
}

/// How a scatter combines an update with the value already there.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ScatterReduction {
    /// The update replaces it.
    None,
    Add,
    Mul,
    Max,
    Min,
}

impl ScatterReduction {
    /// The ONNX `reduction` attribute's value.
    pub fn from_name(name: &str) -> Option<ScatterReduction> {
        Some(match name {
            "none" => ScatterReduction::None,
            "add" => ScatterReduction::Add,
            "mul" => ScatterReduction::Mul,
            "max" => ScatterReduction::Max,
            "min" => ScatterReduction::Min,
            _ => return None,
        })
    }

    #[inline]
    pub fn apply(self, old: f32, update: f32) -> f32 {
        match self {
            ScatterReduction::None => update,
            ScatterReduction::Add => old + update,
            ScatterReduction::Mul => old * update,
            ScatterReduction::Max => old.max(update),
            ScatterReduction::Min => old.min(update),
        }
    }
}

/// What a reduction other than the mean computes over its axes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReduceKind {
    Sum,
    Max,
    Min,
    Prod,
    /// `Σ|x|`
    L1,
    /// `√Σx²`
    L2,
    /// `Σx²`
    SumSquare,
    /// `ln Σ eˣ`
    LogSumExp,
    /// `ln Σx`
    LogSum,
}

impl ReduceKind {
    pub fn name(self) -> &'static str {
        match self {
            ReduceKind::Sum => "ReduceSum",
            ReduceKind::Max => "ReduceMax",
            ReduceKind::Min => "ReduceMin",
            ReduceKind::Prod => "ReduceProd",
            ReduceKind::L1 => "ReduceL1",
            ReduceKind::L2 => "ReduceL2",
            ReduceKind::SumSquare => "ReduceSumSquare",
            ReduceKind::LogSumExp => "ReduceLogSumExp",
            ReduceKind::LogSum => "ReduceLogSum",
        }
    }
}

/// e^x in plain arithmetic, so loops over it vectorize (libm's `expf` is
/// a call per value): 2^n · e^r with `r = x - n·ln 2` split in two parts
/// and e^r by Cephes' degree-7 polynomial, relative error about 1e-7.
/// Inputs clamp to [-87, 88] (below e^-87 the result stays at e^-87).
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    // Adding and taking away 1.5·2^23 rounds to the nearest integer.
    const ROUND: f32 = 12_582_912.0;
    let x = x.clamp(-87.0, 88.0);
    let n = (x * std::f32::consts::LOG2_E + ROUND) - ROUND;
    let r = x - n * 0.693_359_4 + n * 2.121_944_4e-4;
    let p = 1.987_569_1e-4_f32;
    let p = p * r + 1.398_199_9e-3;
    let p = p * r + 8.333_452e-3;
    let p = p * r + 4.166_579_6e-2;
    let p = p * r + 1.666_666_5e-1;
    let p = p * r + 0.5;
    let e = p * r * r + r + 1.0;
    // n is in -126..=127: a normal power of two.
    e * f32::from_bits(((n as i32 + 127) as u32) << 23)
}

/// The logistic function through [`exp`].
#[inline(always)]
pub fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + exp(-x))
}

/// tanh through [`exp`]: `1 - 2/(e^2x + 1)`, and its Taylor series below
/// 1/16, where that difference would cancel.
#[inline(always)]
pub fn tanh(x: f32) -> f32 {
    let x2 = x * x;
    let series = x + x * x2 * (-1.0 / 3.0 + x2 * (2.0 / 15.0 - x2 * (17.0 / 315.0)));
    let far = 1.0 - 2.0 / (exp(2.0 * x) + 1.0);
    if x.abs() < 0.0625 {
        series
    } else {
        far
    }
}

/// Elementwise two-input functions with numpy broadcasting.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum BinaryOp {
    Add,
    Sub,
    Mul,
    Div,
    Pow,
    Max,
    Min,
    /// ONNX Mod: the remainder takes the dividend's sign with `fmod` (C's
    /// fmod), else the divisor's (Python's %, defined for integers).
    Mod {
        fmod: bool,
    },
}

impl BinaryOp {
    #[inline]
    pub fn apply(self, a: f32, b: f32) -> f32 {
        match self {
            BinaryOp::Add => a + b,
            BinaryOp::Sub => a - b,
            BinaryOp::Mul => a * b,
            BinaryOp::Div => a / b,
            BinaryOp::Pow => a.powf(b),
            BinaryOp::Max => a.max(b),
            BinaryOp::Min => a.min(b),
            BinaryOp::Mod { fmod } => {
                let r = a % b;
                if fmod || r == 0.0 || (r < 0.0) == (b < 0.0) {
                    r
                } else {
                    r + b
                }
            }
        }
    }
    /// Integer semantics (shape arithmetic); division truncates like ONNX.
    #[inline]
    pub fn apply_i64(self, a: i64, b: i64) -> i64 {
        match self {
            BinaryOp::Add => a.wrapping_add(b),
            BinaryOp::Sub => a.wrapping_sub(b),
            BinaryOp::Mul => a.wrapping_mul(b),
            BinaryOp::Div => a.checked_div(b).unwrap_or(0),
            BinaryOp::Pow => a.wrapping_pow(b.clamp(0, 63) as u32),
            BinaryOp::Max => a.max(b),
            BinaryOp::Min => a.min(b),
            BinaryOp::Mod { fmod } => {
                let r = a.checked_rem(b).unwrap_or(0);
                if fmod || r == 0 || (r < 0) == (b < 0) {
                    r
                } else {
                    r + b
                }
            }
        }
    }
}

/// 2-D convolution geometry, shared by Conv and ConvTranspose.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConvGeometry {
    pub kernel: [usize; 2],
    pub strides: [usize; 2],
    pub dilations: [usize; 2],
    /// top, left, bottom, right
    pub pads: [usize; 4],
    pub groups: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PoolKind {
    Max,
    Avg {
        count_include_pad: bool,
    },
    /// The `p`-norm of the window: `(Σ |x|^p)^(1/p)`, padding counting 0.
    Lp {
        p: u32,
    },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PoolGeometry {
    pub kind: PoolKind,
    pub kernel: [usize; 2],
    pub strides: [usize; 2],
    pub dilations: [usize; 2],
    /// top, left, bottom, right
    pub pads: [usize; 4],
    pub ceil_mode: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PadMode {
    Constant,
    Reflect,
    Edge,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum NearestMode {
    RoundPreferFloor,
    RoundPreferCeil,
    Floor,
    Ceil,
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum ResizeMode {
    Nearest(NearestMode),
    Linear,
    /// Cubic convolution with coefficient `a` (-0.75 in ONNX, -0.5 in
    /// some exports); `exclude_outside` drops taps outside the input and
    /// renormalizes, `antialias` widens the kernel by the shrink factor.
    Cubic {
        a: f32,
        exclude_outside: bool,
        antialias: bool,
    },
    /// Linear, the tent widened by the shrink factor when shrinking (PIL
    /// and torchvision's antialiased bilinear).
    LinearAntialias {
        exclude_outside: bool,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CoordTransform {
    HalfPixel,
    PytorchHalfPixel,
    AlignCorners,
    Asymmetric,
    TfHalfPixelForNearest,
    /// Half pixel, centred on the input when the output length was
    /// rounded down.
    HalfPixelSymmetric,
    /// TensorFlow's crop_and_resize: each axis samples its region of
    /// interest (from the op's second input) corner to corner, and an
    /// output whose source lies outside the input takes the extrapolation
    /// value.
    TfCropAndResize,
}

/// Slice of one axis: elements `start, start+step, …` (`len` of them).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AxisSlice {
    pub start: usize,
    pub step: isize,
    pub len: usize,
}

/// The operations of a validated graph. Closed on purpose: the executor, the
/// optimizer and the packer each match exhaustively.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Op {
    /// Inputs: x \[N,C,H,W\], weights \[M,C/g,kh,kw\], optional bias \[M\],
    /// and optionally a residual shaped like the output (bias then
    /// required), added before the activation: `act(conv + b + residual)`.
    Conv {
        geometry: ConvGeometry,
        activation: Option<UnaryOp>,
    },
    /// Inputs: x, weights \[C,M/g,kh,kw\], optional bias \[M\].
    ConvTranspose {
        geometry: ConvGeometry,
        output_padding: [usize; 2],
        activation: Option<UnaryOp>,
    },
    /// Inputs: x, scale, bias, mean, var (all per channel, axis 1).
    BatchNorm {
        epsilon: f32,
    },
    /// Inputs: x, scale \[C\], shift \[C\]: `x*scale+shift` per channel (axis 1);
    /// what a BatchNorm with nothing to fold into becomes.
    ChannelAffine {
        activation: Option<UnaryOp>,
    },
    Unary(UnaryOp),
    Binary(BinaryOp),
    /// Inputs: x, slope (broadcast to x).
    PRelu,
    Pool(PoolGeometry),
    GlobalPool(PoolKind),
    /// Inputs: a \[M,K\] (or \[K,M\] transposed), b, optional c broadcast to \[M,N\].
    Gemm {
        alpha: f32,
        beta: f32,
        trans_a: bool,
        trans_b: bool,
        activation: Option<UnaryOp>,
    },
    /// numpy matmul with batch broadcasting.
    MatMul,
    Softmax {
        axis: usize,
    },
    Concat {
        axis: usize,
    },
    Split {
        axis: usize,
        sizes: Vec<usize>,
    },
    Slice {
        axes: Vec<AxisSlice>,
    },
    Transpose {
        perm: Vec<usize>,
    },
    /// Also Flatten, Squeeze, Unsqueeze: the row-major data does not move.
    Reshape {
        shape: Vec<usize>,
    },
    /// Inputs: data, indices (i64, any shape).
    Gather {
        axis: usize,
    },
    Pad {
        /// (before, after) per axis
        pads: Vec<(usize, usize)>,
        mode: PadMode,
        value: f32,
    },
    /// Inputs: x, and with [`CoordTransform::TfCropAndResize`] a constant
    /// f32 `[2·rank + 1]`: the region of interest's starts on every axis,
    /// its ends (fractions of `len - 1`), then the extrapolation value.
    Resize {
        mode: ResizeMode,
        coord: CoordTransform,
        /// output size per axis; scales are output/input unless given
        out_shape: Vec<usize>,
        scales: Vec<f32>,
    },
    ReduceMean {
        axes: Vec<usize>,
        keepdims: bool,
    },
    Lrn {
        size: usize,
        alpha: f32,
        beta: f32,
        bias: f32,
    },
    Cast {
        to: DType,
    },
    Identity,
    /// Input: x f32. Output `q.dtype`: `saturate(round(x / scale) + zero_point)`.
    Quantize(Quant),
    /// Input: x of `q.dtype`. Output f32: `scale · (x − zero_point)`.
    Dequantize(Quant),
    /// Integer convolution (QLinearConv). Inputs: x of `x.dtype` \[N,C,H,W\],
    /// weights i8 \[M,C/g,kh,kw\] (zero point 0), weight scales f32 \[M\],
    /// optional bias i32 \[M\] in units of `x.scale · w_scale[m]`. Output
    /// `y.dtype`, requantized: `y = q_y(x.scale · w_scale[m] · (Σ w·(x − x.zp) + bias))`,
    /// clamped to `activation`'s range if one is fused.
    QConv {
        geometry: ConvGeometry,
        x: Quant,
        y: Quant,
        activation: Option<UnaryOp>,
    },
    /// QLinearAdd and QLinearMul: `y = q_y(a_real op b_real)`, broadcasting.
    QBinary {
        op: BinaryOp,
        a: Quant,
        b: Quant,
        y: Quant,
    },
    /// QLinearGlobalAveragePool over the spatial axes of NCHW.
    QGlobalAvgPool {
        x: Quant,
        y: Quant,
    },
    /// A reduction over `axes` (ReduceMean has its own variant, older in
    /// the `.sqz` format); `keepdims` keeps them as 1s.
    Reduce {
        kind: ReduceKind,
        axes: Vec<usize>,
        keepdims: bool,
    },
    /// `ln softmax(x)` over `axis`, computed without forming the softmax.
    LogSoftmax {
        axis: usize,
    },
    /// 1 at the first maximum of each lane along `axis`, 0 elsewhere.
    Hardmax {
        axis: usize,
    },
    /// LayerNormalization over the axes from `axis` on. Inputs: x, scale,
    /// optional bias (each of the normalized shape). Outputs: y, and with
    /// `stats` the mean and 1/√(var + epsilon) (x's shape, 1 from `axis`).
    LayerNorm {
        axis: usize,
        epsilon: f32,
        stats: bool,
    },
    /// GatherElements: `y[..i..] = x[..indices[..i..]..]` along `axis`;
    /// inputs x (any dtype) and i64 indices of x's rank, output of their shape.
    GatherElements {
        axis: usize,
    },
    /// ArgMax (`max`) or ArgMin over `axis`: i64 indices, the first of equal
    /// extremes unless `select_last`.
    ArgExtreme {
        max: bool,
        axis: usize,
        keepdims: bool,
        select_last: bool,
    },
    /// Expand: x (any dtype) broadcast numpy-style to `shape`, the output's
    /// shape (the broadcast of x's and the requested one, fixed at import).
    Expand {
        shape: Vec<usize>,
    },
    /// Tile: x (any dtype) repeated `repeats[d]` times along each axis `d`.
    Tile {
        repeats: Vec<usize>,
    },
    /// Trilu: of each matrix in the last two axes, the elements on and
    /// above (`upper`) or below diagonal `k` kept, the others zero. An
    /// optional second input, an i64 scalar, gives `k` at run time.
    Trilu {
        upper: bool,
        k: i64,
    },
    /// CumSum along `axis` (negative counts from the end), `exclusive` of
    /// the element itself, from the end when `reverse`. An optional second
    /// input, an i64 scalar, gives the axis at run time.
    CumSum {
        axis: i64,
        exclusive: bool,
        reverse: bool,
    },
    /// ScatterElements: a copy of data (f32) where each update lands at
    /// its own position with the `axis` coordinate replaced by its index.
    /// Inputs: data, i64 indices and updates of the indices' shape.
    ScatterElements {
        axis: usize,
        reduction: ScatterReduction,
    },
    /// ScatterND: a copy of data (f32) where each index tuple (the last
    /// axis of the i64 indices) selects the slice its update replaces.
    ScatterNd {
        reduction: ScatterReduction,
    },
    /// Inputs: a, b of one type (broadcast); output i64 1 or 0 (ONNX bools
    /// are i64 0/1 in this runtime, as the importer reads them).
    Compare(CompareOp),
    /// Inputs: two i64 (broadcast): And/Or/Xor on bools and the Bitwise
    /// ops, which agree on 0/1.
    Bitwise(BitwiseOp),
    /// Inputs: condition (i64, nonzero is true), x, y of one type, all
    /// broadcast: x where the condition holds, else y.
    Where,
    /// LSTM, GRU or RNN over `[seq, batch, features]`. Inputs, all present
    /// (the importer supplies ONNX's defaults): x, W `[dirs, G·hidden,
    /// features]`, R `[dirs, G·hidden, hidden]`, bias `[dirs, 2·G·hidden]`,
    /// sequence lengths (i64 `[batch]`), initial h `[dirs, batch, hidden]`,
    /// and for an LSTM initial c (like h) and peepholes `[dirs, 3·hidden]`.
    /// Outputs: y `[seq, dirs, batch, hidden]`, last h, and for an LSTM
    /// last c (like h). G is [`Cell::gates`].
    Recurrent(Recurrent),
    /// TopK: the `k` largest (or smallest) values of f32 x along `axis`,
    /// in order, ties by the lower index; outputs the values and their i64
    /// indices.
    TopK {
        axis: usize,
        k: usize,
        largest: bool,
    },
    /// GatherND: the slices of x (any dtype) that the last axis of the i64
    /// indices addresses (negative from the end), the first `batch_dims`
    /// axes of both shared.
    GatherNd {
        batch_dims: usize,
    },
    /// OneHot: i64 or f32 indices (negative from `depth`) to a new axis
    /// `axis` of `depth`, holding the second input's `[off, on]` values:
    /// `on` at each index, `off` elsewhere (and everywhere for an index
    /// out of range).
    OneHot {
        axis: usize,
        depth: usize,
    },
    /// Einsum of f32 operands: `terms[i]` labels operand `i`'s axes (an
    /// ellipsis already expanded into labels of its own), `output` the
    /// output's; labels are `0..` dense. Labels missing from the output
    /// are summed over; a label repeated in a term walks its diagonal.
    Einsum {
        terms: Vec<Vec<u8>>,
        output: Vec<u8>,
    },
    /// BitShift of i64 operands holding unsigned integers of `width` bits:
    /// left (bits past `width` dropped) or right (logical).
    BitShift {
        left: bool,
        width: u32,
    },
    /// NonMaxSuppression of f32 boxes `[batch, boxes, 4]` by f32 scores
    /// `[batch, classes, boxes]`: i64 rows `[batch, class, box]`, per batch
    /// and class the best-scoring boxes first. The row count depends on the
    /// data, so the output is planned at its most rows, and the rows past
    /// the selection hold -1 ([`Nms::FREE_ROW`]); the session trims them
    /// from the tensors it returns (an in-place view or the C ABI sees all
    /// rows). Its output may only be a graph output.
    NonMaxSuppression(Nms),
}

/// The parameters of [`Op::NonMaxSuppression`].
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Nms {
    /// Boxes as `[x_centre, y_centre, width, height]`, else as two
    /// corners `[y1, x1, y2, x2]` in either order.
    pub centre_point_box: bool,
    pub max_per_class: usize,
    /// A box overlapping a selected one by more than this IoU is dropped.
    pub iou_threshold: f32,
    /// Only boxes scoring above this are candidates (all without one).
    pub score_threshold: Option<f32>,
}

impl Nms {
    /// The first element of every output row past the selection.
    pub const FREE_ROW: i64 = -1;

    /// Output rows for `batch` batches of `classes` classes of `boxes`:
    /// the most the data can select.
    pub fn rows(&self, batch: usize, classes: usize, boxes: usize) -> Option<usize> {
        batch
            .checked_mul(classes)?
            .checked_mul(self.max_per_class.min(boxes))
    }
}

/// Each Einsum label's length from its operands (1 broadcasts), or `None`
/// when the operands disagree or a term does not match its operand's rank.
pub fn einsum_sizes(
    terms: &[Vec<u8>],
    shapes: &[&[usize]],
) -> Option<smallvec::SmallVec<[usize; 8]>> {
    let count = terms
        .iter()
        .flatten()
        .map(|&l| l as usize + 1)
        .max()
        .unwrap_or(0);
    let mut sizes = smallvec::SmallVec::from_elem(1usize, count);
    for (labels, shape) in terms.iter().zip(shapes) {
        if labels.len() != shape.len() {
            return None;
        }
        for (&l, &d) in labels.iter().zip(*shape) {
            let size = &mut sizes[l as usize];
            match (*size, d) {
                (_, 1) => {}
                (1, _) => *size = d,
                (s, d) if s == d => {}
                _ => return None,
            }
        }
    }
    Some(sizes)
}

/// The settings of a recurrent layer ([`Op::Recurrent`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Recurrent {
    pub cell: Cell,
    pub direction: Direction,
    pub hidden: usize,
    /// Each direction's activations, forward first: LSTM f, g, h; GRU f,
    /// g; RNN f (ONNX's names for them).
    pub activations: Vec<UnaryOp>,
    /// Bound on the gates' inputs before their activations (ONNX `clip`).
    pub clip: Option<f32>,
}

/// A recurrent layer's cell; gates in ONNX's order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Cell {
    /// Gates i, o, f, c, with peepholes.
    Lstm,
    /// Gates z, r, h; with `linear_before_reset`, r scales `R·h + b`
    /// rather than h.
    Gru {
        linear_before_reset: bool,
    },
    Rnn,
}

impl Cell {
    pub fn gates(self) -> usize {
        match self {
            Cell::Lstm => 4,
            Cell::Gru { .. } => 3,
            Cell::Rnn => 1,
        }
    }
    /// Activations per direction.
    pub fn activations(self) -> usize {
        match self {
            Cell::Lstm => 3,
            Cell::Gru { .. } => 2,
            Cell::Rnn => 1,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Cell::Lstm => "LSTM",
            Cell::Gru { .. } => "GRU",
            Cell::Rnn => "RNN",
        }
    }
}

/// Which way a recurrent layer reads the sequence.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Direction {
    Forward,
    Reverse,
    /// Forward (direction 0), then reverse (direction 1).
    Bidirectional,
}

impl Direction {
    pub fn count(self) -> usize {
        match self {
            Direction::Bidirectional => 2,
            _ => 1,
        }
    }
    /// Whether direction `d` reads the sequence backwards.
    pub fn reverse(self, d: usize) -> bool {
        self == Direction::Reverse || d == 1
    }
}

/// Comparisons with numpy broadcasting (NaN compares false).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CompareOp {
    Equal,
    Less,
    Greater,
    LessOrEqual,
    GreaterOrEqual,
}

impl CompareOp {
    #[inline]
    pub fn apply<T: PartialOrd>(self, a: T, b: T) -> bool {
        match self {
            CompareOp::Equal => a == b,
            CompareOp::Less => a < b,
            CompareOp::Greater => a > b,
            CompareOp::LessOrEqual => a <= b,
            CompareOp::GreaterOrEqual => a >= b,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            CompareOp::Equal => "Equal",
            CompareOp::Less => "Less",
            CompareOp::Greater => "Greater",
            CompareOp::LessOrEqual => "LessOrEqual",
            CompareOp::GreaterOrEqual => "GreaterOrEqual",
        }
    }
}

/// Bitwise functions of two integers with numpy broadcasting.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum BitwiseOp {
    And,
    Or,
    Xor,
}

impl BitwiseOp {
    #[inline]
    pub fn apply(self, a: i64, b: i64) -> i64 {
        match self {
            BitwiseOp::And => a & b,
            BitwiseOp::Or => a | b,
            BitwiseOp::Xor => a ^ b,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            BitwiseOp::And => "And",
            BitwiseOp::Or => "Or",
            BitwiseOp::Xor => "Xor",
        }
    }
}

/// What a value is: element type and static shape.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TypeInfo {
    pub dtype: DType,
    pub shape: Vec<usize>,
}

impl TypeInfo {
    pub fn new(dtype: DType, shape: Vec<usize>) -> Self {
        TypeInfo { dtype, shape }
    }
    pub fn f32(shape: Vec<usize>) -> Self {
        TypeInfo::new(DType::F32, shape)
    }
}

/// Bound on kernel sizes, strides, dilations, pads and groups: far above any
/// real CNN, low enough that window arithmetic cannot overflow.
pub const MAX_WINDOW: usize = 1 << 20;

/// Kernel, stride and dilation in 1..=MAX_WINDOW, pads in 0..=MAX_WINDOW.
fn window_in_bounds(
    kernel: &[usize; 2],
    strides: &[usize; 2],
    dilations: &[usize; 2],
    pads: &[usize; 4],
) -> bool {
    let positive = |v: &usize| (1..=MAX_WINDOW).contains(v);
    kernel.iter().all(positive)
        && strides.iter().all(positive)
        && dilations.iter().all(positive)
        && pads.iter().all(|&p| p <= MAX_WINDOW)
}

/// numpy broadcast of two shapes.
pub fn broadcast_shapes(a: &[usize], b: &[usize]) -> Option<Vec<usize>> {
    let rank = a.len().max(b.len());
    let mut out = vec![0; rank];
    for i in 0..rank {
        let da = if i + a.len() >= rank {
            a[i + a.len() - rank]
        } else {
            1
        };
        let db = if i + b.len() >= rank {
            b[i + b.len() - rank]
        } else {
            1
        };
        out[i] = match (da, db) {
            (x, y) if x == y => x,
            (1, y) => y,
            (x, 1) => x,
            _ => return None,
        };
    }
    Some(out)
}

/// Output length of a sliding window over `len` padded by `pads`.
pub fn window_out_len(
    len: usize,
    kernel: usize,
    stride: usize,
    dilation: usize,
    pads: (usize, usize),
    ceil: bool,
) -> Option<usize> {
    let span = dilation
        .checked_mul(kernel.checked_sub(1)?)?
        .checked_add(1)?;
    let padded = len.checked_add(pads.0)?.checked_add(pads.1)?;
    let room = padded.checked_sub(span)?;
    if stride == 0 {
        return None;
    }
    let mut out = if ceil {
        room.div_ceil(stride) + 1
    } else {
        room / stride + 1
    };
    // A window must start inside the input or the leading padding.
    if ceil && (out - 1) * stride >= len + pads.0 {
        out -= 1;
    }
    Some(out)
}

impl Op {
    /// ONNX-style name, for reports.
    pub fn name(&self) -> &'static str {
        match self {
            Op::Conv { .. } => "Conv",
            Op::ConvTranspose { .. } => "ConvTranspose",
            Op::BatchNorm { .. } => "BatchNormalization",
            Op::ChannelAffine { .. } => "ChannelAffine",
            Op::Unary(u) => match u {
                UnaryOp::Relu => "Relu",
                UnaryOp::Clip { .. } => "Clip",
                UnaryOp::LeakyRelu { .. } => "LeakyRelu",
                UnaryOp::Sigmoid => "Sigmoid",
                UnaryOp::HardSigmoid { .. } => "HardSigmoid",
                UnaryOp::HardSwish => "HardSwish",
                UnaryOp::Tanh => "Tanh",
                UnaryOp::Sqrt => "Sqrt",
                UnaryOp::Exp => "Exp",
                UnaryOp::Neg => "Neg",
                UnaryOp::Abs => "Abs",
                UnaryOp::Reciprocal => "Reciprocal",
                UnaryOp::Log => "Log",
                UnaryOp::Floor => "Floor",
                UnaryOp::Ceil => "Ceil",
                UnaryOp::Round => "Round",
                UnaryOp::Sign => "Sign",
                UnaryOp::Erf => "Erf",
                UnaryOp::Softplus => "Softplus",
                UnaryOp::Softsign => "Softsign",
                UnaryOp::Elu { .. } => "Elu",
                UnaryOp::Selu { .. } => "Selu",
                UnaryOp::Celu { .. } => "Celu",
                UnaryOp::ThresholdedRelu { .. } => "ThresholdedRelu",
                UnaryOp::Mish => "Mish",
                UnaryOp::Gelu { .. } => "Gelu",
                UnaryOp::Trig(t) => t.name(),
                UnaryOp::Shrink { .. } => "Shrink",
            },
            Op::Binary(b) => match b {
                BinaryOp::Add => "Add",
                BinaryOp::Sub => "Sub",
                BinaryOp::Mul => "Mul",
                BinaryOp::Div => "Div",
                BinaryOp::Pow => "Pow",
                BinaryOp::Max => "Max",
                BinaryOp::Min => "Min",
                BinaryOp::Mod { .. } => "Mod",
            },
            Op::PRelu => "PRelu",
            Op::Pool(p) => match p.kind {
                PoolKind::Max => "MaxPool",
                PoolKind::Avg { .. } => "AveragePool",
                PoolKind::Lp { .. } => "LpPool",
            },
            Op::GlobalPool(PoolKind::Max) => "GlobalMaxPool",
            Op::GlobalPool(PoolKind::Avg { .. }) => "GlobalAveragePool",
            Op::GlobalPool(PoolKind::Lp { .. }) => "GlobalLpPool",
            Op::Gemm { .. } => "Gemm",
            Op::MatMul => "MatMul",
            Op::Softmax { .. } => "Softmax",
            Op::LogSoftmax { .. } => "LogSoftmax",
            Op::Hardmax { .. } => "Hardmax",
            Op::LayerNorm { .. } => "LayerNormalization",
            Op::ArgExtreme { max: true, .. } => "ArgMax",
            Op::ArgExtreme { max: false, .. } => "ArgMin",
            Op::Concat { .. } => "Concat",
            Op::Split { .. } => "Split",
            Op::Slice { .. } => "Slice",
            Op::Transpose { .. } => "Transpose",
            Op::Reshape { .. } => "Reshape",
            Op::Gather { .. } => "Gather",
            Op::GatherElements { .. } => "GatherElements",
            Op::Expand { .. } => "Expand",
            Op::Tile { .. } => "Tile",
            Op::Trilu { .. } => "Trilu",
            Op::CumSum { .. } => "CumSum",
            Op::ScatterElements { .. } => "ScatterElements",
            Op::ScatterNd { .. } => "ScatterND",
            Op::Compare(c) => c.name(),
            Op::Bitwise(b) => b.name(),
            Op::Where => "Where",
            Op::Recurrent(r) => r.cell.name(),
            Op::TopK { .. } => "TopK",
            Op::NonMaxSuppression(_) => "NonMaxSuppression",
            Op::GatherNd { .. } => "GatherND",
            Op::OneHot { .. } => "OneHot",
            Op::Einsum { .. } => "Einsum",
            Op::BitShift { .. } => "BitShift",
            Op::Pad { .. } => "Pad",
            Op::Resize { .. } => "Resize",
            Op::ReduceMean { .. } => "ReduceMean",
            Op::Reduce { kind, .. } => kind.name(),
            Op::Lrn { .. } => "LRN",
            Op::Cast { .. } => "Cast",
            Op::Identity => "Identity",
            Op::Quantize(_) => "QuantizeLinear",
            Op::Dequantize(_) => "DequantizeLinear",
            Op::QConv { .. } => "QLinearConv",
            Op::QBinary {
                op: BinaryOp::Mul, ..
            } => "QLinearMul",
            Op::QBinary { .. } => "QLinearAdd",
            Op::QGlobalAvgPool { .. } => "QLinearGlobalAveragePool",
        }
    }

    /// Whether the op's output has as many rows as the data selects
    /// (NonMaxSuppression): planned at its most rows, those past the
    /// selection starting with [`Nms::FREE_ROW`]. Such an output may only
    /// be a graph output (validation), is never folded into a constant
    /// (its padding would stay), and a run returns it cut to its rows.
    pub fn rows_depend_on_data(&self) -> bool {
        matches!(self, Op::NonMaxSuppression(_))
    }

    /// The fused epilogue activation, if the op has one.
    pub fn activation(&self) -> Option<UnaryOp> {
        match self {
            Op::Conv { activation, .. }
            | Op::ConvTranspose { activation, .. }
            | Op::ChannelAffine { activation }
            | Op::Gemm { activation, .. }
            | Op::QConv { activation, .. } => *activation,
            _ => None,
        }
    }

    /// Static shape rule: the output types from the input types, or why the
    /// inputs do not fit this op. This is the single place shapes are checked.
    pub fn infer(&self, node: &str, ins: &[&TypeInfo]) -> Result<Vec<TypeInfo>> {
        let bad = |reason: String| Error::invalid(node, reason);
        let arity = |lo: usize, hi: usize| {
            if ins.len() < lo || ins.len() > hi {
                Err(bad(format!(
                    "{} takes {lo}..={hi} inputs, got {}",
                    self.name(),
                    ins.len()
                )))
            } else {
                Ok(())
            }
        };
        let want_f32 = |i: usize| {
            if ins[i].dtype != DType::F32 {
                Err(bad(format!("input {i} of {} must be f32", self.name())))
            } else {
                Ok(())
            }
        };
        let want_dtype = |i: usize, dtype: DType| {
            if ins[i].dtype != dtype {
                Err(bad(format!(
                    "input {i} of {} must be {}, is {}",
                    self.name(),
                    dtype.name(),
                    ins[i].dtype.name()
                )))
            } else {
                Ok(())
            }
        };
        let rank = |i: usize, r: usize| {
            if ins[i].shape.len() != r {
                Err(bad(format!(
                    "input {i} of {} must have rank {r}, has shape {:?}",
                    self.name(),
                    ins[i].shape
                )))
            } else {
                Ok(())
            }
        };
        let per_channel = |i: usize, c: usize| {
            if ins[i].shape.iter().product::<usize>() != c {
                Err(bad(format!(
                    "input {i} of {} must have {c} elements, has shape {:?}",
                    self.name(),
                    ins[i].shape
                )))
            } else {
                Ok(())
            }
        };
        let one = |dtype: DType, shape: Vec<usize>| Ok(vec![TypeInfo::new(dtype, shape)]);
        match self {
            Op::Conv { geometry: g, .. } | Op::ConvTranspose { geometry: g, .. } => {
                // A Conv may carry a fused residual as a fourth input.
                let residual = matches!(self, Op::Conv { .. }) && ins.len() == 4;
                arity(2, if residual { 4 } else { 3 })?;
                want_f32(0)?;
                want_f32(1)?;
                let output_padding = match self {
                    Op::ConvTranspose { output_padding, .. } => Some(output_padding),
                    _ => None,
                };
                let out =
                    conv_output(self.name(), g, ins[0], ins[1], output_padding).map_err(bad)?;
                if ins.len() >= 3 {
                    want_f32(2)?;
                    per_channel(2, out[1])?;
                }
                if residual && (ins[3].dtype != DType::F32 || ins[3].shape != out) {
                    return Err(bad(format!(
                        "residual {:?} does not match the Conv output {out:?}",
                        ins[3].shape
                    )));
                }
                one(DType::F32, out)
            }
            Op::BatchNorm { .. } | Op::ChannelAffine { .. } => {
                let n = if matches!(self, Op::BatchNorm { .. }) {
                    5
                } else {
                    3
                };
                arity(n, n)?;
                if ins[0].shape.len() < 2 {
                    return Err(bad("needs a channel axis".into()));
                }
                let c = ins[0].shape[1];
                for i in 0..n {
                    want_f32(i)?;
                    if i > 0 {
                        per_channel(i, c)?;
                    }
                }
                one(DType::F32, ins[0].shape.clone())
            }
            Op::Unary(u) => {
                arity(1, 1)?;
                if !(u.integer() && ins[0].dtype == DType::I64) {
                    want_f32(0)?;
                }
                one(ins[0].dtype, ins[0].shape.clone())
            }
            Op::Binary(_) | Op::PRelu => {
                arity(2, 2)?;
                if ins[0].dtype != ins[1].dtype {
                    return Err(bad("operands have different types".into()));
                }
                let s = broadcast_shapes(&ins[0].shape, &ins[1].shape).ok_or_else(|| {
                    bad(format!(
                        "cannot broadcast {:?} with {:?}",
                        ins[0].shape, ins[1].shape
                    ))
                })?;
                if matches!(self, Op::PRelu) && s != ins[0].shape {
                    return Err(bad("PRelu slope must broadcast to the input".into()));
                }
                one(ins[0].dtype, s)
            }
            Op::Pool(p) => {
                arity(1, 1)?;
                want_f32(0)?;
                rank(0, 4)?;
                let x = &ins[0].shape;
                if !window_in_bounds(&p.kernel, &p.strides, &p.dilations, &p.pads) {
                    return Err(bad(format!("pooling geometry out of bounds: {p:?}")));
                }
                let mut out = x.clone();
                for a in 0..2 {
                    out[a + 2] = window_out_len(
                        x[a + 2],
                        p.kernel[a],
                        p.strides[a],
                        p.dilations[a],
                        (p.pads[a], p.pads[a + 2]),
                        p.ceil_mode,
                    )
                    .ok_or_else(|| bad(format!("pool window larger than input {x:?}")))?;
                }
                one(DType::F32, out)
            }
            Op::GlobalPool(_) => {
                arity(1, 1)?;
                want_f32(0)?;
                if ins[0].shape.len() < 3 {
                    return Err(bad("global pooling needs spatial axes".into()));
                }
                if ins[0].shape[2..].contains(&0) {
                    return Err(bad("global pooling over an empty area".into()));
                }
                let mut s = ins[0].shape.clone();
                s[2..].iter_mut().for_each(|d| *d = 1);
                one(DType::F32, s)
            }
            Op::Gemm {
                trans_a, trans_b, ..
            } => {
                arity(2, 3)?;
                want_f32(0)?;
                want_f32(1)?;
                rank(0, 2)?;
                rank(1, 2)?;
                let (a, b) = (&ins[0].shape, &ins[1].shape);
                let (m, k) = if *trans_a { (a[1], a[0]) } else { (a[0], a[1]) };
                let (k2, n) = if *trans_b { (b[1], b[0]) } else { (b[0], b[1]) };
                if k != k2 {
                    return Err(bad(format!("Gemm inner dims {a:?} x {b:?}")));
                }
                if ins.len() == 3 {
                    want_f32(2)?;
                    if broadcast_shapes(&ins[2].shape, &[m, n]).as_deref() != Some(&[m, n]) {
                        return Err(bad(format!("Gemm C {:?} vs [{m},{n}]", ins[2].shape)));
                    }
                }
                one(DType::F32, vec![m, n])
            }
            Op::MatMul => {
                arity(2, 2)?;
                want_f32(0)?;
                want_f32(1)?;
                let (a, b) = (&ins[0].shape, &ins[1].shape);
                if a.is_empty() || b.is_empty() {
                    return Err(bad("MatMul of a scalar".into()));
                }
                let a2 = if a.len() == 1 {
                    vec![1, a[0]]
                } else {
                    a.clone()
                };
                let b2 = if b.len() == 1 {
                    vec![b[0], 1]
                } else {
                    b.clone()
                };
                let (m, k) = (a2[a2.len() - 2], a2[a2.len() - 1]);
                let (k2, n) = (b2[b2.len() - 2], b2[b2.len() - 1]);
                if k != k2 {
                    return Err(bad(format!("MatMul inner dims {a:?} x {b:?}")));
                }
                let mut out = broadcast_shapes(&a2[..a2.len() - 2], &b2[..b2.len() - 2])
                    .ok_or_else(|| bad(format!("MatMul batch dims {a:?} x {b:?}")))?;
                if a.len() > 1 {
                    out.push(m);
                }
                if b.len() > 1 {
                    out.push(n);
                }
                one(DType::F32, out)
            }
            Op::LayerNorm { axis, stats, .. } => {
                arity(2, 3)?;
                for i in 0..ins.len() {
                    want_f32(i)?;
                }
                let s = &ins[0].shape;
                if *axis >= s.len() {
                    return Err(bad("layer norm axis out of range".into()));
                }
                let n: usize = s[*axis..].iter().product();
                if ins[1..]
                    .iter()
                    .any(|t| t.shape.iter().product::<usize>() != n)
                {
                    return Err(bad(format!(
                        "layer norm scale and bias must have the {n} elements of {:?}",
                        &s[*axis..]
                    )));
                }
                let mut stat = s.clone();
                stat[*axis..].iter_mut().for_each(|d| *d = 1);
                let mut outs = vec![TypeInfo::new(DType::F32, s.clone())];
                if *stats {
                    outs.push(TypeInfo::new(DType::F32, stat.clone()));
                    outs.push(TypeInfo::new(DType::F32, stat));
                }
                Ok(outs)
            }
            Op::ArgExtreme { axis, keepdims, .. } => {
                arity(1, 1)?;
                want_f32(0)?;
                let s = &ins[0].shape;
                if *axis >= s.len() || s[*axis] == 0 {
                    return Err(bad("arg axis out of range or empty".into()));
                }
                let mut out = s.clone();
                if *keepdims {
                    out[*axis] = 1;
                } else {
                    out.remove(*axis);
                }
                one(DType::I64, out)
            }
            Op::Softmax { axis } | Op::LogSoftmax { axis } | Op::Hardmax { axis } => {
                arity(1, 1)?;
                want_f32(0)?;
                if *axis >= ins[0].shape.len() {
                    return Err(bad("softmax axis out of range".into()));
                }
                one(DType::F32, ins[0].shape.clone())
            }
            Op::Concat { axis } => {
                arity(1, usize::MAX)?;
                let first = &ins[0];
                if *axis >= first.shape.len() {
                    return Err(bad("concat axis out of range".into()));
                }
                let mut out = first.shape.clone();
                out[*axis] = 0;
                for t in ins {
                    let same_rest = t.shape.len() == first.shape.len()
                        && (0..t.shape.len()).all(|d| d == *axis || t.shape[d] == first.shape[d]);
                    if t.dtype != first.dtype || !same_rest {
                        return Err(bad(format!(
                            "concat of {:?} and {:?}",
                            first.shape, t.shape
                        )));
                    }
                    out[*axis] = out[*axis]
                        .checked_add(t.shape[*axis])
                        .ok_or_else(|| bad("concat size overflows".into()))?;
                }
                one(first.dtype, out)
            }
            Op::Split { axis, sizes } => {
                arity(1, 1)?;
                let s = &ins[0].shape;
                let total = sizes.iter().try_fold(0usize, |a, &b| a.checked_add(b));
                if sizes.is_empty() || *axis >= s.len() || total != Some(s[*axis]) {
                    return Err(bad(format!("split {sizes:?} of {s:?} on axis {axis}")));
                }
                Ok(sizes
                    .iter()
                    .map(|&n| {
                        let mut o = s.clone();
                        o[*axis] = n;
                        TypeInfo::new(ins[0].dtype, o)
                    })
                    .collect())
            }
            Op::Slice { axes } => {
                arity(1, 1)?;
                let s = &ins[0].shape;
                if axes.len() != s.len() {
                    return Err(bad("slice needs one entry per axis".into()));
                }
                for (d, a) in axes.iter().enumerate() {
                    // Wide arithmetic: a hostile step or length must not wrap.
                    let last = a.start as i128 + a.step as i128 * (a.len as i128 - 1);
                    let ok = a.step != 0
                        && a.len <= s[d]
                        && (a.len == 0 || (a.start < s[d] && last >= 0 && last < s[d] as i128));
                    if !ok {
                        return Err(bad(format!("slice {a:?} out of axis {d} of {s:?}")));
                    }
                }
                one(ins[0].dtype, axes.iter().map(|a| a.len).collect())
            }
            Op::Transpose { perm } => {
                arity(1, 1)?;
                let s = &ins[0].shape;
                let mut seen = vec![false; s.len()];
                if perm.len() != s.len()
                    || perm
                        .iter()
                        .any(|&p| p >= s.len() || std::mem::replace(&mut seen[p], true))
                {
                    return Err(bad(format!("bad permutation {perm:?} for {s:?}")));
                }
                one(ins[0].dtype, perm.iter().map(|&p| s[p]).collect())
            }
            Op::Reshape { shape } => {
                arity(1, 1)?;
                let n = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
                if n != Some(ins[0].shape.iter().product::<usize>()) {
                    return Err(bad(format!("reshape {:?} to {shape:?}", ins[0].shape)));
                }
                one(ins[0].dtype, shape.clone())
            }
            Op::Gather { axis } => {
                arity(2, 2)?;
                if ins[1].dtype != DType::I64 {
                    return Err(bad("Gather indices must be integers".into()));
                }
                let s = &ins[0].shape;
                if *axis >= s.len() {
                    return Err(bad("gather axis out of range".into()));
                }
                let mut out = s[..*axis].to_vec();
                out.extend_from_slice(&ins[1].shape);
                out.extend_from_slice(&s[axis + 1..]);
                one(ins[0].dtype, out)
            }
            Op::GatherElements { axis } => {
                arity(2, 2)?;
                let (x, idx) = (&ins[0].shape, &ins[1].shape);
                let fits = x.len() == idx.len()
                    && *axis < x.len()
                    && x.iter()
                        .zip(idx)
                        .enumerate()
                        .all(|(d, (&n, &m))| d == *axis || m <= n);
                if ins[1].dtype != DType::I64 || !fits {
                    return Err(bad(format!(
                        "GatherElements of {x:?} by i64 indices {idx:?} on axis {axis}"
                    )));
                }
                one(ins[0].dtype, idx.clone())
            }
            Op::Expand { shape } => {
                arity(1, 1)?;
                if broadcast_shapes(&ins[0].shape, shape).as_ref() != Some(shape) {
                    return Err(bad(format!("expand {:?} to {shape:?}", ins[0].shape)));
                }
                one(ins[0].dtype, shape.clone())
            }
            Op::ScatterElements { axis, .. } => {
                arity(3, 3)?;
                let (x, idx, upd) = (&ins[0].shape, &ins[1].shape, &ins[2].shape);
                let fits = x.len() == idx.len()
                    && *axis < x.len()
                    && idx == upd
                    && x.iter()
                        .zip(idx)
                        .enumerate()
                        .all(|(d, (&n, &m))| d == *axis || m <= n);
                if ins[1].dtype != DType::I64 || ins[0].dtype != ins[2].dtype || !fits {
                    return Err(bad(format!(
                        "ScatterElements into {x:?} by indices {idx:?} of updates {upd:?}"
                    )));
                }
                one(ins[0].dtype, x.clone())
            }
            Op::Compare(_) | Op::Bitwise(_) | Op::Where => {
                let n = if matches!(self, Op::Where) { 3 } else { 2 };
                arity(n, n)?;
                let shape = ins
                    .iter()
                    .try_fold(ins[0].shape.clone(), |s, i| broadcast_shapes(&s, &i.shape));
                let shape = shape.ok_or_else(|| {
                    bad(format!(
                        "cannot broadcast {:?}",
                        ins.iter().map(|i| &i.shape).collect::<Vec<_>>()
                    ))
                })?;
                // Where: an i64 condition, then x and y of one type; Compare:
                // two of one type; both f32 or i64. Bitwise: two i64.
                let (operands, dtype) = match self {
                    Op::Where => (&ins[1..], ins[1].dtype),
                    _ => (ins, DType::I64),
                };
                let kind = match self {
                    Op::Bitwise(_) => operands[0].dtype == DType::I64,
                    _ => matches!(operands[0].dtype, DType::F32 | DType::I64),
                };
                let typed = kind
                    && operands.iter().all(|i| i.dtype == operands[0].dtype)
                    && (!matches!(self, Op::Where) || ins[0].dtype == DType::I64);
                if !typed {
                    return Err(bad(format!(
                        "operand types {:?}",
                        ins.iter().map(|i| i.dtype.name()).collect::<Vec<_>>()
                    )));
                }
                one(dtype, shape)
            }
            Op::NonMaxSuppression(nms) => {
                arity(2, 2)?;
                want_f32(0)?;
                want_f32(1)?;
                let (b, s) = (&ins[0].shape, &ins[1].shape);
                if b.len() != 3 || b[2] != 4 || s.len() != 3 || s[0] != b[0] || s[2] != b[1] {
                    return Err(bad(format!("boxes {b:?} and scores {s:?}")));
                }
                let rows = nms
                    .rows(b[0], s[1], b[1])
                    .ok_or_else(|| bad("too many output rows".into()))?;
                one(DType::I64, vec![rows, 3])
            }
            Op::TopK { axis, k, .. } => {
                arity(1, 1)?;
                want_f32(0)?;
                let mut out = ins[0].shape.clone();
                if *axis >= out.len() || *k > out[*axis] {
                    return Err(bad(format!("top {k} on axis {axis} of {out:?}")));
                }
                out[*axis] = *k;
                Ok(vec![
                    TypeInfo::new(DType::F32, out.clone()),
                    TypeInfo::new(DType::I64, out),
                ])
            }
            Op::GatherNd { batch_dims } => {
                arity(2, 2)?;
                let (x, idx) = (&ins[0].shape, &ins[1].shape);
                let b = *batch_dims;
                let m = idx.last().copied().unwrap_or(usize::MAX);
                let fits = ins[1].dtype == DType::I64
                    && idx.len() > b
                    && b + m <= x.len()
                    && x[..b] == idx[..b];
                if !fits {
                    return Err(bad(format!(
                        "GatherND of {x:?} by i64 indices {idx:?}, {b} batch dims"
                    )));
                }
                let mut out = idx[..idx.len() - 1].to_vec();
                out.extend_from_slice(&x[b + m..]);
                one(ins[0].dtype, out)
            }
            Op::Einsum { terms, output } => {
                arity(terms.len().max(1), terms.len().max(1))?;
                (0..ins.len()).try_for_each(want_f32)?;
                let shapes: Vec<&[usize]> = ins.iter().map(|i| i.shape.as_slice()).collect();
                let sizes = einsum_sizes(terms, &shapes)
                    .filter(|s| output.iter().all(|&l| (l as usize) < s.len()))
                    .ok_or_else(|| bad(format!("einsum {terms:?} -> {output:?} of {shapes:?}")))?;
                one(
                    DType::F32,
                    output.iter().map(|&l| sizes[l as usize]).collect(),
                )
            }
            Op::BitShift { width, .. } => {
                arity(2, 2)?;
                let shape = broadcast_shapes(&ins[0].shape, &ins[1].shape);
                let typed = ins.iter().all(|i| i.dtype == DType::I64);
                match shape {
                    Some(shape) if typed && (1..=64).contains(width) => one(DType::I64, shape),
                    _ => Err(bad("BitShift of i64 operands that broadcast".into())),
                }
            }
            Op::OneHot { axis, depth } => {
                arity(2, 2)?;
                let idx = &ins[0].shape;
                let typed = matches!(ins[0].dtype, DType::I64 | DType::F32);
                if !typed || *axis > idx.len() || ins[1].shape.iter().product::<usize>() != 2 {
                    return Err(bad(format!(
                        "OneHot of {idx:?} on axis {axis}, values {:?}",
                        ins[1].shape
                    )));
                }
                let mut out = idx.clone();
                out.insert(*axis, *depth);
                one(ins[1].dtype, out)
            }
            Op::Recurrent(r) => {
                let lstm = r.cell == Cell::Lstm;
                let n = if lstm { 8 } else { 6 };
                arity(n, n)?;
                let x = &ins[0].shape;
                if x.len() != 3 {
                    return Err(bad(format!(
                        "input of shape {x:?}, not [seq, batch, features]"
                    )));
                }
                want_f32(0)?;
                let (seq, batch, features) = (x[0], x[1], x[2]);
                let (dirs, gh, h) = (r.direction.count(), r.cell.gates() * r.hidden, r.hidden);
                let mut want = vec![
                    (1, vec![dirs, gh, features]),
                    (2, vec![dirs, gh, h]),
                    (3, vec![dirs, 2 * gh]),
                    (5, vec![dirs, batch, h]),
                ];
                if lstm {
                    want.push((6, vec![dirs, batch, h]));
                    want.push((7, vec![dirs, 3 * h]));
                }
                for (i, shape) in want {
                    want_f32(i)?;
                    if ins[i].shape != shape {
                        return Err(bad(format!(
                            "input {i} of shape {:?}, {shape:?} expected",
                            ins[i].shape
                        )));
                    }
                }
                if ins[4].dtype != DType::I64 || ins[4].shape != [batch] {
                    return Err(bad(format!("sequence lengths must be i64 [{batch}]")));
                }
                if r.activations.len() != dirs * r.cell.activations() {
                    return Err(bad(format!("{} activations", r.activations.len())));
                }
                let state = TypeInfo::new(DType::F32, vec![dirs, batch, h]);
                let mut outs = vec![
                    TypeInfo::new(DType::F32, vec![seq, dirs, batch, h]),
                    state.clone(),
                ];
                if lstm {
                    outs.push(state);
                }
                Ok(outs)
            }
            Op::ScatterNd { .. } => {
                arity(3, 3)?;
                let (x, idx, upd) = (&ins[0].shape, &ins[1].shape, &ins[2].shape);
                let q = idx.last().copied().unwrap_or(usize::MAX);
                let fits = q <= x.len() && {
                    let mut want = idx[..idx.len() - 1].to_vec();
                    want.extend_from_slice(&x[q..]);
                    &want == upd
                };
                if ins[1].dtype != DType::I64 || ins[0].dtype != ins[2].dtype || !fits {
                    return Err(bad(format!(
                        "ScatterND into {x:?} by indices {idx:?} of updates {upd:?}"
                    )));
                }
                one(ins[0].dtype, x.clone())
            }
            Op::CumSum { .. } | Op::Trilu { .. } => {
                arity(1, 2)?;
                // The optional second input: an i64 scalar read at run time.
                let scalar = ins.get(1).is_none_or(|a| {
                    a.dtype == DType::I64 && a.shape.iter().product::<usize>() == 1
                });
                let min_rank = if matches!(self, Op::Trilu { .. }) {
                    2
                } else {
                    1
                };
                if ins[0].shape.len() < min_rank || !scalar {
                    return Err(bad(format!("{} of {:?}", self.name(), ins[0].shape)));
                }
                one(ins[0].dtype, ins[0].shape.clone())
            }
            Op::Tile { repeats } => {
                arity(1, 1)?;
                let s = &ins[0].shape;
                let out: Option<Vec<usize>> = (repeats.len() == s.len())
                    .then(|| {
                        s.iter()
                            .zip(repeats)
                            .map(|(&d, &r)| d.checked_mul(r))
                            .collect()
                    })
                    .flatten();
                let out = out.ok_or_else(|| bad(format!("tile {s:?} by {repeats:?}")))?;
                one(ins[0].dtype, out)
            }
            Op::Pad { pads, mode, .. } => {
                arity(1, 1)?;
                want_f32(0)?;
                let s = &ins[0].shape;
                if pads.len() != s.len() {
                    return Err(bad("pads need one pair per axis".into()));
                }
                // Edge copies from the axis, reflect mirrors inside it.
                let fits = |(&d, &(a, b)): (&usize, &(usize, usize))| match mode {
                    PadMode::Constant => true,
                    PadMode::Edge => d > 0 || (a == 0 && b == 0),
                    PadMode::Reflect => a < d && b < d,
                };
                if !s.iter().zip(pads).all(fits) {
                    return Err(bad(format!("{mode:?} pads {pads:?} do not fit {s:?}")));
                }
                let out = s
                    .iter()
                    .zip(pads)
                    .map(|(d, p)| d.checked_add(p.0)?.checked_add(p.1))
                    .collect::<Option<Vec<usize>>>()
                    .ok_or_else(|| bad("padded size overflows".into()))?;
                one(DType::F32, out)
            }
            Op::Resize {
                out_shape,
                scales,
                coord,
                ..
            } => {
                let rank = ins[0].shape.len();
                if *coord == CoordTransform::TfCropAndResize {
                    arity(2, 2)?;
                    want_f32(1)?;
                    if ins[1].shape.iter().product::<usize>() != 2 * rank + 1 {
                        return Err(bad("resize crop: the roi needs 2·rank + 1 values".into()));
                    }
                } else {
                    arity(1, 1)?;
                }
                want_f32(0)?;
                if out_shape.len() != rank || scales.len() != out_shape.len() {
                    return Err(bad("resize rank mismatch".into()));
                }
                if ins[0]
                    .shape
                    .iter()
                    .zip(out_shape)
                    .any(|(&i, &o)| i == 0 && o != 0)
                {
                    return Err(bad("resize of an empty axis".into()));
                }
                one(DType::F32, out_shape.clone())
            }
            Op::ReduceMean { axes, keepdims } | Op::Reduce { axes, keepdims, .. } => {
                arity(1, 1)?;
                want_f32(0)?;
                let s = &ins[0].shape;
                let mut seen = vec![false; s.len()];
                if axes
                    .iter()
                    .any(|&a| a >= s.len() || std::mem::replace(&mut seen[a], true))
                {
                    return Err(bad(format!(
                        "reduce axes {axes:?} out of range or repeated"
                    )));
                }
                let out = s
                    .iter()
                    .enumerate()
                    .filter_map(|(d, &n)| match (axes.contains(&d), keepdims) {
                        (false, _) => Some(n),
                        (true, true) => Some(1),
                        (true, false) => None,
                    })
                    .collect();
                one(DType::F32, out)
            }
            Op::Lrn { size, .. } => {
                arity(1, 1)?;
                want_f32(0)?;
                if *size == 0 || ins[0].shape.len() < 2 {
                    return Err(bad("LRN needs size > 0 and a channel axis".into()));
                }
                one(DType::F32, ins[0].shape.clone())
            }
            Op::Cast { to } => {
                arity(1, 1)?;
                one(*to, ins[0].shape.clone())
            }
            Op::Identity => {
                arity(1, 1)?;
                one(ins[0].dtype, ins[0].shape.clone())
            }
            Op::Quantize(q) => {
                arity(1, 1)?;
                want_f32(0)?;
                quant_ok(q).map_err(bad)?;
                one(q.dtype, ins[0].shape.clone())
            }
            Op::Dequantize(q) => {
                arity(1, 1)?;
                quant_ok(q).map_err(bad)?;
                want_dtype(0, q.dtype)?;
                one(DType::F32, ins[0].shape.clone())
            }
            Op::QConv {
                geometry: g,
                x,
                y,
                activation,
            } => {
                arity(3, 4)?;
                quant_ok(x).and(quant_ok(y)).map_err(bad)?;
                want_dtype(0, x.dtype)?;
                want_dtype(1, DType::I8)?;
                want_dtype(2, DType::F32)?;
                if !matches!(
                    activation,
                    None | Some(UnaryOp::Relu | UnaryOp::Clip { .. })
                ) {
                    return Err(bad(format!(
                        "{activation:?} does not fuse into a QLinearConv"
                    )));
                }
                let out = conv_output(self.name(), g, ins[0], ins[1], None).map_err(bad)?;
                per_channel(2, out[1])?;
                if ins.len() == 4 {
                    want_dtype(3, DType::I32)?;
                    per_channel(3, out[1])?;
                }
                one(y.dtype, out)
            }
            Op::QBinary { op, a, b, y } => {
                arity(2, 2)?;
                quant_ok(a).and(quant_ok(b)).and(quant_ok(y)).map_err(bad)?;
                want_dtype(0, a.dtype)?;
                want_dtype(1, b.dtype)?;
                if !matches!(op, BinaryOp::Add | BinaryOp::Mul) {
                    return Err(bad(format!("quantized {op:?} is not supported")));
                }
                let s = broadcast_shapes(&ins[0].shape, &ins[1].shape).ok_or_else(|| {
                    bad(format!(
                        "cannot broadcast {:?} with {:?}",
                        ins[0].shape, ins[1].shape
                    ))
                })?;
                one(y.dtype, s)
            }
            Op::QGlobalAvgPool { x, y } => {
                arity(1, 1)?;
                quant_ok(x).and(quant_ok(y)).map_err(bad)?;
                want_dtype(0, x.dtype)?;
                rank(0, 4)?;
                if ins[0].shape[2..].contains(&0) {
                    return Err(bad("global pooling over an empty area".into()));
                }
                let mut s = ins[0].shape.clone();
                s[2..].iter_mut().for_each(|d| *d = 1);
                one(y.dtype, s)
            }
        }
    }
}

/// Quantization parameters a kernel can use (positive finite scale, zero
/// point in range, u8/i8).
fn quant_ok(q: &Quant) -> std::result::Result<(), String> {
    if q.is_valid() {
        Ok(())
    } else {
        Err(format!("bad quantization parameters {q:?}"))
    }
}

/// Output shape of a 2-D convolution (`output_padding` given for
/// ConvTranspose) of `x` \[N,C,H,W\] by weights `w`, or why they do not fit.
fn conv_output(
    op: &str,
    g: &ConvGeometry,
    x: &TypeInfo,
    w: &TypeInfo,
    output_padding: Option<&[usize; 2]>,
) -> std::result::Result<Vec<usize>, String> {
    let (x, w) = (&x.shape, &w.shape);
    if x.len() != 4 || w.len() != 4 {
        return Err(format!(
            "{op} needs rank-4 input and weights, got {x:?} and {w:?}"
        ));
    }
    if !window_in_bounds(&g.kernel, &g.strides, &g.dilations, &g.pads)
        || g.groups == 0
        || g.groups > MAX_WINDOW
    {
        return Err(format!("convolution geometry out of bounds: {g:?}"));
    }
    if w[2] != g.kernel[0] || w[3] != g.kernel[1] {
        return Err(format!("kernel {:?} vs weights {w:?}", g.kernel));
    }
    let transposed = output_padding.is_some();
    let (cin, cout) = if transposed {
        (w[0], w[1] * g.groups)
    } else {
        (w[1] * g.groups, w[0])
    }; // no overflow: dims <= 2^28 elements, groups <= 2^20
    if x[1] != cin || cout % g.groups != 0 || (transposed && w[0] % g.groups != 0) {
        return Err(format!(
            "{op} channels: input {x:?}, weights {w:?}, groups {}",
            g.groups
        ));
    }
    let mut out = vec![x[0], cout, 0, 0];
    for a in 0..2 {
        let pads = (g.pads[a], g.pads[a + 2]);
        out[a + 2] = if let Some(output_padding) = output_padding {
            // (in-1)*s + d*(k-1) + 1 + op - pads
            let full = x[a + 2]
                .checked_sub(1)
                .and_then(|v| v.checked_mul(g.strides[a]))
                .and_then(|v| v.checked_add(g.dilations[a] * (g.kernel[a] - 1) + 1))
                .and_then(|v| v.checked_add(output_padding[a]));
            full.and_then(|v| v.checked_sub(pads.0 + pads.1))
                .filter(|&v| v > 0)
                .ok_or_else(|| "empty ConvTranspose output".to_string())?
        } else {
            window_out_len(
                x[a + 2],
                g.kernel[a],
                g.strides[a],
                g.dilations[a],
                pads,
                false,
            )
            .ok_or_else(|| format!("kernel larger than padded input {x:?}"))?
        };
    }
    Ok(out)
}
