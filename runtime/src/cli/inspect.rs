//! `squeeze inspect`: the per-layer table, totals and the memory plan.

use clap::Args;

use super::{thousands, ModelArgs};
use crate::error::Result;
use crate::ir::{inspect_totals, node_activations, node_params};

#[derive(Args)]
pub struct InspectArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Report what each optimizer pass did.
    #[arg(long)]
    pub passes: bool,
    /// Report the loading phase timings.
    #[arg(long)]
    pub load: bool,
}

pub fn run(args: InspectArgs) -> Result<()> {
    let model = args.model.load()?;
    let graph = model.graph();
    out!("model: {}", args.model.model.display());
    for i in model.inputs() {
        out!("input  {:<24} {} {:?}", i.name, i.dtype.name(), i.shape);
    }
    for o in model.outputs() {
        out!("output {:<24} {} {:?}", o.name, o.dtype.name(), o.shape);
    }
    if let Some(p) = model.package() {
        let m = &p.metadata;
        out!(
            "packed: {} bytes, sha256 {}",
            thousands(p.file_bytes),
            p.sha256
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        );
        out!(
            "metadata: name {:?}, version {:?}, producer {:?}, {} labels",
            m.name,
            m.version,
            m.producer,
            m.labels.len()
        );
        if let Some(pre) = &m.preprocessing {
            out!(
                "preprocessing: {} {} {}x{}, (pixel*{} - {:?}) / {:?}",
                pre.layout,
                pre.color_order,
                pre.input_size[0],
                pre.input_size[1],
                pre.scale,
                pre.mean,
                pre.std
            );
        }
        out!(
            "\n{:<4} {:<9} {:<6} {:>12} {:>12} {:>7}",
            "#",
            "kind",
            "codec",
            "stored",
            "raw",
            "ratio"
        );
        for s in &p.sections {
            let kind = match s.kind {
                crate::pack::format::kind::METADATA => "metadata",
                crate::pack::format::kind::GRAPH => "graph",
                crate::pack::format::kind::WEIGHT => "weight",
                _ => "unknown",
            };
            out!(
                "{:<4} {:<9} {:<6} {:>12} {:>12} {:>6.2}x",
                s.index,
                kind,
                format!("{:?}", s.codec).to_lowercase(),
                thousands(s.stored_len as usize),
                thousands(s.raw_len as usize),
                s.raw_len as f64 / s.stored_len.max(1) as f64
            );
        }
        let mut counts: Vec<(String, usize)> = Vec::new();
        for (_, st) in &p.storage {
            match counts.iter_mut().find(|(n, _)| *n == st.name()) {
                Some(c) => c.1 += 1,
                None => counts.push((st.name(), 1)),
            }
        }
        out!(
            "tensor storage: {}",
            counts
                .iter()
                .map(|(n, c)| format!("{c} {n}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    if args.passes {
        out!(
            "\n{:<22} {:>9} {:>8} {:>8} {:>8}",
            "pass",
            "rewrites",
            "before",
            "after",
            "removed"
        );
        for p in model.passes() {
            out!(
                "{:<22} {:>9} {:>8} {:>8} {:>8}",
                p.name,
                p.rewrites,
                p.nodes_before,
                p.nodes_after,
                p.nodes_removed
            );
        }
    }
    out!(
        "\n{:<4} {:<34} {:<20} {:<22} {:>12} {:>12}  kernel",
        "#",
        "name",
        "op",
        "output shape",
        "activations",
        "params"
    );
    let kernels = model.prepared().kernel_names();
    for (i, n) in graph.nodes.iter().enumerate() {
        let out = &graph.values[n.outputs[0]].info.shape;
        let mut op = n.op.name().to_string();
        if let Some(a) = n.op.activation() {
            op = format!("{op}+{}", crate::ir::Op::Unary(a).name());
        }
        let name: String = n.name.chars().take(34).collect();
        out!(
            "{:<4} {:<34} {:<20} {:<22} {:>12} {:>12}  {}",
            i,
            name,
            op,
            format!("{out:?}"),
            thousands(node_activations(graph, &n.op, &n.outputs)),
            thousands(node_params(graph, &n.inputs)),
            kernels[i].unwrap_or("(in place: no copy)")
        );
    }
    let t = inspect_totals(graph);
    let p = model.prepared().plan();
    out!("\nnodes: {}", graph.nodes.len());
    out!("parameters: {}", thousands(t.parameters));
    out!(
        "activation elements per run: {}",
        thousands(t.activation_elements)
    );
    out!(
        "kernels: {} ISA, {} threads; packed weights {} bytes",
        model.prepared().isa().name(),
        model.prepared().threads(),
        thousands(model.prepared().packed_bytes())
    );
    out!(
        "arena: {} bytes planned peak vs {} bytes if every tensor had its own buffer ({:.1}x smaller)",
        thousands(p.arena_bytes),
        thousands(p.naive_bytes),
        p.naive_bytes as f64 / p.arena_bytes.max(1) as f64
    );
    if args.load {
        // Kernels were chosen and packed at load ("prepare"); a session
        // adds its arena and threads.
        let mut timings = model.load_timings().clone();
        timings.time("session", || model.session())?;
        out!("\nload phases (to ready to run):");
        for (name, d) in &timings.phases {
            out!("  {:<14} {:>9.3} ms", name, d.as_secs_f64() * 1e3);
        }
        out!(
            "  {:<14} {:>9.3} ms",
            "total",
            timings.total().as_secs_f64() * 1e3
        );
    }
    Ok(())
}
