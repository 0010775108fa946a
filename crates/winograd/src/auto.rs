//! `Algorithm::Auto`: a threshold table, and optional autotuning by timing.

use crate::{Algorithm, Conv2dPlan, ConvError, Isa, PlanOptions};
use reparam_tensor::{ConvSpec, Epilogue, Tensor};
use std::time::Instant;

/// Output size assumed by [`choose`] when the plan is built without an input-size hint.
pub const DEFAULT_HW: (usize, usize) = (28, 28);

/// Smallest output side at which F(4,3) beat F(2,3) in the measurements below.
pub const F43_MIN_SIDE: usize = 12;

/// Smallest output side at which F(6,3) beat F(4,3) in the measurements below.
pub const F63_MIN_SIDE: usize = 36;

/// F(6,3) is chosen (from [`F63_MIN_SIDE`] on) when its transform-domain work is at most this
/// many hundredths of F(4,3)'s (see [`choose`]).
pub const F63_MAX_WORK_PERCENT: usize = 93;

/// On AVX2+FMA: smallest output side at which F(6,3) beat F(4,3) (see [`choose`]).
pub const F63_MIN_SIDE_AVX2: usize = 28;

/// On AVX2+FMA: F(6,3) is chosen (from [`F63_MIN_SIDE_AVX2`] on) when its work is at most this
/// many hundredths of F(4,3)'s.
pub const F63_MAX_WORK_PERCENT_AVX2: usize = 110;

/// Tiles per register block assumed when comparing the variants' work (the AVX-512 and NEON
/// blocks; a block's unused columns are computed too).
const BLOCK_TILES: usize = 8;

/// Transform-domain multiplications per input-output channel pair of F(m,3) on an `h × w`
/// output: α² per tile, the tiles padded to whole register blocks.
fn winograd_work(h: usize, w: usize, m: usize) -> usize {
    let alpha = m + 2;
    (h.div_ceil(m) * w.div_ceil(m)).div_ceil(BLOCK_TILES) * BLOCK_TILES * alpha * alpha
}

/// Picks an algorithm for `spec` at output size `input_hw` (`None`: [`DEFAULT_HW`]) for plans
/// on `isa`.
///
/// Rules: Winograd only for 3x3 / stride 1 / padding 1 with at least 8 input and output channels
/// per group (below that the transforms dominate); then F(6,3) when the smaller output side is
/// at least [`F63_MIN_SIDE`] and its work (`winograd_work`: 64 products per 6x6 tile against
/// 36 per 4x4 tile, tiles padded to register blocks) is at most [`F63_MAX_WORK_PERCENT`] % of
/// F(4,3)'s; else F(4,3) when the smaller side is at least [`F43_MIN_SIDE`]; else F(2,3) (a 4x4
/// tile on a 7x7 image pads it to 8x8 and wastes 31 % of the work).
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
/// F(2,3) and F(4,3) at B0's 128→128 @14 are within this VM's run-to-run noise of each other (an
/// earlier sweep the same day had F(4,3) ahead: 0.19 vs 0.22 ms); the rule keeps F(4,3) there,
/// as at every 14x14 A0 layer. F(6,3) and F(4,3) at 56 were within the noise of separate sweeps
/// too; the in-process comparison below separates them.
///
/// Re-checked the same way (one sweep of two runs, smaller median) after the buffers were
/// cache-line aligned and the input transform reordered (commit 18cbe82): every rule still
/// picks the fastest variant — A0 @56 F(6,3) 0.38 vs F(4,3) 0.40 ms, @28 F(4,3) 0.27 vs F(6,3)
/// 0.33, @14 F(4,3) 0.36 vs F(2,3) 0.40; B0 @28 F(4,3) 0.13 vs F(6,3) 0.14, @14 F(4,3) 0.17
/// vs F(2,3) 0.19, @7 F(2,3) 0.26 vs direct 0.41.
///
/// F(6,3) against F(4,3), measured later the same day after the band-major schedule landed,
/// in-process (both plans linked into one program, calls interleaved, min / median of 100–300
/// runs, 1 thread, AVX-512F), as F(4,3)'s time over F(6,3)'s (above 1: F(6,3) faster) and
/// F(6,3)'s work relative to F(4,3)'s:
///
/// | output side | F(6,3) work | 48 ch | 64 ch | 96 ch | 128 ch |
/// |---|---|---|---|---|---|
/// | 28 | 1.02 | 0.77 | 0.75–0.97 | 0.99–1.00 (2 threads: 0.74–0.75) | |
/// | 32 | 1.11 | | 0.92 | | |
/// | 36 | 0.81 | | 1.19 | 0.97–1.17 | 1.06–1.21 |
/// | 42 | 0.78 | | 1.36–1.38 | | |
/// | 48 | 0.79 | | 1.19–1.22 | | 1.26–1.29 |
/// | 56 | 0.92 | 1.03–1.08 | 0.94–1.09 | 1.02–1.04 | 0.98–0.99 |
/// | 112 | 0.83 | 1.08–1.19 | 1.10–1.15 | | 0.96–1.04 |
///
/// On 2 threads F(6,3) measured 1.02–1.06x at 48→48 @56 and 1.02–1.08x at 64→64 @56; with
/// AVX2 1.08–1.17x at 48 and 64 channels @56 (and 1.10–1.11x at 96→96 @28, where the rule
/// keeps F(4,3)). F(6,3)'s error is about 4x F(4,3)'s (`src/tests/accuracy.rs`: 2.6e-6 against 6.9e-7
/// relative L2 at 192 channels), within the tolerance the tests hold every variant to.
///
/// On AVX2+FMA the F(6,3) rule starts at [`F63_MIN_SIDE_AVX2`] with [`F63_MAX_WORK_PERCENT_AVX2`]
/// (at 28x28 F(6,3)'s work is 1.02x F(4,3)'s; at 32, 1.11x, so F(4,3) stays): measured
/// 2026-12-07 on the AMD EPYC Zen 3 VM (family 25 model 1, 2 vCPUs, AVX2+FMA, no AVX-512), in
/// process (an F(4,3) and an F(6,3) plan of the same layer run alternately, blocked NCHWc,
/// median of 24 rounds of 5 runs, two runs each), F(4,3)'s time over F(6,3)'s:
///
/// | layer | 1 thread | 2 threads |
/// |---|---|---|
/// | 96→96 @28 | 1.09, 1.09 | 1.37, 1.08 |
/// | 128→128 @28 | 1.10, 1.09 | 1.24, 1.28 |
/// | 192→192 @14 | 0.92 | 0.96 |
///
/// in line with the Intel VM's AVX2 figure above (1.10–1.11x at 96→96 @28). On AVX-512 and
/// NEON (and scalar) the general rule holds.
///
/// The AMD EPYC Zen 4 VM (family 25 model 17, 2 vCPUs, AVX-512F executed as two 256-bit
/// halves) needs no rule of its own: measured 2026-12-07 the same way (median of 40 rounds of 5
/// runs), F(4,3)'s time over F(6,3)'s at 28x28 0.99–1.00x (64, 96, 128 ch) on 1 thread and
/// 0.76–1.03x on 2, at 14x14 0.64–0.68x; at 56x56 1.07–1.12x; F(4,3)'s over F(2,3)'s at 14x14
/// 0.75–0.80x: the thresholds above pick the fastest variant there too
/// (`docs/performance.md#zen-4-avx-512f-avx512-bf16-per-layer-beside-ncnn`).
///
/// Re-measure and update these tables when the kernels change.
pub fn choose(spec: &ConvSpec, input_hw: Option<(usize, usize)>, isa: Isa) -> Algorithm {
    let winograd_ok = spec.kernel == 3
        && spec.stride == 1
        && spec.padding == 1
        && spec.in_per_group() >= 8
        && spec.out_per_group() >= 8;
    if !winograd_ok {
        return Algorithm::Direct;
    }
    let (h, w) = input_hw.unwrap_or(DEFAULT_HW);
    let (f63_min_side, f63_max_work) = match isa {
        Isa::Avx2Fma => (F63_MIN_SIDE_AVX2, F63_MAX_WORK_PERCENT_AVX2),
        _ => (F63_MIN_SIDE, F63_MAX_WORK_PERCENT),
    };
    if h.min(w) >= f63_min_side
        && 100 * winograd_work(h, w, 6) <= f63_max_work * winograd_work(h, w, 4)
    {
        Algorithm::WinogradF63
    } else if h.min(w) >= F43_MIN_SIDE {
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
) -> Result<Conv2dPlan, ConvError> {
    let (h, w) = options.input_hw.unwrap_or(DEFAULT_HW);
    let input = Tensor::filled([1, spec.in_channels, h, w], 0.5)?;
    let mut best: Option<(f64, Conv2dPlan)> = None;
    for algorithm in Algorithm::CONCRETE {
        let plan = match Conv2dPlan::with_algorithm(spec, weight, epilogue, algorithm, isa, options)
        {
            Ok(plan) => plan,
            // Not eligible (e.g. Winograd on a stride-2 layer).
            Err(ConvError::UnsupportedAlgorithm { .. }) => continue,
            Err(e) => return Err(e),
        };
        let mut output = Tensor::zeros(plan.output_shape(input.shape())?)?;
        plan.run(&input, &mut output, None)?;
        let mut times: Vec<f64> = (0..5)
            .map(|_| {
                let start = Instant::now();
                plan.run(&input, &mut output, None)
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
        .ok_or_else(|| ConvError::UnsupportedAlgorithm {
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
        let choose = |spec: &ConvSpec, hw| choose(spec, hw, Isa::Avx512f);
        assert_eq!(choose(&s1, Some((14, 14))), Algorithm::WinogradF43);
        assert_eq!(choose(&s1, Some((7, 7))), Algorithm::WinogradF23);
        assert_eq!(choose(&s1, Some((28, 28))), Algorithm::WinogradF43);
        assert_eq!(choose(&s1, Some((32, 32))), Algorithm::WinogradF43);
        assert_eq!(choose(&s1, Some((40, 40))), Algorithm::WinogradF43);
        for side in [36, 42, 48, 56, 112] {
            assert_eq!(
                choose(&s1, Some((side, side))),
                Algorithm::WinogradF63,
                "{side}x{side}"
            );
        }
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

    #[test]
    fn avx2_takes_f63_from_28() {
        let s1 = ConvSpec::conv3x3(96, 96, 1, 1);
        let avx2 = |side| choose(&s1, Some((side, side)), Isa::Avx2Fma);
        assert_eq!(avx2(28), Algorithm::WinogradF63);
        assert_eq!(avx2(32), Algorithm::WinogradF43);
        assert_eq!(avx2(14), Algorithm::WinogradF43);
        assert_eq!(avx2(56), Algorithm::WinogradF63);
        assert_eq!(
            choose(&s1, Some((28, 28)), Isa::Neon),
            Algorithm::WinogradF43
        );
    }
}
