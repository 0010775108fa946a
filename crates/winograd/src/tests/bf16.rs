//! [`Precision::Bf16`]: the Winograd GEMM on bf16 transformed weights and inputs (`vdpbf16ps`).
//!
//! # Tolerance
//! The f32 bound of the layer ([`tolerance`]) plus the terms of [`Precision::error_terms`] for
//! bf16 (see there). The largest errors the sweep measures are printed (a visible line per
//! algorithm) next to those bounds. On a CPU without AVX512-BF16 the kernel tests print a
//! visible `SKIP` line; the refusal is tested everywhere.
//!
//! Every case goes through `check_plan` (caller scratch, blocked and NCHW layouts, a second
//! run) and runs on 2 and 3 threads bitwise equal to 1, so the bf16 GEMM runs under each
//! Winograd schedule: two phases, band-major on several threads, and multi-image passes for
//! the batches of small images (the test checks that each was taken).

use super::precision::assert_halves_bytes_and_changes_result;
use super::{Data, Oracle, check_plan, options, same_bits, seed_of, tolerance, visible};
use crate::{Algorithm, Conv2dPlan, ConvError, Isa, Parallelism, Precision};
use rayon::ThreadPoolBuilder;
use reparam_tensor::tolerance::{Tolerance, compare_floored};
use reparam_tensor::{ConvSpec, Epilogue, Tensor};

const WINOGRAD: [Algorithm; 3] = [
    Algorithm::WinogradF23,
    Algorithm::WinogradF43,
    Algorithm::WinogradF63,
];

/// Options for `algorithm` on `isa` with bf16 operands.
fn bf16_options(algorithm: Algorithm, isa: Isa) -> crate::PlanOptions {
    crate::PlanOptions {
        precision: Precision::Bf16,
        ..options(algorithm, isa)
    }
}

/// The tolerance of a bf16 plan of `spec` with `algorithm`.
fn bf16_tolerance(spec: &ConvSpec, algorithm: Algorithm) -> Tolerance {
    let f32_bound = tolerance(spec, algorithm);
    let (l2, max) = Precision::Bf16.error_terms(algorithm.error_factor());
    Tolerance::new(f32_bound.max_rel + max, f32_bound.rel_l2 + l2)
}

/// Whether this CPU runs the bf16 GEMM; prints a visible `SKIP` line for `test` if not.
fn bf16_available(test: &str) -> bool {
    let spec = ConvSpec::conv3x3(16, 16, 1, 1);
    let data = Data::network(&spec, [1, 16, 4, 4], 1);
    let epilogue = Epilogue::bias_relu(data.bias.clone());
    let opts = bf16_options(Algorithm::WinogradF23, Isa::Avx512f);
    match Conv2dPlan::new(spec, &data.w, &epilogue, &opts) {
        Ok(_) => true,
        Err(e) => {
            visible(&format!("SKIP {test}: {e}"));
            false
        }
    }
}

#[test]
fn bf16_stays_within_its_bound() {
    if !bf16_available("bf16_stays_within_its_bound") {
        return;
    }
    let cases = [
        (
            "48->48 28x28",
            ConvSpec::conv3x3(48, 48, 1, 1),
            [1, 48, 28, 28],
        ),
        (
            "96->96 14x14 batch 4",
            ConvSpec::conv3x3(96, 96, 1, 1),
            [4, 96, 14, 14],
        ),
        (
            "64->48 56x56",
            ConvSpec::conv3x3(64, 48, 1, 1),
            [1, 64, 56, 56],
        ),
        (
            "14->18 9x10",
            ConvSpec::conv3x3(14, 18, 1, 1),
            [1, 14, 9, 10],
        ),
        (
            "16->24 g2 6x7 batch 5",
            ConvSpec::conv3x3(16, 24, 1, 2),
            [5, 16, 6, 7],
        ),
    ];
    // Worst (rel_L2, max rᵢ) per algorithm over the cases, with the case's bound.
    let mut worst = [(0.0f64, 0.0f64, Tolerance::new(0.0, 0.0)); 3];
    let pools: Vec<_> = [2, 3]
        .map(|n| (n, ThreadPoolBuilder::new().num_threads(n).build().unwrap()))
        .into();
    let (mut band_major, mut passes) = (false, false);
    for (name, spec, input) in cases {
        let data = Data::network(&spec, input, seed_of(name));
        let epilogue = Epilogue::bias_relu(data.bias.clone());
        let oracle = Oracle::new(&data.x, &spec, &data.w, &epilogue).expect("oracle");
        for (a, algorithm) in WINOGRAD.into_iter().enumerate() {
            let context = format!("`{name}`: {algorithm} with bf16 operands");
            let opts = bf16_options(algorithm, Isa::Avx512f);
            let plan = Conv2dPlan::new(spec, &data.w, &epilogue, &opts)
                .unwrap_or_else(|e| panic!("{context}: {e}"));
            assert_eq!(plan.precision(), Precision::Bf16, "{context}");
            let tol = bf16_tolerance(&spec, algorithm);
            check_plan(&plan, &data.x, &oracle, &tol, &context).unwrap_or_else(|m| panic!("{m}"));
            let mut out = Tensor::zeros(oracle.value.shape()).expect("shape");
            plan.run(&data.x, &mut out, None).expect("run");
            let cmp = compare_floored(&out, &oracle.value, &oracle.floor).expect("shape");
            let w = &mut worst[a];
            if cmp.rel_l2 > w.0 {
                (w.0, w.2) = (cmp.rel_l2, tol);
            }
            w.1 = w.1.max(cmp.max_rel);
            let threaded = crate::PlanOptions {
                parallelism: Parallelism::Rayon,
                ..opts
            };
            let plan = Conv2dPlan::new(spec, &data.w, &epilogue, &threaded).unwrap();
            for (n, pool) in &pools {
                let mut out_n = Tensor::zeros(oracle.value.shape()).expect("shape");
                pool.install(|| {
                    band_major |= plan.is_band_major(data.x.shape()).unwrap();
                    passes |= plan.runs_in_passes(data.x.shape()).unwrap();
                    plan.run(&data.x, &mut out_n, None).expect("run");
                });
                same_bits(&out_n, &out, &format!("{context}: {n} threads vs 1"))
                    .unwrap_or_else(|m| panic!("{m}"));
            }
        }
    }
    assert!(band_major, "no case ran band-major");
    assert!(passes, "no case ran in multi-image passes");
    for (algorithm, (l2, max, tol)) in WINOGRAD.into_iter().zip(worst) {
        visible(&format!(
            "bf16, {algorithm}: worst rel-L2 {l2:.2e} (bound {:.2e}), worst max rel {max:.2e} (bound {:.2e})",
            tol.rel_l2, tol.max_rel
        ));
        // bf16 keeps 8 significant bits: a result this close to f32 was not computed in bf16.
        assert!(
            l2 > 1e-4,
            "{algorithm}: rel-L2 {l2:.2e}, so the operands were not rounded to bf16"
        );
    }
}

#[test]
fn bf16_halves_the_stored_bytes_and_changes_the_result() {
    if !bf16_available("bf16_halves_the_stored_bytes_and_changes_the_result") {
        return;
    }
    let spec = ConvSpec::conv3x3(32, 32, 1, 1);
    let data = Data::network(&spec, [1, 32, 12, 12], 5);
    for algorithm in WINOGRAD {
        let bf16 = bf16_options(algorithm, Isa::Avx512f);
        assert_halves_bytes_and_changes_result(spec, &data, &bf16, "-bf16");
    }
}

#[test]
fn bf16_is_refused_where_it_cannot_run() {
    let spec = ConvSpec::conv3x3(16, 16, 1, 1);
    let data = Data::network(&spec, [1, 16, 8, 8], 3);
    let epilogue = Epilogue::bias_relu(data.bias.clone());
    // Another ISA forced: a typed error naming the precision, on every machine.
    for isa in Isa::available().into_iter().filter(|&i| i != Isa::Avx512f) {
        let opts = bf16_options(Algorithm::WinogradF43, isa);
        match Conv2dPlan::new(spec, &data.w, &epilogue, &opts) {
            Err(ConvError::PrecisionUnavailable { precision, reason }) => {
                assert_eq!(precision, "bf16", "{isa}");
                assert!(reason.contains(isa.name()), "{isa}: {reason}");
            }
            other => panic!("{isa}: expected PrecisionUnavailable, got {other:?}"),
        }
        // Direct convolution keeps f32 and says so.
        let direct = bf16_options(Algorithm::Direct, isa);
        let plan = Conv2dPlan::new(spec, &data.w, &epilogue, &direct).unwrap();
        assert_eq!(plan.precision(), Precision::F32, "direct on {isa}");
    }
    if !bf16_available("bf16_is_refused_where_it_cannot_run (odd channel counts)") {
        return;
    }
    // An odd number of input channels per group has no bf16 pairs.
    let odd = ConvSpec::conv3x3(13, 16, 1, 1);
    let data = Data::network(&odd, [1, 13, 8, 8], 4);
    let epilogue = Epilogue::bias_relu(data.bias.clone());
    let opts = bf16_options(Algorithm::WinogradF23, Isa::Avx512f);
    match Conv2dPlan::new(odd, &data.w, &epilogue, &opts) {
        Err(ConvError::PrecisionUnavailable { precision, reason }) => {
            assert_eq!(precision, "bf16");
            assert!(reason.contains("even"), "{reason}");
        }
        other => panic!("13 input channels: expected PrecisionUnavailable, got {other:?}"),
    }
}
