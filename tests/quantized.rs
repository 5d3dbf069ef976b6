//! Quantized models (ONNX Runtime's static int8 EfficientNet-Lite0, QDQ and
//! QOperator forms) run through the integer kernels and match ONNX
//! Runtime's output (scripts/make_references.py, a real photo as input).
//! With the `onnx` feature the `.onnx` files are imported; without it (the
//! aarch64 run under qemu) the `.sqz` files that
//! scripts/pack-test-models.sh packs from them on the host are loaded.
//!
//! Tolerance, in steps of the output's quantization: squeeze requantizes
//! in exact fixed point where ORT rounds a float32 product, so single
//! layers differ from ORT only where ORT's rounding is inexact (8 of
//! 401,408 values of the first conv), but such one-step differences grow
//! through the 49 layers: at most 3 steps on any logit, at most 0.5 step
//! on average, and the same top-1 class. 1 and 2 threads and the scalar
//! kernels agree exactly (the same integer arithmetic), and both forms
//! give identical outputs (they import to the same integer graph).
//!
//! ORT's own u8 x s8 kernels saturate on x86 without VNNI, so there
//! scripts/make_references.py takes the QOperator model's reference from
//! ORT's run of its QDQ form (recorded as the reference's `note`).

mod common;

use std::path::PathBuf;

use squeeze::exec::kernels::Isa;
use squeeze::{LoadOptions, Model, Tensor};

const MAX_STEPS: f32 = 3.0;
const MEAN_STEPS: f32 = 0.5;

fn argmax(v: &[f32]) -> usize {
    (0..v.len())
        .max_by(|&i, &j| v[i].total_cmp(&v[j]))
        .unwrap_or(0)
}

/// The model file (`.onnx` with the importer, else the packed `.sqz`).
fn model_path(stem: &str, onnx_name: PathBuf) -> PathBuf {
    if cfg!(feature = "onnx") {
        common::models_dir().join(onnx_name)
    } else {
        std::env::var_os("SQUEEZE_SQZ_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| common::cache_dir().join("sqz-f32"))
            .join(format!("{stem}.sqz"))
    }
}

/// The model, its input and ORT's output and output step, if present.
fn reference(stem: &str) -> Option<(PathBuf, Tensor, Tensor, f32)> {
    let dir = common::cache_dir().join("refs").join(stem);
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("meta.json")).ok()?).ok()?;
    let file = PathBuf::from(meta["model"].as_str()?)
        .file_name()?
        .to_owned();
    let model = model_path(stem, file.into());
    let step = meta["output_step"].as_f64()? as f32;
    if let Some(note) = meta["note"].as_str() {
        eprintln!("{stem}: {note}");
    }
    let input = squeeze::npy::read(&dir.join("input_0.npy")).ok()?;
    let output = squeeze::npy::read(&dir.join("output_0.npy")).ok()?;
    model.exists().then_some((model, input, output, step))
}

fn run(model: &Model, input: &Tensor) -> Vec<f32> {
    let mut s = model.session().expect("session");
    s.run(&[input]).expect("run")[0].to_f32_vec()
}

/// Checks one model against ORT; returns its output (`None`: not run).
fn check(stem: &str) -> Option<Vec<f32>> {
    let Some((path, input, want, step)) = reference(stem) else {
        common::skip(
            stem,
            "no reference (scripts/fetch-test-data.sh), model or .sqz missing",
        );
        return None;
    };
    let model = Model::load(&path, &LoadOptions::default()).expect("load");
    let names = model.prepared().kernel_names();
    let integer = names
        .iter()
        .flatten()
        .filter(|n| n.starts_with("u8_q"))
        .count();
    assert!(
        integer >= 49 + 10,
        "{stem}: the quantized ops must run as integer kernels: {names:?}"
    );
    if let Ok(want) = std::env::var("SQUEEZE_EXPECT_ISA") {
        let suffix = match want.as_str() {
            "avx512" => "avx512vnni",
            other => other,
        };
        let isa_kernels = names
            .iter()
            .flatten()
            .filter(|n| n.ends_with(suffix))
            .count();
        assert_eq!(
            isa_kernels, integer,
            "{stem}: integer kernels not all {suffix}: {names:?}"
        );
    }
    let got = run(&model, &input);
    let want = want.to_f32_vec();
    let steps: Vec<f32> = got
        .iter()
        .zip(&want)
        .map(|(a, b)| ((a - b) / step).abs())
        .collect();
    let max = steps.iter().copied().fold(0.0, f32::max);
    let mean = steps.iter().sum::<f32>() / steps.len() as f32;
    eprintln!("{stem}: max {max:.2} steps, mean {mean:.3} steps of {step}");
    assert!(max <= MAX_STEPS + 1e-3, "{stem}: {max} steps off ORT");
    assert!(
        mean <= MEAN_STEPS,
        "{stem}: {mean} steps off ORT on average"
    );
    assert_eq!(
        argmax(&got),
        argmax(&want),
        "{stem}: top-1 differs from ORT"
    );
    for (threads, isa) in [(2, None), (1, Some(Isa::Scalar))] {
        let opts = LoadOptions {
            threads,
            isa,
            ..LoadOptions::default()
        };
        let other = run(&Model::load(&path, &opts).expect("load"), &input);
        assert_eq!(other, got, "{stem}: {threads} threads, {isa:?} differ");
    }
    Some(got)
}

macro_rules! model_tests {
    ($($name:ident => $stem:expr),* $(,)?) => {
        $( #[test] fn $name() { check($stem); } )*
    };
}

// scripts/pack-test-models.sh packs the stems of this list (one per line).
model_tests! {
    efficientnet_lite0_int8_qop => "efficientnet-lite0-int8-qop",
    efficientnet_lite0_int8_qdq => "efficientnet-lite0-int8-qdq",
}

#[test]
fn qdq_and_qoperator_forms_run_the_same_integer_graph() {
    let inputs = ["efficientnet-lite0-int8-qop", "efficientnet-lite0-int8-qdq"].map(reference);
    let [Some(qop), Some(qdq)] = inputs else {
        return common::skip("QDQ vs QOperator", "references or models missing");
    };
    let opts = LoadOptions::default();
    let a = run(&Model::load(&qop.0, &opts).expect("load"), &qop.1);
    let b = run(&Model::load(&qdq.0, &opts).expect("load"), &qop.1);
    assert_eq!(
        a, b,
        "QDQ and QOperator forms import to the same integer graph"
    );
}
