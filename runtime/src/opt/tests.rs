//! One test per rewrite rule, on hand-built graphs: the rule fires where it
//! should, leaves what it must not touch, and results do not change.

use super::*;
use crate::exec::{ExecOptions, Executor};
use crate::ir::{ConvGeometry, Node, Op, PadMode, Tensor, TypeInfo, UnaryOp};

fn conv(graph: &mut Graph, x: usize, cin: usize, cout: usize) -> usize {
    crate::ir::testing::conv3x3(graph, x, cin, cout, 0)
}

fn unary(graph: &mut Graph, x: usize, op: Op, name: &str) -> usize {
    let info = graph.values[x].info.clone();
    let y = graph.add_value(name, info);
    graph.nodes.push(Node {
        name: name.into(),
        op,
        inputs: vec![x],
        outputs: vec![y],
    });
    y
}

fn with_input(c: usize) -> (Graph, usize) {
    let mut g = Graph::default();
    let x = g.add_value("x", TypeInfo::f32(vec![1, c, 6, 6]));
    g.inputs.push(x);
    (g, x)
}

fn run(g: &Graph) -> Vec<f32> {
    let x = &g.values[g.inputs[0]].info.shape;
    let n: usize = x.iter().product();
    let t = Tensor::from_f32(
        x.clone(),
        (0..n)
            .map(|i| ((i * 13) % 17) as f32 / 17.0 - 0.4)
            .collect(),
    )
    .unwrap();
    Executor::from_graph(g.clone(), &ExecOptions::default())
        .unwrap()
        .run(&[&t])
        .unwrap()[0]
        .to_f32_vec()
}

fn assert_same(a: &[f32], b: &[f32]) {
    for (x, y) in a.iter().zip(b) {
        assert!((x - y).abs() <= 1e-5 * x.abs().max(1.0), "{x} vs {y}");
    }
}

#[test]
fn fold_batchnorm_into_conv_and_alone() {
    let (mut g, x) = with_input(2);
    let c = conv(&mut g, x, 2, 3);
    let p = |g: &mut Graph, v: [f32; 3]| {
        g.add_constant("p", Tensor::from_f32(vec![3], v.to_vec()).unwrap())
    };
    let (s, b, m, var) = (
        p(&mut g, [1.5, 0.5, 2.0]),
        p(&mut g, [0.1, -0.2, 0.3]),
        p(&mut g, [0.2, 0.0, -0.1]),
        p(&mut g, [1.0, 2.0, 0.5]),
    );
    let y = g.add_value("bn", TypeInfo::f32(vec![1, 3, 6, 6]));
    g.nodes.push(Node {
        name: "bn".into(),
        op: Op::BatchNorm { epsilon: 1e-5 },
        inputs: vec![c, s, b, m, var],
        outputs: vec![y],
    });
    let z = g.add_value("bn2", TypeInfo::f32(vec![1, 3, 6, 6]));
    g.nodes.push(Node {
        name: "bn2".into(),
        op: Op::BatchNorm { epsilon: 1e-5 },
        inputs: vec![y, s, b, m, var],
        outputs: vec![z],
    });
    g.outputs.push(z);
    let before = run(&g);
    assert_eq!(fold_batchnorm(&mut g).unwrap(), 2);
    assert_eq!(g.nodes.len(), 2, "first BN folded into the conv");
    assert!(
        matches!(g.nodes[1].op, Op::ChannelAffine { .. }),
        "second BN became a scale and shift"
    );
    g.validate().unwrap();
    assert_same(&before, &run(&g));
}

#[test]
fn fuse_activation_only_when_sole_reader() {
    let (mut g, x) = with_input(2);
    let c = conv(&mut g, x, 2, 3);
    let r = unary(
        &mut g,
        c,
        Op::Unary(UnaryOp::Clip { min: 0.0, max: 6.0 }),
        "relu6",
    );
    let t = unary(&mut g, r, Op::Unary(UnaryOp::Tanh), "tanh");
    g.outputs.push(t);
    let before = run(&g);
    assert_eq!(
        fuse_activation(&mut g).unwrap(),
        1,
        "Clip fuses, Tanh is not fusable"
    );
    assert_eq!(
        g.nodes[0].op.activation(),
        Some(UnaryOp::Clip { min: 0.0, max: 6.0 })
    );
    assert_same(&before, &run(&g));

    let (mut g, x) = with_input(2);
    let c = conv(&mut g, x, 2, 3);
    let r = unary(&mut g, c, Op::Unary(UnaryOp::Relu), "relu");
    g.outputs.extend([r, c]);
    assert_eq!(
        fuse_activation(&mut g).unwrap(),
        0,
        "the conv output is also read elsewhere"
    );
}

/// A conv whose output is reshaped, then goes through a Relu: the graph,
/// the conv's output and the Relu's.
fn conv_reshape_relu() -> (Graph, usize, usize) {
    let (mut g, x) = with_input(2);
    let c = conv(&mut g, x, 2, 3);
    let flat = g.add_value("flat", TypeInfo::f32(vec![1, 3, 36]));
    g.nodes.push(Node {
        name: "flat".into(),
        op: Op::Reshape {
            shape: vec![1, 3, 36],
        },
        inputs: vec![c],
        outputs: vec![flat],
    });
    let r = unary(&mut g, flat, Op::Unary(UnaryOp::Relu), "relu");
    (g, c, r)
}

#[test]
fn fuse_activation_across_a_reshape() {
    let (mut g, _, r) = conv_reshape_relu();
    g.outputs.push(r);
    let before = run(&g);
    assert_eq!(fuse_activation(&mut g).unwrap(), 1);
    assert_eq!(g.nodes.len(), 2, "conv+relu, then the reshape");
    assert_eq!(g.nodes[0].op.activation(), Some(UnaryOp::Relu));
    assert_eq!(g.nodes[1].outputs, [r], "the reshape yields the output");
    g.validate().unwrap();
    assert_same(&before, &run(&g));

    // Not when the conv's output is read past the reshape too.
    let (mut g, c, r) = conv_reshape_relu();
    g.outputs.extend([r, c]);
    assert_eq!(fuse_activation(&mut g).unwrap(), 0);
}

#[test]
fn fuse_zero_pad_into_conv() {
    let (mut g, x) = with_input(2);
    let padded = g.add_value("pad", TypeInfo::f32(vec![1, 2, 8, 8]));
    g.nodes.push(Node {
        name: "pad".into(),
        op: Op::Pad {
            pads: vec![(0, 0), (0, 0), (1, 1), (1, 1)],
            mode: PadMode::Constant,
            value: 0.0,
        },
        inputs: vec![x],
        outputs: vec![padded],
    });
    let w = g.add_constant(
        "w",
        Tensor::from_f32(vec![1, 2, 3, 3], vec![0.25; 18]).unwrap(),
    );
    let geometry = ConvGeometry {
        kernel: [3, 3],
        strides: [1, 1],
        dilations: [1, 1],
        pads: [0; 4],
        groups: 1,
    };
    let y = g.add_value("y", TypeInfo::f32(vec![1, 1, 6, 6]));
    g.nodes.push(Node {
        name: "conv".into(),
        op: Op::Conv {
            geometry,
            activation: None,
        },
        inputs: vec![padded, w],
        outputs: vec![y],
    });
    g.outputs.push(y);
    let before = run(&g);
    assert_eq!(fuse_pad_into_conv(&mut g).unwrap(), 1);
    assert_eq!(g.nodes.len(), 1);
    assert_same(&before, &run(&g));
}

#[test]
fn eliminate_noops_keeps_graph_outputs() {
    let (mut g, x) = with_input(2);
    let a = unary(&mut g, x, Op::Identity, "id");
    let b = unary(
        &mut g,
        a,
        Op::Reshape {
            shape: vec![1, 2, 6, 6],
        },
        "same-shape",
    );
    let c = unary(&mut g, b, Op::Unary(UnaryOp::Relu), "relu");
    let d = unary(&mut g, c, Op::Identity, "out");
    g.outputs.push(d);
    assert_eq!(eliminate_noops(&mut g).unwrap(), 2);
    assert_eq!(g.nodes.len(), 2, "the Identity producing the output stays");
    assert_eq!(g.nodes[0].inputs, vec![x]);
}

#[test]
fn fold_constants_and_remove_dead() {
    let (mut g, x) = with_input(1);
    let k = g.add_constant("k", Tensor::from_f32(vec![1], vec![2.0]).unwrap());
    let k2 = unary(&mut g, k, Op::Unary(UnaryOp::Exp), "exp");
    let y = g.add_value("y", TypeInfo::f32(vec![1, 1, 6, 6]));
    g.nodes.push(Node {
        name: "mul".into(),
        op: Op::Binary(crate::ir::BinaryOp::Mul),
        inputs: vec![x, k2],
        outputs: vec![y],
    });
    let _unused = unary(&mut g, x, Op::Unary(UnaryOp::Relu), "dead");
    g.outputs.push(y);
    assert_eq!(fold_constants(&mut g).unwrap(), 1);
    assert!((g.constant(k2).unwrap().as_f32().unwrap()[0] - 2f32.exp()).abs() < 1e-6);
    assert_eq!(remove_dead(&mut g), 1);
    assert_eq!(g.nodes.len(), 1);
    let reports = optimize(&mut g).unwrap();
    assert_eq!(reports.len(), PASSES.len());
}

#[test]
fn fuse_residual_add_then_relu() {
    // y = relu(conv(x) + x): the Add moves into the conv, then the Relu.
    let (mut g, x) = with_input(3);
    let c = conv(&mut g, x, 3, 3);
    let sum = g.add_value("sum", TypeInfo::f32(vec![1, 3, 6, 6]));
    g.nodes.push(Node {
        name: "add".into(),
        op: Op::Binary(crate::ir::BinaryOp::Add),
        inputs: vec![x, c],
        outputs: vec![sum],
    });
    let r = unary(&mut g, sum, Op::Unary(UnaryOp::Relu), "relu");
    g.outputs.push(r);
    let before = run(&g);
    assert_eq!(fuse_residual_add(&mut g).unwrap(), 1);
    assert_eq!(g.nodes.len(), 2);
    assert_eq!(g.nodes[0].inputs.len(), 4, "x, w, zero bias, residual");
    assert_eq!(g.nodes[0].inputs[3], x);
    assert_eq!(fuse_activation(&mut g).unwrap(), 1);
    assert_eq!(g.nodes.len(), 1);
    assert_same(&before, &run(&g));

    // A conv output read twice stays unfused.
    let (mut g, x) = with_input(3);
    let c = conv(&mut g, x, 3, 3);
    let sum = g.add_value("sum", TypeInfo::f32(vec![1, 3, 6, 6]));
    g.nodes.push(Node {
        name: "add".into(),
        op: Op::Binary(crate::ir::BinaryOp::Add),
        inputs: vec![c, x],
        outputs: vec![sum],
    });
    g.outputs.extend([sum, c]);
    assert_eq!(fuse_residual_add(&mut g).unwrap(), 0);
}

fn binary_const(
    graph: &mut Graph,
    x: usize,
    op: crate::ir::BinaryOp,
    c: Tensor,
    name: &str,
) -> usize {
    let k = graph.add_constant(format!("{name}.c"), c);
    let info = graph.values[x].info.clone();
    let y = graph.add_value(name, info);
    graph.nodes.push(Node {
        name: name.into(),
        op: Op::Binary(op),
        inputs: vec![x, k],
        outputs: vec![y],
    });
    y
}

#[test]
fn fold_per_channel_affine_into_conv() {
    use crate::ir::BinaryOp;
    let (mut g, x) = with_input(2);
    let c = conv(&mut g, x, 2, 3);
    let scale = Tensor::from_f32(vec![1, 3, 1, 1], vec![0.5, -2.0, 3.0]).unwrap();
    let m = binary_const(&mut g, c, BinaryOp::Mul, scale, "mul");
    let a = binary_const(
        &mut g,
        m,
        BinaryOp::Add,
        Tensor::from_f32(vec![1], vec![0.25]).unwrap(),
        "add",
    );
    // Varies along W, not channels: must stay.
    let w = binary_const(
        &mut g,
        a,
        BinaryOp::Add,
        Tensor::from_f32(vec![6], vec![1.0; 6]).unwrap(),
        "w",
    );
    g.outputs.push(w);
    let before = run(&g);
    // One fold per round (the optimizer repeats passes until nothing changes).
    assert_eq!(fold_affine(&mut g).unwrap(), 1, "the Mul folds");
    assert_eq!(fold_affine(&mut g).unwrap(), 1, "then the scalar Add");
    assert_eq!(fold_affine(&mut g).unwrap(), 0, "the W-wise Add does not");
    assert_eq!(g.nodes.len(), 2);
    assert_same(&before, &run(&g));
}

#[test]
fn fuse_hardswish_and_hardsigmoid_patterns() {
    use crate::ir::BinaryOp;
    let scalar = |v: f32| Tensor::from_f32(vec![], vec![v]).unwrap();
    let (mut g, x) = with_input(2);
    let c = conv(&mut g, x, 2, 3);
    // c * clip(c + 3, 0, 6) / 6
    let a = binary_const(&mut g, c, BinaryOp::Add, scalar(3.0), "add3");
    let clip = unary(
        &mut g,
        a,
        Op::Unary(UnaryOp::Clip { min: 0.0, max: 6.0 }),
        "clip",
    );
    let info = g.values[c].info.clone();
    let m = g.add_value("mul", info);
    g.nodes.push(Node {
        name: "mul".into(),
        op: Op::Binary(BinaryOp::Mul),
        inputs: vec![clip, c],
        outputs: vec![m],
    });
    let hs = binary_const(&mut g, m, BinaryOp::Div, scalar(6.0), "div6");
    // clip(hs + 3, 0, 6) * (1/6)
    let a2 = binary_const(&mut g, hs, BinaryOp::Add, scalar(3.0), "add3b");
    let clip2 = unary(
        &mut g,
        a2,
        Op::Unary(UnaryOp::Clip { min: 0.0, max: 6.0 }),
        "clip2",
    );
    let hsig = binary_const(&mut g, clip2, BinaryOp::Mul, scalar(1.0 / 6.0), "sixth");
    g.outputs.push(hsig);
    let before = run(&g);
    assert_eq!(fuse_hard_activations(&mut g).unwrap(), 2);
    assert_eq!(g.nodes.len(), 3, "conv, HardSwish, HardSigmoid");
    assert_eq!(g.nodes[1].op, Op::Unary(UnaryOp::HardSwish));
    assert!(matches!(
        g.nodes[2].op,
        Op::Unary(UnaryOp::HardSigmoid { .. })
    ));
    assert_same(&before, &run(&g));
}

#[test]
fn fuse_mul_by_own_hard_sigmoid_into_hardswish() {
    use crate::ir::BinaryOp;
    let hard_sigmoid = Op::Unary(UnaryOp::HardSigmoid {
        alpha: 1.0 / 6.0,
        beta: 0.5,
    });
    let (mut g, x) = with_input(2);
    let c = conv(&mut g, x, 2, 3);
    // HardSigmoid(c) * c: a HardSwish.
    let h = unary(&mut g, c, hard_sigmoid.clone(), "hsig");
    let info = g.values[c].info.clone();
    let m = g.add_value("mul", info.clone());
    g.nodes.push(Node {
        name: "mul".into(),
        op: Op::Binary(BinaryOp::Mul),
        inputs: vec![h, c],
        outputs: vec![m],
    });
    // m * HardSigmoid(c): the gate of another tensor (an SE block), stays.
    let h2 = unary(&mut g, c, hard_sigmoid, "gate");
    let se = g.add_value("se", info);
    g.nodes.push(Node {
        name: "se".into(),
        op: Op::Binary(BinaryOp::Mul),
        inputs: vec![m, h2],
        outputs: vec![se],
    });
    g.outputs.push(se);
    let before = run(&g);
    assert_eq!(fuse_hard_activations(&mut g).unwrap(), 1);
    let ops: Vec<_> = g.nodes.iter().map(|n| n.op.clone()).collect();
    assert_eq!(ops.len(), 4, "conv, HardSwish, gate, SE Mul: {ops:?}");
    assert_eq!(ops[1], Op::Unary(UnaryOp::HardSwish));
    assert_eq!(g.nodes[1].inputs, vec![c]);
    assert_eq!(ops[3], Op::Binary(BinaryOp::Mul));
    assert_same(&before, &run(&g));
}

#[test]
fn scale_and_offset_after_an_activation_become_one_channel_affine() {
    use crate::ir::BinaryOp;
    let scalar = |v: f32| Tensor::from_f32(vec![1], vec![v]).unwrap();
    let (mut g, x) = with_input(2);
    let c = conv(&mut g, x, 2, 3);
    let r = unary(&mut g, c, Op::Unary(UnaryOp::Relu), "relu");
    let m = binary_const(&mut g, r, BinaryOp::Mul, scalar(1.5), "scale");
    let a = binary_const(&mut g, m, BinaryOp::Add, scalar(-0.25), "offset");
    g.outputs.push(a);
    let before = run(&g);
    // The Mul becomes an affine, then the Add joins it.
    assert_eq!(fold_affine(&mut g).unwrap(), 2);
    assert_eq!(fold_affine(&mut g).unwrap(), 0);
    let ops: Vec<_> = g.nodes.iter().map(|n| n.op.clone()).collect();
    assert_eq!(ops.len(), 3, "conv, relu, one affine: {ops:?}");
    assert_eq!(ops[2], Op::ChannelAffine { activation: None });
    assert_eq!(g.nodes[2].outputs, vec![a]);
    assert_same(&before, &run(&g));
}
