//! The conformance harness: every kernel family of every ISA this CPU runs
//! is checked against the scalar reference on a generated grid of shapes
//! (tile sizes and tile±1, ones, odd channels, strides, dilations, groups,
//! asymmetric padding, K and N past one cache block), with 1 and 3 threads,
//! plus random conv shapes from proptest. The cases come from the same
//! [`specs`] lists as the registry, and every spec must accept some case,
//! so no kernel escapes.

use proptest::prelude::*;

use super::contract::{Input, Output, Threads, ViewMut};
use super::scalar::reference::Reference;
use super::{specs, Isa, KernelSpec, Operand};
use crate::exec::kernels::contract::Kernel;
use crate::ir::{
    BinaryOp, Cell, ConvGeometry, CoordTransform, Direction, NearestMode, Op, PoolGeometry,
    PoolKind, Recurrent, ResizeMode, Tensor, TypeInfo, UnaryOp,
};

/// One node to test: its op and inputs (constants where weights go).
struct Case {
    op: Op,
    inputs: Vec<Tensor>,
    constant: Vec<bool>,
}

impl Case {
    fn infos(&self) -> Vec<TypeInfo> {
        self.inputs
            .iter()
            .map(|t| TypeInfo::new(t.dtype(), t.shape().to_vec()))
            .collect()
    }
    fn outputs(&self, infos: &[TypeInfo]) -> Vec<TypeInfo> {
        let refs: Vec<&TypeInfo> = infos.iter().collect();
        self.op.infer("case", &refs).expect("case shape")
    }
    fn operands<'a>(&'a self, infos: &'a [TypeInfo]) -> Vec<Operand<'a>> {
        infos
            .iter()
            .zip(&self.inputs)
            .zip(&self.constant)
            .map(|((info, t), &c)| Operand {
                info,
                constant: c.then_some(t),
            })
            .collect()
    }
}

/// Deterministic values in [-1, 1) that differ by position and seed.
fn values(n: usize, seed: usize) -> Vec<f32> {
    (0..n)
        .map(|i| {
            let h = (i.wrapping_mul(2654435761) ^ seed.wrapping_mul(40503)) % 2003;
            h as f32 / 1001.5 - 1.0
        })
        .collect()
}

fn tensor(shape: &[usize], seed: usize) -> Tensor {
    Tensor::from_f32(shape.to_vec(), values(shape.iter().product(), seed)).unwrap()
}

#[derive(Clone, Copy, Debug)]
struct ConvCase {
    n: usize,
    c: usize,
    m: usize,
    hw: [usize; 2],
    k: [usize; 2],
    stride: usize,
    dilation: usize,
    pads: [usize; 4],
    groups: usize,
    bias: bool,
    residual: bool,
    activation: Option<UnaryOp>,
}

impl ConvCase {
    fn case(&self) -> Option<Case> {
        let g = ConvGeometry {
            kernel: self.k,
            strides: [self.stride; 2],
            dilations: [self.dilation; 2],
            pads: self.pads,
            groups: self.groups,
        };
        if !self.c.is_multiple_of(self.groups) || !self.m.is_multiple_of(self.groups) {
            return None;
        }
        let op = Op::Conv {
            geometry: g,
            activation: self.activation,
        };
        let x = tensor(&[self.n, self.c, self.hw[0], self.hw[1]], 1);
        let w = tensor(&[self.m, self.c / self.groups, self.k[0], self.k[1]], 2);
        let mut inputs = vec![x, w];
        if self.bias || self.residual {
            inputs.push(tensor(&[self.m], 3));
        }
        let infos: Vec<TypeInfo> = inputs
            .iter()
            .map(|t| TypeInfo::f32(t.shape().to_vec()))
            .collect();
        let refs: Vec<&TypeInfo> = infos.iter().collect();
        let out = op.infer("case", &refs).ok()?;
        if self.residual {
            inputs.push(tensor(&out[0].shape, 4));
        }
        let constant = (0..inputs.len()).map(|i| i == 1 || i == 2).collect();
        Some(Case {
            op,
            inputs,
            constant,
        })
    }
}

const ACTIVATIONS: [Option<UnaryOp>; 6] = [
    None,
    Some(UnaryOp::Relu),
    Some(UnaryOp::Clip { min: 0.0, max: 6.0 }),
    Some(UnaryOp::HardSwish),
    Some(UnaryOp::Sigmoid),
    Some(UnaryOp::LeakyRelu { alpha: 0.1 }),
];

fn conv_cases() -> Vec<Case> {
    let base = ConvCase {
        n: 1,
        c: 8,
        m: 8,
        hw: [7, 7],
        k: [3, 3],
        stride: 1,
        dilation: 1,
        pads: [1; 4],
        groups: 1,
        bias: true,
        residual: false,
        activation: None,
    };
    let mut v = Vec::new();
    // Tile edges of every microkernel: M and N at 6, 8, 16, 32 and ±1.
    for m in [1, 5, 6, 7, 8, 9, 15, 16, 17, 31, 32, 33] {
        for hw in [[1, 1], [4, 4], [1, 15], [4, 8], [3, 11], [17, 17]] {
            v.push(ConvCase {
                m,
                hw,
                k: [1, 1],
                pads: [0; 4],
                ..base
            });
        }
    }
    // K past one cache block (KC = 256), N past NC = 256.
    v.push(ConvCase {
        c: 29,
        m: 13,
        hw: [17, 19],
        ..base
    });
    v.push(ConvCase {
        c: 300,
        m: 7,
        hw: [5, 5],
        k: [1, 1],
        pads: [0; 4],
        ..base
    });
    // Geometry: kernels, strides, dilations, asymmetric pads, odd channels.
    for k in [[1, 1], [3, 3], [5, 5], [1, 3], [7, 7]] {
        for stride in [1, 2, 3] {
            for (dilation, pads) in [(1, [0; 4]), (1, [1, 2, 0, 1]), (2, [2; 4])] {
                for (c, m) in [(3, 16), (5, 7)] {
                    v.push(ConvCase {
                        c,
                        m,
                        hw: [9, 10],
                        k,
                        stride,
                        dilation,
                        pads,
                        ..base
                    });
                }
            }
        }
    }
    // Rows wide enough for the implicit GEMM (B read in place from a padded
    // copy): whole panels, panel ± 1, strides, dilations, groups, K blocks.
    for (hw, k, stride, dilation) in [
        ([5, 16], [3, 3], 1, 1),
        ([4, 32], [3, 3], 1, 1),
        ([3, 33], [3, 3], 1, 2),
        ([6, 28], [5, 5], 1, 1),
        ([9, 64], [3, 3], 2, 1),
        ([7, 63], [7, 7], 2, 1),
        ([3, 30], [1, 3], 3, 1),
    ] {
        // (3, 7) has K = 27, under `MIN_IN_PLACE_K`, so it packs B; the grouped (32, 12, 4) keeps a grouped conv read in place.
        for (c, m, groups) in [(3, 7, 1), (29, 16, 1), (8, 12, 4), (32, 12, 4)] {
            v.push(ConvCase {
                c,
                m,
                hw,
                k,
                stride,
                dilation,
                pads: [1, 2, 1, 0],
                groups,
                ..base
            });
        }
    }
    // Winograd F(2×2, 3×3): odd output sizes (half tiles at the right and
    // bottom edges), padding 0, 1, 2 and asymmetric, channel tails of the
    // microkernels, every epilogue with a residual, batch 2.
    for (hw, pads, c, m) in [
        ([8, 8], [1; 4], 32, 32),
        ([17, 15], [1; 4], 33, 37),
        ([15, 18], [0; 4], 40, 32),
        ([16, 17], [2, 1, 0, 2], 32, 45),
        ([20, 9], [1, 0, 1, 1], 35, 33),
    ] {
        v.push(ConvCase {
            c,
            m,
            hw,
            pads,
            ..base
        });
    }
    for activation in ACTIVATIONS {
        v.push(ConvCase {
            c: 32,
            m: 38,
            hw: [17, 19],
            activation,
            residual: activation.is_some(),
            bias: activation.is_none(),
            n: 2,
            ..base
        });
    }
    // Depthwise and grouped, at 3×3 and 5×5, strides 1 and 2.
    for k in [[3, 3], [5, 5]] {
        for stride in [1, 2] {
            for hw in [[1, 1], [5, 6], [14, 14], [15, 9], [6, 40]] {
                for (c, groups) in [(1, 1), (8, 8), (17, 17), (8, 2), (12, 3)] {
                    v.push(ConvCase {
                        c,
                        m: c,
                        hw,
                        k,
                        stride,
                        pads: [k[0] / 2; 4],
                        groups,
                        ..base
                    });
                }
            }
        }
    }
    // Depthwise in both layouts (channel-blocked up to 10 columns and when
    // strided, planes past that) with channel-block tails (33: one lane;
    // 40: a whole group of 8), every epilogue, and strided planes wide
    // enough to be blocked in strips of one or a few rows (columns not a
    // multiple of 8 nor of the stride).
    let layouts = [
        ([7, 7], 1, [3, 3], 33),
        ([16, 15], 2, [3, 3], 33),
        ([5, 30], 1, [3, 3], 33),
        ([30, 83], 2, [3, 3], 40),
        ([21, 64], 2, [5, 5], 33),
        ([12, 26], 3, [3, 3], 40),
    ];
    for (hw, stride, k, c) in layouts {
        for activation in ACTIVATIONS {
            v.push(ConvCase {
                c,
                m: c,
                hw,
                k,
                stride,
                pads: [k[0] / 2; 4],
                groups: c,
                activation,
                residual: activation.is_some(),
                n: 2,
                ..base
            });
        }
    }
    // Few output pixels and many channels (the transposed GEMM on wide
    // vectors): channel tails, K blocks, 1×1 and 3×3, every epilogue.
    for (hw, k, c, m) in [
        ([7, 7], [1, 1], 40, 72),
        ([7, 7], [3, 3], 150, 40),
        ([14, 14], [1, 1], 24, 33),
        ([3, 3], [3, 3], 16, 100),
    ] {
        for activation in ACTIVATIONS {
            v.push(ConvCase {
                c,
                m,
                hw,
                k,
                pads: [k[0] / 2; 4],
                activation,
                residual: activation.is_some(),
                n: 2,
                ..base
            });
        }
    }
    // Epilogues: every fused activation, without bias, with a residual, batch 2.
    for activation in ACTIVATIONS {
        for (bias, residual) in [(false, false), (true, false), (true, true)] {
            for groups in [1, 8] {
                v.push(ConvCase {
                    activation,
                    bias,
                    residual,
                    groups,
                    n: 2,
                    ..base
                });
            }
        }
    }
    v.iter().filter_map(ConvCase::case).collect()
}

fn dense_cases() -> Vec<Case> {
    let mut v = Vec::new();
    for rows in [1, 2, 7] {
        // 7 and 303: whole groups of K steps and a tail (the GEMV), 303
        // across two K blocks.
        for k in [1, 7, 303] {
            for n in [1, 7, 16, 33] {
                for (trans_a, trans_b) in [(false, false), (false, true), (true, false)] {
                    for bias in [None, Some(vec![n]), Some(vec![1, n]), Some(vec![1])] {
                        let a = if trans_a { [k, rows] } else { [rows, k] };
                        let b = if trans_b { [n, k] } else { [k, n] };
                        let mut inputs = vec![tensor(&a, 1), tensor(&b, 2)];
                        if let Some(s) = &bias {
                            inputs.push(tensor(s, 3));
                        }
                        v.push(Case {
                            op: Op::Gemm {
                                alpha: 0.5,
                                beta: 2.0,
                                trans_a,
                                trans_b,
                                activation: Some(UnaryOp::Relu).filter(|_| n == 7),
                            },
                            constant: (0..inputs.len()).map(|i| i > 0).collect(),
                            inputs,
                        });
                    }
                }
                for x in [vec![rows, k], vec![2, rows, k], vec![k]] {
                    v.push(Case {
                        op: Op::MatMul,
                        inputs: vec![tensor(&x, 1), tensor(&[k, n], 2)],
                        constant: vec![false, true],
                    });
                }
            }
        }
    }
    v
}

fn elementwise_cases() -> Vec<Case> {
    let mut v = Vec::new();
    let pairs: [(&[usize], &[usize]); 5] = [
        (&[2, 3, 4, 5], &[2, 3, 4, 5]),
        (&[1, 8, 4, 4], &[1, 8, 1, 1]),
        (&[3, 1, 5], &[4, 1]),
        (&[1, 17], &[1]),
        (&[33], &[33]),
    ];
    for op in [
        BinaryOp::Add,
        BinaryOp::Sub,
        BinaryOp::Mul,
        BinaryOp::Div,
        BinaryOp::Max,
    ] {
        for (a, b) in pairs {
            v.push(Case {
                op: Op::Binary(op),
                inputs: vec![tensor(a, 1), tensor(b, 2)],
                constant: vec![false, false],
            });
        }
    }
    for u in ACTIVATIONS
        .into_iter()
        .flatten()
        .chain([
            UnaryOp::Tanh,
            UnaryOp::Exp,
            UnaryOp::Abs,
            UnaryOp::Neg,
            UnaryOp::HardSigmoid {
                alpha: 0.2,
                beta: 0.5,
            },
            UnaryOp::Erf,
            UnaryOp::Softplus,
            UnaryOp::Elu { alpha: 0.7 },
            UnaryOp::Sign,
            UnaryOp::Round,
            UnaryOp::Gelu { tanh: false },
            UnaryOp::Gelu { tanh: true },
            UnaryOp::Mish,
            UnaryOp::Shrink {
                bias: 0.5,
                lambd: 0.3,
            },
        ])
        .chain(crate::ir::Trig::ALL.map(UnaryOp::Trig))
    {
        v.push(Case {
            op: Op::Unary(u),
            inputs: vec![tensor(&[2, 3, 7, 5], 1)],
            constant: vec![false],
        });
    }
    for activation in ACTIVATIONS {
        v.push(Case {
            op: Op::ChannelAffine { activation },
            inputs: vec![tensor(&[2, 5, 3, 7], 1), tensor(&[5], 2), tensor(&[5], 3)],
            constant: vec![false, true, true],
        });
    }
    v
}

fn conv_transpose_cases() -> Vec<Case> {
    let mut v = Vec::new();
    for (k, stride, pads, dilation, output_padding) in [
        ([2, 2], 2, [0; 4], 1, [0, 0]),
        ([3, 3], 2, [1, 1, 1, 1], 1, [1, 1]),
        ([4, 4], 2, [1, 1, 1, 1], 1, [0, 0]),
        ([3, 3], 1, [0, 1, 2, 0], 2, [0, 0]),
        ([1, 1], 1, [0; 4], 1, [0, 0]),
    ] {
        for (c, m, hw) in [(1, 1, [1, 1]), (5, 7, [6, 5]), (16, 9, [17, 3])] {
            for activation in [None, Some(UnaryOp::Relu)] {
                let op = Op::ConvTranspose {
                    geometry: ConvGeometry {
                        kernel: k,
                        strides: [stride; 2],
                        dilations: [dilation; 2],
                        pads,
                        groups: 1,
                    },
                    output_padding,
                    activation,
                };
                let inputs = vec![
                    tensor(&[2, c, hw[0], hw[1]], 1),
                    tensor(&[c, m, k[0], k[1]], 2),
                    tensor(&[m], 3),
                ];
                let infos: Vec<TypeInfo> = inputs
                    .iter()
                    .map(|t| TypeInfo::f32(t.shape().to_vec()))
                    .collect();
                let refs: Vec<&TypeInfo> = infos.iter().collect();
                if op.infer("case", &refs).is_ok() {
                    v.push(Case {
                        op,
                        inputs,
                        constant: vec![false, true, true],
                    });
                }
            }
        }
    }
    v
}

fn resize_cases() -> Vec<Case> {
    let mut v = Vec::new();
    for mode in [
        ResizeMode::Linear,
        ResizeMode::Nearest(NearestMode::Floor),
        ResizeMode::Nearest(NearestMode::RoundPreferFloor),
    ] {
        for coord in [
            CoordTransform::HalfPixel,
            CoordTransform::AlignCorners,
            CoordTransform::Asymmetric,
        ] {
            for (hw, out) in [
                ([5, 7], [10, 14]),
                ([8, 8], [3, 5]),
                ([1, 1], [4, 4]),
                ([6, 9], [6, 9]),
                ([4, 3], [12, 6]),
                ([3, 5], [3, 15]),
            ] {
                let x = [2, 3, hw[0], hw[1]];
                let out_shape = vec![2, 3, out[0], out[1]];
                let scales = vec![
                    1.0,
                    1.0,
                    out[0] as f32 / hw[0] as f32,
                    out[1] as f32 / hw[1] as f32,
                ];
                v.push(Case {
                    op: Op::Resize {
                        mode,
                        coord,
                        out_shape,
                        scales,
                    },
                    inputs: vec![tensor(&x, 1)],
                    constant: vec![false],
                });
            }
        }
    }
    v
}

fn pool_cases() -> Vec<Case> {
    let mut v = Vec::new();
    for kind in [
        PoolKind::Max,
        PoolKind::Avg {
            count_include_pad: true,
        },
        PoolKind::Avg {
            count_include_pad: false,
        },
    ] {
        for (kernel, strides, pads, dilations) in [
            ([3, 3], [2, 2], [1, 1, 1, 1], [1, 1]),
            ([2, 2], [2, 2], [0; 4], [1, 1]),
            ([3, 3], [1, 1], [0, 1, 2, 1], [1, 1]),
            ([5, 3], [1, 2], [0; 4], [2, 1]),
            ([2, 2], [2, 2], [0, 0, 2, 0], [1, 1]),
        ] {
            for ceil_mode in [false, true] {
                for (c, hw) in [
                    (3, [1, 1]),
                    (19, [7, 7]),
                    (3, [18, 17]),
                    (3, [56, 3]),
                    (19, [4, 40]),
                    // An empty map, wide and strided: nothing to compute.
                    (33, [0, 40]),
                ] {
                    let op = Op::Pool(PoolGeometry {
                        kind,
                        kernel,
                        strides,
                        dilations,
                        pads,
                        ceil_mode,
                    });
                    let x = TypeInfo::f32(vec![2, c, hw[0], hw[1]]);
                    if op.infer("case", &[&x]).is_ok() {
                        v.push(Case {
                            op,
                            inputs: vec![tensor(&x.shape, 1)],
                            constant: vec![false],
                        });
                    }
                }
            }
        }
    }
    v
}

/// Global pooling: planes shorter and longer than a vector, rank 3 and 4.
fn global_pool_cases() -> Vec<Case> {
    let mut v = Vec::new();
    for kind in [
        PoolKind::Max,
        PoolKind::Avg {
            count_include_pad: false,
        },
        PoolKind::Lp { p: 2 },
        PoolKind::Lp { p: 3 },
    ] {
        for shape in [
            [2, 3, 7, 7].as_slice(),
            &[1, 33, 1, 1],
            &[1, 5, 17, 3],
            &[2, 4, 9],
        ] {
            v.push(Case {
                op: Op::GlobalPool(kind),
                inputs: vec![tensor(shape, 1)],
                constant: vec![false],
            });
        }
    }
    v
}

/// Recurrent layers: every cell, both directions, a hidden size off the
/// tile and vector widths, sequences of different lengths, clipping.
fn recurrent_cases() -> Vec<Case> {
    let (seq, batch, features, h) = (5, 2, 9, 7);
    let mut v = Vec::new();
    for (cell, direction, clip) in [
        (Cell::Lstm, Direction::Bidirectional, Some(1.5)),
        (Cell::Lstm, Direction::Reverse, None),
        (
            Cell::Gru {
                linear_before_reset: true,
            },
            Direction::Forward,
            None,
        ),
        (
            Cell::Gru {
                linear_before_reset: false,
            },
            Direction::Bidirectional,
            Some(2.0),
        ),
        (Cell::Rnn, Direction::Reverse, None),
    ] {
        let (dirs, g) = (direction.count(), cell.gates());
        let defaults: &[UnaryOp] = match cell {
            Cell::Lstm => &[UnaryOp::Sigmoid, UnaryOp::Tanh, UnaryOp::Tanh],
            Cell::Gru { .. } => &[UnaryOp::Sigmoid, UnaryOp::Tanh],
            Cell::Rnn => &[UnaryOp::Tanh],
        };
        let mut inputs = vec![
            tensor(&[seq, batch, features], 1),
            tensor(&[dirs, g * h, features], 2),
            tensor(&[dirs, g * h, h], 3),
            tensor(&[dirs, 2 * g * h], 4),
            Tensor::from_i64(vec![batch], vec![seq as i64, 3]).unwrap(),
            tensor(&[dirs, batch, h], 5),
        ];
        if cell == Cell::Lstm {
            inputs.push(tensor(&[dirs, batch, h], 6));
            inputs.push(tensor(&[dirs, 3 * h], 7));
        }
        let constant = (0..inputs.len()).map(|i| (1..4).contains(&i)).collect();
        v.push(Case {
            op: Op::Recurrent(Recurrent {
                cell,
                direction,
                hidden: h,
                activations: defaults.repeat(dirs),
                clip,
            }),
            inputs,
            constant,
        });
    }
    v
}

fn all_cases() -> Vec<Case> {
    let mut v = conv_cases();
    v.extend(pool_cases());
    v.extend(global_pool_cases());
    v.extend(conv_transpose_cases());
    v.extend(resize_cases());
    v.extend(dense_cases());
    v.extend(elementwise_cases());
    v.extend(recurrent_cases());
    v
}

/// Runs `kernel` on `case` with `threads`, returning its (f32) outputs.
fn run(kernel: &dyn Kernel, case: &Case, outs: &[TypeInfo], threads: &Threads) -> Vec<Vec<f32>> {
    let ins: Vec<Input> = case.inputs.iter().map(Input::of).collect();
    let mut ys: Vec<Vec<f32>> = outs
        .iter()
        .map(|o| vec![f32::NAN; o.shape.iter().product()])
        .collect();
    let mut scratch = vec![f32::NAN; kernel.scratch_bytes(threads.count()).div_ceil(4)];
    let mut views: Vec<Output> = outs
        .iter()
        .zip(&mut ys)
        .map(|(o, y)| Output {
            shape: &o.shape,
            data: ViewMut::F32(y),
        })
        .collect();
    kernel
        .run(&ins, &mut views, &mut scratch, threads)
        .expect("kernel run");
    ys
}

/// Checks every spec of `isa` that accepts `case` against the reference;
/// returns the families that accepted it.
fn check(isa_specs: &[KernelSpec], case: &Case, pool: &rayon::ThreadPool) -> Vec<&'static str> {
    let infos = case.infos();
    let outs = case.outputs(&infos);
    let operands = case.operands(&infos);
    let reference = Reference::new(&case.op, &operands, &outs);
    let want = run(&reference, case, &outs, &Threads::single()).concat();
    let mut accepted = Vec::new();
    for spec in isa_specs {
        let Some(kernel) = (spec.build)(&case.op, &operands, &outs) else {
            continue;
        };
        accepted.push(spec.family);
        for threads in [Threads::single(), Threads::pool(pool)] {
            let got = run(kernel.as_ref(), case, &outs, &threads).concat();
            for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                // NaN where the reference has NaN too (Acosh below 1…), and
                // equal infinities (a max-pool window all in the padding).
                assert!(
                    (g - w).abs() <= 1e-4 * w.abs().max(1.0)
                        || (g.is_nan() && w.is_nan())
                        || g == w,
                    "{} ({:?}, {} threads) on {:?} {:?}: y[{i}] = {g}, reference {w}",
                    kernel.name(),
                    spec.isa,
                    threads.count(),
                    case.op,
                    infos.iter().map(|i| &i.shape).collect::<Vec<_>>()
                );
            }
        }
    }
    accepted
}

fn pool() -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(3)
        .build()
        .unwrap()
}

/// The ISAs with SIMD kernel lists that this CPU runs.
fn simd_isas() -> Vec<Isa> {
    Isa::ALL
        .into_iter()
        .filter(|&i| i != Isa::Scalar && i.available())
        .collect()
}

#[test]
fn every_kernel_matches_the_reference_on_the_grid() {
    let cases = all_cases();
    let pool = pool();
    let isas = simd_isas();
    if isas.is_empty() {
        eprintln!("NOT RUN: no SIMD ISA on this CPU; only the reference kernels exist here");
    }
    for isa in isas {
        let list = specs(isa);
        let mut seen: Vec<&str> = Vec::new();
        for case in &cases {
            seen.extend(check(&list, case, &pool));
        }
        for spec in &list {
            let n = seen.iter().filter(|&&f| f == spec.family).count();
            assert!(n > 0, "{:?} {} accepted no case", isa, spec.family);
            eprintln!("{:?} {}: {} cases", isa, spec.family, n);
        }
    }
}

/// The best ISA's kernels are the ones chosen, for every SIMD family:
/// a silent fallback to the reference fails. `SQUEEZE_EXPECT_ISA=neon`
/// (set by scripts/test-aarch64.sh per CPU model) also pins which ISA
/// detection must find.
#[test]
fn dispatch_picks_the_best_isa() {
    let best = Isa::best();
    if let Ok(want) = std::env::var("SQUEEZE_EXPECT_ISA") {
        let want = Isa::from_name(&want).expect("SQUEEZE_EXPECT_ISA names an ISA");
        assert_eq!(best, want, "detected {best:?}");
    }
    if best == Isa::Scalar {
        eprintln!("NOT RUN: no SIMD ISA on this CPU; only the reference kernels exist here");
        return;
    }
    let cases = all_cases();
    for spec in specs(best) {
        let chosen = cases.iter().find_map(|case| {
            let infos = case.infos();
            let operands = case.operands(&infos);
            let outs = case.outputs(&infos);
            (spec.build)(&case.op, &operands, &outs)?;
            Some(super::prepare(best, &case.op, &operands, &outs).name())
        });
        let name = chosen.unwrap_or_else(|| panic!("{} accepted no case", spec.family));
        assert!(
            name.ends_with(best.name()),
            "{name} chosen for {} on {best:?}",
            spec.family
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    #[test]
    fn random_convs_match_the_reference(
        c in 1usize..12, m in 1usize..20, h in 1usize..12, w in 1usize..12,
        k in 1usize..4, stride in 1usize..3, dilation in 1usize..3,
        pads in proptest::array::uniform4(0usize..3), depthwise in any::<bool>(),
        act in 0usize..ACTIVATIONS.len(), residual in any::<bool>(),
    ) {
        let groups = if depthwise { c } else { 1 };
        let m = if depthwise { c } else { m };
        let case = ConvCase {
            n: 1, c, m, hw: [h, w], k: [k, k], stride, dilation, pads, groups,
            bias: true, residual, activation: ACTIVATIONS[act],
        };
        if let Some(case) = case.case() {
            let pool = pool();
            for isa in simd_isas() {
                check(&specs(isa), &case, &pool);
            }
        }
    }
}
