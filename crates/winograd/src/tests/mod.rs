//! The correctness suite of the kernel crate: every kernel against `reparam_tensor::reference`
//! (the f64 oracle), on every ISA this machine has.
//!
//! | module | what |
//! |---|---|
//! | [`edge`] | named edge cases: channel counts 1/3/13/15/16/17, tile remainders, inputs smaller than a tile, strides, groups, batch, 1x1, the RGB first layer, epilogues |
//! | [`sweep`] | a `proptest` sweep over shapes, groups, strides, kernels and algorithms |
//! | [`layers`] | every RepVGG-A0 and -B0 layer at 224x224 input, every eligible algorithm |
//! | [`accuracy`] | the measured Winograd error at C = 192, with bounds that fail if it grows |
//! | [`threads`] | bitwise-identical results for any thread count |
//! | [`precision`] | f16 transformed weights against their own bound; sizes, names, range errors |
//! | [`api`] | scratch, blocked layout, typed errors, `Auto`, autotune, `REPARAM_ISA` |
//!
//! # Tolerance
//! Every comparison uses [`Tolerance::for_reduction`]`(K, f)` with `K = (C_in/g)·k²`, the length
//! of the reduction behind one output, so `rel_L2 ≤ f·4u·√K` and `max rᵢ ≤ f·32u·√K`
//! (`u = 2⁻²⁴`; measures defined in `reparam_tensor::tolerance`). The algorithm factor `f` is
//! [`algorithm_factor`].
//!
//! # ISAs
//! Each check runs on every ISA of [`Isa::available`] (scalar always; AVX-512F and AVX2+FMA on
//! x86-64 CPUs that have them; NEON on aarch64, including CI under qemu). The first check of a
//! run prints one line naming the ISAs tested and those skipped as unavailable, straight to
//! stderr so that it shows even when the harness captures test output.

mod accuracy;
mod api;
mod bf16;
mod edge;
mod layers;
mod precision;
mod sweep;
mod threads;

use crate::{Algorithm, Conv2dPlan, ConvError, Isa, Parallelism, PlanOptions};
use reparam_tensor::TensorError;
use reparam_tensor::reference::{conv2d, conv2d_magnitude};
use reparam_tensor::rng::SplitMix64;
use reparam_tensor::tolerance::{Tolerance, cancellation_floor, check_close_floored};
use reparam_tensor::{BlockedTensor, ConvSpec, Epilogue, Shape, Tensor};
use std::io::Write;
use std::sync::Once;

/// Error growth of each algorithm relative to direct summation (`f` in the tolerance formula;
/// see [`Algorithm::error_factor`] for the measured values behind it). Measured values at
/// C = 192 are printed and bounded separately by [`accuracy`].
pub(crate) fn algorithm_factor(a: Algorithm) -> f64 {
    a.error_factor()
}

/// The tolerance of `spec` run with `algorithm`.
pub(crate) fn tolerance(spec: &ConvSpec, algorithm: Algorithm) -> Tolerance {
    Tolerance::for_reduction(spec.reduction_len(), algorithm_factor(algorithm))
}

/// Whether the crate's Winograd kernels can run `spec` (3x3, stride 1, padding 1).
pub(crate) fn winograd_eligible(spec: &ConvSpec) -> bool {
    spec.kernel == 3 && spec.stride == 1 && spec.padding == 1
}

/// The ISAs every check runs on: [`Isa::available`]. Prints, once per test binary, which ISAs
/// are tested and which are skipped because this CPU/build lacks them.
pub(crate) fn tested_isas() -> Vec<Isa> {
    static REPORT: Once = Once::new();
    let available = Isa::available();
    REPORT.call_once(|| {
        let skipped: Vec<&str> = Isa::ALL
            .iter()
            .filter(|i| !available.contains(i))
            .map(|i| i.name())
            .collect();
        let tested: Vec<&str> = available.iter().map(|i| i.name()).collect();
        visible(&format!(
            "reparam-winograd tests: ISAs tested: {}; skipped (unavailable on this CPU/build): {}",
            tested.join(", "),
            if skipped.is_empty() {
                "none".to_string()
            } else {
                skipped.join(", ")
            }
        ));
    });
    available
}

/// Writes a line to stderr directly, bypassing the test harness's output capture, so it is seen
/// in every run (`print!`/`eprint!` output of a passing test is swallowed).
pub(crate) fn visible(line: &str) {
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

/// Plan options for one algorithm on one ISA, single-threaded.
pub(crate) fn options(algorithm: Algorithm, isa: Isa) -> PlanOptions {
    PlanOptions {
        algorithm,
        isa: Some(isa),
        parallelism: Parallelism::Sequential,
        ..PlanOptions::default()
    }
}

/// Test data of one case.
pub(crate) struct Data {
    pub x: Tensor,
    pub w: Tensor,
    pub bias: Vec<f32>,
}

impl Data {
    /// General data: inputs and weights uniform in [-1, 1), bias in [-0.5, 0.5).
    pub fn signed(spec: &ConvSpec, input: Shape, seed: u64) -> Self {
        let mut rng = SplitMix64::new(seed);
        let x = uniform(input, &mut rng, -1.0, 1.0);
        let w = uniform(spec.weight_shape(), &mut rng, -1.0, 1.0);
        let bias = rng.uniform_vec(spec.out_channels, -0.5, 0.5);
        Self { x, w, bias }
    }

    /// Network-like data: post-ReLU inputs uniform in [0, 1), weights uniform with the He
    /// variance `2/K` (`K = (C_in/g)·k²`), small biases.
    pub fn network(spec: &ConvSpec, input: Shape, seed: u64) -> Self {
        let mut rng = SplitMix64::new(seed);
        let x = uniform(input, &mut rng, 0.0, 1.0);
        // Uniform in [-a, a) has variance a²/3.
        let a = (6.0 / spec.reduction_len() as f64).sqrt() as f32;
        let w = uniform(spec.weight_shape(), &mut rng, -a, a);
        let bias = rng.uniform_vec(spec.out_channels, -0.1, 0.1);
        Self { x, w, bias }
    }
}

fn uniform(shape: Shape, rng: &mut SplitMix64, lo: f32, hi: f32) -> Tensor {
    let len = shape.iter().product();
    Tensor::new(shape, rng.uniform_vec(len, lo, hi)).expect("length from the shape")
}

/// `max(v, 0)` of every element (the oracle's ReLU: rounding to f32 commutes with it).
fn relu(t: &Tensor) -> Tensor {
    let data = t.data().iter().map(|&v| v.max(0.0)).collect();
    Tensor::new(t.shape(), data).expect("same shape")
}

/// Bitwise equality of two tensors' data (so NaN == NaN and -0 != +0), naming the first
/// difference.
pub(crate) fn same_bits(a: &Tensor, b: &Tensor, context: &str) -> Result<(), String> {
    if a.shape() != b.shape() {
        return Err(format!(
            "{context}: shapes differ: {:?} vs {:?}",
            a.shape(),
            b.shape()
        ));
    }
    match a
        .data()
        .iter()
        .zip(b.data())
        .position(|(x, y)| x.to_bits() != y.to_bits())
    {
        None => Ok(()),
        Some(i) => Err(format!(
            "{context}: not bitwise identical; first difference at flat index {i} of shape {:?}: {:e} vs {:e}",
            a.shape(),
            a.data()[i],
            b.data()[i]
        )),
    }
}

/// The oracle's result for one layer and the denominator floor its comparison uses
/// (`Σ|terms|/√K`, see `reparam_tensor::tolerance`: results that are small only through
/// cancellation are measured against what their terms allow).
pub(crate) struct Oracle {
    /// `reference::conv2d`.
    pub value: Tensor,
    /// `tolerance::cancellation_floor(reference::conv2d_magnitude(..), K)`.
    pub floor: Tensor,
}

impl Oracle {
    /// The oracle of `spec` with `epilogue` on `x`.
    pub fn new(
        x: &Tensor,
        spec: &ConvSpec,
        w: &Tensor,
        epilogue: &Epilogue,
    ) -> Result<Self, TensorError> {
        Ok(Self {
            value: conv2d(x, spec, w, epilogue)?,
            floor: cancellation_floor(
                &conv2d_magnitude(x, spec, w, epilogue)?,
                spec.reduction_len(),
            ),
        })
    }

    /// The same oracle followed by ReLU (the floor is unchanged: ReLU only shrinks errors).
    pub fn relu(&self) -> Self {
        Self {
            value: relu(&self.value),
            floor: self.floor.clone(),
        }
    }
}

/// Runs one plan every way the API offers and checks each against `expected`:
/// - `run` into an output poisoned with NaN, compared with the oracle within `tol`;
/// - `run` with caller scratch of exactly `scratch_len` floats poisoned with NaN (a kernel reading
///   scratch it did not write shows up as NaN), bitwise equal to `run`;
/// - `run` a second time on the plan's now-dirty scratch, bitwise equal;
/// - `run` NCHWc to NCHWc into a NaN-poisoned NCHWc output: bitwise equal after conversion, and the
///   padding lanes of the last channel block written as exactly 0 (the layout's invariant,
///   which the next layer relies on);
/// - `run` NCHWc to NCHW and NCHW to NCHWc, bitwise equal to the others.
pub(crate) fn check_plan(
    plan: &Conv2dPlan,
    x: &Tensor,
    oracle: &Oracle,
    tol: &Tolerance,
    context: &str,
) -> Result<(), String> {
    let expected = &oracle.value;
    let err = |what: &str, e: ConvError| format!("{context}: {what} failed: {e}");
    let mut out = Tensor::filled(expected.shape(), f32::NAN).expect("shape");
    plan.run(x, &mut out, None).map_err(|e| err("run", e))?;
    check_close_floored(&out, expected, &oracle.floor, tol, context)?;

    let len = plan
        .scratch_len(x.shape(), rayon::current_num_threads())
        .map_err(|e| err("scratch_len", e))?;
    let mut scratch = vec![f32::NAN; len];
    let mut out2 = Tensor::filled(expected.shape(), f32::NAN).expect("shape");
    plan.run(x, &mut out2, Some(&mut scratch))
        .map_err(|e| err("run with caller scratch", e))?;
    same_bits(
        &out2,
        &out,
        &format!("{context}: caller scratch (NaN) vs own scratch"),
    )?;

    out2.data_mut().fill(f32::NAN);
    plan.run(x, &mut out2, None)
        .map_err(|e| err("second run", e))?;
    same_bits(&out2, &out, &format!("{context}: second run vs first"))?;

    let block = plan.block();
    let xb = BlockedTensor::from_nchw(x, block).expect("block");
    let mut ob = BlockedTensor::zeros(expected.shape(), block).expect("block");
    ob.data_mut().fill(f32::NAN);
    plan.run(&xb, &mut ob, None)
        .map_err(|e| err("run NCHWc to NCHWc", e))?;
    same_bits(
        &ob.to_nchw(),
        &out,
        &format!("{context}: NCHWc to NCHWc vs NCHW"),
    )?;
    let mut out3 = Tensor::filled(expected.shape(), f32::NAN).expect("shape");
    plan.run(&xb, &mut out3, None)
        .map_err(|e| err("run NCHWc to NCHW", e))?;
    same_bits(&out3, &out, &format!("{context}: NCHWc to NCHW vs NCHW"))?;
    let mut ob2 = BlockedTensor::zeros(expected.shape(), block).expect("block");
    ob2.data_mut().fill(f32::NAN);
    plan.run(x, &mut ob2, None)
        .map_err(|e| err("run NCHW to NCHWc", e))?;
    if ob2
        .data()
        .iter()
        .map(|v| v.to_bits())
        .ne(ob.data().iter().map(|v| v.to_bits()))
    {
        return Err(format!(
            "{context}: NCHW to NCHWc differs from NCHWc to NCHWc (padding lanes included)"
        ));
    }
    let [n, c, h, w] = expected.shape();
    if !c.is_multiple_of(block) {
        let blocks = c.div_ceil(block);
        for ni in 0..n {
            let base = ((ni * blocks + blocks - 1) * h * w) * block;
            for p in 0..h * w {
                for lane in c % block..block {
                    let v = ob.data()[base + p * block + lane];
                    if v.to_bits() != 0 {
                        return Err(format!(
                            "{context}: an NCHWc run wrote {v} into padding lane {lane} of the last channel block (image {ni}, pixel {p}); must be 0"
                        ));
                    }
                }
            }
        }
    }
    Ok(())
}

/// How a case applies its epilogue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Bias {
    /// A per-channel bias.
    Yes,
    /// No bias.
    No,
}

/// Checks one convolution: the oracle is computed once (without ReLU), then every algorithm of
/// `algorithms` runs on every available ISA, with ReLU off and on. A Winograd algorithm on a
/// spec it cannot run must be refused with [`ConvError::UnsupportedAlgorithm`].
pub(crate) fn try_check(
    name: &str,
    spec: ConvSpec,
    input: Shape,
    algorithms: &[Algorithm],
    bias: Bias,
    seed: u64,
) -> Result<(), String> {
    let data = Data::signed(&spec, input, seed);
    let bias = match bias {
        Bias::Yes => Some(data.bias.clone()),
        Bias::No => None,
    };
    let linear = Epilogue {
        bias: bias.clone(),
        relu: false,
    };
    let expected = Oracle::new(&data.x, &spec, &data.w, &linear)
        .map_err(|e| format!("case `{name}`: oracle failed: {e}"))?;
    let expected_relu = expected.relu();
    for isa in tested_isas() {
        for &algorithm in algorithms {
            for relu in [false, true] {
                let epilogue = Epilogue {
                    bias: bias.clone(),
                    relu,
                };
                let context = format!(
                    "case `{name}`: {algorithm} on {isa}, {spec:?}, input {input:?}, bias {}, relu {relu}",
                    epilogue.bias.is_some()
                );
                let plan = Conv2dPlan::new(spec, &data.w, &epilogue, &options(algorithm, isa));
                if algorithm != Algorithm::Direct && !winograd_eligible(&spec) {
                    match plan {
                        Err(ConvError::UnsupportedAlgorithm { .. }) => continue,
                        other => {
                            return Err(format!(
                                "{context}: expected UnsupportedAlgorithm, got {other:?}"
                            ));
                        }
                    }
                }
                let plan = plan.map_err(|e| format!("{context}: plan failed: {e}"))?;
                if plan.algorithm() != algorithm || plan.isa() != isa || plan.block() != isa.lanes()
                {
                    return Err(format!(
                        "{context}: plan reports {} on {} with block {}",
                        plan.algorithm(),
                        plan.isa(),
                        plan.block()
                    ));
                }
                let want = if relu { &expected_relu } else { &expected };
                check_plan(&plan, &data.x, want, &tolerance(&spec, algorithm), &context)?;
            }
        }
    }
    Ok(())
}

/// [`try_check`] with a bias, panicking with the message on failure.
#[track_caller]
pub(crate) fn check(name: &str, spec: ConvSpec, input: Shape, algorithms: &[Algorithm]) {
    if let Err(msg) = try_check(name, spec, input, algorithms, Bias::Yes, seed_of(name)) {
        panic!("{msg}");
    }
}

/// A seed derived from a case name (FNV-1a), so each named case has its own data.
pub(crate) fn seed_of(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Every concrete algorithm.
pub(crate) const ALL: &[Algorithm] = &Algorithm::CONCRETE;
