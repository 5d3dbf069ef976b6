//! `squeeze bench`: load-to-ready time, first run, latency percentiles and
//! peak memory. Numbers for humans and for scripts/bench.py (`--json`).
//! `--fma-peak` measures this core's FMA throughput instead (no model).

use std::path::PathBuf;
use std::time::Instant;

use clap::Args;

use super::input::FrameArgs;
use super::LoadArgs;
use crate::error::{Error, Result};
use crate::frame::{Frame, PixelFormat};
use crate::ir::{Tensor, TensorData};

#[derive(Args)]
pub struct BenchArgs {
    /// The model (.onnx or .sqz); required unless --fma-peak.
    #[arg(required_unless_present = "fma_peak")]
    pub model: Option<PathBuf>,
    #[command(flatten)]
    pub load: LoadArgs,
    /// Timed runs after the first.
    #[arg(long, default_value_t = 20)]
    pub runs: usize,
    /// Timed loads (load + session creation), median reported.
    #[arg(long, default_value_t = 5)]
    pub loads: usize,
    /// One JSON line instead of text.
    #[arg(long)]
    pub json: bool,
    /// Also print the slowest nodes (time per run, kernel chosen).
    #[arg(long)]
    pub profile: bool,
    /// `--frame WxH` also times camera frame to output: a synthetic frame
    /// of that size (NV21 unless --frame-format), converted into the first
    /// input with --rotate/--mirror/--crop, then the model run.
    #[command(flatten)]
    pub frame: FrameArgs,
    /// Measure this core's clock and peak f32 FMA throughput for the ISA
    /// (--isa, else SQUEEZE_ISA, else the best available; x86_64 only),
    /// print one JSON line and exit. Takes no model; runs on one thread.
    #[arg(
        long,
        conflicts_with_all = ["model", "runs", "loads", "profile", "input_shapes", "no_opt", "verify", "threads"]
    )]
    pub fma_peak: bool,
}

/// `--fma-peak`: one JSON line `{isa, clock_ghz_estimate, fma_flops_per_cycle_measured,
/// peak_gflops_measured, ...}`.
fn fma_peak(load: &LoadArgs) -> Result<()> {
    let isa = crate::exec::kernels::Isa::choose(load.isa()?)?;
    #[cfg(target_arch = "x86_64")]
    if let Some(p) = crate::exec::kernels::x86_64::fma_peak(isa) {
        out!(
            "{{\"isa\": \"{}\", \"clock_ghz_estimate\": {:.4}, \"fma_flops_per_cycle_measured\": {:.3}, \"peak_gflops_measured\": {:.3}, \"vector_lanes\": {}, \"accumulators\": {}, \"fma_latency_cycles_assumed\": {}}}",
            p.isa.name(),
            p.clock_ghz,
            p.flops_per_cycle,
            p.peak_gflops,
            p.lanes,
            p.accumulators,
            crate::exec::kernels::x86_64::FMA_LATENCY_CYCLES,
        );
        return Ok(());
    }
    Err(Error::Input(format!(
        "--fma-peak: no FMA probe for ISA {} on this target (x86_64 AVX2 and AVX-512 only)",
        isa.name()
    )))
}

/// Prints the nodes that took longest over `runs` profiled runs.
fn print_profile(model: &crate::Model, session: &mut crate::Session, runs: usize) -> Result<()> {
    let graph = model.graph();
    let mut per_node = vec![0.0; graph.nodes.len()];
    for _ in 0..runs.max(1) {
        for (t, d) in per_node.iter_mut().zip(session.run_profiled()?) {
            *t += d;
        }
    }
    let total: f64 = per_node.iter().sum();
    let kernels = model.prepared().kernel_names();
    let mut order: Vec<usize> = (0..per_node.len()).collect();
    order.sort_by(|&a, &b| per_node[b].total_cmp(&per_node[a]));
    out!(
        "\nslowest nodes (ms per run, share of {:.3} ms):",
        total * 1e3 / runs.max(1) as f64
    );
    for &i in order.iter().take(25) {
        let n = &graph.nodes[i];
        let shape = &graph.values[n.outputs[0]].info.shape;
        out!(
            "  {:>8.3} {:>5.1}%  {:<14} {:<30} {:?}",
            per_node[i] * 1e3 / runs.max(1) as f64,
            100.0 * per_node[i] / total.max(1e-12),
            n.op.name(),
            kernels[i].unwrap_or("(in place)"),
            shape
        );
    }
    let mut by_kernel: Vec<(&str, f64, usize)> = Vec::new();
    for (i, &t) in per_node.iter().enumerate() {
        let name = kernels[i].unwrap_or("(in place)");
        match by_kernel.iter_mut().find(|(k, _, _)| *k == name) {
            Some(entry) => {
                entry.1 += t;
                entry.2 += 1;
            }
            None => by_kernel.push((name, t, 1)),
        }
    }
    by_kernel.sort_by(|a, b| b.1.total_cmp(&a.1));
    out!("\nby kernel (ms per run, share, nodes):");
    for (name, t, count) in by_kernel {
        out!(
            "  {:>8.3} {:>5.1}%  {:<30} {}",
            t * 1e3 / runs.max(1) as f64,
            100.0 * t / total.max(1e-12),
            name,
            count
        );
    }
    Ok(())
}

/// A synthetic frame's bytes: smooth gradients with some texture, so the
/// conversion does real work (no constant planes).
fn synthetic_frame(format: PixelFormat, w: usize, h: usize) -> Vec<u8> {
    let luma_like = match format {
        PixelFormat::Rgba | PixelFormat::Bgra => w * h * 4,
        PixelFormat::Rgb => w * h * 3,
        _ => w * h + 2 * w.div_ceil(2) * h.div_ceil(2),
    };
    (0..luma_like)
        .map(|i| {
            let (x, y) = (i % w, i / w);
            ((x * 3 + y * 5) ^ ((x * y) >> 6)) as u8
        })
        .collect()
}

/// Median milliseconds of a frame's conversion and of frame to output
/// (alternating, as in an app), and of conversions back to back.
struct FrameTimes {
    convert: f64,
    to_output: f64,
    convert_only: f64,
}

fn frame_timings(
    args: &BenchArgs,
    model: &crate::Model,
    session: &mut crate::Session,
) -> Result<Option<FrameTimes>> {
    let Some((w, h)) = args.frame.size()? else {
        return Ok(None);
    };
    let format = match &args.frame.frame_format {
        Some(f) => PixelFormat::from_name(f)
            .ok_or_else(|| Error::Input(format!("--frame-format {f:?}: unknown")))?,
        None => PixelFormat::Nv21,
    };
    let bytes = synthetic_frame(format, w, h);
    let frame = Frame::packed(format, &bytes, w, h)?;
    let opts = args.frame.options()?;
    let mut converter = model.frame_converter(0, None)?;
    let (mut convert, mut total) = (Vec::new(), Vec::new());
    for i in 0..=args.runs {
        let t = Instant::now();
        session.write_frame(0, &mut converter, &frame, &opts)?;
        let converted = t.elapsed().as_secs_f64() * 1e3;
        session.run_in_place()?;
        if i > 0 {
            convert.push(converted);
            total.push(t.elapsed().as_secs_f64() * 1e3);
        }
    }
    let mut alone = Vec::new();
    for _ in 0..args.runs.max(1) * 4 {
        let t = Instant::now();
        session.write_frame(0, &mut converter, &frame, &opts)?;
        alone.push(t.elapsed().as_secs_f64() * 1e3);
    }
    Ok(Some(FrameTimes {
        convert: median_ms(&mut convert),
        to_output: median_ms(&mut total),
        convert_only: median_ms(&mut alone),
    }))
}

fn median_ms(v: &mut [f64]) -> f64 {
    percentile(v, 0.5)
}

fn percentile(v: &mut [f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    v[((v.len() - 1) as f64 * p).round() as usize]
}

/// Peak resident set (VmHWM) in KiB, where the OS tells it.
fn peak_rss_kb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// `{"name": ms, ...}` in phase order.
fn phases_json(phases: &[(&'static str, f64)]) -> String {
    let cells: Vec<String> = phases
        .iter()
        .map(|(name, ms)| format!("\"{name}\": {ms:.4}"))
        .collect();
    format!("{{{}}}", cells.join(", "))
}

pub fn run(args: BenchArgs) -> Result<()> {
    if args.fma_peak {
        return fma_peak(&args.load);
    }
    let path = args
        .model
        .as_deref()
        .ok_or_else(|| Error::Input("bench: no model given".into()))?;
    let load_to_ready = || -> Result<_> {
        let t = Instant::now();
        let model = args.load.load(path)?;
        let session = model.session()?;
        Ok((model, session, t.elapsed().as_secs_f64() * 1e3))
    };
    // Load phases (ms) of every timed load, for the last load and per-phase medians.
    let phases_ms = |model: &crate::Model| -> Vec<(&'static str, f64)> {
        let phases = &model.load_timings().phases;
        phases
            .iter()
            .map(|(n, d)| (*n, d.as_secs_f64() * 1e3))
            .collect()
    };
    let (model, mut session, first_load) = load_to_ready()?;
    let mut loads = vec![first_load];
    let mut phases = vec![phases_ms(&model)];
    for _ in 1..args.loads {
        let (m, _, ms) = load_to_ready()?;
        loads.push(ms);
        phases.push(phases_ms(&m));
    }
    let last_phases = phases.last().cloned().unwrap_or_default();
    let median_phases: Vec<(&'static str, f64)> = last_phases
        .iter()
        .map(|(name, _)| {
            let mut v: Vec<f64> = phases
                .iter()
                .filter_map(|p| p.iter().find(|(n, _)| n == name).map(|(_, ms)| *ms))
                .collect();
            (*name, median_ms(&mut v))
        })
        .collect();
    let inputs: Vec<Tensor> = model
        .inputs()
        .iter()
        .map(|i| {
            let n: usize = i.shape.iter().product();
            let data = match i.dtype {
                crate::DType::F32 => {
                    TensorData::F32((0..n).map(|k| ((k * 7919) % 255) as f32 / 255.0).collect())
                }
                _ => return Tensor::zeros(i.dtype, i.shape.clone()),
            };
            Tensor::new(i.shape.clone(), data)
        })
        .collect::<Result<_>>()?;
    let refs: Vec<&Tensor> = inputs.iter().collect();
    let t = Instant::now();
    session.run(&refs)?;
    let first = t.elapsed().as_secs_f64() * 1e3;
    let mut lat = Vec::new();
    for _ in 0..args.runs {
        let t = Instant::now();
        session.run(&refs)?;
        lat.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let load = median_ms(&mut loads);
    let (p50, p90, p99) = (
        percentile(&mut lat, 0.5),
        percentile(&mut lat, 0.9),
        percentile(&mut lat, 0.99),
    );
    let frames = frame_timings(&args, &model, &mut session)?;
    let rss = peak_rss_kb();
    let (isa, threads) = (model.prepared().isa().name(), model.prepared().threads());
    if args.json {
        out!(
            "{{\"load_ms\": {load:.4}, \"first_run_ms\": {first:.4}, \"p50_ms\": {p50:.4}, \"p90_ms\": {p90:.4}, \"p99_ms\": {p99:.4}, \"peak_rss_kb\": {}, \"runs\": {}, \"loads\": {}, \"threads\": {threads}, \"isa\": \"{isa}\", \"load_phases_ms\": {}, \"load_phases_median_ms\": {}{}}}",
            rss.map_or("null".to_string(), |r| r.to_string()),
            lat.len(),
            loads.len(),
            phases_json(&last_phases),
            phases_json(&median_phases),
            frames.as_ref().map_or(String::new(), |f| format!(
                ", \"frame_convert_p50_ms\": {:.4}, \"frame_to_output_p50_ms\": {:.4}, \"frame_convert_only_p50_ms\": {:.4}",
                f.convert, f.to_output, f.convert_only
            )),
        );
    } else {
        out!("model: {}", path.display());
        out!("load to ready (median of {}): {load:.3} ms", loads.len());
        let cells: Vec<String> = median_phases
            .iter()
            .map(|(name, ms)| format!("{name} {ms:.3}"))
            .collect();
        out!("  load phases (ms, medians): {}", cells.join(", "));
        out!("first run: {first:.3} ms");
        out!(
            "latency over {} runs: p50 {p50:.3} ms, p90 {p90:.3} ms, p99 {p99:.3} ms",
            lat.len()
        );
        if let Some(f) = &frames {
            out!(
                "camera frame to output (p50): {:.3} ms, of which frame conversion {:.3} ms; conversions back to back: {:.3} ms",
                f.to_output, f.convert, f.convert_only
            );
        }
        if let Some(r) = rss {
            out!("peak RSS: {:.1} MiB", r as f64 / 1024.0);
        }
        out!("kernels: {isa} ISA, {threads} threads");
    }
    if args.profile {
        print_profile(&model, &mut session, args.runs)?;
    }
    Ok(())
}
