//! The plan API: caller-provided scratch, the blocked layout, typed errors for every bad input
//! (never a panic), `Auto`, autotuning, ISA selection and the `REPARAM_ISA` override.

use super::{
    ALL, Data, Oracle, check_plan, options, tested_isas, tolerance, visible, winograd_eligible,
};
use crate::{Algorithm, Conv2dPlan, ConvError, ENV_ISA, Isa, Parallelism, PlanOptions};
use reparam_tensor::{
    ALIGN_FLOATS, BLOCK_SIZES, BlockedTensor, ConvSpec, Epilogue, Tensor, TensorError,
};
use std::fmt;
use std::process::Command;

/// A small layer every algorithm can run, with its data.
fn small() -> (ConvSpec, Data) {
    let spec = ConvSpec::conv3x3(13, 17, 1, 1);
    (spec, Data::signed(&spec, [2, 13, 9, 10], 5))
}

fn bias_relu(data: &Data) -> Epilogue {
    Epilogue::bias_relu(data.bias.clone())
}

/// `Err(Tensor(ShapeMismatch { operand }))`?
fn is_shape_mismatch<T>(r: &Result<T, ConvError>, operand: &str) -> bool {
    matches!(r, Err(ConvError::Tensor(TensorError::ShapeMismatch { operand: o, .. })) if *o == operand)
}

/// `Err(Tensor(Invalid { field }))`?
fn is_invalid<T>(r: &Result<T, ConvError>, field: &str) -> bool {
    matches!(r, Err(ConvError::Tensor(TensorError::Invalid { field: f, .. })) if *f == field)
}

#[test]
fn scratch_of_exactly_scratch_len_works_at_any_start_and_one_less_is_refused() {
    let (spec, data) = small();
    let ep = bias_relu(&data);
    for isa in tested_isas() {
        for &algorithm in ALL {
            let plan = Conv2dPlan::new(spec, &data.w, &ep, &options(algorithm, isa)).unwrap();
            let ctx = format!("{algorithm} on {isa}");
            let shape = data.x.shape();
            let len = plan
                .scratch_len(shape, rayon::current_num_threads())
                .unwrap();
            assert!(len > 0, "{ctx}");
            let mut expected = Tensor::zeros(plan.output_shape(shape).unwrap()).unwrap();
            plan.run(&data.x, &mut expected, None).unwrap();

            // NCHW: exactly `len` works (and gives the same bits), `len - 1` and 0 are refused.
            let mut out = Tensor::filled(expected.shape(), f32::NAN).unwrap();
            let mut scratch = vec![f32::NAN; len];
            plan.run(&data.x, &mut out, Some(&mut scratch))
                .unwrap_or_else(|e| panic!("{ctx}: exact scratch: {e}"));
            assert_eq!(out, expected, "{ctx}");
            let mut longer = vec![1.0e30; len + 100];
            plan.run(&data.x, &mut out, Some(&mut longer)).unwrap();
            assert_eq!(out, expected, "{ctx}: longer scratch");
            // Wherever the buffer starts relative to a cache line, `len` floats are enough and
            // the result is the same.
            for start in 0..ALIGN_FLOATS {
                out.data_mut().fill(f32::NAN);
                plan.run(&data.x, &mut out, Some(&mut longer[start..][..len]))
                    .unwrap_or_else(|e| panic!("{ctx}: scratch at +{start}: {e}"));
                assert_eq!(out, expected, "{ctx}: scratch at +{start}");
            }
            for short in [len - 1, 0] {
                let r = plan.run(&data.x, &mut out, Some(&mut scratch[..short]));
                assert_eq!(
                    r,
                    Err(ConvError::ScratchTooSmall {
                        needed: len,
                        actual: short
                    }),
                    "{ctx}"
                );
            }

            // NCHWc: the same length rule.
            let xb = BlockedTensor::from_nchw(&data.x, plan.block()).unwrap();
            let mut ob = BlockedTensor::zeros(expected.shape(), plan.block()).unwrap();
            plan.run(&xb, &mut ob, Some(&mut scratch))
                .unwrap_or_else(|e| panic!("{ctx}: exact blocked scratch: {e}"));
            assert_eq!(ob.to_nchw(), expected, "{ctx}: blocked");
            let r = plan.run(&xb, &mut ob, Some(&mut scratch[..len - 1]));
            assert_eq!(
                r,
                Err(ConvError::ScratchTooSmall {
                    needed: len,
                    actual: len - 1
                }),
                "{ctx}: blocked"
            );

            // NCHW in, NCHWc out: the same length rule.
            ob.data_mut().fill(f32::NAN);
            plan.run(&data.x, &mut ob, Some(&mut scratch))
                .unwrap_or_else(|e| panic!("{ctx}: exact NCHW-to-blocked scratch: {e}"));
            assert_eq!(ob.to_nchw(), expected, "{ctx}: NCHW to blocked");
            let r = plan.run(&data.x, &mut ob, Some(&mut scratch[..len - 1]));
            assert_eq!(
                r,
                Err(ConvError::ScratchTooSmall {
                    needed: len,
                    actual: len - 1
                }),
                "{ctx}: NCHW to blocked"
            );
        }
    }
}

/// One plan runs inputs of different sizes (its own scratch grows, then is reused for a smaller
/// input), each correct.
#[test]
fn one_plan_runs_many_input_sizes() {
    let spec = ConvSpec::conv3x3(16, 24, 1, 1);
    for isa in tested_isas() {
        for &algorithm in ALL {
            let w = Data::signed(&spec, [1, 16, 1, 1], 1).w;
            let ep = Epilogue::bias_relu(vec![0.25; 24]);
            let plan = Conv2dPlan::new(spec, &w, &ep, &options(algorithm, isa)).unwrap();
            let mut last_len = 0;
            for (i, (n, h, w_)) in [(1, 5, 6), (2, 23, 19), (1, 3, 3), (1, 12, 12)]
                .into_iter()
                .enumerate()
            {
                let x = Data::signed(&spec, [n, 16, h, w_], 100 + i as u64).x;
                let len = plan
                    .scratch_len(x.shape(), rayon::current_num_threads())
                    .unwrap();
                if i == 1 {
                    assert!(len > last_len, "scratch_len must grow with the input");
                }
                last_len = len;
                let expected = Oracle::new(&x, &spec, &w, &ep).unwrap();
                let ctx = format!("{algorithm} on {isa}, input {:?}", x.shape());
                check_plan(&plan, &x, &expected, &tolerance(&spec, algorithm), &ctx)
                    .unwrap_or_else(|m| panic!("{m}"));
            }
        }
    }
}

#[test]
fn blocked_tensors_with_the_wrong_block_are_refused() {
    let (spec, data) = small();
    for isa in tested_isas() {
        let plan = Conv2dPlan::new(
            spec,
            &data.w,
            &bias_relu(&data),
            &options(Algorithm::Direct, isa),
        )
        .unwrap();
        let lanes = plan.block();
        assert_eq!(lanes, isa.lanes());
        let wrong = BLOCK_SIZES.into_iter().find(|&b| b != lanes).unwrap();
        let out_shape = plan.output_shape(data.x.shape()).unwrap();
        let good_in = BlockedTensor::from_nchw(&data.x, lanes).unwrap();
        let bad_in = BlockedTensor::from_nchw(&data.x, wrong).unwrap();
        let mut good_out = BlockedTensor::zeros(out_shape, lanes).unwrap();
        let mut bad_out = BlockedTensor::zeros(out_shape, wrong).unwrap();
        let mismatch = |operand| ConvError::BlockMismatch {
            operand,
            expected: lanes,
            actual: wrong,
        };
        assert_eq!(
            plan.run(&bad_in, &mut good_out, None),
            Err(mismatch("input")),
            "{isa}"
        );
        assert_eq!(
            plan.run(&good_in, &mut bad_out, None),
            Err(mismatch("output")),
            "{isa}"
        );
        let mut scratch = vec![
            0.0;
            plan.scratch_len(data.x.shape(), rayon::current_num_threads())
                .unwrap()
        ];
        assert_eq!(
            plan.run(&bad_in, &mut good_out, Some(&mut scratch)),
            Err(mismatch("input")),
            "{isa}"
        );
        assert_eq!(
            plan.run(&data.x, &mut bad_out, None),
            Err(mismatch("output")),
            "{isa}"
        );
        let mut short_out = BlockedTensor::zeros(
            [out_shape[0], out_shape[1], out_shape[2] - 1, out_shape[3]],
            lanes,
        )
        .unwrap();
        assert!(
            is_shape_mismatch(&plan.run(&data.x, &mut short_out, None), "output"),
            "{isa}"
        );
        assert!(plan.run(&good_in, &mut good_out, None).is_ok());
        assert!(plan.run(&data.x, &mut good_out, None).is_ok());
    }
}

#[test]
fn wrong_output_shape_is_a_typed_error() {
    let (spec, data) = small();
    for isa in tested_isas() {
        for &algorithm in ALL {
            let plan = Conv2dPlan::new(spec, &data.w, &bias_relu(&data), &options(algorithm, isa))
                .unwrap();
            let [n, c, h, w] = plan.output_shape(data.x.shape()).unwrap();
            for bad in [
                [n, c + 1, h, w],
                [n, c, h - 1, w],
                [n, c, h, w + 1],
                [n + 1, c, h, w],
            ] {
                let ctx = format!("{algorithm} on {isa}, output {bad:?}");
                let mut out = Tensor::zeros(bad).unwrap();
                assert!(
                    is_shape_mismatch(&plan.run(&data.x, &mut out, None), "output"),
                    "{ctx}"
                );
                let mut scratch =
                    vec![
                        0.0;
                        plan.scratch_len(data.x.shape(), rayon::current_num_threads())
                            .unwrap()
                    ];
                let r = plan.run(&data.x, &mut out, Some(&mut scratch));
                assert!(is_shape_mismatch(&r, "output"), "{ctx}");
                let xb = BlockedTensor::from_nchw(&data.x, plan.block()).unwrap();
                let mut ob = BlockedTensor::zeros(bad, plan.block()).unwrap();
                assert!(
                    is_shape_mismatch(&plan.run(&xb, &mut ob, None), "output"),
                    "{ctx}"
                );
            }
        }
    }
}

#[test]
fn wrong_or_degenerate_input_is_a_typed_error() {
    let (spec, data) = small();
    for isa in tested_isas() {
        for &algorithm in ALL {
            let plan = Conv2dPlan::new(spec, &data.w, &bias_relu(&data), &options(algorithm, isa))
                .unwrap();
            let ctx = format!("{algorithm} on {isa}");
            // 12 or 14 channels instead of 13.
            for c in [12, 14] {
                let x = Tensor::zeros([1, c, 9, 10]).unwrap();
                let mut out = Tensor::zeros([1, 17, 9, 10]).unwrap();
                assert!(
                    is_shape_mismatch(&plan.run(&x, &mut out, None), "input"),
                    "{ctx}"
                );
                assert!(
                    is_shape_mismatch(
                        &plan.scratch_len(x.shape(), rayon::current_num_threads()),
                        "input"
                    ),
                    "{ctx}"
                );
                assert!(
                    is_shape_mismatch(&plan.output_shape(x.shape()), "input"),
                    "{ctx}"
                );
                let xb = BlockedTensor::from_nchw(&x, plan.block()).unwrap();
                let mut ob = BlockedTensor::zeros([1, 17, 9, 10], plan.block()).unwrap();
                assert!(
                    is_shape_mismatch(&plan.run(&xb, &mut ob, None), "input"),
                    "{ctx}"
                );
            }
            // An empty batch or an empty image is refused, not run.
            for shape in [[0, 13, 9, 10], [1, 13, 0, 10], [1, 13, 9, 0]] {
                let x = Tensor::zeros(shape).unwrap();
                let mut out = Tensor::zeros([1, 17, 9, 10]).unwrap();
                assert!(
                    plan.run(&x, &mut out, None).is_err(),
                    "{ctx}: input {shape:?}"
                );
                assert!(
                    plan.scratch_len(shape, rayon::current_num_threads())
                        .is_err(),
                    "{ctx}: input {shape:?}"
                );
            }
        }
    }
    // Padding 0: a 2x2 input is smaller than the 3x3 kernel.
    let spec = ConvSpec {
        padding: 0,
        ..ConvSpec::conv3x3(4, 4, 1, 1)
    };
    let w = Data::signed(&spec, [1, 4, 1, 1], 3).w;
    let plan = Conv2dPlan::new(spec, &w, &Epilogue::none(), &PlanOptions::default()).unwrap();
    let x = Tensor::zeros([1, 4, 2, 2]).unwrap();
    let mut out = Tensor::zeros([1, 4, 1, 1]).unwrap();
    assert!(is_invalid(&plan.run(&x, &mut out, None), "height"));
}

#[test]
fn bad_spec_is_a_typed_error() {
    let ok = ConvSpec::conv3x3(8, 16, 1, 2);
    let cases = [
        (
            "groups not dividing",
            ConvSpec { groups: 3, ..ok },
            "groups",
        ),
        ("groups 0", ConvSpec { groups: 0, ..ok }, "groups"),
        (
            "kernel 5",
            ConvSpec {
                kernel: 5,
                padding: 2,
                ..ok
            },
            "kernel",
        ),
        (
            "kernel 2",
            ConvSpec {
                kernel: 2,
                padding: 0,
                ..ok
            },
            "kernel",
        ),
        ("stride 0", ConvSpec { stride: 0, ..ok }, "stride"),
        ("padding 3", ConvSpec { padding: 3, ..ok }, "padding"),
        (
            "in_channels 0",
            ConvSpec {
                in_channels: 0,
                ..ok
            },
            "in_channels",
        ),
        (
            "out_channels 0",
            ConvSpec {
                out_channels: 0,
                ..ok
            },
            "out_channels",
        ),
    ];
    for (name, spec, field) in cases {
        // A weight of the shape the bad spec implies, where one exists.
        let w = Tensor::zeros(if spec.groups > 0 {
            spec.weight_shape()
        } else {
            [1, 1, 1, 1]
        })
        .unwrap();
        for &algorithm in ALL {
            let r = Conv2dPlan::new(
                spec,
                &w,
                &Epilogue::none(),
                &options(algorithm, Isa::Scalar),
            );
            assert!(is_invalid(&r, field), "{name}, {algorithm}: got {r:?}");
        }
        let auto = PlanOptions {
            autotune: true,
            ..PlanOptions::default()
        };
        let r = Conv2dPlan::new(spec, &w, &Epilogue::none(), &auto);
        assert!(is_invalid(&r, field), "{name}, autotune: got {r:?}");
    }
}

#[test]
fn bad_weight_is_a_typed_error() {
    let spec = ConvSpec::conv3x3(8, 16, 1, 2);
    let good = Tensor::filled(spec.weight_shape(), 0.5).unwrap();
    for (name, value) in [
        ("NaN", f32::NAN),
        ("+inf", f32::INFINITY),
        ("-inf", f32::NEG_INFINITY),
    ] {
        let mut w = good.clone();
        w.data_mut()[37] = value;
        for &algorithm in ALL {
            let r = Conv2dPlan::new(
                spec,
                &w,
                &Epilogue::none(),
                &options(algorithm, Isa::best()),
            );
            assert!(
                is_invalid(&r, "weight"),
                "{name} weight, {algorithm}: got {r:?}"
            );
        }
    }
    for shape in [[16, 8, 3, 3], [16, 4, 1, 1], [8, 4, 3, 3], [16, 4, 3, 2]] {
        let w = Tensor::zeros(shape).unwrap();
        let r = Conv2dPlan::new(spec, &w, &Epilogue::none(), &PlanOptions::default());
        assert!(
            is_shape_mismatch(&r, "weight"),
            "weight {shape:?}: got {r:?}"
        );
    }
}

#[test]
fn bad_bias_is_a_typed_error() {
    let spec = ConvSpec::conv3x3(8, 16, 1, 1);
    let w = Tensor::filled(spec.weight_shape(), 0.5).unwrap();
    for &algorithm in ALL {
        for len in [0, 15, 17, 8] {
            let r = Conv2dPlan::new(
                spec,
                &w,
                &Epilogue::bias_relu(vec![0.0; len]),
                &options(algorithm, Isa::best()),
            );
            assert!(
                is_shape_mismatch(&r, "bias"),
                "bias of {len}, {algorithm}: {r:?}"
            );
        }
        let mut bias = vec![0.0; 16];
        bias[15] = f32::NAN;
        let r = Conv2dPlan::new(
            spec,
            &w,
            &Epilogue::bias_relu(bias),
            &options(algorithm, Isa::best()),
        );
        assert!(is_invalid(&r, "bias"), "NaN bias, {algorithm}: {r:?}");
    }
}

#[test]
fn winograd_is_refused_where_it_cannot_run() {
    let ineligible = [
        ("stride 2", ConvSpec::conv3x3(16, 16, 2, 1)),
        ("1x1", ConvSpec::conv1x1(16, 16, 1, 1)),
        ("1x1 stride 2", ConvSpec::conv1x1(16, 16, 2, 1)),
        (
            "padding 0",
            ConvSpec {
                padding: 0,
                ..ConvSpec::conv3x3(16, 16, 1, 1)
            },
        ),
        (
            "padding 2",
            ConvSpec {
                padding: 2,
                ..ConvSpec::conv3x3(16, 16, 1, 1)
            },
        ),
    ];
    for (name, spec) in ineligible {
        let w = Tensor::filled(spec.weight_shape(), 0.1).unwrap();
        for isa in tested_isas() {
            for algorithm in [
                Algorithm::WinogradF23,
                Algorithm::WinogradF43,
                Algorithm::WinogradF63,
            ] {
                let r = Conv2dPlan::new(spec, &w, &Epilogue::none(), &options(algorithm, isa));
                assert!(
                    matches!(
                        &r,
                        Err(ConvError::UnsupportedAlgorithm { algorithm: a, .. }) if *a == algorithm.name()
                    ),
                    "{name}: {algorithm} on {isa}: got {r:?}"
                );
            }
            let plan = Conv2dPlan::new(spec, &w, &Epilogue::none(), &options(Algorithm::Auto, isa))
                .unwrap();
            assert_eq!(plan.algorithm(), Algorithm::Direct, "{name}: Auto on {isa}");
        }
    }
}

#[test]
fn unavailable_isa_is_refused() {
    let missing: Vec<Isa> = Isa::ALL.into_iter().filter(|i| !i.is_available()).collect();
    #[cfg(target_arch = "x86_64")]
    assert!(missing.contains(&Isa::Neon));
    #[cfg(target_arch = "aarch64")]
    assert!(missing.contains(&Isa::Avx512f) && missing.contains(&Isa::Avx2Fma));
    let spec = ConvSpec::conv3x3(4, 4, 1, 1);
    let w = Tensor::filled(spec.weight_shape(), 0.1).unwrap();
    for isa in missing {
        assert!(matches!(
            isa.require(),
            Err(ConvError::IsaUnavailable { isa: i, .. }) if i == isa
        ));
        for &algorithm in ALL {
            let r = Conv2dPlan::new(spec, &w, &Epilogue::none(), &options(algorithm, isa));
            assert!(
                matches!(&r, Err(ConvError::IsaUnavailable { isa: i, .. }) if *i == isa),
                "{algorithm} on missing {isa}: got {r:?}"
            );
        }
    }
}

#[test]
fn isa_names_parse_and_describe() {
    let table = [
        ("scalar", Isa::Scalar),
        ("avx2", Isa::Avx2Fma),
        ("avx2fma", Isa::Avx2Fma),
        ("avx512", Isa::Avx512f),
        ("avx512f", Isa::Avx512f),
        ("neon", Isa::Neon),
        (" AVX512 ", Isa::Avx512f),
        ("Neon", Isa::Neon),
    ];
    for (text, isa) in table {
        assert_eq!(Isa::parse(text), Ok(isa), "{text:?}");
    }
    for isa in Isa::ALL {
        assert_eq!(Isa::parse(isa.name()), Ok(isa));
        assert_eq!(isa.to_string(), isa.name());
    }
    for bad in ["", "sse", "avx", "avx-512", "arm"] {
        assert_eq!(
            Isa::parse(bad),
            Err(ConvError::UnknownIsa {
                value: bad.to_string()
            })
        );
    }
    let lanes: Vec<usize> = Isa::ALL.iter().map(|i| i.lanes()).collect();
    assert_eq!(lanes, [16, 8, 4, 4]);
    let available = Isa::available();
    assert!(available.contains(&Isa::Scalar));
    assert_eq!(available.first(), Some(&Isa::best()));
    for isa in &available {
        assert_eq!(isa.require(), Ok(*isa));
    }
}

#[test]
fn algorithm_names_parse() {
    for a in [Algorithm::Auto].into_iter().chain(Algorithm::CONCRETE) {
        assert_eq!(Algorithm::parse(a.name()).unwrap(), a);
        assert_eq!(a.to_string(), a.name());
    }
    assert_eq!(Algorithm::parse("F63").unwrap(), Algorithm::WinogradF63);
    assert_eq!(Algorithm::parse("f23").unwrap(), Algorithm::WinogradF23);
    assert_eq!(Algorithm::parse("f43").unwrap(), Algorithm::WinogradF43);
    let err = Algorithm::parse("f83").unwrap_err().to_string();
    assert!(err.contains("`f83` is not an algorithm"), "{err}");
    assert_eq!(Algorithm::default(), Algorithm::Auto);
}

/// `Auto` always resolves to an algorithm that can run the layer, and its result is correct.
#[test]
fn auto_chooses_a_valid_algorithm() {
    let specs = [
        ConvSpec::conv3x3(3, 48, 2, 1),
        ConvSpec::conv3x3(48, 48, 1, 1),
        ConvSpec::conv3x3(192, 192, 1, 1),
        ConvSpec::conv3x3(4, 4, 1, 1),
        ConvSpec::conv3x3(32, 32, 1, 2),
        ConvSpec::conv3x3(32, 32, 1, 4),
        ConvSpec::conv3x3(16, 16, 1, 16),
        ConvSpec::conv1x1(24, 16, 1, 1),
        ConvSpec::conv1x1(24, 16, 2, 1),
    ];
    for spec in specs {
        for (hint, hw) in [(None, 9), (Some((8, 8)), 8), (Some((30, 26)), 30)] {
            let input = [1, spec.in_channels, hw, hw];
            let data = Data::signed(&spec, input, 21);
            let ep = Epilogue::bias_relu(data.bias.clone());
            let expected = Oracle::new(&data.x, &spec, &data.w, &ep).unwrap();
            for isa in tested_isas() {
                let options = PlanOptions {
                    input_hw: hint,
                    ..options(Algorithm::Auto, isa)
                };
                let plan = Conv2dPlan::new(spec, &data.w, &ep, &options).unwrap();
                let chosen = plan.algorithm();
                let ctx = format!("Auto on {isa} for {spec:?}, hint {hint:?}: chose {chosen}");
                assert_ne!(chosen, Algorithm::Auto, "{ctx}");
                assert!(
                    chosen == Algorithm::Direct || winograd_eligible(&spec),
                    "{ctx}"
                );
                assert_eq!(chosen, crate::auto::choose(&spec, hint, isa), "{ctx}");
                check_plan(&plan, &data.x, &expected, &tolerance(&spec, chosen), &ctx)
                    .unwrap_or_else(|m| panic!("{m}"));
            }
        }
    }
}

/// Autotuning builds a plan with an eligible algorithm whose results are correct; an explicit
/// algorithm is kept even with `autotune` set.
#[test]
fn autotune_builds_a_correct_plan() {
    let cases = [
        (ConvSpec::conv3x3(32, 32, 1, 1), (20, 18)),
        (ConvSpec::conv3x3(16, 32, 2, 1), (21, 21)),
        (ConvSpec::conv3x3(3, 16, 1, 1), (7, 5)),
    ];
    for (spec, (h, w)) in cases {
        let input = [1, spec.in_channels, h, w];
        let data = Data::signed(&spec, input, 31);
        let ep = Epilogue::bias_relu(data.bias.clone());
        let expected = Oracle::new(&data.x, &spec, &data.w, &ep).unwrap();
        let isa = Isa::best();
        let tuned = PlanOptions {
            autotune: true,
            input_hw: Some((h, w)),
            ..options(Algorithm::Auto, isa)
        };
        let plan = Conv2dPlan::new(spec, &data.w, &ep, &tuned).unwrap();
        let chosen = plan.algorithm();
        let ctx = format!("autotune on {isa} for {spec:?} at {h}x{w}: chose {chosen}");
        visible(&format!("reparam-winograd tests: {ctx}"));
        assert_ne!(chosen, Algorithm::Auto, "{ctx}");
        assert!(
            chosen == Algorithm::Direct || winograd_eligible(&spec),
            "{ctx}"
        );
        assert_eq!(plan.isa(), isa, "{ctx}");
        check_plan(&plan, &data.x, &expected, &tolerance(&spec, chosen), &ctx)
            .unwrap_or_else(|m| panic!("{m}"));
        if winograd_eligible(&spec) {
            let explicit = PlanOptions {
                algorithm: Algorithm::WinogradF63,
                ..tuned
            };
            let plan = Conv2dPlan::new(spec, &data.w, &ep, &explicit).unwrap();
            assert_eq!(plan.algorithm(), Algorithm::WinogradF63, "{ctx}");
        }
    }
}

/// A plan is `Send + Sync` and can be run from several threads at once (its own scratch is
/// behind a lock); every thread gets the single-threaded result.
#[test]
fn one_plan_shared_by_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Conv2dPlan>();
    let spec = ConvSpec::conv3x3(24, 24, 1, 1);
    for isa in tested_isas() {
        let data = Data::signed(&spec, [1, 24, 16, 16], 41);
        let ep = Epilogue::bias_relu(data.bias.clone());
        let plan = Conv2dPlan::new(
            spec,
            &data.w,
            &ep,
            &PlanOptions {
                parallelism: Parallelism::Rayon,
                ..options(Algorithm::WinogradF43, isa)
            },
        )
        .unwrap();
        let inputs: Vec<Tensor> = (0..4)
            .map(|i| Data::signed(&spec, [1, 24, 16 - i, 16 + i], 50 + i as u64).x)
            .collect();
        let serial: Vec<Tensor> = inputs
            .iter()
            .map(|x| {
                let mut out = Tensor::zeros(plan.output_shape(x.shape()).unwrap()).unwrap();
                plan.run(x, &mut out, None).unwrap();
                out
            })
            .collect();
        std::thread::scope(|s| {
            for (x, want) in inputs.iter().zip(&serial) {
                let plan = &plan;
                s.spawn(move || {
                    for _ in 0..3 {
                        let mut out = Tensor::filled(want.shape(), f32::NAN).unwrap();
                        plan.run(x, &mut out, None).unwrap();
                        assert_eq!(&out, want, "{isa}: concurrent run differs");
                    }
                });
            }
        });
    }
}

#[test]
fn plan_reports_its_configuration() {
    let spec = ConvSpec::conv3x3(16, 40, 2, 2);
    let w = Tensor::filled(spec.weight_shape(), 0.1).unwrap();
    for isa in tested_isas() {
        let plan = Conv2dPlan::new(
            spec,
            &w,
            &Epilogue::none(),
            &options(Algorithm::Direct, isa),
        )
        .unwrap();
        assert_eq!(plan.spec(), &spec);
        assert_eq!(plan.isa(), isa);
        assert_eq!(plan.block(), isa.lanes());
        assert_eq!(plan.algorithm(), Algorithm::Direct);
        assert_eq!(plan.output_shape([3, 16, 15, 8]), Ok([3, 40, 8, 4]));
        assert!(plan.packed_weight_bytes() >= 40 * 8 * 9 * 4);
    }
}

/// What `REPARAM_ISA=value` must do, derived from the documented values (not from
/// [`Isa::parse`]).
#[derive(Debug, Clone, Copy, PartialEq)]
enum EnvOutcome {
    Uses(Isa),
    Unavailable(Isa),
    Unknown,
}

impl fmt::Display for EnvOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Uses(isa) => write!(f, "uses {isa}"),
            Self::Unavailable(isa) => write!(f, "refuses unavailable {isa}"),
            Self::Unknown => write!(f, "refuses unknown value"),
        }
    }
}

fn env_outcome(value: Option<&str>) -> EnvOutcome {
    let forced = |isa: Isa| {
        if isa.is_available() {
            EnvOutcome::Uses(isa)
        } else {
            EnvOutcome::Unavailable(isa)
        }
    };
    match value.map(|v| v.trim().to_ascii_lowercase()).as_deref() {
        None | Some("") => EnvOutcome::Uses(Isa::best()),
        Some("scalar") => forced(Isa::Scalar),
        Some("avx2" | "avx2fma") => forced(Isa::Avx2Fma),
        Some("avx512" | "avx512f") => forced(Isa::Avx512f),
        Some("neon") => forced(Isa::Neon),
        Some(_) => EnvOutcome::Unknown,
    }
}

const CHILD_MARKER: &str = "reparam-isa-env-check:";

/// Whatever `REPARAM_ISA` holds in this process, `Isa::from_env` and a plan built with
/// `isa: None` follow it: the named ISA if available, else a typed error (never a silent
/// fallback). [`reparam_isa_is_honoured_in_child_processes`] runs this test in child processes
/// with the variable set to each kind of value; run normally it checks the current environment.
#[test]
fn isa_from_env_follows_reparam_isa() {
    let value = std::env::var(ENV_ISA).ok();
    let outcome = env_outcome(value.as_deref());
    let spec = ConvSpec::conv3x3(4, 4, 1, 1);
    let w = Tensor::filled(spec.weight_shape(), 0.1).unwrap();
    let plan = Conv2dPlan::new(spec, &w, &Epilogue::none(), &PlanOptions::default());
    let from_env = Isa::from_env();
    match outcome {
        EnvOutcome::Uses(isa) => {
            assert_eq!(from_env, Ok(isa));
            assert_eq!(plan.map(|p| p.isa()), Ok(isa));
        }
        EnvOutcome::Unavailable(isa) => {
            for r in [from_env, plan.map(|p| p.isa())] {
                assert!(
                    matches!(r, Err(ConvError::IsaUnavailable { isa: i, .. }) if i == isa),
                    "{ENV_ISA}={value:?}: got {r:?}"
                );
            }
        }
        EnvOutcome::Unknown => {
            let v = value.clone().unwrap_or_default();
            for r in [from_env, plan.map(|p| p.isa())] {
                assert_eq!(
                    r,
                    Err(ConvError::UnknownIsa { value: v.clone() }),
                    "{ENV_ISA}={value:?}"
                );
            }
        }
    }
    println!("{CHILD_MARKER} {ENV_ISA}={value:?} -> {outcome}");
}

/// Runs [`isa_from_env_follows_reparam_isa`] in child processes of this test binary with
/// `REPARAM_ISA` unset, set to every ISA (available or not), set with odd case and spaces, and
/// set to unknown values. (Environment variables are process-global, so changing them inside
/// this multi-threaded test binary would race with the other tests.)
#[test]
fn reparam_isa_is_honoured_in_child_processes() {
    let exe = std::env::current_exe().expect("test binary path");
    let module = module_path!()
        .split_once("::")
        .map_or(module_path!(), |(_, rest)| rest);
    let test = format!("{module}::isa_from_env_follows_reparam_isa");
    let mut values: Vec<Option<&str>> = vec![
        None,
        Some(""),
        Some("scalar"),
        Some(" Scalar "),
        Some("avx2"),
        Some("avx512"),
        Some("AVX512F"),
        Some("neon"),
        Some("sse9"),
        Some("auto"),
    ];
    values.extend(Isa::ALL.iter().map(|i| Some(i.name())));
    let mut saw_unavailable = false;
    for value in values {
        let mut cmd = Command::new(&exe);
        cmd.args([
            test.as_str(),
            "--exact",
            "--nocapture",
            "--test-threads",
            "1",
        ]);
        match value {
            Some(v) => cmd.env(ENV_ISA, v),
            None => cmd.env_remove(ENV_ISA),
        };
        let output = match cmd.output() {
            Ok(o) => o,
            Err(e) => {
                visible(&format!(
                    "reparam-winograd tests: SKIP {ENV_ISA} child-process check: cannot run {} ({e}); \
                     Isa::parse/require and the in-process check still ran",
                    exe.display()
                ));
                return;
            }
        };
        // Under a user-mode emulator without binfmt_misc (the NEON run under qemu-aarch64), the
        // host cannot exec the foreign binary and the child exits 127 with no output instead of
        // `output()` returning an error.
        if output.status.code() == Some(127) && output.stdout.is_empty() && output.stderr.is_empty()
        {
            visible(&format!(
                "reparam-winograd tests: SKIP {ENV_ISA} child-process check: {} could not be \
                 executed (exit 127, no output; emulated target?); Isa::parse/require and the \
                 in-process check still ran",
                exe.display()
            ));
            return;
        }
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        let outcome = env_outcome(value);
        saw_unavailable |= matches!(outcome, EnvOutcome::Unavailable(_));
        assert!(
            output.status.success(),
            "{ENV_ISA}={value:?}: child failed ({}):\n{stdout}\n{stderr}",
            output.status
        );
        let line = format!("{CHILD_MARKER} {ENV_ISA}={value:?} -> {outcome}");
        assert!(
            stdout.contains(&line),
            "{ENV_ISA}={value:?}: child did not report `{line}` (did the filter select the test?):\n{stdout}"
        );
    }
    assert!(saw_unavailable, "no unavailable ISA was exercised");
}

#[test]
fn kernel_names_carry_algorithm_isa_and_register_block() {
    let (spec, data) = small();
    let ep = bias_relu(&data);
    for isa in tested_isas() {
        for &algorithm in ALL {
            let plan = Conv2dPlan::new(spec, &data.w, &ep, &options(algorithm, isa)).unwrap();
            let name = plan.kernel_name(data.x.shape()).unwrap();
            let prefix = format!("{}-{}-", plan.algorithm().name(), isa.name());
            let block = name
                .strip_prefix(&prefix)
                .unwrap_or_else(|| panic!("{name}"));
            let (columns, vectors) = block.split_once('x').unwrap_or_else(|| panic!("{name}"));
            let columns: usize = columns.parse().unwrap_or_else(|_| panic!("{name}"));
            let vectors: usize = vectors.parse().unwrap_or_else(|_| panic!("{name}"));
            assert!(
                (1..=16).contains(&columns) && (1..=4).contains(&vectors),
                "{name}"
            );
        }
    }
    let plan = Conv2dPlan::new(spec, &data.w, &ep, &options(Algorithm::Direct, Isa::Scalar));
    let err = plan.unwrap().kernel_name([1, 12, 9, 10]).unwrap_err();
    assert!(matches!(err, ConvError::Tensor(_)), "{err}");
}
