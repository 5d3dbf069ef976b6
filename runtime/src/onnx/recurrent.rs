//! LSTM, GRU and RNN nodes into [`Op::Recurrent`]: ONNX's optional inputs
//! become explicit constants (zeros, full sequence lengths), so the op and
//! its kernel always see every input; batch-first layers are transposed
//! around it.

use super::ops::Ctx;
use super::Importer;
use crate::error::Result;
use crate::ir::{checked_numel, Cell, DType, Direction, Op, Recurrent, Tensor, UnaryOp, ValueId};

/// An activation by its ONNX name, taking its alpha and beta (where it has
/// them) from the front of `alphas` and `betas`, or ONNX's defaults.
fn activation(
    name: &str,
    alphas: &mut impl Iterator<Item = f32>,
    betas: &mut impl Iterator<Item = f32>,
) -> Option<UnaryOp> {
    Some(match name.to_ascii_lowercase().as_str() {
        "sigmoid" => UnaryOp::Sigmoid,
        "tanh" => UnaryOp::Tanh,
        "relu" => UnaryOp::Relu,
        "softsign" => UnaryOp::Softsign,
        "softplus" => UnaryOp::Softplus,
        "leakyrelu" => UnaryOp::LeakyRelu {
            alpha: alphas.next().unwrap_or(0.01),
        },
        "thresholdedrelu" => UnaryOp::ThresholdedRelu {
            alpha: alphas.next().unwrap_or(1.0),
        },
        "elu" => UnaryOp::Elu {
            alpha: alphas.next().unwrap_or(1.0),
        },
        "hardsigmoid" => UnaryOp::HardSigmoid {
            alpha: alphas.next().unwrap_or(0.2),
            beta: betas.next().unwrap_or(0.5),
        },
        _ => return None,
    })
}

/// The layer's activations, `dirs` times the cell's: as the node names
/// them, else ONNX's defaults.
fn activations(c: &Ctx, cell: Cell, dirs: usize) -> Result<Vec<UnaryOp>> {
    let names = c.attrs.strings("activations");
    let defaults: &[&str] = match cell {
        Cell::Lstm => &["Sigmoid", "Tanh", "Tanh"],
        Cell::Gru { .. } => &["Sigmoid", "Tanh"],
        Cell::Rnn => &["Tanh"],
    };
    let count = dirs * cell.activations();
    let names: Vec<&str> = if names.is_empty() {
        defaults.iter().copied().cycle().take(count).collect()
    } else if names.len() == count {
        names.iter().map(String::as_str).collect()
    } else {
        let given = names.len();
        return Err(c.invalid(format!("{given} activations, {count} expected")));
    };
    let (mut alphas, mut betas) = (
        c.attrs.floats("activation_alpha").into_iter(),
        c.attrs.floats("activation_beta").into_iter(),
    );
    names
        .iter()
        .map(|n| {
            activation(n, &mut alphas, &mut betas)
                .ok_or_else(|| c.unsupported(format!("activation {n}")))
        })
        .collect()
}

pub(super) fn convert(
    imp: &mut Importer,
    c: &Ctx,
    inputs: &[Option<ValueId>],
    outs: &[String],
) -> Result<()> {
    let cell = match c.node.op_type.as_str() {
        "LSTM" => Cell::Lstm,
        "GRU" => Cell::Gru {
            linear_before_reset: c.attrs.int("linear_before_reset", 0) != 0,
        },
        _ => Cell::Rnn,
    };
    if c.attrs.int("input_forget", 0) != 0 {
        return Err(c.unsupported("input_forget"));
    }
    // Batch first: X, the initial states and the outputs are transposed
    // around the op, which works on `[seq, batch, …]`.
    let batch_first = c.attrs.int("layout", 0) != 0;
    let swap = |imp: &mut Importer, v: ValueId| {
        imp.add_tmp(
            &c.name,
            Op::Transpose {
                perm: vec![1, 0, 2],
            },
            vec![v],
        )
    };
    let mut inputs = inputs.to_vec();
    if batch_first {
        for i in [0, 5, 6] {
            if let Some(v) = inputs.get(i).copied().flatten() {
                inputs[i] = Some(swap(imp, v)?);
            }
        }
    }
    let inputs = &inputs[..];
    let direction = match c.attrs.string("direction", "forward").as_str() {
        "forward" => Direction::Forward,
        "reverse" => Direction::Reverse,
        "bidirectional" => Direction::Bidirectional,
        other => return Err(c.invalid(format!("direction {other:?}"))),
    };
    let input = |i: usize| inputs.get(i).copied().flatten();
    let req = |i: usize| input(i).ok_or_else(|| c.invalid(format!("missing input {i}")));
    let (x, w, r) = (req(0)?, req(1)?, req(2)?);
    let (xs, rs) = (imp.info(x).shape.clone(), imp.info(r).shape.clone());
    let (dirs, gates) = (direction.count(), cell.gates());
    let (&[seq, batch, _], &[_, _, hidden]) = (&xs[..], &rs[..]) else {
        return Err(c.invalid(format!("X of shape {xs:?} and R of shape {rs:?}")));
    };
    if c.attrs.has("hidden_size") && c.attrs.int("hidden_size", 0) != hidden as i64 {
        return Err(c.invalid(format!("hidden_size differs from R's {hidden}")));
    }
    // Absent optional inputs become constants of ONNX's defaults.
    let or_default = |imp: &mut Importer, i: usize, shape: Vec<usize>, dtype: DType| {
        if let Some(v) = input(i) {
            return Ok(v);
        }
        let n = checked_numel(&shape, &c.name)?;
        imp.reserve(n, &c.name)?;
        let t = match dtype {
            DType::I64 => Tensor::from_i64(shape, vec![seq as i64; n])?,
            _ => Tensor::from_f32(shape, vec![0.0; n])?,
        };
        Ok::<_, crate::error::Error>(imp.add_constant(&c.name, t))
    };
    let mut ins = vec![
        x,
        w,
        r,
        or_default(imp, 3, vec![dirs, 2 * gates * hidden], DType::F32)?,
        or_default(imp, 4, vec![batch], DType::I64)?,
        or_default(imp, 5, vec![dirs, batch, hidden], DType::F32)?,
    ];
    if cell == Cell::Lstm {
        ins.push(or_default(imp, 6, vec![dirs, batch, hidden], DType::F32)?);
        ins.push(or_default(imp, 7, vec![dirs, 3 * hidden], DType::F32)?);
    }
    let activations = activations(c, cell, dirs)?;
    let op = Op::Recurrent(Recurrent {
        cell,
        direction,
        hidden,
        activations,
        clip: c.attrs.has("clip").then(|| c.attrs.float("clip", 0.0)),
    });
    // Outputs the node leaves unnamed still exist, under generated names;
    // batch first, the op's outputs are intermediates transposed into the
    // named ones.
    let count = if cell == Cell::Lstm { 3 } else { 2 };
    let names: Vec<String> = (0..count)
        .map(|k| match outs.get(k) {
            Some(n) if !n.is_empty() && !batch_first => n.clone(),
            _ => format!("{}::output_{k}", c.name),
        })
        .collect();
    let ids = imp.add(&c.name, op, ins, &names)?;
    if batch_first {
        for (k, id) in ids.into_iter().enumerate() {
            let Some(name) = outs.get(k).filter(|n| !n.is_empty()) else {
                continue;
            };
            // Y `[seq, dirs, batch, h]` to `[batch, seq, dirs, h]`; the
            // states `[dirs, batch, h]` to `[batch, dirs, h]`.
            let perm = if k == 0 {
                vec![2, 0, 1, 3]
            } else {
                vec![1, 0, 2]
            };
            imp.add(
                &c.name,
                Op::Transpose { perm },
                vec![id],
                std::slice::from_ref(name),
            )?;
        }
    }
    Ok(())
}
