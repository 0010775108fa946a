//! The GPU test suite: every kernel against `reparam_tensor::reference` (f64 accumulation) with
//! [`GpuKernel::error_factor`]'s tolerance (denominators floored at `Σ|terms|/√K`), on whatever adapter the environment gives (lavapipe in
//! CI). Outputs are poisoned with NaN before every run, padding lanes included, so a kernel
//! that skips an element fails.
//!
//! Without an adapter every test prints a visible `SKIP` and passes, unless
//! `REPARAM_REQUIRE_GPU=1` (CI) turns that into a failure.

mod api;
mod edge;
mod ops;
mod sweep;

use crate::{GpuContext, GpuConv2dPlan, GpuConvOptions, GpuKernel, GpuTensor};
use reparam_tensor::reference;
use reparam_tensor::rng::SplitMix64;
use reparam_tensor::tolerance::{Tolerance, cancellation_floor, check_close_floored};
use reparam_tensor::{ConvSpec, Epilogue, Shape, Tensor};

/// The shared context of the test binary (one device, one pipeline cache), or `None` with a
/// printed SKIP; panics when `REPARAM_REQUIRE_GPU=1` and there is no adapter.
pub(crate) fn gpu() -> Option<&'static GpuContext> {
    crate::test_support::shared_context()
}

/// Every kernel; [`check`] skips those that do not support a spec.
pub(crate) const ALL: &[GpuKernel] = &GpuKernel::CONCRETE;

/// A seeded random tensor in [-1, 1).
pub(crate) fn random(shape: Shape, seed: u64) -> Tensor {
    let mut rng = SplitMix64::new(seed);
    Tensor::from_fn(shape, |_, _, _, _| rng.uniform(-1.0, 1.0)).expect("test shape is valid")
}

/// A seed derived from a case name, so every case gets its own data.
pub(crate) fn seed_of(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

/// Runs `plan` on `input` with the output poisoned with NaN and returns the NCHW result.
pub(crate) fn run_plan(ctx: &GpuContext, plan: &GpuConv2dPlan, input: &Tensor) -> Tensor {
    let x = GpuTensor::upload(ctx, input).expect("upload");
    let out_shape = plan
        .spec()
        .output_shape(input.shape())
        .expect("valid shape");
    let y = GpuTensor::zeros(ctx, out_shape).expect("output");
    y.fill(ctx, f32::NAN).expect("poison");
    plan.run(ctx, &x, &y).expect("run");
    y.download(ctx).expect("download")
}

/// Checks every kernel of `kernels` that supports `spec` on a random input of `shape`, with
/// bias + ReLU and with no epilogue, against the oracle. Returns the failures.
pub(crate) fn try_check(
    ctx: &GpuContext,
    name: &str,
    spec: ConvSpec,
    shape: Shape,
    kernels: &[GpuKernel],
) -> Vec<String> {
    let seed = seed_of(name);
    let input = random(shape, seed);
    let weight = random(spec.weight_shape(), seed ^ 1);
    let bias = random([1, spec.out_channels, 1, 1], seed ^ 2).into_data();
    let mut failures = Vec::new();
    for epilogue in [Epilogue::bias_relu(bias), Epilogue::none()] {
        let expected = reference::conv2d(&input, &spec, &weight, &epilogue).expect("oracle");
        // Results small only through cancellation are measured against what their terms allow
        // (`reparam_tensor::tolerance`, Cancellation).
        let magnitude =
            reference::conv2d_magnitude(&input, &spec, &weight, &epilogue).expect("oracle");
        let floor = cancellation_floor(&magnitude, spec.reduction_len());
        for &kernel in kernels {
            if !kernel.supports(&spec) {
                continue;
            }
            let options = GpuConvOptions {
                kernel: Some(kernel),
                autotune: None,
            };
            let plan = GpuConv2dPlan::new(ctx, &spec, &weight, &epilogue, &options).expect("plan");
            let actual = run_plan(ctx, &plan, &input);
            let tol = Tolerance::for_reduction(spec.reduction_len(), kernel.error_factor());
            let context = format!(
                "case `{name}`: kernel {} spec {spec:?} input {shape:?} bias {} relu {}",
                kernel.name(),
                epilogue.bias.is_some(),
                epilogue.relu
            );
            if let Err(msg) = check_close_floored(&actual, &expected, &floor, &tol, &context) {
                failures.push(msg);
            }
        }
    }
    failures
}

/// [`try_check`], panicking with every failure; skips without a GPU.
#[track_caller]
pub(crate) fn check(name: &str, spec: ConvSpec, shape: Shape, kernels: &[GpuKernel]) {
    let Some(ctx) = gpu() else { return };
    let failures = try_check(ctx, name, spec, shape, kernels);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
