//! Weight-only quantization accuracy on real data (models with trained
//! weights from ../shared/models): f16 and int8 `.sqz` against the float
//! model. Targets (issue 3): top-1 agreement >= 99 % on EfficientNet-Lite0
//! over the real photos; output cosine >= 0.999 on PP-OCR det and cls with
//! text images. Figures are also written to $SQUEEZE_CACHE/accuracy.json.

mod common;

use std::path::{Path, PathBuf};

use image::imageops::FilterType;
use squeeze::pack::ptq::QuantizeOptions;
use squeeze::pack::{self, Metadata, PackOptions, Storage};
use squeeze::{LoadOptions, Model, Tensor};

/// NCHW f32 from an RGB image: `(px[c] * scale - mean) / std`, optional BGR.
fn to_tensor(img: &image::RgbImage, bgr: bool, scale: f32, mean: f32, std: f32) -> Tensor {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let mut data = vec![0f32; 3 * h * w];
    for (x, y, px) in img.enumerate_pixels() {
        for c in 0..3 {
            let src = if bgr { 2 - c } else { c };
            data[(c * h + y as usize) * w + x as usize] = (px[src] as f32 * scale - mean) / std;
        }
    }
    Tensor::from_f32(vec![1, 3, h, w], data).expect("tensor")
}

/// EfficientNet-Lite0 preprocessing: short side 256 (bilinear), centre crop 224, (x-127)/128.
fn classifier_input(path: &Path) -> Tensor {
    let img = image::open(path).expect("photo").to_rgb8();
    let (w, h) = (img.width(), img.height());
    let s = 256.0 / w.min(h) as f32;
    let (nw, nh) = (
        ((w as f32 * s).round() as u32).max(224),
        ((h as f32 * s).round() as u32).max(224),
    );
    let img = image::imageops::resize(&img, nw, nh, FilterType::Triangle);
    let crop = image::imageops::crop_imm(&img, (nw - 224) / 2, (nh - 224) / 2, 224, 224).to_image();
    to_tensor(&crop, false, 1.0, 127.0, 128.0)
}

/// PP-OCR preprocessing (BGR, x/255, (x-0.5)/0.5) at a given size.
fn ocr_input(path: &Path, w: u32, h: u32, pad_to: Option<u32>) -> Tensor {
    let img = image::open(path).expect("text image").to_rgb8();
    let img = image::imageops::resize(&img, w, h, FilterType::Triangle);
    let t = to_tensor(&img, true, 1.0 / 255.0, 0.5, 0.5);
    match pad_to {
        Some(pw) if pw > w => {
            let (hh, ww) = (h as usize, w as usize);
            let mut data = vec![0f32; 3 * hh * pw as usize];
            let src = t.as_f32().expect("f32");
            for c in 0..3 {
                for y in 0..hh {
                    let d = (c * hh + y) * pw as usize;
                    data[d..d + ww].copy_from_slice(&src[(c * hh + y) * ww..][..ww]);
                }
            }
            Tensor::from_f32(vec![1, 3, hh, pw as usize], data).expect("tensor")
        }
        _ => t,
    }
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    v.retain(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("png" | "jpg")));
    v.sort();
    v
}

/// The float model and its f16 and int8 weight-only packs (int8 biases
/// corrected on `calibration`).
fn variants(
    model: &Path,
    shapes: &[(&str, Vec<usize>)],
    calibration: Vec<Vec<Tensor>>,
    f16_kernel_max: usize,
) -> Vec<(&'static str, Model)> {
    let opts = LoadOptions {
        input_shapes: shapes
            .iter()
            .map(|(n, s)| (n.to_string(), s.clone()))
            .collect(),
        ..LoadOptions::default()
    };
    let float = Model::load(model, &opts).expect("float model");
    let mut out = vec![];
    for (name, storage) in [("f16", Storage::F16), ("int8", Storage::Int8)] {
        let popts = PackOptions {
            weights: storage,
            calibration: calibration.clone(),
            f16_kernel_max,
            ..PackOptions::default()
        };
        let (bytes, _) =
            pack::pack(float.graph(), &Metadata::default(), &popts, &|| ()).expect("pack");
        out.push((
            name,
            Model::from_sqz_bytes(&bytes, &LoadOptions::default()).expect("load sqz"),
        ));
    }
    out.insert(0, ("float", float));
    out
}

/// `float` statically quantized to int8 on `calibration`, packed and loaded.
fn static_int8(float: &Model, calibration: Vec<Vec<Tensor>>) -> Model {
    let popts = PackOptions {
        weights: Storage::Int8,
        calibration,
        quantize: Some(QuantizeOptions::default()),
        ..PackOptions::default()
    };
    let (bytes, report) =
        pack::pack(float.graph(), &Metadata::default(), &popts, &|| ()).expect("pack");
    let int8 = report.layers.iter().filter(|l| l.int8).count();
    eprintln!("static int8: {int8} of {} layers int8", report.layers.len());
    Model::from_sqz_bytes(&bytes, &LoadOptions::default()).expect("load sqz")
}

/// Runs every variant on every input, two threads, returning outputs[variant][input].
fn run_all(models: &[(&str, Model)], inputs: &[Tensor]) -> Vec<Vec<Vec<f32>>> {
    models
        .iter()
        .map(|(_, m)| {
            let half = inputs.len().div_ceil(2);
            std::thread::scope(|s| {
                let jobs: Vec<_> = inputs
                    .chunks(half.max(1))
                    .map(|chunk| {
                        s.spawn(move || {
                            let mut session = m.session().expect("session");
                            chunk
                                .iter()
                                .map(|t| session.run(&[t]).expect("run")[0].to_f32_vec())
                                .collect::<Vec<_>>()
                        })
                    })
                    .collect();
                jobs.into_iter()
                    .flat_map(|j| j.join().expect("thread"))
                    .collect()
            })
        })
        .collect()
}

fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum();
    let na: f64 = a.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    dot / (na * nb).max(f64::MIN_POSITIVE)
}

fn argmax(v: &[f32]) -> usize {
    (0..v.len())
        .max_by(|&i, &j| v[i].total_cmp(&v[j]))
        .unwrap_or(0)
}

fn record(key: &str, value: serde_json::Value) {
    let path = common::cache_dir().join("accuracy.json");
    let mut all: serde_json::Map<String, serde_json::Value> = std::fs::read(&path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    all.insert(key.to_string(), value);
    let _ = std::fs::create_dir_all(common::cache_dir());
    let _ = std::fs::write(&path, serde_json::to_vec_pretty(&all).unwrap_or_default());
}

#[test]
fn efficientnet_lite0_top1_agreement_on_real_photos() {
    let dir = common::models_dir();
    let model = dir.join("efficientnet-lite0-fp32.onnx");
    // Calibrate on the 20 scene photos, measure on the 196 object photos.
    let calib: Vec<PathBuf> = files(&dir.join("data/images"));
    let photos: Vec<PathBuf> = files(&dir.join("data/objects"));
    if !model.exists() || photos.len() < 190 || calib.is_empty() {
        return common::skip("EfficientNet-Lite0 accuracy", "model or photos missing");
    }
    let inputs: Vec<Tensor> = photos.iter().map(|p| classifier_input(p)).collect();
    let calibration: Vec<Vec<Tensor>> = calib.iter().map(|p| vec![classifier_input(p)]).collect();
    let models = variants(
        &model,
        &[],
        calibration.clone(),
        PackOptions::default().f16_kernel_max,
    );
    let static_int8 = static_int8(&models[0].1, calibration.clone());
    let outs = run_all(&models, &inputs);
    // Our float top-1 on the scene photos against ONNX Runtime's, from the
    // shared expectations (which list only data/images).
    let scenes: Vec<Tensor> = calibration.into_iter().flatten().collect();
    let scene_outs = run_all(&models[..1], &scenes);
    let expected = std::fs::read_to_string(dir.join("data/expected_top1.tsv")).unwrap_or_default();
    let ort_top1 = |p: &Path| -> Option<usize> {
        let name = p.file_name()?.to_string_lossy().into_owned();
        let line = expected
            .lines()
            .find(|l| l.starts_with(&format!("images/{name}\t")))?;
        line.split('\t').nth(1)?.split(':').next()?.parse().ok()
    };
    let (mut ort_same, mut ort_total) = (0, 0);
    for (p, o) in calib.iter().zip(&scene_outs[0]) {
        if let Some(idx) = ort_top1(p) {
            ort_total += 1;
            ort_same += usize::from(idx == argmax(o));
        }
    }
    eprintln!("float top-1 equal to ONNX Runtime's on the scene photos (its own resize): {ort_same}/{ort_total}");
    let mut report =
        serde_json::json!({"photos": photos.len(), "float_vs_ort_top1": [ort_same, ort_total]});
    for (k, (name, _)) in models.iter().enumerate().skip(1) {
        let same = outs[0]
            .iter()
            .zip(&outs[k])
            .filter(|(a, b)| argmax(a) == argmax(b))
            .count();
        let rate = same as f64 / photos.len() as f64;
        eprintln!(
            "{name}: top-1 agreement with float {same}/{} = {:.2} %",
            photos.len(),
            100.0 * rate
        );
        report[*name] = serde_json::json!({"top1_same": same, "rate": rate});
        assert!(rate >= 0.99, "{name}: top-1 agreement {rate:.4} < 0.99");
    }
    // ONNX Runtime's static int8 quantizations of the same model (QDQ and
    // QOperator) and squeeze's own (`pack --quantize int8`, calibrated on
    // the scene photos), run as integer kernels: their top-1 agreement with
    // float measures the quantization (ORT's own: 177/196, 90 %); the floor
    // catches an integer kernel gone wrong, which drops it far lower.
    let int8_models: Vec<(&str, Model)> = ["qdq", "qop"]
        .iter()
        .filter_map(|form| {
            let path = dir.join(format!("efficientnet-lite0-int8-{form}.onnx"));
            let model = Model::load(&path, &LoadOptions::default()).ok()?;
            Some((*form, model))
        })
        .collect();
    assert_eq!(
        int8_models.len(),
        2,
        "the int8 EfficientNet-Lite0 models load"
    );
    let int8_models = [int8_models, vec![("static", static_int8)]].concat();
    let int8_outs = run_all(&int8_models, &inputs);
    for ((form, _), int8) in int8_models.iter().zip(&int8_outs) {
        let same = int8
            .iter()
            .zip(&outs[0])
            .filter(|(a, b)| argmax(a) == argmax(b))
            .count();
        let rate = same as f64 / photos.len() as f64;
        eprintln!(
            "int8 {form}, integer kernels: top-1 agreement with float {same}/{} = {:.2} %",
            photos.len(),
            100.0 * rate
        );
        report[format!("ort_int8_{form}")] = serde_json::json!({"top1_same": same, "rate": rate});
        assert!(
            rate >= 0.85,
            "int8 {form}: top-1 agreement {rate:.4} < 0.85"
        );
    }
    // A sanity floor, not a target: our float model must mostly agree with
    // ORT (preprocessing differs slightly: PIL's resize against ours).
    assert!(
        ort_total >= 20 && ort_same * 10 >= ort_total * 9,
        "float top-1 agrees with ORT on {ort_same}/{ort_total}"
    );
    record("efficientnet-lite0", report);
}

/// Photos preprocessed like OCR input at the given size: calibration data
/// that is not the text images measured on.
fn ocr_calibration(shape: &[usize]) -> Vec<Vec<Tensor>> {
    files(&common::models_dir().join("data/images"))
        .iter()
        .take(8)
        .map(|p| vec![ocr_input(p, shape[3] as u32, shape[2] as u32, None)])
        .collect()
}

/// Target cosine 0.999 for f16 and int8. f16 meets it everywhere; int8 on
/// PP-OCR cls with the default packing. PP-OCR det is more sensitive: with
/// the default `f16_kernel_max` (128) its worst cosine is below target, so
/// det packs int8 with 400 (more of its narrow convs stay f16), which meets
/// it; the file size cost is in docs/BENCHMARKS.md.
fn ocr_case(stem: &str, inputs: Vec<Tensor>, shape_name: &str, f16_kernel_max: usize) {
    let model = common::models_dir().join(format!("{stem}.onnx"));
    if !model.exists() || inputs.is_empty() {
        return common::skip(stem, "model or text images missing");
    }
    let mut worst: Vec<(&str, f64)> = vec![("f16", 1.0), ("int8", 1.0)];
    for (i, input) in inputs.iter().enumerate() {
        let models = variants(
            &model,
            &[(shape_name, input.shape().to_vec())],
            ocr_calibration(input.shape()),
            f16_kernel_max,
        );
        let outs = run_all(&models, std::slice::from_ref(input));
        for (k, (name, _)) in models.iter().enumerate().skip(1) {
            let c = cosine(&outs[0][0], &outs[k][0]);
            eprintln!("{stem} input {i} {:?}: {name} cosine {c:.6}", input.shape());
            let w = &mut worst[k - 1].1;
            *w = w.min(c);
        }
    }
    record(
        stem,
        serde_json::json!({"inputs": inputs.len(), "f16_kernel_max": f16_kernel_max, "min_cosine_f16": worst[0].1, "min_cosine_int8": worst[1].1}),
    );
    for (name, c) in worst {
        assert!(c >= 0.999, "{stem}: {name} cosine {c:.6} < 0.999");
    }
}

fn text_images() -> Vec<PathBuf> {
    files(&common::models_dir().join("data/text"))
}

#[test]
fn ppocr_det_cosine_on_text_images() {
    // Keep the aspect ratio, longest side 640, both sides multiples of 32.
    let inputs = text_images()
        .iter()
        .map(|p| {
            let (w, h) = image::image_dimensions(p).expect("dims");
            let s = 640.0 / w.max(h) as f32;
            let r = |v: u32| (((v as f32 * s) / 32.0).round().max(1.0) * 32.0) as u32;
            ocr_input(p, r(w), r(h), None)
        })
        .collect();
    ocr_case("ppocr-det-v4", inputs, "x", 400);
}

#[test]
fn ppocr_cls_cosine_on_text_images() {
    // Height 48 keeping the aspect, width <= 192, right-padded to 192.
    let inputs = text_images()
        .iter()
        .map(|p| {
            let (w, h) = image::image_dimensions(p).expect("dims");
            let nw = ((48.0 * w as f32 / h as f32).round() as u32).clamp(1, 192);
            ocr_input(p, nw, 48, Some(192))
        })
        .collect();
    ocr_case(
        "ppocr-cls-mobile-v2",
        inputs,
        "x",
        PackOptions::default().f16_kernel_max,
    );
}
