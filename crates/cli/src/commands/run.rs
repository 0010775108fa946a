//! `reparam run`: run a network on an image batch; print the top-5 classes and the time taken.

use crate::args::{parse_batch, parse_bn_eps, parse_form, parse_gpu_kernel, parse_input_size};
use crate::args::{parse_precision, parse_threads};
use crate::commands::{duration, same_file};
use crate::error::CliError;
use crate::source;
use crate::table::si;
use crate::tensor_io::{encode_logits, parse_input, synthetic_input};
use clap::{Args, ValueEnum};
use reparam_tensor::Tensor;
use reparam_wgsl::{GpuContext, GpuContextOptions, GpuConvOptions, GpuKernel};
use repvgg::exec::Gpu;
use repvgg::images::Preprocess;
use repvgg::images::classes::{IMAGENET_CLASSES, imagenet_class};
use repvgg::stats::{InputSize, ModelStats};
use repvgg::{Checkpoint, Cpu, CpuOptions, Engine, Executor, Form, Graph, RunOutput};
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// How many classes are printed per image.
const TOP_K: usize = 5;

/// Arguments of `reparam run`.
#[derive(Debug, Args)]
#[command(
    after_help = "Without --checkpoint the weights are deterministic synthetic ones \
    (seeded by --seed), so the command works without a download; without --input the image batch \
    is synthetic too (uniform in [-1, 1), seeded by --seed).\n\n\
    Examples:\n  reparam run --model a0\n  reparam run --model b1g4 --form multi-branch --input-size 64\n  \
    reparam run --checkpoint repvgg_a0.safetensors --image cat.jpg --image dog.png\n  \
    reparam run --checkpoint repvgg_a0.safetensors --input image.safetensors --output logits.safetensors\n  \
    reparam run --model a0 --backend gpu --gpu-kernel gemm"
)]
pub struct RunArgs {
    /// Official model with synthetic weights [default: a0].
    #[arg(long, value_name = "NAME", conflicts_with = "checkpoint")]
    pub model: Option<String>,
    /// Checkpoint to run: safetensors or PyTorch `.pth` (training-time or deployed; official or
    /// timm names).
    #[arg(long, value_name = "FILE")]
    pub checkpoint: Option<PathBuf>,
    /// Which form of the network to run; a deployed checkpoint runs only as plain.
    #[arg(long, value_name = "FORM", default_value = "plain", value_parser = parse_form)]
    pub form: Form,
    /// Safetensors file with the image batch under the key `input`, shape [N, 3, H, W]
    /// (F32, F16 or BF16).
    #[arg(long, value_name = "X.safetensors", conflicts_with_all = ["batch", "input_size"])]
    pub input: Option<PathBuf>,
    /// Image file (JPEG or PNG) to classify, preprocessed as timm evaluates RepVGG (shorter side
    /// to 256, bilinear; center crop 224; ImageNet mean/std); repeat for a batch.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["input", "batch", "input_size"])]
    pub image: Vec<PathBuf>,
    /// Write the logits to this safetensors file under the key `logits`, shape [N, classes], F32.
    #[arg(long, value_name = "Y.safetensors")]
    pub output: Option<PathBuf>,
    /// Seed of the synthetic weights and the synthetic input.
    #[arg(long, value_name = "S", default_value_t = 0)]
    pub seed: u64,
    /// Images in the synthetic batch.
    #[arg(long, value_name = "N", default_value = "1", value_parser = parse_batch)]
    pub batch: usize,
    /// Size of the synthetic images, H or HxW.
    #[arg(long, value_name = "H[xW]", default_value = "224", value_parser = parse_input_size)]
    pub input_size: InputSize,
    /// Batch-norm ε used when loading a training-time checkpoint.
    #[arg(long, value_name = "E", default_value = "1e-5", value_parser = parse_bn_eps)]
    pub bn_eps: f64,
    /// Which engine runs the graph.
    #[arg(long, value_enum, default_value_t = BackendArg::Cpu)]
    pub backend: BackendArg,
    /// Threads of the CPU engine [default: one per core].
    #[arg(long, value_name = "T", value_parser = parse_threads)]
    pub threads: Option<usize>,
    /// CPU engine: precision of the Winograd convs' transform-domain GEMM, f32, f16-weights or
    /// bf16 (on CPUs with AVX512-BF16).
    #[arg(long, value_name = "P", default_value = "f32", value_parser = parse_precision)]
    pub precision: reparam_winograd::Precision,
    /// GPU conv kernel with `--backend gpu`: auto, naive, direct, gemm, gemm-wide, winograd-f23
    /// or winograd-f43 (the Winograd kernels run only stride-1 layers, so they fail on a whole
    /// RepVGG).
    #[arg(long, value_name = "KERNEL", default_value = "auto", value_parser = parse_gpu_kernel)]
    pub gpu_kernel: GpuKernel,
}

/// The engines `reparam run` offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BackendArg {
    /// reparam-winograd's SIMD kernels on NCHWc activations (Winograd and direct convolution).
    Cpu,
    /// The f64-accumulating oracle (slow, obviously correct).
    Reference,
    /// reparam-wgsl on the GPU (whole graph in one submission); REPARAM_GPU_ADAPTER picks the
    /// adapter by name.
    Gpu,
}

/// Wall-clock time of each phase.
#[derive(Debug, Default)]
struct Timings {
    weights: Duration,
    fold: Option<Duration>,
    graph: Duration,
    run: Duration,
    /// What ran: `reference executor`, or the GPU adapter and its timing source.
    run_label: String,
}

/// Runs `reparam run`.
pub fn run(args: &RunArgs, out: &mut dyn Write) -> Result<(), CliError> {
    if let Some(output) = &args.output {
        let inputs = [("--checkpoint", &args.checkpoint), ("--input", &args.input)]
            .into_iter()
            .filter_map(|(what, path)| path.as_deref().map(|p| (what, p)))
            .chain(args.image.iter().map(|p| ("--image", p.as_path())));
        for (what, path) in inputs {
            if same_file(path, output) {
                return Err(CliError::new(format!(
                    "--output `{}` is the {what} file; refusing to overwrite it",
                    output.display()
                ))
                .hint("write the logits to a different path"));
            }
        }
    }
    let mut time = Timings::default();

    let start = Instant::now();
    let (net, origin) = load_net(args)?;
    time.weights = start.elapsed();
    let config = net.config().clone();
    writeln!(out, "model:    {}", config.name)?;
    writeln!(out, "weights:  {origin}")?;

    let graph = build_graph(net, args, &mut time)?;
    writeln!(
        out,
        "form:     {}",
        match args.form {
            Form::Plain => "plain (one 3x3 conv + bias + ReLU per block)",
            Form::MultiBranch =>
                "multi-branch (3x3 conv + BN, 1x1 conv + BN, identity BN, add, ReLU per block)",
        }
    )?;

    let input = load_input(args, config.in_channels, out)?;
    let [n, _, h, w] = input.shape();
    let stats = ModelStats::new(&config, InputSize::new(h, w)).map_err(|e| {
        CliError::new(format!("cannot run `{}` on this input: {e}", config.name))
            .hint("use images with sides between 1 and 1048576 pixels")
    })?;
    let output = match args.backend {
        BackendArg::Reference => {
            writeln!(
                out,
                "executor: reference (naive loop nests accumulating in f64; slow by design), \
                 {} MACs per image in deploy form",
                si(stats.totals.macs)
            )?;
            out.flush()?;
            let start = Instant::now();
            let output = Executor::reference(&graph)
                .and_then(|e| e.run(&input))
                .map_err(run_failed)?;
            time.run = start.elapsed();
            time.run_label = "reference executor".into();
            output
        }
        BackendArg::Cpu => run_cpu(args, &graph, &input, &mut time, out)?,
        BackendArg::Gpu => run_gpu(args, &graph, &input, &mut time, out)?,
    };
    let logits = &output.logits;
    let classes = config.num_classes;
    if logits.shape() != [n, classes, 1, 1] {
        return Err(CliError::new(format!(
            "the executor returned logits of shape {:?}, expected {:?}",
            logits.shape(),
            [n, classes, 1, 1]
        ))
        .hint("this is a bug in the executor; please report the command"));
    }

    writeln!(out)?;
    for (i, row) in logits.data().chunks(classes).enumerate() {
        let label = match args.image.get(i) {
            Some(path) => format!("image {i} ({})", path.display()),
            None => format!("image {i}"),
        };
        let names = classes == IMAGENET_CLASSES;
        writeln!(out, "{label}: {}", format_top(&top_k(row, TOP_K), names))?;
    }
    writeln!(out)?;
    write_timings(out, &time, n)?;

    if let Some(path) = &args.output {
        let bytes = encode_logits(logits)?;
        std::fs::write(path, bytes).map_err(|e| CliError::write(path, &e))?;
        writeln!(
            out,
            "wrote {}: `logits` [{n}, {classes}] f32",
            path.display()
        )?;
    }
    Ok(())
}

fn run_failed(e: repvgg::Error) -> CliError {
    CliError::new(format!("the run failed: {e}"))
        .hint("the input passed validation, so this is a bug; please report the command")
}

/// Runs the graph on the CPU engine: prepared once (plans, packed weights), one warm-up run
/// (plans the activation arena), then one timed run.
fn run_cpu(
    args: &RunArgs,
    graph: &Graph,
    input: &Tensor,
    time: &mut Timings,
    out: &mut dyn Write,
) -> Result<RunOutput, CliError> {
    let [_, _, h, w] = input.shape();
    let options = CpuOptions {
        threads: args.threads,
        input_hw: (h, w),
        precision: args.precision,
        ..CpuOptions::default()
    };
    let start = Instant::now();
    let mut engine = Cpu::new(graph, &options).map_err(|e| {
        CliError::new(format!("cannot prepare the CPU engine: {e}"))
            .hint("check REPARAM_ISA and --threads")
    })?;
    let prepare = start.elapsed();
    writeln!(
        out,
        "executor: {} ({} threads; plans built in {})",
        engine.name(),
        engine.threads(),
        duration(prepare)
    )?;
    out.flush()?;
    engine.run(input).map_err(run_failed)?;
    let start = Instant::now();
    let output = engine.run(input).map_err(run_failed)?.clone();
    time.run = start.elapsed();
    time.run_label = format!("{}, second run", engine.name());
    Ok(output)
}

/// Runs the graph on the GPU: one warm-up run (compiles the pipelines, uploads the weights),
/// then one timed run whose device time comes from timestamp queries where the adapter has them.
fn run_gpu(
    args: &RunArgs,
    graph: &Graph,
    input: &Tensor,
    time: &mut Timings,
    out: &mut dyn Write,
) -> Result<RunOutput, CliError> {
    let kernel = args.gpu_kernel;
    let ctx = pollster::block_on(GpuContext::new(&GpuContextOptions::from_env())).map_err(|e| {
        CliError::new(format!("no GPU to run on: {e}")).hint(
            "install a Vulkan driver (Debian: apt-get install mesa-vulkan-drivers for the \
             software adapter), or run with --backend reference",
        )
    })?;
    writeln!(
        out,
        "executor: gpu, {} ({}), conv kernel {}",
        ctx.summary().name,
        ctx.summary().device_type,
        kernel.name()
    )?;
    out.flush()?;
    let options = GpuConvOptions {
        kernel: Some(kernel),
        autotune: None,
    };
    let exec = Executor::new(Gpu::new(&ctx, options), graph).map_err(run_failed)?;
    exec.run(input).map_err(run_failed)?;
    let start = Instant::now();
    let output = exec.run(input).map_err(run_failed)?;
    time.run = start.elapsed();
    time.run_label = match exec.backend().last_run() {
        Some((labels, timings)) => match timings.device_ms {
            Some(ms) => format!(
                "gpu: {} ops in one submission, {ms:.3} ms device time (timestamps)",
                labels.len()
            ),
            None => format!(
                "gpu: {} ops in one submission, {:.3} ms wall (no timestamps)",
                labels.len(),
                timings.wall_ms
            ),
        },
        None => "gpu".into(),
    };
    Ok(output)
}

/// The network to run and a line saying where its weights came from.
fn load_net(args: &RunArgs) -> Result<(Checkpoint, String), CliError> {
    source::load_net(
        args.model.as_deref(),
        args.checkpoint.as_deref(),
        args.seed,
        args.bn_eps,
    )
}

/// The image batch: read from `--input`, or synthetic; reports which on `out`.
fn load_input(args: &RunArgs, channels: usize, out: &mut dyn Write) -> Result<Tensor, CliError> {
    if !args.image.is_empty() {
        let pre = Preprocess::timm_eval();
        let input = pre
            .load_batch(&args.image)
            .map_err(|e| CliError::new(e.to_string()).hint("pass JPEG or PNG image files"))?;
        if channels != 3 {
            return Err(CliError::new(format!(
                "the network takes {channels} input channels; images have 3"
            ))
            .hint("run this network on --input tensors instead"));
        }
        writeln!(
            out,
            "input:    {} image(s) {:?}, timm eval preprocessing (resize {}, center crop {}, \
             ImageNet mean/std)",
            args.image.len(),
            input.shape(),
            pre.resize_shorter(),
            pre.crop()
        )?;
        return Ok(input);
    }
    let input = match &args.input {
        Some(path) => {
            let bytes = std::fs::read(path).map_err(|e| CliError::read(path, &e))?;
            let input = parse_input(&bytes, &path.display().to_string(), channels)?;
            writeln!(out, "input:    {} {:?}", path.display(), input.shape())?;
            input
        }
        None => {
            let input = synthetic_input(args.batch, channels, args.input_size, args.seed)?;
            let shape = input.shape();
            writeln!(out, "input:    synthetic {shape:?} (seed {})", args.seed)?;
            input
        }
    };
    Ok(input)
}

/// Folds (for the plain form of a training-time net) and builds the graph, timing both.
fn build_graph(net: Checkpoint, args: &RunArgs, time: &mut Timings) -> Result<Graph, CliError> {
    let graph_error = |e: repvgg::Error| {
        CliError::new(format!("cannot build the graph: {e}"))
            .hint("the checkpoint loaded but does not form a runnable network; please report this")
    };
    let start = Instant::now();
    let graph = match (net, args.form) {
        (Checkpoint::Train(train), Form::Plain) => {
            let plain = repvgg::fuse(&train).map_err(|e| {
                CliError::new(format!("cannot fuse the network: {e}")).hint(
                    "check the checkpoint's batch-norm statistics, or run --form multi-branch",
                )
            })?;
            time.fold = Some(start.elapsed());
            let start = Instant::now();
            let graph = Graph::plain(&plain).map_err(graph_error)?;
            time.graph = start.elapsed();
            return Ok(graph);
        }
        // As an inference engine runs a trained network: each branch's BN folded into its conv.
        (Checkpoint::Train(train), Form::MultiBranch) => Graph::multi_branch(&train)
            .and_then(|g| g.fold_conv_batch_norms())
            .map_err(graph_error)?,
        (Checkpoint::Deploy(plain), Form::Plain) => Graph::plain(&plain).map_err(graph_error)?,
        (Checkpoint::Deploy(_), Form::MultiBranch) => {
            let path = args
                .checkpoint
                .as_deref()
                .unwrap_or(std::path::Path::new("?"));
            return Err(CliError::new(format!(
                "`{}` is a deployed (re-parameterized) checkpoint; its branches were folded away, \
                 so it cannot run as --form multi-branch",
                path.display()
            ))
            .hint("use --form plain, or pass the training-time checkpoint"));
        }
    };
    time.graph = start.elapsed();
    Ok(graph)
}

fn write_timings(out: &mut dyn Write, time: &Timings, images: usize) -> Result<(), CliError> {
    writeln!(
        out,
        "time:     build {} (weights {}, graph {})",
        duration(time.weights + time.graph),
        duration(time.weights),
        duration(time.graph)
    )?;
    match time.fold {
        Some(fold) => writeln!(out, "          fold  {}", duration(fold))?,
        None => writeln!(out, "          fold  - (nothing to fold)")?,
    }
    writeln!(
        out,
        "          run   {} ({} per image; {})",
        duration(time.run),
        duration(time.run / images.max(1) as u32),
        time.run_label
    )?;
    Ok(())
}

/// The `k` largest logits as `(class, logit)`, largest first; ties keep the lower class first and
/// NaN sorts last.
pub fn top_k(logits: &[f32], k: usize) -> Vec<(usize, f32)> {
    let mut ranked: Vec<(usize, f32)> = logits.iter().copied().enumerate().collect();
    ranked.sort_by(|a, b| match (a.1.is_nan(), b.1.is_nan()) {
        (false, false) => b.1.total_cmp(&a.1),
        (nan_a, nan_b) => nan_a.cmp(&nan_b),
    });
    ranked.truncate(k);
    ranked
}

/// `top-5 class (logit): 417 (3.1416), 12 (2.9000), …`; with `imagenet_names` each class also
/// carries its ImageNet-1k name: `417 balloon (3.1416)`.
pub fn format_top(top: &[(usize, f32)], imagenet_names: bool) -> String {
    let items: Vec<String> = top
        .iter()
        .map(
            |&(c, v)| match imagenet_class(c).filter(|_| imagenet_names) {
                Some(class) => format!("{c} {} ({v:.4})", class.name()),
                None => format!("{c} ({v:.4})"),
            },
        )
        .collect();
    format!("top-{} class (logit): {}", top.len(), items.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Wrapper {
        #[command(flatten)]
        run: RunArgs,
    }

    fn parse(args: &[&str]) -> Result<RunArgs, clap::Error> {
        Wrapper::try_parse_from(["run"].iter().chain(args)).map(|w| w.run)
    }

    #[test]
    fn defaults() {
        let a = parse(&[]).unwrap();
        assert_eq!(a.model, None);
        assert_eq!(a.form, Form::Plain);
        assert_eq!((a.batch, a.seed), (1, 0));
        assert_eq!(a.input_size, InputSize::square(224));
        assert_eq!(a.bn_eps, 1e-5);
    }

    #[test]
    fn options_parse_and_validate() {
        let a = parse(&["--model", "b1g4", "--form", "multi-branch", "--batch", "2"]).unwrap();
        assert_eq!(
            (a.model.as_deref(), a.form, a.batch),
            (Some("b1g4"), Form::MultiBranch, 2)
        );
        let a = parse(&["--input-size", "32x48", "--seed", "9"]).unwrap();
        assert_eq!((a.input_size, a.seed), (InputSize::new(32, 48), 9));
        for bad in [
            &["--model", "a0", "--checkpoint", "x"][..],
            &["--input", "x", "--batch", "2"],
            &["--input", "x", "--input-size", "32"],
            &["--form", "fused"],
            &["--batch", "0"],
            &["--input-size", "0"],
            &["--seed", "-1"],
            &["--bn-eps", "0"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn top_k_orders_and_truncates() {
        let top = top_k(&[0.5, 3.0, -1.0, 3.0, f32::NAN, 2.0, 1.0], 5);
        assert_eq!(top, [(1, 3.0), (3, 3.0), (5, 2.0), (6, 1.0), (0, 0.5)]);
        assert_eq!(top_k(&[1.0, 2.0], 5), [(1, 2.0), (0, 1.0)]);
        assert!(top_k(&[f32::NAN, 0.0], 2)[1].1.is_nan());
        assert_eq!(
            format_top(&[(417, 1.23456), (3, -0.5)], false),
            "top-2 class (logit): 417 (1.2346), 3 (-0.5000)"
        );
        assert_eq!(
            format_top(&[(0, 2.0), (417, 1.0)], true),
            "top-2 class (logit): 0 tench (2.0000), 417 balloon (1.0000)"
        );
    }

    #[test]
    fn unknown_model_is_an_error() {
        let a = parse(&["--model", "vgg16"]).unwrap();
        let e = run(&a, &mut Vec::new()).unwrap_err().to_string();
        assert!(e.contains("unknown model `vgg16`"), "{e}");
    }
}
