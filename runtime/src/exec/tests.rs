//! Memory planning seen from the executor: which nodes run in place.

use super::{ExecOptions, Executor, Prepared};
use crate::ir::testing::conv3x3 as conv;
use crate::ir::{Graph, Node, Op, Tensor, TypeInfo};

/// `x → (a, b) → Concat(inputs(a, b))` on `axis`; outputs: the concat, a, b.
fn concat_graph(axis: usize, inputs: impl Fn(usize, usize) -> Vec<usize>) -> Graph {
    let mut g = Graph::default();
    let x = g.add_value("x", TypeInfo::f32(vec![1, 2, 6, 6]));
    g.inputs.push(x);
    let a = conv(&mut g, x, 2, 3, 1);
    let b = conv(&mut g, x, 2, 4, 2);
    let inputs = inputs(a, b);
    let mut shape = g.values[inputs[0]].info.shape.clone();
    shape[axis] = inputs.iter().map(|&v| g.values[v].info.shape[axis]).sum();
    let y = g.add_value("cat", TypeInfo::f32(shape));
    g.nodes.push(Node {
        name: "cat".into(),
        op: Op::Concat { axis },
        inputs,
        outputs: vec![y],
    });
    g.outputs.extend([y, a, b]);
    g
}

fn run(g: &Graph) -> Vec<Vec<f32>> {
    let x = Tensor::from_f32(
        vec![1, 2, 6, 6],
        (0..72)
            .map(|i| ((i * 13) % 17) as f32 / 17.0 - 0.4)
            .collect(),
    )
    .unwrap();
    let mut exec = Executor::from_graph(g.clone(), &ExecOptions::default()).unwrap();
    let outs = exec.run(&[&x]).unwrap();
    outs.iter().map(|t| t.to_f32_vec()).collect()
}

#[test]
fn concat_on_the_outer_axis_is_written_in_place_by_its_producers() {
    let g = concat_graph(1, |a, b| vec![a, b]);
    let p = Prepared::new(g.clone(), &ExecOptions::default()).unwrap();
    assert_eq!(p.kernel_names()[2], None, "the Concat runs no kernel");
    let offset = |v: usize| p.plan().offsets[v].unwrap();
    let (cat, a, b) = (g.outputs[0], g.outputs[1], g.outputs[2]);
    assert_eq!(offset(a), offset(cat));
    assert_eq!(offset(b), offset(cat) + 3 * 36 * 4);
    let outs = run(&g);
    assert_eq!(outs[0], [outs[1].clone(), outs[2].clone()].concat());
}

#[test]
fn concat_copies_when_inputs_cannot_live_in_its_output() {
    // The same input twice, and an inner axis: each needs a real copy.
    for (axis, g) in [
        (1, concat_graph(1, |a, _| vec![a, a])),
        (3, concat_graph(3, |a, _| vec![a, a])),
    ] {
        let p = Prepared::new(g.clone(), &ExecOptions::default()).unwrap();
        assert!(
            p.kernel_names()[2].is_some(),
            "axis {axis}: a kernel copies"
        );
        let outs = run(&g);
        let a = &outs[1];
        let expected: Vec<f32> = if axis == 1 {
            [a.clone(), a.clone()].concat()
        } else {
            a.chunks(6)
                .flat_map(|row| row.iter().chain(row))
                .copied()
                .collect()
        };
        assert_eq!(outs[0], expected, "axis {axis}");
    }
}
