//! The one error type of this crate.

use reparam_tensor::TensorError;
use thiserror::Error;

/// Everything that can go wrong on the GPU path. Every variant says what to do about it.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum GpuError {
    /// No adapter matched the request (no Vulkan driver, or the name filter matched nothing).
    #[error(
        "no GPU adapter found ({reason}); install a Vulkan driver (e.g. Debian `mesa-vulkan-drivers` for the lavapipe software adapter) or change REPARAM_GPU_ADAPTER"
    )]
    NoAdapter {
        /// What was looked for and what was found.
        reason: String,
    },
    /// The adapter refused the device request.
    #[error("the adapter `{adapter}` refused to create a device: {reason}")]
    RequestDevice {
        /// Adapter name.
        adapter: String,
        /// The driver's message.
        reason: String,
    },
    /// The adapter's limits are below what a kernel needs.
    #[error(
        "adapter limit `{limit}` is {actual}, below the {required} this crate needs; use another adapter"
    )]
    LimitsTooSmall {
        /// Name of the limit (as in `wgpu::Limits`).
        limit: &'static str,
        /// What the adapter offers.
        actual: u64,
        /// What is needed.
        required: u64,
    },
    /// A tensor, or one image of it, does not fit in one storage binding of this device.
    #[error(
        "`{operand}` needs a {needed}-byte storage binding for one image, above this device's maximum of {max}; use a smaller input"
    )]
    TooLarge {
        /// The operand that does not fit.
        operand: &'static str,
        /// Bytes needed.
        needed: u64,
        /// The device's binding limit (`max_storage_buffer_binding_size`).
        max: u64,
    },
    /// The device was lost (driver reset, out of memory, ...); build a new context.
    #[error("the GPU device was lost ({reason}); create a new GpuContext")]
    DeviceLost {
        /// The driver's reason.
        reason: String,
    },
    /// wgpu reported a validation or out-of-memory error for work this crate submitted.
    #[error("wgpu reported an error: {0}")]
    Wgpu(String),
    /// Reading a result back failed.
    #[error("reading back `{operand}` failed: {reason}")]
    Readback {
        /// The tensor being read.
        operand: &'static str,
        /// What failed.
        reason: String,
    },
    /// A shape, spec or operand is invalid (the message names the field).
    #[error(transparent)]
    Tensor(#[from] TensorError),
}
