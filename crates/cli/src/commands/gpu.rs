//! `reparam gpu`: the GPU path (`reparam-wgsl`) from the command line.
//!
//! - `reparam gpu info [--json]`: the adapter a [`GpuContext`] picks (the environment variables
//!   `REPARAM_GPU_ADAPTER` and `REPARAM_GPU_BACKEND` steer it) and what it offers.
//! - `reparam gpu layers`: time every distinct conv layer of a deployed model with the WGSL
//!   kernels, the GPU counterpart of `reparam layers` (same layer grouping via
//!   [`distinct_layers`], same GFLOP/s convention, same JSON style).
//!
//! Times are device times from timestamp queries when the adapter has them (`"timing":
//! "timestamps"`), else host wall times of each submission (`"timing": "wall"`); the wall time
//! of each run (encode, submit, wait) is reported next to it either way.
//!
//! A forced Winograd kernel (`--kernel winograd-f23` or `winograd-f43`) cannot run a stride-2
//! layer. Those rows **fall back to direct** and are marked `direct*` (`"fallback": true`), as
//! in `reparam layers`. With `--kernel all` each layer is timed with every kernel that supports
//! it, and the whole-network total of a Winograd kernel counts its stride-2 layers with direct's
//! time (marked `winograd-f23*`, `winograd-f43*`).

use crate::args::{parse_batch, parse_input_size};
use crate::commands::layers::{
    DistinctLayer, LayerShape, distinct_layers, internal, median, parse_repeats, synthetic_weights,
};
use crate::error::CliError;
use crate::source;
use crate::table::{Align, Table};
use clap::{Args, Subcommand};
use reparam_tensor::rng::SplitMix64;
use reparam_tensor::{ConvSpec, Tensor};
use reparam_wgsl::tensor::channel_stride;
use reparam_wgsl::{
    AdapterSummary, GpuContext, GpuContextOptions, GpuConv2dPlan, GpuConvOptions, GpuError,
    GpuKernel, GpuTensor,
};
use repvgg::stats::{InputSize, ModelStats};
use serde::Serialize;
use std::io::Write;

/// Arguments of `reparam gpu`.
#[derive(Debug, Args)]
pub struct GpuArgs {
    /// What to do on the GPU.
    #[command(subcommand)]
    pub command: GpuCommand,
}

/// The subcommands of `reparam gpu`.
#[derive(Debug, Subcommand)]
pub enum GpuCommand {
    /// Print the adapter the GPU context uses: name, backend, driver, timestamps, limits.
    Info(GpuInfoArgs),
    /// Time every distinct conv layer of a model with the WGSL kernels: median device ms, wall
    /// ms and GFLOP/s per layer and kernel.
    Layers(GpuLayersArgs),
}

/// Arguments of `reparam gpu info`.
#[derive(Debug, Args)]
#[command(
    after_help = "Environment: REPARAM_GPU_ADAPTER=<text> picks the first adapter whose \
    name contains the text; REPARAM_GPU_BACKEND=vulkan (the only backend of this build).\n\n\
    Examples:\n  reparam gpu info\n  reparam gpu info --json"
)]
pub struct GpuInfoArgs {
    /// Print a JSON object instead of the text.
    #[arg(long)]
    pub json: bool,
}

/// Which kernels `reparam gpu layers` times.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KernelChoice {
    /// One kernel (or `auto`) for every layer.
    One(GpuKernel),
    /// Every concrete kernel that supports each layer.
    All,
}

/// Arguments of `reparam gpu layers`.
#[derive(Debug, Args)]
#[command(
    after_help = "One row per distinct 3x3 conv layer of the deployed (re-parameterized) model \
    and kernel: conv + bias + ReLU, synthetic seeded weights and input, tensors in the GPU layout \
    (NHWC, channels padded to 4). Identical layers are timed once and counted. Each row is the \
    median of --repeats runs (one submission each) after one warm-up run: device time from \
    timestamp queries where the adapter has them (`timing: timestamps`), else wall time \
    (`timing: wall`). GFLOP/s is the direct-convolution count 2·Cout·(Cin/g)·9·Hout·Wout·N over \
    that median, whatever kernel ran. `whole network convs` sums count x median per kernel \
    choice. A forced winograd-f23 or winograd-f43 runs stride-2 layers with direct instead, marked \
    `direct*`.\n\n\
    Examples:\n  reparam gpu layers --model a0 --kernel gemm\n  \
    reparam gpu layers --model b0 --batch 32 --kernel all\n  \
    reparam gpu layers --model a0 --autotune --json"
)]
pub struct GpuLayersArgs {
    /// Official model: A0, A1, A2, B0, B1, B1g2, B1g4, B2, B2g2, B2g4, B3, B3g2, B3g4, D2se
    /// (case-insensitive, `RepVGG-` prefix optional).
    #[arg(long, value_name = "NAME", default_value = "a0")]
    pub model: String,
    /// Images per run.
    #[arg(long, value_name = "N", default_value = "1", value_parser = parse_batch)]
    pub batch: usize,
    /// Kernel: auto (the crate's static choice per layer, or measured with --autotune), naive,
    /// direct, gemm, gemm-wide, winograd-f23, winograd-f43, or all (every kernel that supports
    /// each layer).
    #[arg(long, value_name = "KERNEL", default_value = "auto", value_parser = parse_kernel_choice)]
    pub kernel: KernelChoice,
    /// With --kernel auto: time every candidate kernel on the layer's real input shape when the
    /// plan is built and keep the fastest.
    #[arg(long)]
    pub autotune: bool,
    /// Timed runs per layer and kernel (after one warm-up run); the median is reported.
    #[arg(long, value_name = "R", default_value = "20", value_parser = parse_repeats)]
    pub repeats: usize,
    /// Input size of the network, H or HxW.
    #[arg(long, value_name = "H[xW]", default_value = "224", value_parser = parse_input_size)]
    pub input_size: InputSize,
    /// Seed of the synthetic weights and input.
    #[arg(long, value_name = "S", default_value_t = 0)]
    pub seed: u64,
    /// Print a JSON array of rows instead of the table.
    #[arg(long)]
    pub json: bool,
}

/// `auto`, `naive`, `direct`, `gemm`, `gemm-wide`, `winograd-f23`, `winograd-f43`
/// (case-insensitive) or `all`.
pub fn parse_kernel_choice(s: &str) -> Result<KernelChoice, String> {
    let name = s.trim().to_ascii_lowercase();
    if name == "all" {
        return Ok(KernelChoice::All);
    }
    GpuKernel::parse(&name).map(KernelChoice::One).map_err(|_| {
        format!("`{s}` is not a GPU kernel; use auto, naive, direct, gemm, gemm-wide, winograd-f23, winograd-f43 or all")
    })
}

/// Runs `reparam gpu`.
pub fn gpu(args: &GpuArgs, out: &mut dyn Write) -> Result<(), CliError> {
    match &args.command {
        GpuCommand::Info(args) => info(args, out),
        GpuCommand::Layers(args) => layers(args, out),
    }
}

/// A GPU context per the environment, or an error that says what to do.
fn context() -> Result<GpuContext, CliError> {
    pollster::block_on(GpuContext::new(&GpuContextOptions::from_env()))
        .map_err(|e| CliError::from_gpu("cannot start the GPU", &e))
}

/// `AdapterSummary` as a JSON object (the same field names).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AdapterJson {
    /// Adapter name.
    pub name: String,
    /// Backend (`Vulkan`).
    pub backend: String,
    /// `DiscreteGpu`, `IntegratedGpu`, `Cpu` (software), ...
    pub device_type: String,
    /// Driver name and version.
    pub driver: String,
    /// Timestamp queries at pass boundaries.
    pub timestamps: bool,
    /// Timestamp queries inside passes too.
    pub timestamps_inside_passes: bool,
    /// `SHADER_F16` is available.
    pub shader_f16: bool,
    /// Subgroup size range `[min, max]`, or `null` without subgroups.
    pub subgroups: Option<[u32; 2]>,
    /// `max_storage_buffer_binding_size`, bytes.
    pub max_storage_binding: u64,
    /// `max_buffer_size`, bytes.
    pub max_buffer: u64,
    /// `max_compute_workgroup_storage_size`, bytes.
    pub max_workgroup_storage: u32,
}

impl From<&AdapterSummary> for AdapterJson {
    fn from(s: &AdapterSummary) -> Self {
        Self {
            name: s.name.clone(),
            backend: s.backend.clone(),
            device_type: s.device_type.clone(),
            driver: s.driver.clone(),
            timestamps: s.timestamps,
            timestamps_inside_passes: s.timestamps_inside_passes,
            shader_f16: s.shader_f16,
            subgroups: s.subgroups.map(|(lo, hi)| [lo, hi]),
            max_storage_binding: s.max_storage_binding,
            max_buffer: s.max_buffer,
            max_workgroup_storage: s.max_workgroup_storage,
        }
    }
}

/// `AdapterSummary::device_type` of a software rasterizer (lavapipe, llvmpipe).
const SOFTWARE_DEVICE_TYPE: &str = "Cpu";

/// Runs `reparam gpu info`.
pub fn info(args: &GpuInfoArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let ctx = context()?;
    let summary = ctx.summary();
    if args.json {
        let json = serde_json::to_string_pretty(&AdapterJson::from(summary))
            .expect("the summary serializes: plain numbers and strings");
        writeln!(out, "{json}")?;
    } else {
        writeln!(out, "{summary}")?;
        if summary.device_type == SOFTWARE_DEVICE_TYPE {
            writeln!(
                out,
                "note:         a software adapter (runs on the CPU); its timings say nothing \
                 about a GPU"
            )?;
        }
    }
    Ok(())
}

/// One timed layer and kernel: a row of the table and an object of the JSON array.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    /// The layer and batch.
    #[serde(flatten)]
    pub geometry: LayerShape,
    /// The kernel asked for (`auto`, `gemm`, ...; with `--kernel all`, the kernel of the row).
    pub requested: &'static str,
    /// The kernel the plan ran (never `auto`).
    pub kernel: &'static str,
    /// True when a forced Winograd kernel could not run this layer and direct ran instead.
    pub fallback: bool,
    /// With `--autotune`: each candidate kernel and its median ms at plan time.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tuning: Vec<Candidate>,
    /// Direct-convolution flops of one run: `2·Cout·(Cin/g)·9·Hout·Wout·N`.
    pub flops: u64,
    /// Median time of one run in ms: device time (`timing: timestamps`) or wall time.
    pub median_ms: f64,
    /// Median host wall time of one run (encode, submit, wait), in ms.
    pub wall_ms: f64,
    /// `flops / median_ms`, in GFLOP/s.
    pub gflops: f64,
    /// `timestamps` (device time) or `wall` (the adapter has no timestamp queries).
    pub timing: &'static str,
    /// Adapter name.
    pub adapter: String,
}

/// One autotuning candidate.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Candidate {
    /// Kernel name.
    pub kernel: &'static str,
    /// Its median time when the plan was built, in ms.
    pub ms: f64,
}

impl Row {
    /// The kernel cell of the table: `gemm`, `direct*` (fallback), `auto: gemm`.
    fn kernel_cell(&self) -> String {
        if self.fallback {
            format!("{}*", self.kernel)
        } else if self.requested != self.kernel {
            format!("{}: {}", self.requested, self.kernel)
        } else {
            self.kernel.to_string()
        }
    }
}

/// One "whole network convs" line: Σ count·median over the layers for one kernel choice.
#[derive(Debug, Clone, PartialEq)]
pub struct Total {
    /// The kernel choice (`gemm`, `auto`, ...).
    pub requested: &'static str,
    /// Blocks summed over.
    pub blocks: usize,
    /// Σ count·median_ms.
    pub median_ms: f64,
    /// Σ count·wall_ms.
    pub wall_ms: f64,
    /// Σ count·flops / Σ count·median, in GFLOP/s.
    pub gflops: f64,
    /// True when some layers used direct's time because the choice cannot run them.
    pub borrowed: bool,
}

/// What every row shares.
#[derive(Debug, Clone, Copy)]
struct Setup {
    batch: usize,
    repeats: usize,
    seed: u64,
    autotune: bool,
}

/// Runs `reparam gpu layers` on a new context.
pub fn layers(args: &GpuLayersArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let (config, layers) = model_layers(args)?;
    let ctx = context()?;
    layers_on(&ctx, &config.name, &layers, args, out)
}

/// The model and its distinct layers, or a usage error.
fn model_layers(args: &GpuLayersArgs) -> Result<(repvgg::Config, Vec<DistinctLayer>), CliError> {
    let config = source::official(&args.model)?;
    if args.autotune && args.kernel != KernelChoice::One(GpuKernel::Auto) {
        return Err(
            CliError::new("--autotune chooses the kernel, so it needs --kernel auto")
                .hint("drop --kernel, or drop --autotune to time the kernels you named"),
        );
    }
    let stats = ModelStats::new(&config, args.input_size).map_err(|e| {
        CliError::new(format!("cannot size `{}`: {e}", config.name))
            .hint("use --input-size with sides between 1 and 1048576 pixels")
    })?;
    let layers = distinct_layers(&stats);
    Ok((config, layers))
}

/// Times `layers` on `ctx` and writes the table or JSON.
fn layers_on(
    ctx: &GpuContext,
    model: &str,
    layers: &[DistinctLayer],
    args: &GpuLayersArgs,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let setup = Setup {
        batch: args.batch,
        repeats: args.repeats,
        seed: args.seed,
        autotune: args.autotune,
    };
    if !args.json {
        write_header(out, model, ctx.summary(), args)?;
        out.flush()?;
    }
    let mut rows = Vec::new();
    for (i, layer) in layers.iter().enumerate() {
        let seed = setup.seed.wrapping_add(i as u64);
        for (requested, kernel) in kernels_for(args.kernel, &layer.spec) {
            rows.push(time_layer(ctx, layer, requested, kernel, &setup, seed)?);
        }
    }
    if args.json {
        let json =
            serde_json::to_string_pretty(&rows).expect("rows serialize: plain numbers and strings");
        writeln!(out, "{json}")?;
    } else {
        let totals = totals(&rows, &choices(args.kernel));
        out.write_all(render(&rows, &totals).as_bytes())?;
    }
    Ok(())
}

/// `(requested, kernel to run)` for one layer: the chosen kernel (direct when a forced kernel
/// cannot run the layer), or every concrete kernel that supports it.
fn kernels_for(choice: KernelChoice, spec: &ConvSpec) -> Vec<(GpuKernel, GpuKernel)> {
    match choice {
        KernelChoice::One(GpuKernel::Auto) => vec![(GpuKernel::Auto, GpuKernel::Auto)],
        KernelChoice::One(k) if k.supports(spec) => vec![(k, k)],
        KernelChoice::One(k) => vec![(k, GpuKernel::Direct)],
        KernelChoice::All => GpuKernel::CONCRETE
            .into_iter()
            .filter(|k| k.supports(spec))
            .map(|k| (k, k))
            .collect(),
    }
}

/// The kernel choices that get a total row.
fn choices(choice: KernelChoice) -> Vec<&'static str> {
    match choice {
        KernelChoice::One(k) => vec![k.name()],
        KernelChoice::All => GpuKernel::CONCRETE.iter().map(|k| k.name()).collect(),
    }
}

/// Builds the plan, warms it up once, times `setup.repeats` runs and returns the row.
fn time_layer(
    ctx: &GpuContext,
    layer: &DistinctLayer,
    requested: GpuKernel,
    kernel: GpuKernel,
    setup: &Setup,
    seed: u64,
) -> Result<Row, CliError> {
    let spec = layer.spec;
    let (h, w) = layer.input_hw;
    let shape = [setup.batch, spec.in_channels, h, w];
    let what = format!("layer {} ({})", layer.first, kernel.name());
    let gpu_err = |e: GpuError| CliError::from_gpu(&what, &e);
    let (weight, epilogue) = synthetic_weights(&spec, seed).map_err(|e| internal(&what, &e))?;
    let options = GpuConvOptions {
        kernel: Some(kernel),
        autotune: (setup.autotune && kernel == GpuKernel::Auto).then_some(shape),
    };
    let plan = GpuConv2dPlan::new(ctx, &spec, &weight, &epilogue, &options).map_err(gpu_err)?;
    // Refuse an input the device cannot hold before generating it on the host.
    let input_bytes = [setup.batch, h, w, channel_stride(spec.in_channels), 4]
        .iter()
        .try_fold(1u64, |acc, &d| acc.checked_mul(d as u64))
        .unwrap_or(u64::MAX);
    let max = ctx.summary().max_buffer;
    if input_bytes > max {
        return Err(gpu_err(GpuError::TooLarge {
            operand: "input",
            needed: input_bytes,
            max,
        }));
    }
    let mut rng = SplitMix64::new(seed ^ 0x1A9E_5EED);
    let input = Tensor::new(shape, rng.uniform_vec(shape.iter().product(), -1.0, 1.0))
        .map_err(|e| internal(&what, &e))?;
    let out_shape = spec.output_shape(shape).map_err(|e| internal(&what, &e))?;
    let x = GpuTensor::upload(ctx, &input).map_err(gpu_err)?;
    let y = GpuTensor::zeros(ctx, out_shape).map_err(gpu_err)?;
    let op = plan.bind(ctx, &x, &y).map_err(gpu_err)?;

    ctx.run(&[&op]).map_err(gpu_err)?;
    let mut device = Vec::with_capacity(setup.repeats);
    let mut wall = Vec::with_capacity(setup.repeats);
    for _ in 0..setup.repeats {
        let t = ctx.run(&[&op]).map_err(gpu_err)?;
        wall.push(t.wall_ms);
        device.extend(t.device_ms);
    }
    let output = y.download(ctx).map_err(gpu_err)?;
    if let Some(i) = output.first_non_finite() {
        return Err(CliError::new(format!(
            "{what}: the kernel wrote a non-finite value at output index {i}"
        ))
        .hint("this is a bug in the kernels; please report the command and `reparam gpu info`"));
    }

    let timestamps = device.len() == wall.len();
    let wall_ms = median(&mut wall);
    let median_ms = if timestamps {
        median(&mut device)
    } else {
        wall_ms
    };
    let macs = spec.macs(h, w).map_err(|e| internal(&what, &e))?;
    let flops = macs.checked_mul(2 * setup.batch as u64).ok_or_else(|| {
        CliError::new(format!("{what}: the flop count overflows 64 bits"))
            .hint("use a smaller --input-size or --batch")
    })?;
    Ok(Row {
        geometry: LayerShape::new(layer, setup.batch),
        requested: requested.name(),
        kernel: plan.kernel().name(),
        fallback: requested != kernel,
        tuning: plan
            .tuning()
            .iter()
            .map(|&(k, ms)| Candidate {
                kernel: k.name(),
                ms,
            })
            .collect(),
        flops,
        median_ms,
        wall_ms,
        gflops: flops as f64 / (median_ms / 1e3) / 1e9,
        timing: if timestamps { "timestamps" } else { "wall" },
        adapter: ctx.summary().name.clone(),
    })
}

/// One [`Total`] per kernel choice, in the order of `choices`. A layer without a row for the
/// choice (`--kernel all`: winograd-f23 on a stride-2 layer) counts with its `direct` row.
pub fn totals(rows: &[Row], choices: &[&'static str]) -> Vec<Total> {
    let mut layers: Vec<&str> = Vec::new();
    for row in rows {
        if !layers.contains(&row.geometry.layer.as_str()) {
            layers.push(&row.geometry.layer);
        }
    }
    choices
        .iter()
        .filter_map(|&choice| {
            let mut total = Total {
                requested: choice,
                blocks: 0,
                median_ms: 0.0,
                wall_ms: 0.0,
                gflops: 0.0,
                borrowed: false,
            };
            let mut flops = 0.0;
            let mut own = 0;
            for &layer in &layers {
                let find = |k: &str| {
                    rows.iter()
                        .find(|r| r.geometry.layer == layer && r.requested == k)
                };
                let row = match find(choice) {
                    Some(row) => {
                        own += 1;
                        row
                    }
                    None => {
                        total.borrowed = true;
                        find(GpuKernel::Direct.name())?
                    }
                };
                let count = row.geometry.count as f64;
                total.blocks += row.geometry.count;
                total.median_ms += count * row.median_ms;
                total.wall_ms += count * row.wall_ms;
                flops += count * row.flops as f64;
            }
            total.gflops = flops / (total.median_ms / 1e3) / 1e9;
            (own > 0).then_some(total)
        })
        .collect()
}

fn write_header(
    out: &mut dyn Write,
    model: &str,
    summary: &AdapterSummary,
    args: &GpuLayersArgs,
) -> Result<(), CliError> {
    let (h, w) = (args.input_size.height, args.input_size.width);
    let kernel = match args.kernel {
        KernelChoice::All => "all (every kernel that supports each layer)".to_string(),
        KernelChoice::One(GpuKernel::Auto) if args.autotune => {
            "auto, autotuned per layer at its input shape (fastest measured candidate)".into()
        }
        KernelChoice::One(GpuKernel::Auto) => {
            "auto (static choice: direct when Cin/g < 16, else gemm)".into()
        }
        KernelChoice::One(k) => k.name().to_string(),
    };
    let timing = if summary.timestamps {
        "device time (timestamp queries)"
    } else {
        "host wall time (this adapter has no timestamp queries)"
    };
    writeln!(
        out,
        "model:     {model}, deployed (one 3x3 conv + bias + ReLU per block)"
    )?;
    writeln!(
        out,
        "input:     [{}, 3, {h}, {w}], synthetic weights and input (seed {})",
        args.batch, args.seed
    )?;
    writeln!(
        out,
        "adapter:   {} ({}, {}), driver {}",
        summary.name,
        summary.backend,
        summary.device_type,
        summary.driver.trim()
    )?;
    writeln!(out, "kernels:   reparam-wgsl, kernel {kernel}")?;
    writeln!(
        out,
        "timing:    median of {} runs after one warm-up, {timing}; one submission per run; \
         GFLOP/s = 2·Cout·(Cin/g)·9·Hout·Wout·N / median",
        args.repeats
    )?;
    if summary.device_type == SOFTWARE_DEVICE_TYPE {
        writeln!(
            out,
            "note:      a software adapter (runs on the CPU); these timings say nothing about a GPU"
        )?;
    }
    writeln!(out)?;
    Ok(())
}

/// The table, the whole-network totals and the notes.
fn render(rows: &[Row], totals: &[Total]) -> String {
    let mut table = Table::new(&[
        ("layer", Align::Left),
        ("shape", Align::Left),
        ("count", Align::Right),
        ("kernel", Align::Left),
        ("batch", Align::Right),
        ("median ms", Align::Right),
        ("wall ms", Align::Right),
        ("GFLOP/s", Align::Right),
    ]);
    for row in rows {
        table.row(vec![
            row.geometry.layer.clone(),
            row.geometry.label(),
            row.geometry.count.to_string(),
            row.kernel_cell(),
            row.geometry.batch.to_string(),
            format!("{:.3}", row.median_ms),
            format!("{:.3}", row.wall_ms),
            format!("{:.1}", row.gflops),
        ]);
    }
    table.rule();
    let batch = rows
        .first()
        .map_or(String::new(), |r| r.geometry.batch.to_string());
    for total in totals {
        let star = if total.borrowed { "*" } else { "" };
        table.row(vec![
            "whole network convs".into(),
            String::new(),
            total.blocks.to_string(),
            format!("{}{star}", total.requested),
            batch.clone(),
            format!("{:.3}", total.median_ms),
            format!("{:.3}", total.wall_ms),
            format!("{:.1}", total.gflops),
        ]);
    }
    let mut out = table.render();
    let timing = rows.first().map_or("timestamps", |r| r.timing);
    out.push_str(&format!(
        "\nmedian ms: {}; whole network convs: sum over layers of count x median per kernel \
         choice (the convs of one forward pass, each layer in its own submission; no head)\n",
        if timing == "timestamps" {
            "device time from timestamp queries"
        } else {
            "host wall time (no timestamp queries on this adapter)"
        }
    ));
    if let Some(row) = rows.iter().find(|r| r.fallback) {
        out.push_str(&format!(
            "*: {} needs a 3x3 stride-1 layer; stride-2 layers ran direct instead\n",
            row.requested
        ));
    }
    for total in totals.iter().filter(|t| t.borrowed) {
        out.push_str(&format!(
            "{}*: layers it cannot run (stride 2) are counted with direct's time\n",
            total.requested
        ));
    }
    let tuned: Vec<&Row> = rows.iter().filter(|r| !r.tuning.is_empty()).collect();
    if !tuned.is_empty() {
        out.push_str("autotune (median ms per candidate at plan time):\n");
        for row in tuned {
            let candidates: Vec<String> = row
                .tuning
                .iter()
                .map(|c| format!("{} {:.3}", c.kernel, c.ms))
                .collect();
            out.push_str(&format!(
                "  {}: {}\n",
                row.geometry.layer,
                candidates.join(", ")
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Cli;
    use clap::Parser;

    fn parse_layers(args: &[&str]) -> Result<GpuLayersArgs, clap::Error> {
        let argv = ["reparam", "gpu", "layers"].iter().chain(args);
        match Cli::try_parse_from(argv)?.command {
            crate::Command::Gpu(GpuArgs {
                command: GpuCommand::Layers(a),
            }) => Ok(a),
            other => panic!("parsed as {other:?}"),
        }
    }

    /// The shared context of these tests, or `None` with a printed SKIP.
    fn gpu() -> Option<&'static GpuContext> {
        reparam_wgsl::test_support::shared_context()
    }

    fn run_layers(ctx: &GpuContext, args: &[&str]) -> String {
        let args = parse_layers(args).unwrap();
        let (config, layers) = model_layers(&args).unwrap();
        let mut out = Vec::new();
        layers_on(ctx, &config.name, &layers, &args, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    fn row(layer: &str, requested: &'static str, count: usize, ms: f64) -> Row {
        Row {
            geometry: LayerShape {
                layer: layer.into(),
                cin: 8,
                cout: 8,
                h: 4,
                w: 4,
                out_h: 4,
                out_w: 4,
                stride: 1,
                groups: 1,
                count,
                batch: 1,
            },
            requested,
            kernel: requested,
            fallback: false,
            tuning: Vec::new(),
            flops: 1_000_000,
            median_ms: ms,
            wall_ms: 2.0 * ms,
            gflops: 1.0,
            timing: "timestamps",
            adapter: "test".into(),
        }
    }

    #[test]
    fn defaults() {
        let a = parse_layers(&[]).unwrap();
        assert_eq!(a.model, "a0");
        assert_eq!((a.batch, a.repeats, a.seed), (1, 20, 0));
        assert_eq!(a.kernel, KernelChoice::One(GpuKernel::Auto));
        assert_eq!((a.autotune, a.json), (false, false));
        assert_eq!(a.input_size, InputSize::square(224));
    }

    #[test]
    fn arguments_parse_and_validate() {
        let a = parse_layers(&[
            "--model",
            "b0",
            "--batch",
            "32",
            "--kernel",
            "winograd-f23",
            "--repeats",
            "3",
            "--input-size",
            "32",
            "--json",
        ])
        .unwrap();
        assert_eq!((a.model.as_str(), a.batch, a.repeats), ("b0", 32, 3));
        assert_eq!(a.kernel, KernelChoice::One(GpuKernel::WinogradF23));
        assert!(a.json);
        assert_eq!(
            parse_layers(&["--kernel", "ALL"]).unwrap().kernel,
            KernelChoice::All
        );
        assert_eq!(
            parse_layers(&["--kernel", "Gemm"]).unwrap().kernel,
            KernelChoice::One(GpuKernel::Gemm)
        );
        assert!(parse_layers(&["--autotune"]).unwrap().autotune);
        for bad in [
            &["--kernel", "f43"][..],
            &["--kernel", ""],
            &["--batch", "0"],
            &["--repeats", "0"],
            &["--input-size", "0"],
        ] {
            assert!(parse_layers(bad).is_err(), "{bad:?}");
        }
        let e = parse_layers(&["--kernel", "f43"]).unwrap_err().to_string();
        assert!(
            e.contains(
                "use auto, naive, direct, gemm, gemm-wide, winograd-f23, winograd-f43 or all"
            ),
            "{e}"
        );
    }

    #[test]
    fn usage_errors_come_before_the_gpu() {
        let e = model_layers(&parse_layers(&["--model", "vgg16"]).unwrap()).unwrap_err();
        assert!(e.to_string().contains("unknown model `vgg16`"), "{e}");
        let args = parse_layers(&["--kernel", "gemm", "--autotune"]).unwrap();
        let e = model_layers(&args).unwrap_err().to_string();
        assert!(e.contains("needs --kernel auto"), "{e}");
    }

    #[test]
    fn kernel_selection_per_layer() {
        let s1 = ConvSpec::conv3x3(16, 16, 1, 1);
        let s2 = ConvSpec::conv3x3(16, 32, 2, 1);
        let wino = KernelChoice::One(GpuKernel::WinogradF23);
        assert_eq!(
            kernels_for(wino, &s1),
            [(GpuKernel::WinogradF23, GpuKernel::WinogradF23)]
        );
        assert_eq!(
            kernels_for(wino, &s2),
            [(GpuKernel::WinogradF23, GpuKernel::Direct)]
        );
        let all: Vec<GpuKernel> = kernels_for(KernelChoice::All, &s2)
            .into_iter()
            .map(|(_, k)| k)
            .collect();
        assert_eq!(
            all,
            [
                GpuKernel::Naive,
                GpuKernel::Direct,
                GpuKernel::Gemm,
                GpuKernel::GemmWide
            ]
        );
        assert_eq!(kernels_for(KernelChoice::All, &s1).len(), 6);
    }

    #[test]
    fn totals_sum_count_times_median_and_borrow_direct() {
        let rows = [
            row("stage0", "direct", 1, 1.0),
            row("stage0", "gemm", 1, 2.0),
            row("stage1.1", "direct", 3, 0.5),
            row("stage1.1", "gemm", 3, 0.25),
            row("stage1.1", "winograd-f23", 3, 0.125),
        ];
        let t = totals(&rows, &["naive", "direct", "gemm", "winograd-f23"]);
        assert_eq!(t.len(), 3, "naive has no rows: {t:?}");
        assert_eq!(
            (t[0].requested, t[0].blocks, t[0].median_ms),
            ("direct", 4, 2.5)
        );
        assert!(!t[0].borrowed);
        assert_eq!((t[1].median_ms, t[1].wall_ms), (2.75, 5.5));
        assert_eq!((t[2].requested, t[2].median_ms), ("winograd-f23", 1.375));
        assert!(t[2].borrowed);
        // 4 blocks of 1 Mflop in 2.5 ms.
        assert!((t[0].gflops - 1.6).abs() < 1e-12, "{}", t[0].gflops);
        let text = render(&rows, &t);
        assert!(
            text.contains("winograd-f23*: layers it cannot run"),
            "{text}"
        );
        let last = text
            .lines()
            .rfind(|l| l.starts_with("whole network convs"))
            .unwrap();
        assert!(last.contains("winograd-f23*"), "{last}");
        assert!(last.contains("1.375"), "{last}");
    }

    #[test]
    fn no_adapter_error_says_what_to_do() {
        let e = CliError::from_gpu(
            "cannot start the GPU",
            &GpuError::NoAdapter {
                reason: "no Vulkan ICD".into(),
            },
        )
        .to_string();
        assert!(
            e.starts_with("error: cannot start the GPU: no GPU adapter found"),
            "{e}"
        );
        if std::env::var(reparam_wgsl::context::ENV_ADAPTER).is_err() {
            assert!(e.contains("apt-get install mesa-vulkan-drivers"), "{e}");
            assert!(e.contains("machine with a GPU"), "{e}");
        }
    }

    #[test]
    fn info_json_has_every_field() {
        let Some(ctx) = gpu() else { return };
        let json = serde_json::to_value(AdapterJson::from(ctx.summary())).unwrap();
        for key in [
            "name",
            "backend",
            "device_type",
            "driver",
            "timestamps",
            "timestamps_inside_passes",
            "shader_f16",
            "subgroups",
            "max_storage_binding",
            "max_buffer",
            "max_workgroup_storage",
        ] {
            assert!(json.get(key).is_some(), "missing `{key}` in {json}");
        }
        assert_eq!(json["name"], ctx.summary().name);
    }

    #[test]
    fn json_rows_have_every_key() {
        let Some(ctx) = gpu() else { return };
        let text = run_layers(
            ctx,
            &[
                "--input-size",
                "16",
                "--repeats",
                "1",
                "--kernel",
                "all",
                "--batch",
                "2",
                "--json",
            ],
        );
        let json: serde_json::Value = serde_json::from_str(&text).unwrap();
        let rows = json.as_array().expect("a JSON array");
        // A0: 8 distinct layers, 5 of stride 2 (4 kernels) and 3 of stride 1 (6 kernels).
        assert_eq!(rows.len(), 5 * 4 + 3 * 6);
        for row in rows {
            for key in [
                "layer",
                "cin",
                "cout",
                "h",
                "w",
                "stride",
                "groups",
                "count",
                "kernel",
                "batch",
                "median_ms",
                "wall_ms",
                "gflops",
                "timing",
                "adapter",
            ] {
                assert!(row.get(key).is_some(), "missing `{key}` in {row}");
            }
            assert_eq!(row["batch"], 2);
            assert_eq!(row["kernel"], row["requested"]);
            assert_eq!(row["adapter"], ctx.summary().name.as_str());
            let timing = if ctx.summary().timestamps {
                "timestamps"
            } else {
                "wall"
            };
            assert_eq!(row["timing"], timing);
            assert!(row["median_ms"].as_f64().unwrap() > 0.0, "{row}");
            assert!(row["gflops"].as_f64().unwrap() > 0.0, "{row}");
        }
        assert_eq!(rows[0]["layer"], "stage0");
        // stem at 16x16, batch 2: 2·48·3·9·8·8·2 flops.
        assert_eq!(rows[0]["flops"], 2 * 48 * 3 * 9 * 8 * 8 * 2);
    }

    #[test]
    fn table_marks_fallbacks_and_sums_the_model() {
        let Some(ctx) = gpu() else { return };
        let text = run_layers(
            ctx,
            &[
                "--input-size",
                "16",
                "--repeats",
                "1",
                "--kernel",
                "winograd-f23",
            ],
        );
        assert!(text.starts_with("model:     RepVGG-A0, deployed"), "{text}");
        let stem = text.lines().find(|l| l.starts_with("stage0 ")).unwrap();
        assert!(stem.contains("3->48 16x16 s2 g1"), "{stem}");
        assert!(stem.contains("direct*"), "{stem}");
        let s31 = text.lines().find(|l| l.starts_with("stage3.1 ")).unwrap();
        assert!(s31.contains(" 13 "), "{s31}");
        assert!(s31.contains("winograd-f23 "), "{s31}");
        let total = text
            .lines()
            .find(|l| l.starts_with("whole network convs"))
            .unwrap();
        assert!(total.contains(" 22 "), "{total}");
        assert!(
            text.contains("*: winograd-f23 needs a 3x3 stride-1 layer"),
            "{text}"
        );
    }

    #[test]
    fn autotune_picks_a_measured_kernel() {
        let Some(ctx) = gpu() else { return };
        let text = run_layers(
            ctx,
            &[
                "--input-size",
                "8",
                "--repeats",
                "1",
                "--autotune",
                "--json",
            ],
        );
        let json: serde_json::Value = serde_json::from_str(&text).unwrap();
        for row in json.as_array().unwrap() {
            assert_eq!(row["requested"], "auto");
            let tuning = row["tuning"].as_array().expect("candidates");
            assert!(tuning.iter().any(|c| c["kernel"] == row["kernel"]), "{row}");
        }
    }
}
