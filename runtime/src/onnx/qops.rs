//! Quantized ONNX ops (QOperator form, and what the QDQ rewrite of
//! [`super::qdq`] turns QDQ groups into) → the integer ops of the IR.
//!
//! Quantization parameters must be constants and per tensor, except weight
//! scales (per output channel). Weights become i8 with zero point 0 (u8
//! weights are shifted by their zero point when the result fits), biases
//! i32. Gemm and MatMul with constant weights run as 1×1 QLinearConv
//! between two free reshapes.

use super::ops::{conv_geometry, Ctx, NodeIo};
use super::Importer;
use crate::error::Result;
use crate::ir::{BinaryOp, DType, Op, Quant, Tensor, TensorData, ValueId};

/// The converter of a quantized op type, or `None` if `op_type` is not one.
pub(super) fn convert(imp: &mut Importer, io: &NodeIo) -> Option<Result<()>> {
    let c = &io.c;
    let q = Quantized { io, c };
    Some(match c.node.op_type.as_str() {
        "QuantizeLinear" => q.quantize_linear(imp),
        "DequantizeLinear" => q.dequantize_linear(imp),
        "QLinearConv" => q.qlinear_conv(imp),
        "QLinearAdd" => q.qlinear_binary(imp, BinaryOp::Add),
        "QLinearMul" => q.qlinear_binary(imp, BinaryOp::Mul),
        "QLinearGlobalAveragePool" => q.qlinear_global_average_pool(imp),
        "QGemm" => q.qgemm(imp),
        "QLinearMatMul" => q.qlinear_matmul(imp),
        _ => return None,
    })
}

/// The op types [`convert`] takes, by domain.
pub(super) fn is_quantized_op(domain: &str, op_type: &str) -> bool {
    match domain {
        "com.microsoft" => matches!(
            op_type,
            "QLinearAdd" | "QLinearMul" | "QLinearGlobalAveragePool" | "QGemm"
        ),
        _ => false,
    }
}

/// A quantized node's conversion: its operands ([`NodeIo`]) and context.
struct Quantized<'a, 'n> {
    io: &'a NodeIo<'n>,
    c: &'a Ctx<'n>,
}

impl Quantized<'_, '_> {
    /// A constant input's values; an error naming `what` if not constant.
    fn constant<'i>(&self, imp: &'i Importer, i: usize, what: &str) -> Result<&'i Tensor> {
        let v = self
            .io
            .input(i)
            .ok_or_else(|| self.c.invalid(format!("no {what}")))?;
        imp.constant(v)
            .ok_or_else(|| imp.not_constant(self.c, v, what))
    }

    /// Per-tensor parameters from a scale input and an optional zero-point
    /// input (absent: u8, zero point 0).
    fn quant(&self, imp: &Importer, scale: usize, zero: usize) -> Result<Quant> {
        let s = self.constant(imp, scale, "a scale")?.to_f32_vec();
        let (zero_point, dtype) = match self.io.input(zero) {
            None => (vec![0], DType::U8),
            Some(v) => {
                let values = self.constant(imp, zero, "a zero point")?.to_i64_vec();
                let dtype = match imp.narrow_dtype(v) {
                    Some(d @ (DType::U8 | DType::I8)) => d,
                    None if imp.file_type(v).is_none() => DType::U8,
                    _ => {
                        return Err(self.c.unsupported(format!(
                            "zero points of ONNX element type {} (8-bit only)",
                            imp.file_type(v).unwrap_or_default()
                        )))
                    }
                };
                (values, dtype)
            }
        };
        let (&[scale], &[zero_point]) = (&s[..], &zero_point[..]) else {
            return Err(self
                .c
                .unsupported("per-axis quantization of activations (one scale per tensor only)"));
        };
        let q = Quant {
            scale,
            zero_point: i32::try_from(zero_point).unwrap_or(i32::MAX),
            dtype,
        };
        if !q.is_valid() {
            return Err(self.c.invalid(format!("bad quantization parameters {q:?}")));
        }
        Ok(q)
    }

    /// Input `i` as a `q.dtype` value: a runtime value of that type, or a
    /// constant converted to it.
    fn quantized_value(&self, imp: &mut Importer, i: usize, q: Quant) -> Result<ValueId> {
        let v = self.io.req(i)?;
        if let Some(t) = imp.constant(v) {
            let data = t.to_i64_vec();
            let data = match q.dtype {
                DType::U8 => TensorData::U8(data.iter().map(|&x| x as u8).collect()),
                _ => TensorData::I8(data.iter().map(|&x| x as i8).collect()),
            };
            let t = Tensor::new(t.shape().to_vec(), data)?;
            return Ok(imp.add_constant(&format!("{}::quantized", self.c.name), t));
        }
        let dtype = imp.info(v).dtype;
        if dtype != q.dtype {
            return Err(self.c.unsupported(format!(
                "a {} input quantized as {}",
                dtype.name(),
                q.dtype.name()
            )));
        }
        Ok(v)
    }

    fn quantize_linear(&self, imp: &mut Importer) -> Result<()> {
        let q = self.quant(imp, 1, 2)?;
        imp.add(
            &self.c.name,
            Op::Quantize(q),
            vec![self.io.req(0)?],
            &[self.io.first_out()?],
        )
        .map(|_| ())
    }

    /// A runtime input becomes a Dequantize node; a constant one (weights
    /// of a QDQ model left in float) is dequantized here, per axis too.
    fn dequantize_linear(&self, imp: &mut Importer) -> Result<()> {
        let x = self.io.req(0)?;
        if let Some(t) = imp.constant(x) {
            let rank = t.shape().len();
            let scales = self.constant(imp, 1, "a scale")?.to_f32_vec();
            let zeros = match self.io.input(2) {
                Some(_) => self.constant(imp, 2, "a zero point")?.to_i64_vec(),
                None => vec![0; scales.len()],
            };
            let axis = self.c.attrs.int("axis", 1);
            let axis = usize::try_from(if axis < 0 { axis + rank as i64 } else { axis })
                .ok()
                .filter(|&a| a < rank.max(1));
            let per = |len: usize| scales.len() == len && zeros.len() == len;
            let (channels, inner) = match axis {
                _ if scales.len() == 1 && zeros.len() == 1 => (1, t.len().max(1)),
                Some(a) if rank > 0 && per(t.shape()[a]) => {
                    (t.shape()[a], t.shape()[a + 1..].iter().product::<usize>())
                }
                _ => return Err(self.c.invalid("scale and zero point do not match the axis")),
            };
            let values: Vec<f32> = t
                .to_i64_vec()
                .iter()
                .enumerate()
                .map(|(i, &v)| {
                    let ch = (i / inner.max(1)) % channels;
                    (v - zeros[ch]) as f32 * scales[ch]
                })
                .collect();
            let out = Tensor::from_f32(t.shape().to_vec(), values)?;
            imp.bind_constant(&self.io.first_out()?, out);
            return Ok(());
        }
        let q = self.quant(imp, 1, 2)?;
        let x = self.quantized_value(imp, 0, q)?;
        imp.add(
            &self.c.name,
            Op::Dequantize(q),
            vec![x],
            &[self.io.first_out()?],
        )
        .map(|_| ())
    }

    /// Weights as i8 with zero point 0, one f32 scale per output channel
    /// (scaled by `alpha`), from inputs `w`, `scale`, `zero` of the node,
    /// with `rows` output channels along axis 0 of `w`.
    fn weights(
        &self,
        imp: &mut Importer,
        (w, scale, zero): (usize, usize, usize),
        rows: usize,
        alpha: f32,
    ) -> Result<(Tensor, Tensor)> {
        let t = self.constant(imp, w, "the weights")?;
        let shape = t.shape().to_vec();
        let values = t.to_i64_vec();
        let inner = values.len() / rows.max(1);
        let per_row = |v: Vec<i64>, what: &str| match v.len() {
            1 => Ok(vec![v[0]; rows]),
            n if n == rows => Ok(v),
            n => Err(self
                .c
                .unsupported(format!("{n} {what}s for {rows} output channels"))),
        };
        let zeros = match self.io.input(zero) {
            Some(_) => per_row(
                self.constant(imp, zero, "a weight zero point")?
                    .to_i64_vec(),
                "zero point",
            )?,
            None => vec![0; rows],
        };
        let scales: Vec<f32> = self.constant(imp, scale, "a weight scale")?.to_f32_vec();
        let scales = match scales.len() {
            1 => vec![scales[0] * alpha; rows],
            n if n == rows => scales.iter().map(|s| s * alpha).collect(),
            n => {
                return Err(self
                    .c
                    .unsupported(format!("{n} weight scales for {rows} channels")))
            }
        };
        let mut w8 = Vec::with_capacity(values.len());
        for (i, &v) in values.iter().enumerate() {
            let centred = v - zeros[i / inner.max(1)];
            w8.push(i8::try_from(centred).map_err(|_| {
                self.c
                    .unsupported("weights whose zero-point offset does not fit in i8")
            })?);
        }
        Ok((
            Tensor::new(shape, TensorData::I8(w8))?,
            Tensor::from_f32(vec![rows], scales)?,
        ))
    }

    /// The i32 bias of input `i`, if present.
    fn bias(&self, imp: &Importer, i: usize, rows: usize) -> Result<Option<Tensor>> {
        if self.io.input(i).is_none() {
            return Ok(None);
        }
        let b = self.constant(imp, i, "the bias")?.to_i64_vec();
        if b.len() != rows {
            return Err(self
                .c
                .invalid(format!("{} biases for {rows} channels", b.len())));
        }
        let b = b
            .iter()
            .map(|&v| i32::try_from(v).map_err(|_| self.c.invalid("bias out of i32 range")))
            .collect::<Result<Vec<i32>>>()?;
        Ok(Some(Tensor::new(vec![rows], TensorData::I32(b))?))
    }

    /// Adds a QConv of `x` (already the right dtype) by prepared weights.
    #[allow(clippy::too_many_arguments)]
    fn add_qconv(
        &self,
        imp: &mut Importer,
        op: Op,
        x: ValueId,
        (w, scales): (Tensor, Tensor),
        bias: Option<Tensor>,
        out: &str,
    ) -> Result<ValueId> {
        let name = &self.c.name;
        let mut ins = vec![
            x,
            imp.add_constant(&format!("{name}::w"), w),
            imp.add_constant(&format!("{name}::w_scale"), scales),
        ];
        if let Some(b) = bias {
            ins.push(imp.add_constant(&format!("{name}::bias"), b));
        }
        Ok(imp.add(name, op, ins, &[out.to_string()])?[0])
    }

    fn qlinear_conv(&self, imp: &mut Importer) -> Result<()> {
        let xq = self.quant(imp, 1, 2)?;
        let yq = self.quant(imp, 6, 7)?;
        let x = self.quantized_value(imp, 0, xq)?;
        let xs = imp.info(x).shape.clone();
        let ws = self.constant(imp, 3, "the weights")?.shape().to_vec();
        if xs.len() != 4 || ws.len() != 4 {
            return Err(self.c.unsupported("only 2-D QLinearConv"));
        }
        let geometry = conv_geometry(self.c, &xs, &ws, 2)?;
        let weights = self.weights(imp, (3, 4, 5), ws[0], 1.0)?;
        let bias = self.bias(imp, 8, ws[0])?;
        let op = Op::QConv {
            geometry,
            x: xq,
            y: yq,
            activation: None,
        };
        self.add_qconv(imp, op, x, weights, bias, &self.io.first_out()?)
            .map(|_| ())
    }

    /// `y = a · b` with constant `b` \[K,N\] (after `trans_b`): the rows of
    /// `a` (all but its last axis) run as a 1×1 QLinearConv of N channels.
    #[allow(clippy::too_many_arguments)]
    fn matmul_as_conv(
        &self,
        imp: &mut Importer,
        (xq, yq): (Quant, Quant),
        trans_b: bool,
        alpha: f32,
        b_inputs: (usize, usize, usize),
        bias: Option<usize>,
    ) -> Result<()> {
        let x = self.quantized_value(imp, 0, xq)?;
        let xs = imp.info(x).shape.clone();
        let b = self.constant(imp, b_inputs.0, "the weights")?.clone();
        let (&[k, n], Some(&xk)) = (b.shape(), xs.last()) else {
            return Err(self.c.unsupported("weights of rank other than 2"));
        };
        let (k, n) = if trans_b { (n, k) } else { (k, n) };
        if xk != k {
            return Err(self
                .c
                .invalid(format!("inner dims {xs:?} x {:?}", b.shape())));
        }
        // Weights as [N, K, 1, 1]: rows are output channels.
        let values = b.to_i64_vec();
        let rows: Vec<i64> = if trans_b {
            values
        } else {
            (0..n * k).map(|i| values[(i % k) * n + i / k]).collect()
        };
        let name = &self.c.name;
        let transposed = imp.add_constant(
            &format!("{name}::w_rows"),
            Tensor::from_i64(vec![n, k, 1, 1], rows)?,
        );
        let mut inputs = self.io.inputs.to_vec();
        inputs[b_inputs.0] = Some(transposed);
        let view = NodeIo {
            c: self.c.clone(),
            inputs,
            outs: self.io.outs.clone(),
        };
        let rows_view = Quantized {
            io: &view,
            c: self.c,
        };
        let weights = rows_view.weights(imp, b_inputs, n, alpha)?;
        let bias = match bias {
            Some(i) => self.bias(imp, i, n)?,
            None => None,
        };
        let m: usize = xs[..xs.len() - 1].iter().product();
        let x4 = imp.add_tmp(
            name,
            Op::Reshape {
                shape: vec![m, k, 1, 1],
            },
            vec![x],
        )?;
        let geometry = crate::ir::ConvGeometry {
            kernel: [1, 1],
            strides: [1, 1],
            dilations: [1, 1],
            pads: [0; 4],
            groups: 1,
        };
        let op = Op::QConv {
            geometry,
            x: xq,
            y: yq,
            activation: None,
        };
        let y4 = self.add_qconv(imp, op, x4, weights, bias, &format!("{name}::nchw"))?;
        let mut out_shape = xs[..xs.len() - 1].to_vec();
        out_shape.push(n);
        imp.add(
            name,
            Op::Reshape { shape: out_shape },
            vec![y4],
            &[self.io.first_out()?],
        )
        .map(|_| ())
    }

    /// com.microsoft QGemm: A, a_scale, a_zp, B, b_scale, b_zp, C, y_scale, y_zp.
    fn qgemm(&self, imp: &mut Importer) -> Result<()> {
        if self.c.attrs.int("transA", 0) != 0 {
            return Err(self.c.unsupported("transA"));
        }
        if self.io.input(7).is_none() {
            return Err(self.c.unsupported("QGemm with a float output (no y_scale)"));
        }
        let xq = self.quant(imp, 1, 2)?;
        let yq = self.quant(imp, 7, 8)?;
        let alpha = self.c.attrs.float("alpha", 1.0);
        let trans_b = self.c.attrs.int("transB", 0) != 0;
        self.matmul_as_conv(imp, (xq, yq), trans_b, alpha, (3, 4, 5), Some(6))
    }

    /// QLinearMatMul: a, a_scale, a_zp, b, b_scale, b_zp, y_scale, y_zp.
    fn qlinear_matmul(&self, imp: &mut Importer) -> Result<()> {
        let xq = self.quant(imp, 1, 2)?;
        let yq = self.quant(imp, 6, 7)?;
        self.matmul_as_conv(imp, (xq, yq), false, 1.0, (3, 4, 5), None)
    }

    /// com.microsoft QLinearAdd / QLinearMul: A, A_scale, A_zp, B, B_scale,
    /// B_zp, C_scale, C_zp.
    fn qlinear_binary(&self, imp: &mut Importer, op: BinaryOp) -> Result<()> {
        let a = self.quant(imp, 1, 2)?;
        let b = self.quant(imp, 4, 5)?;
        let y = self.quant(imp, 6, 7)?;
        let ins = vec![
            self.quantized_value(imp, 0, a)?,
            self.quantized_value(imp, 3, b)?,
        ];
        imp.add(
            &self.c.name,
            Op::QBinary { op, a, b, y },
            ins,
            &[self.io.first_out()?],
        )
        .map(|_| ())
    }

    /// com.microsoft QLinearGlobalAveragePool: X, x_scale, x_zp, y_scale, y_zp.
    fn qlinear_global_average_pool(&self, imp: &mut Importer) -> Result<()> {
        if self.c.attrs.int("channels_last", 0) != 0 {
            return Err(self.c.unsupported("channels_last"));
        }
        let x = self.quant(imp, 1, 2)?;
        let y = self.quant(imp, 3, 4)?;
        let v = self.quantized_value(imp, 0, x)?;
        imp.add(
            &self.c.name,
            Op::QGlobalAvgPool { x, y },
            vec![v],
            &[self.io.first_out()?],
        )
        .map(|_| ())
    }
}
