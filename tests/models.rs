//! Differential tests on real models: squeeze against ONNX Runtime
//! references (scripts/make_references.py), optimizer passes on and off.
//! Tolerance: |squeeze - ort| <= 1e-4 * max(1, |ort|) per element.

mod common;

use std::collections::HashMap;
use std::path::PathBuf;

use squeeze::{LoadOptions, Model, Tensor};

const TOL: f32 = 1e-4;

/// A model's references in `refs/<stem>`: the model file, its input
/// shapes by name, the inputs and ORT's outputs.
struct Reference {
    model: PathBuf,
    shapes: HashMap<String, Vec<usize>>,
    inputs: Vec<Tensor>,
    outputs: Vec<Tensor>,
}

/// Reads `refs/<stem>`; `None` (said loudly) when the reference or the
/// model is missing.
fn reference(stem: &str) -> Option<Reference> {
    let dir = common::cache_dir().join("refs").join(stem);
    let meta_path = dir.join("meta.json");
    let Ok(meta) = std::fs::read_to_string(&meta_path) else {
        common::skip(stem, &format!("no reference at {}", meta_path.display()));
        return None;
    };
    let meta: serde_json::Value = serde_json::from_str(&meta).expect("meta.json");
    let file = PathBuf::from(meta["model"].as_str().expect("model path"))
        .file_name()
        .map(PathBuf::from)
        .expect("model name");
    let fixture = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../models")
        .join(&file);
    let model = if stem.starts_with("light_") {
        common::cache_dir().join("onnx-1.17.0/light").join(&file)
    } else if fixture.exists() {
        fixture
    } else {
        common::models_dir().join(&file)
    };
    if !model.exists() {
        common::skip(stem, &format!("{} missing", model.display()));
        return None;
    }
    let mut shapes = HashMap::new();
    let mut inputs = Vec::new();
    for (i, inp) in meta["inputs"]
        .as_array()
        .expect("inputs")
        .iter()
        .enumerate()
    {
        let shape: Vec<usize> = inp["shape"]
            .as_array()
            .expect("shape")
            .iter()
            .map(|d| d.as_u64().expect("dim") as usize)
            .collect();
        shapes.insert(inp["name"].as_str().expect("name").to_string(), shape);
        inputs.push(squeeze::npy::read(&dir.join(format!("input_{i}.npy"))).expect("input npy"));
    }
    let outputs = (0..meta["outputs"].as_array().expect("outputs").len())
        .map(|j| squeeze::npy::read(&dir.join(format!("output_{j}.npy"))).expect("output npy"))
        .collect();
    Some(Reference {
        model,
        shapes,
        inputs,
        outputs,
    })
}

fn check(stem: &str) {
    let Some(r) = reference(stem) else { return };
    for optimize in [true, false] {
        let opts = LoadOptions {
            optimize,
            input_shapes: r.shapes.clone(),
            ..LoadOptions::default()
        };
        let model =
            Model::load(&r.model, &opts).unwrap_or_else(|e| panic!("{stem}: load failed: {e}"));
        let mut session = model.session().expect("session");
        let label = format!("{stem} (optimize={optimize})");
        common::assert_runs_match(&label, &mut session, &r.inputs, &r.outputs, TOL);
    }
}

/// One session of a model with dynamic input dims, loaded at the first
/// shape of `shapes` (scripts/sqz_models.py `DYNAMIC_SHAPES`), runs every
/// shape against ORT, then the first again from its parked plan.
fn check_shapes(stem: &str, shapes: &[&str]) {
    let Some(refs) = shapes
        .iter()
        .map(|s| reference(&format!("{stem}@{s}")))
        .collect::<Option<Vec<_>>>()
    else {
        return;
    };
    let opts = LoadOptions {
        input_shapes: refs[0].shapes.clone(),
        ..LoadOptions::default()
    };
    let model =
        Model::load(&refs[0].model, &opts).unwrap_or_else(|e| panic!("{stem}: load failed: {e}"));
    assert!(
        model.is_dynamic(),
        "{stem}: its input dims should stay dynamic"
    );
    let mut session = model.session().expect("session");
    for (shape, r) in shapes.iter().zip(&refs).chain([(&shapes[0], &refs[0])]) {
        let label = format!("{stem} at {shape}");
        common::assert_runs_match(&label, &mut session, &r.inputs, &r.outputs, TOL);
        let prepared = session.prepared();
        let input = prepared.graph().inputs[0];
        let now = &prepared.graph().values[input].info.shape;
        assert_eq!(now, r.inputs[0].shape(), "{label}: the session's shape");
    }
}

#[test]
fn ppocr_det_v4_shapes() {
    check_shapes(
        "ppocr-det-v4",
        &["1x3x320x448", "1x3x480x480", "1x3x640x352"],
    );
}

#[test]
fn ppocr_rec_v4_shapes() {
    check_shapes("ppocr-rec-v4", &["1x3x48x160", "1x3x48x480", "1x3x48x256"]);
}

macro_rules! model_tests {
    ($($name:ident => $stem:expr),* $(,)?) => {
        $( #[test] fn $name() { check($stem) } )*
    };
}

model_tests! {
    detector_head => "detector-head",
    sequence_head => "sequence-head",
    signal_head => "signal-head",
    mobilenetv2 => "mobilenetv2",
    mobilenetv3_small => "mobilenetv3-small",
    squeezenet1_1 => "squeezenet1.1",
    shufflenetv2 => "shufflenetv2-x1.0",
    resnet18 => "resnet18",
    efficientnet_lite0 => "efficientnet-lite0-fp32",
    ppocr_det_v4 => "ppocr-det-v4",
    ppocr_cls_mobile_v2 => "ppocr-cls-mobile-v2",
    ppocr_rec_v4 => "ppocr-rec-v4",
    blazeface => "blazeface-short",
    selfie_segmentation => "selfie-segmentation",
    light_alexnet => "light_bvlc_alexnet",
    light_densenet121 => "light_densenet121",
    light_inception_v1 => "light_inception_v1",
    light_inception_v2 => "light_inception_v2",
    light_resnet50 => "light_resnet50",
    light_shufflenet => "light_shufflenet",
    light_squeezenet => "light_squeezenet",
    light_vgg19 => "light_vgg19",
    light_zfnet512 => "light_zfnet512",
}
