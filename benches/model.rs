//! Network benchmarks: one RepVGG block of each stage (`block`) and whole networks (`model`), in
//! both forms, on the engines of the `repvgg` crate.
//!
//! - `block/<form>-cpu/<model>-stage<k>`: the last block of stage `k` (1..=4) of RepVGG-A0 and
//!   B0 at its input size of a 224x224 image, batch 1, alone ([`Graph::block`]: the block, then
//!   pool and an identity classifier). The last block is the one with the identity branch
//!   wherever the stage has more than one block.
//! - `model/<form>-cpu/<model>-b<N>`: the whole network, stem to logits, at 224x224 for batches
//!   1 and 8.
//! - `-gpu` instead of `-cpu`: the same graphs on the GPU executor, when an adapter exists (on a
//!   software adapter such as lavapipe only the blocks and batch 1); without one, a `SKIP` line
//!   on stderr and nothing registered. `REPARAM_REQUIRE_GPU=1` turns the skip into a panic.
//!
//! `<form>` is `plain` (one conv3x3 + bias + ReLU per block) or `multi-branch` (per block the
//! 3x3 and 1x1 convs with their BN folded in, the identity BN, the adds and the ReLU, each its
//! own op, as a deploying engine runs the trained network). Weights are `TrainNet::random`
//! (seeded, never constant); the plain form is its re-parameterization ([`Graph::deployed`]).
//! The CPU engine uses one thread per core (the default of `reparam bench`), the ISA of
//! run-time dispatch.
//!
//! The timed region is one `Engine::run` (input in memory, logits read back), on an engine
//! prepared once (plans, packed weights, arena) outside it, lazily on the benchmark's first
//! sample so a filter that skips it costs nothing. Next to each timing the binary prints the
//! memory figures of the same graph: bytes moved per image (the analytic model of
//! `repvgg::traffic`) and the engine's peak activation bytes (the CPU arena).

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, BenchmarkId, Criterion, SamplingMode, Throughput};
use reparam_tensor::Tensor;
use reparam_tensor::rng::SplitMix64;
use reparam_wgsl::{GpuContext, GpuConvOptions};
use repvgg::exec::Gpu;
use repvgg::graph::Form;
use repvgg::stats::{InputSize, ModelStats};
use repvgg::traffic::{OpCost, op_costs};
use repvgg::{Config, Cpu, CpuOptions, Engine, Executor, Graph, TrainNet};
use std::hint::black_box;
use std::time::Duration;

/// The models timed.
const MODELS: [&str; 2] = ["a0", "b0"];
/// Image side.
const INPUT: usize = 224;
/// Batches of the `model` group; a software GPU adapter gets the first only.
const BATCHES: [usize; 2] = [1, 8];
/// Both forms, the one the paper's claim is about first.
const FORMS: [Form; 2] = [Form::MultiBranch, Form::Plain];
/// Seed of the synthetic weights.
const WEIGHT_SEED: u64 = 0x5EED_0B10;
/// `AdapterSummary::device_type` of a software rasterizer (lavapipe, llvmpipe).
const SOFTWARE_DEVICE_TYPE: &str = "Cpu";

/// One graph to time: its id parts, the graph and its input.
struct Case {
    /// `block` or `model`.
    group: &'static str,
    form: Form,
    /// `a0-stage2`, `b0-b8`.
    shape: String,
    graph: Graph,
    input: Tensor,
}

impl Case {
    /// The analytic costs of one run, per op.
    fn costs(&self) -> Vec<OpCost> {
        op_costs(&self.graph, self.input.shape()).expect("the graph accepts its input")
    }

    /// Direct FLOPs of one run (criterion's "elem/s" then reads as FLOP/s).
    fn flops(&self) -> u64 {
        self.costs().iter().map(|c| c.flops).sum()
    }

    /// Bytes moved per image (analytic model).
    fn bytes_per_image(&self) -> u64 {
        let bytes: u64 = self.costs().iter().map(OpCost::bytes_moved).sum();
        bytes / self.input.shape()[0] as u64
    }
}

/// A seeded uniform input `[batch, channels, h, w]` in `[-1, 1)`.
fn input(batch: usize, channels: usize, (h, w): (usize, usize)) -> Tensor {
    let shape = [batch, channels, h, w];
    let mut rng = SplitMix64::new(0x1A9E_0B10 ^ (batch * channels * h * w) as u64);
    Tensor::new(shape, rng.uniform_vec(shape.iter().product(), -1.0, 1.0))
        .expect("the input shape matches its data")
}

/// The synthetic training-time net of `model`.
fn net(model: &str) -> TrainNet {
    TrainNet::random(
        &Config::official(model).expect("an official model"),
        WEIGHT_SEED,
    )
}

/// The last block of every stage 1..=4 of each model, both forms.
fn block_cases() -> Vec<Case> {
    let mut cases = Vec::new();
    for model in MODELS {
        let net = net(model);
        let stats = ModelStats::new(&net.config, InputSize::square(INPUT)).expect("a valid input");
        for stage in 1..=4 {
            let index = net
                .blocks
                .iter()
                .rposition(|b| b.spec.stage == stage)
                .expect("every RepVGG model has stages 1 to 4");
            let spec = net.blocks[index].spec;
            for form in FORMS {
                cases.push(Case {
                    group: "block",
                    form,
                    shape: format!("{model}-stage{stage}"),
                    graph: Graph::block(&net, index, form).expect("a valid block"),
                    input: input(1, spec.in_channels, stats.blocks[index].input_hw),
                });
            }
        }
    }
    cases
}

/// Whole networks of each model at each of `batches`, both forms.
fn model_cases(batches: &[usize]) -> Vec<Case> {
    let mut cases = Vec::new();
    for model in MODELS {
        let net = net(model);
        for form in FORMS {
            let graph = Graph::deployed(&net, form).expect("a valid net");
            for &batch in batches {
                cases.push(Case {
                    group: "model",
                    form,
                    shape: format!("{model}-b{batch}"),
                    graph: graph.clone(),
                    input: input(batch, net.config.in_channels, (INPUT, INPUT)),
                });
            }
        }
    }
    cases
}

/// Criterion settings for whole-network runs: flat sampling, so a 200 ms batch-8 run stays at
/// `sample_size` runs.
fn configure(group: &mut BenchmarkGroup<'_, WallTime>) {
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sampling_mode(SamplingMode::Flat);
}

/// Prints the memory figures of `case` on `engine`, next to its timing.
fn print_memory(id: &str, case: &Case, engine: &str, peak_activation_bytes: usize) {
    println!(
        "{id}: {engine}; {:.2} MB moved per image (analytic model), {:.2} MB peak activation",
        case.bytes_per_image() as f64 / 1e6,
        peak_activation_bytes as f64 / 1e6
    );
}

/// Registers `cases` in `group` on the CPU engine.
fn bench_cpu(group: &mut BenchmarkGroup<'_, WallTime>, cases: &[Case]) {
    for case in cases {
        let variant = format!("{}-cpu", case.form);
        let id = format!("{}/{variant}/{}", case.group, case.shape);
        group.throughput(Throughput::Elements(case.flops()));
        let mut engine: Option<Cpu> = None;
        group.bench_function(BenchmarkId::new(variant, &case.shape), |b| {
            let engine = engine.get_or_insert_with(|| {
                let options = CpuOptions {
                    input_hw: (case.input.shape()[2], case.input.shape()[3]),
                    ..CpuOptions::default()
                };
                let mut engine = Cpu::new(&case.graph, &options).expect("the CPU engine prepares");
                let peak = engine
                    .run(&case.input)
                    .expect("the warm-up run succeeds")
                    .peak_live_bytes;
                let what = format!("{} {} thread(s)", engine.isa(), engine.threads());
                print_memory(&id, case, &what, peak);
                engine
            });
            b.iter(|| {
                engine
                    .run(black_box(&case.input))
                    .expect("the run succeeds");
            });
        });
    }
}

/// Registers `cases` in `group` on the GPU executor of `ctx`.
fn bench_gpu(group: &mut BenchmarkGroup<'_, WallTime>, ctx: &'static GpuContext, cases: &[Case]) {
    for case in cases {
        let variant = format!("{}-gpu", case.form);
        let id = format!("{}/{variant}/{}", case.group, case.shape);
        group.throughput(Throughput::Elements(case.flops()));
        let mut engine: Option<Executor<Gpu<'static>>> = None;
        group.bench_function(BenchmarkId::new(variant, &case.shape), |b| {
            let engine = engine.get_or_insert_with(|| {
                let engine = Executor::new(Gpu::new(ctx, GpuConvOptions::default()), &case.graph)
                    .expect("the GPU executor prepares");
                let peak = engine
                    .run(&case.input)
                    .expect("the warm-up run succeeds")
                    .peak_live_bytes;
                print_memory(&id, case, &ctx.summary().name, peak);
                engine
            });
            b.iter(|| {
                Engine::run(engine, black_box(&case.input)).expect("the run succeeds");
            });
        });
    }
}

/// The GPU to time on, with a note about it (a `SKIP` line without one).
fn gpu() -> Option<(&'static GpuContext, bool)> {
    let ctx = reparam_wgsl::test_support::shared_context()?;
    let summary = ctx.summary();
    let software = summary.device_type == SOFTWARE_DEVICE_TYPE;
    eprintln!(
        "block-gpu, model-gpu: {} ({}, {}){}",
        summary.name,
        summary.backend,
        summary.device_type,
        if software {
            "; a software adapter: only the blocks and batch 1 are registered"
        } else {
            ""
        }
    );
    Some((ctx, software))
}

/// Registers the `block` group: one block of each stage, both forms, CPU and GPU.
pub fn block(c: &mut Criterion) {
    let cases = block_cases();
    let mut group = c.benchmark_group("block");
    configure(&mut group);
    bench_cpu(&mut group, &cases);
    if let Some((ctx, _)) = gpu() {
        bench_gpu(&mut group, ctx, &cases);
    }
    group.finish();
}

/// Registers the `model` group: whole networks, both forms, batches 1 and 8, CPU and GPU.
pub fn model(c: &mut Criterion) {
    let mut group = c.benchmark_group("model");
    configure(&mut group);
    bench_cpu(&mut group, &model_cases(&BATCHES));
    if let Some((ctx, software)) = gpu() {
        let batches = if software { &BATCHES[..1] } else { &BATCHES };
        bench_gpu(&mut group, ctx, &model_cases(batches));
    }
    group.finish();
}
