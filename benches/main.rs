//! The one criterion binary of reparam (`cargo bench -p reparam-benches`).
//!
//! Every benchmark id reads like a row of a table, `op/variant/shape`:
//!
//! ```text
//! conv3x3/winograd-f43-avx512f/a0-s3-192x14x14-t1
//! conv3x3/direct-avx2fma/b0-s2-64x56x56-to128-stride2-t2
//! conv3x3/winograd-f23-avx512f/b0-s1-64x56x56-n8-t2
//! conv3x3-gpu/gemm/a0-s3-192x14x14-n32
//! ```
//!
//! Two groups:
//!
//! - `conv3x3` ([`cpu`]): 3x3 conv + bias + ReLU, NCHW in and out, one [`Conv2dPlan::run`] on
//!   the CPU. `variant` is `<algorithm>-<isa>`, from [`Algorithm::name`] and [`Isa::name`];
//!   `shape` is the layer name of [`shapes::Layer::name`], then `-n<N>` for batches other than 1,
//!   then `-t<T>` for the rayon pool size.
//! - `conv3x3-gpu` ([`gpu`]): the same layers with the WGSL kernels of `reparam-wgsl`, one
//!   [`GpuContext::run`] per iteration, timed on the device (timestamp queries; host wall time
//!   on an adapter without them). `variant` is [`GpuKernel::name`] (`naive`, `direct`, `gemm`,
//!   `gemm-wide`, `winograd-f23`, `winograd-f43`); `shape` is the layer name, then always `-n<N>`, for batches 1 and 32 (batch
//!   1 only for `naive`, and on a software adapter such as lavapipe). Without a GPU adapter the
//!   group prints `SKIP conv3x3-gpu: <reason>` on stderr and registers nothing.
//!
//! Throughput is `Elements(flops)` with the direct-convolution count
//! `2·Cout·(Cin/g)·9·Hout·Wout·N`, so criterion's "elem/s" reads as effective FLOP/s (a Winograd
//! kernel can exceed the FMA peak on this scale).
//!
//! Filter as usual: `cargo bench -p reparam-benches -- 'conv3x3/winograd-f43-avx512f/a0'` or
//! `-- conv3x3-gpu/gemm`; smoke test every benchmark once with `cargo bench -p reparam-benches --
//! --test` (`-- --test conv3x3-gpu` for the GPU group alone).
//!
//! [`Conv2dPlan::run`]: reparam_winograd::Conv2dPlan::run
//! [`Algorithm::name`]: reparam_winograd::Algorithm::name
//! [`Isa::name`]: reparam_winograd::Isa::name
//! [`GpuContext::run`]: reparam_wgsl::GpuContext::run
//! [`GpuKernel::name`]: reparam_wgsl::GpuKernel::name

mod cpu;
mod gpu;
mod shapes;

criterion::criterion_group!(benches, cpu::conv3x3, gpu::conv3x3_gpu);
criterion::criterion_main!(benches);
