//! `squeeze pack`: ONNX → optimized, quantized, compressed `.sqz`, with a
//! per-tensor size report and the packed model's error against float.

use std::path::{Path, PathBuf};

use clap::Args;

use super::input::{self, FrameArgs, PreprocessArgs};
use super::{thousands, ModelArgs};
use crate::error::{Error, Result};
use crate::frame::Preprocess;
use crate::ir::{Tensor, TensorData};
use crate::pack::ptq::{QuantizeOptions, RangeMethod};
use crate::pack::{self, Metadata, PackOptions, PackReport, Preprocessing, Storage, TensorDesc};
use crate::session::{IoInfo, LoadOptions, Model};

#[derive(Args)]
pub struct PackArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Output file.
    #[arg(short, long)]
    pub output: PathBuf,
    /// Weight storage: f32, f16, int8, palette2..palette8 (default f32, or
    /// int8 for the layers `--quantize` leaves float).
    #[arg(long)]
    pub weights: Option<String>,
    /// Static quantization: `int8` runs convolutions, residual adds and
    /// global pooling on integers, calibrated on --calibration.
    #[arg(long)]
    pub quantize: Option<String>,
    /// How activation ranges are calibrated: auto (the least error of the
    /// others, per tensor), minmax, mse, or percentileP (e.g. percentile99.99).
    #[arg(long, default_value = "auto")]
    pub calibration_method: String,
    /// With --quantize, a layer whose int8 output is under this SNR (dB)
    /// against float, measured on its own, stays float.
    #[arg(long, default_value_t = QuantizeOptions::default().min_snr_db)]
    pub min_snr: f64,
    /// With --quantize, skip correcting biases for rounded weights.
    #[arg(long)]
    pub no_bias_correction: bool,
    /// In int8/palette modes, keep weights with at most this many values per
    /// output channel in f16 (depthwise and stem convs by default; raise it
    /// to trade size for accuracy on sensitive models).
    #[arg(long, default_value_t = PackOptions::default().f16_kernel_max)]
    pub f16_kernel_max: usize,
    /// Store f32 weights raw so a mapped file is used in place (fastest
    /// load, largest file).
    #[arg(long)]
    pub in_place: bool,
    /// Store floats without the byte-shuffle filter.
    #[arg(long)]
    pub no_filter: bool,
    /// zstd level (1..=22).
    #[arg(long, default_value_t = PackOptions::default().zstd_level)]
    pub level: i32,
    /// Model name for the metadata (default: the file stem).
    #[arg(long)]
    pub name: Option<String>,
    /// Model version for the metadata.
    #[arg(long, default_value = "1")]
    pub model_version: String,
    /// Class labels, one per line.
    #[arg(long)]
    pub labels: Option<PathBuf>,
    /// Preprocessing to record in the metadata (and apply to --calibration images).
    #[command(flatten)]
    pub pre: PreprocessArgs,
    /// Real inputs (images or .npy): int8/palette biases are corrected on
    /// them, and the packed model's error is measured on them.
    #[arg(long)]
    pub calibration: Option<PathBuf>,
    /// Random inputs to measure on when no --calibration is given.
    #[arg(long, default_value_t = 2)]
    pub samples: usize,
}

fn desc(io: &[IoInfo]) -> Vec<TensorDesc> {
    io.iter()
        .map(|i| TensorDesc {
            name: i.name.clone(),
            dtype: i.dtype,
            shape: i.shape.clone(),
        })
        .collect()
}

/// Agreement of packed outputs with float outputs over all samples.
#[derive(Default)]
struct Agreement {
    dot: f64,
    norm_a: f64,
    norm_b: f64,
    max_abs: f32,
    top1_same: usize,
    samples: usize,
    classifier: bool,
}

impl Agreement {
    fn add(&mut self, float: &[f32], packed: &[f32], classifier: bool) {
        for (&a, &b) in float.iter().zip(packed) {
            self.dot += a as f64 * b as f64;
            self.norm_a += a as f64 * a as f64;
            self.norm_b += b as f64 * b as f64;
            self.max_abs = self.max_abs.max((a - b).abs());
        }
        let argmax = |v: &[f32]| (0..v.len()).max_by(|&i, &j| v[i].total_cmp(&v[j]));
        self.classifier = classifier;
        self.top1_same += usize::from(argmax(float) == argmax(packed));
        self.samples += 1;
    }
    fn cosine(&self) -> f64 {
        self.dot / (self.norm_a.sqrt() * self.norm_b.sqrt()).max(f64::MIN_POSITIVE)
    }
}

/// Sample inputs: files from the calibration folder, or seeded noise.
fn sample_inputs(args: &PackArgs, model: &Model, pre: &Preprocess) -> Result<Vec<Vec<Tensor>>> {
    let infos = &model.inputs();
    if let Some(dir) = &args.calibration {
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(|e| Error::Io {
                path: dir.clone(),
                source: e,
            })?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                matches!(
                    p.extension()
                        .and_then(|e| e.to_str())
                        .map(str::to_ascii_lowercase)
                        .as_deref(),
                    Some("png" | "jpg" | "jpeg" | "npy")
                )
            })
            .collect();
        files.sort();
        if infos.len() != 1 {
            return Err(Error::Input(
                "--calibration needs a model with one input".into(),
            ));
        }
        return files
            .iter()
            .map(|f| Ok(vec![input::load(f, model, 0, pre, &FrameArgs::default())?]))
            .collect();
    }
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 40) as f32 / (1u64 << 24) as f32
    };
    (0..args.samples)
        .map(|_| {
            infos
                .iter()
                .map(|i| {
                    let n: usize = i.shape.iter().product();
                    let data = match i.dtype {
                        crate::DType::F32 => {
                            TensorData::F32((0..n).map(|_| next() * 2.0 - 1.0).collect())
                        }
                        _ => return Tensor::zeros(i.dtype, i.shape.clone()),
                    };
                    Tensor::new(i.shape.clone(), data)
                })
                .collect()
        })
        .collect()
}

/// The static quantization `--quantize` asks for, if any.
fn quantize_options(args: &PackArgs) -> Result<Option<QuantizeOptions>> {
    let Some(kind) = &args.quantize else {
        return Ok(None);
    };
    if kind != "int8" {
        return Err(Error::Input(format!("--quantize {kind:?}: only int8")));
    }
    if args.calibration.is_none() {
        return Err(Error::Input(
            "--quantize int8 needs --calibration DIR (images or .npy inputs)".into(),
        ));
    }
    let method = RangeMethod::parse(&args.calibration_method).ok_or_else(|| {
        Error::Input(format!(
            "--calibration-method {:?}: use auto, minmax, mse or percentileP (50 < P <= 100)",
            args.calibration_method
        ))
    })?;
    Ok(Some(QuantizeOptions {
        method,
        min_snr_db: args.min_snr,
        bias_correction: !args.no_bias_correction,
    }))
}

pub fn run(args: PackArgs) -> Result<()> {
    let quantize = quantize_options(&args)?;
    let weights = args
        .weights
        .clone()
        .unwrap_or_else(|| if quantize.is_some() { "int8" } else { "f32" }.into());
    let storage = Storage::parse(&weights).ok_or_else(|| {
        Error::Input(format!(
            "--weights {weights:?}: use f32, f16, int8 or palette2..palette8"
        ))
    })?;
    let model = args.model.load()?;
    let onnx_bytes = std::fs::metadata(&args.model.model)
        .map(|m| m.len())
        .unwrap_or(0);
    let labels = match &args.labels {
        Some(p) => input::read_labels(p)?,
        None => Vec::new(),
    };
    let pre = args.pre.preprocess();
    let inputs = model.inputs();
    let image_like = inputs.len() == 1 && inputs[0].shape.len() == 4 && inputs[0].shape[1] == 3;
    let recorded = args.pre.given();
    let preprocessing = (image_like && recorded).then(|| {
        Preprocessing::from(&Preprocess {
            input_size: Some([inputs[0].shape[2], inputs[0].shape[3]]),
            ..pre
        })
    });
    let name = args.name.clone().unwrap_or_else(|| {
        args.model
            .model
            .file_stem()
            .map_or("model".into(), |s| s.to_string_lossy().into_owned())
    });
    let meta = Metadata {
        name,
        version: args.model_version.clone(),
        producer: format!("squeeze {}", crate::version()),
        inputs: desc(&inputs),
        outputs: desc(&model.outputs()),
        preprocessing,
        labels,
    };
    let samples = sample_inputs(&args, &model, &pre)?;
    let calibration = if args.calibration.is_some() {
        samples.clone()
    } else {
        Vec::new()
    };
    let opts = PackOptions {
        weights: storage,
        shuffle: !args.no_filter,
        zstd_level: args.level,
        calibration,
        f16_kernel_max: args.f16_kernel_max,
        in_place: args.in_place,
        quantize,
        ..PackOptions::default()
    };
    let n_consts = model
        .graph()
        .values
        .iter()
        .filter(|v| v.constant.is_some())
        .count();
    let bar = indicatif::ProgressBar::new(n_consts as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("packing {bar:40} {pos}/{len} tensors")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let (bytes, report) = pack::pack(model.graph(), &meta, &opts, &|| bar.inc(1))?;
    bar.finish_and_clear();
    std::fs::write(&args.output, &bytes).map_err(|e| Error::Io {
        path: args.output.clone(),
        source: e,
    })?;

    out!(
        "{:<44} {:<18} {:<10} {:>12} {:>12} {:>7}",
        "tensor",
        "shape",
        "storage",
        "f32 bytes",
        "packed",
        "ratio"
    );
    for t in &report.tensors {
        let name: String = t.name.chars().take(44).collect();
        out!(
            "{:<44} {:<18} {:<10} {:>12} {:>12} {:>6.1}x",
            name,
            format!("{:?}", t.shape),
            t.storage.name(),
            thousands(t.raw_bytes),
            thousands(t.packed_bytes),
            t.raw_bytes as f64 / t.packed_bytes.max(1) as f64
        );
    }
    let raw: usize = report.tensors.iter().map(|t| t.raw_bytes).sum();
    out!(
        "\nweights: {} bytes as f32 -> {} bytes packed",
        thousands(raw),
        thousands(report.tensors.iter().map(|t| t.packed_bytes).sum())
    );
    out!(
        "file: {} ({} bytes; the .onnx is {} bytes: {:.1} %)",
        args.output.display(),
        thousands(report.file_bytes),
        thousands(onnx_bytes as usize),
        100.0 * report.file_bytes as f64 / onnx_bytes.max(1) as f64
    );
    out!("sha256: {}", pack::container::sha256_hex(&bytes));
    print_layers(&report, args.min_snr);
    report_error(&args, &model, &bytes, &samples)
}

/// The static quantization summary: per layer, its storage, error and why.
fn print_layers(report: &PackReport, min_snr: f64) {
    if report.layers.is_empty() {
        return;
    }
    out!(
        "\n{:<44} {:<18} {:<8} {:>9}  why",
        "layer",
        "op",
        "runs as",
        "SNR dB"
    );
    for l in &report.layers {
        let name: String = l.name.chars().take(44).collect();
        let why = if l.int8 {
            format!("SNR >= {min_snr}; output range {}", l.range)
        } else {
            format!("SNR < {min_snr}")
        };
        out!(
            "{name:<44} {:<18} {:<8} {:>9.1}  {why}",
            l.op,
            if l.int8 { "int8" } else { "f32" },
            l.snr_db
        );
    }
    let int8 = report.layers.iter().filter(|l| l.int8).count();
    out!(
        "int8 layers: {int8} of {}; {} stay float",
        report.layers.len(),
        report.layers.len() - int8
    );
}

/// Runs the float model and the packed one on the same inputs and prints
/// how far apart they are.
fn report_error(
    args: &PackArgs,
    float: &Model,
    packed_bytes: &[u8],
    samples: &[Vec<Tensor>],
) -> Result<()> {
    let packed = Model::from_sqz_bytes(packed_bytes, &LoadOptions::default())?;
    let (mut fs, mut ps) = (float.session()?, packed.session()?);
    let outputs = float.outputs();
    let mut agree: Vec<Agreement> = outputs.iter().map(|_| Agreement::default()).collect();
    for s in samples {
        let refs: Vec<&Tensor> = s.iter().collect();
        let (a, b) = (fs.run(&refs)?, ps.run(&refs)?);
        for ((g, (x, y)), info) in agree.iter_mut().zip(a.iter().zip(&b)).zip(&outputs) {
            let classifier = info.shape.iter().filter(|&&d| d > 1).count() == 1;
            g.add(&x.to_f32_vec(), &y.to_f32_vec(), classifier);
        }
    }
    let source = args.calibration.as_deref().map_or_else(
        || "random inputs".to_string(),
        |d: &Path| d.display().to_string(),
    );
    out!("\npacked vs float on {} samples ({source}):", samples.len());
    for (g, info) in agree.iter().zip(&outputs) {
        let top1 = if g.classifier {
            format!(", top-1 agreement {}/{}", g.top1_same, g.samples)
        } else {
            String::new()
        };
        out!(
            "  {}: cosine {:.6}, max |diff| {:.3e}{top1}",
            info.name,
            g.cosine(),
            g.max_abs
        );
    }
    Ok(())
}
