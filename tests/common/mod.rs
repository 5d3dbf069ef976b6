//! Shared helpers of the integration tests: where test data lives, loud
//! skipping, comparison with references, and building small ONNX models.
#![allow(dead_code)]

use std::path::PathBuf;

#[cfg(feature = "onnx")]
use prost::Message;
use squeeze::Tensor;
#[cfg(feature = "onnx")]
use tract_onnx::pb;

/// The repository root (tests run with the runtime crate as cwd).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `SQUEEZE_TEST_MODELS`, default `../shared/models` beside the repo.
pub fn models_dir() -> PathBuf {
    std::env::var_os("SQUEEZE_TEST_MODELS")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("../shared/models"))
}

/// `SQUEEZE_CACHE`, default `~/.cache/squeeze` (filled by scripts/fetch-test-data.sh).
pub fn cache_dir() -> PathBuf {
    std::env::var_os("SQUEEZE_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/squeeze")
        })
}

/// Reports loudly that a test did not run; under CI a missing asset fails.
pub fn skip(what: &str, why: &str) {
    let msg = format!("\n!!!!!!!! NOT RUN: {what}: {why}\n!!!!!!!! run scripts/fetch-test-data.sh and set SQUEEZE_TEST_MODELS\n");
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{msg}(CI must run every test)");
    }
    eprintln!("{msg}");
}

/// Largest violation of `|a-b| <= tol * max(1, |b|)`, as a ratio (≤1 passes), and where.
pub fn worst_ratio(got: &Tensor, want: &Tensor, tol: f32) -> (f32, usize, f32, f32) {
    let (g, w) = (got.to_f32_vec(), want.to_f32_vec());
    assert_eq!(got.shape(), want.shape(), "shapes differ");
    let mut worst = (0.0f32, 0usize, 0.0f32, 0.0f32);
    for (i, (&a, &b)) in g.iter().zip(&w).enumerate() {
        let r = if a.is_nan() && b.is_nan() {
            0.0
        } else {
            (a - b).abs() / (tol * b.abs().max(1.0))
        };
        if r.is_nan() || r > worst.0 {
            worst = (r, i, a, b);
        }
    }
    worst
}

/// Runs `session` twice on `inputs` (a reused session must give the same
/// answer) and checks every output against `refs` within `tol`.
pub fn assert_runs_match(
    label: &str,
    session: &mut squeeze::Session,
    inputs: &[Tensor],
    refs: &[Tensor],
    tol: f32,
) {
    let ins: Vec<&Tensor> = inputs.iter().collect();
    for round in 0..2 {
        let outs = session
            .run(&ins)
            .unwrap_or_else(|e| panic!("{label}: run failed: {e}"));
        assert_eq!(outs.len(), refs.len());
        for (j, (got, want)) in outs.iter().zip(refs).enumerate() {
            let (r, at, a, b) = worst_ratio(got, want, tol);
            eprintln!(
                "{label} round={round} output {j}: worst |diff|/tol = {r:.3} at {at} ({a} vs {b})"
            );
            assert!(r <= 1.0, "{label} output {j}: {a} vs reference {b} at {at}");
        }
    }
}

// ---- building small ONNX models in tests (the `onnx` feature) ----

#[cfg(feature = "onnx")]
pub fn attr_i(name: &str, i: i64) -> pb::AttributeProto {
    pb::AttributeProto {
        name: name.into(),
        r#type: 2,
        i,
        ..Default::default()
    }
}
#[cfg(feature = "onnx")]
pub fn attr_f(name: &str, f: f32) -> pb::AttributeProto {
    pb::AttributeProto {
        name: name.into(),
        r#type: 1,
        f,
        ..Default::default()
    }
}
#[cfg(feature = "onnx")]
pub fn attr_ints(name: &str, ints: &[i64]) -> pb::AttributeProto {
    pb::AttributeProto {
        name: name.into(),
        r#type: 7,
        ints: ints.to_vec(),
        ..Default::default()
    }
}
#[cfg(feature = "onnx")]
pub fn attr_t(name: &str, t: pb::TensorProto) -> pb::AttributeProto {
    pb::AttributeProto {
        name: name.into(),
        r#type: 4,
        t: Some(t),
        ..Default::default()
    }
}

#[cfg(feature = "onnx")]
pub fn node(
    op: &str,
    inputs: &[&str],
    outputs: &[&str],
    attrs: Vec<pb::AttributeProto>,
) -> pb::NodeProto {
    pb::NodeProto {
        op_type: op.into(),
        name: format!("{op}_{}", outputs.first().unwrap_or(&"")),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: outputs.iter().map(|s| s.to_string()).collect(),
        attribute: attrs,
        ..Default::default()
    }
}

#[cfg(feature = "onnx")]
pub fn tensor_f32(name: &str, dims: &[i64], data: Vec<f32>) -> pb::TensorProto {
    pb::TensorProto {
        name: name.into(),
        dims: dims.to_vec(),
        data_type: 1,
        float_data: data,
        ..Default::default()
    }
}
#[cfg(feature = "onnx")]
pub fn tensor_i64(name: &str, dims: &[i64], data: Vec<i64>) -> pb::TensorProto {
    pb::TensorProto {
        name: name.into(),
        dims: dims.to_vec(),
        data_type: 7,
        int64_data: data,
        ..Default::default()
    }
}

#[cfg(feature = "onnx")]
pub fn value_info(name: &str, dims: &[i64]) -> pb::ValueInfoProto {
    use pb::tensor_shape_proto::{dimension::Value, Dimension};
    let shape = pb::TensorShapeProto {
        dim: dims
            .iter()
            .map(|&d| Dimension {
                value: Some(Value::DimValue(d)),
                ..Default::default()
            })
            .collect(),
    };
    pb::ValueInfoProto {
        name: name.into(),
        r#type: Some(pb::TypeProto {
            value: Some(pb::type_proto::Value::TensorType(pb::type_proto::Tensor {
                elem_type: 1,
                shape: Some(shape),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[cfg(feature = "onnx")]
/// Encodes a one-graph model of the default domain at `opset`.
pub fn model_bytes(
    nodes: Vec<pb::NodeProto>,
    inits: Vec<pb::TensorProto>,
    inputs: Vec<pb::ValueInfoProto>,
    outputs: Vec<pb::ValueInfoProto>,
    opset: i64,
) -> Vec<u8> {
    let m = pb::ModelProto {
        ir_version: 8,
        opset_import: vec![pb::OperatorSetIdProto {
            domain: String::new(),
            version: opset,
        }],
        graph: Some(pb::GraphProto {
            node: nodes,
            initializer: inits,
            input: inputs,
            output: outputs,
            name: "g".into(),
            ..Default::default()
        }),
        producer_name: "squeeze-tests".into(),
        ..Default::default()
    };
    m.encode_to_vec()
}

/// Deterministic pseudo-random values in [-1, 1).
pub fn pseudo_random(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}
