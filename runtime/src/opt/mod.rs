//! Optimizer passes: small rewrite rules applied until nothing changes.
//! Each pass returns how many rewrites it made, for `squeeze inspect --passes`.

mod fold;
mod fuse;
#[cfg(test)]
mod tests;

use crate::error::Result;
use crate::ir::{Graph, ValueId};

pub use fold::{fold_affine, fold_batchnorm, fold_constants};
pub use fuse::{
    eliminate_noops, fuse_activation, fuse_hard_activations, fuse_pad_into_conv, fuse_residual_add,
};

/// What one pass did over the whole run.
#[derive(Clone, Debug)]
pub struct PassReport {
    pub name: &'static str,
    pub rewrites: usize,
    /// Nodes in the graph before this pass first ran and after it last ran.
    pub nodes_before: usize,
    pub nodes_after: usize,
    /// Nodes this pass removed, over all rounds.
    pub nodes_removed: usize,
}

type Pass = fn(&mut Graph) -> Result<usize>;

/// The passes, in the order they are tried each round.
pub const PASSES: &[(&str, Pass)] = &[
    ("eliminate-noops", eliminate_noops),
    ("fold-constants", fold_constants),
    ("fold-batchnorm", fold_batchnorm),
    // Before fold-affine, which would take the constant ops of the
    // patterns it matches.
    ("fuse-hard-activations", fuse_hard_activations),
    ("fold-affine", fold_affine),
    ("fuse-pad-into-conv", fuse_pad_into_conv),
    ("fuse-residual-add", fuse_residual_add),
    ("fuse-activation", fuse_activation),
    ("remove-dead", remove_dead_pass),
];

/// Runs every pass until a round changes nothing; validates the result.
pub fn optimize(graph: &mut Graph) -> Result<Vec<PassReport>> {
    let mut reports: Vec<PassReport> = PASSES
        .iter()
        .map(|(name, _)| PassReport {
            name,
            rewrites: 0,
            nodes_before: 0,
            nodes_after: 0,
            nodes_removed: 0,
        })
        .collect();
    for round in 0..32 {
        let mut changed = false;
        for (report, (_, pass)) in reports.iter_mut().zip(PASSES) {
            let before = graph.nodes.len();
            let n = pass(graph)?;
            if round == 0 {
                report.nodes_before = before;
            }
            report.rewrites += n;
            report.nodes_removed += before.saturating_sub(graph.nodes.len());
            report.nodes_after = graph.nodes.len();
            changed |= n > 0;
        }
        if !changed {
            break;
        }
    }
    compact(graph);
    graph.validate()?;
    Ok(reports)
}

/// Drops the nodes flagged in `removed` (one flag per node).
pub(crate) fn retain_unremoved(graph: &mut Graph, removed: &[bool]) {
    let mut it = removed.iter();
    graph.nodes.retain(|_| !it.next().copied().unwrap_or(false));
}

/// Points every reader of `old` at `new`.
pub(crate) fn replace_uses(graph: &mut Graph, old: ValueId, new: ValueId) {
    for n in &mut graph.nodes {
        for v in &mut n.inputs {
            if *v == old {
                *v = new;
            }
        }
    }
}

fn remove_dead_pass(graph: &mut Graph) -> Result<usize> {
    Ok(remove_dead(graph))
}

/// Removes nodes none of whose outputs is read or exposed; returns how many.
pub fn remove_dead(graph: &mut Graph) -> usize {
    let mut removed = 0;
    loop {
        let used = graph.used_values();
        let before = graph.nodes.len();
        graph.nodes.retain(|n| n.outputs.iter().any(|&o| used[o]));
        if graph.nodes.len() == before {
            return removed;
        }
        removed += before - graph.nodes.len();
    }
}

/// Drops values nothing refers to and renumbers the rest.
pub fn compact(graph: &mut Graph) {
    let mut keep = graph.used_values();
    for &i in &graph.inputs {
        keep[i] = true;
    }
    for n in &graph.nodes {
        for &o in &n.outputs {
            keep[o] = true;
        }
    }
    let mut map = vec![usize::MAX; graph.values.len()];
    let mut values = Vec::new();
    for (i, v) in std::mem::take(&mut graph.values).into_iter().enumerate() {
        if keep[i] {
            map[i] = values.len();
            values.push(v);
        }
    }
    graph.values = values;
    for n in &mut graph.nodes {
        n.inputs
            .iter_mut()
            .chain(n.outputs.iter_mut())
            .for_each(|v| *v = map[*v]);
    }
    graph
        .inputs
        .iter_mut()
        .chain(graph.outputs.iter_mut())
        .for_each(|v| *v = map[*v]);
}
