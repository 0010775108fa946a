//! `reparam`: inspect, re-parameterize and run RepVGG models.
//!
//! - `reparam bench`: the multi-branch and the plain form side by side (latency, FLOP rate,
//!   memory traffic, peak activation memory) on the CPU engine (and a GPU).
//! - `reparam info <MODEL|CHECKPOINT>`: per-layer table of shapes, params, MACs and Winograd MULs.
//! - `reparam fuse IN OUT`: fold a training-time checkpoint into its deployed (plain) form.
//! - `reparam run`: run a model (built-in synthetic weights or a checkpoint) on an image batch.
//! - `reparam layers [--backend cpu|gpu]`: time every distinct conv layer of a model with the
//!   CPU or the GPU kernels.
//! - `reparam gpu info`: the GPU adapter.
//!
//! Every failure is reported on stderr with what to do about it, and the exit status is non-zero
//! (1 for a failed command, 2 for a usage error reported by clap).

mod args;
mod commands;
mod error;
mod source;
mod table;
mod tensor_io;

use clap::{Parser, Subcommand};
use std::io::Write;
use std::process::ExitCode;

/// Inspect, re-parameterize and run RepVGG models (Ding et al., CVPR 2021).
#[derive(Debug, Parser)]
#[command(name = "reparam", version, propagate_version = true)]
#[command(after_help = "Examples:\n  \
    reparam info a0\n  \
    reparam fuse repvgg_a0_train.safetensors repvgg_a0_deploy.safetensors\n  \
    reparam run --model a0 --form multi-branch --input-size 96\n  \
    reparam layers --model a0 --threads 1\n  \
    reparam layers --backend gpu --model a0 --kernel all")]
struct Cli {
    /// The command to run.
    #[command(subcommand)]
    command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
enum Command {
    /// Time the multi-branch and the plain form of a model side by side: latency, images/s,
    /// GFLOP/s, memory traffic and peak activation memory, and their ratios.
    Bench(commands::bench::BenchArgs),
    /// Print the per-layer table of a model or checkpoint: shapes, params, MACs, Winograd MULs.
    Info(commands::info::InfoArgs),
    /// Re-parameterize a training-time checkpoint into a deployed (plain) one.
    Fuse(commands::fuse::FuseArgs),
    /// Rewrite a checkpoint (PyTorch `.pth` or safetensors) as safetensors.
    Convert(commands::convert::ConvertArgs),
    /// Write the deployed (plain) network as an ONNX model (opset 17).
    Export(commands::export::ExportArgs),
    /// Run a model on an image batch and print the top-5 classes and the time taken.
    Run(commands::run::RunArgs),
    /// Time every distinct conv layer of a model with the CPU kernels (median ms, GFLOP/s, % of
    /// the FMA peak) or the GPU kernels (median device ms, wall ms, GFLOP/s per kernel).
    Layers(commands::layers::LayersArgs),
    /// GPU (WGSL kernels through wgpu): `info` shows the adapter.
    Gpu(commands::gpu::GpuArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let mut stdout = std::io::stdout().lock();
    let result = match &cli.command {
        Command::Bench(args) => commands::bench::bench(args, &mut stdout),
        Command::Info(args) => commands::info::info(args, &mut stdout),
        Command::Fuse(args) => commands::fuse::fuse(args, &mut stdout),
        Command::Convert(args) => commands::convert::convert(args, &mut stdout),
        Command::Export(args) => commands::export::export(args, &mut stdout),
        Command::Run(args) => commands::run::run(args, &mut stdout),
        Command::Layers(args) => commands::layers::layers(args, &mut stdout),
        Command::Gpu(args) => commands::gpu::gpu(args, &mut stdout),
    };
    let _ = stdout.flush();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // `reparam info a0 | head`: the reader went away; nothing left to report.
        Err(e) if e.is_broken_pipe() => ExitCode::SUCCESS,
        Err(e) => {
            let _ = writeln!(std::io::stderr().lock(), "{e}");
            ExitCode::FAILURE
        }
    }
}
