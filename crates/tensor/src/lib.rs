//! `reparam-tensor`: the data types every reparam crate shares and the oracle every kernel is
//! measured against.
//!
//! - [`Tensor`]: owned `f32` data in NCHW order with a checked shape `[N, C, H, W]`.
//! - [`BlockedTensor`]: the channel-blocked NCHWc layout (`c` = 4, 8 or 16) kernels chain layers in.
//! - [`AlignedVec`]: cache-line-aligned `f32` storage for what SIMD kernels stream.
//! - [`ConvSpec`] and [`Epilogue`]: a convolution's geometry and its fused bias + ReLU, validated once.
//! - [`reference`](mod@reference): naive, f64-accumulating implementations of every op (the oracle).
//! - [`tolerance`]: the one comparison helper every test in the workspace uses.
//! - [`rng`]: a tiny deterministic generator for synthetic weights and test data.
//! - [`winograd`]: the Winograd F(2,3) / F(4,3) / F(6,3) matrices the CPU and GPU kernels share.

mod aligned;
mod batch_norm;
mod blocked;
mod error;
pub mod reference;
pub mod rng;
mod spec;
mod tensor;
pub mod tolerance;
pub mod winograd;

pub use aligned::{ALIGN_BYTES, ALIGN_FLOATS, AlignedVec};
pub use batch_norm::BatchNorm;
pub use blocked::{BLOCK_SIZES, BlockedTensor, BlockedView, BlockedViewMut, blocked_len};
pub use error::TensorError;
pub use spec::{ConvSpec, Epilogue};
pub use tensor::{Shape, Tensor};
