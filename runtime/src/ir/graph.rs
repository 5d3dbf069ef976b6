//! The graph: nodes over values with static types, and the one validation
//! step after which every index and shape is trusted.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::op::{Op, TypeInfo};
use super::tensor::{checked_numel, Tensor};
use crate::error::{Error, Result};

/// Most values (and nodes) a graph may have: real CNNs have a few thousand;
/// the bound keeps planning (quadratic in values) quick on hostile graphs.
pub const MAX_VALUES: usize = 1 << 15;

/// Index of a value in [`Graph::values`].
pub type ValueId = usize;

/// A tensor flowing through the graph: a graph input, a node output or a
/// constant (weights and folded subgraphs).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Value {
    pub name: String,
    pub info: TypeInfo,
    /// Weights travel in their own sections of a `.sqz`, not in the graph.
    #[serde(skip)]
    pub constant: Option<Arc<Tensor>>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Node {
    pub name: String,
    pub op: Op,
    pub inputs: Vec<ValueId>,
    pub outputs: Vec<ValueId>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Graph {
    pub values: Vec<Value>,
    /// In execution order (validated topological order).
    pub nodes: Vec<Node>,
    pub inputs: Vec<ValueId>,
    pub outputs: Vec<ValueId>,
}

impl Graph {
    pub fn add_value(&mut self, name: impl Into<String>, info: TypeInfo) -> ValueId {
        self.values.push(Value {
            name: name.into(),
            info,
            constant: None,
        });
        self.values.len() - 1
    }

    pub fn add_constant(&mut self, name: impl Into<String>, t: Tensor) -> ValueId {
        let info = TypeInfo::new(t.dtype(), t.shape().to_vec());
        self.values.push(Value {
            name: name.into(),
            info,
            constant: Some(Arc::new(t)),
        });
        self.values.len() - 1
    }

    pub fn constant(&self, v: ValueId) -> Option<&Tensor> {
        self.values[v].constant.as_deref()
    }

    /// For each value, the nodes that read it.
    pub fn consumers(&self) -> Vec<Vec<usize>> {
        let mut c = vec![Vec::new(); self.values.len()];
        for (i, n) in self.nodes.iter().enumerate() {
            for &v in &n.inputs {
                if !c[v].contains(&i) {
                    c[v].push(i);
                }
            }
        }
        c
    }

    /// For each value, the node that writes it.
    pub fn producers(&self) -> Vec<Option<usize>> {
        let mut p = vec![None; self.values.len()];
        for (i, n) in self.nodes.iter().enumerate() {
            for &v in &n.outputs {
                p[v] = Some(i);
            }
        }
        p
    }

    /// Number of elements of all constants (parameters).
    pub fn parameter_count(&self) -> usize {
        let used = self.used_values();
        self.values
            .iter()
            .enumerate()
            .filter(|(i, v)| used[*i] && v.constant.is_some())
            .map(|(_, v)| v.constant.as_ref().map_or(0, |t| t.len()))
            .sum()
    }

    /// Values read by some node or exposed as a graph output.
    pub fn used_values(&self) -> Vec<bool> {
        let mut used = vec![false; self.values.len()];
        for n in &self.nodes {
            for &v in &n.inputs {
                used[v] = true;
            }
        }
        for &v in &self.outputs {
            used[v] = true;
        }
        used
    }

    /// The one validation step: every value index in range, every value
    /// written once before it is read, every node's declared output types
    /// equal to what its op infers from its inputs, every tensor under the
    /// size cap, every constant's data matching its type. Code after this
    /// trusts the graph.
    pub fn validate(&self) -> Result<()> {
        let n_values = self.values.len();
        if n_values > MAX_VALUES || self.nodes.len() > MAX_VALUES {
            return Err(Error::TooLarge {
                what: "graph values and nodes".into(),
                elements: n_values.max(self.nodes.len()) as u128,
                limit: MAX_VALUES as u64,
            });
        }
        let mut defined = vec![false; n_values];
        for (i, v) in self.values.iter().enumerate() {
            checked_numel(&v.info.shape, &v.name)?;
            if let Some(t) = &v.constant {
                if t.dtype() != v.info.dtype || t.shape() != v.info.shape.as_slice() {
                    return Err(Error::invalid(
                        &v.name,
                        "constant does not match its declared type",
                    ));
                }
                defined[i] = true;
            }
        }
        for &i in &self.inputs {
            if i >= n_values || defined[i] {
                return Err(Error::invalid(
                    "<inputs>",
                    format!("bad graph input index {i}"),
                ));
            }
            defined[i] = true;
        }
        // Values whose row count depends on the data: only graph outputs
        // may hold them (their padding rows would reach a reader).
        let mut data_rows = vec![false; n_values];
        for node in &self.nodes {
            let mut infos = Vec::with_capacity(node.inputs.len());
            for &v in &node.inputs {
                if v >= n_values {
                    return Err(Error::invalid(
                        &node.name,
                        format!("input index {v} out of range"),
                    ));
                }
                if data_rows[v] {
                    return Err(Error::invalid(
                        &node.name,
                        format!(
                            "reads {:?}, an output whose row count depends on the data \
                             (NonMaxSuppression's): supported only as a model output",
                            self.values[v].name
                        ),
                    ));
                }
                if !defined[v] {
                    return Err(Error::invalid(
                        &node.name,
                        format!(
                            "reads {:?} before it is written (cycle or unsorted graph)",
                            self.values[v].name
                        ),
                    ));
                }
                infos.push(&self.values[v].info);
            }
            if node.outputs.is_empty() {
                return Err(Error::invalid(&node.name, "a node without outputs"));
            }
            let inferred = node.op.infer(&node.name, &infos)?;
            if inferred.len() != node.outputs.len() {
                return Err(Error::invalid(&node.name, "wrong number of outputs"));
            }
            for (&o, t) in node.outputs.iter().zip(&inferred) {
                if o >= n_values || defined[o] {
                    return Err(Error::invalid(
                        &node.name,
                        format!("output {o} out of range or written twice"),
                    ));
                }
                if &self.values[o].info != t {
                    return Err(Error::invalid(
                        &node.name,
                        format!(
                            "declared output {:?} {:?} but the op gives {:?} {:?}",
                            self.values[o].info.dtype, self.values[o].info.shape, t.dtype, t.shape
                        ),
                    ));
                }
                defined[o] = true;
                data_rows[o] = node.op.rows_depend_on_data();
            }
        }
        for &o in &self.outputs {
            if o >= n_values || !defined[o] {
                return Err(Error::invalid(
                    "<outputs>",
                    format!("graph output {o} is never written"),
                ));
            }
        }
        Ok(())
    }
}
