//! reparam-wgsl: WGSL convolution kernels through wgpu, with the semantics of the CPU crate
//! (`reparam-winograd`) and the oracle (`reparam_tensor::reference`): 3x3 and 1x1 convolution,
//! stride 1 and 2, padding, groups, batch ≥ 1, bias + ReLU fused; plus the other ops of a
//! RepVGG network (batch-norm affine, add, ReLU, squeeze-excitation, pooling, linear head) and
//! layout conversion.
//!
//! ```no_run
//! # async fn demo() -> Result<(), reparam_wgsl::GpuError> {
//! use reparam_tensor::{ConvSpec, Epilogue, Tensor};
//! use reparam_wgsl::{GpuContext, GpuContextOptions, GpuConv2dPlan, GpuConvOptions, GpuTensor};
//! let ctx = GpuContext::new(&GpuContextOptions::from_env()).await?;
//! let spec = ConvSpec::conv3x3(48, 48, 1, 1);
//! let weight = Tensor::filled(spec.weight_shape(), 0.01)?;
//! let plan = GpuConv2dPlan::new(&ctx, &spec, &weight, &Epilogue::bias_relu(vec![0.0; 48]),
//!                               &GpuConvOptions::default())?;
//! let x = GpuTensor::upload(&ctx, &Tensor::filled([1, 48, 56, 56], 1.0)?)?;
//! let y = GpuTensor::zeros(&ctx, spec.output_shape(x.shape())?)?;
//! let op = plan.bind(&ctx, &x, &y)?;      // built once
//! let timings = ctx.run(&[&op])?;          // any number of ops, one submission
//! let out = y.download(&ctx)?;             // NCHW
//! # Ok(()) }
//! ```
//!
//! Activations live on the device in NHWC with the channel stride rounded up to 4 (see
//! [`tensor`]); every kernel is one file in the top-level `shaders/` folder ([`shader`]).

pub mod context;
pub mod conv;
pub mod error;
pub mod op;
pub mod ops;
pub mod shader;
pub mod tensor;
mod window;

#[cfg(any(test, feature = "test-support"))]
pub mod test_support;
#[cfg(test)]
mod tests;

pub use context::{AdapterSummary, GpuContext, GpuContextOptions};
pub use conv::{GpuConv2dPlan, GpuConvOptions, GpuKernel};
pub use error::GpuError;
pub use op::{GpuOp, GpuTimings};
pub use ops::{Activation, AffinePlan, LinearPlan, SqueezeExcitePlan};
pub use shader::{Shader, Specialization};
pub use tensor::GpuTensor;

/// Environment variable: when set to `1`, tests fail instead of skipping when no GPU adapter
/// is available (CI sets it; lavapipe provides a software adapter).
pub const ENV_REQUIRE_GPU: &str = "REPARAM_REQUIRE_GPU";
