//! Memory planning: every activation gets an offset in one arena, chosen by
//! lifetime so that values alive at the same time never overlap.

use crate::ir::Graph;

/// Arena offsets are multiples of this (a cache line; what SIMD loads like).
pub const ALIGN: usize = 64;

#[derive(Clone, Debug)]
pub struct Plan {
    /// Byte offset of each value in the arena; `None` for constants and
    /// values that need no storage.
    pub offsets: Vec<Option<usize>>,
    /// Bytes of the arena (the planned peak).
    pub arena_bytes: usize,
    /// Bytes if every activation had its own buffer.
    pub naive_bytes: usize,
}

/// Plans a validated graph: greedy by size, first fit among the values whose
/// lifetimes intersect.
pub fn plan(graph: &Graph) -> Plan {
    let nv = graph.values.len();
    let end = graph.nodes.len() + 1;
    // Lifetime in steps: inputs are written at 0, node i's outputs at i+1.
    let mut first = vec![usize::MAX; nv];
    let mut last = vec![0usize; nv];
    for &i in &graph.inputs {
        first[i] = 0;
    }
    for (i, n) in graph.nodes.iter().enumerate() {
        for &o in &n.outputs {
            first[o] = i + 1;
            last[o] = last[o].max(i + 1);
        }
        for &v in &n.inputs {
            last[v] = last[v].max(i + 1);
        }
    }
    for &o in &graph.outputs {
        last[o] = end;
    }
    let bytes = |v: usize| {
        let info = &graph.values[v].info;
        (info.shape.iter().product::<usize>() * info.dtype.size()).div_ceil(ALIGN) * ALIGN
    };
    let mut order: Vec<usize> = (0..nv)
        .filter(|&v| graph.values[v].constant.is_none() && first[v] != usize::MAX)
        .collect();
    order.sort_by_key(|&v| (std::cmp::Reverse(bytes(v)), first[v]));
    let mut offsets = vec![None; nv];
    let mut placed: Vec<(usize, usize, usize)> = Vec::new(); // (value, offset, size)
    let mut arena_bytes = 0;
    let mut naive_bytes = 0;
    for v in order {
        let size = bytes(v);
        naive_bytes += size;
        let mut busy: Vec<(usize, usize)> = placed
            .iter()
            .filter(|&&(u, _, _)| first[u] <= last[v] && first[v] <= last[u])
            .map(|&(_, off, sz)| (off, sz))
            .collect();
        busy.sort_unstable();
        let mut off = 0;
        for (o, sz) in busy {
            if o >= off + size {
                break;
            }
            off = off.max(o + sz);
        }
        offsets[v] = Some(off);
        placed.push((v, off, size));
        arena_bytes = arena_bytes.max(off + size);
    }
    Plan {
        offsets,
        arena_bytes,
        naive_bytes,
    }
}
