//! The error type of the kernel crate.

use crate::Isa;
use reparam_tensor::TensorError;
use thiserror::Error;

/// Everything that can go wrong when planning or running a convolution. Bad input never panics;
/// it returns one of these, naming the problem.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum ConvError {
    /// A spec, weight, bias or tensor operand is invalid.
    #[error(transparent)]
    Tensor(#[from] TensorError),
    /// `REPARAM_ISA` (or the options) asked for an ISA this CPU or build does not have.
    #[error(
        "ISA `{isa}` was requested but this CPU/build does not support it (available: {available})"
    )]
    IsaUnavailable {
        /// The requested ISA.
        isa: Isa,
        /// The ISAs that are available here, comma-separated.
        available: String,
    },
    /// `REPARAM_ISA` holds an unknown value.
    #[error("REPARAM_ISA=`{value}` is not one of scalar, avx2, avx512, neon")]
    UnknownIsa {
        /// The value found.
        value: String,
    },
    /// An algorithm name that is none of `auto`, `direct`, `f23`, `f43`, `f63`.
    #[error("`{value}` is not an algorithm; use auto, direct, f23, f43 or f63")]
    UnknownAlgorithm {
        /// The value given.
        value: String,
    },
    /// A precision name that is not `f32`, `f16-weights` or `bf16`.
    #[error("`{value}` is not a precision; use f32, f16-weights or bf16")]
    UnknownPrecision {
        /// The value given.
        value: String,
    },
    /// The requested precision has no kernel for this plan's ISA or convolution.
    #[error("precision {precision} cannot run here: {reason}")]
    PrecisionUnavailable {
        /// The precision asked for.
        precision: &'static str,
        /// Why (the missing CPU feature, or the convolution's shape).
        reason: String,
    },
    /// A (transformed) weight does not fit the requested storage precision.
    #[error(
        "transformed weight {value} of output channel {out_channel} does not fit {precision} (largest finite {max}); use f32 weights"
    )]
    WeightOutOfRange {
        /// The precision asked for.
        precision: &'static str,
        /// The output channel the weight belongs to.
        out_channel: usize,
        /// The value.
        value: f32,
        /// The largest finite value of the precision.
        max: f32,
    },
    /// The requested algorithm cannot run this convolution.
    #[error("algorithm {algorithm} cannot run this convolution: {reason}")]
    UnsupportedAlgorithm {
        /// The algorithm asked for.
        algorithm: &'static str,
        /// Why not.
        reason: String,
    },
    /// The caller-provided scratch buffer is too small.
    #[error("scratch buffer holds {actual} floats but this run needs {needed}")]
    ScratchTooSmall {
        /// Floats needed ([`crate::Conv2dPlan::scratch_len`]).
        needed: usize,
        /// Floats provided.
        actual: usize,
    },
    /// A blocked (NCHWc) tensor uses a different channel block than the plan's ISA.
    #[error(
        "tensor `{operand}` is blocked by {actual} channels but the plan uses blocks of {expected}"
    )]
    BlockMismatch {
        /// Which operand.
        operand: &'static str,
        /// The plan's block (the ISA's lane count).
        expected: usize,
        /// The tensor's block.
        actual: usize,
    },
}
