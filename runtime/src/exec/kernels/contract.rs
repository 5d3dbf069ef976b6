//! The contract between the executor and every kernel, whatever its ISA.
//!
//! A node gets one [`Kernel`] object at preparation. The object owns its
//! packed weights (in a layout only it reads), says how much scratch it
//! needs, and runs on borrowed buffers with a thread budget. The executor
//! knows nothing else about it.
//!
//! Room for int8 (the next issue): views are tagged by element type, packed
//! buffers are plain aligned bytes with a layout name, and [`Epilogue`] is
//! the one place per-channel scale, bias, residual and clamps are applied:
//! a requantizing epilogue is a second output stage of the same spec.

use std::fmt;

use rayon::prelude::*;
use smallvec::SmallVec;

use crate::error::{Error, Result};
use crate::ir::{Tensor, TensorData, UnaryOp};

/// Borrowed input data.
#[derive(Clone, Copy, Debug)]
pub enum View<'a> {
    F32(&'a [f32]),
    I64(&'a [i64]),
    U8(&'a [u8]),
    I8(&'a [i8]),
    I32(&'a [i32]),
}

/// Borrowed output data.
#[derive(Debug)]
pub enum ViewMut<'a> {
    F32(&'a mut [f32]),
    I64(&'a mut [i64]),
    U8(&'a mut [u8]),
    I8(&'a mut [i8]),
    I32(&'a mut [i32]),
}

/// One input of a node: its shape and data.
#[derive(Clone, Copy, Debug)]
pub struct Input<'a> {
    pub shape: &'a [usize],
    pub data: View<'a>,
}

/// One output of a node: its shape and the buffer to overwrite.
pub struct Output<'a> {
    pub shape: &'a [usize],
    pub data: ViewMut<'a>,
}

impl<'a> Input<'a> {
    pub fn of(t: &'a Tensor) -> Input<'a> {
        let data = match t.data() {
            TensorData::F32(v) => View::F32(v),
            TensorData::SharedF32(v) => View::F32(v.as_slice()),
            TensorData::I64(v) => View::I64(v),
            TensorData::U8(v) => View::U8(v),
            TensorData::I8(v) => View::I8(v),
            TensorData::I32(v) => View::I32(v),
        };
        Input {
            shape: t.shape(),
            data,
        }
    }
}

/// Typed accessors: validation guarantees each dtype, so a mismatch is a
/// bug reported as an error rather than a panic.
macro_rules! typed_access {
    ($($name:ident: $variant:ident($t:ty)),*) => {
        impl<'a> Input<'a> {
            $(pub fn $name(&self) -> Result<&'a [$t]> {
                match self.data {
                    View::$variant(v) => Ok(v),
                    _ => Err(Error::Input(concat!("expected ", stringify!($name), " input data").into())),
                }
            })*
        }
        impl Output<'_> {
            $(pub fn $name(&mut self) -> Result<&mut [$t]> {
                match &mut self.data {
                    ViewMut::$variant(v) => Ok(v),
                    _ => Err(Error::Input(concat!("expected an ", stringify!($name), " output").into())),
                }
            })*
        }
    };
}

typed_access!(f32: F32(f32), u8: U8(u8), i8: I8(i8), i32: I32(i32), i64: I64(i64));

/// A prepared node: chosen once for its op, dtypes, shapes and ISA.
pub trait Kernel: Send + Sync + fmt::Debug {
    /// What was chosen, named by dtype, op, tile and ISA
    /// (`f32_conv_gemm_6x16_avx2`), for reports and dispatch tests.
    fn name(&self) -> &'static str;
    /// Scratch bytes one run needs with `threads` workers (64-byte aligned
    /// by the planner). The executor plans it; the kernel never allocates.
    fn scratch_bytes(&self, _threads: usize) -> usize {
        0
    }
    /// Bytes of packed weights this kernel owns (shared by all sessions).
    fn packed_bytes(&self) -> usize {
        0
    }
    /// Runs on validated inputs into preallocated outputs.
    fn run(
        &self,
        ins: &[Input],
        outs: &mut [Output],
        scratch: &mut [f32],
        threads: &Threads,
    ) -> Result<()>;
}

/// The worker budget of one run.
pub struct Threads<'a> {
    mode: Mode<'a>,
}

enum Mode<'a> {
    Single,
    /// Enter this pool for each parallel region.
    Pool(&'a rayon::ThreadPool),
    /// Already running on a worker of a pool of this many threads, so a
    /// parallel region forks onto the worker's own deque (no queueing
    /// through the pool's injector, no allocation).
    InPool(usize),
}

impl<'a> Threads<'a> {
    pub fn single() -> Threads<'static> {
        Threads { mode: Mode::Single }
    }
    pub fn pool(pool: &'a rayon::ThreadPool) -> Threads<'a> {
        Threads {
            mode: Mode::Pool(pool),
        }
    }
    /// For code running inside a pool job: regions fork onto that pool.
    pub fn in_pool() -> Threads<'static> {
        Threads {
            mode: Mode::InPool(rayon::current_num_threads()),
        }
    }
    pub fn count(&self) -> usize {
        match self.mode {
            Mode::Single => 1,
            Mode::Pool(p) => p.current_num_threads(),
            Mode::InPool(n) => n,
        }
    }

    /// Runs `f` on every part, one task per part. Parts are prepared by
    /// the caller (rows of an output, each worker's scratch), so nothing is
    /// allocated and each task owns what it writes.
    pub fn for_each_part<T: Send>(&self, parts: &mut [T], f: impl Fn(&mut T) + Sync + Send) {
        match self.mode {
            _ if parts.len() <= 1 => parts.iter_mut().for_each(f),
            Mode::Single => parts.iter_mut().for_each(f),
            Mode::Pool(p) => p.install(|| parts.par_iter_mut().for_each(f)),
            Mode::InPool(_) => parts.par_iter_mut().for_each(f),
        }
    }
}

/// One worker's share of a kernel run: its first row (or plane), the part
/// of the output it writes and its own scratch.
pub type WorkerPart<'a> = (usize, &'a mut [f32], &'a mut [f32]);

/// Splits `y`, whole planes of `plane` values, into one contiguous run of
/// planes per worker (at most `workers`), each with its own `per_worker`
/// words of `scratch`. The first field of each part is its first plane.
pub fn plane_parts<'a>(
    y: &'a mut [f32],
    plane: usize,
    workers: usize,
    scratch: &'a mut [f32],
    per_worker: usize,
) -> SmallVec<[WorkerPart<'a>; 8]> {
    let planes = y.len().checked_div(plane).unwrap_or(0);
    let per = planes.div_ceil(workers.min(planes).max(1)).max(1);
    let mut scratch = scratch.chunks_mut(per_worker.max(1));
    y[..planes * plane]
        .chunks_mut((per * plane).max(1))
        .enumerate()
        .map(|(i, chunk)| {
            let s = if per_worker == 0 {
                &mut [][..]
            } else {
                scratch.next().unwrap_or(&mut [])
            };
            (i * per, chunk, s)
        })
        .collect()
}

/// A 64-byte-aligned f32 buffer for packed weights: whole cache lines, so
/// every panel a kernel packs starts where aligned SIMD loads want it.
#[derive(Clone, Default)]
pub struct AlignedF32 {
    lines: Vec<CacheLine>,
    len: usize,
}

#[derive(Clone, Copy, Default, bytemuck::Zeroable, bytemuck::Pod)]
#[repr(C, align(64))]
struct CacheLine([f32; 16]);

impl AlignedF32 {
    pub fn zeros(len: usize) -> AlignedF32 {
        AlignedF32 {
            lines: vec![CacheLine::default(); len.div_ceil(16)],
            len,
        }
    }
    pub fn from_slice(v: &[f32]) -> AlignedF32 {
        let mut a = AlignedF32::zeros(v.len());
        a.as_mut_slice().copy_from_slice(v);
        a
    }
    pub fn as_slice(&self) -> &[f32] {
        &bytemuck::cast_slice(&self.lines)[..self.len]
    }
    pub fn as_mut_slice(&mut self) -> &mut [f32] {
        &mut bytemuck::cast_slice_mut(&mut self.lines)[..self.len]
    }
    pub fn bytes(&self) -> usize {
        self.lines.len() * 64
    }
}

impl fmt::Debug for AlignedF32 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AlignedF32({} values)", self.len)
    }
}

/// What a kernel does to each output row (one output channel) before it
/// leaves the cache: `act(acc * scale[r] + bias[r] + residual)`.
#[derive(Clone, Debug, Default)]
pub struct Epilogue {
    pub scale: Option<AlignedF32>,
    pub bias: Option<AlignedF32>,
    /// A same-shaped tensor added before the activation (residual blocks).
    pub residual: bool,
    pub activation: Option<UnaryOp>,
}

/// Offsets of the rows (or taps) a kernel reads in place, with the furthest
/// found once, so that every block over them checks its reads in constant
/// time.
pub struct ReadOffsets<'a> {
    offsets: &'a [usize],
    furthest: usize,
}

impl<'a> ReadOffsets<'a> {
    pub fn new(offsets: &'a [usize]) -> ReadOffsets<'a> {
        let furthest = offsets.iter().copied().max().unwrap_or(0);
        ReadOffsets { offsets, furthest }
    }
    pub fn offsets(&self) -> &'a [usize] {
        self.offsets
    }
    /// The largest offset.
    pub fn furthest(&self) -> usize {
        self.furthest
    }
}

/// The activations a microkernel applies in registers before its store:
/// `clamp(v, min, max)`, then `v · clamp(v/6 + 1/2, 0, 1)` if `hard_swish`.
/// Applying them on the finished rows instead would cost a call and a
/// pass per row, as much as the whole tile when K is small.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RegisterActivation {
    pub min: f32,
    pub max: f32,
    pub hard_swish: bool,
}

impl RegisterActivation {
    /// Leaves values as they are.
    pub const IDENTITY: RegisterActivation = RegisterActivation {
        min: f32::NEG_INFINITY,
        max: f32::INFINITY,
        hard_swish: false,
    };

    /// The same on one value, in the order the ISA kernels use.
    pub fn apply(self, v: f32) -> f32 {
        let v = v.max(self.min).min(self.max);
        if self.hard_swish {
            v * (v * (1.0 / 6.0) + 0.5).clamp(0.0, 1.0)
        } else {
            v
        }
    }
}

impl Epilogue {
    /// The epilogue as `act(acc + bias[r])`, which a microkernel applies
    /// in registers before its store (a residual is then preloaded into
    /// the accumulators); `None` when it needs the general row pass (a
    /// scale, other activations).
    pub fn in_registers(&self) -> Option<RegisterActivation> {
        if self.scale.is_some() {
            return None;
        }
        let clamp = |min, max| RegisterActivation {
            min,
            max,
            ..RegisterActivation::IDENTITY
        };
        match self.activation {
            None => Some(RegisterActivation::IDENTITY),
            Some(UnaryOp::Relu) => Some(clamp(0.0, f32::INFINITY)),
            Some(UnaryOp::Clip { min, max }) => Some(clamp(min, max)),
            Some(UnaryOp::HardSwish) => Some(RegisterActivation {
                hard_swish: true,
                ..RegisterActivation::IDENTITY
            }),
            Some(_) => None,
        }
    }

    /// Applies the epilogue to `y`, all of row `r`; `res` is the matching
    /// slice of the residual input. Inlined into each ISA's
    /// `#[target_feature]` wrapper so the loop vectorizes for that ISA.
    #[inline(always)]
    pub fn apply_row(&self, r: usize, y: &mut [f32], res: Option<&[f32]>) {
        let s = self.scale.as_ref().map_or(1.0, |s| s.as_slice()[r]);
        let b = self.bias.as_ref().map_or(0.0, |b| b.as_slice()[r]);
        if s != 1.0 || b != 0.0 {
            y.iter_mut().for_each(|v| *v = *v * s + b);
        }
        if let Some(res) = res {
            y.iter_mut().zip(res).for_each(|(v, &a)| *v += a);
        }
        match self.activation {
            None => {}
            Some(UnaryOp::Relu) => y.iter_mut().for_each(|v| *v = v.max(0.0)),
            Some(UnaryOp::Clip { min, max }) => y.iter_mut().for_each(|v| *v = v.max(min).min(max)),
            Some(UnaryOp::HardSwish) => y
                .iter_mut()
                .for_each(|v| *v *= (*v * (1.0 / 6.0) + 0.5).clamp(0.0, 1.0)),
            Some(UnaryOp::HardSigmoid { alpha, beta }) => y
                .iter_mut()
                .for_each(|v| *v = (alpha * *v + beta).clamp(0.0, 1.0)),
            Some(UnaryOp::LeakyRelu { alpha }) => y
                .iter_mut()
                .for_each(|v| *v = if *v >= 0.0 { *v } else { alpha * *v }),
            Some(UnaryOp::Sigmoid) => y.iter_mut().for_each(|v| *v = crate::ir::sigmoid(*v)),
            Some(UnaryOp::Tanh) => y.iter_mut().for_each(|v| *v = crate::ir::tanh(*v)),
            Some(a) => y.iter_mut().for_each(|v| *v = a.apply(*v)),
        }
    }
}

/// The requantizing output stage of an integer kernel: an i32 accumulator
/// to an 8-bit value, `clamp(round(acc · real) + zero_point, min, max)`,
/// with `real` held as a 31-bit fixed-point multiplier and a right shift,
/// so no float is used per element. `min..=max` is the output type's range
/// narrowed by a fused Relu or Clip. Rounding is half up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Requantize {
    pub multiplier: i32,
    /// Total right shift of `acc · multiplier`, in 1..=62.
    pub shift: u32,
    pub zero_point: i32,
    pub min: i32,
    pub max: i32,
}

impl Requantize {
    /// `None` when `real` is not positive and finite, or too large (≥ 2^30)
    /// to keep the product in an i64.
    pub fn new(real: f64, zero_point: i32, min: i32, max: i32) -> Option<Requantize> {
        if !(real.is_finite() && real > 0.0) || real >= (1u64 << 30) as f64 || min > max {
            return None;
        }
        // real = m · 2^e with m in [0.5, 1): multiplier = m · 2^31.
        let mut e = real.log2().floor() as i32 + 1;
        let mut m = (real / 2f64.powi(e) * (1u64 << 31) as f64).round() as i64;
        if m >= 1 << 31 {
            m /= 2;
            e += 1;
        }
        let shift = 31 - e;
        if shift > 62 {
            // Below 2^-31 every i32 accumulator rounds to the zero point.
            return Some(Requantize {
                multiplier: 0,
                shift: 62,
                zero_point,
                min,
                max,
            });
        }
        Some(Requantize {
            multiplier: m as i32,
            shift: u32::try_from(shift).ok().filter(|&s| s >= 1)?,
            zero_point,
            min,
            max,
        })
    }

    #[inline(always)]
    pub fn apply(self, acc: i32) -> i32 {
        let product = acc as i64 * self.multiplier as i64;
        let rounded = (product + (1i64 << (self.shift - 1))) >> self.shift;
        (rounded + self.zero_point as i64).clamp(self.min as i64, self.max as i64) as i32
    }
}
