//! Differential tests of `.sqz` files against ONNX Runtime references
//! (scripts/make_references.py). The models are packed to f32 `.sqz` on the
//! host (scripts/pack-test-models.sh, run by scripts/test.sh and
//! scripts/test-aarch64.sh) into `SQUEEZE_SQZ_DIR` (default
//! `$SQUEEZE_CACHE/sqz-f32`), so this test needs no ONNX import and runs
//! without the `onnx` feature: it is the model test of aarch64 under qemu.
//! Tolerance as in models.rs: |squeeze - ort| <= 1e-4 * max(1, |ort|).
//!
//! The models below are the ones scripts/pack-test-models.sh packs (it reads
//! this list): every model of models.rs but six of its nine ONNX `light_*`
//! models, left to models.rs on the host. Their weights are constants and
//! their references a uniform softmax, so they test the plumbing more than
//! the numbers, and under qemu they are slow: `light_vgg19` (20 GFLOPs)
//! takes over 4 minutes per CPU model, densenet121, inception_v1/v2,
//! resnet50 and zfnet512 together over 3; everything below together about 2.

mod common;

use std::path::PathBuf;

use squeeze::exec::kernels::Isa;
use squeeze::{LoadOptions, Model, Tensor};

const TOL: f32 = 1e-4;

/// `SQUEEZE_SQZ_DIR`, default `$SQUEEZE_CACHE/sqz-f32`.
fn sqz_dir() -> PathBuf {
    std::env::var_os("SQUEEZE_SQZ_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| common::cache_dir().join("sqz-f32"))
}

fn check(stem: &str) {
    let dir = common::cache_dir().join("refs").join(stem);
    let meta_path = dir.join("meta.json");
    let Ok(meta) = std::fs::read_to_string(&meta_path) else {
        return common::skip(stem, &format!("no reference at {}", meta_path.display()));
    };
    let sqz = sqz_dir().join(format!("{stem}.sqz"));
    if !sqz.exists() {
        return common::skip(
            stem,
            &format!("{} missing: run scripts/pack-test-models.sh", sqz.display()),
        );
    }
    let meta: serde_json::Value = serde_json::from_str(&meta).expect("meta.json");
    let model = Model::load(&sqz, &LoadOptions::default())
        .unwrap_or_else(|e| panic!("{stem}: load failed: {e}"));

    // A silent fallback to another ISA (or to the scalar reference for the
    // convolutions) fails here, not only in the kernel conformance test.
    if let Ok(want) = std::env::var("SQUEEZE_EXPECT_ISA") {
        let want = Isa::from_name(&want).expect("SQUEEZE_EXPECT_ISA names an ISA");
        assert_eq!(model.prepared().isa(), want, "{stem}: ISA");
        let names = model.prepared().kernel_names();
        let simd = names
            .iter()
            .flatten()
            .filter(|n| n.ends_with(want.name()))
            .count();
        assert!(
            simd > 0,
            "{stem}: no {} kernel chosen: {names:?}",
            want.name()
        );
        eprintln!(
            "{stem}: {simd} of {} kernels are {}",
            names.iter().flatten().count(),
            want.name()
        );
    }

    let mut inputs = Vec::new();
    let infos = model.inputs();
    let metas = meta["inputs"].as_array().expect("inputs");
    assert_eq!(infos.len(), metas.len(), "{stem}: input count");
    for (i, (inp, info)) in metas.iter().zip(&infos).enumerate() {
        let shape: Vec<usize> = inp["shape"]
            .as_array()
            .expect("shape")
            .iter()
            .map(|d| d.as_u64().expect("dim") as usize)
            .collect();
        assert_eq!(
            info.shape, shape,
            "{stem}: input {i} packed with another shape"
        );
        inputs.push(squeeze::npy::read(&dir.join(format!("input_{i}.npy"))).expect("input npy"));
    }
    let refs: Vec<Tensor> = (0..meta["outputs"].as_array().expect("outputs").len())
        .map(|j| squeeze::npy::read(&dir.join(format!("output_{j}.npy"))).expect("output npy"))
        .collect();
    let mut session = model.session().expect("session");
    common::assert_runs_match(&format!("{stem} (.sqz)"), &mut session, &inputs, &refs, TOL);
}

macro_rules! model_tests {
    ($($name:ident => $stem:expr),* $(,)?) => {
        $( #[test] fn $name() { check($stem) } )*
    };
}

// scripts/pack-test-models.sh packs the stems of this list (one per line).
model_tests! {
    mobilenetv2 => "mobilenetv2",
    sequence_head => "sequence-head",
    signal_head => "signal-head",
    mobilenetv3_small => "mobilenetv3-small",
    squeezenet1_1 => "squeezenet1.1",
    shufflenetv2 => "shufflenetv2-x1.0",
    resnet18 => "resnet18",
    efficientnet_lite0 => "efficientnet-lite0-fp32",
    ppocr_det_v4 => "ppocr-det-v4",
    ppocr_cls_mobile_v2 => "ppocr-cls-mobile-v2",
    blazeface => "blazeface-short",
    selfie_segmentation => "selfie-segmentation",
    ppocr_rec_v4 => "ppocr-rec-v4",
    light_alexnet => "light_bvlc_alexnet",
    light_shufflenet => "light_shufflenet",
    light_squeezenet => "light_squeezenet",
}
