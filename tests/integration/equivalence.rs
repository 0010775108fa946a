//! Property: the multi-branch net and its fold compute the same function.
//!
//! Over random small architectures — stem width, 1–4 stages of depth 1–3, widths multiples of 4,
//! per-block groups from {1, 2, 4, gcd(C_in, C_out)} plus the depthwise-like `C/2` and `C` on
//! identity blocks, optional squeeze-excitation (reduction 4), 2–7 classes — random seeds, batch
//! 1–2 and odd input sizes 5..19, `Graph::multi_branch(train)` and `Graph::plain(fuse(train))`
//! on the reference executor agree on the logits, every stage output and the pooled features.
//!
//! # Tolerance
//! Both sides run on the f64-accumulating oracle, so neither has reduction error; they differ
//! only in *where* values are rounded to f32. The multi-branch block rounds each conv, each BN
//! and each partial sum (≈ 6 roundings of terms as large as the branch outputs), the plain block
//! rounds each fused weight and bias once and the conv output once. Per block that is an error of
//! a few `u = 2⁻²⁴ ≈ 6e-8` times the branch magnitudes, which ReLU and the next convolutions
//! propagate (with gain ≈ 1: the synthetic weights are variance-preserving) through at most 13
//! blocks and the head: relative L2 error `≈ √depth · few·u ≈ 1e-6`. We allow
//! `rel_L2 ≤ 1e-5` and, element-wise (relative to `max(|e|, RMS(e))`, where the worst of a few
//! thousand elements sits several standard deviations out), `max rᵢ ≤ 1e-4`.
//!
//! The error is relative to the magnitude of the *branches*, not of the block output. A stage
//! output that ReLU leaves almost empty (tiny inputs: a 1x2 map with two survivors of
//! cancelling branches, RMS ≈ 1e-4) therefore carries an absolute error of the branches' size
//! (≈ u·0.3) that is large relative to itself. Such a tensor also passes when every element is
//! within the absolute floor [`ABS_FLOOR`] = 1e-5: the synthetic nets' branch terms are O(1)
//! (variance-preserving convs, |β| ≤ 0.2, |μ| ≤ 0.3, |γ| ≤ 0.9, σ² ≥ 0.5), so 1e-5 is ≳ 20x
//! the absolute rounding of a 13-block stack, and for an ordinary tensor (RMS ≳ 0.1) the floor
//! is no looser than the relative bound.
//!
//! Measured over 3,000 sampled cases: tensors with RMS > 1e-2 had `max rᵢ ≤ 1.5e-6` and
//! `rel_L2 ≤ 6e-7`; the worst absolute error anywhere was 4.8e-7. Mistakes in the fold land
//! outside: a wrong tap, channel or bias term gives errors of order 1e-2 to 1; even the subtle
//! ε = 1e-3 instead of 1e-5 (on variances ≥ 0.5) gives 1e-4 to 1e-3, which the sampled cases
//! catch.

use proptest::prelude::*;
use reparam_tensor::Tensor;
use reparam_tensor::rng::SplitMix64;
use reparam_tensor::tolerance::{Tolerance, compare};
use repvgg::{Config, Executor, Graph, Outputs, RunOutput, StageConfig, TrainNet, fuse};

/// `rel_L2 ≤ 1e-5`, `max rᵢ ≤ 1e-4`; derivation in the [module docs](self).
fn tolerance() -> Tolerance {
    Tolerance::new(1e-4, 1e-5)
}

/// Absolute error every element of a near-zero output may have; see the [module docs](self).
const ABS_FLOOR: f64 = 1e-5;

/// `actual` (plain) against `expected` (multi-branch): within [`tolerance`], or every element
/// within [`ABS_FLOOR`].
fn check(name: &str, actual: &Tensor, expected: &Tensor) -> Result<(), String> {
    let cmp = compare(actual, expected).map_err(|e| format!("{name}: {e}"))?;
    let tol = tolerance();
    if cmp.within(&tol) {
        return Ok(());
    }
    let max_abs = actual
        .data()
        .iter()
        .zip(expected.data())
        .map(|(&a, &e)| (f64::from(a) - f64::from(e)).abs())
        .fold(0.0, f64::max);
    // `f64::max` skips NaN, so non-finite values are ruled out separately.
    if actual.first_non_finite().is_none() && max_abs <= ABS_FLOOR {
        return Ok(());
    }
    Err(format!(
        "{name}: {cmp}; max absolute error {max_abs:.3e} exceeds tolerance (max relative \
         {:.1e}, relative L2 {:.1e}, or absolute {ABS_FLOOR:.1e})",
        tol.max_rel, tol.rel_l2
    ))
}

/// The raw draws of one case; [`Case::config`] turns them into a valid architecture.
#[derive(Debug, Clone)]
struct Case {
    /// Stem width / 4.
    stem: usize,
    /// Per stage: width / 4 and one group choice per block.
    stages: Vec<(usize, Vec<usize>)>,
    se: bool,
    classes: usize,
    seed: u64,
    batch: usize,
    height: usize,
    width: usize,
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 { a } else { gcd(b, a % b) }
}

impl Case {
    /// Groups for a block `c_in → c_out`: choice `k` picks from 1, 2, 4, gcd(C_in, C_out) and,
    /// for `C_in = C_out`, the depthwise-like `C/2` and `C` (all of which divide both widths).
    fn groups(c_in: usize, c_out: usize, k: usize) -> usize {
        let mut options = vec![1, 2, 4, gcd(c_in, c_out)];
        if c_in == c_out {
            options.extend([c_in / 2, c_in]);
        }
        options[k % options.len()]
    }

    fn config(&self) -> Config {
        let stem_width = 4 * self.stem;
        let mut channels = stem_width;
        let stages = self
            .stages
            .iter()
            .map(|(w, choices)| {
                let width = 4 * w;
                let groups = choices
                    .iter()
                    .map(|&k| {
                        let g = Self::groups(channels, width, k);
                        channels = width;
                        g
                    })
                    .collect();
                StageConfig { width, groups }
            })
            .collect();
        let se = self.se.then_some(4);
        Config::custom(stem_width, stages, self.classes, se).expect("generated config is valid")
    }

    fn input(&self) -> Tensor {
        let shape = [self.batch, 3, self.height, self.width];
        let mut rng = SplitMix64::new(self.seed ^ 0x5EED_1A9E);
        let len = shape.iter().product();
        Tensor::new(shape, rng.uniform_vec(len, -1.0, 1.0)).expect("length from the shape")
    }
}

fn case() -> impl Strategy<Value = Case> {
    let stage = (1usize..=6, prop::collection::vec(0usize..6, 1..=3));
    (
        1usize..=4,
        prop::collection::vec(stage, 1..=4),
        any::<bool>(),
        2usize..=7,
        any::<u64>(),
        1usize..=2,
        2usize..=9,
        2usize..=9,
    )
        .prop_map(|(stem, stages, se, classes, seed, batch, h, w)| Case {
            stem,
            stages,
            se,
            classes,
            seed,
            batch,
            height: 2 * h + 1,
            width: 2 * w + 1,
        })
}

/// Runs both forms of the case's net on the reference executor.
fn run_both(case: &Case) -> (RunOutput, RunOutput) {
    let config = case.config();
    let train = TrainNet::random(&config, case.seed);
    let plain = fuse(&train).expect("fold");
    let x = case.input();
    let run = |graph: &Graph| {
        Executor::reference(graph)
            .expect("prepare")
            .with_outputs(Outputs::ALL)
            .run(&x)
            .expect("run")
    };
    let multi = run(&Graph::multi_branch(&train).expect("multi-branch graph"));
    let plain = run(&Graph::plain(&plain).expect("plain graph"));
    (multi, plain)
}

/// Every output of `plain` against `multi`: logits, pooled features, each stage.
fn compare_all(multi: &RunOutput, plain: &RunOutput) -> Result<(), String> {
    if multi.stages.len() != plain.stages.len() {
        return Err(format!(
            "{} stage outputs vs {}",
            multi.stages.len(),
            plain.stages.len()
        ));
    }
    let mut pairs = vec![
        ("logits".to_string(), &plain.logits, &multi.logits),
        (
            "pooled".to_string(),
            plain.pooled.as_ref().expect("pooled kept"),
            multi.pooled.as_ref().expect("pooled kept"),
        ),
    ];
    for (k, (p, m)) in plain.stages.iter().zip(&multi.stages).enumerate() {
        pairs.push((format!("stage{k}"), p, m));
    }
    pairs
        .into_iter()
        .try_for_each(|(name, p, m)| check(&name, p, m))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn multi_branch_equals_its_fold(case in case()) {
        let (multi, plain) = run_both(&case);
        let config = case.config();
        prop_assert_eq!(multi.stages.len(), config.stages.len() + 1);
        prop_assert_eq!(multi.logits.shape(), [case.batch, case.classes, 1, 1]);
        if let Err(msg) = compare_all(&multi, &plain) {
            prop_assert!(false, "{:?}: {}", config, msg);
        }
    }
}

/// Named regressions: depthwise identity blocks next to SE, and a 1x1 spatial tail.
#[test]
fn depthwise_se_and_tiny_spatial_tail() {
    let case = Case {
        stem: 2,
        stages: vec![
            (2, vec![0, 5, 4]),
            (3, vec![3, 5]),
            (1, vec![0]),
            (1, vec![5]),
        ],
        se: true,
        classes: 7,
        seed: 42,
        batch: 2,
        height: 5,
        width: 19,
    };
    let config = case.config();
    // stage1.1 is depthwise (g = C = 8), stage1.2 has g = C/2, stage2.1 is depthwise (g = 12).
    assert_eq!(config.stages[0].groups, [1, 8, 4]);
    assert_eq!(config.stages[1].groups[1], 12);
    let (multi, plain) = run_both(&case);
    if let Err(msg) = compare_all(&multi, &plain) {
        panic!("{msg}");
    }
}
