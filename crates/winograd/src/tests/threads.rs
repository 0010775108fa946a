//! Results are bitwise identical whatever the thread count: `Parallelism::Sequential`, and
//! `Parallelism::Rayon` inside pools of 1, 2 and 3 threads, must produce the same f32 bits
//! (work is split over output-channel groups and tiles, never over a reduction). The cases
//! cover both Winograd schedules on 2 and 3 threads: band-major (small weights) and two phases.

use super::{Data, same_bits, tested_isas, winograd_eligible};
use crate::{Algorithm, Conv2dPlan, Parallelism, PlanOptions};
use rayon::ThreadPoolBuilder;
use reparam_tensor::{BlockedTensor, ConvSpec, Epilogue, Tensor};

#[test]
fn bitwise_identical_for_any_thread_count() {
    let cases = [
        (
            "48->96 30x30 batch 2",
            ConvSpec::conv3x3(48, 96, 1, 1),
            [2, 48, 30, 30],
        ),
        (
            "96->96 12x12 batch 7",
            ConvSpec::conv3x3(96, 96, 1, 1),
            [7, 96, 12, 12],
        ),
        (
            "192->192 14x14",
            ConvSpec::conv3x3(192, 192, 1, 1),
            [1, 192, 14, 14],
        ),
        (
            "g4 40->40 13x17",
            ConvSpec::conv3x3(40, 40, 1, 4),
            [1, 40, 13, 17],
        ),
        (
            "s2 48->96 29x28",
            ConvSpec::conv3x3(48, 96, 2, 1),
            [1, 48, 29, 28],
        ),
        (
            "rgb 3->48 s2 64x64",
            ConvSpec::conv3x3(3, 48, 2, 1),
            [1, 3, 64, 64],
        ),
        (
            "1x1 64->40 9x9",
            ConvSpec::conv1x1(64, 40, 1, 1),
            [1, 64, 9, 9],
        ),
    ];
    let pools: Vec<_> = [1, 2, 3]
        .into_iter()
        .map(|n| (n, ThreadPoolBuilder::new().num_threads(n).build().unwrap()))
        .collect();
    let mut schedules_seen = [false; 2];
    let mut passes_seen = [false; 3];
    for (name, spec, input) in cases {
        let data = Data::network(&spec, input, 11);
        let epilogue = Epilogue::bias_relu(data.bias.clone());
        for isa in tested_isas() {
            for algorithm in Algorithm::CONCRETE {
                if algorithm != Algorithm::Direct && !winograd_eligible(&spec) {
                    continue;
                }
                let plan = |parallelism| {
                    let options = PlanOptions {
                        algorithm,
                        isa: Some(isa),
                        parallelism,
                        ..PlanOptions::default()
                    };
                    Conv2dPlan::new(spec, &data.w, &epilogue, &options).unwrap()
                };
                let context = format!("{name}: {algorithm} on {isa}");
                let sequential = plan(Parallelism::Sequential);
                let out_shape = sequential.output_shape(input).unwrap();
                let mut reference = Tensor::zeros(out_shape).unwrap();
                sequential.run(&data.x, &mut reference, None).unwrap();
                assert!(
                    reference.data().iter().any(|&v| v != 0.0),
                    "{context}: degenerate all-zero output"
                );
                let rayon = plan(Parallelism::Rayon);
                let xb = BlockedTensor::from_nchw(&data.x, rayon.block()).unwrap();
                for (threads, pool) in &pools {
                    if *threads >= 2 && algorithm != Algorithm::Direct {
                        let band_major = pool.install(|| rayon.is_band_major(input).unwrap());
                        schedules_seen[usize::from(band_major)] = true;
                    }
                    if algorithm != Algorithm::Direct {
                        passes_seen[threads - 1] |=
                            pool.install(|| rayon.runs_in_passes(input).unwrap());
                    }
                    let mut out = Tensor::filled(out_shape, f32::NAN).unwrap();
                    let mut ob = BlockedTensor::zeros(out_shape, rayon.block()).unwrap();
                    pool.install(|| {
                        rayon.run(&data.x, &mut out, None).unwrap();
                        rayon.run(&xb, &mut ob, None).unwrap();
                    });
                    let ctx = format!("{context}: rayon with {threads} threads vs sequential");
                    same_bits(&out, &reference, &ctx).unwrap_or_else(|m| panic!("{m}"));
                    same_bits(&ob.to_nchw(), &reference, &format!("{ctx} (blocked)"))
                        .unwrap_or_else(|m| panic!("{m}"));
                }
            }
        }
    }
    assert_eq!(
        schedules_seen, [true; 2],
        "[two phases, band-major] exercised on several threads"
    );
    assert_eq!(
        passes_seen, [true; 3],
        "multi-image passes exercised on 1, 2 and 3 threads"
    );
}
