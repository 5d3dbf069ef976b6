//! The executor: runs a validated, planned graph with one arena and kernels
//! from one dispatch table. The arena and prepacked weights are made at
//! construction; a few reference kernels (Resize, unfolded BatchNorm)
//! still allocate scratch per run, to be removed with the fast kernels.

pub mod compute;
pub mod kernels;

use smallvec::SmallVec;

use crate::error::{Error, Result};
use crate::ir::{DType, Graph, Op, Tensor, TensorData};
use crate::plan::{plan, Plan};
use compute::{Input, Output, Prepared, View, ViewMut};
use kernels::Kernels;

/// Largest activation arena a session allocates (2 GiB).
pub const MAX_ARENA_BYTES: u64 = 2 << 30;

pub struct Executor {
    graph: Graph,
    plan: Plan,
    kernels: &'static Kernels,
    prepared: Vec<Option<Prepared>>,
    /// u64 words so every 64-byte-aligned offset is aligned for f32 and i64.
    arena: Vec<u64>,
}

fn typed<'a>(bytes: &'a [u8], dtype: DType) -> Result<View<'a>> {
    let err = |e: bytemuck::PodCastError| Error::Input(format!("arena view: {e:?}"));
    Ok(match dtype {
        DType::F32 => View::F32(bytemuck::try_cast_slice(bytes).map_err(err)?),
        DType::I64 => View::I64(bytemuck::try_cast_slice(bytes).map_err(err)?),
    })
}

fn typed_mut<'a>(bytes: &'a mut [u8], dtype: DType) -> Result<ViewMut<'a>> {
    let err = |e: bytemuck::PodCastError| Error::Input(format!("arena view: {e:?}"));
    Ok(match dtype {
        DType::F32 => ViewMut::F32(bytemuck::try_cast_slice_mut(bytes).map_err(err)?),
        DType::I64 => ViewMut::I64(bytemuck::try_cast_slice_mut(bytes).map_err(err)?),
    })
}

impl Executor {
    /// Validates, plans and prepacks `graph` for `kernels`.
    pub fn new(graph: Graph, kernels: &'static Kernels) -> Result<Executor> {
        graph.validate()?;
        let plan = plan(&graph);
        if plan.arena_bytes as u64 > MAX_ARENA_BYTES {
            return Err(Error::TooLarge {
                what: "activation arena (bytes)".into(),
                elements: plan.arena_bytes as u128,
                limit: MAX_ARENA_BYTES,
            });
        }
        let prepared = graph
            .nodes
            .iter()
            .map(|n| {
                match (
                    &n.op,
                    n.inputs
                        .get(1)
                        .and_then(|&w| graph.values[w].constant.as_ref()),
                ) {
                    (Op::Conv { geometry, .. }, Some(w)) => {
                        Some(Prepared::Conv((kernels.pack_conv)(geometry, w)))
                    }
                    _ => None,
                }
            })
            .collect();
        let words = plan.arena_bytes.div_ceil(8);
        Ok(Executor {
            arena: vec![0; words],
            graph,
            plan,
            kernels,
            prepared,
        })
    }

    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// Byte range of a planned value.
    fn range(&self, v: usize) -> Option<(usize, usize)> {
        let info = &self.graph.values[v].info;
        self.plan.offsets[v].map(|o| (o, info.shape.iter().product::<usize>() * info.dtype.size()))
    }

    /// Runs the graph on inputs in graph-input order; types and shapes must
    /// match exactly.
    pub fn run(&mut self, inputs: &[&Tensor]) -> Result<Vec<Tensor>> {
        if inputs.len() != self.graph.inputs.len() {
            return Err(Error::Input(format!(
                "the model takes {} inputs, {} given",
                self.graph.inputs.len(),
                inputs.len()
            )));
        }
        for (&v, t) in self.graph.inputs.iter().zip(inputs) {
            let info = &self.graph.values[v].info;
            if t.dtype() != info.dtype || t.shape() != info.shape.as_slice() {
                return Err(Error::Input(format!(
                    "input {:?} must be {} {:?}, got {} {:?}",
                    self.graph.values[v].name,
                    info.dtype.name(),
                    info.shape,
                    t.dtype().name(),
                    t.shape()
                )));
            }
        }
        for (&v, t) in self.graph.inputs.iter().zip(inputs) {
            if let Some((off, len)) = self.range(v) {
                let dst = &mut bytemuck::cast_slice_mut::<u64, u8>(&mut self.arena)[off..off + len];
                match (t.as_f32(), t.as_i64()) {
                    (Some(d), _) => dst.copy_from_slice(bytemuck::cast_slice(d)),
                    (_, Some(d)) => dst.copy_from_slice(bytemuck::cast_slice(d)),
                    _ => {}
                }
            }
        }
        for i in 0..self.graph.nodes.len() {
            self.run_node(i)?;
        }
        self.graph
            .outputs
            .iter()
            .map(|&v| self.read_value(v))
            .collect()
    }

    fn read_value(&self, v: usize) -> Result<Tensor> {
        let value = &self.graph.values[v];
        if let Some(c) = &value.constant {
            return Ok((**c).clone());
        }
        let (off, len) = self
            .range(v)
            .ok_or_else(|| Error::Input("unplanned output".into()))?;
        let bytes = &bytemuck::cast_slice::<u64, u8>(&self.arena)[off..off + len];
        let data = match typed(bytes, value.info.dtype)? {
            View::F32(d) => TensorData::F32(d.to_vec()),
            View::I64(d) => TensorData::I64(d.to_vec()),
        };
        Tensor::new(value.info.shape.clone(), data)
    }

    fn run_node(&mut self, i: usize) -> Result<()> {
        let node = &self.graph.nodes[i];
        let arena = bytemuck::cast_slice_mut::<u64, u8>(&mut self.arena);
        // Carve the outputs out of the arena; everything between them stays
        // readable for the inputs (the planner keeps them disjoint).
        let mut outs_sorted: SmallVec<[(usize, usize, usize); 4]> = SmallVec::new();
        for (k, &o) in node.outputs.iter().enumerate() {
            let info = &self.graph.values[o].info;
            let off = self.plan.offsets[o]
                .ok_or_else(|| Error::invalid(&node.name, "unplanned output"))?;
            outs_sorted.push((
                off,
                info.shape.iter().product::<usize>() * info.dtype.size(),
                k,
            ));
        }
        outs_sorted.sort_unstable();
        let mut gaps: SmallVec<[(usize, &[u8]); 5]> = SmallVec::new();
        let mut out_bytes: SmallVec<[(usize, &mut [u8]); 4]> = SmallVec::new();
        let mut rest: &mut [u8] = arena;
        let mut pos = 0;
        for &(off, len, k) in &outs_sorted {
            let (gap, tail) = std::mem::take(&mut rest).split_at_mut(off - pos);
            let (o, tail) = tail.split_at_mut(len);
            gaps.push((pos, gap));
            out_bytes.push((k, o));
            rest = tail;
            pos = off + len;
        }
        gaps.push((pos, rest));
        out_bytes.sort_unstable_by_key(|(k, _)| *k);

        let mut ins: SmallVec<[Input; 5]> = SmallVec::new();
        for &v in &node.inputs {
            let value = &self.graph.values[v];
            let data = if let Some(c) = &value.constant {
                Input::of(c).data
            } else {
                let off = self.plan.offsets[v]
                    .ok_or_else(|| Error::invalid(&node.name, "unplanned input"))?;
                let len = value.info.shape.iter().product::<usize>() * value.info.dtype.size();
                let (start, gap) = gaps
                    .iter()
                    .find(|(s, g)| *s <= off && off + len <= s + g.len())
                    .ok_or_else(|| Error::invalid(&node.name, "input overlaps an output"))?;
                typed(&gap[off - start..off - start + len], value.info.dtype)?
            };
            ins.push(Input {
                shape: &value.info.shape,
                data,
            });
        }
        let mut outs: SmallVec<[Output; 4]> = SmallVec::new();
        for ((_, bytes), &o) in out_bytes.into_iter().zip(&node.outputs) {
            let info = &self.graph.values[o].info;
            outs.push(Output {
                shape: &info.shape,
                data: typed_mut(bytes, info.dtype)?,
            });
        }
        compute::compute(
            self.kernels,
            &node.op,
            self.prepared[i].as_ref(),
            &ins,
            &mut outs,
        )
    }
}
