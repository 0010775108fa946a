//! The plan API: typed errors for bad input, splitting of tensors above the binding limit,
//! whole-network submission, timing and autotuning.

use super::{gpu, random, run_plan};
use crate::ops::global_avg_pool;
use crate::{AffinePlan, GpuOp, SqueezeExcitePlan};
use crate::{
    GpuContext, GpuContextOptions, GpuConv2dPlan, GpuConvOptions, GpuError, GpuKernel, GpuTensor,
};
use reparam_tensor::tolerance::{Tolerance, assert_close};
use reparam_tensor::{ConvSpec, Epilogue, reference};

fn plan(ctx: &GpuContext, spec: ConvSpec, kernel: GpuKernel) -> Result<GpuConv2dPlan, GpuError> {
    let weight = random(spec.weight_shape(), 1);
    let options = GpuConvOptions {
        kernel: Some(kernel),
        autotune: None,
    };
    GpuConv2dPlan::new(ctx, &spec, &weight, &Epilogue::none(), &options)
}

#[test]
fn bad_input_is_a_typed_error() {
    let Some(ctx) = gpu() else { return };
    // Winograd refuses stride 2.
    let err = plan(ctx, ConvSpec::conv3x3(8, 8, 2, 1), GpuKernel::WinogradF43).unwrap_err();
    assert!(err.to_string().contains("stride"), "{err}");
    let err = plan(ctx, ConvSpec::conv3x3(8, 8, 2, 1), GpuKernel::WinogradF23).unwrap_err();
    assert!(err.to_string().contains("stride 1"), "{err}");
    // Channels not divisible by groups.
    assert!(plan(ctx, ConvSpec::conv3x3(6, 8, 1, 4), GpuKernel::Gemm).is_err());
    // NaN weights.
    let spec = ConvSpec::conv3x3(4, 4, 1, 1);
    let mut weight = random(spec.weight_shape(), 2);
    weight.data_mut()[5] = f32::NAN;
    let err = GpuConv2dPlan::new(
        ctx,
        &spec,
        &weight,
        &Epilogue::none(),
        &GpuConvOptions::default(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("weight"), "{err}");
    // Wrong input channels, wrong output shape.
    let p = plan(ctx, spec, GpuKernel::Gemm).unwrap();
    let x = GpuTensor::zeros(ctx, [1, 5, 6, 6]).unwrap();
    let y = GpuTensor::zeros(ctx, [1, 4, 6, 6]).unwrap();
    assert!(matches!(p.bind(ctx, &x, &y), Err(GpuError::Tensor(_))));
    let x = GpuTensor::zeros(ctx, [1, 4, 6, 6]).unwrap();
    let y = GpuTensor::zeros(ctx, [1, 4, 5, 6]).unwrap();
    assert!(matches!(p.bind(ctx, &x, &y), Err(GpuError::Tensor(_))));
    // Empty axis.
    assert!(GpuTensor::zeros(ctx, [1, 0, 2, 2]).is_err());
    assert!(GpuKernel::parse("fft").is_err());
    for kernel in GpuKernel::CONCRETE {
        assert_eq!(GpuKernel::parse(kernel.name()).unwrap(), kernel);
    }
}

/// A second context on the same adapter whose storage bindings are limited to 16 KiB, so small
/// tensors, weights and scratch exceed the limit.
fn small_context() -> GpuContext {
    let options = GpuContextOptions {
        max_binding_bytes: Some(16 * 1024),
        ..GpuContextOptions::from_env()
    };
    let small = pollster::block_on(GpuContext::new(&options)).expect("second context");
    assert_eq!(small.max_binding_bytes(), 16 * 1024);
    small
}

/// A context whose binding limit is a few KiB forces every kernel to split the batch into
/// chunks bound as windows at aligned offsets; results must not change (bitwise: the same
/// kernel computes every element the same way).
#[test]
fn tensors_above_the_binding_limit_are_split() {
    let Some(ctx) = gpu() else { return };
    let small = small_context();
    // One image: 9·10·12 floats = 4320 B in, 4320 B out; F(2,3) scratch 16·25·12·4 = 19 KiB
    // per image would not fit, so Winograd runs 8 channels on 6x5 images (V per image:
    // 16·9·8·4 B for F(2,3)'s 9 tiles, 36·4·8·4 B for F(4,3)'s 4, 4.5 KiB each).
    let spec = ConvSpec::conv3x3(12, 12, 1, 1);
    let input = random([5, 12, 9, 10], 3);
    for kernel in GpuKernel::CONCRETE {
        let winograd = matches!(kernel, GpuKernel::WinogradF23 | GpuKernel::WinogradF43);
        let (spec, input) = if winograd {
            (ConvSpec::conv3x3(8, 8, 1, 1), random([7, 8, 6, 5], 4))
        } else {
            (spec, input.clone())
        };
        let p_big = plan(ctx, spec, kernel).unwrap();
        let p_small = plan(&small, spec, kernel).unwrap();
        let x = GpuTensor::upload(&small, &input).unwrap();
        let y = GpuTensor::zeros(&small, spec.output_shape(input.shape()).unwrap()).unwrap();
        let op = p_small.bind(&small, &x, &y).unwrap();
        let per_chunk = if winograd { 3 } else { 1 };
        assert!(
            op.dispatch_count() > per_chunk,
            "{}: expected several chunks, got {} dispatches",
            kernel.name(),
            op.dispatch_count()
        );
        small.run(&[&op]).unwrap();
        let split = y.download(&small).unwrap();
        let whole = run_plan(ctx, &p_big, &input);
        assert_eq!(split, whole, "{}", kernel.name());
    }
    // One image larger than the limit is a typed error naming the operand.
    let p_small = plan(&small, spec, GpuKernel::Gemm).unwrap();
    let x = GpuTensor::zeros(&small, [1, 12, 40, 40]).unwrap();
    let y = GpuTensor::zeros(&small, [1, 12, 40, 40]).unwrap();
    let err = p_small.bind(&small, &x, &y).unwrap_err();
    assert!(
        matches!(
            err,
            GpuError::TooLarge {
                operand: "input",
                ..
            }
        ),
        "{err}"
    );
}

/// The non-conv ops split the same way: batch norm with a residual add and ReLU (chunks of
/// pixels), pooling and squeeze-excitation (chunks of images) under a 16 KiB binding limit give
/// bitwise the results of an unlimited context.
#[test]
fn ops_above_the_binding_limit_are_split() {
    let Some(ctx) = gpu() else { return };
    let small = small_context();
    // One image: 12 channels at 9x10 = 4320 B; 6 images = 26 KiB > 16 KiB.
    let shape = [6, 12, 9, 10];
    let (a, b) = (random(shape, 40), random(shape, 41));
    let (wd, bd) = (random([3, 12, 1, 1], 42), vec![0.1; 3]);
    let (wu, bu) = (random([12, 3, 1, 1], 43), vec![-0.1; 12]);
    let scale: Vec<f32> = (0..12).map(|i| 0.5 + i as f32 * 0.1).collect();
    let shift: Vec<f32> = (0..12).map(|i| i as f32 * 0.01 - 0.05).collect();
    let run = |ctx: &GpuContext| {
        let (ga, gb) = (
            GpuTensor::upload(ctx, &a).unwrap(),
            GpuTensor::upload(ctx, &b).unwrap(),
        );
        let affine = GpuTensor::zeros(ctx, shape).unwrap();
        let pooled = GpuTensor::zeros(ctx, [6, 12, 1, 1]).unwrap();
        let se = GpuTensor::zeros(ctx, shape).unwrap();
        let ops = [
            AffinePlan::new(ctx, &scale, &shift, true)
                .unwrap()
                .bind(ctx, &ga, Some(&gb), &affine)
                .unwrap(),
            global_avg_pool(ctx, &affine, &pooled).unwrap(),
            SqueezeExcitePlan::new(ctx, (&wd, &bd), (&wu, &bu))
                .unwrap()
                .bind(ctx, &affine, &se)
                .unwrap(),
        ];
        let dispatches: usize = ops.iter().map(GpuOp::dispatch_count).sum();
        ctx.run(&ops.iter().collect::<Vec<_>>()).unwrap();
        let out = [&affine, &pooled, &se].map(|t| t.download(ctx).unwrap());
        (out, dispatches)
    };
    let (split, split_dispatches) = run(&small);
    let (whole, whole_dispatches) = run(ctx);
    assert!(
        split_dispatches > whole_dispatches,
        "expected chunked dispatches: {split_dispatches} vs {whole_dispatches}"
    );
    for (name, (s, w)) in ["affine+add+relu", "pool", "squeeze-excite"]
        .iter()
        .zip(split.iter().zip(&whole))
    {
        assert_eq!(s, w, "{name}");
    }
}

/// Three layers encoded into one submission give the same result as the oracle chain, and the
/// timings cover every op.
#[test]
fn a_chain_of_layers_runs_in_one_submission() {
    let Some(ctx) = gpu() else { return };
    let specs = [
        ConvSpec::conv3x3(3, 16, 2, 1),
        ConvSpec::conv3x3(16, 16, 1, 1),
        ConvSpec::conv3x3(16, 24, 2, 1),
    ];
    let input = random([2, 3, 17, 15], 5);
    let mut expected = input.clone();
    let mut x = GpuTensor::upload(ctx, &input).unwrap();
    let mut ops = Vec::new();
    let mut tensors = Vec::new();
    for (i, spec) in specs.iter().enumerate() {
        let weight = random(spec.weight_shape(), 10 + i as u64);
        let epilogue =
            Epilogue::bias_relu(random([1, spec.out_channels, 1, 1], 20 + i as u64).into_data());
        expected = reference::conv2d(&expected, spec, &weight, &epilogue).unwrap();
        let plan =
            GpuConv2dPlan::new(ctx, spec, &weight, &epilogue, &GpuConvOptions::default()).unwrap();
        let y = GpuTensor::zeros(ctx, spec.output_shape(x.shape()).unwrap()).unwrap();
        y.fill(ctx, f32::NAN).unwrap();
        ops.push(plan.bind(ctx, &x, &y).unwrap());
        tensors.push(x);
        x = y;
    }
    let refs: Vec<_> = ops.iter().collect();
    let timings = ctx.run(&refs).unwrap();
    assert!(timings.wall_ms > 0.0);
    if let Some(per_op) = &timings.per_op_ms {
        assert_eq!(per_op.len(), 3);
        assert!(per_op.iter().all(|t| t.is_finite() && *t >= 0.0));
    }
    assert_eq!(ctx.summary().timestamps, timings.per_op_ms.is_some());
    let actual = x.download(ctx).unwrap();
    // Three layers in sequence: allow the sum of the three layers' bounds.
    let tol = Tolerance::for_reduction(9 * 16, 3.0);
    assert_close(&actual, &expected, &tol, "3-layer chain");
}

#[test]
fn autotune_times_every_candidate_and_keeps_a_correct_kernel() {
    let Some(ctx) = gpu() else { return };
    let spec = ConvSpec::conv3x3(16, 16, 1, 1);
    let weight = random(spec.weight_shape(), 6);
    let epilogue = Epilogue::bias_relu(vec![0.1; 16]);
    let options = GpuConvOptions {
        kernel: None,
        autotune: Some([1, 16, 12, 12]),
    };
    let plan = GpuConv2dPlan::new(ctx, &spec, &weight, &epilogue, &options).unwrap();
    let tried: Vec<GpuKernel> = plan.tuning().iter().map(|(k, _)| *k).collect();
    assert_eq!(
        tried,
        [
            GpuKernel::Direct,
            GpuKernel::Gemm,
            GpuKernel::GemmWide,
            GpuKernel::WinogradF23,
            GpuKernel::WinogradF43
        ]
    );
    let best = plan
        .tuning()
        .iter()
        .map(|(_, t)| *t)
        .fold(f64::INFINITY, f64::min);
    let chosen = plan
        .tuning()
        .iter()
        .find(|(k, _)| *k == plan.kernel())
        .unwrap()
        .1;
    assert_eq!(chosen, best);
    // 16 -> 16 channels: 9 taps (direct, GEMM) or 16 / 36 transform positions (Winograd
    // F(2,3) / F(4,3)) of 16x16.
    let positions = match plan.kernel() {
        GpuKernel::WinogradF23 => 16,
        GpuKernel::WinogradF43 => 36,
        _ => 9,
    };
    assert_eq!(plan.packed_weight_bytes(), positions * 16 * 16 * 4);
    let input = random([1, 16, 12, 12], 7);
    let expected = reference::conv2d(&input, &spec, &weight, &epilogue).unwrap();
    let tol = Tolerance::for_reduction(spec.reduction_len(), plan.kernel().error_factor());
    assert_close(
        &run_plan(ctx, &plan, &input),
        &expected,
        &tol,
        "autotuned plan",
    );
}

/// Autotuning skips a candidate that does not fit the binding limit instead of failing: with
/// 16 KiB bindings and 16 -> 16 channels on 12x12, F(4,3)'s weights (36·16·16·4 B = 36 KiB) and
/// F(2,3)'s transformed input (16 positions · 36 tiles · 16 · 4 B = 36 KiB for the one image)
/// do not fit, the direct and GEMM kernels (9 KiB of weights) do. Where nothing fits, the
/// binding-limit error comes back.
#[test]
fn autotune_skips_candidates_above_the_binding_limit() {
    let Some(_) = gpu() else { return };
    let small = small_context();
    let spec = ConvSpec::conv3x3(16, 16, 1, 1);
    let weight = random(spec.weight_shape(), 8);
    let epilogue = Epilogue::bias_relu(vec![0.1; 16]);
    let options = GpuConvOptions {
        kernel: None,
        autotune: Some([1, 16, 12, 12]),
    };
    let plan = GpuConv2dPlan::new(&small, &spec, &weight, &epilogue, &options).unwrap();
    let tried: Vec<GpuKernel> = plan.tuning().iter().map(|(k, _)| *k).collect();
    assert_eq!(
        tried,
        [GpuKernel::Direct, GpuKernel::Gemm, GpuKernel::GemmWide]
    );
    let input = random([1, 16, 12, 12], 9);
    let expected = reference::conv2d(&input, &spec, &weight, &epilogue).unwrap();
    let tol = Tolerance::for_reduction(spec.reduction_len(), plan.kernel().error_factor());
    assert_close(
        &run_plan(&small, &plan, &input),
        &expected,
        &tol,
        "autotuned under a small binding limit",
    );
    // 16 -> 64 channels: 36 KiB of weights for every kernel.
    let wide = ConvSpec::conv3x3(16, 64, 1, 1);
    let err = GpuConv2dPlan::new(
        &small,
        &wide,
        &random(wide.weight_shape(), 10),
        &Epilogue::none(),
        &options,
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            GpuError::TooLarge {
                operand: "weight",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn auto_picks_direct_for_the_stem_winograd_for_stride_1_and_gemm_otherwise() {
    let cases = [
        (ConvSpec::conv3x3(3, 48, 2, 1), GpuKernel::Direct),
        (ConvSpec::conv3x3(48, 48, 1, 1), GpuKernel::WinogradF23),
        (ConvSpec::conv3x3(48, 96, 2, 1), GpuKernel::Gemm),
        (ConvSpec::conv1x1(48, 48, 1, 1), GpuKernel::Gemm),
        (ConvSpec::conv3x3(64, 64, 1, 4), GpuKernel::WinogradF23),
        (ConvSpec::conv3x3(64, 32, 1, 4), GpuKernel::Gemm),
        (ConvSpec::conv3x3(32, 32, 1, 4), GpuKernel::Direct),
    ];
    for (spec, expected) in cases {
        assert_eq!(GpuKernel::for_spec(&spec), expected, "{spec:?}");
    }
}
