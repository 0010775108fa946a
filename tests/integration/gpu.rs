//! The GPU path across crates (skips visibly without an adapter; `REPARAM_REQUIRE_GPU=1` makes
//! that a failure, as in CI on lavapipe):
//! 1. the timm fixtures, both forms, run by `repvgg::exec::Gpu` (the whole graph in one
//!    submission), match PyTorch's outputs with the same tolerance as the oracle runs;
//! 2. every distinct RepVGG-A0 layer at full size (224x224 input, batch 1): each GPU kernel
//!    equals the CPU crate's `Auto` plan.
//!
//! # Tolerances
//! (1) uses `fixtures::RUN_TOLERANCE` (derived there for PyTorch's f32 error; ours is of the
//! same order, `√K·u` per conv with `K ≤ 720`, and the two add in quadrature); measured worst
//! values are printed with `--nocapture`. (2) compares two f32 computations, each within its
//! own formula against the oracle, so the bound is their sum: `Tolerance::for_reduction(K,
//! f_gpu + f_cpu)` with `f_cpu = 4` (the CPU crate's factor for F(4,3), the largest `Auto`
//! picks; `reparam_winograd` documents it) and `f_gpu` from `GpuKernel::error_factor`.

use crate::fixtures::{FILES, FIXTURES, RUN_TOLERANCE, check_run, expected, input, load_train};
use reparam_tensor::rng::SplitMix64;
use reparam_tensor::tolerance::{Tolerance, check_close};
use reparam_tensor::{ConvSpec, Epilogue, Tensor};
use reparam_wgsl::{GpuContext, GpuConv2dPlan, GpuConvOptions, GpuKernel, GpuTensor};
use reparam_winograd::{Conv2dPlan, PlanOptions};
use repvgg::exec::Gpu;
use repvgg::stats::{InputSize, ModelStats};
use repvgg::{Config, Executor, Graph, Outputs, StageConfig, fuse};

fn gpu() -> Option<&'static GpuContext> {
    reparam_wgsl::test_support::shared_context()
}

#[test]
fn fixtures_run_on_the_gpu_match_pytorch() {
    let Some(ctx) = gpu() else { return };
    for (fixture, _) in FIXTURES {
        let (naming, train_file, _) = FILES[0];
        let train = load_train(fixture, train_file, naming);
        let x = input(fixture);
        let multi = Graph::multi_branch(&train).expect("multi-branch graph");
        let plain = Graph::plain(&fuse(&train).expect("fold")).expect("plain graph");
        let kernels = [
            GpuKernel::Auto,
            GpuKernel::Naive,
            GpuKernel::Direct,
            GpuKernel::Gemm,
            GpuKernel::GemmWide,
        ];
        for kernel in kernels {
            let options = GpuConvOptions {
                kernel: Some(kernel),
                autotune: None,
            };
            for (form, graph, prefix) in [
                ("multi-branch", &multi, "train_time"),
                ("plain", &plain, "deploy"),
            ] {
                let context = format!(
                    "{fixture} {form} on {} ({})",
                    ctx.summary().name,
                    kernel.name()
                );
                let exec = Executor::new(Gpu::new(ctx, options.clone()), graph)
                    .unwrap_or_else(|e| panic!("{context}: {e}"))
                    .with_outputs(Outputs::ALL);
                let out = exec.run(&x).unwrap_or_else(|e| panic!("{context}: {e}"));
                let (labels, timings) = exec.backend().last_run().expect("one submission");
                assert_eq!(
                    labels.len(),
                    graph.nodes().len(),
                    "{context}: every node is one op of the submission"
                );
                assert!(timings.wall_ms > 0.0);
                let comparisons = check_run(&context, &out, &expected(fixture, prefix));
                let worst = comparisons
                    .iter()
                    .map(|(_, c)| c.rel_l2)
                    .fold(0.0, f64::max);
                println!(
                    "{context}: worst rel_L2 {worst:.2e} (bound {:.0e})",
                    RUN_TOLERANCE.rel_l2
                );
            }
        }
    }
}

/// Runs every distinct A0 layer (224x224) with the CPU crate's `Auto` plan and with each GPU
/// kernel that supports it, and compares them.
#[test]
fn gpu_kernels_equal_the_cpu_crate_on_a0_layers() {
    let Some(ctx) = gpu() else { return };
    let config = Config::official("a0").expect("a0");
    let stats = ModelStats::new(&config, InputSize::square(224)).expect("224");
    let mut seen: Vec<(ConvSpec, (usize, usize))> = Vec::new();
    let mut failures = Vec::new();
    for (block, row) in config.blocks().iter().zip(&stats.blocks) {
        let spec = block.conv3x3();
        if seen.contains(&(spec, row.input_hw)) {
            continue;
        }
        seen.push((spec, row.input_hw));
        let (h, w) = row.input_hw;
        let mut rng = SplitMix64::new(seen.len() as u64);
        let mut random =
            |shape| Tensor::from_fn(shape, |_, _, _, _| rng.uniform(-1.0, 1.0)).unwrap();
        let input = random([1, spec.in_channels, h, w]);
        let weight = random(spec.weight_shape());
        let bias = random([1, spec.out_channels, 1, 1]).into_data();
        let epilogue = Epilogue::bias_relu(bias);
        let cpu_plan =
            Conv2dPlan::new(spec, &weight, &epilogue, &PlanOptions::default()).expect("cpu plan");
        let out_shape = spec.output_shape(input.shape()).unwrap();
        let mut cpu = Tensor::zeros(out_shape).unwrap();
        cpu_plan.run(&input, &mut cpu, None).expect("cpu run");
        let x = GpuTensor::upload(ctx, &input).unwrap();
        for kernel in [
            GpuKernel::Direct,
            GpuKernel::Gemm,
            GpuKernel::GemmWide,
            GpuKernel::WinogradF23,
        ] {
            if !kernel.supports(&spec) {
                continue;
            }
            let options = GpuConvOptions {
                kernel: Some(kernel),
                autotune: None,
            };
            let plan = GpuConv2dPlan::new(ctx, &spec, &weight, &epilogue, &options).unwrap();
            let y = GpuTensor::zeros(ctx, out_shape).unwrap();
            y.fill(ctx, f32::NAN).unwrap();
            plan.run(ctx, &x, &y).unwrap();
            let gpu_out = y.download(ctx).unwrap();
            let tol = Tolerance::for_reduction(spec.reduction_len(), kernel.error_factor() + 4.0);
            let context = format!(
                "a0 layer {}->{} {h}x{w} s{}: gpu {} vs cpu {}",
                spec.in_channels,
                spec.out_channels,
                spec.stride,
                kernel.name(),
                cpu_plan.algorithm().name()
            );
            match check_close(&gpu_out, &cpu, &tol, &context) {
                Ok(cmp) => println!("{context}: {cmp}"),
                Err(msg) => failures.push(msg),
            }
        }
    }
    assert_eq!(seen.len(), 8, "A0 has 8 distinct conv layers at 224x224");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Two executors over graphs of the same architecture with different weights each run their own
/// weights (plans are built per executor, never shared by geometry).
#[test]
fn a_second_graph_of_the_same_architecture_runs_its_own_weights_on_the_gpu() {
    let Some(ctx) = gpu() else { return };
    let config = Config::custom(8, vec![StageConfig::dense(16, 2)], 6, None).expect("config");
    let x = Tensor::from_fn([1, 3, 12, 12], |_, c, h, w| {
        (c + h * 3 + w) as f32 / 20.0 - 0.5
    })
    .expect("input");
    let mut logits = Vec::new();
    for seed in [1, 2] {
        let graph = Graph::plain(&fuse(&repvgg::TrainNet::random(&config, seed)).unwrap()).unwrap();
        let exec = Executor::new(Gpu::new(ctx, GpuConvOptions::default()), &graph).expect("gpu");
        let got = exec.run(&x).expect("gpu run").logits;
        let want = Executor::reference(&graph).unwrap().run(&x).unwrap().logits;
        check_close(&got, &want, &RUN_TOLERANCE, &format!("seed {seed}")).unwrap();
        logits.push(got);
    }
    assert_ne!(logits[0], logits[1]);
}
