//! QDQ → QOperator: the groups `DequantizeLinear → op → QuantizeLinear`
//! that `onnxruntime.quantization` (and other tools) write around Conv,
//! Gemm, MatMul, Add, Mul and global pooling become the matching QLinear
//! op, so both quantized forms import through one set of converters and
//! run as integer kernels. Data-movement ops between a DQ and a Q with the
//! same parameters (Flatten, Reshape, Transpose, Squeeze, Unsqueeze) run
//! on the integers directly.
//!
//! A group is rewritten only when it is exact: the op's float output feeds
//! the one QuantizeLinear and nothing else, weights and biases are
//! dequantized initializers, and a bias's scale is the input scale times
//! the weight scale. Anything else stays as it is and computes in float.

use std::collections::HashMap;

use tract_onnx::pb::{AttributeProto, NodeProto, TensorProto, ValueInfoProto};

use super::to_tensor;

/// The rewritten node list (the input order; unused DequantizeLinear nodes
/// are left for dead-code removal).
pub fn fuse(
    nodes: &[NodeProto],
    initializers: &[TensorProto],
    graph_outputs: &[ValueInfoProto],
) -> Vec<NodeProto> {
    let init: HashMap<&str, &TensorProto> =
        initializers.iter().map(|t| (t.name.as_str(), t)).collect();
    let mut producer: HashMap<&str, usize> = HashMap::new();
    let mut readers: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, n) in nodes.iter().enumerate() {
        for o in &n.output {
            producer.insert(o, i);
        }
        for x in n.input.iter().filter(|x| !x.is_empty()) {
            readers.entry(x).or_default().push(i);
        }
    }
    for o in graph_outputs {
        readers.entry(&o.name).or_default().push(usize::MAX);
    }
    let g = Groups {
        nodes,
        init,
        producer,
        readers,
    };
    let rewrites: Vec<Option<(NodeProto, usize)>> =
        (0..nodes.len()).map(|i| g.rewrite(i)).collect();
    let mut absorbed = vec![false; nodes.len()];
    for (_, q) in rewrites.iter().flatten() {
        absorbed[*q] = true;
    }
    let mut out: Vec<NodeProto> = Vec::with_capacity(nodes.len());
    for ((n, rewrite), absorbed) in nodes.iter().zip(rewrites).zip(absorbed) {
        match rewrite {
            Some((fused, _)) => out.push(fused),
            None if !absorbed => out.push(n.clone()),
            None => {}
        }
    }
    out
}

struct Groups<'a> {
    nodes: &'a [NodeProto],
    init: HashMap<&'a str, &'a TensorProto>,
    producer: HashMap<&'a str, usize>,
    readers: HashMap<&'a str, Vec<usize>>,
}

/// A DequantizeLinear's inputs: quantized value, scale, zero point ("" if absent).
struct Dq<'a> {
    x: &'a str,
    scale: &'a str,
    zero: &'a str,
}

impl<'a> Groups<'a> {
    fn node(&self, i: usize) -> &'a NodeProto {
        &self.nodes[i]
    }

    /// The DequantizeLinear that produces `value`, if one does.
    fn dq(&self, value: &str) -> Option<Dq<'a>> {
        let n = self.node(*self.producer.get(value)?);
        (n.op_type == "DequantizeLinear" && n.domain.is_empty()).then(|| Dq {
            x: &n.input[0],
            scale: n.input.get(1).map_or("", |s| s.as_str()),
            zero: n.input.get(2).map_or("", |s| s.as_str()),
        })
    }

    /// The QuantizeLinear that is the only reader of `value`, by index.
    fn sole_q(&self, value: &str) -> Option<usize> {
        match self.readers.get(value)?.as_slice() {
            &[r] if r != usize::MAX => {
                let n = self.node(r);
                (n.op_type == "QuantizeLinear" && n.domain.is_empty()).then_some(r)
            }
            _ => None,
        }
    }

    fn values(&self, name: &str) -> Option<Vec<f64>> {
        let t = to_tensor(self.init.get(name)?, None).ok()?;
        Some(t.to_f32_vec().into_iter().map(f64::from).collect())
    }

    /// Whether two scale/zero-point inputs hold the same parameters.
    fn same_params(&self, (s1, z1): (&str, &str), (s2, z2): (&str, &str)) -> bool {
        let same = |a: &str, b: &str| {
            a == b || (self.values(a).is_some() && self.values(a) == self.values(b))
        };
        same(s1, s2) && (z1 == z2 || same(z1, z2))
    }

    /// A bias `DQ(b)` whose scale is `x_scale · w_scale` per channel: its
    /// integers are already in the accumulator's units.
    fn exact_bias(&self, b: &Dq, x: &Dq, w: &Dq) -> bool {
        let (Some(bs), Some(xs), Some(ws)) = (
            self.values(b.scale),
            self.values(x.scale),
            self.values(w.scale),
        ) else {
            return false;
        };
        let zero_ok = b.zero.is_empty()
            || self
                .values(b.zero)
                .is_some_and(|z| z.iter().all(|&v| v == 0.0));
        let xs = xs.first().copied().unwrap_or(0.0);
        zero_ok
            && self.init.contains_key(b.x)
            && bs.iter().enumerate().all(|(i, &s)| {
                let w = if ws.len() == 1 {
                    ws[0]
                } else {
                    ws.get(i).copied().unwrap_or(0.0)
                };
                (s - xs * w).abs() <= 1e-6 * s.abs().max(1e-30)
            })
    }

    /// The fused node replacing op node `i` and the index of its
    /// QuantizeLinear, when node `i` heads an exact group.
    fn rewrite(&self, i: usize) -> Option<(NodeProto, usize)> {
        let n = self.node(i);
        if !n.domain.is_empty() {
            return None;
        }
        let y = n.output.first()?;
        let qi = self.sole_q(y)?;
        let q = self.node(qi);
        let (ys, yz) = (
            q.input.get(1)?.as_str(),
            q.input.get(2).map_or("", |s| s.as_str()),
        );
        let arg = |k: usize| n.input.get(k).filter(|s| !s.is_empty());
        let fused = |op_type: &str,
                     domain: &str,
                     inputs: Vec<&str>,
                     attribute: Vec<AttributeProto>| NodeProto {
            name: n.name.clone(),
            op_type: op_type.into(),
            domain: domain.into(),
            input: inputs.into_iter().map(String::from).collect(),
            output: q.output.clone(),
            attribute,
            ..NodeProto::default()
        };
        let node = match n.op_type.as_str() {
            "Conv" => {
                let (x, w) = (self.dq(arg(0)?)?, self.dq(arg(1)?)?);
                if !self.init.contains_key(w.x) {
                    return None;
                }
                let mut inputs = vec![x.x, x.scale, x.zero, w.x, w.scale, w.zero, ys, yz];
                if let Some(b) = arg(2) {
                    let b = self.dq(b)?;
                    if !self.exact_bias(&b, &x, &w) {
                        return None;
                    }
                    inputs.push(b.x);
                }
                fused("QLinearConv", "", inputs, n.attribute.clone())
            }
            "Gemm" | "MatMul" => {
                let (x, w) = (self.dq(arg(0)?)?, self.dq(arg(1)?)?);
                let beta = n
                    .attribute
                    .iter()
                    .find(|a| a.name == "beta")
                    .map_or(1.0, |a| a.f);
                if !self.init.contains_key(w.x) || beta != 1.0 {
                    return None;
                }
                let bias = match arg(2) {
                    Some(b) => {
                        let b = self.dq(b)?;
                        if !self.exact_bias(&b, &x, &w) {
                            return None;
                        }
                        b.x
                    }
                    None => "",
                };
                let inputs = vec![x.x, x.scale, x.zero, w.x, w.scale, w.zero, bias, ys, yz];
                fused("QGemm", "com.microsoft", inputs, n.attribute.clone())
            }
            "Add" | "Mul" => {
                let (a, b) = (self.dq(arg(0)?)?, self.dq(arg(1)?)?);
                let inputs = vec![a.x, a.scale, a.zero, b.x, b.scale, b.zero, ys, yz];
                fused(
                    &format!("QLinear{}", n.op_type),
                    "com.microsoft",
                    inputs,
                    vec![],
                )
            }
            "GlobalAveragePool" => {
                let x = self.dq(arg(0)?)?;
                let inputs = vec![x.x, x.scale, x.zero, ys, yz];
                fused("QLinearGlobalAveragePool", "com.microsoft", inputs, vec![])
            }
            "Flatten" | "Reshape" | "Transpose" | "Squeeze" | "Unsqueeze" => {
                let x = self.dq(arg(0)?)?;
                if !self.same_params((x.scale, x.zero), (ys, yz)) {
                    return None;
                }
                let mut inputs: Vec<&str> = n.input.iter().map(|s| s.as_str()).collect();
                inputs[0] = x.x;
                fused(&n.op_type, "", inputs, n.attribute.clone())
            }
            _ => return None,
        };
        Some((node, qi))
    }
}
