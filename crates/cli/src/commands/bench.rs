//! `reparam bench`: the multi-branch and the plain (re-parameterized) form of a RepVGG network,
//! side by side on the same engine — latency, throughput, FLOP rate, memory traffic and peak
//! activation memory, and the multi-branch / plain ratios.

use crate::args::{parse_batch, parse_bn_eps, parse_input_size};
use crate::args::{parse_precision, parse_threads};
use crate::error::CliError;
use crate::source;
use crate::table::{Align, Table};
use crate::tensor_io::synthetic_input;
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use reparam_tensor::Tensor;
use reparam_wgsl::{GpuContext, GpuContextOptions, GpuConvOptions};
use reparam_winograd::Precision;
use repvgg::exec::Gpu;
use repvgg::graph::Form;
use repvgg::stats::InputSize;
use repvgg::traffic::{OpCost, op_costs};
use repvgg::{Checkpoint, Cpu, CpuOptions, Engine, Executor, Graph};
use serde::Serialize;
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Arguments of `reparam bench`.
#[derive(Debug, Args)]
#[command(
    after_help = "Without --checkpoint the weights are deterministic synthetic ones (seeded by \
    --seed), so the command works without a download. Each form runs --warmup untimed runs, then \
    --iters timed ones; latency is the median (and 90th percentile) of the timed runs, with the \
    input in memory and the logits read back.\n\n\
    MB moved per image is the analytic model of `repvgg::traffic` (every op reads its operands \
    and parameters once and writes its result once); peak activation MB is the engine's activation \
    memory (the CPU engine's arena); peak RSS is the process's high-water mark so far \
    (getrusage).\n\n\
    Examples:\n  reparam bench\n  reparam bench --model b0 --threads 1 --iters 100\n  \
    reparam bench --batch 8 --json\n  reparam bench --profile\n  reparam bench --backend gpu"
)]
pub struct BenchArgs {
    /// Official model with synthetic weights [default: a0].
    #[arg(long, value_name = "NAME", conflicts_with = "checkpoint")]
    pub model: Option<String>,
    /// Safetensors checkpoint (a training-time one runs both forms, a deployed one only plain).
    #[arg(long, value_name = "FILE")]
    pub checkpoint: Option<PathBuf>,
    /// Images per run.
    #[arg(long, value_name = "N", default_value = "1", value_parser = parse_batch)]
    pub batch: usize,
    /// Image size, H or HxW.
    #[arg(long, value_name = "H[xW]", default_value = "224", value_parser = parse_input_size)]
    pub input_size: InputSize,
    /// Threads of the CPU engine [default: one per core].
    #[arg(long, value_name = "T", value_parser = parse_threads)]
    pub threads: Option<usize>,
    /// Timed runs per form.
    #[arg(long, value_name = "K", default_value = "50", value_parser = parse_iters)]
    pub iters: usize,
    /// Untimed runs per form before timing.
    #[arg(long, value_name = "K", default_value = "5")]
    pub warmup: usize,
    /// Engines to time [default: cpu, plus gpu when a hardware GPU adapter exists].
    #[arg(long, value_enum)]
    pub backend: Option<BenchBackend>,
    /// Print the results as a JSON list (one object per backend and form) instead of tables.
    #[arg(long)]
    pub json: bool,
    /// Add a per-op table (op, shape, kernel, median ms, GB/s, share of the run).
    #[arg(long)]
    pub profile: bool,
    /// Seed of the synthetic weights and input.
    #[arg(long, value_name = "S", default_value_t = 0)]
    pub seed: u64,
    /// Batch-norm ε used when loading a training-time checkpoint.
    #[arg(long, value_name = "E", default_value = "1e-5", value_parser = parse_bn_eps)]
    pub bn_eps: f64,
    /// CPU engine: precision of the Winograd convs' transform-domain GEMM: f32; f16-weights (half
    /// the weight bytes, widened to f32 as loaded; the backend is then named `cpu-<isa>-f16w`);
    /// or bf16 (weights and transformed inputs in bf16, `vdpbf16ps` on CPUs with AVX512-BF16;
    /// `cpu-<isa>-bf16`).
    #[arg(long, value_name = "P", default_value = "f32", value_parser = parse_precision)]
    pub precision: Precision,
}

/// Which engines `reparam bench` times.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BenchBackend {
    /// reparam-winograd's CPU kernels.
    Cpu,
    /// reparam-wgsl on a GPU (a software adapter too, when asked for explicitly).
    Gpu,
    /// Both.
    All,
}

/// At least one timed run, at most a million.
fn parse_iters(s: &str) -> Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(n) if (1..=1_000_000).contains(&n) => Ok(n),
        Ok(n) => Err(format!("must be between 1 and 1000000, got {n}")),
        Err(_) => Err(format!("`{s}` is not a whole number")),
    }
}

/// One backend × form measurement (the `--json` object).
#[derive(Debug, Clone, Serialize)]
pub struct Measurement {
    /// `cpu-avx512f`, `gpu`.
    pub backend: String,
    /// `plain` or `multi-branch`.
    pub form: String,
    /// `RepVGG-A0`.
    pub model: String,
    /// Images per run.
    pub batch: usize,
    /// `[H, W]`.
    pub input_size: [usize; 2],
    /// Threads of the CPU engine (0 for the GPU).
    pub threads: usize,
    /// The CPU kernels' ISA, or the GPU adapter.
    pub isa: String,
    /// Timed runs.
    pub iters: usize,
    /// Median latency of one run (the whole batch), ms.
    pub median_ms: f64,
    /// 90th percentile latency, ms.
    pub p90_ms: f64,
    /// `batch / median`.
    pub images_per_s: f64,
    /// The form's FLOPs (`repvgg::traffic`) per median run, GFLOP/s.
    pub gflops: f64,
    /// Bytes moved per image (analytic model of `repvgg::traffic`).
    pub bytes_moved: u64,
    /// Activation memory of the engine (CPU: the arena) for the whole batch.
    pub peak_activation_bytes: u64,
    /// The process's peak resident set so far (getrusage), bytes.
    pub peak_rss_bytes: u64,
    /// Per op: `(label, median ms)`, with `--profile` (CPU only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub profile: Vec<ProfileRow>,
}

/// One row of the `--profile` table.
#[derive(Debug, Clone, Serialize)]
pub struct ProfileRow {
    /// Where it sits (`stage1.0.rbr_reparam`).
    pub label: String,
    /// The op (`conv3x3 48→48 s1 g1 +bias+relu (v3)`).
    pub op: String,
    /// Output shape.
    pub shape: [usize; 4],
    /// The conv kernel, if any.
    pub algorithm: Option<String>,
    /// Median time, ms.
    pub ms: f64,
    /// Bytes moved by the op (model) per median time, GB/s.
    pub gb_per_s: f64,
}

/// Runs `reparam bench`.
pub fn bench(args: &BenchArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let (net, origin) = source::load_net(
        args.model.as_deref(),
        args.checkpoint.as_deref(),
        args.seed,
        args.bn_eps,
    )?;
    let config = net.config().clone();
    let input = synthetic_input(args.batch, config.in_channels, args.input_size, args.seed)?;
    let graphs = graphs(&net)?;
    let gpu = gpu_context(args.backend)?;
    let run_cpu = args.backend != Some(BenchBackend::Gpu);
    if !args.json {
        writeln!(
            out,
            "model {}, weights {origin}, batch {}, input {}x{}",
            config.name, args.batch, args.input_size.height, args.input_size.width
        )?;
        writeln!(out, "machine: {}", source::cpu_model())?;
        if let Some(ctx) = &gpu {
            let s = ctx.summary();
            writeln!(out, "gpu: {} ({}, {})", s.name, s.device_type, s.backend)?;
        }
        out.flush()?;
    }
    let engines = usize::from(run_cpu) + usize::from(gpu.is_some());
    let progress = progress_bar((engines * graphs.len() * (args.warmup + args.iters)) as u64);
    let mut results = Vec::new();
    for (form, graph) in &graphs {
        let costs = op_costs(graph, input.shape()).map_err(bench_failed)?;
        if run_cpu {
            let options = CpuOptions {
                threads: args.threads,
                input_hw: (args.input_size.height, args.input_size.width),
                profile: args.profile,
                precision: args.precision,
                ..CpuOptions::default()
            };
            let mut engine = Cpu::new(graph, &options).map_err(|e| {
                CliError::new(format!("cannot prepare the CPU engine: {e}"))
                    .hint("check REPARAM_ISA and --threads")
            })?;
            let threads = engine.threads();
            let isa = engine.isa().name().to_owned();
            let timed = time_runs(&mut engine, &input, args, &progress)?;
            let profile = if args.profile {
                profile_rows(&engine, &timed.profiles, &costs)
            } else {
                Vec::new()
            };
            let backend = match args.precision {
                Precision::F32 => engine.name(),
                Precision::F16Weights => format!("{}-f16w", engine.name()),
                Precision::Bf16 => format!("{}-bf16", engine.name()),
            };
            results.push(measure(
                (&backend, *form, &config.name, threads, &isa),
                &timed,
                &costs,
                args,
                profile,
            ));
        }
        if let Some(ctx) = &gpu {
            let mut engine = Executor::new(Gpu::new(ctx, GpuConvOptions::default()), graph)
                .map_err(bench_failed)?;
            let timed = time_runs(&mut engine, &input, args, &progress)?;
            let name = ctx.summary().name.clone();
            results.push(measure(
                ("gpu", *form, &config.name, 0, &name),
                &timed,
                &costs,
                args,
                Vec::new(),
            ));
        }
    }
    progress.finish_and_clear();
    if args.json {
        let json = serde_json::to_string_pretty(&results)
            .map_err(|e| CliError::new(format!("cannot encode the results: {e}")))?;
        writeln!(out, "{json}")?;
    } else {
        write_tables(out, &results)?;
    }
    Ok(())
}

/// The graphs to time: both forms of a training-time net (the multi-branch one with each
/// branch's BN folded into its conv, as an inference engine runs it), the plain form only of a
/// deployed one.
fn graphs(net: &Checkpoint) -> Result<Vec<(Form, Graph)>, CliError> {
    let failed = |e: repvgg::Error| {
        CliError::new(format!("cannot build the graph: {e}"))
            .hint("check the checkpoint's batch-norm statistics")
    };
    match net {
        Checkpoint::Train(train) => [Form::Plain, Form::MultiBranch]
            .into_iter()
            .map(|form| Ok((form, Graph::deployed(train, form).map_err(failed)?)))
            .collect(),
        Checkpoint::Deploy(plain) => Ok(vec![(Form::Plain, Graph::plain(plain).map_err(failed)?)]),
    }
}

/// The GPU to time on: with `--backend gpu|all` any adapter (a missing one is an error); by
/// default only a hardware one (a software rasterizer would only slow the default run down).
fn gpu_context(backend: Option<BenchBackend>) -> Result<Option<GpuContext>, CliError> {
    let ctx = pollster::block_on(GpuContext::new(&GpuContextOptions::from_env()));
    match (backend, ctx) {
        (Some(BenchBackend::Cpu), _) => Ok(None),
        (Some(_), Ok(ctx)) => Ok(Some(ctx)),
        (Some(_), Err(e)) => Err(CliError::new(format!("no GPU to run on: {e}")).hint(
            "install a Vulkan driver (Debian: mesa-vulkan-drivers for the software adapter), or \
             pass --backend cpu",
        )),
        (None, Ok(ctx)) if ctx.summary().device_type != "Cpu" => Ok(Some(ctx)),
        (None, _) => Ok(None),
    }
}

/// A progress bar on stderr, drawn only when stderr is a terminal.
fn progress_bar(total: u64) -> ProgressBar {
    let bar = ProgressBar::new(total);
    if let Ok(style) = ProgressStyle::with_template("{msg:>24} {bar:40} {pos}/{len} runs") {
        bar.set_style(style);
    }
    bar
}

/// The wall-clock times of the timed runs and, with `--profile`, the per-step times of each.
struct Timed {
    runs: Vec<Duration>,
    profiles: Vec<Vec<Duration>>,
    peak_activation_bytes: u64,
    peak_rss_bytes: u64,
}

/// Something [`time_runs`] can time: an engine and, for the CPU, its per-step profile.
trait Timeable: Engine {
    fn step_times(&self) -> Option<Vec<Duration>>;
}

impl Timeable for Cpu {
    fn step_times(&self) -> Option<Vec<Duration>> {
        self.profile().map(<[Duration]>::to_vec)
    }
}

impl Timeable for Executor<Gpu<'_>> {
    fn step_times(&self) -> Option<Vec<Duration>> {
        None
    }
}

/// Warm-up runs, then timed runs (each reads the logits back).
fn time_runs(
    engine: &mut impl Timeable,
    input: &Tensor,
    args: &BenchArgs,
    progress: &ProgressBar,
) -> Result<Timed, CliError> {
    progress.set_message(engine.name());
    let mut peak_activation_bytes = 0;
    for _ in 0..args.warmup {
        engine.run(input).map_err(bench_failed)?;
        progress.inc(1);
    }
    let mut runs = Vec::with_capacity(args.iters);
    let mut profiles = Vec::new();
    for _ in 0..args.iters {
        let start = Instant::now();
        let out = engine.run(input).map_err(bench_failed)?;
        runs.push(start.elapsed());
        peak_activation_bytes = out.peak_live_bytes as u64;
        if let Some(steps) = engine.step_times() {
            profiles.push(steps);
        }
        progress.inc(1);
    }
    Ok(Timed {
        runs,
        profiles,
        peak_activation_bytes,
        peak_rss_bytes: peak_rss_bytes(),
    })
}

/// The process's peak resident set size in bytes (0 where getrusage fails).
fn peak_rss_bytes() -> u64 {
    use nix::sys::resource::{UsageWho, getrusage};
    // Linux reports ru_maxrss in KiB.
    getrusage(UsageWho::RUSAGE_SELF).map_or(0, |u| u64::try_from(u.max_rss()).unwrap_or(0) * 1024)
}

/// The `q`-quantile (nearest rank) of `times`, ms.
fn quantile_ms(times: &[Duration], q: f64) -> f64 {
    let mut sorted = times.to_vec();
    sorted.sort();
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1].as_secs_f64() * 1e3
}

/// The median of `times`, ms (the mean of the two middle values for an even count).
fn median_ms(times: &[Duration]) -> f64 {
    let mut sorted = times.to_vec();
    sorted.sort();
    let n = sorted.len();
    let mid = if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2
    };
    mid.as_secs_f64() * 1e3
}

/// Builds a [`Measurement`] from the timed runs.
fn measure(
    (backend, form, model, threads, isa): (&str, Form, &str, usize, &str),
    timed: &Timed,
    costs: &[OpCost],
    args: &BenchArgs,
    profile: Vec<ProfileRow>,
) -> Measurement {
    let median = median_ms(&timed.runs);
    let flops: u64 = costs.iter().map(|c| c.flops).sum();
    let bytes: u64 = costs.iter().map(OpCost::bytes_moved).sum();
    Measurement {
        backend: backend.to_owned(),
        form: form.to_string(),
        model: model.to_owned(),
        batch: args.batch,
        input_size: [args.input_size.height, args.input_size.width],
        threads,
        isa: isa.to_owned(),
        iters: args.iters,
        median_ms: median,
        p90_ms: quantile_ms(&timed.runs, 0.9),
        images_per_s: args.batch as f64 / (median / 1e3),
        gflops: flops as f64 / (median / 1e3) / 1e9,
        bytes_moved: bytes / args.batch as u64,
        peak_activation_bytes: timed.peak_activation_bytes,
        peak_rss_bytes: timed.peak_rss_bytes,
        profile,
    }
}

/// Per step: the median of its times over the timed runs, with its model bytes.
fn profile_rows(engine: &Cpu, profiles: &[Vec<Duration>], costs: &[OpCost]) -> Vec<ProfileRow> {
    engine
        .steps()
        .into_iter()
        .zip(costs)
        .enumerate()
        .map(|(k, (step, cost))| {
            let times: Vec<Duration> = profiles.iter().map(|p| p[k]).collect();
            let ms = median_ms(&times);
            ProfileRow {
                label: step.label,
                op: step.op,
                shape: cost.output_shape,
                algorithm: step.algorithm,
                ms,
                gb_per_s: cost.bytes_moved() as f64 / (ms / 1e3) / 1e9,
            }
        })
        .collect()
}

/// The results table per backend, the multi-branch / plain ratios, and the profiles.
fn write_tables(out: &mut dyn Write, results: &[Measurement]) -> Result<(), CliError> {
    let mb = |b: u64| format!("{:.1}", b as f64 / 1e6);
    let mut backends: Vec<&str> = results.iter().map(|m| m.backend.as_str()).collect();
    backends.dedup();
    backends.sort();
    backends.dedup();
    for backend in backends {
        let rows: Vec<&Measurement> = results.iter().filter(|m| m.backend == backend).collect();
        let first = rows[0];
        writeln!(out)?;
        if first.threads > 0 {
            writeln!(
                out,
                "{backend}: {} threads, {} timed runs per form",
                first.threads, first.iters
            )?;
        } else {
            writeln!(
                out,
                "{backend} ({}): {} timed runs per form",
                first.isa, first.iters
            )?;
        }
        let mut table = Table::new(&[
            ("form", Align::Left),
            ("median ms", Align::Right),
            ("p90 ms", Align::Right),
            ("images/s", Align::Right),
            ("GFLOP/s", Align::Right),
            ("MB moved/img", Align::Right),
            ("peak act MB", Align::Right),
            ("peak RSS MB", Align::Right),
        ]);
        for m in &rows {
            table.row(vec![
                m.form.clone(),
                format!("{:.2}", m.median_ms),
                format!("{:.2}", m.p90_ms),
                format!("{:.1}", m.images_per_s),
                format!("{:.1}", m.gflops),
                mb(m.bytes_moved),
                mb(m.peak_activation_bytes),
                mb(m.peak_rss_bytes),
            ]);
        }
        let plain = rows.iter().find(|m| m.form == "plain");
        let multi = rows.iter().find(|m| m.form == "multi-branch");
        if let (Some(p), Some(m)) = (plain, multi) {
            let x = |a: f64, b: f64| format!("{:.2}x", a / b);
            table.rule();
            table.row(vec![
                "multi-branch / plain".into(),
                x(m.median_ms, p.median_ms),
                x(m.p90_ms, p.p90_ms),
                x(m.images_per_s, p.images_per_s),
                x(m.gflops, p.gflops),
                x(m.bytes_moved as f64, p.bytes_moved as f64),
                x(
                    m.peak_activation_bytes as f64,
                    p.peak_activation_bytes as f64,
                ),
                "-".into(),
            ]);
        }
        write!(out, "{}", table.render())?;
        for m in rows.iter().filter(|m| !m.profile.is_empty()) {
            write_profile(out, m)?;
        }
    }
    Ok(())
}

/// The `--profile` table of one measurement.
fn write_profile(out: &mut dyn Write, m: &Measurement) -> Result<(), CliError> {
    writeln!(out, "\nprofile: {} {}", m.backend, m.form)?;
    let total: f64 = m.profile.iter().map(|r| r.ms).sum();
    let mut table = Table::new(&[
        ("op", Align::Left),
        ("shape", Align::Left),
        ("kernel", Align::Left),
        ("ms", Align::Right),
        ("GB/s", Align::Right),
        ("share", Align::Right),
    ]);
    for r in &m.profile {
        let [n, c, h, w] = r.shape;
        table.row(vec![
            format!("{} {}", r.label, r.op.split(" (").next().unwrap_or(&r.op)),
            format!("{n}x{c}x{h}x{w}"),
            r.algorithm.clone().unwrap_or_else(|| "-".into()),
            format!("{:.3}", r.ms),
            format!("{:.1}", r.gb_per_s),
            format!("{:.1} %", 100.0 * r.ms / total.max(f64::MIN_POSITIVE)),
        ]);
    }
    write!(out, "{}", table.render())?;
    writeln!(
        out,
        "sum of op medians: {total:.3} ms (run median {:.3} ms)",
        m.median_ms
    )?;
    Ok(())
}

fn bench_failed(e: repvgg::Error) -> CliError {
    CliError::new(format!("the benchmark failed: {e}"))
        .hint("the input passed validation, so this is a bug; please report the command")
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Wrapper {
        #[command(flatten)]
        bench: BenchArgs,
    }

    fn parse(args: &[&str]) -> Result<BenchArgs, clap::Error> {
        Wrapper::try_parse_from(["bench"].iter().chain(args)).map(|w| w.bench)
    }

    #[test]
    fn defaults_and_validation() {
        let a = parse(&[]).unwrap();
        assert_eq!((a.batch, a.iters, a.warmup, a.backend), (1, 50, 5, None));
        assert!(!a.json && !a.profile);
        for bad in [
            &["--iters", "0"][..],
            &["--batch", "0"],
            &["--backend", "tpu"],
            &["--model", "a0", "--checkpoint", "x"],
            &["--threads", "0"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn quantiles() {
        let t: Vec<Duration> = [5, 1, 3, 2, 4].map(Duration::from_millis).to_vec();
        assert_eq!(median_ms(&t), 3.0);
        assert_eq!(quantile_ms(&t, 0.9), 5.0);
        assert_eq!(median_ms(&t[..4]), 2.5);
    }

    #[test]
    fn a_small_json_run_has_every_field() {
        let a = parse(&[
            "--model",
            "a0",
            "--input-size",
            "32",
            "--iters",
            "2",
            "--warmup",
            "1",
            "--json",
            "--backend",
            "cpu",
        ])
        .unwrap();
        let mut out = Vec::new();
        bench(&a, &mut out).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        let list = v.as_array().unwrap();
        assert_eq!(list.len(), 2);
        for key in [
            "backend",
            "form",
            "model",
            "batch",
            "threads",
            "isa",
            "median_ms",
            "p90_ms",
            "images_per_s",
            "gflops",
            "bytes_moved",
            "peak_activation_bytes",
            "peak_rss_bytes",
        ] {
            assert!(list.iter().all(|m| m.get(key).is_some()), "{key}");
        }
        let forms: Vec<_> = list.iter().map(|m| m["form"].as_str().unwrap()).collect();
        assert_eq!(forms, ["plain", "multi-branch"]);
        let bytes = |i: usize| list[i]["bytes_moved"].as_u64().unwrap();
        assert!(bytes(1) > bytes(0));
    }
}
