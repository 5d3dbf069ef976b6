//! Kernels per ISA behind one registry. At preparation each node asks
//! [`prepare`] for a [`Kernel`]: the ISA's list of [`KernelSpec`]s is tried
//! in order and the first that accepts the node's op, dtypes, shapes and
//! constants builds it (packing its weights); the scalar reference kernel
//! takes everything else. The same lists drive the conformance tests, so a
//! kernel added here is tested against its scalar twin without more code.

#[cfg(test)]
mod conformance;
pub mod contract;
pub mod conv;
pub mod dense;
pub mod depthwise;
pub mod elementwise;
pub mod frame;
pub mod gemm;
#[cfg(test)]
mod qconformance;
pub mod qdepthwise;
pub mod qelementwise;
pub mod qgemm;
pub mod recurrent;
pub mod resize;
pub mod scalar;
pub mod simd;
pub mod winograd;

#[cfg(target_arch = "aarch64")]
#[allow(unsafe_code)]
pub mod aarch64;
#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
pub mod x86_64;

use crate::error::{Error, Result};
use crate::ir::{ConvGeometry, DType, Op, Tensor, TypeInfo, UnaryOp};
use contract::Kernel;
use simd::Simd;

/// An instruction set a kernel list is written for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Isa {
    Scalar,
    Avx2,
    Avx512,
    Neon,
}

impl Isa {
    pub const ALL: [Isa; 4] = [Isa::Scalar, Isa::Avx2, Isa::Avx512, Isa::Neon];

    pub fn name(self) -> &'static str {
        match self {
            Isa::Scalar => "scalar",
            Isa::Avx2 => "avx2",
            Isa::Avx512 => "avx512",
            Isa::Neon => "neon",
        }
    }

    pub fn from_name(name: &str) -> Option<Isa> {
        Isa::ALL.into_iter().find(|i| i.name() == name)
    }

    /// Whether this CPU runs the ISA's kernels.
    pub fn available(self) -> bool {
        match self {
            Isa::Scalar => true,
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => x86_64::Avx2::detect().is_some(),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => x86_64::Avx512::detect().is_some(),
            #[cfg(target_arch = "aarch64")]
            Isa::Neon => aarch64::Neon::detect().is_some(),
            #[allow(unreachable_patterns)]
            _ => false,
        }
    }

    /// The fastest available ISA. AVX-512 comes first where present: its
    /// 8×32 tile halves the instructions per FMA of the AVX2 6×16.
    pub fn best() -> Isa {
        [Isa::Avx512, Isa::Avx2, Isa::Neon]
            .into_iter()
            .find(|i| i.available())
            .unwrap_or(Isa::Scalar)
    }

    /// The ISA to use: `requested` if given, else `SQUEEZE_ISA` if set, else
    /// [`Isa::best`]. A named ISA this CPU lacks is an error, not a silent
    /// fallback.
    pub fn choose(requested: Option<Isa>) -> Result<Isa> {
        let isa = match (requested, std::env::var("SQUEEZE_ISA")) {
            (Some(isa), _) => isa,
            (None, Ok(name)) if !name.is_empty() => Isa::from_name(&name).ok_or_else(|| {
                Error::Input(format!(
                    "SQUEEZE_ISA={name:?} is not one of scalar, avx2, avx512, neon"
                ))
            })?,
            _ => return Ok(Isa::best()),
        };
        if isa.available() {
            Ok(isa)
        } else {
            Err(Error::Input(format!(
                "ISA {} is not available on this CPU",
                isa.name()
            )))
        }
    }
}

/// One input of a node being prepared: its type, and its data if constant.
#[derive(Clone, Copy, Debug)]
pub struct Operand<'a> {
    pub info: &'a TypeInfo,
    pub constant: Option<&'a Tensor>,
}

/// A Conv with four inputs carries a residual to add before its activation
/// (`x, w, bias, residual`; see the residual fusion pass).
pub fn residual_input(ins: &[Operand]) -> bool {
    ins.len() == 4
}

/// Builds a kernel for a node (op, inputs, output types) it accepts.
pub type Builder = fn(&Op, &[Operand], &[TypeInfo]) -> Option<Box<dyn Kernel>>;

/// A kernel family of one ISA: builds a kernel for a node it accepts.
pub struct KernelSpec {
    pub isa: Isa,
    pub family: &'static str,
    pub build: Builder,
}

fn all_f32(ins: &[Operand], outs: &[TypeInfo]) -> bool {
    ins.iter().all(|o| o.info.dtype == DType::F32) && outs.iter().all(|o| o.dtype == DType::F32)
}

fn is_depthwise(op: &Op, ins: &[Operand]) -> bool {
    matches!(op, Op::Conv { geometry, .. }
        if ins[0].info.shape.len() == 4 && geometry.groups > 1 && geometry.groups == ins[0].info.shape[1]
            && ins[1].info.shape[0] == geometry.groups)
}

/// A family's kernel behind the checks every family shares: f32 inputs and
/// outputs, and the ISA on this CPU.
fn family<S: Simd, K: Kernel + 'static>(
    ins: &[Operand],
    outs: &[TypeInfo],
    build: impl FnOnce(S) -> Option<K>,
) -> Option<Box<dyn Kernel>> {
    if !all_f32(ins, outs) {
        return None;
    }
    Some(Box::new(build(S::detect()?)?))
}

/// The geometry and fused activation of a Conv.
fn conv_of(op: &Op) -> Option<(&ConvGeometry, Option<UnaryOp>)> {
    match op {
        Op::Conv {
            geometry,
            activation,
        } => Some((geometry, *activation)),
        _ => None,
    }
}

fn build_depthwise<S: Simd>(
    op: &Op,
    ins: &[Operand],
    outs: &[TypeInfo],
) -> Option<Box<dyn Kernel>> {
    let (g, a) = conv_of(op)?;
    if !is_depthwise(op, ins) {
        return None;
    }
    family(ins, outs, |s: S| {
        depthwise::Depthwise::build(s, g, a, ins, &outs[0].shape)
    })
}

fn build_pool<S: Simd>(op: &Op, ins: &[Operand], outs: &[TypeInfo]) -> Option<Box<dyn Kernel>> {
    let Op::Pool(p) = op else { return None };
    family(ins, outs, |s: S| {
        depthwise::Depthwise::pool(s, p, &ins[0].info.shape, &outs[0].shape)
    })
}

fn build_conv_gemm<S: Simd>(
    op: &Op,
    ins: &[Operand],
    outs: &[TypeInfo],
) -> Option<Box<dyn Kernel>> {
    let (g, a) = conv_of(op)?;
    if is_depthwise(op, ins) {
        return None;
    }
    family(ins, outs, |s: S| {
        conv::ConvGemm::build(s, g, a, ins, &outs[0].shape)
    })
}

fn build_conv_winograd<S: Simd>(
    op: &Op,
    ins: &[Operand],
    outs: &[TypeInfo],
) -> Option<Box<dyn Kernel>> {
    let (g, a) = conv_of(op)?;
    family(ins, outs, |s: S| {
        winograd::Winograd::build(s, g, a, ins, &outs[0].shape)
    })
}

fn build_conv_transpose<S: Simd>(
    op: &Op,
    ins: &[Operand],
    outs: &[TypeInfo],
) -> Option<Box<dyn Kernel>> {
    let Op::ConvTranspose {
        geometry: g,
        activation: a,
        ..
    } = op
    else {
        return None;
    };
    family(ins, outs, |s: S| {
        conv::ConvTransposeGemm::build(s, g, *a, ins, &outs[0].shape)
    })
}

fn build_dense<S: Simd>(op: &Op, ins: &[Operand], outs: &[TypeInfo]) -> Option<Box<dyn Kernel>> {
    family(ins, outs, |s: S| {
        dense::Dense::build(s, op, ins, &outs[0].shape)
    })
}

fn build_binary<S: Simd>(op: &Op, ins: &[Operand], outs: &[TypeInfo]) -> Option<Box<dyn Kernel>> {
    let Op::Binary(b) = op else { return None };
    family(ins, outs, |simd: S| {
        Some(elementwise::Binary { simd, op: *b })
    })
}

fn build_unary<S: Simd>(op: &Op, ins: &[Operand], outs: &[TypeInfo]) -> Option<Box<dyn Kernel>> {
    let Op::Unary(u) = op else { return None };
    family(ins, outs, |simd: S| {
        Some(elementwise::Unary { simd, op: *u })
    })
}

fn build_channel_affine<S: Simd>(
    op: &Op,
    ins: &[Operand],
    outs: &[TypeInfo],
) -> Option<Box<dyn Kernel>> {
    let Op::ChannelAffine { activation: a } = op else {
        return None;
    };
    family(ins, outs, |s: S| {
        elementwise::ChannelAffine::build(s, *a, ins)
    })
}

fn build_resize<S: Simd>(op: &Op, ins: &[Operand], outs: &[TypeInfo]) -> Option<Box<dyn Kernel>> {
    let Op::Resize {
        mode,
        coord,
        scales,
        ..
    } = op
    else {
        return None;
    };
    family(ins, outs, |s: S| {
        resize::Resize2d::build(s, *mode, *coord, scales, ins, &outs[0].shape)
    })
}

fn build_global_pool<S: Simd>(
    op: &Op,
    ins: &[Operand],
    outs: &[TypeInfo],
) -> Option<Box<dyn Kernel>> {
    let Op::GlobalPool(kind) = op else {
        return None;
    };
    family(ins, outs, |simd: S| {
        Some(elementwise::GlobalPool { simd, kind: *kind })
    })
}

fn build_recurrent<S: Simd>(
    op: &Op,
    ins: &[Operand],
    outs: &[TypeInfo],
) -> Option<Box<dyn Kernel>> {
    let Op::Recurrent(rec) = op else {
        return None;
    };
    let kernel = recurrent::RecurrentGemm::build(S::detect()?, rec, ins, outs)?;
    Some(Box::new(kernel))
}

/// The kernel families every SIMD ISA provides, most specific first.
fn simd_specs<S: Simd>() -> Vec<KernelSpec> {
    let spec = |family, build| KernelSpec {
        isa: S::ISA,
        family,
        build,
    };
    vec![
        spec("depthwise", build_depthwise::<S>),
        spec("conv_winograd", build_conv_winograd::<S>),
        spec("conv_gemm", build_conv_gemm::<S>),
        spec("conv_transpose", build_conv_transpose::<S>),
        spec("pool", build_pool::<S>),
        spec("dense", build_dense::<S>),
        spec("binary", build_binary::<S>),
        spec("unary", build_unary::<S>),
        spec("channel_affine", build_channel_affine::<S>),
        spec("resize", build_resize::<S>),
        spec("global_pool", build_global_pool::<S>),
        spec("recurrent", build_recurrent::<S>),
    ]
}

fn build_qconv_gemm<T: qgemm::QTile>(
    op: &Op,
    ins: &[Operand],
    outs: &[TypeInfo],
) -> Option<Box<dyn Kernel>> {
    Some(Box::new(qgemm::QConvGemm::build(
        T::detect()?,
        op,
        ins,
        outs,
    )?))
}

fn build_qelementwise<T: qgemm::QTile>(
    op: &Op,
    ins: &[Operand],
    outs: &[TypeInfo],
) -> Option<Box<dyn Kernel>> {
    Some(Box::new(qelementwise::QElementwise::build(
        T::detect()?,
        op,
        ins,
        outs,
    )?))
}

fn build_qdepthwise<T: qgemm::QTile>(
    op: &Op,
    ins: &[Operand],
    outs: &[TypeInfo],
) -> Option<Box<dyn Kernel>> {
    Some(Box::new(qdepthwise::QDepthwise::build(
        T::detect()?,
        op,
        ins,
        outs,
    )?))
}

/// The integer kernel families of an ISA: its int8 GEMM tile first (when
/// the CPU has it), then the portable ones. Their own conformance suite
/// (`qconformance`) runs every one against the integer reference.
pub fn int8_specs(isa: Isa) -> Vec<KernelSpec> {
    let spec = |family, build| KernelSpec { isa, family, build };
    let mut list = Vec::new();
    match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => list.extend([
            spec("qconv_gemm", build_qconv_gemm::<x86_64::Avx512Vnni>),
            spec("qdepthwise", build_qdepthwise::<x86_64::Avx512Vnni>),
            spec("qelementwise", build_qelementwise::<x86_64::Avx512Vnni>),
            // AVX-512 without VNNI: the AVX2 tile.
            spec("qconv_gemm", build_qconv_gemm::<x86_64::Avx2>),
            spec("qdepthwise", build_qdepthwise::<x86_64::Avx2>),
            spec("qelementwise", build_qelementwise::<x86_64::Avx2>),
        ]),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => list.extend([
            spec("qconv_gemm", build_qconv_gemm::<x86_64::Avx2>),
            spec("qdepthwise", build_qdepthwise::<x86_64::Avx2>),
            spec("qelementwise", build_qelementwise::<x86_64::Avx2>),
        ]),
        #[cfg(target_arch = "aarch64")]
        Isa::Neon => list.extend([
            spec("qconv_gemm", build_qconv_gemm::<aarch64::NeonDot>),
            spec("qconv_gemm", build_qconv_gemm::<aarch64::Neon>),
            spec("qdepthwise", build_qdepthwise::<aarch64::Neon>),
            spec("qelementwise", build_qelementwise::<aarch64::Neon>),
        ]),
        _ => {}
    }
    list.extend([
        spec("qconv_gemm", build_qconv_gemm::<qgemm::ScalarQTile>),
        spec("qdepthwise", build_qdepthwise::<qgemm::ScalarQTile>),
        spec("qelementwise", build_qelementwise::<qgemm::ScalarQTile>),
    ]);
    list
}

/// The f32 kernel list of one ISA (empty for scalar: the reference kernel
/// is the fallback of every list).
pub fn specs(isa: Isa) -> Vec<KernelSpec> {
    match isa {
        Isa::Scalar => Vec::new(),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => simd_specs::<x86_64::Avx2>(),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => simd_specs::<x86_64::Avx512>(),
        #[cfg(target_arch = "aarch64")]
        Isa::Neon => simd_specs::<aarch64::Neon>(),
        #[allow(unreachable_patterns)]
        _ => Vec::new(),
    }
}

/// The kernel for one node on `isa`: the first spec that accepts it, else
/// the scalar reference.
pub fn prepare(isa: Isa, op: &Op, ins: &[Operand], outs: &[TypeInfo]) -> Box<dyn Kernel> {
    specs(isa)
        .iter()
        .chain(&int8_specs(isa))
        .find_map(|s| (s.build)(op, ins, outs))
        .unwrap_or_else(|| Box::new(scalar::reference::Reference::new(op, ins, outs)))
}
