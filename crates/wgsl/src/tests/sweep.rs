//! Property sweep: random small shapes, strides, groups, kernel sizes and batch sizes, every
//! kernel against the oracle. A failure found here becomes a named case in `edge.rs`.

use super::{ALL, gpu, try_check};
use proptest::prelude::*;
use reparam_tensor::ConvSpec;

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn random_shapes_match_the_oracle(
        cig in 1usize..12,
        cog in 1usize..12,
        groups in prop::sample::select(vec![1usize, 2, 4]),
        kernel in prop::sample::select(vec![1usize, 3]),
        stride in 1usize..=2,
        n in 1usize..=2,
        h in 1usize..12,
        w in 1usize..12,
    ) {
        let Some(ctx) = gpu() else { return Ok(()) };
        let spec = ConvSpec {
            in_channels: cig * groups,
            out_channels: cog * groups,
            kernel,
            stride,
            padding: kernel / 2,
            groups,
        };
        let name = format!("sweep {spec:?} {n}x{h}x{w}");
        let failures = try_check(ctx, &name, spec, [n, cig * groups, h, w], ALL);
        prop_assert!(failures.is_empty(), "{}", failures.join("\n"));
    }
}
