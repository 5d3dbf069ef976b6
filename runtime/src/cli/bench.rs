//! `squeeze bench`: load-to-ready time, first run, latency percentiles and
//! peak memory. Numbers for humans and for scripts/bench.py (`--json`).

use std::time::Instant;

use clap::Args;

use super::ModelArgs;
use crate::error::Result;
use crate::ir::{Tensor, TensorData};

#[derive(Args)]
pub struct BenchArgs {
    #[command(flatten)]
    pub model: ModelArgs,
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
    println!(
        "\nslowest nodes (ms per run, share of {:.3} ms):",
        total * 1e3 / runs.max(1) as f64
    );
    for &i in order.iter().take(25) {
        let n = &graph.nodes[i];
        let shape = &graph.values[n.outputs[0]].info.shape;
        println!(
            "  {:>8.3} {:>5.1}%  {:<14} {:<30} {:?}",
            per_node[i] * 1e3 / runs.max(1) as f64,
            100.0 * per_node[i] / total.max(1e-12),
            n.op.name(),
            kernels[i].unwrap_or("(alias)"),
            shape
        );
    }
    Ok(())
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

pub fn run(args: BenchArgs) -> Result<()> {
    let load_to_ready = || -> Result<_> {
        let t = Instant::now();
        let model = args.model.load()?;
        let session = model.session()?;
        Ok((model, session, t.elapsed().as_secs_f64() * 1e3))
    };
    let (model, mut session, first_load) = load_to_ready()?;
    let mut loads = vec![first_load];
    for _ in 1..args.loads {
        loads.push(load_to_ready()?.2);
    }
    let inputs: Vec<Tensor> = model
        .inputs()
        .iter()
        .map(|i| {
            let n: usize = i.shape.iter().product();
            let data = match i.dtype {
                crate::DType::F32 => {
                    TensorData::F32((0..n).map(|k| ((k * 7919) % 255) as f32 / 255.0).collect())
                }
                crate::DType::I64 => TensorData::I64(vec![0; n]),
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
    let rss = peak_rss_kb();
    if args.json {
        println!(
            "{{\"load_ms\": {load:.4}, \"first_run_ms\": {first:.4}, \"p50_ms\": {p50:.4}, \"p90_ms\": {p90:.4}, \"p99_ms\": {p99:.4}, \"peak_rss_kb\": {}}}",
            rss.map_or("null".to_string(), |r| r.to_string())
        );
    } else {
        println!("model: {}", args.model.model.display());
        println!("load to ready (median of {}): {load:.3} ms", loads.len());
        println!("first run: {first:.3} ms");
        println!(
            "latency over {} runs: p50 {p50:.3} ms, p90 {p90:.3} ms, p99 {p99:.3} ms",
            lat.len()
        );
        if let Some(r) = rss {
            println!("peak RSS: {:.1} MiB", r as f64 / 1024.0);
        }
        println!(
            "kernels: {} ISA, {} threads",
            model.prepared().isa().name(),
            model.prepared().threads()
        );
    }
    if args.profile {
        print_profile(&model, &mut session, args.runs)?;
    }
    Ok(())
}
