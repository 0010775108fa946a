//! The one error type of this crate.

use thiserror::Error;

/// Everything that can go wrong when building tensors or validating specs. Every variant names the
/// offending field or operand so the message can be acted on.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum TensorError {
    /// The element count implied by a shape does not fit in `usize`.
    #[error("shape {shape:?} has more elements than fit in memory (usize overflow)")]
    ShapeOverflow {
        /// The shape whose product overflowed.
        shape: Vec<usize>,
    },
    /// A data buffer's length disagrees with the shape it was given.
    #[error("shape {shape:?} needs {expected} elements but the data holds {actual}")]
    DataLength {
        /// The requested shape.
        shape: Vec<usize>,
        /// Product of the shape.
        expected: usize,
        /// Length of the buffer.
        actual: usize,
    },
    /// A field of a spec or an operand has an invalid value.
    #[error("invalid `{field}`: {reason}")]
    Invalid {
        /// The name of the field (e.g. `groups`, `stride`, `weight`).
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// Two operands that must agree in shape do not.
    #[error("shape mismatch for `{operand}`: expected {expected:?}, found {actual:?}")]
    ShapeMismatch {
        /// The operand whose shape is wrong.
        operand: &'static str,
        /// The shape the operation needs.
        expected: Vec<usize>,
        /// The shape it got.
        actual: Vec<usize>,
    },
}

impl TensorError {
    /// Shorthand for [`TensorError::Invalid`].
    pub fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        Self::Invalid {
            field,
            reason: reason.into(),
        }
    }
}
