//! The `squeeze` command line: inspect, run, pack and bench models.

/// `println!` that ends the process quietly when stdout is closed early
/// (`squeeze inspect m | head`) instead of panicking on the broken pipe.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        if let Err(e) = writeln!(std::io::stdout().lock(), $($arg)*) {
            $crate::cli::stdout_failed(e)
        }
    }};
}

mod bench;
mod input;
mod inspect;
mod pack;
mod run;

use std::collections::HashMap;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::error::{Error, Result};
use crate::session::{LoadOptions, Model};

#[derive(Parser)]
#[command(
    name = "squeeze",
    version,
    about = "Small, fast CNN inference for phones"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print the layers, shapes, parameters and memory plan of a model.
    Inspect(inspect::InspectArgs),
    /// Run a model on an image or .npy tensors.
    Run(run::RunArgs),
    /// Pack an ONNX model into a compressed, checksummed .sqz.
    Pack(pack::PackArgs),
    /// Measure load time, latency and peak memory.
    Bench(bench::BenchArgs),
}

/// Options shared by every command that loads a model.
#[derive(Args, Clone)]
pub struct ModelArgs {
    /// The model (.onnx or .sqz).
    pub model: PathBuf,
    #[command(flatten)]
    pub load: LoadArgs,
}

impl ModelArgs {
    pub fn load_options(&self) -> Result<LoadOptions> {
        self.load.load_options()
    }
    pub fn load(&self) -> Result<Model> {
        self.load.load(&self.model)
    }
}

/// How to load a model: every [`ModelArgs`] option but the path.
#[derive(Args, Clone)]
pub struct LoadArgs {
    /// Shape of an input with dynamic dims, e.g. `x=1x3x224x224` (repeatable).
    #[arg(long = "input-shape", value_name = "NAME=DIMS")]
    pub input_shapes: Vec<String>,
    /// Fix an `.onnx` input's value at load, from a `.npy` file, e.g.
    /// `axes=axes.npy` (repeatable): for an input feeding an operand that
    /// must be known when the model is prepared (a Reshape's shape…). The
    /// input is then no longer given at run time.
    #[arg(long = "input-value", value_name = "NAME=FILE.npy")]
    pub input_values: Vec<String>,
    /// Skip the optimizer passes.
    #[arg(long)]
    pub no_opt: bool,
    /// Check a `.sqz` file's whole-file SHA-256 too (per-section checksums always run).
    #[arg(long)]
    pub verify: bool,
    /// Worker threads per session (default: available parallelism, at most 4).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// Force an instruction set: scalar, avx2, avx512 or neon.
    #[arg(long)]
    pub isa: Option<String>,
}

impl LoadArgs {
    /// The `--isa` asked for, if any.
    pub fn isa(&self) -> Result<Option<crate::exec::kernels::Isa>> {
        match &self.isa {
            None => Ok(None),
            Some(name) => crate::exec::kernels::Isa::from_name(name)
                .map(Some)
                .ok_or_else(|| {
                    Error::Input(format!(
                        "--isa {name:?}: expected scalar, avx2, avx512 or neon"
                    ))
                }),
        }
    }
    pub fn load_options(&self) -> Result<LoadOptions> {
        let mut shapes = HashMap::new();
        for s in &self.input_shapes {
            let (name, dims) = s
                .rsplit_once('=')
                .ok_or_else(|| Error::Input(format!("--input-shape {s:?}: expected NAME=DIMS")))?;
            shapes.insert(name.to_string(), parse_dims(dims)?);
        }
        let mut values = HashMap::new();
        for s in &self.input_values {
            let (name, path) = s.split_once('=').ok_or_else(|| {
                Error::Input(format!("--input-value {s:?}: expected NAME=FILE.npy"))
            })?;
            values.insert(name.to_string(), crate::npy::read(path.as_ref())?);
        }
        let mut opts = LoadOptions {
            optimize: !self.no_opt,
            input_shapes: shapes,
            input_values: values,
            ..LoadOptions::default()
        };
        opts.limits.verify_sha256 = self.verify;
        opts.threads = self.threads;
        opts.isa = self.isa()?;
        Ok(opts)
    }
    pub fn load(&self, model: &std::path::Path) -> Result<Model> {
        Model::load(model, &self.load_options()?)
    }
}

/// `1x3x224x224` → `[1, 3, 224, 224]`.
pub fn parse_dims(s: &str) -> Result<Vec<usize>> {
    s.split(['x', ','])
        .map(|d| {
            d.trim()
                .parse::<usize>()
                .map_err(|_| Error::Input(format!("bad dimension {d:?} in {s:?}")))
        })
        .collect()
}

/// Runs the CLI; returns the process exit code.
pub fn main() -> i32 {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Inspect(a) => inspect::run(a),
        Command::Run(a) => run::run(a),
        Command::Pack(a) => pack::run(a),
        Command::Bench(a) => bench::run(a),
    };
    match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("error: {e}");
            1
        }
    }
}

/// `1234567` → `1,234,567`.
pub fn thousands(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// Where `out!` goes when stdout fails: a closed pipe is a normal end.
pub(crate) fn stdout_failed(e: std::io::Error) -> ! {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        std::process::exit(0);
    }
    eprintln!("error: writing to stdout: {e}");
    std::process::exit(1);
}
