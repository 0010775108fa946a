//! Named edge cases, the same families as the CPU crate's: channel counts around the vector
//! width, sizes that are not multiples of a tile, inputs smaller than a tile, stride 2, groups
//! 2 and 4, batch 1..3, 1x1 kernels.

use super::{ALL, check};
use reparam_tensor::ConvSpec;

/// Channels 1, 3, 13, 15, 16, 17 in and out (every pair), so every channel stride padding
/// (0..3 lanes) and partial vec4 / 64-channel tile appears on both sides.
#[test]
fn channels_1_3_13_15_16_17_in_and_out() {
    const C: [usize; 6] = [1, 3, 13, 15, 16, 17];
    for cin in C {
        for cout in C {
            let name = format!("channels {cin}->{cout}");
            check(
                &name,
                ConvSpec::conv3x3(cin, cout, 1, 1),
                [1, cin, 7, 9],
                ALL,
            );
        }
    }
}

/// Output sizes that are not multiples of the 2x2 and 4x4 Winograd tiles (remainders 1, 2, 3),
/// the 4-pixel register block or the 64-pixel GEMM tile (and exact multiples for contrast).
#[test]
fn sizes_not_multiple_of_tile() {
    for (h, w) in [
        (7, 7),
        (9, 13),
        (8, 8),
        (11, 5),
        (14, 14),
        (13, 17),
        (16, 16),
    ] {
        let name = format!("tile remainder {h}x{w}");
        check(&name, ConvSpec::conv3x3(13, 19, 1, 1), [1, 13, h, w], ALL);
    }
}

/// Inputs smaller than one tile and than the kernel.
#[test]
fn inputs_smaller_than_tile() {
    for (h, w) in [(1, 1), (1, 2), (2, 1), (2, 3), (3, 3), (1, 9), (5, 5)] {
        let name = format!("small input {h}x{w}");
        check(&name, ConvSpec::conv3x3(17, 16, 1, 1), [1, 17, h, w], ALL);
    }
}

/// Stride 2 on even, odd and tiny inputs (Winograd is skipped: it does not support stride 2).
#[test]
fn stride_2() {
    for (cin, cout, h, w) in [
        (3, 16, 9, 9),
        (16, 16, 8, 8),
        (13, 17, 7, 10),
        (17, 5, 1, 1),
        (4, 8, 2, 3),
    ] {
        let name = format!("stride 2 {cin}->{cout} {h}x{w}");
        check(
            &name,
            ConvSpec::conv3x3(cin, cout, 2, 1),
            [1, cin, h, w],
            ALL,
        );
    }
}

/// Groups 2 and 4, with per-group channel counts that are and are not multiples of 4.
#[test]
fn groups_2_and_4() {
    for (cin, cout, g, stride) in [
        (8, 8, 2, 1),
        (6, 10, 2, 1),
        (16, 16, 4, 1),
        (12, 20, 4, 2),
        (36, 68, 4, 1),
        (4, 4, 4, 1),
    ] {
        let name = format!("groups {g} {cin}->{cout} s{stride}");
        check(
            &name,
            ConvSpec::conv3x3(cin, cout, stride, g),
            [1, cin, 9, 7],
            ALL,
        );
    }
}

/// Batch 1, 2 and 3 (tiles and GEMM rows cross image boundaries).
#[test]
fn batch_1_to_3() {
    for n in 1..=3 {
        let name = format!("batch {n}");
        check(&name, ConvSpec::conv3x3(16, 20, 1, 1), [n, 16, 6, 5], ALL);
        let name = format!("batch {n} stride 2");
        check(&name, ConvSpec::conv3x3(5, 8, 2, 1), [n, 5, 7, 6], ALL);
    }
}

/// 1x1 convolutions (the multi-branch form's second branch), stride 1 and 2, grouped.
#[test]
fn conv1x1() {
    for (cin, cout, stride, g) in [
        (16, 16, 1, 1),
        (13, 7, 1, 1),
        (8, 12, 2, 1),
        (8, 8, 1, 2),
        (12, 20, 2, 4),
    ] {
        let name = format!("1x1 {cin}->{cout} s{stride} g{g}");
        check(
            &name,
            ConvSpec::conv1x1(cin, cout, stride, g),
            [2, cin, 7, 6],
            ALL,
        );
    }
}

/// More than one 64-channel GEMM column tile and a deep reduction (K = 9·80).
#[test]
fn wide_and_deep() {
    check(
        "wide 80->136",
        ConvSpec::conv3x3(80, 136, 1, 1),
        [1, 80, 10, 9],
        ALL,
    );
}
