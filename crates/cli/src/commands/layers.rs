//! `reparam layers`: time every distinct conv layer of a deployed model with the CPU kernels of
//! `reparam-winograd`; median ms, effective GFLOP/s and % of the FMA peak per layer.
//!
//! Layers that are identical in (C_in, C_out, H, W, stride, groups) are timed once and counted:
//! RepVGG-A0's thirteen 192→192 blocks at 14x14 are one row with count 13. The row's `layer` is
//! the first block with that shape (`stage3.1`).
//!
//! Effective GFLOP/s always uses the direct-convolution count
//! `2·C_out·(C_in/g)·9·H_out·W_out·N / median`, whatever algorithm ran, so rows compare across
//! algorithms (and a Winograd kernel can exceed 100 % of the FMA peak on this scale; see
//! `docs/winograd.md#effective-gflops-and-the-fma-peak`).
//!
//! A forced Winograd algorithm (`--algorithm f23|f43|f63`) cannot run a stride-2 layer. Those
//! rows **fall back to direct** and are marked: `direct*` in the table, `"fallback": true` in
//! JSON, so one command still times the whole model.

use crate::args::{parse_batch, parse_input_size};
use crate::error::CliError;
use crate::source;
use crate::table::{Align, Table};
use clap::Args;
use reparam_tensor::rng::SplitMix64;
use reparam_tensor::{BlockedTensor, ConvSpec, Epilogue, Tensor};
use reparam_winograd::ConvError;
use reparam_winograd::{Algorithm, Conv2dPlan, ENV_ISA, Isa, Parallelism, PlanOptions};
use repvgg::stats::{InputSize, LayerStats, ModelStats};
use serde::Serialize;
use std::io::Write;
use std::time::{Duration, Instant};

/// fp32 FMA peak of one core of the development machine, in GFLOP/s, with AVX-512F (the default
/// of `--peak-gflops` is `--threads` × this).
///
/// Machine: the project's 2-vCPU KVM guest, `Intel(R) Xeon(R) Processor` (family 6 model 207,
/// Emerald Rapids), AVX-512F with two 512-bit FMA ports, ~2.35 GHz under load. Measured with
///
/// ```text
/// gcc -O2 -mavx512f -mfma -pthread benches/fma_peak.c -o /tmp/fma_peak && /tmp/fma_peak
/// ```
///
/// (12 independent FMA chains per thread, best of 5). Best runs on a quiet machine: 1 thread
/// 147–158 GFLOP/s with zmm (64 flop/cycle), 2 threads 288–300; with ymm (AVX2+FMA) half that,
/// 73–77 and 134–141, so an `avx2fma` row can reach at most ~50 % of this peak here. This is
/// *not* a 2-vCPU AMD Zen 4 VM (117 GFLOP/s per core, AVX2 = AVX-512 there). On any
/// other machine pass `--peak-gflops` with that machine's number.
pub const PEAK_GFLOPS_PER_CORE: f64 = 150.0;

/// Runs before the timed ones: at least one, and until this much time has passed.
const WARM_UP: Duration = Duration::from_millis(50);

/// Arguments of `reparam layers`.
#[derive(Debug, Args)]
#[command(
    after_help = "One row per distinct 3x3 conv layer of the deployed (re-parameterized) \
    model: conv + bias + ReLU on NCHW tensors, synthetic seeded weights and input. Identical \
    layers are timed once and counted. GFLOP/s is the direct-convolution count \
    2·Cout·(Cin/g)·9·Hout·Wout·N over the median time, whatever algorithm ran; % peak divides it \
    by --peak-gflops. A forced Winograd algorithm runs stride-2 layers with direct instead, marked \
    `direct*`. D2se's squeeze-excitation is not part of the timed conv.\n\n\
    Examples:\n  reparam layers --model a0 --threads 1\n  \
    reparam layers --model b0 --threads 2 --algorithm f43 --isa avx2\n  \
    reparam layers --model a0 --batch 8 --json"
)]
pub struct LayersArgs {
    /// Official model: A0, A1, A2, B0, B1, B1g2, B1g4, B2, B2g2, B2g4, B3, B3g2, B3g4, D2se
    /// (case-insensitive, `RepVGG-` prefix optional).
    #[arg(long, value_name = "NAME", default_value = "a0")]
    pub model: String,
    /// Threads: the size of the rayon pool every plan runs in.
    #[arg(long, value_name = "N", default_value = "1", value_parser = parse_threads)]
    pub threads: usize,
    /// Algorithm: auto (the kernel crate's measured thresholds), direct, f23, f43 or f63.
    #[arg(long, value_name = "ALG", default_value = "auto", value_parser = parse_algorithm)]
    pub algorithm: Algorithm,
    /// Instruction set: scalar, avx2, avx512 or neon [default: $REPARAM_ISA, else the best this
    /// CPU has]. Fails if the CPU lacks it.
    #[arg(long, value_name = "ISA", value_parser = parse_isa)]
    pub isa: Option<Isa>,
    /// Images per run.
    #[arg(long, value_name = "N", default_value = "1", value_parser = parse_batch)]
    pub batch: usize,
    /// Input size of the network, H or HxW.
    #[arg(long, value_name = "H[xW]", default_value = "224", value_parser = parse_input_size)]
    pub input_size: InputSize,
    /// Timed runs per layer (after a warm-up); the median is reported.
    #[arg(long, value_name = "R", default_value = "20", value_parser = parse_repeats)]
    pub repeats: usize,
    /// FMA peak for the `% peak` column, in GFLOP/s for all threads together [default: threads ×
    /// 150, the AVX-512 peak per core measured on the development machine].
    #[arg(long, value_name = "X", value_parser = parse_peak)]
    pub peak_gflops: Option<f64>,
    /// Seed of the synthetic weights and input.
    #[arg(long, value_name = "S", default_value_t = 0)]
    pub seed: u64,
    /// Tensor layout of the timed runs: `blocked` (NCHWc, how layers run inside a network: no
    /// layout conversion; the first layer reads the NCHW image and writes NCHWc) or `nchw` (the
    /// NCHW entry point, which converts the input to NCHWc and the output back on every run).
    #[arg(long, value_name = "LAYOUT", default_value = "blocked", value_parser = ["blocked", "nchw"])]
    pub layout: String,
    /// Print a JSON array of rows instead of the table.
    #[arg(long)]
    pub json: bool,
}

/// A thread count from 1 to 1024.
pub fn parse_threads(s: &str) -> Result<usize, String> {
    parse_count(s, "threads", 1024)
}

/// A repeat count from 1 to 100000.
pub fn parse_repeats(s: &str) -> Result<usize, String> {
    parse_count(s, "repeats", 100_000)
}

fn parse_count(s: &str, what: &str, max: usize) -> Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(n) if (1..=max).contains(&n) => Ok(n),
        Ok(n) => Err(format!("{what} must be between 1 and {max}, got {n}")),
        Err(_) => Err(format!("`{s}` is not a whole number")),
    }
}

/// `auto`, `direct`, `f23`, `f43`, `f63` (or `winograd-f43`).
pub fn parse_algorithm(s: &str) -> Result<Algorithm, String> {
    Algorithm::parse(s).map_err(|e| e.to_string())
}

/// `scalar`, `avx2`, `avx512`, `neon` (or `avx2fma`, `avx512f`). Availability is checked when the
/// command runs, so the error can list what this CPU has.
pub fn parse_isa(s: &str) -> Result<Isa, String> {
    Isa::parse(s).map_err(|_| format!("`{s}` is not an ISA; use scalar, avx2, avx512 or neon"))
}

/// A peak in GFLOP/s: finite and > 0.
pub fn parse_peak(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(x) if x.is_finite() && x > 0.0 => Ok(x),
        Ok(x) => Err(format!(
            "the peak must be a positive number of GFLOP/s, got {x}"
        )),
        Err(_) => Err(format!("`{s}` is not a number; e.g. 150")),
    }
}

/// A distinct conv layer of the model and how many blocks use it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DistinctLayer {
    /// Official name of the first block with this shape (`stage3.1`).
    pub first: String,
    /// The deployed 3x3 conv.
    pub spec: ConvSpec,
    /// Input `(height, width)`.
    pub input_hw: (usize, usize),
    /// Output `(height, width)`.
    pub output_hw: (usize, usize),
    /// Blocks of the model with exactly this conv and input size.
    pub count: usize,
    /// The model's first layer, which reads the NCHW image (in the blocked layout it is timed
    /// NCHW in, NCHWc out, as a network runs it).
    pub reads_image: bool,
}

/// The distinct conv layers of the deployed model, in order of first use.
pub fn distinct_layers(stats: &ModelStats) -> Vec<DistinctLayer> {
    let mut layers: Vec<DistinctLayer> = Vec::new();
    for (i, block) in stats.blocks.iter().enumerate() {
        let spec = spec_of(block);
        match layers
            .iter_mut()
            .find(|l| l.spec == spec && l.input_hw == block.input_hw)
        {
            Some(layer) => layer.count += 1,
            None => layers.push(DistinctLayer {
                first: block.name.clone(),
                spec,
                input_hw: block.input_hw,
                output_hw: block.output_hw,
                count: 1,
                reads_image: i == 0,
            }),
        }
    }
    layers
}

fn spec_of(block: &LayerStats) -> ConvSpec {
    ConvSpec::conv3x3(
        block.in_channels,
        block.out_channels,
        block.stride,
        block.groups,
    )
}

/// The geometry of a timed layer, shared by the rows of `reparam layers` and `reparam gpu
/// layers` (flattened into their JSON objects).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LayerShape {
    /// Official name of the first block with this shape.
    pub layer: String,
    /// Input channels.
    pub cin: usize,
    /// Output channels.
    pub cout: usize,
    /// Input height.
    pub h: usize,
    /// Input width.
    pub w: usize,
    /// Output height.
    pub out_h: usize,
    /// Output width.
    pub out_w: usize,
    /// Stride.
    pub stride: usize,
    /// Groups.
    pub groups: usize,
    /// Blocks of the model with this layer.
    pub count: usize,
    /// Images per run.
    pub batch: usize,
}

impl LayerShape {
    /// The shape of `layer` run on `batch` images.
    pub fn new(layer: &DistinctLayer, batch: usize) -> Self {
        let spec = &layer.spec;
        Self {
            layer: layer.first.clone(),
            cin: spec.in_channels,
            cout: spec.out_channels,
            h: layer.input_hw.0,
            w: layer.input_hw.1,
            out_h: layer.output_hw.0,
            out_w: layer.output_hw.1,
            stride: spec.stride,
            groups: spec.groups,
            count: layer.count,
            batch,
        }
    }

    /// `48->96 56x56 s2 g1`.
    pub fn label(&self) -> String {
        format!(
            "{}->{} {}x{} s{} g{}",
            self.cin, self.cout, self.h, self.w, self.stride, self.groups
        )
    }
}

/// One timed layer: a row of the table and an object of the JSON array.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    /// The layer and batch.
    #[serde(flatten)]
    pub geometry: LayerShape,
    /// Rayon pool size.
    pub threads: usize,
    /// `blocked` (NCHWc in and out) or `nchw` (with layout conversions).
    pub layout: &'static str,
    /// The algorithm asked for (`auto`, `direct`, `winograd-f43`, ...).
    pub requested: &'static str,
    /// The algorithm the plan ran (never `auto`).
    pub algorithm: &'static str,
    /// True when a forced Winograd algorithm could not run this layer and direct ran instead.
    pub fallback: bool,
    /// The plan's ISA.
    pub isa: &'static str,
    /// Direct-convolution flops of one run: `2·Cout·(Cin/g)·9·Hout·Wout·N`.
    pub flops: u64,
    /// Median wall-clock time of one run, in milliseconds.
    pub median_ms: f64,
    /// `flops / median`, in GFLOP/s.
    pub gflops: f64,
    /// `gflops` as a percentage of the peak.
    pub peak_pct: f64,
}

/// What every row shares.
#[derive(Debug, Clone, Copy)]
struct Setup {
    algorithm: Algorithm,
    isa: Isa,
    batch: usize,
    threads: usize,
    repeats: usize,
    peak_gflops: f64,
    seed: u64,
    blocked: bool,
}

/// Runs `reparam layers`.
pub fn layers(args: &LayersArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let config = source::official(&args.model)?;
    let stats = ModelStats::new(&config, args.input_size).map_err(|e| {
        CliError::new(format!("cannot size `{}`: {e}", config.name))
            .hint("use --input-size with sides between 1 and 1048576 pixels")
    })?;
    let isa = resolve_isa(args.isa)?;
    let setup = Setup {
        algorithm: args.algorithm,
        isa,
        batch: args.batch,
        threads: args.threads,
        repeats: args.repeats,
        peak_gflops: args
            .peak_gflops
            .unwrap_or(args.threads as f64 * PEAK_GFLOPS_PER_CORE),
        seed: args.seed,
        blocked: args.layout == "blocked",
    };
    let layers = distinct_layers(&stats);
    if !args.json {
        write_header(out, &config.name, args, &setup)?;
        out.flush()?;
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(args.threads)
        .build()
        .map_err(|e| {
            CliError::new(format!("cannot start {} threads: {e}", args.threads))
                .hint("use fewer --threads")
        })?;
    let rows = pool.install(|| {
        layers
            .iter()
            .enumerate()
            .map(|(i, layer)| time_layer(layer, &setup, setup.seed.wrapping_add(i as u64)))
            .collect::<Result<Vec<Row>, CliError>>()
    })?;
    if args.json {
        writeln!(out, "{}", to_json(&rows))?;
    } else {
        out.write_all(render(&rows, &setup).as_bytes())?;
    }
    Ok(())
}

/// The ISA every plan uses: `--isa`, else `REPARAM_ISA`, else the best available. A forced ISA
/// the CPU lacks is an error, never a silent fallback.
fn resolve_isa(forced: Option<Isa>) -> Result<Isa, CliError> {
    let available = || {
        Isa::available()
            .iter()
            .map(|i| i.name())
            .collect::<Vec<_>>()
            .join(", ")
    };
    match forced {
        Some(isa) => isa.require().map_err(|_| {
            CliError::new(format!("--isa {isa}: this CPU does not support {isa}"))
                .hint(format!("this CPU has: {}; pick one of those", available()))
        }),
        None => Isa::from_env().map_err(|e| {
            CliError::new(e.to_string()).hint(format!(
                "unset {ENV_ISA}, or set it to one this CPU has: {}",
                available()
            ))
        }),
    }
}

/// Builds the plan for `layer`, warms it up, times `setup.repeats` runs and returns the row.
fn time_layer(layer: &DistinctLayer, setup: &Setup, seed: u64) -> Result<Row, CliError> {
    let spec = layer.spec;
    let (weight, epilogue) = synthetic_weights(&spec, seed)?;
    let options = |algorithm| PlanOptions {
        algorithm,
        isa: Some(setup.isa),
        parallelism: Parallelism::Rayon,
        input_hw: Some(layer.input_hw),
        autotune: false,
    };
    let (plan, fallback) =
        match Conv2dPlan::new(spec, &weight, &epilogue, &options(setup.algorithm)) {
            Ok(plan) => (plan, false),
            Err(ConvError::UnsupportedAlgorithm { .. })
                if !matches!(setup.algorithm, Algorithm::Auto | Algorithm::Direct) =>
            {
                let plan = Conv2dPlan::new(spec, &weight, &epilogue, &options(Algorithm::Direct))
                    .map_err(|e| plan_error(&layer.first, &e))?;
                (plan, true)
            }
            Err(e) => return Err(plan_error(&layer.first, &e)),
        };

    let (h, w) = layer.input_hw;
    let shape = [setup.batch, spec.in_channels, h, w];
    let mut rng = SplitMix64::new(seed ^ 0x1A9E_5EED);
    let input = Tensor::new(shape, rng.uniform_vec(shape.iter().product(), -1.0, 1.0))
        .map_err(|e| internal(&layer.first, &e))?;
    let out_shape = plan
        .output_shape(shape)
        .map_err(|e| plan_error(&layer.first, &e))?;
    let mut output = Tensor::zeros(out_shape).map_err(|e| internal(&layer.first, &e))?;
    let block = plan.block();
    let blocked_input =
        BlockedTensor::from_nchw(&input, block).map_err(|e| internal(&layer.first, &e))?;
    let mut blocked_output =
        BlockedTensor::zeros(out_shape, block).map_err(|e| internal(&layer.first, &e))?;

    let mut run = || {
        if setup.blocked && layer.reads_image {
            plan.run_nchw_to_blocked(&input, &mut blocked_output)
        } else if setup.blocked {
            plan.run_blocked(&blocked_input, &mut blocked_output)
        } else {
            plan.run(&input, &mut output)
        }
        .map_err(|e| plan_error(&layer.first, &e))
    };
    let start = Instant::now();
    run()?;
    while start.elapsed() < WARM_UP {
        run()?;
    }
    let mut times = Vec::with_capacity(setup.repeats);
    for _ in 0..setup.repeats {
        let start = Instant::now();
        run()?;
        times.push(start.elapsed().as_secs_f64());
    }
    if setup.blocked {
        output = blocked_output.to_nchw();
    }
    if let Some(i) = output.first_non_finite() {
        return Err(CliError::new(format!(
            "layer {}: the {} kernel wrote a non-finite value at output index {i}",
            layer.first,
            plan.algorithm()
        ))
        .hint("this is a bug in the kernels; please report the command"));
    }

    let median = median(&mut times);
    let macs = spec.macs(h, w).map_err(|e| internal(&layer.first, &e))?;
    let flops = macs.checked_mul(2 * setup.batch as u64).ok_or_else(|| {
        CliError::new(format!(
            "layer {}: the flop count overflows 64 bits",
            layer.first
        ))
        .hint("use a smaller --input-size or --batch")
    })?;
    let gflops = flops as f64 / median / 1e9;
    Ok(Row {
        geometry: LayerShape::new(layer, setup.batch),
        threads: setup.threads,
        layout: if setup.blocked { "blocked" } else { "nchw" },
        requested: setup.algorithm.name(),
        algorithm: plan.algorithm().name(),
        fallback,
        isa: plan.isa().name(),
        flops,
        median_ms: median * 1e3,
        gflops,
        peak_pct: 100.0 * gflops / setup.peak_gflops,
    })
}

/// Seeded weights `[Cout, Cin/g, 3, 3]`, uniform in ±3/√(Cin/g·9) so outputs stay O(1), and a
/// bias uniform in ±0.1: real non-zero values, so no kernel can shortcut on the data.
pub(crate) fn synthetic_weights(
    spec: &ConvSpec,
    seed: u64,
) -> Result<(Tensor, Epilogue), CliError> {
    let mut rng = SplitMix64::new(seed);
    let a = 3.0 / (spec.reduction_len() as f32).sqrt();
    let shape = spec.weight_shape();
    let weight = Tensor::new(shape, rng.uniform_vec(shape.iter().product(), -a, a))
        .map_err(|e| internal("weights", &e))?;
    let bias = rng.uniform_vec(spec.out_channels, -0.1, 0.1);
    Ok((weight, Epilogue::bias_relu(bias)))
}

/// The median of `times` (the mean of the two middle values for an even count); sorts in place.
pub fn median(times: &mut [f64]) -> f64 {
    times.sort_by(f64::total_cmp);
    let n = times.len();
    match n {
        0 => f64::NAN,
        _ if !n.is_multiple_of(2) => times[n / 2],
        _ => (times[n / 2 - 1] + times[n / 2]) / 2.0,
    }
}

fn plan_error(layer: &str, e: &ConvError) -> CliError {
    let hint = match e {
        ConvError::IsaUnavailable { .. } | ConvError::UnknownIsa { .. } => {
            "pick an ISA this CPU has with --isa, or unset REPARAM_ISA"
        }
        _ => {
            "the layer comes from an official configuration, so this is a bug; please report \
              the command"
        }
    };
    CliError::new(format!("layer {layer}: {e}")).hint(hint)
}

/// An error that cannot happen for official shapes, reported as a bug.
pub(crate) fn internal(what: &str, e: &dyn std::fmt::Display) -> CliError {
    CliError::new(format!("{what}: {e}"))
        .hint("the shapes come from an official configuration, so this is a bug; please report it")
}

fn write_header(
    out: &mut dyn Write,
    model: &str,
    args: &LayersArgs,
    setup: &Setup,
) -> Result<(), CliError> {
    let (h, w) = (args.input_size.height, args.input_size.width);
    let algorithm = match setup.algorithm {
        Algorithm::Auto => "auto (reparam_winograd::auto thresholds at each layer's size)",
        a => a.name(),
    };
    let threads = match setup.threads {
        1 => "1 thread".to_string(),
        t => format!("{t} threads"),
    };
    let peak = match args.peak_gflops {
        Some(p) => format!("{p} GFLOP/s (--peak-gflops)"),
        None => format!(
            "{} GFLOP/s = {threads} x {PEAK_GFLOPS_PER_CORE} (AVX-512 FMA peak per core of the \
             development machine; --peak-gflops overrides)",
            setup.peak_gflops
        ),
    };
    writeln!(
        out,
        "model:     {model}, deployed (one 3x3 conv + bias + ReLU per block)"
    )?;
    writeln!(
        out,
        "input:     [{}, 3, {h}, {w}], synthetic weights and input (seed {})",
        setup.batch, setup.seed
    )?;
    writeln!(
        out,
        "kernels:   reparam-winograd, ISA {}, algorithm {algorithm}, {threads} (rayon pool)",
        setup.isa
    )?;
    writeln!(
        out,
        "timing:    median of {} runs after a warm-up, {} layout; GFLOP/s = 2·Cout·(Cin/g)·9·Hout·Wout·N / median",
        setup.repeats,
        if setup.blocked {
            "blocked NCHWc (no conversions, as inside a network: the first layer reads the NCHW image and writes NCHWc, the others NCHWc in and out)"
        } else {
            "NCHW (input and output converted every run)"
        }
    )?;
    writeln!(out, "peak:      {peak}")?;
    writeln!(out)?;
    Ok(())
}

/// The table, the model total and the fallback note.
fn render(rows: &[Row], setup: &Setup) -> String {
    let mut table = Table::new(&[
        ("layer", Align::Left),
        ("shape", Align::Left),
        ("count", Align::Right),
        ("algorithm", Align::Left),
        ("isa", Align::Left),
        ("median ms", Align::Right),
        ("GFLOP/s", Align::Right),
        ("% peak", Align::Right),
    ]);
    for row in rows {
        let algorithm = if row.fallback {
            format!("{}*", row.algorithm)
        } else {
            row.algorithm.to_string()
        };
        table.row(vec![
            row.geometry.layer.clone(),
            row.geometry.label(),
            row.geometry.count.to_string(),
            algorithm,
            row.isa.to_string(),
            format!("{:.3}", row.median_ms),
            format!("{:.1}", row.gflops),
            format!("{:.0}", row.peak_pct),
        ]);
    }
    let total_ms: f64 = rows
        .iter()
        .map(|r| r.geometry.count as f64 * r.median_ms)
        .sum();
    let total_flops: u64 = rows.iter().map(|r| r.geometry.count as u64 * r.flops).sum();
    let total_gflops = total_flops as f64 / (total_ms / 1e3) / 1e9;
    let blocks: usize = rows.iter().map(|r| r.geometry.count).sum();
    table.rule();
    table.row(vec![
        "total".into(),
        String::new(),
        blocks.to_string(),
        String::new(),
        String::new(),
        format!("{total_ms:.3}"),
        format!("{total_gflops:.1}"),
        format!("{:.0}", 100.0 * total_gflops / setup.peak_gflops),
    ]);
    let mut out = table.render();
    out.push_str(
        "\ntotal: sum over rows of count x median: the convs of one forward pass (no head, no \
         layout changes between layers)\n",
    );
    if rows.iter().any(|r| r.fallback) {
        out.push_str(&format!(
            "*: {} needs stride 1; these stride-2 layers ran direct instead\n",
            setup.algorithm
        ));
    }
    out
}

/// The rows as a pretty-printed JSON array.
pub fn to_json(rows: &[Row]) -> String {
    serde_json::to_string_pretty(rows).expect("rows serialize: plain numbers and strings")
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use repvgg::Config;

    #[derive(Debug, Parser)]
    struct Wrapper {
        #[command(flatten)]
        layers: LayersArgs,
    }

    fn parse(args: &[&str]) -> Result<LayersArgs, clap::Error> {
        Wrapper::try_parse_from(["layers"].iter().chain(args)).map(|w| w.layers)
    }

    fn run_json(args: &[&str]) -> serde_json::Value {
        let mut out = Vec::new();
        layers(&parse(args).unwrap(), &mut out).unwrap();
        serde_json::from_slice(&out).unwrap()
    }

    #[test]
    fn defaults() {
        let a = parse(&[]).unwrap();
        assert_eq!(a.model, "a0");
        assert_eq!((a.threads, a.batch, a.repeats, a.seed), (1, 1, 20, 0));
        assert_eq!(a.algorithm, Algorithm::Auto);
        assert_eq!((a.isa, a.peak_gflops, a.json), (None, None, false));
        assert_eq!(a.input_size, InputSize::square(224));
    }

    #[test]
    fn arguments_parse_and_validate() {
        let a = parse(&[
            "--model",
            "b0",
            "--threads",
            "2",
            "--algorithm",
            "f43",
            "--isa",
            "avx2",
            "--batch",
            "8",
            "--input-size",
            "32x48",
            "--repeats",
            "3",
            "--peak-gflops",
            "117.5",
            "--json",
        ])
        .unwrap();
        assert_eq!((a.model.as_str(), a.threads, a.batch), ("b0", 2, 8));
        assert_eq!(
            (a.algorithm, a.isa),
            (Algorithm::WinogradF43, Some(Isa::Avx2Fma))
        );
        assert_eq!((a.repeats, a.peak_gflops, a.json), (3, Some(117.5), true));
        assert_eq!(
            parse(&["--algorithm", "winograd-f63"]).unwrap().algorithm,
            Algorithm::WinogradF63
        );
        assert_eq!(parse(&["--isa", "AVX512"]).unwrap().isa, Some(Isa::Avx512f));
        for bad in [
            &["--threads", "0"][..],
            &["--threads", "1025"],
            &["--threads", "two"],
            &["--repeats", "0"],
            &["--algorithm", "f99"],
            &["--algorithm", "winograd"],
            &["--isa", "sse4"],
            &["--batch", "0"],
            &["--input-size", "0"],
            &["--peak-gflops", "0"],
            &["--peak-gflops", "-3"],
            &["--peak-gflops", "inf"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
        let e = parse(&["--algorithm", "f99"]).unwrap_err().to_string();
        assert!(e.contains("use auto, direct, f23, f43 or f63"), "{e}");
        let e = parse(&["--isa", "sse4"]).unwrap_err().to_string();
        assert!(e.contains("use scalar, avx2, avx512 or neon"), "{e}");
    }

    #[test]
    fn a0_layers_are_grouped_and_counted() {
        let stats =
            ModelStats::new(&Config::official("a0").unwrap(), InputSize::default()).unwrap();
        let layers = distinct_layers(&stats);
        let summary: Vec<(&str, usize, usize, usize, usize, usize)> = layers
            .iter()
            .map(|l| {
                let s = &l.spec;
                (
                    l.first.as_str(),
                    s.in_channels,
                    s.out_channels,
                    l.input_hw.0,
                    s.stride,
                    l.count,
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                ("stage0", 3, 48, 224, 2, 1),
                ("stage1.0", 48, 48, 112, 2, 1),
                ("stage1.1", 48, 48, 56, 1, 1),
                ("stage2.0", 48, 96, 56, 2, 1),
                ("stage2.1", 96, 96, 28, 1, 3),
                ("stage3.0", 96, 192, 28, 2, 1),
                ("stage3.1", 192, 192, 14, 1, 13),
                ("stage4.0", 192, 1280, 14, 2, 1),
            ]
        );
        assert_eq!(
            layers.iter().map(|l| l.count).sum::<usize>(),
            stats.blocks.len()
        );
        assert_eq!(layers[6].output_hw, (14, 14));
        assert_eq!(layers[7].output_hw, (7, 7));
    }

    #[test]
    fn grouped_convs_are_distinct_layers() {
        // B1g2 alternates groups 1 and 2 inside a stage: same channels and size, different convs.
        let stats =
            ModelStats::new(&Config::official("b1g2").unwrap(), InputSize::default()).unwrap();
        let layers = distinct_layers(&stats);
        let stage3: Vec<(usize, usize)> = layers
            .iter()
            .filter(|l| l.first.starts_with("stage3.") && l.spec.stride == 1)
            .map(|l| (l.spec.groups, l.count))
            .collect();
        assert_eq!(stage3.len(), 2, "{stage3:?}");
        assert_eq!(stage3.iter().map(|&(_, c)| c).sum::<usize>(), 15);
    }

    #[test]
    fn medians() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(median(&mut [7.0]), 7.0);
        assert!(median(&mut []).is_nan());
    }

    #[test]
    fn json_rows_have_every_key() {
        let rows = run_json(&[
            "--model",
            "a0",
            "--input-size",
            "16",
            "--repeats",
            "1",
            "--isa",
            "scalar",
            "--json",
        ]);
        let rows = rows.as_array().expect("a JSON array");
        assert_eq!(rows.len(), 8);
        for row in rows {
            for key in [
                "layer",
                "cin",
                "cout",
                "h",
                "w",
                "out_h",
                "out_w",
                "stride",
                "groups",
                "count",
                "batch",
                "threads",
                "requested",
                "algorithm",
                "fallback",
                "isa",
                "flops",
                "median_ms",
                "gflops",
                "peak_pct",
            ] {
                assert!(row.get(key).is_some(), "missing `{key}` in {row}");
            }
            assert_eq!(row["isa"], "scalar");
            assert_eq!(row["threads"], 1);
            assert_eq!(row["requested"], "auto");
            assert_eq!(row["fallback"], false);
            assert!(row["median_ms"].as_f64().unwrap() > 0.0, "{row}");
            assert!(row["gflops"].as_f64().unwrap() > 0.0, "{row}");
        }
        assert_eq!(rows[0]["layer"], "stage0");
        assert_eq!(
            (rows[0]["h"].as_u64(), rows[0]["out_h"].as_u64()),
            (Some(16), Some(8))
        );
        // stem: 2·48·3·9·8·8 flops.
        assert_eq!(rows[0]["flops"], 2 * 48 * 3 * 9 * 8 * 8);
        assert_eq!(rows[6]["count"], 13);
    }

    #[test]
    fn forced_winograd_falls_back_to_direct_on_stride_2() {
        let rows = run_json(&[
            "--input-size",
            "16",
            "--repeats",
            "1",
            "--isa",
            "scalar",
            "--algorithm",
            "f43",
            "--batch",
            "2",
            "--json",
        ]);
        for row in rows.as_array().unwrap() {
            let stride2 = row["stride"] == 2;
            assert_eq!(row["fallback"], stride2, "{row}");
            let expected = if stride2 { "direct" } else { "winograd-f43" };
            assert_eq!(row["algorithm"], expected, "{row}");
            assert_eq!(row["requested"], "winograd-f43");
            assert_eq!(row["batch"], 2);
        }
    }

    #[test]
    fn table_marks_fallbacks_and_sums_the_model() {
        let mut out = Vec::new();
        let args = parse(&[
            "--input-size",
            "16",
            "--repeats",
            "1",
            "--isa",
            "scalar",
            "--algorithm",
            "f23",
            "--peak-gflops",
            "10",
        ])
        .unwrap();
        layers(&args, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("model:     RepVGG-A0, deployed"), "{text}");
        assert!(
            text.contains("peak:      10 GFLOP/s (--peak-gflops)"),
            "{text}"
        );
        let stem = text.lines().find(|l| l.starts_with("stage0 ")).unwrap();
        assert!(stem.contains("3->48 16x16 s2 g1"), "{stem}");
        assert!(stem.contains("direct*"), "{stem}");
        let s31 = text.lines().find(|l| l.starts_with("stage3.1 ")).unwrap();
        assert!(s31.contains(" 13 "), "{s31}");
        assert!(s31.contains("winograd-f23 "), "{s31}");
        let total = text.lines().find(|l| l.starts_with("total ")).unwrap();
        assert_eq!(total.split_whitespace().nth(1), Some("22"), "{total}");
        assert!(text.contains("*: winograd-f23 needs stride 1"), "{text}");
    }

    #[test]
    fn unknown_model_and_unavailable_isa_are_errors() {
        let e = layers(&parse(&["--model", "vgg16"]).unwrap(), &mut Vec::new()).unwrap_err();
        assert!(e.to_string().contains("unknown model `vgg16`"), "{e}");
        let missing = Isa::ALL.into_iter().find(|i| !i.is_available());
        if let Some(isa) = missing {
            let args = parse(&["--isa", isa.name(), "--input-size", "8"]).unwrap();
            let e = layers(&args, &mut Vec::new()).unwrap_err().to_string();
            assert!(e.contains("this CPU does not support"), "{e}");
            assert!(e.contains("hint: this CPU has: "), "{e}");
            assert!(e.contains("scalar"), "{e}");
        }
    }
}
