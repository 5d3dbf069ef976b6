//! One converter per ONNX op type: attributes and constant inputs become
//! explicit IR attributes; static output shapes are computed here.

use tract_onnx::pb::{AttributeProto, NodeProto};

use super::{to_tensor, Importer};
use crate::error::{Error, Result};
use crate::ir::{
    AxisSlice, BinaryOp, BitwiseOp, CompareOp, ConvGeometry, CoordTransform, DType, NearestMode,
    Nms, Op, PadMode, PoolGeometry, PoolKind, ReduceKind, ResizeMode, ScatterReduction, Tensor,
    Trig, UnaryOp, ValueId,
};

/// Attribute lookup with ONNX defaults.
#[derive(Clone, Copy)]
pub(super) struct Attrs<'a>(&'a [AttributeProto]);

impl Attrs<'_> {
    fn get(&self, name: &str) -> Option<&AttributeProto> {
        self.0.iter().find(|a| a.name == name)
    }
    pub(super) fn int(&self, name: &str, default: i64) -> i64 {
        self.get(name).map_or(default, |a| a.i)
    }
    pub(super) fn float(&self, name: &str, default: f32) -> f32 {
        self.get(name).map_or(default, |a| a.f)
    }
    fn ints(&self, name: &str) -> Option<Vec<i64>> {
        self.get(name).map(|a| a.ints.clone())
    }
    pub(super) fn string(&self, name: &str, default: &str) -> String {
        self.get(name).map_or(default.to_string(), |a| {
            String::from_utf8_lossy(&a.s).into_owned()
        })
    }
    pub(super) fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }
    pub(super) fn floats(&self, name: &str) -> Vec<f32> {
        self.get(name).map_or_else(Vec::new, |a| a.floats.clone())
    }
    pub(super) fn strings(&self, name: &str) -> Vec<String> {
        self.get(name).map_or_else(Vec::new, |a| {
            a.strings
                .iter()
                .map(|s| String::from_utf8_lossy(s).into_owned())
                .collect()
        })
    }
}

#[derive(Clone)]
pub(super) struct Ctx<'n> {
    pub(super) node: &'n NodeProto,
    pub(super) name: String,
    pub(super) attrs: Attrs<'n>,
    opset: i64,
}

impl Ctx<'_> {
    pub(super) fn unsupported(&self, reason: impl Into<String>) -> Error {
        Error::UnsupportedOp {
            op_type: self.node.op_type.clone(),
            node: self.name.clone(),
            opset: self.opset,
            reason: reason.into(),
        }
    }
    pub(super) fn invalid(&self, reason: impl Into<String>) -> Error {
        Error::invalid(&self.name, reason)
    }
}

/// Normalizes a possibly negative axis for a tensor of `rank`.
fn axis(a: i64, rank: usize, c: &Ctx) -> Result<usize> {
    let r = rank as i64;
    let v = if a < 0 { a + r } else { a };
    if (0..r).contains(&v) {
        Ok(v as usize)
    } else {
        Err(c.invalid(format!("axis {a} out of range for rank {rank}")))
    }
}

fn to_usizes(v: &[i64], c: &Ctx, what: &str) -> Result<Vec<usize>> {
    v.iter()
        .map(|&x| usize::try_from(x).map_err(|_| c.invalid(format!("negative {what} {x}"))))
        .collect()
}

fn pair(v: &[usize], c: &Ctx, what: &str) -> Result<[usize; 2]> {
    match v {
        [a, b] => Ok([*a, *b]),
        _ => Err(c.unsupported(format!("only 2-D {what} ({} given)", v.len()))),
    }
}

/// The sliding-window attributes shared by Conv, ConvTranspose and pooling.
struct Window {
    kernel: [usize; 2],
    strides: [usize; 2],
    dilations: [usize; 2],
    /// top, left, bottom, right
    pads: [usize; 4],
    auto_pad: String,
}

impl Window {
    /// Reads the attributes of a window over `spatial` (1 or 2) axes;
    /// `kernel` is the default kernel_shape (from the weights, 2-D). A 1-D
    /// window becomes a 2-D one of height 1 (see [`Lift1d`]).
    fn parse(c: &Ctx, kernel: Option<Vec<i64>>, spatial: usize) -> Result<Window> {
        let ints = |name: &str, default: i64| -> Result<[usize; 2]> {
            let v = c.attrs.ints(name).unwrap_or(vec![default; spatial]);
            pair(&lift_1d(to_usizes(&v, c, name)?, spatial, 1), c, name)
        };
        let kernel = match c.attrs.ints("kernel_shape") {
            Some(k) => lift_1d(to_usizes(&k, c, "kernel")?, spatial, 1),
            None => to_usizes(
                &kernel.ok_or_else(|| c.invalid("no kernel_shape"))?,
                c,
                "kernel",
            )?,
        };
        let pads = to_usizes(
            &c.attrs.ints("pads").unwrap_or(vec![0; 2 * spatial]),
            c,
            "pad",
        )?;
        let pads = match (spatial, &pads[..]) {
            (1, &[begin, end]) => [0, begin, 0, end],
            (2, &[t, l, b, r]) => [t, l, b, r],
            _ => return Err(c.invalid(format!("pads must have {} values", 2 * spatial))),
        };
        Ok(Window {
            kernel: pair(&kernel, c, "kernel")?,
            strides: ints("strides", 1)?,
            dilations: ints("dilations", 1)?,
            pads,
            auto_pad: c.attrs.string("auto_pad", "NOTSET"),
        })
    }

    /// SAME_UPPER / SAME_LOWER / VALID padding of a forward window over `xs` (NCHW).
    fn apply_auto_pad(&mut self, xs: &[usize]) {
        match self.auto_pad.as_str() {
            "SAME_UPPER" | "SAME_LOWER" => {
                for a in 0..2 {
                    let out = xs[2 + a].div_ceil(self.strides[a].max(1));
                    let need = (out.max(1) - 1) * self.strides[a]
                        + (self.kernel[a].max(1) - 1) * self.dilations[a]
                        + 1;
                    let total = need.saturating_sub(xs[2 + a]);
                    let small = total / 2;
                    let (head, tail) = if self.auto_pad == "SAME_UPPER" {
                        (small, total - small)
                    } else {
                        (total - small, small)
                    };
                    self.pads[a] = head;
                    self.pads[a + 2] = tail;
                }
            }
            "VALID" => self.pads = [0; 4],
            _ => {}
        }
    }
}

/// A 1-D attribute (`spatial` is 1) as its 2-D form: `fill` for the unit
/// height axis, then the value.
fn lift_1d(mut v: Vec<usize>, spatial: usize, fill: usize) -> Vec<usize> {
    if spatial == 1 {
        v.insert(0, fill);
    }
    v
}

/// A 1-D Conv, ConvTranspose or pooling (input `[N, C, L]`) run as 2-D over
/// `[N, C, 1, L]`: its tensors get a unit height axis on the way in and
/// lose it on the way out, and its window attributes one of length 1
/// ([`Window::parse`]).
struct Lift1d;

impl Lift1d {
    /// `v` with a unit axis inserted at 2 (a 3-D tensor), or as it is.
    fn input(imp: &mut Importer, c: &Ctx, v: ValueId) -> Result<ValueId> {
        let s = imp.info(v).shape.clone();
        if s.len() != 3 {
            return Ok(v);
        }
        let shape = vec![s[0], s[1], 1, s[2]];
        imp.add_tmp(&c.name, Op::Reshape { shape }, vec![v])
    }

    /// Runs `op` on the lifted `ins` and binds the node's output: without
    /// the unit axis when the node's input was 3-D.
    fn run(imp: &mut Importer, io: &NodeIo, op: Op, ins: Vec<ValueId>, lifted: bool) -> Result<()> {
        if !lifted {
            return io.simple(imp, op, ins);
        }
        let y = imp.add_tmp(&io.c.name, op, ins)?;
        let s = imp.info(y).shape.clone();
        io.simple(
            imp,
            Op::Reshape {
                shape: vec![s[0], s[1], s[3]],
            },
            vec![y],
        )
    }
}

/// The geometry of a forward 2-D convolution of input `xs` by weights `ws`
/// (both NCHW-shaped, a 1-D one lifted: `spatial` 1), auto padding resolved.
pub(super) fn conv_geometry(
    c: &Ctx,
    xs: &[usize],
    ws: &[usize],
    spatial: usize,
) -> Result<ConvGeometry> {
    let mut win = Window::parse(
        c,
        Some(ws[2..].iter().map(|&d| d as i64).collect()),
        spatial,
    )?;
    win.apply_auto_pad(xs);
    Ok(ConvGeometry {
        kernel: win.kernel,
        strides: win.strides,
        dilations: win.dilations,
        pads: win.pads,
        groups: usize::try_from(c.attrs.int("group", 1)).map_err(|_| c.invalid("bad group"))?,
    })
}

/// How Resize's `sizes` keep the aspect ratio of the axes they name.
#[derive(Clone, Copy, PartialEq)]
enum AspectPolicy {
    Stretch,
    NotLarger,
    NotSmaller,
}

/// What a Resize asks for: scales or sizes of `axes` (all axes unless the
/// `axes` attribute names some), and how sizes keep the aspect ratio.
struct ResizeTarget<'a> {
    axes: &'a [usize],
    scales: Option<Vec<f32>>,
    sizes: Option<Vec<i64>>,
    keep: AspectPolicy,
}

impl ResizeTarget<'_> {
    /// The output shape and each axis's scale for input `shape`; axes not
    /// named keep their length and a scale of 1.
    fn resolve(self, shape: &[usize], c: &Ctx) -> Result<(Vec<usize>, Vec<f32>)> {
        let mut out = shape.to_vec();
        let mut scales = vec![1.0f32; shape.len()];
        match (self.scales, self.sizes) {
            (_, Some(sizes)) => {
                let sizes = to_usizes(&sizes, c, "size")?;
                if sizes.len() != self.axes.len() {
                    return Err(c.invalid("sizes rank"));
                }
                let ratio = |k: usize| sizes[k] as f32 / shape[self.axes[k]].max(1) as f32;
                let ratios = (0..sizes.len()).map(ratio);
                let kept = match self.keep {
                    AspectPolicy::Stretch => None,
                    AspectPolicy::NotLarger => ratios.clone().reduce(f32::min),
                    AspectPolicy::NotSmaller => ratios.clone().reduce(f32::max),
                };
                for (k, &a) in self.axes.iter().enumerate() {
                    (out[a], scales[a]) = match kept {
                        // ONNX rounds half up here.
                        Some(s) => ((s * shape[a] as f32 + 0.5).floor() as usize, s),
                        None => (sizes[k], ratio(k)),
                    };
                }
            }
            (Some(given), None) => {
                let bad = given.iter().any(|&s| s <= 0.0 || !s.is_finite());
                if given.len() != self.axes.len() || bad {
                    return Err(c.invalid(format!("bad scales {given:?}")));
                }
                for (&a, &s) in self.axes.iter().zip(&given) {
                    (out[a], scales[a]) = ((shape[a] as f32 * s).floor() as usize, s);
                }
            }
            (None, None) => return Err(c.invalid("neither scales nor sizes")),
        }
        Ok((out, scales))
    }
}

/// Einsum's `equation` for operands of `ranks` as dense labels: each
/// operand's, then the output's (implicit: the ellipsis, then the letters
/// used once, alphabetically). An ellipsis becomes labels of its own,
/// aligned from the right across operands as they broadcast.
fn einsum_labels(equation: &str, ranks: &[usize]) -> Option<(Vec<Vec<u8>>, Vec<u8>)> {
    let equation: String = equation.chars().filter(|c| !c.is_whitespace()).collect();
    let (lhs, rhs) = match equation.split_once("->") {
        Some((l, r)) => (l, Some(r)),
        None => (equation.as_str(), None),
    };
    let terms: Vec<&str> = lhs.split(',').collect();
    if terms.len() != ranks.len() {
        return None;
    }
    let letters = |t: &str| -> Option<Vec<u8>> {
        t.bytes()
            .map(|b| b.is_ascii_alphabetic().then_some(b))
            .collect()
    };
    // Each term's letters before and after its ellipsis, if it has one.
    let split = |t: &str| -> Option<(Vec<u8>, Option<Vec<u8>>)> {
        match t.split_once("...") {
            Some((a, b)) => Some((letters(a)?, Some(letters(b)?))),
            None => Some((letters(t)?, None)),
        }
    };
    let parts: Vec<(Vec<u8>, Option<Vec<u8>>)> =
        terms.iter().map(|t| split(t)).collect::<Option<_>>()?;
    let ellipsis_ranks: Vec<usize> = parts
        .iter()
        .zip(ranks)
        .map(|((a, b), &r)| match b {
            Some(b) => r.checked_sub(a.len() + b.len()),
            None => (a.len() == r).then_some(0),
        })
        .collect::<Option<_>>()?;
    let widest = ellipsis_ranks.iter().copied().max().unwrap_or(0);
    // Letters are labels 0..52, the ellipsis's axes 52...
    let label = |b: u8| {
        if b.is_ascii_lowercase() {
            b - b'a'
        } else {
            b - b'A' + 26
        }
    };
    let ellipsis = |rank: usize| (52 + widest - rank..52 + widest).map(|l| l as u8);
    let expand = |(a, b): &(Vec<u8>, Option<Vec<u8>>), rank: usize| -> Vec<u8> {
        let mut labels: Vec<u8> = a.iter().map(|&b| label(b)).collect();
        if let Some(b) = b {
            labels.extend(ellipsis(rank));
            labels.extend(b.iter().map(|&b| label(b)));
        }
        labels
    };
    let labelled: Vec<Vec<u8>> = parts
        .iter()
        .zip(&ellipsis_ranks)
        .map(|(p, &r)| expand(p, r))
        .collect();
    let output = match rhs {
        Some(r) => expand(&split(r)?, widest),
        None => {
            let all: Vec<u8> = parts
                .iter()
                .flat_map(|(a, b)| a.iter().chain(b.iter().flatten()))
                .copied()
                .collect();
            let mut once: Vec<u8> = all
                .iter()
                .copied()
                .filter(|l| all.iter().filter(|m| *m == l).count() == 1)
                .collect();
            once.sort_unstable();
            ellipsis(widest)
                .chain(once.into_iter().map(label))
                .collect()
        }
    };
    let used = |l: &u8| labelled.iter().flatten().any(|m| m == l);
    let unique = output
        .iter()
        .enumerate()
        .all(|(i, l)| !output[..i].contains(l));
    // Labels dense from 0, in order of first use.
    let mut dense: Vec<u8> = Vec::new();
    for &l in labelled.iter().flatten() {
        if !dense.contains(&l) {
            dense.push(l);
        }
    }
    let rename = |l: u8| dense.iter().position(|&m| m == l).map(|p| p as u8);
    (output.iter().all(used) && unique).then_some(())?;
    let terms = labelled
        .iter()
        .map(|t| t.iter().map(|&l| rename(l)).collect::<Option<Vec<u8>>>())
        .collect::<Option<Vec<_>>>()?;
    let output = output
        .iter()
        .map(|&l| rename(l))
        .collect::<Option<Vec<u8>>>()?;
    Some((terms, output))
}

/// A scalar operand: fixed at import, or a value read at run time.
enum Scalar {
    Known(i64),
    AtRunTime(ValueId),
}

/// Ops whose kernels also handle i64 data (movement, shape arithmetic).
fn generic_over_dtype(op: &Op) -> bool {
    matches!(
        op,
        Op::Binary(_)
            | Op::Unary(UnaryOp::Neg | UnaryOp::Abs | UnaryOp::Sign)
            | Op::Concat { .. }
            | Op::Split { .. }
            | Op::Slice { .. }
            | Op::Transpose { .. }
            | Op::Reshape { .. }
            | Op::Gather { .. }
            | Op::GatherElements { .. }
            | Op::GatherNd { .. }
            | Op::OneHot { .. }
            | Op::BitShift { .. }
            | Op::Expand { .. }
            | Op::Tile { .. }
            | Op::Trilu { .. }
            | Op::CumSum { .. }
            | Op::Cast { .. }
            | Op::Identity
            | Op::Compare(_)
            | Op::Bitwise(_)
            | Op::Where
    )
}

/// The operands of `v == 0`, a zero of `v`'s type beside it: on ONNX
/// bools (i64 0/1 here) that comparison is a logical Not.
fn equal_zero(imp: &mut Importer, c: &Ctx, v: ValueId) -> Result<Vec<ValueId>> {
    let zero = match imp.info(v).dtype {
        DType::F32 => Tensor::from_f32(vec![], vec![0.0])?,
        _ => Tensor::from_i64(vec![], vec![0])?,
    };
    Ok(vec![v, imp.add_constant(&c.name, zero)])
}

/// Resize and Upsample: the mode, the coordinate transform, and scales or
/// sizes of every axis or of the `axes` named.
fn resize(imp: &mut Importer, io: &NodeIo) -> Result<()> {
    let c = &io.c;
    let node = io.c.node;
    let shape = io.shape0(imp)?;
    let r = shape.len();
    let mode_name = c.attrs.string("mode", "nearest");
    let legacy = node.op_type == "Upsample" || c.opset < 11;
    let coord_name = if legacy {
        "asymmetric".to_string()
    } else {
        c.attrs
            .string("coordinate_transformation_mode", "half_pixel")
    };
    let coord = match coord_name.as_str() {
        "half_pixel" => CoordTransform::HalfPixel,
        "pytorch_half_pixel" => CoordTransform::PytorchHalfPixel,
        "align_corners" => CoordTransform::AlignCorners,
        "asymmetric" => CoordTransform::Asymmetric,
        "tf_half_pixel_for_nearest" => CoordTransform::TfHalfPixelForNearest,
        "half_pixel_symmetric" => CoordTransform::HalfPixelSymmetric,
        "tf_crop_and_resize" => CoordTransform::TfCropAndResize,
        m => return Err(c.unsupported(format!("coordinate_transformation_mode {m}"))),
    };
    let mode = match mode_name.as_str() {
        "nearest" => ResizeMode::Nearest(if legacy {
            NearestMode::Floor
        } else {
            match c
                .attrs
                .string("nearest_mode", "round_prefer_floor")
                .as_str()
            {
                "round_prefer_floor" => NearestMode::RoundPreferFloor,
                "round_prefer_ceil" => NearestMode::RoundPreferCeil,
                "floor" => NearestMode::Floor,
                "ceil" => NearestMode::Ceil,
                m => return Err(c.unsupported(format!("nearest_mode {m}"))),
            }
        }),
        "linear" | "bilinear" | "cubic" | "bicubic" => {
            let antialias = c.attrs.int("antialias", 0) != 0;
            let exclude_outside = c.attrs.int("exclude_outside", 0) != 0;
            match mode_name.as_str() {
                "linear" | "bilinear" if !antialias => ResizeMode::Linear,
                "linear" | "bilinear" => ResizeMode::LinearAntialias { exclude_outside },
                _ => ResizeMode::Cubic {
                    a: c.attrs.float("cubic_coeff_a", -0.75),
                    exclude_outside,
                    antialias,
                },
            }
        }
        m => return Err(c.unsupported(format!("mode {m}"))),
    };
    let axes = match c.attrs.ints("axes") {
        Some(a) => a
            .iter()
            .map(|&a| axis(a, r, c))
            .collect::<Result<Vec<_>>>()?,
        None => (0..r).collect(),
    };
    let keep = match c
        .attrs
        .string("keep_aspect_ratio_policy", "stretch")
        .as_str()
    {
        "stretch" => AspectPolicy::Stretch,
        "not_larger" => AspectPolicy::NotLarger,
        "not_smaller" => AspectPolicy::NotSmaller,
        k => return Err(c.unsupported(format!("keep_aspect_ratio_policy {k}"))),
    };
    let (scales_in, sizes_in) = if node.op_type == "Upsample" && c.opset < 9 {
        (c.attrs.get("scales").map(|a| a.floats.clone()), None)
    } else if legacy {
        (Some(io.const_floats(imp, 1, "scales")?), None)
    } else {
        let sc = io
            .const_floats_opt(imp, 2, "scales")?
            .filter(|v| !v.is_empty());
        (
            sc,
            io.const_ints(imp, 3, "sizes")?.filter(|v| !v.is_empty()),
        )
    };
    let target = ResizeTarget {
        axes: &axes,
        scales: scales_in,
        sizes: sizes_in,
        keep,
    };
    let (out_shape, scales) = target.resolve(&shape, c)?;
    crate::ir::checked_numel(&out_shape, &c.name)?;
    if out_shape.contains(&0) {
        return Err(c.invalid("empty resize output"));
    }
    let mut operands = vec![io.req(0)?];
    if coord == CoordTransform::TfCropAndResize {
        let roi = crop_roi(imp, io, &axes, r)?;
        operands.push(imp.add_constant(&c.name, roi));
    }
    let op = Op::Resize {
        mode,
        coord,
        out_shape,
        scales,
    };
    io.simple(imp, op, operands)
}

/// tf_crop_and_resize's region of interest as the op's second input: the
/// starts of every axis (0 for an axis not in `axes`), the ends (1), then
/// the `extrapolation_value`. ONNX's roi holds starts then ends of `axes`.
fn crop_roi(imp: &Importer, io: &NodeIo, axes: &[usize], rank: usize) -> Result<Tensor> {
    let c = &io.c;
    let given = io.const_floats_opt(imp, 1, "roi")?.unwrap_or_default();
    if given.len() != 2 * axes.len() {
        return Err(c.invalid(format!(
            "tf_crop_and_resize needs a roi of {} values, got {}",
            2 * axes.len(),
            given.len()
        )));
    }
    let mut roi = vec![0.0; 2 * rank + 1];
    roi[rank..2 * rank].fill(1.0);
    for (i, &a) in axes.iter().enumerate() {
        roi[a] = given[i];
        roi[rank + a] = given[axes.len() + i];
    }
    roi[2 * rank] = c.attrs.float("extrapolation_value", 0.0);
    Tensor::from_f32(vec![2 * rank + 1], roi)
}

/// NonMaxSuppression: its limit and thresholds (inputs 2 to 4, each
/// optional) must be known at load. Absent, they are ONNX's defaults: a
/// limit of 0 (no box kept), an IoU threshold of 0, no score threshold.
fn non_max_suppression(imp: &mut Importer, io: &NodeIo) -> Result<()> {
    let c = &io.c;
    let scalar = |i: usize, what: &str| -> Result<Option<f32>> {
        Ok(io
            .const_floats_opt(imp, i, what)?
            .and_then(|v| v.first().copied()))
    };
    let limit = io
        .const_ints(imp, 2, "max_output_boxes_per_class")?
        .and_then(|v| v.first().copied())
        .unwrap_or(0);
    let iou_threshold = scalar(3, "iou_threshold")?.unwrap_or(0.0);
    if !(0.0..=1.0).contains(&iou_threshold) {
        return Err(c.invalid(format!("iou_threshold {iou_threshold} outside [0, 1]")));
    }
    let score_threshold = scalar(4, "score_threshold")?;
    let nms = Nms {
        centre_point_box: c.attrs.int("center_point_box", 0) != 0,
        // A negative limit keeps nothing, as a zero one; one past usize
        // (i64::MAX on 32-bit targets, as torchvision exports) everything.
        max_per_class: usize::try_from(limit.max(0)).unwrap_or(usize::MAX),
        iou_threshold,
        score_threshold,
    };
    io.simple(
        imp,
        Op::NonMaxSuppression(nms),
        vec![io.req(0)?, io.req(1)?],
    )
}

/// TopK with `k` from the attribute (before opset 10) or the second input.
fn top_k(imp: &mut Importer, io: &NodeIo) -> Result<()> {
    let c = &io.c;
    let outs = &io.outs;
    let r = io.shape0(imp)?.len();
    let k = match c.opset {
        ..10 => c.attrs.int("k", -1),
        _ => io
            .const_ints(imp, 1, "k")?
            .and_then(|k| k.first().copied())
            .unwrap_or(-1),
    };
    let op = Op::TopK {
        axis: axis(c.attrs.int("axis", -1), r, c)?,
        k: usize::try_from(k).map_err(|_| c.invalid(format!("k {k}")))?,
        largest: c.attrs.int("largest", 1) != 0,
    };
    imp.add(&c.name, op, vec![io.req(0)?], outs).map(|_| ())
}

/// GatherND with its `batch_dims`.
fn gather_nd(imp: &mut Importer, io: &NodeIo) -> Result<()> {
    let c = &io.c;
    let batch_dims = c.attrs.int("batch_dims", 0);
    let batch_dims =
        usize::try_from(batch_dims).map_err(|_| c.invalid(format!("batch_dims {batch_dims}")))?;
    io.simple(
        imp,
        Op::GatherNd { batch_dims },
        vec![io.req(0)?, io.req(1)?],
    )
}

/// OneHot: the depth an input known at import, the values the third input.
fn one_hot(imp: &mut Importer, io: &NodeIo) -> Result<()> {
    let c = &io.c;
    let r = io.shape0(imp)?.len();
    let depth = io
        .const_ints(imp, 1, "depth")?
        .and_then(|d| d.first().copied())
        .ok_or_else(|| c.invalid("no depth"))?;
    let op = Op::OneHot {
        axis: axis(c.attrs.int("axis", -1), r + 1, c)?,
        depth: usize::try_from(depth)
            .ok()
            .filter(|&d| d > 0)
            .ok_or_else(|| c.invalid(format!("depth {depth}")))?,
    };
    io.simple(imp, op, vec![io.req(0)?, io.req(2)?])
}

/// BitShift of an input the file declares unsigned, its width from that type.
fn bit_shift(imp: &mut Importer, io: &NodeIo) -> Result<()> {
    let c = &io.c;
    let left = match c.attrs.string("direction", "").as_str() {
        "LEFT" => true,
        "RIGHT" => false,
        d => return Err(c.invalid(format!("direction {d:?}"))),
    };
    use super::tensor::elem;
    let x = io.req(0)?;
    let width = match imp.file_type(x) {
        Some(elem::UINT8) => 8,
        Some(elem::UINT16) => 16,
        Some(elem::UINT32) => 32,
        Some(elem::UINT64) => 64,
        _ => {
            return Err(c.unsupported(
                "BitShift of a tensor not declared unsigned in the file (its width is unknown)",
            ))
        }
    };
    io.simple(imp, Op::BitShift { left, width }, vec![x, io.req(1)?])
}

/// Not of every bit: a Xor with all of the type's bits set (i64's -1
/// flips a signed value of any width alike).
fn bitwise_not(imp: &mut Importer, io: &NodeIo) -> Result<()> {
    let c = &io.c;
    use super::tensor::elem;
    let x = io.req(0)?;
    let ones = match imp.file_type(x) {
        Some(elem::UINT8) => 0xff,
        Some(elem::UINT16) => 0xffff,
        Some(elem::UINT32) => 0xffff_ffff,
        Some(elem::UINT64 | elem::INT8 | elem::INT16 | elem::INT32 | elem::INT64) => -1,
        _ => {
            return Err(c.unsupported(
                "BitwiseNot of a tensor whose integer type the file does not declare",
            ))
        }
    };
    let ones = imp.add_constant(&c.name, Tensor::from_i64(vec![], vec![ones])?);
    io.simple(imp, Op::Bitwise(BitwiseOp::Xor), vec![x, ones])
}

/// Einsum, its equation turned into dense labels ([`einsum_labels`]).
fn einsum(imp: &mut Importer, io: &NodeIo) -> Result<()> {
    let c = &io.c;
    let inputs = &io.inputs;
    let ins: Vec<ValueId> = (0..inputs.len())
        .map(|i| io.req(i))
        .collect::<Result<_>>()?;
    let ranks: Vec<usize> = ins.iter().map(|&v| imp.info(v).shape.len()).collect();
    let equation = c.attrs.string("equation", "");
    let (terms, output) = einsum_labels(&equation, &ranks)
        .ok_or_else(|| c.invalid(format!("einsum equation {equation:?}")))?;
    io.simple(imp, Op::Einsum { terms, output }, ins)
}

/// Slice: starts, ends, axes and steps from attributes (before opset 10) or
/// inputs known at import.
fn slice(imp: &mut Importer, io: &NodeIo) -> Result<()> {
    let c = &io.c;
    let shape = io.shape0(imp)?;
    let r = shape.len();
    let (starts, ends, axes, steps) = if c.opset < 10 {
        (
            c.attrs.ints("starts"),
            c.attrs.ints("ends"),
            c.attrs.ints("axes"),
            None,
        )
    } else {
        (
            io.const_ints(imp, 1, "starts")?,
            io.const_ints(imp, 2, "ends")?,
            io.const_ints(imp, 3, "axes")?,
            io.const_ints(imp, 4, "steps")?,
        )
    };
    let (starts, ends) = (
        starts.ok_or_else(|| c.invalid("no starts"))?,
        ends.ok_or_else(|| c.invalid("no ends"))?,
    );
    let axes = axes.unwrap_or((0..starts.len() as i64).collect());
    let steps = steps.unwrap_or(vec![1; starts.len()]);
    if ends.len() != starts.len() || axes.len() != starts.len() || steps.len() != starts.len() {
        return Err(c.invalid("starts, ends, axes and steps differ in length"));
    }
    let mut slices: Vec<AxisSlice> = shape
        .iter()
        .map(|&d| AxisSlice {
            start: 0,
            step: 1,
            len: d,
        })
        .collect();
    for i in 0..starts.len() {
        let a = axis(axes[i], r, c)?;
        let dim = shape[a] as i64;
        let step = steps[i];
        if step == 0 {
            return Err(c.invalid("slice step 0"));
        }
        let norm = |v: i64| if v < 0 { v.saturating_add(dim) } else { v };
        // Lengths in i128: steps and bounds may be anywhere in i64.
        let len: i128 = if dim == 0 {
            0
        } else if step > 0 {
            let (s, e) = (
                norm(starts[i]).clamp(0, dim) as i128,
                norm(ends[i]).clamp(0, dim) as i128,
            );
            if e > s {
                (e - s + step as i128 - 1) / step as i128
            } else {
                0
            }
        } else {
            let (s, e) = (
                norm(starts[i]).clamp(0, dim - 1) as i128,
                norm(ends[i]).clamp(-1, dim - 1) as i128,
            );
            if s > e {
                (s - e - step as i128 - 1) / -(step as i128)
            } else {
                0
            }
        };
        let start = if step > 0 {
            norm(starts[i]).clamp(0, dim)
        } else {
            norm(starts[i]).clamp(0, (dim - 1).max(0))
        };
        slices[a] = AxisSlice {
            start: if len == 0 { 0 } else { start as usize },
            step: isize::try_from(step).map_err(|_| c.invalid("slice step out of range"))?,
            len: len as usize,
        };
    }
    io.simple(imp, Op::Slice { axes: slices }, vec![io.req(0)?])
}

/// Conv and ConvTranspose of 2-D maps (NCHW): groups, dilations, auto_pad,
/// and for ConvTranspose output padding and output shape.
fn conv(imp: &mut Importer, io: &NodeIo) -> Result<()> {
    let c = &io.c;
    let inputs = &io.inputs;
    let node = io.c.node;
    let (x, w) = (io.req(0)?, io.req(1)?);
    let rank = imp.info(x).shape.len();
    let spatial = rank.saturating_sub(2);
    if !(1..=2).contains(&spatial) || imp.info(w).shape.len() != rank {
        return Err(c.unsupported(format!("only 1-D and 2-D convolution (input rank {rank})")));
    }
    let (x, w) = (Lift1d::input(imp, c, x)?, Lift1d::input(imp, c, w)?);
    let (xs, ws) = (imp.info(x).shape.clone(), imp.info(w).shape.clone());
    let mut win = Window::parse(
        c,
        Some(ws[2..].iter().map(|&d| d as i64).collect()),
        spatial,
    )?;
    let groups = usize::try_from(c.attrs.int("group", 1)).map_err(|_| c.invalid("bad group"))?;
    let transposed = node.op_type == "ConvTranspose";
    let mut output_padding = [0usize; 2];
    if transposed {
        let padding = c.attrs.ints("output_padding").unwrap_or(vec![0; spatial]);
        let padding = lift_1d(to_usizes(&padding, c, "output_padding")?, spatial, 0);
        output_padding = pair(&padding, c, "output_padding")?;
        let out_shape = c.attrs.ints("output_shape").map(|mut o| {
            if spatial == 1 {
                o.insert(o.len().saturating_sub(1), 1);
            }
            o
        });
        if out_shape.is_some() || win.auto_pad.starts_with("SAME") {
            for a in 0..2 {
                let full = xs[2 + a].saturating_sub(1) * win.strides[a]
                    + output_padding[a]
                    + win.kernel[a].saturating_sub(1) * win.dilations[a]
                    + 1;
                let target = match &out_shape {
                    Some(o) => *o
                        .get(o.len().wrapping_sub(2) + a)
                        .ok_or_else(|| c.invalid("bad output_shape"))?
                        as usize,
                    None => xs[2 + a] * win.strides[a],
                };
                let total = full
                    .checked_sub(target)
                    .ok_or_else(|| c.unsupported("output_shape larger than the full output"))?;
                // As ONNX's reference (backend test data): SAME_UPPER puts the odd pad last.
                let (head, tail) = if win.auto_pad == "SAME_UPPER" {
                    (total / 2, total - total / 2)
                } else {
                    (total - total / 2, total / 2)
                };
                win.pads[a] = head;
                win.pads[a + 2] = tail;
            }
        } else if win.auto_pad == "VALID" {
            win.pads = [0; 4];
        }
    }
    let geometry = if transposed {
        ConvGeometry {
            kernel: win.kernel,
            strides: win.strides,
            dilations: win.dilations,
            pads: win.pads,
            groups,
        }
    } else {
        conv_geometry(c, &xs, &ws, spatial)?
    };
    let mut ins = vec![x, w];
    if let Some(b) = inputs.get(2).copied().flatten() {
        ins.push(b);
    }
    let op = if transposed {
        Op::ConvTranspose {
            geometry,
            output_padding,
            activation: None,
        }
    } else {
        Op::Conv {
            geometry,
            activation: None,
        }
    };
    Lift1d::run(imp, io, op, ins, spatial == 1)
}

/// The arithmetic ops, the variadic ones (Sum, Mean, Max, Min) as a chain
/// of binary ones, with legacy broadcast.
fn arithmetic(imp: &mut Importer, io: &NodeIo) -> Result<()> {
    let c = &io.c;
    let inputs = &io.inputs;
    let node = io.c.node;
    let op = match node.op_type.as_str() {
        "Add" | "Sum" | "Mean" => BinaryOp::Add,
        "Sub" => BinaryOp::Sub,
        "Mul" => BinaryOp::Mul,
        "Div" => BinaryOp::Div,
        "Pow" => BinaryOp::Pow,
        "Max" => BinaryOp::Max,
        _ => BinaryOp::Min,
    };
    let ins: Vec<ValueId> = inputs
        .iter()
        .map(|i| i.ok_or_else(|| c.invalid("absent operand")))
        .collect::<Result<_>>()?;
    if ins.is_empty() {
        return Err(c.invalid("no operands"));
    }
    let mut ins = ins;
    if c.opset < 7 && c.attrs.int("broadcast", 0) == 1 && ins.len() == 2 {
        // Legacy broadcast: B aligns to A starting at `axis`.
        let (ra, b_shape) = (imp.info(ins[0]).shape.len(), imp.info(ins[1]).shape.clone());
        let start = match c.attrs.get("axis") {
            Some(a) => axis(a.i, ra, c)?,
            None => ra
                .checked_sub(b_shape.len())
                .ok_or_else(|| c.invalid("broadcast operand of higher rank"))?,
        };
        let mut shape = b_shape;
        shape.resize(ra - start, 1);
        ins[1] = imp.add_tmp(&c.name, Op::Reshape { shape }, vec![ins[1]])?;
    }
    if ins.len() == 1 {
        return io.simple(imp, Op::Identity, ins);
    }
    if op == BinaryOp::Pow && ins.len() == 2 && imp.info(ins[0]).dtype != imp.info(ins[1]).dtype {
        // Pow keeps the base's type; the exponent is converted.
        let to = imp.info(ins[0]).dtype;
        ins[1] = imp.add_tmp(&c.name, Op::Cast { to }, vec![ins[1]])?;
    }
    // All but the last operand fold into temporaries; the last
    // step writes the node's output (for Mean, the sum ÷ count).
    let (&last, rest) = ins.split_last().ok_or_else(|| c.invalid("no operands"))?;
    let mut acc = rest[0];
    for &v in &rest[1..] {
        acc = imp.add_tmp(&c.name, Op::Binary(op), vec![acc, v])?;
    }
    if node.op_type == "Mean" {
        let sum = imp.add_tmp(&c.name, Op::Binary(op), vec![acc, last])?;
        let count = Tensor::from_f32(vec![], vec![ins.len() as f32])?;
        let count = imp.add_constant(&c.name, count);
        return io.simple(imp, Op::Binary(BinaryOp::Div), vec![sum, count]);
    }
    io.simple(imp, Op::Binary(op), vec![acc, last])
}

/// Range of bounds known at import, folded to a constant.
/// Range's start, limit and delta: the first value of each, as `values`
/// reads a tensor.
fn range_bounds<T: Copy>(
    bounds: [&Tensor; 3],
    values: impl Fn(&Tensor) -> Vec<T>,
    c: &Ctx,
) -> Result<(T, T, T)> {
    let first = |t: &Tensor| {
        values(t)
            .first()
            .copied()
            .ok_or_else(|| c.invalid("empty Range operand"))
    };
    Ok((first(bounds[0])?, first(bounds[1])?, first(bounds[2])?))
}

fn range(imp: &mut Importer, io: &NodeIo) -> Result<()> {
    let c = &io.c;
    let inputs = &io.inputs;
    let (Some(s), Some(l), Some(d)) = (
        io.const_of(imp, 0),
        io.const_of(imp, 1),
        io.const_of(imp, 2),
    ) else {
        let computed = (0..3).find_map(|i| {
            let v = inputs.get(i).copied().flatten()?;
            imp.constant(v).is_none().then_some(v)
        });
        return Err(match computed {
            Some(v) => imp.not_constant(c, v, "a Range bound"),
            None => c.invalid("Range needs start, limit and delta"),
        });
    };
    let bounds = [&s, &l, &d];
    let t = if s.dtype() == DType::F32 {
        let (s, l, d) = range_bounds(bounds, Tensor::to_f32_vec, c)?;
        let n = ((l - s) / d).ceil().max(0.0).min(u32::MAX as f32) as usize;
        crate::ir::checked_numel(&[n], &c.name)?;
        imp.reserve(n, &c.name)?;
        Tensor::from_f32(vec![n], (0..n).map(|i| s + i as f32 * d).collect())?
    } else {
        let (s, l, d) = range_bounds(bounds, Tensor::to_i64_vec, c)?;
        if d == 0 {
            return Err(c.invalid("Range delta 0"));
        }
        let n = ((l as f64 - s as f64) / d as f64)
            .ceil()
            .max(0.0)
            .min(u32::MAX as f64) as usize;
        crate::ir::checked_numel(&[n], &c.name)?;
        imp.reserve(n, &c.name)?;
        Tensor::from_i64(vec![n], (0..n as i64).map(|i| s + i * d).collect())?
    };
    imp.bind_constant(&io.first_out()?, t);
    Ok(())
}

/// Pad: pads and value from attributes (before opset 11) or inputs known at
/// import; any mode.
fn pad(imp: &mut Importer, io: &NodeIo) -> Result<()> {
    let c = &io.c;
    let inputs = &io.inputs;
    let shape = io.shape0(imp)?;
    let r = shape.len();
    let (raw, value) = if c.opset < 11 {
        (
            c.attrs.ints("pads").or(c.attrs.ints("paddings")),
            c.attrs.float("value", 0.0),
        )
    } else {
        let v = match io.const_of(imp, 2) {
            Some(t) => t.to_f32_vec().first().copied().unwrap_or(0.0),
            None => match inputs.get(2).copied().flatten() {
                Some(v) => return Err(imp.not_constant(c, v, "the pad value")),
                None => 0.0,
            },
        };
        (io.const_ints(imp, 1, "pads")?, v)
    };
    let raw = raw.ok_or_else(|| c.invalid("no pads"))?;
    let axes: Vec<usize> = match io.const_ints(imp, 3, "axes")? {
        Some(a) if c.opset >= 18 => a.iter().map(|&x| axis(x, r, c)).collect::<Result<_>>()?,
        _ => (0..r).collect(),
    };
    if raw.len() != 2 * axes.len() {
        return Err(c.invalid(format!("{} pads for {} axes", raw.len(), axes.len())));
    }
    let mut pads = vec![(0usize, 0usize); r];
    for (i, &a) in axes.iter().enumerate() {
        let (b, e) = (raw[i], raw[i + axes.len()]);
        if b < 0 || e < 0 {
            return Err(c.unsupported("negative pads"));
        }
        pads[a] = (b as usize, e as usize);
    }
    let mode = match c.attrs.string("mode", "constant").as_str() {
        "constant" => PadMode::Constant,
        "reflect" => PadMode::Reflect,
        "edge" => PadMode::Edge,
        m => return Err(c.unsupported(format!("mode {m}"))),
    };
    if mode == PadMode::Reflect && pads.iter().zip(&shape).any(|(p, &d)| p.0 >= d || p.1 >= d) {
        return Err(c.unsupported("reflect pads as large as the axis"));
    }
    io.simple(imp, Op::Pad { pads, mode, value }, vec![io.req(0)?])
}

/// Reshape to a target known at import (0 copies a dim unless allowzero, -1
/// is inferred).
fn reshape(imp: &mut Importer, io: &NodeIo) -> Result<()> {
    let c = &io.c;
    let shape = io.shape0(imp)?;
    let target = io.ints_moved(imp, 5, "shape", 1)?;
    let target = target.ok_or_else(|| c.invalid("no target shape"))?;
    let allow_zero = c.attrs.int("allowzero", 0) != 0;
    let total: usize = shape.iter().product();
    let mut out = Vec::with_capacity(target.len());
    let mut infer_at = None;
    for (i, &d) in target.iter().enumerate() {
        match d {
            -1 if infer_at.is_none() => {
                infer_at = Some(i);
                out.push(1);
            }
            0 if !allow_zero => out.push(
                *shape
                    .get(i)
                    .ok_or_else(|| c.invalid("0 copies a missing dim"))?,
            ),
            d if d >= 0 => out.push(d as usize),
            _ => return Err(c.invalid(format!("bad target shape {target:?}"))),
        }
    }
    if let Some(i) = infer_at {
        let known: usize = out.iter().product();
        if known == 0 || !total.is_multiple_of(known) {
            return Err(c.invalid(format!("cannot reshape {shape:?} to {target:?}")));
        }
        out[i] = total / known;
    }
    io.simple(imp, Op::Reshape { shape: out }, vec![io.req(0)?])
}

/// DepthToSpace (DCR or CRD) and SpaceToDepth, as a reshape, a transpose
/// and a reshape.
fn depth_space(imp: &mut Importer, io: &NodeIo) -> Result<()> {
    let c = &io.c;
    let node = io.c.node;
    let shape = io.shape0(imp)?;
    let &[n, ch, h, w] = &shape[..] else {
        return Err(c.unsupported(format!("rank {} (4 only)", shape.len())));
    };
    let b = usize::try_from(c.attrs.int("blocksize", 0))
        .ok()
        .filter(|&b| b > 0)
        .ok_or_else(|| c.invalid("blocksize must be positive"))?;
    // ONNX defines both as reshape, transpose, reshape.
    let (view, perm, out) = if node.op_type == "DepthToSpace" {
        if ch % (b * b) != 0 {
            return Err(c.invalid(format!("{ch} channels by blocksize {b}")));
        }
        let co = ch / (b * b);
        let out = vec![n, co, h * b, w * b];
        match c.attrs.string("mode", "DCR").as_str() {
            "DCR" => (vec![n, b, b, co, h, w], vec![0, 3, 4, 1, 5, 2], out),
            "CRD" => (vec![n, co, b, b, h, w], vec![0, 1, 4, 2, 5, 3], out),
            m => return Err(c.unsupported(format!("mode {m:?}"))),
        }
    } else {
        if h % b != 0 || w % b != 0 {
            return Err(c.invalid(format!("{h}x{w} by blocksize {b}")));
        }
        let view = vec![n, ch, h / b, b, w / b, b];
        (
            view,
            vec![0, 3, 5, 1, 2, 4],
            vec![n, ch * b * b, h / b, w / b],
        )
    };
    let viewed = imp.add_tmp(&c.name, Op::Reshape { shape: view }, vec![io.req(0)?])?;
    let moved = imp.add_tmp(&c.name, Op::Transpose { perm }, vec![viewed])?;
    io.simple(imp, Op::Reshape { shape: out }, vec![moved])
}

/// Clip with bounds from attributes (before opset 11) or inputs: known at
/// import, an activation; computed, a Max then a Min.
fn clip(imp: &mut Importer, io: &NodeIo) -> Result<()> {
    let c = &io.c;
    let inputs = &io.inputs;
    let (min, max) = if c.opset < 11 {
        (
            c.attrs.float("min", f32::NEG_INFINITY),
            c.attrs.float("max", f32::INFINITY),
        )
    } else {
        let bound = |i: usize| inputs.get(i).copied().flatten();
        let runtime = |i: usize| bound(i).filter(|&v| imp.constant(v).is_none());
        if runtime(1).is_some() || runtime(2).is_some() {
            // Bounds computed at run time: max(x, min), then min(·, max),
            // which also gives max where min > max, as ONNX says.
            let x = io.req(0)?;
            return match (bound(1), bound(2)) {
                (Some(lo), Some(hi)) => {
                    let y = imp.add_tmp(&c.name, Op::Binary(BinaryOp::Max), vec![x, lo])?;
                    io.simple(imp, Op::Binary(BinaryOp::Min), vec![y, hi])
                }
                (Some(lo), None) => io.simple(imp, Op::Binary(BinaryOp::Max), vec![x, lo]),
                (None, hi) => {
                    let hi = hi.ok_or_else(|| c.invalid("no Clip bound"))?;
                    io.simple(imp, Op::Binary(BinaryOp::Min), vec![x, hi])
                }
            };
        }
        let constant = |i: usize, d: f32| {
            bound(i)
                .and_then(|v| imp.constant(v))
                .map_or(Some(d), |t| t.to_f32_vec().first().copied())
                .ok_or_else(|| c.invalid("an empty Clip bound"))
        };
        (constant(1, f32::NEG_INFINITY)?, constant(2, f32::INFINITY)?)
    };
    io.unary(imp, UnaryOp::Clip { min, max })
}

/// Split into the given parts, or equal ones (`num_outputs` or the output
/// count).
fn split(imp: &mut Importer, io: &NodeIo) -> Result<()> {
    let c = &io.c;
    let outs = &io.outs;
    let shape = io.shape0(imp)?;
    let a = axis(c.attrs.int("axis", 0), shape.len(), c)?;
    let given = io.ints_moved(imp, 13, "split", 1)?;
    let sizes = match given {
        Some(s) => to_usizes(&s, c, "split")?,
        None => {
            let n = c
                .attrs
                .get("num_outputs")
                .map_or(outs.len() as i64, |a| a.i);
            if n != outs.len() as i64 || n == 0 {
                return Err(c.invalid(format!("{n} splits for {} outputs", outs.len())));
            }
            let n = n as usize;
            let chunk = shape[a].div_ceil(n);
            (0..n)
                .map(|i| chunk.min(shape[a].saturating_sub(i * chunk)))
                .collect()
        }
    };
    imp.add(
        &c.name,
        Op::Split { axis: a, sizes },
        vec![io.req(0)?],
        outs,
    )
    .map(|_| ())
}

fn is_inf(imp: &mut Importer, io: &NodeIo) -> Result<()> {
    let c = &io.c;
    let x = io.req(0)?;
    let detect = |a: &str| c.attrs.int(a, 1) != 0;
    let constant = |imp: &mut Importer, v: f32| -> Result<ValueId> {
        Ok(imp.add_constant(&c.name, Tensor::from_f32(vec![], vec![v])?))
    };
    let equal = Op::Compare(CompareOp::Equal);
    match (detect("detect_positive"), detect("detect_negative")) {
        // Detecting neither: all false (x < x never holds).
        (false, false) => io.simple(imp, Op::Compare(CompareOp::Less), vec![x, x]),
        (true, true) => {
            let (p, n) = (
                constant(imp, f32::INFINITY)?,
                constant(imp, f32::NEG_INFINITY)?,
            );
            let pos = imp.add_tmp(&c.name, equal.clone(), vec![x, p])?;
            let neg = imp.add_tmp(&c.name, equal, vec![x, n])?;
            io.simple(imp, Op::Bitwise(BitwiseOp::Or), vec![pos, neg])
        }
        (pos, _) => {
            let v = if pos {
                f32::INFINITY
            } else {
                f32::NEG_INFINITY
            };
            let inf = constant(imp, v)?;
            io.simple(imp, equal, vec![x, inf])
        }
    }
}

/// Unsqueeze at axes from the attribute (before opset 13) or an input known
/// at import.
fn unsqueeze(imp: &mut Importer, io: &NodeIo) -> Result<()> {
    let c = &io.c;
    let shape = io.shape0(imp)?;
    let axes = io.ints_moved(imp, 13, "axes", 1)?;
    let axes = axes.ok_or_else(|| c.invalid("no axes"))?;
    let r = shape.len() + axes.len();
    let mut axes: Vec<usize> = axes.iter().map(|&x| axis(x, r, c)).collect::<Result<_>>()?;
    axes.sort_unstable();
    if axes.windows(2).any(|w| w[0] == w[1]) {
        return Err(c.invalid("repeated Unsqueeze axes"));
    }
    let mut it = shape.iter();
    let out = (0..r)
        .map(|d| {
            if axes.contains(&d) {
                1
            } else {
                it.next().copied().unwrap_or(1)
            }
        })
        .collect();
    io.simple(imp, Op::Reshape { shape: out }, vec![io.req(0)?])
}

/// LpPool's and GlobalLpPool's `p` (default 2), a positive integer that
/// `powi` takes.
fn lp_order(c: &Ctx) -> Result<u32> {
    i32::try_from(c.attrs.int("p", 2))
        .ok()
        .filter(|&p| p > 0)
        .map(|p| p.unsigned_abs())
        .ok_or_else(|| c.unsupported("p must be a positive 32-bit integer"))
}

/// MaxPool, AveragePool and LpPool of 1-D and 2-D maps: pads, auto_pad,
/// ceil mode and count_include_pad; the Indices output is refused.
fn pool(imp: &mut Importer, io: &NodeIo) -> Result<()> {
    let c = &io.c;
    let outs = &io.outs;
    let node = io.c.node;
    if outs.iter().skip(1).any(|o| !o.is_empty()) {
        return Err(c.unsupported("the Indices output"));
    }
    let rank = io.shape0(imp)?.len();
    let spatial = rank.saturating_sub(2);
    if !(1..=2).contains(&spatial) {
        return Err(c.unsupported(format!("only 1-D and 2-D pooling (input rank {rank})")));
    }
    let x = Lift1d::input(imp, c, io.req(0)?)?;
    let xs = imp.info(x).shape.clone();
    let mut win = Window::parse(c, None, spatial)?;
    win.apply_auto_pad(&xs);
    let kind = match node.op_type.as_str() {
        "MaxPool" => PoolKind::Max,
        "LpPool" => PoolKind::Lp { p: lp_order(c)? },
        _ => PoolKind::Avg {
            count_include_pad: c.attrs.int("count_include_pad", 0) != 0,
        },
    };
    let geometry = PoolGeometry {
        kind,
        kernel: win.kernel,
        strides: win.strides,
        dilations: win.dilations,
        pads: win.pads,
        ceil_mode: c.attrs.int("ceil_mode", 0) != 0,
    };
    Lift1d::run(imp, io, Op::Pool(geometry), vec![x], spatial == 1)
}

/// Softmax, LogSoftmax and Hardmax; before opset 13 over the input coerced
/// to 2-D at `axis`.
fn softmax(imp: &mut Importer, io: &NodeIo) -> Result<()> {
    let c = &io.c;
    let node = io.c.node;
    let make = |axis| match node.op_type.as_str() {
        "LogSoftmax" => Op::LogSoftmax { axis },
        "Hardmax" => Op::Hardmax { axis },
        _ => Op::Softmax { axis },
    };
    let shape = io.shape0(imp)?;
    let r = shape.len();
    let a = axis(c.attrs.int("axis", if c.opset < 13 { 1 } else { -1 }), r, c)?;
    if c.opset >= 13 || a + 1 == r {
        return io.simple(imp, make(a), vec![io.req(0)?]);
    }
    // Before opset 13 these work on the input coerced to 2-D at `axis`.
    let outer: usize = shape[..a].iter().product();
    let flat = imp.add_tmp(
        &c.name,
        Op::Reshape {
            shape: vec![outer, shape[a..].iter().product()],
        },
        vec![io.req(0)?],
    )?;
    let sm = imp.add_tmp(&c.name, make(1), vec![flat])?;
    io.simple(imp, Op::Reshape { shape }, vec![sm])
}

/// ConstantOfShape of a shape known at import, folded to a constant.
fn constant_of_shape(imp: &mut Importer, io: &NodeIo) -> Result<()> {
    let c = &io.c;
    let dims = io
        .const_ints(imp, 0, "the shape")?
        .ok_or_else(|| c.invalid("no shape"))?;
    let shape = to_usizes(&dims, c, "dim")?;
    let n = crate::ir::checked_numel(&shape, &c.name)?;
    imp.reserve(n, &c.name)?;
    let value = match c.attrs.get("value").and_then(|a| a.t.as_ref()) {
        Some(t) => to_tensor(t, imp.dir)?,
        None => Tensor::from_f32(vec![1], vec![0.0])?,
    };
    let t = match value.dtype() {
        DType::F32 => Tensor::from_f32(
            shape,
            vec![value.to_f32_vec().first().copied().unwrap_or(0.0); n],
        )?,
        _ => Tensor::from_i64(
            shape,
            vec![value.to_i64_vec().first().copied().unwrap_or(0); n],
        )?,
    };
    imp.bind_constant(&io.first_out()?, t);
    Ok(())
}

/// Constant from its `value`, `value_float(s)` or `value_int(s)` attribute,
/// recording the file's element type.
fn constant(imp: &mut Importer, io: &NodeIo) -> Result<()> {
    let node = io.c.node;
    let c = &io.c;
    let a = node
        .attribute
        .first()
        .ok_or_else(|| c.invalid("Constant without a value"))?;
    let t = match a.name.as_str() {
        "value" => to_tensor(
            a.t.as_ref().ok_or_else(|| c.invalid("empty value"))?,
            imp.dir,
        )?,
        "value_float" => Tensor::from_f32(vec![], vec![a.f])?,
        "value_floats" => Tensor::from_f32(vec![a.floats.len()], a.floats.clone())?,
        "value_int" => Tensor::from_i64(vec![], vec![a.i])?,
        "value_ints" => Tensor::from_i64(vec![a.ints.len()], a.ints.clone())?,
        other => return Err(c.unsupported(format!("Constant {other}"))),
    };
    let file_type = a.t.as_ref().map(|t| t.data_type);
    imp.bind_constant(&io.first_out()?, t);
    if let Some(elem) = file_type {
        let v = imp.value(&io.first_out()?, &c.name)?;
        imp.file_types.insert(v, elem);
    }
    Ok(())
}

/// Squeeze of the given axes (all of length 1 when none), as a Reshape.
fn squeeze(imp: &mut Importer, io: &NodeIo) -> Result<()> {
    let c = &io.c;
    let shape = io.shape0(imp)?;
    let axes = io.ints_moved(imp, 13, "axes", 1)?;
    let axes: Vec<usize> = match axes {
        Some(a) => a
            .iter()
            .map(|&x| axis(x, shape.len(), c))
            .collect::<Result<_>>()?,
        None => (0..shape.len()).filter(|&d| shape[d] == 1).collect(),
    };
    if axes.iter().any(|&a| shape[a] != 1) {
        return Err(c.invalid(format!("cannot squeeze axes {axes:?} of {shape:?}")));
    }
    let out = shape
        .iter()
        .enumerate()
        .filter(|(d, _)| !axes.contains(d))
        .map(|(_, &n)| n)
        .collect();
    io.simple(imp, Op::Reshape { shape: out }, vec![io.req(0)?])
}

/// LayerNormalization with one output, or three with the mean and inverse
/// deviation.
fn layer_norm(imp: &mut Importer, io: &NodeIo) -> Result<()> {
    let c = &io.c;
    let inputs = &io.inputs;
    let outs = &io.outs;
    let r = io.shape0(imp)?.len();
    let stats = match outs.len() {
        1 => false,
        3 => true,
        n => return Err(c.unsupported(format!("{n} outputs (1 or 3)"))),
    };
    if c.attrs.int("stash_type", 1) != 1 {
        return Err(c.unsupported("stash_type other than float"));
    }
    let op = Op::LayerNorm {
        axis: axis(c.attrs.int("axis", -1), r, c)?,
        epsilon: c.attrs.float("epsilon", 1e-5),
        stats,
    };
    let ins: Vec<ValueId> = (0..inputs.len().min(3))
        .map(|i| io.req(i))
        .collect::<Result<_>>()?;
    imp.add(&c.name, op, ins, outs).map(|_| ())
}

/// Dropout at inference: an identity, its mask ones; training mode refused.
fn dropout(imp: &mut Importer, io: &NodeIo) -> Result<()> {
    let c = &io.c;
    let inputs = &io.inputs;
    let outs = &io.outs;
    if inputs.get(2).copied().flatten().is_some()
        && io
            .const_of(imp, 2)
            .is_none_or(|t| t.to_i64_vec().first() != Some(&0))
    {
        return Err(c.unsupported("training mode"));
    }
    // Inference: identity, and a mask of ones if anything names it
    // (dead-node removal drops it when nothing reads it).
    if let Some(mask) = outs.get(1).filter(|o| !o.is_empty()) {
        let shape = io.shape0(imp)?;
        let n = crate::ir::checked_numel(&shape, &c.name)?;
        imp.reserve(n, &c.name)?;
        imp.bind_constant(mask, Tensor::from_i64(shape, vec![1; n])?);
    }
    imp.add(&c.name, Op::Identity, vec![io.req(0)?], &outs[..1])
        .map(|_| ())
}

/// CumSum along an axis known at import or read at run time.
fn cum_sum(imp: &mut Importer, io: &NodeIo) -> Result<()> {
    let c = &io.c;
    let exclusive = c.attrs.int("exclusive", 0) != 0;
    let reverse = c.attrs.int("reverse", 0) != 0;
    let op = |axis| Op::CumSum {
        axis,
        exclusive,
        reverse,
    };
    match io.scalar_input(imp, 1, None)? {
        Scalar::Known(a) => io.simple(
            imp,
            op(axis(a, io.rank0(imp)?, c)? as i64),
            vec![io.req(0)?],
        ),
        Scalar::AtRunTime(a) => io.simple(imp, op(0), vec![io.req(0)?, a]),
    }
}

/// One node being converted: its context, its inputs by position (`None`:
/// an absent optional input) and its output names, with the operand
/// lookups every op's conversion uses.
pub(super) struct NodeIo<'n> {
    pub(super) c: Ctx<'n>,
    pub(super) inputs: Vec<Option<ValueId>>,
    pub(super) outs: Vec<String>,
}

impl NodeIo<'_> {
    pub(super) fn input(&self, i: usize) -> Option<ValueId> {
        self.inputs.get(i).copied().flatten()
    }
    pub(super) fn req(&self, i: usize) -> Result<ValueId> {
        self.input(i)
            .ok_or_else(|| self.c.invalid(format!("missing input {i}")))
    }
    pub(super) fn first_out(&self) -> Result<String> {
        self.outs
            .first()
            .cloned()
            .ok_or_else(|| self.c.invalid("no outputs"))
    }
    fn const_of(&self, imp: &Importer, i: usize) -> Option<Tensor> {
        let v = self.inputs.get(i).copied().flatten()?;
        imp.constant(v).cloned()
    }
    /// Input `i`'s values when given; an error naming `what` if it is not
    /// constant.
    fn const_ints(&self, imp: &Importer, i: usize, what: &str) -> Result<Option<Vec<i64>>> {
        match self.inputs.get(i).copied().flatten() {
            None => Ok(None),
            Some(v) => match imp.constant(v) {
                Some(t) => Ok(Some(t.to_i64_vec())),
                None => Err(imp.not_constant(&self.c, v, what)),
            },
        }
    }
    /// Integers that moved from attribute `name` to input `i` at opset
    /// `since` (axes, a split, a target shape): the attribute's before it,
    /// else the input's, which must be known at import.
    fn ints_moved(
        &self,
        imp: &Importer,
        since: i64,
        name: &str,
        i: usize,
    ) -> Result<Option<Vec<i64>>> {
        if self.c.opset < since {
            Ok(self.c.attrs.ints(name))
        } else {
            self.const_ints(imp, i, name)
        }
    }
    /// [`NodeIo::const_floats`] of an optional input: `None` when absent.
    fn const_floats_opt(&self, imp: &Importer, i: usize, what: &str) -> Result<Option<Vec<f32>>> {
        match self.inputs.get(i).copied().flatten() {
            None => Ok(None),
            Some(_) => self.const_floats(imp, i, what).map(Some),
        }
    }
    fn const_floats(&self, imp: &Importer, i: usize, what: &str) -> Result<Vec<f32>> {
        let v = self
            .inputs
            .get(i)
            .copied()
            .flatten()
            .ok_or_else(|| self.c.invalid(format!("no {what}")))?;
        match imp.constant(v) {
            Some(t) => Ok(t.to_f32_vec()),
            None => Err(imp.not_constant(&self.c, v, what)),
        }
    }
    /// An i64 scalar input that may be computed (Trilu's k, CumSum's axis):
    /// its value when constant (`absent` when not given), else the value
    /// for the kernel to read at run time.
    fn scalar_input(&self, imp: &Importer, i: usize, absent: Option<i64>) -> Result<Scalar> {
        match (self.inputs.get(i).copied().flatten(), self.const_of(imp, i)) {
            (Some(v), None) => Some(Scalar::AtRunTime(v)),
            (_, Some(t)) => t.to_i64_vec().first().copied().map(Scalar::Known),
            (None, None) => absent.map(Scalar::Known),
        }
        .ok_or_else(|| self.c.invalid(format!("input {i} is missing or empty")))
    }
    fn rank0(&self, imp: &Importer) -> Result<usize> {
        Ok(imp.info(self.req(0)?).shape.len())
    }
    fn shape0(&self, imp: &Importer) -> Result<Vec<usize>> {
        Ok(imp.info(self.req(0)?).shape.clone())
    }
    /// A single-output op over `ins`.
    fn simple(&self, imp: &mut Importer, op: Op, ins: Vec<ValueId>) -> Result<()> {
        let integer_input = ins
            .first()
            .is_some_and(|&v| imp.info(v).dtype == DType::I64);
        if integer_input && !generic_over_dtype(&op) {
            return Err(self
                .c
                .unsupported("integer tensors (this op computes in f32 only)"));
        }
        imp.add(&self.c.name, op, ins, &[self.first_out()?])
            .map(|_| ())
    }
    fn unary(&self, imp: &mut Importer, u: UnaryOp) -> Result<()> {
        self.simple(imp, Op::Unary(u), vec![self.req(0)?])
    }
}

pub(super) fn convert(imp: &mut Importer, node: &NodeProto) -> Result<()> {
    let name = if node.name.is_empty() {
        format!(
            "{}_{}",
            node.op_type,
            node.output.first().map_or("", |s| s.as_str())
        )
    } else {
        node.name.clone()
    };
    let c = Ctx {
        node,
        name,
        attrs: Attrs(&node.attribute),
        opset: imp.opset,
    };
    // Inputs by position; an empty name is an absent optional input.
    let mut inputs: Vec<Option<ValueId>> = Vec::new();
    for n in &node.input {
        inputs.push(if n.is_empty() {
            None
        } else {
            Some(imp.value(n, &c.name)?)
        });
    }
    let io = NodeIo {
        c,
        inputs,
        outs: node.output.clone(),
    };
    let (c, inputs, outs) = (&io.c, &io.inputs, &io.outs);
    if let Some(done) = super::qops::convert(imp, &io) {
        return done;
    }
    if let Some(t) = Trig::ALL.into_iter().find(|t| t.name() == node.op_type) {
        return io.unary(imp, UnaryOp::Trig(t));
    }
    match node.op_type.as_str() {
        "Relu" => io.unary(imp, UnaryOp::Relu),
        "Sigmoid" => io.unary(imp, UnaryOp::Sigmoid),
        "Tanh" => io.unary(imp, UnaryOp::Tanh),
        "HardSwish" => io.unary(imp, UnaryOp::HardSwish),
        "Sqrt" => io.unary(imp, UnaryOp::Sqrt),
        "Exp" => io.unary(imp, UnaryOp::Exp),
        "Neg" => io.unary(imp, UnaryOp::Neg),
        "Abs" => io.unary(imp, UnaryOp::Abs),
        "Reciprocal" => io.unary(imp, UnaryOp::Reciprocal),
        "Log" => io.unary(imp, UnaryOp::Log),
        "Floor" => io.unary(imp, UnaryOp::Floor),
        "Ceil" => io.unary(imp, UnaryOp::Ceil),
        "Round" => io.unary(imp, UnaryOp::Round),
        "Sign" => io.unary(imp, UnaryOp::Sign),
        "Erf" => io.unary(imp, UnaryOp::Erf),
        "Softplus" => io.unary(imp, UnaryOp::Softplus),
        "Softsign" => io.unary(imp, UnaryOp::Softsign),
        "Mish" => io.unary(imp, UnaryOp::Mish),
        "Shrink" => io.unary(
            imp,
            UnaryOp::Shrink {
                bias: c.attrs.float("bias", 0.0),
                lambd: c.attrs.float("lambd", 0.5),
            },
        ),
        "Elu" => io.unary(
            imp,
            UnaryOp::Elu {
                alpha: c.attrs.float("alpha", 1.0),
            },
        ),
        "Selu" => io.unary(
            imp,
            UnaryOp::Selu {
                alpha: c.attrs.float("alpha", 1.673_263_2),
                gamma: c.attrs.float("gamma", 1.050_701),
            },
        ),
        "Celu" => io.unary(
            imp,
            UnaryOp::Celu {
                alpha: c.attrs.float("alpha", 1.0),
            },
        ),
        "ThresholdedRelu" => io.unary(
            imp,
            UnaryOp::ThresholdedRelu {
                alpha: c.attrs.float("alpha", 1.0),
            },
        ),
        "Gelu" => match c.attrs.string("approximate", "none").as_str() {
            "none" => io.unary(imp, UnaryOp::Gelu { tanh: false }),
            "tanh" => io.unary(imp, UnaryOp::Gelu { tanh: true }),
            other => Err(Error::UnsupportedOp {
                op_type: node.op_type.clone(),
                node: node.name.clone(),
                opset: c.opset,
                reason: format!("approximate={other:?}"),
            }),
        },
        "LeakyRelu" => io.unary(
            imp,
            UnaryOp::LeakyRelu {
                alpha: c.attrs.float("alpha", 0.01),
            },
        ),
        "HardSigmoid" => io.unary(
            imp,
            UnaryOp::HardSigmoid {
                alpha: c.attrs.float("alpha", 0.2),
                beta: c.attrs.float("beta", 0.5),
            },
        ),
        "Clip" => clip(imp, &io),
        "Add" | "Sub" | "Mul" | "Div" | "Pow" | "Max" | "Min" | "Sum" | "Mean" => {
            arithmetic(imp, &io)
        }
        "Mod" => {
            let (a, b) = (io.req(0)?, io.req(1)?);
            let fmod = c.attrs.int("fmod", 0) != 0;
            if !fmod && imp.info(a).dtype == DType::F32 {
                return Err(c.invalid("Mod of floats needs fmod=1"));
            }
            io.simple(imp, Op::Binary(BinaryOp::Mod { fmod }), vec![a, b])
        }
        "PRelu" => io.simple(imp, Op::PRelu, vec![io.req(0)?, io.req(1)?]),
        "Equal" | "Less" | "Greater" | "LessOrEqual" | "GreaterOrEqual" => {
            let op = match node.op_type.as_str() {
                "Equal" => CompareOp::Equal,
                "Less" => CompareOp::Less,
                "Greater" => CompareOp::Greater,
                "LessOrEqual" => CompareOp::LessOrEqual,
                _ => CompareOp::GreaterOrEqual,
            };
            io.simple(imp, Op::Compare(op), vec![io.req(0)?, io.req(1)?])
        }
        "And" | "Or" | "Xor" | "BitwiseAnd" | "BitwiseOr" | "BitwiseXor" => {
            let op = match node.op_type.trim_start_matches("Bitwise") {
                "And" => BitwiseOp::And,
                "Or" => BitwiseOp::Or,
                _ => BitwiseOp::Xor,
            };
            io.simple(imp, Op::Bitwise(op), vec![io.req(0)?, io.req(1)?])
        }
        "BitShift" => bit_shift(imp, &io),
        "BitwiseNot" => bitwise_not(imp, &io),
        "Einsum" => einsum(imp, &io),
        "Not" => {
            let operands = equal_zero(imp, c, io.req(0)?)?;
            io.simple(imp, Op::Compare(CompareOp::Equal), operands)
        }
        "Where" => io.simple(imp, Op::Where, vec![io.req(0)?, io.req(1)?, io.req(2)?]),
        "LSTM" | "GRU" | "RNN" => super::recurrent::convert(imp, c, inputs, outs),
        // IsNaN(x) is Not(x == x); IsInf compares with the infinities it
        // detects, both joined by Or.
        "IsNaN" => {
            let x = io.req(0)?;
            let equal = imp.add_tmp(&c.name, Op::Compare(CompareOp::Equal), vec![x, x])?;
            let operands = equal_zero(imp, c, equal)?;
            io.simple(imp, Op::Compare(CompareOp::Equal), operands)
        }
        "IsInf" => is_inf(imp, &io),
        "Conv" | "ConvTranspose" => conv(imp, &io),
        "BatchNormalization" => {
            if outs.iter().skip(1).any(|o| !o.is_empty()) {
                return Err(c.unsupported("training-mode outputs"));
            }
            let ins = (0..5).map(|i| io.req(i)).collect::<Result<Vec<_>>>()?;
            imp.add(
                &c.name,
                Op::BatchNorm {
                    epsilon: c.attrs.float("epsilon", 1e-5),
                },
                ins,
                &outs[..1],
            )
            .map(|_| ())
        }
        "MaxPool" | "AveragePool" | "LpPool" => pool(imp, &io),
        "GlobalLpPool" => {
            let kind = PoolKind::Lp {
                p: lp_order(&io.c)?,
            };
            io.simple(imp, Op::GlobalPool(kind), vec![io.req(0)?])
        }
        "GlobalAveragePool" => io.simple(
            imp,
            Op::GlobalPool(PoolKind::Avg {
                count_include_pad: false,
            }),
            vec![io.req(0)?],
        ),
        "GlobalMaxPool" => io.simple(imp, Op::GlobalPool(PoolKind::Max), vec![io.req(0)?]),
        "Gemm" => {
            let mut ins = vec![io.req(0)?, io.req(1)?];
            if let Some(b) = inputs.get(2).copied().flatten() {
                ins.push(b);
            }
            let op = Op::Gemm {
                alpha: c.attrs.float("alpha", 1.0),
                beta: c.attrs.float("beta", 1.0),
                trans_a: c.attrs.int("transA", 0) != 0,
                trans_b: c.attrs.int("transB", 0) != 0,
                activation: None,
            };
            io.simple(imp, op, ins)
        }
        "MatMul" => io.simple(imp, Op::MatMul, vec![io.req(0)?, io.req(1)?]),
        "Softmax" | "LogSoftmax" | "Hardmax" => softmax(imp, &io),
        "Concat" => {
            let ins: Vec<ValueId> = inputs.iter().flatten().copied().collect();
            let r = ins.first().map_or(0, |&v| imp.info(v).shape.len());
            // Zero-sized inputs add nothing (some exporters emit them).
            let ins: Vec<ValueId> = ins
                .into_iter()
                .filter(|&v| imp.info(v).shape.iter().product::<usize>() > 0 || r == 0)
                .collect();
            let a = axis(c.attrs.int("axis", 0), r, c)?;
            if ins.is_empty() {
                return Err(c.unsupported("concatenation of empty tensors only"));
            }
            io.simple(imp, Op::Concat { axis: a }, ins)
        }
        "Split" => split(imp, &io),
        "Slice" => slice(imp, &io),
        "Transpose" => {
            let r = io.rank0(imp)?;
            let perm = match c.attrs.ints("perm") {
                Some(p) => p.iter().map(|&x| axis(x, r, c)).collect::<Result<_>>()?,
                None => (0..r).rev().collect(),
            };
            io.simple(imp, Op::Transpose { perm }, vec![io.req(0)?])
        }
        "Reshape" => reshape(imp, &io),
        "Flatten" => {
            let shape = io.shape0(imp)?;
            let a = c.attrs.int("axis", 1);
            let a = if a < 0 { a + shape.len() as i64 } else { a };
            if !(0..=shape.len() as i64).contains(&a) {
                return Err(c.invalid(format!("Flatten axis {a} out of range")));
            }
            let a = a as usize;
            let out = vec![shape[..a].iter().product(), shape[a..].iter().product()];
            io.simple(imp, Op::Reshape { shape: out }, vec![io.req(0)?])
        }
        "Squeeze" => squeeze(imp, &io),
        "Unsqueeze" => unsqueeze(imp, &io),
        "Expand" => {
            let shape = io.shape0(imp)?;
            let target = io
                .const_ints(imp, 1, "the target shape")?
                .ok_or_else(|| c.invalid("no target shape"))?;
            let target = to_usizes(&target, c, "Expand shape")?;
            let out = crate::ir::broadcast_shapes(&shape, &target)
                .ok_or_else(|| c.invalid(format!("{shape:?} does not broadcast to {target:?}")))?;
            io.simple(imp, Op::Expand { shape: out }, vec![io.req(0)?])
        }
        "ScatterElements" | "Scatter" | "ScatterND" => {
            let name = c.attrs.string("reduction", "none");
            let reduction = ScatterReduction::from_name(&name)
                .ok_or_else(|| c.unsupported(format!("reduction {name:?}")))?;
            let op = if node.op_type == "ScatterND" {
                Op::ScatterNd { reduction }
            } else {
                let a = axis(c.attrs.int("axis", 0), io.rank0(imp)?, c)?;
                Op::ScatterElements { axis: a, reduction }
            };
            io.simple(imp, op, vec![io.req(0)?, io.req(1)?, io.req(2)?])
        }
        "CumSum" => cum_sum(imp, &io),
        "Trilu" => {
            let upper = c.attrs.int("upper", 1) != 0;
            match io.scalar_input(imp, 1, Some(0))? {
                Scalar::Known(k) => io.simple(imp, Op::Trilu { upper, k }, vec![io.req(0)?]),
                Scalar::AtRunTime(k) => {
                    io.simple(imp, Op::Trilu { upper, k: 0 }, vec![io.req(0)?, k])
                }
            }
        }
        "Tile" => {
            let repeats = io
                .const_ints(imp, 1, "the repeats")?
                .ok_or_else(|| c.invalid("no repeats"))?;
            let repeats = to_usizes(&repeats, c, "Tile repeats")?;
            io.simple(imp, Op::Tile { repeats }, vec![io.req(0)?])
        }
        "DepthToSpace" | "SpaceToDepth" => depth_space(imp, &io),
        "GatherElements" => {
            let r = io.rank0(imp)?;
            let a = axis(c.attrs.int("axis", 0), r, c)?;
            io.simple(
                imp,
                Op::GatherElements { axis: a },
                vec![io.req(0)?, io.req(1)?],
            )
        }
        "Gather" => {
            let r = io.rank0(imp)?;
            let a = axis(c.attrs.int("axis", 0), r, c)?;
            io.simple(imp, Op::Gather { axis: a }, vec![io.req(0)?, io.req(1)?])
        }
        "Shape" => {
            let shape = io.shape0(imp)?;
            let r = shape.len() as i64;
            let clampi = |v: i64| (if v < 0 { v + r } else { v }).clamp(0, r) as usize;
            let start = clampi(c.attrs.int("start", 0));
            let end = clampi(c.attrs.int("end", r)).max(start);
            let dims: Vec<i64> = shape[start..end].iter().map(|&d| d as i64).collect();
            imp.bind_constant(&io.first_out()?, Tensor::from_i64(vec![dims.len()], dims)?);
            Ok(())
        }
        "Size" => {
            let n = io.shape0(imp)?.iter().product::<usize>() as i64;
            imp.bind_constant(&io.first_out()?, Tensor::from_i64(vec![], vec![n])?);
            Ok(())
        }
        "Constant" => constant(imp, &io),
        "ConstantOfShape" => constant_of_shape(imp, &io),
        "Range" => range(imp, &io),
        "Identity" => io.simple(imp, Op::Identity, vec![io.req(0)?]),
        "Dropout" => dropout(imp, &io),
        "Cast" => {
            let to = i32::try_from(c.attrs.int("to", 1)).map_err(|_| c.invalid("bad Cast type"))?;
            if to == super::tensor::elem::BOOL {
                // x != 0 (NaN included) as Not(x == 0).
                let operands = equal_zero(imp, c, io.req(0)?)?;
                let is_zero = imp.add_tmp(&c.name, Op::Compare(CompareOp::Equal), operands)?;
                let operands = equal_zero(imp, c, is_zero)?;
                return io.simple(imp, Op::Compare(CompareOp::Equal), operands);
            }
            let dtype = super::tensor::dtype_of(to)
                .ok_or_else(|| c.unsupported(format!("Cast to type {to}")))?;
            io.simple(imp, Op::Cast { to: dtype }, vec![io.req(0)?])
        }
        "LayerNormalization" => layer_norm(imp, &io),
        "TopK" => top_k(imp, &io),
        "NonMaxSuppression" => non_max_suppression(imp, &io),
        "GatherND" => gather_nd(imp, &io),
        "OneHot" => one_hot(imp, &io),
        "ArgMax" | "ArgMin" => {
            let r = io.shape0(imp)?.len();
            let op = Op::ArgExtreme {
                max: node.op_type == "ArgMax",
                axis: axis(c.attrs.int("axis", 0), r, c)?,
                keepdims: c.attrs.int("keepdims", 1) != 0,
                select_last: c.attrs.int("select_last_index", 0) != 0,
            };
            io.simple(imp, op, vec![io.req(0)?])
        }
        "CastLike" => {
            let like = inputs
                .get(1)
                .copied()
                .flatten()
                .ok_or_else(|| c.invalid("CastLike needs its target_type input"))?;
            let to = imp.info(like).dtype;
            io.simple(imp, Op::Cast { to }, vec![io.req(0)?])
        }
        "Pad" => pad(imp, &io),
        "Resize" | "Upsample" => resize(imp, &io),
        "ReduceMean" | "ReduceSum" | "ReduceMax" | "ReduceMin" | "ReduceProd" | "ReduceL1"
        | "ReduceL2" | "ReduceSumSquare" | "ReduceLogSumExp" | "ReduceLogSum" => {
            let kind = match node.op_type.as_str() {
                "ReduceSum" => Some(ReduceKind::Sum),
                "ReduceMax" => Some(ReduceKind::Max),
                "ReduceMin" => Some(ReduceKind::Min),
                "ReduceProd" => Some(ReduceKind::Prod),
                "ReduceL1" => Some(ReduceKind::L1),
                "ReduceL2" => Some(ReduceKind::L2),
                "ReduceSumSquare" => Some(ReduceKind::SumSquare),
                "ReduceLogSumExp" => Some(ReduceKind::LogSumExp),
                "ReduceLogSum" => Some(ReduceKind::LogSum),
                _ => None,
            };
            // Axes became an input at opset 13 for ReduceSum, 18 for the rest.
            let axes_input = if kind == Some(ReduceKind::Sum) {
                13
            } else {
                18
            };
            let shape = io.shape0(imp)?;
            let given = io.ints_moved(imp, axes_input, "axes", 1)?;
            let axes: Vec<usize> = match given {
                Some(a) if !a.is_empty() => a
                    .iter()
                    .map(|&x| axis(x, shape.len(), c))
                    .collect::<Result<_>>()?,
                _ if c.attrs.int("noop_with_empty_axes", 0) != 0 => {
                    return io.simple(imp, Op::Identity, vec![io.req(0)?])
                }
                _ => (0..shape.len()).collect(),
            };
            let keepdims = c.attrs.int("keepdims", 1) != 0;
            let op = match kind {
                None => Op::ReduceMean { axes, keepdims },
                Some(kind) => Op::Reduce {
                    kind,
                    axes,
                    keepdims,
                },
            };
            io.simple(imp, op, vec![io.req(0)?])
        }
        "LRN" => {
            let size =
                usize::try_from(c.attrs.int("size", 0)).map_err(|_| c.invalid("bad size"))?;
            let op = Op::Lrn {
                size,
                alpha: c.attrs.float("alpha", 1e-4),
                beta: c.attrs.float("beta", 0.75),
                bias: c.attrs.float("bias", 1.0),
            };
            io.simple(imp, op, vec![io.req(0)?])
        }
        other => Err(c.unsupported(format!("{other} is not implemented"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::kernels::scalar::reference::eval;

    /// Equations as ONNX spells them: explicit and implicit outputs, an
    /// ellipsis, a diagonal; and equations that cannot hold are refused.
    #[test]
    fn einsum_equations_become_dense_labels() {
        let labels = |eq: &str, ranks: &[usize]| einsum_labels(eq, ranks);
        let matmul = Some((vec![vec![0, 1], vec![1, 2]], vec![0, 2]));
        assert_eq!(labels("ij,jk", &[2, 2]), matmul);
        assert_eq!(labels("ij, jk -> ik", &[2, 2]), matmul);
        assert_eq!(
            labels("...ii->...i", &[3]),
            Some((vec![vec![0, 1, 1]], vec![0, 1]))
        );
        assert_eq!(
            labels("i,i", &[1, 1]),
            Some((vec![vec![0], vec![0]], vec![]))
        );
        assert_eq!(labels("ba", &[2]), Some((vec![vec![0, 1]], vec![1, 0])));
        for (eq, ranks) in [
            ("ij->k", &[2][..]),
            ("ij->ii", &[2]),
            ("ij", &[3]),
            ("ij,j", &[2]),
            ("i1", &[2]),
        ] {
            assert_eq!(labels(eq, ranks), None, "{eq}");
        }
    }

    /// Einsum computes what its equation says; a left BitShift drops the
    /// bits past the operand's width and a right one is logical.
    #[test]
    fn einsum_and_bitshift_compute_what_they_say() {
        let x = Tensor::from_f32(vec![2, 3], vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]).unwrap();
        let y = Tensor::from_f32(vec![3, 2], vec![1.0, 0.0, 0.0, 1.0, 1.0, 1.0]).unwrap();
        let (terms, output) = einsum_labels("ij,jk->ik", &[2, 2]).unwrap();
        let z = eval(&Op::Einsum { terms, output }, &[&x, &y]).unwrap();
        assert_eq!(z[0].to_f32_vec(), [4.0, 5.0, 10.0, 11.0]);
        let (terms, output) = einsum_labels("ij->", &[2]).unwrap();
        let sum = eval(&Op::Einsum { terms, output }, &[&x]).unwrap();
        assert_eq!(sum[0].to_f32_vec(), [21.0]);
        let a = Tensor::from_i64(vec![3], vec![200, 255, 1]).unwrap();
        let s = Tensor::from_i64(vec![3], vec![1, 4, 70]).unwrap();
        let shift =
            |left, width| eval(&Op::BitShift { left, width }, &[&a, &s]).unwrap()[0].to_i64_vec();
        assert_eq!(shift(true, 8), [144, 240, 0]);
        assert_eq!(shift(true, 16), [400, 4080, 0]);
        assert_eq!(shift(false, 8), [100, 15, 0]);
    }
}
