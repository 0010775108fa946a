//! Named edge cases. Each test is a list of named cases; a failure message starts with
//! ``case `NAME`:`` and names the algorithm, ISA, spec, input shape and epilogue.

use super::{ALL, Bias, Data, check, options, same_bits, tested_isas, try_check};
use crate::arch::RegisterBlock;
use crate::{Algorithm, Conv2dPlan, Isa, Parallelism, PlanOptions};
use rayon::ThreadPoolBuilder;
use reparam_tensor::{BlockedTensor, ConvSpec, Epilogue};
use std::collections::BTreeMap;

const DIRECT: &[Algorithm] = &[Algorithm::Direct];

/// Channel counts around the SIMD widths (4, 8, 16) and the RGB input, in and out: every pair of
/// 1, 3, 13, 15, 16, 17.
#[test]
fn channels_1_3_13_15_16_17_in_and_out() {
    const C: [usize; 6] = [1, 3, 13, 15, 16, 17];
    for cin in C {
        for cout in C {
            let name = format!("channels {cin}->{cout}");
            check(
                &name,
                ConvSpec::conv3x3(cin, cout, 1, 1),
                [1, cin, 9, 11],
                ALL,
            );
        }
    }
}

/// Output sizes that are not multiples of the tile m = 2, 4, 6 (partial tiles at the right and
/// bottom), plus exact multiples for contrast.
#[test]
fn sizes_not_multiple_of_tile() {
    let sizes = [
        (7, 7),   // odd: partial for m = 2, 4, 6
        (9, 13),  // 9 = 2·4+1, 13 = 2·6+1
        (10, 10), // multiple of 2 only
        (11, 5),
        (12, 12), // multiple of 2, 4 and 6
        (13, 14), // 14: RepVGG's last stride-1 stage; partial for m = 4, 6
        (14, 14),
        (15, 17),
        (19, 20),
        (25, 23),
    ];
    for (h, w) in sizes {
        let name = format!("tile remainder {h}x{w}");
        check(&name, ConvSpec::conv3x3(13, 19, 1, 1), [1, 13, h, w], ALL);
    }
}

/// Inputs smaller than one tile (α = 4, 6, 8) and than the kernel: 1x1, 2x3, 5x5, ...
#[test]
fn inputs_smaller_than_tile() {
    let sizes = [
        (1, 1),
        (1, 2),
        (2, 1),
        (2, 2),
        (2, 3),
        (3, 2),
        (1, 9),
        (9, 1),
        (3, 3),
        (4, 4),
        (5, 5),
        (6, 7),
        (7, 7),
    ];
    for (h, w) in sizes {
        let name = format!("small input {h}x{w}");
        check(&name, ConvSpec::conv3x3(17, 16, 1, 1), [1, 17, h, w], ALL);
        let name = format!("small input {h}x{w}, 1 channel");
        check(&name, ConvSpec::conv3x3(1, 1, 1, 1), [1, 1, h, w], ALL);
    }
}

/// Stride 2 (direct only; Winograd must be refused) on even, odd and tiny inputs, with channel
/// counts that leave partial blocks.
#[test]
fn stride_2() {
    let cases = [
        (5, 24, 1, 1),
        (5, 24, 2, 2),
        (16, 32, 3, 3),
        (17, 13, 4, 5),
        (16, 32, 7, 8),
        (48, 48, 16, 16),
        (13, 40, 17, 15),
        (8, 8, 1, 9),
    ];
    for (cin, cout, h, w) in cases {
        let name = format!("stride 2 {cin}->{cout} at {h}x{w}");
        check(
            &name,
            ConvSpec::conv3x3(cin, cout, 2, 1),
            [1, cin, h, w],
            ALL,
        );
    }
    check(
        "stride 2, batch 2",
        ConvSpec::conv3x3(16, 24, 2, 1),
        [2, 16, 9, 10],
        ALL,
    );
}

/// Other geometries the direct kernel accepts: stride 3, and a 3x3 kernel with padding 0 or 2
/// (Winograd refuses both).
#[test]
fn stride_3_and_padding_0_or_2() {
    let spec = |stride, padding| ConvSpec {
        padding,
        ..ConvSpec::conv3x3(13, 17, stride, 1)
    };
    for (stride, padding, h, w) in [
        (3, 1, 10, 11),
        (3, 1, 1, 1),
        (1, 0, 9, 7),
        (1, 0, 3, 3),
        (2, 0, 9, 8),
        (1, 2, 6, 5),
        (2, 2, 7, 7),
        (1, 2, 1, 1),
    ] {
        let name = format!("stride {stride} padding {padding} at {h}x{w}");
        check(&name, spec(stride, padding), [1, 13, h, w], ALL);
    }
}

/// Grouped convolutions: g = 2 and 4 (RepVGG g2/g4), a divisor like 3, and depthwise-like
/// g = C (also with a channel multiplier), including groups narrower than one SIMD register and
/// groups straddling the kernels' output-channel blocks.
#[test]
fn groups_2_4_3_and_depthwise() {
    let cases = [
        ("g2 16->32", ConvSpec::conv3x3(16, 32, 1, 2)),
        ("g2 48->48", ConvSpec::conv3x3(48, 48, 1, 2)),
        ("g4 16->16", ConvSpec::conv3x3(16, 16, 1, 4)),
        ("g4 48->48", ConvSpec::conv3x3(48, 48, 1, 4)),
        ("g4 32->64", ConvSpec::conv3x3(32, 64, 1, 4)),
        ("g4 8->20", ConvSpec::conv3x3(8, 20, 1, 4)),
        ("g3 12->24", ConvSpec::conv3x3(12, 24, 1, 3)),
        ("g3 9->9", ConvSpec::conv3x3(9, 9, 1, 3)),
        ("g3 39->33", ConvSpec::conv3x3(39, 33, 1, 3)),
        ("depthwise 16", ConvSpec::conv3x3(16, 16, 1, 16)),
        ("depthwise 13", ConvSpec::conv3x3(13, 13, 1, 13)),
        ("depthwise 8 x2 multiplier", ConvSpec::conv3x3(8, 16, 1, 8)),
        ("g2 stride 2", ConvSpec::conv3x3(16, 32, 2, 2)),
        ("g4 stride 2", ConvSpec::conv3x3(48, 96, 2, 4)),
        ("depthwise 17 stride 2", ConvSpec::conv3x3(17, 17, 2, 17)),
    ];
    for (name, spec) in cases {
        check(name, spec, [1, spec.in_channels, 11, 10], ALL);
    }
}

/// Batches of 1, 2 and 3 images (each image is staged and convolved in turn).
#[test]
fn batch_1_to_3() {
    for n in 1..=3 {
        let name = format!("batch {n}");
        check(&name, ConvSpec::conv3x3(13, 17, 1, 1), [n, 13, 9, 10], ALL);
        let name = format!("batch {n}, g2");
        check(&name, ConvSpec::conv3x3(8, 6, 1, 2), [n, 8, 7, 5], ALL);
    }
}

/// Batches of small images, which blocked runs convolve by multi-image passes (several images'
/// tiles in one GEMM super-block): uneven shares and passes, groups, tile remainders; the
/// blocked run is checked bitwise against the image-by-image NCHW run by `check_plan`.
#[test]
fn batch_of_small_images_in_passes() {
    let cases = [
        (
            "passes 4 of 9x10",
            ConvSpec::conv3x3(13, 17, 1, 1),
            [4, 13, 9, 10],
        ),
        (
            "passes 5 of 6x7, g2",
            ConvSpec::conv3x3(16, 24, 1, 2),
            [5, 16, 6, 7],
        ),
        (
            "passes 9 of 4x4",
            ConvSpec::conv3x3(24, 20, 1, 1),
            [9, 24, 4, 4],
        ),
        (
            "passes 6 of 14x14",
            ConvSpec::conv3x3(40, 40, 1, 1),
            [6, 40, 14, 14],
        ),
    ];
    let mut passes_seen = false;
    for (name, spec, input) in cases {
        check(name, spec, input, ALL);
        let data = Data::signed(&spec, input, 1);
        let epilogue = Epilogue::bias_relu(data.bias.clone());
        for isa in tested_isas() {
            let options = options(Algorithm::WinogradF43, isa);
            let plan = Conv2dPlan::new(spec, &data.w, &epilogue, &options).unwrap();
            passes_seen |= plan.runs_in_passes(input).unwrap();
        }
    }
    assert!(passes_seen, "no case ran in multi-image passes");
}

/// 1x1 convolutions, stride 1 and 2 (direct; Winograd refused), including groups.
#[test]
fn kernel_1x1_stride_1_and_2() {
    let cases = [
        (1, 1, 1, 1),
        (3, 16, 1, 1),
        (16, 17, 1, 1),
        (40, 24, 1, 2),
        (17, 3, 1, 1),
        (20, 24, 2, 2),
        (16, 16, 2, 4),
        (13, 26, 2, 13),
    ];
    for (cin, cout, stride, groups) in cases {
        for (h, w) in [(1, 1), (7, 9), (8, 8)] {
            let name = format!("1x1 {cin}->{cout} stride {stride} g{groups} at {h}x{w}");
            check(
                &name,
                ConvSpec::conv1x1(cin, cout, stride, groups),
                [1, cin, h, w],
                ALL,
            );
        }
    }
}

/// The 3-channel first layer (RepVGG stage 0: 3 -> 48/64, stride 2), and the same channels at
/// stride 1 (Winograd-eligible, though never chosen by `Auto`).
#[test]
fn first_layer_3_channels() {
    let cases = [
        ("rgb 3->48 s2 32x32", ConvSpec::conv3x3(3, 48, 2, 1), 32, 32),
        ("rgb 3->48 s2 33x31", ConvSpec::conv3x3(3, 48, 2, 1), 33, 31),
        ("rgb 3->64 s2 30x29", ConvSpec::conv3x3(3, 64, 2, 1), 30, 29),
        ("rgb 3->48 s1 17x18", ConvSpec::conv3x3(3, 48, 1, 1), 17, 18),
        ("rgb 3->64 s1 12x13", ConvSpec::conv3x3(3, 64, 1, 1), 12, 13),
    ];
    for (name, spec, h, w) in cases {
        check(name, spec, [1, 3, h, w], ALL);
    }
}

/// Every epilogue: no bias (with and without ReLU; `check` covers bias with and without ReLU).
#[test]
fn epilogue_without_bias() {
    for (name, spec, input) in [
        (
            "no bias 16->17",
            ConvSpec::conv3x3(16, 17, 1, 1),
            [1, 16, 9, 9],
        ),
        ("no bias s2", ConvSpec::conv3x3(5, 8, 2, 1), [1, 5, 9, 9]),
        ("no bias 1x1", ConvSpec::conv1x1(5, 8, 1, 1), [1, 5, 4, 3]),
    ] {
        if let Err(msg) = try_check(name, spec, input, ALL, Bias::No, 7) {
            panic!("{msg}");
        }
    }
}

/// More channels than one register block holds, in and out (several output-channel groups and
/// a long reduction), with partial tiles.
#[test]
fn many_channels() {
    check(
        "64->80 at 13x12",
        ConvSpec::conv3x3(64, 80, 1, 1),
        [1, 64, 13, 12],
        ALL,
    );
    check(
        "100->36 at 7x9",
        ConvSpec::conv3x3(100, 36, 1, 1),
        [2, 100, 7, 9],
        ALL,
    );
    check(
        "1x1 130->70 at 5x6",
        ConvSpec::conv1x1(130, 70, 1, 1),
        [1, 130, 5, 6],
        DIRECT,
    );
}

/// Wide and tall images (many tiles in one row or column; more tiles than one register block).
#[test]
fn wide_and_tall() {
    check(
        "wide 1x61",
        ConvSpec::conv3x3(8, 8, 1, 1),
        [1, 8, 1, 61],
        ALL,
    );
    check(
        "tall 61x2",
        ConvSpec::conv3x3(8, 8, 1, 1),
        [1, 8, 61, 2],
        ALL,
    );
    check(
        "wide 3x50 s2",
        ConvSpec::conv3x3(4, 12, 2, 1),
        [1, 4, 3, 50],
        ALL,
    );
}

/// Found by the sweep: a single output channel whose five outputs all come out small through
/// cancellation (20 channels × 9 taps of terms ≈ 0.1 summing to 0.056). Measured against the
/// result alone its f32 error was 3.7e-6 relative L2, over the 3.2e-6 bound; measured against
/// what its terms allow (the cancellation floor of `reparam_tensor::tolerance`) it is in bounds.
#[test]
fn cancellation_in_a_single_output_channel() {
    try_check(
        "cancellation 20->1 at 5x1",
        ConvSpec::conv3x3(20, 1, 1, 1),
        [1, 20, 5, 1],
        DIRECT,
        Bias::Yes,
        16_119_231_740_976_394_564,
    )
    .unwrap_or_else(|m| panic!("{m}"));
}

/// Every ISA instantiates four register blocks per kernel: its main (`MAIN` for Winograd, `DIRECT`
/// for direct convolution) and alternative (3-vector) blocks and one column narrower each, picked
/// where they pad less (a 7x7 output, 49 tiles); the first-layer block (`Kernels::FIRST`, AVX-512
/// only) is checked by `the_first_layer_runs_its_blocks`.
/// For each ISA and algorithm this finds, among small layers with 2 or 3 channel blocks of
/// outputs and sizes up to 16x48, one that runs each of the four, and checks it.
#[test]
fn every_register_block_including_the_narrow_ones() {
    for isa in tested_isas() {
        for &algorithm in ALL {
            // (oc_vecs, columns) -> the first (spec, input) that uses it.
            let mut found = BTreeMap::new();
            for vecs in [2, 3] {
                let cout = vecs * isa.lanes();
                // More input channels than one block: the first-layer body (fewer) takes
                // the first-layer or the narrow blocks.
                let cin = isa.lanes() + 5;
                let spec = ConvSpec::conv3x3(cin, cout, 1, 1);
                let w = Data::signed(&spec, [1, cin, 1, 1], 3).w;
                let plan =
                    Conv2dPlan::new(spec, &w, &Epilogue::none(), &options(algorithm, isa)).unwrap();
                for h in 1..=16 {
                    for w in [h + 1, 3 * h] {
                        let input = [1, cin, h, w];
                        let block = plan.register_block(input).unwrap();
                        found
                            .entry((block.oc_vecs, block.columns))
                            .or_insert((spec, input));
                    }
                }
            }
            assert_eq!(
                found.len(),
                4,
                "{algorithm} on {isa}: expected 4 register blocks (2 widths x normal/narrow), found {:?}",
                found.keys().collect::<Vec<_>>()
            );
            for ((vecs, cols), (spec, input)) in found {
                let name = format!("{vecs} vectors x {cols} columns on {isa}");
                try_check(&name, spec, input, &[algorithm], Bias::Yes, 9)
                    .unwrap_or_else(|m| panic!("{m}"));
            }
        }
    }
}

/// The first-layer body on a compact staging (fewer input channels than lanes, the RGB stem)
/// runs the narrow form of the block other layers would take, except where the ISA's
/// first-layer block divides the output: on AVX-512 that is 6 pixels × 4 vectors (64 channels,
/// B0's stem, in one pass). For 2, 3, 4 and 8 output vectors (and 4 with a partial last vector)
/// on every ISA, an RGB stride-2 layer takes that block and matches the oracle; 11x13 = 143
/// output pixels (a prime times 11) leave a partial last register block at every width used.
#[test]
fn the_first_layer_runs_its_blocks() {
    for isa in tested_isas() {
        let lanes = isa.lanes();
        for cout in [2 * lanes, 3 * lanes, 4 * lanes, 4 * lanes - 3, 8 * lanes] {
            let spec = ConvSpec::conv3x3(3, cout, 2, 1);
            let input = [1, 3, 21, 25];
            let w = Data::signed(&spec, input, 3).w;
            let plan = Conv2dPlan::new(
                spec,
                &w,
                &Epilogue::none(),
                &options(Algorithm::Direct, isa),
            )
            .unwrap();
            let block = plan.register_block(input).unwrap();
            let planned = ConvSpec::conv3x3(lanes + 5, cout, 2, 1);
            let wide = Conv2dPlan::new(
                planned,
                &Data::signed(&planned, [1, lanes + 5, 1, 1], 3).w,
                &Epilogue::none(),
                &options(Algorithm::Direct, isa),
            )
            .unwrap()
            .register_block([1, lanes + 5, 1024, 1024])
            .unwrap();
            let expected = if isa == Isa::Avx512f && cout.div_ceil(lanes) % 4 == 0 {
                RegisterBlock {
                    columns: 6,
                    oc_vecs: 4,
                }
            } else {
                wide.narrow()
            };
            assert_eq!(block, expected, "3->{cout} on {isa}");
            let name = format!(
                "RGB first layer 3->{cout}, {} vectors x {} columns on {isa}",
                block.oc_vecs, block.columns
            );
            try_check(&name, spec, input, DIRECT, Bias::Yes, 21).unwrap_or_else(|m| panic!("{m}"));
        }
    }
}

/// Direct convolution of outputs at least 32 wide reads a blocked input in place and applies
/// the padding itself (border taps read as zero); narrower outputs read a padded staging. Both
/// sides of that width, strides 1 and 2, paddings 1 and 2, groups, channel counts that are not a
/// multiple of the lanes, a wide 1x1 kernel (no padding), and N = 2.
#[test]
fn wide_outputs_clip_their_own_padding() {
    let cases = [
        (
            "13->17 s1 at 5x32",
            ConvSpec::conv3x3(13, 17, 1, 1),
            [2, 13, 5, 32],
        ),
        (
            "13->17 s1 at 5x31",
            ConvSpec::conv3x3(13, 17, 1, 1),
            [1, 13, 5, 31],
        ),
        (
            "17->24 s2 at 7x64",
            ConvSpec::conv3x3(17, 24, 2, 1),
            [1, 17, 7, 64],
        ),
        (
            "17->24 s2 at 6x63",
            ConvSpec::conv3x3(17, 24, 2, 1),
            [2, 17, 6, 63],
        ),
        (
            "16->32 s2 g2 at 4x66",
            ConvSpec::conv3x3(16, 32, 2, 2),
            [1, 16, 4, 66],
        ),
        (
            "8->16 s1 padding 2 at 3x40",
            ConvSpec {
                padding: 2,
                ..ConvSpec::conv3x3(8, 16, 1, 1)
            },
            [1, 8, 3, 40],
        ),
        (
            "1x1 16->16 s2 at 2x80",
            ConvSpec::conv1x1(16, 16, 2, 1),
            [1, 16, 2, 80],
        ),
    ];
    for (name, spec, input) in cases {
        check(name, spec, input, DIRECT);
    }
}

/// The first layer from an NCHW input stages and convolves chunks of output rows
/// (`FIRST_LAYER_CHUNK_ROWS`), on one thread for images whose whole staging would exceed
/// `FIRST_LAYER_CHUNK_MIN_BYTES` and always on several; a blocked input is staged whole. Both
/// give the same bits: odd sizes whose last chunk is short, strides 1 and 2, 3 and 4 channels,
/// groups, N = 2, on one thread and on two.
#[test]
fn first_layer_chunks_match_the_whole_staging() {
    let pools: Vec<_> = [1, 2]
        .into_iter()
        .map(|n| (n, ThreadPoolBuilder::new().num_threads(n).build().unwrap()))
        .collect();
    let cases = [
        (
            "rgb 3->48 s2",
            ConvSpec::conv3x3(3, 48, 2, 1),
            [2, 3, 229, 227],
        ),
        (
            "rgb 3->64 s1",
            ConvSpec::conv3x3(3, 64, 1, 1),
            [1, 3, 219, 233],
        ),
        ("4->24 s2", ConvSpec::conv3x3(4, 24, 2, 1), [1, 4, 205, 201]),
        (
            "rgb g3 3->48 s2",
            ConvSpec::conv3x3(3, 48, 2, 3),
            [1, 3, 227, 229],
        ),
        (
            "rgb 3->32 s2 small",
            ConvSpec::conv3x3(3, 32, 2, 1),
            [1, 3, 37, 19],
        ),
    ];
    for (name, spec, input) in cases {
        let data = Data::signed(&spec, input, 29);
        let epilogue = Epilogue::bias_relu(data.bias.clone());
        for isa in tested_isas() {
            if input[1] >= isa.lanes() {
                continue;
            }
            for parallelism in [Parallelism::Sequential, Parallelism::Rayon] {
                let options = PlanOptions {
                    parallelism,
                    ..options(Algorithm::Direct, isa)
                };
                let plan = Conv2dPlan::new(spec, &data.w, &epilogue, &options).unwrap();
                let out_shape = plan.output_shape(input).unwrap();
                let xb = BlockedTensor::from_nchw(&data.x, plan.block()).unwrap();
                for (threads, pool) in &pools {
                    let ctx = format!("{name} on {isa}, {parallelism:?}, {threads} threads");
                    // By chunks on several threads, and on one when the whole compact staging
                    // (padded rows × padded columns × channels) takes at least 512 KiB.
                    let several = parallelism == Parallelism::Rayon && *threads >= 2;
                    let staging_bytes = (input[2] + 2) * (input[3] + 2) * input[1] * 4;
                    let expected = several || staging_bytes >= 512 * 1024;
                    let chunks = pool.install(|| plan.stages_by_chunks(input).unwrap());
                    assert_eq!(chunks, expected, "{ctx}: staged by chunks");
                    let mut whole = BlockedTensor::zeros(out_shape, plan.block()).unwrap();
                    let mut chunked = BlockedTensor::zeros(out_shape, plan.block()).unwrap();
                    chunked.data_mut().fill(f32::NAN);
                    pool.install(|| {
                        plan.run(&xb, &mut whole, None).unwrap();
                        plan.run(&data.x, &mut chunked, None).unwrap();
                    });
                    assert!(
                        whole.data().iter().any(|&v| v != 0.0),
                        "{ctx}: degenerate all-zero output"
                    );
                    same_bits(&chunked.to_nchw(), &whole.to_nchw(), &ctx)
                        .unwrap_or_else(|m| panic!("{m}"));
                }
            }
        }
    }
}
