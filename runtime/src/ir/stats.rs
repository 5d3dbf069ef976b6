//! Size statistics of a graph, as `squeeze inspect` reports them.

use super::{Graph, Op};

/// Per-model totals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Totals {
    pub parameters: usize,
    /// Input elements plus every node output that needs memory of its own
    /// (reshapes alias their input and count 0).
    pub activation_elements: usize,
}

/// Elements of the constants a node reads.
pub fn node_params(graph: &Graph, inputs: &[usize]) -> usize {
    inputs
        .iter()
        .filter_map(|&v| graph.constant(v))
        .map(|t| t.len())
        .sum()
}

/// Activation elements a node's outputs add (0 for pure reshapes).
pub fn node_activations(graph: &Graph, op: &Op, outputs: &[usize]) -> usize {
    if matches!(op, Op::Reshape { .. } | Op::Identity) {
        return 0;
    }
    outputs
        .iter()
        .map(|&o| graph.values[o].info.shape.iter().product::<usize>())
        .sum()
}

pub fn inspect_totals(graph: &Graph) -> Totals {
    let inputs: usize = graph
        .inputs
        .iter()
        .map(|&v| graph.values[v].info.shape.iter().product::<usize>())
        .sum();
    Totals {
        parameters: graph.parameter_count(),
        activation_elements: inputs
            + graph
                .nodes
                .iter()
                .map(|n| node_activations(graph, &n.op, &n.outputs))
                .sum::<usize>(),
    }
}
