//! Memory planning: every activation gets an offset in one arena, chosen by
//! lifetime so that values alive at the same time never overlap. Values
//! that alias another (Reshape, Identity, a contiguous Slice; the inputs of
//! a Concat, inside its output) share its bytes and extend its lifetime; each node's kernel
//! scratch is one more interval, alive only while that node runs.

use crate::ir::{Graph, ValueId};

/// Arena offsets are multiples of this (a cache line; what SIMD loads like).
pub const ALIGN: usize = 64;

#[derive(Clone, Debug)]
pub struct Plan {
    /// Byte offset of each value in the arena; `None` for constants and
    /// values that need no storage.
    pub offsets: Vec<Option<usize>>,
    /// Byte offset and size of each node's scratch (size 0: none).
    pub scratch: Vec<(usize, usize)>,
    /// Bytes of the arena (the planned peak).
    pub arena_bytes: usize,
    /// Bytes if every activation had its own buffer.
    pub naive_bytes: usize,
}

/// What the planner needs beyond the graph, from kernel selection.
pub struct PlanInput<'a> {
    /// Scratch bytes per node.
    pub scratch: &'a [usize],
    /// `alias[v] = Some((u, at))`: value `v` is stored in `u`'s bytes,
    /// from byte `at`.
    pub alias: &'a [Option<(ValueId, usize)>],
}

/// A buffer to place: its bytes and the steps it is alive.
struct Interval {
    size: usize,
    first: usize,
    last: usize,
}

/// Plans a validated graph: greedy by size, first fit among the intervals
/// whose lifetimes intersect.
pub fn plan(graph: &Graph, input: &PlanInput) -> Plan {
    let nv = graph.values.len();
    let end = graph.nodes.len() + 1;
    // The value whose bytes hold `v`, and where in them `v` starts.
    let located = |mut v: usize| {
        let mut at = 0;
        while let Some((u, off)) = input.alias[v] {
            (v, at) = (u, at + off);
        }
        (v, at)
    };
    let root = |v: usize| located(v).0;
    // Lifetime in steps: inputs are written at 0, node i's outputs at i+1.
    let mut first = vec![usize::MAX; nv];
    let mut last = vec![0usize; nv];
    let touch = |v: usize, step: usize, first: &mut Vec<usize>, last: &mut Vec<usize>| {
        let r = root(v);
        first[r] = first[r].min(step);
        last[r] = last[r].max(step);
    };
    for &i in &graph.inputs {
        touch(i, 0, &mut first, &mut last);
    }
    for (i, n) in graph.nodes.iter().enumerate() {
        for &o in &n.outputs {
            touch(o, i + 1, &mut first, &mut last);
        }
        for &v in &n.inputs {
            if graph.values[v].constant.is_none() {
                touch(v, i + 1, &mut first, &mut last);
            }
        }
    }
    // Outputs are read after the run; inputs stay intact through it, so a
    // session can run again on inputs written once (`run_in_place`).
    for &v in graph.outputs.iter().chain(&graph.inputs) {
        touch(v, end, &mut first, &mut last);
    }
    let bytes = |len: usize| len.div_ceil(ALIGN) * ALIGN;
    let mut intervals: Vec<(Interval, Slot)> = Vec::new();
    for v in 0..nv {
        let value = &graph.values[v];
        if value.constant.is_none() && first[v] != usize::MAX && input.alias[v].is_none() {
            let len = value.info.shape.iter().product::<usize>() * value.info.dtype.size();
            intervals.push((
                Interval {
                    size: bytes(len),
                    first: first[v],
                    last: last[v],
                },
                Slot::Value(v),
            ));
        }
    }
    for (i, &s) in input.scratch.iter().enumerate() {
        if s > 0 {
            intervals.push((
                Interval {
                    size: bytes(s),
                    first: i + 1,
                    last: i + 1,
                },
                Slot::Scratch(i),
            ));
        }
    }
    intervals.sort_by_key(|(iv, _)| (std::cmp::Reverse(iv.size), iv.first));
    let mut offsets = vec![None; nv];
    let mut scratch = vec![(0, 0); graph.nodes.len()];
    let mut placed: Vec<(usize, usize, usize, usize)> = Vec::new(); // (first, last, offset, size)
    let mut arena_bytes = 0;
    let mut naive_bytes = 0;
    for (iv, slot) in intervals {
        naive_bytes += iv.size;
        let mut busy: Vec<(usize, usize)> = placed
            .iter()
            .filter(|&&(f, l, _, _)| f <= iv.last && iv.first <= l)
            .map(|&(_, _, off, sz)| (off, sz))
            .collect();
        busy.sort_unstable();
        let mut off = 0;
        for (o, sz) in busy {
            if o >= off + iv.size {
                break;
            }
            off = off.max(o + sz);
        }
        match slot {
            Slot::Value(v) => offsets[v] = Some(off),
            Slot::Scratch(i) => scratch[i] = (off, iv.size),
        }
        placed.push((iv.first, iv.last, off, iv.size));
        arena_bytes = arena_bytes.max(off + iv.size);
    }
    for v in 0..nv {
        if input.alias[v].is_some() {
            let (r, at) = located(v);
            offsets[v] = offsets[r].map(|o| o + at);
        }
    }
    Plan {
        offsets,
        scratch,
        arena_bytes,
        naive_bytes,
    }
}

enum Slot {
    Value(ValueId),
    Scratch(usize),
}
