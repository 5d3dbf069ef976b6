//! ONNX backend node tests from the onnx 1.17.0 wheel (unpacked by
//! scripts/fetch-test-data.sh). Every test either passes or is listed as
//! unsupported with the typed error that says why; none may give a wrong
//! answer or an untyped failure. Tolerance as ONNX's backend runner:
//! |got - want| <= 1e-7 + 1e-3 * |want|.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use prost::Message;
use squeeze::onnx::{import_model, to_tensor, ImportOptions};
use squeeze::{Error, LoadOptions, Model, Tensor};
use tract_onnx::pb;

enum Outcome {
    Pass,
    Unsupported(String),
    Fail(String),
}

fn read_pb(path: &Path) -> squeeze::Result<Tensor> {
    let bytes = std::fs::read(path).map_err(|e| Error::Io {
        path: path.to_path_buf(),
        source: e,
    })?;
    let proto = pb::TensorProto::decode(bytes.as_slice()).map_err(|e| {
        Error::Malformed(format!("unsupported element type or non-tensor data: {e}"))
    })?;
    to_tensor(&proto, None)
}

fn files(dir: &Path, prefix: &str) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = (0..)
        .map(|i| dir.join(format!("{prefix}_{i}.pb")))
        .take_while(|p| p.exists())
        .collect();
    v.sort();
    v
}

fn run_case(dir: &Path) -> Outcome {
    let bytes = std::fs::read(dir.join("model.onnx")).expect("model.onnx");
    let model = match pb::ModelProto::decode(bytes.as_slice()) {
        Ok(m) => m,
        Err(e) => return Outcome::Fail(format!("protobuf: {e}")),
    };
    let data = dir.join("test_data_set_0");
    let read_all = |prefix: &str| {
        files(&data, prefix)
            .iter()
            .map(|p| read_pb(p))
            .collect::<squeeze::Result<Vec<_>>>()
    };
    let (inputs, wants) = match (read_all("input"), read_all("output")) {
        (Ok(i), Ok(o)) => (i, o),
        (Err(e), _) | (_, Err(e)) => return Outcome::Unsupported(format!("test data: {e}")),
    };
    let graph = model.graph.as_ref().expect("graph");
    let inits: Vec<&str> = graph.initializer.iter().map(|t| t.name.as_str()).collect();
    let names: Vec<&str> = graph
        .input
        .iter()
        .map(|i| i.name.as_str())
        .filter(|n| !inits.contains(n))
        .collect();
    let shapes: HashMap<String, Vec<usize>> = names
        .iter()
        .zip(&inputs)
        .map(|(n, t)| (n.to_string(), t.shape().to_vec()))
        .collect();
    let unsupported = |e: &Error| match e {
        Error::UnsupportedOp { .. } => true,
        Error::Malformed(m) => m.contains("unsupported element type"),
        Error::Input(m) => m.contains("unsupported element type"),
        _ => false,
    };
    let imported = import_model(
        &model,
        Some(dir),
        &ImportOptions {
            input_shapes: shapes,
        },
    );
    let graph = match imported {
        Ok((g, _)) => g,
        Err(e) if unsupported(&e) => return Outcome::Unsupported(e.to_string()),
        Err(e) => return Outcome::Fail(format!("import: {e}")),
    };
    let run = || -> squeeze::Result<Vec<Tensor>> {
        let m = Model::from_graph(graph, &LoadOptions::default(), Default::default())?;
        let mut s = m.session()?;
        s.run(&inputs.iter().collect::<Vec<_>>())
    };
    let outs = match run() {
        Ok(o) => o,
        Err(e) if unsupported(&e) => return Outcome::Unsupported(e.to_string()),
        Err(e) => return Outcome::Fail(format!("run: {e}")),
    };
    if outs.len() != wants.len() {
        return Outcome::Fail(format!("{} outputs, {} expected", outs.len(), wants.len()));
    }
    for (j, (got, want)) in outs.iter().zip(&wants).enumerate() {
        if got.shape() != want.shape() {
            return Outcome::Fail(format!(
                "output {j}: shape {:?}, expected {:?}",
                got.shape(),
                want.shape()
            ));
        }
        if got.dtype() != want.dtype() {
            return Outcome::Fail(format!(
                "output {j}: dtype {:?}, expected {:?}",
                got.dtype(),
                want.dtype()
            ));
        }
        let (g, w) = (got.to_f32_vec(), want.to_f32_vec());
        for (i, (&a, &b)) in g.iter().zip(&w).enumerate() {
            let ok = (a.is_nan() && b.is_nan()) || a == b || (a - b).abs() <= 1e-7 + 1e-3 * b.abs();
            if !ok {
                return Outcome::Fail(format!("output {j}[{i}]: {a} vs {b}"));
            }
        }
    }
    Outcome::Pass
}

#[test]
fn onnx_backend_node_tests() {
    let root = common::cache_dir().join("onnx-1.17.0/node");
    let Ok(entries) = std::fs::read_dir(&root) else {
        return common::skip(
            "ONNX backend node tests",
            &format!("{} missing", root.display()),
        );
    };
    let mut dirs: Vec<_> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("model.onnx").exists())
        .collect();
    dirs.sort();
    let (mut pass, mut fails, mut unsupported) = (0, Vec::new(), Vec::new());
    for d in &dirs {
        let name = d
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        match std::panic::catch_unwind(|| run_case(d)) {
            Ok(Outcome::Pass) => pass += 1,
            Ok(Outcome::Unsupported(why)) => unsupported.push((name, why)),
            Ok(Outcome::Fail(why)) => fails.push((name, why)),
            Err(_) => fails.push((name, "PANIC".to_string())),
        }
    }
    let mut by_reason: BTreeMap<String, usize> = BTreeMap::new();
    for (_, why) in &unsupported {
        let key = why.split(" (node").next().unwrap_or(why).to_string();
        *by_reason.entry(key).or_default() += 1;
    }
    let report: String = unsupported
        .iter()
        .map(|(n, w)| format!("{n}\t{w}\n"))
        .collect();
    let report_path = common::cache_dir().join("node-tests-unsupported.tsv");
    let _ = std::fs::write(&report_path, report);
    eprintln!(
        "unsupported, by op (full list in {}):",
        report_path.display()
    );
    for (reason, n) in &by_reason {
        eprintln!("  {n:>4}  {reason}");
    }
    for (n, why) in &fails {
        eprintln!("FAIL {n}: {why}");
    }
    eprintln!(
        "onnx backend node tests: pass {pass}, fail {}, unsupported {} (of {})",
        fails.len(),
        unsupported.len(),
        dirs.len()
    );
    assert!(fails.is_empty(), "{} node tests failed", fails.len());
}
