//! ONNX backend node tests from the onnx 1.17.0 wheel (unpacked by
//! scripts/fetch-test-data.sh). Every test either passes or is listed as
//! unsupported with the typed error that says why; none may give a wrong
//! answer or an untyped failure. Tolerance as ONNX's backend runner:
//! |got - want| <= 1e-7 + 1e-3 * |want|.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use prost::Message;
use squeeze::onnx::{import_model, narrow_dtype, to_tensor, ImportOptions};
use squeeze::{DType, Error, LoadOptions, Model, Tensor};
use tract_onnx::pb;

enum Outcome {
    Pass,
    Unsupported(String),
    Fail(String),
}

/// A tensor file, and the 8- or 32-bit integer type its integers (read as
/// i64) had in the file.
fn read_pb(path: &Path) -> squeeze::Result<(Tensor, Option<DType>)> {
    let bytes = std::fs::read(path).map_err(|e| Error::Io {
        path: path.to_path_buf(),
        source: e,
    })?;
    let proto = pb::TensorProto::decode(bytes.as_slice()).map_err(|e| {
        Error::Malformed(format!("unsupported element type or non-tensor data: {e}"))
    })?;
    Ok((to_tensor(&proto, None)?, narrow_dtype(proto.data_type)))
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
        (Ok(i), Ok(o)) => (i.into_iter().map(|(t, _)| t).collect::<Vec<_>>(), o),
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
        Error::UnsupportedOp { .. } | Error::InputValueNeeded { .. } => true,
        Error::Malformed(m) => m.contains("unsupported element type"),
        Error::Input(m) => m.contains("unsupported element type"),
        _ => false,
    };
    // Inputs feeding operands that must be known when the model is
    // prepared (a Reduce's axes given as an input…) are fixed at import,
    // one by one as the importer names them, as an app would at load.
    let mut values: HashMap<String, Tensor> = HashMap::new();
    let imported = loop {
        let opts = ImportOptions {
            input_shapes: shapes.clone(),
            input_values: values.clone(),
        };
        match import_model(&model, Some(dir), &opts) {
            Err(Error::InputValueNeeded { input, .. }) if !values.contains_key(&input) => {
                let Some(i) = names.iter().position(|n| *n == input) else {
                    return Outcome::Fail(format!("import asks for unknown input {input:?}"));
                };
                values.insert(input, inputs[i].clone());
            }
            other => break other,
        }
    };
    let inputs: Vec<&Tensor> = names
        .iter()
        .zip(&inputs)
        .filter(|(n, _)| !values.contains_key(**n))
        .map(|(_, t)| t)
        .collect();
    let graph = match imported {
        Ok((g, _)) => g,
        Err(e) if unsupported(&e) => return Outcome::Unsupported(e.to_string()),
        Err(e) => return Outcome::Fail(format!("import: {e}")),
    };
    let run = || -> squeeze::Result<Vec<Tensor>> {
        let m = Model::from_graph(graph, &LoadOptions::default(), Default::default())?;
        let mut s = m.session()?;
        s.run(&inputs)
    };
    let outs = match run() {
        Ok(o) => o,
        Err(e) if unsupported(&e) => return Outcome::Unsupported(e.to_string()),
        Err(e) => return Outcome::Fail(format!("run: {e}")),
    };
    if outs.len() != wants.len() {
        return Outcome::Fail(format!("{} outputs, {} expected", outs.len(), wants.len()));
    }
    // Integers are read as i64, which is how squeeze computes them too,
    // except quantized tensors: those keep their 8-bit file type.
    for (j, (got, (want, narrow))) in outs.iter().zip(&wants).enumerate() {
        if got.shape() != want.shape() {
            return Outcome::Fail(format!(
                "output {j}: shape {:?}, expected {:?}",
                got.shape(),
                want.shape()
            ));
        }
        if got.dtype() != want.dtype() && Some(got.dtype()) != *narrow {
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
    let (mut passed, mut fails, mut unsupported) = (Vec::new(), Vec::new(), Vec::new());
    for d in &dirs {
        let name = d
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        match std::panic::catch_unwind(|| run_case(d)) {
            Ok(Outcome::Pass) => passed.push(name),
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
    let report_path = common::repo_root().join("tests/onnx-node-unsupported.tsv");
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
        "onnx backend node tests: pass {}, fail {}, unsupported {} (of {})",
        passed.len(),
        fails.len(),
        unsupported.len(),
        dirs.len()
    );
    assert!(fails.is_empty(), "{} node tests failed", fails.len());
    check_pass_list(&passed, &report, &report_path);
}

/// The checked-in lists: the passing tests (tests/onnx-node-passing.txt)
/// and the unsupported ones with their reasons (…-unsupported.tsv). A
/// listed test that no longer passes fails, and so does a newly passing
/// one until it is listed, so the lists stay exact. `SQUEEZE_BLESS=1`
/// rewrites both.
fn check_pass_list(passed: &[String], unsupported: &str, unsupported_path: &Path) {
    let path = common::repo_root().join("tests/onnx-node-passing.txt");
    let list: String = passed.iter().map(|n| format!("{n}\n")).collect();
    if std::env::var_os("SQUEEZE_BLESS").is_some() {
        std::fs::write(&path, &list).expect("write the pass list");
        std::fs::write(unsupported_path, unsupported).expect("write the unsupported list");
        return;
    }
    let listed = std::fs::read_to_string(&path).unwrap_or_default();
    let listed: Vec<&str> = listed.lines().filter(|l| !l.is_empty()).collect();
    let regressed: Vec<&&str> = listed
        .iter()
        .filter(|n| !passed.iter().any(|p| p == *n))
        .collect();
    let new: Vec<&String> = passed
        .iter()
        .filter(|p| !listed.contains(&p.as_str()))
        .collect();
    assert!(
        regressed.is_empty(),
        "{} listed node tests no longer pass: {regressed:?}",
        regressed.len()
    );
    assert!(
        new.is_empty(),
        "{} node tests pass but are not in {}: {new:?} (SQUEEZE_BLESS=1 adds them)",
        new.len(),
        path.display()
    );
    let listed = std::fs::read_to_string(unsupported_path).unwrap_or_default();
    assert!(
        listed == unsupported,
        "the unsupported tests or their reasons differ from {} (SQUEEZE_BLESS=1 rewrites it)",
        unsupported_path.display()
    );
}
