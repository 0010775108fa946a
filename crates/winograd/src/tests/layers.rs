//! Every conv layer shape of RepVGG-A0 and RepVGG-B0 (deploy form: one 3x3 conv + bias + ReLU
//! per block) at the full 224x224 network input, each given its own input size, for every
//! eligible algorithm. One test per layer, so the harness runs them in parallel; the oracle
//! (the slow part: up to 145 M multiply-adds in f64) is computed once per layer and reused across
//! algorithms, ISAs and epilogues.
//!
//! ISAs: every available one (the scalar path included: at these sizes the oracle dominates the
//! time). Each (algorithm, ISA) runs with ReLU off (every output visible to the comparison) and
//! on, through every entry point ([`super::check_plan`]), on the current rayon pool.

use super::{Data, Oracle, check_plan, seed_of, tested_isas, tolerance, winograd_eligible};
use crate::{Algorithm, Conv2dPlan, Parallelism, PlanOptions};
use reparam_tensor::{ConvSpec, Epilogue};

/// Checks the layer `cin -> cout`, stride `stride`, on a `[1, cin, hw, hw]` input.
fn layer(name: &str, cin: usize, cout: usize, stride: usize, hw: usize) {
    let spec = ConvSpec::conv3x3(cin, cout, stride, 1);
    let input = [1, cin, hw, hw];
    let data = Data::network(&spec, input, seed_of(name));
    let linear = Epilogue {
        bias: Some(data.bias.clone()),
        relu: false,
    };
    let expected = Oracle::new(&data.x, &spec, &data.w, &linear).expect("oracle");
    let expected_relu = expected.relu();
    let algorithms: Vec<Algorithm> = Algorithm::CONCRETE
        .into_iter()
        .filter(|a| *a == Algorithm::Direct || winograd_eligible(&spec))
        .collect();
    for isa in tested_isas() {
        for &algorithm in &algorithms {
            for relu in [false, true] {
                let epilogue = Epilogue {
                    bias: linear.bias.clone(),
                    relu,
                };
                let options = PlanOptions {
                    algorithm,
                    isa: Some(isa),
                    parallelism: Parallelism::Rayon,
                    ..PlanOptions::default()
                };
                let plan = Conv2dPlan::new(spec, &data.w, &epilogue, &options)
                    .unwrap_or_else(|e| panic!("{name}: {algorithm} on {isa}: {e}"));
                let context = format!(
                    "layer `{name}` ({spec:?} at {hw}x{hw}): {algorithm} on {isa}, relu {relu}"
                );
                let want = if relu { &expected_relu } else { &expected };
                if let Err(msg) =
                    check_plan(&plan, &data.x, want, &tolerance(&spec, algorithm), &context)
                {
                    panic!("{msg}");
                }
            }
        }
    }
}

macro_rules! layers {
    ($($test:ident: $cin:literal -> $cout:literal, stride $stride:literal, input $hw:literal;)*) => {
        $(
            #[test]
            fn $test() {
                layer(stringify!($test), $cin, $cout, $stride, $hw);
            }
        )*
    };
}

layers! {
    a0_stage0_3_48_s2_224: 3 -> 48, stride 2, input 224;
    a0_stage1_48_48_s2_112: 48 -> 48, stride 2, input 112;
    a0_stage1_48_48_s1_56: 48 -> 48, stride 1, input 56;
    a0_stage2_48_96_s2_56: 48 -> 96, stride 2, input 56;
    a0_stage2_96_96_s1_28: 96 -> 96, stride 1, input 28;
    a0_stage3_96_192_s2_28: 96 -> 192, stride 2, input 28;
    a0_stage3_192_192_s1_14: 192 -> 192, stride 1, input 14;
    a0_stage4_192_1280_s2_14: 192 -> 1280, stride 2, input 14;
    b0_stage0_3_64_s2_224: 3 -> 64, stride 2, input 224;
    b0_stage1_64_64_s2_112: 64 -> 64, stride 2, input 112;
    b0_stage1_64_64_s1_56: 64 -> 64, stride 1, input 56;
    b0_stage2_64_128_s2_56: 64 -> 128, stride 2, input 56;
    b0_stage2_128_128_s1_28: 128 -> 128, stride 1, input 28;
    b0_stage3_128_256_s2_28: 128 -> 256, stride 2, input 28;
    b0_stage3_256_256_s1_14: 256 -> 256, stride 1, input 14;
    b0_stage4_256_1280_s2_14: 256 -> 1280, stride 2, input 14;
}
