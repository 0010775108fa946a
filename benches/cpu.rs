//! CPU benchmarks: `conv3x3` over every distinct RepVGG-A0/B0 layer with the `reparam-winograd`
//! plans.
//!
//! The sweep, for each layer of [`shapes::repvgg_layers`] at 224x224:
//! - batch 1; stride-1 layers also batch 8;
//! - every eligible algorithm: direct everywhere, Winograd F(2,3), F(4,3), F(6,3) on stride-1;
//! - AVX-512F and AVX2+FMA where this CPU has them (scalar and NEON are not timed; an ISA this CPU
//!   lacks is reported as SKIPPED on stderr, never silently dropped);
//! - rayon pools of 1 and 2 threads (`-t1`, `-t2`);
//! - f32 weights, and for the Winograd algorithm `auto` picks on a stride-1 layer also f16
//!   transformed weights (`Precision::F16Weights`; kernel ids end in `-f16w`) and, on AVX-512F
//!   CPUs with AVX512-BF16, bf16 operands (`Precision::Bf16`; ids end in `-bf16`).
//!
//! The layout is the one the network engine runs (and `reparam layers` times by default):
//! NCHWc activations in and out (the block width the plan picks for its ISA); the stem, which
//! reads the image, takes it as NCHW (the compact RGB path).
//! Plans, weights and tensors (the blocked copies included) are built outside the timed region;
//! the timed region is one run inside the pool (`iter_custom`, so the hop onto the pool's thread
//! is paid once per sample, not per iteration). Weights, bias and input are seeded
//! uniform values (never all-zero or constant), so no kernel can shortcut on the data.

use crate::shapes::{self, ModelLayer};
use criterion::{BenchmarkId, Criterion, Throughput};
use reparam_tensor::BlockedTensor;
use reparam_winograd::{Algorithm, Conv2dPlan, Isa, Parallelism, PlanOptions, Precision, auto};
use std::hint::black_box;
use std::time::Instant;

/// The models whose layers are timed.
const MODELS: [&str; 2] = ["a0", "b0"];
/// Input side of the networks (the size every official model is reported at).
const INPUT: usize = 224;
/// The ISAs timed, when available.
const ISAS: [Isa; 2] = [Isa::Avx512f, Isa::Avx2Fma];
/// Rayon pool sizes.
const THREADS: [usize; 2] = [1, 2];
/// The batch stride-1 layers are also timed at (activations leave L2).
const LARGE_BATCH: usize = 8;

/// The precisions timed for `algorithm` on `layer`: f32, plus f16 weights and (where `isa`
/// runs it) bf16 for the Winograd algorithm `auto` chooses there.
fn precisions(layer: &ModelLayer, algorithm: Algorithm, isa: Isa) -> Vec<Precision> {
    let chosen = auto::choose(&layer.layer.spec, Some(layer.layer.input_hw), isa);
    if algorithm != Algorithm::Direct && algorithm == chosen {
        [Precision::F32, Precision::F16Weights, Precision::Bf16]
            .into_iter()
            .filter(|p| p.runs_on(isa))
            .collect()
    } else {
        vec![Precision::F32]
    }
}

/// The algorithms that can run `layer`.
fn algorithms(layer: &ModelLayer) -> &'static [Algorithm] {
    if layer.layer.spec.stride == 1 {
        &Algorithm::CONCRETE
    } else {
        &[Algorithm::Direct]
    }
}

/// Registers the `conv3x3` group.
pub fn conv3x3(c: &mut Criterion) {
    let isas: Vec<Isa> = ISAS
        .into_iter()
        .filter(|isa| {
            let ok = isa.is_available();
            if !ok {
                eprintln!("SKIPPED conv3x3/*-{isa}: this CPU does not support {isa}");
            }
            ok
        })
        .collect();
    let pools: Vec<(usize, rayon::ThreadPool)> = THREADS
        .into_iter()
        .map(|t| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(t)
                .thread_name(move |i| format!("bench-t{t}-{i}"))
                .build()
                .expect("a rayon pool");
            (t, pool)
        })
        .collect();

    let mut group = shapes::layer_group(c, "conv3x3");

    for (index, layer) in shapes::repvgg_layers(&MODELS, INPUT).iter().enumerate() {
        let (weight, epilogue) = layer.layer.synthetic_weights(0x5EED_0000 + index as u64);
        let batches: &[usize] = if layer.layer.spec.stride == 1 {
            &[1, LARGE_BATCH]
        } else {
            &[1]
        };
        for &batch in batches {
            let input = layer
                .layer
                .synthetic_input(batch, 0x1A9E_0000 + index as u64)
                .expect("a valid input");
            let shape_name = match batch {
                1 => layer.name(),
                n => format!("{}-n{n}", layer.name()),
            };
            group.throughput(Throughput::Elements(layer.flops(batch)));
            for &isa in &isas {
                for (algorithm, precision) in algorithms(layer)
                    .iter()
                    .flat_map(|&a| precisions(layer, a, isa).into_iter().map(move |p| (a, p)))
                {
                    let options = PlanOptions {
                        algorithm,
                        isa: Some(isa),
                        parallelism: Parallelism::Rayon,
                        input_hw: Some(layer.layer.input_hw),
                        autotune: false,
                        precision,
                    };
                    let plan = Conv2dPlan::new(layer.layer.spec, &weight, &epilogue, &options)
                        .unwrap_or_else(|e| panic!("{shape_name} {algorithm} {isa}: {e}"));
                    assert_eq!((plan.algorithm(), plan.isa()), (algorithm, isa));
                    let out_shape = plan
                        .output_shape(input.shape())
                        .expect("the input fits the layer");
                    let blocked_input = BlockedTensor::from_nchw(&input, plan.block())
                        .expect("a valid blocked input");
                    let mut output =
                        BlockedTensor::zeros(out_shape, plan.block()).expect("a valid output");
                    let reads_image = layer.layer.reads_image;
                    for (threads, pool) in &pools {
                        let kernel = pool
                            .install(|| plan.kernel_name(input.shape()))
                            .expect("the input fits the layer");
                        let id = BenchmarkId::new(kernel, format!("{shape_name}-t{threads}"));
                        group.bench_function(id, |b| {
                            b.iter_custom(|iters| {
                                pool.install(|| {
                                    let start = Instant::now();
                                    for _ in 0..iters {
                                        if reads_image {
                                            plan.run(
                                                black_box(&input),
                                                black_box(&mut output),
                                                None,
                                            )
                                        } else {
                                            plan.run(
                                                black_box(&blocked_input),
                                                black_box(&mut output),
                                                None,
                                            )
                                        }
                                        .expect("the run succeeds");
                                    }
                                    start.elapsed()
                                })
                            })
                        });
                    }
                }
            }
        }
    }
    group.finish();
}
