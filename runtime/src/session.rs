//! The public API: load a model, inspect its inputs and outputs, run it
//! frame after frame through a reusable session.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::exec::kernels::Isa;
use crate::exec::{ArenaBytes, ArenaF32, ExecOptions, Executor, Parked, Prepared};
use crate::frame::{Frame, FrameConverter, FrameOptions, Layout, Preprocess, TensorSpec};
use crate::ir::{DType, Graph, Tensor};
use crate::opt::{self, PassReport};
use crate::pack::{self, Limits, PackageInfo};

/// How to load a model.
#[derive(Clone, Debug)]
pub struct LoadOptions {
    /// Run the optimizer passes (BN folding, fusion…). On by default.
    pub optimize: bool,
    /// Concrete shapes for inputs with dynamic dims, by input name.
    pub input_shapes: HashMap<String, Vec<usize>>,
    /// Values of `.onnx` inputs fixed at load, by input name: each becomes
    /// a constant of the model and is no longer one of its inputs. For an
    /// input feeding an operand that must be known when the model is
    /// prepared ([`Error::InputValueNeeded`] names it): a Reshape's shape,
    /// a Reduce's axes, a Resize's scales, a Pad's pads…
    pub input_values: HashMap<String, Tensor>,
    /// Caps and checks for `.sqz` files. The whole-file SHA-256 is off by
    /// default (per-section checksums always run); turn it on for downloads.
    pub limits: Limits,
    /// Worker threads per session; 0 (the default) means the available
    /// parallelism, at most 4.
    pub threads: usize,
    /// Force an instruction set (`None`: `SQUEEZE_ISA`, else the best the
    /// CPU has). Asking for one the CPU lacks is an error.
    pub isa: Option<Isa>,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            optimize: true,
            input_shapes: HashMap::new(),
            input_values: HashMap::new(),
            // A phone model over 1 GiB is a hostile or broken file.
            limits: Limits {
                verify_sha256: false,
                max_file_bytes: 1 << 30,
                ..Limits::default()
            },
            threads: 0,
            isa: None,
        }
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
    /// Times `f` as phase `name` (added to the phase if it already ran).
    pub fn time<T>(&mut self, name: &'static str, f: impl FnOnce() -> T) -> T {
        let t = Instant::now();
        let r = f();
        let d = t.elapsed();
        match self.phases.iter_mut().find(|(n, _)| *n == name) {
            Some((_, total)) => *total += d,
            None => self.phases.push((name, d)),
        }
        r
    }
}

/// A loaded, optimized, prepared model: the graph, its kernels and packed
/// weights and the memory plan, shared by every [`Session`] (a second
/// session costs its arena only). Create one session per thread.
#[derive(Clone, Debug)]
pub struct Model {
    prepared: Arc<Prepared>,
    passes: Vec<PassReport>,
    timings: LoadTimings,
    package: Option<PackageInfo>,
    /// How to prepare the model again at other input shapes, when its
    /// file leaves input dims dynamic.
    specializer: Option<Arc<Specializer>>,
}

/// What a model whose ONNX file declares dynamic input dims keeps to be
/// prepared again at other shapes: the file's bytes (imported anew for
/// each shape, since every later step works on concrete shapes) and the
/// load options. A `.sqz` is packed at fixed shapes and has none.
#[derive(Debug)]
#[cfg_attr(not(feature = "onnx"), allow(dead_code))]
struct Specializer {
    bytes: Vec<u8>,
    dir: Option<std::path::PathBuf>,
    opts: LoadOptions,
    names: Vec<String>,
    /// Each input's declared dims, `None` where dynamic.
    dims: Vec<Vec<Option<usize>>>,
}

impl Specializer {
    /// Imports and prepares the model again with these input shapes
    /// (model-input order), which must fit the declared dims.
    #[cfg(feature = "onnx")]
    fn specialize(self: &Arc<Self>, shapes: &[&[usize]]) -> Result<Model> {
        if shapes.len() != self.dims.len() {
            return Err(Error::Input(format!(
                "the model takes {} inputs, {} shapes given",
                self.dims.len(),
                shapes.len()
            )));
        }
        for ((name, dims), shape) in self.names.iter().zip(&self.dims).zip(shapes) {
            let fits = dims.len() == shape.len()
                && dims
                    .iter()
                    .zip(*shape)
                    .all(|(d, &s)| d.is_none_or(|d| d == s));
            if !fits {
                let declared: Vec<String> = dims
                    .iter()
                    .map(|d| d.map_or("?".to_string(), |d| d.to_string()))
                    .collect();
                return Err(Error::Input(format!(
                    "input {name:?} takes shapes [{}], {shape:?} given",
                    declared.join(", ")
                )));
            }
        }
        let input_shapes: HashMap<String, Vec<usize>> = self
            .names
            .iter()
            .cloned()
            .zip(shapes.iter().map(|s| s.to_vec()))
            .collect();
        let import = crate::onnx::ImportOptions {
            input_shapes: input_shapes.clone(),
            input_values: self.opts.input_values.clone(),
        };
        let mut timings = LoadTimings::default();
        let (graph, _) = timings.time("import", || {
            crate::onnx::import_bytes(&self.bytes, self.dir.as_deref(), &import)
        })?;
        let opts = LoadOptions {
            input_shapes,
            ..self.opts.clone()
        };
        let mut model = Model::from_graph(graph, &opts, timings)?;
        model.specializer = Some(Arc::clone(self));
        Ok(model)
    }
    #[cfg(not(feature = "onnx"))]
    fn specialize(self: &Arc<Self>, _shapes: &[&[usize]]) -> Result<Model> {
        Err(Error::Input("ONNX import is not built in".into()))
    }
}

/// Whether `graph` was prepared at exactly these input shapes.
fn prepared_at(graph: &Graph, shapes: &[&[usize]]) -> bool {
    graph.inputs.len() == shapes.len()
        && graph
            .inputs
            .iter()
            .zip(shapes)
            .all(|(&v, s)| graph.values[v].info.shape == *s)
}

/// Input shapes a session keeps prepared besides the current one.
const PARKED_SHAPES: usize = 3;

impl Model {
    /// Builds a model from an imported graph, optimizing it if asked.
    pub fn from_graph(
        mut graph: Graph,
        opts: &LoadOptions,
        mut timings: LoadTimings,
    ) -> Result<Model> {
        graph.validate()?;
        let passes = if opts.optimize {
            timings.time("optimize", || opt::optimize(&mut graph))?
        } else {
            Vec::new()
        };
        let prepared = prepare(graph, opts, &mut timings)?;
        Ok(Model {
            prepared,
            passes,
            timings,
            package: None,
            specializer: None,
        })
    }

    /// A `.sqz` was optimized when packed: its graph is used as stored.
    fn from_package(
        graph: Graph,
        package: PackageInfo,
        opts: &LoadOptions,
        mut timings: LoadTimings,
    ) -> Result<Model> {
        let prepared = prepare(graph, opts, &mut timings)?;
        Ok(Model {
            prepared,
            passes: Vec::new(),
            timings,
            package: Some(package),
            specializer: None,
        })
    }

    /// Loads a `.sqz` from memory (an Android asset, a downloaded buffer).
    pub fn from_sqz_bytes(bytes: &[u8], opts: &LoadOptions) -> Result<Model> {
        let mut timings = LoadTimings::default();
        let (graph, package) = pack::load_bytes(bytes, &opts.limits, &mut timings)?;
        Model::from_package(graph, package, opts, timings)
    }

    /// Loads a `.sqz` from a stream without a temporary file.
    pub fn from_sqz_reader(reader: &mut dyn std::io::Read, opts: &LoadOptions) -> Result<Model> {
        let mut timings = LoadTimings::default();
        let (graph, package) = pack::load_reader(reader, &opts.limits, &mut timings)?;
        Model::from_package(graph, package, opts, timings)
    }

    /// Loads a `.sqz` from bytes that stay alive with the model: raw f32
    /// weights are used in place, not copied (a caller's buffer lent for the
    /// model's lifetime, a mapped region).
    pub fn from_sqz_shared(bytes: pack::SharedBytes, opts: &LoadOptions) -> Result<Model> {
        let mut timings = LoadTimings::default();
        let (graph, package) = pack::load_shared_bytes(bytes, &opts.limits, &mut timings)?;
        Model::from_package(graph, package, opts, timings)
    }

    /// Maps `len` bytes of `file` from `offset` and loads the `.sqz` there:
    /// a model stored uncompressed inside an Android APK, read through its
    /// asset's file descriptor without a copy.
    pub fn load_sqz_region(
        file: &std::fs::File,
        offset: u64,
        len: u64,
        opts: &LoadOptions,
    ) -> Result<Model> {
        let mut timings = LoadTimings::default();
        let (graph, package) =
            pack::load_file_region(file, offset, len, &opts.limits, &mut timings)?;
        Model::from_package(graph, package, opts, timings)
    }

    /// Maps and loads a `.sqz` file.
    pub fn load_sqz(path: &Path, opts: &LoadOptions) -> Result<Model> {
        let mut timings = LoadTimings::default();
        let (graph, package) = pack::load_path(path, &opts.limits, &mut timings)?;
        Model::from_package(graph, package, opts, timings)
    }

    /// Loads an `.onnx` file. Dynamic input dims stay dynamic: a session
    /// runs the model at other shapes too ([`Session::set_input_shapes`]).
    #[cfg(feature = "onnx")]
    pub fn load_onnx(path: &Path, opts: &LoadOptions) -> Result<Model> {
        let mut timings = LoadTimings::default();
        let bytes = timings
            .time("read", || std::fs::read(path))
            .map_err(|e| Error::Io {
                path: path.to_path_buf(),
                source: e,
            })?;
        Model::import_onnx(bytes, path.parent(), opts, timings)
    }

    /// Loads an `.onnx` model from memory (no external data).
    #[cfg(feature = "onnx")]
    pub fn from_onnx_bytes(bytes: &[u8], opts: &LoadOptions) -> Result<Model> {
        Model::import_onnx(bytes.to_vec(), None, opts, LoadTimings::default())
    }

    #[cfg(feature = "onnx")]
    fn import_onnx(
        bytes: Vec<u8>,
        dir: Option<&Path>,
        opts: &LoadOptions,
        mut timings: LoadTimings,
    ) -> Result<Model> {
        let import = crate::onnx::ImportOptions {
            input_shapes: opts.input_shapes.clone(),
            input_values: opts.input_values.clone(),
        };
        let (graph, info) =
            timings.time("import", || crate::onnx::import_bytes(&bytes, dir, &import))?;
        let mut model = Model::from_graph(graph, opts, timings)?;
        if info.input_dims.iter().flatten().any(Option::is_none) {
            model.specializer = Some(Arc::new(Specializer {
                bytes,
                dir: dir.map(Path::to_path_buf),
                opts: opts.clone(),
                names: model.inputs().into_iter().map(|i| i.name).collect(),
                dims: info.input_dims,
            }));
        }
        Ok(model)
    }

    /// Loads a model file of any supported format (`.sqz` by its magic).
    pub fn load(path: &Path, opts: &LoadOptions) -> Result<Model> {
        let mut magic = [0u8; 8];
        let io = |e| Error::Io {
            path: path.to_path_buf(),
            source: e,
        };
        let n = std::io::Read::read(&mut std::fs::File::open(path).map_err(io)?, &mut magic)
            .map_err(io)?;
        if pack::is_sqz(&magic[..n]) {
            return Model::load_sqz(path, opts);
        }
        #[cfg(feature = "onnx")]
        {
            Model::load_onnx(path, opts)
        }
        #[cfg(not(feature = "onnx"))]
        {
            let _ = opts;
            Err(Error::Malformed(format!(
                "{}: not a .sqz file (and ONNX import is not built in)",
                path.display()
            )))
        }
    }

    pub fn graph(&self) -> &Graph {
        self.prepared.graph()
    }
    /// The kernels, plan and packed weights every session shares.
    pub fn prepared(&self) -> &Arc<Prepared> {
        &self.prepared
    }
    pub fn passes(&self) -> &[PassReport] {
        &self.passes
    }
    pub fn load_timings(&self) -> &LoadTimings {
        &self.timings
    }
    /// Metadata and section facts when loaded from a `.sqz`.
    pub fn package(&self) -> Option<&PackageInfo> {
        self.package.as_ref()
    }

    fn io(&self, ids: &[usize]) -> Vec<IoInfo> {
        ids.iter()
            .map(|&v| {
                let value = &self.graph().values[v];
                IoInfo {
                    name: value.name.clone(),
                    dtype: value.info.dtype,
                    shape: value.info.shape.clone(),
                }
            })
            .collect()
    }
    pub fn inputs(&self) -> Vec<IoInfo> {
        self.io(&self.graph().inputs)
    }
    pub fn outputs(&self) -> Vec<IoInfo> {
        self.io(&self.graph().outputs)
    }

    /// The preprocessing recorded at pack time, typed; `None` for an ONNX
    /// model or a `.sqz` packed without it.
    pub fn preprocess(&self) -> Result<Option<Preprocess>> {
        self.package
            .as_ref()
            .and_then(|p| p.metadata.preprocessing.as_ref())
            .map(Preprocess::try_from)
            .transpose()
    }

    /// A converter of camera frames into input `i`: size and layout from
    /// the input's shape (`[1, 3, H, W]` or `[1, H, W, 3]`), channel order
    /// and normalization from `pre`, else from the recorded preprocessing,
    /// else RGB scaled to 0..=1.
    pub fn frame_converter(&self, i: usize, pre: Option<&Preprocess>) -> Result<FrameConverter> {
        let info = self
            .inputs()
            .into_iter()
            .nth(i)
            .ok_or_else(|| Error::Input(format!("no input {i}")))?;
        let pre = match pre {
            Some(p) => *p,
            None => self.preprocess()?.unwrap_or_default(),
        };
        // The recorded layout decides a shape that reads both ways.
        let (layout, height, width) = match (&info.shape[..], pre.layout) {
            (&[1, h, w, 3], Layout::Nhwc) => (Layout::Nhwc, h, w),
            (&[1, 3, h, w], _) => (Layout::Nchw, h, w),
            (&[1, h, w, 3], _) => (Layout::Nhwc, h, w),
            _ => {
                return Err(Error::Input(format!(
                    "input {:?} of shape {:?} takes no image ([1, 3, H, W] or [1, H, W, 3])",
                    info.name, info.shape
                )))
            }
        };
        if info.dtype != DType::F32 {
            return Err(Error::Input(format!("input {:?} is not f32", info.name)));
        }
        FrameConverter::new(TensorSpec {
            width,
            height,
            layout,
            order: pre.order,
            normalize: pre.normalize,
        })
    }

    /// Whether the model's file leaves input dims dynamic, so sessions
    /// run it at other input shapes too.
    pub fn is_dynamic(&self) -> bool {
        self.specializer.is_some()
    }

    /// The model prepared again at other input shapes (model-input order;
    /// only dims the file leaves dynamic may change).
    pub fn specialize(&self, shapes: &[&[usize]]) -> Result<Model> {
        match &self.specializer {
            Some(s) => s.specialize(shapes),
            None => Err(Error::Input(
                "the model's input shapes are fixed (a .sqz, or no dynamic dims)".into(),
            )),
        }
    }

    /// A session: its own arena and threads over the shared kernels.
    pub fn session(&self) -> Result<Session> {
        Ok(Session {
            exec: Executor::new(Arc::clone(&self.prepared))?,
            model: self.clone(),
            parked: Vec::new(),
        })
    }
}

/// Runs one model repeatedly; keeps its arena between runs.
pub struct Session {
    exec: Executor,
    /// The model as loaded, to prepare other input shapes (dynamic models).
    model: Model,
    /// Other input shapes' prepared graphs and arenas, most recent first.
    parked: Vec<Parked>,
}

impl Session {
    /// Runs on inputs in model-input order. A dynamic model takes any
    /// shapes its dynamic dims allow ([`Session::set_input_shapes`]).
    pub fn run(&mut self, inputs: &[&Tensor]) -> Result<Vec<Tensor>> {
        if self.model.is_dynamic() {
            let shapes: smallvec::SmallVec<[&[usize]; 4]> =
                inputs.iter().map(|t| t.shape()).collect();
            self.set_input_shapes(&shapes)?;
        }
        self.exec.run(inputs)
    }

    /// Makes the session run at these input shapes (model-input order),
    /// for [`Session::input_mut`] and [`Session::run_in_place`]. A new
    /// shape imports and prepares the model again, which costs about a
    /// load; the last [`PARKED_SHAPES`] shapes stay prepared, so going back
    /// to one of them plans and allocates nothing. The session's own
    /// shape never changes for a model with fixed shapes.
    pub fn set_input_shapes(&mut self, shapes: &[&[usize]]) -> Result<()> {
        if prepared_at(self.exec.prepared().graph(), shapes) {
            return Ok(());
        }
        if let Some(i) = self
            .parked
            .iter()
            .position(|p| prepared_at(p.prepared().graph(), shapes))
        {
            self.exec.swap(&mut self.parked[i]);
            return Ok(());
        }
        let model = self.model.specialize(shapes)?;
        let mut parked = Parked::new(Arc::clone(model.prepared()));
        self.exec.swap(&mut parked);
        self.parked.insert(0, parked);
        self.parked.truncate(PARKED_SHAPES);
        Ok(())
    }

    /// The model the session currently runs: the loaded one, or its
    /// specialization at the shapes last set.
    pub fn prepared(&self) -> Arc<Prepared> {
        self.exec.prepared()
    }

    /// Runs on inputs given by name; every input must be given once.
    pub fn run_named(&mut self, inputs: &[(&str, &Tensor)]) -> Result<Vec<Tensor>> {
        let prepared = self.exec.prepared();
        let graph = prepared.graph();
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

    /// Input `i`'s buffer inside the session, to write in place before
    /// [`Session::run_in_place`] (no copy, no allocation).
    pub fn input_mut(&mut self, i: usize) -> Result<ArenaF32<'_>> {
        self.exec.input_f32_mut(i)
    }

    /// Input `i`'s bytes inside the session, for inputs of any element
    /// type (little-endian, `numel × dtype.size()` bytes).
    pub fn input_bytes_mut(&mut self, i: usize) -> Result<ArenaBytes<'_>> {
        self.exec.input_bytes_mut(i)
    }

    /// Converts a camera frame straight into input `i` (see
    /// [`Model::frame_converter`]); then [`Session::run_in_place`]. Nothing
    /// is copied, and frames of a steady geometry allocate nothing.
    pub fn write_frame(
        &mut self,
        i: usize,
        converter: &mut FrameConverter,
        frame: &Frame,
        opts: &FrameOptions,
    ) -> Result<()> {
        converter.convert_f32(frame, opts, &mut self.input_mut(i)?)
    }

    /// Runs on the inputs written with [`Session::input_mut`]. After the
    /// first run this allocates nothing.
    pub fn run_in_place(&mut self) -> Result<()> {
        self.exec.run_in_place()
    }

    /// Runs once on the inputs in the arena; each node's wall time (s).
    pub fn run_profiled(&mut self) -> Result<Vec<f64>> {
        self.exec.run_profiled()
    }

    /// f32 output `i` read in place, valid while the returned guard lives.
    pub fn output(&self, i: usize) -> Result<ArenaF32<'_>> {
        self.exec.output_f32(i)
    }

    /// Output `i`'s bytes read in place, for outputs of any element type.
    pub fn output_bytes(&self, i: usize) -> Result<ArenaBytes<'_>> {
        self.exec.output_bytes(i)
    }

    /// Bytes of the activation arena.
    pub fn arena_bytes(&self) -> usize {
        self.exec.prepared().plan().arena_bytes
    }
}

/// Chooses and packs the kernels and plans memory: the "prepare" phase.
fn prepare(graph: Graph, opts: &LoadOptions, timings: &mut LoadTimings) -> Result<Arc<Prepared>> {
    let exec = ExecOptions {
        isa: opts.isa,
        threads: opts.threads,
    };
    timings
        .time("prepare", || Prepared::new(graph, &exec))
        .map(Arc::new)
}
