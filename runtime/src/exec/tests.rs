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

/// `x → conv → Slice(axes)`, the slice the graph's output.
fn slice_graph(axes: Vec<crate::ir::AxisSlice>, out: Vec<usize>) -> Graph {
    let mut g = Graph::default();
    let x = g.add_value("x", TypeInfo::f32(vec![1, 2, 6, 6]));
    g.inputs.push(x);
    let a = conv(&mut g, x, 2, 4, 1);
    let y = g.add_value("part", TypeInfo::f32(out));
    g.nodes.push(Node {
        name: "slice".into(),
        op: Op::Slice { axes },
        inputs: vec![a],
        outputs: vec![y],
    });
    g.outputs.extend([y, a]);
    g
}

#[test]
fn a_contiguous_slice_is_a_view_and_others_copy() {
    use crate::ir::AxisSlice;
    let whole = |len| AxisSlice {
        start: 0,
        step: 1,
        len,
    };
    let part = |start, len| AxisSlice {
        start,
        step: 1,
        len,
    };
    // Channels 1..3 of [1, 4, 6, 6]: one run of the conv's output.
    let view = slice_graph(
        vec![whole(1), part(1, 2), whole(6), whole(6)],
        vec![1, 2, 6, 6],
    );
    // Rows 2..5 of every channel: not one run.
    let rows = slice_graph(
        vec![whole(1), whole(4), part(2, 3), whole(6)],
        vec![1, 4, 3, 6],
    );
    for (g, is_view) in [(view, true), (rows, false)] {
        let p = Prepared::new(g.clone(), &ExecOptions::default()).unwrap();
        assert_eq!(p.kernel_names()[1].is_none(), is_view);
        if is_view {
            let (part, conv) = (g.outputs[0], g.outputs[1]);
            let offset = |v: usize| p.plan().offsets[v].unwrap();
            assert_eq!(offset(part), offset(conv) + 36 * 4);
        }
        let outs = run(&g);
        let (part, a) = (&outs[0], &outs[1]);
        let expected: Vec<f32> = if is_view {
            a[36..36 * 3].to_vec()
        } else {
            a.chunks(36)
                .flat_map(|plane| plane[12..30].to_vec())
                .collect()
        };
        assert_eq!(part, &expected);
    }
}
