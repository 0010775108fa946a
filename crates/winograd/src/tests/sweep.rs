//! A `proptest` sweep over shapes: channels 1..=40, groups from the common divisors, H and W
//! 1..=20, N 1..=2, kernel 1 or 3, stride 1..=2, bias on or off, and the algorithm (Winograd
//! only where eligible; a Winograd pick on an ineligible spec checks the refusal instead).
//! Every case runs on every available ISA with ReLU off and on (see [`super::try_check`]).
//!
//! A failure prints the shrunk case; add it to [`super::edge`] as a named regression test.

use super::{Bias, try_check};
use crate::Algorithm;
use proptest::prelude::*;
use proptest::test_runner::Config;
use reparam_tensor::{ConvSpec, Shape};

/// Cases per run: each is ~3 ISAs × 2 epilogues × (1 or 2) algorithms of small convolutions,
/// which keeps the sweep at a few seconds in `--release`.
const CASES: u32 = 256;

#[derive(Debug, Clone)]
struct Case {
    spec: ConvSpec,
    input: Shape,
    algorithm: Algorithm,
    bias: bool,
    seed: u64,
}

fn divisors_of_both(a: usize, b: usize) -> Vec<usize> {
    (1..=a.min(b))
        .filter(|g| a.is_multiple_of(*g) && b.is_multiple_of(*g))
        .collect()
}

fn case() -> impl Strategy<Value = Case> {
    (1usize..=40, 1usize..=40)
        .prop_flat_map(|(cin, cout)| {
            (
                Just(cin),
                Just(cout),
                prop::sample::select(divisors_of_both(cin, cout)),
                prop_oneof![Just(1usize), Just(3usize)],
                1usize..=2,
                1usize..=20,
                1usize..=20,
                1usize..=2,
                prop::sample::select(Algorithm::CONCRETE.to_vec()),
                any::<bool>(),
                any::<u64>(),
            )
        })
        .prop_map(
            |(cin, cout, groups, kernel, stride, h, w, n, algorithm, bias, seed)| {
                let spec = if kernel == 3 {
                    ConvSpec::conv3x3(cin, cout, stride, groups)
                } else {
                    ConvSpec::conv1x1(cin, cout, stride, groups)
                };
                Case {
                    spec,
                    input: [n, cin, h, w],
                    algorithm,
                    bias,
                    seed,
                }
            },
        )
}

proptest! {
    #![proptest_config(Config {
        cases: CASES,
        // A failure becomes a named test in `edge.rs`; do not write files into `src/`.
        failure_persistence: None,
        ..Config::default()
    })]

    #[test]
    fn sweep_against_oracle(case in case()) {
        // The chosen algorithm, plus direct as the baseline the others must agree with.
        let algorithms: Vec<Algorithm> = if case.algorithm == Algorithm::Direct {
            vec![Algorithm::Direct]
        } else {
            vec![case.algorithm, Algorithm::Direct]
        };
        let bias = if case.bias { Bias::Yes } else { Bias::No };
        let name = format!("sweep {case:?}");
        let result = try_check(&name, case.spec, case.input, &algorithms, bias, case.seed);
        prop_assert!(result.is_ok(), "{}", result.unwrap_err());
    }
}
