//! Error types of the model crate.

use crate::config::ConfigError;
use reparam_tensor::TensorError;
use thiserror::Error;

/// Why a checkpoint could not be loaded or written. Every variant names the key(s) involved.
#[derive(Debug, Error)]
pub enum CheckpointError {
    /// Reading or writing the file failed.
    #[error("cannot access `{path}`: {source}")]
    Io {
        /// The file.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The bytes are not a valid safetensors file. What safetensors 0.6 reports:
    /// - fewer than 8 bytes: `HeaderTooSmall`; a header length over 100 MB: `HeaderTooLarge`;
    /// - a header length beyond the file (or a file cut inside the header): `InvalidHeaderLength`;
    /// - a file cut inside the data, trailing bytes, or tensor offsets past the end of the data:
    ///   `MetadataIncompleteBuffer`;
    /// - overlapping, gapped or reversed offsets: `InvalidOffset(name)`;
    /// - offsets that disagree with shape × dtype: `TensorInvalidInfo`;
    /// - a shape whose element count overflows: `ValidationOverflow`;
    /// - a header that is not UTF-8: `InvalidHeader`; not JSON of the right form:
    ///   `InvalidHeaderDeserialization`.
    #[error("not a valid safetensors file: {0}")]
    Format(#[from] safetensors::SafeTensorError),
    /// The bytes are a zip archive but not a PyTorch checkpoint this crate reads: no
    /// `data.pkl`, a pickle opcode or global outside what `torch.save` writes for a state dict,
    /// a value that is not a tensor, a missing storage record, a view past its storage, an
    /// unsupported storage type or byte order.
    #[error("not a readable PyTorch checkpoint: {reason}")]
    Torch {
        /// What was found.
        reason: String,
    },
    /// The key names match neither the official nor the timm scheme, mix both, or mix keys with
    /// and without the `module.` prefix; also a file without tensors.
    #[error("cannot tell the key naming scheme: {reason}")]
    UnknownScheme {
        /// What was seen.
        reason: String,
    },
    /// Keys the architecture needs are absent.
    #[error("missing key(s): {}", keys.join(", "))]
    MissingKeys {
        /// The absent keys (sorted).
        keys: Vec<String>,
    },
    /// Keys the architecture does not use are present.
    #[error("unexpected key(s): {}", keys.join(", "))]
    UnexpectedKeys {
        /// The extra keys (sorted).
        keys: Vec<String>,
    },
    /// A tensor has the wrong shape.
    #[error("`{key}` has shape {actual:?}, expected {expected:?}")]
    WrongShape {
        /// The tensor.
        key: String,
        /// The shape the architecture needs.
        expected: Vec<usize>,
        /// The shape in the file.
        actual: Vec<usize>,
    },
    /// A tensor's dtype is not f32, f16 or bf16.
    #[error("`{key}` has dtype {dtype}; only F32, F16 and BF16 are supported")]
    UnsupportedDtype {
        /// The tensor.
        key: String,
        /// The dtype in the file.
        dtype: String,
    },
    /// A tensor holds NaN or ±∞.
    #[error("`{key}` holds a non-finite value ({value}) at element {index}")]
    NonFinite {
        /// The tensor.
        key: String,
        /// Flat index of the first bad element.
        index: usize,
        /// The value.
        value: f32,
    },
    /// A batch norm's running variance is negative (σ² ≥ 0 always holds for real statistics; a
    /// negative one would make `√(σ² + ε)` undefined in the fold).
    #[error("`{key}` holds a negative running variance ({value}) at element {index}")]
    NegativeVariance {
        /// The `running_var` tensor.
        key: String,
        /// Flat index of the first bad element.
        index: usize,
        /// The value.
        value: f32,
    },
    /// The tensors do not describe a consistent RepVGG network.
    #[error("inconsistent architecture at `{key}`: {reason}")]
    InconsistentArchitecture {
        /// The tensor where the inconsistency shows.
        key: String,
        /// What is inconsistent.
        reason: String,
    },
    /// The checkpoint is a consistent network, but not the one [`LoadOptions::config`] describes.
    ///
    /// [`LoadOptions::config`]: crate::checkpoint::LoadOptions::config
    #[error("checkpoint does not match the requested config at `{key}`: {reason}")]
    ConfigMismatch {
        /// The first key (in execution order) where the two architectures differ; it may be a key
        /// the config needs and the file lacks.
        key: String,
        /// Both sides of the difference.
        reason: String,
    },
    /// The configuration handed in (to load against, or inside a net being written) is invalid.
    #[error("invalid config: {0}")]
    Config(#[from] ConfigError),
    /// The file holds the other form than the one asked for (training vs deployed).
    #[error("expected a {expected} checkpoint, found a {found} one")]
    WrongForm {
        /// The form asked for.
        expected: &'static str,
        /// The form found.
        found: &'static str,
    },
}

/// Why an image could not be read or preprocessed. Every file-related variant names the file.
#[derive(Debug, Error)]
pub enum ImageError {
    /// Reading the file failed (missing, unreadable).
    #[error("cannot read image `{path}`: {source}")]
    Io {
        /// The file.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The bytes are not a decodable JPEG or PNG (truncated, another format, corrupt).
    #[error("cannot decode image `{path}`: {reason}")]
    Decode {
        /// The file.
        path: String,
        /// What the decoder reported.
        reason: String,
    },
    /// A batch of no images was asked for.
    #[error("no images given")]
    NoImages,
    /// The crop size is zero.
    #[error("invalid crop size {crop}: it must be at least 1")]
    BadCrop {
        /// The requested crop.
        crop: usize,
    },
    /// The batch does not form a tensor (too large).
    #[error(transparent)]
    Tensor(#[from] TensorError),
}

/// Any error of the model crate.
#[derive(Debug, Error)]
pub enum Error {
    /// Bad architecture.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Bad checkpoint.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// The network cannot be sized for the input.
    #[error(transparent)]
    Stats(#[from] crate::stats::StatsError),
    /// A kernel wrote a NaN or infinity (a bug in the kernel, never the data's fault: the sweep's
    /// inputs are finite and bounded).
    #[error("{what} wrote a non-finite value at output index {index}")]
    NonFiniteOutput {
        /// The layer and kernel.
        what: String,
        /// Flat NCHW index of the first non-finite value.
        index: usize,
    },
    /// Bad tensor operand (shape, value) while running or folding.
    #[error(transparent)]
    Tensor(#[from] TensorError),
    /// A CPU kernel refused its operands or could not be planned.
    #[error(transparent)]
    Kernel(#[from] reparam_winograd::ConvError),
    /// The CPU engine's thread pool could not be started.
    #[error("cannot start a thread pool of {threads} threads: {reason}")]
    ThreadPool {
        /// Threads asked for (0: one per core).
        threads: usize,
        /// What rayon reported.
        reason: String,
    },
    /// The GPU backend failed (no adapter, device lost, a tensor too large for a binding, ...).
    #[cfg(feature = "wgsl")]
    #[error(transparent)]
    Gpu(#[from] reparam_wgsl::GpuError),
}
