//! Hand-built graphs for unit tests.

use super::{ConvGeometry, Graph, Node, Op, Tensor, TypeInfo};

/// Appends a 3×3, pad 1 conv of `x` (`[1, cin, 6, 6]`) to `cout` channels,
/// with weights that `seed` varies; returns its output.
pub fn conv3x3(graph: &mut Graph, x: usize, cin: usize, cout: usize, seed: usize) -> usize {
    let w = graph.add_constant(
        "w",
        Tensor::from_f32(
            vec![cout, cin, 3, 3],
            (0..cout * cin * 9)
                .map(|i| ((i * 37 + seed) % 11) as f32 / 11.0 - 0.5)
                .collect(),
        )
        .unwrap(),
    );
    let geometry = ConvGeometry {
        kernel: [3, 3],
        strides: [1, 1],
        dilations: [1, 1],
        pads: [1; 4],
        groups: 1,
    };
    let y = graph.add_value("conv", TypeInfo::f32(vec![1, cout, 6, 6]));
    graph.nodes.push(Node {
        name: "conv".into(),
        op: Op::Conv {
            geometry,
            activation: None,
        },
        inputs: vec![x, w],
        outputs: vec![y],
    });
    y
}
