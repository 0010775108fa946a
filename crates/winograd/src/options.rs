//! Plan options: algorithm, ISA, threading, autotuning.

use crate::{ConvError, Isa};
use std::fmt;

/// Which convolution algorithm a plan uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Algorithm {
    /// Chosen per layer from thresholds measured on a named machine (see [`crate::auto`]), or by
    /// timing when [`PlanOptions::autotune`] is set.
    #[default]
    Auto,
    /// Direct convolution (any kernel size the crate supports, any stride).
    Direct,
    /// Winograd F(2×2, 3×3) (3x3, stride 1, padding 1 only).
    WinogradF23,
    /// Winograd F(4×4, 3×3).
    WinogradF43,
    /// Winograd F(6×6, 3×3).
    WinogradF63,
}

impl Algorithm {
    /// Every concrete algorithm (not `Auto`).
    pub const CONCRETE: [Self; 4] = [
        Self::Direct,
        Self::WinogradF23,
        Self::WinogradF43,
        Self::WinogradF63,
    ];

    /// Name used in benchmark ids: `auto`, `direct`, `winograd-f23`, `winograd-f43`, `winograd-f63`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::Direct => "direct",
            Self::WinogradF23 => "winograd-f23",
            Self::WinogradF43 => "winograd-f43",
            Self::WinogradF63 => "winograd-f63",
        }
    }

    /// Error growth relative to direct summation, the factor `f` of
    /// `reparam_tensor::tolerance::Tolerance::for_reduction`.
    ///
    /// Measured for whole layers against an f64 reference: F(2,3) ≈ direct, F(4,3) with the
    /// {0, ±√2, ±√2/2} points ≈ 2x direct, F(6,3) with {0, ±1, ±2, ±1/2} ≈ 10x direct. The
    /// factors double those (F(2,3): 2, F(4,3): 4) to cover the f32 rounding of the transform
    /// constants (√2 is not representable) and a blocked summation order; F(6,3) gets 16 (its
    /// output transform multiplies by up to 32 = 2⁵, so one large tile element can carry an
    /// error several times the layer's average, which `max rᵢ` sees). `Auto` counts as direct.
    ///
    /// Every factor is still far below what a real bug produces: a wrong tap, channel, bias or
    /// tile gives element errors of order 1, i.e. `rᵢ ≈ 1 ≫ 16·32u·√K ≈ 4e-3` even for
    /// `K = 2304`.
    pub fn error_factor(self) -> f64 {
        match self {
            Self::Auto | Self::Direct => 1.0,
            Self::WinogradF23 => 2.0,
            Self::WinogradF43 => 4.0,
            Self::WinogradF63 => 16.0,
        }
    }

    /// Parses `auto`, `direct`, `f23`, `f43`, `f63` (or the full [`Algorithm::name`]s).
    pub fn parse(value: &str) -> Result<Self, ConvError> {
        let v = value.trim().to_ascii_lowercase();
        let v = v.strip_prefix("winograd-").unwrap_or(&v);
        Ok(match v {
            "auto" => Self::Auto,
            "direct" => Self::Direct,
            "f23" => Self::WinogradF23,
            "f43" => Self::WinogradF43,
            "f63" => Self::WinogradF63,
            _ => {
                return Err(ConvError::UnknownAlgorithm {
                    value: value.to_string(),
                });
            }
        })
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The precision of a plan's Winograd transform-domain GEMM operands. Accumulation, the
/// transforms, the activations between layers and direct convolution stay f32 whatever this
/// says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Precision {
    /// f32 transformed weights: the default, and the reference for every accuracy and speed
    /// claim.
    #[default]
    F32,
    /// Winograd transformed weights stored as IEEE f16 (round to nearest even from the f64
    /// transform rounded to f32), widened to f32 as the GEMM loads them (`vcvtph2ps` on AVX2+F16C
    /// and AVX-512F; integer shifts and one exact multiply on NEON): half the weight bytes a run
    /// streams. Each transformed weight carries a relative error up to 2⁻¹¹; the tests bound the
    /// result by [`Precision::error_terms`]. A transformed weight beyond f16's range (±65504)
    /// is refused with [`ConvError::WeightOutOfRange`]. Plans with direct convolution keep f32
    /// weights ([`crate::Conv2dPlan::precision`] reports it).
    F16Weights,
    /// Both GEMM operands in bf16, on CPUs with AVX512-BF16: the transformed weights are stored
    /// as bf16 pairs (round to nearest even) and each tile block of transformed input is
    /// rounded to bf16 (`vcvtne2ps2bf16`) before its GEMM, which runs `vdpbf16ps` (two input
    /// channels per instruction, products exact, f32 accumulation): half the weight and input
    /// bytes and half the instructions of f32. Each product carries a relative error up to
    /// `2·u_bf16` (`u_bf16 = 2⁻⁸`); the tests bound the result by [`Precision::error_terms`].
    /// Without AVX512-BF16 (or with another ISA forced), or for a layer with an odd number of
    /// input channels per group, a Winograd plan is refused with
    /// [`ConvError::PrecisionUnavailable`]; direct convolution keeps f32.
    Bf16,
}

impl Precision {
    /// Name used in kernel names, options and reports: `f32`, `f16-weights`, `bf16`.
    pub fn name(self) -> &'static str {
        match self {
            Self::F32 => "f32",
            Self::F16Weights => "f16-weights",
            Self::Bf16 => "bf16",
        }
    }

    /// Whether Winograd plans on `isa` can run this precision on this CPU: f32 and f16 weights
    /// everywhere; bf16 on AVX-512F with AVX512-BF16.
    pub fn runs_on(self, isa: Isa) -> bool {
        match self {
            Self::F32 | Self::F16Weights => true,
            Self::Bf16 => isa == Isa::Avx512f && crate::arch::Bf16Gemm::detect().is_some(),
        }
    }

    /// Parses `f32`, `f16-weights` (also `f16`) or `bf16`.
    pub fn parse(value: &str) -> Result<Self, ConvError> {
        match value.trim().to_ascii_lowercase().as_str() {
            "f32" => Ok(Self::F32),
            "f16" | "f16-weights" => Ok(Self::F16Weights),
            "bf16" => Ok(Self::Bf16),
            _ => Err(ConvError::UnknownPrecision {
                value: value.to_string(),
            }),
        }
    }

    /// The error the stored weights add to a layer's result, as `(rel_L2, max rᵢ)` terms added
    /// to the f32 bounds of `reparam_tensor::tolerance` for an algorithm of error factor `f`
    /// ([`Algorithm::error_factor`]): none for f32; for f16 weights `(f·u₁₆, 8·f·u₁₆)` with
    /// `u₁₆ = 2⁻¹¹`. Rounding the weights perturbs every term `wᵢxᵢ` of an output by a relative
    /// error up to `u₁₆`, of random sign, so the output's relative error is about `u₁₆/√3`
    /// whatever the reduction length (no `√K` growth: the perturbations scale with the terms,
    /// as the output does); the Winograd output transform amplifies it as it amplifies f32
    /// rounding, hence the factor `f`. For bf16 both factors of every term are rounded, each
    /// by up to `u_bf16 = 2⁻⁸`: the same argument gives `(2·f·u_bf16, 16·f·u_bf16)`. Measured on
    /// the test sweep: see `tests/precision.rs`.
    pub fn error_terms(self, algorithm_factor: f64) -> (f64, f64) {
        match self {
            Self::F32 => (0.0, 0.0),
            Self::F16Weights => {
                let u16 = f64::from(half::f16::EPSILON.to_f32()) / 2.0;
                (algorithm_factor * u16, 8.0 * algorithm_factor * u16)
            }
            Self::Bf16 => {
                let u_bf16 = f64::from(half::bf16::EPSILON.to_f32()) / 2.0;
                let per_term = 2.0 * u_bf16;
                (
                    algorithm_factor * per_term,
                    8.0 * algorithm_factor * per_term,
                )
            }
        }
    }
}

impl fmt::Display for Precision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How a run uses threads. Results are bitwise identical either way: work is split over output
/// channel groups and tiles, never over a reduction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Parallelism {
    /// Everything on the calling thread.
    Sequential,
    /// Tasks on the current rayon pool (install a pool to choose the thread count).
    #[default]
    Rayon,
}

/// Options for [`crate::Conv2dPlan::new`].
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PlanOptions {
    /// The algorithm; `Auto` by default.
    pub algorithm: Algorithm,
    /// Force an ISA; `None` uses [`Isa::from_env`] (`REPARAM_ISA` or the best available).
    pub isa: Option<Isa>,
    /// Threading.
    pub parallelism: Parallelism,
    /// The input `(height, width)` the plan will mostly see: `Auto` chooses by it, and autotune
    /// times on it. `None` assumes [`crate::auto::DEFAULT_HW`].
    pub input_hw: Option<(usize, usize)>,
    /// With `Auto`, time every eligible algorithm when the plan is built and keep the fastest.
    pub autotune: bool,
    /// Storage precision of Winograd transformed weights; f32 by default.
    pub precision: Precision,
}
