//! A real camera frame end to end: the NV21 frame of ../shared (a photo
//! turned into what an Android camera delivers), rotated a quarter turn,
//! goes through the frame path straight into MobileNetV2's input and is
//! run; scripts/make_references.py converts the same frame with its own
//! numpy implementation and runs ONNX Runtime on it. The converted inputs
//! agree within one 8-bit step and the outputs with cosine >= 0.999.
//! With the `onnx` feature the `.onnx` is imported; without it (aarch64
//! under qemu) the `.sqz` packed on the host is loaded.

mod common;

use std::path::PathBuf;

use squeeze::frame::{Frame, FrameOptions, Normalize, PixelFormat, Preprocess, Rotation};
use squeeze::{LoadOptions, Model};

fn model_path(stem: &str) -> PathBuf {
    if cfg!(feature = "onnx") {
        common::models_dir().join(format!("{stem}.onnx"))
    } else {
        std::env::var_os("SQUEEZE_SQZ_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| common::cache_dir().join("sqz-f32"))
            .join(format!("{stem}.sqz"))
    }
}

fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(&x, &y)| x as f64 * y as f64).sum();
    let norm = |v: &[f32]| v.iter().map(|&x| (x as f64).powi(2)).sum::<f64>().sqrt();
    dot / (norm(a) * norm(b))
}

#[test]
fn an_nv21_camera_frame_through_mobilenetv2_matches_onnx_runtime() {
    let dir = common::cache_dir().join("refs/frame-mobilenetv2");
    let Ok(text) = std::fs::read_to_string(dir.join("meta.json")) else {
        return common::skip("frame-mobilenetv2", "no reference");
    };
    let meta: serde_json::Value = serde_json::from_str(&text).expect("meta.json");
    let frame_path = common::models_dir().join("data/camera_coffee_1920x1080.nv21");
    let model_file = model_path("mobilenetv2");
    let (Ok(bytes), true) = (std::fs::read(&frame_path), model_file.exists()) else {
        return common::skip("frame-mobilenetv2", "frame or model missing");
    };
    let num = |k: &str| meta[k].as_u64().expect(k) as usize;
    let triple =
        |k: &str| -> [f32; 3] { std::array::from_fn(|i| meta[k][i].as_f64().expect(k) as f32) };
    let (w, h) = (num("width"), num("height"));
    let frame = Frame::packed(PixelFormat::Nv21, &bytes, w, h).expect("frame");
    let opts = FrameOptions {
        rotation: Rotation::from_degrees(num("rotate") as u32).expect("rotation"),
        ..Default::default()
    };
    let pre = Preprocess {
        normalize: Normalize {
            scale: 1.0 / 255.0,
            mean: triple("mean"),
            std: triple("std"),
        },
        ..Default::default()
    };
    let model = Model::load(&model_file, &LoadOptions::default()).expect("model");
    let mut converter = model.frame_converter(0, Some(&pre)).expect("converter");
    let mut session = model.session().expect("session");
    session
        .write_frame(0, &mut converter, &frame, &opts)
        .expect("frame");

    let want_in = squeeze::npy::read(&dir.join("input_0.npy")).expect("input");
    let got_in = session.input_mut(0).expect("input").to_vec();
    let std = triple("std");
    let plane = got_in.len() / 3;
    let worst_step = got_in
        .iter()
        .zip(want_in.to_f32_vec())
        .enumerate()
        .map(|(i, (&a, b))| ((a - b) * std[i / plane] * 255.0).abs())
        .fold(0.0f32, f32::max);
    eprintln!("frame conversion: worst {worst_step:.4} of an 8-bit step off the numpy reference");
    assert!(
        worst_step <= 1.0,
        "converted input off by {worst_step} steps"
    );

    session.run_in_place().expect("run");
    let got = session.output(0).expect("output").to_vec();
    let want = squeeze::npy::read(&dir.join("output_0.npy"))
        .expect("output")
        .to_f32_vec();
    let c = cosine(&got, &want);
    eprintln!("MobileNetV2 on the frame: cosine {c:.6} with ONNX Runtime");
    assert!(c >= 0.999, "cosine {c}");
}
