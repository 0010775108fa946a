//! `Algorithm::Auto`: a threshold table, and optional autotuning by timing.

use crate::{Algorithm, Conv2dPlan, Isa, PlanOptions, WinogradError};
use reparam_tensor::{ConvSpec, Epilogue, Tensor};
use std::time::Instant;

/// Output size assumed by [`choose`] when the plan is built without an input-size hint.
pub const DEFAULT_HW: (usize, usize) = (28, 28);

/// Smallest output side at which F(4,3) beat F(2,3) in the measurements below.
pub const F43_MIN_SIDE: usize = 12;

/// Picks an algorithm for `spec` at output size `input_hw` (`None`: [`DEFAULT_HW`]).
///
/// Rules: Winograd only for 3x3 / stride 1 / padding 1 with at least 8 input and output channels
/// per group (below that the transforms dominate); then F(4,3) when the smaller output side is at
/// least [`F43_MIN_SIDE`], else F(2,3) (a 4x4 tile on a 7x7 image pads it to 8x8 and wastes
/// 31 % of the work; F(6,3) did not win in this table: its 8x8 tiles pad 14 → 18 and 28 → 30, and its
/// transforms cost more).
///
/// Measured 2026-11-28 on the development machine (KVM guest, Intel Xeon family 6 model 207
/// "Emerald Rapids", 2 vCPUs, AVX-512F, 1 thread), after the kernel changes of that day
/// (transforms without a zeroed 8x8 intermediate, weight prefetch, narrow register blocks), with
/// `reparam layers --model {a0,b0} --threads 1 --algorithm {direct,f23,f43,f63} --repeats 30
/// [--input-size 112]`: median ms per layer, the smaller of two sweeps (the B0 rows run B0's
/// stride-1 shapes at a 112x112 input to get 28, 14 and 7 outputs):
///
/// | layer (output side) | direct | F(2,3) | F(4,3) | F(6,3) |
/// |---|---|---|---|---|
/// | A0 48→48 @56 | 0.93 | 0.75 | 0.53 | **0.52** |
/// | A0 96→96 @28 | 1.04 | 0.58 | **0.35** | 0.38 |
/// | A0 192→192 @14 | 1.07 | 0.48 | **0.41** | 0.74 |
/// | B0 64→64 @28 | 0.46 | 0.43 | **0.17** | 0.17 |
/// | B0 128→128 @14 | 0.46 | **0.23** | 0.26 | 0.29 |
/// | B0 256→256 @7 | 0.51 | **0.29** | 0.48 | 0.92 |
///
/// F(6,3) and F(4,3) at 56, and F(2,3) and F(4,3) at B0's 128→128 @14, are within this VM's
/// run-to-run noise of each other (an earlier sweep the same day had F(4,3) ahead at 128 @14:
/// 0.19 vs 0.22 ms); the rule keeps F(4,3) there: F(6,3)'s error is ~4x F(4,3)'s
/// (`src/tests/accuracy.rs`) and at 14x14 F(4,3) won every A0 measurement.
///
/// Re-measure and update this table when the kernels change.
pub fn choose(spec: &ConvSpec, input_hw: Option<(usize, usize)>) -> Algorithm {
    let winograd_ok = spec.kernel == 3
        && spec.stride == 1
        && spec.padding == 1
        && spec.in_per_group() >= 8
        && spec.out_per_group() >= 8;
    if !winograd_ok {
        return Algorithm::Direct;
    }
    let (h, w) = input_hw.unwrap_or(DEFAULT_HW);
    if h.min(w) >= F43_MIN_SIDE {
        Algorithm::WinogradF43
    } else {
        Algorithm::WinogradF23
    }
}

/// Builds a plan for every eligible algorithm, times each on a batch-1 input of
/// `options.input_hw` (median of 5 runs after a warm-up) and keeps the fastest.
pub(crate) fn autotune(
    spec: ConvSpec,
    weight: &Tensor,
    epilogue: &Epilogue,
    options: &PlanOptions,
    isa: Isa,
) -> Result<Conv2dPlan, WinogradError> {
    let (h, w) = options.input_hw.unwrap_or(DEFAULT_HW);
    let input = Tensor::filled([1, spec.in_channels, h, w], 0.5)?;
    let mut best: Option<(f64, Conv2dPlan)> = None;
    for algorithm in Algorithm::CONCRETE {
        let Ok(plan) =
            Conv2dPlan::with_algorithm(spec, weight, epilogue, algorithm, isa, options.parallelism)
        else {
            continue; // not eligible (e.g. Winograd on a stride-2 layer)
        };
        let mut output = Tensor::zeros(plan.output_shape(input.shape())?)?;
        plan.run(&input, &mut output)?;
        let mut times: Vec<f64> = (0..5)
            .map(|_| {
                let start = Instant::now();
                plan.run(&input, &mut output)
                    .map(|()| start.elapsed().as_secs_f64())
            })
            .collect::<Result<_, _>>()?;
        times.sort_by(f64::total_cmp);
        let median = times[times.len() / 2];
        if best.as_ref().is_none_or(|(t, _)| median < *t) {
            best = Some((median, plan));
        }
    }
    best.map(|(_, plan)| plan)
        .ok_or_else(|| WinogradError::UnsupportedAlgorithm {
            algorithm: "auto",
            reason: "no algorithm can run this convolution".into(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules() {
        let s1 = ConvSpec::conv3x3(192, 192, 1, 1);
        assert_eq!(choose(&s1, Some((14, 14))), Algorithm::WinogradF43);
        assert_eq!(choose(&s1, Some((7, 7))), Algorithm::WinogradF23);
        assert_eq!(choose(&s1, Some((56, 56))), Algorithm::WinogradF43);
        assert_eq!(
            choose(&ConvSpec::conv3x3(3, 48, 2, 1), None),
            Algorithm::Direct
        );
        assert_eq!(
            choose(&ConvSpec::conv3x3(4, 4, 1, 1), None),
            Algorithm::Direct
        );
        assert_eq!(
            choose(&ConvSpec::conv1x1(64, 64, 1, 1), None),
            Algorithm::Direct
        );
    }
}
