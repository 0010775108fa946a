//! The comparison every test in the workspace uses: a computed tensor against the oracle.
//!
//! # Error measures
//! For actual `a` and expected `e` (same shape):
//! - **element relative error** `rᵢ = |aᵢ − eᵢ| / max(|eᵢ|, RMS(e))`. The RMS floor keeps elements
//!   that are near zero through cancellation (whose absolute error scales with the magnitude of
//!   the summands, not of the result) from dominating; a NaN or infinite `aᵢ` where `eᵢ` is finite
//!   counts as `r = ∞`.
//! - **relative L2 error** `‖a − e‖₂ / ‖e‖₂` (just `‖a − e‖₂` when `e` is all zeros).
//!
//! # Tolerance formula
//! A dot product of length `K` accumulated in `f32` has a rounding error bounded by `K·u·Σ|xᵢyᵢ|`
//! in the worst case and growing like `√K·u` for terms of random sign (Higham, *Accuracy and
//! Stability of Numerical Algorithms*, §3.1 and §4.2), with unit round-off `u = 2⁻²⁴`. The oracle
//! accumulates in `f64`, so its own error is negligible. [`Tolerance::for_reduction`] therefore
//! allows, for a reduction of length `K` and an algorithm factor `f` (1 for direct summation,
//! larger for transforms such as Winograd, documented next to each kernel):
//!
//! ```text
//! rel_L2  ≤ f · 4u · √K
//! max rᵢ  ≤ f · 32u · √K
//! ```
//!
//! The constants leave headroom over the typical √K growth for blocked or reordered summation
//! (e.g. split accumulators) while still failing for a wrong tap, channel or bias, which produce
//! errors of order 1.
//!
//! # Cancellation
//! Both measures divide by the expected values, so a result that is small only because its `K`
//! terms cancel (e.g. a single output channel whose few outputs all land near zero) would be
//! held to an error far below what any f32 summation of those terms can reach. The `*_floored`
//! variants take a per-element floor for the denominator: [`cancellation_floor`]`(m, K) = m/√K`,
//! where `m = Σ|terms|` (`reference::conv2d_magnitude`) — the size a sum of `K` terms of these
//! magnitudes and random signs has. Where the result is at least that large (the typical case)
//! nothing changes; below it, the error is measured against what the terms allow.

use crate::{Tensor, TensorError};
use std::fmt;

/// Unit round-off of `f32`, `u = 2⁻²⁴`.
pub const F32_UNIT_ROUNDOFF: f64 = 1.0 / 16_777_216.0;

/// Bounds on the two error measures of the [module docs](self).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tolerance {
    /// Largest allowed element relative error `max rᵢ`.
    pub max_rel: f64,
    /// Largest allowed relative L2 error.
    pub rel_l2: f64,
}

impl Tolerance {
    /// Explicit bounds (for end-to-end checks whose error is not a single reduction).
    pub fn new(max_rel: f64, rel_l2: f64) -> Self {
        Self { max_rel, rel_l2 }
    }

    /// The formula of the [module docs](self): `rel_L2 ≤ f·4u·√K`, `max rᵢ ≤ f·32u·√K`, where
    /// `K = reduction_len.max(1)` and `f = algorithm_factor`.
    pub fn for_reduction(reduction_len: usize, algorithm_factor: f64) -> Self {
        let sqrt_k = (reduction_len.max(1) as f64).sqrt();
        let base = algorithm_factor * F32_UNIT_ROUNDOFF * sqrt_k;
        Self {
            max_rel: 32.0 * base,
            rel_l2: 4.0 * base,
        }
    }
}

impl Tolerance {
    /// A whole network of `depth` layers in sequence whose longest reduction is `K =
    /// max_reduction_len` and whose least accurate algorithm has factor `f`: the formula of
    /// the [module docs](self) with factor `f·depth`, i.e. `rel_L2 ≤ f·depth·4u·√K`,
    /// `max rᵢ ≤ f·depth·32u·√K`.
    ///
    /// Each layer adds its own rounding error and passes on the relative error of its input
    /// (ReLU, pooling and well-scaled weights do not amplify it), so the errors of the layers add
    /// up at most linearly in `depth`. For RepVGG-A0 (22 3x3 convs and the classifier, F(6,3),
    /// `K = 1728`) this allows `rel_L2 ≤ 3.6e-3`: loose next to the ~2e-7 measured at the
    /// logits (A0 and B0, `tests/integration/cpu.rs`), and still far below the order-1 error of
    /// a wrong weight, channel or bias.
    pub fn for_network(max_reduction_len: usize, algorithm_factor: f64, depth: usize) -> Self {
        Self::for_reduction(max_reduction_len, algorithm_factor * depth.max(1) as f64)
    }
}

/// The outcome of [`compare`]: the worst element and the relative L2 error.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    /// `[n, c, h, w]` of the element with the largest relative error.
    pub worst_index: [usize; 4],
    /// The computed value there.
    pub worst_actual: f32,
    /// The expected value there.
    pub worst_expected: f32,
    /// Its relative error `rᵢ` (∞ for a non-finite actual where the expected is finite).
    pub max_rel: f64,
    /// `‖a − e‖₂ / ‖e‖₂`.
    pub rel_l2: f64,
}

impl Comparison {
    /// True when both measures are within `tol`.
    pub fn within(&self, tol: &Tolerance) -> bool {
        self.max_rel <= tol.max_rel && self.rel_l2 <= tol.rel_l2
    }
}

impl fmt::Display for Comparison {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "worst element {:?}: actual {:e}, expected {:e}, relative error {:.3e}; relative L2 error {:.3e}",
            self.worst_index, self.worst_actual, self.worst_expected, self.max_rel, self.rel_l2
        )
    }
}

/// Compares `actual` against `expected` (the oracle); fails only if the shapes differ.
pub fn compare(actual: &Tensor, expected: &Tensor) -> Result<Comparison, TensorError> {
    compare_with(actual, expected, |_| 0.0)
}

/// `m / √K` per element: the floor for [`compare_floored`] (see [Cancellation](self#cancellation)),
/// `magnitude` from `reference::conv2d_magnitude`, `K = reduction_len`.
pub fn cancellation_floor(magnitude: &Tensor, reduction_len: usize) -> Tensor {
    let scale = 1.0 / (reduction_len.max(1) as f32).sqrt();
    let data = magnitude.data().iter().map(|&m| m * scale).collect();
    Tensor::new(magnitude.shape(), data).expect("same shape as the magnitude")
}

/// [`compare`] with each element's denominator at least `floor` (same shape): `rᵢ = |aᵢ − eᵢ| /
/// max(dᵢ, RMS(d))` and `‖a − e‖₂ / ‖d‖₂` with `dᵢ = max(|eᵢ|, floorᵢ)`. Never stricter than
/// [`compare`].
pub fn compare_floored(
    actual: &Tensor,
    expected: &Tensor,
    floor: &Tensor,
) -> Result<Comparison, TensorError> {
    floor.expect_shape("floor", expected.shape())?;
    compare_with(actual, expected, |i| f64::from(floor.data()[i]))
}

fn compare_with(
    actual: &Tensor,
    expected: &Tensor,
    floor: impl Fn(usize) -> f64,
) -> Result<Comparison, TensorError> {
    actual.expect_shape("actual", expected.shape())?;
    let n = expected.len().max(1) as f64;
    let denom = |i: usize, e: f32| f64::from(e).abs().max(floor(i));
    let sum_sq: f64 = (expected.data().iter().enumerate())
        .map(|(i, &e)| denom(i, e).powi(2))
        .sum();
    let rms = (sum_sq / n).sqrt();
    let mut worst = (0usize, 0.0f64);
    let mut diff_sq = 0.0f64;
    for (i, (&a, &e)) in actual.data().iter().zip(expected.data()).enumerate() {
        let scale = denom(i, e);
        let (a, e) = (f64::from(a), f64::from(e));
        // NaN on either side, or an infinity on one side only, makes `d` non-finite.
        let d = if a == e { 0.0 } else { (a - e).abs() };
        let err = if d == 0.0 {
            0.0
        } else if d.is_finite() {
            d / scale.max(rms)
        } else {
            f64::INFINITY
        };
        diff_sq += if d.is_finite() { d * d } else { f64::INFINITY };
        if err > worst.1 {
            worst = (i, err);
        }
    }
    let norm = sum_sq.sqrt();
    let rel_l2 = if norm > 0.0 {
        diff_sq.sqrt() / norm
    } else {
        diff_sq.sqrt()
    };
    let [_, c, h, w] = expected.shape();
    let i = worst.0;
    let index = if expected.is_empty() {
        [0; 4]
    } else {
        [i / (c * h * w), (i / (h * w)) % c, (i / w) % h, i % w]
    };
    Ok(Comparison {
        worst_index: index,
        worst_actual: actual.data().get(i).copied().unwrap_or(0.0),
        worst_expected: expected.data().get(i).copied().unwrap_or(0.0),
        max_rel: worst.1,
        rel_l2,
    })
}

/// Compares and returns the comparison when within `tol`, else an error message holding
/// `context`, the full report and the tolerance.
pub fn check_close(
    actual: &Tensor,
    expected: &Tensor,
    tol: &Tolerance,
    context: &str,
) -> Result<Comparison, String> {
    let cmp = compare(actual, expected).map_err(|e| format!("{context}: {e}"))?;
    if cmp.within(tol) {
        Ok(cmp)
    } else {
        Err(format!(
            "{context}: {cmp} exceeds tolerance (max relative {:.3e}, relative L2 {:.3e})",
            tol.max_rel, tol.rel_l2
        ))
    }
}

/// [`check_close`] measured with [`compare_floored`].
pub fn check_close_floored(
    actual: &Tensor,
    expected: &Tensor,
    floor: &Tensor,
    tol: &Tolerance,
    context: &str,
) -> Result<Comparison, String> {
    let cmp = compare_floored(actual, expected, floor).map_err(|e| format!("{context}: {e}"))?;
    if cmp.within(tol) {
        Ok(cmp)
    } else {
        Err(format!(
            "{context}: {cmp} exceeds tolerance (max relative {:.3e}, relative L2 {:.3e}; \
             denominators floored at Σ|terms|/√K)",
            tol.max_rel, tol.rel_l2
        ))
    }
}

/// Test helper: panics with the report of [`check_close`] when out of tolerance.
#[track_caller]
pub fn assert_close(
    actual: &Tensor,
    expected: &Tensor,
    tol: &Tolerance,
    context: &str,
) -> Comparison {
    match check_close(actual, expected, tol, context) {
        Ok(cmp) => cmp,
        Err(msg) => panic!("{msg}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(v: &[f32]) -> Tensor {
        Tensor::new([1, 1, 1, v.len()], v.to_vec()).unwrap()
    }

    #[test]
    fn reports_worst_element_and_l2() {
        let e = t(&[1.0, 2.0, 4.0, 0.0]);
        let a = t(&[1.0, 2.0, 4.1, 0.0]);
        let cmp = compare(&a, &e).unwrap();
        assert_eq!(cmp.worst_index, [0, 0, 0, 2]);
        assert_eq!(cmp.worst_expected, 4.0);
        assert!((cmp.max_rel - 0.025).abs() < 1e-6, "{cmp}");
        assert!((cmp.rel_l2 - 0.1 / 21f64.sqrt()).abs() < 1e-6, "{cmp}");
        assert!(!cmp.within(&Tolerance::new(0.01, 1.0)));
        assert!(cmp.within(&Tolerance::new(0.03, 0.03)));
    }

    #[test]
    fn nan_is_infinitely_wrong() {
        let cmp = compare(&t(&[1.0, f32::NAN]), &t(&[1.0, 2.0])).unwrap();
        assert_eq!(cmp.worst_index, [0, 0, 0, 1]);
        assert!(cmp.max_rel.is_infinite());
        assert!(!cmp.within(&Tolerance::new(1e30, 1e30)));
    }

    #[test]
    fn formula_scales_with_sqrt_k() {
        let a = Tolerance::for_reduction(100, 1.0);
        let b = Tolerance::for_reduction(400, 1.0);
        assert!((b.rel_l2 / a.rel_l2 - 2.0).abs() < 1e-12);
        assert!((a.max_rel - 320.0 * F32_UNIT_ROUNDOFF).abs() < 1e-18);
    }

    #[test]
    fn floor_only_relaxes_cancelled_results() {
        // Expected values far below their terms' magnitude (cancellation): the floor decides.
        let e = t(&[1e-3, -2e-3]);
        let a = t(&[1.1e-3, -2e-3]);
        let plain = compare(&a, &e).unwrap();
        let floored = compare_floored(&a, &e, &t(&[1.0, 1.0])).unwrap();
        assert!(plain.rel_l2 > 0.04, "{plain}");
        assert!(
            (floored.rel_l2 - 1e-4 / 2f64.sqrt()).abs() < 1e-9,
            "{floored}"
        );
        // Where the result is above the floor, nothing changes.
        let e = t(&[1.0, 2.0, 4.0]);
        let a = t(&[1.0, 2.0, 4.1]);
        let floor = t(&[0.5, 0.5, 0.5]);
        assert_eq!(
            compare_floored(&a, &e, &floor).unwrap(),
            compare(&a, &e).unwrap()
        );
        // A NaN is still infinitely wrong.
        let nan = compare_floored(&t(&[f32::NAN]), &t(&[1.0]), &t(&[1e9])).unwrap();
        assert!(nan.max_rel.is_infinite());
        assert_eq!(
            cancellation_floor(&t(&[8.0, 4.0]), 16).data(),
            &[2.0, 1.0],
            "m / sqrt(K)"
        );
    }

    #[test]
    fn shape_mismatch_is_an_error() {
        assert!(compare(&t(&[1.0]), &t(&[1.0, 2.0])).is_err());
        assert!(check_close(&t(&[1.0]), &t(&[1.0, 2.0]), &Tolerance::new(1.0, 1.0), "x").is_err());
    }
}
