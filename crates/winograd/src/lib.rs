//! `reparam-winograd`: hand-written CPU kernels for 3x3 (and 1x1) convolution.
//!
//! - Winograd F(2,3), F(4,3), F(6,3) for stride-1 3x3 convolutions ([`transforms`]): input
//!   transform → batched GEMM in the transform domain → output transform, with bias + ReLU fused
//!   into the output transform and the weights transformed once, when the plan is built.
//! - Direct convolution for any stride, kernel 3 or 1, on a channel-blocked layout; the same body
//!   handles the 3-channel first layer and 1x1 convolutions.
//! - Groups of any divisor, batch N ≥ 1, any H, W ≥ 1, any channel count.
//! - ISAs: AVX-512F, AVX2+FMA, NEON, scalar ([`Isa`]), detected once; `REPARAM_ISA` forces one
//!   and fails if the CPU lacks it.
//! - Threads: rayon over output-channel groups and tiles; results are bitwise identical for any
//!   thread count ([`Parallelism`]).
//!
//! The entry point is [`Conv2dPlan`].

mod arch;
pub mod auto;
mod error;
mod isa;
mod kernels;
mod options;
mod pack;
mod plan;
mod simd;
mod stage;
pub mod transforms;

pub use error::ConvError;
pub use isa::{ENV_ISA, Isa};
pub use options::{Algorithm, Parallelism, PlanOptions, Precision};
pub use plan::{Conv2dPlan, ConvInput, ConvOutput};

#[cfg(test)]
mod tests;
