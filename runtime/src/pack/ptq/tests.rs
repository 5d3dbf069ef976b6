//! Static quantization of a small residual network: which parts run as
//! int8, how close the result stays to float, and the mixed-precision
//! fallback.

use super::*;
use crate::ir::testing::conv3x3;
use crate::ir::{BinaryOp, Node, Op, PoolKind, TypeInfo, UnaryOp};

fn push(g: &mut Graph, name: &str, op: Op, inputs: Vec<ValueId>, shape: Vec<usize>) -> ValueId {
    let y = g.add_value(name, TypeInfo::f32(shape));
    g.nodes.push(Node {
        name: name.into(),
        op,
        inputs,
        outputs: vec![y],
    });
    y
}

/// x → conv → Relu → conv, + the first Relu's output → Relu → global
/// average: every kind of unit, a residual add among them.
fn residual_net() -> Graph {
    let mut g = Graph::default();
    let x = g.add_value("x", TypeInfo::f32(vec![1, 4, 6, 6]));
    g.inputs.push(x);
    let a = conv3x3(&mut g, x, 4, 8, 1);
    let relu = Op::Unary(UnaryOp::Relu);
    let a = push(&mut g, "relu1", relu.clone(), vec![a], vec![1, 8, 6, 6]);
    let b = conv3x3(&mut g, a, 8, 8, 2);
    let sum = push(
        &mut g,
        "add",
        Op::Binary(BinaryOp::Add),
        vec![b, a],
        vec![1, 8, 6, 6],
    );
    let sum = push(&mut g, "relu2", relu, vec![sum], vec![1, 8, 6, 6]);
    let pool = Op::GlobalPool(PoolKind::Avg {
        count_include_pad: false,
    });
    let y = push(&mut g, "pool", pool, vec![sum], vec![1, 8, 1, 1]);
    g.outputs.push(y);
    crate::opt::optimize(&mut g).expect("optimize");
    g
}

fn input(seed: usize) -> Vec<Tensor> {
    let data = (0..144)
        .map(|i| (((i * 7919 + seed * 104_729) % 1000) as f32 / 500.0) - 1.0)
        .collect();
    vec![Tensor::from_f32(vec![1, 4, 6, 6], data).expect("input")]
}

fn run(g: &Graph, x: &[Tensor]) -> Vec<f32> {
    let mut exec = Executor::from_graph(g.clone(), &ExecOptions::default()).expect("exec");
    let refs: Vec<&Tensor> = x.iter().collect();
    exec.run(&refs).expect("run")[0].to_f32_vec()
}

fn count(g: &Graph, name: &str) -> usize {
    g.nodes.iter().filter(|n| n.op.name() == name).count()
}

#[test]
fn a_residual_net_runs_as_int8_close_to_float() {
    let float = residual_net();
    let calibration: Vec<Vec<Tensor>> = (0..8).map(input).collect();
    let (int8, layers) =
        quantize_static(&float, &calibration, &QuantizeOptions::default()).expect("quantize");
    let kinds: Vec<&str> = layers.iter().map(|l| l.op).collect();
    assert_eq!(kinds, ["Conv", "Conv", "Add", "GlobalAveragePool"]);
    assert!(layers.iter().all(|l| l.int8), "{layers:?}");
    assert_eq!(count(&int8, "QLinearConv"), 2);
    assert_eq!(count(&int8, "QLinearAdd"), 1);
    assert_eq!(count(&int8, "QLinearGlobalAveragePool"), 1);
    // Integers from the input quantization to the output dequantization.
    assert_eq!(count(&int8, "QuantizeLinear"), 1);
    assert_eq!(count(&int8, "DequantizeLinear"), 1);
    // On inputs it was not calibrated on, within a few output steps.
    for seed in 100..104 {
        let (want, got) = (run(&float, &input(seed)), run(&int8, &input(seed)));
        let range = want.iter().fold(0f32, |m, v| m.max(v.abs()));
        for (w, g) in want.iter().zip(&got) {
            assert!((w - g).abs() <= 0.05 * range, "{want:?} against {got:?}");
        }
    }
}

#[test]
fn layers_under_the_snr_threshold_stay_float() {
    let float = residual_net();
    let calibration: Vec<Vec<Tensor>> = (0..4).map(input).collect();
    let opts = QuantizeOptions {
        min_snr_db: MAX_SNR_DB + 1.0,
        ..QuantizeOptions::default()
    };
    let (mixed, layers) = quantize_static(&float, &calibration, &opts).expect("quantize");
    assert!(layers.iter().all(|l| !l.int8), "{layers:?}");
    assert_eq!(count(&mixed, "QLinearConv"), 0);
    assert_eq!(count(&mixed, "QuantizeLinear"), 0);
    // Nothing quantized: the float graph's results exactly.
    assert_eq!(run(&mixed, &input(7)), run(&float, &input(7)));
}

#[test]
fn no_calibration_is_an_error() {
    let err = quantize_static(&residual_net(), &[], &QuantizeOptions::default());
    assert!(err.is_err());
}
