//! ONNX import: protobuf → [`Graph`] with static shapes. Constant subgraphs
//! (shape arithmetic, weights built by ConstantOfShape…) are folded while
//! importing, so the graph that leaves here is static and validated.

mod ops;
mod qdq;
mod qops;
mod recurrent;
mod tensor;

use std::collections::HashMap;
use std::path::Path;

use prost::Message;
use tract_onnx::pb;

use crate::error::{Error, Result};
use crate::exec::kernels::scalar::reference as compute;
use crate::ir::{checked_numel, Graph, Node, Op, Tensor, TypeInfo, ValueId};
pub use tensor::{narrow_dtype, to_tensor};

/// Opsets of the default domain this importer follows.
pub const OPSETS: std::ops::RangeInclusive<i64> = 1..=22;

/// Import settings.
#[derive(Clone, Debug, Default)]
pub struct ImportOptions {
    /// Concrete shapes for inputs with dynamic dims (by input name). A
    /// dynamic leading (batch) dim defaults to 1; others must be given.
    pub input_shapes: HashMap<String, Vec<usize>>,
    /// Values of inputs fixed at import (by input name): each becomes a
    /// constant, so operands that must be known when the model is prepared
    /// may come from it; the input is no longer a model input.
    pub input_values: HashMap<String, Tensor>,
}

/// Model-level facts kept for reports and packing.
#[derive(Clone, Debug, Default)]
pub struct OnnxInfo {
    pub producer: String,
    pub opset: i64,
    pub metadata: Vec<(String, String)>,
    /// Each graph input's dims as the file declares them, in input order:
    /// `None` where a dim is dynamic (named, or left unset).
    pub input_dims: Vec<Vec<Option<usize>>>,
}

/// Parses and imports an ONNX model from bytes; `dir` is the folder external
/// data may be read from.
pub fn import_bytes(
    bytes: &[u8],
    dir: Option<&Path>,
    opts: &ImportOptions,
) -> Result<(Graph, OnnxInfo)> {
    let model = pb::ModelProto::decode(bytes)
        .map_err(|e| Error::Malformed(format!("not a valid ONNX protobuf: {e}")))?;
    import_model(&model, dir, opts)
}

/// Reads and imports an `.onnx` file.
pub fn import_file(path: &Path, opts: &ImportOptions) -> Result<(Graph, OnnxInfo)> {
    let bytes = std::fs::read(path).map_err(|e| Error::Io {
        path: path.to_path_buf(),
        source: e,
    })?;
    import_bytes(&bytes, path.parent(), opts)
}

pub fn import_model(
    model: &pb::ModelProto,
    dir: Option<&Path>,
    opts: &ImportOptions,
) -> Result<(Graph, OnnxInfo)> {
    let opset = model
        .opset_import
        .iter()
        .find(|o| o.domain.is_empty() || o.domain == "ai.onnx")
        .map_or(1, |o| o.version);
    if !OPSETS.contains(&opset) {
        return Err(Error::Malformed(format!(
            "opset {opset} is outside the supported range {OPSETS:?}"
        )));
    }
    let g = model
        .graph
        .as_ref()
        .ok_or_else(|| Error::Malformed("model has no graph".into()))?;
    let mut ctx = Importer {
        graph: Graph::default(),
        names: HashMap::new(),
        file_types: HashMap::new(),
        opset,
        dir,
        const_elements: 0,
    };
    for init in &g.initializer {
        let dims: Vec<usize> = init
            .dims
            .iter()
            .map(|&d| usize::try_from(d).unwrap_or(usize::MAX))
            .collect();
        ctx.reserve(checked_numel(&dims, &init.name)?, &init.name)?;
        let t = to_tensor(init, dir)?;
        let id = ctx.graph.add_constant(&init.name, t);
        ctx.names.insert(init.name.clone(), id);
        ctx.file_types.insert(id, init.data_type);
    }
    let mut input_dims = Vec::new();
    for input in &g.input {
        if ctx.names.contains_key(&input.name) {
            continue; // an initializer listed as input (IR < 4): a constant
        }
        let info = input_type(input, opts)?;
        if let Some(t) = opts.input_values.get(&input.name) {
            let fits = t.dtype() == info.dtype
                && declared_dims(input).len() == t.shape().len()
                && declared_dims(input)
                    .iter()
                    .zip(t.shape())
                    .all(|(d, &s)| d.is_none_or(|d| d == s));
            if !fits {
                return Err(Error::Input(format!(
                    "the value given for input {:?} ({:?} {:?}) does not fit its declared type",
                    input.name,
                    t.dtype(),
                    t.shape()
                )));
            }
            ctx.reserve(t.len(), &input.name)?;
            let id = ctx.graph.add_constant(&input.name, t.clone());
            ctx.names.insert(input.name.clone(), id);
            if let Some(elem) = declared_elem_type(input) {
                ctx.file_types.insert(id, elem);
            }
            continue;
        }
        input_dims.push(declared_dims(input));
        let id = ctx.graph.add_value(&input.name, info);
        ctx.graph.inputs.push(id);
        ctx.names.insert(input.name.clone(), id);
        if let Some(elem) = declared_elem_type(input) {
            ctx.file_types.insert(id, elem);
        }
    }
    let nodes = qdq::fuse(&g.node, &g.initializer, &g.output);
    for node in sorted_nodes(&nodes)? {
        let default_domain = node.domain.is_empty() || node.domain == "ai.onnx";
        if !default_domain && !qops::is_quantized_op(&node.domain, &node.op_type) {
            return Err(Error::UnsupportedOp {
                op_type: format!("{}:{}", node.domain, node.op_type),
                node: node.name.clone(),
                opset,
                reason: "custom domain".into(),
            });
        }
        ops::convert(&mut ctx, node)?;
    }
    for out in &g.output {
        let id = ctx.value(&out.name, "<graph outputs>")?;
        ctx.graph.outputs.push(id);
    }
    let info = OnnxInfo {
        producer: format!("{} {}", model.producer_name, model.producer_version)
            .trim()
            .to_string(),
        opset,
        metadata: model
            .metadata_props
            .iter()
            .map(|kv| (kv.key.clone(), kv.value.clone()))
            .collect(),
        input_dims,
    };
    crate::opt::remove_dead(&mut ctx.graph);
    ctx.graph.validate()?;
    Ok((ctx.graph, info))
}

/// The ONNX element type input `v` declares.
fn declared_elem_type(v: &pb::ValueInfoProto) -> Option<i32> {
    use pb::type_proto::Value as Ty;
    let Some(Ty::TensorType(tt)) = v.r#type.as_ref().and_then(|t| t.value.as_ref()) else {
        return None;
    };
    Some(tt.elem_type)
}

/// The dims input `v` declares, `None` for a dynamic one.
fn declared_dims(v: &pb::ValueInfoProto) -> Vec<Option<usize>> {
    use pb::tensor_shape_proto::dimension::Value as Dim;
    use pb::type_proto::Value as Ty;
    let Some(Ty::TensorType(tt)) = v.r#type.as_ref().and_then(|t| t.value.as_ref()) else {
        return Vec::new();
    };
    let dims = tt.shape.as_ref().map(|s| s.dim.as_slice()).unwrap_or(&[]);
    dims.iter()
        .map(|d| match d.value {
            Some(Dim::DimValue(x)) if x > 0 => usize::try_from(x).ok(),
            _ => None,
        })
        .collect()
}

fn input_type(v: &pb::ValueInfoProto, opts: &ImportOptions) -> Result<TypeInfo> {
    use pb::tensor_shape_proto::dimension::Value as Dim;
    use pb::type_proto::Value as Ty;
    let Some(Ty::TensorType(tt)) = v.r#type.as_ref().and_then(|t| t.value.as_ref()) else {
        return Err(Error::Malformed(format!(
            "input {:?} is not a tensor",
            v.name
        )));
    };
    let dtype = tensor::dtype_of(tt.elem_type).ok_or_else(|| {
        Error::Malformed(format!(
            "input {:?} has unsupported element type {}",
            v.name, tt.elem_type
        ))
    })?;
    let dims = tt.shape.as_ref().map(|s| s.dim.as_slice()).unwrap_or(&[]);
    let shape: Vec<usize> = if let Some(given) = opts.input_shapes.get(&v.name) {
        if given.len() != dims.len() {
            return Err(Error::Input(format!(
                "input {:?} has rank {}, shape {given:?} given",
                v.name,
                dims.len()
            )));
        }
        for (i, (g, d)) in given.iter().zip(dims).enumerate() {
            if let Some(Dim::DimValue(x)) = d.value {
                if x > 0 && x as usize != *g {
                    return Err(Error::Input(format!(
                        "input {:?} dim {i} is fixed to {x}, {g} given",
                        v.name
                    )));
                }
            }
        }
        given.clone()
    } else {
        dims.iter()
            .enumerate()
            .map(|(i, d)| match &d.value {
                Some(Dim::DimValue(x)) if *x > 0 => Ok(*x as usize),
                _ if i == 0 => Ok(1),
                other => Err(Error::Input(format!(
                    "input {:?} has a dynamic dim {i} ({}); give its shape, e.g. --input-shape {}=1x3x224x224",
                    v.name,
                    match other {
                        Some(Dim::DimParam(p)) => p.clone(),
                        _ => "?".into(),
                    },
                    v.name
                ))),
            })
            .collect::<Result<_>>()?
    };
    checked_numel(&shape, &v.name)?;
    Ok(TypeInfo::new(dtype, shape))
}

/// ONNX requires topological order, but not every exporter obeys: sort, and
/// refuse cycles.
fn sorted_nodes(nodes: &[pb::NodeProto]) -> Result<Vec<&pb::NodeProto>> {
    let mut producer: HashMap<&str, usize> = HashMap::new();
    for (i, n) in nodes.iter().enumerate() {
        for o in n.output.iter().filter(|o| !o.is_empty()) {
            producer.insert(o, i);
        }
    }
    let mut indegree = vec![0usize; nodes.len()];
    let mut readers = vec![Vec::new(); nodes.len()];
    for (i, n) in nodes.iter().enumerate() {
        for inp in &n.input {
            if let Some(&p) = producer.get(inp.as_str()) {
                indegree[i] += 1;
                readers[p].push(i);
            }
        }
    }
    let mut ready: Vec<usize> = (0..nodes.len())
        .filter(|&i| indegree[i] == 0)
        .rev()
        .collect();
    let mut order = Vec::with_capacity(nodes.len());
    while let Some(i) = ready.pop() {
        order.push(&nodes[i]);
        for &r in readers[i].iter().rev() {
            indegree[r] -= 1;
            if indegree[r] == 0 {
                ready.push(r);
            }
        }
    }
    if order.len() != nodes.len() {
        let stuck = (0..nodes.len()).find(|&i| indegree[i] > 0).unwrap_or(0);
        let n = &nodes[stuck];
        return Err(Error::Cycle(if n.name.is_empty() {
            n.op_type.clone()
        } else {
            n.name.clone()
        }));
    }
    Ok(order)
}

/// Import state: the graph under construction and ONNX names → values.
pub(crate) struct Importer<'a> {
    graph: Graph,
    names: HashMap<String, ValueId>,
    /// The ONNX element type of the file's constants and inputs (integers
    /// are read as i64; zero points and quantized weights say a tensor's
    /// dtype, an unsigned input how wide a BitShift is).
    file_types: HashMap<ValueId, i32>,
    opset: i64,
    dir: Option<&'a Path>,
    /// Constant elements made so far (initializers and folded values).
    const_elements: usize,
}

/// Total constant elements an import may create (2^29: 2 GiB of f32), so
/// a tiny file cannot fold itself into unbounded memory.
pub const MAX_CONSTANT_ELEMENTS: usize = 1 << 29;

impl Importer<'_> {
    fn value(&self, name: &str, node: &str) -> Result<ValueId> {
        self.names
            .get(name)
            .copied()
            .ok_or_else(|| Error::invalid(node, format!("reads {name:?}, which nothing defines")))
    }
    fn info(&self, v: ValueId) -> &TypeInfo {
        &self.graph.values[v].info
    }
    fn constant(&self, v: ValueId) -> Option<&Tensor> {
        self.graph.constant(v)
    }

    /// Counts `elements` more constant elements against the import budget,
    /// before they are allocated.
    fn reserve(&mut self, elements: usize, what: &str) -> Result<()> {
        self.const_elements = self.const_elements.saturating_add(elements);
        if self.const_elements > MAX_CONSTANT_ELEMENTS {
            return Err(Error::TooLarge {
                what: format!("constants up to {what}"),
                elements: self.const_elements as u128,
                limit: MAX_CONSTANT_ELEMENTS as u64,
            });
        }
        Ok(())
    }

    /// The integer type constant `v` had in the file, if narrower than i64.
    fn narrow_dtype(&self, v: ValueId) -> Option<crate::ir::DType> {
        self.file_type(v).and_then(tensor::narrow_dtype)
    }

    /// The ONNX element type constant `v` had in the file.
    fn file_type(&self, v: ValueId) -> Option<i32> {
        self.file_types.get(&v).copied()
    }

    /// The error for operand `v` of node `c`, which must be constant (`what`)
    /// and is not: a model input's value can be given at import
    /// ([`ImportOptions::input_values`]); a computed one is unsupported.
    fn not_constant(&self, c: &ops::Ctx, v: ValueId, what: &str) -> Error {
        if self.graph.inputs.contains(&v) {
            Error::InputValueNeeded {
                input: self.graph.values[v].name.clone(),
                node: c.name.clone(),
                op_type: c.node.op_type.clone(),
                what: what.to_string(),
            }
        } else {
            c.unsupported(format!("{what} must be a constant"))
        }
    }

    /// A new constant under a generated name (derived from `name`).
    fn add_constant(&mut self, name: &str, t: Tensor) -> ValueId {
        let name = format!("{name}::{}", self.graph.values.len());
        self.graph.add_constant(&name, t)
    }

    /// Binds `name` to a new constant.
    fn bind_constant(&mut self, name: &str, t: Tensor) {
        let id = self.graph.add_constant(name, t);
        self.names.insert(name.to_string(), id);
    }

    /// Adds a node whose outputs get `out_names`; folds it at once when all
    /// its inputs are constants.
    fn add(
        &mut self,
        name: &str,
        op: Op,
        inputs: Vec<ValueId>,
        out_names: &[String],
    ) -> Result<Vec<ValueId>> {
        let infos: Vec<&TypeInfo> = inputs.iter().map(|&v| self.info(v)).collect();
        let types = op.infer(name, &infos)?;
        if types.len() != out_names.len() {
            return Err(Error::invalid(
                name,
                format!(
                    "{} outputs expected, {} named",
                    types.len(),
                    out_names.len()
                ),
            ));
        }
        if !op.rows_depend_on_data() && inputs.iter().all(|&v| self.constant(v).is_some()) {
            self.reserve(
                types
                    .iter()
                    .map(|t| t.shape.iter().product::<usize>())
                    .sum(),
                name,
            )?;
            let consts: Vec<&Tensor> = inputs.iter().filter_map(|&v| self.constant(v)).collect();
            let results = compute::eval(&op, &consts)?;
            let mut ids = Vec::new();
            for (t, n) in results.into_iter().zip(out_names) {
                let id = self.graph.add_constant(n, t);
                self.names.insert(n.clone(), id);
                ids.push(id);
            }
            return Ok(ids);
        }
        let mut ids = Vec::new();
        for (t, n) in types.into_iter().zip(out_names) {
            let id = self.graph.add_value(n, t);
            self.names.insert(n.clone(), id);
            ids.push(id);
        }
        self.graph.nodes.push(Node {
            name: name.to_string(),
            op,
            inputs,
            outputs: ids.clone(),
        });
        Ok(ids)
    }

    /// Adds an intermediate node with a generated output name.
    fn add_tmp(&mut self, name: &str, op: Op, inputs: Vec<ValueId>) -> Result<ValueId> {
        let out = format!("{name}::{}", self.graph.values.len());
        Ok(self.add(name, op, inputs, &[out])?[0])
    }
}
