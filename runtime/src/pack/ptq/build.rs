//! Emits int8 units into a graph: QLinearConv, QLinearAdd and
//! QLinearGlobalAveragePool between Quantize and Dequantize nodes where
//! float and integer parts meet.

use std::collections::HashMap;

use super::units::{retyped, Unit, UnitKind};
use crate::error::{Error, Result};
use crate::ir::{BinaryOp, DType, Graph, Node, Op, Quant, Tensor, TensorData, ValueId};

/// A conv's weights quantized symmetric per output channel, and its float
/// bias (already corrected for the weights' rounding).
#[derive(Clone, Debug)]
pub struct ConvWeights {
    pub weights: Vec<i8>,
    pub scales: Vec<f32>,
    pub bias: Vec<f32>,
}

/// Symmetric int8 per output channel (`[-127, 127]`, zero point 0): the
/// integers and each channel's scale.
pub fn quantize_per_channel(w: &[f32], channels: usize) -> (Vec<i8>, Vec<f32>) {
    let per = w.len() / channels.max(1);
    let mut q = Vec::with_capacity(w.len());
    let mut scales = Vec::with_capacity(channels);
    for row in w.chunks(per.max(1)) {
        let max = row.iter().fold(0f32, |m, x| m.max(x.abs()));
        // An all-zero channel still needs a positive scale.
        let scale = if max > 0.0 { max / 127.0 } else { 1.0 };
        q.extend(
            row.iter()
                .map(|&x| (x / scale).round().clamp(-127.0, 127.0) as i8),
        );
        scales.push(scale);
    }
    (q, scales)
}

/// Largest |bias| in accumulator units: 2^30 leaves the products room.
const BIAS_LIMIT: f64 = (1u64 << 30) as f64;

/// What the units of one graph are quantized with.
pub struct Plan<'a> {
    /// The unfused float graph.
    pub source: &'a Graph,
    pub units: &'a [Unit],
    /// Every unit input and output.
    pub quants: &'a HashMap<ValueId, Quant>,
    /// By conv node.
    pub weights: &'a HashMap<usize, ConvWeights>,
}

/// A graph under construction: the source's values (same ids), new nodes.
struct Builder<'a> {
    plan: &'a Plan<'a>,
    g: Graph,
    nodes: Vec<Node>,
    /// The u8 form of a float value, once some unit needed it.
    quantized: HashMap<ValueId, ValueId>,
}

impl<'a> Builder<'a> {
    fn new(plan: &'a Plan<'a>) -> Builder<'a> {
        let mut g = plan.source.clone();
        g.nodes.clear();
        Builder {
            plan,
            g,
            nodes: Vec::new(),
            quantized: HashMap::new(),
        }
    }

    fn quant(&self, v: ValueId) -> Result<Quant> {
        self.plan
            .quants
            .get(&v)
            .copied()
            .ok_or_else(|| Error::Pack(format!("no calibration for {:?}", self.g.values[v].name)))
    }

    /// The u8 form of float value `v`, quantized here unless a unit made it.
    fn quantized(&mut self, v: ValueId) -> Result<ValueId> {
        if let Some(&q) = self.quantized.get(&v) {
            return Ok(q);
        }
        let quant = self.quant(v)?;
        let name = format!("{}.u8", self.g.values[v].name);
        let q = self
            .g
            .add_value(name.clone(), retyped(&self.g, v, DType::U8));
        self.nodes.push(Node {
            name,
            op: Op::Quantize(quant),
            inputs: vec![v],
            outputs: vec![q],
        });
        self.quantized.insert(v, q);
        Ok(q)
    }

    /// Emits `unit` on quantized inputs; returns its u8 output.
    fn emit(&mut self, unit: &Unit) -> Result<ValueId> {
        let src = &self.plan.source.nodes[unit.node];
        let inputs: Vec<ValueId> = unit
            .inputs
            .iter()
            .map(|&v| self.quantized(v))
            .collect::<Result<_>>()?;
        let y = self.quant(unit.output)?;
        let name = format!("{}.int8", src.name);
        let out = self
            .g
            .add_value(name.clone(), retyped(&self.g, unit.output, DType::U8));
        let (op, inputs) = match unit.kind {
            UnitKind::Conv => {
                let Op::Conv {
                    geometry,
                    activation,
                } = &src.op
                else {
                    return Err(Error::Pack(format!("{}: not a conv", src.name)));
                };
                let w =
                    self.plan.weights.get(&unit.node).ok_or_else(|| {
                        Error::Pack(format!("{}: weights not quantized", src.name))
                    })?;
                let x = self.quant(unit.inputs[0])?;
                let w_shape = self.g.values[src.inputs[1]].info.shape.clone();
                let m = w.scales.len();
                let bias: Vec<i32> = w
                    .bias
                    .iter()
                    .zip(&w.scales)
                    .map(|(&b, &s)| {
                        let q = (b as f64 / (x.scale as f64 * s as f64)).round();
                        // Far inside i32, so the accumulator cannot overflow.
                        q.clamp(-BIAS_LIMIT, BIAS_LIMIT) as i32
                    })
                    .collect();
                let wv = self.g.add_constant(
                    format!("{}.w8", src.name),
                    Tensor::new(w_shape, TensorData::I8(w.weights.clone()))?,
                );
                let sv = self.g.add_constant(
                    format!("{}.w_scale", src.name),
                    Tensor::from_f32(vec![m], w.scales.clone())?,
                );
                let bv = self.g.add_constant(
                    format!("{}.b32", src.name),
                    Tensor::new(vec![m], TensorData::I32(bias))?,
                );
                let op = Op::QConv {
                    geometry: geometry.clone(),
                    x,
                    y,
                    activation: *activation,
                };
                (op, vec![inputs[0], wv, sv, bv])
            }
            UnitKind::Add => {
                let op = Op::QBinary {
                    op: BinaryOp::Add,
                    a: self.quant(unit.inputs[0])?,
                    b: self.quant(unit.inputs[1])?,
                    y,
                };
                (op, inputs)
            }
            UnitKind::GlobalAverage => {
                let x = self.quant(unit.inputs[0])?;
                (Op::QGlobalAvgPool { x, y }, inputs)
            }
        };
        self.nodes.push(Node {
            name,
            op,
            inputs,
            outputs: vec![out],
        });
        Ok(out)
    }

    /// Writes float `v` from `q`, quantized by `quant`.
    fn dequantize(&mut self, q: ValueId, v: ValueId, quant: Quant) {
        self.nodes.push(Node {
            name: format!("{}.f32", self.g.values[v].name),
            op: Op::Dequantize(quant),
            inputs: vec![q],
            outputs: vec![v],
        });
    }

    fn finish(mut self) -> Result<Graph> {
        self.g.nodes = self.nodes;
        self.g.validate()?;
        Ok(self.g)
    }
}

/// The source graph with the units flagged in `selected` run as int8. Each
/// unit's float output is still written (by a Dequantize) for float readers;
/// dead ones are removed later.
pub fn mixed(plan: &Plan, selected: &[bool]) -> Result<Graph> {
    let mut b = Builder::new(plan);
    let mut at_node: HashMap<usize, usize> = HashMap::new();
    let mut skipped = vec![false; plan.source.nodes.len()];
    for (u, unit) in plan.units.iter().enumerate() {
        if selected.get(u).copied().unwrap_or(false) {
            at_node.insert(unit.node, u);
            skipped[unit.node] = true;
            if let Some(a) = unit.absorbed {
                skipped[a] = true;
            }
        }
    }
    for (i, node) in plan.source.nodes.iter().enumerate() {
        if let Some(&u) = at_node.get(&i) {
            let unit = &plan.units[u];
            let q = b.emit(unit)?;
            b.quantized.insert(unit.output, q);
            let quant = b.quant(unit.output)?;
            b.dequantize(q, unit.output, quant);
        } else if !skipped[i] {
            b.nodes.push(node.clone());
        }
    }
    b.finish()
}

/// The source graph, float throughout, plus for every unit an int8 twin
/// fed with its float inputs quantized: each unit's error in isolation.
/// Returns the graph and, per unit, (float output, twin's dequantized output).
pub fn shadowed(plan: &Plan) -> Result<(Graph, Vec<(ValueId, ValueId)>)> {
    let mut b = Builder::new(plan);
    let mut after: HashMap<usize, Vec<usize>> = HashMap::new();
    for (u, unit) in plan.units.iter().enumerate() {
        after.entry(unit.last_node()).or_default().push(u);
    }
    let mut pairs = Vec::with_capacity(plan.units.len());
    for (i, node) in plan.source.nodes.iter().enumerate() {
        b.nodes.push(node.clone());
        for &u in after.get(&i).map_or(&[][..], Vec::as_slice) {
            let unit = &plan.units[u];
            let q = b.emit(unit)?;
            let name = format!("{}.twin", b.g.values[unit.output].name);
            let twin = b.g.add_value(name, retyped(&b.g, unit.output, DType::F32));
            let quant = b.quant(unit.output)?;
            b.dequantize(q, twin, quant);
            pairs.push((unit.output, twin));
        }
    }
    Ok((b.finish()?, pairs))
}
