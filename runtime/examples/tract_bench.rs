//! Times tract (the `tract_onnx` crate) on one ONNX model, for `scripts/bench.py`.
//!
//! ```text
//! tract_bench MODEL.onnx --shape 1x3x224x224 [--loads N] [--runs N]
//! ```
//!
//! Load = parse + set the input fact + `into_optimized` + `into_runnable`, timed `--loads`
//! times (default 5). Run = one warm-up then `--runs` timed runs (default 10) on a
//! deterministic pseudo-random input in [-1, 1). tract runs single-threaded here.
//! Prints one JSON line `{"load_optimize_ms_median": .., "run_ms_median": .., ...}`, or
//! `{"error": ".."}` (exit code 0) when tract cannot load or run the model, so the harness
//! can record "n/a".

use std::time::Instant;

use tract_onnx::prelude::*;

struct Args {
    model: String,
    shape: Vec<usize>,
    loads: usize,
    runs: usize,
}

fn parse_args() -> Result<Args, String> {
    let mut it = std::env::args().skip(1);
    let (mut model, mut shape, mut loads, mut runs) = (None, None, 5usize, 10usize);
    while let Some(a) = it.next() {
        let mut val = |name: &str| it.next().ok_or_else(|| format!("{name} needs a value"));
        match a.as_str() {
            "--shape" => {
                let s = val("--shape")?;
                let dims = s
                    .split(['x', ','])
                    .map(|d| {
                        d.trim()
                            .parse::<usize>()
                            .map_err(|_| format!("bad dimension {d:?} in {s:?}"))
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                shape = Some(dims);
            }
            "--loads" => {
                loads = val("--loads")?
                    .parse()
                    .map_err(|e| format!("--loads: {e}"))?
            }
            "--runs" => runs = val("--runs")?.parse().map_err(|e| format!("--runs: {e}"))?,
            "-h" | "--help" => {
                return Err(
                    "usage: tract_bench MODEL.onnx --shape 1x3x224x224 [--loads N] [--runs N]"
                        .into(),
                )
            }
            _ if a.starts_with('-') => return Err(format!("unknown option {a}")),
            _ if model.is_none() => model = Some(a),
            _ => return Err(format!("unexpected argument {a}")),
        }
    }
    Ok(Args {
        model: model.ok_or("missing MODEL.onnx")?,
        shape: shape.ok_or("missing --shape")?,
        loads: loads.max(1),
        runs: runs.max(1),
    })
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}

fn round3(x: f64) -> f64 {
    (x * 1e3).round() / 1e3
}

/// Deterministic input in [-1, 1) (xorshift64*).
fn input(shape: &[usize]) -> TractResult<Tensor> {
    let n: usize = shape.iter().product();
    let mut s: u64 = 0x9E37_79B9_7F4A_7C15;
    let data: Vec<f32> = (0..n)
        .map(|_| {
            s ^= s >> 12;
            s ^= s << 25;
            s ^= s >> 27;
            let r = s.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 40; // 24 bits
            r as f32 / (1u64 << 23) as f32 - 1.0
        })
        .collect();
    Tensor::from_shape(shape, &data)
}

fn load(path: &str, shape: &[usize]) -> TractResult<Arc<TypedRunnableModel>> {
    tract_onnx::onnx()
        .model_for_path(path)?
        .with_input_fact(0, f32::fact(shape).into())?
        .into_optimized()?
        .into_runnable()
}

fn bench(a: &Args) -> TractResult<String> {
    let mut load_ms = Vec::with_capacity(a.loads);
    let mut plan = None;
    for _ in 0..a.loads {
        let t = Instant::now();
        let p = load(&a.model, &a.shape)?;
        load_ms.push(ms(t));
        plan = Some(p); // dropped outside the timed region on the next iteration
    }
    let plan = plan.expect("loads >= 1");
    let x: TValue = input(&a.shape)?.into();

    let t = Instant::now();
    plan.run(tvec!(x.clone()))?;
    let first_run_ms = ms(t);
    let mut run_ms = Vec::with_capacity(a.runs);
    for _ in 0..a.runs {
        let t = Instant::now();
        let out = plan.run(tvec!(x.clone()))?;
        run_ms.push(ms(t));
        drop(out);
    }
    Ok(format!(
        "{{\"load_optimize_ms_median\": {}, \"run_ms_median\": {}, \"first_run_ms\": {}, \"loads\": {}, \"runs\": {}, \"shape\": {:?}}}",
        round3(median(load_ms)),
        round3(median(run_ms)),
        round3(first_run_ms),
        a.loads,
        a.runs,
        a.shape
    ))
}

fn json_str(s: &str) -> String {
    let mut o = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            '\n' => o.push_str("\\n"),
            c if (c as u32) < 0x20 => o.push_str(&format!("\\u{:04x}", c as u32)),
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    // tract panics on some unsupported graphs: report those as errors too.
    let res = std::panic::catch_unwind(|| bench(&args));
    match res {
        Ok(Ok(line)) => println!("{line}"),
        Ok(Err(e)) => println!("{{\"error\": {}}}", json_str(&format!("{e:#}"))),
        Err(p) => {
            let msg = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "panic".into());
            println!(
                "{{\"error\": {}}}",
                json_str(&format!("tract panicked: {msg}"))
            )
        }
    }
}
