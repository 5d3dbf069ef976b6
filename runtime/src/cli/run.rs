//! `squeeze run`: one inference, printed as top-k or output summaries.

use std::path::PathBuf;
use std::time::Instant;

use clap::Args;

use super::input::{self, FrameArgs, PreprocessArgs};
use super::ModelArgs;
use crate::error::{Error, Result};
use crate::ir::Tensor;

#[derive(Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// An image (png/jpg), a raw camera frame (.nv21, .nv12, .i420, .rgba,
    /// .bgra, .rgb with --frame-size) or a .npy tensor; `name=file` for
    /// several inputs.
    #[arg(long, required = true)]
    pub input: Vec<String>,
    #[command(flatten)]
    pub pre: PreprocessArgs,
    #[command(flatten)]
    pub frame: FrameArgs,
    /// Class labels, one per line, for top-k.
    #[arg(long)]
    pub labels: Option<PathBuf>,
    /// How many classes to print.
    #[arg(long, default_value_t = 5)]
    pub top: usize,
    /// Write every output as DIR/<output name>.npy.
    #[arg(long)]
    pub save: Option<PathBuf>,
}

pub fn run(args: RunArgs) -> Result<()> {
    let t0 = Instant::now();
    let model = args.model.load()?;
    let load_ms = t0.elapsed().as_secs_f64() * 1e3;
    let infos = model.inputs();
    let packed = model.package().map(|p| &p.metadata);
    let pre = args.pre.resolve(&model)?;
    let t_inputs = Instant::now();
    let mut tensors: Vec<Option<Tensor>> = vec![None; infos.len()];
    for spec in &args.input {
        let (slot, path) = match spec.split_once('=') {
            Some((name, file)) => {
                let i = infos
                    .iter()
                    .position(|i| i.name == name)
                    .ok_or_else(|| Error::Input(format!("the model has no input {name:?}")))?;
                (i, PathBuf::from(file))
            }
            None => (
                tensors
                    .iter()
                    .position(Option::is_none)
                    .ok_or_else(|| Error::Input("more inputs than the model takes".into()))?,
                PathBuf::from(spec),
            ),
        };
        tensors[slot] = Some(input::load(&path, &model, slot, &pre, &args.frame)?);
    }
    let tensors: Vec<Tensor> = tensors
        .into_iter()
        .zip(&infos)
        .map(|(t, i)| t.ok_or_else(|| Error::Input(format!("input {:?} not given", i.name))))
        .collect::<Result<_>>()?;
    let input_ms = t_inputs.elapsed().as_secs_f64() * 1e3;
    let mut session = model.session()?;
    let refs: Vec<&Tensor> = tensors.iter().collect();
    let t1 = Instant::now();
    let outputs = session.run(&refs)?;
    let run_ms = t1.elapsed().as_secs_f64() * 1e3;
    let labels: Option<Vec<String>> = match &args.labels {
        Some(p) => Some(input::read_labels(p)?),
        None => packed.map(|m| m.labels.clone()).filter(|l| !l.is_empty()),
    };
    for (info, out) in model.outputs().iter().zip(&outputs) {
        out!("output {} {:?}", info.name, out.shape());
        if let Some(v) = out.as_f32() {
            let is_classifier = labels.as_ref().is_some_and(|l| l.len() == v.len())
                || (v.len() >= 2
                    && v.len() <= 100_000
                    && out.shape().iter().filter(|&&d| d > 1).count() == 1);
            if is_classifier {
                let mut idx: Vec<usize> = (0..v.len()).collect();
                idx.sort_by(|&a, &b| v[b].total_cmp(&v[a]));
                for &i in idx.iter().take(args.top) {
                    let label = labels
                        .as_ref()
                        .and_then(|l| l.get(i))
                        .map_or(String::new(), |s| s.clone());
                    out!("  {i:>6} {:>12.5}  {label}", v[i]);
                }
            } else {
                let (min, max) = v
                    .iter()
                    .fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), &x| {
                        (a.min(x), b.max(x))
                    });
                let mean = v.iter().map(|&x| x as f64).sum::<f64>() / v.len().max(1) as f64;
                out!("  min {min:.5}  max {max:.5}  mean {mean:.5}");
            }
        }
        if let Some(dir) = &args.save {
            std::fs::create_dir_all(dir).map_err(|e| Error::Io {
                path: dir.clone(),
                source: e,
            })?;
            crate::npy::write(
                &dir.join(format!("{}.npy", info.name.replace('/', "_"))),
                out,
            )?;
        }
    }
    out!(
        "load {load_ms:.1} ms, inputs {input_ms:.1} ms (reading and decoding files, converting frames), run {run_ms:.1} ms"
    );
    Ok(())
}
