//! [`Precision::F16Weights`]: Winograd transformed weights stored as f16.
//!
//! # Tolerance
//! The f32 bound of the layer ([`tolerance`]) plus the terms of [`Precision::error_terms`]:
//! `rel_L2 ≤ f·4u·√K + f·u₁₆` and `max rᵢ ≤ f·32u·√K + 8·f·u₁₆`, with `u₁₆ = 2⁻¹¹` and the
//! algorithm factor `f` (2, 4, 16 for F(2,3), F(4,3), F(6,3)). The largest errors the sweep
//! measures are printed (a visible line per algorithm) next to those bounds.
//!
//! Every case also goes through `check_plan` (caller scratch, blocked and NCHW layouts, a
//! second run), so the f16 GEMM runs under each Winograd schedule: two phases, band-major on
//! several threads, and multi-image passes for the batches of small images.

use super::{Data, Oracle, check_plan, options, tested_isas, tolerance, visible};
use crate::{Algorithm, Conv2dPlan, ConvError, Precision};
use reparam_tensor::tolerance::{Tolerance, compare_floored};
use reparam_tensor::{ConvSpec, Epilogue, Tensor};

const WINOGRAD: [Algorithm; 3] = [
    Algorithm::WinogradF23,
    Algorithm::WinogradF43,
    Algorithm::WinogradF63,
];

/// Options for `algorithm` on `isa` with f16 weights.
fn f16_options(algorithm: Algorithm, isa: crate::Isa) -> crate::PlanOptions {
    crate::PlanOptions {
        precision: Precision::F16Weights,
        ..options(algorithm, isa)
    }
}

/// The tolerance of an f16-weight plan of `spec` with `algorithm`.
fn f16_tolerance(spec: &ConvSpec, algorithm: Algorithm) -> Tolerance {
    let f32_bound = tolerance(spec, algorithm);
    let (l2, max) = Precision::F16Weights.error_terms(algorithm.error_factor());
    Tolerance::new(f32_bound.max_rel + max, f32_bound.rel_l2 + l2)
}

#[test]
fn f16_weights_stay_within_their_bound() {
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
            "13->17 9x10",
            ConvSpec::conv3x3(13, 17, 1, 1),
            [1, 13, 9, 10],
        ),
        (
            "16->24 g2 6x7 batch 5",
            ConvSpec::conv3x3(16, 24, 1, 2),
            [5, 16, 6, 7],
        ),
    ];
    // Worst (rel_L2, max rᵢ) per algorithm over cases and ISAs, with the case's bound.
    let mut worst = [(0.0f64, 0.0f64, Tolerance::new(0.0, 0.0)); 3];
    for (name, spec, input) in cases {
        let data = Data::network(&spec, input, super::seed_of(name));
        let epilogue = Epilogue::bias_relu(data.bias.clone());
        let oracle = Oracle::new(&data.x, &spec, &data.w, &epilogue).expect("oracle");
        for isa in tested_isas() {
            for (a, algorithm) in WINOGRAD.into_iter().enumerate() {
                let context = format!("`{name}`: {algorithm} on {isa} with f16 weights");
                let plan = Conv2dPlan::new(spec, &data.w, &epilogue, &f16_options(algorithm, isa))
                    .unwrap_or_else(|e| panic!("{context}: {e}"));
                assert_eq!(plan.precision(), Precision::F16Weights, "{context}");
                let tol = f16_tolerance(&spec, algorithm);
                check_plan(&plan, &data.x, &oracle, &tol, &context)
                    .unwrap_or_else(|m| panic!("{m}"));
                let mut out = Tensor::zeros(oracle.value.shape()).expect("shape");
                plan.run(&data.x, &mut out, None).expect("run");
                let cmp = compare_floored(&out, &oracle.value, &oracle.floor).expect("shape");
                let w = &mut worst[a];
                if cmp.rel_l2 > w.0 {
                    (w.0, w.2) = (cmp.rel_l2, tol);
                }
                w.1 = w.1.max(cmp.max_rel);
            }
        }
    }
    for (algorithm, (l2, max, tol)) in WINOGRAD.into_iter().zip(worst) {
        visible(&format!(
            "f16 weights, {algorithm}: worst rel-L2 {l2:.2e} (bound {:.2e}), worst max rel {max:.2e} (bound {:.2e})",
            tol.rel_l2, tol.max_rel
        ));
        assert!(
            l2 > 0.0,
            "{algorithm}: no error at all, so f16 weights were not used"
        );
    }
}

/// A plan with `reduced` options (f16 weights or bf16) against the f32 plan of the same
/// algorithm and ISA: half the stored weight bytes, a kernel name ending in `suffix`, and a
/// result that differs from f32 in at least one bit.
pub(super) fn assert_halves_bytes_and_changes_result(
    spec: ConvSpec,
    data: &Data,
    reduced: &crate::PlanOptions,
    suffix: &str,
) {
    let epilogue = Epilogue::bias_relu(data.bias.clone());
    let (algorithm, isa) = (reduced.algorithm, reduced.isa.expect("an ISA"));
    let f32_plan = Conv2dPlan::new(spec, &data.w, &epilogue, &options(algorithm, isa)).unwrap();
    let plan = Conv2dPlan::new(spec, &data.w, &epilogue, reduced).unwrap();
    let context = format!("{algorithm} on {isa}, {}", reduced.precision);
    assert_eq!(
        2 * plan.packed_weight_bytes(),
        f32_plan.packed_weight_bytes(),
        "{context}"
    );
    let name = plan.kernel_name(data.x.shape()).unwrap();
    assert!(name.ends_with(suffix), "{context}: kernel name {name}");
    let run = |plan: &Conv2dPlan| {
        let mut out = Tensor::zeros(plan.output_shape(data.x.shape()).unwrap()).unwrap();
        plan.run(&data.x, &mut out, None).unwrap();
        out
    };
    assert!(
        super::same_bits(&run(&plan), &run(&f32_plan), &context).is_err(),
        "{context}: gave the f32 result bit for bit"
    );
}

#[test]
fn f16_weights_halve_the_stored_bytes_and_change_the_result() {
    let spec = ConvSpec::conv3x3(32, 32, 1, 1);
    let data = Data::network(&spec, [1, 32, 12, 12], 5);
    let epilogue = Epilogue::bias_relu(data.bias.clone());
    for isa in tested_isas() {
        for algorithm in WINOGRAD {
            let f16 = f16_options(algorithm, isa);
            assert_halves_bytes_and_changes_result(spec, &data, &f16, "-f16w");
        }
        // Direct convolution keeps f32 weights and says so.
        let direct = Conv2dPlan::new(
            spec,
            &data.w,
            &epilogue,
            &f16_options(Algorithm::Direct, isa),
        )
        .unwrap();
        assert_eq!(direct.precision(), Precision::F32, "direct on {isa}");
        let name = direct.kernel_name(data.x.shape()).unwrap();
        assert!(!name.ends_with("-f16w"), "direct on {isa}: {name}");
    }
}

#[test]
fn a_weight_beyond_f16_range_is_a_typed_error() {
    let spec = ConvSpec::conv3x3(8, 8, 1, 1);
    let mut data = Data::network(&spec, [1, 8, 6, 6], 9);
    // F(2,3)'s G has the row [1, 0, 0], so U[0][0] of (oc 5, ic 2) is the tap g[0][0] itself.
    data.w.data_mut()[(5 * 8 + 2) * 9] = 1.0e5;
    let epilogue = Epilogue::bias_relu(data.bias.clone());
    for isa in tested_isas() {
        let f16 = f16_options(Algorithm::WinogradF23, isa);
        match Conv2dPlan::new(spec, &data.w, &epilogue, &f16) {
            Err(ConvError::WeightOutOfRange {
                out_channel, value, ..
            }) => {
                assert_eq!(out_channel, 5, "{isa}");
                assert_eq!(value, 1.0e5, "{isa}");
            }
            other => panic!("{isa}: expected WeightOutOfRange, got {other:?}"),
        }
        // f32 weights take it.
        Conv2dPlan::new(
            spec,
            &data.w,
            &epilogue,
            &options(Algorithm::WinogradF23, isa),
        )
        .unwrap();
    }
}

#[test]
fn precision_names_parse_back() {
    for p in [Precision::F32, Precision::F16Weights, Precision::Bf16] {
        assert_eq!(Precision::parse(p.name()), Ok(p));
        assert_eq!(p.to_string(), p.name());
    }
    assert_eq!(Precision::parse("F16"), Ok(Precision::F16Weights));
    assert!(matches!(
        Precision::parse("fp8"),
        Err(ConvError::UnknownPrecision { value }) if value == "fp8"
    ));
}
