//! Kernel tests against `reparam_tensor::reference` (the f64 oracle).
//!
//! Tolerance: [`Tolerance::for_reduction`] with `K = (C_in/g)·k²` and an algorithm factor
//! ([`algorithm_factor`]) covering the extra rounding of the transforms.

use crate::{Algorithm, Conv2dPlan, Isa, Parallelism, PlanOptions};
use reparam_tensor::reference::conv2d;
use reparam_tensor::rng::SplitMix64;
use reparam_tensor::tolerance::{Tolerance, assert_close};
use reparam_tensor::{BlockedTensor, ConvSpec, Epilogue, Tensor};

/// Error growth of each algorithm relative to direct summation, from `reference/winograd.md`
/// §4.2 (F(2,3) ≈ direct, F(4,3) with √2 points ≈ 2x, F(6,3) ≈ 10x) with headroom for the
/// constants' f32 rounding.
pub(crate) fn algorithm_factor(a: Algorithm) -> f64 {
    match a {
        Algorithm::Auto | Algorithm::Direct => 1.0,
        Algorithm::WinogradF23 => 2.0,
        Algorithm::WinogradF43 => 4.0,
        Algorithm::WinogradF63 => 16.0,
    }
}

fn random(shape: [usize; 4], rng: &mut SplitMix64, lo: f32) -> Tensor {
    let len = shape.iter().product();
    Tensor::new(shape, rng.uniform_vec(len, lo, 1.0)).unwrap()
}

/// Runs one case on every available ISA and the given algorithm; panics with context on failure.
fn check(spec: ConvSpec, input: [usize; 4], algorithm: Algorithm, seed: u64) {
    let mut rng = SplitMix64::new(seed);
    let x = random(input, &mut rng, 0.0);
    let w = random(spec.weight_shape(), &mut rng, -1.0);
    let epilogue = Epilogue::bias_relu(rng.uniform_vec(spec.out_channels, -0.5, 0.5));
    let expected = conv2d(&x, &spec, &w, &epilogue).unwrap();
    let tol = Tolerance::for_reduction(spec.reduction_len(), algorithm_factor(algorithm));
    for isa in Isa::available() {
        let options = PlanOptions {
            algorithm,
            isa: Some(isa),
            parallelism: Parallelism::Sequential,
            ..PlanOptions::default()
        };
        let plan = Conv2dPlan::new(spec, &w, &epilogue, &options).unwrap();
        let mut out = Tensor::filled(expected.shape(), f32::NAN).unwrap();
        plan.run(&x, &mut out).unwrap();
        assert_close(
            &out,
            &expected,
            &tol,
            &format!("{isa} {algorithm} {spec:?} input {input:?}"),
        );
        // The blocked entry point gives the same numbers.
        let xb = BlockedTensor::from_nchw(&x, plan.block()).unwrap();
        let mut ob = BlockedTensor::zeros(expected.shape(), plan.block()).unwrap();
        ob.data_mut().fill(f32::NAN);
        plan.run_blocked(&xb, &mut ob).unwrap();
        assert_eq!(ob.to_nchw(), out, "{isa} {algorithm} blocked vs NCHW");
    }
}

#[test]
fn smoke_all_algorithms() {
    for algorithm in Algorithm::CONCRETE {
        check(
            ConvSpec::conv3x3(16, 32, 1, 1),
            [1, 16, 13, 11],
            algorithm,
            1,
        );
        check(ConvSpec::conv3x3(13, 17, 1, 1), [2, 13, 5, 7], algorithm, 2);
        check(ConvSpec::conv3x3(8, 12, 1, 4), [1, 8, 9, 9], algorithm, 3);
    }
    check(
        ConvSpec::conv3x3(3, 48, 2, 1),
        [1, 3, 17, 19],
        Algorithm::Direct,
        4,
    );
    check(
        ConvSpec::conv1x1(20, 24, 2, 2),
        [1, 20, 9, 8],
        Algorithm::Direct,
        5,
    );
}
