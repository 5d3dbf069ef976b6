//! The public API: load a model, inspect its inputs and outputs, run it
//! frame after frame through a reusable session.

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::exec::{kernels, Executor};
use crate::ir::{DType, Graph, Tensor};
use crate::opt::{self, PassReport};

/// How to load a model.
#[derive(Clone, Debug)]
pub struct LoadOptions {
    /// Run the optimizer passes (BN folding, fusion…). On by default.
    pub optimize: bool,
    /// Concrete shapes for inputs with dynamic dims, by input name.
    pub input_shapes: HashMap<String, Vec<usize>>,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions { optimize: true, input_shapes: HashMap::new() }
    }
}

/// Name, element type and shape of a model input or output.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IoInfo {
    pub name: String,
    pub dtype: DType,
    pub shape: Vec<usize>,
}

/// Time spent in each loading phase.
#[derive(Clone, Debug, Default)]
pub struct LoadTimings {
    pub phases: Vec<(&'static str, Duration)>,
}

impl LoadTimings {
    pub fn total(&self) -> Duration {
        self.phases.iter().map(|p| p.1).sum()
    }
    /// Times `f` as phase `name`.
    pub fn time<T>(&mut self, name: &'static str, f: impl FnOnce() -> T) -> T {
        let t = Instant::now();
        let r = f();
        self.phases.push((name, t.elapsed()));
        r
    }
}

/// A loaded, optimized, immutable model. Create one [`Session`] per thread.
#[derive(Clone, Debug)]
pub struct Model {
    graph: Graph,
    passes: Vec<PassReport>,
    timings: LoadTimings,
}

impl Model {
    /// Builds a model from an imported graph, optimizing it if asked.
    pub fn from_graph(mut graph: Graph, opts: &LoadOptions, mut timings: LoadTimings) -> Result<Model> {
        graph.validate()?;
        let passes = if opts.optimize { timings.time("optimize", || opt::optimize(&mut graph))? } else { Vec::new() };
        Ok(Model { graph, passes, timings })
    }

    /// Loads an `.onnx` file.
    #[cfg(feature = "onnx")]
    pub fn load_onnx(path: &Path, opts: &LoadOptions) -> Result<Model> {
        let mut timings = LoadTimings::default();
        let bytes = timings.time("read", || std::fs::read(path)).map_err(|e| Error::Io { path: path.to_path_buf(), source: e })?;
        let import = crate::onnx::ImportOptions { input_shapes: opts.input_shapes.clone() };
        let (graph, _) = timings.time("import", || crate::onnx::import_bytes(&bytes, path.parent(), &import))?;
        Model::from_graph(graph, opts, timings)
    }

    /// Loads an `.onnx` model from memory (no external data).
    #[cfg(feature = "onnx")]
    pub fn from_onnx_bytes(bytes: &[u8], opts: &LoadOptions) -> Result<Model> {
        let mut timings = LoadTimings::default();
        let import = crate::onnx::ImportOptions { input_shapes: opts.input_shapes.clone() };
        let (graph, _) = timings.time("import", || crate::onnx::import_bytes(bytes, None, &import))?;
        Model::from_graph(graph, opts, timings)
    }

    /// Loads a model file of any supported format.
    pub fn load(path: &Path, opts: &LoadOptions) -> Result<Model> {
        #[cfg(feature = "onnx")]
        {
            Model::load_onnx(path, opts)
        }
        #[cfg(not(feature = "onnx"))]
        {
            let _ = opts;
            Err(Error::Input(format!("{}: ONNX support is not built in", path.display())))
        }
    }

    pub fn graph(&self) -> &Graph {
        &self.graph
    }
    pub fn passes(&self) -> &[PassReport] {
        &self.passes
    }
    pub fn load_timings(&self) -> &LoadTimings {
        &self.timings
    }

    fn io(&self, ids: &[usize]) -> Vec<IoInfo> {
        ids.iter()
            .map(|&v| {
                let value = &self.graph.values[v];
                IoInfo { name: value.name.clone(), dtype: value.info.dtype, shape: value.info.shape.clone() }
            })
            .collect()
    }
    pub fn inputs(&self) -> Vec<IoInfo> {
        self.io(&self.graph.inputs)
    }
    pub fn outputs(&self) -> Vec<IoInfo> {
        self.io(&self.graph.outputs)
    }

    /// A session: planned arena and prepacked weights, ready to run.
    pub fn session(&self) -> Result<Session> {
        Ok(Session { exec: Executor::new(self.graph.clone(), kernels::select())? })
    }
}

/// Runs one model repeatedly; keeps its arena between runs.
pub struct Session {
    exec: Executor,
}

impl Session {
    /// Runs on inputs in model-input order.
    pub fn run(&mut self, inputs: &[&Tensor]) -> Result<Vec<Tensor>> {
        self.exec.run(inputs)
    }

    /// Runs on inputs given by name; every input must be given once.
    pub fn run_named(&mut self, inputs: &[(&str, &Tensor)]) -> Result<Vec<Tensor>> {
        let graph = self.exec.graph();
        let mut ordered = Vec::with_capacity(graph.inputs.len());
        for &v in &graph.inputs {
            let name = &graph.values[v].name;
            let t = inputs
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, t)| *t)
                .ok_or_else(|| Error::Input(format!("input {name:?} not given")))?;
            ordered.push(t);
        }
        if inputs.len() != ordered.len() {
            return Err(Error::Input("unknown or repeated input names".into()));
        }
        self.exec.run(&ordered)
    }

    /// Bytes of the activation arena.
    pub fn arena_bytes(&self) -> usize {
        self.exec.plan().arena_bytes
    }
}
