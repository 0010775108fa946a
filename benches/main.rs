//! The one criterion binary of reparam (`cargo bench -p reparam-benches`).
//!
//! Every benchmark id reads like a row of a table, `op/variant/shape`:
//!
//! ```text
//! conv3x3/winograd-f43-avx512f/a0-s3-192x14x14-t1
//! conv3x3/direct-avx2fma/b0-s2-64x56x56-to128-stride2-t2
//! conv3x3/winograd-f23-avx512f/b0-s1-64x56x56-n8-t2
//! ```
//!
//! - `op`: `conv3x3` (3x3 conv + bias + ReLU, NCHW in and out, one [`Conv2dPlan::run`]).
//! - `variant`: `<algorithm>-<isa>`, from [`Algorithm::name`] and [`Isa::name`].
//! - `shape`: the layer name of [`shapes::Layer::name`], then `-n<N>` for batches other than 1,
//!   then `-t<T>` for the rayon pool size.
//!
//! Throughput is `Elements(flops)` with the direct-convolution count
//! `2·Cout·(Cin/g)·9·Hout·Wout·N`, so criterion's "elem/s" reads as effective FLOP/s (a Winograd
//! kernel can exceed the FMA peak on this scale).
//!
//! Filter as usual: `cargo bench -p reparam-benches -- 'conv3x3/winograd-f43-avx512f/a0'`; smoke
//! test every benchmark once with `cargo bench -p reparam-benches -- --test`.
//!
//! [`Conv2dPlan::run`]: reparam_winograd::Conv2dPlan::run
//! [`Algorithm::name`]: reparam_winograd::Algorithm::name
//! [`Isa::name`]: reparam_winograd::Isa::name

mod cpu;
mod shapes;

criterion::criterion_group!(benches, cpu::conv3x3);
criterion::criterion_main!(benches);
