//! Validation refuses graphs a hostile `.sqz` could carry, before any
//! kernel sees them.

use super::*;

fn single(op: Op, input: Vec<usize>, outputs: Vec<Vec<usize>>) -> Graph {
    let mut g = Graph::default();
    let x = g.add_value("x", TypeInfo::f32(input));
    g.inputs.push(x);
    let outs: Vec<ValueId> = outputs
        .into_iter()
        .map(|s| g.add_value("y", TypeInfo::f32(s)))
        .collect();
    g.outputs.extend(&outs);
    g.nodes.push(Node {
        name: "n".into(),
        op,
        inputs: vec![x],
        outputs: outs,
    });
    g
}

fn refused(g: &Graph) -> bool {
    matches!(g.validate(), Err(crate::Error::InvalidGraph { .. }))
}

#[test]
fn slice_steps_that_would_wrap_are_refused() {
    let op = Op::Slice {
        axes: vec![AxisSlice {
            start: 0,
            step: 1 << 62,
            len: 5,
        }],
    };
    assert!(refused(&single(op, vec![4], vec![vec![5]])));
    let ok = Op::Slice {
        axes: vec![AxisSlice {
            start: 3,
            step: -1,
            len: 4,
        }],
    };
    assert!(single(ok, vec![4], vec![vec![4]]).validate().is_ok());
}

#[test]
fn pads_that_do_not_fit_the_mode_are_refused() {
    let reflect = Op::Pad {
        pads: vec![(1, 0)],
        mode: PadMode::Reflect,
        value: 0.0,
    };
    assert!(refused(&single(reflect, vec![1], vec![vec![2]])));
    let edge = Op::Pad {
        pads: vec![(1, 1)],
        mode: PadMode::Edge,
        value: 0.0,
    };
    assert!(refused(&single(edge, vec![0], vec![vec![2]])));
    let huge = Op::Pad {
        pads: vec![(usize::MAX, 1)],
        mode: PadMode::Constant,
        value: 0.0,
    };
    assert!(refused(&single(huge, vec![1], vec![vec![1]])));
}

#[test]
fn nodes_without_outputs_and_empty_splits_are_refused() {
    assert!(refused(&single(
        Op::Split {
            axis: 0,
            sizes: vec![]
        },
        vec![0],
        vec![]
    )));
    assert!(refused(&single(
        Op::Split {
            axis: 0,
            sizes: vec![usize::MAX, 2]
        },
        vec![1],
        vec![vec![1], vec![2]]
    )));
}

#[test]
fn out_of_bounds_geometry_and_repeated_axes_are_refused() {
    let pool = |kernel, strides, pads| {
        Op::Pool(PoolGeometry {
            kind: PoolKind::Max,
            kernel,
            strides,
            dilations: [1, 1],
            pads,
            ceil_mode: false,
        })
    };
    assert!(refused(&single(
        pool([0, 1], [1, 1], [0; 4]),
        vec![1, 1, 4, 4],
        vec![vec![1, 1, 5, 4]]
    )));
    assert!(refused(&single(
        pool([1, 1], [1 << 62, 1], [0; 4]),
        vec![1, 1, 4, 4],
        vec![vec![1, 1, 1, 4]]
    )));
    assert!(refused(&single(
        pool([1, 1], [1, 1], [1 << 63, 0, 0, 0]),
        vec![1, 1, 4, 4],
        vec![vec![1, 1, 4, 4]]
    )));
    let mean = Op::ReduceMean {
        axes: vec![1, 1],
        keepdims: true,
    };
    assert!(refused(&single(mean, vec![2, 3], vec![vec![2, 1]])));
    assert!(refused(&single(
        Op::GlobalPool(PoolKind::Max),
        vec![1, 2, 0, 3],
        vec![vec![1, 2, 1, 1]]
    )));
    let resize = Op::Resize {
        mode: ResizeMode::Linear,
        coord: CoordTransform::HalfPixel,
        out_shape: vec![1, 4],
        scales: vec![1.0, 1.0],
    };
    assert!(refused(&single(resize, vec![1, 0], vec![vec![1, 4]])));
}

/// The vectorizable exp, sigmoid and tanh against f64 libm over their
/// useful range, every 1/64: exp within 3e-7 relative, sigmoid and tanh
/// within 2e-7 absolute.
#[test]
fn exp_sigmoid_tanh_match_libm() {
    for i in -87 * 64..=88 * 64 {
        let x = i as f32 / 64.0;
        let want = (x as f64).exp();
        let rel = ((crate::ir::exp(x) as f64 - want) / want).abs();
        assert!(rel < 3e-7, "exp({x}): relative error {rel}");
        let sig = 1.0 / (1.0 + (-(x as f64)).exp());
        let err = (crate::ir::sigmoid(x) as f64 - sig).abs();
        assert!(err < 2e-7, "sigmoid({x}): error {err}");
        let err = (crate::ir::tanh(x) as f64 - (x as f64).tanh()).abs();
        assert!(err < 2e-7, "tanh({x}): error {err}");
    }
    for x in [1e-6f32, -3e-4, 0.06, -0.07] {
        let rel = ((crate::ir::tanh(x) as f64 - (x as f64).tanh()) / (x as f64).tanh()).abs();
        assert!(rel < 1e-6, "tanh({x}): relative error {rel}");
    }
    assert!(crate::ir::exp(f32::NAN).is_nan() && crate::ir::tanh(f32::NAN).is_nan());
}
