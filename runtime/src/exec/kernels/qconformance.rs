//! The integer conformance suite: every int8 tile of this CPU against the
//! scalar tile, every int8 kernel family of every ISA against the integer
//! reference (exactly: they share the fixed-point requantization), on edge
//! sizes (tile ±1, odd channels, strides, dilations, groups, asymmetric
//! padding, nonzero zero points, fused clamps), with 1 and 3 threads; and
//! the requantizer against exact rounding. Elementwise cases (quantize,
//! dequantize, add, mul, global average) run through the same check.

use proptest::prelude::*;

use super::contract::{Input, Kernel, Output, Requantize, Threads, ViewMut};
use super::qgemm::{requantize_u8, scalar_tile, tile_weights, QTile, ScalarQTile};
use super::scalar::reference::Reference;
use super::{int8_specs, Isa, Operand};
use crate::ir::{ConvGeometry, DType, Op, Quant, Tensor, TensorData, TypeInfo, UnaryOp};

fn bytes(n: usize, seed: usize) -> Vec<u8> {
    (0..n)
        .map(|i| ((i.wrapping_mul(2654435761) ^ seed.wrapping_mul(40503)) % 256) as u8)
        .collect()
}

/// Checks tile `T` against the scalar loop of the same shape.
fn tile_matches<T: QTile>(tile: T, make: fn(usize, &[i8], &[u8], &mut [i32])) {
    for groups in [0, 1, 2, 7, 33] {
        let a: Vec<i8> = bytes(groups * T::MR * T::KG, 1)
            .iter()
            .map(|&b| b as i8)
            .collect();
        let b = bytes(groups * T::NR * T::KG, 2);
        let (mut got, mut want) = (vec![7; T::MR * T::NR], vec![0; T::MR * T::NR]);
        tile.tile(groups, &tile_weights::<T>(a.clone()), &b, &mut got);
        make(groups, &a, &b, &mut want);
        assert_eq!(got, want, "{} over {groups} k-groups", T::NAME);
    }
    requantize_matches(tile);
}

/// The tile's requantization against the portable loop: extreme and
/// ordinary accumulators, biases that wrap, scales above and below 1,
/// zero points and clamps, every length up to past two vectors.
fn requantize_matches<T: QTile>(tile: T) {
    let mut acc: Vec<i32> = bytes(64, 3)
        .chunks_exact(4)
        .map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    acc.extend([
        i32::MIN,
        i32::MAX,
        -1,
        0,
        1,
        1 << 20,
        -(1 << 20),
        12345,
        -12345,
    ]);
    acc.extend((0..24).map(|i| (i - 12) * 997));
    for &real in &[0.75, 0.0123, 3.5e-5, 1e-9, 0.999_999, 1.0, 17.25] {
        for (zero, lo, hi) in [(0, 0, 255), (128, 0, 255), (3, 3, 200), (255, 0, 255)] {
            let rq = Requantize::new(real, zero, lo, hi).expect("requantizer");
            for bias in [0, -77_777, i32::MAX] {
                for n in [0, 1, 7, 8, 9, 16, 33, acc.len()] {
                    let (mut got, mut want) = (vec![9u8; n], vec![0u8; n]);
                    tile.requantize(&acc[..n], bias, rq, &mut got);
                    requantize_u8(&acc[..n], bias, rq, &mut want);
                    assert_eq!(got, want, "{} requantize {rq:?} bias {bias}", T::NAME);
                }
            }
        }
    }
}

#[test]
fn every_int8_tile_matches_the_scalar_loop() {
    tile_matches(ScalarQTile, scalar_tile::<4, 16, 4, false>);
    #[cfg(target_arch = "x86_64")]
    match <super::x86_64::Avx2 as QTile>::detect() {
        Some(t) => tile_matches(t, scalar_tile::<4, 16, 2, false>),
        None => eprintln!("NOT RUN: no AVX2 on this CPU"),
    }
    #[cfg(target_arch = "x86_64")]
    match super::x86_64::Avx512Vnni::detect() {
        Some(t) => tile_matches(t, scalar_tile::<8, 32, 4, false>),
        None => eprintln!("NOT RUN: no AVX-512 VNNI on this CPU"),
    }
    #[cfg(target_arch = "aarch64")]
    match <super::aarch64::Neon as QTile>::detect() {
        Some(t) => tile_matches(t, scalar_tile::<8, 8, 1, false>),
        None => eprintln!("NOT RUN: no NEON"),
    }
    #[cfg(target_arch = "aarch64")]
    match super::aarch64::NeonDot::detect() {
        Some(t) => tile_matches(t, scalar_tile::<8, 8, 4, true>),
        None => eprintln!("NOT RUN: no NEON dotprod on this CPU"),
    }
}

/// A QLinearConv case: geometry, channels, input size, zero points.
#[derive(Clone, Debug)]
struct QConvCase {
    c: usize,
    m: usize,
    hw: [usize; 2],
    geometry: ConvGeometry,
    x_zero: i32,
    y_zero: i32,
    bias: bool,
    activation: Option<UnaryOp>,
}

impl QConvCase {
    fn op(&self) -> Op {
        Op::QConv {
            geometry: self.geometry.clone(),
            x: Quant {
                scale: 0.02,
                zero_point: self.x_zero,
                dtype: DType::U8,
            },
            y: Quant {
                scale: 0.05,
                zero_point: self.y_zero,
                dtype: DType::U8,
            },
            activation: self.activation,
        }
    }
    fn inputs(&self) -> Vec<Tensor> {
        let g = &self.geometry;
        let cg = self.c / g.groups;
        let wn = self.m * cg * g.kernel[0] * g.kernel[1];
        let x = Tensor::new(
            vec![1, self.c, self.hw[0], self.hw[1]],
            TensorData::U8(bytes(self.c * self.hw[0] * self.hw[1], 3)),
        );
        let w = Tensor::new(
            vec![self.m, cg, g.kernel[0], g.kernel[1]],
            TensorData::I8(bytes(wn, 4).iter().map(|&b| b as i8).collect()),
        );
        let scales = (0..self.m)
            .map(|i| 0.002 + 0.0005 * (i % 7) as f32)
            .collect();
        let mut v = vec![
            x.unwrap(),
            w.unwrap(),
            Tensor::from_f32(vec![self.m], scales).unwrap(),
        ];
        if self.bias {
            let b = (0..self.m)
                .map(|i| (i as i32 * 977) % 4001 - 2000)
                .collect();
            v.push(Tensor::new(vec![self.m], TensorData::I32(b)).unwrap());
        }
        v
    }
}

fn geometry(
    k: usize,
    stride: usize,
    dilation: usize,
    pads: [usize; 4],
    groups: usize,
) -> ConvGeometry {
    ConvGeometry {
        kernel: [k, k],
        strides: [stride, stride],
        dilations: [dilation, dilation],
        pads,
        groups,
    }
}

fn grid() -> Vec<QConvCase> {
    let case = |c, m, hw, geometry, activation| QConvCase {
        c,
        m,
        hw,
        geometry,
        x_zero: 3,
        y_zero: 128,
        bias: true,
        activation,
    };
    let relu = Some(UnaryOp::Relu);
    let relu6 = Some(UnaryOp::Clip { min: 0.0, max: 6.0 });
    let mut v = vec![
        // 1×1 as GEMM: channel counts around the tiles (4, 8 rows; 8, 16, 32 pixels).
        case(16, 8, [4, 8], geometry(1, 1, 1, [0; 4], 1), None),
        case(17, 9, [5, 7], geometry(1, 1, 1, [0; 4], 1), relu),
        case(3, 33, [9, 11], geometry(1, 1, 1, [0; 4], 1), None),
        case(64, 7, [1, 1], geometry(1, 1, 1, [0; 4], 1), relu6),
        // General: 3×3 stride 2 padded (the stem), asymmetric pads, dilation, groups.
        case(3, 32, [15, 15], geometry(3, 2, 1, [1, 1, 1, 1], 1), relu6),
        case(5, 6, [8, 9], geometry(3, 1, 1, [0, 1, 2, 0], 1), None),
        case(4, 5, [9, 9], geometry(3, 1, 2, [2; 4], 1), None),
        case(8, 12, [6, 6], geometry(3, 1, 1, [1; 4], 2), relu),
        // Depthwise 3×3 and 5×5, strides 1 and 2.
        case(7, 7, [9, 10], geometry(3, 1, 1, [1; 4], 7), relu6),
        case(5, 5, [11, 11], geometry(5, 2, 1, [2; 4], 5), None),
        case(6, 6, [8, 8], geometry(3, 2, 2, [0, 1, 1, 2], 6), relu),
        // Channel-blocked (narrow planes): two whole blocks and a partial
        // one; and a plane too wide for it.
        case(35, 35, [7, 7], geometry(5, 1, 1, [2; 4], 35), relu6),
        case(20, 20, [14, 13], geometry(3, 2, 1, [1, 0, 1, 1], 20), None),
        case(3, 3, [5, 61], geometry(3, 1, 1, [1; 4], 3), relu),
    ];
    let mut no_bias = v[0].clone();
    no_bias.bias = false;
    no_bias.x_zero = 0;
    no_bias.y_zero = 0;
    v.push(no_bias);
    v
}

/// Runs `kernel` on `inputs` into a fresh output (bytes of any dtype).
fn run(kernel: &dyn Kernel, inputs: &[Tensor], out: &TypeInfo, threads: &Threads) -> Vec<u8> {
    let ins: Vec<Input> = inputs.iter().map(Input::of).collect();
    let n: usize = out.shape.iter().product();
    let mut y = vec![0xA5u8; n * out.dtype.size()];
    let mut scratch = vec![f32::NAN; kernel.scratch_bytes(threads.count()).div_ceil(4)];
    let mut words = vec![0f32; if out.dtype == DType::F32 { n } else { 0 }];
    let data = match out.dtype {
        DType::F32 => ViewMut::F32(&mut words),
        _ => ViewMut::U8(&mut y),
    };
    let mut outs = [Output {
        shape: &out.shape,
        data,
    }];
    kernel
        .run(&ins, &mut outs, &mut scratch, threads)
        .expect("run");
    if out.dtype == DType::F32 {
        return words.iter().flat_map(|v| v.to_le_bytes()).collect();
    }
    y
}

/// Checks every int8 family of `isa` that takes `op` on `inputs` (those
/// marked constant are weights); returns the families.
fn check(
    isa: Isa,
    op: &Op,
    inputs: &[Tensor],
    constant: &[bool],
    pool: &rayon::ThreadPool,
) -> Vec<&'static str> {
    let infos: Vec<TypeInfo> = inputs
        .iter()
        .map(|t| TypeInfo::new(t.dtype(), t.shape().to_vec()))
        .collect();
    let operands: Vec<Operand> = infos
        .iter()
        .zip(inputs)
        .zip(constant)
        .map(|((info, t), &c)| Operand {
            info,
            constant: c.then_some(t),
        })
        .collect();
    let refs: Vec<&TypeInfo> = infos.iter().collect();
    let outs = op.infer("case", &refs).expect("case shape");
    let want = run(
        &Reference::new(op, &operands, &outs),
        inputs,
        &outs[0],
        &Threads::single(),
    );
    let mut accepted = Vec::new();
    for spec in int8_specs(isa) {
        let Some(kernel) = (spec.build)(op, &operands, &outs) else {
            continue;
        };
        accepted.push(spec.family);
        for threads in [Threads::single(), Threads::pool(pool)] {
            let got = run(kernel.as_ref(), inputs, &outs[0], &threads);
            assert_eq!(
                got,
                want,
                "{} ({isa:?}, {} threads) on {op:?} {infos:?}",
                kernel.name(),
                threads.count()
            );
        }
    }
    accepted
}

fn check_conv(isa: Isa, case: &QConvCase, pool: &rayon::ThreadPool) -> Vec<&'static str> {
    let inputs = case.inputs();
    let constant: Vec<bool> = (0..inputs.len()).map(|i| i > 0).collect();
    check(isa, &case.op(), &inputs, &constant, pool)
}

fn u8_tensor(shape: &[usize], seed: usize) -> Tensor {
    Tensor::new(
        shape.to_vec(),
        TensorData::U8(bytes(shape.iter().product(), seed)),
    )
    .unwrap()
}

/// Elementwise cases: odd lengths (vector tails), extreme zero points, and
/// floats that saturate, tie and are NaN.
fn elementwise_cases() -> Vec<(Op, Vec<Tensor>)> {
    let q = |scale, zero_point| Quant {
        scale,
        zero_point,
        dtype: DType::U8,
    };
    let mut floats: Vec<f32> = (0..67).map(|i| (i as f32 - 33.0) * 0.37).collect();
    floats.extend([0.25, 0.75, -0.25, 1e9, -1e9, f32::NAN, f32::INFINITY]);
    let n = floats.len();
    let shape = [1, 3, 5, 7];
    let mut v = vec![
        (
            Op::Quantize(q(0.5, 128)),
            vec![Tensor::from_f32(vec![n], floats.clone()).unwrap()],
        ),
        (
            Op::Quantize(q(0.02, 0)),
            vec![Tensor::from_f32(vec![n], floats).unwrap()],
        ),
        (Op::Dequantize(q(0.1, 3)), vec![u8_tensor(&shape, 5)]),
        (
            Op::QGlobalAvgPool {
                x: q(0.1, 7),
                y: q(0.05, 120),
            },
            vec![u8_tensor(&shape, 6)],
        ),
        (
            Op::QGlobalAvgPool {
                x: q(0.1, 255),
                y: q(0.3, 0),
            },
            vec![u8_tensor(&[2, 4, 1, 9], 7)],
        ),
    ];
    for op in [crate::ir::BinaryOp::Add, crate::ir::BinaryOp::Mul] {
        for (a, b, y) in [
            (q(0.1, 7), q(0.03, 200), q(0.08, 128)),
            (q(0.5, 0), q(0.5, 255), q(0.01, 0)),
        ] {
            v.push((
                Op::QBinary { op, a, b, y },
                vec![u8_tensor(&shape, 8), u8_tensor(&shape, 9)],
            ));
        }
    }
    v
}

fn pool() -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(3)
        .build()
        .unwrap()
}

#[test]
fn every_int8_kernel_matches_the_reference_on_the_grid() {
    let pool = pool();
    for isa in Isa::ALL.into_iter().filter(|i| i.available()) {
        let mut seen = Vec::new();
        for case in grid() {
            seen.extend(check_conv(isa, &case, &pool));
        }
        for (op, inputs) in elementwise_cases() {
            let runtime = vec![false; inputs.len()];
            seen.extend(check(isa, &op, &inputs, &runtime, &pool));
        }
        for spec in int8_specs(isa) {
            let n = seen.iter().filter(|&&f| f == spec.family).count();
            assert!(n > 0, "{isa:?} {} accepted no case", spec.family);
        }
    }
}

#[test]
fn requantize_rounds_like_exact_arithmetic() {
    for &real in &[0.75, 0.0123, 3.5e-5, 1.0, 17.25, 1e-9] {
        let r = Requantize::new(real, 10, -1000, i32::MAX).unwrap();
        for acc in [-100_000, -7, -1, 0, 1, 3, 999, 123_456, 9_999_999] {
            let exact = (acc as f64 * real + 0.5).floor() as i64 + 10;
            let got = r.apply(acc) as i64;
            // The 31-bit multiplier is within 2^-31 relative of `real`.
            let slack = (acc as f64 * real).abs() * 2f64.powi(-30) + 1e-9;
            let near_tie = ((acc as f64 * real).fract().abs() - 0.5).abs() < slack;
            if !near_tie {
                assert_eq!(got, exact.max(-1000), "acc {acc} · {real}");
            }
        }
    }
    assert!(Requantize::new(0.0, 0, 0, 255).is_none());
    assert!(Requantize::new(f64::NAN, 0, 0, 255).is_none());
    assert!(Requantize::new(2e9, 0, 0, 255).is_none());
    assert!(Requantize::new(0.5, 0, 10, 5).is_none());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]
    #[test]
    fn random_qconvs_match_the_reference(
        c in 1usize..10, m in 1usize..20, h in 1usize..10, w in 1usize..10,
        k in 1usize..4, stride in 1usize..3, dilation in 1usize..3,
        pads in proptest::array::uniform4(0usize..3), depthwise in any::<bool>(),
        x_zero in 0i32..256, y_zero in 0i32..256,
    ) {
        let groups = if depthwise { c } else { 1 };
        let m = if depthwise { c } else { m };
        let case = QConvCase {
            c, m, hw: [h, w], geometry: geometry(k, stride, dilation, pads, groups),
            x_zero, y_zero, bias: true, activation: None,
        };
        let infos: Vec<TypeInfo> = case.inputs().iter().map(|t| TypeInfo::new(t.dtype(), t.shape().to_vec())).collect();
        let refs: Vec<&TypeInfo> = infos.iter().collect();
        if case.op().infer("case", &refs).is_ok() {
            let pool = pool();
            for isa in Isa::ALL.into_iter().filter(|i| i.available()) {
                check_conv(isa, &case, &pool);
            }
        }
    }
}
