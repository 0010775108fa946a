//! GPU benchmarks: `conv3x3-gpu` over every distinct RepVGG-A0/B0 layer with the `reparam-wgsl`
//! plans.
//!
//! The sweep, for each layer of [`shapes::repvgg_layers`] at 224x224:
//! - batch 1 and batch 32 (`-n1`, `-n32`; on a software adapter such as lavapipe, whose
//!   `device_type` is `Cpu`, only batch 1 is registered, with a note on stderr);
//! - every concrete [`GpuKernel`] that supports the layer ([`GpuKernel::supports`]: the Winograd
//!   kernels F(2,3) and F(4,3) on stride-1 layers only); `naive`, the GPU reference, at batch 1
//!   only.
//!
//! Ids: `conv3x3-gpu/<kernel>/<layer>-n<N>`, e.g. `conv3x3-gpu/gemm/a0-s3-192x14x14-n32`, with
//! [`GpuKernel::name`] and [`shapes::ModelLayer::name`].
//!
//! The timed region is the device: each iteration is one [`GpuContext::run`] (one submission,
//! waited for) and contributes its timestamp-query device time, or its host wall time when the
//! adapter has no timestamps (`iter_custom`). Plan, weights, tensors and the bound op are built
//! once per benchmark, lazily (only for benchmarks the filter selects), outside the timed region,
//! followed by one untimed warm-up run. Weights, bias and input are seeded uniform values.
//!
//! Without a GPU adapter the group prints `SKIP conv3x3-gpu: <error>` on stderr and registers
//! nothing, so the binary still passes; `REPARAM_REQUIRE_GPU=1` turns that skip into a panic.

use crate::shapes::{self, ModelLayer};
use criterion::{BenchmarkId, Criterion, Throughput};

use reparam_wgsl::{GpuContext, GpuConv2dPlan, GpuConvOptions, GpuKernel, GpuOp, GpuTensor};
use std::time::Duration;

/// The models whose layers are timed.
const MODELS: [&str; 2] = ["a0", "b0"];
/// Input side of the networks (the size every official model is reported at).
const INPUT: usize = 224;
/// Batch sizes on a hardware GPU; a software adapter gets the first only.
const BATCHES: [usize; 2] = [1, 32];
/// `AdapterSummary::device_type` of a software rasterizer (lavapipe, llvmpipe).
const SOFTWARE_DEVICE_TYPE: &str = "Cpu";

/// Builds the plan, the tensors and the op for `kernel` on `layer` at `batch`, and runs it once
/// (compiles the pipeline, pages the buffers in). The op's bind groups keep the plan's weights
/// and both tensors alive.
fn bind(
    ctx: &GpuContext,
    layer: &ModelLayer,
    index: usize,
    kernel: GpuKernel,
    batch: usize,
) -> GpuOp {
    let what = format!("conv3x3-gpu/{}/{}-n{batch}", kernel.name(), layer.name());
    let (weight, epilogue) = layer.layer.synthetic_weights(0x5EED_0000 + index as u64);
    let options = GpuConvOptions {
        kernel: Some(kernel),
        autotune: None,
    };
    let plan = GpuConv2dPlan::new(ctx, &layer.layer.spec, &weight, &epilogue, &options)
        .unwrap_or_else(|e| panic!("{what}: plan: {e}"));
    assert_eq!(plan.kernel(), kernel, "{what}");
    let input = layer
        .layer
        .synthetic_input(batch, 0x1A9E_0000 + index as u64)
        .expect("a valid input");
    let shape = input.shape();
    let x = GpuTensor::upload(ctx, &input).unwrap_or_else(|e| panic!("{what}: input: {e}"));
    let out_shape = layer
        .layer
        .spec
        .output_shape(shape)
        .expect("the input fits the layer");
    let y = GpuTensor::zeros(ctx, out_shape).unwrap_or_else(|e| panic!("{what}: output: {e}"));
    let op = plan
        .bind(ctx, &x, &y)
        .unwrap_or_else(|e| panic!("{what}: bind: {e}"));
    ctx.run(&[&op])
        .unwrap_or_else(|e| panic!("{what}: warm-up run: {e}"));
    op
}

/// The kernels timed on `layer` at `batch`.
fn kernels(layer: &ModelLayer, batch: usize) -> impl Iterator<Item = GpuKernel> + '_ {
    GpuKernel::CONCRETE
        .into_iter()
        .filter(move |k| k.supports(&layer.layer.spec) && (batch == 1 || *k != GpuKernel::Naive))
}

/// Registers the `conv3x3-gpu` group (nothing, with a SKIP line, without a GPU).
pub fn conv3x3_gpu(c: &mut Criterion) {
    let Some(ctx) = reparam_wgsl::test_support::shared_context() else {
        return;
    };
    let summary = ctx.summary();
    let timing = if summary.timestamps {
        "device time from timestamp queries"
    } else {
        "host wall time (no timestamp queries)"
    };
    eprintln!(
        "conv3x3-gpu: {} ({}, {}); {timing}",
        summary.name, summary.backend, summary.device_type
    );
    let batches: &[usize] = if summary.device_type == SOFTWARE_DEVICE_TYPE {
        eprintln!(
            "NOTE conv3x3-gpu: `{}` is a software adapter; only the batch-1 benchmarks are \
             registered (batch {} too on a hardware GPU)",
            summary.name,
            BATCHES[1..]
                .iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        );
        &BATCHES[..1]
    } else {
        &BATCHES
    };

    let mut group = shapes::layer_group(c, "conv3x3-gpu");

    for (index, layer) in shapes::repvgg_layers(&MODELS, INPUT).iter().enumerate() {
        for &batch in batches {
            group.throughput(Throughput::Elements(layer.flops(batch)));
            for kernel in kernels(layer, batch) {
                let id = BenchmarkId::new(kernel.name(), format!("{}-n{batch}", layer.name()));
                let ctx = &ctx;
                // Built on the first sample, so a filter that skips this benchmark costs nothing.
                let mut bound: Option<GpuOp> = None;
                group.bench_function(id, move |b| {
                    let op = &*bound.get_or_insert_with(|| bind(ctx, layer, index, kernel, batch));
                    b.iter_custom(|iters| {
                        let mut total = Duration::ZERO;
                        for _ in 0..iters {
                            let t = ctx.run(&[op]).expect("the run succeeds");
                            let ms = t.device_ms.unwrap_or(t.wall_ms);
                            total += Duration::from_secs_f64(ms / 1e3);
                        }
                        total
                    })
                });
            }
        }
    }
    group.finish();
}
