//! The executor. [`Prepared`] is what every session of a model shares: the
//! validated graph, one kernel per node (with its packed weights) and the
//! memory plan. An [`Executor`] owns only what one session writes: its
//! arena (activations and scratch) and its thread pool.

pub mod kernels;
#[cfg(test)]
mod tests;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use rayon::prelude::*;
use smallvec::SmallVec;

use crate::error::{Error, Result};
use crate::ir::{DType, Graph, Nms, Op, Tensor, TensorData, ValueId};
use crate::plan::{plan, Plan, PlanInput};
use kernels::contract::{Input, Kernel, Output, Threads, View, ViewMut};
use kernels::{Isa, Operand};

/// Largest activation arena a session allocates (2 GiB).
pub const MAX_ARENA_BYTES: u64 = 2 << 30;

/// Threads a session uses by default: the available parallelism, at most 4
/// (a phone's big cores; more mostly adds contention).
pub fn default_threads() -> usize {
    std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(4)
}

/// How to prepare a graph.
#[derive(Clone, Copy, Debug, Default)]
pub struct ExecOptions {
    /// `None`: `SQUEEZE_ISA` if set, else the best the CPU has.
    pub isa: Option<Isa>,
    /// Worker threads per session; 0 means [`default_threads`].
    pub threads: usize,
}

/// A graph ready to run: kernels chosen and packed, memory planned.
#[derive(Debug)]
pub struct Prepared {
    graph: Graph,
    plan: Plan,
    /// One kernel per node; `None` where nothing runs: the node's output
    /// aliases its input (Reshape, Identity, a contiguous Slice) or holds
    /// its inputs (Concat).
    kernels: Vec<Option<Box<dyn Kernel>>>,
    isa: Isa,
    threads: usize,
    /// Per graph output: whether its rows depend on the data (planned at
    /// their most, the rest marked [`Nms::FREE_ROW`]), so the tensors a
    /// run returns are cut to the rows written.
    data_rows: Vec<bool>,
}

/// Where in its input's bytes the output of node `n` already lies, when
/// the output is a view of the input and nothing needs to run: Reshape and
/// Identity (the same bytes under another shape), and a Slice that is one
/// contiguous run (every axis whole but one, sliced with step 1, and every
/// axis before that one of size 1: ShuffleNet's channel split).
fn view_offset(graph: &Graph, n: &crate::ir::Node) -> Option<usize> {
    let x = &graph.values[*n.inputs.first()?];
    if x.constant.is_some() {
        return None;
    }
    let axes = match &n.op {
        Op::Reshape { .. } | Op::Identity => return Some(0),
        Op::Slice { axes } => axes,
        _ => return None,
    };
    let shape = &x.info.shape;
    // An empty slice may start anywhere: it needs no bytes, so no view.
    if axes.is_empty() || axes.len() != shape.len() || axes.iter().any(|a| a.len == 0) {
        return None;
    }
    let whole = |d: usize| axes[d].start == 0 && axes[d].len == shape[d] && axes[d].step == 1;
    let cut = (0..axes.len()).find(|&d| !whole(d)).unwrap_or(0);
    let contiguous = axes[cut].step == 1
        && (cut + 1..axes.len()).all(whole)
        && shape[..cut].iter().all(|&d| d == 1);
    let inner: usize = shape[cut + 1..].iter().product();
    contiguous.then(|| axes[cut].start * inner * x.info.dtype.size())
}

/// Where each input of Concat node `n` can live inside its output, so the
/// producers write there and the Concat itself copies nothing: possible
/// when the axis is outermost (every dim before it is 1) and each input is
/// computed here, once, and stored nowhere else yet.
fn concat_in_place(
    graph: &Graph,
    n: &crate::ir::Node,
    alias: &[Option<(ValueId, usize)>],
) -> Option<Vec<(ValueId, usize)>> {
    let Op::Concat { axis } = n.op else {
        return None;
    };
    let out = &graph.values[*n.outputs.first()?];
    if out.constant.is_some() || out.info.shape[..axis].iter().product::<usize>() != 1 {
        return None;
    }
    let mut places = Vec::with_capacity(n.inputs.len());
    let mut at = 0;
    for (k, &v) in n.inputs.iter().enumerate() {
        let value = &graph.values[v];
        let placeable = value.constant.is_none()
            && alias[v].is_none()
            && !graph.inputs.contains(&v)
            && !n.inputs[..k].contains(&v);
        if !placeable {
            return None;
        }
        places.push((v, at));
        at += value.info.shape.iter().product::<usize>() * value.info.dtype.size();
    }
    Some(places)
}

impl Prepared {
    /// Validates `graph`, chooses and packs a kernel per node, and plans.
    pub fn new(graph: Graph, opts: &ExecOptions) -> Result<Prepared> {
        graph.validate()?;
        let isa = Isa::choose(opts.isa)?;
        let threads = if opts.threads == 0 {
            default_threads()
        } else {
            opts.threads
        };
        let mut alias: Vec<Option<(ValueId, usize)>> = vec![None; graph.values.len()];
        let mut runs = vec![true; graph.nodes.len()];
        for (i, n) in graph.nodes.iter().enumerate() {
            if let Some(at) = view_offset(&graph, n) {
                alias[n.outputs[0]] = Some((n.inputs[0], at));
                runs[i] = false;
            }
        }
        for (i, n) in graph.nodes.iter().enumerate() {
            if let Some(places) = concat_in_place(&graph, n, &alias) {
                for (v, at) in places {
                    alias[v] = Some((n.outputs[0], at));
                }
                runs[i] = false;
            }
        }
        // Kernel choice and weight packing are independent per node: done
        // in parallel on the loading thread's pool (load time, not frames).
        let kernels: Vec<Option<Box<dyn Kernel>>> = graph
            .nodes
            .par_iter()
            .zip(&runs)
            .map(|(n, &runs)| {
                if !runs {
                    return None;
                }
                let ins: SmallVec<[Operand; 5]> = n
                    .inputs
                    .iter()
                    .map(|&v| Operand {
                        info: &graph.values[v].info,
                        constant: graph.values[v].constant.as_deref(),
                    })
                    .collect();
                let outs: SmallVec<[_; 2]> = n
                    .outputs
                    .iter()
                    .map(|&v| graph.values[v].info.clone())
                    .collect();
                Some(kernels::prepare(isa, &n.op, &ins, &outs))
            })
            .collect();
        let scratch: Vec<usize> = kernels
            .iter()
            .map(|k| k.as_ref().map_or(0, |k| k.scratch_bytes(threads)))
            .collect();
        let plan = plan(
            &graph,
            &PlanInput {
                scratch: &scratch,
                alias: &alias,
            },
        );
        if plan.arena_bytes as u64 > MAX_ARENA_BYTES {
            return Err(Error::TooLarge {
                what: "activation arena (bytes)".into(),
                elements: plan.arena_bytes as u128,
                limit: MAX_ARENA_BYTES,
            });
        }
        let data_rows = graph
            .outputs
            .iter()
            .map(|&o| {
                let producer = graph.nodes.iter().find(|n| n.outputs.contains(&o));
                producer.is_some_and(|n| n.op.rows_depend_on_data())
            })
            .collect();
        Ok(Prepared {
            graph,
            plan,
            kernels,
            isa,
            threads,
            data_rows,
        })
    }

    pub fn graph(&self) -> &Graph {
        &self.graph
    }
    pub fn plan(&self) -> &Plan {
        &self.plan
    }
    pub fn isa(&self) -> Isa {
        self.isa
    }
    pub fn threads(&self) -> usize {
        self.threads
    }
    /// The kernel chosen for each node (`None`: aliased, nothing runs).
    pub fn kernel_names(&self) -> Vec<Option<&'static str>> {
        self.kernels
            .iter()
            .map(|k| k.as_ref().map(|k| k.name()))
            .collect()
    }
    /// Bytes of weights packed for the chosen kernels (shared by sessions).
    pub fn packed_bytes(&self) -> usize {
        self.kernels
            .iter()
            .flatten()
            .map(|k| k.packed_bytes())
            .sum()
    }

    /// Byte range of a planned value.
    fn range(&self, v: usize) -> Option<(usize, usize)> {
        let info = &self.graph.values[v].info;
        self.plan.offsets[v].map(|o| (o, info.shape.iter().product::<usize>() * info.dtype.size()))
    }
}

fn typed<'a>(bytes: &'a [u8], dtype: DType) -> Result<View<'a>> {
    let err = |e: bytemuck::PodCastError| Error::Input(format!("arena view: {e:?}"));
    Ok(match dtype {
        DType::F32 => View::F32(bytemuck::try_cast_slice(bytes).map_err(err)?),
        DType::I64 => View::I64(bytemuck::try_cast_slice(bytes).map_err(err)?),
        DType::U8 => View::U8(bytes),
        DType::I8 => View::I8(bytemuck::cast_slice(bytes)),
        DType::I32 => View::I32(bytemuck::try_cast_slice(bytes).map_err(err)?),
    })
}

fn typed_mut<'a>(bytes: &'a mut [u8], dtype: DType) -> Result<ViewMut<'a>> {
    let err = |e: bytemuck::PodCastError| Error::Input(format!("arena view: {e:?}"));
    Ok(match dtype {
        DType::F32 => ViewMut::F32(bytemuck::try_cast_slice_mut(bytes).map_err(err)?),
        DType::I64 => ViewMut::I64(bytemuck::try_cast_slice_mut(bytes).map_err(err)?),
        DType::U8 => ViewMut::U8(bytes),
        DType::I8 => ViewMut::I8(bytemuck::cast_slice_mut(bytes)),
        DType::I32 => ViewMut::I32(bytemuck::try_cast_slice_mut(bytes).map_err(err)?),
    })
}

/// A prepared graph and an arena for it, kept aside by a session while it
/// runs another specialization of the same model ([`Executor::swap`]).
pub struct Parked {
    prepared: Arc<Prepared>,
    arena: Vec<u64>,
}

impl Parked {
    pub fn new(prepared: Arc<Prepared>) -> Parked {
        let words = prepared.plan.arena_bytes.div_ceil(8);
        Parked {
            prepared,
            arena: vec![0; words],
        }
    }
    pub fn prepared(&self) -> &Prepared {
        &self.prepared
    }
}

/// What one session writes: the arena (activations and scratch), next to
/// the prepared graph it belongs to.
struct State {
    prepared: Arc<Prepared>,
    /// u64 words so every 64-byte-aligned offset is aligned for f32 and i64.
    arena: Vec<u64>,
}

impl State {
    fn arena_bytes(&mut self) -> &mut [u8] {
        bytemuck::cast_slice_mut(&mut self.arena)
    }

    /// Runs every node; `per_node` (if given) collects wall time per node.
    fn run(&mut self, threads: &Threads, mut per_node: Option<&mut [f64]>) -> Result<()> {
        let prepared = Arc::clone(&self.prepared);
        let arena = self.arena_bytes();
        for i in 0..prepared.graph.nodes.len() {
            let start = per_node.is_some().then(std::time::Instant::now);
            run_node(&prepared, i, arena, threads)?;
            if let (Some(t), Some(start)) = (per_node.as_deref_mut(), start) {
                t[i] += start.elapsed().as_secs_f64();
            }
        }
        Ok(())
    }
}

/// Runs `graph` on this pool worker while every other worker of the pool
/// stays awake for the whole run, taking the parallel parts of each node
/// as they appear. A worker that slept between nodes would be woken per
/// region, which costs tens of microseconds (far more in a VM, where the
/// idle vCPU halts), and the driver would mostly run both parts itself.
/// The helpers are stack jobs of nested joins: nothing is allocated.
fn with_helpers<T: Send>(graph: impl FnOnce() -> T + Send) -> T {
    let done = AtomicBool::new(false);
    let helpers = rayon::current_num_threads().saturating_sub(1);
    let (result, ()) = rayon::join(
        || {
            let r = graph();
            done.store(true, Ordering::Release);
            r
        },
        || help_until_done(helpers, &done),
    );
    result
}

/// Occupies `n` workers (this one and, through nested joins, `n - 1`
/// more) with running whatever parallel parts appear until `done`.
fn help_until_done(n: usize, done: &AtomicBool) {
    if n == 0 {
        return;
    }
    let work = || {
        while !done.load(Ordering::Acquire) {
            if rayon::yield_now() != Some(rayon::Yield::Executed) {
                std::hint::spin_loop();
            }
        }
    };
    rayon::join(work, || help_until_done(n - 1, done));
}

/// The exchange between a session and its driver job: one slot under a
/// mutex and a condvar each way (futex-based: nothing is allocated, unlike
/// a channel whose waker lists may grow).
#[derive(Default)]
struct Handoff {
    slot: Mutex<Slot>,
    to_driver: Condvar,
    to_caller: Condvar,
}

#[derive(Default)]
enum Slot {
    #[default]
    Idle,
    /// Run the graph, timing each node if asked.
    Run {
        profile: bool,
    },
    /// The result of the last run: per-node times when profiled.
    Done(Result<Vec<f64>>),
    Exit,
}

impl Handoff {
    fn lock(&self) -> MutexGuard<'_, Slot> {
        self.slot.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The workers of a session with more than one thread: a rayon pool with
/// one long-lived driver job in it. A run is handed to the driver through
/// a [`Handoff`], so the graph runs on a pool worker and every parallel
/// region forks onto that worker's own deque: no per-run queueing through
/// rayon's injector and no allocation per frame.
///
/// The session owns the pool's threads: they have all started (and done
/// their one-time setup) before the first run, and they have all exited
/// when the session is dropped, so no thread outlives it or allocates
/// during a later session's frames.
struct Workers {
    handoff: Arc<Handoff>,
    pool: Option<rayon::ThreadPool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Workers {
    fn start(threads: usize, state: &Arc<Mutex<State>>) -> Result<Workers> {
        let mut handles = Vec::with_capacity(threads);
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .spawn_handler(|worker| {
                let name = format!("squeeze-{}", worker.index());
                let handle = std::thread::Builder::new()
                    .name(name)
                    .spawn(move || worker.run())?;
                handles.push(handle);
                Ok(())
            })
            .build()
            .map_err(|e| Error::Input(format!("thread pool: {e}")))?;
        // Every worker takes one job, which waits for it to have started
        // and registered with the work-stealing deques (a first steal
        // allocates): after this, a frame finds every worker warm.
        pool.broadcast(|_| ());
        let handoff = Arc::new(Handoff::default());
        let (state, h) = (Arc::clone(state), Arc::clone(&handoff));
        pool.spawn(move || {
            let threads = Threads::in_pool();
            let mut times: Vec<f64> = Vec::new();
            loop {
                let mut slot = h.lock();
                let profile = loop {
                    match &*slot {
                        Slot::Run { profile } => break *profile,
                        Slot::Exit => return,
                        _ => slot = h.to_driver.wait(slot).unwrap_or_else(|e| e.into_inner()),
                    }
                };
                drop(slot);
                let result = with_helpers(|| {
                    let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
                    if profile {
                        times.clear();
                        times.resize(st.prepared.graph.nodes.len(), 0.0);
                        st.run(&threads, Some(&mut times)).map(|_| times.clone())
                    } else {
                        st.run(&threads, None).map(|_| Vec::new())
                    }
                });
                let mut slot = h.lock();
                if !matches!(*slot, Slot::Exit) {
                    *slot = Slot::Done(result);
                }
                h.to_caller.notify_one();
            }
        });
        Ok(Workers {
            handoff,
            pool: Some(pool),
            threads: handles,
        })
    }

    fn run(&self, profile: bool) -> Result<Vec<f64>> {
        let h = &self.handoff;
        let mut slot = h.lock();
        *slot = Slot::Run { profile };
        h.to_driver.notify_one();
        loop {
            match std::mem::take(&mut *slot) {
                Slot::Done(result) => return result,
                other => {
                    *slot = other;
                    slot = h.to_caller.wait(slot).unwrap_or_else(|e| e.into_inner());
                }
            }
        }
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        // The driver job ends; then the pool shuts down with it.
        *self.handoff.lock() = Slot::Exit;
        self.handoff.to_driver.notify_one();
        let Some(pool) = self.pool.take() else {
            return;
        };
        // A worker of this pool cannot wait for itself to exit.
        let on_own_worker = pool.current_thread_index().is_some();
        drop(pool);
        if !on_own_worker {
            for thread in self.threads.drain(..) {
                // A worker that panicked has nothing left to clean up.
                let _ = thread.join();
            }
        }
    }
}

/// A typed buffer inside the session's arena, borrowed until dropped.
pub struct ArenaSlice<'a, T> {
    guard: MutexGuard<'a, State>,
    offset: usize,
    len: usize,
    element: std::marker::PhantomData<T>,
}

/// An f32 input or output inside the arena.
pub type ArenaF32<'a> = ArenaSlice<'a, f32>;
/// Any input or output inside the arena, as its little-endian bytes.
pub type ArenaBytes<'a> = ArenaSlice<'a, u8>;

impl<T: bytemuck::Pod> std::ops::Deref for ArenaSlice<'_, T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        let bytes: &[u8] = bytemuck::cast_slice(&self.guard.arena);
        bytemuck::cast_slice(&bytes[self.offset..self.offset + self.len])
    }
}

impl<T: bytemuck::Pod> std::ops::DerefMut for ArenaSlice<'_, T> {
    fn deref_mut(&mut self) -> &mut [T] {
        let (offset, len) = (self.offset, self.len);
        bytemuck::cast_slice_mut(&mut self.guard.arena_bytes()[offset..offset + len])
    }
}

/// One session: its arena and, with more than one thread, its workers.
pub struct Executor {
    state: Arc<Mutex<State>>,
    workers: Option<Workers>,
}

impl Executor {
    /// A session over a prepared graph: allocates the arena and the pool.
    pub fn new(prepared: Arc<Prepared>) -> Result<Executor> {
        let threads = prepared.threads;
        let Parked { prepared, arena } = Parked::new(prepared);
        let state = Arc::new(Mutex::new(State { arena, prepared }));
        let workers = if threads > 1 {
            Some(Workers::start(threads, &state)?)
        } else {
            None
        };
        Ok(Executor { state, workers })
    }

    /// Switches this session to `other`'s prepared graph and arena, and
    /// hands it the current ones: a model specialized at other input
    /// shapes runs on the same workers. Allocates nothing.
    pub fn swap(&mut self, other: &mut Parked) {
        let mut st = self.lock();
        std::mem::swap(&mut st.prepared, &mut other.prepared);
        std::mem::swap(&mut st.arena, &mut other.arena);
    }

    /// Prepares `graph` for this session alone (tools, tests).
    pub fn from_graph(graph: Graph, opts: &ExecOptions) -> Result<Executor> {
        Executor::new(Arc::new(Prepared::new(graph, opts)?))
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn prepared(&self) -> Arc<Prepared> {
        Arc::clone(&self.lock().prepared)
    }

    /// Checks inputs against the graph: count, dtypes and shapes exactly.
    fn check_inputs(graph: &Graph, inputs: &[&Tensor]) -> Result<()> {
        if inputs.len() != graph.inputs.len() {
            return Err(Error::Input(format!(
                "the model takes {} inputs, {} given",
                graph.inputs.len(),
                inputs.len()
            )));
        }
        for (&v, t) in graph.inputs.iter().zip(inputs) {
            let info = &graph.values[v].info;
            if t.dtype() != info.dtype || t.shape() != info.shape.as_slice() {
                return Err(Error::Input(format!(
                    "input {:?} must be {} {:?}, got {} {:?}",
                    graph.values[v].name,
                    info.dtype.name(),
                    info.shape,
                    t.dtype().name(),
                    t.shape()
                )));
            }
        }
        Ok(())
    }

    /// Runs the graph on inputs in graph-input order; types and shapes must
    /// match exactly. Returns owned copies of the outputs.
    pub fn run(&mut self, inputs: &[&Tensor]) -> Result<Vec<Tensor>> {
        {
            let mut st = self.lock();
            let prepared = Arc::clone(&st.prepared);
            Executor::check_inputs(&prepared.graph, inputs)?;
            for (&v, t) in prepared.graph.inputs.iter().zip(inputs) {
                let Some((off, len)) = prepared.range(v) else {
                    continue;
                };
                let dst = &mut st.arena_bytes()[off..off + len];
                dst.copy_from_slice(t.as_bytes());
            }
        }
        self.run_in_place()?;
        let st = self.lock();
        let outputs = &st.prepared.graph.outputs;
        (0..outputs.len()).map(|i| output_tensor(&st, i)).collect()
    }

    /// Runs the graph on the inputs already written into the arena
    /// ([`Executor::input_f32_mut`]; they stay as written, so a run may
    /// repeat on them); outputs are read in place with
    /// [`Executor::output_f32`]. Allocates nothing.
    pub fn run_in_place(&mut self) -> Result<()> {
        match &self.workers {
            Some(w) => w.run(false).map(|_| ()),
            None => self.lock().run(&Threads::single(), None),
        }
    }

    /// Runs once, returning each node's wall time in seconds.
    pub fn run_profiled(&mut self) -> Result<Vec<f64>> {
        match &self.workers {
            Some(w) => w.run(true),
            None => {
                let mut st = self.lock();
                let mut t = vec![0.0; st.prepared.graph.nodes.len()];
                st.run(&Threads::single(), Some(&mut t))?;
                Ok(t)
            }
        }
    }

    /// Input `i`'s f32 buffer in the arena, to fill before
    /// [`Executor::run_in_place`] (a camera frame, a tensor from the C ABI).
    /// An input the graph never reads is an empty buffer.
    pub fn input_f32_mut(&mut self, i: usize) -> Result<ArenaF32<'_>> {
        self.arena_slice(Port::Input, i, Some(DType::F32))
    }

    /// Input `i`'s bytes in the arena, whatever its element type.
    pub fn input_bytes_mut(&mut self, i: usize) -> Result<ArenaBytes<'_>> {
        self.arena_slice(Port::Input, i, None)
    }

    /// Output `i` read in place (f32 outputs), valid while the returned
    /// guard lives.
    pub fn output_f32(&self, i: usize) -> Result<ArenaF32<'_>> {
        self.arena_slice(Port::Output, i, Some(DType::F32))
    }

    /// Output `i`'s bytes read in place, whatever its element type.
    pub fn output_bytes(&self, i: usize) -> Result<ArenaBytes<'_>> {
        self.arena_slice(Port::Output, i, None)
    }

    /// The arena range of input or output `i`, checked against `dtype`.
    fn arena_slice<T>(
        &self,
        port: Port,
        i: usize,
        dtype: Option<DType>,
    ) -> Result<ArenaSlice<'_, T>> {
        let guard = self.lock();
        let g = &guard.prepared.graph;
        let (ids, what) = match port {
            Port::Input => (&g.inputs, "input"),
            Port::Output => (&g.outputs, "output"),
        };
        let v = *ids
            .get(i)
            .ok_or_else(|| Error::Input(format!("no {what} {i}")))?;
        if let Some(want) = dtype.filter(|&d| d != g.values[v].info.dtype) {
            return Err(Error::Input(format!("{what} {i} is not {want:?}")));
        }
        let (offset, len) = match (guard.prepared.range(v), port) {
            (Some(range), _) => range,
            (None, Port::Input) => (0, 0),
            (None, Port::Output) => {
                return Err(Error::Input(format!(
                    "output {i} is a constant: read it with run"
                )))
            }
        };
        Ok(ArenaSlice {
            guard,
            offset,
            len,
            element: std::marker::PhantomData,
        })
    }
}

/// Which side of the graph an arena slice is on.
#[derive(Clone, Copy)]
enum Port {
    Input,
    Output,
}

fn output_tensor(st: &State, i: usize) -> Result<Tensor> {
    let g = &st.prepared.graph;
    let value = &g.values[g.outputs[i]];
    if let Some(c) = &value.constant {
        return Ok((**c).clone());
    }
    let (off, len) = st
        .prepared
        .range(g.outputs[i])
        .ok_or_else(|| Error::Input("unplanned output".into()))?;
    let bytes = &bytemuck::cast_slice::<u64, u8>(&st.arena)[off..off + len];
    let view = typed(bytes, value.info.dtype)?;
    if let View::F32(d) = view {
        return Tensor::new(value.info.shape.clone(), TensorData::F32(d.to_vec()));
    }
    if let (true, View::I64(d)) = (st.prepared.data_rows[i], view) {
        // The selected rows come first; the rest start with FREE_ROW.
        let mut shape = value.info.shape.clone();
        let width: usize = shape[1..].iter().product();
        let rows = d
            .chunks_exact(width.max(1))
            .take_while(|r| r[0] != Nms::FREE_ROW)
            .count();
        shape[0] = rows;
        return Tensor::new(shape, TensorData::I64(d[..rows * width].to_vec()));
    }
    Tensor::from_le_bytes(value.info.dtype, value.info.shape.clone(), bytes)
}

/// Runs node `i`: carves its outputs and scratch out of the arena (the
/// planner keeps them disjoint from everything the node reads) and calls its
/// kernel.
fn run_node(p: &Prepared, i: usize, arena: &mut [u8], threads: &Threads) -> Result<()> {
    let Some(kernel) = &p.kernels[i] else {
        return Ok(());
    };
    let node = &p.graph.nodes[i];
    // Regions written by the node: (offset, len, slot); slot k < outputs
    // is output k, the last is scratch.
    const SCRATCH: usize = usize::MAX;
    let mut writes: SmallVec<[(usize, usize, usize); 4]> = SmallVec::new();
    for (k, &o) in node.outputs.iter().enumerate() {
        let (off, len) = p
            .range(o)
            .ok_or_else(|| Error::invalid(&node.name, "unplanned output"))?;
        writes.push((off, len, k));
    }
    let (soff, slen) = p.plan.scratch[i];
    if slen > 0 {
        writes.push((soff, slen, SCRATCH));
    }
    writes.sort_unstable();
    let mut gaps: SmallVec<[(usize, &[u8]); 6]> = SmallVec::new();
    let mut out_bytes: SmallVec<[(usize, &mut [u8]); 4]> = SmallVec::new();
    let mut scratch: &mut [u8] = &mut [];
    let mut rest: &mut [u8] = arena;
    let mut pos = 0;
    for &(off, len, k) in &writes {
        let (gap, tail) = std::mem::take(&mut rest).split_at_mut(off - pos);
        let (o, tail) = tail.split_at_mut(len);
        gaps.push((pos, gap));
        if k == SCRATCH {
            scratch = o;
        } else {
            out_bytes.push((k, o));
        }
        rest = tail;
        pos = off + len;
    }
    gaps.push((pos, rest));
    out_bytes.sort_unstable_by_key(|(k, _)| *k);

    let mut ins: SmallVec<[Input; 5]> = SmallVec::new();
    for &v in &node.inputs {
        let value = &p.graph.values[v];
        let data = if let Some(c) = &value.constant {
            Input::of(c).data
        } else {
            let (off, len) = p
                .range(v)
                .ok_or_else(|| Error::invalid(&node.name, "unplanned input"))?;
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
        let info = &p.graph.values[o].info;
        outs.push(Output {
            shape: &info.shape,
            data: typed_mut(bytes, info.dtype)?,
        });
    }
    let scratch: &mut [f32] = if scratch.is_empty() {
        &mut []
    } else {
        bytemuck::try_cast_slice_mut(scratch)
            .map_err(|e| Error::invalid(&node.name, format!("scratch view: {e:?}")))?
    };
    kernel.run(&ins, &mut outs, scratch, threads)
}
