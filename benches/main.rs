//! The one criterion binary of reparam (`cargo bench -p reparam-benches`).
//!
//! Every benchmark id reads like a row of a table, `op/variant/shape`:
//!
//! ```text
//! conv3x3/winograd-f43-avx512f-8x2/a0-s3-192x14x14-t1
//! conv3x3/direct-avx2fma-6x2/b0-s2-64x56x56-to128-stride2-t2
//! conv3x3/winograd-f23-avx512f-8x2/b0-s1-64x56x56-n8-t2
//! conv3x3-gpu/gemm/a0-s3-192x14x14-n32
//! block/multi-branch-cpu/a0-stage3
//! model/plain-cpu/b0-b8
//! ```
//!
//! Four groups:
//!
//! - `conv3x3` ([`cpu`]): 3x3 conv + bias + ReLU in the network's NCHWc layout, one run of a
//!   [`Conv2dPlan`] on the CPU (the stem reads its NCHW image). `variant` is the kernel,
//!   `<algorithm>-<isa>-<columns>x<vectors>` from [`Conv2dPlan::kernel_name`] (the register
//!   block: output pixels or Winograd tiles × vectors of output channels, which can differ
//!   between thread counts);
//!   `shape` is the layer name of [`shapes::ModelLayer::name`], then `-n<N>` for batches other than 1,
//!   then `-t<T>` for the rayon pool size.
//! - `conv3x3-gpu` ([`gpu`]): the same layers with the WGSL kernels of `reparam-wgsl`, one
//!   [`GpuContext::run`] per iteration, timed on the device (timestamp queries; host wall time
//!   on an adapter without them). `variant` is [`GpuKernel::name`] (`naive`, `direct`, `gemm`,
//!   `gemm-wide`, `winograd-f23`, `winograd-f43`); `shape` is the layer name, then always `-n<N>`, for batches 1 and 32 (batch
//!   1 only for `naive`, and on a software adapter such as lavapipe). Without a GPU adapter the
//!   group prints a `SKIP` line on stderr and registers nothing.
//! - `block` and `model` ([`model`]): one block of each stage and whole networks of RepVGG-A0
//!   and B0 in both forms on the `repvgg` engines, `<form>-<engine>` with form `plain` or
//!   `multi-branch` and engine `cpu` or `gpu`: `block/multi-branch-cpu/a0-stage2`,
//!   `model/plain-cpu/b0-b8`, `model/plain-gpu/a0-b1`. Each prints its memory figures (MB moved
//!   per image, peak activation MB) next to its timing.
//!
//! Throughput is `Elements(flops)` with the direct-convolution count
//! `2·Cout·(Cin/g)·9·Hout·Wout·N`, so criterion's "elem/s" reads as effective FLOP/s (a Winograd
//! kernel can exceed the FMA peak on this scale); for `block` and `model`, the sum of the ops' FLOPs
//! of `repvgg::traffic`.
//!
//! Filter as usual: `cargo bench -p reparam-benches -- 'conv3x3/winograd-f43-avx512f'` or
//! `-- conv3x3-gpu/gemm` or `-- model/`; smoke test every benchmark once with `cargo bench -p reparam-benches --
//! --test` (`-- --test conv3x3-gpu` for the GPU group alone).
//!
//! [`Conv2dPlan`]: reparam_winograd::Conv2dPlan
//! [`Conv2dPlan::kernel_name`]: reparam_winograd::Conv2dPlan::kernel_name
//! [`GpuContext::run`]: reparam_wgsl::GpuContext::run
//! [`GpuKernel::name`]: reparam_wgsl::GpuKernel::name

mod cpu;
mod gpu;
mod model;
mod shapes;

criterion::criterion_group!(
    benches,
    cpu::conv3x3,
    gpu::conv3x3_gpu,
    model::block,
    model::model
);
criterion::criterion_main!(benches);
