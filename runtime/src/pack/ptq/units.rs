//! The parts of a float graph that have an integer form: convolutions with
//! a clamp activation, residual adds (with the Relu after them) and global
//! average pooling. Everything else stays float.

use crate::error::Result;
use crate::ir::{BinaryOp, DType, Graph, Node, Op, PoolKind, Tensor, TypeInfo, UnaryOp, ValueId};

/// What a unit computes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum UnitKind {
    Conv,
    Add,
    GlobalAverage,
}

impl UnitKind {
    pub fn name(self) -> &'static str {
        match self {
            UnitKind::Conv => "Conv",
            UnitKind::Add => "Add",
            UnitKind::GlobalAverage => "GlobalAveragePool",
        }
    }
}

/// One node, or an Add and the activation it absorbs, that can run as int8.
#[derive(Clone, Debug)]
pub struct Unit {
    pub kind: UnitKind,
    /// The node that computes it.
    pub node: usize,
    /// A Relu/Clip after an Add, absorbed as the output's saturation.
    pub absorbed: Option<usize>,
    /// Float activations read (weights excluded).
    pub inputs: Vec<ValueId>,
    /// The float value it produces (after the absorbed activation).
    pub output: ValueId,
}

impl Unit {
    /// The last node of the unit, after which its output exists.
    pub fn last_node(&self) -> usize {
        self.absorbed.unwrap_or(self.node)
    }
}

fn is_clamp(op: &Op) -> bool {
    matches!(op, Op::Unary(UnaryOp::Relu))
        || matches!(op, Op::Unary(UnaryOp::Clip { min, max }) if *min <= 0.0 && *max >= 0.0)
}

/// Splits every Conv with a fused residual (and a clamp or no activation)
/// into Conv, Add and the activation, and gives every candidate Conv a bias,
/// so that the conv output and the add are separately quantizable and bias
/// correction has somewhere to go. Float parts fuse again after quantization.
pub fn unfuse(graph: &Graph) -> Result<Graph> {
    let mut g = graph.clone();
    let mut nodes = Vec::with_capacity(g.nodes.len());
    for mut node in std::mem::take(&mut g.nodes) {
        let Op::Conv {
            geometry,
            activation,
        } = node.op.clone()
        else {
            nodes.push(node);
            continue;
        };
        let clamp = activation.is_none_or(|a| is_clamp(&Op::Unary(a)));
        if node.inputs.len() == 2 && clamp {
            let m = g.values[node.inputs[1]].info.shape[0];
            let zero = Tensor::from_f32(vec![m], vec![0.0; m])?;
            node.inputs
                .push(g.add_constant(format!("{}.bias", node.name), zero));
        }
        if node.inputs.len() != 4 || !clamp {
            nodes.push(node);
            continue;
        }
        let residual = node.inputs.pop().unwrap_or_default();
        let out = node.outputs[0];
        let info = g.values[out].info.clone();
        let conv_out = g.add_value(format!("{}.conv", node.name), info.clone());
        let name = node.name.clone();
        nodes.push(Node {
            op: Op::Conv {
                geometry,
                activation: None,
            },
            outputs: vec![conv_out],
            ..node
        });
        let sum = match activation {
            None => out,
            Some(_) => g.add_value(format!("{name}.sum"), info),
        };
        nodes.push(Node {
            name: format!("{name}.add"),
            op: Op::Binary(BinaryOp::Add),
            inputs: vec![conv_out, residual],
            outputs: vec![sum],
        });
        if let Some(a) = activation {
            nodes.push(Node {
                name: format!("{name}.act"),
                op: Op::Unary(a),
                inputs: vec![sum],
                outputs: vec![out],
            });
        }
    }
    g.nodes = nodes;
    g.validate()?;
    Ok(g)
}

fn is_float_activation(g: &Graph, v: ValueId, rank: usize) -> bool {
    let value = &g.values[v];
    value.constant.is_none() && value.info.dtype == DType::F32 && value.info.shape.len() == rank
}

fn is_f32_constant(g: &Graph, v: ValueId) -> bool {
    g.constant(v).and_then(Tensor::as_f32).is_some()
}

/// The units of an unfused graph, in node order.
pub fn find(g: &Graph) -> Vec<Unit> {
    let consumers = g.consumers();
    let mut units = Vec::new();
    for (i, n) in g.nodes.iter().enumerate() {
        let unit = |kind, inputs: Vec<ValueId>| Unit {
            kind,
            node: i,
            absorbed: None,
            inputs,
            output: n.outputs[0],
        };
        match &n.op {
            Op::Conv { activation, .. }
                if n.inputs.len() == 3
                    && activation.is_none_or(|a| is_clamp(&Op::Unary(a)))
                    && is_float_activation(g, n.inputs[0], 4)
                    && is_f32_constant(g, n.inputs[1])
                    && is_f32_constant(g, n.inputs[2]) =>
            {
                units.push(unit(UnitKind::Conv, vec![n.inputs[0]]));
            }
            Op::Binary(BinaryOp::Add)
                if n.inputs.iter().all(|&v| {
                    g.values[v].constant.is_none() && g.values[v].info.dtype == DType::F32
                }) =>
            {
                let mut u = unit(UnitKind::Add, n.inputs.clone());
                let out = n.outputs[0];
                if let [next] = consumers[out][..] {
                    if is_clamp(&g.nodes[next].op) && !g.outputs.contains(&out) {
                        u.absorbed = Some(next);
                        u.output = g.nodes[next].outputs[0];
                    }
                }
                units.push(u);
            }
            Op::GlobalPool(PoolKind::Avg { .. }) if is_float_activation(g, n.inputs[0], 4) => {
                units.push(unit(UnitKind::GlobalAverage, vec![n.inputs[0]]));
            }
            _ => {}
        }
    }
    units
}

/// The type of `v` with its dtype changed to `dtype`.
pub fn retyped(g: &Graph, v: ValueId, dtype: DType) -> TypeInfo {
    TypeInfo::new(dtype, g.values[v].info.shape.clone())
}
